/*
 * listener.c - the listener role: binds the SSH port with the configured
 * host keys and algorithm policy, and forks one session process per
 * connection (a crash or hang in one partner's session touches no other).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libssh/libssh.h>
#include <libssh/server.h>

#include "common/log.h"
#include "common/util.h"
#include "server/server.h"

#define MAX_SESSIONS	256

static volatile sig_atomic_t listener_quit;
static volatile sig_atomic_t listener_child;

static void
listener_signal(int sig)
{
	if (sig == SIGCHLD)
		listener_child = 1;
	else
		listener_quit = 1;
}

static int
hostkey_fingerprint(const char *path)
{
	ssh_key key = NULL;
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp = NULL;

	if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) != SSH_OK) {
		log_warnx("host key %s cannot be read (is it an OpenSSH private "
		    "key without a passphrase?)", path);
		return -1;
	}
	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash,
	    &hlen) == SSH_OK &&
	    (fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash,
	    hlen)) != NULL)
		log_info("host key %s: %s %s", path, ssh_key_type_to_char(
		    ssh_key_type(key)), fp);
	ssh_string_free_char(fp);
	ssh_clean_pubkey_hash(&hash);
	ssh_key_free(key);
	return 0;
}

int
hostkeys_ensure(const struct config *cfg)
{
	struct stat st;
	ssh_key key;
	char dir[4096], *slash;
	size_t i;
	mode_t old;
	int rc;

	for (i = 0; i < cfg->nhost_keys; i++) {
		const char *path = cfg->host_keys[i];

		if (lstat(path, &st) == 0) {
			if (!S_ISREG(st.st_mode)) {
				log_warnx("host key %s is not a regular file", path);
				return -1;
			}
			if (st.st_mode & 077) {
				log_warnx("host key %s is readable by group or "
				    "others (mode %04o); fix with: chmod 600 %s",
				    path, (unsigned)(st.st_mode & 07777), path);
				return -1;
			}
			if (hostkey_fingerprint(path) == -1)
				return -1;
			continue;
		}
		if (errno != ENOENT) {
			log_warn("host key %s", path);
			return -1;
		}
		xstrlcpy(dir, path, sizeof(dir));
		if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
			*slash = '\0';
			if (mkdir_p(dir, 0750) == -1) {
				log_warn("cannot create %s", dir);
				return -1;
			}
		}
		if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK) {
			log_warnx("cannot generate an ed25519 host key");
			return -1;
		}
		old = umask(077);
		rc = ssh_pki_export_privkey_file(key, NULL, NULL, NULL, path);
		umask(old);
		ssh_key_free(key);
		if (rc != SSH_OK || chmod(path, 0600) == -1) {
			log_warn("cannot write host key %s", path);
			return -1;
		}
		log_info("generated a new ed25519 host key at %s", path);
		if (hostkey_fingerprint(path) == -1)
			return -1;
	}
	return 0;
}

static int
bind_set(ssh_bind b, enum ssh_bind_options_e opt, const void *val,
    const char *what)
{
	if (ssh_bind_options_set(b, opt, val) != SSH_OK) {
		log_warnx("cannot set %s: %s", what, ssh_get_error(b));
		return -1;
	}
	return 0;
}

static ssh_bind
listener_bind(const struct config *cfg)
{
	ssh_bind b;
	size_t i;
	int no = 0;
	char port[8];

	if ((b = ssh_bind_new()) == NULL)
		return NULL;
	xsnprintf(port, sizeof(port), "%d", cfg->listen_port);
	/* Never let /etc/ssh/libssh_server_config override the policy. */
	if (bind_set(b, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no, "process_config") ||
	    bind_set(b, SSH_BIND_OPTIONS_BINDADDR, cfg->listen_host, "listen") ||
	    bind_set(b, SSH_BIND_OPTIONS_BINDPORT_STR, port, "listen port") ||
	    bind_set(b, SSH_BIND_OPTIONS_KEY_EXCHANGE, SSH_DEFAULT_KEX, "kex") ||
	    bind_set(b, SSH_BIND_OPTIONS_CIPHERS_C_S, SSH_DEFAULT_CIPHERS, "ciphers") ||
	    bind_set(b, SSH_BIND_OPTIONS_CIPHERS_S_C, SSH_DEFAULT_CIPHERS, "ciphers") ||
	    bind_set(b, SSH_BIND_OPTIONS_HMAC_C_S, SSH_DEFAULT_MACS, "macs") ||
	    bind_set(b, SSH_BIND_OPTIONS_HMAC_S_C, SSH_DEFAULT_MACS, "macs") ||
	    bind_set(b, SSH_BIND_OPTIONS_PUBKEY_ACCEPTED_KEY_TYPES,
	    SSH_DEFAULT_PUBKEYS, "pubkey types"))
		goto fail;
	for (i = 0; i < cfg->nhost_keys; i++)
		if (bind_set(b, SSH_BIND_OPTIONS_HOSTKEY, cfg->host_keys[i],
		    cfg->host_keys[i]))
			goto fail;
	if (bind_set(b, SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS,
	    SSH_DEFAULT_HOSTKEYS, "host key algorithms"))
		goto fail;
	if (ssh_bind_listen(b) != SSH_OK) {
		log_warnx("cannot listen on %s:%d: %s", cfg->listen_host,
		    cfg->listen_port, ssh_get_error(b));
		goto fail;
	}
	return b;
