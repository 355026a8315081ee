/*
 * test_sandbox.c - the session sandbox (server/sandbox.h), each case in a
 * forked child since a sandbox cannot be undone: beneath the partner's root
 * everything SFTP does works, a link into spool/incoming works, nothing
 * else on the file system opens (not even through a directory fd opened
 * before the call), a forbidden system call kills with SIGSYS, the pre-auth
 * step confines to the spool and lets the post-auth step follow, and a
 * kernel without Landlock is a warning, not an error.
 *
 * Run as root, every case runs twice: as root and as nobody (65534).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <linux/landlock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "server/sandbox.h"

#define NOBODY	65534

static char base[64];		/* mkdtemp */
static char landing[128];	/* base/landing */
static char root[128];		/* base/landing/acme: the partner's root */
static char other[128];		/* base/landing/globex */
static char incoming[128];	/* base/incoming */
static char errpath[128];	/* a child's stderr */
static int landlock_ok;		/* kernel has Landlock ABI >= 2 */

static void
mkfile(const char *dir, const char *name)
{
	char p[256];
	int fd;

	xsnprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd != -1);
	assert_int_equal(write(fd, "x\n", 2), 2);
	close(fd);
}

static int
setup(void **state)
{
	long abi;

	(void)state;
	xstrlcpy(base, "/tmp/sluice-sandbox-XXXXXX", sizeof(base));
	if (mkdtemp(base) == NULL)
		return -1;
	chmod(base, 0755);
	xsnprintf(landing, sizeof(landing), "%s/landing", base);
	xsnprintf(root, sizeof(root), "%s/acme", landing);
	xsnprintf(other, sizeof(other), "%s/globex", landing);
	xsnprintf(incoming, sizeof(incoming), "%s/incoming", base);
	xsnprintf(errpath, sizeof(errpath), "%s/stderr", base);
	if (mkdir(landing, 0777) == -1 || mkdir(root, 0777) == -1 ||
	    mkdir(other, 0777) == -1 || mkdir(incoming, 0777) == -1)
		return -1;
	/* for the runs as nobody (mkdir's mode is cut by the umask) */
	chmod(landing, 0777);
	chmod(root, 0777);
	chmod(other, 0777);
	chmod(incoming, 0777);
	mkfile(other, "secret");
	mkfile(root, "mine");
	mkfile(base, "outside");
	chmod(other, 0777);
	abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
	landlock_ok = abi >= 2;
	if (!landlock_ok)
		fprintf(stderr, "note: no Landlock ABI >= 2 here (%ld): the "
		    "confinement checks are skipped\n", abi);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[160];

	(void)state;
	xsnprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

/* In the child: become nobody if asked (and root). 0 or an exit code. */
static int
child_user(int nobody)
{
	gid_t g = NOBODY;

	if (!nobody)
		return 0;
	if (setgroups(1, &g) == -1 || setresgid(NOBODY, NOBODY, NOBODY) == -1 ||
	    setresuid(NOBODY, NOBODY, NOBODY) == -1)
		return 90;
	return 0;
}

/*
 * Runs fn in a child (stderr to errpath), as nobody if asked; returns its
 * wait status.
 */
static int
in_child(int (*fn)(void), int nobody, const char *env)
{
	pid_t pid;
	int status, fd, rc;

	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		if ((fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0666)) != -1) {
			dup2(fd, 2);
			close(fd);
		}
		if (env != NULL)
			putenv((char *)env);
		if ((rc = child_user(nobody)) != 0)
			_exit(rc);
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static int
runs(void)
{
	return geteuid() == 0 ? 2 : 1;	/* root: as root, then as nobody */
}

static void
expect_exit0(int status)
{
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr, "child: %s %d\n", WIFEXITED(status) ? "exit" :
		    "signal", WIFEXITED(status) ? WEXITSTATUS(status) :
		    WTERMSIG(status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
expect_sigsys(int status)
{
	if (!WIFSIGNALED(status))
		fprintf(stderr, "child: exit %d, expected SIGSYS\n",
		    WEXITSTATUS(status));
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
}

/* Denied by Landlock: -1 with EACCES. */
static int
denied(int fd)
{
	if (fd != -1) {
		close(fd);
		return 0;
	}
	return errno == EACCES;
}

/* What the session does beneath its root, and a receipt's link. */
static int
work_in_root(int rootfd, int incfd, const char *fid)
{
	char proc[64];
	struct stat sb;
	int fd, dfd;

	/* what an earlier failed case may have left */
	(void)unlinkat(rootfd, "up.tmp", 0);
	(void)unlinkat(rootfd, "sub/up", 0);
	(void)unlinkat(rootfd, "sub", AT_REMOVEDIR);
	if ((fd = openat(rootfd, "up.tmp", O_WRONLY | O_CREAT | O_EXCL |
	    O_CLOEXEC, 0600)) == -1)
		return 10;
	if (write(fd, "data", 4) != 4 || fsync(fd) == -1 ||
	    ftruncate(fd, 2) == -1 || fchmod(fd, 0440) == -1)
		return 11;
	xsnprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, incfd, fid, AT_SYMLINK_FOLLOW) == -1)
		return 12;
	if (fsync(incfd) == -1)
		return 13;
	close(fd);
	if (mkdirat(rootfd, "sub", 0700) == -1 ||
	    renameat(rootfd, "up.tmp", rootfd, "sub/up") == -1 ||
	    fstatat(rootfd, "sub/up", &sb, AT_SYMLINK_NOFOLLOW) == -1 ||
	    sb.st_size != 2)
		return 14;
	if ((fd = openat(rootfd, "sub/up", O_RDONLY | O_CLOEXEC)) == -1)
		return 15;
	close(fd);
	if ((dfd = openat(rootfd, "sub", O_RDONLY | O_DIRECTORY)) == -1)
		return 16;
	close(dfd);
	if (unlinkat(rootfd, "sub/up", 0) == -1 ||
	    unlinkat(rootfd, "sub", AT_REMOVEDIR) == -1)
		return 17;
	/* a failed CLOSE takes its spool link back */
	if (unlinkat(incfd, fid, 0) == -1)
		return 18;
	return 0;
}

/* Nothing outside the root opens, whichever way it is named. */
static int
nothing_outside(int landfd, int otherfd, int incfd)
{
	char p[256];

	if (!denied(open("/etc/passwd", O_RDONLY)))
		return 30;
	if (!denied(openat(otherfd, "secret", O_RDONLY)))	/* fd from before */
		return 31;
	if (!denied(openat(landfd, "globex/secret", O_RDONLY)))
		return 32;
	if (!denied(openat(otherfd, "planted", O_WRONLY | O_CREAT, 0600)))
		return 33;
	xsnprintf(p, sizeof(p), "%s/outside", base);
	if (!denied(open(p, O_RDONLY)))
		return 34;
	if (!denied(openat(incfd, ".", O_RDONLY | O_DIRECTORY)))  /* no listing */
		return 35;
	if (!denied(openat(landfd, "acme/../globex", O_RDONLY | O_DIRECTORY)))
		return 36;
	if (mkdirat(otherfd, "d", 0700) != -1 || errno != EACCES)
		return 37;
	if (unlinkat(otherfd, "secret", 0) != -1 || errno != EACCES)
		return 38;
	/* reparenting a partner's file away from its root is refused */
	if (renameat(otherfd, "secret", incfd, "stolen") != -1)
		return 39;
	return 0;
}

static int
child_postauth(void)
{
	int rootfd, landfd, otherfd, incfd, rc;

	/* the directories are opened before the call, as the session does */
	if ((rootfd = open(root, O_RDONLY | O_DIRECTORY)) == -1 ||
	    (landfd = open(landing, O_RDONLY | O_DIRECTORY)) == -1 ||
	    (otherfd = open(other, O_RDONLY | O_DIRECTORY)) == -1 ||
	    (incfd = open(incoming, O_RDONLY | O_DIRECTORY)) == -1)
		return 2;
	if (sandbox_postauth(root, incoming) != 0)
		return 3;
	if ((rc = work_in_root(rootfd, incfd, "fid-post")) != 0)
		return rc;
	if (landlock_ok && (rc = nothing_outside(landfd, otherfd, incfd)) != 0)
		return rc;
	return 0;
}

/*
 * Library calls seen under the filter: a first pthread_once(3) (OpenSSL's
 * lazy initialisations during key exchange wake with futex), malloc of
 * large blocks (mmap, mremap, munmap), abort-free exit.
 */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_ran;

static void
once_init(void)
{
	once_ran = 1;
}

static int
child_library_calls(void)
{
	char *p, *q;

	if (sandbox_preauth(landing, incoming) != 0 ||
	    sandbox_postauth(root, incoming) != 0)
		return 2;
	if (pthread_once(&once, once_init) != 0 || !once_ran)
		return 50;
	if ((p = malloc(64 << 20)) == NULL)
		return 51;
	memset(p, 1, 64 << 20);
	if ((q = realloc(p, 128 << 20)) == NULL)
		return 52;
	free(q);
	return 0;
}

static void
test_library_calls(void **state)
{
	(void)state;
	expect_exit0(in_child(child_library_calls, 0, NULL));
}

static void
test_postauth_confines(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < runs(); i++)
		expect_exit0(in_child(child_postauth, i, NULL));
}

