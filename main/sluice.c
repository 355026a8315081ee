/*
 * sluice.c - the `sluice` command: subcommands, the role table and the
 * supervisor.
 *
 * Every process of the gateway is one row of procs[] below: its name, the
 * user it runs as, what it keeps, what it may touch and whom it talks to.
 * The supervisor (`sluice serve`, root) starts each role through the one
 * start path, proc_start() (common/proc.h), and restarts a role that dies.
 * It also starts the session processes, since only root can switch to the
 * session user: the listener hands it each admitted connection.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/close_range.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "audit/audit.h"
#include "audit/trace.h"
#include "common/log.h"
#include "common/notify.h"
#include "common/proc.h"
#include "common/util.h"
#include "metrics/metrics.h"
#include "notify/events.h"
#include "policy/confdiff.h"
#include "control/control.h"
#include "policy/config.h"
#include "policy/sessioncfg.h"
#include "server/server.h"
#include "spool/intake.h"
#include "spool/layout.h"
#include "spool/state.h"
#include "uploader/auditship.h"
#include "uploader/uploader.h"

#define DEFAULT_CONFIG	"/etc/sluice/sluice.yaml"
#ifdef SLUICE_TEST_HOOKS
#define VERSION_LINE	"sluice " SLUICE_VERSION " (test build: test hooks on)\n"
#else
#define VERSION_LINE	"sluice " SLUICE_VERSION "\n"
#endif

/* What the supervisor made for the roles before starting them. */
static struct {
	struct proc_users	 users;
	int			 listenfd;	/* the SSH port, bound as root */
	int			 auditfd;	/* the audit writer's socket */
	int			 controlfd;	/* control.socket (control.h) */
	int			 spawnfd[2];	/* [0] supervisor, [1] listener */
	int			 sessioncfg;	/* sealed memfd (policy/sessioncfg.h) */
	int			 exefd;		/* sluice-session, to exec sessions */
	int			 verbose;
	int			 restricted;	/* no file capabilities: state_dir
						 * is `sluice prepare`'s work */
} sup = { .listenfd = -1, .auditfd = -1, .controlfd = -1,
	.spawnfd = { -1, -1 },
	.sessioncfg = -1, .exefd = -1 };

static int
run_audit(const struct config *cfg)
{
	if (sup.users.separated)
		audit_writer_restrict_uid(sup.users.session.uid);
	audit_writer_quit_flag(&proc_quit);
	return audit_writer_run(cfg, sup.auditfd);
}

static int
run_listener(const struct config *cfg)
{
	return server_run(cfg, sup.listenfd, sup.spawnfd[1]);
}

static int cmd_audit(int argc, char **argv, const char *cfgpath);
static int cmd_rotate_key(const char *cfgpath, const char *operator_name);
struct proc;
static int role_wanted(const struct proc *, const struct config *, int);

/* --- the commands operators run through the gateway (control.h) ------------ */

static int
ctl_queue(const struct config *cfg, const char *op, int argc, char **argv)
{
	return queue_run(cfg, op, argc - 1, argv + 1);
}

static int
ctl_reconcile(const struct config *cfg, const char *op, int argc, char **argv)
{
	return reconcile_run(cfg, op, argc, argv);
}

/* 1 if path resolves beneath the directory of `of` (a configured file). */
static int
beneath_dir_of(const char *path, const char *of)
{
	char real[PATH_MAX], dir[PATH_MAX], *slash;
	size_t n;

	if (of == NULL || realpath(path, real) == NULL ||
	    xstrlcpy(dir, of, sizeof(dir)) >= sizeof(dir) ||
	    (slash = strrchr(dir, '/')) == NULL)
		return 0;
	*slash = '\0';
	if (realpath(dir[0] != '\0' ? dir : "/", dir) == NULL)
		return 0;
	n = strlen(dir);
	return strncmp(real, dir, n) == 0 && (real[n] == '/' || n == 1);
}

/*
 * `audit verify [--key FILE]... [FILE|DIR...]` in the control role: without
 * a file, the gateway's own trail and keys (as `-c` its configuration).
 */
static int
audit_verify_as_gateway(const struct config *cfg, int argc, char **argv)
{
	char **av;
	int i, n = 0, files = 0, rc;

	if ((av = calloc((size_t)argc + 3, sizeof(*av))) == NULL)
		return 2;
	for (i = 0; i < argc; i++) {
		if (i > 0 && argv[i][0] != '-' && argv[i - 1][0] != '-')
			files++;
		av[n++] = argv[i];
	}
	if (files == 0) {
		av[n++] = (char *)"-c";
		av[n++] = cfg->path;
	}
	rc = cmd_audit(n, av, cfg->path);
	free(av);
	return rc;
}

/*
 * `audit verify` for an operator: it reads as the service user, so only
 * the trail's directory (audit.path's) and keys beside audit.key.
 */
static int
ctl_audit(const struct config *cfg, const char *op, int argc, char **argv)
{
	int i, key;

	for (i = 2; i < argc; i++) {
		key = strcmp(argv[i - 1], "--key") == 0;
		if (strcmp(argv[i], "--key") == 0 ||
		    strcmp(argv[i], "--signer") == 0 ||
		    strcmp(argv[i], "--keyring") == 0 ||
		    strcmp(argv[i - 1], "--signer") == 0 ||
		    (strcmp(argv[i - 1], "--keyring") == 0 &&
		    (beneath_dir_of(argv[i], cfg->audit_keyring) ||
		    beneath_dir_of(argv[i], cfg->audit_path))) ||
		    beneath_dir_of(argv[i],
		    key ? cfg->audit_key_path : cfg->audit_path))
			continue;
		fprintf(stderr, "sluice: %s: through the gateway, audit verify "
		    "reads only %s beneath the directory of %s (or run it with "
		    "--local as a user who may read the file)\n", argv[i],
		    key ? "keys" : "trails", key ? cfg->audit_key_path :
		    cfg->audit_path);
		return 2;
	}
	return audit_verify_as_gateway(cfg, argc - 1, argv + 1);
}

static int
ctl_trace(const struct config *cfg, const char *op, int argc, char **argv)
{
	return audit_trace_cmd(argc - 1, argv + 1, cfg->path);
}

static int
ctl_export(const struct config *cfg, const char *op, int argc, char **argv)
{
	return audit_export_cmd(argc - 1, argv + 1, cfg->path);
}

/* audit.key_rotated names the operator who asked, not the control role. */
static int
ctl_rotate(const struct config *cfg, const char *op, int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: sluice audit rotate-key [-c FILE]\n");
		return 2;
	}
	return cmd_rotate_key(cfg->path, op);
}

/*
 * Every admin command, the least operator role that may run it through the
 * control socket (owner > operator > auditor; README "Operators and
 * roles"), and its function. A new command is one line here.
 */
static const struct control_cmd control_cmds[] = {
	{ "queue",	"list",		OPROLE_AUDITOR,		ctl_queue },
	{ "queue",	"retry",	OPROLE_OPERATOR,	ctl_queue },
	{ "queue",	"hold",		OPROLE_OPERATOR,	ctl_queue },
	{ "reconcile",	NULL,		OPROLE_OPERATOR,	ctl_reconcile },
	{ "audit",	"verify",	OPROLE_AUDITOR,		ctl_audit },
	{ "audit",	"trace",	OPROLE_AUDITOR,		ctl_trace },
	{ "audit",	"export",	OPROLE_AUDITOR,		ctl_export },
	{ "audit",	"rotate-key",	OPROLE_OWNER,		ctl_rotate },
};
#define NCONTROL_CMDS	(sizeof(control_cmds) / sizeof(control_cmds[0]))

static int
run_control(const struct config *cfg)
{
	return control_run(cfg, sup.controlfd, control_cmds, NCONTROL_CMDS);
}

struct proc {
	const char	*name;		/* the role; `sluice NAME` runs it alone */
	const char	*title;		/* process name */
	enum proc_user	 user;
	int		 flags;		/* PROC_KEEP_AWS, PROC_BACKGROUND */
	int		(*run)(const struct config *);
	const char	*holds;		/* what it may touch (documentation) */
	const char	*talks;		/* its messages (documentation) */
	/* the supervisor's bookkeeping */
	pid_t		 pid;
	int		 restarts;
	int64_t		 started;
	int64_t		 restart_at;
};

/*
 * The roles, in start order (stopped in reverse: the audit writer last, so
 * every other role's final records are written). The session, one process
 * per connection, is not restarted and has no row: it runs as the session
 * user, exec'd as sluice-session (session_main), holding the host keys and,
 * after login, one partner's landing directory; it talks to the listener
 * (guard.h, monitor.h) and the audit writer.
 */
