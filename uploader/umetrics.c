/*
 * umetrics.c - the uploader's published numbers (uploader/umetrics.h).
 */
#include "uploader/umetrics.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "spool/layout.h"

const double umetrics_bounds[UMETRICS_NBUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30
};

static struct {
	pthread_mutex_t		 mu;
	const struct config	*cfg;
	char			 path[PATH_MAX];
	int64_t			 started;	/* wall s */
	int64_t			 last_write;	/* mono ms */
	/* counters (mu) */
	int64_t			 attempts, stored, retries, held;
	char			 codes[UMETRICS_MAX_CODES + 1][64];
	int64_t			 code_n[UMETRICS_MAX_CODES + 1];
	size_t			 ncodes;
	int64_t			 bucket[UMETRICS_NBUCKETS];
	double			 sum;
	int64_t			 count;
	/* readiness (mu) */
	int			 probed;
	int			 reachable;
	char			 store_err[512];
	int64_t			 checked;	/* wall s */
	int			 auth_bad;
	char			 auth_err[512];
	/* the probe thread */
	struct store		*store;
	pthread_t		 tid;
	int			 running;
} um = { .mu = PTHREAD_MUTEX_INITIALIZER };

void
umetrics_request(double seconds)
{
	size_t i;

	pthread_mutex_lock(&um.mu);
	for (i = 0; i < UMETRICS_NBUCKETS; i++)
		if (seconds <= umetrics_bounds[i])
			um.bucket[i]++;
	um.sum += seconds;
	um.count++;
	pthread_mutex_unlock(&um.mu);
}

/* Counts one error under code (mu held). */
static void
count_code(const char *code)
{
	size_t i;

	for (i = 0; i < um.ncodes; i++)
		if (strcmp(um.codes[i], code) == 0)
			break;
	if (i == um.ncodes) {
		if (um.ncodes == UMETRICS_MAX_CODES)
			code = "Other";
		for (i = 0; i < um.ncodes; i++)
			if (strcmp(um.codes[i], code) == 0)
				break;
		if (i == um.ncodes) {
			xstrlcpy(um.codes[i], code, sizeof(um.codes[i]));
			um.ncodes++;
		}
	}
	um.code_n[i]++;
}

static int
auth_code(const char *code)
{
	static const char *const bad[] = { "InvalidAccessKeyId",
	    "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
	    "CredentialsExpired", "NoCredentials", NULL };
	size_t i;

	for (i = 0; bad[i] != NULL; i++)
		if (strcmp(code, bad[i]) == 0)
			return 1;
	return 0;
}

void
umetrics_outcome(const struct put_result *res)
{
	char code[64];

	if (res->code[0] != '\0')
		xstrlcpy(code, res->code, sizeof(code));
	else if (res->http_status != 0)
		(void)xsnprintf(code, sizeof(code), "HTTP%ld", res->http_status);
	else
		xstrlcpy(code, "Local", sizeof(code));
	pthread_mutex_lock(&um.mu);
	um.attempts++;
	if (res->outcome == PUT_STORED) {
		um.stored++;
		um.auth_bad = 0;
	} else {
		if (res->outcome == PUT_RETRY)
			um.retries++;
		else
			um.held++;
		count_code(code);
		if (auth_code(code)) {
			um.auth_bad = 1;
			xstrlcpy(um.auth_err, res->error, sizeof(um.auth_err));
		}
	}
	pthread_mutex_unlock(&um.mu);
}

/* One probe of the store (the probe thread). */
static void
probe(void)
{
	char key[1200], cs[128], err[512];
	const char *prefix = um.cfg->store.prefix ? um.cfg->store.prefix : "";
	int r, reachable;

	(void)xsnprintf(key, sizeof(key), "%s.sluice-readyz-probe", prefix);
	r = store_head(um.store, key, NULL, cs, sizeof(cs), err, sizeof(err));
	/* 200 or 404; or a 4xx (a missing key without ListBucket is 403) */
	reachable = r >= 0 || strncmp(err, "HEAD: HTTP 4", 12) == 0;
	pthread_mutex_lock(&um.mu);
	um.probed = 1;
	um.reachable = reachable;
	xstrlcpy(um.store_err, reachable ? "" : err, sizeof(um.store_err));
	um.checked = now_ms() / 1000;
	pthread_mutex_unlock(&um.mu);
}

