/*
 * sluice.c - the `sluice` command: subcommands and the supervisor.
 *
 * Roles (one process each; ARCHITECTURE.md "Process roles"):
 *
 *   role      entry          holds
 *   server    server_run     the listening socket; forks one session per connection
 *   intake    intake_run     the partners' public keys (later), no network
 *   uploader  uploader_run   the S3 credentials
 *
 * `sluice serve` runs all of them and restarts a role that dies.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/util.h"
#include "policy/config.h"
#include "server/server.h"
#include "spool/intake.h"
#include "spool/state.h"
#include "uploader/uploader.h"

#define DEFAULT_CONFIG	"/etc/sluice/sluice.yaml"

struct proc {
	const char	*name;
	int		(*run)(const struct config *);
	pid_t		 pid;
	int		 restarts;
	int64_t		 started;
	int64_t		 restart_at;
};

static struct proc procs[] = {
	{ "server",	server_run,	0, 0, 0, 0 },
	{ "intake",	intake_run,	0, 0, 0, 0 },
	{ "uploader",	uploader_run,	0, 0, 0, 0 },
};
#define NPROCS	(sizeof(procs) / sizeof(procs[0]))

static void
usage(FILE *f)
{
	fprintf(f,
"usage: sluice [-v] COMMAND [-c FILE]\n"
"\n"
"An SFTP gateway that ships each partner's finished, verified files to S3.\n"
"\n"
"Commands:\n"
"  serve -c FILE          run the whole gateway in the foreground (server,\n"
"                         intake and uploader roles; a role that dies is restarted)\n"
"  server -c FILE         run only the SFTP server role\n"
"  intake -c FILE         run only the intake role (completion and verdicts)\n"
"  uploader -c FILE       run only the uploader role (needs the S3 credentials)\n"
"  check-config -c FILE   validate FILE; prints FILE:LINE: message per error\n"
"  audit verify FILE...   check the audit trail's hash chain\n"
"  queue list [--all] -c FILE   files waiting, uploading or held (id, state,\n"
"                         age, attempts, last error)\n"
"  queue retry -c FILE ID|--all  release held file(s) to the uploader\n"
"  queue hold -c FILE ID  hold a waiting file until released\n"
"  reconcile -c FILE      prove every stored file against the store (HEAD +\n"
"                         checksum); exit 1 listing any that cannot be proven\n"
"\n"
"Options:\n"
"  -c, --config FILE      configuration (default " DEFAULT_CONFIG ")\n"
"  -v, --verbose          debug logging\n"
"  -h, --help             this help\n"
"  -V, --version          print the version\n"
"\n"
"S3 credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and\n"
"AWS_SESSION_TOKEN, else the shared files (~/.aws/credentials, ~/.aws/config,\n"
"AWS_PROFILE), else web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN),\n"
"else EC2 instance metadata (IMDSv2); only the uploader and\n"
"reconcile read them. SIGTERM stops cleanly.\n"
"See docs/configuration.md for every configuration key.\n");
}

static struct config *
load(const char *path)
{
	struct config *cfg = NULL;

	if (config_load(path, &cfg, stderr) == -1) {
		fprintf(stderr, "sluice: %s has errors; nothing was started "
		    "(run 'sluice check-config -c %s' after fixing)\n", path, path);
		return NULL;
	}
	return cfg;
}

static int
cmd_check(const char *path)
{
	struct config *cfg;
	size_t i;

	if ((cfg = load(path)) == NULL)
		return 1;
	printf("%s: OK: listen %s:%d, %zu partner(s), store %s\n", path,
	    cfg->listen_host, cfg->listen_port, cfg->npartners, cfg->store.url);
	for (i = 0; i < cfg->npartners; i++)
		printf("  partner %s: %zu key(s)%s, %s, objects at %s\n",
		    cfg->partners[i].name, cfg->partners[i].nauthorized_keys,
		    cfg->partners[i].password_hash ? ", password" : "",
		    cfg->partners[i].nallow_from ? "allow_from set" :
		    "from anywhere", cfg->partners[i].object_key);
	server_algo_warnings(cfg, stdout);
	config_free(cfg);
	return 0;
}

static int
cmd_audit(int argc, char **argv)
{
	int i, rc = 0, r;

	if (argc < 2 || strcmp(argv[0], "verify") != 0) {
		fprintf(stderr, "usage: sluice audit verify FILE...\n");
		return 2;
	}
	for (i = 1; i < argc; i++) {
		r = audit_verify(argv[i], stdout);
		if (r > rc)
			rc = r;
	}
	return rc;
}

/* Everything a role needs on disk, made once before any role starts. */
static int
prepare(const struct config *cfg)
{
	struct state *st;

	if (spool_init(cfg->state_dir) == -1)
		return -1;
	if ((st = state_open(cfg->state_dir)) == NULL)
		return -1;
	state_close(st);
	/* server.user: what the unprivileged sessions write (listener.c). */
	if (server_prepare_user(cfg) == -1)
		return -1;
	return 0;
}

static volatile sig_atomic_t sup_quit;

static void
sup_signal(int sig)
{
	(void)sig;
	sup_quit = 1;
}

