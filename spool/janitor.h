/*
 * janitor.h - the visibility janitor (issue 3), run from the intake loop.
 *
 * A partner keeps seeing each file it uploaded in its SFTP root for
 * partner.visible_for_s after the file was stored; then its landing name is
 * removed, so the partner's listing does not grow forever. The audit trail
 * (file.expired_from_view) and the state row keep the record.
 *
 * Only that very file goes: landing/<partner>/<path> is removed only if it
 * is still the inode recorded at receipt (files.landing_dev/landing_ino)
 * and still accepted (a regular file of mode 0440). A name that was
 * renamed, removed or replaced meanwhile is left alone (and forgotten).
 * The spool, the archive and quarantine are never touched. The janitor
 * walks the path one component at a time with O_NOFOLLOW, so a symlink
 * planted on the way is never followed.
 *
 * Ownership: every function borrows its arguments and keeps no pointer.
 */
#ifndef SLUICE_JANITOR_H
#define SLUICE_JANITOR_H

#include <stdint.h>

struct config;
struct state;
struct audit;

/*
 * Called on every turn of the intake loop: runs a pass when
 * janitor_interval_ms() has passed since the last one (cheap otherwise:
 * one clock read). Errors are logged; a file that could not be handled is
 * tried again on a later pass.
 */
void janitor_tick(const struct config *, struct state *, struct audit *);

/*
 * One pass at time now (ms since the epoch): for every configured partner,
 * the names of files stored at or before now - visible_for leave its view.
 * Returns the number of names removed, or -1 if the state database could
 * not be read.
 */
int janitor_pass(const struct config *, struct state *, struct audit *,
    int64_t now);

/* Time between passes: half the shortest visible_for, within 1 s..60 s
 * (so a short window, as tests use, is honoured within a second). */
int64_t janitor_interval_ms(const struct config *);

#endif
