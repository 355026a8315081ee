/*
 * test_guard.c - the listener's connection guard: defaults, startup and
 * session limits, global allow/deny, failure counting and escalating bans,
 * and the session <-> listener socketpair.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/guard.h"
#include "spool/layout.h"

static struct sockaddr_storage
sa_of(const char *addr)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
	}
	return ss;
}

static struct partner partners[2];
static struct config cfg;

static void
setup_cfg(void)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(partners, 0, sizeof(partners));
	partners[0].name = "acme";
	partners[1].name = "globex";
	partners[1].max_sessions = 1;
	cfg.partners = partners;
	cfg.npartners = 2;
}

static enum guard_verdict
admit(struct guard *g, const char *addr, int64_t now)
{
	struct sockaddr_storage ss = sa_of(addr);
	char norm[64];

	assert_int_equal(guard_addr((struct sockaddr *)&ss, norm,
	    sizeof(norm)), 0);
	return guard_admit(g, (struct sockaddr *)&ss, norm, now);
}

static void
test_defaults(void **state)
{
	struct server_config sc;
	struct guard_limits l;

	(void)state;
	memset(&sc, 0, sizeof(sc));
	guard_limits(&sc, &l);
	assert_int_equal(l.max_sessions, 256);
	assert_int_equal(l.max_sessions_per_partner, 16);
	assert_int_equal(l.max_sessions_per_address, 32);
	assert_int_equal(l.max_startups, 64);
	assert_int_equal(l.max_startups_begin, 32);	/* 32:30:64 */
	assert_int_equal(l.max_startups_rate, 30);
	assert_int_equal(l.max_startups_per_address, 8);
	assert_int_equal(l.login_grace_s, 60);
	assert_int_equal(l.idle_timeout_s, 1800);
	assert_int_equal(l.max_auth_tries, 6);
	assert_int_equal(l.ban_failures, 10);
	assert_int_equal(l.ban_window_s, 600);
	assert_int_equal(l.ban_duration_s, 900);
	sc.max_startups_per_address = 3;
	sc.login_grace_s = 5;
	sc.ban_failures = 1000;
	guard_limits(&sc, &l);
	assert_int_equal(l.max_startups_per_address, 3);
	assert_int_equal(l.login_grace_s, 5);
	assert_int_equal(l.ban_failures, GUARD_MAX_FAILURES);
	/* A plain max_startups is a hard cap: no random drop. */
	sc.max_startups = 10;
	guard_limits(&sc, &l);
	assert_int_equal(l.max_startups, 10);
	assert_int_equal(l.max_startups_begin, 10);
	assert_int_equal(l.max_startups_rate, 100);
	/* start:rate:full, with start clamped to full. */
	sc.max_startups_begin = 4;
	sc.max_startups_rate = 50;
	guard_limits(&sc, &l);
	assert_int_equal(l.max_startups_begin, 4);
	assert_int_equal(l.max_startups_rate, 50);
	sc.max_startups_begin = 20;
	guard_limits(&sc, &l);
	assert_int_equal(l.max_startups_begin, 10);
}

static void
test_addr_norm(void **state)
{
	struct sockaddr_storage ss;
	char out[64];

	(void)state;
	ss = sa_of("::ffff:192.0.2.7");
	assert_int_equal(guard_addr((struct sockaddr *)&ss, out, sizeof(out)), 0);
	assert_string_equal(out, "192.0.2.7");
	ss = sa_of("2001:db8::1");
	assert_int_equal(guard_addr((struct sockaddr *)&ss, out, sizeof(out)), 0);
	assert_string_equal(out, "2001:db8::1");
}

