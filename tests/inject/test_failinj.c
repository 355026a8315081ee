/*
 * test_failinj.c - failure injection swept over the CLOSE path and the
 * password check (issue #13), in the manner of libssh's nalloc and curl's
 * torture tests: the nth allocation, fsync, write, link or rename fails,
 * for every n until a run meets no failure, and after each run the
 * invariants are checked, not only that nothing crashed:
 *
 *  - a failed allocation never logs anyone in (policy_password_ok);
 *  - CLOSE answers SSH_FX_OK only if the file is complete (mode 0440,
 *    its bytes), linked into spool/incoming and recorded durably (its
 *    receipt, or a state database row where the receipt could not be
 *    written);
 *  - a CLOSE that fails leaves nothing half-received: the file is
 *    incomplete again (not 0440), no spool link, no receipt, no row.
 *
 * The SFTP engine (server/sftp.c) runs in-process with hooks that do what
 * the session's do (server/session.c hook_file_stage/_unstage/_complete:
 * receipt, link into incoming, fsync, the row where no receipt), over a
 * real temporary directory and state database. The faults come from
 * failinj.c linked into this program. Plain C: cmocka would share the
 * failing allocator.
 */
#include <crypt.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "policy/config.h"
#include "policy/policy.h"
#include "server/sftp.h"
#include "server/sftp_internal.h"
#include "spool/receipt.h"
#include "spool/state.h"

#include "failinj.h"

#define MAXRUNS	20000

static int failures;

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		failinj_disarm();					\
		fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__,	\
		    #cond);						\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		failures++;						\
	}								\
} while (0)

/* ------------------------------------------------- the session's hooks -- */

struct env {
	char		 top[128], root[256], incoming[256];
	int		 rootfd, incomingfd;
	struct state	*st;
	struct file_rec	 rec;
	int		 staged_receipt;
	char		 staged[33];
	int		 no_receipts;	/* as on a file system without xattrs */
};

static int
hook_stage(void *arg, const struct sftp_file_info *fi)
{
	struct env *e = arg;
	char procpath[64];
	struct stat sb;

	memset(&e->rec, 0, sizeof(e->rec));
	e->staged[0] = '\0';
	e->staged_receipt = 0;
	if (random_id(e->rec.fid, sizeof(e->rec.fid)) == -1)
		return -1;
	xstrlcpy(e->rec.partner, "bank", sizeof(e->rec.partner));
	xstrlcpy(e->rec.path, fi->path, sizeof(e->rec.path));
	xstrlcpy(e->rec.remote, "192.0.2.1", sizeof(e->rec.remote));
	xstrlcpy(e->rec.session, "s1", sizeof(e->rec.session));
	xstrlcpy(e->rec.sha256, fi->sha256, sizeof(e->rec.sha256));
	e->rec.size = fi->size;
	e->rec.received_ms = 1;
	if (fstat(fi->fd, &sb) == 0) {
		e->rec.landing_dev = (int64_t)sb.st_dev;
		e->rec.landing_ino = (int64_t)sb.st_ino;
	}
	if (!e->no_receipts && receipt_write(fi->fd, &e->rec) == 0)
		e->staged_receipt = 1;	/* else: the row, at complete */
	snprintf(procpath, sizeof(procpath), "/proc/self/fd/%d", fi->fd);
	if (linkat(AT_FDCWD, procpath, e->incomingfd, e->rec.fid,
	    AT_SYMLINK_FOLLOW) == -1) {
		if (e->staged_receipt)
			(void)receipt_remove(fi->fd);
		e->staged_receipt = 0;
		return -1;
	}
	xstrlcpy(e->staged, e->rec.fid, sizeof(e->staged));
	return 0;
}

static void
hook_unstage(void *arg, const struct sftp_file_info *fi)
{
	struct env *e = arg;

	if (e->staged_receipt)
		(void)receipt_remove(fi->fd);
	e->staged_receipt = 0;
	if (e->staged[0] != '\0')
		(void)unlinkat(e->incomingfd, e->staged, 0);
	e->staged[0] = '\0';
}

static int
hook_complete(void *arg, const struct sftp_file_info *fi)
{
	struct env *e = arg;

	(void)fi;
	if (e->staged[0] == '\0' || fsync(e->incomingfd) == -1)
		return -1;
	if (!e->staged_receipt && state_insert(e->st, &e->rec) == -1)
		return -1;
	e->staged[0] = '\0';
	return 0;
}

