/*
 * listener.c - the listener role (the monitor), running as the service
 * user: accepts connections on the socket the supervisor bound, and has the
 * supervisor start one session process (sluice-session) per connection
 * (a crash or hang in one partner's session touches no other; the session
 * runs as the session user and never sees a password hash).
 *
 * It is the one process that sees every connection from accept to exit, so
 * it enforces the connection limits and bans (server/guard.h): a connection
 * is checked right after accept(2), before a byte of SSH is exchanged, and
 * each session asks it over a socketpair before it counts as logged in. It
 * also answers the sessions' questions that need what they must not hold
 * (server/monitor.h): password checks, the state database. Signal handlers
 * only set flags.
 * Behind a load balancer (server.proxy_protocol) it reads each connection's
 * PROXY v2 header first (server/proxy.h), without blocking its loop, and
 * from then on the client address in it is the connection's address for
 * the guard, the session (MON_PEER) and the audit trail.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/util.h"
#include "common/proc.h"
#include "policy/policy.h"
#include "policy/sessioncfg.h"
#include "server/guard.h"
#include "server/monitor.h"
#include "server/proxy.h"
#include "server/server.h"
#include "spool/layout.h"
#include "spool/receipt.h"
#include "spool/state.h"


/* --- the session processes ------------------------------------------------ */

struct child {
	pid_t	 pid;		/* 0: free */
	int	 fd;		/* our end of the session's socketpair */
	char	 addr[INET6_ADDRSTRLEN];
	char	 partner[128];	/* "" until the login counted (LOGIN) */
	struct mon_peer peer;	/* MON_PEER's answer (proxy_protocol) */
};

struct listener {
	const struct config	*cfg;
	struct config		*reloaded;	/* owned: cfg after a reload */
	int			 draining;	/* SPAWN_DRAIN: accepts no more */
	struct guard		*guard;
	struct audit		*audit;
	struct child		*children;
	int			 nchildren;	/* slots */
	int			 alive;
	struct pollfd		*pfds;
	int			 listenfd;	/* bound by the supervisor */
	int			 supfd;		/* to the supervisor: spawns */
	struct state		*state;		/* for MON_RECORDED/RECEIVED */
	struct proxy_wait	*proxy;		/* NULL: no proxy_protocol */
	/* refusals are logged and audited at most REFUSE_BURST per
	 * REFUSE_PERIOD_MS; the rest are counted and reported with the next */
	int64_t			 refuse_period;
	int			 refuse_n;
	int			 refuse_suppressed;
	/* the ban table on disk: saved at once on a ban, at most once per
	 * BANS_SAVE_MS (a flood of bans batches), and at exit */
	char			 bans_path[PATH_MAX];
	int			 bans_dirty;
	int64_t			 bans_saved;	/* mono_ms of the last save */
};

#define BANS_SAVE_MS		1000

#define REFUSE_BURST		20
#define REFUSE_PERIOD_MS	10000

static void
listener_audit(struct listener *l, const char *event, json_t *fields)
{
	if (l->audit == NULL || audit_emit(l->audit, event, fields) == -1)
		log_warnx("audit record %s was not written", event);
}

/* 1 if one more refusal may be logged and audited now (REFUSE_BURST per
 * REFUSE_PERIOD_MS), else 0 and it is counted as suppressed. */
static int
refuse_budget(struct listener *l)
{
	int64_t now = mono_ms();

	if (now - l->refuse_period > REFUSE_PERIOD_MS) {
		l->refuse_period = now;
		l->refuse_n = 0;
	}
	if (++l->refuse_n > REFUSE_BURST) {
		l->refuse_suppressed++;
		return 0;
	}
	return 1;
}

/* via: the load balancer the connection came through, or NULL. */
static void
refused(struct listener *l, const char *addr, const char *user,
    enum guard_verdict v, const char *via)
{
	const struct guard_limits *lim = guard_get_limits(l->guard);
	const char *key = guard_verdict_key(v);
	json_t *f;
	int limit = 0;

