#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "common/log.h"
#include "common/util.h"

static const char zero_hash[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/*
 * A line is PREFIX + ",\"hash\":\"" + 64 hex + "\"}" where the hash is the
 * SHA-256 of PREFIX (the record up to and including "prev"). Returns the
 * length of PREFIX and copies the stored hash to `stored`, or -1 if the line
 * does not end that way.
 */
static ssize_t
record_split(const char *line, size_t len, char stored[SHA256_HEX])
{
	static const char tag[] = ",\"hash\":\"";
	const size_t taglen = sizeof(tag) - 1, tail = taglen + 64 + 2;
	size_t i;

	if (len < tail + 2)
		return -1;
	if (memcmp(line + len - tail, tag, taglen) != 0 ||
	    memcmp(line + len - 2, "\"}", 2) != 0)
		return -1;
	for (i = 0; i < 64; i++) {
		char c = line[len - 66 + i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
		stored[i] = c;
	}
	stored[64] = '\0';
	return (ssize_t)(len - tail);
}

int
audit_event_ok(const char *event)
{
	size_t i;

	if (event == NULL || event[0] == '\0')
		return 0;
	for (i = 0; event[i] != '\0'; i++) {
		char c = event[i];

		if (i >= AUDIT_MAX_EVENT)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

const char *
audit_status_str(uint32_t status)
{
	switch (status) {
	case AUDIT_OK:
		return "stored";
	case AUDIT_ERR_IO:
		return "the writer could not write or sync the trail (see its log)";
	case AUDIT_ERR_REFUSED:
		return "refused: this process may not record that event";
	case AUDIT_ERR_INVALID:
		return "the record cannot be stored (too long)";
	case AUDIT_ERR_EARLIER:
		return "an earlier deferred record was not stored";
	default:
		return "unknown status from the writer";
	}
}

int
audit_file_open(const char *path)
{
	char dir[PATH_MAX], *slash;
	int fd;

	if (xstrlcpy(dir, path, sizeof(dir)) >= sizeof(dir)) {
		log_warnx("audit: path too long: %s", path);
		return -1;
	}
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir_p(dir, 0750) == -1) {
			log_warn("audit: cannot create directory %s", dir);
			return -1;
		}
	}
	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd == -1)
		log_warn("audit: cannot open %s", path);
	return fd;
}

int
audit_lock(int fd, const char *path)
{
	while (flock(fd, LOCK_EX) == -1) {
		if (errno != EINTR) {
			log_warn("audit: flock %s", path);
			return -1;
		}
	}
	return 0;
}

/*
 * Finds the last line of the file (without its newline) and its sequence
 * number. Reads backwards in blocks; a line is at most AUDIT_MAX_LINE.
 */
int
audit_tail(int fd, char prev[SHA256_HEX], int64_t *seq, off_t *size)
{
	struct stat st;
	char *buf = NULL, *line;
	off_t end, start, win;
	size_t len;
	ssize_t n;
	json_t *rec = NULL;
	json_error_t jerr;
	int rc = -1;

	if (fstat(fd, &st) == -1)
		return -1;
	*size = st.st_size;
	if (st.st_size == 0) {
		memcpy(prev, zero_hash, SHA256_HEX);
		*seq = 0;
		return 0;
	}
	end = st.st_size;
	/* Most records are well under 8 KiB: look there first. */
	for (win = 8192;; win = AUDIT_MAX_LINE + 1) {
		start = end > win ? end - win : 0;
		len = (size_t)(end - start);
		free(buf);
		if ((buf = malloc(len + 1)) == NULL)
			return -1;
		n = pread(fd, buf, len, start);
		if (n < 0 || (size_t)n != len)
			goto fail;
		buf[len] = '\0';
		if (buf[len - 1] != '\n') {
			log_warnx("audit: the trail does not end with a newline "
			    "(a torn write?); run 'sluice audit verify'");
			errno = EINVAL;
			goto fail;
		}
		buf[--len] = '\0';
		line = memrchr(buf, '\n', len);
		line = line ? line + 1 : buf;
		if (line != buf || start == 0)
			break;		/* the whole last line is in buf */
		if (win == AUDIT_MAX_LINE + 1)
			goto fail;
	}
	if (record_split(line, strlen(line), prev) == -1)
		goto fail;
	if ((rec = json_loads(line, 0, &jerr)) == NULL ||
	    !json_is_integer(json_object_get(rec, "seq")))
		goto fail;
	*seq = json_integer_value(json_object_get(rec, "seq"));
	rc = 0;
fail:
	json_decref(rec);
	free(buf);
	return rc;
}

char *
audit_seal(int64_t seq, const char *event, json_t *fields,
    const char prev[SHA256_HEX], char hash[SHA256_HEX], size_t *lenp)
{
	json_t *rec, *v;
	char ts[40], *line = NULL, *full = NULL;
	uint8_t h[SHA256_LEN];
	const char *k;
	size_t len;

	iso8601_ms(now_ms(), ts, sizeof(ts));
	if ((rec = json_object()) == NULL)
		return NULL;
	json_object_set_new(rec, "seq", json_integer(seq));
	json_object_set_new(rec, "ts", json_string(ts));
	json_object_set_new(rec, "event", json_string(event));
	if (json_is_object(fields)) {
		json_object_foreach(fields, k, v) {
			if (strcmp(k, "seq") == 0 || strcmp(k, "ts") == 0 ||
			    strcmp(k, "event") == 0 || strcmp(k, "prev") == 0 ||
			    strcmp(k, "hash") == 0)
				continue;
			json_object_set(rec, k, v);
		}
	}
	json_object_set_new(rec, "prev", json_string(prev));
	line = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_ENSURE_ASCII);
	if (line == NULL)
		goto fail;
	len = strlen(line);
	if (len + 80 >= AUDIT_MAX_LINE) {
		log_warnx("audit: record for %s too long (%zu bytes)", event, len);
		goto fail;
	}
	/* Seal the record: drop the closing brace, append its own hash. */
	line[--len] = '\0';
	if (sha256_buf(line, len, h) != 0)
		goto fail;
	hex_encode(h, sizeof(h), hash);
	if (asprintf(&full, "%s,\"hash\":\"%s\"}\n", line, hash) == -1) {
		full = NULL;
		goto fail;
	}
	*lenp = strlen(full);
fail:
	free(line);
	json_decref(rec);
	return full;
}

