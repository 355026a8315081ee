/*
 * trace.c - `sluice audit trace`: the story of one file, from the login
 * that sent it to the fate of its local copy, read across segments (see
 * trace.h). The trail's files are mapped; memmem finds the needle and only
 * matching lines are parsed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/trace.h"
#include "common/log.h"
#include "common/util.h"
#include "policy/config.h"

#define FID_HEX		32
#define MAX_STORIES	1000		/* files one query may name */
#define LOGIN_WINDOW	(1 << 20)	/* backward search step for the login */

/* ---- the trail's files --------------------------------------------------- */

static int
trail_add(struct trail *t, const char *path)
{
	struct trail_file *nf, *f;
	struct stat st;
	const char *nl;
	void *m;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		log_warn("audit: cannot read %s (run as root or the service "
		    "user)", path);
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_warnx("audit: %s is not a readable regular file", path);
		goto fail;
	}
	if ((nf = reallocarray(t->f, t->n + 1, sizeof(*nf))) == NULL)
		goto fail;
	t->f = nf;
	f = &t->f[t->n];
	memset(f, 0, sizeof(*f));
	if ((f->path = strdup(path)) == NULL)
		goto fail;
	f->name = strrchr(f->path, '/') ? strrchr(f->path, '/') + 1 : f->path;
	if (st.st_size > 0) {
		m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			log_warn("audit: mmap %s", path);
			free(f->path);
			goto fail;
		}
		f->map = m;
		f->maplen = (size_t)st.st_size;
		/* whole lines only: a torn tail is verify's business */
		nl = memrchr(f->map, '\n', f->maplen);
		f->len = nl == NULL ? 0 : (size_t)(nl - f->map) + 1;
	}
	t->n++;
	close(fd);
	return 0;
fail:
	close(fd);
	return -1;
}

static int
segment_name(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 12 && strncmp(d->d_name, "audit-", 6) == 0 &&
	    strcmp(d->d_name + n - 6, ".jsonl") == 0;
}

int
trail_open(const char *segdir, const char *live, struct trail *t)
{
	struct dirent **names = NULL;
	char p[PATH_MAX];
	int i, n = 0, rc = -1;

	memset(t, 0, sizeof(*t));
	if (segdir != NULL &&
	    (n = scandir(segdir, &names, segment_name, alphasort)) == -1) {
		n = 0;
		if (errno != ENOENT) {
			log_warn("audit: cannot list the segments in %s", segdir);
			goto fail;
		}
	}
	for (i = 0; i < n; i++) {
		if (xsnprintf(p, sizeof(p), "%s/%s", segdir,
		    names[i]->d_name) < 0 || trail_add(t, p) == -1)
			goto fail;
	}
	if (live != NULL && trail_add(t, live) == -1)
		goto fail;
	rc = 0;
fail:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (rc == -1)
		trail_close(t);
	return rc;
}

void
trail_close(struct trail *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (t->f[i].map != NULL)
			munmap((void *)t->f[i].map, t->f[i].maplen);
		free(t->f[i].path);
	}
	free(t->f);
	memset(t, 0, sizeof(*t));
}

/* ---- finding records ----------------------------------------------------- */

/* `"key":<value as the writer writes it>` (JSON_ENSURE_ASCII), or NULL. */
static char *
needle_make(const char *key, const char *value)
{
	json_t *s;
	char *v, *n = NULL;

	if ((s = json_string(value)) == NULL)
		return NULL;
	v = json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(s);
	if (v != NULL && asprintf(&n, "\"%s\":%s", key, v) == -1)
		n = NULL;
	free(v);
	return n;
}

static const char *
line_start(const char *base, const char *at)
{
	const char *nl = memrchr(base, '\n', (size_t)(at - base));

	return nl == NULL ? base : nl + 1;
}

/* Called for each line holding the needle; non-zero stops the scan. */
typedef int (*hit_fn)(void *arg, size_t fi, size_t off, json_t *rec);

