/*
 * outbox.h - appends the audit outbox (spool/state.h: state_outbox_add) to
 * the audit trail.
 *
 * A session's CLOSE commits its "received" row and the file.received audit
 * record in one SQLite transaction (one fsync), instead of a second fsync of
 * the audit file, before it tells the partner SSH_FX_OK. The intake role
 * calls outbox_flush at every pass, before it judges any file, so a file's
 * file.received record always precedes its verdict in the trail.
 *
 * Order of a flush: append the records (one fdatasync for all), then delete
 * them from the outbox. A crash in between repeats those records on the
 * next flush (same "fid", "outbox" id): a record is never lost, and a
 * repeated one is recognisable.
 */
#ifndef SLUICE_OUTBOX_H
#define SLUICE_OUTBOX_H

struct state;
struct audit;

/* Appends every record waiting in the outbox. Returns how many, or -1
 * (logged; what was not appended stays in the outbox for the next call). */
int outbox_flush(struct state *, struct audit *);

#endif
