/*
 * listener.c - the listener role: binds the SSH port with the configured
 * host keys and algorithm policy, and forks one session process per
 * connection (a crash or hang in one partner's session touches no other).
 *
 * It is the one process that sees every connection from accept to exit, so
 * it enforces the connection limits and bans (server/guard.h): a connection
 * is checked right after accept(2), before a byte of SSH is exchanged, and
 * each session asks it over a socketpair before it counts as logged in.
 * Signal handlers only set flags.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include <libssh/libssh.h>
#include <libssh/server.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/util.h"
#include "policy/algos.h"
#include "server/guard.h"
#include "server/server.h"
#include "spool/state.h"

static volatile sig_atomic_t listener_quit;
static volatile sig_atomic_t listener_child;

static void
listener_signal(int sig)
{
	if (sig == SIGCHLD)
		listener_child = 1;
	else
		listener_quit = 1;
}

static int
hostkey_fingerprint(const char *path)
{
	ssh_key key = NULL;
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp = NULL;

	if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) != SSH_OK) {
		log_warnx("host key %s cannot be read (is it an OpenSSH private "
		    "key without a passphrase?)", path);
		return -1;
	}
	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash,
	    &hlen) == SSH_OK &&
	    (fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash,
	    hlen)) != NULL)
		log_info("host key %s: %s %s", path, ssh_key_type_to_char(
		    ssh_key_type(key)), fp);
	ssh_string_free_char(fp);
	ssh_clean_pubkey_hash(&hash);
	ssh_key_free(key);
	return 0;
}

int
hostkeys_ensure(const struct config *cfg)
{
	struct stat st;
	ssh_key key;
	char dir[4096], *slash;
	size_t i;
	mode_t old;
	int rc;

	for (i = 0; i < cfg->nhost_keys; i++) {
		const char *path = cfg->host_keys[i];

		if (lstat(path, &st) == 0) {
			if (!S_ISREG(st.st_mode)) {
				log_warnx("host key %s is not a regular file", path);
				return -1;
			}
			if (st.st_mode & 077) {
				log_warnx("host key %s is readable by group or "
				    "others (mode %04o); fix with: chmod 600 %s",
				    path, (unsigned)(st.st_mode & 07777), path);
				return -1;
			}
			if (hostkey_fingerprint(path) == -1)
				return -1;
			continue;
		}
		if (errno != ENOENT) {
			log_warn("host key %s", path);
			return -1;
		}
		xstrlcpy(dir, path, sizeof(dir));
		if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
			*slash = '\0';
			if (mkdir_p(dir, 0750) == -1) {
				log_warn("cannot create %s", dir);
				return -1;
			}
		}
		if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK) {
			log_warnx("cannot generate an ed25519 host key");
			return -1;
		}
		old = umask(077);
		rc = ssh_pki_export_privkey_file(key, NULL, NULL, NULL, path);
		umask(old);
		ssh_key_free(key);
		if (rc != SSH_OK || chmod(path, 0600) == -1) {
			log_warn("cannot write host key %s", path);
			return -1;
		}
		log_info("generated a new ed25519 host key at %s", path);
		if (hostkey_fingerprint(path) == -1)
			return -1;
	}
	return 0;
}

static int
bind_set(ssh_bind b, enum ssh_bind_options_e opt, const void *val,
    const char *what)
{
	if (ssh_bind_options_set(b, opt, val) != SSH_OK) {
		log_warnx("cannot set %s: %s", what, ssh_get_error(b));
		return -1;
	}
	return 0;
}

static int resolve_user(const struct config *, struct session_user *);

/* --- the files an unprivileged session needs ------------------------------ */

/* chown/chmod one path if it exists (mode -1: keep). 0 or -1 (logged). */
static int
own(const char *path, uid_t uid, gid_t gid, int mode, int must_exist)
{
	struct stat st;

	if (lstat(path, &st) == -1) {
		if (errno == ENOENT && !must_exist)
			return 0;
		log_warn("%s", path);
		return -1;
	}
	if (S_ISLNK(st.st_mode)) {
		log_warnx("%s is a symbolic link; refusing to change its owner",
		    path);
		return -1;
	}
	if (lchown(path, uid, gid) == -1 ||
	    (mode != -1 && chmod(path, (mode_t)mode) == -1)) {
		log_warn("cannot give %s to the session user", path);
		return -1;
	}
	return 0;
}