static void
test_startups(void **state)
{
	struct guard *g;
	int i, st, se;

	(void)state;
	setup_cfg();
	cfg.server.max_startups = 5;
	cfg.server.max_startups_per_address = 2;
	cfg.server.max_sessions = 3;
	assert_non_null(g = guard_new(&cfg));
	/* Two pre-auth connections from one address, the third refused. */
	assert_int_equal(admit(g, "10.0.0.1", 0), GUARD_OK);
	assert_int_equal(guard_conn_add(g, 101, "10.0.0.1"), 0);
	assert_int_equal(admit(g, "10.0.0.1", 0), GUARD_OK);
	assert_int_equal(guard_conn_add(g, 102, "10.0.0.1"), 0);
	assert_int_equal(admit(g, "10.0.0.1", 0), GUARD_MAX_STARTUPS_ADDR);
	/* Another address still gets in. */
	assert_int_equal(admit(g, "10.0.0.2", 0), GUARD_OK);
	/* A login frees the startup slot of its address. */
	assert_int_equal(guard_conn_login(g, 101, "acme", 0, 0, 0), GUARD_OK);
	assert_int_equal(guard_count(g, "10.0.0.1", &st, &se), 2);
	assert_int_equal(st, 1);
	assert_int_equal(se, 1);
	assert_int_equal(admit(g, "10.0.0.1", 0), GUARD_OK);
	/* A second login on one connection is a protocol error. */
	assert_int_equal(guard_conn_login(g, 101, "acme", 0, 0, 0), GUARD_ERROR);
	assert_int_equal(guard_conn_login(g, 999, "acme", 0, 0, 0), GUARD_ERROR);
	/* Fill the global startup cap from many addresses. */
	for (i = 0; i < 4; i++) {
		char a[32];

		snprintf(a, sizeof(a), "10.1.0.%d", i);
		assert_int_equal(admit(g, a, 0), GUARD_OK);
		assert_int_equal(guard_conn_add(g, 200 + i, a), 0);
	}
	/* 1 session + 5 startups: the global cap (5) is reached. */
	assert_int_equal(admit(g, "10.2.0.1", 0), GUARD_MAX_STARTUPS);
	guard_conn_remove(g, 200);
	assert_int_equal(admit(g, "10.2.0.1", 0), GUARD_OK);
	guard_free(g);
}

static void
test_session_limits(void **state)
{
	struct guard *g;

	(void)state;
	setup_cfg();
	cfg.server.max_sessions = 3;
	cfg.server.max_sessions_per_partner = 2;
	cfg.server.max_sessions_per_address = 10;
	assert_non_null(g = guard_new(&cfg));
	assert_int_equal(guard_conn_add(g, 1, "10.0.0.1"), 0);
	assert_int_equal(guard_conn_add(g, 2, "10.0.0.2"), 0);
	assert_int_equal(guard_conn_add(g, 3, "10.0.0.3"), 0);
	assert_int_equal(guard_conn_add(g, 4, "10.0.0.4"), 0);
	assert_int_equal(guard_conn_add(g, 5, "10.0.0.5"), 0);
	assert_int_equal(guard_conn_login(g, 1, "acme", 0, 0, 0), GUARD_OK);
	assert_int_equal(guard_conn_login(g, 2, "acme", 0, 0, 0), GUARD_OK);
	assert_int_equal(guard_conn_login(g, 3, "acme", 0, 0, 0),
	    GUARD_MAX_SESSIONS_PARTNER);
	/* The partner's own max_sessions wins over the server default. */
	assert_int_equal(guard_conn_login(g, 3, "globex", 1, 0, 0), GUARD_OK);
	assert_int_equal(guard_conn_login(g, 4, "x", 0, 0, 0), GUARD_MAX_SESSIONS);
	guard_conn_remove(g, 1);
	assert_int_equal(guard_conn_login(g, 4, "acme", 0, 0, 0), GUARD_OK);
	guard_free(g);

	cfg.server.max_sessions_per_address = 1;
	assert_non_null(g = guard_new(&cfg));
	assert_int_equal(guard_conn_add(g, 1, "10.0.0.1"), 0);
	assert_int_equal(guard_conn_add(g, 2, "10.0.0.1"), 0);
	assert_int_equal(guard_conn_login(g, 1, "acme", 0, 0, 0), GUARD_OK);
	assert_int_equal(guard_conn_login(g, 2, "globex", 0, 0, 0),
	    GUARD_MAX_SESSIONS_ADDR);
	guard_free(g);
}

static void
test_allow_deny(void **state)
{
	struct guard *g;
	struct cidr allow[1], deny[1];

	(void)state;
	setup_cfg();
	assert_int_equal(cidr_parse("10.0.0.0/8", &allow[0]), 0);
	assert_int_equal(cidr_parse("10.9.0.0/16", &deny[0]), 0);
	cfg.server.allow_from = allow;
	cfg.server.nallow_from = 1;
	cfg.server.deny_from = deny;
	cfg.server.ndeny_from = 1;
	assert_non_null(g = guard_new(&cfg));
	assert_int_equal(admit(g, "10.1.2.3", 0), GUARD_OK);
	assert_int_equal(admit(g, "::ffff:10.1.2.3", 0), GUARD_OK);
	assert_int_equal(admit(g, "10.9.2.3", 0), GUARD_DENY_FROM);
	assert_int_equal(admit(g, "192.0.2.1", 0), GUARD_NOT_ALLOWED);
	assert_int_equal(admit(g, "2001:db8::1", 0), GUARD_NOT_ALLOWED);
	guard_free(g);
}

