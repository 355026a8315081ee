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
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <sys/un.h>
#include <unistd.h>

#include <yaml.h>

#include "common/log.h"
#include "common/util.h"
#include "policy/algos.h"
#include "policy/policy.h"
#include "server/guard.h"
#include "server/keys.h"
#include "uploader/s3names.h"

#define CONFIG_MAX_BYTES	(1024 * 1024)
#define KEYFILE_MAX_BYTES	(1024 * 1024)
#define KEYS_MAX		10000	/* per partner */
#define SHOW_MAX		80	/* bytes of a value quoted in a message */
#define KP_MAX			160	/* a key path such as partners[12].allow_from[3] */
#define WALK_KEYS_MAX		24	/* keys of one mapping */

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
	const char	*svc_user;	/* "user", once read (default "sluice") */
};

/* ---- reporting ----------------------------------------------------------- */

static void report_at(struct loader *, int, const char *, int, const char *, ...)
    __attribute__((format(printf, 5, 6)));
static void report(struct loader *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(struct loader *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
vreport_at(struct loader *ld, int sort, const char *file, int line,
    int warning, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

/* An error (counted: the load fails) or a warning (printed, not counted). */
static void
vreport_at(struct loader *ld, int sort, const char *file, int line,
    int warning, const char *fmt, va_list ap)
{
	char body[1024], text[1200];
	const char *w = warning ? "warning: " : "";
	struct msg *m;

	if (!warning)
		ld->nerr++;
	if (ld->err == NULL)
		return;
	(void)vsnprintf(body, sizeof(body), fmt, ap);
	if (line > 0)
		(void)xsnprintf(text, sizeof(text), "%s:%d: %s%s", file, line,
		    w, body);
	else
		(void)xsnprintf(text, sizeof(text), "%s: %s%s", file, w, body);
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
	vreport_at(ld, sort, file, line, 0, fmt, ap);
	va_end(ap);
}

/* A problem in the config file itself, at line. */
static void
report(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport_at(ld, line, ld->file, line, 0, fmt, ap);
	va_end(ap);
}

/* A weak but working choice at line: printed, the load still succeeds. */
static void
warn(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport_at(ld, line, ld->file, line, 1, fmt, ap);
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
	char kpk[KP_MAX], known[512];
	struct qbuf qb;
	const char *name, *best, *shown;
	size_t i, d, bestd;
	int keyline[WALK_KEYS_MAX];

	if (nkeys > WALK_KEYS_MAX)
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

/* ---- typed values: numbers, durations, sizes, choices, files ------------- */

#define KIB		((int64_t)1024)
#define MIB		(KIB * 1024)
#define GIB		(MIB * 1024)
#define TIB		(GIB * 1024)
#define DUR_DAY		((int64_t)86400)
#define DUR_LONG	(36500 * DUR_DAY)	/* 100 years: "forever" */

int
parse_duration(const char *s, int64_t *out)
{
	int64_t v = 0, mul = 1;
	size_t i;

	if (s == NULL || out == NULL || s[0] < '0' || s[0] > '9')
		return -1;
	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (s[i] != '\0') {
		switch (s[i]) {
		case 's':
			mul = 1;
			break;
		case 'm':
			mul = 60;
			break;
		case 'h':
			mul = 3600;
			break;
		case 'd':
			mul = DUR_DAY;
			break;
		case 'y':
			mul = 365 * DUR_DAY;
			break;
		default:
			return -1;
		}
		if (s[i + 1] != '\0')
			return -1;
	}
	if (v > INT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

int
parse_size(const char *s, int64_t *out)
{
	static const struct {
		const char	*unit;
		int64_t		 mul;
	} units[] = {
		{ "", 1 }, { "B", 1 },
		{ "KiB", KIB }, { "MiB", MIB }, { "GiB", GIB }, { "TiB", TIB },
		{ "KB", 1000 }, { "kB", 1000 }, { "MB", 1000000 },
		{ "GB", 1000000000 }, { "TB", (int64_t)1000000000000 },
	};
	int64_t v = 0;
	size_t i, u;

	if (s == NULL || out == NULL || s[0] < '0' || s[0] > '9')
		return -1;
	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	for (u = 0; u < sizeof(units) / sizeof(units[0]); u++)
		if (strcmp(s + i, units[u].unit) == 0)
			break;
	if (u == sizeof(units) / sizeof(units[0]) || v > INT64_MAX / units[u].mul)
		return -1;
	*out = v * units[u].mul;
	return 0;
}

/* v seconds in the largest unit that divides it: "24h", "90s". */
static const char *
fmt_dur(int64_t v, char *buf, size_t len)
{
	if (v != 0 && v % DUR_DAY == 0)
		(void)xsnprintf(buf, len, "%lldd", (long long)(v / DUR_DAY));
	else if (v != 0 && v % 3600 == 0)
		(void)xsnprintf(buf, len, "%lldh", (long long)(v / 3600));
	else if (v != 0 && v % 60 == 0)
		(void)xsnprintf(buf, len, "%lldm", (long long)(v / 60));
	else
		(void)xsnprintf(buf, len, "%llds", (long long)v);
	return buf;
}

/* v bytes in the largest binary unit that divides it: "16MiB". */
static const char *
fmt_size(int64_t v, char *buf, size_t len)
{
	static const char *const u[] = { "TiB", "GiB", "MiB", "KiB" };
	const int64_t m[] = { TIB, GIB, MIB, KIB };
	size_t i;

	for (i = 0; i < 4; i++)
		if (v != 0 && v % m[i] == 0) {
			(void)xsnprintf(buf, len, "%lld%s",
			    (long long)(v / m[i]), u[i]);
			return buf;
		}
	(void)xsnprintf(buf, len, "%lld", (long long)v);
	return buf;
}

/* A whole number in [min, max] into *out; 0, or -1 after reporting. */
static int
get_int(struct loader *ld, const yaml_node_t *n, const char *kp, int64_t min,
    int64_t max, int64_t *out)
{
	struct qbuf qb;
	const char *s;
	int64_t v;

	if ((s = get_string(ld, n, kp, "a whole number")) == NULL)
		return -1;
	if (strspn(s, "0123456789") != strlen(s) || strlen(s) > 18 ||
	    parse_int64(s, 0, INT64_MAX, &v) != 0) {
		report(ld, line_of(n), "%s: %s is not a whole number; use %lld "
		    "to %lld", kp, q(&qb, s), (long long)min, (long long)max);
		return -1;
	}
	if (v < min || v > max) {
		report(ld, line_of(n), "%s: %lld is out of range; use %lld to "
		    "%lld", kp, (long long)v, (long long)min, (long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

/* A duration in [min, max] seconds into *out; 0, or -1 after reporting. */
static int
get_duration(struct loader *ld, const yaml_node_t *n, const char *kp,
    int64_t min, int64_t max, int64_t *out)
{
	char b1[32], b2[32];
	struct qbuf qb;
	const char *s;
	int64_t v;

	if ((s = get_string(ld, n, kp, "a duration (e.g. 30s, 10m, 24h or "
	    "30d)")) == NULL)
		return -1;
	if (parse_duration(s, &v) != 0) {
		report(ld, line_of(n), "%s: %s is not a duration; use whole "
		    "seconds or a number with s, m, h, d or y (e.g. 90, 30s, "
		    "10m, 24h, 30d, 7y)", kp, q(&qb, s));
		return -1;
	}
	if (v < min) {
		report(ld, line_of(n), "%s: %s is too short; use at least %s",
		    kp, q(&qb, s), fmt_dur(min, b1, sizeof(b1)));
		return -1;
	}
	if (v > max) {
		report(ld, line_of(n), "%s: %s is too long; use at most %s",
		    kp, q(&qb, s), fmt_dur(max, b2, sizeof(b2)));
		return -1;
	}
	*out = v;
	return 0;
}

/* A size in [min, max] bytes into *out; 0, or -1 after reporting. */
static int
get_size(struct loader *ld, const yaml_node_t *n, const char *kp,
    int64_t min, int64_t max, int64_t *out)
{
	char b[32];
	struct qbuf qb;
	const char *s;
	int64_t v;

	if ((s = get_string(ld, n, kp, "a size (e.g. 16MiB)")) == NULL)
		return -1;
	if (parse_size(s, &v) != 0) {
		report(ld, line_of(n), "%s: %s is not a size; use bytes or a "
		    "number with KiB, MiB, GiB, TiB (or KB, MB, GB, TB), e.g. "
		    "16MiB", kp, q(&qb, s));
		return -1;
	}
	if (v < min) {
		report(ld, line_of(n), "%s: %s is too small; use at least %s",
		    kp, q(&qb, s), fmt_size(min, b, sizeof(b)));
		return -1;
	}
	if (v > max) {
		report(ld, line_of(n), "%s: %s is too large; use at most %s",
		    kp, q(&qb, s), fmt_size(max, b, sizeof(b)));
		return -1;
	}
	*out = v;
	return 0;
}

/* The value of key `key` under parent kp (v may be NULL: nothing to do). */
static void
set_int(struct loader *ld, const yaml_node_t *v, const char *kp,
    const char *key, int64_t min, int64_t max, int *dst)
{
	char kpk[KP_MAX];
	int64_t x;

	if (v == NULL)
		return;
	join_kp(kpk, sizeof(kpk), kp, key);
	if (get_int(ld, v, kpk, min, max, &x) == 0)
		*dst = (int)x;
}

static void
set_duration(struct loader *ld, const yaml_node_t *v, const char *kp,
    const char *key, int64_t min, int64_t max, int64_t *dst)
{
	char kpk[KP_MAX];

	if (v == NULL)
		return;
	join_kp(kpk, sizeof(kpk), kp, key);
	(void)get_duration(ld, v, kpk, min, max, dst);
}

static void
set_size(struct loader *ld, const yaml_node_t *v, const char *kp,
    const char *key, int64_t min, int64_t max, int64_t *dst)
{
	char kpk[KP_MAX];

	if (v == NULL)
		return;
	join_kp(kpk, sizeof(kpk), kp, key);
	(void)get_size(ld, v, kpk, min, max, dst);
}

/*
 * The index of the word n holds in choices[] (exact match), or -1 after
 * reporting with the nearest choice (a case slip or a typo) or the list.
 */
static int
get_choice(struct loader *ld, const yaml_node_t *n, const char *kp,
    const char *const *choices, size_t nchoices)
{
	char known[512];
	struct qbuf qb;
	const char *s, *best = NULL;
	size_t i, d, bestd = 3;

	known[0] = '\0';
	for (i = 0; i < nchoices; i++) {
		if (i > 0)
			(void)xstrlcat(known, ", ", sizeof(known));
		(void)xstrlcat(known, choices[i], sizeof(known));
	}
	if ((s = get_string(ld, n, kp, known)) == NULL)
		return -1;
	for (i = 0; i < nchoices; i++)
		if (strcmp(s, choices[i]) == 0)
			return (int)i;
	for (i = 0; i < nchoices && best == NULL; i++)
		if (strcasecmp(s, choices[i]) == 0)
			best = choices[i];
	for (i = 0; i < nchoices && best == NULL; i++)
		if ((d = edit_distance(s, choices[i])) < bestd) {
			bestd = d;
			best = choices[i];
		}
	if (best != NULL)
		report(ld, line_of(n), "%s: %s is not valid; did you mean "
		    "\"%s\"? (one of: %s)", kp, q(&qb, s), best, known);
	else
		report(ld, line_of(n), "%s: %s is not valid; use one of: %s",
		    kp, q(&qb, s), known);
	return -1;
}

#define FILE_NOT_GW	0x01	/* refuse group/world-writable (trust anchors) */
#define FILE_SECRET	0x02	/* refuse group/world-readable, foreign owner */

/*
 * Who may own a secret key file (0600): the user that reads it. Started as
 * root, that is the service user the roles run as (common/proc.h); as
 * anyone else, that user.
 */
static int
secret_owner_ok(const struct loader *ld, const struct stat *st)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return st->st_uid == geteuid();
	pw = getpwnam(ld->svc_user != NULL ? ld->svc_user : "sluice");
	return pw != NULL && st->st_uid == pw->pw_uid;
}

/*
 * ref (absolute, or relative to the config file's directory) as an absolute
 * path into out, checked to be a readable regular file; 0, or -1 after
 * reporting. Symlinks are not resolved, so a swapped link takes effect on
 * the next load.
 */
static int
get_file(struct loader *ld, const yaml_node_t *n, const char *kp,
    const char *ref, int flags, char *out, size_t outlen)
{
	char cwd[4096];
	struct qbuf qb;
	struct stat st;
	int fd = -1, rc = -1;

	if (ref[0] == '/') {
		if (xstrlcpy(out, ref, outlen) >= outlen)
			goto toolong;
	} else if (ld->dir[0] == '/') {
		if (xsnprintf(out, outlen, "%s/%s", ld->dir, ref) < 0)
			goto toolong;
	} else {
		if (getcwd(cwd, sizeof(cwd)) == NULL ||
		    xsnprintf(out, outlen, "%s/%s/%s", cwd, ld->dir, ref) < 0)
			goto toolong;
	}
	if ((fd = open(out, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0 ||
	    fstat(fd, &st) != 0) {
		report(ld, line_of(n), "%s: cannot read %s: %s; check the path "
		    "(relative paths start at the config file's directory)",
		    kp, q(&qb, out), strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		report(ld, line_of(n), "%s: %s is not a regular file", kp,
		    q(&qb, out));
		goto out;
	}
	if ((flags & (FILE_NOT_GW | FILE_SECRET)) &&
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		report(ld, line_of(n), "%s: %s is writable by group or others, "
		    "so anyone could replace it; run chmod go-w %s", kp,
		    q(&qb, out), out);
		goto out;
	}
	if ((flags & FILE_SECRET) && (st.st_mode & (S_IRGRP | S_IROTH))) {
		report(ld, line_of(n), "%s: %s is a secret key readable by "
		    "group or others; run chmod 600 %s", kp, q(&qb, out), out);
		goto out;
	}
	if ((flags & FILE_SECRET) && !secret_owner_ok(ld, &st)) {
		report(ld, line_of(n), "%s: %s is a secret key owned by uid %u, "
		    "not by the user that reads it; run chown %s %s", kp,
		    q(&qb, out), (unsigned)st.st_uid, geteuid() == 0 ?
		    (ld->svc_user ? ld->svc_user : "sluice") : "$(id -un)", out);
		goto out;
	}
	rc = 0;
	goto out;
toolong:
	report(ld, line_of(n), "%s: %s: the path is too long", kp, q(&qb, ref));
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* A string list (or one string) at kp; each item checked by check(). */
typedef const char *(*item_check_fn)(const char *);

static void
load_str_list(struct loader *ld, const yaml_node_t *n, const char *kp,
    const char *what, item_check_fn check, char ***arrp, size_t *cntp)
{
	yaml_node_item_t *it;
	yaml_node_t *item;
	char kpi[KP_MAX];
	struct qbuf qb;
	const char *s, *why;
	size_t cnt, i;

	cnt = n->type == YAML_SEQUENCE_NODE ?
	    (size_t)(n->data.sequence.items.top - n->data.sequence.items.start)
	    : 1;
	if (cnt == 0)
		return;
	if ((*arrp = calloc(cnt, sizeof(char *))) == NULL) {
		report(ld, line_of(n), "out of memory");
		return;
	}
	for (i = 0; i < cnt; i++) {
		if (n->type == YAML_SEQUENCE_NODE) {
			it = n->data.sequence.items.start + i;
			if ((item = node(ld, *it)) == NULL)
				continue;
			(void)xsnprintf(kpi, sizeof(kpi), "%s[%zu]", kp, i);
		} else {
			item = (yaml_node_t *)n;
			(void)xstrlcpy(kpi, kp, sizeof(kpi));
		}
		if ((s = get_string(ld, item, kpi, what)) == NULL)
			continue;
		if (check != NULL && (why = check(s)) != NULL) {
			report(ld, line_of(item), "%s: %s %s", kpi, q(&qb, s),
			    why);
			continue;
		}
		if (((*arrp)[*cntp] = dup_or_report(ld, line_of(item), s)) !=
		    NULL)
			(*cntp)++;
	}
}

/* ---- listen, paths, audit ------------------------------------------------ */

/* kp: "listen" or "metrics.listen"; sets *hostp (freed first) and *portp. */
static void
load_listen(struct loader *ld, const yaml_node_t *n, const char *kp,
    char **hostp, int *portp)
{
	const char *s, *hs, *colon, *ps;
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
	free(*hostp);
	*hostp = dup_or_report(ld, line_of(n), host);
	*portp = port;
}

/* The "metrics:" block (metrics/metrics.h): absent, no metrics role. */
static void
load_metrics(struct loader *ld, const yaml_node_t *n, struct config *cfg)
{
	static const char *const keys[] = { "listen" };
	yaml_node_t *v[1];

	if (walk_map(ld, n, "metrics", keys, 1, v, NULL) != 0)
		return;
	if (v[0] == NULL) {
		report(ld, line_of(n), "metrics: listen is missing; add e.g. "
		    "metrics: {listen: 127.0.0.1:9464}, or remove metrics: "
		    "to serve none");
		return;
	}
	load_listen(ld, v[0], "metrics.listen", &cfg->metrics.listen_host,
	    &cfg->metrics.listen_port);
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

static const char host_id_chars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";

/* audit.host_id: [A-Za-z0-9._-]{1,64}; 1 if s is one. */
static int
host_id_ok(const char *s)
{
	size_t n = strspn(s, host_id_chars);

	return n > 0 && n <= 64 && s[n] == '\0';
}

/* audit.syslog: false, or a facility; sets *fac (0: off). */
static void
get_syslog(struct loader *ld, const yaml_node_t *n, int *fac)
{
	static const char *const names[] = { "false", "authpriv", "auth",
	    "daemon", "user", "local0", "local1", "local2", "local3",
	    "local4", "local5", "local6", "local7" };
	static const int facs[] = { 0, LOG_AUTHPRIV, LOG_AUTH, LOG_DAEMON,
	    LOG_USER, LOG_LOCAL0, LOG_LOCAL1, LOG_LOCAL2, LOG_LOCAL3,
	    LOG_LOCAL4, LOG_LOCAL5, LOG_LOCAL6, LOG_LOCAL7 };
	const char *s;
	int i;

	if (n->type == YAML_SCALAR_NODE && !is_null(n) &&
	    (s = scalar(n)) != NULL && (strcasecmp(s, "no") == 0 ||
	    strcasecmp(s, "false") == 0)) {
		*fac = 0;
		return;
	}
	if ((i = get_choice(ld, n, "audit.syslog", names,
	    sizeof(names) / sizeof(names[0]))) >= 0)
		*fac = facs[i];
}

/* The defaults of audit.segments_dir and audit.host_id. */
static void
audit_defaults(struct loader *ld, struct config *cfg)
{
	char buf[4096], host[256], *slash;
	size_t i;

	if (cfg->audit_segments_dir == NULL && cfg->audit_path != NULL) {
		(void)xstrlcpy(buf, cfg->audit_path, sizeof(buf));
		if ((slash = strrchr(buf, '/')) != NULL)
			*slash = '\0';
		if (xstrlcat(buf, "/segments", sizeof(buf)) >= sizeof(buf))
			report(ld, 1, "audit.path: the path is too long");
		else
			cfg->audit_segments_dir = dup_or_report(ld, 1, buf);
	}
	if (cfg->audit_prefix == NULL)
		cfg->audit_prefix = dup_or_report(ld, 1, "audit/");
	if (cfg->audit_host_id != NULL)
		return;
	if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0')
		(void)xstrlcpy(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	host[64] = '\0';
	for (i = 0; host[i] != '\0'; i++)
		if (strchr(host_id_chars, host[i]) == NULL)
			host[i] = '-';
	cfg->audit_host_id = dup_or_report(ld, 1, host);
}

/* audit.prefix: a key prefix like store.quarantine_prefix, ending in '/'. */
static void
load_audit_prefix(struct loader *ld, const yaml_node_t *n, struct config *cfg)
{
	const char *kp = "audit.prefix", *s, *why;
	struct qbuf qb;
	size_t len, i;

	if ((s = get_string(ld, n, kp, "a key prefix (e.g. audit/)")) == NULL)
		return;
	len = strlen(s);
	why = len == 0 ? "must not be empty" : strpbrk(s, " \t") != NULL ?
	    "blanks are not allowed" : s3_prefix_problem(s);
	for (i = 0; why == NULL && i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			why = "only printable ASCII is allowed";
	if (why != NULL) {
		report(ld, line_of(n), "%s: %s: %s (e.g. audit/)", kp,
		    q(&qb, s), why);
		return;
	}
	free(cfg->audit_prefix);
	if ((cfg->audit_prefix = malloc(len + 2)) == NULL) {
		report(ld, line_of(n), "out of memory");
		return;
	}
	memcpy(cfg->audit_prefix, s, len + 1);
	if (s[len - 1] != '/')
		memcpy(cfg->audit_prefix + len, "/", 2);
}

/* audit.retention: {mode: COMPLIANCE|GOVERNANCE, period: 7y}. */
static void
load_audit_retention(struct loader *ld, const yaml_node_t *n,
    struct config *cfg)
{
	static const char *const keys[] = { "mode", "period" };
	static const char *const modes[] = { "COMPLIANCE", "GOVERNANCE" };
	const char *kp = "audit.retention";
	yaml_node_t *v[2];
	int64_t period;
	int i, nerr0 = ld->nerr;

	if (walk_map(ld, n, kp, keys, 2, v, NULL) != 0 || ld->nerr != nerr0)
		return;
	if (v[0] == NULL || v[1] == NULL) {
		report(ld, line_of(n), "%s: needs both mode and period (e.g. "
		    "{mode: COMPLIANCE, period: 7y}); remove it to rely on the "
		    "bucket's default retention", kp);
		return;
	}
	if ((i = get_choice(ld, v[0], "audit.retention.mode", modes, 2)) < 0 ||
	    get_duration(ld, v[1], "audit.retention.period", DUR_DAY,
	    DUR_LONG, &period) != 0)
		return;
	if ((cfg->audit_retention_mode = dup_or_report(ld, line_of(v[0]),
	    modes[i])) != NULL)
		cfg->audit_retention_s = period;
}

static void load_signing_key(struct loader *, const char *,
    const yaml_node_t *, const yaml_node_t *, char **, char **);

static void
load_audit(struct loader *ld, const yaml_node_t *n, struct config *cfg)
{
	static const char *const keys[] = { "path", "key", "segments_dir",
	    "segment_max", "segment_age", "host_id", "syslog", "prefix",
	    "retention", "sign_with", "keyring" };
	enum { K_PATH, K_KEY, K_SEGDIR, K_SEGMAX, K_SEGAGE, K_HOST, K_SYSLOG,
	    K_PREFIX, K_RETENTION, K_SIGN, K_KEYRING, K_N };
	yaml_node_t *v[K_N];
	struct qbuf qb;
	const char *s;
	char *p;

	if (walk_map(ld, n, "audit", keys, K_N, v, NULL) != 0)
		return;
	if (v[K_PATH] != NULL && (p = get_abspath(ld, v[K_PATH], "audit.path",
	    DEFAULT_AUDIT_PATH)) != NULL) {
		free(cfg->audit_path);
		cfg->audit_path = p;
	}
	if (v[K_KEY] != NULL && (p = get_abspath(ld, v[K_KEY], "audit.key",
	    "/var/lib/sluice/audit.key")) != NULL) {
		free(cfg->audit_key_path);
		cfg->audit_key_path = p;
	}
	if (v[K_SEGDIR] != NULL && (p = get_abspath(ld, v[K_SEGDIR],
	    "audit.segments_dir", "/var/log/sluice/segments")) != NULL) {
		free(cfg->audit_segments_dir);
		cfg->audit_segments_dir = p;
	}
	set_size(ld, v[K_SEGMAX], "audit", "segment_max", 0, 64 * GIB,
	    &cfg->audit_segment_max);
	set_duration(ld, v[K_SEGAGE], "audit", "segment_age", 0, 366 * DUR_DAY,
	    &cfg->audit_segment_age_s);
	if (v[K_HOST] != NULL && (s = get_string(ld, v[K_HOST], "audit.host_id",
	    "a host id (e.g. gw1)")) != NULL) {
		if (!host_id_ok(s))
			report(ld, line_of(v[K_HOST]), "audit.host_id: %s is not "
			    "a host id; use 1 to 64 characters of A-Z a-z 0-9 . _ "
			    "- (e.g. gw1.example.com)", q(&qb, s));
		else {
			free(cfg->audit_host_id);
			cfg->audit_host_id = dup_or_report(ld,
			    line_of(v[K_HOST]), s);
		}
	}
	if (v[K_SYSLOG] != NULL)
		get_syslog(ld, v[K_SYSLOG], &cfg->audit_syslog);
	if (v[K_PREFIX] != NULL)
		load_audit_prefix(ld, v[K_PREFIX], cfg);
	if (v[K_RETENTION] != NULL)
		load_audit_retention(ld, v[K_RETENTION], cfg);
	load_signing_key(ld, "audit", v[K_SIGN], v[K_KEYRING],
	    &cfg->audit_sign_with, &cfg->audit_keyring);
}

/* ---- store --------------------------------------------------------------- */

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
		if ((why = s3_bucket_problem(rest, blen)) != NULL) {
			report(ld, line_of(n), "%s: %s: the bucket name %s "
			    "(e.g. s3://my-bucket/optional/prefix)", kp,
			    q(&qb, u), why);
			return -1;
		}
		rest = slash != NULL ? slash + 1 : "";
		if ((why = s3_prefix_problem(rest)) != NULL) {
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

/* A copy of endpoint without a trailing '/', or NULL after reporting. */
static char *
parse_endpoint(struct loader *ld, const yaml_node_t *n, const char *e)
{
	struct qbuf qb;
	const char *why;
	size_t len;
	int secret;
	char *d;

	if ((why = s3_endpoint_problem(e, &len, &secret)) != NULL) {
		if (secret)	/* might hold a password: do not echo it */
			report(ld, line_of(n), "store.endpoint: %s", why);
		else
			report(ld, line_of(n), "store.endpoint: %s %s",
			    q(&qb, e), why);
		return NULL;
	}
	if ((d = strndup(e, len)) == NULL)
		report(ld, line_of(n), "out of memory");
	return d;
}

/* ---- store: S3 options (issue 5) ----------------------------------------- */

static const char *const sse_names[] = { "AES256", "aws:kms" };
static const char *const storage_classes[] = {
	"STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
	"GLACIER_IR", "GLACIER", "DEEP_ARCHIVE", "REDUCED_REDUNDANCY",
	"EXPRESS_ONEZONE", "OUTPOSTS", "SNOW"
};
static const char *const canned_acls[] = {
	"private", "bucket-owner-full-control", "bucket-owner-read",
	"public-read", "public-read-write", "authenticated-read",
	"aws-exec-read"
};
static const char *const lock_modes[] = { "COMPLIANCE", "GOVERNANCE" };
static const char *const collision_names[] = { "suffix", "version", "reject" };
#define S3_TAGS_MAX	10

static const char *
tag_problem(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max)
		return max == 128 ? "is longer than 128 characters" :
		    "is longer than 256 characters";
	if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789 _.:/=+-@") != n)
		return "may only contain letters, digits, spaces and _ . : / = "
		    "+ - @";
	return NULL;
}

/* A tags: mapping at kp ("store.tags", "partners[0].tags") into the
 * arrays *keysp and *valsp (allocated here) of *np entries. */
static void
load_tags(struct loader *ld, const yaml_node_t *n, const char *tkp,
    char ***keysp, char ***valsp, size_t *np)
{
	yaml_node_pair_t *pair;
	yaml_node_t *k, *v;
	char kp[KP_MAX];
	struct qbuf qb;
	const char *ks, *vs, *why;
	size_t cnt, i;

	if (n->type != YAML_MAPPING_NODE) {
		report(ld, line_of(n), "%s: expected a mapping of tag "
		    "names to values (e.g. {team: payments}), got %s",
		    tkp, kind_of(n));
		return;
	}
	cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	if (cnt == 0)
		return;
	if (cnt > S3_TAGS_MAX) {
		report(ld, line_of(n), "%s: %zu tags; S3 allows at most "
		    "%d per object; remove some", tkp, cnt, S3_TAGS_MAX);
		return;
	}
	if ((*keysp = calloc(cnt, sizeof(char *))) == NULL ||
	    (*valsp = calloc(cnt, sizeof(char *))) == NULL) {
		report(ld, line_of(n), "out of memory");
		return;
	}
	for (pair = n->data.mapping.pairs.start;
	    pair < n->data.mapping.pairs.top; pair++) {
		if ((k = node(ld, pair->key)) == NULL ||
		    (v = node(ld, pair->value)) == NULL)
			continue;
		if ((ks = get_string(ld, k, tkp, "a tag name (e.g. "
		    "team)")) == NULL)
			continue;
		if ((why = tag_problem(ks, 128)) != NULL || ks[0] == '\0') {
			report(ld, line_of(k), "%s: the tag name %s %s", tkp,
			    q(&qb, ks), why != NULL ? why : "is empty");
			continue;
		}
		(void)xsnprintf(kp, sizeof(kp), "%s.%s", tkp, ks);
		if (strncmp(ks, "aws:", 4) == 0) {
			report(ld, line_of(k), "%s: tag names starting with "
			    "\"aws:\" are reserved by AWS; choose another name",
			    kp);
			continue;
		}
		for (i = 0; i < *np; i++)
			if (strcmp((*keysp)[i], ks) == 0)
				break;
		if (i < *np) {
			report(ld, line_of(k), "%s: duplicate tag; remove one",
			    kp);
			continue;
		}
		if (v->type == YAML_SCALAR_NODE && is_null(v) &&
		    v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
			report(ld, line_of(v), "%s: no value; give one, or "
			    "write \"\" for an empty tag value", kp);
			continue;
		}
		if ((vs = get_string(ld, v, kp, "a tag value")) == NULL)
			continue;
		if ((why = tag_problem(vs, 256)) != NULL) {
			report(ld, line_of(v), "%s: the value %s %s", kp,
			    q(&qb, vs), why);
			continue;
		}
		if (((*keysp)[*np] = dup_or_report(ld, line_of(k),
		    ks)) == NULL)
			continue;
		if (((*valsp)[*np] = dup_or_report(ld, line_of(v),
		    vs)) == NULL) {
			free((*keysp)[*np]);
			(*keysp)[*np] = NULL;
			continue;
		}
		(*np)++;
	}
}

static void
load_object_lock(struct loader *ld, const yaml_node_t *n,
    struct store_config *st)
{
	static const char *const keys[] = { "mode", "days" };
	const char *kp = "store.object_lock";
	yaml_node_t *v[2];
	int64_t days;
	int i, nerr0;

	nerr0 = ld->nerr;
	if (walk_map(ld, n, kp, keys, 2, v, NULL) != 0)
		return;
	if (ld->nerr != nerr0)
		return;
	if (v[0] == NULL || v[1] == NULL) {
		report(ld, line_of(n), "%s: needs both mode and days (e.g. "
		    "{mode: COMPLIANCE, days: 2555})", kp);
		return;
	}
	if ((i = get_choice(ld, v[0], "store.object_lock.mode", lock_modes,
	    2)) < 0)
		return;
	if (get_int(ld, v[1], "store.object_lock.days", 1, 36500, &days) != 0)
		return;
	if ((st->object_lock_mode = dup_or_report(ld, line_of(v[0]),
	    lock_modes[i])) != NULL)
		st->object_lock_days = (int)days;
}

/* NULL if s is curl's pin syntax (sha256//BASE64, several joined by
 * ';'), else why not. */
static const char *
pin_problem(const char *s)
{
	const char *p = s, *e;
	uint8_t *raw;
	size_t n, rawlen;

	for (;;) {
		if (strncmp(p, "sha256//", 8) != 0)
			return "must be sha256//BASE64 (several joined with "
			    "';') or an absolute path to a public key file";
		p += 8;
		e = p + strcspn(p, ";");
		n = (size_t)(e - p);
		if ((raw = base64_decode(p, n, &rawlen)) == NULL)
			return "has a pin that is not base64; get it with: "
			    "openssl x509 -pubkey -noout | openssl pkey "
			    "-pubin -outform der | openssl dgst -sha256 "
			    "-binary | base64";
		free(raw);
		if (rawlen != 32)
			return "has a pin that is not a SHA-256 digest (32 "
			    "bytes, 44 base64 characters)";
		if (*e == '\0')
			return NULL;
		p = e + 1;
	}
}

static void
load_store_options(struct loader *ld, yaml_node_t *const *v,
    const int *lines, struct store_config *st)
{
	enum { O_SSE, O_KMS, O_CLASS, O_ACL, O_TAGS, O_LOCK, O_CA, O_PIN,
	    O_COLLISION, O_N };
	static const char *const names[] = {
		"sse", "kms_key_id", "storage_class", "acl", "tags",
		"object_lock", "ca_file", "pinned_pubkey"
	};
	char path[4096];
	struct qbuf qb;
	const char *s;
	int i;

	if (v[O_SSE] != NULL && (i = get_choice(ld, v[O_SSE], "store.sse",
	    sse_names, 2)) >= 0)
		st->sse = dup_or_report(ld, line_of(v[O_SSE]), sse_names[i]);
	if (v[O_KMS] != NULL && (s = get_string(ld, v[O_KMS],
	    "store.kms_key_id", "a KMS key id, ARN or alias")) != NULL) {
		if (st->sse == NULL || strcmp(st->sse, "aws:kms") != 0)
			report(ld, line_of(v[O_KMS]), "store.kms_key_id: "
			    "only used with sse: aws:kms; add sse: aws:kms or "
			    "remove kms_key_id");
		else if (s[0] == '\0' || strlen(s) > 2048 ||
		    strpbrk(s, " \t") != NULL)
			report(ld, line_of(v[O_KMS]), "store.kms_key_id: %s "
			    "is not a KMS key id, ARN or alias/NAME", q(&qb, s));
		else
			st->kms_key_id = dup_or_report(ld,
			    line_of(v[O_KMS]), s);
	}
	if (st->sse != NULL && strcmp(st->sse, "aws:kms") == 0 &&
	    v[O_KMS] == NULL)
		warn(ld, line_of(v[O_SSE]), "store.sse: aws:kms without "
		    "kms_key_id uses the bucket's default KMS key (aws/s3); "
		    "set kms_key_id to choose the key");
	if (v[O_CLASS] != NULL && (i = get_choice(ld, v[O_CLASS],
	    "store.storage_class", storage_classes,
	    sizeof(storage_classes) / sizeof(storage_classes[0]))) >= 0)
		st->storage_class = dup_or_report(ld, line_of(v[O_CLASS]),
		    storage_classes[i]);
	if (v[O_ACL] != NULL && (i = get_choice(ld, v[O_ACL], "store.acl",
	    canned_acls, sizeof(canned_acls) / sizeof(canned_acls[0]))) >= 0) {
		st->acl = dup_or_report(ld, line_of(v[O_ACL]), canned_acls[i]);
		if (strncmp(canned_acls[i], "public-", 7) == 0 ||
		    strcmp(canned_acls[i], "authenticated-read") == 0)
			warn(ld, line_of(v[O_ACL]), "store.acl: %s lets "
			    "others read every stored file; use "
			    "bucket-owner-full-control or private",
			    canned_acls[i]);
	}
	if (v[O_TAGS] != NULL)
		load_tags(ld, v[O_TAGS], "store.tags", &st->tag_keys,
		    &st->tag_values, &st->ntags);
	if (v[O_LOCK] != NULL)
		load_object_lock(ld, v[O_LOCK], st);
	if (v[O_CA] != NULL && (s = get_string(ld, v[O_CA], "store.ca_file",
	    "an absolute path to a PEM file")) != NULL) {
		if (s[0] != '/')
			report(ld, line_of(v[O_CA]), "store.ca_file: %s must be "
			    "an absolute path (e.g. /etc/ssl/private-ca.pem)",
			    q(&qb, s));
		else if (get_file(ld, v[O_CA], "store.ca_file", s, FILE_NOT_GW,
		    path, sizeof(path)) == 0)
			st->ca_file = dup_or_report(ld, line_of(v[O_CA]), path);
	}
	if (v[O_PIN] != NULL && (s = get_string(ld, v[O_PIN],
	    "store.pinned_pubkey", "sha256//BASE64 or an absolute path")) !=
	    NULL) {
		const char *why;

		if (s[0] == '/') {
			if (get_file(ld, v[O_PIN], "store.pinned_pubkey", s,
			    FILE_NOT_GW, path, sizeof(path)) == 0)
				st->pinned_pubkey = dup_or_report(ld,
				    line_of(v[O_PIN]), path);
		} else if ((why = pin_problem(s)) != NULL)
			report(ld, line_of(v[O_PIN]), "store.pinned_pubkey: "
			    "%s", why);
		else
			st->pinned_pubkey = dup_or_report(ld,
			    line_of(v[O_PIN]), s);
	}
	if (v[O_COLLISION] != NULL && (i = get_choice(ld, v[O_COLLISION],
	    "store.collision", collision_names, 3)) >= 0)
		st->collision = i == 0 ? COLLISION_SUFFIX : i == 1 ?
		    COLLISION_VERSION : COLLISION_REJECT;
	if (st->kind == STORE_FILE)
		for (i = 0; i < O_COLLISION; i++)
			if (v[i] != NULL)
				warn(ld, lines[i], "store.%s: ignored by a "
				    "file:// store; remove it", names[i]);
}

/* store.quarantine_prefix (issue 4): where rejected files are copied. */
static void
load_quarantine_prefix(struct loader *ld, const yaml_node_t *n,
    struct store_config *st)
{
	const char *kp = "store.quarantine_prefix", *s, *why;
	struct qbuf qb;
	size_t len, i;

	if ((s = get_string(ld, n, kp, "a key prefix such as quarantine/")) ==
	    NULL)
		return;
	len = strlen(s);
	if (len == 0) {
		report(ld, line_of(n), "%s: must not be empty; remove the key "
		    "to keep rejected files only in state_dir/quarantine/",
		    kp);
		return;
	}
	why = strpbrk(s, " \t") != NULL ? "blanks are not allowed" :
	    s3_prefix_problem(s);
	for (i = 0; why == NULL && i < len; i++)
		if ((unsigned char)s[i] >= 0x7f)
			why = "only printable ASCII is allowed";
	if (why != NULL) {
		report(ld, line_of(n), "%s: %s: %s (e.g. quarantine/)", kp,
		    q(&qb, s), why);
		return;
	}
	if ((st->quarantine_prefix = malloc(len + 2)) == NULL) {
		report(ld, line_of(n), "out of memory");
		return;
	}
	memcpy(st->quarantine_prefix, s, len + 1);
	if (s[len - 1] != '/') {
		st->quarantine_prefix[len] = '/';
		st->quarantine_prefix[len + 1] = '\0';
	}
	if (st->prefix != NULL && strcmp(st->prefix,
	    st->quarantine_prefix) == 0)
		report(ld, line_of(n), "%s: %s is the store URL's prefix, so "
		    "rejected files would mix with accepted ones; use another "
		    "prefix (e.g. quarantine/)", kp, q(&qb, s));
}

static void
load_store(struct loader *ld, const yaml_node_t *n, int keyline,
    struct config *cfg)
{
	static const char *const keys[] = {
		"url", "region", "endpoint", "path_style",
		/* issue 5, in load_store_options()'s order */
		"sse", "kms_key_id", "storage_class", "acl", "tags",
		"object_lock", "ca_file", "pinned_pubkey", "collision",
		"quarantine_prefix",	/* issue 4 */
		"legal_hold"		/* issue 12 */
	};
	enum { K_URL, K_REGION, K_ENDPOINT, K_PATH_STYLE, K_OPTIONS,
	    K_QPREFIX = K_OPTIONS + 9, K_LEGAL, K_N };
	struct store_config *st = &cfg->store;
	yaml_node_t *v[K_N];
	int kl[K_N];
	struct qbuf qb;
	const char *s, *why, *region = NULL, *endpoint = NULL;
	int ps = -1;

	st->line = keyline;
	if (walk_map(ld, n, "store", keys, K_N, v, kl) != 0)
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
	load_store_options(ld, v + K_OPTIONS, kl + K_OPTIONS, st);
	if (v[K_QPREFIX] != NULL)
		load_quarantine_prefix(ld, v[K_QPREFIX], st);
	if (v[K_LEGAL] != NULL && (st->legal_hold = get_bool(ld, v[K_LEGAL],
	    "store.legal_hold")) < 0)
		st->legal_hold = 0;
	if (st->legal_hold && st->kind == STORE_FILE)
		report(ld, line_of(v[K_LEGAL]), "store.legal_hold: only an "
		    "s3:// store (a bucket with Object Lock) can hold files; "
		    "remove legal_hold or use an s3:// url");
	if (st->kind == STORE_FILE) {
		/* file:// stores ignore region, endpoint and path_style. */
		st->region = dup_or_report(ld, st->line, DEFAULT_REGION);
		return;
	}

	/* S3, or a URL that was wrong: check the rest all the same. */
	if (region != NULL) {
		if ((why = s3_region_problem(region)) != NULL)
			report(ld, line_of(v[K_REGION]), "store.region: %s %s "
			    "(e.g. us-east-1)", q(&qb, region), why);
		else
			st->region = dup_or_report(ld,
			    line_of(v[K_REGION]), region);
	} else if ((s = getenv("AWS_REGION")) != NULL && s[0] != '\0') {
		if ((why = s3_region_problem(s)) != NULL)
			report(ld, st->line, "store.region: $AWS_REGION %s %s; "
			    "set store.region", q(&qb, s), why);
		else
			st->region = dup_or_report(ld, st->line, s);
	} else
		st->region = dup_or_report(ld, st->line, DEFAULT_REGION);
	if (endpoint != NULL)
		st->endpoint = parse_endpoint(ld, v[K_ENDPOINT], endpoint);
	st->path_style = ps >= 0 ? ps : endpoint != NULL;
}

/* ---- partners: keys ------------------------------------------------------ */

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
		if (pubkey_line_problem(s, &norm, why, sizeof(why)) != NULL) {
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
	if (!pubkey_line_like(s)) {
		load_key_file(ld, n, kp, s, p, cap);
		return;
	}
	if (pubkey_line_problem(s, &norm, why, sizeof(why)) != NULL) {
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

static void
load_cidr_entry(struct loader *ld, const yaml_node_t *n, const char *kp,
    struct cidr *arr, size_t *cnt)
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
	arr[(*cnt)++] = c;
}

/*
 * A CIDR block or a list of them at kp into *arrp and *cntp. An empty list is
 * an error unless empty_ok (an empty allow list would refuse everyone).
 */
static void
load_cidr_list(struct loader *ld, const yaml_node_t *n, const char *kp,
    struct cidr **arrp, size_t *cntp, int empty_ok)
{
	yaml_node_item_t *it;
	yaml_node_t *item;
	char kpi[KP_MAX];
	size_t cnt, i;

	cnt = n->type == YAML_SEQUENCE_NODE ?
	    (size_t)(n->data.sequence.items.top - n->data.sequence.items.start)
	    : 1;
	if (cnt == 0) {
		if (!empty_ok)
			report(ld, line_of(n), "%s: the list is empty and "
			    "would refuse every address; remove %s to allow "
			    "any address", kp, strrchr(kp, '.') != NULL ?
			    strrchr(kp, '.') + 1 : kp);
		return;
	}
	if ((*arrp = calloc(cnt, sizeof(**arrp))) == NULL) {
		report(ld, line_of(n), "out of memory");
		return;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		load_cidr_entry(ld, n, kp, *arrp, cntp);
		return;
	}
	for (i = 0, it = n->data.sequence.items.start;
	    it < n->data.sequence.items.top; it++, i++) {
		if ((item = node(ld, *it)) == NULL)
			continue;
		(void)xsnprintf(kpi, sizeof(kpi), "%s[%zu]", kp, i);
		load_cidr_entry(ld, item, kpi, *arrp, cntp);
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

static void load_partner_issue34(struct loader *, yaml_node_t *const *,
    const char *, const struct config *, struct partner *);

/* Issue 12: the partner's storage_class and tags (overriding the store's). */
static void
load_partner_s3(struct loader *ld, const yaml_node_t *cls,
    const yaml_node_t *tags, const char *kp, struct partner *p)
{
	char kpk[KP_MAX];
	int i;

	if (cls != NULL) {
		join_kp(kpk, sizeof(kpk), kp, "storage_class");
		if ((i = get_choice(ld, cls, kpk, storage_classes,
		    sizeof(storage_classes) / sizeof(storage_classes[0]))) >= 0)
			p->storage_class = dup_or_report(ld, line_of(cls),
			    storage_classes[i]);
	}
	if (tags != NULL) {
		join_kp(kpk, sizeof(kpk), kp, "tags");
		load_tags(ld, tags, kpk, &p->tag_keys, &p->tag_values,
		    &p->ntags);
	}
}

/*
 * A partner's receipts: true|false, or a mapping {store: true|false} (its
 * receipts on, the copy in the store as it says).
 */
static void
load_partner_receipts(struct loader *ld, const yaml_node_t *n,
    const char *kp, const struct config *cfg, struct partner *p)
{
	static const char *const keys[] = { "store" };
	yaml_node_t *v[1];
	char kpk[KP_MAX], kps[KP_MAX];
	int b;

	p->receipts = cfg->receipts.enabled;
	p->receipts_store = cfg->receipts.store;
	if (n == NULL)
		return;
	join_kp(kpk, sizeof(kpk), kp, "receipts");
	if (n->type == YAML_MAPPING_NODE) {
		if (walk_map(ld, n, kpk, keys, 1, v, NULL) != 0 ||
		    v[0] == NULL)
			return;
		join_kp(kps, sizeof(kps), kpk, "store");
		if ((b = get_bool(ld, v[0], kps)) >= 0)
			p->receipts_store = b;
		if (b == 1 && !cfg->receipts.enabled)
			warn(ld, line_of(v[0]), "%s: true has no effect while "
			    "the top-level receipts: is false", kps);
		return;
	}
	if ((b = get_bool(ld, n, kpk)) >= 0)
		p->receipts = b && cfg->receipts.enabled;
	if (b == 1 && !cfg->receipts.enabled)
		warn(ld, line_of(n), "%s: true has no effect while the "
		    "top-level receipts: is false", kpk);
}

static void
load_partner(struct loader *ld, const yaml_node_t *n, size_t idx,
    struct config *cfg)
{
	static const char *const keys[] = {
		"name", "authorized_keys", "password_hash", "allow_from",
		"object_key",
		/* issues 3 and 4, in load_partner_issue34()'s order */
		"role", "visible_for", "max_sessions", "completion",
		"signature", "duplicate_window", "duplicate_policy",
		"receipts",	/* issue 11 */
		"storage_class", "tags"	/* issue 12 */
	};
	enum { K_NAME, K_KEYS, K_HASH, K_ALLOW, K_OBJKEY, K_MORE,
	    K_RECEIPTS = K_MORE + 7, K_CLASS, K_TAGS, K_N };
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
		else if ((why = policy_hash_problem(s)) != NULL)
			report(ld, line_of(v[K_HASH]), "%s: %s", kpk, why);
		else
			p->password_hash = dup_or_report(ld,
			    line_of(v[K_HASH]), s);
		p->has_password = p->password_hash != NULL;
	}
	if (v[K_ALLOW] != NULL) {
		join_kp(kpk, sizeof(kpk), kp, "allow_from");
		load_cidr_list(ld, v[K_ALLOW], kpk, &p->allow_from,
		    &p->nallow_from, 0);
	}

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

	load_partner_issue34(ld, v + K_MORE, kp, cfg, p);

	load_partner_receipts(ld, v[K_RECEIPTS], kp, cfg, p);
	load_partner_s3(ld, v[K_CLASS], v[K_TAGS], kp, p);
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

/* ---- server -------------------------------------------------------------- */

/* Defaults (config.h documents them next to each field). */
static void
server_defaults(struct server_config *sv)
{
	sv->max_sessions = 256;
	sv->max_sessions_per_partner = 16;
	sv->max_sessions_per_address = 32;
	sv->max_startups = 64;
	sv->max_startups_begin = 32;
	sv->max_startups_rate = 30;
	sv->max_startups_per_address = 8;
	sv->login_grace_s = 60;
	sv->idle_timeout_s = 1800;
	sv->max_auth_tries = 6;
	sv->max_file_size = 0;
	sv->max_open_handles = 64;
	sv->min_free_space = GIB;
	sv->visible_for_s = DUR_DAY;
	sv->ban_failures = 10;
	sv->ban_window_s = 600;
	sv->ban_duration_s = 900;
	sv->shutdown_grace_s = 30;
}

/* One algorithm name of list l: 0 if usable (after a warning when weak),
 * else -1. What is weak, known and supported is policy/algos.c's to say. */
static int
check_algo(struct loader *ld, int line, const char *kp, enum algo_list l,
    const char *a)
{
	const char *const *names = algo_known(l);
	const char *why, *best = NULL, *what = algo_what(l);
	struct qbuf qb;
	size_t i, d, bestd = 4;

	if (strspn(a, "abcdefghijklmnopqrstuvwxyz0123456789-@.") != strlen(a)) {
		report(ld, line, "%s: %s is not an algorithm name", kp,
		    q(&qb, a));
		return -1;
	}
	why = algo_weak(a);
	if (algo_supported(l, a)) {
		if (why != NULL)
			warn(ld, line, "%s: %s is weak (%s); remove it", kp, a,
			    why);
		return 0;
	}
	for (i = 0; names[i] != NULL; i++)
		if (strcmp(a, names[i]) == 0)
			break;
	if (why != NULL && names[i] != NULL) {
		report(ld, line, "%s: %s is weak (%s) and this server does not "
		    "support it; remove it", kp, a, why);
		return -1;
	}
	for (i = 0; names[i] != NULL; i++)
		if ((d = edit_distance(a, names[i])) < bestd) {
			bestd = d;
			best = names[i];
		}
	if (best != NULL)
		report(ld, line, "%s: %s is not a %s this server supports; did "
		    "you mean \"%s\"?", kp, q(&qb, a), what, best);
	else
		report(ld, line, "%s: %s is not a %s this server supports "
		    "(e.g. %s); remove it", kp, q(&qb, a), what, names[0]);
	return -1;
}

/*
 * An algorithm list (YAML list, or one "a,b,c" string) into a malloc'd
 * comma-joined string in *dst. Order is kept: it is the preference order.
 */
static void
load_algos(struct loader *ld, const yaml_node_t *n, const char *kp,
    enum algo_list l, char **dst)
{
	yaml_node_item_t *it;
	yaml_node_t *item;
	char kpi[KP_MAX], tok[128], *out = NULL;
	const char *s, *p;
	size_t cnt, i, tl, len = 0, cap = 0;
	int bad = 0;

	cnt = n->type == YAML_SEQUENCE_NODE ?
	    (size_t)(n->data.sequence.items.top - n->data.sequence.items.start)
	    : 1;
	if (cnt == 0 || is_null(n)) {
		report(ld, line_of(n), "%s: the list is empty; name at least "
		    "one algorithm, or remove the key for the secure default",
		    kp);
		return;
	}
	for (i = 0; i < cnt; i++) {
		if (n->type == YAML_SEQUENCE_NODE) {
			it = n->data.sequence.items.start + i;
			if ((item = node(ld, *it)) == NULL)
				continue;
		} else
			item = (yaml_node_t *)n;
		(void)xstrlcpy(kpi, kp, sizeof(kpi));
		if ((s = get_string(ld, item, kpi, "algorithm names (e.g. "
		    "[aes256-gcm@openssh.com, aes256-ctr])")) == NULL) {
			bad = 1;
			continue;
		}
		for (p = s;; p += tl + 1) {
			p += strspn(p, " \t");
			tl = strcspn(p, ",");
			while (tl > 0 && (p[tl - 1] == ' ' || p[tl - 1] == '\t'))
				tl--;
			if (tl == 0 || tl >= sizeof(tok)) {
				report(ld, line_of(item), "%s: an empty or "
				    "over-long name in the list; write one "
				    "name per list item", kp);
				bad = 1;
			} else {
				memcpy(tok, p, tl);
				tok[tl] = '\0';
				if (check_algo(ld, line_of(item), kp, l, tok) !=
				    0)
					bad = 1;
				else if (len + tl + 2 > cap) {
					char *no;

					cap = (len + tl + 2) * 2;
					if ((no = realloc(out, cap)) == NULL) {
						report(ld, line_of(item),
						    "out of memory");
						free(out);
						return;
					}
					out = no;
				}
				if (!bad) {
					if (len > 0)
						out[len++] = ',';
					memcpy(out + len, tok, tl);
					len += tl;
					out[len] = '\0';
				}
			}
			p += strcspn(p, ",");
			if (*p == '\0')
				break;
			tl = 0;
		}
	}
	if (bad || out == NULL) {
		free(out);
		return;
	}
	free(*dst);
	*dst = out;
}

static void
load_algorithms(struct loader *ld, const yaml_node_t *n,
    struct server_config *sv)
{
	const char *keys[ALGO_NLISTS];
	char **dst[ALGO_NLISTS] = { &sv->kex, &sv->ciphers, &sv->macs,
	    &sv->host_key_algorithms, &sv->pubkey_algorithms };
	yaml_node_t *v[ALGO_NLISTS];
	char kp[KP_MAX];
	int l;

	for (l = 0; l < ALGO_NLISTS; l++)
		keys[l] = algo_key(l);
	if (walk_map(ld, n, "server.algorithms", keys, ALGO_NLISTS, v,
	    NULL) != 0)
		return;
	for (l = 0; l < ALGO_NLISTS; l++) {
		if (v[l] == NULL)
			continue;
		join_kp(kp, sizeof(kp), "server.algorithms", keys[l]);
		load_algos(ld, v[l], kp, l, dst[l]);
	}
}

/* A user name key (server.user, user): must exist and not be root. */
static char *
load_user(struct loader *ld, const yaml_node_t *n, const char *kp)
{
	const char *s;
	struct passwd *pw;
	struct qbuf qb;

	if ((s = get_string(ld, n, kp, "a user name (e.g. sluice)")) == NULL)
		return NULL;
	if (s[0] == '\0' || strlen(s) > 32 ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-.") != strlen(s) ||
	    s[0] == '-') {
		report(ld, line_of(n), "%s: %s is not a user name (e.g. "
		    "sluice)", kp, q(&qb, s));
		return NULL;
	}
	errno = 0;
	if ((pw = getpwnam(s)) == NULL) {
		report(ld, line_of(n), "%s: there is no user %s; create it "
		    "(useradd --system --user-group --no-create-home --shell "
		    "/usr/sbin/nologin %s, or deploy/create-users.sh) or "
		    "remove %s to use the default", kp, q(&qb, s), s, kp);
		return NULL;
	}
	if (pw->pw_uid == 0) {
		report(ld, line_of(n), "%s: %s is root; sluice's roles must "
		    "run as unprivileged users (e.g. sluice)", kp, q(&qb, s));
		return NULL;
	}
	return dup_or_report(ld, line_of(n), s);
}

static void
load_ban(struct loader *ld, const yaml_node_t *n, struct server_config *sv)
{
	static const char *const keys[] = { "failures", "window", "duration" };
	enum { K_FAILURES, K_WINDOW, K_DURATION, K_N };
	yaml_node_t *v[K_N];

	if (walk_map(ld, n, "server.ban", keys, K_N, v, NULL) != 0)
		return;
	set_int(ld, v[K_FAILURES], "server.ban", "failures", 1,
	    GUARD_MAX_FAILURES,
	    &sv->ban_failures);
	set_duration(ld, v[K_WINDOW], "server.ban", "window", 1, 30 * DUR_DAY,
	    &sv->ban_window_s);
	set_duration(ld, v[K_DURATION], "server.ban", "duration", 1,
	    30 * DUR_DAY, &sv->ban_duration_s);
}

/*
 * server.proxy_protocol: {from: [CIDR...]}, the load balancers whose
 * connections start with a PROXY v2 header (server/proxy.h). Once set,
 * every other address is refused.
 */
static void
load_proxy_protocol(struct loader *ld, const yaml_node_t *n,
    struct server_config *sv)
{
	static const char *const keys[] = { "from" };
	yaml_node_t *v[1];

	if (walk_map(ld, n, "server.proxy_protocol", keys, 1, v, NULL) != 0)
		return;
	if (v[0] == NULL || is_null(v[0])) {
		report(ld, line_of(n), "server.proxy_protocol: \"from\" is "
		    "required: the load balancer addresses (CIDR blocks) that "
		    "send PROXY v2 headers; remove proxy_protocol to accept "
		    "direct connections");
		return;
	}
	load_cidr_list(ld, v[0], "server.proxy_protocol.from",
	    &sv->proxy_from, &sv->nproxy_from, 1);
	if (v[0]->type == YAML_SEQUENCE_NODE && v[0]->data.sequence.items.top ==
	    v[0]->data.sequence.items.start)
		report(ld, line_of(v[0]), "server.proxy_protocol.from: the "
		    "list is empty and would refuse every connection; name the "
		    "load balancers, or remove proxy_protocol");
}

/*
 * server.max_startups: a whole number N (a hard cap: the (N+1)th
 * unauthenticated connection is refused), or "start:rate:full" as OpenSSH's
 * MaxStartups: from start connections on, refuse new ones at random, rate%
 * of them at start rising linearly to 100% at full.
 */
static void
load_max_startups(struct loader *ld, const yaml_node_t *n,
    struct server_config *sv)
{
	static const char kp[] = "server.max_startups";
	static const char *const part[] = { "start", "rate", "full" };
	static const int64_t lo[] = { 1, 1, 1 }, hi[] = { 100000, 100, 100000 };
	struct qbuf qb;
	const char *s, *p;
	int64_t v[3];
	size_t i, len;
	char num[24];

	if ((s = get_string(ld, n, kp, "a whole number or start:rate:full "
	    "(e.g. 32:30:64)")) == NULL)
		return;
	if (strchr(s, ':') == NULL) {
		if (get_int(ld, n, kp, 1, 100000, &v[2]) == 0) {
			sv->max_startups = (int)v[2];
			sv->max_startups_begin = (int)v[2];
			sv->max_startups_rate = 100;
		}
		return;
	}
	for (i = 0, p = s; i < 3; i++, p += len + 1) {
		len = strcspn(p, ":");
		if (len == 0 || len >= sizeof(num) ||
		    strspn(p, "0123456789") != len ||
		    (i < 2) != (p[len] == ':')) {
			report(ld, line_of(n), "%s: %s is not a whole number "
			    "or start:rate:full; write e.g. 32:30:64 (refuse "
			    "at random from 32 unauthenticated connections, "
			    "30%% at first, all at 64)", kp, q(&qb, s));
			return;
		}
		memcpy(num, p, len);
		num[len] = '\0';
		if (parse_int64(num, lo[i], hi[i], &v[i]) != 0) {
			report(ld, line_of(n), "%s: %s: %s %s is out of range; "
			    "use %lld to %lld", kp, q(&qb, s), part[i], num,
			    (long long)lo[i], (long long)hi[i]);
			return;
		}
	}
	if (v[0] > v[2]) {
		report(ld, line_of(n), "%s: %s: start %lld is above full %lld; "
		    "write start:rate:full with start <= full (e.g. 32:30:64)",
		    kp, q(&qb, s), (long long)v[0], (long long)v[2]);
		return;
	}
	sv->max_startups_begin = (int)v[0];
	sv->max_startups_rate = (int)v[1];
	sv->max_startups = (int)v[2];
}

static void
load_server(struct loader *ld, const yaml_node_t *n, struct config *cfg)
{
	static const char *const keys[] = {
		"max_sessions", "max_sessions_per_partner",
		"max_sessions_per_address", "max_startups",
		"max_startups_per_address", "login_grace_time", "idle_timeout",
		"max_auth_tries", "max_file_size", "max_open_handles",
		"min_free_space", "visible_for", "user", "allow_from",
		"deny_from", "algorithms", "ban", "shutdown_grace",
		"proxy_protocol"
	};
	enum { K_MAXS, K_MAXS_P, K_MAXS_A, K_MAXST, K_MAXST_A, K_GRACE,
	    K_IDLE, K_TRIES, K_FSIZE, K_HANDLES, K_FREE, K_VISIBLE, K_USER,
	    K_ALLOW, K_DENY, K_ALGOS, K_BAN, K_SHUTDOWN, K_PROXY, K_N };
	struct server_config *sv = &cfg->server;
	const char *kp = "server";
	yaml_node_t *v[K_N];

	if (walk_map(ld, n, kp, keys, K_N, v, NULL) != 0)
		return;
	set_int(ld, v[K_MAXS], kp, "max_sessions", 1, 100000,
	    &sv->max_sessions);
	set_int(ld, v[K_MAXS_P], kp, "max_sessions_per_partner", 1, 100000,
	    &sv->max_sessions_per_partner);
	set_int(ld, v[K_MAXS_A], kp, "max_sessions_per_address", 1, 100000,
	    &sv->max_sessions_per_address);
	if (v[K_MAXST] != NULL)
		load_max_startups(ld, v[K_MAXST], sv);
	set_int(ld, v[K_MAXST_A], kp, "max_startups_per_address", 1, 100000,
	    &sv->max_startups_per_address);
	set_duration(ld, v[K_GRACE], kp, "login_grace_time", 1, 3600,
	    &sv->login_grace_s);
	set_duration(ld, v[K_IDLE], kp, "idle_timeout", 1, 30 * DUR_DAY,
	    &sv->idle_timeout_s);
	set_int(ld, v[K_TRIES], kp, "max_auth_tries", 1, 100,
	    &sv->max_auth_tries);
	set_size(ld, v[K_FSIZE], kp, "max_file_size", 0, 5 * TIB,
	    &sv->max_file_size);
	set_int(ld, v[K_HANDLES], kp, "max_open_handles", 1, 4096,
	    &sv->max_open_handles);
	set_size(ld, v[K_FREE], kp, "min_free_space", 0, INT64_MAX,
	    &sv->min_free_space);
	set_duration(ld, v[K_VISIBLE], kp, "visible_for", 0, DUR_LONG,
	    &sv->visible_for_s);
	set_duration(ld, v[K_SHUTDOWN], kp, "shutdown_grace", 0, 3600,
	    &sv->shutdown_grace_s);
	if (v[K_USER] != NULL)
		sv->user = load_user(ld, v[K_USER], "server.user");
	if (v[K_ALLOW] != NULL)
		load_cidr_list(ld, v[K_ALLOW], "server.allow_from",
		    &sv->allow_from, &sv->nallow_from, 0);
	if (v[K_DENY] != NULL && !is_null(v[K_DENY]))
		load_cidr_list(ld, v[K_DENY], "server.deny_from",
		    &sv->deny_from, &sv->ndeny_from, 1);
	if (v[K_ALGOS] != NULL)
		load_algorithms(ld, v[K_ALGOS], sv);
	if (v[K_BAN] != NULL)
		load_ban(ld, v[K_BAN], sv);
	if (v[K_PROXY] != NULL && !is_null(v[K_PROXY]))
		load_proxy_protocol(ld, v[K_PROXY], sv);
}

/* ---- roles --------------------------------------------------------------- */

static const char *const perm_names[] = {
	"upload", "list", "read", "overwrite", "rename", "delete", "mkdir",
	"all"
};
static const unsigned perm_bits[] = {
	PERM_UPLOAD, PERM_LIST, PERM_READ, PERM_OVERWRITE, PERM_RENAME,
	PERM_DELETE, PERM_MKDIR, PERM_ALL
};
#define NPERMS	(sizeof(perm_names) / sizeof(perm_names[0]))
#define ROLES_MAX	1000

static const char *name_problem(const char *);

/* One permission name at kp into *perms; 0, or -1 after reporting. */
static int
load_perm(struct loader *ld, const yaml_node_t *n, const char *kp,
    unsigned *perms)
{
	int i;

	if ((i = get_choice(ld, n, kp, perm_names, NPERMS)) < 0)
		return -1;
	*perms |= perm_bits[i];
	return 0;
}

static void
load_roles(struct loader *ld, const yaml_node_t *n, struct config *cfg)
{
	yaml_node_pair_t *pair;
	yaml_node_item_t *it;
	yaml_node_t *k, *v, *item;
	struct role *r;
	char kp[KP_MAX], kpi[KP_MAX];
	struct qbuf qb;
	const char *name, *why;
	size_t cnt = 0, i, j;
	unsigned perms;
	int bad;

	if (n != NULL && n->type != YAML_MAPPING_NODE && !is_null(n)) {
		report(ld, line_of(n), "roles: expected a mapping of role "
		    "names to permission lists (e.g. auditor: [list, read]), "
		    "got %s", kind_of(n));
		n = NULL;
	}
	if (n != NULL && n->type == YAML_MAPPING_NODE)
		cnt = (size_t)(n->data.mapping.pairs.top -
		    n->data.mapping.pairs.start);
	if (cnt > ROLES_MAX) {
		report(ld, line_of(n), "roles: more than %d roles", ROLES_MAX);
		cnt = 0;
	}
	/* Allocated once and never grown: partners point into it. */
	if ((cfg->roles = calloc(2 + cnt, sizeof(*cfg->roles))) == NULL) {
		report(ld, 1, "out of memory");
		return;
	}
	cfg->roles[0].name = dup_or_report(ld, 1, "dropbox");
	cfg->roles[0].perms = PERM_UPLOAD | PERM_LIST | PERM_RENAME |
	    PERM_MKDIR;
	cfg->roles[1].name = dup_or_report(ld, 1, "owner");
	cfg->roles[1].perms = PERM_ALL;
	cfg->nroles = 2;
	if (cnt == 0)
		return;
	for (pair = n->data.mapping.pairs.start;
	    pair < n->data.mapping.pairs.top; pair++) {
		if ((k = node(ld, pair->key)) == NULL ||
		    (v = node(ld, pair->value)) == NULL)
			continue;
		if ((name = get_string(ld, k, "roles", "a role name (e.g. "
		    "auditor)")) == NULL)
			continue;
		if ((why = name_problem(name)) != NULL) {
			report(ld, line_of(k), "roles: the role name %s %s",
			    q(&qb, name), why);
			continue;
		}
		(void)xsnprintf(kp, sizeof(kp), "roles.%s", name);
		for (j = 0; j < cfg->nroles; j++)
			if (strcmp(cfg->roles[j].name != NULL ?
			    cfg->roles[j].name : "", name) == 0)
				break;
		if (j < 2) {
			report(ld, line_of(k), "%s: \"%s\" is a built-in role "
			    "and cannot be redefined; choose another name",
			    kp, name);
			continue;
		}
		if (j < cfg->nroles) {
			report(ld, line_of(k), "%s: duplicate role (first on "
			    "line %d); remove one", kp, cfg->roles[j].line);
			continue;
		}
		perms = 0;
		bad = 0;
		if (v->type == YAML_SEQUENCE_NODE) {
			if (v->data.sequence.items.top ==
			    v->data.sequence.items.start) {
				report(ld, line_of(v), "%s: the role grants "
				    "nothing; list permissions (upload, list, "
				    "read, overwrite, rename, delete, mkdir or "
				    "all) or remove the role", kp);
				bad = 1;
			}
			for (i = 0, it = v->data.sequence.items.start;
			    it < v->data.sequence.items.top; it++, i++) {
				if ((item = node(ld, *it)) == NULL)
					continue;
				(void)xsnprintf(kpi, sizeof(kpi), "%s[%zu]",
				    kp, i);
				if (load_perm(ld, item, kpi, &perms) != 0)
					bad = 1;
			}
		} else if (load_perm(ld, v, kp, &perms) != 0)
			bad = 1;
		/* Keep the name even when bad, so partners naming it do not
		 * get a second, misleading error. */
		r = &cfg->roles[cfg->nroles++];
		r->name = dup_or_report(ld, line_of(k), name);
		r->perms = bad ? 0 : perms;
		r->line = line_of(k);
	}
}

const struct role *
config_role(const struct config *cfg, const char *name)
{
	size_t i;

	if (cfg == NULL || name == NULL)
		return NULL;
	for (i = 0; i < cfg->nroles; i++)
		if (cfg->roles[i].name != NULL &&
		    strcmp(cfg->roles[i].name, name) == 0)
			return &cfg->roles[i];
	return NULL;
}

/* ---- uploader ------------------------------------------------------------ */

#define S3_PART_MIN	(5 * MIB)
#define S3_PART_MAX	(5 * GIB)

static void
uploader_defaults(struct uploader_config *up)
{
	up->workers = 10;	/* the AWS CLI's max_concurrent_requests */
	up->multipart_threshold = 16 * MIB;
	up->part_size = 8 * MIB;
	up->max_backoff_s = 20;
	up->retention_keep_s = 0;
}

static void
load_retention(struct loader *ld, const yaml_node_t *n,
    struct uploader_config *up)
{
	static const char *const keys[] = { "keep" };
	const char *kp = "uploader.retention";
	yaml_node_t *v[1];
	struct qbuf qb;
	const char *s;
	int nerr0;

	if (n->type == YAML_SCALAR_NODE) {
		if ((s = get_string(ld, n, kp, "delete or {keep: 30d}")) ==
		    NULL)
			return;
		if (strcmp(s, "delete") == 0)
			up->retention_keep_s = 0;
		else
			report(ld, line_of(n), "%s: %s is not valid; use "
			    "delete, or {keep: 30d} to keep stored files in "
			    "archive/ for a while", kp, q(&qb, s));
		return;
	}
	nerr0 = ld->nerr;
	if (walk_map(ld, n, kp, keys, 1, v, NULL) != 0)
		return;
	if (v[0] == NULL && ld->nerr == nerr0) {
		report(ld, line_of(n), "%s: missing keep; use delete or "
		    "{keep: 30d}", kp);
		return;
	}
	set_duration(ld, v[0], kp, "keep", 1, DUR_LONG, &up->retention_keep_s);
}

static void
load_uploader(struct loader *ld, const yaml_node_t *n, struct config *cfg)
{
	static const char *const keys[] = {
		"workers", "multipart_threshold", "part_size", "max_backoff",
		"retention"
	};
	enum { K_WORKERS, K_THRESHOLD, K_PART, K_BACKOFF, K_RETENTION, K_N };
	struct uploader_config *up = &cfg->uploader;
	const char *kp = "uploader";
	yaml_node_t *v[K_N];
	char b1[32], b2[32];

	if (walk_map(ld, n, kp, keys, K_N, v, NULL) != 0)
		return;
	set_int(ld, v[K_WORKERS], kp, "workers", 1, 64, &up->workers);
	set_size(ld, v[K_THRESHOLD], kp, "multipart_threshold", S3_PART_MIN,
	    S3_PART_MAX, &up->multipart_threshold);
	set_size(ld, v[K_PART], kp, "part_size", S3_PART_MIN, S3_PART_MAX,
	    &up->part_size);
	set_duration(ld, v[K_BACKOFF], kp, "max_backoff", 1, 3600,
	    &up->max_backoff_s);
	if (v[K_RETENTION] != NULL)
		load_retention(ld, v[K_RETENTION], up);
	if (up->multipart_threshold >= up->part_size)
		return;
	if (v[K_THRESHOLD] != NULL)
		report(ld, line_of(v[K_THRESHOLD]), "uploader."
		    "multipart_threshold: %s is below part_size %s; make "
		    "multipart_threshold at least part_size",
		    fmt_size(up->multipart_threshold, b1, sizeof(b1)),
		    fmt_size(up->part_size, b2, sizeof(b2)));
	else
		report(ld, line_of(v[K_PART]), "uploader.part_size: %s is "
		    "above multipart_threshold %s (the default); raise "
		    "multipart_threshold to at least part_size",
		    fmt_size(up->part_size, b2, sizeof(b2)),
		    fmt_size(up->multipart_threshold, b1, sizeof(b1)));
}

/* ---- partners: role, completion, signature, duplicates ------------------- */

static const char *const default_temp_patterns[] = {
	"*.part", "*.filepart", "*.tmp"
};

/* A glob for base names: NULL if fine, else why not. */
static const char *
glob_problem(const char *s)
{
	if (s[0] == '\0')
		return "is empty";
	if (strchr(s, '/') != NULL)
		return "contains '/'; patterns match file names, not paths";
	if (fnmatch(s, "x", 0) == 0 && fnmatch(s, "report.csv", 0) == 0)
		return "matches every file name; use a narrower pattern "
		    "(e.g. \"*.part\" or \"*.manifest\")";
	return NULL;
}

static const char *
suffix_problem(const char *s)
{
	if (s[0] == '\0' || strlen(s) > 64)
		return "must be 1 to 64 characters (e.g. \".done\")";
	if (strchr(s, '/') != NULL || strpbrk(s, "*?[") != NULL)
		return "must be a plain suffix without '/' or wildcards "
		    "(e.g. \".done\")";
	return NULL;
}

static void
completion_defaults(struct loader *ld, int line, struct completion_config *c)
{
	size_t i, n = sizeof(default_temp_patterns) /
	    sizeof(default_temp_patterns[0]);

	c->manifest_timeout_s = DUR_DAY;
	c->incomplete_ttl_s = DUR_DAY;
	if ((c->temp_patterns = calloc(n, sizeof(char *))) == NULL) {
		report(ld, line, "out of memory");
		return;
	}
	for (i = 0; i < n; i++)
		if ((c->temp_patterns[c->ntemp_patterns] = dup_or_report(ld,
		    line, default_temp_patterns[i])) != NULL)
			c->ntemp_patterns++;
}

static void
load_completion(struct loader *ld, const yaml_node_t *n, const char *pkp,
    struct partner *p)
{
	static const char *const keys[] = {
		"temp_patterns", "marker", "checksum", "manifest",
		"manifest_timeout", "quiet_seconds", "incomplete_ttl",
		"ship_sidecars"
	};
	static const char *const sums[] = { "sha256", "md5" };
	enum { K_TEMP, K_MARKER, K_SUM, K_MANIFEST, K_MTIMEOUT, K_QUIET,
	    K_TTL, K_SIDECARS, K_N };
	struct completion_config *c = &p->completion;
	yaml_node_t *v[K_N];
	char kp[KP_MAX], kpk[KP_MAX];
	struct qbuf qb;
	const char *s, *why;
	int i;

	join_kp(kp, sizeof(kp), pkp, "completion");
	if (walk_map(ld, n, kp, keys, K_N, v, NULL) != 0)
		return;
	if (v[K_TEMP] != NULL) {
		/* Replaces the default list; [] turns temp names off. */
		config_strv_free(c->temp_patterns, c->ntemp_patterns);
		c->temp_patterns = NULL;
		c->ntemp_patterns = 0;
		join_kp(kpk, sizeof(kpk), kp, "temp_patterns");
		if (!is_null(v[K_TEMP]))
			load_str_list(ld, v[K_TEMP], kpk, "a file name "
			    "pattern (e.g. \"*.part\")", glob_problem,
			    &c->temp_patterns, &c->ntemp_patterns);
	}
	if (v[K_MARKER] != NULL) {
		join_kp(kpk, sizeof(kpk), kp, "marker");
		if ((s = get_string(ld, v[K_MARKER], kpk, "a suffix (e.g. "
		    "\".done\")")) == NULL)
			;
		else if ((why = suffix_problem(s)) != NULL)
			report(ld, line_of(v[K_MARKER]), "%s: %s %s", kpk,
			    q(&qb, s), why);
		else
			c->marker = dup_or_report(ld, line_of(v[K_MARKER]), s);
	}
	if (v[K_SUM] != NULL) {
		join_kp(kpk, sizeof(kpk), kp, "checksum");
		if ((i = get_choice(ld, v[K_SUM], kpk, sums, 2)) >= 0)
			c->checksum = dup_or_report(ld, line_of(v[K_SUM]),
			    sums[i]);
	}
	if (c->marker != NULL && c->checksum != NULL &&
	    c->marker[0] == '.' && strcmp(c->marker + 1, c->checksum) == 0)
		report(ld, line_of(v[K_MARKER]), "%s.marker: \"%s\" is also "
		    "the checksum file's suffix; choose another marker (e.g. "
		    "\".done\")", kp, c->marker);
	if (v[K_MANIFEST] != NULL) {
		join_kp(kpk, sizeof(kpk), kp, "manifest");
		if ((s = get_string(ld, v[K_MANIFEST], kpk, "a file name "
		    "pattern (e.g. \"*.manifest\")")) == NULL)
			;
		else if ((why = glob_problem(s)) != NULL)
			report(ld, line_of(v[K_MANIFEST]), "%s: %s %s", kpk,
			    q(&qb, s), why);
		else
			c->manifest = dup_or_report(ld, line_of(v[K_MANIFEST]),
			    s);
	}
	set_duration(ld, v[K_MTIMEOUT], kp, "manifest_timeout", 1, DUR_LONG,
	    &c->manifest_timeout_s);
	set_duration(ld, v[K_QUIET], kp, "quiet_seconds", 0, DUR_DAY,
	    &c->quiet_s);
	set_duration(ld, v[K_TTL], kp, "incomplete_ttl", 1, DUR_LONG,
	    &c->incomplete_ttl_s);
	if (v[K_SIDECARS] != NULL) {
		join_kp(kpk, sizeof(kpk), kp, "ship_sidecars");
		if ((i = get_bool(ld, v[K_SIDECARS], kpk)) >= 0)
			c->ship_sidecars = i;
	}
}

/* Normalises a fingerprint into out[41] (no blanks, upper case). */
static const char *
fpr_normalise(const char *s, char out[41])
{
	size_t i, o = 0;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == ' ')
			continue;
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f') ||
		    (s[i] >= 'A' && s[i] <= 'F')))
			return "is not a fingerprint: only hex digits and "
			    "spaces are allowed (gpg --fingerprint KEY shows "
			    "it)";
		if (o == 40)
			return "is longer than a 40-hex-digit fingerprint "
			    "(gpg --fingerprint KEY shows it)";
		out[o++] = (char)(s[i] >= 'a' ? s[i] - 'a' + 'A' : s[i]);
	}
	out[o] = '\0';
	if (o == 8 || o == 16)
		return "is a key ID, not a fingerprint; pin the full 40 hex "
		    "digits (gpg --fingerprint KEY shows them)";
	if (o != 40)
		return "is not a 40-hex-digit fingerprint (gpg --fingerprint "
		    "KEY shows it)";
	return NULL;
}

static void
load_signers(struct loader *ld, const yaml_node_t *n, const char *kp,
    struct signature_config *sg)
{
	yaml_node_item_t *it;
	yaml_node_t *item;
	char kpi[KP_MAX], fpr[41];
	struct qbuf qb;
	const char *s, *why;
	size_t cnt, i, j;

	cnt = n->type == YAML_SEQUENCE_NODE ?
	    (size_t)(n->data.sequence.items.top - n->data.sequence.items.start)
	    : 1;
	if (cnt == 0) {
		report(ld, line_of(n), "%s: the list is empty; pin at least "
		    "one signer fingerprint", kp);
		return;
	}
	if ((sg->signers = calloc(cnt, sizeof(char *))) == NULL) {
		report(ld, line_of(n), "out of memory");
		return;
	}
	for (i = 0; i < cnt; i++) {
		if (n->type == YAML_SEQUENCE_NODE) {
			it = n->data.sequence.items.start + i;
			if ((item = node(ld, *it)) == NULL)
				continue;
			(void)xsnprintf(kpi, sizeof(kpi), "%s[%zu]", kp, i);
		} else {
			item = (yaml_node_t *)n;
			(void)xstrlcpy(kpi, kp, sizeof(kpi));
		}
		if ((s = get_string(ld, item, kpi, "a 40-hex-digit OpenPGP "
		    "fingerprint")) == NULL)
			continue;
		if ((why = fpr_normalise(s, fpr)) != NULL) {
			report(ld, line_of(item), "%s: %s %s", kpi, q(&qb, s),
			    why);
			continue;
		}
		for (j = 0; j < sg->nsigners; j++)
			if (strcmp(sg->signers[j], fpr) == 0)
				break;
		if (j < sg->nsigners)
			continue;	/* listed twice: harmless */
		if ((sg->signers[sg->nsigners] = dup_or_report(ld,
		    line_of(item), fpr)) != NULL)
			sg->nsigners++;
	}
}

static void
load_signature(struct loader *ld, const yaml_node_t *n, const char *pkp,
    struct partner *p)
{
	static const char *const keys[] = {
		"mode", "signers", "keyring", "decryption_key", "wait",
		"keep_plaintext", "timeout"
	};
	static const char *const modes[] = {
		"none", "detached", "inline", "encrypted"
	};
	static const enum signature_mode modev[] = {
		SIG_NONE, SIG_DETACHED, SIG_INLINE, SIG_ENCRYPTED
	};
	enum { K_MODE, K_SIGNERS, K_KEYRING, K_DECKEY, K_WAIT, K_PLAIN,
	    K_TIMEOUT, K_N };
	struct signature_config *sg = &p->signature;
	yaml_node_t *v[K_N];
	char kp[KP_MAX], kpk[KP_MAX], path[4096];
	const char *s;
	int i, mode_ok = 1;

	join_kp(kp, sizeof(kp), pkp, "signature");
	if (walk_map(ld, n, kp, keys, K_N, v, NULL) != 0)
		return;
	if (v[K_MODE] != NULL) {
		join_kp(kpk, sizeof(kpk), kp, "mode");
		if ((i = get_choice(ld, v[K_MODE], kpk, modes, 4)) >= 0)
			sg->mode = modev[i];
		else
			mode_ok = 0;
	}
	set_duration(ld, v[K_WAIT], kp, "wait", 1, 30 * DUR_DAY, &sg->wait_s);
	set_duration(ld, v[K_TIMEOUT], kp, "timeout", 1, DUR_DAY,
	    &sg->timeout_s);
	if (!mode_ok)
		return;		/* the rest depends on the mode */

	if (sg->mode == SIG_NONE) {
		/* Keys without a mode would silently verify nothing. */
		if (v[K_SIGNERS] != NULL || v[K_KEYRING] != NULL ||
		    v[K_DECKEY] != NULL)
			report(ld, line_of(v[K_MODE] != NULL ? v[K_MODE] : n),
			    "%s: signers/keyring are set but mode is none%s, "
			    "so no signature would be checked; add mode: "
			    "detached, inline or encrypted", kp,
			    v[K_MODE] != NULL ? "" : " (the default)");
		if (v[K_PLAIN] != NULL)
			report(ld, line_of(v[K_PLAIN]), "%s.keep_plaintext: "
			    "only used with mode: encrypted; remove it", kp);
		return;
	}
	if (v[K_SIGNERS] == NULL)
		report(ld, line_of(n), "%s: missing signers; pin the "
		    "partner's keys with signers: [\"<40-hex fingerprint>\"]",
		    kp);
	else {
		join_kp(kpk, sizeof(kpk), kp, "signers");
		load_signers(ld, v[K_SIGNERS], kpk, sg);
	}
	if (v[K_KEYRING] == NULL)
		report(ld, line_of(n), "%s: missing keyring; add keyring: "
		    "/etc/sluice/keys/%s.asc (the partner's public keys)", kp,
		    p->name != NULL ? p->name : "PARTNER");
	else {
		join_kp(kpk, sizeof(kpk), kp, "keyring");
		if ((s = get_string(ld, v[K_KEYRING], kpk, "a path to the "
		    "partner's public keys")) != NULL &&
		    get_file(ld, v[K_KEYRING], kpk, s, FILE_NOT_GW, path,
		    sizeof(path)) == 0)
			sg->keyring = dup_or_report(ld, line_of(v[K_KEYRING]),
			    path);
	}
	join_kp(kpk, sizeof(kpk), kp, "decryption_key");
	if (sg->mode == SIG_ENCRYPTED) {
		if (v[K_DECKEY] == NULL)
			report(ld, line_of(n), "%s: mode encrypted needs "
			    "decryption_key: the gateway's secret key (e.g. "
			    "/etc/sluice/keys/gateway.sec.asc, mode 0600)", kp);
		else if ((s = get_string(ld, v[K_DECKEY], kpk, "a path to the "
		    "gateway's secret key")) != NULL &&
		    get_file(ld, v[K_DECKEY], kpk, s, FILE_SECRET, path,
		    sizeof(path)) == 0)
			sg->decryption_key = dup_or_report(ld,
			    line_of(v[K_DECKEY]), path);
	} else {
		if (v[K_DECKEY] != NULL)
			report(ld, line_of(v[K_DECKEY]), "%s: only used with "
			    "mode: encrypted; remove it", kpk);
		if (v[K_PLAIN] != NULL)
			report(ld, line_of(v[K_PLAIN]), "%s.keep_plaintext: "
			    "only used with mode: encrypted; remove it", kp);
	}
	if (sg->mode == SIG_ENCRYPTED && v[K_PLAIN] != NULL) {
		join_kp(kpk, sizeof(kpk), kp, "keep_plaintext");
		if ((i = get_bool(ld, v[K_PLAIN], kpk)) >= 0)
			sg->keep_plaintext = i;
	}
}

/* role: visible_for, max_sessions, duplicates: the issue 3 and 4 keys. */
static void
load_partner_role(struct loader *ld, const yaml_node_t *n, const char *kp,
    const struct config *cfg, struct partner *p)
{
	char known[512];
	struct qbuf qb;
	const char *s, *best = NULL;
	const struct role *r;
	size_t i, d, bestd = 3;

	if ((s = get_string(ld, n, kp, "a role name (e.g. dropbox)")) == NULL)
		return;
	if ((r = config_role(cfg, s)) != NULL) {
		p->role = r;
		return;
	}
	known[0] = '\0';
	for (i = 0; i < cfg->nroles; i++) {
		if (cfg->roles[i].name == NULL)
			continue;
		if ((d = edit_distance(s, cfg->roles[i].name)) < bestd) {
			bestd = d;
			best = cfg->roles[i].name;
		}
		if (known[0] != '\0')
			(void)xstrlcat(known, ", ", sizeof(known));
		(void)xstrlcat(known, cfg->roles[i].name, sizeof(known));
	}
	if (best != NULL)
		report(ld, line_of(n), "%s: no role %s; did you mean \"%s\"? "
		    "(roles: %s)", kp, q(&qb, s), best, known);
	else
		report(ld, line_of(n), "%s: no role %s; use one of: %s, or "
		    "define it under roles:", kp, q(&qb, s), known);
}

static void
partner_defaults(struct loader *ld, const struct config *cfg,
    struct partner *p)
{
	p->role = cfg->nroles > 0 ? &cfg->roles[0] : NULL;	/* dropbox */
	p->visible_for_s = cfg->server.visible_for_s;
	p->max_sessions = cfg->server.max_sessions_per_partner;
	completion_defaults(ld, p->line, &p->completion);
	p->signature.mode = SIG_NONE;
	p->signature.wait_s = 600;
	p->signature.timeout_s = 120;
	p->duplicate_window_s = 0;
	p->duplicate_policy = DUP_ACCEPT_FLAG;
}

static void
load_partner_issue34(struct loader *ld, yaml_node_t *const *v,
    const char *kp, const struct config *cfg, struct partner *p)
{
	enum { K_ROLE, K_VISIBLE, K_MAXS, K_COMPLETION, K_SIGNATURE,
	    K_DUPWIN, K_DUPPOL, K_N };
	static const char *const policies[] = {
		"accept-and-flag", "accept", "reject"
	};
	static const enum duplicate_policy policyv[] = {
		DUP_ACCEPT_FLAG, DUP_ACCEPT, DUP_REJECT
	};
	char kpk[KP_MAX];
	int i;

	partner_defaults(ld, cfg, p);
	if (v[K_ROLE] != NULL) {
		join_kp(kpk, sizeof(kpk), kp, "role");
		load_partner_role(ld, v[K_ROLE], kpk, cfg, p);
	}
	set_duration(ld, v[K_VISIBLE], kp, "visible_for", 0, DUR_LONG,
	    &p->visible_for_s);
	set_int(ld, v[K_MAXS], kp, "max_sessions", 1, 100000,
	    &p->max_sessions);
	if (v[K_COMPLETION] != NULL)
		load_completion(ld, v[K_COMPLETION], kp, p);
	if (v[K_SIGNATURE] != NULL)
		load_signature(ld, v[K_SIGNATURE], kp, p);
	set_duration(ld, v[K_DUPWIN], kp, "duplicate_window", 0, DUR_LONG,
	    &p->duplicate_window_s);
	if (v[K_DUPPOL] != NULL) {
		join_kp(kpk, sizeof(kpk), kp, "duplicate_policy");
		if ((i = get_choice(ld, v[K_DUPPOL], kpk, policies, 3)) >= 0) {
			p->duplicate_policy = policyv[i];
			if (v[K_DUPWIN] == NULL)
				report(ld, line_of(v[K_DUPPOL]), "%s: has no "
				    "effect without duplicate_window; add "
				    "duplicate_window: 24h (or remove "
				    "duplicate_policy)", kpk);
		}
	}
}

/* ---- receipts (issue 11, spool/delivery.h) -------------------------------- */

#define DEFAULT_RECEIPTS_DIR	"receipts"

/* NULL if s can be the receipts folder: one name beneath a partner's root. */
static const char *
receipts_dir_problem(const char *s)
{
	size_t i;

	if (s[0] == '\0' || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 ||
	    strlen(s) > 64)
		return "is not a folder name (1 to 64 characters)";
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return "may hold only letters, digits, '.', '_' and "
			    "'-' (one folder beneath the partner's root, e.g. "
			    "receipts)";
	return NULL;
}

/*
 * <block>.sign_with and <block>.keyring (receipts, audit): the gateway's
 * OpenPGP signing key (spool/pgpsign.h). Both or neither.
 */
static void
load_signing_key(struct loader *ld, const char *block, const yaml_node_t *vs,
    const yaml_node_t *vk, char **sign_with, char **keyring)
{
	char fpr[41], path[4096], kp[64], kk[64];
	struct qbuf qb;
	const char *s, *why;

	(void)xsnprintf(kp, sizeof(kp), "%s.sign_with", block);
	(void)xsnprintf(kk, sizeof(kk), "%s.keyring", block);
	if (vs != NULL && (s = get_string(ld, vs, kp,
	    "the signing key's fingerprint")) != NULL) {
		if ((why = fpr_normalise(s, fpr)) != NULL)
			report(ld, line_of(vs), "%s: %s %s", kp, q(&qb, s), why);
		else {
			free(*sign_with);
			*sign_with = dup_or_report(ld, line_of(vs), fpr);
		}
	}
	if (vk != NULL && (s = get_string(ld, vk, kk,
	    "a path to the gateway's secret key")) != NULL &&
	    get_file(ld, vk, kk, s, FILE_SECRET, path, sizeof(path)) == 0) {
		free(*keyring);
		*keyring = dup_or_report(ld, line_of(vk), path);
	}
	if (vs != NULL && vk == NULL)
		report(ld, line_of(vs), "%s: needs %s: the gateway's armored "
		    "secret key (gpg --export-secret-keys --armor FINGERPRINT > "
		    "FILE; no passphrase, mode 0600, owned by %s)", kp, kk,
		    ld->svc_user ? ld->svc_user : "sluice");
	if (vk != NULL && vs == NULL)
		report(ld, line_of(vk), "%s: add %s: the fingerprint of the key "
		    "in it that signs (gpg --fingerprint), or remove keyring",
		    kk, kp);
}

static void
load_receipts(struct loader *ld, const yaml_node_t *n, struct config *cfg)
{
	static const char *const keys[] = { "sign_with", "keyring", "keep",
	    "dir", "store" };
	enum { K_SIGN, K_KEYRING, K_KEEP, K_DIR, K_STORE, K_N };
	struct receipts_config *rc = &cfg->receipts;
	yaml_node_t *v[K_N];
	struct qbuf qb;
	const char *s, *why;
	int b;

	if (n->type == YAML_SCALAR_NODE) {	/* receipts: false */
		if ((b = get_bool(ld, n, "receipts")) >= 0)
			rc->enabled = b;
		return;
	}
	if (walk_map(ld, n, "receipts", keys, K_N, v, NULL) != 0)
		return;
	set_duration(ld, v[K_KEEP], "receipts", "keep", 1, DUR_LONG,
	    &rc->keep_s);
	if (v[K_STORE] != NULL && (b = get_bool(ld, v[K_STORE],
	    "receipts.store")) >= 0)
		rc->store = b;
	if (v[K_DIR] != NULL && (s = get_string(ld, v[K_DIR], "receipts.dir",
	    "a folder name (e.g. receipts)")) != NULL) {
		if ((why = receipts_dir_problem(s)) != NULL)
			report(ld, line_of(v[K_DIR]), "receipts.dir: %s %s",
			    q(&qb, s), why);
		else {
			free(rc->dir);
			rc->dir = dup_or_report(ld, line_of(v[K_DIR]), s);
		}
	}
	load_signing_key(ld, "receipts", v[K_SIGN], v[K_KEYRING],
	    &rc->sign_with, &rc->keyring);
}

/* Defaults, before the receipts: block and the partners are read. */
static void
receipts_defaults(struct loader *ld, struct receipts_config *rc)
{
	rc->enabled = 1;
	rc->keep_s = 30 * DUR_DAY;
	rc->dir = dup_or_report(ld, 1, DEFAULT_RECEIPTS_DIR);
}

/* ---- control socket and operators ----------------------------------------- */

#define OPERATORS_MAX	1000

static const char *const op_role_names[] = {
	"none", "auditor", "operator", "owner"
};

const char *
op_role_name(enum op_role r)
{
	if ((int)r < 0 || (size_t)r >= sizeof(op_role_names) /
	    sizeof(op_role_names[0]))
		return "none";
	return op_role_names[r];
}

static void
load_control(struct loader *ld, const yaml_node_t *n, struct config *cfg)
{
	static const char *const keys[] = { "socket" };
	struct sockaddr_un sun;
	yaml_node_t *v[1];
	char *p;

	if (walk_map(ld, n, "control", keys, 1, v, NULL) != 0 || v[0] == NULL)
		return;
	if ((p = get_abspath(ld, v[0], "control.socket",
	    CONFIG_DEFAULT_CONTROL_SOCKET)) == NULL)
		return;
	if (strlen(p) >= sizeof(sun.sun_path)) {
		report(ld, line_of(v[0]), "control.socket: the path is longer "
		    "than a UNIX socket's %zu bytes; choose a shorter one (e.g. "
		    "%s)", sizeof(sun.sun_path) - 1,
		    CONFIG_DEFAULT_CONTROL_SOCKET);
		free(p);
		return;
	}
	free(cfg->control_socket);
	cfg->control_socket = p;
}

/* One "- user: NAME, role: ROLE" or "- group: NAME, role: ROLE". */
static void
load_operator(struct loader *ld, const yaml_node_t *n, const char *kp,
    struct operator_entry *op)
{
	static const char *const keys[] = { "user", "group", "role" };
	static const char *const roles[] = { "owner", "operator", "auditor" };
	static const enum op_role rolev[] = {
		OPROLE_OWNER, OPROLE_OPERATOR, OPROLE_AUDITOR
	};
	enum { K_USER, K_GROUP, K_ROLE, K_N };
	yaml_node_t *v[K_N], *who;
	char kpk[KP_MAX];
	struct qbuf qb;
	const char *s, *what;
	int i;

	op->line = line_of(n);
	if (walk_map(ld, n, kp, keys, K_N, v, NULL) != 0)
		return;
	if ((v[K_USER] == NULL) == (v[K_GROUP] == NULL)) {
		report(ld, line_of(n), "%s: name exactly one of user: or group: "
		    "(e.g. {user: alice, role: auditor})", kp);
		return;
	}
	what = v[K_USER] != NULL ? "user" : "group";
	who = v[K_USER] != NULL ? v[K_USER] : v[K_GROUP];
	join_kp(kpk, sizeof(kpk), kp, what);
	if ((s = get_string(ld, who, kpk, "a user or group name")) == NULL)
		return;
	if (s[0] == '\0' || strlen(s) > 32 || s[0] == '-' ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_-.$") != strlen(s)) {
		report(ld, line_of(who), "%s: %s is not a %s name", kpk,
		    q(&qb, s), what);
		return;
	}
	errno = 0;
	if (v[K_USER] != NULL ? getpwnam(s) == NULL : getgrnam(s) == NULL)
		warn(ld, line_of(who), "%s: there is no %s %s on this host; the "
		    "entry grants nothing until it exists (check the name, or "
		    "create it)", kpk, what, q(&qb, s));
	if ((v[K_USER] != NULL ? (op->user = dup_or_report(ld, line_of(who),
	    s)) : (op->group = dup_or_report(ld, line_of(who), s))) == NULL)
		return;
	join_kp(kpk, sizeof(kpk), kp, "role");
	if (v[K_ROLE] == NULL) {
		report(ld, line_of(n), "%s: missing; add role: owner, operator "
		    "or auditor", kpk);
		return;
	}
	if ((i = get_choice(ld, v[K_ROLE], kpk, roles, 3)) >= 0)
		op->role = rolev[i];
}

static void
load_operators(struct loader *ld, const yaml_node_t *n, struct config *cfg)
{
	yaml_node_item_t *it;
	yaml_node_t *item;
	char kp[KP_MAX];
	size_t cnt;

	if (is_null(n))
		return;
	if (n->type != YAML_SEQUENCE_NODE) {
		report(ld, line_of(n), "operators: expected a list of {user: "
		    "NAME or group: NAME, role: owner|operator|auditor}, got %s",
		    kind_of(n));
		return;
	}
	cnt = (size_t)(n->data.sequence.items.top -
	    n->data.sequence.items.start);
	if (cnt == 0)
		return;
	if (cnt > OPERATORS_MAX) {
		report(ld, line_of(n), "operators: more than %d entries; name "
		    "groups instead of users", OPERATORS_MAX);
		return;
	}
	if ((cfg->operators = calloc(cnt, sizeof(*cfg->operators))) == NULL) {
		report(ld, line_of(n), "out of memory");
		return;
	}
	for (it = n->data.sequence.items.start;
	    it < n->data.sequence.items.top; it++) {
		if ((item = node(ld, *it)) == NULL)
			continue;
		(void)xsnprintf(kp, sizeof(kp), "operators[%zu]",
		    cfg->noperators);
		load_operator(ld, item, kp, &cfg->operators[cfg->noperators++]);
	}
}

/*
 * config_control_socket: libyaml's event API, enough to find control.socket
 * at the top level (depth 1 mapping "control", depth 2 key "socket").
 */
int
config_control_socket(const char *path, char *out, size_t outlen)
{
	yaml_parser_t ps;
	yaml_event_t ev;
	FILE *f;
	int depth = 0, in_control = 0, want = 0, key = 1, done = 0, rc = -1;
	const char *v;

	(void)xstrlcpy(out, CONFIG_DEFAULT_CONTROL_SOCKET, outlen);
	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	if (!yaml_parser_initialize(&ps)) {
		fclose(f);
		return -1;
	}
	yaml_parser_set_input_file(&ps, f);
	while (!done && yaml_parser_parse(&ps, &ev)) {
		switch (ev.type) {
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			depth++;
			in_control = in_control || (depth == 2 && want == 1);
			want = 0;
			key = ev.type == YAML_MAPPING_START_EVENT;
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			if (--depth < 2)
				in_control = 0;
			key = 1;
			break;
		case YAML_SCALAR_EVENT:
			v = (const char *)ev.data.scalar.value;
			if (key && depth == 1)
				want = strcmp(v, "control") == 0;
			else if (key && depth == 2 && in_control)
				want = strcmp(v, "socket") == 0 ? 2 : 0;
			else if (!key && want == 2 && v[0] == '/' &&
			    xstrlcpy(out, v, outlen) < outlen) {
				rc = 0;
				done = 1;
			} else
				want = 0;
			key = !key;
			break;
		case YAML_STREAM_END_EVENT:
			rc = 0;
			done = 1;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&ps);
	fclose(f);
	return rc;
}

/* ---- log: {target, level} (common/log.h) ---------------------------------- */

static void
load_log(struct loader *ld, const yaml_node_t *n, struct config *cfg)
{
	static const char *const keys[] = { "target", "level" };
	static const char *const targets[] = {
		"auto", "stderr", "journald", "syslog"
	};
	static const char *const levels[] = {
		"err", "warning", "notice", "info", "debug"
	};
	yaml_node_t *v[2];
	int i;

	if (walk_map(ld, n, "log", keys, 2, v, NULL) != 0)
		return;
	if (v[0] != NULL && (i = get_choice(ld, v[0], "log.target", targets,
	    4)) >= 0)
		cfg->log_target = i;	/* the order of enum log_target */
	if (v[1] != NULL && (i = get_choice(ld, v[1], "log.level", levels,
	    5)) >= 0)
		cfg->log_level = LOG_LVL_ERR + i;
}

/* ---- notify: (issue 12, notify/events.h) ---------------------------------- */

#define NOTIFY_TARGETS_MAX	64
#define NOTIFY_ARGV_MAX		64

/* 1 if the host of an http:// URL (after "http://") is a loopback
 * address or name: 127.0.0.0/8, [::1], localhost; no userinfo. */
static int
url_loopback(const char *hostpart)
{
	struct in_addr a;
	char host[64];
	size_t n = strcspn(hostpart, ":/?#");

	if (strncmp(hostpart, "[::1]", 5) == 0)
		return strchr(":/?#", hostpart[5]) != NULL;
	if (n == 0 || n >= sizeof(host))
		return 0;
	memcpy(host, hostpart, n);
	host[n] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return 1;
	return inet_pton(AF_INET, host, &a) == 1 &&
	    (ntohl(a.s_addr) >> 24) == 127;
}

static void
load_notify_webhook(struct loader *ld, const yaml_node_t *n, const char *kp,
    struct notify_target *t)
{
	static const char *const keys[] = {
		"url", "secret_file", "ca_file", "timeout"
	};
	enum { K_URL, K_SECRET, K_CA, K_TIMEOUT, K_N };
	yaml_node_t *v[K_N];
	char kpk[KP_MAX], path[4096];
	struct qbuf qb;
	const char *s;

	if (walk_map(ld, n, kp, keys, K_N, v, NULL) != 0)
		return;
	join_kp(kpk, sizeof(kpk), kp, "url");
	if (v[K_URL] == NULL)
		report(ld, line_of(n), "%s: missing; add url: "
		    "https://receiver.example/hook", kpk);
	else if ((s = get_string(ld, v[K_URL], kpk, "an https:// URL")) ==
	    NULL)
		;
	else if (strncmp(s, "https://", 8) != 0 && (strncmp(s, "http://",
	    7) != 0 || !url_loopback(s + 7)))
		report(ld, line_of(v[K_URL]), "%s: %s is not an https:// URL; "
		    "webhooks need TLS (http:// only to 127.0.0.1, [::1] or "
		    "localhost)", kpk, q(&qb, s));
	else if (strlen(s) > 2048 || strpbrk(s, " \"<>\\^`{|}") != NULL)
		report(ld, line_of(v[K_URL]), "%s: not a valid URL (too long, "
		    "or a space or quote in it); percent-encode it", kpk);
	else
		t->url = dup_or_report(ld, line_of(v[K_URL]), s);
	join_kp(kpk, sizeof(kpk), kp, "secret_file");
	if (v[K_SECRET] == NULL)
		report(ld, line_of(n), "%s: missing; every webhook is signed: "
		    "add secret_file: /etc/sluice/hook.secret (0600, the "
		    "service user's; e.g. head -c32 /dev/urandom | base64)", kpk);
	else if ((s = get_string(ld, v[K_SECRET], kpk, "a file")) != NULL &&
	    get_file(ld, v[K_SECRET], kpk, s, FILE_SECRET, path,
	    sizeof(path)) == 0)
		t->secret_file = dup_or_report(ld, line_of(v[K_SECRET]), path);
	join_kp(kpk, sizeof(kpk), kp, "ca_file");
	if (v[K_CA] != NULL && (s = get_string(ld, v[K_CA], kpk,
	    "a PEM file")) != NULL && get_file(ld, v[K_CA], kpk, s,
	    FILE_NOT_GW, path, sizeof(path)) == 0)
		t->ca_file = dup_or_report(ld, line_of(v[K_CA]), path);
	join_kp(kpk, sizeof(kpk), kp, "timeout");
	if (v[K_TIMEOUT] != NULL)
		(void)get_duration(ld, v[K_TIMEOUT], kpk, 1, 600,
		    &t->timeout_s);
}

static void
load_notify_command(struct loader *ld, const yaml_node_t *n, const char *kp,
    struct notify_target *t)
{
	struct qbuf qb;
	char **nv;

	if (n->type != YAML_SEQUENCE_NODE) {
		report(ld, line_of(n), "%s: expected a list (argv, no shell), "
		    "e.g. command: [/usr/local/bin/on-file, --json], got %s",
		    kp, kind_of(n));
		return;
	}
	load_str_list(ld, n, kp, "an argument", NULL, &t->argv, &t->argc);
	if (t->argc == 0) {
		report(ld, line_of(n), "%s: empty; name the program, e.g. "
		    "[/usr/local/bin/on-file]", kp);
		return;
	}
	if (t->argc > NOTIFY_ARGV_MAX)
		report(ld, line_of(n), "%s: more than %d arguments", kp,
		    NOTIFY_ARGV_MAX);
	if (t->argv[0][0] != '/')
		report(ld, line_of(n), "%s[0]: %s is not an absolute path; "
		    "commands run without a shell or PATH: give the full path",
		    kp, q(&qb, t->argv[0]));
	/* NULL-terminated for execv */
	if ((nv = reallocarray(t->argv, t->argc + 1, sizeof(char *))) ==
	    NULL) {
		report(ld, line_of(n), "out of memory");
		return;
	}
	t->argv = nv;
	t->argv[t->argc] = NULL;
}

static void
load_notify_on(struct loader *ld, const yaml_node_t *n, const char *kp,
    struct notify_target *t)
{
	static const char *const events[] = { "file.stored", "file.rejected" };
	yaml_node_item_t *it;
	yaml_node_t *item;
	char kpi[KP_MAX];
	int i;

	if (n->type != YAML_SEQUENCE_NODE) {
		report(ld, line_of(n), "%s: expected a list of events, e.g. "
		    "on: [file.stored, file.rejected], got %s", kp, kind_of(n));
		return;
	}
	for (it = n->data.sequence.items.start;
	    it < n->data.sequence.items.top; it++) {
		if ((item = node(ld, *it)) == NULL)
			continue;
		(void)xsnprintf(kpi, sizeof(kpi), "%s[%d]", kp,
		    (int)(it - n->data.sequence.items.start));
		if ((i = get_choice(ld, item, kpi, events, 2)) >= 0)
			t->on |= i == 0 ? NOTIFY_ON_STORED : NOTIFY_ON_REJECTED;
	}
	if (t->on == 0)
		report(ld, line_of(n), "%s: no event; use on: [file.stored, "
		    "file.rejected]", kp);
}

static void
load_notify_target(struct loader *ld, const yaml_node_t *n, const char *kp,
    const struct config *cfg, struct notify_target *t)
{
	static const char *const keys[] = {
		"on", "command", "webhook", "partners", "timeout"
	};
	enum { K_ON, K_COMMAND, K_WEBHOOK, K_PARTNERS, K_TIMEOUT, K_N };
	yaml_node_t *v[K_N];
	char kpk[KP_MAX];
	struct qbuf qb;
	size_t i;

	t->line = line_of(n);
	t->timeout_s = 10;
	if (walk_map(ld, n, kp, keys, K_N, v, NULL) != 0)
		return;
	join_kp(kpk, sizeof(kpk), kp, "on");
	if (v[K_ON] == NULL)
		report(ld, line_of(n), "%s: missing; add on: [file.stored, "
		    "file.rejected]", kpk);
	else
		load_notify_on(ld, v[K_ON], kpk, t);
	if ((v[K_COMMAND] == NULL) == (v[K_WEBHOOK] == NULL)) {
		report(ld, line_of(n), "%s: give exactly one of command: [argv] "
		    "or webhook: {url: https://...}", kp);
		return;
	}
	if (v[K_COMMAND] != NULL) {
		t->kind = NOTIFY_COMMAND;
		join_kp(kpk, sizeof(kpk), kp, "command");
		load_notify_command(ld, v[K_COMMAND], kpk, t);
		join_kp(kpk, sizeof(kpk), kp, "timeout");
		if (v[K_TIMEOUT] != NULL)
			(void)get_duration(ld, v[K_TIMEOUT], kpk, 1, 3600,
			    &t->timeout_s);
	} else {
		t->kind = NOTIFY_WEBHOOK;
		join_kp(kpk, sizeof(kpk), kp, "webhook");
		load_notify_webhook(ld, v[K_WEBHOOK], kpk, t);
		if (v[K_TIMEOUT] != NULL)
			report(ld, line_of(v[K_TIMEOUT]), "%s.timeout: a "
			    "webhook's timeout goes inside it: webhook: "
			    "{url: ..., timeout: 10s}", kp);
	}
	join_kp(kpk, sizeof(kpk), kp, "partners");
	if (v[K_PARTNERS] == NULL)
		return;
	load_str_list(ld, v[K_PARTNERS], kpk, "a partner name", NULL,
	    &t->partners, &t->npartners);
	for (i = 0; i < t->npartners; i++)
		if (cfg->npartners > 0 && config_partner(cfg,
		    t->partners[i]) == NULL)
			report(ld, line_of(v[K_PARTNERS]), "%s: %s is not a "
			    "partner of this configuration; check the name "
			    "under partners:", kpk, q(&qb, t->partners[i]));
}

/* notify: a list of targets, or {max_age: 7d, targets: [...]}. */
static void
load_notify(struct loader *ld, const yaml_node_t *n, struct config *cfg)
{
	static const char *const keys[] = { "targets", "max_age" };
	enum { K_TARGETS, K_MAX_AGE, K_N };
	yaml_node_t *v[K_N], *list = (yaml_node_t *)n, *item;
	yaml_node_item_t *it;
	char kp[KP_MAX];
	const char *base = "notify";
	size_t cnt;

	cfg->notify.max_age_s = 7 * DUR_DAY;
	if (is_null(n))
		return;
	if (n->type == YAML_MAPPING_NODE) {
		if (walk_map(ld, n, "notify", keys, K_N, v, NULL) != 0)
			return;
		if (v[K_MAX_AGE] != NULL)
			(void)get_duration(ld, v[K_MAX_AGE], "notify.max_age",
			    60, 365 * DUR_DAY, &cfg->notify.max_age_s);
		if ((list = v[K_TARGETS]) == NULL || is_null(list))
			return;
		base = "notify.targets";
	}
	if (list->type != YAML_SEQUENCE_NODE) {
		report(ld, line_of(list), "%s: expected a list of targets, e.g. "
		    "- {on: [file.stored], webhook: {url: https://..., "
		    "secret_file: FILE}}, got %s", base, kind_of(list));
		return;
	}
	cnt = (size_t)(list->data.sequence.items.top -
	    list->data.sequence.items.start);
	if (cnt == 0)
		return;
	if (cnt > NOTIFY_TARGETS_MAX) {
		report(ld, line_of(list), "%s: more than %d targets; fan out "
		    "in a receiver instead", base, NOTIFY_TARGETS_MAX);
		return;
	}
	if ((cfg->notify.targets = calloc(cnt, sizeof(struct notify_target))) ==
	    NULL) {
		report(ld, line_of(list), "out of memory");
		return;
	}
	for (it = list->data.sequence.items.start;
	    it < list->data.sequence.items.top; it++) {
		if ((item = node(ld, *it)) == NULL)
			continue;
		(void)xsnprintf(kp, sizeof(kp), "%s[%zu]", base,
		    cfg->notify.ntargets);
		load_notify_target(ld, item, kp, cfg,
		    &cfg->notify.targets[cfg->notify.ntargets++]);
	}
}

/* ---- the document -------------------------------------------------------- */

static void
load_root(struct loader *ld, const yaml_node_t *root, struct config *cfg)
{
	static const char *const keys[] = {
		"listen", "host_keys", "state_dir", "audit", "store", "partners",
		"server", "roles", "uploader", "user", "receipts", "control",
		"operators", "metrics", "log", "notify"
	};
	enum { K_LISTEN, K_HOST_KEYS, K_STATE_DIR, K_AUDIT, K_STORE,
	    K_PARTNERS, K_SERVER, K_ROLES, K_UPLOADER, K_SVCUSER, K_RECEIPTS,
	    K_CONTROL, K_OPERATORS, K_METRICS, K_LOG, K_NOTIFY, K_N };
	yaml_node_t *v[K_N];
	int kl[K_N];
	char buf[4096];

	if (walk_map(ld, root, "", keys, K_N, v, kl) != 0)
		return;
	cfg->listen_port = DEFAULT_LISTEN_PORT;
	cfg->listen_host = dup_or_report(ld, 1, DEFAULT_LISTEN_HOST);
	if (v[K_LISTEN] != NULL)
		load_listen(ld, v[K_LISTEN], "listen", &cfg->listen_host,
		    &cfg->listen_port);

	if (v[K_SVCUSER] != NULL)
		cfg->user = load_user(ld, v[K_SVCUSER], "user");
	ld->svc_user = cfg->user;

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
	cfg->audit_segment_max = 64 * MIB;
	cfg->audit_segment_age_s = DUR_DAY;
	if (v[K_AUDIT] != NULL)
		load_audit(ld, v[K_AUDIT], cfg);
	audit_defaults(ld, cfg);
	if (cfg->audit_key_path == NULL && cfg->state_dir != NULL) {
		if (xsnprintf(buf, sizeof(buf), "%s/audit.key",
		    strcmp(cfg->state_dir, "/") == 0 ? "" : cfg->state_dir) < 0)
			report(ld, 1, "state_dir: the path is too long");
		else
			cfg->audit_key_path = dup_or_report(ld, 1, buf);
	}
	if (v[K_STORE] != NULL)
		load_store(ld, v[K_STORE], kl[K_STORE], cfg);
	else
		report(ld, line_of(root), "store: missing; add e.g. store: "
		    "{url: s3://my-bucket} or store: {url: "
		    "file:///srv/sluice/objects}");

	/* server and roles first: partners take their defaults from them. */
	server_defaults(&cfg->server);
	if (v[K_SERVER] != NULL)
		load_server(ld, v[K_SERVER], cfg);
	load_roles(ld, v[K_ROLES], cfg);
	uploader_defaults(&cfg->uploader);
	if (v[K_UPLOADER] != NULL)
		load_uploader(ld, v[K_UPLOADER], cfg);
	receipts_defaults(ld, &cfg->receipts);
	if (v[K_RECEIPTS] != NULL)
		load_receipts(ld, v[K_RECEIPTS], cfg);
	if (v[K_METRICS] != NULL)
		load_metrics(ld, v[K_METRICS], cfg);

	cfg->control_socket = dup_or_report(ld, 1,
	    CONFIG_DEFAULT_CONTROL_SOCKET);
	if (v[K_CONTROL] != NULL)
		load_control(ld, v[K_CONTROL], cfg);
	if (v[K_OPERATORS] != NULL)
		load_operators(ld, v[K_OPERATORS], cfg);
	if (v[K_LOG] != NULL)
		load_log(ld, v[K_LOG], cfg);

	if (v[K_PARTNERS] != NULL)
		load_partners(ld, v[K_PARTNERS], cfg);
	else
		report(ld, line_of(root), "partners: missing; add a list of "
		    "partners (- name: acme ...)");
	/* after partners: a target's partners: names them */
	cfg->notify.max_age_s = 7 * DUR_DAY;
	if (v[K_NOTIFY] != NULL)
		load_notify(ld, v[K_NOTIFY], cfg);
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
