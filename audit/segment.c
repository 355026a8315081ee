/*
 * segment.c - sealing the live trail into a segment (audit_int.h:
 * audit_rotate) and saving a torn tail (audit_torn_cut). Used by the audit
 * writer only, with the live file locked.
 *
 * A rotation, crash-safe at every step:
 *   1. append the audit.seal record to the live file, fdatasync;
 *   2. link(2) the live file into the segments directory under its segment
 *      name, fsync that directory (the live path still names it);
 *   3. write the next live file beside the live path (audit.open, chained
 *      from the seal), fdatasync, rename(2) it over the live path, fsync
 *      that directory.
 * The live path always names a file. A crash after 1 leaves a live file
 * ending with its seal: the next start finds the seal and does 2 and 3
 * (file mode refuses to append after a seal). A crash after 2 leaves the
 * same, already linked: link says EEXIST for the same inode. A stale next
 * file (a crash before its rename) never held anything but audit.open.
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "common/log.h"
#include "common/util.h"

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

int
audit_first_record(int fd, int64_t *seq, char *ts, size_t tslen,
    char *event, size_t evlen)
{
	char *buf, *nl;
	ssize_t n;
	json_t *rec = NULL;
	json_error_t jerr;
	int rc = -1;

	if ((buf = malloc(AUDIT_MAX_LINE + 1)) == NULL)
		return -1;
	if ((n = pread(fd, buf, AUDIT_MAX_LINE, 0)) <= 0)
		goto fail;
	buf[n] = '\0';
	if ((nl = memchr(buf, '\n', (size_t)n)) == NULL)
		goto fail;
	if ((rec = json_loadb(buf, (size_t)(nl - buf), 0, &jerr)) == NULL ||
	    !json_is_integer(json_object_get(rec, "seq")))
		goto fail;
	*seq = json_integer_value(json_object_get(rec, "seq"));
	(void)xstrlcpy(ts, json_is_string(json_object_get(rec, "ts")) ?
	    json_string_value(json_object_get(rec, "ts")) : "", tslen);
	(void)xstrlcpy(event, json_is_string(json_object_get(rec, "event")) ?
	    json_string_value(json_object_get(rec, "event")) : "", evlen);
	rc = 0;
fail:
	json_decref(rec);
	free(buf);
	return rc;
}

static void
forward(int facility, const char *line, size_t len)
{
	if (facility != 0)
		syslog(LOG_INFO | facility, "%.*s", (int)(len > 0 &&
		    line[len - 1] == '\n' ? len - 1 : len), line);
}

/* Step 1: the seal at the end of the live file. */
static int
seal_append(const struct audit_rotation *r, int fd, struct audit_chain *ch,
    int64_t fseq, const char *opened_at, const char *name)
{
	char machex[SHA256_HEX], *line = NULL;
	json_t *f;
	size_t len;
	off_t size;
	int rc = -1;

	if (ch->keyed)
		hex_encode(ch->mac, SHA256_LEN, machex);
	else
		machex[0] = '\0';
	f = json_pack("{s:s,s:I,s:I,s:I,s:s,s:s,s:s}", "segment", name,
	    "count", (json_int_t)(ch->seq - fseq + 1), "first_seq",
	    (json_int_t)fseq, "last_seq", (json_int_t)ch->seq, "final_mac",
	    machex, "opened_at", opened_at, "reason", r->reason);
	if (f == NULL)
		return -1;
	if (r->extra != NULL)
		json_object_update(f, r->extra);
	if ((size = lseek(fd, 0, SEEK_END)) == -1 ||
	    (line = audit_seal(r->key, r->host, ch, "audit.seal", f, &len)) ==
	    NULL)
		goto fail;
	if (write_all(fd, line, len) == -1) {
		log_warn("audit writer: cannot seal %s", r->live);
		if (ftruncate(fd, size) == -1)
			log_warn("audit writer: cannot cut %s back", r->live);
		goto fail;
	}
	if (fdatasync(fd) == -1) {
		log_warn("audit writer: fdatasync %s", r->live);
		goto fail;
	}
	forward(r->syslog, line, len);
	rc = 0;
fail:
	free(line);
	json_decref(f);
	return rc;
}