	if (!refuse_budget(l))
		return;
	switch (v) {
	case GUARD_MAX_STARTUPS:	limit = lim->max_startups; break;
	case GUARD_STARTUPS_DROP:	limit = lim->max_startups_begin; break;
	case GUARD_MAX_STARTUPS_ADDR:	limit = lim->max_startups_per_address; break;
	case GUARD_MAX_SESSIONS:	limit = lim->max_sessions; break;
	case GUARD_MAX_SESSIONS_ADDR:	limit = lim->max_sessions_per_address; break;
	case GUARD_MAX_CONNECTIONS:
		limit = lim->max_sessions + lim->max_startups;
		break;
	default:			break;
	}
	if (limit > 0)
		log_info("refused %s%s%s from %s: %s (limit %d; raise %s to "
		    "allow more)", user ? "login of \"" : "connection",
		    user ? user : "", user ? "\"" : "", addr,
		    guard_verdict_str(v), limit, key);
	else
		log_info("refused %s%s%s from %s%s%s: %s", user ?
		    "login of \"" : "connection", user ? user : "", user ?
		    "\"" : "", addr, via != NULL && *via != '\0' ? " via " : "",
		    via != NULL ? via : "", guard_verdict_str(v));
	if (l->refuse_suppressed > 0)
		log_info("(%d more refusals in the last %d s were not logged)",
		    l->refuse_suppressed, REFUSE_PERIOD_MS / 1000);
	f = json_pack("{s:s,s:s,s:s}", "remote", addr, "reason",
	    guard_verdict_str(v), "setting", key ? key : "");
	if (f != NULL && v == GUARD_BANNED) {
		char bkey[64];

		/* IPv6 is banned by its /64: name what is banned */
		if (guard_ban_key(addr, bkey, sizeof(bkey)) == 0 &&
		    strcmp(bkey, addr) != 0)
			json_object_set_new(f, "prefix", json_string(bkey));
	}
	if (f != NULL && user != NULL)
		json_object_set_new(f, "partner", json_string(user));
	if (f != NULL && limit > 0)
		json_object_set_new(f, "limit", json_integer(limit));
	if (f != NULL && via != NULL && via[0] != '\0')
		json_object_set_new(f, "via", json_string(via));
	if (f != NULL && l->refuse_suppressed > 0)
		json_object_set_new(f, "suppressed",
		    json_integer(l->refuse_suppressed));
	l->refuse_suppressed = 0;
	listener_audit(l, user ? "session.refused" : "conn.refused", f);
}

/* Saves the ban table if it changed (force: even if saved < BANS_SAVE_MS
 * ago). A failure is logged; the bans stay in force in memory. */
static void
bans_save(struct listener *l, int force)
{
	int64_t t = mono_ms();

	if (!l->bans_dirty || l->bans_path[0] == '\0' ||
	    (!force && t - l->bans_saved < BANS_SAVE_MS))
		return;
	l->bans_saved = t;
	l->bans_dirty = 0;
	if (guard_save(l->guard, l->bans_path, now_ms() / 1000) == -1)
		log_warn("cannot save the ban table to %s (bans stay in force "
		    "but would not survive a restart; check that state_dir is "
		    "writable and not full)", l->bans_path);
}

/* name: the partner, or the ban key of the address ("2001:db8:1:2::/64");
 * addr: the address whose failure caused it. */
static void
announce_ban(struct listener *l, const char *what, const char *name,
    const char *addr, int64_t duration, int failures)
{
	const struct guard_limits *lim = guard_get_limits(l->guard);
	json_t *f;

	char from[80] = "";

	/* a user is banned from the address's ban key only */
	if (strcmp(what, "user") == 0 &&
	    guard_ban_key(addr, from + 6, sizeof(from) - 6) == 0)
		memcpy(from, " from ", 6);
	log_info("banned %s %s%s for %lld s after %d authentication failures "
	    "within %lld s (server.ban_failures, server.ban_window, "
	    "server.ban_duration)", what, name, from, (long long)duration,
	    failures, (long long)lim->ban_window_s);
	f = json_pack("{s:s,s:s,s:I,s:i,s:I}",
	    "scope", what, strcmp(what, "address") == 0 ? "remote" : "user",
	    name, "duration_s", (json_int_t)duration, "failures", failures,
	    "window_s", (json_int_t)lim->ban_window_s);
	if (f != NULL && from[0] != '\0')
		json_object_set_new(f, "prefix", json_string(from + 6));
	if (f != NULL && strcmp(what, "address") == 0 &&
	    strcmp(name, addr) != 0) {
		json_object_set_new(f, "prefix", json_string(name));
		json_object_set_new(f, "last_address", json_string(addr));
	}
	listener_audit(l, "auth.ban", f);
	l->bans_dirty = 1;
	bans_save(l, 0);
}

