/* Unit tests for policy/completion.c: temp names, sidecars, checksum files,
 * manifests and batches. No I/O. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/completion.h"

#define SHA_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SHA_B "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
#define MD5_A "098f6bcd4621d373cade4e832627b4f6"

static void
test_temp_defaults(void **state)
{
	struct completion_config c;

	(void)state;
	char *pats[] = { "*.part", "*.filepart", "*.tmp" };

	/* the loader's defaults */
	memset(&c, 0, sizeof(c));
	c.temp_patterns = pats;
	c.ntemp_patterns = 3;
	assert_true(completion_is_temp(&c, "a.csv.part"));
	assert_true(completion_is_temp(&c, "dir/a.csv.filepart"));
	assert_true(completion_is_temp(&c, "x.tmp"));
	assert_true(completion_is_temp(NULL, "x.tmp"));
	assert_true(completion_is_temp(NULL, "x.filepart"));
	assert_false(completion_is_temp(NULL, "x.csv"));
	assert_false(completion_is_temp(&c, "a.csv"));
	assert_false(completion_is_temp(&c, "a.partial"));
	assert_false(completion_is_temp(&c, "x.tmp/a.csv"));	/* only the last component */
	assert_false(completion_is_temp(&c, "a.PART"));
	/* temp_patterns: [] turns temp names off */
	memset(&c, 0, sizeof(c));
	assert_false(completion_is_temp(&c, "a.part"));
}

static void
test_temp_configured(void **state)
{
	struct completion_config c;
	char *pats[] = { "~*", "*.upload" };

	(void)state;
	memset(&c, 0, sizeof(c));
	c.temp_patterns = pats;
	c.ntemp_patterns = 2;
	assert_true(completion_is_temp(&c, "~a.csv"));
	assert_true(completion_is_temp(&c, "d/b.upload"));
	assert_false(completion_is_temp(&c, "a.part"));	/* replaced, not added */
	c.ntemp_patterns = 0;	/* an empty list: nothing is temp */
	assert_false(completion_is_temp(&c, "a.part"));
}

static void
test_sidecars(void **state)
{
	struct completion_config c;
	struct signature_config s;
	char data[256];

	(void)state;
	memset(&c, 0, sizeof(c));
	memset(&s, 0, sizeof(s));
	/* nothing configured: everything is data */
	assert_int_equal(completion_sidecar(&c, &s, "a.csv.done", data,
	    sizeof(data)), SIDECAR_NONE);
	assert_int_equal(completion_sidecar(&c, &s, "a.csv.sig", data,
	    sizeof(data)), SIDECAR_NONE);
	assert_string_equal(data, "");

	c.marker = ".done";
	c.checksum = "sha256";
	c.manifest = "*.manifest";
	s.mode = SIG_DETACHED;
	assert_int_equal(completion_sidecar(&c, &s, "in/a.csv.done", data,
	    sizeof(data)), SIDECAR_MARKER);
	assert_string_equal(data, "in/a.csv");
	assert_int_equal(completion_sidecar(&c, &s, "a.csv.sha256", data,
	    sizeof(data)), SIDECAR_CHECKSUM);
	assert_string_equal(data, "a.csv");
	assert_int_equal(completion_sidecar(&c, &s, "a.csv.sig", data,
	    sizeof(data)), SIDECAR_SIGNATURE);
	assert_string_equal(data, "a.csv");
	assert_int_equal(completion_sidecar(&c, &s, "a.csv.asc", data,
	    sizeof(data)), SIDECAR_SIGNATURE);
	assert_int_equal(completion_sidecar(&c, &s, "d/batch1.manifest", data,
	    sizeof(data)), SIDECAR_MANIFEST);
	assert_string_equal(data, "");
	assert_int_equal(completion_sidecar(&c, &s, "a.csv", data,
	    sizeof(data)), SIDECAR_NONE);
	/* the suffix alone is a name, not a sidecar of "" */
	assert_int_equal(completion_sidecar(&c, &s, "d/.done", data,
	    sizeof(data)), SIDECAR_NONE);
	assert_int_equal(completion_sidecar(&c, &s, ".sig", data,
	    sizeof(data)), SIDECAR_NONE);
	/* md5 checksums use .md5; .sha256 is data then */
	c.checksum = "md5";
	assert_int_equal(completion_sidecar(&c, &s, "a.csv.md5", data,
	    sizeof(data)), SIDECAR_CHECKSUM);
	assert_int_equal(completion_sidecar(&c, &s, "a.csv.sha256", data,
	    sizeof(data)), SIDECAR_NONE);
	/* inline mode: .sig files are data */
	s.mode = SIG_INLINE;
	assert_int_equal(completion_sidecar(&c, &s, "a.csv.sig", data,
	    sizeof(data)), SIDECAR_NONE);
	assert_int_equal(completion_sidecar(&c, NULL, "a.csv.asc", data,
	    sizeof(data)), SIDECAR_NONE);
	/* too long for the buffer: not a sidecar */
	c.marker = ".done";
	assert_int_equal(completion_sidecar(&c, &s, "abcdefgh.done", data,
	    4), SIDECAR_NONE);
	assert_string_equal(sidecar_kind_name(SIDECAR_CHECKSUM), "checksum");
}

