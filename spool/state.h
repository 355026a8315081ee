/*
 * state.h - the state database (SQLite, WAL, state_dir/sluice.db) holding
 * every file's state, the upload queue, the uploader's multipart progress
 * and the audit outbox. Every SQL statement of sluice lives in state.c; the
 * other modules call the functions below. The spool's directories and the
 * states' names are spool/layout.h's.
 *
 * A file's life: received -> [waiting ->] accepted -> uploading -> stored, or
 * rejected, or held (needs an operator); a sidecar the intake used without
 * shipping it ends "consumed". Every transition is one transaction, guarded by
 * the state it leaves, so two processes never move one file twice. A state
 * argument must be a real state (not FS_NONE): a function given one that is
 * not writes nothing and fails (-1, logged).
 *
 * Ownership: struct state is owned by the caller of state_open and used by
 * one thread at a time; struct file_rec is a plain value the caller owns;
 * string arguments are borrowed for the call.
 */
#ifndef SLUICE_STATE_H
#define SLUICE_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "spool/layout.h"

struct file_rec {
	int64_t	 id;
	char	 fid[33];		/* random id, the spool file name */
	char	 partner[65];
	char	 path[4096];		/* inside the partner root, no leading '/' */
	char	 remote[64];		/* client address */
	char	 session[33];
	int64_t	 size;
	char	 sha256[65];
	int64_t	 received_ms;
	enum file_state state;		/* FS_NONE: a name this version does not know */
	char	 object_key[1100];
	int	 attempts;
	int64_t	 next_attempt_ms;
	char	 last_error[512];
	char	 bucket[256];
	char	 etag[256];
	char	 version_id[256];
	int64_t	 stored_ms;
	/* Object metadata as a JSON object of strings, e.g.
	 * {"signer":"<fpr>","signed-at":"..."}: the uploader sends each as
	 * x-amz-meta-<name> (names lower-case ASCII, values printable ASCII). */
	char	 meta[2048];
	/* The partner-visible file (landing/<partner>/<path>) at receipt, so
	 * the visibility janitor only removes that very inode. */
	int64_t	 landing_dev;
	int64_t	 landing_ino;
};

struct state;

/* Opens (creating) state_dir/sluice.db in WAL mode. NULL on error (logged). */
struct state *state_open(const char *state_dir);
void state_close(struct state *);

/*
 * A batch: every state_* call between state_begin and state_commit joins one
 * write transaction (one WAL commit, one fsync), so a role that moves many
 * files at once holds the write lock once instead of once per file. Keep a
 * batch short (no network, no gpg inside it): sessions wait for it. Nothing
 * in a batch is durable before state_commit returns 0; state_commit rolls
 * back on failure. Files renamed inside a batch must be found again after a
 * crash that loses it (the roles' start-up recovery does).
 */
int state_begin(struct state *);
int state_commit(struct state *);
void state_rollback(struct state *);

/*
 * The audit outbox: an audit record committed in the same transaction as
 * the state change it describes (a session's "received" row), so one fsync
 * makes both durable; spool/outbox.c appends outbox records to the trail in
 * order and then deletes them. fields is a JSON object (text), copied.
 * state_outbox_read calls cb for up to max records in id order until cb
 * returns -1, sets *last to the id of the last one cb accepted, and returns
 * how many it accepted (or -1). 0 or -1 otherwise.
 */
int state_outbox_add(struct state *, const char *event, const char *fields);
int state_outbox_read(struct state *, int max,
    int (*cb)(void *arg, int64_t id, const char *event, const char *fields),
    void *arg, int64_t *last);
int state_outbox_delete(struct state *, int64_t upto);

/*
 * WAL checkpoints: by default a commit that grows the WAL past 1000 pages
 * copies it back into the database (SQLite's autocheckpoint). A session turns
 * that off (on = 0) so a partner's CLOSE never waits for it: the intake and
 * the uploader commit all the time and checkpoint for everyone.
 */
void state_autocheckpoint(struct state *, int on);

/* Inserts r (state "received"); sets r->id. 0 or -1. */
int state_insert(struct state *, struct file_rec *r);
/*
 * Takes the oldest file in state `from` whose next attempt is due (<= now_ms),
 * moves it to `to` and fills *r. Returns 1, 0 when there is none, -1 on error.
 */
int state_claim(struct state *, enum file_state from, enum file_state to,
    int64_t now_ms, struct file_rec *r);