static struct proc procs[] = {
	{ "audit", "sluice-audit", PROC_SERVICE, 0, run_audit,
	  "the audit trail (its only writer)",
	  "records from every role over run/audit.sock (audit.h)", 0, 0, 0, 0 },
	{ "server", "sluice-listener", PROC_SERVICE, 0, run_listener,
	  "the bound SSH socket, password hashes, bans.json, sluice.db",
	  "sessions: guard.h + monitor.h; supervisor: spawn (proc.h)", 0, 0, 0, 0 },
	{ "intake", "sluice-intake", PROC_SERVICE, PROC_BACKGROUND, intake_run,
	  "state_dir, partner public keys, the decryption key (gpg)",
	  "audit writer", 0, 0, 0, 0 },
	{ "uploader", "sluice-uploader", PROC_SERVICE,
	  PROC_BACKGROUND | PROC_KEEP_AWS, uploader_run,
	  "state_dir, the S3 credentials",
	  "audit writer", 0, 0, 0, 0 },
	/* PROC_KEEP_AWS: `reconcile` run for an operator HEADs the store with
	 * the gateway's credentials. Nothing from partners. */
	{ "control", "sluice-control", PROC_SERVICE, PROC_KEEP_AWS, run_control,
	  "control.socket; state_dir and the S3 credentials for the admin "
	  "commands it runs for operators (control_cmds[])",
	  "operators over control.socket (control.h); audit writer",
	  0, 0, 0, 0 },
	/* only with metrics.listen; no secrets: no AWS_*, no keys, no
	 * sockets but its own HTTP port (metrics/metrics.h) */
	{ "metrics", "sluice-metrics", PROC_SERVICE, PROC_BACKGROUND,
	  metrics_run,
	  "its HTTP port; reads sluice.db (read-only), the live audit trail, "
	  "run/uploader.metrics, run/roles.status",
	  "none (HTTP: GET /metrics, /healthz, /readyz)", 0, 0, 0, 0 },
	/* only with notify: targets; the webhook secrets, no AWS_* */
	{ "notify", "sluice-notify", PROC_SERVICE, PROC_BACKGROUND,
	  events_run,
	  "sluice.db (the notify outbox), the webhook secrets",
	  "audit writer; out: its commands and webhooks (notify/events.h)",
	  0, 0, 0, 0 },
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
"  metrics -c FILE        run only the metrics role (needs metrics.listen)\n"
"  notify -c FILE         run only the notify role (sends notify: events)\n"
"  check-config -c FILE   validate FILE; prints FILE:LINE: message per error\n"
"  prepare -c FILE        make state_dir's folders, database and host keys and\n"
"                         set their owners and modes, then exit (as root; the\n"
"                         unit's ExecStartPre=+ and ExecReload=+: serve run\n"
"                         without the file capabilities only checks them)\n"
"  host-keys -c FILE      the host keys' SHA256 fingerprints, as ssh-keygen -lf\n"
"                         prints them (what partners pin; run as root)\n"
"  audit verify [--key FILE]... [--keyring PUB] [--signer FPR] FILE|DIR...\n"
"                         (or: audit verify -c FILE)\n"
"                         check the audit trail's segments, seals and hash\n"
"                         chain, and with the audit keys its MACs\n"
"  audit verify --store -c FILE  the sealed segments against their copies\n"
"                         in the store (needs the store's credentials)\n"
"  audit rotate-key -c FILE  seal the trail and start a new audit key\n"
"  audit trace -c FILE [--json] FID|SHA256|PARTNER:PATH\n"
"                         the story of a file, login to local copy's removal;\n"
"                         exit 1 naming what is missing, 3 if not found\n"
"  audit export -c FILE --from TIME --to TIME [--partner NAME]\n"
"               [--format jsonl|csv]  the records of a period, then a\n"
"                         verification summary on stderr (exit 1: not intact)\n"
"  queue list [--all] -c FILE   files waiting, uploading or held (id, state,\n"
"                         age, attempts, last error)\n"
"  queue retry -c FILE ID|--all  release held file(s) to the uploader\n"
"  queue hold -c FILE ID  hold a waiting file until released\n"
"  reconcile -c FILE      prove every stored file against the store (HEAD +\n"
"                         checksum); exit 1 listing any that cannot be proven\n"
"  (queue, reconcile and audit run inside the running gateway, through\n"
"  control.socket, with the caller's operator role; add --local to run\n"
"  them in this process, as when no gateway runs; exit 77: refused)\n"
"\n"
"Options:\n"
"  -c, --config FILE      configuration (default " DEFAULT_CONFIG ")\n"
"  -v, --verbose          debug logging\n"
"  -h, --help             this help\n"
"  -V, --version          print the version\n"
"\n"
"S3 credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and\n"
"AWS_SESSION_TOKEN, else profile AWS_PROFILE of ~/.aws/credentials and\n"
"~/.aws/config (role_arn + source_profile, keys, credential_process), web\n"
"identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN), the container endpoint\n"
"(AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI), else EC2 instance\n"
"metadata (IMDSv2); only the uploader and reconcile read them. SIGHUP reloads the\n"
"configuration; SIGTERM stops accepting, lets uploads under way finish\n"
"(server.shutdown_grace), then stops.\n"
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
	printf("  control socket %s; operators: %zu entr%s (root and the "
	    "service user are always owners)\n", cfg->control_socket,
	    cfg->noperators, cfg->noperators == 1 ? "y" : "ies");
	for (i = 0; i < cfg->noperators; i++)
		printf("    %s %s: %s\n", cfg->operators[i].user != NULL ?
		    "user" : "group", cfg->operators[i].user != NULL ?
		    cfg->operators[i].user : cfg->operators[i].group,
		    op_role_name(cfg->operators[i].role));
	/* the users the roles would run as (a missing one is named with
	 * its fix by proc_users_resolve) */
	if (proc_users_resolve(cfg, &sup.users) == -1) {
		config_free(cfg);
		return 1;
	}
	if (sup.users.separated)
		printf("  roles run as %s (uid %ld), sessions as %s (uid %ld)\n",
		    sup.users.service.name, (long)sup.users.service.uid,
		    sup.users.session.name, (long)sup.users.session.uid);
	config_free(cfg);
	return 0;
}

#define AUDIT_MAX_KEYS	64

/* Loads the key at path into keys[]; 0, 1 (no such file) or -1 (said). */
static int
audit_key_add(struct audit_key **keys, size_t *n, const char *path)
{
	if (*n == AUDIT_MAX_KEYS) {
		fprintf(stderr, "sluice: more than %d audit keys\n",
		    AUDIT_MAX_KEYS);
		return -1;
	}
	if ((keys[*n] = audit_key_load(path, 0)) == NULL)
		return errno == ENOENT ? 1 : -1;
	(*n)++;
	return 0;
}

/* audit.key and every <dirname(audit.key)>/audit.keys/ *.key; 0 or -1. */
static int
audit_config_keys(const struct config *cfg, struct audit_key **keys,
    size_t *n)
{
	char dir[PATH_MAX], p[PATH_MAX], *slash;
	struct dirent *d;
	size_t len;
	DIR *dp;
	int rc = 0;

	if (cfg->audit_key_path == NULL)
		return 0;
	if (audit_key_add(keys, n, cfg->audit_key_path) == -1) {
		fprintf(stderr, "sluice: cannot read the audit key %s (run as "
		    "root, or give the keys with --key)\n", cfg->audit_key_path);
		return -1;
	}
	(void)xstrlcpy(dir, cfg->audit_key_path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) != NULL)
		slash[slash == dir ? 1 : 0] = '\0';
	if (xstrlcat(dir, "/audit.keys", sizeof(dir)) >= sizeof(dir) ||
	    (dp = opendir(dir)) == NULL)
		return 0;
	while (rc == 0 && (d = readdir(dp)) != NULL) {
		len = strlen(d->d_name);
		if (len < 5 || strcmp(d->d_name + len - 4, ".key") != 0 ||
		    xsnprintf(p, sizeof(p), "%s/%s", dir, d->d_name) < 0)
			continue;
		if (audit_key_add(keys, n, p) == -1) {
			fprintf(stderr, "sluice: cannot read the old audit key "
			    "%s\n", p);
			rc = -1;
		}
	}
	closedir(dp);
	return rc;
}

static int
cmd_rotate_key(const char *cfgpath, const char *operator_name)
{
	struct config *cfg;
	struct audit_key *k;
	struct passwd *pw = getpwuid(getuid());
	char sock[PATH_MAX];
	int rc = 1, r;

	if ((cfg = load(cfgpath)) == NULL)
		return 1;
	if (spool_dir_path(cfg->state_dir, SPOOL_AUDIT_SOCK, NULL, sock,
	    sizeof(sock)) == -1)
		goto done;
	if ((r = audit_rotate_key(sock, operator_name != NULL ?
	    operator_name : pw != NULL ? pw->pw_name : NULL)) == -1)
		fprintf(stderr, "sluice: no audit writer answers at %s (%s): "
		    "start the gateway and run this again (the key is never "
		    "rotated offline)\n", sock, strerror(errno));
	else if (r != 0)
		fprintf(stderr, "sluice: the audit writer did not rotate the "
		    "key; see its log\n");
	else {
		k = audit_key_load(cfg->audit_key_path, 0);
		printf("rotated the audit key%s%s; the old key is kept in "
		    "audit.keys/ beside %s\n", k ? ": new key id " : "",
		    k ? audit_key_id(k) : "", cfg->audit_key_path);
		audit_key_free(k);
		rc = 0;
	}
done:
	config_free(cfg);
	return rc;
}

/*
 * The signature checks of `audit verify` (audit.h: audit_sigcheck): the
 * pinned signer (--signer, else audit.sign_with with -c) and the GnuPG home
 * (a temporary one holding --keyring, else with -c the gateway's own
 * gnupg/_audit when it is the caller's, else gpg's default). 0 or -1.
 */
