/*
 * receipt.h - the receipt a session writes on a file at CLOSE: the facts of
 * its "received" record (fid, partner, path, remote, session, size, SHA-256,
 * time, landing inode) as a JSON object in the extended attribute
 * RECEIPT_XATTR of the file itself, which is also its spool link.
 *
 * Why: the session sets the receipt and links the file into spool/incoming
 * before its one fsync, so a single journal commit makes the bytes, the
 * mode, the link and the receipt durable together, and the partner's CLOSE
 * waits for one flush instead of also a database commit behind the other
 * roles' write lock. The intake imports receipts into the state database
 * (and the audit trail, as file.received) before it judges any file.
 *
 * A file system without user extended attributes (or a receipt too large
 * for one) makes the session record through the database instead.
 *
 * Ownership: every function borrows its arguments; receipt_encode returns
 * a string the caller frees with free().
 */
#ifndef SLUICE_RECEIPT_H
#define SLUICE_RECEIPT_H

#include "spool/state.h"

#define RECEIPT_XATTR	"user.sluice.receipt"
#define RECEIPT_MAX	(8 * 1024)

/* r's receipt fields as compact JSON (NULL on ENOMEM). */
char *receipt_encode(const struct file_rec *r);
/* The fields of r's file.received audit record (NULL on ENOMEM): session,
 * remote, partner, fid, path, size, sha256, id, received_at. */
struct json_t;
struct json_t *receipt_record(const struct file_rec *r);
/* Parses and checks a receipt (fid, partner, path, sha256 present and well
 * formed, size >= 0) into *r (zeroed first). 0, or -1 if it is not one. */
int receipt_decode(const char *text, size_t len, struct file_rec *r);
/*
 * The checks every session-made record passes before the intake trusts a
 * field of it (a receipt, or a row a session inserted): fid as random_id()
 * makes it, partner a valid partner name, path a normalised relative path
 * (state.h: spool_fid_ok, spool_partner_ok, spool_relpath_ok), size >= 0,
 * sha256 64 lower-case hex digits, landing_dev/ino set. Pure: whether the
 * partner is configured and the file agrees is the intake's to check.
 * 0, or -1 with a reason a person reads into why (whylen bytes).
 */
int receipt_check(const struct file_rec *r, char *why, size_t whylen);
/* Sets fd's receipt (the file must be writable by us: mode 0600). 0 or -1
 * with errno (ENOTSUP: no user xattrs here; E2BIG/ENOSPC: too large). */
int receipt_write(int fd, const struct file_rec *r);
/* 1 and *r filled, 0 when fd has no receipt, -1 on error or a bad one. */
int receipt_read(int fd, struct file_rec *r);
/* 1 if fd has a receipt, 0 if not, -1 if it cannot tell. */
int receipt_present(int fd);
/* Removes fd's receipt (a CLOSE that failed after receipt_write). 0 or -1. */
int receipt_remove(int fd);

#endif
