/*
 * session.c - one partner connection, in its own process: SSH key exchange
 * and authentication with libssh, then sluice's SFTP engine over the channel.
 *
 * Everything a client sends is hostile. The process (sluice-session) is
 * exec'd by the supervisor for each connection and already runs as the
 * session user with no_new_privs, a cleared environment and only the
 * configuration a session needs (policy/sessioncfg.h: no password hashes,
 * no store, no keys but the host keys). Before authentication it holds the
 * host keys (inside libssh) and its sockets; after it, one partner's
 * landing directory and the spool/incoming directory it hands files over
 * in. It cannot write the
 * state database or the audit trail: records go to the audit writer, and
 * questions that need the database or a password hash to the listener
 * (server/monitor.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <malloc.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/util.h"
#include "policy/config.h"
#include "policy/policy.h"
#include "common/proc.h"
#include "policy/sessioncfg.h"
#include "server/guard.h"
#include "server/monitor.h"
#include "server/sandbox.h"
#include "server/server.h"
#include "server/sftp.h"
#include "spool/layout.h"
#include "spool/receipt.h"
#include "spool/state.h"

#define CHANNEL_READ_SIZE	(256 * 1024)
#define GUARD_TIMEOUT_MS	10000	/* the listener's answer */
#define MONITOR_TIMEOUT_MS	30000	/* ... to a database question */

struct session {
	const struct config	*cfg;
	struct guard_limits	 lim;
	int			 guardfd;	/* socketpair to the listener */
	int			 refused;	/* logged in over a limit: end */
	ssh_session		 ssh;
	ssh_channel		 channel;
	struct ssh_server_callbacks_struct   server_cb;
	struct ssh_channel_callbacks_struct  channel_cb;

	struct sockaddr_storage	 peer;
	char			 remote[128];	/* "addr port [via lb]" for logs */
	char			 remote_addr[INET6_ADDRSTRLEN];
	char			 via[INET6_ADDRSTRLEN];	/* load balancer
						 * (PROXY header) or "" */
	char			 id[33];	/* session id in the audit trail */

	const struct partner	*partner;	/* set once authenticated */
	char			 auth_method[16];
	char			 key_fp[128];
	int			 auth_tries;
	int			 sftp_requested;

	struct audit		*audit;
	int			 rootfd;	/* landing/<partner> */
	int			 incomingfd;	/* spool/incoming */
	char			 staged[33];	/* fid linked at CLOSE, not yet recorded */
	int			 staged_receipt; /* ... and its receipt written */
	int			 no_receipts;	/* the spool's fs keeps no xattrs */
	struct file_rec		 rec;		/* the file being closed */
	int64_t			 files;
	int64_t			 bytes;
	int			 deferred;	/* records sent since the last sync */
};

static volatile sig_atomic_t session_quit;
static volatile sig_atomic_t session_drain;	/* SIGUSR1: the gateway stops */

static void
session_sigterm(int sig)
{
	(void)sig;
	session_quit = 1;
}

/* The supervisor drains (SIGTERM to it): end once no upload is open.
 * Before login SIGUSR1's default action ends the process at once. */
static void
session_sigusr1(int sig)
{
	(void)sig;
	session_drain = 1;
}

/*
 * An audit record with the session's common fields, then `fields`. A
 * deferred record (defer) is sent without waiting for the writer's
 * fdatasync; the next record that is not deferred (or audit_close) waits
 * for both with one sync, so it costs no more than it did alone.
 */
static void
session_record(struct session *s, const char *event, json_t *fields,
    int defer)
{
	json_t *rec = json_object();
	const char *k;
	json_t *v;
	int rc;

	if (rec == NULL) {
		json_decref(fields);
		return;
	}
	json_object_set_new(rec, "session", json_string(s->id));
	json_object_set_new(rec, "remote", json_string(s->remote_addr));
	if (s->via[0] != '\0')
		json_object_set_new(rec, "via", json_string(s->via));
	if (s->partner != NULL)
		json_object_set_new(rec, "partner", json_string(s->partner->name));
	if (fields != NULL) {
		json_object_foreach(fields, k, v)
			json_object_set(rec, k, v);
		json_decref(fields);
	}
	if (defer || s->deferred)
		audit_defer(s->audit);
	rc = audit_emit(s->audit, event, rec);
	if (defer)
		s->deferred = 1;
	else if (s->deferred) {
		s->deferred = 0;
		if (audit_sync(s->audit) == -1)
			rc = -1;
	}
	if (rc == -1)
		log_warnx("audit record %s for session %s (or a deferred one "
		    "before it) was not written", event, s->id);
}

static void
session_audit(struct session *s, const char *event, json_t *fields)
{
	session_record(s, event, fields, 0);
}

/* A user name from the wire, made safe for JSON and logs (no control chars). */
static json_t *
safe_user(const char *user)
{
	char buf[128];
	size_t i;

	xstrlcpy(buf, user ? user : "", sizeof(buf));
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] >= 0x7f)
			buf[i] = '?';
	return json_string(buf);
}

