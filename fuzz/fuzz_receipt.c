/*
 * fuzz_receipt.c - libFuzzer target for the receipts the intake reads back
 * from a landed file's extended attribute (spool/receipt.c): a session
 * wrote them, so they are untrusted input. Each input is the attribute's
 * value (up to RECEIPT_MAX bytes, as receipt_read takes it): receipt_decode,
 * then receipt_check, and for an accepted one the round trip through
 * receipt_encode and receipt_record must give the same fields back.
 *
 * libFuzzer build and run (clang): fuzz/build.sh, then
 *   build-fuzz/fuzz_receipt fuzz/corpus/receipt
 * With -DSLUICE_FUZZ_REPLAY it replays files/directories named on its
 * command line: the ctest fuzz.receipt_replay over fuzz/corpus/receipt/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "spool/receipt.h"
#include "fuzz/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct file_rec r, back;
	char why[512], *text, *enc;
	json_t *rec;

	if (size > RECEIPT_MAX)
		return 0;
	/* exactly size bytes, not NUL-terminated, as fgetxattr gives them */
	if ((text = malloc(size > 0 ? size : 1)) == NULL)
		abort();
	memcpy(text, data, size);
	if (receipt_decode(text, size, &r) != 0) {
		free(text);
		return 0;
	}
	free(text);
	if (r.size < 0 || strlen(r.sha256) != 64)
		abort();
	if (receipt_check(&r, why, sizeof(why)) != 0) {
		if (why[0] == '\0')
			abort();
		return 0;
	}
	if ((enc = receipt_encode(&r)) == NULL)
		abort();
	if (receipt_decode(enc, strlen(enc), &back) != 0 ||
	    strcmp(back.fid, r.fid) != 0 || strcmp(back.path, r.path) != 0 ||
	    strcmp(back.partner, r.partner) != 0 || back.size != r.size ||
	    strcmp(back.sha256, r.sha256) != 0)
		abort();
	free(enc);
	if ((rec = receipt_record(&r)) == NULL)
		abort();
	json_decref(rec);
	return 0;
}

#ifdef SLUICE_FUZZ_REPLAY
int
main(int argc, char **argv)
{
	return fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);
}
#endif
