/*
 * Unit tests for audit/trace.c and audit/export.c over a hand-built trail
 * of two sealed segments and the live file: every needle form, every kind
 * of gap, the JSON form, exports by period and partner, CSV quoting and
 * the time parser.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testtree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/trace.h"
#include "common/util.h"

static char dir[] = "/tmp/sluice-test-trace-XXXXXX";
static struct trail trail;

#define S1	"5e55101aaaaaaaaaaaaaaaaaaaaaaaa1"
#define S2	"5e55101aaaaaaaaaaaaaaaaaaaaaaaa2"
#define S9	"5e55101aaaaaaaaaaaaaaaaaaaaaaaa9"
#define F(n)	"f1d0000000000000000000000000000" #n
#define SHA1	"1111111111111111111111111111111111111111111111111111111111111111"
#define SHA2	"2222222222222222222222222222222222222222222222222222222222222222"
#define SHA3	"3333333333333333333333333333333333333333333333333333333333333333"
/* a path a CSV and a needle must both get right */
#define QPATH	"in/b, \"q\"\nnext \xc3\xa9.csv"

static FILE *out;
static int seq;

/* One record as the writer lays it out (chain fields are not checked). */
static void
rec(const char *event, const char *fmt, ...)
{
	json_t *r, *f;
	va_list ap;
	char ts[40], *line;
	const char *k;
	json_t *v;

	seq++;
	snprintf(ts, sizeof(ts), "2026-11-22T00:%02d:%02d.000001Z", seq / 60,
	    seq % 60);
	r = json_pack("{s:i,s:s,s:s,s:s}", "seq", seq, "ts", ts, "host", "gw1",
	    "event", event);
	va_start(ap, fmt);
	f = fmt != NULL ? json_vpack_ex(NULL, 0, fmt, ap) : NULL;
	va_end(ap);
	if (f != NULL)
		json_object_foreach(f, k, v)
			json_object_set(r, k, v);
	json_object_set_new(r, "prev", json_string("00"));
	json_object_set_new(r, "hash", json_string("00"));
	line = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_ENSURE_ASCII);
	fprintf(out, "%s\n", line);
	free(line);
	json_decref(r);
	json_decref(f);
}

static void
file_open(const char *name)
{
	char p[512];

	if (out != NULL)
		fclose(out);
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_non_null(out = fopen(p, "w"));
}

#define FILE_(fid, path, sha) "partner", "acme", "fid", fid, "path", path, \
	"size", 10, "sha256", sha
#define RCV(sid, fid, path, sha) rec("file.received", \
	"{s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:i,s:s}", "session", sid, "remote", \
	"10.0.0.7", FILE_(fid, path, sha), "id", seq, "received_at", "t")
#define EV(ev, fid, path, sha) rec(ev, "{s:s,s:s,s:s,s:i,s:s,s:s}", \
	FILE_(fid, path, sha), "key", "acme/" path)

