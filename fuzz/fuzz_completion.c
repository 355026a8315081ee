/*
 * fuzz_completion.c - libFuzzer target for the completion rules' parsers of
 * partner-written files (policy/completion.c): manifests (manifest_parse,
 * then manifest_batch_complete against the files the manifest itself lists)
 * and checksum sidecars (checksum_find, SHA-256 and MD5). The first byte
 * picks the parser; the rest is the file. Any input gives a clean answer,
 * never a crash, a leak or undefined behaviour; what is accepted is well
 * formed (lower-case hex of the right length, sizes >= 0).
 *
 * libFuzzer build and run (clang): fuzz/build.sh, then
 *   build-fuzz/fuzz_completion fuzz/corpus/completion
 * With -DSLUICE_FUZZ_REPLAY it replays files/directories named on its
 * command line: the ctest fuzz.completion_replay over fuzz/corpus/completion/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/completion.h"
#include "fuzz/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
hex_ok(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0';
}

static void
manifest(const char *text, size_t len)
{
	struct manifest m;
	struct batch_file *f;
	size_t i, *match;
	char why[256], path[4200];
	int rc;

	memset(&m, 0, sizeof(m));
	if (manifest_parse(text, len, &m, why, sizeof(why)) != 0) {
		if (why[0] == '\0')
			abort();
		manifest_free(&m);
		return;
	}
	if (m.n == 0) {
		manifest_free(&m);
		return;
	}
	f = calloc(m.n, sizeof(*f));
	match = calloc(m.n, sizeof(*match));
	if (f == NULL || match == NULL)
		abort();
	/* the received files: every entry present, the last one with another
	 * size, so both the complete and the incomplete answers are reached */
	for (i = 0; i < m.n; i++) {
		if (m.e[i].name == NULL || m.e[i].name[0] == '\0' ||
		    m.e[i].size < 0 || !hex_ok(m.e[i].sha256, 64))
			abort();
		snprintf(path, sizeof(path), "in/%s", m.e[i].name);
		if ((f[i].path = strdup(path)) == NULL)
			abort();
		f[i].size = m.e[i].size;
		f[i].sha256 = m.e[i].sha256;
	}
	rc = manifest_batch_complete(&m, "in/batch.manifest", f, m.n, match,
	    why, sizeof(why));
	if (rc == 1)
		for (i = 0; i < m.n; i++)
			if (match[i] >= m.n)
				abort();
	f[m.n - 1].size++;
	(void)manifest_batch_complete(&m, "in/batch.manifest", f, m.n, match,
	    why, sizeof(why));
	for (i = 0; i < m.n; i++)
		free((char *)f[i].path);
	free(f);
	free(match);
	manifest_free(&m);
}

static void
checksum(const char *text, size_t len, const char *alg, const char *name)
{
	char hex[80], why[256];
	size_t hexlen = checksum_hexlen(alg);
	int rc;

	rc = checksum_find(text, len, name, hexlen, hex, sizeof(hex), why,
	    sizeof(why));
	if (rc == 1 && !hex_ok(hex, hexlen))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data + 1;
	char *copy;

	if (size < 1)
		return 0;
	/* the parsers take a length, so the text is not NUL-terminated: a
	 * copy of exactly that length lets ASan see any read past it */
	if ((copy = malloc(size)) == NULL)
		abort();
	memcpy(copy, text, size - 1);
	switch (data[0] % 4) {
	case 0:
		manifest(copy, size - 1);
		break;
	case 1:
		checksum(copy, size - 1, "sha256", "data.csv");
		break;
	case 2:
		checksum(copy, size - 1, "md5", "data.csv");
		break;
	default:
		checksum(copy, size - 1, "sha256", "");
		break;
	}
	free(copy);
	return 0;
}

#ifdef SLUICE_FUZZ_REPLAY
int
main(int argc, char **argv)
{
	return fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);
}
#endif
