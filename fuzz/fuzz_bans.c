/*
 * fuzz_bans.c - libFuzzer target for the listener's ban table loader
 * (server/guard.c guard_load): state_dir/bans.json survives restarts and is
 * read at start, so a damaged or planted file must give a clean -1 (or a
 * table with what is valid), never a crash, a leak or undefined behaviour.
 * Each input is written as bans.json in a private temp directory and loaded
 * into a guard with two configured partners; the table is then used (a
 * few admissions and failures) and saved back, and that saved file must
 * load again.
 *
 * libFuzzer build and run (clang): fuzz/build.sh, then
 *   build-fuzz/fuzz_bans fuzz/corpus/bans
 * With -DSLUICE_FUZZ_REPLAY it replays files/directories named on its
 * command line: the ctest fuzz.bans_replay over fuzz/corpus/bans/.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "policy/config.h"
#include "server/guard.h"
#include "fuzz/replay.h"

#define NOW	1700000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char	 dir[256];
static char	 path[300];
static char	 saved[300];
static struct partner partners[2];
static struct config cfg;
static struct guard *g;

static void
setup_once(void)
{
	const char *tmp;

	if (dir[0] != '\0')
		return;
	log_init("fuzz", 0);
	/* TMPDIR=/dev/shm makes the fsyncs cheap */
	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/fuzz_bans.XXXXXX", tmp);
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/bans.json", dir);
	snprintf(saved, sizeof(saved), "%s/saved.json", dir);
	partners[0].name = "acme";
	partners[1].name = "globex";
	cfg.partners = partners;
	cfg.npartners = 2;
	/* one guard for the run (its tables are large); guard_load replaces
	 * the table every time */
	if ((g = guard_new(&cfg)) == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guard_ban ban;
	int fd;

	if (size > 256 * 1024)
		return 0;
	setup_once();
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1 ||
	    (size > 0 && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
	if (guard_load(g, path, NOW) != 0)
		return 0;
	(void)guard_addr_banned(g, "192.0.2.1", NOW);
	(void)guard_addr_banned(g, "2001:db8:1:2::5", NOW);
	(void)guard_user_banned(g, "acme", "192.0.2.1", NOW);
	guard_failure(g, "192.0.2.1", "acme", NOW + 1, &ban);
	guard_failure(g, "2001:db8:1:2::5", "globex", NOW + 1, &ban);
	if (guard_save(g, saved, NOW + 2) != 0 ||
	    guard_load(g, saved, NOW + 2) != 0)
		abort();
	return 0;
}

#ifdef SLUICE_FUZZ_REPLAY
int
main(int argc, char **argv)
{
	int rc = fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);

	if (dir[0] != '\0') {
		guard_free(g);
		unlink(path);
		unlink(saved);
		rmdir(dir);
	}
	return rc;
}
#endif
