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
/*
 * Seal the live segment, archive the key, start a new key (audit.h:
 * audit_rotate_key). Body: {"operator":"name"} (optional). Only from uid 0
 * or the writer's own uid; always acked.
 */
#define AUDIT_MSG_ROTATE_KEY	3

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
	int		 sealed;		/* it is an audit.seal */
	int64_t		 seq;			/* its seq (0: no record) */
};

/* A record's "host": [A-Za-z0-9._-]{1,64}. */
#define AUDIT_HOST_MAX		64
/* gethostname(), with other characters made '-', cut at 64. */
void audit_host_default(char out[AUDIT_HOST_MAX + 1]);
/* Now as RFC 3339 UTC with microseconds ("2026-11-22T03:04:05.123456Z"). */
void audit_ts_now(char *buf, size_t len);

/*
 * A line (without its newline) is PREFIX + ',"hash":"<64 hex>"}' or, keyed,
 * PREFIX + ',"hash":"<64 hex>","mac":"<64 hex>"}'. Returns PREFIX's length,
 * copies the hash to stored and the MAC (or "") to mac; -1 if the line ends
 * neither way.
 */
ssize_t audit_record_split(const char *line, size_t len,
    char stored[SHA256_HEX], char mac[SHA256_HEX]);
/* 64 lower-case hex digits into 32 bytes (checked by audit_record_split). */
void audit_hex_decode32(const char *hex, uint8_t out[SHA256_LEN]);

/*
 * The chain's tail: reads the last record into *ch and the file size into
 * *size. 0 or -1 (not logged; the trail's tail is torn or unreadable).
 */
int audit_tail(int fd, struct audit_chain *ch, off_t *size);
/* The same for the file's first end bytes (whole lines). */
int audit_tail_at(int fd, off_t end, struct audit_chain *ch);

/* 1 if name (a path or a file name) is audit-<12 digits>-<12 digits>.jsonl. */
int audit_segment_name_ok(const char *name);
/*
 * The seq, "ts" and "event" of the file's first record; 0 or -1 (none, or
 * not a record).
 */
int audit_first_record(int fd, int64_t *seq, char *ts, size_t tslen,
    char *event, size_t evlen);

/* One sealing of the live trail (segment.c). Everything is borrowed. */
struct audit_rotation {
	const char	*live;		/* the live file's path */
	const char	*segdir;	/* where sealed segments go */
	const char	*host;		/* the records' "host" */
	const struct audit_key *key;	/* seals with it (NULL: unkeyed) */
	const struct audit_key *newkey;	/* audit.open with it (NULL: key) */
	const char	*reason;	/* the seal's "reason" */
	json_t		*extra;		/* more seal fields, or NULL */
	int		 syslog;	/* forward the records (a facility; 0: no) */
};
/*
 * Seals the live file fd (open on r->live, locked by the caller, its tail
 * whole, holding a record): appends audit.seal (unless it already ends
 * with one: a rotation cut short), links it into r->segdir under its
 * segment name (copied to name), and renames a new live file holding
 * audit.open over r->live. Returns the new live file's fd (O_APPEND, not
 * locked; the caller closes the old one), or -1 (logged; the live file is
 * then as before, or ends with its seal).
 */
int audit_rotate(const struct audit_rotation *r, int fd, char *name,
    size_t namelen);
/*
 * If the live file fd ends with bytes after its last newline (a torn
 * append), saves them as <segment>.torn in r->segdir, cuts them off and
 * sets *extra to the seal fields torn_bytes, torn_sha256 and torn_file
 * (the caller json_decref's it) for the rotation that must follow. Returns
 * 1 if it did, 0 if the tail was whole, -1 (logged) on error.
 */
int audit_torn_cut(const struct audit_rotation *r, int fd, json_t **extra);
/*
 * Builds the record after *ch: the whole line with its newline, in a new
 * buffer the caller frees, its length in *len; on success *ch moves on to
 * the new record. With a key the record carries "kid" (last before "hash")
 * and ends with "mac"; without one it has neither. host (NULL: the default)
 * is the record's "host". Keys of fields named seq, ts, host, event, prev,
 * kid, hash or mac are dropped. NULL if the record would be
 * longer than AUDIT_MAX_LINE (logged) or on allocation failure. fields and
 * key are borrowed; key may be NULL.
 */
char *audit_seal(const struct audit_key *key, const char *host,
    struct audit_chain *ch, const char *event, json_t *fields, size_t *len);
/* Names an AUDIT_* reply status for a log line. */
const char *audit_status_str(uint32_t status);

#endif
