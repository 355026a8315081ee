/*
 * fuzz_sftpseq.c - stateful libFuzzer target for the SFTP v3 engine
 * (server/sftp.c): where fuzz_sftp.c feeds raw packet bytes, this one reads
 * its input as a program of requests (open, write, read, close, rename,
 * posix-rename, remove, mkdir, rmdir, listing, stat, setstat, fsync,
 * disconnect, raw packets) that it sends as well-formed packets to two
 * engines (two sessions of one partner) on one temporary root, using the
 * handles the engines gave back. So interleavings are reached that single
 * packets never make: a rename while a file is open, a second session
 * writing the same name, a disconnect with a write handle open, a CLOSE the
 * hooks refuse.
 *
 * Checks beyond the sanitizers: the engine always answers (every request
 * gets exactly one reply with its id before the next is sent), and at CLOSE
 * the size and SHA-256 the engine gives file_stage and file_complete are
 * those of the file's bytes on disk.
 *
 * Program: one byte per operation (op = byte % OPS), its arguments from the
 * bytes that follow (names from a fixed table that includes traversal,
 * the receipts folder, temp names and a directory). The first byte sets the
 * role and limits. Seeds: the python snippet at the end of this file.
 *
 * libFuzzer build and run (clang): fuzz/build.sh, then
 *   build-fuzz/fuzz_sftpseq fuzz/corpus/sftpseq
 * With -DSLUICE_FUZZ_REPLAY it replays files/directories named on its
 * command line: the ctest fuzz.sftpseq_replay over fuzz/corpus/sftpseq/.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "policy/config.h"
#include "server/sftp.h"
#include "server/sftp_internal.h"
#include "fuzz/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NHANDLES	8
#define MAXOPS		256

struct sess {
	struct sftp	*s;
	uint8_t		 h[NHANDLES][256];	/* handles the engine gave */
	uint32_t	 hlen[NHANDLES];
	size_t		 nh;
};

struct prog {
	const uint8_t	*p;
	size_t		 n;
	uint8_t		 refuse;	/* hooks: bit 0 stage, bit 1 complete */
};

static char	 top[256];
static int	 rootfd = -1;
static uint32_t	 reqid;

static const char *const names[] = {
	"a", "b", "d/a", "d", "d/e", "d/e/f.csv", "a.part", "receipts",
	"receipts/r.txt", "../a", "/a", "d/../b", "./a", "//d//a", "x\\y", "",
	"-rf", "d/a.part", "caf\xc3\xa9", "e",
};

static uint8_t
next(struct prog *g)
{
	uint8_t b;

	if (g->n == 0)
		return 0;
	b = g->p[0];
	g->p++;
	g->n--;
	return b;
}

static const char *
name(struct prog *g)
{
	return names[next(g) % (sizeof(names) / sizeof(names[0]))];
}

/* ---- packets ------------------------------------------------------------ */

struct pkt {
	uint8_t	 b[70000];
	size_t	 n;
};

static void
p_u8(struct pkt *k, uint8_t v)
{
	if (k->n < sizeof(k->b))
		k->b[k->n++] = v;
}

static void
p_u32(struct pkt *k, uint32_t v)
{
	p_u8(k, v >> 24);
	p_u8(k, v >> 16);
	p_u8(k, v >> 8);
	p_u8(k, v);
}

static void
p_u64(struct pkt *k, uint64_t v)
{
	p_u32(k, v >> 32);
	p_u32(k, (uint32_t)v);
}

static void
p_str(struct pkt *k, const void *s, size_t n)
{
	size_t i;

	p_u32(k, (uint32_t)n);
	for (i = 0; i < n; i++)
		p_u8(k, ((const uint8_t *)s)[i]);
}

static void
p_cstr(struct pkt *k, const char *s)
{
	p_str(k, s, strlen(s));
}

static void
p_begin(struct pkt *k, uint8_t type)
{
	k->n = 4;
	p_u8(k, type);
	p_u32(k, ++reqid);
}