static void
build(void)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/segments", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	file_open("segments/audit-000000000001-000000000007.jsonl");
	rec("process.start", "{s:s}", "version", "0.1.0");
	rec("auth.success", "{s:s,s:s,s:s,s:s,s:s,s:s}", "session", S1,
	    "remote", "10.0.0.7", "partner", "acme", "key", "SHA256:abc",
	    "kex", "curve25519-sha256", "client", "SSH-2.0-OpenSSH_9.2p1");
	rec("sftp.op", "{s:s,s:s,s:s}", "session", S1, "op", "setstat",
	    "path", "in/a.csv");
	RCV(S1, F(1), "in/a.csv", SHA1);			/* 4 */
	rec("file.waiting", "{s:s,s:s,s:s}", "partner", "acme", "fid", F(1),
	    "for", "signature");
	rec("file.accepted", "{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "partner",
	    "acme", "fid", F(1), "path", "in/a.csv", "rule", "signature",
	    "key", "acme/in/a.csv", "signer", "8F3A", "signed_at", "t");
	rec("audit.seal", "{s:s}", "segment", "x");		/* 7 */
	file_open("segments/audit-000000000008-000000000018.jsonl");
	rec("audit.open", NULL);
	EV("upload.retry", F(1), "in/a.csv", SHA1);
	rec("file.stored", "{s:s,s:s,s:s,s:s,s:s,s:s}", "partner", "acme",
	    "fid", F(1), "key", "acme/in/a.csv", "bucket", "bkt", "etag",
	    "\"e1\"", "version_id", "v1");			/* 10 */
	rec("auth.success", "{s:s,s:s,s:s}", "session", S2, "remote",
	    "10.0.0.8", "partner", "acme");
	RCV(S2, F(2), QPATH, SHA2);				/* 12 */
	EV("file.accepted", F(2), QPATH, SHA2);
	RCV(S2, F(3), "in/c.csv", SHA3);			/* 14 */
	RCV(S2, F(4), "in/d.csv", SHA3);
	EV("file.accepted", F(4), "in/d.csv", SHA3);
	rec("file.held", "{s:s,s:s,s:s}", "partner", "acme", "fid", F(4),
	    "error", "NoSuchBucket");
	rec("audit.seal", NULL);				/* 18 */
	file_open("audit.jsonl");
	rec("audit.open", NULL);
	EV("file.removed", F(1), "in/a.csv", SHA1);		/* 20 */
	EV("file.stored", F(5), "in/x.csv", SHA3);
	RCV(S2, F(6), "in/a.csv", SHA1);			/* 22 */
	rec("file.duplicate", "{s:s,s:s,s:s,s:s,s:s}", "partner", "acme",
	    "fid", F(6), "path", "in/a.csv", "duplicate_of", F(1), "policy",
	    "reject");
	EV("file.rejected", F(6), "in/a.csv", SHA1);
	RCV(S9, F(7), "in/e.csv", SHA3);			/* 25 */
	EV("file.accepted", F(7), "in/e.csv", SHA3);
	EV("file.stored", F(7), "in/e.csv", SHA3);
	EV("file.archived", F(7), "in/e.csv", SHA3);
	RCV(S2, F(8), "in/f.csv", SHA3);			/* 29 */
	EV("file.accepted", F(8), "in/f.csv", SHA3);
	EV("file.stored", F(8), "in/f.csv", SHA3);
	RCV(S2, F(9), "in/g.csv", SHA3);			/* 32 */
	rec("file.waiting", "{s:s,s:s,s:s}", "partner", "acme", "fid", F(9),
	    "for", "in/g.csv.sig");
	RCV(S2, F(a), "in/h.csv", SHA3);			/* 34 */
	EV("file.rejected", F(a), "in/h.csv", SHA3);
	rec("file.quarantine_copy_failed", "{s:s,s:s,s:s}", "partner", "acme",
	    "fid", F(a), "error", "HTTP 503");
	rec("sftp.op", "{s:s,s:s,s:s}", "session", S2, "partner", "beta",
	    "path", "x");					/* 37 */
	fputs("{\"seq\":38,\"ts\":\"2026-11-22T00:00:38", out);	/* torn */
	fclose(out);
	out = NULL;
}

static int
setup_all(void **state)
{
	char s[512], l[512];

	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	build();
	snprintf(s, sizeof(s), "%s/segments", dir);
	snprintf(l, sizeof(l), "%s/audit.jsonl", dir);
	return trail_open(s, l, &trail);
}

static int
teardown_all(void **state)
{
	(void)state;
	trail_close(&trail);
	return testtree_remove(dir);
}

/* Runs a trace; its output (freed by the caller) in *text. */
static int
trace(const char *q, int json, char **text)
{
	size_t len;
	FILE *f = open_memstream(text, &len);
	int rc;

	assert_non_null(f);
	rc = audit_trace(&trail, q, json, f);
	fclose(f);
	return rc;
}

static void
expect(const char *q, int want_rc, const char *const *want)
{
	char *text;
	int rc = trace(q, 0, &text);

	if (rc != want_rc)
		print_error("%s: rc %d, want %d:\n%s", q, rc, want_rc, text);
	assert_int_equal(rc, want_rc);
	for (; *want != NULL; want++) {
		if (strstr(text, *want) == NULL)
			print_error("%s: no \"%s\" in:\n%s", q, *want, text);
		assert_non_null(strstr(text, *want));
	}
	free(text);
}

static void
test_open(void **state)
{
	(void)state;
	assert_int_equal(trail.n, 3);
	assert_string_equal(trail.f[0].name,
	    "audit-000000000001-000000000007.jsonl");
	assert_string_equal(trail.f[2].name, "audit.jsonl");
	/* the torn last line is not mapped as a record */
	assert_int_equal(trail.f[2].map[trail.f[2].len - 1], '\n');
	assert_true(trail.f[2].len < trail.f[2].maplen);
}

