/*
 * test_notify.c - notify/events.h: the X-Sluice-Signature value (RFC 4231
 * vectors), the retry/give-up decision, which targets want an event, the
 * outbox rows committed (or rolled back) with the verdict's transaction,
 * and the notify: config (file:line errors).
 */
#include <crypt.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/util.h"
#include "notify/events.h"
#include "policy/config.h"
#include "spool/layout.h"
#include "spool/state.h"
#include "testtree.h"

static char dir[64];

static void
test_signature(void **state)
{
	char out[80];
	const unsigned char key2[] = "Jefe";
	unsigned char key1[20];

	/* RFC 4231 test case 2 */
	assert_int_equal(events_signature(key2, 4, "what do ya want for "
	    "nothing?", 28, out, sizeof(out)), 0);
	assert_string_equal(out, "sha256=5bdcc146bf60754e6a042426089575c75a003f"
	    "089d2739839dec58b964ec3843");
	/* test case 1 */
	memset(key1, 0x0b, sizeof(key1));
	assert_int_equal(events_signature(key1, sizeof(key1), "Hi There", 8,
	    out, sizeof(out)), 0);
	assert_string_equal(out, "sha256=b0344c61d8db38535ca8afceaf0bf12b881dc2"
	    "00c9833da726e9376c2e32cff7");
	/* the body's bytes exactly: one more byte, another MAC */
	assert_int_equal(events_signature(key1, sizeof(key1), "Hi There\n", 9,
	    out, sizeof(out)), 0);
	assert_string_not_equal(out, "sha256=b0344c61d8db38535ca8afceaf0bf12b8"
	    "81dc200c9833da726e9376c2e32cff7");
	/* too small an output: refused, not cut short */
	assert_int_equal(events_signature(key1, sizeof(key1), "x", 1, out, 70),
	    -1);
}

static void
test_decide(void **state)
{
	const int64_t day = 86400000, created = 1000000;
	int64_t next = 0, ceil;
	int attempt, i;

	for (attempt = 1; attempt < 20; attempt++) {
		ceil = (int64_t)EVENTS_BACKOFF_BASE_MS << (attempt - 1 < 20 ?
		    attempt - 1 : 20);
		if (ceil > EVENTS_BACKOFF_CAP_MS)
			ceil = EVENTS_BACKOFF_CAP_MS;
		for (i = 0; i < 50; i++) {
			assert_int_equal(events_decide(attempt, created,
			    created + 5000, 7 * day, &next), EVENTS_RETRY);
			assert_true(next >= created + 5000);
			assert_true(next <= created + 5000 + ceil);
		}
	}
	/* never past the deadline: one last try there */
	assert_int_equal(events_decide(30, created, created + 7 * day - 10,
	    7 * day, &next), EVENTS_RETRY);
	assert_true(next <= created + 7 * day);
	/* at or past max_age: given up */
	assert_int_equal(events_decide(31, created, created + 7 * day, 7 * day,
	    &next), EVENTS_GIVE_UP);
	assert_int_equal(events_decide(1, created, created + 8 * day, 7 * day,
	    &next), EVENTS_GIVE_UP);
}

static void
test_wants(void **state)
{
	char *parts[] = { "acme" };
	struct notify_target t;
	char name[256];

	memset(&t, 0, sizeof(t));
	t.on = NOTIFY_ON_STORED;
	assert_true(events_wants(&t, "file.stored", "beta"));
	assert_false(events_wants(&t, "file.rejected", "beta"));
	assert_false(events_wants(&t, "file.received", "beta"));
	t.on |= NOTIFY_ON_REJECTED;
	t.partners = parts;
	t.npartners = 1;
	assert_true(events_wants(&t, "file.rejected", "acme"));
	assert_false(events_wants(&t, "file.stored", "beta"));
	t.kind = NOTIFY_WEBHOOK;
	t.url = "https://hooks.example/in?token=abc#x";
	events_target_name(&t, name, sizeof(name));
	assert_string_equal(name, "https://hooks.example/in");
	events_delivery_id("0123456789abcdef0123456789abcdef", "file.stored", 2,
	    name, sizeof(name));
	assert_string_equal(name, "0123456789abcdef0123456789abcdef.stored.2");
}

/* Two targets: a webhook for acme's stored files, a command for all. */
static void
two_targets(struct config *cfg, struct notify_target t[2], char **acme,
    char **argv)
{
	memset(cfg, 0, sizeof(*cfg));
	memset(t, 0, 2 * sizeof(*t));
	t[0].kind = NOTIFY_WEBHOOK;
	t[0].on = NOTIFY_ON_STORED;
	t[0].url = "https://hooks.example/in";
	t[0].partners = acme;
	t[0].npartners = 1;
	t[1].kind = NOTIFY_COMMAND;
	t[1].on = NOTIFY_ON_STORED | NOTIFY_ON_REJECTED;
	t[1].argv = argv;
	t[1].argc = 1;
	cfg->notify.targets = t;
	cfg->notify.ntargets = 2;
	cfg->notify.max_age_s = 7 * 86400;
}

