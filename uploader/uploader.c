/*
 * uploader.c - the uploader role. Life of a file here: accepted -> uploading
 * (claimed) -> stored (the store confirmed the bytes; key and checksum
 * recorded) -> removed (spool copy deleted) or archived (moved to
 * state_dir/archive/, deleted after retention) ; or back to accepted with a
 * later next attempt (transient failure), or held (needs an operator:
 * `sluice queue retry`).
 *
 * One dispatcher (the main thread) does every write to the files table, in
 * batches: each cycle is ONE write transaction that records the outcomes the
 * workers reported (stored / retry / held), the removals of the spool copies
 * unlinked in the previous cycle (removed / archived) and claims the next
 * due files, with ONE audit fdatasync for the cycle's records before its
 * commit (a crash in between repeats a record, never loses one). Only
 * then are the stored files' spool copies unlinked (one directory fsync per
 * cycle); their "removed" transition joins the next cycle. Workers only talk
 * to the store (and record multipart progress). Sessions and the intake wait
 * on the database's write lock, so it is taken once per cycle, not 3-5 times
 * per file; an idle uploader reads the queue without taking it.
 *
 * A SIGKILL anywhere is safe: at start "uploading" goes back to "accepted"
 * (claimed but not stored, or stored but the batch recording it was lost)
 * and the conditional write (If-None-Match, or a HEAD before a multipart
 * upload) turns a repeat into "already stored"; a multipart upload resumes
 * from the parts recorded; "stored" files get their retention step (a spool
 * copy already unlinked counts as removed). A spool copy is unlinked only
 * once its "stored" row is committed and its file.stored record synced.
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
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "notify/events.h"
#include "spool/intake.h"
#include "uploader/umetrics.h"
#include "uploader/auditship.h"
#include "uploader/receiptship.h"

#define MAX_WORKERS		64
#define DEFAULT_WORKERS		10	/* the AWS CLI's max_concurrent_requests */
#define PARTS_IN_FLIGHT		10	/* multipart parts per file at once */
#define BATCH_MAX		64	/* files claimed per transaction */
#define RECHECK_MS		1000	/* queue read at least this often */
#define COALESCE_MS		20	/* outcomes wait this long for company */
#define STALE_UPLOAD_S		86400
#define STALE_SWEEP_MS		(3600 * 1000)
#define PURGE_SWEEP_MS		(60 * 1000)

enum job_kind { JOB_UPLOAD, JOB_QCOPY, JOB_RETENTION };

/* One claimed file, owned by whichever queue or thread holds it. */
struct job {
	struct job		*next;
	enum job_kind		 kind;
	struct file_rec		 r;
	struct put_result	 res;
	int64_t			 wait_ms;	/* PUT_RETRY: backoff */
	int			 budget_ok;	/* PUT_RETRY: from the budget */
	enum file_state		 to;		/* JOB_RETENTION: removed|archived */
	int			 ok;		/* recorded in this cycle */
};

struct jobq {
	struct job		*head;
	struct job		*tail;
	int			 n;
};

struct uploader {
	const struct config	*cfg;
	pthread_mutex_t		 mu;
	pthread_cond_t		 wake;		/* workers: todo not empty */
	struct jobq		 todo;		/* claimed, for the workers (mu) */
	struct jobq		 done;		/* stored/failed, to record (mu) */
	int			 stop;		/* (mu) */
	int			 efd;		/* eventfd: a job is done */
	int			 nw;
	int			 inflight;	/* claimed, not yet recorded */
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
	struct file_rec		*cur;		/* the file being stored */
};

static void
jq_push(struct jobq *q, struct job *j)
{
	j->next = NULL;
	if (q->tail != NULL)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->n++;
}

static struct job *
jq_pop(struct jobq *q)
{
	struct job *j = q->head;

	if (j != NULL) {
		q->head = j->next;
		if (q->head == NULL)
			q->tail = NULL;
		q->n--;
		j->next = NULL;
	}
	return j;
}

/* Appends every job of from to to; from ends empty. */
static void
jq_splice(struct jobq *to, struct jobq *from)
{
	if (from->head == NULL)
		return;
	if (to->tail != NULL)
		to->tail->next = from->head;
	else
		to->head = from->head;
	to->tail = from->tail;
	to->n += from->n;
	memset(from, 0, sizeof(*from));
}

static void
jq_free(struct jobq *q)
{
	struct job *j;

	while ((j = jq_pop(q)) != NULL)
		free(j);
}

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

	return state_upload_begin(w->st, w->cur->id, key, upload_id, part_size,
	    nparts);
}

