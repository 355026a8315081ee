#include "spool/state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/log.h"
#include "common/util.h"

/*
 * Statements are kept prepared, one slot per call site's SQL text (a
 * string literal, so its address names it): parsing the SQL again for every
 * file cost more instructions than running it (issue 13's profile). A slot
 * in use (a caller stepping it calls another function with the same SQL)
 * makes prep() hand out a fresh statement, finalized on release.
 */
#define STATE_STMTS	64

struct stmt_slot {
	const char	*sql;
	sqlite3_stmt	*s;
	int		 busy;
};

struct state {
	sqlite3		*db;
	int		 depth;		/* open transactions: state_begin and inner */
	sqlite3_stmt	*due;		/* state_due, kept prepared */
	sqlite3_stmt	*qdue;		/* state_qcopy_due, kept prepared */
	struct stmt_slot stmts[STATE_STMTS];
	char		 path[PATH_MAX];
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS files ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " fid TEXT NOT NULL UNIQUE,"
    " partner TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " remote TEXT NOT NULL DEFAULT '',"
    " session TEXT NOT NULL DEFAULT '',"
    " size INTEGER NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " received_ms INTEGER NOT NULL,"
    " state TEXT NOT NULL,"
    " object_key TEXT NOT NULL DEFAULT '',"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_ms INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " bucket TEXT NOT NULL DEFAULT '',"
    " etag TEXT NOT NULL DEFAULT '',"
    " version_id TEXT NOT NULL DEFAULT '',"
    " stored_ms INTEGER NOT NULL DEFAULT 0,"
    " updated_ms INTEGER NOT NULL,"
    " meta TEXT NOT NULL DEFAULT '{}',"
    " landing_dev INTEGER NOT NULL DEFAULT 0,"
    " landing_ino INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS files_queue ON files(state, next_attempt_ms, id);"
    "CREATE INDEX IF NOT EXISTS files_dup ON files(partner, sha256);"	/* intake */
    "CREATE INDEX IF NOT EXISTS files_view ON files(partner, stored_ms) "
    " WHERE landing_ino != 0 AND stored_ms > 0;"	/* spool/janitor.c */
    /* The uploader's (state_upload_*): the object each file became (or
     * its multipart upload in progress) and the parts S3 has confirmed. */
    "CREATE TABLE IF NOT EXISTS uploads ("
    " file_id INTEGER PRIMARY KEY,"
    " object_key TEXT NOT NULL,"
    " upload_id TEXT NOT NULL DEFAULT '',"
    " part_size INTEGER NOT NULL DEFAULT 0,"
    " nparts INTEGER NOT NULL DEFAULT 0,"
    " checksum TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS parts ("
    " file_id INTEGER NOT NULL,"
    " part INTEGER NOT NULL,"
    " etag TEXT NOT NULL,"
    " checksum TEXT NOT NULL,"
    " PRIMARY KEY (file_id, part));"
    /* The intake's delivery receipts (state_receipt_*, spool/delivery.h):
     * one row per file given a final verdict for a partner with receipts
     * on; written_ms 0 until its receipt is on disk. A table of its own
     * (IF NOT EXISTS on every open), so it needs no migration. */
    "CREATE TABLE IF NOT EXISTS delivery_receipts ("
    " file_id INTEGER PRIMARY KEY,"
    " rule TEXT NOT NULL DEFAULT '',"
    " signer TEXT NOT NULL DEFAULT '',"
    " signed_at TEXT NOT NULL DEFAULT '',"
    " written_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS delivery_receipts_due"
    " ON delivery_receipts(file_id) WHERE written_ms = 0;"
    /* Copies of delivery receipts for the store (state_rcopy_*,
     * uploader/receiptship.h): the intake inserts one, with its bytes, in
     * the transaction that marks the receipt written; the uploader puts
     * it beside the object. status 0 pending, 1 stored, 2 held. */
    "CREATE TABLE IF NOT EXISTS receipt_copies ("
    " file_id INTEGER PRIMARY KEY,"
    " fid TEXT NOT NULL,"
    " partner TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " body BLOB NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_ms INTEGER NOT NULL DEFAULT 0,"
    " version_id TEXT NOT NULL DEFAULT '',"
    " stored_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS receipt_copies_due"
    " ON receipt_copies(next_ms) WHERE status = 0;"
    /* The uploader's sealed audit segments shipped to the store
     * (state_audit_shipped_*, uploader/auditship.c); a table of its own. */
    "CREATE TABLE IF NOT EXISTS audit_shipped ("
    " name TEXT PRIMARY KEY,"
    " sha256 TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " version_id TEXT NOT NULL DEFAULT '',"
    " etag TEXT NOT NULL DEFAULT '',"
    " shipped_at INTEGER NOT NULL);"
    /* Notifications to send (state_notify_*, notify/events.h): one row per
     * (file, verdict, target), inserted in the verdict's transaction;
     * status 0 pending, 1 sent, 2 gave up. A table of its own. */
    "CREATE TABLE IF NOT EXISTS notify_outbox ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " file_id INTEGER NOT NULL,"
    " fid TEXT NOT NULL,"
    " partner TEXT NOT NULL,"
    " event TEXT NOT NULL,"
    " target INTEGER NOT NULL,"
    " target_key TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_ms INTEGER NOT NULL DEFAULT 0,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " done_ms INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE (fid, event, target, target_key));"
    "CREATE INDEX IF NOT EXISTS notify_outbox_due"
    " ON notify_outbox(next_ms, id) WHERE status = 0;";

/*
 * Schema changes after the first release: append one statement per
 * version; state_open applies those above PRAGMA user_version in order,
 * each in its own transaction. Never edit an entry once released.
 */
static const char *migrations[] = {
	NULL,	/* version 1: the schema above */
	/* version 2 (issue 4): copies of rejected files to
	 * store.quarantine_prefix; see state_reject() */
	"ALTER TABLE files ADD COLUMN qcopy INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX IF NOT EXISTS files_qcopy ON files(next_attempt_ms, id)"
	" WHERE qcopy = 1;",
	/* version 3: audit records committed with a state change, appended
	 * to the trail later by spool/outbox.c; see state_outbox_add() */
	"CREATE TABLE IF NOT EXISTS audit_outbox ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" event TEXT NOT NULL,"
	" fields TEXT NOT NULL);",
};

#define COLS "id, fid, partner, path, remote, session, size, sha256, " \
    "received_ms, state, object_key, attempts, next_attempt_ms, last_error, " \
    "bucket, etag, version_id, stored_ms, meta, landing_dev, landing_ino"

static void
col_text(sqlite3_stmt *s, int i, char *dst, size_t len)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	xstrlcpy(dst, t ? (const char *)t : "", len);
}

/* A name the spool joins into paths: a value that does not fit, or holds
 * a NUL, reads as "" (which no name check passes) rather than cut short
 * into some other valid name. */
static void
col_name(sqlite3_stmt *s, int i, char *dst, size_t len)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	int n = sqlite3_column_bytes(s, i);

	if (t == NULL || n < 0 || (size_t)n >= len ||
	    strlen((const char *)t) != (size_t)n)
		dst[0] = '\0';
	else
		xstrlcpy(dst, (const char *)t, len);
}