static void *
probe_main(void *arg)
{
	int64_t next = 0;

	(void)arg;
	while (!proc_quit) {
		if (mono_ms() >= next) {
			probe();
			next = mono_ms() + UMETRICS_PROBE_MS;
		}
		proc_sleep(200);
	}
	return NULL;
}

int
umetrics_start(const struct config *cfg)
{
	char dir[PATH_MAX];

	um.cfg = cfg;
	um.started = now_ms() / 1000;
	if (spool_dir_path(cfg->state_dir, SPOOL_RUN, NULL, dir,
	    sizeof(dir)) == -1 || xsnprintf(um.path, sizeof(um.path), "%s/%s",
	    dir, UMETRICS_FILE) < 0) {
		log_warnx("state_dir is too long for run/%s", UMETRICS_FILE);
		um.path[0] = '\0';
		return -1;
	}
	if ((um.store = store_open(&cfg->store, NULL)) == NULL)
		return -1;
	store_set_cancel(um.store, &proc_quit);
	if (pthread_create(&um.tid, NULL, probe_main, NULL) != 0) {
		log_warnx("uploader: cannot start the store probe");
		store_close(um.store);
		um.store = NULL;
		return -1;
	}
	um.running = 1;
	return 0;
}

/* The credentials part (never their values). */
static json_t *
creds_json(void)
{
	struct aws_creds c;
	int64_t now = now_ms(), expires = 0;
	int valid = 1, have;
	const char *err = "";

	if (um.cfg->store.kind == STORE_S3) {
		have = creds_get(&c) == 0;
		expires = have ? c.expires_ms : 0;
		creds_wipe(&c);
		if (!have) {
			valid = 0;
			err = "no S3 credentials from the credential chain";
		} else if (expires != 0 && expires <= now) {
			valid = 0;
			err = "the S3 credentials have expired";
		}
	}
	if (valid && um.auth_bad) {
		valid = 0;
		err = um.auth_err;
	}
	return json_pack("{s:b,s:s,s:I,s:s}", "valid", valid, "source",
	    um.cfg->store.kind == STORE_S3 ? creds_source() : "none",
	    "expires", (json_int_t)(expires / 1000), "error", err);
}

/* The document (mu held). NULL when out of memory. */
static json_t *
document(void)
{
	json_t *doc, *codes, *le, *counts;
	size_t i;

	codes = json_object();
	le = json_array();
	counts = json_array();
	for (i = 0; codes != NULL && i < um.ncodes; i++)
		json_object_set_new(codes, um.codes[i],
		    json_integer(um.code_n[i]));
	for (i = 0; le != NULL && counts != NULL && i < UMETRICS_NBUCKETS; i++) {
		json_array_append_new(le, json_real(umetrics_bounds[i]));
		json_array_append_new(counts, json_integer(um.bucket[i]));
	}
	doc = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,"
	    "s:{s:o,s:o,s:f,s:I},s:{s:b,s:s,s:I},s:o}",
	    "pid", (json_int_t)getpid(), "started", (json_int_t)um.started,
	    "written", (json_int_t)(now_ms() / 1000),
	    "attempts", (json_int_t)um.attempts, "stored", (json_int_t)um.stored,
	    "retries", (json_int_t)um.retries, "held", (json_int_t)um.held,
	    "errors", codes,
	    "s3_request_seconds", "le", le, "counts", counts, "sum", um.sum,
	    "count", (json_int_t)um.count,
	    "store", "reachable", um.probed ? um.reachable : 1, "error",
	    um.probed ? um.store_err : "not probed yet", "checked",
	    (json_int_t)um.checked,
	    "credentials", creds_json());
	return doc;
}

static void
write_now(void)
{
	json_t *doc;
	char *text = NULL;

	if (um.path[0] == '\0')
		return;
	pthread_mutex_lock(&um.mu);
	doc = document();
	pthread_mutex_unlock(&um.mu);
	if (doc == NULL || (text = json_dumps(doc, JSON_COMPACT)) == NULL ||
	    write_file_atomic(um.path, text, strlen(text), 0640) == -1)
		log_warn("uploader: cannot write %s (the metrics role reads "
		    "it)", um.path);
	free(text);
	json_decref(doc);
}

void
umetrics_tick(void)
{
	if (um.last_write != 0 && mono_ms() - um.last_write < UMETRICS_WRITE_MS)
		return;
	um.last_write = mono_ms();
	write_now();
}

void
umetrics_stop(void)
{
	if (um.running) {
		pthread_join(um.tid, NULL);
		um.running = 0;
	}
	store_close(um.store);
	um.store = NULL;
	write_now();
}
