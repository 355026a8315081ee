/*
 * expo.c - the Prometheus text exposition format (metrics/expo.h).
 */
#include "metrics/expo.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

void
expo_init(struct expo *e, size_t max)
{
	memset(e, 0, sizeof(*e));
	e->max = max > 0 ? max : EXPO_MAX;
}

void
expo_free(struct expo *e)
{
	free(e->buf);
	memset(e, 0, sizeof(*e));
}

int
expo_failed(const struct expo *e)
{
	return e->failed;
}

/* Appends len bytes of s; sticky failure past the cap. */
static void
put(struct expo *e, const char *s, size_t len)
{
	size_t ncap;
	char *nb;

	if (e->failed)
		return;
	if (e->len + len + 1 > e->max) {
		e->failed = 1;
		return;
	}
	if (e->len + len + 1 > e->cap) {
		ncap = e->cap ? e->cap : 4096;
		while (ncap < e->len + len + 1)
			ncap *= 2;
		if (ncap > e->max)
			ncap = e->max;
		if ((nb = realloc(e->buf, ncap)) == NULL) {
			e->failed = 1;
			return;
		}
		e->buf = nb;
		e->cap = ncap;
	}
	memcpy(e->buf + e->len, s, len);
	e->len += len;
	e->buf[e->len] = '\0';
}

static void
puts_(struct expo *e, const char *s)
{
	put(e, s, strlen(s));
}

int
expo_escape(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	const char *rep;
	char one[2] = { 0, 0 };

	if (outlen == 0)
		return -1;
	for (; *in != '\0'; in++) {
		switch (*in) {
		case '\\':	rep = "\\\\"; break;
		case '"':	rep = "\\\""; break;
		case '\n':	rep = "\\n"; break;
		default:	one[0] = *in; rep = one; break;
		}
		if (o + strlen(rep) >= outlen) {
			out[0] = '\0';
			return -1;
		}
		memcpy(out + o, rep, strlen(rep));
		o += strlen(rep);
	}
	out[o] = '\0';
	return 0;
}

int
expo_name_ok(const char *name, int is_label)
{
	const char *p;

	if (name == NULL || name[0] == '\0' ||
	    (name[0] >= '0' && name[0] <= '9'))
		return 0;
	for (p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' ||
		    (*p == ':' && !is_label)))
			return 0;
	return 1;
}

/* HELP text: '\' as \\ and a newline as \n. */
static void
put_help(struct expo *e, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			puts_(e, "\\\\");
		else if (*s == '\n')
			puts_(e, "\\n");
		else
			put(e, s, 1);
	}
}

void
expo_family(struct expo *e, const char *name, const char *type,
    const char *help)
{
	if (!expo_name_ok(name, 0)) {
		e->failed = 1;
		return;
	}
	puts_(e, "# HELP ");
	puts_(e, name);
	puts_(e, " ");
	put_help(e, help);
	puts_(e, "\n# TYPE ");
	puts_(e, name);
	puts_(e, " ");
	puts_(e, type);
	puts_(e, "\n");
}

static void
put_value(struct expo *e, double v)
{
	char num[64];

	if (isnan(v))
		xstrlcpy(num, "NaN", sizeof(num));
	else if (isinf(v))
		xstrlcpy(num, v > 0 ? "+Inf" : "-Inf", sizeof(num));
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)
		(void)xsnprintf(num, sizeof(num), "%.0f", v);
	else
		(void)xsnprintf(num, sizeof(num), "%.17g", v);
	puts_(e, num);
}

/* name{k="v",...} value\n from a va_list of pairs (NULL-terminated). */
static void
put_sample(struct expo *e, const char *name, double value, va_list ap)
{
	const char *k, *v;
	char esc[1024];
	int n = 0;

	if (!expo_name_ok(name, 0)) {
		e->failed = 1;
		return;
	}
	puts_(e, name);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		if (!expo_name_ok(k, 1) || v == NULL ||
		    expo_escape(v, esc, sizeof(esc)) == -1) {
			e->failed = 1;
			return;
		}
		puts_(e, n++ == 0 ? "{" : ",");
		puts_(e, k);
		puts_(e, "=\"");
		puts_(e, esc);
		puts_(e, "\"");
	}
	if (n > 0)
		puts_(e, "}");
	puts_(e, " ");
	put_value(e, value);
	puts_(e, "\n");
}

void
expo_sample(struct expo *e, const char *name, double value, ...)
{
	va_list ap;

	va_start(ap, value);
	put_sample(e, name, value, ap);
	va_end(ap);
}

void
expo_histogram(struct expo *e, const char *name, const double *bounds,
    const double *counts, size_t n, double sum, double count)
{
	char full[256], le[64];
	size_t i;

	if (xsnprintf(full, sizeof(full), "%s_bucket", name) < 0) {
		e->failed = 1;
		return;
	}
	for (i = 0; i < n; i++) {
		(void)xsnprintf(le, sizeof(le), "%g", bounds[i]);
		expo_sample(e, full, counts[i], "le", le, NULL);
	}
	expo_sample(e, full, count, "le", "+Inf", NULL);
	(void)xsnprintf(full, sizeof(full), "%s_sum", name);
	expo_sample(e, full, sum, NULL);
	(void)xsnprintf(full, sizeof(full), "%s_count", name);
	expo_sample(e, full, count, NULL);
}
