/*
 * creds.c - the AWS credential chain, in the SDKs' (botocore's) order: the
 * environment; AssumeRole for a profile with role_arn + source_profile
 * (credsts.c); web identity (credsts.c); the profile's keys in
 * ~/.aws/credentials; its credential_process (credproc.c); its keys in
 * ~/.aws/config; the ECS/EKS container endpoint
 * (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI); EC2 instance
 * metadata (IMDSv2: a session token by PUT, the role by GET, the role's
 * credentials as JSON). Temporary credentials are refreshed 5 minutes before
 * they expire (the chain is walked again), and on demand (ExpiredToken).
 *
 * The current credentials are one process-wide copy behind a mutex;
 * creds_get() hands out copies which the caller wipes. Values are never
 * logged; IMDS and the container endpoint are reached without a proxy. A
 * look through the chain holds the mutex (a credential_process may take up
 * to 60 s, STS up to 20 s): uploads wait for it.
 */
#include "uploader/creds.h"

#include <arpa/inet.h>
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

enum creds_src {
	SRC_NONE = 0, SRC_ENV, SRC_ROLE, SRC_WEBID, SRC_FILE, SRC_PROCESS,
	SRC_CONTAINER, SRC_IMDS, SRC_N
};
static const char *const src_names[SRC_N] = {
	"none", "environment", "assume role", "web identity", "shared file",
	"credential process", "container", "imds"
};
static const char *const src_text[SRC_N] = {
	"none", "the environment", "AssumeRole (profile role_arn)",
	"web identity (STS)", "the shared files", "credential_process",
	"the container credentials endpoint",
	"the EC2 instance metadata service"
};

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
char *
creds_read_small(const char *path, size_t *lenp)
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

void
creds_free_small(char *buf)
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

/* ---- profiles: the shared files, read once per look -------------------- */

static void
shared_load(struct creds_shared *sf)
{
	const char *f, *home = home_dir();

	memset(sf, 0, sizeof(*sf));
	sf->profile = getenv("AWS_PROFILE");
	if (sf->profile == NULL || *sf->profile == '\0')
		sf->profile = "default";
	if ((f = getenv("AWS_SHARED_CREDENTIALS_FILE")) != NULL && *f != '\0')
		xstrlcpy(sf->credpath, f, sizeof(sf->credpath));
	else if (home == NULL || xsnprintf(sf->credpath, sizeof(sf->credpath),
	    "%s/.aws/credentials", home) < 0)
		sf->credpath[0] = '\0';
	if ((f = getenv("AWS_CONFIG_FILE")) != NULL && *f != '\0')
		xstrlcpy(sf->confpath, f, sizeof(sf->confpath));
	else if (home == NULL || xsnprintf(sf->confpath, sizeof(sf->confpath),
	    "%s/.aws/config", home) < 0)
		sf->confpath[0] = '\0';
	if (sf->credpath[0] != '\0')
		sf->cred = creds_read_small(sf->credpath, &sf->credlen);
	if (sf->confpath[0] != '\0')
		sf->conf = creds_read_small(sf->confpath, &sf->conflen);
}

static void
shared_free(struct creds_shared *sf)
{
	creds_free_small(sf->cred);
	creds_free_small(sf->conf);
	sf->cred = sf->conf = NULL;
}

/* The config file's section name of profile. */
static void
conf_section(const char *profile, char *section, size_t len)
{
	if (strcmp(profile, "default") == 0)
		xstrlcpy(section, "default", len);
	else
		xsnprintf(section, len, "profile %s", profile);
}

/*
 * key of profile: the credentials file's [profile] first, then the config
 * file's [profile NAME] ([default]). 1 found, 0 not, -1 too long.
 */
int
creds_prof_get(const struct creds_shared *sf, const char *profile, const char *key,
    char *out, size_t len)
{
	char section[300];
	int r = 0;

	out[0] = '\0';
	if (sf->cred != NULL && (r = ini_get(sf->cred, sf->credlen, profile,
	    key, out, len)) != 0)
		return r;
	conf_section(profile, section, sizeof(section));
	if (sf->conf != NULL)
		r = ini_get(sf->conf, sf->conflen, section, key, out, len);
	return r;
}