int
server_prepare_user(const struct config *cfg)
{
	static const char *dbfiles[] = { "sluice.db", "sluice.db-wal",
	    "sluice.db-shm" };
	struct session_user u;
	struct audit *a;
	struct dirent *de;
	char p[PATH_MAX];
	DIR *d;
	size_t i;
	int rc = -1;

	if (resolve_user(cfg, &u) == -1)
		return -1;
	if (!u.set)
		return 0;
	/* state_dir: root's, the group may add files (SQLite's -wal/-shm)
	 * but, sticky, not rename or remove root's (spool/, sluice.db...). */
	if (own(cfg->state_dir, 0, u.gid, 01770, 1) == -1)
		return -1;
	for (i = 0; i < sizeof(dbfiles) / sizeof(dbfiles[0]); i++)
		if (spool_path(cfg->state_dir, dbfiles[i], NULL, p,
		    sizeof(p)) == -1 || own(p, 0, u.gid, 0660, i == 0) == -1)
			return -1;
	if (spool_path(cfg->state_dir, "spool", NULL, p, sizeof(p)) == -1 ||
	    own(p, 0, u.gid, 0750, 1) == -1 ||
	    spool_path(cfg->state_dir, "spool/incoming", NULL, p,
	    sizeof(p)) == -1 || own(p, 0, u.gid, 01770, 1) == -1)
		return -1;
	/* landing/ and each partner root belong to the sessions. */
	if (spool_path(cfg->state_dir, "landing", NULL, p, sizeof(p)) == -1 ||
	    own(p, u.uid, u.gid, 0750, 1) == -1)
		return -1;
	if ((d = opendir(p)) == NULL) {
		log_warn("%s", p);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char sub[PATH_MAX];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (xsnprintf(sub, sizeof(sub), "%s/%s", p, de->d_name) == -1 ||
		    own(sub, u.uid, u.gid, -1, 0) == -1)
			goto done;
	}
	/* The audit trail: created now if new, appendable by the group. */
	if ((a = audit_open(cfg->audit_path)) == NULL)
		goto done;
	audit_close(a);
	if (own(cfg->audit_path, 0, u.gid, 0660, 1) == -1)
		goto done;
	log_info("sessions will run as %s (uid %ld): state_dir, sluice.db, "
	    "spool/incoming, landing/ and the audit file are writable by it",
	    u.name, (long)u.uid);
	rc = 0;
done:
	closedir(d);
	return rc;
}

/* --- algorithm policy ------------------------------------------------------ */

/*
 * The configured list l (0..4 in enum algo_list's order: kex, ciphers,
 * macs, host keys, user keys), or its secure default. Which names are weak
 * (and the warnings about them, once each, with FILE:LINE) is the loader's
 * and policy/algos.c's business, not the listener's.
 */
static const char *
algo_value(const struct server_config *sc, enum algo_list l)
{
	const char *v[ALGO_NLISTS] = { sc->kex, sc->ciphers, sc->macs,
	    sc->host_key_algorithms, sc->pubkey_algorithms };

	return v[l] != NULL && v[l][0] != '\0' ? v[l] : algo_default(l);
}

static ssh_bind
listener_bind(const struct config *cfg)
{
	const struct server_config *sc = &cfg->server;
	ssh_bind b;
	size_t i;
	int no = 0, rsa_min = 2048;
	char port[8];

	if ((b = ssh_bind_new()) == NULL)
		return NULL;
	xsnprintf(port, sizeof(port), "%d", cfg->listen_port);
	/* Never let /etc/ssh/libssh_server_config override the policy. */
	if (bind_set(b, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no, "process_config") ||
	    bind_set(b, SSH_BIND_OPTIONS_BINDADDR, cfg->listen_host, "listen") ||
	    bind_set(b, SSH_BIND_OPTIONS_BINDPORT_STR, port, "listen port") ||
	    bind_set(b, SSH_BIND_OPTIONS_KEY_EXCHANGE, algo_value(sc, 0),
	    "server.kex") ||
	    bind_set(b, SSH_BIND_OPTIONS_CIPHERS_C_S, algo_value(sc, 1),
	    "server.ciphers") ||
	    bind_set(b, SSH_BIND_OPTIONS_CIPHERS_S_C, algo_value(sc, 1),
	    "server.ciphers") ||
	    bind_set(b, SSH_BIND_OPTIONS_HMAC_C_S, algo_value(sc, 2),
	    "server.macs") ||
	    bind_set(b, SSH_BIND_OPTIONS_HMAC_S_C, algo_value(sc, 2),
	    "server.macs") ||
	    bind_set(b, SSH_BIND_OPTIONS_PUBKEY_ACCEPTED_KEY_TYPES,
	    algo_value(sc, 4), "server.pubkey_algorithms") ||
	    bind_set(b, SSH_BIND_OPTIONS_RSA_MIN_SIZE, &rsa_min,
	    "the minimum RSA key size"))
		goto fail;
	for (i = 0; i < cfg->nhost_keys; i++)
		if (bind_set(b, SSH_BIND_OPTIONS_HOSTKEY, cfg->host_keys[i],
		    cfg->host_keys[i]))
			goto fail;
	if (bind_set(b, SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS,
	    algo_value(sc, 3), "server.host_key_algorithms"))
		goto fail;
	if (ssh_bind_listen(b) != SSH_OK) {
		log_warnx("cannot listen on %s:%d: %s", cfg->listen_host,
		    cfg->listen_port, ssh_get_error(b));
		goto fail;
	}
	return b;
fail:
	ssh_bind_free(b);
	return NULL;
}

