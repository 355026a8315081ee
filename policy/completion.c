#include "policy/completion.h"

#include <ctype.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static const char *default_temp[] = { "*.part", "*.filepart", "*.tmp" };

static const char *
base_of(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

int
completion_is_temp(const struct completion_config *c, const char *path)
{
	const char *base = base_of(path);
	size_t i;

	if (c == NULL) {
		for (i = 0; i < sizeof(default_temp) / sizeof(default_temp[0]); i++)
			if (fnmatch(default_temp[i], base, 0) == 0)
				return 1;
		return 0;
	}
	for (i = 0; i < c->ntemp_patterns; i++)
		if (fnmatch(c->temp_patterns[i], base, 0) == 0)
			return 1;
	return 0;
}

/* 1 and the stem in data if path ends in suffix (with something before it). */
static int
strip_suffix(const char *path, const char *suffix, char *data, size_t datalen)
{
	size_t pl = strlen(path), sl = strlen(suffix);
	const char *base = base_of(path);

	if (sl == 0 || pl <= sl || strcmp(path + pl - sl, suffix) != 0)
		return 0;
	if ((size_t)(path + pl - base) <= sl)
		return 0;	/* the whole basename is the suffix */
	if (pl - sl >= datalen)
		return 0;
	memcpy(data, path, pl - sl);
	data[pl - sl] = '\0';
	return 1;
}

enum sidecar_kind
completion_sidecar(const struct completion_config *c,
    const struct signature_config *sig, const char *path, char *data,
    size_t datalen)
{
	char suffix[32];

	if (datalen > 0)
		data[0] = '\0';
	if (c != NULL && c->manifest != NULL &&
	    fnmatch(c->manifest, base_of(path), 0) == 0)
		return SIDECAR_MANIFEST;
	if (c != NULL && c->marker != NULL && c->marker[0] != '\0' &&
	    strip_suffix(path, c->marker, data, datalen))
		return SIDECAR_MARKER;
	if (c != NULL && c->checksum != NULL && checksum_hexlen(c->checksum) &&
	    xsnprintf(suffix, sizeof(suffix), ".%s", c->checksum) > 0 &&
	    strip_suffix(path, suffix, data, datalen))
		return SIDECAR_CHECKSUM;
	if (sig != NULL && sig->mode == SIG_DETACHED &&
	    (strip_suffix(path, ".sig", data, datalen) ||
	    strip_suffix(path, ".asc", data, datalen)))
		return SIDECAR_SIGNATURE;
	if (datalen > 0)
		data[0] = '\0';
	return SIDECAR_NONE;
}

const char *
sidecar_kind_name(enum sidecar_kind k)
{
	switch (k) {
	case SIDECAR_MARKER:
		return "marker";
	case SIDECAR_CHECKSUM:
		return "checksum";
	case SIDECAR_SIGNATURE:
		return "signature";
	case SIDECAR_MANIFEST:
		return "manifest";
	default:
		return "data";
	}
}

size_t
checksum_hexlen(const char *alg)
{
	if (alg == NULL)
		return 0;
	if (strcmp(alg, "sha256") == 0)
		return 64;
	if (strcmp(alg, "md5") == 0)
		return 32;
	return 0;
}

static int
is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static void
lower_copy(char *dst, const char *src, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[n] = '\0';
}

/* One line (no newline) of a checksum file. 1 parsed, 0 blank, -1 bad. */
static int
checksum_line(const char *l, size_t n, size_t hexlen, const char **hex,
    const char **name, size_t *namelen)
{
	const char *p, *q;

	while (n > 0 && (l[n - 1] == '\r' || l[n - 1] == ' ' ||
	    l[n - 1] == '\t'))
		n--;
	while (n > 0 && (*l == ' ' || *l == '\t')) {
		l++;
		n--;
	}
	if (n == 0)
		return 0;
	if (*l == '\\') {	/* escaped name follows */
		l++;
		n--;
	}
	/* BSD tag: "SHA256 (NAME) = HEX" or "MD5 (NAME) = HEX" */
	if ((p = memchr(l, '(', n)) != NULL && n > hexlen + 4 &&
	    memcmp(l + n - hexlen - 4, ") = ", 4) == 0 &&
	    is_hex(l + n - hexlen, hexlen) && p < l + n - hexlen - 4) {
		*hex = l + n - hexlen;
		*name = p + 1;
		*namelen = (size_t)((l + n - hexlen - 4) - (p + 1));
		return 1;
	}
	if (n < hexlen || !is_hex(l, hexlen))
		return -1;
	*hex = l;
	if (n == hexlen) {
		*name = NULL;
		*namelen = 0;
		return 1;
	}
	q = l + hexlen;
	if (*q != ' ' && *q != '\t')
		return -1;
	while (q < l + n && (*q == ' ' || *q == '\t'))
		q++;
	if (q < l + n && *q == '*')	/* binary mode */
		q++;
	if (q >= l + n)
		return -1;
	*name = q;
	*namelen = (size_t)(l + n - q);
	return 1;
}

static int
name_is(const char *listed, size_t len, const char *base)
{
	const char *b = listed, *s;
	size_t bl = strlen(base);

	for (s = listed; s < listed + len; s++)
		if (*s == '/')
			b = s + 1;
	len -= (size_t)(b - listed);
	return len == bl && memcmp(b, base, bl) == 0;
}

int
checksum_find(const char *text, size_t len, const char *name, size_t hexlen,
    char *hex, size_t hexsz, char *why, size_t whylen)
{
	const char *l = text, *end = text + len, *nl, *h, *nm, *only = NULL;
	const char *base = base_of(name);
	size_t nmlen, lineno = 0, entries = 0;
	int rc;

	if (hexlen == 0 || hexsz < hexlen + 1) {
		xsnprintf(why, whylen, "unknown checksum algorithm");
		return -1;
	}
	while (l < end) {
		lineno++;
		if ((nl = memchr(l, '\n', (size_t)(end - l))) == NULL)
			nl = end;
		rc = checksum_line(l, (size_t)(nl - l), hexlen, &h, &nm, &nmlen);
		if (rc == -1) {
			xsnprintf(why, whylen, "line %zu is not \"<%zu hex "
			    "digits>  NAME\"", lineno, hexlen);
			return -1;
		}
		if (rc == 1) {
			entries++;
			if (entries == 1)
				only = h;
			if (nm != NULL && name_is(nm, nmlen, base)) {
				lower_copy(hex, h, hexlen);
				return 1;
			}
		}
		l = nl + 1;
	}
	if (entries == 1) {
		lower_copy(hex, only, hexlen);
		return 1;
	}
	if (entries == 0) {
		xsnprintf(why, whylen, "the checksum file is empty");
		return -1;
	}
	xsnprintf(why, whylen, "the checksum file does not list %s", base);
	return 0;
}

void
manifest_free(struct manifest *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->n; i++)
		free(m->e[i].name);
	free(m->e);
	m->e = NULL;
	m->n = 0;
}

