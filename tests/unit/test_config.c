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
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh/libssh.h>

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
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
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
	{ "relative audit path", "audit:\n  path: audit.jsonl\n" STORE ACME,
	    2, "audit.path: ", "\"audit.jsonl\" must be an absolute path" },
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
};

static void
test_bad_table(void **state)
{
	struct config *cfg;
	char *err, prefix[700];
	size_t i;
	int rc;

	(void)state;
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_alternatives),
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_bad_table),
		cmocka_unit_test(test_no_secrets),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_rsa),
		cmocka_unit_test(test_hash_schemes),
		cmocka_unit_test(test_unreadable),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
