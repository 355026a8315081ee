/*
 * test_config.c - the YAML loader: the documented example, defaults, and a
 * table of bad configurations, each checked for the exact FILE:LINE: prefix
 * and the key path it must name.
 *
 * Key material and password hashes are made at run time; nothing secret or
 * key-like is committed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <ftw.h>
#include <pwd.h>
#include <stdio.h>
#include <syslog.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh/libssh.h>

#include "policy/algos.h"
#include "policy/config.h"
#include "policy/policy.h"

static char	 tmpdir[256];
static char	 cfgpath[512];
static char	*edkey;		/* "ssh-ed25519 BASE64" */
static char	*edkey2;
static char	*ecdsakey;	/* "ecdsa-sha2-nistp256 BASE64" */
static char	*edb64;		/* BASE64 of edkey */
static char	*hash;		/* yescrypt of "correct horse" */

static char *
gen_key(enum ssh_keytypes_e type, int bits, char **b64out)
{
	ssh_key k = NULL;
	char *b64 = NULL, *line;
	size_t n;

	if (ssh_pki_generate(type, bits, &k) != SSH_OK)
		return NULL;
	assert_int_equal(ssh_pki_export_pubkey_base64(k, &b64), SSH_OK);
	n = strlen(ssh_key_type_to_char(type)) + 1 + strlen(b64) + 1;
	line = malloc(n);
	assert_non_null(line);
	snprintf(line, n, "%s %s", ssh_key_type_to_char(type), b64);
	if (b64out != NULL)
		*b64out = strdup(b64);
	ssh_string_free_char(b64);
	ssh_key_free(k);
	return line;
}

static int
setup(void **state)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/sluice-test-config-XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(cfgpath, sizeof(cfgpath), "%s/sluice.yaml", tmpdir);
	edkey = gen_key(SSH_KEYTYPE_ED25519, 0, &edb64);
	edkey2 = gen_key(SSH_KEYTYPE_ED25519, 0, NULL);
	ecdsakey = gen_key(SSH_KEYTYPE_ECDSA_P256, 256, NULL);
	if (edkey == NULL || edkey2 == NULL || ecdsakey == NULL)
		return -1;
	if ((cd = calloc(1, sizeof(*cd))) == NULL ||
	    crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL)
		return -1;
	hash = strdup(crypt_r("correct horse", salt, cd));
	free(cd);
	return hash == NULL || hash[0] != '$' ? -1 : 0;
}

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int
teardown(void **state)
{
	(void)state;
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(edkey);
	free(edkey2);
	free(ecdsakey);
	free(edb64);
	free(hash);
	return 0;
}

/* tmpl with @KEY@, @KEY2@, @ECDSA@, @B64@, @HASH@, @DIR@ replaced. */
static char *
subst(const char *tmpl)
{
	static const char *names[] = {
		"@KEY@", "@KEY2@", "@ECDSA@", "@B64@", "@HASH@", "@DIR@"
	};
	const char *vals[] = { edkey, edkey2, ecdsakey, edb64, hash, tmpdir };
	char *out;
	size_t cap = strlen(tmpl) * 4 + 4096, o = 0, i;
	const char *t = tmpl;

	out = malloc(cap);
	assert_non_null(out);
	while (*t != '\0') {
		for (i = 0; i < 6; i++)
			if (strncmp(t, names[i], strlen(names[i])) == 0)
				break;
		if (i < 6) {
			assert_true(o + strlen(vals[i]) < cap);
			memcpy(out + o, vals[i], strlen(vals[i]));
			o += strlen(vals[i]);
			t += strlen(names[i]);
		} else {
			assert_true(o + 1 < cap);
			out[o++] = *t++;
		}
	}
	out[o] = '\0';
	return out;
}

static void
write_file(const char *name, const char *tmpl, mode_t mode)
{
	char path[600], *text = subst(tmpl);
	struct passwd *pw;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
	/* started as root, sluice reads key files as its service user */
	if (geteuid() == 0 && (pw = getpwnam("sluice")) != NULL)
		assert_int_equal(chown(path, pw->pw_uid, pw->pw_gid), 0);
	free(text);
}

/* Loads tmpl as sluice.yaml; returns what went to err (malloc'd). */
static char *
load(const char *tmpl, int *rc, struct config **cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *err;

	write_file("sluice.yaml", tmpl, 0644);
	err = open_memstream(&buf, &len);
	assert_non_null(err);
	*cfg = (struct config *)0x1;
	*rc = config_load(cfgpath, cfg, err);
	fclose(err);
	return buf;
}

static int
count_lines(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* ---- the documented example ---------------------------------------------- */

static const char example[] =
"listen: 127.0.0.1:2222                  # host:port; [::]:22 for IPv6\n"
"host_keys:\n"
"  - /var/lib/sluice/ssh_host_ed25519_key  # generated (0600) when missing\n"
"state_dir: /var/lib/sluice              # landing/, spool/, quarantine/ and the state database live here\n"
"audit:\n"
"  path: /var/log/sluice/audit.jsonl\n"
"store:\n"
"  url: s3://my-bucket/optional/prefix   # or file:///srv/sluice/objects (the demo default)\n"
"  region: us-east-1\n"
"  endpoint: http://127.0.0.1:9000       # optional: any S3-compatible endpoint\n"
"  path_style: true                      # optional\n"
"partners:\n"
"  - name: acme\n"
"    authorized_keys:                    # OpenSSH authorized_keys lines (or a file path)\n"
"      - @KEY@ acme-ops\n"
"    allow_from: [203.0.113.0/24, \"::1/128\"]   # optional; default anywhere\n"
"    object_key: \"{partner}/{path}\"      # default; also {yyyy} {mm} {dd} {filename} {sha256}\n"
"  - name: beta\n"
"    password_hash: \"@HASH@\"             # crypt(3) hash (yescrypt, sha512-crypt, bcrypt)\n";

static void
test_example(void **state)
{
	const struct partner *acme, *beta;
	struct config *cfg;
	char *err, a6[16];
	int rc;

	(void)state;
	err = load(example, &rc, &cfg);
	if (rc != 0)
		fail_msg("example rejected:\n%s", err);
	assert_string_equal(err, "");
	free(err);
	assert_non_null(cfg);

	assert_string_equal(cfg->path, cfgpath);
	assert_string_equal(cfg->listen_host, "127.0.0.1");
	assert_int_equal(cfg->listen_port, 2222);
	assert_int_equal(cfg->nhost_keys, 1);
	assert_string_equal(cfg->host_keys[0],
	    "/var/lib/sluice/ssh_host_ed25519_key");
	assert_string_equal(cfg->state_dir, "/var/lib/sluice");
	assert_string_equal(cfg->audit_path, "/var/log/sluice/audit.jsonl");
	assert_string_equal(cfg->audit_key_path, "/var/lib/sluice/audit.key");

	assert_int_equal(cfg->store.kind, STORE_S3);
	assert_string_equal(cfg->store.url, "s3://my-bucket/optional/prefix");
	assert_string_equal(cfg->store.bucket, "my-bucket");
	assert_string_equal(cfg->store.prefix, "optional/prefix/");
	assert_null(cfg->store.dir);
	assert_string_equal(cfg->store.region, "us-east-1");
	assert_string_equal(cfg->store.endpoint, "http://127.0.0.1:9000");
	assert_int_equal(cfg->store.path_style, 1);
	assert_int_equal(cfg->store.line, 7);

	assert_int_equal(cfg->npartners, 2);
	acme = config_partner(cfg, "acme");
	beta = config_partner(cfg, "beta");
	assert_ptr_equal(acme, &cfg->partners[0]);
	assert_ptr_equal(beta, &cfg->partners[1]);
	assert_null(config_partner(cfg, "gamma"));
	assert_null(config_partner(cfg, "ACME"));

	assert_string_equal(acme->name, "acme");
	assert_int_equal(acme->line, 13);
	assert_int_equal(acme->nauthorized_keys, 1);
	assert_string_equal(acme->authorized_keys[0], edkey);	/* no comment */
	assert_null(acme->password_hash);
	assert_int_equal(acme->nallow_from, 2);
	assert_int_equal(acme->allow_from[0].family, AF_INET);
	assert_int_equal(acme->allow_from[0].prefix, 24);
	assert_memory_equal(acme->allow_from[0].addr, "\xcb\x00\x71\x00", 4);
	assert_int_equal(acme->allow_from[1].family, AF_INET6);
	assert_int_equal(acme->allow_from[1].prefix, 128);
	assert_int_equal(inet_pton(AF_INET6, "::1", a6), 1);
	assert_memory_equal(acme->allow_from[1].addr, a6, 16);
	assert_string_equal(acme->object_key, "{partner}/{path}");

	assert_string_equal(beta->name, "beta");
	assert_int_equal(beta->line, 18);
	assert_int_equal(beta->nauthorized_keys, 0);
	assert_string_equal(beta->password_hash, hash);
	assert_int_equal(beta->nallow_from, 0);
	assert_string_equal(beta->object_key, "{partner}/{path}");

	/* the loaded partner works with the policy functions */
	assert_int_equal(policy_password_ok(beta, "correct horse"), 1);
	assert_int_equal(policy_password_ok(beta, "wrong"), 0);
	config_free(cfg);
}

/* ---- defaults and alternatives ------------------------------------------- */

static const char minimal[] =
"store:\n"
"  url: file:///srv/sluice/objects/\n"
"partners:\n"
"  - name: acme\n"
"    authorized_keys: @KEY@\n";

static void
test_defaults(void **state)
{
	struct config *cfg;
	char *err;
	int rc;

	(void)state;
	unsetenv("AWS_REGION");
	err = load(minimal, &rc, &cfg);
	if (rc != 0)
		fail_msg("minimal config rejected:\n%s", err);
	free(err);
	assert_string_equal(cfg->listen_host, "127.0.0.1");
	assert_int_equal(cfg->listen_port, 2222);
	assert_string_equal(cfg->state_dir, "/var/lib/sluice");
	assert_int_equal(cfg->nhost_keys, 1);
	assert_string_equal(cfg->host_keys[0],
	    "/var/lib/sluice/ssh_host_ed25519_key");
	assert_string_equal(cfg->audit_path, "/var/log/sluice/audit.jsonl");
	assert_string_equal(cfg->audit_segments_dir, "/var/log/sluice/segments");
	assert_int_equal(cfg->audit_segment_max, 64 * 1024 * 1024);
	assert_int_equal(cfg->audit_segment_age_s, 86400);
	assert_int_equal(cfg->audit_syslog, 0);
	{
		char host[256];

		assert_int_equal(gethostname(host, sizeof(host)), 0);
		host[64] = '\0';
		assert_non_null(cfg->audit_host_id);
		if (strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
		    "VWXYZ0123456789._-") == strlen(host))
			assert_string_equal(cfg->audit_host_id, host);
	}
	assert_int_equal(cfg->store.kind, STORE_FILE);
	assert_string_equal(cfg->store.dir, "/srv/sluice/objects");
	assert_null(cfg->store.endpoint);
	assert_null(cfg->store.bucket);
	assert_int_equal(cfg->store.path_style, 0);
	assert_int_equal(cfg->partners[0].nauthorized_keys, 1);
	assert_string_equal(cfg->partners[0].authorized_keys[0], edkey);
	assert_string_equal(cfg->partners[0].object_key, "{partner}/{path}");
	config_free(cfg);
}

