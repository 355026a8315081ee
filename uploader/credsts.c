/*
 * credsts.c - STS: AssumeRoleWithWebIdentity (AWS_WEB_IDENTITY_TOKEN_FILE +
 * AWS_ROLE_ARN, unsigned) and AssumeRole for a profile with role_arn +
 * source_profile (SigV4-signed for "sts" with the source profile's
 * credentials through s3sign.c's signer), at AWS_ENDPOINT_URL_STS or
 * https://sts.<region>.amazonaws.com; replies read by stsxml.c. Part of the
 * credential chain of creds.c; never logs a secret.
 */
#include "uploader/creds.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "common/log.h"
#include "common/util.h"

/* ---- STS (AssumeRoleWithWebIdentity, AssumeRole) ------------------------- */

static int
slist_push(struct curl_slist **sl, const char *h)
{
	struct curl_slist *n;

	if ((n = curl_slist_append(*sl, h)) == NULL)
		return -1;
	*sl = n;
	return 0;
}

/* Frees a header list that may hold secrets. */
static void
slist_wipe(struct curl_slist *sl)
{
	struct curl_slist *p;

	for (p = sl; p != NULL; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(sl);
}

static void
sts_region(const char *want, char *out, size_t len)
{
	const char *r = want;

	if (r == NULL || *r == '\0')
		r = getenv("AWS_REGION");
	if (r == NULL || *r == '\0')
		r = getenv("AWS_DEFAULT_REGION");
	if (r == NULL || *r == '\0')
		r = "us-east-1";
	xstrlcpy(out, r, len);
}

/* AWS_ENDPOINT_URL_STS, else https://sts.<region>.amazonaws.com. */
static void
sts_url(const char *region, char *url, size_t len)
{
	const char *ep = getenv("AWS_ENDPOINT_URL_STS");

	if (ep != NULL && *ep != '\0')
		xstrlcpy(url, ep, len);
	else
		xsnprintf(url, len, "https://sts.%s.amazonaws.com", region);
}

/* The SigV4 headers of a POST of body to url for STS, signed with src. */
static int
sts_sign(const struct aws_creds *src, const char *region, const char *url,
    const char *body, struct curl_slist **sl)
{
	char *host = NULL, *port = NULL, *path = NULL;
	char hosthdr[400], date[32], datehdr[64], hash[SHA256_HEX];
	char auth[1024], authhdr[1100], *tokhdr = NULL;
	const char *h[4];
	uint8_t dig[SHA256_LEN];
	size_t n = 0, toklen = 0;
	struct tm tm;
	time_t now = time(NULL);
	CURLU *u;
	int rc = -1;

	if ((u = curl_url()) == NULL || curl_url_set(u, CURLUPART_URL, url, 0) !=
	    CURLUE_OK || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		goto fail;
	if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
		port = NULL;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm);
	if (xsnprintf(hosthdr, sizeof(hosthdr), "host:%s%s%s", host,
	    port ? ":" : "", port ? port : "") < 0 ||
	    xsnprintf(datehdr, sizeof(datehdr), "x-amz-date:%s", date) < 0 ||
	    sha256_buf(body, strlen(body), dig) != 0)
		goto fail;
	hex_encode(dig, sizeof(dig), hash);
	h[n++] = "content-type:application/x-www-form-urlencoded; charset=utf-8";
	h[n++] = hosthdr;
	h[n++] = datehdr;
	if (src->session_token[0] != '\0') {
		toklen = strlen(src->session_token) + 32;
		if ((tokhdr = malloc(toklen)) == NULL)
			goto fail;
		xsnprintf(tokhdr, toklen, "x-amz-security-token:%s",
		    src->session_token);
		h[n++] = tokhdr;
	}
	if (sigv4_sign_service(src, region, "sts", "POST", path, "", h, n, hash,
	    date, auth, sizeof(auth)) != 0 ||
	    xsnprintf(authhdr, sizeof(authhdr), "Authorization: %s", auth) < 0)
		goto fail;
	/* curl sends "name: value"; the signed forms are "name:value" */
	xsnprintf(datehdr, sizeof(datehdr), "X-Amz-Date: %s", date);
	if (slist_push(sl, datehdr) != 0 || slist_push(sl, authhdr) != 0)
		goto fail;
	if (tokhdr != NULL && (xsnprintf(tokhdr, toklen,
	    "X-Amz-Security-Token: %s", src->session_token) < 0 ||
	    slist_push(sl, tokhdr) != 0))
		goto fail;
	rc = 0;
fail:
	if (tokhdr != NULL) {
		explicit_bzero(tokhdr, strlen(tokhdr));
		free(tokhdr);
	}
	explicit_bzero(auth, sizeof(auth));
	explicit_bzero(authhdr, sizeof(authhdr));
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return rc;
}

/*
 * POSTs body (an STS query) to the STS endpoint, signed with src (NULL:
 * unsigned, for AssumeRoleWithWebIdentity), and reads the credentials of
 * the reply. what names the call in messages. 0 or -1 (logged).
 */
static int
sts_call(const struct aws_creds *src, const char *region, const char *body,
    const char *what, struct aws_creds *c)
{
	const char *ca = getenv("AWS_CA_BUNDLE");
	char url[600], err[400];
	struct creds_body *b = NULL;
	struct curl_slist *sl = NULL;
	long status = 0;
	CURL *curl = NULL;
	CURLcode cc;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	sts_url(region, url, sizeof(url));
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (curl = curl_easy_init()) == NULL ||
	    slist_push(&sl, "Content-Type: application/x-www-form-urlencoded; "
	    "charset=utf-8") != 0 ||
	    (src != NULL && sts_sign(src, region, url, body, &sl) != 0)) {
		log_warnx("credentials: %s: cannot build the request to %s",
		    what, url);
		goto fail;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 15L);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, sl);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, creds_body_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
	if (ca != NULL && *ca != '\0')
		curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK || b->over) {
		log_warnx("credentials: %s at %s failed: %s", what, url,
		    b->over ? "the reply is too large" : curl_easy_strerror(cc));
		goto fail;
	}
	if (sts_parse_credentials(b->b, b->n, c, err, sizeof(err)) != 0) {
		log_warnx("credentials: %s at %s: HTTP %ld, %s", what, url,
		    status, err);
		goto fail;
	}
	if (status != 200) {
		log_warnx("credentials: %s at %s: HTTP %ld", what, url, status);
		goto fail;
	}
	rc = 0;