static void
p_handle(struct pkt *k, struct sess *se, struct prog *g)
{
	uint8_t i = next(g);

	if (se->nh == 0 || (i & 0x80))
		p_str(k, "\0\0\0\x07", 4);	/* forged */
	else
		p_str(k, se->h[i % se->nh], se->hlen[i % se->nh]);
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Reads the engine's replies: keeps new handles; 1 if one answered id. */
static int
drain(struct sess *se, uint32_t id)
{
	const uint8_t *o;
	size_t n, off = 0, len;
	int answered = 0;

	o = sftp_output(se->s, &n);
	while (n - off >= 9) {
		len = get_u32(o + off);
		if (len < 5 || len > n - off - 4)
			abort();	/* the engine writes whole packets */
		if (get_u32(o + off + 5) == id)
			answered++;
		if (o[off + 4] == SSH_FXP_HANDLE && len >= 9 &&
		    get_u32(o + off + 9) <= len - 9 &&
		    get_u32(o + off + 9) <= sizeof(se->h[0])) {
			size_t slot = se->nh < NHANDLES ? se->nh++ :
			    id % NHANDLES;

			se->hlen[slot] = get_u32(o + off + 9);
			memcpy(se->h[slot], o + off + 13, se->hlen[slot]);
		}
		off += 4 + len;
	}
	if (off != n)
		abort();
	sftp_output_consume(se->s, n);
	return answered;
}

/* Sends k; 0, or -1 if the engine ended the session. */
static int
req_send(struct sess *se, struct pkt *k, int must_answer)
{
	uint32_t len = (uint32_t)k->n - 4;
	int a;

	k->b[0] = len >> 24;
	k->b[1] = len >> 16;
	k->b[2] = len >> 8;
	k->b[3] = len;
	if (sftp_input(se->s, k->b, k->n) == -1)
		return -1;
	a = drain(se, reqid);
	if (must_answer && a != 1)
		abort();	/* one reply per request, always */
	return 0;
}

/* ---- hooks -------------------------------------------------------------- */

static void
check_file(const struct sftp_file_info *fi)
{
	uint8_t d[SHA256_LEN];
	char hex[SHA256_HEX];
	struct stat st;

	if (fstat(fi->fd, &st) == -1 || st.st_size != fi->size ||
	    sha256_fd(fi->fd, d) != 0)
		abort();
	hex_encode(d, sizeof(d), hex);
	if (strcmp(hex, fi->sha256) != 0)
		abort();	/* the engine's hash is not the file's */
}

static int
hook_stage(void *arg, const struct sftp_file_info *fi)
{
	struct prog *g = arg;

	check_file(fi);
	return (g->refuse & 1) ? -1 : 0;
}

static void
hook_unstage(void *arg, const struct sftp_file_info *fi)
{
	(void)strlen(fi->path);
}

static int
hook_complete(void *arg, const struct sftp_file_info *fi)
{
	struct prog *g = arg;

	check_file(fi);
	return (g->refuse & 2) ? -1 : 0;
}

static void
hook_event(void *arg, const char *op, const char *path, const char *path2,
    uint32_t status, const char *reason)
{
	volatile size_t n = strlen(op) + (path ? strlen(path) : 0) +
	    (path2 ? strlen(path2) : 0) + (reason ? strlen(reason) : 0);

	(void)n;
}

static void
hook_access(void *arg, const struct sftp_access *a)
{
	volatile size_t n = strlen(a->path);

	(void)n;
}

/* ---- the program -------------------------------------------------------- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (ftw->level == 0)
		return 0;
	if (flag == FTW_D || flag == FTW_DP)
		chmod(path, 0700);
	return remove(path);
}

static void
setup_once(void)
{
	const char *tmp;

	if (rootfd != -1)
		return;
	log_init("fuzz", 0);
	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(top, sizeof(top), "%s/fuzz_sftpseq.XXXXXX", tmp);
	if (mkdtemp(top) == NULL ||
	    (rootfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		abort();
}

static int
session_new(struct sess *se, const struct sftp_params *p)
{
	static const uint8_t init[] = { 0, 0, 0, 5, SSH_FXP_INIT, 0, 0, 0, 3 };

	memset(se, 0, sizeof(*se));
	if ((se->s = sftp_new(p)) == NULL)
		return -1;
	if (sftp_input(se->s, init, sizeof(init)) == -1)
		abort();
	(void)drain(se, 0);
	return 0;
}

/* One operation on se. 0, or -1 if the session ended. */
static int
op(struct sess *se, struct prog *g, uint8_t code)
{
	static struct pkt k;
	static uint8_t buf[66000];
	uint32_t flags, n;
	uint8_t b;
	size_t i;

	switch (code % 17) {
	case 0:		/* OPEN */
		p_begin(&k, SSH_FXP_OPEN);
		p_cstr(&k, name(g));
		b = next(g);
		flags = (b & 3) == 0 ? SSH_FXF_WRITE | SSH_FXF_CREAT |
		    SSH_FXF_TRUNC : (b & 3) == 1 ? SSH_FXF_READ :
		    (b & 3) == 2 ? SSH_FXF_WRITE | SSH_FXF_CREAT : b;
		if (b & 4)
			flags |= SSH_FXF_EXCL;
		if (b & 8)
			flags |= SSH_FXF_READ;
		p_u32(&k, flags);
		p_u32(&k, 0);
		break;
	case 1:		/* WRITE: offset and length small, bytes from the input */
		p_begin(&k, SSH_FXP_WRITE);
		p_handle(&k, se, g);
		b = next(g);
		p_u64(&k, b == 0xff ? (uint64_t)1 << 62 : (uint64_t)b * 97);
		n = next(g);
		n = n == 0xff ? 65000 : n;
		for (i = 0; i < n; i++)
			buf[i] = (uint8_t)(i * 31 + b);
		p_str(&k, buf, n);
		break;
	case 2:		/* CLOSE */
		p_begin(&k, SSH_FXP_CLOSE);
		p_handle(&k, se, g);
		break;
	case 3:		/* RENAME */
		p_begin(&k, SSH_FXP_RENAME);
		p_cstr(&k, name(g));
		p_cstr(&k, name(g));
		break;
	case 4:		/* posix-rename */
		p_begin(&k, SSH_FXP_EXTENDED);
		p_cstr(&k, "posix-rename@openssh.com");
		p_cstr(&k, name(g));
		p_cstr(&k, name(g));
		break;
	case 5:
		p_begin(&k, SSH_FXP_REMOVE);
		p_cstr(&k, name(g));
		break;
	case 6:
		p_begin(&k, SSH_FXP_MKDIR);
		p_cstr(&k, name(g));
		p_u32(&k, 0);
		break;
	case 7:
		p_begin(&k, SSH_FXP_RMDIR);
		p_cstr(&k, name(g));
		break;
	case 8:
		p_begin(&k, SSH_FXP_OPENDIR);
		p_cstr(&k, name(g));
		break;
	case 9:
		p_begin(&k, SSH_FXP_READDIR);
		p_handle(&k, se, g);
		break;
	case 10:	/* READ */
		p_begin(&k, SSH_FXP_READ);
		p_handle(&k, se, g);
		b = next(g);
		p_u64(&k, (uint64_t)b * 61);
		p_u32(&k, next(g) == 0xff ? 0xffffffffu : (uint32_t)b * 300);
		break;
	case 11:	/* STAT, LSTAT, FSTAT */
		b = next(g);
		p_begin(&k, b % 3 == 0 ? SSH_FXP_STAT : b % 3 == 1 ?
		    SSH_FXP_LSTAT : SSH_FXP_FSTAT);
		if (b % 3 == 2)
			p_handle(&k, se, g);
		else
			p_cstr(&k, name(g));
		break;
	case 12:	/* SETSTAT / FSETSTAT: size, permissions, times */
		b = next(g);
		p_begin(&k, b & 1 ? SSH_FXP_FSETSTAT : SSH_FXP_SETSTAT);
		if (b & 1)
			p_handle(&k, se, g);
		else
			p_cstr(&k, name(g));
		flags = (b >> 1) & 0xf;
		p_u32(&k, flags);
		if (flags & 0x1)
			p_u64(&k, next(g));
		if (flags & 0x2) {
			p_u32(&k, 0);
			p_u32(&k, 0);
		}
		if (flags & 0x4)
			p_u32(&k, next(g) & 1 ? 0777 : 0400);
		if (flags & 0x8) {
			p_u32(&k, 1700000000);
			p_u32(&k, 1700000000);
		}
		break;
	case 13:	/* fsync@openssh.com, statvfs, REALPATH */
		b = next(g);
		p_begin(&k, b % 3 == 2 ? SSH_FXP_REALPATH : SSH_FXP_EXTENDED);
		if (b % 3 == 0) {
			p_cstr(&k, "fsync@openssh.com");
			p_handle(&k, se, g);
		} else if (b % 3 == 1) {
			p_cstr(&k, "statvfs@openssh.com");
			p_cstr(&k, name(g));
		} else
			p_cstr(&k, name(g));
		break;
	case 14:	/* the hooks refuse from now on (or not) */
		g->refuse = next(g);
		return 0;
	case 15:	/* disconnect: handles left open */
		return -1;
	default:	/* a raw request: type and up to 64 body bytes */
		p_begin(&k, next(g));
		n = next(g) % 64;
		for (i = 0; i < n; i++)
			p_u8(&k, next(g));
		return req_send(se, &k, 0);
	}
	return req_send(se, &k, 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sftp_params p;
	struct sess se[2];
	struct prog g;
	uint8_t first, code;
	int i, cur = 0, ops = 0;

	if (size < 1)
		return 0;
	setup_once();
	first = data[0];
	memset(&g, 0, sizeof(g));
	g.p = data + 1;
	g.n = size - 1;
	memset(&p, 0, sizeof(p));
	p.rootfd = rootfd;
	p.max_handles = 4 + (first & 3);
	p.perms = (first & 0x10) ? (first & 0x20 ? PERM_UPLOAD | PERM_LIST :
	    PERM_UPLOAD | PERM_RENAME | PERM_LIST | PERM_READ) : PERM_ALL;
	p.max_file_size = (first & 0x40) ? 300 : 0;
	p.receipts_dir = "receipts";
	p.hooks.arg = &g;
	p.hooks.file_stage = hook_stage;
	p.hooks.file_unstage = hook_unstage;
	p.hooks.file_complete = hook_complete;
	p.hooks.event = hook_event;
	p.hooks.access = hook_access;
	if (session_new(&se[0], &p) == -1)
		return 0;
	if (session_new(&se[1], &p) == -1) {
		sftp_free(se[0].s);
		return 0;
	}
	while (g.n > 0 && ops++ < MAXOPS) {
		code = next(&g);
		/* the top bit: the other session sends this one */
		if (code & 0x80)
			cur ^= 1;
		if (op(&se[cur], &g, code & 0x7f) == -1) {
			sftp_free(se[cur].s);
			if (session_new(&se[cur], &p) == -1)
				break;
		}
	}
	for (i = 0; i < 2; i++)
		if (se[i].s != NULL)
			sftp_free(se[i].s);
	nftw(top, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

#ifdef SLUICE_FUZZ_REPLAY
int
main(int argc, char **argv)
{
	int rc = fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);

	if (rootfd != -1) {
		close(rootfd);
		rmdir(top);
	}
	return rc;
}
#endif

/*
 * Seeds (run from the repository root): each a program as above.
 *
 * python3 - <<'EOF'
 * import os
 * d = 'fuzz/corpus/sftpseq'; os.makedirs(d, exist_ok=True)
 * OPEN, WRITE, CLOSE, RENAME, PRENAME, REMOVE, MKDIR, RMDIR, OPENDIR, READDIR, READ, STAT, \
 *     SETSTAT, EXT, REFUSE, DISCONNECT, RAW = range(17)
 * A, B, DA, D, DE, DEF, PART = range(7); OTHER = 0x80
 * seeds = {
 *  'upload': [0, OPEN, A, 0, WRITE, 0, 0, 40, WRITE, 0, 1, 40, CLOSE, 0, STAT, 0, A],
 *  'temp_rename': [0, OPEN, PART, 0, WRITE, 0, 0, 200, CLOSE, 0, RENAME, PART, A, OPENDIR, D, READDIR, 0],
 *  'rename_open': [0, OPEN, A, 0, WRITE, 0, 3, 9, RENAME, A, B, WRITE, 0, 0, 9, CLOSE, 0, STAT, 0, B],
 *  'two_sessions': [0, OPEN, A, 0, WRITE, 0, 0, 50, OTHER | OPEN, A, 0, OTHER | WRITE, 0, 0, 5,
 *                   OTHER | CLOSE, 0, OTHER | CLOSE, 0],
 *  'disconnect': [0, OPEN, A, 0, WRITE, 0, 0, 99, DISCONNECT, OPEN, A, 2, WRITE, 0, 2, 9, CLOSE, 0],
 *  'refused_close': [0, REFUSE, 2, OPEN, A, 0, WRITE, 0, 0, 7, CLOSE, 0, REFUSE, 0, OPEN, A, 2, CLOSE, 0],
 *  'dirs': [0, MKDIR, D, MKDIR, DE, OPEN, DEF, 0, WRITE, 0, 0, 10, CLOSE, 0, PRENAME, DEF, DA,
 *           RMDIR, DE, REMOVE, DA, RMDIR, D],
 *  'setstat': [0, OPEN, A, 0, WRITE, 0, 0, 80, SETSTAT, 3, 10, SETSTAT, 0x11, 0, SETSTAT, 8, A, 1,
 *              CLOSE, 0, READ, 0, 0, 0, OPEN, A, 1, READ, 0, 1, 0],
 *  'limits': [0x40, OPEN, A, 0, WRITE, 0, 0, 255, WRITE, 0, 0xff, 1, CLOSE, 0, EXT, 0, 0, EXT, 1, A],
 *  'receipts': [0x10, OPEN, 8, 0, MKDIR, 7, REMOVE, 8, RENAME, A, 8, OPEN, 9, 0, OPEN, 10, 0],
 * }
 * for k, v in seeds.items(): open(os.path.join(d, k), 'wb').write(bytes(v))
 * EOF
 */
