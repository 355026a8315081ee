/*
 * verify.h - OpenPGP verification for the intake role (gpgme 1.18).
 *
 * Each partner gets its own GNUPGHOME, state_dir/gnupg/<partner> (0700,
 * owned by the service user), holding only that partner's public keys
 * (signature.keyring) and, in encrypted mode, the gateway's decryption key
 * (signature.decryption_key, which must have no passphrase). Nothing reads
 * ~/.gnupg. verify_home() (re)imports the key files whenever their size or
 * mtime changes, so a revocation added to the keyring takes effect.
 *
 * The verdict never trusts a return code: gpgme returns success for bad
 * signatures. A file is accepted only if it carries at least one signature
 * and EVERY signature on it is good (status GPG_ERR_NO_ERROR, no RED /
 * KEY_REVOKED / KEY_EXPIRED / SIG_EXPIRED / KEY_MISSING / BAD_POLICY /
 * SYS_ERROR summary bit, not wrong_key_usage, a SHA-224/256/384/512 digest)
 * and was made by a key whose PRIMARY fingerprint (looked up with
 * gpgme_get_key from the signing subkey) is in signature.signers. Owner
 * trust is not used (summary never has VALID without it).
 *
 * Data is streamed through gpgme_data_new_from_fd and a discarding sink, so
 * memory stays flat for multi-GiB files. Plaintext (inline and encrypted
 * modes) goes to the caller's plain_fd, or is discarded when it is -1.
 *
 * Return values: 0 when a verdict was reached (res->ok says which; res->reason
 * says why not), -1 when the check itself could not run (gpg missing, out of
 * memory, agent failure: logged; try again later, decide nothing).
 *
 * Ownership: callers own every buffer and descriptor; the fds are read from
 * offset 0 and left open.
 */
#ifndef SLUICE_VERIFY_H
#define SLUICE_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "policy/config.h"

struct verify_result {
	int	 ok;		/* 1: good signature(s) by pinned signer(s) */
	char	 signer[41];	/* primary fingerprint, upper-case hex, when known */
	int64_t	 signed_at;	/* seconds since the epoch, when known */
	char	 reason[512];	/* why not ok */
};

/*
 * Every verification runs in a child process of the caller (fork, no exec),
 * which becomes its own process group, sets the limits below, clears its
 * environment, makes its gpgme context after the fork and sends back one
 * fixed-size result over a pipe; the caller checks that result like any
 * untrusted input. gpg (and a gpg-agent it starts) inherit the limits.
 *
 * The time bound of one verification is max(signature.timeout (default
 * 2 min), 1 s per 4 MiB of the file gpg reads). The child stops gpg itself
 * when gpg is still writing plaintext past it ("verification took over
 * N s: possible compression bomb or endless stream"); VERIFY_KILL_GRACE_MS
 * later the caller kills the child's whole process group, gpg included
 * ("signature verification exceeded N s (signature.timeout)"), and in
 * encrypted mode stops the home's gpg-agent. The child's CPU time is capped
 * at the same bound (RLIMIT_CPU), its address space at VERIFY_MAX_AS
 * (RLIMIT_AS; not under ASan, whose shadow memory needs terabytes), the
 * files it may write at the plaintext bound + 1 MiB (RLIMIT_FSIZE), no core.
 *
 * The plaintext gpg produces (written to plain_fd or discarded) may reach
 * max(64 x the message's size, 1 MiB), and never more than max_file_size
 * when that is > 0 ("decompressed data over N bytes: possible compression
 * bomb"). A detached signature over VERIFY_MAX_SIG bytes is rejected
 * without running gpg. max_plain and max_ms, when > 0, replace the computed
 * bounds (tests); gpg, when not NULL, is the program gpgme runs instead of
 * the gpg it found (tests: a fake that sleeps or eats memory). Per process;
 * the intake sets max_file_size from server.max_file_size.
 */
#define VERIFY_MAX_SIG		(1 << 20)	/* a detached signature: bytes */
#define VERIFY_MAX_AS		((int64_t)1 << 30) /* the child, gpg: bytes */
#define VERIFY_KILL_GRACE_MS	2000
#define VERIFY_DEFAULT_TIMEOUT_S 120

