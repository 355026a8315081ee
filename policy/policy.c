/*
 * policy.c - pure decisions over the config structs (see policy.h) and the
 * CIDR parser the loader uses (config.h). Passwords (crypt(3)) are in
 * password.c, so a program that checks none does not link libcrypt.
 */
#include "policy/policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

/* ---- CIDR ---------------------------------------------------------------- */

static const uint8_t v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

static int
mask_host_bits(struct cidr *c)
{
	int bytes = c->family == AF_INET ? 4 : 16, i, bits, dirty = 0;
	uint8_t m;

	for (i = 0; i < bytes; i++) {
		bits = c->prefix - i * 8;
		if (bits >= 8)
			continue;
		m = bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
		if (c->addr[i] & ~m)
			dirty = 1;
		c->addr[i] &= m;
	}
	return dirty;
}

int
cidr_parse_lenient(const char *s, struct cidr *out, int *host_bits)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash;
	size_t alen;
	int prefix = -1, max, i;
	struct cidr c;

	if (host_bits != NULL)
		*host_bits = 0;
	if (s == NULL || out == NULL)
		return -1;
	memset(&c, 0, sizeof(c));
	slash = strchr(s, '/');
	alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, c.addr) == 1) {
		c.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c.addr) == 1) {
		c.family = AF_INET6;
		max = 128;
	} else
		return -1;
	if (slash != NULL) {
		/* Decimal digits only: no sign, no blanks, at most 3 digits. */
		const char *p = slash + 1;

		if (*p == '\0' || strlen(p) > 3)
			return -1;
		prefix = 0;
		for (i = 0; p[i] != '\0'; i++) {
			if (p[i] < '0' || p[i] > '9')
				return -1;
			prefix = prefix * 10 + (p[i] - '0');
		}
		if (prefix > max)
			return -1;
	} else
		prefix = max;
	c.prefix = prefix;

	/* "::ffff:10.0.0.0/104" is the IPv4 block 10.0.0.0/8. */
	if (c.family == AF_INET6 && c.prefix >= 96 &&
	    memcmp(c.addr, v4mapped, sizeof(v4mapped)) == 0) {
		uint8_t a4[4];

		memcpy(a4, c.addr + 12, 4);
		memset(c.addr, 0, sizeof(c.addr));
		memcpy(c.addr, a4, 4);
		c.family = AF_INET;
		c.prefix -= 96;
	}
	if (mask_host_bits(&c) && host_bits != NULL)
		*host_bits = 1;
	*out = c;
	return 0;
}

int
cidr_parse(const char *s, struct cidr *out)
{
	struct cidr c;
	int dirty;

	if (cidr_parse_lenient(s, &c, &dirty) != 0 || dirty)
		return -1;
	*out = c;
	return 0;
}

int
cidr_format(const struct cidr *c, char *out, size_t outlen)
{
	char a[INET6_ADDRSTRLEN];

	if (c == NULL || inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
		return -1;
	return xsnprintf(out, outlen, "%s/%d", a, c->prefix) < 0 ? -1 : 0;
}

int
cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	const uint8_t *a;
	int family, full, rest;

	if (c == NULL || sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		a = (const uint8_t *)
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		family = AF_INET6;
		if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0) {
			family = AF_INET;	/* as sshd does */
			a += 12;
		}
	} else
		return 0;
	if (family != c->family)
		return 0;
	full = c->prefix / 8;
	rest = c->prefix % 8;
	if (memcmp(a, c->addr, (size_t)full) != 0)
		return 0;
	if (rest != 0) {
		uint8_t m = (uint8_t)(0xff << (8 - rest));

		if ((a[full] & m) != c->addr[full])
			return 0;
	}
	return 1;
}

int
policy_addr_allowed(const struct partner *p, const struct sockaddr *sa)
{
	size_t i;

	if (p == NULL || sa == NULL)
		return 0;		/* fail closed */
	if (p->nallow_from == 0)
		return 1;
	for (i = 0; i < p->nallow_from; i++)
		if (cidr_match(&p->allow_from[i], sa))
			return 1;
	return 0;
}

/* ---- object keys --------------------------------------------------------- */

#define OBJKEY_MAX	1024	/* S3's limit on a key, in bytes */

enum ph { PH_PARTNER, PH_PATH, PH_YYYY, PH_MM, PH_DD, PH_FILENAME, PH_SHA256 };

static const struct {
	const char	*name;
	enum ph		 ph;
} placeholders[] = {
	{ "partner",	PH_PARTNER },
	{ "path",	PH_PATH },
	{ "yyyy",	PH_YYYY },
	{ "mm",		PH_MM },
	{ "dd",		PH_DD },
	{ "filename",	PH_FILENAME },
	{ "sha256",	PH_SHA256 },
};

