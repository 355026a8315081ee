/*
 * Unit tests for audit/: chaining, verification and tamper detection, and
 * the writer role with its clients (group commit, the session user's
 * restrictions, malformed messages, the fallback to the file).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testtree.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "common/util.h"
#include "policy/config.h"

static char dir[] = "/tmp/sluice-test-audit-XXXXXX";
static int dir_made;	/* (mkdtemp's random part may end in 'X' itself) */
static char path[256];

static int
setup(void **state)
{
	static int n;

	(void)state;
	if (!dir_made) {
		if (mkdtemp(dir) == NULL)
			return -1;
		dir_made = 1;
	}
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


/* ---- the keyed (HMAC) chain ---- */

static char keypath[300], keypath2[300];

/* A fresh key at keypath (and another at keypath2); returns the first. */
static struct audit_key *
keys_make(struct audit_key **other)
{
	struct audit_key *k;

	snprintf(keypath, sizeof(keypath), "%s.key", path);
	snprintf(keypath2, sizeof(keypath2), "%s.key2", path);
	unlink(keypath);
	unlink(keypath2);
	k = audit_key_create(keypath);
	assert_non_null(k);
	if (other != NULL) {
		*other = audit_key_create(keypath2);
		assert_non_null(*other);
		assert_string_not_equal(audit_key_id(k), audit_key_id(*other));
	}
	return k;
}

static void
emit_keyed(const char *p, const char *kp, int n)
{
	struct audit *a = audit_open(p);
	int i;

	assert_non_null(a);
	assert_int_equal(audit_set_key(a, kp), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(audit_emit(a, "file.received",
		    json_pack("{s:s,s:i}", "path", "a/b.csv", "size", i)), 0);
	audit_close(a);
}

static int
verify_keys_quiet(const char *p, struct audit_key *k, char *msg, size_t len)
{
	FILE *out = fmemopen(msg, len, "w");
	struct audit_key *keys[1] = { k };
	int rc;

	assert_non_null(out);
	rc = audit_verify_keys(p, keys, k ? 1 : 0, out);
	fclose(out);
	return rc;
}

#define MAXL	32

/* The trail's lines (without newlines), malloc'd; returns how many. */
static int
lines_read(const char *p, char **lines)
{
	char *buf, *line, *nl;
	size_t len;
	int n = 0;

	buf = slurp(p, &len);
	for (line = buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = '\0';
		assert_true(n < MAXL);
		lines[n++] = strdup(line);
	}
	free(buf);
	return n;
}

/* As lines_read, for up to max lines. */
static int
lines_read_big(const char *p, char **lines, int max)
{
	char *buf, *line, *nl;
	size_t len;
	int n = 0;

	buf = slurp(p, &len);
	for (line = buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = '\0';
		assert_true(n < max);
		lines[n++] = strdup(line);
	}
	free(buf);
	return n;
}

/*
 * What someone with write access but without the key can do: renumber
 * "seq", recompute every "prev" and "hash" (the plain chain), keep the
 * "kid" and "mac" as they are. Writes the lines to p and frees them.
 */
static void
lines_rechain(const char *p, char **lines, int n)
{
	char prev[SHA256_HEX], hex[SHA256_HEX], *pre, *out, *hp, *pp, *rest;
	uint8_t h[SHA256_LEN];
	FILE *f;
	int i;

	memset(prev, '0', 64);
	prev[64] = '\0';
	assert_non_null(f = fopen(p, "w"));
	for (i = 0; i < n; i++) {
		hp = strstr(lines[i], ",\"hash\":\"");
		assert_non_null(hp);
		rest = hp + 9 + 64;		/* '"}' or '","mac":"..."}' */
		*hp = '\0';
		pp = strstr(lines[i], "\"prev\":\"");
		assert_non_null(pp);
		memcpy(pp + 8, prev, 64);
		pre = strchr(lines[i], ',');	/* after {"seq":N */
		assert_true(asprintf(&out, "{\"seq\":%d%s", i + 1, pre) > 0);
		assert_int_equal(sha256_buf(out, strlen(out), h), 0);
		hex_encode(h, sizeof(h), hex);
		fprintf(f, "%s,\"hash\":\"%s%s\n", out, hex, rest);
		memcpy(prev, hex, SHA256_HEX);
		free(out);
		free(lines[i]);
	}
	fclose(f);
}

static void
test_key_file_rules(void **state)
{
	struct audit_key *k, *k2;
	struct stat st;

	(void)state;
	k = keys_make(NULL);
	assert_int_equal(stat(keypath, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0400);
	assert_int_equal(st.st_size, 32);
	assert_int_equal(strlen(audit_key_id(k)), 8);
	/* Loading it again gives the same key id; create never replaces. */
	assert_non_null(k2 = audit_key_load(keypath, 1));
	assert_string_equal(audit_key_id(k), audit_key_id(k2));
	audit_key_free(k2);
	assert_non_null(k2 = audit_key_create(keypath));
	assert_string_equal(audit_key_id(k), audit_key_id(k2));
	audit_key_free(k2);
	/* Group- or world-readable: refused. */
	assert_int_equal(chmod(keypath, 0440), 0);
	assert_null(audit_key_load(keypath, 0));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(chmod(keypath, 0404), 0);
	assert_null(audit_key_load(keypath, 0));
	assert_int_equal(chmod(keypath, 0400), 0);
	/* Missing: ENOENT, so the writer knows to create one. */
	assert_null(audit_key_load("/nonexistent/sluice/audit.key", 1));
	assert_int_equal(errno, ENOENT);
	audit_key_free(k);
}

static void
test_keyed_chain_verifies(void **state)
{
	struct audit_key *k;
	char msg[1024], *lines[MAXL];
	json_t *r;
	int n;

	(void)state;
	k = keys_make(NULL);
	emit_keyed(path, keypath, 4);
	n = lines_read(path, lines);
	assert_int_equal(n, 4);
	r = json_loads(lines[3], JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r, "kid")),
	    audit_key_id(k));
	assert_int_equal(strlen(json_string_value(json_object_get(r, "mac"))),
	    64);
	json_decref(r);
	while (n > 0)
		free(lines[--n]);
	assert_int_equal(verify_keys_quiet(path, k, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "4 records, chain intact, MACs good"));
	/* No key: the structure is checked, and it says what was not. */
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "4 records, chain intact"));
	assert_non_null(strstr(msg, "MACs not checked"));
	audit_key_free(k);
}

/* An edited field, the plain chain recomputed: only the MAC tells. */
static void
test_edit_rechained_caught_by_mac(void **state)
{
	struct audit_key *k;
	char msg[1024], *lines[MAXL], *p;
	int n;

	(void)state;
	k = keys_make(NULL);
	emit_keyed(path, keypath, 5);
	n = lines_read(path, lines);
	assert_non_null(p = strstr(lines[2], "\"size\":2"));
	p[7] = '7';
	lines_rechain(path, lines, n);
	/* The forgery passes the plain chain (that is the point)... */
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "MACs not checked"));
	/* ...and fails the keyed one, at the edited line. */
	assert_int_equal(verify_keys_quiet(path, k, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, ":3: MAC does not match"));
	audit_key_free(k);
}

