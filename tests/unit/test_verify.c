/*
 * Unit tests for spool/verify.c: OpenPGP verdicts through gpgme against keys
 * made with `gpg --batch` at run time in temporary homes (nothing here reads
 * ~/.gnupg: HOME points at an empty directory and GNUPGHOME is unset).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "spool/verify.h"

static char tmp[256];		/* the test's directory */
static char P[300], G[300], U[300];	/* partner, gateway, stranger homes */
static char acme[41], acme_sub[41], old[41], rev[41], weak[41], other[41];
static char gw[41];
static char home[4096];		/* sluice's home for the partner */
static struct partner partner;
static char *signers[4];

static int
sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (rc < 0 || (size_t)rc >= sizeof(cmd))
		return -1;
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
	return rc;
}

/* n-th fingerprint (0: primary, 1: first subkey) of uid in home h. */
static int
fpr_of(const char *h, const char *uid, int n, char out[41])
{
	char cmd[1024], line[1024];
	FILE *f;
	int i = 0, rc = -1;

	snprintf(cmd, sizeof(cmd), "gpg --homedir %s --with-colons "
	    "--list-keys '%s' 2>/dev/null", h, uid);
	if ((f = popen(cmd, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "fpr:", 4) != 0)
			continue;
		if (i++ == n) {
			/* fpr:::::::::FPR: */
			char *p = line;
			int k;

			for (k = 0; k < 9 && p != NULL; k++)
				p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL;
			if (p != NULL && strlen(p) >= 40) {
				memcpy(out, p, 40);
				out[40] = '\0';
				rc = 0;
			}
			break;
		}
	}
	pclose(f);
	return rc;
}

static int
path_in(char *buf, size_t len, const char *name)
{
	return snprintf(buf, len, "%s/%s", tmp, name) < (int)len ? 0 : -1;
}

static int
open_in(const char *name)
{
	char p[512];

	path_in(p, sizeof(p), name);
	return open(p, O_RDONLY | O_CLOEXEC);
}

#define GPG "gpg --batch --yes --quiet --pinentry-mode loopback --passphrase ''"

