/*
 * uploader.c - the uploader role. Life of a file here, one transaction per
 * step: accepted -> uploading (claimed) -> stored (the store confirmed the
 * bytes; key and checksum recorded) -> removed (spool copy deleted) or
 * archived (moved to state_dir/archive/, deleted after retention) ; or back
 * to accepted with a later next attempt (transient failure), or held (needs
 * an operator: `sluice queue retry`).
 *
 * A SIGKILL anywhere is safe: at start "uploading" goes back to "accepted"
 * and the conditional write (If-None-Match, or a HEAD before a multipart
 * upload) turns a repeat into "already stored"; a multipart upload resumes
 * from the parts recorded; "stored" files get their retention step.
 */
#include "uploader/uploader.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/util.h"
#include "spool/intake.h"

#define MAX_WORKERS		64
#define STALE_UPLOAD_S		86400
#define STALE_SWEEP_MS		(3600 * 1000)
#define PURGE_SWEEP_MS		(60 * 1000)

struct uploader {
	const struct config	*cfg;
	/* Idle workers sleep on wake; the main thread broadcasts when the
	 * database's WAL changes (inotify), i.e. a file may have become due. */
	pthread_mutex_t		 mu;
	pthread_cond_t		 wake;
	uint64_t		 gen;
	int			 idle_ms;	/* 1000 with inotify, else 100 */
	char			 ready[PATH_MAX];
	char			 archive[PATH_MAX];
	int			 readyfd;
	int			 archivefd;
};

struct worker {
	struct uploader		*u;
	int			 n;
	struct state		*st;
	struct audit		*au;
	struct store		*store;
	pthread_t		 tid;
	int			 started;
	struct file_rec		 r;
};

static int64_t
max_backoff_ms(const struct config *cfg)
{
	return cfg->uploader.max_backoff_s > 0 ?
	    cfg->uploader.max_backoff_s * 1000 : UPLOAD_BACKOFF_CAP_MS;
}

static void
audit_file(struct worker *w, const char *event, const struct file_rec *r,
    json_t *extra)
{
	json_t *f = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s}", "partner",
	    r->partner, "fid", r->fid, "path", r->path, "size",
	    (json_int_t)r->size, "sha256", r->sha256, "key", r->object_key);
	const char *k;
	json_t *v;

	if (f != NULL && extra != NULL)
		json_object_foreach(extra, k, v)
			json_object_set(f, k, v);
	json_decref(extra);
	audit_emit(w->au, event, f);
}

/* ---- multipart persistence hooks ------------------------------------------ */

static int
hk_begin(void *arg, const char *key, const char *upload_id, int64_t part_size,
    int nparts)
{
	struct worker *w = arg;

	return mp_begin(w->st, w->r.id, key, upload_id, part_size, nparts);
}

static int
hk_part(void *arg, const struct mp_part *p)
{
	struct worker *w = arg;

	return mp_part_save(w->st, w->r.id, p);
}

static void
hk_forget(void *arg)
{
	struct worker *w = arg;

	mp_forget(w->st, w->r.id);
}

/* ---- retention ------------------------------------------------------------ */

/* r is stored: delete its spool copy, or move it to archive/. */
static void
retention(struct worker *w, struct file_rec *r)
{
	struct uploader *u = w->u;
	const char *to;

	if (u->cfg->uploader.retention_keep_s > 0) {
		if (renameat(u->readyfd, r->fid, u->archivefd, r->fid) == -1 &&
		    errno != ENOENT) {
			log_warn("cannot move spool/ready/%s to archive/", r->fid);
			return;
		}
		fsync(u->archivefd);
		fsync(u->readyfd);
		to = FS_ARCHIVED;
	} else {
		if (unlinkat(u->readyfd, r->fid, 0) == -1 && errno != ENOENT) {
			log_warn("cannot remove spool/ready/%s", r->fid);
			return;
		}
		fsync(u->readyfd);
		to = FS_REMOVED;
	}
	if (state_move(w->st, r->id, FS_STORED, to, NULL) == 1) {
		xstrlcpy(r->state, to, sizeof(r->state));
		audit_file(w, strcmp(to, FS_ARCHIVED) == 0 ? "file.archived" :
		    "file.removed", r, NULL);
	}
}