/*
 * Writes r's mutable fields (state, object_key, attempts, next_attempt_ms,
 * last_error, bucket, etag, version_id, stored_ms, meta) if the row is still in
 * state `from`. 0, or -1 (also when it was not in `from`).
 */
int state_update(struct state *, const struct file_rec *r,
    enum file_state from);
/* Moves every file in `from` to `to` (crash recovery). Returns the count or -1. */
int state_reset(struct state *, enum file_state from, enum file_state to);
/* Reads one file by id: 1 found, 0 not, -1 error. */
int state_get(struct state *, int64_t id, struct file_rec *r);
/* 1 if a file was received at this landing inode (and the visibility
 * janitor has not let go of it), 0 if not, -1 on error. */
int state_landing_known(struct state *, int64_t dev, int64_t ino);
/* 1 if any file is in `state`, 0 if none, -1 on error. A read: it takes no
 * write lock, so a role polling an empty queue never delays a session. */
int state_any(struct state *, enum file_state state);
/* 1 if a file with this fid exists, 0 if not, -1 on error. */
int state_fid_known(struct state *, const char *fid);

/*
 * Moves file id from `from` to `to` (next attempt due now; last_error set when
 * not NULL). 1 moved, 0 when it is not in `from`, -1 on error.
 */
int state_move(struct state *, int64_t id, enum file_state from,
    enum file_state to, const char *last_error);

/*
 * Intake (issue 4). state_list: every file in `state` (of `partner`, or all
 * when NULL), oldest first, into a malloc'd array the caller frees; at most
 * max rows. 0 or -1. state_set_path: the partner path of file id while it is
 * in `from` (a temp name renamed to its final name); 1, 0 not in `from`, -1.
 * state_find_dup: the newest other file of partner with sha256 received at or
 * after since_ms that was accepted (accepted, uploading, stored, held,
 * removed, archived); 1 found (into *r), 0 none, -1 error.
 */
int state_list(struct state *, enum file_state state, const char *partner,
    size_t max, struct file_rec **out, size_t *n);
int state_set_path(struct state *, int64_t id, enum file_state from,
    const char *path);
int state_find_dup(struct state *, const char *partner, const char *sha256,
    int64_t since_ms, int64_t not_id, struct file_rec *r);

/*
 * Visibility (issue 3, spool/janitor.c). state_list_visible: files of
 * partner stored (stored_ms > 0) at or before stored_before_ms whose landing
 * name is still recorded (landing_ino != 0), oldest stored first, at most
 * max, into a malloc'd array the caller frees; 0 or -1. state_clear_landing:
 * forgets file id's landing inode once its name left the partner's view
 * (landing_dev = landing_ino = 0); 0 or -1.
 */
int state_list_visible(struct state *, const char *partner,
    int64_t stored_before_ms, size_t max, struct file_rec **out, size_t *n);
int state_clear_landing(struct state *, int64_t id);

/*
 * The uploader's reads (uploader/uploader.c, uploader/queue.c).
 * state_foreach: calls cb with each file whose state is in the set states
 * (FS_BIT(FS_HELD) | FS_BIT(...); 0: every file, whatever its state, even
 * one this version does not know), in id order, until cb returns -1. r is
 * the callback's for the call only. cb may call other state_* reads, no
 * writes. Returns how many rows cb accepted (did not return -1 for), or -1
 * on an error (logged).
 * state_list_stored_before: up to max files in `state` whose stored_ms is
 * before before_ms, in no particular order, into a malloc'd array the
 * caller frees; 0 or -1.
 * state_due: the earliest next_attempt_ms of a file in `state`;
 * state_qcopy_due: of a pending quarantine copy. INT64_MAX when there is
 * none, or on an error (logged). Both are reads (no write lock) of a
 * statement kept prepared on the connection.
 */
int state_foreach(struct state *, unsigned states,
    int (*cb)(void *arg, const struct file_rec *r), void *arg);
int state_list_stored_before(struct state *, enum file_state state,
    int64_t before_ms, size_t max, struct file_rec **out, size_t *n);
int64_t state_due(struct state *, enum file_state state);
int64_t state_qcopy_due(struct state *);