static int
setup(void **state)
{
	char nohome[300], st[300];

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	snprintf(tmp, sizeof(tmp), "/tmp/sluice-verify-XXXXXX");
	if (mkdtemp(tmp) == NULL)
		return -1;
	snprintf(P, sizeof(P), "%s/p", tmp);
	snprintf(G, sizeof(G), "%s/g", tmp);
	snprintf(U, sizeof(U), "%s/u", tmp);
	snprintf(nohome, sizeof(nohome), "%s/nohome", tmp);
	snprintf(st, sizeof(st), "%s/state", tmp);
	if (mkdir(P, 0700) || mkdir(G, 0700) || mkdir(U, 0700) ||
	    mkdir(nohome, 0500) || mkdir(st, 0750))
		return -1;
	/* Nothing may depend on ~/.gnupg or the caller's GNUPGHOME. */
	setenv("HOME", nohome, 1);
	unsetenv("GNUPGHOME");

	/* acme: a certify-only primary with a signing subkey */
	if (sh(GPG " --homedir %s --quick-gen-key 'Acme Bank <ops@acme.test>' "
	    "ed25519 cert never 2>/dev/null", P) ||
	    fpr_of(P, "ops@acme.test", 0, acme) ||
	    sh(GPG " --homedir %s --quick-add-key %s ed25519 sign never "
	    "2>/dev/null", P, acme) ||
	    fpr_of(P, "ops@acme.test", 1, acme_sub))
		return -1;
	/* old: expired a day after 2020-01-01, its signature made then */
	if (sh(GPG " --homedir %s --faked-system-time 20200101T000000 "
	    "--quick-gen-key 'Old <old@acme.test>' ed25519 sign 1d "
	    "2>/dev/null", P) || fpr_of(P, "old@acme.test", 0, old))
		return -1;
	/* rev: revoked after signing (below) */
	if (sh(GPG " --homedir %s --quick-gen-key 'Rev <rev@acme.test>' "
	    "ed25519 sign never 2>/dev/null", P) ||
	    fpr_of(P, "rev@acme.test", 0, rev))
		return -1;
	/* weak: signs with SHA-1 (below); other: in the keyring, not pinned */
	if (sh(GPG " --homedir %s --quick-gen-key 'Weak <weak@acme.test>' "
	    "ed25519 sign never 2>/dev/null", P) ||
	    fpr_of(P, "weak@acme.test", 0, weak) ||
	    sh(GPG " --homedir %s --quick-gen-key 'Other <other@acme.test>' "
	    "ed25519 sign never 2>/dev/null", P) ||
	    fpr_of(P, "other@acme.test", 0, other))
		return -1;
	/* the stranger's key never reaches the keyring */
	if (sh(GPG " --homedir %s --quick-gen-key 'Mallory <m@evil.test>' "
	    "default default never 2>/dev/null", U))
		return -1;
	/* the gateway: certify primary + encryption subkey */
	if (sh(GPG " --homedir %s --quick-gen-key 'Gateway <gw@sluice.test>' "
	    "ed25519 cert never 2>/dev/null", G) ||
	    fpr_of(G, "gw@sluice.test", 0, gw) ||
	    sh(GPG " --homedir %s --quick-add-key %s cv25519 encr never "
	    "2>/dev/null", G, gw) ||
	    sh(GPG " --homedir %s --export-secret-keys --armor %s > %s/gw.sec.asc",
	    G, gw, tmp) ||
	    sh(GPG " --homedir %s --export --armor %s | " GPG " --homedir %s "
	    "--import 2>/dev/null", G, gw, P))
		return -1;

	/* data and signatures */
	if (sh("head -c 100000 /dev/urandom > %s/data.bin && "
	    "printf 'date,amount\\n2026-11-22,100.00\\n' > %s/data.csv", tmp, tmp) ||
	    sh(GPG " --homedir %s -u %s! --detach-sign -o %s/data.bin.sig "
	    "%s/data.bin", P, acme_sub, tmp, tmp) ||
	    sh(GPG " --homedir %s -u %s --armor --detach-sign -o "
	    "%s/data.bin.asc %s/data.bin", P, acme, tmp, tmp) ||
	    sh(GPG " --homedir %s -u %s --sign -o %s/data.csv.gpg %s/data.csv",
	    P, acme, tmp, tmp) ||
	    sh(GPG " --homedir %s -u %s --clearsign -o %s/data.csv.asc "
	    "%s/data.csv", P, acme, tmp, tmp) ||
	    sh(GPG " --homedir %s -u %s --trust-model always -r %s --sign "
	    "--encrypt -o %s/data.bin.pgp %s/data.bin", P, acme, gw, tmp, tmp) ||
	    sh(GPG " --homedir %s --trust-model always -r %s --encrypt "
	    "-o %s/unsigned.pgp %s/data.bin", P, gw, tmp, tmp) ||
	    sh(GPG " --homedir %s --trust-model always -r m@evil.test --sign "
	    "--encrypt -o %s/to-other.pgp %s/data.bin", U, tmp, tmp) ||
	    sh(GPG " --homedir %s --faked-system-time 20200101T010000 -u %s "
	    "--detach-sign -o %s/old.sig %s/data.bin 2>/dev/null", P, old, tmp,
	    tmp) ||
	    sh(GPG " --homedir %s -u %s --detach-sign -o %s/rev.sig %s/data.bin",
	    P, rev, tmp, tmp) ||
	    sh(GPG " --homedir %s -u %s --digest-algo SHA1 --detach-sign -o "
	    "%s/weak.sig %s/data.bin", P, weak, tmp, tmp) ||
	    sh(GPG " --homedir %s -u %s --digest-algo SHA512 --detach-sign -o "
	    "%s/other.sig %s/data.bin", P, other, tmp, tmp) ||
	    sh(GPG " --homedir %s --detach-sign -o %s/unknown.sig %s/data.bin",
	    U, tmp, tmp) ||
	    sh(GPG " --homedir %s -u %s --detach-sign -o %s/other-data.sig "
	    "%s/data.csv", P, acme, tmp, tmp))
		return -1;
	/* revoke rev with the certificate gpg made */
	if (sh("sed 's/^:-----BEGIN/-----BEGIN/' %s/openpgp-revocs.d/%s.rev | "
	    GPG " --homedir %s --import 2>/dev/null", P, rev, P))
		return -1;
	/* tampered copies */
	if (sh("cp %s/data.bin %s/tampered.bin && printf 'X' | dd of=%s/tampered.bin"
	    " bs=1 seek=5000 conv=notrunc 2>/dev/null", tmp, tmp, tmp) ||
	    sh("cp %s/data.bin.sig %s/tampered.sig && printf '\\001' | dd "
	    "of=%s/tampered.sig bs=1 seek=$(( $(stat -c %%s %s/tampered.sig) - "
	    "10 )) conv=notrunc 2>/dev/null", tmp, tmp, tmp, tmp) ||
	    sh("sed 's/100.00/900.00/' %s/data.csv.asc > %s/tampered.csv.asc",
	    tmp, tmp) ||
	    sh("cp %s/data.bin.pgp %s/tampered.pgp && printf 'XXXX' | dd "
	    "of=%s/tampered.pgp bs=1 seek=50000 conv=notrunc 2>/dev/null", tmp,
	    tmp, tmp))
		return -1;
	/* the partner's keyring: its keys, not the gateway's, not Mallory's */
	if (sh(GPG " --homedir %s --export --armor %s %s %s %s %s > "
	    "%s/keyring.asc", P, acme, old, rev, weak, other, tmp))
		return -1;

	signers[0] = acme;
	signers[1] = old;
	signers[2] = rev;
	signers[3] = weak;
	memset(&partner, 0, sizeof(partner));
	partner.name = "acme";
	/* encrypted: the home gets the decryption key as well */
	partner.signature.mode = SIG_ENCRYPTED;
	partner.signature.signers = signers;
	partner.signature.nsigners = 4;
	{
		static char kr[512], dk[512];

		path_in(kr, sizeof(kr), "keyring.asc");
		path_in(dk, sizeof(dk), "gw.sec.asc");
		partner.signature.keyring = kr;
		partner.signature.decryption_key = dk;
	}
	if (verify_init() == -1)
		return -1;
	return verify_home(st, &partner, home, sizeof(home));
}

static int
teardown(void **state)
{
	(void)state;
	verify_stop_agent(home);
	verify_stop_agent(P);
	verify_stop_agent(G);
	verify_stop_agent(U);
	if (tmp[0] != '\0' && getenv("SLUICE_KEEP_TMP") == NULL)
		sh("rm -rf %s", tmp);
	return 0;
}

/* Detached check of data against sig; returns res. */
static struct verify_result
detached(const char *data, const char *sig)
{
	struct verify_result res;
	int d = open_in(data), s = open_in(sig);

	assert_true(d >= 0 && s >= 0);
	partner.signature.mode = SIG_DETACHED;
	assert_int_equal(verify_detached(home, &partner.signature, d, s, &res),
	    0);
	close(d);
	close(s);
	return res;
}

