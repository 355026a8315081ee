/*
 * test_confdiff.c - policy/confdiff: the digests config.loaded carries and
 * the JSON config.reloaded will carry, on configurations loaded by the real
 * loader: nothing changed (also reordered) is an empty object; a partner
 * added or removed, a key, an allowlist, a password, a role and a limit
 * changed are each named, and only they.
 *
 * Keys and the password hash are made at run time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <libssh/libssh.h>

#include "policy/confdiff.h"
#include "policy/config.h"
#include "testtree.h"

static char	 tmpdir[256];
static char	*key1, *key2;	/* "ssh-ed25519 BASE64" */
static char	 fp1[128], fp2[128];	/* their fingerprints, from libssh */
static char	*hash1, *hash2;

static char *
gen_key(char *fp, size_t fplen)
{
	ssh_key k = NULL;
	unsigned char *h = NULL;
	char *b64 = NULL, *line, *f;
	size_t n, hl;

	if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &k) != SSH_OK)
		return NULL;
	assert_int_equal(ssh_pki_export_pubkey_base64(k, &b64), SSH_OK);
	n = strlen("ssh-ed25519 ") + strlen(b64) + 1;
	line = malloc(n);
	assert_non_null(line);
	snprintf(line, n, "ssh-ed25519 %s", b64);
	assert_int_equal(ssh_get_publickey_hash(k, SSH_PUBLICKEY_HASH_SHA256,
	    &h, &hl), 0);
	f = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, h, hl);
	assert_non_null(f);
	snprintf(fp, fplen, "%s", f);
	ssh_string_free_char(f);
	ssh_clean_pubkey_hash(&h);
	ssh_string_free_char(b64);
	ssh_key_free(k);
	return line;
}

static char *
gen_hash(const char *pw)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	char *h;

	if ((cd = calloc(1, sizeof(*cd))) == NULL ||
	    crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL)
		return NULL;
	h = strdup(crypt_r(pw, salt, cd));
	free(cd);
	return h;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/sluice-test-confdiff-XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	key1 = gen_key(fp1, sizeof(fp1));
	key2 = gen_key(fp2, sizeof(fp2));
	hash1 = gen_hash("correct horse");
	hash2 = gen_hash("battery staple");
	return key1 && key2 && hash1 && hash2 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	testtree_remove(tmpdir);
	free(key1);
	free(key2);
	free(hash1);
	free(hash2);
	return 0;
}

/*
 * A configuration: acme with keys (a YAML list body), allow_from (a flow
 * list) and a role; beta (with a password hash) unless beta is NULL;
 * max_sessions.
 */
static struct config *
load(const char *name, const char *keys, const char *allow, const char *role,
    const char *beta, int max_sessions)
{
	char path[512], text[8192];
	struct config *cfg = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.yaml", tmpdir, name);
	snprintf(text, sizeof(text),
	    "listen: 127.0.0.1:2222\n"
	    "host_keys: [%s/hostkey]\n"
	    "state_dir: %s/state\n"
	    "store:\n  url: file://%s/objects\n"
	    "server:\n  max_sessions: %d\n"
	    "partners:\n"
	    "  - name: acme\n"
	    "    authorized_keys:\n%s"
	    "    allow_from: %s\n"
	    "    role: %s\n"
	    "%s%s%s",
	    tmpdir, tmpdir, tmpdir, max_sessions, keys, allow, role,
	    beta != NULL ? "  - name: beta\n    password_hash: \"" : "",
	    beta != NULL ? beta : "", beta != NULL ? "\"\n" : "");
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	if (config_load(path, &cfg, stderr) != 0)
		fail_msg("%s rejected:\n%s", name, text);
	return cfg;
}

/* "      - KEY\n" lines for one or two keys. */
static char *
keys_of(const char *a, const char *b)
{
	static char buf[2][1024];
	static int n;
	char *p = buf[n++ % 2];

	snprintf(p, sizeof(buf[0]), "      - %s\n%s%s%s", a, b ? "      - " : "",
	    b ? b : "", b ? "\n" : "");
	return p;
}

