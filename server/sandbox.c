/*
 * sandbox.c - Landlock and seccomp-bpf for the session process (sandbox.h).
 *
 * Landlock is called through raw system calls: Debian 12's headers stop at
 * ABI 2, so the newer rights (TRUNCATE, IOCTL_DEV, the network rights and
 * scopes) are defined here, and each is used only when the running kernel's
 * ABI has it.
 *
 * The seccomp allow-list is one table, each call marked with the phases
 * that need it. The pre-auth filter allows every row (filters stack: what
 * the post-auth phase needs must pass the pre-auth filter too); the
 * post-auth filter allows only the rows marked POST.
 */
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/landlock.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "common/log.h"
#include "server/sandbox.h"

/* --- Landlock ---------------------------------------------------------- */

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE	(1ULL << 14)	/* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV	(1ULL << 15)	/* ABI 5 */
#endif
#define SB_NET_BIND_TCP			(1ULL << 0)	/* ABI 4 */
#define SB_NET_CONNECT_TCP		(1ULL << 1)
#define SB_SCOPE_ABSTRACT_UNIX		(1ULL << 0)	/* ABI 6 */
#define SB_SCOPE_SIGNAL			(1ULL << 1)

/* struct landlock_ruleset_attr as of ABI 6; the kernel takes a prefix. */
struct sb_ruleset_attr {
	uint64_t	handled_access_fs;
	uint64_t	handled_access_net;	/* ABI 4 */
	uint64_t	scoped;			/* ABI 6 */
};

#define FS_ABI1	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
	LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR | \
	LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE | \
	LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | \
	LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK | \
	LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK | \
	LANDLOCK_ACCESS_FS_MAKE_SYM)

/*
 * A partner's root: everything SFTP does to files and directories. No
 * execute, devices, fifos, sockets or symlinks.
 */
#define FS_ROOT	(LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
	LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | \
	LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR | \
	LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_REFER | \
	LANDLOCK_ACCESS_FS_TRUNCATE)

/*
 * spool/incoming: a file arrives by linkat(2) from the partner's root
 * (MAKE_REG here, REFER on both sides since the link changes directory; the
 * kernel also requires that the file gain no right by the move, which
 * holds: nothing here can be opened), and a failed CLOSE unlinks it again
 * (REMOVE_FILE). No READ_DIR: a session cannot list other partners' files.
 */
#define FS_INCOMING	(LANDLOCK_ACCESS_FS_MAKE_REG | \
	LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_REFER)

static int landlock_abi = -1;	/* -1: not asked yet; 0: none */

static int
sb_landlock_abi(void)
{
	long abi;

	if (landlock_abi != -1)
		return landlock_abi;
#ifdef SLUICE_TEST_HOOKS
	if (getenv("SLUICE_TEST_NO_LANDLOCK") != NULL) {
		errno = ENOSYS;
		return landlock_abi = 0;
	}
#endif
	abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
	landlock_abi = abi < 0 ? 0 : (int)abi;
	return landlock_abi;
}

static int
sb_add_path(int rfd, const char *path, uint64_t access, uint64_t handled)
{
	struct landlock_path_beneath_attr pb;
	int fd, rc;

	if ((fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_warn("sandbox: open %s", path);
		return -1;
	}
	memset(&pb, 0, sizeof(pb));
	pb.parent_fd = fd;
	pb.allowed_access = access & handled;
	rc = (int)syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH,
	    &pb, 0);
	if (rc == -1)
		log_warn("sandbox: landlock rule for %s", path);
	close(fd);
	return rc;
}

/*
 * One Landlock layer: `root` with FS_ROOT rights, `incoming` with
 * incoming_access, nothing else. 0 (also when the kernel has no usable
 * Landlock: one warning), or -1.
 */
