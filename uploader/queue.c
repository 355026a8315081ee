/*
 * queue.c - the operator's commands on the upload queue:
 *
 *   sluice queue list [--all] -c FILE   files waiting, uploading or held
 *                                       (--all: every file)
 *   sluice queue retry -c FILE ID|--all held -> accepted (audited)
 *   sluice queue hold -c FILE ID        accepted -> held (audited)
 *   sluice reconcile -c FILE            HEAD + checksum every file the state
 *                                       database or the audit trail says was
 *                                       stored; exit 1 listing the unproven
 *                                       (audited: reconcile.unproven per
 *                                       file, then reconcile.run)
 */
#include "uploader/uploader.h"

#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/util.h"

/* The operator the gateway's control role ran the command for, or NULL. */
static const char *q_operator;

static const char *
operator_name(void)
{
	struct passwd *pw;

	if (q_operator != NULL)
		return q_operator;
	pw = getpwuid(getuid());
	return pw != NULL ? pw->pw_name : "unknown";
}

/* A -c given to a command the gateway runs with its own configuration. */
static int
no_config(void)
{
	fprintf(stderr, "sluice: -c is not taken here: the gateway runs the "
	    "command with its own configuration\n");
	return 2;
}

static void
age(int64_t ms, char *out, size_t len)
{
	int64_t s = (now_ms() - ms) / 1000;

	if (s < 0)
		s = 0;
	if (s < 120)
		xsnprintf(out, len, "%llds", (long long)s);
	else if (s < 7200)
		xsnprintf(out, len, "%lldm", (long long)(s / 60));
	else if (s < 172800)
		xsnprintf(out, len, "%lldh", (long long)(s / 3600));
	else
		xsnprintf(out, len, "%lldd", (long long)(s / 86400));
}

/* `queue list`: how many files it showed, in all and per state. */
struct listing {
	int	 count[FS_NSTATES];
	int	 n;
};

static int
list_one(void *arg, const struct file_rec *r)
{
	struct listing *l = arg;
	char a[32], pp[4200];

	age(r->received_ms, a, sizeof(a));
	xsnprintf(pp, sizeof(pp), "%s/%s", r->partner, r->path);
	printf("%-8lld %-10s %-6s %-8d %-40s %s\n", (long long)r->id,
	    file_state_name(r->state), a, r->attempts, pp, r->last_error);
	if (r->state != FS_NONE)
		l->count[r->state]++;
	l->n++;
	return 0;
}

static int
q_list(struct state *st, int all)
{
	struct listing l;
	int k, sep = 0;

	memset(&l, 0, sizeof(l));
	printf("%-8s %-10s %-6s %-8s %-40s %s\n", "ID", "STATE", "AGE",
	    "ATTEMPTS", "PARTNER/PATH", "LAST ERROR");
	if (state_foreach(st, all ? 0 : FS_BIT(FS_RECEIVED) |
	    FS_BIT(FS_ACCEPTED) | FS_BIT(FS_UPLOADING) | FS_BIT(FS_HELD) |
	    FS_BIT(FS_STORED), list_one, &l) == -1) {
		fprintf(stderr, "sluice: cannot read the state database (see "
		    "the log above)\n");
		return 1;
	}
	printf("%d file(s)", l.n);
	for (k = FS_NONE + 1; k < FS_NSTATES; k++)
		if (l.count[k] > 0)
			printf("%s %d %s", sep++ ? "," : ":", l.count[k],
			    file_state_name((enum file_state)k));
	printf("\n");
	return 0;
}

static int
q_move(struct state *st, struct audit *au, int64_t id, enum file_state from,
    enum file_state to, const char *event)
{
	struct file_rec r;
	int m;

