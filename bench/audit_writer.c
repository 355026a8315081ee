/*
 * audit_writer.c - durable audit records per second through the one audit
 * writer (audit/writer.c: group commit, one fdatasync per group), from many
 * concurrent clients, each waiting for its ack before the next record, as a
 * session does. A benchmark, not a test: it is not in ctest and asserts no
 * speed (bench/README.md). Build and run:
 *
 *	cmake --build build --target audit_writer_bench
 *	build/audit_writer_bench [-c clients] [-r records] [-s segment_max]
 *	    [-k] [-d dir]
 *
 * -c clients (200), -r records per client (100), -s bytes at which the
 * writer seals the live segment (0: never, as before segments), -k MAC the
 * records with a key the writer creates (as the gateway always does), -d a
 * directory to work in (default a new one under /tmp, removed at the end).
 * Records carry what the writer stamps today (seq, ts with microseconds,
 * host, prev, kid, hash, mac). After the run the trail is verified as one
 * chain (with the key) and that time is printed too.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "audit/audit_int.h"
#include "common/log.h"
#include "common/util.h"
#include "policy/config.h"
#include "tests/unit/testtree.h"

struct opts {
	int		 clients;
	int		 records;
	int64_t		 segmax;
	int		 keyed;
	const char	*dir;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
usage(void)
{
	fprintf(stderr, "usage: audit_writer_bench [-c clients] [-r records] "
	    "[-s segment_max_bytes] [-k] [-d dir]\n");
	exit(2);
}

static void
parse(int argc, char **argv, struct opts *o)
{
	int64_t v;
	int ch;

	o->clients = 200;
	o->records = 100;
	o->segmax = 0;
	o->keyed = 0;
	o->dir = NULL;
	while ((ch = getopt(argc, argv, "c:r:s:kd:")) != -1) {
		switch (ch) {
		case 'c':
		case 'r':
			if (parse_int64(optarg, 1, 100000, &v) != 0)
				usage();
			*(ch == 'c' ? &o->clients : &o->records) = (int)v;
			break;
		case 's':
			if (parse_int64(optarg, 0, INT64_MAX, &o->segmax) != 0)
				usage();
			break;
		case 'k':
			o->keyed = 1;
			break;
		case 'd':
			o->dir = optarg;
			break;
		default:
			usage();
		}
	}
}

/* One client: connects, waits for the start, emits durable records. */
static void
client(const char *sock, int go, int id, int records)
{
	struct audit *a;
	char c;
	int j;

	if ((a = audit_connect(sock)) == NULL || read(go, &c, 1) != 0)
		_exit(2);
	for (j = 0; j < records; j++)
		if (audit_emit(a, "sftp.op", json_pack("{s:s,s:s,s:s,s:s,"
		    "s:s,s:i,s:s}", "session", "5f0c2a9e7d3b41c8", "remote",
		    "192.0.2.17", "partner", "acme", "op", "write", "path",
		    "in/2026/11/22/tx.csv.pgp", "n", j, "status", "ok")) != 0)
			_exit(3);
	audit_close(a);
	(void)id;
	_exit(0);
}

static pid_t
writer(const struct config *cfg, int lfd)
{
	pid_t pid;

	if ((pid = fork()) == 0)
		_exit(audit_writer_run(cfg, lfd) == 0 ? 0 : 1);
	return pid;
}

/* Segments in dir and bytes of the whole trail. */
static int
count_segments(const char *segdir, const char *live, int64_t *bytes)
{
	struct dirent *d;
	struct stat st;
	char p[PATH_MAX];
	DIR *dp;
	int n = 0;

	*bytes = stat(live, &st) == 0 ? st.st_size : 0;
	if ((dp = opendir(segdir)) == NULL)
		return 0;
	while ((d = readdir(dp)) != NULL)
		if (audit_segment_name_ok(d->d_name)) {
			n++;
			(void)xsnprintf(p, sizeof(p), "%s/%s", segdir, d->d_name);
			if (stat(p, &st) == 0)
				*bytes += st.st_size;
		}
	closedir(dp);
	return n;
}

