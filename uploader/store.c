/*
 * store.c - dispatches store_open/put/close to the S3 backend (s3.c) or the
 * local directory backend (store_file.c) by cfg->kind.
 */
#include "uploader/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct store {
	enum store_kind		 kind;
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
	switch (cfg->kind) {
	case STORE_S3:
		if (creds == NULL) {
			log_warnx("store: S3 store needs credentials");
			goto fail;
		}
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
	else if (st != NULL && req != NULL && st->kind == STORE_FILE)
		file_store_put(st->file, req, res);
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
