/*
 * s3multi.c - a multipart upload (s3_put_multipart): the file hashed in one
 * pass while several threads (one CURL handle each) send the parts, each
 * checked against its digest as it is read; the upload id and every stored
 * part persisted through put_request.mp, so a restart resumes after
 * ListParts confirms what S3 kept; CompleteMultipartUpload with the part
 * checksums, then the verifying HEAD (composite SHA-256, "-N").
 */
#include "uploader/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/log.h"
#include "common/util.h"
#include "uploader/s3int.h"
#include "uploader/s3xml.h"

struct mp_job {
	struct s3_store	*s;
	struct s3_obj	*o;
	const struct mp_hooks *hooks;
	char		 upload_id[1024];
	char		 eid[3100];		/* upload id, query-encoded */
	int64_t		 part_size;
	int		 nparts;
	uint8_t		(*digests)[SHA256_LEN];
	char		(*etags)[128];
	unsigned char	*done;
	pthread_mutex_t	 mu;
	pthread_cond_t	 hashed_cv;
	int		 hashed;		/* parts whose digest is known */
	int		 next;
	int		 failed;
	int		 gone;			/* NoSuchUpload */
	struct put_result fail;
	int64_t		 max_backoff_ms;
	int		 hash_run;		/* mp_hash ran (ok or not) */
	struct s3_resp	*r, *h;			/* the caller's, for requests */
};

static void
mp_fail(struct mp_job *j, const struct put_result *pr, int gone)
{
	pthread_mutex_lock(&j->mu);
	if (!j->failed) {
		j->failed = 1;
		memcpy(&j->fail, pr, sizeof(j->fail));
	}
	if (gone)
		j->gone = 1;
	pthread_mutex_unlock(&j->mu);
}

/* One part, retried in place a few times. 0 or -1 (j->fail set). */
static int
mp_put_part(struct mp_job *j, CURL *curl, struct s3_upload *up,
    struct s3_resp *r, int i)
{
	struct put_result pr;
	struct mp_part p;
	const char *extra[2];
	char hck[SHA256_B64 + 40], hex[SHA256_HEX], b64[SHA256_B64];
	char query[3200], code[64];
	int attempt, gone;
	CURLcode c;

	hex_encode(j->digests[i], SHA256_LEN, hex);
	base64_encode(j->digests[i], SHA256_LEN, b64);
	xsnprintf(hck, sizeof(hck), "x-amz-checksum-sha256:%s", b64);
	extra[0] = hck;
	extra[1] = "x-amz-sdk-checksum-algorithm:SHA256";
	if (xsnprintf(query, sizeof(query), "partNumber=%d&uploadId=%s", i + 1,
	    j->eid) < 0)
		return -1;
	up->fd = j->o->req->fd;
	up->start = (int64_t)i * j->part_size;
	up->size = j->o->req->size - up->start < j->part_size ?
	    j->o->req->size - up->start : j->part_size;
	up->want = j->digests[i];
	for (attempt = 0;; attempt++) {
		memset(&pr, 0, sizeof(pr));
		gone = 0;
		c = s3_request(j->s, curl, "PUT", j->o->uri, query, extra, 2, hex,
		    up, r);
		if (up->err != UP_OK) {
			pr.outcome = up->err == UP_SHORT ? PUT_FATAL : PUT_RETRY;
			xsnprintf(pr.error, sizeof(pr.error), "part %d of %s: "
			    "the spooled file %s", i + 1, j->o->key,
			    up->err == UP_SHORT ? "is shorter than recorded" :
			    up->err == UP_IO ? "cannot be read" :
			    "does not match the part's SHA-256");
		} else if (c != CURLE_OK) {
			s3_set_curl_error(j->s, &pr, "", c, r);
		} else if (r->status == 200 && r->etag[0] != '\0') {
			memset(&p, 0, sizeof(p));
			p.number = i + 1;
			xstrlcpy(p.etag, r->etag, sizeof(p.etag));
			xstrlcpy(p.checksum, b64, sizeof(p.checksum));
			pthread_mutex_lock(&j->mu);
			xstrlcpy(j->etags[i], r->etag, sizeof(j->etags[i]));
			j->done[i] = 1;
			if (j->hooks != NULL && j->hooks->part != NULL &&
			    j->hooks->part(j->hooks->arg, &p) != 0)
				log_warnx("s3: %s part %d stored but not "
				    "recorded; a restart sends it again",
				    j->o->key, i + 1);
			pthread_mutex_unlock(&j->mu);
			retry_budget_success();
			return 0;
		} else {
			s3_set_http_error(j->s, &pr, "", r);
			s3_resp_code(r, code, sizeof(code));
			if (strcmp(code, "NoSuchUpload") == 0) {
				pr.outcome = PUT_RETRY;
				gone = 1;
			}
		}
		if (pr.outcome != PUT_RETRY || gone || attempt + 1 >= MP_PART_TRIES ||
		    (j->s->cancel != NULL && *j->s->cancel) || j->failed ||
		    !retry_budget_take(pr.timeout ? RETRY_TIMEOUT_COST : RETRY_COST)) {
			mp_fail(j, &pr, gone);
			return -1;
		}
		log_info("s3: %s part %d: %s; retrying", j->o->key, i + 1,
		    pr.error);
		usleep((useconds_t)(retry_backoff_ms(attempt, 200,
		    j->max_backoff_ms) * 1000));
	}
}