static void
test_home(void **state)
{
	struct stat sb;
	char p[4200], h2[4096], st[300];

	(void)state;
	assert_int_equal(stat(home, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(sb.st_uid, geteuid());
	assert_non_null(strstr(home, "/state/gnupg/acme"));
	snprintf(p, sizeof(p), "%s/sluice-keys.stamp", home);
	assert_int_equal(stat(p, &sb), 0);
	/* unchanged key files: no second import (the stamp is not rewritten) */
	snprintf(st, sizeof(st), "%s/state", tmp);
	{
		struct stat a;

		assert_int_equal(stat(p, &a), 0);
		assert_int_equal(verify_home(st, &partner, h2, sizeof(h2)), 0);
		assert_int_equal(stat(p, &sb), 0);
		assert_int_equal(a.st_ino, sb.st_ino);
	}
	/* a missing keyring is an operator error, not a verdict */
	{
		struct partner q = partner;
		static char bad[] = "/nonexistent/keyring.asc";

		q.name = "nokeys";
		q.signature.keyring = bad;
		assert_int_equal(verify_home(st, &q, h2, sizeof(h2)), -1);
	}
}

static void
test_good_detached(void **state)
{
	struct verify_result r;
	time_t now = time(NULL);

	(void)state;
	r = detached("data.bin", "data.bin.sig");
	assert_true(r.ok);
	/* made by the subkey, reported as the primary */
	assert_string_equal(r.signer, acme);
	assert_string_not_equal(r.signer, acme_sub);
	assert_true(r.signed_at > now - 600 && r.signed_at <= now + 5);
	r = detached("data.bin", "data.bin.asc");	/* armored */
	assert_true(r.ok);
	assert_string_equal(r.signer, acme);
	/* SHA-512 is fine, but "other" is not pinned */
	r = detached("data.bin", "other.sig");
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "not in signature.signers"));
	assert_string_equal(r.signer, other);
}

static void
test_tampered(void **state)
{
	struct verify_result r;

	(void)state;
	r = detached("tampered.bin", "data.bin.sig");
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "bad signature"));
	r = detached("data.bin", "tampered.sig");
	assert_false(r.ok);
	r = detached("data.bin", "other-data.sig");	/* over different data */
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "bad signature"));
	r = detached("data.bin", "data.csv");	/* not a signature at all */
	assert_false(r.ok);
	assert_true(r.reason[0] != '\0');
}

static void
test_unknown_expired_revoked_weak(void **state)
{
	struct verify_result r;

	(void)state;
	r = detached("data.bin", "unknown.sig");
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "unknown key"));
	r = detached("data.bin", "old.sig");
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "expired"));
	r = detached("data.bin", "rev.sig");
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "revoked"));
	r = detached("data.bin", "weak.sig");
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "SHA1"));
}

static void
test_inline(void **state)
{
	struct verify_result r;
	char plain[512];
	int fd, out;

	(void)state;
	partner.signature.mode = SIG_INLINE;
	fd = open_in("data.csv.gpg");	/* opaque */
	assert_int_equal(verify_inline(home, &partner.signature, fd, -1, &r), 0);
	close(fd);
	assert_true(r.ok);
	assert_string_equal(r.signer, acme);
	fd = open_in("data.csv.asc");	/* clearsigned, plaintext kept */
	path_in(plain, sizeof(plain), "plain.out");
	out = open(plain, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(verify_inline(home, &partner.signature, fd, out, &r), 0);
	close(fd);
	close(out);
	assert_true(r.ok);
	assert_int_equal(sh("cmp -s %s %s/data.csv", plain, tmp), 0);
	fd = open_in("tampered.csv.asc");
	assert_int_equal(verify_inline(home, &partner.signature, fd, -1, &r), 0);
	close(fd);
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "bad signature"));
	fd = open_in("data.csv");	/* not signed */
	assert_int_equal(verify_inline(home, &partner.signature, fd, -1, &r), 0);
	close(fd);
	assert_false(r.ok);
}

/*
 * gpg verifies the one signed message in a file and ignores text around an
 * armored block: such a file must be rejected, or unsigned lines would be
 * shipped as signed.
 */
static void
inline_expect(const char *name, enum signature_mode mode, int ok,
    const char *why)
{
	struct verify_result r;
	int fd;

	partner.signature.mode = mode;
	fd = open_in(name);
	if (mode == SIG_ENCRYPTED)
		assert_int_equal(verify_encrypted(home, &partner.signature, fd,
		    -1, &r), 0);
	else
		assert_int_equal(verify_inline(home, &partner.signature, fd,
		    -1, &r), 0);
	close(fd);
	if (ok) {
		assert_true(r.ok);
		return;
	}
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, why));
}

