/*
 * creds.c - AWS credentials: the environment, the shared files
 * (~/.aws/credentials and ~/.aws/config, profile AWS_PROFILE), web identity
 * (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN: STS AssumeRoleWithWebIdentity,
 * endpoint AWS_ENDPOINT_URL_STS), and EC2 instance metadata (IMDSv2: a
 * session token by PUT, the role by GET, the role's credentials as JSON),
 * tried in that order. Temporary credentials are refreshed 5 minutes before
 * they expire, and on demand (ExpiredToken).
 *
 * The current credentials are one process-wide copy behind a mutex;
 * creds_get() hands out copies which the caller wipes. Values are never
 * logged, and IMDS is always reached without a proxy.
 */
#include "uploader/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/log.h"
#include "common/util.h"

#define SHARED_FILE_MAX		(64 * 1024)	/* bigger files are refused */
#define INI_LINE_MAX		4096
#define REFRESH_BEFORE_MS	(5 * 60 * 1000)
#define RETRY_RESOLVE_MS	5000	/* no credentials: look again at most this often */
#define IMDS_DEFAULT		"http://169.254.169.254"
#define IMDS_BODY_MAX		(16 * 1024)

enum creds_src { SRC_NONE = 0, SRC_ENV, SRC_FILE, SRC_WEBID, SRC_IMDS };

static pthread_mutex_t creds_mu = PTHREAD_MUTEX_INITIALIZER;
static struct aws_creds creds_cur;
static enum creds_src creds_src_cur;
static int64_t creds_last_try;

static int
creds_copy(const char *var, char *dst, size_t len, int required)
{
	const char *v = getenv(var);

	if (v == NULL || *v == '\0') {
		dst[0] = '\0';
		return required ? -1 : 0;
	}
	if (xstrlcpy(dst, v, len) >= len) {
		log_warnx("%s is longer than %zu bytes", var, len - 1);
		return -1;
	}
	return 0;
}

int
creds_from_env(struct aws_creds *c)
{
	memset(c, 0, sizeof(*c));
	if (creds_copy("AWS_ACCESS_KEY_ID", c->access_key,
	    sizeof(c->access_key), 1) != 0 ||
	    creds_copy("AWS_SECRET_ACCESS_KEY", c->secret_key,
	    sizeof(c->secret_key), 1) != 0 ||
	    creds_copy("AWS_SESSION_TOKEN", c->session_token,
	    sizeof(c->session_token), 0) != 0)
		goto fail;
	return 0;
fail:
	creds_wipe(c);
	return -1;
}

void
creds_wipe(struct aws_creds *c)
{
	if (c != NULL)
		explicit_bzero(c, sizeof(*c));
}

/* ---- the INI format of the shared files --------------------------------- */

/* [b, e) without blanks at either end. */
static void
trim(const char **b, const char **e)
{
	while (*b < *e && (**b == ' ' || **b == '\t'))
		(*b)++;
	while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t' ||
	    (*e)[-1] == '\r'))
		(*e)--;
}

static int
span_is(const char *b, const char *e, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(e - b) == n && memcmp(b, s, n) == 0;
}

int
ini_get(const char *text, size_t len, const char *section, const char *key,
    char *out, size_t outlen)
{
	const char *p = text, *end = text + len, *nl, *b, *e, *eq;
	int in = 0;

	if (outlen > 0)
		out[0] = '\0';
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (nl - p > INI_LINE_MAX)
			return -1;
		b = p;
		e = nl;
		p = nl < end ? nl + 1 : end;
		trim(&b, &e);
		if (b == e || *b == '#' || *b == ';')
			continue;
		if (*b == '[') {
			if (e[-1] != ']' || e - b < 2) {
				in = 0;
				continue;
			}
			b++;
			e--;
			trim(&b, &e);
			in = span_is(b, e, section);
			continue;
		}
		if (!in || (eq = memchr(b, '=', (size_t)(e - b))) == NULL)
			continue;
		{
			const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;

			trim(&kb, &ke);
			trim(&vb, &ve);
			if (!span_is(kb, ke, key))
				continue;
			if ((size_t)(ve - vb) >= outlen)
				return -1;
			memcpy(out, vb, (size_t)(ve - vb));
			out[ve - vb] = '\0';
			return 1;
		}
	}
	return 0;
}