fail:
	if (rc != 0)
		creds_wipe(c);
	if (b != NULL)
		explicit_bzero(b, sizeof(*b));
	free(b);
	slist_wipe(sl);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	return rc;
}

/*
 * AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME):
 * an unsigned AssumeRoleWithWebIdentity to STS (AWS_ENDPOINT_URL_STS, else
 * https://sts.<AWS_REGION or us-east-1>.amazonaws.com). 0 or -1.
 */
int
creds_from_web_identity(struct aws_creds *c)
{
	const char *tf = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *arn = getenv("AWS_ROLE_ARN");
	const char *sess = getenv("AWS_ROLE_SESSION_NAME");
	char *tok = NULL, *etok = NULL, *earn = NULL, *esess = NULL;
	char *body = NULL, region[64];
	size_t len, blen;
	CURL *curl = NULL;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (tf == NULL || *tf == '\0' || arn == NULL || *arn == '\0')
		return -1;
	if (sess == NULL || *sess == '\0')
		sess = "sluice-uploader";
	sts_region(NULL, region, sizeof(region));
	if ((tok = creds_read_small(tf, &len)) == NULL) {
		log_warnx("credentials: cannot read the web identity token %s", tf);
		return -1;
	}
	tok[strcspn(tok, "\r\n")] = '\0';
	if ((curl = curl_easy_init()) == NULL ||
	    (etok = curl_easy_escape(curl, tok, 0)) == NULL ||
	    (earn = curl_easy_escape(curl, arn, 0)) == NULL ||
	    (esess = curl_easy_escape(curl, sess, 0)) == NULL)
		goto fail;
	blen = strlen(etok) + strlen(earn) + strlen(esess) + 200;
	if ((body = malloc(blen)) == NULL)
		goto fail;
	xsnprintf(body, blen, "Action=AssumeRoleWithWebIdentity&DurationSeconds="
	    "3600&RoleArn=%s&RoleSessionName=%s&Version=2011-06-15&"
	    "WebIdentityToken=%s", earn, esess, etok);
	rc = sts_call(NULL, region, body, "AssumeRoleWithWebIdentity", c);
fail:
	if (body != NULL)
		explicit_bzero(body, strlen(body));
	free(body);
	if (etok != NULL)
		explicit_bzero(etok, strlen(etok));
	curl_free(etok);
	curl_free(earn);
	curl_free(esess);
	creds_free_small(tok);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	return rc;
}

/* ---- AssumeRole from a profile (role_arn + source_profile) --------------- */

#define ROLE_CHAIN_MAX	4

static int profile_role(const struct creds_shared *, const char *, int,
    struct aws_creds *);

/*
 * The credentials of a source profile: its static keys first (so a profile
 * may name itself), else its credential_process, else its own role_arn.
 */