static void
test_bans(void **state)
{
	struct guard *g;
	struct guard_ban b;
	int i;
	int64_t t = 1000000;

	(void)state;
	setup_cfg();
	assert_non_null(g = guard_new(&cfg));
	/* 9 failures in the window: no ban; the 10th bans 15 minutes. */
	for (i = 0; i < 9; i++) {
		guard_failure(g, "10.0.0.1", "acme", t + i, &b);
		assert_false(b.addr_banned);
		assert_false(b.user_banned);
	}
	assert_int_equal(b.failures, 9);
	assert_int_equal(admit(g, "10.0.0.1", t + 9), GUARD_OK);
	guard_failure(g, "10.0.0.1", "acme", t + 9, &b);
	assert_true(b.addr_banned);
	assert_int_equal(b.addr_duration_s, 900);
	assert_true(b.user_banned);
	assert_int_equal(b.user_duration_s, 900);
	assert_int_equal(admit(g, "10.0.0.1", t + 10), GUARD_BANNED);
	assert_int_equal(admit(g, "10.0.0.2", t + 10), GUARD_OK);
	assert_true(guard_user_banned(g, "acme", "10.0.0.1", t + 10));
	assert_false(guard_user_banned(g, "acme", "10.0.0.2", t + 10));
	assert_false(guard_user_banned(g, "globex", "10.0.0.1", t + 10));
	/* A connection from 10.0.0.1 admitted before the ban cannot log in
	 * as acme with a good password ... */
	assert_int_equal(guard_conn_add(g, 7, "10.0.0.1"), 0);
	assert_int_equal(guard_conn_login(g, 7, "acme", 0, t + 10, 0),
	    GUARD_USER_BANNED);
	/* ... but acme's key still works: a ban anyone can provoke by naming
	 * the partner must not lock a key-only partner out ... */
	assert_int_equal(guard_conn_add(g, 8, "10.0.0.1"), 0);
	assert_int_equal(guard_conn_login(g, 8, "acme", 0, t + 10, 1),
	    GUARD_OK);
	guard_conn_remove(g, 8);
	/* ... and so does its password from anywhere else. */
	assert_int_equal(guard_conn_add(g, 9, "10.0.0.3"), 0);
	assert_int_equal(guard_conn_login(g, 9, "acme", 0, t + 10, 0),
	    GUARD_OK);
	guard_conn_remove(g, 9);
	/* Failures during the ban do not lengthen it. */
	guard_failure(g, "10.0.0.1", "acme", t + 20, &b);
	assert_false(b.addr_banned);
	/* The ban ends... */
	assert_int_equal(admit(g, "10.0.0.1", t + 9 + 900), GUARD_OK);
	assert_false(guard_user_banned(g, "acme", "10.0.0.1", t + 9 + 900));
	assert_int_equal(guard_conn_login(g, 7, "acme", 0, t + 9 + 900, 0),
	    GUARD_OK);
	/* ... and the next one lasts twice as long. */
	t += 2000;
	for (i = 0; i < 10; i++)
		guard_failure(g, "10.0.0.1", NULL, t + i, &b);
	assert_true(b.addr_banned);
	assert_false(b.user_banned);
	assert_int_equal(b.addr_duration_s, 1800);
	t += 4000;
	for (i = 0; i < 10; i++)
		guard_failure(g, "10.0.0.1", NULL, t + i, &b);
	assert_int_equal(b.addr_duration_s, 3600);
	/* After a quiet day the count starts over. */
	t += 2 * 86400;
	for (i = 0; i < 10; i++)
		guard_failure(g, "10.0.0.1", NULL, t + i, &b);
	assert_int_equal(b.addr_duration_s, 900);
	/* Failures spread wider than the window never ban. */
	t += 100000;
	for (i = 0; i < 30; i++) {
		guard_failure(g, "10.0.0.3", "globex", t + i * 100, &b);
		assert_false(b.addr_banned);
		assert_false(b.user_banned);
	}
	/* Unknown user names are not tracked (the table stays bounded). */
	for (i = 0; i < 20; i++)
		guard_failure(g, "10.0.0.4", "nosuchuser", t + i, &b);
	assert_false(guard_user_banned(g, "nosuchuser", "10.0.0.4", t + 20));
	guard_free(g);
}