static void
test_alternatives(void **state)
{
	struct config *cfg;
	char *err;
	int rc;

	(void)state;
	setenv("AWS_REGION", "eu-central-1", 1);
	err = load(
	    "listen: \"[::]:22\"\n"
	    "state_dir: /srv/sluice/\n"
	    "store:\n"
	    "  url: s3://bank.example-data\n"
	    "partners:\n"
	    "  - name: acme-2.b_c\n"
	    "    authorized_keys: [\"@KEY@\", \"@ECDSA@ with comment\"]\n"
	    "    password_hash: '@HASH@'\n"
	    "    allow_from: 198.51.100.7\n"
	    "    object_key: \"{yyyy}/{mm}/{dd}/{partner}/{filename}\"\n",
	    &rc, &cfg);
	unsetenv("AWS_REGION");
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	free(err);
	assert_string_equal(cfg->listen_host, "::");
	assert_int_equal(cfg->listen_port, 22);
	assert_string_equal(cfg->state_dir, "/srv/sluice");
	assert_string_equal(cfg->host_keys[0], "/srv/sluice/ssh_host_ed25519_key");
	assert_string_equal(cfg->audit_key_path, "/srv/sluice/audit.key");
	assert_string_equal(cfg->store.bucket, "bank.example-data");
	assert_string_equal(cfg->store.prefix, "");
	assert_string_equal(cfg->store.region, "eu-central-1");
	assert_null(cfg->store.endpoint);
	assert_int_equal(cfg->store.path_style, 0);
	assert_int_equal(cfg->partners[0].nauthorized_keys, 2);
	assert_string_equal(cfg->partners[0].authorized_keys[1], ecdsakey);
	assert_string_equal(cfg->partners[0].password_hash, hash);
	assert_int_equal(cfg->partners[0].nallow_from, 1);
	assert_int_equal(cfg->partners[0].allow_from[0].prefix, 32);
	assert_string_equal(cfg->partners[0].object_key,
	    "{yyyy}/{mm}/{dd}/{partner}/{filename}");
	config_free(cfg);

	/* explicit path_style: no wins over the endpoint default */
	err = load(
	    "store:\n"
	    "  url: s3://my-bucket/in/\n"
	    "  endpoint: https://minio.internal:9000/\n"
	    "  path_style: no\n"
	    "partners:\n"
	    "  - name: acme\n"
	    "    password_hash: \"@HASH@\"\n", &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	free(err);
	assert_string_equal(cfg->store.prefix, "in/");
	assert_string_equal(cfg->store.endpoint, "https://minio.internal:9000");
	assert_int_equal(cfg->store.path_style, 0);
	assert_string_equal(cfg->store.region, "us-east-1");
	config_free(cfg);
}

static void
test_key_file(void **state)
{
	struct config *cfg;
	char *err, want[600];
	int rc;

	(void)state;
	write_file("acme.keys",
	    "# acme's operators\n"
	    "\n"
	    "@KEY@ ops@acme\n"
	    "   \n"
	    "@KEY2@\r\n", 0644);
	err = load(
	    "store:\n"
	    "  url: file:///srv/o\n"
	    "partners:\n"
	    "  - name: acme\n"
	    "    authorized_keys:\n"
	    "      - acme.keys\n"
	    "      - @DIR@/acme.keys\n"
	    "      - @ECDSA@\n", &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	free(err);
	assert_int_equal(cfg->partners[0].nauthorized_keys, 5);
	assert_string_equal(cfg->partners[0].authorized_keys[0], edkey);
	assert_string_equal(cfg->partners[0].authorized_keys[1], edkey2);
	assert_string_equal(cfg->partners[0].authorized_keys[2], edkey);
	assert_string_equal(cfg->partners[0].authorized_keys[3], edkey2);
	assert_string_equal(cfg->partners[0].authorized_keys[4], ecdsakey);
	config_free(cfg);

	/* errors inside the file are reported as that file's lines */
	write_file("bad.keys",
	    "@KEY@\n"
	    "# comment\n"
	    "ssh-ed25519 AAAA!!!!\n"
	    "no-pty @KEY2@\n", 0644);
	err = load(
	    "store:\n"
	    "  url: file:///srv/o\n"
	    "partners:\n"
	    "  - name: acme\n"
	    "    authorized_keys: bad.keys\n", &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_null(cfg);
	assert_int_equal(count_lines(err), 2);
	snprintf(want, sizeof(want), "%s/bad.keys:3: ", tmpdir);
	assert_non_null(strstr(err, want));
	snprintf(want, sizeof(want), "%s/bad.keys:4: ", tmpdir);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "partners[0].authorized_keys"));
	assert_non_null(strstr(err, "options are not supported"));
	free(err);

	/* a group-writable key file could be edited by others */
	write_file("open.keys", "@KEY@\n", 0664);
	err = load(
	    "store:\n"
	    "  url: file:///srv/o\n"
	    "partners:\n"
	    "  - name: acme\n"
	    "    authorized_keys: [open.keys]\n", &rc, &cfg);
	assert_int_equal(rc, -1);
	snprintf(want, sizeof(want), "%s:5: partners[0].authorized_keys[0]: ",
	    cfgpath);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "chmod go-w"));
	free(err);

	/* a missing file, and a file without keys */
	write_file("empty.keys", "# nothing yet\n\n", 0644);
	err = load(
	    "store:\n"
	    "  url: file:///srv/o\n"
	    "partners:\n"
	    "  - name: acme\n"
	    "    authorized_keys:\n"
	    "      - missing.keys\n"
	    "      - empty.keys\n", &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_int_equal(count_lines(err), 2);
	snprintf(want, sizeof(want), "%s:6: partners[0].authorized_keys[0]: ",
	    cfgpath);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "No such file"));
	snprintf(want, sizeof(want), "%s:7: partners[0].authorized_keys[1]: ",
	    cfgpath);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "contains no keys"));
	free(err);
}

/* ---- bad configurations -------------------------------------------------- */

struct bad {
	const char	*name;
	const char	*yaml;
	int		 line;
	const char	*key;		/* the message starts with this key path */
	const char	*needle;	/* and contains this */
};

#define STORE	"store:\n  url: file:///srv/o\n"
#define ACME	"partners:\n  - name: acme\n    authorized_keys: [\"@KEY@\"]\n"
#define S3	"store:\n  url: s3://my-bucket\n"
#define FPR	"0123456789ABCDEF0123456789ABCDEF01234567"

