/*
 * intake.c - the intake role: decides when a received file is complete and
 * authentic (issue 4), then moves it into spool/ready (accepted) or
 * quarantine/<partner>/ (rejected, with a .reason file, never deleted).
 *
 * Design.
 *  - Every file the session recorded as "received" is moved to "waiting"
 *    and judged in passes, one pass per partner, over all of that
 *    partner's waiting files, so a data file and its sidecars pair up in
 *    whatever order they arrive. A pass decides what it can and leaves the
 *    rest waiting; the reason a file waits is kept in last_error and
 *    audited (file.waiting) whenever it changes.
 *  - Signatures (struct pass): a partner's pass checks its files'
 *    signatures one after another, one gpg job at a time (one gpg-agent a
 *    home); the passes of different partners run theirs at the same time
 *    (up to VERIFY_JOBS jobs, verify_turn), so one partner's slow
 *    verification (up to signature.timeout) delays no other partner. The
 *    database and the audit trail are written by this process alone.
 *  - Temp names (completion.temp_patterns). The session links a file at
 *    CLOSE under the name it was written as, recording the landing inode
 *    (landing_dev/ino). A temp-named file waits; each pass looks the inode
 *    up under landing/<partner>/ (one walk of the tree per pass, only while
 *    temp files wait). Found under a final name: the file takes that name
 *    (state_set_path) and is judged like any other. Found under no name:
 *    the partner removed it, quarantine. Still temp after incomplete_ttl:
 *    quarantine. No rename bookkeeping in the session is needed, and a
 *    rename done while intake is down is still seen.
 *  - Sidecars (completion.h) pair with their data file by path. A data file
 *    ships when every configured rule holds: marker present, checksum file
 *    present and matching, quiet_seconds passed with the landing name still
 *    holding this file, listed in a manifest whose whole batch has arrived,
 *    and the signature good. Then the sidecars are shipped too
 *    (ship_sidecars) or kept in state_dir/sidecars/<partner>/<fid> (state
 *    "consumed"). A newer upload of the same name supersedes an older one
 *    that is still waiting (the older one goes to quarantine).
 *  - Timeouts: signature.wait for a missing signature, manifest_timeout for
 *    a batch (or a file no manifest lists), incomplete_ttl for everything
 *    else (missing marker/checksum, sidecar without data, temp name never
 *    renamed). The janitor moves landing files left incomplete (mode 0600,
 *    not locked by a session, untouched for incomplete_ttl) to quarantine
 *    (file.incomplete_expired).
 *  - A rejected file stays in quarantine/<partner>/<fid>; with
 *    store.quarantine_prefix set its row is also marked for a copy to the
 *    store, which the uploader makes (uploader.c, file.quarantine_copied).
 *  - Verdicts: file.accepted (rule, signer), file.rejected (reason),
 *    file.waiting (for), file.duplicate (same partner and SHA-256 within
 *    duplicate_window).
 */
#include "spool/intake.h"
#include "spool/delivery.h"
#include "spool/outbox.h"
#include "notify/events.h"
#include "spool/receipt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "policy/completion.h"
#include "policy/policy.h"
#include "spool/state.h"
#include "spool/janitor.h"
#include "spool/verify.h"

#define DEFAULT_INCOMPLETE_TTL	(24 * 3600)
#define DEFAULT_MANIFEST_TIMEOUT (24 * 3600)
#define DEFAULT_SIG_WAIT	600
#define MAX_WAITING		2048		/* rows judged per partner per pass */
#define HOME_RETRY_MS		30000		/* after a key import failed */
#define SIDECAR_MAX		(1 << 20)	/* a checksum file */
#define MANIFEST_MAX		(16 << 20)
#define WALK_MAX_DEPTH		32
#define WALK_MAX_ENTRIES	200000
#define VERIFY_JOBS		4		/* verifications at once (one a partner) */
#define VERIFY_POLL_MS		50		/* the loop's pace while they run */
#define INCOMING_GATHER_MS	10		/* a woken loop waits this quiet */
#define INCOMING_GAP_MS		20		/* and passes under a stream this far apart */

struct pass;

struct intake {
	const struct config *cfg;
	struct state	*st;
	struct audit	*au;
	int		*agent;		/* per partner: decrypted since the last stop */
	int64_t		*home_retry;	/* per partner: no key import before this */
	struct pass	**pass;		/* per partner: its pass under way (owned) */
	size_t		 rr;		/* partner offered a free job slot first */
	int		 running;	/* verification jobs running */
	int64_t		 janitor_ms;
	struct timespec	 incoming_mtime; /* spool/incoming when last read */
	int		 import_again;	/* read it next pass regardless */
	/* delivery receipts (spool/delivery.h) */
	struct delivery_signer *signer;	/* receipts.sign_with (owned) */
	int64_t		 signer_retry;	/* no new try before this */
	int64_t		 receipts_ms;	/* receipts last looked for */
	char		 host[256];	/* the receipts' "gateway" */
};

struct item {
	struct file_rec	 r;
	enum sidecar_kind kind;
	char		 data[4096];	/* sidecar: its data file's path */
	int		 temp;
	int		 was_temp;
	int		 done;		/* judged in this pass */
	int		 ready;		/* data: every rule but the batch holds */
	int		 manifest;	/* data: listed in a manifest (-1 none) */
	int		 batch;		/* data: its batch in pass->batches (-1) */
	struct item	*side[4];	/* data: marker, checksum, .sig, .asc */
	char		*found;		/* temp: where the inode is now */
	struct verify_result vr;	/* data: its signature verdict */
	/* data, while its signature is checked (sig_begin .. sig_next) */
	struct verify_job *job;		/* the step running (owned) */
	int		 vfd;		/* the spool file (-1) */
	int		 vsfd;		/* detached: the signature file (-1) */
	int		 vside;		/* detached: the next side[] to check */
	int		 vpfd;		/* encrypted: the plaintext temp file (-1) */
	int		 vpdir;		/* its directory (-1) */
	char		 plain[128];	/* its name there */
	char		 rule[128];
	char		 wait[512];
};

/*
 * A verdict waiting to be applied. Judging a file (reading it, hashing it,
 * running gpg) needs no write lock; applying verdicts does, so a pass queues
 * them and flush() applies up to BATCH_MAX at once: the renames, one fsync
 * per destination directory, one state transaction, one audit fdatasync.
 */
enum act_kind { ACT_ACCEPT, ACT_CONSUME, ACT_REJECT, ACT_WAIT };

struct act {
	enum act_kind	 kind;
	long		 dep;		/* act this one needs (-1 none) */
	int		 failed;
	int		 dir;		/* index into the flush's dirs (-1) */
	int		 warn;		/* msg is a warning */
	struct file_rec	 r;		/* the row as it is to be written */
	char		*reason;	/* reject: the whole reason (owned) */
	const char	*event;		/* audit event (static) */
	json_t		*fields;	/* its audit record (owned) */
	char		*msg;		/* logged once applied (owned) */
	/* accept/reject: what its delivery receipt says (spool/delivery.h) */
	char		 rule[128];
	char		 signer[41];
	char		 signed_at[32];
};

#define BATCH_MAX	64		/* verdicts per state transaction */
#define BATCH_MS	1000		/* nor older than this before applied */
#define FLUSH_DIRS	16

/* A manifest whose batch has arrived: its members' signatures are being
 * checked; it ships when all are good. */
struct batch {
	struct item	*mf;		/* the manifest */
	struct manifest	 m;		/* its entries (owned) */
	struct item	**mem;		/* its members, m.n of them (owned) */
	size_t		 left;		/* data members not verified yet */
	int		 decided;	/* shipped, rejected or waiting */
};

/*
 * One partner's pass. It lives across turns of the intake's loop: prepared
 * (judge_partner: every rule but the signatures), then its data files'
 * signatures are checked one after another, one gpg job at a time for the
 * partner (vq, cur; pass_advance, pass_collect) while other partners' jobs
 * run too, then finished (pass_finish: sidecars' timeouts, waiting
 * reasons, the last verdicts applied).
 */
struct pass {
	struct intake	*in;
	struct act	*acts;		/* queued verdicts */
	size_t		 nacts;
	size_t		 aacts;
	long		 dep;		/* acts queued now need acts[dep] */
	int64_t		 acts_since;	/* when the oldest was queued */
	const struct partner *p;
	size_t		 pi;		/* index of p in cfg->partners */
	struct item	*it;
	size_t		 n;
	struct item	**byname;	/* not temp, not done; sorted by path */
	size_t		 nbyname;
	char		 home[PATH_MAX];
	int		 home_state;	/* 0 not yet, 1 ready, -1 failed */
	int64_t		 now;
	int		 landingfd;
	struct item	**vq;		/* data files to verify, in order (owned) */
	size_t		 nvq;
	size_t		 vqi;		/* the next one to start */
	struct item	*cur;		/* the one whose job runs, or NULL */
	struct batch	*batches;	/* (owned) */
	size_t		 nbatches;
};

static int64_t
secs_or(int64_t v, int64_t dflt)
{
	return v > 0 ? v : dflt;
}

static int64_t
ttl_s(const struct partner *p)
{
	return secs_or(p->completion.incomplete_ttl_s, DEFAULT_INCOMPLETE_TTL);
}

/* --- moving files ---------------------------------------------------- */

/*
 * Where a spool file can be: received, accepted, kept as a sidecar,
 * rejected. A verdict renames the file before its state transaction
 * commits, so a crash in between leaves the row "waiting" and the file
 * already moved; the next pass judges the row again and finds the file
 * wherever it is (spool_find), moving it on if the verdict differs.
 */
enum spool_place { SP_INCOMING, SP_READY, SP_SIDECARS, SP_QUARANTINE,
    SP_COUNT };

/* The directory of place (dir) and r's file there (path). 0 or -1. */
static int
spool_place_path(struct intake *in, const struct file_rec *r,
    enum spool_place place, char *dir, size_t dirlen, char *path,
    size_t pathlen)
{
	const char *sd = in->cfg->state_dir;
	int rc = -1;

	/* a row's fid and partner are a session's word: never joined into
	 * a path unchecked (spool_dir_path checks the partner) */
	if (!spool_fid_ok(r->fid)) {
		errno = EINVAL;
		return -1;
	}
	switch (place) {
	case SP_INCOMING:
		rc = spool_dir_path(sd, SPOOL_INCOMING, NULL, dir, dirlen);
		break;
	case SP_READY:
		rc = spool_dir_path(sd, SPOOL_READY, NULL, dir, dirlen);
		break;
	case SP_SIDECARS:
		rc = spool_dir_path(sd, SPOOL_SIDECARS, r->partner, dir, dirlen);
		break;
	case SP_QUARANTINE:
		rc = spool_dir_path(sd, SPOOL_QUARANTINE, r->partner, dir,
		    dirlen);
		break;
	default:
		break;
	}
	if (rc == -1 || xsnprintf(path, pathlen, "%s/%s", dir, r->fid) < 0)
		return -1;
	return 0;
}

/* Where r's spool file is now (into path), or -1 when nowhere. */
static int
spool_find(struct intake *in, const struct file_rec *r, char *path,
    size_t pathlen)
{
	char dir[PATH_MAX];
	struct stat sb;
	int k;

	for (k = 0; k < SP_COUNT; k++)
		if (spool_place_path(in, r, k, dir, sizeof(dir), path,
		    pathlen) == 0 && lstat(path, &sb) == 0)
			return k;
	errno = ENOENT;
	return -1;
}

/*
 * Renames r's spool file, wherever it is, into place `to` (no fsync: the
 * caller syncs the directory, written into dir, once per batch). A file
 * found nowhere is an error unless missing_ok. 0 or -1.
 */
