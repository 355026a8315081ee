/*
 * backoff.c - full-jitter exponential backoff (AWS architecture blog):
 * sleep = random(0, min(cap, base * 2^attempt)), random from getrandom(2);
 * and the retry budget, a token bucket shared by the threads of a process.
 */
#include "uploader/store.h"

#include <pthread.h>

#include "common/util.h"

/* Uniform in [0, bound] (bound <= INT64_MAX) without modulo bias;
 * -1 if getrandom fails. */
static int64_t
random_upto(uint64_t bound)
{
	uint64_t r, span, limit;

	if (bound == 0)
		return 0;
	span = bound + 1;
	limit = UINT64_MAX - (UINT64_MAX % span);	/* reject r >= limit */
	do {
		if (random_bytes(&r, sizeof(r)) != 0)
			return -1;
	} while (r >= limit);
	return (int64_t)(r % span);
}

int64_t
retry_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms)
{
	int64_t ceil_ms, r;
	int i;

	if (base_ms <= 0 || cap_ms <= 0)
		return 0;
	if (attempt < 0)
		attempt = 0;
	ceil_ms = base_ms < cap_ms ? base_ms : cap_ms;
	for (i = 0; i < attempt && ceil_ms < cap_ms; i++)
		ceil_ms = ceil_ms > cap_ms / 2 ? cap_ms : ceil_ms * 2;
	if ((r = random_upto((uint64_t)ceil_ms)) < 0)
		return ceil_ms / 2;	/* no entropy: still back off */
	return r;
}

/* ---- the retry budget ---------------------------------------------------- */

static pthread_mutex_t budget_mu = PTHREAD_MUTEX_INITIALIZER;
static int budget = RETRY_BUDGET;

int
retry_budget_take(int cost)
{
	int ok;

	pthread_mutex_lock(&budget_mu);
	if ((ok = budget >= cost))
		budget -= cost;
	pthread_mutex_unlock(&budget_mu);
	return ok;
}

void
retry_budget_success(void)
{
	pthread_mutex_lock(&budget_mu);
	if (budget < RETRY_BUDGET)
		budget++;
	pthread_mutex_unlock(&budget_mu);
}

int
retry_budget_left(void)
{
	int n;

	pthread_mutex_lock(&budget_mu);
	n = budget;
	pthread_mutex_unlock(&budget_mu);
	return n;
}

void
retry_budget_reset(void)
{
	pthread_mutex_lock(&budget_mu);
	budget = RETRY_BUDGET;
	pthread_mutex_unlock(&budget_mu);
}
