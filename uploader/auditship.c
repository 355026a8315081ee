/*
 * auditship.c - sealed audit segments to the store, and their check
 * (auditship.h).
 *
 * Shipping one segment: hash the local file, PUT it through the store
 * (store_put: x-amz-checksum-sha256, If-None-Match: *, an identical object
 * already there counts as shipped, a different one is an error that holds
 * the segment), with Object Lock headers when audit.retention is set; HEAD
 * it and record what the store says: first audit.shipped (synced), then the
 * audit_shipped row. A crash in between ships it again (found identical)
 * and repeats the record; it never loses one. A failure is audit.ship_failed
 * and waits (backoff in memory; a held segment an hour) before the next try.
 *
 * A segment's OpenPGP signature (<segment>.sig, written by the audit writer
 * with audit.sign_with) ships the same way beside it, as its own object
 * <prefix><segment>.sig (audit.signature_shipped, its own audit_shipped
 * row), once the file is there.
 */
#include "uploader/auditship.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "spool/state.h"
#include "uploader/store.h"
#include "uploader/uploader.h"

#define SHIP_SWEEP_MS	2000		/* a pass this often */
#define SHIP_HELD_MS	(3600 * 1000)	/* a held segment is tried hourly */
#define SHIP_SINGLE_MAX	((int64_t)5 * 1024 * 1024 * 1024)	/* S3's PUT limit */
#define SEG_NAME_LEN	(6 + 12 + 1 + 12 + 6)	/* audit-N-N.jsonl */
#define MAX_TRIES	4096

/* A segment that failed: when to try again. */
struct seg_try {
	char		 name[SEG_NAME_LEN + 5];	/* + ".sig" */
	int		 attempts;
	int64_t		 next_ms;
};

struct auditship {
	const struct config	*cfg;
	pthread_t		 tid;
	int			 started;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	int			 stop;		/* (mu) */
	struct state		*st;
	struct audit		*au;
	struct store		*store;
	struct seg_try		*tries;
	size_t			 ntries;
	char			 prefix[1200];	/* <audit.prefix><host_id>/ */
};

int
auditship_name_ok(const char *name)
{
	size_t i;

	if (strlen(name) != SEG_NAME_LEN || strncmp(name, "audit-", 6) != 0 ||
	    name[18] != '-' || strcmp(name + 31, ".jsonl") != 0)
		return 0;
	for (i = 6; i < 31; i++)
		if (i != 18 && (name[i] < '0' || name[i] > '9'))
			return 0;
	return 1;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
names_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Appends a copy of s to *v; 0 or -1. */
static int
names_add(char ***v, size_t *n, size_t *cap, const char *s)
{
	char **nv;

	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		if ((nv = reallocarray(*v, *cap, sizeof(**v))) == NULL)
			return -1;
		*v = nv;
	}
	if (((*v)[*n] = strdup(s)) == NULL)
		return -1;
	(*n)++;
	return 0;
}

/* 1 if name is a sealed segment's signature: <segment name>.sig. */
static int
sig_name_ok(const char *name)
{
	char seg[SEG_NAME_LEN + 1];
	size_t n = strlen(name);

	if (n != SEG_NAME_LEN + 4 || strcmp(name + SEG_NAME_LEN, ".sig") != 0)
		return 0;
	memcpy(seg, name, SEG_NAME_LEN);
	seg[SEG_NAME_LEN] = '\0';
	return auditship_name_ok(seg);
}

/*
 * The sealed segments in dir (and, sigs, their .sig files), sorted (a
 * malloc'd array of malloc'd names, freed with names_free). A missing
 * directory has none. 0 or -1 (err).
 */
static int
local_segments(const char *dir, int sigs, char ***out, size_t *nout,
    char *err, size_t errlen)
{
	struct dirent *de;
	size_t cap = 0;
	DIR *d;

	*out = NULL;
	*nout = 0;
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT)
			return 0;
		xsnprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL)
		if ((auditship_name_ok(de->d_name) || (sigs &&
		    sig_name_ok(de->d_name))) &&
		    names_add(out, nout, &cap, de->d_name) != 0) {
			xsnprintf(err, errlen, "out of memory");
			closedir(d);
			names_free(*out, *nout);
			*out = NULL;
			*nout = 0;
			return -1;
		}
	closedir(d);
	if (*nout > 1)
		qsort(*out, *nout, sizeof(**out), name_cmp);
	return 0;
}

