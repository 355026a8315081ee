/*
 * notify.h - the supervisor's messages to systemd (sd_notify(3)).
 *
 * Under a Type=notify unit systemd sets NOTIFY_SOCKET; `sluice serve` then
 * says READY=1 once every role is started and the audit writer answers,
 * STATUS= lines as things change, STOPPING=1 on the way down, and, with
 * WatchdogSec= (WATCHDOG_USEC in the environment), WATCHDOG=1 from its main
 * loop at half the interval. Without NOTIFY_SOCKET, or in a build without
 * libsystemd (SLUICE_HAVE_SYSTEMD undefined), every call does nothing.
 * Only the supervisor calls these (NotifyAccess=main).
 */
#ifndef SLUICE_NOTIFY_H
#define SLUICE_NOTIFY_H

#include <stdint.h>

#include "common/log.h"

/* READY=1 with a STATUS= line (printf-style; copied). */
void notify_ready(const char *fmt, ...) SLUICE_PRINTF(1, 2);
/* STATUS= alone. */
void notify_status(const char *fmt, ...) SLUICE_PRINTF(1, 2);
/* STOPPING=1 with a STATUS= line. */
void notify_stopping(const char *fmt, ...) SLUICE_PRINTF(1, 2);
/* The watchdog interval asked for, in ms (0: none); reads WATCHDOG_USEC
 * and WATCHDOG_PID once. */
int64_t notify_watchdog_ms(void);
/* WATCHDOG=1 when half the interval has passed since the last one (now:
 * mono_ms()); cheap to call on every loop turn. */
void notify_watchdog(int64_t now);

#endif
