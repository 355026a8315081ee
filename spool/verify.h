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
 * Bounds on one inline or encrypted verification, against a compression
 * bomb or a message that decompresses for ever. The plaintext gpg produces
 * (written to plain_fd or discarded) may reach max(64 x the message's size,
 * 1 MiB), and never more than max_file_size when that is > 0; one
 * verification may last max(10 min, 1 s per 4 MiB of message). Beyond
 * either, gpg is stopped and the file rejected ("decompressed data over N
 * bytes: possible compression bomb"; "verification took over N s"). Both are
 * checked as gpg writes plaintext. max_plain and max_ms, when > 0, replace
 * the computed bounds (tests). A detached signature produces no plaintext:
 * its work is bounded by the data file's size. Per process; the intake sets
 * max_file_size from server.max_file_size.
 */
struct verify_limits {
	int64_t	 max_file_size;	/* bytes; 0: no such bound */
	int64_t	 max_plain;	/* > 0: the plaintext bound, bytes */
	int64_t	 max_ms;	/* > 0: the time bound, milliseconds */
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
