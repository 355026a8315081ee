/*
 * config.c - loading and validating sluice.yaml (see config.h).
 *
 * The file is read with libyaml's document API and the node tree is walked
 * by hand, so every problem can be reported as FILE:LINE with the key path
 * ("partners[1].allow_from[0]"), the offending value and the fix. The loader
 * keeps going after an error and reports every problem it finds; messages are
 * collected and printed in line order at the end. Secrets (password hashes,
 * anything under an unknown key) are never echoed.
 */
#include "policy/config.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh/libssh.h>
#include <yaml.h>

#include "common/util.h"
#include "policy/policy.h"

#define CONFIG_MAX_BYTES	(1024 * 1024)
#define KEYFILE_MAX_BYTES	(1024 * 1024)
#define KEYS_MAX		10000	/* per partner */
#define SHOW_MAX		80	/* bytes of a value quoted in a message */
#define KP_MAX			160	/* a key path such as partners[12].allow_from[3] */
#define RSA_MIN_BITS		2048

#define DEFAULT_LISTEN_HOST	"127.0.0.1"
#define DEFAULT_LISTEN_PORT	2222
#define DEFAULT_STATE_DIR	"/var/lib/sluice"
#define DEFAULT_AUDIT_PATH	"/var/log/sluice/audit.jsonl"
#define DEFAULT_REGION		"us-east-1"
#define DEFAULT_OBJECT_KEY	"{partner}/{path}"

struct msg {
	int		 sort;		/* line in the config file it belongs to */
	size_t		 seq;
	char		*text;
};

struct loader {
	const char	*file;		/* as given to config_load */
	char		*dir;		/* its directory, for relative key files */
	FILE		*err;
	int		 nerr;
	yaml_document_t	*doc;
	struct msg	*msgs;
	size_t		 nmsgs, capmsgs;
};

/* ---- reporting ----------------------------------------------------------- */

static void report_at(struct loader *, int, const char *, int, const char *, ...)
    __attribute__((format(printf, 5, 6)));
static void report(struct loader *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
vreport_at(struct loader *ld, int sort, const char *file, int line,
    const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void
vreport_at(struct loader *ld, int sort, const char *file, int line,
    const char *fmt, va_list ap)
{
	char body[1024], text[1200];
	struct msg *m;

	ld->nerr++;
	if (ld->err == NULL)
		return;
	(void)vsnprintf(body, sizeof(body), fmt, ap);
	if (line > 0)
		(void)xsnprintf(text, sizeof(text), "%s:%d: %s", file, line,
		    body);
	else
		(void)xsnprintf(text, sizeof(text), "%s: %s", file, body);
	if (ld->nmsgs == ld->capmsgs) {
		size_t ncap = ld->capmsgs ? ld->capmsgs * 2 : 16;

		if ((m = reallocarray(ld->msgs, ncap, sizeof(*m))) == NULL)
			goto direct;
		ld->msgs = m;
		ld->capmsgs = ncap;
	}
	m = &ld->msgs[ld->nmsgs];
	if ((m->text = strdup(text)) == NULL)
		goto direct;
	m->sort = sort;
	m->seq = ld->nmsgs++;
	return;
direct:
	fprintf(ld->err, "%s\n", text);
}

static void
report_at(struct loader *ld, int sort, const char *file, int line,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport_at(ld, sort, file, line, fmt, ap);
	va_end(ap);
}

/* A problem in the config file itself, at line. */
static void
report(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport_at(ld, line, ld->file, line, fmt, ap);
	va_end(ap);
}

static int
msg_cmp(const void *a, const void *b)
{
	const struct msg *x = a, *y = b;

	if (x->sort != y->sort)
		return x->sort < y->sort ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void
flush_messages(struct loader *ld)
{
	size_t i;

	if (ld->nmsgs > 0)
		qsort(ld->msgs, ld->nmsgs, sizeof(*ld->msgs), msg_cmp);
	for (i = 0; i < ld->nmsgs; i++) {
		if (ld->err != NULL)
			fprintf(ld->err, "%s\n", ld->msgs[i].text);
		free(ld->msgs[i].text);
	}
	if (ld->err != NULL)
		fflush(ld->err);
	free(ld->msgs);
	ld->msgs = NULL;
	ld->nmsgs = ld->capmsgs = 0;
}

/*
 * s as a double-quoted, single-line, bounded string for a message: quotes,
 * backslashes and control characters escaped, long values cut with "...".
 */
struct qbuf {
	char	s[SHOW_MAX * 4 + 8];
};

static const char *
q(struct qbuf *b, const char *s)
{
	static const char hx[] = "0123456789abcdef";
	size_t o = 0, i;
	unsigned char c;

	b->s[o++] = '"';
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= SHOW_MAX) {
			memcpy(b->s + o, "...", 3);
			o += 3;
			break;
		}
		c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			b->s[o++] = '\\';
			b->s[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			b->s[o++] = '\\';
			b->s[o++] = 'x';
			b->s[o++] = hx[c >> 4];
			b->s[o++] = hx[c & 0xf];
		} else
			b->s[o++] = (char)c;
	}
	b->s[o++] = '"';
	b->s[o] = '\0';
	return b->s;
}

/* ---- YAML nodes ---------------------------------------------------------- */

static yaml_node_t *
node(struct loader *ld, int idx)
{
	return yaml_document_get_node(ld->doc, idx);
}

static int
line_of(const yaml_node_t *n)
{
	return (int)n->start_mark.line + 1;
}

static const char *
scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static int
is_null(const yaml_node_t *n)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	s = scalar(n);
	return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static const char *
kind_of(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SCALAR_NODE:
		return is_null(n) ? "no value" : "a string";
	default:
		return "nothing";
	}
}

/*
 * The string value of n, or NULL after reporting why it is not one. `what`
 * names what was expected ("a path", "host:port"). Control characters other
 * than tab are never valid in sluice's config.
 */
static const char *
get_string(struct loader *ld, const yaml_node_t *n, const char *kp,
    const char *what)
{
	const char *s;
	size_t i;

	if (n->type != YAML_SCALAR_NODE || is_null(n)) {
		report(ld, line_of(n), "%s: expected %s, got %s", kp, what,
		    kind_of(n));
		return NULL;
	}
	s = scalar(n);
	if (strlen(s) != n->data.scalar.length) {
		report(ld, line_of(n), "%s: contains a NUL character; "
		    "expected %s", kp, what);
		return NULL;
	}
	for (i = 0; s[i] != '\0'; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') ||
		    s[i] == 0x7f) {
			report(ld, line_of(n), "%s: contains a control "
			    "character; expected %s", kp, what);
			return NULL;
		}
	return s;
}

/* YAML true/false/yes/no (any case); 0 or 1, or -1 after reporting. */
static int
get_bool(struct loader *ld, const yaml_node_t *n, const char *kp)
{
	struct qbuf qb;
	const char *s;

	if ((s = get_string(ld, n, kp, "true or false")) == NULL)
		return -1;
	if (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0)
		return 1;
	if (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0)
		return 0;
	report(ld, line_of(n), "%s: %s is not a boolean; use true or false",
	    kp, q(&qb, s));
	return -1;
}