/* --- the session processes ------------------------------------------------ */

struct child {
	pid_t	 pid;		/* 0: free */
	int	 fd;		/* our end of the session's socketpair */
	char	 addr[INET6_ADDRSTRLEN];
};

struct listener {
	const struct config	*cfg;
	struct guard		*guard;
	struct audit		*audit;
	struct child		*children;
	int			 nchildren;	/* slots */
	int			 alive;
	struct pollfd		*pfds;
	struct session_user	 user;
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

static void
refused(struct listener *l, const char *addr, const char *user,
    enum guard_verdict v)
{
	const struct guard_limits *lim = guard_get_limits(l->guard);
	const char *key = guard_verdict_key(v);
	json_t *f;
	int64_t now = mono_ms();
	int limit = 0;

	if (now - l->refuse_period > REFUSE_PERIOD_MS) {
		l->refuse_period = now;
		l->refuse_n = 0;
	}
	if (++l->refuse_n > REFUSE_BURST) {
		l->refuse_suppressed++;
		return;
	}
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
		log_info("refused %s%s%s from %s: %s", user ? "login of \"" :
		    "connection", user ? user : "", user ? "\"" : "", addr,
		    guard_verdict_str(v));
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

/* One message from a session process. -1 when its socket is done. */
static int
child_message(struct listener *l, struct child *c)
{
	struct guard_msg m;
	struct guard_ban ban;
	char name[sizeof(m.name)];
	const struct guard_limits *lim = guard_get_limits(l->guard);
	uint32_t reply;
	ssize_t n;
	int64_t now = now_ms() / 1000;

	n = recv(c->fd, &m, sizeof(m), MSG_DONTWAIT);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n != (ssize_t)sizeof(m))
		return -1;
	msg_name(&m, name, sizeof(name));
	switch (m.type) {
	case GUARD_MSG_FAIL:
		guard_failure(l->guard, c->addr, name, now, &ban);
		if (ban.addr_banned)
			announce_ban(l, "address", ban.addr_key, c->addr,
			    ban.addr_duration_s, ban.failures);
		if (ban.user_banned)	/* from ban.addr_key only */
			announce_ban(l, "user", name, c->addr,
			    ban.user_duration_s, lim->ban_failures);
		return 0;
	case GUARD_MSG_CHECK_USER:
		reply = guard_user_banned(l->guard, name, c->addr, now) ?
		    GUARD_USER_BANNED : GUARD_OK;
		break;
	case GUARD_MSG_LOGIN:
		reply = guard_conn_login(l->guard, c->pid, name,
		    m.partner_max, now, m.by_key != 0);
		if (reply != GUARD_OK && reply != GUARD_USER_BANNED)
			refused(l, c->addr, name, (enum guard_verdict)reply);
		break;
	default:
		log_warnx("session process %ld sent an unknown message; "
		    "ending it", (long)c->pid);
		kill(c->pid, SIGTERM);
		return -1;
	}
	if (send(c->fd, &reply, sizeof(reply), MSG_NOSIGNAL | MSG_DONTWAIT) !=
	    (ssize_t)sizeof(reply))
		return -1;
	return 0;
}

static void
child_close_fd(struct child *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
}

static void
reap(struct listener *l)
{
	pid_t pid;
	int status, i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < l->nchildren; i++)
			if (l->children[i].pid == pid) {
				child_close_fd(&l->children[i]);
				l->children[i].pid = 0;
				l->alive--;
			}
		guard_conn_remove(l->guard, pid);
		if (WIFSIGNALED(status) && WTERMSIG(status) != SIGALRM &&
		    WTERMSIG(status) != SIGTERM)
			log_warnx("session process %ld died of signal %d",
			    (long)pid, WTERMSIG(status));
	}
}

