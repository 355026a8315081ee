/*
 * fuzz_proxy.c - libFuzzer target for the PROXY protocol v2 header parser
 * (server/proxy.c): any input, and every prefix of it, gives a status
 * without a crash; a complete header never claims more bytes than it was
 * given, and "more" always asks for more than it has, within the cap.
 *
 * libFuzzer build and run (clang): fuzz/build.sh, then
 *   build-fuzz/fuzz_proxy fuzz/corpus/proxy
 * With -DSLUICE_FUZZ_REPLAY it replays files/directories named on its
 * command line: the ctest fuzz.proxy_replay over fuzz/corpus/proxy/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "server/proxy.h"
#include "fuzz/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_info pi;
	enum proxy_status st;
	const char *why;
	size_t want, len;

	for (len = size > 64 ? size - 64 : 0; len <= size; len++) {
		st = proxy_parse(data, len, &pi, &want, &why);
		if (st == PROXY_MORE && (want <= len || want > PROXY_V2_MAX))
			abort();
		if (st == PROXY_BAD && why == NULL)
			abort();
		if ((st == PROXY_ADDR || st == PROXY_LOCAL ||
		    st == PROXY_UNSPEC) && (pi.hdrlen > len ||
		    pi.hdrlen < PROXY_V2_HDR))
			abort();
		if (st == PROXY_ADDR && pi.srclen == 0)
			abort();
	}
	return 0;
}

#ifdef SLUICE_FUZZ_REPLAY
int
main(int argc, char **argv)
{
	return fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);
}
#endif
