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
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/util.h"
#include "audit/audit.h"
#include "spool/outbox.h"
#include "spool/state.h"

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
	char cmd[128];

	state_close(*state);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
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
	assert_string_equal(r->state, FS_RECEIVED);
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
	assert_string_equal(r.state, FS_ACCEPTED);
	assert_string_equal(r.path, "one.csv");
	assert_int_equal(state_claim(st, FS_RECEIVED, FS_ACCEPTED, now_ms(), &r), 1);
	assert_int_equal(r.id, b.id);
	assert_int_equal(state_claim(st, FS_RECEIVED, FS_ACCEPTED, now_ms(), &r), 0);
	assert_int_equal(state_get(st, a.id, &r), 1);
	assert_string_equal(r.state, FS_ACCEPTED);
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
	xstrlcpy(r.state, FS_STORED, sizeof(r.state));
	xstrlcpy(r.etag, "\"e\"", sizeof(r.etag));
	/* Not in "accepted": refused, nothing written. */
	assert_int_equal(state_update(st, &r, FS_ACCEPTED), -1);
	assert_int_equal(state_update(st, &r, FS_UPLOADING), 0);
	assert_int_equal(state_get(st, a.id, &r), 1);
	assert_string_equal(r.state, FS_STORED);
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
	xstrlcpy(r.state, FS_ACCEPTED, sizeof(r.state));
	r.attempts = 1;
	r.next_attempt_ms = now + 60000;
	assert_int_equal(state_update(st, &r, FS_UPLOADING), 0);
	assert_int_equal(state_claim(st, FS_ACCEPTED, FS_UPLOADING, now, &r), 0);
	assert_int_equal(state_claim(st, FS_ACCEPTED, FS_UPLOADING, now + 60001, &r), 1);
	assert_int_equal(r.attempts, 1);
	/* A crash leaves it "uploading"; a restart puts it back in the queue. */
	assert_int_equal(state_reset(st, FS_UPLOADING, FS_ACCEPTED), 1);
	assert_int_equal(state_get(st, a.id, &r), 1);
	assert_string_equal(r.state, FS_ACCEPTED);
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
	assert_string_equal(r.state, FS_WAITING);
	/* a second connection sees the commit */
	{
		struct state *st2 = state_open(dir);

		assert_non_null(st2);
		assert_int_equal(state_get(st2, a.id, &r), 1);
		assert_string_equal(r.state, FS_WAITING);
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

/* No name from a row is joined into a path unchecked. */
static void
test_spool_names(void **state)
{
	struct state *st = *state;
	struct file_rec r, *rows = NULL;
	sqlite3 *db = state_db(st);
	char p[256], big[200];
	size_t n = 0;

	assert_int_equal(spool_path(dir, "quarantine", "acme", p, sizeof(p)), 0);
	assert_int_equal(spool_path(dir, "quarantine", "../..", p, sizeof(p)), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(spool_path(dir, "landing", "", p, sizeof(p)), -1);
	assert_int_equal(spool_path(dir, "landing", "a/b", p, sizeof(p)), -1);
	assert_int_equal(spool_path(dir, "landing", "..", p, sizeof(p)), -1);
	assert_int_equal(spool_path(dir, "landing", NULL, p, sizeof(p)), 0);
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
	(void)big;
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

	/* spool_write_at: the content, the mode, no temp file left, and a
	 * link at the final name is replaced, not followed */
	assert_true((dfd = open(p, O_RDONLY | O_DIRECTORY)) >= 0);
	snprintf(q, sizeof(q), "%s/target", dir);
	assert_int_equal(symlinkat(q, dfd, "x.reason"), 0);
	assert_int_equal(spool_write_at(dfd, "x.reason", "hello", 5, 0640), 0);
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
		cmocka_unit_test_setup_teardown(test_spool_mkdir_and_write, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
