/*
 * export.c - `sluice audit export`: the records of a period, as JSON Lines
 * or CSV for an examiner, then a verification summary of the files they
 * came from (see trace.h).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "audit/audit.h"
#include "audit/trace.h"
#include "common/log.h"
#include "common/util.h"
#include "policy/config.h"

#define MAX_KEYS	64

int
audit_time_parse(const char *s, int64_t *us)
{
	struct tm tm, chk;
	const char *p;
	int64_t frac = 0, off = 0;
	int digits = 0, hh, mm;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || !isdigit((unsigned char)s[0]) ||
	    (p = strptime(s, "%Y-%m-%d", &tm)) == NULL)
		return -1;
	if (*p != '\0') {
		if ((*p != 'T' && *p != 't') ||
		    (p = strptime(p + 1, "%H:%M:%S", &tm)) == NULL)
			return -1;
		if (*p == '.') {
			for (p++; isdigit((unsigned char)*p); p++, digits++)
				if (digits < 6)
					frac = frac * 10 + (*p - '0');
			if (digits == 0)
				return -1;
			for (; digits < 6; digits++)
				frac *= 10;
		}
		if (*p == 'Z' || *p == 'z')
			p++;
		else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1])
		    && isdigit((unsigned char)p[2]) && p[3] == ':' &&
		    isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
			hh = (p[1] - '0') * 10 + (p[2] - '0');
			mm = (p[4] - '0') * 10 + (p[5] - '0');
			if (hh > 23 || mm > 59)
				return -1;
			off = (hh * 3600 + mm * 60) * (*p == '-' ? -1 : 1);
			p += 6;
		} else
			return -1;
		if (*p != '\0')
			return -1;
	}
	tm.tm_isdst = 0;
	chk = tm;	/* timegm normalises tm */
	if ((t = timegm(&tm)) == (time_t)-1 || tm.tm_mday != chk.tm_mday ||
	    tm.tm_mon != chk.tm_mon)
		return -1;	/* 2026-02-30 */
	*us = ((int64_t)t - off) * 1000000 + frac;
	return 0;
}

/* The "ts" of a record line (near its start), or -1. */
static int
line_ts(const char *line, size_t len, int64_t *us)
{
	static const char key[] = "\"ts\":\"";
	const char *p, *q;
	char buf[64];

	if ((p = memmem(line, len < 80 ? len : 80, key, sizeof(key) - 1)) ==
	    NULL)
		return -1;
	p += sizeof(key) - 1;
	if ((q = memchr(p, '"', (size_t)(line + len - p))) == NULL ||
	    (size_t)(q - p) >= sizeof(buf))
		return -1;
	memcpy(buf, p, (size_t)(q - p));
	buf[q - p] = '\0';
	return audit_time_parse(buf, us);
}

void
csv_field(FILE *out, const char *s, size_t n)
{
	size_t i;
	int quote = n > 0 && (s[0] == ' ' || s[n - 1] == ' ');

	for (i = 0; i < n && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' ||
		    s[i] == '\n';
	if (!quote) {
		fwrite(s, 1, n, out);
		return;
	}
	fputc('"', out);
	for (i = 0; i < n; i++) {
		if (s[i] == '"')
			fputc('"', out);
		fputc(s[i], out);
	}
	fputc('"', out);
}

static const char *const csv_cols[] = { "seq", "ts", "host", "event",
    "partner", "session", "remote", "fid", "path", "size", "sha256", "key",
    "reason", NULL };

static void
csv_row(FILE *out, const json_t *rec, const char *line, size_t len)
{
	const json_t *v;
	char num[32], *d;
	size_t i;

	for (i = 0; csv_cols[i] != NULL; i++) {
		v = json_object_get(rec, csv_cols[i]);
		if (json_is_string(v))
			csv_field(out, json_string_value(v),
			    json_string_length(v));
		else if (json_is_integer(v)) {
			xsnprintf(num, sizeof(num), "%lld",
			    (long long)json_integer_value(v));
			fputs(num, out);
		} else if (v != NULL && !json_is_null(v) &&
		    (d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT |
		    JSON_ENSURE_ASCII)) != NULL) {
			csv_field(out, d, strlen(d));
			free(d);
		}
		fputc(',', out);
	}
	csv_field(out, line, len);
	fputs("\r\n", out);
}