enum audit_mode { AUDIT_FILE, AUDIT_CLIENT };

struct audit {
	enum audit_mode	 mode;
	char		*path;		/* the trail, or the writer's socket */
	int		 fd;		/* the trail, or the socket (-1: lost) */
	int		 deferred;	/* audit_defer: no fdatasync/ack per record */
	int		 dirty;		/* file: written since the last fdatasync;
					   client: deferred records sent since
					   the last SYNC */
	int		 lost;		/* client: deferred records were sent on a
					   connection that broke before SYNC */
};

struct audit *
audit_open(const char *path)
{
	struct audit *a;

	if ((a = calloc(1, sizeof(*a))) == NULL || (a->path = strdup(path)) == NULL) {
		log_warn("audit: cannot open %s", path);
		free(a);
		return NULL;
	}
	a->mode = AUDIT_FILE;
	if ((a->fd = audit_file_open(path)) == -1) {
		free(a->path);
		free(a);
		return NULL;
	}
	return a;
}

static int
sun_fill(struct sockaddr_un *sun, const char *sockpath)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (xstrlcpy(sun->sun_path, sockpath, sizeof(sun->sun_path)) >=
	    sizeof(sun->sun_path)) {
		log_warnx("audit: socket path %s is %zu bytes, longer than the "
		    "%zu an AF_UNIX address holds; use a shorter state_dir",
		    sockpath, strlen(sockpath), sizeof(sun->sun_path) - 1);
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* A connected socket to the writer, or -1 (logged unless quiet). */
static int
client_dial(const char *sockpath, int quiet)
{
	struct sockaddr_un sun;
	struct timeval tv = { AUDIT_TIMEOUT_MS / 1000,
	    (AUDIT_TIMEOUT_MS % 1000) * 1000 };
	int fd, saved;

	if (sun_fill(&sun, sockpath) == -1)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1) {
		if (!quiet)
			log_warn("audit: socket");
		return -1;
	}
	/* Bounds connect (a full backlog) and send (a busy writer). */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		saved = errno;
		if (!quiet)
			log_warn("audit: cannot connect to the audit writer at %s "
			    "(is the audit-writer role running?)", sockpath);
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static struct audit *
client_open(const char *sockpath, int quiet)
{
	struct audit *a;

	if ((a = calloc(1, sizeof(*a))) == NULL || (a->path = strdup(sockpath)) == NULL) {
		log_warn("audit: connect %s", sockpath);
		free(a);
		return NULL;
	}
	a->mode = AUDIT_CLIENT;
	if ((a->fd = client_dial(sockpath, quiet)) == -1) {
		free(a->path);
		free(a);
		return NULL;
	}
	return a;
}

struct audit *
audit_connect(const char *sockpath)
{
	return client_open(sockpath, 0);
}

struct audit *
audit_open_any(const char *path, const char *sockpath)
{
	struct audit *a;

	if (sockpath != NULL) {
		if ((a = client_open(sockpath, 1)) != NULL)
			return a;
		log_debug("audit: no writer at %s (%s); appending to %s "
		    "directly", sockpath, strerror(errno), path);
	}
	return audit_open(path);
}

/* The connection broke or lost step: forget it; the next call dials again. */
static void
client_drop(struct audit *a)
{
	if (a->fd != -1)
		close(a->fd);
	a->fd = -1;
	if (a->dirty)
		a->lost = 1;
	a->dirty = 0;
}

static int
client_send(struct audit *a, const void *msg, size_t len)
{
	ssize_t n;

	if (a->fd == -1 && (a->fd = client_dial(a->path, 0)) == -1)
		return -1;
	do
		n = send(a->fd, msg, len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1 || (size_t)n != len) {
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			log_warnx("audit: the audit writer at %s did not take a "
			    "record within %d s", a->path, AUDIT_TIMEOUT_MS / 1000);
		else if (n == -1 && (errno == EPIPE || errno == ECONNRESET))
			log_warnx("audit: the audit writer at %s went away (was "
			    "it restarted?); the next record connects again",
			    a->path);
		else
			log_warn("audit: send to the audit writer at %s", a->path);
		client_drop(a);
		return -1;
	}
	return 0;
}

/* Waits for the one ack due: 0 with *status, or -1 (logged). */
static int
client_wait(struct audit *a, uint32_t *status)
{
	struct audit_reply r;
	struct pollfd pfd;
	int64_t deadline = mono_ms() + AUDIT_TIMEOUT_MS, left;
	ssize_t n;

	for (;;) {
		if ((left = deadline - mono_ms()) <= 0) {
			log_warnx("audit: the audit writer at %s did not answer "
			    "within %d s", a->path, AUDIT_TIMEOUT_MS / 1000);
			goto fail;
		}
		pfd.fd = a->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)left) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("audit: poll");
			goto fail;
		}
		if (pfd.revents == 0)
			continue;
		n = recv(a->fd, &r, sizeof(r), MSG_DONTWAIT);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == -1) {
			log_warn("audit: receive from the audit writer at %s",
			    a->path);
			goto fail;
		}
		if (n != sizeof(r)) {
			log_warnx("audit: the audit writer at %s closed the "
			    "connection%s", a->path, n == 0 ? "" : " (bad reply)");
			goto fail;
		}
		*status = r.status;
		return 0;
	}