static int
run(const struct opts *o, const char *dir)
{
	char trail[PATH_MAX], segdir[PATH_MAX], sock[PATH_MAX], key[PATH_MAX];
	const char *paths[2] = { segdir, trail };
	struct audit_key *k = NULL;
	struct config cfg;
	pid_t w, *pids;
	int go[2], lfd, i, status, nseg, rc = 1;
	double t0, t1, t2;
	int64_t bytes;

	(void)xsnprintf(trail, sizeof(trail), "%s/audit.jsonl", dir);
	(void)xsnprintf(segdir, sizeof(segdir), "%s/segments", dir);
	(void)xsnprintf(sock, sizeof(sock), "%s/audit.sock", dir);
	(void)xsnprintf(key, sizeof(key), "%s/audit.key", dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.audit_path = trail;
	cfg.audit_key_path = o->keyed ? key : NULL;
	cfg.audit_segments_dir = segdir;
	cfg.audit_segment_max = o->segmax;
	cfg.audit_host_id = (char *)"gw-bench.example";
	if ((pids = calloc((size_t)o->clients, sizeof(*pids))) == NULL ||
	    (lfd = audit_listen(sock, (uid_t)-1, (gid_t)-1, 0600)) == -1)
		return 1;
	/* the pipe after the writer's fork: it must not hold the write end */
	if ((w = writer(&cfg, lfd)) == -1 || pipe(go) == -1)
		return 1;
	usleep(200000);		/* the writer opens its trail and key */
	for (i = 0; i < o->clients; i++) {
		if ((pids[i] = fork()) == 0) {
			close(go[1]);
			client(sock, go[0], i, o->records);
		}
		if (pids[i] == -1)
			return 1;
	}
	close(go[0]);
	usleep(300000);		/* let them connect */
	t0 = now_s();
	close(go[1]);
	for (i = 0; i < o->clients; i++)
		if (waitpid(pids[i], &status, 0) != pids[i] ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "client %d failed\n", i);
			goto done;
		}
	t1 = now_s();
	kill(w, SIGTERM);
	if (waitpid(w, &status, 0) != w || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		w = -1;
		fprintf(stderr, "the writer failed\n");
		goto done;
	}
	w = -1;
	nseg = count_segments(segdir, trail, &bytes);
	printf("%d clients x %d durable records = %d in %.2f s: %.0f "
	    "records/s (%s, segment_max %lld: %d sealed segments, %.1f MB)\n",
	    o->clients, o->records, o->clients * o->records, t1 - t0,
	    (double)o->clients * o->records / (t1 - t0), o->keyed ? "keyed" :
	    "no key", (long long)o->segmax, nseg, (double)bytes / 1e6);
	if (o->keyed && (k = audit_key_load(key, 1)) == NULL)
		goto done;
	t1 = now_s();
	rc = audit_verify_trail(paths, 2, &k, k ? 1 : 0,
	    AUDIT_VERIFY_SKIP_MISSING | AUDIT_VERIFY_WHOLE, stdout);
	t2 = now_s();
	printf("verify: exit %d in %.2f s\n", rc, t2 - t1);
done:
	if (w != -1) {		/* a client failed: stop the writer too */
		kill(w, SIGKILL);
		(void)waitpid(w, NULL, 0);
	}
	audit_key_free(k);
	close(lfd);
	free(pids);
	return rc == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct opts o;
	char tmpl[] = "/tmp/sluice-audit-bench-XXXXXX";
	const char *dir;
	int rc;

	parse(argc, argv, &o);
	log_init("bench", 0);
	if ((dir = o.dir) == NULL && (dir = mkdtemp(tmpl)) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	rc = run(&o, dir);
	if (o.dir == NULL) {
		if (testtree_remove(dir) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return rc;
}
