/*
 * s3int.h - private to the S3 backend (s3.c, s3sign.c, s3put.c, s3multi.c,
 * s3read.c, s3sweep.c): its limits, the store, one response, one request
 * body, and the functions the pieces share. Nothing outside uploader/s3*.c
 * includes it.
 *
 * Ownership: struct s3_store borrows cfg and owns a copy of fixed
 * credentials (wiped on close). A struct s3_resp is the caller's (large:
 * malloc it); functions fill it, never keep it.
 */
#ifndef SLUICE_S3INT_H
#define SLUICE_S3INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <curl/curl.h>

#include "uploader/store.h"

#define S3_MAX_KEY	1024		/* S3's limit on a key, in bytes */
#define S3_MAX_URI	(3 * S3_MAX_KEY + 600)
#define S3_MAX_HEADERS	64		/* signed headers per request */
#define S3_MAX_META	40
#define S3_BODY_MAX	(64 * 1024)	/* kept of a body; the rest is dropped */
#define SIGV4_BUF_MAX	(64 * 1024)	/* cap on a canonical request */
#define EMPTY_SHA256	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MiB		(1024 * 1024)
#define MP_MIN_PART	(5 * MiB)
#define SKEW_SUSPECT_S	600		/* S3 refuses from 900 s */
#define MP_MAX_PARTS	10000
#define MP_PART_TRIES	4		/* in place, before the file waits its turn */
#define MAX_SUFFIX	1000		/* collision: suffix tries KEY.1 .. KEY.1000 */
#define STALE_AGE_S	86400
#define STALE_PAGE	100		/* max-uploads per list page: fits S3_BODY_MAX */
#define STALE_PAGES	100		/* list pages per sweep; the next one goes on */

struct s3_store {
	const struct store_config *cfg;
	struct aws_creds	 creds;		/* fixed ones, when static_creds */
	int			 static_creds;
	CURL			*curl;		/* single PUTs and HEADs */
	char			 origin[600];	/* scheme://host[:port] of every URL */
	char			 host[400];	/* Host header: host[:port] unless default */
	char			 uri_prefix[300];	/* "/bucket" (path style) or "" */
	volatile int		*cancel;	/* non-zero: stop transfers */
	/* collision: version: 1 once GetBucketVersioning said Enabled. */
	int			 versioned;
	/* Where the stale upload sweep goes on ("": from the start). */
	char			 sweep_key[S3_MAX_KEY + 1];
	char			 sweep_id[1024];
};

/* What we keep of one response. */
struct s3_resp {
	long	 status;
	char	 etag[256];
	char	 version_id[256];
	char	 checksum[128];		/* x-amz-checksum-sha256 */
	char	 meta_sha256[80];	/* x-amz-meta-sha256 (we write it) */
	char	 lock_mode[32];		/* x-amz-object-lock-mode */
	char	 lock_until[64];	/* x-amz-object-lock-retain-until-date */
	int64_t	 length;		/* Content-Length; -1: none */
	char	 request_id[128];	/* x-amz-request-id, for the log */
	char	 date[64];
	time_t	 signed_at;	/* the x-amz-date it was signed with */
	char	 body[S3_BODY_MAX + 1];
	size_t	 bodylen;
	int	 creds_dead;	/* expired, and no fresher ones: CREDS_DEAD_* */
	char	 curl_error[CURL_ERROR_SIZE];	/* curl's detail on failure */
	/* s3_perform sets it from s3_get_sink: a 2xx body is hashed there
	 * instead of kept in body. */
	struct sha256 *sink;
	CURL	*curl;		/* the handle, for the sink's status check */
};

#define CREDS_DEAD_ENV	1	/* in the environment */
#define CREDS_DEAD_FILE	2	/* in the shared files */

enum upload_err {
	UP_OK = 0,
	UP_SHORT,	/* the file ended before size bytes */
	UP_IO,		/* pread failed */
	UP_DIGEST,	/* the bytes read do not hash to the request's SHA-256 */
};

/* The body of a request: size bytes of fd from start, or of mem. */
struct s3_upload {
	int		 fd;
	const char	*mem;		/* a body in memory instead of fd */
	int64_t		 start;
	int64_t		 size;
	int64_t		 off;
	struct sha256	*h;		/* hash of [0, off) while hashing */
	int		 hashing;
	const uint8_t	*want;		/* SHA256_LEN bytes, or NULL: not checked */
	enum upload_err	 err;
	int		 saved_errno;
};

struct sbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
	int	 err;
};

