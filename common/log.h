/*
 * log.h - the one place sluice writes operator-facing log lines.
 *
 * Every line has a level, syslog's priorities: log_err/log_errx and
 * fatal/fatalx (LOG_ERR), log_warn/log_warnx (LOG_WARNING), log_notice
 * (LOG_NOTICE), log_info (LOG_INFO), log_debug (LOG_DEBUG). Lines below the
 * threshold (log.level, default info; -v: debug) are dropped. The "x"
 * verbs do not append ": strerror(errno)"; the others do (OpenBSD style).
 *
 * Where lines go (log.target; log_configure):
 *   stderr    2026-11-22T02:52:13Z sluice[1234] server: message
 *   journald  <4>sluice[1234] server: message  on stderr: the sd-daemon(3)
 *             prefix gives journald each line's priority (no timestamp:
 *             journald stamps lines itself)
 *   syslog    syslog(3), facility LOG_DAEMON, ident "sluice", the level as
 *             the priority: "server: message"
 *   auto      journald when stderr is the journal's stream (JOURNAL_STREAM
 *             names its device:inode, as systemd sets it), else stderr
 * The choice is passed to re-exec'd sessions in SLUICE_LOG (log_init reads
 * it); a session, sandboxed without socket(2), cannot reach /dev/log again
 * after a journald restart, so under syslog it writes journald lines to
 * its stderr instead.
 * Never pass a secret (password, key material, credential) to these.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>
#include <stddef.h>

#define SLUICE_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Levels: syslog(3)'s priorities (LOG_ERR ... LOG_DEBUG). */
#define LOG_LVL_ERR	3
#define LOG_LVL_WARNING	4
#define LOG_LVL_NOTICE	5
#define LOG_LVL_INFO	6
#define LOG_LVL_DEBUG	7

enum log_target {
	LOG_TO_AUTO = 0,
	LOG_TO_STDERR,
	LOG_TO_JOURNALD,
	LOG_TO_SYSLOG,
};

/* role: short name of the process role ("server", "session", "uploader"...);
 * the string is copied. verbose: 0 info, 1 debug. Honours SLUICE_LOG. */
void log_init(const char *role, int verbose);
void log_setrole(const char *role);
int log_verbose(void);

/*
 * Where lines go and the lowest level written (LOG_LVL_*; 0: keep the
 * current one; -v's debug is kept either way). Resolves LOG_TO_AUTO and
 * exports the result in SLUICE_LOG for re-exec'd processes.
 */
void log_configure(enum log_target target, int level);
/* The resolved target and threshold (tests, the supervisor's log line). */
enum log_target log_get_target(void);
int log_get_level(void);
/* "auto", "stderr", "journald", "syslog"; NULL for another value. */
const char *log_target_name(enum log_target);
/* "err", "warning", "notice", "info", "debug"; NULL for another value. */
const char *log_level_name(int level);

/*
 * One line as it would be written to stderr for target (LOG_TO_STDERR or
 * LOG_TO_JOURNALD), into out (always terminated; no newline). For tests.
 */
void log_format(char *out, size_t outlen, enum log_target target, int level,
    const char *msg);

void log_err(const char *fmt, ...) SLUICE_PRINTF(1, 2);
void log_errx(const char *fmt, ...) SLUICE_PRINTF(1, 2);
void log_notice(const char *fmt, ...) SLUICE_PRINTF(1, 2);
void log_info(const char *fmt, ...) SLUICE_PRINTF(1, 2);
void log_debug(const char *fmt, ...) SLUICE_PRINTF(1, 2);
void log_warn(const char *fmt, ...) SLUICE_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) SLUICE_PRINTF(1, 2);
__attribute__((noreturn)) void fatal(const char *fmt, ...) SLUICE_PRINTF(1, 2);
__attribute__((noreturn)) void fatalx(const char *fmt, ...) SLUICE_PRINTF(1, 2);

#endif