static int
sb_landlock(const char *root, const char *incoming, uint64_t incoming_access)
{
	static int warned;
	struct sb_ruleset_attr attr;
	size_t attrlen;
	int abi, rfd = -1;

	if ((abi = sb_landlock_abi()) < 2) {
		if (!warned)
			log_warnx("sandbox: Landlock is %s on this kernel: "
			    "sessions are not confined to their partner's "
			    "directory (only the seccomp filter and file "
			    "permissions apply); Landlock needs Linux 5.13 or "
			    "later (5.19 for linking into spool/incoming) with "
			    "landlock in the lsm= boot list", abi == 0 ?
			    "not available" : "too old (ABI 1, no REFER)");
		warned = 1;
		return 0;
	}
	memset(&attr, 0, sizeof(attr));
	attr.handled_access_fs = FS_ABI1 | LANDLOCK_ACCESS_FS_REFER;
	attrlen = sizeof(attr.handled_access_fs);
	if (abi >= 3)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 4) {
		/* no TCP bind or connect (no rule grants any port) */
		attr.handled_access_net = SB_NET_BIND_TCP | SB_NET_CONNECT_TCP;
		attrlen = offsetof(struct sb_ruleset_attr, scoped);
	}
	if (abi >= 5)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	if (abi >= 6) {
		/* no signal to, no abstract socket of, a process outside */
		attr.scoped = SB_SCOPE_ABSTRACT_UNIX | SB_SCOPE_SIGNAL;
		attrlen = sizeof(attr);
	}
	rfd = (int)syscall(SYS_landlock_create_ruleset, &attr, attrlen, 0);
	if (rfd == -1) {
		log_warn("sandbox: landlock_create_ruleset (ABI %d)", abi);
		goto fail;
	}
	if (root != NULL &&
	    sb_add_path(rfd, root, FS_ROOT, attr.handled_access_fs) == -1)
		goto fail;
	if (incoming != NULL && sb_add_path(rfd, incoming, incoming_access,
	    attr.handled_access_fs) == -1)
		goto fail;
	if (syscall(SYS_landlock_restrict_self, rfd, 0) == -1) {
		log_warn("sandbox: landlock_restrict_self");
		goto fail;
	}
	close(rfd);
	return 0;
fail:
	if (rfd != -1)
		close(rfd);
	return -1;
}

/* --- sanitizer builds ------------------------------------------------- */

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SB_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SB_ASAN 1
#endif

#ifdef SB_ASAN
/*
 * LeakSanitizer's check at exit (also at _exit) stops the process with a
 * ptrace'ing clone, which the filter forbids: a sandboxed process is not
 * leak-checked (ASan's other checks stay). The hook is LSan's documented
 * opt-out, asked at check time.
 */
static volatile int sb_loaded;

int	__lsan_is_turned_off(void);

int
__lsan_is_turned_off(void)
{
	return sb_loaded;
}
#define SB_LOADED()	(sb_loaded = 1)
#else
#define SB_LOADED()	do { } while (0)
#endif

/* --- seccomp ----------------------------------------------------------- */

#define PRE	0x1	/* until sandbox_postauth, then no more */
#define POST	0x2	/* the whole life of the session */

