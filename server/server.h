/*
 * server.h - the network-facing roles: the listener (service user: accepts
 * connections, applies the connection guard, answers the sessions' password
 * and database questions, has the supervisor start one session per
 * connection) and the session (session user, exec'd and sandboxed:
 * libssh transport, authentication, then sluice's SFTP engine over the
 * channel). Neither ever holds S3 credentials or PGP secret keys; only the
 * listener holds password hashes. Host keys and the algorithm policy:
 * server/hostkey.c.
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

/*
 * `sluice host-keys`: one line per configured host key on out, as
 * `ssh-keygen -lf` prints it: "BITS SHA256:FP PATH (TYPE)". Generates
 * nothing. 0, or -1 if a key is missing or unreadable (logged; the others
 * are still printed).
 */
int hostkeys_print(const struct config *cfg, FILE *out);

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
 * The session process, exec'd by the supervisor for one connection
 * (`sluice-session __session`, main/sluice-session.c), already running
 * as the session user: fd 3 is the client's socket, fd 4 its socketpair
 * with the listener (server/guard.h, server/monitor.h), fd 5 a sealed
 * memfd holding its configuration (policy/sessioncfg.h). verbose: debug
 * logging. Never returns.
 */
#define SESSION_FD_CLIENT	3
#define SESSION_FD_LISTENER	4
#define SESSION_FD_CONFIG	5
void session_main(int verbose) __attribute__((noreturn));

#endif