static void *
mp_worker(void *arg)
{
	struct mp_job *j = arg;
	struct s3_upload up;
	struct s3_resp *r;
	CURL *curl;
	struct put_result pr;
	int i;

	memset(&up, 0, sizeof(up));
	memset(&pr, 0, sizeof(pr));
	curl = curl_easy_init();
	r = malloc(sizeof(*r));
	up.h = sha256_new();
	if (curl == NULL || r == NULL || up.h == NULL) {
		pr.outcome = PUT_RETRY;
		xsnprintf(pr.error, sizeof(pr.error), "out of memory");
		mp_fail(j, &pr, 0);
		goto out;
	}
	for (;;) {
		pthread_mutex_lock(&j->mu);
		while (j->next < j->nparts && j->done[j->next])
			j->next++;
		i = j->failed || (j->s->cancel && *j->s->cancel) ? j->nparts :
		    j->next++;
		/* Sent only once the hashing pass vouched for its bytes. */
		while (i < j->nparts && j->hashed <= i && !j->failed)
			pthread_cond_wait(&j->hashed_cv, &j->mu);
		if (j->failed)
			i = j->nparts;
		pthread_mutex_unlock(&j->mu);
		if (i >= j->nparts)
			break;
		if (mp_put_part(j, curl, &up, r, i) != 0)
			break;
	}
out:
	sha256_free(up.h);
	free(r);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	return NULL;
}

/*
 * Hashes the file in one pass: each part's SHA-256 and the whole. Part i's
 * digest is published (j->hashed) as soon as it is known, so the part
 * workers may already send it (they check the bytes they send against it);
 * the whole-file SHA-256 is compared with the receipt's before the upload
 * can be completed. 0, or -1 (res set, and the job failed: workers stop).
 */
static int
mp_hash(struct mp_job *j, struct put_result *res)
{
	const struct put_request *req = j->o->req;
	struct sha256 *whole = NULL, *part = NULL;
	uint8_t d[SHA256_LEN];
	char *buf = NULL;
	int64_t off = 0, pend, n;
	ssize_t got;
	int i = 0, rc = -1;

	if ((buf = malloc(MiB)) == NULL || (whole = sha256_new()) == NULL ||
	    (part = sha256_new()) == NULL) {
		res->outcome = PUT_RETRY;
		xsnprintf(res->error, sizeof(res->error), "out of memory");
		goto fail;
	}
	for (i = 0; i < j->nparts; i++) {
		pthread_mutex_lock(&j->mu);
		if (j->failed) {		/* a part failed: no use going on */
			memcpy(res, &j->fail, sizeof(*res));
			pthread_mutex_unlock(&j->mu);
			goto fail;
		}
		pthread_mutex_unlock(&j->mu);
		pend = (int64_t)(i + 1) * j->part_size;
		if (pend > req->size)
			pend = req->size;
		sha256_reset(part);
		while (off < pend) {
			n = pend - off < MiB ? pend - off : MiB;
			got = pread(req->fd, buf, (size_t)n, (off_t)off);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				res->outcome = got == 0 ? PUT_FATAL : PUT_RETRY;
				xsnprintf(res->error, sizeof(res->error), "reading "
				    "the spooled file for %s: %s", j->o->key,
				    got == 0 ? "shorter than recorded" :
				    strerror(errno));
				goto fail;
			}
			if (sha256_update(part, buf, (size_t)got) != 0 ||
			    sha256_update(whole, buf, (size_t)got) != 0)
				goto hashfail;
			off += got;
		}
		if (sha256_final(part, j->digests[i]) != 0)
			goto hashfail;
		pthread_mutex_lock(&j->mu);
		j->hashed = i + 1;
		pthread_cond_broadcast(&j->hashed_cv);
		pthread_mutex_unlock(&j->mu);
		if (j->s->cancel != NULL && *j->s->cancel) {
			res->outcome = PUT_RETRY;
			xsnprintf(res->error, sizeof(res->error), "stopping");
			goto fail;
		}
	}
	if (sha256_final(whole, d) != 0)
		goto hashfail;
	if (memcmp(d, j->o->digest, SHA256_LEN) != 0) {
		res->outcome = PUT_RETRY;
		xsnprintf(res->error, sizeof(res->error), "spooled file for %s "
		    "does not match its SHA-256 %s; not sent", j->o->key,
		    j->o->hexd);
		goto fail;
	}
	rc = 0;
	goto fail;
