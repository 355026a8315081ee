/*
 * test_policy.c - CIDR parsing and matching, password checks, the password
 * hash rule, object keys.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <crypt.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "policy/policy.h"

static struct sockaddr_storage
sa_of(const char *addr)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
	}
	return ss;
}

static int
match(const char *block, const char *addr)
{
	struct sockaddr_storage ss = sa_of(addr);
	struct cidr c;

	assert_int_equal(cidr_parse(block, &c), 0);
	return cidr_match(&c, (struct sockaddr *)&ss);
}

static void
test_cidr_parse(void **state)
{
	static const char *bad[] = {
		"", "/", "/24", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1",
		"10.0.0.0/+8", "10.0.0.0/ 8", "10.0.0.0/8 ", " 10.0.0.0/8",
		"10.0.0/8", "10.0.0.256/32", "10.0.0.0/0x8", "10.0.0.0/0008",
		"::/129", "2001:db8::/32/1", "2001:db8:::/32", "example.com",
		"10.0.0.0/8/8", "10.1.2.3/8", "2001:db8::1/32",
	};
	struct cidr c;
	size_t i;
	int dirty;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cidr_parse(bad[i], &c) != -1)
			fail_msg("cidr_parse(\"%s\") accepted", bad[i]);

	assert_int_equal(cidr_parse("203.0.113.0/24", &c), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 24);
	assert_memory_equal(c.addr, "\xcb\x00\x71\x00", 4);

	assert_int_equal(cidr_parse("192.0.2.7", &c), 0);	/* bare host */
	assert_int_equal(c.prefix, 32);
	assert_int_equal(cidr_parse("::1", &c), 0);
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.prefix, 128);
	assert_int_equal(cidr_parse("0.0.0.0/0", &c), 0);
	assert_int_equal(c.prefix, 0);
	assert_int_equal(cidr_parse("::/0", &c), 0);
	assert_int_equal(c.family, AF_INET6);

	/* a mapped block is stored as the IPv4 block it means */
	assert_int_equal(cidr_parse("::ffff:10.0.0.0/104", &c), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 8);
	assert_memory_equal(c.addr, "\x0a\x00\x00\x00", 4);

	/* host bits: refused by cidr_parse, masked by the lenient form */
	assert_int_equal(cidr_parse_lenient("10.1.2.3/8", &c, &dirty), 0);
	assert_int_equal(dirty, 1);
	assert_memory_equal(c.addr, "\x0a\x00\x00\x00", 4);
	assert_int_equal(cidr_parse_lenient("10.0.0.0/8", &c, &dirty), 0);
	assert_int_equal(dirty, 0);
	assert_int_equal(cidr_parse_lenient("2001:db8::1/33", &c, &dirty), 0);
	assert_int_equal(dirty, 1);
	{
		char buf[64];

		assert_int_equal(cidr_format(&c, buf, sizeof(buf)), 0);
		assert_string_equal(buf, "2001:db8::/33");
	}
}

static void
test_cidr_match_v4(void **state)
{
	(void)state;
	assert_int_equal(match("203.0.113.0/24", "203.0.113.0"), 1);
	assert_int_equal(match("203.0.113.0/24", "203.0.113.255"), 1);
	assert_int_equal(match("203.0.113.0/24", "203.0.114.0"), 0);
	assert_int_equal(match("203.0.113.0/24", "203.0.112.255"), 0);
	assert_int_equal(match("10.0.0.0/9", "10.127.255.255"), 1);
	assert_int_equal(match("10.0.0.0/9", "10.128.0.0"), 0);
	assert_int_equal(match("0.0.0.0/0", "1.2.3.4"), 1);
	assert_int_equal(match("0.0.0.0/0", "255.255.255.255"), 1);
	assert_int_equal(match("192.0.2.7/32", "192.0.2.7"), 1);
	assert_int_equal(match("192.0.2.7/32", "192.0.2.6"), 0);
	assert_int_equal(match("192.0.2.7", "192.0.2.8"), 0);
	/* IPv4 blocks never match native IPv6 clients, and vice versa */
	assert_int_equal(match("0.0.0.0/0", "2001:db8::1"), 0);
	assert_int_equal(match("::/0", "1.2.3.4"), 0);
}

