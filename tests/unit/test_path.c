/*
 * test_path.c - path_normalize against hostile SFTP client paths.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/path.h"

struct pcase {
	const char	*in;
	size_t		 len;		/* 0: strlen(in) */
	int		 flags;
	int		 rc;
	const char	*out;		/* expected when rc == 0 */
};

#define OK(i, o)	{ i, 0, 0, 0, o }
#define BAD(i, r)	{ i, 0, 0, r, NULL }

static const struct pcase cases[] = {
	OK("/", "."),
	OK(".", "."),
	OK("", "."),
	OK("//", "."),
	OK("/./", "."),
	OK("a", "a"),
	OK("/a", "a"),
	OK("/a/", "a"),
	OK("/a//b/./c/", "a/b/c"),
	OK("a/../b", "b"),
	OK("/a/b/../../c", "c"),
	OK("a/..", "."),
	OK("/a/b/..", "a"),
	OK("///a///b///", "a/b"),
	OK("/./a/./", "a"),
	OK("...", "..."),		/* a legal name, not a parent */
	OK("/a/..b/.c", "a/..b/.c"),
	OK("-rf", "-rf"),
	OK("/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.csv", "caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.csv"),
	OK("/\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"),
	BAD("..", PATH_ESCAPE),
	BAD("/..", PATH_ESCAPE),
	BAD("/../../etc/passwd", PATH_ESCAPE),
	BAD("a/../..", PATH_ESCAPE),
	BAD("/a/../../b", PATH_ESCAPE),
	BAD("../a/..", PATH_ESCAPE),
	BAD("/a/b/../../../etc", PATH_ESCAPE),
	{ "/../../etc/passwd", 0, PATH_CLAMP, 0, "etc/passwd" },
	{ "..", 0, PATH_CLAMP, 0, "." },
	{ "a/../../b/..", 0, PATH_CLAMP, 0, "." },
	{ "x/../../y", 0, PATH_CLAMP, 0, "y" },
	BAD("a\\b", PATH_INVALID),
	BAD("..\\..\\etc", PATH_INVALID),
	BAD("/a\nb", PATH_INVALID),
	BAD("/a\rb", PATH_INVALID),
	BAD("/a\x1b[31mb", PATH_INVALID),
	BAD("/a\x7f", PATH_INVALID),
	BAD("/a\xc2\x85", PATH_INVALID),	/* U+0085 NEL, a C1 control */
	BAD("/\xff", PATH_INVALID),
	BAD("/\xc3", PATH_INVALID),		/* truncated sequence */
	BAD("/\xc0\xaf", PATH_INVALID),		/* overlong '/' */
	BAD("/\xe0\x80\xaf", PATH_INVALID),	/* overlong '/' */
	BAD("/\xed\xa0\x80", PATH_INVALID),	/* surrogate */
	BAD("/\xf4\x90\x80\x80", PATH_INVALID),	/* above U+10FFFF */
	BAD("/\x80", PATH_INVALID),		/* stray continuation */
	{ "/a\0b", 4, 0, PATH_INVALID, NULL },	/* NUL inside len */
	{ "/a\0/../..", 9, 0, PATH_INVALID, NULL },
	{ "/ab", 2, 0, 0, "a" },		/* len, not strlen */
};

static void
test_table(void **state)
{
	char out[4096];
	size_t i, len;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = cases[i].len ? cases[i].len : strlen(cases[i].in);
		memset(out, 'X', sizeof(out));
		rc = path_normalize(cases[i].in, len, cases[i].flags, out,
		    sizeof(out));
		if (rc != cases[i].rc)
			fail_msg("case %zu (\"%s\"): rc %d, want %d", i,
			    cases[i].in, rc, cases[i].rc);
		if (cases[i].rc == 0 && strcmp(out, cases[i].out) != 0)
			fail_msg("case %zu (\"%s\"): \"%s\", want \"%s\"", i,
			    cases[i].in, out, cases[i].out);
	}
}

