#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char log_role[32] = "sluice";
static int log_level;

void
log_init(const char *role, int verbose)
{
	log_setrole(role);
	log_level = verbose;
}

void
log_setrole(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role ? role : "sluice");
}

int
log_verbose(void)
{
	return log_level;
}

static void
vlog(const char *fmt, va_list ap, int err)
{
	char msg[2048], ts[32];
	struct tm tm;
	struct timespec now;
	size_t i;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* A log line is one line: control characters from clients are escaped. */
	for (i = 0; msg[i] != '\0'; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			msg[i] = '?';
	if (err != 0)
		fprintf(stderr, "%s sluice[%ld] %s: %s: %s\n", ts, (long)getpid(),
		    log_role, msg, strerror(err));
	else
		fprintf(stderr, "%s sluice[%ld] %s: %s\n", ts, (long)getpid(),
		    log_role, msg);
	fflush(stderr);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(fmt, ap, 0);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_level < 1)
		return;
	va_start(ap, fmt);
	vlog(fmt, ap, 0);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(fmt, ap, saved ? saved : EIO);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(fmt, ap, 0);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog(fmt, ap, saved ? saved : EIO);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(fmt, ap, 0);
	va_end(ap);
	exit(1);
}