/* 1 if a and b are states a row can be in; else logged, 0. */
static int
states_ok(const char *what, enum file_state a, enum file_state b)
{
	if (a > FS_NONE && a < FS_NSTATES && b > FS_NONE && b < FS_NSTATES)
		return 1;
	log_warnx("state: %s: no such file state (%d, %d)", what, (int)a,
	    (int)b);
	return 0;
}

static void
bind_state(sqlite3_stmt *s, int i, enum file_state fs)
{
	sqlite3_bind_text(s, i, file_state_name(fs), -1, SQLITE_STATIC);
}

static void
row_to_rec(sqlite3_stmt *s, struct file_rec *r)
{
	char state[16];

	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(s, 0);
	col_name(s, 1, r->fid, sizeof(r->fid));
	col_name(s, 2, r->partner, sizeof(r->partner));
	col_name(s, 3, r->path, sizeof(r->path));
	col_text(s, 4, r->remote, sizeof(r->remote));
	col_text(s, 5, r->session, sizeof(r->session));
	r->size = sqlite3_column_int64(s, 6);
	col_name(s, 7, r->sha256, sizeof(r->sha256));
	r->received_ms = sqlite3_column_int64(s, 8);
	col_text(s, 9, state, sizeof(state));
	(void)file_state_parse(state, &r->state);	/* unknown: FS_NONE */
	col_text(s, 10, r->object_key, sizeof(r->object_key));
	r->attempts = sqlite3_column_int(s, 11);
	r->next_attempt_ms = sqlite3_column_int64(s, 12);
	col_text(s, 13, r->last_error, sizeof(r->last_error));
	col_text(s, 14, r->bucket, sizeof(r->bucket));
	col_text(s, 15, r->etag, sizeof(r->etag));
	col_text(s, 16, r->version_id, sizeof(r->version_id));
	r->stored_ms = sqlite3_column_int64(s, 17);
	col_text(s, 18, r->meta, sizeof(r->meta));
	r->landing_dev = sqlite3_column_int64(s, 19);
	r->landing_ino = sqlite3_column_int64(s, 20);
}

static int
exec(struct state *st, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("state: %s: %s", st->path, err ? err : "error");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

/*
 * Transactions nest: the outermost is BEGIN IMMEDIATE ... COMMIT, an inner
 * one a SAVEPOINT, so a function that needs its own transaction can run
 * inside a caller's batch (state_begin) and commits with it.
 */
static int
txn_begin(struct state *st)
{
	if (exec(st, st->depth == 0 ? "BEGIN IMMEDIATE;" : "SAVEPOINT s;") == -1)
		return -1;
	st->depth++;
	return 0;
}

static int
txn_commit(struct state *st)
{
	if (st->depth <= 0)
		return -1;
	if (exec(st, st->depth == 1 ? "COMMIT;" : "RELEASE s;") == -1)
		return -1;
	st->depth--;
	return 0;
}

static void
txn_rollback(struct state *st)
{
	if (st->depth <= 0)
		return;
	if (st->depth == 1)
		exec(st, "ROLLBACK;");
	else {
		exec(st, "ROLLBACK TO s;");
		exec(st, "RELEASE s;");
	}
	st->depth--;
}

void
state_autocheckpoint(struct state *st, int on)
{
	sqlite3_wal_autocheckpoint(st->db, on ? 1000 : 0);
}

int
state_begin(struct state *st)
{
	return txn_begin(st);
}

int
state_commit(struct state *st)
{
	if (txn_commit(st) == -1) {
		txn_rollback(st);
		return -1;
	}
	return 0;
}

void
state_rollback(struct state *st)
{
	txn_rollback(st);
}

/*
 * Waiting for another process's write transaction. SQLite's own
 * busy_timeout sleeps 1, 2, 5, 10 ... 100 ms, far longer than our
 * transactions last (well under a millisecond): a session answering a
 * partner's CLOSE would wait on the intake's or uploader's sleep, not on
 * its work. Poll every 100 us at first, then every millisecond, for 30 s.
 */
#define STATE_BUSY_MS	30000

static int
state_busy(void *arg, int count)
{
	struct timespec ts = { 0, count < 50 ? 100000L : 1000000L };

	(void)arg;
	if (count >= 50 + STATE_BUSY_MS - 5)
		return 0;
	nanosleep(&ts, NULL);
	return 1;
}

static int
migrate(struct state *st)
{
	sqlite3_stmt *s = NULL;
	char sql[64];
	int version = 0, fresh, i, n = (int)(sizeof(migrations) / sizeof(migrations[0]));

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) !=
	    SQLITE_OK || sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		return -1;
	}
	version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	fresh = version == 0;
	if (version == 0)
		version = 1;	/* a new database has the current schema */
	for (i = version; i < n; i++) {
		xsnprintf(sql, sizeof(sql), "PRAGMA user_version = %d;", i + 1);
		if (exec(st, "BEGIN IMMEDIATE;") == -1 ||
		    exec(st, migrations[i]) == -1 || exec(st, sql) == -1) {
			exec(st, "ROLLBACK;");
			return -1;
		}
		if (exec(st, "COMMIT;") == -1)
			return -1;
	}
	if (version == n && !fresh)
		return 0;	/* no write: every session opens the database */
	xsnprintf(sql, sizeof(sql), "PRAGMA user_version = %d;", n);
	return exec(st, sql);
}

struct state *
state_open(const char *state_dir)
{
	struct state *st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	if (spool_dir_path(state_dir, SPOOL_DB, NULL, st->path,
	    sizeof(st->path)) == -1)
		goto fail;
	if (sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		log_warnx("state: cannot open %s: %s", st->path,
		    st->db ? sqlite3_errmsg(st->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_handler(st->db, state_busy, st);
	if (exec(st, "PRAGMA journal_mode=WAL;") == -1 ||
	    exec(st, "PRAGMA synchronous=FULL;") == -1 ||
	    exec(st, "PRAGMA foreign_keys=ON;") == -1 ||
	    exec(st, schema) == -1 || migrate(st) == -1)
		goto fail;
	return st;
fail:
	state_close(st);
	return NULL;
}

void
state_close(struct state *st)
{
	size_t i;

	if (st == NULL)
		return;
	sqlite3_finalize(st->due);
	sqlite3_finalize(st->qdue);
	for (i = 0; i < STATE_STMTS; i++)
		sqlite3_finalize(st->stmts[i].s);
	sqlite3_close(st->db);
	free(st);
}

static sqlite3_stmt *
prep_new(struct state *st, const char *sql, unsigned flags)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v3(st->db, sql, -1, flags, &s, NULL) != SQLITE_OK) {
		log_warnx("state: %s", sqlite3_errmsg(st->db));
		return NULL;
	}
	return s;
}

/* sql's kept statement, reset and unbound; give it back with release(). */
static sqlite3_stmt *
prep(struct state *st, const char *sql)
{
	struct stmt_slot *free_slot = NULL, *k;
	size_t i;

	for (i = 0; i < STATE_STMTS; i++) {
		k = &st->stmts[i];
		if (k->sql == sql) {
			if (k->busy)
				return prep_new(st, sql, 0);
			k->busy = 1;
			return k->s;
		}
		if (k->sql == NULL && free_slot == NULL)
			free_slot = k;
	}
	if (free_slot == NULL)
		return prep_new(st, sql, 0);
	if ((free_slot->s = prep_new(st, sql, SQLITE_PREPARE_PERSISTENT)) ==
	    NULL)
		return NULL;
	free_slot->sql = sql;
	free_slot->busy = 1;
	return free_slot->s;
}

/* Done with s from prep(): reset (ending its read), unbound (its bindings
 * point into the caller's buffers) and kept; one not kept is finalized. */
static void
release(struct state *st, sqlite3_stmt *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < STATE_STMTS; i++)
		if (st->stmts[i].s == s) {
			sqlite3_reset(s);
			sqlite3_clear_bindings(s);
			st->stmts[i].busy = 0;
			return;
		}
	sqlite3_finalize(s);
}

