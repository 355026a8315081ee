#include "audit/audit.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

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
#include <time.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "common/log.h"
#include "common/util.h"

static const char zero_hash[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* 1 if p holds 64 lower-case hex digits. */
static int
hex64(const char *p)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return 1;
}

void
audit_hex_decode32(const char *hex, uint8_t out[SHA256_LEN])
{
	size_t i;
	int hi, lo;

	for (i = 0; i < SHA256_LEN; i++) {
		hi = hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10;
		lo = hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' :
		    hex[2 * i + 1] - 'a' + 10;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
}

/*
 * A line is PREFIX + ',"hash":"' + 64 hex + '"}', or, keyed, PREFIX +
 * ',"hash":"' + 64 hex + '","mac":"' + 64 hex + '"}' (audit.h). Returns the
 * length of PREFIX, copies the stored hash to `stored` and the MAC (or "")
 * to `mac`, or -1 if the line does not end either way.
 */
ssize_t
audit_record_split(const char *line, size_t len, char stored[SHA256_HEX],
    char mac[SHA256_HEX])
{
	static const char htag[] = ",\"hash\":\"", mtag[] = "\",\"mac\":\"";
	const size_t hl = sizeof(htag) - 1, ml = sizeof(mtag) - 1;
	const size_t keyed = hl + 64 + ml + 64 + 2, plain = hl + 64 + 2;

	mac[0] = '\0';
	if (len < plain + 2 || memcmp(line + len - 2, "\"}", 2) != 0)
		return -1;
	if (len >= keyed + 2 &&
	    memcmp(line + len - 2 - 64 - ml, mtag, ml) == 0 &&
	    memcmp(line + len - keyed, htag, hl) == 0) {
		if (!hex64(line + len - 2 - 64) ||
		    !hex64(line + len - keyed + hl))
			return -1;
		memcpy(stored, line + len - keyed + hl, 64);
		stored[64] = '\0';
		memcpy(mac, line + len - 2 - 64, 64);
		mac[64] = '\0';
		return (ssize_t)(len - keyed);
	}
	if (memcmp(line + len - plain, htag, hl) != 0 ||
	    !hex64(line + len - 2 - 64))
		return -1;
	memcpy(stored, line + len - 2 - 64, 64);
	stored[64] = '\0';
	return (ssize_t)(len - plain);
}

int
audit_mac(const struct audit_key *k, const uint8_t prevmac[SHA256_LEN],
    const char *data, size_t len, uint8_t out[SHA256_LEN])
{
	EVP_MAC_CTX *ctx;
	OSSL_PARAM params[2];
	size_t outlen = 0;
	int rc = -1;

	if ((ctx = EVP_MAC_CTX_new(k->mac)) == NULL)
		return -1;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, k->key, sizeof(k->key), params) != 1 ||
	    EVP_MAC_update(ctx, prevmac, SHA256_LEN) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)data, len) != 1 ||
	    EVP_MAC_final(ctx, out, &outlen, SHA256_LEN) != 1 ||
	    outlen != SHA256_LEN)
		goto fail;
	rc = 0;
fail:
	EVP_MAC_CTX_free(ctx);
	return rc;
}

