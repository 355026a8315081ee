/*
 * store.c - dispatches store_open/put/close to the S3 backend (s3.c) or the
 * local directory backend (store_file.c) by cfg->kind.
 */
#include "uploader/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

struct store {
	enum store_kind		 kind;
	const struct store_config *cfg;
	struct s3_store		*s3;
	struct file_store	*file;
};

struct store *
store_open(const struct store_config *cfg, const struct aws_creds *creds)
{
	struct store *st;

	if (cfg == NULL) {
		log_warnx("store: no store configured");
		return NULL;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		log_warn("store: calloc");
		return NULL;
	}
	st->kind = cfg->kind;
	st->cfg = cfg;
	switch (cfg->kind) {
	case STORE_S3:
		if ((st->s3 = s3_store_open(cfg, creds)) == NULL)
			goto fail;
		break;
	case STORE_FILE:
		if ((st->file = file_store_open(cfg)) == NULL)
			goto fail;
		break;
	default:
		log_warnx("store: unknown store kind %d", (int)cfg->kind);
		goto fail;
	}
	return st;
fail:
	free(st);
	return NULL;
}

void
store_put(struct store *st, const struct put_request *req, struct put_result *res)
{
	memset(res, 0, sizeof(*res));
	res->outcome = PUT_FATAL;
	if (st != NULL && req != NULL && st->kind == STORE_S3)
		s3_store_put(st->s3, req, res);
	else if (st != NULL && req != NULL && st->kind == STORE_FILE) {
		uint8_t d[SHA256_LEN];
		size_t i;

		file_store_put(st->file, req, res);
		if (res->key[0] == '\0')	/* else the suffixed key */
			xstrlcpy(res->key, req->key ? req->key : "",
			    sizeof(res->key));
		/* The checksum S3 would report, for the record. */
		for (i = 0; req->sha256 != NULL && i < SHA256_LEN &&
		    strlen(req->sha256) == 64; i++)
			if (sscanf(req->sha256 + 2 * i, "%2hhx", &d[i]) != 1)
				break;
		if (i == SHA256_LEN)
			base64_encode(d, sizeof(d), res->checksum);
	}
	else
		snprintf(res->error, sizeof(res->error), "store not open");
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	s3_store_close(st->s3);
	file_store_close(st->file);
	free(st);
}

void
store_set_cancel(struct store *st, volatile int *flag)
{
	if (st != NULL && st->kind == STORE_S3)
		s3_store_set_cancel(st->s3, flag);
}

int
store_checksum_matches(const char *reported, const char *sha256_b64,
    const char *composite)
{
	size_t n;

	if (reported == NULL || reported[0] == '\0')
		return 0;
	if (sha256_b64 != NULL && sha256_b64[0] != '\0' &&
	    strcmp(reported, sha256_b64) == 0)
		return 1;
	if (composite == NULL || composite[0] == '\0')
		return 0;
	if (strcmp(reported, composite) == 0)
		return 1;
	/* "X-N" against "X" (moto leaves out the part count) and back. */
	n = strcspn(composite, "-");
	if (strlen(reported) == n && strncmp(reported, composite, n) == 0)
		return 1;
	n = strcspn(reported, "-");
	return strlen(composite) == n && strncmp(reported, composite, n) == 0;
}

/* The file store: hash the file at dir/key (no symlinks in its last part);
 * 1 (d and *size filled), 0 no such file, -1 error (err). */
static int
file_hash(const struct store_config *cfg, const char *key,
    uint8_t d[SHA256_LEN], int64_t *size, char *err, size_t errlen)
{
	char path[4096];
	struct stat sb;
	int fd, rc;

	if (xsnprintf(path, sizeof(path), "%s/%s", cfg->dir, key) < 0 ||
	    strstr(key, "..") != NULL) {
		xsnprintf(err, errlen, "key %s is not usable here", key);
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		xsnprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ? sha256_fd(fd, d) : -1;
	close(fd);
	if (rc != 0) {
		xsnprintf(err, errlen, "%s: cannot read it as a file", path);
		return -1;
	}
	*size = sb.st_size;
	return 1;
}

static int
file_head(const struct store_config *cfg, const char *key, char *cs,
    size_t cslen, char *err, size_t errlen)
{
	char b64[SHA256_B64];
	uint8_t d[SHA256_LEN];
	int64_t size;
	int rc;

	if ((rc = file_hash(cfg, key, d, &size, err, errlen)) != 1)
		return rc;
	base64_encode(d, sizeof(d), b64);
	xstrlcpy(cs, b64, cslen);
	return 1;
}

int
store_head(struct store *st, const char *key, const char *version_id,
    char *cs, size_t cslen, char *err, size_t errlen)
{
	if (cslen > 0)
		cs[0] = '\0';
	if (errlen > 0)
		err[0] = '\0';
	if (st == NULL)
		return -1;
	if (st->kind == STORE_S3)
		return s3_store_head(st->s3, key, version_id, cs, cslen, err,
		    errlen);
	return file_head(st->cfg, key, cs, cslen, err, errlen);
}

int
store_abort_stale(struct store *st, int64_t older_s,
    int (*keep)(void *, const char *, const char *), void *arg)
{
	if (st == NULL || st->kind != STORE_S3)
		return 0;
	return s3_store_abort_stale(st->s3, older_s, keep, arg);
}

int
store_stat(struct store *st, const char *key, struct store_obj *o, char *err,
    size_t errlen)
{
	uint8_t d[SHA256_LEN];
	int rc;

	memset(o, 0, sizeof(*o));
	o->size = -1;
	if (errlen > 0)
		err[0] = '\0';
	if (st == NULL)
		return -1;
	if (st->kind == STORE_S3)
		return s3_store_stat(st->s3, key, o, err, errlen);
	if ((rc = file_hash(st->cfg, key, d, &o->size, err, errlen)) == 1)
		base64_encode(d, sizeof(d), o->checksum);
	return rc;
}

int
store_list(struct store *st, const char *prefix,
    int (*fn)(void *, const char *, int64_t), void *arg, char *err,
    size_t errlen)
{
	if (errlen > 0)
		err[0] = '\0';
	if (st == NULL)
		return -1;
	if (st->kind == STORE_S3)
		return s3_store_list(st->s3, prefix, fn, arg, err, errlen);
	return file_store_list(st->file, prefix, fn, arg, err, errlen);
}

int
store_sha256(struct store *st, const char *key, uint8_t d[SHA256_LEN],
    char *err, size_t errlen)
{
	int64_t size;
	int rc;

	if (errlen > 0)
		err[0] = '\0';
	if (st == NULL)
		return -1;
	if (st->kind == STORE_S3)
		return s3_store_sha256(st->s3, key, d, err, errlen);
	if ((rc = file_hash(st->cfg, key, d, &size, err, errlen)) == 0)
		xsnprintf(err, errlen, "%s: no such object", key);
	return rc == 1 ? 0 : -1;
}