static void
test_inline_framing(void **state)
{
	(void)state;
	assert_int_equal(sh("{ printf 'amount: 999999 UNSIGNED\\n'; cat %s/data.csv.asc; } "
	    "> %s/prefixed.asc && { cat %s/data.csv.asc; printf 'trailing "
	    "UNSIGNED 1000000\\n'; } > %s/suffixed.asc && "
	    "cat %s/data.csv.asc %s/data.csv.asc > %s/twice.asc && "
	    "{ printf '\\n\\n'; cat %s/data.csv.asc; printf '\\n  \\n'; } > %s/blanks.asc && "
	    "head -c -1 %s/data.csv.asc > %s/nonewline.asc && "
	    "head -n 5 %s/data.csv.asc > %s/cut.asc",
	    tmp, tmp, tmp, tmp, tmp, tmp, tmp, tmp, tmp, tmp, tmp, tmp, tmp), 0);
	assert_int_equal(sh(GPG " --homedir %s -u %s --armor --sign -o "
	    "%s/opaque.asc %s/data.csv && { cat %s/opaque.asc; printf 'x\\n'; } "
	    "> %s/opaque-suffixed.asc && " GPG " --homedir %s -u %s "
	    "--trust-model always -r %s --armor --sign --encrypt -o %s/enc.asc "
	    "%s/data.bin && { printf 'note\\n'; cat %s/enc.asc; } > %s/enc-prefixed.asc",
	    P, acme, tmp, tmp, tmp, tmp, P, acme, gw, tmp, tmp, tmp, tmp), 0);

	inline_expect("prefixed.asc", SIG_INLINE, 0, "text before the signed message");
	inline_expect("suffixed.asc", SIG_INLINE, 0, "data after the signed message");
	inline_expect("twice.asc", SIG_INLINE, 0, "unexpected armor line");
	inline_expect("cut.asc", SIG_INLINE, 0, "not one complete armored");
	inline_expect("opaque-suffixed.asc", SIG_INLINE, 0, "data after the signed message");
	inline_expect("enc-prefixed.asc", SIG_ENCRYPTED, 0, "text before the signed message");
	/* blank lines around the block and a missing last newline are fine */
	inline_expect("blanks.asc", SIG_INLINE, 1, NULL);
	inline_expect("nonewline.asc", SIG_INLINE, 1, NULL);
	inline_expect("opaque.asc", SIG_INLINE, 1, NULL);
	inline_expect("enc.asc", SIG_ENCRYPTED, 1, NULL);
}

static void
test_encrypted(void **state)
{
	struct verify_result r;
	char plain[512], sock[8192];
	struct stat sb;
	int fd, out;

	(void)state;
	partner.signature.mode = SIG_ENCRYPTED;
	path_in(plain, sizeof(plain), "dec.out");
	fd = open_in("data.bin.pgp");
	out = open(plain, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(verify_encrypted(home, &partner.signature, fd, out, &r),
	    0);
	close(fd);
	close(out);
	assert_true(r.ok);
	assert_string_equal(r.signer, acme);
	assert_int_equal(sh("cmp -s %s %s/data.bin", plain, tmp), 0);

	fd = open_in("tampered.pgp");
	assert_int_equal(verify_encrypted(home, &partner.signature, fd, -1, &r),
	    0);
	close(fd);
	assert_false(r.ok);
	fd = open_in("unsigned.pgp");
	assert_int_equal(verify_encrypted(home, &partner.signature, fd, -1, &r),
	    0);
	close(fd);
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "not signed"));
	fd = open_in("data.csv.gpg");	/* signed, not encrypted */
	assert_int_equal(verify_encrypted(home, &partner.signature, fd, -1, &r),
	    0);
	close(fd);
	assert_false(r.ok);
	fd = open_in("to-other.pgp");	/* encrypted to someone else */
	assert_int_equal(verify_encrypted(home, &partner.signature, fd, -1, &r),
	    0);
	close(fd);
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "decrypt"));

	/* the agent of the home goes away when asked */
	snprintf(sock, sizeof(sock), "gpgconf --homedir %s --list-dirs "
	    "agent-socket > %s/sockpath", home, tmp);
	assert_int_equal(system(sock), 0);
	verify_stop_agent(home);
	{
		FILE *f;
		char sp[4096];

		snprintf(sock, sizeof(sock), "%s/sockpath", tmp);
		f = fopen(sock, "r");
		assert_non_null(f);
		assert_non_null(fgets(sp, sizeof(sp), f));
		fclose(f);
		sp[strcspn(sp, "\n")] = '\0';
		/* the agent removes its socket as it exits */
		for (int i = 0; i < 50 && stat(sp, &sb) == 0; i++)
			usleep(100000);
		assert_int_not_equal(stat(sp, &sb), 0);
	}
}

/* Memory stays flat: 1 GiB through the verifier grows our RSS by far less
 * than 16 MiB (gpgme_data_new_from_file would load it all). */
static void
test_streaming(void **state)
{
	struct verify_result r;
	struct rusage ru0, ru1;
	int d, s;

	(void)state;
	assert_int_equal(sh("head -c 1073741824 /dev/zero > %s/big.bin && "
	    GPG " --homedir %s -u %s --detach-sign -o %s/big.bin.sig "
	    "%s/big.bin", tmp, P, acme, tmp, tmp), 0);
	getrusage(RUSAGE_SELF, &ru0);
	d = open_in("big.bin");
	s = open_in("big.bin.sig");
	partner.signature.mode = SIG_DETACHED;
	assert_int_equal(verify_detached(home, &partner.signature, d, s, &r), 0);
	close(d);
	close(s);
	getrusage(RUSAGE_SELF, &ru1);
	assert_true(r.ok);
#ifndef __SANITIZE_ADDRESS__
	{
		/* gpg and the verifying child (the largest of the children
		 * waited for) stay small too */
		struct rusage rc;

		getrusage(RUSAGE_CHILDREN, &rc);
		assert_true(rc.ru_maxrss < 64 * 1024);
	}
#endif
	/* ru_maxrss is in KiB. ASan's allocator keeps freed chunks in
	 * quarantine (about 46 MiB here): still far below the 1 GiB that
	 * loading the file would take. */
#ifdef __SANITIZE_ADDRESS__
	assert_true(ru1.ru_maxrss - ru0.ru_maxrss < 128 * 1024);
#else
	assert_true(ru1.ru_maxrss - ru0.ru_maxrss < 16 * 1024);
#endif
	/* one trailing byte after 1 GiB is still caught */
	assert_int_equal(sh("printf X >> %s/big.bin", tmp), 0);
	d = open_in("big.bin");
	s = open_in("big.bin.sig");
	assert_int_equal(verify_detached(home, &partner.signature, d, s, &r), 0);
	close(d);
	close(s);
	assert_false(r.ok);
	sh("rm -f %s/big.bin", tmp);
}

