/*
 * layout.c - the spool's names, paths, owners and modes under state_dir
 * (spool/layout.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "policy/config.h"
#include "policy/path.h"
#include "spool/layout.h"

/* One row per enum spool_dir, in its order. */
static const struct {
	const char	*path;		/* relative to state_dir */
	int		 per_partner;	/* may have <partner>/ beneath */
} spool_dirs[SPOOL_NDIRS] = {
	[SPOOL_LANDING]		= { "landing",			1 },
	[SPOOL_SPOOL]		= { "spool",			0 },
	[SPOOL_INCOMING]	= { "spool/incoming",		0 },
	[SPOOL_READY]		= { "spool/ready",		0 },
	[SPOOL_QUARANTINE]	= { "quarantine",		1 },
	[SPOOL_UNRECORDED]	= { "quarantine/_unrecorded",	0 },
	[SPOOL_FORGED]		= { "quarantine/_forged",	0 },
	[SPOOL_ARCHIVE]		= { "archive",			0 },
	[SPOOL_SIDECARS]	= { "sidecars",			1 },
	[SPOOL_PLAINTEXT]	= { "plaintext",		1 },
	[SPOOL_GNUPG]		= { "gnupg",			1 },
	[SPOOL_SIGNING]		= { "gnupg/_receipts",		0 },
	[SPOOL_AUDIT_SIGNING]	= { "gnupg/_audit",		0 },
	[SPOOL_RUN]		= { "run",			0 },
	[SPOOL_AUDIT_SOCK]	= { "run/audit.sock",		0 },
	[SPOOL_DB]		= { "sluice.db",		0 },
	[SPOOL_BANS]		= { "bans.json",		0 },
};

/* One name per enum file_state, in its order; the database stores these. */
static const char *const file_states[FS_NSTATES] = {
	[FS_NONE]	= "unknown",
	[FS_RECEIVED]	= "received",
	[FS_WAITING]	= "waiting",
	[FS_ACCEPTED]	= "accepted",
	[FS_UPLOADING]	= "uploading",
	[FS_HELD]	= "held",
	[FS_STORED]	= "stored",
	[FS_REMOVED]	= "removed",
	[FS_ARCHIVED]	= "archived",
	[FS_REJECTED]	= "rejected",
	[FS_CONSUMED]	= "consumed",
};

const char *
spool_dir_name(enum spool_dir d)
{
	if ((unsigned)d >= SPOOL_NDIRS)
		return "";
	return spool_dirs[d].path;
}

const char *
spool_dir_base(enum spool_dir d)
{
	const char *name = spool_dir_name(d), *slash;

	return (slash = strrchr(name, '/')) != NULL ? slash + 1 : name;
}

