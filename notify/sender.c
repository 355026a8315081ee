/*
 * sender.c - the notify role (events_run): sends the notify outbox's due
 * rows, one at a time, to a command or a webhook; audits each attempt
 * (notify.sent, notify.failed, notify.gave_up) before it records the
 * outcome, so a crash in between sends once more (at least once) but never
 * loses a row. Runs as the service user with no AWS credentials; it alone
 * reads the webhook secrets.
 */
#include "notify/events.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "spool/state.h"

#define SECRET_MAX	4096
#define DUE_BATCH	32
#define IDLE_MS		1000

struct secret {
	unsigned char	 key[SECRET_MAX];
	size_t		 len;		/* 0: not loaded */
};

struct sender {
	const struct config *cfg;
	struct state	*st;
	struct audit	*au;
	struct secret	*secrets;	/* per target */
};

/* What one attempt gave: ok, and the HTTP status or exit code, or why. */
struct outcome {
	int		 ok;
	long		 code;		/* HTTP status, or exit code; -1 none */
	char		 error[256];
};

/* Reads target t's secret (the file's bytes, one trailing newline
 * dropped); 0 or -1 (logged without the secret). */
static int
load_secret(const struct notify_target *t, struct secret *s)
{
	ssize_t n;
	struct stat sb;
	int fd, rc = -1;

	s->len = 0;
	if ((fd = open(t->secret_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) ==
	    -1 || fstat(fd, &sb) == -1) {
		log_warn("notify: webhook secret_file %s", t->secret_file);
		goto out;
	}
	if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
		log_warnx("notify: %s is readable by group or others; run "
		    "chmod 600 %s", t->secret_file, t->secret_file);
		goto out;
	}
	if ((n = read(fd, s->key, sizeof(s->key))) <= 0 ||
	    (size_t)n == sizeof(s->key)) {
		log_warnx("notify: %s: a secret of 1 to %d bytes, please",
		    t->secret_file, SECRET_MAX - 1);
		goto out;
	}
	if (s->key[n - 1] == '\n')
		n--;
	if (n == 0)
		goto out;
	s->len = (size_t)n;
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	return rc;
}

static size_t
discard(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return sz * n;
}

static void
send_webhook(struct sender *sd, const struct notify_target *t, int ti,
    const struct notify_row *n, struct outcome *o)
{
	struct curl_slist *h = NULL;
	struct secret *sec = &sd->secrets[ti];
	char sig[80], line[256], errbuf[CURL_ERROR_SIZE] = "";
	CURL *c;
	CURLcode cc;
	size_t blen = strlen(n->body);

	if (sec->len == 0 && load_secret(t, sec) == -1) {
		xstrlcpy(o->error, "the webhook secret_file cannot be read",
		    sizeof(o->error));
		return;
	}
	if (events_signature(sec->key, sec->len, n->body, blen, sig,
	    sizeof(sig)) == -1 || (c = curl_easy_init()) == NULL) {
		xstrlcpy(o->error, "cannot sign or start the request",
		    sizeof(o->error));
		return;
	}
	h = curl_slist_append(h, "Content-Type: application/json");
	xsnprintf(line, sizeof(line), "X-Sluice-Signature: %s", sig);
	h = curl_slist_append(h, line);
	xsnprintf(line, sizeof(line), "X-Sluice-Timestamp: %lld",
	    (long long)(now_ms() / 1000));
	h = curl_slist_append(h, line);
	events_delivery_id(n->fid, n->event, n->target, sig, sizeof(sig));
	xsnprintf(line, sizeof(line), "X-Sluice-Delivery: %s", sig);
	h = curl_slist_append(h, line);
	xsnprintf(line, sizeof(line), "X-Sluice-Event: %s", n->event);
	h = curl_slist_append(h, line);
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, t->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, n->body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sluice/" SLUICE_VERSION);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)t->timeout_s);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)t->timeout_s);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if (t->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file);
	if ((cc = curl_easy_perform(c)) != CURLE_OK)
		xsnprintf(o->error, sizeof(o->error), "%s (curl %d)",
		    errbuf[0] ? errbuf : curl_easy_strerror(cc), (int)cc);
	else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &o->code);
		if (o->code >= 200 && o->code < 300)
			o->ok = 1;
		else
			xsnprintf(o->error, sizeof(o->error), "HTTP %ld",
			    o->code);
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
}

