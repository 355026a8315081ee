/*
 * sftp.h - sluice's own SFTP v3 engine (draft-ietf-secsh-filexfer-02 plus
 * OpenSSH extensions), independent of SSH: bytes in, bytes out. The session
 * feeds it what the channel delivers and sends what it produces, so the
 * engine can be unit-tested and fuzzed without a network.
 *
 * Every client path is normalised with path_normalize() and opened beneath
 * rootfd with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV).
 *
 * Files: a file being uploaded has mode 0600 ("incomplete"). At CLOSE of a
 * write handle the engine takes its size and SHA-256, calls
 * hooks.file_stage, sets mode 0440 ("accepted": its bytes never change
 * again; opening it for write without TRUNC is refused, with TRUNC writes a
 * new file under that name), fsyncs the file (and its directory if the file
 * is new), then calls hooks.file_complete; only if that returns 0 does the
 * client get SSH_FX_OK.
 *
 * Permissions (params.perms, PERM_* from policy/config.h) are checked before
 * a request touches anything, as OpenSSH's sftp-server does: handlers[] in
 * sftp.c names each request's permission. upload: OPEN creating a new file,
 * resuming or restarting (TRUNC) one's own incomplete file, set times;
 * overwrite: TRUNC over an accepted file, posix-rename onto an existing
 * name; list: STAT/LSTAT/FSTAT, OPENDIR/READDIR, REALPATH (of the top
 * directory always allowed, so clients can start), statvfs, READLINK;
 * read: OPEN for reading (a write handle opened with READ is readable only
 * with it); rename: RENAME, posix-rename; delete: REMOVE, RMDIR; mkdir.
 * Every refusal is SSH_FX_PERMISSION_DENIED and a hooks.event.
 *
 * Limits: a WRITE ending past max_file_size, or made while the root's file
 * system has less than min_free_space available, fails and poisons its
 * handle (CLOSE then fails too, so nothing half-written is ever accepted;
 * the incomplete file stays 0600). A packet over SFTP_MAX_MSG_LENGTH ends
 * the session.
 *
 * One write handle per file: a second OPEN for write of a file that a
 * handle (of any session) is writing fails ("file is being written by
 * another session"). Clients that upload one file over several handles at
 * once must not: rclone needs --sftp-disable-multithread-upload (its
 * multi-thread upload writes one file through several connections).
 *
 * Ownership: sftp_new() copies params (rootfd is borrowed and never closed
 * by the engine); sftp_free() closes every handle. Buffers returned by
 * sftp_output() belong to the engine and stay valid until the next call.
 */
#ifndef SLUICE_SFTP_H
#define SLUICE_SFTP_H

#include <stddef.h>
#include <stdint.h>

#define SFTP_MAX_MSG_LENGTH	(256 * 1024)	/* as OpenSSH */
/* sftp_hooks.event's reason for a write or CLOSE refused for want of
 * space: under server.min_free_space, or ENOSPC/EDQUOT */
#define SFTP_REASON_NO_SPACE	"no space"

struct sftp_file_info {
	const char	*path;		/* normalised, relative to the root ("a/b.csv") */
	int		 fd;		/* the file, open read-write; borrowed */
	int64_t		 size;
	const char	*sha256;	/* 64 lower-case hex chars */
};

/* What one handle was used for (hooks.access). Borrowed for the call. */
struct sftp_access {
	const char	*path;		/* normalised, relative to the root */
	int		 dir;		/* 1: a directory handle (a listing) */
	int		 at_end;	/* 1: still open when the session ended */
	int64_t		 bytes;		/* file: bytes sent in DATA replies */
	int64_t		 reads;		/* file: DATA replies; dir: NAME replies */
	int64_t		 first;		/* file: lowest offset read (-1: none) */
	int64_t		 end;		/* file: highest offset + length read */
	int64_t		 size;		/* file: its size at the end (-1: unknown) */
	int64_t		 entries;	/* dir: names returned */
};