/* Parses each line of t holding needle and hands it to fn, in trail order. */
static void
scan(const struct trail *t, const char *needle, hit_fn fn, void *arg)
{
	const char *b, *e, *p, *h, *ls, *le;
	size_t fi, nlen = strlen(needle);
	json_t *rec;

	for (fi = 0; fi < t->n; fi++) {
		b = t->f[fi].map;
		e = b + t->f[fi].len;
		for (p = b; p < e && (h = memmem(p, (size_t)(e - p), needle,
		    nlen)) != NULL; p = le + 1) {
			ls = line_start(b, h);
			le = memchr(h, '\n', (size_t)(e - h));
			rec = json_loadb(ls, (size_t)(le - ls), 0, NULL);
			if (rec == NULL)
				continue;	/* not a record; verify names it */
			if (fn(arg, fi, (size_t)(ls - b), rec))
				return;
		}
	}
}

static const char *
sget(const json_t *rec, const char *key)
{
	return json_string_value(json_object_get(rec, key));
}

/* The record's event name ("" without one). */
static const char *
evname(const json_t *rec)
{
	const char *e = sget(rec, "event");

	return e != NULL ? e : "";
}

/* ---- stories --------------------------------------------------------------- */

struct step {
	json_t		*rec;		/* owned */
	size_t		 fi;		/* its file in the trail */
	size_t		 off;		/* its line's offset there */
};

struct story {
	char		 fid[FID_HEX * 2 + 1];
	struct step	*s;		/* owned, trail order */
	size_t		 n;
	json_t		*missing;	/* owned: array of strings */
	char		 outcome[512];
};

struct query {
	const char	*partner;	/* PARTNER:PATH: the partner */
	const char	*field;		/* "sha256" or "path": must equal value */
	const char	*value;
	char		 (*fids)[FID_HEX * 2 + 1];
	size_t		 nfids;
};

static int
step_add(struct story *st, size_t fi, size_t off, json_t *rec)
{
	struct step *ns;

	if ((ns = reallocarray(st->s, st->n + 1, sizeof(*ns))) == NULL) {
		json_decref(rec);
		return 1;
	}
	st->s = ns;
	st->s[st->n].rec = rec;
	st->s[st->n].fi = fi;
	st->s[st->n].off = off;
	st->n++;
	return 0;
}

static int
on_fid(void *arg, size_t fi, size_t off, json_t *rec)
{
	struct story *st = arg;
	const char *f = sget(rec, "fid");

	if (f == NULL || strcmp(f, st->fid) != 0) {
		json_decref(rec);
		return 0;
	}
	return step_add(st, fi, off, rec);
}

/* A record naming the query's file: remember its fid once. */
static int
on_match(void *arg, size_t fi, size_t off, json_t *rec)
{
	struct query *q = arg;
	const char *f = sget(rec, "fid"), *v = sget(rec, q->field);
	const char *p = sget(rec, "partner");
	size_t i;
	int stop = 0;

	if (f == NULL || v == NULL || strcmp(v, q->value) != 0 ||
	    strlen(f) >= sizeof(q->fids[0]) ||
	    (q->partner != NULL && (p == NULL || strcmp(p, q->partner) != 0)))
		goto out;
	for (i = 0; i < q->nfids; i++)
		if (strcmp(q->fids[i], f) == 0)
			goto out;
	if (q->nfids == MAX_STORIES) {
		stop = 1;
		goto out;
	}
	xstrlcpy(q->fids[q->nfids++], f, sizeof(q->fids[0]));
out:
	json_decref(rec);
	return stop;
}

/*
 * The auth.success of session sid before (fi, off): searched backwards a
 * window at a time, in this file and then the earlier ones. A new record
 * (owned) with *where filled in, or NULL.
 */
static json_t *
find_login(const struct trail *t, size_t fi, size_t off, const char *sid,
    struct step *where)
{
	static const char ev[] = "\"event\":\"auth.success\"";
	const char *b, *h, *p, *stop, *ls, *le, *best = NULL, *bestend = NULL;
	char *nd;
	size_t i, nlen, lim, end, start;
	json_t *rec = NULL;

