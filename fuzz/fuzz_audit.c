/*
 * fuzz_audit.c - libFuzzer target for `sluice audit verify`
 * (audit/verify.c): a trail handed to the verifier may be anything, so each
 * input is written to a file in a private temp directory and checked with
 * audit_verify_trail, with the target's fixed audit key when the first
 * byte is odd (MAC checks) or without keys (hash chain only). Any input
 * gives 0, 1 or 2 with a line on out, never a crash, a leak or undefined
 * behaviour.
 *
 * The key is fixed (32 bytes of 0x5a) so that seeds made with it carry
 * valid MACs and the fuzzer starts deep in the checks. Seeds: built with
 * -DSLUICE_FUZZ_SEEDGEN this file is a program that writes trails made by
 * audit_emit (the writer's own code) into the directory named on its
 * command line (fuzz/README.md).
 *
 * libFuzzer build and run (clang): fuzz/build.sh, then
 *   build-fuzz/fuzz_audit fuzz/corpus/audit
 * With -DSLUICE_FUZZ_REPLAY it replays files/directories named on its
 * command line: the ctest fuzz.audit_replay over fuzz/corpus/audit/.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "common/log.h"
#include "fuzz/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char	 dir[256];
static char	 keypath[300];
static char	 trail[300];
static struct audit_key *key;
static FILE	*devnull;

static void
setup_once(void)
{
	const char *tmp;
	uint8_t k[32];
	int fd;

	if (dir[0] != '\0')
		return;
	log_init("fuzz", 0);
	/* TMPDIR=/dev/shm makes the fsyncs cheap */
	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/fuzz_audit.XXXXXX", tmp);
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(keypath, sizeof(keypath), "%s/audit.key", dir);
	snprintf(trail, sizeof(trail), "%s/audit.jsonl", dir);
	memset(k, 0x5a, sizeof(k));
	if ((fd = open(keypath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) == -1 || write(fd, k, sizeof(k)) != (ssize_t)sizeof(k))
		abort();
	close(fd);
	if ((key = audit_key_load(keypath, 1)) == NULL ||
	    (devnull = fopen("/dev/null", "w")) == NULL)
		abort();
}

static void
teardown(void)
{
	if (dir[0] == '\0')
		return;
	audit_key_free(key);
	fclose(devnull);
	unlink(trail);
	unlink(keypath);
	rmdir(dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *paths[1];
	int fd, rc;

	if (size < 1 || size > 1024 * 1024)
		return 0;
	setup_once();
	if ((fd = open(trail, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1 ||
	    (size > 1 && write(fd, data + 1, size - 1) != (ssize_t)(size - 1)))
		abort();
	close(fd);
	paths[0] = trail;
	rc = audit_verify_trail(paths, 1, &key, data[0] & 1 ? 1 : 0, 0,
	    devnull);
	if (rc < 0 || rc > 2)
		abort();
	return 0;
}

#if defined(SLUICE_FUZZ_SEEDGEN)
/* Writes seed trails (first byte 1: check MACs) into argv[1]. */
static void
seed(const char *out, const char *name, int keyed, int check, int n,
    int cut)
{
	struct audit *a;
	char path[300], *buf;
	FILE *f;
	long len;
	int i;

	unlink(trail);
	if ((a = audit_open(trail)) == NULL ||
	    (keyed && audit_set_key(a, keypath) != 0))
		abort();
	for (i = 0; i < n; i++)
		if (audit_emit(a, i % 2 ? "file.received" : "auth.ok",
		    json_pack("{s:s,s:s,s:i,s:s}", "partner", "acme",
		    "path", i % 3 ? "in/a b.csv" : "in/\xc3\xa9t\xc3\xa9.pgp",
		    "size", i * 1000, "sha256", "e3b0c44298fc1c149afbf4c8996fb9"
		    "2427ae41e4649b934ca495991b7852b855")) != 0)
			abort();
	audit_close(a);
	if ((f = fopen(trail, "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 ||
	    (len = ftell(f)) < 0 || (buf = malloc((size_t)len + 1)) == NULL)
		abort();
	rewind(f);
	buf[0] = check;
	if (fread(buf + 1, 1, (size_t)len, f) != (size_t)len)
		abort();
	fclose(f);
	snprintf(path, sizeof(path), "%s/%s", out, name);
	if ((f = fopen(path, "wb")) == NULL ||
	    fwrite(buf, 1, (size_t)len + 1 - cut, f) != (size_t)len + 1 - cut)
		abort();
	fclose(f);
	free(buf);
}

int
main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	setup_once();
	seed(argv[1], "keyed_5", 1, 1, 5, 0);
	seed(argv[1], "keyed_1", 1, 1, 1, 0);
	seed(argv[1], "keyed_unchecked", 1, 0, 3, 0);
	seed(argv[1], "plain_4", 0, 0, 4, 0);
	seed(argv[1], "keyed_cut", 1, 1, 3, 20);
	seed(argv[1], "plain_as_keyed", 0, 1, 3, 0);
	teardown();
	return 0;
}
#elif defined(SLUICE_FUZZ_REPLAY)
int
main(int argc, char **argv)
{
	int rc = fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);

	teardown();
	return rc;
}
#endif