/* The segment's key prefix: <audit.prefix><host_id>/. 0 or -1. */
static int
ship_prefix(const struct config *cfg, char *out, size_t len)
{
	return xsnprintf(out, len, "%s%s/", cfg->audit_prefix ?
	    cfg->audit_prefix : "audit/", cfg->audit_host_id ?
	    cfg->audit_host_id : "localhost") < 0 ? -1 : 0;
}

/* Opens dir/name (no symlink) and hashes it: the fd, or -1 (err). */
static int
open_segment(const char *dir, const char *name, int64_t *size,
    char hex[SHA256_HEX], char b64[SHA256_B64], char *err, size_t errlen)
{
	char path[PATH_MAX];
	uint8_t d[SHA256_LEN];
	struct stat sb;
	int fd;

	if (xsnprintf(path, sizeof(path), "%s/%s", dir, name) < 0) {
		xsnprintf(err, errlen, "%s/%s: path too long", dir, name);
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		xsnprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
	    sha256_fd(fd, d) != 0) {
		xsnprintf(err, errlen, "cannot read %s as a regular file", path);
		close(fd);
		return -1;
	}
	hex_encode(d, sizeof(d), hex);
	base64_encode(d, sizeof(d), b64);
	*size = sb.st_size;
	return fd;
}

/* ---- shipping -------------------------------------------------------------- */

static struct seg_try *
try_of(struct auditship *as, const char *name, int add)
{
	struct seg_try *t;
	size_t i;

	for (i = 0; i < as->ntries; i++)
		if (strcmp(as->tries[i].name, name) == 0)
			return &as->tries[i];
	if (!add || as->ntries >= MAX_TRIES ||
	    (t = reallocarray(as->tries, as->ntries + 1, sizeof(*t))) == NULL)
		return NULL;
	as->tries = t;
	t = &as->tries[as->ntries++];
	memset(t, 0, sizeof(*t));
	xstrlcpy(t->name, name, sizeof(t->name));
	return t;
}

static void
try_forget(struct auditship *as, const char *name)
{
	struct seg_try *t;

	if ((t = try_of(as, name, 0)) == NULL)
		return;
	*t = as->tries[--as->ntries];
}

/* A failed try: audit.ship_failed, the log, and when to try again. */
static void
ship_failed(struct auditship *as, const char *name, const char *key,
    const char *error, int held)
{
	struct seg_try *t = try_of(as, name, 1);
	int attempt = t != NULL ? ++t->attempts : 1;
	int64_t wait;

	wait = held ? SHIP_HELD_MS : retry_backoff_ms(attempt - 1,
	    UPLOAD_BACKOFF_BASE_MS, as->cfg->uploader.max_backoff_s > 0 ?
	    as->cfg->uploader.max_backoff_s * 1000 : UPLOAD_BACKOFF_CAP_MS);
	if (t != NULL)
		t->next_ms = now_ms() + wait;
	audit_emit(as->au, "audit.ship_failed", json_pack("{s:s,s:s,s:s,s:i,"
	    "s:I,s:b}", "segment", name, "key", key, "error", error, "attempt",
	    attempt, "retry_in_ms", (json_int_t)wait, "held", held));
	if (held)
		log_warnx("AUDIT SEGMENT NOT SHIPPED: %s cannot be stored at %s: "
		    "%s. It stays in %s and is tried again hourly; look at the "
		    "object in the store (it is not this segment)", name, key,
		    error, as->cfg->audit_segments_dir);
	else
		log_warnx("audit segment %s not shipped yet: %s; retrying in "
		    "%lld ms", name, error, (long long)wait);
}

