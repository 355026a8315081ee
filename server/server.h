/*
 * server.h - the network-facing roles: the listener (accepts SSH
 * connections, forks one session process per connection) and the session
 * (libssh transport, authentication, then sluice's SFTP engine over the
 * channel). Neither ever holds S3 credentials or PGP secret keys.
 */
#ifndef SLUICE_SERVER_H
#define SLUICE_SERVER_H

#include <stdio.h>
#include <sys/types.h>

#include "policy/config.h"

/*
 * Makes sure every configured host key exists: a missing one is generated
 * (ed25519, mode 0600); an existing one that is group/world readable is
 * refused. Prints the SHA-256 fingerprints. 0 or -1 (logged).
 */
int hostkeys_ensure(const struct config *cfg);

/* The listener role: runs until SIGTERM/SIGINT. Returns the exit status. */
int server_run(const struct config *cfg);

/*
 * With server.user set and running as root: makes state_dir, sluice.db,
 * spool/incoming, landing/ (and each partner root in it) and the audit file
 * usable by that user (see listener.c for the exact modes). No-op without
 * server.user. 0 or -1 (logged). Called by prepare() before roles start.
 */
int server_prepare_user(const struct config *cfg);

/* The unprivileged user sessions run as (server.user), resolved by the
 * listener before any connection. */
#define SESSION_MAX_GROUPS	64
struct session_user {
	int		 set;
	char		 name[64];
	uid_t		 uid;
	gid_t		 gid;
	gid_t		 groups[SESSION_MAX_GROUPS];
	int		 ngroups;
};

/*
 * One session on an accepted socket, in the forked child. guardfd is the
 * session's end of its socketpair with the listener (server/guard.h); user,
 * if not NULL, is the user to drop to before reading a byte from the client
 * (the process exits if that fails). Both borrowed. Never returns.
 */
void session_run(const struct config *cfg, void *ssh_session, int guardfd,
    const struct session_user *user) __attribute__((noreturn));

#endif