/*
 * The uploader's progress (tables uploads and parts): per file, the object
 * it became (key, and the checksum the store reports for it) or, while a
 * multipart upload runs, the upload's id and part size and the parts the
 * store confirmed, so a restart resumes instead of starting over. Each
 * call is one transaction on the caller's connection (inside a batch it
 * joins the batch).
 * state_upload_load: the multipart upload in progress for file_id into *u
 * (u->parts malloc'd: state_upload_free it whatever this returns); 1 found,
 * 0 none, -1 error.
 * state_upload_begin: file_id's new multipart upload (forgets the parts of
 * any earlier one); 0 or -1.
 * state_upload_part: records one part the store confirmed (replacing one
 * with the same number); 0 or -1.
 * state_upload_forget: the upload in progress is gone (completed, aborted
 * or unknown to the store): its id and parts are forgotten; 0 or -1.
 * state_upload_stored: file_id is stored at key; checksum is what the store
 * reports for it, nparts 0 for a single PUT; forgets any upload in
 * progress; 0 or -1.
 * state_upload_known: 1 if upload_id is an upload of ours in progress, 0
 * not, -1 error.
 * state_upload_checksum: the checksum recorded for stored file_id into
 * checksum (len bytes); 1 filled, 0 none recorded (checksum ""), -1 error.
 */
struct state_part {
	int	 number;		/* 1.. */
	char	 etag[128];
	char	 checksum[64];		/* base64 SHA-256 of the part */
};
struct state_upload {
	char			 upload_id[1024];
	char			 key[1100];
	int64_t			 part_size;
	struct state_part	*parts;		/* malloc'd, by number */
	size_t			 nparts;
};
int state_upload_load(struct state *, int64_t file_id, struct state_upload *u);
void state_upload_free(struct state_upload *u);
int state_upload_begin(struct state *, int64_t file_id, const char *key,
    const char *upload_id, int64_t part_size, int nparts);
int state_upload_part(struct state *, int64_t file_id,
    const struct state_part *p);
int state_upload_forget(struct state *, int64_t file_id);
int state_upload_stored(struct state *, int64_t file_id, const char *key,
    const char *checksum, int nparts);
int state_upload_known(struct state *, const char *upload_id);
int state_upload_checksum(struct state *, int64_t file_id, char *checksum,
    size_t len);

/*
 * Quarantine copies (issue 4, store.quarantine_prefix): column qcopy, 0 none,
 * 1 pending, 2 copying, 3 done; the copy's retries use attempts and
 * next_attempt_ms (a rejected file has no other use for them) and
 * last_error keeps the rejection reason.
 * state_reject: state_update(r, from) (r->state "rejected") and, when copy,
 * the copy marked pending, in one transaction; 0 or -1.
 * state_qcopy_claim: takes the pending copy due first (next_attempt_ms <=
 * now_ms), marks it copying, fills *r; 1, 0 none, -1 error.
 * state_qcopy_finish: copying -> done (done != 0), or back to pending with
 * r's attempts and next_attempt_ms; 0 or -1.
 * state_qcopy_reset: copying -> pending (crash recovery); count or -1.
 */
int state_reject(struct state *, const struct file_rec *r,
    enum file_state from, int copy);
int state_qcopy_claim(struct state *, int64_t now_ms, struct file_rec *r);
int state_qcopy_finish(struct state *, const struct file_rec *r, int done);
int state_qcopy_reset(struct state *);

/*
 * Delivery receipts (issue 11, spool/delivery.h; table delivery_receipts).
 * state_receipt_add: file_id gets a receipt once its verdict is final
 * (rule, signer, signed_at: what the intake judged by, "" when none); call
 * it in the verdict's transaction. 0 or -1.
 * state_receipts_due: up to max files with a receipt not yet written whose
 * state is final (stored, removed, archived or rejected), oldest first,
 * into a malloc'd array the caller frees. A read (no write lock). 0 or -1.
 * state_receipt_written: file_id's receipt is on disk (when_ms). 0 or -1.
 */
struct receipt_due {
	struct file_rec	 r;
	char		 rule[128];
	char		 signer[41];
	char		 signed_at[32];
};
int state_receipt_add(struct state *, int64_t file_id, const char *rule,
    const char *signer, const char *signed_at);
int state_receipts_due(struct state *, size_t max, struct receipt_due **out,
    size_t *n);
int state_receipt_written(struct state *, int64_t file_id, int64_t when_ms);

/*
 * The metrics role's reads (metrics/metrics.h). state_open_ro opens
 * sluice.db read-only (no schema, no migration: a writer made it); NULL on
 * error (logged). state_count_states: how many files are in each state
 * (counts[FS_...]; unknown names are skipped). state_oldest_unstored: the
 * received_ms of the oldest file accepted but not yet stored (accepted,
 * uploading or held), 0 when there is none. 0 or -1 (logged).
 */
