/*
 * test_creds.c - the credential chain's pieces: the INI reader of the AWS
 * shared files (sections, profiles, comments, blanks, bounds), the IMDS
 * credentials document, the environment, and the shared-file lookup with
 * AWS_PROFILE; creds_refresh telling new credentials from the same again;
 * plus store_checksum_matches (plain and multipart "-N").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uploader/store.h"

static const char ini[] =
    "# comment\n"
    "[default]\n"
    "aws_access_key_id = AKIADEFAULT\n"
    "aws_secret_access_key=sec/ret+default\n"
    "\n"
    "; another comment\n"
    "[ profile gw ]\r\n"
    "  aws_access_key_id   =   AKIAGW  \r\n"
    "region = eu-west-1\n"
    "[gw]\n"
    "aws_access_key_id = AKIAGW2\n"
    "[broken\n"
    "aws_access_key_id = NOPE\n";

static void
test_ini_sections(void **state)
{
	char v[64];

	assert_int_equal(ini_get(ini, strlen(ini), "default", "aws_access_key_id",
	    v, sizeof(v)), 1);
	assert_string_equal(v, "AKIADEFAULT");
	assert_int_equal(ini_get(ini, strlen(ini), "default",
	    "aws_secret_access_key", v, sizeof(v)), 1);
	assert_string_equal(v, "sec/ret+default");
	assert_int_equal(ini_get(ini, strlen(ini), "profile gw",
	    "aws_access_key_id", v, sizeof(v)), 1);
	assert_string_equal(v, "AKIAGW");
	assert_int_equal(ini_get(ini, strlen(ini), "gw", "aws_access_key_id", v,
	    sizeof(v)), 1);
	assert_string_equal(v, "AKIAGW2");
	/* a key of another section, a missing section, a broken header */
	assert_int_equal(ini_get(ini, strlen(ini), "default", "region", v,
	    sizeof(v)), 0);
	assert_int_equal(ini_get(ini, strlen(ini), "nosuch", "aws_access_key_id",
	    v, sizeof(v)), 0);
	assert_int_equal(ini_get(ini, strlen(ini), "broken", "aws_access_key_id",
	    v, sizeof(v)), 0);
	assert_string_equal(v, "");
}

static void
test_ini_bounds(void **state)
{
	char v[8], *big;
	size_t n = 5000;

	/* a value longer than the buffer */
	assert_int_equal(ini_get(ini, strlen(ini), "default", "aws_access_key_id",
	    v, sizeof(v)), -1);
	/* not NUL-terminated: only len bytes are read */
	assert_int_equal(ini_get("[a]\nk=vvvv", 8, "a", "k", v, sizeof(v)), 1);
	assert_string_equal(v, "vv");
	assert_int_equal(ini_get("", 0, "a", "k", v, sizeof(v)), 0);
	/* an overlong line */
	big = malloc(n + 16);
	assert_non_null(big);
	memcpy(big, "[a]\nk=", 6);
	memset(big + 6, 'x', n);
	assert_int_equal(ini_get(big, n + 6, "a", "k", v, sizeof(v)), -1);
	free(big);
}

static void
test_imds_doc(void **state)
{
	struct aws_creds c;

	assert_int_equal(creds_parse_imds("{\"Code\":\"Success\",\"AccessKeyId\":"
	    "\"ASIA1\",\"SecretAccessKey\":\"s\",\"Token\":\"t\",\"Expiration\":"
	    "\"2030-01-02T03:04:05Z\"}", &c), 0);
	assert_string_equal(c.access_key, "ASIA1");
	assert_string_equal(c.secret_key, "s");
	assert_string_equal(c.session_token, "t");
	assert_int_equal(c.expires_ms, 1893553445000LL);
	assert_int_equal(creds_parse_imds("{\"Code\":\"Failure\",\"AccessKeyId\":"
	    "\"a\",\"SecretAccessKey\":\"s\"}", &c), -1);
	assert_string_equal(c.access_key, "");
	assert_int_equal(creds_parse_imds("{\"AccessKeyId\":\"a\"}", &c), -1);
	assert_int_equal(creds_parse_imds("not json", &c), -1);
	assert_int_equal(creds_parse_imds("{\"AccessKeyId\":\"a\",\"SecretAccessKey"
	    "\":\"s\",\"Expiration\":\"soon\"}", &c), -1);
}

static void
test_chain_env_then_file(void **state)
{
	struct aws_creds c;
	char path[] = "/tmp/test_creds.XXXXXX";
	FILE *f;
	int fd;

	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	fputs("[default]\naws_access_key_id=FILEDEF\naws_secret_access_key=x\n"
	    "[p2]\naws_access_key_id=FILEP2\naws_secret_access_key=y\n"
	    "aws_session_token=tok\n", f);
	fclose(f);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	assert_int_equal(creds_init(), 0);
	assert_int_equal(creds_get(&c), 0);
	assert_string_equal(c.access_key, "ENVKEY");
	assert_string_equal(creds_source(), "environment");
	/* Refreshing finds the same ones: 1 (nothing fresher). */
	assert_int_equal(creds_refresh(), 1);
	/* Other ones in the environment are new. */
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret2", 1);
	assert_int_equal(creds_refresh(), 0);
	assert_int_equal(creds_refresh(), 1);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	setenv("AWS_PROFILE", "p2", 1);
	assert_int_equal(creds_refresh(), 0);
	assert_int_equal(creds_get(&c), 0);
	assert_string_equal(c.access_key, "FILEP2");
	assert_string_equal(c.session_token, "tok");
	assert_string_equal(creds_source(), "shared file");
	assert_int_equal(creds_refresh(), 1);
	setenv("AWS_PROFILE", "default", 1);
	assert_int_equal(creds_refresh(), 0);
	assert_int_equal(creds_get(&c), 0);
	assert_string_equal(c.access_key, "FILEDEF");
	setenv("AWS_PROFILE", "nosuch", 1);
	assert_int_equal(creds_refresh(), -1);
	unlink(path);
	creds_wipe(&c);
}

static void
test_checksum_matches(void **state)
{
	assert_true(store_checksum_matches("abc=", "abc=", NULL));
	assert_false(store_checksum_matches("abd=", "abc=", NULL));
	assert_false(store_checksum_matches("", "abc=", NULL));
	assert_true(store_checksum_matches("xyz=-3", "abc=", "xyz=-3"));
	assert_true(store_checksum_matches("xyz=", "abc=", "xyz=-3"));	/* moto */
	assert_false(store_checksum_matches("xyz=-4", NULL, "xyz=-3"));
	assert_false(store_checksum_matches("xyq=", "abc=", "xyz=-3"));
	assert_false(store_checksum_matches("abc=-3", NULL, "xyz=-3"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ini_sections),
		cmocka_unit_test(test_ini_bounds),
		cmocka_unit_test(test_imds_doc),
		cmocka_unit_test(test_chain_env_then_file),
		cmocka_unit_test(test_checksum_matches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