static int
hk_part(void *arg, const struct mp_part *p)
{
	struct worker *w = arg;
	struct state_part sp;

	memset(&sp, 0, sizeof(sp));
	sp.number = p->number;
	xstrlcpy(sp.etag, p->etag, sizeof(sp.etag));
	xstrlcpy(sp.checksum, p->checksum, sizeof(sp.checksum));
	return state_upload_part(w->st, w->cur->id, &sp);
}

static void
hk_forget(void *arg)
{
	struct worker *w = arg;

	state_upload_forget(w->st, w->cur->id);
}

/*
 * The multipart upload a previous attempt at file_id left, with its parts
 * as the store's type (*parts malloc'd, the caller frees). 1 found, 0 none,
 * -1 error.
 */
static int
saved_upload(struct state *st, int64_t file_id, struct state_upload *u,
    struct mp_part **parts)
{
	size_t i;
	int rc;

	*parts = NULL;
	if ((rc = state_upload_load(st, file_id, u)) != 1)
		return rc;
	if (u->nparts > 0 &&
	    (*parts = calloc(u->nparts, sizeof(**parts))) == NULL)
		return -1;
	for (i = 0; i < u->nparts; i++) {
		(*parts)[i].number = u->parts[i].number;
		xstrlcpy((*parts)[i].etag, u->parts[i].etag,
		    sizeof((*parts)[i].etag));
		xstrlcpy((*parts)[i].checksum, u->parts[i].checksum,
		    sizeof((*parts)[i].checksum));
	}
	return 1;
}

/* ---- retention ------------------------------------------------------------ */

/*
 * r is stored, recorded and audited: deletes its spool copy or moves it to
 * archive/, without fsyncing the directory (the caller does, once for the
 * batch). Returns the state it goes to next, or FS_NONE (logged; it stays
 * "stored" and a restart tries again). A copy already gone counts as done:
 * a crash after the unlink and before the next batch leaves exactly that.
 */
static enum file_state
retention(struct uploader *u, const struct file_rec *r)
{
	if (u->cfg->uploader.retention_keep_s > 0) {
		if (renameat(u->readyfd, r->fid, u->archivefd, r->fid) == -1 &&
		    errno != ENOENT) {
			log_warn("cannot move %s/%s to %s/",
			    spool_dir_name(SPOOL_READY), r->fid,
			    spool_dir_name(SPOOL_ARCHIVE));
			return FS_NONE;
		}
		return FS_ARCHIVED;
	}
	if (unlinkat(u->readyfd, r->fid, 0) == -1 && errno != ENOENT) {
		log_warn("cannot remove %s/%s", spool_dir_name(SPOOL_READY),
		    r->fid);
		return FS_NONE;
	}
	return FS_REMOVED;
}

/* Makes the cycle's unlinks and renames durable. */
static void
retention_sync(struct uploader *u, int archived)
{
	if (fsync(u->readyfd) == -1)
		log_warn("fsync %s", u->ready);
	if (archived && fsync(u->archivefd) == -1)
		log_warn("fsync %s", u->archive);
}

/*
 * Files left "stored" by a crash: their retention step now; the
 * removed/archived transitions go into gone for the first batch.
 */
static void
finish_stored(struct worker *w, struct jobq *gone)
{
	struct file_rec *rows = NULL;
	struct job *j;
	size_t n = 0, i;
	int archived = 0;

	if (state_list(w->st, FS_STORED, NULL, 1024, &rows, &n) == -1)
		return;
	for (i = 0; i < n; i++) {
		if ((j = calloc(1, sizeof(*j))) == NULL)
			break;
		j->kind = JOB_RETENTION;
		j->r = rows[i];
		if ((j->to = retention(w->u, &j->r)) == FS_NONE) {
			free(j);
			continue;
		}
		archived |= j->to == FS_ARCHIVED;
		jq_push(gone, j);
	}
	free(rows);
	if (gone->n > 0)
		retention_sync(w->u, archived);
}

