#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

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

struct audit {
	char	*path;
	int	 fd;
	int	 deferred;	/* audit_defer: no fdatasync per record */
	int	 dirty;		/* written since the last fdatasync */
};

struct audit *
audit_open(const char *path)
{
	struct audit *a;
	char dir[PATH_MAX], *slash;

	if (xstrlcpy(dir, path, sizeof(dir)) >= sizeof(dir)) {
		log_warnx("audit: path too long: %s", path);
		return NULL;
	}
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir_p(dir, 0750) == -1) {
			log_warn("audit: cannot create directory %s", dir);
			return NULL;
		}
	}
	if ((a = calloc(1, sizeof(*a))) == NULL || (a->path = strdup(path)) == NULL) {
		free(a);
		return NULL;
	}
	a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (a->fd == -1) {
		log_warn("audit: cannot open %s", path);
		free(a->path);
		free(a);
		return NULL;
	}
	return a;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	if (a->dirty)
		(void)audit_sync(a);
	close(a->fd);
	free(a->path);
	free(a);
}

/*
 * Finds the last line of the file (without its newline) and its sequence
 * number. Reads backwards in blocks; a line is at most AUDIT_MAX_LINE.
 * Returns 0 (with *seq = 0 and prev = zeros for an empty file) or -1.
 */
static int
audit_tail(int fd, char prev[SHA256_HEX], int64_t *seq)
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

int
audit_emit(struct audit *a, const char *event, json_t *fields)
{
	json_t *rec = NULL;
	char prev[SHA256_HEX], ts[40], hash[SHA256_HEX], *line = NULL, *full = NULL;
	uint8_t h[SHA256_LEN];
	const char *k;
	json_t *v;
	int64_t seq;
	size_t len;
	ssize_t n;
	int rc = -1, locked = 0;

	if (a == NULL) {
		json_decref(fields);
		return -1;
	}
	while (flock(a->fd, LOCK_EX) == -1) {
		if (errno != EINTR) {
			log_warn("audit: flock %s", a->path);
			goto fail;
		}
	}
	locked = 1;
	if (audit_tail(a->fd, prev, &seq) == -1) {
		log_warn("audit: cannot read the last record of %s", a->path);
		goto fail;
	}
	iso8601_ms(now_ms(), ts, sizeof(ts));
	if ((rec = json_object()) == NULL)
		goto fail;
	json_object_set_new(rec, "seq", json_integer(seq + 1));
	json_object_set_new(rec, "ts", json_string(ts));
	json_object_set_new(rec, "event", json_string(event));
	if (fields != NULL) {
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
	len = strlen(full);
	n = write(a->fd, full, len);
	if (n < 0 || (size_t)n != len) {
		log_warn("audit: write %s", a->path);
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
	free(line);
	free(full);
	json_decref(rec);
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
