/*
 * proc.c - the users roles run as and the one start path of every role
 * (common/proc.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"
#include "spool/layout.h"
#include "spool/state.h"

extern char **environ;

volatile sig_atomic_t proc_quit;

static void
proc_sigterm(int sig)
{
	(void)sig;
	proc_quit = 1;
}

void
proc_sleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	if (!proc_quit)
		nanosleep(&ts, NULL);	/* EINTR on a signal: fine */
}

/* Fills id from the account called name. 0, or -1 with *why set. */
static int
lookup(const char *name, struct proc_id *id, const char **why)
{
	struct passwd *pw;
	int n = PROC_MAX_GROUPS;

	memset(id, 0, sizeof(*id));
	errno = 0;
	if ((pw = getpwnam(name)) == NULL) {
		*why = "does not exist";
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		*why = "is root (uid or gid 0)";
		return -1;
	}
	xstrlcpy(id->name, pw->pw_name, sizeof(id->name));
	id->uid = pw->pw_uid;
	id->gid = pw->pw_gid;
	if (getgrouplist(pw->pw_name, pw->pw_gid, id->groups, &n) == -1) {
		*why = "is in too many groups";
		return -1;
	}
	id->ngroups = n;
	return 0;
}

int
proc_users_resolve(const struct config *cfg, struct proc_users *u)
{
	const char *svc, *ses, *why = NULL, *bad;
	struct passwd *pw;

	memset(u, 0, sizeof(*u));
	svc = cfg->user != NULL ? cfg->user : PROC_DEFAULT_USER;
	ses = cfg->server.user != NULL ? cfg->server.user :
	    PROC_DEFAULT_SESSION_USER;
	if (geteuid() != 0) {
		pw = getpwuid(geteuid());
		log_warnx("running as uid %ld%s%s, not root: every role runs as "
		    "this user, with no privilege separation between the SFTP "
		    "sessions and the rest (fine for development; start sluice "
		    "as root in production)", (long)geteuid(),
		    pw != NULL ? " " : "", pw != NULL ? pw->pw_name : "");
		return 0;
	}
	bad = svc;
	if (lookup(svc, &u->service, &why) == -1)
		goto fail;
	bad = ses;
	if (lookup(ses, &u->session, &why) == -1)
		goto fail;
	if (u->service.uid == u->session.uid ||
	    u->service.gid == u->session.gid) {
		log_warnx("the service user %s and the session user %s share a "
		    "uid or primary group; sessions must not be able to write "
		    "what the service user owns: give each its own (e.g. "
		    "deploy/create-users.sh)", svc, ses);
		return -1;
	}
	u->separated = 1;
	return 0;
fail:
	log_warnx("the %s user \"%s\" (config %s) %s; sluice started as root "
	    "runs its roles as unprivileged users: create it with "
	    "deploy/create-users.sh (or: useradd --system --user-group "
	    "--no-create-home --shell /usr/sbin/nologin %s), or name another "
	    "user in %s", bad == svc ? "service" : "session", bad,
	    bad == svc ? "user" : "server.user", why, bad,
	    bad == svc ? "user" : "server.user");
	return -1;
}

const struct proc_id *
proc_id_of(const struct proc_users *u, enum proc_user user)
{
	if (!u->separated)
		return NULL;
	switch (user) {
	case PROC_SERVICE:	return &u->service;
	case PROC_SESSION:	return &u->session;
	default:		return NULL;
	}
}

int
proc_drop(const struct proc_id *id)
{
	if (id != NULL) {
		if (setgroups((size_t)id->ngroups, id->groups) == -1 ||
		    setresgid(id->gid, id->gid, id->gid) == -1 ||
		    setresuid(id->uid, id->uid, id->uid) == -1) {
			log_warn("cannot switch to user %s", id->name);
			return -1;
		}
		if (getuid() != id->uid || geteuid() != id->uid ||
		    getgid() != id->gid || getegid() != id->gid ||
		    setuid(0) != -1 || seteuid(0) != -1 ||
		    setgid(0) != -1) {
			log_warnx("the switch to user %s did not hold", id->name);
			return -1;
		}
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_warn("PR_SET_NO_NEW_PRIVS");
		return -1;
	}
	return 0;
}

int
proc_fs_caps(void)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[2];
	static const int need[] = { CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER,
	    CAP_FSETID };
	size_t i;

	memset(&hdr, 0, sizeof(hdr));
	memset(data, 0, sizeof(data));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capget, &hdr, data) == -1)
		return 0;
	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!(data[need[i] / 32].effective & (1U << (need[i] % 32))))
			return 0;
	return 1;
}

int
proc_fs_as(const struct proc_id *id)
{
	uid_t uid = id != NULL ? id->uid : geteuid();
	gid_t gid = id != NULL ? id->gid : getegid();

	/* each returns the previous id; called again with -1 (invalid, so
	 * nothing changes) it returns the current one */
	(void)setfsgid(gid);
	(void)setfsuid(uid);
	if ((uid_t)setfsuid((uid_t)-1) != uid ||
	    (gid_t)setfsgid((gid_t)-1) != gid) {
		log_warnx("cannot switch the file system ids to %ld:%ld",
		    (long)uid, (long)gid);
		return -1;
	}
	return 0;
}

