/*
 * testtree.h - removing a unit test's temporary tree without a shell:
 * directories are first made writable (a test may leave one read-only),
 * then everything is removed depth first, links not followed.
 */
#ifndef SLUICE_TESTTREE_H
#define SLUICE_TESTTREE_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int
testtree_open_up(const char *p, const struct stat *sb, int flag,
    struct FTW *f)
{
	(void)f;
	if (flag == FTW_D || flag == FTW_DNR)
		(void)chmod(p, (sb->st_mode & 07777) | S_IRWXU);
	return 0;
}

static int
testtree_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p) == -1 ? -1 : 0;
}

/* Removes path and everything under it. 0, or -1 if anything stayed. */
static inline int
testtree_remove(const char *path)
{
	(void)nftw(path, testtree_open_up, 16, FTW_PHYS);
	return nftw(path, testtree_rm_one, 16, FTW_DEPTH | FTW_PHYS) == -1 ?
	    -1 : 0;
}

#endif
