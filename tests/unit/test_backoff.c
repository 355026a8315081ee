/*
 * test_backoff.c - retry_backoff_ms: full jitter within
 * [0, min(cap, base * 2^attempt)], no overflow, not constant; the retry
 * budget (token bucket) runs dry and refills on successes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "uploader/store.h"

static void
test_bounds(void **state)
{
	int attempt, i;
	int64_t v, ceil;

	for (attempt = 0; attempt < 12; attempt++) {
		ceil = 100LL << attempt;
		if (ceil > 20000)
			ceil = 20000;
		for (i = 0; i < 200; i++) {
			v = retry_backoff_ms(attempt, 100, 20000);
			assert_true(v >= 0);
			assert_true(v <= ceil);
		}
	}
}

static void
test_huge_attempt(void **state)
{
	int i;
	int64_t v;

	for (i = 0; i < 100; i++) {
		v = retry_backoff_ms(1000 + i, 100, 20000);
		assert_true(v >= 0 && v <= 20000);
		v = retry_backoff_ms(62, INT64_MAX / 2, INT64_MAX);
		assert_true(v >= 0);
	}
}

static void
test_degenerate(void **state)
{
	assert_int_equal(retry_backoff_ms(3, 0, 20000), 0);
	assert_int_equal(retry_backoff_ms(3, 100, 0), 0);
	assert_true(retry_backoff_ms(-5, 100, 20000) <= 100);
	/* cap below base: cap wins. */
	assert_true(retry_backoff_ms(0, 5000, 1000) <= 1000);
}

static void
test_jitter(void **state)
{
	int64_t v, lo = INT64_MAX, hi = -1, sum = 0;
	int i, n = 2000;

	for (i = 0; i < n; i++) {
		v = retry_backoff_ms(10, 100, 20000);
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
		sum += v;
	}
	/* Uniform on [0, 20000]: spread out, mean near 10000. */
	assert_true(lo < 2000);
	assert_true(hi > 18000);
	assert_true(sum / n > 8000 && sum / n < 12000);
}

static void
test_budget(void **state)
{
	int i, granted = 0;

	retry_budget_reset();
	assert_int_equal(retry_budget_left(), RETRY_BUDGET);
	for (i = 0; i < 1000; i++)
		granted += retry_budget_take(RETRY_COST);
	assert_int_equal(granted, RETRY_BUDGET / RETRY_COST);	/* a storm is cut off */
	assert_int_equal(retry_budget_take(RETRY_COST), 0);
	for (i = 0; i < RETRY_COST - 1; i++)
		retry_budget_success();
	assert_int_equal(retry_budget_take(RETRY_COST), 0);
	retry_budget_success();
	assert_int_equal(retry_budget_take(RETRY_COST), 1);
	assert_int_equal(retry_budget_take(RETRY_TIMEOUT_COST), 0);
	for (i = 0; i < 2 * RETRY_BUDGET; i++)
		retry_budget_success();
	assert_int_equal(retry_budget_left(), RETRY_BUDGET);	/* capped */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_huge_attempt),
		cmocka_unit_test(test_degenerate),
		cmocka_unit_test(test_jitter),
		cmocka_unit_test(test_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