/* Calls allowed whatever their arguments; see sb_rules for the others. */
static const struct {
	int		nr;
	unsigned	phases;
} sb_calls[] = {
	/* descriptors; sockets that exist (no socket, connect, bind, accept) */
	{ SCMP_SYS(read), POST },
	{ SCMP_SYS(write), POST },
	{ SCMP_SYS(writev), POST },		/* stdio */
	{ SCMP_SYS(pread64), POST },		/* SFTP READ, SQLite */
	{ SCMP_SYS(pwrite64), POST },		/* SFTP WRITE, SQLite */
	{ SCMP_SYS(lseek), POST },
	{ SCMP_SYS(close), POST },
	{ SCMP_SYS(recvfrom), POST },		/* libssh, the listener's channel */
	{ SCMP_SYS(sendto), POST },
	{ SCMP_SYS(recvmsg), POST },		/* typed messages, fds passed */
	{ SCMP_SYS(sendmsg), POST },
	{ SCMP_SYS(poll), POST },		/* libssh's event loop */
	{ SCMP_SYS(ppoll), POST },
	/* memory: glibc malloc; no executable mapping (sb_rules) */
	{ SCMP_SYS(brk), POST },
	{ SCMP_SYS(munmap), POST },
	{ SCMP_SYS(mremap), POST },		/* realloc of a large block */
	{ SCMP_SYS(madvise), POST },		/* free() trimming an arena */
	/* time, randomness, signals, the end */
	{ SCMP_SYS(clock_gettime), POST },	/* vDSO fallbacks */
	{ SCMP_SYS(gettimeofday), POST },
	{ SCMP_SYS(clock_nanosleep), POST },	/* usleep(3), nanosleep(3) */
	{ SCMP_SYS(getrandom), POST },		/* OpenSSL, random_id */
	{ SCMP_SYS(getpid), POST },		/* log lines, libssh */
	{ SCMP_SYS(alarm), POST },		/* login grace time */
	{ SCMP_SYS(rt_sigaction), POST },	/* SIGTERM after login */
	{ SCMP_SYS(rt_sigprocmask), POST },	/* abort(3) */
	{ SCMP_SYS(rt_sigreturn), POST },
	{ SCMP_SYS(restart_syscall), POST },
	{ SCMP_SYS(exit), POST },
	{ SCMP_SYS(exit_group), POST },
	/* files: Landlock decides where (beneath the partner's root) */
	{ SCMP_SYS(openat), POST },
	{ SCMP_SYS(openat2), POST },		/* every client path */
	{ SCMP_SYS(fstat), POST },
	{ SCMP_SYS(newfstatat), POST },
	{ SCMP_SYS(faccessat), POST },		/* is a receipt's link there */
	{ SCMP_SYS(faccessat2), POST },
	{ SCMP_SYS(getdents64), POST },		/* READDIR */
	{ SCMP_SYS(fsync), POST },		/* CLOSE: file and directories */
	{ SCMP_SYS(fdatasync), POST },		/* fsync@openssh.com */
	{ SCMP_SYS(sync_file_range), POST },	/* write-behind of large uploads */
	{ SCMP_SYS(ftruncate), POST },		/* OPEN with TRUNC */
	{ SCMP_SYS(renameat), POST },		/* RENAME */
	{ SCMP_SYS(renameat2), POST },
	{ SCMP_SYS(linkat), POST },		/* a received file into incoming */
	{ SCMP_SYS(unlinkat), POST },		/* REMOVE, RMDIR */
	{ SCMP_SYS(mkdirat), POST },		/* MKDIR */
	{ SCMP_SYS(utimensat), POST },		/* SETSTAT times (futimens too) */
	{ SCMP_SYS(fchmod), POST },		/* 0440 once received */
	{ SCMP_SYS(fgetxattr), POST },		/* receipts */
	{ SCMP_SYS(fsetxattr), POST },
	{ SCMP_SYS(fremovexattr), POST },
	{ SCMP_SYS(fstatfs), POST },		/* statvfs@openssh.com, free space */
	{ SCMP_SYS(flock), POST },		/* an upload's lock (CLOSE, OPEN) */
	/* the post-auth step's own set-up (prctl: sb_rules) */
	{ SCMP_SYS(seccomp), PRE },
	{ SCMP_SYS(landlock_create_ruleset), PRE },
	{ SCMP_SYS(landlock_add_rule), PRE },
	{ SCMP_SYS(landlock_restrict_self), PRE },
};

/* fcntl commands: descriptor flags, O_NONBLOCK, SQLite's record locks */
static const int sb_fcntl_cmds[] = {
	F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_GETLK, F_SETLK, F_SETLKW,
	F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW,
};

/* futex operations, whatever their PRIVATE and CLOCK_REALTIME flags */
static const int sb_futex_ops[] = {
	FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET,
};
#define SB_FUTEX_CMD_MASK \
	(0xffffffffULL & ~(scmp_datum_t)(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME))

