/*
 * test_s3xml.c - the uploader's XML reader and writer (uploader/s3xml.c):
 * paths and decoded text, DOCTYPEs and entity bombs refused, truncated and
 * over-long input, the CompleteMultipartUpload body's escaping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "uploader/s3xml.h"

struct rec {
	char	paths[16][128];
	char	texts[16][256];
	int	n;
	int	stop_at;
};

static int
record(void *arg, const char *path, const char *text, size_t len)
{
	struct rec *r = arg;

	assert_int_equal(strlen(text), len);
	if (r->n < 16) {
		snprintf(r->paths[r->n], sizeof(r->paths[0]), "%s", path);
		snprintf(r->texts[r->n], sizeof(r->texts[0]), "%s", text);
	}
	r->n++;
	return r->stop_at != 0 && r->n == r->stop_at ? 5 : 0;
}

static int
walk(const char *xml, struct rec *r, char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	return s3xml_walk(xml, strlen(xml), record, r, err, errlen);
}

static void
test_paths_and_entities(void **state)
{
	static const char xml[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/"
	    "2006-03-01/\"><Upload><Key>in/a&amp;b &lt;c&gt; &quot;q&quot; "
	    "&apos;s&apos;.csv</Key><UploadId>id&#x2B;1</UploadId></Upload>"
	    "<s3:Upload><Key>in/r\xc3\xa9sum\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac"
	    "</Key></s3:Upload></ListMultipartUploadsResult>";
	struct rec r;
	char err[256];

	(void)state;
	assert_int_equal(walk(xml, &r, err, sizeof(err)), 0);
	assert_int_equal(r.n, 6);
	assert_string_equal(r.paths[0], "ListMultipartUploadsResult/Upload/Key");
	assert_string_equal(r.texts[0], "in/a&b <c> \"q\" 's'.csv");
	assert_string_equal(r.paths[1],
	    "ListMultipartUploadsResult/Upload/UploadId");
	assert_string_equal(r.texts[1], "id+1");
	assert_string_equal(r.paths[2], "ListMultipartUploadsResult/Upload");
	assert_string_equal(r.texts[3],
	    "in/r\xc3\xa9sum\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac");
	assert_string_equal(r.paths[4], "ListMultipartUploadsResult/Upload");
	assert_string_equal(r.paths[5], "ListMultipartUploadsResult");
}

static void
test_match_and_text(void **state)
{
	static const char err_body[] = "<?xml version=\"1.0\"?><Error><Code>"
	    "NoSuchUpload</Code><Message>The upload &amp; its parts are gone"
	    "</Message><Resource>/b/k</Resource></Error>";
	char out[64];
	int whole = -1;

	(void)state;
	assert_true(s3xml_match("Error/Code", "Code"));
	assert_true(s3xml_match("Error/Code", "Error/Code"));
	assert_true(s3xml_match("Error/Code", "/Error/Code"));
	assert_false(s3xml_match("Error/Code", "/Code"));
	assert_false(s3xml_match("Error/XCode", "Code"));
	assert_false(s3xml_match("ErrorResponse/Error/Code", "/Error/Code"));
	assert_true(s3xml_match("ErrorResponse/Error/Code", "Error/Code"));
	assert_false(s3xml_match("Code", "Error/Code"));
	/* "*": any one name (roots differ: S3 ListPartsResult, moto
	 * ListPartsResponse) */
	assert_true(s3xml_match("ListPartsResponse/Part/ETag", "/*/Part/ETag"));
	assert_true(s3xml_match("ListPartsResult/Part/ETag", "/*/Part/ETag"));
	assert_false(s3xml_match("R/X/Part/ETag", "/*/Part/ETag"));
	assert_false(s3xml_match("R/Part", "/*/Part/ETag"));
	assert_true(s3xml_match("R/X/Part/ETag", "*/Part/ETag"));
	assert_false(s3xml_match("R/Parts/ETag", "/*/Part/ETag"));
	assert_true(s3xml_match("GetBucketVersioningResponse/Status",
	    "/*/Status"));
	assert_false(s3xml_match("Status", "/*/Status"));
	/* blanks before the declaration (a slow completion kept alive) */
	assert_int_equal(s3xml_text("\n \n<?xml version=\"1.0\"?><Error><Code>"
	    "InternalError</Code></Error>", 65, "/Error/Code", out,
	    sizeof(out), &whole), 1);
	assert_string_equal(out, "InternalError");
	assert_int_equal(whole, 1);

	assert_int_equal(s3xml_text(err_body, strlen(err_body), "/Error/Code",
	    out, sizeof(out), &whole), 1);
	assert_string_equal(out, "NoSuchUpload");
	assert_int_equal(whole, 1);
	assert_int_equal(s3xml_text(err_body, strlen(err_body), "Message",
	    out, sizeof(out), NULL), 1);
	assert_string_equal(out, "The upload & its parts are gone");
	assert_int_equal(s3xml_text(err_body, strlen(err_body), "UploadId",
	    out, sizeof(out), NULL), 0);
	assert_string_equal(out, "");
	/* does not fit: -1, never cut */
	assert_int_equal(s3xml_text(err_body, strlen(err_body), "Message",
	    out, 8, NULL), -1);
	assert_string_equal(out, "");
	/* a body cut short still says its code, and that it is not whole */
	assert_int_equal(s3xml_text(err_body, 60, "Code", out, sizeof(out),
	    &whole), 1);
	assert_string_equal(out, "NoSuchUpload");
	assert_int_equal(whole, 0);
	/* the tag inside text or a comment is not an element */
	assert_int_equal(s3xml_text("<r><!-- <Code>X</Code> --><M>&lt;Code&gt;"
	    "Y&lt;/Code&gt;</M></r>", 54, "Code", out, sizeof(out), NULL), 0);
}

