/*
 * failinj.h - test-only fault injection (never linked into sluice itself).
 *
 * failinj.c defines malloc, calloc, realloc, fsync, fdatasync, write,
 * pwrite, pwrite64, rename, renameat, renameat2, link and linkat. Linked into a test
 * executable they replace libc's for the whole process (libraries
 * included); built as libfailinj.so they are an LD_PRELOAD shim for a
 * sluice process. Every call is passed through unless armed: the nth call
 * of an armed kind counted after arming (on a path containing the pattern,
 * for the kinds that name a path) fails with the given errno (ENOMEM for
 * allocations), and so do the next count-1 (count -1: all from then on).
 *
 * As a shim it is armed from its environment at load (allocations never
 * are: what the loader and libc set up is not to be swept):
 *   SLUICE_FAIL_FSYNC / _WRITE / _RENAME / _LINK = n
 *   SLUICE_FAIL_COUNT = k (default 1; -1 every call from the nth on)
 *   SLUICE_FAIL_ERRNO = EIO | ENOSPC | EDQUOT (default EIO)
 *   SLUICE_FAIL_PATH  = substring of the path (of the fd's /proc/self/fd
 *                       link for fsync, fdatasync, write, pwrite)
 * Each injected failure is written to stderr as "failinj: ...".
 */
#ifndef SLUICE_TESTS_FAILINJ_H
#define SLUICE_TESTS_FAILINJ_H

enum failinj_kind {
	FI_ALLOC,	/* malloc, calloc, realloc (and so strdup, ...) */
	FI_FSYNC,	/* fsync, fdatasync */
	FI_WRITE,	/* write, pwrite, pwrite64 */
	FI_RENAME,	/* rename, renameat, renameat2 */
	FI_LINK,	/* link, linkat */
	FI_NKINDS
};

/* Counting of kind starts now (from 0); its nth call fails (n 0: none). */
void	failinj_arm(enum failinj_kind kind, long nth, long count, int err);
/* Only calls on paths containing pattern (NULL: any) are counted. */
void	failinj_path(const char *pattern);
/* Stops all injection and counting. */
void	failinj_disarm(void);
/* Calls of kind counted since it was armed. */
long	failinj_calls(enum failinj_kind kind);
/* Failures injected since the last arm. */
long	failinj_injected(void);

#endif
