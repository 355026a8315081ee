/*
 * audit_int.h - what audit.c (the file and client modes) and writer.c (the
 * writer role) share: the wire format between a client and the writer, and
 * the chaining helpers. Not for use outside audit/.
 */
#ifndef SLUICE_AUDIT_INT_H
#define SLUICE_AUDIT_INT_H

#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/util.h"

/*
 * One SOCK_SEQPACKET message from a client: this header, then (RECORD only)
 * the JSON text {"event":"name","fields":{...}} ("fields" may be absent or
 * null). The whole message is at most AUDIT_MAX_LINE bytes. Each message
 * that asks for an ack gets exactly one reply, a struct audit_reply, in the
 * order the messages were sent.
 */
struct audit_msg {
	uint32_t	type;
	uint32_t	flags;
};
#define AUDIT_MSG_RECORD	1	/* append the record that follows */
#define AUDIT_MSG_SYNC		2	/* ack once everything before is durable */

#define AUDIT_F_ACK		0x1	/* RECORD: ack once it is durable */

struct audit_reply {
	uint32_t	status;
};
#define AUDIT_OK		0
#define AUDIT_ERR_IO		1	/* the writer could not write or sync */
#define AUDIT_ERR_REFUSED	2	/* not an event this peer may record */
#define AUDIT_ERR_INVALID	3	/* the record cannot be stored (too long) */
#define AUDIT_ERR_EARLIER	4	/* SYNC: an earlier deferred record failed */

/* An event name: 1..AUDIT_MAX_EVENT of [A-Za-z0-9._-]. */
#define AUDIT_MAX_EVENT		64
int audit_event_ok(const char *event);

/* Opens (creating 0640, and its directory 0750) the trail; fd or -1 (logged). */
int audit_file_open(const char *path);
/* flock(LOCK_EX) retrying on EINTR; 0 or -1 (logged, naming path). */
int audit_lock(int fd, const char *path);
/*
 * The HMAC key (audit.h: audit_key_load). kid is the first 8 hex digits of
 * the SHA-256 of the key bytes; mac is fetched once per key.
 */
#define AUDIT_KEY_LEN		32
#define AUDIT_KID_HEX		9	/* 8 hex digits + NUL */
struct audit_key {
	uint8_t		 key[AUDIT_KEY_LEN];
	char		 kid[AUDIT_KID_HEX];
	struct evp_mac_st *mac;		/* EVP_MAC "HMAC" */
};
/* HMAC-SHA256(key, prevmac || data[0..len)); 0 or -1. */
int audit_mac(const struct audit_key *, const uint8_t prevmac[SHA256_LEN],
    const char *data, size_t len, uint8_t out[SHA256_LEN]);

/* Where the chain stands after its last record. */
struct audit_chain {
	char		 prev[SHA256_HEX];	/* its "hash" (zeros: no record) */
	uint8_t		 mac[SHA256_LEN];	/* its MAC (zeros: none yet) */
	int		 keyed;			/* it carries a MAC */
	int64_t		 seq;			/* its seq (0: no record) */
};

/*
 * The chain's tail: reads the last record into *ch and the file size into
 * *size. 0 or -1 (not logged; the trail's tail is torn or unreadable).
 */
int audit_tail(int fd, struct audit_chain *ch, off_t *size);
/*
 * Builds the record after *ch: the whole line with its newline, in a new
 * buffer the caller frees, its length in *len; on success *ch moves on to
 * the new record. With a key the record carries "kid" (last before "hash")
 * and ends with "mac"; without one it has neither. Keys of fields named seq,
 * ts, event, prev, kid, hash or mac are dropped. NULL if the record would be
 * longer than AUDIT_MAX_LINE (logged) or on allocation failure. fields and
 * key are borrowed; key may be NULL.
 */
char *audit_seal(const struct audit_key *key, struct audit_chain *ch,
    const char *event, json_t *fields, size_t *len);
/* Names an AUDIT_* reply status for a log line. */
const char *audit_status_str(uint32_t status);

#endif