static int
source_creds(const struct creds_shared *sf, const char *profile, int depth,
    struct aws_creds *c)
{
	if (creds_from_credfile(sf, profile, c) == 0 ||
	    creds_from_conffile(sf, profile, c) == 0)
		return 0;
	if (creds_from_profile_process(sf, profile, c) == 0)
		return 0;
	return profile_role(sf, profile, depth, c);
}

static int
session_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 2 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+=,.@-") == n;
}

/* The STS AssumeRole query for profile's role_arn. NULL (logged) or malloc'd. */
static char *
assume_body(const struct creds_shared *sf, const char *profile, const char *arn)
{
	char ext[1300], sess[80], dur[32], *end, *body = NULL;
	char *earn = NULL, *eext = NULL;
	long long d = 3600;
	size_t blen;
	CURL *curl;

	if (creds_prof_get(sf, profile, "role_session_name", sess, sizeof(sess)) != 1)
		xstrlcpy(sess, "sluice-uploader", sizeof(sess));
	if (creds_prof_get(sf, profile, "external_id", ext, sizeof(ext)) == -1 ||
	    creds_prof_get(sf, profile, "duration_seconds", dur, sizeof(dur)) == -1) {
		log_warnx("credentials: profile %s: external_id or "
		    "duration_seconds is too long", profile);
		return NULL;
	}
	if (dur[0] != '\0') {
		errno = 0;
		d = strtoll(dur, &end, 10);
		if (errno != 0 || *end != '\0' || d < 900 || d > 43200) {
			log_warnx("credentials: profile %s: duration_seconds %s "
			    "is not a number of seconds from 900 to 43200",
			    profile, dur);
			return NULL;
		}
	}
	if (!session_name_ok(sess)) {
		log_warnx("credentials: profile %s: role_session_name must be "
		    "2 to 64 of A-Z a-z 0-9 _+=,.@-", profile);
		return NULL;
	}
	if ((curl = curl_easy_init()) == NULL ||
	    (earn = curl_easy_escape(curl, arn, 0)) == NULL ||
	    (eext = curl_easy_escape(curl, ext, 0)) == NULL)
		goto done;
	blen = strlen(earn) + strlen(eext) + strlen(sess) + 200;
	if ((body = malloc(blen)) != NULL)
		xsnprintf(body, blen, "Action=AssumeRole&DurationSeconds=%lld"
		    "%s%s&RoleArn=%s&RoleSessionName=%s&Version=2011-06-15", d,
		    ext[0] != '\0' ? "&ExternalId=" : "", eext, earn, sess);
done:
	curl_free(earn);
	curl_free(eext);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	return body;
}

/*
 * profile has role_arn: AssumeRole, signed with source_profile's
 * credentials. 0, or -1 (logged when the profile asks for a role).
 */
static int
profile_role(const struct creds_shared *sf, const char *profile, int depth,
    struct aws_creds *c)
{
	char arn[2100], src[256], region[64], what[400], *body = NULL;
	struct aws_creds sc;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	memset(&sc, 0, sizeof(sc));
	if (creds_prof_get(sf, profile, "role_arn", arn, sizeof(arn)) != 1 ||
	    arn[0] == '\0')
		return -1;
	if (depth >= ROLE_CHAIN_MAX) {
		log_warnx("credentials: profile %s: source_profile chains are "
		    "limited to %d roles (a loop?)", profile, ROLE_CHAIN_MAX);
		return -1;
	}
	if (creds_prof_get(sf, profile, "source_profile", src, sizeof(src)) != 1 ||
	    src[0] == '\0') {
		log_warnx("credentials: profile %s has role_arn but no "
		    "source_profile; add source_profile = <a profile with "
		    "keys or a credential_process> (credential_source is not "
		    "supported)", profile);
		return -1;
	}
	if (source_creds(sf, src, depth + 1, &sc) != 0) {
		if (depth == 0)
			log_warnx("credentials: profile %s: source_profile %s "
			    "gives no credentials; give it aws_access_key_id and "
			    "aws_secret_access_key or a credential_process",
			    profile, src);
		goto fail;
	}
	if (creds_prof_get(sf, profile, "region", region, sizeof(region)) != 1)
		region[0] = '\0';
	sts_region(region, region, sizeof(region));
	if ((body = assume_body(sf, profile, arn)) == NULL)
		goto fail;
	xsnprintf(what, sizeof(what), "profile %s: AssumeRole %s", profile, arn);
	rc = sts_call(&sc, region, body, what, c);
fail:
	creds_wipe(&sc);
	free(body);
	return rc;
}

int
creds_from_profile_role(const struct creds_shared *sf, const char *profile,
    struct aws_creds *c)
{
	return profile_role(sf, profile, 0, c);
}
