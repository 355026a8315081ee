/*
 * store_file.c - the file:// backend: objects are files under cfg->dir at
 * their key. Each put writes a temp file in the target directory, fsyncs it,
 * renames it into place without replacing anything (renameat2
 * RENAME_NOREPLACE, or link+unlink where that is unsupported) and fsyncs the
 * directory. Directories are walked one component at a time with O_NOFOLLOW
 * so a planted symlink cannot lead outside cfg->dir.
 *
 * An identical file already at the key counts as stored. A different one
 * follows store.collision: suffix (the first KEY.N, N = 1..1000, that is free
 * or holds identical bytes), reject (PUT_FATAL: the file is held), version
 * (a directory keeps no versions: handled as suffix, logged once per process).
 *
 * Ownership: struct file_store borrows cfg and owns one fd on cfg->dir.
 */
#include "uploader/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define FILE_MAX_KEY	1024
#define COPY_BUF	(256 * 1024)
#define TMP_PREFIX	".sluice-tmp."
#define MAX_SUFFIX	1000		/* collision: suffix tries KEY.1 .. KEY.1000 */

struct file_store {
	const struct store_config *cfg;
	int			 rootfd;
};

static int version_noted;	/* the "version means suffix" line is logged */

static struct file_store *
file_store_open(const struct store_config *cfg)
{
	struct file_store *fs;

	if (cfg->dir == NULL || cfg->dir[0] != '/') {
		log_warnx("store: file store needs an absolute directory");
		return NULL;
	}
	if ((fs = calloc(1, sizeof(*fs))) == NULL) {
		log_warn("store: calloc");
		return NULL;
	}
	fs->cfg = cfg;
	if (cfg->collision == COLLISION_VERSION &&
	    __atomic_exchange_n(&version_noted, 1, __ATOMIC_RELAXED) == 0)
		log_info("store: collision: version on a file:// store: a "
		    "directory keeps no versions, so a different file at a key "
		    "stays and the new one is stored as KEY.1, KEY.2, ... "
		    "(as with collision: suffix)");
	fs->rootfd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->rootfd == -1) {
		log_warn("store: %s: create the directory or fix store.url",
		    cfg->dir);
		free(fs);
		return NULL;
	}
	return fs;
}

static void
file_store_close(struct file_store *fs)
{
	if (fs == NULL)
		return;
	close(fs->rootfd);
	free(fs);
}

/* A key is a relative path of non-empty segments, none "." or ".." or
 * one of our temp names. */
static int
key_safe(const char *key)
{
	const char *seg = key, *slash;
	size_t n;

	if (key == NULL || key[0] == '\0' || key[0] == '/' ||
	    strlen(key) > FILE_MAX_KEY)
		return 0;
	for (;;) {
		slash = strchr(seg, '/');
		n = slash ? (size_t)(slash - seg) : strlen(seg);
		if (n == 0 || n > NAME_MAX ||
		    (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.') ||
		    (n >= sizeof(TMP_PREFIX) - 1 &&
		    strncmp(seg, TMP_PREFIX, sizeof(TMP_PREFIX) - 1) == 0))
			return 0;
		if (slash == NULL)
			return 1;
		seg = slash + 1;
	}
}

/* Errors an operator must fix; the rest (ENOSPC, EIO, EMFILE...) may pass. */
static enum put_outcome
errno_outcome(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
	case EROFS:
	case ENOTDIR:
	case EISDIR:
	case ELOOP:
	case ENAMETOOLONG:
	case EINVAL:
		return PUT_FATAL;
	default:
		return PUT_RETRY;
	}
}

static void
set_errno(struct put_result *res, const char *what, const char *key, int e)
{
	res->outcome = errno_outcome(e);
	snprintf(res->error, sizeof(res->error), "%s %s: %s", what, key,
	    strerror(e));
}

/*
 * The target name exists: 1 if it is a regular file of size bytes that hash
 * to want, 0 if it is something else (different bytes, a directory, a
 * symlink...), -1 on error (res filled).
 */