static int
verify_sig_setup(const struct config *cfg, const char *signer,
    const char *keyring, struct audit_sigcheck *sc, char *home, size_t len)
{
	static char fpr[41];
	struct stat st;
	size_t i, o = 0;

	memset(sc, 0, sizeof(*sc));
	home[0] = '\0';
	if (signer != NULL) {
		for (i = 0; signer[i] != '\0' && o < 40; i++)
			if (signer[i] != ' ')
				fpr[o++] = (char)toupper((unsigned char)signer[i]);
		fpr[o] = '\0';
		if (o != 40 || signer[i] != '\0' ||
		    strspn(fpr, "0123456789ABCDEF") != 40) {
			fprintf(stderr, "sluice: --signer %s: not a fingerprint "
			    "(40 hex digits: gpg --fingerprint)\n", signer);
			return -1;
		}
		sc->signer = fpr;
		sc->required = 1;
	} else if (cfg != NULL)
		sc->signer = cfg->audit_sign_with;
	if (keyring != NULL) {
		if (audit_sigcheck_home(keyring, home, len, stderr) == -1)
			return -1;
		sc->home = home;
		sc->required = 1;
	} else if (cfg != NULL && cfg->audit_sign_with != NULL &&
	    spool_dir_path(cfg->state_dir, SPOOL_AUDIT_SIGNING, NULL, home,
	    len) == 0 && stat(home, &st) == 0 && st.st_uid == geteuid()) {
		sc->home = home;	/* the gateway's: never removed */
	}
	return 0;
}

static int
cmd_audit(int argc, char **argv, const char *cfgpath)
{
	static const char use[] = "usage: sluice audit verify [--key FILE]... "
	    "[--signer FPR] [--keyring FILE] FILE|DIR...\n"
	    "       sluice audit verify [--key FILE]... [--signer FPR] "
	    "[--keyring FILE] [-c FILE]\n"
	    "       sluice audit verify --store [-c FILE]\n"
	    "       sluice audit rotate-key -c FILE\n";
	struct audit_key *keys[AUDIT_MAX_KEYS];
	struct audit_sigcheck sc;
	struct config *cfg = NULL;
	const char *paths[AUDIT_MAX_KEYS + 2], *conf = NULL;
	const char *signer = NULL, *keyring = NULL;
	char home[PATH_MAX] = "";
	size_t nkeys = 0, npaths = 0, j;
	int i, rc = 2, store = 0;

	if (argc < 1 || (strcmp(argv[0], "verify") != 0 &&
	    strcmp(argv[0], "rotate-key") != 0)) {
		fprintf(stderr, "%s", use);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 ||
		    strcmp(argv[i], "--config") == 0) && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "--store") == 0)
			store = 1;
		else if (strcmp(argv[i], "--signer") == 0 && i + 1 < argc)
			signer = argv[++i];
		else if (strcmp(argv[i], "--keyring") == 0 && i + 1 < argc)
			keyring = argv[++i];
		else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
			if (audit_key_add(keys, &nkeys, argv[++i]) != 0) {
				if (errno == ENOENT)
					fprintf(stderr, "sluice: %s: no such audit "
					    "key\n", argv[i]);
				goto done;
			}
		} else if (argv[i][0] == '-' || npaths == AUDIT_MAX_KEYS)
			goto usage;
		else
			paths[npaths++] = argv[i];
	}
	if (strcmp(argv[0], "rotate-key") == 0) {
		if (npaths > 0 || nkeys > 0 || store || signer || keyring)
			goto usage;
		rc = cmd_rotate_key(conf ? conf : cfgpath, NULL);
		goto done;
	}
	if (store) {	/* the shipped copies (uploader/auditship.c) */
		if (npaths > 0 || nkeys > 0 || signer || keyring)
			goto usage;
		if ((cfg = load(conf ? conf : cfgpath)) != NULL)
			rc = auditship_verify(cfg, stdout);
		goto done;
	}
	if (conf != NULL && npaths > 0)
		goto usage;
	if (npaths == 0)	/* the configured trail */
		conf = conf != NULL ? conf : cfgpath;
	if (conf != NULL) {
		if ((cfg = load(conf)) == NULL ||
		    audit_config_keys(cfg, keys, &nkeys) == -1)
			goto done;
		paths[npaths++] = cfg->audit_segments_dir;
		paths[npaths++] = cfg->audit_path;
	}
	if (verify_sig_setup(cfg, signer, keyring, &sc, home,
	    sizeof(home)) == -1)
		goto done;
	rc = audit_verify_trail_sig(paths, npaths, keys, nkeys,
	    conf ? AUDIT_VERIFY_SKIP_MISSING | AUDIT_VERIFY_WHOLE : 0, &sc,
	    stdout);
	if (keyring != NULL)
		audit_sigcheck_home_remove(home);
	goto done;
usage:
	fprintf(stderr, "%s", use);
	rc = 2;
done:
	for (j = 0; j < nkeys; j++)
		audit_key_free(keys[j]);
	config_free(cfg);
	return rc;
}

static int own_spool(const struct config *cfg);

/*
 * Without the file capabilities, file work below state_dir is done with
 * the service user's file system ids (its folders are the service
 * user's); id NULL: back to root's. Nothing to do with them (root started
 * by hand, or no separation).
 */
static int
sup_fs(const struct proc_id *id)
{
	if (!sup.restricted)
		return 0;
	if (proc_fs_as(id) == -1) {
		(void)proc_fs_as(NULL);
		return -1;
	}
	return 0;
}

/* One thing prepared_check found missing: 0 if ok, else logged, -1. */
static int
prepared_path(const char *path, mode_t type, uid_t uid)
{
	struct stat sb;

	if (lstat(path, &sb) == 0 && (sb.st_mode & S_IFMT) == type &&
	    sb.st_uid == uid)
		return 0;
	log_warnx("%s: missing, or not the %s user's", path,
	    uid == sup.users.session.uid ? "session" : "service");
	return -1;
}

/*
 * The supervisor without the file capabilities (the unit's bounding set)
 * makes nothing below state_dir and sets no owner or mode: `sluice
 * prepare`, run as root before it (the unit's ExecStartPre=+, and
 * ExecReload=+ for the partners a reload adds), did. This checks, with
 * the service user's file system ids, that it did: the state database and
 * every partner's landing (and receipts) folder.
 */
static int
prepared_check(const struct config *cfg)
{
	char p[PATH_MAX];
	size_t i;
	int rc = 0;

	if (sup_fs(&sup.users.service) == -1)
		return -1;
	if (spool_dir_path(cfg->state_dir, SPOOL_DB, NULL, p, sizeof(p)) ==
	    -1 || prepared_path(p, S_IFREG, sup.users.service.uid) == -1)
		rc = -1;
	for (i = 0; i < cfg->npartners; i++) {
		if (spool_dir_path(cfg->state_dir, SPOOL_LANDING,
		    cfg->partners[i].name, p, sizeof(p)) == -1 ||
		    prepared_path(p, S_IFDIR, sup.users.session.uid) == -1)
			rc = -1;
		if (cfg->partners[i].receipts && (spool_receipts_path(cfg,
		    &cfg->partners[i], p, sizeof(p)) == -1 ||
		    prepared_path(p, S_IFDIR, sup.users.service.uid) == -1))
			rc = -1;
	}
	if (sup_fs(NULL) == -1)
		return -1;
	if (rc == -1)
		log_warnx("state_dir %s is not prepared: without CAP_CHOWN, "
		    "CAP_FOWNER, CAP_FSETID and CAP_DAC_OVERRIDE the supervisor "
		    "makes no folder there; run 'sluice prepare -c %s' as root "
		    "first (the unit's ExecStartPre=+ does at start, its "
		    "ExecReload=+ before a reload: use systemctl reload)",
		    cfg->state_dir, cfg->path);
	return rc;
}

/*
 * Everything the roles need on disk, made once as root before any role
 * starts: the state database, the host keys, every partner's landing
 * directory, and the owners and modes of spool/layout.h. Without the file
 * capabilities only checked (prepared_check), unless make (`sluice
 * prepare`): then it is an error.
 */
static int
prepare(const struct config *cfg, int make)
{
	struct state *st;

	if (proc_users_resolve(cfg, &sup.users) == -1)
		return -1;
	sup.restricted = sup.users.separated && !proc_fs_caps();
	if (sup.restricted && make) {
		log_warnx("sluice prepare sets owners and modes below "
		    "state_dir: run it as root with every capability (the "
		    "unit runs it with ExecStartPre=+)");
		return -1;
	}
	if (sup.restricted)
		return prepared_check(cfg);
	if (spool_init(cfg->state_dir) == -1)
		return -1;
	if ((st = state_open(cfg->state_dir)) == NULL)
		return -1;
	state_close(st);
	if (hostkeys_ensure(cfg) == -1 || own_spool(cfg) == -1)
		return -1;
	if (sup.users.separated)
		log_info("roles run as %s (uid %ld), sessions as %s (uid %ld)",
		    sup.users.service.name, (long)sup.users.service.uid,
		    sup.users.session.name, (long)sup.users.session.uid);
	return 0;
}

/* The owners and modes of state_dir and every partner's landing directory
 * (at start, and for the partners a reload adds). */
static int
own_spool(const struct config *cfg)
{
	struct spool_owners o;

	o.svc_uid = sup.users.service.uid;
	o.svc_gid = sup.users.service.gid;
	o.ses_uid = sup.users.session.uid;
	o.ses_gid = sup.users.session.gid;
	return spool_own(cfg, sup.users.separated ? &o : NULL);
}

