/*
 * control.h - the control socket: operators' admin commands (sluice queue,
 * reconcile, audit ...) run inside the running gateway, as its service
 * user, after the operator's role allowed them, with every command and
 * every refusal in the audit trail.
 *
 *   operator's shell                        gateway
 *   sluice queue retry 7 ──connect──▶ control.socket (0666; made by the
 *     (control_call)                   supervisor as root, control_listen)
 *                                       control role (control_run), as the
 *                                       service user: SO_PEERCRED -> user,
 *                                       groups -> role (policy/operator.h)
 *     request: argv + cwd (JSON) ─────▶ command table: allowed?
 *     + its stdout, stderr (SCM_RIGHTS)  audit operator.command / .refused
 *                                       fork: fds 1, 2 = the operator's;
 *                                       run the command's function
 *     ◀───────── reply: exit status ──── audit operator.done
 *
 * Authorization is by the peer's credentials, never by the socket's mode.
 * A request is one SOCK_SEQPACKET message of exactly sizeof(struct
 * control_req) with two fds; anything else (wrong size, no fds, bad JSON,
 * more than CONTROL_ARGS_MAX arguments) costs the client its connection.
 * One request at a time per connection, at most CONTROL_CHILDREN commands
 * at once (further requests wait), at most CONTROL_CONNS connections.
 *
 * Ownership: tables and configurations are borrowed; nothing returned
 * needs freeing.
 */
#ifndef SLUICE_CONTROL_H
#define SLUICE_CONTROL_H

#include <stdint.h>
#include <sys/types.h>

#include "policy/config.h"

#define CONTROL_MAGIC		0x736c6331u	/* "slc1" */
#define CONTROL_REQ_MAX		8192	/* the JSON of one request */
#define CONTROL_ARGS_MAX	64
#define CONTROL_CHILDREN	4
#define CONTROL_CONNS		32
#define CONTROL_IDLE_MS		60000	/* a connection without a request */
#define CONTROL_EXIT_REFUSED	77	/* the exit status of a refused command */

/* The request: data holds {"argv":["queue","list"],"cwd":"/root"}. */
struct control_req {
	uint32_t	 magic;
	uint32_t	 len;		/* bytes of data used */
	char		 data[CONTROL_REQ_MAX];
};

/* The reply: the command's exit status, and a message for its stderr
 * (refusals). */
struct control_reply {
	uint32_t	 magic;
	int32_t		 status;
	char		 msg[1024];
};

/*
 * A command the control role runs. It runs in a forked child of the
 * control role with the operator's stdout and stderr as fds 1 and 2 and
 * the operator's working directory (when the service user may enter it).
 * run gets the gateway's configuration, the operator's user name (for the
 * audit records the command writes; NULL when run locally: the invoking
 * user) and argv from the command word on ({"queue", "retry", "7"}); it
 * returns the exit status. sub NULL matches any second word.
 */
typedef int (*control_fn)(const struct config *cfg, const char *op,
    int argc, char **argv);

struct control_cmd {
	const char	*word;		/* "queue" */
	const char	*sub;		/* "retry", or NULL */
	enum op_role	 need;		/* the least role that may run it */
	control_fn	 run;
};

/* The entry of tab[0..n) that argv names, or NULL. */
const struct control_cmd *control_find(const struct control_cmd *tab,
    size_t n, int argc, char *const *argv);

/*
 * The supervisor, as root: creates path's directory when missing (0755),
 * refuses to take a socket another gateway still answers on, replaces a
 * stale one, binds (SOCK_SEQPACKET, close-on-exec), chowns it to
 * owner:group, chmod 0666 and listens. The fd, or -1 (logged with the fix).
 */
int control_listen(const char *path, uid_t owner, gid_t group);

/*
 * The control role: serves operators on listenfd (from control_listen)
 * until proc_quit (common/proc.h); then stops running commands (SIGTERM)
 * and answers their clients. 0, or -1 (logged).
 */
int control_run(const struct config *cfg, int listenfd,
    const struct control_cmd *tab, size_t n);

/*
 * The operator's side: asks the gateway at sockpath to run argv (which
 * must not carry -c: the gateway runs with its own configuration). config
 * is the configuration file the operator named with -c (NULL: none): the
 * gateway refuses (exit 2, saying why) if it is not the file it runs with,
 * rather than answer about another trail or queue. Returns
 * 1 when the gateway answered (*status: the exit status to exit with; a
 * refusal's message was printed to stderr), 0 when no gateway listens at
 * sockpath (run the command locally), -1 on another error (printed).
 */
int control_call(const char *sockpath, int argc, char *const *argv,
    const char *config, int *status);

#endif