static void
test_refused(void **state)
{
	static const char *const bad[] = {
		/* billion laughs */
		"<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
		"<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
		"<!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">]>"
		"<Error><Code>&lol2;</Code></Error>",
		/* external entity */
		"<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM "
		"\"file:///etc/passwd\">]><Error><Code>&x;</Code></Error>",
		/* parameter entity, external DTD */
		"<!DOCTYPE r SYSTEM \"http://127.0.0.1:1/x.dtd\"><r/>",
		"<!DOCTYPE r [<!ENTITY % p SYSTEM \"http://127.0.0.1:1/\"> %p;]>"
		"<r/>",
	};
	struct rec r;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (walk(bad[i], &r, err, sizeof(err)) != -1 ||
		    strstr(err, "DOCTYPE") == NULL || r.n != 0)
			fail_msg("case %zu: not refused (%d elements, \"%s\")",
			    i, r.n, err);
	}
	/* an undeclared entity is an error, not passed through */
	assert_int_equal(walk("<r><k>&lol;</k></r>", &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not well-formed"));
	assert_int_equal(r.n, 0);
}

static void
test_truncated_and_limits(void **state)
{
	static const char doc[] = "<ListPartsResult><Part><PartNumber>1"
	    "</PartNumber><ETag>&quot;e1&quot;</ETag></Part><Part><PartNumber>2"
	    "</PartNumber><ETag>&quot;e2&quot;</ETag></Part></ListPartsResult>";
	struct rec r;
	char err[256], *big;
	size_t i, n = 2 * S3XML_TEXT_MAX;

	(void)state;
	/* every cut is an error; what ended before it was delivered */
	for (i = 0; i < sizeof(doc) - 1; i++) {
		memset(&r, 0, sizeof(r));
		if (s3xml_walk(doc, i, record, &r, err, sizeof(err)) != -1)
			fail_msg("cut at %zu: accepted", i);
		assert_true(r.n <= 6);
	}
	memset(&r, 0, sizeof(r));
	assert_int_equal(s3xml_walk(doc, 83, record, &r, err, sizeof(err)), -1);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.texts[1], "\"e1\"");
	/* the callback stops the walk */
	memset(&r, 0, sizeof(r));
	r.stop_at = 2;
	assert_int_equal(s3xml_walk(doc, sizeof(doc) - 1, record, &r, err,
	    sizeof(err)), 5);
	assert_int_equal(r.n, 2);
	/* too long text, too deep, not UTF-8, empty */
	big = malloc(n + 32);
	assert_non_null(big);
	memcpy(big, "<r>", 3);
	memset(big + 3, 'a', n);
	memcpy(big + 3 + n, "</r>", 5);
	assert_int_equal(walk(big, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too long"));
	for (i = 0; i < S3XML_DEPTH_MAX + 1; i++) {
		memcpy(big + 3 * i, "<a>", 3);
		memcpy(big + 3 * (S3XML_DEPTH_MAX + 1) + 4 * i, "</a>", 4);
	}
	big[7 * (S3XML_DEPTH_MAX + 1)] = '\0';
	assert_int_equal(walk(big, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too deep"));
	free(big);
	assert_int_equal(walk("<r>\xff\xfe</r>", &r, err, sizeof(err)), -1);
	assert_int_equal(walk("", &r, err, sizeof(err)), -1);
	assert_int_equal(walk("<a></a><b></b>", &r, err, sizeof(err)), -1);
}

static void
test_escape(void **state)
{
	char out[32] = "k=";

	(void)state;
	assert_int_equal(s3xml_escape_cat(out, sizeof(out), "a&<>\"'z"), 0);
	assert_string_equal(out, "k=a&amp;&lt;&gt;&quot;&apos;z");
	/* does not fit: left as it was */
	assert_int_equal(s3xml_escape_cat(out, sizeof(out), "&"), -1);
	assert_string_equal(out, "k=a&amp;&lt;&gt;&quot;&apos;z");
}

/* What S3 reads back from the body: each part's ETag and checksum. */
struct parts_back {
	char	etag[4][64];
	char	cs[4][64];
	char	num[4][8];
	int	n;
};

static int
part_back(void *arg, const char *path, const char *text, size_t len)
{
	struct parts_back *p = arg;

	(void)len;
	if (p->n >= 4)
		return 1;
	if (strcmp(path, "CompleteMultipartUpload/Part/ETag") == 0)
		snprintf(p->etag[p->n], sizeof(p->etag[0]), "%s", text);
	else if (strcmp(path, "CompleteMultipartUpload/Part/ChecksumSHA256") ==
	    0)
		snprintf(p->cs[p->n], sizeof(p->cs[0]), "%s", text);
	else if (strcmp(path, "CompleteMultipartUpload/Part/PartNumber") == 0)
		snprintf(p->num[p->n], sizeof(p->num[0]), "%s", text);
	else if (strcmp(path, "CompleteMultipartUpload/Part") == 0)
		p->n++;
	return 0;
}

static void
test_complete_body(void **state)
{
	const struct s3xml_part parts[] = {
		{ 1, "\"9b2cf535f27731c974343645a3985328\"",
		  "wDbLt1U6kJ+LiHfURhkkMH8n7LZs/5KO7q/VacOIfik=" },
		{ 2, "e2-unquoted", "abc/+=" },
		{ 3, "\"odd&<tag>'\"", "x" },
	};
	struct parts_back back;
	char err[256], *b;
	size_t len;

	(void)state;
	b = s3xml_complete_body(parts, 3, &len);
	assert_non_null(b);
	assert_int_equal(strlen(b), len);
	/* quotes are entities, never raw inside the element */
	assert_non_null(strstr(b, "<Part><PartNumber>1</PartNumber><ETag>&quot;"
	    "9b2cf535f27731c974343645a3985328&quot;</ETag><ChecksumSHA256>"
	    "wDbLt1U6kJ+LiHfURhkkMH8n7LZs/5KO7q/VacOIfik=</ChecksumSHA256>"
	    "</Part>"));
	assert_null(strstr(b, ">\""));
	assert_non_null(strstr(b, "&quot;odd&amp;&lt;tag&gt;&apos;&quot;"));
	assert_int_equal(strncmp(b, "<CompleteMultipartUpload xmlns=\"http://"
	    "s3.amazonaws.com/doc/2006-03-01/\">", 67), 0);
	/* and it reads back as what was meant */
	memset(&back, 0, sizeof(back));
	assert_int_equal(s3xml_walk(b, len, part_back, &back, err,
	    sizeof(err)), 0);
	assert_int_equal(back.n, 3);
	assert_string_equal(back.num[1], "2");
	assert_string_equal(back.etag[0],
	    "\"9b2cf535f27731c974343645a3985328\"");
	assert_string_equal(back.etag[1], "\"e2-unquoted\"");
	assert_string_equal(back.etag[2], "\"odd&<tag>'\"");
	assert_string_equal(back.cs[1], "abc/+=");
	free(b);
	/* an empty ETag or no parts: no body */
	assert_null(s3xml_complete_body(parts, 0, &len));
	{
		const struct s3xml_part empty[] = { { 1, "\"\"", "x" } };

		assert_null(s3xml_complete_body(empty, 1, &len));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths_and_entities),
		cmocka_unit_test(test_match_and_text),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_truncated_and_limits),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_complete_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
