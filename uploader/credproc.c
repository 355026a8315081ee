/*
 * credproc.c - credential_process: the command a profile names (how IAM
 * Roles Anywhere's aws_signing_helper gives on-premises machines short-lived
 * credentials). The command line is split like the AWS CLI does (no shell),
 * run with posix_spawn (safe in a threaded process), its output bounded and
 * its run time limited, and its JSON read. Also the time parser the chain's
 * sources share.
 */
#include "uploader/creds.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"

extern char **environ;

static int
digits(const char *s, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int
creds_parse_time(const char *s, int64_t *ms)
{
	struct tm tm;
	int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
	time_t t;

	if (s == NULL || strlen(s) < 19 || s[4] != '-' || s[7] != '-' ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' ||
	    s[16] != ':' || digits(s, 4, &y) || digits(s + 5, 2, &mo) ||
	    digits(s + 8, 2, &d) || digits(s + 11, 2, &h) ||
	    digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
		return -1;
	s += 19;
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++)
			;
	if (*s == 'Z' || *s == 'z')
		s++;
	else if (*s == '+' || *s == '-') {
		sign = *s == '-' ? -1 : 1;
		if (strlen(s) < 6 || s[3] != ':' || digits(s + 1, 2, &oh) ||
		    digits(s + 4, 2, &om))
			return -1;
		s += 6;
	} else if (*s != '\0')
		return -1;
	if (*s != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || se > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	t -= (time_t)sign * (oh * 3600 + om * 60);
	*ms = (int64_t)t * 1000;
	return 0;
}

/* ---- splitting the command line ------------------------------------------ */

void
creds_argv_free(char **argv)
{
	if (argv != NULL) {
		free(argv[0]);		/* the one buffer of every word */
		free(argv);
	}
}

int
creds_argv_split(const char *line, char ***argvp, char *err, size_t errlen)
{
	char **argv = NULL, *buf = NULL, *w;
	const char *p;
	size_t n = 0;
	int inword = 0, q = 0;	/* q: 0, '\'' or '"' */

	*argvp = NULL;
	if ((buf = malloc(strlen(line) + 1)) == NULL ||
	    (argv = calloc(CREDPROC_ARGS_MAX + 1, sizeof(*argv))) == NULL) {
		xsnprintf(err, errlen, "out of memory");
		goto fail;
	}
	w = buf;
	for (p = line; *p != '\0'; p++) {
		if (q == 0 && strchr(" \t\r\n", *p) != NULL) {
			if (inword)
				*w++ = '\0';
			inword = 0;
			continue;
		}
		if (!inword) {
			if (n == CREDPROC_ARGS_MAX) {
				xsnprintf(err, errlen, "more than %d words",
				    CREDPROC_ARGS_MAX);
				goto fail;
			}
			argv[n++] = w;
			inword = 1;
		}
		if (q == 0 && (*p == '\'' || *p == '"'))
			q = *p;
		else if (q != 0 && *p == q)
			q = 0;
		else if (q == '"' && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
			*w++ = *++p;
		else if (q == 0 && *p == '\\') {
			if (p[1] == '\0') {
				xsnprintf(err, errlen, "ends in a backslash "
				    "that escapes nothing");
				goto fail;
			}
			*w++ = *++p;
		} else
			*w++ = *p;
	}
	if (q != 0) {
		xsnprintf(err, errlen, "has an unclosed %c quote", q);
		goto fail;
	}
	*w = '\0';
	if (n == 0) {
		xsnprintf(err, errlen, "is empty");
		goto fail;
	}
	if (argv[0] != buf) {	/* creds_argv_free frees argv[0] */
		xsnprintf(err, errlen, "internal error");
		goto fail;
	}
	*argvp = argv;
	return 0;
fail:
	free(buf);
	free(argv);
	return -1;
}

/* ---- running it ----------------------------------------------------------- */

/* Waits for pid until deadline (monotonic ms), then kills it. */
static int
reap(pid_t pid, int64_t deadline, int *status)
{
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r == -1 && errno != EINTR)
			return -1;
		if (mono_ms() >= deadline) {
			kill(-pid, SIGKILL);
			while (waitpid(pid, status, 0) == -1 && errno == EINTR)
				;
			return -1;
		}
		usleep(5000);
	}
}

static pid_t
spawn(char **argv, int outfd, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	pid_t pid = -1;
	int e;

	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, outfd, 1);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	/* its own process group: a timeout kills what it started too */
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	if ((e = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ)) != 0) {
		xsnprintf(err, errlen, "cannot run %s: %s", argv[0],
		    strerror(e));
		pid = -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return pid;
}

/* Reads fd to EOF into out (maxout + 1 bytes) until deadline. 0, -1. */
static int
collect(int fd, char *out, size_t maxout, size_t *lenp, int64_t deadline,
    int timeout_ms, char *err, size_t errlen)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	size_t len = 0;
	int64_t left;
	ssize_t n;

	for (;;) {
		if ((left = deadline - mono_ms()) <= 0) {
			xsnprintf(err, errlen, "did not finish within %d ms; "
			    "killed", timeout_ms);
			return -1;
		}
		if (poll(&pf, 1, (int)left) == -1 && errno != EINTR) {
			xsnprintf(err, errlen, "poll: %s", strerror(errno));
			return -1;
		}
		n = read(fd, out + len, maxout + 1 - len);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == -1) {
			xsnprintf(err, errlen, "read: %s", strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > maxout) {
			xsnprintf(err, errlen, "printed more than %zu bytes; "
			    "killed", maxout);
			return -1;
		}
	}
	out[len] = '\0';
	*lenp = len;
	return 0;
}