/* A name from a session, made printable (sessions are untrusted). */
static void
msg_name(const struct guard_msg *m, char *out, size_t len)
{
	size_t i;

	memcpy(out, m->name, len < sizeof(m->name) ? len : sizeof(m->name));
	out[len - 1] = '\0';
	for (i = 0; out[i] != '\0'; i++)
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] >= 0x7f)
			out[i] = '?';
}

/* A wrong password, an unknown user: counted by the listener itself. */
static void
count_failure(struct listener *l, struct child *c, const char *user)
{
	const struct guard_limits *lim = guard_get_limits(l->guard);
	struct guard_ban ban;

	guard_failure(l->guard, c->addr, user, now_ms() / 1000, &ban);
	if (ban.addr_banned)
		announce_ban(l, "address", ban.addr_key, c->addr,
		    ban.addr_duration_s, ban.failures);
	if (ban.user_banned)
		announce_ban(l, "user", user, c->addr, ban.user_duration_s,
		    lim->ban_failures);
}

/*
 * MON_PASSWORD: one crypt(3) whatever the answer (a dummy hash for unknown
 * and banned users and partners without a password), so neither the time
 * nor the round trips tell a known user from an unknown one.
 */
static uint32_t
mon_password(struct listener *l, struct child *c, struct mon_password *m)
{
	const struct partner *p;
	char user[sizeof(m->user)];
	uint32_t reply;
	int banned, ok;

	m->password[sizeof(m->password) - 1] = '\0';
	m->user[sizeof(m->user) - 1] = '\0';
	xstrlcpy(user, m->user, sizeof(user));
	p = config_partner(l->cfg, user);
	banned = p != NULL && guard_user_banned(l->guard, p->name, c->addr,
	    now_ms() / 1000);
	ok = policy_password_ok(banned ? NULL : p, m->password);
	explicit_bzero(m->password, sizeof(m->password));
	if (p == NULL)
		reply = MON_PW_UNKNOWN;
	else if (banned)
		reply = MON_PW_BANNED;
	else if (p->password_hash == NULL)
		reply = MON_PW_NONE;
	else if (!ok)
		reply = MON_PW_WRONG;
	else
		return MON_PW_OK;
	/* the user is counted only for a wrong password of a partner that
	 * has one (a user ban blocks password logins only) */
	count_failure(l, c, reply == MON_PW_WRONG ? p->name : NULL);
	return reply;
}

static uint32_t
mon_recorded(struct listener *l, struct mon_recorded *m)
{
	int known;

	m->fid[sizeof(m->fid) - 1] = '\0';
	if (l->state == NULL)
		return MON_ERROR;
	if ((known = state_landing_known(l->state, m->dev, m->ino)) != 0)
		return known == 1 ? 1 : MON_ERROR;
	if (m->fid[0] == '\0')
		return 0;
	known = state_fid_known(l->state, m->fid);
	return known == -1 ? MON_ERROR : (uint32_t)known;
}

/* Keeps the facts a session reports at CLOSE and clears every other field
 * of r. */
static void
clean_received(struct file_rec *r)
{
	struct file_rec k;

	memset(&k, 0, sizeof(k));
	memcpy(k.fid, r->fid, sizeof(k.fid));
	memcpy(k.partner, r->partner, sizeof(k.partner));
	memcpy(k.path, r->path, sizeof(k.path));
	memcpy(k.remote, r->remote, sizeof(k.remote));
	memcpy(k.session, r->session, sizeof(k.session));
	memcpy(k.sha256, r->sha256, sizeof(k.sha256));
	k.size = r->size;
	k.received_ms = r->received_ms;
	k.landing_dev = r->landing_dev;
	k.landing_ino = r->landing_ino;
	*r = k;
}