/* Reads a whole small file into a NUL-terminated malloc'd buffer. */
static char *
read_small(const char *path, size_t *lenp)
{
	char *buf = NULL;
	ssize_t n;
	size_t len = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	if ((buf = malloc(SHARED_FILE_MAX + 1)) == NULL)
		goto fail;
	while (len < SHARED_FILE_MAX + 1) {
		n = read(fd, buf + len, SHARED_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > SHARED_FILE_MAX) {
		log_warnx("credentials: %s is larger than %d bytes; not read",
		    path, SHARED_FILE_MAX);
		goto fail;
	}
	buf[len] = '\0';
	close(fd);
	*lenp = len;
	return buf;
fail:
	close(fd);
	if (buf != NULL)
		explicit_bzero(buf, SHARED_FILE_MAX + 1);
	free(buf);
	return NULL;
}

static void
free_small(char *buf)
{
	if (buf != NULL) {
		explicit_bzero(buf, SHARED_FILE_MAX + 1);
		free(buf);
	}
}

static const char *
home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h != NULL && *h != '\0')
		return h;
	pw = getpwuid(getuid());
	return pw != NULL ? pw->pw_dir : NULL;
}

/* One shared file: keys in [section]. 0 found, -1 not. */
static int
creds_from_ini(const char *path, const char *section, struct aws_creds *c)
{
	char *text;
	size_t len;
	int rc = -1;

	if ((text = read_small(path, &len)) == NULL)
		return -1;
	if (ini_get(text, len, section, "aws_access_key_id", c->access_key,
	    sizeof(c->access_key)) == 1 &&
	    ini_get(text, len, section, "aws_secret_access_key", c->secret_key,
	    sizeof(c->secret_key)) == 1) {
		if (ini_get(text, len, section, "aws_session_token",
		    c->session_token, sizeof(c->session_token)) != 1)
			c->session_token[0] = '\0';
		rc = 0;
	}
	free_small(text);
	if (rc != 0)
		creds_wipe(c);
	return rc;
}

static int
creds_from_files(struct aws_creds *c)
{
	const char *profile = getenv("AWS_PROFILE"), *f, *home = home_dir();
	char path[4096], section[300];

	memset(c, 0, sizeof(*c));
	if (profile == NULL || *profile == '\0')
		profile = "default";
	if ((f = getenv("AWS_SHARED_CREDENTIALS_FILE")) != NULL && *f != '\0')
		xstrlcpy(path, f, sizeof(path));
	else if (home == NULL || xsnprintf(path, sizeof(path),
	    "%s/.aws/credentials", home) < 0)
		path[0] = '\0';
	if (path[0] != '\0' && creds_from_ini(path, profile, c) == 0)
		return 0;
	if ((f = getenv("AWS_CONFIG_FILE")) != NULL && *f != '\0')
		xstrlcpy(path, f, sizeof(path));
	else if (home == NULL || xsnprintf(path, sizeof(path),
	    "%s/.aws/config", home) < 0)
		return -1;
	if (strcmp(profile, "default") == 0)
		xstrlcpy(section, "default", sizeof(section));
	else
		xsnprintf(section, sizeof(section), "profile %s", profile);
	return creds_from_ini(path, section, c);
}

/* ---- EC2 instance metadata (IMDSv2) ------------------------------------- */

struct imds_buf {
	char	 b[IMDS_BODY_MAX + 1];
	size_t	 n;
	int	 over;
};

static size_t
imds_write(char *p, size_t size, size_t nitems, void *arg)
{
	struct imds_buf *b = arg;
	size_t len = size * nitems;

	if (len > IMDS_BODY_MAX - b->n) {
		b->over = 1;
		return 0;
	}
	memcpy(b->b + b->n, p, len);
	b->n += len;
	b->b[b->n] = '\0';
	return len;
}

/* One IMDS request. 0 with the body in out, or -1. */
static int
imds_call(CURL *curl, const char *method, const char *url, const char *hdr,
    struct imds_buf *out)
{
	struct curl_slist *sl = NULL;
	long status = 0;
	CURLcode c;