/*
 * Bounded work: a signed (and a signed+encrypted) message holding 64 MiB of
 * zeros, compressed by gpg to about 64 KiB, is stopped at the plaintext
 * bound, max(64 x its size, 1 MiB), and rejected; a bound set by the caller
 * (verify_set_limits) and server.max_file_size apply; past the time bound
 * it is rejected too.
 */
static void
test_bomb(void **state)
{
	struct verify_limits vl;
	struct verify_result r;
	struct stat sb, pb;
	char plain[512], want[128];
	int fd, out;

	(void)state;
	assert_int_equal(sh("head -c 67108864 /dev/zero | " GPG " --homedir %s "
	    "-u %s --compress-algo zlib --sign -o %s/bomb.gpg", P, acme, tmp),
	    0);
	assert_int_equal(sh("head -c 67108864 /dev/zero | " GPG " --homedir %s "
	    "-u %s --trust-model always -r %s --compress-algo zlib --sign "
	    "--encrypt -o %s/bomb.pgp", P, acme, gw, tmp), 0);
	memset(&vl, 0, sizeof(vl));
	verify_set_limits(&vl);

	/* inline, plaintext discarded: the default bound */
	partner.signature.mode = SIG_INLINE;
	fd = open_in("bomb.gpg");
	assert_int_equal(fstat(fd, &sb), 0);
	assert_true(sb.st_size * 64 < 67108864);	/* else no bomb */
	assert_int_equal(verify_inline(home, &partner.signature, fd, -1, &r), 0);
	close(fd);
	assert_false(r.ok);
	snprintf(want, sizeof(want), "decompressed data over %lld bytes: "
	    "possible compression bomb", (long long)(sb.st_size * 64 <
	    1048576 ? 1048576 : sb.st_size * 64));
	assert_string_equal(r.reason, want);

	/* encrypted, plaintext kept: the file stops at the bound */
	partner.signature.mode = SIG_ENCRYPTED;
	path_in(plain, sizeof(plain), "bomb.out");
	fd = open_in("bomb.pgp");
	assert_int_equal(fstat(fd, &sb), 0);
	out = open(plain, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(out >= 0);
	assert_int_equal(verify_encrypted(home, &partner.signature, fd, out,
	    &r), 0);
	close(fd);
	close(out);
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "possible compression bomb"));
	assert_int_equal(stat(plain, &pb), 0);
	assert_true(pb.st_size <= (sb.st_size * 64 < 1048576 ? 1048576 :
	    sb.st_size * 64));

	/* a bound set by the caller; the same file within it is fine */
	vl.max_plain = 50000;
	verify_set_limits(&vl);
	fd = open_in("data.bin.pgp");	/* 100000 bytes of plaintext */
	assert_int_equal(verify_encrypted(home, &partner.signature, fd, -1,
	    &r), 0);
	close(fd);
	assert_false(r.ok);
	assert_string_equal(r.reason, "decompressed data over 50000 bytes: "
	    "possible compression bomb");
	vl.max_plain = 100000;
	verify_set_limits(&vl);
	fd = open_in("data.bin.pgp");
	assert_int_equal(verify_encrypted(home, &partner.signature, fd, -1,
	    &r), 0);
	close(fd);
	assert_true(r.ok);

	/* server.max_file_size lowers the default bound */
	memset(&vl, 0, sizeof(vl));
	vl.max_file_size = 99999;
	verify_set_limits(&vl);
	fd = open_in("data.bin.pgp");
	assert_int_equal(verify_encrypted(home, &partner.signature, fd, -1,
	    &r), 0);
	close(fd);
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "over 99999 bytes"));

	/* the time bound: 64 MiB cannot come out within a millisecond */
	memset(&vl, 0, sizeof(vl));
	vl.max_plain = (int64_t)1 << 40;
	vl.max_ms = 1;
	verify_set_limits(&vl);
	partner.signature.mode = SIG_INLINE;
	fd = open_in("bomb.gpg");
	assert_int_equal(verify_inline(home, &partner.signature, fd, -1, &r), 0);
	close(fd);
	assert_false(r.ok);
	assert_string_equal(r.reason, "verification took over 1 s: possible "
	    "compression bomb or endless stream");

	/* with a high enough bound the bomb is only a big signed file */
	vl.max_ms = 0;
	verify_set_limits(&vl);
	fd = open_in("bomb.gpg");
	assert_int_equal(verify_inline(home, &partner.signature, fd, -1, &r), 0);
	close(fd);
	assert_true(r.ok);

	memset(&vl, 0, sizeof(vl));
	verify_set_limits(&vl);
}

/*
 * wrong_key_usage: a key signs, then its usage flags are changed to
 * certify-only (gpg --expert --edit-key: change-usage); the signature made
 * before must not count.
 */