hashfail:
	res->outcome = PUT_RETRY;
	xsnprintf(res->error, sizeof(res->error), "SHA-256 failed");
fail:
	if (rc != 0)
		mp_fail(j, res, 0);
	pthread_mutex_lock(&j->mu);
	pthread_cond_broadcast(&j->hashed_cv);	/* waiters see j->failed */
	pthread_mutex_unlock(&j->mu);
	sha256_free(whole);
	sha256_free(part);
	free(buf);
	return rc;
}

/* S3's checksum of a multipart object: SHA-256 of the part digests, "-N". */
static void
mp_composite(const struct mp_job *j, char *out, size_t outlen)
{
	struct sha256 *ch;
	uint8_t cd[SHA256_LEN];
	char b64[SHA256_B64];
	int i, bad;

	bad = (ch = sha256_new()) == NULL;
	for (i = 0; !bad && i < j->nparts; i++)
		bad = sha256_update(ch, j->digests[i], SHA256_LEN) != 0;
	if (bad || sha256_final(ch, cd) != 0) {
		xstrlcpy(out, "", outlen);	/* matches no stored checksum */
		sha256_free(ch);
		return;
	}
	sha256_free(ch);
	base64_encode(cd, sizeof(cd), b64);
	xsnprintf(out, outlen, "%s-%d", b64, j->nparts);
}

/* The CompleteMultipartUpload body of a finished job (s3xml.c escapes
 * it); malloc'd, or NULL. */
static char *
mp_complete_body(const struct mp_job *j, size_t *len)
{
	struct s3xml_part *p;
	char (*b64)[SHA256_B64];
	char *xml = NULL;
	int i;

	p = calloc((size_t)j->nparts, sizeof(*p));
	b64 = calloc((size_t)j->nparts, sizeof(*b64));
	if (p != NULL && b64 != NULL) {
		for (i = 0; i < j->nparts; i++) {
			base64_encode(j->digests[i], SHA256_LEN, b64[i]);
			p[i].number = i + 1;
			p[i].etag = j->etags[i];
			p[i].checksum = b64[i];
		}
		xml = s3xml_complete_body(p, (size_t)j->nparts, len);
	}
	free(p);
	free(b64);
	return xml;
}

/* What one ListParts page says, read part by part. */
struct lp_walk {
	struct mp_job	*j;
	char		 num[32];
	char		 etag[256];
	char		 trunc[16];
	char		 next[32];
};

/* A saved part S3 still has with the same ETag and our bytes: done. */
static void
lp_part(struct mp_job *j, const char *num, const char *etag_in)
{
	const struct mp_hooks *hk = j->hooks;
	char etag[256], want[256], b64[SHA256_B64];
	int64_t pn;
	size_t k;

	s3_etag_norm(etag_in, etag, sizeof(etag));
	if (parse_int64(num, 1, MP_MAX_PARTS, &pn) != 0 || pn > j->nparts)
		return;
	for (k = 0; k < hk->nparts; k++) {
		if (hk->parts[k].number != (int)pn)
			continue;
		s3_etag_norm(hk->parts[k].etag, want, sizeof(want));
		if (strcmp(want, etag) == 0) {
			base64_encode(j->digests[pn - 1], SHA256_LEN, b64);
			/* Same bytes as when it was sent? */
			if (strcmp(b64, hk->parts[k].checksum) != 0)
				break;
			j->done[pn - 1] = 1;
			xstrlcpy(j->etags[pn - 1], hk->parts[k].etag,
			    sizeof(j->etags[pn - 1]));
		}
		break;
	}
}

