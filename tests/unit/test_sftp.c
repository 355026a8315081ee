/*
 * test_sftp.c - the SFTP v3 engine (server/sftp.c), driven by packets built
 * here and fed as bytes, against a real temp directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "server/sftp.h"
#include "server/sftp_internal.h"

/* ------------------------------------------------------------ fixture -- */

struct env {
	char		 top[200];		/* temp dir: root/ and outside/ */
	char		 root[256];
	char		 outside[256];
	int		 rootfd;
	struct sftp	*s;
	uint32_t	 nextid;
	/* file_complete hook */
	int		 hook_rc;
	int		 hook_calls;
	int		 hook_link;		/* link the file to top/keep.N */
	int64_t		 hook_size;
	char		 hook_sha[SHA256_HEX];
	char		 hook_path[PATH_MAX];
	mode_t		 hook_mode;
	/* event hook */
	int		 events;
	char		 ev_op[32];
	char		 ev_path[PATH_MAX];
	char		 ev_path2[PATH_MAX];
	char		 ev_reason[256];
	uint32_t	 ev_status;
	int		 denials;		/* events with PERMISSION_DENIED */
	int		 denials_seen;		/* ... checked by expect_denied */
	/* access hook: the calls, the last one's report and path */
	int		 accesses;
	struct sftp_access acc;
	char		 acc_path[PATH_MAX];
	/* engine params; perms 0 here means PERM_ALL */
	unsigned	 perms;
	int64_t		 max_file_size;
	int64_t		 min_free_space;
};

static int
hook_complete(void *arg, const struct sftp_file_info *fi)
{
	struct env *e = arg;
	struct stat st;
	char name[PATH_MAX];

	e->hook_calls++;
	e->hook_size = fi->size;
	snprintf(e->hook_sha, sizeof(e->hook_sha), "%s", fi->sha256);
	snprintf(e->hook_path, sizeof(e->hook_path), "%s", fi->path);
	assert_int_equal(fstat(fi->fd, &st), 0);
	e->hook_mode = st.st_mode & 07777;
	if (e->hook_link) {
		snprintf(name, sizeof(name), "%s/keep.%d", e->top, e->hook_calls);
		assert_int_equal(linkat(e->rootfd, fi->path, AT_FDCWD, name, 0), 0);
	}
	return e->hook_rc;
}

static void
hook_event(void *arg, const char *op, const char *path, const char *path2,
    uint32_t status, const char *reason)
{
	struct env *e = arg;

	e->events++;
	snprintf(e->ev_reason, sizeof(e->ev_reason), "%s", reason ? reason :
	    "(null)");
	snprintf(e->ev_op, sizeof(e->ev_op), "%s", op);
	snprintf(e->ev_path, sizeof(e->ev_path), "%s", path ? path : "(null)");
	snprintf(e->ev_path2, sizeof(e->ev_path2), "%s", path2 ? path2 : "(null)");
	e->ev_status = status;
	if (status == SSH_FX_PERMISSION_DENIED)
		e->denials++;
}

static void
hook_access(void *arg, const struct sftp_access *a)
{
	struct env *e = arg;

	e->accesses++;
	e->acc = *a;
	snprintf(e->acc_path, sizeof(e->acc_path), "%s", a->path);
	e->acc.path = e->acc_path;
}

static struct sftp *
engine(struct env *e, uint32_t max_handles)
{
	struct sftp_params p;

	memset(&p, 0, sizeof(p));
	p.rootfd = e->rootfd;
	p.max_handles = max_handles;
	p.perms = e->perms != 0 ? e->perms : PERM_ALL;
	p.max_file_size = e->max_file_size;
	p.min_free_space = e->min_free_space;
	p.hooks.arg = e;
	p.hooks.file_complete = hook_complete;
	p.hooks.event = hook_event;
	p.hooks.access = hook_access;
	return sftp_new(&p);
}

static int
setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	snprintf(e->top, sizeof(e->top), "/tmp/test_sftp.XXXXXX");
	assert_non_null(mkdtemp(e->top));
	snprintf(e->root, sizeof(e->root), "%s/root", e->top);
	snprintf(e->outside, sizeof(e->outside), "%s/outside", e->top);
	assert_int_equal(mkdir(e->root, 0700), 0);
	assert_int_equal(mkdir(e->outside, 0700), 0);
	e->rootfd = open(e->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(e->rootfd >= 0);
	e->s = engine(e, 0);
	assert_non_null(e->s);
	e->nextid = 100;
	*state = e;
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
teardown(void **state)
{
	struct env *e = *state;

	sftp_free(e->s);
	close(e->rootfd);
	nftw(e->top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(e);
	return 0;
}

/* ------------------------------------------------------ packet building -- */

struct pkt {
	uint8_t		*b;
	size_t		 len, cap, start;
};

static void
pk_need(struct pkt *p, size_t n)
{
	if (p->len + n > p->cap) {
		p->cap = (p->len + n) * 2 + 256;
		p->b = realloc(p->b, p->cap);
		assert_non_null(p->b);
	}
}

static void
pk_u8(struct pkt *p, uint8_t v)
{
	pk_need(p, 1);
	p->b[p->len++] = v;
}

static void
pk_u32(struct pkt *p, uint32_t v)
{
	pk_need(p, 4);
	p->b[p->len++] = v >> 24;
	p->b[p->len++] = v >> 16;
	p->b[p->len++] = v >> 8;
	p->b[p->len++] = v;
}

static void
pk_u64(struct pkt *p, uint64_t v)
{
	pk_u32(p, v >> 32);
	pk_u32(p, (uint32_t)v);
}

static void
pk_data(struct pkt *p, const void *d, size_t n)
{
	pk_u32(p, (uint32_t)n);
	pk_need(p, n);
	memcpy(p->b + p->len, d, n);
	p->len += n;
}

static void
pk_str(struct pkt *p, const char *s)
{
	pk_data(p, s, strlen(s));
}

/* Starts a request packet (appended: several may share one buffer). */
static void
pk_begin(struct pkt *p, uint8_t type, uint32_t id)
{
	p->start = p->len;
	pk_u32(p, 0);
	pk_u8(p, type);
	if (type != SSH_FXP_INIT)
		pk_u32(p, id);
}

static void
pk_end(struct pkt *p)
{
	uint32_t n = (uint32_t)(p->len - p->start - 4);

	p->b[p->start] = n >> 24;
	p->b[p->start + 1] = n >> 16;
	p->b[p->start + 2] = n >> 8;
	p->b[p->start + 3] = n;
}

static void
pk_free(struct pkt *p)
{
	free(p->b);
	memset(p, 0, sizeof(*p));
}

static int
feed(struct env *e, struct pkt *p)
{
	int rc = sftp_input(e->s, p->b, p->len);

	p->len = 0;
	return rc;
}

/* ------------------------------------------------------ reply parsing -- */

struct reply {
	uint8_t		 type;
	uint32_t	 id;
	uint8_t		*buf;		/* whole packet body after type+id */
	size_t		 len, off;
};

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Takes the next reply from the engine's output; fails if there is none. */
static void
take(struct env *e, struct reply *r)
{
	const uint8_t *o;
	size_t olen;
	uint32_t n;

	o = sftp_output(e->s, &olen);
	assert_true(olen >= 9);
	n = rd32(o);
	assert_true(olen >= 4 + (size_t)n);
	r->type = o[4];
	if (r->type == SSH_FXP_VERSION) {
		r->id = 0;
		r->len = n - 1;
		r->buf = malloc(r->len + 1);
		memcpy(r->buf, o + 5, r->len);
	} else {
		r->id = rd32(o + 5);
		r->len = n - 5;
		r->buf = malloc(r->len + 1);
		memcpy(r->buf, o + 9, r->len);
	}
	r->off = 0;
	sftp_output_consume(e->s, 4 + (size_t)n);
}

static void
no_output(struct env *e)
{
	size_t olen;

	sftp_output(e->s, &olen);
	assert_int_equal(olen, 0);
}

static uint32_t
r_u32(struct reply *r)
{
	uint32_t v;

	assert_true(r->off + 4 <= r->len);
	v = rd32(r->buf + r->off);
	r->off += 4;
	return v;
}

static uint64_t
r_u64(struct reply *r)
{
	uint64_t hi = r_u32(r);

	return hi << 32 | r_u32(r);
}

/* A string, copied NUL-terminated into a malloc'd buffer (caller frees). */
static char *
r_str(struct reply *r, size_t *lenp)
{
	uint32_t n = r_u32(r);
	char *s;

	assert_true(r->off + n <= r->len);
	s = malloc(n + 1);
	memcpy(s, r->buf + r->off, n);
	s[n] = '\0';
	r->off += n;
	if (lenp)
		*lenp = n;
	return s;
}

static void
r_free(struct reply *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* Expects a STATUS reply with this id and code; returns nothing. */
static void
expect_status_msg(struct env *e, uint32_t id, uint32_t code, const char *msg)
{
	struct reply r;
	char *text, *lang;

	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_STATUS);
	assert_int_equal(r.id, id);
	assert_int_equal(r_u32(&r), code);
	text = r_str(&r, NULL);
	lang = r_str(&r, NULL);
	assert_true(strlen(text) > 0);
	assert_string_equal(lang, "");
	if (msg != NULL)
		assert_non_null(strstr(text, msg));
	free(text);
	free(lang);
	r_free(&r);
}

static void
expect_status(struct env *e, uint32_t id, uint32_t code)
{
	expect_status_msg(e, id, code, NULL);
}

struct hnd {
	uint8_t		 b[64];
	size_t		 len;
};

static void
expect_handle(struct env *e, uint32_t id, struct hnd *h)
{
	struct reply r;
	char *s;

	take(e, &r);
	if (r.type == SSH_FXP_STATUS) {
		uint32_t code = r_u32(&r);
		char *text = r_str(&r, NULL);

		fail_msg("expected a handle for id %u, got status %u: %s", id,
		    code, text);
	}
	assert_int_equal(r.type, SSH_FXP_HANDLE);
	assert_int_equal(r.id, id);
	s = r_str(&r, &h->len);
	assert_true(h->len <= sizeof(h->b));
	memcpy(h->b, s, h->len);
	free(s);
	r_free(&r);
}

/* ---------------------------------------------------- request helpers -- */

static void
do_init(struct env *e)
{
	struct pkt p = { 0 };
	struct reply r;

	pk_begin(&p, SSH_FXP_INIT, 0);
	pk_u32(&p, 3);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_VERSION);
	r_free(&r);
	pk_free(&p);
}

static uint32_t
req_open(struct env *e, const char *path, uint32_t pflags)
{
	struct pkt p = { 0 };
	uint32_t id = e->nextid++;

	pk_begin(&p, SSH_FXP_OPEN, id);
	pk_str(&p, path);
	pk_u32(&p, pflags);
	pk_u32(&p, SSH_FILEXFER_ATTR_PERMISSIONS);
	pk_u32(&p, 0666);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	pk_free(&p);
	return id;
}

static void
open_ok(struct env *e, const char *path, uint32_t pflags, struct hnd *h)
{
	uint32_t id = req_open(e, path, pflags);

	expect_handle(e, id, h);
}

static void
open_fails(struct env *e, const char *path, uint32_t pflags, uint32_t code,
    const char *msg)
{
	uint32_t id = req_open(e, path, pflags);

	expect_status_msg(e, id, code, msg);
}

static void
pk_write(struct pkt *p, uint32_t id, const struct hnd *h, uint64_t off,
    const void *d, size_t n)
{
	pk_begin(p, SSH_FXP_WRITE, id);
	pk_data(p, h->b, h->len);
	pk_u64(p, off);
	pk_data(p, d, n);
	pk_end(p);
}

static uint32_t
req_handle_only(struct env *e, uint8_t type, const struct hnd *h)
{
	struct pkt p = { 0 };
	uint32_t id = e->nextid++;

	pk_begin(&p, type, id);
	pk_data(&p, h->b, h->len);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	pk_free(&p);
	return id;
}

static void
write_ok(struct env *e, const struct hnd *h, uint64_t off, const void *d,
    size_t n)
{
	struct pkt p = { 0 };
	uint32_t id = e->nextid++;

	pk_write(&p, id, h, off, d, n);
	assert_int_equal(feed(e, &p), 0);
	expect_status(e, id, SSH_FX_OK);
	pk_free(&p);
}

static void
close_expect(struct env *e, const struct hnd *h, uint32_t code)
{
	uint32_t id = req_handle_only(e, SSH_FXP_CLOSE, h);

	expect_status(e, id, code);
}

/* One request whose only argument is a path (REMOVE, RMDIR, STAT...). */
static uint32_t
req_path(struct env *e, uint8_t type, const char *path)
{
	struct pkt p = { 0 };
	uint32_t id = e->nextid++;

	pk_begin(&p, type, id);
	pk_str(&p, path);
	if (type == SSH_FXP_MKDIR)
		pk_u32(&p, 0);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	pk_free(&p);
	return id;
}

static void
path_expect(struct env *e, uint8_t type, const char *path, uint32_t code)
{
	uint32_t id = req_path(e, type, path);

	expect_status(e, id, code);
}

static uint32_t
req_ext(struct env *e, const char *name, const char *a, const char *b)
{
	struct pkt p = { 0 };
	uint32_t id = e->nextid++;

	pk_begin(&p, SSH_FXP_EXTENDED, id);
	pk_str(&p, name);
	if (a)
		pk_str(&p, a);
	if (b)
		pk_str(&p, b);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	pk_free(&p);
	return id;
}

static void
fill(uint8_t *b, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (uint8_t)(seed >> 16);
	}
}

