/*
 * audit.h - the tamper-evident audit trail: JSON Lines, one record per event,
 * in two chains: a plain SHA-256 chain anyone can check ("prev"/"hash") and
 * a keyed HMAC-SHA256 chain ("kid"/"mac") only the holder of the audit key
 * can extend.
 *
 * A record reads (keys in this order):
 *   {"seq":N,"ts":"2026-11-22T02:52:13.123456Z","host":"gw1",
 *    "event":"file.received",
 *    ...fields...,"prev":"<64 hex>","kid":"<8 hex>","hash":"<64 hex>",
 *    "mac":"<64 hex>"}
 * Call PREFIX the line's bytes before ',"hash":'. "hash" is the SHA-256 of
 * PREFIX (so an edited record is named by its own line), and "prev" is the
 * previous record's "hash" (so a removed, inserted or reordered record
 * breaks the chain); the first record's prev is 64 zeros. This chain shows
 * structure only: whoever can write the file can recompute it.
 * "mac" is HMAC-SHA256(key, the previous record's mac || PREFIX), starting
 * from 32 zero bytes, with the key "kid" names (the first 8 hex digits of
 * the SHA-256 of the key's bytes). PREFIX holds "prev" and "kid", so a MAC
 * also binds every record before it (through the hash chain) and the key
 * id. Without the key nobody can edit, insert, remove or reorder a record
 * and make the MACs match again.
 *
 * Segments: the trail is the live file cfg->audit_path plus sealed
 * segments in cfg->audit_segments_dir, named audit-<first seq>-<seal's
 * seq>.jsonl (%012lld each). The writer seals the live file when it passes
 * audit.segment_max or audit.segment_age (between groups) and when it
 * starts and finds records there (reason "restart"): it appends an
 * audit.seal record (count, first_seq, last_seq, final_mac: see
 * docs/audit.md), links the file into the segments directory and puts a
 * new live file in its place whose first record, audit.open, chains from
 * the seal. So records cut off a sealed segment are detected; see
 * audit_verify_trail.
 *
 * The key is the file cfg->audit_key_path (config audit.key, default
 * state_dir/audit.key): 32 random bytes, mode 0400, owned by the service
 * user. The audit writer creates it on its first start, and refuses to
 * start with a key that is not its own or that group or others may read.
 * Records written without a key (a trail from before keys, or a writer run
 * without audit_key_path, as in tests) have neither "kid" nor "mac"; once a
 * record carries a MAC, every later one must. Rotating the key: `sluice
 * audit rotate-key` (audit_rotate_key); old keys are kept in
 * <dirname(audit.key)>/audit.keys/<kid>.key and the new key's records go on
 * from the last MAC under a new kid.
 *
 * One process, the audit writer (audit_writer_run), is the trail's only
 * writer when sluice runs as a service: every other role sends it records
 * over an AF_UNIX SOCK_SEQPACKET socket (audit_connect) and it appends,
 * chains and fdatasyncs them in groups. Tools that run alone (and roles run
 * without a writer) append to the file directly (audit_open, or
 * audit_open_any when a writer may or may not run). Either way each append
 * takes flock(LOCK_EX), reads the last line to chain from it, writes whole
 * lines and fdatasyncs before unlocking, so a writer and a tool appending
 * at the same time keep one chain. File mode MACs its records when it was
 * given a key it can read (audit_set_key; root can); without one it refuses
 * to append to a keyed trail (its record would end the MAC chain) and says
 * so, and appends unkeyed records to an unkeyed trail.
 *
 * The durability rule is the same in both modes: once audit_emit (not
 * deferred) or audit_sync returned 0, the records are on disk.
 */
#ifndef SLUICE_AUDIT_H
#define SLUICE_AUDIT_H

#include <signal.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

#define AUDIT_MAX_LINE	(64 * 1024)	/* a line, and a client's message */
/* The writer's socket: spool_dir_path(state_dir, SPOOL_AUDIT_SOCK, ...)
 * (spool/layout.h). */
/* How long a client waits for the writer (connect, send, ack). */
#define AUDIT_TIMEOUT_MS	30000

struct audit;
struct config;

/*
 * File mode: opens (creating 0640, and its directory 0750) the trail at path
 * and appends to it directly. NULL on error (logged). path is copied.
 */
struct audit *audit_open(const char *path);
/*
 * File mode: MAC the records with the key at keypath (audit_key_load, not
 * required to be the caller's own). If it cannot be read (missing, not
 * readable by this user, unsafe mode: logged except when missing), the
 * handle goes on without a key, as described above. A no-op in client mode
 * (the writer holds the key) and for a NULL keypath. 0, or -1 when no key
 * was loaded in file mode.
 */
