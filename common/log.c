/*
 * log.c - levelled log lines to stderr, journald (sd-daemon prefixes on
 * stderr) or syslog(3): common/log.h.
 */
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char log_role[32] = "sluice";
static int log_dbg;			/* -v */
static int log_threshold = LOG_LVL_INFO;
static enum log_target log_to = LOG_TO_STDERR;
static int log_opened;			/* openlog(3) done */

static const char *const target_names[] = {
	"auto", "stderr", "journald", "syslog"
};
static const char *const level_names[] = {
	"err", "warning", "notice", "info", "debug"	/* from LOG_LVL_ERR */
};

const char *
log_target_name(enum log_target t)
{
	if ((int)t < 0 || (size_t)t >= sizeof(target_names) /
	    sizeof(target_names[0]))
		return NULL;
	return target_names[t];
}

const char *
log_level_name(int level)
{
	if (level < LOG_LVL_ERR || level > LOG_LVL_DEBUG)
		return NULL;
	return level_names[level - LOG_LVL_ERR];
}

/* 1 if stderr is the stream JOURNAL_STREAM ("DEV:INODE") names. */
static int
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (js == NULL || sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2 ||
	    fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/* SLUICE_LOG="TARGET:LEVEL", as log_configure exports it. */
static void
log_from_env(void)
{
	const char *e = getenv("SLUICE_LOG"), *colon;
	size_t i, n;
	int l;

	if (e == NULL || (colon = strchr(e, ':')) == NULL)
		return;
	n = (size_t)(colon - e);
	for (i = LOG_TO_STDERR; i <= LOG_TO_SYSLOG; i++)
		if (strlen(target_names[i]) == n &&
		    strncmp(e, target_names[i], n) == 0)
			log_to = (enum log_target)i;
	/* no socket(2) in a session's sandbox to reach /dev/log again */
	if (log_to == LOG_TO_SYSLOG)
		log_to = LOG_TO_JOURNALD;
	for (l = LOG_LVL_ERR; l <= LOG_LVL_DEBUG; l++)
		if (strcmp(colon + 1, level_names[l - LOG_LVL_ERR]) == 0)
			log_threshold = l;
}

void
log_init(const char *role, int verbose)
{
	log_setrole(role);
	log_dbg = verbose;
	log_from_env();
	if (verbose)
		log_threshold = LOG_LVL_DEBUG;
}

void
log_configure(enum log_target target, int level)
{
	char env[64];

	if (target == LOG_TO_AUTO)
		target = stderr_is_journal() ? LOG_TO_JOURNALD : LOG_TO_STDERR;
	log_to = target;
	if (level >= LOG_LVL_ERR && level <= LOG_LVL_DEBUG)
		log_threshold = level;
	if (log_dbg)
		log_threshold = LOG_LVL_DEBUG;
	if (log_to == LOG_TO_SYSLOG && !log_opened) {
		openlog("sluice", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_opened = 1;
	}
	snprintf(env, sizeof(env), "%s:%s", target_names[log_to],
	    level_names[log_threshold - LOG_LVL_ERR]);
	(void)setenv("SLUICE_LOG", env, 1);
}

enum log_target
log_get_target(void)
{
	return log_to;
}

int
log_get_level(void)
{
	return log_threshold;
}

void
log_setrole(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role ? role : "sluice");
}

int
log_verbose(void)
{
	return log_dbg;
}

void
log_format(char *out, size_t outlen, enum log_target target, int level,
    const char *msg)
{
	char ts[32];
	struct tm tm;
	struct timespec now;

	if (outlen == 0)
		return;
	if (target == LOG_TO_JOURNALD) {
		snprintf(out, outlen, "<%d>sluice[%ld] %s: %s", level,
		    (long)getpid(), log_role, msg);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(out, outlen, "%s sluice[%ld] %s: %s", ts, (long)getpid(),
	    log_role, msg);
}

static void
vlog(int level, const char *fmt, va_list ap, int err)
{
	char msg[2048], line[2200];
	size_t i, n;

	if (level > log_threshold)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* A log line is one line: control characters from clients are escaped. */
	for (i = 0; msg[i] != '\0'; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			msg[i] = '?';
	if (err != 0 && (n = strlen(msg)) < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(err));
	if (log_to == LOG_TO_SYSLOG) {
		syslog(LOG_DAEMON | level, "%s: %s", log_role, msg);
		return;
	}
	log_format(line, sizeof(line), log_to, level, msg);
	fprintf(stderr, "%s\n", line);
	fflush(stderr);
}

#define LOGFN(name, level, witherr)				\
void								\
name(const char *fmt, ...)					\
{								\
	va_list ap;						\
	int saved = errno;					\
								\
	va_start(ap, fmt);					\
	vlog(level, fmt, ap, witherr ? (saved ? saved : EIO) : 0); \
	va_end(ap);						\
	errno = saved;						\
}

LOGFN(log_err, LOG_LVL_ERR, 1)
LOGFN(log_errx, LOG_LVL_ERR, 0)
LOGFN(log_warn, LOG_LVL_WARNING, 1)
LOGFN(log_warnx, LOG_LVL_WARNING, 0)
LOGFN(log_notice, LOG_LVL_NOTICE, 0)
LOGFN(log_info, LOG_LVL_INFO, 0)
LOGFN(log_debug, LOG_LVL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERR, fmt, ap, saved ? saved : EIO);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERR, fmt, ap, 0);
	va_end(ap);
	exit(1);
}