static void
test_delete_insert_swap_rechained_caught(void **state)
{
	struct audit_key *k;
	char msg[1024], *lines[MAXL], *tmp;
	int n, i;

	(void)state;
	k = keys_make(NULL);
	/* Deleted record 3. */
	emit_keyed(path, keypath, 5);
	n = lines_read(path, lines);
	free(lines[2]);
	for (i = 2; i < n - 1; i++)
		lines[i] = lines[i + 1];
	lines_rechain(path, lines, n - 1);
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 0);
	assert_int_equal(verify_keys_quiet(path, k, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, ":3: MAC does not match"));

	/* A copy of record 2 inserted after it. */
	unlink(path);
	emit_keyed(path, keypath, 5);
	n = lines_read(path, lines);
	for (i = n; i > 2; i--)
		lines[i] = lines[i - 1];
	lines[2] = strdup(lines[1]);
	lines_rechain(path, lines, n + 1);
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 0);
	assert_int_equal(verify_keys_quiet(path, k, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, ":3: MAC does not match"));

	/* Records 2 and 3 swapped. */
	unlink(path);
	emit_keyed(path, keypath, 5);
	n = lines_read(path, lines);
	tmp = lines[1];
	lines[1] = lines[2];
	lines[2] = tmp;
	lines_rechain(path, lines, n);
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 0);
	assert_int_equal(verify_keys_quiet(path, k, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, ":2: MAC does not match"));
	audit_key_free(k);
}

static void
test_wrong_key_named(void **state)
{
	struct audit_key *k, *other;
	char msg[1024];

	(void)state;
	k = keys_make(&other);
	emit_keyed(path, keypath, 3);
	assert_int_equal(verify_keys_quiet(path, other, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, ":1: wrong key"));
	assert_non_null(strstr(msg, audit_key_id(k)));
	assert_int_equal(verify_keys_quiet(path, k, msg, sizeof(msg)), 0);
	audit_key_free(k);
	audit_key_free(other);
}

/*
 * Stripped MACs are caught; an unkeyed trail fails a check with a key; a
 * process without the key does not append to a keyed trail; an unkeyed
 * start (before the key) is bound by the first MAC.
 */
static void
test_mixed_and_stripped(void **state)
{
	struct audit_key *k;
	struct audit *a;
	char msg[1024], *lines[MAXL], *p, *before, *after;
	size_t blen, alen;
	int n;

	(void)state;
	k = keys_make(NULL);
	emit_n(path, 2);			/* before the key */
	assert_int_equal(verify_keys_quiet(path, k, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, ":1: no record carries a MAC"));
	emit_keyed(path, keypath, 2);
	assert_int_equal(verify_keys_quiet(path, k, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "records 1-2 have no MAC"));
	/* Without the key: refused, the trail unchanged. */
	before = slurp(path, &blen);
	assert_non_null(a = audit_open(path));
	assert_int_equal(audit_set_key(a, "/nonexistent/sluice/audit.key"), -1);
	assert_int_equal(audit_emit(a, "queue.retry", NULL), -1);
	audit_close(a);
	after = slurp(path, &alen);
	assert_int_equal(blen, alen);
	assert_memory_equal(before, after, blen);
	free(before);
	free(after);
	/* Record 2 of the unkeyed start edited and rechained: line 3's MAC. */
	n = lines_read(path, lines);
	assert_non_null(p = strstr(lines[1], "\"size\":1"));
	p[7] = '8';
	lines_rechain(path, lines, n);
	assert_int_equal(verify_keys_quiet(path, k, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, ":3: MAC does not match"));
	/* The last record's MAC stripped. */
	unlink(path);
	emit_keyed(path, keypath, 3);
	n = lines_read(path, lines);
	assert_non_null(p = strstr(lines[2], "\",\"mac\":\""));
	memcpy(p, "\"}", 3);
	lines_rechain(path, lines, n);
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, ":3: record has no \"mac\""));
	audit_key_free(k);
}

/* ---- the writer role and its clients ---- */

static char sockdir[] = "/tmp/sluice-test-auditsock-XXXXXX";
static int sockdir_made;
static char sockpath[128];
static pid_t writer_pid;	/* a writer a failed test left running */
static const char *writer_key;	/* the writer's audit_key_path, or NULL */
static int64_t writer_segmax;	/* the writer's audit_segment_max */
static char segdir[300];	/* the writer's segments: path + ".seg" */
static const char *writer_host;	/* the writer's audit_host_id, or NULL */

static int
teardown(void **state)
{
	(void)state;
	writer_key = NULL;
	writer_segmax = 0;
	if (writer_pid > 0) {
		kill(writer_pid, SIGKILL);
		waitpid(writer_pid, NULL, 0);
		writer_pid = 0;
	}
	return 0;
}

/* Forks a writer on a fresh socket; restrict: the session uid or -1. */
static pid_t
writer_start(const char *trail, uid_t restrict_uid)
{
	pid_t pid;
	int fd;

	if (!sockdir_made) {
		assert_non_null(mkdtemp(sockdir));
		sockdir_made = 1;
		/* The session-user client must reach the socket. */
		assert_int_equal(chmod(sockdir, 0755), 0);
	}
	snprintf(sockpath, sizeof(sockpath), "%s/audit.sock", sockdir);
	snprintf(segdir, sizeof(segdir), "%s.seg", trail);
	fd = audit_listen(sockpath, (uid_t)-1, (gid_t)-1, 0666);
	assert_true(fd >= 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct config cfg;

		memset(&cfg, 0, sizeof(cfg));
		cfg.audit_path = (char *)trail;
		cfg.audit_key_path = (char *)writer_key;
		cfg.audit_segments_dir = segdir;
		cfg.audit_segment_max = writer_segmax;
		cfg.audit_host_id = (char *)(writer_host != NULL ?
		    writer_host : "gw-test.1");
		if (restrict_uid != (uid_t)-1)
			audit_writer_restrict_uid(restrict_uid);
		_exit(audit_writer_run(&cfg, fd) == 0 ? 0 : 1);
	}
	close(fd);
	writer_pid = pid;
	return pid;
}