static int
find(const char *text, const char *name, size_t hexlen, char *hex)
{
	char why[256];

	return checksum_find(text, strlen(text), name, hexlen, hex, 65, why,
	    sizeof(why));
}

static void
test_checksum_lines(void **state)
{
	char hex[65], why[256];

	(void)state;
	assert_int_equal(checksum_hexlen("sha256"), 64);
	assert_int_equal(checksum_hexlen("md5"), 32);
	assert_int_equal(checksum_hexlen("sha1"), 0);

	/* coreutils text mode */
	assert_int_equal(find(SHA_A "  a.csv\n", "a.csv", 64, hex), 1);
	assert_string_equal(hex, SHA_A);
	/* binary mode, upper-case hex, CRLF */
	assert_int_equal(find("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822C"
	    "D15D6C15B0F00A08 *a.csv\r\n", "in/a.csv", 64, hex), 1);
	assert_string_equal(hex, SHA_A);
	/* a bare digest */
	assert_int_equal(find(SHA_B "\n", "a.csv", 64, hex), 1);
	assert_string_equal(hex, SHA_B);
	/* one entry under another name (a local path): applies */
	assert_int_equal(find(SHA_A "  /home/ops/out/a.csv.tmp\n", "a.csv", 64,
	    hex), 1);
	/* several entries: the basename must be listed */
	assert_int_equal(find(SHA_A "  x.csv\n" SHA_B "  ./out/a.csv\n", "a.csv",
	    64, hex), 1);
	assert_string_equal(hex, SHA_B);
	assert_int_equal(find(SHA_A "  x.csv\n" SHA_B "  y.csv\n", "a.csv", 64,
	    hex), 0);
	/* BSD tag form */
	assert_int_equal(find("SHA256 (a.csv) = " SHA_B "\n", "a.csv", 64, hex),
	    1);
	assert_string_equal(hex, SHA_B);
	/* md5 */
	assert_int_equal(find(MD5_A "  a.csv\n", "a.csv", 32, hex), 1);
	assert_string_equal(hex, MD5_A);
	/* not checksum files */
	assert_int_equal(find("hello world\n", "a.csv", 64, hex), -1);
	assert_int_equal(find("", "a.csv", 64, hex), -1);
	assert_int_equal(find("\n\n", "a.csv", 64, hex), -1);
	assert_int_equal(find(MD5_A "  a.csv\n", "a.csv", 64, hex), -1);
	assert_int_equal(find(SHA_A "a.csv\n", "a.csv", 64, hex), -1);
	assert_int_equal(find(SHA_A "  \n", "a.csv", 64, hex), 1);	/* bare */
	assert_int_equal(find(SHA_A "  *\n", "a.csv", 64, hex), -1);
	assert_int_equal(checksum_find(SHA_A, 64, "a", 0, hex, 65, why,
	    sizeof(why)), -1);
	/* not NUL-terminated input is bounded by len */
	assert_int_equal(checksum_find(SHA_A "  a.csv", 64, "a.csv", 64, hex,
	    65, why, sizeof(why)), 1);
}