static int
same_existing(int dfd, const char *name, int64_t size, const char *want,
    const char *key, struct put_result *res)
{
	uint8_t d[SHA256_LEN];
	char hex[SHA256_HEX];
	struct stat st;
	int fd, rc = 0;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ELOOP)
			return 0;
		set_errno(res, "open existing", key, errno);
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		set_errno(res, "stat existing", key, errno);
		rc = -1;
	} else if (S_ISREG(st.st_mode) && st.st_size == size) {
		if (sha256_fd(fd, d) != 0) {
			set_errno(res, "read existing", key, errno);
			rc = -1;
		} else {
			hex_encode(d, sizeof(d), hex);
			rc = strcasecmp(hex, want) == 0;
		}
	}
	close(fd);
	return rc;
}

/* Copies size bytes of in (from 0) to out, checking they hash to want.
 * 0, or -1 with res filled. */
static int
copy_checked(int in, int out, int64_t size, const char *want, const char *key,
    struct put_result *res)
{
	struct sha256 *h = NULL;
	uint8_t *buf = NULL, d[SHA256_LEN];
	char hex[SHA256_HEX];
	int64_t off = 0;
	ssize_t n, w, done;
	size_t chunk;
	int rc = -1;

	if ((buf = malloc(COPY_BUF)) == NULL || (h = sha256_new()) == NULL) {
		set_errno(res, "copy", key, ENOMEM);
		goto fail;
	}
	while (off < size) {
		chunk = size - off < COPY_BUF ? (size_t)(size - off) : COPY_BUF;
		if ((n = pread(in, buf, chunk, (off_t)off)) < 0) {
			if (errno == EINTR)
				continue;
			set_errno(res, "read spooled file for", key, errno);
			goto fail;
		}
		if (n == 0) {
			res->outcome = PUT_FATAL;
			snprintf(res->error, sizeof(res->error), "spooled file for "
			    "%s is shorter than %lld bytes", key, (long long)size);
			goto fail;
		}
		for (done = 0; done < n; done += w) {
			if ((w = write(out, buf + done, (size_t)(n - done))) < 0) {
				if (errno == EINTR) {
					w = 0;
					continue;
				}
				set_errno(res, "write", key, errno);
				goto fail;
			}
		}
		if (sha256_update(h, buf, (size_t)n) != 0) {
			set_errno(res, "hash", key, ENOMEM);
			goto fail;
		}
		off += n;
	}
	if (sha256_final(h, d) != 0) {
		set_errno(res, "hash", key, ENOMEM);
		goto fail;
	}
	hex_encode(d, sizeof(d), hex);
	if (strcasecmp(hex, want) != 0) {
		res->outcome = PUT_RETRY;
		snprintf(res->error, sizeof(res->error), "spooled file for %s does "
		    "not match its SHA-256 %s; not stored", key, want);
		goto fail;
	}
	rc = 0;
fail:
	sha256_free(h);
	free(buf);
	return rc;
}

/*
 * Writes req's bytes (checked against req->sha256) to a new temp file in dfd,
 * fsynced and closed; its name into tmp. 0, or -1 with res filled (and no
 * temp file left).
 */
static int
write_temp(int dfd, const struct put_request *req, const char *pkey,
    char *tmp, size_t tmplen, struct put_result *res)
{
	char rid[33];
	int tfd;

	if (random_id(rid, sizeof(rid)) != 0 ||
	    xsnprintf(tmp, tmplen, TMP_PREFIX "%s", rid) < 0) {
		set_errno(res, "temp name for", pkey, EAGAIN);
		return -1;
	}
	tfd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0640);
	if (tfd == -1) {
		set_errno(res, "create temp file for", pkey, errno);
		return -1;
	}
	if (copy_checked(req->fd, tfd, req->size, req->sha256, pkey, res) != 0)
		goto fail;
	if (fsync(tfd) == -1) {
		set_errno(res, "fsync", pkey, errno);
		goto fail;
	}
	if (close(tfd) == -1) {
		tfd = -1;
		set_errno(res, "close", pkey, errno);
		goto fail;
	}
	return 0;
