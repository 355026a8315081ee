/*
 * test_metrics.c - the Prometheus text format (metrics/expo.h): label
 * escaping, names, values, families, histograms and the cap; following the
 * live audit trail across the writer's rotation (metrics/follow.h) and
 * the tally of its records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics/expo.h"
#include "metrics/follow.h"

static void
test_escape(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(expo_escape("acme", out, sizeof(out)), 0);
	assert_string_equal(out, "acme");
	assert_int_equal(expo_escape("a\"b\\c\nd", out, sizeof(out)), 0);
	assert_string_equal(out, "a\\\"b\\\\c\\nd");
	/* UTF-8 and tabs pass as they are */
	assert_int_equal(expo_escape("caf\xc3\xa9\t", out, sizeof(out)), 0);
	assert_string_equal(out, "caf\xc3\xa9\t");
	/* does not fit: "" and -1, never cut inside an escape */
	assert_int_equal(expo_escape("\\\\\\", out, 6), -1);
	assert_string_equal(out, "");
	assert_int_equal(expo_escape("\\\\", out, 5), 0);
	assert_string_equal(out, "\\\\\\\\");
}

static void
test_names(void **state)
{
	(void)state;
	assert_true(expo_name_ok("sluice_files", 0));
	assert_true(expo_name_ok("a:b_c", 0));
	assert_false(expo_name_ok("a:b", 1));
	assert_false(expo_name_ok("9lives", 0));
	assert_false(expo_name_ok("", 0));
	assert_false(expo_name_ok("sp ace", 1));
	assert_false(expo_name_ok("dash-ed", 1));
	assert_false(expo_name_ok(NULL, 1));
}

static void
test_family_and_samples(void **state)
{
	struct expo e;

	(void)state;
	expo_init(&e, 0);
	expo_family(&e, "sluice_x_total", "counter", "Line one\nback\\slash");
	expo_sample(&e, "sluice_x_total", 3, NULL);
	expo_sample(&e, "sluice_x_total", 0.5, "partner", "ac\"me", "verdict",
	    "accepted", NULL);
	expo_sample(&e, "sluice_x_total", 12345678901.0, "a", "", NULL);
	expo_sample(&e, "sluice_x_total", NAN, NULL);
	expo_sample(&e, "sluice_x_total", -INFINITY, NULL);
	expo_sample(&e, "sluice_x_total", 1e300, NULL);
	assert_false(expo_failed(&e));
	assert_string_equal(e.buf,
	    "# HELP sluice_x_total Line one\\nback\\\\slash\n"
	    "# TYPE sluice_x_total counter\n"
	    "sluice_x_total 3\n"
	    "sluice_x_total{partner=\"ac\\\"me\",verdict=\"accepted\"} 0.5\n"
	    "sluice_x_total{a=\"\"} 12345678901\n"
	    "sluice_x_total NaN\n"
	    "sluice_x_total -Inf\n"
	    "sluice_x_total 1.0000000000000001e+300\n");
	expo_free(&e);
}

static void
test_bad_names_fail(void **state)
{
	struct expo e;

	(void)state;
	expo_init(&e, 0);
	expo_sample(&e, "ok", 1, "bad-label", "x", NULL);
	assert_true(expo_failed(&e));
	expo_free(&e);
	expo_init(&e, 0);
	expo_family(&e, "bad name", "gauge", "x");
	assert_true(expo_failed(&e));
	expo_free(&e);
}

static void
test_histogram(void **state)
{
	static const double b[] = { 0.1, 1, 2.5 };
	static const double c[] = { 1, 3, 4 };
	struct expo e;

	(void)state;
	expo_init(&e, 0);
	expo_histogram(&e, "sluice_s3_request_seconds", b, c, 3, 4.75, 5);
	assert_false(expo_failed(&e));
	assert_string_equal(e.buf,
	    "sluice_s3_request_seconds_bucket{le=\"0.1\"} 1\n"
	    "sluice_s3_request_seconds_bucket{le=\"1\"} 3\n"
	    "sluice_s3_request_seconds_bucket{le=\"2.5\"} 4\n"
	    "sluice_s3_request_seconds_bucket{le=\"+Inf\"} 5\n"
	    "sluice_s3_request_seconds_sum 4.75\n"
	    "sluice_s3_request_seconds_count 5\n");
	expo_free(&e);
}

static void
test_cap(void **state)
{
	struct expo e;
	int i;

	(void)state;
	expo_init(&e, 100);
	for (i = 0; i < 20; i++)
		expo_sample(&e, "sluice_long_metric_name", i, NULL);
	assert_true(expo_failed(&e));
	assert_true(e.len < 100);
	expo_free(&e);
}

/* ---- following ---------------------------------------------------------- */

struct lines {
	char	 got[16][64];
	int	 n;
};

static void
collect(void *arg, const char *line, size_t len)
{
	struct lines *l = arg;

	if (l->n < 16 && len < 64) {
		memcpy(l->got[l->n], line, len);
		l->got[l->n++][len] = '\0';
	}
}