static const struct bad bad[] = {
	{ "unknown key", "lisen: 127.0.0.1:2222\n" STORE ACME,
	    1, "lisen: ", "unknown key; did you mean \"listen\"?" },
	{ "unknown key, no suggestion", STORE ACME "colour: blue\n",
	    6, "colour: ", "expected one of: listen, host_keys" },
	{ "unknown partner key", STORE ACME "    pasword_hash: \"@HASH@\"\n",
	    6, "partners[0].pasword_hash: ", "did you mean \"password_hash\"?" },
	{ "duplicate key", STORE "  url: file:///srv/p\n" ACME,
	    3, "store.url: ", "duplicate key (first on line 2)" },
	{ "duplicate top key", STORE ACME STORE,
	    6, "store: ", "duplicate key (first on line 1)" },
	{ "bad CIDR", STORE ACME "    allow_from: [203.0.113.0/24, 10.0.0.0/33]\n",
	    6, "partners[0].allow_from[1]: ",
	    "\"10.0.0.0/33\" is not a CIDR block (expected e.g. 203.0.113.0/24 "
	    "or 2001:db8::/32)" },
	{ "CIDR host bits", STORE ACME "    allow_from:\n      - 10.1.2.3/8\n",
	    7, "partners[0].allow_from[0]: ", "did you mean 10.0.0.0/8?" },
	{ "CIDR single string", STORE ACME "    allow_from: 10.0.0.0/8x\n",
	    6, "partners[0].allow_from: ", "not a CIDR block" },
	{ "empty allow_from", STORE ACME "    allow_from: []\n",
	    6, "partners[0].allow_from: ", "remove allow_from" },
	{ "bad port", "listen: 127.0.0.1:70000\n" STORE ACME,
	    1, "listen: ", "\"127.0.0.1:70000\" has a bad port" },
	{ "port 0", "listen: 127.0.0.1:0\n" STORE ACME,
	    1, "listen: ", "bad port" },
	{ "no port", "listen: 127.0.0.1\n" STORE ACME,
	    1, "listen: ", "has no port" },
	{ "v6 without brackets", "listen: \"::1:2222\"\n" STORE ACME,
	    1, "listen: ", "brackets" },
	{ "bad v6", "listen: \"[::g]:22\"\n" STORE ACME,
	    1, "listen: ", "not an IPv6 address" },
	{ "relative state_dir", "state_dir: var/lib/sluice\n" STORE ACME,
	    1, "state_dir: ", "must be an absolute path" },
	{ "relative host key", "host_keys:\n  - /etc/k\n  - keys/host\n" STORE ACME,
	    3, "host_keys[1]: ", "must be an absolute path" },
	{ "empty host_keys", "host_keys: []\n" STORE ACME,
	    1, "host_keys: ", "empty" },
	{ "relative audit key", "audit:\n  key: audit.key\n" STORE ACME,
	    2, "audit.key: ", "must be an absolute path" },
	{ "relative audit path", "audit:\n  path: audit.jsonl\n" STORE ACME,
	    2, "audit.path: ", "\"audit.jsonl\" must be an absolute path" },
	{ "relative segments_dir", "audit:\n  segments_dir: segs\n" STORE ACME,
	    2, "audit.segments_dir: ", "must be an absolute path" },
	{ "bad segment_max", "audit:\n  segment_max: 64M\n" STORE ACME,
	    2, "audit.segment_max: ", "is not a size" },
	{ "bad segment_age", "audit:\n  segment_age: 1w\n" STORE ACME,
	    2, "audit.segment_age: ", "is not a duration" },
	{ "bad host_id", "audit:\n  host_id: \"gw 1\"\n" STORE ACME,
	    2, "audit.host_id: ", "\"gw 1\" is not a host id; use 1 to 64" },
	{ "long host_id", "audit:\n  host_id: "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
	    STORE ACME, 2, "audit.host_id: ", "is not a host id" },
	{ "syslog typo", "audit:\n  syslog: authpirv\n" STORE ACME,
	    2, "audit.syslog: ", "did you mean \"authpriv\"?" },
	{ "bad audit prefix", "audit:\n  prefix: /audit\n" STORE ACME,
	    2, "audit.prefix: ", "must not start with '/'" },
	{ "empty audit prefix", "audit:\n  prefix: \"\"\n" STORE ACME,
	    2, "audit.prefix: ", "must not be empty" },
	{ "dotdot audit prefix", "audit:\n  prefix: a/../b\n" STORE ACME,
	    2, "audit.prefix: ", "\"..\" segments" },
	{ "retention mode typo", "audit:\n  retention: {mode: COMPLIANT, "
	    "period: 7y}\n" STORE ACME, 2, "audit.retention.mode: ",
	    "did you mean \"COMPLIANCE\"?" },
	{ "retention period bad", "audit:\n  retention: {mode: COMPLIANCE, "
	    "period: 7w}\n" STORE ACME, 2, "audit.retention.period: ",
	    "is not a duration" },
	{ "retention period short", "audit:\n  retention: {mode: GOVERNANCE, "
	    "period: 1h}\n" STORE ACME, 2, "audit.retention.period: ",
	    "too short" },
	{ "retention without period", "audit:\n  retention:\n    mode: "
	    "COMPLIANCE\n" STORE ACME, 3, "audit.retention: ",
	    "needs both mode and period" },
	{ "unknown audit key", "audit:\n  segment_size: 1MiB\n" STORE ACME,
	    2, "audit", "segment_size" },
	{ "bad bucket", "store:\n  url: s3://My_Bucket/x\n" ACME,
	    2, "store.url: ", "bucket name may only contain lower-case" },
	{ "short bucket", "store:\n  url: s3://ab\n" ACME,
	    2, "store.url: ", "3 to 63" },
	{ "IP bucket", "store:\n  url: s3://192.168.5.4\n" ACME,
	    2, "store.url: ", "IP address" },
	{ "bad prefix", "store:\n  url: s3://my-bucket/a/../b\n" ACME,
	    2, "store.url: ", "\"..\"" },
	{ "bad url scheme", "store:\n  url: https://my-bucket.s3.amazonaws.com\n" ACME,
	    2, "store.url: ", "must be s3://bucket[/prefix] or file:///absolute/dir" },
	{ "file url with host", "store:\n  url: file://srv/o\n" ACME,
	    2, "store.url: ", "three slashes" },
	{ "missing url", "store:\n  region: us-east-1\n" ACME,
	    1, "store: ", "missing url" },
	{ "bad endpoint", "store:\n  url: s3://my-bucket\n  endpoint: 127.0.0.1:9000\n" ACME,
	    3, "store.endpoint: ", "http:// or https://" },
	{ "endpoint with path", "store:\n  url: s3://my-bucket\n  endpoint: http://h:9000/bucket\n" ACME,
	    3, "store.endpoint: ", "without a path" },
	{ "bad path_style", "store:\n  url: s3://my-bucket\n  path_style: maybe\n" ACME,
	    3, "store.path_style: ", "true or false" },
	{ "bad region", "store:\n  url: s3://my-bucket\n  region: us east\n" ACME,
	    3, "store.region: ", "not a region name" },
	{ "missing store", ACME,
	    1, "store: ", "missing" },
	{ "missing partners", STORE,
	    1, "partners: ", "missing" },
	{ "empty partners", STORE "partners: []\n",
	    3, "partners: ", "empty" },
	{ "no credentials", STORE "partners:\n  - name: acme\n    allow_from: 10.0.0.0/8\n",
	    4, "partners[0]: ", "no authorized_keys or password_hash" },
	{ "missing name", STORE "partners:\n  - authorized_keys: \"@KEY@\"\n",
	    4, "partners[0]: ", "missing name" },
	{ "duplicate partner", STORE ACME "  - name: acme\n    password_hash: \"@HASH@\"\n",
	    6, "partners[1].name: ", "\"acme\" is already used by partners[0] (line 4)" },
	{ "bad partner name", STORE "partners:\n  - name: Acme Corp\n    password_hash: \"@HASH@\"\n",
	    4, "partners[0].name: ", "\"Acme Corp\" may only contain" },
	{ "partner name start", STORE "partners:\n  - name: -acme\n    password_hash: \"@HASH@\"\n",
	    4, "partners[0].name: ", "must start with" },
	{ "weak md5 hash", STORE "partners:\n  - name: acme\n    password_hash: \"$1$abc$OGyl6dDvZCDiGmIVbeuCq/\"\n",
	    5, "partners[0].password_hash: ", "weak hash scheme; generate a strong one with: mkpasswd -m yescrypt" },
	{ "weak DES hash", STORE "partners:\n  - name: acme\n    password_hash: abJnggxhB/yWI\n",
	    5, "partners[0].password_hash: ", "weak hash" },
	{ "not a hash", STORE "partners:\n  - name: acme\n    password_hash: hunter2\n",
	    5, "partners[0].password_hash: ", "not a crypt(3) hash" },
	{ "salt only", STORE "partners:\n  - name: acme\n    password_hash: \"$6$...\"\n",
	    5, "partners[0].password_hash: ", "not a complete crypt(3) hash" },
	{ "bad key base64", STORE "partners:\n  - name: acme\n    authorized_keys:\n      - ssh-ed25519 AAAA!!!!bad acme\n",
	    6, "partners[0].authorized_keys[0]: ", "does not decode" },
	{ "truncated key", STORE "partners:\n  - name: acme\n    authorized_keys:\n      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\n",
	    6, "partners[0].authorized_keys[0]: ", "does not decode" },
	{ "key type mismatch", STORE "partners:\n  - name: acme\n    authorized_keys:\n      - ssh-rsa @B64@\n",
	    6, "partners[0].authorized_keys[0]: ", "not a ssh-rsa key" },
	{ "key with options", STORE "partners:\n  - name: acme\n    authorized_keys:\n      - from=\"10.0.0.1\" @KEY@\n",
	    6, "partners[0].authorized_keys[0]: ", "options are not supported; use allow_from" },
	{ "DSA key", STORE "partners:\n  - name: acme\n    authorized_keys:\n      - ssh-dss AAAAB3NzaC1kc3MAAACBAP\n",
	    6, "partners[0].authorized_keys[0]: ", "DSA keys are not accepted" },
	{ "key without base64", STORE "partners:\n  - name: acme\n    authorized_keys: ssh-ed25519\n",
	    5, "partners[0].authorized_keys: ", "no base64 key" },
	{ "bad template placeholder", STORE ACME "    object_key: \"{partner}/{nope}\"\n",
	    6, "partners[0].object_key: ", "\"{partner}/{nope}\" has an unknown placeholder" },
	{ "template without path", STORE ACME "    object_key: \"{partner}/latest\"\n",
	    6, "partners[0].object_key: ", "every upload gets the same key" },
	{ "YAML syntax error", "store:\n  url: file:///x\n region: x\n" ACME,
	    3, "YAML syntax error: ", "did not find expected key" },
	{ "YAML unclosed flow", STORE "partners:\n  - name: [acme\n    password_hash: x\n",
	    5, "YAML syntax error: ", "',' or ']'" },
	{ "tab indentation", "store:\n  url: file:///x\n\tpartners: 1\n",
	    3, "YAML syntax error: ", "tab" },
	{ "wrong type: list for string", "listen: [127.0.0.1, 2222]\n" STORE ACME,
	    1, "listen: ", "expected host:port (e.g. 127.0.0.1:2222 or [::]:22), got a list" },
	{ "wrong type: string for list", STORE "partners: acme\n",
	    3, "partners: ", "expected a list of partners" },
	{ "wrong type: string for mapping", "store: s3://my-bucket\n" ACME,
	    1, "store: ", "expected a mapping" },
	{ "wrong type: mapping for string", STORE "partners:\n  - name: {first: acme}\n    password_hash: \"@HASH@\"\n",
	    4, "partners[0].name: ", "got a mapping" },
	{ "wrong type: top level", "- listen\n- store\n",
	    1, "the top level: ", "expected a mapping" },
	{ "no value", "listen:\n" STORE ACME,
	    1, "listen: ", "got no value" },
	{ "partner not a mapping", STORE "partners:\n  - acme\n",
	    4, "partners[0]: ", "expected a mapping" },
	{ "empty file", "",
	    1, "the configuration is empty", "" },
	{ "comments only", "# nothing\n",
	    1, "the configuration is empty", "" },
	{ "second document", STORE ACME "---\nlisten: 1.2.3.4:22\n",
	    6, "a second YAML document", "" },
	/* ---- issue 3: server: ---- */
	{ "server unknown key", "server:\n  max_session: 10\n" STORE ACME,
	    2, "server.max_session: ", "did you mean \"max_sessions\"?" },
	{ "server not a mapping", "server: yes\n" STORE ACME,
	    1, "server: ", "expected a mapping" },
	{ "max_sessions 0", "server:\n  max_sessions: 0\n" STORE ACME,
	    2, "server.max_sessions: ", "0 is out of range; use 1 to 100000" },
	{ "max_sessions junk", "server:\n  max_sessions: lots\n" STORE ACME,
	    2, "server.max_sessions: ", "\"lots\" is not a whole number" },
	{ "max_sessions negative", "server:\n  max_sessions_per_partner: -5\n" STORE ACME,
	    2, "server.max_sessions_per_partner: ", "\"-5\" is not a whole number" },
	{ "max_startups_per_address huge", "server:\n  max_startups_per_address: 99999999999999999999\n" STORE ACME,
	    2, "server.max_startups_per_address: ", "not a whole number" },
	{ "max_startups 0", "server:\n  max_startups: 0\n" STORE ACME,
	    2, "server.max_startups: ", "0 is out of range; use 1 to 100000" },
	{ "max_startups two parts", "server:\n  max_startups: 10:30\n" STORE ACME,
	    2, "server.max_startups: ", "\"10:30\" is not a whole number or start:rate:full; write e.g. 32:30:64" },
	{ "max_startups four parts", "server:\n  max_startups: 1:2:3:4\n" STORE ACME,
	    2, "server.max_startups: ", "is not a whole number or start:rate:full" },
	{ "max_startups junk part", "server:\n  max_startups: 10:x:20\n" STORE ACME,
	    2, "server.max_startups: ", "\"10:x:20\" is not a whole number or start:rate:full" },
	{ "max_startups empty part", "server:\n  max_startups: \"10::20\"\n" STORE ACME,
	    2, "server.max_startups: ", "is not a whole number or start:rate:full" },
	{ "max_startups negative", "server:\n  max_startups: -1:30:20\n" STORE ACME,
	    2, "server.max_startups: ", "is not a whole number or start:rate:full" },
	{ "max_startups rate 0", "server:\n  max_startups: 10:0:100\n" STORE ACME,
	    2, "server.max_startups: ", "\"10:0:100\": rate 0 is out of range; use 1 to 100" },
	{ "max_startups rate 101", "server:\n  max_startups: 10:101:100\n" STORE ACME,
	    2, "server.max_startups: ", "rate 101 is out of range; use 1 to 100" },
	{ "max_startups start 0", "server:\n  max_startups: 0:30:100\n" STORE ACME,
	    2, "server.max_startups: ", "start 0 is out of range; use 1 to 100000" },
	{ "max_startups start above full", "server:\n  max_startups: \"50:30:10\"\n" STORE ACME,
	    2, "server.max_startups: ", "start 50 is above full 10" },
	{ "max_startups a list", "server:\n  max_startups: [10, 30, 100]\n" STORE ACME,
	    2, "server.max_startups: ", "expected a whole number or start:rate:full" },
	{ "max_auth_tries", "server:\n  max_auth_tries: 101\n" STORE ACME,
	    2, "server.max_auth_tries: ", "use 1 to 100" },
	{ "max_open_handles", "server:\n  max_open_handles: 0\n" STORE ACME,
	    2, "server.max_open_handles: ", "use 1 to 4096" },
	{ "login_grace_time 0", "server:\n  login_grace_time: 0\n" STORE ACME,
	    2, "server.login_grace_time: ", "\"0\" is too short; use at least 1s" },
	{ "login_grace_time long", "server:\n  login_grace_time: 2h\n" STORE ACME,
	    2, "server.login_grace_time: ", "\"2h\" is too long; use at most 1h" },
	{ "idle_timeout junk", "server:\n  idle_timeout: 10x\n" STORE ACME,
	    2, "server.idle_timeout: ", "\"10x\" is not a duration; use whole seconds or a number with s, m, h, d or y" },
	{ "visible_for words", "server:\n  visible_for: 24 hours\n" STORE ACME,
	    2, "server.visible_for: ", "not a duration" },
	{ "max_file_size too large", "server:\n  max_file_size: 6TiB\n" STORE ACME,
	    2, "server.max_file_size: ", "\"6TiB\" is too large; use at most 5TiB" },
	{ "max_file_size ambiguous unit", "server:\n  max_file_size: 16M\n" STORE ACME,
	    2, "server.max_file_size: ", "\"16M\" is not a size; use bytes or a number with KiB, MiB" },
	{ "min_free_space negative", "server:\n  min_free_space: -1\n" STORE ACME,
	    2, "server.min_free_space: ", "not a size" },
	{ "user missing", "server:\n  user: no-such-sluice-user\n" STORE ACME,
	    2, "server.user: ", "there is no user \"no-such-sluice-user\"; create it" },
	{ "user root", "server:\n  user: root\n" STORE ACME,
	    2, "server.user: ", "is root; sluice's roles must run as unprivileged users" },
	{ "user bad name", "server:\n  user: \"Bad User\"\n" STORE ACME,
	    2, "server.user: ", "not a user name" },
	{ "global allow_from empty", "server:\n  allow_from: []\n" STORE ACME,
	    2, "server.allow_from: ", "the list is empty and would refuse every address; remove allow_from" },
	{ "global deny_from bad", "server:\n  deny_from: [10.0.0.0/8, 10.0.0.0/33]\n" STORE ACME,
	    2, "server.deny_from[1]: ", "\"10.0.0.0/33\" is not a CIDR block" },
	{ "global allow_from host bits", "server:\n  allow_from: 192.168.1.1/16\n" STORE ACME,
	    2, "server.allow_from: ", "did you mean 192.168.0.0/16?" },
	{ "algorithms unknown key", "server:\n  algorithms:\n    mac: [hmac-sha2-256-etm@openssh.com]\n" STORE ACME,
	    3, "server.algorithms.mac: ", "did you mean \"macs\"?" },
	{ "unknown kex", "server:\n  algorithms:\n    kex: [curve25519-sha256, bogus-kex]\n" STORE ACME,
	    3, "server.algorithms.kex: ", "\"bogus-kex\" is not a key exchange this server supports" },
	{ "mac typo", "server:\n  algorithms:\n    macs:\n      - hmac-sha2-256-etm@opensh.com\n" STORE ACME,
	    4, "server.algorithms.macs: ", "did you mean \"hmac-sha2-256-etm@openssh.com\"?" },
	{ "weak unsupported mac", "server:\n  algorithms:\n    macs: [hmac-md5]\n" STORE ACME,
	    3, "server.algorithms.macs: ", "hmac-md5 is weak (MD5) and this server does not support it; remove it" },
	{ "cipher in the mac list", "server:\n  algorithms:\n    macs: [aes256-ctr]\n" STORE ACME,
	    3, "server.algorithms.macs: ", "is not a MAC this server supports" },
	{ "empty cipher list", "server:\n  algorithms:\n    ciphers: []\n" STORE ACME,
	    3, "server.algorithms.ciphers: ", "the list is empty" },
	{ "empty name in a comma list", "server:\n  algorithms:\n    ciphers: \"aes256-ctr,,aes128-ctr\"\n" STORE ACME,
	    3, "server.algorithms.ciphers: ", "an empty or over-long name" },
	{ "dsa host key", "server:\n  algorithms:\n    host_key_algorithms: [ssh-ed25519, ssh-dss]\n" STORE ACME,
	    3, "server.algorithms.host_key_algorithms: ", "ssh-dss is weak (DSA)" },
	{ "ban failures 0", "server:\n  ban: {failures: 0, window: 10m, duration: 15m}\n" STORE ACME,
	    2, "server.ban.failures: ", "out of range" },
	/* the listener counts at most 64: more was once taken and ignored */
	{ "ban failures 65", "server:\n  ban:\n    failures: 65\n" STORE ACME,
	    3, "server.ban.failures: ", "65 is out of range; use 1 to 64" },
	{ "ban duration junk", "server:\n  ban:\n    duration: forever\n" STORE ACME,
	    3, "server.ban.duration: ", "not a duration" },
	{ "ban unknown key", "server:\n  ban:\n    attempts: 5\n" STORE ACME,
	    3, "server.ban.attempts: ", "unknown key" },
	/* ---- issue 3: roles ---- */
	{ "redefine dropbox", "roles:\n  dropbox: [upload]\n" STORE ACME,
	    2, "roles.dropbox: ", "\"dropbox\" is a built-in role and cannot be redefined; choose another name" },
	{ "redefine owner", "roles:\n  owner: all\n" STORE ACME,
	    2, "roles.owner: ", "built-in role" },
	{ "permission typo", "roles:\n  auditor: [list, raed]\n" STORE ACME,
	    2, "roles.auditor[1]: ", "\"raed\" is not valid; did you mean \"read\"?" },
	{ "unknown permission", "roles:\n  auditor: [list, execute]\n" STORE ACME,
	    2, "roles.auditor[1]: ", "use one of: upload, list, read, overwrite, rename, delete, mkdir, all" },
	{ "empty role", "roles:\n  auditor: []\n" STORE ACME,
	    2, "roles.auditor: ", "the role grants nothing" },
	{ "bad role name", "roles:\n  Auditor: [list]\n" STORE ACME,
	    2, "roles: ", "the role name \"Auditor\" may only contain" },
	{ "roles not a mapping", "roles: [auditor]\n" STORE ACME,
	    1, "roles: ", "expected a mapping of role names" },
	{ "duplicate role", "roles:\n  auditor: [list]\n  auditor: [read]\n" STORE ACME,
	    3, "roles.auditor: ", "duplicate role (first on line 2)" },
	{ "partner role typo", "roles:\n  auditor: [list]\n" STORE ACME "    role: auditr\n",
	    8, "partners[0].role: ", "no role \"auditr\"; did you mean \"auditor\"?" },
	{ "partner role unknown", STORE ACME "    role: administrator\n",
	    6, "partners[0].role: ", "no role \"administrator\"; use one of: dropbox, owner, or define it under roles:" },
	{ "partner visible_for", STORE ACME "    visible_for: 1w\n",
	    6, "partners[0].visible_for: ", "not a duration" },
	{ "partner max_sessions", STORE ACME "    max_sessions: 0\n",
	    6, "partners[0].max_sessions: ", "out of range" },
	/* ---- issue 5: uploader: ---- */
	{ "workers 0", "uploader:\n  workers: 0\n" STORE ACME,
	    2, "uploader.workers: ", "0 is out of range; use 1 to 64" },
	{ "part_size small", "uploader:\n  part_size: 1MiB\n" STORE ACME,
	    2, "uploader.part_size: ", "\"1MiB\" is too small; use at least 5MiB" },
	{ "part_size large", "uploader:\n  part_size: 6GiB\n" STORE ACME,
	    2, "uploader.part_size: ", "too large; use at most 5GiB" },
	{ "threshold below part", "uploader:\n  multipart_threshold: 6MiB\n" STORE ACME,
	    2, "uploader.multipart_threshold: ", "6MiB is below part_size 8MiB; make multipart_threshold at least part_size" },
	{ "part above default threshold", "uploader:\n  part_size: 32MiB\n" STORE ACME,
	    2, "uploader.part_size: ", "32MiB is above multipart_threshold 16MiB (the default)" },
	{ "threshold decimal junk", "uploader:\n  multipart_threshold: 1.5GiB\n" STORE ACME,
	    2, "uploader.multipart_threshold: ", "not a size" },
	{ "max_backoff 0", "uploader:\n  max_backoff: 0s\n" STORE ACME,
	    2, "uploader.max_backoff: ", "too short; use at least 1s" },
	{ "retention word", "uploader:\n  retention: keep\n" STORE ACME,
	    2, "uploader.retention: ", "\"keep\" is not valid; use delete, or {keep: 30d}" },
	{ "retention keep 0", "uploader:\n  retention: {keep: 0}\n" STORE ACME,
	    2, "uploader.retention.keep: ", "too short" },
	{ "retention typo", "uploader:\n  retention:\n    kept: 30d\n" STORE ACME,
	    3, "uploader.retention.kept: ", "did you mean \"keep\"?" },
	/* ---- issue 5: store options ---- */
	{ "sse case", S3 "  sse: aes256\n" ACME,
	    3, "store.sse: ", "\"aes256\" is not valid; did you mean \"AES256\"?" },
	{ "kms without sse", S3 "  kms_key_id: alias/sluice\n" ACME,
	    3, "store.kms_key_id: ", "only used with sse: aws:kms" },
	{ "kms with AES256", S3 "  sse: AES256\n  kms_key_id: alias/sluice\n" ACME,
	    4, "store.kms_key_id: ", "only used with sse: aws:kms" },
	{ "storage class typo", S3 "  storage_class: STANDARD-IA\n" ACME,
	    3, "store.storage_class: ", "did you mean \"STANDARD_IA\"?" },
	{ "storage class unknown", S3 "  storage_class: COLD\n" ACME,
	    3, "store.storage_class: ", "use one of: STANDARD, STANDARD_IA" },
	{ "bucket-only acl", S3 "  acl: log-delivery-write\n" ACME,
	    3, "store.acl: ", "bucket-owner-full-control" },
	{ "reserved tag", S3 "  tags:\n    aws:team: payments\n" ACME,
	    4, "store.tags.aws:team: ", "reserved by AWS" },
	{ "tags list", S3 "  tags: [team, payments]\n" ACME,
	    3, "store.tags: ", "expected a mapping of tag names" },
	{ "tag value chars", S3 "  tags: {team: \"a|b\"}\n" ACME,
	    3, "store.tags.team: ", "may only contain letters" },
	{ "tag without value", S3 "  tags:\n    team:\n" ACME,
	    4, "store.tags.team: ", "no value" },
	{ "too many tags", S3 "  tags: {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10, k: 11}\n" ACME,
	    3, "store.tags: ", "11 tags; S3 allows at most 10" },
	/* ---- issue 12: legal hold, partner storage_class and tags ---- */
	{ "legal hold not bool", S3 "  legal_hold: yes please\n" ACME,
	    3, "store.legal_hold: ", "" },
	{ "legal hold file store", STORE "  legal_hold: true\n" ACME,
	    3, "store.legal_hold: ", "only an s3:// store" },
	{ "partner storage class", S3 ACME "    storage_class: GLACIER-IR\n",
	    6, "partners[0].storage_class: ", "did you mean \"GLACIER_IR\"?" },
	{ "partner tags list", S3 ACME "    tags: [a, b]\n",
	    6, "partners[0].tags: ", "expected a mapping of tag names" },
	{ "partner tag too long", S3 ACME "    tags: {k: \"" 
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n",
	    6, "partners[0].tags.k: ", "longer than 256 characters" },
	{ "partner too many tags", S3 ACME "    tags: {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10, k: 11}\n",
	    6, "partners[0].tags: ", "11 tags; S3 allows at most 10" },
	{ "lock mode case", S3 "  object_lock: {mode: compliance, days: 2555}\n" ACME,
	    3, "store.object_lock.mode: ", "did you mean \"COMPLIANCE\"?" },
	{ "lock without days", S3 "  object_lock:\n    mode: COMPLIANCE\n" ACME,
	    4, "store.object_lock: ", "needs both mode and days" },
	{ "lock days 0", S3 "  object_lock: {mode: GOVERNANCE, days: 0}\n" ACME,
	    3, "store.object_lock.days: ", "out of range; use 1 to 36500" },
	{ "relative ca_file", S3 "  ca_file: private-ca.pem\n" ACME,
	    3, "store.ca_file: ", "must be an absolute path" },
	{ "missing ca_file", S3 "  ca_file: /nonexistent/ca.pem\n" ACME,
	    3, "store.ca_file: ", "cannot read \"/nonexistent/ca.pem\": No such file" },
	{ "pin not base64", S3 "  pinned_pubkey: \"sha256//not*base64\"\n" ACME,
	    3, "store.pinned_pubkey: ", "not base64" },
	{ "pin short", S3 "  pinned_pubkey: \"sha256//AAAA\"\n" ACME,
	    3, "store.pinned_pubkey: ", "not a SHA-256 digest" },
	{ "pin scheme", S3 "  pinned_pubkey: \"md5//AAAA\"\n" ACME,
	    3, "store.pinned_pubkey: ", "must be sha256//BASE64" },
	{ "collision", S3 "  collision: overwrite\n" ACME,
	    3, "store.collision: ", "use one of: suffix, version, reject" },
	{ "store unknown option", S3 "  storage-class: STANDARD\n" ACME,
	    3, "store.storage-class: ", "did you mean \"storage_class\"?" },
	/* ---- issue 4: store.quarantine_prefix ---- */
	{ "quarantine_prefix empty", S3 "  quarantine_prefix: \"\"\n" ACME,
	    3, "store.quarantine_prefix: ", "must not be empty; remove the key" },
	{ "quarantine_prefix absolute", S3 "  quarantine_prefix: /q/\n" ACME,
	    3, "store.quarantine_prefix: ", "must not start with '/'" },
	{ "quarantine_prefix dotdot", S3 "  quarantine_prefix: q/../x/\n" ACME,
	    3, "store.quarantine_prefix: ", "\"..\" segments" },
	{ "quarantine_prefix blank", S3 "  quarantine_prefix: \"q x/\"\n" ACME,
	    3, "store.quarantine_prefix: ", "blanks are not allowed" },
	{ "quarantine_prefix same as url", "store:\n  url: s3://bkt/in\n"
	    "  quarantine_prefix: in\n" ACME,
	    3, "store.quarantine_prefix: ", "is the store URL's prefix" },
	{ "quarantine_prefix list", S3 "  quarantine_prefix: [q/]\n" ACME,
	    3, "store.quarantine_prefix: ", "expected a key prefix" },
	/* ---- issue 4: completion ---- */
	{ "temp pattern too broad", STORE ACME "    completion:\n      temp_patterns: [\"*.part\", \"*\"]\n",
	    7, "partners[0].completion.temp_patterns[1]: ", "\"*\" matches every file name; use a narrower pattern" },
	{ "temp pattern path", STORE ACME "    completion:\n      temp_patterns: \"tmp/*.part\"\n",
	    7, "partners[0].completion.temp_patterns: ", "contains '/'" },
	{ "empty marker", STORE ACME "    completion:\n      marker: \"\"\n",
	    7, "partners[0].completion.marker: ", "must be 1 to 64 characters" },
	{ "wildcard marker", STORE ACME "    completion:\n      marker: \"*.done\"\n",
	    7, "partners[0].completion.marker: ", "plain suffix" },
	{ "checksum sha1", STORE ACME "    completion:\n      checksum: sha1\n",
	    7, "partners[0].completion.checksum: ", "sha256, md5" },
	{ "marker is the checksum suffix", STORE ACME "    completion:\n      marker: .sha256\n      checksum: sha256\n",
	    7, "partners[0].completion.marker: ", "also the checksum file's suffix" },
	{ "manifest too broad", STORE ACME "    completion:\n      manifest: \"*\"\n",
	    7, "partners[0].completion.manifest: ", "matches every file name" },
	{ "manifest_timeout 0", STORE ACME "    completion:\n      manifest_timeout: 0\n",
	    7, "partners[0].completion.manifest_timeout: ", "too short" },
	{ "quiet too long", STORE ACME "    completion:\n      quiet_seconds: 2d\n",
	    7, "partners[0].completion.quiet_seconds: ", "\"2d\" is too long; use at most 1d" },
	{ "incomplete_ttl negative", STORE ACME "    completion:\n      incomplete_ttl: -1h\n",
	    7, "partners[0].completion.incomplete_ttl: ", "not a duration" },
	{ "ship_sidecars", STORE ACME "    completion:\n      ship_sidecars: maybe\n",
	    7, "partners[0].completion.ship_sidecars: ", "true or false" },
	{ "completion typo", STORE ACME "    completion:\n      temp_pattern: [\"*.part\"]\n",
	    7, "partners[0].completion.temp_pattern: ", "did you mean \"temp_patterns\"?" },
	/* ---- issue 4: signature ---- */
	{ "signature mode typo", STORE ACME "    signature:\n      mode: detach\n",
	    7, "partners[0].signature.mode: ", "did you mean \"detached\"?" },
	{ "signers without mode", STORE ACME "    signature:\n      signers: [\"" FPR "\"]\n      keyring: k.asc\n",
	    7, "partners[0].signature: ", "mode is none (the default), so no signature would be checked" },
	{ "mode none with signers", STORE ACME "    signature:\n      mode: none\n      signers: [\"" FPR "\"]\n",
	    7, "partners[0].signature: ", "mode is none, so no signature" },
	{ "missing signers", STORE ACME "    signature:\n      mode: detached\n      keyring: k.asc\n",
	    7, "partners[0].signature: ", "missing signers" },
	{ "missing keyring", STORE ACME "    signature:\n      mode: inline\n      signers: [\"" FPR "\"]\n",
	    7, "partners[0].signature: ", "missing keyring; add keyring: /etc/sluice/keys/acme.asc" },
	{ "key id not fingerprint", STORE ACME "    signature:\n      mode: detached\n      keyring: k.asc\n      signers: [\"89ABCDEF01234567\"]\n",
	    9, "partners[0].signature.signers[0]: ", "is a key ID, not a fingerprint" },
	{ "fingerprint junk", STORE ACME "    signature:\n      mode: detached\n      keyring: k.asc\n      signers:\n        - \"0x" FPR "\"\n",
	    10, "partners[0].signature.signers[0]: ", "only hex digits and spaces" },
	{ "fingerprint short", STORE ACME "    signature:\n      mode: detached\n      keyring: k.asc\n      signers: \"0123456789ABCDEF0123456789ABCDEF0123456\"\n",
	    9, "partners[0].signature.signers: ", "not a 40-hex-digit fingerprint" },
	{ "empty signers", STORE ACME "    signature:\n      mode: detached\n      keyring: k.asc\n      signers: []\n",
	    9, "partners[0].signature.signers: ", "the list is empty" },
	{ "missing keyring file", STORE ACME "    signature:\n      mode: detached\n      signers: [\"" FPR "\"]\n      keyring: missing.asc\n",
	    9, "partners[0].signature.keyring: ", "missing.asc\": No such file" },
	{ "decryption key with detached", STORE ACME "    signature:\n      mode: detached\n      signers: [\"" FPR "\"]\n      keyring: k.asc\n      decryption_key: gw.sec\n",
	    10, "partners[0].signature.decryption_key: ", "only used with mode: encrypted; remove it" },
	{ "encrypted without key", STORE ACME "    signature:\n      mode: encrypted\n      signers: [\"" FPR "\"]\n      keyring: k.asc\n",
	    7, "partners[0].signature: ", "mode encrypted needs decryption_key" },
	{ "keep_plaintext with inline", STORE ACME "    signature:\n      mode: inline\n      signers: [\"" FPR "\"]\n      keyring: k.asc\n      keep_plaintext: true\n",
	    10, "partners[0].signature.keep_plaintext: ", "only used with mode: encrypted" },
	{ "wait 0", STORE ACME "    signature:\n      wait: 0\n",
	    7, "partners[0].signature.wait: ", "too short" },
	{ "timeout 0", STORE ACME "    signature:\n      timeout: 0\n",
	    7, "partners[0].signature.timeout: ", "too short" },
	{ "timeout 2d", STORE ACME "    signature:\n      timeout: 2d\n",
	    7, "partners[0].signature.timeout: ", "too long" },
	{ "duplicate_policy word", STORE ACME "    duplicate_window: 24h\n    duplicate_policy: flag\n",
	    7, "partners[0].duplicate_policy: ", "use one of: accept-and-flag, accept, reject" },
	{ "duplicate_policy without window", STORE ACME "    duplicate_policy: reject\n",
	    6, "partners[0].duplicate_policy: ", "no effect without duplicate_window" },
	{ "duplicate_window junk", STORE ACME "    duplicate_window: 1w\n",
	    6, "partners[0].duplicate_window: ", "not a duration" },
	{ "operator role", STORE ACME "operators:\n  - user: root\n    role: admin\n",
	    8, "operators[0].role: ", "\"admin\" is not valid; use one of: owner, operator, auditor" },
	{ "operator user and group", STORE ACME "operators:\n  - user: root\n    group: root\n    role: owner\n",
	    7, "operators[0]: ", "exactly one of user: or group:" },
	{ "operator without role", STORE ACME "operators:\n  - group: root\n",
	    7, "operators[0].role: ", "missing; add role: owner, operator or auditor" },
	{ "operators not a list", STORE ACME "operators: root\n",
	    6, "operators: ", "expected a list" },
	{ "control.socket relative", STORE ACME "control:\n  socket: run/c.sock\n",
	    7, "control.socket: ", "must be an absolute path" },
};

