/*
 * creds.h - the pieces of the credential chain (creds.c, credproc.c,
 * stsxml.c) that unit tests reach. Only uploader/ includes it.
 *
 * Nothing here logs a secret; err buffers never hold one.
 */
#ifndef SLUICE_CREDS_H
#define SLUICE_CREDS_H

#include <stddef.h>
#include <stdint.h>

#include "uploader/store.h"

#define CREDPROC_TIMEOUT_MS	(60 * 1000)	/* credential_process default */
#define CREDPROC_OUT_MAX	(64 * 1024)	/* bytes of its output */
#define CREDPROC_ARGS_MAX	256

/*
 * An ISO 8601 / RFC 3339 time ("2030-01-02T03:04:05Z", fractions and
 * "+HH:MM" offsets allowed) into milliseconds since the epoch. 0 or -1.
 */
int creds_parse_time(const char *s, int64_t *ms);

/*
 * Splits a credential_process command line into argv the way the AWS CLI
 * does (Python's shlex.split, POSIX mode; no shell): blanks separate words;
 * '...' keeps everything literally; "..." keeps everything but \" and \\,
 * which stand for " and \; outside quotes a backslash takes the next
 * character literally; adjacent pieces join ("a"'b'c is abc); '' is an empty
 * word. No variables, globs, comments or pipes. On success *argvp is a
 * NULL-terminated malloc'd array the caller frees with creds_argv_free().
 * 0, or -1 with why in err (unclosed quote, trailing backslash, empty
 * command, more than CREDPROC_ARGS_MAX words).
 */
int creds_argv_split(const char *line, char ***argvp, char *err, size_t errlen);
void creds_argv_free(char **argv);

/*
 * Runs the command line (split as above, argv[0] looked up in PATH, stdin
 * /dev/null, stderr inherited, the environment inherited) and collects its
 * stdout, NUL-terminated, into *outp (malloc'd; the caller wipes and frees
 * it). Fails when it runs longer than timeout_ms (then it is killed), prints
 * more than maxout bytes, or exits other than 0. 0, or -1 with why in err.
 */
int creds_run_process(const char *cmdline, int timeout_ms, size_t maxout,
    char **outp, char *err, size_t errlen);

/*
 * The JSON a credential_process prints: Version 1, AccessKeyId,
 * SecretAccessKey, optional SessionToken and Expiration (then it must be
 * later than now_ms). 0, or -1 with why in err (c wiped).
 */
int creds_parse_process(const char *json, int64_t now_ms, struct aws_creds *c,
    char *err, size_t errlen);

/* Runs profile's credential_process; errors are logged naming the
 * profile. 0 or -1. */
int creds_from_process(const char *profile, const char *cmdline,
    int timeout_ms, struct aws_creds *c);

/*
 * STS's XML answer to AssumeRole or AssumeRoleWithWebIdentity, parsed with
 * expat (no DTDs, no entities): the Credentials element into c. For an
 * <ErrorResponse>, -1 with "Code: Message" in err. 0 or -1.
 */
int sts_parse_credentials(const char *xml, size_t len, struct aws_creds *c,
    char *err, size_t errlen);

/*
 * May AWS_CONTAINER_CREDENTIALS_FULL_URI be used? https: any host; http:
 * only loopback (127.0.0.0/8, ::1, localhost) or the ECS and EKS
 * link-local addresses 169.254.170.2, 169.254.170.23 and fd00:ec2::23, as
 * the AWS SDKs allow. 0, or -1 with why in err.
 */
int creds_container_uri_ok(const char *url, char *err, size_t errlen);

/* ---- internal to creds.c and credsts.c ------------------------------------ */

#define CREDS_BODY_MAX		(16 * 1024)	/* IMDS, container, STS replies */

/* A reply body, NUL-terminated; over: it did not fit. */
struct creds_body {
	char	 b[CREDS_BODY_MAX + 1];
	size_t	 n;
	int	 over;
};

/* A curl write callback into a struct creds_body. */
size_t creds_body_write(char *p, size_t size, size_t nitems, void *arg);

/* The shared files of one look through the chain (creds.c loads them). */
struct creds_shared {
	const char	*profile;	/* AWS_PROFILE or "default" */
	char		*cred;		/* the credentials file, or NULL */
	size_t		 credlen;
	char		*conf;		/* the config file, or NULL */
	size_t		 conflen;
	char		 credpath[4096];
	char		 confpath[4096];
};

/* A small file (at most 64 KiB) read whole, NUL-terminated; free it with
 * creds_free_small (which wipes it). NULL if missing or too big. */
char *creds_read_small(const char *path, size_t *lenp);
void creds_free_small(char *buf);
/* key of profile: the credentials file's [profile], then the config file's
 * [profile NAME] ([default]). 1 found, 0 not, -1 too long. */
int creds_prof_get(const struct creds_shared *, const char *profile,
    const char *key, char *out, size_t len);
/* The profile's static keys in the credentials / config file, and its
 * credential_process. 0 or -1. */
int creds_from_credfile(const struct creds_shared *, const char *profile,
    struct aws_creds *);
int creds_from_conffile(const struct creds_shared *, const char *profile,
    struct aws_creds *);
int creds_from_profile_process(const struct creds_shared *,
    const char *profile, struct aws_creds *);
/* credsts.c: web identity from the environment; AssumeRole for a profile
 * with role_arn (-1 quietly when it has none). 0 or -1 (logged). */
int creds_from_web_identity(struct aws_creds *);
int creds_from_profile_role(const struct creds_shared *, const char *profile,
    struct aws_creds *);

#endif
