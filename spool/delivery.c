/*
 * delivery.c - delivery receipts to partners: the JSON, its name, its
 * OpenPGP clear signature, and their expiry (spool/delivery.h).
 */
#include "spool/delivery.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "spool/layout.h"
#include "spool/pgpsign.h"

#define NAME_MAX_BYTES	255

const char *
delivery_verdict(const struct file_rec *r)
{
	switch (r->state) {
	case FS_STORED:
	case FS_REMOVED:
	case FS_ARCHIVED:
		return "stored";
	case FS_REJECTED:
		return "rejected";
	default:
		return NULL;
	}
}

/* s, or JSON null when s is NULL or "". */
static json_t *
str_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *
time_or_null(int64_t ms)
{
	char buf[40];

	if (ms <= 0)
		return json_null();
	iso8601_ms(ms, buf, sizeof(buf));
	return json_string(buf);
}

json_t *
delivery_json(const struct delivery_info *d)
{
	const struct file_rec *r = d->r;
	const char *verdict;
	json_t *o;
	int stored;

	if ((verdict = delivery_verdict(r)) == NULL)
		return NULL;
	stored = strcmp(verdict, "stored") == 0;
	o = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,"
	    "s:o,s:o,s:o,s:o,s:s,s:o,s:o}",
	    "receipt", DELIVERY_FORMAT,
	    "partner", r->partner,
	    "path", r->path,
	    "size", (json_int_t)r->size,
	    "sha256", r->sha256,
	    "verdict", verdict,
	    "rule", str_or_null(d->rule),
	    "reason", stored ? json_null() : str_or_null(r->last_error),
	    "signer", str_or_null(d->signer),
	    "signed_at", str_or_null(d->signed_at),
	    "received_at", time_or_null(r->received_ms),
	    "stored_at", time_or_null(stored ? r->stored_ms : 0),
	    "bucket", str_or_null(stored ? r->bucket : NULL),
	    "key", str_or_null(stored ? r->object_key : NULL),
	    /* moto answers "null" for an unversioned bucket */
	    "version_id", str_or_null(stored && strcmp(r->version_id,
	    "null") != 0 ? r->version_id : NULL),
	    "etag", str_or_null(stored ? r->etag : NULL),
	    "fid", r->fid,
	    "gateway", str_or_null(d->gateway),
	    "created_at", time_or_null(d->created_ms));
	return o;
}

char *
delivery_text(const struct delivery_info *d)
{
	json_t *o;
	char *s, *t;
	size_t n;

	if ((o = delivery_json(d)) == NULL)
		return NULL;
	s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (s == NULL)
		return NULL;
	n = strlen(s);
	if ((t = realloc(s, n + 2)) == NULL) {
		free(s);
		return NULL;
	}
	t[n] = '\n';
	t[n + 1] = '\0';
	return t;
}

int
delivery_name(const char *fid, const char *path, int is_signed, char *out,
    size_t outlen)
{
	const char *base, *ext = is_signed ? ".json.asc" : ".json";
	size_t room, n;

	if (!spool_fid_ok(fid) || !spool_relpath_ok(path))
		return -1;
	base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	/* "<fid>-" and the extension take this much of NAME_MAX */
	room = NAME_MAX_BYTES - strlen(fid) - 1 - strlen(ext);
	n = strlen(base);
	if (n > room) {
		n = room;
		/* never cut a UTF-8 sequence: back up to a lead byte */
		while (n > 0 && ((unsigned char)base[n] & 0xc0) == 0x80)
			n--;
	}
	if (xsnprintf(out, outlen, "%s-%.*s%s", fid, (int)n, base, ext) < 0)
		return -1;
	return 0;
}

int
delivery_store_key(const struct config *cfg, const struct file_rec *r,
    int is_signed, char *out, size_t outlen)
{
	const char *verdict = delivery_verdict(r), *prefix;
	char name[256];

	if (verdict == NULL)
		return -1;
	if (strcmp(verdict, "stored") == 0) {
		if (r->object_key[0] == '\0' || xsnprintf(out, outlen,
		    "%s.receipt.json%s", r->object_key, is_signed ? ".asc" :
		    "") < 0)
			return -1;
		return 0;
	}
	prefix = cfg->store.kind == STORE_S3 && cfg->store.prefix != NULL ?
	    cfg->store.prefix : "";
	if (!spool_partner_ok(r->partner) || delivery_name(r->fid, r->path,
	    is_signed, name, sizeof(name)) == -1 || xsnprintf(out, outlen,
	    "%s%s/%s/%s", prefix, r->partner, cfg->receipts.dir != NULL ?
	    cfg->receipts.dir : "receipts", name) < 0)
		return -1;
	return 0;
}

/* --- signing (spool/pgpsign.h) ----------------------------------------- */

struct delivery_signer *
delivery_signer_open(const char *state_dir, const struct receipts_config *rc)
{
	struct pgp_signer_conf sc;

	sc.what = "receipts";
	sc.home = SPOOL_SIGNING;
	sc.sign_with = rc->sign_with;
	sc.keyring = rc->keyring;
	return (struct delivery_signer *)pgp_signer_open(state_dir, &sc);
}

int
delivery_sign(struct delivery_signer *sg, const char *text, char **out,
    size_t *outlen)
{
	return pgp_sign_clear((struct pgp_signer *)sg, text, out, outlen);
}

void
delivery_signer_close(struct delivery_signer *sg)
{
	pgp_signer_close((struct pgp_signer *)sg);
}

/* --- expiry ------------------------------------------------------------ */

static int
is_receipt_name(const char *name)
{
	size_t n = strlen(name);

	return (n > 5 && strcmp(name + n - 5, ".json") == 0) ||
	    (n > 9 && strcmp(name + n - 9, ".json.asc") == 0);
}

int
delivery_expire(int dirfd, int64_t before_s)
{
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int fd, n = 0;

	if ((fd = dup(dirfd)) == -1)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (!is_receipt_name(de->d_name) || fstatat(dirfd, de->d_name,
		    &sb, AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(sb.st_mode) ||
		    (int64_t)sb.st_mtime >= before_s)
			continue;
		if (unlinkat(dirfd, de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}
