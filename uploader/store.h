/*
 * store.h - putting one accepted file into the object store: S3 (SigV4 over
 * libcurl, any S3-compatible endpoint) or a local directory (file://).
 *
 * Only the uploader role includes this header; it is the only process that
 * holds S3 credentials.
 */
#ifndef SLUICE_STORE_H
#define SLUICE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "policy/config.h"

struct aws_creds {
	char	access_key[128];
	char	secret_key[128];
	char	session_token[2048];	/* "" when none */
};

/* Reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.
 * 0, or -1 if the key id or secret is missing. Never logs values. */
int creds_from_env(struct aws_creds *);
void creds_wipe(struct aws_creds *);

struct put_request {
	const char	*key;		/* full object key (prefix included) */
	int		 fd;		/* the spooled file; read with pread from 0 */
	int64_t		 size;
	const char	*sha256;	/* hex, taken at receipt */
	/* x-amz-meta-* pairs; names lower-case ASCII, values printable ASCII */
	const char	**meta_names;
	const char	**meta_values;
	size_t		 nmeta;
};

enum put_outcome {
	PUT_STORED = 0,		/* stored (or an identical object was already there) */
	PUT_RETRY,		/* transient: network, 5xx, 429, throttling, RequestTimeout */
	PUT_FATAL,		/* needs an operator: 4xx like AccessDenied, NoSuchBucket, a different object at the key */
};

struct put_result {
	enum put_outcome outcome;
	long		 http_status;	/* 0 if none */
	char		 error[512];	/* "503 SlowDown: ..." / curl's message; no secrets */
	char		 bucket[256];
	char		 etag[256];
	char		 version_id[256];	/* "" when unversioned ("null" counts as none) */
	int		 existed;	/* 1 if an identical object was already stored */
};

struct store;
/* Borrows cfg (must outlive the store) and copies creds. NULL on error (logged). */
struct store *store_open(const struct store_config *cfg, const struct aws_creds *creds);
/*
 * Stores one object. For S3: PUT with x-amz-content-sha256 (hex), x-amz-checksum-sha256
 * (base64), Content-Length and If-None-Match: *; on 412 HEAD the existing object
 * (x-amz-checksum-mode: ENABLED) and count it stored if its SHA-256 matches;
 * after a PUT, HEAD with checksum mode and compare. For file://: write temp,
 * fsync, rename under dir/key, fsync dir; an existing identical file counts as stored.
 */
void store_put(struct store *, const struct put_request *, struct put_result *);
void store_close(struct store *);

/* SigV4 (exposed for unit tests). Signs a request for service "s3":
 * fills `authorization` with the Authorization header value.
 * headers: "name:value" strings, names lower-case, sorted by the caller or not
 * (the signer sorts); query: already canonical ("a=1&b=" sorted, %XX upper). */
int sigv4_sign(const struct aws_creds *creds, const char *region,
    const char *method, const char *canonical_uri, const char *canonical_query,
    const char **headers, size_t nheaders, const char *payload_sha256_hex,
    const char *amz_date, char *authorization, size_t authlen);
/* URI-encodes an object key as S3 wants in the canonical URI: every byte
 * except A-Za-z0-9-._~ and '/' as %XX (upper case). 0 or -1 on truncation. */
int s3_uri_encode(const char *in, char *out, size_t outlen, int keep_slash);

/* Full-jitter exponential backoff: random in [0, min(cap, base * 2^attempt)]
 * milliseconds (attempt counts from 0). */
int64_t retry_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms);

/*
 * Internal to uploader/: store.c dispatches store_open/put/close to one
 * backend by cfg->kind. Each backend borrows cfg; the S3 backend copies creds
 * and wipes its copy on close. put functions fill every field of the result.
 */
struct s3_store;
struct s3_store *s3_store_open(const struct store_config *, const struct aws_creds *);
void s3_store_put(struct s3_store *, const struct put_request *, struct put_result *);
void s3_store_close(struct s3_store *);

struct file_store;
struct file_store *file_store_open(const struct store_config *);
void file_store_put(struct file_store *, const struct put_request *, struct put_result *);
void file_store_close(struct file_store *);

#endif
