/*
 * pgpsign.h - signing with the gateway's own OpenPGP key (gpgme), for the
 * two roles that sign: the intake (delivery receipts, receipts.sign_with;
 * spool/delivery.h) and the audit writer (sealed segments,
 * audit.sign_with; audit/audit.h). One way to import the key and check it.
 *
 * The key comes from a file (receipts.keyring or audit.keyring: an armored
 * secret key without passphrase, 0600, owned by the service user) and is
 * imported into a private GnuPG home beneath state_dir (spool/layout.h:
 * SPOOL_SIGNING gnupg/_receipts, SPOOL_AUDIT_SIGNING gnupg/_audit; 0700)
 * when the file changed since the last import (its size, mtime and inode
 * are kept in <home>/sluice-keys.stamp). The fingerprint must name a
 * primary key that can sign; it becomes the context's only signer.
 *
 * Ownership: every pointer argument is borrowed; a struct pgp_signer is the
 * caller's from pgp_signer_open until pgp_signer_close; signatures returned
 * in *out are malloc'd (the caller frees them).
 */
#ifndef SLUICE_PGPSIGN_H
#define SLUICE_PGPSIGN_H

#include <stddef.h>

#include "spool/layout.h"

struct pgp_signer_conf {
	const char	*what;		/* the config block, for messages:
					   "receipts" or "audit" */
	enum spool_dir	 home;		/* SPOOL_SIGNING or SPOOL_AUDIT_SIGNING */
	const char	*sign_with;	/* 40 hex digits (upper case) */
	const char	*keyring;	/* the armored secret key file */
};

/*
 * The home made and the keyring imported (when it changed), the key found
 * and able to sign. NULL with an operator message logged (naming
 * <what>.sign_with / <what>.keyring and the fix).
 */
struct pgp_signer;
struct pgp_signer *pgp_signer_open(const char *state_dir,
    const struct pgp_signer_conf *);
/* text (a C string) clearsigned, armored, into *out. 0 or -1 (logged). */
int pgp_sign_clear(struct pgp_signer *, const char *text, char **out,
    size_t *outlen);
/*
 * A detached armored signature over the whole file open on fd (read from
 * offset 0, binary: `gpg --verify FILE.sig FILE` checks it) into *out.
 * 0, or -1 with a reason for the log in err.
 */
int pgp_sign_detached_fd(struct pgp_signer *, int fd, char **out,
    size_t *outlen, char *err, size_t errlen);
/* Stops the home's gpg-agent and frees. NULL is a no-op. */
void pgp_signer_close(struct pgp_signer *);

#endif
