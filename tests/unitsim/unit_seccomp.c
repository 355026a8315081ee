/*
 * unit_seccomp - runs a command under the system call filters that
 * deploy/systemd/sluice.service asks of systemd and setpriv(1) cannot
 * apply: RestrictSUIDSGID=yes (chmod, fchmod, fchmodat, mkdir, mkdirat,
 * mknod, mknodat, creat, open and openat asking for a set-user-ID or
 * set-group-ID bit fail) and SystemCallFilter=~@resources (setpriority,
 * ioprio_set, setrlimit, nice, the sched_set* calls, the memory policy
 * calls), each with EPERM as SystemCallErrorNumber=EPERM does. For
 * tests/integration/test_package.py's capability test; the filter is
 * inherited by every process the command starts.
 *
 * usage: unit_seccomp [--no-resources] COMMAND [ARG]...
 *   --no-resources  leave @resources out (only RestrictSUIDSGID)
 */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUGID	(S_ISUID | S_ISGID)

/* A call denied when argument arg has a set-ID bit. */
static int
deny_mode(scmp_filter_ctx ctx, int nr, unsigned arg)
{
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
	    SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, S_ISUID, S_ISUID)) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
	    SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, S_ISGID, S_ISGID)) < 0 ? -1 : 0;
}

/* open/openat: denied with O_CREAT (flags at fl) and a set-ID bit (mode). */
static int
deny_open(scmp_filter_ctx ctx, int nr, unsigned fl, unsigned mode)
{
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 2,
	    SCMP_CMP(fl, SCMP_CMP_MASKED_EQ, O_CREAT, O_CREAT),
	    SCMP_CMP(mode, SCMP_CMP_MASKED_EQ, S_ISUID, S_ISUID)) < 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 2,
	    SCMP_CMP(fl, SCMP_CMP_MASKED_EQ, O_CREAT, O_CREAT),
	    SCMP_CMP(mode, SCMP_CMP_MASKED_EQ, S_ISGID, S_ISGID)) < 0 ? -1 : 0;
}

int
main(int argc, char **argv)
{
	static const char *const resources[] = { "ioprio_set", "mbind",
	    "migrate_pages", "move_pages", "nice", "sched_setaffinity",
	    "sched_setattr", "sched_setparam", "sched_setscheduler",
	    "set_mempolicy", "setpriority", "setrlimit" };
	scmp_filter_ctx ctx;
	size_t i;
	int nr, with_resources = 1;

	if (argc > 1 && strcmp(argv[1], "--no-resources") == 0) {
		with_resources = 0;
		argv++;
		argc--;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: unit_seccomp [--no-resources] COMMAND "
		    "[ARG]...\n");
		return 2;
	}
	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL ||
	    deny_mode(ctx, SCMP_SYS(chmod), 1) == -1 ||
	    deny_mode(ctx, SCMP_SYS(fchmod), 1) == -1 ||
	    deny_mode(ctx, SCMP_SYS(fchmodat), 2) == -1 ||
	    deny_mode(ctx, SCMP_SYS(mkdir), 1) == -1 ||
	    deny_mode(ctx, SCMP_SYS(mkdirat), 2) == -1 ||
	    deny_mode(ctx, SCMP_SYS(mknod), 1) == -1 ||
	    deny_mode(ctx, SCMP_SYS(mknodat), 2) == -1 ||
	    deny_mode(ctx, SCMP_SYS(creat), 1) == -1 ||
	    deny_open(ctx, SCMP_SYS(open), 1, 2) == -1 ||
	    deny_open(ctx, SCMP_SYS(openat), 2, 3) == -1) {
		fprintf(stderr, "unit_seccomp: cannot build the filter\n");
		return 1;
	}
	for (i = 0; with_resources &&
	    i < sizeof(resources) / sizeof(resources[0]); i++) {
		if ((nr = seccomp_syscall_resolve_name(resources[i])) ==
		    __NR_SCMP_ERROR)
			continue;
		if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0) < 0) {
			fprintf(stderr, "unit_seccomp: %s\n", resources[i]);
			return 1;
		}
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    seccomp_load(ctx) < 0) {
		fprintf(stderr, "unit_seccomp: cannot load the filter\n");
		return 1;
	}
	seccomp_release(ctx);
	execvp(argv[1], argv + 1);
	fprintf(stderr, "unit_seccomp: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
