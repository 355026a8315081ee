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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_rejects_bad),
		cmocka_unit_test(test_on_a_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
