/*
 * writer.c - the audit writer role: the one process that appends to the
 * trail while sluice runs as a service. Clients (audit_connect) send one
 * record per SOCK_SEQPACKET message; the writer reads whatever every client
 * has ready, appends it all under one flock with one fdatasync (group
 * commit), then acks those that asked. The wire format is in audit_int.h.
 * It alone holds the audit key (audit.h): it loads cfg->audit_key_path at
 * start, creating it (0400) if missing, and MACs every record it appends.
 * With audit.sign_with it also holds the gateway's OpenPGP signing key
 * (spool/pgpsign.h) and signs each segment it seals: <segment>.sig beside
 * it, a detached armored signature over the whole file (sign_due).
 *
 * Nothing a client sends can make the writer block or write elsewhere: all
 * sockets are non-blocking, a message is at most AUDIT_MAX_LINE bytes, a
 * batch and a client's queue of unsent acks are bounded, and a client that
 * breaks the protocol or does not read its acks loses its connection.
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "common/log.h"
#include "common/util.h"
#include "policy/config.h"
#include "spool/pgpsign.h"

#define WRITER_MAX_CLIENTS	4096
#define WRITER_MAX_ACKS		256	/* unsent acks before a client is dropped */
#define WRITER_ROUND_MSGS	256	/* messages read from one client per round */
#define WRITER_BATCH_RECS	8192	/* messages in one group commit */
#define WRITER_BATCH_BYTES	(4 * 1024 * 1024)
#define WRITER_OUT_FLUSH	(1024 * 1024)	/* write(2) the lines in chunks */
#define WRITER_ACCEPTS		64	/* accepts per round */
#define WRITER_MAX_UNSIGNED	16	/* sealed segments waiting for a .sig */

struct client {
	int		 fd;
	uid_t		 uid;
	pid_t		 pid;
	int		 restricted;	/* the session user: a few events only */
	int		 err;		/* an unacked record failed since SYNC */
	int		 closing;	/* close once the batch is done */
	uint32_t	 acks[WRITER_MAX_ACKS];	/* ring of unsent replies */
	unsigned	 ahead, alen;
	int		 paused;	/* sent ROTATE_KEY: read no more this round */
};

struct entry {
	struct client	*c;		/* NULL: the writer's own record */
	uint32_t	 type, flags;
	const char	*event;		/* points into msg, or static */
	json_t		*msg;		/* owned: the decoded message */
	json_t		*fields;	/* borrowed from msg; may be NULL */
	uint32_t	 status;
};

struct writer {
	const struct config *cfg;
	const char	*path;
	int		 fd;		/* the live trail */
	char		 segdir[PATH_MAX];	/* sealed segments */
	char		 host[AUDIT_HOST_MAX + 1];
	int64_t		 segmax;	/* bytes; 0: no rotation by size */
	int64_t		 segage_ms;	/* 0: no rotation by age */
	int64_t		 opened_ms;	/* when the live segment (or the
					   writer) started, wall clock */
	int64_t		 rot_retry;	/* mono_ms: no size/age rotation
					   before (after a failed one) */
	int		 syslog;	/* forward records (a facility; 0: no) */
	struct audit_key *key;		/* owned; NULL: no audit_key_path */
	int		 listenfd;
	uid_t		 self;
	struct client	*clients[WRITER_MAX_CLIENTS];
	int		 nclients;
	struct entry	*batch;		/* WRITER_BATCH_RECS + 1 (own records) */
	size_t		 nbatch, batchbytes;
	char		*in;		/* one message */
	char		*out;		/* sealed lines not yet written */
	size_t		 outlen, outcap;
	int64_t		 lastfull;	/* mono_ms of the last "full" warning */
	struct pgp_signer *signer;	/* owned; NULL: not open (yet) */
	char		 unsigned_[WRITER_MAX_UNSIGNED][80];	/* sealed, to sign */
	int		 nunsigned;
	/* the chain as this writer's last batch left it, while the live
	 * trail is still that file at that size (nobody appended since):
	 * the next batch need not read and hash its last record again */
	struct audit_chain tail;
	off_t		 tail_size;
	dev_t		 tail_dev;
	ino_t		 tail_ino;
	int		 tail_ok;
};

static volatile sig_atomic_t writer_quit;
static volatile sig_atomic_t *writer_extquit;
static int restrict_set;
static uid_t restrict_uid;

static void
writer_sig(int sig)
{
	(void)sig;
	writer_quit = 1;
}

void
audit_writer_restrict_uid(uid_t session_uid)
{
	restrict_uid = session_uid;
	restrict_set = 1;
}

void
audit_writer_quit_flag(volatile sig_atomic_t *flag)
{
	writer_extquit = flag;
}

static int
quitting(void)
{
	return writer_quit || (writer_extquit != NULL && *writer_extquit);
}