/*
 * Pre-auth: nothing outside landing/ and incoming/ opens; the session then
 * opens its root, and the post-auth step (which the pre-auth filter must
 * let through) confines it further.
 */
static int
child_preauth_then_postauth(void)
{
	int rootfd, landfd, otherfd, incfd, rc;

	if (sandbox_preauth(landing, incoming) != 0)
		return 2;
	if (landlock_ok) {
		if (!denied(open("/etc/passwd", O_RDONLY)))
			return 40;
		if (!denied(open("/dev/urandom", O_RDONLY)))
			return 41;
		if (!denied(openat(AT_FDCWD, base, O_RDONLY | O_DIRECTORY)))
			return 42;
	}
	/* after login: the spool's directories */
	if ((rootfd = open(root, O_RDONLY | O_DIRECTORY)) == -1 ||
	    (landfd = open(landing, O_RDONLY | O_DIRECTORY)) == -1 ||
	    (otherfd = open(other, O_RDONLY | O_DIRECTORY)) == -1 ||
	    (incfd = open(incoming, O_RDONLY | O_DIRECTORY)) == -1)
		return 43;
	if (sandbox_postauth(root, incoming) != 0)
		return 3;
	if ((rc = work_in_root(rootfd, incfd, "fid-pre")) != 0)
		return rc;
	if (landlock_ok && (rc = nothing_outside(landfd, otherfd, incfd)) != 0)
		return rc;
	return 0;
}