static int
spool_move(struct intake *in, const struct file_rec *r, enum spool_place to,
    int missing_ok, char *dir, size_t dirlen)
{
	char from[PATH_MAX], path[PATH_MAX], qdir[PATH_MAX], why[PATH_MAX];
	int at, dfd = -1;

	if (spool_place_path(in, r, to, dir, dirlen, path, sizeof(path)) == -1 ||
	    spool_place_path(in, r, SP_INCOMING, qdir, sizeof(qdir), from,
	    sizeof(from)) == -1)
		return -1;
	/* the usual case first: straight from spool/incoming */
	if (rename(from, path) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	if ((at = spool_find(in, r, from, sizeof(from))) == (int)to)
		return 0;
	if (at == -1)
		return missing_ok ? 0 : -1;
	if (to == SP_SIDECARS && (spool_dir_path(in->cfg->state_dir,
	    SPOOL_SIDECARS, NULL, path, sizeof(path)) == -1 ||
	    (dfd = spool_mkdir(path, 0750)) == -1 || close(dfd) == -1 ||
	    spool_place_path(in, r, to, dir, dirlen, path, sizeof(path)) == -1))
		return -1;
	if (to != SP_READY && (dfd = spool_mkdir(dir, 0750)) == -1)
		return -1;
	if (to != SP_READY)
		close(dfd);
	if (rename(from, path) == -1)
		return -1;
	/* judged again after a crash, differently: the old reason is void */
	if (at == SP_QUARANTINE && spool_place_path(in, r, SP_QUARANTINE, qdir,
	    sizeof(qdir), why, sizeof(why)) == 0 &&
	    xstrlcat(why, ".reason", sizeof(why)) < sizeof(why))
		unlink(why);
	return 0;
}

/* Writes quarantine/<partner>/<fid>.reason (synced; its directory is
 * synced with the batch). 0 or -1. */
static int
write_reason(struct intake *in, const struct file_rec *r, const char *reason,
    char *dir, size_t dirlen)
{
	char path[PATH_MAX], name[64], text[8192], when[40];
	int dfd, rc;

	if (spool_place_path(in, r, SP_QUARANTINE, dir, dirlen, path,
	    sizeof(path)) == -1 ||
	    xsnprintf(name, sizeof(name), "%s.reason", r->fid) < 0 ||
	    (dfd = spool_mkdir(dir, 0750)) == -1)
		return -1;
	iso8601_ms(r->received_ms, when, sizeof(when));
	xsnprintf(text, sizeof(text), "file: %s\npartner: %s\nsize: %lld\n"
	    "sha256: %s\nreceived: %s\nfrom: %s\nreason: %s\n", r->path,
	    r->partner, (long long)r->size, r->sha256, when, r->remote, reason);
	rc = write_file_at(dfd, name, text, strlen(text), 0640);
	close(dfd);
	return rc;
}

/* The flush's directories to fsync: the index of dir, added if new; -1
 * when the table is full (the caller syncs at once). */
static int
dir_slot(char dirs[][PATH_MAX], int *ndirs, const char *dir)
{
	int i;

	for (i = 0; i < *ndirs; i++)
		if (strcmp(dirs[i], dir) == 0)
			return i;
	if (*ndirs == FLUSH_DIRS)
		return -1;
	xstrlcpy(dirs[*ndirs], dir, PATH_MAX);
	return (*ndirs)++;
}

/* Moves the file of a (not ACT_WAIT) where its verdict sends it. */
static int
act_move(struct intake *in, struct act *a, char *dir, size_t dirlen)
{
	const struct file_rec *r = &a->r;

	switch (a->kind) {
	case ACT_ACCEPT:
		if (spool_move(in, r, SP_READY, 0, dir, dirlen) == -1) {
			log_warn("cannot move %s into %s", r->fid,
			    spool_dir_name(SPOOL_READY));
			return -1;
		}
		return 0;
	case ACT_CONSUME:
		if (spool_move(in, r, SP_SIDECARS, 1, dir, dirlen) == -1) {
			log_warn("cannot move %s into %s", r->fid, dir);
			return -1;
		}
		return 0;
	case ACT_REJECT:
		/* The file is never deleted (invariant 3). */
		if (write_reason(in, r, a->reason, dir, dirlen) == -1 ||
		    spool_move(in, r, SP_QUARANTINE, 1, dir, dirlen) == -1) {
			log_warn("cannot quarantine %s/%s (%s)", r->partner,
			    r->path, r->fid);
			return -1;
		}
		return 0;
	default:
		dir[0] = '\0';
		return 0;
	}
}

static void
act_free(struct act *a)
{
	free(a->reason);
	free(a->msg);
	json_decref(a->fields);
	a->reason = a->msg = NULL;
	a->fields = NULL;
}

/*
 * Applies the queued verdicts, BATCH_MAX at a time: every rename first
 * (a crash before the commit is redone by the next pass), one fsync per
 * directory, then their audit records with one fdatasync, then the rows
 * in one transaction. Never called inside a transaction.
 */
static void
flush(struct pass *ps)
{
	struct intake *in = ps->in;
	char dirs[FLUSH_DIRS][PATH_MAX], dir[PATH_MAX];
	int dirbad[FLUSH_DIRS];
	size_t off, end, i;
	int ndirs, ok;

	for (off = 0; off < ps->nacts; off = end) {
		end = off + BATCH_MAX < ps->nacts ? off + BATCH_MAX : ps->nacts;
		ndirs = 0;
		for (i = off; i < end; i++) {
			struct act *a = &ps->acts[i];

			a->dir = -1;
			if (a->dep >= 0 && ps->acts[a->dep].failed) {
				a->failed = 1;
				continue;
			}
			if (act_move(in, a, dir, sizeof(dir)) == -1) {
				a->failed = 1;
				continue;
			}
			if (dir[0] == '\0')
				continue;
			if ((a->dir = dir_slot(dirs, &ndirs, dir)) == -1 &&
			    fsync_dir(dir) == -1) {
				log_warn("fsync %s", dir);
				a->failed = 1;
			}
		}
		for (i = 0; i < (size_t)ndirs; i++)
			if ((dirbad[i] = fsync_dir(dirs[i]) == -1))
				log_warn("fsync %s", dirs[i]);
		/*
		 * The records before the commit (invariant 4): a crash
		 * between the commit and the records would lose them for
		 * good; a crash (or failed commit) between the records and
		 * the commit leaves the rows waiting, and the next pass gives
		 * the same verdicts again: recorded twice, never lost.
		 */
		audit_defer(in->au);
		for (i = off; i < end; i++) {
			struct act *a = &ps->acts[i];

			if (a->dir >= 0 && dirbad[a->dir])
				a->failed = 1;
			if (a->failed)
				continue;
			audit_emit(in->au, a->event, a->fields);
			a->fields = NULL;
		}
		audit_sync(in->au);
		ok = state_begin(in->st) == 0;
		for (i = off; i < end && ok; i++) {
			struct act *a = &ps->acts[i];

			if (a->failed)
				continue;
			if (a->kind == ACT_REJECT)
				/* store.quarantine_prefix: the uploader also
				 * copies it to the store */
				a->failed = state_reject(in->st, &a->r,
				    FS_WAITING, in->cfg->store.quarantine_prefix
				    != NULL) == -1;
			else
				a->failed = state_update(in->st, &a->r,
				    FS_WAITING) == -1;
			/* its notifications (notify/events.h): with the
			 * verdict or not at all */
			if (!a->failed && a->kind == ACT_REJECT &&
			    events_enqueue(in->st, in->cfg, &a->r,
			    "file.rejected") == -1) {
				state_rollback(in->st);
				ok = 0;
				break;
			}
			/* its delivery receipt, written once the verdict is
			 * final (write_receipts); without its row the whole
			 * batch is judged again */
			if (!a->failed && ps->p->receipts && (a->kind ==
			    ACT_REJECT || a->kind == ACT_ACCEPT) &&
			    state_receipt_add(in->st, a->r.id, a->rule,
			    a->signer, a->signed_at) == -1) {
				state_rollback(in->st);
				ok = 0;
			}
		}
		if (ok && state_commit(in->st) == -1)
			ok = 0;
		if (!ok) {
			/* the moved files are found again on the next pass */
			log_warnx("could not record %zu verdicts (already "
			    "audited); judging them again", end - off);
			for (i = off; i < end; i++)
				ps->acts[i].failed = 1;
		}
		for (i = off; i < end; i++) {
			struct act *a = &ps->acts[i];

			if (a->failed || a->msg == NULL)
				continue;
			if (a->warn)
				log_warnx("%s", a->msg);
			else
				log_info("%s", a->msg);
		}
	}
	for (i = 0; i < ps->nacts; i++)
		act_free(&ps->acts[i]);
	ps->nacts = 0;
}

/*
 * Queues a verdict for r (copied), with its audit record (fields, stolen)
 * and log line (msg, copied; may be NULL). Applies the queue when it is
 * full or old, unless a group of acts that depend on each other is being
 * queued. The verdict counts as given from now on (the caller marks the
 * item done); if applying it fails, the row stays waiting and the next
 * pass judges it again. 0 or -1.
 */
static int
queue(struct pass *ps, enum act_kind kind, const struct file_rec *r,
    const char *reason, const char *event, json_t *fields, const char *msg,
    int warn)
{
	struct act *a, *na;
	size_t nn;

	if (ps->nacts == ps->aacts) {
		nn = ps->aacts ? ps->aacts * 2 : BATCH_MAX;
		if ((na = reallocarray(ps->acts, nn, sizeof(*na))) == NULL) {
			json_decref(fields);
			return -1;
		}
		ps->acts = na;
		ps->aacts = nn;
	}
	a = &ps->acts[ps->nacts];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	a->dep = ps->dep;
	a->r = *r;
	a->event = event;
	a->fields = fields;
	a->warn = warn;
	if ((reason != NULL && (a->reason = strdup(reason)) == NULL) ||
	    (msg != NULL && (a->msg = strdup(msg)) == NULL)) {
		act_free(a);
		return -1;
	}
	if (ps->nacts++ == 0)
		ps->acts_since = now_ms();
	return 0;
}

/* Applies the queue if it is full or its oldest verdict waited long
 * enough (not while a dependent group is being queued). */
static void
flush_due(struct pass *ps)
{
	if (ps->dep < 0 && ps->nacts > 0 && (ps->nacts >= BATCH_MAX ||
	    now_ms() - ps->acts_since >= BATCH_MS))
		flush(ps);
}

static int
reject(struct pass *ps, struct item *x, const char *reason)
{
	struct file_rec *r = &x->r;
	char msg[8192];

	if (x->done)
		return 0;
	r->state = FS_REJECTED;
	xstrlcpy(r->last_error, reason, sizeof(r->last_error));
	xsnprintf(msg, sizeof(msg), "%s/%s rejected: %s (kept in "
	    "%s/%s/%s)", r->partner, r->path, reason,
	    spool_dir_name(SPOOL_QUARANTINE), r->partner, r->fid);
	if (queue(ps, ACT_REJECT, r, reason, "file.rejected", json_pack(
	    "{s:s,s:s,s:s,s:I,s:s,s:s,s:s}", "partner", r->partner, "fid",
	    r->fid, "path", r->path, "size", (json_int_t)r->size, "sha256",
	    r->sha256, "kind", sidecar_kind_name(x->kind), "reason", reason),
	    msg, 1) == -1)
		return -1;
	x->done = 1;
	flush_due(ps);
	return 0;
}

/* Rejects data file x and every sidecar attached to it. */
static void
reject_all(struct pass *ps, struct item *x, const char *reason)
{
	char why[600];
	size_t i;

	reject(ps, x, reason);
	for (i = 0; i < 4; i++)
		if (x->side[i] != NULL && !x->side[i]->done) {
			xsnprintf(why, sizeof(why), "%s of %s, which was "
			    "rejected: %s", sidecar_kind_name(x->side[i]->kind),
			    x->r.path, reason);
			reject(ps, x->side[i], why);
		}
}

/* Accepts x for upload. meta (may be NULL) is stolen. */
static int
accept_file(struct pass *ps, struct item *x, json_t *meta, const char *rule,
    const char *signer, const char *signed_at, const char *sidecar_of)
{
	struct intake *in = ps->in;
	struct file_rec *r = &x->r;
	struct objkey_vars v;
	char *js = NULL, msg[8192];
	json_t *f;

	memset(&v, 0, sizeof(v));
	v.partner = r->partner;
	v.path = r->path;
	v.sha256 = r->sha256;
	v.received_ms = r->received_ms;
	if (objkey_expand(in->cfg->store.kind == STORE_S3 ?
	    in->cfg->store.prefix : "", ps->p->object_key, &v, r->object_key,
	    sizeof(r->object_key)) == -1) {
		json_decref(meta);
		return reject(ps, x, "object_key template gives no valid key "
		    "for this file name");
	}
	if (meta != NULL) {
		js = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(meta);
		if (js == NULL || strlen(js) >= sizeof(r->meta)) {
			free(js);
			return reject(ps, x, "object metadata too long");
		}
		xstrlcpy(r->meta, js, sizeof(r->meta));
		free(js);
	}
	r->state = FS_ACCEPTED;
	r->next_attempt_ms = 0;
	r->last_error[0] = '\0';
	f = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:s}", "partner", r->partner,
	    "fid", r->fid, "path", r->path, "size", (json_int_t)r->size,
	    "sha256", r->sha256, "rule", rule, "key", r->object_key);
	if (f != NULL && signer != NULL && signer[0] != '\0') {
		json_object_set_new(f, "signer", json_string(signer));
		json_object_set_new(f, "signed_at", json_string(signed_at));
	}
	if (f != NULL && sidecar_of != NULL)
		json_object_set_new(f, "sidecar_of", json_string(sidecar_of));
	xsnprintf(msg, sizeof(msg), "%s/%s accepted (%s%s%s) as %s",
	    r->partner, r->path, rule, signer && signer[0] ?
	    ", signed by " : "", signer ? signer : "", r->object_key);
	if (queue(ps, ACT_ACCEPT, r, NULL, "file.accepted", f, msg, 0) == -1)
		return -1;
	xstrlcpy(ps->acts[ps->nacts - 1].rule, rule, sizeof(ps->acts[0].rule));
	if (signer != NULL && signer[0] != '\0') {
		xstrlcpy(ps->acts[ps->nacts - 1].signer, signer,
		    sizeof(ps->acts[0].signer));
		xstrlcpy(ps->acts[ps->nacts - 1].signed_at, signed_at ?
		    signed_at : "", sizeof(ps->acts[0].signed_at));
	}
	x->done = 1;
	return 0;
}

/* A sidecar whose data file was accepted: shipped, or kept locally. */
static int
consume(struct pass *ps, struct item *s, const struct item *of)
{
	struct intake *in = ps->in;
	struct file_rec *r = &s->r;
	char dir[PATH_MAX], to[PATH_MAX], msg[8192];

	if (s->done)
		return 0;
	if (ps->p->completion.ship_sidecars)
		return accept_file(ps, s, NULL, "sidecar", NULL, NULL,
		    of ? of->r.path : NULL);
	if (spool_place_path(in, r, SP_SIDECARS, dir, sizeof(dir), to,
	    sizeof(to)) == -1)
		return -1;
	r->state = FS_CONSUMED;
	r->last_error[0] = '\0';
	xsnprintf(msg, sizeof(msg), "%s/%s (%s%s%s) used, not shipped",
	    r->partner, r->path, sidecar_kind_name(s->kind), of ? " of " : "",
	    of ? of->r.path : "");
	if (queue(ps, ACT_CONSUME, r, NULL, "file.accepted", json_pack(
	    "{s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:b,s:s}", "partner", r->partner,
	    "fid", r->fid, "path", r->path, "size", (json_int_t)r->size,
	    "sha256", r->sha256, "rule", "sidecar", "sidecar_of",
	    of ? of->r.path : "", "shipped", 0, "kept", to), msg, 0) == -1)
		return -1;
	s->done = 1;
	return 0;
}

static void
set_waiting(struct pass *ps, struct item *x)
{
	struct file_rec *r = &x->r;
	char msg[8192];

	if (x->done || strcmp(x->wait, r->last_error) == 0)
		return;
	xstrlcpy(r->last_error, x->wait, sizeof(r->last_error));
	r->state = FS_WAITING;
	xsnprintf(msg, sizeof(msg), "%s/%s waits for %s", r->partner, r->path,
	    x->wait);
	queue(ps, ACT_WAIT, r, NULL, "file.waiting", json_pack(
	    "{s:s,s:s,s:s,s:I,s:s,s:s}", "partner", r->partner, "fid", r->fid,
	    "path", r->path, "size", (json_int_t)r->size, "sha256", r->sha256,
	    "for", x->wait), msg, 0);
	flush_due(ps);
}

/* --- reading spool files --------------------------------------------- */

/* The spool file of r: spool/incoming/<fid>, or wherever a verdict whose
 * transaction a crash lost moved it. -1 with errno. */