/* The SSH port, bound as root (a port below 1024 needs it). */
static int
bind_port(const struct config *cfg)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[16];
	int fd = -1, one = 1, e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	xsnprintf(port, sizeof(port), "%d", cfg->listen_port);
	if ((e = getaddrinfo(cfg->listen_host, port, &hints, &res)) != 0) {
		log_warnx("listen %s:%d: %s", cfg->listen_host,
		    cfg->listen_port, gai_strerror(e));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd == -1)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 128) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
		errno = e;
	}
	if (fd == -1) {
		e = errno;
		log_warn("cannot listen on %s:%d", cfg->listen_host,
		    cfg->listen_port);
		if (e == EACCES && cfg->listen_port < 1024)
			log_warnx("port %d needs CAP_NET_BIND_SERVICE, which "
			    "the unit does not give: under systemd, "
			    "sluice.socket binds it (systemctl enable --now "
			    "sluice.socket)", cfg->listen_port);
	}
	freeaddrinfo(res);
	return fd;
}

/* 1 if sa is the any-address (0.0.0.0 or ::) of its family. */
static int
is_wildcard(const struct sockaddr *sa)
{
	static const struct in6_addr any6 = IN6ADDR_ANY_INIT;

	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)sa)->
		    sin_addr.s_addr == htonl(INADDR_ANY);
	if (sa->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_addr, &any6, sizeof(any6)) == 0;
	return 0;
}

/* 1 if the socket bound at got is where `listen` (want) says: the same
 * port, and the same address or both an any-address. */
static int
same_place(const struct sockaddr *got, const struct sockaddr *want)
{
	char ga[NI_MAXHOST], gp[NI_MAXSERV], wa[NI_MAXHOST], wp[NI_MAXSERV];
	socklen_t gl, wl;

	gl = got->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	wl = want->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	if (getnameinfo(got, gl, ga, sizeof(ga), gp, sizeof(gp),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0 ||
	    getnameinfo(want, wl, wa, sizeof(wa), wp, sizeof(wp),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0 || strcmp(gp, wp) != 0)
		return 0;
	return strcmp(ga, wa) == 0 || (is_wildcard(got) && is_wildcard(want));
}

/*
 * The SSH port systemd bound for us (sluice.socket: the unit then needs
 * no CAP_NET_BIND_SERVICE, and partners who connect while the gateway
 * restarts wait in its backlog instead of being refused). It must be
 * where `listen` says, or two files would disagree about the address
 * partners allowlist: refused, naming both. -1 (logged) if it is not.
 */
static int
passed_port(const struct config *cfg, int n)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char port[16], host[NI_MAXHOST], serv[NI_MAXSERV];
	int fd = SD_LISTEN_FDS_START;

	if (n != 1 || sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		log_warnx("systemd passed %d file descriptor(s), not one "
		    "listening stream socket: sluice.socket must have exactly "
		    "one ListenStream=", n);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	xsnprintf(port, sizeof(port), "%d", cfg->listen_port);
	if (getaddrinfo(cfg->listen_host, port, &hints, &res) != 0)
		res = NULL;
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if (same_place((struct sockaddr *)&ss, ai->ai_addr))
			break;
	freeaddrinfo(res);
	if (ai != NULL) {
		log_info("listening on %s:%d (the socket systemd passed)",
		    cfg->listen_host, cfg->listen_port);
		return fd;
	}
	if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host),
	    serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		xstrlcpy(host, "?", sizeof(host));
	log_warnx("sluice.socket listens on %s%s%s:%s, but listen in %s is "
	    "%s:%d: make them the same (systemctl edit sluice.socket: "
	    "ListenStream=, or listen: in the configuration)",
	    strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
	    serv, cfg->path, cfg->listen_host, cfg->listen_port);
	return -1;
}

/* The SSH port: passed by systemd (passed_port), else bound here. */
static int
listen_socket(const struct config *cfg)
{
	int n;

	if ((n = sd_listen_fds(1)) < 0) {
		log_warnx("LISTEN_FDS: %s", strerror(-n));
		return -1;
	}
	return n > 0 ? passed_port(cfg, n) : bind_port(cfg);
}

/* The host keys' text (they are read as root, once). */
static int
read_hostkeys(const struct config *cfg, char ***keys)
{
	struct stat st;
	size_t i;
	ssize_t n;
	int fd, e;

	if ((*keys = calloc(cfg->nhost_keys + 1, sizeof(char *))) == NULL)
		return -1;
	for (i = 0; i < cfg->nhost_keys; i++) {
		fd = open(cfg->host_keys[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		/* without CAP_DAC_OVERRIDE: a key in state_dir is the
		 * service user's */
		if (fd == -1 && errno == EACCES && sup.restricted &&
		    sup_fs(&sup.users.service) == 0) {
			fd = open(cfg->host_keys[i], O_RDONLY | O_NOFOLLOW |
			    O_CLOEXEC);
			e = errno;
			if (sup_fs(NULL) == -1 && fd != -1) {
				close(fd);
				fd = -1;
			}
			errno = e;
		}
		if (fd == -1 || fstat(fd, &st) == -1 || st.st_size <= 0 ||
		    st.st_size > 64 * 1024 ||
		    ((*keys)[i] = calloc(1, (size_t)st.st_size + 1)) == NULL ||
		    (n = read(fd, (*keys)[i], (size_t)st.st_size)) !=
		    st.st_size) {
			log_warn("cannot read host key %s", cfg->host_keys[i]);
			if (fd != -1)
				close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

static void
free_hostkeys(char **keys, size_t n)
{
	size_t i;

	for (i = 0; keys != NULL && i < n; i++)
		if (keys[i] != NULL) {
			explicit_bzero(keys[i], strlen(keys[i]));
			free(keys[i]);
		}
	free(keys);
}

/* The sessions' configuration in a sealed memfd (policy/sessioncfg.h). */
static int
session_config(const struct config *cfg, const char *sock)
{
	char **keys = NULL, *text = NULL;
	size_t len;
	int fd = -1, rc = -1;

	if (read_hostkeys(cfg, &keys) == -1)
		goto done;
	if ((text = sessioncfg_export(cfg, keys, cfg->nhost_keys, sock)) ==
	    NULL) {
		log_warnx("out of memory");
		goto done;
	}
	len = strlen(text);
	if ((fd = memfd_create("sluice-session-config", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) == -1 ||
	    write(fd, text, len) != (ssize_t)len ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_WRITE | F_SEAL_SEAL) == -1) {
		log_warn("cannot make the sessions' configuration");
		goto done;
	}
	sup.sessioncfg = fd;
	fd = -1;
	rc = 0;
done:
	if (fd != -1)
		close(fd);
	if (text != NULL) {
		explicit_bzero(text, strlen(text));
		free(text);
	}
	free_hostkeys(keys, cfg->nhost_keys);
	return rc;
}

/*
 * The session program, opened once (O_PATH) like the configuration, so a
 * file replaced on disk later (an upgrade) does not change running
 * sessions: sluice-session beside this binary (the build tree), else in
 * its libexec directory (the package: /usr/bin/sluice,
 * /usr/libexec/sluice/sluice-session). Its fd, or -1 (logged).
 */
static int
session_exe_open(void)
{
	char self[PATH_MAX], paths[2][PATH_MAX], *slash;
	struct stat sb;
	ssize_t n;
	int i, fd;

	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0) {
		log_warn("/proc/self/exe");
		return -1;
	}
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) != NULL)
		*slash = '\0';
	if (xsnprintf(paths[0], sizeof(paths[0]), "%s/sluice-session",
	    self) == -1 || xsnprintf(paths[1], sizeof(paths[1]),
	    "%s/%s/sluice-session", self, SLUICE_SESSION_DIR) == -1) {
		log_warnx("%s: path too long", self);
		return -1;
	}
	for (i = 0; i < 2; i++) {
		if ((fd = open(paths[i], O_PATH | O_CLOEXEC)) == -1)
			continue;
		if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    (sb.st_mode & 0111) != 0)
			return fd;
		close(fd);
	}
	log_warnx("no session program: neither %s nor %s is an executable "
	    "file; reinstall the sluice package, or in a build tree run "
	    "cmake --build (it makes sluice-session beside sluice)",
	    paths[0], paths[1]);
	return -1;
}

/* What `serve` and `server` set up as root before the first role
 * (`server` runs no control role). */
static int
serve_setup(const struct config *cfg, int only_server)
{
	struct proc_id as;		/* the audit socket's owner and group */
	char sock[PATH_MAX];
	uid_t owner = geteuid();
	gid_t group = getegid();

	if (spool_dir_path(cfg->state_dir, SPOOL_AUDIT_SOCK, NULL, sock,
	    sizeof(sock)) == -1) {
		log_warnx("state_dir is too long for %s",
		    spool_dir_name(SPOOL_AUDIT_SOCK));
		return -1;
	}
	if (sup.users.separated) {
		owner = sup.users.service.uid;
		group = sup.users.session.gid;
	}
	/* made as the service user without the file capabilities: owners
	 * are then already right (run/ and /run/sluice are its own) */
	as = sup.users.service;
	as.gid = group;
	if (sup_fs(&as) == -1)
		return -1;
	sup.auditfd = audit_listen(sock, owner, group, 0660);
	if (sup.auditfd != -1 && !only_server &&
	    sup_fs(&sup.users.service) == 0)
		sup.controlfd = control_listen(cfg->control_socket, owner,
		    sup.users.separated ? sup.users.service.gid : group);
	if (sup_fs(NULL) == -1 || sup.auditfd == -1 ||
	    (!only_server && sup.controlfd == -1) ||
	    (sup.listenfd = listen_socket(cfg)) == -1 ||
	    session_config(cfg, sock) == -1)
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    sup.spawnfd) == -1 || fd_nonblock(sup.spawnfd[0]) == -1) {
		log_warn("socketpair");
		return -1;
	}
	if ((sup.exefd = session_exe_open()) == -1)
		return -1;
	return 0;
}

