/*
 * receiptship.c - copies of delivery receipts to the store
 * (receiptship.h).
 */
#include "uploader/receiptship.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "spool/state.h"
#include "uploader/store.h"
#include "uploader/uploader.h"

#define RSHIP_SWEEP_MS	1000		/* a pass this often */
#define RSHIP_HELD_MS	(3600 * 1000)	/* a held copy is tried hourly */
#define RSHIP_PER_PASS	256		/* copies per pass at most */

struct receiptship {
	const struct config	*cfg;
	pthread_t		 tid;
	int			 started;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	int			 stop;		/* (mu) */
	struct state		*st;
	struct audit		*au;
	struct store		*store;
};

/* The bytes of c in an anonymous file the store reads: the fd, or -1. */
static int
copy_fd(const struct rcopy *c, char *err, size_t errlen)
{
	size_t off = 0;
	ssize_t n;
	int fd;

	if ((fd = memfd_create("sluice-receipt", MFD_CLOEXEC)) == -1) {
		xsnprintf(err, errlen, "memfd_create: %s", strerror(errno));
		return -1;
	}
	while (off < c->len) {
		if ((n = write(fd, c->body + off, c->len - off)) == -1) {
			if (errno == EINTR)
				continue;
			xsnprintf(err, errlen, "memfd write: %s",
			    strerror(errno));
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	return fd;
}

#ifdef SLUICE_TEST_HOOKS
/*
 * SLUICE_TEST_RECEIPT_CRASH=FILE (test builds only): when FILE exists, it
 * is removed and the uploader dies right after a copy is stored and before
 * it is recorded, as a kill there would.
 */
static void
test_crash(void)
{
	const char *f = getenv("SLUICE_TEST_RECEIPT_CRASH");

	if (f != NULL && f[0] == '/' && unlink(f) == 0) {
		log_warnx("test build: dying after storing a receipt copy "
		    "(SLUICE_TEST_RECEIPT_CRASH)");
		_exit(9);
	}
}
#endif

/* A failed try: receipt.store_failed, the log, the next try. */
static void
ship_failed(struct receiptship *rs, const struct rcopy *c, const char *error,
    int held)
{
	int attempt = c->attempts + 1;
	int64_t wait;

	wait = held ? RSHIP_HELD_MS : retry_backoff_ms(attempt - 1,
	    UPLOAD_BACKOFF_BASE_MS, rs->cfg->uploader.max_backoff_s > 0 ?
	    rs->cfg->uploader.max_backoff_s * 1000 : UPLOAD_BACKOFF_CAP_MS);
	(void)state_rcopy_retry(rs->st, c->file_id, attempt, now_ms() + wait);
	audit_emit(rs->au, "receipt.store_failed", json_pack("{s:s,s:s,s:s,"
	    "s:s,s:i,s:I,s:b}", "partner", c->partner, "fid", c->fid, "key",
	    c->key, "error", error, "attempt", attempt, "retry_in_ms",
	    (json_int_t)wait, "held", held));
	if (held)
		log_warnx("RECEIPT COPY NOT STORED: the receipt of %s (%s) "
		    "cannot be stored at %s: %s. It waits in the state "
		    "database and is tried again hourly; look at the object "
		    "in the store (it is not this receipt)", c->fid,
		    c->partner, c->key, error);
	else
		log_warnx("receipt copy of %s not stored yet: %s; retrying in "
		    "%lld ms", c->fid, error, (long long)wait);
}

/* Stored: receipt.stored (synced), then the row. 0 or -1 (retry). */
static int
ship_record(struct receiptship *rs, const struct rcopy *c,
    const struct put_result *res)
{
	if (audit_emit(rs->au, "receipt.stored", json_pack("{s:s,s:s,s:s,"
	    "s:s,s:s,s:s,s:s,s:s,s:I,s:b}", "partner", c->partner, "fid",
	    c->fid, "bucket", res->bucket, "key", res->key[0] ? res->key :
	    c->key, "version_id", res->version_id, "etag", res->etag,
	    "checksum", res->checksum, "sha256", c->sha256, "size",
	    (json_int_t)c->len, "existed", res->existed)) != 0)
		return -1;
	if (state_rcopy_done(rs->st, c->file_id, res->version_id,
	    now_ms()) != 0)
		return -1;
	log_info("receipt of %s (%s) stored at %s%s", c->fid, c->partner,
	    res->key[0] ? res->key : c->key, res->existed ?
	    " (already there)" : "");
	return 0;
}

static void
ship_one(struct receiptship *rs, const struct rcopy *c)
{
	const char *names[3] = { "sha256", "fid", "partner" }, *values[3];
	struct put_request req;
	struct put_result res;
	char err[512];
	int fd;

	if ((fd = copy_fd(c, err, sizeof(err))) == -1) {
		ship_failed(rs, c, err, 0);
		return;
	}
	values[0] = c->sha256;
	values[1] = c->fid;
	values[2] = c->partner;
	memset(&req, 0, sizeof(req));
	memset(&res, 0, sizeof(res));
	req.key = c->key;
	req.fd = fd;
	req.size = (int64_t)c->len;
	req.sha256 = c->sha256;
	req.meta_names = names;
	req.meta_values = values;
	req.nmeta = 3;
	req.multipart_threshold = INT64_MAX;	/* one PUT: a few KiB */
	req.parallel = 1;
	req.max_backoff_ms = rs->cfg->uploader.max_backoff_s * 1000;
	req.exact_key = 1;
	store_put(rs->store, &req, &res);
	close(fd);
	if (res.outcome != PUT_STORED) {
		ship_failed(rs, c, res.error, res.outcome == PUT_FATAL);
		return;
	}
#ifdef SLUICE_TEST_HOOKS
	test_crash();
#endif
	if (ship_record(rs, c, &res) != 0)
		ship_failed(rs, c, "stored, but not recorded (audit trail or "
		    "state database)", 0);
}

/* One pass: every copy due, oldest first. */
static void
ship_pass(struct receiptship *rs)
{
	struct rcopy c;
	int i, e;

	for (i = 0; i < RSHIP_PER_PASS && !proc_quit; i++) {
		if ((e = state_rcopy_next(rs->st, now_ms(), &c)) != 1)
			break;
		ship_one(rs, &c);
		state_rcopy_free(&c);
		pthread_mutex_lock(&rs->mu);
		e = rs->stop;
		pthread_mutex_unlock(&rs->mu);
		if (e)
			break;
	}
}

static void *
ship_main(void *arg)
{
	struct receiptship *rs = arg;
	struct timespec ts;
	int stop;

	for (;;) {
		pthread_mutex_lock(&rs->mu);
		stop = rs->stop;
		pthread_mutex_unlock(&rs->mu);
		if (stop || proc_quit)
			break;
		ship_pass(rs);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += RSHIP_SWEEP_MS / 1000;
		pthread_mutex_lock(&rs->mu);
		if (!rs->stop)
			pthread_cond_timedwait(&rs->cv, &rs->mu, &ts);
		pthread_mutex_unlock(&rs->mu);
	}
	return NULL;
}

static void
ship_close(struct receiptship *rs)
{
	store_close(rs->store);
	audit_close(rs->au);
	state_close(rs->st);
	pthread_cond_destroy(&rs->cv);
	pthread_mutex_destroy(&rs->mu);
	free(rs);
}

/* 1 if some partner's receipts are copied to the store. */
static int
any_store(const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->npartners; i++)
		if (cfg->partners[i].receipts &&
		    cfg->partners[i].receipts_store)
			return 1;
	return 0;
}

struct receiptship *
receiptship_start(const struct config *cfg)
{
	struct receiptship *rs;

	/* copies left from a config that stored them are stored too */
	if (!any_store(cfg)) {
		struct state *st;
		struct rcopy c;
		int e = 0;

		if ((st = state_open(cfg->state_dir)) != NULL) {
			e = state_rcopy_next(st, INT64_MAX, &c);
			state_rcopy_free(&c);
			state_close(st);
		}
		if (e != 1)
			return NULL;
	}
	if ((rs = calloc(1, sizeof(*rs))) == NULL) {
		log_warn("receipt copies: calloc");
		return NULL;
	}
	rs->cfg = cfg;
	pthread_mutex_init(&rs->mu, NULL);
	pthread_cond_init(&rs->cv, NULL);
	if ((rs->st = state_open(cfg->state_dir)) == NULL ||
	    (rs->au = proc_audit_open(cfg)) == NULL ||
	    (rs->store = store_open(&cfg->store, NULL)) == NULL)
		goto fail;
	store_set_cancel(rs->store, &proc_quit);
	if (pthread_create(&rs->tid, NULL, ship_main, rs) != 0) {
		log_warnx("receipt copies: cannot start their thread");
		goto fail;
	}
	rs->started = 1;
	log_info("storing copies of delivery receipts beside the objects in %s",
	    cfg->store.url);
	return rs;
fail:
	log_warnx("receipt copies are not stored now: they wait in the state "
	    "database until the uploader starts again");
	ship_close(rs);
	return NULL;
}

void
receiptship_stop(struct receiptship *rs)
{
	if (rs == NULL)
		return;
	pthread_mutex_lock(&rs->mu);
	rs->stop = 1;
	pthread_cond_broadcast(&rs->cv);
	pthread_mutex_unlock(&rs->mu);
	if (rs->started)
		pthread_join(rs->tid, NULL);
	ship_close(rs);
}