int
spool_dir_path(const char *state_dir, enum spool_dir d, const char *partner,
    char *out, size_t outlen)
{
	int n;

	if (outlen > 0)
		out[0] = '\0';
	if ((unsigned)d >= SPOOL_NDIRS || (partner != NULL &&
	    (!spool_dirs[d].per_partner || !spool_partner_ok(partner)))) {
		errno = EINVAL;
		return -1;
	}
	if (partner != NULL)
		n = xsnprintf(out, outlen, "%s/%s/%s", state_dir,
		    spool_dirs[d].path, partner);
	else
		n = xsnprintf(out, outlen, "%s/%s", state_dir,
		    spool_dirs[d].path);
	if (n < 0) {
		if (outlen > 0)
			out[0] = '\0';
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
spool_init(const char *state_dir)
{
	static const enum spool_dir dirs[] = { SPOOL_LANDING, SPOOL_INCOMING,
	    SPOOL_READY, SPOOL_QUARANTINE };
	char p[PATH_MAX];
	size_t i;

	if (mkdir_p(state_dir, 0750) == -1) {
		log_warn("cannot create state_dir %s", state_dir);
		return -1;
	}
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (spool_dir_path(state_dir, dirs[i], NULL, p, sizeof(p)) ==
		    -1 || mkdir_p(p, 0750) == -1) {
			log_warn("cannot create %s/%s", state_dir,
			    spool_dir_name(dirs[i]));
			return -1;
		}
	}
	return 0;
}

const char *
file_state_name(enum file_state s)
{
	if ((unsigned)s >= FS_NSTATES)
		return file_states[FS_NONE];
	return file_states[s];
}

int
file_state_parse(const char *name, enum file_state *s)
{
	int i;

	*s = FS_NONE;
	for (i = FS_NONE + 1; name != NULL && i < FS_NSTATES; i++)
		if (strcmp(name, file_states[i]) == 0) {
			*s = (enum file_state)i;
			return 0;
		}
	errno = EINVAL;
	return -1;
}

static const struct spool_owners *walk_o;
static char walk_landing[PATH_MAX];
static size_t walk_landing_len;
static int walk_rc;

/* chown (never through a symlink) and, mode != -1, chmod one path. */
static int
own(const char *path, uid_t uid, gid_t gid, int mode)
{
	struct stat st;

	if (lstat(path, &st) == -1) {
		log_warn("%s", path);
		return -1;
	}
	if ((st.st_uid != uid || st.st_gid != gid) &&
	    lchown(path, uid, gid) == -1) {
		log_warn("cannot give %s to uid %ld", path, (long)uid);
		return -1;
	}
	if (mode != -1 && !S_ISLNK(st.st_mode) &&
	    (st.st_mode & 07777) != (mode_t)mode &&
	    chmod(path, (mode_t)mode) == -1) {
		log_warn("cannot chmod %s", path);
		return -1;
	}
	return 0;
}

/*
 * One file the walk found root's, given to uid:gid. A file gone since the
 * walk listed it is no error: others may use state_dir meanwhile (an
 * operator's command opens the database, and SQLite's last connection
 * removes its -shm and -wal files).
 */
static int
own_walked(const char *path, uid_t uid, gid_t gid)
{
	if (lchown(path, uid, gid) == 0 || errno == ENOENT)
		return 0;
	log_warn("cannot give %s to uid %ld", path, (long)uid);
	return -1;
}

/*
 * What root left below state_dir (a version that ran everything as root, or
 * the supervisor's own files): partners' landing trees to the session user,
 * the rest to the service user. Files owned by anyone else are left as they
 * are: an upload's inode is also linked under spool/ or quarantine/, and
 * stays the session user's. Modes are fixed afterwards. FTW_NS: the file
 * went between the listing and its lstat (see own_walked).
 */
static int
walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	const struct spool_owners *o = walk_o;
	int landing;

	if (flag == FTW_NS || ftw->level == 0 || st->st_uid != 0)
		return 0;
	landing = strncmp(path, walk_landing, walk_landing_len) == 0 &&
	    path[walk_landing_len] == '/';
	if ((landing ? own_walked(path, o->ses_uid, o->svc_gid) :
	    own_walked(path, o->svc_uid, o->svc_gid)) == -1)
		walk_rc = -1;
	return 0;
}

static int
own_sub(const struct config *cfg, enum spool_dir d, uid_t uid, gid_t gid,
    int mode)
{
	char p[PATH_MAX];

	if (spool_dir_path(cfg->state_dir, d, NULL, p, sizeof(p)) == -1)
		return -1;
	return own(p, uid, gid, mode);
}

/*
 * Every receipts folder: the service user's, the session group's, 2750,
 * so the intake writes there and the partner's session only reads (whatever
 * its role). Made after the walk of root's leftovers, which would give a
 * directory root made to the session user. o NULL: only created (0750).
 */
static int
receipts_own(const struct config *cfg, const struct spool_owners *o)
{
	char p[PATH_MAX];
	size_t i;

	for (i = 0; i < cfg->npartners; i++) {
		if (!cfg->partners[i].receipts)
			continue;
		if (spool_receipts_path(cfg, &cfg->partners[i], p,
		    sizeof(p)) == -1 || (mkdir(p, o != NULL ? 02750 : 0750) ==
		    -1 && errno != EEXIST)) {
			log_warn("cannot create the receipts folder %s", p);
			return -1;
		}
		if (o != NULL && own(p, o->svc_uid, o->ses_gid, 02750) == -1)
			return -1;
	}
	return 0;
}