/* The placeholder starting at t ('{'); its length including braces in *len. */
static int
placeholder(const char *t, size_t *len)
{
	const char *close = strchr(t + 1, '}');
	size_t i, n;

	if (close == NULL)
		return -1;
	n = (size_t)(close - (t + 1));
	for (i = 0; i < sizeof(placeholders) / sizeof(placeholders[0]); i++)
		if (strlen(placeholders[i].name) == n &&
		    memcmp(placeholders[i].name, t + 1, n) == 0) {
			*len = n + 2;
			return (int)placeholders[i].ph;
		}
	return -2;
}

int
objkey_check(const char *tmpl, const char **why)
{
	const char *t;
	size_t len;
	int ph, unique = 0;
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	if (tmpl == NULL || tmpl[0] == '\0') {
		*why = "is empty; use e.g. {partner}/{path}";
		return -1;
	}
	if (tmpl[0] == '/') {
		*why = "must not start with '/' (S3 keys have no leading slash)";
		return -1;
	}
	for (t = tmpl; *t != '\0'; t++) {
		if ((unsigned char)*t < 0x20 || *t == 0x7f) {
			*why = "contains a control character";
			return -1;
		}
		if (*t == '}') {
			*why = "has a '}' without a matching '{'";
			return -1;
		}
		if (*t != '{')
			continue;
		ph = placeholder(t, &len);
		if (ph == -1) {
			*why = "has a '{' without a matching '}'";
			return -1;
		}
		if (ph < 0) {
			*why = "has an unknown placeholder (known: {partner} "
			    "{path} {yyyy} {mm} {dd} {filename} {sha256})";
			return -1;
		}
		if (ph == PH_PATH || ph == PH_FILENAME || ph == PH_SHA256)
			unique = 1;
		t += len - 1;
	}
	if (!unique) {
		*why = "must contain {path}, {filename} or {sha256}, otherwise "
		    "every upload gets the same key";
		return -1;
	}
	return 0;
}

/* A key S3 and our uploader can hold without surprises. */
static int
objkey_valid(const char *k)
{
	const char *seg = k, *p;
	size_t n = strlen(k);

	if (n == 0 || n > OBJKEY_MAX || k[0] == '/' || k[n - 1] == '/')
		return -1;
	for (p = k;; p++) {
		if (*p != '\0' && (unsigned char)*p < 0x20)
			return -1;
		if (*p == 0x7f)
			return -1;
		if (*p == '/' || *p == '\0') {
			size_t sl = (size_t)(p - seg);

			if (sl == 0 || (sl == 1 && seg[0] == '.') ||
			    (sl == 2 && seg[0] == '.' && seg[1] == '.'))
				return -1;
			if (*p == '\0')
				break;
			seg = p + 1;
		}
	}
	return 0;
}

int
objkey_expand(const char *prefix, const char *tmpl,
    const struct objkey_vars *v, char *out, size_t outlen)
{
	char num[8];
	const char *t, *val, *slash;
	size_t len, o, vl;
	struct tm tm;
	time_t secs;
	int ph;

	if (tmpl == NULL || v == NULL || out == NULL || outlen == 0)
		return -1;
	if (prefix == NULL)
		prefix = "";
	if ((o = xstrlcpy(out, prefix, outlen)) >= outlen)
		goto fail;
	secs = (time_t)(v->received_ms >= 0 ? v->received_ms / 1000 :
	    -((-v->received_ms + 999) / 1000));
	if (gmtime_r(&secs, &tm) == NULL)
		goto fail;

	for (t = tmpl; *t != '\0'; t++) {
		if (*t == '}')
			goto fail;
		if (*t != '{') {
			if (o + 1 >= outlen)
				goto fail;
			out[o++] = *t;
			continue;
		}
		if ((ph = placeholder(t, &len)) < 0)
			goto fail;
		t += len - 1;
		val = NULL;
		switch ((enum ph)ph) {
		case PH_PARTNER:
			val = v->partner;
			break;
		case PH_PATH:
			val = v->path;
			break;
		case PH_FILENAME:
			if ((val = v->path) != NULL &&
			    (slash = strrchr(val, '/')) != NULL)
				val = slash + 1;
			break;
		case PH_SHA256:
			val = v->sha256;
			if (val != NULL && (strlen(val) != 64 ||
			    strspn(val, "0123456789abcdef") != 64))
				goto fail;
			break;
		case PH_YYYY:
			if (xsnprintf(num, sizeof(num), "%04d",
			    tm.tm_year + 1900) < 0)
				goto fail;
			val = num;
			break;
		case PH_MM:
			(void)xsnprintf(num, sizeof(num), "%02d", tm.tm_mon + 1);
			val = num;
			break;
		case PH_DD:
			(void)xsnprintf(num, sizeof(num), "%02d", tm.tm_mday);
			val = num;
			break;
		}
		if (val == NULL || val[0] == '\0')
			goto fail;
		vl = strlen(val);
		if (o + vl >= outlen)
			goto fail;
		memcpy(out + o, val, vl);
		o += vl;
	}
	out[o] = '\0';
	if (objkey_valid(out) != 0)
		goto fail;
	return 0;
fail:
	out[0] = '\0';
	return -1;
}
