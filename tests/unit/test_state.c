/* Unit tests for spool/state: the queue's transitions are guarded and durable. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/util.h"
#include "policy/config.h"
#include "audit/audit.h"
#include "spool/layout.h"
#include "spool/outbox.h"
#include "spool/state.h"
#include "testtree.h"

static char dir[64];

static int
setup(void **state)
{
	xstrlcpy(dir, "/tmp/sluice-test-state-XXXXXX", sizeof(dir));
	if (mkdtemp(dir) == NULL || spool_init(dir) == -1)
		return -1;
	*state = state_open(dir);
	return *state == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	state_close(*state);
	return testtree_remove(dir);
}

static void
add(struct state *st, const char *fid, const char *path, struct file_rec *r)
{
	memset(r, 0, sizeof(*r));
	xstrlcpy(r->fid, fid, sizeof(r->fid));
	xstrlcpy(r->partner, "acme", sizeof(r->partner));
	xstrlcpy(r->path, path, sizeof(r->path));
	xstrlcpy(r->sha256, "ab", sizeof(r->sha256));
	r->size = 42;
	r->received_ms = now_ms();
	assert_int_equal(state_insert(st, r), 0);
	assert_true(r->id > 0);
	assert_int_equal(r->state, FS_RECEIVED);
}

static void
test_layout(void **state)
{
	char p[256];
	struct stat sb;

	(void)state;
	snprintf(p, sizeof(p), "%s/spool/ready", dir);
	assert_int_equal(stat(p, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	snprintf(p, sizeof(p), "%s/sluice.db", dir);
	assert_int_equal(stat(p, &sb), 0);
}

static void
test_claim_in_order_and_once(void **state)
{
	struct state *st = *state;
	struct file_rec a, b, r;

	add(st, "f1", "one.csv", &a);
	add(st, "f2", "two.csv", &b);
	assert_int_equal(state_claim(st, FS_RECEIVED, FS_ACCEPTED, now_ms(), &r), 1);
	assert_int_equal(r.id, a.id);
	assert_int_equal(r.state, FS_ACCEPTED);
	assert_string_equal(r.path, "one.csv");
	assert_int_equal(state_claim(st, FS_RECEIVED, FS_ACCEPTED, now_ms(), &r), 1);
	assert_int_equal(r.id, b.id);
	assert_int_equal(state_claim(st, FS_RECEIVED, FS_ACCEPTED, now_ms(), &r), 0);
	assert_int_equal(state_get(st, a.id, &r), 1);
	assert_int_equal(r.state, FS_ACCEPTED);
	assert_int_equal(state_fid_known(st, "f2"), 1);
	assert_int_equal(state_fid_known(st, "nope"), 0);
	/* fids are unique */
	memset(&r, 0, sizeof(r));
	xstrlcpy(r.fid, "f1", sizeof(r.fid));
	assert_int_equal(state_insert(st, &r), -1);
}

static void
test_update_is_guarded_by_state(void **state)
{
	struct state *st = *state;
	struct file_rec a, r;

	add(st, "g1", "x", &a);
	assert_int_equal(state_claim(st, FS_RECEIVED, FS_UPLOADING, now_ms(), &r), 1);
	r.state = FS_STORED;
	xstrlcpy(r.etag, "\"e\"", sizeof(r.etag));
	/* Not in "accepted": refused, nothing written. */
	assert_int_equal(state_update(st, &r, FS_ACCEPTED), -1);
	assert_int_equal(state_update(st, &r, FS_UPLOADING), 0);
	assert_int_equal(state_get(st, a.id, &r), 1);
	assert_int_equal(r.state, FS_STORED);
	assert_string_equal(r.etag, "\"e\"");
	/* A second transition from the old state fails. */
	assert_int_equal(state_update(st, &r, FS_UPLOADING), -1);
}

static void
test_backoff_delays_claim_and_reset_recovers(void **state)
{
	struct state *st = *state;
	struct file_rec a, r;
	int64_t now = now_ms();

	add(st, "h1", "x", &a);
	assert_int_equal(state_claim(st, FS_RECEIVED, FS_UPLOADING, now, &r), 1);
	r.state = FS_ACCEPTED;
	r.attempts = 1;
	r.next_attempt_ms = now + 60000;
	assert_int_equal(state_update(st, &r, FS_UPLOADING), 0);
	assert_int_equal(state_claim(st, FS_ACCEPTED, FS_UPLOADING, now, &r), 0);
	assert_int_equal(state_claim(st, FS_ACCEPTED, FS_UPLOADING, now + 60001, &r), 1);
	assert_int_equal(r.attempts, 1);
	/* A crash leaves it "uploading"; a restart puts it back in the queue. */
	assert_int_equal(state_reset(st, FS_UPLOADING, FS_ACCEPTED), 1);
	assert_int_equal(state_get(st, a.id, &r), 1);
	assert_int_equal(r.state, FS_ACCEPTED);
}