fail:
	client_drop(a);
	return -1;
}

static int
client_emit(struct audit *a, const char *event, json_t *fields)
{
	struct audit_msg h;
	json_t *body;
	char *text = NULL, *msg = NULL;
	size_t tlen;
	uint32_t status;
	int rc = -1;

	body = json_pack("{s:s,s:O?}", "event", event, "fields",
	    json_is_object(fields) ? fields : NULL);
	if (body == NULL || (text = json_dumps(body, JSON_COMPACT |
	    JSON_PRESERVE_ORDER)) == NULL) {
		log_warnx("audit: cannot encode record %s", event);
		goto fail;
	}
	tlen = strlen(text);
	if (tlen + sizeof(h) > AUDIT_MAX_LINE) {
		log_warnx("audit: record for %s too long (%zu bytes)", event, tlen);
		goto fail;
	}
	if ((msg = malloc(sizeof(h) + tlen)) == NULL)
		goto fail;
	h.type = AUDIT_MSG_RECORD;
	h.flags = a->deferred ? 0 : AUDIT_F_ACK;
	memcpy(msg, &h, sizeof(h));
	memcpy(msg + sizeof(h), text, tlen);
	if (client_send(a, msg, sizeof(h) + tlen) == -1) {
		if (a->deferred)
			a->lost = 1;
		goto fail;
	}
	if (a->deferred) {
		a->dirty = 1;
		rc = 0;
		goto fail;
	}
	if (client_wait(a, &status) == -1)
		goto fail;
	if (status != AUDIT_OK) {
		log_warnx("audit: record %s: %s", event, audit_status_str(status));
		goto fail;
	}
	rc = 0;
fail:
	free(msg);
	free(text);
	json_decref(body);
	return rc;
}

