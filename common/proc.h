/*
 * proc.h - the process layer: the users sluice's roles run as, and the one
 * start path every role goes through (the role table itself, procs[], is in
 * main/sluice.c, in the manner of OpenBSD relayd's proc.c and procs[]).
 *
 * Users. Started as root, sluice runs no role that reads outside input as
 * root: the listener, intake, uploader and audit writer run as the service
 * user (config "user", default "sluice"); each SFTP session as the session
 * user (config "server.user", default "sluice-session"). Only the supervisor
 * keeps root, to bind the port, prepare state_dir and start roles. Started
 * as any other user, every role runs as that user (development) and
 * proc_users_resolve says so in a warning.
 *
 * proc_start() is what every role does first, in the forked child, before
 * its run function: default signal dispositions and the one quit flag, a
 * process title, no core dumps and not ptrace-able (PR_SET_DUMPABLE 0),
 * the environment scrubbed of what the role must not hold (AWS_* unless the
 * role keeps S3 credentials), lower priority for background roles, the user
 * switch (setgroups, setresgid, setresuid, checked that it held and cannot
 * be undone), and PR_SET_NO_NEW_PRIVS.
 *
 * Ownership: struct proc_users is a plain value; proc_* borrow everything.
 */
#ifndef SLUICE_PROC_H
#define SLUICE_PROC_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy/config.h"

#define PROC_DEFAULT_USER		"sluice"
#define PROC_DEFAULT_SESSION_USER	"sluice-session"
#define PROC_MAX_GROUPS			64

/* Which user a role runs as. */
enum proc_user {
	PROC_ROOT,		/* stays as started (the supervisor only) */
	PROC_SERVICE,		/* config "user" */
	PROC_SESSION,		/* config "server.user" */
};

/* One resolved account. */
struct proc_id {
	char		 name[64];
	uid_t		 uid;
	gid_t		 gid;
	gid_t		 groups[PROC_MAX_GROUPS];
	int		 ngroups;
};

struct proc_users {
	int		 separated;	/* 1: started as root, roles switch users */
	struct proc_id	 service;
	struct proc_id	 session;
};

/* What a role may keep (flags of proc_start). */
#define PROC_KEEP_AWS		0x01	/* keeps AWS_* (the S3 credentials) */
#define PROC_BACKGROUND		0x02	/* nice 10, lowest best-effort I/O */

/*
 * Resolves the service and session users from cfg (defaults applied). As
 * root: both must exist, be unprivileged and differ, else -1 with one log
 * line naming the fix (deploy/create-users.sh or useradd). As another user:
 * u->separated = 0, both are that user, and a warning says the roles are
 * not separated. 0 or -1.
 */
int proc_users_resolve(const struct config *cfg, struct proc_users *u);

/* The account of `user` in u (NULL for PROC_ROOT or when not separated). */
const struct proc_id *proc_id_of(const struct proc_users *u,
    enum proc_user user);

/*
 * Switches this process to id for good and checks it held (the real,
 * effective and saved ids, the groups, and that root cannot be regained),
 * then sets PR_SET_NO_NEW_PRIVS. id NULL: only no-new-privs. 0 or -1
 * (logged; the caller must exit).
 */
int proc_drop(const struct proc_id *id);

/*
 * The start of a role, in its forked child: see the top of this file.
 * title is the process name ("sluice-intake"). Returns 0, or -1 when the
 * user switch failed (logged; the child must exit).
 */
int proc_start(const char *role, const char *title, const struct proc_id *id,
    int flags);

/*
 * 1 when this process may set owners and modes of files it does not own
 * (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER and CAP_FSETID effective): root
 * started by hand. 0 under the unit's smaller capability set, where
 * `sluice prepare` (ExecStartPre=+) did that part of the start.
 */
int proc_fs_caps(void);

/*
 * File system checks as id (setfsuid/setfsgid; id NULL: back to this
 * process's effective ids): what the supervisor without the file
 * capabilities does below state_dir, whose folders are the service user's.
 * 0, or -1 when the switch did not hold (logged).
 */
int proc_fs_as(const struct proc_id *id);

/*
 * kill(2) for a process running as id (NULL: as this one). The supervisor
 * holds no CAP_KILL: for the call its effective uid is id's (the kernel
 * lets a sender whose real or effective uid is the target's real or saved
 * uid signal it), then root's again; its real and saved uids stay root's,
 * so its capabilities come back with it. A child that has not switched
 * users yet is signalled as root (its real uid is ours). kill's result
 * and errno.
 */
int proc_kill(pid_t pid, const struct proc_id *id, int sig);

/* Removes AWS_* from the environment (the S3 credentials). */
void proc_scrub_env(void);

/* Set once SIGTERM or SIGINT arrived (proc_start installs the handler). */
extern volatile sig_atomic_t proc_quit;
/* Sleeps up to ms, returning early on a signal. */
void proc_sleep(int ms);

/*
 * The supervisor <-> listener channel (SOCK_SEQPACKET). The listener sends
 * SPAWN_SESSION with two fds (SCM_RIGHTS: the accepted client socket and
 * the session's end of its socketpair with the listener); the supervisor
 * starts the session (it alone can switch to the session user) and answers
 * SPAWN_DONE with its pid (-1: failed). SPAWN_EXITED tells the listener a
 * session process ended, with its wait status.
 */
enum spawn_type {
	SPAWN_SESSION = 1,
	SPAWN_DONE,
	SPAWN_EXITED,
	SPAWN_RELOAD,	/* supervisor -> listener: a memfd (twice) holding
			 * sessioncfg_export_listener's text */
	SPAWN_DRAIN,	/* supervisor -> listener: stop accepting */
};

struct spawn_msg {
	uint32_t	 type;
	int32_t		 pid;
	int32_t		 status;
};

/* Sends len bytes of msg with fds a and b attached. 0 or -1 (errno). */
int fd_send(int sock, const void *msg, size_t len, int a, int b);
/* Receives one message of exactly len bytes with two fds (or none: *a and
 * *b are -1). 1 on a message, 0 when none is waiting, -1 on error/EOF. */
int fd_recv(int sock, void *msg, size_t len, int *a, int *b);
int fd_nonblock(int fd);

/* The role's audit trail: the audit writer's socket when it runs
 * (state_dir/run/audit.sock), else the file itself (offline tools and
 * roles run on their own). NULL on error (logged). */
struct audit;
struct audit *proc_audit_open(const struct config *cfg);

#endif
