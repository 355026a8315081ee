/*
 * janitor.c - stored files leave the partner's view after visible_for (see
 * spool/janitor.h).
 *
 * The check and the unlink are two calls: a partner that renames another
 * file onto the very name in between loses that name (not its bytes: an
 * accepted file is also in the spool). Only the partner itself can do
 * that, to its own files, in a window of microseconds.
 */
#include "spool/janitor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/util.h"
#include "policy/config.h"
#include "spool/layout.h"
#include "spool/state.h"

#define JANITOR_BATCH		256	/* rows per partner per pass */
#define JANITOR_MIN_MS		1000
#define JANITOR_MAX_MS		60000
#define ACCEPTED_MODE		0440

enum { EXP_ERROR = -1, EXP_REMOVED, EXP_GONE };

/* The directories a pass removed names from, each fsync'd once before the
 * pass's state transaction commits. */
#define DIRSYNC_MAX		16

struct dirsync {
	int	 fd[DIRSYNC_MAX];
	dev_t	 dev[DIRSYNC_MAX];
	ino_t	 ino[DIRSYNC_MAX];
	int	 n;
};

/* Remembers dfd's directory (borrowed; dup'd when new). 0, or -1 if it
 * could not be synced. */
static int
dirsync_add(struct dirsync *ds, int dfd)
{
	struct stat sb;
	int i;

	if (fstat(dfd, &sb) == -1)
		return fsync(dfd);
	for (i = 0; i < ds->n; i++)
		if (ds->dev[i] == sb.st_dev && ds->ino[i] == sb.st_ino)
			return 0;
	if (ds->n == DIRSYNC_MAX || (ds->fd[ds->n] = dup(dfd)) == -1)
		return fsync(dfd);
	ds->dev[ds->n] = sb.st_dev;
	ds->ino[ds->n] = sb.st_ino;
	ds->n++;
	return 0;
}

/* fsyncs and forgets every directory. 0, or -1 if one failed (logged). */
static int
dirsync_flush(struct dirsync *ds, const char *partner)
{
	int i, rc = 0;

	for (i = 0; i < ds->n; i++) {
		if (fsync(ds->fd[i]) == -1) {
			log_warn("janitor: fsync of a directory of %s",
			    partner);
			rc = -1;
		}
		close(ds->fd[i]);
	}
	ds->n = 0;
	return rc;
}

int64_t
janitor_interval_ms(const struct config *cfg)
{
	int64_t t = JANITOR_MAX_MS, v;
	size_t i;

	for (i = 0; i < cfg->npartners; i++) {
		v = cfg->partners[i].visible_for_s;
		if (v >= 0 && v < JANITOR_MAX_MS / 500 && v * 500 < t)
			t = v * 500;	/* half the window, in ms */
	}
	return t < JANITOR_MIN_MS ? JANITOR_MIN_MS : t;
}

/*
 * The directory holding rel beneath rootfd, walked one component at a time
 * without following symlinks; *base points at rel's last component inside
 * buf. An fd (to close), or -1 with errno set.
 */
static int
open_parent(int rootfd, const char *rel, char *buf, size_t len,
    const char **base)
{
	char *comp, *slash;
	int cur, fd;

	if (xstrlcpy(buf, rel, len) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((cur = dup(rootfd)) == -1)
		return -1;
	comp = buf;
	while ((slash = strchr(comp, '/')) != NULL) {
		*slash = '\0';
		if (*comp == '\0' || strcmp(comp, ".") == 0 ||
		    strcmp(comp, "..") == 0) {
			close(cur);
			errno = EINVAL;
			return -1;
		}
		fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		close(cur);
		if (fd == -1)
			return -1;
		cur = fd;
		comp = slash + 1;
	}
	if (*comp == '\0' || strcmp(comp, ".") == 0 || strcmp(comp, "..") == 0) {
		close(cur);
		errno = EINVAL;
		return -1;
	}
	*base = comp;
	return cur;
}

/* Removes r's landing name if it still is r's accepted file. */
static int
expire_one(int rootfd, const struct file_rec *r, struct dirsync *ds)
{
	char buf[PATH_MAX];
	const char *base;
	struct stat st;
	int dfd, rc = EXP_ERROR;

	if (!spool_relpath_ok(r->path))
		return EXP_GONE;	/* not a name a session of ours wrote */
	if ((dfd = open_parent(rootfd, r->path, buf, sizeof(buf), &base)) ==
	    -1) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP ||
		    errno == EINVAL)
			return EXP_GONE;	/* a directory on the way went */
		log_warn("janitor: %s/%s", r->partner, r->path);
		return EXP_ERROR;
	}
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno == ENOENT)
			rc = EXP_GONE;
		else
			log_warn("janitor: stat %s/%s", r->partner, r->path);
		goto done;
	}
	if ((int64_t)st.st_dev != r->landing_dev ||
	    (int64_t)st.st_ino != r->landing_ino || !S_ISREG(st.st_mode) ||
	    (st.st_mode & 07777) != ACCEPTED_MODE) {
		rc = EXP_GONE;	/* another file has the name now */
		goto done;
	}
	if (unlinkat(dfd, base, 0) == -1) {
		if (errno == ENOENT)
			rc = EXP_GONE;
		else
			log_warn("janitor: remove %s/%s", r->partner, r->path);
		goto done;
	}
	if (dirsync_add(ds, dfd) == -1)
		log_warn("janitor: fsync of the directory of %s/%s",
		    r->partner, r->path);
	rc = EXP_REMOVED;
 done:
	close(dfd);
	return rc;
}

