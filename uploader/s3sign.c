/*
 * s3sign.c - AWS Signature Version 4 (store.h: sigv4_sign,
 * sigv4_sign_service, s3_uri_encode) and the bounded string builder the S3
 * backend shares (s3int.h: struct sbuf). We sign ourselves (OpenSSL through
 * common/util.h); every key and the canonical request (which may hold the
 * session token) are wiped before they are freed.
 */
#include "uploader/store.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "uploader/s3int.h"

void
s3_sb_addn(struct sbuf *b, const char *s, size_t n)
{
	if (b->err || n >= b->cap - b->len) {
		b->err = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
s3_sb_add(struct sbuf *b, const char *s)
{
	s3_sb_addn(b, s, strlen(s));
}

/* ---- SigV4 --------------------------------------------------------------- */

int
s3_uri_encode(const char *in, char *out, size_t outlen, int keep_slash)
{
	static const char hx[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t o = 0;

	if (outlen == 0)
		return -1;
	for (p = (const unsigned char *)in; *p != '\0'; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == '~' || (keep_slash && *p == '/')) {
			if (o + 1 >= outlen)
				goto trunc;
			out[o++] = (char)*p;
		} else {
			if (o + 3 >= outlen)
				goto trunc;
			out[o++] = '%';
			out[o++] = hx[*p >> 4];
			out[o++] = hx[*p & 0xf];
		}
	}
	out[o] = '\0';
	return 0;
trunc:
	out[0] = '\0';
	return -1;
}

struct sv_hdr {
	const char	*name;
	size_t		 nlen;
	const char	*val;
};

static int
sv_hdr_cmp(const struct sv_hdr *a, const struct sv_hdr *b)
{
	size_t n = a->nlen < b->nlen ? a->nlen : b->nlen;
	int c = memcmp(a->name, b->name, n);

	if (c != 0)
		return c;
	return a->nlen < b->nlen ? -1 : a->nlen > b->nlen;
}

/* Appends a header value as SigV4 canonicalises it: leading and trailing
 * blanks removed, runs of spaces as one space. */
void
s3_sb_add_trimmed(struct sbuf *b, const char *v)
{
	const char *end;
	int space = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (; v < end; v++) {
		if (*v == ' ' || *v == '\t') {
			space = 1;
			continue;
		}
		if (space)
			s3_sb_addn(b, " ", 1);
		space = 0;
		s3_sb_addn(b, v, 1);
	}
}

int
sigv4_sign(const struct aws_creds *creds, const char *region,
    const char *method, const char *canonical_uri, const char *canonical_query,
    const char **headers, size_t nheaders, const char *payload_sha256_hex,
    const char *amz_date, char *authorization, size_t authlen)
{
	return sigv4_sign_service(creds, region, "s3", method, canonical_uri,
	    canonical_query, headers, nheaders, payload_sha256_hex, amz_date,
	    authorization, authlen);
}

int
sigv4_sign_service(const struct aws_creds *creds, const char *region,
    const char *service, const char *method, const char *canonical_uri,
    const char *canonical_query, const char **headers, size_t nheaders,
    const char *payload_sha256_hex, const char *amz_date, char *authorization,
    size_t authlen)
{
	struct sv_hdr h[S3_MAX_HEADERS], t;
	struct sbuf cr = { 0 }, sh = { 0 }, sts = { 0 };
	char date[9], scope[160], crhex[SHA256_HEX], sighex[SHA256_HEX];
	char ksecret[4 + sizeof(creds->secret_key)];
	uint8_t k1[SHA256_LEN], k2[SHA256_LEN], dig[SHA256_LEN];
	const char *colon, *c;
	size_t i, j;
	int rc = -1;

	if (authlen > 0)
		authorization[0] = '\0';
	if (nheaders > S3_MAX_HEADERS || strlen(amz_date) != 16 ||
	    amz_date[8] != 'T' || amz_date[15] != 'Z' ||
	    strlen(payload_sha256_hex) == 0 || *region == '\0')
		return -1;
	for (i = 0; i < nheaders; i++) {
		if ((colon = strchr(headers[i], ':')) == NULL ||
		    colon == headers[i])
			return -1;
		for (c = headers[i]; c < colon; c++)
			if ((*c >= 'A' && *c <= 'Z') || *c == ' ' || *c == '\t')
				return -1;
		h[i].name = headers[i];
		h[i].nlen = (size_t)(colon - headers[i]);
		h[i].val = colon + 1;
	}
	for (i = 1; i < nheaders; i++) {		/* insertion sort: few */
		t = h[i];
		for (j = i; j > 0 && sv_hdr_cmp(&h[j - 1], &t) > 0; j--)
			h[j] = h[j - 1];
		h[j] = t;
	}
	for (i = 1; i < nheaders; i++)
		if (sv_hdr_cmp(&h[i - 1], &h[i]) == 0)
			return -1;		/* one value per name, please */

	memcpy(date, amz_date, 8);
	date[8] = '\0';
	if (xsnprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date,
	    region, service) < 0)
		return -1;
	cr.cap = SIGV4_BUF_MAX;
	sh.cap = 8192;
	sts.cap = 512;
	if ((cr.p = malloc(cr.cap)) == NULL || (sh.p = malloc(sh.cap)) == NULL ||
	    (sts.p = malloc(sts.cap)) == NULL)
		goto fail;
	cr.p[0] = sh.p[0] = sts.p[0] = '\0';

	/* Canonical request. */
	s3_sb_add(&cr, method);
	s3_sb_add(&cr, "\n");
	s3_sb_add(&cr, canonical_uri);
	s3_sb_add(&cr, "\n");
	s3_sb_add(&cr, canonical_query ? canonical_query : "");
	s3_sb_add(&cr, "\n");
	for (i = 0; i < nheaders; i++) {
		s3_sb_addn(&cr, h[i].name, h[i].nlen);
		s3_sb_add(&cr, ":");
		s3_sb_add_trimmed(&cr, h[i].val);
		s3_sb_add(&cr, "\n");
		if (i > 0)
			s3_sb_add(&sh, ";");
		s3_sb_addn(&sh, h[i].name, h[i].nlen);
	}
	s3_sb_add(&cr, "\n");
	s3_sb_add(&cr, sh.p);
	s3_sb_add(&cr, "\n");
	s3_sb_add(&cr, payload_sha256_hex);
	if (cr.err || sh.err || sha256_buf(cr.p, cr.len, dig) != 0)
		goto fail;
	hex_encode(dig, sizeof(dig), crhex);

	/* String to sign. */
	s3_sb_add(&sts, "AWS4-HMAC-SHA256\n");
	s3_sb_add(&sts, amz_date);
	s3_sb_add(&sts, "\n");
	s3_sb_add(&sts, scope);
	s3_sb_add(&sts, "\n");
	s3_sb_add(&sts, crhex);
	if (sts.err)
		goto fail;

	/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
	if (xsnprintf(ksecret, sizeof(ksecret), "AWS4%s", creds->secret_key) < 0 ||
	    hmac_sha256(ksecret, strlen(ksecret), date, strlen(date), k1) != 0 ||
	    hmac_sha256(k1, sizeof(k1), region, strlen(region), k2) != 0 ||
	    hmac_sha256(k2, sizeof(k2), service, strlen(service), k1) != 0 ||
	    hmac_sha256(k1, sizeof(k1), "aws4_request", 12, k2) != 0 ||
	    hmac_sha256(k2, sizeof(k2), sts.p, sts.len, dig) != 0)
		goto fail;
	hex_encode(dig, sizeof(dig), sighex);
	if (xsnprintf(authorization, authlen, "AWS4-HMAC-SHA256 Credential=%s/%s,"
	    "SignedHeaders=%s,Signature=%s", creds->access_key, scope, sh.p,
	    sighex) < 0)
		goto fail;
	rc = 0;
fail:
	if (rc != 0 && authlen > 0)
		authorization[0] = '\0';
	explicit_bzero(ksecret, sizeof(ksecret));
	explicit_bzero(k1, sizeof(k1));
	explicit_bzero(k2, sizeof(k2));
	if (cr.p != NULL)
		explicit_bzero(cr.p, cr.cap);	/* may hold the session token */
	free(cr.p);
	free(sh.p);
	free(sts.p);
	return rc;
}