/* SIGTERM; the writer must exit 0 (it did not crash or fail). */
static void
writer_stop(pid_t pid)
{
	int status;

	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	writer_pid = 0;
	if (!WIFEXITED(status))
		fail_msg("the writer died of signal %d", WTERMSIG(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
children_wait(pid_t *pids, int n)
{
	int i, status;

	for (i = 0; i < n; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("client %d exited with status %d", i,
			    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}
}

/* Counts the trail's lines that contain needle. */
static int
count_lines(const char *p, const char *needle)
{
	char *buf, *line, *nl;
	size_t len;
	int n = 0;

	buf = slurp(p, &len);
	for (line = buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		*nl = '\0';
		if (strstr(line, needle) != NULL)
			n++;
	}
	free(buf);
	return n;
}

/* Verifies segdir + path as one trail; the summary or error into msg. */
static int
trail_verify(struct audit_key **keys, size_t nkeys, char *msg, size_t len)
{
	const char *paths[2] = { segdir, path };
	FILE *out = fmemopen(msg, len, "w");
	int rc;

	assert_non_null(out);
	rc = audit_verify_trail(paths, 2, keys, nkeys,
	    AUDIT_VERIFY_SKIP_MISSING, out);
	fclose(out);
	return rc;
}

/* The names of segdir's sealed segments, in order; how many. */
static int
segments_list(char names[][64], int max)
{
	struct dirent **ents;
	int i, n, k = 0;

	n = scandir(segdir, &ents, NULL, alphasort);
	assert_true(n >= 0);
	for (i = 0; i < n; i++) {
		if (strncmp(ents[i]->d_name, "audit-", 6) == 0 &&
		    strlen(ents[i]->d_name) == 37 && k < max)
			memcpy(names[k++], ents[i]->d_name, 38);
		free(ents[i]);
	}
	free(ents);
	return k;
}

/* The record on line `line` (1-based; 0: the last) of file p, parsed. */
static json_t *
record_at(const char *p, int line)
{
	char *lines[512];
	json_t *r;
	int n, i;

	n = lines_read_big(p, lines, 512);
	assert_true(n > 0);
	if (line == 0)
		line = n;
	assert_true(line <= n);
	r = json_loads(lines[line - 1], 0, NULL);
	assert_non_null(r);
	for (i = 0; i < n; i++)
		free(lines[i]);
	return r;
}

#define NCLIENTS	50
#define NRECORDS	100

/*
 * Many clients at once, mixing deferred batches (audit_defer + audit_sync)
 * and durable emits: one intact chain, every record exactly once.
 */
static void
test_writer_many_clients_one_chain(void **state)
{
	static int seen[NCLIENTS][NRECORDS];
	pid_t writer, pids[NCLIENTS];
	char *buf, *line, *nl, msg[512], want[64];
	size_t len;
	int i, j;

	(void)state;
	writer = writer_start(path, (uid_t)-1);
	for (i = 0; i < NCLIENTS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct audit *a = audit_connect(sockpath);

			if (a == NULL)
				_exit(2);
			for (j = 0; j < NRECORDS; j++) {
				int batch = (j / 10) % 2 == 0;

				if (batch && j % 10 == 0)
					audit_defer(a);
				if (audit_emit(a, "t.mixed", json_pack("{s:i,s:i,s:s}",
				    "client", i, "n", j, "mode", batch ?
				    "deferred" : "durable")) != 0)
					_exit(3);
				if (batch && j % 10 == 9 && audit_sync(a) != 0)
					_exit(4);
			}
			audit_close(a);
			_exit(0);
		}
	}
	children_wait(pids, NCLIENTS);
	writer_stop(writer);
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 0);
	snprintf(want, sizeof(want), "%d records, chain intact",
	    NCLIENTS * NRECORDS);
	assert_non_null(strstr(msg, want));
	memset(seen, 0, sizeof(seen));
	buf = slurp(path, &len);
	for (line = buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
		json_t *r = json_loadb(line, (size_t)(nl - line), 0, NULL);
		json_int_t c, n;

		assert_non_null(r);
		c = json_integer_value(json_object_get(r, "client"));
		n = json_integer_value(json_object_get(r, "n"));
		assert_true(c >= 0 && c < NCLIENTS && n >= 0 && n < NRECORDS);
		seen[c][n]++;
		json_decref(r);
	}
	free(buf);
	for (i = 0; i < NCLIENTS; i++)
		for (j = 0; j < NRECORDS; j++)
			if (seen[i][j] != 1)
				fail_msg("client %d record %d stored %d times", i,
				    j, seen[i][j]);
}

/* Runs fn in a child as uid/gid; returns its exit status. */
static int
as_user(uid_t uid, gid_t gid, int (*fn)(void))
{
	pid_t pid;
	int status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) == -1 || setresgid(gid, gid, gid) == -1 ||
		    setresuid(uid, uid, uid) == -1)
			_exit(100);
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static pid_t session_pid;

/* The session user's client: which events it may and may not record. */
static int
session_client(void)
{
	struct audit *a = audit_connect(sockpath);
	int rc = 0;

	if (a == NULL)
		return 99;
	if (audit_emit(a, "file.stored", json_pack("{s:s}", "key",
	    "forged")) != -1)
		rc |= 1;
	if (audit_emit(a, "auth.failure", json_pack("{s:s}", "user",
	    "bank")) != 0)
		rc |= 2;
	/* A refused record in a deferred batch fails the batch's sync. */
	audit_defer(a);
	if (audit_emit(a, "file.received", NULL) != 0 ||
	    audit_emit(a, "sftp.op", NULL) != 0)
		rc |= 4;
	if (audit_sync(a) != -1)
		rc |= 8;
	/* ... and the next batch starts clean. */
	if (audit_emit(a, "session.end", NULL) != 0 ||
	    audit_emit(a, "file.failed", NULL) != 0)
		rc |= 16;
	audit_close(a);
	return rc;
}

/* A uid that is neither root, the writer's nor the session user's. */
static int
stranger_client(void)
{
	struct audit *a = audit_connect(sockpath);
	int rc;

	if (a == NULL)
		return 0;	/* refused at once: fine too */
	rc = audit_emit(a, "auth.success", NULL) == -1 ? 0 : 1;
	audit_close(a);
	return rc;
}

static void
test_writer_restricts_session_user(void **state)
{
	struct passwd *pw;
	struct audit *a;
	pid_t writer;
	char msg[512], want[128];
	int rc;

	(void)state;
	if (geteuid() != 0 || (pw = getpwnam("nobody")) == NULL) {
		print_message("skipped: needs root and a 'nobody' user to run a "
		    "client as the session user\n");
		skip();
	}
	writer = writer_start(path, pw->pw_uid);
	rc = as_user(pw->pw_uid, pw->pw_gid, session_client);
	if (rc != 0)
		fail_msg("session client: %d (bits: 1 file.stored accepted, 2 "
		    "auth.failure refused, 4 deferred send, 8 sync passed a "
		    "refused record, 16 after the batch)", rc);
	assert_int_equal(as_user(54321, 54321, stranger_client), 0);
	/* Root (a trusted role) records anything. */
	a = audit_connect(sockpath);
	assert_non_null(a);
	assert_int_equal(audit_emit(a, "file.stored", json_pack("{s:s}", "by",
	    "uploader")), 0);
	audit_close(a);
	writer_stop(writer);
	(void)session_pid;
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 0);
	assert_int_equal(count_lines(path, "\"event\":\"file.stored\""), 1);
	assert_int_equal(count_lines(path, "\"by\":\"uploader\""), 1);
	assert_int_equal(count_lines(path, "\"event\":\"file.received\""), 0);
	assert_int_equal(count_lines(path, "\"event\":\"auth.failure\""), 1);
	assert_int_equal(count_lines(path, "\"event\":\"sftp.op\""), 1);
	assert_int_equal(count_lines(path, "\"event\":\"session.end\""), 1);
	assert_int_equal(count_lines(path, "\"event\":\"file.failed\""), 1);
	assert_int_equal(count_lines(path, "\"event\":\"auth.success\""), 0);
	assert_int_equal(count_lines(path, "\"event\":\"audit.refused\""), 2);
	snprintf(want, sizeof(want), "\"refused\":\"file.stored\",\"pid\":");
	assert_int_equal(count_lines(path, want), 1);
	snprintf(want, sizeof(want), "\"uid\":%u", (unsigned)pw->pw_uid);
	assert_int_equal(count_lines(path, want), 2);
	assert_int_equal(count_lines(path, "\"refused\":\"file.received\""), 1);
}

