/*
 * s3list.c - one ListObjectsV2 reply (<ListBucketResult>) read with expat
 * (see s3_list_parse in store.h). A document with a DOCTYPE or an entity
 * declaration is refused outright, so nothing is ever expanded; element
 * text is bounded (a key longer than S3 allows is an error, never cut).
 */
#include "uploader/store.h"

#include <stdio.h>
#include <string.h>

#include <expat.h>

#include "common/util.h"

#define LIST_KEY_MAX	1024		/* S3's limit on a key, in bytes */
#define LIST_XML_MAX	(16 * 1024 * 1024)

enum lfield { L_NONE, L_KEY, L_SIZE, L_TRUNC, L_TOKEN };

struct lparse {
	XML_Parser	 p;
	int		 depth;
	int		 root_ok;	/* <ListBucketResult> at depth 1 */
	int		 in_contents;	/* inside <Contents> (depth 2) */
	enum lfield	 cur;
	char		 text[2048];	/* the current field's text */
	size_t		 n;
	int		 over;		/* a field's text was too long */
	int		 refused;	/* DOCTYPE or entity declaration */
	char		 key[LIST_KEY_MAX + 1];
	int		 has_key;
	int64_t		 size;
	int		 truncated;
	char		*token;
	size_t		 tokenlen;
	int		 stop;		/* fn's non-zero answer */
	int		 bad_size;
	int		(*fn)(void *, const char *, int64_t);
	void		*arg;
};

/* "ns:Name" or "Name" -> "Name" (expat runs without namespaces). */
static const char *
local(const XML_Char *name)
{
	const char *c = strrchr(name, ':');

	return c != NULL ? c + 1 : name;
}

static void XMLCALL
on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct lparse *l = arg;
	const char *e = local(name);

	(void)attrs;
	l->depth++;
	l->cur = L_NONE;
	l->n = 0;
	if (l->depth == 1) {
		l->root_ok = strcmp(e, "ListBucketResult") == 0;
		return;
	}
	if (l->depth == 2 && strcmp(e, "Contents") == 0) {
		l->in_contents = 1;
		l->has_key = 0;
		l->size = -1;
	} else if (l->depth == 3 && l->in_contents && strcmp(e, "Key") == 0)
		l->cur = L_KEY;
	else if (l->depth == 3 && l->in_contents && strcmp(e, "Size") == 0)
		l->cur = L_SIZE;
	else if (l->depth == 2 && strcmp(e, "IsTruncated") == 0)
		l->cur = L_TRUNC;
	else if (l->depth == 2 && strcmp(e, "NextContinuationToken") == 0)
		l->cur = L_TOKEN;
}

/* The finished field's text (l->text[0..n)) where it belongs. */
static void
field_end(struct lparse *l)
{
	l->text[l->n] = '\0';
	switch (l->cur) {
	case L_KEY:
		if (l->n > LIST_KEY_MAX || l->n == 0)
			l->over = 1;
		else {
			memcpy(l->key, l->text, l->n + 1);
			l->has_key = 1;
		}
		break;
	case L_SIZE:
		if (parse_int64(l->text, 0, INT64_MAX, &l->size) != 0)
			l->bad_size = 1;
		break;
	case L_TRUNC:
		l->truncated = strcmp(l->text, "true") == 0;
		break;
	case L_TOKEN:
		if (l->n >= l->tokenlen)
			l->over = 1;
		else
			memcpy(l->token, l->text, l->n + 1);
		break;
	default:
		break;
	}
}

static void XMLCALL
on_end(void *arg, const XML_Char *name)
{
	struct lparse *l = arg;

	if (l->cur != L_NONE)
		field_end(l);
	l->cur = L_NONE;
	if (l->depth == 2 && l->in_contents &&
	    strcmp(local(name), "Contents") == 0) {
		l->in_contents = 0;
		if (!l->has_key)
			l->over = 1;
		else if (l->stop == 0 && !l->over && !l->bad_size &&
		    (l->stop = l->fn(l->arg, l->key, l->size)) != 0)
			XML_StopParser(l->p, XML_FALSE);
	}
	l->depth--;
	if (l->over || l->bad_size)
		XML_StopParser(l->p, XML_FALSE);
}