/* Step 2: the live file's second name in the segments directory. */
static int
seal_link(const struct audit_rotation *r, const char *name)
{
	char seg[PATH_MAX];
	struct stat a, b;

	if (xsnprintf(seg, sizeof(seg), "%s/%s", r->segdir, name) < 0) {
		log_warnx("audit writer: %s/%s: path too long", r->segdir, name);
		return -1;
	}
	if (mkdir_p(r->segdir, 0750) == -1) {
		log_warn("audit writer: cannot create the segments directory "
		    "%s; create it (0750, owned by the service user)", r->segdir);
		return -1;
	}
	if (link(r->live, seg) == -1) {
		if (errno != EEXIST || stat(r->live, &a) == -1 ||
		    stat(seg, &b) == -1 || a.st_ino != b.st_ino ||
		    a.st_dev != b.st_dev) {
			log_warn("audit writer: cannot link %s to %s (%s must be "
			    "on the same filesystem as the live trail, and "
			    "nothing else may be called %s)", r->live, seg,
			    r->segdir, name);
			return -1;
		}
	}
	if (fsync_dir(r->segdir) == -1)
		log_warn("audit writer: fsync %s", r->segdir);
	return 0;
}

/* Step 3: the next live file, renamed over the live path; its fd or -1. */
static int
seal_next(const struct audit_rotation *r, struct audit_chain *ch,
    const char *name, mode_t mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX], *slash, *line = NULL;
	json_t *f;
	size_t len;
	int fd = -1;

	if (xsnprintf(tmp, sizeof(tmp), "%s.next", r->live) < 0 ||
	    xstrlcpy(dir, r->live, sizeof(dir)) >= sizeof(dir))
		return -1;
	if ((slash = strrchr(dir, '/')) != NULL)
		slash[slash == dir ? 1 : 0] = '\0';
	f = json_pack("{s:s,s:I}", "after", name, "seal_seq",
	    (json_int_t)ch->seq);
	if (f == NULL || (line = audit_seal(r->newkey ? r->newkey : r->key,
	    r->host, ch, "audit.open", f, &len)) == NULL)
		goto fail;
	(void)unlink(tmp);
	fd = open(tmp, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode);
	if (fd == -1 || fchmod(fd, mode) == -1 ||
	    write_all(fd, line, len) == -1 || fdatasync(fd) == -1 ||
	    rename(tmp, r->live) == -1) {
		log_warn("audit writer: cannot start the next live trail %s "
		    "(the audit writer needs to create files in %s)", tmp, dir);
		goto fail;
	}
	if (slash != NULL && fsync_dir(dir) == -1)
		log_warn("audit writer: fsync %s", dir);
	forward(r->syslog, line, len);
	free(line);
	json_decref(f);
	return fd;
fail:
	if (fd != -1) {
		close(fd);
		(void)unlink(tmp);
	}
	free(line);
	json_decref(f);
	return -1;
}

int
audit_rotate(const struct audit_rotation *r, int fd, char *name,
    size_t namelen)
{
	struct audit_chain ch;
	struct stat st;
	char opened[64], event[AUDIT_MAX_EVENT + 1];
	int64_t fseq;
	off_t size;

	if (audit_tail(fd, &ch, &size) == -1 || ch.seq == 0 ||
	    audit_first_record(fd, &fseq, opened, sizeof(opened), event,
	    sizeof(event)) == -1 || fseq > ch.seq || fstat(fd, &st) == -1) {
		log_warnx("audit writer: cannot read the first and last records "
		    "of %s to seal it; run 'sluice audit verify %s'", r->live,
		    r->live);
		return -1;
	}
	/* A seal already there: a rotation cut short, finish it. */
	if (xsnprintf(name, namelen, "audit-%012lld-%012lld.jsonl",
	    (long long)fseq, (long long)(ch.sealed ? ch.seq : ch.seq + 1)) < 0)
		return -1;
	if (!ch.sealed && seal_append(r, fd, &ch, fseq, opened, name) == -1)
		return -1;
	if (seal_link(r, name) == -1)
		return -1;
	return seal_next(r, &ch, name, st.st_mode & 0777);
}

