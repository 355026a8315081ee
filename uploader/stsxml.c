/*
 * stsxml.c - STS's XML replies (AssumeRole, AssumeRoleWithWebIdentity and
 * <ErrorResponse>) read with expat. A document with a DOCTYPE or any entity
 * declaration is refused outright, so nothing is ever expanded; element
 * text is bounded. The values are secrets: every buffer is wiped.
 */
#include "uploader/creds.h"

#include <stdlib.h>
#include <string.h>

#include <expat.h>

#include "common/util.h"

#define STS_XML_MAX	(64 * 1024)

enum sts_field { F_NONE = -1, F_AK, F_SK, F_TOK, F_EXP, F_CODE, F_MSG, F_N };

struct sts_parse {
	XML_Parser	 p;
	int		 depth;
	int		 in_creds;	/* inside <Credentials> */
	enum sts_field	 cur;
	char		 f[F_N][2048];
	size_t		 n[F_N];
	int		 seen[F_N];
	int		 over;		/* a value was too long */
	int		 refused;	/* DOCTYPE or entity */
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
	struct sts_parse *s = arg;
	const char *l = local(name);

	(void)attrs;
	s->depth++;
	s->cur = F_NONE;
	if (strcmp(l, "Credentials") == 0)
		s->in_creds = 1;
	else if (s->in_creds && strcmp(l, "AccessKeyId") == 0)
		s->cur = F_AK;
	else if (s->in_creds && strcmp(l, "SecretAccessKey") == 0)
		s->cur = F_SK;
	else if (s->in_creds && strcmp(l, "SessionToken") == 0)
		s->cur = F_TOK;
	else if (s->in_creds && strcmp(l, "Expiration") == 0)
		s->cur = F_EXP;
	else if (strcmp(l, "Code") == 0)
		s->cur = F_CODE;
	else if (strcmp(l, "Message") == 0)
		s->cur = F_MSG;
	if (s->cur != F_NONE) {
		s->n[s->cur] = 0;
		s->f[s->cur][0] = '\0';
		s->seen[s->cur] = 1;
	}
}

static void XMLCALL
on_end(void *arg, const XML_Char *name)
{
	struct sts_parse *s = arg;

	s->depth--;
	s->cur = F_NONE;
	if (strcmp(local(name), "Credentials") == 0)
		s->in_creds = 0;
}

static void XMLCALL
on_text(void *arg, const XML_Char *t, int len)
{
	struct sts_parse *s = arg;
	size_t room;

	if (s->cur == F_NONE || len <= 0)
		return;
	room = sizeof(s->f[0]) - 1 - s->n[s->cur];
	if ((size_t)len > room) {
		s->over = 1;
		XML_StopParser(s->p, XML_FALSE);
		return;
	}
	memcpy(s->f[s->cur] + s->n[s->cur], t, (size_t)len);
	s->n[s->cur] += (size_t)len;
	s->f[s->cur][s->n[s->cur]] = '\0';
}

static void XMLCALL
on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int has_internal)
{
	struct sts_parse *s = arg;

	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal;
	s->refused = 1;
	XML_StopParser(s->p, XML_FALSE);
}

static void XMLCALL
on_entity(void *arg, const XML_Char *name, int param, const XML_Char *value,
    int vlen, const XML_Char *base, const XML_Char *sysid,
    const XML_Char *pubid, const XML_Char *notation)
{
	struct sts_parse *s = arg;

	(void)name; (void)param; (void)value; (void)vlen; (void)base;
	(void)sysid; (void)pubid; (void)notation;
	s->refused = 1;
	XML_StopParser(s->p, XML_FALSE);
}

static int
sts_fields(struct sts_parse *s, struct aws_creds *c, char *err, size_t errlen)
{
	if (s->seen[F_CODE]) {
		xsnprintf(err, errlen, "STS error %s: %.300s", s->f[F_CODE],
		    s->f[F_MSG]);
		return -1;
	}
	if (!s->seen[F_AK] || !s->seen[F_SK] || !s->seen[F_TOK] ||
	    s->f[F_AK][0] == '\0' || s->f[F_SK][0] == '\0') {
		xsnprintf(err, errlen, "the STS reply holds no Credentials "
		    "(AccessKeyId, SecretAccessKey, SessionToken)");
		return -1;
	}
	if (xstrlcpy(c->access_key, s->f[F_AK], sizeof(c->access_key)) >=
	    sizeof(c->access_key) ||
	    xstrlcpy(c->secret_key, s->f[F_SK], sizeof(c->secret_key)) >=
	    sizeof(c->secret_key) ||
	    xstrlcpy(c->session_token, s->f[F_TOK],
	    sizeof(c->session_token)) >= sizeof(c->session_token)) {
		xsnprintf(err, errlen, "a credential in the STS reply is too "
		    "long");
		return -1;
	}
	if (!s->seen[F_EXP] || creds_parse_time(s->f[F_EXP],
	    &c->expires_ms) != 0) {
		xsnprintf(err, errlen, "the STS reply has no valid Expiration");
		return -1;
	}
	return 0;
}

int
sts_parse_credentials(const char *xml, size_t len, struct aws_creds *c,
    char *err, size_t errlen)
{
	struct sts_parse *s;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (len > STS_XML_MAX) {
		xsnprintf(err, errlen, "the STS reply is larger than %d bytes",
		    STS_XML_MAX);
		return -1;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->p = XML_ParserCreate("UTF-8")) == NULL) {
		xsnprintf(err, errlen, "out of memory");
		free(s);
		return -1;
	}
	s->cur = F_NONE;
	XML_SetUserData(s->p, s);
	XML_SetElementHandler(s->p, on_start, on_end);
	XML_SetCharacterDataHandler(s->p, on_text);
	XML_SetStartDoctypeDeclHandler(s->p, on_doctype);
	XML_SetEntityDeclHandler(s->p, on_entity);
	XML_SetParamEntityParsing(s->p, XML_PARAM_ENTITY_PARSING_NEVER);
	if (XML_Parse(s->p, xml, (int)len, XML_TRUE) != XML_STATUS_OK ||
	    s->refused || s->over) {
		xsnprintf(err, errlen, "the STS reply is not XML it can read "
		    "(%s)", s->refused ? "it declares a DOCTYPE or entities" :
		    s->over ? "a value is too long" :
		    XML_ErrorString(XML_GetErrorCode(s->p)));
		goto fail;
	}
	rc = sts_fields(s, c, err, errlen);
fail:
	XML_ParserFree(s->p);
	explicit_bzero(s, sizeof(*s));
	free(s);
	if (rc != 0)
		explicit_bzero(c, sizeof(*c));
	return rc;
}