/* Archived files past the retention period: delete, state removed. */
static void
purge_archive(struct worker *w)
{
	struct file_rec *r = NULL;
	int64_t cutoff;
	unsigned char del[256];
	size_t n = 0, i;
	int ndel = 0;

	cutoff = now_ms() - w->u->cfg->uploader.retention_keep_s * 1000;
	if (state_list_stored_before(w->st, FS_ARCHIVED, cutoff, 256, &r,
	    &n) == -1)
		return;
	if (n == 0)
		goto out;
	for (i = 0; i < n; i++) {
		del[i] = 0;
		if (!spool_fid_ok(r[i].fid))
			continue;
		if (unlinkat(w->u->archivefd, r[i].fid, 0) == -1 &&
		    errno != ENOENT) {
			log_warn("cannot remove %s/%s",
			    spool_dir_name(SPOOL_ARCHIVE), r[i].fid);
			continue;
		}
		del[i] = 1;
		ndel++;
	}
	if (ndel == 0)
		goto out;
	fsync(w->u->archivefd);
	if (state_begin(w->st) != 0)
		goto out;	/* still archived: the next sweep again */
	for (i = 0; i < n; i++)
		if (del[i] && state_move(w->st, r[i].id, FS_ARCHIVED, FS_REMOVED,
		    NULL) != 1)
			del[i] = 0;
	if (state_commit(w->st) != 0)
		goto out;
	audit_defer(w->au);
	for (i = 0; i < n; i++)
		if (del[i])
			audit_file(w, "file.removed", &r[i], json_pack("{s:s}",
			    "reason", "retention period over"));
	audit_sync(w->au);
out:
	free(r);
}

static int
keep_upload(void *arg, const char *key, const char *upload_id)
{
	struct worker *w = arg;

	return state_upload_known(w->st, upload_id) != 0;	/* error: keep */
}

/* ---- one file (a worker) --------------------------------------------------- */

/* Stores j->r; fills j's outcome for the dispatcher to record. */
/* Is fid still in spool/incoming (accepted, not yet moved to ready)? */
static int
in_incoming(const struct config *cfg, const char *fid)
{
	char p[PATH_MAX];

	if (spool_dir_path(cfg->state_dir, SPOOL_INCOMING, NULL, p,
	    sizeof(p)) == -1 || xstrlcat(p, "/", sizeof(p)) >= sizeof(p) ||
	    xstrlcat(p, fid, sizeof(p)) >= sizeof(p))
		return 0;
	return access(p, F_OK) == 0;
}