static void XMLCALL
on_text(void *arg, const XML_Char *s, int len)
{
	struct lparse *l = arg;

	if (l->cur == L_NONE || len <= 0)
		return;
	if (l->n + (size_t)len >= sizeof(l->text)) {
		l->over = 1;
		XML_StopParser(l->p, XML_FALSE);
		return;
	}
	memcpy(l->text + l->n, s, (size_t)len);
	l->n += (size_t)len;
}

static void XMLCALL
on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int internal)
{
	struct lparse *l = arg;

	(void)name;
	(void)sysid;
	(void)pubid;
	(void)internal;
	l->refused = 1;
	XML_StopParser(l->p, XML_FALSE);
}

static void XMLCALL
on_entity(void *arg, const XML_Char *name, int pe, const XML_Char *value,
    int vlen, const XML_Char *base, const XML_Char *sysid,
    const XML_Char *pubid, const XML_Char *notation)
{
	struct lparse *l = arg;

	(void)name;
	(void)pe;
	(void)value;
	(void)vlen;
	(void)base;
	(void)sysid;
	(void)pubid;
	(void)notation;
	l->refused = 1;
	XML_StopParser(l->p, XML_FALSE);
}

int
s3_list_parse(const char *body, size_t len,
    int (*fn)(void *, const char *, int64_t), void *arg, int *truncated,
    char *token, size_t tokenlen, char *err, size_t errlen)
{
	struct lparse l;
	enum XML_Status st;
	int rc = -1;

	*truncated = 0;
	if (tokenlen > 0)
		token[0] = '\0';
	if (errlen > 0)
		err[0] = '\0';
	if (len > LIST_XML_MAX || tokenlen == 0) {
		xsnprintf(err, errlen, "the listing is larger than %d bytes",
		    LIST_XML_MAX);
		return -1;
	}
	memset(&l, 0, sizeof(l));
	l.fn = fn;
	l.arg = arg;
	l.token = token;
	l.tokenlen = tokenlen;
	if ((l.p = XML_ParserCreate("UTF-8")) == NULL) {
		xsnprintf(err, errlen, "out of memory");
		return -1;
	}
	XML_SetUserData(l.p, &l);
	XML_SetElementHandler(l.p, on_start, on_end);
	XML_SetCharacterDataHandler(l.p, on_text);
	XML_SetStartDoctypeDeclHandler(l.p, on_doctype);
	XML_SetEntityDeclHandler(l.p, on_entity);
	st = XML_Parse(l.p, body, (int)len, XML_TRUE);
	if (l.stop != 0)
		rc = l.stop;
	else if (l.refused)
		xsnprintf(err, errlen, "the listing has a DOCTYPE or entity "
		    "declaration; refused");
	else if (l.over)
		xsnprintf(err, errlen, "the listing has a key or token that is "
		    "empty or too long");
	else if (l.bad_size)
		xsnprintf(err, errlen, "the listing has an object whose Size "
		    "is not a number");
	else if (st != XML_STATUS_OK)
		xsnprintf(err, errlen, "the listing is not well-formed XML "
		    "(line %lu: %s)", (unsigned long)XML_GetCurrentLineNumber(l.p),
		    XML_ErrorString(XML_GetErrorCode(l.p)));
	else if (!l.root_ok)
		xsnprintf(err, errlen, "the reply is not a ListBucketResult");
	else {
		*truncated = l.truncated;
		rc = 0;
	}
	XML_ParserFree(l.p);
	if (rc == -1 && tokenlen > 0)
		token[0] = '\0';
	return rc;
}
