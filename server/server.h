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

/* Default SSH algorithm policy (REFERENCE.md "SSH algorithm policy"). */
#define SSH_DEFAULT_KEX "curve25519-sha256,curve25519-sha256@libssh.org," \
    "ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521," \
    "diffie-hellman-group16-sha512,diffie-hellman-group18-sha512"
#define SSH_DEFAULT_CIPHERS "aes256-gcm@openssh.com,aes128-gcm@openssh.com," \
    "aes256-ctr,aes192-ctr,aes128-ctr"
/*
 * ETM first; the plain SHA-2 MACs stay offered because libssh2 1.10 (curl,
 * many banks' transfer tools) knows no ETM and no AES-GCM. Both are SHA-2
 * and in AWS Transfer Family's policies; nothing SHA-1 is offered.
 */
#define SSH_DEFAULT_MACS "hmac-sha2-256-etm@openssh.com," \
    "hmac-sha2-512-etm@openssh.com,hmac-sha2-256,hmac-sha2-512"
#define SSH_DEFAULT_HOSTKEYS "ssh-ed25519,rsa-sha2-512,rsa-sha2-256," \
    "ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521"
#define SSH_DEFAULT_PUBKEYS "ssh-ed25519,ecdsa-sha2-nistp256," \
    "ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256," \
    "sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com"

/*
 * Makes sure every configured host key exists: a missing one is generated
 * (ed25519, mode 0600); an existing one that is group/world readable is
 * refused. Prints the SHA-256 fingerprints. 0 or -1 (logged).
 */
int hostkeys_ensure(const struct config *cfg);

/* The listener role: runs until SIGTERM/SIGINT. Returns the exit status. */
int server_run(const struct config *cfg);

/*
 * check-config's algorithm review: one "FILE: warning: ..." line to out per
 * weak algorithm that server.kex/ciphers/macs/host_key_algorithms/
 * pubkey_algorithms allow. Returns the number of warnings.
 */
int server_algo_warnings(const struct config *cfg, FILE *out);

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
