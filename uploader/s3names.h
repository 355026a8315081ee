/*
 * s3names.h - S3's rules for the names sluice.yaml gives: bucket names, key
 * prefixes, endpoints and regions. Pure checks with no state and no I/O, so
 * the config loader (policy/config.c) can call them without the uploader's
 * credentials or store code (uploader/store.h stays the uploader's own).
 *
 * Every *_problem function returns NULL when the name is good, else a static
 * string saying why not, written to follow the name (or the key path) in a
 * message; it never contains the checked text itself.
 */
#ifndef SLUICE_S3NAMES_H
#define SLUICE_S3NAMES_H

#include <stddef.h>

/* The bucket name b[0..n) (not NUL-terminated: the part of an s3:// URL
 * before its first '/'): 3 to 63 lower-case letters, digits, dots and
 * hyphens, not an IP address, no reserved prefix or suffix. */
const char *s3_bucket_problem(const char *b, size_t n);

/* A key prefix (the part of s3://bucket/ after the bucket, or a
 * rejected_prefix): no leading '/', no "//", "." or ".." segments, no
 * backslashes, at most 512 bytes. "" is good. */
const char *s3_prefix_problem(const char *p);

/*
 * An endpoint "http[s]://host[:port][/]": host a DNS name, an IPv4 address
 * or [IPv6]; no user:password@, path, query or fragment. NULL if good, with
 * *len set to the length of e without its trailing '/'. When the reason is
 * set and *secret is 1 the endpoint may hold a password: the caller must
 * not echo it.
 */
const char *s3_endpoint_problem(const char *e, size_t *len, int *secret);

/* A region name: 1 to 64 letters, digits, '-', '_' or '.'. */
const char *s3_region_problem(const char *r);

#endif
