/*
 * sftp.c - sluice's SFTP v3 engine: packets in, replies out, every file
 * operation confined beneath the partner's root (see server/sftp.h).
 *
 * Shape (after OpenSSH's sftp-server.c, not copied from it): a handlers[]
 * table indexed by packet type; each handler parses every field of its
 * request before it touches the filesystem and sends exactly one reply;
 * every errno becomes a status through errno_status(); handles are integer
 * slots with a generation, checked on every use. A malformed packet makes
 * sftp_input() return -1 (the session ends); nothing is half-applied.
 *
 * Name operations open the PARENT directory with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | ...) and act on the basename with an *at() call that
 * does not follow symlinks, so a pre-planted symlink is never followed.
 */
#include "server/sftp.h"
#include "server/sftp_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "policy/path.h"

/* Replies waiting for the client beyond this end the session (a client that
 * pipelines reads but never reads replies). */
#define OUT_MAX		(64u * 1024 * 1024)
#define OPEN_TRIES	3

enum hkind { H_FREE = 0, H_FILE, H_DIR };

/* Why a write handle can no longer complete (its CLOSE says so). */
enum { POISON_NONE = 0, POISON_SIZE, POISON_SPACE };

#define WRITEBACK_CHUNK	(8 * 1024 * 1024)

struct handle {
	uint8_t		 kind;
	uint16_t	 gen;
	int		 fd;		/* H_FILE: the file */
	int		 dirfd;		/* H_FILE write, created: its parent, for fsync */
	DIR		*dir;		/* H_DIR */
	unsigned	 readable:1, writable:1, append:1, failed:1, dirty:1,
			 created:1;
	uint8_t		 poison;	/* POISON_*: writes and CLOSE fail */
	int64_t		 hashed_to;	/* sha covers [0, hashed_to) unless dirty */
	int64_t		 end;		/* write handles: highest byte written */
	int64_t		 flushed_to;	/* write-back started for [0, flushed_to) */
	int64_t		 sent;		/* bytes the file had + bytes written */
	/* for hooks.access: what was read or listed through the handle */
	int64_t		 rbytes;	/* file: bytes sent; dir: names sent */
	int64_t		 nreads;	/* DATA or NAME replies */
	int64_t		 rfirst, rend;	/* file: offsets read [rfirst, rend) */
	struct sha256	*sha;
	char		*path;		/* normalised, owned */
};

struct sftp {
	int		 rootfd;
	uint32_t	 max_handles;
	unsigned	 perms;		/* PERM_* */
	int64_t		 max_file_size;	/* 0: unlimited */
	int64_t		 min_free_space;	/* 0: no floor */
	int64_t		 space_due;	/* bytes until the floor is checked */
	const char	*receipts;	/* read-only folder, or NULL (borrowed) */
	struct sftp_hooks hooks;
	int		 initialized;
	int		 dead;		/* sftp_input failed: it always will */
	int		 oom;		/* an output reply could not be built */

	/* one packet being reassembled */
	uint8_t		 hdr[4];
	size_t		 hdrlen;
	uint32_t	 msglen;
	uint8_t		*in;
	size_t		 inlen, incap;

	/* replies: bytes [outoff, outlen) of out are unsent */
	uint8_t		*out;
	size_t		 outoff, outlen, outcap;

	struct handle	*handles;
	uint32_t	 nopen;
};

/* A request being parsed. */
struct msg {
	const uint8_t	*p;
	size_t		 left;
};

struct attrs {
	uint32_t	 flags;
	uint64_t	 size;
	uint32_t	 uid, gid, perm, atime, mtime;
};

/* A client path: raw wire bytes, then its normalised form split in two. */
struct cpath {
	const uint8_t	*raw;
	size_t		 rawlen;
	int		 rc;		/* path_normalize() result */
	char		 norm[PATH_MAX];
	char		 dir[PATH_MAX];	/* parent of norm ("." at the top) */
	const char	*base;		/* last component, inside dir's buffer */
};

/* ---------------------------------------------------------------- wire -- */

static inline uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static inline void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static int
get_u32(struct msg *m, uint32_t *v)
{
	if (m->left < 4)
		return -1;
	*v = be32(m->p);
	m->p += 4;
	m->left -= 4;
	return 0;
}

static int
get_u64(struct msg *m, uint64_t *v)
{
	uint32_t hi, lo;

	if (m->left < 8)
		return -1;
	get_u32(m, &hi);
	get_u32(m, &lo);
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

static int
get_string(struct msg *m, const uint8_t **s, size_t *len)
{
	uint32_t n;

	if (get_u32(m, &n) == -1 || n > m->left)
		return -1;
	*s = m->p;
	*len = n;
	m->p += n;
	m->left -= n;
	return 0;
}

static int
get_path(struct msg *m, struct cpath *cp)
{
	cp->rc = 1;	/* not normalised yet */
	return get_string(m, &cp->raw, &cp->rawlen);
}

static int
get_attrs(struct msg *m, struct attrs *a)
{
	uint32_t n, i;
	const uint8_t *s;
	size_t len;

	memset(a, 0, sizeof(*a));
	if (get_u32(m, &a->flags) == -1)
		return -1;
	if ((a->flags & SSH_FILEXFER_ATTR_SIZE) && get_u64(m, &a->size) == -1)
		return -1;
	if ((a->flags & SSH_FILEXFER_ATTR_UIDGID) &&
	    (get_u32(m, &a->uid) == -1 || get_u32(m, &a->gid) == -1))
		return -1;
	if ((a->flags & SSH_FILEXFER_ATTR_PERMISSIONS) &&
	    get_u32(m, &a->perm) == -1)
		return -1;
	if ((a->flags & SSH_FILEXFER_ATTR_ACMODTIME) &&
	    (get_u32(m, &a->atime) == -1 || get_u32(m, &a->mtime) == -1))
		return -1;
	if (a->flags & SSH_FILEXFER_ATTR_EXTENDED) {
		if (get_u32(m, &n) == -1)
			return -1;
		for (i = 0; i < n; i++)	/* each pair takes >= 8 bytes: bounded */
			if (get_string(m, &s, &len) == -1 ||
			    get_string(m, &s, &len) == -1)
				return -1;
	}
	return 0;
}

/* -------------------------------------------------------------- output -- */

static int
out_reserve(struct sftp *s, size_t n)
{
	size_t need, ncap;
	uint8_t *p;

	if (s->oom)
		return -1;
	if (s->outcap - s->outlen >= n)
		return 0;
	if (n > OUT_MAX || s->outlen - s->outoff > OUT_MAX - n) {
		log_warnx("sftp: over %u bytes of replies are waiting for the "
		    "client; ending the session", OUT_MAX);
		s->oom = 1;
		return -1;
	}
	need = s->outlen + n;
	ncap = s->outcap ? s->outcap : 64 * 1024;
	while (ncap < need)
		ncap *= 2;
	if ((p = realloc(s->out, ncap)) == NULL) {
		log_warn("sftp: output buffer");
		s->oom = 1;
		return -1;
	}
	s->out = p;
	s->outcap = ncap;
	return 0;
}

static void
put_u8(struct sftp *s, uint8_t v)
{
	if (out_reserve(s, 1) == 0)
		s->out[s->outlen++] = v;
}

static void
put_u32(struct sftp *s, uint32_t v)
{
	if (out_reserve(s, 4) == 0) {
		put_be32(s->out + s->outlen, v);
		s->outlen += 4;
	}
}

static void
put_u64(struct sftp *s, uint64_t v)
{
	put_u32(s, v >> 32);
	put_u32(s, (uint32_t)v);
}

static void
put_bytes(struct sftp *s, const void *p, size_t n)
{
	if (out_reserve(s, 4 + n) == 0) {
		put_be32(s->out + s->outlen, (uint32_t)n);
		if (n > 0)
			memcpy(s->out + s->outlen + 4, p, n);
		s->outlen += 4 + n;
	}
}

static void
put_str(struct sftp *s, const char *str)
{
	put_bytes(s, str, strlen(str));
}

/* Starts a reply; returns its offset for reply_end(). Offsets stay valid
 * while a reply is built: only sftp_output_consume() moves bytes. */
static size_t
reply_begin(struct sftp *s, uint8_t type, uint32_t id)
{
	size_t start = s->outlen;

	put_u32(s, 0);
	put_u8(s, type);
	put_u32(s, id);
	return start;
}

static void
reply_end(struct sftp *s, size_t start)
{
	if (!s->oom)
		put_be32(s->out + start, (uint32_t)(s->outlen - start - 4));
}

static const char *
status_text(uint32_t st)
{
	switch (st) {
	case SSH_FX_OK:			return "Success";
	case SSH_FX_EOF:		return "End of file";
	case SSH_FX_NO_SUCH_FILE:	return "No such file";
	case SSH_FX_PERMISSION_DENIED:	return "Permission denied";
	case SSH_FX_BAD_MESSAGE:	return "Bad message";
	case SSH_FX_OP_UNSUPPORTED:	return "Operation unsupported";
	default:			return "Failure";
	}
}

static void
send_status(struct sftp *s, uint32_t id, uint32_t st, const char *text)
{
	size_t start = reply_begin(s, SSH_FXP_STATUS, id);

	put_u32(s, st);
	put_str(s, text ? text : status_text(st));
	put_str(s, "");		/* language tag */
	reply_end(s, start);
}

/* ------------------------------------------------- errors and events -- */

/* The one errno -> status mapping. *text is a static English message. */
static uint32_t
errno_status(int err, const char **text)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		*text = "No such file";
		return SSH_FX_NO_SUCH_FILE;
	case EACCES:
	case EPERM:
	case EROFS:
	case ELOOP:
	case EXDEV:
		*text = "Permission denied";
		return SSH_FX_PERMISSION_DENIED;
	case ENOSPC:
	case EDQUOT:
		*text = "no space left";
		return SSH_FX_FAILURE;
	default:
		*text = strerror(err);
		return SSH_FX_FAILURE;
	}
}

static void
send_errno(struct sftp *s, uint32_t id, int err, uint32_t *st)
{
	const char *text;

	*st = errno_status(err, &text);
	send_status(s, id, *st, text);
}

/* Escapes raw client bytes for the audit trail: printable ASCII as is,
 * anything else as \xHH; truncated to fit. */
static void
escape_raw(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < n && o + 5 < outlen; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			out[o++] = (char)p[i];
		else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[p[i] >> 4];
			out[o++] = hex[p[i] & 0xf];
		}
	}
	out[o] = '\0';
}