/* Whether the file may hold records of [from, to): its first and last. */
static int
file_covers(const struct trail_file *f, int64_t from, int64_t to)
{
	const char *nl, *last;
	int64_t first_us, last_us;

	if (f->len == 0)
		return 0;
	nl = memchr(f->map, '\n', f->len);
	last = memrchr(f->map, '\n', f->len - 1);
	last = last == NULL ? f->map : last + 1;
	if (line_ts(f->map, (size_t)(nl - f->map), &first_us) == 0 &&
	    first_us >= to)
		return 0;
	if (line_ts(last, f->len - 1 - (size_t)(last - f->map), &last_us) ==
	    0 && last_us < from)
		return 0;
	return 1;
}

/* The records of one file; the count written. */
static int64_t
export_file(const struct trail_file *f, int64_t from, int64_t to,
    const char *partner, int csv, FILE *out)
{
	const char *p, *e = f->map + f->len, *nl, *pv;
	int64_t us, n = 0;
	json_t *rec;
	size_t len;

	for (p = f->map; p < e; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(e - p));
		len = (size_t)(nl - p);
		if (line_ts(p, len, &us) == -1 || us < from || us >= to)
			continue;
		if (!csv && partner == NULL) {
			fwrite(p, 1, len + 1, out);
			n++;
			continue;
		}
		if ((rec = json_loadb(p, len, 0, NULL)) == NULL)
			continue;
		pv = json_string_value(json_object_get(rec, "partner"));
		if (partner == NULL || (pv != NULL && strcmp(pv, partner) == 0)) {
			if (csv)
				csv_row(out, rec, p, len);
			else
				fwrite(p, 1, len + 1, out);
			n++;
		}
		json_decref(rec);
	}
	return n;
}

int64_t
audit_export(const struct trail *t, int64_t from_us, int64_t to_us,
    const char *partner, int csv, FILE *out, size_t *used, size_t *nused)
{
	int64_t n = 0;
	size_t i;

	*nused = 0;
	if (csv) {
		for (i = 0; csv_cols[i] != NULL; i++)
			fprintf(out, "%s,", csv_cols[i]);
		fputs("record\r\n", out);
	}
	for (i = 0; i < t->n; i++) {
		if (!file_covers(&t->f[i], from_us, to_us))
			continue;
		used[(*nused)++] = i;
		n += export_file(&t->f[i], from_us, to_us, partner, csv, out);
	}
	if (fflush(out) == EOF || ferror(out)) {
		log_warn("audit export: cannot write the records");
		return -1;
	}
	return n;
}

/* ---- verification ---------------------------------------------------------- */

/*
 * audit.key and the rotated keys beside it (<dir>/audit.keys/<kid>.key)
 * that this user can read, into keys; why (if not empty) says what could
 * not be read.
 */
static size_t
keys_load(const struct config *cfg, struct audit_key **keys, char *why,
    size_t whylen)
{
	struct dirent **names = NULL;
	char dir[PATH_MAX], p[PATH_MAX];
	size_t n = 0;
	int i, nn;

	why[0] = '\0';
	if (cfg->audit_key_path == NULL) {
		xstrlcpy(why, "no audit.key configured", whylen);
		return 0;
	}
	if ((keys[n] = audit_key_load(cfg->audit_key_path, 0)) != NULL)
		n++;
	else
		xsnprintf(why, whylen, "cannot read %s: %s (run as root or "
		    "the service user)", cfg->audit_key_path, strerror(errno));
	xstrlcpy(dir, cfg->audit_key_path, sizeof(dir));
	if (xsnprintf(p, sizeof(p), "%s/audit.keys", dirname(dir)) < 0 ||
	    (nn = scandir(p, &names, NULL, alphasort)) == -1)
		return n;
	for (i = 0; i < nn; i++) {
		size_t l = strlen(names[i]->d_name);

		if (n < MAX_KEYS && l > 4 &&
		    strcmp(names[i]->d_name + l - 4, ".key") == 0 &&
		    xsnprintf(dir, sizeof(dir), "%s/%s", p,
		    names[i]->d_name) >= 0 &&
		    (keys[n] = audit_key_load(dir, 0)) != NULL)
			n++;
		free(names[i]);
	}
	free(names);
	return n;
}

/*
 * Verifies the files read, as one chain (audit_verify_trail: each segment
 * must link to the one before it); prints the summary. 0 verified, 1 not.
 */