/*
 * The offset just after the last newline of the file of size bytes (0:
 * none), or -1.
 */
static off_t
last_newline(int fd, off_t size)
{
	char buf[65536];
	off_t end = size, start;
	ssize_t n;
	char *nl;

	while (end > 0) {
		start = end > (off_t)sizeof(buf) ? end - (off_t)sizeof(buf) : 0;
		n = pread(fd, buf, (size_t)(end - start), start);
		if (n != end - start)
			return -1;
		if ((nl = memrchr(buf, '\n', (size_t)n)) != NULL)
			return start + (nl - buf) + 1;
		end = start;
	}
	return 0;
}

int
audit_torn_cut(const struct audit_rotation *r, int fd, json_t **extra)
{
	struct audit_chain ch;
	struct stat st;
	char *torn = NULL, path[PATH_MAX], hex[SHA256_HEX], opened[64];
	char event[AUDIT_MAX_EVENT + 1], name[80];
	uint8_t h[SHA256_LEN];
	int64_t fseq = 0;
	off_t cut;
	size_t len;
	int rc = -1;

	*extra = NULL;
	if (fstat(fd, &st) == -1 || (cut = last_newline(fd, st.st_size)) == -1)
		return -1;
	if (cut == st.st_size)
		return 0;
	len = (size_t)(st.st_size - cut);
	if ((torn = malloc(len)) == NULL ||
	    pread(fd, torn, len, cut) != (ssize_t)len ||
	    sha256_buf(torn, len, h) != 0)
		goto fail;
	hex_encode(h, sizeof(h), hex);
	/* Named after the segment the whole records will be sealed into. */
	if (cut > 0 && (audit_tail_at(fd, cut, &ch) == -1 ||
	    audit_first_record(fd, &fseq, opened, sizeof(opened), event,
	    sizeof(event)) == -1)) {
		log_warnx("audit writer: %s ends with a torn record and the "
		    "whole records before it do not end cleanly either; run "
		    "'sluice audit verify %s'", r->live, r->live);
		goto fail;
	}
	if (cut > 0)
		(void)xsnprintf(name, sizeof(name), "audit-%012lld-%012lld.jsonl",
		    (long long)fseq, (long long)(ch.sealed ? ch.seq : ch.seq + 1));
	else
		(void)xsnprintf(name, sizeof(name), "audit-torn-%lld.jsonl",
		    (long long)now_ms());
	if (xsnprintf(path, sizeof(path), "%s/%s.torn", r->segdir, name) < 0 ||
	    mkdir_p(r->segdir, 0750) == -1 ||
	    write_file_atomic(path, torn, len, 0600) == -1) {
		log_warn("audit writer: cannot save the torn tail of %s to %s",
		    r->live, path);
		goto fail;
	}
	if (ftruncate(fd, cut) == -1) {
		log_warn("audit writer: cannot cut the torn tail off %s",
		    r->live);
		goto fail;
	}
	if (fdatasync(fd) == -1)
		goto fail;
	log_warnx("audit writer: %s ended with %zu bytes of a torn record (a "
	    "crash mid-append); saved to %s (sha256 %s) and cut off", r->live,
	    len, path, hex);
	*extra = json_pack("{s:I,s:s,s:s}", "torn_bytes", (json_int_t)len,
	    "torn_sha256", hex, "torn_file", strrchr(path, '/') + 1);
	rc = *extra != NULL ? 1 : -1;
fail:
	free(torn);
	return rc;
}