/* ------------------------------------------- packets, without malloc -- */

static uint8_t pb[1 << 17];
static size_t plen, pstart;

static void
p32(uint32_t v)
{
	pb[plen++] = v >> 24;
	pb[plen++] = v >> 16;
	pb[plen++] = v >> 8;
	pb[plen++] = v;
}

static void
pdata(const void *d, size_t n)
{
	p32((uint32_t)n);
	memcpy(pb + plen, d, n);
	plen += n;
}

static void
pbegin(uint8_t type, uint32_t id)
{
	pstart = plen;
	p32(0);
	pb[plen++] = type;
	if (type != SSH_FXP_INIT)
		p32(id);
}

static void
pend(void)
{
	uint32_t n = (uint32_t)(plen - pstart - 4);

	pb[pstart] = n >> 24;
	pb[pstart + 1] = n >> 16;
	pb[pstart + 2] = n >> 8;
	pb[pstart + 3] = n;
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/*
 * Feeds the packet built; returns -1 if the engine ended the session.
 * Replies are consumed: the one with want_id is described in *type and
 * *status, its handle (if any) copied to hb/hl.
 */
static int
feed(struct sftp *s, uint32_t want_id, int *type, uint32_t *status,
    uint8_t *hb, size_t *hl)
{
	const uint8_t *o;
	size_t olen;
	uint32_t n, id;
	int rc;

	rc = sftp_input(s, pb, plen);
	plen = 0;
	*type = -1;
	while ((o = sftp_output(s, &olen)) != NULL && olen >= 9) {
		n = rd32(o);
		if (olen < 4 + (size_t)n)
			break;
		id = o[4] == SSH_FXP_VERSION ? 0 : rd32(o + 5);
		if (id == want_id) {
			*type = o[4];
			if (o[4] == SSH_FXP_STATUS)
				*status = rd32(o + 9);
			if (o[4] == SSH_FXP_HANDLE && hb != NULL) {
				*hl = rd32(o + 9);
				memcpy(hb, o + 13, *hl);
			}
		}
		sftp_output_consume(s, 4 + (size_t)n);
	}
	return rc;
}

/* -------------------------------------------------------------- runs -- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static void
env_reset(struct env *e)
{
	if (e->rootfd != -1)
		close(e->rootfd);
	if (e->incomingfd != -1)
		close(e->incomingfd);
	if (e->st != NULL)
		state_close(e->st);
	nftw(e->top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (mkdir(e->top, 0700) == -1 || mkdir(e->root, 0700) == -1 ||
	    mkdir(e->incoming, 0700) == -1) {
		perror("mkdir");
		exit(2);
	}
	e->rootfd = open(e->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	e->incomingfd = open(e->incoming, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (e->rootfd == -1 || e->incomingfd == -1 ||
	    (e->st = state_open(e->top)) == NULL) {
		fprintf(stderr, "cannot set up %s\n", e->top);
		exit(2);
	}
}

static uint8_t data[100000];

/* What CLOSE left must agree with its answer. */
static void
check_close(struct env *e, const char *what, long n, int ended, int ctype,
    uint32_t cst)
{
	struct stat sb, lb;
	struct file_rec r;
	DIR *d;
	struct dirent *de;
	char fid[256] = "", path[512];
	int fd, links = 0, rc, known = 0;
	uint8_t back[sizeof(data) + 1];
	ssize_t got;
	int ok = !ended && ctype == SSH_FXP_STATUS && cst == SSH_FX_OK;

	if ((d = opendir(e->incoming)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.') {
				links++;
				xstrlcpy(fid, de->d_name, sizeof(fid));
			}
		closedir(d);
	}
	snprintf(path, sizeof(path), "%s/in.csv", e->root);
	if (fid[0] != '\0')
		known = state_fid_known(e->st, fid);
	if (ok) {
		CHECK(stat(path, &sb) == 0 && (sb.st_mode & 07777) == 0440,
		    "%s #%ld: OK but in.csv is not complete", what, n);
		CHECK(links == 1, "%s #%ld: OK but %d spool links", what, n,
		    links);
		if (links != 1)
			return;
		snprintf(path, sizeof(path), "%s/%s", e->incoming, fid);
		CHECK(stat(path, &lb) == 0 && lb.st_ino == sb.st_ino,
		    "%s #%ld: the spool link is not the file", what, n);
		fd = open(path, O_RDONLY);
		CHECK(fd != -1, "%s #%ld: open %s", what, n, path);
		if (fd == -1)
			return;
		got = read(fd, back, sizeof(back));
		CHECK(got == (ssize_t)sizeof(data) &&
		    memcmp(back, data, sizeof(data)) == 0,
		    "%s #%ld: OK but the bytes differ", what, n);
		rc = receipt_read(fd, &r);
		close(fd);
		CHECK((rc == 1 && strcmp(r.fid, fid) == 0 &&
		    r.size == (int64_t)sizeof(data)) || known == 1,
		    "%s #%ld: OK but neither a receipt (%d) nor a row (%d)",
		    what, n, rc, known);
	} else {
		CHECK(stat(path, &sb) == -1 || (sb.st_mode & 07777) != 0440,
		    "%s #%ld: refused (%s, status %u) but in.csv is 0440", what,
		    n, ended ? "ended" : "answered", cst);
		CHECK(links == 0, "%s #%ld: refused but %d spool links (%s)",
		    what, n, links, fid);
		CHECK(known != 1, "%s #%ld: refused but a row for %s", what, n,
		    fid);
		if (stat(path, &sb) == 0 && (fd = open(path, O_RDONLY)) != -1) {
			rc = receipt_present(fd);
			close(fd);
			CHECK(rc == 0, "%s #%ld: refused but a receipt on in.csv",
			    what, n);
		}
	}
}

/*
 * One upload (INIT, OPEN, WRITEs, CLOSE) with kind's nth call failing
 * with err. Returns 1 if a failure was injected (the sweep goes on).
 */
static int
run_upload(struct env *e, enum failinj_kind kind, long n, int err,
    const char *what, int *acked)
{
	struct sftp_params p;
	struct sftp *s;
	uint8_t hb[256];
	size_t hl = 0, off, c;
	uint32_t st = 0, id = 10, flags;
	int type, ended = 0, injected;

	env_reset(e);
	memset(&p, 0, sizeof(p));
	p.rootfd = e->rootfd;
	p.perms = PERM_ALL;
	p.hooks.arg = e;
	p.hooks.file_stage = hook_stage;
	p.hooks.file_unstage = hook_unstage;
	p.hooks.file_complete = hook_complete;
	if ((s = sftp_new(&p)) == NULL) {
		fprintf(stderr, "sftp_new failed\n");
		exit(2);
	}
	failinj_arm(kind, n, 1, err);

	pbegin(SSH_FXP_INIT, 0);
	p32(3);
	pend();
	if (feed(s, 0, &type, &st, NULL, NULL) == -1 ||
	    type != SSH_FXP_VERSION) {
		ended = 1;
		goto done;
	}
	pbegin(SSH_FXP_OPEN, 1);
	pdata("in.csv", 6);
	flags = SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC;
	p32(flags);
	p32(0);
	pend();
	if (feed(s, 1, &type, &st, hb, &hl) == -1 || type != SSH_FXP_HANDLE) {
		ended = type == -1;
		goto done;
	}
	for (off = 0; off < sizeof(data); off += c) {
		c = sizeof(data) - off > 32768 ? 32768 : sizeof(data) - off;
		pbegin(SSH_FXP_WRITE, id);
		pdata(hb, hl);
		p32(0);
		p32((uint32_t)off);
		pdata(data + off, c);
		pend();
		/* a failed WRITE is answered; the client would stop here,
		 * but CLOSE must refuse even if it goes on */
		if (feed(s, id++, &type, &st, NULL, NULL) == -1) {
			ended = 1;
			goto done;
		}
	}
	pbegin(SSH_FXP_CLOSE, 99);
	pdata(hb, hl);
	pend();
	if (feed(s, 99, &type, &st, NULL, NULL) == -1)
		ended = 1;
	if (type == -1)
		ended = 1;
	failinj_disarm();
	check_close(e, what, n, ended, type, st);
	*acked = !ended && type == SSH_FXP_STATUS && st == SSH_FX_OK;
	injected = failinj_injected() > 0;
	sftp_free(s);
	return injected;
 done:
	failinj_disarm();
	injected = failinj_injected() > 0;
	check_close(e, what, n, 1, -1, 0);
	*acked = 0;
	sftp_free(s);
	return injected;
}

static void
sweep_upload(struct env *e, enum failinj_kind kind, int err, const char *what)
{
	long n;
	int acked, refused = 0, before = failures;

	for (n = 1; n < MAXRUNS; n++) {
		if (!run_upload(e, kind, n, err, what, &acked))
			break;
		refused += !acked;
		if (failures > before + 5)
			break;
	}
	CHECK(acked, "%s: the upload with no fault was refused", what);
	printf("%s: %ld failure points swept, %d refused, %d acknowledged "
	    "after a failure\n", what, n - 1, refused, (int)(n - 1) - refused);
}

/* A failed allocation never logs anyone in. */
static void
sweep_password(void)
{
	struct partner p;
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;
	char *hash;
	long n;
	int good, bad, goods = 0;

	memset(&p, 0, sizeof(p));
	memset(&cd, 0, sizeof(cd));
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL ||
	    (hash = crypt_r("right horse", salt, &cd)) == NULL ||
	    (p.password_hash = strdup(hash)) == NULL) {
		fprintf(stderr, "cannot make a yescrypt hash\n");
		exit(2);
	}
	for (n = 1; n < MAXRUNS; n++) {
		failinj_arm(FI_ALLOC, n, 1, ENOMEM);
		bad = policy_password_ok(&p, "wrong horse");
		failinj_disarm();
		CHECK(bad == 0, "password: allocation #%ld let a wrong "
		    "password in", n);
		failinj_arm(FI_ALLOC, n, 1, ENOMEM);
		good = policy_password_ok(&p, "right horse");
		failinj_disarm();
		CHECK(good == 0 || good == 1, "password: %d", good);
		goods += good;
		if (failinj_injected() == 0) {
			CHECK(good == 1, "password: refused with no fault");
			break;
		}
	}
	free(p.password_hash);
	printf("password: %ld allocation points swept, the right password "
	    "accepted %d times\n", n - 1, goods);
}