/*
 * MON_RECEIVED: a session on a file system without receipts hands over a
 * received file. Its row and file.received record are written here (the
 * session cannot write the database), for its own partner only; the intake
 * checks the rest like any hand-off.
 */
static uint32_t
mon_received(struct listener *l, struct child *c, struct mon_received *m)
{
	struct file_rec *r = &m->rec;
	char *text = NULL;
	json_t *o;

	r->fid[sizeof(r->fid) - 1] = r->partner[sizeof(r->partner) - 1] =
	    r->path[sizeof(r->path) - 1] = r->sha256[sizeof(r->sha256) - 1] =
	    r->remote[sizeof(r->remote) - 1] =
	    r->session[sizeof(r->session) - 1] = '\0';
	/* only what a session knows of a file; the rest (object key,
	 * metadata, store fields, state) is never a session's to set */
	clean_received(r);
	if (l->state == NULL || c->partner[0] == '\0' ||
	    strcmp(r->partner, c->partner) != 0) {
		log_warnx("session process %ld (%s) handed over a file for "
		    "partner \"%.64s\" but logged in as \"%s\"; refused",
		    (long)c->pid, c->addr, r->partner, c->partner);
		return MON_ERROR;
	}
	r->id = 0;
	r->state = FS_NONE;
	if ((o = receipt_record(r)) == NULL ||
	    (text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto fail;
	if (state_begin(l->state) == -1)
		goto fail;
	if (state_insert(l->state, r) == -1 ||
	    state_outbox_add(l->state, "file.received", text) == -1) {
		state_rollback(l->state);
		goto fail;
	}
	if (state_commit(l->state) == -1)
		goto fail;
	json_decref(o);
	free(text);
	return 0;
fail:
	json_decref(o);
	free(text);
	return MON_ERROR;
}

/* One message from a session process. -1 when its socket is done. */
static int
child_message(struct listener *l, struct child *c)
{
	union {
		uint32_t		type;
		struct guard_msg	g;
		struct mon_password	pw;
		struct mon_recorded	rd;
		struct mon_received	rv;
	} m;
	char name[sizeof(m.g.name)];
	uint32_t reply;
	ssize_t n;
	int64_t now = now_ms() / 1000;

	n = recv(c->fd, &m, sizeof(m), MSG_DONTWAIT);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n < (ssize_t)sizeof(uint32_t))
		return -1;
	switch (m.type) {
	case GUARD_MSG_FAIL:
	case GUARD_MSG_CHECK_USER:
	case GUARD_MSG_LOGIN:
		if (n != (ssize_t)sizeof(m.g))
			goto bad;
		msg_name(&m.g, name, sizeof(name));
		break;
	case MON_PASSWORD:
		if (n != (ssize_t)sizeof(m.pw))
			goto bad;
		break;
	case MON_RECORDED:
		if (n != (ssize_t)sizeof(m.rd))
			goto bad;
		break;
	case MON_RECEIVED:
		if (n != (ssize_t)sizeof(m.rv))
			goto bad;
		break;
	case MON_PEER:
		if (n != (ssize_t)sizeof(uint32_t))
			goto bad;
		c->peer.type = MON_PEER;
		return send(c->fd, &c->peer, sizeof(c->peer), MSG_NOSIGNAL |
		    MSG_DONTWAIT) == (ssize_t)sizeof(c->peer) ? 0 : -1;
	default:
		goto bad;
	}
	switch (m.type) {
	case GUARD_MSG_FAIL:
		count_failure(l, c, name);
		return 0;
	case GUARD_MSG_CHECK_USER:
		reply = guard_user_banned(l->guard, name, c->addr, now) ?
		    GUARD_USER_BANNED : GUARD_OK;
		break;
	case GUARD_MSG_LOGIN:
		reply = guard_conn_login(l->guard, c->pid, name,
		    m.g.partner_max, now, m.g.by_key != 0);
		if (reply != GUARD_OK && reply != GUARD_USER_BANNED)
			refused(l, c->addr, name, (enum guard_verdict)reply,
			    c->peer.via);
		if (reply == GUARD_OK)
			xstrlcpy(c->partner, name, sizeof(c->partner));
		break;
	case MON_PASSWORD:
		reply = mon_password(l, c, &m.pw);
		break;
	case MON_RECORDED:
		reply = mon_recorded(l, &m.rd);
		break;
	default:
		reply = mon_received(l, c, &m.rv);
		break;
	}
	explicit_bzero(&m, sizeof(m));
	if (send(c->fd, &reply, sizeof(reply), MSG_NOSIGNAL | MSG_DONTWAIT) !=
	    (ssize_t)sizeof(reply))
		return -1;
	return 0;
bad:
	explicit_bzero(&m, sizeof(m));
	log_warnx("session process %ld (%s) sent a malformed message; no "
	    "longer listening to it", (long)c->pid, c->addr);
	return -1;
}

static void
child_close_fd(struct child *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
}

/*
 * A session process ended (the supervisor, its parent, says so). One killed
 * by a signal other than the ones we send (SIGTERM, SIGALRM's login grace,
 * SIGKILL, SIGUSR1's drain before login) crashed or broke its sandbox (SIGSYS): logged, audited and
 * counted as a failure of its address, so a client that crashes sessions
 * on purpose gets banned like one that guesses passwords.
 */
static void
child_exited(struct listener *l, pid_t pid, int status)
{
	struct child *c = NULL;
	int i, sig;

	for (i = 0; i < l->nchildren; i++)
		if (l->children[i].pid == pid) {
			c = &l->children[i];
			break;
		}
	guard_conn_remove(l->guard, pid);
	if (c == NULL)
		return;		/* a session of an earlier listener */
	if (WIFSIGNALED(status) && (sig = WTERMSIG(status)) != SIGALRM &&
	    sig != SIGTERM && sig != SIGKILL && sig != SIGUSR1) {
		log_warnx("session process %ld from %s died of signal %d (%s)%s",
		    (long)pid, c->addr, sig, strsignal(sig), sig == SIGSYS ?
		    ": a system call outside its sandbox; counted as an "
		    "authentication failure of the address" : "; counted as "
		    "an authentication failure of the address");
		listener_audit(l, "session.crash", json_pack("{s:s,s:i,s:s,s:I}",
		    "remote", c->addr, "signal", sig, "reason", sig == SIGSYS ?
		    "sandbox violation" : "crash", "pid", (json_int_t)pid));
		count_failure(l, c, NULL);
	}
	child_close_fd(c);
	c->pid = 0;
	c->partner[0] = '\0';
	l->alive--;
}

/*
 * SPAWN_RELOAD: the listener's part of the configuration the supervisor
 * validated, in a sealed memfd (sessioncfg_export_listener): passwords,
 * partners and limits for the logins from now on. A text this binary
 * cannot read keeps the running configuration.
 */
static void
listener_reload(struct listener *l, int fd)
{
	struct config *cfg = NULL;
	struct stat st;
	char *text = NULL;

	if (fstat(fd, &st) == 0 && st.st_size > 0 &&
	    st.st_size <= 64 * 1024 * 1024 &&
	    (text = malloc((size_t)st.st_size)) != NULL &&
	    pread(fd, text, (size_t)st.st_size, 0) == st.st_size)
		cfg = sessioncfg_import_listener(text, (size_t)st.st_size);
	if (text != NULL) {
		explicit_bzero(text, (size_t)st.st_size);
		free(text);
	}
	if (cfg == NULL) {
		log_warnx("reload: the new configuration from the supervisor "
		    "could not be read; the running one stays");
		return;
	}
	guard_set_config(l->guard, cfg);
	l->cfg = cfg;
	config_free(l->reloaded);
	l->reloaded = cfg;
	log_info("reloaded: %zu partner(s) for new logins", cfg->npartners);
}

/* SPAWN_DRAIN: the gateway stops; no new connection (the supervisor closes
 * its copy of the socket too, so the kernel refuses them); the sessions
 * running finish, still answered here. */
static void
listener_drain(struct listener *l)
{
	if (l->draining)
		return;
	l->draining = 1;
	if (l->listenfd != -1)
		close(l->listenfd);
	l->listenfd = -1;
	log_info("draining: accepting no new connections; %d session(s) "
	    "running", l->alive);
}

/* Reads what the supervisor says (SPAWN_EXITED, SPAWN_RELOAD,
 * SPAWN_DRAIN); -1 when it is gone. */
static int
supervisor_message(struct listener *l, struct spawn_msg *done)
{
	struct spawn_msg m;
	int r, a, b;

	for (;;) {
		if ((r = fd_recv(l->supfd, &m, sizeof(m), &a, &b)) == 0)
			return 0;
		if (r == -1)
			return -1;
		if (b != -1 && b != a)
			close(b);
		if (m.type == SPAWN_RELOAD && a != -1)
			listener_reload(l, a);
		if (a != -1)
			close(a);
		if (m.type == SPAWN_DRAIN)
			listener_drain(l);
		else if (m.type == SPAWN_EXITED)
			child_exited(l, m.pid, m.status);
		else if (m.type == SPAWN_DONE && done != NULL) {
			*done = m;
			return 1;
		}
	}
}

/* Asks the supervisor to start a session on fd with sfd as its end of the
 * socketpair. The session's pid, or -1. */
static pid_t
spawn(struct listener *l, int fd, int sfd)
{
	struct spawn_msg m, done;
	struct pollfd pfd;
	int64_t deadline = mono_ms() + 10000;
	int r;

	memset(&m, 0, sizeof(m));
	m.type = SPAWN_SESSION;
	if (fd_send(l->supfd, &m, sizeof(m), fd, sfd) == -1) {
		log_warn("cannot ask the supervisor for a session process");
		return -1;
	}
	while (mono_ms() < deadline && !proc_quit) {
		pfd.fd = l->supfd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 1000) == -1 && errno != EINTR)
			return -1;
		if ((r = supervisor_message(l, &done)) == 1)
			return done.pid > 0 ? done.pid : -1;
		if (r == -1)
			break;
	}
	if (!proc_quit)
		log_warnx("the supervisor did not start a session process");
	return -1;
}