static void
sha_hex(const void *d, size_t n, char out[SHA256_HEX])
{
	uint8_t md[SHA256_LEN];

	assert_int_equal(sha256_buf(d, n, md), 0);
	hex_encode(md, sizeof(md), out);
}

static mode_t
mode_of(struct env *e, const char *rel)
{
	struct stat st;

	assert_int_equal(fstatat(e->rootfd, rel, &st, AT_SYMLINK_NOFOLLOW), 0);
	return st.st_mode & 07777;
}

static ino_t
ino_of(struct env *e, const char *rel)
{
	struct stat st;

	assert_int_equal(fstatat(e->rootfd, rel, &st, AT_SYMLINK_NOFOLLOW), 0);
	return st.st_ino;
}

static size_t
read_all(const char *path, uint8_t *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, cap);
	assert_true(n >= 0);
	close(fd);
	return (size_t)n;
}

static void
write_file(const char *path, const char *s, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int
dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* Uploads bytes as `put` does; returns the hook's status. */
static void
upload(struct env *e, const char *path, const uint8_t *d, size_t n,
    uint32_t code)
{
	struct hnd h;
	size_t off, c;

	open_ok(e, path, SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC, &h);
	for (off = 0; off < n; off += c) {
		c = n - off > 32768 ? 32768 : n - off;
		write_ok(e, &h, off, d + off, c);
	}
	close_expect(e, &h, code);
}

/* --------------------------------------------------------------- tests -- */

static void
test_init_version(void **state)
{
	struct env *e = *state;
	struct pkt p = { 0 };
	struct reply r;
	static const char *want[][2] = {
		{ "posix-rename@openssh.com", "1" },
		{ "statvfs@openssh.com", "2" },
		{ "fstatvfs@openssh.com", "2" },
		{ "hardlink@openssh.com", "1" },
		{ "fsync@openssh.com", "1" },
		{ "lsetstat@openssh.com", "1" },
		{ "limits@openssh.com", "1" },
		{ "expand-path@openssh.com", "1" },
	};
	size_t i, found = 0;
	char *name, *val;

	pk_begin(&p, SSH_FXP_INIT, 0);
	pk_u32(&p, 3);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_VERSION);
	assert_int_equal(r_u32(&r), 3);
	while (r.off < r.len) {
		name = r_str(&r, NULL);
		val = r_str(&r, NULL);
		for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			if (strcmp(name, want[i][0]) == 0) {
				assert_string_equal(val, want[i][1]);
				found |= 1u << i;
			}
		free(name);
		free(val);
	}
	assert_int_equal(found, (1u << 8) - 1);
	r_free(&r);
	no_output(e);

	/* limits@openssh.com */
	i = req_ext(e, "limits@openssh.com", NULL, NULL);
	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_EXTENDED_REPLY);
	assert_int_equal(r.id, i);
	assert_int_equal(r_u64(&r), 256 * 1024);
	assert_int_equal(r_u64(&r), 256 * 1024 - 1024);
	assert_int_equal(r_u64(&r), 256 * 1024 - 1024);
	assert_int_equal(r_u64(&r), SFTP_DEFAULT_HANDLES);
	r_free(&r);

	/* a second INIT ends the session, and it stays ended */
	pk_begin(&p, SSH_FXP_INIT, 0);
	pk_u32(&p, 3);
	pk_end(&p);
	assert_int_equal(feed(e, &p), -1);
	pk_begin(&p, SSH_FXP_STAT, 1);
	pk_str(&p, "/");
	pk_end(&p);
	assert_int_equal(feed(e, &p), -1);
	no_output(e);
	pk_free(&p);
}

static void
test_session_enders(void **state)
{
	struct env *e = *state;
	struct pkt p = { 0 };
	static const uint8_t small[] = { 0, 0, 0, 4, 1, 0, 0, 0 };
	static const uint8_t big[] = { 0, 4, 0, 1, 3 };

	/* a request before INIT */
	pk_begin(&p, SSH_FXP_STAT, 1);
	pk_str(&p, "/");
	pk_end(&p);
	assert_int_equal(feed(e, &p), -1);
	assert_int_equal(sftp_input(e->s, (const uint8_t *)"", 0), -1);
	sftp_free(e->s);

	/* length below 5 */
	e->s = engine(e, 0);
	do_init(e);
	assert_int_equal(sftp_input(e->s, small, sizeof(small)), -1);
	sftp_free(e->s);

	/* length above the cap: refused from the header alone */
	e->s = engine(e, 0);
	do_init(e);
	assert_int_equal(sftp_input(e->s, big, 4), -1);
	sftp_free(e->s);

	/* exactly the cap is fine, split in two */
	e->s = engine(e, 0);
	do_init(e);
	{
		uint8_t *b = calloc(1, 4 + SFTP_MAX_MSG_LENGTH);

		b[1] = SFTP_MAX_MSG_LENGTH >> 16;	/* 0x040000 */
		b[4] = 99;			/* unknown type */
		b[8] = 7;			/* id 7 */
		assert_int_equal(sftp_input(e->s, b, 1000), 0);
		no_output(e);
		assert_int_equal(sftp_input(e->s, b + 1000,
		    4 + SFTP_MAX_MSG_LENGTH - 1000), 0);
		expect_status(e, 7, SSH_FX_OP_UNSUPPORTED);
		free(b);
	}
	sftp_free(e->s);

	/* a truncated field: OPEN whose filename claims more than is there */
	e->s = engine(e, 0);
	do_init(e);
	pk_begin(&p, SSH_FXP_OPEN, 5);
	pk_u32(&p, 200);
	pk_u8(&p, 'a');
	pk_end(&p);
	assert_int_equal(feed(e, &p), -1);
	no_output(e);
	sftp_free(e->s);

	/* OPEN missing its attrs: nothing is created */
	e->s = engine(e, 0);
	do_init(e);
	pk_begin(&p, SSH_FXP_OPEN, 5);
	pk_str(&p, "half");
	pk_u32(&p, SSH_FXF_WRITE | SSH_FXF_CREAT);
	pk_end(&p);
	assert_int_equal(feed(e, &p), -1);
	assert_int_equal(dir_entries(e->root), 0);
	pk_free(&p);
}

static void
test_unknown_ops(void **state)
{
	struct env *e = *state;
	struct pkt p = { 0 };
	uint32_t id;

	do_init(e);
	pk_begin(&p, 77, 4242);
	pk_u32(&p, 1);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	expect_status(e, 4242, SSH_FX_OP_UNSUPPORTED);
	/* a reply type sent by a client is just unknown */
	pk_begin(&p, SSH_FXP_STATUS, 4243);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	expect_status(e, 4243, SSH_FX_OP_UNSUPPORTED);
	id = req_ext(e, "copy-data", NULL, NULL);
	expect_status(e, id, SSH_FX_OP_UNSUPPORTED);
	/* hardlink and symlink: refused, reported */
	id = req_ext(e, "hardlink@openssh.com", "a", "b");
	expect_status(e, id, SSH_FX_PERMISSION_DENIED);
	assert_string_equal(e->ev_op, "hardlink");
	pk_begin(&p, SSH_FXP_SYMLINK, 4244);
	pk_str(&p, "/etc/passwd");
	pk_str(&p, "l");
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	expect_status(e, 4244, SSH_FX_PERMISSION_DENIED);
	assert_string_equal(e->ev_op, "symlink");
	assert_int_equal(dir_entries(e->root), 0);
	/* READLINK: there are no links */
	path_expect(e, SSH_FXP_READLINK, "/nothing", SSH_FX_NO_SUCH_FILE);
	pk_free(&p);
}