static int
pass_partner(const struct config *cfg, const struct partner *p,
    struct state *st, struct audit *au, int64_t now)
{
	struct file_rec *rows = NULL;
	struct dirsync ds;
	char dir[PATH_MAX], *gone = NULL;
	size_t n = 0, i;
	int rootfd, rc, removed = 0, batch;

	if (p->visible_for_s < 0 || p->visible_for_s > INT64_MAX / 2000)
		return 0;
	if (state_list_visible(st, p->name, now - p->visible_for_s * 1000,
	    JANITOR_BATCH, &rows, &n) == -1)
		return -1;
	if (n == 0)
		return 0;
	rootfd = -1;
	if (spool_dir_path(cfg->state_dir, SPOOL_LANDING, p->name, dir,
	    sizeof(dir)) == 0)
		rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (rootfd == -1 && errno != ENOENT) {
		log_warn("janitor: open %s", dir);
		free(rows);
		return 0;
	}
	if ((gone = calloc(n, 1)) == NULL) {
		if (rootfd != -1)
			close(rootfd);
		free(rows);
		return 0;
	}
	/*
	 * One transaction and one audit fdatasync for the pass, each
	 * directory synced once before the commit. A crash before the commit
	 * leaves rows whose name is gone: the next pass forgets them.
	 */
	memset(&ds, 0, sizeof(ds));
	batch = state_begin(st) == 0;
	for (i = 0; i < n; i++) {
		rc = rootfd == -1 ? EXP_GONE : expire_one(rootfd, &rows[i],
		    &ds);
		if (rc == EXP_ERROR)
			continue;	/* tried again next pass */
		gone[i] = rc == EXP_REMOVED;
		if (state_clear_landing(st, rows[i].id) == -1)
			break;
	}
	dirsync_flush(&ds, p->name);
	if (batch && state_commit(st) == -1)
		log_warnx("janitor: could not record the names removed from "
		    "%s's view; the next pass does", p->name);
	/* every name removed is audited, recorded or not */
	audit_defer(au);
	for (i = 0; i < n; i++) {
		if (!gone[i])
			continue;
		removed++;
		log_info("%s/%s left the partner's view (stored %lld s ago)",
		    p->name, rows[i].path,
		    (long long)((now - rows[i].stored_ms) / 1000));
		audit_emit(au, "file.expired_from_view",
		    json_pack("{s:s,s:s,s:s,s:I,s:s,s:I}", "partner", p->name,
		    "path", rows[i].path, "fid", rows[i].fid,
		    "id", (json_int_t)rows[i].id, "sha256", rows[i].sha256,
		    "visible_for_s", (json_int_t)p->visible_for_s));
	}
	audit_sync(au);
	if (rootfd != -1)
		close(rootfd);
	free(gone);
	free(rows);
	return removed;
}

int
janitor_pass(const struct config *cfg, struct state *st, struct audit *au,
    int64_t now)
{
	size_t i;
	int n, total = 0, rc = 0;

	for (i = 0; i < cfg->npartners; i++) {
		if ((n = pass_partner(cfg, &cfg->partners[i], st, au, now)) ==
		    -1)
			rc = -1;
		else
			total += n;
	}
	return rc == -1 ? -1 : total;
}

void
janitor_tick(const struct config *cfg, struct state *st, struct audit *au)
{
	static const struct config *last_cfg;
	static int64_t interval, last;
	int64_t t = mono_ms();

	if (cfg != last_cfg) {
		last_cfg = cfg;
		interval = janitor_interval_ms(cfg);
		last = t - interval;	/* a first pass at once */
	}
	if (t - last < interval)
		return;
	last = t;
	if (janitor_pass(cfg, st, au, now_ms()) == -1)
		log_warnx("janitor: the state database could not be read; "
		    "trying again in %lld s", (long long)(interval / 1000));
}
