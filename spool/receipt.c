#include "spool/receipt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include <jansson.h>

#include "common/util.h"

char *
receipt_encode(const struct file_rec *r)
{
	json_t *o;
	char *text;

	o = json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:I,s:I,s:I}",
	    "v", 1, "fid", r->fid, "partner", r->partner, "path", r->path,
	    "remote", r->remote, "session", r->session,
	    "size", (json_int_t)r->size, "sha256", r->sha256,
	    "received_ms", (json_int_t)r->received_ms,
	    "landing_dev", (json_int_t)r->landing_dev,
	    "landing_ino", (json_int_t)r->landing_ino);
	if (o == NULL)
		return NULL;
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}

json_t *
receipt_record(const struct file_rec *r)
{
	char at[40];

	iso8601_ms(r->received_ms, at, sizeof(at));
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:I,s:s}",
	    "session", r->session, "remote", r->remote, "partner", r->partner,
	    "fid", r->fid, "path", r->path, "size", (json_int_t)r->size,
	    "sha256", r->sha256, "id", (json_int_t)r->id, "received_at", at);
}

static int
copy_str(json_t *o, const char *key, char *dst, size_t len, int required)
{
	json_t *v = json_object_get(o, key);
	const char *s;

	if (v == NULL && !required) {
		dst[0] = '\0';
		return 0;
	}
	if (!json_is_string(v) || (s = json_string_value(v)) == NULL ||
	    (required && s[0] == '\0') || strlen(s) >= len)
		return -1;
	xstrlcpy(dst, s, len);
	return 0;
}

static int64_t
get_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

int
receipt_decode(const char *text, size_t len, struct file_rec *r)
{
	json_error_t err;
	json_t *o;
	size_t i;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if ((o = json_loadb(text, len, 0, &err)) == NULL)
		return -1;
	if (!json_is_object(o) || get_int(o, "v") != 1 ||
	    copy_str(o, "fid", r->fid, sizeof(r->fid), 1) == -1 ||
	    copy_str(o, "partner", r->partner, sizeof(r->partner), 1) == -1 ||
	    copy_str(o, "path", r->path, sizeof(r->path), 1) == -1 ||
	    copy_str(o, "remote", r->remote, sizeof(r->remote), 0) == -1 ||
	    copy_str(o, "session", r->session, sizeof(r->session), 0) == -1 ||
	    copy_str(o, "sha256", r->sha256, sizeof(r->sha256), 1) == -1)
		goto out;
	if (strlen(r->sha256) != 64)
		goto out;
	for (i = 0; i < 64; i++)
		if (!((r->sha256[i] >= '0' && r->sha256[i] <= '9') ||
		    (r->sha256[i] >= 'a' && r->sha256[i] <= 'f')))
			goto out;
	if ((r->size = get_int(o, "size")) < 0 ||
	    (r->received_ms = get_int(o, "received_ms")) < 0)
		goto out;
	r->landing_dev = get_int(o, "landing_dev");
	r->landing_ino = get_int(o, "landing_ino");
	if (r->landing_dev < 0 || r->landing_ino < 0)
		r->landing_dev = r->landing_ino = 0;
	rc = 0;
out:
	json_decref(o);
	if (rc == -1)
		memset(r, 0, sizeof(*r));
	return rc;
}

static int
sha256_hex_ok(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

int
receipt_check(const struct file_rec *r, char *why, size_t whylen)
{
	const char *bad = NULL;

	if (!spool_fid_ok(r->fid))
		bad = "its fid is not 32 lower-case hex digits";
	else if (!spool_partner_ok(r->partner))
		bad = "its partner is not a valid partner name";
	else if (!spool_relpath_ok(r->path))
		bad = "its path is not a normalised path inside the partner's "
		    "directory";
	else if (r->size < 0)
		bad = "its size is negative";
	else if (!sha256_hex_ok(r->sha256))
		bad = "its sha256 is not 64 lower-case hex digits";
	else if (r->landing_ino <= 0)
		bad = "it names no landing inode";
	if (bad == NULL)
		return 0;
	xstrlcpy(why, bad, whylen);
	return -1;
}

int
receipt_write(int fd, const struct file_rec *r)
{
	char *text;
	size_t len;
	int rc, err;

	if ((text = receipt_encode(r)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if ((len = strlen(text)) > RECEIPT_MAX) {
		free(text);
		errno = E2BIG;
		return -1;
	}
	rc = fsetxattr(fd, RECEIPT_XATTR, text, len, 0);
	err = errno;
	free(text);
	errno = err;
	return rc == 0 ? 0 : -1;
}

int
receipt_read(int fd, struct file_rec *r)
{
	char *buf;
	ssize_t n;
	int rc;

	if ((buf = malloc(RECEIPT_MAX + 1)) == NULL)
		return -1;
	n = fgetxattr(fd, RECEIPT_XATTR, buf, RECEIPT_MAX);
	if (n == -1) {
		rc = (errno == ENODATA || errno == ENOTSUP) ? 0 : -1;
		free(buf);
		return rc;
	}
	rc = receipt_decode(buf, (size_t)n, r) == 0 ? 1 : -1;
	free(buf);
	return rc;
}

int
receipt_present(int fd)
{
	if (fgetxattr(fd, RECEIPT_XATTR, NULL, 0) >= 0)
		return 1;
	return (errno == ENODATA || errno == ENOTSUP) ? 0 : -1;
}

int
receipt_remove(int fd)
{
	if (fremovexattr(fd, RECEIPT_XATTR) == 0 || errno == ENODATA)
		return 0;
	return -1;
}