static void
test_upload_pipelined(void **state)
{
	struct env *e = *state;
	enum { CH = 32768, N = 70 };
	uint8_t *data = malloc((size_t)CH * N);
	struct pkt p = { 0 };
	struct hnd h;
	char want[SHA256_HEX];
	uint32_t id0, oid, i;
	int order[N];

	do_init(e);
	fill(data, (size_t)CH * N, 1);
	path_expect(e, SSH_FXP_MKDIR, "/in", SSH_FX_OK);
	assert_int_equal(mode_of(e, "in") & 0700, 0700);

	/* OPEN + 70 WRITEs (out of order: pairs swapped) + CLOSE in one go */
	for (i = 0; i < N; i++)
		order[i] = (i % 2 == 0 && i + 1 < N) ? (int)i + 1 :
		    (i % 2 == 1) ? (int)i - 1 : (int)i;
	oid = e->nextid++;
	pk_begin(&p, SSH_FXP_OPEN, oid);
	pk_str(&p, "/in/data.bin");
	pk_u32(&p, SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC);
	pk_u32(&p, 0);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	expect_handle(e, oid, &h);
	assert_int_equal(mode_of(e, "in/data.bin"), 0640);

	id0 = e->nextid;
	e->nextid += N;
	for (i = 0; i < N; i++)
		pk_write(&p, id0 + i, &h, (uint64_t)order[i] * CH,
		    data + (size_t)order[i] * CH, CH);
	pk_begin(&p, SSH_FXP_CLOSE, id0 + N);
	pk_data(&p, h.b, h.len);
	pk_end(&p);
	e->nextid++;
	assert_int_equal(feed(e, &p), 0);
	for (i = 0; i < N; i++)
		expect_status(e, id0 + i, SSH_FX_OK);
	expect_status(e, id0 + N, SSH_FX_OK);
	no_output(e);

	sha_hex(data, (size_t)CH * N, want);
	assert_int_equal(e->hook_calls, 1);
	assert_int_equal(e->hook_size, (int64_t)CH * N);
	assert_string_equal(e->hook_sha, want);
	assert_string_equal(e->hook_path, "in/data.bin");
	assert_int_equal(e->hook_mode, 0440);
	assert_int_equal(mode_of(e, "in/data.bin"), 0440);
	assert_string_equal(e->ev_op, "close");
	assert_int_equal(e->ev_status, SSH_FX_OK);

	/* a rewrite of hashed bytes still yields the right digest */
	open_ok(e, "/in/rw.bin", SSH_FXF_WRITE | SSH_FXF_CREAT, &h);
	write_ok(e, &h, 0, "AAAAAAAA", 8);
	write_ok(e, &h, 2, "bb", 2);
	write_ok(e, &h, 8, "cc", 2);
	close_expect(e, &h, SSH_FX_OK);
	sha_hex("AAbbAAAAcc", 10, want);
	assert_string_equal(e->hook_sha, want);
	assert_int_equal(e->hook_size, 10);

	/* an empty upload */
	upload(e, "/empty", NULL, 0, SSH_FX_OK);
	sha_hex("", 0, want);
	assert_string_equal(e->hook_sha, want);
	assert_int_equal(e->hook_size, 0);
	pk_free(&p);
	free(data);
}

static void
test_byte_by_byte(void **state)
{
	struct env *e = *state;
	struct pkt p = { 0 };
	uint8_t d[3000], back[4000];
	char want[SHA256_HEX], path[PATH_MAX];
	struct hnd h;
	size_t i, all, wlen;

	fill(d, sizeof(d), 7);
	pk_begin(&p, SSH_FXP_INIT, 0);
	pk_u32(&p, 3);
	pk_end(&p);
	pk_begin(&p, SSH_FXP_OPEN, 1);
	pk_str(&p, "slow.bin");
	pk_u32(&p, SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC);
	pk_u32(&p, 0);
	pk_end(&p);
	all = p.len;
	for (i = 0; i < all; i++)
		assert_int_equal(sftp_input(e->s, p.b + i, 1), 0);
	p.len = 0;
	{
		struct reply r;

		take(e, &r);
		assert_int_equal(r.type, SSH_FXP_VERSION);
		r_free(&r);
	}
	expect_handle(e, 1, &h);
	pk_write(&p, 2, &h, 0, d, sizeof(d));
	pk_begin(&p, SSH_FXP_CLOSE, 3);
	pk_data(&p, h.b, h.len);
	pk_end(&p);
	all = p.len;
	wlen = 4 + 1 + 4 + 4 + h.len + 8 + 4 + sizeof(d);
	for (i = 0; i < all; i++) {
		assert_int_equal(sftp_input(e->s, p.b + i, 1), 0);
		if (i + 1 < wlen)	/* no reply before the WRITE is whole */
			no_output(e);
	}
	expect_status(e, 2, SSH_FX_OK);
	expect_status(e, 3, SSH_FX_OK);
	sha_hex(d, sizeof(d), want);
	assert_string_equal(e->hook_sha, want);
	snprintf(path, sizeof(path), "%s/slow.bin", e->root);
	assert_int_equal(read_all(path, back, sizeof(back)), sizeof(d));
	assert_memory_equal(back, d, sizeof(d));
	pk_free(&p);
}

static void
test_hook_failure(void **state)
{
	struct env *e = *state;

	do_init(e);
	e->hook_rc = -1;
	upload(e, "/f.csv", (const uint8_t *)"a,b\n", 4, SSH_FX_FAILURE);
	assert_int_equal(e->hook_calls, 1);
	assert_int_equal(mode_of(e, "f.csv"), 0640);
	/* still incomplete: it may be resumed or rewritten */
	e->hook_rc = 0;
	upload(e, "/f.csv", (const uint8_t *)"a,b,c\n", 6, SSH_FX_OK);
	assert_int_equal(mode_of(e, "f.csv"), 0440);
	assert_int_equal(e->hook_size, 6);
}

static void
test_reupload_new_inode(void **state)
{
	struct env *e = *state;
	char keep[PATH_MAX], path[PATH_MAX];
	uint8_t back[64];
	ino_t first;
	struct hnd h;

	do_init(e);
	e->hook_link = 1;
	upload(e, "/r.txt", (const uint8_t *)"old bytes", 9, SSH_FX_OK);
	first = ino_of(e, "r.txt");

	/* without TRUNC an accepted file is refused, whatever the flags */
	open_fails(e, "/r.txt", SSH_FXF_WRITE, SSH_FX_PERMISSION_DENIED,
	    "already accepted");
	open_fails(e, "/r.txt", SSH_FXF_WRITE | SSH_FXF_CREAT,
	    SSH_FX_PERMISSION_DENIED, "already accepted");
	open_fails(e, "/r.txt", SSH_FXF_WRITE | SSH_FXF_APPEND,
	    SSH_FX_PERMISSION_DENIED, "already accepted");
	open_fails(e, "/r.txt", SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_EXCL,
	    SSH_FX_FAILURE, NULL);
	assert_int_equal(mode_of(e, "r.txt"), 0440);
	/* reading it is fine */
	open_ok(e, "/r.txt", SSH_FXF_READ, &h);
	close_expect(e, &h, SSH_FX_OK);

	upload(e, "/r.txt", (const uint8_t *)"new", 3, SSH_FX_OK);
	assert_true(ino_of(e, "r.txt") != first);
	snprintf(keep, sizeof(keep), "%s/keep.1", e->top);
	assert_int_equal(read_all(keep, back, sizeof(back)), 9);
	assert_memory_equal(back, "old bytes", 9);
	snprintf(path, sizeof(path), "%s/r.txt", e->root);
	assert_int_equal(read_all(path, back, sizeof(back)), 3);
	assert_memory_equal(back, "new", 3);
	assert_int_equal(e->hook_calls, 2);
}

static void
test_resume(void **state)
{
	struct env *e = *state;
	char want[SHA256_HEX];
	struct hnd h;

	do_init(e);
	open_ok(e, "/big.dat", SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC,
	    &h);
	write_ok(e, &h, 0, "0123456789", 10);
	/* the connection drops: the file stays incomplete, nothing reported */
	sftp_free(e->s);
	assert_int_equal(e->hook_calls, 0);
	assert_int_equal(mode_of(e, "big.dat"), 0640);

	e->s = engine(e, 0);
	do_init(e);
	open_fails(e, "/big.dat", SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_EXCL,
	    SSH_FX_FAILURE, "exists");
	open_ok(e, "/big.dat", SSH_FXF_WRITE, &h);
	write_ok(e, &h, 10, "abcdef", 6);
	close_expect(e, &h, SSH_FX_OK);
	sha_hex("0123456789abcdef", 16, want);
	assert_int_equal(e->hook_calls, 1);
	assert_int_equal(e->hook_size, 16);
	assert_string_equal(e->hook_sha, want);

	/* APPEND on an incomplete file writes at its end */
	e->hook_rc = -1;
	upload(e, "/app", (const uint8_t *)"xy", 2, SSH_FX_FAILURE);
	e->hook_rc = 0;
	open_ok(e, "/app", SSH_FXF_WRITE | SSH_FXF_APPEND, &h);
	write_ok(e, &h, 0, "z", 1);
	close_expect(e, &h, SSH_FX_OK);
	sha_hex("xyz", 3, want);
	assert_string_equal(e->hook_sha, want);

	/* TRUNC on an incomplete file starts it over */
	e->hook_rc = -1;
	upload(e, "/t", (const uint8_t *)"long content", 12, SSH_FX_FAILURE);
	e->hook_rc = 0;
	upload(e, "/t", (const uint8_t *)"s", 1, SSH_FX_OK);
	assert_int_equal(e->hook_size, 1);
}

