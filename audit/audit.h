/*
 * audit.h - the tamper-evident audit trail: JSON Lines, one record per event,
 * each carrying the SHA-256 of the previous line ("prev"), so that removing,
 * reordering or editing any record breaks the chain at that line.
 *
 * A record reads (keys in this order):
 *   {"seq":N,"ts":"2026-11-22T02:52:13.123Z","event":"file.received",
 *    ...fields...,"prev":"<64 hex>","hash":"<64 hex>"}
 * "hash" is the SHA-256 of the line's bytes before ',"hash":' (so an edited
 * record is named by its own line), and "prev" is the previous record's
 * "hash" (so a removed, inserted or reordered record breaks the chain). The
 * first record's prev is 64 zeros. A keyed seal (HMAC) comes on top later.
 *
 * Several processes append to one file: each append takes flock(LOCK_EX),
 * reads the last line to chain from it, writes the whole line with one
 * write(2) and fdatasyncs before unlocking, so a record that audit_emit()
 * returned 0 for is durable.
 */
#ifndef SLUICE_AUDIT_H
#define SLUICE_AUDIT_H

#include <stdio.h>

#include <jansson.h>

#define AUDIT_MAX_LINE	(64 * 1024)

struct audit;

/* Opens (creating 0640, and its directory 0750) the trail at path. NULL on error (logged). */
struct audit *audit_open(const char *path);
/*
 * Appends one record. fields is a JSON object (or NULL) whose members follow
 * "event" in order; audit_emit takes the reference (json_decref's it), so
 * callers can pass json_pack(...) directly. String values are stored as
 * given: never pass a secret. 0 or -1 (logged).
 */
int audit_emit(struct audit *, const char *event, json_t *fields);
/*
 * A batch of records with one fdatasync: after audit_defer, audit_emit
 * writes and chains each record but does not fdatasync it; audit_sync makes
 * all of them durable at once (0 or -1, logged) and ends the batch. A crash
 * before audit_sync may lose the batch's records from the end of the trail,
 * never one in the middle: call audit_sync before acting on a record that
 * must be durable (telling a partner, deleting a local copy).
 */
void audit_defer(struct audit *);
int audit_sync(struct audit *);
void audit_close(struct audit *);

/*
 * Walks the chain of path. Returns 0 and prints "PATH: N records, chain
 * intact" to out, or 1 and prints "PATH:LINE: why" for the first bad record
 * (2 if the file cannot be read).
 */
int audit_verify(const char *path, FILE *out);

#endif
