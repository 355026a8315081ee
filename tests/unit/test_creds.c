/*
 * test_creds.c - the credential chain's pieces: the INI reader of the AWS
 * shared files (sections, profiles, comments, blanks, bounds), the IMDS
 * credentials document, the environment, and the shared-file lookup with
 * AWS_PROFILE; creds_refresh telling new credentials from the same again;
 * plus store_checksum_matches (plain and multipart "-N"); credential_process
 * (splitting its command line, its JSON, exit status, output bound and
 * timeout), STS XML replies (expat, no entities), the container URI rules,
 * and AssumeRole / credential_process / container through the chain.
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

#include "common/util.h"
#include "uploader/creds.h"
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
test_time(void **state)
{
	int64_t ms;

	assert_int_equal(creds_parse_time("2030-01-02T03:04:05Z", &ms), 0);
	assert_int_equal(ms, 1893553445000LL);
	assert_int_equal(creds_parse_time("2030-01-02T03:04:05.123456Z", &ms), 0);
	assert_int_equal(ms, 1893553445000LL);
	assert_int_equal(creds_parse_time("2030-01-02T05:04:05+02:00", &ms), 0);
	assert_int_equal(ms, 1893553445000LL);
	assert_int_equal(creds_parse_time("2030-01-02T03:04:05", &ms), 0);
	assert_int_equal(creds_parse_time("2030-13-02T03:04:05Z", &ms), -1);
	assert_int_equal(creds_parse_time("soon", &ms), -1);
	assert_int_equal(creds_parse_time("2030-01-02T03:04:05Zjunk", &ms), -1);
	assert_int_equal(creds_parse_time(NULL, &ms), -1);
}

/* Splits line and joins the words with '|'. */
static const char *
split(const char *line)
{
	static char out[512];
	char **argv, err[128];
	size_t i;

	if (creds_argv_split(line, &argv, err, sizeof(err)) != 0) {
		snprintf(out, sizeof(out), "ERR %s", err);
		return out;
	}
	out[0] = '\0';
	for (i = 0; argv[i] != NULL; i++) {
		if (i > 0)
			(void)xstrlcat(out, "|", sizeof(out));
		(void)xstrlcat(out, argv[i], sizeof(out));
	}
	creds_argv_free(argv);
	return out;
}

static void
test_argv_split(void **state)
{
	/* the answers of Python's shlex.split (what the AWS CLI uses) */
	assert_string_equal(split("/usr/bin/helper --arg  x"),
	    "/usr/bin/helper|--arg|x");
	assert_string_equal(split("  a\tb\n"), "a|b");
	assert_string_equal(split("h 'with space' \"dq $HOME\""),
	    "h|with space|dq $HOME");
	assert_string_equal(split("h 'a\\b' \"c\\\"d\\\\e\\f\""),
	    "h|a\\b|c\"d\\e\\f");
	assert_string_equal(split("h a\\ b \\'q"), "h|a b|'q");
	assert_string_equal(split("h x'y'\"z\" '' end"), "h|xyz||end");
	assert_string_equal(split("h ; rm -rf / | cat"), "h|;|rm|-rf|/|||cat");
	assert_string_equal(split("h 'open"), "ERR has an unclosed ' quote");
	assert_string_equal(split("h \"open"), "ERR has an unclosed \" quote");
	assert_string_equal(split("h \\"),
	    "ERR ends in a backslash that escapes nothing");
	assert_string_equal(split("   "), "ERR is empty");
}

#define GOOD_JSON "{\"Version\": 1, \"AccessKeyId\": \"AKIAPROC\", " \
    "\"SecretAccessKey\": \"procsecret\", \"SessionToken\": \"ptok\", " \
    "\"Expiration\": \"2030-01-02T03:04:05Z\"}"

