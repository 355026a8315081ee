/*
 * events.c - the notify outbox's rows (events_enqueue, run in the intake's
 * and the uploader's verdict transactions), the body, the signature and the
 * retry decision; the sender is sender.c.
 */
#include "notify/events.h"

#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "common/log.h"
#include "common/util.h"
#include "spool/state.h"
#include "uploader/store.h"

int
events_wants(const struct notify_target *t, const char *event,
    const char *partner)
{
	unsigned bit;
	size_t i;

	if (strcmp(event, "file.stored") == 0)
		bit = NOTIFY_ON_STORED;
	else if (strcmp(event, "file.rejected") == 0)
		bit = NOTIFY_ON_REJECTED;
	else
		return 0;
	if ((t->on & bit) == 0)
		return 0;
	if (t->npartners == 0)
		return 1;
	for (i = 0; i < t->npartners; i++)
		if (strcmp(t->partners[i], partner) == 0)
			return 1;
	return 0;
}

void
events_delivery_id(const char *fid, const char *event, int target,
    char *out, size_t outlen)
{
	const char *verdict = strrchr(event, '.');

	(void)xsnprintf(out, outlen, "%s.%s.%d", fid,
	    verdict != NULL ? verdict + 1 : event, target);
}

void
events_target_name(const struct notify_target *t, char *out, size_t outlen)
{
	if (t->kind == NOTIFY_WEBHOOK && t->url != NULL) {
		(void)xstrlcpy(out, t->url, outlen);
		out[strcspn(out, "?#")] = '\0';
	} else if (t->kind == NOTIFY_COMMAND && t->argc > 0)
		(void)xstrlcpy(out, t->argv[0], outlen);
	else
		(void)xstrlcpy(out, "", outlen);
}

char *
events_body(const struct file_rec *r, const char *event, int target)
{
	char delivery[128], received[32], at[32];
	json_t *o;
	char *text;
	int stored = strcmp(event, "file.stored") == 0;

	events_delivery_id(r->fid, event, target, delivery, sizeof(delivery));
	iso8601_ms(r->received_ms, received, sizeof(received));
	iso8601_ms(stored && r->stored_ms > 0 ? r->stored_ms : now_ms(), at,
	    sizeof(at));
	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s}",
	    "event", event, "delivery", delivery, "fid", r->fid,
	    "partner", r->partner, "path", r->path, "size", (json_int_t)r->size,
	    "sha256", r->sha256, "received_at", received,
	    stored ? "stored_at" : "rejected_at", at);
	if (o == NULL)
		return NULL;
	if (stored)
		json_object_update_new(o, json_pack("{s:s,s:s,s:s,s:s}",
		    "bucket", r->bucket, "key", r->object_key, "version_id",
		    r->version_id, "etag", r->etag));
	else
		json_object_set_new(o, "reason", json_string(r->last_error));
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

int
events_enqueue(struct state *st, const struct config *cfg,
    const struct file_rec *r, const char *event)
{
	struct notify_row n;
	const struct notify_target *t;
	size_t i;
	int rc;

	for (i = 0; i < cfg->notify.ntargets; i++) {
		t = &cfg->notify.targets[i];
		if (!events_wants(t, event, r->partner))
			continue;
		memset(&n, 0, sizeof(n));
		n.file_id = r->id;
		(void)xstrlcpy(n.fid, r->fid, sizeof(n.fid));
		(void)xstrlcpy(n.partner, r->partner, sizeof(n.partner));
		(void)xstrlcpy(n.event, event, sizeof(n.event));
		n.target = (int)i;
		events_target_name(t, n.target_key, sizeof(n.target_key));
		n.created_ms = now_ms();
		n.next_ms = 0;
		if ((n.body = events_body(r, event, (int)i)) == NULL) {
			log_warnx("notify: cannot make the %s event of %s",
			    event, r->fid);
			return -1;
		}
		rc = state_notify_add(st, &n);
		free(n.body);
		if (rc == -1)
			return -1;
	}
	return 0;
}

int
events_signature(const unsigned char *key, size_t keylen, const char *body,
    size_t bodylen, char *out, size_t outlen)
{
	OSSL_PARAM params[2];
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	unsigned char md[32];
	size_t mdlen = 0;
	int rc = -1;

	if (outlen < 7 + 2 * sizeof(md) + 1)
		return -1;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (ctx = EVP_MAC_CTX_new(mac)) == NULL ||
	    EVP_MAC_init(ctx, key, keylen, params) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)body, bodylen) != 1 ||
	    EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) != 1 ||
	    mdlen != sizeof(md))
		goto fail;
	memcpy(out, "sha256=", 7);
	hex_encode(md, sizeof(md), out + 7);
	rc = 0;
fail:
	explicit_bzero(md, sizeof(md));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rc;
}

enum events_next
events_decide(int attempts, int64_t created_ms, int64_t now,
    int64_t max_age_ms, int64_t *next_ms)
{
	int64_t deadline = created_ms + max_age_ms, wait;

	if (now >= deadline)
		return EVENTS_GIVE_UP;
	wait = retry_backoff_ms(attempts > 0 ? attempts - 1 : 0,
	    EVENTS_BACKOFF_BASE_MS, EVENTS_BACKOFF_CAP_MS);
	*next_ms = now + wait;
	if (*next_ms > deadline)
		*next_ms = deadline;	/* one last try at the deadline */
	return EVENTS_RETRY;
}
