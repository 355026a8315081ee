/*
 * stsxml.c - STS's XML replies (AssumeRole, AssumeRoleWithWebIdentity and
 * <ErrorResponse>) read through the uploader's XML walker (s3xml.c: a
 * DOCTYPE or any entity declaration is refused, so nothing is ever
 * expanded; element text is bounded). The values are secrets: every buffer
 * is wiped.
 */
#include "uploader/creds.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "uploader/s3xml.h"

#define STS_XML_MAX	(64 * 1024)

enum sts_field { F_AK, F_SK, F_TOK, F_EXP, F_CODE, F_MSG, F_N };

struct sts_parse {
	char		 f[F_N][2048];
	int		 seen[F_N];
	int		 over;		/* a value was too long */
};

static int
on_elem(void *arg, const char *path, const char *text, size_t n)
{
	static const char *const pat[F_N] = { "Credentials/AccessKeyId",
	    "Credentials/SecretAccessKey", "Credentials/SessionToken",
	    "Credentials/Expiration", "Code", "Message" };
	struct sts_parse *s = arg;
	int i;

	for (i = 0; i < F_N; i++) {
		if (!s3xml_match(path, pat[i]))
			continue;
		if (n >= sizeof(s->f[i])) {
			s->over = 1;
			return 1;
		}
		memcpy(s->f[i], text, n + 1);
		s->seen[i] = 1;
		break;
	}
	return 0;
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
	char werr[256];
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (len > STS_XML_MAX) {
		xsnprintf(err, errlen, "the STS reply is larger than %d bytes",
		    STS_XML_MAX);
		return -1;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		xsnprintf(err, errlen, "out of memory");
		return -1;
	}
	if (s3xml_walk(xml, len, on_elem, s, werr, sizeof(werr)) != 0) {
		xsnprintf(err, errlen, "the STS reply is not XML it can read "
		    "(%s)", s->over ? "a value is too long" : werr);
		goto fail;
	}
	rc = sts_fields(s, c, err, errlen);
fail:
	explicit_bzero(werr, sizeof(werr));
	explicit_bzero(s, sizeof(*s));
	free(s);
	if (rc != 0)
		explicit_bzero(c, sizeof(*c));
	return rc;
}
