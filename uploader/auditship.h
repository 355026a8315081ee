/*
 * auditship.h - sealed audit segments off the box (issue 11): the uploader
 * ships every sealed segment in cfg->audit_segments_dir to the store at
 * <audit.prefix><audit.host_id>/<segment name> (conditional PUT with
 * x-amz-checksum-sha256, Object Lock retention when audit.retention is set),
 * records it in the state database (audit_shipped) and in the trail
 * (audit.shipped); a segment's OpenPGP signature <segment>.sig (audit.sign_with)
 * ships beside it as <segment>.sig (audit.signature_shipped). `sluice audit
 * verify --store` compares the local segments and signatures with the
 * shipped copies. Nothing local is ever deleted here.
 *
 * Only the uploader role and the admin command include this header (it
 * uses the store's credentials).
 */
#ifndef SLUICE_AUDITSHIP_H
#define SLUICE_AUDITSHIP_H

#include <stdio.h>

#include "policy/config.h"

/* 1 if name is a sealed segment's: audit-<12 digits>-<12 digits>.jsonl. */
int auditship_name_ok(const char *name);

/*
 * The shipping thread, with its own database connection, audit handle and
 * store: a pass at start and every few seconds until auditship_stop (or
 * proc_quit). Borrows cfg (must outlive it). NULL on error (logged): the
 * uploader goes on without shipping.
 */
struct auditship;
struct auditship *auditship_start(const struct config *cfg);
/* Stops and joins the thread, closes what it opened, frees it. NULL: no-op. */
void auditship_stop(struct auditship *);

/*
 * `sluice audit verify --store`: lists the store under
 * <audit.prefix><host_id>/ and compares each object with the local segment
 * of the same name (the local SHA-256 against the store's checksum from a
 * HEAD, or the SHA-256 of a GET when the store keeps none). One line per
 * segment to out. Returns 0 when both sides hold the same segments with the
 * same bytes, 1 when any differs or is missing on either side, 2 when the
 * store cannot be reached or a file cannot be read.
 */
int auditship_verify(const struct config *cfg, FILE *out);

#endif