/* The child's environment: a fixed PATH and the event's names. */
static void
command_env(const struct notify_row *n, char env[6][300], char *envp[7])
{
	char id[128];

	events_delivery_id(n->fid, n->event, n->target, id, sizeof(id));
	xsnprintf(env[0], 300, "PATH=/usr/local/bin:/usr/bin:/bin");
	xsnprintf(env[1], 300, "SLUICE_EVENT=%s", n->event);
	xsnprintf(env[2], 300, "SLUICE_FID=%s", n->fid);
	xsnprintf(env[3], 300, "SLUICE_PARTNER=%s", n->partner);
	xsnprintf(env[4], 300, "SLUICE_DELIVERY=%s", id);
	env[5][0] = '\0';
	envp[0] = env[0]; envp[1] = env[1]; envp[2] = env[2];
	envp[3] = env[3]; envp[4] = env[4]; envp[5] = NULL; envp[6] = NULL;
}

/* The child: its own process group, stdin from in, stdout to /dev/null. */
static void
command_child(const struct notify_target *t, int in, char **envp)
{
	int null;

	(void)setpgid(0, 0);
	/* it leaves with us, even killed (its group is its own) */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (dup2(in, STDIN_FILENO) == -1)
		_exit(126);
	if ((null = open("/dev/null", O_WRONLY)) != -1)
		(void)dup2(null, STDOUT_FILENO);
	signal(SIGPIPE, SIG_DFL);
	execve(t->argv[0], t->argv, envp);
	_exit(127);
}

/* Writes the body to the child (EPIPE is the child's business) and waits
 * up to timeout_s; kills its process group when it is late. */
static void
send_command(const struct notify_target *t, const struct notify_row *n,
    struct outcome *o)
{
	char env[6][300], *envp[7], key[600];
	const char *kv;
	int p[2], status = 0;
	int64_t deadline;
	pid_t pid, w = 0;
	size_t off = 0, len = strlen(n->body);
	ssize_t k;
	json_t *body;

	command_env(n, env, envp);
	/* SLUICE_KEY: the object key of a stored file */
	if ((body = json_loads(n->body, 0, NULL)) != NULL &&
	    (kv = json_string_value(json_object_get(body, "key"))) != NULL) {
		xsnprintf(key, sizeof(key), "SLUICE_KEY=%s", kv);
		envp[5] = key;
	}
	if (pipe2(p, O_CLOEXEC) == -1) {
		xsnprintf(o->error, sizeof(o->error), "pipe: %s",
		    strerror(errno));
		json_decref(body);
		return;
	}
	if ((pid = fork()) == -1) {
		xsnprintf(o->error, sizeof(o->error), "fork: %s",
		    strerror(errno));
		close(p[0]);
		close(p[1]);
		json_decref(body);
		return;
	}
	if (pid == 0)
		command_child(t, p[0], envp);
	json_decref(body);
	close(p[0]);
	while (off < len && (k = write(p[1], n->body + off, len - off)) > 0)
		off += (size_t)k;
	close(p[1]);
	deadline = mono_ms() + t->timeout_s * 1000;
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 &&
	    mono_ms() < deadline && !proc_quit)
		proc_sleep(20);
	if (w != pid) {
		(void)kill(-pid, SIGKILL);
		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, &status, 0);
		xsnprintf(o->error, sizeof(o->error), proc_quit ? "stopped "
		    "(sluice is shutting down)" : "timed out after %llds; killed",
		    (long long)t->timeout_s);
		return;
	}
	if (WIFEXITED(status)) {
		o->code = WEXITSTATUS(status);
		if (o->code == 0)
			o->ok = 1;
		else
			xsnprintf(o->error, sizeof(o->error), "exit code %ld%s",
			    o->code, o->code == 127 ? " (cannot run it)" : "");
	} else
		xsnprintf(o->error, sizeof(o->error), "killed by signal %d",
		    WTERMSIG(status));
}

/* The target row n was made for: the same index and name, else another
 * target with that name (the list changed); NULL: none any more. */
static const struct notify_target *
find_target(const struct config *cfg, const struct notify_row *n, int *ti)
{
	char name[2200];
	size_t i;

	for (i = 0; i < cfg->notify.ntargets; i++) {
		size_t j = ((size_t)n->target + i) % cfg->notify.ntargets;

		events_target_name(&cfg->notify.targets[j], name, sizeof(name));
		if (strcmp(name, n->target_key) == 0) {
			*ti = (int)j;
			return &cfg->notify.targets[j];
		}
	}
	return NULL;
}