static void
test_cidr_match_v6(void **state)
{
	(void)state;
	assert_int_equal(match("2001:db8::/32", "2001:db8::1"), 1);
	assert_int_equal(match("2001:db8::/32", "2001:db8:ffff:ffff::1"), 1);
	assert_int_equal(match("2001:db8::/32", "2001:db9::1"), 0);
	assert_int_equal(match("2001:db8::/33", "2001:db8:7fff::1"), 1);
	assert_int_equal(match("2001:db8::/33", "2001:db8:8000::1"), 0);
	assert_int_equal(match("::/0", "2001:db8::1"), 1);
	assert_int_equal(match("::1/128", "::1"), 1);
	assert_int_equal(match("::1/128", "::2"), 0);
	assert_int_equal(match("fe80::/10", "febf::1"), 1);
	assert_int_equal(match("fe80::/10", "fec0::1"), 0);
}

static void
test_cidr_match_mapped(void **state)
{
	(void)state;
	/* dual-stack sockets report IPv4 clients as ::ffff:a.b.c.d */
	assert_int_equal(match("10.0.0.0/8", "::ffff:10.1.2.3"), 1);
	assert_int_equal(match("10.0.0.0/8", "::ffff:11.1.2.3"), 0);
	assert_int_equal(match("10.1.2.3", "::ffff:10.1.2.3"), 1);
	assert_int_equal(match("0.0.0.0/0", "::ffff:8.8.8.8"), 1);
	assert_int_equal(match("::ffff:10.0.0.0/104", "10.9.9.9"), 1);
	assert_int_equal(match("::ffff:10.0.0.0/104", "::ffff:10.9.9.9"), 1);
	/* mapped clients are IPv4 clients, as in sshd */
	assert_int_equal(match("::/0", "::ffff:10.1.2.3"), 0);
	/* not mapped: ::10.1.2.3 (IPv4-compatible) is plain IPv6 */
	assert_int_equal(match("10.0.0.0/8", "::10.1.2.3"), 0);
}

static void
test_addr_allowed(void **state)
{
	struct partner p;
	struct cidr c[2];
	struct sockaddr_storage a = sa_of("198.51.100.7");
	struct sockaddr_storage b = sa_of("2001:db8::5");
	struct sockaddr_storage x = sa_of("192.0.2.1");
	struct sockaddr un = { .sa_family = AF_UNIX };

	(void)state;
	memset(&p, 0, sizeof(p));
	/* no allow_from: anywhere */
	assert_int_equal(policy_addr_allowed(&p, (struct sockaddr *)&x), 1);
	assert_int_equal(policy_addr_allowed(&p, NULL), 0);
	assert_int_equal(policy_addr_allowed(NULL, (struct sockaddr *)&x), 0);

	assert_int_equal(cidr_parse("198.51.100.0/24", &c[0]), 0);
	assert_int_equal(cidr_parse("2001:db8::/48", &c[1]), 0);
	p.allow_from = c;
	p.nallow_from = 2;
	assert_int_equal(policy_addr_allowed(&p, (struct sockaddr *)&a), 1);
	assert_int_equal(policy_addr_allowed(&p, (struct sockaddr *)&b), 1);
	assert_int_equal(policy_addr_allowed(&p, (struct sockaddr *)&x), 0);
	assert_int_equal(policy_addr_allowed(&p, &un), 0);
}

static char *
make_hash(const char *prefix, const char *pw)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	char *h;

	assert_non_null(cd);
	assert_non_null(crypt_gensalt_rn(prefix, 0, NULL, 0, salt,
	    sizeof(salt)));
	h = strdup(crypt_r(pw, salt, cd));
	free(cd);
	assert_non_null(h);
	assert_true(h[0] == '$');
	return h;
}