static void
auth_failed(struct session *s, const char *user, const char *method,
    const char *reason, int counted)
{
	struct guard_msg m;
	char key[64];

	s->auth_tries++;
	log_info("session %s: %s authentication for \"%s\" from %s refused: %s",
	    s->id, method, user, s->remote, reason);
	if (guard_ban_key(s->remote_addr, key, sizeof(key)) == -1)
		xstrlcpy(key, s->remote_addr, sizeof(key));
	/* "prefix": what failures are counted and banned by (IPv6: the /64) */
	session_audit(s, "auth.failure", json_pack("{s:o,s:s,s:s,s:i,s:s}",
	    "user", safe_user(user), "method", method, "reason", reason,
	    "attempt", s->auth_tries, "prefix", key));
	/*
	 * The listener counts failures across every connection (bans); a
	 * password it refused it has counted already.
	 */
	if (!counted) {
		memset(&m, 0, sizeof(m));
		m.type = GUARD_MSG_FAIL;
		(void)guard_ask(s->guardfd, &m, GUARD_TIMEOUT_MS);
	}
	if (s->auth_tries >= s->lim.max_auth_tries) {
		log_info("session %s: too many authentication failures from %s",
		    s->id, s->remote);
		ssh_disconnect(s->ssh);
	}
}

/* The partner called user, if it may log in from this address. */
static const struct partner *
auth_partner(struct session *s, const char *user, const char *method,
    const char **reason)
{
	const struct partner *p = config_partner(s->cfg, user);

	if (p == NULL) {
		*reason = "unknown user";
		return NULL;
	}
	if (!policy_addr_allowed(p, (const struct sockaddr *)&s->peer)) {
		*reason = "address not in allow_from";
		return NULL;
	}
	return p;
}

/*
 * The credentials are good: the listener counts the login against the
 * session limits. 0, or -1 when over a limit (the session then ends; it is
 * not an authentication failure and counts toward no ban).
 */
static int
auth_succeeded(struct session *s, const struct partner *p, const char *method)
{
	struct guard_msg m;
	enum guard_verdict v;

	memset(&m, 0, sizeof(m));
	m.type = GUARD_MSG_LOGIN;
	xstrlcpy(m.name, p->name, sizeof(m.name));
	m.partner_max = p->max_sessions;
	m.by_key = strcmp(method, "publickey") == 0;
	v = guard_ask(s->guardfd, &m, GUARD_TIMEOUT_MS);
	if (v == GUARD_USER_BANNED) {
		auth_failed(s, p->name, method, guard_verdict_str(v), 0);
		return -1;
	}
	if (v != GUARD_OK) {
		log_info("session %s: login of %s from %s refused: %s%s%s",
		    s->id, p->name, s->remote, guard_verdict_str(v),
		    guard_verdict_key(v) ? "; raise " : "",
		    guard_verdict_key(v) ? guard_verdict_key(v) : "");
		session_audit(s, "session.refused", json_pack("{s:s,s:s,s:s}",
		    "user", p->name, "method", method, "reason",
		    guard_verdict_str(v)));
		s->refused = 1;
		return -1;
	}
	s->partner = p;
	xstrlcpy(s->auth_method, method, sizeof(s->auth_method));
	return 0;
}

/*
 * Passwords are checked by the listener, which alone holds the hashes: one
 * question per attempt, whoever the user is (same round trip and one
 * crypt(3) for known and unknown users), and it counts a wrong password
 * towards the bans itself.
 */
static int
cb_auth_password(ssh_session ssh, const char *user, const char *password,
    void *arg)
{
	struct session *s = arg;
	const struct partner *p;
	const char *reason = NULL;
	struct mon_password *m;
	uint32_t v;

	(void)ssh;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return SSH_AUTH_DENIED;
	m->type = MON_PASSWORD;
	xstrlcpy(m->user, user != NULL ? user : "", sizeof(m->user));
	if (password != NULL && strlen(password) < sizeof(m->password))
		xstrlcpy(m->password, password, sizeof(m->password));
	v = monitor_ask(s->guardfd, m, sizeof(*m), GUARD_TIMEOUT_MS);
	explicit_bzero(m, sizeof(*m));
	free(m);
	p = auth_partner(s, user, "password", &reason);
	switch (v) {
	case MON_PW_OK:
		break;
	case MON_PW_WRONG:	reason = "wrong password"; break;
	case MON_PW_NONE:	reason = "password login not configured for "
				    "this partner"; break;
	case MON_PW_UNKNOWN:	reason = "unknown user"; break;
	case MON_PW_BANNED:	reason = guard_verdict_str(GUARD_USER_BANNED);
				break;
	default:		reason = "the listener did not answer"; break;
	}
	if (v != MON_PW_OK || p == NULL) {
		/* the listener counted what it refused; a refusal of ours
		 * (allow_from) is reported like any other */
		auth_failed(s, user, "password", reason, v != MON_PW_OK);
		return SSH_AUTH_DENIED;
	}
	if (auth_succeeded(s, p, "password") == -1)
		return SSH_AUTH_DENIED;
	return SSH_AUTH_SUCCESS;
}

static int
key_allowed(const struct partner *p, ssh_key key)
{
	char type[64];
	const char *line, *sp;
	ssh_key k;
	size_t i;
	int match;

	for (i = 0; i < p->nauthorized_keys; i++) {
		line = p->authorized_keys[i];
		if ((sp = strchr(line, ' ')) == NULL ||
		    (size_t)(sp - line) >= sizeof(type))
			continue;
		memcpy(type, line, (size_t)(sp - line));
		type[sp - line] = '\0';
		k = NULL;
		if (ssh_pki_import_pubkey_base64(sp + 1,
		    ssh_key_type_from_name(type), &k) != SSH_OK)
			continue;
		match = ssh_key_cmp(k, key, SSH_KEY_CMP_PUBLIC) == 0;
		ssh_key_free(k);
		if (match)
			return 1;
	}
	return 0;
}

