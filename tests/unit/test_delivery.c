/*
 * test_delivery.c - the delivery receipt's JSON, its name and its expiry
 * (spool/delivery.h), and the read-only folder check (policy/path.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/util.h"
#include "policy/path.h"
#include "spool/delivery.h"

#include "testtree.h"

#define FID	"0123456789abcdef0123456789abcdef"

static void
row(struct file_rec *r, enum file_state st)
{
	memset(r, 0, sizeof(*r));
	r->id = 7;
	xstrlcpy(r->fid, FID, sizeof(r->fid));
	xstrlcpy(r->partner, "acme", sizeof(r->partner));
	xstrlcpy(r->path, "in/2026-11-21.csv", sizeof(r->path));
	r->size = 1048576;
	xstrlcpy(r->sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca4"
	    "95991b7852b855", sizeof(r->sha256));
	r->received_ms = 1795316645120LL;	/* 2026-11-22T03:04:05.120Z */
	r->state = st;
	xstrlcpy(r->object_key, "acme/in/2026-11-21.csv", sizeof(r->object_key));
	xstrlcpy(r->bucket, "my-bucket", sizeof(r->bucket));
	xstrlcpy(r->etag, "\"abc\"", sizeof(r->etag));
	xstrlcpy(r->version_id, "v1", sizeof(r->version_id));
	r->stored_ms = 1795316646000LL;
}

static const char *
str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void
test_stored(void **state)
{
	struct file_rec r;
	struct delivery_info d = { &r, "closed+signature", "8F3A000000000000000000"
	    "000000000000000000", "2026-11-22T03:04:00Z", "gw1", 1795316647000LL };
	static const char *const order[] = { "receipt", "partner", "path",
	    "size", "sha256", "verdict", "rule", "reason", "signer",
	    "signed_at", "received_at", "stored_at", "bucket", "key",
	    "version_id", "etag", "fid", "gateway", "created_at" };
	const char *k;
	json_t *o, *v;
	size_t i = 0;

	(void)state;
	row(&r, FS_ARCHIVED);	/* stored, the spool copy archived */
	assert_non_null(o = delivery_json(&d));
	json_object_foreach(o, k, v) {
		assert_true(i < sizeof(order) / sizeof(order[0]));
		assert_string_equal(k, order[i]);
		i++;
	}
	assert_int_equal(i, sizeof(order) / sizeof(order[0]));
	assert_string_equal(str(o, "receipt"), DELIVERY_FORMAT);
	assert_string_equal(str(o, "verdict"), "stored");
	assert_int_equal(json_integer_value(json_object_get(o, "size")), 1048576);
	assert_string_equal(str(o, "rule"), "closed+signature");
	assert_true(json_is_null(json_object_get(o, "reason")));
	assert_string_equal(str(o, "signer"), d.signer);
	assert_string_equal(str(o, "received_at"), "2026-11-22T03:04:05.120Z");
	assert_string_equal(str(o, "stored_at"), "2026-11-22T03:04:06.000Z");
	assert_string_equal(str(o, "created_at"), "2026-11-22T03:04:07.000Z");
	assert_string_equal(str(o, "bucket"), "my-bucket");
	assert_string_equal(str(o, "key"), "acme/in/2026-11-21.csv");
	assert_string_equal(str(o, "version_id"), "v1");
	assert_string_equal(str(o, "etag"), "\"abc\"");
	assert_string_equal(str(o, "fid"), FID);
	assert_string_equal(str(o, "gateway"), "gw1");
	json_decref(o);

	/* an unversioned bucket: moto's "null" and "" are no version */
	xstrlcpy(r.version_id, "null", sizeof(r.version_id));
	assert_non_null(o = delivery_json(&d));
	assert_true(json_is_null(json_object_get(o, "version_id")));
	json_decref(o);
}

static void
test_rejected(void **state)
{
	struct file_rec r;
	struct delivery_info d = { &r, "", "", "", "gw1", 1795316647000LL };
	json_t *o;
	char *t;

	(void)state;
	row(&r, FS_REJECTED);
	xstrlcpy(r.last_error, "checksum mismatch: bad.csv.sha256 says 00ff",
	    sizeof(r.last_error));
	assert_non_null(o = delivery_json(&d));
	assert_string_equal(str(o, "verdict"), "rejected");
	assert_string_equal(str(o, "reason"), r.last_error);
	/* a rejected file was never stored: no store fields, even if the
	 * row holds leftovers */
	assert_true(json_is_null(json_object_get(o, "stored_at")));
	assert_true(json_is_null(json_object_get(o, "bucket")));
	assert_true(json_is_null(json_object_get(o, "key")));
	assert_true(json_is_null(json_object_get(o, "etag")));
	assert_true(json_is_null(json_object_get(o, "version_id")));
	assert_true(json_is_null(json_object_get(o, "rule")));
	assert_true(json_is_null(json_object_get(o, "signer")));
	json_decref(o);

	/* the text parses back, ends in a newline */
	assert_non_null(t = delivery_text(&d));
	assert_int_equal(t[strlen(t) - 1], '\n');
	assert_non_null(o = json_loads(t, 0, NULL));
	assert_string_equal(str(o, "sha256"), r.sha256);
	json_decref(o);
	free(t);
}

