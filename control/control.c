/*
 * control.c - the control socket and the control role (control.h).
 */
#include "control/control.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "policy/operator.h"

#define CONTROL_GROUPS_MAX	256

/* One operator's connection. */
struct conn {
	int		 fd;		/* -1: free slot */
	pid_t		 child;		/* the running command, 0: none */
	int		 hup;		/* the client went away meanwhile */
	int64_t		 since;		/* accepted, or last answered */
	uid_t		 uid;
	char		 user[64];	/* user name, or "uid:N" */
	enum op_role	 role;
	int		 role_line;	/* operators: entry that granted it */
	char		 command[64];	/* the running command's words */
	char		 request[48];	/* id linking .command and .done */
};

static struct conn	 conns[CONTROL_CONNS];
static int		 nchildren;
static unsigned long	 nrequests;

const struct control_cmd *
control_find(const struct control_cmd *tab, size_t n, int argc,
    char *const *argv)
{
	size_t i;

	for (i = 0; argc >= 1 && i < n; i++) {
		if (strcmp(argv[0], tab[i].word) != 0)
			continue;
		if (tab[i].sub == NULL ||
		    (argc >= 2 && strcmp(argv[1], tab[i].sub) == 0))
			return &tab[i];
	}
	return NULL;
}

static int
sun_set(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (xstrlcpy(sun->sun_path, path, sizeof(sun->sun_path)) >=
	    sizeof(sun->sun_path)) {
		log_warnx("control.socket %s: the path is too long for a UNIX "
		    "socket; choose a shorter one", path);
		return -1;
	}
	return 0;
}

/* 1 if a gateway answers at sun, 0 if not. */
static int
answers(const struct sockaddr_un *sun)
{
	int fd, r;

	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	r = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	return r;
}

/* Creates path's directory (one level, 0755) when it is missing. */
static int
make_dir(const char *path)
{
	char dir[PATH_MAX], *slash;

	if (xstrlcpy(dir, path, sizeof(dir)) >= sizeof(dir) ||
	    (slash = strrchr(dir, '/')) == NULL)
		return -1;
	if (slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
		log_warn("control.socket: cannot create the directory %s (create "
		    "its parent, or choose another control.socket)", dir);
		return -1;
	}
	return 0;
}

int
control_listen(const char *path, uid_t owner, gid_t group)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd = -1;

	if (sun_set(&sun, path) == -1 || make_dir(path) == -1)
		return -1;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_warnx("control.socket %s exists and is not a socket; "
			    "move it away or choose another control.socket",
			    path);
			return -1;
		}
		if (answers(&sun)) {
			log_warnx("control.socket %s: another sluice gateway "
			    "answers there; give each gateway its own "
			    "control.socket", path);
			return -1;
		}
		if (unlink(path) == -1) {
			log_warn("control.socket: cannot remove the stale socket "
			    "%s", path);
			return -1;
		}
	}
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("control: socket");
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		log_warn("control.socket: cannot bind %s", path);
		close(fd);
		return -1;
	}
	/* Anyone may connect: the control role decides by SO_PEERCRED. */
	if (lchown(path, owner, group) == -1 || chmod(path, 0666) == -1 ||
	    listen(fd, 16) == -1) {
		log_warn("control.socket %s", path);
		(void)unlink(path);
		close(fd);
		return -1;
	}
	return fd;
}

/* --- the control role ------------------------------------------------------ */

/* Who is at the other end of fd (SO_PEERCRED), and the role they have. */
static int
identify(const struct config *cfg, int fd, struct conn *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct passwd *pw;
	struct group *gr;
	gid_t gids[CONTROL_GROUPS_MAX];
	char *names[CONTROL_GROUPS_MAX + 1];
	int ng = CONTROL_GROUPS_MAX, i, nn = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
	    len != sizeof(cred)) {
		log_warn("control: SO_PEERCRED");
		return -1;
	}
	c->uid = cred.uid;
	errno = 0;
	if ((pw = getpwuid(cred.uid)) != NULL) {
		xstrlcpy(c->user, pw->pw_name, sizeof(c->user));
		if (getgrouplist(pw->pw_name, pw->pw_gid, gids, &ng) == -1)
			ng = CONTROL_GROUPS_MAX;	/* the first ones */
	} else {
		xsnprintf(c->user, sizeof(c->user), "uid:%u",
		    (unsigned)cred.uid);
		ng = 0;
	}
	if (ng < CONTROL_GROUPS_MAX)
		gids[ng++] = cred.gid;	/* the connecting process's group */
	for (i = 0; i < ng; i++)
		if ((gr = getgrgid(gids[i])) != NULL &&
		    (names[nn] = strdup(gr->gr_name)) != NULL)
			nn++;
	c->role = operator_role(cfg, cred.uid, getuid(),
	    pw != NULL ? c->user : NULL, (const char *const *)names,
	    (size_t)nn, &c->role_line);
	for (i = 0; i < nn; i++)
		free(names[i]);
	return 0;
}