static void
test_traversal(void **state)
{
	struct env *e = *state;
	uint32_t id;

	do_init(e);
	open_fails(e, "../x", SSH_FXF_WRITE | SSH_FXF_CREAT,
	    SSH_FX_PERMISSION_DENIED, NULL);
	assert_string_equal(e->ev_op, "open");
	assert_int_equal(e->ev_status, SSH_FX_PERMISSION_DENIED);
	open_fails(e, "/../../etc/passwd", SSH_FXF_READ,
	    SSH_FX_PERMISSION_DENIED, NULL);
	open_fails(e, "/../outside/x", SSH_FXF_WRITE | SSH_FXF_CREAT |
	    SSH_FXF_TRUNC, SSH_FX_PERMISSION_DENIED, NULL);
	open_fails(e, "a/../../x", SSH_FXF_WRITE | SSH_FXF_CREAT,
	    SSH_FX_PERMISSION_DENIED, NULL);
	path_expect(e, SSH_FXP_MKDIR, "../evil", SSH_FX_PERMISSION_DENIED);
	path_expect(e, SSH_FXP_STAT, "/../../etc/passwd",
	    SSH_FX_PERMISSION_DENIED);
	path_expect(e, SSH_FXP_REMOVE, "../outside", SSH_FX_PERMISSION_DENIED);
	id = req_ext(e, "posix-rename@openssh.com", "/x", "/../y");
	expect_status(e, id, SSH_FX_PERMISSION_DENIED);
	/* invalid names: a clear failure, the raw bytes in the event */
	open_fails(e, "bad\\name", SSH_FXF_WRITE | SSH_FXF_CREAT,
	    SSH_FX_FAILURE, "invalid file name");
	assert_string_equal(e->ev_path, "bad\\x5cname");
	open_fails(e, "ctl\001", SSH_FXF_WRITE | SSH_FXF_CREAT, SSH_FX_FAILURE,
	    "invalid file name");
	assert_int_equal(dir_entries(e->root), 0);
	assert_int_equal(dir_entries(e->outside), 0);
	{
		char p[PATH_MAX];

		snprintf(p, sizeof(p), "%s/x", e->top);
		assert_int_equal(access(p, F_OK), -1);
		snprintf(p, sizeof(p), "%s/evil", e->top);
		assert_int_equal(access(p, F_OK), -1);
	}
}

static void
test_symlinks(void **state)
{
	struct env *e = *state;
	char p[PATH_MAX], q[PATH_MAX];
	uint8_t back[64];
	uint32_t id;
	struct hnd h;

	do_init(e);
	snprintf(p, sizeof(p), "%s/secret", e->outside);
	write_file(p, "secret", 0600);
	snprintf(q, sizeof(q), "%s/flink", e->root);
	assert_int_equal(symlink(p, q), 0);
	snprintf(q, sizeof(q), "%s/dlink", e->root);
	assert_int_equal(symlink(e->outside, q), 0);
	snprintf(q, sizeof(q), "%s/rel", e->root);
	assert_int_equal(symlink("../outside", q), 0);
	snprintf(q, sizeof(q), "%s/sub", e->root);
	assert_int_equal(mkdir(q, 0700), 0);

	open_fails(e, "/flink", SSH_FXF_READ, SSH_FX_PERMISSION_DENIED, NULL);
	open_fails(e, "/flink", SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC,
	    SSH_FX_PERMISSION_DENIED, NULL);
	open_fails(e, "/flink", SSH_FXF_WRITE, SSH_FX_PERMISSION_DENIED, NULL);
	open_fails(e, "/dlink/secret", SSH_FXF_READ, SSH_FX_PERMISSION_DENIED,
	    NULL);
	open_fails(e, "/dlink/new", SSH_FXF_WRITE | SSH_FXF_CREAT,
	    SSH_FX_PERMISSION_DENIED, NULL);
	open_fails(e, "/rel/new", SSH_FXF_WRITE | SSH_FXF_CREAT,
	    SSH_FX_PERMISSION_DENIED, NULL);
	path_expect(e, SSH_FXP_STAT, "/flink", SSH_FX_PERMISSION_DENIED);
	path_expect(e, SSH_FXP_LSTAT, "/flink", SSH_FX_PERMISSION_DENIED);
	path_expect(e, SSH_FXP_STAT, "/dlink/secret", SSH_FX_PERMISSION_DENIED);
	path_expect(e, SSH_FXP_MKDIR, "/dlink/sub", SSH_FX_PERMISSION_DENIED);
	path_expect(e, SSH_FXP_MKDIR, "/rel/sub", SSH_FX_PERMISSION_DENIED);
	path_expect(e, SSH_FXP_REMOVE, "/flink", SSH_FX_PERMISSION_DENIED);
	path_expect(e, SSH_FXP_REMOVE, "/dlink/secret",
	    SSH_FX_PERMISSION_DENIED);
	path_expect(e, SSH_FXP_RMDIR, "/dlink", SSH_FX_NO_SUCH_FILE);
	path_expect(e, SSH_FXP_OPENDIR, "/dlink", SSH_FX_PERMISSION_DENIED);
	id = e->nextid++;
	{
		struct pkt k = { 0 };

		pk_begin(&k, SSH_FXP_SETSTAT, id);
		pk_str(&k, "/dlink/secret");
		pk_u32(&k, SSH_FILEXFER_ATTR_ACMODTIME);
		pk_u32(&k, 1);
		pk_u32(&k, 2);
		pk_end(&k);
		assert_int_equal(feed(e, &k), 0);
		expect_status(e, id, SSH_FX_PERMISSION_DENIED);

		pk_begin(&k, SSH_FXP_RENAME, id);
		pk_str(&k, "/flink");
		pk_str(&k, "/moved");
		pk_end(&k);
		assert_int_equal(feed(e, &k), 0);
		expect_status(e, id, SSH_FX_PERMISSION_DENIED);
		pk_begin(&k, SSH_FXP_RENAME, id);
		pk_str(&k, "/sub");
		pk_str(&k, "/dlink/sub");
		pk_end(&k);
		assert_int_equal(feed(e, &k), 0);
		expect_status(e, id, SSH_FX_PERMISSION_DENIED);
		pk_free(&k);
	}
	id = req_ext(e, "statvfs@openssh.com", "/dlink", NULL);
	expect_status(e, id, SSH_FX_PERMISSION_DENIED);
	/* a file in a real subdirectory is fine */
	open_ok(e, "/sub/ok", SSH_FXF_WRITE | SSH_FXF_CREAT, &h);
	close_expect(e, &h, SSH_FX_OK);

	/* nothing outside changed, the links are still there */
	assert_int_equal(dir_entries(e->outside), 1);
	assert_int_equal(read_all(p, back, sizeof(back)), 6);
	assert_memory_equal(back, "secret", 6);
	snprintf(q, sizeof(q), "%s/flink", e->root);
	assert_int_equal(access(q, F_OK), 0);
	assert_int_equal(e->hook_calls, 1);
}

static void
test_handles(void **state)
{
	struct env *e = *state;
	struct hnd h, f, hs[4];
	uint32_t id;
	int i;

	sftp_free(e->s);
	e->s = engine(e, 4);
	do_init(e);
	{
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/r", e->root);
		write_file(path, "data", 0600);
	}

	/* forged: wrong length, out of range, never issued */
	memcpy(f.b, "\xff\xff\x00\x01", 4);
	f.len = 4;
	id = req_handle_only(e, SSH_FXP_CLOSE, &f);
	expect_status_msg(e, id, SSH_FX_FAILURE, "invalid handle");
	f.len = 3;
	id = req_handle_only(e, SSH_FXP_FSTAT, &f);
	expect_status_msg(e, id, SSH_FX_FAILURE, "invalid handle");
	memset(f.b, 0, 8);
	f.len = 8;
	id = req_handle_only(e, SSH_FXP_READDIR, &f);
	expect_status_msg(e, id, SSH_FX_FAILURE, "invalid handle");
	f.len = 0;
	id = req_handle_only(e, SSH_FXP_CLOSE, &f);
	expect_status_msg(e, id, SSH_FX_FAILURE, "invalid handle");

	/* closed: the old handle string is dead even when the slot is reused */
	open_ok(e, "/r", SSH_FXF_READ, &h);
	close_expect(e, &h, SSH_FX_OK);
	id = req_handle_only(e, SSH_FXP_CLOSE, &h);
	expect_status_msg(e, id, SSH_FX_FAILURE, "invalid handle");
	open_ok(e, "/r", SSH_FXF_READ, &f);
	assert_memory_not_equal(f.b, h.b, 4);
	id = req_handle_only(e, SSH_FXP_FSTAT, &h);
	expect_status_msg(e, id, SSH_FX_FAILURE, "invalid handle");
	/* a file handle is not a directory handle and vice versa */
	id = req_handle_only(e, SSH_FXP_READDIR, &f);
	expect_status(e, id, SSH_FX_FAILURE);
	close_expect(e, &f, SSH_FX_OK);

	/* exhaustion */
	for (i = 0; i < 4; i++)
		open_ok(e, "/r", SSH_FXF_READ, &hs[i]);
	open_fails(e, "/r", SSH_FXF_READ, SSH_FX_FAILURE, "too many open files");
	open_fails(e, "/w", SSH_FXF_WRITE | SSH_FXF_CREAT, SSH_FX_FAILURE,
	    "too many open files");
	open_fails(e, "/r", SSH_FXF_WRITE | SSH_FXF_TRUNC, SSH_FX_FAILURE,
	    "too many open files");
	/* refused before anything changed */
	assert_int_equal(faccessat(e->rootfd, "w", F_OK, 0), -1);
	{
		struct stat st;

		assert_int_equal(fstatat(e->rootfd, "r", &st, 0), 0);
		assert_int_equal(st.st_size, 4);
	}
	id = req_path(e, SSH_FXP_OPENDIR, "/");
	expect_status_msg(e, id, SSH_FX_FAILURE, "too many open files");
	close_expect(e, &hs[2], SSH_FX_OK);
	open_ok(e, "/r", SSH_FXF_READ, &hs[2]);
	for (i = 0; i < 4; i++)
		close_expect(e, &hs[i], SSH_FX_OK);

	/* write on a read handle, read on a write-only handle */
	open_ok(e, "/r", SSH_FXF_READ, &h);
	{
		struct pkt p = { 0 };

		pk_write(&p, 9, &h, 0, "x", 1);
		assert_int_equal(feed(e, &p), 0);
		expect_status(e, 9, SSH_FX_PERMISSION_DENIED);
		pk_free(&p);
	}
	close_expect(e, &h, SSH_FX_OK);
	open_ok(e, "/w2", SSH_FXF_WRITE | SSH_FXF_CREAT, &h);
	{
		struct pkt p = { 0 };

		pk_begin(&p, SSH_FXP_READ, 10);
		pk_data(&p, h.b, h.len);
		pk_u64(&p, 0);
		pk_u32(&p, 10);
		pk_end(&p);
		assert_int_equal(feed(e, &p), 0);
		expect_status(e, 10, SSH_FX_PERMISSION_DENIED);
		pk_free(&p);
	}
	close_expect(e, &h, SSH_FX_OK);
}

