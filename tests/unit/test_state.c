/* Unit tests for spool/state: the queue's transitions are guarded and durable. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