static void
test_component_length(void **state)
{
	char in[600], out[4096];

	(void)state;
	in[0] = '/';
	memset(in + 1, 'a', 255);
	assert_int_equal(path_normalize(in, 256, 0, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), 255);
	memset(in + 1, 'a', 256);
	assert_int_equal(path_normalize(in, 257, 0, out, sizeof(out)),
	    PATH_INVALID);
	/* a too-long component is invalid even if ".." later removes it */
	memcpy(in + 257, "/..", 3);
	assert_int_equal(path_normalize(in, 260, 0, out, sizeof(out)),
	    PATH_INVALID);
	/* the limit is in bytes: 128 two-byte characters are 256 bytes */
	in[0] = '/';
	for (int i = 0; i < 128; i++)
		memcpy(in + 1 + 2 * i, "\xc3\xa9", 2);
	assert_int_equal(path_normalize(in, 257, 0, out, sizeof(out)),
	    PATH_INVALID);
	assert_int_equal(path_normalize(in, 255, 0, out, sizeof(out)), 0);
}

static void
test_total_length(void **state)
{
	char *in, out[8192];
	size_t n = 0, i;

	(void)state;
	in = malloc(20000);
	assert_non_null(in);
	/* 16 components of 255 bytes + 15 separators = 4095 bytes: fits */
	for (i = 0; i < 16; i++) {
		in[n++] = '/';
		memset(in + n, 'a' + (int)i, 255);
		n += 255;
	}
	assert_int_equal(path_normalize(in, n, 0, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), 4095);
	assert_int_equal(out[255], '/');
	/* one more component is over PATH_MAX */
	memcpy(in + n, "/z", 2);
	n += 2;
	assert_int_equal(path_normalize(in, n, 0, out, sizeof(out)),
	    PATH_TOOLONG);
	/* ...unless ".." takes components away again */
	memcpy(in + n, "/..", 3);
	assert_int_equal(path_normalize(in, n + 3, 0, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), 4095);
	memcpy(in + n, "/../..", 6);
	assert_int_equal(path_normalize(in, n + 6, 0, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), 15 * 255 + 14);
	/* a long detour that ends short is fine: no intermediate buffer */
	n = 0;
	for (i = 0; i < 3000; i++) {
		memcpy(in + n, "/./", 3);
		n += 3;
	}
	memcpy(in + n, "/x", 2);
	n += 2;
	assert_int_equal(path_normalize(in, n, 0, out, sizeof(out)), 0);
	assert_string_equal(out, "x");
	free(in);
}

static void
test_small_out(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(path_normalize("/abc/def", 8, 0, out, 8), 0);
	assert_string_equal(out, "abc/def");
	assert_int_equal(path_normalize("/abc/defg", 9, 0, out, 8),
	    PATH_TOOLONG);
	assert_int_equal(path_normalize("/", 1, 0, out, 2), 0);
	assert_string_equal(out, ".");
	assert_int_equal(path_normalize("/", 1, 0, out, 1), PATH_TOOLONG);
	assert_int_equal(path_normalize("/a", 2, 0, out, 0), PATH_TOOLONG);
	/* escape wins over truncation: the client gets the real reason */
	assert_int_equal(path_normalize("/../abcdefghij", 14, 0, out, 8),
	    PATH_ESCAPE);
}

static void
test_to_client(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(path_to_client(".", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(path_to_client("a/b", out, sizeof(out)), 0);
	assert_string_equal(out, "/a/b");
	assert_int_equal(path_to_client("abcdefghijklmn", out, sizeof(out)), 0);
	assert_string_equal(out, "/abcdefghijklmn");
	assert_int_equal(path_to_client("abcdefghijklmno", out, sizeof(out)),
	    -1);
	assert_int_equal(path_to_client(".", out, 1), -1);
}

/* Round trip: normalising the client form of a result gives it back. */
static void
test_round_trip(void **state)
{
	static const char *in[] = {
		"/a//b/./c/", "x/../y/z", "/", "/\xc3\xa9t\xc3\xa9/r"
	};
	char norm[256], cli[256], again[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		assert_int_equal(path_normalize(in[i], strlen(in[i]), 0, norm,
		    sizeof(norm)), 0);
		assert_int_equal(path_to_client(norm, cli, sizeof(cli)), 0);
		assert_int_equal(cli[0], '/');
		assert_int_equal(path_normalize(cli, strlen(cli), 0, again,
		    sizeof(again)), 0);
		assert_string_equal(norm, again);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_component_length),
		cmocka_unit_test(test_total_length),
		cmocka_unit_test(test_small_out),
		cmocka_unit_test(test_to_client),
		cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