struct state *state_open_ro(const char *state_dir);
int state_count_states(struct state *, int64_t counts[FS_NSTATES]);
int state_oldest_unstored(struct state *, int64_t *received_ms);

/*
 * Sealed audit segments shipped to the store (uploader/auditship.c), by
 * segment file name. state_audit_shipped: 1 recorded, 0 not, -1 error.
 * state_audit_shipped_add: records one (sha256 hex of the local file, the
 * object key, the store's version id and ETag, when, in wall-clock ms);
 * the strings are copied. 0 or -1 (logged).
 */
int state_audit_shipped(struct state *, const char *name);
int state_audit_shipped_add(struct state *, const char *name,
    const char *sha256, const char *key, const char *version_id,
    const char *etag, int64_t shipped_ms);

/*
 * Copies of delivery receipts for the store (issue 11, table
 * receipt_copies; uploader/receiptship.h). The intake adds one (its bytes,
 * the object key, their SHA-256 hex) in the transaction that marks the
 * receipt written; a copy already stored is never replaced.
 * state_rcopy_next: the pending copy due first (next_ms <= now) into *c
 * (body malloc'd: state_rcopy_free); 1, 0 none, -1 error.
 * state_rcopy_done: stored (the store's version id). state_rcopy_retry:
 * still pending, next try at next_ms. 0 or -1 (logged).
 * state_rcopy_status: 0 pending, 1 stored, -2 no row, -1 error.
 */
struct rcopy {
	int64_t		 file_id;
	char		 fid[33];
	char		 partner[65];
	char		 key[1100];
	char		 sha256[65];
	char		*body;		/* the receipt's bytes (NUL after len) */
	size_t		 len;
	int		 attempts;
};
int state_rcopy_add(struct state *, const struct rcopy *);
int state_rcopy_next(struct state *, int64_t now, struct rcopy *);
void state_rcopy_free(struct rcopy *);
int state_rcopy_done(struct state *, int64_t file_id, const char *version_id,
    int64_t when_ms);
int state_rcopy_retry(struct state *, int64_t file_id, int attempts,
    int64_t next_ms);
int state_rcopy_status(struct state *, int64_t file_id);

/*
 * Notifications to downstream systems (issue 12, notify/events.h; table
 * notify_outbox): one row per (file, verdict, target).
 * state_notify_add: inserts n (status pending; a second row for the same
 * fid, event, target and target_key is ignored); call it in the verdict's
 * transaction. 0 or -1.
 * state_notify_due: up to max pending rows whose next_ms <= now, earliest
 * first, into a malloc'd array (each body malloc'd): state_notify_free it
 * whatever this returns. A read. 0 or -1.
 * state_notify_update: writes n's attempts, next_ms, last_error and status
 * (NOTIFY_PENDING, NOTIFY_SENT or NOTIFY_GAVE_UP; done_ms when final) if
 * the row is still pending. 0 or -1.
 * state_notify_count: how many rows have status. 0 or -1.
 */
#define NOTIFY_PENDING	0
#define NOTIFY_SENT	1
#define NOTIFY_GAVE_UP	2
struct notify_row {
	int64_t	 id;
	int64_t	 file_id;
	char	 fid[33];
	char	 partner[65];
	char	 event[32];
	int	 target;		/* index in cfg->notify.targets at insert */
	char	 target_key[2200];	/* the url, or the command's argv[0] */
	char	*body;			/* the event's JSON (malloc'd when read) */
	int64_t	 created_ms;
	int	 attempts;
	int64_t	 next_ms;
	char	 last_error[512];
};
int state_notify_add(struct state *, const struct notify_row *n);
int state_notify_due(struct state *, int64_t now, size_t max,
    struct notify_row **out, size_t *cnt);
void state_notify_free(struct notify_row *rows, size_t n);
int state_notify_update(struct state *, const struct notify_row *n,
    int status, int64_t done_ms);
int state_notify_count(struct state *, int status, int64_t *count);

/*
 * Creates directory path (its parent must exist) with mode if missing, and
 * opens it without following a symbolic link: it must be a directory owned
 * by this process's effective uid; group and other bits beyond mode are
 * cleared. Returns its fd (O_RDONLY | O_DIRECTORY | O_CLOEXEC), or -1
 * (logged).
 */
int spool_mkdir(const char *path, mode_t mode);

#endif
