/*
 * path.c - normalising hostile SFTP client paths (see path.h).
 *
 * Two passes over the wire bytes: the first rejects anything that is not a
 * plain UTF-8 name (NUL, control characters, backslashes, malformed or
 * overlong UTF-8, components over 255 bytes); the second walks the
 * components from the right, counting ".." and emitting only the survivors,
 * so no intermediate path is ever built (a long "a/b/../.." detour cannot
 * overflow anything) and every result byte is written exactly once.
 */
#include "policy/path.h"

#include <stdint.h>
#include <string.h>

#define PATH_MAX_RESULT	4095	/* Linux PATH_MAX less the NUL */
#define PATH_MAX_NAME	255	/* NAME_MAX */

/*
 * Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0 if it
 * is malformed: a stray continuation byte, a truncated sequence, an overlong
 * form, a surrogate or a code point above U+10FFFF. C0/C1 controls and DEL are
 * refused too, so names print safely in logs and listings.
 */
static size_t
utf8_char(const unsigned char *s, size_t n, int *ctrl)
{
	uint32_t cp;
	size_t len, i;

	*ctrl = 0;
	if (s[0] < 0x80) {
		if (s[0] < 0x20 || s[0] == 0x7f)
			*ctrl = 1;
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else
		return 0;		/* continuation byte, 0xc0/0xc1, 0xf5.. */
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	if (cp >= 0x80 && cp <= 0x9f)
		*ctrl = 1;		/* C1 controls */
	return len;
}

static int
validate(const char *in, size_t len)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, comp = 0, n;
	int ctrl;

	while (i < len) {
		if (s[i] == '/') {
			comp = 0;
			i++;
			continue;
		}
		if (s[i] == '\\')
			return PATH_INVALID;
		n = utf8_char(s + i, len - i, &ctrl);
		if (n == 0 || ctrl)
			return PATH_INVALID;	/* includes NUL inside len */
		comp += n;
		if (comp > PATH_MAX_NAME)
			return PATH_INVALID;
		i += n;
	}
	return 0;
}

int
path_normalize(const char *in, size_t len, int flags, char *out,
    size_t outlen)
{
	size_t cap, pos, end, start, clen, skip = 0, need;
	int rc, toolong = 0;

	if (in == NULL && len > 0)
		return PATH_INVALID;
	if ((rc = validate(in, len)) != 0)
		return rc;
	if (out == NULL || outlen == 0)
		return PATH_TOOLONG;

	cap = outlen - 1;
	if (cap > PATH_MAX_RESULT)
		cap = PATH_MAX_RESULT;
	/* The result is assembled right-aligned in out[0..cap), then moved. */
	pos = cap;
	end = len;
	while (end > 0) {
		start = end;
		while (start > 0 && in[start - 1] != '/')
			start--;
		clen = end - start;
		if (clen == 0 || (clen == 1 && in[start] == '.')) {
			/* empty or "." component: nothing */
		} else if (clen == 2 && in[start] == '.' && in[start + 1] == '.') {
			skip++;
		} else if (skip > 0) {
			skip--;
		} else if (!toolong) {
			need = clen + (pos < cap ? 1 : 0);
			if (need > pos)
				toolong = 1;
			else {
				if (pos < cap)
					out[--pos] = '/';
				pos -= clen;
				memcpy(out + pos, in + start, clen);
			}
		}
		end = start > 0 ? start - 1 : 0;
	}
	if (skip > 0 && !(flags & PATH_CLAMP))
		return PATH_ESCAPE;
	if (toolong)
		return PATH_TOOLONG;
	if (pos == cap) {
		if (outlen < 2)
			return PATH_TOOLONG;
		out[0] = '.';
		out[1] = '\0';
		return 0;
	}
	memmove(out, out + pos, cap - pos);
	out[cap - pos] = '\0';
	return 0;
}

int
path_to_client(const char *norm, char *out, size_t outlen)
{
	size_t n;

	if (norm == NULL || out == NULL || outlen == 0)
		return -1;
	if (norm[0] == '\0' || strcmp(norm, ".") == 0) {
		if (outlen < 2)
			return -1;
		out[0] = '/';
		out[1] = '\0';
		return 0;
	}
	n = strlen(norm);
	if (n + 2 > outlen)
		return -1;
	out[0] = '/';
	memcpy(out + 1, norm, n + 1);
	return 0;
}

int
path_under(const char *norm, const char *dir)
{
	size_t n;

	if (norm == NULL || dir == NULL || (n = strlen(dir)) == 0)
		return 0;
	return strncmp(norm, dir, n) == 0 && (norm[n] == '\0' ||
	    norm[n] == '/');
}
