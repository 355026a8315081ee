/*
 * s3.c - the S3 backend: one signed PUT per store_put, streamed from the
 * spooled fd with pread, then a HEAD with x-amz-checksum-mode: ENABLED to
 * confirm what S3 holds. We sign with SigV4 ourselves (OpenSSL through
 * common/util.h) and send our own Authorization; CURLOPT_AWS_SIGV4 is not
 * used. One CURL easy handle per store keeps the connection alive.
 *
 * Ownership: struct s3_store borrows cfg and owns a copy of the credentials,
 * wiped in s3_store_close(). Nothing here logs a credential or the
 * Authorization header, and CURLOPT_VERBOSE is never set.
 */
#include "uploader/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/log.h"
#include "common/util.h"

#define S3_MAX_KEY	1024		/* S3's limit on a key, in bytes */
#define S3_MAX_URI	(3 * S3_MAX_KEY + 600)
#define S3_MAX_HEADERS	64		/* signed headers per request */
#define S3_MAX_META	40
#define S3_BODY_MAX	(16 * 1024)	/* kept of an error body; the rest is dropped */
#define SIGV4_BUF_MAX	(64 * 1024)	/* cap on a canonical request */
#define EMPTY_SHA256	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3_store {
	const struct store_config *cfg;
	struct aws_creds	 creds;
	CURL			*curl;
	char			 origin[600];	/* scheme://host[:port] of every URL */
	char			 host[400];	/* Host header: host[:port] unless default */
	char			 uri_prefix[300];	/* "/bucket" (path style) or "" */
	time_t			 skew;		/* S3's clock minus ours (RequestTimeTooSkewed) */
};

/* What we keep of one response. */
struct s3_resp {
	long	 status;
	char	 etag[256];
	char	 version_id[256];
	char	 checksum[128];		/* x-amz-checksum-sha256 */
	char	 request_id[128];	/* x-amz-request-id, for the log */
	char	 date[64];
	char	 body[S3_BODY_MAX + 1];
	size_t	 bodylen;
};

enum upload_err {
	UP_OK = 0,
	UP_SHORT,	/* the file ended before size bytes */
	UP_IO,		/* pread failed */
	UP_DIGEST,	/* the bytes read do not hash to the request's SHA-256 */
};

/* The body of a PUT: exactly size bytes of fd from offset 0. */
struct s3_upload {
	int		 fd;
	int64_t		 size;
	int64_t		 off;
	struct sha256	*h;		/* hash of [0, off) while hashing */
	int		 hashing;
	const uint8_t	*want;		/* SHA256_LEN bytes */
	enum upload_err	 err;
	int		 saved_errno;
};

/* ---- bounded string building ---------------------------------------- */

struct sbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
	int	 err;
};