/* Removes control.socket when this supervisor made it: operators' commands
 * then run locally (or say no gateway runs) instead of failing to connect. */
static void
control_unlisten(const struct config *cfg)
{
	if (sup.controlfd == -1)
		return;
	if (sup_fs(&sup.users.service) == 0)
		(void)unlink(cfg->control_socket);
	(void)sup_fs(NULL);
	close(sup.controlfd);
	sup.controlfd = -1;
}

static volatile sig_atomic_t sup_quit;	/* SIGTERM/SIGINT: 1, a second: 2 */
static volatile sig_atomic_t sup_quit_sig;	/* the signal that stopped us */
static volatile sig_atomic_t sup_hup;		/* SIGHUP: reload */
static struct {
	int	 ran, finished, cut;	/* the drain, for process.stop */
} sup_drained;

static void
sup_signal(int sig)
{
	if (sig == SIGHUP) {
		sup_hup = 1;
		return;
	}
	if (sig != SIGCHLD) {
		if (!sup_quit)
			sup_quit_sig = sig;
		if (sup_quit < 2)
			sup_quit++;
	}
	/* SIGCHLD: only wakes poll(2), so an ended session is reported to
	 * the listener at once (its address may connect again) */
}

/* In a forked role: close what the supervisor holds that r must not. */
static void
role_fds(const struct proc *r)
{
	int keep_audit = r->run == run_audit;
	int keep_listen = r->run == run_listener;

	if (!keep_audit && sup.auditfd != -1)
		close(sup.auditfd);
	if (r->run != run_control && sup.controlfd != -1)
		close(sup.controlfd);
	if (!keep_listen && sup.listenfd != -1)
		close(sup.listenfd);
	if (!keep_listen && sup.spawnfd[1] != -1)
		close(sup.spawnfd[1]);
	if (sup.spawnfd[0] != -1)
		close(sup.spawnfd[0]);
	if (sup.sessioncfg != -1)
		close(sup.sessioncfg);
	if (sup.exefd != -1)
		close(sup.exefd);
}

/* Blocks SIGTERM and SIGINT around a fork (old: the mask to restore), so
 * a child never runs the supervisor's handler: it installs its own, then
 * unblocks, and a signal sent meanwhile is delivered to it then. */
static void
block_stop_signals(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, old);
}

static pid_t
role_start(struct proc *r, const struct config *cfg)
{
	sigset_t old;
	pid_t pid;

	block_stop_signals(&old);
	if ((pid = fork()) == -1) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		log_warn("fork %s", r->name);
		return -1;
	}
	if (pid == 0) {
		role_fds(r);
		if (proc_start(r->name, r->title, proc_id_of(&sup.users,
		    r->user), r->flags) == -1)
			_exit(1);
		/* a role dies with the supervisor rather than running on
		 * alone (after the user switch, which clears it) */
		prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
		if (getppid() == 1)
			_exit(1);
		sigprocmask(SIG_SETMASK, &old, NULL);
		_exit(r->run(cfg));
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	r->pid = pid;
	r->started = mono_ms();
	return pid;
}

/* --- the session processes ------------------------------------------------- */

static pid_t	*sessions;		/* running session pids (0: free) */
static size_t	 nsessions;
static pid_t	 sup_restarting;	/* a role restarted by a reload */

/*
 * In the forked child: the client socket, the listener's socketpair and
 * the configuration become fds 3, 4 and 5; every other fd is closed at
 * exec; the user is the session user (no_new_privs); the environment is
 * empty but for the test hooks. Never returns.
 */
static void
session_exec(int client, int gfd)
{
	extern char **environ;
	char *envp[16], *argv[4];
	int c, g, m, e, n = 0, null;
	size_t i;

	sigset_t none;

	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if ((c = fcntl(client, F_DUPFD_CLOEXEC, 10)) == -1 ||
	    (g = fcntl(gfd, F_DUPFD_CLOEXEC, 10)) == -1 ||
	    (m = fcntl(sup.sessioncfg, F_DUPFD_CLOEXEC, 10)) == -1 ||
	    (e = fcntl(sup.exefd, F_DUPFD_CLOEXEC, 10)) == -1 ||
	    dup2(c, SESSION_FD_CLIENT) == -1 ||
	    dup2(g, SESSION_FD_LISTENER) == -1 ||
	    dup2(m, SESSION_FD_CONFIG) == -1)
		_exit(126);
	if ((null = open("/dev/null", O_RDWR)) != -1) {
		dup2(null, 0);
		if (null > 2)
			close(null);
	}
	if (syscall(SYS_close_range, SESSION_FD_CONFIG + 1, ~0U,
	    CLOSE_RANGE_CLOEXEC) == -1)
		_exit(126);
	if (proc_drop(proc_id_of(&sup.users, PROC_SESSION)) == -1)
		_exit(126);
	for (i = 0; environ[i] != NULL && n < 15; i++)
		if (strncmp(environ[i], "SLUICE_TEST_", 12) == 0 ||
		    strncmp(environ[i], "SLUICE_LOG=", 11) == 0 ||
		    strncmp(environ[i], "ASAN_OPTIONS=", 13) == 0 ||
		    strncmp(environ[i], "UBSAN_OPTIONS=", 14) == 0)
			envp[n++] = environ[i];
	envp[n] = NULL;
	argv[0] = "sluice-session";
	argv[1] = "__session";
	argv[2] = sup.verbose ? "-v" : NULL;
	argv[3] = NULL;
	syscall(SYS_execveat, e, "", argv, envp, AT_EMPTY_PATH);
	_exit(127);
}

/* The listener asks for a session: start it, answer with its pid. */
static void
spawn_request(void)
{
	struct spawn_msg m, reply;
	sigset_t old;
	int client, gfd, r;
	pid_t pid = -1;
	size_t i;

	while ((r = fd_recv(sup.spawnfd[0], &m, sizeof(m), &client, &gfd)) ==
	    1) {
		pid = -1;
		if (m.type == SPAWN_SESSION && client != -1 && gfd != -1 &&
		    !sup_quit) {
			for (i = 0; i < nsessions && sessions[i] != 0; i++)
				;
			block_stop_signals(&old);
			if (i == nsessions)
				log_warnx("too many session processes");
			else if ((pid = fork()) == 0)
				session_exec(client, gfd);
			else if (pid == -1)
				log_warn("fork");
			else
				sessions[i] = pid;
			sigprocmask(SIG_SETMASK, &old, NULL);
		}
		if (client != -1)
			close(client);
		if (gfd != -1)
			close(gfd);
		memset(&reply, 0, sizeof(reply));
		reply.type = SPAWN_DONE;
		reply.pid = pid;
		(void)send(sup.spawnfd[0], &reply, sizeof(reply), MSG_NOSIGNAL);
	}
}

/* A child ended: a session (tell the listener) or a role (restart it). */
static void
reaped(pid_t pid, int status)
{
	struct spawn_msg m;
	struct proc *r;
	size_t i;
	int delay;

	for (i = 0; i < nsessions; i++)
		if (sessions[i] == pid) {
			sessions[i] = 0;
			memset(&m, 0, sizeof(m));
			m.type = SPAWN_EXITED;
			m.pid = pid;
			m.status = status;
			(void)send(sup.spawnfd[0], &m, sizeof(m), MSG_NOSIGNAL |
			    MSG_DONTWAIT);
			return;
		}
	for (i = 0; i < NPROCS; i++) {
		r = &procs[i];
		if (r->pid != pid)
			continue;
		r->pid = 0;
		if (sup_quit || pid == sup_restarting)
			return;
		/* Back off when a role keeps dying right after start. */
		if (mono_ms() - r->started > 60000)
			r->restarts = 0;
		delay = r->restarts < 6 ? 1 << r->restarts : 60;
		r->restarts++;
		if (WIFSIGNALED(status))
			log_warnx("role %s died of signal %d; restarting in %d s",
			    r->name, WTERMSIG(status), delay);
		else
			log_warnx("role %s exited with status %d; restarting in "
			    "%d s", r->name, WEXITSTATUS(status), delay);
		r->restart_at = mono_ms() + delay * 1000;
		notify_status("role %s ended; restarting it in %d s", r->name,
		    delay);
	}
}

/*
 * Sends sig (0: none, only counts) to every running role for which `which`
 * is true and, with_sessions set, to every session. Returns how many there
 * are.
 */
static int
signal_procs(int (*which)(const struct proc *), int with_sessions, int sig)
{
	size_t i;
	int n = 0;

	for (i = 0; i < NPROCS; i++) {
		if (procs[i].pid <= 0 || !which(&procs[i]))
			continue;
		if (sig == SIGKILL)
			log_warnx("role %s did not stop; killing it",
			    procs[i].name);
		if (sig != 0)
			(void)proc_kill(procs[i].pid,
			    proc_id_of(&sup.users, procs[i].user), sig);
		n++;
	}
	for (i = 0; with_sessions && i < nsessions; i++) {
		if (sessions[i] <= 0)
			continue;
		if (sig != 0)
			(void)proc_kill(sessions[i],
			    proc_id_of(&sup.users, PROC_SESSION), sig);
		n++;
	}
	return n;
}