static void
test_audit_segments(void **state)
{
	struct config *cfg;
	char *err;
	int rc;

	(void)state;
	err = load(
	    "audit:\n"
	    "  path: /srv/log/audit.jsonl\n"
	    "  segments_dir: /srv/sealed/\n"
	    "  segment_max: 16MiB\n"
	    "  segment_age: 6h\n"
	    "  host_id: gw1.example-bank.com\n"
	    "  syslog: local3\n"
	    STORE ACME, &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	free(err);
	assert_string_equal(cfg->audit_segments_dir, "/srv/sealed");
	assert_int_equal(cfg->audit_segment_max, 16 * 1024 * 1024);
	assert_int_equal(cfg->audit_segment_age_s, 6 * 3600);
	assert_string_equal(cfg->audit_host_id, "gw1.example-bank.com");
	assert_int_equal(cfg->audit_syslog, LOG_LOCAL3);
	assert_string_equal(cfg->audit_prefix, "audit/");
	assert_null(cfg->audit_retention_mode);
	assert_int_equal(cfg->audit_retention_s, 0);
	config_free(cfg);
	err = load("audit:\n  prefix: compliance/trail\n  retention: {mode: "
	    "COMPLIANCE, period: 7y}\n" STORE ACME, &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	free(err);
	assert_string_equal(cfg->audit_prefix, "compliance/trail/");
	assert_string_equal(cfg->audit_retention_mode, "COMPLIANCE");
	assert_int_equal(cfg->audit_retention_s, 7 * 365 * 86400);
	config_free(cfg);
	err = load("audit:\n  path: /srv/log/audit.jsonl\n  syslog: false\n"
	    "  segment_max: 0\n" STORE ACME, &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	free(err);
	assert_string_equal(cfg->audit_segments_dir, "/srv/log/segments");
	assert_int_equal(cfg->audit_syslog, 0);
	assert_int_equal(cfg->audit_segment_max, 0);
	config_free(cfg);
}

static void
test_bad_table(void **state)
{
	struct config *cfg;
	char *err, prefix[700];
	size_t i;
	int rc;

	(void)state;
	write_file("k.asc", "not parsed by the loader\n", 0644);
	write_file("gw.sec", "not parsed by the loader\n", 0600);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = load(bad[i].yaml, &rc, &cfg);
		if (getenv("SLUICE_TEST_VERBOSE") != NULL)
			fputs(err, stderr);	/* to read the messages */
		snprintf(prefix, sizeof(prefix), "%s:%d: %s", cfgpath,
		    bad[i].line, bad[i].key);
		if (rc != -1 || cfg != NULL)
			fail_msg("%s: accepted (rc %d)", bad[i].name, rc);
		if (count_lines(err) != 1)
			fail_msg("%s: want one line, got:\n%s", bad[i].name,
			    err);
		if (strncmp(err, prefix, strlen(prefix)) != 0)
			fail_msg("%s: want prefix \"%s\", got:\n%s",
			    bad[i].name, prefix, err);
		if (strstr(err, bad[i].needle) == NULL)
			fail_msg("%s: want \"%s\" in:\n%s", bad[i].name,
			    bad[i].needle, err);
		free(err);
	}
}

/* A password hash is a secret: never echoed, even when it is wrong. */
static void
test_no_secrets(void **state)
{
	struct config *cfg;
	char *err;
	int rc;

	(void)state;
	err = load("partners:\n  - name: acme\n"
	    "    password_hash: \"$1$abc$OGyl6dDvZCDiGmIVbeuCq/\"\n"
	    "  - name: beta\n"
	    "    password_hash: \"$6$sAlT$cutoff\"\n"
	    "  - name: gamma\n"
	    "    password_hash: \"@HASH@\"\n"
	    "    pasword: \"Sup3rSecret\"\n"
	    "    authorized_keys: [\"@KEY@\"]\n"
	    "store:\n"
	    "  url: s3://b\n"
	    "  endpoint: http://AKIAEXAMPLE:s3cr3t@127.0.0.1:9000\n",
	    &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_null(strstr(err, "OGyl6dDvZCDiGmIVbeuCq"));
	assert_null(strstr(err, "sAlT"));
	assert_null(strstr(err, "cutoff"));
	assert_null(strstr(err, hash + 10));
	assert_null(strstr(err, "Sup3rSecret"));
	assert_null(strstr(err, "s3cr3t"));
	assert_null(strstr(err, "AKIAEXAMPLE"));
	assert_non_null(strstr(err, "partners[0].password_hash: weak"));
	assert_non_null(strstr(err, "partners[1].password_hash: not a complete"));
	assert_non_null(strstr(err, "partners[2].pasword: unknown key"));
	assert_non_null(strstr(err, "store.endpoint: must not contain "
	    "user:password@"));
	free(err);
}

/* Every problem is reported in one run, in line order. */
static void
test_many_errors(void **state)
{
	struct config *cfg;
	char *err, *l[8], *p;
	char want[700];
	int rc, n = 0;

	(void)state;
	err = load(
	    "listen: 127.0.0.1:99999\n"				/* 1 */
	    "store:\n"						/* 2 */
	    "  url: s3://Bad\n"					/* 3 */
	    "partners:\n"					/* 4 */
	    "  - name: acme\n"					/* 5 */
	    "    allow_from: [10.0.0.0/33, \"::1/129\"]\n"	/* 6 */
	    "  - name: acme\n"					/* 7 */
	    "    password_hash: \"$1$x$y\"\n"			/* 8 */
	    "state_dir: relative\n",				/* 9 */
	    &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_null(cfg);
	for (p = strtok(err, "\n"); p != NULL && n < 8; p = strtok(NULL, "\n"))
		l[n++] = p;
	if (n != 8)
		fail_msg("want 8 lines, got %d", n);
	snprintf(want, sizeof(want), "%s:1: listen: ", cfgpath);
	assert_non_null(strstr(l[0], want));
	snprintf(want, sizeof(want), "%s:3: store.url: ", cfgpath);
	assert_non_null(strstr(l[1], want));
	snprintf(want, sizeof(want), "%s:5: partners[0]: ", cfgpath);
	assert_non_null(strstr(l[2], want));
	assert_non_null(strstr(l[2], "no authorized_keys or password_hash"));
	snprintf(want, sizeof(want), "%s:6: partners[0].allow_from[0]: ",
	    cfgpath);
	assert_non_null(strstr(l[3], want));
	snprintf(want, sizeof(want), "%s:6: partners[0].allow_from[1]: ",
	    cfgpath);
	assert_non_null(strstr(l[4], want));
	snprintf(want, sizeof(want), "%s:7: partners[1].name: ", cfgpath);
	assert_non_null(strstr(l[5], want));
	snprintf(want, sizeof(want), "%s:8: partners[1].password_hash: weak",
	    cfgpath);
	assert_non_null(strstr(l[6], want));
	snprintf(want, sizeof(want), "%s:9: state_dir: ", cfgpath);
	assert_non_null(strstr(l[7], want));
	free(err);
}

static void
test_rsa(void **state)
{
	struct config *cfg;
	char *err, *yaml, *rsa;
	size_t n;
	int rc;

	(void)state;
	rsa = gen_key(SSH_KEYTYPE_RSA, 2048, NULL);
	assert_non_null(rsa);
	n = strlen(rsa) + 200;
	yaml = malloc(n);
	assert_non_null(yaml);
	snprintf(yaml, n, STORE "partners:\n  - name: acme\n"
	    "    authorized_keys: \"%s\"\n", rsa);
	err = load(yaml, &rc, &cfg);
	if (rc != 0)
		fail_msg("2048-bit RSA rejected:\n%s", err);
	assert_string_equal(cfg->partners[0].authorized_keys[0], rsa);
	config_free(cfg);
	free(err);
	free(yaml);
	free(rsa);

	/* a 1024-bit key, if this libssh can still make one */
	if ((rsa = gen_key(SSH_KEYTYPE_RSA, 1024, NULL)) == NULL)
		return;
	n = strlen(rsa) + 200;
	yaml = malloc(n);
	assert_non_null(yaml);
	snprintf(yaml, n, STORE "partners:\n  - name: acme\n"
	    "    authorized_keys: \"%s\"\n", rsa);
	err = load(yaml, &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, ":5: partners[0].authorized_keys: "));
	assert_non_null(strstr(err, "1024-bit RSA key"));
	free(err);
	free(yaml);
	free(rsa);
}

/* Every strong scheme the brief names loads and verifies. */
static void
test_hash_schemes(void **state)
{
	static const char *schemes[] = {
		"$y$", "$gy$", "$7$", "$6$", "$5$", "$2b$", "$2y$", "$2a$"
	};
	char salt[CRYPT_GENSALT_OUTPUT_SIZE], yaml[512], *h, *err;
	struct crypt_data *cd;
	struct config *cfg;
	size_t i;
	int rc;

	(void)state;
	cd = calloc(1, sizeof(*cd));
	assert_non_null(cd);
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		assert_non_null(crypt_gensalt_rn(schemes[i], 0, NULL, 0, salt,
		    sizeof(salt)));
		h = crypt_r("pw", salt, cd);
		assert_non_null(h);
		snprintf(yaml, sizeof(yaml), STORE "partners:\n  - name: acme\n"
		    "    password_hash: '%s'\n", h);
		err = load(yaml, &rc, &cfg);
		if (rc != 0)
			fail_msg("%s rejected:\n%s", schemes[i], err);
		free(err);
		assert_int_equal(policy_password_ok(&cfg->partners[0], "pw"), 1);
		assert_int_equal(policy_password_ok(&cfg->partners[0], "pW"), 0);
		config_free(cfg);

		/* the same hash cut short is refused */
		h[strlen(h) - 1] = '\0';
		snprintf(yaml, sizeof(yaml), STORE "partners:\n  - name: acme\n"
		    "    password_hash: '%s'\n", h);
		err = load(yaml, &rc, &cfg);
		assert_int_equal(rc, -1);
		assert_non_null(strstr(err, ":5: partners[0].password_hash: "));
		free(err);
	}
	free(cd);
}

static void
test_unreadable(void **state)
{
	char path[600], *buf = NULL;
	size_t len = 0;
	struct config *cfg = (struct config *)0x1;
	FILE *err;

	(void)state;
	snprintf(path, sizeof(path), "%s/does-not-exist.yaml", tmpdir);
	err = open_memstream(&buf, &len);
	assert_non_null(err);
	assert_int_equal(config_load(path, &cfg, err), -1);
	fclose(err);
	assert_null(cfg);
	assert_int_equal(strncmp(buf, path, strlen(path)), 0);
	assert_non_null(strstr(buf, "No such file"));
	free(buf);
	/* err may be NULL */
	cfg = (struct config *)0x1;
	assert_int_equal(config_load(path, &cfg, NULL), -1);
	assert_null(cfg);
	config_free(NULL);
}

/* ---- issues 3, 4 and 5: defaults, every key, warnings -------------------- */

static void
test_new_defaults(void **state)
{
	const struct partner *p;
	struct config *cfg;
	char *err;
	int rc;

	(void)state;
	err = load(minimal, &rc, &cfg);
	if (rc != 0)
		fail_msg("minimal config rejected:\n%s", err);
	assert_string_equal(err, "");	/* no warnings either */
	free(err);

	assert_int_equal(cfg->server.max_sessions, 256);
	assert_int_equal(cfg->server.max_sessions_per_partner, 16);
	assert_int_equal(cfg->server.max_sessions_per_address, 32);
	assert_int_equal(cfg->server.max_startups, 64);
	assert_int_equal(cfg->server.max_startups_begin, 32);	/* 32:30:64 */
	assert_int_equal(cfg->server.max_startups_rate, 30);
	assert_int_equal(cfg->server.max_startups_per_address, 8);
	assert_int_equal(cfg->server.login_grace_s, 60);
	assert_int_equal(cfg->server.idle_timeout_s, 1800);
	assert_int_equal(cfg->server.max_auth_tries, 6);
	assert_int_equal(cfg->server.max_file_size, 0);
	assert_int_equal(cfg->server.max_open_handles, 64);
	assert_int_equal(cfg->server.min_free_space, 1073741824);
	assert_int_equal(cfg->server.visible_for_s, 86400);
	assert_null(cfg->server.user);
	assert_int_equal(cfg->server.nallow_from, 0);
	assert_int_equal(cfg->server.ndeny_from, 0);
	assert_null(cfg->server.kex);
	assert_null(cfg->server.ciphers);
	assert_null(cfg->server.macs);
	assert_null(cfg->server.host_key_algorithms);
	assert_null(cfg->server.pubkey_algorithms);
	assert_int_equal(cfg->server.ban_failures, 10);
	assert_int_equal(cfg->server.ban_window_s, 600);
	assert_int_equal(cfg->server.ban_duration_s, 900);

	assert_int_equal(cfg->uploader.workers, 10);
	assert_int_equal(cfg->uploader.multipart_threshold, 16 * 1048576);
	assert_int_equal(cfg->uploader.part_size, 8 * 1048576);
	assert_int_equal(cfg->uploader.max_backoff_s, 20);
	assert_int_equal(cfg->uploader.retention_keep_s, 0);

	assert_null(cfg->store.sse);
	assert_null(cfg->store.kms_key_id);
	assert_null(cfg->store.storage_class);
	assert_null(cfg->store.acl);
	assert_int_equal(cfg->store.ntags, 0);
	assert_null(cfg->store.object_lock_mode);
	assert_int_equal(cfg->store.object_lock_days, 0);
	assert_null(cfg->store.ca_file);
	assert_null(cfg->store.pinned_pubkey);
	assert_int_equal(cfg->store.collision, COLLISION_SUFFIX);

	assert_int_equal(cfg->nroles, 2);
	assert_string_equal(cfg->roles[0].name, "dropbox");
	assert_int_equal(cfg->roles[0].perms,
	    PERM_UPLOAD | PERM_LIST | PERM_RENAME | PERM_MKDIR);
	assert_int_equal(cfg->roles[0].line, 0);
	assert_string_equal(cfg->roles[1].name, "owner");
	assert_int_equal(cfg->roles[1].perms, PERM_ALL);
	assert_ptr_equal(config_role(cfg, "dropbox"), &cfg->roles[0]);
	assert_ptr_equal(config_role(cfg, "owner"), &cfg->roles[1]);
	assert_null(config_role(cfg, "auditor"));
	assert_null(config_role(cfg, NULL));
	assert_null(config_role(NULL, "owner"));

	p = &cfg->partners[0];
	assert_ptr_equal(p->role, &cfg->roles[0]);
	assert_int_equal(p->visible_for_s, 86400);
	assert_int_equal(p->max_sessions, 16);
	assert_int_equal(p->completion.ntemp_patterns, 3);
	assert_string_equal(p->completion.temp_patterns[0], "*.part");
	assert_string_equal(p->completion.temp_patterns[1], "*.filepart");
	assert_string_equal(p->completion.temp_patterns[2], "*.tmp");
	assert_null(p->completion.marker);
	assert_null(p->completion.checksum);
	assert_null(p->completion.manifest);
	assert_int_equal(p->completion.manifest_timeout_s, 86400);
	assert_int_equal(p->completion.quiet_s, 0);
	assert_int_equal(p->completion.incomplete_ttl_s, 86400);
	assert_int_equal(p->completion.ship_sidecars, 0);
	assert_int_equal(p->signature.mode, SIG_NONE);
	assert_int_equal(p->signature.nsigners, 0);
	assert_null(p->signature.keyring);
	assert_null(p->signature.decryption_key);
	assert_int_equal(p->signature.wait_s, 600);
	assert_int_equal(p->signature.keep_plaintext, 0);
	assert_int_equal(p->duplicate_window_s, 0);
	assert_int_equal(p->duplicate_policy, DUP_ACCEPT_FLAG);
	config_free(cfg);
}

static const char full[] =
"server:\n"
"  max_sessions: 100\n"
"  max_sessions_per_partner: 5\n"
"  max_sessions_per_address: 7\n"
"  max_startups: 20\n"
"  max_startups_per_address: 3\n"
"  login_grace_time: 30s\n"
"  idle_timeout: 10m\n"
"  max_auth_tries: 3\n"
"  max_file_size: 10GB\n"				/* 10 */
"  max_open_handles: 128\n"
"  min_free_space: 512KiB\n"
"  visible_for: 12h\n"
"  user: nobody\n"
"  allow_from: [10.0.0.0/8, \"2001:db8::/32\"]\n"
"  deny_from: 10.66.0.0/16\n"
"  algorithms:\n"
"    kex: [curve25519-sha256, ecdh-sha2-nistp256]\n"
"    ciphers: \"aes256-gcm@openssh.com, aes256-ctr\"\n"
"    macs: [hmac-sha2-256-etm@openssh.com]\n"		/* 20 */
"    host_key_algorithms: [ssh-ed25519, rsa-sha2-512]\n"
"    pubkey_algorithms: [ssh-ed25519, rsa-sha2-256]\n"
"  ban: {failures: 5, window: 5m, duration: 1h}\n"
"roles:\n"
"  auditor: [list, read]\n"
"  cleaner: [list, delete]\n"
"  super: all\n"
"  writer: upload\n"
"uploader:\n"
"  workers: 8\n"						/* 30 */
"  multipart_threshold: 64MiB\n"
"  part_size: 16MiB\n"
"  max_backoff: 1m\n"
"  retention: {keep: 30d}\n"
"store:\n"
"  url: s3://my-bucket\n"
"  sse: aws:kms\n"
"  kms_key_id: alias/sluice\n"
"  storage_class: STANDARD_IA\n"
"  acl: bucket-owner-full-control\n"			/* 40 */
"  tags: {team: payments, cost-center: \"4711\", empty: \"\"}\n"
"  object_lock: {mode: COMPLIANCE, days: 2555}\n"
"  ca_file: @DIR@/ca.pem\n"
"  pinned_pubkey: \"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=;sha256//BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=\"\n"
"  collision: reject\n"
"partners:\n"
"  - name: acme\n"
"    authorized_keys: [\"@KEY@\"]\n"
"    role: auditor\n"
"    visible_for: 1h\n"					/* 50 */
"    max_sessions: 4\n"
"    completion:\n"
"      temp_patterns: [\"*.partial\", \"~*\"]\n"
"      marker: \".done\"\n"
"      checksum: sha256\n"
"      manifest: \"*.manifest\"\n"
"      manifest_timeout: 2h\n"
"      quiet_seconds: 30\n"
"      incomplete_ttl: 3d\n"
"      ship_sidecars: true\n"				/* 60 */
"    signature:\n"
"      mode: encrypted\n"
"      signers:\n"
"        - \"0123 4567 89ab cdef 0123  4567 89AB CDEF 0123 4567\"\n"
"        - \"" FPR "\"\n"
"      keyring: keys/acme.asc\n"
"      decryption_key: @DIR@/gw.sec\n"
"      wait: 1h\n"
"      keep_plaintext: yes\n"
"    duplicate_window: 7d\n"				/* 70 */
"    duplicate_policy: reject\n"
"  - name: beta\n"
"    password_hash: \"@HASH@\"\n"
"    role: owner\n"
"    completion:\n"
"      temp_patterns: []\n"
"    signature:\n"
"      mode: detached\n"
"      signers: \"" FPR "\"\n"
"      keyring: @DIR@/keys/acme.asc\n"			/* 80 */
"    duplicate_window: 1d\n"
"  - name: gamma\n"
"    password_hash: \"@HASH@\"\n"
"    role: writer\n";

static int
mkdir_in_tmp(const char *name)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

static void
test_full(void **state)
{
	const struct partner *a, *b, *c;
	struct config *cfg;
	char *err, want[700];
	int rc;

	(void)state;
	assert_int_equal(mkdir_in_tmp("keys"), 0);
	write_file("keys/acme.asc", "public keys\n", 0644);
	write_file("gw.sec", "secret key\n", 0600);
	write_file("ca.pem", "a CA\n", 0644);
	err = load(full, &rc, &cfg);
	if (rc != 0)
		fail_msg("full config rejected:\n%s", err);
	assert_string_equal(err, "");
	free(err);

	assert_int_equal(cfg->server.max_sessions, 100);
	assert_int_equal(cfg->server.max_sessions_per_partner, 5);
	assert_int_equal(cfg->server.max_sessions_per_address, 7);
	assert_int_equal(cfg->server.max_startups, 20);
	/* a plain number: a hard cap, no random drop */
	assert_int_equal(cfg->server.max_startups_begin, 20);
	assert_int_equal(cfg->server.max_startups_rate, 100);
	assert_int_equal(cfg->server.max_startups_per_address, 3);
	assert_int_equal(cfg->server.login_grace_s, 30);
	assert_int_equal(cfg->server.idle_timeout_s, 600);
	assert_int_equal(cfg->server.max_auth_tries, 3);
	assert_int_equal(cfg->server.max_file_size, 10000000000LL);
	assert_int_equal(cfg->server.max_open_handles, 128);
	assert_int_equal(cfg->server.min_free_space, 524288);
	assert_int_equal(cfg->server.visible_for_s, 43200);
	assert_string_equal(cfg->server.user, "nobody");
	assert_int_equal(cfg->server.nallow_from, 2);
	assert_int_equal(cfg->server.allow_from[0].prefix, 8);
	assert_int_equal(cfg->server.allow_from[1].family, AF_INET6);
	assert_int_equal(cfg->server.ndeny_from, 1);
	assert_int_equal(cfg->server.deny_from[0].prefix, 16);
	assert_memory_equal(cfg->server.deny_from[0].addr, "\x0a\x42\x00\x00", 4);
	assert_string_equal(cfg->server.kex,
	    "curve25519-sha256,ecdh-sha2-nistp256");
	assert_string_equal(cfg->server.ciphers,
	    "aes256-gcm@openssh.com,aes256-ctr");
	assert_string_equal(cfg->server.macs, "hmac-sha2-256-etm@openssh.com");
	assert_string_equal(cfg->server.host_key_algorithms,
	    "ssh-ed25519,rsa-sha2-512");
	assert_string_equal(cfg->server.pubkey_algorithms,
	    "ssh-ed25519,rsa-sha2-256");
	assert_int_equal(cfg->server.ban_failures, 5);
	assert_int_equal(cfg->server.ban_window_s, 300);
	assert_int_equal(cfg->server.ban_duration_s, 3600);

	assert_int_equal(cfg->nroles, 6);
	assert_string_equal(cfg->roles[2].name, "auditor");
	assert_int_equal(cfg->roles[2].perms, PERM_LIST | PERM_READ);
	assert_int_equal(cfg->roles[2].line, 25);
	assert_int_equal(config_role(cfg, "cleaner")->perms,
	    PERM_LIST | PERM_DELETE);
	assert_int_equal(config_role(cfg, "super")->perms, PERM_ALL);
	assert_int_equal(config_role(cfg, "writer")->perms, PERM_UPLOAD);

	assert_int_equal(cfg->uploader.workers, 8);
	assert_int_equal(cfg->uploader.multipart_threshold, 64 * 1048576);
	assert_int_equal(cfg->uploader.part_size, 16 * 1048576);
	assert_int_equal(cfg->uploader.max_backoff_s, 60);
	assert_int_equal(cfg->uploader.retention_keep_s, 30 * 86400);

	assert_string_equal(cfg->store.sse, "aws:kms");
	assert_string_equal(cfg->store.kms_key_id, "alias/sluice");
	assert_string_equal(cfg->store.storage_class, "STANDARD_IA");
	assert_string_equal(cfg->store.acl, "bucket-owner-full-control");
	assert_int_equal(cfg->store.ntags, 3);
	assert_string_equal(cfg->store.tag_keys[0], "team");
	assert_string_equal(cfg->store.tag_values[0], "payments");
	assert_string_equal(cfg->store.tag_keys[1], "cost-center");
	assert_string_equal(cfg->store.tag_values[1], "4711");
	assert_string_equal(cfg->store.tag_values[2], "");
	assert_string_equal(cfg->store.object_lock_mode, "COMPLIANCE");
	assert_int_equal(cfg->store.object_lock_days, 2555);
	snprintf(want, sizeof(want), "%s/ca.pem", tmpdir);
	assert_string_equal(cfg->store.ca_file, want);
	assert_non_null(strstr(cfg->store.pinned_pubkey, ";sha256//BBBB"));
	assert_int_equal(cfg->store.collision, COLLISION_REJECT);

	a = config_partner(cfg, "acme");
	b = config_partner(cfg, "beta");
	c = config_partner(cfg, "gamma");
	/* role pointers point into the final roles array */
	assert_ptr_equal(a->role, &cfg->roles[2]);
	assert_ptr_equal(b->role, &cfg->roles[1]);
	assert_ptr_equal(c->role, config_role(cfg, "writer"));
	assert_int_equal(a->visible_for_s, 3600);
	assert_int_equal(b->visible_for_s, 43200);	/* server.visible_for */
	assert_int_equal(a->max_sessions, 4);
	assert_int_equal(b->max_sessions, 5);	/* server.max_sessions_per_partner */

	assert_int_equal(a->completion.ntemp_patterns, 2);
	assert_string_equal(a->completion.temp_patterns[0], "*.partial");
	assert_string_equal(a->completion.temp_patterns[1], "~*");
	assert_string_equal(a->completion.marker, ".done");
	assert_string_equal(a->completion.checksum, "sha256");
	assert_string_equal(a->completion.manifest, "*.manifest");
	assert_int_equal(a->completion.manifest_timeout_s, 7200);
	assert_int_equal(a->completion.quiet_s, 30);
	assert_int_equal(a->completion.incomplete_ttl_s, 3 * 86400);
	assert_int_equal(a->completion.ship_sidecars, 1);
	assert_int_equal(b->completion.ntemp_patterns, 0);	/* [] turns it off */
	assert_int_equal(c->completion.ntemp_patterns, 3);

	assert_int_equal(a->signature.mode, SIG_ENCRYPTED);
	assert_int_equal(a->signature.nsigners, 1);	/* the same key twice */
	assert_string_equal(a->signature.signers[0], FPR);
	snprintf(want, sizeof(want), "%s/keys/acme.asc", tmpdir);
	assert_string_equal(a->signature.keyring, want);	/* relative to the config */
	assert_string_equal(b->signature.keyring, want);
	snprintf(want, sizeof(want), "%s/gw.sec", tmpdir);
	assert_string_equal(a->signature.decryption_key, want);
	assert_int_equal(a->signature.wait_s, 3600);
	assert_int_equal(a->signature.keep_plaintext, 1);
	assert_int_equal(a->duplicate_window_s, 7 * 86400);
	assert_int_equal(a->duplicate_policy, DUP_REJECT);
	assert_int_equal(b->signature.mode, SIG_DETACHED);
	assert_int_equal(b->signature.nsigners, 1);
	assert_null(b->signature.decryption_key);
	assert_int_equal(b->signature.wait_s, 600);
	assert_int_equal(b->signature.timeout_s, 120);
	assert_int_equal(b->duplicate_window_s, 86400);
	assert_int_equal(b->duplicate_policy, DUP_ACCEPT_FLAG);
	assert_int_equal(c->signature.mode, SIG_NONE);
	config_free(cfg);
}

/* Weak choices are warnings: printed with FILE:LINE, the load succeeds. */
static void
test_warnings(void **state)
{
	struct config *cfg;
	char *err, *l[16], *p, want[2048];
	int rc, n = 0;

	(void)state;
	err = load(
	    "server:\n"						/* 1 */
	    "  algorithms:\n"
	    "    kex: [curve25519-sha256, diffie-hellman-group14-sha1]\n"
	    "    ciphers: [aes256-ctr, aes128-cbc]\n"
	    "    macs: [hmac-sha2-256-etm@openssh.com, hmac-sha1]\n"	/* 5 */
	    "    host_key_algorithms: [ssh-ed25519, ssh-rsa]\n"
	    "    pubkey_algorithms: ssh-ed25519,diffie-hellman-group1-sha1\n"
	    "store:\n"
	    "  url: s3://my-bucket\n"
	    "  sse: aws:kms\n"					/* 10 */
	    "  acl: public-read\n"
	    "partners:\n  - name: acme\n    authorized_keys: [\"@KEY@\"]\n", &rc, &cfg);
	/* pubkey_algorithms: a KEX name there is an error, not a warning */
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, ":7: server.algorithms.pubkey_algorithms: "
	    "\"diffie-hellman-group1-sha1\""));
	free(err);

	err = load(
	    "server:\n"						/* 1 */
	    "  algorithms:\n"
	    "    kex: [curve25519-sha256, diffie-hellman-group14-sha1]\n"
	    "    ciphers: [aes256-ctr, aes128-cbc]\n"
	    "    macs: [hmac-sha2-256-etm@openssh.com, hmac-sha1]\n"	/* 5 */
	    "    host_key_algorithms: [ssh-ed25519, ssh-rsa]\n"
	    "    pubkey_algorithms: ssh-ed25519,ssh-rsa\n"
	    "store:\n"
	    "  url: s3://my-bucket\n"
	    "  sse: aws:kms\n"					/* 10 */
	    "  acl: public-read\n"
	    "partners:\n  - name: acme\n    authorized_keys: [\"@KEY@\"]\n", &rc, &cfg);
	if (rc != 0)
		fail_msg("warnings failed the load:\n%s", err);
	assert_non_null(cfg);
	/* weak names stay configured: the operator decides */
	assert_string_equal(cfg->server.macs,
	    "hmac-sha2-256-etm@openssh.com,hmac-sha1");
	assert_string_equal(cfg->store.acl, "public-read");
	config_free(cfg);
	for (p = strtok(err, "\n"); p != NULL && n < 16; p = strtok(NULL, "\n"))
		l[n++] = p;
	if (n != 7)
		fail_msg("want 7 warnings, got %d", n);
#define WANT(i, text) do {						\
	snprintf(want, sizeof(want), "%s:%s", cfgpath, text);		\
	if (strcmp(l[i], want) != 0)					\
		fail_msg("line %d: want\n%s\ngot\n%s", i, want, l[i]);	\
} while (0)
	WANT(0, "3: warning: server.algorithms.kex: "
	    "diffie-hellman-group14-sha1 is weak (SHA-1); remove it");
	WANT(1, "4: warning: server.algorithms.ciphers: aes128-cbc is weak "
	    "(CBC mode); remove it");
	WANT(2, "5: warning: server.algorithms.macs: hmac-sha1 is weak "
	    "(SHA-1); remove it");
	WANT(3, "6: warning: server.algorithms.host_key_algorithms: ssh-rsa "
	    "is weak (SHA-1); remove it");
	WANT(4, "7: warning: server.algorithms.pubkey_algorithms: ssh-rsa "
	    "is weak (SHA-1); remove it");
	WANT(5, "10: warning: store.sse: aws:kms without kms_key_id uses the "
	    "bucket's default KMS key (aws/s3); set kms_key_id to choose the "
	    "key");
	WANT(6, "11: warning: store.acl: public-read lets others read every "
	    "stored file; use bucket-owner-full-control or private");
	free(err);

	/* S3 options on a file:// store are ignored, with a warning */
	err = load("store:\n  url: file:///srv/o\n  storage_class: GLACIER\n"
	    "  collision: version\n" ACME, &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	n = 0;
	l[n++] = err;
	WANT(0, "3: warning: store.storage_class: ignored by a file:// store; "
	    "remove it\n");
	assert_int_equal(cfg->store.collision, COLLISION_VERSION);
	config_free(cfg);
	free(err);

	/* warnings come in line order with the errors of a failed load */
	err = load("server:\n  max_sessions: 0\n  algorithms:\n"
	    "    macs: [hmac-sha1-etm@openssh.com]\n" STORE ACME, &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_null(cfg);
	snprintf(want, sizeof(want), "%s:2: server.max_sessions: 0 is out of "
	    "range; use 1 to 100000\n%s:4: warning: server.algorithms.macs: "
	    "hmac-sha1-etm@openssh.com is weak (SHA-1); remove it\n", cfgpath,
	    cfgpath);
	assert_string_equal(err, want);
	free(err);
#undef WANT
}

/* server.max_startups as OpenSSH's MaxStartups start:rate:full. */
static void
test_max_startups(void **state)
{
	static const struct {
		const char	*v;
		int		 start, rate, full;
	} ok[] = {
		{ "10:30:100", 10, 30, 100 },
		{ "\"5:50:8\"", 5, 50, 8 },
		{ "'8:100:8'", 8, 100, 8 },
		{ "1:1:1", 1, 1, 1 },
		{ "7", 7, 100, 7 },
	};
	struct config *cfg;
	char yaml[512], *err;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(yaml, sizeof(yaml), "server:\n  max_startups: %s\n"
		    STORE ACME, ok[i].v);
		err = load(yaml, &rc, &cfg);
		if (rc != 0)
			fail_msg("max_startups: %s refused:\n%s", ok[i].v, err);
		assert_string_equal(err, "");
		assert_int_equal(cfg->server.max_startups_begin, ok[i].start);
		assert_int_equal(cfg->server.max_startups_rate, ok[i].rate);
		assert_int_equal(cfg->server.max_startups, ok[i].full);
		config_free(cfg);
		free(err);
	}
}