static void
sb_addn(struct sbuf *b, const char *s, size_t n)
{
	if (b->err || n >= b->cap - b->len) {
		b->err = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_add(struct sbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

/* Copies s to out (outlen >= 1) with control bytes as '?': for messages. */
static void
printable(const char *s, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < outlen; i++)
		out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	out[i] = '\0';
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
static void
sb_add_trimmed(struct sbuf *b, const char *v)
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
			sb_addn(b, " ", 1);
		space = 0;
		sb_addn(b, v, 1);
	}
}

int
sigv4_sign(const struct aws_creds *creds, const char *region,
    const char *method, const char *canonical_uri, const char *canonical_query,
    const char **headers, size_t nheaders, const char *payload_sha256_hex,
    const char *amz_date, char *authorization, size_t authlen)
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
	if (xsnprintf(scope, sizeof(scope), "%s/%s/s3/aws4_request", date,
	    region) < 0)
		return -1;
	cr.cap = SIGV4_BUF_MAX;
	sh.cap = 8192;
	sts.cap = 512;
	if ((cr.p = malloc(cr.cap)) == NULL || (sh.p = malloc(sh.cap)) == NULL ||
	    (sts.p = malloc(sts.cap)) == NULL)
		goto fail;
	cr.p[0] = sh.p[0] = sts.p[0] = '\0';

	/* Canonical request. */
	sb_add(&cr, method);
	sb_add(&cr, "\n");
	sb_add(&cr, canonical_uri);
	sb_add(&cr, "\n");
	sb_add(&cr, canonical_query ? canonical_query : "");
	sb_add(&cr, "\n");
	for (i = 0; i < nheaders; i++) {
		sb_addn(&cr, h[i].name, h[i].nlen);
		sb_add(&cr, ":");
		sb_add_trimmed(&cr, h[i].val);
		sb_add(&cr, "\n");
		if (i > 0)
			sb_add(&sh, ";");
		sb_addn(&sh, h[i].name, h[i].nlen);
	}
	sb_add(&cr, "\n");
	sb_add(&cr, sh.p);
	sb_add(&cr, "\n");
	sb_add(&cr, payload_sha256_hex);
	if (cr.err || sh.err || sha256_buf(cr.p, cr.len, dig) != 0)
		goto fail;
	hex_encode(dig, sizeof(dig), crhex);

	/* String to sign. */
	sb_add(&sts, "AWS4-HMAC-SHA256\n");
	sb_add(&sts, amz_date);
	sb_add(&sts, "\n");
	sb_add(&sts, scope);
	sb_add(&sts, "\n");
	sb_add(&sts, crhex);
	if (sts.err)
		goto fail;

	/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), "s3"), "aws4_request") */
	if (xsnprintf(ksecret, sizeof(ksecret), "AWS4%s", creds->secret_key) < 0 ||
	    hmac_sha256(ksecret, strlen(ksecret), date, strlen(date), k1) != 0 ||
	    hmac_sha256(k1, sizeof(k1), region, strlen(region), k2) != 0 ||
	    hmac_sha256(k2, sizeof(k2), "s3", 2, k1) != 0 ||
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

/* ---- libcurl callbacks ------------------------------------------------- */

static void
hdr_value(const char *v, size_t n, char *out, size_t outlen)
{
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' ||
	    v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, v, n);
	out[n] = '\0';
}

static size_t
s3_header_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct s3_resp *r = arg;
	size_t len = size * nitems, nlen;
	const char *colon;

	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		/* A new response (after "100 Continue"): forget the last one. */
		r->etag[0] = r->version_id[0] = r->checksum[0] = '\0';
		r->request_id[0] = r->date[0] = '\0';
		return len;
	}
	if ((colon = memchr(buf, ':', len)) == NULL)
		return len;
	nlen = (size_t)(colon - buf);
	colon++;
#define HDR_IS(s) (nlen == sizeof(s) - 1 && strncasecmp(buf, s, nlen) == 0)
	if (HDR_IS("etag"))
		hdr_value(colon, len - nlen - 1, r->etag, sizeof(r->etag));
	else if (HDR_IS("x-amz-version-id"))
		hdr_value(colon, len - nlen - 1, r->version_id, sizeof(r->version_id));
	else if (HDR_IS("x-amz-checksum-sha256"))
		hdr_value(colon, len - nlen - 1, r->checksum, sizeof(r->checksum));
	else if (HDR_IS("x-amz-request-id"))
		hdr_value(colon, len - nlen - 1, r->request_id, sizeof(r->request_id));
	else if (HDR_IS("date"))
		hdr_value(colon, len - nlen - 1, r->date, sizeof(r->date));
#undef HDR_IS
	return len;
}

static size_t
s3_write_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct s3_resp *r = arg;
	size_t len = size * nitems, room = S3_BODY_MAX - r->bodylen;

	if (len < room)
		room = len;
	memcpy(r->body + r->bodylen, buf, room);
	r->bodylen += room;
	r->body[r->bodylen] = '\0';
	return len;		/* the rest is dropped, not an error */
}