static void
test_complete_across_segments(void **state)
{
	static const char *const want[] = {
	    "auth.success", "key=SHA256:abc", "client=SSH-2.0-OpenSSH_9.2p1",
	    "file.received", "sha256=" SHA1, "file.waiting", "for=signature",
	    "file.accepted", "signer=8F3A", "upload.retry", "file.stored",
	    "bucket=bkt", "version_id=v1", "file.removed",
	    "[seq 2, audit-000000000001-000000000007.jsonl]",
	    "[seq 10, audit-000000000008-000000000018.jsonl]",
	    "[seq 20, audit.jsonl]",
	    "complete: stored as s3://bkt/acme/in/a.csv version v1; local copy "
	    "removed", NULL };
	char *text;

	(void)state;
	expect(F(1), 0, want);
	/* the login comes first, and nothing of another session */
	assert_int_equal(trace(F(1), 0, &text), 0);
	assert_true(strstr(text, "auth.success") < strstr(text, "received"));
	assert_null(strstr(text, S2));
	assert_null(strstr(text, "sftp.op"));
	free(text);
}

static void
test_needles(void **state)
{
	static const char *const two[] = { "file " F(1), "file " F(6),
	    "duplicate_of=" F(1), "rejected", NULL };
	static const char *const none[] = { NULL };
	static const char *const q[] = { "file " F(2), NULL };
	char *text;

	(void)state;
	/* sha256 and partner:path name both files, oldest first */
	expect(SHA1, 0, two);
	expect("acme:in/a.csv", 0, two);
	expect("acme:/in/a.csv", 0, two);
	assert_int_equal(trace(SHA1, 0, &text), 0);
	assert_true(strstr(text, "file " F(1)) < strstr(text, "file " F(6)));
	free(text);
	/* a path with a comma, quotes, a newline and UTF-8 */
	expect("acme:" QPATH, 1, q);
	/* not found, wrong partner, malformed */
	expect("f1d00000000000000000000000000099", 3, none);
	expect("beta:in/a.csv", 3, none);
	expect("9999999999999999999999999999999999999999999999999999999999999999",
	    3, none);
	expect("nonsense", 2, none);
	expect(":in/a.csv", 2, none);
}

static void
test_gaps(void **state)
{
	static const struct { const char *q, *why; } g[] = {
		{ F(2), "accepted but never stored" },
		{ F(3), "received, never decided" },
		{ F(4), "held (NoSuchBucket)" },
		{ F(5), "file.received: no record" },
		{ F(5), "file.accepted: stored without a verdict" },
		{ F(7), "session " S9 },
		{ F(8), "removal or archiving was never recorded" },
		{ F(9), "waits for in/g.csv.sig" },
		{ F(a), "quarantine prefix failed (HTTP 503)" },
	};
	const char *want[3] = { "GAP: missing ", NULL, NULL };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		want[1] = g[i].why;
		expect(g[i].q, 1, want);
	}
}

static void
test_complete_kinds(void **state)
{
	static const char *const dup[] = { "file.duplicate", "policy=reject",
	    "complete: rejected", NULL };
	static const char *const arch[] = { "archived (kept by retention)",
	    NULL };

	(void)state;
	expect(F(6), 0, dup);
	/* F(7) is archived, but its login is missing */
	expect(F(7), 1, arch);
}

static void
test_json(void **state)
{
	json_t *doc, *f, *steps;
	char *text;

	(void)state;
	assert_int_equal(trace(F(2), 1, &text), 1);
	doc = json_loads(text, 0, NULL);
	assert_non_null(doc);
	assert_true(json_is_false(json_object_get(doc, "complete")));
	assert_int_equal(json_array_size(json_object_get(doc, "files")), 1);
	f = json_array_get(json_object_get(doc, "files"), 0);
	assert_string_equal(json_string_value(json_object_get(f, "path")),
	    QPATH);
	assert_true(json_array_size(json_object_get(f, "missing")) == 1);
	steps = json_object_get(f, "steps");
	assert_int_equal(json_array_size(steps), 3);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(steps, 0), "event")), "auth.success");
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(steps, 1), "segment")),
	    "audit-000000000008-000000000018.jsonl");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    json_array_get(steps, 1), "record"), "seq")), 12);
	json_decref(doc);
	free(text);
	assert_int_equal(trace(F(1), 1, &text), 0);
	doc = json_loads(text, 0, NULL);
	assert_true(json_is_true(json_object_get(doc, "complete")));
	json_decref(doc);
	free(text);
}