static int
open_spool(struct intake *in, const struct file_rec *r)
{
	char p[PATH_MAX];

	if (spool_find(in, r, p, sizeof(p)) == -1)
		return -1;
	return open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

/* The whole spool file (at most cap bytes) into *buf (malloc'd). 0, -1
 * (errno), or 1 when it is larger than cap. */
static int
read_spool(struct intake *in, const struct file_rec *r, size_t cap,
    char **buf, size_t *len)
{
	char *b;
	ssize_t n;
	size_t got = 0;
	int fd;

	*buf = NULL;
	*len = 0;
	if ((size_t)r->size > cap)
		return 1;
	if ((fd = open_spool(in, r)) == -1)
		return -1;
	if ((b = malloc((size_t)r->size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	while (got < (size_t)r->size &&
	    (n = read(fd, b + got, (size_t)r->size - got)) > 0)
		got += (size_t)n;
	close(fd);
	b[got] = '\0';
	*buf = b;
	*len = got;
	return 0;
}

static int
md5_spool(struct intake *in, const struct file_rec *r, char hex[33])
{
	EVP_MD_CTX *c = NULL;
	unsigned char md[EVP_MAX_MD_SIZE], buf[65536];
	unsigned int mdlen = 0;
	ssize_t n;
	int fd, rc = -1;

	if ((fd = open_spool(in, r)) == -1)
		return -1;
	if ((c = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(c, EVP_md5(), NULL) != 1)
		goto fail;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (EVP_DigestUpdate(c, buf, (size_t)n) != 1)
			goto fail;
	if (n == 0 && EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen == 16) {
		hex_encode(md, 16, hex);
		rc = 0;
	}
fail:
	EVP_MD_CTX_free(c);
	close(fd);
	return rc;
}

/* --- walking the landing tree ---------------------------------------- */

typedef void (*walk_fn)(struct pass *, int dfd, const char *name,
    const char *rel, const struct stat *);

static void
walk(struct pass *ps, int dfd, const char *rel, int depth, size_t *count,
    walk_fn fn)
{
	DIR *d;
	struct dirent *de;
	struct stat sb;
	char sub[4096];
	int fd;

	if (depth > WALK_MAX_DEPTH || (fd = dup(dfd)) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL && (*count)++ < WALK_MAX_ENTRIES) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		/* the gateway's receipts are never uploads, nor incomplete */
		if (depth == 0 && ps->p->receipts &&
		    ps->in->cfg->receipts.dir != NULL &&
		    strcmp(de->d_name, ps->in->cfg->receipts.dir) == 0)
			continue;
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		if (xsnprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" :
		    "", de->d_name) < 0)
			continue;
		if (S_ISREG(sb.st_mode))
			fn(ps, dfd, de->d_name, sub, &sb);
		else if (S_ISDIR(sb.st_mode)) {
			fd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
			if (fd != -1) {
				walk(ps, fd, sub, depth + 1, count, fn);
				close(fd);
			}
		}
	}
	closedir(d);
}

static void
walk_find_temp(struct pass *ps, int dfd, const char *name, const char *rel,
    const struct stat *sb)
{
	size_t i;

	(void)dfd;
	(void)name;
	for (i = 0; i < ps->n; i++) {
		struct item *x = &ps->it[i];

		if (!x->temp || x->done || x->r.landing_ino == 0 ||
		    (int64_t)sb->st_ino != x->r.landing_ino ||
		    (int64_t)sb->st_dev != x->r.landing_dev)
			continue;
		/* prefer a final name if the inode has several */
		if (x->found == NULL ||
		    completion_is_temp(&ps->p->completion, x->found)) {
			free(x->found);
			x->found = strdup(rel);
		}
	}
}

/* A landing file left incomplete past incomplete_ttl goes to quarantine. */
static void
walk_incomplete(struct pass *ps, int dfd, const char *name, const char *rel,
    const struct stat *sb)
{
	struct intake *in = ps->in;
	char dir[PATH_MAX], id[33], qname[64], why[PATH_MAX], text[8192];
	char ttl[24];
	struct stat cur;
	int fd, qfd = -1;

	if (!(sb->st_mode & S_IWUSR) ||
	    sb->st_mtime > ps->now / 1000 - ttl_s(ps->p))
		return;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return;
	/* a session writing it holds the lock: leave it */
	if (flock(fd, LOCK_EX | LOCK_NB) == -1 || fstat(fd, &cur) == -1 ||
	    cur.st_ino != sb->st_ino || cur.st_dev != sb->st_dev ||
	    !(cur.st_mode & S_IWUSR))
		goto done;
	if (spool_dir_path(in->cfg->state_dir, SPOOL_QUARANTINE, ps->p->name,
	    dir, sizeof(dir)) == -1 || (qfd = spool_mkdir(dir, 0750)) == -1 ||
	    random_id(id, sizeof(id)) == -1 ||
	    xsnprintf(qname, sizeof(qname), "incomplete-%s", id) < 0 ||
	    xsnprintf(why, sizeof(why), "%s.reason", qname) < 0)
		goto done;
	duration_text(ttl_s(ps->p), ttl, sizeof(ttl));
	xsnprintf(text, sizeof(text), "file: %s\npartner: %s\nsize: %lld\n"
	    "reason: incomplete upload (connection dropped before CLOSE), "
	    "untouched for %s\n", rel, ps->p->name, (long long)cur.st_size, ttl);
	if (write_file_at(qfd, why, text, strlen(text), 0640) == -1 ||
	    renameat2(dfd, name, qfd, qname, RENAME_NOREPLACE) == -1) {
		log_warn("cannot quarantine the incomplete %s/%s", ps->p->name,
		    rel);
		goto done;
	}
	fsync(qfd);
	fsync(dfd);
	audit_emit(in->au, "file.incomplete_expired", json_pack(
	    "{s:s,s:s,s:I,s:s,s:s}", "partner", ps->p->name, "path", rel,
	    "size", (json_int_t)cur.st_size, "quarantined_as", qname,
	    "reason", "incomplete upload untouched past incomplete_ttl"));
	log_warnx("%s/%s: incomplete for over %s, moved to %s/%s/%s",
	    ps->p->name, rel, ttl, spool_dir_name(SPOOL_QUARANTINE),
	    ps->p->name, qname);
done:
	if (qfd != -1)
		close(qfd);
	close(fd);
}

/* --- the rules ------------------------------------------------------- */

static int
cmp_item(const void *a, const void *b)
{
	const struct item *x = *(struct item *const *)a;
	const struct item *y = *(struct item *const *)b;
	int c = strcmp(x->r.path, y->r.path);

	if (c != 0)
		return c;
	return x->r.id < y->r.id ? -1 : x->r.id > y->r.id;
}

static struct item *
lookup(struct pass *ps, const char *path)
{
	size_t lo = 0, hi = ps->nbyname, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(ps->byname[mid]->r.path, path);
		if (c == 0)
			return ps->byname[mid]->done ? NULL : ps->byname[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static struct item *
lookup_suffix(struct pass *ps, const char *path, const char *suffix,
    enum sidecar_kind kind)
{
	char name[4200];
	struct item *s;

	if (xsnprintf(name, sizeof(name), "%s%s", path, suffix) < 0)
		return NULL;
	s = lookup(ps, name);
	return s != NULL && s->kind == kind ? s : NULL;
}

static int
expired(const struct pass *ps, const struct item *x, int64_t limit_s)
{
	return ps->now - x->r.received_ms >= limit_s * 1000;
}

static void
add_rule(struct item *x, const char *rule)
{
	xstrlcat(x->rule, "+", sizeof(x->rule));
	xstrlcat(x->rule, rule, sizeof(x->rule));
}

/* Resolves temp names: 0, or -1 to skip the pass (state error). */
static int
resolve_temps(struct pass *ps)
{
	size_t i, count = 0, ntemp = 0;
	char why[600], ttl[24];
	int rc;

	for (i = 0; i < ps->n; i++)
		ntemp += ps->it[i].temp;
	if (ntemp == 0)
		return 0;
	if (ps->landingfd != -1)
		walk(ps, ps->landingfd, "", 0, &count, walk_find_temp);
	if (state_begin(ps->in->st) == -1)
		return -1;
	for (i = 0; i < ps->n; i++) {
		struct item *x = &ps->it[i];

		if (!x->temp || x->done || x->found == NULL ||
		    completion_is_temp(&ps->p->completion, x->found))
			continue;
		rc = state_set_path(ps->in->st, x->r.id, FS_WAITING, x->found);
		if (rc != 1) {
			state_rollback(ps->in->st);
			return -1;
		}
	}
	if (state_commit(ps->in->st) == -1)
		return -1;
	for (i = 0; i < ps->n; i++) {
		struct item *x = &ps->it[i];

		if (!x->temp || x->done)
			continue;
		if (x->found != NULL &&
		    !completion_is_temp(&ps->p->completion, x->found)) {
			log_info("%s/%s renamed to %s", x->r.partner,
			    x->r.path, x->found);
			xstrlcpy(x->r.path, x->found, sizeof(x->r.path));
			x->temp = 0;
			x->was_temp = 1;
			continue;
		}
		duration_text(ttl_s(ps->p), ttl, sizeof(ttl));
		if (x->found == NULL && ps->landingfd != -1 &&
		    x->r.landing_ino != 0 && count < WALK_MAX_ENTRIES) {
			reject(ps, x, "the partner removed it before renaming "
			    "it to a final name");
			continue;
		}
		if (expired(ps, x, ttl_s(ps->p))) {
			xsnprintf(why, sizeof(why), "not renamed from its temp "
			    "name to a final name within %s", ttl);
			reject(ps, x, why);
			continue;
		}
		xstrlcpy(x->wait, "a rename to its final name",
		    sizeof(x->wait));
	}
	return 0;
}

/* Prepares the partner's GNUPGHOME once per pass. */
static int
need_home(struct pass *ps)
{
	int64_t *retry = &ps->in->home_retry[ps->pi];

	if (ps->home_state == 0) {
		/* a failed import (logged) is retried now and then, not on
		 * every pass */
		if (ps->now < *retry)
			ps->home_state = -1;
		else if (verify_home(ps->in->cfg->state_dir, ps->p, ps->home,
		    sizeof(ps->home)) == 0)
			ps->home_state = 1;
		else {
			ps->home_state = -1;
			*retry = ps->now + HOME_RETRY_MS;
		}
	}
	return ps->home_state == 1 ? 0 : -1;
}

/*
 * Closes the descriptors of x's signature check; the plaintext temp file
 * (encrypted mode, keep_plaintext) becomes plaintext/<partner>/<fid> when
 * good, else it is removed.
 */
static void
sig_close(struct item *x, int good)
{
	if (x->vpfd != -1) {
		if (good && fsync(x->vpfd) == 0 &&
		    renameat(x->vpdir, x->plain, x->vpdir, x->r.fid) == 0)
			fsync(x->vpdir);
		else
			unlinkat(x->vpdir, x->plain, 0);
		close(x->vpfd);
	}
	if (x->vpdir != -1)
		close(x->vpdir);
	if (x->vsfd != -1)
		close(x->vsfd);
	if (x->vfd != -1)
		close(x->vfd);
	x->vfd = x->vsfd = x->vpfd = x->vpdir = -1;
}

/*
 * Starts the next step of x's check: detached, the next signature file
 * (.sig, then .asc); inline or encrypted, the only one. 1 when its job
 * runs (x->job), -1 when it could not start (descriptors closed).
 */
static int
sig_launch(struct pass *ps, struct item *x)
{
	const struct signature_config *sc = &ps->p->signature;
	struct intake *in = ps->in;
	char dir[PATH_MAX], id[33];
	int k;

	switch (sc->mode) {
	case SIG_DETACHED:
		for (k = x->vside; k < 4 && x->side[k] == NULL; k++)
			;
		if (k == 4)
			break;
		x->vside = k + 1;
		if (x->vsfd != -1)
			close(x->vsfd);
		if ((x->vsfd = open_spool(in, &x->side[k]->r)) == -1) {
			log_warn("cannot open spool file %s", x->side[k]->r.fid);
			break;
		}
		if (verify_start(ps->home, sc, VERIFY_DETACHED, x->vfd,
		    x->vsfd, -1, &x->job) == -1)
			break;
		return 1;
	case SIG_INLINE:
		if (verify_start(ps->home, sc, VERIFY_INLINE, x->vfd, -1, -1,
		    &x->job) == -1)
			break;
		return 1;
	case SIG_ENCRYPTED:
		if (sc->keep_plaintext) {
			/* plaintext/<partner>/.<fid>.<random>.tmp, created
			 * exclusively in our own 0700 directories */
			if (!spool_fid_ok(x->r.fid) ||
			    spool_dir_path(in->cfg->state_dir, SPOOL_PLAINTEXT,
			    NULL, dir, sizeof(dir)) == -1 ||
			    (x->vpdir = spool_mkdir(dir, 0700)) == -1)
				goto plain_fail;
			close(x->vpdir);
			if (spool_dir_path(in->cfg->state_dir, SPOOL_PLAINTEXT,
			    x->r.partner, dir, sizeof(dir)) == -1 ||
			    (x->vpdir = spool_mkdir(dir, 0700)) == -1 ||
			    random_id(id, sizeof(id)) == -1 ||
			    xsnprintf(x->plain, sizeof(x->plain), ".%s.%s.tmp",
			    x->r.fid, id) < 0 ||
			    (x->vpfd = openat(x->vpdir, x->plain, O_WRONLY |
			    O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0600)) == -1)
				goto plain_fail;
		}
		in->agent[ps->pi] = 1;
		if (verify_start(ps->home, sc, VERIFY_ENCRYPTED, x->vfd, -1,
		    x->vpfd, &x->job) == -1)
			break;
		return 1;
	plain_fail:
		log_warn("cannot create the plaintext file for %s", x->r.fid);
		break;
	default:
		break;
	}
	sig_close(x, 0);
	return -1;
}

/*
 * Starts checking x's signature(s) per signature.mode (the start half; the
 * job's descriptors stay in x until sig_next). 1 when a job runs (x->job),
 * 0 with x->vr filled when decided without gpg (signature.mode none), -1
 * when the check could not run (try again later).
 */
static int
sig_begin(struct pass *ps, struct item *x)
{
	memset(&x->vr, 0, sizeof(x->vr));
	x->job = NULL;
	x->vfd = x->vsfd = x->vpfd = x->vpdir = -1;
	x->vside = 2;
	if (ps->p->signature.mode == SIG_NONE) {
		x->vr.ok = 1;
		return 0;
	}
	if (need_home(ps) == -1)
		return -1;
	if ((x->vfd = open_spool(ps->in, &x->r)) == -1) {
		log_warn("cannot open spool file %s", x->r.fid);
		return -1;
	}
	return sig_launch(ps, x);
}

/*
 * The end half: x's job was collected (verify_wait gave rc, x->vr). With
 * both .sig and .asc, a good first one starts the second: 1, its job runs.
 * Otherwise the descriptors are closed (the plaintext kept only when good)
 * and rc is returned: 0 with x->vr the verdict, -1 try again later.
 */
static int
sig_next(struct pass *ps, struct item *x, int rc)
{
	int k;

	x->job = NULL;
	if (rc == 0 && x->vr.ok && ps->p->signature.mode == SIG_DETACHED) {
		for (k = x->vside; k < 4 && x->side[k] == NULL; k++)
			;
		if (k < 4)
			return sig_launch(ps, x);
	}
	sig_close(x, rc == 0 && x->vr.ok);
	return rc;
}

/*
 * Checks every rule but the manifest batch for data file x. Sets x->ready,
 * or x->wait, or rejects it.
 */
static void
judge_rules(struct pass *ps, struct item *x)
{
	const struct completion_config *c = &ps->p->completion;
	const struct signature_config *sc = &ps->p->signature;
	char why[1024], d[24], hex[65], suffix[32], *buf = NULL;
	struct item *m, *ck;
	struct stat sb;
	size_t len, hexlen;
	int rc;

	xstrlcpy(x->rule, "closed", sizeof(x->rule));
	if (x->was_temp)
		add_rule(x, "rename");
	x->wait[0] = '\0';
	if (c->marker != NULL && c->marker[0] != '\0') {
		m = lookup_suffix(ps, x->r.path, c->marker, SIDECAR_MARKER);
		x->side[0] = m;
		if (m == NULL) {
			if (expired(ps, x, ttl_s(ps->p))) {
				duration_text(ttl_s(ps->p), d, sizeof(d));
				xsnprintf(why, sizeof(why), "%s%s did not "
				    "arrive within %s", x->r.path, c->marker, d);
				reject_all(ps, x, why);
				return;
			}
			xsnprintf(x->wait, sizeof(x->wait), "%s%s", x->r.path,
			    c->marker);
			return;
		}
		add_rule(x, "marker");
	}
	if ((hexlen = checksum_hexlen(c->checksum)) > 0) {
		xsnprintf(suffix, sizeof(suffix), ".%s", c->checksum);
		ck = lookup_suffix(ps, x->r.path, suffix, SIDECAR_CHECKSUM);
		x->side[1] = ck;
		if (ck == NULL) {
			if (expired(ps, x, ttl_s(ps->p))) {
				duration_text(ttl_s(ps->p), d, sizeof(d));
				xsnprintf(why, sizeof(why), "%s%s did not "
				    "arrive within %s", x->r.path, suffix, d);
				reject_all(ps, x, why);
				return;
			}
			xsnprintf(x->wait, sizeof(x->wait), "%s%s", x->r.path,
			    suffix);
			return;
		}
		rc = read_spool(ps->in, &ck->r, SIDECAR_MAX, &buf, &len);
		if (rc == -1) {
			log_warn("cannot read spool file %s", ck->r.fid);
			xstrlcpy(x->wait, "the checksum file to be readable",
			    sizeof(x->wait));
			return;
		}
		if (rc == 1) {
			xsnprintf(why, sizeof(why), "%s is larger than 1 MiB, "
			    "not a checksum file", ck->r.path);
			reject_all(ps, x, why);
			return;
		}
		rc = checksum_find(buf, len, x->r.path, hexlen, hex,
		    sizeof(hex), why, sizeof(why));
		free(buf);
		if (rc != 1) {
			char w2[1200];

			xsnprintf(w2, sizeof(w2), "%s: %s", ck->r.path, why);
			reject_all(ps, x, w2);
			return;
		}
		if (hexlen == 32) {
			char md5[33];

			if (md5_spool(ps->in, &x->r, md5) == -1) {
				xstrlcpy(x->wait, "the file to be readable",
				    sizeof(x->wait));
				return;
			}
			rc = strcmp(md5, hex) == 0;
			if (!rc)
				xsnprintf(why, sizeof(why), "checksum mismatch: "
				    "%s says md5 %s, the file received has %s",
				    ck->r.path, hex, md5);
		} else {
			rc = strcasecmp(x->r.sha256, hex) == 0;
			if (!rc)
				xsnprintf(why, sizeof(why), "checksum mismatch: "
				    "%s says sha256 %s, the file received has "
				    "%s", ck->r.path, hex, x->r.sha256);
		}
		if (!rc) {
			reject_all(ps, x, why);
			return;
		}
		add_rule(x, "checksum");
	}
	if (c->quiet_s > 0) {
		if (!expired(ps, x, c->quiet_s)) {
			xsnprintf(x->wait, sizeof(x->wait), "%" PRId64 " quiet "
			    "seconds after close", c->quiet_s);
			return;
		}
		if (ps->landingfd != -1 && fstatat(ps->landingfd, x->r.path,
		    &sb, AT_SYMLINK_NOFOLLOW) == 0 && x->r.landing_ino != 0 &&
		    ((int64_t)sb.st_ino != x->r.landing_ino ||
		    (int64_t)sb.st_dev != x->r.landing_dev)) {
			/* the name is being written again */
			if (expired(ps, x, ttl_s(ps->p))) {
				reject_all(ps, x, "replaced by another upload "
				    "of the same name that never completed");
				return;
			}
			xstrlcpy(x->wait, "the upload replacing it to finish",
			    sizeof(x->wait));
			return;
		}
		add_rule(x, "quiet");
	}
	if (sc->mode == SIG_DETACHED) {
		x->side[2] = lookup_suffix(ps, x->r.path, ".sig",
		    SIDECAR_SIGNATURE);
		x->side[3] = lookup_suffix(ps, x->r.path, ".asc",
		    SIDECAR_SIGNATURE);
		if (x->side[2] == NULL && x->side[3] == NULL) {
			if (expired(ps, x, secs_or(sc->wait_s,
			    DEFAULT_SIG_WAIT))) {
				duration_text(secs_or(sc->wait_s,
				    DEFAULT_SIG_WAIT), d, sizeof(d));
				xsnprintf(why, sizeof(why), "no signature within "
				    "%s (expected %s.sig or %s.asc)", d,
				    x->r.path, x->r.path);
				reject_all(ps, x, why);
				return;
			}
			xsnprintf(x->wait, sizeof(x->wait), "its signature "
			    "%s.sig or %s.asc", x->r.path, x->r.path);
			return;
		}
	}
	x->ready = 1;
}

/* Duplicate check. 0 go on (*dup set when flagged), 1 rejected, -1 error. */
static int
duplicate(struct pass *ps, struct item *x, struct file_rec *orig)
{
	char why[1200], when[40];
	int rc;

	if (ps->p->duplicate_window_s <= 0 ||
	    ps->p->duplicate_policy == DUP_ACCEPT)
		return 0;
	rc = state_find_dup(ps->in->st, x->r.partner, x->r.sha256,
	    x->r.received_ms - ps->p->duplicate_window_s * 1000, x->r.id, orig);
	if (rc <= 0)
		return rc;
	iso8601_ms(orig->received_ms, when, sizeof(when));
	audit_emit(ps->in->au, "file.duplicate", json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "partner", x->r.partner,
	    "fid", x->r.fid, "path", x->r.path, "sha256", x->r.sha256,
	    "duplicate_of", orig->fid, "duplicate_of_path", orig->path,
	    "duplicate_of_received", when, "policy",
	    ps->p->duplicate_policy == DUP_REJECT ? "reject" : "accept-and-flag"));
	if (ps->p->duplicate_policy == DUP_REJECT) {
		xsnprintf(why, sizeof(why), "duplicate: the same bytes (sha256 "
		    "%s) arrived as %s at %s", x->r.sha256, orig->path, when);
		reject_all(ps, x, why);
		return 1;
	}
	return 2;
}

/* Ships data file x (signature checked by the caller) and its sidecars. */
static void
ship(struct pass *ps, struct item *x, const struct verify_result *vr,
    const struct file_rec *dup)
{
	char at[32] = "";
	json_t *meta;
	size_t k;

	meta = json_object();
	if (meta != NULL && vr->signer[0] != '\0') {
		verify_time_text(vr->signed_at, at, sizeof(at));
		json_object_set_new(meta, "signer", json_string(vr->signer));
		json_object_set_new(meta, "signed-at", json_string(at));
	}
	if (meta != NULL && dup != NULL)
		json_object_set_new(meta, "duplicate-of", json_string(dup->fid));
	if (meta != NULL && json_object_size(meta) == 0) {
		json_decref(meta);
		meta = NULL;
	}
	if (accept_file(ps, x, meta, x->rule, vr->signer, at, NULL) == -1 ||
	    !x->done)
		return;
	/* the sidecars move only if the data file did */
	if (ps->nacts > 0)
		ps->dep = (long)ps->nacts - 1;
	for (k = 0; k < 4; k++)
		if (x->side[k] != NULL)
			consume(ps, x->side[k], x);
	ps->dep = -1;
	flush_due(ps);
}

/* The verdict on x's signature check (rc from sig_begin/sig_next, x->vr).
 * 0 good, 1 rejected (with its sidecars when reject_it), -1 try again
 * later. */
static int
verify_item(struct pass *ps, struct item *x, int rc, int reject_it)
{
	char why[700];

	if (rc == -1) {
		xstrlcpy(x->wait, "signature verification to be possible "
		    "(see the log)", sizeof(x->wait));
		return -1;
	}
	if (!x->vr.ok) {
		if (reject_it) {
			xsnprintf(why, sizeof(why), "signature: %s",
			    x->vr.reason);
			reject_all(ps, x, why);
		}
		return 1;
	}
	if (ps->p->signature.mode != SIG_NONE)
		add_rule(x, "signature");
	return 0;
}

/* Duplicate check, then ship x (verified) and its sidecars. */
static void
ship_item(struct pass *ps, struct item *x)
{
	struct file_rec orig;
	int d;

	if ((d = duplicate(ps, x, &orig)) == -1 || d == 1)
		return;
	ship(ps, x, &x->vr, d == 2 ? &orig : NULL);
}

/* Member j of manifest mf (entries m) by name: its item not yet judged in
 * this pass, or NULL. */
static struct item *
batch_member(struct pass *ps, const struct item *mf, const struct manifest *m,
    size_t j)
{
	char want[8192];
	const char *slash = strrchr(mf->r.path, '/');

	if (xsnprintf(want, sizeof(want), "%.*s%s%s",
	    slash ? (int)(slash - mf->r.path) : 0, mf->r.path,
	    slash ? "/" : "", m->e[j].name) < 0)
		return NULL;
	return lookup(ps, want);
}

/* Rejects manifest mf (entries m) and every member of its batch. */
static void
batch_reject(struct pass *ps, struct item *mf, const struct manifest *m,
    const char *why)
{
	struct item *x;
	size_t j;

	for (j = 0; j < m->n; j++)
		if ((x = batch_member(ps, mf, m, j)) != NULL)
			reject_all(ps, x, why);
	reject(ps, mf, why);
}

/* mf's batch is not complete (why): it waits, or past manifest_timeout it
 * is rejected with every member. */
static void
batch_wait(struct pass *ps, struct item *mf, const struct manifest *m,
    const char *why)
{
	const struct completion_config *c = &ps->p->completion;
	char w2[1400], d[24];
	struct item *x;
	size_t j;

	if (expired(ps, mf, secs_or(c->manifest_timeout_s,
	    DEFAULT_MANIFEST_TIMEOUT))) {
		duration_text(secs_or(c->manifest_timeout_s,
		    DEFAULT_MANIFEST_TIMEOUT), d, sizeof(d));
		xsnprintf(w2, sizeof(w2), "batch %s incomplete after %s: %s",
		    mf->r.path, d, why);
		batch_reject(ps, mf, m, w2);
		return;
	}
	xsnprintf(mf->wait, sizeof(mf->wait), "its batch: %s", why);
	for (j = 0; j < m->n; j++) {
		/* members wait for the batch, not a manifest */
		if ((x = batch_member(ps, mf, m, j)) != NULL &&
		    x->kind == SIDECAR_NONE && x->manifest < 0) {
			x->manifest = (int)(mf - ps->it);
			if (x->ready)
				xsnprintf(x->wait, sizeof(x->wait),
				    "its batch %s: %s", mf->r.path, why);
		}
	}
}

/* Every member of batch b verified: ships them with their manifest. */
static void
batch_ship(struct pass *ps, struct batch *b)
{
	size_t j;

	b->decided = 1;
	for (j = 0; j < b->m.n; j++) {
		struct item *x = b->mem[j];

		if (x->kind == SIDECAR_NONE && !x->done)
			ship_item(ps, x);
		else
			consume(ps, x, b->mf);
	}
	consume(ps, b->mf, NULL);
}

/* Member x of its batch was verified (rc as verify_item gives it, its
 * verdict given): the batch waits, is rejected, or ships once all are. */
static void
batch_verified(struct pass *ps, struct item *x, int rc)
{
	struct batch *b = &ps->batches[x->batch];
	struct file_rec orig;
	char w2[1400];

	if (b->decided)
		return;
	if (rc == -1) {
		b->decided = 1;
		batch_wait(ps, b->mf, &b->m, "signature verification to be "
		    "possible");
		return;
	}
	if (rc == 1) {
		xsnprintf(w2, sizeof(w2), "batch %s: %s: signature: %s",
		    b->mf->r.path, x->r.path, x->vr.reason);
		b->decided = 1;
		batch_reject(ps, b->mf, &b->m, w2);
		return;
	}
	if (ps->p->duplicate_window_s > 0 &&
	    ps->p->duplicate_policy == DUP_REJECT && state_find_dup(ps->in->st,
	    x->r.partner, x->r.sha256, x->r.received_ms -
	    ps->p->duplicate_window_s * 1000, x->r.id, &orig) == 1) {
		xsnprintf(w2, sizeof(w2), "batch %s: %s duplicates %s",
		    b->mf->r.path, x->r.path, orig.path);
		b->decided = 1;
		batch_reject(ps, b->mf, &b->m, w2);
		return;
	}
	if (--b->left == 0)
		batch_ship(ps, b);
}

/*
 * mf's batch has arrived (m: its entries, taken on success; members
 * bi[match[j]]): its data members join the pass's verification queue, and
 * it ships when all are verified (batch_verified). 0, or -1 (no memory).
 */
static int
batch_queue(struct pass *ps, struct item *mf, struct manifest *m,
    struct item **bi, const size_t *match)
{
	struct batch *nb, *b;
	struct item **mem;
	size_t j, bn = ps->nbatches;

	if ((mem = calloc(m->n ? m->n : 1, sizeof(*mem))) == NULL)
		return -1;
	if ((nb = reallocarray(ps->batches, bn + 1, sizeof(*nb))) == NULL) {
		free(mem);
		return -1;
	}
	ps->batches = nb;
	b = &ps->batches[bn];
	memset(b, 0, sizeof(*b));
	b->mf = mf;
	b->m = *m;
	b->mem = mem;
	ps->nbatches++;
	for (j = 0; j < m->n; j++) {
		struct item *x = bi[match[j]];

		mem[j] = x;
		if (x->kind != SIDECAR_NONE || x->batch >= 0)
			continue;
		add_rule(x, "manifest");
		x->manifest = (int)(mf - ps->it);
		x->batch = (int)bn;
		ps->vq[ps->nvq++] = x;	/* each item at most once */
		b->left++;
	}
	memset(m, 0, sizeof(*m));
	if (b->left == 0)
		batch_ship(ps, b);
	return 0;
}

static void
judge_manifests(struct pass *ps)
{
	const struct completion_config *c = &ps->p->completion;
	struct batch_file *bf = NULL;
	struct item **bi = NULL;
	struct manifest m;
	char why[1200], w2[1400];
	size_t i, j, nb = 0, *match = NULL;
	char *buf;
	size_t len;
	int rc, all;

	if (c->manifest == NULL)
		return;
	if ((bf = calloc(ps->n ? ps->n : 1, sizeof(*bf))) == NULL ||
	    (bi = calloc(ps->n ? ps->n : 1, sizeof(*bi))) == NULL)
		goto out;
	for (i = 0; i < ps->n; i++) {
		if (ps->it[i].done || ps->it[i].temp)
			continue;
		bf[nb].path = ps->it[i].r.path;
		bf[nb].size = ps->it[i].r.size;
		bf[nb].sha256 = ps->it[i].r.sha256;
		bi[nb++] = &ps->it[i];
	}
	for (i = 0; i < ps->n; i++) {
		struct item *mf = &ps->it[i];

		if (mf->done || mf->temp || mf->kind != SIDECAR_MANIFEST)
			continue;
		rc = read_spool(ps->in, &mf->r, MANIFEST_MAX, &buf, &len);
		if (rc == -1) {
			xstrlcpy(mf->wait, "the manifest to be readable",
			    sizeof(mf->wait));
			continue;
		}
		if (rc == 1 || manifest_parse(buf, len, &m, why,
		    sizeof(why)) == -1) {
			free(buf);
			if (rc == 1)
				xstrlcpy(why, "larger than 16 MiB", sizeof(why));
			xsnprintf(w2, sizeof(w2), "not a manifest: %s", why);
			reject(ps, mf, w2);
			continue;
		}
		free(buf);
		free(match);
		if ((match = calloc(m.n, sizeof(*match))) == NULL) {
			manifest_free(&m);
			continue;
		}
		rc = manifest_batch_complete(&m, mf->r.path, bf, nb, match,
		    why, sizeof(why));
		if (rc == 1) {
			/* every member must be ready (their other rules) */
			all = 1;
			for (j = 0; j < m.n; j++) {
				struct item *x = bi[match[j]];

				if (x->done) {
					all = 0;
					xsnprintf(why, sizeof(why), "%s was "
					    "rejected", x->r.path);
				} else if (x->kind == SIDECAR_NONE && !x->ready) {
					all = 0;
					xsnprintf(why, sizeof(why), "%s: %s",
					    x->r.path, x->wait);
				} else if (x->kind == SIDECAR_NONE &&
				    x->batch >= 0) {
					all = 0;
					xsnprintf(why, sizeof(why), "%s is in "
					    "the batch of %s too", x->r.path,
					    ps->batches[x->batch].mf->r.path);
				}
			}
			/* the batch ships together: each signature first
			 * (in the pass's queue), then all */
			if (all && batch_queue(ps, mf, &m, bi, match) == 0)
				continue;
			if (all)
				xstrlcpy(why, "memory to check its signatures",
				    sizeof(why));
		}
		if (rc == -1)
			xstrlcpy(why, "a name in it is too long", sizeof(why));
		batch_wait(ps, mf, &m, why);
		manifest_free(&m);
	}
out:
	free(match);
	free(bf);
	free(bi);
}

static int open_incoming(struct intake *);
static int forge_row(struct intake *, int, const struct file_rec *,
    enum file_state, const char *, const struct partner *, int);

/* Applies ps's last verdicts and frees what it holds (not ps). */
static void
pass_free(struct pass *ps)
{
	size_t i;

	flush(ps);
	free(ps->acts);
	if (ps->it != NULL)
		for (i = 0; i < ps->n; i++) {
			if (ps->it[i].job != NULL) {	/* never: defensive */
				verify_cancel(ps->it[i].job);
				sig_close(&ps->it[i], 0);
			}
			free(ps->it[i].found);
		}
	for (i = 0; i < ps->nbatches; i++) {
		manifest_free(&ps->batches[i].m);
		free(ps->batches[i].mem);
	}
	free(ps->batches);
	free(ps->vq);
	free(ps->it);
	free(ps->byname);
	if (ps->landingfd != -1)
		close(ps->landingfd);
}

/* x's signature check ended (rc from sig_begin/sig_next): its verdict,
 * then x ships, or its batch decides. */
static void
item_verified(struct pass *ps, struct item *x, int rc)
{
	if (x->batch >= 0)
		batch_verified(ps, x, verify_item(ps, x, rc, 0));
	else if (verify_item(ps, x, rc, 1) == 0)
		ship_item(ps, x);
}

/*
 * Moves ps's queue on: a check decided without gpg is finished at once;
 * the next that needs gpg starts when a job slot is free (in->running <
 * VERIFY_JOBS), in queue order, one job at a time for the partner (one
 * gpg-agent a home).
 */
static void
pass_advance(struct pass *ps)
{
	struct intake *in = ps->in;
	struct item *x;
	int rc;

	while (ps->cur == NULL && ps->vqi < ps->nvq && !proc_quit) {
		x = ps->vq[ps->vqi];
		if (x->done || (x->batch >= 0 &&
		    ps->batches[x->batch].decided)) {
			ps->vqi++;
			continue;
		}
		if (ps->p->signature.mode != SIG_NONE &&
		    in->running >= VERIFY_JOBS)
			return;
		ps->vqi++;
		flush_due(ps);		/* not behind a slow gpg */
		if ((rc = sig_begin(ps, x)) == 1) {
			ps->cur = x;
			in->running++;
			return;
		}
		item_verified(ps, x, rc);
	}
}

/*
 * ps's job answered, or its deadline passed, or (cancel) the intake stops:
 * collects it (verify_wait without blocking; cancel kills it). A second
 * detached signature to check keeps the slot; otherwise the verdict is
 * given and the slot freed.
 */
static void
pass_collect(struct pass *ps, int cancel)
{
	struct item *x = ps->cur;
	int rc;

	if (cancel) {
		verify_cancel(x->job);
		log_info("%s/%s: signature verification stopped (the intake "
		    "is stopping); checked again at the next start",
		    x->r.partner, x->r.path);
		memset(&x->vr, 0, sizeof(x->vr));
		rc = -1;
	} else if ((rc = verify_wait(x->job, 0, &x->vr)) == 1)
		return;				/* not yet */
	x->job = NULL;
	if ((rc = sig_next(ps, x, rc)) == 1)
		return;
	ps->cur = NULL;
	ps->in->running--;
	item_verified(ps, x, rc);
}

/* The last phase of a pass (its queue done): sidecars whose data file
 * never came, the waiting reasons; the partner's gpg-agent (encrypted
 * mode) is stopped. The caller then applies the verdicts (pass_free). */
static void
pass_finish(struct pass *ps)
{
	struct intake *in = ps->in;
	const struct partner *p = ps->p;
	char why[1200], d[24], home[PATH_MAX];
	size_t i, pi = ps->pi;

	/* sidecars still here: their data file waits, or never came */
	duration_text(ttl_s(p), d, sizeof(d));
	for (i = 0; i < ps->n; i++) {
		struct item *s = &ps->it[i], *x;

		if (s->done || s->temp || s->kind == SIDECAR_NONE ||
		    s->kind == SIDECAR_MANIFEST)
			continue;
		if ((x = lookup(ps, s->data)) != NULL &&
		    x->kind == SIDECAR_NONE) {
			xsnprintf(s->wait, sizeof(s->wait), "%s to be complete",
			    s->data);
			continue;
		}
		if (expired(ps, s, ttl_s(p))) {
			xsnprintf(why, sizeof(why), "no data file %s arrived "
			    "for this %s within %s", s->data,
			    sidecar_kind_name(s->kind), d);
			reject(ps, s, why);
		} else
			xsnprintf(s->wait, sizeof(s->wait), "its data file %s",
			    s->data);
	}
	for (i = 0; i < ps->n; i++)
		if (!ps->it[i].done && ps->it[i].wait[0] != '\0')
			set_waiting(ps, &ps->it[i]);
	if (in->agent[pi] && spool_dir_path(in->cfg->state_dir, SPOOL_GNUPG,
	    p->name, home, sizeof(home)) == 0) {
		verify_stop_agent(home);
		in->agent[pi] = 0;
	}
}

/*
 * A pass over every waiting file of partner cfg->partners[pi], up to its
 * signature checks: every other rule is judged, and the data files whose
 * signature decides (alone, or as members of an arrived manifest batch)
 * are queued in ps.vq. A pass with signatures to check lives on in
 * in->pass[pi] (moved to the heap, keep) and verify_turn() goes on with it;
 * any other is finished here.
 */
static void
judge_partner(struct intake *in, size_t pi)
{
	const struct partner *p = &in->cfg->partners[pi];
	const struct completion_config *c = &p->completion;
	struct file_rec *rows = NULL;
	struct pass ps, *keep = NULL;
	char landing[PATH_MAX], why[1200], d[24], when[40];
	size_t n = 0, i, k;
	int incfd;

	if (state_list(in->st, FS_WAITING, p->name, MAX_WAITING, &rows,
	    &n) == -1 || n == 0 || (keep = malloc(sizeof(*keep))) == NULL) {
		free(rows);
		return;
	}
	memset(&ps, 0, sizeof(ps));
	ps.in = in;
	ps.p = p;
	ps.pi = pi;
	ps.now = now_ms();
	ps.landingfd = -1;
	ps.dep = -1;
	if ((ps.it = calloc(n, sizeof(*ps.it))) == NULL ||
	    (ps.byname = calloc(n, sizeof(*ps.byname))) == NULL ||
	    (ps.vq = calloc(n, sizeof(*ps.vq))) == NULL)
		goto out;
	/* a waiting row no session of ours wrote: forged, never judged */
	for (i = k = 0; i < n; i++) {
		if (spool_fid_ok(rows[i].fid) && spool_relpath_ok(rows[i].path)) {
			rows[k++] = rows[i];
			continue;
		}
		if (receipt_check(&rows[i], why, sizeof(why)) == 0)
			xstrlcpy(why, "not a valid name", sizeof(why));
		if ((incfd = open_incoming(in)) != -1) {
			(void)forge_row(in, incfd, &rows[i], FS_WAITING, why,
			    NULL, 0);
			close(incfd);
		}
	}
	n = k;
	ps.n = n;
	for (i = 0; i < n; i++) {
		ps.it[i].r = rows[i];
		ps.it[i].temp = completion_is_temp(c, rows[i].path);
		ps.it[i].manifest = -1;
		ps.it[i].batch = -1;
		ps.it[i].vfd = ps.it[i].vsfd = -1;
		ps.it[i].vpfd = ps.it[i].vpdir = -1;
	}
	free(rows);
	rows = NULL;
	if (spool_dir_path(in->cfg->state_dir, SPOOL_LANDING, p->name, landing,
	    sizeof(landing)) == 0)
		ps.landingfd = open(landing, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);

	if (resolve_temps(&ps) == -1)
		goto out;
	for (i = 0; i < n; i++)
		if (!ps.it[i].temp && !ps.it[i].done)
			ps.it[i].kind = completion_sidecar(c, &p->signature,
			    ps.it[i].r.path, ps.it[i].data,
			    sizeof(ps.it[i].data));

	/* a newer upload of a name supersedes an older one still waiting */
	for (i = 0; i < n; i++)
		if (!ps.it[i].temp && !ps.it[i].done)
			ps.byname[ps.nbyname++] = &ps.it[i];
	qsort(ps.byname, ps.nbyname, sizeof(*ps.byname), cmp_item);
	for (i = 0; i + 1 < ps.nbyname; i++)
		if (strcmp(ps.byname[i]->r.path, ps.byname[i + 1]->r.path) == 0) {
			iso8601_ms(ps.byname[i + 1]->r.received_ms, when,
			    sizeof(when));
			xsnprintf(why, sizeof(why), "replaced by a newer upload "
			    "of the same name (received %s) before it was "
			    "complete", when);
			reject(&ps, ps.byname[i], why);
		}
	for (i = k = 0; i < ps.nbyname; i++)
		if (!ps.byname[i]->done)
			ps.byname[k++] = ps.byname[i];
	ps.nbyname = k;

	for (i = 0; i < n; i++)
		if (!ps.it[i].temp && !ps.it[i].done &&
		    ps.it[i].kind == SIDECAR_NONE)
			judge_rules(&ps, &ps.it[i]);
	judge_manifests(&ps);

	duration_text(secs_or(c->manifest_timeout_s, DEFAULT_MANIFEST_TIMEOUT),
	    d, sizeof(d));
	for (i = 0; i < n && !proc_quit; i++) {
		struct item *x = &ps.it[i];

		if (x->done || x->temp || x->kind != SIDECAR_NONE || !x->ready)
			continue;
		if (c->manifest != NULL) {
			if (x->manifest >= 0)
				continue;	/* its batch decides */
			if (expired(&ps, x, secs_or(c->manifest_timeout_s,
			    DEFAULT_MANIFEST_TIMEOUT))) {
				xsnprintf(why, sizeof(why), "no manifest listed "
				    "it within %s", d);
				reject_all(&ps, x, why);
			} else
				xstrlcpy(x->wait, "a manifest listing it",
				    sizeof(x->wait));
			continue;
		}
		ps.vq[ps.nvq++] = x;	/* its signature decides */
	}
	pass_advance(&ps);	/* signature.mode none: all of it now */
	if (ps.cur != NULL || ps.vqi < ps.nvq) {
		*keep = ps;
		in->pass[pi] = keep;
		return;
	}
	pass_finish(&ps);
out:
	pass_free(&ps);
	free(keep);
	free(rows);
}

/* Every pass's queue moves on; partners take free slots in turn. */
static void
advance_all(struct intake *in)
{
	struct pass *ps;
	size_t np = in->cfg->npartners, k;

	for (k = 0; k < np; k++) {
		if ((ps = in->pass[(in->rr + k) % np]) != NULL) {
			flush_due(ps);
			pass_advance(ps);
		}
	}
	in->rr = np ? (in->rr + 1) % np : 0;
}

/*
 * One turn of the verifications: queues move on and free slots are taken
 * (partners in turn), then up to VERIFY_POLL_MS is spent in poll() on the
 * running jobs (never past the earliest deadline), and the jobs that
 * answered are collected. Passes whose queue is done are finished. 1 when
 * it waited for jobs, 0 when none ran (the caller sleeps).
 */
static int
verify_turn(struct intake *in)
{
	struct pollfd pfd[VERIFY_JOBS];
	struct pass *run[VERIFY_JOBS], *ps;
	size_t np = in->cfg->npartners, i, nrun = 0;
	int64_t now, wait = VERIFY_POLL_MS, left;

	advance_all(in);
	now = mono_ms();
	for (i = 0; i < np && nrun < VERIFY_JOBS; i++) {
		if ((ps = in->pass[i]) == NULL || ps->cur == NULL)
			continue;
		run[nrun] = ps;
		pfd[nrun].fd = verify_job_fd(ps->cur->job);
		pfd[nrun].events = POLLIN;
		pfd[nrun].revents = 0;
		left = pfd[nrun].fd == -1 ? 0 :
		    verify_job_deadline(ps->cur->job) - now;
		if (left < wait)
			wait = left < 0 ? 0 : left;
		nrun++;
	}
	if (nrun > 0 && poll(pfd, nrun, (int)wait) == -1 && errno != EINTR)
		log_warn("intake: poll");
	now = mono_ms();
	for (i = 0; i < nrun; i++)
		if (pfd[i].fd == -1 || pfd[i].revents != 0 ||
		    now >= verify_job_deadline(run[i]->cur->job))
			pass_collect(run[i], 0);
	advance_all(in);
	for (i = 0; i < np; i++) {
		if ((ps = in->pass[i]) == NULL)
			continue;
		if (ps->cur == NULL && (ps->vqi == ps->nvq || proc_quit)) {
			in->pass[i] = NULL;
			pass_finish(ps);
			pass_free(ps);
			free(ps);
		}
	}
	return nrun > 0;
}

/* Stopping: every running job is killed (its file waits), every pass
 * finished. */
static void
verify_stop_all(struct intake *in)
{
	struct pass *ps;
	size_t i;

	for (i = 0; i < in->cfg->npartners; i++) {
		if ((ps = in->pass[i]) == NULL)
			continue;
		if (ps->cur != NULL)
			pass_collect(ps, 1);
		in->pass[i] = NULL;
		pass_finish(ps);
		pass_free(ps);
		free(ps);
	}
}

/* Moves incomplete landing files past incomplete_ttl to quarantine. */
static void
incomplete_janitor(struct intake *in)
{
	struct pass ps;
	char landing[PATH_MAX];
	size_t i, count;

	for (i = 0; i < in->cfg->npartners && !proc_quit; i++) {
		memset(&ps, 0, sizeof(ps));
		ps.in = in;
		ps.p = &in->cfg->partners[i];
		ps.pi = i;
		ps.now = now_ms();
		if (spool_dir_path(in->cfg->state_dir, SPOOL_LANDING, ps.p->name,
		    landing, sizeof(landing)) == -1)
			continue;
		ps.landingfd = open(landing, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
		if (ps.landingfd == -1)
			continue;
		count = 0;
		walk(&ps, ps.landingfd, "", 0, &count, walk_incomplete);
		close(ps.landingfd);
	}
}

/*
 * A session that died between linking a closed upload into spool/incoming
 * and recording it leaves a spool file no row knows (its partner was never
 * told OK, so it sends the file again). Such a file is moved, never
 * deleted, to quarantine/_unrecorded/ with a reason, and audited. Only
 * links older than UNRECORDED_AGE_S are looked at, so a CLOSE in progress
 * (link, then record, within milliseconds) is never taken for one.
 */
#define UNRECORDED_AGE_S	600

/*
 * Moves spool/incoming/<name> (dfd) to quarantine/_unrecorded/ with a
 * .reason, audited as file.unrecorded. *qfd caches that directory. 0 or -1.
 */
static int
quarantine_unrecorded(struct intake *in, int dfd, int *qfd, const char *name,
    int64_t size, const char *reason)
{
	char dir[PATH_MAX], why[NAME_MAX + 1], text[1024];

	if (spool_dir_path(in->cfg->state_dir, SPOOL_UNRECORDED, NULL,
	    dir, sizeof(dir)) == -1 || (*qfd == -1 &&
	    (*qfd = spool_mkdir(dir, 0750)) == -1))
		return -1;
	if (xsnprintf(why, sizeof(why), "%s.reason", name) < 0)
		return -1;
	xsnprintf(text, sizeof(text), "size: %lld\nreason: %s\n",
	    (long long)size, reason);
	if (write_file_at(*qfd, why, text, strlen(text), 0640) == -1 ||
	    renameat2(dfd, name, *qfd, name, RENAME_NOREPLACE) == -1) {
		log_warn("cannot quarantine unrecorded spool file %s", name);
		return -1;
	}
	fsync(*qfd);
	fsync(dfd);
	audit_emit(in->au, "file.unrecorded", json_pack("{s:s,s:I,s:s,s:s}",
	    "fid", name, "size", (json_int_t)size, "quarantined_as",
	    spool_dir_base(SPOOL_UNRECORDED), "reason", reason));
	log_warnx("%s/%s: %s; moved to %s/", spool_dir_name(SPOOL_INCOMING),
	    name, reason, spool_dir_name(SPOOL_UNRECORDED));
	return 0;
}

static void
unrecorded_sweep(struct intake *in)
{
	static int64_t age_s = -1;
	const char *env;
	char inc[PATH_MAX];
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int dfd, qfd = -1, known;

	/* SLUICE_TEST_UNRECORDED_AGE_S: for the tests only (a link's ctime
	 * cannot be set into the past). */
	if (age_s < 0 && ((env = getenv("SLUICE_TEST_UNRECORDED_AGE_S")) == NULL ||
	    parse_int64(env, 0, INT64_MAX / 2000, &age_s) == -1))
		age_s = UNRECORDED_AGE_S;
	if (spool_dir_path(in->cfg->state_dir, SPOOL_INCOMING, NULL, inc,
	    sizeof(inc)) == -1 || (d = opendir(inc)) == NULL)
		return;
	dfd = dirfd(d);
	while (!proc_quit && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' ||
		    fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == -1 ||
		    sb.st_ctime > now_ms() / 1000 - age_s)
			continue;
		if ((known = state_fid_known(in->st, de->d_name)) != 0)
			continue;	/* recorded (or the database is busy) */
		if (quarantine_unrecorded(in, dfd, &qfd, de->d_name,
		    (int64_t)sb.st_size, "linked into the spool at CLOSE but "
		    "never recorded (the session ended before its receipt was "
		    "durable; the partner was not told OK)") == -1 && qfd == -1)
			break;
	}
	if (qfd != -1)
		close(qfd);
	closedir(d);
}

/* Does fd's content have this SHA-256 (hex)? 1 yes, 0 no, -1 unreadable. */
static int
same_sha256(int fd, const char *hex)
{
	uint8_t md[SHA256_LEN];
	char got[SHA256_HEX];

	if (sha256_fd(fd, md) != 0)
		return -1;
	hex_encode(md, sizeof(md), got);
	return strcmp(got, hex) == 0;
}

/* --- the hand-off from the sessions ---------------------------------- */

/*
 * Everything a session made (a receipt, a "received" row) is a session's
 * word, and a session may be compromised: the intake checks it like
 * network input before it trusts one field of it.
 *  - the record holds up on its own (receipt_check: fid, partner name,
 *    path, size, sha256, landing inode), its fid names its spool file, and
 *    its partner is configured;
 *  - its spool file is the inode the record says was written in landing/
 *    (landing_dev/ino), of the size it claims;
 *  - that inode has a name under landing/<partner>/ of the partner it
 *    claims: at its path, resolved beneath the partner's root without
 *    following a link (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), or
 *    wherever the partner renamed it since (a walk of that tree).
 * A record that fails is a forged hand-off: its spool file goes to
 * quarantine/<partner whose landing directory really holds it>/, or to
 * quarantine/_forged/ when none does (the real partner cannot be known),
 * with a .reason; audited as file.forged; never stored. A row is marked
 * rejected with the reason, never copied to the store.
 *
 * A file whose landing name the partner removed before the intake saw it
 * cannot be told from one a session made in spool/incoming alone: it is
 * held in quarantine/_forged/ too (the intake reads spool/incoming every
 * 50 ms, so this takes a remove within moments of CLOSE).
 */

/* A copy of a claimed string fit for a log line, a reason file and an
 * audit record: printable ASCII, anything else as '?'. */
static void
printable(char *dst, const char *src, size_t len)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < len; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[i] = '\0';
}

/* Looks for the regular file dev/ino beneath dfd (no link followed, within
 * the walk limits): 1 found, 0 not. */
static int
find_inode(int dfd, dev_t dev, ino_t ino, int depth, size_t *count)
{
	DIR *d;
	struct dirent *de;
	struct stat sb;
	int fd, found = 0;

	if (depth > WALK_MAX_DEPTH || (fd = dup(dfd)) == -1)
		return 0;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return 0;
	}
	rewinddir(d);
	while (!found && (de = readdir(d)) != NULL &&
	    (*count)++ < WALK_MAX_ENTRIES) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		if (S_ISREG(sb.st_mode))
			found = sb.st_dev == dev && sb.st_ino == ino;
		else if (S_ISDIR(sb.st_mode) && (fd = openat(dfd, de->d_name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) != -1) {
			found = find_inode(fd, dev, ino, depth + 1, count);
			close(fd);
		}
	}
	closedir(d);
	return found;
}

/* landing/<name> (landing/ when name is NULL), opened without following a
 * link; -1 with errno. */
static int
open_landing(struct intake *in, const char *name)
{
	char dir[PATH_MAX];

	if (spool_dir_path(in->cfg->state_dir, SPOOL_LANDING, name, dir,
	    sizeof(dir)) == -1)
		return -1;
	return open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Does rel, resolved beneath dfd without following any link, name the
 * regular file sb? 1 yes, 0 no (or it cannot be told: the walk decides). */
static int
names_inode(int dfd, const char *rel, const struct stat *sb)
{
	struct open_how how;
	struct stat cur;
	int fd, same;

	memset(&how, 0, sizeof(how));
	how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
	    RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
	if ((fd = (int)syscall(SYS_openat2, dfd, rel, &how, sizeof(how))) == -1)
		return 0;
	same = fstat(fd, &cur) == 0 && S_ISREG(cur.st_mode) &&
	    cur.st_dev == sb->st_dev && cur.st_ino == sb->st_ino;
	close(fd);
	return same;
}

/*
 * The partner whose landing directory holds a name of inode sb (checked at
 * claimed->path first when claimed is not NULL), or NULL when none does.
 * *err is set when landing/ cannot be read (then nothing can be told).
 */
static const struct partner *
landing_owner(struct intake *in, const struct stat *sb,
    const struct partner *claimed, const char *path, int *err)
{
	const struct partner *p, *found = NULL;
	size_t i, count;
	int lfd, pfd;

	*err = 0;
	if ((lfd = open_landing(in, NULL)) == -1) {
		*err = 1;
		return NULL;
	}
	if (claimed != NULL && (pfd = openat(lfd, claimed->name, O_RDONLY |
	    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) != -1) {
		count = 0;
		if (names_inode(pfd, path, sb) || (sb->st_nlink > 1 &&
		    find_inode(pfd, sb->st_dev, sb->st_ino, 0, &count)))
			found = claimed;
		close(pfd);
	}
	/* only the spool's own link left: no landing name to look for */
	for (i = 0; found == NULL && sb->st_nlink > 1 &&
	    i < in->cfg->npartners; i++) {
		p = &in->cfg->partners[i];
		if (p == claimed || (pfd = openat(lfd, p->name, O_RDONLY |
		    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
			continue;
		count = 0;
		if (find_inode(pfd, sb->st_dev, sb->st_ino, 0, &count))
			found = p;
		close(pfd);
	}
	close(lfd);
	return found;
}

/*
 * The checks of a record on its own: 0, or -1 with why ("its fid is ...").
 * name is the spool file's name (NULL for a row: its fid is the name).
 */
static int
handoff_claims(struct intake *in, const struct file_rec *r, const char *name,
    char *why, size_t whylen)
{
	char p[80];

	if (receipt_check(r, why, whylen) == -1)
		return -1;
	if (name != NULL && strcmp(r->fid, name) != 0) {
		xstrlcpy(why, "its fid is not the name of its spool file",
		    whylen);
		return -1;
	}
	if (config_partner(in->cfg, r->partner) == NULL) {
		printable(p, r->partner, sizeof(p));
		xsnprintf(why, whylen, "it claims partner %s, which is not "
		    "configured", p);
		return -1;
	}
	return 0;
}

/*
 * Is spool file sb what r's partner's session handed off (handoff_claims
 * passed)? 0 yes; -1 forged, with why and *real (the partner whose landing
 * directory holds it, or NULL); 1 when it cannot be told now.
 */
static int
handoff_landing(struct intake *in, const struct file_rec *r,
    const struct stat *sb, char *why, size_t whylen,
    const struct partner **real)
{
	const struct partner *claimed = config_partner(in->cfg, r->partner);
	int err;

	*real = NULL;
	if (!S_ISREG(sb->st_mode)) {
		xstrlcpy(why, "its spool file is not a regular file", whylen);
		return -1;
	}
	if (r->size != (int64_t)sb->st_size) {
		xsnprintf(why, whylen, "it claims %lld bytes, its spool file "
		    "has %lld", (long long)r->size, (long long)sb->st_size);
		*real = landing_owner(in, sb, NULL, NULL, &err);
		return -1;
	}
	if (r->landing_ino != (int64_t)sb->st_ino ||
	    r->landing_dev != (int64_t)sb->st_dev) {
		xstrlcpy(why, "the landing inode it names is not its spool file",
		    whylen);
		*real = landing_owner(in, sb, NULL, NULL, &err);
		return -1;
	}
	*real = landing_owner(in, sb, claimed, r->path, &err);
	if (err)
		return 1;
	if (*real == claimed)
		return 0;
	if (*real != NULL)
		xsnprintf(why, whylen, "it claims partner %s but the file is in "
		    "%s/%s", r->partner, spool_dir_name(SPOOL_LANDING),
		    (*real)->name);
	else
		xsnprintf(why, whylen, "no name under %s/%s holds the file "
		    "(it claims %s/%s/%s): the partner that wrote it "
		    "cannot be confirmed", spool_dir_name(SPOOL_LANDING),
		    r->partner, spool_dir_name(SPOOL_LANDING), r->partner,
		    r->path);
	return -1;
}

/* spool/incoming, opened; -1 with errno. */
static int
open_incoming(struct intake *in)
{
	char inc[PATH_MAX];

	if (spool_dir_path(in->cfg->state_dir, SPOOL_INCOMING, NULL, inc,
	    sizeof(inc)) == -1)
		return -1;
	return open(inc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Appends the file.forged record of r (source "receipt" or "record"). */
static void
emit_forged(struct intake *in, const struct file_rec *r, const char *source,
    const char *spool_name, const struct partner *real, const char *as,
    const char *reason)
{
	char fid[80], partner[80], path[512], sha[80], sname[80];
	json_t *f;

	if (spool_name != NULL) {
		printable(sname, spool_name, sizeof(sname));
		spool_name = sname;
	}
	printable(fid, r->fid, sizeof(fid));
	printable(partner, r->partner, sizeof(partner));
	printable(path, r->path, sizeof(path));
	printable(sha, r->sha256, sizeof(sha));
	f = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s?,s:s?,s:s?,s:s}",
	    "source", source, "fid", fid, "partner", partner, "path", path,
	    "size", (json_int_t)r->size, "sha256", sha, "spool_name",
	    spool_name, "found_in", real != NULL ? real->name : NULL,
	    "quarantined_as", as[0] != '\0' ? as : NULL, "reason", reason);
	if (f != NULL && r->id > 0)
		json_object_set_new(f, "id", json_integer(r->id));
	audit_emit(in->au, "file.forged", f);
	log_warnx("%s %s (fid %s, partner %s, %s): %s%s%s%s%s", source,
	    spool_name ? spool_name : "", fid, partner, path, reason,
	    as[0] ? "; moved to " : "; nothing moved",
	    as[0] ? spool_dir_name(SPOOL_QUARANTINE) : "", as[0] ? "/" : "",
	    as);
}

/*
 * Moves srcdfd/name (a forged hand-off's spool file) to
 * quarantine/<real or _forged>/ with a .reason, never over another file
 * (its own name if it is a fid, else forged-<random>), and audits it.
 * The quarantine name ("<dir>/<name>") goes into as. 0 or -1.
 */
static int
quarantine_forged(struct intake *in, int srcdfd, const char *name,
    const struct file_rec *r, const char *source,
    const struct partner *real, const char *reason, char *as, size_t aslen)
{
	char dir[PATH_MAX], qname[64], rname[80], id[33], text[8192];
	char fid[80], partner[80], path[512], sname[80];
	struct stat sb;
	int qfd = -1, try, rc = -1;

	as[0] = '\0';
	if (spool_dir_path(in->cfg->state_dir, real != NULL ? SPOOL_QUARANTINE :
	    SPOOL_FORGED, real != NULL ? real->name : NULL, dir,
	    sizeof(dir)) == -1 ||
	    (qfd = spool_mkdir(dir, 0750)) == -1)
		goto fail;
	printable(fid, r->fid, sizeof(fid));
	printable(partner, r->partner, sizeof(partner));
	printable(path, r->path, sizeof(path));
	printable(sname, name, sizeof(sname));
	xsnprintf(text, sizeof(text), "forged hand-off (%s)\nspool name: %s\n"
	    "claimed fid: %s\nclaimed partner: %s\nclaimed path: %s\n"
	    "claimed size: %lld\nfound in: %s\nreason: %s\n", source, sname,
	    fid, partner, path, (long long)r->size, real != NULL ?
	    real->name : "no landing directory", reason);
	for (try = 0; try < 4; try++) {
		if (try == 0 && spool_fid_ok(name))
			xstrlcpy(qname, name, sizeof(qname));
		else if (random_id(id, sizeof(id)) == -1 ||
		    xsnprintf(qname, sizeof(qname), "forged-%s", id) < 0)
			goto fail;
		xsnprintf(rname, sizeof(rname), "%s.reason", qname);
		if (fstatat(qfd, qname, &sb, AT_SYMLINK_NOFOLLOW) == 0 ||
		    fstatat(qfd, rname, &sb, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		if (write_file_at(qfd, rname, text, strlen(text), 0640) == -1)
			goto fail;
		if (renameat2(srcdfd, name, qfd, qname, RENAME_NOREPLACE) == 0)
			break;
		unlinkat(qfd, rname, 0);
		if (errno != EEXIST)
			goto fail;
	}
	if (try == 4)
		goto fail;
	if (fsync(qfd) == -1 || fsync(srcdfd) == -1)
		log_warn("fsync after quarantining %s", qname);
	xsnprintf(as, aslen, "%s/%s", real != NULL ? real->name :
	    spool_dir_base(SPOOL_FORGED), qname);
	rc = 0;
fail:
	if (rc == -1)
		log_warn("cannot quarantine the forged hand-off %s", sname);
	if (qfd != -1)
		close(qfd);
	return rc;
}

/*
 * A forged row r (in state `from`): its spool file, when its fid is one
 * and spool/incoming (incfd) has it, is quarantined; the row is marked
 * rejected with the reason (no copy to the store), and file.forged is
 * recorded. 0 or -1 (left for the next pass).
 */
static int
forge_row(struct intake *in, int incfd, const struct file_rec *r,
    enum file_state from, const char *why, const struct partner *real,
    int located)
{
	struct file_rec x = *r;
	struct stat sb;
	char reason[600], as[PATH_MAX] = "";
	int err, ok;

	xsnprintf(reason, sizeof(reason), "forged hand-off: %s", why);
	if (spool_fid_ok(r->fid) && fstatat(incfd, r->fid, &sb,
	    AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode)) {
		if (!located)
			real = landing_owner(in, &sb, NULL, NULL, &err);
		if (quarantine_forged(in, incfd, r->fid, r, "record", real,
		    reason, as, sizeof(as)) == -1)
			return -1;
	}
	emit_forged(in, r, "record", spool_fid_ok(r->fid) ? r->fid : NULL,
	    as[0] ? real : NULL, as, reason);
	x.state = FS_REJECTED;
	xstrlcpy(x.last_error, reason, sizeof(x.last_error));
	/* the verdict and its notifications in one transaction */
	ok = 0;
	if (state_begin(in->st) == -1)
		;
	else if (state_reject(in->st, &x, from, 0) == -1 ||
	    events_enqueue(in->st, in->cfg, &x, "file.rejected") == -1)
		state_rollback(in->st);
	else
		ok = state_commit(in->st) == 0;
	if (!ok) {
		log_warnx("could not mark the forged row %lld rejected; the "
		    "next pass tries again", (long long)r->id);
		return -1;
	}
	/* a receipt only into the folder of the partner whose landing
	 * directory really holds the file, and that the row names */
	if (real != NULL && real == config_partner(in->cfg, r->partner) &&
	    real->receipts && spool_relpath_ok(r->path))
		(void)state_receipt_add(in->st, r->id, "", "", "");
	return 0;
}

/*
 * The "received" rows sessions inserted themselves (file systems without
 * extended attributes): each checked like a receipt, then moved to
 * "waiting" for the rules, or quarantined as forged, up to BATCH_MAX a
 * call. Returns how many were moved or forged (BATCH_MAX: call again), or
 * -1.
 */
static int
admit_rows(struct intake *in)
{
	struct file_rec *rows = NULL;
	const struct partner *real;
	struct stat sb;
	char why[512];
	size_t n = 0, i;
	int incfd = -1, *verdict = NULL, done = 0, located, rc;

	if (state_any(in->st, FS_RECEIVED) != 1)
		return 0;
	if (state_list(in->st, FS_RECEIVED, NULL, BATCH_MAX, &rows, &n) == -1 ||
	    (incfd = open_incoming(in)) == -1 ||
	    (verdict = calloc(n + 1, sizeof(int))) == NULL) {
		rc = -1;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct file_rec *r = &rows[i];

		real = NULL;
		located = 0;
		if (handoff_claims(in, r, NULL, why, sizeof(why)) == -1)
			rc = -1;
		else if (fstatat(incfd, r->fid, &sb, AT_SYMLINK_NOFOLLOW) == -1) {
			xsnprintf(why, sizeof(why), "its spool file "
			    "%s/%s is missing (%s)",
			    spool_dir_name(SPOOL_INCOMING), r->fid,
			    strerror(errno));
			rc = -1;
		} else {
			rc = handoff_landing(in, r, &sb, why, sizeof(why), &real);
			located = 1;
		}
		if (rc == 1)
			verdict[i] = 1;		/* next pass */
		else if (rc == -1) {
			verdict[i] = 1;		/* rejected, or next pass */
			if (forge_row(in, incfd, r, FS_RECEIVED, why, real,
			    located) == 0)
				done++;
		}
	}
	if (state_begin(in->st) == -1) {
		rc = -1;
		goto out;
	}
	for (i = 0; i < n; i++)
		if (verdict[i] == 0 && state_move(in->st, rows[i].id,
		    FS_RECEIVED, FS_WAITING, NULL) == 1)
			done++;
	rc = state_commit(in->st) == -1 ? -1 : done;
out:
	if (incfd != -1)
		close(incfd);
	free(verdict);
	free(rows);
	return rc;
}

/* A forged receipt on spool/incoming/<name> (dfd): quarantined, audited.
 * located: real was already looked for. */
static void
forged_receipt(struct intake *in, int dfd, const char *name,
    const struct file_rec *r, const struct stat *sb, const char *why,
    const struct partner *real, int located)
{
	char reason[600], as[PATH_MAX];
	int err;

	xsnprintf(reason, sizeof(reason), "forged hand-off: %s", why);
	if (!located)
		real = landing_owner(in, sb, NULL, NULL, &err);
	if (quarantine_forged(in, dfd, name, r, "receipt", real, reason, as,
	    sizeof(as)) == -1)
		return;		/* still in spool/incoming: the next pass */
	emit_forged(in, r, "receipt", name, real, as, reason);
}

/*
 * Receipts (spool/receipt.h) of files the sessions closed become "received"
 * rows and file.received records, up to IMPORT_MAX a batch: rows inserted,
 * records appended and synced, then the commit (a crash in between repeats
 * the records on the next pass, never loses one). A file a session still
 * holds (its CLOSE under way) is left for the next pass: the session's
 * write lock says so. After a start (verify), each file's SHA-256 is
 * checked against its receipt first, since a crash may have cut a file
 * whose receipt reached the disk. A file without a receipt was recorded
 * through the database (or is a crash remnant for the unrecorded sweep).
 * Returns how many were imported, or -1.
 */
#define IMPORT_MAX	256

static int
import_receipts(struct intake *in, int verify)
{
	char inc[PATH_MAX], why[512], bad[512];
	struct file_rec *recs = NULL, *r;
	const struct partner *real;
	struct dirent *de;
	struct stat sb;
	size_t nrec = 0, i;
	DIR *d;
	int dfd, fd, qfd = -1, rc = -1, ok, hc;

	if (spool_dir_path(in->cfg->state_dir, SPOOL_INCOMING, NULL, inc,
	    sizeof(inc)) == -1 || (d = opendir(inc)) == NULL)
		return -1;
	dfd = dirfd(d);
	if (fstat(dfd, &sb) == -1)
		memset(&sb, 0, sizeof(sb));	/* read it, and again next pass */
	/*
	 * Files waiting for their rules stay in spool/incoming: read it only
	 * when it changed (a session linked a file), or when the last pass
	 * left something for later (a file still locked, a full batch).
	 */
	if (sb.st_mtim.tv_sec != 0 && !verify && !in->import_again &&
	    sb.st_mtim.tv_sec == in->incoming_mtime.tv_sec &&
	    sb.st_mtim.tv_nsec == in->incoming_mtime.tv_nsec) {
		closedir(d);
		return 0;
	}
	in->incoming_mtime = sb.st_mtim;
	/* file times tick with the kernel's coarse clock (a few ms): a link
	 * made in the same tick after this read would not change the time */
	in->import_again = now_ms() - ((int64_t)sb.st_mtim.tv_sec * 1000 +
	    sb.st_mtim.tv_nsec / 1000000) < 200;
	if ((recs = calloc(IMPORT_MAX, sizeof(*recs))) == NULL) {
		closedir(d);
		in->import_again = 1;
		return -1;
	}
	while (!proc_quit && nrec < IMPORT_MAX && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || strlen(de->d_name) != 32 ||
		    state_fid_known(in->st, de->d_name) != 0)
			continue;
		fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW |
		    O_NONBLOCK | O_CLOEXEC);
		if (fd == -1)
			continue;
		r = &recs[nrec];
		if (flock(fd, LOCK_SH | LOCK_NB) == -1) {
			in->import_again = 1;	/* its CLOSE is under way */
			close(fd);
			continue;
		}
		if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
		    receipt_read(fd, r) != 1) {
			close(fd);
			continue;
		}
		/* a session's word: what it claims must hold up */
		if (handoff_claims(in, r, de->d_name, bad, sizeof(bad)) == -1) {
			close(fd);
			forged_receipt(in, dfd, de->d_name, r, &sb, bad, NULL, 0);
			continue;
		}
		/* a crash inside CLOSE: the size, read-only, the bytes */
		ok = r->size == sb.st_size && (sb.st_mode & 0222) == 0;
		if (ok && verify)
			ok = same_sha256(fd, r->sha256) == 1;
		if (ok) {
			/* and the partner's landing directory holds it */
			hc = handoff_landing(in, r, &sb, bad, sizeof(bad), &real);
			close(fd);
			if (hc == 1)
				in->import_again = 1;
			else if (hc == -1)
				forged_receipt(in, dfd, de->d_name, r, &sb, bad,
				    real, 1);
			else
				nrec++;
			continue;
		}
		close(fd);
		xsnprintf(why, sizeof(why), "its receipt (%s, %lld bytes, "
		    "sha256 %s) does not match the file (%lld bytes%s): cut "
		    "by a crash inside CLOSE; the partner was not told OK",
		    r->path, (long long)r->size, r->sha256,
		    (long long)sb.st_size, verify ? ", checked" : "");
		(void)quarantine_unrecorded(in, dfd, &qfd, de->d_name,
		    (int64_t)sb.st_size, why);
	}
	closedir(d);
	if (qfd != -1)
		close(qfd);
	if (nrec == IMPORT_MAX)
		in->import_again = 1;
	if (nrec == 0) {
		rc = 0;
		goto out;
	}
	if (state_begin(in->st) == -1)
		goto out;
	/* checked already: straight to "waiting" (admit_rows is for the
	 * rows the sessions insert) */
	for (i = 0; i < nrec; i++)
		if (state_insert(in->st, &recs[i]) == -1 ||
		    state_move(in->st, recs[i].id, FS_RECEIVED, FS_WAITING,
		    NULL) != 1) {
			state_rollback(in->st);
			goto out;
		}
	audit_defer(in->au);
	for (i = 0; i < nrec; i++)
		audit_emit(in->au, "file.received", receipt_record(&recs[i]));
	if (audit_sync(in->au) == -1 || state_commit(in->st) == -1) {
		state_rollback(in->st);
		goto out;
	}
	rc = (int)nrec;
out:
	if (rc == -1)
		in->import_again = 1;
	free(recs);
	return rc;
}

/*
 * Waiting rows no pass judges: a partner no longer configured (rejected
 * into its quarantine), or a fid, partner or path that is no valid name at
 * all, which no session of ours wrote (a forged row: never joined into a
 * path). At the start and now and then.
 */
static void
orphans(struct intake *in)
{
	struct file_rec *rows = NULL;
	struct item x;
	struct pass ps;
	char why[256];
	size_t n = 0, i;
	int incfd = -1;

	if (state_list(in->st, FS_WAITING, NULL, SIZE_MAX, &rows, &n) == -1)
		return;
	memset(&ps, 0, sizeof(ps));
	ps.in = in;
	ps.dep = -1;
	for (i = 0; i < n; i++) {
		if (!spool_fid_ok(rows[i].fid) ||
		    !spool_partner_ok(rows[i].partner) ||
		    !spool_relpath_ok(rows[i].path)) {
			if (incfd == -1 && (incfd = open_incoming(in)) == -1)
				continue;
			if (receipt_check(&rows[i], why, sizeof(why)) == 0)
				xstrlcpy(why, "not a valid name", sizeof(why));
			(void)forge_row(in, incfd, &rows[i], FS_WAITING, why,
			    NULL, 0);
			continue;
		}
		if (config_partner(in->cfg, rows[i].partner) != NULL)
			continue;
		memset(&x, 0, sizeof(x));
		x.r = rows[i];
		reject(&ps, &x, "partner no longer configured");
	}
	flush(&ps);
	free(ps.acts);
	free(rows);
	if (incfd != -1)
		close(incfd);
}

/*
 * An accepted row whose file is not in spool/ready yet (its rename was
 * lost although the directory was synced before the commit): finish the
 * move, so the uploader finds it.
 */
static void
recover_accepted(struct intake *in)
{
	struct file_rec *rows = NULL;
	char dir[PATH_MAX], path[PATH_MAX];
	size_t n = 0, i;
	int moved = 0, at;

	if (state_list(in->st, FS_ACCEPTED, NULL, SIZE_MAX, &rows, &n) == -1)
		return;
	for (i = 0; i < n; i++) {
		if ((at = spool_find(in, &rows[i], path, sizeof(path))) == -1 ||
		    at == SP_READY)
			continue;
		if (spool_move(in, &rows[i], SP_READY, 0, dir,
		    sizeof(dir)) == -1) {
			log_warn("cannot move %s into %s", rows[i].fid,
			    spool_dir_name(SPOOL_READY));
			continue;
		}
		log_warnx("%s/%s (%s) was accepted but not in %s: moved there",
		    rows[i].partner, rows[i].path, rows[i].fid,
		    spool_dir_name(SPOOL_READY));
		moved++;
	}
	if (moved > 0 && fsync_dir(dir) == -1)
		log_warn("fsync %s", dir);
	free(rows);
}

/* --- delivery receipts (spool/delivery.h) ----------------------------- */

#define RECEIPTS_MAX		64	/* receipts written per turn */
#define RECEIPTS_EVERY_MS	1000	/* how often the database is asked */
#define SIGNER_RETRY_MS		60000	/* after the signing key failed */

/*
 * p's receipts folder, opened (created 0750 if missing: spool_own gives it
 * its owner and 2750 when the gateway starts as root). It must be a
 * directory of ours: a partner's session cannot plant one. -1 (logged).
 */
static int
open_receipts_dir(struct intake *in, const struct partner *p)
{
	char dir[PATH_MAX];
	struct stat sb;
	int dfd;

	if (spool_receipts_path(in->cfg, p, dir, sizeof(dir)) == -1)
		return -1;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 && errno == ENOENT && mkdir(dir, 0750) == 0)
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (dfd == -1) {
		log_warn("partner %s: cannot open the receipts folder %s",
		    p->name, dir);
		return -1;
	}
	if (fstat(dfd, &sb) == -1 || sb.st_uid != geteuid()) {
		log_warnx("partner %s: the receipts folder %s is not the "
		    "service user's; move it aside and restart sluice (it "
		    "makes a new one)", p->name, dir);
		close(dfd);
		return -1;
	}
	return dfd;
}

/*
 * Writes the receipt of d (its partner p) and audits receipt.written
 * (deferred: the caller syncs). With the partner's receipts_store, *copy
 * gets the very bytes written (malloc'd, *copylen; the caller's). 0, or -1
 * (logged; tried again next turn).
 */
static int
write_receipt(struct intake *in, const struct partner *p,
    const struct receipt_due *d, char **copy, size_t *copylen)
{
	struct delivery_info di;
	char name[256], rel[400], *text = NULL, *sig = NULL;
	size_t len;
	int dfd = -1, rc = -1;

	memset(&di, 0, sizeof(di));
	di.r = &d->r;
	di.rule = d->rule;
	di.signer = d->signer;
	di.signed_at = d->signed_at;
	di.gateway = in->host;
	di.created_ms = now_ms();
	if (delivery_name(d->r.fid, d->r.path, in->signer != NULL, name,
	    sizeof(name)) == -1 || (text = delivery_text(&di)) == NULL) {
		log_warnx("%s/%s (%s): cannot make its receipt", d->r.partner,
		    d->r.path, d->r.fid);
		goto fail;
	}
	len = strlen(text);
	if (in->signer != NULL && delivery_sign(in->signer, text, &sig,
	    &len) == -1)
		goto fail;
	if ((dfd = open_receipts_dir(in, p)) == -1)
		goto fail;
	if (write_file_at(dfd, name, sig != NULL ? sig : text, len, 0640) ==
	    -1) {
		log_warn("%s/%s: cannot write the receipt %s/%s", p->name,
		    d->r.path, in->cfg->receipts.dir, name);
		goto fail;
	}
	xsnprintf(rel, sizeof(rel), "%s/%s", in->cfg->receipts.dir, name);
	audit_emit(in->au, "receipt.written", json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:b,s:s?}", "partner", p->name, "fid",
	    d->r.fid, "path", d->r.path, "verdict", delivery_verdict(&d->r),
	    "receipt", rel, "signed", in->signer != NULL, "signed_by",
	    in->signer != NULL ? in->cfg->receipts.sign_with : NULL));
	log_info("%s/%s: receipt %s written (%s)", p->name, d->r.path, rel,
	    delivery_verdict(&d->r));
	if (p->receipts_store) {	/* the bytes the uploader stores */
		*copy = sig != NULL ? sig : text;
		*copylen = len;
		if (sig != NULL)
			sig = NULL;
		else
			text = NULL;
	}
	rc = 0;
fail:
	if (dfd != -1)
		close(dfd);
	free(text);
	free(sig);
	return rc;
}

/* The signer, when receipts are signed: NULL while it cannot be had (the
 * receipts wait; none is written unsigned). */
static struct delivery_signer *
receipt_signer(struct intake *in)
{
	int64_t t = now_ms();

	if (in->signer != NULL || t < in->signer_retry)
		return in->signer;
	if ((in->signer = delivery_signer_open(in->cfg->state_dir,
	    &in->cfg->receipts)) == NULL) {
		log_warnx("receipts wait until the signing key works "
		    "(receipts.sign_with, receipts.keyring); trying again in "
		    "%d s", SIGNER_RETRY_MS / 1000);
		in->signer_retry = t + SIGNER_RETRY_MS;
	}
	return in->signer;
}

/*
 * The copy of d's receipt (its bytes, len) for the store, added to the
 * open transaction. 0 or -1.
 */
static int
add_receipt_copy(struct intake *in, const struct receipt_due *d,
    char *bytes, size_t len)
{
	struct rcopy c;
	uint8_t md[SHA256_LEN];

	memset(&c, 0, sizeof(c));
	c.file_id = d->r.id;
	xstrlcpy(c.fid, d->r.fid, sizeof(c.fid));
	xstrlcpy(c.partner, d->r.partner, sizeof(c.partner));
	if (delivery_store_key(in->cfg, &d->r, in->signer != NULL, c.key,
	    sizeof(c.key)) == -1) {
		log_warnx("%s/%s (%s): no key for its receipt's copy in the "
		    "store (too long); the receipt is only in the partner's "
		    "folder", d->r.partner, d->r.path, d->r.fid);
		return 0;
	}
	if (sha256_buf(bytes, len, md) != 0)
		return -1;
	hex_encode(md, sizeof(md), c.sha256);
	c.body = bytes;	/* borrowed: the caller frees it */
	c.len = len;
	return state_rcopy_add(in->st, &c);
}

/*
 * Every file whose verdict is final and whose receipt is not written yet
 * gets it: the receipt file (durable), its receipt.written record (synced),
 * then the row marked. A crash in between writes it again (the same name,
 * replaced atomically) and records it twice, never loses it.
 * With receipts_store, the copy's bytes go to receipt_copies in the same
 * transaction as the mark.
 */
static void
write_receipts(struct intake *in)
{
	const struct partner *p;
	struct receipt_due *due = NULL;
	size_t n = 0, i, *lens = NULL;
	char **copies = NULL;
	int *done = NULL, any = 0;

	if (state_receipts_due(in->st, RECEIPTS_MAX, &due, &n) == -1 ||
	    n == 0 || (in->cfg->receipts.sign_with != NULL &&
	    receipt_signer(in) == NULL) ||
	    (done = calloc(n, sizeof(*done))) == NULL ||
	    (copies = calloc(n, sizeof(*copies))) == NULL ||
	    (lens = calloc(n, sizeof(*lens))) == NULL)
		goto out;
	audit_defer(in->au);
	for (i = 0; i < n && !proc_quit; i++) {
		p = config_partner(in->cfg, due[i].r.partner);
		/* receipts turned off since: nothing to write */
		if (p == NULL || !p->receipts)
			done[i] = any = 1;
		else if (write_receipt(in, p, &due[i], &copies[i],
		    &lens[i]) == 0)
			done[i] = any = 1;
	}
	if (audit_sync(in->au) == -1 || !any)
		goto out;
	if (state_begin(in->st) == -1)
		goto out;
	/* the copy for the store and the mark, in one transaction: a crash
	 * before it writes the receipt again and hands over those bytes */
	for (i = 0; i < n; i++)
		if (done[i] && ((copies[i] != NULL && add_receipt_copy(in,
		    &due[i], copies[i], lens[i]) == -1) ||
		    state_receipt_written(in->st, due[i].r.id, now_ms()) ==
		    -1)) {
			state_rollback(in->st);
			goto out;
		}
	(void)state_commit(in->st);
out:
	for (i = 0; copies != NULL && i < n; i++)
		free(copies[i]);
	free(copies);
	free(lens);
	free(done);
	free(due);
}

/* Receipts older than receipts.keep are removed. */
static void
expire_receipts(struct intake *in)
{
	const struct partner *p;
	size_t i;
	int dfd, k;

	for (i = 0; i < in->cfg->npartners && !proc_quit; i++) {
		p = &in->cfg->partners[i];
		if (!p->receipts || (dfd = open_receipts_dir(in, p)) == -1)
			continue;
		k = delivery_expire(dfd, now_ms() / 1000 -
		    in->cfg->receipts.keep_s);
		if (k > 0) {
			(void)fsync(dfd);
			log_info("partner %s: %d receipts older than "
			    "receipts.keep removed", p->name, k);
		}
		close(dfd);
	}
}

/*
 * A session's CLOSE links its file into spool/incoming: that link wakes the
 * loop (inotify), so a file is imported within a few milliseconds, not at
 * the next VERIFY_POLL_MS tick. -1 (the loop polls) if inotify is refused.
 */
static int
incoming_watch(const struct config *cfg)
{
	char dir[PATH_MAX];
	int fd;

	if (spool_dir_path(cfg->state_dir, SPOOL_INCOMING, NULL, dir,
	    sizeof(dir)) == -1 ||
	    (fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1)
		return -1;
	if (inotify_add_watch(fd, dir, IN_CREATE | IN_MOVED_TO |
	    IN_ONLYDIR) == -1) {
		log_warn("intake: inotify on %s; polling every %d ms", dir,
		    VERIFY_POLL_MS);
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Sleeps up to ms, or until a file lands in spool/incoming. A file after a
 * quiet spell goes in once incoming has been quiet for INCOMING_GATHER_MS; under a stream of CLOSEs
 * passes stay INCOMING_GAP_MS apart, so each pass's transactions and fsyncs
 * (state, audit) are shared by the files of that span, as the tick did.
 */
static void
incoming_wait(int fd, int ms)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	static int64_t last;
	struct pollfd pfd;
	int64_t wait, start;

	if (fd == -1 || proc_quit) {
		proc_sleep(ms);
		return;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (poll(&pfd, 1, ms) <= 0)
		return;		/* the time is up, or a signal */
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	/* let the burst land: until incoming is quiet for GATHER ms (a
	 * session's file and its signatures come back to back), at most
	 * VERIFY_POLL_MS, the old tick */
	start = mono_ms();
	for (;;) {
		pfd.revents = 0;
		if (poll(&pfd, 1, INCOMING_GATHER_MS) <= 0 ||
		    mono_ms() - start >= VERIFY_POLL_MS)
			break;
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	}
	wait = INCOMING_GAP_MS - (mono_ms() - last);
	if (wait > 0)
		proc_sleep((int)wait);
	last = mono_ms();
}

int
intake_run(const struct config *cfg)
{
	struct intake in;
	int64_t last = 0, janitor_every = 60000, t;
	size_t i;
	int k, moved, sig = 0, verify = 1, waited, ifd;

	memset(&in, 0, sizeof(in));
	in.cfg = cfg;
	if ((in.st = state_open(cfg->state_dir)) == NULL ||
	    (in.au = proc_audit_open(cfg)) == NULL ||
	    (in.agent = calloc(cfg->npartners + 1, sizeof(int))) == NULL ||
	    (in.home_retry = calloc(cfg->npartners + 1,
	    sizeof(int64_t))) == NULL ||
	    (in.pass = calloc(cfg->npartners + 1, sizeof(*in.pass))) == NULL)
		return 1;
	for (i = 0; i < cfg->npartners; i++) {
		if (cfg->partners[i].signature.mode != SIG_NONE)
			sig = 1;
		t = ttl_s(&cfg->partners[i]) * 1000 / 4;
		if (t < janitor_every)
			janitor_every = t < 1000 ? 1000 : t;
	}
	if (sig && verify_init() == -1)
		log_warnx("signed files wait until gpg works");
	{
		struct verify_limits vl;

		memset(&vl, 0, sizeof(vl));
		vl.max_file_size = cfg->server.max_file_size;
		vl.quit = &proc_quit;	/* SIGTERM stops a running gpg */
#ifdef SLUICE_TEST_HOOKS
		{
			/* SLUICE_TEST_GPG: test builds only, a gpg wrapper
			 * (tests: one partner's verification made slow) */
			static char fake[PATH_MAX];
			const char *env = getenv("SLUICE_TEST_GPG");

			if (env != NULL && env[0] == '/' &&
			    xstrlcpy(fake, env, sizeof(fake)) < sizeof(fake)) {
				vl.gpg = fake;
				log_warnx("test build: gpg is %s "
				    "(SLUICE_TEST_GPG)", fake);
			}
		}
#endif
		verify_set_limits(&vl);
	}
	orphans(&in);
	recover_accepted(&in);
	if (gethostname(in.host, sizeof(in.host)) == -1)
		xstrlcpy(in.host, "", sizeof(in.host));
	in.host[sizeof(in.host) - 1] = '\0';
	ifd = incoming_watch(cfg);
	log_info("intake ready");
	while (!proc_quit) {
		moved = 0;
		/* file.received records first: they precede every verdict */
		do {
			if ((k = import_receipts(&in, verify)) > 0)
				moved += k;	/* straight to waiting */
		} while (k == IMPORT_MAX && !proc_quit);
		verify = 0;
		(void)outbox_flush(in.st, in.au);
		/* rows the sessions inserted: checked, then waiting, BATCH_MAX
		 * rows a transaction (no write lock when there are none) */
		do {
			if ((k = admit_rows(&in)) > 0)
				moved += k;
		} while (!proc_quit && k == BATCH_MAX);
		t = now_ms();
		if (moved > 0 || t - last >= 1000) {
			last = t;
			/* a partner whose pass still verifies gets its next
			 * one when that ends */
			for (i = 0; i < cfg->npartners && !proc_quit; i++)
				if (in.pass[i] == NULL)
					judge_partner(&in, i);
		}
		/* verifications of different partners run at once */
		waited = verify_turn(&in);
		if (t - in.janitor_ms >= janitor_every) {
			in.janitor_ms = t;
			incomplete_janitor(&in);
			unrecorded_sweep(&in);
			orphans(&in);
			expire_receipts(&in);
		}
		janitor_tick(cfg, in.st, in.au);	/* visibility */
		if (t - in.receipts_ms >= RECEIPTS_EVERY_MS) {
			in.receipts_ms = t;
			write_receipts(&in);
		}
		if (!waited)	/* a new file waits at most this long */
			incoming_wait(ifd, VERIFY_POLL_MS);
	}
	if (ifd != -1)
		close(ifd);
	verify_stop_all(&in);	/* their files wait for the next start */
	(void)outbox_flush(in.st, in.au);
	for (i = 0; i < cfg->npartners; i++) {
		char home[PATH_MAX];

		if (cfg->partners[i].signature.mode != SIG_NONE &&
		    spool_dir_path(cfg->state_dir, SPOOL_GNUPG,
		    cfg->partners[i].name, home, sizeof(home)) == 0)
			verify_stop_agent(home);
	}
	delivery_signer_close(in.signer);
	free(in.agent);
	free(in.home_retry);
	free(in.pass);
	audit_close(in.au);
	state_close(in.st);
	return 0;
}