static size_t
s3_read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct s3_upload *up = arg;
	size_t want = size * nitems;
	uint8_t d[SHA256_LEN];
	ssize_t got;

	if (up->off >= up->size)
		return 0;
	if ((int64_t)want > up->size - up->off)
		want = (size_t)(up->size - up->off);
	do {
		got = pread(up->fd, buf, want, (off_t)up->off);
	} while (got < 0 && errno == EINTR);
	if (got < 0) {
		up->err = UP_IO;
		up->saved_errno = errno;
		return CURL_READFUNC_ABORT;
	}
	if (got == 0) {
		up->err = UP_SHORT;
		return CURL_READFUNC_ABORT;
	}
	if (up->hashing && sha256_update(up->h, buf, (size_t)got) != 0)
		up->hashing = 0;
	up->off += got;
	if (up->off == up->size && up->hashing) {
		/* Last chunk: never let S3 complete a body that is not the
		 * file we took (lenient S3-compatibles do not check). */
		up->hashing = 0;
		if (sha256_final(up->h, d) == 0 &&
		    memcmp(d, up->want, SHA256_LEN) != 0) {
			up->err = UP_DIGEST;
			return CURL_READFUNC_ABORT;
		}
	}
	return (size_t)got;
}

static int
s3_seek_cb(void *arg, curl_off_t offset, int origin)
{
	struct s3_upload *up = arg;

	if (origin != SEEK_SET || offset < 0 || offset > up->size)
		return CURL_SEEKFUNC_CANTSEEK;
	up->off = offset;
	up->hashing = offset == 0 && sha256_reset(up->h) == 0;
	return CURL_SEEKFUNC_OK;
}

/* ---- one request ------------------------------------------------------- */

static void
slist_wipe_free(struct curl_slist *sl)
{
	struct curl_slist *p;

	for (p = sl; p != NULL; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(sl);
}

/* Appends "name: value" (or "name;" for an empty value, which curl sends as
 * "name:"). 0 or -1. */
static int
slist_add_header(struct curl_slist **sl, const char *nv)
{
	const char *colon = strchr(nv, ':');
	struct curl_slist *n;
	struct sbuf b = { 0 };
	char line[2300];

	b.p = line;
	b.cap = sizeof(line);
	sb_addn(&b, nv, (size_t)(colon - nv));
	if (colon[1] == '\0') {
		sb_add(&b, ";");
	} else {
		sb_add(&b, ": ");
		sb_add_trimmed(&b, colon + 1);
	}
	if (b.err || (n = curl_slist_append(*sl, line)) == NULL) {
		explicit_bzero(line, sizeof(line));
		return -1;
	}
	explicit_bzero(line, sizeof(line));
	*sl = n;
	return 0;
}

/*
 * Sends one signed request: method on uri (canonical, already encoded) with
 * host, x-amz-date, x-amz-content-sha256 (payload), the session token and
 * extra ("name:value", lower-case names). up is the body of a PUT or NULL.
 * Returns curl's code; r->status is 0 when no response arrived.
 */
static CURLcode
s3_perform(struct s3_store *s, const char *method, const char *uri,
    const char **extra, size_t nextra, const char *payload,
    struct s3_upload *up, struct s3_resp *r)
{
	const char *hdrs[S3_MAX_HEADERS];
	char hhost[sizeof(s->host) + 8], hdate[32], hsha[96], amzdate[20];
	char htoken[sizeof(s->creds.session_token) + 32], url[S3_MAX_URI + 700];
	char auth[10240], hauth[10240 + 32], errbuf[CURL_ERROR_SIZE];
	struct curl_slist *sl = NULL;
	CURLcode rc = CURLE_OK;
	time_t now;
	struct tm tm;
	size_t n = 0, i;

	memset(r, 0, sizeof(*r));
	errbuf[0] = '\0';
	now = time(NULL) + s->skew;
	gmtime_r(&now, &tm);
	strftime(amzdate, sizeof(amzdate), "%Y%m%dT%H%M%SZ", &tm);
	if (nextra + 4 > S3_MAX_HEADERS ||
	    xsnprintf(url, sizeof(url), "%s%s", s->origin, uri) < 0 ||
	    xsnprintf(hhost, sizeof(hhost), "host:%s", s->host) < 0 ||
	    xsnprintf(hdate, sizeof(hdate), "x-amz-date:%s", amzdate) < 0 ||
	    xsnprintf(hsha, sizeof(hsha), "x-amz-content-sha256:%s", payload) < 0)
		return CURLE_URL_MALFORMAT;
	hdrs[n++] = hhost;
	hdrs[n++] = hdate;
	hdrs[n++] = hsha;
	if (s->creds.session_token[0] != '\0') {
		if (xsnprintf(htoken, sizeof(htoken), "x-amz-security-token:%s",
		    s->creds.session_token) < 0)
			return CURLE_BAD_FUNCTION_ARGUMENT;
		hdrs[n++] = htoken;
	}
	for (i = 0; i < nextra; i++)
		hdrs[n++] = extra[i];
	if (sigv4_sign(&s->creds, s->cfg->region, method, uri, "", hdrs, n,
	    payload, amzdate, auth, sizeof(auth)) != 0 ||
	    xsnprintf(hauth, sizeof(hauth), "Authorization: %s", auth) < 0) {
		log_warnx("s3: cannot sign %s %s: headers too large", method, uri);
		rc = CURLE_BAD_FUNCTION_ARGUMENT;
		goto done;
	}
	for (i = 0; i < n; i++)
		if (slist_add_header(&sl, hdrs[i]) != 0) {
			rc = CURLE_OUT_OF_MEMORY;
			goto done;
		}
	if ((sl = curl_slist_append(sl, hauth)) == NULL) {
		rc = CURLE_OUT_OF_MEMORY;
		goto done;
	}

	curl_easy_reset(s->curl);	/* keeps the live connection */
#define SETOPT(o, v) do {						\
	if (rc == CURLE_OK)						\
		rc = curl_easy_setopt(s->curl, o, v);			\
} while (0)
	SETOPT(CURLOPT_URL, url);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_PATH_AS_IS, 1L);		/* sign and send "a/./b" as is */
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_CONNECTTIMEOUT, 10L);
	SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1024L);
	SETOPT(CURLOPT_LOW_SPEED_TIME, 60L);
	SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(CURLOPT_USERAGENT, "sluice/" SLUICE_VERSION);
	SETOPT(CURLOPT_HTTPHEADER, sl);
	SETOPT(CURLOPT_HEADERFUNCTION, s3_header_cb);
	SETOPT(CURLOPT_HEADERDATA, r);
	SETOPT(CURLOPT_WRITEFUNCTION, s3_write_cb);
	SETOPT(CURLOPT_WRITEDATA, r);
	SETOPT(CURLOPT_ERRORBUFFER, errbuf);
	if (up != NULL) {
		SETOPT(CURLOPT_UPLOAD, 1L);
		SETOPT(CURLOPT_READFUNCTION, s3_read_cb);
		SETOPT(CURLOPT_READDATA, up);
		SETOPT(CURLOPT_SEEKFUNCTION, s3_seek_cb);
		SETOPT(CURLOPT_SEEKDATA, up);
		SETOPT(CURLOPT_INFILESIZE_LARGE, (curl_off_t)up->size);
	} else if (strcmp(method, "HEAD") == 0) {
		SETOPT(CURLOPT_NOBODY, 1L);
		SETOPT(CURLOPT_TIMEOUT, 120L);
	} else {
		SETOPT(CURLOPT_CUSTOMREQUEST, method);
		SETOPT(CURLOPT_TIMEOUT, 120L);
	}
