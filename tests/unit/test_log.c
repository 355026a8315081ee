/*
 * test_log.c - common/log.c: level filtering, the stderr and journald
 * (sd-daemon "<N>" prefix) line forms, the auto target's JOURNAL_STREAM
 * check, and SLUICE_LOG for re-exec'd sessions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

static char captured[8192];

/* Runs fn with stderr sent to a temporary file; its text in captured. */
static void
capture(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	assert_non_null(tmp);
	assert_true(saved >= 0);
	fflush(stderr);
	assert_int_equal(dup2(fileno(tmp), STDERR_FILENO), STDERR_FILENO);
	fn();
	fflush(stderr);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(captured, 1, sizeof(captured) - 1, tmp);
	captured[n] = '\0';
	fclose(tmp);
}

static void
matches(const char *re)
{
	regex_t r;
	int rc;

	assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NEWLINE), 0);
	rc = regexec(&r, captured, 0, NULL, 0);
	regfree(&r);
	if (rc != 0)
		fail_msg("/%s/ not in:\n%s", re, captured);
}

static int
lines(void)
{
	int n = 0;
	const char *p;

	for (p = captured; *p != '\0'; p++)
		if (*p == '\n')
			n++;
	return n;
}

static void
every_level(void)
{
	log_errx("e %d", 1);
	log_warnx("w");
	log_notice("n");
	log_info("i");
	log_debug("d");
}

static int
setup(void **state)
{
	(void)state;
	unsetenv("SLUICE_LOG");
	unsetenv("JOURNAL_STREAM");
	log_init("tester", 0);
	log_configure(LOG_TO_STDERR, LOG_LVL_INFO);
	return 0;
}

static void
test_stderr_form(void **state)
{
	(void)state;
	capture(every_level);
	/* info is the default threshold: no debug line, no prefixes */
	assert_int_equal(lines(), 4);
	matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z sluice\\[[0-9]+\\] "
	    "tester: e 1$");
	matches("^[0-9TZ:-]+ sluice\\[[0-9]+\\] tester: n$");
	assert_null(strstr(captured, "<"));
	assert_null(strstr(captured, ": d\n"));
}

static void
test_journald_prefixes(void **state)
{
	(void)state;
	log_configure(LOG_TO_JOURNALD, LOG_LVL_DEBUG);
	capture(every_level);
	assert_int_equal(lines(), 5);
	matches("^<3>sluice\\[[0-9]+\\] tester: e 1$");
	matches("^<4>sluice\\[[0-9]+\\] tester: w$");
	matches("^<5>sluice\\[[0-9]+\\] tester: n$");
	matches("^<6>sluice\\[[0-9]+\\] tester: i$");
	matches("^<7>sluice\\[[0-9]+\\] tester: d$");
	assert_string_equal(getenv("SLUICE_LOG"), "journald:debug");
}

static void
test_threshold(void **state)
{
	(void)state;
	log_configure(LOG_TO_JOURNALD, LOG_LVL_WARNING);
	capture(every_level);
	assert_int_equal(lines(), 2);
	matches("^<3>");
	matches("^<4>");
	assert_null(strstr(captured, "<5>"));
	assert_null(strstr(captured, "<6>"));
	/* level 0 keeps the threshold */
	log_configure(LOG_TO_JOURNALD, 0);
	assert_int_equal(log_get_level(), LOG_LVL_WARNING);
	/* -v wins over log.level */
	log_init("tester", 1);
	log_configure(LOG_TO_STDERR, LOG_LVL_ERR);
	assert_int_equal(log_get_level(), LOG_LVL_DEBUG);
}

static void
warn_enoent(void)
{
	errno = ENOENT;
	log_warn("open %s", "x");
	log_info("bad\x01line\x7f");
}

static void
test_errno_and_escapes(void **state)
{
	(void)state;
	capture(warn_enoent);
	matches("tester: open x: No such file or directory$");
	matches("tester: bad\\?line\\?$");
}

static void
test_auto_checks_the_stream(void **state)
{
	struct stat st;
	char js[64];
	FILE *tmp;
	int saved;

	(void)state;
	/* JOURNAL_STREAM naming another stream: stderr form */
	setenv("JOURNAL_STREAM", "1:2", 1);
	log_configure(LOG_TO_AUTO, 0);
	assert_int_equal(log_get_target(), LOG_TO_STDERR);
	/* naming stderr's device:inode: journald */
	assert_non_null(tmp = tmpfile());
	saved = dup(STDERR_FILENO);
	dup2(fileno(tmp), STDERR_FILENO);
	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	log_configure(LOG_TO_AUTO, 0);
	dup2(saved, STDERR_FILENO);
	close(saved);
	fclose(tmp);
	assert_int_equal(log_get_target(), LOG_TO_JOURNALD);
	unsetenv("JOURNAL_STREAM");
	log_configure(LOG_TO_AUTO, 0);
	assert_int_equal(log_get_target(), LOG_TO_STDERR);
}

static void
test_env_for_sessions(void **state)
{
	(void)state;
	/* a session under syslog writes journald lines (no /dev/log again
	 * from its sandbox); the level comes along */
	setenv("SLUICE_LOG", "syslog:notice", 1);
	log_init("session", 0);
	assert_int_equal(log_get_target(), LOG_TO_JOURNALD);
	assert_int_equal(log_get_level(), LOG_LVL_NOTICE);
	setenv("SLUICE_LOG", "stderr:info", 1);
	log_init("session", 0);
	assert_int_equal(log_get_target(), LOG_TO_STDERR);
	assert_int_equal(log_get_level(), LOG_LVL_INFO);
	assert_string_equal(log_target_name(LOG_TO_SYSLOG), "syslog");
	assert_string_equal(log_level_name(LOG_LVL_NOTICE), "notice");
	assert_null(log_level_name(9));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_stderr_form, setup),
		cmocka_unit_test_setup(test_journald_prefixes, setup),
		cmocka_unit_test_setup(test_threshold, setup),
		cmocka_unit_test_setup(test_errno_and_escapes, setup),
		cmocka_unit_test_setup(test_auto_checks_the_stream, setup),
		cmocka_unit_test_setup(test_env_for_sessions, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
