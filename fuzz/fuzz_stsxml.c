/*
 * fuzz_stsxml.c - libFuzzer target for the STS reply parser
 * (uploader/stsxml.c, expat): any input gives 0 with credentials or a clean
 * -1 with a message, never a crash, a leak or an expanded entity.
 *
 * libFuzzer build and run (clang): fuzz/build.sh, then
 *   build-fuzz/fuzz_stsxml fuzz/corpus/stsxml
 * With -DSLUICE_FUZZ_REPLAY it replays files/directories named on its
 * command line: the ctest fuzz.stsxml_replay over fuzz/corpus/stsxml/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uploader/creds.h"
#include "fuzz/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aws_creds c;
	char err[400];

	if (sts_parse_credentials((const char *)data, size, &c, err,
	    sizeof(err)) == 0) {
		if (c.access_key[0] == '\0' || c.secret_key[0] == '\0' ||
		    c.expires_ms == 0)
			abort();
	} else if (c.access_key[0] != '\0' || err[0] == '\0')
		abort();
	return 0;
}

#ifdef SLUICE_FUZZ_REPLAY
int
main(int argc, char **argv)
{
	return fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);
}
#endif
