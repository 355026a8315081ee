/*
 * test_s3list.c - the ListObjectsV2 reply parser (uploader/s3list.c) and
 * the sealed segment names the audit shipper takes (uploader/auditship.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "uploader/auditship.h"
#include "uploader/store.h"

struct seen {
	char	keys[8][1100];
	int64_t	sizes[8];
	int	n;
	int	stop_at;	/* fn returns 7 at this entry (0: never) */
};

static int
collect(void *arg, const char *key, int64_t size)
{
	struct seen *s = arg;

	if (s->n < 8) {
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
		s->sizes[s->n] = size;
	}
	s->n++;
	return s->stop_at != 0 && s->n == s->stop_at ? 7 : 0;
}

static int
parse(const char *xml, struct seen *s, int *trunc, char *token, size_t tlen,
    char *err, size_t elen)
{
	return s3_list_parse(xml, strlen(xml), collect, s, trunc, token, tlen,
	    err, elen);
}

#define HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">" \
    "<Name>b</Name><Prefix>audit/gw1/</Prefix><MaxKeys>100</MaxKeys>"

static void
test_keys_escaped_and_utf8(void **state)
{
	static const char xml[] = HEAD "<KeyCount>3</KeyCount>"
	    "<IsTruncated>false</IsTruncated>"
	    "<Contents><Key>audit/gw1/a&amp;b&lt;c&gt;&quot;&apos;</Key>"
	    "<LastModified>2026-01-01T00:00:00.000Z</LastModified>"
	    "<ETag>&quot;abc&quot;</ETag><Size>12</Size>"
	    "<StorageClass>STANDARD</StorageClass></Contents>"
	    "<Contents><Key>audit/gw1/r\xc3\xa9sum\xc3\xa9-\xe6\x97\xa5.jsonl</Key>"
	    "<Size>0</Size></Contents>"
	    "<Contents><Size>5</Size><Key>audit/gw1/&#x41;&#66;</Key></Contents>"
	    "</ListBucketResult>";
	struct seen s = { .n = 0 };
	char token[64] = "stale", err[256];
	int trunc = 1;

	(void)state;
	assert_int_equal(parse(xml, &s, &trunc, token, sizeof(token), err,
	    sizeof(err)), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.keys[0], "audit/gw1/a&b<c>\"'");
	assert_int_equal(s.sizes[0], 12);
	assert_string_equal(s.keys[1],
	    "audit/gw1/r\xc3\xa9sum\xc3\xa9-\xe6\x97\xa5.jsonl");
	assert_int_equal(s.sizes[1], 0);
	assert_string_equal(s.keys[2], "audit/gw1/AB");	/* Size first */
	assert_int_equal(s.sizes[2], 5);
	assert_int_equal(trunc, 0);
	assert_string_equal(token, "");
}

static void
test_truncated_with_token(void **state)
{
	static const char xml[] = HEAD "<KeyCount>1</KeyCount>"
	    "<IsTruncated>true</IsTruncated>"
	    "<Contents><Key>audit/gw1/audit-000000000001-000000000010.jsonl"
	    "</Key><Size>4096</Size></Contents>"
	    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
	    "&amp;x</NextContinuationToken>"
	    "<StartAfter>a</StartAfter></ListBucketResult>";
	struct seen s = { .n = 0 };
	char token[128], small[8], err[256];
	int trunc = 0;

	(void)state;
	assert_int_equal(parse(xml, &s, &trunc, token, sizeof(token), err,
	    sizeof(err)), 0);
	assert_int_equal(trunc, 1);
	assert_string_equal(token,
	    "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=&x");
	assert_int_equal(s.n, 1);
	assert_int_equal(s.sizes[0], 4096);
	/* a token that does not fit is an error, never cut */
	s.n = 0;
	assert_int_equal(parse(xml, &s, &trunc, small, sizeof(small), err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "too long"));
	assert_int_equal(trunc, 0);
}