static void
test_preauth_then_postauth(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < runs(); i++)
		expect_exit0(in_child(child_preauth_then_postauth, i, NULL));
}

static int
child_preauth_socket(void)
{
	if (sandbox_preauth(landing, incoming) != 0)
		return 2;
	(void)socket(AF_INET, SOCK_STREAM, 0);
	return 0;	/* not reached */
}

static int
child_postauth_socket(void)
{
	if (sandbox_postauth(root, incoming) != 0)
		return 2;
	(void)socket(AF_UNIX, SOCK_STREAM, 0);
	return 0;
}

static int
child_postauth_exec(void)
{
	char *argv[] = { "/bin/true", NULL };

	if (sandbox_postauth(root, incoming) != 0)
		return 2;
	execv(argv[0], argv);
	return 0;
}

static int
child_postauth_fork(void)
{
	if (sandbox_postauth(root, incoming) != 0)
		return 2;
	(void)fork();
	return 0;
}

static int
child_postauth_wx(void)
{
	/* an executable mapping (shellcode's first step) */
	if (sandbox_postauth(root, incoming) != 0)
		return 2;
	(void)syscall(SYS_mmap, NULL, 4096, 7 /* RWX */, 0x22, -1, 0);
	return 0;
}

static int
child_postauth_seccomp_again(void)
{
	/* the set-up calls are gone after the post-auth step */
	if (sandbox_postauth(root, incoming) != 0)
		return 2;
	(void)syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
	return 0;
}

static int
child_postauth_kill_other(void)
{
	if (sandbox_postauth(root, incoming) != 0)
		return 2;
	(void)kill(1, 0);
	return 0;
}

static void
test_forbidden_syscall_kills(void **state)
{
	int (*fns[])(void) = { child_preauth_socket, child_postauth_socket,
	    child_postauth_exec, child_postauth_fork, child_postauth_wx,
	    child_postauth_seccomp_again, child_postauth_kill_other };
	size_t i;
	int u;

	(void)state;
	for (u = 0; u < runs(); u++)
		for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
			fprintf(stderr, "case %zu as %s\n", i, u ? "nobody" :
			    "self");
			expect_sigsys(in_child(fns[i], u, NULL));
		}
}

#ifdef SLUICE_TEST_HOOKS
static int
child_trigger(void)
{
	if (sandbox_postauth(root, incoming) != 0)
		return 2;
	sandbox_test_trigger("preauth");	/* not this step: returns */
	sandbox_test_trigger("postauth");
	return 0;
}
#endif

static void
test_trigger(void **state)
{
	(void)state;
#ifdef SLUICE_TEST_HOOKS
	expect_sigsys(in_child(child_trigger, 0,
	    "SLUICE_TEST_FORBIDDEN_SYSCALL=postauth"));
	expect_exit0(in_child(child_trigger, 0, NULL));
#else
	skip();
#endif
}

#ifdef SLUICE_TEST_HOOKS
/* Without Landlock: 0, one warning, files not confined, seccomp still on. */
static int
child_no_landlock(void)
{
	int fd;

	if (sandbox_preauth(landing, incoming) != 0 ||
	    sandbox_postauth(root, incoming) != 0)
		return 2;
	if ((fd = open("/etc/passwd", O_RDONLY)) == -1)
		return 3;
	close(fd);
	(void)socket(AF_INET, SOCK_STREAM, 0);
	return 4;
}
#endif

static void
test_no_landlock(void **state)
{
	(void)state;
#ifdef SLUICE_TEST_HOOKS
	char buf[2048];
	ssize_t n;
	int fd, status;

	status = in_child(child_no_landlock, 0, "SLUICE_TEST_NO_LANDLOCK=1");
	expect_sigsys(status);
	assert_true((fd = open(errpath, O_RDONLY)) != -1);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	fprintf(stderr, "%s", buf);
	assert_non_null(strstr(buf, "Landlock is not available"));
	assert_non_null(strstr(buf, "5.13"));
	/* one warning, not one per step */
	assert_null(strstr(strstr(buf, "Landlock is") + 1, "Landlock is"));
#else
	skip();
#endif
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_postauth_confines),
		cmocka_unit_test(test_preauth_then_postauth),
		cmocka_unit_test(test_library_calls),
		cmocka_unit_test(test_forbidden_syscall_kills),
		cmocka_unit_test(test_trigger),
		cmocka_unit_test(test_no_landlock),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