	if (state_get(st, id, &r) != 1) {
		fprintf(stderr, "sluice: no file with id %lld (see 'sluice "
		    "queue list --all')\n", (long long)id);
		return 1;
	}
	if ((m = state_move(st, id, from, to, NULL)) != 1) {
		fprintf(stderr, "sluice: file %lld (%s/%s) is %s, not %s; "
		    "nothing changed\n", (long long)id, r.partner, r.path,
		    file_state_name(r.state), file_state_name(from));
		return 1;
	}
	audit_emit(au, event, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "fid",
	    r.fid, "partner", r.partner, "path", r.path, "from",
	    file_state_name(from), "to", file_state_name(to), "operator",
	    operator_name()));
	printf("%lld %s/%s: %s -> %s\n", (long long)id, r.partner, r.path,
	    file_state_name(from), file_state_name(to));
	return 0;
}

static int
load_cfg(const char *path, struct config **cfg)
{
	if (config_load(path, cfg, stderr) == -1) {
		fprintf(stderr, "sluice: %s has errors (run 'sluice check-config "
		    "-c %s')\n", path, path);
		return -1;
	}
	return 0;
}

static int queue_cmd(const struct config *, const char *, int, char **);

int
queue_main(int argc, char **argv, const char *cfgpath)
{
	return queue_cmd(NULL, cfgpath, argc, argv);
}

int
queue_run(const struct config *cfg, const char *op, int argc, char **argv)
{
	q_operator = op;
	return queue_cmd(cfg, NULL, argc, argv);
}

/* given: the loaded configuration, or NULL to load cfgpath. */
static int
queue_cmd(const struct config *given, const char *cfgpath, int argc,
    char **argv)
{
	static const struct option lo[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "all",	no_argument,		NULL, 'a' },
		{ NULL,		0,			NULL, 0 },
	};
	struct config *loaded = NULL;
	const struct config *cfg;
	struct state *st = NULL;
	struct audit *au = NULL;
	const char *sub;
	int64_t id = 0;
	int ch, all = 0, rc = 2, n = 0;

	if (argc < 1) {
		fprintf(stderr, "usage: sluice queue list [--all] -c FILE\n"
		    "       sluice queue retry -c FILE ID|--all\n"
		    "       sluice queue hold -c FILE ID\n");
		return 2;
	}
	sub = argv[0];
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", lo, NULL)) != -1) {
		switch (ch) {
		case 'c':
			if (given != NULL)
				return no_config();
			cfgpath = optarg;
			break;
		case 'a': all = 1; break;
		default: return 2;
		}
	}
	if (strcmp(sub, "list") != 0 && strcmp(sub, "retry") != 0 &&
	    strcmp(sub, "hold") != 0) {
		fprintf(stderr, "sluice: unknown queue command \"%s\" (list, "
		    "retry or hold)\n", sub);
		return 2;
	}
	if (strcmp(sub, "list") != 0 && !(strcmp(sub, "retry") == 0 && all)) {
		if (optind + 1 != argc || parse_int64(argv[optind], 1, INT64_MAX,
		    &id) != 0) {
			fprintf(stderr, "sluice: queue %s needs one file id (the "
			    "ID column of 'sluice queue list')%s\n", sub,
			    strcmp(sub, "retry") == 0 ? " or --all" : "");
			return 2;
		}
	} else if (optind != argc) {
		fprintf(stderr, "sluice: unexpected argument \"%s\"\n",
		    argv[optind]);
		return 2;
	}
	if (given == NULL && load_cfg(cfgpath, &loaded) != 0)
		return 1;
	cfg = given != NULL ? given : loaded;
	rc = 1;
	if ((st = state_open(cfg->state_dir)) == NULL)
		goto out;
	if (strcmp(sub, "list") == 0) {
		rc = q_list(st, all);
		goto out;
	}
	if ((au = proc_audit_open(cfg)) == NULL)
		goto out;
	if (strcmp(sub, "hold") == 0)
		rc = q_move(st, au, id, FS_ACCEPTED, FS_HELD, "queue.hold");
	else if (!all)
		rc = q_move(st, au, id, FS_HELD, FS_ACCEPTED, "queue.retry");
	else {
		struct file_rec *rows;
		size_t i, k;

		rc = 0;
		do {
			if (state_list(st, FS_HELD, NULL, 1024, &rows, &k) == -1)
				goto out;
			for (i = 0; i < k; i++)
				if (q_move(st, au, rows[i].id, FS_HELD,
				    FS_ACCEPTED, "queue.retry") == 0)
					n++;
			free(rows);
		} while (k == 1024);
		printf("%d held file(s) released\n", n);
	}
