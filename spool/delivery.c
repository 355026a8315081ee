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

#include <gpgme.h>

#include "common/log.h"
#include "common/util.h"
#include "spool/layout.h"
#include "spool/verify.h"

#define NAME_MAX_BYTES	255
#define SIGNED_MAX	(1 << 20)	/* a signed receipt: bytes */

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

/* --- signing ----------------------------------------------------------- */

struct delivery_signer {
	char		 home[PATH_MAX];
	gpgme_ctx_t	 ctx;
};

/* size, mtime and inode of the keyring: imported again when they change */
static void
keyring_stamp(const char *path, char *buf, size_t len)
{
	struct stat sb;

	if (stat(path, &sb) == -1)
		xsnprintf(buf, len, "%s -\n", path);
	else
		xsnprintf(buf, len, "%s %lld %lld.%09ld %llu\n", path,
		    (long long)sb.st_size, (long long)sb.st_mtim.tv_sec,
		    sb.st_mtim.tv_nsec, (unsigned long long)sb.st_ino);
}

static int
import_keyring(gpgme_ctx_t ctx, const char *path)
{
	gpgme_data_t d = NULL;
	gpgme_import_result_t ir;
	gpgme_error_t err;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("receipts.keyring %s: cannot read it", path);
		return -1;
	}
	if ((err = gpgme_data_new_from_fd(&d, fd)) != 0 ||
	    (err = gpgme_op_import(ctx, d)) != 0) {
		log_warnx("receipts.keyring %s: cannot import it: %s; export "
		    "it with gpg --export-secret-keys --armor FINGERPRINT",
		    path, gpgme_strerror(err));
		goto fail;
	}
	ir = gpgme_op_import_result(ctx);
	if (ir == NULL || ir->considered == 0 || ir->secret_read == 0) {
		log_warnx("receipts.keyring %s holds no OpenPGP secret key "
		    "(export it with gpg --export-secret-keys --armor; it must "
		    "have no passphrase)", path);
		goto fail;
	}
	rc = 0;
fail:
	gpgme_data_release(d);
	close(fd);
	return rc;
}

/* The home, made and (when the keyring changed) imported into. 0 or -1. */
static int
signer_home(const char *state_dir, const struct receipts_config *rc,
    struct delivery_signer *sg)
{
	static const char conf[] = "# written by sluice: never fetch keys\n"
	    "no-auto-key-retrieve\nauto-key-locate local\n"
	    "no-auto-key-import\n";
	char dir[PATH_MAX], stamp[PATH_MAX], want[PATH_MAX + 80];
	char have[sizeof(want)], confpath[PATH_MAX];
	ssize_t n;
	int fd;