static void
conn_close(struct conn *c)
{
	if (c->fd != -1)
		close(c->fd);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void
accept_one(const struct config *cfg, int listenfd)
{
	struct conn *c = NULL;
	size_t i;
	int fd;

	if ((fd = accept4(listenfd, NULL, NULL, SOCK_CLOEXEC)) == -1) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("control: accept");
		return;
	}
	for (i = 0; i < CONTROL_CONNS && c == NULL; i++)
		if (conns[i].fd == -1)
			c = &conns[i];
	if (c == NULL) {
		log_warnx("control: more than %d operator connections; one "
		    "was turned away", CONTROL_CONNS);
		close(fd);
		return;
	}
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->since = mono_ms();
	if (identify(cfg, fd, c) == -1)
		conn_close(c);
}

static int
reply(struct conn *c, int status, const char *msg)
{
	struct control_reply r;

	memset(&r, 0, sizeof(r));
	r.magic = CONTROL_MAGIC;
	r.status = status;
	if (msg != NULL)
		xstrlcpy(r.msg, msg, sizeof(r.msg));
	c->since = mono_ms();
	if (send(c->fd, &r, sizeof(r), MSG_NOSIGNAL | MSG_DONTWAIT) !=
	    (ssize_t)sizeof(r)) {
		conn_close(c);
		return -1;
	}
	return 0;
}

/*
 * The request's argv (borrowed from j), cwd and the configuration file the
 * operator named (NULL: none), or -1 if malformed.
 */
static int
parse_request(json_t *j, char **argv, int *argc, const char **cwd,
    const char **config)
{
	json_t *a, *v;
	size_t i;

	if (!json_is_object(j) || !json_is_array(a = json_object_get(j,
	    "argv")) || json_array_size(a) < 1 ||
	    json_array_size(a) > CONTROL_ARGS_MAX)
		return -1;
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return -1;
		argv[i] = (char *)(uintptr_t)json_string_value(v);
	}
	argv[i] = NULL;
	*argc = (int)i;
	v = json_object_get(j, "cwd");
	*cwd = json_is_string(v) ? json_string_value(v) : NULL;
	v = json_object_get(j, "config");
	*config = json_is_string(v) ? json_string_value(v) : NULL;
	return 0;
}

/*
 * 1 if the configuration the operator named (-c) is the file this gateway
 * runs with (or none was named); else says so and returns 0: the gateway
 * would answer for its own configuration, not the one asked about.
 */
static int
same_config(const struct config *cfg, const char *given)
{
	struct stat a, b;

	if (given == NULL || (stat(given, &a) == 0 && stat(cfg->path, &b) ==
	    0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino))
		return 1;
	fprintf(stderr, "sluice: the gateway on this control socket runs with "
	    "%s, not %s; to read another configuration's files, run the "
	    "command with --local as a user who may read them\n", cfg->path,
	    given);
	return 0;
}

/*
 * audit_emit, tried again for up to 2 s if it fails: the call after a
 * writer restarted (killed, or its key rotated) connects again, and a writer
 * being restarted by the supervisor answers within moments. Takes the
 * reference to f.
 */
static int
emit(struct audit *au, const char *event, json_t *f)
{
	int i;

	for (i = 0; i < 10; i++) {
		if (f != NULL)
			json_incref(f);
		if (audit_emit(au, event, f) == 0) {
			json_decref(f);
			return 0;
		}
		if (i > 0)
			(void)usleep(200 * 1000);
	}
	json_decref(f);
	return -1;
}

/* The command's audit fields (the common part of .command/.refused/.done). */
static json_t *
who(const struct conn *c, const char *command)
{
	return json_pack("{s:s,s:I,s:s,s:s}", "operator", c->user, "uid",
	    (json_int_t)c->uid, "role", op_role_name(c->role), "command",
	    command);
}

static json_t *
args_of(int argc, char **argv)
{
	json_t *a = json_array();
	int i;

	for (i = 0; a != NULL && i < argc; i++)
		json_array_append_new(a, json_string(argv[i]));
	return a;
}