#undef SETOPT
	if (rc == CURLE_OK)
		rc = curl_easy_perform(s->curl);
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (rc != CURLE_OK && errbuf[0] != '\0')
		log_debug("s3: %s %s: %s", method, uri, errbuf);
	else
		log_debug("s3: %s %s: HTTP %ld request-id %s", method, uri,
		    r->status, r->request_id);
	/* Do not leave pointers to this frame in the handle. */
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, NULL);
done:
	slist_wipe_free(sl);
	explicit_bzero(htoken, sizeof(htoken));
	explicit_bzero(hauth, sizeof(hauth));
	explicit_bzero(auth, sizeof(auth));
	return rc;
}

/* ---- outcome mapping ---------------------------------------------------- */

/* Copies the text of the first <tag>...</tag> in body, printable only. */
static void
xml_text(const char *body, const char *tag, char *out, size_t outlen)
{
	char open[64], close[64];
	const char *b, *e;
	size_t n;

	out[0] = '\0';
	if (xsnprintf(open, sizeof(open), "<%s>", tag) < 0 ||
	    xsnprintf(close, sizeof(close), "</%s>", tag) < 0 ||
	    (b = strstr(body, open)) == NULL)
		return;
	b += strlen(open);
	if ((e = strstr(b, close)) == NULL)
		return;
	n = (size_t)(e - b);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, b, n);
	out[n] = '\0';
	printable(out, out, outlen);
}

