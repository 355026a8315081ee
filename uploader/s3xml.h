/*
 * s3xml.h - reading the XML replies of S3 and STS with expat, in one place
 * (s3*.c, s3list.c, stsxml.c all go through it).
 *
 * A document with a DOCTYPE (so any entity declaration, internal or
 * external) is refused before anything in it is expanded; parameter
 * entities are never parsed and no external entity is ever loaded. The five
 * predefined entities and character references are decoded. Sizes are
 * bounded: the body (S3XML_MAX), the nesting (S3XML_DEPTH_MAX) and the text
 * of one element (S3XML_TEXT_MAX): anything longer is an error, never cut.
 * Element names are taken without their namespace prefix ("s3:Key" is
 * "Key"); attributes are ignored.
 *
 * Ownership: nothing is kept between calls. The path and text handed to a
 * callback are borrowed for the call only; the text buffer is wiped before
 * it is freed (STS replies hold secrets).
 */
#ifndef SLUICE_S3XML_H
#define SLUICE_S3XML_H

#include <stddef.h>

#define S3XML_MAX	(16 * 1024 * 1024)	/* bytes of one document */
#define S3XML_TEXT_MAX	8192			/* bytes of one element's text */
#define S3XML_DEPTH_MAX	16			/* nested elements */

/*
 * Called when an element ends: path is the local names from the root down,
 * '/'-separated ("ListPartsResult/Part/ETag"); text is the element's own
 * character data, decoded, NUL-terminated, len bytes (for an element with
 * children: what follows its last child, usually blanks). Returns 0 to go
 * on, anything else to stop the walk (s3xml_walk returns it; use > 0).
 */
typedef int (*s3xml_fn)(void *arg, const char *path, const char *text,
    size_t len);

/*
 * Walks the document body (len bytes, need not be NUL-terminated), calling
 * fn at the end of every element in document order. Returns 0 when the
 * whole document was read, fn's non-zero answer, or -1 (err says why:
 * "has a DOCTYPE ...; refused", "not well-formed XML (line N: ...)",
 * "... too long", "... nested too deep", "larger than ..."). On -1 fn has
 * already been called for the elements that ended before the fault (a body
 * cut short still yields its first elements).
 */
int s3xml_walk(const char *body, size_t len, s3xml_fn fn, void *arg,
    char *err, size_t errlen);

/*
 * 1 if path matches pattern: "/A/B" matches exactly the path "A/B" (from the
 * root); "A/B" matches any path ending in "/A/B", or equal to "A/B"; a
 * component "*" matches any one name: "/", "*", "/Status" run together is
 * the Status under whatever root (stores name their roots differently: moto
 * answers ListParts with ListPartsResponse, S3 with ListPartsResult).
 */
int s3xml_match(const char *path, const char *pattern);

/*
 * The text of the first element matching pattern (s3xml_match) into out.
 * 1 found (out filled), 0 none, -1 the text does not fit outlen (out "").
 * A document that is not well-formed still answers from the elements that
 * ended before the fault (what an error body cut short still says).
 * *whole, when not NULL, is set to 1 if the document was read to its end
 * without a fault, else 0.
 */
int s3xml_text(const char *body, size_t len, const char *pattern, char *out,
    size_t outlen, int *whole);

/*
 * Appends s to out (outlen bytes, NUL-terminated on entry) with & < > " '
 * written as entities, for element text and attribute values. 0, or -1 when
 * it does not fit (out is then cut back to what it held).
 */
int s3xml_escape_cat(char *out, size_t outlen, const char *s);

/* One part of a CompleteMultipartUpload (borrowed strings). */
struct s3xml_part {
	int		 number;	/* 1.. */
	const char	*etag;		/* as S3 gave it: quoted or not */
	const char	*checksum;	/* base64 SHA-256 of the part */
};

/*
 * The CompleteMultipartUpload body for parts[0..n): each ETag with its
 * quotes (added when missing) and every value escaped (an ETag's quotes are
 * &quot;). Returns a malloc'd NUL-terminated string (the caller frees it)
 * and its length in *len, or NULL (out of memory, or n is 0).
 */
char *s3xml_complete_body(const struct s3xml_part *parts, size_t n,
    size_t *len);

#endif