/* The retain-until date for a segment shipped now ("" without retention). */
static void
retain_until(const struct config *cfg, char *out, size_t len)
{
	time_t until;
	struct tm tm;

	out[0] = '\0';
	if (cfg->audit_retention_mode == NULL || cfg->audit_retention_s <= 0 ||
	    cfg->store.kind != STORE_S3)
		return;
	until = time(NULL) + (time_t)cfg->audit_retention_s;
	gmtime_r(&until, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * Stored: HEAD it, record audit.shipped (audit.signature_shipped for the
 * signature of the segment seg), then the row. 0 or -1 (retry).
 */
static int
ship_record(struct auditship *as, const char *name, const char *seg,
    const char *hex, int64_t size, const struct put_result *res, char *err,
    size_t errlen)
{
	json_t *f;

	struct store_obj o;
	int e;

	if ((e = store_stat(as->store, res->key, &o, err, errlen)) != 1) {
		if (e == 0)
			xsnprintf(err, errlen, "stored %s, but a HEAD does not "
			    "find it", res->key);
		return -1;
	}
	if (as->cfg->audit_retention_mode != NULL &&
	    as->cfg->store.kind == STORE_S3 && o.lock_mode[0] == '\0')
		log_warnx("audit segment %s at %s: the store reports no Object "
		    "Lock retention although audit.retention is set", name,
		    res->key);
	f = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:b}",
	    "segment", seg != NULL ? seg : name, "bucket",
	    res->bucket, "key", res->key, "version_id", o.version_id[0] ?
	    o.version_id : res->version_id, "etag", o.etag[0] ? o.etag :
	    res->etag, "checksum", o.checksum[0] ? o.checksum : res->checksum,
	    "sha256", hex, "size", (json_int_t)size, "retention_mode",
	    o.lock_mode, "retain_until", o.retain_until, "existed",
	    res->existed);
	if (f != NULL && seg != NULL)
		json_object_set_new(f, "signature", json_string(name));
	if (audit_emit(as->au, seg != NULL ? "audit.signature_shipped" :
	    "audit.shipped", f) != 0) {
		xsnprintf(err, errlen, "the audit.shipped record cannot be "
		    "written");
		return -1;
	}
	if (state_audit_shipped_add(as->st, name, hex, res->key,
	    o.version_id[0] ? o.version_id : res->version_id, o.etag[0] ?
	    o.etag : res->etag, now_ms()) != 0) {
		xsnprintf(err, errlen, "shipped, but not recorded in the state "
		    "database");
		return -1;
	}
	log_info("shipped audit segment %s to %s%s%s", name, res->key,
	    o.lock_mode[0] ? ", retained " : "", o.lock_mode[0] ?
	    o.lock_mode : "");
	return 0;
}

/* Ships segdir/name: a sealed segment, or (seg not NULL) seg's .sig. */
static void
ship_one(struct auditship *as, const char *name, const char *seg)
{
	const struct config *cfg = as->cfg;
	const char *names[3] = { "sha256", "host", "segment" }, *values[3];
	char key[1300], hex[SHA256_HEX], b64[SHA256_B64], until[64], err[512];
	struct put_request req;
	struct put_result res;
	int64_t size;
	int fd;

	if (xsnprintf(key, sizeof(key), "%s%s", as->prefix, name) < 0)
		return;
	if ((fd = open_segment(cfg->audit_segments_dir, name, &size, hex, b64,
	    err, sizeof(err))) == -1) {
		ship_failed(as, name, key, err, 0);
		return;
	}
	values[0] = hex;
	values[1] = cfg->audit_host_id ? cfg->audit_host_id : "";
	values[2] = seg != NULL ? seg : name;
	retain_until(cfg, until, sizeof(until));
	memset(&req, 0, sizeof(req));
	req.key = key;
	req.fd = fd;
	req.size = size;
	req.sha256 = hex;
	req.meta_names = names;
	req.meta_values = values;
	req.nmeta = 3;
	req.multipart_threshold = SHIP_SINGLE_MAX;
	req.part_size = cfg->uploader.part_size;
	req.parallel = 1;
	req.max_backoff_ms = cfg->uploader.max_backoff_s * 1000;
	req.exact_key = 1;
	if (until[0] != '\0') {
		req.lock_mode = cfg->audit_retention_mode;
		req.lock_until = until;
	}
	store_put(as->store, &req, &res);
	close(fd);
	if (res.outcome != PUT_STORED) {
		ship_failed(as, name, key, res.error, res.outcome == PUT_FATAL);
		return;
	}
	if (ship_record(as, name, seg, hex, size, &res, err, sizeof(err)) !=
	    0) {
		ship_failed(as, name, key, err, 0);
		return;
	}
	try_forget(as, name);
}

/* seg's .sig, if there is one, not shipped yet and due. */
static void
ship_sig(struct auditship *as, const char *seg)
{
	struct seg_try *t;
	struct stat sb;
	char sig[SEG_NAME_LEN + 5], path[PATH_MAX];

	if (xsnprintf(sig, sizeof(sig), "%s.sig", seg) < 0 ||
	    xsnprintf(path, sizeof(path), "%s/%s", as->cfg->audit_segments_dir,
	    sig) < 0 || lstat(path, &sb) == -1 ||
	    state_audit_shipped(as->st, sig) != 0)
		return;
	if ((t = try_of(as, sig, 0)) != NULL && t->next_ms > now_ms())
		return;
	ship_one(as, sig, seg);
}