/* A partner's password failures ban it from their source prefix only. */
static void
test_user_ban_per_prefix(void **state)
{
	struct guard *g;
	struct guard_ban b;
	char a[64];
	int i;
	int64_t t = 1000000;

	(void)state;
	setup_cfg();
	cfg.server.ban_failures = 3;
	assert_non_null(g = guard_new(&cfg));
	/* Guessing acme's password from many places (one failure each, ten
	 * times the threshold) bans no one: before, this locked acme out
	 * everywhere. */
	for (i = 0; i < 30; i++) {
		snprintf(a, sizeof(a), "198.51.100.%d", i + 1);
		guard_failure(g, a, "acme", t + i, &b);
		assert_false(b.user_banned);
		assert_false(b.addr_banned);
	}
	assert_false(guard_user_banned(g, "acme", "192.0.2.1", t + 40));
	assert_false(guard_user_banned(g, "acme", "198.51.100.1", t + 40));
	/* Three from one /64 (different addresses) ban acme from that /64. */
	for (i = 0; i < 3; i++) {
		snprintf(a, sizeof(a), "2001:db8:1:2::%x", 0x10 + i);
		guard_failure(g, a, "acme", t + 50 + i, &b);
	}
	assert_true(b.user_banned);
	assert_string_equal(b.addr_key, "2001:db8:1:2::/64");
	assert_true(guard_user_banned(g, "acme", "2001:db8:1:2::ffff", t + 60));
	assert_false(guard_user_banned(g, "acme", "2001:db8:1:3::10", t + 60));
	assert_false(guard_user_banned(g, "acme", "192.0.2.1", t + 60));
	assert_false(guard_user_banned(g, "globex", "2001:db8:1:2::10",
	    t + 60));
	/* A user entry for a name that is not a partner is never made. */
	guard_failure(g, "192.0.2.9", "nosuch", t + 61, &b);
	assert_false(b.user_banned);
	/* Many (user, prefix) pairs: the table stays bounded and a fresh
	 * ban still lands. */
	for (i = 0; i < GUARD_MAX_TRACKED + 50; i++) {
		snprintf(a, sizeof(a), "2001:db8:9:%x::1", i);
		guard_failure(g, a, "globex", t + 100, &b);
	}
	for (i = 0; i < 3; i++)
		guard_failure(g, "203.0.113.5", "globex", t + 200 + i, &b);
	assert_true(b.user_banned);
	assert_true(guard_user_banned(g, "globex", "203.0.113.5", t + 210));
	guard_free(g);
}

/* Startups and sessions count per ban key: an IPv6 /64 is one source. */
static void
test_limits_per_prefix(void **state)
{
	struct guard *g;
	int st, se;

	(void)state;
	setup_cfg();
	cfg.server.max_startups = 50;
	cfg.server.max_startups_per_address = 2;
	cfg.server.max_sessions_per_address = 1;
	assert_non_null(g = guard_new(&cfg));
	assert_int_equal(admit(g, "2001:db8:1:2::1", 0), GUARD_OK);
	assert_int_equal(guard_conn_add(g, 1, "2001:db8:1:2::1"), 0);
	assert_int_equal(admit(g, "2001:db8:1:2::2", 0), GUARD_OK);
	assert_int_equal(guard_conn_add(g, 2, "2001:db8:1:2::2"), 0);
	/* A third address of the same /64 is the same source. */
	assert_int_equal(admit(g, "2001:db8:1:2:abcd::3", 0),
	    GUARD_MAX_STARTUPS_ADDR);
	assert_int_equal(guard_count(g, "2001:db8:1:2::99", &st, &se), 2);
	assert_int_equal(st, 2);
	/* The next /64 is another source. */
	assert_int_equal(admit(g, "2001:db8:1:3::1", 0), GUARD_OK);
	/* IPv4-mapped and plain IPv4 are one source. */
	assert_int_equal(guard_conn_add(g, 3, "192.0.2.1"), 0);
	assert_int_equal(guard_conn_add(g, 4, "::ffff:192.0.2.1"), 0);
	assert_int_equal(admit(g, "192.0.2.1", 0), GUARD_MAX_STARTUPS_ADDR);
	/* max_sessions_per_address per /64 as well. */
	assert_int_equal(guard_conn_login(g, 1, "acme", 0, 0, 1), GUARD_OK);
	assert_int_equal(guard_conn_login(g, 2, "globex", 0, 0, 1),
	    GUARD_MAX_SESSIONS_ADDR);
	guard_free(g);
}

/* A scripted random source: returns seq[i++], counting the calls. */
struct script {
	const uint32_t	*seq;
	size_t		 n, i;
	uint32_t	 upper;
};

static uint32_t
scripted(uint32_t upper, void *arg)
{
	struct script *sc = arg;

	sc->upper = upper;
	assert_true(sc->i < sc->n);
	return sc->seq[sc->i++];
}

/* A seeded generator (xorshift32) for the rate over many draws. */
static uint32_t
seeded(uint32_t upper, void *arg)
{
	uint32_t *x = arg;

	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x % upper;
}

