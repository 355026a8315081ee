/*
 * state.h - the state database (SQLite, WAL) holding every file's state and
 * the upload queue, and the spool layout beneath state_dir:
 *
 *   landing/<partner>/   what the partner sees over SFTP (its root "/")
 *   spool/incoming/<fid> hard link made at CLOSE: received, not yet judged
 *   spool/ready/<fid>    accepted by intake, waiting for the uploader
 *   quarantine/<partner>/ rejected files with a .reason file
 *   sluice.db            this database
 *
 * A file's life: received -> [waiting ->] accepted -> uploading -> stored, or
 * rejected, or held (needs an operator); a sidecar the intake used without
 * shipping it ends "consumed". Every transition is one transaction, guarded by
 * the state it leaves, so two processes never move one file twice.
 *
 * Ownership: struct state is owned by the caller of state_open; struct
 * file_rec is a plain value the caller owns.
 */
#ifndef SLUICE_STATE_H
#define SLUICE_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FS_RECEIVED	"received"
#define FS_ACCEPTED	"accepted"
#define FS_UPLOADING	"uploading"
#define FS_STORED	"stored"
#define FS_HELD		"held"
#define FS_REJECTED	"rejected"
#define FS_REMOVED	"removed"	/* stored; spool copy deleted (retention delete) */
#define FS_ARCHIVED	"archived"	/* stored; spool copy kept in state_dir/archive/<fid> */
#define FS_WAITING	"waiting"	/* intake: complete-but-not-yet (rename, marker, signature...) */
#define FS_CONSUMED	"consumed"	/* intake: a sidecar used and not shipped (state_dir/sidecars/) */

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
	char	 state[16];
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
int state_claim(struct state *, const char *from, const char *to,
    int64_t now_ms, struct file_rec *r);
/*
 * Writes r's mutable fields (state, object_key, attempts, next_attempt_ms,
 * last_error, bucket, etag, version_id, stored_ms, meta) if the row is still in
 * state `from`. 0, or -1 (also when it was not in `from`).
 */
int state_update(struct state *, const struct file_rec *r, const char *from);
/* Moves every file in `from` to `to` (crash recovery). Returns the count or -1. */
int state_reset(struct state *, const char *from, const char *to);
/* Reads one file by id: 1 found, 0 not, -1 error. */
int state_get(struct state *, int64_t id, struct file_rec *r);
/* 1 if a file was received at this landing inode (and the visibility
 * janitor has not let go of it), 0 if not, -1 on error. */
int state_landing_known(struct state *, int64_t dev, int64_t ino);
/* 1 if any file is in `state`, 0 if none, -1 on error. A read: it takes no
 * write lock, so a role polling an empty queue never delays a session. */
int state_any(struct state *, const char *state);
/* 1 if a file with this fid exists, 0 if not, -1 on error. */
int state_fid_known(struct state *, const char *fid);

/* The open SQLite handle (borrowed), for modules keeping their own tables
 * (uploader/mpstate.c: uploads, parts). */
struct sqlite3;
struct sqlite3 *state_db(struct state *);
/*
 * Moves file id from `from` to `to` (next attempt due now; last_error set when
 * not NULL). 1 moved, 0 when it is not in `from`, -1 on error.
 */
int state_move(struct state *, int64_t id, const char *from, const char *to,
    const char *last_error);

/*
 * Intake (issue 4). state_list: every file in `state` (of `partner`, or all
 * when NULL), oldest first, into a malloc'd array the caller frees; at most
 * max rows. 0 or -1. state_set_path: the partner path of file id while it is
 * in `from` (a temp name renamed to its final name); 1, 0 not in `from`, -1.
 * state_find_dup: the newest other file of partner with sha256 received at or
 * after since_ms that was accepted (accepted, uploading, stored, held,
 * removed, archived); 1 found (into *r), 0 none, -1 error.
 */
int state_list(struct state *, const char *state, const char *partner,
    size_t max, struct file_rec **out, size_t *n);
int state_set_path(struct state *, int64_t id, const char *from,
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
int state_reject(struct state *, const struct file_rec *r, const char *from,
    int copy);
int state_qcopy_claim(struct state *, int64_t now_ms, struct file_rec *r);
int state_qcopy_finish(struct state *, const struct file_rec *r, int done);
int state_qcopy_reset(struct state *);

/*
 * Names that come from a session (a receipt, a database row) are checked
 * before any path is built from them; a session may be compromised.
 * spool_fid_ok: exactly what random_id() makes, 32 lower-case hex digits.
 * spool_partner_ok: a partner name as the config allows one (1 to 64 of
 * a-z 0-9 . _ -, starting with a-z or 0-9): never "", ".", "..", "/", a
 * control character, nor a name starting with '_' (quarantine/_forged,
 * quarantine/_unrecorded are the spool's own).
 * spool_relpath_ok: a partner path as the SFTP engine stores it: relative,
 * already normalised (no "", ".", ".." component, no leading or trailing
 * '/', no "//"), no control character or backslash, valid UTF-8,
 * components of at most 255 bytes, under 4096 bytes in all.
 * Each returns 1 if the name is good, 0 if not.
 */
int spool_fid_ok(const char *fid);
int spool_partner_ok(const char *name);
int spool_relpath_ok(const char *path);

/* Directory helpers: state_dir/<sub>[/<name>] into out. name, when not
 * NULL, must be a partner name (spool_partner_ok); sub is the caller's
 * constant. 0, or -1 on truncation or a bad name (errno EINVAL). */
int spool_path(const char *state_dir, const char *sub, const char *name,
    char *out, size_t outlen);
/*
 * Creates directory path (its parent must exist) with mode if missing, and
 * opens it without following a symbolic link: it must be a directory owned
 * by this process's effective uid; group and other bits beyond mode are
 * cleared. Returns its fd (O_RDONLY | O_DIRECTORY | O_CLOEXEC), or -1
 * (logged).
 */
int spool_mkdir(const char *path, mode_t mode);
/*
 * Writes len bytes of data as dirfd/name, durably and atomically: a temp
 * file created with O_EXCL | O_NOFOLLOW under an unpredictable name in the
 * same directory, fsync, renameat over name, fsync of the directory. mode
 * is set with fchmod. 0 or -1 (errno).
 */
int spool_write_at(int dirfd, const char *name, const void *data, size_t len,
    mode_t mode);
/* Creates landing/, spool/incoming, spool/ready, quarantine/ (0750). 0 or -1. */
int spool_init(const char *state_dir);

#endif
