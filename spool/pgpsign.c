/*
 * pgpsign.c - signing with the gateway's OpenPGP key (spool/pgpsign.h).
 */
#include "spool/pgpsign.h"

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
#include "spool/state.h"
#include "spool/verify.h"

#define SIGNED_MAX	(1 << 20)	/* a signature or signed text: bytes */

struct pgp_signer {
	char		 home[PATH_MAX];
	const char	*what;		/* static: "receipts" or "audit" */
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
import_keyring(gpgme_ctx_t ctx, const char *what, const char *path)
{
	gpgme_data_t d = NULL;
	gpgme_import_result_t ir;
	gpgme_error_t err;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("%s.keyring %s: cannot read it", what, path);
		return -1;
	}
	if ((err = gpgme_data_new_from_fd(&d, fd)) != 0 ||
	    (err = gpgme_op_import(ctx, d)) != 0) {
		log_warnx("%s.keyring %s: cannot import it: %s; export "
		    "it with gpg --export-secret-keys --armor FINGERPRINT",
		    what, path, gpgme_strerror(err));
		goto fail;
	}
	ir = gpgme_op_import_result(ctx);
	if (ir == NULL || ir->considered == 0 || ir->secret_read == 0) {
		log_warnx("%s.keyring %s holds no OpenPGP secret key "
		    "(export it with gpg --export-secret-keys --armor; it must "
		    "have no passphrase)", what, path);
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
signer_home(const char *state_dir, const struct pgp_signer_conf *sc,
    struct pgp_signer *sg)
{
	static const char conf[] = "# written by sluice: never fetch keys\n"
	    "no-auto-key-retrieve\nauto-key-locate local\n"
	    "no-auto-key-import\n";
	char dir[PATH_MAX], stamp[PATH_MAX], want[PATH_MAX + 80];
	char have[sizeof(want)], confpath[PATH_MAX];
	ssize_t n;
	int fd;

	if (spool_dir_path(state_dir, SPOOL_GNUPG, NULL, dir, sizeof(dir)) ==
	    -1 || xsnprintf(stamp, sizeof(stamp), "%s/sluice-keys.stamp",
	    sg->home) < 0 || xsnprintf(confpath, sizeof(confpath),
	    "%s/gpg.conf", sg->home) < 0)
		return -1;
	if ((fd = spool_mkdir(dir, 0700)) == -1)
		return -1;
	close(fd);
	if ((fd = spool_mkdir(sg->home, 0700)) == -1)
		return -1;
	close(fd);
	keyring_stamp(sc->keyring, want, sizeof(want));
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
	if (import_keyring(sg->ctx, sc->what, sc->keyring) == -1)
		return -1;
	if (write_file_atomic(stamp, want, strlen(want), 0600) == -1) {
		log_warn("cannot write %s", stamp);
		return -1;
	}
	log_info("%s: signing key imported from %s into %s", sc->what,
	    sc->keyring, sg->home);
	return 0;
}

/* The secret key sc->sign_with, a primary key that can sign, made the
 * context's only signer. 0 or -1 (logged). */
static int
signer_key(const struct pgp_signer_conf *sc, struct pgp_signer *sg)
{
	gpgme_key_t key = NULL;
	gpgme_error_t err;
	int rv = -1;

	if ((err = gpgme_get_key(sg->ctx, sc->sign_with, &key, 1)) != 0 ||
	    key == NULL) {
		log_warnx("%s.sign_with %s: no such secret key in "
		    "%s.keyring %s (%s); export that key's secret part "
		    "with gpg --export-secret-keys --armor %s", sc->what,
		    sc->sign_with, sc->what, sc->keyring, gpgme_strerror(err),
		    sc->sign_with);
		goto fail;
	}
	if (key->subkeys == NULL || strcasecmp(key->subkeys->fpr,
	    sc->sign_with) != 0) {
		log_warnx("%s.sign_with %s is a subkey; give the primary "
		    "key's fingerprint %s", sc->what, sc->sign_with,
		    key->subkeys ? key->subkeys->fpr : "?");
		goto fail;
	}
	if (!key->can_sign || key->revoked || key->expired || key->disabled) {
		log_warnx("%s.sign_with %s cannot sign (revoked, expired, "
		    "disabled or without a signing subkey); make or import a "
		    "key that can", sc->what, sc->sign_with);
		goto fail;
	}
	gpgme_signers_clear(sg->ctx);
	if ((err = gpgme_signers_add(sg->ctx, key)) != 0) {
		log_warnx("%s.sign_with %s: %s", sc->what, sc->sign_with,
		    gpgme_strerror(err));
		goto fail;
	}
	rv = 0;
fail:
	gpgme_key_unref(key);
	return rv;
}

struct pgp_signer *
pgp_signer_open(const char *state_dir, const struct pgp_signer_conf *sc)
{
	struct pgp_signer *sg;
	gpgme_error_t err;

	if (sc->sign_with == NULL || sc->keyring == NULL || verify_init() == -1)
		return NULL;
	if ((sg = calloc(1, sizeof(*sg))) == NULL)
		return NULL;
	sg->what = sc->what;
	if (spool_dir_path(state_dir, sc->home, NULL, sg->home,
	    sizeof(sg->home)) == -1)
		goto fail;
	if ((err = gpgme_new(&sg->ctx)) != 0 ||
	    (err = gpgme_set_protocol(sg->ctx, GPGME_PROTOCOL_OpenPGP)) != 0 ||
	    (err = gpgme_ctx_set_engine_info(sg->ctx, GPGME_PROTOCOL_OpenPGP,
	    NULL, sg->home)) != 0 ||
	    (err = gpgme_set_pinentry_mode(sg->ctx,
	    GPGME_PINENTRY_MODE_LOOPBACK)) != 0) {
		log_warnx("%s: gpgme: cannot set up a context for %s: %s",
		    sc->what, sg->home, gpgme_strerror(err));
		goto fail;
	}
	gpgme_set_offline(sg->ctx, 1);
	gpgme_set_armor(sg->ctx, 1);
	if (signer_home(state_dir, sc, sg) == -1 || signer_key(sc, sg) == -1)
		goto fail;
	return sg;
fail:
	pgp_signer_close(sg);
	return NULL;
}

/* Signs in into *out (mode: GPGME_SIG_MODE_*). 0 or -1 (why in err). */
static int
sign_data(struct pgp_signer *sg, gpgme_data_t in, gpgme_sig_mode_t mode,
    char **out, size_t *outlen, char *err, size_t errlen)
{
	gpgme_data_t res = NULL;
	gpgme_sign_result_t sr;
	gpgme_error_t e;
	char *buf;
	size_t n;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	gpgme_set_textmode(sg->ctx, mode == GPGME_SIG_MODE_CLEAR);
	if ((e = gpgme_data_new(&res)) != 0 ||
	    (e = gpgme_op_sign(sg->ctx, in, res, mode)) != 0) {
		xsnprintf(err, errlen, "cannot sign: %s", gpgme_strerror(e));
		goto fail;
	}
	sr = gpgme_op_sign_result(sg->ctx);
	if (sr == NULL || sr->invalid_signers != NULL || sr->signatures ==
	    NULL) {
		xsnprintf(err, errlen, "gpg made no signature (the signing key "
		    "is unusable; check %s.sign_with and %s.keyring)", sg->what,
		    sg->what);
		goto fail;
	}
	if ((buf = gpgme_data_release_and_get_mem(res, &n)) == NULL) {
		xsnprintf(err, errlen, "out of memory");
		goto fail;
	}
	res = NULL;
	if (n > SIGNED_MAX || (*out = malloc(n + 1)) == NULL) {
		xsnprintf(err, errlen, "the signature is too large");
		gpgme_free(buf);
		goto fail;
	}
	memcpy(*out, buf, n);
	(*out)[n] = '\0';
	*outlen = n;
	gpgme_free(buf);
	rc = 0;
fail:
	gpgme_data_release(res);
	return rc;
}

int
pgp_sign_clear(struct pgp_signer *sg, const char *text, char **out,
    size_t *outlen)
{
	gpgme_data_t in = NULL;
	gpgme_error_t e;
	char err[256];
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	if ((e = gpgme_data_new_from_mem(&in, text, strlen(text), 0)) != 0) {
		log_warnx("%s: cannot sign: %s", sg->what, gpgme_strerror(e));
		return -1;
	}
	if ((rc = sign_data(sg, in, GPGME_SIG_MODE_CLEAR, out, outlen, err,
	    sizeof(err))) != 0)
		log_warnx("%s: %s", sg->what, err);
	gpgme_data_release(in);
	return rc;
}

int
pgp_sign_detached_fd(struct pgp_signer *sg, int fd, char **out,
    size_t *outlen, char *err, size_t errlen)
{
	gpgme_data_t in = NULL;
	gpgme_error_t e;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (lseek(fd, 0, SEEK_SET) == -1) {
		xsnprintf(err, errlen, "cannot read the file: %s",
		    strerror(errno));
		return -1;
	}
	if ((e = gpgme_data_new_from_fd(&in, fd)) != 0) {
		xsnprintf(err, errlen, "cannot sign: %s", gpgme_strerror(e));
		return -1;
	}
	rc = sign_data(sg, in, GPGME_SIG_MODE_DETACH, out, outlen, err,
	    errlen);
	gpgme_data_release(in);
	return rc;
}

void
pgp_signer_close(struct pgp_signer *sg)
{
	if (sg == NULL)
		return;
	if (sg->ctx != NULL)
		gpgme_release(sg->ctx);
	if (sg->home[0] != '\0')
		verify_stop_agent(sg->home);
	free(sg);
}