	if ((nd = needle_make("session", sid)) == NULL)
		return NULL;
	nlen = strlen(nd);
	for (i = fi + 1; i-- > 0 && best == NULL;) {
		b = t->f[i].map;
		lim = i == fi ? off : t->f[i].len;
		for (end = lim; end > 0 && best == NULL; end = start) {
			start = end > LOGIN_WINDOW ? end - LOGIN_WINDOW : 0;
			stop = b + (end + nlen - 1 < lim ? end + nlen - 1 : lim);
			for (p = b + start; p < stop && (h = memmem(p,
			    (size_t)(stop - p), nd, nlen)) != NULL; p = h + 1) {
				ls = line_start(b, h);
				le = memchr(h, '\n', t->f[i].len - (size_t)(h - b));
				if (memmem(ls, (size_t)(le - ls), ev,
				    sizeof(ev) - 1) != NULL) {
					best = ls;
					bestend = le;
				}
			}
		}
		if (best != NULL) {
			rec = json_loadb(best, (size_t)(bestend - best), 0, NULL);
			where->fi = i;
			where->off = (size_t)(best - b);
		}
	}
	free(nd);
	return rec;
}

static const json_t *
last_of(const struct story *st, const char *event, size_t *at)
{
	size_t i;

	for (i = st->n; i-- > 0;)
		if (strcmp(evname(st->s[i].rec), event) == 0) {
			if (at != NULL)
				*at = i;
			return st->s[i].rec;
		}
	return NULL;
}

static void
gap(struct story *st, const char *fmt, ...) SLUICE_PRINTF(2, 3);

static void
gap(struct story *st, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(st->missing, json_string(buf));
}

/* The upload half of an accepted file's story. */
static void
judge_upload(struct story *st, const json_t *acc)
{
	const json_t *stored, *held, *retry;
	size_t is = 0, ih = 0;

	stored = last_of(st, "file.stored", &is);
	held = last_of(st, "file.held", &ih);
	if (json_is_false(json_object_get(acc, "shipped"))) {
		xsnprintf(st->outcome, sizeof(st->outcome), "a sidecar kept "
		    "locally at %s, not shipped", sget(acc, "kept") ?
		    sget(acc, "kept") : "?");
		return;
	}
	if (held != NULL && (stored == NULL || ih > is)) {
		gap(st, "file.stored: the file is held (%s); fix the cause and "
		    "release it with 'sluice queue retry'", sget(held, "error") ?
		    sget(held, "error") : "no error given");
		return;
	}
	if (stored == NULL) {
		retry = last_of(st, "upload.retry", NULL);
		gap(st, "file.stored: accepted but never stored%s%s",
		    retry ? "; last attempt failed: " : "",
		    retry && sget(retry, "error") ? sget(retry, "error") : "");
		return;
	}
	xsnprintf(st->outcome, sizeof(st->outcome), "stored as %s%s/%s%s%s",
	    sget(stored, "store") != NULL && strncmp(sget(stored, "store"),
	    "file://", 7) == 0 ? "file://" : "s3://",
	    sget(stored, "bucket") ? sget(stored, "bucket") : "?",
	    sget(stored, "key") ? sget(stored, "key") : "?",
	    sget(stored, "version_id") && *sget(stored, "version_id") ?
	    " version " : "", sget(stored, "version_id") ?
	    sget(stored, "version_id") : "");
	if (last_of(st, "file.removed", NULL) != NULL)
		xstrlcat(st->outcome, "; local copy removed",
		    sizeof(st->outcome));
	else if (last_of(st, "file.archived", NULL) != NULL)
		xstrlcat(st->outcome, "; local copy archived (kept by "
		    "retention)", sizeof(st->outcome));
	else
		gap(st, "file.removed or file.archived: stored, but the local "
		    "copy's removal or archiving was never recorded");
}

