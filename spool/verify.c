#include "spool/verify.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gpgme.h>

#include "common/log.h"
#include "common/util.h"
#include "spool/layout.h"
#include "spool/state.h"

extern char **environ;

static int verify_ready;
static struct verify_limits limits;

#define PLAIN_RATIO	64		/* plaintext per message byte */
#define PLAIN_FLOOR	(1 << 20)
#define TIME_BYTES_PER_S (4 << 20)
#define FSIZE_SLACK	(1 << 20)	/* gpg's own small files */
#define RESULT_MAGIC	0x73766572u	/* "sver" */

#if defined(__SANITIZE_ADDRESS__)
#define NO_RLIMIT_AS	1	/* ASan maps terabytes of shadow memory */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_RLIMIT_AS	1
#endif
#endif

void
verify_set_limits(const struct verify_limits *l)
{
	limits = *l;
}

int
verify_init(void)
{
	gpgme_error_t err;

	if (verify_ready)
		return 0;
	if (gpgme_check_version("1.18.0") == NULL) {
		log_warnx("gpgme is older than 1.18.0; install libgpgme11 "
		    "from Debian 12");
		return -1;
	}
	if ((err = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP)) != 0) {
		log_warnx("OpenPGP verification needs gpg: %s; install the "
		    "gnupg package", gpgme_strerror(err));
		return -1;
	}
	verify_ready = 1;
	return 0;
}

void
verify_time_text(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		xstrlcpy(buf, "", len);
}

/* A context bound to home, offline, armor detection on. NULL on error. */
static gpgme_ctx_t
ctx_new(const char *home)
{
	gpgme_ctx_t ctx = NULL;
	gpgme_error_t err;

	if (verify_init() == -1)
		return NULL;
	if ((err = gpgme_new(&ctx)) != 0 ||
	    (err = gpgme_set_protocol(ctx, GPGME_PROTOCOL_OpenPGP)) != 0 ||
	    (err = gpgme_ctx_set_engine_info(ctx, GPGME_PROTOCOL_OpenPGP,
	    limits.gpg, home)) != 0 ||
	    (err = gpgme_set_pinentry_mode(ctx,
	    GPGME_PINENTRY_MODE_LOOPBACK)) != 0) {
		log_warnx("gpgme: cannot set up a context for %s: %s", home,
		    gpgme_strerror(err));
		gpgme_release(ctx);
		return NULL;
	}
	gpgme_set_offline(ctx, 1);
	return ctx;
}

/* Errors of the machinery (retry later), not of the data. */
static int
system_error(gpgme_error_t err)
{
	switch (gpgme_err_code(err)) {
	case GPG_ERR_ENOMEM:
	case GPG_ERR_EIO:
	case GPG_ERR_ENOSPC:
	case GPG_ERR_EMFILE:
	case GPG_ERR_ENFILE:
	case GPG_ERR_EAGAIN:
	case GPG_ERR_EINTR:
	case GPG_ERR_INV_ENGINE:
	case GPG_ERR_NO_AGENT:
	case GPG_ERR_AGENT:
	case GPG_ERR_SYSTEM_ERROR:
	case GPG_ERR_NOT_IMPLEMENTED:
	case GPG_ERR_CANCELED:
		return 1;
	default:
		return 0;
	}
}

/* --- the partner's home ---------------------------------------------- */

static int
import_file(gpgme_ctx_t ctx, const char *path, int secret, const char *what,
    const char *partner)
{
	gpgme_data_t d = NULL;
	gpgme_import_result_t ir;
	gpgme_error_t err;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("partner %s: cannot read signature.%s %s", partner,
		    what, path);
		return -1;
	}
	if ((err = gpgme_data_new_from_fd(&d, fd)) != 0 ||
	    (err = gpgme_op_import(ctx, d)) != 0) {
		log_warnx("partner %s: cannot import signature.%s %s: %s; "
		    "export it with gpg --export%s --armor", partner, what,
		    path, gpgme_strerror(err), secret ? "-secret-keys" : "");
		goto fail;
	}
	ir = gpgme_op_import_result(ctx);
	if (ir == NULL || ir->considered == 0 || ir->not_imported > 0 ||
	    (secret && ir->secret_read == 0)) {
		log_warnx("partner %s: signature.%s %s holds no usable "
		    "OpenPGP %s key%s", partner, what, path,
		    secret ? "secret" : "public",
		    secret ? " (it must have no passphrase)" : "");
		goto fail;
	}
	rc = 0;
fail:
	gpgme_data_release(d);
	close(fd);
	return rc;
}

static void
file_stamp(const char *path, char *buf, size_t len)
{
	struct stat sb;

	if (path == NULL || stat(path, &sb) == -1)
		xsnprintf(buf, len, "%s -\n", path ? path : "-");
	else
		xsnprintf(buf, len, "%s %lld %lld.%09ld %llu\n", path,
		    (long long)sb.st_size, (long long)sb.st_mtim.tv_sec,
		    sb.st_mtim.tv_nsec, (unsigned long long)sb.st_ino);
}