static const char *
event_path(const struct cpath *cp, char *buf, size_t len)
{
	if (cp == NULL)
		return NULL;
	if (cp->rc == 0)
		return cp->norm;
	escape_raw(cp->raw, cp->rawlen, buf, len);
	return buf;
}

/* Reports a state-changing request, or (always=0) only a refusal. */
static void
event(struct sftp *s, const char *op, const struct cpath *a,
    const struct cpath *b, uint32_t st, int always)
{
	char ba[1024], bb[1024];
	int refused;

	refused = st == SSH_FX_PERMISSION_DENIED ||
	    (a != NULL && a->rc != 0) || (b != NULL && b->rc != 0);
	if (s->hooks.event == NULL || (!always && !refused))
		return;
	s->hooks.event(s->hooks.arg, op, event_path(a, ba, sizeof(ba)),
	    event_path(b, bb, sizeof(bb)), st, NULL);
}

/* A request on handle h; reason as in sftp_hooks.event (NULL: none). */
static void
event_handle_why(struct sftp *s, const char *op, const struct handle *h,
    uint32_t st, const char *reason)
{
	if (s->hooks.event != NULL)
		s->hooks.event(s->hooks.arg, op, h->path, NULL, st, reason);
}

static void
event_handle(struct sftp *s, const char *op, const struct handle *h,
    uint32_t st)
{
	event_handle_why(s, op, h, st, NULL);
}

/* The audit reason of a write that failed with err, or NULL. */
static const char *
errno_reason(int err)
{
	return err == ENOSPC || err == EDQUOT ? SFTP_REASON_NO_SPACE : NULL;
}

/* -------------------------------------------------------- permissions -- */

static uint32_t path_check(struct cpath *, int, const char **);
static struct handle *handle_get(struct sftp *, const uint8_t *, size_t);

/* What a request names first, for the audit record of a refusal. */
enum { ARG_NONE = 0, ARG_PATH, ARG_PATH2, ARG_HANDLE };

/* 1 if the role grants any of need (0: nothing is needed). */
static int
allowed(const struct sftp *s, unsigned need)
{
	return need == 0 || (s->perms & need) != 0;
}

static const char *
denied_text(unsigned need)
{
	switch (need) {
	case PERM_UPLOAD:
		return "permission denied: this account may not upload files";
	case PERM_LIST:
		return "permission denied: this account may not list files";
	case PERM_READ:
		return "permission denied: this account may not download files";
	case PERM_OVERWRITE:
		return "permission denied: this account may not replace a "
		    "file that was already uploaded";
	case PERM_RENAME:
		return "permission denied: this account may not rename files";
	case PERM_DELETE:
		return "permission denied: this account may not remove files "
		    "or directories";
	case PERM_MKDIR:
		return "permission denied: this account may not create "
		    "directories";
	default:
		return "permission denied: this account's role does not "
		    "allow this request";
	}
}

/*
 * Refuses a request the role does not allow, before anything else of it is
 * looked at (so a malformed tail of a refused request does not end the
 * session), and reports its first argument(s) as the event.
 */
static void
deny(struct sftp *s, uint32_t id, const char *op, int args, struct msg *m,
    unsigned need)
{
	struct cpath a, b;
	struct handle *h;
	const uint8_t *hb;
	const char *text;
	size_t hl;
	int na = 0;

	send_status(s, id, SSH_FX_PERMISSION_DENIED, denied_text(need));
	if (s->hooks.event == NULL)
		return;
	if (args == ARG_HANDLE) {
		h = NULL;
		if (get_string(m, &hb, &hl) == 0)
			h = handle_get(s, hb, hl);
		s->hooks.event(s->hooks.arg, op, h != NULL ? h->path : NULL,
		    NULL, SSH_FX_PERMISSION_DENIED, NULL);
		return;
	}
	if (args >= ARG_PATH && get_path(m, &a) == 0) {
		(void)path_check(&a, 0, &text);
		na = 1;
		if (args == ARG_PATH2 && get_path(m, &b) == 0) {
			(void)path_check(&b, 0, &text);
			na = 2;
		}
	}
	event(s, op, na >= 1 ? &a : NULL, na == 2 ? &b : NULL,
	    SSH_FX_PERMISSION_DENIED, 1);
}

/* ------------------------------------------------------------- paths -- */

/*
 * Normalises cp beneath the root. Returns SSH_FX_OK, or a status with
 * *text set; cp->dir/cp->base are filled on success.
 */
static uint32_t
path_check(struct cpath *cp, int flags, const char **text)
{
	char *slash;

	cp->rc = path_normalize((const char *)cp->raw, cp->rawlen, flags,
	    cp->norm, sizeof(cp->norm));
	switch (cp->rc) {
	case 0:
		break;
	case PATH_ESCAPE:
		*text = "path leads outside your directory";
		return SSH_FX_PERMISSION_DENIED;
	case PATH_TOOLONG:
		*text = "file name too long";
		return SSH_FX_FAILURE;
	default:
		cp->rc = PATH_INVALID;
		*text = "invalid file name";
		return SSH_FX_FAILURE;
	}
	memcpy(cp->dir, cp->norm, strlen(cp->norm) + 1);
	if ((slash = strrchr(cp->dir, '/')) == NULL) {
		cp->base = cp->norm;
		xstrlcpy(cp->dir, ".", sizeof(cp->dir));
	} else {
		*slash = '\0';
		cp->base = slash + 1;
	}
	return SSH_FX_OK;
}

static int
is_root(const struct cpath *cp)
{
	return strcmp(cp->norm, ".") == 0;
}

/*
 * A change to cp (normalised) inside the receipts folder, or to the folder
 * itself: SSH_FX_PERMISSION_DENIED with *text, else SSH_FX_OK. The receipts
 * are the gateway's word to the partner (spool/delivery.h); no role may
 * change them, and the files' owner and mode say the same on disk.
 */
static uint32_t
receipts_check(const struct sftp *s, const struct cpath *cp,
    const char **text)
{
	if (!path_under(cp->norm, s->receipts))
		return SSH_FX_OK;
	*text = "permission denied: the receipts folder is read-only (the "
	    "gateway writes its delivery receipts there)";
	return SSH_FX_PERMISSION_DENIED;
}

/*
 * Without openat2 (kernels before 5.6, seccomp filters that answer ENOSYS,
 * valgrind): the same rules walked by hand over a normalised path, one
 * component at a time from dirfd, each opened with O_NOFOLLOW and checked to
 * be on dirfd's filesystem. ".." is refused outright. Unlike openat2 it does
 * not detect a directory being moved out of the tree mid-walk by a local
 * process (the SFTP client itself cannot do that).
 */