static void
audit_attempt(struct sender *sd, const char *what, const struct notify_row *n,
    const struct notify_target *t, const struct outcome *o)
{
	const char *verdict;
	char id[128];
	json_t *f;

	events_delivery_id(n->fid, n->event, n->target, id, sizeof(id));
	verdict = strrchr(n->event, '.');
	f = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:i}", "fid", n->fid,
	    "partner", n->partner, "verdict", verdict != NULL ? verdict + 1 :
	    n->event, "delivery", id,
	    "target", n->target, "kind", t == NULL ? "gone" :
	    t->kind == NOTIFY_WEBHOOK ? "webhook" : "command",
	    t != NULL && t->kind == NOTIFY_WEBHOOK ? "url" : "command",
	    n->target_key, "attempt", n->attempts);
	if (f != NULL && o->code >= 0)
		json_object_set_new(f, t != NULL && t->kind == NOTIFY_COMMAND ?
		    "exit_code" : "http_status", json_integer(o->code));
	if (f != NULL && !o->ok)
		json_object_set_new(f, "error", json_string(o->error));
	if (f != NULL && strcmp(what, "notify.failed") == 0) {
		char at[32];

		iso8601_ms(n->next_ms, at, sizeof(at));
		json_object_set_new(f, "retry_at", json_string(at));
	}
	audit_emit(sd->au, what, f);
}

/* One attempt at row n, audited, then recorded. */
static void
deliver(struct sender *sd, struct notify_row *n)
{
	const struct notify_target *t;
	struct outcome o;
	const char *what;
	int ti = 0, status;
	int64_t now;

	memset(&o, 0, sizeof(o));
	o.code = -1;
	n->attempts++;
	if ((t = find_target(sd->cfg, n, &ti)) == NULL)
		xstrlcpy(o.error, "its target is no longer configured",
		    sizeof(o.error));
	else if (t->kind == NOTIFY_WEBHOOK)
		send_webhook(sd, t, ti, n, &o);
	else
		send_command(t, n, &o);
	now = now_ms();
	if (o.ok) {
		what = "notify.sent";
		status = NOTIFY_SENT;
		n->last_error[0] = '\0';
	} else if (t != NULL && events_decide(n->attempts, n->created_ms, now,
	    sd->cfg->notify.max_age_s * 1000, &n->next_ms) == EVENTS_RETRY) {
		what = "notify.failed";
		status = NOTIFY_PENDING;
	} else {
		what = "notify.gave_up";
		status = NOTIFY_GAVE_UP;
	}
	if (!o.ok) {
		xstrlcpy(n->last_error, o.error, sizeof(n->last_error));
		log_warnx("notify: %s of %s to target %d (%s): %s%s",
		    n->event, n->fid, n->target, n->target_key, o.error,
		    status == NOTIFY_GAVE_UP ? "; gave up" : "; will retry");
	}
	audit_attempt(sd, what, n, t, &o);
	if (state_notify_update(sd->st, n, status,
	    status == NOTIFY_PENDING ? 0 : now) == -1)
		log_warnx("notify: could not record the outcome for %s; it is "
		    "sent again", n->fid);
}

int
events_run(const struct config *cfg)
{
	struct sender sd;
	struct notify_row *rows = NULL;
	size_t n = 0, i;
	int rc = 1;

	memset(&sd, 0, sizeof(sd));
	sd.cfg = cfg;
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (sd.st = state_open(cfg->state_dir)) == NULL ||
	    (sd.au = proc_audit_open(cfg)) == NULL ||
	    (sd.secrets = calloc(cfg->notify.ntargets + 1,
	    sizeof(*sd.secrets))) == NULL)
		goto out;
	for (i = 0; i < cfg->notify.ntargets; i++)
		if (cfg->notify.targets[i].kind == NOTIFY_WEBHOOK)
			(void)load_secret(&cfg->notify.targets[i],
			    &sd.secrets[i]);
	log_info("notify ready: %zu target%s", cfg->notify.ntargets,
	    cfg->notify.ntargets == 1 ? "" : "s");
	while (!proc_quit) {
		if (state_notify_due(sd.st, now_ms(), DUE_BATCH, &rows, &n) ==
		    -1)
			n = 0;
		for (i = 0; i < n && !proc_quit; i++)
			deliver(&sd, &rows[i]);
		state_notify_free(rows, n);
		rows = NULL;
		if (n < DUE_BATCH)
			proc_sleep(IDLE_MS);
	}
	rc = 0;
out:
	if (sd.secrets != NULL)
		explicit_bzero(sd.secrets, (cfg->notify.ntargets + 1) *
		    sizeof(*sd.secrets));
	free(sd.secrets);
	audit_close(sd.au);
	state_close(sd.st);
	return rc;
}