static struct audit_key *
key_new(const uint8_t bytes[AUDIT_KEY_LEN])
{
	struct audit_key *k;
	uint8_t h[SHA256_LEN];
	char hex[SHA256_HEX];

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	memcpy(k->key, bytes, AUDIT_KEY_LEN);
	if (sha256_buf(k->key, sizeof(k->key), h) != 0 ||
	    (k->mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL) {
		audit_key_free(k);
		return NULL;
	}
	hex_encode(h, sizeof(h), hex);
	memcpy(k->kid, hex, AUDIT_KID_HEX - 1);
	k->kid[AUDIT_KID_HEX - 1] = '\0';
	return k;
}

void
audit_key_free(struct audit_key *k)
{
	if (k == NULL)
		return;
	EVP_MAC_free(k->mac);
	explicit_bzero(k, sizeof(*k));
	free(k);
}

const char *
audit_key_id(const struct audit_key *k)
{
	return k->kid;
}

struct audit_key *
audit_key_load(const char *path, int must_own)
{
	struct audit_key *k = NULL;
	struct stat st;
	uint8_t buf[AUDIT_KEY_LEN + 1];
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno != ENOENT)
			log_warn("audit: cannot read the audit key %s", path);
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		log_warn("audit: %s", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		log_warnx("audit: the audit key %s is not a regular file",
		    path);
		goto inval;
	}
	if (st.st_mode & 077) {
		log_warnx("audit: the audit key %s may be read or written by "
		    "group or others (mode %04o); anyone who reads it can "
		    "forge the trail: chmod 0400 %s (and check who copied it)",
		    path, (unsigned)(st.st_mode & 07777), path);
		goto inval;
	}
	if (must_own && st.st_uid != geteuid()) {
		log_warnx("audit: the audit key %s is owned by uid %u, not by "
		    "the audit writer's uid %u; chown it to the service user",
		    path, (unsigned)st.st_uid, (unsigned)geteuid());
		goto inval;
	}
	do
		n = pread(fd, buf, sizeof(buf), 0);
	while (n == -1 && errno == EINTR);
	if (n == -1) {
		log_warn("audit: cannot read the audit key %s", path);
		goto fail;
	}
	if (n != AUDIT_KEY_LEN) {
		log_warnx("audit: the audit key %s holds %zd bytes, not %d; "
		    "restore it from its backup", path, n, AUDIT_KEY_LEN);
		goto inval;
	}
	if ((k = key_new(buf)) == NULL)
		log_warnx("audit: cannot set up HMAC-SHA256 for the key %s",
		    path);
	goto fail;
inval:
	errno = EINVAL;
fail:
	saved = errno;
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	if (k == NULL)
		errno = saved == ENOENT ? EINVAL : saved;
	return k;
}

struct audit_key *
audit_key_create(const char *path)
{
	char tmp[PATH_MAX], dir[PATH_MAX], *slash;
	uint8_t buf[AUDIT_KEY_LEN];
	struct audit_key *k = NULL;
	int fd = -1, linked = 0;

	if (xsnprintf(tmp, sizeof(tmp), "%s.new.%ld", path, (long)getpid()) < 0 ||
	    xstrlcpy(dir, path, sizeof(dir)) >= sizeof(dir)) {
		log_warnx("audit: key path too long: %s", path);
		return NULL;
	}
	if (random_bytes(buf, sizeof(buf)) == -1) {
		log_warn("audit: no random bytes for a new audit key");
		goto fail;
	}
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
	if (fd == -1 || fchmod(fd, 0400) == -1 ||
	    write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
	    fsync(fd) == -1) {
		log_warn("audit: cannot write a new audit key %s", tmp);
		goto fail;
	}
	/* link(2) never replaces: a key someone else made wins. */
	if (link(tmp, path) == -1 && errno != EEXIST) {
		log_warn("audit: cannot create the audit key %s", path);
		goto fail;
	}
	linked = 1;
	if ((slash = strrchr(dir, '/')) != NULL) {
		slash[slash == dir ? 1 : 0] = '\0';
		if (fsync_dir(dir) == -1)
			log_warn("audit: fsync %s", dir);
	}
fail:
	if (fd != -1) {
		close(fd);
		(void)unlink(tmp);
	}
	explicit_bzero(buf, sizeof(buf));
	if (linked && (k = audit_key_load(path, 1)) != NULL)
		log_info("audit: created the audit key %s (key id %s); back it "
		    "up somewhere safe: 'sluice audit verify --key' needs it",
		    path, k->kid);
	return k;
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
audit_tail(int fd, struct audit_chain *ch, off_t *size)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		return -1;
	*size = st.st_size;
	return audit_tail_at(fd, st.st_size, ch);
}

int
audit_tail_at(int fd, off_t end, struct audit_chain *ch)
{
	char *buf = NULL, *line, mac[SHA256_HEX];
	off_t start, win;
	size_t len;
	ssize_t n;
	json_t *rec = NULL;
	json_error_t jerr;
	int rc = -1;

	memset(ch, 0, sizeof(*ch));
	memcpy(ch->prev, zero_hash, SHA256_HEX);
	if (end == 0)
		return 0;
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
	if (audit_record_split(line, strlen(line), ch->prev, mac) == -1)
		goto fail;
	if ((rec = json_loads(line, 0, &jerr)) == NULL ||
	    !json_is_integer(json_object_get(rec, "seq")))
		goto fail;
	ch->seq = json_integer_value(json_object_get(rec, "seq"));
	ch->sealed = json_is_string(json_object_get(rec, "event")) &&
	    strcmp(json_string_value(json_object_get(rec, "event")),
	    "audit.seal") == 0;
	if (mac[0] != '\0') {
		ch->keyed = 1;
		audit_hex_decode32(mac, ch->mac);
	}
	rc = 0;
fail:
	json_decref(rec);
	free(buf);
	return rc;
}