/* What identifies one object we are writing. */
struct s3_obj {
	const struct put_request *req;
	const char	*key;
	char		 uri[S3_MAX_URI];
	const char	*b64;		/* whole-file SHA-256, base64 */
	const char	*hexd;		/* ... hex */
	const uint8_t	*digest;
	const char	**base;		/* option and metadata headers */
	size_t		 nbase;
};

/* While s3_store_sha256 runs a GET in this thread: where its body goes. */
extern __thread struct sha256 *s3_get_sink;

/* s3sign.c: appending to a bounded buffer (err set on overflow). */
void s3_sb_addn(struct sbuf *, const char *, size_t);
void s3_sb_add(struct sbuf *, const char *);
/* A header value as SigV4 canonicalises it (blanks trimmed and squeezed). */
void s3_sb_add_trimmed(struct sbuf *, const char *);

/* s3.c: the request core. */
/* Our clock plus the skew learnt from S3's Date. */
time_t s3_now(void);
/* s into out with control bytes as '?': for messages. */
void s3_printable(const char *s, char *out, size_t outlen);
/*
 * One signed request (uri and query canonical, extra "name:value" headers,
 * payload the body's hex SHA-256, up the body or NULL), sent again once
 * with fresh credentials on ExpiredToken. curl's code; r filled.
 */
CURLcode s3_request(struct s3_store *, CURL *, const char *method,
    const char *uri, const char *query, const char **extra, size_t nextra,
    const char *payload, struct s3_upload *up, struct s3_resp *r);
/* A transfer error / an HTTP error answer into res, prefixed with what. */
void s3_set_curl_error(const struct s3_store *, struct put_result *,
    const char *what, CURLcode, const struct s3_resp *);
void s3_set_http_error(struct s3_store *, struct put_result *,
    const char *what, const struct s3_resp *);
/* res->version_id from a header ("null" is none). */
void s3_set_version(struct put_result *, const char *v);
/* The <Error><Code> of a response body ("" if none). */
void s3_resp_code(const struct s3_resp *, char *code, size_t len);
/* An ETag without its quotes. */
void s3_etag_norm(const char *in, char *out, size_t outlen);
/* The canonical URI of key ("/bucket/k%20y" or "/k%20y"). 0 or -1. */
int s3_key_uri(struct s3_store *, const char *key, char *uri, size_t len);
/* HEAD with checksum mode: 1 exists (h filled), 0 404, -1 (res set). */
int s3_head_query(struct s3_store *, CURL *, const char *uri,
    const char *query, struct s3_resp *h, struct put_result *res,
    const char *what);
int s3_head_uri(struct s3_store *, CURL *, const char *uri,
    struct s3_resp *h, struct put_result *res, const char *what);
/* DELETE ?uploadId= (best effort). 0 or -1. */
int s3_abort_upload(struct s3_store *, CURL *, const char *uri,
    const char *upload_id, struct s3_resp *r);
/* 1 versioning Enabled, 0 not, -1 could not ask (res set). */
int s3_bucket_versioned(struct s3_store *, struct put_result *);

/* The backend's operations (s3_store_ops, in s3.c, calls them). */
struct s3_store *s3_store_open(const struct store_config *,
    const struct aws_creds *);
void s3_store_close(struct s3_store *);
void s3_store_set_cancel(struct s3_store *, volatile int *);
void s3_store_put(struct s3_store *, const struct put_request *,
    struct put_result *);				/* s3put.c */
int s3_store_head(struct s3_store *, const char *key, const char *version_id,
    char *cs, size_t cslen, char *err, size_t errlen);	/* s3read.c */
int s3_store_stat(struct s3_store *, const char *key, struct store_obj *,
    char *err, size_t errlen);
int s3_store_list(struct s3_store *, const char *prefix,
    int (*fn)(void *, const char *, int64_t), void *arg, char *err,
    size_t errlen);
int s3_store_sha256(struct s3_store *, const char *key, uint8_t d[32],
    char *err, size_t errlen);
int s3_store_abort_stale(struct s3_store *, int64_t older_s,
    int (*keep)(void *, const char *, const char *), void *arg);	/* s3sweep.c */

/* s3put.c */
/* 1 if the object a HEAD found (h) is the one o describes. */
int s3_same_object(const struct s3_obj *o, const struct s3_resp *h,
    const char *composite);
/* After a write: HEAD and compare; res STORED or an error. */
void s3_verify(struct s3_store *, CURL *, struct s3_obj *o,
    const char *composite, struct s3_resp *h, struct put_result *res);

/* s3multi.c: 0 res filled; 1 a different object is at the key. */
int s3_put_multipart(struct s3_store *, struct s3_obj *o, int force,
    struct s3_resp *r, struct s3_resp *h, struct put_result *res);

#endif