static int
curl_retryable(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_PARTIAL_FILE:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
	case CURLE_QUIC_CONNECT_ERROR:
	case CURLE_PROXY:
		return 1;
	default:
		return 0;	/* 60, 65, 90, bad URL...: an operator must look */
	}
}

static int
code_retryable(const char *code)
{
	static const char *const retry[] = {
		"RequestTimeout", "RequestTimeTooSkewed", "Throttling",
		"ThrottlingException", "SlowDown", "BadDigest",
		"XAmzContentSHA256Mismatch", "InternalError", "ServiceUnavailable",
		"ConditionalRequestConflict", "OperationAborted", "ExpiredToken",
		"TokenRefreshRequired",
	};
	size_t i;

	for (i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
		if (strcmp(code, retry[i]) == 0)
			return 1;
	return 0;
}

static enum put_outcome
http_outcome(long status, const char *code)
{
	if (code[0] != '\0' && code_retryable(code))
		return PUT_RETRY;
	if (status == 408 || status == 429 || (status >= 500 && status != 501))
		return PUT_RETRY;
	return PUT_FATAL;
}

static void
set_curl_error(struct put_result *res, const char *what, CURLcode c)
{
	res->outcome = curl_retryable(c) ? PUT_RETRY : PUT_FATAL;
	snprintf(res->error, sizeof(res->error), "%scurl: %s (%d)", what,
	    curl_easy_strerror(c), (int)c);
}

/* An error response: "HTTP 403 AccessDenied: Access Denied". */
static void
set_http_error(struct s3_store *s, struct put_result *res, const char *what,
    const struct s3_resp *r)
{
	char code[128], msg[256];
	time_t server;

	xml_text(r->body, "Code", code, sizeof(code));
	xml_text(r->body, "Message", msg, sizeof(msg));
	res->http_status = r->status;
	res->outcome = http_outcome(r->status, code);
	if (code[0] == '\0')
		snprintf(res->error, sizeof(res->error), "%sHTTP %ld", what,
		    r->status);
	else if (msg[0] == '\0')
		snprintf(res->error, sizeof(res->error), "%sHTTP %ld %s", what,
		    r->status, code);
	else
		snprintf(res->error, sizeof(res->error), "%sHTTP %ld %s: %s",
		    what, r->status, code, msg);
	if (strcmp(code, "RequestTimeTooSkewed") == 0 && r->date[0] != '\0' &&
	    (server = curl_getdate(r->date, NULL)) != -1) {
		s->skew = server - time(NULL);
		log_warnx("s3: this host's clock is %+lld s off from S3's; "
		    "fix NTP. Signing with S3's time meanwhile", (long long)s->skew);
	}
}

static void
set_version(struct put_result *res, const char *v)
{
	if (strcmp(v, "null") == 0)
		v = "";
	xstrlcpy(res->version_id, v, sizeof(res->version_id));
}

/* Validates one x-amz-meta- name (lower-case [a-z0-9-_]) and value. */
static int
meta_ok(const char *name, const char *value)
{
	const char *p;

	if (name == NULL || value == NULL || *name == '\0' || strlen(name) > 128)
		return 0;
	for (p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_'))
			return 0;
	for (p = value; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return 0;
	return strlen(value) <= 2048;
}

static int
parse_hex_digest(const char *hex, uint8_t out[SHA256_LEN], char lower[SHA256_HEX])
{
	size_t i;
	int v;

	if (hex == NULL || strlen(hex) != 64)
		return -1;
	for (i = 0; i < 64; i++) {
		char ch = hex[i];

		if (ch >= '0' && ch <= '9')
			v = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			v = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			v = ch - 'A' + 10;
		else
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	hex_encode(out, SHA256_LEN, lower);
	return 0;
}

void
s3_store_put(struct s3_store *s, const struct put_request *req,
    struct put_result *res)
{
	const char *extra[S3_MAX_META + 8], *hext[1];
	char *meta[S3_MAX_META];
	char hexd[SHA256_HEX], b64[SHA256_B64], hcksum[SHA256_B64 + 32];
	char enc[3 * S3_MAX_KEY + 1], uri[S3_MAX_URI], pkey[300];
	uint8_t digest[SHA256_LEN];
	struct s3_upload up;
	struct s3_resp *r = NULL, *h = NULL;
	size_t i, nextra = 0, nmeta = 0;
	CURLcode c;

	memset(&up, 0, sizeof(up));
	memset(res, 0, sizeof(*res));
	res->outcome = PUT_FATAL;
	xstrlcpy(res->bucket, s->cfg->bucket, sizeof(res->bucket));
	printable(req->key ? req->key : "", pkey, sizeof(pkey));

	if (req->key == NULL || req->key[0] == '\0' ||
	    strlen(req->key) > S3_MAX_KEY) {
		snprintf(res->error, sizeof(res->error), "object key \"%s\" is "
		    "empty or longer than %d bytes", pkey, S3_MAX_KEY);
		return;
	}
	if (parse_hex_digest(req->sha256, digest, hexd) != 0 || req->fd < 0 ||
	    req->size < 0) {
		snprintf(res->error, sizeof(res->error), "bad request for %s: "
		    "needs a file, a size and a hex SHA-256", pkey);
		return;
	}
	if (req->nmeta > S3_MAX_META) {
		snprintf(res->error, sizeof(res->error), "more than %d metadata "
		    "entries for %s", S3_MAX_META, pkey);
		return;
	}
	base64_encode(digest, sizeof(digest), b64);
	if (s3_uri_encode(req->key, enc, sizeof(enc), 1) != 0 ||
	    xsnprintf(uri, sizeof(uri), "%s/%s", s->uri_prefix, enc) < 0) {
		snprintf(res->error, sizeof(res->error), "object key %s is too "
		    "long", pkey);
		return;
	}

	xsnprintf(hcksum, sizeof(hcksum), "x-amz-checksum-sha256:%s", b64);
	extra[nextra++] = "if-none-match:*";
	extra[nextra++] = hcksum;
	/* What the AWS SDKs send with a flexible checksum; S3 does not need
	 * it, but some S3-compatibles (moto) keep the checksum only with it. */
	extra[nextra++] = "x-amz-sdk-checksum-algorithm:SHA256";
	for (i = 0; i < req->nmeta; i++) {
		size_t len;

		if (!meta_ok(req->meta_names[i], req->meta_values[i])) {
			snprintf(res->error, sizeof(res->error), "metadata entry "
			    "%zu for %s is not a lower-case name with a "
			    "printable ASCII value", i, pkey);
			goto done;
		}
		len = strlen(req->meta_names[i]) + strlen(req->meta_values[i]) + 16;
		if ((meta[nmeta] = malloc(len)) == NULL) {
			res->outcome = PUT_RETRY;
			snprintf(res->error, sizeof(res->error), "out of memory");
			goto done;
		}
		snprintf(meta[nmeta], len, "x-amz-meta-%s:%s",
		    req->meta_names[i], req->meta_values[i]);
		extra[nextra++] = meta[nmeta++];
	}

	if ((r = malloc(sizeof(*r))) == NULL || (h = malloc(sizeof(*h))) == NULL ||
	    (up.h = sha256_new()) == NULL) {
		res->outcome = PUT_RETRY;
		snprintf(res->error, sizeof(res->error), "out of memory");
		goto done;
	}
	up.fd = req->fd;
	up.size = req->size;
	up.want = digest;
	up.hashing = 1;
	if (req->size == 0 && strcmp(hexd, EMPTY_SHA256) != 0)
		up.err = UP_DIGEST;

	if (up.err == UP_OK)
		c = s3_perform(s, "PUT", uri, extra, nextra, hexd, &up, r);
	else
		c = CURLE_ABORTED_BY_CALLBACK;
	if (up.err != UP_OK) {
		/* Our read callback stopped the upload: S3 did not get the object. */
		res->outcome = up.err == UP_SHORT ? PUT_FATAL : PUT_RETRY;
		if (up.err == UP_SHORT)
			snprintf(res->error, sizeof(res->error), "spooled file for "
			    "%s is shorter than %lld bytes", pkey,
			    (long long)req->size);
		else if (up.err == UP_IO)
			snprintf(res->error, sizeof(res->error), "reading the "
			    "spooled file for %s: %s", pkey,
			    strerror(up.saved_errno));
		else
			snprintf(res->error, sizeof(res->error), "spooled file for "
			    "%s does not match its SHA-256 %s; not sent", pkey, hexd);
		goto done;
	}
	if (c != CURLE_OK) {
		set_curl_error(res, "", c);
		goto done;
	}
	res->http_status = r->status;

	if (r->status == 200) {
		xstrlcpy(res->etag, r->etag, sizeof(res->etag));
		set_version(res, r->version_id);
		hext[0] = "x-amz-checksum-mode:ENABLED";
		c = s3_perform(s, "HEAD", uri, hext, 1, EMPTY_SHA256, NULL, h);
		if (c != CURLE_OK) {
			set_curl_error(res, "stored, but the HEAD to verify it "
			    "failed: ", c);
			res->outcome = PUT_RETRY;	/* the next PUT gets 412 + HEAD */
			goto done;
		}
		if (h->status != 200) {
			set_http_error(s, res, "stored, but the HEAD to verify it "
			    "answered ", h);
			res->http_status = r->status;
			if (h->status == 404)
				res->outcome = PUT_RETRY;
			goto done;
		}
		if (h->checksum[0] == '\0') {
			log_info("s3: %s: the store returns no x-amz-checksum-sha256;"
			    " relying on the signed payload of the PUT", pkey);
		} else if (strcmp(h->checksum, b64) != 0) {
			res->outcome = PUT_FATAL;
			snprintf(res->error, sizeof(res->error), "stored object "
			    "checksum differs at %s: S3 has %s, we sent %s", pkey,
			    h->checksum, b64);
			goto done;
		}
		if (res->etag[0] == '\0')
			xstrlcpy(res->etag, h->etag, sizeof(res->etag));
		if (res->version_id[0] == '\0')
			set_version(res, h->version_id);
		res->outcome = PUT_STORED;
		goto done;
	}

	if (r->status == 412) {
		/* If-None-Match: * — something is there already. Ours? */
		hext[0] = "x-amz-checksum-mode:ENABLED";
		c = s3_perform(s, "HEAD", uri, hext, 1, EMPTY_SHA256, NULL, h);
		if (c != CURLE_OK) {
			set_curl_error(res, "object exists; the HEAD to compare it "
			    "failed: ", c);
			res->outcome = PUT_RETRY;
			goto done;
		}
		if (h->status == 200 && h->checksum[0] != '\0' &&
		    strcmp(h->checksum, b64) == 0) {
			res->outcome = PUT_STORED;
			res->existed = 1;
			xstrlcpy(res->etag, h->etag, sizeof(res->etag));
			set_version(res, h->version_id);
			goto done;
		}
		if (h->status == 200) {
			res->outcome = PUT_FATAL;
			snprintf(res->error, sizeof(res->error), "a different "
			    "object already exists at %s", pkey);
			goto done;
		}
		set_http_error(s, res, "object exists; the HEAD to compare it "
		    "answered ", h);
		res->http_status = r->status;
		if (h->status == 404)
			res->outcome = PUT_RETRY;	/* deleted meanwhile */
		goto done;
	}

	set_http_error(s, res, "", r);
done:
	for (i = 0; i < nmeta; i++)
		free(meta[i]);
	sha256_free(up.h);
	free(r);
	free(h);
}

/* ---- open / close ------------------------------------------------------- */

static int
s3_endpoint(struct s3_store *s)
{
	const struct store_config *cfg = s->cfg;
	char defep[300], ebucket[200], pep[300];
	const char *ep = cfg->endpoint;
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	char *part = NULL;
	CURLU *u = NULL;
	int64_t portnum = 0;
	int rc = -1, https;

	if (ep == NULL || *ep == '\0') {
		if (xsnprintf(defep, sizeof(defep), "https://s3.%s.amazonaws.com",
		    cfg->region) < 0)
			goto fail;
		ep = defep;
	}
	printable(ep, pep, sizeof(pep));
	if ((u = curl_url()) == NULL)
		goto fail;
	if (curl_url_set(u, CURLUPART_URL, ep, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		log_warnx("store: endpoint \"%s\" is not a URL; write it as "
		    "https://host[:port]", pep);
		goto fail;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
		port = NULL;
	if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		path = NULL;
	if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK ||
	    (path != NULL && strcmp(path, "/") != 0 && path[0] != '\0')) {
		curl_free(part);
		log_warnx("store: endpoint \"%s\" must be only "
		    "scheme://host[:port]; no user, path or query", pep);
		goto fail;
	}
	if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
		log_warnx("store: endpoint \"%s\" must be http:// or https://", pep);
		goto fail;
	}
	https = strcmp(scheme, "https") == 0;
	if (!https)
		log_warnx("store: endpoint %s is plain http: signatures and "
		    "data travel unencrypted", pep);
	if (port != NULL && parse_int64(port, 1, 65535, &portnum) != 0)
		goto fail;
	if (portnum == (https ? 443 : 80)) {
		curl_free(port);	/* the default port is not in Host */
		port = NULL;
	}
	if (cfg->bucket == NULL || cfg->bucket[0] == '\0' ||
	    strlen(cfg->bucket) > 63 || strchr(cfg->bucket, '/') != NULL) {
		log_warnx("store: bucket name \"%s\" is not valid",
		    cfg->bucket ? cfg->bucket : "");
		goto fail;
	}
	if (cfg->path_style) {
		if (s3_uri_encode(cfg->bucket, ebucket, sizeof(ebucket), 0) != 0 ||
		    xsnprintf(s->uri_prefix, sizeof(s->uri_prefix), "/%s",
		    ebucket) < 0 ||
		    xsnprintf(s->host, sizeof(s->host), "%s%s%s", host,
		    port ? ":" : "", port ? port : "") < 0)
			goto fail;
	} else {
		s->uri_prefix[0] = '\0';
		if (https && strchr(cfg->bucket, '.') != NULL)
			log_warnx("store: bucket \"%s\" has a dot; TLS names "
			    "will not match in virtual-hosted style, set "
			    "path_style", cfg->bucket);
		if (xsnprintf(s->host, sizeof(s->host), "%s.%s%s%s", cfg->bucket,
		    host, port ? ":" : "", port ? port : "") < 0)
			goto fail;
	}
	if (xsnprintf(s->origin, sizeof(s->origin), "%s://%s", scheme,
	    s->host) < 0)
		goto fail;
	rc = 0;
fail:
	if (rc != 0 && u != NULL)
		log_warnx("store: cannot use endpoint \"%s\" with bucket \"%s\"",
		    pep, cfg->bucket ? cfg->bucket : "");
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return rc;
}

struct s3_store *
s3_store_open(const struct store_config *cfg, const struct aws_creds *creds)
{
	static int curl_ready;
	struct s3_store *s;

	if (creds->access_key[0] == '\0' || creds->secret_key[0] == '\0') {
		log_warnx("store: S3 credentials are empty");
		return NULL;
	}
	if (cfg->region == NULL || cfg->region[0] == '\0' ||
	    strlen(cfg->region) > 64 ||
	    strspn(cfg->region, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
	    strlen(cfg->region)) {
		log_warnx("store: S3 region \"%s\" is not a region name like "
		    "us-east-1", cfg->region ? cfg->region : "");
		return NULL;
	}
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			log_warnx("store: curl_global_init failed");
			return NULL;
		}
		curl_ready = 1;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("store: calloc");
		return NULL;
	}
	s->cfg = cfg;
	memcpy(&s->creds, creds, sizeof(s->creds));
	if (s3_endpoint(s) != 0)
		goto fail;
	if ((s->curl = curl_easy_init()) == NULL) {
		log_warnx("store: curl_easy_init failed");
		goto fail;
	}
	return s;
fail:
	s3_store_close(s);
	return NULL;
}

void
s3_store_close(struct s3_store *s)
{
	if (s == NULL)
		return;
	if (s->curl != NULL)
		curl_easy_cleanup(s->curl);
	creds_wipe(&s->creds);
	free(s);
}
