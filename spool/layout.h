/*
 * layout.h - who owns what under state_dir once roles run as separate users
 * (ARCHITECTURE.md "Process roles", invariant 8). Applied by the supervisor,
 * as root, before any role starts (spool_own):
 *
 *   path                     owner:group              mode
 *   state_dir/               service:session-group    0710  (sessions pass through)
 *   landing/                 service:session-group    0710
 *   landing/<partner>/       session:service-group    2770  (the intake removes, reads)
 *     ...files, dirs         session:service-group    (as created)
 *   spool/                   service:session-group    0710
 *   spool/incoming/          service:session-group    1770  (sessions link; sticky)
 *   run/                     service:session-group    0710  (audit.sock 0660)
 *   everything else          service:service-group    as created (0700 dirs,
 *                                                     0600 files: sluice.db,
 *                                                     bans.json, gnupg/, ready/,
 *                                                     quarantine/, archive/ ...)
 *   the audit trail          service:service-group    0600
 *
 * So the session user can write only partner landing directories and
 * spool/incoming; it cannot write sluice.db, the trail, bans.json or any
 * other directory of the spool. Separation between partners' sessions (one
 * uid) is the sandbox's (Landlock, server/sandbox.h).
 */
#ifndef SLUICE_LAYOUT_H
#define SLUICE_LAYOUT_H

#include <sys/types.h>

#include "policy/config.h"

struct spool_owners {
	uid_t	 svc_uid;
	gid_t	 svc_gid;
	uid_t	 ses_uid;
	gid_t	 ses_gid;
};

/*
 * Creates every partner's landing directory, and gives state_dir and the
 * audit trail the owners and modes above (fixing a tree left by an older
 * version that ran everything as root). o NULL (not root): only creates the
 * directories. 0 or -1 (logged, naming the path).
 */
int spool_own(const struct config *cfg, const struct spool_owners *o);

#endif