/* Events a session process may record. */
static int
session_event_ok(const char *event)
{
	return strncmp(event, "auth.", 5) == 0 ||
	    strncmp(event, "sftp.", 5) == 0 ||
	    strncmp(event, "session.", 8) == 0 ||
	    strcmp(event, "file.failed") == 0;
}

static void
client_bad(struct client *c, const char *why)
{
	log_warnx("audit writer: malformed message from pid %ld uid %u (%s); "
	    "closing its connection", (long)c->pid, (unsigned)c->uid, why);
	c->closing = 1;
}

static void
client_ack(struct client *c, uint32_t status)
{
	if (c->closing)
		return;
	if (c->alen == WRITER_MAX_ACKS) {
		log_warnx("audit writer: pid %ld uid %u does not read its acks; "
		    "dropping its connection", (long)c->pid, (unsigned)c->uid);
		c->closing = 1;
		return;
	}
	c->acks[(c->ahead + c->alen++) % WRITER_MAX_ACKS] = status;
}

static void
client_flush(struct client *c)
{
	struct audit_reply r;
	ssize_t n;

	while (c->alen > 0 && !c->closing) {
		r.status = c->acks[c->ahead];
		n = send(c->fd, &r, sizeof(r), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;		/* POLLOUT tells when to go on */
		if (n != sizeof(r)) {
			c->closing = 1;	/* gone: nobody waits for the rest */
			return;
		}
		c->ahead = (c->ahead + 1) % WRITER_MAX_ACKS;
		c->alen--;
	}
}

static int
batch_full(struct writer *w)
{
	return w->nbatch >= WRITER_BATCH_RECS ||
	    w->batchbytes >= WRITER_BATCH_BYTES;
}

/* The writer's own record "audit.refused" for a refused event. */
static void
batch_refused(struct writer *w, struct client *c, const char *event)
{
	struct entry *e;
	json_t *f;

	f = json_pack("{s:s,s:I,s:I}", "refused", event, "pid",
	    (json_int_t)c->pid, "uid", (json_int_t)c->uid);
	if (f == NULL)
		return;
	e = &w->batch[w->nbatch++];
	memset(e, 0, sizeof(*e));
	e->type = AUDIT_MSG_RECORD;
	e->event = "audit.refused";
	e->msg = e->fields = f;
	e->status = AUDIT_OK;
}

/*
 * A ROTATE_KEY message: queued in the batch and done once the records
 * before it are stored (batch_commit). Only root and the writer's own user
 * may ask; a refused request is recorded as audit.refused.
 */
static void
rotate_message(struct writer *w, struct client *c, const struct audit_msg *h,
    const char *body, size_t n)
{
	struct entry *e;
	json_t *msg = NULL, *op;
	json_error_t jerr;

	if (h->flags != AUDIT_F_ACK) {
		client_bad(c, "ROTATE_KEY without the ack flag");
		return;
	}
	if (n > 0 && ((msg = json_loadb(body, n, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL || !json_is_object(msg) ||
	    ((op = json_object_get(msg, "operator")) != NULL &&
	    !json_is_string(op)))) {
		json_decref(msg);
		client_bad(c, "ROTATE_KEY body is not {\"operator\":\"...\"}");
		return;
	}
	e = &w->batch[w->nbatch++];
	memset(e, 0, sizeof(*e));
	e->c = c;
	e->type = AUDIT_MSG_ROTATE_KEY;
	e->flags = h->flags;
	e->msg = msg;
	e->event = "audit.rotate-key";
	e->status = AUDIT_OK;
	c->paused = 1;
	if (c->uid != 0 && c->uid != w->self) {
		log_warnx("audit writer: refused a key rotation asked by pid %ld "
		    "uid %u: only root and uid %u may rotate the audit key",
		    (long)c->pid, (unsigned)c->uid, (unsigned)w->self);
		e->status = AUDIT_ERR_REFUSED;
		batch_refused(w, c, e->event);
	}
}

/* Decodes one message into the batch; a bad one closes the client. */
static void
client_message(struct writer *w, struct client *c, const char *buf, size_t n)
{
	struct audit_msg h;
	struct entry *e;
	json_t *msg, *ev, *fields;
	json_error_t jerr;
	const char *k;
	json_t *v;

	if (n < sizeof(h)) {
		client_bad(c, "shorter than its header");
		return;
	}
	memcpy(&h, buf, sizeof(h));
	if ((h.flags & ~(uint32_t)AUDIT_F_ACK) != 0) {
		client_bad(c, "unknown flags");
		return;
	}
	if (h.type == AUDIT_MSG_SYNC) {
		if (n != sizeof(h) || h.flags != 0) {
			client_bad(c, "SYNC with a body or flags");
			return;
		}
		e = &w->batch[w->nbatch++];
		memset(e, 0, sizeof(*e));
		e->c = c;
		e->type = AUDIT_MSG_SYNC;
		return;
	}
	if (h.type == AUDIT_MSG_ROTATE_KEY) {
		rotate_message(w, c, &h, buf + sizeof(h), n - sizeof(h));
		return;
	}
	if (h.type != AUDIT_MSG_RECORD) {
		client_bad(c, "unknown message type");
		return;
	}
	msg = json_loadb(buf + sizeof(h), n - sizeof(h),
	    JSON_REJECT_DUPLICATES, &jerr);
	if (msg == NULL || !json_is_object(msg)) {
		json_decref(msg);
		client_bad(c, "not a JSON object");
		return;
	}
	json_object_foreach(msg, k, v) {
		if (strcmp(k, "event") != 0 && strcmp(k, "fields") != 0) {
			json_decref(msg);
			client_bad(c, "unknown member");
			return;
		}
	}
	ev = json_object_get(msg, "event");
	fields = json_object_get(msg, "fields");
	if (!json_is_string(ev) || !audit_event_ok(json_string_value(ev))) {
		json_decref(msg);
		client_bad(c, "no valid event name");
		return;
	}
	if (json_is_null(fields))
		fields = NULL;
	if (fields != NULL && !json_is_object(fields)) {
		json_decref(msg);
		client_bad(c, "fields is not an object");
		return;
	}
	e = &w->batch[w->nbatch++];
	memset(e, 0, sizeof(*e));
	e->c = c;
	e->type = AUDIT_MSG_RECORD;
	e->flags = h.flags;
	e->msg = msg;
	e->event = json_string_value(ev);
	e->fields = fields;
	e->status = AUDIT_OK;
	w->batchbytes += n;
	if (c->restricted && !session_event_ok(e->event)) {
		log_warnx("audit writer: refused event %s from session pid %ld "
		    "uid %u: a session may record only auth.*, sftp.*, "
		    "session.* and file.failed", e->event, (long)c->pid,
		    (unsigned)c->uid);
		e->status = AUDIT_ERR_REFUSED;
		batch_refused(w, c, e->event);
	}
}

/* Reads up to WRITER_ROUND_MSGS messages of c, as far as the batch holds. */
static void
client_read(struct writer *w, struct client *c)
{
	struct iovec iov;
	struct msghdr mh;
	ssize_t n;
	int i;

	c->paused = 0;
	for (i = 0; i < WRITER_ROUND_MSGS && !c->closing && !c->paused &&
	    !batch_full(w); i++) {
		iov.iov_base = w->in;
		iov.iov_len = AUDIT_MAX_LINE + 1;
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		n = recvmsg(c->fd, &mh, MSG_DONTWAIT);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			c->closing = 1;	/* EOF (or an empty message) or error */
			return;
		}
		if ((mh.msg_flags & MSG_TRUNC) || (size_t)n > AUDIT_MAX_LINE) {
			client_bad(c, "longer than AUDIT_MAX_LINE");
			return;
		}
		client_message(w, c, w->in, (size_t)n);
	}
}

static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
out_add(struct writer *w, const char *line, size_t len)
{
	char *p;
	size_t cap;

	if (w->outlen + len > w->outcap) {
		cap = w->outcap ? w->outcap : 64 * 1024;
		while (cap < w->outlen + len)
			cap *= 2;
		if ((p = realloc(w->out, cap)) == NULL)
			return -1;
		w->out = p;
		w->outcap = cap;
	}
	memcpy(w->out + w->outlen, line, len);
	w->outlen += len;
	return 0;
}

/*
 * Seals the live trail (w->fd, locked) into a segment and goes on with the
 * new live file, locked in its turn. 0, or -1 (logged; w->fd unchanged).
 */
static int
writer_rotate(struct writer *w, const char *reason, json_t *extra,
    const struct audit_key *newkey)
{
	struct audit_rotation r;
	char name[80];
	int fd;

	memset(&r, 0, sizeof(r));
	r.live = w->path;
	r.segdir = w->segdir;
	r.host = w->host;
	r.key = w->key;
	r.newkey = newkey;
	r.reason = reason;
	r.extra = extra;
	r.syslog = w->syslog;
	if ((fd = audit_rotate(&r, w->fd, name, sizeof(name))) == -1)
		return -1;
	if (audit_lock(fd, w->path) == -1)
		log_warnx("audit writer: going on without the lock of %s",
		    w->path);
	flock(w->fd, LOCK_UN);
	close(w->fd);
	w->fd = fd;
	w->opened_ms = now_ms();
	log_info("audit writer: sealed %s/%s (%s)", w->segdir, name, reason);
	/* Signed once the trail is unlocked (sign_due). */
	if (w->cfg->audit_sign_with != NULL &&
	    w->nunsigned < WRITER_MAX_UNSIGNED)
		(void)xstrlcpy(w->unsigned_[w->nunsigned++], name,
		    sizeof(w->unsigned_[0]));
	return 0;
}

/* 1 if the live trail holds nothing but its audit.open (or nothing). */
static int
live_fresh(struct writer *w, const struct audit_chain *ch)
{
	char ts[64], event[AUDIT_MAX_EVENT + 1];
	int64_t fseq;

	if (ch->seq == 0)
		return 1;
	if (ch->sealed || audit_first_record(w->fd, &fseq, ts, sizeof(ts),
	    event, sizeof(event)) == -1)
		return 0;
	return fseq == ch->seq && strcmp(event, "audit.open") == 0;
}

static void sign_due(struct writer *);

/*
 * Opens the live trail at start. Records there from before (the writer
 * stopped or was killed) are sealed into a segment (reason "restart"),
 * after a torn last record is saved aside and cut off (audit_torn_cut).
 * 0, or -1 if the trail cannot be opened.
 */
static int
writer_open_trail(struct writer *w)
{
	struct audit_rotation r;
	struct audit_chain ch;
	json_t *extra = NULL;
	off_t size;
	int torn;

	if ((w->fd = audit_file_open(w->path)) == -1 ||
	    audit_lock(w->fd, w->path) == -1)
		return -1;
	memset(&r, 0, sizeof(r));
	r.live = w->path;
	r.segdir = w->segdir;
	if ((torn = audit_torn_cut(&r, w->fd, &extra)) == -1 ||
	    audit_tail(w->fd, &ch, &size) == -1)
		log_warnx("audit writer: the last record of %s cannot be read, "
		    "so it is not sealed; run 'sluice audit verify %s'",
		    w->path, w->path);
	else if (ch.seq > 0 && (torn == 1 || !live_fresh(w, &ch)))
		(void)writer_rotate(w, "restart", extra, NULL);
	json_decref(extra);
	flock(w->fd, LOCK_UN);
	w->opened_ms = now_ms();
	sign_due(w);
	return 0;
}

/* Between groups: seals the live trail past segment_max or segment_age. */
static void
rotate_due(struct writer *w)
{
	struct audit_chain ch;
	struct stat st;
	off_t size;
	int bysize;

	if ((w->segmax == 0 && w->segage_ms == 0) || mono_ms() < w->rot_retry ||
	    fstat(w->fd, &st) == -1)
		return;
	bysize = w->segmax > 0 && st.st_size >= w->segmax;
	if (!bysize && (w->segage_ms == 0 ||
	    now_ms() - w->opened_ms < w->segage_ms))
		return;
	if (audit_lock(w->fd, w->path) == -1)
		return;
	if (audit_tail(w->fd, &ch, &size) == -1)
		w->rot_retry = mono_ms() + 60000;
	else if (live_fresh(w, &ch))
		w->opened_ms = now_ms();
	else if (writer_rotate(w, bysize ? "size" : "age", NULL, NULL) == -1)
		w->rot_retry = mono_ms() + 60000;
	flock(w->fd, LOCK_UN);
}

/* Appends one record of the writer's own; 0 or -1 (logged). */
static int
own_record(struct writer *w, const char *event, json_t *fields)
{
	struct audit_chain ch;
	char *line = NULL;
	off_t size;
	size_t len;
	int rc = -1;

	if (fields == NULL || audit_lock(w->fd, w->path) == -1)
		goto fail;
	if (audit_tail(w->fd, &ch, &size) == -1 ||
	    (line = audit_seal(w->key, w->host, &ch, event, fields, &len)) ==
	    NULL || write_all(w->fd, line, len) == -1 ||
	    fdatasync(w->fd) == -1)
		log_warn("audit writer: cannot record %s in %s", event, w->path);
	else {
		if (w->syslog)
			syslog(LOG_INFO | w->syslog, "%.*s", (int)len - 1, line);
		rc = 0;
	}
	flock(w->fd, LOCK_UN);
fail:
	free(line);
	json_decref(fields);
	return rc;
}

/*
 * Signs the sealed segment segdir/name: a detached armored signature over
 * the whole file written to <name>.sig beside it (temp, fsync, rename,
 * fsync of the directory). 0, or -1 with the reason in err.
 */
static int
sign_segment(struct writer *w, const char *name, char *err, size_t errlen)
{
	const struct config *cfg = w->cfg;
	struct pgp_signer_conf sc;
	struct stat st;
	char path[PATH_MAX], sig[PATH_MAX], *out = NULL;
	size_t len;
	int fd, rc = -1;

	if (xsnprintf(path, sizeof(path), "%s/%s", w->segdir, name) < 0 ||
	    xsnprintf(sig, sizeof(sig), "%s.sig", path) < 0) {
		xsnprintf(err, errlen, "%s/%s.sig: path too long", w->segdir,
		    name);
		return -1;
	}
	if (w->signer == NULL) {
		sc.what = "audit";
		sc.home = SPOOL_AUDIT_SIGNING;
		sc.sign_with = cfg->audit_sign_with;
		sc.keyring = cfg->audit_keyring;
		if ((w->signer = pgp_signer_open(cfg->state_dir, &sc)) == NULL) {
			xsnprintf(err, errlen, "the signing key cannot be used "
			    "(the log line before this one says why)");
			return -1;
		}
	}
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		xsnprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (pgp_sign_detached_fd(w->signer, fd, &out, &len, err, errlen) == 0) {
		if (write_file_atomic(sig, out, len, st.st_mode & 0640) == -1)
			xsnprintf(err, errlen, "cannot write %s: %s", sig,
			    strerror(errno));
		else
			rc = 0;
	}
	close(fd);
	free(out);
	if (rc == 0)
		log_info("audit writer: signed %s (%s.sig, key %s)", path, name,
		    cfg->audit_sign_with);
	else {
		/* The key or keyring may be fixed by the next seal. */
		pgp_signer_close(w->signer);
		w->signer = NULL;
	}
	return rc;
}

/*
 * Signs the segments sealed since the last call, with the trail unlocked.
 * A segment that cannot be signed stays sealed (the trail is never
 * blocked): the log says why and what to do, and an audit.seal_unsigned
 * record names it.
 */
static void
sign_due(struct writer *w)
{
	char err[512];
	int i;

	for (i = 0; i < w->nunsigned; i++) {
		if (sign_segment(w, w->unsigned_[i], err, sizeof(err)) == 0)
			continue;
		log_warnx("AUDIT SEGMENT NOT SIGNED: %s/%s is sealed (its HMAC "
		    "chain stands) but has no OpenPGP signature: %s. Check "
		    "audit.sign_with %s and audit.keyring %s (an armored "
		    "secret key without passphrase, mode 0600, owned by the "
		    "service user); the next seal tries again", w->segdir,
		    w->unsigned_[i], err, w->cfg->audit_sign_with,
		    w->cfg->audit_keyring ? w->cfg->audit_keyring : "(none)");
		(void)own_record(w, "audit.seal_unsigned", json_pack("{s:s,s:s,"
		    "s:s}", "segment", w->unsigned_[i], "sign_with",
		    w->cfg->audit_sign_with, "error", err));
	}
	w->nunsigned = 0;
}

/* An operator name from a ROTATE_KEY message, or "?" if it has none. */
static const char *
operator_name(const struct entry *e)
{
	json_t *op = json_object_get(e->msg, "operator");
	const char *s = json_is_string(op) ? json_string_value(op) : "";
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-");

	return n > 0 && n <= 64 && s[n] == '\0' ? s : "?";
}

/*
 * Keeps the key as audit.keys/<kid>.key beside it, puts a new key in its
 * place, seals the live segment with the old key (the next one starts with
 * the new key) and records audit.key_rotated. An AUDIT_* status.
 */
static uint32_t
key_rotate(struct writer *w, const struct entry *e)
{
	const char *kp = w->cfg->audit_key_path;
	char dir[PATH_MAX], keys[PATH_MAX], old[PATH_MAX], next[PATH_MAX];
	char oldkid[AUDIT_KID_HEX], *slash;
	struct audit_key *nk;

	if (w->key == NULL || kp == NULL) {
		log_warnx("audit writer: no audit key to rotate");
		return AUDIT_ERR_INVALID;
	}
	(void)xstrlcpy(oldkid, audit_key_id(w->key), sizeof(oldkid));
	if (xstrlcpy(dir, kp, sizeof(dir)) >= sizeof(dir) ||
	    (slash = strrchr(dir, '/')) == NULL)
		return AUDIT_ERR_INVALID;
	slash[slash == dir ? 1 : 0] = '\0';
	if (xsnprintf(keys, sizeof(keys), "%s/audit.keys", dir) < 0 ||
	    xsnprintf(old, sizeof(old), "%s/%s.key", keys, oldkid) < 0 ||
	    xsnprintf(next, sizeof(next), "%s.next", kp) < 0)
		return AUDIT_ERR_INVALID;
	if (mkdir_p(keys, 0700) == -1 ||
	    (link(kp, old) == -1 && errno != EEXIST) || fsync_dir(keys) == -1) {
		log_warn("audit writer: cannot keep the old key as %s; the key "
		    "was not rotated", old);
		return AUDIT_ERR_IO;
	}
	(void)unlink(next);
	if ((nk = audit_key_create(next)) == NULL)
		return AUDIT_ERR_IO;
	if (rename(next, kp) == -1) {
		log_warn("audit writer: cannot move %s to %s; the key was not "
		    "rotated", next, kp);
		(void)unlink(next);
		audit_key_free(nk);
		return AUDIT_ERR_IO;
	}
	(void)fsync_dir(dir);
	if (audit_lock(w->fd, w->path) == 0) {
		if (writer_rotate(w, "rotate-key", NULL, nk) == -1)
			log_warnx("audit writer: the key was rotated but %s was "
			    "not sealed", w->path);
		flock(w->fd, LOCK_UN);
	}
	audit_key_free(w->key);
	w->key = nk;
	log_info("audit writer: rotated the audit key: %s kept as %s, new key "
	    "id %s", oldkid, old, audit_key_id(nk));
	(void)own_record(w, "audit.key_rotated", json_pack("{s:s,s:s,s:s,s:I,"
	    "s:I,s:s}", "old_kid", oldkid, "new_kid", audit_key_id(nk),
	    "operator", operator_name(e), "uid", (json_int_t)e->c->uid, "pid",
	    (json_int_t)e->c->pid, "kept_as", old));
	return AUDIT_OK;
}

/* Sends every line of w->out to syslog (audit.syslog). */
static void
forward_lines(struct writer *w)
{
	const char *p = w->out, *end = w->out + w->outlen, *nl;

	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		syslog(LOG_INFO | w->syslog, "%.*s", (int)(nl - p), p);
	}
}

/*
 * The chain after this writer's last batch, if the live trail is still the
 * same file at the size that batch left (under the flock: any other
 * appender, a rotation or a cut changes one of them). 0, or -1: read it.
 */
static int
tail_kept(struct writer *w, struct audit_chain *ch, off_t *size)
{
	struct stat st;
	int ok = w->tail_ok;

	w->tail_ok = 0;		/* a batch that fails leaves it unknown */
	if (!ok || fstat(w->fd, &st) == -1 || st.st_size != w->tail_size ||
	    st.st_dev != w->tail_dev || st.st_ino != w->tail_ino)
		return -1;
	*ch = w->tail;
	*size = st.st_size;
	return 0;
}

/* After a durable batch: remember where the chain stands. */
static void
tail_keep(struct writer *w, const struct audit_chain *ch)
{
	struct stat st;

	if (fstat(w->fd, &st) == -1)
		return;
	w->tail = *ch;
	w->tail_size = st.st_size;
	w->tail_dev = st.st_dev;
	w->tail_ino = st.st_ino;
	w->tail_ok = 1;
}

/*
 * Appends the batch's records under one flock, one fdatasync. Sets each
 * record's status. -1 if the fdatasync failed (the writer must stop).
 */
static int
batch_append(struct writer *w)
{
	struct audit_chain ch;
	struct entry *e;
	char *line;
	off_t size;
	size_t i, len, nrec = 0;
	int rc = 0, ok = 0;

	for (i = 0; i < w->nbatch; i++)
		if (w->batch[i].type == AUDIT_MSG_RECORD &&
		    w->batch[i].status == AUDIT_OK)
			nrec++;
	if (nrec == 0)
		return 0;
	if (audit_lock(w->fd, w->path) == -1)
		goto fail;
	if (tail_kept(w, &ch, &size) == -1 &&
	    audit_tail(w->fd, &ch, &size) == -1) {
		log_warn("audit writer: cannot read the last record of %s; run "
		    "'sluice audit verify %s'", w->path, w->path);
		goto unlock;
	}
	/* A rotation that failed after its seal: finish it first. */
	if (ch.sealed && (writer_rotate(w, "restart", NULL, NULL) == -1 ||
	    audit_tail(w->fd, &ch, &size) == -1))
		goto unlock;
	w->outlen = 0;
	for (i = 0; i < w->nbatch; i++) {
		e = &w->batch[i];
		if (e->type != AUDIT_MSG_RECORD || e->status != AUDIT_OK)
			continue;
		line = audit_seal(w->key, w->host, &ch, e->event, e->fields,
		    &len);
		if (line == NULL) {
			e->status = AUDIT_ERR_INVALID;
			continue;
		}
		if (out_add(w, line, len) == -1) {
			free(line);
			log_warn("audit writer: memory");
			goto truncate;
		}
		free(line);
		/* Forwarded records are kept until they are durable. */
		if (!w->syslog && w->outlen >= WRITER_OUT_FLUSH) {
			if (write_all(w->fd, w->out, w->outlen) == -1)
				goto werr;
			w->outlen = 0;
		}
	}
	if (w->outlen > 0 && write_all(w->fd, w->out, w->outlen) == -1)
		goto werr;
	if (fdatasync(w->fd) == -1) {
		log_warn("audit writer: fdatasync %s; stopping: what was "
		    "written since the last good sync cannot be trusted", w->path);
		rc = -1;
		goto unlock;
	}
	if (w->syslog)
		forward_lines(w);
	w->outlen = 0;
	ok = 1;
	tail_keep(w, &ch);
	goto unlock;
werr:
	log_warn("audit writer: write %s", w->path);
truncate:
	/* Leave the trail as it was before this batch, not torn. */
	if (ftruncate(w->fd, size) == -1)
		log_warn("audit writer: cannot cut %s back after a failed "
		    "write; run 'sluice audit verify'", w->path);
unlock:
	flock(w->fd, LOCK_UN);
fail:
	if (!ok)
		for (i = 0; i < w->nbatch; i++)
			if (w->batch[i].type == AUDIT_MSG_RECORD &&
			    w->batch[i].status == AUDIT_OK)
				w->batch[i].status = AUDIT_ERR_IO;
	return rc;
}

/* Group commit: append the batch, ack in order, flush acks. */
static int
batch_commit(struct writer *w)
{
	struct entry *e;
	size_t i;
	int rc, j;

	if (w->nbatch == 0)
		return 0;
	rc = batch_append(w);
	for (i = 0; i < w->nbatch; i++) {
		e = &w->batch[i];
		if (e->c == NULL) {
			if (e->status != AUDIT_OK)
				log_warnx("audit writer: record %s not stored",
				    e->event);
		} else if (e->type == AUDIT_MSG_ROTATE_KEY) {
			if (e->status == AUDIT_OK)
				e->status = key_rotate(w, e);
			client_ack(e->c, e->status);
		} else if (e->type == AUDIT_MSG_SYNC) {
			client_ack(e->c, e->c->err ? AUDIT_ERR_EARLIER : AUDIT_OK);
			e->c->err = 0;
		} else if (e->flags & AUDIT_F_ACK)
			client_ack(e->c, e->status);
		else if (e->status != AUDIT_OK)
			e->c->err = 1;
		json_decref(e->msg);
	}
	w->nbatch = 0;
	w->batchbytes = 0;
	for (j = 0; j < w->nclients; j++)
		if (w->clients[j]->alen > 0)
			client_flush(w->clients[j]);
	return rc;
}

static void
clients_reap(struct writer *w)
{
	struct client *c;
	int j;

	for (j = 0; j < w->nclients;) {
		c = w->clients[j];
		if (!c->closing) {
			j++;
			continue;
		}
		close(c->fd);
		free(c);
		w->clients[j] = w->clients[--w->nclients];
	}
}

static void
clients_accept(struct writer *w)
{
	struct client *c;
	struct ucred cred;
	socklen_t len;
	int i, fd;

	for (i = 0; i < WRITER_ACCEPTS && w->nclients < WRITER_MAX_CLIENTS; i++) {
		fd = accept4(w->listenfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    mono_ms() - w->lastfull > 10000) {
				log_warn("audit writer: accept");
				w->lastfull = mono_ms();
			}
			return;
		}
		len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
		    len != sizeof(cred)) {
			log_warn("audit writer: SO_PEERCRED");
			close(fd);
			continue;
		}
		if (!(restrict_set && cred.uid == restrict_uid) &&
		    cred.uid != 0 && cred.uid != w->self) {
			log_warnx("audit writer: refused a connection from pid %ld "
			    "uid %u: only root, uid %u and the session user may "
			    "send records; check the permissions of the socket",
			    (long)cred.pid, (unsigned)cred.uid, (unsigned)w->self);
			close(fd);
			continue;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			log_warn("audit writer: memory");
			close(fd);
			return;
		}
		c->fd = fd;
		c->uid = cred.uid;
		c->pid = cred.pid;
		c->restricted = restrict_set && cred.uid == restrict_uid;
		w->clients[w->nclients++] = c;
	}
	if (w->nclients == WRITER_MAX_CLIENTS && mono_ms() - w->lastfull > 10000) {
		log_warnx("audit writer: %d clients connected, the most it "
		    "serves; new ones wait", WRITER_MAX_CLIENTS);
		w->lastfull = mono_ms();
	}
}

