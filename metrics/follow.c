/*
 * follow.c - following the live audit trail and counting its records
 * (metrics/follow.h).
 */
#include "metrics/follow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"

int
follow_open(struct follow *f, const char *path, int from_end)
{
	struct stat sb;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	if (xstrlcpy(f->path, path, sizeof(f->path)) >= sizeof(f->path) ||
	    (f->buf = malloc(FOLLOW_MAX_LINE)) == NULL)
		return -1;
	if ((f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1 ||
	    fstat(f->fd, &sb) == -1) {
		if (f->fd != -1)
			close(f->fd);
		f->fd = -1;
		return 0;	/* not there yet: the next poll tries */
	}
	f->dev = sb.st_dev;
	f->ino = sb.st_ino;
	if (from_end && lseek(f->fd, 0, SEEK_END) == -1)
		log_warn("%s: seek", path);
	return 0;
}

void
follow_close(struct follow *f)
{
	if (f->fd != -1)
		close(f->fd);
	free(f->buf);
	f->buf = NULL;
	f->fd = -1;
}

/* Reads f->fd to its end, handing out whole lines. Lines or -1. */
static int
drain(struct follow *f, void (*line)(void *, const char *, size_t),
    void *arg)
{
	char *nl, *start;
	ssize_t n;
	size_t used;
	int lines = 0;

	for (;;) {
		if (f->len == FOLLOW_MAX_LINE) {	/* no newline in it */
			f->len = 0;
			f->skipping = 1;
		}
		n = read(f->fd, f->buf + f->len, FOLLOW_MAX_LINE - f->len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			log_warn("%s: read", f->path);
			return -1;
		}
		if (n == 0)
			return lines;
		f->len += (size_t)n;
		start = f->buf;
		while ((nl = memchr(start, '\n', f->len - (size_t)(start -
		    f->buf))) != NULL) {
			if (!f->skipping) {
				line(arg, start, (size_t)(nl - start));
				lines++;
			}
			f->skipping = 0;
			start = nl + 1;
		}
		used = (size_t)(start - f->buf);
		memmove(f->buf, start, f->len - used);
		f->len -= used;
	}
}

int
follow_poll(struct follow *f, void (*line)(void *, const char *, size_t),
    void *arg)
{
	struct stat sb;
	int n, total = 0, fd;

	for (;;) {
		if (f->fd != -1) {
			if ((n = drain(f, line, arg)) == -1)
				return -1;
			total += n;
		}
		/* Does the path still name the file we read? */
		if (stat(f->path, &sb) == -1 || (f->fd != -1 &&
		    sb.st_dev == f->dev && sb.st_ino == f->ino))
			return total;
		if ((fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) ==
		    -1 || fstat(fd, &sb) == -1) {
			if (fd != -1)
				close(fd);
			return total;
		}
		if (f->fd != -1) {
			/* the old file was read to its end above; a partial
			 * last line there is never finished */
			close(f->fd);
			f->rotations++;
		}
		f->fd = fd;
		f->dev = sb.st_dev;
		f->ino = sb.st_ino;
		f->len = 0;
		f->skipping = 0;
	}
}

/* ---- the tally --------------------------------------------------------- */

int
tally_init(struct tally *t, const struct config *cfg)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	if ((t->p = calloc(cfg->npartners + 1, sizeof(*t->p))) == NULL ||
	    (t->open = calloc(TALLY_MAX_SESSIONS, sizeof(*t->open))) == NULL) {
		tally_free(t);
		return -1;
	}
	for (i = 0; i < cfg->npartners; i++)
		xstrlcpy(t->p[i].name, cfg->partners[i].name,
		    sizeof(t->p[i].name));
	xstrlcpy(t->p[i].name, "_other", sizeof(t->p[i].name));
	t->np = cfg->npartners + 1;
	return 0;
}

void
tally_free(struct tally *t)
{
	free(t->p);
	free(t->open);
	memset(t, 0, sizeof(*t));
}

/* The partner the record names: a configured one, else _other. */
static size_t
partner_of(struct tally *t, json_t *rec)
{
	const char *name = json_string_value(json_object_get(rec, "partner"));
	size_t i;

	for (i = 0; name != NULL && i + 1 < t->np; i++)
		if (strcmp(t->p[i].name, name) == 0)
			return i;
	return t->np - 1;
}

static void
session_open(struct tally *t, json_t *rec, size_t p)
{
	const char *id = json_string_value(json_object_get(rec, "session"));

	if (id == NULL || t->nopen == TALLY_MAX_SESSIONS)
		return;
	xstrlcpy(t->open[t->nopen].id, id, sizeof(t->open[0].id));
	t->open[t->nopen++].partner = p;
	t->p[p].sessions++;
}

static void
session_close(struct tally *t, json_t *rec)
{
	const char *id = json_string_value(json_object_get(rec, "session"));
	size_t i;

	for (i = 0; id != NULL && i < t->nopen; i++)
		if (strcmp(t->open[i].id, id) == 0) {
			t->p[t->open[i].partner].sessions--;
			t->open[i] = t->open[--t->nopen];
			return;
		}
}

void
tally_line(void *arg, const char *line, size_t len)
{
	struct tally *t = arg;
	const char *ev;
	json_t *rec;
	size_t p;

	if ((rec = json_loadb(line, len, 0, NULL)) == NULL)
		return;
	if ((ev = json_string_value(json_object_get(rec, "event"))) == NULL)
		goto done;
	t->records++;
	p = partner_of(t, rec);
	if (strcmp(ev, "auth.success") == 0) {
		t->logins_ok++;
		t->p[p].logins++;
		session_open(t, rec, p);
	} else if (strcmp(ev, "auth.failure") == 0)
		t->logins_failed++;
	else if (strcmp(ev, "auth.ban") == 0)
		t->bans++;
	else if (strcmp(ev, "conn.refused") == 0 ||
	    strcmp(ev, "session.refused") == 0)
		t->refused++;
	else if (strcmp(ev, "session.end") == 0)
		session_close(t, rec);
	else if (strcmp(ev, "session.crash") == 0)
		t->crashes++;
	else if (strcmp(ev, "file.received") == 0) {
		t->p[p].received++;
		t->p[p].bytes += json_integer_value(json_object_get(rec,
		    "size"));
	} else if (strcmp(ev, "file.accepted") == 0)
		t->p[p].accepted++;
	else if (strcmp(ev, "file.rejected") == 0)
		t->p[p].rejected++;
	else if (strcmp(ev, "file.failed") == 0)
		t->p[p].failed++;
	else if (strcmp(ev, "file.stored") == 0)
		t->p[p].stored++;
	else if (strcmp(ev, "file.held") == 0)
		t->p[p].held++;
	else if (strcmp(ev, "upload.retry") == 0)
		t->retries++;
	else if (strcmp(ev, "audit.seal") == 0)
		t->seals++;
done:
	json_decref(rec);
}