/* Under whatever root: moto says ListPartsResponse, S3 ListPartsResult. */
#define LP	"/*/"

static int
lp_elem(void *arg, const char *path, const char *text, size_t len)
{
	struct lp_walk *w = arg;

	if (s3xml_match(path, LP "Part/PartNumber"))
		xstrlcpy(w->num, len < sizeof(w->num) ? text : "", sizeof(w->num));
	else if (s3xml_match(path, LP "Part/ETag"))
		xstrlcpy(w->etag, len < sizeof(w->etag) ? text : "",
		    sizeof(w->etag));
	else if (s3xml_match(path, LP "Part")) {
		lp_part(w->j, w->num, w->etag);
		w->num[0] = w->etag[0] = '\0';
	} else if (s3xml_match(path, LP "IsTruncated"))
		xstrlcpy(w->trunc, text, sizeof(w->trunc));
	else if (s3xml_match(path, LP "NextPartNumberMarker"))
		xstrlcpy(w->next, len < sizeof(w->next) ? text : "",
		    sizeof(w->next));
	return 0;
}

/*
 * ListParts: marks done[] for the saved parts S3 still has with the same
 * ETag. 0; 1 when the upload is gone (NoSuchUpload); -1 (res set).
 */
static int
mp_list_parts(struct mp_job *j, struct s3_resp *r, struct put_result *res)
{
	struct lp_walk w;
	char query[3300], err[256];
	int64_t pn, marker = 0;
	CURLcode c;

	for (;;) {
		if (marker > 0)
			xsnprintf(query, sizeof(query), "part-number-marker=%lld&"
			    "uploadId=%s", (long long)marker, j->eid);
		else
			xsnprintf(query, sizeof(query), "uploadId=%s", j->eid);
		c = s3_request(j->s, j->s->curl, "GET", j->o->uri, query, NULL, 0,
		    EMPTY_SHA256, NULL, r);
		if (c != CURLE_OK) {
			s3_set_curl_error(j->s, res, "ListParts: ", c, r);
			return -1;
		}
		if (r->status == 404)
			return 1;
		if (r->status != 200) {
			s3_set_http_error(j->s, res, "ListParts: ", r);
			return -1;
		}
		/* A page cut short still vouches for the parts it lists. */
		memset(&w, 0, sizeof(w));
		w.j = j;
		(void)s3xml_walk(r->body, r->bodylen, lp_elem, &w, err,
		    sizeof(err));
		if (strcmp(w.trunc, "true") != 0 ||
		    parse_int64(w.next, 1, MP_MAX_PARTS, &pn) != 0 || pn <= marker)
			return 0;
		marker = pn;
	}
}

/* Part size and count (a resumed upload keeps its size), and the per-part
 * arrays. 0 or -1 (res set). */
static int
mp_job_init(struct mp_job *j, struct s3_store *s, struct s3_obj *o,
    struct put_result *res)
{
	const struct put_request *req = o->req;
	const struct mp_hooks *hk = req->mp;
	int64_t ps;

	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->hashed_cv, NULL);
	j->s = s;
	j->o = o;
	j->hooks = hk;
	j->max_backoff_ms = req->max_backoff_ms > 0 ? req->max_backoff_ms :
	    20000;
	ps = req->part_size > 0 ? req->part_size : 8 * MiB;
	if (ps < MP_MIN_PART)
		ps = MP_MIN_PART;
	if (hk != NULL && hk->upload_id != NULL && hk->key != NULL &&
	    strcmp(hk->key, o->key) == 0 && hk->part_size >= MP_MIN_PART)
		ps = hk->part_size;	/* resume with the size it began with */
	while ((req->size + ps - 1) / ps > MP_MAX_PARTS)
		ps += MiB;
	j->part_size = ps;
	j->nparts = (int)((req->size + ps - 1) / ps);
	j->digests = calloc((size_t)j->nparts, sizeof(*j->digests));
	j->etags = calloc((size_t)j->nparts, sizeof(*j->etags));
	j->done = calloc((size_t)j->nparts, 1);
	if (j->digests == NULL || j->etags == NULL || j->done == NULL) {
		res->outcome = PUT_RETRY;
		xsnprintf(res->error, sizeof(res->error), "out of memory");
		return -1;
	}
	res->nparts = j->nparts;
	return 0;
}