/*
 * A raw client: connects, sends one message, waits for the writer's
 * answer: 1 if it hung up, 0 if it replied.
 */
static int
raw_send_then_reply(const void *m, size_t len)
{
	struct sockaddr_un sun;
	struct pollfd pfd;
	char r[8];
	ssize_t n;
	int fd, sz = 1024 * 1024;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	xstrlcpy(sun.sun_path, sockpath, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	assert_true(fd >= 0);
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	n = send(fd, m, len, MSG_NOSIGNAL);
	assert_int_equal(n, (ssize_t)len);
	pfd.fd = fd;
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 10000), 1);
	n = recv(fd, r, sizeof(r), 0);
	close(fd);
	assert_true(n == 0 || n == 4);
	return n == 0;
}

#define raw_send_then_eof(m, len)	raw_send_then_reply(m, len)

static void
test_writer_survives_malformed_messages(void **state)
{
	static const char *bad_json[] = {
		"{",
		"[1,2]",
		"{\"event\":\"bad name!\"}",
		"{\"event\":\"ok\",\"fields\":[1]}",
		"{\"event\":\"ok\",\"seq\":7}",
		"{\"event\":\"ok\",\"event\":\"twice\"}",
		"{\"fields\":{}}",
	};
	struct { uint32_t type, flags; } h;
	char *m, msg[512];
	struct audit *a;
	pid_t writer;
	size_t i, blen;
	int fd, n;

	(void)state;
	writer = writer_start(path, (uid_t)-1);
	m = calloc(1, 200 * 1024);
	assert_non_null(m);
	/* Shorter than a header. */
	assert_true(raw_send_then_eof("abc", 3));
	/* Unknown type, unknown flags, SYNC with a body. */
	h.type = 99; h.flags = 0;
	assert_true(raw_send_then_eof(&h, sizeof(h)));
	h.type = 1; h.flags = 0x80;
	memcpy(m, &h, sizeof(h));
	memcpy(m + sizeof(h), "{\"event\":\"x\"}", 13);
	assert_true(raw_send_then_eof(m, sizeof(h) + 13));
	h.type = 2; h.flags = 0;
	memcpy(m, &h, sizeof(h));
	assert_true(raw_send_then_eof(m, sizeof(h) + 4));
	/* Bodies that are not a record. */
	for (i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
		h.type = 1; h.flags = 1;
		memcpy(m, &h, sizeof(h));
		blen = strlen(bad_json[i]);
		memcpy(m + sizeof(h), bad_json[i], blen);
		if (!raw_send_then_eof(m, sizeof(h) + blen))
			fail_msg("the writer kept a client that sent %s",
			    bad_json[i]);
	}
	/* Random bodies behind a RECORD header: acked (-> ok) or cut off. */
	srandom(10);
	for (i = 0; i < 200; i++) {
		size_t k, rl = (size_t)(random() % 300) + 1;
		static const char alpha[] = "{}[]\":,. evntfilds0123x\\u";

		h.type = 1; h.flags = 1;
		memcpy(m, &h, sizeof(h));
		memcpy(m + sizeof(h), "{\"event\":\"", 10);
		for (k = 0; k < rl; k++)
			m[sizeof(h) + 10 + k] = (i % 2) ? (char)random() :
			    alpha[random() % (sizeof(alpha) - 1)];
		(void)raw_send_then_reply(m, sizeof(h) + 10 + rl);
	}
	/* Longer than AUDIT_MAX_LINE. */
	h.type = 1; h.flags = 1;
	memcpy(m, &h, sizeof(h));
	memset(m + sizeof(h), ' ', 150 * 1024);
	assert_true(raw_send_then_eof(m, 150 * 1024));
	free(m);
	/* A client that never reads its acks is dropped, not waited for. */
	{
		struct sockaddr_un sun;
		struct timeval tv = { 10, 0 };
		char rec[64];
		int dropped = 0;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		xstrlcpy(sun.sun_path, sockpath, sizeof(sun.sun_path));
		fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		assert_int_equal(connect(fd, (struct sockaddr *)&sun,
		    sizeof(sun)), 0);
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
		    sizeof(tv)), 0);
		h.type = 1; h.flags = 1;
		memcpy(rec, &h, sizeof(h));
		memcpy(rec + sizeof(h), "{\"event\":\"flood\"}", 17);
		for (n = 0; n < 100000 && !dropped; n++)
			if (send(fd, rec, sizeof(h) + 17, MSG_NOSIGNAL) == -1)
				dropped = errno == EPIPE || errno == ECONNRESET;
		close(fd);
		if (!dropped)
			fail_msg("a client that reads no acks was not dropped "
			    "after %d records", n);
	}
	/* The writer is still there and still chains. */
	a = audit_connect(sockpath);
	assert_non_null(a);
	assert_int_equal(audit_emit(a, "after.malformed", NULL), 0);
	audit_close(a);
	writer_stop(writer);
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 0);
	assert_int_equal(count_lines(path, "\"event\":\"after.malformed\""), 1);
	assert_int_equal(count_lines(path, "\"event\":\"ok\""), 0);
	assert_int_equal(count_lines(path, "twice"), 0);
}

static void
test_open_any_falls_back_to_the_file(void **state)
{
	char other[300], msg[512], nosock[300];
	struct audit *a;
	pid_t writer;
	struct stat st;

	(void)state;
	snprintf(nosock, sizeof(nosock), "%s/no-writer.sock", dir);
	a = audit_open_any(path, nosock);
	assert_non_null(a);
	assert_int_equal(audit_emit(a, "offline.tool", NULL), 0);
	audit_close(a);
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "1 records, chain intact"));
	/* With a writer there, records go to it (its trail, not `other`). */
	writer = writer_start(path, (uid_t)-1);
	snprintf(other, sizeof(other), "%s.other", path);
	a = audit_open_any(other, sockpath);
	assert_non_null(a);
	assert_int_equal(audit_emit(a, "via.writer", NULL), 0);
	/* A tool appending directly at the same time keeps the one chain. */
	emit_n(path, 3);
	assert_int_equal(audit_emit(a, "via.writer", NULL), 0);
	audit_close(a);
	writer_stop(writer);
	assert_int_equal(stat(other, &st), -1);
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "6 records, chain intact"));
	/* No writer, no fallback: audit_connect says so. */
	assert_null(audit_connect(nosock));
}