static struct config *
base(void)
{
	return load("base", keys_of(key1, key2), "[10.0.0.0/8, 192.0.2.0/24]",
	    "dropbox", hash1, 100);
}

static char *
dump(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

/* Asserts that the diff has exactly the named top-level members. */
static void
assert_members(const json_t *d, const char *const *names, size_t n)
{
	size_t i;
	char *t = dump(d);

	if (json_object_size(d) != n)
		fail_msg("want %zu members, got %s", n, t);
	for (i = 0; i < n; i++)
		if (json_object_get(d, names[i]) == NULL)
			fail_msg("no %s in %s", names[i], t);
	free(t);
}

/* 1 if array a holds the string s. */
static int
has(const json_t *a, const char *s)
{
	size_t i;

	for (i = 0; i < json_array_size(a); i++)
		if (strcmp(json_string_value(json_array_get(a, i)), s) == 0)
			return 1;
	return 0;
}

static void
test_nothing_changed(void **state)
{
	struct config *a, *b;
	json_t *d;

	(void)state;
	a = base();
	/* the same settings, keys and CIDR blocks in another order */
	b = load("reordered", keys_of(key2, key1),
	    "[192.0.2.0/24, 10.0.0.0/8]", "dropbox", hash1, 100);
	d = confdiff(a, b);
	assert_non_null(d);
	assert_int_equal(json_object_size(d), 0);
	json_decref(d);
	d = confdiff(a, a);
	assert_int_equal(json_object_size(d), 0);
	json_decref(d);
	config_free(a);
	config_free(b);
}

static void
test_partner_added_removed(void **state)
{
	static const char *const added[] = { "partners_added" };
	static const char *const removed[] = { "partners_removed" };
	struct config *a, *b;
	json_t *d;

	(void)state;
	a = base();
	b = load("nobeta", keys_of(key1, key2), "[10.0.0.0/8, 192.0.2.0/24]",
	    "dropbox", NULL, 100);
	d = confdiff(b, a);
	assert_members(d, added, 1);
	assert_int_equal(json_array_size(json_object_get(d, "partners_added")),
	    1);
	assert_true(has(json_object_get(d, "partners_added"), "beta"));
	json_decref(d);
	d = confdiff(a, b);
	assert_members(d, removed, 1);
	assert_true(has(json_object_get(d, "partners_removed"), "beta"));
	json_decref(d);
	config_free(a);
	config_free(b);
}

static void
test_key_changed(void **state)
{
	static const char *const want[] = { "partners_changed", "keys_changed" };
	struct config *a, *b;
	json_t *d, *k;
	char fp[128];

	(void)state;
	/* the fingerprint is OpenSSH's (as libssh prints it) */
	assert_int_equal(confdiff_key_fingerprint(key1, fp, sizeof(fp)), 0);
	assert_string_equal(fp, fp1);
	a = base();
	b = load("onekey", keys_of(key1, NULL), "[10.0.0.0/8, 192.0.2.0/24]",
	    "dropbox", hash1, 100);
	d = confdiff(a, b);
	assert_members(d, want, 2);
	k = json_object_get(json_object_get(d, "partners_changed"), "acme");
	assert_int_equal(json_array_size(k), 1);
	assert_true(has(k, "keys"));
	k = json_object_get(json_object_get(d, "keys_changed"), "acme");
	assert_int_equal(json_array_size(json_object_get(k, "added")), 0);
	assert_int_equal(json_array_size(json_object_get(k, "removed")), 1);
	assert_true(has(json_object_get(k, "removed"), fp2));
	json_decref(d);
	/* and back: the key is added */
	d = confdiff(b, a);
	k = json_object_get(json_object_get(d, "keys_changed"), "acme");
	assert_true(has(json_object_get(k, "added"), fp2));
	assert_int_equal(json_array_size(json_object_get(k, "removed")), 0);
	json_decref(d);
	config_free(a);
	config_free(b);
}

static void
test_allowlist_changed(void **state)
{
	static const char *const want[] = { "partners_changed",
	    "allowlists_changed" };
	struct config *a, *b;
	json_t *d, *k;

	(void)state;
	a = base();
	b = load("allow", keys_of(key1, key2), "[10.0.0.0/8, 198.51.100.0/24]",
	    "dropbox", hash1, 100);
	d = confdiff(a, b);
	assert_members(d, want, 2);
	assert_true(has(json_object_get(json_object_get(d, "partners_changed"),
	    "acme"), "allow_from"));
	k = json_object_get(json_object_get(d, "allowlists_changed"), "acme");
	assert_non_null(k);
	assert_int_equal(json_array_size(json_object_get(k, "added")), 1);
	assert_true(has(json_object_get(k, "added"), "198.51.100.0/24"));
	assert_int_equal(json_array_size(json_object_get(k, "removed")), 1);
	assert_true(has(json_object_get(k, "removed"), "192.0.2.0/24"));
	json_decref(d);
	config_free(a);
	config_free(b);
}

static void
test_password_role_limit_changed(void **state)
{
	static const char *const want[] = { "partners_changed",
	    "limits_changed" };
	struct config *a, *b;
	json_t *d, *pc, *l;
	char *t;

	(void)state;
	a = base();
	b = load("other", keys_of(key1, key2), "[10.0.0.0/8, 192.0.2.0/24]",
	    "owner", hash2, 50);
	d = confdiff(a, b);
	assert_members(d, want, 2);
	pc = json_object_get(d, "partners_changed");
	assert_int_equal(json_array_size(json_object_get(pc, "acme")), 1);
	assert_true(has(json_object_get(pc, "acme"), "role"));
	assert_int_equal(json_array_size(json_object_get(pc, "beta")), 1);
	assert_true(has(json_object_get(pc, "beta"), "password"));
	l = json_object_get(json_object_get(d, "limits_changed"),
	    "server.max_sessions");
	assert_int_equal(json_integer_value(json_object_get(l, "from")), 100);
	assert_int_equal(json_integer_value(json_object_get(l, "to")), 50);
	t = dump(d);
	assert_null(strstr(t, hash1));	/* never a password hash */
	assert_null(strstr(t, hash2));
	free(t);
	json_decref(d);
	config_free(a);
	config_free(b);
}

static void
test_summary(void **state)
{
	struct config *a, *b;
	json_t *sa, *sb, *da, *db;
	char *t;

	(void)state;
	a = base();
	b = load("onekey2", keys_of(key1, NULL), "[10.0.0.0/8, 192.0.2.0/24]",
	    "dropbox", hash1, 100);
	sa = confdiff_summary(a);
	sb = confdiff_summary(b);
	assert_non_null(sa);
	assert_non_null(sb);
	assert_int_equal(json_array_size(json_object_get(sa, "partners")), 2);
	assert_true(has(json_object_get(sa, "partners"), "acme"));
	assert_true(has(json_object_get(sa, "partners"), "beta"));
	da = json_object_get(json_object_get(sa, "partner_digests"), "acme");
	db = json_object_get(json_object_get(sb, "partner_digests"), "acme");
	assert_int_equal(strlen(json_string_value(json_object_get(da,
	    "sha256"))), 64);
	assert_int_equal(json_integer_value(json_object_get(da, "nkeys")), 2);
	assert_int_equal(json_integer_value(json_object_get(db, "nkeys")), 1);
	/* the key digest and the overall one change, nothing else */
	assert_string_not_equal(json_string_value(json_object_get(da, "keys")),
	    json_string_value(json_object_get(db, "keys")));
	assert_string_not_equal(json_string_value(json_object_get(da,
	    "sha256")), json_string_value(json_object_get(db, "sha256")));
	assert_string_equal(json_string_value(json_object_get(da, "rules")),
	    json_string_value(json_object_get(db, "rules")));
	assert_string_equal(json_string_value(json_object_get(da,
	    "allow_from")), json_string_value(json_object_get(db,
	    "allow_from")));
	assert_string_equal(json_string_value(json_object_get(sa,
	    "settings_sha256")), json_string_value(json_object_get(sb,
	    "settings_sha256")));
	assert_true(json_is_true(json_object_get(json_object_get(
	    json_object_get(sa, "partner_digests"), "beta"), "password")));
	t = dump(sa);
	assert_null(strstr(t, hash1));
	free(t);
	json_decref(sa);
	json_decref(sb);
	config_free(a);
	config_free(b);
}

static void
test_summary_parts(void **state)
{
	struct config *a;
	json_t *sum, *parts, *p;
	size_t i;
	char *t;

	(void)state;
	a = base();
	sum = confdiff_summary(a);
	/* room enough: one part with everything */
	parts = confdiff_summary_parts(sum, 65536);
	assert_int_equal(json_array_size(parts), 1);
	p = json_array_get(parts, 0);
	assert_int_equal(json_integer_value(json_object_get(p, "part")), 1);
	assert_int_equal(json_integer_value(json_object_get(p, "parts")), 1);
	assert_true(json_equal(json_object_get(p, "partners"),
	    json_object_get(sum, "partners")));
	assert_true(json_equal(json_object_get(p, "partner_digests"),
	    json_object_get(sum, "partner_digests")));
	json_decref(parts);
	/* too small for two partners: one each, in order, each under max
	 * when one fits */
	parts = confdiff_summary_parts(sum, 1000);
	assert_int_equal(json_array_size(parts), 2);
	for (i = 0; i < 2; i++) {
		p = json_array_get(parts, i);
		assert_int_equal(json_integer_value(json_object_get(p, "part")),
		    (json_int_t)i + 1);
		assert_int_equal(json_integer_value(json_object_get(p,
		    "parts")), 2);
		assert_int_equal(json_array_size(json_object_get(p,
		    "partners")), 1);
		assert_int_equal(json_object_size(json_object_get(p,
		    "partner_digests")), 1);
		assert_string_equal(json_string_value(json_object_get(p,
		    "settings_sha256")), json_string_value(json_object_get(sum,
		    "settings_sha256")));
		t = json_dumps(p, JSON_COMPACT);
		assert_true(strlen(t) < 1000);
		free(t);
	}
	assert_string_equal(json_string_value(json_array_get(json_object_get(
	    json_array_get(parts, 0), "partners"), 0)), "acme");
	assert_string_equal(json_string_value(json_array_get(json_object_get(
	    json_array_get(parts, 1), "partners"), 0)), "beta");
	json_decref(parts);
	json_decref(sum);
	config_free(a);
}

/* What only a restart applies: max_sessions (the connection tables'
 * size) is named; partner changes are not. */
static void
test_restart_only(void **state)
{
	struct config *a, *b, *c;
	json_t *r;

	(void)state;
	a = base();
	b = load("restart", keys_of(key1, NULL), "[10.0.0.0/8]", "owner",
	    NULL, 50);
	c = load("norestart", keys_of(key1, NULL), "[10.0.0.0/8]", "owner",
	    NULL, 100);
	r = confdiff_restart_only(a, b);
	assert_non_null(r);
	assert_int_equal(json_array_size(r), 1);
	assert_string_equal(json_string_value(json_array_get(r, 0)),
	    "server.max_sessions");
	json_decref(r);
	r = confdiff_restart_only(a, c);
	assert_non_null(r);
	assert_int_equal(json_array_size(r), 0);
	json_decref(r);
	free(c->listen_host);
	c->listen_host = strdup("0.0.0.0");
	c->listen_port = 22;
	free(c->state_dir);
	c->state_dir = strdup("/elsewhere");
	r = confdiff_restart_only(a, c);
	assert_int_equal(json_array_size(r), 3);
	assert_string_equal(json_string_value(json_array_get(r, 0)),
	    "listen.host");
	assert_string_equal(json_string_value(json_array_get(r, 1)),
	    "listen.port");
	assert_string_equal(json_string_value(json_array_get(r, 2)),
	    "state_dir");
	json_decref(r);
	config_free(a);
	config_free(b);
	config_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_changed),
		cmocka_unit_test(test_partner_added_removed),
		cmocka_unit_test(test_key_changed),
		cmocka_unit_test(test_allowlist_changed),
		cmocka_unit_test(test_password_role_limit_changed),
		cmocka_unit_test(test_summary),
		cmocka_unit_test(test_summary_parts),
		cmocka_unit_test(test_restart_only),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