static void
test_wrong_key_usage(void **state)
{
	static char kr[512], fpr[41];
	static char *pin[1];
	struct verify_result r;
	struct partner q;
	char W[300], st[300], h2[4096];
	int d, s;

	(void)state;
	snprintf(W, sizeof(W), "%s/w", tmp);
	snprintf(st, sizeof(st), "%s/state", tmp);
	assert_int_equal(mkdir(W, 0700), 0);
	assert_int_equal(sh(GPG " --homedir %s --quick-gen-key 'Usage "
	    "<usage@acme.test>' ed25519 sign never 2>/dev/null", W), 0);
	assert_int_equal(fpr_of(W, "usage@acme.test", 0, fpr), 0);
	assert_int_equal(sh(GPG " --homedir %s -u %s --detach-sign -o "
	    "%s/usage.sig %s/data.bin", W, fpr, tmp, tmp), 0);
	assert_int_equal(sh("printf 'change-usage\nS\nQ\nsave\n' | " GPG
	    " --homedir %s --expert --command-fd 0 --edit-key %s >/dev/null "
	    "2>&1", W, fpr), 0);
	assert_int_equal(sh("gpg --homedir %s --with-colons --list-keys %s | "
	    "grep -q '^pub:.*:cC:'", W, fpr), 0);	/* no 's' any more */
	path_in(kr, sizeof(kr), "usage.asc");
	assert_int_equal(sh(GPG " --homedir %s --export --armor %s > %s", W,
	    fpr, kr), 0);

	memset(&q, 0, sizeof(q));
	q.name = "usage";
	q.signature.mode = SIG_DETACHED;
	pin[0] = fpr;
	q.signature.signers = pin;
	q.signature.nsigners = 1;
	q.signature.keyring = kr;
	assert_int_equal(verify_home(st, &q, h2, sizeof(h2)), 0);
	d = open_in("data.bin");
	s = open_in("usage.sig");
	assert_true(d >= 0 && s >= 0);
	assert_int_equal(verify_detached(h2, &q.signature, d, s, &r), 0);
	close(d);
	close(s);
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "not a signing key"));
	verify_stop_agent(W);
	verify_stop_agent(h2);
}

/* --- the verifying child: limits, size cap, wall clock ---------------- */

/*
 * A fake gpg for gpgme: answers --version like gpg 2.2.40, then runs body
 * (a shell fragment; $T is the test's directory). Its path in out.
 */
static void
fake_gpg(const char *name, const char *body, char *out, size_t len)
{
	FILE *f;

	assert_int_equal(path_in(out, len, name), 0);
	f = fopen(out, "w");
	assert_non_null(f);
	/* gpgme hands the data over as "-&N" arguments (bash: dash takes no
	 * fd over 9); gpgme spins (100% CPU)
	 * on a pipe whose reader left early, so the fake reads them all */
	fprintf(f, "#!/bin/bash\nT=%s\nfor a; do [ \"$a\" = --version ] && {\n"
	    "echo 'gpg (GnuPG) 2.2.40'; echo 'libgcrypt 1.10.1'; exit 0; }; "
	    "done\nA=\"$*\"\n"
	    "drain() { for a in $A; do case $a in -\\&*) n=${a#-&}; "
	    "eval \"cat <&$n\" >/dev/null;; esac; done; }\n%s\n", tmp, body);
	fclose(f);
	assert_int_equal(chmod(out, 0755), 0);
}

/* pid is gone or a zombie within 5 s. */
static int
gone(pid_t pid)
{
	char p[64], buf[512], *rp;
	int i, fd;
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	for (i = 0; i < 50; i++) {
		if ((fd = open(p, O_RDONLY)) == -1)
			return 1;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[n > 0 ? n : 0] = '\0';
		if ((rp = strrchr(buf, ')')) != NULL && rp[1] == ' ' &&
		    rp[2] == 'Z')
			return 1;
		usleep(100000);
	}
	return 0;
}