/* Files left "stored" by a crash get their retention step. */
static void
finish_stored(struct worker *w)
{
	sqlite3_stmt *s = NULL;
	struct file_rec r;
	int64_t ids[256];
	int n = 0, i;

	if (sqlite3_prepare_v2(state_db(w->st), "SELECT id FROM files WHERE "
	    "state = 'stored' LIMIT 256", -1, &s, NULL) != SQLITE_OK)
		return;
	while (n < 256 && sqlite3_step(s) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	for (i = 0; i < n; i++)
		if (state_get(w->st, ids[i], &r) == 1 &&
		    strcmp(r.state, FS_STORED) == 0)
			retention(w, &r);
}

/* Archived files past the retention period: delete, state removed. */
static void
purge_archive(struct worker *w)
{
	sqlite3_stmt *s = NULL;
	struct file_rec r;
	int64_t ids[256], cutoff;
	int n = 0, i;

	cutoff = now_ms() - w->u->cfg->uploader.retention_keep_s * 1000;
	if (sqlite3_prepare_v2(state_db(w->st), "SELECT id FROM files WHERE "
	    "state = 'archived' AND stored_ms < ? LIMIT 256", -1, &s,
	    NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(s, 1, cutoff);
	while (n < 256 && sqlite3_step(s) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	for (i = 0; i < n; i++) {
		if (state_get(w->st, ids[i], &r) != 1)
			continue;
		if (unlinkat(w->u->archivefd, r.fid, 0) == -1 && errno != ENOENT) {
			log_warn("cannot remove archive/%s", r.fid);
			continue;
		}
		fsync(w->u->archivefd);
		if (state_move(w->st, r.id, FS_ARCHIVED, FS_REMOVED, NULL) == 1)
			audit_file(w, "file.removed", &r, json_pack("{s:s}",
			    "reason", "retention period over"));
	}
}

static int
keep_upload(void *arg, const char *key, const char *upload_id)
{
	struct worker *w = arg;

	return mp_upload_known(w->st, upload_id) != 0;	/* error: keep */
}

/* ---- one file ------------------------------------------------------------- */

static void
upload_one(struct worker *w, struct file_rec *r)
{
	const struct config *cfg = w->u->cfg;
	struct put_request req;
	struct put_result res;
	struct mp_saved saved;
	struct mp_hooks hooks;
	struct stat sb;
	char received[40];
	const char *names[16] = { "sha256", "partner", "received-at", "fid" };
	const char *values[16];
	json_t *meta = NULL, *v;
	const char *k;
	size_t nmeta = 4;
	int64_t wait_ms;
	int fd, cost, budget_ok;

	memset(&res, 0, sizeof(res));
	memset(&saved, 0, sizeof(saved));
	fd = openat(w->u->readyfd, r->fid, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &sb) == -1 || sb.st_size != r->size) {
		res.outcome = PUT_FATAL;
		xsnprintf(res.error, sizeof(res.error), "spool file %s %s",
		    r->fid, fd == -1 ? strerror(errno) :
		    "changed size since it was received");
	} else {
		iso8601_ms(r->received_ms, received, sizeof(received));
		values[0] = r->sha256;
		values[1] = r->partner;
		values[2] = received;
		values[3] = r->fid;
		/* Metadata the intake added (signer, signed-at, ...). */
		if ((meta = json_loads(r->meta, 0, NULL)) != NULL &&
		    json_is_object(meta))
			json_object_foreach(meta, k, v) {
				if (nmeta < 16 && json_is_string(v)) {
					names[nmeta] = k;
					values[nmeta++] = json_string_value(v);
				}
			}
		memset(&hooks, 0, sizeof(hooks));
		hooks.arg = w;
		hooks.begin = hk_begin;
		hooks.part = hk_part;
		hooks.forget = hk_forget;
		if (mp_load(w->st, r->id, &saved) == 1) {
			hooks.upload_id = saved.upload_id;
			hooks.key = saved.key;
			hooks.part_size = saved.part_size;
			hooks.parts = saved.parts;
			hooks.nparts = saved.nparts;
		}
		memset(&req, 0, sizeof(req));
		req.key = r->object_key;
		req.fd = fd;
		req.size = r->size;
		req.sha256 = r->sha256;
		req.meta_names = names;
		req.meta_values = values;
		req.nmeta = nmeta;
		req.multipart_threshold = cfg->uploader.multipart_threshold;
		req.part_size = cfg->uploader.part_size;
		req.max_backoff_ms = max_backoff_ms(cfg);
		req.mp = &hooks;
		store_put(w->store, &req, &res);
		mp_saved_free(&saved);
	}
	json_decref(meta);
	if (fd != -1)
		close(fd);
	r->attempts++;

	switch (res.outcome) {
	case PUT_STORED:
		xstrlcpy(r->state, FS_STORED, sizeof(r->state));
		xstrlcpy(r->bucket, res.bucket, sizeof(r->bucket));
		xstrlcpy(r->etag, res.etag, sizeof(r->etag));
		xstrlcpy(r->version_id, res.version_id, sizeof(r->version_id));
		if (res.key[0] != '\0')
			xstrlcpy(r->object_key, res.key, sizeof(r->object_key));
		r->last_error[0] = '\0';
		r->stored_ms = now_ms();
		if (mp_exec(w->st, "BEGIN IMMEDIATE;") != 0 ||
		    mp_record_stored(w->st, r->id, r->object_key, res.checksum,
		    res.nparts) != 0 || state_update(w->st, r, FS_UPLOADING) != 0 ||
		    mp_exec(w->st, "COMMIT;") != 0) {
			mp_exec(w->st, "ROLLBACK;");
			log_warnx("%s stored but not recorded; it will be "
			    "checked again", r->fid);
			return;
		}
		audit_file(w, "file.stored", r, json_pack("{s:s,s:s,s:s,s:s,s:s,"
		    "s:i,s:b,s:i}", "store", cfg->store.url, "bucket", r->bucket,
		    "etag", r->etag, "version_id", r->version_id, "checksum",
		    res.checksum, "parts", res.nparts, "existed", res.existed,
		    "attempts", r->attempts));
		log_info("stored %s/%s as %s%s (%lld bytes%s, attempt %d)",
		    r->partner, r->path, r->object_key,
		    res.existed ? " (identical object already there)" : "",
		    (long long)r->size, res.nparts ? ", multipart" : "",
		    r->attempts);
		retention(w, r);
		return;
	case PUT_RETRY:
		/* Standard retry mode: a retry spends from the budget; with
		 * none left the file waits the longest backoff instead. */
		cost = res.timeout ? RETRY_TIMEOUT_COST : RETRY_COST;
		budget_ok = retry_budget_take(cost);
		wait_ms = budget_ok ? retry_backoff_ms(r->attempts - 1,
		    UPLOAD_BACKOFF_BASE_MS, max_backoff_ms(cfg)) :
		    max_backoff_ms(cfg);
		xstrlcpy(r->state, FS_ACCEPTED, sizeof(r->state));
		xstrlcpy(r->last_error, res.error, sizeof(r->last_error));
		r->next_attempt_ms = now_ms() + wait_ms;
		state_update(w->st, r, FS_UPLOADING);
		audit_file(w, "upload.retry", r, json_pack("{s:s,s:i,s:I,s:b}",
		    "error", res.error, "attempt", r->attempts, "retry_in_ms",
		    (json_int_t)wait_ms, "budget_exhausted", !budget_ok));
		log_warnx("%s/%s: %s; retrying in %lld ms (attempt %d%s)",
		    r->partner, r->path, res.error, (long long)wait_ms,
		    r->attempts, budget_ok ? "" : ", retry budget spent");
		return;
	case PUT_FATAL:
	default:
		xstrlcpy(r->state, FS_HELD, sizeof(r->state));
		xstrlcpy(r->last_error, res.error, sizeof(r->last_error));
		state_update(w->st, r, FS_UPLOADING);
		audit_file(w, "file.held", r, json_pack("{s:s,s:i}", "error",
		    res.error, "attempt", r->attempts));
		log_warnx("%s/%s is HELD: %s. The file is kept in "
		    "spool/ready/%s; fix the cause (bucket, credentials, policy) "
		    "and release it with 'sluice queue retry -c CONFIG %lld'",
		    r->partner, r->path, res.error, r->fid, (long long)r->id);
		return;
	}
}

/* ---- quarantine copies (issue 4) ------------------------------------------ */

/* Bytes outside printable ASCII become c; at most len - 1 bytes. */
static void
ascii_copy(char *dst, const char *src, size_t len, char c)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < len; i++)
		dst[i] = (unsigned char)src[i] < 0x20 ||
		    (unsigned char)src[i] > 0x7e ? c : src[i];
	dst[i] = '\0';
}

/*
 * Rejected file r (store.quarantine_prefix set): stores
 * quarantine/<partner>/<fid> at <quarantine_prefix><partner>/<fid>-<name>
 * with the reason as metadata. The local copy is never deleted.
 */
static void
qcopy_one(struct worker *w, struct file_rec *r)
{
	const struct config *cfg = w->u->cfg;
	const char *names[] = { "reason", "partner", "sha256", "fid" };
	const char *values[4], *base;
	struct put_request req;
	struct put_result res;
	char path[PATH_MAX], key[1100], name[256], reason[1024];
	struct stat sb;
	int64_t wait_ms;
	int fd = -1;

	memset(&res, 0, sizeof(res));
	base = strrchr(r->path, '/') != NULL ? strrchr(r->path, '/') + 1 :
	    r->path;
	ascii_copy(name, base, sizeof(name), '_');
	ascii_copy(reason, r->last_error, sizeof(reason), '?');
	if (xsnprintf(path, sizeof(path), "%s/quarantine/%s/%s",
	    cfg->state_dir, r->partner, r->fid) < 0 ||
	    xsnprintf(key, sizeof(key), "%s%s/%s-%s",
	    cfg->store.quarantine_prefix, r->partner, r->fid, name) < 0) {
		res.outcome = PUT_FATAL;
		xstrlcpy(res.error, "quarantine key too long", sizeof(res.error));
	} else if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fstat(fd, &sb) == -1) {
		res.outcome = PUT_FATAL;
		xsnprintf(res.error, sizeof(res.error), "quarantine/%s/%s: %s",
		    r->partner, r->fid, strerror(errno));
	} else {
		values[0] = reason;
		values[1] = r->partner;
		values[2] = r->sha256;
		values[3] = r->fid;
		memset(&req, 0, sizeof(req));
		req.key = key;
		req.fd = fd;
		req.size = sb.st_size;
		/* the digest taken at receipt proves the bytes unchanged */
		req.sha256 = sb.st_size == r->size ? r->sha256 : NULL;
		req.meta_names = names;
		req.meta_values = values;
		req.nmeta = 4;
		req.multipart_threshold = cfg->uploader.multipart_threshold;
		req.part_size = cfg->uploader.part_size;
		req.max_backoff_ms = max_backoff_ms(cfg);
		if (req.sha256 == NULL) {
			res.outcome = PUT_FATAL;
			xsnprintf(res.error, sizeof(res.error), "quarantine/%s/%s "
			    "changed size since it was received", r->partner,
			    r->fid);
		} else
			store_put(w->store, &req, &res);
	}
	if (fd != -1)
		close(fd);
	r->attempts++;
	if (res.outcome == PUT_STORED) {
		if (state_qcopy_finish(w->st, r, 1) == -1)
			return;	/* copying again is harmless */
		audit_file(w, "file.quarantine_copied", r, json_pack(
		    "{s:s,s:s,s:s,s:s,s:b,s:i}", "quarantine_key",
		    res.key[0] ? res.key : key, "bucket", res.bucket, "etag",
		    res.etag, "reason", r->last_error, "existed", res.existed,
		    "attempts", r->attempts));
		log_info("copied the rejected %s/%s to %s", r->partner, r->path,
		    res.key[0] ? res.key : key);
		return;
	}
	/* A transient failure backs off like an upload; one that needs an
	 * operator is tried again hourly. */
	wait_ms = res.outcome == PUT_RETRY ? retry_backoff_ms(r->attempts - 1,
	    UPLOAD_BACKOFF_BASE_MS, max_backoff_ms(cfg)) : 3600 * 1000;
	r->next_attempt_ms = now_ms() + wait_ms;
	state_qcopy_finish(w->st, r, 0);
	audit_file(w, "file.quarantine_copy_failed", r, json_pack(
	    "{s:s,s:s,s:i,s:I}", "quarantine_key", key, "error", res.error,
	    "attempt", r->attempts, "retry_in_ms", (json_int_t)wait_ms));
	log_warnx("cannot copy the rejected %s/%s to %s: %s; retrying in %lld "
	    "s (it stays in quarantine/%s/)", r->partner, r->path, key,
	    res.error, (long long)(wait_ms / 1000), r->partner);
}