fail:
	if (tfd != -1)
		close(tfd);
	unlinkat(dfd, tmp, 0);
	return -1;
}

/* Renames tmp to name in dfd, never replacing: 0, or -1 (errno EEXIST when
 * name exists). */
static int
place(int dfd, const char *tmp, const char *name)
{
	if (renameat2(dfd, tmp, dfd, name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* No RENAME_NOREPLACE here: link() never replaces. */
	if (linkat(dfd, tmp, dfd, name, 0) == -1)
		return -1;
	unlinkat(dfd, tmp, 0);
	return 0;
}

static void
file_store_put(struct file_store *fs, const struct put_request *req,
    struct put_result *res)
{
	char path[FILE_MAX_KEY + 1], tmp[64], pkey[300], ckey[320];
	char name[NAME_MAX + 2];
	char *comp, *next;
	int dfd = fs->rootfd, nfd, tmp_made = 0, sfx, same;
	size_t i;

	memset(res, 0, sizeof(*res));
	res->outcome = PUT_FATAL;
	xstrlcpy(res->bucket, fs->cfg->dir, sizeof(res->bucket));
	xstrlcpy(pkey, req->key ? req->key : "", sizeof(pkey));
	for (i = 0; pkey[i] != '\0'; i++)
		if ((unsigned char)pkey[i] < 0x20 || pkey[i] == 0x7f)
			pkey[i] = '?';

	if (!key_safe(req->key)) {
		snprintf(res->error, sizeof(res->error), "object key \"%s\" is "
		    "not a relative path of plain names (no \"..\", \".\", "
		    "empty or temp segments)", pkey);
		return;
	}
	if (req->sha256 == NULL || strlen(req->sha256) != 64 || req->fd < 0 ||
	    req->size < 0) {
		snprintf(res->error, sizeof(res->error), "bad request for %s: "
		    "needs a file, a size and a hex SHA-256", pkey);
		return;
	}
	xstrlcpy(path, req->key, sizeof(path));

	/* Walk (and make) the directories, never following a symlink. */
	for (comp = path; (next = strchr(comp, '/')) != NULL; comp = next + 1) {
		int made = 0;

		*next = '\0';
		if (mkdirat(dfd, comp, 0750) == 0)
			made = 1;
		else if (errno != EEXIST) {
			set_errno(res, "mkdir for", pkey, errno);
			goto done;
		}
		nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (nfd == -1) {
			set_errno(res, "open directory for", pkey, errno);
			goto done;
		}
		if (made && fsync(dfd) == -1) {
			set_errno(res, "fsync directory for", pkey, errno);
			close(nfd);
			goto done;
		}
		if (dfd != fs->rootfd)
			close(dfd);
		dfd = nfd;
	}

	/* comp is the object's name; KEY.1, KEY.2 ... as the policy says. */
	for (sfx = 0; sfx <= MAX_SUFFIX; sfx++) {
		if (sfx == 0) {
			xstrlcpy(name, comp, sizeof(name));
			xstrlcpy(res->key, req->key, sizeof(res->key));
			xstrlcpy(ckey, pkey, sizeof(ckey));
		} else if (xsnprintf(name, sizeof(name), "%s.%d", comp, sfx) < 0 ||
		    strlen(name) > NAME_MAX ||
		    xsnprintf(res->key, sizeof(res->key), "%s.%d", req->key,
		    sfx) < 0) {
			res->outcome = PUT_FATAL;
			snprintf(res->error, sizeof(res->error), "a different "
			    "object exists at %s; the suffix .%d would make its "
			    "name longer than %d bytes (collision: suffix)", pkey,
			    sfx, NAME_MAX);
			goto done;
		} else
			xsnprintf(ckey, sizeof(ckey), "%s.%d", pkey, sfx);

		/* Already there (a retry after a crash, a second upload)? */
		if (faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			same = same_existing(dfd, name, req->size, req->sha256,
			    ckey, res);
		else if (errno != ENOENT) {
			set_errno(res, "look up", ckey, errno);
			goto done;
		} else {
			if (!tmp_made) {
				if (write_temp(dfd, req, pkey, tmp, sizeof(tmp),
				    res) != 0)
					goto done;
				tmp_made = 1;
			}
			if (place(dfd, tmp, name) == 0) {
				tmp_made = 0;
				if (fsync(dfd) == -1) {
					set_errno(res, "fsync directory of", ckey,
					    errno);
					goto done;
				}
				res->outcome = PUT_STORED;
				goto done;
			}
			if (errno != EEXIST) {
				set_errno(res, "rename into place", ckey, errno);
				goto done;
			}
			/* Someone got there first. */
			same = same_existing(dfd, name, req->size, req->sha256,
			    ckey, res);
		}
		if (same == -1)
			goto done;
		if (same == 1) {
			/* A crash may have come between an earlier rename and
			 * its fsync. */
			if (fsync(dfd) == -1) {
				set_errno(res, "fsync directory of", ckey, errno);
				goto done;
			}
			res->outcome = PUT_STORED;
			res->existed = 1;
			goto done;
		}
		if (fs->cfg->collision == COLLISION_REJECT || req->exact_key) {
			res->outcome = PUT_FATAL;
			snprintf(res->error, sizeof(res->error), "a different "
			    "object already exists at %s%s", ckey, req->exact_key ?
			    "; it is left as it is" : " (collision: reject)");
			goto done;
		}
		log_info("store: a different file exists at %s; trying the next "
		    "suffix (collision: %s)", ckey, fs->cfg->collision ==
		    COLLISION_VERSION ? "version, as suffix" : "suffix");
	}
	res->outcome = PUT_FATAL;
	snprintf(res->error, sizeof(res->error), "a different object exists at "
	    "%s and at every suffix up to .%d", pkey, MAX_SUFFIX);
done:
	if (tmp_made)
		unlinkat(dfd, tmp, 0);
	if (dfd != fs->rootfd)
		close(dfd);
}

/*
 * The regular files in dir/prefix (prefix a key prefix ending in '/'),
 * walked without following symlinks; temp files are left out. A missing
 * directory is an empty listing.
 */
static int
file_store_list(struct file_store *fs, const char *prefix,
    int (*fn)(void *, const char *, int64_t), void *arg, char *err,
    size_t errlen)
{
	char path[FILE_MAX_KEY + 1], key[FILE_MAX_KEY + NAME_MAX + 2];
	char *comp, *next;
	struct dirent *de;
	struct stat sb;
	DIR *d = NULL;
	size_t n;
	int dfd = fs->rootfd, nfd, rc = -1;

	n = strlen(prefix);
	if (n < 2 || n >= sizeof(path) || prefix[n - 1] != '/')
		goto badprefix;
	memcpy(path, prefix, n - 1);
	path[n - 1] = '\0';
	if (!key_safe(path))
		goto badprefix;
	path[n - 1] = '/';
	path[n] = '\0';
	for (comp = path; (next = strchr(comp, '/')) != NULL; comp = next + 1) {
		*next = '\0';
		nfd = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (dfd != fs->rootfd)
			close(dfd);
		dfd = nfd;
		if (dfd == -1) {
			if (errno == ENOENT)
				return 0;
			xsnprintf(err, errlen, "%s/%s: %s", fs->cfg->dir, prefix,
			    strerror(errno));
			return -1;
		}
	}
	if (dfd == fs->rootfd && (dfd = dup(fs->rootfd)) == -1) {
		xsnprintf(err, errlen, "dup: %s", strerror(errno));
		return -1;
	}
	if ((d = fdopendir(dfd)) == NULL) {
		xsnprintf(err, errlen, "%s/%s: %s", fs->cfg->dir, prefix,
		    strerror(errno));
		close(dfd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, TMP_PREFIX, sizeof(TMP_PREFIX) - 1) == 0 ||
		    fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		if (xsnprintf(key, sizeof(key), "%s%s", prefix, de->d_name) < 0)
			continue;
		if ((rc = fn(arg, key, (int64_t)sb.st_size)) != 0)
			goto out;
	}
	rc = 0;
out:
	closedir(d);
	return rc;
badprefix:
	xsnprintf(err, errlen, "prefix %s is not a relative path of plain "
	    "names ending in '/'", prefix);
	return -1;
}

/* ---- the backend's operations (store.h) ------------------------------------ */

/* Hashes the file at dir/key (no symlinks in its last part): 1 (d and
 * *size filled), 0 no such file, -1 error (err). */
static int
file_hash(const struct store_config *cfg, const char *key,
    uint8_t d[SHA256_LEN], int64_t *size, char *err, size_t errlen)
{
	char path[4096];
	struct stat sb;
	int fd, rc;

	if (xsnprintf(path, sizeof(path), "%s/%s", cfg->dir, key) < 0 ||
	    strstr(key, "..") != NULL) {
		xsnprintf(err, errlen, "key %s is not usable here", key);
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		xsnprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) ? sha256_fd(fd, d) : -1;
	close(fd);
	if (rc != 0) {
		xsnprintf(err, errlen, "%s: cannot read it as a file", path);
		return -1;
	}
	*size = sb.st_size;
	return 1;
}

static void *
op_open(const struct store_config *cfg, const struct aws_creds *creds)
{
	(void)creds;
	return file_store_open(cfg);
}

static void
op_close(void *be)
{
	file_store_close(be);
}

static void
op_put(void *be, const struct put_request *req, struct put_result *res)
{
	uint8_t d[SHA256_LEN];
	size_t i;

	file_store_put(be, req, res);
	if (res->key[0] == '\0')	/* else the suffixed key */
		xstrlcpy(res->key, req->key ? req->key : "", sizeof(res->key));
	/* The checksum S3 would report, for the record. */
	for (i = 0; req->sha256 != NULL && i < SHA256_LEN &&
	    strlen(req->sha256) == 64; i++)
		if (sscanf(req->sha256 + 2 * i, "%2hhx", &d[i]) != 1)
			break;
	if (i == SHA256_LEN)
		base64_encode(d, sizeof(d), res->checksum);
}

static int
op_head(void *be, const char *key, const char *version_id, char *cs,
    size_t cslen, char *err, size_t errlen)
{
	struct file_store *fs = be;
	char b64[SHA256_B64];
	uint8_t d[SHA256_LEN];
	int64_t size;
	int rc;

	(void)version_id;
	if ((rc = file_hash(fs->cfg, key, d, &size, err, errlen)) != 1)
		return rc;
	base64_encode(d, sizeof(d), b64);
	xstrlcpy(cs, b64, cslen);
	return 1;
}

static int
op_stat(void *be, const char *key, struct store_obj *o, char *err,
    size_t errlen)
{
	struct file_store *fs = be;
	uint8_t d[SHA256_LEN];
	int rc;

	if ((rc = file_hash(fs->cfg, key, d, &o->size, err, errlen)) == 1)
		base64_encode(d, sizeof(d), o->checksum);
	return rc;
}

static int
op_list(void *be, const char *prefix, int (*fn)(void *, const char *, int64_t),
    void *arg, char *err, size_t errlen)
{
	return file_store_list(be, prefix, fn, arg, err, errlen);
}

static int
op_sha256(void *be, const char *key, uint8_t d[SHA256_LEN], char *err,
    size_t errlen)
{
	struct file_store *fs = be;
	int64_t size;
	int rc;

	if ((rc = file_hash(fs->cfg, key, d, &size, err, errlen)) == 0)
		xsnprintf(err, errlen, "%s: no such object", key);
	return rc == 1 ? 0 : -1;
}

/* A directory has no uploads to abort and no transfer to cancel. */
const struct store_ops file_store_ops = {
	.name = "file",
	.open = op_open,
	.close = op_close,
	.put = op_put,
	.set_cancel = NULL,
	.head = op_head,
	.stat = op_stat,
	.list = op_list,
	.sha256 = op_sha256,
	.abort_stale = NULL,
};
