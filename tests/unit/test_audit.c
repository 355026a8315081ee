/* Unit tests for audit/: chaining, verification and tamper detection. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit/audit.h"
#include "common/util.h"

static char dir[] = "/tmp/sluice-test-audit-XXXXXX";
static char path[256];

static int
setup(void **state)
{
	static int n;

	(void)state;
	if (dir[sizeof(dir) - 2] == 'X' && mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/audit-%d.jsonl", dir, n++);
	return 0;
}

static char *
slurp(const char *p, size_t *len)
{
	FILE *f = fopen(p, "r");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void
spit(const char *p, const char *buf, size_t len)
{
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
}

static void
emit_n(const char *p, int n)
{
	struct audit *a = audit_open(p);
	int i;

	assert_non_null(a);
	for (i = 0; i < n; i++)
		assert_int_equal(audit_emit(a, "file.received",
		    json_pack("{s:s,s:i}", "path", "a/b.csv", "size", i)), 0);
	audit_close(a);
}

static int
verify_quiet(const char *p, char *msg, size_t len)
{
	FILE *out = fmemopen(msg, len, "w");
	int rc;

	assert_non_null(out);
	rc = audit_verify(p, out);
	fclose(out);
	return rc;
}

static void
test_chain_links_each_record(void **state)
{
	char *buf, *line2, msg[512];
	size_t len;
	uint8_t h[SHA256_LEN];
	char hex[SHA256_HEX], want[100];
	json_t *r1, *r2;

	(void)state;
	emit_n(path, 3);
	buf = slurp(path, &len);
	line2 = strchr(buf, '\n') + 1;
	/* record 2's prev is the SHA-256 of record 1's line up to its seal */
	assert_int_equal(sha256_buf(buf, (size_t)(strstr(buf, ",\"hash\":") - buf), h), 0);
	hex_encode(h, sizeof(h), hex);
	snprintf(want, sizeof(want), "\"prev\":\"%s\"", hex);
	r2 = json_loadb(line2, (size_t)(strchr(line2, '\n') - line2), 0, NULL);
	assert_non_null(r2);
	assert_string_equal(json_string_value(json_object_get(r2, "prev")), hex);
	assert_int_equal(json_integer_value(json_object_get(r2, "seq")), 2);
	assert_string_equal(json_string_value(json_object_get(r2, "event")),
	    "file.received");
	assert_int_equal(json_integer_value(json_object_get(r2, "size")), 1);
	r1 = json_loadb(buf, (size_t)(line2 - 1 - buf), 0, NULL);
	assert_string_equal(json_string_value(json_object_get(r1, "prev")),
	    "0000000000000000000000000000000000000000000000000000000000000000");
	json_decref(r1);
	json_decref(r2);
	free(buf);
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "3 records, chain intact"));
}

static void
test_flipped_byte_names_its_line(void **state)
{
	char *buf, *p, msg[512], want[300];
	size_t len;
	int i;

	(void)state;
	emit_n(path, 5);
	buf = slurp(path, &len);
	/* Change the size field of record 3 (1 -> 9 style edit). */
	for (p = buf, i = 1; i < 3; i++)
		p = strchr(p, '\n') + 1;
	p = strstr(p, "\"size\":2");
	assert_non_null(p);
	p[7] = '7';
	spit(path, buf, len);
	free(buf);
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 1);
	/* The edited record is named by its own line. */
	snprintf(want, sizeof(want), "%s:3: record was altered", path);
	assert_non_null(strstr(msg, want));
}

static void
test_deleted_record_detected(void **state)
{
	char *buf, *l2, *l3, msg[512], want[300];
	size_t len;

	(void)state;
	emit_n(path, 4);
	buf = slurp(path, &len);
	l2 = strchr(buf, '\n') + 1;
	l3 = strchr(l2, '\n') + 1;
	memmove(l2, l3, len - (size_t)(l3 - buf));
	len -= (size_t)(l3 - l2);
	spit(path, buf, len);
	free(buf);
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 1);
	snprintf(want, sizeof(want), "%s:2:", path);
	assert_non_null(strstr(msg, want));
}

static void
test_truncated_tail_detected(void **state)
{
	char *buf, msg[512], want[300];
	size_t len;

	(void)state;
	emit_n(path, 2);
	buf = slurp(path, &len);
	spit(path, buf, len - 5);
	free(buf);
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 1);
	snprintf(want, sizeof(want), "%s:2: record is not terminated", path);
	assert_non_null(strstr(msg, want));
	/* A writer refuses to chain onto a torn record. */
	{
		struct audit *a = audit_open(path);
		assert_non_null(a);
		assert_int_equal(audit_emit(a, "x", NULL), -1);
		audit_close(a);
	}
}

static void
test_concurrent_writers_keep_one_chain(void **state)
{
	char msg[512];
	pid_t pids[4];
	int i, status;

	(void)state;
	for (i = 0; i < 4; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct audit *a = audit_open(path);
			int j;

			for (j = 0; j < 50; j++)
				if (audit_emit(a, "t", json_pack("{s:i,s:i}",
				    "writer", i, "n", j)) != 0)
					_exit(1);
			audit_close(a);
			_exit(0);
		}
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "200 records, chain intact"));
}

/* A record longer than the writer's first look-back window still chains. */
static void
test_long_record_chains(void **state)
{
	struct audit *a;
	char *big, msg[512];

	(void)state;
	big = malloc(20000);
	assert_non_null(big);
	memset(big, 'x', 19999);
	big[19999] = '\0';
	a = audit_open(path);
	assert_non_null(a);
	assert_int_equal(audit_emit(a, "big", json_pack("{s:s}", "path", big)), 0);
	assert_int_equal(audit_emit(a, "after", NULL), 0);
	assert_int_equal(audit_emit(a, "after2", NULL), 0);
	audit_close(a);
	free(big);
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "3 records, chain intact"));
}

static void
test_missing_file(void **state)
{
	char msg[512];

	(void)state;
	assert_int_equal(verify_quiet("/nonexistent/sluice/audit.jsonl", msg,
	    sizeof(msg)), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_chain_links_each_record, setup),
		cmocka_unit_test_setup(test_flipped_byte_names_its_line, setup),
		cmocka_unit_test_setup(test_deleted_record_detected, setup),
		cmocka_unit_test_setup(test_truncated_tail_detected, setup),
		cmocka_unit_test_setup(test_concurrent_writers_keep_one_chain, setup),
		cmocka_unit_test_setup(test_long_record_chains, setup),
		cmocka_unit_test_setup(test_missing_file, setup),
	};

	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (dir[sizeof(dir) - 2] != 'X' && system(cmd) != 0)
		rc++;
	return rc;
}