int
creds_run_process(const char *cmdline, int timeout_ms, size_t maxout,
    char **outp, char *err, size_t errlen)
{
	char **argv = NULL, *out = NULL, why[200];
	int pfd[2] = { -1, -1 }, status = 0, rc = -1, ok;
	int64_t deadline = mono_ms() + timeout_ms;
	size_t len = 0;
	pid_t pid = -1;

	*outp = NULL;
	if (creds_argv_split(cmdline, &argv, why, sizeof(why)) != 0) {
		xsnprintf(err, errlen, "the command line %s", why);
		return -1;
	}
	if ((out = malloc(maxout + 1)) == NULL ||
	    pipe2(pfd, O_CLOEXEC) == -1 ||
	    fcntl(pfd[0], F_SETFL, O_NONBLOCK) == -1) {
		xsnprintf(err, errlen, "cannot run %s: %s", argv[0],
		    strerror(errno));
		goto fail;
	}
	if ((pid = spawn(argv, pfd[1], err, errlen)) == -1)
		goto fail;
	close(pfd[1]);
	pfd[1] = -1;
	ok = collect(pfd[0], out, maxout, &len, deadline, timeout_ms, why,
	    sizeof(why)) == 0;
	if (!ok) {
		kill(-pid, SIGKILL);
		xsnprintf(err, errlen, "%s %s", argv[0], why);
	}
	if (reap(pid, ok ? deadline : mono_ms() + 5000, &status) != 0 && ok) {
		xsnprintf(err, errlen, "%s did not finish within %d ms; killed",
		    argv[0], timeout_ms);
		goto fail;
	}
	if (!ok)
		goto fail;
	if (WIFSIGNALED(status)) {
		xsnprintf(err, errlen, "%s was killed by signal %d", argv[0],
		    WTERMSIG(status));
		goto fail;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		xsnprintf(err, errlen, "%s exited with status %d (its messages "
		    "are on the uploader's stderr)", argv[0],
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		goto fail;
	}
	*outp = out;
	out = NULL;
	rc = 0;
fail:
	if (pfd[0] != -1)
		close(pfd[0]);
	if (pfd[1] != -1)
		close(pfd[1]);
	if (out != NULL) {
		explicit_bzero(out, maxout + 1);
		free(out);
	}
	creds_argv_free(argv);
	return rc;
}

/* ---- its output ------------------------------------------------------------ */

static int
copy_field(json_t *j, const char *name, int required, char *dst, size_t len,
    char *err, size_t errlen)
{
	json_t *v = json_object_get(j, name);
	const char *s = json_string_value(v);

	dst[0] = '\0';
	if (v == NULL && !required)
		return 0;
	if (s == NULL || (required && *s == '\0')) {
		xsnprintf(err, errlen, "%s is %s", name, v == NULL ?
		    "missing" : "not a non-empty string");
		return -1;
	}
	if (xstrlcpy(dst, s, len) >= len) {
		xsnprintf(err, errlen, "%s is longer than %zu bytes", name,
		    len - 1);
		return -1;
	}
	return 0;
}

int
creds_parse_process(const char *json, int64_t now, struct aws_creds *c,
    char *err, size_t errlen)
{
	json_t *j, *ver;
	const char *exp;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if ((j = json_loads(json, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_object(j)) {
		xsnprintf(err, errlen, "its output is not a JSON object");
		goto fail;
	}
	ver = json_object_get(j, "Version");
	if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
		xsnprintf(err, errlen, "its output has no \"Version\": 1");
		goto fail;
	}
	if (copy_field(j, "AccessKeyId", 1, c->access_key,
	    sizeof(c->access_key), err, errlen) != 0 ||
	    copy_field(j, "SecretAccessKey", 1, c->secret_key,
	    sizeof(c->secret_key), err, errlen) != 0 ||
	    copy_field(j, "SessionToken", 0, c->session_token,
	    sizeof(c->session_token), err, errlen) != 0)
		goto fail;
	if (json_object_get(j, "Expiration") != NULL) {
		exp = json_string_value(json_object_get(j, "Expiration"));
		if (creds_parse_time(exp, &c->expires_ms) != 0) {
			xsnprintf(err, errlen, "Expiration is not an ISO 8601 "
			    "time (e.g. 2030-01-02T03:04:05Z)");
			goto fail;
		}
		if (c->expires_ms <= now) {
			xsnprintf(err, errlen, "the credentials it gave expired "
			    "at %s", exp);
			goto fail;
		}
	}
	rc = 0;
fail:
	json_decref(j);
	if (rc != 0)
		explicit_bzero(c, sizeof(*c));
	return rc;
}

int
creds_from_process(const char *profile, const char *cmdline, int timeout_ms,
    struct aws_creds *c)
{
	char err[400], *out = NULL;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (creds_run_process(cmdline, timeout_ms, CREDPROC_OUT_MAX, &out, err,
	    sizeof(err)) != 0 ||
	    creds_parse_process(out, now_ms(), c, err, sizeof(err)) != 0)
		log_warnx("credentials: profile %s: credential_process: %s; "
		    "fix the command or what it prints (JSON with Version 1, "
		    "AccessKeyId, SecretAccessKey, SessionToken, Expiration)",
		    profile, err);
	else
		rc = 0;
	if (out != NULL) {
		explicit_bzero(out, strlen(out));
		free(out);
	}
	return rc;
}