int audit_set_key(struct audit *, const char *keypath);
/*
 * Client mode: connects to the writer listening at sockpath. The returned
 * handle takes audit_emit/audit_defer/audit_sync/audit_close as in file
 * mode; records go to the writer, which stamps seq, ts, prev and hash. If
 * the writer goes away (restarted), the call that notices returns -1 and
 * the next one connects again. NULL if it cannot connect (logged).
 * sockpath is copied.
 */
struct audit *audit_connect(const char *sockpath);
/*
 * Client mode if a writer answers at sockpath (which may be NULL), else
 * file mode on path (for tools like `sluice queue` and roles run alone).
 * NULL only if neither works (logged).
 */
struct audit *audit_open_any(const char *path, const char *sockpath);
/*
 * Appends one record. event is 1..64 characters of [A-Za-z0-9._-]. fields is a JSON object (or NULL) whose members follow
 * "event" in order; audit_emit takes the reference (json_decref's it), so
 * callers can pass json_pack(...) directly. String values are stored as
 * given: never pass a secret. 0 or -1 (logged). In client mode, 0 means the
 * writer has the record on disk (or, deferred, that it was sent).
 */
int audit_emit(struct audit *, const char *event, json_t *fields);
/*
 * A batch of records with one fdatasync: after audit_defer, audit_emit
 * writes and chains each record but does not fdatasync it; audit_sync makes
 * all of them durable at once (0 or -1, logged) and ends the batch. A crash
 * before audit_sync may lose the batch's records from the end of the trail,
 * never one in the middle: call audit_sync before acting on a record that
 * must be durable (telling a partner, deleting a local copy).
 * In client mode deferred records are sent without waiting, and audit_sync
 * returns 0 only once the writer stored every one of them (-1 if any was
 * refused or lost, or the writer did not answer within AUDIT_TIMEOUT_MS).
 */
void audit_defer(struct audit *);
int audit_sync(struct audit *);
/* Syncs what is pending (as audit_sync), closes and frees. NULL is a no-op. */
void audit_close(struct audit *);

/*
 * For the caller that starts the writer: creates the listening socket at
 * sockpath (AF_UNIX SOCK_SEQPACKET, close-on-exec), replacing a stale socket
 * there (anything else at that path is an error), then chown(owner, group)
 * (-1 leaves one unchanged) and chmod(mode) before listen(2), so no client
 * connects while it has other permissions. Returns the fd, or -1 (logged).
 */
int audit_listen(const char *sockpath, uid_t owner, gid_t group, mode_t mode);

/*
 * The writer role: the only process that appends to cfg->audit_path while
 * sluice runs as a service. Serves clients on listenfd (from audit_listen;
 * made non-blocking here) until SIGTERM or SIGINT (it installs handlers that
 * set its own flag) or *flag (audit_writer_quit_flag) becomes non-zero.
 * Reads every message that is ready from every client, appends them to the
 * trail under one flock with one fdatasync, then acks. Peers are known by
 * SO_PEERCRED: uid 0 and the writer's own uid may record any event, the
 * restricted uid (audit_writer_restrict_uid) only auth.*, sftp.*, session.*
 * and file.failed (anything else is refused and an "audit.refused" record
 * names it), any other uid is turned away at accept. A malformed message,
 * or a client that does not read its acks, costs that client its
 * connection. Returns 0 when told to quit, -1 (logged) if the trail cannot
 * be opened or an fdatasync failed (after which nothing written since the
 * last good one can be trusted: restart the writer). Does not close
 * listenfd.
 */
int audit_writer_run(const struct config *cfg, int listenfd);
/*
 * Records from peers with this uid (the session user's) are restricted as
 * above. Call before audit_writer_run. A uid equal to the writer's own
 * (development, everything runs as one user) is not restricted (warned).
 */
void audit_writer_restrict_uid(uid_t session_uid);
/* An extra quit flag audit_writer_run polls (at least once a second). */
void audit_writer_quit_flag(volatile sig_atomic_t *flag);

/*
 * The audit key at path: a regular file of exactly 32 bytes, not readable
 * or writable by group or others, and (must_own) owned by the caller's
 * euid. Returns a new key the caller frees with audit_key_free, or NULL:
 * errno ENOENT (not logged) when there is no file, else logged naming the
 * file and the fix.
 */
struct audit_key *audit_key_load(const char *path, int must_own);
/*
 * Creates a key at path (32 bytes from getrandom, 0400, owned by the
 * caller; never replaces a file) and loads it. NULL on error (logged).
 */
struct audit_key *audit_key_create(const char *path);
/* Its key id (8 hex digits; points into the key). */
const char *audit_key_id(const struct audit_key *);
/* Wipes and frees. NULL is a no-op. */
void audit_key_free(struct audit_key *);