static void
test_empty_listing(void **state)
{
	static const char xml[] = HEAD "<KeyCount>0</KeyCount>"
	    "<IsTruncated>false</IsTruncated></ListBucketResult>";
	struct seen s = { .n = 0 };
	char token[16], err[256];
	int trunc = 1;

	(void)state;
	assert_int_equal(parse(xml, &s, &trunc, token, sizeof(token), err,
	    sizeof(err)), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(trunc, 0);
}

static void
test_refused(void **state)
{
	static const struct {
		const char	*xml;
		const char	*why;
	} t[] = {
		{ "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"boom\">]>"
		  "<ListBucketResult><Contents><Key>&e;</Key><Size>1</Size>"
		  "</Contents></ListBucketResult>", "DOCTYPE" },
		{ "<Error><Code>AccessDenied</Code></Error>",
		  "not a ListBucketResult" },
		{ HEAD "<Contents><Key>audit/x</Key><Size>1</Size></Contents>",
		  "not well-formed" },	/* cut short */
		{ HEAD "<Contents><Key>a</Key><Size>-1</Size></Contents>"
		  "</ListBucketResult>", "Size" },
		{ HEAD "<Contents><Key>a</Key><Size>1x</Size></Contents>"
		  "</ListBucketResult>", "Size" },
		{ HEAD "<Contents><Size>1</Size></Contents></ListBucketResult>",
		  "empty or too long" },
		{ HEAD "<Contents><Key></Key><Size>1</Size></Contents>"
		  "</ListBucketResult>", "empty or too long" },
		{ "", "not well-formed" },
		{ "<ListBucketResult><Contents><Key>a</Key>", "not well-formed" },
	};
	struct seen s;
	char token[16], err[256];
	size_t i;
	int trunc;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&s, 0, sizeof(s));
		err[0] = '\0';
		if (parse(t[i].xml, &s, &trunc, token, sizeof(token), err,
		    sizeof(err)) != -1 || strstr(err, t[i].why) == NULL)
			fail_msg("case %zu: want -1 and \"%s\", got \"%s\"", i,
			    t[i].why, err);
	}
}

static void
test_long_key(void **state)
{
	char *xml, key[1200], token[16], err[256];
	struct seen s;
	int trunc;

	(void)state;
	xml = malloc(4096);
	assert_non_null(xml);
	memset(key, 'k', 1024);
	key[1024] = '\0';
	snprintf(xml, 4096, HEAD "<Contents><Key>%s</Key><Size>1</Size>"
	    "</Contents></ListBucketResult>", key);
	memset(&s, 0, sizeof(s));
	assert_int_equal(parse(xml, &s, &trunc, token, sizeof(token), err,
	    sizeof(err)), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(strlen(s.keys[0]), 1024);
	/* one byte more than S3 allows */
	snprintf(xml, 4096, HEAD "<Contents><Key>%sk</Key><Size>1</Size>"
	    "</Contents></ListBucketResult>", key);
	memset(&s, 0, sizeof(s));
	assert_int_equal(parse(xml, &s, &trunc, token, sizeof(token), err,
	    sizeof(err)), -1);
	assert_int_equal(s.n, 0);
	free(xml);
}

static void
test_callback_stops(void **state)
{
	static const char xml[] = HEAD "<IsTruncated>false</IsTruncated>"
	    "<Contents><Key>a</Key><Size>1</Size></Contents>"
	    "<Contents><Key>b</Key><Size>1</Size></Contents>"
	    "<Contents><Key>c</Key><Size>1</Size></Contents>"
	    "</ListBucketResult>";
	struct seen s = { .n = 0, .stop_at = 2 };
	char token[16], err[256];
	int trunc;

	(void)state;
	assert_int_equal(parse(xml, &s, &trunc, token, sizeof(token), err,
	    sizeof(err)), 7);
	assert_int_equal(s.n, 2);
}

static void
test_segment_names(void **state)
{
	(void)state;
	assert_int_equal(auditship_name_ok(
	    "audit-000000000001-000000000042.jsonl"), 1);
	assert_int_equal(auditship_name_ok(
	    "audit-999999999999-000000000000.jsonl"), 1);
	assert_int_equal(auditship_name_ok(
	    "audit-000000000001-000000000042.jsonl.torn"), 0);
	assert_int_equal(auditship_name_ok(
	    "audit-00000000001-000000000042.jsonl"), 0);
	assert_int_equal(auditship_name_ok(
	    "audit-00000000001x-000000000042.jsonl"), 0);
	assert_int_equal(auditship_name_ok(
	    "audit-000000000001_000000000042.jsonl"), 0);
	assert_int_equal(auditship_name_ok(
	    "audit-000000000001-000000000042.json"), 0);
	assert_int_equal(auditship_name_ok("audit.jsonl"), 0);
	assert_int_equal(auditship_name_ok(""), 0);
	assert_int_equal(auditship_name_ok(
	    "../../000000000001-000000000042.jsonl"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_escaped_and_utf8),
		cmocka_unit_test(test_truncated_with_token),
		cmocka_unit_test(test_empty_listing),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_long_key),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_segment_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