static int
client_sync(struct audit *a)
{
	struct audit_msg h = { AUDIT_MSG_SYNC, 0 };
	uint32_t status;

	if (a->lost) {
		log_warnx("audit: the connection to the audit writer at %s "
		    "broke with deferred records unconfirmed", a->path);
		a->lost = 0;
		a->dirty = 0;
		return -1;
	}
	if (!a->dirty)
		return 0;
	if (client_send(a, &h, sizeof(h)) == -1 || client_wait(a, &status) == -1) {
		a->lost = 0;
		return -1;
	}
	a->dirty = 0;
	if (status != AUDIT_OK) {
		log_warnx("audit: deferred records: %s", audit_status_str(status));
		return -1;
	}
	return 0;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	if (a->dirty || a->lost)
		(void)audit_sync(a);
	if (a->fd != -1)
		close(a->fd);
	free(a->path);
	free(a);
}

int
audit_emit(struct audit *a, const char *event, json_t *fields)
{
	char prev[SHA256_HEX], hash[SHA256_HEX], *full = NULL;
	int64_t seq;
	off_t size;
	size_t len;
	ssize_t n;
	int rc = -1, locked = 0;

	if (a == NULL)
		goto fail;
	if (!audit_event_ok(event)) {
		log_warnx("audit: bad event name \"%.64s\" (want 1-%d characters "
		    "of A-Z a-z 0-9 . _ -)", event ? event : "", AUDIT_MAX_EVENT);
		goto fail;
	}
	if (a->mode == AUDIT_CLIENT) {
		rc = client_emit(a, event, fields);
		goto fail;
	}
	if (audit_lock(a->fd, a->path) == -1)
		goto fail;
	locked = 1;
	if (audit_tail(a->fd, prev, &seq, &size) == -1) {
		log_warn("audit: cannot read the last record of %s", a->path);
		goto fail;
	}
	if ((full = audit_seal(seq + 1, event, fields, prev, hash, &len)) == NULL)
		goto fail;
	n = write(a->fd, full, len);
	if (n < 0 || (size_t)n != len) {
		log_warn("audit: write %s", a->path);
		/* Leave no torn line behind for the next writer to refuse. */
		if (n > 0 && ftruncate(a->fd, size) == -1)
			log_warn("audit: cannot cut %s back after a failed "
			    "write; run 'sluice audit verify'", a->path);
		goto fail;
	}
	if (a->deferred)
		a->dirty = 1;
	else if (fdatasync(a->fd) == -1) {
		log_warn("audit: fdatasync %s", a->path);
		goto fail;
	}
	rc = 0;
fail:
	if (locked)
		flock(a->fd, LOCK_UN);
	free(full);
	json_decref(fields);
	return rc;
}

void
audit_defer(struct audit *a)
{
	if (a != NULL)
		a->deferred = 1;
}

int
audit_sync(struct audit *a)
{
	if (a == NULL)
		return -1;
	a->deferred = 0;
	if (a->mode == AUDIT_CLIENT)
		return client_sync(a);
	if (!a->dirty)
		return 0;
	if (fdatasync(a->fd) == -1) {
		log_warn("audit: fdatasync %s", a->path);
		return -1;
	}
	a->dirty = 0;
	return 0;
}

