/*
 * receiptship.h - copies of delivery receipts beside the objects (issue 11,
 * receipts.store): the intake, which writes receipts and holds no store
 * credentials, hands each copy's bytes and key to the uploader through the
 * state database (table receipt_copies, state_rcopy_*); a thread of the
 * uploader puts each one at its key (spool/delivery.h: delivery_store_key)
 * with x-amz-checksum-sha256 and If-None-Match: * (an identical object
 * already there counts as stored, a different one holds the copy), the
 * store's Object Lock and legal hold as for objects, then records
 * receipt.stored (synced) and marks the row stored. A crash in between puts
 * it again, finds it identical and records it again (existed: true); it is
 * never lost and never written twice. A failure is receipt.store_failed and
 * waits (backoff; a held copy an hour).
 *
 * Only the uploader role includes this header.
 */
#ifndef SLUICE_RECEIPTSHIP_H
#define SLUICE_RECEIPTSHIP_H

#include "policy/config.h"

/*
 * The thread, with its own database connection, audit handle and store:
 * a pass at start and every second until receiptship_stop (or proc_quit).
 * Borrows cfg (must outlive it). NULL when no partner stores receipts, or
 * on error (logged): copies then wait in the database.
 */
struct receiptship;
struct receiptship *receiptship_start(const struct config *cfg);
/* Stops and joins the thread, closes what it opened, frees it. NULL: no-op. */
void receiptship_stop(struct receiptship *);

#endif