/* h without its last character into out; 0 or -1. */
static int
chop_last(const char *h, char *out, size_t outlen)
{
	size_t n = strlen(h);

	if (n == 0 || n > outlen)
		return -1;
	memcpy(out, h, n - 1);
	out[n - 1] = '\0';
	return 0;
}

static void
test_hash_problem(void **state)
{
	char *y = make_hash("$y$", "correct horse");
	char *s6 = make_hash("$6$", "battery staple");
	char *b = make_hash("$2b$", "s3cret");
	char cut[256];
	const char *why;

	(void)state;
	assert_null(policy_hash_problem(y));
	assert_null(policy_hash_problem(s6));
	assert_null(policy_hash_problem(b));

	/* weak schemes, whatever follows */
	assert_non_null(why = policy_hash_problem("$1$abcdefgh$"
	    "0123456789012345678901"));
	assert_non_null(strstr(why, "weak hash scheme"));
	assert_non_null(strstr(policy_hash_problem("abJnggxhB/yWI"),
	    "weak hash scheme"));		/* traditional DES */
	assert_non_null(strstr(policy_hash_problem("_J9..CCCCXBrJUJV154M"),
	    "weak hash scheme"));		/* BSDi DES */
	assert_non_null(strstr(policy_hash_problem("$2x$10$abc"),
	    "weak hash scheme"));

	/* not a hash at all: a plain password, empty, a locked account */
	assert_non_null(strstr(policy_hash_problem("hunter2"),
	    "not a crypt(3) hash"));
	assert_non_null(strstr(policy_hash_problem(""), "not a crypt(3) hash"));
	assert_non_null(strstr(policy_hash_problem("!"), "not a crypt(3) hash"));

	/* a salt only, or a hash cut off by one character */
	assert_non_null(policy_hash_problem("$6$saltsalt$"));
	assert_int_equal(chop_last(y, cut, sizeof(cut)), 0);
	assert_non_null(why = policy_hash_problem(cut));
	assert_non_null(strstr(why, "crypt(3) hash"));
	assert_int_equal(chop_last(s6, cut, sizeof(cut)), 0);
	assert_non_null(policy_hash_problem(cut));
	assert_int_equal(chop_last(b, cut, sizeof(cut)), 0);
	assert_non_null(policy_hash_problem(cut));

	/* a character outside crypt's alphabet in the hash part */
	(void)xstrlcpy(cut, y, sizeof(cut));
	cut[strlen(cut) - 1] = '!';
	assert_non_null(policy_hash_problem(cut));

	/* the reason never holds the hash */
	why = policy_hash_problem("$1$secretsecret$");
	assert_null(strstr(why, "secretsecret"));

	free(y);
	free(s6);
	free(b);
}

static void
test_password(void **state)
{
	struct partner p;
	char *y = make_hash("$y$", "correct horse");
	char *s6 = make_hash("$6$", "battery staple");
	char *b = make_hash("$2b$", "s3cret");
	char big[2000];

	(void)state;
	memset(&p, 0, sizeof(p));
	p.name = "acme";
	p.password_hash = y;
	assert_int_equal(policy_password_ok(&p, "correct horse"), 1);
	assert_int_equal(policy_password_ok(&p, "correct hors"), 0);
	assert_int_equal(policy_password_ok(&p, "correct horse "), 0);
	assert_int_equal(policy_password_ok(&p, ""), 0);
	assert_int_equal(policy_password_ok(&p, NULL), 0);
	p.password_hash = s6;
	assert_int_equal(policy_password_ok(&p, "battery staple"), 1);
	assert_int_equal(policy_password_ok(&p, "correct horse"), 0);
	p.password_hash = b;
	assert_int_equal(policy_password_ok(&p, "s3cret"), 1);
	assert_int_equal(policy_password_ok(&p, "S3cret"), 0);

	/* unknown partner, no hash, broken hash: always no */
	assert_int_equal(policy_password_ok(NULL, "s3cret"), 0);
	p.password_hash = NULL;
	assert_int_equal(policy_password_ok(&p, "s3cret"), 0);
	assert_int_equal(policy_password_ok(&p, ""), 0);
	p.password_hash = "";
	assert_int_equal(policy_password_ok(&p, ""), 0);
	p.password_hash = "*";
	assert_int_equal(policy_password_ok(&p, ""), 0);
	p.password_hash = "!";
	assert_int_equal(policy_password_ok(&p, "!"), 0);

	/* over-long passwords are refused without hashing them */
	p.password_hash = s6;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(policy_password_ok(&p, big), 0);

	free(y);
	free(s6);
	free(b);
}

