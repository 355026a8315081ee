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

#include "common/util.h"
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_in_order_and_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_is_guarded_by_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff_delays_claim_and_reset_recovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persists_across_reopen, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
