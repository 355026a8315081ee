/*
 * algos.h - the SSH algorithm policy in one place: the secure default list
 * of each kind, the names sluice knows, which of them are weak and why, and
 * whether this libssh supports a name.
 *
 * The config loader (policy/config.c) calls these to check
 * server.algorithms.* (weak: a FILE:LINE warning, unsupported: an error);
 * the listener (server/listener.c) takes the defaults from here for what is
 * not configured. Nothing else keeps a list of algorithm names, so the two
 * cannot disagree and check-config warns once per weak name.
 *
 * Every string returned is static; nothing is allocated.
 */
#ifndef SLUICE_ALGOS_H
#define SLUICE_ALGOS_H

/* The five lists of server.algorithms, in this order. */
enum algo_list {
	ALGO_KEX,
	ALGO_CIPHERS,
	ALGO_MACS,
	ALGO_HOSTKEYS,		/* host_key_algorithms */
	ALGO_PUBKEYS,		/* pubkey_algorithms (user keys) */
	ALGO_NLISTS
};

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

/* The comma-separated default of list l (one of the macros above). */
const char *algo_default(enum algo_list l);
/* The key under server.algorithms ("kex", "ciphers", "macs",
 * "host_key_algorithms", "pubkey_algorithms"). */
const char *algo_key(enum algo_list l);
/* What one name of list l is, for messages ("key exchange", "cipher",
 * "MAC", "host key algorithm", "public key algorithm"). */
const char *algo_what(enum algo_list l);
/* The names sluice knows for list l, weak ones included, NULL-terminated:
 * for "did you mean" and to tell a weak-but-unsupported name from a typo. */
const char *const *algo_known(enum algo_list l);

/*
 * Why name is weak ("CBC mode", "SHA-1", "RC4", "no protection at all"
 * ...), or NULL if it is not. Weak whatever list it is in: the one list of
 * weak names.
 */
const char *algo_weak(const char *name);

/* Whether this libssh accepts name in list l (asked of libssh itself). 1 if
 * libssh cannot be asked (do not block on that). */
int algo_supported(enum algo_list l, const char *name);

#endif
