/*
 * test_s3names.c - uploader/s3names.c: S3 bucket names, key prefixes,
 * endpoints and region names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "uploader/s3names.h"

static const char *
bucket(const char *b)
{
	return s3_bucket_problem(b, strlen(b));
}

static void
test_bucket(void **state)
{
	static const char *const good[] = {
		"abc", "my-bucket", "my.bucket.2024", "0bucket9",
		"a23456789012345678901234567890123456789012345678901234567890123",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (bucket(good[i]) != NULL)
			fail_msg("\"%s\" refused: %s", good[i], bucket(good[i]));
	assert_non_null(strstr(bucket("ab"), "3 to 63"));
	assert_non_null(strstr(bucket(""), "3 to 63"));
	assert_non_null(strstr(bucket("a234567890123456789012345678901234567890"
	    "123456789012345678901234"), "3 to 63"));
	assert_non_null(strstr(bucket("My-Bucket"), "lower-case"));
	assert_non_null(strstr(bucket("my_bucket"), "lower-case"));
	assert_non_null(strstr(bucket("-bucket"), "begin and end"));
	assert_non_null(strstr(bucket("bucket."), "begin and end"));
	assert_non_null(strstr(bucket("my..bucket"), "must not contain"));
	assert_non_null(strstr(bucket("my.-bucket"), "must not contain"));
	assert_non_null(strstr(bucket("my-.bucket"), "must not contain"));
	assert_non_null(strstr(bucket("192.168.1.1"), "IP address"));
	assert_non_null(strstr(bucket("xn--bucket"), "reserves"));
	assert_non_null(strstr(bucket("sthree-bucket"), "reserves"));
	assert_non_null(strstr(bucket("bucket-s3alias"), "reserves"));
	assert_non_null(strstr(bucket("bucket--ol-s3"), "reserves"));
	/* only n bytes are looked at: the rest of an s3:// URL */
	assert_null(s3_bucket_problem("my-bucket/some/prefix", 9));
	assert_non_null(s3_bucket_problem("my-bucket/some/prefix", 10));
}

static void
test_prefix(void **state)
{
	char big[600];

	(void)state;
	assert_null(s3_prefix_problem(""));
	assert_null(s3_prefix_problem("in"));
	assert_null(s3_prefix_problem("in/acme/"));
	assert_null(s3_prefix_problem("a.b/..c/"));
	assert_non_null(strstr(s3_prefix_problem("/in"), "start with '/'"));
	assert_non_null(strstr(s3_prefix_problem("in//x"), "\"//\""));
	assert_non_null(strstr(s3_prefix_problem("in/../x"), "segments"));
	assert_non_null(strstr(s3_prefix_problem("in/."), "segments"));
	assert_non_null(strstr(s3_prefix_problem("in\\x"), "backslashes"));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_non_null(strstr(s3_prefix_problem(big), "512"));
}

static void
test_endpoint(void **state)
{
	static const struct {
		const char	*e;
		size_t		 len;
	} good[] = {
		{ "http://127.0.0.1:9000", 21 },
		{ "http://127.0.0.1:9000/", 21 },
		{ "https://s3.eu-central-1.amazonaws.com", 37 },
		{ "http://[::1]:9000", 17 },
		{ "https://[2001:db8::1]", 21 },
		{ "http://minio", 12 },
	};
	static const struct {
		const char	*e;
		const char	*why;
	} bad[] = {
		{ "ftp://host", "must start with http:// or https://" },
		{ "127.0.0.1:9000", "must start with http:// or https://" },
		{ "http://host/bucket", "without a path or query" },
		{ "http://host?x=1", "without a path or query" },
		{ "http://host#x", "without a path or query" },
		{ "http://", "has no valid host" },
		{ "http://:9000", "has no valid host" },
		{ "http://-host-", "has no valid host" },
		{ "http://[::1", "has no valid host" },
		{ "http://[nothex]:9000", "has no valid host" },
		{ "http://[::1]x", "has no valid host" },
		{ "http://host:0", "has a bad port" },
		{ "http://host:65536", "has a bad port" },
		{ "http://host:", "has a bad port" },
		{ "http://host:12x", "has a bad port" },
		{ "http://[::1]:", "has a bad port" },
	};
	const char *why;
	size_t i, len;
	int secret;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if ((why = s3_endpoint_problem(good[i].e, &len, &secret)) !=
		    NULL)
			fail_msg("\"%s\" refused: %s", good[i].e, why);
		assert_int_equal(len, good[i].len);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = s3_endpoint_problem(bad[i].e, &len, &secret);
		if (why == NULL || strstr(why, bad[i].why) == NULL)
			fail_msg("\"%s\": %s, want %s", bad[i].e,
			    why != NULL ? why : "accepted", bad[i].why);
		assert_int_equal(secret, 0);
	}
	/* user:password@ is refused and flagged as not to be echoed */
	why = s3_endpoint_problem("https://AKIA:s3cret@host", &len, &secret);
	assert_non_null(why);
	assert_non_null(strstr(why, "user:password@"));
	assert_null(strstr(why, "s3cret"));
	assert_int_equal(secret, 1);
}

static void
test_region(void **state)
{
	char big[80];

	(void)state;
	assert_null(s3_region_problem("us-east-1"));
	assert_null(s3_region_problem("eu-central-1"));
	assert_null(s3_region_problem("garage_local.1"));
	assert_non_null(s3_region_problem(""));
	assert_non_null(s3_region_problem("us east 1"));
	assert_non_null(s3_region_problem("us-east-1/"));
	memset(big, 'a', 65);
	big[65] = '\0';
	assert_non_null(s3_region_problem(big));
	big[64] = '\0';
	assert_null(s3_region_problem(big));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_endpoint),
		cmocka_unit_test(test_region),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
