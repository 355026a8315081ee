/*
 * expo.h - the Prometheus text exposition format (version 0.0.4), written
 * into a growing buffer with a hard cap.
 *
 *   # HELP name text          (text: '\' and newline escaped)
 *   # TYPE name counter|gauge|histogram
 *   name{label="value",...} 12
 *
 * Label values escape '\' as \\, '"' as \" and a newline as \n; every
 * other byte is copied as is (the format is UTF-8). Values print as
 * integers when they are whole numbers below 2^53, else as %.17g; NaN and
 * infinities as NaN, +Inf, -Inf.
 *
 * Ownership: struct expo owns its buffer (expo_free); every other pointer
 * is borrowed. Errors (out of memory, past the cap, a bad name) are sticky:
 * expo_failed() tells, and the buffer then holds what fitted before.
 */
#ifndef SLUICE_EXPO_H
#define SLUICE_EXPO_H

#include <stddef.h>

#define EXPO_MAX	(4 * 1024 * 1024)	/* a scrape larger is refused */

struct expo {
	char	*buf;		/* NUL-terminated */
	size_t	 len;
	size_t	 cap;
	size_t	 max;
	int	 failed;
};

void expo_init(struct expo *, size_t max);
void expo_free(struct expo *);
int expo_failed(const struct expo *);

/* The label value in escaped form into out. 0, or -1 when it does not fit
 * (out is then ""). */
int expo_escape(const char *in, char *out, size_t outlen);
/* 1 if name is a metric or label name ([a-zA-Z_:][a-zA-Z0-9_:]*; labels
 * have no ':', pass is_label). */
int expo_name_ok(const char *name, int is_label);

/* # HELP and # TYPE lines of a family. */
void expo_family(struct expo *, const char *name, const char *type,
    const char *help);
/* One sample: name, then label name/value pairs ending with NULL, then
 * the value is given first: expo_sample(e, "x_total", 3.0, "partner",
 * "acme", NULL). */
void expo_sample(struct expo *, const char *name, double value, ...)
    __attribute__((sentinel));
/* One histogram's _bucket (cumulative counts, le as given), _sum and
 * _count lines. bounds[n] and counts[n] (counts[i]: observations <=
 * bounds[i]); count: all observations (the +Inf bucket). */
void expo_histogram(struct expo *, const char *name, const double *bounds,
    const double *counts, size_t n, double sum, double count);

#endif