/* Static keys of profile in one file's section. 0 found, -1 not. */
static int
keys_in(const char *text, size_t len, const char *section, struct aws_creds *c)
{
	memset(c, 0, sizeof(*c));
	if (text != NULL && ini_get(text, len, section, "aws_access_key_id",
	    c->access_key, sizeof(c->access_key)) == 1 &&
	    ini_get(text, len, section, "aws_secret_access_key", c->secret_key,
	    sizeof(c->secret_key)) == 1) {
		if (ini_get(text, len, section, "aws_session_token",
		    c->session_token, sizeof(c->session_token)) != 1)
			c->session_token[0] = '\0';
		return 0;
	}
	creds_wipe(c);
	return -1;
}

int
creds_from_credfile(const struct creds_shared *sf, const char *profile,
    struct aws_creds *c)
{
	return keys_in(sf->cred, sf->credlen, profile, c);
}

int
creds_from_conffile(const struct creds_shared *sf, const char *profile,
    struct aws_creds *c)
{
	char section[300];

	conf_section(profile, section, sizeof(section));
	return keys_in(sf->conf, sf->conflen, section, c);
}

/* The profile's credential_process, if it has one. 0 or -1. */
int
creds_from_profile_process(const struct creds_shared *sf, const char *profile,
    struct aws_creds *c)
{
	char cmd[INI_LINE_MAX];

	memset(c, 0, sizeof(*c));
	if (creds_prof_get(sf, profile, "credential_process", cmd, sizeof(cmd)) != 1 ||
	    cmd[0] == '\0')
		return -1;
	return creds_from_process(profile, cmd, CREDPROC_TIMEOUT_MS, c);
}

/* ---- EC2 instance metadata (IMDSv2) ------------------------------------- */

size_t
creds_body_write(char *p, size_t size, size_t nitems, void *arg)
{
	struct creds_body *b = arg;
	size_t len = size * nitems;

	if (len > CREDS_BODY_MAX - b->n) {
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
    struct creds_body *out)
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
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, creds_body_write);
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
	struct creds_body *b = NULL;
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

/* ---- ECS / EKS container credentials ------------------------------------ */

#define ECS_HOST	"http://169.254.170.2"

int
creds_container_uri_ok(const char *url, char *err, size_t errlen)
{
	char *scheme = NULL, *host = NULL, *h;
	struct in6_addr a6;
	struct in_addr a4;
	size_t n;
	CURLU *u;
	int rc = -1;

	if ((u = curl_url()) == NULL || curl_url_set(u, CURLUPART_URL, url, 0) !=
	    CURLUE_OK || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) !=
	    CURLUE_OK || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		xsnprintf(err, errlen, "is not a URL");
		goto done;
	}
	if (strcasecmp(scheme, "https") == 0) {
		rc = 0;
		goto done;
	}
	if (strcasecmp(scheme, "http") != 0) {
		xsnprintf(err, errlen, "must be an http:// or https:// URL");
		goto done;
	}
	h = host;
	n = strlen(h);
	if (n > 2 && h[0] == '[' && h[n - 1] == ']') {
		h[n - 1] = '\0';
		h++;
	}
	if (strcasecmp(h, "localhost") == 0 ||
	    (inet_pton(AF_INET, h, &a4) == 1 &&
	    ((ntohl(a4.s_addr) >> 24) == 127 ||
	    ntohl(a4.s_addr) == 0xa9feaa02 ||		/* 169.254.170.2: ECS */
	    ntohl(a4.s_addr) == 0xa9feaa17)) ||	/* 169.254.170.23: EKS */
	    (inet_pton(AF_INET6, h, &a6) == 1 &&
	    (IN6_IS_ADDR_LOOPBACK(&a6) || (strcasecmp(h, "fd00:ec2::23") == 0))))
		rc = 0;
	else
		xsnprintf(err, errlen, "uses http:// to %s, which is neither "
		    "loopback nor the ECS/EKS address (169.254.170.2, "
		    "169.254.170.23, fd00:ec2::23); use https://", h);
done:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

