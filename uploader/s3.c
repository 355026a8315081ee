/*
 * s3.c - the S3 backend's request core (the rest: s3sign.c SigV4, s3put.c
 * single PUT and verifying HEAD, s3multi.c multipart, s3read.c HEAD/GET/
 * list, s3sweep.c the stale-upload sweep; s3int.h their shared types).
 * This file: one signed request with libcurl, the credential refresh on
 * ExpiredToken, the outcome of an answer, open and close.
 *
 * The backend as a whole: a file up to the multipart threshold is one signed
 * PUT streamed from the spooled fd with pread; a larger one is a multipart
 * upload whose parts go up several at a time (one thread and one CURL
 * handle each), whose upload id and finished parts are persisted through
 * put_request.mp so that a restart resumes (confirmed with ListParts). Every
 * PUT and part carries x-amz-content-sha256 (hex) and x-amz-checksum-sha256
 * (base64), so S3 proves the bytes; afterwards a HEAD with
 * x-amz-checksum-mode: ENABLED compares what S3 holds with the SHA-256 taken
 * at receipt (multipart: the SHA-256 of the part digests, "-N"), unless the
 * PUT's own answer carried our x-amz-checksum-sha256 back. The ETag is
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
#include "uploader/s3int.h"
#include "uploader/s3xml.h"
#include "uploader/umetrics.h"

/* While s3_store_sha256 runs a GET in this thread: where its body goes. */
__thread struct sha256 *s3_get_sink;

/*
 * S3's clock minus ours, learnt from the Date of a refused request; one for
 * the process, so every worker signs with it once one has learnt it.
 */
static time_t clock_skew;

time_t
s3_now(void)
{
	return time(NULL) + __atomic_load_n(&clock_skew, __ATOMIC_RELAXED);
}

/* Copies s to out (outlen >= 1) with control bytes as '?': for messages. */
void
s3_printable(const char *s, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < outlen; i++)
		out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	out[i] = '\0';
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
	s3_sb_addn(&b, nv, (size_t)(colon - nv));
	if (colon[1] == '\0') {
		s3_sb_add(&b, ";");
	} else {
		s3_sb_add(&b, ": ");
		s3_sb_add_trimmed(&b, colon + 1);
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
	r->sink = s3_get_sink;
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
		s3_printable(errbuf, r->curl_error, sizeof(r->curl_error));
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
		s3_printable(t, out, outlen);
	free(t);
}

/*
 * Retryable: what can pass by itself (a refused or reset connection, a
 * handshake cut off: CURLE_SSL_CONNECT_ERROR). Not retryable: a certificate
 * that does not verify (60, 83), an unusable CA file (77) or a key that does
 * not match the pin (90): a wrong trust setting does not fix itself, so the
 * file is held with the fix in its last error (see s3_set_curl_error).
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
void
s3_set_curl_error(const struct s3_store *s, struct put_result *res,
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
void
s3_set_http_error(struct s3_store *s, struct put_result *res, const char *what,
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

void
s3_set_version(struct put_result *res, const char *v)
{
	if (strcmp(v, "null") == 0)
		v = "";
	xstrlcpy(res->version_id, v, sizeof(res->version_id));
}

/* The error code in a response body ("" if none). */
void
s3_resp_code(const struct s3_resp *r, char *code, size_t len)
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
CURLcode
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
		s3_resp_code(r, code, sizeof(code));
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
void
s3_etag_norm(const char *in, char *out, size_t outlen)
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
int
s3_key_uri(struct s3_store *s, const char *key, char *uri, size_t len)
{
	char enc[3 * S3_MAX_KEY + 1];

	if (s3_uri_encode(key, enc, sizeof(enc), 1) != 0 ||
	    xsnprintf(uri, len, "%s/%s", s->uri_prefix, enc) < 0)
		return -1;
	return 0;
}

/*
 * HEAD uri with checksum mode. 1: exists (h filled); 0: 404; -1: failed
 * (res filled, prefixed with what).
 */
int
s3_head_query(struct s3_store *s, CURL *curl, const char *uri,
    const char *query, struct s3_resp *h, struct put_result *res,
    const char *what)
{
	const char *hx[1] = { "x-amz-checksum-mode:ENABLED" };
	CURLcode c;

	c = s3_request(s, curl, "HEAD", uri, query, hx, 1, EMPTY_SHA256, NULL, h);
	if (c != CURLE_OK) {
		s3_set_curl_error(s, res, what, c, h);
		return -1;
	}
	if (h->status == 200)
		return 1;
	if (h->status == 404)
		return 0;
	s3_set_http_error(s, res, what, h);
	return -1;
}

int
s3_head_uri(struct s3_store *s, CURL *curl, const char *uri, struct s3_resp *h,
    struct put_result *res, const char *what)
{
	return s3_head_query(s, curl, uri, "", h, res, what);
}

/* DELETE ?uploadId= (best effort). 0 or -1. */
int
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
	s3_printable(ep, pep, sizeof(pep));
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
 * can pass, PUT_FATAL for a TLS trust failure, as s3_set_curl_error decides).
 */
int
s3_bucket_versioned(struct s3_store *s, struct put_result *res)
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
		s3_set_curl_error(s, res, "cannot ask whether the bucket is "
		    "versioned (GetBucketVersioning): ", c, r);
	else if (r->status >= 500 || r->status == 429) {
		res->outcome = PUT_RETRY;
		xsnprintf(res->error, sizeof(res->error), "cannot ask whether "
		    "the bucket is versioned: error (HTTP %ld)", r->status);
	} else if (r->status == 200) {
		/* S3: VersioningConfiguration; moto: GetBucketVersioningResponse */
		resp_xml(r, "/*/Status", status, sizeof(status));
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

/* ---- the backend's operations (store.h) ------------------------------------ */

static void *
op_open(const struct store_config *cfg, const struct aws_creds *creds)
{
	return s3_store_open(cfg, creds);
}

static void
op_close(void *be)
{
	s3_store_close(be);
}

static void
op_put(void *be, const struct put_request *req, struct put_result *res)
{
	s3_store_put(be, req, res);
}

static void
op_set_cancel(void *be, volatile int *flag)
{
	s3_store_set_cancel(be, flag);
}

static int
op_head(void *be, const char *key, const char *version_id, char *cs,
    size_t cslen, char *err, size_t errlen)
{
	return s3_store_head(be, key, version_id, cs, cslen, err, errlen);
}

static int
op_stat(void *be, const char *key, struct store_obj *o, char *err,
    size_t errlen)
{
	return s3_store_stat(be, key, o, err, errlen);
}

static int
op_list(void *be, const char *prefix, int (*fn)(void *, const char *, int64_t),
    void *arg, char *err, size_t errlen)
{
	return s3_store_list(be, prefix, fn, arg, err, errlen);
}

static int
op_sha256(void *be, const char *key, uint8_t d[SHA256_LEN], char *err,
    size_t errlen)
{
	return s3_store_sha256(be, key, d, err, errlen);
}

static int
op_abort_stale(void *be, int64_t older_s,
    int (*keep)(void *, const char *, const char *), void *arg)
{
	return s3_store_abort_stale(be, older_s, keep, arg);
}

const struct store_ops s3_store_ops = {
	.name = "s3",
	.open = op_open,
	.close = op_close,
	.put = op_put,
	.set_cancel = op_set_cancel,
	.head = op_head,
	.stat = op_stat,
	.list = op_list,
	.sha256 = op_sha256,
	.abort_stale = op_abort_stale,
};