int
verify_home(const char *state_dir, const struct partner *p, char *home,
    size_t homelen)
{
	const struct signature_config *sc = &p->signature;
	gpgme_ctx_t ctx = NULL;
	gpgme_key_t key = NULL;
	char dir[PATH_MAX], stamp[PATH_MAX], want[2 * PATH_MAX + 128];
	char have[sizeof(want)], a[PATH_MAX + 64], b[PATH_MAX + 64];
	static const char conf[] = "# written by sluice: never fetch keys\n"
	    "no-auto-key-retrieve\nauto-key-locate local\n"
	    "no-auto-key-import\n";
	ssize_t n;
	size_t i;
	int fd, rc = -1;

	if (spool_dir_path(state_dir, SPOOL_GNUPG, NULL, dir, sizeof(dir)) ==
	    -1 || spool_dir_path(state_dir, SPOOL_GNUPG, p->name, home,
	    homelen) == -1 ||
	    xsnprintf(stamp, sizeof(stamp), "%s/sluice-keys.stamp", home) < 0)
		return -1;
	/* gnupg/ and gnupg/<partner>: real directories of ours, 0700 (an
	 * existing one of someone else's, or a link, is refused) */
	if ((fd = spool_mkdir(dir, 0700)) == -1)
		return -1;
	close(fd);
	if ((fd = spool_mkdir(home, 0700)) == -1)
		return -1;
	close(fd);
	if (sc->keyring == NULL) {
		log_warnx("partner %s: signature.mode needs signature.keyring "
		    "(the partner's public keys)", p->name);
		return -1;
	}
	file_stamp(sc->keyring, a, sizeof(a));
	file_stamp(sc->mode == SIG_ENCRYPTED ? sc->decryption_key : NULL, b,
	    sizeof(b));
	xsnprintf(want, sizeof(want), "%s%s", a, b);
	have[0] = '\0';
	if ((fd = open(stamp, O_RDONLY | O_CLOEXEC)) != -1) {
		n = read(fd, have, sizeof(have) - 1);
		have[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	if (strcmp(want, have) == 0)
		return 0;

	{
		char confpath[PATH_MAX];

		if (xsnprintf(confpath, sizeof(confpath), "%s/gpg.conf",
		    home) < 0 || write_file_atomic(confpath, conf,
		    sizeof(conf) - 1, 0600) == -1) {
			log_warn("partner %s: cannot write %s/gpg.conf",
			    p->name, home);
			return -1;
		}
	}
	if ((ctx = ctx_new(home)) == NULL)
		return -1;
	if (import_file(ctx, sc->keyring, 0, "keyring", p->name) == -1)
		goto fail;
	if (sc->mode == SIG_ENCRYPTED) {
		if (sc->decryption_key == NULL) {
			log_warnx("partner %s: signature.mode encrypted needs "
			    "signature.decryption_key (the gateway's secret "
			    "key)", p->name);
			goto fail;
		}
		if (import_file(ctx, sc->decryption_key, 1, "decryption_key",
		    p->name) == -1)
			goto fail;
	}
	for (i = 0; i < sc->nsigners; i++) {
		if (gpgme_get_key(ctx, sc->signers[i], &key, 0) != 0 ||
		    key == NULL)
			log_warnx("partner %s: signature.signers[%zu] %s is not "
			    "in %s; files it signs will be rejected until the "
			    "keyring holds it", p->name, i, sc->signers[i],
			    sc->keyring);
		else if (key->subkeys == NULL || strcasecmp(key->subkeys->fpr,
		    sc->signers[i]) != 0)
			log_warnx("partner %s: signature.signers[%zu] %s is a "
			    "subkey; pin the primary key's fingerprint %s",
			    p->name, i, sc->signers[i],
			    key->subkeys ? key->subkeys->fpr : "?");
		gpgme_key_unref(key);
		key = NULL;
	}
	if (write_file_atomic(stamp, want, strlen(want), 0600) == -1) {
		log_warn("partner %s: cannot write %s", p->name, stamp);
		goto fail;
	}
	log_info("partner %s: OpenPGP keys imported into %s", p->name, home);
	rc = 0;
fail:
	gpgme_release(ctx);
	/* importing starts an agent (it asks about secret keys): stop it */
	verify_stop_agent(home);
	return rc;
}

void
verify_stop_agent(const char *home)
{
	char *argv[] = { "gpgconf", "--homedir", (char *)home, "--kill", "all",
	    NULL };
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status;

	if (posix_spawn_file_actions_init(&fa) != 0)
		return;
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (posix_spawnp(&pid, "gpgconf", &fa, NULL, argv, environ) == 0) {
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
	}
	posix_spawn_file_actions_destroy(&fa);
}

/* --- the verdict ----------------------------------------------------- */

static const char *
digest_ok(gpgme_hash_algo_t h)
{
	switch (h) {
	case GPGME_MD_SHA224:
	case GPGME_MD_SHA256:
	case GPGME_MD_SHA384:
	case GPGME_MD_SHA512:
		return NULL;
	default:
		return gpgme_hash_algo_name(h) ? gpgme_hash_algo_name(h) :
		    "unknown";
	}
}

static int
pinned(const struct signature_config *sc, const char *fpr)
{
	size_t i;

	for (i = 0; i < sc->nsigners; i++)
		if (strcasecmp(sc->signers[i], fpr) == 0)
			return 1;
	return 0;
}

static void
upper(char *s)
{
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'f')
			*s = (char)(*s - 'a' + 'A');
}

/*
 * Judges every signature of vr. Fills res; res->ok only if all pass.
 * Returns 0, or -1 for a machinery failure.
 */
static int
judge_sigs(gpgme_ctx_t ctx, const struct signature_config *sc,
    gpgme_verify_result_t vr, struct verify_result *res)
{
	gpgme_signature_t s;
	gpgme_key_t key;
	gpgme_subkey_t sk;
	const char *weak, *fpr;
	char prim[41];
	unsigned bad;
	int nsig = 0;

	res->ok = 0;
	if (vr == NULL || vr->signatures == NULL) {
		xstrlcpy(res->reason, sc->mode == SIG_ENCRYPTED ?
		    "encrypted but not signed" : "no OpenPGP signature found",
		    sizeof(res->reason));
		return 0;
	}
	for (s = vr->signatures; s != NULL; s = s->next, nsig++) {
		fpr = s->fpr ? s->fpr : "(unknown)";
		if (gpgme_err_code(s->status) == GPG_ERR_BAD_SIGNATURE ||
		    (s->summary & GPGME_SIGSUM_RED)) {
			xsnprintf(res->reason, sizeof(res->reason), "bad "
			    "signature by %s: the data or the signature was "
			    "changed, or it signs other data", fpr);
			return 0;
		}
		if (gpgme_err_code(s->status) == GPG_ERR_NO_PUBKEY ||
		    (s->summary & GPGME_SIGSUM_KEY_MISSING)) {
			xsnprintf(res->reason, sizeof(res->reason), "signed by "
			    "unknown key %s (not in the partner's keyring)",
			    fpr);
			return 0;
		}
		if (gpgme_err_code(s->status) == GPG_ERR_CERT_REVOKED ||
		    (s->summary & GPGME_SIGSUM_KEY_REVOKED)) {
			xsnprintf(res->reason, sizeof(res->reason), "signed by "
			    "revoked key %s", fpr);
			return 0;
		}
		if (gpgme_err_code(s->status) == GPG_ERR_KEY_EXPIRED ||
		    (s->summary & GPGME_SIGSUM_KEY_EXPIRED)) {
			xsnprintf(res->reason, sizeof(res->reason), "signed by "
			    "expired key %s", fpr);
			return 0;
		}
		if (gpgme_err_code(s->status) == GPG_ERR_SIG_EXPIRED ||
		    (s->summary & GPGME_SIGSUM_SIG_EXPIRED)) {
			xsnprintf(res->reason, sizeof(res->reason), "the "
			    "signature by %s has expired", fpr);
			return 0;
		}
		if (s->wrong_key_usage ||
		    gpgme_err_code(s->status) == GPG_ERR_WRONG_KEY_USAGE) {
			xsnprintf(res->reason, sizeof(res->reason), "key %s is "
			    "not a signing key (its usage flags exclude "
			    "signing)", fpr);
			return 0;
		}
		bad = s->summary & (GPGME_SIGSUM_BAD_POLICY |
		    GPGME_SIGSUM_SYS_ERROR);
		if (s->status != 0 || bad) {
			xsnprintf(res->reason, sizeof(res->reason), "signature "
			    "by %s not valid: %s%s", fpr,
			    s->status ? gpgme_strerror(s->status) : "",
			    bad ? (bad & GPGME_SIGSUM_BAD_POLICY ?
			    " (policy not met)" : " (system error)") : "");
			return 0;
		}
		if ((weak = digest_ok(s->hash_algo)) != NULL) {
			xsnprintf(res->reason, sizeof(res->reason), "signature "
			    "by %s uses the weak digest %s; sign with SHA-256 "
			    "or better", fpr, weak);
			return 0;
		}
		if (s->fpr == NULL) {
			xstrlcpy(res->reason, "signature without an issuer "
			    "fingerprint", sizeof(res->reason));
			return 0;
		}
		/* the signing (sub)key -> its primary */
		key = NULL;
		if (gpgme_get_key(ctx, s->fpr, &key, 0) != 0 || key == NULL ||
		    key->subkeys == NULL) {
			gpgme_key_unref(key);
			xsnprintf(res->reason, sizeof(res->reason), "signed by "
			    "unknown key %s (not in the partner's keyring)",
			    fpr);
			return 0;
		}
		for (sk = key->subkeys; sk != NULL; sk = sk->next)
			if (sk->fpr != NULL && strcasecmp(sk->fpr, s->fpr) == 0)
				break;
		xstrlcpy(prim, key->subkeys->fpr, sizeof(prim));
		upper(prim);
		if (sk == NULL || key->revoked || key->disabled ||
		    key->invalid || sk->revoked || sk->invalid ||
		    !sk->can_sign) {
			xsnprintf(res->reason, sizeof(res->reason), "key %s "
			    "(primary %s) is %s", fpr, prim, sk == NULL ?
			    "not the key that made the signature" :
			    key->revoked || sk->revoked ? "revoked" :
			    !sk->can_sign ? "not a signing key" : "unusable");
			gpgme_key_unref(key);
			return 0;
		}
		gpgme_key_unref(key);
		xstrlcpy(res->signer, prim, sizeof(res->signer));
		res->signed_at = (int64_t)s->timestamp;
		if (!pinned(sc, prim)) {
			xsnprintf(res->reason, sizeof(res->reason), "signed by "
			    "%s, which is not in signature.signers", prim);
			return 0;
		}
	}
	res->ok = nsig > 0;
	return 0;
}

/*
 * The plaintext sink: counts what gpg writes, stops it past the bounds
 * (verify_set_limits), and writes to fd or throws the bytes away (constant
 * memory).
 */
struct sink {
	int	 fd;		/* -1: discard */
	int64_t	 n;
	int64_t	 cap;		/* bytes */
	int64_t	 deadline;	/* mono_ms() */
	int64_t	 max_ms;
	int	 over;		/* stopped: over cap */
	int	 late;		/* stopped: past deadline */
};

static ssize_t
sink_write(void *h, const void *buf, size_t n)
{
	struct sink *k = h;
	const char *p = buf;
	size_t done = 0;
	ssize_t w;

	if ((int64_t)n > k->cap - k->n) {
		k->over = 1;
		errno = EFBIG;
		return -1;
	}
	if (mono_ms() > k->deadline) {
		k->late = 1;
		errno = ETIMEDOUT;
		return -1;
	}
	while (k->fd != -1 && done < n) {
		if ((w = write(k->fd, p + done, n - done)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)w;
	}
	k->n += (int64_t)n;
	return (ssize_t)n;
}

/* The time bound of one verification of a file of size bytes. */
static int64_t
time_bound_ms(const struct signature_config *sc, int64_t size)
{
	int64_t ms;

	if (limits.max_ms > 0)
		return limits.max_ms;
	ms = (sc->timeout_s > 0 ? sc->timeout_s : VERIFY_DEFAULT_TIMEOUT_S) *
	    1000;
	if (size > 0 && size / TIME_BYTES_PER_S * 1000 > ms)
		ms = size / TIME_BYTES_PER_S * 1000;
	return ms;
}

/* The plaintext bound for a message of size bytes. */
static int64_t
plain_bound(int64_t size)
{
	int64_t cap;

	if (size < 0)
		size = 0;
	cap = size > INT64_MAX / PLAIN_RATIO ? INT64_MAX : size * PLAIN_RATIO;
	if (cap < PLAIN_FLOOR)
		cap = PLAIN_FLOOR;
	if (limits.max_file_size > 0 && cap > limits.max_file_size)
		cap = limits.max_file_size;
	if (limits.max_plain > 0)
		cap = limits.max_plain;
	return cap;
}

/* Sets k's bounds for a message of size bytes. */
static void
sink_init(struct sink *k, int fd, int64_t size, int64_t max_ms)
{
	memset(k, 0, sizeof(*k));
	k->fd = fd;
	k->cap = plain_bound(size);
	k->max_ms = max_ms;
	k->deadline = mono_ms() + k->max_ms;
}

static ssize_t
sink_read(void *h, void *buf, size_t n)
{
	(void)h;
	(void)buf;
	(void)n;
	errno = EBADF;
	return -1;
}

static struct gpgme_data_cbs sink_cbs = { sink_read, sink_write, NULL, NULL };

static int
data_fd(gpgme_data_t *d, int fd)
{
	if (lseek(fd, 0, SEEK_SET) == -1)
		return -1;
	return gpgme_data_new_from_fd(d, fd) == 0 ? 0 : -1;
}

static int
data_out(gpgme_data_t *d, struct sink *k)
{
	return gpgme_data_new_from_cbs(d, &sink_cbs, k) == 0 ? 0 : -1;
}

#define OP_DETACHED	VERIFY_DETACHED
#define OP_INLINE	VERIFY_INLINE
#define OP_ENCRYPTED	VERIFY_ENCRYPTED

/*
 * gpg verifies the one signed message it finds and ignores text around an
 * armored block: "amount: 999999" above a clearsigned "amount: 100" would
 * verify as good and be shipped as signed. So an armored (text) file must
 * be exactly one armored message: the first line is its BEGIN line (a
 * clearsigned message for inline mode, or a PGP MESSAGE), no other armor
 * line but the ones that belong to it (gpg dash-escapes them inside signed
 * text), and after its END line only blank lines. A binary message is not
 * checked here: OpenPGP tools read only its packets, which the signature
 * covers. Returns 0 (ok), 1 (rejected, reason set) or -1 (read error).
 */
#define FRAME_PREFIX	40

enum frame_state { F_START, F_CLEAR, F_SIG, F_MSG, F_END };

/* One line (its first FRAME_PREFIX bytes in line, NUL-terminated, trailing
 * blanks removed; blank: the whole line was blank). NULL, or why not. */
static const char *
frame_line(enum frame_state *st, enum verify_op op, const char *line, int blank)
{
#define IS(x)	(strcmp(line, (x)) == 0)
	if (strncmp(line, "-----BEGIN PGP ", 15) == 0 ||
	    strncmp(line, "-----END PGP ", 13) == 0) {
		if (*st == F_START && op == OP_INLINE &&
		    IS("-----BEGIN PGP SIGNED MESSAGE-----"))
			*st = F_CLEAR;
		else if (*st == F_START && IS("-----BEGIN PGP MESSAGE-----"))
			*st = F_MSG;
		else if (*st == F_CLEAR && IS("-----BEGIN PGP SIGNATURE-----"))
			*st = F_SIG;
		else if ((*st == F_SIG && IS("-----END PGP SIGNATURE-----")) ||
		    (*st == F_MSG && IS("-----END PGP MESSAGE-----")))
			*st = F_END;
		else
			return "a second or unexpected armor line";
		return NULL;
	}
#undef IS
	if (*st == F_START && !blank)
		return "text before the signed message";
	if (*st == F_END && !blank)
		return "data after the signed message";
	return NULL;
}

static int
framing_check(int fd, enum verify_op op, char *reason, size_t len)
{
	enum frame_state st = F_START;
	char buf[65536], line[FRAME_PREFIX + 1];
	size_t ll = 0, i;
	int blank = 1, pending = 0;
	int64_t lineno = 1;
	off_t off = 0;
	ssize_t n;
	const char *why = NULL;

	for (;;) {
		n = pread(fd, buf, sizeof(buf), off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (off == 0 && n > 0 && ((unsigned char)buf[0] & 0x80))
			return 0;	/* binary OpenPGP packets */
		if (n == 0)
			break;
		for (i = 0; i < (size_t)n; i++) {
			char c = buf[i];

			if (c != '\n') {
				pending = 1;
				if (ll < FRAME_PREFIX)
					line[ll++] = c;
				if (c != ' ' && c != '\t' && c != '\r')
					blank = 0;
				continue;
			}
			while (ll > 0 && (line[ll - 1] == '\r' ||
			    line[ll - 1] == ' ' || line[ll - 1] == '\t'))
				ll--;
			line[ll] = '\0';
			if ((why = frame_line(&st, op, line, blank)) != NULL)
				goto reject;
			lineno++;
			ll = 0;
			blank = 1;
			pending = 0;
		}
		off += n;
	}
	if (pending) {		/* a last line without its newline */
		while (ll > 0 && (line[ll - 1] == '\r' ||
		    line[ll - 1] == ' ' || line[ll - 1] == '\t'))
			ll--;
		line[ll] = '\0';
		if ((why = frame_line(&st, op, line, blank)) != NULL)
			goto reject;
	}
	if (st != F_END) {
		xsnprintf(reason, len, "not one complete armored OpenPGP "
		    "message (it ends before its END line)");
		return 1;
	}
	return 0;
reject:
	xsnprintf(reason, len, "unsigned data around the signed message: %s "
	    "(line %lld); the file must be exactly one OpenPGP message",
	    why, (long long)lineno);
	return 1;
}

/* The verification itself, in the child: as the verify_* calls. */
static int
run_op(const char *home, const struct signature_config *sc, enum verify_op op,
    int fd, int sig_fd, int plain_fd, int64_t max_ms, struct verify_result *res)
{
	gpgme_ctx_t ctx = NULL;
	gpgme_data_t in = NULL, sig = NULL, out = NULL;
	gpgme_decrypt_result_t dr;
	gpgme_error_t err;
	struct sink k;
	struct stat sb;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (op != OP_DETACHED) {
		switch (framing_check(fd, op, res->reason, sizeof(res->reason))) {
		case 0:
			break;
		case 1:
			return 0;	/* rejected: res->ok stays 0 */
		default:
			log_warn("cannot read the file to verify");
			return -1;
		}
	}
	sink_init(&k, plain_fd, fstat(fd, &sb) == 0 ? (int64_t)sb.st_size : 0,
	    max_ms);
	if ((ctx = ctx_new(home)) == NULL)
		return -1;
	if (data_fd(&in, fd) == -1 ||
	    (op == OP_DETACHED && data_fd(&sig, sig_fd) == -1) ||
	    (op != OP_DETACHED && data_out(&out, &k) == -1)) {
		log_warn("gpgme: cannot set up the data streams");
		goto fail;
	}
	switch (op) {
	case OP_DETACHED:
		err = gpgme_op_verify(ctx, sig, in, NULL);
		break;
	case OP_INLINE:
		err = gpgme_op_verify(ctx, in, NULL, out);
		break;
	default:
		err = gpgme_op_decrypt_verify(ctx, in, out);
		break;
	}
	if (k.over || k.late) {
		/* gpg was stopped: whatever it said is beside the point */
		if (k.over)
			xsnprintf(res->reason, sizeof(res->reason),
			    "decompressed data over %lld bytes: possible "
			    "compression bomb", (long long)k.cap);
		else
			xsnprintf(res->reason, sizeof(res->reason),
			    "verification took over %lld s: possible "
			    "compression bomb or endless stream",
			    (long long)((k.max_ms + 999) / 1000));
		rc = 0;
		goto fail;
	}
	if (err != 0 && system_error(err)) {
		log_warnx("gpgme: cannot run gpg for %s: %s", home,
		    gpgme_strerror(err));
		goto fail;
	}
	if (op == OP_ENCRYPTED) {
		dr = gpgme_op_decrypt_result(ctx);
		if (err != 0) {
			xsnprintf(res->reason, sizeof(res->reason), "cannot "
			    "decrypt: %s%s", gpgme_strerror(err),
			    gpgme_err_code(err) == GPG_ERR_NO_SECKEY ?
			    " (not encrypted to the gateway's key)" :
			    gpgme_err_code(err) == GPG_ERR_NO_DATA ?
			    " (not an OpenPGP message, or damaged)" :
			    gpgme_err_code(err) == GPG_ERR_BAD_DATA ||
			    gpgme_err_code(err) == GPG_ERR_DECRYPT_FAILED ?
			    " (damaged: the integrity check failed)" : "");
			rc = 0;
			goto fail;
		}
		if (dr == NULL || dr->recipients == NULL) {
			xstrlcpy(res->reason, "not encrypted (signature.mode "
			    "encrypted wants sign-then-encrypt to the gateway's "
			    "key)", sizeof(res->reason));
			rc = 0;
			goto fail;
		}
		if (dr->wrong_key_usage || dr->unsupported_algorithm) {
			xstrlcpy(res->reason, "encrypted with an unusable key "
			    "or algorithm", sizeof(res->reason));
			rc = 0;
			goto fail;
		}
	} else if (err != 0) {
		xsnprintf(res->reason, sizeof(res->reason), "not a valid "
		    "OpenPGP %s: %s", op == OP_DETACHED ? "signature" :
		    "signed message", gpgme_strerror(err));
		rc = 0;
		goto fail;
	}
	rc = judge_sigs(ctx, sc, gpgme_op_verify_result(ctx), res);
fail:
	gpgme_data_release(in);
	gpgme_data_release(sig);
	gpgme_data_release(out);
	gpgme_release(ctx);
	if (rc == 0 && !res->ok && res->reason[0] == '\0')
		xstrlcpy(res->reason, "no acceptable signature",
		    sizeof(res->reason));
	return rc;
}

/* --- the child ------------------------------------------------------- */

/* What the child sends: fixed size, checked by the parent (untrusted). */
struct result_msg {
	uint32_t	 magic;
	int32_t		 rc;
	struct verify_result res;
};

struct verify_job {
	pid_t		 pid;		/* -1: decided without a child */
	int		 rfd;		/* the result pipe, -1 when none */
	enum verify_op	 op;
	int64_t		 deadline;	/* mono_ms() of the kill */
	int64_t		 bound_ms;	/* the time bound it was given */
	size_t		 got;		/* bytes of msg read so far */
	struct result_msg msg;
	char		 home[PATH_MAX];
};

/* Sets resource res to v (soft) and v + hard_extra (hard). */
static void
set_limit(int res, int64_t v, int64_t hard_extra)
{
	struct rlimit rl;

	rl.rlim_cur = v < 0 ? 0 : (rlim_t)v;
	rl.rlim_max = rl.rlim_cur + (rlim_t)hard_extra;
	(void)setrlimit(res, &rl);
}

/* Closes every descriptor but 0-2 and those in keep (sorted, ascending). */
static void
close_others(const int *keep, size_t n)
{
	unsigned int lo = 3;
	size_t i;

	for (i = 0; i < n; i++) {
		if (keep[i] < (int)lo)
			continue;
		if ((unsigned int)keep[i] > lo)
			(void)syscall(SYS_close_range, lo,
			    (unsigned int)keep[i] - 1, 0);
		lo = (unsigned int)keep[i] + 1;
	}
	(void)syscall(SYS_close_range, lo, ~0U, 0);
}

static int
cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return x < y ? -1 : x > y;
}

static int
write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * The child: its own process group, dies with its parent, default signals,
 * limits, no other descriptors, an empty environment; runs the operation and
 * writes one result_msg to wfd. Never returns.
 */
static void __attribute__((noreturn))
child_main(pid_t parent, int wfd, const char *home,
    const struct signature_config *sc, enum verify_op op, int fd, int sig_fd,
    int plain_fd, int64_t size, int64_t bound_ms)
{
	struct result_msg m;
	struct sigaction sa;
	sigset_t all;
	int keep[4], nkeep = 0;
	int64_t cpu_s;

	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != parent)
		_exit(1);
	(void)setpgid(0, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGXCPU, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGXFSZ, &sa, NULL);	/* a write past the cap: EFBIG */
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);

	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	set_limit(RLIMIT_CORE, 0, 0);
	/* SIGXCPU at the soft limit (reported), SIGKILL a second later */
	cpu_s = (bound_ms + 999) / 1000 + 1;
	set_limit(RLIMIT_CPU, cpu_s, 1);
	set_limit(RLIMIT_FSIZE, (plain_fd != -1 ? plain_bound(op ==
	    OP_DETACHED ? 0 : size) : 0) + FSIZE_SLACK, 0);
#ifndef NO_RLIMIT_AS
	set_limit(RLIMIT_AS, limits.max_as > 0 ? limits.max_as :
	    VERIFY_MAX_AS, 0);
#endif

	keep[nkeep++] = wfd;
	keep[nkeep++] = fd;
	if (sig_fd != -1)
		keep[nkeep++] = sig_fd;
	if (plain_fd != -1)
		keep[nkeep++] = plain_fd;
	qsort(keep, (size_t)nkeep, sizeof(keep[0]), cmp_int);
	close_others(keep, (size_t)nkeep);

	/* no credential or other secret of the caller reaches gpg */
	(void)clearenv();
	(void)setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1);
	(void)setenv("LC_ALL", "C", 1);

	memset(&m, 0, sizeof(m));
	m.magic = RESULT_MAGIC;
	m.rc = run_op(home, sc, op, fd, sig_fd, plain_fd, bound_ms, &m.res);
	if (write_all(wfd, &m, sizeof(m)) == -1)
		_exit(1);
	_exit(0);
}

