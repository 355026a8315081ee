/*
 * test_sigv4.c - sigv4_sign against the worked examples of AWS's "Signature
 * Calculations for the Authorization Header: Transferring Payload in a
 * Single Chunk" page (S3, us-east-1, 20130524T000000Z, examplebucket), and
 * s3_uri_encode. The docs' access key id is replaced by AKIDEXAMPLE: the
 * signature does not depend on it, only the Credential= field does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "uploader/store.h"

#define EMPTY_SHA	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define DATE		"20130524T000000Z"
#define HOST		"host:examplebucket.s3.amazonaws.com"
#define CRED		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20130524/us-east-1/s3/aws4_request,"

static struct aws_creds creds;

static int
setup(void **state)
{
	memset(&creds, 0, sizeof(creds));
	snprintf(creds.access_key, sizeof(creds.access_key), "%s", "AKIDEXAMPLE");
	snprintf(creds.secret_key, sizeof(creds.secret_key), "%s",
	    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
	return 0;
}

static void
test_get_object_range(void **state)
{
	/* Unsorted on purpose: the signer sorts. */
	const char *h[] = {
		"x-amz-date:" DATE,
		"range:bytes=0-9",
		HOST,
		"x-amz-content-sha256:" EMPTY_SHA,
	};
	char auth[1024];

	assert_int_equal(sigv4_sign(&creds, "us-east-1", "GET", "/test.txt", "",
	    h, 4, EMPTY_SHA, DATE, auth, sizeof(auth)), 0);
	assert_string_equal(auth, CRED
	    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
	    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void
test_put_object(void **state)
{
	const char *sha =
	    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
	const char *h[] = {
		"date:Fri, 24 May 2013 00:00:00 GMT",
		HOST,
		"x-amz-date:" DATE,
		"x-amz-storage-class:REDUCED_REDUNDANCY",
		"x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
	};
	char auth[1024], uri[64];

	/* "test$file.text": the canonical URI is the encoded path. */
	assert_int_equal(s3_uri_encode("/test$file.text", uri, sizeof(uri), 1), 0);
	assert_string_equal(uri, "/test%24file.text");
	assert_int_equal(sigv4_sign(&creds, "us-east-1", "PUT", uri, "",
	    h, 5, sha, DATE, auth, sizeof(auth)), 0);
	assert_string_equal(auth, CRED
	    "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
	    "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void
test_get_lifecycle(void **state)
{
	const char *h[] = {
		HOST, "x-amz-content-sha256:" EMPTY_SHA, "x-amz-date:" DATE,
	};
	char auth[1024];

	assert_int_equal(sigv4_sign(&creds, "us-east-1", "GET", "/",
	    "lifecycle=", h, 3, EMPTY_SHA, DATE, auth, sizeof(auth)), 0);
	assert_string_equal(auth, CRED
	    "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
	    "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

static void
test_list_objects(void **state)
{
	const char *h[] = {
		"x-amz-date:" DATE, "x-amz-content-sha256:" EMPTY_SHA, HOST,
	};
	char auth[1024];

	assert_int_equal(sigv4_sign(&creds, "us-east-1", "GET", "/",
	    "max-keys=2&prefix=J", h, 3, EMPTY_SHA, DATE, auth, sizeof(auth)), 0);
	assert_string_equal(auth, CRED
	    "SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
	    "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

static void
test_value_whitespace(void **state)
{
	/* Leading/trailing blanks and inner runs do not change the signature. */
	const char *a[] = { HOST, "x-amz-date:" DATE, "x-amz-meta-n:a b" };
	const char *b[] = { HOST, "x-amz-date:" DATE, "x-amz-meta-n:  a   b " };
	char sa[1024], sb[1024];

	assert_int_equal(sigv4_sign(&creds, "us-east-1", "PUT", "/k", "", a, 3,
	    EMPTY_SHA, DATE, sa, sizeof(sa)), 0);
	assert_int_equal(sigv4_sign(&creds, "us-east-1", "PUT", "/k", "", b, 3,
	    EMPTY_SHA, DATE, sb, sizeof(sb)), 0);
	assert_string_equal(sa, sb);
}

static void
test_refused(void **state)
{
	const char *upper[] = { "Host:examplebucket.s3.amazonaws.com" };
	const char *dup[] = { HOST, HOST };
	const char *nocolon[] = { "host" };
	const char *ok[] = { HOST };
	char auth[1024];

	assert_int_equal(sigv4_sign(&creds, "us-east-1", "GET", "/", "", upper,
	    1, EMPTY_SHA, DATE, auth, sizeof(auth)), -1);
	assert_int_equal(sigv4_sign(&creds, "us-east-1", "GET", "/", "", dup,
	    2, EMPTY_SHA, DATE, auth, sizeof(auth)), -1);
	assert_int_equal(sigv4_sign(&creds, "us-east-1", "GET", "/", "", nocolon,
	    1, EMPTY_SHA, DATE, auth, sizeof(auth)), -1);
	assert_int_equal(sigv4_sign(&creds, "us-east-1", "GET", "/", "", ok,
	    1, EMPTY_SHA, "2013-05-24", auth, sizeof(auth)), -1);
	/* Too small an output buffer fails rather than truncating. */
	assert_int_equal(sigv4_sign(&creds, "us-east-1", "GET", "/", "", ok,
	    1, EMPTY_SHA, DATE, auth, 40), -1);
	assert_string_equal(auth, "");
}

static void
test_uri_encode(void **state)
{
	char out[128];

	assert_int_equal(s3_uri_encode("a b", out, sizeof(out), 1), 0);
	assert_string_equal(out, "a%20b");
	assert_int_equal(s3_uri_encode("a+b", out, sizeof(out), 1), 0);
	assert_string_equal(out, "a%2Bb");
	assert_int_equal(s3_uri_encode("dir/sub/f.txt", out, sizeof(out), 1), 0);
	assert_string_equal(out, "dir/sub/f.txt");
	assert_int_equal(s3_uri_encode("dir/sub", out, sizeof(out), 0), 0);
	assert_string_equal(out, "dir%2Fsub");
	/* UTF-8 bytes one by one, upper-case hex: "é" and "€". */
	assert_int_equal(s3_uri_encode("caf\xc3\xa9/\xe2\x82\xac", out,
	    sizeof(out), 1), 0);
	assert_string_equal(out, "caf%C3%A9/%E2%82%AC");
	assert_int_equal(s3_uri_encode("A-Z_a.z~09", out, sizeof(out), 1), 0);
	assert_string_equal(out, "A-Z_a.z~09");
	assert_int_equal(s3_uri_encode("%=&?#*'()!:@,;$", out, sizeof(out), 1), 0);
	assert_string_equal(out,
	    "%25%3D%26%3F%23%2A%27%28%29%21%3A%40%2C%3B%24");
	/* Not double-encoded: an already-encoded key is just bytes. */
	assert_int_equal(s3_uri_encode("a%20b", out, sizeof(out), 1), 0);
	assert_string_equal(out, "a%2520b");
	/* Truncation: "a b" needs 6 bytes. */
	assert_int_equal(s3_uri_encode("a b", out, 6, 1), 0);
	assert_int_equal(s3_uri_encode("a b", out, 5, 1), -1);
	assert_int_equal(s3_uri_encode("ab", out, 2, 1), -1);
	assert_int_equal(s3_uri_encode("", out, 1, 1), 0);
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_object_range),
		cmocka_unit_test(test_put_object),
		cmocka_unit_test(test_get_lifecycle),
		cmocka_unit_test(test_list_objects),
		cmocka_unit_test(test_value_whitespace),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_uri_encode),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
