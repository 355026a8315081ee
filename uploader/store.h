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
	int64_t	expires_ms;		/* wall clock; 0: does not expire */
};

/* Reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.
 * 0, or -1 if the key id or secret is missing. Never logs values. */
int creds_from_env(struct aws_creds *);
void creds_wipe(struct aws_creds *);

/*
 * The credential chain (creds.c), process-wide and thread-safe, in the AWS
 * SDKs' order: the environment; AssumeRole for profile AWS_PROFILE (or
 * "default") when it has role_arn + source_profile; web identity
 * (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN); the profile's keys in
 * AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials; its credential_process;
 * its keys in AWS_CONFIG_FILE or ~/.aws/config; the container endpoint
 * (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI); EC2 instance
 * metadata (IMDSv2; AWS_EC2_METADATA_SERVICE_ENDPOINT, off with
 * AWS_EC2_METADATA_DISABLED=true). STS is AWS_ENDPOINT_URL_STS or
 * sts.<region>. uploader/creds.h has the pieces.
 * creds_init: 0, or -1 (logged, naming every source tried).
 * creds_get: a copy of the current credentials, refreshed first when they
 * expire within 5 minutes; 0 or -1. creds_refresh: refresh now (ExpiredToken);
 * 0 new ones, 1 the very same ones again (nothing fresher), or -1. Values are
 * never logged.
 */
int creds_init(void);
int creds_get(struct aws_creds *out);
int creds_refresh(void);
/* "environment", "assume role", "web identity", "shared file",
 * "credential process", "container", "imds", "none" */
const char *creds_source(void);

/*
 * A minimal INI reader for the AWS shared files: the value of key in
 * [section] ("default", "profile x", ...) of text (len bytes, need not be
 * NUL-terminated). Names compare case-sensitively after trimming blanks;
 * '#' and ';' start comment lines. 1 found, 0 not found, -1 when a value
 * does not fit out or a line is longer than 4 KiB.
 */
int ini_get(const char *text, size_t len, const char *section, const char *key,
    char *out, size_t outlen);
/* The IMDS credentials document (JSON) into c; 0 or -1. */
int creds_parse_imds(const char *json, struct aws_creds *c);

/* One finished part of a multipart upload. */
struct mp_part {
	int	 number;		/* 1.. */
	char	 etag[128];
	char	 checksum[64];		/* base64 SHA-256 of the part */
};

/*
 * Persistence of a multipart upload (the uploader keeps it in the state
 * database), so a restart resumes instead of starting over. The saved
 * fields describe what a previous attempt left (upload_id NULL: nothing);
 * the functions are called from several threads, one at a time.
 */
struct mp_hooks {
	void		*arg;
	const char	*upload_id;	/* saved: NULL or the upload in progress */
	const char	*key;		/* saved: its key */
	int64_t		 part_size;	/* saved: its part size */
	const struct mp_part *parts;	/* saved: parts S3 confirmed */
	size_t		 nparts;
	/* A new upload exists; 0 or -1 (then it is aborted). */
	int		(*begin)(void *arg, const char *key, const char *upload_id,
			    int64_t part_size, int nparts);
	/* A part is stored; 0 or -1. */
	int		(*part)(void *arg, const struct mp_part *);
	/* The saved upload is gone (completed, aborted or unknown to S3). */
	void		(*forget)(void *arg);
};