/* A writer restarted by the supervisor: the call that notices fails, the next connects again. */
static void
test_client_reconnects_after_writer_restart(void **state)
{
	struct audit *a;
	pid_t writer;
	char msg[512];
	int rc;

	(void)state;
	writer = writer_start(path, (uid_t)-1);
	a = audit_connect(sockpath);
	assert_non_null(a);
	assert_int_equal(audit_emit(a, "before.restart", NULL), 0);
	writer_stop(writer);
	writer = writer_start(path, (uid_t)-1);
	rc = audit_emit(a, "at.restart", NULL);
	assert_int_equal(audit_emit(a, "after.restart", NULL), 0);
	audit_close(a);
	writer_stop(writer);
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 0);
	assert_int_equal(count_lines(path, "\"event\":\"after.restart\""), 1);
	/* A record that failed is not stored; one that was is not lost. */
	assert_int_equal(count_lines(path, "\"event\":\"at.restart\""),
	    rc == 0 ? 1 : 0);
}

static void
test_listen_refuses_what_is_not_a_socket(void **state)
{
	char p[300], longp[200];
	int fd;

	(void)state;
	snprintf(p, sizeof(p), "%s/plain-file", dir);
	spit(p, "keep me", 7);
	assert_int_equal(audit_listen(p, (uid_t)-1, (gid_t)-1, 0660), -1);
	assert_int_equal(access(p, F_OK), 0);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(audit_listen(longp, (uid_t)-1, (gid_t)-1, 0660), -1);
	/* A stale socket is replaced. */
	snprintf(p, sizeof(p), "%s/s.sock", dir);
	fd = audit_listen(p, (uid_t)-1, (gid_t)-1, 0660);
	assert_true(fd >= 0);
	close(fd);
	fd = audit_listen(p, (uid_t)-1, (gid_t)-1, 0640);
	assert_true(fd >= 0);
	close(fd);
}

#define BENCH_CLIENTS	200
#define BENCH_RECORDS	100

/* Measures (does not assert) durable records/s with many clients. */
/*
 * The writer creates its key (0400, its own) on first start, MACs every
 * record, and goes on from the last MAC after a restart; it does not start
 * with a key group or others may read.
 */
