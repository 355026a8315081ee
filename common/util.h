/*
 * util.h - small bounded helpers shared by every module: strings, hashing,
 * encodings and crash-safe file writes. Nothing here allocates unless it
 * says so; the caller owns every buffer it passes.
 */
#ifndef SLUICE_UTIL_H
#define SLUICE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SHA256_LEN	32
#define SHA256_HEX	65	/* 64 hex digits + NUL */
#define SHA256_B64	45	/* 44 base64 chars + NUL */

/* Copies at most size-1 bytes and always NUL-terminates. Returns strlen(src);
 * a result >= size means truncation. */
size_t xstrlcpy(char *dst, const char *src, size_t size);
/* Appends like OpenBSD strlcat. */
size_t xstrlcat(char *dst, const char *src, size_t size);
/* snprintf that returns -1 on truncation or error instead of a length. */
int xsnprintf(char *dst, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* strtoll with full checking; 0 on success, -1 if not an integer in [min,max]. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void hex_encode(const uint8_t *in, size_t len, char *out);
/* Standard base64 with padding into out (4*ceil(len/3)+1 bytes). */
void base64_encode(const uint8_t *in, size_t len, char *out);
/* Strict standard base64 of s[0..n) (padding required): malloc'd bytes
 * (the caller frees them) with their count in *outlen, or NULL. */
uint8_t *base64_decode(const char *s, size_t n, size_t *outlen);
/* 1 if s is a DNS host name (letters, digits, '-', dot-separated labels of
 * at most 63, 253 in all), else 0. */
int is_hostname(const char *s);
/* A decimal port 1..65535 (no sign, no blanks), or -1. */
int parse_port(const char *s);

/* Incremental SHA-256 (OpenSSL EVP). */
struct sha256;
struct sha256 *sha256_new(void);	/* NULL on allocation failure */
int sha256_update(struct sha256 *, const void *, size_t);
int sha256_final(struct sha256 *, uint8_t out[SHA256_LEN]);	/* then reusable after sha256_reset */
int sha256_reset(struct sha256 *);
void sha256_free(struct sha256 *);
/* One-shot helpers. sha256_fd reads from `from` to EOF with pread (the file
 * offset is not moved) and adds the bytes to ctx; returns bytes hashed or -1. */
int sha256_buf(const void *, size_t, uint8_t out[SHA256_LEN]);
int64_t sha256_fd_update(struct sha256 *ctx, int fd, off_t from);
int sha256_fd(int fd, uint8_t out[SHA256_LEN]);

/* HMAC-SHA256 (OpenSSL EVP_MAC). */
int hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
    uint8_t out[SHA256_LEN]);

/* Crash-safe writes (temp name, write, fsync, rename, fsync dir). */
int fsync_dir(const char *dir);
int fsync_dirat(int dirfd, const char *dir);
/* mkdir -p with mode for created components. */
int mkdir_p(const char *path, mode_t mode);
/* Writes data to path atomically with the given mode. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/*
 * The same beneath an open directory: writes len bytes of data as
 * dirfd/name, durably and atomically (a temp file created with O_EXCL |
 * O_NOFOLLOW under an unpredictable name in the same directory, fsync,
 * renameat over name, fsync of the directory); mode set with fchmod.
 * write_file_atomic is this on path's directory. 0 or -1 (errno).
 */
int write_file_at(int dirfd, const char *name, const void *data, size_t len,
    mode_t mode);

/* Monotonic and wall clocks in milliseconds. */
int64_t now_ms(void);
int64_t mono_ms(void);
/* ISO-8601 UTC with milliseconds, e.g. 2026-11-22T02:52:13.123Z; buf >= 32. */
void iso8601_ms(int64_t ms, char *buf, size_t len);

/* Cryptographically random bytes (getrandom); 0 or -1. */
int random_bytes(void *buf, size_t len);
/* A new random identifier: 32 lower-case hex chars; buf >= 33. */
int random_id(char *buf, size_t len);

#endif
