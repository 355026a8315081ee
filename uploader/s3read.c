/*
 * s3read.c - what the S3 backend reads of stored objects: HEAD
 * (s3_store_head, s3_store_stat), a GET hashed as it arrives
 * (s3_store_sha256) and ListObjectsV2 (s3_store_list, pages parsed by
 * s3list.c).
 */
#include "uploader/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/util.h"
#include "uploader/s3int.h"

int
s3_store_head(struct s3_store *s, const char *key, const char *version_id,
    char *cs, size_t cslen, char *err, size_t errlen)
{
	struct put_result res;
	struct s3_resp *h;
	char uri[S3_MAX_URI], query[1200], ev[1100];
	int e;

	if (s3_key_uri(s, key, uri, sizeof(uri)) != 0) {
		xsnprintf(err, errlen, "key too long");
		return -1;
	}
	query[0] = '\0';
	if (version_id != NULL && version_id[0] != '\0' &&
	    strcmp(version_id, "null") != 0 &&
	    (s3_uri_encode(version_id, ev, sizeof(ev), 0) != 0 ||
	    xsnprintf(query, sizeof(query), "versionId=%s", ev) < 0)) {
		xsnprintf(err, errlen, "version id too long");
		return -1;
	}
	if ((h = malloc(sizeof(*h))) == NULL) {
		xsnprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(&res, 0, sizeof(res));
	e = s3_head_query(s, s->curl, uri, query, h, &res, "HEAD: ");
	if (e == 1)
		xstrlcpy(cs, h->checksum, cslen);
	else if (e == -1)
		xstrlcpy(err, res.error, errlen);
	free(h);
	return e;
}

int
s3_store_stat(struct s3_store *s, const char *key, struct store_obj *o,
    char *err, size_t errlen)
{
	struct put_result res;
	struct s3_resp *h;
	char uri[S3_MAX_URI];
	int e;

	memset(o, 0, sizeof(*o));
	o->size = -1;
	if (s3_key_uri(s, key, uri, sizeof(uri)) != 0) {
		xsnprintf(err, errlen, "key too long");
		return -1;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		xsnprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(&res, 0, sizeof(res));
	e = s3_head_query(s, s->curl, uri, "", h, &res, "HEAD: ");
	if (e == 1) {
		xstrlcpy(o->checksum, h->checksum, sizeof(o->checksum));
		s3_etag_norm(h->etag, o->etag, sizeof(o->etag));
		xstrlcpy(o->version_id, strcmp(h->version_id, "null") == 0 ?
		    "" : h->version_id, sizeof(o->version_id));
		s3_printable(h->lock_mode, o->lock_mode, sizeof(o->lock_mode));
		s3_printable(h->lock_until, o->retain_until,
		    sizeof(o->retain_until));
		o->size = h->length;
	} else if (e == -1)
		xstrlcpy(err, res.error, errlen);
	free(h);
	return e;
}

int
s3_store_sha256(struct s3_store *s, const char *key, uint8_t d[SHA256_LEN],
    char *err, size_t errlen)
{
	struct put_result res;
	struct s3_resp *r;
	struct sha256 *h = NULL;
	char uri[S3_MAX_URI];
	CURLcode c;
	int rc = -1;

	if (s3_key_uri(s, key, uri, sizeof(uri)) != 0) {
		xsnprintf(err, errlen, "key too long");
		return -1;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (h = sha256_new()) == NULL) {
		xsnprintf(err, errlen, "out of memory");
		goto out;
	}
	memset(&res, 0, sizeof(res));
	s3_get_sink = h;
	c = s3_request(s, s->curl, "GET", uri, "", NULL, 0, EMPTY_SHA256, NULL,
	    r);
	s3_get_sink = NULL;
	if (c != CURLE_OK) {
		s3_set_curl_error(s, &res, "GET: ", c, r);
		xstrlcpy(err, res.error, errlen);
	} else if (r->status != 200) {
		s3_set_http_error(s, &res, "GET: ", r);
		xstrlcpy(err, res.error, errlen);
	} else if (sha256_final(h, d) != 0)
		xsnprintf(err, errlen, "cannot hash the object");
	else
		rc = 0;
out:
	sha256_free(h);
	free(r);
	return rc;
}

#define LIST_PAGE	100	/* max-keys: a page of short keys fits S3_BODY_MAX */

/* The ListObjectsV2 query (canonical order); 0 or -1. */
static int
list_objects_query(const char *prefix, const char *token, char *q, size_t len)
{
	char ep[3 * S3_MAX_KEY + 1], et[3 * 2048 + 1];

	if (s3_uri_encode(prefix, ep, sizeof(ep), 0) != 0 ||
	    s3_uri_encode(token, et, sizeof(et), 0) != 0)
		return -1;
	if (token[0] == '\0')
		return xsnprintf(q, len, "list-type=2&max-keys=%d&prefix=%s",
		    LIST_PAGE, ep) < 0 ? -1 : 0;
	return xsnprintf(q, len, "continuation-token=%s&list-type=2&"
	    "max-keys=%d&prefix=%s", et, LIST_PAGE, ep) < 0 ? -1 : 0;
}

int
s3_store_list(struct s3_store *s, const char *prefix,
    int (*fn)(void *, const char *, int64_t), void *arg, char *err,
    size_t errlen)
{
	struct put_result res;
	struct s3_resp *r;
	char uri[400], token[2048], query[16 * 1024], perr[256];
	int truncated = 1, rc = -1;
	CURLcode c;

	if ((r = malloc(sizeof(*r))) == NULL) {
		xsnprintf(err, errlen, "out of memory");
		return -1;
	}
	xsnprintf(uri, sizeof(uri), "%s/", s->uri_prefix);
	token[0] = '\0';
	while (truncated) {
		if (list_objects_query(prefix, token, query, sizeof(query)) != 0) {
			xsnprintf(err, errlen, "the prefix or continuation "
			    "token is too long");
			goto out;
		}
		memset(&res, 0, sizeof(res));
		c = s3_request(s, s->curl, "GET", uri, query, NULL, 0,
		    EMPTY_SHA256, NULL, r);
		if (c != CURLE_OK || r->status != 200) {
			if (c != CURLE_OK)
				s3_set_curl_error(s, &res, "ListObjectsV2: ", c, r);
			else
				s3_set_http_error(s, &res, "ListObjectsV2: ", r);
			xsnprintf(err, errlen, "%s", res.error);
			goto out;
		}
		if (r->bodylen >= S3_BODY_MAX) {
			xsnprintf(err, errlen, "ListObjectsV2: a page of the "
			    "listing is larger than %d bytes", S3_BODY_MAX);
			goto out;
		}
		if ((rc = s3_list_parse(r->body, r->bodylen, fn, arg,
		    &truncated, token, sizeof(token), perr,
		    sizeof(perr))) != 0) {
			if (rc == -1)
				xsnprintf(err, errlen, "ListObjectsV2: %s", perr);
			goto out;
		}
		rc = -1;
		if (truncated && token[0] == '\0') {
			xsnprintf(err, errlen, "ListObjectsV2: the listing is "
			    "truncated but gives no NextContinuationToken");
			goto out;
		}
	}
	rc = 0;
out:
	free(r);
	return rc;
}