/* The Authorization header for the container endpoint, or "" (none). */
static int
container_auth(char *hdr, size_t len)
{
	const char *tf = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *t = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char *buf = NULL;
	size_t n;
	int rc = -1;

	hdr[0] = '\0';
	if (tf != NULL && *tf != '\0') {
		if ((buf = creds_read_small(tf, &n)) == NULL) {
			log_warnx("credentials: cannot read "
			    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s", tf);
			return -1;
		}
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			buf[--n] = '\0';
		t = buf;
	}
	if (t == NULL || *t == '\0')
		rc = 0;
	else if (strpbrk(t, "\r\n") != NULL)
		log_warnx("credentials: the container authorization token has "
		    "a line break; fix it");
	else if (xsnprintf(hdr, len, "Authorization: %s", t) < 0)
		log_warnx("credentials: the container authorization token is "
		    "too long");
	else
		rc = 0;
	creds_free_small(buf);
	return rc;
}

/*
 * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (at 169.254.170.2) or
 * AWS_CONTAINER_CREDENTIALS_FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN
 * (or _TOKEN_FILE) as the Authorization header. 0 or -1.
 */
static int
creds_from_container(struct aws_creds *c)
{
	const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	char url[2100], auth[4200], err[300];
	struct creds_body *b = NULL;
	CURL *curl = NULL;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (rel != NULL && *rel != '\0') {
		if (rel[0] != '/' || xsnprintf(url, sizeof(url), "%s%s",
		    ECS_HOST, rel) < 0) {
			log_warnx("credentials: AWS_CONTAINER_CREDENTIALS_"
			    "RELATIVE_URI must be a path starting with /");
			return -1;
		}
	} else if (full != NULL && *full != '\0') {
		if (creds_container_uri_ok(full, err, sizeof(err)) != 0 ||
		    xstrlcpy(url, full, sizeof(url)) >= sizeof(url)) {
			log_warnx("credentials: AWS_CONTAINER_CREDENTIALS_FULL_"
			    "URI %s", err);
			return -1;
		}
	} else
		return -1;
	if (container_auth(auth, sizeof(auth)) != 0)
		return -1;
	if ((b = malloc(sizeof(*b))) == NULL || (curl = curl_easy_init()) == NULL)
		goto fail;
	if (imds_call(curl, "GET", url, auth[0] != '\0' ? auth : NULL, b) != 0) {
		log_warnx("credentials: the container credentials endpoint %s "
		    "did not answer with HTTP 200", url);
		goto fail;
	}
	if (creds_parse_imds(b->b, c) != 0) {
		log_warnx("credentials: the container credentials endpoint %s "
		    "answered with no usable credentials", url);
		goto fail;
	}
	rc = 0;
fail:
	explicit_bzero(auth, sizeof(auth));
	if (b != NULL)
		explicit_bzero(b, sizeof(*b));
	free(b);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	return rc;
}

/* ---- the chain -------------------------------------------------------------- */

/*
 * One look through the chain, in the AWS SDKs' (botocore's) order. 0 with
 * *srcp set, or -1.
 */
static int
chain(struct aws_creds *c, enum creds_src *srcp)
{
	struct creds_shared sf;
	int rc = 0;

	*srcp = SRC_NONE;
	if (creds_from_env(c) == 0) {
		*srcp = SRC_ENV;
		return 0;
	}
	shared_load(&sf);
	if (creds_from_profile_role(&sf, sf.profile, c) == 0)
		*srcp = SRC_ROLE;
	else if (creds_from_web_identity(c) == 0)
		*srcp = SRC_WEBID;
	else if (creds_from_credfile(&sf, sf.profile, c) == 0)
		*srcp = SRC_FILE;
	else if (creds_from_profile_process(&sf, sf.profile, c) == 0)
		*srcp = SRC_PROCESS;
	else if (creds_from_conffile(&sf, sf.profile, c) == 0)
		*srcp = SRC_FILE;
	else if (creds_from_container(c) == 0)
		*srcp = SRC_CONTAINER;
	else if (creds_from_imds(c) == 0)
		*srcp = SRC_IMDS;
	else
		rc = -1;
	shared_free(&sf);
	return rc;
}

/* Looks through the chain; creds_mu held. 0 or -1. */
static int
resolve(int quiet)
{
	struct aws_creds c;
	enum creds_src src = SRC_NONE;

	creds_last_try = mono_ms();
	if (chain(&c, &src) != 0) {
		if (!quiet)
			log_warnx("no S3 credentials: tried AWS_ACCESS_KEY_ID/"
			    "AWS_SECRET_ACCESS_KEY, profile %s of the shared "
			    "files (~/.aws/credentials, ~/.aws/config: role_arn, "
			    "keys, credential_process), web identity "
			    "(AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), the "
			    "container endpoint (AWS_CONTAINER_CREDENTIALS_"
			    "FULL_URI or _RELATIVE_URI) and the EC2 instance "
			    "metadata service; give the uploader one of them. "
			    "Accepted files wait in spool/ready meanwhile",
			    getenv("AWS_PROFILE") ? getenv("AWS_PROFILE") :
			    "default");
		return -1;
	}
	if (src != creds_src_cur)
		log_info("S3 credentials from %s", src_text[src]);
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
	return src_names[creds_src_cur];
}