static void
key_fingerprint(ssh_key key, char *out, size_t len)
{
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp;

	xstrlcpy(out, "", len);
	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash,
	    &hlen) != SSH_OK)
		return;
	if ((fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash,
	    hlen)) != NULL) {
		xstrlcpy(out, fp, len);
		ssh_string_free_char(fp);
	}
	ssh_clean_pubkey_hash(&hash);
}

static int
cb_auth_pubkey(ssh_session ssh, const char *user, struct ssh_key_struct *key,
    char state, void *arg)
{
	struct session *s = arg;
	const struct partner *p;
	const char *reason = NULL;
	char fp[128];

	(void)ssh;
	key_fingerprint(key, fp, sizeof(fp));
	p = auth_partner(s, user, "publickey", &reason);
	if (p != NULL && !key_allowed(p, key)) {
		reason = "key not authorized for this partner";
		p = NULL;
	} else if (p == NULL && s->cfg->npartners > 0)
		(void)key_allowed(&s->cfg->partners[0], key);	/* same work */
	if (p == NULL) {
		/* A probe for an unknown key is not an attempt worth a
		 * record each (clients offer every key they have), nor a
		 * ban failure; but it counts towards max_auth_tries, as in
		 * OpenSSH, so one connection cannot probe keys forever. */
		if (state == SSH_PUBLICKEY_STATE_NONE) {
			log_debug("session %s: key %s offered for \"%s\" not "
			    "accepted", s->id, fp, user);
			if (++s->auth_tries >= s->lim.max_auth_tries) {
				log_info("session %s: too many authentication "
				    "attempts from %s (keys offered and not "
				    "accepted; server.max_auth_tries is %d)",
				    s->id, s->remote, s->lim.max_auth_tries);
				ssh_disconnect(s->ssh);
			}
			return SSH_AUTH_DENIED;
		}
		auth_failed(s, user, "publickey", reason, 0);
		return SSH_AUTH_DENIED;
	}
	/* A probe (no signature yet) only asks whether the key would do. */
	if (state == SSH_PUBLICKEY_STATE_NONE)
		return SSH_AUTH_SUCCESS;
	if (state != SSH_PUBLICKEY_STATE_VALID) {
		auth_failed(s, user, "publickey", "bad signature", 0);
		return SSH_AUTH_DENIED;
	}
	xstrlcpy(s->key_fp, fp, sizeof(s->key_fp));
	if (auth_succeeded(s, p, "publickey") == -1)
		return SSH_AUTH_DENIED;
	return SSH_AUTH_SUCCESS;
}

static int
cb_subsystem(ssh_session ssh, ssh_channel channel, const char *subsystem,
    void *arg)
{
	struct session *s = arg;

	(void)ssh;
	if (s->partner != NULL && channel == s->channel &&
	    strcmp(subsystem, "sftp") == 0) {
		s->sftp_requested = 1;
		return 0;
	}
	log_info("session %s: subsystem \"%.32s\" refused", s->id, subsystem);
	return 1;
}

static int
cb_refuse_pty(ssh_session ssh, ssh_channel ch, const char *term, int w, int h,
    int pw, int ph, void *arg)
{
	struct session *s = arg;

	log_info("session %s: pty request refused (SFTP only)", s->id);
	return -1;
}

static int
cb_refuse_shell(ssh_session ssh, ssh_channel ch, void *arg)
{
	struct session *s = arg;

	log_info("session %s: shell request refused (SFTP only)", s->id);
	return 1;
}

static int
cb_refuse_exec(ssh_session ssh, ssh_channel ch, const char *cmd, void *arg)
{
	struct session *s = arg;

	log_info("session %s: exec request refused (SFTP only)", s->id);
	return 1;
}

static ssh_channel
cb_channel_open(ssh_session ssh, void *arg)
{
	struct session *s = arg;

	if (s->partner == NULL || s->channel != NULL)
		return NULL;	/* one channel per connection */
	if ((s->channel = ssh_channel_new(ssh)) == NULL)
		return NULL;
	memset(&s->channel_cb, 0, sizeof(s->channel_cb));
	s->channel_cb.userdata = s;
	s->channel_cb.channel_subsystem_request_function = cb_subsystem;
	s->channel_cb.channel_pty_request_function = cb_refuse_pty;
	s->channel_cb.channel_shell_request_function = cb_refuse_shell;
	s->channel_cb.channel_exec_request_function = cb_refuse_exec;
	ssh_callbacks_init(&s->channel_cb);
	ssh_set_channel_callbacks(s->channel, &s->channel_cb);
	return s->channel;
}

/* --- the SFTP engine's hooks ------------------------------------------- */

/* r's facts at CLOSE: who, what, when, which landing inode. */
static int
fill_rec(struct session *s, const struct sftp_file_info *fi,
    struct file_rec *r)
{
	struct stat sb;

