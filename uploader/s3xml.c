/*
 * s3xml.c - the one XML reader of the uploader (see s3xml.h): expat with
 * DOCTYPEs refused, parameter entities off, bounded text, nesting and size;
 * a walker that hands each finished element's path and decoded text to a
 * callback. Also the escaping writer for the one body we send as XML.
 */
#include "uploader/s3xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>

#include "common/util.h"

#define S3XML_PATH_MAX	1024

enum walk_fault { W_OK = 0, W_REFUSED, W_TEXT, W_DEEP };

struct walk {
	XML_Parser	 p;
	s3xml_fn	 fn;
	void		*arg;
	int		 depth;
	size_t		 plen[S3XML_DEPTH_MAX + 1];	/* path length per depth */
	char		 path[S3XML_PATH_MAX];
	char		 text[S3XML_TEXT_MAX + 1];
	size_t		 n;
	enum walk_fault	 fault;
	int		 stop;		/* fn's non-zero answer */
};

/* "ns:Name" or "Name" -> "Name" (expat runs without namespaces). */
static const char *
local(const XML_Char *name)
{
	const char *c = strrchr(name, ':');

	return c != NULL ? c + 1 : name;
}

static void
walk_stop(struct walk *w, enum walk_fault f)
{
	if (w->fault == W_OK && w->stop == 0)
		w->fault = f;
	XML_StopParser(w->p, XML_FALSE);
}

static void XMLCALL
on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct walk *w = arg;
	const char *e = local(name);
	size_t at = w->depth > 0 ? w->plen[w->depth] : 0, el = strlen(e);

	(void)attrs;
	if (w->fault != W_OK || w->stop != 0)
		return;
	if (w->depth >= S3XML_DEPTH_MAX ||
	    at + (at > 0) + el + 1 > sizeof(w->path)) {
		walk_stop(w, W_DEEP);
		return;
	}
	if (at > 0)
		w->path[at++] = '/';
	memcpy(w->path + at, e, el + 1);
	w->plen[++w->depth] = at + el;
	w->n = 0;
}

static void XMLCALL
on_end(void *arg, const XML_Char *name)
{
	struct walk *w = arg;
	size_t up;

	(void)name;
	if (w->fault != W_OK || w->stop != 0 || w->depth == 0)
		return;
	w->text[w->n] = '\0';
	w->path[w->plen[w->depth]] = '\0';
	if ((w->stop = w->fn(w->arg, w->path, w->text, w->n)) != 0) {
		XML_StopParser(w->p, XML_FALSE);
		return;
	}
	w->depth--;
	up = w->depth > 0 ? w->plen[w->depth] : 0;
	w->path[up] = '\0';
	w->n = 0;
}

static void XMLCALL
on_text(void *arg, const XML_Char *s, int len)
{
	struct walk *w = arg;

	if (len <= 0 || w->fault != W_OK || w->stop != 0)
		return;
	if ((size_t)len > S3XML_TEXT_MAX - w->n) {
		walk_stop(w, W_TEXT);
		return;
	}
	memcpy(w->text + w->n, s, (size_t)len);
	w->n += (size_t)len;
}

static void XMLCALL
on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int internal)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)internal;
	walk_stop(arg, W_REFUSED);
}

static void XMLCALL
on_entity(void *arg, const XML_Char *name, int pe, const XML_Char *value,
    int vlen, const XML_Char *base, const XML_Char *sysid,
    const XML_Char *pubid, const XML_Char *notation)
{
	(void)name;
	(void)pe;
	(void)value;
	(void)vlen;
	(void)base;
	(void)sysid;
	(void)pubid;
	(void)notation;
	walk_stop(arg, W_REFUSED);
}

int
s3xml_walk(const char *body, size_t len, s3xml_fn fn, void *arg, char *err,
    size_t errlen)
{
	struct walk *w;
	enum XML_Status st;
	int rc = -1;

	if (errlen > 0)
		err[0] = '\0';
	if (len > S3XML_MAX) {
		xsnprintf(err, errlen, "the reply is larger than %d bytes",
		    S3XML_MAX);
		return -1;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->p = XML_ParserCreate("UTF-8")) == NULL) {
		xsnprintf(err, errlen, "out of memory");
		free(w);
		return -1;
	}
	w->fn = fn;
	w->arg = arg;
	/* Blanks before the document (S3 may send some to keep a slow
	 * completion alive) are not XML, but they say nothing either. */
	while (len > 0 && (*body == ' ' || *body == '\t' || *body == '\r' ||
	    *body == '\n')) {
		body++;
		len--;
	}
	XML_SetUserData(w->p, w);
	XML_SetElementHandler(w->p, on_start, on_end);
	XML_SetCharacterDataHandler(w->p, on_text);
	XML_SetStartDoctypeDeclHandler(w->p, on_doctype);
	XML_SetEntityDeclHandler(w->p, on_entity);
	XML_SetParamEntityParsing(w->p, XML_PARAM_ENTITY_PARSING_NEVER);
	st = XML_Parse(w->p, len > 0 ? body : "", (int)len, XML_TRUE);
	if (w->stop != 0)
		rc = w->stop;
	else if (w->fault == W_REFUSED)
		xsnprintf(err, errlen, "the reply has a DOCTYPE or entity "
		    "declaration; refused");
	else if (w->fault == W_TEXT)
		xsnprintf(err, errlen, "the reply has an element whose text "
		    "is too long (over %d bytes)", S3XML_TEXT_MAX);
	else if (w->fault == W_DEEP)
		xsnprintf(err, errlen, "the reply's elements are nested too "
		    "deep or named too long");
	else if (st != XML_STATUS_OK)
		xsnprintf(err, errlen, "the reply is not well-formed XML "
		    "(line %lu: %s)", (unsigned long)XML_GetCurrentLineNumber(w->p),
		    XML_ErrorString(XML_GetErrorCode(w->p)));
	else
		rc = 0;
	XML_ParserFree(w->p);
	explicit_bzero(w, sizeof(*w));
	free(w);
	return rc;
}