static void
test_manifest_parse(void **state)
{
	struct manifest m;
	char why[256];
	const char *ok = "# batch 7\n\n" SHA_A " 4 a.csv\n"
	    SHA_B "\t12\t./sub//b file.csv \r\n";

	(void)state;
	assert_int_equal(manifest_parse(ok, strlen(ok), &m, why, sizeof(why)),
	    0);
	assert_int_equal(m.n, 2);
	assert_string_equal(m.e[0].name, "a.csv");
	assert_int_equal(m.e[0].size, 4);
	assert_string_equal(m.e[0].sha256, SHA_A);
	assert_string_equal(m.e[1].name, "sub/b file.csv");
	assert_int_equal(m.e[1].size, 12);
	manifest_free(&m);

	assert_int_equal(manifest_parse("", 0, &m, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no files"));
	assert_int_equal(manifest_parse("x 1 a\n", 6, &m, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "line 1"));
#define BAD(s) assert_int_equal(manifest_parse(s, strlen(s), &m, why, \
    sizeof(why)), -1)
	BAD(SHA_A " 4 ../etc/passwd\n");
	BAD(SHA_A " 4 /abs\n");
	BAD(SHA_A " 4\n");
	BAD(SHA_A " -4 a\n");
	BAD(SHA_A " 99999999999999999999999 a\n");
	BAD(SHA_A "4 a\n");
	BAD(SHA_A " 4 .\n");
#undef BAD
	assert_int_equal(manifest_parse(SHA_A " 4 a\n" "zz 4 b\n", 70, &m, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "line 2"));
	assert_null(m.e);
}

static void
test_manifest_batch(void **state)
{
	struct manifest m;
	char why[256];
	const char *text = SHA_A " 4 a.csv\n" SHA_B " 12 sub/b.csv\n";
	struct batch_file f[4];
	size_t match[2];

	(void)state;
	assert_int_equal(manifest_parse(text, strlen(text), &m, why,
	    sizeof(why)), 0);
	f[0] = (struct batch_file){ "in/x.csv", 1, SHA_A };
	f[1] = (struct batch_file){ "in/a.csv", 4, SHA_A };
	/* b missing */
	assert_int_equal(manifest_batch_complete(&m, "in/m.manifest", f, 2,
	    match, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "in/sub/b.csv has not arrived"));
	/* b present with the wrong size */
	f[2] = (struct batch_file){ "in/sub/b.csv", 13, SHA_B };
	assert_int_equal(manifest_batch_complete(&m, "in/m.manifest", f, 3,
	    match, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "differs"));
	/* a re-upload with the right bytes completes the batch */
	f[3] = (struct batch_file){ "in/sub/b.csv", 12, SHA_B };
	assert_int_equal(manifest_batch_complete(&m, "in/m.manifest", f, 4,
	    match, why, sizeof(why)), 1);
	assert_int_equal(match[0], 1);
	assert_int_equal(match[1], 3);
	/* the manifest's directory matters */
	assert_int_equal(manifest_batch_complete(&m, "m.manifest", f, 4,
	    match, why, sizeof(why)), 0);
	/* wrong digest */
	f[1].sha256 = SHA_B;
	assert_int_equal(manifest_batch_complete(&m, "in/m.manifest", f, 4,
	    match, why, sizeof(why)), 0);
	assert_non_null(strstr(why, "in/a.csv differs"));
	manifest_free(&m);
}

static void
test_duration_text(void **state)
{
	char b[24];

	(void)state;
	duration_text(600, b, sizeof(b));
	assert_string_equal(b, "10m");
	duration_text(86400, b, sizeof(b));
	assert_string_equal(b, "1d");
	duration_text(7200, b, sizeof(b));
	assert_string_equal(b, "2h");
	duration_text(90, b, sizeof(b));
	assert_string_equal(b, "90s");
	duration_text(0, b, sizeof(b));
	assert_string_equal(b, "0s");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_temp_defaults),
		cmocka_unit_test(test_temp_configured),
		cmocka_unit_test(test_sidecars),
		cmocka_unit_test(test_checksum_lines),
		cmocka_unit_test(test_manifest_parse),
		cmocka_unit_test(test_manifest_batch),
		cmocka_unit_test(test_duration_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