static void
test_read_cap_and_offsets(void **state)
{
	struct env *e = *state;
	enum { SZ = 300 * 1024 };
	uint8_t *d = malloc(SZ);
	struct pkt p = { 0 };
	struct reply r;
	struct hnd h;
	char *got;
	size_t n;

	do_init(e);
	fill(d, SZ, 3);
	upload(e, "/big", d, SZ, SSH_FX_OK);
	open_ok(e, "/big", SSH_FXF_READ, &h);
	pk_begin(&p, SSH_FXP_READ, 50);
	pk_data(&p, h.b, h.len);
	pk_u64(&p, 0);
	pk_u32(&p, 0xffffffff);
	pk_end(&p);
	pk_begin(&p, SSH_FXP_READ, 51);
	pk_data(&p, h.b, h.len);
	pk_u64(&p, SZ - 10);
	pk_u32(&p, 100);
	pk_end(&p);
	pk_begin(&p, SSH_FXP_READ, 52);
	pk_data(&p, h.b, h.len);
	pk_u64(&p, SZ);
	pk_u32(&p, 100);
	pk_end(&p);
	pk_begin(&p, SSH_FXP_READ, 53);
	pk_data(&p, h.b, h.len);
	pk_u64(&p, UINT64_MAX);
	pk_u32(&p, 100);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_DATA);
	assert_int_equal(r.id, 50);
	got = r_str(&r, &n);
	assert_int_equal(n, 256 * 1024 - 1024);
	assert_memory_equal(got, d, n);
	free(got);
	r_free(&r);
	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_DATA);
	assert_int_equal(r.id, 51);
	got = r_str(&r, &n);
	assert_int_equal(n, 10);
	assert_memory_equal(got, d + SZ - 10, 10);
	free(got);
	r_free(&r);
	expect_status(e, 52, SSH_FX_EOF);
	expect_status(e, 53, SSH_FX_EOF);
	close_expect(e, &h, SSH_FX_OK);

	/* WRITE at 2^63 and at an offset whose end overflows: refused, and
	 * the upload can no longer be reported complete */
	open_ok(e, "/w", SSH_FXF_WRITE | SSH_FXF_CREAT, &h);
	pk_write(&p, 60, &h, (uint64_t)1 << 63, "x", 1);
	pk_write(&p, 61, &h, INT64_MAX, "xy", 2);
	assert_int_equal(feed(e, &p), 0);
	expect_status_msg(e, 60, SSH_FX_FAILURE, "offset");
	expect_status_msg(e, 61, SSH_FX_FAILURE, "offset");
	close_expect(e, &h, SSH_FX_FAILURE);
	assert_int_equal(e->hook_calls, 1);
	assert_int_equal(mode_of(e, "w"), 0640);

	/* a sparse bomb: one byte far beyond what was sent is refused */
	open_ok(e, "/sparse", SSH_FXF_WRITE | SSH_FXF_CREAT, &h);
	pk_write(&p, 62, &h, SFTP_MAX_HOLE - 1, "x", 1);	/* just fits */
	pk_write(&p, 63, &h, 2 * SFTP_MAX_HOLE, "x", 1);
	assert_int_equal(feed(e, &p), 0);
	expect_status(e, 62, SSH_FX_OK);
	expect_status_msg(e, 63, SSH_FX_FAILURE, "beyond");
	close_expect(e, &h, SSH_FX_FAILURE);
	{
		struct stat st;

		assert_int_equal(fstatat(e->rootfd, "sparse", &st, 0), 0);
		assert_int_equal(st.st_size, SFTP_MAX_HOLE);
	}
	pk_free(&p);
	free(d);
}

/* READ of len at off on h: the bytes returned (0 for EOF). */
static size_t
read_at(struct env *e, const struct hnd *h, uint64_t off, uint32_t len)
{
	struct pkt p = { 0 };
	struct reply r;
	uint32_t id = e->nextid++;
	size_t n = 0;
	char *got;

	pk_begin(&p, SSH_FXP_READ, id);
	pk_data(&p, h->b, h->len);
	pk_u64(&p, off);
	pk_u32(&p, len);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	pk_free(&p);
	take(e, &r);
	assert_int_equal(r.id, id);
	if (r.type == SSH_FXP_DATA) {
		got = r_str(&r, &n);
		free(got);
	} else {
		assert_int_equal(r.type, SSH_FXP_STATUS);
		assert_int_equal(r_u32(&r), SSH_FX_EOF);
	}
	r_free(&r);
	return n;
}

/* READDIR on h until EOF: the names returned. */
static uint32_t
list_all(struct env *e, const struct hnd *h)
{
	struct reply r;
	uint32_t id, total = 0;

	for (;;) {
		id = req_handle_only(e, SSH_FXP_READDIR, h);
		take(e, &r);
		assert_int_equal(r.id, id);
		if (r.type == SSH_FXP_STATUS) {
			r_free(&r);
			return total;
		}
		assert_int_equal(r.type, SSH_FXP_NAME);
		total += r_u32(&r);
		r_free(&r);
	}
}

/* hooks.access: once per read or directory handle, at CLOSE or sftp_free;
 * never for a write handle nobody read from. */
static void
test_access_reports(void **state)
{
	struct env *e = *state;
	uint8_t d[1000];
	struct hnd h, hd;
	uint32_t id, names;
	char name[PATH_MAX];
	int i;

	do_init(e);
	fill(d, sizeof(d), 7);
	upload(e, "/f", d, sizeof(d), SSH_FX_OK);
	assert_int_equal(e->accesses, 0);	/* an upload is not a read */

	open_ok(e, "/f", SSH_FXF_READ, &h);
	assert_int_equal(read_at(e, &h, 200, 600), 600);
	assert_int_equal(read_at(e, &h, 800, 600), 200);
	assert_int_equal(read_at(e, &h, 1000, 600), 0);	/* EOF: no bytes */
	assert_int_equal(e->accesses, 0);	/* nothing per READ */
	close_expect(e, &h, SSH_FX_OK);
	assert_int_equal(e->accesses, 1);
	assert_string_equal(e->acc.path, "f");
	assert_int_equal(e->acc.dir, 0);
	assert_int_equal(e->acc.at_end, 0);
	assert_int_equal(e->acc.bytes, 800);
	assert_int_equal(e->acc.reads, 2);
	assert_int_equal(e->acc.first, 200);
	assert_int_equal(e->acc.end, 1000);
	assert_int_equal(e->acc.size, 1000);

	/* opened and closed without a READ: reported, 0 bytes */
	open_ok(e, "/f", SSH_FXF_READ, &h);
	close_expect(e, &h, SSH_FX_OK);
	assert_int_equal(e->accesses, 2);
	assert_int_equal(e->acc.bytes, 0);
	assert_int_equal(e->acc.reads, 0);
	assert_int_equal(e->acc.first, -1);

	/* a listing */
	path_expect(e, SSH_FXP_MKDIR, "/dir", SSH_FX_OK);
	for (i = 0; i < 150; i++) {
		snprintf(name, sizeof(name), "%s/dir/n%03d", e->root, i);
		write_file(name, "", 0600);
	}
	id = req_path(e, SSH_FXP_OPENDIR, "/dir");
	expect_handle(e, id, &hd);
	names = list_all(e, &hd);
	assert_int_equal(names, 152);	/* . and .. too */
	close_expect(e, &hd, SSH_FX_OK);
	assert_int_equal(e->accesses, 3);
	assert_string_equal(e->acc.path, "dir");
	assert_int_equal(e->acc.dir, 1);
	assert_int_equal(e->acc.entries, 152);
	assert_int_equal(e->acc.reads, 2);	/* 100 + 52 */

	/* the session ends with both kinds open: reported, at_end */
	open_ok(e, "/f", SSH_FXF_READ, &h);
	assert_int_equal(read_at(e, &h, 0, 10), 10);
	id = req_path(e, SSH_FXP_OPENDIR, "/");
	expect_handle(e, id, &hd);
	sftp_free(e->s);
	e->s = engine(e, 0);
	assert_non_null(e->s);
	assert_int_equal(e->accesses, 5);
	assert_int_equal(e->acc.at_end, 1);
}