/* Fills st->missing and st->outcome from the steps. */
static void
judge(struct story *st, int login_found, const char *sid)
{
	const json_t *rcv, *acc, *rej, *forged, *unrec, *wait, *qc, *qf;
	size_t ia = 0, ir = 0, iqc = 0, iqf = 0;

	rcv = last_of(st, "file.received", NULL);
	acc = last_of(st, "file.accepted", &ia);
	rej = last_of(st, "file.rejected", &ir);
	forged = last_of(st, "file.forged", NULL);
	unrec = last_of(st, "file.unrecorded", NULL);
	if (rcv == NULL && forged == NULL && unrec == NULL)
		gap(st, "file.received: no record of the bytes' receipt (size, "
		    "sha256) for this fid");
	if (rcv != NULL && sid != NULL && !login_found)
		gap(st, "auth.success: the login of session %s that sent the "
		    "file is not in the trail", sid);
	if (forged != NULL || unrec != NULL) {
		xsnprintf(st->outcome, sizeof(st->outcome), "%s: quarantined "
		    "as %s", forged ? "forged" : "unrecorded",
		    sget(forged ? forged : unrec, "quarantined_as") ?
		    sget(forged ? forged : unrec, "quarantined_as") : "?");
		return;
	}
	if (rej != NULL && (acc == NULL || ir > ia)) {
		xsnprintf(st->outcome, sizeof(st->outcome), "rejected (%s); "
		    "kept in quarantine", sget(rej, "reason") ?
		    sget(rej, "reason") : "no reason given");
		qc = last_of(st, "file.quarantine_copied", &iqc);
		qf = last_of(st, "file.quarantine_copy_failed", &iqf);
		if (qf != NULL && (qc == NULL || iqf > iqc))
			gap(st, "file.quarantine_copied: the copy to the "
			    "quarantine prefix failed (%s) and was not done yet",
			    sget(qf, "error") ? sget(qf, "error") : "?");
		return;
	}
	if (acc == NULL) {
		if (last_of(st, "file.stored", NULL) != NULL)
			gap(st, "file.accepted: stored without a verdict to "
			    "ship it");
		else if ((wait = last_of(st, "file.waiting", NULL)) != NULL)
			gap(st, "a verdict (file.accepted or file.rejected): the "
			    "file waits for %s", sget(wait, "for") ?
			    sget(wait, "for") : "?");
		else
			gap(st, "a verdict (file.accepted or file.rejected): "
			    "received, never decided");
		return;
	}
	judge_upload(st, acc);
}

/* Collects the steps of fid (login first) and judges them. */
static int
story_build(const struct trail *t, struct story *st)
{
	const json_t *rcv;
	struct step w;
	const char *sid = NULL;
	char *nd;
	size_t i;
	json_t *login = NULL;

	if ((st->missing = json_array()) == NULL ||
	    (nd = needle_make("fid", st->fid)) == NULL)
		return -1;
	scan(t, nd, on_fid, st);
	free(nd);
	for (i = 0; i < st->n; i++)
		if (strcmp(evname(st->s[i].rec), "file.received") == 0)
			break;
	if (i < st->n) {
		rcv = st->s[i].rec;
		if ((sid = sget(rcv, "session")) != NULL && *sid != '\0')
			login = find_login(t, st->s[i].fi, st->s[i].off, sid, &w);
		else
			sid = NULL;
	}
	if (login != NULL) {
		if (step_add(st, w.fi, w.off, login) != 0)
			return -1;
		/* it came before every record of the file */
		w = st->s[st->n - 1];
		memmove(st->s + 1, st->s, (st->n - 1) * sizeof(*st->s));
		st->s[0] = w;
	}
	judge(st, login != NULL, sid);
	return 0;
}

static void
story_free(struct story *st)
{
	size_t i;

	for (i = 0; i < st->n; i++)
		json_decref(st->s[i].rec);
	free(st->s);
	json_decref(st->missing);
}

/* ---- telling it ------------------------------------------------------------ */

static int
chain_field(const char *k)
{
	static const char *const skip[] = { "seq", "ts", "event", "prev", "kid",
	    "hash", "mac", "fid", NULL };
	size_t i;

	for (i = 0; skip[i] != NULL; i++)
		if (strcmp(k, skip[i]) == 0)
			return 1;
	return 0;
}

/* Fields every record of a file repeats: shown when they change. */
static int
repeated_field(const char *k)
{
	return strcmp(k, "partner") == 0 || strcmp(k, "path") == 0 ||
	    strcmp(k, "size") == 0 || strcmp(k, "sha256") == 0 ||
	    strcmp(k, "session") == 0 || strcmp(k, "remote") == 0 ||
	    strcmp(k, "host") == 0 || strcmp(k, "key") == 0;
}