/* Accepts one connection: checks it before any SSH byte is exchanged, then
 * forks its session process. */
static void
listener_accept(struct listener *l, ssh_bind b)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];
	enum guard_verdict v;
	ssh_session ssh;
	struct child *c = NULL;
	int fd, sp[2] = { -1, -1 }, i;
	pid_t pid;

	fd = accept4(ssh_bind_get_fd(b), (struct sockaddr *)&ss, &len,
	    SOCK_CLOEXEC);
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
	if (guard_addr((struct sockaddr *)&ss, addr, sizeof(addr)) == -1)
		xstrlcpy(addr, "unknown", sizeof(addr));
	v = guard_admit(l->guard, (struct sockaddr *)&ss, addr,
	    now_ms() / 1000);
	if (v != GUARD_OK) {
		refused(l, addr, NULL, v);
		close(fd);
		return;
	}
	for (i = 0; i < l->nchildren; i++)
		if (l->children[i].pid == 0) {
			c = &l->children[i];
			break;
		}
	if (c == NULL) {	/* guard_admit keeps this from happening */
		refused(l, addr, NULL, GUARD_MAX_CONNECTIONS);
		close(fd);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("socketpair");
		close(fd);
		return;
	}
	if ((ssh = ssh_new()) == NULL) {
		log_warnx("out of memory for a new connection from %s", addr);
		goto fail;
	}
	if (ssh_bind_accept_fd(b, ssh, fd) != SSH_OK) {
		log_warnx("accept from %s: %s", addr, ssh_get_error(b));
		ssh_free(ssh);
		goto fail;
	}
	switch ((pid = fork())) {
	case -1:
		log_warn("fork");
		ssh_free(ssh);	/* closes fd */
		fd = -1;
		goto fail;
	case 0:
		ssh_bind_free(b);
		close(sp[0]);
		/* Nothing of the listener or of other sessions stays here. */
		for (i = 0; i < l->nchildren; i++)
			if (l->children[i].pid != 0)
				child_close_fd(&l->children[i]);
		audit_close(l->audit);
		session_run(l->cfg, ssh, sp[1], l->user.set ? &l->user : NULL);
		/* NOTREACHED */
	default:
		ssh_free(ssh);	/* closes the parent's copy of the socket */
		close(sp[1]);
		c->pid = pid;
		c->fd = sp[0];
		xstrlcpy(c->addr, addr, sizeof(c->addr));
		l->alive++;
		if (guard_conn_add(l->guard, pid, addr) == -1)
			log_warnx("connection table full (session %ld)",
			    (long)pid);
		return;
	}
fail:
	if (fd != -1)
		close(fd);
	close(sp[0]);
	close(sp[1]);
}