static void
test_writer_creates_key_and_macs(void **state)
{
	struct audit_key *k;
	struct audit *a;
	struct stat st;
	char msg[1024];
	pid_t pid;
	int i, status;

	(void)state;
	snprintf(keypath, sizeof(keypath), "%s.wkey", path);
	unlink(keypath);
	writer_key = keypath;
	for (i = 0; i < 2; i++) {
		writer_start(path, (uid_t)-1);
		assert_non_null(a = audit_connect(sockpath));
		assert_int_equal(audit_emit(a, "file.received",
		    json_pack("{s:i}", "size", i)), 0);
		assert_int_equal(audit_emit(a, "file.stored", NULL), 0);
		audit_close(a);
		writer_stop(writer_pid);
	}
	assert_int_equal(stat(keypath, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0400);
	assert_int_equal(st.st_uid, geteuid());
	assert_non_null(k = audit_key_load(keypath, 1));
	/* The restart sealed the first run's records: 2 + seal, open + 2. */
	assert_int_equal(count_lines(path, audit_key_id(k)), 3);
	assert_int_equal(trail_verify(&k, 1, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "6 records, chain intact, MACs good"));
	audit_key_free(k);
	/* A group-readable key: the writer does not start. */
	assert_int_equal(chmod(keypath, 0440), 0);
	pid = writer_start(path, (uid_t)-1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	writer_pid = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	writer_key = NULL;
}

static void
test_writer_throughput(void **state)
{
	pid_t writer, pids[BENCH_CLIENTS];
	int go[2], i, j;
	int64_t t0, t1;
	char msg[512], want[64], c;

	(void)state;
	writer = writer_start(path, (uid_t)-1);
	assert_int_equal(pipe(go), 0);
	for (i = 0; i < BENCH_CLIENTS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct audit *a = audit_connect(sockpath);

			close(go[1]);
			if (a == NULL || read(go[0], &c, 1) != 0)
				_exit(2);
			for (j = 0; j < BENCH_RECORDS; j++)
				if (audit_emit(a, "sftp.op", json_pack(
				    "{s:s,s:i,s:i,s:s}", "op", "write", "client",
				    i, "n", j, "path", "in/2026/11/22/tx.csv.pgp")) != 0)
					_exit(3);
			audit_close(a);
			_exit(0);
		}
	}
	close(go[0]);
	usleep(200000);		/* let them connect */
	t0 = mono_ms();
	close(go[1]);
	children_wait(pids, BENCH_CLIENTS);
	t1 = mono_ms();
	writer_stop(writer);
	print_message("audit writer: %d clients, %d durable records in %.2f s: "
	    "%.0f records/s\n", BENCH_CLIENTS, BENCH_CLIENTS * BENCH_RECORDS,
	    (double)(t1 - t0) / 1000.0, (double)BENCH_CLIENTS * BENCH_RECORDS *
	    1000.0 / (double)(t1 - t0 > 0 ? t1 - t0 : 1));
	assert_int_equal(verify_quiet(path, msg, sizeof(msg)), 0);
	snprintf(want, sizeof(want), "%d records, chain intact",
	    BENCH_CLIENTS * BENCH_RECORDS);
	assert_non_null(strstr(msg, want));
}

/* ---- segments, seals, key rotation ------------------------------------ */

#define SEG_RECORDS	30

/* Waits until the writer serves (it answers a SYNC): its start is done. */
static void
writer_ready(void)
{
	uint32_t m[2] = { 2, 0 };	/* AUDIT_MSG_SYNC, no flags */

	assert_int_equal(raw_send_then_reply(m, sizeof(m)), 0);
}

/*
 * A trail of several sealed segments and a live file: a writer with a
 * tiny segment_max, SEG_RECORDS durable records (each its own group).
 * Keyed: the writer's key at keypath (returned loaded).
 */
static struct audit_key *
make_trail(int keyed)
{
	struct audit_key *k = NULL;
	struct audit *a;
	int i;

	snprintf(keypath, sizeof(keypath), "%s.wkey", path);
	unlink(keypath);
	writer_key = keyed ? keypath : NULL;
	writer_segmax = 1500;
	writer_start(path, (uid_t)-1);
	assert_non_null(a = audit_connect(sockpath));
	for (i = 0; i < SEG_RECORDS; i++)
		assert_int_equal(audit_emit(a, "file.received", json_pack(
		    "{s:s,s:i}", "path", "in/a.csv", "size", 1000 + i)), 0);
	audit_close(a);
	writer_stop(writer_pid);
	if (keyed)
		assert_non_null(k = audit_key_load(keypath, 1));
	return k;
}

static void
seg_path(char *out, size_t len, const char *name)
{
	if (snprintf(out, len, "%s/%s", segdir, name) >= (int)len)
		fail_msg("path too long");
}

/* Writes lines[0..n) to p (and frees them). */
static void
lines_write(const char *p, char **lines, int n)
{
	FILE *f = fopen(p, "w");
	int i;

	assert_non_null(f);
	for (i = 0; i < n; i++) {
		fprintf(f, "%s\n", lines[i]);
		free(lines[i]);
	}
	fclose(f);
}

/*
 * Recomputes "prev" and "hash" of every line of files[0..nf) from prev0
 * on (seq, kid, mac kept): the forger without the key.
 */
static void
rechain_files(char files[][300], int nf, const char *prev0)
{
	char *lines[512], prev[SHA256_HEX], hex[SHA256_HEX], *hp, *pp;
	uint8_t h[SHA256_LEN];
	int f, i, n;

	memcpy(prev, prev0, SHA256_HEX);
	for (f = 0; f < nf; f++) {
		n = lines_read_big(files[f], lines, 512);
		for (i = 0; i < n; i++) {
			assert_non_null(hp = strstr(lines[i], ",\"hash\":\""));
			assert_non_null(pp = strstr(lines[i], "\"prev\":\""));
			memcpy(pp + 8, prev, 64);
			assert_int_equal(sha256_buf(lines[i],
			    (size_t)(hp - lines[i]), h), 0);
			hex_encode(h, sizeof(h), hex);
			memcpy(hp + 9, hex, 64);
			memcpy(prev, hex, SHA256_HEX);
		}
		lines_write(files[f], lines, n);
	}
}

/*
 * Rotation by size: several sealed segments, each ending with a seal that
 * names it and matches it, each next file opening with audit.open after
 * it; every record has host and a microsecond ts; the trail verifies.
 */
static void
test_writer_rotates_into_sealed_segments(void **state)
{
	char names[64][64], p[400], msg[1024], *lines[512];
	struct audit_key *k;
	json_t *seal, *open, *prevrec;
	const char *ts;
	int n, i, nl;

	(void)state;
	k = make_trail(1);
	n = segments_list(names, 64);
	assert_true(n >= 3);
	for (i = 0; i < n; i++) {
		seg_path(p, sizeof(p), names[i]);
		nl = lines_read_big(p, lines, 512);
		seal = json_loads(lines[nl - 1], 0, NULL);
		prevrec = json_loads(lines[nl - 2], 0, NULL);
		assert_non_null(seal);
		assert_string_equal(json_string_value(json_object_get(seal,
		    "event")), "audit.seal");
		assert_string_equal(json_string_value(json_object_get(seal,
		    "segment")), names[i]);
		assert_string_equal(json_string_value(json_object_get(seal,
		    "reason")), "size");
		assert_int_equal(json_integer_value(json_object_get(seal,
		    "count")), nl - 1);
		assert_int_equal(json_integer_value(json_object_get(seal,
		    "last_seq")), json_integer_value(json_object_get(seal,
		    "seq")) - 1);
		assert_string_equal(json_string_value(json_object_get(seal,
		    "final_mac")), json_string_value(json_object_get(prevrec,
		    "mac")));
		if (i == 0)
			assert_int_equal(json_integer_value(json_object_get(seal,
			    "first_seq")), 1);
		/* The next file begins after this seal. */
		if (i + 1 < n)
			seg_path(p, sizeof(p), names[i + 1]);
		open = record_at(i + 1 < n ? p : path, 1);
		assert_string_equal(json_string_value(json_object_get(open,
		    "event")), "audit.open");
		assert_string_equal(json_string_value(json_object_get(open,
		    "after")), names[i]);
		assert_int_equal(json_integer_value(json_object_get(open,
		    "seal_seq")), json_integer_value(json_object_get(seal,
		    "seq")));
		json_decref(open);
		json_decref(seal);
		json_decref(prevrec);
		while (nl > 0)
			free(lines[--nl]);
	}
	open = record_at(path, 0);
	assert_string_equal(json_string_value(json_object_get(open, "host")),
	    "gw-test.1");
	ts = json_string_value(json_object_get(open, "ts"));
	assert_int_equal(strlen(ts), strlen("2026-11-22T03:04:05.123456Z"));
	assert_int_equal(ts[26], 'Z');
	json_decref(open);
	assert_int_equal(trail_verify(&k, 1, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "chain intact, MACs good"));
	/* Without the key: structure only, and it says so. */
	assert_int_equal(trail_verify(NULL, 0, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "MACs not checked"));
	/* One sealed segment alone verifies from its audit.open on. */
	seg_path(p, sizeof(p), names[1]);
	assert_int_equal(verify_keys_quiet(p, k, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "starts at seq"));
	audit_key_free(k);
}

enum tamper { T_EDIT, T_DELETE, T_INSERT, T_SWAP, T_CUT_TAIL, T_DROP,
    T_FORGE, T_APPEND_AFTER_SEAL, T_WRONG_KEY, T_NTAMPER };

/* Applies one tampering to segment 1 (the second); what verify must say. */
static const char *
tamper(enum tamper t, char names[][64], int n, char *file, size_t flen)
{
	char *lines[512], p[400], prev[SHA256_HEX], forged[32][300];
	json_t *r;
	int nl, i;

	seg_path(file, flen, names[1]);
	nl = lines_read_big(file, lines, 512);
	switch (t) {
	case T_EDIT:
		assert_non_null(strstr(lines[1], "\"size\":10"));
		memcpy(strstr(lines[1], "\"size\":10"), "\"size\":90", 9);
		lines_write(file, lines, nl);
		return ":2: record was altered";
	case T_DELETE:
		free(lines[1]);
		memmove(&lines[1], &lines[2], sizeof(char *) * (size_t)(nl - 2));
		lines_write(file, lines, nl - 1);
		return ":2: chain broken";
	case T_INSERT:
		memmove(&lines[3], &lines[2], sizeof(char *) * (size_t)(nl - 2));
		lines[2] = strdup(lines[1]);
		lines_write(file, lines, nl + 1);
		return ":3: chain broken";
	case T_SWAP: {
		char *tmp = lines[1];

		lines[1] = lines[2];
		lines[2] = tmp;
		lines_write(file, lines, nl);
		return ":2: chain broken";
	}
	case T_CUT_TAIL: {
		static char why[64];

		free(lines[nl - 1]);
		free(lines[nl - 2]);
		lines_write(file, lines, nl - 2);
		snprintf(why, sizeof(why), ":%d: cut tail", nl - 1);
		return why;
	}
	case T_DROP:
		for (i = 0; i < nl; i++)
			free(lines[i]);
		assert_int_equal(unlink(file), 0);
		seg_path(file, flen, names[2]);
		return ":1: a segment is missing";
	case T_FORGE:
		/* Edit a record, re-chain this segment and all after it. */
		memcpy(strstr(lines[1], "\"size\":10"), "\"size\":90", 9);
		lines_write(file, lines, nl);
		seg_path(p, sizeof(p), names[0]);
		r = record_at(p, 0);
		memcpy(prev, json_string_value(json_object_get(r, "hash")),
		    SHA256_HEX);
		json_decref(r);
		for (i = 1; i < n; i++)
			seg_path(forged[i - 1], sizeof(forged[0]), names[i]);
		snprintf(forged[n - 1], sizeof(forged[0]), "%s", path);
		rechain_files(forged, n, prev);
		return ":2: MAC does not match";
	case T_APPEND_AFTER_SEAL: {
		static char why[64];

		lines[nl] = strdup(lines[nl - 1]);
		lines_write(file, lines, nl + 1);
		snprintf(why, sizeof(why), ":%d: record after this segment's "
		    "seal", nl + 1);
		return why;
	}
	default:
		for (i = 0; i < nl; i++)
			free(lines[i]);
		seg_path(file, flen, names[0]);
		return ":1: wrong key";
	}
}

/*
 * The tamper matrix on a segmented, keyed trail: each change is detected
 * and the bad file and line named.
 */
static void
test_tamper_matrix_across_segments(void **state)
{
	char names[64][64], file[400], msg[2048], want[500];
	struct audit_key *k, *other;
	const char *why;
	int t, n, rc;

	(void)state;
	for (t = 0; t < T_NTAMPER; t++) {
		setup(NULL);
		k = make_trail(1);
		n = segments_list(names, 64);
		assert_true(n >= 3);
		why = tamper((enum tamper)t, names, n, file, sizeof(file));
		if (t == T_WRONG_KEY) {
			snprintf(keypath2, sizeof(keypath2), "%s.other", path);
			unlink(keypath2);
			assert_non_null(other = audit_key_create(keypath2));
			rc = trail_verify(&other, 1, msg, sizeof(msg));
			audit_key_free(other);
		} else
			rc = trail_verify(&k, 1, msg, sizeof(msg));
		snprintf(want, sizeof(want), "%s%s", file, why);
		if (rc != 1 || strstr(msg, want) == NULL)
			fail_msg("tamper %d: rc %d, want \"%s\", got: %s", t, rc,
			    want, msg);
		if (t == T_FORGE) {
			/* Without the key the forgery's structure is sound. */
			assert_int_equal(trail_verify(NULL, 0, msg, sizeof(msg)),
			    0);
		}
		audit_key_free(k);
	}
}

/*
 * A sealed segment of another node (the other of an HA pair) copied into
 * this node's segments directory: verify names the foreign host, not just
 * a broken chain.
 */
#define HOST_A	"node-a.with-a-rather-long-host-name.example"
static void
test_foreign_host_named(void **state)
{
	char anames[64][64], bnames[64][64], src[400], dst[400], msg[2048];
	char want[600];
	int rc;

	(void)state;
	writer_host = "b";
	(void)make_trail(0);
	assert_true(segments_list(bnames, 64) >= 2);
	seg_path(src, sizeof(src), bnames[0]);
	setup(NULL);
	writer_host = HOST_A;
	(void)make_trail(0);
	writer_host = NULL;
	assert_true(segments_list(anames, 64) >= 2);
	/* B's shorter records fill its first segment with more of them */
	assert_true(strcmp(bnames[0], anames[0]) > 0);
	seg_path(dst, sizeof(dst), bnames[0]);
	assert_int_equal(link(src, dst), 0);
	rc = trail_verify(NULL, 0, msg, sizeof(msg));
	assert_int_equal(rc, 1);
	snprintf(want, sizeof(want), "%s:1: record from host b in a trail of "
	    "host " HOST_A, dst);
	if (strstr(msg, want) == NULL)
		fail_msg("want \"%s\", got: %s", want, msg);
	/* without the foreign segment the trail is whole again */
	assert_int_equal(unlink(dst), 0);
	assert_int_equal(trail_verify(NULL, 0, msg, sizeof(msg)), 0);
	assert_null(strstr(msg, "record from host"));
}

/*
 * The oldest segment removed: the files alone are checked from where they
 * begin (an examiner's period), but the whole configured trail (verify -c,
 * AUDIT_VERIFY_WHOLE) must begin at seq 1 and names the gap.
 */
static void
test_oldest_segment_removed(void **state)
{
	const char *paths[2] = { segdir, path };
	char names[64][64], p[400], msg[1024];
	struct audit_key *k;
	FILE *out;
	int rc;

	(void)state;
	k = make_trail(1);
	assert_true(segments_list(names, 64) >= 2);
	seg_path(p, sizeof(p), names[0]);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(trail_verify(&k, 1, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "not given: not checked"));
	assert_non_null(out = fmemopen(msg, sizeof(msg), "w"));
	rc = audit_verify_trail(paths, 2, &k, 1,
	    AUDIT_VERIFY_SKIP_MISSING | AUDIT_VERIFY_WHOLE, out);
	fclose(out);
	assert_int_equal(rc, 1);
	seg_path(p, sizeof(p), names[1]);
	assert_non_null(strstr(msg, p));
	assert_non_null(strstr(msg, ":1: the trail starts at seq "));
	assert_non_null(strstr(msg, "segments before it are missing"));
	audit_key_free(k);
}

/*
 * verify while the writer seals: the segment is linked into the segments
 * directory, and the live path still names that same file until the next
 * live file is renamed over it. A walk in that moment reads the segment
 * twice; it is walked again once the seal is done, and the trail verifies.
 * A live path that stays a link to the last segment is still named.
 */
static void
test_verify_during_seal(void **state)
{
	char names[64][64], seg[400], next[400], msg[1024];
	struct audit_key *k;
	pid_t pid;
	int n, status;

	(void)state;
	k = make_trail(1);
	n = segments_list(names, 64);
	assert_true(n >= 2);
	seg_path(seg, sizeof(seg), names[n - 1]);
	snprintf(next, sizeof(next), "%s.next", path);
	assert_int_equal(rename(path, next), 0);
	assert_int_equal(link(seg, path), 0);
	assert_int_equal(trail_verify(&k, 1, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "repeated or out of order"));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		usleep(100000);
		_exit(rename(next, path) == 0 ? 0 : 1);
	}
	assert_int_equal(trail_verify(&k, 1, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "chain intact, MACs good"));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	audit_key_free(k);
}