static void
upload_one(struct worker *w, struct job *j)
{
	const struct config *cfg = w->u->cfg;
	struct file_rec *r = &j->r;
	struct put_result *res = &j->res;
	struct put_request req;
	const struct partner *pt;
	struct state_upload saved;
	struct mp_part *parts = NULL;
	struct mp_hooks hooks;
	struct stat sb;
	char received[40];
	const char *names[16] = { "sha256", "partner", "received-at", "fid" };
	const char *values[16];
	json_t *meta = NULL, *v;
	const char *k;
	size_t nmeta = 4;
	int fd, cost;

	memset(res, 0, sizeof(*res));
	memset(&saved, 0, sizeof(saved));
	w->cur = r;
	fd = !spool_fid_ok(r->fid) ? (errno = EINVAL, -1) :
	    openat(w->u->readyfd, r->fid, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 && errno == ENOENT && in_incoming(cfg, r->fid)) {
		/* accepted by an intake that crashed before its rename: its
		 * start-up recovery moves it into spool/ready; try later */
		res->outcome = PUT_RETRY;
		xsnprintf(res->error, sizeof(res->error), "spool file %s not "
		    "in %s yet", r->fid, spool_dir_name(SPOOL_READY));
	} else if (fd == -1 || fstat(fd, &sb) == -1 || sb.st_size != r->size) {
		res->outcome = PUT_FATAL;
		xsnprintf(res->error, sizeof(res->error), "spool file %s %s",
		    r->fid, fd == -1 ? strerror(errno) :
		    "changed size since it was received");
	} else {
		iso8601_ms(r->received_ms, received, sizeof(received));
		values[0] = r->sha256;
		values[1] = r->partner;
		values[2] = received;
		values[3] = r->fid;
		/* Metadata the intake added (signer, signed-at, ...). */
		if (r->meta[0] != '\0' && strcmp(r->meta, "{}") != 0 &&
		    (meta = json_loads(r->meta, 0, NULL)) != NULL &&
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
		/* Only a multipart upload can have saved parts. */
		if (r->size > (cfg->uploader.multipart_threshold > 0 ?
		    cfg->uploader.multipart_threshold : 16 * 1024 * 1024) &&
		    saved_upload(w->st, r->id, &saved, &parts) == 1) {
			hooks.upload_id = saved.upload_id;
			hooks.key = saved.key;
			hooks.part_size = saved.part_size;
			hooks.parts = parts;
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
		req.parallel = PARTS_IN_FLIGHT;
		req.max_backoff_ms = max_backoff_ms(cfg);
		req.mp = &hooks;
		if ((pt = config_partner(cfg, r->partner)) != NULL) {
			req.storage_class = pt->storage_class;
			if (pt->tag_keys != NULL) {
				req.tag_keys = pt->tag_keys;
				req.tag_values = pt->tag_values;
				req.ntags = pt->ntags;
			}
		}
		store_put(w->store, &req, res);
		state_upload_free(&saved);
		free(parts);
	}
	json_decref(meta);
	if (fd != -1)
		close(fd);
	w->cur = NULL;
	r->attempts++;
	umetrics_outcome(res);

	switch (res->outcome) {
	case PUT_STORED:
		r->state = FS_STORED;
		xstrlcpy(r->bucket, res->bucket, sizeof(r->bucket));
		xstrlcpy(r->etag, res->etag, sizeof(r->etag));
		xstrlcpy(r->version_id, res->version_id, sizeof(r->version_id));
		if (res->key[0] != '\0')
			xstrlcpy(r->object_key, res->key, sizeof(r->object_key));
		r->last_error[0] = '\0';
		r->stored_ms = now_ms();
		break;
	case PUT_RETRY:
		/* Standard retry mode: a retry spends from the budget; with
		 * none left the file waits the longest backoff instead. */
		cost = res->timeout ? RETRY_TIMEOUT_COST : RETRY_COST;
		j->budget_ok = retry_budget_take(cost);
		j->wait_ms = j->budget_ok ? retry_backoff_ms(r->attempts - 1,
		    UPLOAD_BACKOFF_BASE_MS, max_backoff_ms(cfg)) :
		    max_backoff_ms(cfg);
		r->state = FS_ACCEPTED;
		xstrlcpy(r->last_error, res->error, sizeof(r->last_error));
		r->next_attempt_ms = now_ms() + j->wait_ms;
		break;
	case PUT_FATAL:
	default:
		res->outcome = PUT_FATAL;
		r->state = FS_HELD;
		xstrlcpy(r->last_error, res->error, sizeof(r->last_error));
		break;
	}
}

/* ---- recording outcomes (the dispatcher, inside a batch) ------------------- */

/* Writes j's outcome; 0, or -1 when it could not be (j stays uploading). */
static int
record(struct worker *a, struct job *j)
{
	struct file_rec *r = &j->r;

	if (j->res.outcome != PUT_STORED)
		return state_update(a->st, r, FS_UPLOADING);
	/* The uploads row and the files row together (a nested savepoint). */
	if (state_begin(a->st) != 0)
		return -1;
	/* ... and its notifications (notify/events.h) */
	if (state_upload_stored(a->st, r->id, r->object_key, j->res.checksum,
	    j->res.nparts) != 0 || state_update(a->st, r, FS_UPLOADING) != 0 ||
	    events_enqueue(a->st, a->u->cfg, r, "file.stored") != 0) {
		state_rollback(a->st);
		return -1;
	}
	return state_commit(a->st);
}

/* Audits and logs an outcome recorded in the batch's transaction. */
static void
report(struct worker *a, struct job *j)
{
	const struct config *cfg = a->u->cfg;
	struct file_rec *r = &j->r;
	struct put_result *res = &j->res;

	switch (res->outcome) {
	case PUT_STORED:
		audit_file(a, "file.stored", r, json_pack("{s:s,s:s,s:s,s:s,s:s,"
		    "s:i,s:b,s:i}", "store", cfg->store.url, "bucket", r->bucket,
		    "etag", r->etag, "version_id", r->version_id, "checksum",
		    res->checksum, "parts", res->nparts, "existed", res->existed,
		    "attempts", r->attempts));
		log_info("stored %s/%s as %s%s (%lld bytes%s, attempt %d)",
		    r->partner, r->path, r->object_key,
		    res->existed ? " (identical object already there)" : "",
		    (long long)r->size, res->nparts ? ", multipart" : "",
		    r->attempts);
		break;
	case PUT_RETRY:
		audit_file(a, "upload.retry", r, json_pack("{s:s,s:i,s:I,s:b}",
		    "error", res->error, "attempt", r->attempts, "retry_in_ms",
		    (json_int_t)j->wait_ms, "budget_exhausted", !j->budget_ok));
		log_warnx("%s/%s: %s; retrying in %lld ms (attempt %d%s)",
		    r->partner, r->path, res->error, (long long)j->wait_ms,
		    r->attempts, j->budget_ok ? "" : ", retry budget spent");
		break;
	default:
		audit_file(a, "file.held", r, json_pack("{s:s,s:i}", "error",
		    res->error, "attempt", r->attempts));
		log_warnx("%s/%s is HELD: %s. The file is kept in "
		    "%s/%s; fix the cause (bucket, credentials, policy) "
		    "and release it with 'sluice queue retry -c CONFIG %lld'",
		    r->partner, r->path, res->error,
		    spool_dir_name(SPOOL_READY), r->fid, (long long)r->id);
		break;
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
	char dir[PATH_MAX], path[PATH_MAX], key[1100], name[256];
	char reason[1024];
	struct stat sb;
	int64_t wait_ms;
	int fd = -1;

	memset(&res, 0, sizeof(res));
	base = strrchr(r->path, '/') != NULL ? strrchr(r->path, '/') + 1 :
	    r->path;
	ascii_copy(name, base, sizeof(name), '_');
	ascii_copy(reason, r->last_error, sizeof(reason), '?');
	if (!spool_fid_ok(r->fid) || spool_dir_path(cfg->state_dir,
	    SPOOL_QUARANTINE, r->partner, dir, sizeof(dir)) == -1 ||
	    xsnprintf(path, sizeof(path), "%s/%s", dir, r->fid) < 0 ||
	    xsnprintf(key, sizeof(key), "%s%s/%s-%s",
	    cfg->store.quarantine_prefix, r->partner, r->fid, name) < 0) {
		res.outcome = PUT_FATAL;
		xstrlcpy(res.error, "quarantine key too long, or not a valid "
		    "partner or fid", sizeof(res.error));
	} else if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fstat(fd, &sb) == -1) {
		res.outcome = PUT_FATAL;
		xsnprintf(res.error, sizeof(res.error), "%s/%s/%s: %s",
		    spool_dir_name(SPOOL_QUARANTINE), r->partner, r->fid,
		    strerror(errno));
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
			xsnprintf(res.error, sizeof(res.error), "%s/%s/%s "
			    "changed size since it was received",
			    spool_dir_name(SPOOL_QUARANTINE), r->partner,
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
	    "s (it stays in %s/%s/)", r->partner, r->path, key, res.error,
	    (long long)(wait_ms / 1000), spool_dir_name(SPOOL_QUARANTINE),
	    r->partner);
}

/* ---- workers ------------------------------------------------------------- */

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct uploader *u = w->u;
	struct job *j;

	for (;;) {
		pthread_mutex_lock(&u->mu);
		while (!u->stop && (j = jq_pop(&u->todo)) == NULL)
			pthread_cond_wait(&u->wake, &u->mu);
		if (u->stop)
			j = NULL;	/* the rest stays claimed; see drain() */
		pthread_mutex_unlock(&u->mu);
		if (j == NULL)
			break;
		if (j->kind == JOB_UPLOAD)
			upload_one(w, j);
		else
			qcopy_one(w, &j->r);	/* records itself */
		pthread_mutex_lock(&u->mu);
		jq_push(&u->done, j);
		pthread_mutex_unlock(&u->mu);
		if (eventfd_write(u->efd, 1) == -1)
			log_warn("uploader: eventfd");
	}
	return NULL;
}

static int wal_changed(int);

/* ---- the dispatcher -------------------------------------------------------- */

struct dispatch {
	struct uploader	*u;
	struct worker	*a;		/* its own connection and audit handle */
	struct jobq	 pend;		/* done, not yet recorded */
	struct jobq	 gone;		/* spool copy gone, not yet recorded */
	struct jobq	 back;		/* claimed, never started: to accepted */
	int64_t		 next_due;	/* wall clock ms; INT64_MAX: none */
	int64_t		 last_check;	/* mono ms of the last queue read */
	int64_t		 first_ms;	/* mono ms the oldest unrecorded came */
	int		 dirty;		/* the database or capacity changed */
	int64_t		 recheck;	/* mono ms: read the queue again then */
	int		 rechecks;	/* how many are left after a WAL write */
};

/*
 * How many files to claim now: a read of the queue (no write lock) finds
 * whether any is due, so an idle uploader never takes the write lock.
 */
static int
want_claims(struct dispatch *d, int room)
{
	int64_t q, c;

	if (room <= 0)
		return 0;
	if (room > BATCH_MAX)
		room = BATCH_MAX;
	if (!d->dirty && now_ms() < d->next_due &&
	    mono_ms() - d->last_check < RECHECK_MS)
		return 0;
	d->dirty = 0;
	d->last_check = mono_ms();
	q = state_due(d->a->st, FS_ACCEPTED);
	c = d->u->cfg->store.quarantine_prefix != NULL ?
	    state_qcopy_due(d->a->st) : INT64_MAX;
	d->next_due = q < c ? q : c;
	return d->next_due <= now_ms() ? room : 0;
}

/*
 * One cycle: one write transaction (outcomes, removals, claims), one audit
 * sync, then the stored files' spool copies go. Returns 1 if it did
 * something, 0 if there was nothing to do, -1 if the batch failed (kept
 * for the next cycle).
 */
/* Takes the workers' finished jobs; the number of jobs waiting for a batch. */
static int
gather(struct dispatch *d)
{
	int n;

	pthread_mutex_lock(&d->u->mu);
	jq_splice(&d->pend, &d->u->done);
	pthread_mutex_unlock(&d->u->mu);
	n = d->pend.n + d->gone.n + d->back.n;
	if (n > 0 && d->first_ms == 0)
		d->first_ms = mono_ms();
	return n;
}

static int
cycle(struct dispatch *d, int nclaim)
{
	struct uploader *u = d->u;
	struct worker *a = d->a;
	struct jobq fresh = { 0 }, gone = { 0 };
	struct job *j;
	int n, i, archived = 0;

	gather(d);
	if (d->pend.n == 0 && d->gone.n == 0 && d->back.n == 0 && nclaim == 0)
		return 0;

	if (state_begin(a->st) != 0)
		return -1;
	for (j = d->gone.head; j != NULL; j = j->next)
		j->ok = state_move(a->st, j->r.id, FS_STORED, j->to, NULL) == 1;
	for (j = d->back.head; j != NULL; j = j->next)
		state_move(a->st, j->r.id, FS_UPLOADING, FS_ACCEPTED, NULL);
	for (j = d->pend.head; j != NULL; j = j->next) {
		if (j->kind != JOB_UPLOAD) {
			j->ok = 0;
			continue;
		}
		if ((j->ok = record(a, j) == 0) == 0) {
			/* Back in the queue (a stored file: the next try finds
			 * it there), not left "uploading" until a restart. */
			log_warnx("%s: the outcome (%s) is not recorded; it "
			    "will be tried again", j->r.fid,
			    j->res.outcome == PUT_STORED ? "stored" :
			    j->res.outcome == PUT_RETRY ? "retry" : "held");
			state_move(a->st, j->r.id, FS_UPLOADING, FS_ACCEPTED,
			    j->res.outcome == PUT_STORED ?
			    "stored, but not recorded" : "outcome not recorded");
		}
	}
	for (i = 0; i < nclaim; i++) {
		if ((j = calloc(1, sizeof(*j))) == NULL)
			break;
		j->kind = JOB_UPLOAD;
		n = state_claim(a->st, FS_ACCEPTED, FS_UPLOADING, now_ms(),
		    &j->r);
		if (n == 0 && u->cfg->store.quarantine_prefix != NULL) {
			j->kind = JOB_QCOPY;	/* after the upload queue */
			n = state_qcopy_claim(a->st, now_ms(), &j->r);
		}
		if (n != 1) {
			free(j);
			break;
		}
		jq_push(&fresh, j);
	}
	/*
	 * The records, with one fdatasync, before the commit: a crash between
	 * the two repeats a record when the batch is done again; the other
	 * order could lose one (a "stored" row whose file.stored is gone).
	 * What they say is already true: the store confirmed the bytes, the
	 * spool copies are gone.
	 */
	audit_defer(a->au);
	for (j = d->gone.head; j != NULL; j = j->next)
		if (j->ok)
			audit_file(a, j->to == FS_ARCHIVED ?
			    "file.archived" :
			    "file.removed", &j->r, NULL);
	for (j = d->pend.head; j != NULL; j = j->next)
		if (j->ok)
			report(a, j);
	if (audit_sync(a->au) != 0) {
		log_warnx("uploader: the audit trail cannot be synced; the "
		    "batch waits (nothing is deleted before its record)");
		state_rollback(a->st);
		jq_free(&fresh);
		return -1;
	}
	if (state_commit(a->st) != 0) {
		/* Rolled back: nothing claimed, the rest is tried again. */
		jq_free(&fresh);
		return -1;
	}

	if (fresh.n > 0) {
		pthread_mutex_lock(&u->mu);
		u->inflight += fresh.n;
		jq_splice(&u->todo, &fresh);
		pthread_cond_broadcast(&u->wake);
		pthread_mutex_unlock(&u->mu);
	}
	jq_free(&d->gone);
	jq_free(&d->back);

	/* Only now (row committed, record synced) may a spool copy go. */
	while ((j = jq_pop(&d->pend)) != NULL) {
		u->inflight--;
		d->dirty = 1;	/* room for another claim */
		if (j->ok && j->res.outcome == PUT_STORED &&
		    (j->to = retention(u, &j->r)) != FS_NONE) {
			j->kind = JOB_RETENTION;
			archived |= j->to == FS_ARCHIVED;
			jq_push(&gone, j);
		} else
			free(j);
	}
	if (gone.n > 0)
		retention_sync(u, archived);
	jq_splice(&d->gone, &gone);
	d->first_ms = d->gone.n > 0 ? mono_ms() : 0;
	return 1;
}

/* Waits for a finished job, a database change or the next due file. */
static void
dispatch_wait(struct dispatch *d, int ifd, int ms)
{
	struct pollfd pfd[2];
	eventfd_t v;
	int n = 0;

	pfd[n].fd = d->u->efd;
	pfd[n++].events = POLLIN;
	if (ifd != -1) {
		pfd[n].fd = ifd;
		pfd[n++].events = POLLIN;
	}
	if (poll(pfd, (nfds_t)n, ms) <= 0)
		return;
	if (pfd[0].revents & POLLIN)
		eventfd_read(d->u->efd, &v);
	/*
	 * The WAL is written before the commit's fsync and the wal-index
	 * update make it visible (and the index is a shared mapping, which
	 * inotify does not see): read now, and again shortly after.
	 */
	if (n > 1 && (pfd[1].revents & POLLIN) && wal_changed(ifd)) {
		d->dirty = 1;
		d->rechecks = 2;
		d->recheck = mono_ms() + 5;
	}
}

/*
 * Batches: outcomes wait up to COALESCE_MS for others unless every claimed
 * file has reported (an idle gateway records at once); claims wait until
 * half the workers' room is free or a worker has nothing queued.
 */
static int
dispatch_step(struct dispatch *d, int ifd)
{
	struct uploader *u = d->u;
	int64_t age, due;
	int n, room, queued, claimable, nclaim = 0, ms;

	n = gather(d);
	if (d->rechecks > 0 && mono_ms() >= d->recheck) {
		d->dirty = 1;
		if (--d->rechecks > 0)
			d->recheck = mono_ms() + 50;
	}
	pthread_mutex_lock(&u->mu);
	queued = u->todo.n;
	pthread_mutex_unlock(&u->mu);
	room = 2 * u->nw - u->inflight;
	claimable = room > 0 && (room >= u->nw || queued == 0);
	if (claimable)
		nclaim = want_claims(d, room);
	age = n > 0 ? mono_ms() - d->first_ms : 0;
	if (nclaim > 0 || (n > 0 && (age >= COALESCE_MS ||
	    d->pend.n >= u->inflight || d->pend.n >= BATCH_MAX)))
		return cycle(d, nclaim);
	ms = ifd == -1 ? 100 : RECHECK_MS;
	if (n > 0 && COALESCE_MS - age < ms)
		ms = (int)(COALESCE_MS - age);
	if (d->rechecks > 0) {
		due = d->recheck - mono_ms();
		if (due < ms)
			ms = due < 1 ? 1 : (int)due;
	}
	if (claimable && d->next_due != INT64_MAX) {
		due = d->next_due - now_ms();
		if (due < ms)
			ms = due < 1 ? 1 : (int)due;
	}
	dispatch_wait(d, ifd, ms);
	return 0;
}

/* After the workers stopped: record what they finished, un-claim the rest. */
static void
drain(struct dispatch *d)
{
	int i;

	pthread_mutex_lock(&d->u->mu);
	jq_splice(&d->back, &d->u->todo);
	pthread_mutex_unlock(&d->u->mu);
	for (i = 0; i < 3; i++)
		if (cycle(d, 0) == 0)
			break;
	jq_free(&d->pend);
	jq_free(&d->gone);
	jq_free(&d->back);
}

/* Drains inotify events; 1 if the WAL (or database) changed. */
static int
wal_changed(int ifd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;
	const char *db = spool_dir_name(SPOOL_DB);
	size_t dblen = strlen(db);
	char *p;
	int hit = 0;

	while ((n = read(ifd, buf, sizeof(buf))) > 0)
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->len > 0 && strncmp(ev->name, db, dblen) == 0)
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
	    (w->au = proc_audit_open(u->cfg)) == NULL ||
	    (w->store = store_open(&u->cfg->store, NULL)) == NULL)
		return -1;
	store_set_cancel(w->store, &proc_quit);
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
	struct dispatch d;
	struct worker *admin = &workers[0];
	struct auditship *ship = NULL;
	struct receiptship *rship = NULL;
	uint8_t dg[SHA256_LEN];
	int64_t last_stale = 0, last_purge = 0;
	int nw, i, n, rc = 1, ifd = -1;

	memset(&u, 0, sizeof(u));
	memset(&d, 0, sizeof(d));
	u.cfg = cfg;
	u.readyfd = u.archivefd = u.efd = -1;
	pthread_mutex_init(&u.mu, NULL);
	pthread_cond_init(&u.wake, NULL);
	/* Initialise what is lazily set up, before any thread. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    sha256_buf("", 0, dg) != 0 || hmac_sha256("k", 1, "m", 1, dg) != 0) {
		log_warnx("uploader: cannot initialise libcurl or OpenSSL");
		return 1;
	}
	if (cfg->store.kind == STORE_S3)
		creds_init();	/* logged; files wait until there are some */
	nw = cfg->uploader.workers > 0 ? cfg->uploader.workers : DEFAULT_WORKERS;
	if (nw > MAX_WORKERS)
		nw = MAX_WORKERS;
	u.nw = nw;
	if ((u.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		log_warn("uploader: eventfd");
		goto out;
	}
	if (spool_dir_path(cfg->state_dir, SPOOL_READY, NULL, u.ready,
	    sizeof(u.ready)) == -1 ||
	    (u.readyfd = open(u.ready, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_warn("cannot open %s", u.ready);
		goto out;
	}
	if (spool_dir_path(cfg->state_dir, SPOOL_ARCHIVE, NULL, u.archive,
	    sizeof(u.archive)) == -1 || mkdir_p(u.archive, 0750) == -1 ||
	    (u.archivefd = open(u.archive, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		log_warn("cannot open %s", u.archive);
		goto out;
	}
	for (i = 0; i <= nw; i++)
		if (worker_open(&u, &workers[i], i) != 0)
			goto out;
	d.u = &u;
	d.a = admin;
	d.dirty = 1;
	/* A crash mid-upload (or before its batch committed): the
	 * conditional write makes a repeat safe. */
	if ((n = state_reset(admin->st, FS_UPLOADING, FS_ACCEPTED)) > 0)
		log_info("resuming %d interrupted upload(s)", n);
	if ((n = state_qcopy_reset(admin->st)) > 0)
		log_info("resuming %d interrupted quarantine copy(ies)", n);
	finish_stored(admin, &d.gone);
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
	}
	(void)umetrics_start(cfg);	/* logged; uploads go on without */
	for (i = 1; i <= nw; i++) {
		if (pthread_create(&workers[i].tid, NULL, worker_main,
		    &workers[i]) != 0) {
			log_warnx("uploader: cannot start worker %d", i);
			break;
		}
		workers[i].started = 1;
	}
	ship = auditship_start(cfg);	/* sealed audit segments, beside */
	rship = receiptship_start(cfg);	/* receipts.store */
	while (!proc_quit) {
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
		if (dispatch_step(&d, ifd) == -1)
			dispatch_wait(&d, ifd, 100);	/* the batch failed */
		umetrics_tick();
	}
	rc = 0;
out:
	receiptship_stop(rship);
	auditship_stop(ship);
	pthread_mutex_lock(&u.mu);
	u.stop = 1;
	pthread_cond_broadcast(&u.wake);
	pthread_mutex_unlock(&u.mu);
	for (i = 1; i <= nw; i++)
		if (workers[i].started)
			pthread_join(workers[i].tid, NULL);
	if (d.a != NULL && rc == 0)
		drain(&d);
	umetrics_stop();
	for (i = 0; i <= nw; i++)
		worker_close(&workers[i]);
	if (u.readyfd != -1)
		close(u.readyfd);
	if (u.archivefd != -1)
		close(u.archivefd);
	if (u.efd != -1)
		close(u.efd);
	if (ifd != -1)
		close(ifd);
	pthread_cond_destroy(&u.wake);
	pthread_mutex_destroy(&u.mu);
	return rc;
}