/*
 * Checks a connection before any SSH byte is exchanged, then has the
 * supervisor start its session process. ss: the client (the PROXY
 * header's source when via is set: the load balancer's address). Takes fd.
 */
static void
admit(struct listener *l, int fd, const struct sockaddr_storage *ss,
    socklen_t sslen, const char *via)
{
	char addr[INET6_ADDRSTRLEN];
	enum guard_verdict v;
	struct child *c = NULL;
	int sp[2] = { -1, -1 }, i;
	pid_t pid;

	if (guard_addr((const struct sockaddr *)ss, addr, sizeof(addr)) == -1)
		xstrlcpy(addr, "unknown", sizeof(addr));
	/* sessions that ended meanwhile no longer count against the limits */
	(void)supervisor_message(l, NULL);
	v = guard_admit(l->guard, (const struct sockaddr *)ss, addr,
	    now_ms() / 1000);
	if (v != GUARD_OK) {
		refused(l, addr, NULL, v, via);
		close(fd);
		return;
	}
	for (i = 0; i < l->nchildren; i++)
		if (l->children[i].pid == 0) {
			c = &l->children[i];
			break;
		}
	if (c == NULL) {	/* guard_admit keeps this from happening */
		refused(l, addr, NULL, GUARD_MAX_CONNECTIONS, via);
		close(fd);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("socketpair");
		close(fd);
		return;
	}
	pid = spawn(l, fd, sp[1]);
	close(fd);
	close(sp[1]);
	if (pid == -1) {
		close(sp[0]);
		return;
	}
	c->pid = pid;
	c->fd = sp[0];
	c->partner[0] = '\0';
	xstrlcpy(c->addr, addr, sizeof(c->addr));
	memset(&c->peer, 0, sizeof(c->peer));
	if (via != NULL) {
		c->peer.proxied = 1;
		memcpy(&c->peer.addr, ss, sslen);
		c->peer.addrlen = sslen;
		xstrlcpy(c->peer.via, via, sizeof(c->peer.via));
	}
	l->alive++;
	if (guard_conn_add(l->guard, pid, addr) == -1)
		log_warnx("connection table full (session %ld)", (long)pid);
}