static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, prev, cur, tmp;
	size_t row[65];

	if (la > 64 || lb > 64)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			cur = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < cur)
				cur = row[j] + 1;
			if (row[j - 1] + 1 < cur)
				cur = row[j - 1] + 1;
			tmp = row[j];
			row[j] = cur;
			prev = tmp;
		}
	}
	return row[lb];
}

static void
join_kp(char *out, size_t outlen, const char *kp, const char *key)
{
	(void)xsnprintf(out, outlen, "%s%s%s", kp, kp[0] ? "." : "", key);
}

/*
 * Checks that n is a mapping whose keys are all in keys[] and appear once;
 * vals[i] receives the value node of keys[i] (or NULL). Reports unknown keys
 * (with the nearest known one), duplicate keys and non-string keys, and
 * returns -1 only if n is not a mapping at all. klines (optional) receives
 * the line of each key found.
 */
static int
walk_map(struct loader *ld, const yaml_node_t *n, const char *kp,
    const char *const *keys, size_t nkeys, yaml_node_t **vals, int *klines)
{
	yaml_node_pair_t *pair;
	yaml_node_t *k, *v;
	char kpk[KP_MAX], known[256];
	struct qbuf qb;
	const char *name, *best, *shown;
	size_t i, d, bestd;
	int keyline[16];

	if (nkeys > 16)
		return -1;
	for (i = 0; i < nkeys; i++) {
		vals[i] = NULL;
		keyline[i] = 0;
	}
	if (n->type != YAML_MAPPING_NODE) {
		report(ld, line_of(n), "%s: expected a mapping (key: value "
		    "lines), got %s", kp[0] ? kp : "the top level", kind_of(n));
		return -1;
	}
	for (pair = n->data.mapping.pairs.start;
	    pair < n->data.mapping.pairs.top; pair++) {
		k = node(ld, pair->key);
		v = node(ld, pair->value);
		if (k == NULL || v == NULL)
			continue;
		if (k->type != YAML_SCALAR_NODE) {
			report(ld, line_of(k), "%s: a key must be a plain "
			    "name, got %s", kp[0] ? kp : "top level",
			    kind_of(k));
			continue;
		}
		name = scalar(k);
		for (i = 0; i < nkeys; i++)
			if (strcmp(name, keys[i]) == 0)
				break;
		if (i < nkeys) {
			if (vals[i] != NULL) {
				join_kp(kpk, sizeof(kpk), kp, keys[i]);
				report(ld, line_of(k), "%s: duplicate key "
				    "(first on line %d); remove one", kpk,
				    keyline[i]);
				continue;
			}
			vals[i] = v;
			keyline[i] = line_of(k);
			continue;
		}
		/* Unknown: suggest the nearest known key, never echo its value. */
		best = NULL;
		bestd = 3;
		known[0] = '\0';
		for (i = 0; i < nkeys; i++) {
			d = edit_distance(name, keys[i]);
			if (d < bestd) {
				bestd = d;
				best = keys[i];
			}
			if (i > 0)
				(void)xstrlcat(known, ", ", sizeof(known));
			(void)xstrlcat(known, keys[i], sizeof(known));
		}
		shown = name;
		for (d = 0; name[d] != '\0'; d++)
			if ((unsigned char)name[d] <= ' ' || name[d] == '"' ||
			    name[d] == 0x7f || d >= 64)
				break;
		if (name[0] == '\0' || name[d] != '\0')
			shown = q(&qb, name);
		join_kp(kpk, sizeof(kpk), kp, shown);
		if (best != NULL)
			report(ld, line_of(k), "%s: unknown key; did you mean "
			    "\"%s\"?", kpk, best);
		else
			report(ld, line_of(k), "%s: unknown key; expected one "
			    "of: %s", kpk, known);
	}
	if (klines != NULL)
		for (i = 0; i < nkeys; i++)
			klines[i] = keyline[i];
	return 0;
}

/* ---- small validators ---------------------------------------------------- */

static char *
dup_or_report(struct loader *ld, int line, const char *s)
{
	char *d;

	if ((d = strdup(s)) == NULL)
		report(ld, line, "out of memory");
	return d;
}

/* A copy of an absolute path without trailing slashes, or NULL. */
static char *
get_abspath(struct loader *ld, const yaml_node_t *n, const char *kp,
    const char *example)
{
	struct qbuf qb;
	const char *s;
	char *d;
	size_t len;

	if ((s = get_string(ld, n, kp, "an absolute path")) == NULL)
		return NULL;
	if (s[0] != '/') {
		report(ld, line_of(n), "%s: %s must be an absolute path "
		    "(e.g. %s)", kp, q(&qb, s), example);
		return NULL;
	}
	if ((d = dup_or_report(ld, line_of(n), s)) == NULL)
		return NULL;
	len = strlen(d);
	while (len > 1 && d[len - 1] == '/')
		d[--len] = '\0';
	return d;
}

static int
is_hostname(const char *s)
{
	size_t i, n = strlen(s), lab = 0;

	if (n == 0 || n > 253 || s[0] == '-' || s[0] == '.' ||
	    s[n - 1] == '-' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (lab == 0)
				return 0;
			lab = 0;
			continue;
		}
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
		if (++lab > 63)
			return 0;
	}
	return 1;
}

/* A decimal port 1..65535 (no sign, no blanks), or -1. */
static int
parse_port(const char *s)
{
	int64_t v;
	size_t i;

	if (s[0] == '\0' || strlen(s) > 5)
		return -1;
	for (i = 0; s[i] != '\0'; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	if (parse_int64(s, 1, 65535, &v) != 0)
		return -1;
	return (int)v;
}

/* ---- listen, paths, audit ------------------------------------------------ */

static void
load_listen(struct loader *ld, const yaml_node_t *n, struct config *cfg)
{
	const char *kp = "listen", *s, *hs, *colon, *ps;
	char host[256];
	struct qbuf qb;
	unsigned char a[16];
	size_t hl;
	int port, v6 = 0;

	if ((s = get_string(ld, n, kp, "host:port (e.g. 127.0.0.1:2222 "
	    "or [::]:22)")) == NULL)
		return;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':') {
			report(ld, line_of(n), "%s: %s is not [IPv6]:port "
			    "(e.g. [::]:22 or [2001:db8::1]:2222)", kp,
			    q(&qb, s));
			return;
		}
		hs = s + 1;
		hl = (size_t)(close - hs);
		ps = close + 2;
		v6 = 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			report(ld, line_of(n), "%s: %s has no port; expected "
			    "host:port (e.g. 127.0.0.1:2222 or [::]:22)", kp,
			    q(&qb, s));
			return;
		}
		if (strchr(s, ':') != colon) {
			report(ld, line_of(n), "%s: %s: put an IPv6 address in "
			    "brackets (e.g. [::1]:2222)", kp, q(&qb, s));
			return;
		}
		hs = s;
		hl = (size_t)(colon - s);
		ps = colon + 1;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		report(ld, line_of(n), "%s: %s has no host; use 0.0.0.0:PORT "
		    "for all IPv4 addresses or [::]:PORT for all addresses",
		    kp, q(&qb, s));
		return;
	}
	memcpy(host, hs, hl);
	host[hl] = '\0';
	if (v6 ? inet_pton(AF_INET6, host, a) != 1 :
	    (inet_pton(AF_INET, host, a) != 1 && !is_hostname(host))) {
		report(ld, line_of(n), "%s: %s: \"%s\" is not an %s", kp,
		    q(&qb, s), host, v6 ? "IPv6 address" :
		    "IPv4 address or host name");
		return;
	}
	if ((port = parse_port(ps)) < 0) {
		report(ld, line_of(n), "%s: %s has a bad port; use a number "
		    "from 1 to 65535 (e.g. 127.0.0.1:2222)", kp, q(&qb, s));
		return;
	}
	free(cfg->listen_host);
	cfg->listen_host = dup_or_report(ld, line_of(n), host);
	cfg->listen_port = port;
}