/* In the forked child: the operator's fds, then the command. */
static void __attribute__((noreturn))
run_child(const struct config *cfg, const struct control_cmd *cmd,
    struct conn *c, int out, int err, const char *cwd, const char *config,
    int argc, char **argv, int listenfd)
{
	size_t i;
	int null, rc;

	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	close(listenfd);
	for (i = 0; i < CONTROL_CONNS; i++)
		if (conns[i].fd != -1)
			close(conns[i].fd);
	if (dup2(out, STDOUT_FILENO) == -1 || dup2(err, STDERR_FILENO) == -1)
		_exit(126);
	if (out > STDERR_FILENO)
		close(out);
	if (err > STDERR_FILENO && err != out)
		close(err);
	if ((null = open("/dev/null", O_RDONLY | O_CLOEXEC)) != -1 &&
	    null != STDIN_FILENO) {
		dup2(null, STDIN_FILENO);
		close(null);
	}
	if ((cwd == NULL || cwd[0] != '/' || chdir(cwd) == -1) &&
	    chdir("/") == -1)
		_exit(126);
	log_setrole(cmd->word);
	if (!same_config(cfg, config))
		_exit(2);
	rc = cmd->run(cfg, c->user, argc, argv);
	fflush(stdout);
	fflush(stderr);
	_exit(rc & 0xff);
}

/* Refuses argv (audited); the client gets msg and exit status st. */
static void
refuse(struct audit *au, struct conn *c, const char *command, int argc,
    char **argv, const char *reason, int st, const char *msg)
{
	json_t *f;

	if ((f = who(c, command)) != NULL) {
		json_object_set_new(f, "args", args_of(argc, argv));
		json_object_set_new(f, "allowed", json_false());
		json_object_set_new(f, "reason", json_string(reason));
	}
	if (emit(au, "operator.refused", f) == -1)
		log_warnx("control: the refusal of \"%s\" for %s was not "
		    "audited", command, c->user);
	log_info("control: refused \"%s\" for %s (role %s): %s", command,
	    c->user, op_role_name(c->role), reason);
	reply(c, st, msg);
}

/* Runs an allowed command: audited first, then forked. */
static void
start(const struct config *cfg, struct audit *au, struct conn *c,
    const struct control_cmd *cmd, int out, int err, const char *cwd,
    const char *config, int argc, char **argv, int listenfd)
{
	json_t *f;
	pid_t pid;

	xsnprintf(c->request, sizeof(c->request), "%ld.%lu", (long)getpid(),
	    ++nrequests);
	if ((f = who(c, c->command)) != NULL) {
		json_object_set_new(f, "args", args_of(argc, argv));
		json_object_set_new(f, "allowed", json_true());
		json_object_set_new(f, "request", json_string(c->request));
	}
	if (emit(au, "operator.command", f) == -1) {
		reply(c, 1, "sluice: the gateway cannot write to its audit "
		    "trail, so the command was not run; see the gateway's log");
		return;
	}
	if ((pid = fork()) == -1) {
		log_warn("control: fork");
		reply(c, 1, "sluice: the gateway could not start the command "
		    "(fork failed); see its log");
		return;
	}
	if (pid == 0)
		run_child(cfg, cmd, c, out, err, cwd, config, argc, argv,
		    listenfd);
	c->child = pid;
	nchildren++;
	log_info("control: %s (role %s) runs \"%s\" (pid %ld)", c->user,
	    op_role_name(c->role), c->command, (long)pid);
}

/* The command's words ("queue retry") and the refusal message, if any. */
static const struct control_cmd *
check(const struct config *cfg, const struct control_cmd *tab, size_t n,
    struct conn *c, int argc, char **argv, char *msg, size_t msglen)
{
	const struct control_cmd *cmd;

	cmd = control_find(tab, n, argc, argv);
	xsnprintf(c->command, sizeof(c->command), "%s%s%s", argv[0],
	    cmd != NULL && cmd->sub != NULL ? " " : "",
	    cmd != NULL && cmd->sub != NULL ? cmd->sub : "");
	if (cmd == NULL)
		xsnprintf(msg, msglen, "sluice: \"%s\" is not a command the "
		    "gateway runs (see sluice --help)", argv[0]);
	else if (c->role == OPROLE_NONE)
		xsnprintf(msg, msglen, "sluice: refused: %s (uid %u) has no "
		    "operator role on this gateway; an owner can grant one "
		    "under operators: in %s", c->user, (unsigned)c->uid,
		    cfg->path);
	else if (!operator_may(c->role, cmd->need))
		xsnprintf(msg, msglen, "sluice: refused: %s has the %s role "
		    "(%s:%d); \"%s\" needs the %s role (operators: in %s)",
		    c->user, op_role_name(c->role), cfg->path, c->role_line,
		    c->command, op_role_name(cmd->need), cfg->path);
	else
		msg[0] = '\0';
	return cmd;
}

