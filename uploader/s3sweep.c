/*
 * s3sweep.c - the stale multipart upload sweep (s3_store_abort_stale):
 * ListMultipartUploads page by page, read with s3xml.c, aborting uploads
 * under the store's prefix older than asked unless the caller keeps them;
 * a sweep stops after STALE_PAGES pages and the next goes on from its
 * markers.
 */
#include "uploader/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "common/log.h"
#include "common/util.h"
#include "uploader/s3int.h"
#include "uploader/s3xml.h"

/* The ListMultipartUploads query from the sweep's markers; 0 or -1. */
static int
list_uploads_query(const struct s3_store *s, char *query, size_t len)
{
	char ekey[3 * S3_MAX_KEY + 1], eid[3 * 1024 + 1];

	if (s->sweep_key[0] == '\0')
		return xsnprintf(query, len, "max-uploads=%d&uploads=",
		    STALE_PAGE) < 0 ? -1 : 0;
	if (s3_uri_encode(s->sweep_key, ekey, sizeof(ekey), 0) != 0 ||
	    s3_uri_encode(s->sweep_id, eid, sizeof(eid), 0) != 0)
		return -1;
	/* Canonical order: key-marker, max-uploads, upload-id-marker, uploads. */
	if (s->sweep_id[0] == '\0')
		return xsnprintf(query, len, "key-marker=%s&max-uploads=%d&"
		    "uploads=", ekey, STALE_PAGE) < 0 ? -1 : 0;
	return xsnprintf(query, len, "key-marker=%s&max-uploads=%d&"
	    "upload-id-marker=%s&uploads=", ekey, STALE_PAGE, eid) < 0 ? -1 : 0;
}

/* One page of ListMultipartUploads, read upload by upload. */
struct sweep_walk {
	struct s3_store	*s;
	struct s3_resp	*a;		/* for the aborts */
	const char	*prefix;
	int64_t		 older_s;
	int		(*keep)(void *, const char *, const char *);
	void		*arg;
	int		 n;		/* aborted */
	char		 key[S3_MAX_KEY * 2];
	char		 id[1024];
	char		 when[64];
	char		 last_key[S3_MAX_KEY * 2];
	char		 last_id[1024];
	char		 trunc[16];
	char		 nkey[S3_MAX_KEY * 2];
	char		 nid[1024];
	int		 complete;	/* the root ended */
};

/*
 * Moves the sweep's markers past one page: to NextKeyMarker and
 * NextUploadIdMarker, or after the last upload seen (last_key, last_id) when
 * the server gave none or the body was cut at S3_BODY_MAX. 1 when there is a
 * next page, 0 when the listing is done (markers reset).
 */
static int
list_uploads_next(struct s3_store *s, struct sweep_walk *w)
{
	if (w->complete && strcmp(w->trunc, "true") != 0)
		goto done;
	if (!w->complete || w->nkey[0] == '\0') {
		/* Cut short, or no markers: go on after the last upload. */
		xstrlcpy(w->nkey, w->last_key, sizeof(w->nkey));
		xstrlcpy(w->nid, w->last_id, sizeof(w->nid));
	}
	if (w->nkey[0] == '\0' || strlen(w->nkey) > S3_MAX_KEY ||
	    (strcmp(w->nkey, s->sweep_key) == 0 &&
	    strcmp(w->nid, s->sweep_id) == 0)) {
		log_warnx("s3: the list of multipart uploads is truncated but "
		    "gives no usable next marker; the sweep starts over next "
		    "time");
		goto done;
	}
	xstrlcpy(s->sweep_key, w->nkey, sizeof(s->sweep_key));
	xstrlcpy(s->sweep_id, w->nid, sizeof(s->sweep_id));
	return 1;
done:
	s->sweep_key[0] = s->sweep_id[0] = '\0';
	return 0;
}