static void
load_host_keys(struct loader *ld, const yaml_node_t *n, struct config *cfg)
{
	yaml_node_item_t *it;
	yaml_node_t *item;
	char kp[KP_MAX];
	size_t cnt, i;
	char *p;

	if (n->type != YAML_SEQUENCE_NODE) {
		report(ld, line_of(n), "host_keys: expected a list of paths "
		    "(e.g. - /var/lib/sluice/ssh_host_ed25519_key), got %s",
		    kind_of(n));
		return;
	}
	cnt = (size_t)(n->data.sequence.items.top -
	    n->data.sequence.items.start);
	if (cnt == 0) {
		report(ld, line_of(n), "host_keys: the list is empty; give at "
		    "least one path, or remove host_keys for the default");
		return;
	}
	if ((cfg->host_keys = calloc(cnt, sizeof(char *))) == NULL) {
		report(ld, line_of(n), "out of memory");
		return;
	}
	for (i = 0, it = n->data.sequence.items.start;
	    it < n->data.sequence.items.top; it++, i++) {
		if ((item = node(ld, *it)) == NULL)
			continue;
		(void)xsnprintf(kp, sizeof(kp), "host_keys[%zu]", i);
		p = get_abspath(ld, item, kp,
		    "/var/lib/sluice/ssh_host_ed25519_key");
		if (p != NULL)
			cfg->host_keys[cfg->nhost_keys++] = p;
	}
}

static void
load_audit(struct loader *ld, const yaml_node_t *n, struct config *cfg)
{
	static const char *const keys[] = { "path" };
	yaml_node_t *v[1];
	char *p;

	if (walk_map(ld, n, "audit", keys, 1, v, NULL) != 0 || v[0] == NULL)
		return;
	if ((p = get_abspath(ld, v[0], "audit.path",
	    DEFAULT_AUDIT_PATH)) != NULL) {
		free(cfg->audit_path);
		cfg->audit_path = p;
	}
}

/* ---- store --------------------------------------------------------------- */

/* NULL if name is a valid S3 bucket name, else why not. */
static const char *
bucket_problem(const char *b, size_t n)
{
	size_t i;
	struct in_addr a;
	char tmp[64];

	if (n < 3 || n > 63)
		return "must be 3 to 63 characters long";
	for (i = 0; i < n; i++)
		if (!((b[i] >= 'a' && b[i] <= 'z') ||
		    (b[i] >= '0' && b[i] <= '9') || b[i] == '.' || b[i] == '-'))
			return "may only contain lower-case letters, digits, "
			    "dots and hyphens";
	if (!((b[0] >= 'a' && b[0] <= 'z') || (b[0] >= '0' && b[0] <= '9')) ||
	    !((b[n - 1] >= 'a' && b[n - 1] <= 'z') ||
	    (b[n - 1] >= '0' && b[n - 1] <= '9')))
		return "must begin and end with a letter or digit";
	for (i = 0; i + 1 < n; i++)
		if (b[i] == '.' && (b[i + 1] == '.' || b[i + 1] == '-' ||
		    (i > 0 && b[i - 1] == '-')))
			return "must not contain \"..\", \".-\" or \"-.\"";
	memcpy(tmp, b, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET, tmp, &a) == 1)
		return "must not be formatted as an IP address";
	if (strncmp(tmp, "xn--", 4) == 0 || strncmp(tmp, "sthree-", 7) == 0 ||
	    (n > 8 && strcmp(tmp + n - 8, "-s3alias") == 0) ||
	    (n > 7 && strcmp(tmp + n - 7, "--ol-s3") == 0))
		return "uses a prefix or suffix S3 reserves";
	return NULL;
}

/* NULL if p (the part after "bucket/") is a clean key prefix, else why. */
static const char *
prefix_problem(const char *p)
{
	const char *seg = p, *c;
	size_t sl;

	if (p[0] == '/')
		return "the prefix must not start with '/'";
	if (strlen(p) > 512)
		return "the prefix is longer than 512 bytes";
	for (c = p;; c++) {
		if (*c == '\\')
			return "the prefix must not contain backslashes";
		if (*c == '/' || *c == '\0') {
			sl = (size_t)(c - seg);
			if (sl == 0 && *c == '/')
				return "the prefix must not contain \"//\"";
			if ((sl == 1 && seg[0] == '.') ||
			    (sl == 2 && seg[0] == '.' && seg[1] == '.'))
				return "the prefix must not contain \".\" or "
				    "\"..\" segments";
			if (*c == '\0')
				break;
			seg = c + 1;
		}
	}
	return NULL;
}

static int
parse_store_url(struct loader *ld, const yaml_node_t *n, const char *u,
    struct store_config *st)
{
	const char *kp = "store.url", *rest, *slash, *why;
	struct qbuf qb;
	size_t blen, plen;

	if (strncmp(u, "s3://", 5) == 0) {
		rest = u + 5;
		slash = strchr(rest, '/');
		blen = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
		if ((why = bucket_problem(rest, blen)) != NULL) {
			report(ld, line_of(n), "%s: %s: the bucket name %s "
			    "(e.g. s3://my-bucket/optional/prefix)", kp,
			    q(&qb, u), why);
			return -1;
		}
		rest = slash != NULL ? slash + 1 : "";
		if ((why = prefix_problem(rest)) != NULL) {
			report(ld, line_of(n), "%s: %s: %s (e.g. "
			    "s3://my-bucket/optional/prefix)", kp, q(&qb, u),
			    why);
			return -1;
		}
		st->kind = STORE_S3;
		if ((st->bucket = strndup(u + 5, blen)) == NULL)
			goto oom;
		plen = strlen(rest);
		if ((st->prefix = malloc(plen + 2)) == NULL)
			goto oom;
		memcpy(st->prefix, rest, plen + 1);
		if (plen > 0 && rest[plen - 1] != '/') {
			st->prefix[plen] = '/';
			st->prefix[plen + 1] = '\0';
		}
		return 0;
	}
	if (strncmp(u, "file://", 7) == 0) {
		rest = u + 7;
		if (rest[0] != '/') {
			report(ld, line_of(n), "%s: %s: a file URL needs an "
			    "absolute directory and three slashes (e.g. "
			    "file:///srv/sluice/objects)", kp, q(&qb, u));
			return -1;
		}
		st->kind = STORE_FILE;
		if ((st->dir = strdup(rest)) == NULL)
			goto oom;
		plen = strlen(st->dir);
		while (plen > 1 && st->dir[plen - 1] == '/')
			st->dir[--plen] = '\0';
		return 0;
	}
	report(ld, line_of(n), "%s: %s must be s3://bucket[/prefix] or "
	    "file:///absolute/dir", kp, q(&qb, u));
	return -1;
oom:
	report(ld, line_of(n), "out of memory");
	return -1;
}