/* --- the parent ------------------------------------------------------ */

static int
is_hex40(const char *s)
{
	size_t i;

	for (i = 0; i < 40; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' &&
		    s[i] <= 'F')))
			return 0;
	return s[40] == '\0';
}

/*
 * Checks what a child sent (it parsed a partner's bytes: trust nothing):
 * magic, rc 0 or -1, ok 0 or 1, NUL-terminated strings, a signer that is
 * 40 upper-case hex digits or empty (and not empty when ok), printable
 * reason text. Control characters in the reason become '?'. 0 or -1.
 */
static int
result_check(struct result_msg *m)
{
	struct verify_result *r = &m->res;
	size_t i;

	if (m->magic != RESULT_MAGIC || (m->rc != 0 && m->rc != -1) ||
	    (r->ok != 0 && r->ok != 1))
		return -1;
	if (memchr(r->signer, '\0', sizeof(r->signer)) == NULL ||
	    memchr(r->reason, '\0', sizeof(r->reason)) == NULL)
		return -1;
	if (r->signer[0] != '\0' && !is_hex40(r->signer))
		return -1;
	if (r->ok && (m->rc != 0 || r->signer[0] == '\0'))
		return -1;
	if (r->signed_at < 0)
		r->signed_at = 0;
	for (i = 0; r->reason[i] != '\0'; i++)
		if ((unsigned char)r->reason[i] < 0x20 ||
		    r->reason[i] == 0x7f)
			r->reason[i] = '?';
	/* nothing after the terminators: the rest of the message is ours */
	i = strlen(r->reason);
	memset(r->reason + i, 0, sizeof(r->reason) - i);
	i = strlen(r->signer);
	memset(r->signer + i, 0, sizeof(r->signer) - i);
	return 0;
}