void
audit_ts_now(char *buf, size_t len)
{
	struct timespec tv;
	struct tm tm;
	char day[32];

	clock_gettime(CLOCK_REALTIME, &tv);
	gmtime_r(&tv.tv_sec, &tm);
	if (strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		day[0] = '\0';
	(void)xsnprintf(buf, len, "%s.%06ldZ", day, tv.tv_nsec / 1000);
}

void
audit_host_default(char out[AUDIT_HOST_MAX + 1])
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
	char host[256];
	size_t i;

	if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0')
		(void)xstrlcpy(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] != '\0' && i < AUDIT_HOST_MAX; i++)
		out[i] = strchr(ok, host[i]) != NULL ? host[i] : '-';
	out[i] = '\0';
}

char *
audit_seal(const struct audit_key *key, const char *host,
    struct audit_chain *ch, const char *event, json_t *fields, size_t *lenp)
{
	json_t *rec, *v;
	char ts[40], hash[SHA256_HEX], machex[SHA256_HEX];
	char *line = NULL, *full = NULL, hbuf[AUDIT_HOST_MAX + 1];
	uint8_t h[SHA256_LEN], m[SHA256_LEN];
	const char *k;
	size_t len;

	audit_ts_now(ts, sizeof(ts));
	if (host == NULL) {
		audit_host_default(hbuf);
		host = hbuf;
	}
	if ((rec = json_object()) == NULL)
		return NULL;
	json_object_set_new(rec, "seq", json_integer(ch->seq + 1));
	json_object_set_new(rec, "ts", json_string(ts));
	json_object_set_new(rec, "host", json_string(host));
	json_object_set_new(rec, "event", json_string(event));
	if (json_is_object(fields)) {
		json_object_foreach(fields, k, v) {
			if (strcmp(k, "seq") == 0 || strcmp(k, "ts") == 0 ||
			    strcmp(k, "host") == 0 ||
			    strcmp(k, "event") == 0 || strcmp(k, "prev") == 0 ||
			    strcmp(k, "kid") == 0 || strcmp(k, "hash") == 0 ||
			    strcmp(k, "mac") == 0)
				continue;
			json_object_set(rec, k, v);
		}
	}
	json_object_set_new(rec, "prev", json_string(ch->prev));
	if (key != NULL)
		json_object_set_new(rec, "kid", json_string(key->kid));
	line = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_ENSURE_ASCII);
	if (line == NULL)
		goto fail;
	len = strlen(line);
	if (len + 160 >= AUDIT_MAX_LINE) {
		log_warnx("audit: record for %s too long (%zu bytes)", event, len);
		goto fail;
	}
	/* Seal the record: drop the closing brace, append its own hash. */
	line[--len] = '\0';
	if (sha256_buf(line, len, h) != 0)
		goto fail;
	hex_encode(h, sizeof(h), hash);
	if (key != NULL) {
		if (audit_mac(key, ch->mac, line, len, m) != 0)
			goto fail;
		hex_encode(m, sizeof(m), machex);
		if (asprintf(&full, "%s,\"hash\":\"%s\",\"mac\":\"%s\"}\n",
		    line, hash, machex) == -1) {
			full = NULL;
			goto fail;
		}
		memcpy(ch->mac, m, SHA256_LEN);
		ch->keyed = 1;
	} else if (asprintf(&full, "%s,\"hash\":\"%s\"}\n", line, hash) == -1) {
		full = NULL;
		goto fail;
	} else
		ch->keyed = 0;
	memcpy(ch->prev, hash, SHA256_HEX);
	ch->seq++;
	ch->sealed = strcmp(event, "audit.seal") == 0;
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
	struct audit_key *key;		/* file: owned; NULL: no key */
	char		*keypath;	/* file: where the key is (for messages) */
	char		*host;		/* file: owned; NULL: gethostname() */
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

int
audit_set_key(struct audit *a, const char *keypath)
{
	if (a == NULL || a->mode != AUDIT_FILE || keypath == NULL)
		return 0;
	free(a->keypath);
	audit_key_free(a->key);
	a->key = NULL;
	if ((a->keypath = strdup(keypath)) == NULL)
		return -1;
	if ((a->key = audit_key_load(keypath, 0)) == NULL) {
		if (errno == ENOENT)
			log_debug("audit: no audit key at %s yet", keypath);
		return -1;
	}
	return 0;
}

