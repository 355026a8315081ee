/*
 * s3.c - the S3 backend. A file up to the multipart threshold is one signed
 * PUT streamed from the spooled fd with pread; a larger one is a multipart
 * upload whose parts go up several at a time (one thread and one CURL
 * handle each), whose upload id and finished parts are persisted through
 * put_request.mp so that a restart resumes (confirmed with ListParts). Every
 * PUT and part carries x-amz-content-sha256 (hex) and x-amz-checksum-sha256
 * (base64), so S3 proves the bytes; afterwards a HEAD with
 * x-amz-checksum-mode: ENABLED compares what S3 holds with the SHA-256 taken
 * at receipt (multipart: the SHA-256 of the part digests, "-N"). The ETag is
 * never taken as a checksum. Writes are conditional (If-None-Match: *, or a
 * HEAD before a multipart upload) and a different object at the key follows
 * the collision policy (suffix, version, reject).
 *
 * We sign with SigV4 ourselves (OpenSSL through common/util.h) and send our
 * own Authorization, re-signed on every request; CURLOPT_AWS_SIGV4 is not used.
 * Credentials come from the chain (creds_get) unless the store was opened
 * with fixed ones; an ExpiredToken answer refreshes them once.
 *
 * Ownership: struct s3_store borrows cfg and owns a copy of fixed credentials,
 * wiped in s3_store_close(). Nothing here logs a credential or the
 * Authorization header, and CURLOPT_VERBOSE is never set. Proxies: libcurl
 * honours https_proxy/HTTPS_PROXY/no_proxy (nothing here turns that off).
 */
#include "uploader/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/log.h"
#include "common/util.h"
#include "uploader/s3xml.h"
#include "uploader/umetrics.h"

#define S3_MAX_KEY	1024		/* S3's limit on a key, in bytes */
#define S3_MAX_URI	(3 * S3_MAX_KEY + 600)
#define S3_MAX_HEADERS	64		/* signed headers per request */
#define S3_MAX_META	40
#define S3_BODY_MAX	(64 * 1024)	/* kept of a body; the rest is dropped */
#define SIGV4_BUF_MAX	(64 * 1024)	/* cap on a canonical request */
#define EMPTY_SHA256	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MiB		(1024 * 1024)
#define MP_MIN_PART	(5 * MiB)
#define SKEW_SUSPECT_S	600		/* S3 refuses from 900 s */
#define MP_MAX_PARTS	10000
#define MP_PART_TRIES	4		/* in place, before the file waits its turn */
#define MAX_SUFFIX	1000		/* collision: suffix tries KEY.1 .. KEY.1000 */
#define STALE_AGE_S	86400
#define STALE_PAGE	100		/* max-uploads per list page: fits S3_BODY_MAX */
#define STALE_PAGES	100		/* list pages per sweep; the next one goes on */

struct s3_store {
	const struct store_config *cfg;
	struct aws_creds	 creds;		/* fixed ones, when static_creds */
	int			 static_creds;
	CURL			*curl;		/* single PUTs and HEADs */
	char			 origin[600];	/* scheme://host[:port] of every URL */
	char			 host[400];	/* Host header: host[:port] unless default */
	char			 uri_prefix[300];	/* "/bucket" (path style) or "" */
	volatile int		*cancel;	/* non-zero: stop transfers */
	/* collision: version: 1 once GetBucketVersioning said Enabled. */
	int			 versioned;
	/* Where the stale upload sweep goes on ("": from the start). */
	char			 sweep_key[S3_MAX_KEY + 1];
	char			 sweep_id[1024];
};

/* What we keep of one response. */
struct s3_resp {
	long	 status;
	char	 etag[256];
	char	 version_id[256];
	char	 checksum[128];		/* x-amz-checksum-sha256 */
	char	 meta_sha256[80];	/* x-amz-meta-sha256 (we write it) */
	char	 lock_mode[32];		/* x-amz-object-lock-mode */
	char	 lock_until[64];	/* x-amz-object-lock-retain-until-date */
	int64_t	 length;		/* Content-Length; -1: none */
	char	 request_id[128];	/* x-amz-request-id, for the log */
	char	 date[64];
	time_t	 signed_at;	/* the x-amz-date it was signed with */
	char	 body[S3_BODY_MAX + 1];
	size_t	 bodylen;
	int	 creds_dead;	/* expired, and no fresher ones: CREDS_DEAD_* */
	char	 curl_error[CURL_ERROR_SIZE];	/* curl's detail on failure */
	/* s3_perform sets it from get_sink: a 2xx body is hashed there
	 * instead of kept in body. */
	struct sha256 *sink;
	CURL	*curl;		/* the handle, for the sink's status check */
};

static int bucket_versioned(struct s3_store *, struct put_result *);

/* While s3_store_sha256 runs a GET in this thread: where its body goes. */
static __thread struct sha256 *get_sink;

/*
 * S3's clock minus ours, learnt from the Date of a refused request; one for
 * the process, so every worker signs with it once one has learnt it.
 */
static time_t clock_skew;

static time_t
s3_now(void)
{
	return time(NULL) + __atomic_load_n(&clock_skew, __ATOMIC_RELAXED);
}

#define CREDS_DEAD_ENV	1	/* in the environment */
#define CREDS_DEAD_FILE	2	/* in the shared files */

enum upload_err {
	UP_OK = 0,
	UP_SHORT,	/* the file ended before size bytes */
	UP_IO,		/* pread failed */
	UP_DIGEST,	/* the bytes read do not hash to the request's SHA-256 */
};

/* The body of a request: size bytes of fd from start, or of mem. */
struct s3_upload {
	int		 fd;
	const char	*mem;		/* a body in memory instead of fd */
	int64_t		 start;
	int64_t		 size;
	int64_t		 off;
	struct sha256	*h;		/* hash of [0, off) while hashing */
	int		 hashing;
	const uint8_t	*want;		/* SHA256_LEN bytes, or NULL: not checked */
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
		r->request_id[0] = r->date[0] = r->meta_sha256[0] = '\0';
		r->lock_mode[0] = r->lock_until[0] = '\0';
		r->length = -1;
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
	else if (HDR_IS("x-amz-object-lock-mode"))
		hdr_value(colon, len - nlen - 1, r->lock_mode,
		    sizeof(r->lock_mode));
	else if (HDR_IS("x-amz-object-lock-retain-until-date"))
		hdr_value(colon, len - nlen - 1, r->lock_until,
		    sizeof(r->lock_until));
	else if (HDR_IS("x-amz-meta-sha256"))
		hdr_value(colon, len - nlen - 1, r->meta_sha256,
		    sizeof(r->meta_sha256));
	else if (HDR_IS("content-length")) {
		char v[32];

		hdr_value(colon, len - nlen - 1, v, sizeof(v));
		if (parse_int64(v, 0, INT64_MAX, &r->length) != 0)
			r->length = -1;
	}
#undef HDR_IS
	return len;
}

static size_t
s3_write_cb(char *buf, size_t size, size_t nitems, void *arg)
{
	struct s3_resp *r = arg;
	size_t len = size * nitems, room = S3_BODY_MAX - r->bodylen;
	long status = 0;

	if (r->sink != NULL && r->curl != NULL &&
	    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status) ==
	    CURLE_OK && status >= 200 && status < 300)
		return sha256_update(r->sink, buf, len) == 0 ? len : 0;
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
	if (up->mem != NULL) {
		memcpy(buf, up->mem + up->off, want);
		up->off += (int64_t)want;
		return want;
	}
	do {
		got = pread(up->fd, buf, want, (off_t)(up->start + up->off));
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
	up->hashing = offset == 0 && up->want != NULL && up->h != NULL &&
	    sha256_reset(up->h) == 0;
	return CURL_SEEKFUNC_OK;
}

/* Rewinds a body before a (re)send. */
static void
up_rewind(struct s3_upload *up)
{
	up->off = 0;
	up->err = UP_OK;
	up->hashing = up->want != NULL && up->h != NULL && sha256_reset(up->h) == 0;
}

static int
s3_progress_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	volatile int *cancel = arg;

	return cancel != NULL && *cancel != 0;
}

/* ---- one request ------------------------------------------------------- */

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
 * Sends one signed request: method on uri (canonical, already encoded) and
 * query (canonical: sorted, encoded, "k=" when empty; "" for none) with host,
 * x-amz-date, x-amz-content-sha256 (payload), the session token and extra
 * ("name:value", lower-case names). up is the body or NULL. curl is the
 * handle to use (one per thread). Returns curl's code; r->status is 0 when
 * no response arrived. CURLE_AUTH_ERROR: no credentials to sign with.
 */
static CURLcode
s3_perform(struct s3_store *s, CURL *curl, const char *method, const char *uri,
    const char *query, const char **extra, size_t nextra, const char *payload,
    struct s3_upload *up, struct s3_resp *r)
{
	const char *hdrs[S3_MAX_HEADERS];
	char hhost[sizeof(s->host) + 8], hdate[32], hsha[96], amzdate[20];
	char htoken[sizeof(s->creds.session_token) + 32], url[S3_MAX_URI + 1800];
	char auth[10240], hauth[10240 + 32], errbuf[CURL_ERROR_SIZE];
	struct aws_creds creds;
	struct curl_slist *sl = NULL;
	CURLcode rc = CURLE_OK;
	curl_off_t took;
	time_t now;
	struct tm tm;
	size_t n = 0, i;

