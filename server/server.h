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

/*
 * The listener role: accepts on listenfd (bound by the supervisor) and asks
 * the supervisor over supfd (SOCK_SEQPACKET, common/proc.h "spawn") to
 * start a session for each admitted connection. Runs until proc_quit.
 * Returns the exit status.
 */
int server_run(const struct config *cfg, int listenfd, int supfd);

/* The server.<kex|ciphers|macs|host_key_algorithms|pubkey_algorithms>
 * list in force (i = 0..4 in that order): the configured one or the
 * default. */
const char *server_algo(const struct server_config *sc, int i);

/*
 * check-config's algorithm review: one "FILE: warning: ..." line to out per
 * weak algorithm that server.kex/ciphers/macs/host_key_algorithms/
 * pubkey_algorithms allow. Returns the number of warnings.
 */
int server_algo_warnings(const struct config *cfg, FILE *out);

/*
 * The session process, re-exec'd by the supervisor for one connection
 * (`sluice __session`), already running as the session user: fd 3 is the
 * client's socket, fd 4 its socketpair with the listener (server/guard.h,
 * server/monitor.h), fd 5 a sealed memfd holding its configuration
 * (policy/sessioncfg.h). verbose: debug logging. Never returns.
 */
#define SESSION_FD_CLIENT	3
#define SESSION_FD_LISTENER	4
#define SESSION_FD_CONFIG	5
void session_main(int verbose) __attribute__((noreturn));

#endif