static int
export_verify(const struct config *cfg, const struct trail *t,
    const size_t *used, size_t nused, int64_t count, FILE *err)
{
	struct audit_key *keys[MAX_KEYS];
	char why[PATH_MAX + 128], kids[MAX_KEYS * 10];
	size_t nkeys, i;
	int bad = 0;

	nkeys = keys_load(cfg, keys, why, sizeof(why));
	kids[0] = '\0';
	for (i = 0; i < nkeys; i++) {
		if (i > 0)
			xstrlcat(kids, ",", sizeof(kids));
		xstrlcat(kids, audit_key_id(keys[i]), sizeof(kids));
	}
	/* The files read, as one chain: segments link to each other. */
	if (nused > 0) {
		const char **paths;

		if ((paths = calloc(nused, sizeof(*paths))) == NULL)
			bad = 1;
		else {
			for (i = 0; i < nused; i++)
				paths[i] = t->f[used[i]].path;
			if (audit_verify_trail(paths, nused, keys, nkeys, 0,
			    err) != 0)
				bad = 1;
			free(paths);
		}
	}
	fprintf(err, "export: %lld record(s) from %zu of the trail's %zu "
	    "file(s); chain %s; ", (long long)count, nused, t->n, nused == 0 ? "not checked (no file covers the period)" :
	    bad ? "NOT VERIFIED (see above)" : "verified");
	if (nkeys > 0)
		fprintf(err, "MACs %s (key ids %s)\n", bad ? "checked, NOT "
		    "all good" : "checked and good", kids);
	else
		fprintf(err, "MACs not checked (%s)\n", why);
	for (i = 0; i < nkeys; i++)
		audit_key_free(keys[i]);
	return bad;
}

/* ---- the command ----------------------------------------------------------- */

static void
export_usage(void)
{
	fprintf(stderr, "usage: sluice audit export [-c FILE] [--from TIME] "
	    "[--to TIME] [--partner NAME] [--format jsonl|csv]\n"
	    "  TIME: RFC 3339 (2026-11-22T03:04:05Z) or YYYY-MM-DD (UTC)\n");
}

int
audit_export_cmd(int argc, char **argv, const char *cfgpath)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "from",	required_argument,	NULL, 'f' },
		{ "to",		required_argument,	NULL, 't' },
		{ "partner",	required_argument,	NULL, 'p' },
		{ "format",	required_argument,	NULL, 'F' },
		{ NULL,		0,			NULL, 0 },
	};
	struct config *cfg = NULL;
	struct trail t;
	const char *partner = NULL;
	size_t *used = NULL, nused = 0;
	int64_t from = INT64_MIN, to = INT64_MAX, n;
	int ch, csv = 0, rc = TRACE_ERROR;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfgpath = optarg; break;
		case 'p': partner = optarg; break;
		case 'f':
		case 't':
			if (audit_time_parse(optarg, ch == 'f' ? &from : &to)) {
				fprintf(stderr, "sluice: --%s %s: not a time "
				    "(want 2026-11-22T03:04:05Z or 2026-11-22)\n",
				    ch == 'f' ? "from" : "to", optarg);
				return TRACE_ERROR;
			}
			break;
		case 'F':
			if (strcmp(optarg, "csv") != 0 &&
			    strcmp(optarg, "jsonl") != 0) {
				export_usage();
				return TRACE_ERROR;
			}
			csv = strcmp(optarg, "csv") == 0;
			break;
		default: export_usage(); return TRACE_ERROR;
		}
	}
	if (optind != argc) {
		export_usage();
		return TRACE_ERROR;
	}
	if (config_load(cfgpath, &cfg, stderr) == -1) {
		fprintf(stderr, "sluice: %s has errors (run 'sluice check-config "
		    "-c %s')\n", cfgpath, cfgpath);
		return TRACE_ERROR;
	}
	if (trail_open(cfg->audit_segments_dir, cfg->audit_path, &t) == -1)
		goto done;
	if ((used = calloc(t.n + 1, sizeof(*used))) != NULL &&
	    (n = audit_export(&t, from, to, partner, csv, stdout, used,
	    &nused)) >= 0)
		rc = export_verify(cfg, &t, used, nused, n, stderr);
	trail_close(&t);
done:
	free(used);
	config_free(cfg);
	return rc;
}