static void
test_process_json(void **state)
{
	struct aws_creds c;
	char err[256];
	int64_t now = 1700000000000LL;

	assert_int_equal(creds_parse_process(GOOD_JSON, now, &c, err,
	    sizeof(err)), 0);
	assert_string_equal(c.access_key, "AKIAPROC");
	assert_string_equal(c.secret_key, "procsecret");
	assert_string_equal(c.session_token, "ptok");
	assert_int_equal(c.expires_ms, 1893553445000LL);
	/* long-term keys: no token, no expiry */
	assert_int_equal(creds_parse_process("{\"Version\":1,\"AccessKeyId\":"
	    "\"A\",\"SecretAccessKey\":\"S\"}", now, &c, err, sizeof(err)), 0);
	assert_int_equal(c.expires_ms, 0);
	assert_string_equal(c.session_token, "");
	/* expired */
	assert_int_equal(creds_parse_process(GOOD_JSON, 1893553445000LL, &c,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expired at 2030-01-02T03:04:05Z"));
	assert_string_equal(c.access_key, "");
	/* missing or wrong fields */
	assert_int_equal(creds_parse_process("{\"Version\":1,\"AccessKeyId\":"
	    "\"A\"}", now, &c, err, sizeof(err)), -1);
	assert_string_equal(err, "SecretAccessKey is missing");
	assert_int_equal(creds_parse_process("{\"Version\":2,\"AccessKeyId\":"
	    "\"A\",\"SecretAccessKey\":\"S\"}", now, &c, err, sizeof(err)), -1);
	assert_string_equal(err, "its output has no \"Version\": 1");
	assert_int_equal(creds_parse_process("{\"Version\":1,\"AccessKeyId\":"
	    "\"\",\"SecretAccessKey\":\"S\"}", now, &c, err, sizeof(err)), -1);
	assert_int_equal(creds_parse_process("{\"Version\":1,\"AccessKeyId\":"
	    "\"A\",\"SecretAccessKey\":\"S\",\"Expiration\":\"later\"}", now, &c,
	    err, sizeof(err)), -1);
	assert_int_equal(creds_parse_process("Version=1", now, &c, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "its output is not a JSON object");
	/* no secret in any message */
	assert_null(strstr(err, "procsecret"));
}

static void
test_process_run(void **state)
{
	char *out = NULL, err[300];
	int64_t t0;

	assert_int_equal(creds_run_process("printf '%s' 'hello world'", 5000,
	    1024, &out, err, sizeof(err)), 0);
	assert_string_equal(out, "hello world");
	free(out);
	/* no shell: the ; is an argument of echo */
	assert_int_equal(creds_run_process("echo a ; false", 5000, 1024, &out,
	    err, sizeof(err)), 0);
	assert_string_equal(out, "a ; false\n");
	free(out);
	/* a non-zero exit */
	assert_int_equal(creds_run_process("sh -c 'exit 3'", 5000, 1024, &out,
	    err, sizeof(err)), -1);
	assert_null(out);
	assert_non_null(strstr(err, "sh exited with status 3"));
	/* not there */
	assert_int_equal(creds_run_process("/nonexistent/helper", 5000, 1024,
	    &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/helper"));
	/* huge output */
	assert_int_equal(creds_run_process("head -c 1000000 /dev/zero", 5000,
	    CREDPROC_OUT_MAX, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "printed more than 65536 bytes"));
	/* a timeout, also when it closes stdout and lingers */
	t0 = mono_ms();
	assert_int_equal(creds_run_process("sleep 10", 300, 1024, &out, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "did not finish within 300 ms"));
	assert_true(mono_ms() - t0 < 3000);
	t0 = mono_ms();
	assert_int_equal(creds_run_process("sh -c 'exec >&-; sleep 10'", 300,
	    1024, &out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "did not finish within 300 ms"));
	assert_true(mono_ms() - t0 < 3000);
	/* a bad command line */
	assert_int_equal(creds_run_process("helper 'x", 300, 1024, &out, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "the command line has an unclosed ' quote");
}

static const char sts_ok[] =
    "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
    "<AssumeRoleResult><AssumedRoleUser><Arn>arn:aws:sts::1:assumed-role/r/s"
    "</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>"
    "<Credentials><AccessKeyId>ASIASTS</AccessKeyId><SecretAccessKey>"
    "sts/secret+&amp;x</SecretAccessKey><SessionToken>tok==</SessionToken>"
    "<Expiration>2030-01-02T03:04:05Z</Expiration></Credentials>"
    "</AssumeRoleResult></AssumeRoleResponse>";

static void
test_sts_xml(void **state)
{
	struct aws_creds c;
	char err[400], bomb[600];

	assert_int_equal(sts_parse_credentials(sts_ok, strlen(sts_ok), &c, err,
	    sizeof(err)), 0);
	assert_string_equal(c.access_key, "ASIASTS");
	assert_string_equal(c.secret_key, "sts/secret+&x");
	assert_string_equal(c.session_token, "tok==");
	assert_int_equal(c.expires_ms, 1893553445000LL);
	snprintf(bomb, sizeof(bomb), "<ErrorResponse><Error><Type>Sender</Type>"
	    "<Code>AccessDenied</Code><Message>not allowed</Message></Error>"
	    "</ErrorResponse>");
	assert_int_equal(sts_parse_credentials(bomb, strlen(bomb), &c, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "STS error AccessDenied: not allowed");
	/* entities are refused, not expanded */
	snprintf(bomb, sizeof(bomb), "<?xml version=\"1.0\"?><!DOCTYPE r ["
	    "<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;\">]>"
	    "<r><Credentials><AccessKeyId>&b;</AccessKeyId></Credentials></r>");
	assert_int_equal(sts_parse_credentials(bomb, strlen(bomb), &c, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "DOCTYPE"));
	/* AccessKeyId outside Credentials does not count */
	snprintf(bomb, sizeof(bomb), "<r><AccessKeyId>A</AccessKeyId>"
	    "<SecretAccessKey>S</SecretAccessKey><SessionToken>T</SessionToken>"
	    "<Expiration>2030-01-02T03:04:05Z</Expiration></r>");
	assert_int_equal(sts_parse_credentials(bomb, strlen(bomb), &c, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "no Credentials"));
	assert_int_equal(sts_parse_credentials("<r><Credentials>", 16, &c, err,
	    sizeof(err)), -1);
	assert_int_equal(sts_parse_credentials(sts_ok, strlen(sts_ok) - 40, &c,
	    err, sizeof(err)), -1);
	assert_string_equal(c.access_key, "");
}

static void
test_container_uri(void **state)
{
	char err[300];

	assert_int_equal(creds_container_uri_ok("http://127.0.0.1:8080/creds",
	    err, sizeof(err)), 0);
	assert_int_equal(creds_container_uri_ok("http://127.3.4.5/c", err,
	    sizeof(err)), 0);
	assert_int_equal(creds_container_uri_ok("http://localhost/c", err,
	    sizeof(err)), 0);
	assert_int_equal(creds_container_uri_ok("http://[::1]:99/c", err,
	    sizeof(err)), 0);
	assert_int_equal(creds_container_uri_ok("http://169.254.170.2/v2/c",
	    err, sizeof(err)), 0);
	assert_int_equal(creds_container_uri_ok("http://169.254.170.23/v1/c",
	    err, sizeof(err)), 0);
	assert_int_equal(creds_container_uri_ok("http://[fd00:ec2::23]/v1/c",
	    err, sizeof(err)), 0);
	assert_int_equal(creds_container_uri_ok("https://creds.example.com/c",
	    err, sizeof(err)), 0);
	assert_int_equal(creds_container_uri_ok("http://creds.example.com/c",
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "use https://"));
	assert_int_equal(creds_container_uri_ok("http://169.254.169.254/c",
	    err, sizeof(err)), -1);
	assert_int_equal(creds_container_uri_ok("http://10.0.0.1/c", err,
	    sizeof(err)), -1);
	assert_int_equal(creds_container_uri_ok("http://127.0.0.1.evil.com/c",
	    err, sizeof(err)), -1);
	assert_int_equal(creds_container_uri_ok("ftp://127.0.0.1/c", err,
	    sizeof(err)), -1);
	assert_int_equal(creds_container_uri_ok("not a url", err,
	    sizeof(err)), -1);
}

static void
clear_env(void)
{
	static const char *const vars[] = {
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	};
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
}

static void
test_chain_process(void **state)
{
	struct aws_creds c;
	char path[] = "/tmp/test_creds_conf.XXXXXX";
	FILE *f;
	int fd;

	clear_env();
	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	fputs("[profile proc]\ncredential_process = printf '%s' '" GOOD_JSON
	    "'\n[profile bad]\ncredential_process = sh -c 'exit 7'\n"
	    "[profile both]\naws_access_key_id=CONFKEY\n"
	    "aws_secret_access_key=x\ncredential_process = printf '%s' '"
	    GOOD_JSON "'\n", f);
	fclose(f);
	setenv("AWS_CONFIG_FILE", path, 1);
	setenv("AWS_PROFILE", "proc", 1);
	assert_int_equal(creds_refresh(), 0);
	assert_int_equal(creds_get(&c), 0);
	assert_string_equal(c.access_key, "AKIAPROC");
	assert_string_equal(creds_source(), "credential process");
	/* the SDKs' order: credential_process before the config file's keys */
	setenv("AWS_PROFILE", "both", 1);
	assert_int_equal(creds_refresh(), 1);
	setenv("AWS_PROFILE", "bad", 1);
	assert_int_equal(creds_refresh(), -1);
	unlink(path);
	creds_wipe(&c);
}

static void
test_chain_role_needs_source(void **state)
{
	char path[] = "/tmp/test_creds_role.XXXXXX";
	FILE *f;
	int fd;

	clear_env();
	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	/* no source_profile; a source_profile without credentials; a loop */
	fputs("[profile r1]\nrole_arn = arn:aws:iam::1:role/x\n"
	    "[profile r2]\nrole_arn = arn:aws:iam::1:role/x\n"
	    "source_profile = empty\n[profile empty]\nregion = x\n"
	    "[profile r3]\nrole_arn = arn:aws:iam::1:role/x\n"
	    "source_profile = r3\n", f);
	fclose(f);
	setenv("AWS_CONFIG_FILE", path, 1);
	setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1", 1);
	setenv("AWS_PROFILE", "r1", 1);
	assert_int_equal(creds_refresh(), -1);
	setenv("AWS_PROFILE", "r2", 1);
	assert_int_equal(creds_refresh(), -1);
	setenv("AWS_PROFILE", "r3", 1);
	assert_int_equal(creds_refresh(), -1);
	unsetenv("AWS_ENDPOINT_URL_STS");
	unlink(path);
}

static void
test_chain_container_refused(void **state)
{
	clear_env();
	setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
	/* a non-loopback http:// URI is not even tried */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.1/c", 1);
	assert_int_equal(creds_refresh(), -1);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/c", 1);
	assert_int_equal(creds_refresh(), -1);
	unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
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
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_argv_split),
		cmocka_unit_test(test_process_json),
		cmocka_unit_test(test_process_run),
		cmocka_unit_test(test_sts_xml),
		cmocka_unit_test(test_container_uri),
		cmocka_unit_test(test_chain_process),
		cmocka_unit_test(test_chain_role_needs_source),
		cmocka_unit_test(test_chain_container_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
