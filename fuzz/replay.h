/*
 * replay.h - the replay main() shared by the fuzz targets when built with
 * -DSLUICE_FUZZ_REPLAY: every file named on the command line, and every
 * regular file inside a directory named there (in name order), is fed once
 * to the target. A crash or sanitizer report fails the ctest; so every
 * input a fuzzer ever found stays a regression test.
 *
 * Header-only (static functions) so a target is one .c file plus sluicecore.
 * Ownership: nothing is kept; buffers are freed after each input.
 */
#ifndef SLUICE_FUZZ_REPLAY_H
#define SLUICE_FUZZ_REPLAY_H

#ifdef SLUICE_FUZZ_REPLAY

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef int (*fuzz_target_fn)(const uint8_t *, size_t);

#define FUZZ_REPLAY_MAX	(16 * 1024 * 1024)

/* Feeds one file to fn. 0, or -1 if it cannot be read. */
static int
fuzz_replay_file(const char *path, fuzz_target_fn fn)
{
	struct stat st;
	uint8_t *buf;
	ssize_t n;
	size_t off = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1 || st.st_size > FUZZ_REPLAY_MAX ||
	    (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		if (fd != -1)
			close(fd);
		return -1;
	}
	while (off < (size_t)st.st_size &&
	    (n = read(fd, buf + off, (size_t)st.st_size - off)) > 0)
		off += (size_t)n;
	close(fd);
	fn(buf, off);
	free(buf);
	return 0;
}

static int
fuzz_name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int
fuzz_replay_main(int argc, char **argv, fuzz_target_fn fn)
{
	struct dirent **ents;
	struct stat st;
	char path[PATH_MAX];
	int i, j, n, count = 0, rc = 0;

	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == -1) {
			fprintf(stderr, "replay: %s: not found\n", argv[i]);
			rc = 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (fuzz_replay_file(argv[i], fn) == -1)
				rc = 1;
			count++;
			continue;
		}
		if ((n = scandir(argv[i], &ents, NULL, fuzz_name_cmp)) == -1) {
			fprintf(stderr, "replay: cannot list %s\n", argv[i]);
			rc = 1;
			continue;
		}
		for (j = 0; j < n; j++) {
			if (ents[j]->d_name[0] != '.' &&
			    snprintf(path, sizeof(path), "%s/%s", argv[i],
			    ents[j]->d_name) < (int)sizeof(path) &&
			    stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				if (fuzz_replay_file(path, fn) == -1)
					rc = 1;
				count++;
			}
			free(ents[j]);
		}
		free(ents);
	}
	fprintf(stderr, "replay: %d inputs%s\n", count, rc ? ", errors" : "");
	if (count == 0)
		rc = 1;		/* an empty corpus tests nothing */
	return rc;
}

#endif	/* SLUICE_FUZZ_REPLAY */
#endif