fail:
	ssh_bind_free(b);
	return NULL;
}

static int nsessions;
static pid_t sessions[MAX_SESSIONS];

static void
reap(void)
{
	pid_t pid;
	int status, i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < MAX_SESSIONS; i++)
			if (sessions[i] == pid)
				sessions[i] = 0;
		nsessions--;
		if (WIFSIGNALED(status) && WTERMSIG(status) != SIGALRM &&
		    WTERMSIG(status) != SIGTERM)
			log_warnx("session process %ld died of signal %d",
			    (long)pid, WTERMSIG(status));
	}
}

int
server_run(const struct config *cfg)
{
	struct sigaction sa;
	struct pollfd pfd;
	ssh_bind b;
	ssh_session ssh;
	pid_t pid;
	int64_t deadline;
	int i;

	log_setrole("server");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = listener_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (ssh_init() != SSH_OK)
		fatalx("libssh initialisation failed");
	if (hostkeys_ensure(cfg) == -1)
		return 1;
	if ((b = listener_bind(cfg)) == NULL)
		return 1;
	log_info("listening on %s:%d", cfg->listen_host, cfg->listen_port);

	pfd.fd = ssh_bind_get_fd(b);
	pfd.events = POLLIN;
	while (!listener_quit) {
		if (listener_child) {
			listener_child = 0;
			reap();
		}
		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		if ((ssh = ssh_new()) == NULL)
			continue;
		if (ssh_bind_accept(b, ssh) != SSH_OK) {
			log_warnx("accept: %s", ssh_get_error(b));
			ssh_free(ssh);
			continue;
		}
		if (nsessions >= MAX_SESSIONS) {
			log_warnx("refusing a connection: %d sessions already "
			    "(MaxSessions)", nsessions);
			ssh_disconnect(ssh);
			ssh_free(ssh);
			continue;
		}
		switch ((pid = fork())) {
		case -1:
			log_warn("fork");
			ssh_disconnect(ssh);
			ssh_free(ssh);
			break;
		case 0:
			ssh_bind_free(b);
			session_run(cfg, ssh);
			/* NOTREACHED */
		default:
			for (i = 0; i < MAX_SESSIONS; i++)
				if (sessions[i] == 0) {
					sessions[i] = pid;
					break;
				}
			nsessions++;
			ssh_free(ssh);	/* closes the parent's copy of the socket */
			break;
		}
	}
	log_info("shutting down: %d session(s) to end", nsessions);
	ssh_bind_free(b);
	signal(SIGTERM, SIG_IGN);
	for (i = 0; i < MAX_SESSIONS; i++)
		if (sessions[i] > 0)
			kill(sessions[i], SIGTERM);
	deadline = mono_ms() + 5000;
	while (nsessions > 0 && mono_ms() < deadline) {
		reap();
		if (nsessions > 0)
			usleep(50000);
	}
	if (nsessions > 0) {
		log_warnx("%d session(s) did not end in time; killing them",
		    nsessions);
		for (i = 0; i < MAX_SESSIONS; i++)
			if (sessions[i] > 0)
				kill(sessions[i], SIGKILL);
		while (nsessions > 0 && waitpid(-1, NULL, 0) > 0)
			nsessions--;
	}
	ssh_finalize();
	return 0;
}