	memset(r, 0, sizeof(*r));
	r->sink = get_sink;
	r->curl = curl;
	errbuf[0] = '\0';
	htoken[0] = '\0';
	if (s->static_creds)
		memcpy(&creds, &s->creds, sizeof(creds));
	else if (creds_get(&creds) != 0) {
		explicit_bzero(&creds, sizeof(creds));
		return CURLE_AUTH_ERROR;
	}
	now = r->signed_at = s3_now();
	gmtime_r(&now, &tm);
	strftime(amzdate, sizeof(amzdate), "%Y%m%dT%H%M%SZ", &tm);
	if (query == NULL)
		query = "";
	if (nextra + 4 > S3_MAX_HEADERS ||
	    xsnprintf(url, sizeof(url), "%s%s%s%s", s->origin, uri,
	    query[0] ? "?" : "", query) < 0 ||
	    xsnprintf(hhost, sizeof(hhost), "host:%s", s->host) < 0 ||
	    xsnprintf(hdate, sizeof(hdate), "x-amz-date:%s", amzdate) < 0 ||
	    xsnprintf(hsha, sizeof(hsha), "x-amz-content-sha256:%s", payload) < 0) {
		rc = CURLE_URL_MALFORMAT;
		goto done;
	}
	hdrs[n++] = hhost;
	hdrs[n++] = hdate;
	hdrs[n++] = hsha;
	if (creds.session_token[0] != '\0') {
		if (xsnprintf(htoken, sizeof(htoken), "x-amz-security-token:%s",
		    creds.session_token) < 0) {
			rc = CURLE_BAD_FUNCTION_ARGUMENT;
			goto done;
		}
		hdrs[n++] = htoken;
	}
	for (i = 0; i < nextra; i++)
		hdrs[n++] = extra[i];
	if (sigv4_sign(&creds, s->cfg->region, method, uri, query, hdrs, n,
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
	/* curl 7.88 sends "Expect: 100-continue" with every PUT body: a round
	 * trip per request. Below 1 MiB (curl 8's threshold) send at once. */
	if (up != NULL && up->size < MiB &&
	    (sl = curl_slist_append(sl, "Expect:")) == NULL) {
		rc = CURLE_OUT_OF_MEMORY;
		goto done;
	}

	curl_easy_reset(curl);	/* keeps the live connection */
#define SETOPT(o, v) do {						\
	if (rc == CURLE_OK)						\
		rc = curl_easy_setopt(curl, o, v);			\
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
	if (s->cfg->ca_file != NULL && s->cfg->ca_file[0] != '\0')
		SETOPT(CURLOPT_CAINFO, s->cfg->ca_file);
	if (s->cfg->pinned_pubkey != NULL && s->cfg->pinned_pubkey[0] != '\0')
		SETOPT(CURLOPT_PINNEDPUBLICKEY, s->cfg->pinned_pubkey);
	SETOPT(CURLOPT_USERAGENT, "sluice/" SLUICE_VERSION);
	SETOPT(CURLOPT_HTTPHEADER, sl);
	SETOPT(CURLOPT_HEADERFUNCTION, s3_header_cb);
	SETOPT(CURLOPT_HEADERDATA, r);
	SETOPT(CURLOPT_WRITEFUNCTION, s3_write_cb);
	SETOPT(CURLOPT_WRITEDATA, r);
	SETOPT(CURLOPT_ERRORBUFFER, errbuf);
	if (s->cancel != NULL) {
		SETOPT(CURLOPT_NOPROGRESS, 0L);
		SETOPT(CURLOPT_XFERINFOFUNCTION, s3_progress_cb);
		SETOPT(CURLOPT_XFERINFODATA, s->cancel);
	}
	if (up != NULL) {
		SETOPT(CURLOPT_UPLOAD, 1L);
		SETOPT(CURLOPT_READFUNCTION, s3_read_cb);
		SETOPT(CURLOPT_READDATA, up);
		SETOPT(CURLOPT_SEEKFUNCTION, s3_seek_cb);
		SETOPT(CURLOPT_SEEKDATA, up);
		SETOPT(CURLOPT_INFILESIZE_LARGE, (curl_off_t)up->size);
		if (strcmp(method, "PUT") != 0)
			SETOPT(CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "HEAD") == 0) {
		SETOPT(CURLOPT_NOBODY, 1L);
		SETOPT(CURLOPT_TIMEOUT, 120L);
	} else {
		if (strcmp(method, "GET") != 0)
			SETOPT(CURLOPT_CUSTOMREQUEST, method);
		SETOPT(CURLOPT_TIMEOUT, 120L);
	}
#undef SETOPT
	if (rc == CURLE_OK) {
		rc = curl_easy_perform(curl);
		if (curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME_T, &took) ==
		    CURLE_OK)
			umetrics_request((double)took / 1e6);
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (rc != CURLE_OK && errbuf[0] != '\0') {
		log_debug("s3: %s %s: %s", method, uri, errbuf);
		printable(errbuf, r->curl_error, sizeof(r->curl_error));
	} else
		log_debug("s3: %s %s%s%s: HTTP %ld request-id %s", method, uri,
		    query[0] ? "?" : "", query, r->status, r->request_id);
	/* Do not leave pointers to this frame in the handle. */
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
done:
	slist_wipe_free(sl);
	explicit_bzero(&creds, sizeof(creds));
	explicit_bzero(htoken, sizeof(htoken));
	explicit_bzero(hauth, sizeof(hauth));
	explicit_bzero(auth, sizeof(auth));
	return rc;
}

/* ---- outcome mapping ---------------------------------------------------- */


/*
 * The text of the first element of r's body matching pattern (s3xml_match)
 * into out, cut to fit and printable only: for codes and messages. "" when
 * there is none.
 */
static void
resp_xml(const struct s3_resp *r, const char *pattern, char *out,
    size_t outlen)
{
	char *t;

	out[0] = '\0';
	if ((t = malloc(S3XML_TEXT_MAX + 1)) == NULL)
		return;
	if (s3xml_text(r->body, r->bodylen, pattern, t, S3XML_TEXT_MAX + 1,
	    NULL) == 1)
		printable(t, out, outlen);
	free(t);
}

/*
 * Retryable: what can pass by itself (a refused or reset connection, a
 * handshake cut off: CURLE_SSL_CONNECT_ERROR). Not retryable: a certificate
 * that does not verify (60, 83), an unusable CA file (77) or a key that does
 * not match the pin (90): a wrong trust setting does not fix itself, so the
 * file is held with the fix in its last error (see set_curl_error).
 */
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
	case CURLE_AUTH_ERROR:		/* no credentials yet (IMDS down...) */
	case CURLE_ABORTED_BY_CALLBACK:	/* stopping: the next run resumes */
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

/*
 * A transfer error in res, prefixed with what; r->curl_error is curl's
 * detail. TLS trust failures name the endpoint and the setting to fix.
 */
static void
set_curl_error(const struct s3_store *s, struct put_result *res,
    const char *what, CURLcode c, const struct s3_resp *r)
{
	const char *detail;

	detail = r->curl_error[0] != '\0' ? r->curl_error :
	    curl_easy_strerror(c);
	res->outcome = curl_retryable(c) ? PUT_RETRY : PUT_FATAL;
	res->timeout = c == CURLE_OPERATION_TIMEDOUT;
	xstrlcpy(res->code, c == CURLE_AUTH_ERROR ? "NoCredentials" :
	    res->timeout ? "Timeout" : "Network", sizeof(res->code));
	if (c == CURLE_AUTH_ERROR)
		snprintf(res->error, sizeof(res->error), "%sno S3 credentials "
		    "available (see the uploader's log)", what);
	else if (c == CURLE_PEER_FAILED_VERIFICATION ||
	    c == CURLE_SSL_ISSUER_ERROR)
		(void)xsnprintf(res->error, sizeof(res->error), "%sTLS: the "
		    "certificate of %s is not trusted; if this is the right "
		    "endpoint, set store.ca_file to the PEM file of the CA "
		    "that issued it (curl %d: %s)", what, s->origin, (int)c,
		    detail);
	else if (c == CURLE_SSL_CACERT_BADFILE)
		(void)xsnprintf(res->error, sizeof(res->error), "%sTLS: "
		    "store.ca_file %s cannot be used to check the certificate "
		    "of %s; it must hold PEM CA certificates (curl %d: %s)",
		    what, s->cfg->ca_file ? s->cfg->ca_file : "(unset)",
		    s->origin, (int)c, detail);
	else if (c == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
		(void)xsnprintf(res->error, sizeof(res->error), "%sTLS: the "
		    "public key of %s does not match store.pinned_pubkey; if "
		    "its key changed on purpose, add the new pin there "
		    "(curl %d: %s)", what, s->origin, (int)c, detail);
	else
		snprintf(res->error, sizeof(res->error), "%scurl: %s (%d)", what,
		    curl_easy_strerror(c), (int)c);
}

/* An error response: "HTTP 403 AccessDenied: Access Denied". */
static void
set_http_error(struct s3_store *s, struct put_result *res, const char *what,
    const struct s3_resp *r)
{
	char code[128], msg[256];
	time_t server, skew, was;
	long long off;

	resp_xml(r, "Error/Code", code, sizeof(code));
	resp_xml(r, "Error/Message", msg, sizeof(msg));
	res->http_status = r->status;
	res->outcome = http_outcome(r->status, code);
	xstrlcpy(res->code, r->creds_dead != 0 ? "CredentialsExpired" : code,
	    sizeof(res->code));
	if (code[0] == '\0')
		snprintf(res->error, sizeof(res->error), "%sHTTP %ld", what,
		    r->status);
	else if (msg[0] == '\0')
		snprintf(res->error, sizeof(res->error), "%sHTTP %ld %s", what,
		    r->status, code);
	else
		snprintf(res->error, sizeof(res->error), "%sHTTP %ld %s: %s",
		    what, r->status, code, msg);
	if (r->creds_dead != 0) {
		/* Retrying cannot help: only a person can give new ones. */
		res->outcome = PUT_FATAL;
		snprintf(res->error, sizeof(res->error), "%sHTTP %ld %s: %sthe "
		    "credentials in %s have expired: %s, then release the held "
		    "files with 'sluice queue retry -c CONFIG --all'", what,
		    r->status, code[0] != '\0' ? code : "(no error code)",
		    code[0] != '\0' ? "" : "most likely ",
		    r->creds_dead == CREDS_DEAD_ENV ?
		    "the environment" : "the shared credentials file",
		    r->creds_dead == CREDS_DEAD_ENV ? "restart the uploader with "
		    "fresh ones or use instance credentials" : "put fresh ones "
		    "there or use instance credentials");
	}
	/*
	 * A clock too far off: S3 says RequestTimeTooSkewed, but the 403 of a
	 * HEAD has no body to say it in; its Date header tells either way.
	 */
	if (r->date[0] == '\0' || (server = curl_getdate(r->date, NULL)) == -1)
		return;
	off = (long long)(server - r->signed_at);
	if (strcmp(code, "RequestTimeTooSkewed") == 0 ||
	    (r->status == 403 && code[0] == '\0' &&
	    (off > SKEW_SUSPECT_S || off < -SKEW_SUSPECT_S))) {
		skew = server - time(NULL);
		was = __atomic_exchange_n(&clock_skew, skew, __ATOMIC_RELAXED);
		res->outcome = PUT_RETRY;
		if (code[0] == '\0')
			snprintf(res->error, sizeof(res->error), "%sHTTP %ld (no "
			    "error code; signed %+lld s off the store's Date: "
			    "RequestTimeTooSkewed)", what, r->status, -off);
		if (skew - was > 60 || was - skew > 60)
			log_warnx("s3: this host's clock is %+lld s off from the "
			    "store's (%s); fix NTP. Signing with the store's "
			    "time meanwhile", (long long)-skew, s->origin);
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


/* The error code in a response body ("" if none). */
static void
resp_code(const struct s3_resp *r, char *code, size_t len)
{
	resp_xml(r, "Error/Code", code, len);
}

/*
 * s3_perform, and when S3 says the token expired, refresh the credentials
 * once and send again (bodies are rewound). Expired again after a refresh
 * that found only the same credentials in the environment or the shared
 * files: r->creds_dead says so (the file is held; retrying cannot help).
 * The same ones from IMDS or STS stay retryable: those rotate by themselves.
 */
static CURLcode
s3_request(struct s3_store *s, CURL *curl, const char *method, const char *uri,
    const char *query, const char **extra, size_t nextra, const char *payload,
    struct s3_upload *up, struct s3_resp *r)
{
	const char *src;
	char code[64];
	CURLcode c;
	int tries, same = 0;

	for (tries = 0;; tries++) {
		if (up != NULL)
			up_rewind(up);
		c = s3_perform(s, curl, method, uri, query, extra, nextra,
		    payload, up, r);
		if (c != CURLE_OK || s->static_creds ||
		    (r->status != 400 && r->status != 403))
			return c;
		resp_code(r, code, sizeof(code));
		/* A HEAD answer has no body: a bare 400 may be ExpiredToken. */
		if (strcmp(method, "HEAD") == 0 && r->status == 400 &&
		    code[0] == '\0')
			xstrlcpy(code, "HTTP 400 to a HEAD, perhaps ExpiredToken",
			    sizeof(code));
		else if (strcmp(code, "ExpiredToken") != 0 &&
		    strcmp(code, "TokenRefreshRequired") != 0 &&
		    strcmp(code, "ExpiredTokenException") != 0)
			return c;
		if (tries > 0) {
			src = creds_source();
			if (same == 1 && strcmp(src, "environment") == 0)
				r->creds_dead = CREDS_DEAD_ENV;
			else if (same == 1 && strcmp(src, "shared file") == 0)
				r->creds_dead = CREDS_DEAD_FILE;
			return c;
		}
		log_info("s3: the credentials expired (%s); refreshing them "
		    "once", code);
		if ((same = creds_refresh()) == -1)
			return c;
	}
}

/* Strips quotes (and &quot;) around an ETag, into out. */
static void
etag_norm(const char *in, char *out, size_t outlen)
{
	char tmp[256];
	size_t n;

	if (strncmp(in, "&quot;", 6) == 0)
		in += 6;
	else if (*in == '"')
		in++;
	xstrlcpy(tmp, in, sizeof(tmp));		/* in and out may overlap */
	xstrlcpy(out, tmp, outlen);
	n = strlen(out);
	if (n >= 6 && strcmp(out + n - 6, "&quot;") == 0)
		out[n - 6] = '\0';
	else if (n >= 1 && out[n - 1] == '"')
		out[n - 1] = '\0';
}

/* The canonical URI of key. 0 or -1. */
static int
key_uri(struct s3_store *s, const char *key, char *uri, size_t len)
{
	char enc[3 * S3_MAX_KEY + 1];

	if (s3_uri_encode(key, enc, sizeof(enc), 1) != 0 ||
	    xsnprintf(uri, len, "%s/%s", s->uri_prefix, enc) < 0)
		return -1;
	return 0;
}

/* Headers for the store options (sse, storage class, acl, tags, lock). */
struct s3_opts {
	char		 sse[80];
	char		 kms[400];
	char		 sc[80];
	char		 acl[100];
	char		 tagging[4200];
	char		 lockmode[80];
	char		 lockdate[80];
	const char	*h[9];
	size_t		 n;
};

/* The store's options, with req's overrides (a partner's class and tags). */
static int
s3_opts_build(struct s3_store *s, const struct put_request *req,
    struct s3_opts *o, char *err, size_t errlen)
{
	const struct store_config *c = s->cfg;
	const char *sc = req->storage_class != NULL ? req->storage_class :
	    c->storage_class;
	char *const *tk = req->tag_keys != NULL ? req->tag_keys : c->tag_keys;
	char *const *tv = req->tag_keys != NULL ? req->tag_values :
	    c->tag_values;
	size_t ntags = req->tag_keys != NULL ? req->ntags : c->ntags;
	struct sbuf tb = { 0 };
	char ek[700], ev[1800];
	time_t until;
	struct tm tm;
	size_t i;

	memset(o, 0, sizeof(*o));
	if (c->sse != NULL && c->sse[0] != '\0') {
		xsnprintf(o->sse, sizeof(o->sse), "x-amz-server-side-encryption:%s",
		    c->sse);
		o->h[o->n++] = o->sse;
		if (c->kms_key_id != NULL && c->kms_key_id[0] != '\0') {
			if (xsnprintf(o->kms, sizeof(o->kms), "x-amz-server-side-"
			    "encryption-aws-kms-key-id:%s", c->kms_key_id) < 0)
				goto toolong;
			o->h[o->n++] = o->kms;
		}
	}
	if (sc != NULL && sc[0] != '\0') {
		xsnprintf(o->sc, sizeof(o->sc), "x-amz-storage-class:%s", sc);
		o->h[o->n++] = o->sc;
	}
	if (c->acl != NULL && c->acl[0] != '\0') {
		xsnprintf(o->acl, sizeof(o->acl), "x-amz-acl:%s", c->acl);
		o->h[o->n++] = o->acl;
	}
	if (ntags > 0) {
		tb.p = o->tagging;
		tb.cap = sizeof(o->tagging);
		sb_add(&tb, "x-amz-tagging:");
		for (i = 0; i < ntags; i++) {
			if (s3_uri_encode(tk[i], ek, sizeof(ek), 0) != 0 ||
			    s3_uri_encode(tv[i], ev, sizeof(ev), 0) != 0)
				goto toolong;
			if (i > 0)
				sb_add(&tb, "&");
			sb_add(&tb, ek);
			sb_add(&tb, "=");
			sb_add(&tb, ev);
		}
		if (tb.err)
			goto toolong;
		o->h[o->n++] = o->tagging;
	}
	if (req->lock_mode != NULL && req->lock_until != NULL) {
		if (xsnprintf(o->lockmode, sizeof(o->lockmode),
		    "x-amz-object-lock-mode:%s", req->lock_mode) < 0 ||
		    xsnprintf(o->lockdate, sizeof(o->lockdate),
		    "x-amz-object-lock-retain-until-date:%s",
		    req->lock_until) < 0) {
			xsnprintf(err, errlen, "object lock mode or date too long");
			return -1;
		}
		o->h[o->n++] = o->lockmode;
		o->h[o->n++] = o->lockdate;
	} else if (c->object_lock_mode != NULL &&
	    c->object_lock_mode[0] != '\0' && c->object_lock_days > 0) {
		xsnprintf(o->lockmode, sizeof(o->lockmode),
		    "x-amz-object-lock-mode:%s", c->object_lock_mode);
		until = s3_now() + (time_t)c->object_lock_days * 86400;
		gmtime_r(&until, &tm);
		strftime(o->lockdate, sizeof(o->lockdate),
		    "x-amz-object-lock-retain-until-date:%Y-%m-%dT%H:%M:%SZ", &tm);
		o->h[o->n++] = o->lockmode;
		o->h[o->n++] = o->lockdate;
	}
	if (c->legal_hold)
		o->h[o->n++] = "x-amz-object-lock-legal-hold:ON";
	return 0;
toolong:
	xsnprintf(err, errlen, "store options (kms_key_id or tags) are too long");
	return -1;
}

/*
 * HEAD uri with checksum mode. 1: exists (h filled); 0: 404; -1: failed
 * (res filled, prefixed with what).
 */
static int
s3_head_query(struct s3_store *s, CURL *curl, const char *uri,
    const char *query, struct s3_resp *h, struct put_result *res,
    const char *what)
{
	const char *hx[1] = { "x-amz-checksum-mode:ENABLED" };
	CURLcode c;

	c = s3_request(s, curl, "HEAD", uri, query, hx, 1, EMPTY_SHA256, NULL, h);
	if (c != CURLE_OK) {
		set_curl_error(s, res, what, c, h);
		return -1;
	}
	if (h->status == 200)
		return 1;
	if (h->status == 404)
		return 0;
	set_http_error(s, res, what, h);
	return -1;
}

static int
s3_head_uri(struct s3_store *s, CURL *curl, const char *uri, struct s3_resp *h,
    struct put_result *res, const char *what)
{
	return s3_head_query(s, curl, uri, "", h, res, what);
}

/* What identifies one object we are writing. */
struct s3_obj {
	const struct put_request *req;
	const char	*key;
	char		 uri[S3_MAX_URI];
	const char	*b64;		/* whole-file SHA-256, base64 */
	const char	*hexd;		/* ... hex */
	const uint8_t	*digest;
	const char	**base;		/* option and metadata headers */
	size_t		 nbase;
};

/*
 * Is the object a HEAD found (h) the one we write? Compared by the store's
 * SHA-256 checksum (composite: of a multipart object); a store that keeps
 * no checksums (some S3-compatibles) by its size and the SHA-256 we wrote
 * into its metadata. 1: ours; 0: not (or cannot tell).
 */
static int
s3_same_object(const struct s3_obj *o, const struct s3_resp *h,
    const char *composite)
{
	if (h->checksum[0] != '\0')
		return store_checksum_matches(h->checksum,
		    composite ? NULL : o->b64, composite);
	return h->length == o->req->size &&
	    strcasecmp(h->meta_sha256, o->hexd) == 0;
}

/* After a write: HEAD and compare. Fills res (STORED or an error). */
static void
s3_verify(struct s3_store *s, CURL *curl, struct s3_obj *o,
    const char *composite, struct s3_resp *h, struct put_result *res)
{
	int e;

	e = s3_head_uri(s, curl, o->uri, h, res, "stored, but the HEAD to "
	    "verify it answered ");
	if (e != 1) {
		if (e == 0) {
			res->outcome = PUT_RETRY;
			xsnprintf(res->error, sizeof(res->error), "stored %s, but "
			    "a HEAD does not find it yet", o->key);
		} else
			res->outcome = PUT_RETRY;	/* the next try finds it */
		return;
	}
	if (h->checksum[0] == '\0' && h->meta_sha256[0] == '\0' &&
	    h->length == o->req->size) {
		log_info("s3: %s: the store returns no x-amz-checksum-sha256 "
		    "and no metadata; relying on the signed payload", o->key);
	} else if (!s3_same_object(o, h, composite)) {
		res->outcome = PUT_FATAL;
		if (h->checksum[0] != '\0')
			xsnprintf(res->error, sizeof(res->error), "stored object "
			    "checksum differs at %s: S3 has %s, we sent %s",
			    o->key, h->checksum, composite ? composite : o->b64);
		else
			xsnprintf(res->error, sizeof(res->error), "stored object "
			    "at %s is not the one sent: %lld bytes, "
			    "x-amz-meta-sha256 \"%s\" (no checksum kept by the "
			    "store); we sent %lld bytes, %s", o->key,
			    (long long)h->length, h->meta_sha256,
			    (long long)o->req->size, o->hexd);
		return;
	}
	if (res->etag[0] == '\0')
		xstrlcpy(res->etag, h->etag, sizeof(res->etag));
	if (res->version_id[0] == '\0')
		set_version(res, h->version_id);
	res->outcome = PUT_STORED;
}

/* ---- single PUT ------------------------------------------------------------ */

/* 0: res filled; 1: a different object is at the key. */
static int
s3_put_single(struct s3_store *s, struct s3_obj *o, int conditional,
    struct s3_resp *r, struct s3_resp *h, struct put_result *res)
{
	const char *extra[S3_MAX_META + 16];
	char hcksum[SHA256_B64 + 32];
	struct s3_upload up;
	size_t n = 0, i;
	CURLcode c;

	memset(&up, 0, sizeof(up));
	xsnprintf(hcksum, sizeof(hcksum), "x-amz-checksum-sha256:%s", o->b64);
	if (conditional)
		extra[n++] = "if-none-match:*";
	extra[n++] = hcksum;
	/* What the AWS SDKs send with a flexible checksum; S3 does not need
	 * it, but some S3-compatibles (moto) keep the checksum only with it. */
	extra[n++] = "x-amz-sdk-checksum-algorithm:SHA256";
	for (i = 0; i < o->nbase; i++)
		extra[n++] = o->base[i];
	if ((up.h = sha256_new()) == NULL) {
		res->outcome = PUT_RETRY;
		xsnprintf(res->error, sizeof(res->error), "out of memory");
		return 0;
	}
	up.fd = o->req->fd;
	up.size = o->req->size;
	up.want = o->digest;
	c = s3_request(s, s->curl, "PUT", o->uri, "", extra, n, o->hexd, &up, r);
	sha256_free(up.h);
	if (up.err != UP_OK) {
		/* Our read callback stopped the upload: S3 did not get the object. */
		res->outcome = up.err == UP_SHORT ? PUT_FATAL : PUT_RETRY;
		if (up.err == UP_SHORT)
			xsnprintf(res->error, sizeof(res->error), "spooled file "
			    "for %s is shorter than %lld bytes", o->key,
			    (long long)o->req->size);
		else if (up.err == UP_IO)
			xsnprintf(res->error, sizeof(res->error), "reading the "
			    "spooled file for %s: %s", o->key,
			    strerror(up.saved_errno));
		else
			xsnprintf(res->error, sizeof(res->error), "spooled file "
			    "for %s does not match its SHA-256 %s; not sent",
			    o->key, o->hexd);
		return 0;
	}
	if (c != CURLE_OK) {
		set_curl_error(s, res, "", c, r);
		return 0;
	}
	res->http_status = r->status;
	if (r->status == 200) {
		xstrlcpy(res->etag, r->etag, sizeof(res->etag));
		set_version(res, r->version_id);
		s3_verify(s, s->curl, o, NULL, h, res);
		return 0;
	}
	if (r->status == 412) {
		/* If-None-Match: * — something is there already. Ours? */
		switch (s3_head_uri(s, s->curl, o->uri, h, res, "object exists; "
		    "the HEAD to compare it answered ")) {
		case 1:
			if (s3_same_object(o, h, NULL)) {
				res->outcome = PUT_STORED;
				res->existed = 1;
				xstrlcpy(res->etag, h->etag, sizeof(res->etag));
				set_version(res, h->version_id);
				return 0;
			}
			return 1;
		case 0:
			res->outcome = PUT_RETRY;	/* deleted meanwhile */
			xsnprintf(res->error, sizeof(res->error), "PUT %s: 412, "
			    "but the object is gone", o->key);
			return 0;
		default:
			res->outcome = PUT_RETRY;
			return 0;
		}
	}
	set_http_error(s, res, "", r);
	return 0;
}

/* ---- multipart ----------------------------------------------------------- */

struct mp_job {
	struct s3_store	*s;
	struct s3_obj	*o;
	const struct mp_hooks *hooks;
	char		 upload_id[1024];
	char		 eid[3100];		/* upload id, query-encoded */
	int64_t		 part_size;
	int		 nparts;
	uint8_t		(*digests)[SHA256_LEN];
	char		(*etags)[128];
	unsigned char	*done;
	pthread_mutex_t	 mu;
	pthread_cond_t	 hashed_cv;
	int		 hashed;		/* parts whose digest is known */
	int		 next;
	int		 failed;
	int		 gone;			/* NoSuchUpload */
	struct put_result fail;
	int64_t		 max_backoff_ms;
};

static void
mp_fail(struct mp_job *j, const struct put_result *pr, int gone)
{
	pthread_mutex_lock(&j->mu);
	if (!j->failed) {
		j->failed = 1;
		memcpy(&j->fail, pr, sizeof(j->fail));
	}
	if (gone)
		j->gone = 1;
	pthread_mutex_unlock(&j->mu);
}

/* One part, retried in place a few times. 0 or -1 (j->fail set). */
static int
mp_put_part(struct mp_job *j, CURL *curl, struct s3_upload *up,
    struct s3_resp *r, int i)
{
	struct put_result pr;
	struct mp_part p;
	const char *extra[2];
	char hck[SHA256_B64 + 40], hex[SHA256_HEX], b64[SHA256_B64];
	char query[3200], code[64];
	int attempt, gone;
	CURLcode c;

	hex_encode(j->digests[i], SHA256_LEN, hex);
	base64_encode(j->digests[i], SHA256_LEN, b64);
	xsnprintf(hck, sizeof(hck), "x-amz-checksum-sha256:%s", b64);
	extra[0] = hck;
	extra[1] = "x-amz-sdk-checksum-algorithm:SHA256";
	if (xsnprintf(query, sizeof(query), "partNumber=%d&uploadId=%s", i + 1,
	    j->eid) < 0)
		return -1;
	up->fd = j->o->req->fd;
	up->start = (int64_t)i * j->part_size;
	up->size = j->o->req->size - up->start < j->part_size ?
	    j->o->req->size - up->start : j->part_size;
	up->want = j->digests[i];
	for (attempt = 0;; attempt++) {
		memset(&pr, 0, sizeof(pr));
		gone = 0;
		c = s3_request(j->s, curl, "PUT", j->o->uri, query, extra, 2, hex,
		    up, r);
		if (up->err != UP_OK) {
			pr.outcome = up->err == UP_SHORT ? PUT_FATAL : PUT_RETRY;
			xsnprintf(pr.error, sizeof(pr.error), "part %d of %s: "
			    "the spooled file %s", i + 1, j->o->key,
			    up->err == UP_SHORT ? "is shorter than recorded" :
			    up->err == UP_IO ? "cannot be read" :
			    "does not match the part's SHA-256");
		} else if (c != CURLE_OK) {
			set_curl_error(j->s, &pr, "", c, r);
		} else if (r->status == 200 && r->etag[0] != '\0') {
			memset(&p, 0, sizeof(p));
			p.number = i + 1;
			xstrlcpy(p.etag, r->etag, sizeof(p.etag));
			xstrlcpy(p.checksum, b64, sizeof(p.checksum));
			pthread_mutex_lock(&j->mu);
			xstrlcpy(j->etags[i], r->etag, sizeof(j->etags[i]));
			j->done[i] = 1;
			if (j->hooks != NULL && j->hooks->part != NULL &&
			    j->hooks->part(j->hooks->arg, &p) != 0)
				log_warnx("s3: %s part %d stored but not "
				    "recorded; a restart sends it again",
				    j->o->key, i + 1);
			pthread_mutex_unlock(&j->mu);
			retry_budget_success();
			return 0;
		} else {
			set_http_error(j->s, &pr, "", r);
			resp_code(r, code, sizeof(code));
			if (strcmp(code, "NoSuchUpload") == 0) {
				pr.outcome = PUT_RETRY;
				gone = 1;
			}
		}
		if (pr.outcome != PUT_RETRY || gone || attempt + 1 >= MP_PART_TRIES ||
		    (j->s->cancel != NULL && *j->s->cancel) || j->failed ||
		    !retry_budget_take(pr.timeout ? RETRY_TIMEOUT_COST : RETRY_COST)) {
			mp_fail(j, &pr, gone);
			return -1;
		}
		log_info("s3: %s part %d: %s; retrying", j->o->key, i + 1,
		    pr.error);
		usleep((useconds_t)(retry_backoff_ms(attempt, 200,
		    j->max_backoff_ms) * 1000));
	}
}

static void *
mp_worker(void *arg)
{
	struct mp_job *j = arg;
	struct s3_upload up;
	struct s3_resp *r;
	CURL *curl;
	struct put_result pr;
	int i;

	memset(&up, 0, sizeof(up));
	memset(&pr, 0, sizeof(pr));
	curl = curl_easy_init();
	r = malloc(sizeof(*r));
	up.h = sha256_new();
	if (curl == NULL || r == NULL || up.h == NULL) {
		pr.outcome = PUT_RETRY;
		xsnprintf(pr.error, sizeof(pr.error), "out of memory");
		mp_fail(j, &pr, 0);
		goto out;
	}
	for (;;) {
		pthread_mutex_lock(&j->mu);
		while (j->next < j->nparts && j->done[j->next])
			j->next++;
		i = j->failed || (j->s->cancel && *j->s->cancel) ? j->nparts :
		    j->next++;
		/* Sent only once the hashing pass vouched for its bytes. */
		while (i < j->nparts && j->hashed <= i && !j->failed)
			pthread_cond_wait(&j->hashed_cv, &j->mu);
		if (j->failed)
			i = j->nparts;
		pthread_mutex_unlock(&j->mu);
		if (i >= j->nparts)
			break;
		if (mp_put_part(j, curl, &up, r, i) != 0)
			break;
	}
out:
	sha256_free(up.h);
	free(r);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	return NULL;
}

/*
 * Hashes the file in one pass: each part's SHA-256 and the whole. Part i's
 * digest is published (j->hashed) as soon as it is known, so the part
 * workers may already send it (they check the bytes they send against it);
 * the whole-file SHA-256 is compared with the receipt's before the upload
 * can be completed. 0, or -1 (res set, and the job failed: workers stop).
 */
static int
mp_hash(struct mp_job *j, struct put_result *res)
{
	const struct put_request *req = j->o->req;
	struct sha256 *whole = NULL, *part = NULL;
	uint8_t d[SHA256_LEN];
	char *buf = NULL;
	int64_t off = 0, pend, n;
	ssize_t got;
	int i = 0, rc = -1;

	if ((buf = malloc(MiB)) == NULL || (whole = sha256_new()) == NULL ||
	    (part = sha256_new()) == NULL) {
		res->outcome = PUT_RETRY;
		xsnprintf(res->error, sizeof(res->error), "out of memory");
		goto fail;
	}
	for (i = 0; i < j->nparts; i++) {
		pthread_mutex_lock(&j->mu);
		if (j->failed) {		/* a part failed: no use going on */
			memcpy(res, &j->fail, sizeof(*res));
			pthread_mutex_unlock(&j->mu);
			goto fail;
		}
		pthread_mutex_unlock(&j->mu);
		pend = (int64_t)(i + 1) * j->part_size;
		if (pend > req->size)
			pend = req->size;
		sha256_reset(part);
		while (off < pend) {
			n = pend - off < MiB ? pend - off : MiB;
			got = pread(req->fd, buf, (size_t)n, (off_t)off);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				res->outcome = got == 0 ? PUT_FATAL : PUT_RETRY;
				xsnprintf(res->error, sizeof(res->error), "reading "
				    "the spooled file for %s: %s", j->o->key,
				    got == 0 ? "shorter than recorded" :
				    strerror(errno));
				goto fail;
			}
			if (sha256_update(part, buf, (size_t)got) != 0 ||
			    sha256_update(whole, buf, (size_t)got) != 0)
				goto hashfail;
			off += got;
		}
		if (sha256_final(part, j->digests[i]) != 0)
			goto hashfail;
		pthread_mutex_lock(&j->mu);
		j->hashed = i + 1;
		pthread_cond_broadcast(&j->hashed_cv);
		pthread_mutex_unlock(&j->mu);
		if (j->s->cancel != NULL && *j->s->cancel) {
			res->outcome = PUT_RETRY;
			xsnprintf(res->error, sizeof(res->error), "stopping");
			goto fail;
		}
	}
	if (sha256_final(whole, d) != 0)
		goto hashfail;
	if (memcmp(d, j->o->digest, SHA256_LEN) != 0) {
		res->outcome = PUT_RETRY;
		xsnprintf(res->error, sizeof(res->error), "spooled file for %s "
		    "does not match its SHA-256 %s; not sent", j->o->key,
		    j->o->hexd);
		goto fail;
	}
	rc = 0;
	goto fail;
hashfail:
	res->outcome = PUT_RETRY;
	xsnprintf(res->error, sizeof(res->error), "SHA-256 failed");
fail:
	if (rc != 0)
		mp_fail(j, res, 0);
	pthread_mutex_lock(&j->mu);
	pthread_cond_broadcast(&j->hashed_cv);	/* waiters see j->failed */
	pthread_mutex_unlock(&j->mu);
	sha256_free(whole);
	sha256_free(part);
	free(buf);
	return rc;
}

/* S3's checksum of a multipart object: SHA-256 of the part digests, "-N". */
static void
mp_composite(const struct mp_job *j, char *out, size_t outlen)
{
	struct sha256 *ch;
	uint8_t cd[SHA256_LEN];
	char b64[SHA256_B64];
	int i, bad;

	bad = (ch = sha256_new()) == NULL;
	for (i = 0; !bad && i < j->nparts; i++)
		bad = sha256_update(ch, j->digests[i], SHA256_LEN) != 0;
	if (bad || sha256_final(ch, cd) != 0) {
		xstrlcpy(out, "", outlen);	/* matches no stored checksum */
		sha256_free(ch);
		return;
	}
	sha256_free(ch);
	base64_encode(cd, sizeof(cd), b64);
	xsnprintf(out, outlen, "%s-%d", b64, j->nparts);
}

/* The CompleteMultipartUpload body of a finished job (s3xml.c escapes
 * it); malloc'd, or NULL. */
static char *
mp_complete_body(const struct mp_job *j, size_t *len)
{
	struct s3xml_part *p;
	char (*b64)[SHA256_B64];
	char *xml = NULL;
	int i;

	p = calloc((size_t)j->nparts, sizeof(*p));
	b64 = calloc((size_t)j->nparts, sizeof(*b64));
	if (p != NULL && b64 != NULL) {
		for (i = 0; i < j->nparts; i++) {
			base64_encode(j->digests[i], SHA256_LEN, b64[i]);
			p[i].number = i + 1;
			p[i].etag = j->etags[i];
			p[i].checksum = b64[i];
		}
		xml = s3xml_complete_body(p, (size_t)j->nparts, len);
	}
	free(p);
	free(b64);
	return xml;
}

/* DELETE ?uploadId= (best effort). 0 or -1. */
static int
s3_abort_upload(struct s3_store *s, CURL *curl, const char *uri,
    const char *upload_id, struct s3_resp *r)
{
	char eid[3100], query[3200];

	if (s3_uri_encode(upload_id, eid, sizeof(eid), 0) != 0 ||
	    xsnprintf(query, sizeof(query), "uploadId=%s", eid) < 0)
		return -1;
	if (s3_request(s, curl, "DELETE", uri, query, NULL, 0, EMPTY_SHA256,
	    NULL, r) != CURLE_OK)
		return -1;
	return r->status == 204 || r->status == 200 || r->status == 404 ? 0 : -1;
}

/* What one ListParts page says, read part by part. */
struct lp_walk {
	struct mp_job	*j;
	char		 num[32];
	char		 etag[256];
	char		 trunc[16];
	char		 next[32];
};

/* A saved part S3 still has with the same ETag and our bytes: done. */
static void
lp_part(struct mp_job *j, const char *num, const char *etag_in)
{
	const struct mp_hooks *hk = j->hooks;
	char etag[256], want[256], b64[SHA256_B64];
	int64_t pn;
	size_t k;

	etag_norm(etag_in, etag, sizeof(etag));
	if (parse_int64(num, 1, MP_MAX_PARTS, &pn) != 0 || pn > j->nparts)
		return;
	for (k = 0; k < hk->nparts; k++) {
		if (hk->parts[k].number != (int)pn)
			continue;
		etag_norm(hk->parts[k].etag, want, sizeof(want));
		if (strcmp(want, etag) == 0) {
			base64_encode(j->digests[pn - 1], SHA256_LEN, b64);
			/* Same bytes as when it was sent? */
			if (strcmp(b64, hk->parts[k].checksum) != 0)
				break;
			j->done[pn - 1] = 1;
			xstrlcpy(j->etags[pn - 1], hk->parts[k].etag,
			    sizeof(j->etags[pn - 1]));
		}
		break;
	}
}

#define LP	"ListPartsResult/"

static int
lp_elem(void *arg, const char *path, const char *text, size_t len)
{
	struct lp_walk *w = arg;

	if (strcmp(path, LP "Part/PartNumber") == 0)
		xstrlcpy(w->num, len < sizeof(w->num) ? text : "", sizeof(w->num));
	else if (strcmp(path, LP "Part/ETag") == 0)
		xstrlcpy(w->etag, len < sizeof(w->etag) ? text : "",
		    sizeof(w->etag));
	else if (strcmp(path, LP "Part") == 0) {
		lp_part(w->j, w->num, w->etag);
		w->num[0] = w->etag[0] = '\0';
	} else if (strcmp(path, LP "IsTruncated") == 0)
		xstrlcpy(w->trunc, text, sizeof(w->trunc));
	else if (strcmp(path, LP "NextPartNumberMarker") == 0)
		xstrlcpy(w->next, len < sizeof(w->next) ? text : "",
		    sizeof(w->next));
	return 0;
}

/*
 * ListParts: marks done[] for the saved parts S3 still has with the same
 * ETag. 0; 1 when the upload is gone (NoSuchUpload); -1 (res set).
 */
static int
mp_list_parts(struct mp_job *j, struct s3_resp *r, struct put_result *res)
{
	struct lp_walk w;
	char query[3300], err[256];
	int64_t pn, marker = 0;
	CURLcode c;

	for (;;) {
		if (marker > 0)
			xsnprintf(query, sizeof(query), "part-number-marker=%lld&"
			    "uploadId=%s", (long long)marker, j->eid);
		else
			xsnprintf(query, sizeof(query), "uploadId=%s", j->eid);
		c = s3_request(j->s, j->s->curl, "GET", j->o->uri, query, NULL, 0,
		    EMPTY_SHA256, NULL, r);
		if (c != CURLE_OK) {
			set_curl_error(j->s, res, "ListParts: ", c, r);
			return -1;
		}
		if (r->status == 404)
			return 1;
		if (r->status != 200) {
			set_http_error(j->s, res, "ListParts: ", r);
			return -1;
		}
		/* A page cut short still vouches for the parts it lists. */
		memset(&w, 0, sizeof(w));
		w.j = j;
		(void)s3xml_walk(r->body, r->bodylen, lp_elem, &w, err,
		    sizeof(err));
		if (strcmp(w.trunc, "true") != 0 ||
		    parse_int64(w.next, 1, MP_MAX_PARTS, &pn) != 0 || pn <= marker)
			return 0;
		marker = pn;
	}
}

/* 0: res filled; 1: a different object is at the key. */
static int
s3_put_multipart(struct s3_store *s, struct s3_obj *o, int force,
    struct s3_resp *r, struct s3_resp *h, struct put_result *res)
{
	const struct put_request *req = o->req;
	const struct mp_hooks *hk = req->mp;
	struct mp_job j;
	pthread_t tids[16];
	const char *extra[S3_MAX_META + 16];
	char composite[80] = "", query[3200], *xml = NULL;
	char cbody[SHA256_HEX], code[64];
	uint8_t cd[SHA256_LEN];
	struct s3_upload up;
	size_t xlen;
	int64_t ps;
	size_t n = 0, k;
	int i, e, nthreads, started = 0, resumed = 0, todo, hashed = 0;
	CURLcode c;

	memset(&j, 0, sizeof(j));
	memset(&up, 0, sizeof(up));
	pthread_mutex_init(&j.mu, NULL);
	pthread_cond_init(&j.hashed_cv, NULL);
	j.s = s;
	j.o = o;
	j.hooks = hk;
	j.max_backoff_ms = req->max_backoff_ms > 0 ? req->max_backoff_ms : 20000;
	ps = req->part_size > 0 ? req->part_size : 8 * MiB;
	if (ps < MP_MIN_PART)
		ps = MP_MIN_PART;
	if (hk != NULL && hk->upload_id != NULL && hk->key != NULL &&
	    strcmp(hk->key, o->key) == 0 && hk->part_size >= MP_MIN_PART)
		ps = hk->part_size;	/* resume with the size it began with */
	while ((req->size + ps - 1) / ps > MP_MAX_PARTS)
		ps += MiB;
	j.part_size = ps;
	j.nparts = (int)((req->size + ps - 1) / ps);
	j.digests = calloc((size_t)j.nparts, sizeof(*j.digests));
	j.etags = calloc((size_t)j.nparts, sizeof(*j.etags));
	j.done = calloc((size_t)j.nparts, 1);
	if (j.digests == NULL || j.etags == NULL || j.done == NULL) {
		res->outcome = PUT_RETRY;
		xsnprintf(res->error, sizeof(res->error), "out of memory");
		goto done;
	}
	res->nparts = j.nparts;
	/*
	 * The file is hashed once. Usually that pass runs while the parts are
	 * being sent (below); a saved upload is checked against the part
	 * digests, and an object already at the key against the composite
	 * checksum, so those need the digests first.
	 */
	if (hk != NULL && hk->upload_id != NULL && hk->upload_id[0] != '\0') {
		if (mp_hash(&j, res) != 0)
			goto done;
		hashed = 1;
	}

	/* Already there (a crash after Complete), or someone else's? */
	if (!force) {
		e = s3_head_uri(s, s->curl, o->uri, h, res, "HEAD before upload: ");
		if (e == -1)
			goto done;
		if (e == 1) {
			if (!hashed && mp_hash(&j, res) != 0)
				goto done;
			hashed = 1;
			mp_composite(&j, composite, sizeof(composite));
			if (!s3_same_object(o, h, composite)) {
				free(j.digests);
				j.digests = NULL;
				e = 1;
				goto collided;
			}
			res->outcome = PUT_STORED;
			res->existed = 1;
			xstrlcpy(res->etag, h->etag, sizeof(res->etag));
			set_version(res, h->version_id);
			xstrlcpy(res->checksum, composite, sizeof(res->checksum));
			if (hk != NULL && hk->upload_id != NULL) {
				s3_abort_upload(s, s->curl, o->uri, hk->upload_id, r);
				if (hk->forget != NULL)
					hk->forget(hk->arg);
			}
			goto done;
		}
	}

	/* Resume the saved upload if it is this object's. */
	if (hk != NULL && hk->upload_id != NULL && hk->upload_id[0] != '\0') {
		if (hk->key == NULL || strcmp(hk->key, o->key) != 0 ||
		    hk->part_size != ps) {
			char ouri[S3_MAX_URI];

			if (hk->key != NULL && key_uri(s, hk->key, ouri,
			    sizeof(ouri)) == 0)
				s3_abort_upload(s, s->curl, ouri, hk->upload_id, r);
			if (hk->forget != NULL)
				hk->forget(hk->arg);
		} else {
			xstrlcpy(j.upload_id, hk->upload_id, sizeof(j.upload_id));
			if (s3_uri_encode(j.upload_id, j.eid, sizeof(j.eid), 0) != 0)
				j.upload_id[0] = '\0';
			else if ((e = mp_list_parts(&j, r, res)) == -1)
				goto done;
			else if (e == 1) {
				log_info("s3: %s: upload %s is gone; starting "
				    "over", o->key, j.upload_id);
				memset(j.done, 0, (size_t)j.nparts);
				j.upload_id[0] = '\0';
				if (hk->forget != NULL)
					hk->forget(hk->arg);
			} else
				resumed = 1;
		}
	}

	if (j.upload_id[0] == '\0') {
		extra[n++] = "x-amz-checksum-algorithm:SHA256";
		for (k = 0; k < o->nbase; k++)
			extra[n++] = o->base[k];
		up.mem = "";
		up.size = 0;
		c = s3_request(s, s->curl, "POST", o->uri, "uploads=", extra, n,
		    EMPTY_SHA256, &up, r);
		if (c != CURLE_OK) {
			set_curl_error(s, res, "CreateMultipartUpload: ", c, r);
			goto done;
		}
		if (r->status == 200 && s3xml_text(r->body, r->bodylen,
		    "InitiateMultipartUploadResult/UploadId", j.upload_id,
		    sizeof(j.upload_id), NULL) != 1)
			j.upload_id[0] = '\0';
		if (r->status != 200 || j.upload_id[0] == '\0') {
			set_http_error(s, res, "CreateMultipartUpload: ", r);
			if (r->status == 200)
				res->outcome = PUT_RETRY;
			goto done;
		}
		if (s3_uri_encode(j.upload_id, j.eid, sizeof(j.eid), 0) != 0 ||
		    (hk != NULL && hk->begin != NULL && hk->begin(hk->arg, o->key,
		    j.upload_id, ps, j.nparts) != 0)) {
			s3_abort_upload(s, s->curl, o->uri, j.upload_id, r);
			res->outcome = PUT_RETRY;
			xsnprintf(res->error, sizeof(res->error), "cannot record "
			    "the multipart upload of %s", o->key);
			goto done;
		}
	}
	for (i = 0, todo = 0; i < j.nparts; i++)
		todo += !j.done[i];
	if (resumed)
		log_info("s3: %s: resuming upload: %d of %d parts already "
		    "stored", o->key, j.nparts - todo, j.nparts);

	/* The parts, several at a time. */
	nthreads = req->parallel > 0 ? req->parallel : 4;
	if (nthreads > (int)(sizeof(tids) / sizeof(tids[0])))
		nthreads = (int)(sizeof(tids) / sizeof(tids[0]));
	if (nthreads > todo)
		nthreads = todo;
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&tids[i], NULL, mp_worker, &j) != 0)
			break;
		started++;
	}
	if (started == 0 && todo > 0) {
		if (!hashed && mp_hash(&j, res) != 0)
			goto done;
		hashed = 1;
		mp_worker(&j);
	}
	if (!hashed)
		mp_hash(&j, res);	/* a failure fails the job */
	hashed = 1;
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (j.failed || (s->cancel != NULL && *s->cancel)) {
		if (j.failed)
			memcpy(res, &j.fail, sizeof(*res));
		else {
			res->outcome = PUT_RETRY;
			xsnprintf(res->error, sizeof(res->error), "stopping");
		}
		if (j.gone && hk != NULL && hk->forget != NULL)
			hk->forget(hk->arg);
		goto done;
	}
	for (i = 0; i < j.nparts; i++)
		if (!j.done[i]) {
			res->outcome = PUT_RETRY;
			xsnprintf(res->error, sizeof(res->error), "part %d of %s "
			    "was not sent", i + 1, o->key);
			goto done;
		}
	mp_composite(&j, composite, sizeof(composite));

	/* Complete, with the part checksums. */
	if ((xml = mp_complete_body(&j, &xlen)) == NULL ||
	    sha256_buf(xml, xlen, cd) != 0) {
		res->outcome = PUT_RETRY;
		xsnprintf(res->error, sizeof(res->error), "cannot build the "
		    "completion of %s", o->key);
		goto done;
	}
	hex_encode(cd, sizeof(cd), cbody);
	memset(&up, 0, sizeof(up));
	up.mem = xml;
	up.size = (int64_t)xlen;
	xsnprintf(query, sizeof(query), "uploadId=%s", j.eid);
	n = 0;
	extra[n++] = "content-type:application/xml";
	/* A Complete of an earlier run may still be under way in the store
	 * (killed while waiting for its answer): never write the key twice. */
	if (!force)
		extra[n++] = "if-none-match:*";
	c = s3_request(s, s->curl, "POST", o->uri, query, extra, n, cbody, &up, r);
	if (c != CURLE_OK) {
		set_curl_error(s, res, "CompleteMultipartUpload: ", c, r);
		goto done;
	}
	if (r->status == 200 && s3xml_text(r->body, r->bodylen, "/Error", code,
	    sizeof(code), NULL) != 0)
		r->status = 500;	/* S3 can fail a completion with 200 */
	if (r->status == 412) {
		/* Someone (an earlier run of ours) completed it: compare. */
		e = s3_head_uri(s, s->curl, o->uri, h, res, "object exists; the "
		    "HEAD to compare it answered ");
		if (e == 1 && s3_same_object(o, h, composite)) {
			res->outcome = PUT_STORED;
			res->existed = 1;
			xstrlcpy(res->etag, h->etag, sizeof(res->etag));
			set_version(res, h->version_id);
			xstrlcpy(res->checksum, composite, sizeof(res->checksum));
			s3_abort_upload(s, s->curl, o->uri, j.upload_id, r);
			if (hk != NULL && hk->forget != NULL)
				hk->forget(hk->arg);
			goto done;
		}
		if (e == 1)
			goto collided_after;
		res->outcome = PUT_RETRY;
		if (e == 0)
			xsnprintf(res->error, sizeof(res->error), "Complete of "
			    "%s: 412, but the object is gone", o->key);
		goto done;
	}
	if (r->status != 200) {
		set_http_error(s, res, "CompleteMultipartUpload: ", r);
		resp_code(r, code, sizeof(code));
		if (strcmp(code, "NoSuchUpload") == 0) {
			/* Completed by an earlier try, or aborted: start over;
			 * the HEAD first finds it if it was completed. */
			res->outcome = PUT_RETRY;
			if (hk != NULL && hk->forget != NULL)
				hk->forget(hk->arg);
		}
		goto done;
	}
	set_version(res, r->version_id);
	if (s3xml_text(r->body, r->bodylen, "CompleteMultipartUploadResult/ETag",
	    res->etag, sizeof(res->etag), NULL) != 1)
		res->etag[0] = '\0';
	if (hk != NULL && hk->forget != NULL)
		hk->forget(hk->arg);
	s3_verify(s, s->curl, o, composite, h, res);
	xstrlcpy(res->checksum, composite, sizeof(res->checksum));
	e = 0;
	goto done;
collided_after:
	/* Keep the upload and its parts: a new key starts its own. */
	free(xml);
	free(j.digests);
	j.digests = NULL;
collided:
	pthread_cond_destroy(&j.hashed_cv);
	pthread_mutex_destroy(&j.mu);
	free(j.etags);
	free(j.done);
	return 1;
done:
	pthread_cond_destroy(&j.hashed_cv);
	pthread_mutex_destroy(&j.mu);
	free(xml);
	free(j.digests);
	free(j.etags);
	free(j.done);
	return 0;
}

/* ---- store_put ------------------------------------------------------------- */

void
s3_store_put(struct s3_store *s, const struct put_request *req,
    struct put_result *res)
{
	const char *base[S3_MAX_META + 10];
	char *meta[S3_MAX_META];
	char hexd[SHA256_HEX], b64[SHA256_B64], key[S3_MAX_KEY + 16];
	char pkey[300];
	uint8_t digest[SHA256_LEN];
	struct s3_resp *r = NULL, *h = NULL;
	struct s3_opts opts;
	struct s3_obj o;
	size_t i, nbase = 0, nmeta = 0;
	int64_t threshold;
	int sfx, force = 0, coll, versioned;