/* Resolves server.user once, in the listener (the session drops to it). */
static int
resolve_user(const struct config *cfg, struct session_user *u)
{
	struct passwd *pw;
	int n = SESSION_MAX_GROUPS;

	memset(u, 0, sizeof(*u));
	if (cfg->server.user == NULL || cfg->server.user[0] == '\0')
		return 0;
	if (geteuid() != 0) {
		if ((pw = getpwnam(cfg->server.user)) != NULL &&
		    pw->pw_uid == geteuid())
			return 0;	/* already running as that user */
		log_warnx("server.user is \"%s\" but sluice runs as uid %ld, "
		    "not root, so it cannot switch users; start it as root "
		    "or as %s", cfg->server.user, (long)geteuid(),
		    cfg->server.user);
		return -1;
	}
	errno = 0;
	if ((pw = getpwnam(cfg->server.user)) == NULL) {
		log_warnx("server.user \"%s\" does not exist; create it (e.g. "
		    "useradd -r -s /usr/sbin/nologin %s)", cfg->server.user,
		    cfg->server.user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		log_warnx("server.user \"%s\" is root; name an unprivileged "
		    "user", cfg->server.user);
		return -1;
	}
	xstrlcpy(u->name, pw->pw_name, sizeof(u->name));
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	if (getgrouplist(pw->pw_name, pw->pw_gid, u->groups, &n) == -1) {
		log_warnx("server.user \"%s\" is in more than %d groups",
		    cfg->server.user, SESSION_MAX_GROUPS);
		return -1;
	}
	u->ngroups = n;
	u->set = 1;
	return 0;
}

int
server_run(const struct config *cfg)
{
	struct listener l;
	struct sigaction sa;
	ssh_bind b = NULL;
	int64_t deadline;
	int i, n, rc = 1, fl;

	log_setrole("server");
	memset(&l, 0, sizeof(l));
	l.cfg = cfg;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = listener_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (ssh_init() != SSH_OK)
		fatalx("libssh initialisation failed");
	if (resolve_user(cfg, &l.user) == -1)
		goto done;
	if ((l.guard = guard_new(cfg)) == NULL) {
		log_warnx("out of memory");
		goto done;
	}
	if (spool_path(cfg->state_dir, GUARD_BANS_FILE, NULL, l.bans_path,
	    sizeof(l.bans_path)) == -1) {
		log_warnx("state_dir path too long for %s", GUARD_BANS_FILE);
		goto done;
	}
	/* a corrupt table is logged and ignored: it must not keep the
	 * gateway down */
	(void)guard_load(l.guard, l.bans_path, now_ms() / 1000);
	l.nchildren = guard_get_limits(l.guard)->max_sessions +
	    guard_get_limits(l.guard)->max_startups;
	if ((l.children = calloc((size_t)l.nchildren, sizeof(*l.children))) ==
	    NULL || (l.pfds = calloc((size_t)l.nchildren + 1,
	    sizeof(*l.pfds))) == NULL) {
		log_warnx("out of memory");
		goto done;
	}
	for (i = 0; i < l.nchildren; i++)
		l.children[i].fd = -1;
	if ((l.audit = audit_open(cfg->audit_path)) == NULL)
		goto done;
	if (hostkeys_ensure(cfg) == -1)
		goto done;
	if ((b = listener_bind(cfg)) == NULL)
		goto done;
	fl = fcntl(ssh_bind_get_fd(b), F_GETFL);
	if (fl == -1 || fcntl(ssh_bind_get_fd(b), F_SETFL, fl | O_NONBLOCK) ==
	    -1) {
		log_warn("cannot make the listening socket non-blocking");
		goto done;
	}
	log_info("listening on %s:%d%s%s", cfg->listen_host, cfg->listen_port,
	    l.user.set ? "; sessions run as " : "", l.user.set ?
	    l.user.name : "");

	while (!listener_quit) {
		if (listener_child) {
			listener_child = 0;
			reap(&l);
		}
		l.pfds[0].fd = ssh_bind_get_fd(b);
		l.pfds[0].events = POLLIN;
		l.pfds[0].revents = 0;
		for (i = 0; i < l.nchildren; i++) {
			l.pfds[i + 1].fd = l.children[i].fd;	/* -1: ignored */
			l.pfds[i + 1].events = POLLIN;
			l.pfds[i + 1].revents = 0;
		}
		n = poll(l.pfds, (nfds_t)l.nchildren + 1, 1000);
		if (n <= 0) {
			bans_save(&l, 0);
			continue;
		}
		/* Sessions first: a login waiting for its answer beats a
		 * new connection. */
		for (i = 0; i < l.nchildren; i++) {
			if (l.children[i].fd == -1 || l.pfds[i + 1].revents == 0)
				continue;
			if (child_message(&l, &l.children[i]) == -1)
				child_close_fd(&l.children[i]);
		}
		if (l.pfds[0].revents & POLLIN)
			listener_accept(&l, b);
		bans_save(&l, 0);
	}
	rc = 0;
	log_info("shutting down: %d session(s) to end", l.alive);
done:
	if (b != NULL)
		ssh_bind_free(b);
	signal(SIGTERM, SIG_IGN);
	for (i = 0; i < l.nchildren; i++)
		if (l.children[i].pid > 0)
			kill(l.children[i].pid, SIGTERM);
	deadline = mono_ms() + 5000;
	while (l.alive > 0 && mono_ms() < deadline) {
		reap(&l);
		if (l.alive > 0)
			usleep(50000);
	}
	if (l.alive > 0) {
		log_warnx("%d session(s) did not end in time; killing them",
		    l.alive);
		for (i = 0; i < l.nchildren; i++)
			if (l.children[i].pid > 0)
				kill(l.children[i].pid, SIGKILL);
		while (l.alive > 0 && waitpid(-1, NULL, 0) > 0)
			l.alive--;
	}
	for (i = 0; i < l.nchildren; i++)
		child_close_fd(&l.children[i]);
	/* the failures still counting, too, so a restart forgets nothing */
	if (l.guard != NULL && l.bans_path[0] != '\0') {
		l.bans_dirty = 1;
		bans_save(&l, 1);
	}
	free(l.children);
	free(l.pfds);
	guard_free(l.guard);
	audit_close(l.audit);
	ssh_finalize();
	return rc;
}