static void
mp_job_free(struct mp_job *j)
{
	pthread_cond_destroy(&j->hashed_cv);
	pthread_mutex_destroy(&j->mu);
	free(j->digests);
	free(j->etags);
	free(j->done);
}

/* The hashing pass, unless it ran already. 0 or -1 (res set). */
static int
mp_hash_once(struct mp_job *j, struct put_result *res)
{
	if (j->hash_run)
		return j->failed ? -1 : 0;
	j->hash_run = 1;
	return mp_hash(j, res);
}

/* The saved upload is no longer wanted: forget it. */
static void
mp_forget(const struct mp_job *j)
{
	if (j->hooks != NULL && j->hooks->forget != NULL)
		j->hooks->forget(j->hooks->arg);
}

/* An identical object is at the key already: res says stored. */
static void
mp_existed(struct mp_job *j, const char *composite, struct put_result *res)
{
	res->outcome = PUT_STORED;
	res->existed = 1;
	xstrlcpy(res->etag, j->h->etag, sizeof(res->etag));
	s3_set_version(res, j->h->version_id);
	xstrlcpy(res->checksum, composite, sizeof(res->checksum));
}

/*
 * Before a new upload: is an object at the key already (a crash after
 * Complete, or someone else's)? 0 none, go on; 1 a different one; 2 done
 * (res filled: ours is there, or the HEAD failed).
 */
static int
mp_existing(struct mp_job *j, struct put_result *res)
{
	const struct mp_hooks *hk = j->hooks;
	char composite[80];
	int e;

	e = s3_head_uri(j->s, j->s->curl, j->o->uri, j->h, res,
	    "HEAD before upload: ");
	if (e != 1)
		return e == 0 ? 0 : 2;
	if (mp_hash_once(j, res) != 0)
		return 2;
	mp_composite(j, composite, sizeof(composite));
	if (!s3_same_object(j->o, j->h, composite))
		return 1;
	mp_existed(j, composite, res);
	if (hk != NULL && hk->upload_id != NULL) {
		s3_abort_upload(j->s, j->s->curl, j->o->uri, hk->upload_id, j->r);
		mp_forget(j);
	}
	return 2;
}

/*
 * The saved upload: resumed when it is this object's (ListParts says which
 * parts S3 kept), else aborted and forgotten. 0 (j->upload_id "" when there
 * is none to resume) or -1 (res set).
 */
static int
mp_resume(struct mp_job *j, struct put_result *res)
{
	const struct mp_hooks *hk = j->hooks;
	char ouri[S3_MAX_URI];
	int e, todo, i;

	if (hk == NULL || hk->upload_id == NULL || hk->upload_id[0] == '\0')
		return 0;
	if (hk->key == NULL || strcmp(hk->key, j->o->key) != 0 ||
	    hk->part_size != j->part_size) {
		if (hk->key != NULL && s3_key_uri(j->s, hk->key, ouri,
		    sizeof(ouri)) == 0)
			s3_abort_upload(j->s, j->s->curl, ouri, hk->upload_id,
			    j->r);
		mp_forget(j);
		return 0;
	}
	xstrlcpy(j->upload_id, hk->upload_id, sizeof(j->upload_id));
	if (s3_uri_encode(j->upload_id, j->eid, sizeof(j->eid), 0) != 0) {
		j->upload_id[0] = '\0';
		return 0;
	}
	if ((e = mp_list_parts(j, j->r, res)) == -1)
		return -1;
	if (e == 1) {
		log_info("s3: %s: upload %s is gone; starting over", j->o->key,
		    j->upload_id);
		memset(j->done, 0, (size_t)j->nparts);
		j->upload_id[0] = '\0';
		mp_forget(j);
		return 0;
	}
	for (i = 0, todo = 0; i < j->nparts; i++)
		todo += !j->done[i];
	log_info("s3: %s: resuming upload: %d of %d parts already stored",
	    j->o->key, j->nparts - todo, j->nparts);
	return 0;
}