struct verify_limits {
	int64_t	 max_file_size;	/* bytes; 0: no such bound */
	int64_t	 max_plain;	/* > 0: the plaintext bound, bytes */
	int64_t	 max_ms;	/* > 0: the time bound, milliseconds */
	int64_t	 max_as;	/* > 0: replaces VERIFY_MAX_AS (tests) */
	const char *gpg;	/* tests: the gpg program; NULL: the real one */
	const volatile int *quit; /* not NULL: a blocking wait gives up (kills
				   * the child, returns -1) once *quit != 0 */
};
void verify_set_limits(const struct verify_limits *);

/* Once per process, before any fork of gpg: checks gpgme and gpg. 0 or -1 (logged). */
int verify_init(void);

/*
 * Prepares state_dir/gnupg/<partner> for p and writes its path to home.
 * Imports p->signature.keyring and (encrypted mode) decryption_key when they
 * changed; checks that every pinned signer is in the keyring (a warning
 * naming the fingerprint if not). 0, or -1 with an operator message logged
 * (then no file of this partner can be judged yet).
 */
int verify_home(const char *state_dir, const struct partner *p, char *home,
    size_t homelen);

/*
 * The synchronous calls below start one verification (verify_start) and
 * wait for it (verify_wait). A caller that judges several partners at once
 * uses the pair directly: start one job per partner, poll() their
 * verify_job_fd() for POLLIN with a timeout no later than the earliest
 * verify_job_deadline(), and call verify_wait(j, 0, res) on each that is
 * readable or past its deadline. fd, sig_fd and plain_fd must stay open
 * until the job is collected (the child reads and writes them).
 */
enum verify_op { VERIFY_DETACHED, VERIFY_INLINE, VERIFY_ENCRYPTED };
struct verify_job;

/*
 * Starts one verification of op in a child. 0 with *jp set (owned by the
 * caller until verify_wait returns 0 or -1, or verify_cancel), -1 when no
 * child could be started (logged; try again later). A verdict reached
 * without gpg (a signature over VERIFY_MAX_SIG) still yields a job, already
 * decided (its fd is -1).
 */
int verify_start(const char *home, const struct signature_config *sc,
    enum verify_op op, int fd, int sig_fd, int plain_fd,
    struct verify_job **jp);
/* The pipe to poll for POLLIN (the child's answer or its end); -1 when the
 * job was decided without a child. */
int verify_job_fd(const struct verify_job *j);
/* mono_ms() after which the job's child is killed. */
int64_t verify_job_deadline(const struct verify_job *j);
/*
 * Collects j: block 1 waits until the child answers or its deadline (then
 * kills it); block 0 returns 1 at once when the child has not answered and
 * its deadline has not passed. Otherwise frees j and returns as the
 * verify_* calls do: 0 with res filled, or -1 (logged).
 */
int verify_wait(struct verify_job *j, int block, struct verify_result *res);
/* Kills j's child and its process group, reaps it, frees j. */
void verify_cancel(struct verify_job *j);

/* Detached: sig_fd holds NAME.sig / NAME.asc, data_fd holds NAME. */
int verify_detached(const char *home, const struct signature_config *sc,
    int data_fd, int sig_fd, struct verify_result *res);
/* Inline: an opaque-signed or clearsigned message. */
int verify_inline(const char *home, const struct signature_config *sc,
    int fd, int plain_fd, struct verify_result *res);
/* Encrypted: sign-then-encrypt to the gateway's key (decrypt_verify). */
int verify_encrypted(const char *home, const struct signature_config *sc,
    int fd, int plain_fd, struct verify_result *res);

/* Stops the gpg-agent of home (gpgconf --homedir home --kill all). */
void verify_stop_agent(const char *home);

/* Seconds since the epoch as "2026-11-22T02:52:13Z"; buf >= 21. */
void verify_time_text(int64_t t, char *buf, size_t len);

#endif