/* One pass: every sealed segment not shipped yet and due, in seq order. */
static void
ship_pass(struct auditship *as)
{
	struct seg_try *t;
	char **v = NULL, err[512];
	size_t n = 0, i;
	int shipped;

	if (local_segments(as->cfg->audit_segments_dir, 0, &v, &n, err,
	    sizeof(err)) != 0) {
		log_warnx("audit segments: %s", err);
		return;
	}
	for (i = 0; i < n && !proc_quit; i++) {
		if ((shipped = state_audit_shipped(as->st, v[i])) == 0 &&
		    ((t = try_of(as, v[i], 0)) == NULL || t->next_ms <= now_ms()))
			ship_one(as, v[i], NULL);
		if (!proc_quit)
			ship_sig(as, v[i]);
	}
	names_free(v, n);
}

static void *
ship_main(void *arg)
{
	struct auditship *as = arg;
	struct timespec ts;
	int stop;

	for (;;) {
		pthread_mutex_lock(&as->mu);
		stop = as->stop;
		pthread_mutex_unlock(&as->mu);
		if (stop || proc_quit)
			break;
		ship_pass(as);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += SHIP_SWEEP_MS / 1000;
		pthread_mutex_lock(&as->mu);
		if (!as->stop)
			pthread_cond_timedwait(&as->cv, &as->mu, &ts);
		pthread_mutex_unlock(&as->mu);
	}
	return NULL;
}

static void
ship_close(struct auditship *as)
{
	store_close(as->store);
	audit_close(as->au);
	state_close(as->st);
	free(as->tries);
	pthread_cond_destroy(&as->cv);
	pthread_mutex_destroy(&as->mu);
	free(as);
}

struct auditship *
auditship_start(const struct config *cfg)
{
	struct auditship *as;

	if (cfg->audit_segments_dir == NULL)
		return NULL;
	if ((as = calloc(1, sizeof(*as))) == NULL) {
		log_warn("audit shipping: calloc");
		return NULL;
	}
	as->cfg = cfg;
	pthread_mutex_init(&as->mu, NULL);
	pthread_cond_init(&as->cv, NULL);
	if (ship_prefix(cfg, as->prefix, sizeof(as->prefix)) != 0 ||
	    (as->st = state_open(cfg->state_dir)) == NULL ||
	    (as->au = proc_audit_open(cfg)) == NULL ||
	    (as->store = store_open(&cfg->store, NULL)) == NULL)
		goto fail;
	store_set_cancel(as->store, &proc_quit);
	if (cfg->audit_retention_mode != NULL && cfg->store.kind != STORE_S3)
		log_info("audit.retention: a file:// store keeps no Object Lock; "
		    "segments are shipped without retention");
	if (pthread_create(&as->tid, NULL, ship_main, as) != 0) {
		log_warnx("audit shipping: cannot start its thread");
		goto fail;
	}
	as->started = 1;
	log_info("shipping sealed audit segments from %s to %s",
	    cfg->audit_segments_dir, as->prefix);
	return as;
fail:
	log_warnx("audit shipping is off: sealed segments stay in %s only",
	    cfg->audit_segments_dir);
	ship_close(as);
	return NULL;
}

void
auditship_stop(struct auditship *as)
{
	if (as == NULL)
		return;
	pthread_mutex_lock(&as->mu);
	as->stop = 1;
	pthread_cond_broadcast(&as->cv);
	pthread_mutex_unlock(&as->mu);
	if (as->started)
		pthread_join(as->tid, NULL);
	ship_close(as);
}

/* ---- verify --store ---------------------------------------------------------- */

struct remote {
	const char	*prefix;
	char		**names;	/* keys without the prefix */
	size_t		 n;
	size_t		 cap;
};

static int
remote_add(void *arg, const char *key, int64_t size)
{
	struct remote *r = arg;
	size_t pl = strlen(r->prefix);

	(void)size;
	if (strncmp(key, r->prefix, pl) != 0 || key[pl] == '\0')
		return 0;
	return names_add(&r->names, &r->n, &r->cap, key + pl) == 0 ? 0 : -1;
}

/*
 * One segment on both sides: 0 same, 1 differs, 2 cannot tell (line
 * printed either way).
 */