/* One request from c, or the connection's end. */
static void
request(const struct config *cfg, struct audit *au, struct conn *c,
    const struct control_cmd *tab, size_t n, int listenfd)
{
	static struct control_req req;
	const struct control_cmd *cmd;
	char *argv[CONTROL_ARGS_MAX + 1], msg[1024];
	const char *cwd, *config;
	json_t *j = NULL;
	int out, err, r, argc;

	if ((r = fd_recv(c->fd, &req, sizeof(req), &out, &err)) == 0)
		return;
	if (r == -1 || out == -1 || err == -1 || req.magic != CONTROL_MAGIC ||
	    req.len > sizeof(req.data) ||
	    (j = json_loadb(req.data, req.len, JSON_REJECT_DUPLICATES,
	    NULL)) == NULL || parse_request(j, argv, &argc, &cwd,
	    &config) == -1) {
		if (r == 1)
			log_warnx("control: a malformed request from %s (uid "
			    "%u); connection closed", c->user, (unsigned)c->uid);
		conn_close(c);
		goto done;
	}
	cmd = check(cfg, tab, n, c, argc, argv, msg, sizeof(msg));
	if (msg[0] != '\0')
		refuse(au, c, c->command, argc, argv, cmd == NULL ?
		    "unknown command" : c->role == OPROLE_NONE ? "no role" :
		    "role", cmd == NULL ? 2 : CONTROL_EXIT_REFUSED, msg);
	else
		start(cfg, au, c, cmd, out, err, cwd, config, argc, argv,
		    listenfd);
done:
	if (out != -1)
		close(out);
	if (err != -1)
		close(err);
	json_decref(j);
}

/* A command ended: audit it and answer its client. */
static void
finished(struct audit *au, pid_t pid, int status)
{
	struct conn *c = NULL;
	json_t *f;
	size_t i;
	int st;

	for (i = 0; i < CONTROL_CONNS && c == NULL; i++)
		if (conns[i].child == pid)
			c = &conns[i];
	if (c == NULL)
		return;
	c->child = 0;
	nchildren--;
	st = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if ((f = who(c, c->command)) != NULL) {
		json_object_set_new(f, "request", json_string(c->request));
		json_object_set_new(f, "exit", json_integer(st));
	}
	if (emit(au, "operator.done", f) == -1)
		log_warnx("control: the end of \"%s\" for %s was not audited",
		    c->command, c->user);
	if (c->hup)
		conn_close(c);
	else
		reply(c, st, NULL);
}

static size_t
poll_set(struct pollfd *pfd, int listenfd, size_t *map)
{
	size_t i, n = 0;

	pfd[n].fd = listenfd;
	pfd[n++].events = POLLIN;
	for (i = 0; i < CONTROL_CONNS; i++) {
		if (conns[i].fd == -1 || conns[i].hup)
			continue;
		pfd[n].fd = conns[i].fd;
		/* one request at a time; none while the children are busy */
		pfd[n].events = conns[i].child == 0 &&
		    nchildren < CONTROL_CHILDREN ? POLLIN : 0;
		map[n++] = i;
	}
	return n;
}

static void
reap(struct audit *au, int block)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, block ? 0 : WNOHANG)) > 0)
		finished(au, pid, status);
}

/* One pass of the loop: poll, accept, read requests, reap, time out. */
static void
serve_once(const struct config *cfg, struct audit *au, int listenfd,
    const struct control_cmd *tab, size_t n)
{
	struct pollfd pfd[CONTROL_CONNS + 1];
	size_t map[CONTROL_CONNS + 1], np, k;
	struct conn *c;

	np = poll_set(pfd, listenfd, map);
	if (poll(pfd, np, 200) > 0) {
		if (pfd[0].revents & POLLIN)
			accept_one(cfg, listenfd);
		for (k = 1; k < np; k++) {
			c = &conns[map[k]];
			if (c->fd != pfd[k].fd || pfd[k].revents == 0)
				continue;
			if (pfd[k].revents & POLLIN)
				request(cfg, au, c, tab, n, listenfd);
			else if (c->child == 0)
				conn_close(c);	/* hung up */
			else
				c->hup = 1;	/* answered never; audited */
		}
	}
	reap(au, 0);
	for (k = 0; k < CONTROL_CONNS; k++)
		if (conns[k].fd != -1 && conns[k].child == 0 &&
		    mono_ms() - conns[k].since > CONTROL_IDLE_MS)
			conn_close(&conns[k]);
}

