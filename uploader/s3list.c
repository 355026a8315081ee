/*
 * s3list.c - one ListObjectsV2 reply (<ListBucketResult>) read through the
 * uploader's XML walker (s3xml.c: a DOCTYPE or entity declaration is
 * refused, so nothing is ever expanded; element text is bounded). A key
 * longer than S3 allows is an error, never cut.
 */
#include "uploader/store.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "uploader/s3xml.h"

#define LIST_KEY_MAX	1024		/* S3's limit on a key, in bytes */

struct lparse {
	char		 key[LIST_KEY_MAX + 1];
	int		 has_key;
	int64_t		 size;
	int		 truncated;
	char		*token;
	size_t		 tokenlen;
	int		 root_ok;	/* the root ended: <ListBucketResult> */
	int		 over;		/* a key or token empty or too long */
	int		 bad_size;
	int		 stop;		/* fn's non-zero answer */
	int		(*fn)(void *, const char *, int64_t);
	void		*arg;
};

#define LB	"ListBucketResult/"

static int
on_elem(void *arg, const char *path, const char *text, size_t n)
{
	struct lparse *l = arg;

	if (strcmp(path, LB "Contents/Key") == 0) {
		if (n > LIST_KEY_MAX || n == 0)
			l->over = 1;
		else {
			memcpy(l->key, text, n + 1);
			l->has_key = 1;
		}
	} else if (strcmp(path, LB "Contents/Size") == 0) {
		if (parse_int64(text, 0, INT64_MAX, &l->size) != 0)
			l->bad_size = 1;
	} else if (strcmp(path, LB "IsTruncated") == 0)
		l->truncated = strcmp(text, "true") == 0;
	else if (strcmp(path, LB "NextContinuationToken") == 0) {
		if (n >= l->tokenlen)
			l->over = 1;
		else
			memcpy(l->token, text, n + 1);
	} else if (strcmp(path, LB "Contents") == 0) {
		if (!l->has_key)
			l->over = 1;
		else if (!l->over && !l->bad_size)
			l->stop = l->fn(l->arg, l->key, l->size);
		l->has_key = 0;
		l->size = -1;
	} else if (strcmp(path, "ListBucketResult") == 0)
		l->root_ok = 1;
	return l->over || l->bad_size || l->stop != 0;
}

int
s3_list_parse(const char *body, size_t len,
    int (*fn)(void *, const char *, int64_t), void *arg, int *truncated,
    char *token, size_t tokenlen, char *err, size_t errlen)
{
	struct lparse l;
	char werr[256];
	int rc = -1, w;

	*truncated = 0;
	if (tokenlen > 0)
		token[0] = '\0';
	if (errlen > 0)
		err[0] = '\0';
	if (len > S3XML_MAX || tokenlen == 0) {
		xsnprintf(err, errlen, "the listing is larger than %d bytes",
		    S3XML_MAX);
		return -1;
	}
	memset(&l, 0, sizeof(l));
	l.fn = fn;
	l.arg = arg;
	l.token = token;
	l.tokenlen = tokenlen;
	l.size = -1;
	w = s3xml_walk(body, len, on_elem, &l, werr, sizeof(werr));
	if (l.stop != 0)
		rc = l.stop;
	else if (l.over)
		xsnprintf(err, errlen, "the listing has a key or token that is "
		    "empty or too long");
	else if (l.bad_size)
		xsnprintf(err, errlen, "the listing has an object whose Size "
		    "is not a number");
	else if (w != 0)
		xsnprintf(err, errlen, "%s", werr);
	else if (!l.root_ok)
		xsnprintf(err, errlen, "the reply is not a ListBucketResult");
	else {
		*truncated = l.truncated;
		rc = 0;
	}
	if (rc == -1 && tokenlen > 0)
		token[0] = '\0';
	return rc;
}