static int
sb_add(scmp_filter_ctx ctx, int nr, unsigned cnt, const struct scmp_arg_cmp *a)
{
	int rc;

	rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, cnt, a);
	if (rc != 0) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE,
		    nr);

		errno = -rc;
		log_warn("sandbox: seccomp rule for %s", name ? name : "?");
		free(name);
		return -1;
	}
	return 0;
}

/* Calls allowed with some arguments only. */
static int
sb_rules(scmp_filter_ctx ctx, unsigned phases)
{
	struct scmp_arg_cmp a[1];
	pid_t pid = getpid();
	size_t i;

	/* Never a page both written and executed, nor a new executable one. */
	a[0] = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	if (sb_add(ctx, SCMP_SYS(mmap), 1, a) == -1 ||
	    sb_add(ctx, SCMP_SYS(mprotect), 1, a) == -1)
		return -1;
	for (i = 0; i < sizeof(sb_fcntl_cmds) / sizeof(sb_fcntl_cmds[0]); i++) {
		a[0] = SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)sb_fcntl_cmds[i]);
		if (sb_add(ctx, SCMP_SYS(fcntl), 1, a) == -1)
			return -1;
	}
	/*
	 * futex: the first pthread_once(3) of a routine wakes waiters even in
	 * a single thread (OpenSSL's lazy initialisations during key
	 * exchange); waits and wakes only, none of the requeue or PI calls.
	 */
	for (i = 0; i < sizeof(sb_futex_ops) / sizeof(sb_futex_ops[0]); i++) {
		a[0] = SCMP_A1(SCMP_CMP_MASKED_EQ, SB_FUTEX_CMD_MASK,
		    (scmp_datum_t)sb_futex_ops[i]);
		if (sb_add(ctx, SCMP_SYS(futex), 1, a) == -1)
			return -1;
	}
	/* Signals to itself only (abort(3), raise(3)). */
	a[0] = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)pid);
	if (sb_add(ctx, SCMP_SYS(kill), 1, a) == -1 ||
	    sb_add(ctx, SCMP_SYS(tgkill), 1, a) == -1)
		return -1;
#ifdef SB_ASAN
	/* ASan asks for the signal stack before every noreturn call */
	if (sb_add(ctx, SCMP_SYS(sigaltstack), 0, NULL) == -1)
		return -1;
#endif
	if (phases & PRE) {
		a[0] = SCMP_A0(SCMP_CMP_EQ, PR_SET_NO_NEW_PRIVS);
		if (sb_add(ctx, SCMP_SYS(prctl), 1, a) == -1)
			return -1;
	}
	return 0;
}

#ifdef SLUICE_TEST_HOOKS
/*
 * SLUICE_TEST_SANDBOX_TRAP: a forbidden call raises SIGSYS, whose handler
 * writes the call's number and a backtrace to stderr, then lets SIGSYS
 * end the process as the kill action would.
 */
static void
sb_trap(int sig, siginfo_t *si, void *uc)
{
	char msg[64];
	void *bt[32];
	int n;

	(void)uc;
	n = snprintf(msg, sizeof(msg), "sandbox: forbidden system call %d pid %d\n",
	    si->si_syscall, (int)getpid());
	if (n > 0 && write(2, msg, (size_t)n) == -1)
		n = 0;
	n = backtrace(bt, 32);
	backtrace_symbols_fd(bt, n, 2);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
sb_trap_init(void)
{
	struct sigaction sa;
	void *bt[1];

	(void)backtrace(bt, 1);		/* loads libgcc_s now, not in the handler */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sb_trap;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSYS, &sa, NULL);
}
#endif