int
main(void)
{
	struct env e;
	/* with receipts, then with rows in the state database (the
	 * listener's part on a file system without extended attributes) */
	static const struct {
		enum failinj_kind kind;
		int err, no_receipts;
		const char *what;
	} sweeps[] = {
		{ FI_ALLOC, ENOMEM, 0, "close/allocation" },
		{ FI_FSYNC, EIO, 0, "close/fsync EIO" },
		{ FI_FSYNC, ENOSPC, 0, "close/fsync ENOSPC" },
		{ FI_WRITE, EIO, 0, "close/write EIO" },
		{ FI_WRITE, ENOSPC, 0, "close/write ENOSPC" },
		{ FI_LINK, EIO, 0, "close/link EIO" },
		{ FI_ALLOC, ENOMEM, 1, "close+row/allocation" },
		{ FI_FSYNC, EIO, 1, "close+row/fsync EIO" },
		{ FI_WRITE, EIO, 1, "close+row/write EIO" },
		{ FI_WRITE, ENOSPC, 1, "close+row/write ENOSPC" },
	};
	size_t i;
	unsigned seed = 1;

	for (i = 0; i < sizeof(data); i++) {
		seed = seed * 1103515245u + 12345u;
		data[i] = (uint8_t)(seed >> 16);
	}
	memset(&e, 0, sizeof(e));
	e.rootfd = e.incomingfd = -1;
	snprintf(e.top, sizeof(e.top), "/tmp/test_failinj.%d", (int)getpid());
	snprintf(e.root, sizeof(e.root), "%s/root", e.top);
	snprintf(e.incoming, sizeof(e.incoming), "%s/incoming", e.top);

	/*
	 * One clean upload first: the session's libssh has set OpenSSL up
	 * (its providers, EVP_MD_fetch's store) long before a CLOSE, and
	 * OpenSSL 3.0 does not survive an allocation failing inside that
	 * lazy set-up (a NULL lock, SIGSEGV): not sluice's code to sweep.
	 */
	{
		int acked = 0;

		(void)run_upload(&e, FI_ALLOC, 0, ENOMEM, "warm-up", &acked);
		CHECK(acked, "the upload with no fault was refused");
	}
	sweep_password();
	for (i = 0; i < sizeof(sweeps) / sizeof(sweeps[0]); i++) {
		e.no_receipts = sweeps[i].no_receipts;
		sweep_upload(&e, sweeps[i].kind, sweeps[i].err, sweeps[i].what);
	}

	close(e.rootfd);
	close(e.incomingfd);
	state_close(e.st);
	nftw(e.top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	printf("%s: %d invariant violations\n", failures ? "FAIL" : "ok",
	    failures);
	return failures ? 1 : 0;
}