	memset(r, 0, sizeof(*r));
	if (random_id(r->fid, sizeof(r->fid)) == -1)
		return -1;
	xstrlcpy(r->partner, s->partner->name, sizeof(r->partner));
	xstrlcpy(r->path, fi->path, sizeof(r->path));
	xstrlcpy(r->remote, s->remote_addr, sizeof(r->remote));
	xstrlcpy(r->session, s->id, sizeof(r->session));
	xstrlcpy(r->sha256, fi->sha256, sizeof(r->sha256));
	r->size = fi->size;
	r->received_ms = now_ms();
	if (fstat(fi->fd, &sb) == 0) {
		r->landing_dev = (int64_t)sb.st_dev;
		r->landing_ino = (int64_t)sb.st_ino;
	}
	return 0;
}

/*
 * CLOSE, before the engine's fsync (spool/receipt.h): write the receipt on
 * the file and link it into spool/incoming under a new fid, so the fsync of
 * the file commits both with its bytes. Where the file system takes no
 * receipt, the file is recorded in the state database at file_complete.
 */
static int
hook_file_stage(void *arg, const struct sftp_file_info *fi)
{
	struct session *s = arg;
	char procpath[64];

	s->staged[0] = '\0';
	s->staged_receipt = 0;
	if (fill_rec(s, fi, &s->rec) == -1)
		return -1;
	if (!s->no_receipts) {
		if (getenv("SLUICE_TEST_NO_RECEIPTS") != NULL) {
			/* the tests' stand-in for a file system without
			 * extended attributes */
			s->no_receipts = 1;
			errno = ENOTSUP;
		} else if (receipt_write(fi->fd, &s->rec) == 0)
			s->staged_receipt = 1;
		else if (errno == ENOTSUP) {
			s->no_receipts = 1;
			log_info("session %s: the spool's file system keeps no "
			    "extended attributes; recording files in the state "
			    "database (slower CLOSE)", s->id);
		} else if (errno != E2BIG && errno != ENOSPC && errno != ERANGE)
			log_warn("session %s: receipt of %s", s->id, fi->path);
	}
	xsnprintf(procpath, sizeof(procpath), "/proc/self/fd/%d", fi->fd);
	if (linkat(AT_FDCWD, procpath, s->incomingfd, s->rec.fid,
	    AT_SYMLINK_FOLLOW) == -1) {
		log_warn("session %s: cannot link %s into the spool", s->id,
		    fi->path);
		if (s->staged_receipt)
			(void)receipt_remove(fi->fd);
		s->staged_receipt = 0;
		return -1;
	}
	xstrlcpy(s->staged, s->rec.fid, sizeof(s->staged));
	return 0;
}

/* The CLOSE failed after file_stage (the file is mode 0600 again). */
static void
hook_file_unstage(void *arg, const struct sftp_file_info *fi)
{
	struct session *s = arg;

	if (s->staged_receipt && receipt_remove(fi->fd) == -1)
		log_warn("session %s: cannot remove the receipt of %s", s->id,
		    fi->path);
	s->staged_receipt = 0;
	if (s->staged[0] != '\0' && unlinkat(s->incomingfd, s->staged, 0) == -1)
		log_warn("session %s: cannot remove spool link %s", s->id,
		    s->staged);
	s->staged[0] = '\0';
}

/*
 * The file, its receipt and its spool link are fsynced: make spool/incoming
 * durable; without a receipt, record the file in the state database with
 * its file.received record (one transaction, the audit outbox). Only then
 * may the partner be told SSH_FX_OK (invariant 1). On failure the engine
 * calls file_unstage.
 */
static int
hook_file_complete(void *arg, const struct sftp_file_info *fi)
{
	struct session *s = arg;
	struct file_rec *r = &s->rec;

	if (s->staged[0] == '\0')
		goto fail;
	/* Already committed by the file's fsync on ext4: cheap. */
	if (fsync(s->incomingfd) == -1) {
		log_warn("session %s: fsync %s", s->id,
		    spool_dir_name(SPOOL_INCOMING));
		goto fail;
	}
	if (!s->staged_receipt) {
		/* no receipt on this file system: the listener records it */
		struct mon_received *m;
		uint32_t rc;

		if ((m = calloc(1, sizeof(*m))) == NULL)
			goto fail;
		m->type = MON_RECEIVED;
		m->rec = *r;
		rc = monitor_ask(s->guardfd, m, sizeof(*m), MONITOR_TIMEOUT_MS);
		free(m);
		if (rc != 0)
			goto fail;
	}
	s->staged[0] = '\0';
	s->staged_receipt = 0;
	log_info("session %s: received %s/%s (%lld bytes, sha256 %s) as %s",
	    s->id, s->partner->name, r->path, (long long)r->size, r->sha256,
	    r->fid);
	s->files++;
	s->bytes += r->size;
	return 0;
fail:
	session_audit(s, "file.failed", json_pack("{s:s,s:I,s:s}", "path",
	    fi->path, "size", (json_int_t)fi->size, "reason",
	    "could not record the file durably"));
	return -1;
}

/*
 * Was this 0440 file received? Yes if a row knows it, or if its receipt's
 * file still waits in spool/incoming for the intake. A receipt whose file
 * is neither (the intake found it cut by a crash and quarantined it) or no
 * receipt and no row: a crash remnant its partner was never told OK about.
 */
