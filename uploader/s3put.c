/*
 * s3put.c - storing one object (s3_store_put): the option and metadata
 * headers, the collision policy (suffix, version, reject) around one write,
 * the single signed PUT streamed from the spooled fd (conditional: If-None-
 * Match: *) and the HEAD that verifies what S3 holds. Larger files go to
 * s3multi.c.
 */
#include "uploader/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "common/log.h"
#include "common/util.h"
#include "uploader/s3int.h"

/* Validates one x-amz-meta- name (lower-case [a-z0-9-_]) and value. */
static int
meta_ok(const char *name, const char *value)
{
	const char *p;

	if (name == NULL || value == NULL || *name == '\0' || strlen(name) > 128)
		return 0;
	for (p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_'))
			return 0;
	for (p = value; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return 0;
	return strlen(value) <= 2048;
}

static int
parse_hex_digest(const char *hex, uint8_t out[SHA256_LEN], char lower[SHA256_HEX])
{
	size_t i;
	int v;

	if (hex == NULL || strlen(hex) != 64)
		return -1;
	for (i = 0; i < 64; i++) {
		char ch = hex[i];

		if (ch >= '0' && ch <= '9')
			v = ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			v = ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			v = ch - 'A' + 10;
		else
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	hex_encode(out, SHA256_LEN, lower);
	return 0;
}

/* Headers for the store options (sse, storage class, acl, tags, lock). */
struct s3_opts {
	char		 sse[80];
	char		 kms[400];
	char		 sc[80];
	char		 acl[100];
	char		 tagging[4200];
	char		 lockmode[80];
	char		 lockdate[80];
	const char	*h[9];
	size_t		 n;
};

/* The store's options, with req's overrides (a partner's class and tags). */
static int
s3_opts_build(struct s3_store *s, const struct put_request *req,
    struct s3_opts *o, char *err, size_t errlen)
{
	const struct store_config *c = s->cfg;
	const char *sc = req->storage_class != NULL ? req->storage_class :
	    c->storage_class;
	char *const *tk = req->tag_keys != NULL ? req->tag_keys : c->tag_keys;
	char *const *tv = req->tag_keys != NULL ? req->tag_values :
	    c->tag_values;
	size_t ntags = req->tag_keys != NULL ? req->ntags : c->ntags;
	struct sbuf tb = { 0 };
	char ek[700], ev[1800];
	time_t until;
	struct tm tm;
	size_t i;

	memset(o, 0, sizeof(*o));
	if (c->sse != NULL && c->sse[0] != '\0') {
		xsnprintf(o->sse, sizeof(o->sse), "x-amz-server-side-encryption:%s",
		    c->sse);
		o->h[o->n++] = o->sse;
		if (c->kms_key_id != NULL && c->kms_key_id[0] != '\0') {
			if (xsnprintf(o->kms, sizeof(o->kms), "x-amz-server-side-"
			    "encryption-aws-kms-key-id:%s", c->kms_key_id) < 0)
				goto toolong;
			o->h[o->n++] = o->kms;
		}
	}
	if (sc != NULL && sc[0] != '\0') {
		xsnprintf(o->sc, sizeof(o->sc), "x-amz-storage-class:%s", sc);
		o->h[o->n++] = o->sc;
	}
	if (c->acl != NULL && c->acl[0] != '\0') {
		xsnprintf(o->acl, sizeof(o->acl), "x-amz-acl:%s", c->acl);
		o->h[o->n++] = o->acl;
	}
	if (ntags > 0) {
		tb.p = o->tagging;
		tb.cap = sizeof(o->tagging);
		s3_sb_add(&tb, "x-amz-tagging:");
		for (i = 0; i < ntags; i++) {
			if (s3_uri_encode(tk[i], ek, sizeof(ek), 0) != 0 ||
			    s3_uri_encode(tv[i], ev, sizeof(ev), 0) != 0)
				goto toolong;
			if (i > 0)
				s3_sb_add(&tb, "&");
			s3_sb_add(&tb, ek);
			s3_sb_add(&tb, "=");
			s3_sb_add(&tb, ev);
		}
		if (tb.err)
			goto toolong;
		o->h[o->n++] = o->tagging;
	}
	if (req->lock_mode != NULL && req->lock_until != NULL) {
		if (xsnprintf(o->lockmode, sizeof(o->lockmode),
		    "x-amz-object-lock-mode:%s", req->lock_mode) < 0 ||
		    xsnprintf(o->lockdate, sizeof(o->lockdate),
		    "x-amz-object-lock-retain-until-date:%s",
		    req->lock_until) < 0) {
			xsnprintf(err, errlen, "object lock mode or date too long");
			return -1;
		}
		o->h[o->n++] = o->lockmode;
		o->h[o->n++] = o->lockdate;
	} else if (c->object_lock_mode != NULL &&
	    c->object_lock_mode[0] != '\0' && c->object_lock_days > 0) {
		xsnprintf(o->lockmode, sizeof(o->lockmode),
		    "x-amz-object-lock-mode:%s", c->object_lock_mode);
		until = s3_now() + (time_t)c->object_lock_days * 86400;
		gmtime_r(&until, &tm);
		strftime(o->lockdate, sizeof(o->lockdate),
		    "x-amz-object-lock-retain-until-date:%Y-%m-%dT%H:%M:%SZ", &tm);
		o->h[o->n++] = o->lockmode;
		o->h[o->n++] = o->lockdate;
	}
	if (c->legal_hold)
		o->h[o->n++] = "x-amz-object-lock-legal-hold:ON";
	return 0;
toolong:
	xsnprintf(err, errlen, "store options (kms_key_id or tags) are too long");
	return -1;
}

/*
 * Is the object a HEAD found (h) the one we write? Compared by the store's
 * SHA-256 checksum (composite: of a multipart object); a store that keeps
 * no checksums (some S3-compatibles) by its size and the SHA-256 we wrote
 * into its metadata. 1: ours; 0: not (or cannot tell).
 */
int
s3_same_object(const struct s3_obj *o, const struct s3_resp *h,
    const char *composite)
{
	if (h->checksum[0] != '\0')
		return store_checksum_matches(h->checksum,
		    composite ? NULL : o->b64, composite);
	return h->length == o->req->size &&
	    strcasecmp(h->meta_sha256, o->hexd) == 0;
}

/* After a write: HEAD and compare. Fills res (STORED or an error). */
void
s3_verify(struct s3_store *s, CURL *curl, struct s3_obj *o,
    const char *composite, struct s3_resp *h, struct put_result *res)
{
	int e;

	e = s3_head_uri(s, curl, o->uri, h, res, "stored, but the HEAD to "
	    "verify it answered ");
	if (e != 1) {
		if (e == 0) {
			res->outcome = PUT_RETRY;
			xsnprintf(res->error, sizeof(res->error), "stored %s, but "
			    "a HEAD does not find it yet", o->key);
		} else
			res->outcome = PUT_RETRY;	/* the next try finds it */
		return;
	}
	if (h->checksum[0] == '\0' && h->meta_sha256[0] == '\0' &&
	    h->length == o->req->size) {
		log_info("s3: %s: the store returns no x-amz-checksum-sha256 "
		    "and no metadata; relying on the signed payload", o->key);
	} else if (!s3_same_object(o, h, composite)) {
		res->outcome = PUT_FATAL;
		if (h->checksum[0] != '\0')
			xsnprintf(res->error, sizeof(res->error), "stored object "
			    "checksum differs at %s: S3 has %s, we sent %s",
			    o->key, h->checksum, composite ? composite : o->b64);
		else
			xsnprintf(res->error, sizeof(res->error), "stored object "
			    "at %s is not the one sent: %lld bytes, "
			    "x-amz-meta-sha256 \"%s\" (no checksum kept by the "
			    "store); we sent %lld bytes, %s", o->key,
			    (long long)h->length, h->meta_sha256,
			    (long long)o->req->size, o->hexd);
		return;
	}
	if (res->etag[0] == '\0')
		xstrlcpy(res->etag, h->etag, sizeof(res->etag));
	if (res->version_id[0] == '\0')
		s3_set_version(res, h->version_id);
	res->outcome = PUT_STORED;
}

/* ---- single PUT ------------------------------------------------------------ */

/* 0: res filled; 1: a different object is at the key. */
static int
s3_put_single(struct s3_store *s, struct s3_obj *o, int conditional,
    struct s3_resp *r, struct s3_resp *h, struct put_result *res)
{
	const char *extra[S3_MAX_META + 16];
	char hcksum[SHA256_B64 + 32];
	struct s3_upload up;
	size_t n = 0, i;
	CURLcode c;

	memset(&up, 0, sizeof(up));
	xsnprintf(hcksum, sizeof(hcksum), "x-amz-checksum-sha256:%s", o->b64);
	if (conditional)
		extra[n++] = "if-none-match:*";
	extra[n++] = hcksum;
	/* What the AWS SDKs send with a flexible checksum; S3 does not need
	 * it, but some S3-compatibles (moto) keep the checksum only with it. */
	extra[n++] = "x-amz-sdk-checksum-algorithm:SHA256";
	for (i = 0; i < o->nbase; i++)
		extra[n++] = o->base[i];
	if ((up.h = sha256_new()) == NULL) {
		res->outcome = PUT_RETRY;
		xsnprintf(res->error, sizeof(res->error), "out of memory");
		return 0;
	}
	up.fd = o->req->fd;
	up.size = o->req->size;
	up.want = o->digest;
	c = s3_request(s, s->curl, "PUT", o->uri, "", extra, n, o->hexd, &up, r);
	sha256_free(up.h);
	if (up.err != UP_OK) {
		/* Our read callback stopped the upload: S3 did not get the object. */
		res->outcome = up.err == UP_SHORT ? PUT_FATAL : PUT_RETRY;
		if (up.err == UP_SHORT)
			xsnprintf(res->error, sizeof(res->error), "spooled file "
			    "for %s is shorter than %lld bytes", o->key,
			    (long long)o->req->size);
		else if (up.err == UP_IO)
			xsnprintf(res->error, sizeof(res->error), "reading the "
			    "spooled file for %s: %s", o->key,
			    strerror(up.saved_errno));
		else
			xsnprintf(res->error, sizeof(res->error), "spooled file "
			    "for %s does not match its SHA-256 %s; not sent",
			    o->key, o->hexd);
		return 0;
	}
	if (c != CURLE_OK) {
		s3_set_curl_error(s, res, "", c, r);
		return 0;
	}
	res->http_status = r->status;
	if (r->status == 200) {
		xstrlcpy(res->etag, r->etag, sizeof(res->etag));
		s3_set_version(res, r->version_id);
		/* S3 checks the x-amz-checksum-sha256 we sent against the bytes
		 * it got and answers it back: a HEAD could tell no more. A store
		 * that answers none, or another one, gets the HEAD. */
		if (strcmp(r->checksum, o->b64) == 0) {
			res->outcome = PUT_STORED;
			return 0;
		}
		s3_verify(s, s->curl, o, NULL, h, res);
		return 0;
	}
	if (r->status == 412) {
		/* If-None-Match: * — something is there already. Ours? */
		switch (s3_head_uri(s, s->curl, o->uri, h, res, "object exists; "
		    "the HEAD to compare it answered ")) {
		case 1:
			if (s3_same_object(o, h, NULL)) {
				res->outcome = PUT_STORED;
				res->existed = 1;
				xstrlcpy(res->etag, h->etag, sizeof(res->etag));
				s3_set_version(res, h->version_id);
				return 0;
			}
			return 1;
		case 0:
			res->outcome = PUT_RETRY;	/* deleted meanwhile */
			xsnprintf(res->error, sizeof(res->error), "PUT %s: 412, "
			    "but the object is gone", o->key);
			return 0;
		default:
			res->outcome = PUT_RETRY;
			return 0;
		}
	}
	s3_set_http_error(s, res, "", r);
	return 0;
}

/* ---- store_put ------------------------------------------------------------- */

/* The x-amz-meta-* headers of req, malloc'd into meta[] (the caller frees
 * *nmeta of them) and listed in base[]. 0 or -1 (res set). */
static int
put_meta(const struct put_request *req, const char *pkey, char **meta,
    size_t *nmeta, const char **base, size_t *nbase, struct put_result *res)
{
	size_t i, len;

	for (i = 0; i < req->nmeta; i++) {
		if (!meta_ok(req->meta_names[i], req->meta_values[i])) {
			snprintf(res->error, sizeof(res->error), "metadata entry "
			    "%zu for %s is not a lower-case name with a "
			    "printable ASCII value", i, pkey);
			return -1;
		}
		len = strlen(req->meta_names[i]) + strlen(req->meta_values[i]) + 16;
		if ((meta[*nmeta] = malloc(len)) == NULL) {
			res->outcome = PUT_RETRY;
			snprintf(res->error, sizeof(res->error), "out of memory");
			return -1;
		}
		snprintf(meta[*nmeta], len, "x-amz-meta-%s:%s",
		    req->meta_names[i], req->meta_values[i]);
		base[(*nbase)++] = meta[(*nmeta)++];
	}
	return 0;
}

/*
 * A different object is at key: what the collision policy says. 0 try the
 * next suffix; 1 write the same key again as a new version; -1 stop (res
 * says why).
 */
static int
put_collided(struct s3_store *s, const struct put_request *req,
    const char *key, struct put_result *res)
{
	int versioned;

	if (s->cfg->collision == COLLISION_REJECT || req->exact_key) {
		res->outcome = PUT_FATAL;
		xsnprintf(res->error, sizeof(res->error), "a different "
		    "object already exists at %s%s", key, req->exact_key ?
		    "; it is left as it is" : " (collision: reject)");
		return -1;
	}
	if (s->cfg->collision == COLLISION_VERSION &&
	    (versioned = s3_bucket_versioned(s, res)) != 1) {
		/* An unconditional PUT on an unversioned bucket would
		 * destroy the stored object (invariant 2). -1: res
		 * already says why S3 could not be asked. */
		if (versioned == 0) {
			res->outcome = PUT_FATAL;
			xsnprintf(res->error, sizeof(res->error), "a "
			    "different object already exists at %s and "
			    "the bucket is not versioned (collision: "
			    "version needs versioning Enabled; enable it "
			    "or use collision: suffix)", key);
		}
		return -1;
	}
	if (s->cfg->collision == COLLISION_VERSION) {
		log_info("s3: a different object exists at %s; writing "
		    "a new version (collision: version)", key);
		return 1;
	}
	log_info("s3: a different object exists at %s; trying the next "
	    "suffix (collision: suffix)", key);
	return 0;
}

void
s3_store_put(struct s3_store *s, const struct put_request *req,
    struct put_result *res)
{
	const char *base[S3_MAX_META + 10];
	char *meta[S3_MAX_META];
	char hexd[SHA256_HEX], b64[SHA256_B64], key[S3_MAX_KEY + 16];
	char pkey[300];
	uint8_t digest[SHA256_LEN];
	struct s3_resp *r = NULL, *h = NULL;
	struct s3_opts opts;
	struct s3_obj o;
	size_t i, nbase = 0, nmeta = 0;
	int64_t threshold;
	int sfx, force = 0, coll;

	memset(res, 0, sizeof(*res));
	memset(&o, 0, sizeof(o));
	res->outcome = PUT_FATAL;
	xstrlcpy(res->bucket, s->cfg->bucket, sizeof(res->bucket));
	s3_printable(req->key ? req->key : "", pkey, sizeof(pkey));

	if (req->key == NULL || req->key[0] == '\0' ||
	    strlen(req->key) > S3_MAX_KEY - 6) {
		snprintf(res->error, sizeof(res->error), "object key \"%s\" is "
		    "empty or longer than %d bytes", pkey, S3_MAX_KEY - 6);
		return;
	}
	if (parse_hex_digest(req->sha256, digest, hexd) != 0 || req->fd < 0 ||
	    req->size < 0) {
		snprintf(res->error, sizeof(res->error), "bad request for %s: "
		    "needs a file, a size and a hex SHA-256", pkey);
		return;
	}
	if (req->nmeta > S3_MAX_META) {
		snprintf(res->error, sizeof(res->error), "more than %d metadata "
		    "entries for %s", S3_MAX_META, pkey);
		return;
	}
	base64_encode(digest, sizeof(digest), b64);
	if (s3_opts_build(s, req, &opts, res->error, sizeof(res->error)) != 0)
		return;
	for (i = 0; i < opts.n; i++)
		base[nbase++] = opts.h[i];
	if (put_meta(req, pkey, meta, &nmeta, base, &nbase, res) != 0)
		goto done;
	if ((r = malloc(sizeof(*r))) == NULL || (h = malloc(sizeof(*h))) == NULL) {
		res->outcome = PUT_RETRY;
		snprintf(res->error, sizeof(res->error), "out of memory");
		goto done;
	}
	if (req->size == 0 && strcmp(hexd, EMPTY_SHA256) != 0) {
		res->outcome = PUT_RETRY;
		snprintf(res->error, sizeof(res->error), "spooled file for %s "
		    "does not match its SHA-256 %s; not sent", pkey, hexd);
		goto done;
	}
	o.req = req;
	o.b64 = b64;
	o.hexd = hexd;
	o.digest = digest;
	o.base = base;
	o.nbase = nbase;
	threshold = req->multipart_threshold > 0 ? req->multipart_threshold :
	    16 * MiB;
	for (sfx = 0; sfx <= MAX_SUFFIX; sfx++) {
		if (sfx == 0)
			xstrlcpy(key, req->key, sizeof(key));
		else
			xsnprintf(key, sizeof(key), "%s.%d", req->key, sfx);
		o.key = key;
		if (s3_key_uri(s, key, o.uri, sizeof(o.uri)) != 0) {
			snprintf(res->error, sizeof(res->error), "object key %s "
			    "is too long", pkey);
			goto done;
		}
		memset(res, 0, sizeof(*res));
		xstrlcpy(res->bucket, s->cfg->bucket, sizeof(res->bucket));
		if (req->size > threshold)
			coll = s3_put_multipart(s, &o, force, r, h, res);
		else
			coll = s3_put_single(s, &o, !force, r, h, res);
		if (coll == 0)
			break;
		if ((coll = put_collided(s, req, key, res)) == -1)
			break;
		if (coll == 1) {
			force = 1;
			sfx--;		/* same key again, unconditionally */
		}
	}
	if (sfx > MAX_SUFFIX) {
		res->outcome = PUT_FATAL;
		snprintf(res->error, sizeof(res->error), "a different object "
		    "exists at %s and at every suffix up to .%d", pkey, MAX_SUFFIX);
	}
	xstrlcpy(res->key, key, sizeof(res->key));
	if (res->checksum[0] == '\0')
		xstrlcpy(res->checksum, b64, sizeof(res->checksum));
	if (res->outcome == PUT_STORED)
		retry_budget_success();
done:
	for (i = 0; i < nmeta; i++)
		free(meta[i]);
	free(r);
	free(h);
}