/*
 * One list of weak algorithms (policy/algos.c) for the loader and the
 * listener: every name either list used to call weak is weak, the defaults
 * hold none, and the loader warns exactly once per weak name.
 */
static void
test_algos(void **state)
{
	/* the union of the loader's and the listener's former lists */
	static const char *const weak[] = {
		"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1",
		"diffie-hellman-group-exchange-sha1", "aes128-cbc",
		"aes192-cbc", "aes256-cbc", "3des-cbc", "blowfish-cbc",
		"cast128-cbc", "arcfour", "arcfour128", "arcfour256", "none",
		"hmac-sha1", "hmac-sha1-etm@openssh.com", "hmac-sha1-96",
		"hmac-md5", "hmac-md5-etm@openssh.com", "hmac-md5-96", "ssh-rsa",
		"ssh-rsa-cert-v01@openssh.com", "ssh-dss",
		"ssh-dss-cert-v01@openssh.com", NULL
	};
	const char *const *known;
	char buf[1024], *tok, *save, *err, *p;
	struct config *cfg;
	size_t i, j;
	int l, rc, n, found;

	(void)state;
	for (i = 0; weak[i] != NULL; i++) {
		if (algo_weak(weak[i]) == NULL)
			fail_msg("%s is not called weak", weak[i]);
		/* and each is a name the loader knows (not "a typo") */
		for (l = found = 0; l < ALGO_NLISTS && !found; l++)
			for (known = algo_known(l); *known != NULL; known++)
				if (strcmp(*known, weak[i]) == 0)
					found = 1;
		if (!found)
			fail_msg("%s is in no list of known names", weak[i]);
	}
	for (l = 0; l < ALGO_NLISTS; l++) {
		assert_non_null(algo_key(l));
		assert_non_null(algo_what(l));
		snprintf(buf, sizeof(buf), "%s", algo_default(l));
		for (tok = strtok_r(buf, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save)) {
			if (algo_weak(tok) != NULL)
				fail_msg("default %s: %s is weak", algo_key(l),
				    tok);
			if (!algo_supported(l, tok))
				fail_msg("default %s: %s is not supported by "
				    "this libssh", algo_key(l), tok);
			for (known = algo_known(l); *known != NULL; known++)
				if (strcmp(*known, tok) == 0)
					break;
			if (*known == NULL)
				fail_msg("default %s: %s is not a known name",
				    algo_key(l), tok);
		}
	}
	for (i = 0; i < 4; i++)
		assert_null(algo_weak((const char *[]){ "aes256-ctr",
		    "hmac-sha2-256-etm@openssh.com", "rsa-sha2-512",
		    "curve25519-sha256" }[i]));
	/* Weak names this libssh supports: one warning each, with the line. */
	err = load("server:\n  algorithms:\n"
	    "    kex: [curve25519-sha256, diffie-hellman-group1-sha1, "
	    "diffie-hellman-group14-sha1]\n"
	    "    ciphers: [aes256-ctr, aes128-cbc, aes256-cbc, 3des-cbc]\n"
	    "    macs: [hmac-sha2-256, hmac-sha1, hmac-sha1-etm@openssh.com]\n"
	    "    host_key_algorithms: [ssh-ed25519, ssh-rsa]\n"
	    "    pubkey_algorithms: [ssh-ed25519, rsa-sha2-256]\n" STORE ACME,
	    &rc, &cfg);
	if (rc != 0)
		fail_msg("weak but supported names failed the load:\n%s", err);
	config_free(cfg);
	for (i = 0; weak[i] != NULL; i++) {
		for (n = 0, p = err; (p = strstr(p, weak[i])) != NULL; p++)
			if ((p == err || p[-1] == ' ') &&
			    strncmp(p + strlen(weak[i]), " is weak", 8) == 0)
				n++;
		if (strstr(err, weak[i]) != NULL && n != 1)
			fail_msg("%s: %d warnings, want 1:\n%s", weak[i], n,
			    err);
	}
	assert_int_equal(count_lines(err), 8);
	free(err);
	/* Weak names it does not support: errors that name the weakness. */
	for (j = 0; j < 3; j++) {
		static const char *const y[] = {
			"    ciphers: [arcfour]\n", "    ciphers: [cast128-cbc]\n",
			"    macs: [hmac-md5-96]\n"
		};

		snprintf(buf, sizeof(buf), "server:\n  algorithms:\n%s" STORE
		    ACME, y[j]);
		err = load(buf, &rc, &cfg);
		assert_int_equal(rc, -1);
		assert_non_null(strstr(err, ":3: server.algorithms."));
		assert_non_null(strstr(err, "is weak ("));
		assert_non_null(strstr(err, "this server does not support it"));
		free(err);
	}
}

