/*
 * log.h - the one place sluice writes operator-facing log lines.
 *
 * Lines go to stderr (systemd's journal captures it) as
 *   2026-11-22T02:52:13Z sluice[1234] server: message
 * log_warn appends ": strerror(errno)"; log_warnx does not (OpenBSD style).
 * Never pass a secret (password, key material, credential) to these.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>

#define SLUICE_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* role: short name of the process role ("server", "session", "uploader"...);
 * the string is copied. verbose: 0 info, 1 debug. */
void log_init(const char *role, int verbose);
void log_setrole(const char *role);
int log_verbose(void);

void log_info(const char *fmt, ...) SLUICE_PRINTF(1, 2);
void log_debug(const char *fmt, ...) SLUICE_PRINTF(1, 2);
void log_warn(const char *fmt, ...) SLUICE_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) SLUICE_PRINTF(1, 2);
__attribute__((noreturn)) void fatal(const char *fmt, ...) SLUICE_PRINTF(1, 2);
__attribute__((noreturn)) void fatalx(const char *fmt, ...) SLUICE_PRINTF(1, 2);

#endif
