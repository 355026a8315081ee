/*
 * fuzz_s3list.c - libFuzzer target for the ListObjectsV2 reply parser
 * (s3_list_parse, uploader/s3list.c, expat): a store's XML answer is
 * outside input. Any input gives 0 or a clean error with a message (or the
 * callback's own answer), never a crash, a leak or an expanded entity; keys
 * handed to the callback are non-empty, NUL-terminated and within S3's
 * 1024 bytes; the continuation token fits its buffer. The first byte picks
 * the token buffer's size and whether the callback stops the walk.
 *
 * libFuzzer build and run (clang): fuzz/build.sh, then
 *   build-fuzz/fuzz_s3list fuzz/corpus/s3list
 * With -DSLUICE_FUZZ_REPLAY it replays files/directories named on its
 * command line: the ctest fuzz.s3list_replay over fuzz/corpus/s3list/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uploader/store.h"
#include "fuzz/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	int	 n;
	int	 stop_at;	/* answer 7 on this call (0: never) */
};

static int
on_object(void *arg, const char *key, int64_t size)
{
	struct seen *s = arg;
	size_t n = strlen(key);

	if (n == 0 || n > 1024)
		abort();
	if (++s->n == s->stop_at)
		return 7;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen s;
	char token[1200], err[300], *body;
	size_t tokenlen;
	int rc, truncated;

	if (size < 1)
		return 0;
	tokenlen = data[0] & 1 ? sizeof(token) : 16;
	memset(&s, 0, sizeof(s));
	s.stop_at = data[0] & 2 ? 2 : 0;
	if ((body = malloc(size)) == NULL)
		abort();
	memcpy(body, data + 1, size - 1);
	rc = s3_list_parse(body, size - 1, on_object, &s, &truncated, token,
	    tokenlen, err, sizeof(err));
	free(body);
	if (rc == 0) {
		if (strnlen(token, tokenlen) >= tokenlen)
			abort();
	} else if (rc == -1) {
		if (err[0] == '\0' || token[0] != '\0')
			abort();
	} else if (rc != 7)
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