static void
test_parse_duration(void **state)
{
	static const struct {
		const char	*s;
		int		 rc;
		int64_t		 v;
	} t[] = {
		{ "0", 0, 0 }, { "90", 0, 90 }, { "30s", 0, 30 },
		{ "10m", 0, 600 }, { "24h", 0, 86400 }, { "30d", 0, 2592000 },
		{ "007", 0, 7 }, { "0d", 0, 0 },
		{ "9223372036854775807", 0, INT64_MAX },
		{ "9223372036854775807s", 0, INT64_MAX },
		{ "9223372036854775808", -1, 0 },	/* overflow */
		{ "99999999999999999999999", -1, 0 },
		{ "153722867280912931m", -1, 0 },	/* overflow in the unit */
		{ "106751991167301d", -1, 0 },
		{ "106751991167300d", 0, 106751991167300LL * 86400 },
		{ "-1", -1, 0 }, { "-5m", -1, 0 }, { "+5", -1, 0 },
		{ "", -1, 0 }, { "s", -1, 0 }, { "m", -1, 0 },
		{ "10 m", -1, 0 }, { " 10", -1, 0 }, { "10 ", -1, 0 },
		{ "10ms", -1, 0 }, { "1h30m", -1, 0 }, { "10M", -1, 0 },
		{ "10H", -1, 0 }, { "1w", -1, 0 }, { "1Y", -1, 0 },
		{ "1y", 0, 365 * 86400 }, { "7y", 0, 7 * 365 * 86400 },
		{ "2555d", 0, 2555 * 86400 }, { "1yr", -1, 0 },
		{ "1.5h", -1, 0 }, { "0x10", -1, 0 }, { "10sec", -1, 0 },
		{ "abc", -1, 0 },
	};
	int64_t v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		v = -42;
		if (parse_duration(t[i].s, &v) != t[i].rc)
			fail_msg("parse_duration(\"%s\"): want rc %d", t[i].s,
			    t[i].rc);
		if (t[i].rc == 0 && v != t[i].v)
			fail_msg("parse_duration(\"%s\") = %lld", t[i].s,
			    (long long)v);
		if (t[i].rc != 0 && v != -42)
			fail_msg("parse_duration(\"%s\") wrote on failure",
			    t[i].s);
	}
	assert_int_equal(parse_duration(NULL, &v), -1);
	assert_int_equal(parse_duration("1", NULL), -1);
}

