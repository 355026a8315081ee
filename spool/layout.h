/*
 * layout.h - the spool's names and who owns them: every directory and file
 * the roles use beneath state_dir and every state a file can be in, as
 * enums with one table of names each (spool/layout.c), and one function
 * that builds a path. No role spells "spool/ready" or "stored" itself.
 *
 *   enum spool_dir     path under state_dir        what lives there
 *   SPOOL_LANDING      landing/[<partner>/]        what a partner sees over
 *                                                  SFTP (its root "/")
 *   SPOOL_SPOOL        spool/
 *   SPOOL_INCOMING     spool/incoming/<fid>        hard link made at CLOSE:
 *                                                  received, not yet judged
 *   SPOOL_READY        spool/ready/<fid>           accepted by the intake,
 *                                                  waiting for the uploader
 *   SPOOL_QUARANTINE   quarantine/[<partner>/]     rejected files, each with
 *                                                  a .reason file
 *   SPOOL_UNRECORDED   quarantine/_unrecorded/     spool/incoming links no
 *                                                  row records
 *   SPOOL_FORGED       quarantine/_forged/         hand-offs whose partner
 *                                                  cannot be confirmed
 *   SPOOL_ARCHIVE      archive/<fid>               stored files kept for
 *                                                  uploader.retention keep
 *   SPOOL_SIDECARS     sidecars/[<partner>/]       sidecars the intake used
 *                                                  and did not ship
 *   SPOOL_PLAINTEXT    plaintext/[<partner>/]      decrypted copies
 *                                                  (signature keep_plaintext)
 *   SPOOL_GNUPG        gnupg/[<partner>/]          one GnuPG home per partner
 *   SPOOL_SIGNING      gnupg/_receipts/            the GnuPG home holding the
 *                                                  key that signs delivery
 *                                                  receipts (spool/delivery.h)
 *   SPOOL_AUDIT_SIGNING gnupg/_audit/              the GnuPG home holding the
 *                                                  key that signs sealed audit
 *                                                  segments (audit.sign_with)
 *   SPOOL_RUN          run/                        sockets
 *   SPOOL_AUDIT_SOCK   run/audit.sock              the audit writer's socket
 *   SPOOL_DB           sluice.db                   the state database
 *                                                  (spool/state.h)
 *   SPOOL_BANS         bans.json                   the listener's bans
 *                                                  (server/guard.h)
 *
 * A file's life (enum file_state, the names the database stores):
 * received -> [waiting ->] accepted -> uploading -> stored -> removed or
 * archived; or rejected; or held (needs an operator); a sidecar the intake
 * used without shipping it ends consumed.
 *
 * Owners and modes, applied by the supervisor, as root, before any role
 * starts (spool_own; ARCHITECTURE.md "Process roles", invariant 8):
 *
 *   path                     owner:group              mode
 *   state_dir/               service:session-group    0710  (sessions pass through)
 *   landing/                 service:session-group    0710
 *   landing/<partner>/       session:service-group    2770  (the intake removes, reads)
 *     ...files, dirs         session:service-group    (as created)
 *   landing/<partner>/<receipts.dir>/
 *                            service:session-group    2750  (delivery receipts:
 *     ...receipts            service:session-group    0640   the intake writes,
 *                                                            the partner reads)
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
 *
 * Every name returned here is a static string: never freed, never NULL.
 */
#ifndef SLUICE_LAYOUT_H
#define SLUICE_LAYOUT_H

#include <stddef.h>
#include <sys/types.h>

enum spool_dir {
	SPOOL_LANDING,
	SPOOL_SPOOL,
	SPOOL_INCOMING,
	SPOOL_READY,
	SPOOL_QUARANTINE,
	SPOOL_UNRECORDED,
	SPOOL_FORGED,
	SPOOL_ARCHIVE,
	SPOOL_SIDECARS,
	SPOOL_PLAINTEXT,
	SPOOL_GNUPG,
	SPOOL_SIGNING,
	SPOOL_AUDIT_SIGNING,
	SPOOL_RUN,
	SPOOL_AUDIT_SOCK,
	SPOOL_DB,
	SPOOL_BANS,
	SPOOL_NDIRS
};

/*
 * d's path relative to state_dir ("spool/incoming"), for messages and
 * comparisons; "" when d is out of range.
 */