static void
test_early_drop(void **state)
{
	static const uint32_t seq[] = { 49, 50, 74, 75, 0, 99 };
	struct script sc = { seq, sizeof(seq) / sizeof(seq[0]), 0, 0 };
	struct guard *g;
	char a[32];
	uint32_t x = 12345;
	int i, k, n, dropped;

	(void)state;
	setup_cfg();
	/* max_startups: 4:50:10 */
	cfg.server.max_startups = 10;
	cfg.server.max_startups_begin = 4;
	cfg.server.max_startups_rate = 50;
	cfg.server.max_startups_per_address = 100;
	assert_non_null(g = guard_new(&cfg));
	/* rate% at start, linear to 100% at full */
	assert_int_equal(guard_drop_percent(guard_get_limits(g), 0), 0);
	assert_int_equal(guard_drop_percent(guard_get_limits(g), 3), 0);
	assert_int_equal(guard_drop_percent(guard_get_limits(g), 4), 50);
	assert_int_equal(guard_drop_percent(guard_get_limits(g), 7), 75);
	assert_int_equal(guard_drop_percent(guard_get_limits(g), 9), 91);
	assert_int_equal(guard_drop_percent(guard_get_limits(g), 10), 100);
	assert_int_equal(guard_drop_percent(guard_get_limits(g), 11), 100);
	guard_set_rand(g, scripted, &sc);
	/* Below start: admitted without a draw. */
	for (i = 0; i < 4; i++) {
		snprintf(a, sizeof(a), "10.0.0.%d", i + 1);
		assert_int_equal(admit(g, a, 0), GUARD_OK);
		assert_int_equal(guard_conn_add(g, 100 + i, a), 0);
	}
	assert_int_equal(sc.i, 0);
	/* At start (4 waiting): 50%: a draw of 49 drops, 50 admits. */
	assert_int_equal(admit(g, "10.0.1.1", 0), GUARD_STARTUPS_DROP);
	assert_int_equal(sc.upper, 100);
	assert_int_equal(admit(g, "10.0.1.1", 0), GUARD_OK);
	/* Logged-in sessions are not startups. */
	assert_int_equal(guard_conn_add(g, 200, "10.0.2.1"), 0);
	assert_int_equal(guard_conn_login(g, 200, "acme", 0, 0, 1), GUARD_OK);
	for (i = 4; i < 7; i++) {
		snprintf(a, sizeof(a), "10.0.0.%d", i + 1);
		assert_int_equal(guard_conn_add(g, 100 + i, a), 0);
	}
	/* 7 waiting: 75%. */
	assert_int_equal(admit(g, "10.0.1.2", 0), GUARD_STARTUPS_DROP);
	assert_int_equal(admit(g, "10.0.1.2", 0), GUARD_OK);
	for (i = 7; i < 10; i++) {
		snprintf(a, sizeof(a), "10.0.0.%d", i + 1);
		assert_int_equal(guard_conn_add(g, 100 + i, a), 0);
	}
	/* Full (10 waiting): refused without a draw. */
	assert_int_equal(admit(g, "10.0.1.3", 0), GUARD_MAX_STARTUPS);
	assert_int_equal(sc.i, 4);
	assert_non_null(guard_verdict_key(GUARD_STARTUPS_DROP));
	assert_string_equal(guard_verdict_key(GUARD_STARTUPS_DROP),
	    "server.max_startups");
	/* Over many draws from a seeded source, the share dropped at each
	 * level is near its percentage. */
	guard_set_rand(g, seeded, &x);
	for (k = 4; k < 10; k++) {
		for (i = 0; i < 10; i++)
			guard_conn_remove(g, 100 + i);
		for (i = 0; i < k; i++) {
			snprintf(a, sizeof(a), "10.0.0.%d", i + 1);
			assert_int_equal(guard_conn_add(g, 100 + i, a), 0);
		}
		for (n = dropped = 0; n < 4000; n++)
			if (admit(g, "10.0.3.1", 0) == GUARD_STARTUPS_DROP)
				dropped++;
		i = guard_drop_percent(guard_get_limits(g), k) * 40;
		assert_in_range(dropped, i - 200, i + 200);
	}
	guard_free(g);
	/* A plain max_startups never drops at random. */
	cfg.server.max_startups_begin = 0;
	cfg.server.max_startups_rate = 0;
	assert_non_null(g = guard_new(&cfg));
	guard_set_rand(g, scripted, &sc);
	for (i = 0; i < 10; i++) {
		snprintf(a, sizeof(a), "10.0.0.%d", i + 1);
		assert_int_equal(admit(g, a, 0), GUARD_OK);
		assert_int_equal(guard_conn_add(g, 100 + i, a), 0);
	}
	assert_int_equal(admit(g, "10.0.1.3", 0), GUARD_MAX_STARTUPS);
	assert_int_equal(sc.i, 4);	/* no draw */
	guard_free(g);
}