static void
test_persists_across_reopen(void **state)
{
	struct state *st = *state, *st2;
	struct file_rec a, r;

	add(st, "p1", "kept.csv", &a);
	st2 = state_open(dir);
	assert_non_null(st2);
	assert_int_equal(state_get(st2, a.id, &r), 1);
	assert_string_equal(r.path, "kept.csv");
	assert_int_equal(r.size, 42);
	state_close(st2);
}

/* A batch commits everything in it at once, or nothing; inner
 * transactions (state_claim) nest inside it. */
static void
test_batch_commit_and_rollback(void **state)
{
	struct state *st = *state;
	struct file_rec a, b, r;

	assert_int_equal(state_begin(st), 0);
	add(st, "b1", "one.csv", &a);
	assert_int_equal(state_claim(st, FS_RECEIVED, FS_WAITING, now_ms(), &r),
	    1);
	add(st, "b2", "two.csv", &b);
	state_rollback(st);
	assert_int_equal(state_get(st, a.id, &r), 0);
	assert_int_equal(state_get(st, b.id, &r), 0);

	assert_int_equal(state_begin(st), 0);
	add(st, "b3", "three.csv", &a);
	assert_int_equal(state_claim(st, FS_RECEIVED, FS_WAITING, now_ms(), &r),
	    1);
	assert_int_equal(state_commit(st), 0);
	assert_int_equal(state_get(st, a.id, &r), 1);
	assert_int_equal(r.state, FS_WAITING);
	/* a second connection sees the commit */
	{
		struct state *st2 = state_open(dir);

		assert_non_null(st2);
		assert_int_equal(state_get(st2, a.id, &r), 1);
		assert_int_equal(r.state, FS_WAITING);
		state_close(st2);
	}
	/* commit without begin fails */
	assert_int_equal(state_commit(st), -1);
}

static size_t
slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n;
}

static int
count_cb(void *arg, int64_t id, const char *event, const char *fields)
{
	(void)id; (void)event; (void)fields;
	(*(int *)arg)++;
	return 0;
}

/* Outbox records reach the trail in order, chained, once; a record whose
 * transaction rolled back never does. */
static void
test_outbox_flush(void **state)
{
	struct state *st = *state;
	struct audit *au;
	struct file_rec a;
	char path[128], buf[8192], *p1, *p2;
	int64_t last;
	int n = 0;

	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	assert_non_null(au = audit_open(path));
	assert_int_equal(state_begin(st), 0);
	add(st, "o1", "one.csv", &a);
	assert_int_equal(state_outbox_add(st, "file.received",
	    "{\"fid\":\"o1\",\"path\":\"one.csv\"}"), 0);
	assert_int_equal(state_commit(st), 0);
	assert_int_equal(state_begin(st), 0);
	assert_int_equal(state_outbox_add(st, "file.received",
	    "{\"fid\":\"gone\"}"), 0);
	state_rollback(st);
	assert_int_equal(state_outbox_add(st, "file.received",
	    "{\"fid\":\"o2\",\"path\":\"two.csv\"}"), 0);

	assert_int_equal(outbox_flush(st, au), 2);
	assert_int_equal(state_outbox_read(st, 10, count_cb, &n, &last), 0);
	assert_int_equal(n, 0);
	assert_int_equal(outbox_flush(st, au), 0);	/* nothing twice */
	audit_close(au);

	slurp(path, buf, sizeof(buf));
	assert_null(strstr(buf, "gone"));
	assert_non_null(p1 = strstr(buf, "\"fid\":\"o1\""));
	assert_non_null(p2 = strstr(buf, "\"fid\":\"o2\""));
	assert_true(p1 < p2);
	assert_non_null(strstr(buf, "\"event\":\"file.received\""));
	assert_non_null(strstr(buf, "\"outbox\":1"));
	{
		FILE *devnull = fopen("/dev/null", "w");

		assert_int_equal(audit_verify(path, devnull), 0);
		fclose(devnull);
	}
}