/* SIGTERM to those processes, up to ms for them to end, then SIGKILL. */
static void
stop_procs(int (*which)(const struct proc *), int with_sessions, int ms)
{
	int64_t deadline = mono_ms() + ms;
	int status;
	pid_t pid;

	signal_procs(which, with_sessions, SIGTERM);
	for (;;) {
		notify_watchdog(mono_ms());
		spawn_request();	/* refused now: the listener stops waiting */
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			reaped(pid, status);
		if (signal_procs(which, with_sessions, 0) == 0)
			return;
		if (mono_ms() > deadline)
			break;
		usleep(20000);
	}
	signal_procs(which, with_sessions, SIGKILL);
	while (signal_procs(which, with_sessions, 0) > 0 &&
	    (pid = waitpid(-1, &status, 0)) > 0)
		reaped(pid, status);
}

static int
is_audit(const struct proc *r)
{
	return r->run == run_audit;
}

static int
not_audit(const struct proc *r)
{
	return r->run != run_audit;
}

/* The configuration file's absolute path and the hex SHA-256 of its bytes
 * now, for the record event. 0 or -1 (logged). */
static int
config_identity(const struct config *cfg, const char *event,
    char path[PATH_MAX], char hex[SHA256_HEX])
{
	uint8_t md[SHA256_LEN];
	int fd, rc;

	if (realpath(cfg->path, path) == NULL &&
	    xstrlcpy(path, cfg->path, PATH_MAX) >= PATH_MAX)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    (rc = sha256_fd(fd, md)) == -1) {
		log_warn("%s: cannot hash the configuration for the %s audit "
		    "record", path, event);
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	hex_encode(md, SHA256_LEN, hex);
	return rc;
}

/* The audit writer's socket is below state_dir: see sup_fs. */
static struct audit *
sup_audit_open(const struct config *cfg)
{
	struct audit *au;

	if (sup_fs(&sup.users.service) == -1)
		return NULL;
	au = proc_audit_open(cfg);
	if (sup_fs(NULL) == -1) {
		audit_close(au);
		return NULL;
	}
	return au;
}

/*
 * Writes a process.start or process.stop record (reason: NULL for start)
 * through the audit writer, which accepts root. The supervisor carries on
 * if it cannot: the failure is logged.
 */
static void
sup_audit(const struct config *cfg, const char *event, const char *command,
    const char *reason)
{
	struct audit *au = NULL;
	json_t *f = NULL;
	char hex[SHA256_HEX], host[256], path[PATH_MAX];

	if (config_identity(cfg, event, path, hex) == -1)
		goto fail;
	if (gethostname(host, sizeof(host)) == -1)
		xstrlcpy(host, "unknown", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	if ((f = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "version",
	    SLUICE_VERSION, "command", command, "config", path,
	    "config_sha256", hex, "host", host, "pid",
	    (json_int_t)getpid())) == NULL)
		goto fail;
	if (reason != NULL && json_object_set_new(f, "reason",
	    json_string(reason)) == -1)
		goto fail;
	if (reason != NULL && sup_drained.ran && json_object_update_new(f,
	    json_pack("{s:i,s:i,s:I}", "sessions_finished",
	    sup_drained.finished, "sessions_cut", sup_drained.cut,
	    "shutdown_grace_s", (json_int_t)cfg->server.shutdown_grace_s)) ==
	    -1)
		goto fail;
	if ((au = sup_audit_open(cfg)) == NULL)
		goto fail;
	if (audit_emit(au, event, f) == -1) {
		f = NULL;	/* audit_emit took it */
		goto fail;
	}
	audit_close(au);
	return;
fail:
	log_warnx("the %s record was not written to the audit trail (%s); "
	    "carrying on: check the audit writer's log", event, cfg->audit_path);
	json_decref(f);
	audit_close(au);
}

/*
 * config.loaded: the configuration the roles were started with, its
 * partners and a digest of each partner's keys, allowlist, role and rules
 * (policy/confdiff.h), so a later reload or restart can say what changed.
 * Written by the supervisor, which alone holds all of the configuration;
 * many partners make several records (part/parts), synced together.
 */
static void
sup_config_loaded(const struct config *cfg)
{
	struct audit *au = NULL;
	json_t *sum = NULL, *parts = NULL, *f;
	char hex[SHA256_HEX], path[PATH_MAX];
	size_t i;
	int rc = 0;

	if (config_identity(cfg, "config.loaded", path, hex) == -1 ||
	    (sum = confdiff_summary(cfg)) == NULL ||
	    (parts = confdiff_summary_parts(sum, AUDIT_MAX_LINE / 2)) == NULL ||
	    (au = sup_audit_open(cfg)) == NULL) {
		rc = -1;
		goto done;
	}
	audit_defer(au);
	for (i = 0; i < json_array_size(parts); i++) {
		if ((f = json_pack("{s:s,s:s}", "config", path, "config_sha256",
		    hex)) == NULL || json_object_update(f,
		    json_array_get(parts, i)) == -1) {
			json_decref(f);
			rc = -1;
			break;
		}
		if (audit_emit(au, "config.loaded", f) == -1)
			rc = -1;
	}
	if (audit_sync(au) == -1)
		rc = -1;
done:
	if (rc == -1)
		log_warnx("the config.loaded record was not written to the "
		    "audit trail (%s); carrying on: check the audit writer's "
		    "log", cfg->audit_path);
	json_decref(sum);
	json_decref(parts);
	audit_close(au);
}

/* --- reload (SIGHUP) and drain (SIGTERM) ----------------------------------- */

/* One record from the supervisor (f is taken); failures are logged. */
static void
sup_record(const struct config *cfg, const char *event, json_t *f)
{
	struct audit *au;

	if (f == NULL || (au = sup_audit_open(cfg)) == NULL) {
		json_decref(f);
		log_warnx("the %s record was not written to the audit trail "
		    "(%s): check the audit writer's log", event,
		    cfg->audit_path);
		return;
	}
	if (audit_emit(au, event, f) == -1)
		log_warnx("the %s record was not written to the audit trail "
		    "(%s): check the audit writer's log", event,
		    cfg->audit_path);
	audit_close(au);
}

/*
 * A reload refused: every error line logged, config.reload_failed
 * recorded (path, errors, the first), the running configuration kept.
 * errs: newline-separated "FILE:LINE: message" lines.
 */
static void
reload_failed(const struct config *cur, const char *errs)
{
	char first[1024] = "", line[1024];
	const char *p = errs, *nl;
	size_t len;
	int n = 0;

	while (p != NULL && *p != '\0') {
		nl = strchr(p, '\n');
		len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (len >= sizeof(line))
			len = sizeof(line) - 1;
		memcpy(line, p, len);
		line[len] = '\0';
		if (len > 0) {
			log_warnx("reload refused: %s", line);
			if (n++ == 0)
				xstrlcpy(first, line, sizeof(first));
		}
		p = nl != NULL ? nl + 1 : NULL;
	}
	log_warnx("reload of %s refused (%d error(s)); the running "
	    "configuration stays (fix the file and send SIGHUP again, or run "
	    "'sluice check-config -c %s')", cur->path, n, cur->path);
	sup_record(cur, "config.reload_failed", json_pack("{s:s,s:i,s:s}",
	    "config", cur->path, "errors", n, "first_error", first));
}