static pid_t
role_start(struct proc *r, const struct config *cfg)
{
	pid_t pid;
	struct sigaction sa;

	if ((pid = fork()) == -1) {
		log_warn("fork %s", r->name);
		return -1;
	}
	if (pid == 0) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGCHLD, &sa, NULL);
		/* Ctrl-C reaches the supervisor, which stops the roles in order. */
		signal(SIGINT, SIG_IGN);
		_exit(r->run(cfg));
	}
	r->pid = pid;
	r->started = mono_ms();
	return pid;
}

static int
cmd_serve(const struct config *cfg)
{
	struct sigaction sa;
	struct proc *r;
	size_t i;
	pid_t pid;
	int status, delay, alive;
	int64_t deadline;

	log_setrole("supervisor");
	if (prepare(cfg) == -1 || hostkeys_ensure(cfg) == -1)
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sup_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (i = 0; i < NPROCS; i++)
		if (role_start(&procs[i], cfg) == -1)
			goto stop;
	log_info("sluice %s running: SFTP on %s:%d, objects to %s", SLUICE_VERSION,
	    cfg->listen_host, cfg->listen_port, cfg->store.url);

	while (!sup_quit) {
		pid = waitpid(-1, &status, 0);
		if (pid == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < NPROCS; i++) {
			r = &procs[i];
			if (r->pid != pid)
				continue;
			r->pid = 0;
			if (sup_quit)
				break;
			/* Back off when a role keeps dying right after start. */
			if (mono_ms() - r->started > 60000)
				r->restarts = 0;
			delay = r->restarts < 6 ? 1 << r->restarts : 60;
			r->restarts++;
			if (WIFSIGNALED(status))
				log_warnx("role %s died of signal %d; restarting "
				    "in %d s", r->name, WTERMSIG(status), delay);
			else
				log_warnx("role %s exited with status %d; "
				    "restarting in %d s", r->name,
				    WEXITSTATUS(status), delay);
			r->restart_at = mono_ms() + delay * 1000;
		}
		/* Restart what is due (sleeping through the backoff). */
		for (i = 0; i < NPROCS && !sup_quit; i++) {
			r = &procs[i];
			if (r->pid != 0)
				continue;
			while (!sup_quit && mono_ms() < r->restart_at)
				usleep(100000);
			if (!sup_quit)
				role_start(r, cfg);
		}
	}
stop:
	log_info("stopping");
	for (i = 0; i < NPROCS; i++)
		if (procs[i].pid > 0)
			kill(procs[i].pid, SIGTERM);
	deadline = mono_ms() + 15000;
	for (;;) {
		alive = 0;
		for (i = 0; i < NPROCS; i++) {
			if (procs[i].pid <= 0)
				continue;
			if (waitpid(procs[i].pid, &status, WNOHANG) == procs[i].pid)
				procs[i].pid = 0;
			else
				alive++;
		}
		if (alive == 0)
			break;
		if (mono_ms() > deadline) {
			for (i = 0; i < NPROCS; i++)
				if (procs[i].pid > 0) {
					log_warnx("role %s did not stop; killing it",
					    procs[i].name);
					kill(procs[i].pid, SIGKILL);
					waitpid(procs[i].pid, &status, 0);
				}
			break;
		}
		usleep(50000);
	}
	log_info("stopped");
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'V' },
		{ NULL,		0,			NULL, 0 },
	};
	const char *cfgpath = DEFAULT_CONFIG, *cmd;
	struct config *cfg;
	int ch, verbose = 0, rc;
	size_t i;

	umask(077);	/* issue 10: every file sluice creates is its own */
	/* Options may come before or after the command. */
	while ((ch = getopt_long(argc, argv, "+c:vhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfgpath = optarg; break;
		case 'v': verbose++; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("sluice %s\n", SLUICE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	if (strcmp(cmd, "audit") == 0)
		return cmd_audit(argc - 1, argv + 1);
	if (strcmp(cmd, "queue") == 0 || strcmp(cmd, "reconcile") == 0) {
		log_init(cmd, verbose);
		return strcmp(cmd, "queue") == 0 ?
		    queue_main(argc - 1, argv + 1, cfgpath) :
		    reconcile_main(argc, argv, cfgpath);
	}
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:vhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfgpath = optarg; break;
		case 'v': verbose++; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("sluice %s\n", SLUICE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "sluice: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	log_init(cmd, verbose);
	if (strcmp(cmd, "check-config") == 0)
		return cmd_check(cfgpath);
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if ((cfg = load(cfgpath)) == NULL)
		return 1;
	if (strcmp(cmd, "serve") == 0)
		rc = cmd_serve(cfg);
	else {
		rc = -1;
		for (i = 0; i < NPROCS; i++) {
			if (strcmp(cmd, procs[i].name) != 0)
				continue;
			rc = prepare(cfg) == -1 ? 1 : procs[i].run(cfg);
			break;
		}
		if (rc == -1) {
			fprintf(stderr, "sluice: unknown command \"%s\" (see "
			    "sluice --help)\n", cmd);
			rc = 2;
		}
	}
	config_free(cfg);
	return rc;
}