/* CreateMultipartUpload, recorded through the hooks. 0 or -1 (res set). */
static int
mp_create(struct mp_job *j, struct put_result *res)
{
	const struct mp_hooks *hk = j->hooks;
	struct s3_obj *o = j->o;
	struct s3_resp *r = j->r;
	const char *extra[S3_MAX_META + 16];
	struct s3_upload up;
	size_t n = 0, k;
	CURLcode c;

	extra[n++] = "x-amz-checksum-algorithm:SHA256";
	for (k = 0; k < o->nbase; k++)
		extra[n++] = o->base[k];
	memset(&up, 0, sizeof(up));
	up.mem = "";
	up.size = 0;
	c = s3_request(j->s, j->s->curl, "POST", o->uri, "uploads=", extra, n,
	    EMPTY_SHA256, &up, r);
	if (c != CURLE_OK) {
		s3_set_curl_error(j->s, res, "CreateMultipartUpload: ", c, r);
		return -1;
	}
	if (r->status == 200 && s3xml_text(r->body, r->bodylen,
	    "/*/UploadId", j->upload_id,
	    sizeof(j->upload_id), NULL) != 1)
		j->upload_id[0] = '\0';
	if (r->status != 200 || j->upload_id[0] == '\0') {
		s3_set_http_error(j->s, res, "CreateMultipartUpload: ", r);
		if (r->status == 200)
			res->outcome = PUT_RETRY;
		return -1;
	}
	if (s3_uri_encode(j->upload_id, j->eid, sizeof(j->eid), 0) != 0 ||
	    (hk != NULL && hk->begin != NULL && hk->begin(hk->arg, o->key,
	    j->upload_id, j->part_size, j->nparts) != 0)) {
		s3_abort_upload(j->s, j->s->curl, o->uri, j->upload_id, r);
		res->outcome = PUT_RETRY;
		xsnprintf(res->error, sizeof(res->error), "cannot record "
		    "the multipart upload of %s", o->key);
		return -1;
	}
	return 0;
}

/*
 * The parts not yet stored, several at a time, while this thread hashes the
 * file (unless that ran already). 0 when every part is stored, or -1 (res
 * set).
 */
static int
mp_send(struct mp_job *j, int parallel, struct put_result *res)
{
	pthread_t tids[16];
	int i, todo, nthreads, started = 0;

	for (i = 0, todo = 0; i < j->nparts; i++)
		todo += !j->done[i];
	nthreads = parallel > 0 ? parallel : 4;
	if (nthreads > (int)(sizeof(tids) / sizeof(tids[0])))
		nthreads = (int)(sizeof(tids) / sizeof(tids[0]));
	if (nthreads > todo)
		nthreads = todo;
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&tids[i], NULL, mp_worker, j) != 0)
			break;
		started++;
	}
	if (started == 0 && todo > 0) {
		if (mp_hash_once(j, res) != 0)
			return -1;
		mp_worker(j);
	}
	(void)mp_hash_once(j, res);	/* a failure fails the job */
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (j->failed || (j->s->cancel != NULL && *j->s->cancel)) {
		if (j->failed)
			memcpy(res, &j->fail, sizeof(*res));
		else {
			res->outcome = PUT_RETRY;
			xsnprintf(res->error, sizeof(res->error), "stopping");
		}
		if (j->gone)
			mp_forget(j);
		return -1;
	}
	for (i = 0; i < j->nparts; i++)
		if (!j->done[i]) {
			res->outcome = PUT_RETRY;
			xsnprintf(res->error, sizeof(res->error), "part %d of %s "
			    "was not sent", i + 1, j->o->key);
			return -1;
		}
	return 0;
}

/*
 * CompleteMultipartUpload answered 412: an earlier run of ours completed it,
 * or someone else wrote the key. 0 res filled; 1 a different object.
 */
static int
mp_complete_412(struct mp_job *j, const char *composite,
    struct put_result *res)
{
	int e;

	e = s3_head_uri(j->s, j->s->curl, j->o->uri, j->h, res, "object "
	    "exists; the HEAD to compare it answered ");
	if (e == 1 && s3_same_object(j->o, j->h, composite)) {
		mp_existed(j, composite, res);
		s3_abort_upload(j->s, j->s->curl, j->o->uri, j->upload_id, j->r);
		mp_forget(j);
		return 0;
	}
	if (e == 1)
		return 1;	/* keep the upload: a new key starts its own */
	res->outcome = PUT_RETRY;
	if (e == 0)
		xsnprintf(res->error, sizeof(res->error), "Complete of %s: 412, "
		    "but the object is gone", j->o->key);
	return 0;
}