static int
region_ok(const char *r)
{
	size_t i, n = strlen(r);

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') ||
		    (r[i] >= 'A' && r[i] <= 'Z') ||
		    (r[i] >= '0' && r[i] <= '9') || r[i] == '-' ||
		    r[i] == '_' || r[i] == '.'))
			return 0;
	return 1;
}

/* A copy of endpoint without a trailing '/', or NULL after reporting. */
static char *
parse_endpoint(struct loader *ld, const yaml_node_t *n, const char *e)
{
	const char *kp = "store.endpoint", *hp, *end, *portp = NULL;
	struct qbuf qb;
	char host[256];
	unsigned char a[16];
	size_t hl, len;
	char *d;

	if (strncmp(e, "https://", 8) == 0)
		hp = e + 8;
	else if (strncmp(e, "http://", 7) == 0)
		hp = e + 7;
	else {
		report(ld, line_of(n), "%s: %s must start with http:// or "
		    "https:// (e.g. http://127.0.0.1:9000)", kp, q(&qb, e));
		return NULL;
	}
	if (strchr(hp, '@') != NULL) {
		/* Might hold a secret: do not echo it. */
		report(ld, line_of(n), "%s: must not contain user:password@; "
		    "give credentials through the environment", kp);
		return NULL;
	}
	len = strlen(hp);
	if (len > 0 && hp[len - 1] == '/')
		len--;
	end = hp + len;
	if (memchr(hp, '/', len) != NULL || memchr(hp, '?', len) != NULL ||
	    memchr(hp, '#', len) != NULL) {
		report(ld, line_of(n), "%s: %s must be scheme://host[:port] "
		    "without a path or query (the bucket goes in store.url)",
		    kp, q(&qb, e));
		return NULL;
	}
	if (hp[0] == '[') {
		const char *close = memchr(hp, ']', len);

		if (close == NULL || (close + 1 != end && close[1] != ':'))
			goto badhost;
		hl = (size_t)(close - hp - 1);
		if (hl == 0 || hl >= sizeof(host))
			goto badhost;
		memcpy(host, hp + 1, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET6, host, a) != 1)
			goto badhost;
		if (close + 1 != end)
			portp = close + 2;
	} else {
		const char *colon = memchr(hp, ':', len);

		hl = colon != NULL ? (size_t)(colon - hp) : len;
		if (hl == 0 || hl >= sizeof(host))
			goto badhost;
		memcpy(host, hp, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET, host, a) != 1 && !is_hostname(host))
			goto badhost;
		if (colon != NULL)
			portp = colon + 1;
	}
	if (portp != NULL) {
		char pb[8];
		size_t pl = (size_t)(end - portp);

		if (pl == 0 || pl >= sizeof(pb))
			goto badport;
		memcpy(pb, portp, pl);
		pb[pl] = '\0';
		if (parse_port(pb) < 0)
			goto badport;
	}
	if ((d = strndup(e, (size_t)(end - e))) == NULL)
		report(ld, line_of(n), "out of memory");
	return d;
badhost:
	report(ld, line_of(n), "%s: %s has no valid host (e.g. "
	    "https://s3.eu-central-1.amazonaws.com or http://[::1]:9000)", kp,
	    q(&qb, e));
	return NULL;
badport:
	report(ld, line_of(n), "%s: %s has a bad port; use 1 to 65535", kp,
	    q(&qb, e));
	return NULL;
}

static void
load_store(struct loader *ld, const yaml_node_t *n, int keyline,
    struct config *cfg)
{
	static const char *const keys[] = {
		"url", "region", "endpoint", "path_style"
	};
	enum { K_URL, K_REGION, K_ENDPOINT, K_PATH_STYLE, K_N };
	struct store_config *st = &cfg->store;
	yaml_node_t *v[K_N];
	struct qbuf qb;
	const char *s, *region = NULL, *endpoint = NULL;
	int ps = -1;

	st->line = keyline;
	if (walk_map(ld, n, "store", keys, K_N, v, NULL) != 0)
		return;
	if (v[K_URL] == NULL) {
		report(ld, keyline, "store: missing url; add url: "
		    "s3://bucket[/prefix] or url: file:///absolute/dir");
	} else if ((s = get_string(ld, v[K_URL], "store.url",
	    "s3://bucket[/prefix] or file:///absolute/dir")) != NULL &&
	    (st->url = dup_or_report(ld, line_of(v[K_URL]), s)) != NULL)
		(void)parse_store_url(ld, v[K_URL], s, st);
	if (v[K_REGION] != NULL)
		region = get_string(ld, v[K_REGION], "store.region",
		    "a region name (e.g. us-east-1)");
	if (v[K_ENDPOINT] != NULL)
		endpoint = get_string(ld, v[K_ENDPOINT], "store.endpoint",
		    "an http:// or https:// URL");
	if (v[K_PATH_STYLE] != NULL)
		ps = get_bool(ld, v[K_PATH_STYLE], "store.path_style");
	if (st->kind == STORE_FILE) {
		/* file:// stores ignore region, endpoint and path_style. */
		st->region = dup_or_report(ld, st->line, DEFAULT_REGION);
		return;
	}

	/* S3, or a URL that was wrong: check the rest all the same. */
	if (region != NULL) {
		if (!region_ok(region))
			report(ld, line_of(v[K_REGION]), "store.region: %s is "
			    "not a region name (e.g. us-east-1)",
			    q(&qb, region));
		else
			st->region = dup_or_report(ld,
			    line_of(v[K_REGION]), region);
	} else if ((s = getenv("AWS_REGION")) != NULL && s[0] != '\0') {
		if (!region_ok(s))
			report(ld, st->line, "store.region: $AWS_REGION %s is "
			    "not a region name; set store.region", q(&qb, s));
		else
			st->region = dup_or_report(ld, st->line, s);
	} else
		st->region = dup_or_report(ld, st->line, DEFAULT_REGION);
	if (endpoint != NULL)
		st->endpoint = parse_endpoint(ld, v[K_ENDPOINT], endpoint);
	st->path_style = ps >= 0 ? ps : endpoint != NULL;
}

/* ---- partners: keys ------------------------------------------------------ */

static const char *const key_types[] = {
	"ssh-ed25519",
	"ecdsa-sha2-nistp256",
	"ecdsa-sha2-nistp384",
	"ecdsa-sha2-nistp521",
	"ssh-rsa",
	"sk-ssh-ed25519@openssh.com",
	"sk-ecdsa-sha2-nistp256@openssh.com",
};
#define KEY_TYPES_HINT "ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa, " \
	"sk-ssh-ed25519@openssh.com or sk-ecdsa-sha2-nistp256@openssh.com"