out:
	audit_close(au);
	state_close(st);
	config_free(loaded);
	return rc;
}

/* ---- reconcile ---------------------------------------------------------- */

struct claim {
	char	 fid[33];
	char	 partner[65];
	char	 path[4096];
	char	 key[1100];
	char	 sha256[65];
	char	 checksum[80];
	char	 version_id[256];
	int	 checked;
};

static int
b64_of_hex(const char *hex, char out[SHA256_B64])
{
	uint8_t d[SHA256_LEN];
	size_t i;

	if (hex == NULL || strlen(hex) != 64)
		return -1;
	for (i = 0; i < SHA256_LEN; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &d[i]) != 1)
			return -1;
	base64_encode(d, sizeof(d), out);
	return 0;
}

/* Why a stored file is not proven (the "why" of reconcile.unproven). */
enum verdict { V_PROVEN = 0, V_MISSING, V_MISMATCHED, V_NO_CHECKSUM,
	V_ERROR, V_N };
static const char *const verdict_names[V_N] = {
	"proven", "missing", "mismatched", "no_checksum", "error"
};

/* One stored file to check, and where the claim comes from. */
struct subject {
	const char	*source;	/* "database" or "trail" */
	int64_t		 id;		/* database row, 0 for the trail */
	const char	*fid, *partner, *path, *key, *version_id, *sha256;
	const char	*recorded;	/* the checksum recorded at upload */
};

/* The counts of a run, and where unproven files are recorded. */
struct tally {
	struct audit	*au;		/* NULL: not audited (warned) */
	int		 n[V_N];
};

/*
 * Checks one file against the store; prints a line and records a
 * reconcile.unproven (deferred) when unproven. Counts the verdict.
 */
static void
check(struct store *store, struct tally *t, const struct subject *x)
{
	char cs[128], err[512], b64[SHA256_B64], who[64], detail[800];
	enum verdict v;
	int e;

	b64[0] = '\0';
	b64_of_hex(x->sha256, b64);
	e = store_head(store, x->key, x->version_id, cs, sizeof(cs), err,
	    sizeof(err));
	if (e == 1 && store_checksum_matches(cs, b64, x->recorded)) {
		t->n[V_PROVEN]++;
		return;
	}
	if (e == 1 && cs[0] == '\0') {
		v = V_NO_CHECKSUM;
		xstrlcpy(detail, "the store reports no checksum",
		    sizeof(detail));
	} else if (e == 1) {
		v = V_MISMATCHED;
		xsnprintf(detail, sizeof(detail), "checksum %s, expected %s",
		    cs, x->recorded && x->recorded[0] ? x->recorded : b64);
	} else if (e == 0) {
		v = V_MISSING;
		xstrlcpy(detail, "not in the store", sizeof(detail));
	} else {
		v = V_ERROR;
		xstrlcpy(detail, err, sizeof(detail));
	}
	t->n[v]++;
	if (x->id > 0)
		xsnprintf(who, sizeof(who), "file %lld", (long long)x->id);
	else
		xsnprintf(who, sizeof(who), "audit fid %s", x->fid);
	printf("UNPROVEN %s %s: %s\n", who, x->key, detail);
	if (t->au != NULL && audit_emit(t->au, "reconcile.unproven",
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "fid", x->fid,
	    "partner", x->partner, "path", x->path, "key", x->key, "why",
	    verdict_names[v], "reason", detail, "source", x->source, "id",
	    (json_int_t)x->id)) == -1)
		fprintf(stderr, "sluice: the reconcile.unproven record of %s "
		    "was not written (see the log above)\n", who);
}