static const char *
op_name(enum verify_op op)
{
	return op == OP_DETACHED ? "detached" : op == OP_INLINE ? "inline" :
	    "encrypted";
}

int
verify_start(const char *home, const struct signature_config *sc,
    enum verify_op op, int fd, int sig_fd, int plain_fd,
    struct verify_job **jp)
{
	struct verify_job *j;
	struct stat sb;
	int64_t size;
	int p[2];
	pid_t pid, self = getpid();

	*jp = NULL;
	if (verify_init() == -1)
		return -1;
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		log_warn("verify: calloc");
		return -1;
	}
	j->pid = -1;
	j->rfd = -1;
	j->op = op;
	xstrlcpy(j->home, home, sizeof(j->home));
	if (fstat(fd, &sb) == -1) {
		log_warn("cannot stat the file to verify");
		free(j);
		return -1;
	}
	size = (int64_t)sb.st_size;
	if (op == OP_DETACHED) {
		if (fstat(sig_fd, &sb) == -1) {
			log_warn("cannot stat the signature to verify");
			free(j);
			return -1;
		}
		if (!S_ISREG(sb.st_mode) || sb.st_size > VERIFY_MAX_SIG) {
			/* decided without gpg */
			j->msg.magic = RESULT_MAGIC;
			xsnprintf(j->msg.res.reason, sizeof(j->msg.res.reason),
			    "the signature file is %lld bytes, over the %d "
			    "bytes a detached signature may have",
			    (long long)sb.st_size, VERIFY_MAX_SIG);
			j->got = sizeof(j->msg);
			*jp = j;
			return 0;
		}
	}
	j->bound_ms = time_bound_ms(sc, size);
	if (pipe2(p, O_CLOEXEC) == -1) {
		log_warn("verify: pipe");
		free(j);
		return -1;
	}
	if ((pid = fork()) == -1) {
		log_warn("verify: fork");
		close(p[0]);
		close(p[1]);
		free(j);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		child_main(self, p[1], home, sc, op, fd, sig_fd, plain_fd, size,
		    j->bound_ms);
	}
	close(p[1]);
	(void)setpgid(pid, pid);	/* either of us may get there first */
	j->pid = pid;
	j->rfd = p[0];
	j->deadline = mono_ms() + j->bound_ms + VERIFY_KILL_GRACE_MS;
	*jp = j;
	return 0;
}

