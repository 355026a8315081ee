#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

size_t
xstrlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size > 0) {
		size_t c = n >= size ? size - 1 : n;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

size_t
xstrlcat(char *dst, const char *src, size_t size)
{
	size_t d = strnlen(dst, size);

	if (d == size)
		return size + strlen(src);
	return d + xstrlcpy(dst + d, src, size - d);
}

int
xsnprintf(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		return -1;
	return n;
}

int
parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

void
hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char hx[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

void
base64_encode(const uint8_t *in, size_t len, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

int
is_hostname(const char *s)
{
	size_t i, n = strlen(s), lab = 0;

	if (n == 0 || n > 253 || s[0] == '-' || s[0] == '.' ||
	    s[n - 1] == '-' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (lab == 0)
				return 0;
			lab = 0;
			continue;
		}
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
		if (++lab > 63)
			return 0;
	}
	return 1;
}

int
parse_port(const char *s)
{
	int64_t v;
	size_t i;

	if (s[0] == '\0' || strlen(s) > 5)
		return -1;
	for (i = 0; s[i] != '\0'; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	if (parse_int64(s, 1, 65535, &v) != 0)
		return -1;
	return (int)v;
}

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

uint8_t *
base64_decode(const char *s, size_t n, size_t *outlen)
{
	uint8_t *out;
	size_t i, o = 0, pad = 0;
	int v[4], j;

	if (n == 0 || n % 4 != 0)
		return NULL;
	if (s[n - 1] == '=')
		pad++;
	if (s[n - 2] == '=')
		pad++;
	if ((out = malloc(n / 4 * 3)) == NULL)
		return NULL;
	for (i = 0; i < n; i += 4) {
		for (j = 0; j < 4; j++) {
			if (s[i + j] == '=' && i + 4 == n && j >= 4 - (int)pad)
				v[j] = 0;
			else if ((v[j] = b64val((unsigned char)s[i + j])) < 0)
				goto fail;
		}
		out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		out[o++] = (uint8_t)(v[1] << 4 | v[2] >> 2);
		out[o++] = (uint8_t)(v[2] << 6 | v[3]);
	}
	*outlen = o - pad;
	return out;
fail:
	free(out);
	return NULL;
}

struct sha256 {
	EVP_MD_CTX *ctx;
};

static EVP_MD *
sha256_md(void)
{
	static EVP_MD *md;

	if (md == NULL)
		md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	return md;
}

struct sha256 *
sha256_new(void)
{
	struct sha256 *h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	if ((h->ctx = EVP_MD_CTX_new()) == NULL || sha256_reset(h) != 0) {
		sha256_free(h);
		return NULL;
	}
	return h;
}

int
sha256_reset(struct sha256 *h)
{
	EVP_MD *md = sha256_md();

	if (md == NULL || EVP_DigestInit_ex2(h->ctx, md, NULL) != 1)
		return -1;
	return 0;
}

int
sha256_update(struct sha256 *h, const void *p, size_t n)
{
	return EVP_DigestUpdate(h->ctx, p, n) == 1 ? 0 : -1;
}

int
sha256_final(struct sha256 *h, uint8_t out[SHA256_LEN])
{
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1 || n != SHA256_LEN)
		return -1;
	return 0;
}

void
sha256_free(struct sha256 *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int
sha256_buf(const void *p, size_t n, uint8_t out[SHA256_LEN])
{
	struct sha256 *h;
	int rc = -1;

	if ((h = sha256_new()) == NULL)
		return -1;
	if (sha256_update(h, p, n) == 0 && sha256_final(h, out) == 0)
		rc = 0;
	sha256_free(h);
	return rc;
}

int64_t
sha256_fd_update(struct sha256 *h, int fd, off_t from)
{
	static const size_t bufsz = 256 * 1024;
	uint8_t *buf;
	int64_t total = 0;
	ssize_t n;

	if ((buf = malloc(bufsz)) == NULL)
		return -1;
	for (;;) {
		n = pread(fd, buf, bufsz, from);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			total = -1;
			break;
		}
		if (n == 0)
			break;
		if (sha256_update(h, buf, (size_t)n) != 0) {
			total = -1;
			break;
		}
		from += n;
		total += n;
	}
	free(buf);
	return total;
}

int
sha256_fd(int fd, uint8_t out[SHA256_LEN])
{
	struct sha256 *h;
	int rc = -1;

	if ((h = sha256_new()) == NULL)
		return -1;
	if (sha256_fd_update(h, fd, 0) >= 0 && sha256_final(h, out) == 0)
		rc = 0;
	sha256_free(h);
	return rc;
}

int
hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
    uint8_t out[SHA256_LEN])
{
	static EVP_MAC *mac;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t outlen = 0;
	int rc = -1;

	if (mac == NULL && (mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		return -1;
	if ((ctx = EVP_MAC_CTX_new(mac)) == NULL)
		return -1;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, key, keylen, params) != 1 ||
	    EVP_MAC_update(ctx, msg, msglen) != 1 ||
	    EVP_MAC_final(ctx, out, &outlen, SHA256_LEN) != 1 ||
	    outlen != SHA256_LEN)
		goto fail;
	rc = 0;
fail:
	EVP_MAC_CTX_free(ctx);
	return rc;
}

int
fsync_dirat(int dirfd, const char *dir)
{
	int fd, rc;

	fd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
fsync_dir(const char *dir)
{
	return fsync_dirat(AT_FDCWD, dir);
}

int
mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	char *p;

	if (xstrlcpy(buf, path, sizeof(buf)) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

int
write_file_at(int dirfd, const char *name, const void *data, size_t len,
    mode_t mode)
{
	char tmp[NAME_MAX + 1], id[33];
	const uint8_t *p = data;
	ssize_t n;
	int fd = -1, err;

	if (random_id(id, sizeof(id)) == -1 ||
	    xsnprintf(tmp, sizeof(tmp), ".%.*s.%s.tmp", 160, name, id) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode & 0600)) == -1)
		return -1;
	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fchmod(fd, mode) == -1 || fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) == -1)
		goto fail;
	return fsync(dirfd) == -1 && errno != EINVAL ? -1 : 0;
fail:
	err = errno;
	if (fd != -1)
		close(fd);
	unlinkat(dirfd, tmp, 0);
	errno = err;
	return -1;
}

int
write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char dir[PATH_MAX], *slash;
	const char *name = path;
	int dfd, rc, err;

	if (xstrlcpy(dir, path, sizeof(dir)) >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((slash = strrchr(dir, '/')) != NULL) {
		name = path + (slash - dir) + 1;
		*(slash == dir ? slash + 1 : slash) = '\0';
	} else
		xstrlcpy(dir, ".", sizeof(dir));
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = write_file_at(dfd, name, data, len, mode);
	err = errno;
	close(dfd);
	errno = err;
	return rc;
}

int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
iso8601_ms(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char base[24];

	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", base, (int)(ms % 1000));
}

int
random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
random_id(char *buf, size_t len)
{
	uint8_t raw[16];

	if (len < 33 || random_bytes(raw, sizeof(raw)) != 0)
		return -1;
	hex_encode(raw, sizeof(raw), buf);
	return 0;
}