	memset(res, 0, sizeof(*res));
	memset(&o, 0, sizeof(o));
	res->outcome = PUT_FATAL;
	xstrlcpy(res->bucket, s->cfg->bucket, sizeof(res->bucket));
	printable(req->key ? req->key : "", pkey, sizeof(pkey));

	if (req->key == NULL || req->key[0] == '\0' ||
	    strlen(req->key) > S3_MAX_KEY - 6) {
		snprintf(res->error, sizeof(res->error), "object key \"%s\" is "
		    "empty or longer than %d bytes", pkey, S3_MAX_KEY - 6);
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
	if (s3_opts_build(s, req, &opts, res->error, sizeof(res->error)) != 0)
		return;
	for (i = 0; i < opts.n; i++)
		base[nbase++] = opts.h[i];
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
		base[nbase++] = meta[nmeta++];
	}
	if ((r = malloc(sizeof(*r))) == NULL || (h = malloc(sizeof(*h))) == NULL) {
		res->outcome = PUT_RETRY;
		snprintf(res->error, sizeof(res->error), "out of memory");
		goto done;
	}
	if (req->size == 0 && strcmp(hexd, EMPTY_SHA256) != 0) {
		res->outcome = PUT_RETRY;
		snprintf(res->error, sizeof(res->error), "spooled file for %s "
		    "does not match its SHA-256 %s; not sent", pkey, hexd);
		goto done;
	}
	o.req = req;
	o.b64 = b64;
	o.hexd = hexd;
	o.digest = digest;
	o.base = base;
	o.nbase = nbase;
	threshold = req->multipart_threshold > 0 ? req->multipart_threshold :
	    16 * MiB;
	for (sfx = 0; sfx <= MAX_SUFFIX; sfx++) {
		if (sfx == 0)
			xstrlcpy(key, req->key, sizeof(key));
		else
			xsnprintf(key, sizeof(key), "%s.%d", req->key, sfx);
		o.key = key;
		if (key_uri(s, key, o.uri, sizeof(o.uri)) != 0) {
			snprintf(res->error, sizeof(res->error), "object key %s "
			    "is too long", pkey);
			goto done;
		}
		memset(res, 0, sizeof(*res));
		xstrlcpy(res->bucket, s->cfg->bucket, sizeof(res->bucket));
		if (req->size > threshold)
			coll = s3_put_multipart(s, &o, force, r, h, res);
		else
			coll = s3_put_single(s, &o, !force, r, h, res);
		if (coll == 0)
			break;
		if (s->cfg->collision == COLLISION_REJECT || req->exact_key) {
			res->outcome = PUT_FATAL;
			xsnprintf(res->error, sizeof(res->error), "a different "
			    "object already exists at %s%s", key, req->exact_key ?
			    "; it is left as it is" : " (collision: reject)");
			break;
		}
		if (s->cfg->collision == COLLISION_VERSION &&
		    (versioned = bucket_versioned(s, res)) != 1) {
			/* An unconditional PUT on an unversioned bucket would
			 * destroy the stored object (invariant 2). -1: res
			 * already says why S3 could not be asked. */
			if (versioned == 0) {
				res->outcome = PUT_FATAL;
				xsnprintf(res->error, sizeof(res->error), "a "
				    "different object already exists at %s and "
				    "the bucket is not versioned (collision: "
				    "version needs versioning Enabled; enable it "
				    "or use collision: suffix)", key);
			}
			break;
		}
		if (s->cfg->collision == COLLISION_VERSION) {
			log_info("s3: a different object exists at %s; writing "
			    "a new version (collision: version)", key);
			force = 1;
			sfx--;		/* same key again, unconditionally */
			continue;
		}
		log_info("s3: a different object exists at %s; trying the next "
		    "suffix (collision: suffix)", key);
	}
	if (sfx > MAX_SUFFIX) {
		res->outcome = PUT_FATAL;
		snprintf(res->error, sizeof(res->error), "a different object "
		    "exists at %s and at every suffix up to .%d", pkey, MAX_SUFFIX);
	}
	xstrlcpy(res->key, key, sizeof(res->key));
	if (res->checksum[0] == '\0')
		xstrlcpy(res->checksum, b64, sizeof(res->checksum));
	if (res->outcome == PUT_STORED)
		retry_budget_success();
done:
	for (i = 0; i < nmeta; i++)
		free(meta[i]);
	free(r);
	free(h);
}

int
s3_store_head(struct s3_store *s, const char *key, const char *version_id,
    char *cs, size_t cslen, char *err, size_t errlen)
{
	struct put_result res;
	struct s3_resp *h;
	char uri[S3_MAX_URI], query[1200], ev[1100];
	int e;

	if (key_uri(s, key, uri, sizeof(uri)) != 0) {
		xsnprintf(err, errlen, "key too long");
		return -1;
	}
	query[0] = '\0';
	if (version_id != NULL && version_id[0] != '\0' &&
	    strcmp(version_id, "null") != 0 &&
	    (s3_uri_encode(version_id, ev, sizeof(ev), 0) != 0 ||
	    xsnprintf(query, sizeof(query), "versionId=%s", ev) < 0)) {
		xsnprintf(err, errlen, "version id too long");
		return -1;
	}
	if ((h = malloc(sizeof(*h))) == NULL) {
		xsnprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(&res, 0, sizeof(res));
	e = s3_head_query(s, s->curl, uri, query, h, &res, "HEAD: ");
	if (e == 1)
		xstrlcpy(cs, h->checksum, cslen);
	else if (e == -1)
		xstrlcpy(err, res.error, errlen);
	free(h);
	return e;
}

int
s3_store_stat(struct s3_store *s, const char *key, struct store_obj *o,
    char *err, size_t errlen)
{
	struct put_result res;
	struct s3_resp *h;
	char uri[S3_MAX_URI];
	int e;

	memset(o, 0, sizeof(*o));
	o->size = -1;
	if (key_uri(s, key, uri, sizeof(uri)) != 0) {
		xsnprintf(err, errlen, "key too long");
		return -1;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		xsnprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(&res, 0, sizeof(res));
	e = s3_head_query(s, s->curl, uri, "", h, &res, "HEAD: ");
	if (e == 1) {
		xstrlcpy(o->checksum, h->checksum, sizeof(o->checksum));
		etag_norm(h->etag, o->etag, sizeof(o->etag));
		xstrlcpy(o->version_id, strcmp(h->version_id, "null") == 0 ?
		    "" : h->version_id, sizeof(o->version_id));
		printable(h->lock_mode, o->lock_mode, sizeof(o->lock_mode));
		printable(h->lock_until, o->retain_until,
		    sizeof(o->retain_until));
		o->size = h->length;
	} else if (e == -1)
		xstrlcpy(err, res.error, errlen);
	free(h);
	return e;
}

int
s3_store_sha256(struct s3_store *s, const char *key, uint8_t d[SHA256_LEN],
    char *err, size_t errlen)
{
	struct put_result res;
	struct s3_resp *r;
	struct sha256 *h = NULL;
	char uri[S3_MAX_URI];
	CURLcode c;
	int rc = -1;

	if (key_uri(s, key, uri, sizeof(uri)) != 0) {
		xsnprintf(err, errlen, "key too long");
		return -1;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (h = sha256_new()) == NULL) {
		xsnprintf(err, errlen, "out of memory");
		goto out;
	}
	memset(&res, 0, sizeof(res));
	get_sink = h;
	c = s3_request(s, s->curl, "GET", uri, "", NULL, 0, EMPTY_SHA256, NULL,
	    r);
	get_sink = NULL;
	if (c != CURLE_OK) {
		set_curl_error(s, &res, "GET: ", c, r);
		xstrlcpy(err, res.error, errlen);
	} else if (r->status != 200) {
		set_http_error(s, &res, "GET: ", r);
		xstrlcpy(err, res.error, errlen);
	} else if (sha256_final(h, d) != 0)
		xsnprintf(err, errlen, "cannot hash the object");
	else
		rc = 0;
out:
	sha256_free(h);
	free(r);
	return rc;
}

#define LIST_PAGE	100	/* max-keys: a page of short keys fits S3_BODY_MAX */

/* The ListObjectsV2 query (canonical order); 0 or -1. */
static int
list_objects_query(const char *prefix, const char *token, char *q, size_t len)
{
	char ep[3 * S3_MAX_KEY + 1], et[3 * 2048 + 1];

	if (s3_uri_encode(prefix, ep, sizeof(ep), 0) != 0 ||
	    s3_uri_encode(token, et, sizeof(et), 0) != 0)
		return -1;
	if (token[0] == '\0')
		return xsnprintf(q, len, "list-type=2&max-keys=%d&prefix=%s",
		    LIST_PAGE, ep) < 0 ? -1 : 0;
	return xsnprintf(q, len, "continuation-token=%s&list-type=2&"
	    "max-keys=%d&prefix=%s", et, LIST_PAGE, ep) < 0 ? -1 : 0;
}

int
s3_store_list(struct s3_store *s, const char *prefix,
    int (*fn)(void *, const char *, int64_t), void *arg, char *err,
    size_t errlen)
{
	struct put_result res;
	struct s3_resp *r;
	char uri[400], token[2048], query[16 * 1024], perr[256];
	int truncated = 1, rc = -1;
	CURLcode c;

	if ((r = malloc(sizeof(*r))) == NULL) {
		xsnprintf(err, errlen, "out of memory");
		return -1;
	}
	xsnprintf(uri, sizeof(uri), "%s/", s->uri_prefix);
	token[0] = '\0';
	while (truncated) {
		if (list_objects_query(prefix, token, query, sizeof(query)) != 0) {
			xsnprintf(err, errlen, "the prefix or continuation "
			    "token is too long");
			goto out;
		}
		memset(&res, 0, sizeof(res));
		c = s3_request(s, s->curl, "GET", uri, query, NULL, 0,
		    EMPTY_SHA256, NULL, r);
		if (c != CURLE_OK || r->status != 200) {
			if (c != CURLE_OK)
				set_curl_error(s, &res, "ListObjectsV2: ", c, r);
			else
				set_http_error(s, &res, "ListObjectsV2: ", r);
			xsnprintf(err, errlen, "%s", res.error);
			goto out;
		}
		if (r->bodylen >= S3_BODY_MAX) {
			xsnprintf(err, errlen, "ListObjectsV2: a page of the "
			    "listing is larger than %d bytes", S3_BODY_MAX);
			goto out;
		}
		if ((rc = s3_list_parse(r->body, r->bodylen, fn, arg,
		    &truncated, token, sizeof(token), perr,
		    sizeof(perr))) != 0) {
			if (rc == -1)
				xsnprintf(err, errlen, "ListObjectsV2: %s", perr);
			goto out;
		}
		rc = -1;
		if (truncated && token[0] == '\0') {
			xsnprintf(err, errlen, "ListObjectsV2: the listing is "
			    "truncated but gives no NextContinuationToken");
			goto out;
		}
	}
	rc = 0;
out:
	free(r);
	return rc;
}

/* The ListMultipartUploads query from the sweep's markers; 0 or -1. */
static int
list_uploads_query(const struct s3_store *s, char *query, size_t len)
{
	char ekey[3 * S3_MAX_KEY + 1], eid[3 * 1024 + 1];

	if (s->sweep_key[0] == '\0')
		return xsnprintf(query, len, "max-uploads=%d&uploads=",
		    STALE_PAGE) < 0 ? -1 : 0;
	if (s3_uri_encode(s->sweep_key, ekey, sizeof(ekey), 0) != 0 ||
	    s3_uri_encode(s->sweep_id, eid, sizeof(eid), 0) != 0)
		return -1;
	/* Canonical order: key-marker, max-uploads, upload-id-marker, uploads. */
	if (s->sweep_id[0] == '\0')
		return xsnprintf(query, len, "key-marker=%s&max-uploads=%d&"
		    "uploads=", ekey, STALE_PAGE) < 0 ? -1 : 0;
	return xsnprintf(query, len, "key-marker=%s&max-uploads=%d&"
	    "upload-id-marker=%s&uploads=", ekey, STALE_PAGE, eid) < 0 ? -1 : 0;
}

/* One page of ListMultipartUploads, read upload by upload. */
struct sweep_walk {
	struct s3_store	*s;
	struct s3_resp	*a;		/* for the aborts */
	const char	*prefix;
	int64_t		 older_s;
	int		(*keep)(void *, const char *, const char *);
	void		*arg;
	int		 n;		/* aborted */
	char		 key[S3_MAX_KEY * 2];
	char		 id[1024];
	char		 when[64];
	char		 last_key[S3_MAX_KEY * 2];
	char		 last_id[1024];
	char		 trunc[16];
	char		 nkey[S3_MAX_KEY * 2];
	char		 nid[1024];
	int		 complete;	/* the root ended */
};

/*
 * Moves the sweep's markers past one page: to NextKeyMarker and
 * NextUploadIdMarker, or after the last upload seen (last_key, last_id) when
 * the server gave none or the body was cut at S3_BODY_MAX. 1 when there is a
 * next page, 0 when the listing is done (markers reset).
 */
static int
list_uploads_next(struct s3_store *s, struct sweep_walk *w)
{
	if (w->complete && strcmp(w->trunc, "true") != 0)
		goto done;
	if (!w->complete || w->nkey[0] == '\0') {
		/* Cut short, or no markers: go on after the last upload. */
		xstrlcpy(w->nkey, w->last_key, sizeof(w->nkey));
		xstrlcpy(w->nid, w->last_id, sizeof(w->nid));
	}
	if (w->nkey[0] == '\0' || strlen(w->nkey) > S3_MAX_KEY ||
	    (strcmp(w->nkey, s->sweep_key) == 0 &&
	    strcmp(w->nid, s->sweep_id) == 0)) {
		log_warnx("s3: the list of multipart uploads is truncated but "
		    "gives no usable next marker; the sweep starts over next "
		    "time");
		goto done;
	}
	xstrlcpy(s->sweep_key, w->nkey, sizeof(s->sweep_key));
	xstrlcpy(s->sweep_id, w->nid, sizeof(s->sweep_id));
	return 1;
done:
	s->sweep_key[0] = s->sweep_id[0] = '\0';
	return 0;
}

/* One listed upload: abort it if it is under the prefix, old and not kept. */
static void
sweep_upload(struct sweep_walk *w)
{
	char kuri[S3_MAX_URI];
	struct tm tm;
	time_t t;

	if (w->key[0] != '\0' && w->id[0] != '\0') {
		xstrlcpy(w->last_key, w->key, sizeof(w->last_key));
		xstrlcpy(w->last_id, w->id, sizeof(w->last_id));
	}
	memset(&tm, 0, sizeof(tm));
	if (w->key[0] == '\0' || w->id[0] == '\0' ||
	    strncmp(w->key, w->prefix, strlen(w->prefix)) != 0 ||
	    strptime(w->when, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
		return;
	t = timegm(&tm);
	if (s3_now() - t < w->older_s)
		return;
	if (w->keep != NULL && w->keep(w->arg, w->key, w->id))
		return;
	if (key_uri(w->s, w->key, kuri, sizeof(kuri)) != 0)
		return;
	if (s3_abort_upload(w->s, w->s->curl, kuri, w->id, w->a) == 0) {
		log_info("s3: aborted the stale multipart upload of %s "
		    "(started %s)", w->key, w->when);
		w->n++;
	}
}

#define LMU	"ListMultipartUploadsResult"

/* Copies text when it fits, else "" (never a cut key or id). */
static void
text_or_empty(char *out, size_t outlen, const char *text, size_t len)
{
	xstrlcpy(out, len < outlen ? text : "", outlen);
}

static int
sweep_elem(void *arg, const char *path, const char *text, size_t len)
{
	struct sweep_walk *w = arg;

	if (strcmp(path, LMU "/Upload/Key") == 0)
		text_or_empty(w->key, sizeof(w->key), text, len);
	else if (strcmp(path, LMU "/Upload/UploadId") == 0)
		text_or_empty(w->id, sizeof(w->id), text, len);
	else if (strcmp(path, LMU "/Upload/Initiated") == 0)
		text_or_empty(w->when, sizeof(w->when), text, len);
	else if (strcmp(path, LMU "/Upload") == 0) {
		sweep_upload(w);
		w->key[0] = w->id[0] = w->when[0] = '\0';
	} else if (strcmp(path, LMU "/IsTruncated") == 0)
		text_or_empty(w->trunc, sizeof(w->trunc), text, len);
	else if (strcmp(path, LMU "/NextKeyMarker") == 0)
		text_or_empty(w->nkey, sizeof(w->nkey), text, len);
	else if (strcmp(path, LMU "/NextUploadIdMarker") == 0)
		text_or_empty(w->nid, sizeof(w->nid), text, len);
	else if (strcmp(path, LMU) == 0)
		w->complete = 1;
	return 0;
}

int
s3_store_abort_stale(struct s3_store *s, int64_t older_s,
    int (*keep)(void *, const char *, const char *), void *arg)
{
	struct s3_resp *r, *a;
	struct sweep_walk *w;
	char uri[400], query[8 * 1024], err[256];
	int n = 0, page, more = 1;
	CURLcode c;

	r = malloc(sizeof(*r));
	a = malloc(sizeof(*a));
	if (r == NULL || a == NULL || (w = malloc(sizeof(*w))) == NULL) {
		free(r);
		free(a);
		return -1;
	}
	/* Without prefix= (moto mis-signs queries holding '/'): filter here.
	 * Pages of STALE_PAGE uploads, at most STALE_PAGES of them a sweep;
	 * the next sweep goes on from the markers where this one stopped. */
	xsnprintf(uri, sizeof(uri), "%s/", s->uri_prefix);
	for (page = 0; more && page < STALE_PAGES; page++) {
		if (list_uploads_query(s, query, sizeof(query)) != 0) {
			s->sweep_key[0] = s->sweep_id[0] = '\0';
			log_warnx("s3: a multipart upload marker is too long; the "
			    "sweep starts over next time");
			n = -1;
			goto out;
		}
		c = s3_request(s, s->curl, "GET", uri, query, NULL, 0,
		    EMPTY_SHA256, NULL, r);
		if (c != CURLE_OK || r->status != 200) {
			log_warnx("s3: cannot list multipart uploads at %s: %s "
			    "(HTTP %ld)", s->origin, c == CURLE_OK ? "error" :
			    r->curl_error[0] != '\0' ? r->curl_error :
			    curl_easy_strerror(c), r->status);
			s->sweep_key[0] = s->sweep_id[0] = '\0';
			n = -1;
			goto out;
		}
		memset(w, 0, sizeof(*w));
		w->s = s;
		w->a = a;
		w->prefix = s->cfg->prefix ? s->cfg->prefix : "";
		w->older_s = older_s;
		w->keep = keep;
		w->arg = arg;
		/* A page cut at S3_BODY_MAX: what it lists, then onwards. */
		if (s3xml_walk(r->body, r->bodylen, sweep_elem, w, err,
		    sizeof(err)) != 0)
			w->complete = 0;
		n += w->n;
		more = list_uploads_next(s, w);
	}
	if (more)
		log_info("s3: looked through %d pages of multipart uploads; the "
		    "next sweep goes on from there", STALE_PAGES);
out:
	free(r);
	free(a);
	free(w);
	return n;
}

void
s3_store_set_cancel(struct s3_store *s, volatile int *flag)
{
	if (s != NULL)
		s->cancel = flag;
}

/* ---- open / close ------------------------------------------------------- */

static int
s3_endpoint(struct s3_store *s)
{
	static int warned_http;
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
	if (!https && !warned_http++)
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


/*
 * 1 if the bucket's versioning is Enabled (asked once, then remembered),
 * 0 if not, -1 if S3 could not be asked (res says why: PUT_RETRY for what
 * can pass, PUT_FATAL for a TLS trust failure, as set_curl_error decides).
 */
static int
bucket_versioned(struct s3_store *s, struct put_result *res)
{
	struct s3_resp *r;
	char uri[400], status[32] = "";
	CURLcode c;
	int rc = -1;

	if (s->versioned)
		return 1;
	if ((r = malloc(sizeof(*r))) == NULL) {
		res->outcome = PUT_RETRY;
		xsnprintf(res->error, sizeof(res->error), "cannot ask whether "
		    "the bucket is versioned: out of memory");
		return -1;
	}
	xsnprintf(uri, sizeof(uri), "%s/", s->uri_prefix);
	c = s3_request(s, s->curl, "GET", uri, "versioning=", NULL, 0,
	    EMPTY_SHA256, NULL, r);
	if (c != CURLE_OK)
		set_curl_error(s, res, "cannot ask whether the bucket is "
		    "versioned (GetBucketVersioning): ", c, r);
	else if (r->status >= 500 || r->status == 429) {
		res->outcome = PUT_RETRY;
		xsnprintf(res->error, sizeof(res->error), "cannot ask whether "
		    "the bucket is versioned: error (HTTP %ld)", r->status);
	} else if (r->status == 200) {
		resp_xml(r, "VersioningConfiguration/Status", status,
		    sizeof(status));
		rc = strcmp(status, "Enabled") == 0;
		s->versioned = rc;
		if (!rc)
			log_warnx("s3: bucket %s is not versioned: collision: "
			    "version holds files instead of overwriting",
			    s->cfg->bucket);
	} else
		rc = 0;
	free(r);
	return rc;
}
struct s3_store *
s3_store_open(const struct store_config *cfg, const struct aws_creds *creds)
{
	static int curl_ready;
	struct s3_store *s;

	if (creds != NULL && (creds->access_key[0] == '\0' ||
	    creds->secret_key[0] == '\0')) {
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
	if (creds != NULL) {
		memcpy(&s->creds, creds, sizeof(s->creds));
		s->static_creds = 1;
	}
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