/* The trail cannot be written (a full disk: /dev/full answers ENOSPC):
 * the records stay in the outbox for the next pass. */
static void
test_outbox_keeps_on_failure(void **state)
{
	struct state *st = *state;
	struct audit *au;
	int64_t last;
	int n = 0;

	assert_int_equal(state_outbox_add(st, "file.received",
	    "{\"fid\":\"k\"}"), 0);
	assert_non_null(au = audit_open("/dev/full"));
	assert_int_equal(outbox_flush(st, au), -1);
	audit_close(au);
	assert_int_equal(state_outbox_read(st, 10, count_cb, &n, &last), 1);
	assert_int_equal(n, 1);
}

/* A connection of the test's own, to plant rows state.c would never write. */
static sqlite3 *
raw_db(void)
{
	char p[128];
	sqlite3 *db = NULL;

	snprintf(p, sizeof(p), "%s/sluice.db", dir);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

/* The text a row's state column holds. */
static void
raw_state(sqlite3 *db, int64_t id, char *out, size_t len)
{
	sqlite3_stmt *s;

	assert_int_equal(sqlite3_prepare_v2(db, "SELECT state FROM files "
	    "WHERE id = ?", -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_int64(s, 1, id);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	xstrlcpy(out, (const char *)sqlite3_column_text(s, 0), len);
	sqlite3_finalize(s);
}

/* No name from a row is joined into a path unchecked. */
static void
test_spool_names(void **state)
{
	struct state *st = *state;
	struct file_rec r, *rows = NULL;
	sqlite3 *db = raw_db();
	char p[256], big[200];
	size_t n = 0;

	assert_int_equal(spool_dir_path(dir, SPOOL_QUARANTINE, "acme", p,
	    sizeof(p)), 0);
	assert_int_equal(spool_dir_path(dir, SPOOL_QUARANTINE, "../..", p,
	    sizeof(p)), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(spool_dir_path(dir, SPOOL_LANDING, "", p, sizeof(p)), -1);
	assert_int_equal(spool_dir_path(dir, SPOOL_LANDING, "a/b", p, sizeof(p)),
	    -1);
	assert_int_equal(spool_dir_path(dir, SPOOL_LANDING, "..", p, sizeof(p)),
	    -1);
	assert_int_equal(spool_dir_path(dir, SPOOL_LANDING, "_forged", p,
	    sizeof(p)), -1);
	assert_int_equal(spool_dir_path(dir, SPOOL_LANDING, NULL, p, sizeof(p)),
	    0);
	assert_int_equal(spool_fid_ok("0123456789abcdef0123456789abcdef"), 1);
	assert_int_equal(spool_fid_ok("../x"), 0);
	assert_int_equal(spool_fid_ok(""), 0);
	assert_int_equal(spool_fid_ok(NULL), 0);

	/* a fid longer than a fid, or with a NUL in it, reads as "" rather
	 * than as another, valid, name cut short */
	memset(big, 'a', 40);
	big[40] = '\0';
	add(st, "f1", "one.csv", &r);
	add(st, "f2", "two.csv", &r);
	assert_int_equal(sqlite3_exec(db, "UPDATE files SET fid = "
	    "'0123456789abcdef0123456789abcdef/../../x' WHERE fid = 'f1'",
	    NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE files SET fid = "
	    "'0123456789abcdef0123456789abcde0', partner = 'acme' || char(0) || "
	    "'/..' WHERE fid = 'f2'", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(state_list(st, FS_RECEIVED, NULL, 10, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].fid, "");
	assert_string_equal(rows[1].fid, "0123456789abcdef0123456789abcde0");
	assert_string_equal(rows[1].partner, "");
	free(rows);
	sqlite3_close(db);
	(void)big;
}

/*
 * The layout's names are the ones every existing state_dir has on disk
 * (the literals the roles spelled before spool/layout.h): renaming one
 * would strand files, so each is pinned here. One function builds every
 * path, and only the per-partner directories take a partner.
 */
static void
test_layout_names(void **state)
{
	static const struct {
		enum spool_dir	 d;
		const char	*path;
		const char	*base;
		int		 per_partner;
	} want[] = {
		{ SPOOL_LANDING,	"landing",		"landing",	1 },
		{ SPOOL_SPOOL,		"spool",		"spool",	0 },
		{ SPOOL_INCOMING,	"spool/incoming",	"incoming",	0 },
		{ SPOOL_READY,		"spool/ready",		"ready",	0 },
		{ SPOOL_QUARANTINE,	"quarantine",		"quarantine",	1 },
		{ SPOOL_UNRECORDED,	"quarantine/_unrecorded", "_unrecorded", 0 },
		{ SPOOL_FORGED,		"quarantine/_forged",	"_forged",	0 },
		{ SPOOL_ARCHIVE,	"archive",		"archive",	0 },
		{ SPOOL_SIDECARS,	"sidecars",		"sidecars",	1 },
		{ SPOOL_PLAINTEXT,	"plaintext",		"plaintext",	1 },
		{ SPOOL_GNUPG,		"gnupg",		"gnupg",	1 },
		{ SPOOL_SIGNING,	"gnupg/_receipts",	"_receipts",	0 },
		{ SPOOL_AUDIT_SIGNING,	"gnupg/_audit",		"_audit",	0 },
		{ SPOOL_RUN,		"run",			"run",		0 },
		{ SPOOL_AUDIT_SOCK,	"run/audit.sock",	"audit.sock",	0 },
		{ SPOOL_DB,		"sluice.db",		"sluice.db",	0 },
		{ SPOOL_BANS,		"bans.json",		"bans.json",	0 },
	};
	char p[256], q[256];
	size_t i;

	(void)state;
	assert_int_equal(sizeof(want) / sizeof(want[0]), SPOOL_NDIRS);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_string_equal(spool_dir_name(want[i].d), want[i].path);
		assert_string_equal(spool_dir_base(want[i].d), want[i].base);
		assert_int_equal(spool_dir_path("/sd", want[i].d, NULL, p,
		    sizeof(p)), 0);
		snprintf(q, sizeof(q), "/sd/%s", want[i].path);
		assert_string_equal(p, q);
		errno = 0;
		assert_int_equal(spool_dir_path("/sd", want[i].d, "acme", p,
		    sizeof(p)), want[i].per_partner ? 0 : -1);
		if (want[i].per_partner) {
			snprintf(q, sizeof(q), "/sd/%s/acme", want[i].path);
			assert_string_equal(p, q);
		} else {
			assert_int_equal(errno, EINVAL);
			assert_string_equal(p, "");
		}
	}
	/* out of range: refused, named "" */
	assert_string_equal(spool_dir_name(SPOOL_NDIRS), "");
	assert_string_equal(spool_dir_name((enum spool_dir)-1), "");
	assert_int_equal(spool_dir_path("/sd", SPOOL_NDIRS, NULL, p, sizeof(p)),
	    -1);
	assert_int_equal(errno, EINVAL);
	/* too long: refused, never a path cut short */
	assert_int_equal(spool_dir_path("/sd", SPOOL_INCOMING, NULL, p, 10), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	assert_string_equal(p, "");
	assert_int_equal(spool_dir_path("/sd", SPOOL_INCOMING, NULL, p, 18), -1);
	assert_int_equal(spool_dir_path("/sd", SPOOL_INCOMING, NULL, p, 19), 0);
	assert_string_equal(p, "/sd/spool/incoming");
	/* spool_init made the directories the roles need (and state_open
	 * the database) where spool_dir_path says they are */
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct stat sb;

		if (want[i].d != SPOOL_LANDING && want[i].d != SPOOL_INCOMING &&
		    want[i].d != SPOOL_READY && want[i].d != SPOOL_QUARANTINE &&
		    want[i].d != SPOOL_DB)
			continue;
		assert_int_equal(spool_dir_path(dir, want[i].d, NULL, p,
		    sizeof(p)), 0);
		assert_int_equal(stat(p, &sb), 0);
	}
}

/* The states' names are the database's (existing rows keep meaning what
 * they meant); a name this version does not know reads as FS_NONE, and no
 * state_* function writes FS_NONE. */
static void
test_file_states(void **state)
{
	static const char *names[FS_NSTATES] = { "unknown", "received",
	    "waiting", "accepted", "uploading", "held", "stored", "removed",
	    "archived", "rejected", "consumed" };
	struct state *st = *state;
	struct file_rec a, r;
	enum file_state fs;
	sqlite3 *db;
	char text[32];
	int i;

	for (i = FS_NONE; i < FS_NSTATES; i++) {
		assert_string_equal(file_state_name((enum file_state)i),
		    names[i]);
		if (i == FS_NONE)
			continue;
		fs = FS_NONE;
		assert_int_equal(file_state_parse(names[i], &fs), 0);
		assert_int_equal(fs, i);
	}
	assert_string_equal(file_state_name(FS_NSTATES), "unknown");
	assert_string_equal(file_state_name((enum file_state)-3), "unknown");
	fs = FS_STORED;
	assert_int_equal(file_state_parse("unknown", &fs), -1);
	assert_int_equal(fs, FS_NONE);
	assert_int_equal(file_state_parse("Stored", &fs), -1);
	assert_int_equal(file_state_parse("stored ", &fs), -1);
	assert_int_equal(file_state_parse("", &fs), -1);
	assert_int_equal(file_state_parse(NULL, &fs), -1);
	assert_int_equal(errno, EINVAL);

	/* what the rows hold is the name */
	db = raw_db();
	add(st, "s1", "one.csv", &a);
	raw_state(db, a.id, text, sizeof(text));
	assert_string_equal(text, "received");
	assert_int_equal(state_claim(st, FS_RECEIVED, FS_HELD, now_ms(), &r), 1);
	raw_state(db, a.id, text, sizeof(text));
	assert_string_equal(text, "held");

	/* FS_NONE (or garbage) is never written */
	assert_int_equal(state_move(st, a.id, FS_HELD, FS_NONE, NULL), -1);
	assert_int_equal(state_move(st, a.id, FS_HELD, FS_NSTATES, NULL), -1);
	assert_int_equal(state_claim(st, FS_NONE, FS_ACCEPTED, now_ms(), &r),
	    -1);
	assert_int_equal(state_reset(st, FS_HELD, FS_NONE), -1);
	assert_int_equal(state_any(st, FS_NONE), -1);
	assert_int_equal(state_get(st, a.id, &r), 1);
	r.state = FS_NONE;
	assert_int_equal(state_update(st, &r, FS_HELD), -1);
	raw_state(db, a.id, text, sizeof(text));
	assert_string_equal(text, "held");

	/* a row in a state this version does not know */
	assert_int_equal(sqlite3_exec(db, "UPDATE files SET state = 'future'",
	    NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(state_get(st, a.id, &r), 1);
	assert_int_equal(r.state, FS_NONE);
	assert_int_equal(state_any(st, FS_HELD), 0);
	sqlite3_close(db);
}

struct seen {
	int64_t	 ids[16];
	int	 n;
	int	 stop_after;	/* > 0: return -1 for the one after */
};

static int
seen_cb(void *arg, const struct file_rec *r)
{
	struct seen *x = arg;

	if (x->stop_after > 0 && x->n == x->stop_after)
		return -1;
	assert_true(x->n < 16);
	x->ids[x->n++] = r->id;
	return 0;
}

/* The uploader's reads: a set of states, in id order; archived before a
 * time; the next due time. */
static void
test_foreach_and_due(void **state)
{
	struct state *st = *state;
	struct file_rec f[5], r, *rows = NULL;
	struct seen x;
	sqlite3 *db;
	size_t n = 0;
	int64_t now = now_ms();

	/* f0 held, f1 stored (at 1000), f2 archived (at 2000), f3 accepted
	 * (due now + 5000), f4 received */
	add(st, "e0", "a", &f[0]);
	add(st, "e1", "b", &f[1]);
	add(st, "e2", "c", &f[2]);
	add(st, "e3", "d", &f[3]);
	add(st, "e4", "e", &f[4]);
	assert_int_equal(state_move(st, f[0].id, FS_RECEIVED, FS_HELD, NULL), 1);
	f[1].state = FS_STORED;
	f[1].stored_ms = 1000;
	assert_int_equal(state_update(st, &f[1], FS_RECEIVED), 0);
	f[2].state = FS_ARCHIVED;
	f[2].stored_ms = 2000;
	assert_int_equal(state_update(st, &f[2], FS_RECEIVED), 0);
	f[3].state = FS_ACCEPTED;
	f[3].next_attempt_ms = now + 5000;
	assert_int_equal(state_update(st, &f[3], FS_RECEIVED), 0);

	memset(&x, 0, sizeof(x));
	assert_int_equal(state_foreach(st, FS_BIT(FS_STORED) |
	    FS_BIT(FS_ARCHIVED) | FS_BIT(FS_REMOVED), seen_cb, &x), 2);
	assert_int_equal(x.n, 2);
	assert_int_equal(x.ids[0], f[1].id);
	assert_int_equal(x.ids[1], f[2].id);
	memset(&x, 0, sizeof(x));
	assert_int_equal(state_foreach(st, FS_BIT(FS_HELD), seen_cb, &x), 1);
	assert_int_equal(x.ids[0], f[0].id);
	memset(&x, 0, sizeof(x));
	assert_int_equal(state_foreach(st, FS_BIT(FS_CONSUMED), seen_cb, &x), 0);
	/* 0: every file, even one in a state this version does not know */
	db = raw_db();
	assert_int_equal(sqlite3_exec(db, "UPDATE files SET state = 'future' "
	    "WHERE fid = 'e4'", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	memset(&x, 0, sizeof(x));
	assert_int_equal(state_foreach(st, 0, seen_cb, &x), 5);
	assert_int_equal(x.ids[0], f[0].id);
	assert_int_equal(x.ids[4], f[4].id);
	/* the callback stops the walk */
	memset(&x, 0, sizeof(x));
	x.stop_after = 2;
	assert_int_equal(state_foreach(st, 0, seen_cb, &x), 2);

	/* archived before a time */
	assert_int_equal(state_list_stored_before(st, FS_ARCHIVED, 2000, 10,
	    &rows, &n), 0);
	assert_int_equal(n, 0);
	free(rows);
	assert_int_equal(state_list_stored_before(st, FS_ARCHIVED, 2001, 10,
	    &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, f[2].id);
	assert_int_equal(rows[0].state, FS_ARCHIVED);
	free(rows);
	assert_int_equal(state_list_stored_before(st, FS_STORED, INT64_MAX, 0,
	    &rows, &n), 0);
	assert_int_equal(n, 0);
	free(rows);

	/* the next due time, asked twice (the statement is kept) */
	assert_int_equal(state_due(st, FS_ACCEPTED), now + 5000);
	assert_int_equal(state_due(st, FS_ACCEPTED), now + 5000);
	assert_int_equal(state_due(st, FS_UPLOADING), INT64_MAX);
	assert_int_equal(state_due(st, FS_NONE), INT64_MAX);
	assert_int_equal(state_qcopy_due(st), INT64_MAX);
	assert_int_equal(state_claim(st, FS_ACCEPTED, FS_UPLOADING, now + 5000,
	    &r), 1);
	assert_int_equal(state_due(st, FS_ACCEPTED), INT64_MAX);
	/* a rejected file to copy: due at once */
	add(st, "e5", "f", &r);
	r.state = FS_REJECTED;
	assert_int_equal(state_reject(st, &r, FS_RECEIVED, 1), 0);
	assert_int_equal(state_qcopy_due(st), 0);

	/* duplicates: only of files that were accepted */
	assert_int_equal(state_find_dup(st, "acme", "ab", 0, 0, &r), 1);
	assert_int_equal(r.id, f[3].id);	/* the newest accepted one */
	assert_int_equal(state_find_dup(st, "acme", "ab", 0, f[3].id, &r), 1);
	assert_int_equal(r.id, f[2].id);
	assert_int_equal(state_find_dup(st, "acme", "cd", 0, 0, &r), 0);
}

/* The uploader's multipart progress: saved, resumed, forgotten; the
 * checksum of a stored object. */
static void
test_uploads(void **state)
{
	struct state *st = *state;
	struct state_upload u;
	struct state_part p;
	char cs[80];

	memset(&u, 0, sizeof(u));
	assert_int_equal(state_upload_load(st, 7, &u), 0);
	state_upload_free(&u);
	assert_int_equal(state_upload_known(st, "up-1"), 0);
	assert_int_equal(state_upload_begin(st, 7, "k/x.bin", "up-1", 8 << 20,
	    3), 0);
	memset(&p, 0, sizeof(p));
	p.number = 2;
	xstrlcpy(p.etag, "\"e2\"", sizeof(p.etag));
	xstrlcpy(p.checksum, "c2", sizeof(p.checksum));
	assert_int_equal(state_upload_part(st, 7, &p), 0);
	p.number = 1;
	xstrlcpy(p.etag, "\"old\"", sizeof(p.etag));
	assert_int_equal(state_upload_part(st, 7, &p), 0);
	xstrlcpy(p.etag, "\"e1\"", sizeof(p.etag));	/* replaces part 1 */
	xstrlcpy(p.checksum, "c1", sizeof(p.checksum));
	assert_int_equal(state_upload_part(st, 7, &p), 0);
	assert_int_equal(state_upload_known(st, "up-1"), 1);
	assert_int_equal(state_upload_load(st, 7, &u), 1);
	assert_string_equal(u.key, "k/x.bin");
	assert_string_equal(u.upload_id, "up-1");
	assert_int_equal(u.part_size, 8 << 20);
	assert_int_equal(u.nparts, 2);
	assert_int_equal(u.parts[0].number, 1);
	assert_string_equal(u.parts[0].etag, "\"e1\"");
	assert_string_equal(u.parts[0].checksum, "c1");
	assert_int_equal(u.parts[1].number, 2);
	state_upload_free(&u);
	assert_null(u.parts);
	assert_int_equal(u.nparts, 0);

	/* a new upload forgets the parts of the old one */
	assert_int_equal(state_upload_begin(st, 7, "k/x.bin", "up-2", 8 << 20,
	    3), 0);
	assert_int_equal(state_upload_load(st, 7, &u), 1);
	assert_string_equal(u.upload_id, "up-2");
	assert_int_equal(u.nparts, 0);
	state_upload_free(&u);
	assert_int_equal(state_upload_known(st, "up-1"), 0);

	/* forgotten: nothing to resume */
	assert_int_equal(state_upload_forget(st, 7), 0);
	assert_int_equal(state_upload_load(st, 7, &u), 0);
	state_upload_free(&u);
	assert_int_equal(state_upload_known(st, "up-2"), 0);

	/* stored: the checksum the store reported, and no upload left */
	assert_int_equal(state_upload_checksum(st, 7, cs, sizeof(cs)), 0);
	assert_string_equal(cs, "");
	assert_int_equal(state_upload_begin(st, 8, "k/y.bin", "up-3", 8 << 20,
	    2), 0);
	assert_int_equal(state_upload_part(st, 8, &p), 0);
	assert_int_equal(state_upload_stored(st, 8, "k/y.bin", "abc-2", 2), 0);
	assert_int_equal(state_upload_checksum(st, 8, cs, sizeof(cs)), 1);
	assert_string_equal(cs, "abc-2");
	assert_int_equal(state_upload_load(st, 8, &u), 0);
	state_upload_free(&u);
	assert_int_equal(state_upload_known(st, "up-3"), 0);
	/* inside a batch that rolls back, nothing stays */
	assert_int_equal(state_begin(st), 0);
	assert_int_equal(state_upload_stored(st, 9, "k/z.bin", "zz", 0), 0);
	state_rollback(st);
	assert_int_equal(state_upload_checksum(st, 9, cs, sizeof(cs)), 0);
}

/* Service-side creation: directories of ours only, temp files exclusive. */
static void
test_spool_mkdir_and_write(void **state)
{
	char p[256], q[256], buf[16];
	struct stat sb;
	ssize_t k;
	int fd, dfd;

	(void)state;
	snprintf(p, sizeof(p), "%s/gnupg", dir);
	assert_true((fd = spool_mkdir(p, 0700)) >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	close(fd);
	/* an existing directory too open is tightened */
	assert_int_equal(chmod(p, 0777), 0);
	assert_true((fd = spool_mkdir(p, 0700)) >= 0);
	close(fd);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	/* a symbolic link (or a file) in its place is refused */
	snprintf(q, sizeof(q), "%s/plaintext", dir);
	assert_int_equal(symlink("/tmp", q), 0);
	assert_int_equal(spool_mkdir(q, 0700), -1);
	assert_int_equal(lstat(q, &sb), 0);
	assert_true(S_ISLNK(sb.st_mode));

	/* write_file_at: the content, the mode, no temp file left, and a
	 * link at the final name is replaced, not followed */
	assert_true((dfd = open(p, O_RDONLY | O_DIRECTORY)) >= 0);
	snprintf(q, sizeof(q), "%s/target", dir);
	assert_int_equal(symlinkat(q, dfd, "x.reason"), 0);
	assert_int_equal(write_file_at(dfd, "x.reason", "hello", 5, 0640), 0);
	assert_int_equal(access(q, F_OK), -1);		/* not followed */
	assert_int_equal(fstatat(dfd, "x.reason", &sb, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0640);
	assert_true((fd = openat(dfd, "x.reason", O_RDONLY)) >= 0);
	k = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(k, 5);
	assert_memory_equal(buf, "hello", 5);
	{
		DIR *d = fdopendir(dup(dfd));
		struct dirent *de;
		int nfiles = 0;

		assert_non_null(d);
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.' || strstr(de->d_name, "tmp"))
				nfiles++;
		closedir(d);
		assert_int_equal(nfiles, 1);
	}
	close(dfd);
}

/*
 * spool_own walks state_dir while others use it: an operator's command or
 * a test opens the database, and SQLite's -shm and -wal files come and go
 * (its last connection removes them). A file that vanishes between the
 * walk's listing and its chown is no error: prepare (and so the start of
 * the gateway) must not fail on it. Root only (it gives files away).
 */
static void
test_own_while_files_vanish(void **state)
{
	struct spool_owners o = { 65534, 65534, 65533, 65534 };
	struct config cfg;
	char audit[128], p[128], d[128];
	pid_t pid;
	int i, fd, st;

	(void)state;
	if (geteuid() != 0)
		skip();
	memset(&cfg, 0, sizeof(cfg));
	snprintf(audit, sizeof(audit), "%s/log/audit.jsonl", dir);
	cfg.state_dir = dir;
	cfg.audit_path = audit;
	assert_int_equal(spool_own(&cfg, &o), 0);
	snprintf(p, sizeof(p), "%s/sluice.db-shm", dir);
	snprintf(d, sizeof(d), "%s/spool/gone.d", dir);
	if ((pid = fork()) == 0) {
		alarm(60);
		for (;;) {
			if ((fd = open(p, O_WRONLY | O_CREAT, 0600)) != -1)
				close(fd);
			(void)mkdir(d, 0700);
			unlink(p);
			(void)rmdir(d);
		}
	}
	assert_true(pid > 0);
	for (i = 0; i < 400; i++)
		if (spool_own(&cfg, &o) != 0)
			break;
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	assert_int_equal(i, 400);
}

/* receipt_copies: one per file, bytes kept, never replaced once stored. */
static void
test_receipt_copies(void **state)
{
	struct state *st = *state;
	struct rcopy c, got;
	char body[] = "receipt\0one", body2[] = "receipt two";

	memset(&c, 0, sizeof(c));
	c.file_id = 5;
	xstrlcpy(c.fid, "0123456789abcdef0123456789abcdef", sizeof(c.fid));
	xstrlcpy(c.partner, "acme", sizeof(c.partner));
	xstrlcpy(c.key, "acme/a.csv.receipt.json", sizeof(c.key));
	xstrlcpy(c.sha256, "ab", sizeof(c.sha256));
	c.body = body;
	c.len = sizeof(body) - 1;
	assert_int_equal(state_rcopy_status(st, 5), -2);
	assert_int_equal(state_rcopy_add(st, &c), 0);
	assert_int_equal(state_rcopy_status(st, 5), 0);
	assert_int_equal(state_rcopy_next(st, now_ms(), &got), 1);
	assert_int_equal(got.file_id, 5);
	assert_string_equal(got.key, c.key);
	assert_int_equal(got.len, c.len);
	assert_memory_equal(got.body, body, c.len);	/* a NUL inside kept */
	state_rcopy_free(&got);
	/* backed off: not due until then */
	assert_int_equal(state_rcopy_retry(st, 5, 1, now_ms() + 60000), 0);
	assert_int_equal(state_rcopy_next(st, now_ms(), &got), 0);
	assert_int_equal(state_rcopy_next(st, now_ms() + 61000, &got), 1);
	assert_int_equal(got.attempts, 1);
	state_rcopy_free(&got);
	/* pending: new bytes replace the old (written again after a crash) */
	c.body = body2;
	c.len = strlen(body2);
	assert_int_equal(state_rcopy_add(st, &c), 0);
	assert_int_equal(state_rcopy_next(st, now_ms(), &got), 1);
	assert_int_equal(got.len, strlen(body2));
	assert_memory_equal(got.body, body2, got.len);
	state_rcopy_free(&got);
	/* stored: never due again, never replaced */
	assert_int_equal(state_rcopy_done(st, 5, "v1", now_ms()), 0);
	assert_int_equal(state_rcopy_status(st, 5), 1);
	assert_int_equal(state_rcopy_next(st, INT64_MAX, &got), 0);
	c.body = body;
	c.len = sizeof(body) - 1;
	assert_int_equal(state_rcopy_add(st, &c), 0);
	assert_int_equal(state_rcopy_status(st, 5), 1);
	assert_int_equal(state_rcopy_next(st, INT64_MAX, &got), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_in_order_and_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_is_guarded_by_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff_delays_claim_and_reset_recovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persists_across_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_commit_and_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_keeps_on_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreach_and_due, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uploads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_mkdir_and_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receipt_copies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_own_while_files_vanish, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
