/*
 * follow.h - reading the live audit trail as `tail -F` does, and counting
 * what its records say (the metrics role, metrics/metrics.h).
 *
 * The audit writer seals the live file by linking it into
 * audit.segments_dir and renaming a new live file over audit.path
 * (audit/segment.c). follow_poll reads the open file to its end, then, when
 * audit.path names another inode, reads the old one to its end (its seal)
 * and carries on from the start of the new one. Nothing is lost across a
 * rotation and nothing is read twice. A half-written last line waits for
 * its newline; a line longer than FOLLOW_MAX_LINE is skipped whole.
 *
 * The tally counts from the moment the metrics role started (follow_open
 * with from_end 1): Prometheus treats a restart of the role as a counter
 * reset. Partner labels are only the configured partners' names (anything
 * else counts as "_other"), so a record cannot grow the label set.
 *
 * Ownership: struct follow and struct tally are the caller's; follow_*
 * and tally_* borrow every pointer; tally_init keeps cfg's partner names
 * by copy.
 */
#ifndef SLUICE_FOLLOW_H
#define SLUICE_FOLLOW_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy/config.h"

#define FOLLOW_MAX_LINE		(128 * 1024)
#define TALLY_MAX_SESSIONS	8192	/* open sessions remembered */

struct follow {
	char	 path[PATH_MAX];
	int	 fd;
	dev_t	 dev;
	ino_t	 ino;
	char	*buf;		/* FOLLOW_MAX_LINE bytes */
	size_t	 len;
	int	 skipping;	/* inside an over-long line */
	int64_t	 rotations;	/* new live files followed */
};

/* Opens path (it may not exist yet: it is tried again at every poll);
 * from_end: start at its current end. 0 or -1 (out of memory). */
int follow_open(struct follow *, const char *path, int from_end);
/* Calls line(arg, text, len) for each whole new line (no newline, not
 * NUL-terminated). Returns the number of lines, or -1 on a read error
 * (logged; the next poll tries again). */
int follow_poll(struct follow *, void (*line)(void *, const char *, size_t),
    void *arg);
void follow_close(struct follow *);

struct tally_partner {
	char	 name[65];
	int64_t	 sessions;	/* open now */
	int64_t	 logins;	/* auth.success */
	int64_t	 bytes;		/* file.received sizes */
	int64_t	 received;	/* file.received */
	int64_t	 accepted;	/* file.accepted */
	int64_t	 rejected;	/* file.rejected */
	int64_t	 failed;	/* file.failed */
	int64_t	 stored;	/* file.stored */
	int64_t	 held;		/* file.held */
};

struct tally {
	int64_t			 records;	/* every record read */
	int64_t			 logins_ok;
	int64_t			 logins_failed;
	int64_t			 bans;		/* auth.ban */
	int64_t			 refused;	/* conn.refused, session.refused */
	int64_t			 retries;	/* upload.retry */
	int64_t			 seals;		/* audit.seal */
	int64_t			 crashes;	/* session.crash */
	struct tally_partner	*p;		/* configured partners, then _other */
	size_t			 np;
	struct {
		char	 id[33];
		size_t	 partner;
	}			*open;		/* sessions logged in */
	size_t			 nopen;
};

int tally_init(struct tally *, const struct config *cfg);
void tally_free(struct tally *);
/* Counts one audit record (a JSON line); a line that is not one is
 * skipped. Usable as follow_poll's callback (arg: the tally). */
void tally_line(void *tally, const char *line, size_t len);

#endif
