#include "uploader/uploader.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/util.h"
#include "spool/intake.h"
#include "spool/state.h"
#include "uploader/store.h"

struct uploader {
	const struct config	*cfg;
	struct state		*st;
	struct audit		*au;
	struct store		*store;
	char			 ready[PATH_MAX];
	int			 readyfd;
};

static void
audit_file(struct uploader *u, const char *event, const struct file_rec *r,
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
	audit_emit(u->au, event, f);
}

static void
upload_one(struct uploader *u, struct file_rec *r)
{
	struct put_request req;
	struct put_result res;
	struct stat sb;
	char received[40];
	const char *names[16] = { "sha256", "partner", "received-at", "fid" };
	const char *values[16];
	json_t *meta = NULL, *v;
	const char *k;
	size_t nmeta = 4;
	int fd;

	memset(&res, 0, sizeof(res));
	fd = openat(u->readyfd, r->fid, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
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
		memset(&req, 0, sizeof(req));
		req.key = r->object_key;
		req.fd = fd;
		req.size = r->size;
		req.sha256 = r->sha256;
		req.meta_names = names;
		req.meta_values = values;
		req.nmeta = nmeta;
		store_put(u->store, &req, &res);
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
		r->last_error[0] = '\0';
		r->stored_ms = now_ms();
		if (state_update(u->st, r, FS_UPLOADING) == -1) {
			log_warnx("%s stored but not recorded; it "
			    "will be checked again", r->fid);
			return;
		}
		audit_file(u, "file.stored", r, json_pack("{s:s,s:s,s:s,s:s,s:b,s:i}",
		    "store", u->cfg->store.url, "bucket", r->bucket,
		    "etag", r->etag, "version_id", r->version_id,
		    "existed", res.existed, "attempts", r->attempts));
		log_info("stored %s/%s as %s%s (%lld bytes, attempt %d)",
		    r->partner, r->path, r->object_key,
		    res.existed ? " (identical object already there)" : "",
		    (long long)r->size, r->attempts);
		/* Retention "delete": the store confirmed the bytes. */
		if (unlinkat(u->readyfd, r->fid, 0) == -1 && errno != ENOENT)
			log_warn("cannot remove spool/ready/%s", r->fid);
		else
			fsync(u->readyfd);
		return;
	case PUT_RETRY:
		xstrlcpy(r->state, FS_ACCEPTED, sizeof(r->state));
		xstrlcpy(r->last_error, res.error, sizeof(r->last_error));
		r->next_attempt_ms = now_ms() + retry_backoff_ms(r->attempts - 1,
		    UPLOAD_BACKOFF_BASE_MS, UPLOAD_BACKOFF_CAP_MS);
		state_update(u->st, r, FS_UPLOADING);
		audit_file(u, "upload.retry", r, json_pack("{s:s,s:i,s:I}",
		    "error", res.error, "attempt", r->attempts, "retry_in_ms",
		    (json_int_t)(r->next_attempt_ms - now_ms())));
		log_warnx("%s/%s: %s; retrying (attempt %d)",
		    r->partner, r->path, res.error, r->attempts);
		return;
	case PUT_FATAL:
	default:
		xstrlcpy(r->state, FS_HELD, sizeof(r->state));
		xstrlcpy(r->last_error, res.error, sizeof(r->last_error));
		state_update(u->st, r, FS_UPLOADING);
		audit_file(u, "file.held", r, json_pack("{s:s,s:i}", "error",
		    res.error, "attempt", r->attempts));
		log_warnx("%s/%s is HELD: %s. The file is kept in "
		    "spool/ready/%s; fix the cause (bucket, credentials, policy) "
		    "and release it", r->partner, r->path, res.error, r->fid);
		return;
	}
}

int
uploader_run(const struct config *cfg)
{
	struct uploader u;
	struct aws_creds creds;
	struct file_rec r;
	int n, rc = 1;

	memset(&u, 0, sizeof(u));
	memset(&creds, 0, sizeof(creds));
	u.cfg = cfg;
	u.readyfd = -1;
	log_setrole("uploader");
	role_signals();
	if (cfg->store.kind == STORE_S3 && creds_from_env(&creds) == -1) {
		log_warnx("no S3 credentials: set AWS_ACCESS_KEY_ID and "
		    "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary "
		    "ones) in the uploader's environment; accepted files wait "
		    "in spool/ready meanwhile");
		return 1;
	}
	u.store = store_open(&cfg->store, &creds);
	creds_wipe(&creds);
	if (u.store == NULL)
		goto out;
	if ((u.st = state_open(cfg->state_dir)) == NULL ||
	    (u.au = audit_open(cfg->audit_path)) == NULL)
		goto out;
	if (spool_path(cfg->state_dir, "spool/ready", NULL, u.ready,
	    sizeof(u.ready)) == -1 ||
	    (u.readyfd = open(u.ready, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_warn("cannot open %s", u.ready);
		goto out;
	}
	/* A crash mid-upload: the conditional PUT makes a repeat safe. */
	if ((n = state_reset(u.st, FS_UPLOADING, FS_ACCEPTED)) > 0)
		log_info("resuming %d interrupted upload(s)", n);
	log_info("uploader ready: storing to %s", cfg->store.url);
	while (!role_quit) {
		n = state_claim(u.st, FS_ACCEPTED, FS_UPLOADING, now_ms(), &r);
		if (n == 1)
			upload_one(&u, &r);
		else
			role_sleep(n == 0 ? 100 : 1000);
	}
	rc = 0;
out:
	if (u.readyfd != -1)
		close(u.readyfd);
	store_close(u.store);
	audit_close(u.au);
	state_close(u.st);
	return rc;
}