static int
verify_one(const struct config *cfg, struct store *store, const char *prefix,
    const char *name, FILE *out)
{
	char key[1300], hex[SHA256_HEX], b64[SHA256_B64], sb64[SHA256_B64];
	char err[512];
	uint8_t d[SHA256_LEN];
	struct store_obj o;
	int64_t size;
	int fd, e;

	if ((fd = open_segment(cfg->audit_segments_dir, name, &size, hex, b64,
	    err, sizeof(err))) == -1) {
		fprintf(out, "ERROR    %s: %s\n", name, err);
		return 2;
	}
	close(fd);
	xsnprintf(key, sizeof(key), "%s%s", prefix, name);
	if ((e = store_stat(store, key, &o, err, sizeof(err))) != 1) {
		fprintf(out, "ERROR    %s: %s\n", name, e == 0 ?
		    "listed in the store, but a HEAD does not find it" : err);
		return 2;
	}
	if (o.checksum[0] == '\0' || strchr(o.checksum, '-') != NULL) {
		/* no whole-object checksum kept: fetch and hash */
		if (store_sha256(store, key, d, err, sizeof(err)) != 0) {
			fprintf(out, "ERROR    %s: %s\n", name, err);
			return 2;
		}
		base64_encode(d, sizeof(d), sb64);
	} else
		xstrlcpy(sb64, o.checksum, sizeof(sb64));
	if (strcmp(sb64, b64) != 0) {
		fprintf(out, "DIFFERS  %s: the local file's SHA-256 is %s, the "
		    "store's copy at %s has %s\n", name, b64, key, sb64);
		return 1;
	}
	fprintf(out, "ok       %s (%lld bytes%s%s%s%s%s%s)\n", name,
	    (long long)size, o.version_id[0] ? ", version " : "",
	    o.version_id, o.lock_mode[0] ? ", " : "", o.lock_mode,
	    o.retain_until[0] ? " until " : "", o.retain_until);
	return 0;
}

/* Opens the store for a command run by hand; NULL (told on out) if not. */
static struct store *
verify_store_open(const struct config *cfg, FILE *out)
{
	struct store *store;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(out, "sluice: cannot initialise libcurl\n");
		return NULL;
	}
	if (cfg->store.kind == STORE_S3 && creds_init() != 0) {
		fprintf(out, "sluice: no S3 credentials (see the log above); "
		    "give them as the uploader gets them\n");
		return NULL;
	}
	if ((store = store_open(&cfg->store, NULL)) == NULL)
		fprintf(out, "sluice: cannot open the store %s\n",
		    cfg->store.url);
	return store;
}

int
auditship_verify(const struct config *cfg, FILE *out)
{
	struct remote rem;
	struct store *store = NULL;
	char prefix[1200], err[512], **loc = NULL;
	size_t nloc = 0, i = 0, j = 0, diff = 0, same = 0;
	int rc = 2, e, bad = 0;
	int c;

	memset(&rem, 0, sizeof(rem));
	if (ship_prefix(cfg, prefix, sizeof(prefix)) != 0)
		goto out;
	rem.prefix = prefix;
	if ((store = verify_store_open(cfg, out)) == NULL)
		goto out;
	if (store_list(store, prefix, remote_add, &rem, err, sizeof(err)) != 0) {
		fprintf(out, "sluice: cannot list %s in the store %s: %s\n",
		    prefix, cfg->store.url, err[0] ? err : "out of memory");
		goto out;
	}
	if (local_segments(cfg->audit_segments_dir, 1, &loc, &nloc, err,
	    sizeof(err)) != 0) {
		fprintf(out, "sluice: %s\n", err);
		goto out;
	}
	if (rem.n > 1)
		qsort(rem.names, rem.n, sizeof(*rem.names), name_cmp);
	while (i < nloc || j < rem.n) {
		c = i >= nloc ? 1 : j >= rem.n ? -1 : strcmp(loc[i], rem.names[j]);
		if (c < 0) {
			fprintf(out, "MISSING  %s: in %s, not in the store at "
			    "%s%s\n", loc[i], cfg->audit_segments_dir, prefix,
			    loc[i]);
			diff++;
			i++;
		} else if (c > 0) {
			fprintf(out, "MISSING  %s: in the store at %s%s, not in "
			    "%s (missing locally)\n", rem.names[j], prefix,
			    rem.names[j], cfg->audit_segments_dir);
			diff++;
			j++;
		} else {
			e = verify_one(cfg, store, prefix, loc[i], out);
			same += e == 0;
			diff += e == 1;
			bad |= e == 2;
			i++;
			j++;
		}
	}
	fprintf(out, "%zu segment(s) the same in %s and in %s under %s; %zu "
	    "different or missing%s\n", same, cfg->audit_segments_dir,
	    cfg->store.url, prefix, diff, bad ? "; some could not be checked" :
	    "");
	rc = bad ? 2 : diff > 0 ? 1 : 0;
out:
	names_free(loc, nloc);
	names_free(rem.names, rem.n);
	store_close(store);
	return rc;
}
