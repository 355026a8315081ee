/* Unit tests for spool/receipt: the receipt a session writes at CLOSE. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "spool/receipt.h"

static void
sample(struct file_rec *r)
{
	memset(r, 0, sizeof(*r));
	xstrlcpy(r->fid, "0123456789abcdef0123456789abcdef", sizeof(r->fid));
	xstrlcpy(r->partner, "acme", sizeof(r->partner));
	xstrlcpy(r->path, "in/2026-11-22 \"quoted\" \xc3\xa9.csv", sizeof(r->path));
	xstrlcpy(r->remote, "2001:db8::1", sizeof(r->remote));
	xstrlcpy(r->session, "a1b2c3", sizeof(r->session));
	xstrlcpy(r->sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	    sizeof(r->sha256));
	r->size = 1234567;
	r->received_ms = 1795324867228LL;
	r->landing_dev = 2049;
	r->landing_ino = 987654;
}

static void
test_round_trip(void **state)
{
	struct file_rec a, b;
	char *text;

	(void)state;
	sample(&a);
	assert_non_null(text = receipt_encode(&a));
	assert_int_equal(receipt_decode(text, strlen(text), &b), 0);
	free(text);
	assert_string_equal(b.fid, a.fid);
	assert_string_equal(b.partner, a.partner);
	assert_string_equal(b.path, a.path);
	assert_string_equal(b.remote, a.remote);
	assert_string_equal(b.session, a.session);
	assert_string_equal(b.sha256, a.sha256);
	assert_int_equal(b.size, a.size);
	assert_int_equal(b.received_ms, a.received_ms);
	assert_int_equal(b.landing_dev, a.landing_dev);
	assert_int_equal(b.landing_ino, a.landing_ino);
}

static void
test_rejects_bad(void **state)
{
	static const char *bad[] = {
		"",
		"[]",
		"{\"v\":2,\"fid\":\"f\",\"partner\":\"p\",\"path\":\"x\",\"sha256\":"
		    "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
		    "\"size\":1,\"received_ms\":1}",
		/* no fid */
		"{\"v\":1,\"partner\":\"p\",\"path\":\"x\",\"sha256\":"
		    "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
		    "\"size\":1,\"received_ms\":1}",
		/* upper-case / short digest */
		"{\"v\":1,\"fid\":\"f\",\"partner\":\"p\",\"path\":\"x\",\"sha256\":"
		    "\"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\","
		    "\"size\":1,\"received_ms\":1}",
		"{\"v\":1,\"fid\":\"f\",\"partner\":\"p\",\"path\":\"x\",\"sha256\":\"ab\","
		    "\"size\":1,\"received_ms\":1}",
		/* negative size, size as a string */
		"{\"v\":1,\"fid\":\"f\",\"partner\":\"p\",\"path\":\"x\",\"sha256\":"
		    "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
		    "\"size\":-1,\"received_ms\":1}",
		"{\"v\":1,\"fid\":\"f\",\"partner\":\"p\",\"path\":\"x\",\"sha256\":"
		    "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
		    "\"size\":\"1\",\"received_ms\":1}",
		/* a fid longer than a fid */
		"{\"v\":1,\"fid\":\"0123456789abcdef0123456789abcdef0\",\"partner\":\"p\","
		    "\"path\":\"x\",\"sha256\":"
		    "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
		    "\"size\":1,\"received_ms\":1}",
	};
	struct file_rec r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(receipt_decode(bad[i], strlen(bad[i]), &r), -1);
		assert_string_equal(r.fid, "");	/* nothing half-filled */
	}
}

/* On a real file: written, read back, seen, removed. */
static void
test_on_a_file(void **state)
{
	char path[] = "/tmp/sluice-test-receipt-XXXXXX";
	struct file_rec a, b;
	int fd;

	(void)state;
	assert_true((fd = mkstemp(path)) != -1);
	unlink(path);
	sample(&a);
	assert_int_equal(receipt_present(fd), 0);
	assert_int_equal(receipt_read(fd, &b), 0);
	if (receipt_write(fd, &a) == -1) {
		assert_int_equal(errno, ENOTSUP);	/* tmpfs without xattrs */
		close(fd);
		skip();
	}
	assert_int_equal(receipt_present(fd), 1);
	assert_int_equal(receipt_read(fd, &b), 1);
	assert_string_equal(b.path, a.path);
	assert_int_equal(b.size, a.size);
	assert_int_equal(receipt_remove(fd), 0);
	assert_int_equal(receipt_present(fd), 0);
	assert_int_equal(receipt_remove(fd), 0);	/* already gone: fine */
	close(fd);
}