/* The database's side of a reconcile. */
struct recon {
	struct state	*st;
	struct store	*store;
	struct claim	*claims;	/* the trail's, marked when checked */
	size_t		 nclaims;
	struct tally	*tally;
};

static int
recon_one(void *arg, const struct file_rec *r)
{
	struct recon *x = arg;
	struct subject sub;
	char rec[80];
	size_t i;

	if (state_upload_checksum(x->st, r->id, rec, sizeof(rec)) != 1)
		rec[0] = '\0';
	memset(&sub, 0, sizeof(sub));
	sub.source = "database";
	sub.id = r->id;
	sub.fid = r->fid;
	sub.partner = r->partner;
	sub.path = r->path;
	sub.key = r->object_key;
	sub.version_id = r->version_id;
	sub.sha256 = r->sha256;
	sub.recorded = rec;
	check(x->store, x->tally, &sub);
	for (i = 0; i < x->nclaims; i++)
		if (strcmp(x->claims[i].fid, r->fid) == 0 &&
		    strcmp(x->claims[i].key, r->object_key) == 0)
			x->claims[i].checked = 1;
	return 0;
}

/* reconcile.run: who ran it and the counts; made durable with the
 * reconcile.unproven records before it. */
static void
record_run(struct tally *t)
{
	int checked = 0, k;

	if (t->au == NULL)
		return;
	for (k = 0; k < V_N; k++)
		checked += t->n[k];
	if (audit_emit(t->au, "reconcile.run", json_pack("{s:s,s:i,s:i,s:i,"
	    "s:i,s:i,s:i,s:i}", "operator", operator_name(), "checked",
	    checked, "proven", t->n[V_PROVEN], "unproven",
	    checked - t->n[V_PROVEN], "missing", t->n[V_MISSING],
	    "mismatched", t->n[V_MISMATCHED], "no_checksum",
	    t->n[V_NO_CHECKSUM], "errors", t->n[V_ERROR])) == -1 ||
	    audit_sync(t->au) == -1)
		fprintf(stderr, "sluice: the reconcile records were not all "
		    "written to the audit trail (see the log above)\n");
}

static int reconcile_cmd(const struct config *, const char *, int, char **);

int
reconcile_main(int argc, char **argv, const char *cfgpath)
{
	return reconcile_cmd(NULL, cfgpath, argc, argv);
}

int
reconcile_run(const struct config *cfg, const char *op, int argc,
    char **argv)
{
	q_operator = op;
	return reconcile_cmd(cfg, NULL, argc, argv);
}