static void
test_time_parse(void **state)
{
	int64_t us;

	(void)state;
	assert_int_equal(audit_time_parse("1970-01-02", &us), 0);
	assert_int_equal(us, 86400LL * 1000000);
	assert_int_equal(audit_time_parse("1970-01-01T00:00:01.5Z", &us), 0);
	assert_int_equal(us, 1500000);
	assert_int_equal(audit_time_parse("1970-01-01T01:00:00.000001+01:00",
	    &us), 0);
	assert_int_equal(us, 1);
	assert_int_equal(audit_time_parse("2026-11-22T00:00:01.123456789Z",
	    &us), 0);
	assert_int_equal(us % 1000000, 123456);
	assert_int_equal(audit_time_parse("2026-02-30", &us), -1);
	assert_int_equal(audit_time_parse("2026-11-22T00:00:01", &us), -1);
	assert_int_equal(audit_time_parse("2026-11-22T00:00:01.Z", &us), -1);
	assert_int_equal(audit_time_parse("2026-11-22 junk", &us), -1);
	assert_int_equal(audit_time_parse("yesterday", &us), -1);
}

static void
test_csv_field(void **state)
{
	static const struct { const char *in, *want; } c[] = {
		{ "plain", "plain" },
		{ "a,b", "\"a,b\"" },
		{ "say \"hi\"", "\"say \"\"hi\"\"\"" },
		{ "two\nlines", "\"two\nlines\"" },
		{ "cr\r", "\"cr\r\"" },
		{ " lead", "\" lead\"" },
		{ "", "" },
	};
	char *buf;
	size_t len, i;
	FILE *f;

	(void)state;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		assert_non_null(f = open_memstream(&buf, &len));
		csv_field(f, c[i].in, strlen(c[i].in));
		fclose(f);
		assert_string_equal(buf, c[i].want);
		free(buf);
	}
}

static int64_t
export(const char *from, const char *to, const char *partner, int csv,
    char **text, size_t *nused)
{
	size_t used[8], len;
	int64_t f, t, n;
	FILE *o;

	assert_int_equal(audit_time_parse(from, &f), 0);
	assert_int_equal(audit_time_parse(to, &t), 0);
	assert_non_null(o = open_memstream(text, &len));
	n = audit_export(&trail, f, t, partner, csv, o, used, nused);
	fclose(o);
	return n;
}

static void
test_export(void **state)
{
	char *text, *p;
	size_t nused;

	(void)state;
	/* [seq 10, seq 20): the second segment and the live file */
	assert_int_equal(export("2026-11-22T00:00:10Z", "2026-11-22T00:00:20Z",
	    NULL, 0, &text, &nused), 10);
	assert_int_equal(nused, 2);
	assert_non_null(strstr(text, "{\"seq\":10,"));
	assert_non_null(strstr(text, "{\"seq\":19,"));
	assert_null(strstr(text, "{\"seq\":20,"));
	assert_null(strstr(text, "{\"seq\":9,"));
	free(text);
	/* the first segment alone; a day covers everything but the torn line */
	assert_int_equal(export("2026-11-22", "2026-11-22T00:00:05Z", NULL, 0,
	    &text, &nused), 4);
	assert_int_equal(nused, 1);
	free(text);
	assert_int_equal(export("2026-11-22", "2026-11-23", NULL, 0, &text,
	    &nused), 37);
	free(text);
	assert_int_equal(export("2026-11-23", "2026-11-24", NULL, 0, &text,
	    &nused), 0);
	assert_int_equal(nused, 0);
	free(text);
	/* one partner */
	assert_int_equal(export("2026-11-22", "2026-11-23", "beta", 0, &text,
	    &nused), 1);
	assert_non_null(strstr(text, "{\"seq\":37,"));
	free(text);
	/* CSV: header, the fixed columns, the quoted path and record */
	assert_int_equal(export("2026-11-22T00:00:12Z", "2026-11-22T00:00:13Z",
	    NULL, 1, &text, &nused), 1);
	assert_non_null(strstr(text, "seq,ts,host,event,partner,session,remote,"
	    "fid,path,size,sha256,key,reason,record\r\n"));
	p = strstr(text, "\r\n") + 2;
	assert_non_null(strstr(p, "12,2026-11-22T00:00:12.000001Z,gw1,"
	    "file.received,acme," S2 ",10.0.0.7," F(2) ","
	    "\"in/b, \"\"q\"\"\nnext \xc3\xa9.csv\",10," SHA2 ",,,"
	    "\"{\"\"seq\"\":12,"));
	assert_non_null(strstr(p, "\"\"hash\"\":\"\"00\"\"}\"\r\n"));
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_complete_across_segments),
		cmocka_unit_test(test_needles),
		cmocka_unit_test(test_gaps),
		cmocka_unit_test(test_complete_kinds),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_csv_field),
		cmocka_unit_test(test_export),
	};

	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