int
control_run(const struct config *cfg, int listenfd,
    const struct control_cmd *tab, size_t n)
{
	struct audit *au;
	size_t i;

	for (i = 0; i < CONTROL_CONNS; i++) {
		memset(&conns[i], 0, sizeof(conns[i]));
		conns[i].fd = -1;
	}
	if (fd_nonblock(listenfd) == -1) {
		log_warn("control: the socket");
		return -1;
	}
	if ((au = proc_audit_open(cfg)) == NULL)
		return -1;
	log_info("control: operators' commands on %s", cfg->control_socket);
	while (!proc_quit)
		serve_once(cfg, au, listenfd, tab, n);
	/* Stopping: the running commands end too, and are answered. */
	for (i = 0; i < CONTROL_CONNS; i++)
		if (conns[i].child > 0)
			kill(conns[i].child, SIGTERM);
	if (nchildren > 0)
		reap(au, 1);
	for (i = 0; i < CONTROL_CONNS; i++)
		if (conns[i].fd != -1)
			conn_close(&conns[i]);
	audit_close(au);
	return 0;
}

/* --- the operator's side --------------------------------------------------- */

static int
request_of(int argc, char *const *argv, const char *config,
    struct control_req *req)
{
	char cwd[PATH_MAX], real[PATH_MAX], *text = NULL;
	json_t *j, *a;
	size_t len;
	int i;

	memset(req, 0, sizeof(*req));
	req->magic = CONTROL_MAGIC;
	if ((j = json_object()) == NULL || (a = json_array()) == NULL ||
	    json_object_set_new(j, "argv", a) == -1)
		goto fail;
	for (i = 0; i < argc; i++)
		if (json_array_append_new(a, json_string(argv[i])) == -1)
			goto fail;
	if (getcwd(cwd, sizeof(cwd)) != NULL)
		json_object_set_new(j, "cwd", json_string(cwd));
	if (config != NULL)
		json_object_set_new(j, "config", json_string(realpath(config,
		    real) != NULL ? real : config));
	if (argc > CONTROL_ARGS_MAX ||
	    (text = json_dumps(j, JSON_COMPACT)) == NULL ||
	    (len = strlen(text)) > sizeof(req->data)) {
		fprintf(stderr, "sluice: the command is too long to send to "
		    "the gateway (at most %d arguments, %d bytes)\n",
		    CONTROL_ARGS_MAX, CONTROL_REQ_MAX);
		goto fail;
	}
	memcpy(req->data, text, len);
	req->len = (uint32_t)len;
	free(text);
	json_decref(j);
	return 0;
fail:
	free(text);
	json_decref(j);
	return -1;
}

int
control_call(const char *sockpath, int argc, char *const *argv,
    const char *config, int *status)
{
	static struct control_req req;
	struct control_reply rep;
	struct sockaddr_un sun;
	ssize_t n;
	int fd;

	if (sun_set(&sun, sockpath) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(stderr, "sluice: socket: %s\n", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		n = errno;
		close(fd);
		if (n == ENOENT || n == ECONNREFUSED || n == ENOTDIR)
			return 0;	/* no gateway: run here */
		fprintf(stderr, "sluice: cannot reach the gateway at %s: %s "
		    "(add --local to run the command here instead)\n",
		    sockpath, strerror((int)n));
		return -1;
	}
	if (request_of(argc, argv, config, &req) == -1) {
		close(fd);
		return -1;
	}
	if (fd_send(fd, &req, sizeof(req), STDOUT_FILENO, STDERR_FILENO) ==
	    -1) {
		fprintf(stderr, "sluice: cannot send the command to the gateway "
		    "at %s: %s\n", sockpath, strerror(errno));
		close(fd);
		return -1;
	}
	do
		n = recv(fd, &rep, sizeof(rep), 0);
	while (n == -1 && errno == EINTR);
	close(fd);
	if (n != (ssize_t)sizeof(rep) || rep.magic != CONTROL_MAGIC) {
		fprintf(stderr, "sluice: the gateway at %s closed the connection "
		    "without an answer (see its log)\n", sockpath);
		*status = 1;
		return 1;
	}
	rep.msg[sizeof(rep.msg) - 1] = '\0';
	if (rep.msg[0] != '\0')
		fprintf(stderr, "%s\n", rep.msg);
	*status = rep.status;
	return 1;
}