const char *spool_dir_name(enum spool_dir d);
/* The last component of d's path ("incoming", "_forged"); "" out of range. */
const char *spool_dir_base(enum spool_dir d);
/*
 * Writes state_dir/<d's path>[/<partner>] into out (outlen bytes). partner
 * NULL: the directory (or file) itself. partner not NULL: a partner's
 * directory beneath d; partner must be a partner name (spool_partner_ok in
 * spool/state.h: a name from a receipt or a row is a session's word) and d
 * one of SPOOL_LANDING, SPOOL_QUARANTINE, SPOOL_SIDECARS, SPOOL_PLAINTEXT,
 * SPOOL_GNUPG. 0, or -1 with errno EINVAL (bad partner, d out of range or
 * not per partner) or ENAMETOOLONG (out too short; out holds "").
 */
int spool_dir_path(const char *state_dir, enum spool_dir d,
    const char *partner, char *out, size_t outlen);
/*
 * Creates state_dir (and missing parents) and landing/, spool/incoming,
 * spool/ready, quarantine/ (0750) if missing. 0 or -1 (logged).
 */
int spool_init(const char *state_dir);

/*
 * The states of a file (the files table's state column). FS_NONE is no
 * state: a record not read from the database, or a name this version does
 * not know; the state_* functions refuse to write it.
 */
enum file_state {
	FS_NONE = 0,
	FS_RECEIVED,	/* CLOSE recorded; the link is in spool/incoming */
	FS_WAITING,	/* intake: complete-but-not-yet (rename, marker, signature...) */
	FS_ACCEPTED,	/* in spool/ready, queued for the uploader */
	FS_UPLOADING,	/* claimed by an uploader worker */
	FS_HELD,	/* needs an operator: sluice queue retry */
	FS_STORED,	/* the store confirmed the bytes */
	FS_REMOVED,	/* stored; spool copy deleted (retention delete) */
	FS_ARCHIVED,	/* stored; spool copy kept in archive/<fid> */
	FS_REJECTED,	/* in quarantine/<partner>/ with its reason */
	FS_CONSUMED,	/* intake: a sidecar used and not shipped (sidecars/) */
	FS_NSTATES
};

/* A set of states, for the state_* functions that take one. */
#define FS_BIT(s)	(1u << (unsigned)(s))

/* s's name as the database stores it ("received"); "unknown" for FS_NONE
 * or a value out of range. */
const char *file_state_name(enum file_state s);
/*
 * The state named name (exactly, as file_state_name spells it) into *s.
 * 0, or -1 with *s FS_NONE and errno EINVAL (NULL, "", "unknown", or a
 * name that is no state).
 */
int file_state_parse(const char *name, enum file_state *s);

struct config;
struct partner;

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
 * directories. cfg and o are borrowed. 0 or -1 (logged, naming the path).
 */
int spool_own(const struct config *cfg, const struct spool_owners *o);

/*
 * The delivery receipts folder of partner p (spool/delivery.h):
 * state_dir/landing/<p>/<receipts.dir> into out. 0, or -1 with errno
 * EINVAL (receipts off for p, a bad name) or ENAMETOOLONG. p and cfg are
 * borrowed. Its owner and mode: the table above (spool_own makes it).
 */
int spool_receipts_path(const struct config *cfg, const struct partner *p,
    char *out, size_t outlen);

/*
 * Names that come from a session (a receipt, a database row) are checked
 * before any path is built from them; a session may be compromised.
 * spool_fid_ok: exactly what random_id() makes, 32 lower-case hex digits.
 * spool_partner_ok: a partner name as the config allows one (1 to 64 of
 * a-z 0-9 . _ -, starting with a-z or 0-9): never "", ".", "..", "/", a
 * control character, nor a name starting with '_' (quarantine/_forged,
 * quarantine/_unrecorded are the spool's own).
 * spool_relpath_ok: a partner path as the SFTP engine stores it: relative,
 * already normalised (no "", ".", ".." component, no leading or trailing
 * '/', no "//"), no control character or backslash, valid UTF-8,
 * components of at most 255 bytes, under 4096 bytes in all.
 * Each returns 1 if the name is good, 0 if not.
 */
int spool_fid_ok(const char *fid);
int spool_partner_ok(const char *name);
int spool_relpath_ok(const char *path);

#endif
