/*
 * failinj.c - test-only fault injection: see failinj.h. Built only with the
 * tests (tests/CMakeLists.txt), never into the sluice binary or a package.
 *
 * The real calls: glibc's __libc_malloc/_calloc/_realloc for allocations
 * (dlsym itself allocates), and the system calls themselves for the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "failinj.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

static const char *kind_name[FI_NKINDS] = { "allocation", "fsync", "write",
    "rename", "link" };

static struct {
	long	 nth, count, calls;
	int	 err;
} fi[FI_NKINDS];
static char fi_pattern[256];
static long fi_injected;

void
failinj_arm(enum failinj_kind k, long nth, long count, int err)
{
	__atomic_store_n(&fi[k].nth, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&fi[k].calls, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&fi_injected, 0, __ATOMIC_SEQ_CST);
	fi[k].count = count == 0 ? 1 : count;
	fi[k].err = err;
	__atomic_store_n(&fi[k].nth, nth, __ATOMIC_SEQ_CST);
}

void
failinj_path(const char *pattern)
{
	size_t n = pattern != NULL ? strlen(pattern) : 0;

	if (n >= sizeof(fi_pattern))
		n = sizeof(fi_pattern) - 1;
	memcpy(fi_pattern, pattern != NULL ? pattern : "", n);
	fi_pattern[n] = '\0';
}

void
failinj_disarm(void)
{
	int k;

	for (k = 0; k < FI_NKINDS; k++)
		__atomic_store_n(&fi[k].nth, 0, __ATOMIC_SEQ_CST);
}

long
failinj_calls(enum failinj_kind k)
{
	return __atomic_load_n(&fi[k].calls, __ATOMIC_SEQ_CST);
}

long
failinj_injected(void)
{
	return __atomic_load_n(&fi_injected, __ATOMIC_SEQ_CST);
}

/* Writes a line to stderr without allocating. */
static void
say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		(void)syscall(SYS_write, 2, buf,
		    (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Does this call fail? path may be NULL (not known), fd >= 0 names one. */
static int
fail(enum failinj_kind k, const char *path, int fd)
{
	char link[64], target[512];
	long n, nth = __atomic_load_n(&fi[k].nth, __ATOMIC_SEQ_CST);
	ssize_t len;

	if (nth == 0)
		return 0;
	if (k != FI_ALLOC && fi_pattern[0] != '\0') {
		if (path == NULL && fd >= 0) {
			snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
			len = syscall(SYS_readlinkat, AT_FDCWD, link, target,
			    sizeof(target) - 1);
			if (len < 0)
				return 0;
			target[len] = '\0';
			path = target;
		}
		if (path == NULL || strstr(path, fi_pattern) == NULL)
			return 0;
	}
	n = __atomic_add_fetch(&fi[k].calls, 1, __ATOMIC_SEQ_CST);
	if (n < nth || (fi[k].count > 0 && n >= nth + fi[k].count))
		return 0;
	__atomic_add_fetch(&fi_injected, 1, __ATOMIC_SEQ_CST);
	if (k != FI_ALLOC)
		say("failinj: %s #%ld%s%s fails: %s\n", kind_name[k], n,
		    path ? " on " : "", path ? path : "", strerror(fi[k].err));
	errno = k == FI_ALLOC ? ENOMEM : fi[k].err;
	return 1;
}

/* ---- allocations ---- */

void *
malloc(size_t n)
{
	return fail(FI_ALLOC, NULL, -1) ? NULL : __libc_malloc(n);
}

void *
calloc(size_t a, size_t b)
{
	return fail(FI_ALLOC, NULL, -1) ? NULL : __libc_calloc(a, b);
}

void *
realloc(void *p, size_t n)
{
	return fail(FI_ALLOC, NULL, -1) ? NULL : __libc_realloc(p, n);
}

/* ---- file system calls ---- */

/* The path dfd/name names, as well as can be told, for matching. */
static const char *
at_path(int dfd, const char *name, char *buf, size_t len)
{
	char link[64];
	ssize_t n;

	if (fi_pattern[0] == '\0' || name == NULL || name[0] == '/' ||
	    dfd == AT_FDCWD)
		return name;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", dfd);
	n = syscall(SYS_readlinkat, AT_FDCWD, link, buf, len - 1);
	if (n < 0)
		return name;
	buf[n] = '\0';
	snprintf(buf + n, len - (size_t)n, "/%s", name);
	return buf;
}

int
fsync(int fd)
{
	return fail(FI_FSYNC, NULL, fd) ? -1 : (int)syscall(SYS_fsync, fd);
}

int
fdatasync(int fd)
{
	return fail(FI_FSYNC, NULL, fd) ? -1 : (int)syscall(SYS_fdatasync, fd);
}

ssize_t
write(int fd, const void *b, size_t n)
{
	return fail(FI_WRITE, NULL, fd) ? -1 : syscall(SYS_write, fd, b, n);
}

ssize_t
pwrite(int fd, const void *b, size_t n, off_t off)
{
	return fail(FI_WRITE, NULL, fd) ? -1 :
	    syscall(SYS_pwrite64, fd, b, n, off);
}

ssize_t
pwrite64(int fd, const void *b, size_t n, off_t off)
{
	return pwrite(fd, b, n, off);
}

int
renameat2(int ofd, const char *o, int nfd, const char *n, unsigned flags)
{
	char full[1024];

	if (fail(FI_RENAME, at_path(nfd, n, full, sizeof(full)), -1))
		return -1;
	return (int)syscall(SYS_renameat2, ofd, o, nfd, n, flags);
}

int
renameat(int ofd, const char *o, int nfd, const char *n)
{
	return renameat2(ofd, o, nfd, n, 0);
}

int
rename(const char *o, const char *n)
{
	return renameat2(AT_FDCWD, o, AT_FDCWD, n, 0);
}

int
linkat(int ofd, const char *o, int nfd, const char *n, int flags)
{
	char full[1024];

	if (fail(FI_LINK, at_path(nfd, n, full, sizeof(full)), -1))
		return -1;
	return (int)syscall(SYS_linkat, ofd, o, nfd, n, flags);
}

int
link(const char *o, const char *n)
{
	return linkat(AT_FDCWD, o, AT_FDCWD, n, 0);
}

/* As a shim: armed from the environment (failinj.h). */
static int
env_errno(void)
{
	const char *e = getenv("SLUICE_FAIL_ERRNO");

	if (e == NULL || strcmp(e, "EIO") == 0)
		return EIO;
	if (strcmp(e, "ENOSPC") == 0)
		return ENOSPC;
	if (strcmp(e, "EDQUOT") == 0)
		return EDQUOT;
	return EIO;
}

__attribute__((constructor)) static void
failinj_env(void)
{
	static const char *vars[FI_NKINDS] = { NULL, "SLUICE_FAIL_FSYNC",
	    "SLUICE_FAIL_WRITE", "SLUICE_FAIL_RENAME", "SLUICE_FAIL_LINK" };
	const char *v, *c;
	int k;

	failinj_path(getenv("SLUICE_FAIL_PATH"));
	c = getenv("SLUICE_FAIL_COUNT");
	for (k = FI_FSYNC; k < FI_NKINDS; k++)
		if ((v = getenv(vars[k])) != NULL && strtol(v, NULL, 10) > 0)
			failinj_arm(k, strtol(v, NULL, 10),
			    c != NULL ? strtol(c, NULL, 10) : 1, env_errno());
}