static void
test_readdir(void **state)
{
	struct env *e = *state;
	struct hnd h;
	struct reply r;
	char name[PATH_MAX], *fn, *ln;
	uint32_t id, cnt, i, flags, total = 0, batches = 0;
	int seen_dot = 0, seen_dotdot = 0, seen_a = 0, seen_d = 0, files = 0;
	uint64_t size;
	uint32_t perm;

	do_init(e);
	upload(e, "/a", (const uint8_t *)"hello", 5, SSH_FX_OK);
	path_expect(e, SSH_FXP_MKDIR, "/d", SSH_FX_OK);
	for (i = 0; i < 150; i++) {
		snprintf(name, sizeof(name), "%s/n%03u", e->root, i);
		write_file(name, "", 0600);
	}
	/* a 255-byte name */
	{
		char longn[300];

		memset(longn, 'L', 255);
		longn[255] = '\0';
		assert_int_equal(mkdirat(e->rootfd, longn, 0700), 0);
	}
	id = req_path(e, SSH_FXP_OPENDIR, "/");
	expect_handle(e, id, &h);
	for (;;) {
		id = req_handle_only(e, SSH_FXP_READDIR, &h);
		take(e, &r);
		assert_int_equal(r.id, id);
		if (r.type == SSH_FXP_STATUS) {
			assert_int_equal(r_u32(&r), SSH_FX_EOF);
			r_free(&r);
			break;
		}
		assert_int_equal(r.type, SSH_FXP_NAME);
		batches++;
		cnt = r_u32(&r);
		assert_true(cnt >= 1 && cnt <= 100);
		for (i = 0; i < cnt; i++) {
			fn = r_str(&r, NULL);
			ln = r_str(&r, NULL);
			flags = r_u32(&r);
			assert_int_equal(flags, SSH_FILEXFER_ATTR_SIZE |
			    SSH_FILEXFER_ATTR_UIDGID |
			    SSH_FILEXFER_ATTR_PERMISSIONS |
			    SSH_FILEXFER_ATTR_ACMODTIME);
			size = r_u64(&r);
			r_u32(&r);
			r_u32(&r);
			perm = r_u32(&r);
			r_u32(&r);
			r_u32(&r);
			assert_non_null(strstr(ln, fn));
			assert_int_equal(strcmp(ln + strlen(ln) - strlen(fn),
			    fn), 0);
			if (strcmp(fn, ".") == 0)
				seen_dot++;
			else if (strcmp(fn, "..") == 0)
				seen_dotdot++;
			else if (strcmp(fn, "a") == 0) {
				seen_a++;
				assert_int_equal(size, 5);
				assert_int_equal(perm & 07777, 0440);
				assert_true(S_ISREG(perm));
				assert_int_equal(strncmp(ln, "-r--r----- ", 11),
				    0);
			} else if (strcmp(fn, "d") == 0) {
				seen_d++;
				assert_true(S_ISDIR(perm));
				assert_int_equal(ln[0], 'd');
			} else if (fn[0] == 'n') {
				files++;
				assert_int_equal(strncmp(ln, "-rw------- ", 11),
				    0);
			}
			total++;
			free(fn);
			free(ln);
		}
		r_free(&r);
	}
	assert_int_equal(seen_dot, 1);
	assert_int_equal(seen_dotdot, 1);
	assert_int_equal(seen_a, 1);
	assert_int_equal(seen_d, 1);
	assert_int_equal(files, 150);
	assert_int_equal(total, 2 + 1 + 1 + 150 + 1);
	assert_true(batches >= 2);
	close_expect(e, &h, SSH_FX_OK);

	/* a directory cannot be opened as a file; a file is not a dir */
	open_fails(e, "/d", SSH_FXF_READ, SSH_FX_FAILURE, NULL);
	open_fails(e, "/d", SSH_FXF_WRITE | SSH_FXF_CREAT, SSH_FX_FAILURE,
	    NULL);
	path_expect(e, SSH_FXP_OPENDIR, "/a", SSH_FX_NO_SUCH_FILE);
	path_expect(e, SSH_FXP_OPENDIR, "/none", SSH_FX_NO_SUCH_FILE);
}

static void
pk_setstat_times(struct pkt *p, uint32_t id, const char *path, uint32_t at,
    uint32_t mt)
{
	pk_begin(p, SSH_FXP_SETSTAT, id);
	pk_str(p, path);
	pk_u32(p, SSH_FILEXFER_ATTR_ACMODTIME | SSH_FILEXFER_ATTR_PERMISSIONS |
	    SSH_FILEXFER_ATTR_UIDGID);
	pk_u32(p, 0);
	pk_u32(p, 0);
	pk_u32(p, 0777);
	pk_u32(p, at);
	pk_u32(p, mt);
	pk_end(p);
}

static void
test_rename_setstat(void **state)
{
	struct env *e = *state;
	struct pkt p = { 0 };
	struct stat st;
	struct reply r;
	struct hnd h;
	uint8_t back[16];
	char path[PATH_MAX];
	uint32_t id;

	do_init(e);
	upload(e, "/a", (const uint8_t *)"AAA", 3, SSH_FX_OK);
	upload(e, "/b", (const uint8_t *)"BB", 2, SSH_FX_OK);
	pk_begin(&p, SSH_FXP_RENAME, 1);
	pk_str(&p, "/a");
	pk_str(&p, "/b");
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	expect_status(e, 1, SSH_FX_FAILURE);
	assert_string_equal(e->ev_op, "rename");
	assert_string_equal(e->ev_path, "a");
	assert_string_equal(e->ev_path2, "b");
	id = req_ext(e, "posix-rename@openssh.com", "/a", "/b");
	expect_status(e, id, SSH_FX_OK);
	snprintf(path, sizeof(path), "%s/b", e->root);
	assert_int_equal(read_all(path, back, sizeof(back)), 3);
	assert_memory_equal(back, "AAA", 3);
	assert_int_equal(fstatat(e->rootfd, "a", &st, 0), -1);
	pk_begin(&p, SSH_FXP_RENAME, 2);
	pk_str(&p, "/b");
	pk_str(&p, "/c");
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	expect_status(e, 2, SSH_FX_OK);
	/* a file never replaces a directory */
	path_expect(e, SSH_FXP_MKDIR, "/dir", SSH_FX_OK);
	id = req_ext(e, "posix-rename@openssh.com", "/c", "/dir");
	expect_status(e, id, SSH_FX_FAILURE);
	id = req_ext(e, "posix-rename@openssh.com", "/", "/x");
	expect_status(e, id, SSH_FX_PERMISSION_DENIED);

	/* times on an accepted file; size refused; modes ignored */
	pk_setstat_times(&p, 3, "/c", 1000000, 2000000);
	assert_int_equal(feed(e, &p), 0);
	expect_status(e, 3, SSH_FX_OK);
	assert_int_equal(fstatat(e->rootfd, "c", &st, 0), 0);
	assert_int_equal(st.st_mtime, 2000000);
	assert_int_equal(st.st_atime, 1000000);
	assert_int_equal(st.st_mode & 07777, 0440);
	assert_string_equal(e->ev_op, "setstat");
	pk_begin(&p, SSH_FXP_SETSTAT, 4);
	pk_str(&p, "/c");
	pk_u32(&p, SSH_FILEXFER_ATTR_SIZE);
	pk_u64(&p, 0);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	expect_status(e, 4, SSH_FX_PERMISSION_DENIED);
	assert_int_equal(fstatat(e->rootfd, "c", &st, 0), 0);
	assert_int_equal(st.st_size, 3);
	pk_setstat_times(&p, 5, "/missing", 1, 2);
	assert_int_equal(feed(e, &p), 0);
	expect_status(e, 5, SSH_FX_NO_SUCH_FILE);
	id = e->nextid++;
	pk_begin(&p, SSH_FXP_EXTENDED, id);
	pk_str(&p, "lsetstat@openssh.com");
	pk_str(&p, "/c");
	pk_u32(&p, SSH_FILEXFER_ATTR_ACMODTIME);
	pk_u32(&p, 5);
	pk_u32(&p, 6);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	expect_status(e, id, SSH_FX_OK);
	assert_int_equal(fstatat(e->rootfd, "c", &st, 0), 0);
	assert_int_equal(st.st_mtime, 6);

	/* FSETSTAT on a read handle of the accepted file; FSTAT sees it */
	open_ok(e, "/c", SSH_FXF_READ, &h);
	pk_begin(&p, SSH_FXP_FSETSTAT, 6);
	pk_data(&p, h.b, h.len);
	pk_u32(&p, SSH_FILEXFER_ATTR_ACMODTIME);
	pk_u32(&p, 7);
	pk_u32(&p, 8);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	expect_status(e, 6, SSH_FX_OK);
	id = req_handle_only(e, SSH_FXP_FSTAT, &h);
	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_ATTRS);
	assert_int_equal(r.id, id);
	r_u32(&r);
	assert_int_equal(r_u64(&r), 3);
	r_u32(&r);
	r_u32(&r);
	assert_int_equal(r_u32(&r) & 07777, 0440);
	assert_int_equal(r_u32(&r), 7);
	assert_int_equal(r_u32(&r), 8);
	r_free(&r);
	pk_free(&p);
}

static void
test_rename_fstatvfs_malformed(void **state)
{
	struct env *e = *state;
	uint32_t id;

	do_init(e);
	/* fstatvfs without its handle field is malformed */
	{
		struct pkt p = { 0 };

		id = e->nextid++;
		pk_begin(&p, SSH_FXP_EXTENDED, id);
		pk_str(&p, "fstatvfs@openssh.com");
		pk_end(&p);
		assert_int_equal(feed(e, &p), -1);
		pk_free(&p);
	}
}