/* "./a//b" -> "a/b"; -1 for "..", absolute paths or empty names. */
static int
norm_rel(const char *in, size_t n, char *out, size_t outlen)
{
	size_t o = 0, i = 0, seg;

	if (n > 0 && in[0] == '/')
		return -1;
	while (i < n) {
		while (i < n && in[i] == '/')
			i++;
		seg = i;
		while (i < n && in[i] != '/')
			i++;
		if (i == seg)
			break;
		if (i - seg == 1 && in[seg] == '.')
			continue;
		if (i - seg == 2 && in[seg] == '.' && in[seg + 1] == '.')
			return -1;
		if (o + (i - seg) + 2 > outlen)
			return -1;
		if (o > 0)
			out[o++] = '/';
		memcpy(out + o, in + seg, i - seg);
		o += i - seg;
	}
	if (o == 0)
		return -1;
	out[o] = '\0';
	return 0;
}

int
manifest_parse(const char *text, size_t len, struct manifest *m, char *why,
    size_t whylen)
{
	const char *l = text, *end = text + len, *nl, *p, *q, *e, *sh;
	struct manifest_entry *ne;
	char num[24], name[4096];
	size_t lineno = 0, cap = 0;
	int64_t size;

	memset(m, 0, sizeof(*m));
	while (l < end) {
		lineno++;
		if ((nl = memchr(l, '\n', (size_t)(end - l))) == NULL)
			nl = end;
		e = nl;
		while (e > l && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		p = l;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		l = nl + 1;
		if (p == e || *p == '#')
			continue;
		if (memchr(p, '\0', (size_t)(e - p)) != NULL)
			goto bad;
		/* SHA256 */
		sh = p;
		if (e - p < 66 || !is_hex(p, 64) || (p[64] != ' ' &&
		    p[64] != '\t'))
			goto bad;
		q = p + 64;
		while (q < e && (*q == ' ' || *q == '\t'))
			q++;
		/* SIZE */
		p = q;
		while (q < e && isdigit((unsigned char)*q))
			q++;
		if (q == p || (size_t)(q - p) >= sizeof(num) || q == e ||
		    (*q != ' ' && *q != '\t'))
			goto bad;
		memcpy(num, p, (size_t)(q - p));
		num[q - p] = '\0';
		if (parse_int64(num, 0, INT64_MAX, &size) == -1)
			goto bad;
		while (q < e && (*q == ' ' || *q == '\t'))
			q++;
		/* NAME */
		if (q == e || norm_rel(q, (size_t)(e - q), name,
		    sizeof(name)) == -1)
			goto bad;
		if (m->n == cap) {
			cap = cap ? cap * 2 : 16;
			if (cap > 100000) {
				xsnprintf(why, whylen, "line %zu: more than "
				    "100000 entries", lineno);
				goto fail;
			}
			if ((ne = reallocarray(m->e, cap, sizeof(*ne))) == NULL) {
				xsnprintf(why, whylen, "out of memory");
				goto fail;
			}
			m->e = ne;
		}
		ne = &m->e[m->n];
		if ((ne->name = strdup(name)) == NULL) {
			xsnprintf(why, whylen, "out of memory");
			goto fail;
		}
		ne->size = size;
		lower_copy(ne->sha256, sh, 64);
		m->n++;
		continue;
	}
	if (m->n == 0) {
		xsnprintf(why, whylen, "the manifest lists no files");
		goto fail;
	}
	return 0;
bad:
	xsnprintf(why, whylen, "line %zu is not \"SHA256 SIZE NAME\" (64 hex "
	    "digits, a size in bytes, a relative name without \"..\")", lineno);
fail:
	manifest_free(m);
	return -1;
}

int
manifest_batch_complete(const struct manifest *m, const char *mpath,
    const struct batch_file *f, size_t n, size_t *match, char *why,
    size_t whylen)
{
	char dir[4096], want[8192];
	const char *slash = strrchr(mpath, '/');
	size_t i, j, found;

	if (slash != NULL) {
		if ((size_t)(slash - mpath) >= sizeof(dir))
			return -1;
		memcpy(dir, mpath, (size_t)(slash - mpath));
		dir[slash - mpath] = '\0';
	} else
		dir[0] = '\0';
	for (i = 0; i < m->n; i++) {
		if (xsnprintf(want, sizeof(want), "%s%s%s", dir,
		    dir[0] ? "/" : "", m->e[i].name) < 0)
			return -1;
		found = n;
		for (j = 0; j < n; j++) {
			if (strcmp(f[j].path, want) != 0)
				continue;
			if (f[j].size == m->e[i].size &&
			    strcasecmp(f[j].sha256, m->e[i].sha256) == 0) {
				found = j;
				break;
			}
			found = n + 1;	/* present, but differs */
		}
		if (found == n) {
			xsnprintf(why, whylen, "%s has not arrived", want);
			return 0;
		}
		if (found == n + 1) {
			xsnprintf(why, whylen, "%s differs from the manifest "
			    "(expected %" PRId64 " bytes, sha256 %s)", want,
			    m->e[i].size, m->e[i].sha256);
			return 0;
		}
		match[i] = found;
	}
	return 1;
}

void
duration_text(int64_t s, char *buf, size_t len)
{
	if (s > 0 && s % 86400 == 0)
		xsnprintf(buf, len, "%" PRId64 "d", s / 86400);
	else if (s > 0 && s % 3600 == 0)
		xsnprintf(buf, len, "%" PRId64 "h", s / 3600);
	else if (s > 0 && s % 60 == 0)
		xsnprintf(buf, len, "%" PRId64 "m", s / 60);
	else
		xsnprintf(buf, len, "%" PRId64 "s", s);
}