int
audit_listen(const char *sockpath, uid_t owner, gid_t group, mode_t mode)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd = -1;

	if (sun_fill(&sun, sockpath) == -1)
		return -1;
	if (lstat(sockpath, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_warnx("audit: %s exists and is not a socket; move it "
			    "away so the audit writer can listen there", sockpath);
			return -1;
		}
		if (unlink(sockpath) == -1) {
			log_warn("audit: cannot remove the stale socket %s",
			    sockpath);
			return -1;
		}
	} else if (errno != ENOENT) {
		log_warn("audit: %s", sockpath);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("audit: socket");
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		log_warn("audit: cannot bind the audit socket %s", sockpath);
		goto fail;
	}
	if ((owner != (uid_t)-1 || group != (gid_t)-1) &&
	    lchown(sockpath, owner, group) == -1) {
		log_warn("audit: chown %s", sockpath);
		goto fail_unlink;
	}
	if (chmod(sockpath, mode) == -1) {
		log_warn("audit: chmod %s", sockpath);
		goto fail_unlink;
	}
	if (listen(fd, SOMAXCONN) == -1) {
		log_warn("audit: listen on %s", sockpath);
		goto fail_unlink;
	}
	return fd;
fail_unlink:
	(void)unlink(sockpath);
fail:
	close(fd);
	return -1;
}

int
audit_verify(const char *path, FILE *out)
{
	FILE *f;
	char *line = NULL, prev[SHA256_HEX], stored[SHA256_HEX], hex[SHA256_HEX];
	size_t cap = 0;
	ssize_t n, plen;
	int64_t lineno = 0, seq;
	uint8_t h[SHA256_LEN];
	json_t *rec, *p;
	json_error_t jerr;
	int rc = 1;

	if ((f = fopen(path, "r")) == NULL) {
		fprintf(out, "%s: %s\n", path, strerror(errno));
		return 2;
	}
	memcpy(prev, zero_hash, SHA256_HEX);
	while ((n = getline(&line, &cap, f)) != -1) {
		lineno++;
		if (n == 0 || line[n - 1] != '\n') {
			fprintf(out, "%s:%lld: record is not terminated by a "
			    "newline (torn write or truncation)\n", path,
			    (long long)lineno);
			goto done;
		}
		line[--n] = '\0';
		if ((size_t)n != strlen(line)) {
			fprintf(out, "%s:%lld: record contains a NUL byte\n",
			    path, (long long)lineno);
			goto done;
		}
		if ((plen = record_split(line, (size_t)n, stored)) == -1) {
			fprintf(out, "%s:%lld: record has no \"hash\" seal at "
			    "its end\n", path, (long long)lineno);
			goto done;
		}
		if (sha256_buf(line, (size_t)plen, h) != 0)
			goto done;
		hex_encode(h, sizeof(h), hex);
		if (strcmp(hex, stored) != 0) {
			fprintf(out, "%s:%lld: record was altered: its content "
			    "does not match its \"hash\"\n", path,
			    (long long)lineno);
			goto done;
		}
		if ((rec = json_loads(line, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
			fprintf(out, "%s:%lld: not a JSON record: %s\n", path,
			    (long long)lineno, jerr.text);
			goto done;
		}
		p = json_object_get(rec, "prev");
		seq = json_integer_value(json_object_get(rec, "seq"));
		if (!json_is_string(p) || strcmp(json_string_value(p), prev) != 0) {
			fprintf(out, "%s:%lld: chain broken: \"prev\" does not "
			    "match the hash of the record before it (a record was "
			    "removed, inserted or reordered)\n", path,
			    (long long)lineno);
			json_decref(rec);
			goto done;
		}
		if (seq != lineno) {
			fprintf(out, "%s:%lld: sequence number %lld, expected "
			    "%lld\n", path, (long long)lineno, (long long)seq,
			    (long long)lineno);
			json_decref(rec);
			goto done;
		}
		json_decref(rec);
		memcpy(prev, stored, SHA256_HEX);
	}
	if (ferror(f)) {
		fprintf(out, "%s: read error: %s\n", path, strerror(errno));
		rc = 2;
		goto done;
	}
	fprintf(out, "%s: %lld records, chain intact, last hash %s\n", path,
	    (long long)lineno, prev);
	rc = 0;
done:
	free(line);
	fclose(f);
	return rc;
}