static void
test_outbox(void **state)
{
	char *acme[] = { "acme" }, *argv[] = { "/bin/true", NULL };
	struct notify_target t[2];
	struct config cfg;
	struct file_rec r;
	struct notify_row *rows;
	struct state *st;
	json_t *b;
	size_t n;
	int64_t cnt;

	two_targets(&cfg, t, acme, argv);
	xstrlcpy(dir, "/tmp/sluice-test-notify-XXXXXX", sizeof(dir));
	assert_non_null(mkdtemp(dir));
	assert_int_equal(spool_init(dir), 0);
	assert_non_null(st = state_open(dir));
	memset(&r, 0, sizeof(r));
	xstrlcpy(r.fid, "0123456789abcdef0123456789abcdef", sizeof(r.fid));
	xstrlcpy(r.partner, "acme", sizeof(r.partner));
	xstrlcpy(r.path, "in/a.csv", sizeof(r.path));
	xstrlcpy(r.sha256, "ab", sizeof(r.sha256));
	r.size = 5;
	r.received_ms = now_ms();
	assert_int_equal(state_insert(st, &r), 0);

	/* rolled back with its verdict: nothing to send */
	assert_int_equal(state_begin(st), 0);
	assert_int_equal(events_enqueue(st, &cfg, &r, "file.stored"), 0);
	state_rollback(st);
	assert_int_equal(state_notify_due(st, now_ms(), 10, &rows, &n), 0);
	assert_int_equal(n, 0);
	state_notify_free(rows, n);

	/* committed: one row per target that wants it */
	xstrlcpy(r.object_key, "acme/in/a.csv", sizeof(r.object_key));
	xstrlcpy(r.bucket, "b", sizeof(r.bucket));
	assert_int_equal(state_begin(st), 0);
	assert_int_equal(events_enqueue(st, &cfg, &r, "file.stored"), 0);
	/* the same verdict twice: still one row per target */
	assert_int_equal(events_enqueue(st, &cfg, &r, "file.stored"), 0);
	assert_int_equal(state_commit(st), 0);
	assert_int_equal(state_notify_due(st, now_ms(), 10, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].target, 0);
	assert_string_equal(rows[0].target_key, "https://hooks.example/in");
	assert_string_equal(rows[1].target_key, "/bin/true");
	b = json_loads(rows[0].body, 0, NULL);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(b, "event")),
	    "file.stored");
	assert_string_equal(json_string_value(json_object_get(b, "key")),
	    "acme/in/a.csv");
	assert_string_equal(json_string_value(json_object_get(b, "delivery")),
	    "0123456789abcdef0123456789abcdef.stored.0");
	json_decref(b);

	/* a retry later: not due now; a sent one: never again */
	rows[0].attempts = 1;
	rows[0].next_ms = now_ms() + 60000;
	assert_int_equal(state_notify_update(st, &rows[0], NOTIFY_PENDING, 0),
	    0);
	rows[1].attempts = 1;
	assert_int_equal(state_notify_update(st, &rows[1], NOTIFY_SENT,
	    now_ms()), 0);
	state_notify_free(rows, n);
	assert_int_equal(state_notify_due(st, now_ms(), 10, &rows, &n), 0);
	assert_int_equal(n, 0);
	state_notify_free(rows, n);
	assert_int_equal(state_notify_due(st, now_ms() + 61000, 10, &rows, &n),
	    0);
	assert_int_equal(n, 1);
	state_notify_free(rows, n);
	assert_int_equal(state_notify_count(st, NOTIFY_SENT, &cnt), 0);
	assert_int_equal(cnt, 1);

	/* a rejected file of beta: only the command target wants it */
	memset(&r, 0, sizeof(r));
	xstrlcpy(r.fid, "fedcba9876543210fedcba9876543210", sizeof(r.fid));
	xstrlcpy(r.partner, "beta", sizeof(r.partner));
	xstrlcpy(r.path, "x", sizeof(r.path));
	xstrlcpy(r.last_error, "bad signature", sizeof(r.last_error));
	assert_int_equal(state_insert(st, &r), 0);
	assert_int_equal(events_enqueue(st, &cfg, &r, "file.rejected"), 0);
	assert_int_equal(state_notify_count(st, NOTIFY_PENDING, &cnt), 0);
	assert_int_equal(cnt, 2);
	state_close(st);
	assert_int_equal(testtree_remove(dir), 0);
}

/* ---- notify: in the config ------------------------------------------------ */

