/*
 * layout.c - owners and modes under state_dir (spool/layout.h).
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
#include "spool/layout.h"
#include "spool/state.h"

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
 * What root left below state_dir (a version that ran everything as root, or
 * the supervisor's own files): partners' landing trees to the session user,
 * the rest to the service user. Files owned by anyone else are left as they
 * are: an upload's inode is also linked under spool/ or quarantine/, and
 * stays the session user's. Modes are fixed afterwards.
 */
static int
walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	const struct spool_owners *o = walk_o;
	int landing;

	(void)flag;
	if (ftw->level == 0 || st->st_uid != 0)
		return 0;
	landing = strncmp(path, walk_landing, walk_landing_len) == 0 &&
	    path[walk_landing_len] == '/';
	if ((landing ? own(path, o->ses_uid, o->svc_gid, -1) :
	    own(path, o->svc_uid, o->svc_gid, -1)) == -1)
		walk_rc = -1;
	return 0;
}

static int
own_sub(const struct config *cfg, const char *sub, uid_t uid, gid_t gid,
    int mode)
{
	char p[PATH_MAX];

	if (spool_path(cfg->state_dir, sub, NULL, p, sizeof(p)) == -1)
		return -1;
	return own(p, uid, gid, mode);
}

int
spool_own(const struct config *cfg, const struct spool_owners *o)
{
	char p[PATH_MAX];
	size_t i;
	int fd;

	if (spool_init(cfg->state_dir) == -1)
		return -1;
	if (spool_path(cfg->state_dir, "run", NULL, p, sizeof(p)) == -1 ||
	    (mkdir(p, 0710) == -1 && errno != EEXIST)) {
		log_warn("cannot create %s", p);
		return -1;
	}
	for (i = 0; i < cfg->npartners; i++) {
		if (spool_path(cfg->state_dir, "landing", cfg->partners[i].name,
		    p, sizeof(p)) == -1 ||
		    (mkdir(p, 02770) == -1 && errno != EEXIST)) {
			log_warn("cannot create %s", p);
			return -1;
		}
	}
	/* the trail: created now if new, so it is the service user's */
	if ((fd = open(cfg->audit_path, O_WRONLY | O_APPEND | O_CREAT |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) == -1) {
		log_warn("cannot open the audit trail %s", cfg->audit_path);
		return -1;
	}
	close(fd);
	if (o == NULL)
		return 0;
	if (spool_path(cfg->state_dir, "landing", NULL, walk_landing,
	    sizeof(walk_landing)) == -1)
		return -1;
	walk_landing_len = strlen(walk_landing);
	walk_o = o;
	walk_rc = 0;
	if (nftw(cfg->state_dir, walk_one, 32, FTW_PHYS | FTW_MOUNT) == -1) {
		log_warn("cannot walk %s", cfg->state_dir);
		return -1;
	}
	if (walk_rc == -1)
		return -1;
	if (own(cfg->state_dir, o->svc_uid, o->ses_gid, 0710) == -1 ||
	    own_sub(cfg, "landing", o->svc_uid, o->ses_gid, 0710) == -1 ||
	    own_sub(cfg, "spool", o->svc_uid, o->ses_gid, 0710) == -1 ||
	    own_sub(cfg, "spool/incoming", o->svc_uid, o->ses_gid, 01770) ==
	    -1 || own_sub(cfg, "run", o->svc_uid, o->ses_gid, 0710) == -1 ||
	    own_sub(cfg, "spool/ready", o->svc_uid, o->svc_gid, 0700) == -1 ||
	    own_sub(cfg, "quarantine", o->svc_uid, o->svc_gid, 0700) == -1)
		return -1;
	for (i = 0; i < cfg->npartners; i++)
		if (spool_path(cfg->state_dir, "landing",
		    cfg->partners[i].name, p, sizeof(p)) == -1 ||
		    own(p, o->ses_uid, o->svc_gid, 02770) == -1)
			return -1;
	if (own(cfg->audit_path, o->svc_uid, o->svc_gid, 0600) == -1)
		return -1;
	return 0;
}