static void
test_ban_table_bounded(void **state)
{
	struct guard *g;
	struct guard_ban b;
	char a[64];
	int i, j;

	(void)state;
	setup_cfg();
	cfg.server.ban_failures = 2;
	assert_non_null(g = guard_new(&cfg));
	/* Ban one address, then flood the table with others. */
	guard_failure(g, "192.0.2.1", NULL, 10, &b);
	guard_failure(g, "192.0.2.1", NULL, 11, &b);
	assert_true(b.addr_banned);
	for (i = 0; i < GUARD_MAX_TRACKED + 100; i++) {
		snprintf(a, sizeof(a), "2001:db8::%x", i);
		guard_failure(g, a, NULL, 12, &b);
	}
	/* The ban survived the flood (unbanned entries went first). */
	assert_true(guard_addr_banned(g, "192.0.2.1", 13));
	/* Many bans: the table never grows, oldest bans make room. */
	for (j = 0; j < 2; j++)
		for (i = 0; i < GUARD_MAX_TRACKED + 10; i++) {
			snprintf(a, sizeof(a), "2001:db8:1::%x", i);
			guard_failure(g, a, NULL, 20 + j, &b);
		}
	/* Even a table full of bans makes room for a new one. */
	guard_failure(g, "198.51.100.1", NULL, 30, &b);
	guard_failure(g, "198.51.100.1", NULL, 31, &b);
	assert_true(b.addr_banned);
	assert_true(guard_addr_banned(g, "198.51.100.1", 32));
	guard_free(g);
}

static void
test_ipv6_prefix(void **state)
{
	struct guard *g;
	struct guard_ban b;
	char a[64];
	int i;

	(void)state;
	assert_int_equal(guard_ban_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", a,
	    sizeof(a)), 0);
	assert_string_equal(a, "2001:db8:1:2::/64");
	assert_int_equal(guard_ban_key("::ffff:192.0.2.7", a, sizeof(a)), 0);
	assert_string_equal(a, "192.0.2.7");
	assert_int_equal(guard_ban_key("192.0.2.7", a, sizeof(a)), 0);
	assert_string_equal(a, "192.0.2.7");
	assert_int_equal(guard_ban_key("2001:db8:1:2::/64", a, sizeof(a)), 0);
	assert_string_equal(a, "2001:db8:1:2::/64");

	setup_cfg();
	assert_non_null(g = guard_new(&cfg));
	/* Ten addresses of one /64, one failure each: the /64 is banned. */
	for (i = 0; i < 10; i++) {
		snprintf(a, sizeof(a), "2001:db8:1:2::%x", 0x100 + i);
		guard_failure(g, a, NULL, 100 + i, &b);
		assert_string_equal(b.addr_key, "2001:db8:1:2::/64");
	}
	assert_true(b.addr_banned);
	assert_int_equal(admit(g, "2001:db8:1:2:ffff::1", 110), GUARD_BANNED);
	assert_true(guard_addr_banned(g, "2001:db8:1:2::/64", 110));
	/* The next /64 is someone else. */
	assert_int_equal(admit(g, "2001:db8:1:3::101", 110), GUARD_OK);
	/* IPv4 is per address, and IPv4-mapped IPv6 is the IPv4 address. */
	for (i = 0; i < 5; i++) {
		guard_failure(g, "::ffff:10.0.0.9", NULL, 200 + i, &b);
		assert_string_equal(b.addr_key, "10.0.0.9");
		guard_failure(g, "10.0.0.9", NULL, 200 + i, &b);
	}
	assert_true(b.addr_banned);
	assert_int_equal(admit(g, "10.0.0.9", 210), GUARD_BANNED);
	assert_int_equal(admit(g, "::ffff:10.0.0.9", 210), GUARD_BANNED);
	assert_int_equal(admit(g, "10.0.0.10", 210), GUARD_OK);
	guard_free(g);
}