/*
 * Walks the chains of path (a file; audit_verify_trail for more). Returns 0
 * and prints "PATH: N records, chain intact, ..." to out, or 1 and prints
 * "PATH:LINE: why" for the first bad record (2 if the file cannot be read).
 * With keys (nkeys > 0; borrowed) it checks every record's MAC with the key
 * its "kid" names: a bad MAC, a kid none of the keys has (a wrong key), a
 * record without a MAC after keyed records, or a trail without any MAC is
 * bad. Without keys it checks the hash chain only and says on its summary
 * line that MACs were not checked. A file that starts with audit.open after
 * seq 1 (a segment, or the live file after a rotation) is checked from
 * there on (the summary says so).
 */
int audit_verify_keys(const char *path, struct audit_key *const *keys,
    size_t nkeys, FILE *out);
/* audit_verify_keys without keys. */
int audit_verify(const char *path, FILE *out);

/*
 * The trail in paths[0..npaths) as one chain (verify.c has the rules): each
 * path is a file, or a directory standing for its sealed segments
 * (audit-<first>-<last>.jsonl) in name order; give the segments first and
 * the live file last. Returns and prints as audit_verify_keys, naming the
 * first bad record, a cut tail (a sealed segment without its seal, or
 * shorter than it), a missing segment (a seq gap), a repeated or swapped
 * one. With AUDIT_VERIFY_SKIP_MISSING a path that does not exist is
 * skipped (a segments directory not made yet).
 */
#define AUDIT_VERIFY_SKIP_MISSING	0x1
/*
 * The paths are the whole trail (verify -c: the configured segments and
 * live file): it must begin at seq 1, so oldest segments removed are named
 * too. Without it, a first file that begins with audit.open is checked
 * from there on (an examiner's period).
 */
#define AUDIT_VERIFY_WHOLE		0x2
int audit_verify_trail(const char *const *paths, size_t npaths,
    struct audit_key *const *keys, size_t nkeys, int flags, FILE *out);

/*
 * OpenPGP signatures of sealed segments (audit.sign_with): a sealed
 * segment with <segment>.sig beside it is checked with gpgme (a detached
 * signature over the whole file, as `gpg --verify <segment>.sig <segment>`).
 * A bad signature (the segment changed after it was signed), a signature
 * by a key other than the pinned signer, or (required) one that cannot be
 * checked (no public key) names the .sig file and fails the walk (1; 2 when
 * it cannot be checked); not required, a signature without its public key
 * is counted and named in the summary. The summary says how many sealed segments carry a good
 * signature and by whom: without the HMAC key, that is what checks them.
 * All borrowed; NULL members take the defaults.
 */
struct audit_sigcheck {
	const char	*home;		/* GnuPG home holding the public key
					   (NULL: gpg's default, GNUPGHOME) */
	const char	*signer;	/* the expected signer: its primary key's
					   fingerprint (NULL: any, reported) */
	int		 required;	/* asked for (--keyring, --signer): a
					   signature without its key fails */
};
int audit_verify_trail_sig(const char *const *paths, size_t npaths,
    struct audit_key *const *keys, size_t nkeys, int flags,
    const struct audit_sigcheck *sc, FILE *out);
/*
 * A fresh GnuPG home (mkdtemp under $TMPDIR or /tmp, 0700) holding the
 * public keys of the file keyring (armored or binary), for
 * audit_sigcheck.home; its path into home. 0, or -1 (printed to err).
 * audit_sigcheck_home_remove stops its agent and removes it.
 */
int audit_sigcheck_home(const char *keyring, char *home, size_t len,
    FILE *err);
void audit_sigcheck_home_remove(const char *home);

/*
 * Asks the writer listening at sockpath to rotate the audit key: it seals
 * the live segment (reason "rotate-key"), keeps the old key as
 * <dirname(audit.key)>/audit.keys/<kid>.key, makes a new audit.key and
 * records audit.key_rotated with operator (the caller's user name; may be
 * NULL) and the caller's uid. Only root and the writer's own user may ask.
 * Returns 0 once done, -1 with errno set if no writer answers at sockpath
 * (nothing was rotated: keys are never rotated offline), or 1 if the writer
 * refused or failed (logged; see the writer's log).
 */
int audit_rotate_key(const char *sockpath, const char *operator_name);

/*
 * Sets the "host" of the records a file-mode handle appends (the writer
 * takes cfg->audit_host_id); default gethostname(). host is copied. A
 * no-op in client mode. 0 or -1.
 */
int audit_set_host(struct audit *, const char *host);

#endif