/* One listed upload: abort it if it is under the prefix, old and not kept. */
static void
sweep_upload(struct sweep_walk *w)
{
	char kuri[S3_MAX_URI];
	struct tm tm;
	time_t t;

	if (w->key[0] != '\0' && w->id[0] != '\0') {
		xstrlcpy(w->last_key, w->key, sizeof(w->last_key));
		xstrlcpy(w->last_id, w->id, sizeof(w->last_id));
	}
	memset(&tm, 0, sizeof(tm));
	if (w->key[0] == '\0' || w->id[0] == '\0' ||
	    strncmp(w->key, w->prefix, strlen(w->prefix)) != 0 ||
	    strptime(w->when, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
		return;
	t = timegm(&tm);
	if (s3_now() - t < w->older_s)
		return;
	if (w->keep != NULL && w->keep(w->arg, w->key, w->id))
		return;
	if (s3_key_uri(w->s, w->key, kuri, sizeof(kuri)) != 0)
		return;
	if (s3_abort_upload(w->s, w->s->curl, kuri, w->id, w->a) == 0) {
		log_info("s3: aborted the stale multipart upload of %s "
		    "(started %s)", w->key, w->when);
		w->n++;
	}
}

#define LMU	"ListMultipartUploadsResult"

/* Copies text when it fits, else "" (never a cut key or id). */
static void
text_or_empty(char *out, size_t outlen, const char *text, size_t len)
{
	xstrlcpy(out, len < outlen ? text : "", outlen);
}

static int
sweep_elem(void *arg, const char *path, const char *text, size_t len)
{
	struct sweep_walk *w = arg;

	if (s3xml_match(path, "/*/Upload/Key"))
		text_or_empty(w->key, sizeof(w->key), text, len);
	else if (s3xml_match(path, "/*/Upload/UploadId"))
		text_or_empty(w->id, sizeof(w->id), text, len);
	else if (s3xml_match(path, "/*/Upload/Initiated"))
		text_or_empty(w->when, sizeof(w->when), text, len);
	else if (s3xml_match(path, "/*/Upload")) {
		sweep_upload(w);
		w->key[0] = w->id[0] = w->when[0] = '\0';
	} else if (s3xml_match(path, "/*/IsTruncated"))
		text_or_empty(w->trunc, sizeof(w->trunc), text, len);
	else if (s3xml_match(path, "/*/NextKeyMarker"))
		text_or_empty(w->nkey, sizeof(w->nkey), text, len);
	else if (s3xml_match(path, "/*/NextUploadIdMarker"))
		text_or_empty(w->nid, sizeof(w->nid), text, len);
	else if (strcmp(path, LMU) == 0)
		w->complete = 1;
	return 0;
}

int
s3_store_abort_stale(struct s3_store *s, int64_t older_s,
    int (*keep)(void *, const char *, const char *), void *arg)
{
	struct s3_resp *r, *a;
	struct sweep_walk *w;
	char uri[400], query[8 * 1024], err[256];
	int n = 0, page, more = 1;
	CURLcode c;

	r = malloc(sizeof(*r));
	a = malloc(sizeof(*a));
	if (r == NULL || a == NULL || (w = malloc(sizeof(*w))) == NULL) {
		free(r);
		free(a);
		return -1;
	}
	/* Without prefix= (moto mis-signs queries holding '/'): filter here.
	 * Pages of STALE_PAGE uploads, at most STALE_PAGES of them a sweep;
	 * the next sweep goes on from the markers where this one stopped. */
	xsnprintf(uri, sizeof(uri), "%s/", s->uri_prefix);
	for (page = 0; more && page < STALE_PAGES; page++) {
		if (list_uploads_query(s, query, sizeof(query)) != 0) {
			s->sweep_key[0] = s->sweep_id[0] = '\0';
			log_warnx("s3: a multipart upload marker is too long; the "
			    "sweep starts over next time");
			n = -1;
			goto out;
		}
		c = s3_request(s, s->curl, "GET", uri, query, NULL, 0,
		    EMPTY_SHA256, NULL, r);
		if (c != CURLE_OK || r->status != 200) {
			log_warnx("s3: cannot list multipart uploads at %s: %s "
			    "(HTTP %ld)", s->origin, c == CURLE_OK ? "error" :
			    r->curl_error[0] != '\0' ? r->curl_error :
			    curl_easy_strerror(c), r->status);
			s->sweep_key[0] = s->sweep_id[0] = '\0';
			n = -1;
			goto out;
		}
		memset(w, 0, sizeof(*w));
		w->s = s;
		w->a = a;
		w->prefix = s->cfg->prefix ? s->cfg->prefix : "";
		w->older_s = older_s;
		w->keep = keep;
		w->arg = arg;
		/* A page cut at S3_BODY_MAX: what it lists, then onwards. */
		if (s3xml_walk(r->body, r->bodylen, sweep_elem, w, err,
		    sizeof(err)) != 0)
			w->complete = 0;
		n += w->n;
		more = list_uploads_next(s, w);
	}
	if (more)
		log_info("s3: looked through %d pages of multipart uploads; the "
		    "next sweep goes on from there", STALE_PAGES);
out:
	free(r);
	free(a);
	free(w);
	return n;
}