static const char sha[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static void
test_objkey_expand(void **state)
{
	struct objkey_vars v = {
		.partner = "acme",
		.path = "in/2026/pay.csv",
		.sha256 = sha,
		.received_ms = 1795316400123LL,	/* 2026-11-22T03:00:00.123Z */
	};
	char out[1100];

	(void)state;
	assert_int_equal(objkey_expand("", "{partner}/{path}", &v, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "acme/in/2026/pay.csv");
	assert_int_equal(objkey_expand("pre/fix/", "{partner}/{path}", &v, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "pre/fix/acme/in/2026/pay.csv");
	assert_int_equal(objkey_expand("", "{yyyy}/{mm}/{dd}/{partner}/"
	    "{filename}", &v, out, sizeof(out)), 0);
	assert_string_equal(out, "2026/11/22/acme/pay.csv");
	assert_int_equal(objkey_expand("", "by-hash/{sha256}", &v, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "by-hash/e3b0c44298fc1c149afbf4c8996fb92427ae"
	    "41e4649b934ca495991b7852b855");
	assert_int_equal(objkey_expand("", "x-{filename}.{yyyy}{mm}{dd}", &v,
	    out, sizeof(out)), 0);
	assert_string_equal(out, "x-pay.csv.20261122");

	/* UTC, not local time: 23:59:59.999 on Dec 31 stays in that year */
	v.received_ms = 1798761599999LL;	/* 2026-12-31T23:59:59.999Z */
	assert_int_equal(objkey_expand("", "{yyyy}-{mm}-{dd}/{path}", &v, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "2026-12-31/in/2026/pay.csv");
	v.received_ms = 1798761600000LL;
	assert_int_equal(objkey_expand("", "{yyyy}-{mm}-{dd}/{path}", &v, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "2027-01-01/in/2026/pay.csv");
	v.received_ms = 0;
	assert_int_equal(objkey_expand("", "{yyyy}{mm}{dd}/{filename}", &v,
	    out, sizeof(out)), 0);
	assert_string_equal(out, "19700101/pay.csv");
	v.received_ms = -1;	/* 1969-12-31T23:59:59.999Z */
	assert_int_equal(objkey_expand("", "{yyyy}{mm}{dd}/{filename}", &v,
	    out, sizeof(out)), 0);
	assert_string_equal(out, "19691231/pay.csv");

	/* a file at the root: {filename} is the whole path */
	v.path = "top.csv";
	assert_int_equal(objkey_expand("", "{partner}/{filename}", &v, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "acme/top.csv");
}

static void
test_objkey_reject(void **state)
{
	struct objkey_vars v = {
		.partner = "acme",
		.path = "a.csv",
		.sha256 = sha,
		.received_ms = 1795316400123LL,
	};
	char out[2048], longpath[1100];

	(void)state;
	assert_int_equal(objkey_expand("", "{partner}/{nope}", &v, out,
	    sizeof(out)), -1);
	assert_int_equal(objkey_expand("", "{partner}/{path", &v, out,
	    sizeof(out)), -1);
	assert_int_equal(objkey_expand("", "{partner}}/{path}", &v, out,
	    sizeof(out)), -1);
	assert_int_equal(objkey_expand("", "/{partner}/{path}", &v, out,
	    sizeof(out)), -1);
	assert_int_equal(objkey_expand("/abs/", "{partner}/{path}", &v, out,
	    sizeof(out)), -1);
	assert_int_equal(objkey_expand("", "{partner}//{path}", &v, out,
	    sizeof(out)), -1);
	assert_int_equal(objkey_expand("", "{partner}/./{path}", &v, out,
	    sizeof(out)), -1);
	assert_int_equal(objkey_expand("", "{partner}/{path}/", &v, out,
	    sizeof(out)), -1);
	assert_int_equal(objkey_expand("", "", &v, out, sizeof(out)), -1);
	assert_int_equal(objkey_expand("", "{partner}\t{path}", &v, out,
	    sizeof(out)), -1);

	/* hostile values */
	v.path = "../../other/x";
	assert_int_equal(objkey_expand("", "{partner}/{path}", &v, out,
	    sizeof(out)), -1);
	v.path = "a/./b";
	assert_int_equal(objkey_expand("", "{partner}/{path}", &v, out,
	    sizeof(out)), -1);
	v.path = "a\nb";
	assert_int_equal(objkey_expand("", "{partner}/{path}", &v, out,
	    sizeof(out)), -1);
	v.path = "";
	assert_int_equal(objkey_expand("", "{partner}/{path}", &v, out,
	    sizeof(out)), -1);
	v.path = NULL;
	assert_int_equal(objkey_expand("", "{partner}/{path}", &v, out,
	    sizeof(out)), -1);
	v.path = "a.csv";
	v.sha256 = "not-a-hash";
	assert_int_equal(objkey_expand("", "{sha256}", &v, out, sizeof(out)),
	    -1);
	v.sha256 = sha;

	/* truncation and S3's 1024-byte limit */
	assert_int_equal(objkey_expand("", "{partner}/{path}", &v, out, 10),
	    -1);
	assert_int_equal(objkey_expand("", "{partner}/{path}", &v, out, 11),
	    0);
	assert_string_equal(out, "acme/a.csv");
	memset(longpath, 'p', 1019);
	longpath[1019] = '\0';
	v.path = longpath;			/* "acme/" + 1019 = 1024 */
	assert_int_equal(objkey_expand("", "{partner}/{path}", &v, out,
	    sizeof(out)), 0);
	assert_int_equal(strlen(out), 1024);
	longpath[1019] = 'p';
	longpath[1020] = '\0';
	assert_int_equal(objkey_expand("", "{partner}/{path}", &v, out,
	    sizeof(out)), -1);
}

static void
test_objkey_check(void **state)
{
	static const char *good[] = {
		"{partner}/{path}", "{yyyy}/{mm}/{dd}/{partner}/{filename}",
		"archive/{sha256}", "{path}", "x{filename}y",
	};
	static const char *bad[] = {
		"", "{partner}/{nope}", "{partner}/{path", "{partner}}/{path}",
		"/{partner}/{path}", "{partner}/{yyyy}", "static-key",
		"{Path}", "{ path }", "{partner}/\n{path}", "{{path}}",
	};
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		why = NULL;
		if (objkey_check(good[i], &why) != 0)
			fail_msg("\"%s\" rejected: %s", good[i], why);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (objkey_check(bad[i], &why) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_non_null(why);
	}
	assert_int_equal(objkey_check("{partner}/{nope}", &why), -1);
	assert_non_null(strstr(why, "unknown placeholder"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_cidr_match_v4),
		cmocka_unit_test(test_cidr_match_v6),
		cmocka_unit_test(test_cidr_match_mapped),
		cmocka_unit_test(test_addr_allowed),
		cmocka_unit_test(test_password),
		cmocka_unit_test(test_hash_problem),
		cmocka_unit_test(test_objkey_expand),
		cmocka_unit_test(test_objkey_reject),
		cmocka_unit_test(test_objkey_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