static int
known_type(const char *t, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++)
		if (strlen(key_types[i]) == n && memcmp(key_types[i], t, n) == 0)
			return 1;
	return 0;
}

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict standard base64 (padding required); malloc'd bytes or NULL. */
static uint8_t *
b64_decode(const char *s, size_t n, size_t *outlen)
{
	uint8_t *out;
	size_t i, o = 0, pad = 0;
	int v[4], j;

	if (n == 0 || n % 4 != 0)
		return NULL;
	if (s[n - 1] == '=')
		pad++;
	if (s[n - 2] == '=')
		pad++;
	if ((out = malloc(n / 4 * 3)) == NULL)
		return NULL;
	for (i = 0; i < n; i += 4) {
		for (j = 0; j < 4; j++) {
			if (s[i + j] == '=' && i + 4 == n && j >= 4 - (int)pad)
				v[j] = 0;
			else if ((v[j] = b64val((unsigned char)s[i + j])) < 0)
				goto fail;
		}
		out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		out[o++] = (uint8_t)(v[1] << 4 | v[2] >> 2);
		out[o++] = (uint8_t)(v[2] << 6 | v[3]);
	}
	*outlen = o - pad;
	return out;
fail:
	free(out);
	return NULL;
}

/* The next SSH wire string of blob at *off; 0 or -1. */
static int
blob_string(const uint8_t *b, size_t blen, size_t *off, const uint8_t **s,
    size_t *slen)
{
	uint32_t l;

	if (blen - *off < 4)
		return -1;
	l = (uint32_t)b[*off] << 24 | (uint32_t)b[*off + 1] << 16 |
	    (uint32_t)b[*off + 2] << 8 | b[*off + 3];
	*off += 4;
	if (blen - *off < l)
		return -1;
	*s = b + *off;
	*slen = l;
	*off += l;
	return 0;
}

/*
 * Validates one authorized_keys line. On success returns 0 and a malloc'd
 * "type base64" in *norm; on failure -1 with the reason in why.
 */
static int
check_key_line(const char *line, char **norm, char *why, size_t whylen)
{
	const char *t, *te, *b, *be, *p;
	const uint8_t *bt, *e, *mod;
	uint8_t *blob = NULL;
	size_t tl, bl, blen, off = 0, btl, el, ml, bits;
	char type[64], *b64 = NULL;
	enum ssh_keytypes_e kt;
	ssh_key key = NULL;
	int rc = -1;

	*norm = NULL;
	t = line + strspn(line, " \t");
	te = t + strcspn(t, " \t");
	tl = (size_t)(te - t);
	if (!known_type(t, tl)) {
		/* Options come before the type: "from=... ssh-ed25519 AAAA". */
		for (p = te; *p != '\0';) {
			p += strspn(p, " \t");
			bl = strcspn(p, " \t");
			if (bl > 0 && known_type(p, bl)) {
				(void)xsnprintf(why, whylen, "options are not "
				    "supported; use allow_from (and remove "
				    "from=, command=, ... before the key "
				    "type)");
				return -1;
			}
			p += bl;
		}
		if (tl == 7 && memcmp(t, "ssh-dss", 7) == 0)
			(void)xsnprintf(why, whylen, "DSA keys are not "
			    "accepted; use " KEY_TYPES_HINT);
		else if (tl > 21 && memcmp(te - 21, "-cert-v01@openssh.com",
		    21) == 0)
			(void)xsnprintf(why, whylen, "certificates are not "
			    "supported; give the plain public key");
		else
			(void)xsnprintf(why, whylen, "is not an OpenSSH public "
			    "key line (expected TYPE BASE64 [COMMENT], TYPE "
			    "one of " KEY_TYPES_HINT ")");
		return -1;
	}
	memcpy(type, t, tl);
	type[tl] = '\0';
	b = te + strspn(te, " \t");
	be = b + strcspn(b, " \t");
	bl = (size_t)(be - b);
	if (bl == 0) {
		(void)xsnprintf(why, whylen, "has no base64 key after \"%s\"",
		    type);
		return -1;
	}
	if ((blob = b64_decode(b, bl, &blen)) == NULL ||
	    blob_string(blob, blen, &off, &bt, &btl) != 0) {
		(void)xsnprintf(why, whylen, "the base64 key does not decode; "
		    "copy the whole line from the partner's .pub file");
		goto out;
	}
	if (btl != tl || memcmp(bt, type, tl) != 0) {
		(void)xsnprintf(why, whylen, "the key data is not a %s key; "
		    "check the type and the base64 text", type);
		goto out;
	}
	if ((b64 = strndup(b, bl)) == NULL) {
		(void)xsnprintf(why, whylen, "out of memory");
		goto out;
	}
	kt = ssh_key_type_from_name(type);
	if (kt == SSH_KEYTYPE_UNKNOWN ||
	    ssh_pki_import_pubkey_base64(b64, kt, &key) != SSH_OK ||
	    ssh_key_type(key) != kt) {
		(void)xsnprintf(why, whylen, "is not a valid %s key; copy the "
		    "whole line from the partner's .pub file", type);
		goto out;
	}
	if (kt == SSH_KEYTYPE_RSA) {
		/* ssh_key_size() is newer than libssh 0.10: read n's length. */
		if (blob_string(blob, blen, &off, &e, &el) != 0 ||
		    blob_string(blob, blen, &off, &mod, &ml) != 0) {
			(void)xsnprintf(why, whylen, "is not a valid ssh-rsa "
			    "key");
			goto out;
		}
		while (ml > 0 && mod[0] == 0) {
			mod++;
			ml--;
		}
		bits = ml * 8;
		if (ml > 0) {
			uint8_t top = mod[0];

			while (!(top & 0x80)) {
				top <<= 1;
				bits--;
			}
		}
		if (bits < RSA_MIN_BITS) {
			(void)xsnprintf(why, whylen, "is a %zu-bit RSA key; "
			    "RSA keys need %d bits or more (better: "
			    "ssh-ed25519)", bits, RSA_MIN_BITS);
			goto out;
		}
	}
	if ((*norm = malloc(tl + 1 + bl + 1)) == NULL) {
		(void)xsnprintf(why, whylen, "out of memory");
		goto out;
	}
	memcpy(*norm, type, tl);
	(*norm)[tl] = ' ';
	memcpy(*norm + tl + 1, b, bl);
	(*norm)[tl + 1 + bl] = '\0';
	rc = 0;
out:
	ssh_key_free(key);
	free(blob);
	free(b64);
	return rc;
}

/* Whether an authorized_keys string is a key line (else a file path). */
static int
looks_like_key(const char *s)
{
	const char *t = s + strspn(s, " \t");
	size_t tl = strcspn(t, " \t");

	if (known_type(t, tl) || strncmp(t, "ssh-", 4) == 0 ||
	    strncmp(t, "ecdsa-", 6) == 0 || strncmp(t, "sk-", 3) == 0)
		return 1;
	if (t[0] == '/' || t[0] == '.')
		return 0;
	return t[tl] != '\0';	/* several words: a key line with options */
}

static int
add_key(struct loader *ld, int line, struct partner *p, char *norm,
    size_t *cap)
{
	char **k;
	size_t ncap;

	if (p->nauthorized_keys >= KEYS_MAX) {
		report(ld, line, "partners: more than %d keys for one partner",
		    KEYS_MAX);
		free(norm);
		return -1;
	}
	if (p->nauthorized_keys == *cap) {
		ncap = *cap ? *cap * 2 : 4;
		if ((k = reallocarray(p->authorized_keys, ncap,
		    sizeof(*k))) == NULL) {
			report(ld, line, "out of memory");
			free(norm);
			return -1;
		}
		p->authorized_keys = k;
		*cap = ncap;
	}
	p->authorized_keys[p->nauthorized_keys++] = norm;
	return 0;
}