/*
 * A writer killed mid-append leaves a torn last line: the next writer
 * saves the torn bytes as <segment>.torn, seals the whole records (reason
 * restart, torn_bytes, torn_sha256) and the trail verifies.
 */
static void
test_restart_seals_torn_tail(void **state)
{
	static const char torn[] = "{\"seq\":99,\"ts\":\"2026-";
	char names[64][64], p[400], msg[1024], hex[SHA256_HEX], *buf;
	struct audit_key *k;
	uint8_t h[SHA256_LEN];
	json_t *seal;
	FILE *f;
	size_t len;
	int n;

	(void)state;
	k = make_trail(1);
	n = segments_list(names, 64);
	assert_non_null(f = fopen(path, "a"));
	fputs(torn, f);
	fclose(f);
	assert_int_equal(trail_verify(&k, 1, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "not terminated by a newline"));
	writer_segmax = 0;
	writer_start(path, (uid_t)-1);
	writer_ready();
	writer_stop(writer_pid);
	assert_int_equal(segments_list(names, 64), n + 1);
	seg_path(p, sizeof(p), names[n]);
	seal = record_at(p, 0);
	assert_string_equal(json_string_value(json_object_get(seal, "reason")),
	    "restart");
	assert_int_equal(json_integer_value(json_object_get(seal,
	    "torn_bytes")), strlen(torn));
	assert_int_equal(sha256_buf(torn, strlen(torn), h), 0);
	hex_encode(h, sizeof(h), hex);
	assert_string_equal(json_string_value(json_object_get(seal,
	    "torn_sha256")), hex);
	json_decref(seal);
	strncat(p, ".torn", sizeof(p) - strlen(p) - 1);
	buf = slurp(p, &len);
	assert_int_equal(len, strlen(torn));
	assert_memory_equal(buf, torn, len);
	free(buf);
	assert_int_equal(trail_verify(&k, 1, msg, sizeof(msg)), 0);
	/* A restart with only audit.open in the live file seals nothing. */
	writer_start(path, (uid_t)-1);
	writer_ready();
	writer_stop(writer_pid);
	assert_int_equal(segments_list(names, 64), n + 1);
	audit_key_free(k);
}