static void
test_parse_size(void **state)
{
	static const struct {
		const char	*s;
		int		 rc;
		int64_t		 v;
	} t[] = {
		{ "0", 0, 0 }, { "1048576", 0, 1048576 }, { "512KiB", 0, 524288 },
		{ "16MiB", 0, 16777216 }, { "1GiB", 0, 1073741824 },
		{ "2TiB", 0, 2199023255552LL }, { "10GB", 0, 10000000000LL },
		{ "5MB", 0, 5000000 }, { "1KB", 0, 1000 }, { "1kB", 0, 1000 },
		{ "3TB", 0, 3000000000000LL }, { "7B", 0, 7 },
		{ "9223372036854775807", 0, INT64_MAX },
		{ "9223372036854775808", -1, 0 },	/* overflow */
		{ "8388608TiB", -1, 0 },		/* overflow in the unit */
		{ "8388607TiB", 0, 8388607LL * 1099511627776LL },
		{ "-1", -1, 0 }, { "-1MiB", -1, 0 }, { "+1", -1, 0 },
		{ "", -1, 0 }, { "MiB", -1, 0 }, { "16 MiB", -1, 0 },
		{ "16M", -1, 0 }, { "16m", -1, 0 }, { "16mib", -1, 0 },
		{ "16Mb", -1, 0 }, { "1.5GiB", -1, 0 }, { "1GiBs", -1, 0 },
		{ "0x100", -1, 0 }, { "lots", -1, 0 },
	};
	int64_t v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		v = -42;
		if (parse_size(t[i].s, &v) != t[i].rc)
			fail_msg("parse_size(\"%s\"): want rc %d", t[i].s,
			    t[i].rc);
		if (t[i].rc == 0 && v != t[i].v)
			fail_msg("parse_size(\"%s\") = %lld", t[i].s,
			    (long long)v);
		if (t[i].rc != 0 && v != -42)
			fail_msg("parse_size(\"%s\") wrote on failure", t[i].s);
	}
	assert_int_equal(parse_size(NULL, &v), -1);
	assert_int_equal(parse_size("1", NULL), -1);
}

