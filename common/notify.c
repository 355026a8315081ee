/*
 * notify.c - sd_notify(3) for the supervisor (see notify.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifdef SLUICE_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "common/log.h"
#include "common/notify.h"
#include "common/util.h"

static int64_t	watchdog_ms = -1;	/* -1: not asked yet */
static int64_t	watchdog_last;

/* Sends "<head>STATUS=<fmt...>"; head may be "". */
static void __attribute__((format(printf, 2, 0)))
notify_send(const char *head, const char *fmt, va_list ap)
{
#ifdef SLUICE_HAVE_SYSTEMD
	char status[512], msg[600];
	int rc;

	vsnprintf(status, sizeof(status), fmt, ap);
	xsnprintf(msg, sizeof(msg), "%sSTATUS=%s", head, status);
	if ((rc = sd_notify(0, msg)) < 0)
		log_warnx("sd_notify: %s (is NOTIFY_SOCKET right?)",
		    strerror(-rc));
#else
	(void)head;
	(void)fmt;
	(void)ap;
#endif
}

void
notify_ready(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify_send("READY=1\n", fmt, ap);
	va_end(ap);
}

void
notify_status(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify_send("", fmt, ap);
	va_end(ap);
}

void
notify_stopping(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify_send("STOPPING=1\n", fmt, ap);
	va_end(ap);
}

int64_t
notify_watchdog_ms(void)
{
#ifdef SLUICE_HAVE_SYSTEMD
	uint64_t usec = 0;

	if (watchdog_ms == -1)
		watchdog_ms = sd_watchdog_enabled(0, &usec) > 0 ?
		    (int64_t)(usec / 1000) : 0;
#else
	watchdog_ms = 0;
#endif
	return watchdog_ms;
}

void
notify_watchdog(int64_t now)
{
	int64_t ms = notify_watchdog_ms();

	if (ms <= 0 || (watchdog_last != 0 && now - watchdog_last < ms / 2))
		return;
	watchdog_last = now;
#ifdef SLUICE_HAVE_SYSTEMD
	(void)sd_notify(0, "WATCHDOG=1");
#endif
}
