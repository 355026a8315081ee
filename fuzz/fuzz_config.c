/*
 * fuzz_config.c - libFuzzer target for the config loader (policy/config.c):
 * each input is written as a YAML file in a private temp directory and
 * loaded; an error must be a clean -1 with FILE:LINE messages, never a
 * crash, a leak or undefined behaviour. Inputs over 64 KiB are skipped
 * (a config is small; the YAML parser's speed on huge inputs is libyaml's).
 *
 * libFuzzer build and run (clang): fuzz/build.sh, then
 *   build-fuzz/fuzz_config -close_fd_mask=2 fuzz/corpus/config
 * With -DSLUICE_FUZZ_REPLAY it replays files/directories named on its
 * command line: the ctest fuzz.config_replay over fuzz/corpus/config/.
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
#include "fuzz/replay.h"

#define FUZZ_CONFIG_MAX	(64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char	dir[64];
static char	path[128];

static void
setup_once(void)
{
	if (dir[0] != '\0')
		return;
	log_init("fuzz", 0);
	snprintf(dir, sizeof(dir), "/tmp/fuzz_config.XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/sluice.yaml", dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	FILE *err;
	int fd;

	if (size > FUZZ_CONFIG_MAX)
		return 0;
	setup_once();
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1)
		abort();
	if (size > 0 && write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	/* the messages go nowhere, but every one is formatted */
	if ((err = fopen("/dev/null", "w")) == NULL)
		abort();
	if (config_load(path, &cfg, err) == 0) {
		if (cfg == NULL)
			abort();
		/* look at what the loader built */
		(void)config_partner(cfg, "acme");
		(void)config_role(cfg, "dropbox");
		config_free(cfg);
	} else if (cfg != NULL)
		abort();
	fclose(err);
	return 0;
}

#ifdef SLUICE_FUZZ_REPLAY
int
main(int argc, char **argv)
{
	int rc = fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);

	if (dir[0] != '\0') {
		unlink(path);
		rmdir(dir);
	}
	return rc;
}
#endif