/* 1 if a process of uid/gid (no other groups) may create files in st. */
static int
dir_writable_by(const struct stat *st, uid_t uid, gid_t gid)
{
	if (st->st_uid == uid)
		return (st->st_mode & 0300) == 0300;
	if (st->st_gid == gid)
		return (st->st_mode & 0030) == 0030;
	return (st->st_mode & 0003) == 0003;
}

/*
 * The directory of audit.path: the audit writer (the service user) creates
 * files there (each new live file, renamed over the old one when a segment
 * is sealed). Made if missing (0750, the service user's); one that exists
 * and the service user cannot write to is an error naming the fix (it is
 * not taken over: it may hold anything).
 */
static int
audit_dir_ready(const struct config *cfg, const struct spool_owners *o)
{
	char dir[PATH_MAX], *slash;
	struct stat st;

	if (xstrlcpy(dir, cfg->audit_path, sizeof(dir)) >= sizeof(dir) ||
	    (slash = strrchr(dir, '/')) == NULL)
		return 0;
	slash[slash == dir ? 1 : 0] = '\0';
	if (stat(dir, &st) == -1) {
		if (errno != ENOENT || mkdir_p(dir, 0750) == -1) {
			log_warn("audit.path: cannot create %s", dir);
			return -1;
		}
		return o == NULL ? 0 : own(dir, o->svc_uid, o->svc_gid, 0750);
	}
	if (o == NULL || dir_writable_by(&st, o->svc_uid, o->svc_gid))
		return 0;
	log_warnx("audit.path: the audit writer (uid %u) must create files in "
	    "%s, where it seals the trail into segments and starts the next "
	    "live file; give it the directory (chown %u:%u %s; chmod 0750 %s) "
	    "or put audit.path in a directory of its own (e.g. "
	    "/var/log/sluice/audit.jsonl)", (unsigned)o->svc_uid, dir,
	    (unsigned)o->svc_uid, (unsigned)o->svc_gid, dir, dir);
	return -1;
}