struct put_request {
	const char	*key;		/* full object key (prefix included) */
	int		 fd;		/* the spooled file; read with pread from 0 */
	int64_t		 size;
	const char	*sha256;	/* hex, taken at receipt */
	/* x-amz-meta-* pairs; names lower-case ASCII, values printable ASCII */
	const char	**meta_names;
	const char	**meta_values;
	size_t		 nmeta;
	/* S3 multipart: above threshold (0: 16 MiB), parts of part_size
	 * (0: 8 MiB), parallel parts in flight (0: 4); mp may be NULL. */
	int64_t		 multipart_threshold;
	int64_t		 part_size;
	int		 parallel;
	int64_t		 max_backoff_ms;	/* in-place part retries (0: 20 s) */
	const struct mp_hooks *mp;
	/* Object Lock for this object instead of store.object_lock: mode
	 * "COMPLIANCE"|"GOVERNANCE" and retain-until "YYYY-MM-DDTHH:MM:SSZ"
	 * (both or neither; S3 only). */
	const char	*lock_mode;
	const char	*lock_until;
	/* A different object at key is PUT_FATAL whatever store.collision
	 * says (no suffix, no new version). */
	int		 exact_key;
	/* S3 overrides of the store's (a partner's); NULL/0: the store's.
	 * tag_keys non-NULL replaces the store's tags (ntags may be 0). */
	const char	*storage_class;
	char *const	*tag_keys;
	char *const	*tag_values;
	size_t		 ntags;
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
	char		 code[64];	/* S3 <Code>, "Timeout", "Network",
					 * "NoCredentials", "CredentialsExpired";
					 * "" otherwise (umetrics.h) */
	char		 bucket[256];
	char		 key[1100];	/* the key stored at (collision suffix applied) */
	char		 etag[256];
	char		 version_id[256];	/* "" when unversioned ("null" counts as none) */
	char		 checksum[80];	/* what the store reports: base64 SHA-256, or
					 * for multipart base64(SHA-256 of the part
					 * digests) + "-N" */
	int		 nparts;	/* 0: single PUT */
	int		 existed;	/* 1 if an identical object was already stored */
	int		 timeout;	/* the failure was a timeout (retry costs more) */
};

struct store;
/* Borrows cfg (must outlive the store) and copies creds (S3 with NULL creds:
 * the credential chain, creds_init() first). NULL on error (logged). */
struct store *store_open(const struct store_config *cfg, const struct aws_creds *creds);
/*
 * Stores one object. For S3: PUT with x-amz-content-sha256 (hex), x-amz-checksum-sha256
 * (base64), Content-Length and If-None-Match: *; on 412 HEAD the existing object
 * (x-amz-checksum-mode: ENABLED) and count it stored if its SHA-256 matches;
 * after a PUT whose answer does not carry back the x-amz-checksum-sha256 we
 * sent (S3's proof it checked the bytes), HEAD with checksum mode and
 * compare; after a multipart upload, always. For file://: write temp,
 * fsync, rename under dir/key, fsync dir; an existing identical file counts as stored.
 */
void store_put(struct store *, const struct put_request *, struct put_result *);
void store_close(struct store *);
/* Transfers stop (PUT_RETRY) once *flag becomes non-zero (proc_quit). */
void store_set_cancel(struct store *, volatile int *flag);
/*
 * Checks the object at key (in S3, its version version_id when that is not
 * NULL or ""): 1 when it exists (checksum filled as the store reports it, ""
 * if it reports none), 0 when it does not, -1 on error (err).
 */
int store_head(struct store *, const char *key, const char *version_id,
    char *checksum, size_t cslen, char *err, size_t errlen);
/* What a HEAD tells of one object ("" where the store says nothing). */
struct store_obj {
	char		 checksum[128];		/* base64 SHA-256 (or composite "-N") */
	char		 etag[256];
	char		 version_id[256];	/* "" unversioned */
	char		 lock_mode[32];		/* x-amz-object-lock-mode */
	char		 retain_until[64];	/* x-amz-object-lock-retain-until-date */
	int64_t		 size;			/* -1: unknown */
};
/* The object at key, now: 1 exists (o filled), 0 not, -1 error (err). The
 * file store fills checksum (it hashes the file) and size. */
int store_stat(struct store *, const char *key, struct store_obj *o,
    char *err, size_t errlen);
/*
 * Calls fn(arg, key, size) for every object whose key starts with prefix
 * (S3: ListObjectsV2 pages with continuation; file store: the regular files
 * in the directory dir/prefix, not below it; prefix ends in '/'). fn
 * returning non-zero stops the listing (returned). 0, or -1 with err.
 */
int store_list(struct store *, const char *prefix,
    int (*fn)(void *arg, const char *key, int64_t size), void *arg,
    char *err, size_t errlen);
/* GETs the object at key and hashes it: 0 (d filled) or -1 (err). */
int store_sha256(struct store *, const char *key, uint8_t d[32],
    char *err, size_t errlen);

/*
 * One ListObjectsV2 reply (s3list.c, expat; DOCTYPE and entity
 * declarations refused). fn(arg, key, size) for each <Contents> in order
 * (key decoded, NUL-terminated, borrowed for the call); *truncated and
 * token (NextContinuationToken, "" when none) filled. Returns 0, -1 when
 * the body is not a whole ListBucketResult (err says why), or fn's non-zero
 * return.
 */
