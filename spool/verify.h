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