	if (spool_dir_path(state_dir, SPOOL_GNUPG, NULL, dir, sizeof(dir)) ==
	    -1 || spool_dir_path(state_dir, SPOOL_SIGNING, NULL, sg->home,
	    sizeof(sg->home)) == -1 || xsnprintf(stamp, sizeof(stamp),
	    "%s/sluice-keys.stamp", sg->home) < 0 || xsnprintf(confpath,
	    sizeof(confpath), "%s/gpg.conf", sg->home) < 0)
		return -1;
	if ((fd = spool_mkdir(dir, 0700)) == -1)
		return -1;
	close(fd);
	if ((fd = spool_mkdir(sg->home, 0700)) == -1)
		return -1;
	close(fd);
	keyring_stamp(rc->keyring, want, sizeof(want));
	have[0] = '\0';
	if ((fd = open(stamp, O_RDONLY | O_CLOEXEC)) != -1) {
		n = read(fd, have, sizeof(have) - 1);
		have[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	if (strcmp(want, have) == 0)
		return 0;
	if (write_file_atomic(confpath, conf, sizeof(conf) - 1, 0600) == -1) {
		log_warn("cannot write %s", confpath);
		return -1;
	}
	if (import_keyring(sg->ctx, rc->keyring) == -1)
		return -1;
	if (write_file_atomic(stamp, want, strlen(want), 0600) == -1) {
		log_warn("cannot write %s", stamp);
		return -1;
	}
	log_info("receipts: signing key imported from %s into %s",
	    rc->keyring, sg->home);
	return 0;
}

/* The secret key rc->sign_with, a primary key that can sign, made the
 * context's only signer. 0 or -1 (logged). */
static int
signer_key(const struct receipts_config *rc, struct delivery_signer *sg)
{
	gpgme_key_t key = NULL;
	gpgme_error_t err;
	int rv = -1;

	if ((err = gpgme_get_key(sg->ctx, rc->sign_with, &key, 1)) != 0 ||
	    key == NULL) {
		log_warnx("receipts.sign_with %s: no such secret key in "
		    "receipts.keyring %s (%s); export that key's secret part "
		    "with gpg --export-secret-keys --armor %s", rc->sign_with,
		    rc->keyring, gpgme_strerror(err), rc->sign_with);
		goto fail;
	}
	if (key->subkeys == NULL || strcasecmp(key->subkeys->fpr,
	    rc->sign_with) != 0) {
		log_warnx("receipts.sign_with %s is a subkey; give the primary "
		    "key's fingerprint %s", rc->sign_with,
		    key->subkeys ? key->subkeys->fpr : "?");
		goto fail;
	}
	if (!key->can_sign || key->revoked || key->expired || key->disabled) {
		log_warnx("receipts.sign_with %s cannot sign (revoked, expired, "
		    "disabled or without a signing subkey); make or import a "
		    "key that can", rc->sign_with);
		goto fail;
	}
	gpgme_signers_clear(sg->ctx);
	if ((err = gpgme_signers_add(sg->ctx, key)) != 0) {
		log_warnx("receipts.sign_with %s: %s", rc->sign_with,
		    gpgme_strerror(err));
		goto fail;
	}
	rv = 0;
fail:
	gpgme_key_unref(key);
	return rv;
}

struct delivery_signer *
delivery_signer_open(const char *state_dir, const struct receipts_config *rc)
{
	struct delivery_signer *sg;
	gpgme_error_t err;

	if (rc->sign_with == NULL || rc->keyring == NULL || verify_init() == -1)
		return NULL;
	if ((sg = calloc(1, sizeof(*sg))) == NULL)
		return NULL;
	if (spool_dir_path(state_dir, SPOOL_SIGNING, NULL, sg->home,
	    sizeof(sg->home)) == -1)
		goto fail;
	if ((err = gpgme_new(&sg->ctx)) != 0 ||
	    (err = gpgme_set_protocol(sg->ctx, GPGME_PROTOCOL_OpenPGP)) != 0 ||
	    (err = gpgme_ctx_set_engine_info(sg->ctx, GPGME_PROTOCOL_OpenPGP,
	    NULL, sg->home)) != 0 ||
	    (err = gpgme_set_pinentry_mode(sg->ctx,
	    GPGME_PINENTRY_MODE_LOOPBACK)) != 0) {
		log_warnx("receipts: gpgme: cannot set up a context for %s: %s",
		    sg->home, gpgme_strerror(err));
		goto fail;
	}
	gpgme_set_offline(sg->ctx, 1);
	gpgme_set_armor(sg->ctx, 1);
	gpgme_set_textmode(sg->ctx, 1);
	if (signer_home(state_dir, rc, sg) == -1 || signer_key(rc, sg) == -1)
		goto fail;
	return sg;
fail:
	delivery_signer_close(sg);
	return NULL;
}

int
delivery_sign(struct delivery_signer *sg, const char *text, char **out,
    size_t *outlen)
{
	gpgme_data_t in = NULL, res = NULL;
	gpgme_sign_result_t sr;
	gpgme_error_t err;
	char *buf;
	size_t n;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	if ((err = gpgme_data_new_from_mem(&in, text, strlen(text), 0)) != 0 ||
	    (err = gpgme_data_new(&res)) != 0 ||
	    (err = gpgme_op_sign(sg->ctx, in, res, GPGME_SIG_MODE_CLEAR)) !=
	    0) {
		log_warnx("receipts: cannot sign: %s", gpgme_strerror(err));
		goto fail;
	}
	sr = gpgme_op_sign_result(sg->ctx);
	if (sr == NULL || sr->invalid_signers != NULL || sr->signatures ==
	    NULL) {
		log_warnx("receipts: gpg made no signature (the signing key is "
		    "unusable; check receipts.sign_with)");
		goto fail;
	}
	if ((buf = gpgme_data_release_and_get_mem(res, &n)) == NULL)
		goto fail;
	res = NULL;
	if (n > SIGNED_MAX || (*out = malloc(n + 1)) == NULL) {
		gpgme_free(buf);
		goto fail;
	}
	memcpy(*out, buf, n);
	(*out)[n] = '\0';
	*outlen = n;
	gpgme_free(buf);
	rc = 0;
fail:
	gpgme_data_release(in);
	gpgme_data_release(res);
	return rc;
}

void
delivery_signer_close(struct delivery_signer *sg)
{
	if (sg == NULL)
		return;
	if (sg->ctx != NULL)
		gpgme_release(sg->ctx);
	if (sg->home[0] != '\0')
		verify_stop_agent(sg->home);
	free(sg);
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
