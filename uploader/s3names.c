/*
 * s3names.c - S3's naming rules for buckets, key prefixes, endpoints and
 * regions (see s3names.h).
 */
#include "uploader/s3names.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "common/util.h"

static int
lower_or_digit(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

const char *
s3_bucket_problem(const char *b, size_t n)
{
	size_t i;
	struct in_addr a;
	char tmp[64];

	if (n < 3 || n > 63)
		return "must be 3 to 63 characters long";
	for (i = 0; i < n; i++)
		if (!lower_or_digit(b[i]) && b[i] != '.' && b[i] != '-')
			return "may only contain lower-case letters, digits, "
			    "dots and hyphens";
	if (!lower_or_digit(b[0]) || !lower_or_digit(b[n - 1]))
		return "must begin and end with a letter or digit";
	for (i = 0; i + 1 < n; i++)
		if (b[i] == '.' && (b[i + 1] == '.' || b[i + 1] == '-' ||
		    (i > 0 && b[i - 1] == '-')))
			return "must not contain \"..\", \".-\" or \"-.\"";
	memcpy(tmp, b, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET, tmp, &a) == 1)
		return "must not be formatted as an IP address";
	if (strncmp(tmp, "xn--", 4) == 0 || strncmp(tmp, "sthree-", 7) == 0 ||
	    (n > 8 && strcmp(tmp + n - 8, "-s3alias") == 0) ||
	    (n > 7 && strcmp(tmp + n - 7, "--ol-s3") == 0))
		return "uses a prefix or suffix S3 reserves";
	return NULL;
}

const char *
s3_prefix_problem(const char *p)
{
	const char *seg = p, *c;
	size_t sl;

	if (p[0] == '/')
		return "the prefix must not start with '/'";
	if (strlen(p) > 512)
		return "the prefix is longer than 512 bytes";
	for (c = p;; c++) {
		if (*c == '\\')
			return "the prefix must not contain backslashes";
		if (*c == '/' || *c == '\0') {
			sl = (size_t)(c - seg);
			if (sl == 0 && *c == '/')
				return "the prefix must not contain \"//\"";
			if ((sl == 1 && seg[0] == '.') ||
			    (sl == 2 && seg[0] == '.' && seg[1] == '.'))
				return "the prefix must not contain \".\" or "
				    "\"..\" segments";
			if (*c == '\0')
				break;
			seg = c + 1;
		}
	}
	return NULL;
}

const char *
s3_endpoint_problem(const char *e, size_t *len, int *secret)
{
	static const char badhost[] = "has no valid host (e.g. "
	    "https://s3.eu-central-1.amazonaws.com or http://[::1]:9000)";
	const char *hp, *end, *portp = NULL;
	char host[256], pb[8];
	unsigned char a[16];
	size_t hl, hpl, pl;

	*len = 0;
	*secret = 0;
	if (strncmp(e, "https://", 8) == 0)
		hp = e + 8;
	else if (strncmp(e, "http://", 7) == 0)
		hp = e + 7;
	else
		return "must start with http:// or https:// (e.g. "
		    "http://127.0.0.1:9000)";
	if (strchr(hp, '@') != NULL) {
		*secret = 1;
		return "must not contain user:password@; give credentials "
		    "through the environment";
	}
	hpl = strlen(hp);
	if (hpl > 0 && hp[hpl - 1] == '/')
		hpl--;
	end = hp + hpl;
	if (memchr(hp, '/', hpl) != NULL || memchr(hp, '?', hpl) != NULL ||
	    memchr(hp, '#', hpl) != NULL)
		return "must be scheme://host[:port] without a path or query "
		    "(the bucket goes in store.url)";
	if (hp[0] == '[') {
		const char *close = memchr(hp, ']', hpl);

		if (close == NULL || (close + 1 != end && close[1] != ':'))
			return badhost;
		hl = (size_t)(close - hp - 1);
		if (hl == 0 || hl >= sizeof(host))
			return badhost;
		memcpy(host, hp + 1, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET6, host, a) != 1)
			return badhost;
		if (close + 1 != end)
			portp = close + 2;
	} else {
		const char *colon = memchr(hp, ':', hpl);

		hl = colon != NULL ? (size_t)(colon - hp) : hpl;
		if (hl == 0 || hl >= sizeof(host))
			return badhost;
		memcpy(host, hp, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET, host, a) != 1 && !is_hostname(host))
			return badhost;
		if (colon != NULL)
			portp = colon + 1;
	}
	if (portp != NULL) {
		pl = (size_t)(end - portp);
		if (pl == 0 || pl >= sizeof(pb))
			return "has a bad port; use 1 to 65535";
		memcpy(pb, portp, pl);
		pb[pl] = '\0';
		if (parse_port(pb) < 0)
			return "has a bad port; use 1 to 65535";
	}
	*len = (size_t)(end - e);
	return NULL;
}

const char *
s3_region_problem(const char *r)
{
	size_t i, n = strlen(r);

	if (n == 0 || n > 64)
		return "is not a region name";
	for (i = 0; i < n; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') ||
		    (r[i] >= 'A' && r[i] <= 'Z') ||
		    (r[i] >= '0' && r[i] <= '9') || r[i] == '-' ||
		    r[i] == '_' || r[i] == '.'))
			return "is not a region name";
	return NULL;
}