int s3_list_parse(const char *body, size_t len,
    int (*fn)(void *arg, const char *key, int64_t size), void *arg,
    int *truncated, char *token, size_t tokenlen, char *err, size_t errlen);

/* 1 if a checksum the store reports proves the file: equal to sha256_b64, or
 * to composite (with or without its "-N"). */
int store_checksum_matches(const char *reported, const char *sha256_b64,
    const char *composite);
/*
 * Aborts multipart uploads under the store's prefix started more than
 * older_s seconds ago, except those keep() says are ours and live. Returns
 * how many were aborted, or -1 (logged). The file store has none: 0.
 */
int store_abort_stale(struct store *, int64_t older_s,
    int (*keep)(void *arg, const char *key, const char *upload_id), void *arg);

/* SigV4 (exposed for unit tests). Signs a request for service "s3":
 * fills `authorization` with the Authorization header value.
 * headers: "name:value" strings, names lower-case, sorted by the caller or not
 * (the signer sorts); query: already canonical ("a=1&b=" sorted, %XX upper). */
int sigv4_sign(const struct aws_creds *creds, const char *region,
    const char *method, const char *canonical_uri, const char *canonical_query,
    const char **headers, size_t nheaders, const char *payload_sha256_hex,
    const char *amz_date, char *authorization, size_t authlen);
/* The same for another service ("sts"). */
int sigv4_sign_service(const struct aws_creds *creds, const char *region,
    const char *service, const char *method, const char *canonical_uri,
    const char *canonical_query, const char **headers, size_t nheaders,
    const char *payload_sha256_hex, const char *amz_date, char *authorization,
    size_t authlen);
/* URI-encodes an object key as S3 wants in the canonical URI: every byte
 * except A-Za-z0-9-._~ and '/' as %XX (upper case). 0 or -1 on truncation. */
int s3_uri_encode(const char *in, char *out, size_t outlen, int keep_slash);

/*
 * The retry budget (AWS SDK "standard" mode): a process-wide token bucket of
 * RETRY_BUDGET tokens; a retry takes RETRY_COST (RETRY_TIMEOUT_COST after a
 * timeout), a success gives one back. retry_budget_take: 1 granted, 0 when
 * the budget is spent (then wait max_backoff instead of retrying early).
 * Thread-safe.
 */
#define RETRY_BUDGET		500
#define RETRY_COST		5
#define RETRY_TIMEOUT_COST	10
int retry_budget_take(int cost);
void retry_budget_success(void);
int retry_budget_left(void);
void retry_budget_reset(void);

/* Full-jitter exponential backoff: random in [0, min(cap, base * 2^attempt)]
 * milliseconds (attempt counts from 0). */
int64_t retry_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms);

/*
 * Internal to uploader/: each backend is one table of operations, and
 * store_open picks the table by cfg->kind (store.c); every store_* call goes
 * through it. An operation takes the backend's own handle (what open
 * returned). open borrows cfg (S3 copies creds; NULL: the credential chain,
 * and wipes its copy on close); put fills every field of the result. A
 * backend without an operation leaves it NULL: set_cancel then does nothing
 * and abort_stale answers 0.
 */
struct store_ops {
	const char	*name;		/* "s3", "file" */
	void		*(*open)(const struct store_config *,
			    const struct aws_creds *);
	void		 (*close)(void *);
	void		 (*put)(void *, const struct put_request *,
			    struct put_result *);
	void		 (*set_cancel)(void *, volatile int *);
	int		 (*head)(void *, const char *key, const char *version_id,
			    char *cs, size_t cslen, char *err, size_t errlen);
	int		 (*stat)(void *, const char *key, struct store_obj *,
			    char *err, size_t errlen);
	int		 (*list)(void *, const char *prefix,
			    int (*fn)(void *, const char *, int64_t), void *arg,
			    char *err, size_t errlen);
	int		 (*sha256)(void *, const char *key, uint8_t d[32],
			    char *err, size_t errlen);
	int		 (*abort_stale)(void *, int64_t older_s,
			    int (*keep)(void *, const char *, const char *),
			    void *arg);
};
extern const struct store_ops s3_store_ops;	/* s3.c */
extern const struct store_ops file_store_ops;	/* store_file.c */

#endif