static void
test_dirs_remove(void **state)
{
	struct env *e = *state;
	struct reply r;
	struct hnd h;
	uint32_t id;
	mode_t um = umask(0);

	umask(um);
	do_init(e);
	path_expect(e, SSH_FXP_MKDIR, "/d", SSH_FX_OK);
	assert_int_equal(mode_of(e, "d"), 0750 & ~um);
	assert_string_equal(e->ev_op, "mkdir");
	assert_string_equal(e->ev_path, "d");
	path_expect(e, SSH_FXP_MKDIR, "/d", SSH_FX_FAILURE);
	path_expect(e, SSH_FXP_MKDIR, "/nope/d", SSH_FX_NO_SUCH_FILE);
	upload(e, "/d/f", (const uint8_t *)"x", 1, SSH_FX_OK);
	path_expect(e, SSH_FXP_RMDIR, "/d", SSH_FX_FAILURE);	/* not empty */
	path_expect(e, SSH_FXP_REMOVE, "/d", SSH_FX_FAILURE);	/* a dir */
	path_expect(e, SSH_FXP_RMDIR, "/d/f", SSH_FX_NO_SUCH_FILE);
	path_expect(e, SSH_FXP_REMOVE, "/d/f", SSH_FX_OK);
	assert_string_equal(e->ev_op, "remove");
	path_expect(e, SSH_FXP_REMOVE, "/d/f", SSH_FX_NO_SUCH_FILE);
	path_expect(e, SSH_FXP_RMDIR, "/d", SSH_FX_OK);
	path_expect(e, SSH_FXP_RMDIR, "/", SSH_FX_PERMISSION_DENIED);
	path_expect(e, SSH_FXP_REMOVE, "/", SSH_FX_PERMISSION_DENIED);
	assert_int_equal(dir_entries(e->root), 0);

	/* STAT of the root and of a file */
	id = req_path(e, SSH_FXP_STAT, "/");
	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_ATTRS);
	assert_int_equal(r.id, id);
	r_u32(&r);
	r_u64(&r);
	r_u32(&r);
	r_u32(&r);
	assert_true(S_ISDIR(r_u32(&r)));
	r_free(&r);
	path_expect(e, SSH_FXP_STAT, "/missing", SSH_FX_NO_SUCH_FILE);

	/* REALPATH and expand-path */
	{
		static const char *cases[][2] = {
			{ ".", "/" }, { "", "/" }, { "/a/../b", "/b" },
			{ "../..", "/" }, { "x//y/", "/x/y" },
		};
		static const char *xcases[][2] = {
			{ "~", "/" }, { "~/in", "/in" }, { "/q", "/q" },
		};
		size_t i;
		char *s;

		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			id = req_path(e, SSH_FXP_REALPATH, cases[i][0]);
			take(e, &r);
			assert_int_equal(r.type, SSH_FXP_NAME);
			assert_int_equal(r.id, id);
			assert_int_equal(r_u32(&r), 1);
			s = r_str(&r, NULL);
			assert_string_equal(s, cases[i][1]);
			free(s);
			r_free(&r);
		}
		for (i = 0; i < sizeof(xcases) / sizeof(xcases[0]); i++) {
			id = req_ext(e, "expand-path@openssh.com",
			    xcases[i][0], NULL);
			take(e, &r);
			assert_int_equal(r.type, SSH_FXP_NAME);
			assert_int_equal(r.id, id);
			assert_int_equal(r_u32(&r), 1);
			s = r_str(&r, NULL);
			assert_string_equal(s, xcases[i][1]);
			free(s);
			r_free(&r);
		}
	}

	/* statvfs, fstatvfs, fsync */
	id = req_ext(e, "statvfs@openssh.com", "/", NULL);
	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_EXTENDED_REPLY);
	assert_int_equal(r.id, id);
	assert_int_equal(r.len, 11 * 8);
	assert_true(r_u64(&r) > 0);	/* f_bsize */
	r_free(&r);
	open_ok(e, "/s", SSH_FXF_WRITE | SSH_FXF_CREAT, &h);
	{
		struct pkt p = { 0 };

		pk_begin(&p, SSH_FXP_EXTENDED, 70);
		pk_str(&p, "fstatvfs@openssh.com");
		pk_data(&p, h.b, h.len);
		pk_end(&p);
		pk_begin(&p, SSH_FXP_EXTENDED, 71);
		pk_str(&p, "fsync@openssh.com");
		pk_data(&p, h.b, h.len);
		pk_end(&p);
		assert_int_equal(feed(e, &p), 0);
		take(e, &r);
		assert_int_equal(r.type, SSH_FXP_EXTENDED_REPLY);
		assert_int_equal(r.id, 70);
		r_free(&r);
		expect_status(e, 71, SSH_FX_OK);
		pk_free(&p);
	}
	close_expect(e, &h, SSH_FX_OK);
}

static void
test_concurrent_writers(void **state)
{
	struct env *e = *state;
	struct sftp *a = e->s, *b;
	struct hnd h, h2;
	char path[PATH_MAX];
	uint8_t back[16];

	do_init(e);
	open_ok(e, "/x", SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC, &h);
	write_ok(e, &h, 0, "first", 5);
	/* the same session, a second handle */
	open_fails(e, "/x", SSH_FXF_WRITE, SSH_FX_FAILURE,
	    "being written by another session");
	/* another session, with TRUNC: refused before anything changes */
	b = engine(e, 0);
	e->s = b;
	do_init(e);
	open_fails(e, "/x", SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC,
	    SSH_FX_FAILURE, "being written by another session");
	snprintf(path, sizeof(path), "%s/x", e->root);
	assert_int_equal(read_all(path, back, sizeof(back)), 5);
	/* reading while it is written is fine */
	open_ok(e, "/x", SSH_FXF_READ, &h2);
	close_expect(e, &h2, SSH_FX_OK);
	sftp_free(b);
	e->s = a;
	close_expect(e, &h, SSH_FX_OK);
	assert_int_equal(e->hook_size, 5);
	/* once accepted and closed, a re-upload may proceed */
	upload(e, "/x", (const uint8_t *)"second", 6, SSH_FX_OK);
	assert_int_equal(read_all(path, back, sizeof(back)), 6);
}

static void
test_renamed_while_written(void **state)
{
	struct env *e = *state;
	struct pkt p = { 0 };
	struct hnd h;

	do_init(e);
	open_ok(e, "/m", SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC, &h);
	write_ok(e, &h, 0, "abc", 3);
	pk_begin(&p, SSH_FXP_RENAME, 1);
	pk_str(&p, "/m");
	pk_str(&p, "/n");
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	expect_status(e, 1, SSH_FX_OK);
	/* the hook would get a path that is not this file: refused */
	close_expect(e, &h, SSH_FX_FAILURE);
	assert_int_equal(e->hook_calls, 0);
	assert_int_equal(mode_of(e, "n"), 0640);

	/* removed while written, and the name reused by another upload */
	open_ok(e, "/q", SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC, &h);
	write_ok(e, &h, 0, "old", 3);
	path_expect(e, SSH_FXP_REMOVE, "/q", SSH_FX_OK);
	upload(e, "/q", (const uint8_t *)"new", 3, SSH_FX_OK);
	assert_int_equal(e->hook_calls, 1);
	close_expect(e, &h, SSH_FX_FAILURE);
	assert_int_equal(e->hook_calls, 1);
	assert_int_equal(mode_of(e, "q"), 0440);
	pk_free(&p);
}

static void
test_many_small_packets_one_call(void **state)
{
	struct env *e = *state;
	struct pkt p = { 0 };
	uint32_t i;

	do_init(e);
	for (i = 0; i < 500; i++) {
		pk_begin(&p, SSH_FXP_STAT, 1000 + i);
		pk_str(&p, "/");
		pk_end(&p);
	}
	assert_int_equal(feed(e, &p), 0);
	for (i = 0; i < 500; i++) {
		struct reply r;

		take(e, &r);
		assert_int_equal(r.type, SSH_FXP_ATTRS);
		assert_int_equal(r.id, 1000 + i);
		r_free(&r);
	}
	no_output(e);
	pk_free(&p);
}

/* ------------------------------------------------------ roles, limits -- */

/* A new engine with e's perms and limits, initialised. */
static void
reengine(struct env *e)
{
	sftp_free(e->s);
	e->s = engine(e, 0);
	assert_non_null(e->s);
	do_init(e);
}

/* Expects a refusal, and that it was reported as an event. */
static void
expect_denied(struct env *e, uint32_t id, const char *op, const char *path)
{
	expect_status(e, id, SSH_FX_PERMISSION_DENIED);
	/* exactly one event, and it is the refusal */
	assert_int_equal(e->denials, e->denials_seen + 1);
	assert_int_equal(e->ev_status, SSH_FX_PERMISSION_DENIED);
	assert_string_equal(e->ev_op, op);
	if (path != NULL)
		assert_string_equal(e->ev_path, path);
	e->denials_seen = e->denials;
}

static uint32_t
req_rename(struct env *e, const char *ext, const char *a, const char *b)
{
	struct pkt p = { 0 };
	uint32_t id;

	if (ext != NULL)
		return req_ext(e, ext, a, b);
	id = e->nextid++;
	pk_begin(&p, SSH_FXP_RENAME, id);
	pk_str(&p, a);
	pk_str(&p, b);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	pk_free(&p);
	return id;
}

static uint32_t
req_setstat_times(struct env *e, const char *path)
{
	struct pkt p = { 0 };
	uint32_t id = e->nextid++;

	pk_setstat_times(&p, id, path, 1000000000, 1000000001);
	assert_int_equal(feed(e, &p), 0);
	pk_free(&p);
	return id;
}

static uint32_t
req_read(struct env *e, const struct hnd *h, uint64_t off, uint32_t len)
{
	struct pkt p = { 0 };
	uint32_t id = e->nextid++;

	pk_begin(&p, SSH_FXP_READ, id);
	pk_data(&p, h->b, h->len);
	pk_u64(&p, off);
	pk_u32(&p, len);
	pk_end(&p);
	assert_int_equal(feed(e, &p), 0);
	pk_free(&p);
	return id;
}