int
audit_set_host(struct audit *a, const char *host)
{
	if (a == NULL || a->mode != AUDIT_FILE || host == NULL)
		return 0;
	free(a->host);
	if ((a->host = strdup(host)) == NULL)
		return -1;
	return 0;
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
	audit_key_free(a->key);
	free(a->keypath);
	free(a->host);
	free(a->path);
	free(a);
}

/*
 * Locks the live trail. The writer may have sealed the file this handle
 * opened and moved it to the segments directory since: then the path names
 * a new file, and the handle reopens it (a sealed segment is never
 * appended to). 0 or -1 (logged).
 */
static int
file_lock_live(struct audit *a)
{
	struct stat fst, pst;
	int i, fd;

	for (i = 0; i < 8; i++) {
		if (audit_lock(a->fd, a->path) == -1)
			return -1;
		if (fstat(a->fd, &fst) == -1) {
			log_warn("audit: %s", a->path);
			break;
		}
		if (stat(a->path, &pst) == 0 && pst.st_dev == fst.st_dev &&
		    pst.st_ino == fst.st_ino)
			return 0;
		flock(a->fd, LOCK_UN);
		if (a->dirty && fdatasync(a->fd) == -1) {
			log_warn("audit: fdatasync %s", a->path);
			return -1;
		}
		a->dirty = 0;
		if ((fd = audit_file_open(a->path)) == -1)
			return -1;
		close(a->fd);
		a->fd = fd;
	}
	flock(a->fd, LOCK_UN);
	log_warnx("audit: %s keeps changing under this process; is another "
	    "program moving it?", a->path);
	return -1;
}

int
audit_emit(struct audit *a, const char *event, json_t *fields)
{
	struct audit_chain ch;
	char *full = NULL;
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
	if (file_lock_live(a) == -1)
		goto fail;
	locked = 1;
	if (audit_tail(a->fd, &ch, &size) == -1) {
		log_warn("audit: cannot read the last record of %s", a->path);
		goto fail;
	}
	if (ch.sealed) {
		log_warnx("audit: %s ends with an audit.seal record: the audit "
		    "writer sealed it and stopped before it started the next "
		    "segment, so %s is not appended there; start the gateway "
		    "(its writer finishes the rotation)", a->path, event);
		goto fail;
	}
	if (ch.keyed && a->key == NULL) {
		log_warnx("audit: %s is a keyed (HMAC) trail and this process "
		    "cannot read its key %s, so it does not append %s there; "
		    "start the gateway (its audit writer records it) or run "
		    "this as root", a->path, a->keypath ? a->keypath :
		    "(none given)", event);
		goto fail;
	}
	if ((full = audit_seal(a->key, a->host, &ch, event, fields, &len)) ==
	    NULL)
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
audit_rotate_key(const char *sockpath, const char *operator_name)
{
	struct audit a;
	struct audit_msg h = { AUDIT_MSG_ROTATE_KEY, AUDIT_F_ACK };
	json_t *body;
	char *text = NULL, *msg = NULL;
	uint32_t status;
	size_t tlen;
	int rc = 1;

	memset(&a, 0, sizeof(a));
	a.mode = AUDIT_CLIENT;
	a.path = (char *)sockpath;
	if ((a.fd = client_dial(sockpath, 1)) == -1)
		return -1;
	body = json_pack("{s:s?}", "operator", operator_name);
	if (body == NULL || (text = json_dumps(body, JSON_COMPACT)) == NULL ||
	    (tlen = strlen(text)) + sizeof(h) > AUDIT_MAX_LINE ||
	    (msg = malloc(sizeof(h) + tlen)) == NULL) {
		log_warnx("audit: cannot encode the rotate-key request");
		goto fail;
	}
	memcpy(msg, &h, sizeof(h));
	memcpy(msg + sizeof(h), text, tlen);
	if (client_send(&a, msg, sizeof(h) + tlen) == -1 ||
	    client_wait(&a, &status) == -1)
		goto fail;
	if (status != AUDIT_OK) {
		log_warnx("audit: the audit writer did not rotate the key: %s",
		    audit_status_str(status));
		goto fail;
	}
	rc = 0;
fail:
	if (a.fd != -1)
		close(a.fd);
	free(msg);
	free(text);
	json_decref(body);
	return rc;
}