int
spool_own(const struct config *cfg, const struct spool_owners *o)
{
	char p[PATH_MAX];
	size_t i;
	int fd;

	if (spool_init(cfg->state_dir) == -1)
		return -1;
	if (spool_dir_path(cfg->state_dir, SPOOL_RUN, NULL, p, sizeof(p)) == -1 ||
	    (mkdir(p, 0710) == -1 && errno != EEXIST)) {
		log_warn("cannot create %s", p);
		return -1;
	}
	for (i = 0; i < cfg->npartners; i++) {
		if (spool_dir_path(cfg->state_dir, SPOOL_LANDING,
		    cfg->partners[i].name,
		    p, sizeof(p)) == -1 ||
		    (mkdir(p, 02770) == -1 && errno != EEXIST)) {
			log_warn("cannot create %s", p);
			return -1;
		}
	}
	/* the trail: created now if new, so it is the service user's */
	if (audit_dir_ready(cfg, o) == -1)
		return -1;
	if ((fd = open(cfg->audit_path, O_WRONLY | O_APPEND | O_CREAT |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) == -1) {
		log_warn("cannot open the audit trail %s", cfg->audit_path);
		return -1;
	}
	close(fd);
	/* sealed segments: the audit writer links them there */
	if (cfg->audit_segments_dir != NULL &&
	    mkdir_p(cfg->audit_segments_dir, 0750) == -1) {
		log_warn("cannot create %s", cfg->audit_segments_dir);
		return -1;
	}
	if (o == NULL)
		return receipts_own(cfg, NULL);
	if (spool_dir_path(cfg->state_dir, SPOOL_LANDING, NULL, walk_landing,
	    sizeof(walk_landing)) == -1)
		return -1;
	walk_landing_len = strlen(walk_landing);
	walk_o = o;
	/* a folder removed while the walk reads it (a partner's rmdir during
	 * a reload) stops nftw with ENOENT: walked again */
	for (i = 0;; i++) {
		walk_rc = 0;
		if (nftw(cfg->state_dir, walk_one, 32, FTW_PHYS | FTW_MOUNT) ==
		    0)
			break;
		if (errno != ENOENT || i == 4) {
			log_warn("cannot walk %s", cfg->state_dir);
			return -1;
		}
	}
	if (walk_rc == -1)
		return -1;
	if (own(cfg->state_dir, o->svc_uid, o->ses_gid, 0710) == -1 ||
	    own_sub(cfg, SPOOL_LANDING, o->svc_uid, o->ses_gid, 0710) == -1 ||
	    own_sub(cfg, SPOOL_SPOOL, o->svc_uid, o->ses_gid, 0710) == -1 ||
	    own_sub(cfg, SPOOL_INCOMING, o->svc_uid, o->ses_gid, 01770) ==
	    -1 || own_sub(cfg, SPOOL_RUN, o->svc_uid, o->ses_gid, 0710) == -1 ||
	    own_sub(cfg, SPOOL_READY, o->svc_uid, o->svc_gid, 0700) == -1 ||
	    own_sub(cfg, SPOOL_QUARANTINE, o->svc_uid, o->svc_gid, 0700) == -1)
		return -1;
	for (i = 0; i < cfg->npartners; i++)
		if (spool_dir_path(cfg->state_dir, SPOOL_LANDING,
		    cfg->partners[i].name, p, sizeof(p)) == -1 ||
		    own(p, o->ses_uid, o->svc_gid, 02770) == -1)
			return -1;
	if (own(cfg->audit_path, o->svc_uid, o->svc_gid, 0600) == -1 ||
	    (cfg->audit_segments_dir != NULL && own(cfg->audit_segments_dir,
	    o->svc_uid, o->svc_gid, 0750) == -1))
		return -1;
	return receipts_own(cfg, o);
}

int
spool_receipts_path(const struct config *cfg, const struct partner *p,
    char *out, size_t outlen)
{
	char dir[PATH_MAX];

	if (outlen > 0)
		out[0] = '\0';
	if (!p->receipts || cfg->receipts.dir == NULL ||
	    cfg->receipts.dir[0] == '\0' || strchr(cfg->receipts.dir, '/') !=
	    NULL || spool_dir_path(cfg->state_dir, SPOOL_LANDING, p->name, dir,
	    sizeof(dir)) == -1) {
		errno = EINVAL;
		return -1;
	}
	if (xsnprintf(out, outlen, "%s/%s", dir, cfg->receipts.dir) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
spool_fid_ok(const char *fid)
{
	size_t i;

	if (fid == NULL)
		return 0;
	for (i = 0; i < 32; i++)
		if (!((fid[i] >= '0' && fid[i] <= '9') ||
		    (fid[i] >= 'a' && fid[i] <= 'f')))
			return 0;
	return fid[32] == '\0';
}

int
spool_partner_ok(const char *name)
{
	size_t i;

	if (name == NULL || !((name[0] >= 'a' && name[0] <= 'z') ||
	    (name[0] >= '0' && name[0] <= '9')))
		return 0;
	for (i = 1; name[i] != '\0'; i++)
		if (i >= 64 || !((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '.' ||
		    name[i] == '_' || name[i] == '-'))
			return 0;
	return 1;
}

int
spool_relpath_ok(const char *path)
{
	char norm[4096];
	size_t len;

	if (path == NULL || (len = strlen(path)) == 0 || len >= sizeof(norm) ||
	    path[0] == '/')
		return 0;
	/* the SFTP engine's own rule: what it would have stored */
	if (path_normalize(path, len, 0, norm, sizeof(norm)) != 0)
		return 0;
	return strcmp(norm, path) == 0 && strcmp(norm, ".") != 0;
}