static pid_t
read_pid(const char *name)
{
	char p[512], buf[64];
	FILE *f;
	pid_t pid = -1;

	path_in(p, sizeof(p), name);
	if ((f = fopen(p, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) != NULL)
		pid = (pid_t)strtol(buf, NULL, 10);
	fclose(f);
	return pid;
}

/* A detached signature over VERIFY_MAX_SIG is rejected, and gpg never runs
 * (a fake gpg leaves a mark when it is run for anything but --version). */
static void
test_sig_cap(void **state)
{
	struct verify_limits vl;
	struct verify_result r;
	char fake[512];
	int d, s;

	(void)state;
	assert_int_equal(sh("{ cat %s/data.bin.sig; head -c %d /dev/zero; } > "
	    "%s/huge.sig && rm -f %s/ran", tmp, VERIFY_MAX_SIG, tmp, tmp), 0);
	fake_gpg("mark-gpg", "touch $T/ran; drain; exit 2", fake, sizeof(fake));
	memset(&vl, 0, sizeof(vl));
	vl.gpg = fake;
	verify_set_limits(&vl);
	partner.signature.mode = SIG_DETACHED;
	d = open_in("data.bin");
	s = open_in("huge.sig");
	assert_int_equal(verify_detached(home, &partner.signature, d, s, &r), 0);
	assert_false(r.ok);
	{
		struct stat sb;
		char want[200];

		assert_int_equal(fstat(s, &sb), 0);
		snprintf(want, sizeof(want), "the signature file is %lld "
		    "bytes, over the 1048576 bytes a detached signature may "
		    "have", (long long)sb.st_size);
		assert_string_equal(r.reason, want);
	}
	{
		char ran[512];
		struct stat sb;

		path_in(ran, sizeof(ran), "ran");
		assert_int_equal(stat(ran, &sb), -1);
	}
	/* the fake does run for a signature within the cap */
	close(s);
	s = open_in("data.bin.sig");
	assert_int_equal(verify_detached(home, &partner.signature, d, s, &r), 0);
	assert_false(r.ok);
	assert_int_equal(sh("test -e %s/ran", tmp), 0);
	close(d);
	close(s);
	memset(&vl, 0, sizeof(vl));
	verify_set_limits(&vl);
	r = detached("data.bin", "data.bin.sig");	/* the real gpg again */
	assert_true(r.ok);
}

/*
 * A gpg that hangs is killed with its process group once signature.timeout
 * (+ the grace) is over, and the file gets a verdict that says so.
 */
static void
test_timeout(void **state)
{
	struct verify_limits vl;
	struct verify_result r;
	char fake[512];
	int64_t t0, ms;
	pid_t pid;
	int d, s;

	(void)state;
	fake_gpg("slow-gpg", "echo $$ > $T/slow.pid; exec sleep 3600", fake,
	    sizeof(fake));
	memset(&vl, 0, sizeof(vl));
	vl.gpg = fake;
	verify_set_limits(&vl);
	partner.signature.mode = SIG_DETACHED;
	partner.signature.timeout_s = 1;
	d = open_in("data.bin");
	s = open_in("data.bin.sig");
	t0 = mono_ms();
	assert_int_equal(verify_detached(home, &partner.signature, d, s, &r), 0);
	ms = mono_ms() - t0;
	close(d);
	close(s);
	assert_false(r.ok);
	assert_string_equal(r.reason, "signature verification exceeded 1 s "
	    "(signature.timeout); gpg was stopped");
	assert_true(ms >= 1000 + VERIFY_KILL_GRACE_MS - 50);
	assert_true(ms < 1000 + VERIFY_KILL_GRACE_MS + 5000);
	pid = read_pid("slow.pid");
	assert_true(pid > 0);
	assert_true(gone(pid));		/* gpg went with the child */

	/* encrypted mode too (the agent of the home is stopped as well) */
	partner.signature.mode = SIG_ENCRYPTED;
	d = open_in("data.bin.pgp");
	assert_int_equal(verify_encrypted(home, &partner.signature, d, -1, &r),
	    0);
	close(d);
	assert_false(r.ok);
	assert_non_null(strstr(r.reason, "exceeded 1 s (signature.timeout)"));
	assert_true(gone(read_pid("slow.pid")));

	/* shutting down (the caller's quit flag): no verdict, gpg killed */
	{
		static volatile int quit;

		quit = 1;
		vl.quit = &quit;
		vl.gpg = fake;
		verify_set_limits(&vl);
		partner.signature.mode = SIG_DETACHED;
		partner.signature.timeout_s = 60;
		d = open_in("data.bin");
		s = open_in("data.bin.sig");
		t0 = mono_ms();
		assert_int_equal(verify_detached(home, &partner.signature, d,
		    s, &r), -1);
		assert_true(mono_ms() - t0 < 10000);
		close(d);
		close(s);
	}

	partner.signature.timeout_s = 0;
	memset(&vl, 0, sizeof(vl));
	verify_set_limits(&vl);
}

/*
 * What gpg runs with: its own process group (the child's), the limits, and
 * none of the caller's environment.
 */
static void
test_child_limits(void **state)
{
	struct verify_limits vl;
	struct verify_result r;
	char fake[512], p[512], line[256];
	long v;
	FILE *f;
	int d, s, n = 0;

	(void)state;
	fake_gpg("probe-gpg", "{ ulimit -v; ulimit -t; ulimit -c; ulimit -f; "
	    "set -- $(sed 's/.*) //' /proc/$$/stat); echo \"$2 $3\"; "
	    "env | grep -c SECRET_ACCESS; } > $T/probe.out 2>&1; drain; "
	    "exit 2",
	    fake, sizeof(fake));
	setenv("AWS_SECRET_ACCESS_KEY", "not-for-gpg", 1);
	memset(&vl, 0, sizeof(vl));
	vl.gpg = fake;
	vl.max_as = (int64_t)300 << 20;
	verify_set_limits(&vl);
	partner.signature.mode = SIG_DETACHED;
	partner.signature.timeout_s = 30;
	d = open_in("data.bin");
	s = open_in("data.bin.sig");
	/* a verdict or a failure, whatever gpgme makes of it */
	(void)verify_detached(home, &partner.signature, d, s, &r);
	close(d);
	close(s);
	unsetenv("AWS_SECRET_ACCESS_KEY");
	partner.signature.timeout_s = 0;
	memset(&vl, 0, sizeof(vl));
	verify_set_limits(&vl);

	path_in(p, sizeof(p), "probe.out");
	f = fopen(p, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		switch (n++) {
		case 0:		/* RLIMIT_AS, KiB */
#ifdef __SANITIZE_ADDRESS__
			(void)v;
#else
			v = strtol(line, NULL, 10);
			assert_int_equal(v, 300 * 1024);
#endif
			break;
		case 1:		/* RLIMIT_CPU: the time bound + 1 s */
			assert_string_equal(line, "31");
			break;
		case 2:
			assert_string_equal(line, "0");
			break;
		case 3:		/* RLIMIT_FSIZE, KiB (bash): 1 MiB */
			assert_string_equal(line, "1024");
			break;
		case 4: {	/* ppid pgrp: the child's group, not ours
				 * (gpgme double-forks: init is the parent) */
			long pp, pg;

			assert_int_equal(sscanf(line, "%ld %ld", &pp, &pg), 2);
			assert_true(pg > 1);
			assert_int_not_equal(pg, (long)getpgrp());
			break;
		}
		case 5:
			assert_string_equal(line, "0");
			break;
		}
	}
	fclose(f);
	assert_int_equal(n, 6);
}

/* RLIMIT_AS stops a gpg that wants 2 GiB. */
static void
test_memory_bomb(void **state)
{
#ifdef __SANITIZE_ADDRESS__
	(void)state;
	skip();
#else
	struct verify_limits vl;
	struct verify_result r;
	char fake[512];
	int d, s;

	(void)state;
	fake_gpg("bomb-gpg", "/usr/bin/python3 -c 'bytearray(2 << 30)' "
	    "2>/dev/null; echo $? > $T/bomb.rc; drain; exit 2", fake, sizeof(fake));
	memset(&vl, 0, sizeof(vl));
	vl.gpg = fake;
	verify_set_limits(&vl);
	partner.signature.mode = SIG_DETACHED;
	d = open_in("data.bin");
	s = open_in("data.bin.sig");
	(void)verify_detached(home, &partner.signature, d, s, &r);
	close(d);
	close(s);
	memset(&vl, 0, sizeof(vl));
	verify_set_limits(&vl);
	assert_false(r.ok);
	assert_int_equal(sh("grep -qx 1 %s/bomb.rc", tmp), 0);	/* MemoryError */
	/* and the same allocation works without the limit */
	assert_int_equal(sh("/usr/bin/python3 -c 'bytearray(2 << 30)'"), 0);
#endif
}

/*
 * Several at once: a hung verification does not hold up another one
 * started after it (verify_start / verify_wait), and verify_cancel kills it.
 */
static void
test_concurrent(void **state)
{
	struct verify_limits vl;
	struct verify_result r;
	struct verify_job *slow, *fast;
	struct pollfd pfd;
	char fake[512];
	int64_t t0;
	pid_t pid;
	int d1, s1, d2, s2;

	(void)state;
	fake_gpg("slow-gpg", "echo $$ > $T/slow.pid; exec sleep 3600", fake,
	    sizeof(fake));
	unlink("slow.pid");
	memset(&vl, 0, sizeof(vl));
	vl.gpg = fake;
	verify_set_limits(&vl);		/* the child takes it at fork */
	partner.signature.mode = SIG_DETACHED;
	d1 = open_in("data.bin");
	s1 = open_in("data.bin.sig");
	assert_int_equal(verify_start(home, &partner.signature,
	    VERIFY_DETACHED, d1, s1, -1, &slow), 0);
	memset(&vl, 0, sizeof(vl));
	verify_set_limits(&vl);
	d2 = open_in("data.bin");
	s2 = open_in("data.bin.asc");
	t0 = mono_ms();
	assert_int_equal(verify_start(home, &partner.signature,
	    VERIFY_DETACHED, d2, s2, -1, &fast), 0);
	assert_true(verify_job_deadline(fast) > t0 + 100 * 1000);
	pfd.fd = verify_job_fd(fast);
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 60000), 1);
	assert_int_equal(verify_wait(fast, 0, &r), 0);
	assert_true(r.ok);
	assert_string_equal(r.signer, acme);
	/* the slow one is still at it */
	assert_int_equal(verify_wait(slow, 0, &r), 1);
	for (int i = 0; i < 50 && (pid = read_pid("slow.pid")) <= 0; i++)
		usleep(100000);
	assert_true(pid > 0);
	verify_cancel(slow);
	assert_true(gone(pid));
	close(d1);
	close(s1);
	close(d2);
	close(s2);
}

