/*
 * fuzz_awsfiles.c - libFuzzer target for the AWS shared config and
 * credentials files (uploader/creds.c: ini_get and the profile look-ups on
 * top of it, uploader/credproc.c: the credential_process command line
 * split). The input is the credentials file, a NUL byte, and the config
 * file (no NUL: the config file only); they are NUL-terminated as
 * creds_read_small gives them. Each look-up the credential chain makes is
 * done for the default profile and for "prod"; a credential_process line
 * found is split (never run). Any input gives found / not found / too
 * long, never a crash, a leak or undefined behaviour.
 *
 * libFuzzer build and run (clang): fuzz/build.sh, then
 *   build-fuzz/fuzz_awsfiles fuzz/corpus/awsfiles
 * With -DSLUICE_FUZZ_REPLAY it replays files/directories named on its
 * command line: the ctest fuzz.awsfiles_replay over fuzz/corpus/awsfiles/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "uploader/creds.h"
#include "uploader/store.h"
#include "fuzz/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *
dup_n(const uint8_t *p, size_t n)
{
	char *s;

	if ((s = malloc(n + 1)) == NULL)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static void
profile(const struct creds_shared *sf, const char *name)
{
	static const char *const keys[] = { "role_arn", "source_profile",
	    "role_session_name", "external_id", "duration_seconds", "region",
	    "web_identity_token_file" };
	struct aws_creds c;
	char out[4096], err[256], **argv;
	size_t i;
	int r;

	(void)creds_from_credfile(sf, name, &c);
	(void)creds_from_conffile(sf, name, &c);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		r = creds_prof_get(sf, name, keys[i], out, sizeof(out));
		if (r == 1 && strlen(out) >= sizeof(out))
			abort();
	}
	/* a small out buffer reaches the "too long" answer */
	(void)creds_prof_get(sf, name, "aws_access_key_id", out, 8);
	if (creds_prof_get(sf, name, "credential_process", out,
	    sizeof(out)) == 1 && creds_argv_split(out, &argv, err,
	    sizeof(err)) == 0) {
		if (argv == NULL || argv[0] == NULL)
			abort();
		creds_argv_free(argv);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct creds_shared sf;
	const uint8_t *nul;

	if (!init) {
		log_init("fuzz", 0);
		init = 1;
	}
	if (size > 64 * 1024)
		return 0;	/* creds_read_small's limit */
	memset(&sf, 0, sizeof(sf));
	sf.profile = "default";
	if ((nul = memchr(data, '\0', size)) != NULL) {
		sf.credlen = (size_t)(nul - data);
		sf.cred = dup_n(data, sf.credlen);
		sf.conflen = size - sf.credlen - 1;
		sf.conf = dup_n(nul + 1, sf.conflen);
	} else {
		sf.conflen = size;
		sf.conf = dup_n(data, size);
	}
	profile(&sf, "default");
	profile(&sf, "prod");
	free(sf.cred);
	free(sf.conf);
	return 0;
}

#ifdef SLUICE_FUZZ_REPLAY
int
main(int argc, char **argv)
{
	return fuzz_replay_main(argc, argv, LLVMFuzzerTestOneInput);
}
#endif