/* The listener's part of cfg, in a sealed memfd, to the listener. */
static int
listener_reload_send(const struct config *cfg)
{
	struct spawn_msg m;
	char *text;
	size_t len;
	int fd = -1, rc = -1;

	if ((text = sessioncfg_export_listener(cfg)) == NULL)
		return -1;
	len = strlen(text);
	memset(&m, 0, sizeof(m));
	m.type = SPAWN_RELOAD;
	if ((fd = memfd_create("sluice-listener-config", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) != -1 && write(fd, text, len) ==
	    (ssize_t)len && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK |
	    F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == 0 &&
	    fd_send(sup.spawnfd[0], &m, sizeof(m), fd, fd) == 0)
		rc = 0;
	else
		log_warn("reload: cannot give the listener its configuration");
	if (fd != -1)
		close(fd);
	explicit_bzero(text, len);
	free(text);
	return rc;
}

/* Stops role r (SIGTERM, SIGKILL after 15 s), still starting sessions
 * meanwhile; a restart it was waiting for is cancelled. */
static void
role_stop(struct proc *r)
{
	int64_t deadline = mono_ms() + 15000;
	int status;
	pid_t pid;

	if (r->pid > 0) {
		sup_restarting = r->pid;
		(void)proc_kill(r->pid, proc_id_of(&sup.users, r->user),
		    SIGTERM);
		while (r->pid > 0) {
			spawn_request();
			while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
				reaped(pid, status);
			if (r->pid > 0 && mono_ms() > deadline) {
				log_warnx("role %s did not stop; killing it",
				    r->name);
				(void)proc_kill(r->pid,
				    proc_id_of(&sup.users, r->user), SIGKILL);
				deadline = INT64_MAX;
			}
			if (r->pid > 0)
				usleep(20000);
		}
		sup_restarting = 0;
	}
	r->restart_at = 0;
	r->restarts = 0;
}

/* Stops role r (if it runs) and starts it with cfg. */
static void
role_restart(struct proc *r, const struct config *cfg)
{
	role_stop(r);
	if (role_start(r, cfg) != -1)
		log_info("role %s restarted with the new configuration",
		    r->name);
}

/* The new configuration's sessions' memfd; the old one stays on failure. */
static int
session_config_swap(const struct config *cfg)
{
	char sock[PATH_MAX];
	int old = sup.sessioncfg;

	if (spool_dir_path(cfg->state_dir, SPOOL_AUDIT_SOCK, NULL, sock,
	    sizeof(sock)) == -1)
		return -1;
	sup.sessioncfg = -1;
	if (session_config(cfg, sock) == -1) {
		sup.sessioncfg = old;
		return -1;
	}
	close(old);
	return 0;
}

/* config.reloaded: what changed (policy/confdiff.h) and which roles were
 * restarted or stopped (both taken); a diff too large for one record
 * keeps its partner names. */
static void
reloaded_record(const struct config *old, const struct config *new,
    json_t *roles, json_t *stopped)
{
	json_t *f, *diff;
	char hex[SHA256_HEX], path[PATH_MAX], *text;
	size_t len = 0;

	if ((diff = confdiff(old, new)) == NULL ||
	    config_identity(new, "config.reloaded", path, hex) == -1) {
		json_decref(diff);
		json_decref(roles);
		json_decref(stopped);
		sup_record(new, "config.reloaded", NULL);
		return;
	}
	if ((text = json_dumps(diff, JSON_COMPACT)) != NULL)
		len = strlen(text);
	free(text);
	if (len > AUDIT_MAX_LINE / 2) {
		json_object_del(diff, "keys_changed");
		json_object_del(diff, "allowlists_changed");
		json_object_set_new(diff, "truncated", json_true());
	}
	f = json_pack("{s:s,s:s,s:o}", "config", path, "config_sha256", hex,
	    "roles_restarted", roles);
	if (f != NULL)
		json_object_update(f, diff);
	if (f != NULL && json_array_size(stopped) > 0)
		json_object_set(f, "roles_stopped", stopped);
	json_decref(stopped);
	json_decref(diff);
	sup_record(new, "config.reloaded", f);
}

/*
 * SIGHUP: re-reads the configuration file. Refused (the running one
 * stays) when it has errors or changes what only a restart applies.
 * Else: new sessions get the new configuration, the listener its part
 * (sessions running keep theirs), intake, uploader, control and notify
 * are restarted with it one at a time (their work is in state_dir: an
 * upload stopped resumes, a notification not sent stays in the outbox);
 * a role the new configuration no longer wants (notify without targets)
 * is stopped, one it now wants is started, and config.reloaded says what
 * changed. *cur becomes
 * the new configuration; *owned holds it (the previous owned one freed).
 */
static void
sup_reload(const struct config **cur, struct config **owned, int only_server)
{
	struct config *new = NULL;
	json_t *restart = NULL, *roles = NULL, *stopped = NULL, *v;
	char *errs = NULL, msg[1024];
	size_t errlen = 0, i;
	FILE *ef;
	int rc;

	log_info("SIGHUP: reloading %s", (*cur)->path);
	if ((ef = open_memstream(&errs, &errlen)) == NULL)
		return;
	rc = config_load((*cur)->path, &new, ef);
	fclose(ef);
	if (rc == -1) {
		reload_failed(*cur, errs);
		goto done;
	}
	if ((restart = confdiff_restart_only(*cur, new)) == NULL ||
	    (roles = json_array()) == NULL || (stopped = json_array()) == NULL)
		goto fail;
	if (json_array_size(restart) > 0) {
		msg[0] = '\0';
		json_array_foreach(restart, i, v)
			(void)xsnprintf(msg + strlen(msg), sizeof(msg) -
			    strlen(msg), "%s%s: changes only with a restart "
			    "(systemctl restart sluice); put back the running "
			    "value to reload the rest", i > 0 ? "\n" : "",
			    json_string_value(v));
		reload_failed(*cur, msg);
		goto done;
	}
	if (sup.restricted && prepared_check(new) == -1) {
		(void)xsnprintf(msg, sizeof(msg), "%s: a partner's folder below "
		    "state_dir is missing: 'sluice prepare -c %s' as root makes "
		    "it (systemctl reload runs it before the SIGHUP)",
		    new->path, new->path);
		reload_failed(*cur, msg);
		goto done;
	}
	if ((!sup.restricted && own_spool(new) == -1) ||
	    session_config_swap(new) == -1)
		goto fail;
	(void)listener_reload_send(new);
	for (i = 0; i < NPROCS; i++) {
		if (procs[i].run == run_audit || procs[i].run == run_listener)
			continue;
		if (role_wanted(&procs[i], new, only_server)) {
			role_restart(&procs[i], new);
			json_array_append_new(roles, json_string(procs[i].name));
		} else if (procs[i].pid > 0 || procs[i].restart_at != 0) {
			/* e.g. notify: its last target removed; its outbox
			 * rows stay in sluice.db for a later start */
			role_stop(&procs[i]);
			procs[i].started = 0;	/* not in roles.status */
			log_info("role %s stopped: the new configuration "
			    "does not use it", procs[i].name);
			json_array_append_new(stopped,
			    json_string(procs[i].name));
		}
	}
	reloaded_record(*cur, new, roles, stopped);
	roles = stopped = NULL;
	log_info("reloaded %s: %zu partner(s)", new->path, new->npartners);
	*cur = new;
	config_free(*owned);
	*owned = new;
	new = NULL;
	goto done;
fail:
	reload_failed(*cur, "out of memory or cannot make the sessions' "
	    "configuration (see the log above)");
done:
	config_free(new);
	json_decref(restart);
	json_decref(roles);
	json_decref(stopped);
	free(errs);
}

static int
is_none(const struct proc *r)
{
	(void)r;
	return 0;
}

static int
sessions_running(void)
{
	size_t i;
	int n = 0;

	for (i = 0; i < nsessions; i++)
		if (sessions[i] > 0)
			n++;
	return n;
}

/*
 * SIGTERM: no new connection (the listener closes the socket, and so do
 * we), the sessions running may finish for server.shutdown_grace (a
 * second SIGTERM ends the wait); those still running then are cut by
 * stop_procs. *finished and *cut count them.
 */
static void
sup_drain(const struct config *cfg, int *finished, int *cut)
{
	struct spawn_msg m;
	struct pollfd pfd;
	int64_t deadline = mono_ms() + cfg->server.shutdown_grace_s * 1000;
	int status, n0, n;
	pid_t pid;

	memset(&m, 0, sizeof(m));
	m.type = SPAWN_DRAIN;
	(void)send(sup.spawnfd[0], &m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT);
	if (sup.listenfd != -1)
		close(sup.listenfd);
	sup.listenfd = -1;
	n0 = n = sessions_running();
	/* a session ends once no upload is open; before login, at once */
	signal_procs(is_none, 1, SIGUSR1);
	if (n0 > 0)
		log_info("draining: %d session(s) running may finish for up to "
		    "%lld s (server.shutdown_grace)", n0,
		    (long long)cfg->server.shutdown_grace_s);
	while (n > 0 && mono_ms() < deadline && sup_quit < 2) {
		pfd.fd = sup.spawnfd[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 100) > 0)
			spawn_request();	/* refused: we are stopping */
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			reaped(pid, status);
		n = sessions_running();
	}
	*finished = n0 - n;
	*cut = n;
	if (n > 0)
		log_warnx("drain: %d session(s) still running are cut (%d "
		    "finished)", n, n0 - n);
	else if (n0 > 0)
		log_info("drain: every session finished (%d)", n0);
}

/*
 * Whether `serve` (or, only_server, `server`: the audit writer and the
 * listener) runs role r with this configuration: the metrics role only
 * with metrics.listen, the notify role only with notify: targets.
 */
static int
role_wanted(const struct proc *r, const struct config *cfg, int only_server)
{
	if (only_server && r->run != run_audit && r->run != run_listener)
		return 0;
	if (r->run == events_run)
		return cfg->notify.ntargets > 0;
	return r->run != metrics_run || cfg->metrics.listen_host != NULL;
}

/*
 * state_dir/run/roles.status for the metrics role: one "name up|down
 * restarts" line per role started, rewritten when one starts or stops.
 */
static void
roles_status(const struct config *cfg)
{
	static char last[1024];
	char text[1024], line[128], path[PATH_MAX];
	size_t i;
	int rc, saved;

	text[0] = '\0';
	for (i = 0; i < NPROCS; i++) {
		if (procs[i].started == 0)
			continue;
		(void)xsnprintf(line, sizeof(line), "%s %s %d\n", procs[i].name,
		    procs[i].pid > 0 ? "up" : "down", procs[i].restarts);
		(void)xstrlcat(text, line, sizeof(text));
	}
	if (strcmp(text, last) == 0 || spool_dir_path(cfg->state_dir,
	    SPOOL_RUN, NULL, path, sizeof(path)) == -1 ||
	    xstrlcat(path, "/" METRICS_ROLES_FILE, sizeof(path)) >=
	    sizeof(path))
		return;
	/* run/ is the service user's: written with its file system ids */
	if (sup_fs(&sup.users.service) == -1)
		return;
	rc = write_file_atomic(path, text, strlen(text), 0644);
	saved = errno;
	if (sup_fs(NULL) == -1)
		fatalx("cannot switch the file system ids back to root's");
	errno = saved;
	if (rc == -1)
		log_warn("cannot write %s", path);
	else
		xstrlcpy(last, text, sizeof(last));
}

/*
 * Whether every role of this mode (only_server: the audit writer and the
 * listener) has been running for a second: systemd's READY=1. A role that
 * keeps dying at start never lets it come, and the unit's start times out.
 */
static int
roles_up(const struct config *cfg, int only_server)
{
	size_t i;

	for (i = 0; i < NPROCS; i++) {
		if (!role_wanted(&procs[i], cfg, only_server))
			continue;
		if (procs[i].pid <= 0 || mono_ms() - procs[i].started < 1000)
			return 0;
	}
	return 1;
}