/* The number of '/'-separated components of s. */
static size_t
ncomp(const char *s)
{
	size_t n = 1;

	for (; *s != '\0'; s++)
		n += *s == '/';
	return n;
}

/* Does component p (up to '/' or NUL) match t ("*" matches any one)? */
static int
comp_eq(const char *p, const char *t)
{
	size_t pl = strcspn(p, "/"), tl = strcspn(t, "/");

	if (pl == 1 && p[0] == '*')
		return 1;
	return pl == tl && memcmp(p, t, pl) == 0;
}

int
s3xml_match(const char *path, const char *pattern)
{
	size_t np, nt, i;
	int anchored = pattern[0] == '/';

	if (anchored)
		pattern++;
	np = ncomp(path);
	nt = ncomp(pattern);
	if (nt > np || (anchored && nt != np))
		return 0;
	for (i = nt; i < np; i++)	/* skip to the components compared */
		path = strchr(path, '/') + 1;
	for (;;) {
		if (!comp_eq(pattern, path))
			return 0;
		if ((pattern = strchr(pattern, '/')) == NULL)
			return 1;
		pattern++;
		path = strchr(path, '/') + 1;
	}
}

struct text_find {
	const char	*pattern;
	char		*out;
	size_t		 outlen;
	int		 found;		/* 1 found, -1 did not fit */
};

static int
text_cb(void *arg, const char *path, const char *text, size_t len)
{
	struct text_find *t = arg;

	if (t->found != 0 || !s3xml_match(path, t->pattern))
		return 0;
	if (len >= t->outlen)
		t->found = -1;
	else {
		memcpy(t->out, text, len + 1);
		t->found = 1;
	}
	return 0;	/* read on: *whole tells whether the rest is sound */
}

int
s3xml_text(const char *body, size_t len, const char *pattern, char *out,
    size_t outlen, int *whole)
{
	struct text_find t;
	char err[160];
	int rc;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	memset(&t, 0, sizeof(t));
	t.pattern = pattern;
	t.out = out;
	t.outlen = outlen;
	rc = s3xml_walk(body, len, text_cb, &t, err, sizeof(err));
	if (whole != NULL)
		*whole = rc == 0;
	return t.found;
}

/* Appends s, escaped when esc,, at *o of out; 0 or -1. */
static int
put(char *out, size_t outlen, size_t *o, const char *s, int esc)
{
	const char *rep;
	char one[2];
	size_t n;

	for (; *s != '\0'; s++) {
		rep = one;
		one[0] = *s;
		one[1] = '\0';
		if (esc && *s == '&')
			rep = "&amp;";
		else if (esc && *s == '<')
			rep = "&lt;";
		else if (esc && *s == '>')
			rep = "&gt;";
		else if (esc && *s == '"')
			rep = "&quot;";
		else if (esc && *s == '\'')
			rep = "&apos;";
		n = strlen(rep);
		if (n >= outlen - *o)
			return -1;
		memcpy(out + *o, rep, n + 1);
		*o += n;
	}
	return 0;
}

int
s3xml_escape_cat(char *out, size_t outlen, const char *s)
{
	size_t o = strnlen(out, outlen), start = o;

	if (o >= outlen)
		return -1;
	if (put(out, outlen, &o, s, 1) != 0) {
		out[start] = '\0';
		return -1;
	}
	return 0;
}

char *
s3xml_complete_body(const struct s3xml_part *parts, size_t n, size_t *len)
{
	char *b, etag[260], num[32];
	size_t cap, i, el, o = 0;
	const char *e;

	*len = 0;
	if (n == 0 || n > 100000)
		return NULL;
	/* an escaped ETag (<= 256) or checksum (<= 64) grows at most 6 times */
	cap = 256 + n * (6 * 260 + 6 * 64 + 128);
	if ((b = malloc(cap)) == NULL)
		return NULL;
	b[0] = '\0';
	if (put(b, cap, &o, "<CompleteMultipartUpload xmlns=\"http://"
	    "s3.amazonaws.com/doc/2006-03-01/\">", 0) != 0)
		goto fail;
	for (i = 0; i < n; i++) {
		/* S3 gives ETags quoted: send them quoted, whatever we kept. */
		e = parts[i].etag;
		if (*e == '"')
			e++;
		el = strlen(e);
		if (el > 0 && e[el - 1] == '"')
			el--;
		if (el == 0 || el > 250 || parts[i].checksum == NULL)
			goto fail;
		etag[0] = '"';
		memcpy(etag + 1, e, el);
		etag[el + 1] = '"';
		etag[el + 2] = '\0';
		xsnprintf(num, sizeof(num), "%d", parts[i].number);
		if (put(b, cap, &o, "<Part><PartNumber>", 0) != 0 ||
		    put(b, cap, &o, num, 0) != 0 ||
		    put(b, cap, &o, "</PartNumber><ETag>", 0) != 0 ||
		    put(b, cap, &o, etag, 1) != 0 ||
		    put(b, cap, &o, "</ETag><ChecksumSHA256>", 0) != 0 ||
		    put(b, cap, &o, parts[i].checksum, 1) != 0 ||
		    put(b, cap, &o, "</ChecksumSHA256></Part>", 0) != 0)
			goto fail;
	}
	if (put(b, cap, &o, "</CompleteMultipartUpload>", 0) != 0)
		goto fail;
	*len = o;
	return b;
fail:
	free(b);
	return NULL;
}