/* Key files: trust anchors must not be writable by others, the gateway's
 * secret key not even readable by them. */
static void
test_signature_files(void **state)
{
	struct config *cfg;
	char *err, want[2048];
	int rc;

	(void)state;
	write_file("open.asc", "public keys\n", 0664);
	err = load(STORE ACME "    signature:\n      mode: detached\n"
	    "      signers: [\"" FPR "\"]\n      keyring: open.asc\n",
	    &rc, &cfg);
	assert_int_equal(rc, -1);
	snprintf(want, sizeof(want), "%s:9: partners[0].signature.keyring: "
	    "\"%s/open.asc\" is writable by group or others, so anyone could "
	    "replace it; run chmod go-w %s/open.asc\n", cfgpath, tmpdir,
	    tmpdir);
	assert_string_equal(err, want);
	free(err);

	write_file("acme.asc", "public keys\n", 0644);
	write_file("gw-open.sec", "secret\n", 0640);
	err = load(STORE ACME "    signature:\n      mode: encrypted\n"
	    "      signers: [\"" FPR "\"]\n      keyring: acme.asc\n"
	    "      decryption_key: gw-open.sec\n", &rc, &cfg);
	assert_int_equal(rc, -1);
	snprintf(want, sizeof(want), "%s:10: partners[0].signature."
	    "decryption_key: \"%s/gw-open.sec\" is a secret key readable by "
	    "group or others; run chmod 600 %s/gw-open.sec\n", cfgpath, tmpdir,
	    tmpdir);
	assert_string_equal(err, want);
	free(err);

	/* the same file, fixed as the message says */
	snprintf(want, sizeof(want), "%s/gw-open.sec", tmpdir);
	assert_int_equal(chmod(want, 0600), 0);
	err = load(STORE ACME "    signature:\n      mode: encrypted\n"
	    "      signers: [\"" FPR "\"]\n      keyring: acme.asc\n"
	    "      decryption_key: gw-open.sec\n", &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	assert_string_equal(cfg->partners[0].signature.decryption_key, want);
	config_free(cfg);
	free(err);

	/* a directory is not a key file */
	err = load(STORE ACME "    signature:\n      mode: detached\n"
	    "      signers: [\"" FPR "\"]\n      keyring: @DIR@\n",
	    &rc, &cfg);
	assert_int_equal(rc, -1);
	snprintf(want, sizeof(want), "%s:9: partners[0].signature.keyring: ",
	    cfgpath);
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "is not a regular file"));
	free(err);
}

/* store.quarantine_prefix: off by default, '/' appended. */
/* Issue 12: store.legal_hold; a partner's storage_class and tags. */
static void
test_partner_s3_overrides(void **state)
{
	const struct partner *p;
	struct config *cfg;
	char *err;
	int rc;

	(void)state;
	err = load(S3 "  legal_hold: true\n  tags: {team: ops}\n" ACME
	    "    storage_class: GLACIER_IR\n"
	    "    tags: {partner: acme, \"cost center\": \"4711\"}\n", &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	assert_int_equal(cfg->store.legal_hold, 1);
	assert_int_equal(cfg->store.ntags, 1);
	p = config_partner(cfg, "acme");
	assert_string_equal(p->storage_class, "GLACIER_IR");
	assert_int_equal(p->ntags, 2);
	assert_string_equal(p->tag_keys[1], "cost center");
	assert_string_equal(p->tag_values[1], "4711");
	config_free(cfg);
	free(err);

	err = load(S3 ACME, &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	assert_int_equal(cfg->store.legal_hold, 0);
	p = config_partner(cfg, "acme");
	assert_null(p->storage_class);
	assert_null(p->tag_keys);
	config_free(cfg);
	free(err);
}

static void
test_quarantine_prefix(void **state)
{
	struct config *cfg;
	char *err;
	int rc;

	(void)state;
	err = load(S3 ACME, &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	assert_null(cfg->store.quarantine_prefix);
	config_free(cfg);
	free(err);

	err = load("store:\n  url: s3://my-bucket/in\n"
	    "  quarantine_prefix: rejected/files\n" ACME, &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	assert_string_equal(cfg->store.prefix, "in/");
	assert_string_equal(cfg->store.quarantine_prefix, "rejected/files/");
	config_free(cfg);
	free(err);

	err = load(STORE "  quarantine_prefix: quarantine/\n" ACME, &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	assert_string_equal(cfg->store.quarantine_prefix, "quarantine/");
	config_free(cfg);
	free(err);
}

/* receipts: (issue 11): defaults, a full block, per-partner off, errors. */
static void
test_receipts(void **state)
{
	struct config *cfg;
	char *err, want[2048];
	int rc;

	(void)state;
	err = load(STORE ACME, &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	assert_int_equal(cfg->receipts.enabled, 1);
	assert_string_equal(cfg->receipts.dir, "receipts");
	assert_int_equal(cfg->receipts.keep_s, 30 * 86400);
	assert_null(cfg->receipts.sign_with);
	assert_int_equal(cfg->partners[0].receipts, 1);	/* on by default */
	config_free(cfg);
	free(err);

	write_file("rcpt.sec", "secret\n", 0600);
	err = load(STORE "receipts:\n  sign_with: \"0123 4567 89ab cdef 0123  "
	    "4567 89AB CDEF 0123 4567\"\n  keyring: rcpt.sec\n  keep: 7d\n"
	    "  dir: proof\n" ACME "  - name: quiet\n    authorized_keys: "
	    "[\"@KEY@\"]\n    receipts: false\n", &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	assert_string_equal(cfg->receipts.sign_with, FPR);
	snprintf(want, sizeof(want), "%s/rcpt.sec", tmpdir);
	assert_string_equal(cfg->receipts.keyring, want);
	assert_int_equal(cfg->receipts.keep_s, 7 * 86400);
	assert_string_equal(cfg->receipts.dir, "proof");
	assert_int_equal(cfg->partners[0].receipts, 1);
	assert_int_equal(cfg->partners[1].receipts, 0);
	config_free(cfg);
	free(err);

	/* off for everyone */
	err = load(STORE "receipts: false\n" ACME, &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	assert_int_equal(cfg->partners[0].receipts, 0);
	config_free(cfg);
	free(err);

	/* sign_with without its key; a key id; a path as dir; a readable key */
	err = load(STORE "receipts:\n  sign_with: \"" FPR "\"\n" ACME, &rc,
	    &cfg);
	assert_int_equal(rc, -1);
	snprintf(want, sizeof(want), "%s:4: receipts.sign_with: needs "
	    "receipts.keyring: ", cfgpath);
	assert_non_null(strstr(err, want));
	free(err);
	err = load(STORE "receipts:\n  sign_with: \"89ABCDEF01234567\"\n"
	    "  keyring: rcpt.sec\n" ACME, &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, ":4: receipts.sign_with: "));
	assert_non_null(strstr(err, "is a key ID, not a fingerprint"));
	free(err);
	err = load(STORE "receipts:\n  dir: ../up\n" ACME, &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, ":4: receipts.dir: \"../up\" may hold only"));
	free(err);
	write_file("rcpt-open.sec", "secret\n", 0644);
	err = load(STORE "receipts:\n  sign_with: \"" FPR "\"\n"
	    "  keyring: rcpt-open.sec\n" ACME, &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, ":5: receipts.keyring: "));
	assert_non_null(strstr(err, "run chmod 600"));
	free(err);
	err = load(STORE "receipts:\n  kep: 3d\n" ACME, &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, ":4: receipts.kep: unknown key; did you "
	    "mean \"keep\"?"));
	free(err);
	err = load(STORE ACME "    receipts: maybe\n", &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, ":6: partners[0].receipts: "));
	free(err);
}

/* audit.sign_with / audit.keyring: the seals' OpenPGP key, as receipts'. */
static void
test_audit_signing(void **state)
{
	struct config *cfg;
	char *err, want[2048];
	int rc;

	(void)state;
	err = load(STORE ACME, &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	assert_null(cfg->audit_sign_with);
	assert_null(cfg->audit_keyring);
	config_free(cfg);
	free(err);

	write_file("asig.sec", "secret\n", 0600);
	err = load("audit:\n  sign_with: \"0123 4567 89ab cdef 0123  4567 89AB "
	    "CDEF 0123 4567\"\n  keyring: asig.sec\n" STORE ACME, &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	assert_string_equal(cfg->audit_sign_with, FPR);
	snprintf(want, sizeof(want), "%s/asig.sec", tmpdir);
	assert_string_equal(cfg->audit_keyring, want);
	assert_null(cfg->receipts.sign_with);
	config_free(cfg);
	free(err);

	/* one without the other; a key id; a readable secret key */
	err = load("audit:\n  sign_with: \"" FPR "\"\n" STORE ACME, &rc, &cfg);
	assert_int_equal(rc, -1);
	snprintf(want, sizeof(want), "%s:2: audit.sign_with: needs "
	    "audit.keyring: ", cfgpath);
	assert_non_null(strstr(err, want));
	free(err);
	err = load("audit:\n  keyring: asig.sec\n" STORE ACME, &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, ":2: audit.keyring: add audit.sign_with"));
	free(err);
	err = load("audit:\n  sign_with: \"89ABCDEF01234567\"\n"
	    "  keyring: asig.sec\n" STORE ACME, &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, ":2: audit.sign_with: "));
	assert_non_null(strstr(err, "is a key ID, not a fingerprint"));
	free(err);
	write_file("asig-open.sec", "secret\n", 0644);
	err = load("audit:\n  sign_with: \"" FPR "\"\n"
	    "  keyring: asig-open.sec\n" STORE ACME, &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, ":3: audit.keyring: "));
	assert_non_null(strstr(err, "run chmod 600"));
	free(err);
}

/* receipts.store: off by default, on at the top, per partner either way. */
static void
test_receipts_store(void **state)
{
	struct config *cfg;
	char *err;
	int rc;

	(void)state;
	err = load(STORE ACME, &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	assert_int_equal(cfg->receipts.store, 0);
	assert_int_equal(cfg->partners[0].receipts_store, 0);
	config_free(cfg);
	free(err);
	err = load(STORE "receipts:\n  store: true\n" ACME "  - name: b\n"
	    "    authorized_keys: [\"@KEY@\"]\n    receipts:\n"
	    "      store: false\n", &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	assert_int_equal(cfg->receipts.store, 1);
	assert_int_equal(cfg->partners[0].receipts_store, 1);
	assert_int_equal(cfg->partners[1].receipts, 1);
	assert_int_equal(cfg->partners[1].receipts_store, 0);
	config_free(cfg);
	free(err);
	err = load(STORE ACME "    receipts:\n      store: true\n", &rc, &cfg);
	if (rc != 0)
		fail_msg("rejected:\n%s", err);
	assert_int_equal(cfg->partners[0].receipts, 1);
	assert_int_equal(cfg->partners[0].receipts_store, 1);
	config_free(cfg);
	free(err);
	err = load(STORE "receipts:\n  store: sometimes\n" ACME, &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, ":4: receipts.store: "));
	free(err);
	err = load(STORE ACME "    receipts:\n      stor: true\n", &rc, &cfg);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, ":7: partners[0].receipts.stor: unknown "
	    "key"));
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_alternatives),
		cmocka_unit_test(test_audit_segments),
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_bad_table),
		cmocka_unit_test(test_no_secrets),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_rsa),
		cmocka_unit_test(test_hash_schemes),
		cmocka_unit_test(test_unreadable),
		cmocka_unit_test(test_new_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_warnings),
		cmocka_unit_test(test_max_startups),
		cmocka_unit_test(test_algos),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_signature_files),
		cmocka_unit_test(test_quarantine_prefix),
		cmocka_unit_test(test_receipts),
		cmocka_unit_test(test_audit_signing),
		cmocka_unit_test(test_receipts_store),
		cmocka_unit_test(test_partner_s3_overrides),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