/*
 * The supervisor: starts the roles (only the audit writer and the listener
 * for `sluice server`), starts sessions for the listener, restarts a role
 * that dies, and stops everything in order on SIGTERM/SIGINT.
 */
static int
cmd_serve(const struct config *cfg, int only_server)
{
	struct sigaction sa;
	struct pollfd pfd;
	struct proc *r;
	struct config *owned = NULL;	/* cfg after a reload */
	size_t i;
	pid_t pid;
	int status, started = 0, ready = 0;

	log_setrole("supervisor");
	if (prepare(cfg, 0) == -1 || serve_setup(cfg, only_server) == -1) {
		control_unlisten(cfg);
		return 1;
	}
	nsessions = (size_t)(cfg->server.max_sessions +
	    cfg->server.max_startups) + 16;
	if ((sessions = calloc(nsessions, sizeof(*sessions))) == NULL)
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sup_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (i = 0; i < NPROCS; i++) {
		if (!role_wanted(&procs[i], cfg, only_server))
			continue;
		if (role_start(&procs[i], cfg) == -1)
			goto stop;
	}
	started = 1;
	sup_audit(cfg, "process.start", only_server ? "server" : "serve", NULL);
	sup_config_loaded(cfg);
	log_info("sluice %s running: SFTP on %s:%d, objects to %s", SLUICE_VERSION,
	    cfg->listen_host, cfg->listen_port, cfg->store.url);

	while (!sup_quit) {
		notify_watchdog(mono_ms());
		if (sup_hup) {
			sup_hup = 0;
			sup_reload(&cfg, &owned, only_server);
			continue;
		}
		pfd.fd = sup.spawnfd[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 100) > 0)
			spawn_request();
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			reaped(pid, status);
		/* after the reaping: a role that died is not up */
		if (!ready && roles_up(cfg, only_server)) {
			ready = 1;
			notify_ready("running: SFTP on %s:%d, objects to %s",
			    cfg->listen_host, cfg->listen_port, cfg->store.url);
		}
		/* Restart what is due. */
		for (i = 0; i < NPROCS && !sup_quit; i++) {
			r = &procs[i];
			if (r->pid != 0 || r->restart_at == 0 ||
			    mono_ms() < r->restart_at)
				continue;
			r->restart_at = 0;
			if (role_start(r, cfg) != -1)
				notify_status("running: role %s restarted",
				    r->name);
		}
		roles_status(cfg);
	}
stop:
	log_info("stopping");
	notify_stopping("stopping: sessions and roles, then the audit writer");
	if (started) {
		sup_drain(cfg, &sup_drained.finished, &sup_drained.cut);
		sup_drained.ran = 1;
	}
	/* Everything but the audit writer, then the writer: the others'
	 * last records reach the trail. */
	stop_procs(not_audit, 1, 15000);
	/* Before the writer stops, so the record is written by it. (A start
	 * that failed wrote no process.start; a writer that is gone would
	 * leave the record unanswered for AUDIT_TIMEOUT_MS.) */
	for (i = 0; i < NPROCS && !is_audit(&procs[i]); i++)
		;
	if (started && i < NPROCS && procs[i].pid <= 0)
		log_warnx("the audit writer is not running: no process.stop "
		    "record in %s", cfg->audit_path);
	else if (started)
		sup_audit(cfg, "process.stop", only_server ? "server" : "serve",
		    sup_quit_sig == SIGINT ? "SIGINT" : "SIGTERM");
	stop_procs(is_audit, 0, 15000);
	control_unlisten(cfg);
	log_info("stopped");
	free(sessions);
	config_free(owned);
	return 0;
}

/* `sluice intake` or `sluice uploader` alone, in the foreground. */
static int
cmd_role(const struct config *cfg, struct proc *r)
{
	if (prepare(cfg, 0) == -1)
		return 1;
	if (proc_start(r->name, r->title, proc_id_of(&sup.users, r->user),
	    r->flags) == -1)
		return 1;
	signal(SIGINT, SIG_DFL);	/* Ctrl-C stops a role run by hand */
	return r->run(cfg);
}

/*
 * arg is -c/--config (or an unambiguous abbreviation): 1 with *value set
 * (NULL: the value is the next argument), else 0.
 */
static int
config_opt(const char *arg, const char **value)
{
	const char *eq;
	size_t len;

	*value = NULL;
	if (arg[0] == '-' && arg[1] == 'c') {
		if (arg[2] != '\0')
			*value = arg + 2;
		return 1;
	}
	if (strncmp(arg, "--c", 3) != 0)
		return 0;
	eq = strchr(arg, '=');
	len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	if (len > strlen("--config") || strncmp(arg, "--config", len) != 0)
		return 0;
	if (eq != NULL)
		*value = eq + 1;
	return 1;
}

/* The admin command argv[0..argc) the old way, in this process. */
static int
admin_local(int argc, char **argv, const char *cfgpath, int verbose)
{
	log_init(argv[0], verbose);
	if (strcmp(argv[0], "audit") == 0 && argc > 1 &&
	    strcmp(argv[1], "trace") == 0)
		return audit_trace_cmd(argc - 1, argv + 1, cfgpath);
	if (strcmp(argv[0], "audit") == 0 && argc > 1 &&
	    strcmp(argv[1], "export") == 0)
		return audit_export_cmd(argc - 1, argv + 1, cfgpath);
	if (strcmp(argv[0], "audit") == 0)
		return cmd_audit(argc - 1, argv + 1, cfgpath);
	return strcmp(argv[0], "queue") == 0 ?
	    queue_main(argc - 1, argv + 1, cfgpath) :
	    reconcile_main(argc, argv, cfgpath);
}

/*
 * `sluice queue|reconcile|audit ...`: through the running gateway's control
 * socket (control.socket of the configuration) when one answers there, else
 * (or with --local) in this process as before.
 */
static int
cmd_admin(int argc, char **argv, const char *cfgpath, int verbose)
{
	char **mine, **sent, sock[PATH_MAX];
	const char *val, *named;
	int i, nmine = 0, nsent = 0, local = 0, opts = 1, status, rc, r;

	if ((mine = calloc((size_t)argc + 1, sizeof(char *))) == NULL ||
	    (sent = calloc((size_t)argc + 1, sizeof(char *))) == NULL) {
		free(mine);
		fprintf(stderr, "sluice: out of memory\n");
		return 1;
	}
	/* A configuration named before the command (sluice -c FILE queue). */
	named = strcmp(cfgpath, DEFAULT_CONFIG) != 0 ? cfgpath : NULL;
	for (i = 0; i < argc; i++) {
		if (opts && strcmp(argv[i], "--") == 0)
			opts = 0;
		else if (opts && strcmp(argv[i], "--local") == 0) {
			local = 1;
			continue;
		} else if (opts && i > 0 && config_opt(argv[i], &val)) {
			mine[nmine++] = argv[i];
			if (val == NULL && i + 1 < argc) {
				mine[nmine++] = argv[++i];
				val = argv[i];
			}
			if (val != NULL)
				cfgpath = named = val;
			continue;	/* the gateway uses its own */
		}
		if (opts && strcmp(argv[i], "--store") == 0)
			local = 1;	/* audit verify --store: the caller's
					 * store credentials, never the gateway's */
		mine[nmine++] = sent[nsent++] = argv[i];
	}
	/*
	 * Without -c and without the default configuration there is no
	 * gateway of ours to ask: a gateway of another configuration that
	 * happens to answer at the default socket is not it.
	 */
	if (!local && control_find(control_cmds, NCONTROL_CMDS, nsent,
	    sent) != NULL && (config_control_socket(cfgpath, sock,
	    sizeof(sock)) == 0 || named != NULL)) {
		r = control_call(sock, nsent, sent, named, &status);
		if (r != 0) {
			rc = r == 1 ? status : 1;
			goto done;
		}
	}
	rc = admin_local(nmine, mine, cfgpath, verbose);
done:
	free(mine);
	free(sent);
	return rc;
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

	/* Files sluice creates are its own unless made otherwise. */
	umask(077);
	/* Options may come before or after the command. */
	while ((ch = getopt_long(argc, argv, "+c:vhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfgpath = optarg; break;
		case 'v': verbose++; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf(VERSION_LINE); return 0;
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
	if (strcmp(cmd, "audit") == 0 || strcmp(cmd, "queue") == 0 ||
	    strcmp(cmd, "reconcile") == 0)
		return cmd_admin(argc, argv, cfgpath, verbose);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:vhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfgpath = optarg; break;
		case 'v': verbose++; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf(VERSION_LINE); return 0;
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
	if (strcmp(cmd, "host-keys") == 0) {
		rc = hostkeys_print(cfg, stdout) == 0 ? 0 : 1;
		config_free(cfg);
		return rc;
	}
	log_configure(cfg->log_target, cfg->log_level);
	sup.verbose = verbose;
	if (strcmp(cmd, "prepare") == 0) {
		log_setrole("prepare");
		rc = prepare(cfg, 1) == 0 ? 0 : 1;
	} else if (strcmp(cmd, "serve") == 0)
		rc = cmd_serve(cfg, 0);
	else if (strcmp(cmd, "server") == 0)
		rc = cmd_serve(cfg, 1);
	else {
		rc = -1;
		for (i = 0; i < NPROCS; i++) {
			if (strcmp(cmd, procs[i].name) != 0 ||
			    procs[i].run == run_audit ||
			    procs[i].run == run_control)
				continue;
			rc = cmd_role(cfg, &procs[i]);
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