static char *
slurp(const char *path)
{
	static char buf[1 << 16];
	FILE *f;
	size_t n;

	assert_non_null(f = fopen(path, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void
spit(const char *path, const char *text)
{
	FILE *f;

	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void
test_persist(void **state)
{
	struct guard *g;
	struct guard_ban b;
	char dir[] = "/tmp/sluice-guard-XXXXXX", path[256], *text;
	int64_t t = 2000000000;
	int i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, spool_dir_name(SPOOL_BANS));
	setup_cfg();

	/* No file yet: an empty table, no error. */
	assert_non_null(g = guard_new(&cfg));
	assert_int_equal(guard_load(g, path, t), 0);
	/* A ban three days old (forgotten), then today's bans. */
	for (i = 0; i < 10; i++)
		guard_failure(g, "192.0.2.50", NULL, t - 3 * 86400 + i, &b);
	assert_true(b.addr_banned);
	for (i = 0; i < 10; i++)
		guard_failure(g, "2001:db8:5:6::1", "acme", t + i, &b);
	assert_true(b.addr_banned);
	assert_true(b.user_banned);
	for (i = 0; i < 10; i++)
		guard_failure(g, "10.0.0.1", NULL, t + i, &b);
	assert_true(b.addr_banned);
	assert_int_equal(b.addr_duration_s, 900);
	/* Three failures still counting. */
	for (i = 0; i < 3; i++)
		guard_failure(g, "10.0.0.2", NULL, t + i, &b);
	assert_int_equal(guard_save(g, path, t + 10), 0);
	guard_free(g);
	text = slurp(path);
	assert_non_null(strstr(text, "\"2001:db8:5:6::/64\""));
	assert_non_null(strstr(text, "\"acme\""));
	assert_non_null(strstr(text, "\"prefix\":\"2001:db8:5:6::/64\""));
	assert_null(strstr(text, "192.0.2.50"));	/* expired: dropped */
	assert_null(strstr(text, "globex"));		/* nothing to keep */
	assert_null(strstr(text, "2001:db8:5:6::1\""));	/* prefixes only */

	/* A fresh guard (a restart) loads it: the bans hold. */
	assert_non_null(g = guard_new(&cfg));
	assert_int_equal(guard_load(g, path, t + 20), 0);
	assert_int_equal(admit(g, "2001:db8:5:6::abcd", t + 20), GUARD_BANNED);
	assert_int_equal(admit(g, "10.0.0.1", t + 20), GUARD_BANNED);
	assert_true(guard_user_banned(g, "acme", "2001:db8:5:6::77", t + 20));
	assert_false(guard_user_banned(g, "acme", "10.0.0.5", t + 20));
	assert_false(guard_user_banned(g, "globex", "2001:db8:5:6::1", t + 20));
	assert_int_equal(admit(g, "10.0.0.2", t + 20), GUARD_OK);
	assert_int_equal(admit(g, "192.0.2.50", t + 20), GUARD_OK);
	/* ... the failure window too: 7 more failures ban 10.0.0.2 ... */
	for (i = 0; i < 7; i++)
		guard_failure(g, "10.0.0.2", NULL, t + 30 + i, &b);
	assert_true(b.addr_banned);
	/* ... and the escalation: the next ban of 10.0.0.1 lasts twice as long. */
	assert_int_equal(admit(g, "10.0.0.1", t + 9 + 900), GUARD_OK);
	for (i = 0; i < 10; i++)
		guard_failure(g, "10.0.0.1", NULL, t + 1000 + i, &b);
	assert_true(b.addr_banned);
	assert_int_equal(b.addr_duration_s, 1800);
	guard_free(g);

	/* Loaded days later: everything has expired and is dropped. */
	assert_non_null(g = guard_new(&cfg));
	assert_int_equal(guard_load(g, path, t + 3 * 86400), 0);
	assert_int_equal(admit(g, "2001:db8:5:6::abcd", t + 3 * 86400), GUARD_OK);
	assert_false(guard_user_banned(g, "acme", "2001:db8:5:6::1",
	    t + 3 * 86400));
	for (i = 0; i < 10; i++)
		guard_failure(g, "10.0.0.1", NULL, t + 3 * 86400 + i, &b);
	assert_int_equal(b.addr_duration_s, 900);	/* repeat count reset */
	guard_free(g);

	/* A clock that went back cannot make a loaded ban last for ever. */
	assert_non_null(g = guard_new(&cfg));
	assert_int_equal(guard_load(g, path, t - 30 * 86400), 0);
	assert_int_equal(admit(g, "10.0.0.1", t - 30 * 86400 +
	    GUARD_MAX_BAN_S + 1), GUARD_OK);
	guard_free(g);

	/* A version 1 table: its address bans load, its global user bans
	 * are dropped. */
	assert_non_null(g = guard_new(&cfg));
	spit(path, "{\"version\":1,\"saved\":1,\"addresses\":[{\"key\":"
	    "\"10.0.0.7\",\"ban_until\":2000001000,\"bans\":1,\"last\":"
	    "2000000000,\"fails\":[]}],\"users\":[{\"key\":\"acme\","
	    "\"ban_until\":2000001000,\"bans\":1,\"last\":2000000000,"
	    "\"fails\":[]}]}");
	assert_int_equal(guard_load(g, path, t), 0);
	assert_int_equal(admit(g, "10.0.0.7", t), GUARD_BANNED);
	assert_false(guard_user_banned(g, "acme", "10.0.0.8", t));
	assert_false(guard_user_banned(g, "acme", "10.0.0.7", t));
	guard_free(g);

	/* Corrupt or foreign files: a warning, an empty table, no crash. */
	assert_non_null(g = guard_new(&cfg));
	for (i = 0; i < 6; i++) {
		static const char *bad[] = {
			"{\"version\":1,\"addresses\":[{\"key\":\"10.9",
			"",
			"{\"version\":3,\"addresses\":[],\"users\":[]}",
			"{\"version\":2,\"addresses\":[{\"key\":5}],"
			    "\"users\":[]}",
			"{\"version\":2,\"addresses\":[{\"key\":\"10.0.0.7\","
			    "\"ban_until\":9999999999,\"bans\":1,\"last\":1,"
			    "\"fails\":[]}],\"users\":[{\"key\":\"acme\"}]}",
			/* a user entry without its prefix */
			"{\"version\":2,\"addresses\":[{\"key\":\"10.0.0.7\","
			    "\"ban_until\":9999999999,\"bans\":1,\"last\":1,"
			    "\"fails\":[]}],\"users\":[{\"key\":\"acme\","
			    "\"ban_until\":9999999999,\"bans\":1,\"last\":1,"
			    "\"fails\":[]}]}",
		};

		/* a ban made before the load must not survive a bad file */
		guard_failure(g, "10.0.0.1", NULL, t, &b);
		spit(path, bad[i]);
		assert_int_equal(guard_load(g, path, t), -1);
		assert_int_equal(admit(g, "10.0.0.7", t), GUARD_OK);
		assert_false(guard_addr_banned(g, "10.0.0.1", t));
	}
	/* A directory where the file should be: the same. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(guard_load(g, path, t), -1);
	/* ... and saving over it fails cleanly. */
	assert_int_equal(guard_save(g, path, t), -1);
	assert_int_equal(rmdir(path), 0);
	guard_free(g);
	assert_int_equal(rmdir(dir), 0);
}

static void
test_ask(void **state)
{
	struct guard_msg m, got;
	uint32_t reply = GUARD_USER_BANNED;
	int sp[2];

	(void)state;
	memset(&m, 0, sizeof(m));
	m.type = GUARD_MSG_CHECK_USER;
	/* No listener (tests, tools): everything is allowed. */
	assert_int_equal(guard_ask(-1, &m, 100), GUARD_OK);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
	/* A listener that answers. */
	assert_int_equal(send(sp[1], &reply, sizeof(reply), 0), sizeof(reply));
	assert_int_equal(guard_ask(sp[0], &m, 1000), GUARD_USER_BANNED);
	assert_int_equal(recv(sp[1], &got, sizeof(got), 0), sizeof(got));
	assert_int_equal(got.type, GUARD_MSG_CHECK_USER);
	/* One that does not: refuse (fail closed). */
	assert_int_equal(guard_ask(sp[0], &m, 200), GUARD_ERROR);
	/* A garbage reply is refused too. */
	reply = 12345;
	assert_int_equal(send(sp[1], &reply, sizeof(reply), 0), sizeof(reply));
	assert_int_equal(guard_ask(sp[0], &m, 1000), GUARD_ERROR);
	/* FAIL needs no answer. */
	m.type = GUARD_MSG_FAIL;
	assert_int_equal(guard_ask(sp[0], &m, 1000), GUARD_OK);
	/* A dead listener: refuse. */
	close(sp[1]);
	m.type = GUARD_MSG_LOGIN;
	assert_int_equal(guard_ask(sp[0], &m, 1000), GUARD_ERROR);
	close(sp[0]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_addr_norm),
		cmocka_unit_test(test_startups),
		cmocka_unit_test(test_session_limits),
		cmocka_unit_test(test_allow_deny),
		cmocka_unit_test(test_bans),
		cmocka_unit_test(test_ban_table_bounded),
		cmocka_unit_test(test_ipv6_prefix),
		cmocka_unit_test(test_user_ban_per_prefix),
		cmocka_unit_test(test_limits_per_prefix),
		cmocka_unit_test(test_early_drop),
		cmocka_unit_test(test_persist),
		cmocka_unit_test(test_ask),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