static void
load_key_file(struct loader *ld, const yaml_node_t *n, const char *kp,
    const char *ref, struct partner *p, size_t *cap)
{
	char path[4096], why[256];
	struct qbuf qb;
	struct stat st;
	char *line = NULL, *s, *norm;
	size_t lcap = 0, len;
	ssize_t got;
	FILE *f = NULL;
	int fd = -1, lineno = 0, nkeys = 0, nerr0 = ld->nerr;

	if (ref[0] == '/')
		(void)xstrlcpy(path, ref, sizeof(path));
	else if (xsnprintf(path, sizeof(path), "%s/%s", ld->dir, ref) < 0) {
		report(ld, line_of(n), "%s: %s: the path is too long", kp,
		    q(&qb, ref));
		return;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0 ||
	    fstat(fd, &st) != 0) {
		report(ld, line_of(n), "%s: %s is neither an OpenSSH key line "
		    "nor a readable authorized_keys file: %s: %s", kp,
		    q(&qb, ref), path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > KEYFILE_MAX_BYTES) {
		report(ld, line_of(n), "%s: %s is not an authorized_keys file "
		    "(a regular file of at most 1 MiB)", kp, q(&qb, path));
		goto out;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		report(ld, line_of(n), "%s: %s is writable by group or others, "
		    "so anyone could add a key; run chmod go-w on it", kp,
		    q(&qb, path));
		goto out;
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		report(ld, line_of(n), "%s: %s: %s", kp, q(&qb, path),
		    strerror(errno));
		goto out;
	}
	fd = -1;
	while ((got = getline(&line, &lcap, f)) >= 0) {
		lineno++;
		len = (size_t)got;
		if (strlen(line) != len) {
			report_at(ld, line_of(n), path, lineno, "contains a "
			    "NUL byte (from %s)", kp);
			continue;
		}
		while (len > 0 && (line[len - 1] == '\n' ||
		    line[len - 1] == '\r' || line[len - 1] == ' ' ||
		    line[len - 1] == '\t'))
			line[--len] = '\0';
		s = line + strspn(line, " \t");
		if (*s == '\0' || *s == '#')
			continue;
		if (check_key_line(s, &norm, why, sizeof(why)) != 0) {
			report_at(ld, line_of(n), path, lineno, "%s: %s "
			    "(from %s)", q(&qb, s), why, kp);
			continue;
		}
		if (add_key(ld, line_of(n), p, norm, cap) != 0)
			break;
		nkeys++;
	}
	if (ferror(f))
		report(ld, line_of(n), "%s: reading %s: %s", kp, q(&qb, path),
		    strerror(errno));
	else if (nkeys == 0 && ld->nerr == nerr0)
		report(ld, line_of(n), "%s: %s contains no keys", kp,
		    q(&qb, path));
out:
	free(line);
	if (f != NULL)
		fclose(f);
	if (fd >= 0)
		close(fd);
}

static void
load_key_entry(struct loader *ld, const yaml_node_t *n, const char *kp,
    struct partner *p, size_t *cap)
{
	char why[256], *norm;
	struct qbuf qb;
	const char *s;

	if ((s = get_string(ld, n, kp, "an OpenSSH public key line or the "
	    "path of an authorized_keys file")) == NULL)
		return;
	if (!looks_like_key(s)) {
		load_key_file(ld, n, kp, s, p, cap);
		return;
	}
	if (check_key_line(s, &norm, why, sizeof(why)) != 0) {
		report(ld, line_of(n), "%s: %s: %s", kp, q(&qb, s), why);
		return;
	}
	(void)add_key(ld, line_of(n), p, norm, cap);
}

static void
load_authorized_keys(struct loader *ld, const yaml_node_t *n, const char *pkp,
    struct partner *p)
{
	yaml_node_item_t *it;
	yaml_node_t *item;
	char kp[KP_MAX];
	size_t i, cap = 0;

	if (n->type != YAML_SEQUENCE_NODE) {
		(void)xsnprintf(kp, sizeof(kp), "%s.authorized_keys", pkp);
		load_key_entry(ld, n, kp, p, &cap);
		return;
	}
	if (n->data.sequence.items.top == n->data.sequence.items.start) {
		report(ld, line_of(n), "%s.authorized_keys: the list is empty; "
		    "add a key or remove authorized_keys", pkp);
		return;
	}
	for (i = 0, it = n->data.sequence.items.start;
	    it < n->data.sequence.items.top; it++, i++) {
		if ((item = node(ld, *it)) == NULL)
			continue;
		(void)xsnprintf(kp, sizeof(kp), "%s.authorized_keys[%zu]", pkp,
		    i);
		load_key_entry(ld, item, kp, p, &cap);
	}
}

/* ---- partners: password, addresses, names -------------------------------- */

/*
 * NULL if h is a complete crypt(3) hash with a strong scheme, else why not.
 * Never includes the hash itself.
 */
static const char *
hash_problem(const char *h)
{
	static const char *const strong[] = {
		"$y$", "$gy$", "$7$", "$6$", "$5$", "$2b$", "$2y$", "$2a$"
	};
	static const char *const weak[] = {
		"$1$", "$md5", "$sha1$", "$3$", "$2$", "$2x$", "$sha1"
	};
	static const char weakmsg[] = "weak hash scheme; generate a strong "
	    "one with: mkpasswd -m yescrypt";
	const char *last;
	size_t i, tail, n = strlen(h);
	int good = 0;

	for (i = 0; i < sizeof(weak) / sizeof(weak[0]); i++)
		if (strncmp(h, weak[i], strlen(weak[i])) == 0)
			return weakmsg;
	if ((n == 13 && strspn(h, "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz") == 13) ||
	    (n == 20 && h[0] == '_'))
		return weakmsg;		/* traditional / BSDi DES */
	for (i = 0; i < sizeof(strong) / sizeof(strong[0]); i++)
		if (strncmp(h, strong[i], strlen(strong[i])) == 0)
			good = 1;
	if (!good)
		return "not a crypt(3) hash ($y$... yescrypt, $6$... "
		    "sha512-crypt or $2b$... bcrypt); generate one with: "
		    "mkpasswd -m yescrypt";
	/* The setting must be one this libxcrypt accepts, and the hash part
	 * must be all there, so "$6$..." (a bare salt) or a cut-off hash is
	 * caught here. Cheap on purpose: no crypt(3) run per partner. */
	i = (size_t)crypt_checksalt(h);
	if (i != CRYPT_SALT_OK && i != CRYPT_SALT_METHOD_LEGACY)	/* $5$ */
		return "not a usable crypt(3) hash (malformed settings?); "
		    "generate one with: mkpasswd -m yescrypt";
	last = strrchr(h, '$');
	tail = strlen(last + 1);
	if (strncmp(h, "$2", 2) == 0)
		good = n == 60 && tail == 53;
	else if (strncmp(h, "$6$", 3) == 0)
		good = tail == 86;
	else
		good = tail == 43;	/* yescrypt, gost-yescrypt, scrypt, sha256 */
	if (good && strspn(last + 1, "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz") != tail)
		good = 0;
	if (!good)
		return "not a complete crypt(3) hash (a salt only, or cut "
		    "off?); generate one with: mkpasswd -m yescrypt";
	return NULL;
}

static void
load_allow_entry(struct loader *ld, const yaml_node_t *n, const char *kp,
    struct partner *p)
{
	struct qbuf qb;
	struct cidr c;
	const char *s;
	char net[64];
	int dirty;

	if ((s = get_string(ld, n, kp, "a CIDR block (e.g. 203.0.113.0/24)"))
	    == NULL)
		return;
	if (cidr_parse_lenient(s, &c, &dirty) != 0) {
		report(ld, line_of(n), "%s: %s is not a CIDR block (expected "
		    "e.g. 203.0.113.0/24 or 2001:db8::/32)", kp, q(&qb, s));
		return;
	}
	if (dirty) {
		if (cidr_format(&c, net, sizeof(net)) != 0)
			net[0] = '\0';
		report(ld, line_of(n), "%s: %s has host bits set after the "
		    "prefix; did you mean %s?", kp, q(&qb, s), net);
		return;
	}
	p->allow_from[p->nallow_from++] = c;
}

static void
load_allow_from(struct loader *ld, const yaml_node_t *n, const char *pkp,
    struct partner *p)
{
	yaml_node_item_t *it;
	yaml_node_t *item;
	char kp[KP_MAX];
	size_t cnt, i;

	cnt = n->type == YAML_SEQUENCE_NODE ?
	    (size_t)(n->data.sequence.items.top - n->data.sequence.items.start)
	    : 1;
	if (cnt == 0) {
		report(ld, line_of(n), "%s.allow_from: the list is empty and "
		    "would refuse every address; remove allow_from to allow "
		    "any address", pkp);
		return;
	}
	if ((p->allow_from = calloc(cnt, sizeof(*p->allow_from))) == NULL) {
		report(ld, line_of(n), "out of memory");
		return;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		(void)xsnprintf(kp, sizeof(kp), "%s.allow_from", pkp);
		load_allow_entry(ld, n, kp, p);
		return;
	}
	for (i = 0, it = n->data.sequence.items.start;
	    it < n->data.sequence.items.top; it++, i++) {
		if ((item = node(ld, *it)) == NULL)
			continue;
		(void)xsnprintf(kp, sizeof(kp), "%s.allow_from[%zu]", pkp, i);
		load_allow_entry(ld, item, kp, p);
	}
}

static const char *
name_problem(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 64)
		return "must be 1 to 64 characters long";
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		    s[i] == '_' || s[i] == '-'))
			return "may only contain a-z, 0-9, '.', '_' and '-' "
			    "(e.g. acme-bank)";
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return "must start with a lower-case letter or digit";
	return NULL;
}