static void
print_value(FILE *out, const json_t *v)
{
	const char *s = json_string_value(v), *c;
	char *d;

	if (s != NULL && *s != '\0') {
		for (c = s; *c > ' ' && *c != '"' && *c != 0x7f; c++)
			;
		if (*c == '\0') {
			fputs(s, out);
			return;
		}
	}
	if ((d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT |
	    JSON_ENSURE_ASCII)) != NULL)
		fputs(d, out);
	free(d);
}

static void
print_step(FILE *out, const struct trail *t, const struct step *s,
    json_t *shown)
{
	const char *k, *ev = sget(s->rec, "event");
	const json_t *v, *old;

	fprintf(out, "  %-27s %-26s", sget(s->rec, "ts") ? sget(s->rec, "ts") :
	    "?", ev ? ev : "?");
	json_object_foreach(s->rec, k, v) {
		if (chain_field(k))
			continue;
		if (repeated_field(k)) {
			old = json_object_get(shown, k);
			if (old != NULL && json_equal(old, v))
				continue;
			json_object_set(shown, k, (json_t *)v);
		}
		fprintf(out, " %s=", k);
		print_value(out, v);
	}
	fprintf(out, "  [seq %lld, %s]\n",
	    (long long)json_integer_value(json_object_get(s->rec, "seq")),
	    t->f[s->fi].name);
}

static void
print_text(FILE *out, const struct trail *t, const struct story *st)
{
	json_t *shown = json_object(), *m;
	size_t i;

	fprintf(out, "file %s\n", st->fid);
	for (i = 0; i < st->n; i++)
		print_step(out, t, &st->s[i], shown);
	if (json_array_size(st->missing) == 0)
		fprintf(out, "  complete: %s\n", st->outcome);
	else {
		if (st->outcome[0] != '\0')
			fprintf(out, "  so far: %s\n", st->outcome);
		json_array_foreach(st->missing, i, m)
			fprintf(out, "  GAP: missing %s\n", json_string_value(m));
	}
	json_decref(shown);
}

static json_t *
story_json(const struct trail *t, const struct story *st)
{
	const json_t *first = NULL;
	json_t *steps, *o;
	size_t i;

	for (i = 0; i < st->n && first == NULL; i++)
		if (sget(st->s[i].rec, "fid") != NULL)
			first = st->s[i].rec;
	if ((steps = json_array()) == NULL)
		return NULL;
	for (i = 0; i < st->n; i++)
		json_array_append_new(steps, json_pack("{s:O?,s:O?,s:O?,s:s,s:O}",
		    "seq", json_object_get(st->s[i].rec, "seq"),
		    "ts", json_object_get(st->s[i].rec, "ts"),
		    "event", json_object_get(st->s[i].rec, "event"),
		    "segment", t->f[st->s[i].fi].name, "record", st->s[i].rec));
	o = json_pack("{s:s,s:O?,s:O?,s:O?,s:O?,s:b,s:s?,s:O,s:o}",
	    "fid", st->fid,
	    "partner", first ? json_object_get(first, "partner") : NULL,
	    "path", first ? json_object_get(first, "path") : NULL,
	    "size", first ? json_object_get(first, "size") : NULL,
	    "sha256", first ? json_object_get(first, "sha256") : NULL,
	    "complete", json_array_size(st->missing) == 0,
	    "outcome", st->outcome[0] ? st->outcome : NULL,
	    "missing", st->missing, "steps", steps);
	return o;
}

static int
is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0';
}

/*
 * The fids the query names, in trail order, into q. -1 for a query that is
 * none of the three forms.
 */