/* Sleeps until woken or ms passed (since the generation seen). */
static void
worker_idle(struct uploader *u, uint64_t *seen, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&u->mu);
	while (u->gen == *seen && !role_quit)
		if (pthread_cond_timedwait(&u->wake, &u->mu, &ts) != 0)
			break;
	*seen = u->gen;
	pthread_mutex_unlock(&u->mu);
}

static void
wake_workers(struct uploader *u)
{
	pthread_mutex_lock(&u->mu);
	u->gen++;
	pthread_cond_broadcast(&u->wake);
	pthread_mutex_unlock(&u->mu);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t seen;
	int n;

	pthread_mutex_lock(&w->u->mu);
	seen = w->u->gen;
	pthread_mutex_unlock(&w->u->mu);
	while (!role_quit) {
		n = state_claim(w->st, FS_ACCEPTED, FS_UPLOADING, now_ms(), &w->r);
		if (n == 1)
			upload_one(w, &w->r);
		else if (n == 0 && w->u->cfg->store.quarantine_prefix != NULL &&
		    (n = state_qcopy_claim(w->st, now_ms(), &w->r)) == 1)
			qcopy_one(w, &w->r);	/* after the upload queue */
		else
			worker_idle(w->u, &seen, n == 0 ? w->u->idle_ms : 1000);
	}
	return NULL;
}