/* One round: poll, accept, read, commit. -1 if the writer must stop. */
static int
writer_round(struct writer *w, struct pollfd *pfd, int timeout)
{
	struct client *c;
	int j, n, nc;

	pfd[0].fd = w->listenfd;
	pfd[0].events = w->nclients < WRITER_MAX_CLIENTS ? POLLIN : 0;
	pfd[0].revents = 0;
	nc = w->nclients;
	for (j = 0; j < nc; j++) {
		c = w->clients[j];
		pfd[j + 1].fd = c->fd;
		pfd[j + 1].events = POLLIN | (c->alen > 0 ? POLLOUT : 0);
		pfd[j + 1].revents = 0;
	}
	if ((n = poll(pfd, (nfds_t)nc + 1, timeout)) == -1) {
		if (errno == EINTR)
			return 0;
		log_warn("audit writer: poll");
		return -1;
	}
	if (n == 0)
		return 0;
	/* Clients accepted now go to the end: pfd[1..nc] still match. */
	if (pfd[0].revents & POLLIN)
		clients_accept(w);
	for (j = 0; j < nc; j++) {
		c = w->clients[j];
		if (pfd[j + 1].revents & POLLOUT)
			client_flush(c);
		if (!(pfd[j + 1].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		client_read(w, c);
		if (batch_full(w) && batch_commit(w) == -1)
			return -1;
	}
	if (batch_commit(w) == -1)
		return -1;
	clients_reap(w);
	return 0;
}

/* Where segments go, the host id, the rotation limits, syslog. */
static int
writer_settings(struct writer *w, const struct config *cfg)
{
	char *slash;

	w->cfg = cfg;
	if (cfg->audit_segments_dir != NULL)
		(void)xstrlcpy(w->segdir, cfg->audit_segments_dir,
		    sizeof(w->segdir));
	else {
		(void)xstrlcpy(w->segdir, cfg->audit_path, sizeof(w->segdir));
		if ((slash = strrchr(w->segdir, '/')) != NULL)
			*slash = '\0';
		if (xstrlcat(w->segdir, "/segments", sizeof(w->segdir)) >=
		    sizeof(w->segdir)) {
			log_warnx("audit writer: %s: path too long", w->segdir);
			return -1;
		}
	}
	if (cfg->audit_host_id != NULL)
		(void)xstrlcpy(w->host, cfg->audit_host_id, sizeof(w->host));
	else
		audit_host_default(w->host);
	w->segmax = cfg->audit_segment_max;
	w->segage_ms = cfg->audit_segment_age_s * 1000;
	if ((w->syslog = cfg->audit_syslog) != 0)
		openlog("sluice-audit", LOG_PID | LOG_NDELAY, w->syslog);
	return 0;
}

int
audit_writer_run(const struct config *cfg, int listenfd)
{
	struct writer *w;
	struct sigaction sa;
	struct pollfd *pfd = NULL;
	int rc = -1, fl, j;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		log_warn("audit writer: memory");
		return -1;
	}
	w->fd = -1;
	if ((w->batch = calloc(WRITER_BATCH_RECS + WRITER_ROUND_MSGS,
	    sizeof(*w->batch))) == NULL ||
	    (w->in = malloc(AUDIT_MAX_LINE + 1)) == NULL ||
	    (pfd = calloc(WRITER_MAX_CLIENTS + 1, sizeof(*pfd))) == NULL) {
		log_warn("audit writer: memory");
		goto fail;
	}
	w->path = cfg->audit_path;
	w->listenfd = listenfd;
	w->self = geteuid();
	w->lastfull = -100000;
	if (restrict_set && restrict_uid == w->self) {
		log_warnx("audit writer: the session user (uid %u) is the "
		    "writer's own user, so session records cannot be told "
		    "apart and are not restricted; run sessions as a user of "
		    "their own", (unsigned)restrict_uid);
		restrict_set = 0;
	}
	if (cfg->audit_key_path == NULL)
		log_warnx("audit writer: no audit key configured; records "
		    "carry no MAC");
	else if ((w->key = audit_key_load(cfg->audit_key_path, 1)) == NULL) {
		if (errno != ENOENT ||
		    (w->key = audit_key_create(cfg->audit_key_path)) == NULL) {
			log_warnx("audit writer: no usable audit key at %s; "
			    "not starting", cfg->audit_key_path);
			goto fail;
		}
	}
	/* Before the trail: a stop asked while it is sealed waits for it. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = writer_sig;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	if (writer_settings(w, cfg) == -1 || writer_open_trail(w) == -1)
		goto fail;
	if ((fl = fcntl(listenfd, F_GETFL)) == -1 ||
	    fcntl(listenfd, F_SETFL, fl | O_NONBLOCK) == -1) {
		log_warn("audit writer: the listening socket");
		goto fail;
	}
	log_info("audit writer: appending to %s%s%s", w->path,
	    w->key ? ", MAC key id " : "", w->key ? audit_key_id(w->key) : "");
	while (!quitting()) {
		if (writer_round(w, pfd, 1000) == -1)
			goto fail;
		rotate_due(w);
		if (w->nunsigned > 0)
			sign_due(w);
	}
	/* Store and ack what clients sent before we were told to stop. */
	if (writer_round(w, pfd, 0) == -1)
		goto fail;
	if (w->nunsigned > 0)
		sign_due(w);
	rc = 0;
fail:
	for (j = 0; j < w->nclients; j++) {
		close(w->clients[j]->fd);
		free(w->clients[j]);
	}
	if (w->fd != -1)
		close(w->fd);
	audit_key_free(w->key);
	pgp_signer_close(w->signer);
	free(w->batch);
	free(w->in);
	free(w->out);
	free(w);
	free(pfd);
	return rc;
}