static void
test_role_dropbox(void **state)
{
	struct env *e = *state;
	struct reply r;
	struct hnd h;
	char path[PATH_MAX];
	uint8_t buf[64];
	ino_t ino;
	uint32_t id;

	e->perms = SFTP_DEFAULT_PERMS;
	assert_int_equal(SFTP_DEFAULT_PERMS, PERM_UPLOAD | PERM_LIST |
	    PERM_RENAME | PERM_MKDIR);
	reengine(e);
	upload(e, "/f.csv", (const uint8_t *)"accepted\n", 9, SSH_FX_OK);
	assert_int_equal(mode_of(e, "f.csv"), 0440);
	ino = ino_of(e, "f.csv");

	/* list: realpath, stat, a directory listing */
	id = req_path(e, SSH_FXP_REALPATH, ".");
	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_NAME);
	r_free(&r);
	id = req_path(e, SSH_FXP_STAT, "/f.csv");
	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_ATTRS);
	r_free(&r);
	(void)id;

	/* no read-back, no remove, no overwrite of the accepted file */
	expect_denied(e, req_open(e, "/f.csv", SSH_FXF_READ), "open", "f.csv");
	expect_denied(e, req_path(e, SSH_FXP_REMOVE, "/f.csv"), "remove",
	    "f.csv");
	expect_denied(e, req_open(e, "/f.csv", SSH_FXF_WRITE | SSH_FXF_CREAT |
	    SSH_FXF_TRUNC), "open", "f.csv");
	upload(e, "/g", (const uint8_t *)"other\n", 6, SSH_FX_OK);
	expect_denied(e, req_rename(e, "posix-rename@openssh.com", "/g",
	    "/f.csv"), "posix-rename", "g");
	assert_int_equal(ino_of(e, "f.csv"), ino);
	assert_int_equal(mode_of(e, "g"), 0440);
	snprintf(path, sizeof(path), "%s/f.csv", e->root);
	assert_int_equal(read_all(path, buf, sizeof(buf)), 9);
	assert_memory_equal(buf, "accepted\n", 9);
	assert_int_equal(mode_of(e, "f.csv"), 0440);

	/* rmdir needs delete; mkdir and rename are granted */
	path_expect(e, SSH_FXP_MKDIR, "/d", SSH_FX_OK);
	expect_denied(e, req_path(e, SSH_FXP_RMDIR, "/d"), "rmdir", "d");
	expect_status(e, req_rename(e, NULL, "/g", "/d/g"), SSH_FX_OK);
	expect_status(e, req_rename(e, "posix-rename@openssh.com", "/d/g",
	    "/h"), SSH_FX_OK);

	/* set times on an uploaded file succeed */
	expect_status(e, req_setstat_times(e, "/f.csv"), SSH_FX_OK);
	snprintf(path, sizeof(path), "%s/f.csv", e->root);
	{
		struct stat st;

		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mtime, 1000000001);
	}

	/* its own incomplete file: restart (TRUNC) and resume are upload */
	snprintf(path, sizeof(path), "%s/part", e->root);
	write_file(path, "0123", 0600);
	open_ok(e, "/part", SSH_FXF_WRITE | SSH_FXF_APPEND, &h);
	write_ok(e, &h, 0, "4567", 4);
	close_expect(e, &h, SSH_FX_OK);
	assert_int_equal(read_all(path, buf, sizeof(buf)), 8);
	assert_memory_equal(buf, "01234567", 8);
	write_file(path, "stale", 0600);
	chmod(path, 0600);
	assert_int_equal(unlink(path), 0);
	write_file(path, "stale", 0600);
	open_ok(e, "/part", SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC, &h);
	write_ok(e, &h, 0, "new", 3);
	close_expect(e, &h, SSH_FX_OK);

	/* a write handle opened with READ is not readable without "read" */
	open_ok(e, "/rw", SSH_FXF_READ | SSH_FXF_WRITE | SSH_FXF_CREAT, &h);
	write_ok(e, &h, 0, "abc", 3);
	expect_denied(e, req_read(e, &h, 0, 3), "read", "rw");
	close_expect(e, &h, SSH_FX_OK);

	/* a refused request with a malformed tail does not end the session */
	{
		struct pkt p = { 0 };

		pk_begin(&p, SSH_FXP_REMOVE, 7);
		pk_u32(&p, 1000);	/* string length past the end */
		pk_end(&p);
		assert_int_equal(feed(e, &p), 0);
		expect_status(e, 7, SSH_FX_PERMISSION_DENIED);
		pk_free(&p);
	}
	id = req_path(e, SSH_FXP_STAT, "/f.csv");
	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_ATTRS);
	assert_int_equal(r.id, id);
	r_free(&r);
}

static void
test_role_owner(void **state)
{
	struct env *e = *state;
	struct hnd h;
	char path[PATH_MAX];
	uint8_t buf[64];
	ino_t ino;
	uint32_t id;
	struct reply r;
	char *d;
	size_t n;

	e->perms = PERM_ALL;
	e->hook_link = 1;	/* the spool keeps the accepted inode */
	reengine(e);
	upload(e, "/f", (const uint8_t *)"one", 3, SSH_FX_OK);
	ino = ino_of(e, "f");
	/* read back */
	open_ok(e, "/f", SSH_FXF_READ, &h);
	id = req_read(e, &h, 0, 100);
	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_DATA);
	assert_int_equal(r.id, id);
	d = r_str(&r, &n);
	assert_int_equal(n, 3);
	assert_memory_equal(d, "one", 3);
	free(d);
	r_free(&r);
	close_expect(e, &h, SSH_FX_OK);
	/* overwrite an accepted file: a new file under the name */
	upload(e, "/f", (const uint8_t *)"two!", 4, SSH_FX_OK);
	assert_true(ino_of(e, "f") != ino);
	snprintf(path, sizeof(path), "%s/f", e->root);
	assert_int_equal(read_all(path, buf, sizeof(buf)), 4);
	/* posix-rename onto an existing name */
	upload(e, "/g", (const uint8_t *)"gg", 2, SSH_FX_OK);
	expect_status(e, req_rename(e, "posix-rename@openssh.com", "/g", "/f"),
	    SSH_FX_OK);
	assert_int_equal(read_all(path, buf, sizeof(buf)), 2);
	/* remove an accepted file, rmdir */
	path_expect(e, SSH_FXP_REMOVE, "/f", SSH_FX_OK);
	path_expect(e, SSH_FXP_MKDIR, "/d", SSH_FX_OK);
	path_expect(e, SSH_FXP_RMDIR, "/d", SSH_FX_OK);
	assert_int_equal(e->denials, 0);
}

static void
test_role_auditor_and_upload_only(void **state)
{
	struct env *e = *state;
	struct hnd h;
	struct reply r;
	char path[PATH_MAX];
	uint32_t id;

	snprintf(path, sizeof(path), "%s/report.csv", e->root);
	write_file(path, "x,y\n", 0440);

	/* list + read: lists and downloads, changes nothing */
	e->perms = PERM_LIST | PERM_READ;
	reengine(e);
	id = req_path(e, SSH_FXP_REALPATH, "/sub/..");
	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_NAME);
	r_free(&r);
	open_ok(e, "/report.csv", SSH_FXF_READ, &h);
	close_expect(e, &h, SSH_FX_OK);
	expect_denied(e, req_open(e, "/new", SSH_FXF_WRITE | SSH_FXF_CREAT |
	    SSH_FXF_TRUNC), "open", "new");
	assert_int_equal(faccessat(e->rootfd, "new", F_OK, AT_SYMLINK_NOFOLLOW),
	    -1);
	expect_denied(e, req_setstat_times(e, "/report.csv"), "setstat",
	    "report.csv");
	expect_denied(e, req_path(e, SSH_FXP_MKDIR, "/d"), "mkdir", "d");
	expect_denied(e, req_rename(e, NULL, "/report.csv", "/r2"), "rename",
	    "report.csv");
	assert_string_equal(e->ev_path2, "r2");
	expect_denied(e, req_ext(e, "lsetstat@openssh.com", "/report.csv",
	    NULL), "lsetstat", NULL);

	/* upload only: may start (realpath of the top) and upload, not look */
	e->perms = PERM_UPLOAD;
	reengine(e);
	id = req_path(e, SSH_FXP_REALPATH, ".");
	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_NAME);
	assert_int_equal(r.id, id);
	r_free(&r);
	id = req_ext(e, "expand-path@openssh.com", "~", NULL);
	take(e, &r);
	assert_int_equal(r.type, SSH_FXP_NAME);
	r_free(&r);
	expect_denied(e, req_path(e, SSH_FXP_REALPATH, "/sub"), "realpath",
	    "sub");
	expect_denied(e, req_path(e, SSH_FXP_STAT, "/report.csv"), "stat",
	    "report.csv");
	expect_denied(e, req_path(e, SSH_FXP_OPENDIR, "/"), "opendir", ".");
	expect_denied(e, req_ext(e, "statvfs@openssh.com", "/", NULL),
	    "statvfs", ".");
	open_ok(e, "/up", SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC, &h);
	expect_denied(e, req_handle_only(e, SSH_FXP_FSTAT, &h), "fstat", "up");
	write_ok(e, &h, 0, "data", 4);
	close_expect(e, &h, SSH_FX_OK);
	assert_int_equal(mode_of(e, "up"), 0440);
}

static void
test_max_file_size(void **state)
{
	struct env *e = *state;
	struct pkt p = { 0 };
	struct hnd h;
	uint32_t id;

	e->max_file_size = 10;
	reengine(e);
	upload(e, "/ten", (const uint8_t *)"0123456789", 10, SSH_FX_OK);
	assert_int_equal(e->hook_calls, 1);

	open_ok(e, "/big", SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC, &h);
	write_ok(e, &h, 0, "01234567", 8);
	id = e->nextid++;
	pk_write(&p, id, &h, 8, "89ab", 4);
	assert_int_equal(feed(e, &p), 0);
	expect_status_msg(e, id, SSH_FX_FAILURE,
	    "file too large (limit 10 bytes)");
	/* poisoned: later writes (even small ones) and CLOSE fail */
	id = e->nextid++;
	pk_write(&p, id, &h, 0, "x", 1);
	assert_int_equal(feed(e, &p), 0);
	expect_status_msg(e, id, SSH_FX_FAILURE, "file too large");
	id = req_handle_only(e, SSH_FXP_CLOSE, &h);
	expect_status_msg(e, id, SSH_FX_FAILURE, "limit 10 bytes");
	assert_int_equal(e->hook_calls, 1);		/* never recorded */
	assert_int_equal(mode_of(e, "big"), 0640);	/* incomplete */
	/* the handle is gone */
	id = req_handle_only(e, SSH_FXP_CLOSE, &h);
	expect_status(e, id, SSH_FX_FAILURE);
	pk_free(&p);
}

static void
test_min_free_space(void **state)
{
	struct env *e = *state;
	struct pkt p = { 0 };
	struct hnd h;
	uint32_t id;

	/* a floor no disk meets */
	e->min_free_space = INT64_MAX / 2;
	reengine(e);
	open_ok(e, "/f", SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC, &h);
	id = e->nextid++;
	pk_write(&p, id, &h, 0, "abc", 3);
	assert_int_equal(feed(e, &p), 0);
	expect_status_msg(e, id, SSH_FX_FAILURE,
	    "not enough space on the gateway; try later");
	assert_string_equal(e->ev_op, "write");
	/* the audit record says why, not only "failure" */
	assert_string_equal(e->ev_reason,
	    "not enough space on the gateway; try later");
	id = req_handle_only(e, SSH_FXP_CLOSE, &h);
	expect_status_msg(e, id, SSH_FX_FAILURE, "not enough space");
	assert_string_equal(e->ev_op, "close");
	assert_non_null(strstr(e->ev_reason, "not enough space"));
	assert_int_equal(e->hook_calls, 0);
	assert_int_equal(mode_of(e, "f"), 0640);

	/* a floor this disk meets: uploads go through */
	e->min_free_space = 1;
	reengine(e);
	upload(e, "/g", (const uint8_t *)"abc", 3, SSH_FX_OK);
	assert_int_equal(e->hook_calls, 1);
	pk_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_enders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_reports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upload_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_byte_by_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hook_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reupload_new_inode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_traversal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_cap_and_offsets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_setstat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_fstatvfs_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dirs_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_renamed_while_written, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_small_packets_one_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_role_dropbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_role_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_role_auditor_and_upload_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_file_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_min_free_space, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