/* receipt_check: every field a session wrote, as the intake checks it. */
static void
test_check(void **state)
{
	static const struct {
		const char *field, *value;
	} bad[] = {
		{ "fid", "" },
		{ "fid", "../../x" },
		{ "fid", "0123456789ABCDEF0123456789abcdef" },	/* upper case */
		{ "fid", "0123456789abcdef0123456789abcde" },	/* 31 */
		{ "fid", "0123456789abcdef0123456789abcde/" },
		{ "partner", "" },
		{ "partner", ".." },
		{ "partner", "../.." },
		{ "partner", "a/b" },
		{ "partner", "_forged" },
		{ "partner", "Acme" },
		{ "partner", "acme\n" },
		{ "partner", "-acme" },
		{ "path", "" },
		{ "path", "/etc/passwd" },
		{ "path", "." },
		{ "path", ".." },
		{ "path", "../x" },
		{ "path", "in/../../x" },
		{ "path", "in/./x" },
		{ "path", "in//x" },
		{ "path", "in/" },
		{ "path", "a\tb" },
		{ "path", "a\\b" },
		{ "path", "bad\xff.csv" },
		{ "sha256", "" },
		{ "sha256", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855" },
		{ "sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85" },
	};
	struct file_rec r;
	char why[256], name[300];
	size_t i;

	(void)state;
	sample(&r);
	assert_int_equal(receipt_check(&r, why, sizeof(why)), 0);
	xstrlcpy(r.path, "x", sizeof(r.path));
	assert_int_equal(receipt_check(&r, why, sizeof(why)), 0);
	xstrlcpy(r.partner, "0a.b_c-d", sizeof(r.partner));
	assert_int_equal(receipt_check(&r, why, sizeof(why)), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sample(&r);
		if (strcmp(bad[i].field, "fid") == 0)
			xstrlcpy(r.fid, bad[i].value, sizeof(r.fid));
		else if (strcmp(bad[i].field, "partner") == 0)
			xstrlcpy(r.partner, bad[i].value, sizeof(r.partner));
		else if (strcmp(bad[i].field, "path") == 0)
			xstrlcpy(r.path, bad[i].value, sizeof(r.path));
		else
			xstrlcpy(r.sha256, bad[i].value, sizeof(r.sha256));
		why[0] = '\0';
		if (receipt_check(&r, why, sizeof(why)) != -1)
			fail_msg("%s \"%s\" passed", bad[i].field, bad[i].value);
		assert_non_null(strstr(why, bad[i].field));
	}
	/* a partner name of 64 characters is one, of 65 is not */
	sample(&r);
	memset(name, 'a', 64);
	name[64] = '\0';
	xstrlcpy(r.partner, name, sizeof(r.partner));
	assert_int_equal(receipt_check(&r, why, sizeof(why)), 0);
	name[64] = 'a';
	name[65] = '\0';
	assert_int_equal(spool_partner_ok(name), 0);
	/* a component of 256 bytes is too long */
	memset(name, 'b', 256);
	name[256] = '\0';
	assert_int_equal(spool_relpath_ok(name), 0);
	name[255] = '\0';
	assert_int_equal(spool_relpath_ok(name), 1);
	/* sizes and the landing inode */
	sample(&r);
	r.size = -1;
	assert_int_equal(receipt_check(&r, why, sizeof(why)), -1);
	sample(&r);
	r.landing_ino = 0;
	assert_int_equal(receipt_check(&r, why, sizeof(why)), -1);
	/* what random_id makes is a fid */
	assert_int_equal(random_id(name, 33), 0);
	assert_int_equal(spool_fid_ok(name), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_rejects_bad),
		cmocka_unit_test(test_on_a_file),
		cmocka_unit_test(test_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
