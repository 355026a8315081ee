/*
 * metrics.c - the metrics role (metrics/metrics.h).
 */
#include "metrics/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "metrics/expo.h"
#include "metrics/follow.h"
#include "spool/layout.h"
#include "spool/state.h"

#define MAX_ROLES	16
#define READY_MAX	4096

/* What one gathering found besides the tally. */
struct sample {
	int		 db_ok;
	int64_t		 states[FS_NSTATES];
	int64_t		 oldest_ms;		/* 0: none */
	int		 disk_ok;
	double		 free_bytes;
	json_t		*up;			/* uploader.metrics, or NULL */
	char		 up_err[256];
	int		 roles_ok;
	size_t		 nroles;
	struct { char name[32]; int up; int restarts; } roles[MAX_ROLES];
	int64_t		 nsegments;
	double		 last_seal, oldest_segment;	/* wall s; 0: none */
};

struct gatherer {
	const struct config	*cfg;
	struct follow		 f;
	struct tally		 t;
	struct state		*st;
	char			 run[PATH_MAX];
};

/* The latest snapshot, handed to the HTTP thread. */
static struct {
	pthread_mutex_t	 mu;
	char		*metrics;
	size_t		 mlen;
	int		 ready;
	char		 why[READY_MAX];
} snap = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* ---- gathering --------------------------------------------------------- */

static void
read_db(struct gatherer *g, struct sample *s)
{
	if (g->st == NULL && (g->st = state_open_ro(g->cfg->state_dir)) == NULL)
		return;
	if (state_count_states(g->st, s->states) == 0 &&
	    state_oldest_unstored(g->st, &s->oldest_ms) == 0) {
		s->db_ok = 1;
		return;
	}
	state_close(g->st);	/* opened again next time */
	g->st = NULL;
}