/*
 * Collected late: a job that answered within its time but whose caller
 * came back only after the deadline (the intake busy with another
 * partner's files) gives its verdict; it is not "exceeded".
 */
static void
test_late_collect(void **state)
{
	struct verify_limits vl;
	struct verify_result r;
	struct verify_job *j;
	struct pollfd pfd;
	int64_t left;
	int d, s;

	(void)state;
	memset(&vl, 0, sizeof(vl));
	verify_set_limits(&vl);
	partner.signature.mode = SIG_DETACHED;
	partner.signature.timeout_s = 1;
	d = open_in("data.bin");
	s = open_in("data.bin.sig");
	assert_int_equal(verify_start(home, &partner.signature,
	    VERIFY_DETACHED, d, s, -1, &j), 0);
	pfd.fd = verify_job_fd(j);
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 60000), 1);	/* it answered */
	left = verify_job_deadline(j) - mono_ms();
	if (left > 0)
		usleep((useconds_t)(left + 200) * 1000);
	assert_true(mono_ms() > verify_job_deadline(j));
	assert_int_equal(verify_wait(j, 0, &r), 0);
	assert_true(r.ok);
	assert_null(strstr(r.reason, "exceeded"));
	assert_string_equal(r.signer, acme);
	partner.signature.timeout_s = 0;
	close(d);
	close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_home),
		cmocka_unit_test(test_good_detached),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_unknown_expired_revoked_weak),
		cmocka_unit_test(test_inline),
		cmocka_unit_test(test_inline_framing),
		cmocka_unit_test(test_encrypted),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_bomb),
		cmocka_unit_test(test_wrong_key_usage),
		cmocka_unit_test(test_sig_cap),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_child_limits),
		cmocka_unit_test(test_memory_bomb),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_late_collect),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