static int
sb_seccomp(unsigned phases)
{
	scmp_filter_ctx ctx;
	uint32_t deny = SCMP_ACT_KILL_PROCESS;
	size_t i;
	int rc;

#ifdef SLUICE_TEST_HOOKS
	if (getenv("SLUICE_TEST_SANDBOX_LOG") != NULL)
		deny = SCMP_ACT_LOG;
	else if (getenv("SLUICE_TEST_SANDBOX_TRAP") != NULL) {
		sb_trap_init();
		deny = SCMP_ACT_TRAP;
	}
#endif
	if ((ctx = seccomp_init(deny)) == NULL) {
		log_warnx("sandbox: seccomp_init failed");
		return -1;
	}
	/* A call made through another ABI (i386, x32) ends the process too. */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
	    SCMP_ACT_KILL_PROCESS)) != 0) {
		errno = -rc;
		log_warn("sandbox: seccomp bad-arch action");
		goto fail;
	}
	for (i = 0; i < sizeof(sb_calls) / sizeof(sb_calls[0]); i++) {
		if ((sb_calls[i].phases & phases) == 0)
			continue;
		if (sb_add(ctx, sb_calls[i].nr, 0, NULL) == -1)
			goto fail;
	}
	if (sb_rules(ctx, phases) == -1)
		goto fail;
	SB_LOADED();
	if ((rc = seccomp_load(ctx)) != 0) {
		errno = -rc;
		log_warn("sandbox: seccomp_load");
		goto fail;
	}
	seccomp_release(ctx);
	return 0;
fail:
	seccomp_release(ctx);
	return -1;
}

/* --- the two steps ----------------------------------------------------- */

/*
 * Pre-auth, spool/incoming may also be opened as a directory (READ_DIR), so
 * that the session can take its fd (for fsync) after login; post-auth that
 * fd is open and the right goes.
 */

static int
sb_no_new_privs(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_warn("sandbox: prctl(PR_SET_NO_NEW_PRIVS)");
		return -1;
	}
	return 0;
}

int
sandbox_preauth(const char *landing_dir, const char *incoming_dir)
{
	if (sb_no_new_privs() == -1)
		return -1;
	if ((landing_dir != NULL || incoming_dir != NULL) &&
	    sb_landlock(landing_dir, incoming_dir,
	    FS_INCOMING | LANDLOCK_ACCESS_FS_READ_DIR) == -1)
		return -1;
	return sb_seccomp(PRE | POST);
}

int
sandbox_postauth(const char *partner_root, const char *incoming_dir)
{
	if (partner_root == NULL || incoming_dir == NULL) {
		log_warnx("sandbox: no partner root or spool/incoming given");
		return -1;
	}
	if (sb_no_new_privs() == -1 ||
	    sb_landlock(partner_root, incoming_dir, FS_INCOMING) == -1)
		return -1;
	return sb_seccomp(POST);
}

#ifdef SLUICE_TEST_HOOKS
void
sandbox_test_trigger(const char *what)
{
	const char *v = getenv("SLUICE_TEST_FORBIDDEN_SYSCALL");
	int fd;

	if (v == NULL || what == NULL || strcmp(v, what) != 0)
		return;
	log_info("sandbox: test trigger: socket(AF_INET) after %s", what);
	fd = socket(AF_INET, SOCK_STREAM, 0);	/* SIGSYS: never returns */
	if (fd != -1)
		close(fd);
	log_warnx("sandbox: test trigger: socket(AF_INET) was not stopped");
}
#endif

#ifdef SLUICE_TEST_HOOKS
void
sandbox_test_probe(const char *session)
{
	const char *v = getenv("SLUICE_TEST_PROBE_PATHS"), *p, *e;
	char path[4096];
	size_t n;
	int fd;

	for (p = v; p != NULL && *p != '\0'; p = *e ? e + 1 : e) {
		if ((e = strchr(p, ':')) == NULL)
			e = p + strlen(p);
		n = (size_t)(e - p);
		if (n == 0 || n >= sizeof(path))
			continue;
		memcpy(path, p, n);
		path[n] = '\0';
		fd = open(path, O_RDONLY | O_CLOEXEC);
		log_info("sandbox: test probe in session %s: open %s: %s",
		    session, path, fd == -1 ? strerror(errno) : "opened");
		if (fd != -1)
			close(fd);
	}
}
#endif