static int
query_fids(const struct trail *t, const char *query, struct query *q)
{
	char *nd, *partner = NULL;
	const char *colon;

	if (is_hex(query, FID_HEX)) {
		xstrlcpy(q->fids[0], query, sizeof(q->fids[0]));
		q->nfids = 1;
		return 0;
	}
	if (is_hex(query, 64)) {
		q->field = "sha256";
		q->value = query;
	} else if ((colon = strchr(query, ':')) != NULL && colon != query &&
	    colon[1] != '\0') {
		if ((partner = strndup(query, (size_t)(colon - query))) == NULL)
			return -1;
		q->partner = partner;
		q->field = "path";
		/* the path as the partner sees it; a leading / is optional */
		q->value = colon[1] == '/' && colon[2] != '\0' ? colon + 2 :
		    colon + 1;
	} else
		return -1;
	if ((nd = needle_make(q->field, q->value)) != NULL)
		scan(t, nd, on_match, q);
	free(nd);
	free(partner);
	q->partner = NULL;
	return nd == NULL ? -1 : 0;
}

int
audit_trace(const struct trail *t, const char *query, int json, FILE *out)
{
	struct query q;
	struct story st;
	json_t *doc = NULL, *files = NULL, *o;
	size_t i;
	int rc = TRACE_COMPLETE, found = 0;

	memset(&q, 0, sizeof(q));
	if ((q.fids = calloc(MAX_STORIES, sizeof(*q.fids))) == NULL)
		return TRACE_ERROR;
	if (query_fids(t, query, &q) == -1) {
		fprintf(stderr, "sluice: \"%s\" is not a fid (32 hex digits), a "
		    "sha256 (64 hex digits) or PARTNER:PATH\n", query);
		rc = TRACE_ERROR;
		goto done;
	}
	if (json && ((files = json_array()) == NULL ||
	    (doc = json_pack("{s:s,s:O}", "query", query, "files", files)) ==
	    NULL)) {
		rc = TRACE_ERROR;
		goto done;
	}
	for (i = 0; i < q.nfids; i++) {
		memset(&st, 0, sizeof(st));
		xstrlcpy(st.fid, q.fids[i], sizeof(st.fid));
		if (story_build(t, &st) == -1) {
			story_free(&st);
			rc = TRACE_ERROR;
			goto done;
		}
		if (st.n > 0) {
			found++;
			if (json_array_size(st.missing) > 0)
				rc = TRACE_GAP;
			if (json && (o = story_json(t, &st)) != NULL)
				json_array_append_new(files, o);
			else if (!json)
				print_text(out, t, &st);
		}
		story_free(&st);
	}
	if (found == 0)
		rc = TRACE_NOTFOUND;
	if (json) {
		json_object_set_new(doc, "complete", json_boolean(rc ==
		    TRACE_COMPLETE));
		json_dumpf(doc, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
		    JSON_ENSURE_ASCII);
		fputc('\n', out);
	}
	if (found == 0)
		fprintf(stderr, "sluice: no file in the audit trail matches "
		    "\"%s\" (%zu file(s) searched)\n", query, t->n);
done:
	json_decref(files);
	json_decref(doc);
	free(q.fids);
	return rc;
}

/* ---- the command ----------------------------------------------------------- */

static void
trace_usage(void)
{
	fprintf(stderr, "usage: sluice audit trace [-c FILE] [--json] "
	    "FID|SHA256|PARTNER:PATH\n");
}

int
audit_trace_cmd(int argc, char **argv, const char *cfgpath)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "json",	no_argument,		NULL, 'j' },
		{ NULL,		0,			NULL, 0 },
	};
	struct config *cfg = NULL;
	struct trail t;
	int ch, json = 0, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfgpath = optarg; break;
		case 'j': json = 1; break;
		default: trace_usage(); return TRACE_ERROR;
		}
	}
	if (optind != argc - 1) {
		trace_usage();
		return TRACE_ERROR;
	}
	if (config_load(cfgpath, &cfg, stderr) == -1) {
		fprintf(stderr, "sluice: %s has errors (run 'sluice check-config "
		    "-c %s')\n", cfgpath, cfgpath);
		return TRACE_ERROR;
	}
	if (trail_open(cfg->audit_segments_dir, cfg->audit_path, &t) == -1) {
		config_free(cfg);
		return TRACE_ERROR;
	}
	rc = audit_trace(&t, argv[optind], json, stdout);
	if (fflush(stdout) == EOF)
		rc = TRACE_ERROR;
	trail_close(&t);
	config_free(cfg);
	return rc;
}