/* A small file of run/ (at most 64 KiB) as JSON, or NULL with why. */
static json_t *
read_json(const char *dir, const char *name, char *why, size_t whylen)
{
	char path[PATH_MAX];
	json_error_t jerr;
	struct stat sb;
	json_t *j;

	if (xsnprintf(path, sizeof(path), "%s/%s", dir, name) < 0)
		return NULL;
	if (stat(path, &sb) == -1 || sb.st_size > 64 * 1024) {
		(void)xsnprintf(why, whylen, "%s: %s", path, errno == ENOENT ?
		    "missing (is the uploader running?)" : "unreadable or too "
		    "big");
		return NULL;
	}
	if ((j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		(void)xsnprintf(why, whylen, "%s: %s", path, jerr.text);
	return j;
}

static void
read_roles(struct gatherer *g, struct sample *s)
{
	char path[PATH_MAX], line[128], state[16];
	FILE *fp;
	int n;

	if (xsnprintf(path, sizeof(path), "%s/%s", g->run,
	    METRICS_ROLES_FILE) < 0 || (fp = fopen(path, "re")) == NULL)
		return;
	while (s->nroles < MAX_ROLES && fgets(line, sizeof(line), fp) != NULL) {
		n = sscanf(line, "%31s %15s %d", s->roles[s->nroles].name,
		    state, &s->roles[s->nroles].restarts);
		if (n != 3 || !expo_name_ok(s->roles[s->nroles].name, 1))
			continue;
		s->roles[s->nroles++].up = strcmp(state, "up") == 0;
	}
	fclose(fp);
	s->roles_ok = s->nroles > 0;
}

/* Sealed segments: how many, the newest and the oldest mtime. */
static void
read_segments(const struct config *cfg, struct sample *s)
{
	struct dirent *d;
	struct stat sb;
	size_t len;
	DIR *dp;
	int fd;

	if (cfg->audit_segments_dir == NULL ||
	    (dp = opendir(cfg->audit_segments_dir)) == NULL)
		return;
	fd = dirfd(dp);
	while ((d = readdir(dp)) != NULL) {
		len = strlen(d->d_name);
		if (d->d_name[0] == '.' || (len > 5 &&
		    strcmp(d->d_name + len - 5, ".torn") == 0) ||
		    fstatat(fd, d->d_name, &sb, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISREG(sb.st_mode))
			continue;
		s->nsegments++;
		if ((double)sb.st_mtime > s->last_seal)
			s->last_seal = (double)sb.st_mtime;
		if (s->oldest_segment == 0 ||
		    (double)sb.st_mtime < s->oldest_segment)
			s->oldest_segment = (double)sb.st_mtime;
	}
	closedir(dp);
}

static void
gather(struct gatherer *g, struct sample *s)
{
	struct statvfs vfs;

	memset(s, 0, sizeof(*s));
	(void)follow_poll(&g->f, tally_line, &g->t);
	read_db(g, s);
	if (statvfs(g->cfg->state_dir, &vfs) == 0) {
		s->disk_ok = 1;
		s->free_bytes = (double)vfs.f_bavail * (double)vfs.f_frsize;
	}
	s->up = read_json(g->run, "uploader.metrics", s->up_err,
	    sizeof(s->up_err));
	read_roles(g, s);
	read_segments(g->cfg, s);
}

/* ---- the exposition ---------------------------------------------------- */

static double
jnum(json_t *o, const char *path1, const char *path2)
{
	json_t *v = json_object_get(o, path1);

	if (path2 != NULL)
		v = json_object_get(v, path2);
	return json_is_number(v) ? json_number_value(v) :
	    json_is_true(v) ? 1 : 0;
}

static void
expo_files(struct expo *e, const struct gatherer *g, const struct sample *s)
{
	const struct tally *t = &g->t;
	size_t i;
	int fs;

	if (s->db_ok) {
		expo_family(e, "sluice_files", "gauge", "Files in sluice.db by "
		    "state.");
		for (fs = FS_NONE + 1; fs < FS_NSTATES; fs++)
			expo_sample(e, "sluice_files", (double)s->states[fs],
			    "state", file_state_name(fs), NULL);
		expo_family(e, "sluice_oldest_unstored_seconds", "gauge", "Age "
		    "of the oldest file accepted but not stored (0: none).");
		expo_sample(e, "sluice_oldest_unstored_seconds", s->oldest_ms ?
		    (double)(now_ms() - s->oldest_ms) / 1000.0 : 0, NULL);
	}
	expo_family(e, "sluice_files_received_total", "counter", "Files "
	    "received, by partner and the intake's verdict (failed: not "
	    "recorded durably; the partner was told).");
	for (i = 0; i < t->np; i++) {
		expo_sample(e, "sluice_files_received_total",
		    (double)t->p[i].accepted, "partner", t->p[i].name,
		    "verdict", "accepted", NULL);
		expo_sample(e, "sluice_files_received_total",
		    (double)t->p[i].rejected, "partner", t->p[i].name,
		    "verdict", "rejected", NULL);
		expo_sample(e, "sluice_files_received_total",
		    (double)t->p[i].failed, "partner", t->p[i].name,
		    "verdict", "failed", NULL);
	}
	expo_family(e, "sluice_files_arrived_total", "counter", "Files whose "
	    "CLOSE was recorded (file.received), by partner.");
	for (i = 0; i < t->np; i++)
		expo_sample(e, "sluice_files_arrived_total",
		    (double)t->p[i].received, "partner", t->p[i].name, NULL);
	expo_family(e, "sluice_bytes_received_total", "counter", "Bytes "
	    "received (file.received), by partner.");
	for (i = 0; i < t->np; i++)
		expo_sample(e, "sluice_bytes_received_total",
		    (double)t->p[i].bytes, "partner", t->p[i].name, NULL);
	expo_family(e, "sluice_files_stored_total", "counter", "Files the "
	    "store confirmed, by partner.");
	for (i = 0; i < t->np; i++)
		expo_sample(e, "sluice_files_stored_total",
		    (double)t->p[i].stored, "partner", t->p[i].name, NULL);
	expo_family(e, "sluice_files_held_total", "counter", "Files the "
	    "uploader gave up on (held for an operator), by partner.");
	for (i = 0; i < t->np; i++)
		expo_sample(e, "sluice_files_held_total",
		    (double)t->p[i].held, "partner", t->p[i].name, NULL);
}

static void
expo_sessions(struct expo *e, const struct tally *t)
{
	size_t i;

	expo_family(e, "sluice_sessions", "gauge", "SFTP sessions logged in "
	    "now, by partner (counted since the metrics role started).");
	for (i = 0; i < t->np; i++)
		expo_sample(e, "sluice_sessions", (double)t->p[i].sessions,
		    "partner", t->p[i].name, NULL);
	expo_family(e, "sluice_logins_total", "counter", "Authentication "
	    "attempts by result.");
	expo_sample(e, "sluice_logins_total", (double)t->logins_ok, "result",
	    "success", NULL);
	expo_sample(e, "sluice_logins_total", (double)t->logins_failed,
	    "result", "failure", NULL);
	expo_family(e, "sluice_bans_total", "counter", "Addresses, /64s or "
	    "users banned (auth.ban).");
	expo_sample(e, "sluice_bans_total", (double)t->bans, NULL);
	expo_family(e, "sluice_connections_refused_total", "counter",
	    "Connections or logins refused by a limit or list.");
	expo_sample(e, "sluice_connections_refused_total", (double)t->refused,
	    NULL);
	expo_family(e, "sluice_session_crashes_total", "counter", "Session "
	    "processes that died of a signal.");
	expo_sample(e, "sluice_session_crashes_total", (double)t->crashes,
	    NULL);
}

static void
expo_uploader(struct expo *e, const struct sample *s)
{
	double bounds[32], counts[32];
	json_t *le, *cnt, *v;
	const char *k;
	size_t i, n;

	if (s->up == NULL)
		return;
	expo_family(e, "sluice_upload_attempts_total", "counter", "Upload "
	    "attempts (since the uploader started).");
	expo_sample(e, "sluice_upload_attempts_total",
	    jnum(s->up, "attempts", NULL), NULL);
	expo_family(e, "sluice_upload_retries_total", "counter", "Failed "
	    "attempts to be retried.");
	expo_sample(e, "sluice_upload_retries_total",
	    jnum(s->up, "retries", NULL), NULL);
	expo_family(e, "sluice_upload_errors_total", "counter", "Failed "
	    "attempts by S3 error code.");
	json_object_foreach(json_object_get(s->up, "errors"), k, v)
		if (json_is_integer(v) && expo_name_ok(k, 1))
			expo_sample(e, "sluice_upload_errors_total",
			    (double)json_integer_value(v), "code", k, NULL);
	le = json_object_get(json_object_get(s->up, "s3_request_seconds"),
	    "le");
	cnt = json_object_get(json_object_get(s->up, "s3_request_seconds"),
	    "counts");
	n = json_array_size(le);
	if (n == json_array_size(cnt) && n <= 32) {
		for (i = 0; i < n; i++) {
			bounds[i] = json_number_value(json_array_get(le, i));
			counts[i] = json_number_value(json_array_get(cnt, i));
		}
		expo_family(e, "sluice_s3_request_seconds", "histogram",
		    "Time of each HTTP exchange with the store.");
		expo_histogram(e, "sluice_s3_request_seconds", bounds, counts,
		    n, jnum(s->up, "s3_request_seconds", "sum"),
		    jnum(s->up, "s3_request_seconds", "count"));
	}
	expo_family(e, "sluice_store_reachable", "gauge", "1 if the store "
	    "answered the uploader's last probe.");
	expo_sample(e, "sluice_store_reachable", jnum(s->up, "store",
	    "reachable"), NULL);
	expo_family(e, "sluice_credentials_valid", "gauge", "1 if the "
	    "uploader has S3 credentials that work.");
	expo_sample(e, "sluice_credentials_valid", jnum(s->up, "credentials",
	    "valid"), NULL);
	if (jnum(s->up, "credentials", "expires") > 0) {
		expo_family(e, "sluice_credentials_expiry_timestamp_seconds",
		    "gauge", "When the uploader's S3 credentials expire.");
		expo_sample(e, "sluice_credentials_expiry_timestamp_seconds",
		    jnum(s->up, "credentials", "expires"), NULL);
	}
}

static void
expo_rest(struct expo *e, const struct gatherer *g, const struct sample *s)
{
	size_t i;

	expo_family(e, "sluice_build_info", "gauge", "The running build.");
	expo_sample(e, "sluice_build_info", 1, "version", SLUICE_VERSION, NULL);
	expo_family(e, "sluice_role_up", "gauge", "1 if the role is running "
	    "(the supervisor's view).");
	for (i = 0; i < s->nroles; i++)
		expo_sample(e, "sluice_role_up", s->roles[i].up, "role",
		    s->roles[i].name, NULL);
	expo_family(e, "sluice_role_restarts", "gauge", "Restarts of the role "
	    "in a row (reset after a minute up).");
	for (i = 0; i < s->nroles; i++)
		expo_sample(e, "sluice_role_restarts", s->roles[i].restarts,
		    "role", s->roles[i].name, NULL);
	expo_family(e, "sluice_audit_records_total", "counter", "Audit "
	    "records written (read from the live trail).");
	expo_sample(e, "sluice_audit_records_total", (double)g->t.records,
	    NULL);
	expo_family(e, "sluice_audit_last_seal_timestamp_seconds", "gauge",
	    "When the newest sealed segment was sealed (0: none).");
	expo_sample(e, "sluice_audit_last_seal_timestamp_seconds",
	    s->last_seal, NULL);
	expo_family(e, "sluice_audit_segments", "gauge", "Sealed segments "
	    "kept in audit.segments_dir.");
	expo_sample(e, "sluice_audit_segments", (double)s->nsegments, NULL);
	expo_family(e, "sluice_audit_oldest_segment_timestamp_seconds",
	    "gauge", "When the oldest segment kept was sealed (0: none).");
	expo_sample(e, "sluice_audit_oldest_segment_timestamp_seconds",
	    s->oldest_segment, NULL);
	if (s->disk_ok) {
		expo_family(e, "sluice_spool_free_bytes", "gauge", "Free bytes "
		    "for the spool (state_dir, as an unprivileged user).");
		expo_sample(e, "sluice_spool_free_bytes", s->free_bytes, NULL);
	}
	expo_family(e, "sluice_spool_min_free_bytes", "gauge", "The floor "
	    "(server.min_free_space) below which uploads fail.");
	expo_sample(e, "sluice_spool_min_free_bytes",
	    (double)g->cfg->server.min_free_space, NULL);
}

/* Appends one reason the gateway is not ready (a line). */
static void not_ready(char *why, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
not_ready(char *why, const char *fmt, ...)
{
	char line[640];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	(void)xstrlcat(why, line, READY_MAX);
	(void)xstrlcat(why, "\n", READY_MAX);
}

static void
readiness(const struct gatherer *g, const struct sample *s, char *why)
{
	const char *err;
	size_t i;

	why[0] = '\0';
	if (s->up == NULL)
		not_ready(why, "uploader: %s", s->up_err);
	else {
		err = json_string_value(json_object_get(json_object_get(s->up,
		    "store"), "error"));
		if (!jnum(s->up, "store", "reachable"))
			not_ready(why, "store unreachable: %s", err ? err :
			    "");
		err = json_string_value(json_object_get(json_object_get(s->up,
		    "credentials"), "error"));
		if (!jnum(s->up, "credentials", "valid"))
			not_ready(why, "credentials not valid: %s", err ?
			    err : "");
		if (now_ms() / 1000 - (int64_t)jnum(s->up, "written", NULL) >
		    METRICS_STALE_S)
			not_ready(why, "uploader: run/uploader.metrics not "
			    "rewritten for over %d s (uploader stuck or "
			    "stopped)", METRICS_STALE_S);
	}
	if (!s->disk_ok)
		not_ready(why, "disk: cannot statvfs %s", g->cfg->state_dir);
	else if (s->free_bytes < (double)g->cfg->server.min_free_space)
		not_ready(why, "disk: %.0f bytes free under %s, below "
		    "server.min_free_space (%lld): free some space",
		    s->free_bytes, g->cfg->state_dir,
		    (long long)g->cfg->server.min_free_space);
	if (!s->db_ok)
		not_ready(why, "sluice.db: cannot read the state database "
		    "(see the metrics role's log)");
	if (!s->roles_ok)
		not_ready(why, "roles: no run/%s from the supervisor",
		    METRICS_ROLES_FILE);
	for (i = 0; i < s->nroles; i++)
		if (!s->roles[i].up)
			not_ready(why, "role %s is down (see the supervisor's "
			    "log)", s->roles[i].name);
}

/* Builds the exposition and the readiness and swaps them in. */
static void
publish(struct gatherer *g, const struct sample *s)
{
	struct expo e;
	char why[READY_MAX];

	expo_init(&e, EXPO_MAX);
	expo_rest(&e, g, s);
	expo_sessions(&e, &g->t);
	expo_files(&e, g, s);
	expo_uploader(&e, s);
	readiness(g, s, why);
	expo_family(&e, "sluice_ready", "gauge", "1 if /readyz answers 200.");
	expo_sample(&e, "sluice_ready", why[0] == '\0', NULL);
	if (expo_failed(&e)) {
		log_warnx("metrics: the exposition did not fit in %d bytes",
		    EXPO_MAX);
		expo_free(&e);
		return;
	}
	pthread_mutex_lock(&snap.mu);
	free(snap.metrics);
	snap.metrics = e.buf;
	snap.mlen = e.len;
	snap.ready = why[0] == '\0';
	xstrlcpy(snap.why, why, sizeof(snap.why));
	pthread_mutex_unlock(&snap.mu);
}

/* ---- HTTP -------------------------------------------------------------- */

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned int status, const char *ctype,
    const char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if ((r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
	    MHD_RESPMEM_MUST_COPY)) == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", ctype);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
text(struct MHD_Connection *c, unsigned int status, const char *body)
{
	return reply(c, status, "text/plain; charset=utf-8", body,
	    strlen(body));
}

static enum MHD_Result
serve_metrics(struct MHD_Connection *c)
{
	enum MHD_Result ret;

	pthread_mutex_lock(&snap.mu);
	ret = snap.metrics == NULL ? text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
	    "no metrics gathered yet\n") : reply(c, MHD_HTTP_OK,
	    "text/plain; version=0.0.4; charset=utf-8", snap.metrics,
	    snap.mlen);
	pthread_mutex_unlock(&snap.mu);
	return ret;
}

static enum MHD_Result
serve_ready(struct MHD_Connection *c)
{
	char body[READY_MAX + 32];
	int ready;

	pthread_mutex_lock(&snap.mu);
	ready = snap.ready && snap.metrics != NULL;
	if (snap.metrics == NULL)
		xstrlcpy(body, "not ready: nothing gathered yet\n", sizeof(body));
	else if (ready)
		xstrlcpy(body, "ready\n", sizeof(body));
	else
		(void)xsnprintf(body, sizeof(body), "not ready:\n%s", snap.why);
	pthread_mutex_unlock(&snap.mu);
	return text(c, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

/* One request: GET or HEAD of /metrics, /healthz or /readyz; no body. */
static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	(void)cls;
	(void)version;
	(void)upload_data;
	(void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	if (*upload_data_size != 0 || MHD_lookup_connection_value(c,
	    MHD_HEADER_KIND, "Content-Length") != NULL ||
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "Transfer-Encoding") != NULL)
		return text(c, MHD_HTTP_CONTENT_TOO_LARGE, "no request body\n");
	if (strcmp(url, "/metrics") == 0)
		return serve_metrics(c);
	if (strcmp(url, "/healthz") == 0)
		return text(c, MHD_HTTP_OK, "ok\n");
	if (strcmp(url, "/readyz") == 0)
		return serve_ready(c);
	return text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics, /healthz "
	    "or /readyz\n");
}

static struct MHD_Daemon *
http_start(const struct config *cfg)
{
	struct addrinfo hints, *res = NULL;
	struct MHD_Daemon *d;
	char port[16];
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	int e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	(void)xsnprintf(port, sizeof(port), "%d", cfg->metrics.listen_port);
	if ((e = getaddrinfo(cfg->metrics.listen_host, port, &hints, &res)) !=
	    0) {
		log_warnx("metrics.listen %s:%d: %s", cfg->metrics.listen_host,
		    cfg->metrics.listen_port, gai_strerror(e));
		return NULL;
	}
	if (res->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	d = MHD_start_daemon(flags, (uint16_t)cfg->metrics.listen_port, NULL,
	    NULL, handler, NULL,
	    MHD_OPTION_SOCK_ADDR, res->ai_addr,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)METRICS_MAX_CONN,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, 4U,
	    MHD_OPTION_CONNECTION_TIMEOUT, 10U,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
	    MHD_OPTION_END);
	if (d == NULL)
		log_warnx("metrics: cannot listen on %s:%d (a port below 1024 "
		    "or one in use? pick another metrics.listen)",
		    cfg->metrics.listen_host, cfg->metrics.listen_port);
	freeaddrinfo(res);
	return d;
}

int
metrics_run(const struct config *cfg)
{
	struct gatherer g;
	struct sample s;
	struct MHD_Daemon *d = NULL;
	int rc = 1;

	memset(&g, 0, sizeof(g));
	g.f.fd = -1;
	g.cfg = cfg;
	if (cfg->metrics.listen_host == NULL) {
		log_warnx("metrics: no metrics.listen in %s; add e.g. metrics: "
		    "{listen: 127.0.0.1:9464}", cfg->path);
		return 1;
	}
	if (spool_dir_path(cfg->state_dir, SPOOL_RUN, NULL, g.run,
	    sizeof(g.run)) == -1 || tally_init(&g.t, cfg) == -1 ||
	    follow_open(&g.f, cfg->audit_path, 1) == -1) {
		log_warnx("metrics: out of memory or state_dir too long");
		goto done;
	}
	if ((d = http_start(cfg)) == NULL)
		goto done;
	log_info("metrics on http://%s:%d/metrics (/healthz, /readyz)",
	    cfg->metrics.listen_host, cfg->metrics.listen_port);
	while (!proc_quit) {
		gather(&g, &s);
		publish(&g, &s);
		json_decref(s.up);
		proc_sleep(METRICS_REFRESH_MS);
	}
	rc = 0;
done:
	if (d != NULL)
		MHD_stop_daemon(d);
	follow_close(&g.f);
	tally_free(&g.t);
	state_close(g.st);
	pthread_mutex_lock(&snap.mu);
	free(snap.metrics);
	snap.metrics = NULL;
	pthread_mutex_unlock(&snap.mu);
	return rc;
}
