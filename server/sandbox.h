/*
 * sandbox.h - confinement of a session process: Landlock (file system) and
 * a seccomp-bpf allow-list (system calls), in two steps.
 *
 *   sandbox_preauth()   once the connection is accepted, before a byte from
 *                       the client is parsed (key exchange, authentication);
 *   sandbox_postauth()  once the partner is known and its directories are
 *                       open, before the SFTP engine runs.
 *
 * Both filters stay for the life of the process and stack: the kernel runs
 * every filter installed and the strictest answer wins, so a later step can
 * only take powers away. The pre-auth seccomp filter therefore has to allow
 * every system call the session will make after login as well (a single
 * process does both phases); what makes the pre-auth phase tighter is its
 * Landlock layer (nothing outside the spool's landing and incoming trees),
 * and the post-auth step then removes the sandbox's own set-up calls
 * (seccomp, landlock_*, prctl) and narrows the file system to one partner.
 *
 * A call outside the allow-list kills the whole process with SIGSYS
 * (SECCOMP_RET_KILL_PROCESS); the listener sees it in waitpid.
 *
 * Both functions set PR_SET_NO_NEW_PRIVS. They take no ownership of their
 * arguments (paths are read during the call only) and keep no file
 * descriptor open. Each returns 0 when the sandbox is in force, or -1 (with
 * a log line naming what failed) when it could not be set up; the caller
 * must then end the session. A kernel without Landlock (before 5.13, or
 * before 5.19 for the REFER right that linking into spool/incoming needs)
 * is not an error: one warning is logged, the seccomp filter still applies,
 * and 0 is returned.
 */
#ifndef SLUICE_SANDBOX_H
#define SLUICE_SANDBOX_H

/*
 * Before authentication. landing_dir (state_dir/landing, the parent of every
 * partner root) and incoming_dir (state_dir/spool/incoming) are the only file
 * system trees the process may touch from now on; either may be NULL, and
 * both NULL installs no Landlock layer. Call it after the process has opened
 * what it needs outside those trees (the audit socket, the state database
 * if any); open fds stay usable.
 */
int	sandbox_preauth(const char *landing_dir, const char *incoming_dir);

/*
 * After authentication. partner_root (landing/<partner>): read, write,
 * create, remove, rename, truncate beneath it; incoming_dir: create a file
 * (a link made with linkat from beneath partner_root) and remove one; nothing
 * else on the file system, including through directory fds opened before
 * the call (Landlock checks the path an openat resolves to, not the fd).
 */
int	sandbox_postauth(const char *partner_root, const char *incoming_dir);

#ifdef SLUICE_TEST_HOOKS
/*
 * Test builds only (cmake -DSLUICE_TEST_HOOKS=ON). If the environment has
 * SLUICE_TEST_FORBIDDEN_SYSCALL equal to `what` ("preauth" or "postauth",
 * the step just taken), makes a system call no filter allows
 * (socket(AF_INET)), which kills the process with SIGSYS. Otherwise
 * returns.
 *
 * Other test switches read by this module in test builds only:
 *   SLUICE_TEST_NO_LANDLOCK=1  behave as on a kernel without Landlock
 *   SLUICE_TEST_SANDBOX_LOG=1  log (SECCOMP_RET_LOG, in the kernel's audit
 *                              log / dmesg) instead of killing, to list
 *                              what a new code path needs
 *   SLUICE_TEST_SANDBOX_TRAP=1 a forbidden call writes its number and a
 *                              backtrace to stderr, then SIGSYS ends the
 *                              process
 */
void	sandbox_test_trigger(const char *what);
/*
 * Test builds only: for each path in SLUICE_TEST_PROBE_PATHS (':'
 * separated), tries open(path, O_RDONLY) as the sandboxed session and logs
 * "sandbox: test probe in session ID: open PATH: <result>", so a test can
 * see what a compromised session could reach.
 */
void	sandbox_test_probe(const char *session);
#endif

#endif