/* Where the copy in the store goes (receipts.store). */
static void
test_store_key(void **state)
{
	struct config cfg;
	struct file_rec r;
	char key[1100];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.store.kind = STORE_S3;
	cfg.store.prefix = "in/";
	cfg.receipts.dir = "proof";
	row(&r, FS_STORED);
	assert_int_equal(delivery_store_key(&cfg, &r, 0, key, sizeof(key)), 0);
	assert_string_equal(key, "acme/in/2026-11-21.csv.receipt.json");
	assert_int_equal(delivery_store_key(&cfg, &r, 1, key, sizeof(key)), 0);
	assert_string_equal(key, "acme/in/2026-11-21.csv.receipt.json.asc");
	row(&r, FS_REJECTED);
	assert_int_equal(delivery_store_key(&cfg, &r, 1, key, sizeof(key)), 0);
	assert_string_equal(key, "in/acme/proof/" FID "-2026-11-21.csv.json.asc");
	cfg.store.kind = STORE_FILE;
	assert_int_equal(delivery_store_key(&cfg, &r, 0, key, sizeof(key)), 0);
	assert_string_equal(key, "acme/proof/" FID "-2026-11-21.csv.json");
	assert_int_equal(delivery_store_key(&cfg, &r, 0, key, 20), -1);
	row(&r, FS_ACCEPTED);
	assert_int_equal(delivery_store_key(&cfg, &r, 0, key, sizeof(key)), -1);
}

static void
test_not_final(void **state)
{
	static const enum file_state st[] = { FS_RECEIVED, FS_WAITING,
	    FS_ACCEPTED, FS_UPLOADING, FS_HELD, FS_CONSUMED, FS_NONE };
	struct file_rec r;
	struct delivery_info d = { &r, "", "", "", "gw1", 1 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		row(&r, st[i]);
		assert_null(delivery_verdict(&r));
		assert_null(delivery_json(&d));
		assert_null(delivery_text(&d));
	}
}

static void
test_name(void **state)
{
	char out[512], path[600];
	size_t n;

	(void)state;
	assert_int_equal(delivery_name(FID, "in/a.csv", 0, out, sizeof(out)), 0);
	assert_string_equal(out, FID "-a.csv.json");
	assert_int_equal(delivery_name(FID, "a.csv", 1, out, sizeof(out)), 0);
	assert_string_equal(out, FID "-a.csv.json.asc");
	/* a session's word: never joined unchecked */
	assert_int_equal(delivery_name("../x", "a", 0, out, sizeof(out)), -1);
	assert_int_equal(delivery_name(FID, "../a", 0, out, sizeof(out)), -1);
	assert_int_equal(delivery_name(FID, "/a", 0, out, sizeof(out)), -1);
	assert_int_equal(delivery_name(FID, "a", 0, out, 10), -1);
	/* a 255-byte name is cut to fit NAME_MAX, never inside a UTF-8
	 * character (U+00E9 is two bytes) */
	memset(path, 0, sizeof(path));
	for (n = 0; n + 2 <= 254; n += 2)
		memcpy(path + n, "\xc3\xa9", 2);
	path[n] = 'x';
	assert_int_equal(delivery_name(FID, path, 1, out, sizeof(out)), 0);
	assert_true(strlen(out) <= 255);
	n = strlen(out) - strlen(".json.asc");
	assert_string_equal(out + n, ".json.asc");
	assert_true(((unsigned char)out[n - 1] & 0xc0) == 0x80);	/* ends whole */
	assert_true(((unsigned char)out[n - 2]) == 0xc3);
}

static void
test_path_under(void **state)
{
	(void)state;
	assert_int_equal(path_under("receipts", "receipts"), 1);
	assert_int_equal(path_under("receipts/a.json", "receipts"), 1);
	assert_int_equal(path_under("receipts/x/y", "receipts"), 1);
	/* prefix twins and other places are not beneath it */
	assert_int_equal(path_under("receiptsX", "receipts"), 0);
	assert_int_equal(path_under("receipts.json", "receipts"), 0);
	assert_int_equal(path_under("in/receipts", "receipts"), 0);
	assert_int_equal(path_under(".", "receipts"), 0);
	/* off */
	assert_int_equal(path_under("receipts", NULL), 0);
	assert_int_equal(path_under("receipts", ""), 0);
}

static void
test_expire(void **state)
{
	char dir[] = "/tmp/sluice-delivery-XXXXXX";
	struct timespec old[2] = { { 1000, 0 }, { 1000, 0 } };
	struct stat sb;
	int dfd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_true((dfd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0);
	assert_int_equal(write_file_at(dfd, FID "-old.json", "{}", 2, 0640), 0);
	assert_int_equal(write_file_at(dfd, FID "-old.json.asc", "x", 1, 0640), 0);
	assert_int_equal(write_file_at(dfd, FID "-new.json", "{}", 2, 0640), 0);
	assert_int_equal(write_file_at(dfd, "notes.txt", "x", 1, 0640), 0);
	assert_int_equal(utimensat(dfd, FID "-old.json", old, 0), 0);
	assert_int_equal(utimensat(dfd, FID "-old.json.asc", old, 0), 0);
	assert_int_equal(utimensat(dfd, "notes.txt", old, 0), 0);
	assert_int_equal(delivery_expire(dfd, 2000), 2);
	assert_int_equal(fstatat(dfd, FID "-old.json", &sb, 0), -1);
	assert_int_equal(fstatat(dfd, FID "-old.json.asc", &sb, 0), -1);
	assert_int_equal(fstatat(dfd, FID "-new.json", &sb, 0), 0);
	assert_int_equal(fstatat(dfd, "notes.txt", &sb, 0), 0);	/* not ours */
	close(dfd);
	testtree_remove(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stored),
		cmocka_unit_test(test_rejected),
		cmocka_unit_test(test_store_key),
		cmocka_unit_test(test_not_final),
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_path_under),
		cmocka_unit_test(test_expire),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
