/*
 * server.h - the network-facing roles: the listener (accepts SSH
 * connections, forks one session process per connection) and the session
 * (libssh transport, authentication, then sluice's SFTP engine over the
 * channel). Neither ever holds S3 credentials or PGP secret keys.
 */
#ifndef SLUICE_SERVER_H
#define SLUICE_SERVER_H

#include "policy/config.h"

/* Default SSH algorithm policy (REFERENCE.md "SSH algorithm policy"). */
#define SSH_DEFAULT_KEX "curve25519-sha256,curve25519-sha256@libssh.org," \
    "ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521," \
    "diffie-hellman-group16-sha512,diffie-hellman-group18-sha512"
#define SSH_DEFAULT_CIPHERS "aes256-gcm@openssh.com,aes128-gcm@openssh.com," \
    "aes256-ctr,aes192-ctr,aes128-ctr"
#define SSH_DEFAULT_MACS "hmac-sha2-256-etm@openssh.com," \
    "hmac-sha2-512-etm@openssh.com"
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

/* One session on an accepted socket (in the forked child). Never returns. */
void session_run(const struct config *cfg, void *ssh_session)
    __attribute__((noreturn));

#endif