/*
 * Completes the upload with the part checksums (conditional unless force),
 * then verifies with a HEAD. 0 res filled; 1 a different object is at the
 * key.
 */
static int
mp_complete(struct mp_job *j, int force, const char *composite,
    struct put_result *res)
{
	struct s3_obj *o = j->o;
	struct s3_resp *r = j->r;
	const char *extra[2];
	char query[3200], cbody[SHA256_HEX], code[64], *xml;
	uint8_t cd[SHA256_LEN];
	struct s3_upload up;
	size_t xlen, n = 0;
	CURLcode c;
	int rc = 0;

	if ((xml = mp_complete_body(j, &xlen)) == NULL ||
	    sha256_buf(xml, xlen, cd) != 0) {
		res->outcome = PUT_RETRY;
		xsnprintf(res->error, sizeof(res->error), "cannot build the "
		    "completion of %s", o->key);
		goto out;
	}
	hex_encode(cd, sizeof(cd), cbody);
	memset(&up, 0, sizeof(up));
	up.mem = xml;
	up.size = (int64_t)xlen;
	xsnprintf(query, sizeof(query), "uploadId=%s", j->eid);
	extra[n++] = "content-type:application/xml";
	/* A Complete of an earlier run may still be under way in the store
	 * (killed while waiting for its answer): never write the key twice. */
	if (!force)
		extra[n++] = "if-none-match:*";
	c = s3_request(j->s, j->s->curl, "POST", o->uri, query, extra, n, cbody,
	    &up, r);
	if (c != CURLE_OK) {
		s3_set_curl_error(j->s, res, "CompleteMultipartUpload: ", c, r);
		goto out;
	}
	if (r->status == 200 && s3xml_text(r->body, r->bodylen, "/Error", code,
	    sizeof(code), NULL) != 0)
		r->status = 500;	/* S3 can fail a completion with 200 */
	if (r->status == 412) {
		rc = mp_complete_412(j, composite, res);
		goto out;
	}
	if (r->status != 200) {
		s3_set_http_error(j->s, res, "CompleteMultipartUpload: ", r);
		s3_resp_code(r, code, sizeof(code));
		if (strcmp(code, "NoSuchUpload") == 0) {
			/* Completed by an earlier try, or aborted: start over;
			 * the HEAD first finds it if it was completed. */
			res->outcome = PUT_RETRY;
			mp_forget(j);
		}
		goto out;
	}
	s3_set_version(res, r->version_id);
	if (s3xml_text(r->body, r->bodylen, "/*/ETag",
	    res->etag, sizeof(res->etag), NULL) != 1)
		res->etag[0] = '\0';
	mp_forget(j);
	s3_verify(j->s, j->s->curl, o, composite, j->h, res);
	xstrlcpy(res->checksum, composite, sizeof(res->checksum));
out:
	free(xml);
	return rc;
}

/* 0: res filled; 1: a different object is at the key. */
int
s3_put_multipart(struct s3_store *s, struct s3_obj *o, int force,
    struct s3_resp *r, struct s3_resp *h, struct put_result *res)
{
	const struct mp_hooks *hk = o->req->mp;
	struct mp_job j;
	char composite[80];
	int rc = 0, e;

	memset(&j, 0, sizeof(j));
	j.r = r;
	j.h = h;
	if (mp_job_init(&j, s, o, res) != 0)
		goto done;
	/*
	 * The file is hashed once. Usually that pass runs while the parts are
	 * being sent (mp_send); a saved upload is checked against the part
	 * digests, and an object already at the key against the composite
	 * checksum, so those need the digests first.
	 */
	if (hk != NULL && hk->upload_id != NULL && hk->upload_id[0] != '\0' &&
	    mp_hash_once(&j, res) != 0)
		goto done;
	if (!force && (e = mp_existing(&j, res)) != 0) {
		rc = e == 1;
		goto done;
	}
	if (mp_resume(&j, res) != 0)
		goto done;
	if (j.upload_id[0] == '\0' && mp_create(&j, res) != 0)
		goto done;
	if (mp_send(&j, o->req->parallel, res) != 0)
		goto done;
	mp_composite(&j, composite, sizeof(composite));
	rc = mp_complete(&j, force, composite, res);
done:
	mp_job_free(&j);
	return rc;
}