static int
hook_is_recorded(void *arg, int fd, int64_t dev, int64_t ino)
{
	struct session *s = arg;
	struct mon_recorded m;
	struct file_rec r;
	uint32_t known;

	memset(&m, 0, sizeof(m));
	m.type = MON_RECORDED;
	m.dev = dev;
	m.ino = ino;
	switch (receipt_read(fd, &r)) {
	case 0:
		break;
	case 1:
		xstrlcpy(m.fid, r.fid, sizeof(m.fid));
		break;
	default:
		/* a receipt that is not one (no session wrote it): the file
		 * was never received; the unrecorded sweep takes its link */
		if (receipt_present(fd) != 1)
			return -1;
		break;
	}
	known = monitor_ask(s->guardfd, &m, sizeof(m), MONITOR_TIMEOUT_MS);
	if (known == MON_ERROR) {
		log_warnx("session %s: the listener could not tell whether a "
		    "file was received", s->id);
		return -1;
	}
	if (known != 0 || m.fid[0] == '\0')
		return known != 0;
	if (faccessat(s->incomingfd, m.fid, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	return errno == ENOENT ? 0 : -1;
}

static const char *
sftp_status_name(uint32_t st)
{
	static const char *names[] = { "ok", "eof", "no_such_file",
	    "permission_denied", "failure", "bad_message", "no_connection",
	    "connection_lost", "op_unsupported" };

	return st < sizeof(names) / sizeof(names[0]) ? names[st] : "unknown";
}

static void
hook_event(void *arg, const char *op, const char *path, const char *path2,
    uint32_t status, const char *reason)
{
	struct session *s = arg;
	json_t *f;

	/*
	 * A successful OPEN starts an upload and a successful CLOSE is the
	 * file.received record: neither needs a record (and its fdatasync)
	 * of its own. Refusals and every other change are recorded.
	 */
	if (status == 0 && (strcmp(op, "close") == 0 || strcmp(op, "open") == 0)) {
		log_debug("session %s: %s %s", s->id, op, path ? path : "");
		return;
	}
	f = json_pack("{s:s,s:s,s:s}", "op", op, "path", path ? path : "",
	    "status", sftp_status_name(status));
	if (f != NULL && path2 != NULL)
		json_object_set_new(f, "path2", json_string(path2));
	if (f != NULL && reason != NULL)
		json_object_set_new(f, "reason", json_string(reason));
	session_audit(s, status == 0 ? "sftp.op" : "sftp.denied", f);
}

/*
 * What a handle read or listed (sftp.read, sftp.list): one record per
 * handle, deferred, so a download never waits for the trail's fdatasync.
 */
static void
hook_access(void *arg, const struct sftp_access *a)
{
	struct session *s = arg;
	json_t *f;

	if (a->dir)
		f = json_pack("{s:s,s:I,s:I,s:s}", "path", a->path,
		    "entries", (json_int_t)a->entries, "replies",
		    (json_int_t)a->reads, "ended", a->at_end ? "session_end" :
		    "close");
	else {
		f = json_pack("{s:s,s:I,s:I}", "path", a->path, "bytes",
		    (json_int_t)a->bytes, "reads", (json_int_t)a->reads);
		if (f != NULL && a->reads > 0) {
			json_object_set_new(f, "offset_from",
			    json_integer(a->first));
			json_object_set_new(f, "offset_to",
			    json_integer(a->end));
		}
		if (f != NULL && a->size >= 0)
			json_object_set_new(f, "size", json_integer(a->size));
		if (f != NULL)
			json_object_set_new(f, "ended", json_string(a->at_end ?
			    "session_end" : "close"));
	}
	session_record(s, a->dir ? "sftp.list" : "sftp.read", f, 1);
}

/* --- the session ------------------------------------------------------- */

static int
open_partner_root(struct session *s)
{
	char landing[PATH_MAX], dir[PATH_MAX];
	int lfd;

	if (spool_dir_path(s->cfg->state_dir, SPOOL_LANDING, NULL, landing,
	    sizeof(landing)) == -1 ||
	    spool_dir_path(s->cfg->state_dir, SPOOL_LANDING, s->partner->name,
	    dir, sizeof(dir)) == -1)
		return -1;
	/* landing/ is searchable, not readable, by the session user */
	lfd = open(landing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (lfd == -1) {
		log_warn("session %s: open %s", s->id, landing);
		return -1;
	}
	s->rootfd = openat(lfd, s->partner->name,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(lfd);
	if (s->rootfd == -1) {
		log_warn("session %s: open %s", s->id, dir);
		return -1;
	}
	if (spool_dir_path(s->cfg->state_dir, SPOOL_INCOMING, NULL, dir,
	    sizeof(dir)) == -1)
		return -1;
	s->incomingfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->incomingfd == -1) {
		log_warn("session %s: open %s", s->id, dir);
		return -1;
	}
	return 0;
}

/*
 * The client's address: the socket's peer, or behind a load balancer
 * (server.proxy_protocol) the one its PROXY header named, which the
 * listener read and keeps (MON_PEER). Without an answer the session ends:
 * the load balancer's own address must not stand in for the client's.
 */
static void
peer_address(struct session *s)
{
	socklen_t len = sizeof(s->peer);
	struct mon_peer mp;
	uint32_t type = MON_PEER;
	char port[16];

	xstrlcpy(s->remote_addr, "unknown", sizeof(s->remote_addr));
	xstrlcpy(s->remote, "unknown", sizeof(s->remote));
	if (s->cfg->server.nproxy_from > 0) {
		if (monitor_call(s->guardfd, &type, sizeof(type), &mp,
		    sizeof(mp), GUARD_TIMEOUT_MS) == -1 || !mp.proxied ||
		    mp.addrlen == 0 || mp.addrlen > sizeof(s->peer)) {
			log_warnx("session %s: the listener did not say which "
			    "client the load balancer's connection is for; "
			    "closing", s->id);
			_exit(1);
		}
		memcpy(&s->peer, &mp.addr, mp.addrlen);
		len = (socklen_t)mp.addrlen;
		mp.via[sizeof(mp.via) - 1] = '\0';
		xstrlcpy(s->via, mp.via, sizeof(s->via));
	} else if (getpeername(ssh_get_fd(s->ssh), (struct sockaddr *)&s->peer,
	    &len) == -1)
		return;
	if (getnameinfo((struct sockaddr *)&s->peer, len, s->remote_addr,
	    sizeof(s->remote_addr), port, sizeof(port),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	xsnprintf(s->remote, sizeof(s->remote), "%s port %s%s%s",
	    s->remote_addr, port, s->via[0] != '\0' ? " via " : "", s->via);
}

/* Authenticates and waits for the sftp subsystem. 0 or -1. */
static int
session_handshake(struct session *s)
{
	ssh_event ev;
	int rc = -1;

	memset(&s->server_cb, 0, sizeof(s->server_cb));
	s->server_cb.userdata = s;
	s->server_cb.auth_password_function = cb_auth_password;
	s->server_cb.auth_pubkey_function = cb_auth_pubkey;
	s->server_cb.channel_open_request_session_function = cb_channel_open;
	ssh_callbacks_init(&s->server_cb);
	ssh_set_server_callbacks(s->ssh, &s->server_cb);

	if (ssh_handle_key_exchange(s->ssh) != SSH_OK) {
		log_info("session %s: key exchange with %s failed: %s", s->id,
		    s->remote, ssh_get_error(s->ssh));
		return -1;
	}
	ssh_set_auth_methods(s->ssh, SSH_AUTH_METHOD_PUBLICKEY |
	    SSH_AUTH_METHOD_PASSWORD);
	if ((ev = ssh_event_new()) == NULL ||
	    ssh_event_add_session(ev, s->ssh) != SSH_OK)
		goto done;
	while (!session_quit && !(s->partner != NULL && s->channel != NULL &&
	    s->sftp_requested)) {
		if (ssh_event_dopoll(ev, 1000) == SSH_ERROR) {
			log_info("session %s: %s disconnected during login: %s",
			    s->id, s->remote, ssh_get_error(s->ssh));
			goto done;
		}
		if (!ssh_is_connected(s->ssh) || s->refused)
			goto done;
	}
	if (session_quit)
		goto done;
	rc = 0;
done:
	if (ev != NULL) {
		ssh_event_remove_session(ev, s->ssh);
		ssh_event_free(ev);
	}
	return rc;
}

static int
channel_send(struct session *s, const uint8_t *p, size_t n)
{
	int w;

	while (n > 0) {
		w = ssh_channel_write(s->channel, p, n > UINT32_MAX ? UINT32_MAX :
		    (uint32_t)n);
		if (w == SSH_ERROR || w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
session_sftp(struct session *s)
{
	struct sftp_params params;
	struct sftp *eng;
	uint8_t *buf;
	const uint8_t *out;
	size_t outlen;
	int n;
	int64_t last = mono_ms();
	const char *why = "client closed the channel";

	memset(&params, 0, sizeof(params));
	params.rootfd = s->rootfd;
	params.perms = s->partner->role != NULL ? s->partner->role->perms : 0;
	params.max_handles = s->cfg->server.max_open_handles > 0 ?
	    (uint32_t)s->cfg->server.max_open_handles : 0;
	params.max_file_size = s->cfg->server.max_file_size;
	params.min_free_space = s->cfg->server.min_free_space;
	/* delivery receipts: read-only over SFTP (spool/delivery.h) */
	params.receipts_dir = s->partner->receipts ? s->cfg->receipts.dir :
	    NULL;
	params.hooks.arg = s;
	params.hooks.file_stage = hook_file_stage;
	params.hooks.file_unstage = hook_file_unstage;
	params.hooks.file_complete = hook_file_complete;
	params.hooks.event = hook_event;
	params.hooks.is_recorded = hook_is_recorded;
	params.hooks.access = hook_access;
	if ((eng = sftp_new(&params)) == NULL || (buf = malloc(CHANNEL_READ_SIZE)) == NULL) {
		log_warnx("session %s: out of memory", s->id);
		sftp_free(eng);
		return;
	}
	/* The key exchange and authentication are over: their freed heap
	 * goes back to the kernel (most sessions then sit idle). */
	(void)malloc_trim(0);
	for (;;) {
		if (session_quit) {
			why = "gateway shutting down";
			break;
		}
		if (session_drain && sftp_writers(eng) == 0) {
			why = "gateway draining (no upload open)";
			break;
		}
		n = ssh_channel_read_timeout(s->channel, buf, CHANNEL_READ_SIZE,
		    0, 1000);
		if (n == SSH_ERROR) {
			why = ssh_get_error(s->ssh);
			break;
		}
		if (n > 0) {
			last = mono_ms();
			if (sftp_input(eng, buf, (size_t)n) == -1) {
				why = "SFTP protocol error";
				break;
			}
			out = sftp_output(eng, &outlen);
			if (outlen > 0) {
				if (channel_send(s, out, outlen) == -1) {
					why = "write to client failed";
					break;
				}
				sftp_output_consume(eng, outlen);
			}
			continue;
		}
		if (ssh_channel_is_eof(s->channel) ||
		    !ssh_channel_is_open(s->channel))
			break;
		if (mono_ms() - last > s->lim.idle_timeout_s * 1000) {
			why = "idle timeout";
			break;
		}
	}
	log_info("session %s: %s ends: %s (%lld files, %lld bytes)", s->id,
	    s->remote, why, (long long)s->files, (long long)s->bytes);
	sftp_free(eng);		/* open uploads stay incomplete */
	free(buf);
}

/* Processes the client's closing messages until it disconnects, at most ms. */
static void
session_linger(struct session *s, int ms)
{
	ssh_event ev;
	int64_t end = mono_ms() + ms;

	if ((ev = ssh_event_new()) == NULL)
		return;
	if (ssh_event_add_session(ev, s->ssh) == SSH_OK) {
		while (ssh_is_connected(s->ssh) && mono_ms() < end)
			if (ssh_event_dopoll(ev, 100) == SSH_ERROR)
				break;
		ssh_event_remove_session(ev, s->ssh);
	}
	ssh_event_free(ev);
}

static void
session_run(const struct config *cfg, ssh_session ssh, int guardfd,
    const char *audit_socket) __attribute__((noreturn));

static void
session_run(const struct config *cfg, ssh_session ssh, int guardfd,
    const char *audit_socket)
{
	struct session s;
	struct sigaction sa;
	char landing[PATH_MAX], incoming[PATH_MAX], root[PATH_MAX];

	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.ssh = ssh;
	s.guardfd = guardfd;
	s.rootfd = s.incomingfd = -1;
	guard_limits(&cfg->server, &s.lim);
	/* Before login there is nothing to save: SIGTERM ends the process at
	 * once, even inside libssh's blocking key exchange. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, "sluice-session", 0, 0, 0);
	if (random_id(s.id, sizeof(s.id)) == -1)
		_exit(1);
	s.id[12] = '\0';	/* short enough to read, unique enough per day */
	peer_address(&s);
	/* Login grace time: a connection that has not authenticated and asked
	 * for SFTP by then is cut (SIGALRM's default action ends the process). */
	alarm((unsigned)s.lim.login_grace_s);
	if ((s.audit = audit_connect(audit_socket)) == NULL)
		_exit(1);
	/*
	 * The sandbox (server/sandbox.h), before a byte from the client is
	 * parsed: from here the process reaches nothing on the file system
	 * but landing/ and spool/incoming, and makes no system call outside
	 * the allow-list. jansson seeds its hash from /dev/urandom at its
	 * first object: now, while it still can.
	 */
	json_object_seed(0);
	if (spool_dir_path(cfg->state_dir, SPOOL_LANDING, NULL, landing,
	    sizeof(landing)) == -1 || spool_dir_path(cfg->state_dir,
	    SPOOL_INCOMING, NULL, incoming, sizeof(incoming)) == -1 ||
	    sandbox_preauth(landing, incoming) == -1)
		_exit(1);
#ifdef SLUICE_TEST_HOOKS
	sandbox_test_trigger("preauth");
#endif
	if (session_handshake(&s) == -1)
		goto out;
	alarm(0);
	/* From here an upload may be in flight: stop between packets. */
	sa.sa_handler = session_sigterm;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = session_sigusr1;
	sigaction(SIGUSR1, &sa, NULL);
	if (open_partner_root(&s) == -1) {
		log_warnx("session %s: cannot open the spool; refusing %s",
		    s.id, s.partner->name);
		goto out;
	}
	/* After login: one partner's root, and linking into incoming. */
	if (spool_dir_path(cfg->state_dir, SPOOL_LANDING, s.partner->name,
	    root, sizeof(root)) == -1 || sandbox_postauth(root, incoming) == -1) {
		log_warnx("session %s: the sandbox could not be set up; "
		    "refusing %s", s.id, s.partner->name);
		goto out;
	}
#ifdef SLUICE_TEST_HOOKS
	sandbox_test_trigger("postauth");
	sandbox_test_probe(s.id);
#endif
	log_info("session %s: %s logged in from %s by %s%s%s (kex %s, cipher "
	    "%s, mac %s)", s.id, s.partner->name, s.remote, s.auth_method,
	    s.key_fp[0] ? " " : "", s.key_fp, ssh_get_kex_algo(s.ssh),
	    ssh_get_cipher_in(s.ssh), ssh_get_hmac_in(s.ssh) ?
	    ssh_get_hmac_in(s.ssh) : "aead");
	session_audit(&s, "auth.success", json_pack("{s:s,s:s,s:s,s:s,s:s}",
	    "method", s.auth_method, "key", s.key_fp, "kex",
	    ssh_get_kex_algo(s.ssh) ? ssh_get_kex_algo(s.ssh) : "",
	    "cipher", ssh_get_cipher_in(s.ssh) ? ssh_get_cipher_in(s.ssh) : "",
	    "client", ssh_get_clientbanner(s.ssh) ?
	    ssh_get_clientbanner(s.ssh) : ""));
	session_sftp(&s);
	session_audit(&s, "session.end", json_pack("{s:I,s:I}", "files",
	    (json_int_t)s.files, "bytes", (json_int_t)s.bytes));
out:
	if (s.channel != NULL) {
		/* Close the way OpenSSH's sshd does (exit status, EOF, close)
		 * and let the client hang up first, so a partner's client does
		 * not report "closed by remote host" after every upload. */
		if (ssh_channel_is_open(s.channel)) {
			ssh_channel_request_send_exit_status(s.channel, 0);
			ssh_channel_send_eof(s.channel);
			ssh_channel_close(s.channel);
		}
		session_linger(&s, 2000);
	}
	ssh_disconnect(s.ssh);
	ssh_free(s.ssh);
	audit_close(s.audit);
	_exit(0);
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

/* A bind with the algorithm policy and the host keys (OpenSSH private key
 * text, wiped here once imported); it only serves ssh_bind_accept_fd. */
static ssh_bind
session_bind(const struct config *cfg, char **keys, size_t nkeys)
{
	const struct server_config *sc = &cfg->server;
	ssh_bind b;
	ssh_key key;
	size_t i;
	int no = 0, rsa_min = 2048, rc;

	if ((b = ssh_bind_new()) == NULL)
		return NULL;
	/* Never let /etc/ssh/libssh_server_config override the policy. */
	if (bind_set(b, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no, "process_config") ||
	    bind_set(b, SSH_BIND_OPTIONS_KEY_EXCHANGE, server_algo(sc, 0),
	    "server.kex") ||
	    bind_set(b, SSH_BIND_OPTIONS_CIPHERS_C_S, server_algo(sc, 1),
	    "server.ciphers") ||
	    bind_set(b, SSH_BIND_OPTIONS_CIPHERS_S_C, server_algo(sc, 1),
	    "server.ciphers") ||
	    bind_set(b, SSH_BIND_OPTIONS_HMAC_C_S, server_algo(sc, 2),
	    "server.macs") ||
	    bind_set(b, SSH_BIND_OPTIONS_HMAC_S_C, server_algo(sc, 2),
	    "server.macs") ||
	    bind_set(b, SSH_BIND_OPTIONS_PUBKEY_ACCEPTED_KEY_TYPES,
	    server_algo(sc, 4), "server.pubkey_algorithms") ||
	    bind_set(b, SSH_BIND_OPTIONS_RSA_MIN_SIZE, &rsa_min,
	    "the minimum RSA key size"))
		goto fail;
	for (i = 0; i < nkeys; i++) {
		key = NULL;
		rc = ssh_pki_import_privkey_base64(keys[i], NULL, NULL, NULL,
		    &key);
		explicit_bzero(keys[i], strlen(keys[i]));
		if (rc != SSH_OK) {
			log_warnx("host key %zu from the supervisor cannot be "
			    "read", i + 1);
			goto fail;
		}
		/* the bind takes the key */
		if (bind_set(b, SSH_BIND_OPTIONS_IMPORT_KEY, key, "host key")) {
			ssh_key_free(key);
			goto fail;
		}
	}
	if (bind_set(b, SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS,
	    server_algo(sc, 3), "server.host_key_algorithms"))
		goto fail;
	return b;
fail:
	ssh_bind_free(b);
	return NULL;
}

/* Reads the configuration the supervisor sealed into fd. NULL-terminated
 * malloc'd text, or NULL. */
static char *
read_config_fd(int fd, size_t *len)
{
	struct stat st;
	char *buf;
	ssize_t n;

	if (fstat(fd, &st) == -1 || st.st_size <= 0 ||
	    st.st_size > 64 * 1024 * 1024 ||
	    (buf = malloc((size_t)st.st_size + 1)) == NULL)
		return NULL;
	n = pread(fd, buf, (size_t)st.st_size, 0);
	if (n != st.st_size) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

void
session_main(int verbose)
{
	struct config *cfg;
	ssh_bind b = NULL;
	ssh_session ssh;
	char *text, **keys = NULL, *sock = NULL;
	size_t len = 0, nkeys = 0, i;

	log_init("session", verbose);
	/* uploads are 0640 in a setgid landing directory: the intake (the
	 * service group) reads them; nobody else does */
	umask(027);
	if ((text = read_config_fd(SESSION_FD_CONFIG, &len)) == NULL) {
		log_warnx("session: no configuration from the supervisor");
		_exit(1);
	}
	close(SESSION_FD_CONFIG);
	cfg = sessioncfg_import(text, len, &keys, &nkeys, &sock);
	explicit_bzero(text, len);
	free(text);
	if (cfg == NULL)
		_exit(1);
	if (ssh_init() != SSH_OK)
		_exit(1);
	b = session_bind(cfg, keys, nkeys);
	for (i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	if (b == NULL || (ssh = ssh_new()) == NULL)
		_exit(1);
	if (ssh_bind_accept_fd(b, ssh, SESSION_FD_CLIENT) != SSH_OK) {
		log_warnx("session: %s", ssh_get_error(b));
		_exit(1);
	}
	ssh_bind_free(b);	/* the session keeps its copies of the keys */
	session_run(cfg, ssh, SESSION_FD_LISTENER, sock);
}