/* Drains inotify events; 1 if the WAL (or database) changed. */
static int
wal_changed(int ifd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;
	char *p;
	int hit = 0;

	while ((n = read(ifd, buf, sizeof(buf))) > 0)
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->len > 0 && strncmp(ev->name, "sluice.db", 9) == 0)
				hit = 1;
		}
	return hit;
}

static int
worker_open(struct uploader *u, struct worker *w, int n)
{
	memset(w, 0, sizeof(*w));
	w->u = u;
	w->n = n;
	if ((w->st = state_open(u->cfg->state_dir)) == NULL ||
	    (w->au = audit_open(u->cfg->audit_path)) == NULL ||
	    (w->store = store_open(&u->cfg->store, NULL)) == NULL)
		return -1;
	store_set_cancel(w->store, &role_quit);
	return 0;
}

static void
worker_close(struct worker *w)
{
	store_close(w->store);
	audit_close(w->au);
	state_close(w->st);
}

int
uploader_run(const struct config *cfg)
{
	static struct worker workers[MAX_WORKERS + 1];
	struct uploader u;
	struct worker *admin = &workers[0];
	uint8_t d[SHA256_LEN];
	int64_t last_stale = 0, last_purge = 0;
	struct pollfd pfd;
	int nw, i, n, rc = 1, ifd = -1;

	memset(&u, 0, sizeof(u));
	u.cfg = cfg;
	u.readyfd = u.archivefd = -1;
	pthread_mutex_init(&u.mu, NULL);
	pthread_cond_init(&u.wake, NULL);
	u.idle_ms = 100;
	log_setrole("uploader");
	role_background();
	prctl(PR_SET_NAME, "sluice-uploader", 0, 0, 0);
	role_signals();
	/* Initialise what is lazily set up, before any thread. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    sha256_buf("", 0, d) != 0 || hmac_sha256("k", 1, "m", 1, d) != 0) {
		log_warnx("uploader: cannot initialise libcurl or OpenSSL");
		return 1;
	}
	if (cfg->store.kind == STORE_S3)
		creds_init();	/* logged; files wait until there are some */
	nw = cfg->uploader.workers > 0 ? cfg->uploader.workers : 4;
	if (nw > MAX_WORKERS)
		nw = MAX_WORKERS;
	if (spool_path(cfg->state_dir, "spool/ready", NULL, u.ready,
	    sizeof(u.ready)) == -1 ||
	    (u.readyfd = open(u.ready, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_warn("cannot open %s", u.ready);
		goto out;
	}
	if (spool_path(cfg->state_dir, "archive", NULL, u.archive,
	    sizeof(u.archive)) == -1 || mkdir_p(u.archive, 0750) == -1 ||
	    (u.archivefd = open(u.archive, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		log_warn("cannot open %s", u.archive);
		goto out;
	}
	for (i = 0; i <= nw; i++)
		if (worker_open(&u, &workers[i], i) != 0)
			goto out;
	/* A crash mid-upload: the conditional write makes a repeat safe. */
	if ((n = state_reset(admin->st, FS_UPLOADING, FS_ACCEPTED)) > 0)
		log_info("resuming %d interrupted upload(s)", n);
	if ((n = state_qcopy_reset(admin->st)) > 0)
		log_info("resuming %d interrupted quarantine copy(ies)", n);
	finish_stored(admin);
	log_info("uploader ready: storing to %s with %d worker(s)",
	    cfg->store.url, nw);
	/* Every commit (the intake accepting a file) writes the WAL. */
	if ((ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1 ||
	    inotify_add_watch(ifd, cfg->state_dir, IN_MODIFY | IN_CREATE |
	    IN_MOVED_TO) == -1) {
		log_warn("inotify on %s; polling the queue instead",
		    cfg->state_dir);
		if (ifd != -1)
			close(ifd);
		ifd = -1;
	} else
		u.idle_ms = 1000;
	for (i = 1; i <= nw; i++) {
		if (pthread_create(&workers[i].tid, NULL, worker_main,
		    &workers[i]) != 0) {
			log_warnx("uploader: cannot start worker %d", i);
			break;
		}
		workers[i].started = 1;
	}
	while (!role_quit) {
		if (mono_ms() - last_purge >= PURGE_SWEEP_MS) {
			last_purge = mono_ms();
			purge_archive(admin);
		}
		if (last_stale == 0 || mono_ms() - last_stale >= STALE_SWEEP_MS) {
			last_stale = mono_ms();
			if ((n = store_abort_stale(admin->store, STALE_UPLOAD_S,
			    keep_upload, admin)) > 0)
				log_info("aborted %d stale multipart upload(s)", n);
		}
		if (ifd == -1) {
			role_sleep(200);
			continue;
		}
		pfd.fd = ifd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 200) > 0 && wal_changed(ifd))
			wake_workers(&u);
	}
	rc = 0;
	wake_workers(&u);
out:
	for (i = 1; i <= nw; i++)
		if (workers[i].started)
			pthread_join(workers[i].tid, NULL);
	for (i = 0; i <= nw; i++)
		worker_close(&workers[i]);
	if (u.readyfd != -1)
		close(u.readyfd);
	if (u.archivefd != -1)
		close(u.archivefd);
	if (ifd != -1)
		close(ifd);
	pthread_cond_destroy(&u.wake);
	pthread_mutex_destroy(&u.mu);
	return rc;
}