int
proc_kill(pid_t pid, const struct proc_id *id, int sig)
{
	int rc, e;

	if (id == NULL || id->uid == 0 || geteuid() != 0)
		return kill(pid, sig);
	if (setresuid((uid_t)-1, id->uid, (uid_t)-1) == -1)
		return kill(pid, sig);	/* CAP_KILL, if held, still lets it */
	rc = kill(pid, sig);
	e = errno;
	/* the real and saved uids are 0: this needs no capability */
	if (setresuid((uid_t)-1, 0, (uid_t)-1) == -1)
		fatal("cannot take back root's effective uid after signalling "
		    "pid %ld", (long)pid);
	errno = e;
	/* a child forked a moment ago may not have switched users yet: it
	 * is still root's, whose real uid is ours */
	if (rc == -1 && e == EPERM)
		rc = kill(pid, sig);
	return rc;
}

void
proc_scrub_env(void)
{
	char name[256], *eq;
	size_t i;

again:
	for (i = 0; environ != NULL && environ[i] != NULL; i++) {
		if (strncmp(environ[i], "AWS_", 4) != 0)
			continue;
		if ((eq = strchr(environ[i], '=')) == NULL ||
		    (size_t)(eq - environ[i]) >= sizeof(name))
			continue;
		memcpy(name, environ[i], (size_t)(eq - environ[i]));
		name[eq - environ[i]] = '\0';
		/* unsetenv only unlinks it: the value stays in this process's
		 * memory (the initial environment, /proc/PID/environ) */
		explicit_bzero(eq + 1, strlen(eq + 1));
		unsetenv(name);
		goto again;	/* environ changed under us */
	}
}

/*
 * A background role could not lower its priority. EPERM is the shipped
 * unit's SystemCallFilter=~@resources, a choice (docs/operator-guide.md):
 * said once at info; anything else is a warning.
 */
static void
background_refused(const char *call, const char *what)
{
	if (errno == EPERM)
		log_info("%s: not permitted (SystemCallFilter=~@resources): "
		    "%s", call, what);
	else
		log_warn("%s (%s)", call, what);
}

int
proc_start(const char *role, const char *title, const struct proc_id *id,
    int flags)
{
	struct sigaction sa;
	struct rlimit rl = { 0, 0 };

	log_setrole(role);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = proc_sigterm;
	sigaction(SIGTERM, &sa, NULL);
	/* Ctrl-C reaches the supervisor, which stops the roles in order. */
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	proc_quit = 0;
	prctl(PR_SET_NAME, title, 0, 0, 0);
	/* No core file and no ptrace by the same user: memory holds keys. */
	setrlimit(RLIMIT_CORE, &rl);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (!(flags & PROC_KEEP_AWS))
		proc_scrub_env();
	if (flags & PROC_BACKGROUND) {
		/*
		 * The background roles yield to the sessions: a partner waits
		 * for its CLOSE, nobody waits for a file to move on a few
		 * milliseconds later (nice 10, best-effort I/O at its lowest).
		 */
		errno = 0;
		if (setpriority(PRIO_PROCESS, 0, 10) == -1 && errno != 0)
			background_refused("setpriority", "this role runs at "
			    "normal priority");
		/* ioprio_set(IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_BE << 13 | 7) */
		if (syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 7) == -1)
			background_refused("ioprio_set", "this role's I/O is "
			    "not lowered");
	}
	if (proc_drop(id) == -1)
		return -1;
	/* a uid change resets it: set it after */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	return 0;
}

int
fd_send(int sock, const void *msg, size_t len, int a, int b)
{
	struct msghdr mh;
	struct iovec iov;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(2 * sizeof(int))];
	} cm;
	struct cmsghdr *c;
	int fds[2] = { a, b };
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	memset(&cm, 0, sizeof(cm));
	iov.iov_base = (void *)(uintptr_t)msg;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	return n == (ssize_t)len ? 0 : -1;
}

int
fd_recv(int sock, void *msg, size_t len, int *a, int *b)
{
	struct msghdr mh;
	struct iovec iov;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(2 * sizeof(int))];
	} cm;
	struct cmsghdr *c;
	int fds[2];
	ssize_t n;

	*a = *b = -1;
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = msg;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	do
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n == -1 && errno == EAGAIN)
		return 0;
	for (c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; c != NULL;
	    c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len != CMSG_LEN(sizeof(fds)))
			continue;
		memcpy(fds, CMSG_DATA(c), sizeof(fds));
		*a = fds[0];
		*b = fds[1];
	}
	if (n != (ssize_t)len || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		if (*a != -1)
			close(*a);
		if (*b != -1)
			close(*b);
		*a = *b = -1;
		return -1;
	}
	return 1;
}

int
fd_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	return 0;
}

struct audit *
proc_audit_open(const struct config *cfg)
{
	struct audit *a;
	char sock[PATH_MAX];

	if (spool_dir_path(cfg->state_dir, SPOOL_AUDIT_SOCK, NULL, sock,
	    sizeof(sock)) == -1) {
		log_warnx("state_dir is too long for %s",
		    spool_dir_name(SPOOL_AUDIT_SOCK));
		return NULL;
	}
	if ((a = audit_open_any(cfg->audit_path, sock)) != NULL) {
		(void)audit_set_key(a, cfg->audit_key_path);	/* file mode */
		(void)audit_set_host(a, cfg->audit_host_id);
	}
	return a;
}
