/*
 * store.c - the store_* calls (store.h), each through the operations table
 * of the backend store_open picked by cfg->kind: S3 (s3_store_ops, s3*.c)
 * or a local directory (file_store_ops, store_file.c).
 */
#include "uploader/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

struct store {
	const struct store_ops	*ops;
	void			*be;	/* the backend's handle */
};

static const struct {
	enum store_kind		 kind;
	const struct store_ops	*ops;
} backends[] = {
	{ STORE_S3,	&s3_store_ops },
	{ STORE_FILE,	&file_store_ops },
};

struct store *
store_open(const struct store_config *cfg, const struct aws_creds *creds)
{
	struct store *st;
	size_t i;

	if (cfg == NULL) {
		log_warnx("store: no store configured");
		return NULL;
	}
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (backends[i].kind == cfg->kind)
			break;
	if (i == sizeof(backends) / sizeof(backends[0])) {
		log_warnx("store: unknown store kind %d", (int)cfg->kind);
		return NULL;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		log_warn("store: calloc");
		return NULL;
	}
	st->ops = backends[i].ops;
	if ((st->be = st->ops->open(cfg, creds)) == NULL) {
		free(st);
		return NULL;
	}
	return st;
}

void
store_put(struct store *st, const struct put_request *req, struct put_result *res)
{
	memset(res, 0, sizeof(*res));
	res->outcome = PUT_FATAL;
	if (st == NULL || req == NULL) {
		snprintf(res->error, sizeof(res->error), "store not open");
		return;
	}
	st->ops->put(st->be, req, res);
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	st->ops->close(st->be);
	free(st);
}

void
store_set_cancel(struct store *st, volatile int *flag)
{
	if (st != NULL && st->ops->set_cancel != NULL)
		st->ops->set_cancel(st->be, flag);
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
	return st->ops->head(st->be, key, version_id, cs, cslen, err, errlen);
}

int
store_abort_stale(struct store *st, int64_t older_s,
    int (*keep)(void *, const char *, const char *), void *arg)
{
	if (st == NULL || st->ops->abort_stale == NULL)
		return 0;
	return st->ops->abort_stale(st->be, older_s, keep, arg);
}

int
store_stat(struct store *st, const char *key, struct store_obj *o, char *err,
    size_t errlen)
{
	memset(o, 0, sizeof(*o));
	o->size = -1;
	if (errlen > 0)
		err[0] = '\0';
	if (st == NULL)
		return -1;
	return st->ops->stat(st->be, key, o, err, errlen);
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
	return st->ops->list(st->be, prefix, fn, arg, err, errlen);
}

int
store_sha256(struct store *st, const char *key, uint8_t d[SHA256_LEN],
    char *err, size_t errlen)
{
	if (errlen > 0)
		err[0] = '\0';
	if (st == NULL)
		return -1;
	return st->ops->sha256(st->be, key, d, err, errlen);
}