static void
load_partner(struct loader *ld, const yaml_node_t *n, size_t idx,
    struct config *cfg)
{
	static const char *const keys[] = {
		"name", "authorized_keys", "password_hash", "allow_from",
		"object_key"
	};
	enum { K_NAME, K_KEYS, K_HASH, K_ALLOW, K_OBJKEY, K_N };
	struct partner *p = &cfg->partners[idx];
	yaml_node_t *v[K_N];
	char kp[KP_MAX], kpk[KP_MAX];
	struct qbuf qb;
	const char *s, *why;
	size_t i;

	p->line = line_of(n);
	(void)xsnprintf(kp, sizeof(kp), "partners[%zu]", idx);
	if (walk_map(ld, n, kp, keys, K_N, v, NULL) != 0)
		return;

	if (v[K_NAME] == NULL)
		report(ld, line_of(n), "%s: missing name; add name: "
		    "<the partner's SFTP login>", kp);
	else {
		join_kp(kpk, sizeof(kpk), kp, "name");
		if ((s = get_string(ld, v[K_NAME], kpk, "a partner name "
		    "(e.g. acme)")) == NULL)
			;
		else if ((why = name_problem(s)) != NULL)
			report(ld, line_of(v[K_NAME]), "%s: %s %s", kpk,
			    q(&qb, s), why);
		else {
			for (i = 0; i < idx; i++)
				if (cfg->partners[i].name != NULL &&
				    strcmp(cfg->partners[i].name, s) == 0)
					break;
			if (i < idx)
				report(ld, line_of(v[K_NAME]), "%s: %s is "
				    "already used by partners[%zu] (line %d); "
				    "partner names must be unique", kpk,
				    q(&qb, s), i, cfg->partners[i].line);
			else
				p->name = dup_or_report(ld,
				    line_of(v[K_NAME]), s);
		}
	}

	if (v[K_KEYS] == NULL && v[K_HASH] == NULL)
		report(ld, line_of(n), "%s: has no authorized_keys or "
		    "password_hash; add at least one so the partner can log "
		    "in", kp);
	if (v[K_KEYS] != NULL)
		load_authorized_keys(ld, v[K_KEYS], kp, p);
	if (v[K_HASH] != NULL) {
		join_kp(kpk, sizeof(kpk), kp, "password_hash");
		if ((s = get_string(ld, v[K_HASH], kpk, "a crypt(3) hash "
		    "(generate one with: mkpasswd -m yescrypt)")) == NULL)
			;
		else if ((why = hash_problem(s)) != NULL)
			report(ld, line_of(v[K_HASH]), "%s: %s", kpk, why);
		else
			p->password_hash = dup_or_report(ld,
			    line_of(v[K_HASH]), s);
	}
	if (v[K_ALLOW] != NULL)
		load_allow_from(ld, v[K_ALLOW], kp, p);

	join_kp(kpk, sizeof(kpk), kp, "object_key");
	s = DEFAULT_OBJECT_KEY;
	if (v[K_OBJKEY] != NULL && (s = get_string(ld, v[K_OBJKEY], kpk,
	    "a key template (e.g. {partner}/{path})")) != NULL &&
	    objkey_check(s, &why) != 0) {
		report(ld, line_of(v[K_OBJKEY]), "%s: %s %s", kpk, q(&qb, s),
		    why);
		s = NULL;
	}
	if (s != NULL)
		p->object_key = dup_or_report(ld, p->line, s);
}

static void
load_partners(struct loader *ld, const yaml_node_t *n, struct config *cfg)
{
	yaml_node_item_t *it;
	yaml_node_t *item;
	size_t cnt, i;

	if (n->type != YAML_SEQUENCE_NODE) {
		report(ld, line_of(n), "partners: expected a list of partners "
		    "(- name: ...), got %s", kind_of(n));
		return;
	}
	cnt = (size_t)(n->data.sequence.items.top -
	    n->data.sequence.items.start);
	if (cnt == 0) {
		report(ld, line_of(n), "partners: the list is empty; add at "
		    "least one partner (- name: ...)");
		return;
	}
	if ((cfg->partners = calloc(cnt, sizeof(*cfg->partners))) == NULL) {
		report(ld, line_of(n), "out of memory");
		return;
	}
	cfg->npartners = cnt;
	for (i = 0, it = n->data.sequence.items.start;
	    it < n->data.sequence.items.top; it++, i++)
		if ((item = node(ld, *it)) != NULL)
			load_partner(ld, item, i, cfg);
}