/*
 * A tool appending in file mode while the writer rotates: its next record
 * goes to the new live file, never after a seal.
 */
static void
test_file_mode_follows_rotation(void **state)
{
	struct audit *tool;
	char names[8][64], msg[1024];

	(void)state;
	writer_key = NULL;
	snprintf(segdir, sizeof(segdir), "%s.seg", path);
	assert_non_null(tool = audit_open(path));
	assert_int_equal(audit_emit(tool, "queue.hold", NULL), 0);
	/* The writer's start seals the tool's record into a segment. */
	writer_start(path, (uid_t)-1);
	writer_ready();
	writer_stop(writer_pid);
	assert_int_equal(segments_list(names, 8), 1);
	assert_int_equal(audit_emit(tool, "queue.retry", NULL), 0);
	audit_close(tool);
	assert_int_equal(count_lines(path, "queue.retry"), 1);
	assert_int_equal(trail_verify(NULL, 0, msg, sizeof(msg)), 0);
	assert_non_null(strstr(msg, "4 records, chain intact"));
}

/*
 * rotate-key: asked of the running writer, it seals the segment, keeps the
 * old key in audit.keys/, and the records after it carry the new kid; the
 * trail verifies with both keys, not with either alone. Without a writer
 * nothing is rotated.
 */
static void
test_rotate_key(void **state)
{
	char names[8][64], old[400], msg[2048], *slash, kdir[300];
	struct audit_key *k1, *k2, *both[2];
	struct audit *a;
	json_t *r;

	(void)state;
	snprintf(keypath, sizeof(keypath), "%s.wkey", path);
	unlink(keypath);
	writer_key = keypath;
	writer_start(path, (uid_t)-1);
	assert_non_null(a = audit_connect(sockpath));
	assert_int_equal(audit_emit(a, "file.received", NULL), 0);
	assert_non_null(k1 = audit_key_load(keypath, 1));
	assert_int_equal(audit_rotate_key(sockpath, "tester"), 0);
	assert_int_equal(audit_emit(a, "file.stored", NULL), 0);
	audit_close(a);
	writer_stop(writer_pid);
	assert_int_equal(audit_rotate_key(sockpath, "tester"), -1);
	assert_non_null(k2 = audit_key_load(keypath, 1));
	assert_string_not_equal(audit_key_id(k1), audit_key_id(k2));
	snprintf(kdir, sizeof(kdir), "%s", keypath);
	slash = strrchr(kdir, '/');
	*slash = '\0';
	snprintf(old, sizeof(old), "%s/audit.keys/%s.key", kdir,
	    audit_key_id(k1));
	assert_int_equal(access(old, R_OK), 0);
	assert_int_equal(segments_list(names, 8), 1);
	r = record_at(path, 2);
	assert_string_equal(json_string_value(json_object_get(r, "event")),
	    "audit.key_rotated");
	assert_string_equal(json_string_value(json_object_get(r, "old_kid")),
	    audit_key_id(k1));
	assert_string_equal(json_string_value(json_object_get(r, "new_kid")),
	    audit_key_id(k2));
	assert_string_equal(json_string_value(json_object_get(r, "operator")),
	    "tester");
	assert_string_equal(json_string_value(json_object_get(r, "kid")),
	    audit_key_id(k2));
	json_decref(r);
	both[0] = k1;
	both[1] = k2;
	assert_int_equal(trail_verify(both, 2, msg, sizeof(msg)), 0);
	assert_int_equal(trail_verify(&k1, 1, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "wrong key"));
	assert_int_equal(trail_verify(&k2, 1, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "wrong key"));
	audit_key_free(k1);
	audit_key_free(k2);
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
		cmocka_unit_test_setup(test_key_file_rules, setup),
		cmocka_unit_test_setup(test_keyed_chain_verifies, setup),
		cmocka_unit_test_setup(test_edit_rechained_caught_by_mac, setup),
		cmocka_unit_test_setup(test_delete_insert_swap_rechained_caught,
		    setup),
		cmocka_unit_test_setup(test_wrong_key_named, setup),
		cmocka_unit_test_setup(test_mixed_and_stripped, setup),
		cmocka_unit_test_setup_teardown(test_writer_many_clients_one_chain, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_writer_restricts_session_user, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_writer_survives_malformed_messages, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_any_falls_back_to_the_file, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_client_reconnects_after_writer_restart,
		    setup, teardown),
		cmocka_unit_test_setup(test_listen_refuses_what_is_not_a_socket, setup),
		cmocka_unit_test_setup_teardown(test_writer_creates_key_and_macs,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_writer_rotates_into_sealed_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_tamper_matrix_across_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_host_named,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_during_seal,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_oldest_segment_removed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_seals_torn_tail,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_mode_follows_rotation,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotate_key, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_writer_throughput, setup,
		    teardown),
	};

	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	if (dir_made && testtree_remove(dir) != 0)
		rc++;
	if (sockdir_made && testtree_remove(sockdir) != 0)
		rc++;
	return rc;
}
