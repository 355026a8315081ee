/*
 * events.h - notifications to downstream systems (issue 12): for each file
 * given a final verdict (file.stored by the uploader, file.rejected by the
 * intake), one row per configured target (config "notify:") goes into the
 * notify outbox of sluice.db in the SAME transaction as the verdict
 * (events_enqueue), so a crash never loses one. The notify role
 * (events_run, its own process: it holds the webhook secrets and nothing
 * else) sends them: a command (argv, no shell, the event's JSON on stdin)
 * or an HTTPS POST signed with HMAC-SHA256, retried with full-jitter
 * backoff (uploader/store.h retry_backoff_ms) until notify.max_age, then
 * given up. Delivery is at least once: receivers dedupe on the delivery id
 * (X-Sluice-Delivery, SLUICE_DELIVERY, "delivery" in the body).
 *
 * Ownership: every pointer argument is borrowed for the call; strings
 * returned are malloc'd and the caller frees them.
 */
#ifndef SLUICE_EVENTS_H
#define SLUICE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "policy/config.h"

struct state;
struct file_rec;

#define EVENTS_BACKOFF_BASE_MS	1000
#define EVENTS_BACKOFF_CAP_MS	(5 * 60 * 1000)

/* 1 if target t wants event ("file.stored" | "file.rejected") of partner. */
int events_wants(const struct notify_target *t, const char *event,
    const char *partner);

/*
 * Inserts a notify outbox row for r's event for every target of cfg that
 * wants it; call it inside the transaction that records the verdict
 * (state_begin ... state_commit). 0 (also with no targets) or -1 (logged:
 * roll the verdict back).
 */
int events_enqueue(struct state *, const struct config *cfg,
    const struct file_rec *r, const char *event);

/* The event's JSON body for r and target index (malloc'd), or NULL. */
char *events_body(const struct file_rec *r, const char *event, int target);
/* The delivery id of (fid, event, target) into out: "<fid>.<verdict>.<n>". */
void events_delivery_id(const char *fid, const char *event, int target,
    char *out, size_t outlen);
/* What names a target in the outbox and the trail: its URL without query
 * or fragment (webhook), or argv[0] (command), into out. */
void events_target_name(const struct notify_target *t, char *out,
    size_t outlen);

/*
 * The X-Sluice-Signature value for body: "sha256=" and the lower-case hex
 * HMAC-SHA256 of the body's bytes with key. 0, or -1 (out too small, or
 * OpenSSL failed).
 */
int events_signature(const unsigned char *key, size_t keylen,
    const char *body, size_t bodylen, char *out, size_t outlen);

/*
 * After failed attempt number `attempts` (1 for the first) of a row
 * created at created_ms: EVENTS_RETRY with *next_ms (now + full-jitter
 * backoff, never past the deadline), or EVENTS_GIVE_UP once now is at or
 * beyond created_ms + max_age_ms.
 */
enum events_next { EVENTS_RETRY, EVENTS_GIVE_UP };
enum events_next events_decide(int attempts, int64_t created_ms,
    int64_t now, int64_t max_age_ms, int64_t *next_ms);

/* The notify role: sends the outbox until SIGTERM. Exit status. */
int events_run(const struct config *cfg);

#endif