/* A connection refused by server.proxy_protocol (why: "proxy: ..."). */
static void
proxy_refused(struct listener *l, int fd, const char *addr, const char *via,
    const char *why)
{
	json_t *f;

	close(fd);
	if (!refuse_budget(l))
		return;
	log_info("refused connection from %s%s%s: %s", addr, via ? " via " :
	    "", via ? via : "", why);
	f = json_pack("{s:s,s:s,s:s}", "remote", addr, "reason", why,
	    "setting", "server.proxy_protocol");
	if (f != NULL && via != NULL)
		json_object_set_new(f, "via", json_string(via));
	if (f != NULL && l->refuse_suppressed > 0)
		json_object_set_new(f, "suppressed",
		    json_integer(l->refuse_suppressed));
	l->refuse_suppressed = 0;
	listener_audit(l, "conn.refused", f);
}

/* A connection from a load balancer that sent its whole PROXY header (or
 * failed to): admitted as the client it names, or refused. */
static void
proxy_done(struct listener *l, struct proxy_ready *r)
{
	char lb[INET6_ADDRSTRLEN], why[160];

	if (guard_addr((struct sockaddr *)&r->lb, lb, sizeof(lb)) == -1)
		xstrlcpy(lb, "unknown", sizeof(lb));
	switch (r->status) {
	case PROXY_ADDR:
		admit(l, r->fd, &r->info.src, r->info.srclen, lb);
		return;
	case PROXY_LOCAL:	/* the load balancer's health check */
		log_debug("health check from %s: %s", lb, r->why != NULL ?
		    r->why : "PROXY LOCAL");
		close(r->fd);
		return;
	case PROXY_UNSPEC:
		proxy_refused(l, r->fd, lb, NULL, "proxy: the PROXY header "
		    "names no TCP client address");
		return;
	default:
		(void)xsnprintf(why, sizeof(why), "proxy: bad PROXY v2 header: "
		    "%s", r->why != NULL ? r->why : "unknown");
		proxy_refused(l, r->fd, lb, NULL, why);
		return;
	}
}