int
state_insert(struct state *st, struct file_rec *r)
{
	sqlite3_stmt *s;
	int rc = -1;

	s = prep(st, "INSERT INTO files (fid, partner, path, remote, session, "
	    "size, sha256, received_ms, state, updated_ms, meta, landing_dev, "
	    "landing_ino) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
	if (s == NULL)
		return -1;
	sqlite3_bind_text(s, 1, r->fid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, r->partner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, r->path, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, r->remote, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, r->session, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, r->size);
	sqlite3_bind_text(s, 7, r->sha256, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 8, r->received_ms);
	bind_state(s, 9, FS_RECEIVED);
	sqlite3_bind_int64(s, 10, now_ms());
	sqlite3_bind_text(s, 11, r->meta[0] ? r->meta : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 12, r->landing_dev);
	sqlite3_bind_int64(s, 13, r->landing_ino);
	if (sqlite3_step(s) != SQLITE_DONE) {
		log_warnx("state: insert %s: %s", r->fid, sqlite3_errmsg(st->db));
		goto fail;
	}
	r->id = sqlite3_last_insert_rowid(st->db);
	r->state = FS_RECEIVED;
	rc = 0;
fail:
	release(st, s);
	return rc;
}

int
state_outbox_add(struct state *st, const char *event, const char *fields)
{
	sqlite3_stmt *s;
	int rc = -1;

	if ((s = prep(st, "INSERT INTO audit_outbox (event, fields) "
	    "VALUES (?, ?)")) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, event, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, fields, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_DONE)
		rc = 0;
	else
		log_warnx("state: audit outbox: %s", sqlite3_errmsg(st->db));
	release(st, s);
	return rc;
}

int
state_outbox_read(struct state *st, int max,
    int (*cb)(void *, int64_t, const char *, const char *), void *arg,
    int64_t *last)
{
	sqlite3_stmt *s;
	int n = 0, step;

	*last = 0;
	if ((s = prep(st, "SELECT id, event, fields FROM audit_outbox "
	    "ORDER BY id LIMIT ?")) == NULL)
		return -1;
	sqlite3_bind_int(s, 1, max);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(s, 0);
		const char *ev = (const char *)sqlite3_column_text(s, 1);
		const char *f = (const char *)sqlite3_column_text(s, 2);

		if (cb(arg, id, ev ? ev : "", f ? f : "{}") == -1)
			break;
		*last = id;
		n++;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		log_warnx("state: audit outbox: %s", sqlite3_errmsg(st->db));
		n = n > 0 ? n : -1;
	}
	release(st, s);
	return n;
}