/* given: the loaded configuration, or NULL to load cfgpath. */
static int
reconcile_cmd(const struct config *given, const char *cfgpath, int argc,
    char **argv)
{
	static const struct option lo[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ NULL,		0,			NULL, 0 },
	};
	struct config *loaded = NULL;
	const struct config *cfg;
	struct state *st = NULL;
	struct store *store = NULL;
	struct claim *claims = NULL, *np;
	size_t nclaims = 0, i;
	struct recon rc_db;
	struct tally tally;
	struct subject sub;
	FILE *f = NULL;
	char *line = NULL;
	size_t cap = 0;
	int ch, rc = 1, bad;
	json_t *j;

	memset(&tally, 0, sizeof(tally));

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", lo, NULL)) != -1) {
		if (ch != 'c')
			return 2;
		if (given != NULL)
			return no_config();
		cfgpath = optarg;
	}
	if (optind != argc) {
		fprintf(stderr, "usage: sluice reconcile -c FILE\n");
		return 2;
	}
	if (given == NULL && load_cfg(cfgpath, &loaded) != 0)
		return 1;
	cfg = given != NULL ? given : loaded;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (cfg->store.kind == STORE_S3 && creds_init() != 0)
		goto out;
	if ((st = state_open(cfg->state_dir)) == NULL ||
	    (store = store_open(&cfg->store, NULL)) == NULL)
		goto out;

	/* What the audit trail says was stored. */
	if ((f = fopen(cfg->audit_path, "r")) != NULL) {
		while (getline(&line, &cap, f) > 0) {
			const char *ev, *fid, *key, *sha, *cs, *ver, *pa, *pp;

			if ((j = json_loads(line, 0, NULL)) == NULL)
				continue;
			ev = json_string_value(json_object_get(j, "event"));
			fid = json_string_value(json_object_get(j, "fid"));
			key = json_string_value(json_object_get(j, "key"));
			sha = json_string_value(json_object_get(j, "sha256"));
			cs = json_string_value(json_object_get(j, "checksum"));
			ver = json_string_value(json_object_get(j, "version_id"));
			pa = json_string_value(json_object_get(j, "partner"));
			pp = json_string_value(json_object_get(j, "path"));
			if (ev != NULL && strcmp(ev, "file.stored") == 0 &&
			    fid != NULL && key != NULL && sha != NULL &&
			    (np = reallocarray(claims, nclaims + 1,
			    sizeof(*claims))) != NULL) {
				claims = np;
				memset(&claims[nclaims], 0, sizeof(*claims));
				xstrlcpy(claims[nclaims].fid, fid, sizeof(np->fid));
				xstrlcpy(claims[nclaims].key, key, sizeof(np->key));
				xstrlcpy(claims[nclaims].sha256, sha,
				    sizeof(np->sha256));
				xstrlcpy(claims[nclaims].checksum, cs ? cs : "",
				    sizeof(np->checksum));
				xstrlcpy(claims[nclaims].version_id, ver ? ver : "",
				    sizeof(np->version_id));
				xstrlcpy(claims[nclaims].partner, pa ? pa : "",
				    sizeof(np->partner));
				xstrlcpy(claims[nclaims].path, pp ? pp : "",
				    sizeof(np->path));
				nclaims++;
			}
			json_decref(j);
		}
		fclose(f);
	}

	/* The verdicts go to the trail: reconcile.unproven (deferred), then
	 * reconcile.run, made durable together. Without a trail to write
	 * to, the check still runs (it changes nothing) and says so. */
	if ((tally.au = proc_audit_open(cfg)) == NULL)
		fprintf(stderr, "sluice: cannot write to the audit trail %s; "
		    "this reconcile is not recorded (see the log above)\n",
		    cfg->audit_path);
	audit_defer(tally.au);

	/* What the database says was stored. */
	memset(&rc_db, 0, sizeof(rc_db));
	rc_db.st = st;
	rc_db.store = store;
	rc_db.claims = claims;
	rc_db.nclaims = nclaims;
	rc_db.tally = &tally;
	if (state_foreach(st, FS_BIT(FS_STORED) | FS_BIT(FS_REMOVED) |
	    FS_BIT(FS_ARCHIVED), recon_one, &rc_db) == -1)
		goto out;
	/* Audit claims the database does not back (or at another key). */
	for (i = 0; i < nclaims; i++) {
		size_t k;

		if (claims[i].checked)
			continue;
		for (k = i + 1; k < nclaims; k++)
			if (strcmp(claims[k].fid, claims[i].fid) == 0 &&
			    strcmp(claims[k].key, claims[i].key) == 0)
				claims[k].checked = 1;
		memset(&sub, 0, sizeof(sub));
		sub.source = "trail";
		sub.fid = claims[i].fid;
		sub.partner = claims[i].partner;
		sub.path = claims[i].path;
		sub.key = claims[i].key;
		sub.version_id = claims[i].version_id;
		sub.sha256 = claims[i].sha256;
		sub.recorded = claims[i].checksum;
		check(store, &tally, &sub);
	}
	record_run(&tally);
	bad = tally.n[V_MISSING] + tally.n[V_MISMATCHED] +
	    tally.n[V_NO_CHECKSUM] + tally.n[V_ERROR];
	printf("reconcile: %d proven, %d unproven\n", tally.n[V_PROVEN], bad);
	rc = bad > 0 ? 1 : 0;
out:
	audit_close(tally.au);
	free(line);
	free(claims);
	store_close(store);
	state_close(st);
	config_free(loaded);
	return rc;
}