/* ---- the document -------------------------------------------------------- */

static void
load_root(struct loader *ld, const yaml_node_t *root, struct config *cfg)
{
	static const char *const keys[] = {
		"listen", "host_keys", "state_dir", "audit", "store", "partners"
	};
	enum { K_LISTEN, K_HOST_KEYS, K_STATE_DIR, K_AUDIT, K_STORE,
	    K_PARTNERS, K_N };
	yaml_node_t *v[K_N];
	int kl[K_N];
	char buf[4096];

	if (walk_map(ld, root, "", keys, K_N, v, kl) != 0)
		return;
	cfg->listen_port = DEFAULT_LISTEN_PORT;
	cfg->listen_host = dup_or_report(ld, 1, DEFAULT_LISTEN_HOST);
	if (v[K_LISTEN] != NULL)
		load_listen(ld, v[K_LISTEN], cfg);

	if (v[K_STATE_DIR] != NULL)
		cfg->state_dir = get_abspath(ld, v[K_STATE_DIR], "state_dir",
		    DEFAULT_STATE_DIR);
	else
		cfg->state_dir = dup_or_report(ld, 1, DEFAULT_STATE_DIR);

	if (v[K_HOST_KEYS] != NULL)
		load_host_keys(ld, v[K_HOST_KEYS], cfg);
	else if (cfg->state_dir != NULL) {
		if (xsnprintf(buf, sizeof(buf), "%s/ssh_host_ed25519_key",
		    strcmp(cfg->state_dir, "/") == 0 ? "" : cfg->state_dir) < 0)
			report(ld, 1, "state_dir: the path is too long");
		else if ((cfg->host_keys = calloc(1, sizeof(char *))) == NULL)
			report(ld, 1, "out of memory");
		else if ((cfg->host_keys[0] = dup_or_report(ld, 1, buf)) != NULL)
			cfg->nhost_keys = 1;
	}

	cfg->audit_path = dup_or_report(ld, 1, DEFAULT_AUDIT_PATH);
	if (v[K_AUDIT] != NULL)
		load_audit(ld, v[K_AUDIT], cfg);

	if (v[K_STORE] != NULL)
		load_store(ld, v[K_STORE], kl[K_STORE], cfg);
	else
		report(ld, line_of(root), "store: missing; add e.g. store: "
		    "{url: s3://my-bucket} or store: {url: "
		    "file:///srv/sluice/objects}");

	if (v[K_PARTNERS] != NULL)
		load_partners(ld, v[K_PARTNERS], cfg);
	else
		report(ld, line_of(root), "partners: missing; add a list of "
		    "partners (- name: acme ...)");
}

static void
yaml_syntax_error(struct loader *ld, const yaml_parser_t *ps)
{
	const char *problem = ps->problem ? ps->problem : "malformed YAML";

	if (ps->context != NULL)
		report(ld, (int)ps->problem_mark.line + 1, "YAML syntax error: "
		    "%s (%s on line %d)", problem, ps->context,
		    (int)ps->context_mark.line + 1);
	else
		report(ld, (int)ps->problem_mark.line + 1, "YAML syntax error: "
		    "%s", problem);
}

int
config_load(const char *path, struct config **cfgp, FILE *err)
{
	struct loader ld;
	struct config *cfg = NULL;
	yaml_parser_t parser;
	yaml_document_t doc, doc2;
	yaml_node_t *root;
	struct stat st;
	FILE *f = NULL;
	const char *slash;
	int parser_ok = 0, doc_ok = 0, rc = -1;

	if (cfgp != NULL)
		*cfgp = NULL;
	memset(&ld, 0, sizeof(ld));
	ld.file = path != NULL ? path : "(null)";
	ld.err = err;
	if (path == NULL || cfgp == NULL) {
		report(&ld, 0, "config_load: no path");
		goto out;
	}

	if ((f = fopen(path, "rb")) == NULL) {
		report(&ld, 0, "cannot open the configuration: %s",
		    strerror(errno));
		goto out;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > CONFIG_MAX_BYTES) {
		report(&ld, 0, "not a regular file of at most 1 MiB");
		goto out;
	}
	slash = strrchr(path, '/');
	ld.dir = slash == NULL ? strdup(".") :
	    strndup(path, slash == path ? 1 : (size_t)(slash - path));
	if (ld.dir == NULL) {
		report(&ld, 0, "out of memory");
		goto out;
	}

	if (!yaml_parser_initialize(&parser)) {
		report(&ld, 0, "out of memory");
		goto out;
	}
	parser_ok = 1;
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		yaml_syntax_error(&ld, &parser);
		goto out;
	}
	doc_ok = 1;
	ld.doc = &doc;
	if ((root = yaml_document_get_root_node(&doc)) == NULL) {
		report(&ld, 1, "the configuration is empty; it needs at least "
		    "store: and partners:");
		goto out;
	}
	if (!yaml_parser_load(&parser, &doc2))
		yaml_syntax_error(&ld, &parser);
	else {
		if (yaml_document_get_root_node(&doc2) != NULL)
			report(&ld, (int)doc2.start_mark.line + 1, "a second "
			    "YAML document (---) is not allowed; keep one "
			    "configuration per file");
		yaml_document_delete(&doc2);
	}

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL ||
	    (cfg->path = strdup(path)) == NULL) {
		report(&ld, 0, "out of memory");
		goto out;
	}
	load_root(&ld, root, cfg);
	if (ld.nerr == 0) {
		*cfgp = cfg;
		cfg = NULL;
		rc = 0;
	}
out:
	flush_messages(&ld);
	config_free(cfg);
	if (doc_ok)
		yaml_document_delete(&doc);
	if (parser_ok)
		yaml_parser_delete(&parser);
	if (f != NULL)
		fclose(f);
	free(ld.dir);
	return rc;
}

void
config_free(struct config *cfg)
{
	struct partner *p;
	size_t i, j;

	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->listen_host);
	for (i = 0; i < cfg->nhost_keys; i++)
		free(cfg->host_keys[i]);
	free(cfg->host_keys);
	free(cfg->state_dir);
	free(cfg->audit_path);
	free(cfg->store.url);
	free(cfg->store.bucket);
	free(cfg->store.prefix);
	free(cfg->store.dir);
	free(cfg->store.region);
	free(cfg->store.endpoint);
	for (i = 0; i < cfg->npartners; i++) {
		p = &cfg->partners[i];
		free(p->name);
		for (j = 0; j < p->nauthorized_keys; j++)
			free(p->authorized_keys[j]);
		free(p->authorized_keys);
		if (p->password_hash != NULL) {
			explicit_bzero(p->password_hash,
			    strlen(p->password_hash));
			free(p->password_hash);
		}
		free(p->allow_from);
		free(p->object_key);
	}
	free(cfg->partners);
	free(cfg);
}

const struct partner *
config_partner(const struct config *cfg, const char *name)
{
	size_t i;

	if (cfg == NULL || name == NULL)
		return NULL;
	for (i = 0; i < cfg->npartners; i++)
		if (cfg->partners[i].name != NULL &&
		    strcmp(cfg->partners[i].name, name) == 0)
			return &cfg->partners[i];
	return NULL;
}