int
state_outbox_delete(struct state *st, int64_t upto)
{
	sqlite3_stmt *s;
	int rc = -1;

	if ((s = prep(st, "DELETE FROM audit_outbox WHERE id <= ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, upto);
	if (sqlite3_step(s) == SQLITE_DONE)
		rc = 0;
	else
		log_warnx("state: audit outbox: %s", sqlite3_errmsg(st->db));
	release(st, s);
	return rc;
}

int
state_claim(struct state *st, enum file_state from, enum file_state to,
    int64_t now, struct file_rec *r)
{
	sqlite3_stmt *s = NULL, *u = NULL;
	int rc = -1, step;

	if (!states_ok("claim", from, to) || txn_begin(st) == -1)
		return -1;
	s = prep(st, "SELECT " COLS " FROM files WHERE state = ? AND "
	    "next_attempt_ms <= ? ORDER BY next_attempt_ms, id LIMIT 1");
	if (s == NULL)
		goto fail;
	bind_state(s, 1, from);
	sqlite3_bind_int64(s, 2, now);
	step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = 0;
		goto fail;
	}
	if (step != SQLITE_ROW) {
		log_warnx("state: claim: %s", sqlite3_errmsg(st->db));
		goto fail;
	}
	row_to_rec(s, r);
	u = prep(st, "UPDATE files SET state = ?, updated_ms = ? WHERE id = ?");
	if (u == NULL)
		goto fail;
	bind_state(u, 1, to);
	sqlite3_bind_int64(u, 2, now_ms());
	sqlite3_bind_int64(u, 3, r->id);
	if (sqlite3_step(u) != SQLITE_DONE) {
		log_warnx("state: claim: %s", sqlite3_errmsg(st->db));
		goto fail;
	}
	r->state = to;
	rc = 1;
fail:
	release(st, s);
	release(st, u);
	if (rc == 1) {
		if (txn_commit(st) == -1) {
			txn_rollback(st);
			rc = -1;
		}
	} else
		txn_rollback(st);
	return rc;
}

int
state_update(struct state *st, const struct file_rec *r,
    enum file_state from)
{
	sqlite3_stmt *s;
	int rc = -1;

	if (!states_ok("update", r->state, from))
		return -1;
	s = prep(st, "UPDATE files SET state = ?, object_key = ?, attempts = ?, "
	    "next_attempt_ms = ?, last_error = ?, bucket = ?, etag = ?, "
	    "version_id = ?, stored_ms = ?, updated_ms = ?, meta = ? "
	    "WHERE id = ? AND state = ?");
	if (s == NULL)
		return -1;
	bind_state(s, 1, r->state);
	sqlite3_bind_text(s, 2, r->object_key, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, r->attempts);
	sqlite3_bind_int64(s, 4, r->next_attempt_ms);
	sqlite3_bind_text(s, 5, r->last_error, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, r->bucket, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, r->etag, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 8, r->version_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 9, r->stored_ms);
	sqlite3_bind_int64(s, 10, now_ms());
	sqlite3_bind_text(s, 11, r->meta[0] ? r->meta : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 12, r->id);
	bind_state(s, 13, from);
	if (sqlite3_step(s) != SQLITE_DONE) {
		log_warnx("state: update %lld: %s", (long long)r->id,
		    sqlite3_errmsg(st->db));
		goto fail;
	}
	if (sqlite3_changes(st->db) != 1) {
		log_warnx("state: file %lld is no longer %s", (long long)r->id,
		    file_state_name(from));
		goto fail;
	}
	rc = 0;
fail:
	release(st, s);
	return rc;
}

int
state_reset(struct state *st, enum file_state from, enum file_state to)
{
	sqlite3_stmt *s;
	int rc = -1;

	if (!states_ok("reset", from, to) || (s = prep(st, "UPDATE files SET state = ?, updated_ms = ? "
	    "WHERE state = ?")) == NULL)
		return -1;
	bind_state(s, 1, to);
	sqlite3_bind_int64(s, 2, now_ms());
	bind_state(s, 3, from);
	if (sqlite3_step(s) == SQLITE_DONE)
		rc = sqlite3_changes(st->db);
	else
		log_warnx("state: reset: %s", sqlite3_errmsg(st->db));
	release(st, s);
	return rc;
}

int
state_get(struct state *st, int64_t id, struct file_rec *r)
{
	sqlite3_stmt *s;
	int rc = -1, step;

	if ((s = prep(st, "SELECT " COLS " FROM files WHERE id = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		row_to_rec(s, r);
		rc = 1;
	} else if (step == SQLITE_DONE)
		rc = 0;
	release(st, s);
	return rc;
}

/* Steps a bound "SELECT 1 ..." and finalizes it: 1 a row, 0 none, -1 error. */
static int
found(struct state *st, sqlite3_stmt *s)
{
	int step = sqlite3_step(s);

	release(st, s);
	return step == SQLITE_ROW ? 1 : step == SQLITE_DONE ? 0 : -1;
}

int
state_landing_known(struct state *st, int64_t dev, int64_t ino)
{
	sqlite3_stmt *s;

	if ((s = prep(st, "SELECT 1 FROM files WHERE landing_ino = ? AND "
	    "landing_dev = ? LIMIT 1")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, ino);
	sqlite3_bind_int64(s, 2, dev);
	return found(st, s);
}

int
state_fid_known(struct state *st, const char *fid)
{
	sqlite3_stmt *s;

	if ((s = prep(st, "SELECT 1 FROM files WHERE fid = ?")) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, fid, -1, SQLITE_STATIC);
	return found(st, s);
}

int
state_any(struct state *st, enum file_state state)
{
	sqlite3_stmt *s;

	if (!states_ok("any", state, state) || (s = prep(st, "SELECT 1 FROM "
	    "files WHERE state = ? LIMIT 1")) == NULL)
		return -1;
	bind_state(s, 1, state);
	return found(st, s);
}

int
state_move(struct state *st, int64_t id, enum file_state from,
    enum file_state to, const char *last_error)
{
	sqlite3_stmt *s;
	int rc = -1;

	if (!states_ok("move", from, to) || (s = prep(st, "UPDATE files SET state = ?, next_attempt_ms = 0, "
	    "last_error = coalesce(?, last_error), updated_ms = ? "
	    "WHERE id = ? AND state = ?")) == NULL)
		return -1;
	bind_state(s, 1, to);
	if (last_error != NULL)
		sqlite3_bind_text(s, 2, last_error, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 2);
	sqlite3_bind_int64(s, 3, now_ms());
	sqlite3_bind_int64(s, 4, id);
	bind_state(s, 5, from);
	if (sqlite3_step(s) == SQLITE_DONE)
		rc = sqlite3_changes(st->db) == 1;
	else
		log_warnx("state: move %lld: %s", (long long)id,
		    sqlite3_errmsg(st->db));
	release(st, s);
	return rc;
}

/*
 * Steps s (already bound) and collects up to max rows into a new array
 * (*out, freed by the caller), then finalizes s. 0, or -1 with *out NULL
 * and *n 0 on an error, including one met part-way.
 */
static int
collect_rows(struct state *st, sqlite3_stmt *s, size_t max,
    struct file_rec **out, size_t *n)
{
	struct file_rec *v = NULL, *nv;
	size_t cap = 0;
	int step = SQLITE_DONE, rc = -1;

	while (*n < max && (step = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL)
				goto fail;
			v = nv;
		}
		row_to_rec(s, &v[(*n)++]);
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		log_warnx("state: list: %s", sqlite3_errmsg(st->db));
		goto fail;
	}
	rc = 0;
fail:
	release(st, s);
	if (rc == -1) {
		free(v);
		*n = 0;
	} else
		*out = v;
	return rc;
}

int
state_list(struct state *st, enum file_state state, const char *partner,
    size_t max, struct file_rec **out, size_t *n)
{
	sqlite3_stmt *s;

	*out = NULL;
	*n = 0;
	if (!states_ok("list", state, state) || (s = prep(st, "SELECT " COLS " FROM files WHERE state = ? AND "
	    "(? IS NULL OR partner = ?) ORDER BY id")) == NULL)
		return -1;
	bind_state(s, 1, state);
	sqlite3_bind_text(s, 2, partner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, partner, -1, SQLITE_STATIC);
	return collect_rows(st, s, max, out, n);
}

int
state_set_path(struct state *st, int64_t id, enum file_state from,
    const char *path)
{
	sqlite3_stmt *s;
	int rc = -1;

	if (!states_ok("set path", from, from) || (s = prep(st, "UPDATE files SET path = ?, updated_ms = ? "
	    "WHERE id = ? AND state = ?")) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now_ms());
	sqlite3_bind_int64(s, 3, id);
	bind_state(s, 4, from);
	if (sqlite3_step(s) == SQLITE_DONE)
		rc = sqlite3_changes(st->db) == 1;
	else
		log_warnx("state: set path %lld: %s", (long long)id,
		    sqlite3_errmsg(st->db));
	release(st, s);
	return rc;
}

int
state_find_dup(struct state *st, const char *partner, const char *sha256,
    int64_t since_ms, int64_t not_id, struct file_rec *r)
{
	sqlite3_stmt *s;
	int rc = -1, step;

	if ((s = prep(st, "SELECT " COLS " FROM files WHERE partner = ? AND "
	    "sha256 = ? AND received_ms >= ? AND id != ? AND state IN "
	    "(?,?,?,?,?,?) ORDER BY id DESC LIMIT 1")) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, partner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, sha256, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, since_ms);
	sqlite3_bind_int64(s, 4, not_id);
	bind_state(s, 5, FS_ACCEPTED);
	bind_state(s, 6, FS_UPLOADING);
	bind_state(s, 7, FS_STORED);
	bind_state(s, 8, FS_HELD);
	bind_state(s, 9, FS_REMOVED);
	bind_state(s, 10, FS_ARCHIVED);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW) {
		row_to_rec(s, r);
		rc = 1;
	} else if (step == SQLITE_DONE)
		rc = 0;
	release(st, s);
	return rc;
}

int
state_list_visible(struct state *st, const char *partner,
    int64_t stored_before_ms, size_t max, struct file_rec **out, size_t *n)
{
	sqlite3_stmt *s;

	*out = NULL;
	*n = 0;
	if ((s = prep(st, "SELECT " COLS " FROM files WHERE partner = ? AND "
	    "landing_ino != 0 AND stored_ms > 0 AND stored_ms <= ? "
	    "ORDER BY stored_ms, id")) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, partner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, stored_before_ms);
	return collect_rows(st, s, max, out, n);
}

int
state_clear_landing(struct state *st, int64_t id)
{
	sqlite3_stmt *s;
	int rc = -1;

	if ((s = prep(st, "UPDATE files SET landing_dev = 0, landing_ino = 0, "
	    "updated_ms = ? WHERE id = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, now_ms());
	sqlite3_bind_int64(s, 2, id);
	if (sqlite3_step(s) == SQLITE_DONE)
		rc = 0;
	else
		log_warnx("state: clear landing of %lld: %s", (long long)id,
		    sqlite3_errmsg(st->db));
	release(st, s);
	return rc;
}

int
state_reject(struct state *st, const struct file_rec *r,
    enum file_state from, int copy)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	if (txn_begin(st) == -1)
		return -1;
	if (state_update(st, r, from) == -1)
		goto fail;
	if (copy) {
		if ((s = prep(st, "UPDATE files SET qcopy = 1, attempts = 0, "
		    "next_attempt_ms = 0 WHERE id = ?")) == NULL)
			goto fail;
		sqlite3_bind_int64(s, 1, r->id);
		if (sqlite3_step(s) != SQLITE_DONE) {
			log_warnx("state: reject %s: %s", r->fid,
			    sqlite3_errmsg(st->db));
			goto fail;
		}
	}
	rc = 0;
fail:
	release(st, s);
	if (rc == 0 && txn_commit(st) == -1)
		rc = -1;
	if (rc == -1)
		txn_rollback(st);
	return rc;
}

int
state_qcopy_claim(struct state *st, int64_t now, struct file_rec *r)
{
	sqlite3_stmt *s = NULL, *u = NULL;
	int rc = -1, step;

	if (txn_begin(st) == -1)
		return -1;
	if ((s = prep(st, "SELECT " COLS " FROM files WHERE qcopy = 1 AND "
	    "next_attempt_ms <= ? ORDER BY next_attempt_ms, id LIMIT 1")) ==
	    NULL)
		goto fail;
	sqlite3_bind_int64(s, 1, now);
	step = sqlite3_step(s);
	if (step == SQLITE_DONE) {
		rc = 0;
		goto fail;
	}
	if (step != SQLITE_ROW) {
		log_warnx("state: claim a quarantine copy: %s",
		    sqlite3_errmsg(st->db));
		goto fail;
	}
	row_to_rec(s, r);
	if ((u = prep(st, "UPDATE files SET qcopy = 2, updated_ms = ? WHERE "
	    "id = ? AND qcopy = 1")) == NULL)
		goto fail;
	sqlite3_bind_int64(u, 1, now_ms());
	sqlite3_bind_int64(u, 2, r->id);
	if (sqlite3_step(u) != SQLITE_DONE) {
		log_warnx("state: claim a quarantine copy: %s",
		    sqlite3_errmsg(st->db));
		goto fail;
	}
	rc = 1;
fail:
	release(st, s);
	release(st, u);
	if (rc == 1 && txn_commit(st) == -1)
		rc = -1;
	if (rc != 1)
		txn_rollback(st);
	return rc;
}

int
state_qcopy_finish(struct state *st, const struct file_rec *r, int done)
{
	sqlite3_stmt *s;
	int rc = -1;

	if ((s = prep(st, "UPDATE files SET qcopy = ?, attempts = ?, "
	    "next_attempt_ms = ?, updated_ms = ? WHERE id = ? AND "
	    "qcopy = 2")) == NULL)
		return -1;
	sqlite3_bind_int(s, 1, done ? 3 : 1);
	sqlite3_bind_int(s, 2, r->attempts);
	sqlite3_bind_int64(s, 3, r->next_attempt_ms);
	sqlite3_bind_int64(s, 4, now_ms());
	sqlite3_bind_int64(s, 5, r->id);
	if (sqlite3_step(s) == SQLITE_DONE && sqlite3_changes(st->db) == 1)
		rc = 0;
	else
		log_warnx("state: quarantine copy of %s: %s", r->fid,
		    sqlite3_errmsg(st->db));
	release(st, s);
	return rc;
}

int
state_qcopy_reset(struct state *st)
{
	if (exec(st, "UPDATE files SET qcopy = 1 WHERE qcopy = 2;") == -1)
		return -1;
	return sqlite3_changes(st->db);
}

int
state_foreach(struct state *st, unsigned states,
    int (*cb)(void *, const struct file_rec *), void *arg)
{
	sqlite3_stmt *s;
	struct file_rec r;
	int i, n = 0, step;

	if (states == 0)
		s = prep(st, "SELECT " COLS " FROM files ORDER BY id");
	else {
		/* one parameter per state (parameter i is state i): its name
		 * when in the set, else NULL (which IN never matches) */
		_Static_assert(FS_NSTATES == 11, "one ? per state below");
		s = prep(st, "SELECT " COLS " FROM files WHERE state IN "
		    "(?,?,?,?,?,?,?,?,?,?) ORDER BY id");
		for (i = FS_NONE + 1; s != NULL && i < FS_NSTATES; i++)
			if (states & FS_BIT(i))
				bind_state(s, i, (enum file_state)i);
	}
	if (s == NULL)
		return -1;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		row_to_rec(s, &r);
		if (cb(arg, &r) == -1)
			break;
		n++;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		log_warnx("state: list: %s", sqlite3_errmsg(st->db));
		n = -1;
	}
	release(st, s);
	return n;
}

int
state_list_stored_before(struct state *st, enum file_state state,
    int64_t before_ms, size_t max, struct file_rec **out, size_t *n)
{
	sqlite3_stmt *s;

	*out = NULL;
	*n = 0;
	if (!states_ok("list", state, state) || (s = prep(st, "SELECT " COLS
	    " FROM files WHERE state = ? AND stored_ms < ? LIMIT ?")) == NULL)
		return -1;
	bind_state(s, 1, state);
	sqlite3_bind_int64(s, 2, before_ms);
	sqlite3_bind_int64(s, 3, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	return collect_rows(st, s, max, out, n);
}

/* Steps a kept statement whose one column is a time or NULL, and resets it. */
static int64_t
min_of(struct state *st, sqlite3_stmt *s)
{
	int64_t v = INT64_MAX;
	int step;

	if ((step = sqlite3_step(s)) == SQLITE_ROW &&
	    sqlite3_column_type(s, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(s, 0);
	else if (step != SQLITE_ROW && step != SQLITE_DONE)
		log_warnx("state: due: %s", sqlite3_errmsg(st->db));
	sqlite3_reset(s);
	return v;
}

int64_t
state_due(struct state *st, enum file_state state)
{
	if (!states_ok("due", state, state) || (st->due == NULL &&
	    (st->due = prep_new(st, "SELECT min(next_attempt_ms) FROM files "
	    "WHERE state = ?", SQLITE_PREPARE_PERSISTENT)) == NULL))
		return INT64_MAX;
	bind_state(st->due, 1, state);
	return min_of(st, st->due);
}

int64_t
state_qcopy_due(struct state *st)
{
	if (st->qdue == NULL && (st->qdue = prep_new(st, "SELECT "
	    "min(next_attempt_ms) FROM files WHERE qcopy = 1",
	    SQLITE_PREPARE_PERSISTENT)) == NULL)
		return INT64_MAX;
	return min_of(st, st->qdue);
}

/* Steps a bound write statement and finalizes it. 0 or -1 (logged). */
static int
done(struct state *st, sqlite3_stmt *s, const char *what)
{
	int rc = 0;

	if (sqlite3_step(s) != SQLITE_DONE) {
		log_warnx("state: %s: %s", what, sqlite3_errmsg(st->db));
		rc = -1;
	}
	release(st, s);
	return rc;
}

/* Ends a transaction opened with txn_begin: commit when rc is 0. */
static int
txn_end(struct state *st, int rc)
{
	if (rc == 0 && txn_commit(st) == -1)
		rc = -1;
	if (rc == -1)
		txn_rollback(st);
	return rc;
}

int
state_upload_load(struct state *st, int64_t file_id, struct state_upload *u)
{
	sqlite3_stmt *s;
	struct state_part *np;
	int rc = 0, step;

	memset(u, 0, sizeof(*u));
	if ((s = prep(st, "SELECT object_key, upload_id, part_size FROM "
	    "uploads WHERE file_id = ? AND upload_id != ''")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	if ((step = sqlite3_step(s)) == SQLITE_ROW) {
		col_text(s, 0, u->key, sizeof(u->key));
		col_text(s, 1, u->upload_id, sizeof(u->upload_id));
		u->part_size = sqlite3_column_int64(s, 2);
		rc = 1;
	} else if (step != SQLITE_DONE)
		rc = -1;
	release(st, s);
	if (rc != 1)
		return rc;
	if ((s = prep(st, "SELECT part, etag, checksum FROM parts WHERE "
	    "file_id = ? ORDER BY part")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	while (sqlite3_step(s) == SQLITE_ROW) {
		if ((np = reallocarray(u->parts, u->nparts + 1,
		    sizeof(*np))) == NULL) {
			rc = -1;
			break;
		}
		u->parts = np;
		memset(&np[u->nparts], 0, sizeof(*np));
		np[u->nparts].number = sqlite3_column_int(s, 0);
		col_text(s, 1, np[u->nparts].etag, sizeof(np->etag));
		col_text(s, 2, np[u->nparts].checksum, sizeof(np->checksum));
		u->nparts++;
	}
	release(st, s);
	return rc;
}

void
state_upload_free(struct state_upload *u)
{
	free(u->parts);
	u->parts = NULL;
	u->nparts = 0;
}

/* Forgets file_id's parts and, upload_id_too, its upload's id. 0 or -1. */
static int
upload_forget(struct state *st, int64_t file_id, int upload_id_too)
{
	sqlite3_stmt *s;

	if ((s = prep(st, "DELETE FROM parts WHERE file_id = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	if (done(st, s, "parts") != 0)
		return -1;
	if (!upload_id_too)
		return 0;
	if ((s = prep(st, "UPDATE uploads SET upload_id = '' WHERE "
	    "file_id = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	return done(st, s, "uploads");
}

int
state_upload_begin(struct state *st, int64_t file_id, const char *key,
    const char *upload_id, int64_t part_size, int nparts)
{
	sqlite3_stmt *s;
	int rc = -1;

	if (txn_begin(st) == -1)
		return -1;
	if (upload_forget(st, file_id, 0) != 0 ||
	    (s = prep(st, "INSERT OR REPLACE INTO uploads (file_id, "
	    "object_key, upload_id, part_size, nparts, checksum, created_ms) "
	    "VALUES (?,?,?,?,?,'',?)")) == NULL)
		return txn_end(st, -1);
	sqlite3_bind_int64(s, 1, file_id);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, upload_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, part_size);
	sqlite3_bind_int(s, 5, nparts);
	sqlite3_bind_int64(s, 6, now_ms());
	rc = done(st, s, "uploads");
	return txn_end(st, rc);
}

int
state_upload_part(struct state *st, int64_t file_id,
    const struct state_part *p)
{
	sqlite3_stmt *s;

	if ((s = prep(st, "INSERT OR REPLACE INTO parts (file_id, part, "
	    "etag, checksum) VALUES (?,?,?,?)")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	sqlite3_bind_int(s, 2, p->number);
	sqlite3_bind_text(s, 3, p->etag, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, p->checksum, -1, SQLITE_STATIC);
	return done(st, s, "parts");
}

int
state_upload_forget(struct state *st, int64_t file_id)
{
	if (txn_begin(st) == -1)
		return -1;
	return txn_end(st, upload_forget(st, file_id, 1));
}

int
state_upload_stored(struct state *st, int64_t file_id, const char *key,
    const char *checksum, int nparts)
{
	sqlite3_stmt *s;
	int rc = -1;

	if (txn_begin(st) == -1)
		return -1;
	if (upload_forget(st, file_id, 1) != 0 ||
	    (s = prep(st, "INSERT OR REPLACE INTO uploads (file_id, "
	    "object_key, upload_id, part_size, nparts, checksum, created_ms) "
	    "VALUES (?,?,'',0,?,?,?)")) == NULL)
		return txn_end(st, -1);
	sqlite3_bind_int64(s, 1, file_id);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, nparts);
	sqlite3_bind_text(s, 4, checksum, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, now_ms());
	rc = done(st, s, "uploads");
	return txn_end(st, rc);
}

int
state_upload_known(struct state *st, const char *upload_id)
{
	sqlite3_stmt *s;

	if ((s = prep(st, "SELECT 1 FROM uploads WHERE upload_id = ?")) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, upload_id, -1, SQLITE_STATIC);
	return found(st, s);
}

int
state_upload_checksum(struct state *st, int64_t file_id, char *checksum,
    size_t len)
{
	sqlite3_stmt *s;
	int rc = 0, step;

	checksum[0] = '\0';
	if ((s = prep(st, "SELECT checksum FROM uploads WHERE file_id = ?")) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	if ((step = sqlite3_step(s)) == SQLITE_ROW) {
		col_text(s, 0, checksum, len);
		rc = checksum[0] != '\0';
	} else if (step != SQLITE_DONE)
		rc = -1;
	release(st, s);
	return rc;
}

int
spool_mkdir(const char *path, mode_t mode)
{
	struct stat sb;
	int fd;

	if (mkdir(path, mode) == -1 && errno != EEXIST) {
		log_warn("cannot create %s", path);
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		log_warn("%s: not a directory (or a symbolic link); remove it "
		    "and restart", path);
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISDIR(sb.st_mode) ||
	    sb.st_uid != geteuid()) {
		log_warnx("%s must be a directory owned by uid %u; remove it "
		    "and restart", path, (unsigned)geteuid());
		goto fail;
	}
	if ((sb.st_mode & 07777 & ~mode) != 0 &&
	    fchmod(fd, sb.st_mode & 0777 & mode) == -1) {
		log_warn("chmod %o %s", (unsigned)mode, path);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}


/* --- delivery receipts (issue 11) -------------------------------------- */

int
state_receipt_add(struct state *st, int64_t file_id, const char *rule,
    const char *signer, const char *signed_at)
{
	sqlite3_stmt *s;
	int rc = -1;

	if ((s = prep(st, "INSERT OR REPLACE INTO delivery_receipts (file_id, "
	    "rule, signer, signed_at, written_ms) VALUES (?,?,?,?,0)")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	sqlite3_bind_text(s, 2, rule ? rule : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, signer ? signer : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, signed_at ? signed_at : "", -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_DONE)
		rc = 0;
	else
		log_warnx("state: receipt of file %lld: %s",
		    (long long)file_id, sqlite3_errmsg(st->db));
	release(st, s);
	return rc;
}

int
state_receipts_due(struct state *st, size_t max, struct receipt_due **out,
    size_t *n)
{
	struct receipt_due *v = NULL, *nv;
	sqlite3_stmt *s;
	size_t cap = 0;
	int step = SQLITE_DONE, rc = -1;

	*out = NULL;
	*n = 0;
	/* a read: no write lock while nothing is due */
	if ((s = prep(st, "SELECT " COLS ", d.rule, d.signer, d.signed_at "
	    "FROM delivery_receipts d JOIN files ON files.id = d.file_id "
	    "WHERE d.written_ms = 0 AND files.state IN (?,?,?,?) "
	    "ORDER BY d.file_id LIMIT ?")) == NULL)
		return -1;
	bind_state(s, 1, FS_STORED);
	bind_state(s, 2, FS_REMOVED);
	bind_state(s, 3, FS_ARCHIVED);
	bind_state(s, 4, FS_REJECTED);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)max);
	while (*n < max && (step = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL)
				goto fail;
			v = nv;
		}
		row_to_rec(s, &v[*n].r);
		col_text(s, 21, v[*n].rule, sizeof(v[*n].rule));
		col_text(s, 22, v[*n].signer, sizeof(v[*n].signer));
		col_text(s, 23, v[*n].signed_at, sizeof(v[*n].signed_at));
		(*n)++;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		log_warnx("state: receipts due: %s", sqlite3_errmsg(st->db));
		goto fail;
	}
	rc = 0;
fail:
	release(st, s);
	if (rc == -1) {
		free(v);
		*n = 0;
	} else
		*out = v;
	return rc;
}

int
state_receipt_written(struct state *st, int64_t file_id, int64_t when_ms)
{
	sqlite3_stmt *s;
	int rc = -1;

	if ((s = prep(st, "UPDATE delivery_receipts SET written_ms = ? "
	    "WHERE file_id = ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, when_ms > 0 ? when_ms : 1);
	sqlite3_bind_int64(s, 2, file_id);
	if (sqlite3_step(s) == SQLITE_DONE)
		rc = 0;
	else
		log_warnx("state: receipt of file %lld written: %s",
		    (long long)file_id, sqlite3_errmsg(st->db));
	release(st, s);
	return rc;
}

/* ---- the metrics role's reads (issue 12) ---------------------------------- */

struct state *
state_open_ro(const char *state_dir)
{
	struct state *st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	if (spool_dir_path(state_dir, SPOOL_DB, NULL, st->path,
	    sizeof(st->path)) == -1)
		goto fail;
	if (sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		log_warnx("state: cannot open %s read-only: %s", st->path,
		    st->db ? sqlite3_errmsg(st->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_handler(st->db, state_busy, st);
	return st;
fail:
	state_close(st);
	return NULL;
}

int
state_count_states(struct state *st, int64_t counts[FS_NSTATES])
{
	sqlite3_stmt *s;
	enum file_state fs;
	char name[16];
	int step;

	memset(counts, 0, sizeof(int64_t) * FS_NSTATES);
	if ((s = prep(st, "SELECT state, COUNT(*) FROM files GROUP BY state"))
	    == NULL)
		return -1;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		col_text(s, 0, name, sizeof(name));
		if (file_state_parse(name, &fs) == 0 && fs > FS_NONE &&
		    fs < FS_NSTATES)
			counts[fs] = sqlite3_column_int64(s, 1);
	}
	if (step != SQLITE_DONE)
		log_warnx("state: count states: %s", sqlite3_errmsg(st->db));
	release(st, s);
	return step == SQLITE_DONE ? 0 : -1;
}

int
state_oldest_unstored(struct state *st, int64_t *received_ms)
{
	sqlite3_stmt *s;
	int64_t v;

	if ((s = prep(st, "SELECT MIN(received_ms) FROM files WHERE state IN "
	    "(?,?,?)")) == NULL)
		return -1;
	bind_state(s, 1, FS_ACCEPTED);
	bind_state(s, 2, FS_UPLOADING);
	bind_state(s, 3, FS_HELD);
	v = min_of(st, s);
	release(st, s);
	*received_ms = v == INT64_MAX ? 0 : v;
	return 0;
}

/* --- shipped audit segments (issue 11) --------------------------------- */

int
state_audit_shipped(struct state *st, const char *name)
{
	sqlite3_stmt *s;
	int rc;

	if ((s = prep(st, "SELECT 1 FROM audit_shipped WHERE name = ?")) ==
	    NULL)
		return -1;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	rc = found(st, s);
	if (rc == -1)
		log_warnx("state: audit segment %s: %s", name,
		    sqlite3_errmsg(st->db));
	return rc;
}

int
state_audit_shipped_add(struct state *st, const char *name,
    const char *sha256, const char *key, const char *version_id,
    const char *etag, int64_t shipped_ms)
{
	sqlite3_stmt *s;

	if ((s = prep(st, "INSERT OR REPLACE INTO audit_shipped (name, sha256, "
	    "key, version_id, etag, shipped_at) VALUES (?,?,?,?,?,?)")) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, sha256, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, version_id ? version_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, etag ? etag : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, shipped_ms);
	return done(st, s, "audit segment shipped");
}

/* --- receipt copies for the store (issue 11) --------------------------- */

int
state_rcopy_add(struct state *st, const struct rcopy *c)
{
	sqlite3_stmt *s;

	/* a copy already stored keeps its bytes: the object is written once */
	if ((s = prep(st, "INSERT INTO receipt_copies (file_id, fid, partner, "
	    "key, body, sha256) VALUES (?,?,?,?,?,?) ON CONFLICT(file_id) DO "
	    "UPDATE SET key = excluded.key, body = excluded.body, sha256 = "
	    "excluded.sha256, next_ms = 0 WHERE status = 0")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, c->file_id);
	sqlite3_bind_text(s, 2, c->fid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, c->partner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, c->key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 5, c->body, (int)c->len, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, c->sha256, -1, SQLITE_STATIC);
	return done(st, s, "receipt copy");
}

void
state_rcopy_free(struct rcopy *c)
{
	if (c == NULL)
		return;
	free(c->body);
	c->body = NULL;
	c->len = 0;
}

int
state_rcopy_next(struct state *st, int64_t now, struct rcopy *c)
{
	sqlite3_stmt *s;
	const void *b;
	int step, rc = -1, n;

	memset(c, 0, sizeof(*c));
	if ((s = prep(st, "SELECT file_id, fid, partner, key, body, sha256, "
	    "attempts FROM receipt_copies WHERE status = 0 AND next_ms <= ? "
	    "ORDER BY next_ms, file_id LIMIT 1")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, now);
	if ((step = sqlite3_step(s)) == SQLITE_DONE) {
		rc = 0;
		goto out;
	}
	if (step != SQLITE_ROW) {
		log_warnx("state: receipt copies due: %s",
		    sqlite3_errmsg(st->db));
		goto out;
	}
	c->file_id = sqlite3_column_int64(s, 0);
	col_text(s, 1, c->fid, sizeof(c->fid));
	col_text(s, 2, c->partner, sizeof(c->partner));
	col_text(s, 3, c->key, sizeof(c->key));
	b = sqlite3_column_blob(s, 4);
	n = sqlite3_column_bytes(s, 4);
	col_text(s, 5, c->sha256, sizeof(c->sha256));
	c->attempts = sqlite3_column_int(s, 6);
	if (n < 0 || (c->body = malloc((size_t)n + 1)) == NULL)
		goto out;
	if (n > 0)
		memcpy(c->body, b, (size_t)n);
	c->body[n] = '\0';
	c->len = (size_t)n;
	rc = 1;
out:
	release(st, s);
	return rc;
}

int
state_rcopy_done(struct state *st, int64_t file_id, const char *version_id,
    int64_t when_ms)
{
	sqlite3_stmt *s;

	if ((s = prep(st, "UPDATE receipt_copies SET status = 1, version_id = "
	    "?, stored_ms = ? WHERE file_id = ?")) == NULL)
		return -1;
	sqlite3_bind_text(s, 1, version_id ? version_id : "", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, when_ms);
	sqlite3_bind_int64(s, 3, file_id);
	return done(st, s, "receipt copy stored");
}

int
state_rcopy_retry(struct state *st, int64_t file_id, int attempts,
    int64_t next_ms)
{
	sqlite3_stmt *s;

	if ((s = prep(st, "UPDATE receipt_copies SET attempts = ?, next_ms = ? "
	    "WHERE file_id = ? AND status = 0")) == NULL)
		return -1;
	sqlite3_bind_int(s, 1, attempts);
	sqlite3_bind_int64(s, 2, next_ms);
	sqlite3_bind_int64(s, 3, file_id);
	return done(st, s, "receipt copy retry");
}

int
state_rcopy_status(struct state *st, int64_t file_id)
{
	sqlite3_stmt *s;
	int step, rc;

	if ((s = prep(st, "SELECT status FROM receipt_copies WHERE file_id = "
	    "?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, file_id);
	step = sqlite3_step(s);
	rc = step == SQLITE_ROW ? sqlite3_column_int(s, 0) : step ==
	    SQLITE_DONE ? -2 : -1;
	release(st, s);
	return rc;
}

/* ---- notifications (notify/events.h) ------------------------------------ */

int
state_notify_add(struct state *st, const struct notify_row *n)
{
	sqlite3_stmt *s;
	int rc = -1;

	if ((s = prep(st, "INSERT OR IGNORE INTO notify_outbox (file_id, fid, "
	    "partner, event, target, target_key, body, created_ms, next_ms) "
	    "VALUES (?,?,?,?,?,?,?,?,?)")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, n->file_id);
	sqlite3_bind_text(s, 2, n->fid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, n->partner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, n->event, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 5, n->target);
	sqlite3_bind_text(s, 6, n->target_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, n->body ? n->body : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 8, n->created_ms);
	sqlite3_bind_int64(s, 9, n->next_ms);
	if (sqlite3_step(s) == SQLITE_DONE)
		rc = 0;
	else
		log_warnx("state: notify outbox: %s", sqlite3_errmsg(st->db));
	release(st, s);
	return rc;
}

int
state_notify_due(struct state *st, int64_t now, size_t max,
    struct notify_row **out, size_t *cnt)
{
	sqlite3_stmt *s;
	struct notify_row *rows = NULL, *n;
	const unsigned char *b;
	int step;

	*out = NULL;
	*cnt = 0;
	if ((s = prep(st, "SELECT id, file_id, fid, partner, event, target, "
	    "target_key, body, created_ms, attempts, next_ms, last_error "
	    "FROM notify_outbox WHERE status = 0 AND next_ms <= ? "
	    "ORDER BY next_ms, id LIMIT ?")) == NULL)
		return -1;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	if ((rows = calloc(max ? max : 1, sizeof(*rows))) == NULL)
		goto fail;
	while ((step = sqlite3_step(s)) == SQLITE_ROW && *cnt < max) {
		n = &rows[*cnt];
		n->id = sqlite3_column_int64(s, 0);
		n->file_id = sqlite3_column_int64(s, 1);
		col_text(s, 2, n->fid, sizeof(n->fid));
		col_text(s, 3, n->partner, sizeof(n->partner));
		col_text(s, 4, n->event, sizeof(n->event));
		n->target = sqlite3_column_int(s, 5);
		col_text(s, 6, n->target_key, sizeof(n->target_key));
		b = sqlite3_column_text(s, 7);
		if ((n->body = strdup(b ? (const char *)b : "{}")) == NULL)
			goto fail;
		n->created_ms = sqlite3_column_int64(s, 8);
		n->attempts = sqlite3_column_int(s, 9);
		n->next_ms = sqlite3_column_int64(s, 10);
		col_text(s, 11, n->last_error, sizeof(n->last_error));
		(*cnt)++;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		log_warnx("state: notify outbox: %s", sqlite3_errmsg(st->db));
		goto fail;
	}
	release(st, s);
	*out = rows;
	return 0;
fail:
	release(st, s);
	state_notify_free(rows, *cnt);
	*cnt = 0;
	return -1;
}

void
state_notify_free(struct notify_row *rows, size_t n)
{
	size_t i;

	if (rows == NULL)
		return;
	for (i = 0; i < n; i++)
		free(rows[i].body);
	free(rows);
}

int
state_notify_update(struct state *st, const struct notify_row *n, int status,
    int64_t done_ms)
{
	sqlite3_stmt *s;
	int rc = -1;

	if ((s = prep(st, "UPDATE notify_outbox SET attempts = ?, next_ms = ?, "
	    "status = ?, last_error = ?, done_ms = ? WHERE id = ? AND "
	    "status = 0")) == NULL)
		return -1;
	sqlite3_bind_int(s, 1, n->attempts);
	sqlite3_bind_int64(s, 2, n->next_ms);
	sqlite3_bind_int(s, 3, status);
	sqlite3_bind_text(s, 4, n->last_error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, done_ms);
	sqlite3_bind_int64(s, 6, n->id);
	if (sqlite3_step(s) == SQLITE_DONE)
		rc = 0;
	else
		log_warnx("state: notify outbox: %s", sqlite3_errmsg(st->db));
	release(st, s);
	return rc;
}

int
state_notify_count(struct state *st, int status, int64_t *count)
{
	sqlite3_stmt *s;
	int rc = -1;

	if ((s = prep(st, "SELECT count(*) FROM notify_outbox "
	    "WHERE status = ?")) == NULL)
		return -1;
	sqlite3_bind_int(s, 1, status);
	if (sqlite3_step(s) == SQLITE_ROW) {
		*count = sqlite3_column_int64(s, 0);
		rc = 0;
	}
	release(st, s);
	return rc;
}