	out->n = 0;
	out->over = 0;
	out->b[0] = '\0';
	if (hdr != NULL && (sl = curl_slist_append(NULL, hdr)) == NULL)
		return -1;
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, sl);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, imds_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
	if (strcmp(method, "PUT") == 0) {
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
	}
	c = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	if (sl != NULL) {
		explicit_bzero(sl->data, strlen(sl->data));
		curl_slist_free_all(sl);
	}
	if (c != CURLE_OK || status != 200 || out->over) {
		log_debug("credentials: IMDS %s %s: %s, HTTP %ld", method, url,
		    curl_easy_strerror(c), status);
		return -1;
	}
	return 0;
}

int
creds_parse_imds(const char *json, struct aws_creds *c)
{
	const char *ak, *sk, *tok, *exp, *code;
	json_t *j;
	struct tm tm;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if ((j = json_loads(json, 0, NULL)) == NULL || !json_is_object(j))
		goto fail;
	code = json_string_value(json_object_get(j, "Code"));
	ak = json_string_value(json_object_get(j, "AccessKeyId"));
	sk = json_string_value(json_object_get(j, "SecretAccessKey"));
	tok = json_string_value(json_object_get(j, "Token"));
	exp = json_string_value(json_object_get(j, "Expiration"));
	if ((code != NULL && strcmp(code, "Success") != 0) || ak == NULL ||
	    sk == NULL || *ak == '\0' || *sk == '\0' ||
	    xstrlcpy(c->access_key, ak, sizeof(c->access_key)) >=
	    sizeof(c->access_key) ||
	    xstrlcpy(c->secret_key, sk, sizeof(c->secret_key)) >=
	    sizeof(c->secret_key) ||
	    (tok != NULL && xstrlcpy(c->session_token, tok,
	    sizeof(c->session_token)) >= sizeof(c->session_token)))
		goto fail;
	if (exp != NULL) {
		memset(&tm, 0, sizeof(tm));
		if (strptime(exp, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
			goto fail;
		c->expires_ms = (int64_t)timegm(&tm) * 1000;
	}
	rc = 0;
fail:
	json_decref(j);
	if (rc != 0)
		creds_wipe(c);
	return rc;
}

static int
creds_from_imds(struct aws_creds *c)
{
	const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"), *d;
	struct imds_buf *b = NULL;
	char url[1200], tokhdr[1200], role[256];
	size_t n;
	CURL *curl = NULL;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	tokhdr[0] = '\0';
	if ((d = getenv("AWS_EC2_METADATA_DISABLED")) != NULL &&
	    strcasecmp(d, "true") == 0)
		return -1;
	if (ep == NULL || *ep == '\0')
		ep = IMDS_DEFAULT;
	n = strlen(ep);
	while (n > 0 && ep[n - 1] == '/')
		n--;
	if ((b = malloc(sizeof(*b))) == NULL || (curl = curl_easy_init()) == NULL)
		goto fail;
	if (xsnprintf(url, sizeof(url), "%.*s/latest/api/token", (int)n, ep) < 0 ||
	    imds_call(curl, "PUT", url, "X-aws-ec2-metadata-token-ttl-seconds: "
	    "21600", b) != 0)
		goto fail;
	b->b[strcspn(b->b, "\r\n")] = '\0';
	if (xsnprintf(tokhdr, sizeof(tokhdr), "X-aws-ec2-metadata-token: %s",
	    b->b) < 0)
		goto fail;
	if (xsnprintf(url, sizeof(url), "%.*s/latest/meta-data/iam/"
	    "security-credentials/", (int)n, ep) < 0 ||
	    imds_call(curl, "GET", url, tokhdr, b) != 0)
		goto fail;
	b->b[strcspn(b->b, "\r\n")] = '\0';
	if (b->b[0] == '\0' || strchr(b->b, '/') != NULL ||
	    xstrlcpy(role, b->b, sizeof(role)) >= sizeof(role))
		goto fail;
	if (xsnprintf(url, sizeof(url), "%.*s/latest/meta-data/iam/"
	    "security-credentials/%s", (int)n, ep, role) < 0 ||
	    imds_call(curl, "GET", url, tokhdr, b) != 0)
		goto fail;
	if (creds_parse_imds(b->b, c) != 0) {
		log_warnx("credentials: the instance metadata service answered "
		    "with no usable credentials for role %s", role);
		goto fail;
	}
	rc = 0;
fail:
	explicit_bzero(tokhdr, sizeof(tokhdr));
	if (b != NULL)
		explicit_bzero(b, sizeof(*b));
	free(b);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	return rc;
}

/* ---- web identity (STS AssumeRoleWithWebIdentity) ------------------------ */

/* The text of <tag>...</tag> in xml into out; 0 or -1. */
static int
xml_get(const char *xml, const char *tag, char *out, size_t outlen)
{
	char open[64], close[64];
	const char *b, *e;

	if (xsnprintf(open, sizeof(open), "<%s>", tag) < 0 ||
	    xsnprintf(close, sizeof(close), "</%s>", tag) < 0 ||
	    (b = strstr(xml, open)) == NULL)
		return -1;
	b += strlen(open);
	if ((e = strstr(b, close)) == NULL || (size_t)(e - b) >= outlen)
		return -1;
	memcpy(out, b, (size_t)(e - b));
	out[e - b] = '\0';
	return 0;
}

/*
 * AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (+ AWS_ROLE_SESSION_NAME):
 * an unsigned AssumeRoleWithWebIdentity to STS (AWS_ENDPOINT_URL_STS, else
 * https://sts.<AWS_REGION or us-east-1>.amazonaws.com). 0 or -1.
 */
static int
creds_from_web_identity(struct aws_creds *c)
{
	const char *tf = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *arn = getenv("AWS_ROLE_ARN");
	const char *sess = getenv("AWS_ROLE_SESSION_NAME");
	const char *ep = getenv("AWS_ENDPOINT_URL_STS");
	const char *region = getenv("AWS_REGION");
	char *tok = NULL, *etok = NULL, *earn = NULL, *esess = NULL;
	char *body = NULL, url[600], exp[64];
	struct imds_buf *b = NULL;
	struct curl_slist *sl = NULL;
	struct tm tm;
	size_t len, blen;
	long status = 0;
	CURL *curl = NULL;
	CURLcode cc;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (tf == NULL || *tf == '\0' || arn == NULL || *arn == '\0')
		return -1;
	if (sess == NULL || *sess == '\0')
		sess = "sluice-uploader";
	if (region == NULL || *region == '\0')
		region = getenv("AWS_DEFAULT_REGION");
	if (region == NULL || *region == '\0')
		region = "us-east-1";
	if (ep != NULL && *ep != '\0')
		xstrlcpy(url, ep, sizeof(url));
	else
		xsnprintf(url, sizeof(url), "https://sts.%s.amazonaws.com", region);
	if ((tok = read_small(tf, &len)) == NULL) {
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
	if ((body = malloc(blen)) == NULL || (b = malloc(sizeof(*b))) == NULL)
		goto fail;
	xsnprintf(body, blen, "Action=AssumeRoleWithWebIdentity&DurationSeconds="
	    "3600&RoleArn=%s&RoleSessionName=%s&Version=2011-06-15&"
	    "WebIdentityToken=%s", earn, esess, etok);
	b->n = 0;
	b->over = 0;
	b->b[0] = '\0';
	if ((sl = curl_slist_append(NULL, "Content-Type: "
	    "application/x-www-form-urlencoded")) == NULL)
		goto fail;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 15L);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, sl);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, imds_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK || status != 200 || b->over) {
		log_warnx("credentials: AssumeRoleWithWebIdentity for %s at %s "
		    "failed: %s, HTTP %ld", arn, url, curl_easy_strerror(cc),
		    status);
		goto fail;
	}
	if (xml_get(b->b, "AccessKeyId", c->access_key,
	    sizeof(c->access_key)) != 0 ||
	    xml_get(b->b, "SecretAccessKey", c->secret_key,
	    sizeof(c->secret_key)) != 0 ||
	    xml_get(b->b, "SessionToken", c->session_token,
	    sizeof(c->session_token)) != 0 ||
	    xml_get(b->b, "Expiration", exp, sizeof(exp)) != 0) {
		log_warnx("credentials: STS answered AssumeRoleWithWebIdentity "
		    "without credentials");
		goto fail;
	}
	memset(&tm, 0, sizeof(tm));
	if (strptime(exp, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
		goto fail;
	c->expires_ms = (int64_t)timegm(&tm) * 1000;
	rc = 0;
fail:
	if (rc != 0)
		creds_wipe(c);
	if (body != NULL)
		explicit_bzero(body, strlen(body));
	free(body);
	if (b != NULL)
		explicit_bzero(b, sizeof(*b));
	free(b);
	curl_slist_free_all(sl);
	if (etok != NULL)
		explicit_bzero(etok, strlen(etok));
	curl_free(etok);
	curl_free(earn);
	curl_free(esess);
	free_small(tok);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	return rc;
}

/* ---- the chain -------------------------------------------------------------- */

/* Looks through the chain; creds_mu held. 0 or -1. */
static int
resolve(int quiet)
{
	struct aws_creds c;
	enum creds_src src = SRC_NONE;

	creds_last_try = mono_ms();
	if (creds_from_env(&c) == 0)
		src = SRC_ENV;
	else if (creds_from_files(&c) == 0)
		src = SRC_FILE;
	else if (creds_from_web_identity(&c) == 0)
		src = SRC_WEBID;
	else if (creds_from_imds(&c) == 0)
		src = SRC_IMDS;
	if (src == SRC_NONE) {
		if (!quiet)
			log_warnx("no S3 credentials: tried AWS_ACCESS_KEY_ID/"
			    "AWS_SECRET_ACCESS_KEY, the shared files "
			    "(~/.aws/credentials, ~/.aws/config, profile %s), web "
			    "identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN) "
			    "and the EC2 instance metadata service; give the "
			    "uploader one of them. Accepted files wait in "
			    "spool/ready meanwhile", getenv("AWS_PROFILE") ?
			    getenv("AWS_PROFILE") : "default");
		return -1;
	}
	if (src != creds_src_cur)
		log_info("S3 credentials from %s", src == SRC_ENV ?
		    "the environment" : src == SRC_FILE ? "the shared files" :
		    src == SRC_WEBID ? "web identity (STS)" :
		    "the EC2 instance metadata service");
	memcpy(&creds_cur, &c, sizeof(creds_cur));
	creds_wipe(&c);
	creds_src_cur = src;
	return 0;
}

int
creds_init(void)
{
	int rc;

	pthread_mutex_lock(&creds_mu);
	rc = resolve(0);
	pthread_mutex_unlock(&creds_mu);
	return rc;
}

int
creds_get(struct aws_creds *out)
{
	int64_t now = now_ms();
	int rc = 0;

	pthread_mutex_lock(&creds_mu);
	if (creds_src_cur == SRC_NONE) {
		if (mono_ms() - creds_last_try >= RETRY_RESOLVE_MS)
			resolve(0);
	} else if (creds_cur.expires_ms != 0 &&
	    creds_cur.expires_ms - now < REFRESH_BEFORE_MS &&
	    mono_ms() - creds_last_try >= 1000) {
		/* Keep the old ones if the refresh fails and they still work. */
		if (resolve(1) != 0 && creds_cur.expires_ms <= now) {
			log_warnx("S3 credentials expired and cannot be "
			    "refreshed");
			creds_wipe(&creds_cur);
			creds_src_cur = SRC_NONE;
		}
	}
	if (creds_src_cur == SRC_NONE)
		rc = -1;
	else
		memcpy(out, &creds_cur, sizeof(*out));
	pthread_mutex_unlock(&creds_mu);
	return rc;
}

/*
 * Looks through the chain again: 0 with new credentials, 1 when the chain
 * gave the very same ones from the same source (nothing fresher to be had,
 * e.g. fixed ones in the environment), -1 when it gave none (the old ones
 * are kept).
 */
int
creds_refresh(void)
{
	struct aws_creds old;
	enum creds_src src;
	int rc;

	pthread_mutex_lock(&creds_mu);
	memcpy(&old, &creds_cur, sizeof(old));
	src = creds_src_cur;
	rc = resolve(0);
	if (rc == 0 && src != SRC_NONE && src == creds_src_cur &&
	    strcmp(old.access_key, creds_cur.access_key) == 0 &&
	    strcmp(old.secret_key, creds_cur.secret_key) == 0 &&
	    strcmp(old.session_token, creds_cur.session_token) == 0)
		rc = 1;
	pthread_mutex_unlock(&creds_mu);
	creds_wipe(&old);
	return rc;
}

const char *
creds_source(void)
{
	switch (creds_src_cur) {
	case SRC_ENV:
		return "environment";
	case SRC_FILE:
		return "shared file";
	case SRC_WEBID:
		return "web identity";
	case SRC_IMDS:
		return "imds";
	default:
		return "none";
	}
}
