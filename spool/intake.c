#include "spool/intake.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/util.h"
#include "policy/policy.h"
#include "spool/state.h"

volatile int role_quit;

static void
role_sigterm(int sig)
{
	(void)sig;
	role_quit = 1;
}

void
role_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = role_sigterm;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void
role_sleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	if (!role_quit)
		nanosleep(&ts, NULL);	/* EINTR on a signal: fine */
}

/*
 * Moves spool/incoming/<fid> to quarantine/<partner>/<fid> with a reason
 * file beside it. The file is never deleted (invariant 3).
 */
static int
quarantine(const struct config *cfg, const struct file_rec *r,
    const char *reason)
{
	char from[PATH_MAX], dir[PATH_MAX], to[PATH_MAX], why[PATH_MAX];
	char text[8192];

	if (spool_path(cfg->state_dir, "spool/incoming", r->fid, from,
	    sizeof(from)) == -1 ||
	    spool_path(cfg->state_dir, "quarantine", r->partner, dir,
	    sizeof(dir)) == -1 ||
	    xsnprintf(to, sizeof(to), "%s/%s", dir, r->fid) < 0 ||
	    xsnprintf(why, sizeof(why), "%s/%s.reason", dir, r->fid) < 0)
		return -1;
	if (mkdir_p(dir, 0750) == -1)
		return -1;
	xsnprintf(text, sizeof(text), "file: %s\npartner: %s\nsize: %lld\n"
	    "sha256: %s\nreason: %s\n", r->path, r->partner,
	    (long long)r->size, r->sha256, reason);
	if (write_file_atomic(why, text, strlen(text), 0640) == -1)
		return -1;
	if (rename(from, to) == -1 && errno != ENOENT)
		return -1;
	return fsync_dir(dir);
}

static int
judge(const struct config *cfg, struct state *st, struct audit *au,
    struct file_rec *r)
{
	const struct partner *p = config_partner(cfg, r->partner);
	struct objkey_vars v;
	char from[PATH_MAX], to[PATH_MAX], ready[PATH_MAX];
	const char *reason = NULL;
	struct stat sb;

	if (p == NULL)
		reason = "partner no longer configured";
	else {
		memset(&v, 0, sizeof(v));
		v.partner = r->partner;
		v.path = r->path;
		v.sha256 = r->sha256;
		v.received_ms = r->received_ms;
		if (objkey_expand(cfg->store.kind == STORE_S3 ?
		    cfg->store.prefix : "", p->object_key, &v, r->object_key,
		    sizeof(r->object_key)) == -1)
			reason = "object_key template gives no valid key for "
			    "this file name";
	}
	if (reason != NULL) {
		if (quarantine(cfg, r, reason) == -1) {
			log_warn("cannot quarantine %s", r->fid);
			return -1;
		}
		xstrlcpy(r->state, FS_REJECTED, sizeof(r->state));
		xstrlcpy(r->last_error, reason, sizeof(r->last_error));
		if (state_update(st, r, FS_RECEIVED) == -1)
			return -1;
		audit_emit(au, "file.rejected", json_pack(
		    "{s:s,s:s,s:s,s:I,s:s,s:s}", "partner", r->partner, "fid",
		    r->fid, "path", r->path, "size", (json_int_t)r->size,
		    "sha256", r->sha256, "reason", reason));
		log_warnx("%s/%s rejected: %s (kept in quarantine/%s/%s)",
		    r->partner, r->path, reason, r->partner, r->fid);
		return 0;
	}

	if (spool_path(cfg->state_dir, "spool/incoming", r->fid, from,
	    sizeof(from)) == -1 ||
	    spool_path(cfg->state_dir, "spool/ready", r->fid, to,
	    sizeof(to)) == -1 ||
	    spool_path(cfg->state_dir, "spool/ready", NULL, ready,
	    sizeof(ready)) == -1)
		return -1;
	if (rename(from, to) == -1) {
		/* A crash after the rename and before the update: carry on. */
		if (errno != ENOENT || stat(to, &sb) == -1) {
			log_warn("cannot move %s into spool/ready", r->fid);
			return -1;
		}
	}
	if (fsync_dir(ready) == -1)
		return -1;
	xstrlcpy(r->state, FS_ACCEPTED, sizeof(r->state));
	r->next_attempt_ms = 0;
	if (state_update(st, r, FS_RECEIVED) == -1)
		return -1;
	audit_emit(au, "file.accepted", json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:s}",
	    "partner", r->partner, "fid", r->fid, "path", r->path,
	    "size", (json_int_t)r->size, "sha256", r->sha256,
	    "rule", "closed", "key", r->object_key));
	log_info("%s/%s accepted as %s", r->partner, r->path,
	    r->object_key);
	return 0;
}

int
intake_run(const struct config *cfg)
{
	struct state *st;
	struct audit *au;
	struct file_rec r;
	int n;

	log_setrole("intake");
	role_signals();
	if ((st = state_open(cfg->state_dir)) == NULL ||
	    (au = audit_open(cfg->audit_path)) == NULL)
		return 1;
	log_info("intake ready");
	while (!role_quit) {
		n = state_claim(st, FS_RECEIVED, FS_RECEIVED, now_ms(), &r);
		if (n == 0) {
			role_sleep(100);
			continue;
		}
		if (n == -1 || judge(cfg, st, au, &r) == -1) {
			/* Leave it received and look again later. */
			if (n == 1) {
				xstrlcpy(r.state, FS_RECEIVED, sizeof(r.state));
				r.attempts++;
				r.next_attempt_ms = now_ms() + 5000;
				state_update(st, &r, FS_RECEIVED);
			}
			role_sleep(1000);
		}
	}
	audit_close(au);
	state_close(st);
	return 0;
}