int
verify_job_fd(const struct verify_job *j)
{
	return j->rfd;
}

int64_t
verify_job_deadline(const struct verify_job *j)
{
	return j->pid == -1 ? 0 : j->deadline;
}

/* Kills j's process group and reaps the child; its status or -1. */
static int
job_reap(struct verify_job *j, int kill_it)
{
	int status = -1;

	if (j->pid == -1)
		return -1;
	if (kill_it) {
		(void)kill(-j->pid, SIGKILL);
		(void)kill(j->pid, SIGKILL);
	}
	while (waitpid(j->pid, &status, 0) == -1) {
		if (errno != EINTR) {
			status = -1;
			break;
		}
	}
	/* anything of its group still alive (gpg) goes with it */
	(void)kill(-j->pid, SIGKILL);
	j->pid = -1;
	return status;
}

static void
job_free(struct verify_job *j)
{
	if (j->rfd != -1)
		close(j->rfd);
	free(j);
}

void
verify_cancel(struct verify_job *j)
{
	if (j == NULL)
		return;
	(void)job_reap(j, 1);
	if (j->op == OP_ENCRYPTED)
		verify_stop_agent(j->home);
	job_free(j);
}

int
verify_wait(struct verify_job *j, int block, struct verify_result *res)
{
	struct pollfd pfd;
	int64_t left;
	int status, r, late = 0, quit = 0, rc = -1;

	memset(res, 0, sizeof(*res));
	if (j->pid != -1) {
		for (;;) {
			left = j->deadline - mono_ms();
			pfd.fd = j->rfd;
			pfd.events = POLLIN;
			pfd.revents = 0;
			if (block && limits.quit != NULL && *limits.quit) {
				quit = 1;
				break;
			}
			/*
			 * Past the deadline the pipe is still looked at once:
			 * a caller busy elsewhere may collect a job long after
			 * it answered, and that answer counts (the soak's
			 * 200 sessions on 2 cores had a good file rejected as
			 * "exceeded 120 s" while its verdict sat here).
			 * A signal just before poll: seen within a second.
			 */
			r = poll(&pfd, 1, left <= 0 || !block ? 0 :
			    (int)(left > 1000 ? 1000 : left));
			if (r == -1 && errno != EINTR) {
				log_warn("verify: poll");
				quit = 1;
				break;
			}
			if (r <= 0) {
				if (left <= 0 && r == 0) {
					late = 1;
					break;
				}
				if (!block && r == 0)
					return 1;
				continue;
			}
			/* one read per wake-up: the pipe is blocking, and
			 * readable means it will not block now */
			{
				ssize_t n = read(j->rfd, (char *)&j->msg +
				    j->got, sizeof(j->msg) - j->got);

				if (n > 0)
					j->got += (size_t)n;
				if ((n == -1 && errno != EINTR) || n == 0 ||
				    j->got == sizeof(j->msg))
					break;
			}
		}
		status = job_reap(j, late || quit || j->got != sizeof(j->msg));
		if (quit) {
			if (j->op == OP_ENCRYPTED)
				verify_stop_agent(j->home);
			goto out;	/* shutting down or poll failed */
		}
		if (late) {
			if (j->op == OP_ENCRYPTED)
				verify_stop_agent(j->home);
			xsnprintf(res->reason, sizeof(res->reason), "signature "
			    "verification exceeded %lld s (signature.timeout); "
			    "gpg was stopped", (long long)((j->bound_ms + 999) /
			    1000));
			log_warnx("%s: %s verification killed after %lld ms",
			    j->home, op_name(j->op), (long long)(j->bound_ms +
			    VERIFY_KILL_GRACE_MS));
			rc = 0;
			goto out;
		}
		if (j->got != sizeof(j->msg)) {
			if (status != -1 && WIFSIGNALED(status) &&
			    WTERMSIG(status) == SIGXCPU) {
				xsnprintf(res->reason, sizeof(res->reason),
				    "signature verification used over %lld s "
				    "of CPU (signature.timeout); gpg was "
				    "stopped", (long long)((j->bound_ms + 999) /
				    1000));
				rc = 0;
				goto out;
			}
			if (status != -1 && WIFSIGNALED(status))
				log_warnx("%s: the %s verification child died "
				    "of signal %d (%s) before answering; the "
				    "file waits", j->home, op_name(j->op),
				    WTERMSIG(status), strsignal(WTERMSIG(status)));
			else
				log_warnx("%s: the %s verification child ended "
				    "(status %d) before answering; the file "
				    "waits", j->home, op_name(j->op), status);
			goto out;
		}
	}
	if (result_check(&j->msg) == -1) {
		log_warnx("%s: the %s verification child sent a malformed "
		    "result; the file waits", j->home, op_name(j->op));
		goto out;
	}
	*res = j->msg.res;
	rc = j->msg.rc;
	if (rc == 0 && !res->ok && res->reason[0] == '\0')
		xstrlcpy(res->reason, "no acceptable signature",
		    sizeof(res->reason));
out:
	if (rc == -1)
		memset(res, 0, sizeof(*res));
	job_free(j);
	return rc;
}

static int
run(const char *home, const struct signature_config *sc, enum verify_op op,
    int fd, int sig_fd, int plain_fd, struct verify_result *res)
{
	struct verify_job *j;

	memset(res, 0, sizeof(*res));
	if (verify_start(home, sc, op, fd, sig_fd, plain_fd, &j) == -1)
		return -1;
	return verify_wait(j, 1, res);
}

int
verify_detached(const char *home, const struct signature_config *sc,
    int fd, int sig_fd, struct verify_result *res)
{
	return run(home, sc, OP_DETACHED, fd, sig_fd, -1, res);
}

int
verify_inline(const char *home, const struct signature_config *sc, int fd,
    int plain_fd, struct verify_result *res)
{
	return run(home, sc, OP_INLINE, fd, -1, plain_fd, res);
}

int
verify_encrypted(const char *home, const struct signature_config *sc,
    int fd, int plain_fd, struct verify_result *res)
{
	return run(home, sc, OP_ENCRYPTED, fd, -1, plain_fd, res);
}