/* With proxy_protocol: only a configured load balancer may connect, and
 * its connection waits for its PROXY header. Takes fd. */
static void
proxy_accept(struct listener *l, int fd, const struct sockaddr_storage *ss,
    socklen_t len)
{
	const struct server_config *sv = &l->cfg->server;
	char addr[INET6_ADDRSTRLEN];
	size_t i;

	if (guard_addr((const struct sockaddr *)ss, addr, sizeof(addr)) == -1)
		xstrlcpy(addr, "unknown", sizeof(addr));
	for (i = 0; i < sv->nproxy_from; i++)
		if (cidr_match(&sv->proxy_from[i], (const struct sockaddr *)ss))
			break;
	if (i == sv->nproxy_from)
		proxy_refused(l, fd, addr, NULL,
		    "proxy: not a configured load balancer");
	else if (proxy_wait_add(l->proxy, fd, (const struct sockaddr *)ss,
	    len, mono_ms()) == -1)
		proxy_refused(l, fd, addr, NULL, "proxy: too many "
		    "connections waiting for their PROXY header");
}

/* Accepts one connection. */
static void
listener_accept(struct listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd;

	fd = accept4(l->listenfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
	if (fd == -1) {
		if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("accept");
		if (errno == EMFILE || errno == ENFILE)
			usleep(100000);
		return;
	}
	/* SFTP pipelines small requests (WINDOW_ADJUST, status replies): do
	 * not let Nagle hold them back waiting for the peer's delayed ACK. */
	if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
		int one = 1;

		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if (l->proxy != NULL)
		proxy_accept(l, fd, &ss, len);
	else
		admit(l, fd, &ss, len, NULL);
}

int
server_run(const struct config *cfg, int listenfd, int supfd)
{
	struct listener l;
	struct proxy_ready pr;
	int i, n, np, rc = 1;

	memset(&l, 0, sizeof(l));
	l.cfg = cfg;
	l.listenfd = listenfd;
	l.supfd = supfd;
	if ((l.guard = guard_new(cfg)) == NULL) {
		log_warnx("out of memory");
		goto done;
	}
	if (spool_dir_path(cfg->state_dir, SPOOL_BANS, NULL, l.bans_path,
	    sizeof(l.bans_path)) == -1) {
		log_warnx("state_dir path too long for %s",
		    spool_dir_name(SPOOL_BANS));
		goto done;
	}
	/* a corrupt table is logged and ignored: it must not keep the
	 * gateway down */
	(void)guard_load(l.guard, l.bans_path, now_ms() / 1000);
	l.nchildren = guard_get_limits(l.guard)->max_sessions +
	    guard_get_limits(l.guard)->max_startups;
	if ((l.children = calloc((size_t)l.nchildren, sizeof(*l.children))) ==
	    NULL || (l.pfds = calloc((size_t)l.nchildren + 2 +
	    PROXY_MAX_PENDING, sizeof(*l.pfds))) == NULL ||
	    (cfg->server.nproxy_from > 0 && (l.proxy = proxy_wait_new()) ==
	    NULL)) {
		log_warnx("out of memory");
		goto done;
	}
	for (i = 0; i < l.nchildren; i++)
		l.children[i].fd = -1;
	if ((l.audit = proc_audit_open(cfg)) == NULL ||
	    (l.state = state_open(cfg->state_dir)) == NULL)
		goto done;
	if (fd_nonblock(listenfd) == -1 || fd_nonblock(supfd) == -1) {
		log_warn("cannot make the listener's sockets non-blocking");
		goto done;
	}
	log_info("listening on %s:%d", cfg->listen_host, cfg->listen_port);

	while (!proc_quit) {
		l.pfds[0].fd = l.listenfd;	/* -1 once draining */
		l.pfds[0].events = POLLIN;
		l.pfds[0].revents = 0;
		l.pfds[1].fd = supfd;
		l.pfds[1].events = POLLIN;
		l.pfds[1].revents = 0;
		for (i = 0; i < l.nchildren; i++) {
			l.pfds[i + 2].fd = l.children[i].fd;	/* -1: ignored */
			l.pfds[i + 2].events = POLLIN;
			l.pfds[i + 2].revents = 0;
		}
		np = l.proxy != NULL ?
		    proxy_wait_pollfds(l.proxy, &l.pfds[l.nchildren + 2]) : 0;
		n = poll(l.pfds, (nfds_t)(l.nchildren + 2 + np), 1000);
		while (l.proxy != NULL && proxy_wait_next(l.proxy,
		    &l.pfds[l.nchildren + 2], n > 0 ? np : 0, mono_ms(), &pr))
			proxy_done(&l, &pr);
		if (n <= 0) {
			bans_save(&l, 0);
			continue;
		}
		if (l.pfds[1].revents != 0 && supervisor_message(&l, NULL) ==
		    -1) {
			log_warnx("the supervisor is gone; stopping");
			break;
		}
		/* Sessions first: a login waiting for its answer beats a
		 * new connection. */
		for (i = 0; i < l.nchildren; i++) {
			if (l.children[i].fd == -1 || l.pfds[i + 2].revents == 0)
				continue;
			if (child_message(&l, &l.children[i]) == -1)
				child_close_fd(&l.children[i]);
		}
		if (l.listenfd != -1 && (l.pfds[0].revents & POLLIN))
			listener_accept(&l);
		bans_save(&l, 0);
	}
	rc = 0;
	log_info("shutting down (%d session(s) still running end with the "
	    "supervisor)", l.alive);
done:
	for (i = 0; i < l.nchildren; i++)
		child_close_fd(&l.children[i]);
	/* the failures still counting, too, so a restart forgets nothing */
	if (l.guard != NULL && l.bans_path[0] != '\0') {
		l.bans_dirty = 1;
		bans_save(&l, 1);
	}
	free(l.children);
	free(l.pfds);
	proxy_wait_free(l.proxy);
	guard_free(l.guard);
	config_free(l.reloaded);
	audit_close(l.audit);
	state_close(l.state);
	return rc;
}
