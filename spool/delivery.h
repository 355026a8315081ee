/*
 * delivery.h - delivery receipts to partners (issue 11): for each file's
 * final verdict, stored or rejected, a small JSON document the partner
 * fetches over SFTP from its receipts folder, proof of delivery as an AS2
 * MDN gives it. (Not spool/receipt.h, which is the session's hand-off
 * record to the intake.)
 *
 * Where: <partner root>/<receipts.dir>/<fid>-<name>.json, or .json.asc when
 * signed, where <name> is the last component of the file's path (cut at a
 * UTF-8 boundary so the whole name stays within 255 bytes). The fid is unique
 * per upload, so a name uploaded twice gets two receipts and no receipt is
 * ever replaced by another file's; the full path is inside. The folder and
 * its files belong to the service user with the session group (2750, 0640:
 * spool/layout.h), and the SFTP engine refuses every change there
 * (sftp_params.receipts_dir), so the partner reads and never writes them.
 *
 * What: one JSON object (keys in this order; null where a value does not
 * apply, e.g. the store's fields of a rejected file):
 *   receipt "sluice-delivery-receipt/1", partner, path, size, sha256,
 *   verdict "stored"|"rejected", rule, reason, signer, signed_at,
 *   received_at, stored_at, bucket, key, version_id, etag, fid (what
 *   `sluice audit trace` takes), gateway (host name), created_at.
 * Times are RFC 3339 UTC with milliseconds.
 *
 * Signed: with receipts.sign_with set, the JSON is clearsigned (OpenPGP,
 * gpgme) by that key, imported from receipts.keyring into the private home
 * state_dir/gnupg/_receipts (0700, service user). `gpg --verify` checks it
 * with the gateway's public key; `gpg --decrypt` prints the JSON.
 *
 * In the store: with receipts.store (or a partner's receipts: {store:
 * true}) the intake also hands the very bytes to the uploader through the
 * state database (state_rcopy_add, in the transaction that marks the
 * receipt written); the uploader, the only role with the store's
 * credentials, puts them at delivery_store_key (uploader/receiptship.h).
 *
 * Who: the intake alone (the role that already holds gpg secret keys)
 * writes receipts, each pass, for every file the state database says has
 * a final verdict and no receipt yet (state_receipts_due), and removes
 * receipts older than receipts.keep.
 *
 * Ownership: every pointer argument is borrowed; returned strings and JSON
 * are the caller's (free / json_decref); struct delivery_signer is owned by
 * the caller of delivery_signer_open until delivery_signer_close.
 */
#ifndef SLUICE_DELIVERY_H
#define SLUICE_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "policy/config.h"
#include "spool/state.h"

#define DELIVERY_FORMAT		"sluice-delivery-receipt/1"

/* What one receipt says, beyond the file's row. */
struct delivery_info {
	const struct file_rec *r;	/* the row: final state, store fields */
	const char	*rule;		/* completion rule ("" unknown) */
	const char	*signer;	/* signer's primary fingerprint, or "" */
	const char	*signed_at;	/* signature time, or "" */
	const char	*gateway;	/* host name */
	int64_t		 created_ms;	/* the receipt's own time */
};

/* "stored" or "rejected" for r's state; NULL when it is not final. */
const char *delivery_verdict(const struct file_rec *r);

/* The receipt as a JSON object (the keys above, in order), or NULL
 * (not a final state, out of memory). */
json_t *delivery_json(const struct delivery_info *);

/* The receipt's text: the object, indented, and a final newline. NULL on
 * error. */
char *delivery_text(const struct delivery_info *);

/*
 * The receipt's file name for fid and path ("<fid>-<last component>.json",
 * ".json.asc" when signed) into out. 0, or -1 (bad fid or path, out too
 * small).
 */
int delivery_name(const char *fid, const char *path, int is_signed,
    char *out, size_t outlen);

/*
 * The key of the receipt's copy in the store (receipts.store): beside the
 * object, "<object key>.receipt.json" (".receipt.json.asc" when signed),
 * for a stored file; for a rejected one (no object) under the partner's
 * prefix, "<store prefix><partner>/<receipts dir>/<receipt name>", the
 * folder the partner reads it from over SFTP. 0, or -1 (too long, not a
 * final verdict, bad names).
 */
int delivery_store_key(const struct config *cfg, const struct file_rec *r,
    int is_signed, char *out, size_t outlen);

/*
 * Signing (spool/pgpsign.h, shared with the audit writer's signed seals).
 * delivery_signer_open: the home state_dir/gnupg/_receipts made
 * (0700) and rc->keyring imported when it changed, the secret key
 * rc->sign_with found in it and able to sign. NULL with an operator
 * message logged (receipts then wait: none is written unsigned).
 * delivery_sign: text clearsigned into *out (malloc'd, *outlen bytes).
 * 0 or -1 (logged).
 */
struct delivery_signer;
struct delivery_signer *delivery_signer_open(const char *state_dir,
    const struct receipts_config *rc);
int delivery_sign(struct delivery_signer *, const char *text, char **out,
    size_t *outlen);
/* Stops its gpg-agent and frees. NULL is a no-op. */
void delivery_signer_close(struct delivery_signer *);

/*
 * Removes the receipts (regular files named *.json or *.json.asc) in the
 * directory dirfd whose mtime is before before_s. Returns how many, or -1.
 */
int delivery_expire(int dirfd, int64_t before_s);

#endif