static void
append(const char *path, const char *text)
{
	FILE *f = fopen(path, "a");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
test_follow_rotation(void **state)
{
	char dir[] = "/tmp/test_metrics.XXXXXX", live[128], seg[128], next[128];
	struct follow f;
	struct lines l;

	(void)state;
	memset(&l, 0, sizeof(l));
	assert_non_null(mkdtemp(dir));
	snprintf(live, sizeof(live), "%s/audit.jsonl", dir);
	snprintf(seg, sizeof(seg), "%s/seg-1.jsonl", dir);
	snprintf(next, sizeof(next), "%s/audit.jsonl.next", dir);
	append(live, "old1\n");
	assert_int_equal(follow_open(&f, live, 1), 0);	/* from the end */
	append(live, "a\nb");				/* b is half-written */
	assert_int_equal(follow_poll(&f, collect, &l), 1);
	append(live, "\nseal\n");
	/* the writer's rotation: link into segments, rename a new file over */
	assert_int_equal(link(live, seg), 0);
	append(next, "open\n");
	assert_int_equal(rename(next, live), 0);
	assert_int_equal(follow_poll(&f, collect, &l), 3);
	append(live, "c\n");
	assert_int_equal(follow_poll(&f, collect, &l), 1);
	assert_int_equal(follow_poll(&f, collect, &l), 0);
	assert_int_equal(l.n, 5);
	assert_string_equal(l.got[0], "a");
	assert_string_equal(l.got[1], "b");
	assert_string_equal(l.got[2], "seal");
	assert_string_equal(l.got[3], "open");
	assert_string_equal(l.got[4], "c");
	assert_int_equal(f.rotations, 1);
	follow_close(&f);
	unlink(live);
	unlink(seg);
	rmdir(dir);
}

static void
test_follow_missing_then_created(void **state)
{
	char dir[] = "/tmp/test_metrics.XXXXXX", live[128];
	struct follow f;
	struct lines l;

	(void)state;
	memset(&l, 0, sizeof(l));
	assert_non_null(mkdtemp(dir));
	snprintf(live, sizeof(live), "%s/audit.jsonl", dir);
	assert_int_equal(follow_open(&f, live, 1), 0);
	assert_int_equal(follow_poll(&f, collect, &l), 0);
	append(live, "first\n");
	assert_int_equal(follow_poll(&f, collect, &l), 1);
	assert_string_equal(l.got[0], "first");
	follow_close(&f);
	unlink(live);
	rmdir(dir);
}

static void
test_tally(void **state)
{
	static const char *recs[] = {
		"{\"event\":\"auth.success\",\"partner\":\"acme\",\"session\":\"s1\"}",
		"{\"event\":\"auth.success\",\"partner\":\"intruder\",\"session\":\"s2\"}",
		"{\"event\":\"auth.failure\",\"user\":\"x\"}",
		"{\"event\":\"auth.ban\",\"scope\":\"address\"}",
		"{\"event\":\"file.received\",\"partner\":\"acme\",\"size\":100}",
		"{\"event\":\"file.accepted\",\"partner\":\"acme\"}",
		"{\"event\":\"file.stored\",\"partner\":\"acme\"}",
		"{\"event\":\"file.held\",\"partner\":\"acme\"}",
		"{\"event\":\"session.end\",\"partner\":\"acme\",\"session\":\"s1\"}",
		"{\"event\":\"session.end\",\"session\":\"unknown\"}",
		"not json",
		NULL
	};
	struct partner p[1];
	struct config cfg;
	struct tally t;
	size_t i;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	memset(p, 0, sizeof(p));
	p[0].name = "acme";
	cfg.partners = p;
	cfg.npartners = 1;
	assert_int_equal(tally_init(&t, &cfg), 0);
	for (i = 0; recs[i] != NULL; i++)
		tally_line(&t, recs[i], strlen(recs[i]));
	assert_int_equal(t.records, 10);
	assert_int_equal(t.logins_ok, 2);
	assert_int_equal(t.logins_failed, 1);
	assert_int_equal(t.bans, 1);
	assert_int_equal(t.np, 2);
	assert_string_equal(t.p[0].name, "acme");
	assert_int_equal(t.p[0].sessions, 0);	/* s1 ended */
	assert_int_equal(t.p[0].bytes, 100);
	assert_int_equal(t.p[0].received, 1);
	assert_int_equal(t.p[0].accepted, 1);
	assert_int_equal(t.p[0].stored, 1);
	assert_int_equal(t.p[0].held, 1);
	/* an unconfigured name counts as _other, never as a new label */
	assert_string_equal(t.p[1].name, "_other");
	assert_int_equal(t.p[1].sessions, 1);
	tally_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_family_and_samples),
		cmocka_unit_test(test_bad_names_fail),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_follow_rotation),
		cmocka_unit_test(test_follow_missing_then_created),
		cmocka_unit_test(test_tally),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