struct sftp_hooks {
	void	*arg;
	/*
	 * A write handle is being closed: its size and SHA-256 are known; it
	 * is still mode 0600 and not fsynced. The session writes its receipt
	 * (an extended attribute) and links it into the spool here, so that
	 * the one fsync of the file that follows makes them durable in the
	 * same journal commit. 0, or -1 to answer SSH_FX_FAILURE. If anything
	 * after it fails, the engine sets mode 0600 again and calls
	 * file_unstage, which undoes it. May be NULL.
	 */
	int	(*file_stage)(void *arg, const struct sftp_file_info *fi);
	void	(*file_unstage)(void *arg, const struct sftp_file_info *fi);
	/*
	 * A write handle was closed and the file is durable. Return 0 to tell
	 * the client SSH_FX_OK; -1 to answer SSH_FX_FAILURE, in which case the
	 * engine sets the file back to mode 0600 (incomplete). May be NULL.
	 */
	int	(*file_complete)(void *arg, const struct sftp_file_info *fi);
	/*
	 * Every state-changing request and every refusal, for the audit trail:
	 * op is e.g. "open", "remove", "rename", "mkdir", "rmdir", "setstat",
	 * path2 is the rename target or NULL, status is the SSH_FX_* code sent.
	 * Paths are normalised (or the raw client bytes, escaped, when they were
	 * refused as invalid). reason: why it failed, for the audit trail
	 * ("no space": the free-space floor or ENOSPC/EDQUOT; a refused write's
	 * message, e.g. "file too large (limit N bytes)"), else NULL.
	 * May be NULL.
	 */
	void	(*event)(void *arg, const char *op, const char *path,
		    const char *path2, uint32_t status, const char *reason);
	/*
	 * Is this accepted (mode 0440) file, open read-only as fd, recorded as
	 * received? 1 yes, 0 no,
	 * -1 cannot tell. A file that is 0440 but was never recorded is what a
	 * crash inside CLOSE leaves behind (its partner was never told OK): a
	 * partner with only the upload permission may replace it, as it may
	 * replace its own incomplete upload. Asked with the file's lock held,
	 * so no CLOSE is under way. May be NULL (everything counts as recorded).
	 */
	int	(*is_recorded)(void *arg, int fd, int64_t dev, int64_t ino);
	/*
	 * A readable file handle or a directory handle ended (CLOSE, or the
	 * session ended with it open: sftp_free): what the partner read or
	 * listed through it, once per handle, never per READ or READDIR.
	 * A write handle is reported only if it was read from. May be NULL.
	 */
	void	(*access)(void *arg, const struct sftp_access *a);
};

struct sftp_params {
	int		 rootfd;	/* O_DIRECTORY fd of the partner root; borrowed */
	uint32_t	 max_handles;	/* 0: default 64 */
	unsigned	 perms;		/* PERM_*; 0: the built-in dropbox role */
	int64_t		 max_file_size;	/* bytes; 0: unlimited */
	int64_t		 min_free_space; /* bytes the root's fs keeps; 0: none */
	/* The delivery receipts folder beneath the root ("receipts"; NULL:
	 * none). Read-only whatever the role: every change in it or to it
	 * (open for writing, setstat, remove, mkdir, rmdir, rename from or
	 * into it) is refused with SSH_FX_PERMISSION_DENIED before the disk is
	 * touched. Borrowed for the engine's life. */
	const char	*receipts_dir;
	struct sftp_hooks hooks;
};

struct sftp;

struct sftp *sftp_new(const struct sftp_params *);	/* NULL on ENOMEM */
/*
 * Feeds len bytes received from the client; whole packets are processed at
 * once, a partial one is buffered. Returns 0, or -1 if the session must end
 * (malformed or oversized packet, a second INIT, allocation failure); the
 * reason is logged.
 */
int sftp_input(struct sftp *, const uint8_t *data, size_t len);
/* Bytes to send to the client (*len may be 0). */
const uint8_t *sftp_output(struct sftp *, size_t *len);
/* The first n bytes of the output were sent. */
void sftp_output_consume(struct sftp *, size_t n);
/* Closes all handles (open write handles stay incomplete: never shipped). */
void sftp_free(struct sftp *);
/* How many write handles are open (uploads under way). */
uint32_t sftp_writers(const struct sftp *);

#endif