static int
open_walk(int dirfd, const char *path, int flags, mode_t mode)
{
	char buf[PATH_MAX], *comp, *next;
	struct stat root, st;
	int cur = dirfd, fd, err;

	if (xstrlcpy(buf, path, sizeof(buf)) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (fstat(dirfd, &root) == -1)
		return -1;
	comp = buf;
	for (;;) {
		while (*comp == '/')
			comp++;
		if ((next = strchr(comp, '/')) != NULL)
			*next++ = '\0';
		if (strcmp(comp, "..") == 0) {
			err = EXDEV;
			goto fail;
		}
		while (next != NULL && *next == '/')
			next++;
		if (next != NULL && *next == '\0')
			next = NULL;
		if (*comp == '\0')
			comp = ".";
		if (next == NULL)
			fd = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC,
			    mode);
		else
			fd = openat(cur, comp, O_PATH | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1) {
			err = errno;
			if (err == ENOTDIR && fstatat(cur, comp, &st,
			    AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
				err = ELOOP;
			goto fail;
		}
		if (fstat(fd, &st) == -1)
			err = errno;
		else if (S_ISLNK(st.st_mode))
			err = ELOOP;
		else if (st.st_dev != root.st_dev)
			err = EXDEV;
		else
			err = 0;
		if (err != 0) {
			close(fd);
			goto fail;
		}
		if (cur != dirfd)
			close(cur);
		cur = fd;
		if (next == NULL)
			return fd;
		comp = next;
	}
 fail:
	if (cur != dirfd)
		close(cur);
	errno = err;
	return -1;
}

/* openat2 beneath dirfd; never follows a symlink, never leaves the tree. */
static int
open_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
	static int no_openat2;
	struct open_how how;
	int fd, i;

	if (no_openat2)
		return open_walk(dirfd, path, flags, mode);
	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.mode = (flags & O_CREAT) ? mode : 0;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
	    RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
	for (i = 0; i < OPEN_TRIES; i++) {
		fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (fd != -1 || errno != EAGAIN)	/* EAGAIN: rename race */
			break;
	}
	if (fd == -1 && errno == ENOSYS) {
		log_warnx("sftp: openat2 is not available; confining paths "
		    "by walking them with O_NOFOLLOW");
		no_openat2 = 1;
		return open_walk(dirfd, path, flags, mode);
	}
	return fd;
}

static int
open_parent(struct sftp *s, const struct cpath *cp, int flags)
{
	return open_beneath(s->rootfd, cp->dir, flags | O_DIRECTORY, 0);
}

/* ----------------------------------------------------------- handles -- */

static struct handle *
handle_new(struct sftp *s, enum hkind kind, const char *path, uint32_t *idx)
{
	struct handle *h;
	char *p;
	uint32_t i;

	if (s->nopen >= s->max_handles)
		return NULL;
	for (i = 0; i < s->max_handles; i++)
		if (s->handles[i].kind == H_FREE)
			break;
	if (i == s->max_handles || (p = strdup(path)) == NULL)
		return NULL;
	h = &s->handles[i];
	h->kind = kind;
	h->fd = -1;
	h->dirfd = -1;
	h->dir = NULL;
	h->readable = h->writable = h->append = h->failed = h->dirty =
	    h->created = 0;
	h->poison = POISON_NONE;
	h->hashed_to = h->end = h->sent = h->flushed_to = 0;
	h->rbytes = h->nreads = h->rend = 0;
	h->rfirst = -1;
	h->sha = NULL;
	h->path = p;
	s->nopen++;
	*idx = i;
	return h;
}

static void
handle_release(struct sftp *s, struct handle *h)
{
	if (h->fd != -1)
		close(h->fd);
	if (h->dirfd != -1)
		close(h->dirfd);
	if (h->dir != NULL)
		closedir(h->dir);
	sha256_free(h->sha);
	free(h->path);
	h->fd = h->dirfd = -1;
	h->dir = NULL;
	h->sha = NULL;
	h->path = NULL;
	h->kind = H_FREE;
	h->gen++;		/* every old handle string for this slot dies */
	s->nopen--;
}

/*
 * Tells hooks.access what a handle that is about to be released was used
 * for: every directory handle, every read-only file handle, a write handle
 * only if it was read from.
 */
static void
handle_report(struct sftp *s, const struct handle *h, int at_end)
{
	struct sftp_access a;
	struct stat st;

	if (s->hooks.access == NULL || h->kind == H_FREE ||
	    (h->kind == H_FILE && (!h->readable ||
	    (h->writable && h->nreads == 0))))
		return;
	memset(&a, 0, sizeof(a));
	a.path = h->path;
	a.dir = h->kind == H_DIR;
	a.at_end = at_end;
	a.reads = h->nreads;
	a.first = -1;
	a.size = -1;
	if (a.dir)
		a.entries = h->rbytes;
	else {
		a.bytes = h->rbytes;
		a.first = h->rfirst;
		a.end = h->rend;
		if (fstat(h->fd, &st) == 0)
			a.size = (int64_t)st.st_size;
	}
	s->hooks.access(s->hooks.arg, &a);
}

static void
send_handle(struct sftp *s, uint32_t id, uint32_t idx)
{
	struct handle *h = &s->handles[idx];
	uint8_t b[4];
	size_t start;

	b[0] = idx >> 8;
	b[1] = idx & 0xff;
	b[2] = h->gen >> 8;
	b[3] = h->gen & 0xff;
	start = reply_begin(s, SSH_FXP_HANDLE, id);
	put_bytes(s, b, sizeof(b));
	reply_end(s, start);
}

/* The handle named by the client's bytes, or NULL (forged, stale, closed). */
static struct handle *
handle_get(struct sftp *s, const uint8_t *b, size_t len)
{
	struct handle *h;
	uint32_t idx;

	if (len != 4)
		return NULL;
	idx = (uint32_t)b[0] << 8 | b[1];
	if (idx >= s->max_handles)
		return NULL;
	h = &s->handles[idx];
	if (h->kind == H_FREE || h->gen != ((uint16_t)(b[2] << 8 | b[3])))
		return NULL;
	return h;
}

static void
send_bad_handle(struct sftp *s, uint32_t id)
{
	send_status(s, id, SSH_FX_FAILURE, "invalid handle");
}

/* ------------------------------------------------------------- attrs -- */

static uint32_t
clamp_time(time_t t)
{
	if (t < 0)
		return 0;
	if ((uint64_t)t > UINT32_MAX)
		return UINT32_MAX;
	return (uint32_t)t;
}

static void
put_stat(struct sftp *s, const struct stat *st)
{
	put_u32(s, SSH_FILEXFER_ATTR_SIZE | SSH_FILEXFER_ATTR_UIDGID |
	    SSH_FILEXFER_ATTR_PERMISSIONS | SSH_FILEXFER_ATTR_ACMODTIME);
	put_u64(s, (uint64_t)st->st_size);
	put_u32(s, st->st_uid);
	put_u32(s, st->st_gid);
	put_u32(s, st->st_mode);
	put_u32(s, clamp_time(st->st_atime));
	put_u32(s, clamp_time(st->st_mtime));
}

static void
send_attrs(struct sftp *s, uint32_t id, const struct stat *st)
{
	size_t start = reply_begin(s, SSH_FXP_ATTRS, id);

	put_stat(s, st);
	reply_end(s, start);
}

static void
mode_string(mode_t m, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";
	int i;

	switch (m & S_IFMT) {
	case S_IFREG:	out[0] = '-'; break;
	case S_IFDIR:	out[0] = 'd'; break;
	case S_IFLNK:	out[0] = 'l'; break;
	case S_IFCHR:	out[0] = 'c'; break;
	case S_IFBLK:	out[0] = 'b'; break;
	case S_IFIFO:	out[0] = 'p'; break;
	case S_IFSOCK:	out[0] = 's'; break;
	default:	out[0] = '?'; break;
	}
	for (i = 0; i < 9; i++)
		out[1 + i] = (m & (0400 >> i)) ? rwx[i] : '-';
	if (m & S_ISUID)
		out[3] = out[3] == 'x' ? 's' : 'S';
	if (m & S_ISGID)
		out[6] = out[6] == 'x' ? 's' : 'S';
	if (m & S_ISVTX)
		out[9] = out[9] == 'x' ? 't' : 'T';
	out[10] = '\0';
}

/* An `ls -l` line as OpenSSH's sftp-server sends it, numeric owners. */
static void
longname(const struct stat *st, const char *name, char *out, size_t len)
{
	char mode[11], when[32];
	struct tm tm;
	time_t now = time(NULL);
	size_t n;

	mode_string(st->st_mode, mode);
	if (localtime_r(&st->st_mtime, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	/* within six months: time of day, else the year */
	if (st->st_mtime > now - 182 * 86400 && st->st_mtime <= now + 86400)
		n = strftime(when, sizeof(when), "%b %e %H:%M", &tm);
	else
		n = strftime(when, sizeof(when), "%b %e  %Y", &tm);
	if (n == 0)
		xstrlcpy(when, "?", sizeof(when));
	if (xsnprintf(out, len, "%s %3lu %-8lu %-8lu %8lld %s %s", mode,
	    (unsigned long)st->st_nlink, (unsigned long)st->st_uid,
	    (unsigned long)st->st_gid, (long long)st->st_size, when, name) == -1)
		xstrlcpy(out, name, len);
}

/* ---------------------------------------------------------- handlers -- */

/* OPEN for reading: the whole path beneath the root. */
static int
open_read(struct sftp *s, uint32_t id, struct cpath *cp)
{
	struct stat st;
	struct handle *h;
	const char *text = NULL;
	uint32_t st_code = SSH_FX_FAILURE, idx;
	int fd = -1;

	if (!allowed(s, PERM_READ)) {
		st_code = SSH_FX_PERMISSION_DENIED;
		text = denied_text(PERM_READ);
	} else if ((fd = open_beneath(s->rootfd, cp->norm, O_RDONLY |
	    O_NOFOLLOW | O_NONBLOCK, 0)) == -1 || fstat(fd, &st) == -1)
		st_code = errno_status(errno, &text);
	else if (!S_ISREG(st.st_mode))
		text = "not a regular file";
	else if ((h = handle_new(s, H_FILE, cp->norm, &idx)) == NULL)
		text = "too many open files";
	else {
		h->fd = fd;
		h->readable = 1;
		send_handle(s, id, idx);
		event(s, "open", cp, NULL, SSH_FX_OK, 0);
		return 0;
	}
	if (fd != -1)
		close(fd);
	send_status(s, id, st_code, text);
	event(s, "open", cp, NULL, st_code, 0);
	return 0;
}

enum replace { REPLACE_OK, REPLACE_RETRY, REPLACE_DENIED, REPLACE_BUSY,
	REPLACE_ERRNO };

/*
 * OPEN with TRUNC of an accepted (read-only) file st named cp->base in
 * pfd: removes it under its lock and creates a new one in *fd. Without
 * the overwrite permission only a never-recorded file (left by a crash
 * inside CLOSE) may be replaced. REPLACE_RETRY: it changed meanwhile, look
 * again; REPLACE_ERRNO: errno says why.
 */
static enum replace
replace_accepted(struct sftp *s, int pfd, const struct cpath *cp,
    const struct stat *st, int *fd)
{
	struct stat st2;
	int ofd, err, orphan_only;

	orphan_only = !allowed(s, PERM_OVERWRITE);
	if (orphan_only && (!allowed(s, PERM_UPLOAD) ||
	    s->hooks.is_recorded == NULL))
		return REPLACE_DENIED;
	ofd = open_beneath(pfd, cp->base, O_RDONLY | O_NOFOLLOW |
	    O_NONBLOCK, 0);
	if (ofd == -1)
		return errno == ENOENT ? REPLACE_RETRY : REPLACE_ERRNO;
	/* a session still inside CLOSE holds the lock */
	if (flock(ofd, LOCK_EX | LOCK_NB) == -1) {
		err = errno;
		close(ofd);
		errno = err;
		return err == EWOULDBLOCK ? REPLACE_BUSY : REPLACE_ERRNO;
	}
	if (fstat(ofd, &st2) == -1 || st2.st_ino != st->st_ino ||
	    st2.st_dev != st->st_dev) {
		close(ofd);
		return REPLACE_RETRY;
	}
	if (orphan_only && s->hooks.is_recorded(s->hooks.arg, ofd,
	    (int64_t)st2.st_dev, (int64_t)st2.st_ino) != 0) {
		close(ofd);
		return REPLACE_DENIED;
	}
	if (unlinkat(pfd, cp->base, 0) == -1 && errno != ENOENT) {
		err = errno;
		close(ofd);
		errno = err;
		return REPLACE_ERRNO;
	}
	close(ofd);
	*fd = open_beneath(pfd, cp->base, O_RDWR | O_CREAT | O_EXCL |
	    O_NOFOLLOW, 0640);
	if (*fd == -1)
		return errno == EEXIST ? REPLACE_RETRY : REPLACE_ERRNO;
	return REPLACE_OK;
}

static int
h_open(struct sftp *s, uint32_t id, struct msg *m)
{
	struct cpath cp;
	struct attrs a;
	struct stat st, st2;
	struct handle *h;
	const char *text = NULL;
	uint32_t pflags, st_code, idx;
	int pfd = -1, fd = -1, try, trunc = 0, resume = 0, created = 0;
	int wr;
	unsigned need = 0;

	if (get_path(m, &cp) == -1 || get_u32(m, &pflags) == -1 ||
	    get_attrs(m, &a) == -1)
		return -1;
	wr = (pflags & (SSH_FXF_WRITE | SSH_FXF_APPEND | SSH_FXF_CREAT |
	    SSH_FXF_TRUNC | SSH_FXF_EXCL)) != 0;
	if ((st_code = path_check(&cp, 0, &text)) != SSH_FX_OK ||
	    (wr && (st_code = receipts_check(s, &cp, &text)) != SSH_FX_OK))
		goto done;
	if (s->nopen >= s->max_handles)
		goto too_many;	/* before anything is created or truncated */

	if (!wr)
		return open_read(s, id, &cp);

	/* write: the parent directory, then the name in it */
	if ((pfd = open_parent(s, &cp, O_RDONLY)) == -1)
		goto fail_errno;
	for (try = 0; try < OPEN_TRIES && fd == -1; try++) {
		if (fstatat(pfd, cp.base, &st, AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno != ENOENT)
				goto fail_errno;
			if (!(pflags & SSH_FXF_CREAT)) {
				errno = ENOENT;
				goto fail_errno;
			}
			if (!allowed(s, need = PERM_UPLOAD))
				goto denied;
			fd = open_beneath(pfd, cp.base, O_RDWR | O_CREAT |
			    O_EXCL | O_NOFOLLOW, 0640);
			if (fd == -1 && errno == EEXIST)
				continue;	/* created meanwhile: look again */
			if (fd == -1)
				goto fail_errno;
			created = 1;
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			st_code = SSH_FX_PERMISSION_DENIED;
			text = "symbolic links are not followed";
			goto done;
		}
		if (!S_ISREG(st.st_mode)) {
			st_code = SSH_FX_FAILURE;
			text = S_ISDIR(st.st_mode) ? "is a directory" :
			    "not a regular file";
			goto done;
		}
		if (pflags & SSH_FXF_EXCL) {
			st_code = SSH_FX_FAILURE;
			text = "file already exists";
			goto done;
		}
		if (!(st.st_mode & S_IWUSR)) {
			/* accepted: immutable; TRUNC writes a new file */
			if (!(pflags & SSH_FXF_TRUNC)) {
				st_code = SSH_FX_PERMISSION_DENIED;
				text = "file already accepted; upload it again "
				    "to replace";
				goto done;
			}
			switch (replace_accepted(s, pfd, &cp, &st, &fd)) {
			case REPLACE_RETRY:
				continue;
			case REPLACE_DENIED:
				goto deny_overwrite;
			case REPLACE_BUSY:
				goto busy;
			case REPLACE_ERRNO:
				goto fail_errno;
			default:
				created = 1;
				break;
			}
			break;
		}
		/* incomplete: truncate or resume (one's own upload) */
		if (!allowed(s, need = PERM_UPLOAD))
			goto denied;
		fd = open_beneath(pfd, cp.base, O_RDWR | O_NOFOLLOW |
		    O_NONBLOCK, 0);	/* no FIFO swapped in may block us */
		if (fd == -1 && errno == ENOENT)
			continue;
		if (fd == -1)
			goto fail_errno;
		if (fstat(fd, &st2) == -1 || st2.st_ino != st.st_ino ||
		    st2.st_dev != st.st_dev) {
			close(fd);
			fd = -1;
			continue;
		}
		trunc = (pflags & SSH_FXF_TRUNC) != 0;
		resume = !trunc;
	}
	if (fd == -1) {
		st_code = SSH_FX_FAILURE;
		text = "the file changed while it was opened; try again";
		goto done;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			goto busy;
		goto fail_errno;
	}
	if (!created && (fstat(fd, &st2) == -1 || !(st2.st_mode & S_IWUSR))) {
		/* accepted by another session while we waited */
		st_code = SSH_FX_FAILURE;
		text = "the file changed while it was opened; try again";
		goto done;
	}
	if (trunc && ftruncate(fd, 0) == -1)
		goto fail_errno;
	if ((h = handle_new(s, H_FILE, cp.norm, &idx)) == NULL)
		goto too_many;
	if ((h->sha = sha256_new()) == NULL) {
		handle_release(s, h);
		st_code = SSH_FX_FAILURE;
		text = "out of memory";
		goto done;
	}
	h->fd = fd;
	fd = -1;
	/* without "read", READ on this handle is refused */
	h->readable = (pflags & SSH_FXF_READ) != 0 && allowed(s, PERM_READ);
	h->writable = 1;
	h->append = (pflags & SSH_FXF_APPEND) != 0;
	h->created = created;
	h->dirty = resume;	/* resumed bytes are rehashed at CLOSE */
	h->end = h->sent = resume ? st2.st_size : 0;
	if (created) {
		h->dirfd = pfd;
		pfd = -1;
	}
	send_handle(s, id, idx);
	st_code = SSH_FX_OK;
	event(s, "open", &cp, NULL, st_code, 1);
	if (pfd != -1)
		close(pfd);
	return 0;

 too_many:
	st_code = SSH_FX_FAILURE;
	text = "too many open files";
	goto done;
 deny_overwrite:
	need = PERM_OVERWRITE;
 denied:
	st_code = SSH_FX_PERMISSION_DENIED;
	text = denied_text(need);
	goto done;
 busy:
	st_code = SSH_FX_FAILURE;
	text = "file is being written by another session";
	goto done;
 fail_errno:
	st_code = errno_status(errno, &text);
 done:
	if (fd != -1)
		close(fd);
	if (pfd != -1)
		close(pfd);
	send_status(s, id, st_code, text);
	event(s, "open", &cp, NULL, st_code, wr);
	return 0;
}

/* The reason a poisoned handle gives, into buf. Returns buf. */
static const char *
poison_text(const struct sftp *s, const struct handle *h, char *buf,
    size_t len)
{
	if (h->poison == POISON_SIZE)
		(void)xsnprintf(buf, len, "file too large (limit %lld bytes)",
		    (long long)s->max_file_size);
	else
		(void)xstrlcpy(buf, "no space left on the gateway; try later",
		    len);
	return buf;
}

/*
 * 1 if writing n more bytes would take the root's file system below
 * min_free_space. statvfs is asked again only after a share of the margin
 * left has been written by this session (at most SFTP_SPACE_CHECK_MAX),
 * so a session far from the floor rarely asks and one near it always does.
 */
static int
space_low(struct sftp *s, int64_t n)
{
	struct statvfs v;
	int64_t avail;

	if (s->min_free_space <= 0)
		return 0;
	if (s->space_due > n) {
		s->space_due -= n;
		return 0;
	}
	if (fstatvfs(s->rootfd, &v) == -1) {
		log_warn("sftp: statvfs of the partner root");
		s->space_due = 0;
		return 0;	/* ENOSPC still fails the write itself */
	}
	if (v.f_frsize > 0 && v.f_bavail > (fsblkcnt_t)(INT64_MAX / v.f_frsize))
		avail = INT64_MAX;
	else
		avail = (int64_t)v.f_bavail * (int64_t)v.f_frsize;
	if (avail - n < s->min_free_space) {
		s->space_due = 0;
		return 1;
	}
	/* other sessions write too: re-check after 1/64 of the margin */
	s->space_due = (avail - n - s->min_free_space) / 64;
	if (s->space_due > SFTP_SPACE_CHECK_MAX)
		s->space_due = SFTP_SPACE_CHECK_MAX;
	return 0;
}

/* 0 if h->path still names the file open in h (so the hook's path and fd
 * agree), else -1: a client renamed or removed it while it was written. */
static int
still_named(struct sftp *s, const struct handle *h)
{
	struct cpath cp;
	struct stat a, b;
	const char *text;
	int pfd, rc = -1;

	cp.raw = (const uint8_t *)h->path;
	cp.rawlen = strlen(h->path);
	if (path_check(&cp, 0, &text) != SSH_FX_OK ||
	    (pfd = open_parent(s, &cp, O_PATH)) == -1)
		return -1;
	if (fstatat(pfd, cp.base, &a, AT_SYMLINK_NOFOLLOW) == 0 &&
	    fstat(h->fd, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino)
		rc = 0;
	close(pfd);
	return rc;
}

/* A CLOSE that failed after file_stage: incomplete again (mode 0640, which
 * the session needs to take its receipt back), then the session undoes. */
static void
unstage(struct sftp *s, const struct sftp_file_info *fi)
{
	if (fchmod(fi->fd, 0640) == -1)
		log_warn("sftp: fchmod %s back to 0640", fi->path);
	if (s->hooks.file_unstage != NULL)
		s->hooks.file_unstage(s->hooks.arg, fi);
}

/* CLOSE of a write handle: make the file durable and accepted. */
static uint32_t
complete_file(struct sftp *s, struct handle *h, const char **text, char *why,
    size_t whylen)
{
	struct sftp_file_info fi;
	struct stat st;
	uint8_t md[SHA256_LEN];
	char hex[SHA256_HEX];
	int64_t n;
	int err;

	if (h->poison != POISON_NONE) {
		*text = poison_text(s, h, why, whylen);
		return SSH_FX_FAILURE;
	}
	if (h->failed) {
		*text = "a write to this file failed; upload it again";
		return SSH_FX_FAILURE;
	}
	if (still_named(s, h) == -1) {
		*text = "the file was renamed or removed while it was written; "
		    "upload it again";
		return SSH_FX_FAILURE;
	}
	if (fstat(h->fd, &st) == -1)
		goto fail;
	if (h->dirty || h->hashed_to > st.st_size) {
		if (sha256_reset(h->sha) == -1 ||
		    (n = sha256_fd_update(h->sha, h->fd, 0)) != st.st_size)
			goto fail;
	} else {
		n = sha256_fd_update(h->sha, h->fd, (off_t)h->hashed_to);
		if (n == -1 || h->hashed_to + n != st.st_size)
			goto fail;
	}
	if (sha256_final(h->sha, md) == -1)
		goto fail;
	hex_encode(md, sizeof(md), hex);
	fi.path = h->path;
	fi.fd = h->fd;
	fi.size = st.st_size;
	fi.sha256 = hex;
	/*
	 * Metadata first (the session's receipt and spool link, mode 0440),
	 * then one fsync of the file: it commits them with the bytes, and the
	 * directory fsyncs that follow find their entries committed. A crash
	 * before the OK leaves a 0440 file the partner was never told about:
	 * an upload to the same name replaces it unless it was recorded.
	 */
	if (s->hooks.file_stage != NULL &&
	    s->hooks.file_stage(s->hooks.arg, &fi) != 0) {
		*text = "could not record the file; upload it again";
		return SSH_FX_FAILURE;
	}
	if (fchmod(h->fd, 0440) == -1) {
		log_warn("sftp: fchmod %s", h->path);
		unstage(s, &fi);
		*text = "could not mark the file complete; upload it again";
		return SSH_FX_FAILURE;
	}
	/* fsync once: after a failure the page cache cannot be trusted */
	if (fsync(h->fd) == -1 || (h->dirfd != -1 && fsync(h->dirfd) == -1)) {
		err = errno;
		log_warn("sftp: fsync %s", h->path);
		unstage(s, &fi);
		errno_status(err, text);
		if (errno_reason(err) != NULL)
			h->poison = POISON_SPACE;	/* the audit reason */
		else
			*text = "could not write the file to disk; upload it "
			    "again";
		return SSH_FX_FAILURE;
	}
	if (s->hooks.file_complete != NULL &&
	    s->hooks.file_complete(s->hooks.arg, &fi) != 0) {
		unstage(s, &fi);
		*text = "could not record the file; upload it again";
		return SSH_FX_FAILURE;
	}
	return SSH_FX_OK;

 fail:	/* before file_stage: the file is still mode 0600 */
	log_warn("sftp: completing %s", h->path);
	*text = "could not complete the file; upload it again";
	return SSH_FX_FAILURE;
}

static int
h_close(struct sftp *s, uint32_t id, struct msg *m)
{
	const uint8_t *hb;
	size_t hl;
	struct handle *h;
	const char *text = NULL;
	uint32_t st = SSH_FX_OK;
	char why[128];

	if (get_string(m, &hb, &hl) == -1)
		return -1;
	if ((h = handle_get(s, hb, hl)) == NULL) {
		send_bad_handle(s, id);
		return 0;
	}
	if (h->kind == H_FILE && h->writable) {
		st = complete_file(s, h, &text, why, sizeof(why));
		event_handle_why(s, "close", h, st, st != SSH_FX_OK &&
		    h->poison == POISON_SPACE ? SFTP_REASON_NO_SPACE : NULL);
	}
	handle_report(s, h, 0);
	handle_release(s, h);	/* releases the flock */
	send_status(s, id, st, text);
	return 0;
}

static int
h_read(struct sftp *s, uint32_t id, struct msg *m)
{
	const uint8_t *hb;
	size_t hl, start;
	struct handle *h;
	uint64_t off;
	uint32_t len, st;
	ssize_t n;

	if (get_string(m, &hb, &hl) == -1 || get_u64(m, &off) == -1 ||
	    get_u32(m, &len) == -1)
		return -1;
	if ((h = handle_get(s, hb, hl)) == NULL || h->kind != H_FILE) {
		send_bad_handle(s, id);
		return 0;
	}
	if (!h->readable) {
		send_status(s, id, SSH_FX_PERMISSION_DENIED,
		    "handle not open for reading");
		event_handle(s, "read", h, SSH_FX_PERMISSION_DENIED);
		return 0;
	}
	if (off > INT64_MAX) {
		send_status(s, id, SSH_FX_EOF, NULL);
		return 0;
	}
	if (len > SFTP_MAX_READ_LENGTH)
		len = SFTP_MAX_READ_LENGTH;
	/* read straight into the reply */
	start = reply_begin(s, SSH_FXP_DATA, id);
	if (out_reserve(s, 4 + (size_t)len) == -1)
		return 0;
	do
		n = pread(h->fd, s->out + s->outlen + 4, len, (off_t)off);
	while (n == -1 && errno == EINTR);
	if (n <= 0) {
		int err = errno;

		s->outlen = start;	/* drop the half-built DATA reply */
		if (n == 0)
			send_status(s, id, SSH_FX_EOF, NULL);
		else
			send_errno(s, id, err, &st);
		return 0;
	}
	put_be32(s->out + s->outlen, (uint32_t)n);
	s->outlen += 4 + (size_t)n;
	reply_end(s, start);
	h->rbytes += n;
	h->nreads++;
	if (h->rfirst == -1 || (int64_t)off < h->rfirst)
		h->rfirst = (int64_t)off;
	if ((int64_t)off + n > h->rend)	/* <= the file's size */
		h->rend = (int64_t)off + n;
	return 0;
}

static int
h_write(struct sftp *s, uint32_t id, struct msg *m)
{
	const uint8_t *hb, *data;
	size_t hl, len, done;
	struct handle *h;
	uint64_t off;
	uint32_t st;
	ssize_t n;
	int err;

	char why[128];

	if (get_string(m, &hb, &hl) == -1 || get_u64(m, &off) == -1 ||
	    get_string(m, &data, &len) == -1)
		return -1;
	if ((h = handle_get(s, hb, hl)) == NULL || h->kind != H_FILE) {
		send_bad_handle(s, id);
		return 0;
	}
	if (!h->writable) {
		send_status(s, id, SSH_FX_PERMISSION_DENIED,
		    "handle not open for writing");
		event_handle(s, "write", h, SSH_FX_PERMISSION_DENIED);
		return 0;
	}
	if (h->poison != POISON_NONE) {
		/* keep refusing: its bytes would never be kept anyway */
		send_status(s, id, SSH_FX_FAILURE, poison_text(s, h, why,
		    sizeof(why)));
		return 0;
	}
	if (h->append)
		off = (uint64_t)h->end;
	if (off > INT64_MAX || len > (uint64_t)INT64_MAX - off) {
		h->failed = 1;	/* the client's bytes are not in the file */
		send_status(s, id, SSH_FX_FAILURE, "offset out of range");
		event_handle_why(s, "write", h, SSH_FX_FAILURE,
		    "offset out of range");
		return 0;
	}
	/*
	 * Holes: out-of-order pipelined writes leave small ones (OpenSSH: 64
	 * requests of at most 256 KiB), but a file must not grow much faster
	 * than bytes arrive, or a few tiny WRITEs make a sparse terabyte that
	 * CLOSE would then hash.
	 */
	if ((int64_t)(off + len) > h->sent &&
	    (int64_t)(off + len) - h->sent > SFTP_MAX_HOLE) {
		h->failed = 1;
		send_status(s, id, SSH_FX_FAILURE, "write too far beyond the "
		    "data sent so far; write the file in order");
		event_handle_why(s, "write", h, SSH_FX_FAILURE,
		    "write too far beyond the data sent so far");
		return 0;
	}
	if (s->max_file_size > 0 && (int64_t)(off + len) > s->max_file_size)
		h->poison = POISON_SIZE;
	else if ((int64_t)(off + len) > h->end && space_low(s, (int64_t)len))
		h->poison = POISON_SPACE;
	if (h->poison == POISON_SPACE) {
		log_warnx("sftp: %s: no space: the spool's file system would "
		    "go below server.min_free_space (%lld bytes); write "
		    "refused", h->path, (long long)s->min_free_space);
		send_status(s, id, SSH_FX_FAILURE, poison_text(s, h, why,
		    sizeof(why)));
		event_handle_why(s, "write", h, SSH_FX_FAILURE,
		    SFTP_REASON_NO_SPACE);
		return 0;
	}
	if (h->poison != POISON_NONE) {
		log_info("sftp: %s: %s", h->path, poison_text(s, h, why,
		    sizeof(why)));
		send_status(s, id, SSH_FX_FAILURE, why);
		event_handle_why(s, "write", h, SSH_FX_FAILURE, why);
		return 0;
	}
	for (done = 0; done < len; done += (size_t)n) {
		n = pwrite(h->fd, data + done, len - done,
		    (off_t)(off + done));
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			err = errno;
			h->failed = 1;	/* never reported complete */
			if (errno_reason(err) != NULL) {
				h->poison = POISON_SPACE;
				log_warnx("sftp: write %s: no space (%s)",
				    h->path, strerror(err));
			} else
				log_warn("sftp: write %s", h->path);
			send_errno(s, id, err, &st);
			event_handle_why(s, "write", h, st, errno_reason(err));
			return 0;
		}
	}
	if ((int64_t)(off + len) > h->end)
		h->end = (int64_t)(off + len);
	h->sent += (int64_t)len;
	/*
	 * Start write-back of every further WRITEBACK_CHUNK written in order,
	 * without waiting for it: the fsync at CLOSE (which the partner waits
	 * for) then has only the tail left to write. A hint; errors surface
	 * at that fsync.
	 */
	if (h->hashed_to - h->flushed_to >= WRITEBACK_CHUNK && !h->dirty) {
		(void)sync_file_range(h->fd, h->flushed_to,
		    h->hashed_to - h->flushed_to, SYNC_FILE_RANGE_WRITE);
		h->flushed_to = h->hashed_to;
	}
	if (!h->dirty) {
		if ((int64_t)off == h->hashed_to) {
			if (sha256_update(h->sha, data, len) == -1)
				h->dirty = 1;
			else
				h->hashed_to += (int64_t)len;
		} else if ((int64_t)off < h->hashed_to && len > 0)
			h->dirty = 1;	/* rewrote hashed bytes: rehash */
	}
	send_status(s, id, SSH_FX_OK, NULL);
	return 0;
}

/* STAT and LSTAT: there are no symlinks to follow, so both are lstat, and a
 * symlink that is there anyway is refused. */
static int
stat_common(struct sftp *s, uint32_t id, struct msg *m, const char *op)
{
	struct cpath cp;
	struct stat st;
	const char *text;
	uint32_t code;
	int pfd;

	if (get_path(m, &cp) == -1)
		return -1;
	if ((code = path_check(&cp, 0, &text)) != SSH_FX_OK) {
		send_status(s, id, code, text);
		event(s, op, &cp, NULL, code, 0);
		return 0;
	}
	if ((pfd = open_parent(s, &cp, O_PATH)) == -1 ||
	    fstatat(pfd, cp.base, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		send_errno(s, id, errno, &code);
	} else if (S_ISLNK(st.st_mode)) {
		code = SSH_FX_PERMISSION_DENIED;
		send_status(s, id, code, "symbolic links are not followed");
	} else {
		code = SSH_FX_OK;
		send_attrs(s, id, &st);
	}
	if (pfd != -1)
		close(pfd);
	event(s, op, &cp, NULL, code, 0);
	return 0;
}

static int
h_stat(struct sftp *s, uint32_t id, struct msg *m)
{
	return stat_common(s, id, m, "stat");
}

static int
h_lstat(struct sftp *s, uint32_t id, struct msg *m)
{
	return stat_common(s, id, m, "lstat");
}

static int
handle_fd(const struct handle *h)
{
	return h->kind == H_DIR ? dirfd(h->dir) : h->fd;
}

static int
h_fstat(struct sftp *s, uint32_t id, struct msg *m)
{
	const uint8_t *hb;
	size_t hl;
	struct handle *h;
	struct stat st;
	uint32_t code;

	if (get_string(m, &hb, &hl) == -1)
		return -1;
	if ((h = handle_get(s, hb, hl)) == NULL)
		send_bad_handle(s, id);
	else if (fstat(handle_fd(h), &st) == -1)
		send_errno(s, id, errno, &code);
	else
		send_attrs(s, id, &st);
	return 0;
}

/* The attributes a client may set: times only. */
static uint32_t
attrs_check(const struct attrs *a, const char **text)
{
	if (a->flags & SSH_FILEXFER_ATTR_SIZE) {
		*text = "changing the size is not permitted";
		return SSH_FX_PERMISSION_DENIED;
	}
	return SSH_FX_OK;
}

static void
attrs_times(const struct attrs *a, struct timespec ts[2])
{
	ts[0].tv_sec = a->atime;
	ts[0].tv_nsec = 0;
	ts[1].tv_sec = a->mtime;
	ts[1].tv_nsec = 0;
}

static int
setstat_common(struct sftp *s, uint32_t id, struct msg *m, const char *op)
{
	struct cpath cp;
	struct attrs a;
	struct stat st;
	struct timespec ts[2];
	const char *text = NULL;
	uint32_t code;
	int pfd = -1;

	if (get_path(m, &cp) == -1 || get_attrs(m, &a) == -1)
		return -1;
	if ((code = path_check(&cp, 0, &text)) != SSH_FX_OK ||
	    (code = receipts_check(s, &cp, &text)) != SSH_FX_OK ||
	    (code = attrs_check(&a, &text)) != SSH_FX_OK)
		goto done;
	if ((pfd = open_parent(s, &cp, O_PATH)) == -1) {
		code = errno_status(errno, &text);
		goto done;
	}
	if (a.flags & SSH_FILEXFER_ATTR_ACMODTIME) {
		attrs_times(&a, ts);
		if (utimensat(pfd, cp.base, ts, AT_SYMLINK_NOFOLLOW) == -1) {
			code = errno_status(errno, &text);
			goto done;
		}
	} else if (fstatat(pfd, cp.base, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		/* nothing to change, but say so if the name is not there */
		code = errno_status(errno, &text);
		goto done;
	}
 done:
	if (pfd != -1)
		close(pfd);
	send_status(s, id, code, text);
	event(s, op, &cp, NULL, code, 1);
	return 0;
}

static int
h_setstat(struct sftp *s, uint32_t id, struct msg *m)
{
	return setstat_common(s, id, m, "setstat");
}

static int
h_fsetstat(struct sftp *s, uint32_t id, struct msg *m)
{
	const uint8_t *hb;
	size_t hl;
	struct handle *h;
	struct attrs a;
	struct timespec ts[2];
	const char *text = NULL;
	uint32_t code;

	if (get_string(m, &hb, &hl) == -1 || get_attrs(m, &a) == -1)
		return -1;
	if ((h = handle_get(s, hb, hl)) == NULL) {
		send_bad_handle(s, id);
		return 0;
	}
	if (path_under(h->path, s->receipts)) {
		code = SSH_FX_PERMISSION_DENIED;
		text = "permission denied: the receipts folder is read-only "
		    "(the gateway writes its delivery receipts there)";
	} else if ((code = attrs_check(&a, &text)) == SSH_FX_OK &&
	    (a.flags & SSH_FILEXFER_ATTR_ACMODTIME)) {
		attrs_times(&a, ts);
		if (futimens(handle_fd(h), ts) == -1)
			code = errno_status(errno, &text);
	}
	send_status(s, id, code, text);
	event_handle(s, "fsetstat", h, code);
	return 0;
}

static int
h_opendir(struct sftp *s, uint32_t id, struct msg *m)
{
	struct cpath cp;
	struct handle *h;
	const char *text = NULL;
	uint32_t code, idx;
	DIR *d;
	int fd;

	if (get_path(m, &cp) == -1)
		return -1;
	if ((code = path_check(&cp, 0, &text)) != SSH_FX_OK)
		goto done;
	if ((fd = open_beneath(s->rootfd, cp.norm, O_RDONLY | O_DIRECTORY,
	    0)) == -1) {
		code = errno_status(errno, &text);
		goto done;
	}
	if ((d = fdopendir(fd)) == NULL) {
		code = errno_status(errno, &text);
		close(fd);
		goto done;
	}
	if ((h = handle_new(s, H_DIR, cp.norm, &idx)) == NULL) {
		closedir(d);
		code = SSH_FX_FAILURE;
		text = "too many open files";
		goto done;
	}
	h->dir = d;
	send_handle(s, id, idx);
	event(s, "opendir", &cp, NULL, SSH_FX_OK, 0);
	return 0;
 done:
	send_status(s, id, code, text);
	event(s, "opendir", &cp, NULL, code, 0);
	return 0;
}

static int
h_readdir(struct sftp *s, uint32_t id, struct msg *m)
{
	const uint8_t *hb;
	size_t hl, start, countpos;
	struct handle *h;
	struct dirent *de;
	struct stat st;
	char line[PATH_MAX + 128];
	const char *lookup;
	uint32_t count = 0, code;
	int dfd, top, err = 0;

	if (get_string(m, &hb, &hl) == -1)
		return -1;
	if ((h = handle_get(s, hb, hl)) == NULL || h->kind != H_DIR) {
		send_bad_handle(s, id);
		return 0;
	}
	dfd = dirfd(h->dir);
	top = strcmp(h->path, ".") == 0;
	start = reply_begin(s, SSH_FXP_NAME, id);
	countpos = s->outlen;
	put_u32(s, 0);
	while (count < SFTP_READDIR_BATCH && !s->oom) {
		errno = 0;
		if ((de = readdir(h->dir)) == NULL) {
			err = errno;
			break;
		}
		/* the root's ".." is shown as the root itself */
		lookup = (top && strcmp(de->d_name, "..") == 0) ? "." :
		    de->d_name;
		if (fstatat(dfd, lookup, &st, AT_SYMLINK_NOFOLLOW) == -1)
			continue;	/* gone meanwhile */
		longname(&st, de->d_name, line, sizeof(line));
		put_str(s, de->d_name);
		put_str(s, line);
		put_stat(s, &st);
		count++;
	}
	if (s->oom)
		return 0;
	if (count == 0) {
		s->outlen = start;
		if (err != 0)
			send_errno(s, id, err, &code);
		else
			send_status(s, id, SSH_FX_EOF, NULL);
		return 0;
	}
	put_be32(s->out + countpos, count);
	reply_end(s, start);
	h->rbytes += count;
	h->nreads++;
	return 0;
}

static int
h_remove(struct sftp *s, uint32_t id, struct msg *m)
{
	struct cpath cp;
	struct stat st;
	const char *text = NULL;
	uint32_t code;
	int pfd = -1;

	if (get_path(m, &cp) == -1)
		return -1;
	if ((code = path_check(&cp, 0, &text)) != SSH_FX_OK ||
	    (code = receipts_check(s, &cp, &text)) != SSH_FX_OK)
		goto done;
	if (is_root(&cp)) {
		code = SSH_FX_PERMISSION_DENIED;
		text = "the top directory cannot be removed";
		goto done;
	}
	if ((pfd = open_parent(s, &cp, O_PATH)) == -1 ||
	    fstatat(pfd, cp.base, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		code = errno_status(errno, &text);
		goto done;
	}
	if (S_ISLNK(st.st_mode)) {
		code = SSH_FX_PERMISSION_DENIED;
		text = "symbolic links are not followed";
	} else if (unlinkat(pfd, cp.base, 0) == -1)
		code = errno_status(errno, &text);
 done:
	if (pfd != -1)
		close(pfd);
	send_status(s, id, code, text);
	event(s, "remove", &cp, NULL, code, 1);
	return 0;
}

static int
h_mkdir(struct sftp *s, uint32_t id, struct msg *m)
{
	struct cpath cp;
	struct attrs a;
	const char *text = NULL;
	uint32_t code;
	int pfd = -1;

	if (get_path(m, &cp) == -1 || get_attrs(m, &a) == -1)
		return -1;
	if ((code = path_check(&cp, 0, &text)) != SSH_FX_OK ||
	    (code = receipts_check(s, &cp, &text)) != SSH_FX_OK)
		goto done;
	if ((pfd = open_parent(s, &cp, O_PATH)) == -1 ||
	    mkdirat(pfd, cp.base, 0750) == -1)	/* client modes ignored */
		code = errno_status(errno, &text);
 done:
	if (pfd != -1)
		close(pfd);
	send_status(s, id, code, text);
	event(s, "mkdir", &cp, NULL, code, 1);
	return 0;
}

static int
h_rmdir(struct sftp *s, uint32_t id, struct msg *m)
{
	struct cpath cp;
	const char *text = NULL;
	uint32_t code;
	int pfd = -1;

	if (get_path(m, &cp) == -1)
		return -1;
	if ((code = path_check(&cp, 0, &text)) != SSH_FX_OK ||
	    (code = receipts_check(s, &cp, &text)) != SSH_FX_OK)
		goto done;
	if (is_root(&cp)) {
		code = SSH_FX_PERMISSION_DENIED;
		text = "the top directory cannot be removed";
		goto done;
	}
	if ((pfd = open_parent(s, &cp, O_PATH)) == -1 ||
	    unlinkat(pfd, cp.base, AT_REMOVEDIR) == -1)
		code = errno_status(errno, &text);
 done:
	if (pfd != -1)
		close(pfd);
	send_status(s, id, code, text);
	event(s, "rmdir", &cp, NULL, code, 1);
	return 0;
}

static void
send_name1(struct sftp *s, uint32_t id, const char *name)
{
	size_t start = reply_begin(s, SSH_FXP_NAME, id);

	put_u32(s, 1);
	put_str(s, name);
	put_str(s, name);
	put_u32(s, 0);		/* no attributes */
	reply_end(s, start);
}

/* REALPATH and expand-path: lexical, ".." clamped at the root. */
static void
realpath_reply(struct sftp *s, uint32_t id, struct cpath *cp, const char *op)
{
	char out[PATH_MAX + 1];
	const char *text = NULL;
	uint32_t code;

	if (cp->rawlen == 0) {
		cp->raw = (const uint8_t *)".";
		cp->rawlen = 1;
	}
	if ((code = path_check(cp, PATH_CLAMP, &text)) == SSH_FX_OK &&
	    !is_root(cp) && !allowed(s, PERM_LIST)) {
		/* the top directory always: every client starts there */
		code = SSH_FX_PERMISSION_DENIED;
		text = denied_text(PERM_LIST);
	} else if (code == SSH_FX_OK &&
	    path_to_client(cp->norm, out, sizeof(out)) == -1) {
		code = SSH_FX_FAILURE;
		text = "file name too long";
	}
	if (code == SSH_FX_OK)
		send_name1(s, id, out);
	else
		send_status(s, id, code, text);
	event(s, op, cp, NULL, code, 0);
}

static int
h_realpath(struct sftp *s, uint32_t id, struct msg *m)
{
	struct cpath cp;

	if (get_path(m, &cp) == -1)
		return -1;
	/* an optional control byte and compose paths (v6) are not v3 */
	realpath_reply(s, id, &cp, "realpath");
	return 0;
}

static int
rename_common(struct sftp *s, uint32_t id, struct msg *m, unsigned int flags,
    const char *op)
{
	struct cpath from, to;
	struct stat st;
	const char *text = NULL;
	uint32_t code;
	int ofd = -1, nfd = -1, noreplace;

	if (get_path(m, &from) == -1 || get_path(m, &to) == -1)
		return -1;
	if ((code = path_check(&from, 0, &text)) != SSH_FX_OK ||
	    (code = path_check(&to, 0, &text)) != SSH_FX_OK ||
	    (code = receipts_check(s, &from, &text)) != SSH_FX_OK ||
	    (code = receipts_check(s, &to, &text)) != SSH_FX_OK)
		goto done;
	if (is_root(&from) || is_root(&to)) {
		code = SSH_FX_PERMISSION_DENIED;
		text = "the top directory cannot be renamed";
		goto done;
	}
	if ((ofd = open_parent(s, &from, O_PATH)) == -1 ||
	    (nfd = open_parent(s, &to, O_PATH)) == -1 ||
	    fstatat(ofd, from.base, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		code = errno_status(errno, &text);
		goto done;
	}
	/* replacing an existing name needs "overwrite" */
	noreplace = !(flags & RENAME_NOREPLACE) && !allowed(s, PERM_OVERWRITE);
	if (noreplace)
		flags |= RENAME_NOREPLACE;
	if (S_ISLNK(st.st_mode)) {
		code = SSH_FX_PERMISSION_DENIED;
		text = "symbolic links are not followed";
	} else if (renameat2(ofd, from.base, nfd, to.base, flags) == -1) {
		if (errno == EEXIST && noreplace) {
			code = SSH_FX_PERMISSION_DENIED;
			text = denied_text(PERM_OVERWRITE);
		} else
			code = errno_status(errno, &text);
	}
 done:
	if (ofd != -1)
		close(ofd);
	if (nfd != -1)
		close(nfd);
	send_status(s, id, code, text);
	event(s, op, &from, &to, code, 1);
	return 0;
}

static int
h_rename(struct sftp *s, uint32_t id, struct msg *m)
{
	return rename_common(s, id, m, RENAME_NOREPLACE, "rename");
}

static int
h_readlink(struct sftp *s, uint32_t id, struct msg *m)
{
	struct cpath cp;
	struct stat st;
	const char *text = NULL;
	uint32_t code;
	int pfd = -1;

	if (get_path(m, &cp) == -1)
		return -1;
	if ((code = path_check(&cp, 0, &text)) != SSH_FX_OK)
		goto done;
	if ((pfd = open_parent(s, &cp, O_PATH)) == -1 ||
	    fstatat(pfd, cp.base, &st, AT_SYMLINK_NOFOLLOW) == -1)
		code = errno_status(errno, &text);
	else {
		code = SSH_FX_FAILURE;
		text = S_ISLNK(st.st_mode) ? "symbolic links are not supported"
		    : "not a symbolic link";
	}
 done:
	if (pfd != -1)
		close(pfd);
	send_status(s, id, code, text);
	event(s, "readlink", &cp, NULL, code, 0);
	return 0;
}

static int
h_symlink(struct sftp *s, uint32_t id, struct msg *m)
{
	struct cpath a, b;
	uint32_t code = SSH_FX_PERMISSION_DENIED;

	if (get_path(m, &a) == -1 || get_path(m, &b) == -1)
		return -1;
	send_status(s, id, code, "symbolic links are not permitted");
	a.rc = b.rc = PATH_INVALID;	/* report the raw bytes */
	event(s, "symlink", &a, &b, code, 1);
	return 0;
}

/* ---------------------------------------------------------- extended -- */

static int
x_posix_rename(struct sftp *s, uint32_t id, struct msg *m)
{
	return rename_common(s, id, m, 0, "posix-rename");
}

static void
send_statvfs(struct sftp *s, uint32_t id, const struct statvfs *v)
{
	size_t start = reply_begin(s, SSH_FXP_EXTENDED_REPLY, id);
	uint64_t flag = 0;

	if (v->f_flag & ST_RDONLY)
		flag |= SSH_FXE_STATVFS_ST_RDONLY;
	if (v->f_flag & ST_NOSUID)
		flag |= SSH_FXE_STATVFS_ST_NOSUID;
	put_u64(s, v->f_bsize);
	put_u64(s, v->f_frsize);
	put_u64(s, v->f_blocks);
	put_u64(s, v->f_bfree);
	put_u64(s, v->f_bavail);
	put_u64(s, v->f_files);
	put_u64(s, v->f_ffree);
	put_u64(s, v->f_favail);
	put_u64(s, v->f_fsid);
	put_u64(s, flag);
	put_u64(s, v->f_namemax);
	reply_end(s, start);
}

static int
x_statvfs(struct sftp *s, uint32_t id, struct msg *m)
{
	struct cpath cp;
	struct statvfs v;
	const char *text = NULL;
	uint32_t code;
	int fd;

	if (get_path(m, &cp) == -1)
		return -1;
	if ((code = path_check(&cp, 0, &text)) == SSH_FX_OK) {
		if ((fd = open_beneath(s->rootfd, cp.norm, O_PATH, 0)) == -1 ||
		    fstatvfs(fd, &v) == -1)
			code = errno_status(errno, &text);
		if (fd != -1)
			close(fd);
	}
	if (code == SSH_FX_OK)
		send_statvfs(s, id, &v);
	else
		send_status(s, id, code, text);
	event(s, "statvfs", &cp, NULL, code, 0);
	return 0;
}

static int
x_fstatvfs(struct sftp *s, uint32_t id, struct msg *m)
{
	const uint8_t *hb;
	size_t hl;
	struct handle *h;
	struct statvfs v;
	uint32_t code;

	if (get_string(m, &hb, &hl) == -1)
		return -1;
	if ((h = handle_get(s, hb, hl)) == NULL)
		send_bad_handle(s, id);
	else if (fstatvfs(handle_fd(h), &v) == -1)
		send_errno(s, id, errno, &code);
	else
		send_statvfs(s, id, &v);
	return 0;
}

static int
x_hardlink(struct sftp *s, uint32_t id, struct msg *m)
{
	struct cpath a, b;
	uint32_t code = SSH_FX_PERMISSION_DENIED;

	if (get_path(m, &a) == -1 || get_path(m, &b) == -1)
		return -1;
	send_status(s, id, code, "hard links are not permitted");
	a.rc = b.rc = PATH_INVALID;	/* report the raw bytes */
	event(s, "hardlink", &a, &b, code, 1);
	return 0;
}

static int
x_fsync(struct sftp *s, uint32_t id, struct msg *m)
{
	const uint8_t *hb;
	size_t hl;
	struct handle *h;
	uint32_t code;

	if (get_string(m, &hb, &hl) == -1)
		return -1;
	if ((h = handle_get(s, hb, hl)) == NULL || h->kind != H_FILE) {
		send_bad_handle(s, id);
		return 0;
	}
	if (fsync(h->fd) == -1) {
		int err = errno;

		/* never trusted again: this upload cannot complete */
		if (h->writable)
			h->failed = 1;
		log_warn("sftp: fsync %s", h->path);
		send_errno(s, id, err, &code);
		event_handle(s, "fsync", h, code);
		return 0;
	}
	send_status(s, id, SSH_FX_OK, NULL);
	return 0;
}

static int
x_lsetstat(struct sftp *s, uint32_t id, struct msg *m)
{
	return setstat_common(s, id, m, "lsetstat");
}

static int
x_limits(struct sftp *s, uint32_t id, struct msg *m)
{
	size_t start = reply_begin(s, SSH_FXP_EXTENDED_REPLY, id);

	put_u64(s, SFTP_MAX_MSG_LENGTH);
	put_u64(s, SFTP_MAX_READ_LENGTH);
	put_u64(s, SFTP_MAX_READ_LENGTH);
	put_u64(s, s->max_handles);
	reply_end(s, start);
	return 0;
}

static int
x_expand_path(struct sftp *s, uint32_t id, struct msg *m)
{
	struct cpath cp;

	if (get_path(m, &cp) == -1)
		return -1;
	if (cp.rawlen > 0 && cp.raw[0] == '~') {
		if (cp.rawlen == 1) {
			cp.raw = (const uint8_t *)"/";
		} else if (cp.raw[1] == '/') {
			cp.raw++;	/* "~/x" is "/x" */
			cp.rawlen--;
		} else {
			send_status(s, id, SSH_FX_NO_SUCH_FILE,
			    "no such user");
			return 0;
		}
	}
	realpath_reply(s, id, &cp, "expand-path");
	return 0;
}

struct handler {
	const char	*name;
	int		(*fn)(struct sftp *, uint32_t, struct msg *);
	unsigned	 perm;		/* as for extensions[] */
	int		 args;
};

/*
 * perm: the role must grant one of these bits (0: none needed; handle
 * requests need the permission the handle was opened with, realpath and
 * expand-path "list" except for the top directory, and the rest is checked
 * in the handler). args: what a refusal reports.
 */
static const struct {
	const char	*name;
	const char	*version;	/* advertised in VERSION */
	int		(*fn)(struct sftp *, uint32_t, struct msg *);
	const char	*op;		/* in events */
	unsigned	 perm;
	int		 args;
} extensions[] = {
	{ "posix-rename@openssh.com",	"1", x_posix_rename, "posix-rename",
	    PERM_RENAME, ARG_PATH2 },
	{ "statvfs@openssh.com",	"2", x_statvfs, "statvfs",
	    PERM_LIST, ARG_PATH },
	{ "fstatvfs@openssh.com",	"2", x_fstatvfs, "fstatvfs",
	    PERM_LIST, ARG_HANDLE },
	{ "hardlink@openssh.com",	"1", x_hardlink, "hardlink",
	    0, ARG_PATH2 },
	{ "fsync@openssh.com",		"1", x_fsync, "fsync",
	    0, ARG_HANDLE },
	{ "lsetstat@openssh.com",	"1", x_lsetstat, "lsetstat",
	    PERM_UPLOAD | PERM_OVERWRITE, ARG_PATH },
	{ "limits@openssh.com",		"1", x_limits, "limits",
	    0, ARG_NONE },
	{ "expand-path@openssh.com",	"1", x_expand_path, "expand-path",
	    0, ARG_PATH },
};

static int
h_extended(struct sftp *s, uint32_t id, struct msg *m)
{
	const uint8_t *name;
	size_t len, i;

	if (get_string(m, &name, &len) == -1)
		return -1;
	for (i = 0; i < sizeof(extensions) / sizeof(extensions[0]); i++) {
		if (strlen(extensions[i].name) != len ||
		    memcmp(extensions[i].name, name, len) != 0)
			continue;
		if (!allowed(s, extensions[i].perm)) {
			deny(s, id, extensions[i].op, extensions[i].args, m,
			    extensions[i].perm);
			return 0;
		}
		return extensions[i].fn(s, id, m);
	}
	send_status(s, id, SSH_FX_OP_UNSUPPORTED, "unknown extended request");
	return 0;
}

#define P_OPEN	(PERM_UPLOAD | PERM_OVERWRITE | PERM_READ)
#define P_TIMES	(PERM_UPLOAD | PERM_OVERWRITE)

/* Which request may be made under which permission (see sftp.h): OPEN is
 * refined in h_open (read, upload or overwrite by what the name is). */
static const struct handler handlers[] = {
	[SSH_FXP_OPEN]	   = { "open",	   h_open,     P_OPEN,	    ARG_PATH },
	[SSH_FXP_CLOSE]	   = { "close",	   h_close,    0,	    ARG_HANDLE },
	[SSH_FXP_READ]	   = { "read",	   h_read,     0,	    ARG_HANDLE },
	[SSH_FXP_WRITE]	   = { "write",	   h_write,    0,	    ARG_HANDLE },
	[SSH_FXP_LSTAT]	   = { "lstat",	   h_lstat,    PERM_LIST,   ARG_PATH },
	[SSH_FXP_FSTAT]	   = { "fstat",	   h_fstat,    PERM_LIST,   ARG_HANDLE },
	[SSH_FXP_SETSTAT]  = { "setstat",  h_setstat,  P_TIMES,	    ARG_PATH },
	[SSH_FXP_FSETSTAT] = { "fsetstat", h_fsetstat, P_TIMES,	    ARG_HANDLE },
	[SSH_FXP_OPENDIR]  = { "opendir",  h_opendir,  PERM_LIST,   ARG_PATH },
	[SSH_FXP_READDIR]  = { "readdir",  h_readdir,  PERM_LIST,   ARG_HANDLE },
	[SSH_FXP_REMOVE]   = { "remove",   h_remove,   PERM_DELETE, ARG_PATH },
	[SSH_FXP_MKDIR]	   = { "mkdir",	   h_mkdir,    PERM_MKDIR,  ARG_PATH },
	[SSH_FXP_RMDIR]	   = { "rmdir",	   h_rmdir,    PERM_DELETE, ARG_PATH },
	[SSH_FXP_REALPATH] = { "realpath", h_realpath, 0,	    ARG_PATH },
	[SSH_FXP_STAT]	   = { "stat",	   h_stat,     PERM_LIST,   ARG_PATH },
	[SSH_FXP_RENAME]   = { "rename",   h_rename,   PERM_RENAME, ARG_PATH2 },
	[SSH_FXP_READLINK] = { "readlink", h_readlink, PERM_LIST,   ARG_PATH },
	[SSH_FXP_SYMLINK]  = { "symlink",  h_symlink,  0,	    ARG_PATH2 },
	[SSH_FXP_EXTENDED] = { "extended", h_extended, 0,	    ARG_NONE },
};

/* ------------------------------------------------------------ engine -- */

static int
do_init(struct sftp *s, struct msg *m)
{
	uint32_t version;
	size_t start, i;

	if (get_u32(m, &version) == -1) {
		log_warnx("sftp: truncated INIT");
		return -1;
	}
	s->initialized = 1;
	start = s->outlen;
	put_u32(s, 0);
	put_u8(s, SSH_FXP_VERSION);
	put_u32(s, SFTP_VERSION);
	for (i = 0; i < sizeof(extensions) / sizeof(extensions[0]); i++) {
		put_str(s, extensions[i].name);
		put_str(s, extensions[i].version);
	}
	reply_end(s, start);
	log_debug("sftp: client version %u", version);
	return s->oom ? -1 : 0;
}

/* One whole packet (type byte onwards). 0, or -1: end the session. */
static int
process(struct sftp *s, const uint8_t *pkt, size_t len)
{
	struct msg m = { pkt + 1, len - 1 };
	uint8_t type = pkt[0];
	uint32_t id;

	if (!s->initialized) {
		if (type != SSH_FXP_INIT) {
			log_warnx("sftp: request type %u before INIT", type);
			return -1;
		}
		return do_init(s, &m);
	}
	if (type == SSH_FXP_INIT) {
		log_warnx("sftp: second INIT");
		return -1;
	}
	if (get_u32(&m, &id) == -1) {
		log_warnx("sftp: request type %u without an id", type);
		return -1;
	}
	if (type >= sizeof(handlers) / sizeof(handlers[0]) ||
	    handlers[type].fn == NULL) {
		send_status(s, id, SSH_FX_OP_UNSUPPORTED,
		    "unknown request type");
		return s->oom ? -1 : 0;
	}
	if (!allowed(s, handlers[type].perm)) {
		deny(s, id, handlers[type].name, handlers[type].args, &m,
		    handlers[type].perm);
		return s->oom ? -1 : 0;
	}
	if (handlers[type].fn(s, id, &m) == -1) {
		log_warnx("sftp: malformed %s request (id %u)",
		    handlers[type].name, id);
		return -1;
	}
	/* bytes after the last field are ignored, as OpenSSH does */
	return s->oom ? -1 : 0;
}

static int
check_len(uint32_t len)
{
	if (len < 5 || len > SFTP_MAX_MSG_LENGTH) {
		log_warnx("sftp: packet length %u outside 5..%u", len,
		    SFTP_MAX_MSG_LENGTH);
		return -1;
	}
	return 0;
}

int
sftp_input(struct sftp *s, const uint8_t *data, size_t len)
{
	size_t n;
	uint32_t msglen;
	uint8_t *p;

	if (s->dead)
		return -1;
	while (len > 0) {
		/* whole packets straight from the caller's buffer */
		if (s->hdrlen == 0 && len >= 4) {
			msglen = be32(data);
			if (check_len(msglen) == -1)
				goto dead;
			if (len - 4 >= msglen) {
				if (process(s, data + 4, msglen) == -1)
					goto dead;
				data += 4 + (size_t)msglen;
				len -= 4 + (size_t)msglen;
				continue;
			}
		}
		/* otherwise reassemble one packet */
		if (s->hdrlen < 4) {
			n = 4 - s->hdrlen < len ? 4 - s->hdrlen : len;
			memcpy(s->hdr + s->hdrlen, data, n);
			s->hdrlen += n;
			data += n;
			len -= n;
			if (s->hdrlen < 4)
				break;
			s->msglen = be32(s->hdr);
			if (check_len(s->msglen) == -1)
				goto dead;
			if (s->incap < s->msglen) {
				if ((p = realloc(s->in, s->msglen)) == NULL) {
					log_warn("sftp: input buffer");
					goto dead;
				}
				s->in = p;
				s->incap = s->msglen;
			}
			s->inlen = 0;
			continue;
		}
		n = s->msglen - s->inlen < len ? s->msglen - s->inlen : len;
		memcpy(s->in + s->inlen, data, n);
		s->inlen += n;
		data += n;
		len -= n;
		if (s->inlen == s->msglen) {
			s->hdrlen = 0;
			s->inlen = 0;
			if (process(s, s->in, s->msglen) == -1)
				goto dead;
		}
	}
	return 0;
 dead:
	s->dead = 1;
	return -1;
}

const uint8_t *
sftp_output(struct sftp *s, size_t *len)
{
	*len = s->outlen - s->outoff;
	return s->out + s->outoff;
}

void
sftp_output_consume(struct sftp *s, size_t n)
{
	if (n > s->outlen - s->outoff)
		n = s->outlen - s->outoff;
	s->outoff += n;
	if (s->outoff == s->outlen)
		s->outoff = s->outlen = 0;
	else if (s->outoff >= 64 * 1024 && s->outoff * 2 >= s->outlen) {
		memmove(s->out, s->out + s->outoff, s->outlen - s->outoff);
		s->outlen -= s->outoff;
		s->outoff = 0;
	}
}

struct sftp *
sftp_new(const struct sftp_params *p)
{
	struct sftp *s;
	uint32_t i;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->rootfd = p->rootfd;
	s->hooks = p->hooks;
	s->perms = p->perms != 0 ? p->perms & PERM_ALL : SFTP_DEFAULT_PERMS;
	s->max_file_size = p->max_file_size > 0 ? p->max_file_size : 0;
	s->min_free_space = p->min_free_space > 0 ? p->min_free_space : 0;
	s->receipts = p->receipts_dir != NULL && p->receipts_dir[0] != '\0' ?
	    p->receipts_dir : NULL;
	s->max_handles = p->max_handles ? p->max_handles : SFTP_DEFAULT_HANDLES;
	if (s->max_handles > SFTP_MAX_HANDLES)
		s->max_handles = SFTP_MAX_HANDLES;
	if ((s->handles = calloc(s->max_handles, sizeof(*s->handles))) ==
	    NULL) {
		free(s);
		return NULL;
	}
	for (i = 0; i < s->max_handles; i++) {
		s->handles[i].fd = s->handles[i].dirfd = -1;
		s->handles[i].gen = 1;
	}
	return s;
}

uint32_t
sftp_writers(const struct sftp *s)
{
	uint32_t i, n = 0;

	for (i = 0; i < s->max_handles; i++)
		if (s->handles[i].kind == H_FILE && s->handles[i].writable)
			n++;
	return n;
}

void
sftp_free(struct sftp *s)
{
	uint32_t i;

	if (s == NULL)
		return;
	/* open write handles are dropped, not completed: they stay 0600 */
	for (i = 0; i < s->max_handles; i++)
		if (s->handles[i].kind != H_FREE) {
			handle_report(s, &s->handles[i], 1);
			handle_release(s, &s->handles[i]);
		}
	free(s->handles);
	free(s->in);
	free(s->out);
	free(s);
}