static char *
load_cfg(const char *notify, int *rc, struct config **cfg)
{
	char path[128], secret[128], salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;
	struct passwd *pw;
	char *buf = NULL;
	size_t len = 0;
	FILE *f, *err;

	memset(&cd, 0, sizeof(cd));
	assert_non_null(crypt_gensalt_rn("$y$", 0, NULL, 0, salt,
	    sizeof(salt)));
	snprintf(secret, sizeof(secret), "%s/hook.secret", dir);
	assert_non_null(f = fopen(secret, "w"));
	fputs("s3cret\n", f);
	fclose(f);
	assert_int_equal(chmod(secret, 0600), 0);
	if (geteuid() == 0 && (pw = getpwnam("sluice")) != NULL)
		assert_int_equal(chown(secret, pw->pw_uid, pw->pw_gid), 0);
	snprintf(path, sizeof(path), "%s/sluice.yaml", dir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "state_dir: %s\nstore: {url: file://%s/objects}\n"
	    "partners:\n  - name: acme\n    password_hash: \"%s\"\n%s",
	    dir, dir, crypt_r("pw", salt, &cd), notify);
	fclose(f);
	assert_non_null(err = open_memstream(&buf, &len));
	*rc = config_load(path, cfg, err);
	fclose(err);
	return buf;
}

static void
test_config(void **state)
{
	struct config *cfg = NULL;
	char *msg;
	int rc;

	xstrlcpy(dir, "/tmp/sluice-test-notify-XXXXXX", sizeof(dir));
	assert_non_null(mkdtemp(dir));
	msg = load_cfg("notify:\n"
	    "  - on: [file.stored, file.rejected]\n"
	    "    command: [/usr/local/bin/on-file, --json]\n"
	    "  - on: [file.stored]\n"
	    "    partners: [acme]\n"
	    "    webhook: {url: \"https://h.example/in?x=1\", secret_file: "
	    "hook.secret, timeout: 5s}\n", &rc, &cfg);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg->notify.ntargets, 2);
	assert_int_equal(cfg->notify.max_age_s, 7 * 86400);
	assert_int_equal(cfg->notify.targets[0].kind, NOTIFY_COMMAND);
	assert_int_equal(cfg->notify.targets[0].on, NOTIFY_ON_STORED |
	    NOTIFY_ON_REJECTED);
	assert_string_equal(cfg->notify.targets[0].argv[1], "--json");
	assert_null(cfg->notify.targets[0].argv[2]);
	assert_int_equal(cfg->notify.targets[1].timeout_s, 5);
	assert_non_null(strstr(cfg->notify.targets[1].secret_file,
	    "/hook.secret"));
	config_free(cfg);
	free(msg);

	msg = load_cfg("notify:\n  max_age: 2d\n  targets:\n"
	    "    - {on: [file.rejected], command: [/bin/true]}\n", &rc, &cfg);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg->notify.max_age_s, 2 * 86400);
	config_free(cfg);
	free(msg);

	/* plain http to another host; no secret; a relative program; an
	 * unknown event and partner: each named with its line */
	msg = load_cfg("notify:\n"
	    "  - on: [file.stored]\n"
	    "    webhook: {url: \"http://h.example/in\"}\n"
	    "  - on: [file.stord]\n"
	    "    partners: [nobody]\n"
	    "    command: [on-file]\n", &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(msg, "sluice.yaml:8: notify[0].webhook.url: "
	    "\"http://h.example/in\" is not an https:// URL"));
	assert_non_null(strstr(msg, "sluice.yaml:8: notify[0].webhook."
	    "secret_file: missing"));
	assert_non_null(strstr(msg, "sluice.yaml:9: notify[1].on[0]: "
	    "\"file.stord\" is not valid; did you mean \"file.stored\"?"));
	assert_non_null(strstr(msg, "sluice.yaml:10: notify[1].partners: "
	    "\"nobody\" is not a partner"));
	assert_non_null(strstr(msg, "sluice.yaml:11: notify[1].command[0]: "
	    "\"on-file\" is not an absolute path"));
	/* the secret's contents are never in a message */
	assert_null(strstr(msg, "s3cret"));
	free(msg);

	/* names that only start like loopback are not */
	msg = load_cfg("notify:\n"
	    "  - on: [file.stored]\n"
	    "    webhook: {url: \"http://127.0.0.1.evil.example/\", "
	    "secret_file: hook.secret}\n"
	    "  - on: [file.stored]\n"
	    "    webhook: {url: \"http://127.0.0.1@evil.example/\", "
	    "secret_file: hook.secret}\n"
	    "  - on: [file.stored]\n"
	    "    webhook: {url: \"http://localhost.evil.example/\", "
	    "secret_file: hook.secret}\n", &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(msg, "notify[0].webhook.url"));
	assert_non_null(strstr(msg, "notify[1].webhook.url"));
	assert_non_null(strstr(msg, "notify[2].webhook.url"));
	free(msg);

	/* loopback http is allowed (tests, a local relay) */
	msg = load_cfg("notify:\n  - on: [file.stored]\n    webhook: {url: "
	    "\"http://127.0.0.1:8080/h\", secret_file: hook.secret}\n"
	    "  - on: [file.stored]\n    webhook: {url: "
	    "\"http://[::1]:8080/h\", secret_file: hook.secret}\n"
	    "  - on: [file.stored]\n    webhook: {url: "
	    "\"http://localhost/h\", secret_file: hook.secret}\n", &rc, &cfg);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg->notify.ntargets, 3);
	config_free(cfg);
	free(msg);
	assert_int_equal(testtree_remove(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signature),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_wants),
		cmocka_unit_test(test_outbox),
		cmocka_unit_test(test_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
