/*
 * guard.c - connection limits, the global allow/deny list and the
 * brute-force ban table, kept by the listener (see guard.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "policy/policy.h"
#include "server/guard.h"
#include "server/monitor.h"

#define FORGET_REPEATS_S	86400
#define BANS_VERSION		2	/* 1: user bans were global */
#define BANS_MAX_BYTES		(32 * 1024 * 1024)	/* a sane table is < 4 MiB */
#define BANS_MAX_REPEATS	32

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0xff, 0xff };

struct conn {
	pid_t	 pid;		/* 0: free slot */
	char	 addr[INET6_ADDRSTRLEN];
	char	 key[64];	/* guard_ban_key of addr: what limits count */
	char	 partner[65];
	int	 authed;
};

struct tracker {
	char	 key[128];	/* ban key, or "user prefix"; "" when free */
	int64_t	 fails[GUARD_MAX_FAILURES];
	int	 nfails;
	int64_t	 ban_until;
	int	 nbans;		/* bans so far: the next lasts 2^nbans times */
	int64_t	 last;		/* last failure */
};

struct guard {
	const struct config	*cfg;
	struct guard_limits	 lim;
	struct conn		*conns;
	int			 nconns;	/* slots */
	struct tracker		*addrs;		/* GUARD_MAX_TRACKED */
	struct tracker		*users;		/* GUARD_MAX_TRACKED (user, prefix) */
	uint32_t		(*rand)(uint32_t, void *);
	void			*rand_arg;
};

static int
dflt(int v, int d)
{
	return v > 0 ? v : d;
}

static int64_t
dflt64(int64_t v, int64_t d)
{
	return v > 0 ? v : d;
}

void
guard_limits(const struct server_config *sc, struct guard_limits *l)
{
	l->max_sessions = dflt(sc->max_sessions, 256);
	l->max_sessions_per_partner = dflt(sc->max_sessions_per_partner, 16);
	l->max_sessions_per_address = dflt(sc->max_sessions_per_address, 32);
	l->max_startups = dflt(sc->max_startups, 64);
	if (sc->max_startups_begin > 0) {	/* "start:rate:full" */
		l->max_startups_begin = sc->max_startups_begin;
		l->max_startups_rate = dflt(sc->max_startups_rate, 30);
	} else if (sc->max_startups > 0) {	/* a plain number: a hard cap */
		l->max_startups_begin = l->max_startups;
		l->max_startups_rate = 100;
	} else {
		l->max_startups_begin = l->max_startups / 2;
		l->max_startups_rate = 30;
	}
	if (l->max_startups_begin < 1)
		l->max_startups_begin = 1;
	if (l->max_startups_begin > l->max_startups)
		l->max_startups_begin = l->max_startups;
	if (l->max_startups_rate > 100)
		l->max_startups_rate = 100;
	l->max_startups_per_address = dflt(sc->max_startups_per_address, 8);
	l->login_grace_s = dflt64(sc->login_grace_s, 60);
	l->idle_timeout_s = dflt64(sc->idle_timeout_s, 1800);
	l->max_auth_tries = dflt(sc->max_auth_tries, 6);
	l->ban_failures = dflt(sc->ban_failures, 10);
	if (l->ban_failures > GUARD_MAX_FAILURES)
		l->ban_failures = GUARD_MAX_FAILURES;
	l->ban_window_s = dflt64(sc->ban_window_s, 600);
	l->ban_duration_s = dflt64(sc->ban_duration_s, 900);
	if (l->ban_duration_s > GUARD_MAX_BAN_S)
		l->ban_duration_s = GUARD_MAX_BAN_S;
}

const char *
guard_verdict_str(enum guard_verdict v)
{
	switch (v) {
	case GUARD_OK:			return "allowed";
	case GUARD_BANNED:		return "address temporarily banned after "
					    "repeated authentication failures";
	case GUARD_DENY_FROM:		return "address in server.deny_from";
	case GUARD_NOT_ALLOWED:		return "address not in server.allow_from";
	case GUARD_MAX_STARTUPS:	return "too many unauthenticated "
					    "connections";
	case GUARD_MAX_STARTUPS_ADDR:	return "too many unauthenticated "
					    "connections from this address";
	case GUARD_STARTUPS_DROP:	return "many unauthenticated "
					    "connections: dropped at random";
	case GUARD_MAX_CONNECTIONS:	return "too many connections";
	case GUARD_USER_BANNED:		return "user temporarily banned after "
					    "repeated authentication failures";
	case GUARD_MAX_SESSIONS:	return "too many sessions";
	case GUARD_MAX_SESSIONS_PARTNER: return "too many sessions for this "
					    "partner";
	case GUARD_MAX_SESSIONS_ADDR:	return "too many sessions from this "
					    "address";
	case GUARD_ERROR:		return "the listener did not answer";
	}
	return "unknown";
}

const char *
guard_verdict_key(enum guard_verdict v)
{
	switch (v) {
	case GUARD_BANNED:
	case GUARD_USER_BANNED:		return "server.ban_failures";
	case GUARD_DENY_FROM:		return "server.deny_from";
	case GUARD_NOT_ALLOWED:		return "server.allow_from";
	case GUARD_MAX_STARTUPS:
	case GUARD_STARTUPS_DROP:	return "server.max_startups";
	case GUARD_MAX_STARTUPS_ADDR:	return "server.max_startups_per_address";
	case GUARD_MAX_CONNECTIONS:	return "server.max_sessions";
	case GUARD_MAX_SESSIONS:	return "server.max_sessions";
	case GUARD_MAX_SESSIONS_PARTNER: return "partners[].max_sessions";
	case GUARD_MAX_SESSIONS_ADDR:	return "server.max_sessions_per_address";
	default:			return NULL;
	}
}

struct guard *
guard_new(const struct config *cfg)
{
	struct guard *g;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	g->cfg = cfg;
	guard_limits(&cfg->server, &g->lim);
	g->nconns = g->lim.max_sessions + g->lim.max_startups;
	if ((g->conns = calloc((size_t)g->nconns, sizeof(*g->conns))) == NULL ||
	    (g->addrs = calloc(GUARD_MAX_TRACKED, sizeof(*g->addrs))) == NULL ||
	    (g->users = calloc(GUARD_MAX_TRACKED, sizeof(*g->users))) == NULL)
		goto fail;
	return g;
fail:
	guard_free(g);
	return NULL;
}

void
guard_set_config(struct guard *g, const struct config *cfg)
{
	g->cfg = cfg;
	guard_limits(&cfg->server, &g->lim);
}

void
guard_free(struct guard *g)
{
	if (g == NULL)
		return;
	free(g->conns);
	free(g->addrs);
	free(g->users);
	free(g);
}

const struct guard_limits *
guard_get_limits(const struct guard *g)
{
	return &g->lim;
}

int
guard_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
	const struct sockaddr_in6 *s6;

	if (sa->sa_family == AF_INET) {
		if (inet_ntop(AF_INET, &((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr, out, (socklen_t)outlen) == NULL)
			return -1;
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	s6 = (const struct sockaddr_in6 *)(const void *)sa;
	if (memcmp(s6->sin6_addr.s6_addr, v4mapped, sizeof(v4mapped)) == 0)
		return inet_ntop(AF_INET, s6->sin6_addr.s6_addr + 12, out,
		    (socklen_t)outlen) == NULL ? -1 : 0;
	return inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)outlen) ==
	    NULL ? -1 : 0;
}

int
guard_ban_key(const char *addr, char *out, size_t outlen)
{
	struct in6_addr a6;
	char buf[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET6, addr, &a6) != 1)
		return xstrlcpy(out, addr, outlen) >= outlen ? -1 : 0;
	if (memcmp(a6.s6_addr, v4mapped, sizeof(v4mapped)) == 0)
		return inet_ntop(AF_INET, a6.s6_addr + 12, out,
		    (socklen_t)outlen) == NULL ? -1 : 0;
	memset(a6.s6_addr + 8, 0, 8);
	if (inet_ntop(AF_INET6, &a6, buf, sizeof(buf)) == NULL)
		return -1;
	return xsnprintf(out, outlen, "%s/64", buf) == -1 ? -1 : 0;
}

/* --- the ban table -------------------------------------------------------- */

static struct tracker *
tracker_find(struct tracker *t, size_t n, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (t[i].key[0] != '\0' && strcmp(t[i].key, key) == 0)
			return &t[i];
	return NULL;
}

/* A slot for a new key in table tab (GUARD_MAX_TRACKED slots): a free one,
 * else the one with the oldest activity that is not banned, else the ban
 * that ends first. */
static struct tracker *
tracker_new(struct tracker *tab, const char *key, int64_t now)
{
	struct tracker *t, *old = NULL, *soon = NULL;
	size_t i;

	for (i = 0; i < GUARD_MAX_TRACKED; i++) {
		t = &tab[i];
		if (t->key[0] == '\0')
			break;
		if (t->ban_until <= now) {
			if (old == NULL || t->last < old->last)
				old = t;
		} else if (soon == NULL || t->ban_until < soon->ban_until)
			soon = t;
	}
	if (i == GUARD_MAX_TRACKED)
		t = old != NULL ? old : soon;
	memset(t, 0, sizeof(*t));
	xstrlcpy(t->key, key, sizeof(t->key));
	return t;
}

static int
tracker_banned(const struct tracker *t, int64_t now)
{
	return t != NULL && t->ban_until > now;
}

/* Adds one failure; returns the new ban's duration, or 0. */
static int64_t
tracker_fail(struct tracker *t, const struct guard_limits *l, int64_t now)
{
	int i, j;
	int64_t d;

	if (tracker_banned(t, now))
		return 0;	/* refused anyway; does not lengthen the ban */
	if (t->last != 0 && now - t->last > FORGET_REPEATS_S)
		t->nbans = 0;
	t->last = now;
	for (i = j = 0; i < t->nfails; i++)
		if (now - t->fails[i] < l->ban_window_s)
			t->fails[j++] = t->fails[i];
	t->nfails = j;
	if (t->nfails < GUARD_MAX_FAILURES)
		t->fails[t->nfails++] = now;
	if (t->nfails < l->ban_failures)
		return 0;
	d = l->ban_duration_s;
	for (i = 0; i < t->nbans && d < GUARD_MAX_BAN_S; i++)
		d *= 2;
	if (d > GUARD_MAX_BAN_S)
		d = GUARD_MAX_BAN_S;
	t->nbans++;
	t->nfails = 0;
	t->ban_until = now + d;
	return d;
}

/* The ban key of addr; addr itself (truncated) if it has none. */
static void
addr_key(const char *addr, char *key, size_t len)
{
	if (guard_ban_key(addr, key, len) == -1)
		xstrlcpy(key, addr, len);
}

int
guard_addr_banned(struct guard *g, const char *addr, int64_t now)
{
	char key[64];

	addr_key(addr, key, sizeof(key));
	return tracker_banned(tracker_find(g->addrs, GUARD_MAX_TRACKED, key),
	    now);
}

/* The users table's key for (user, ban key of addr): "user prefix" (a
 * partner name has no space). -1 if user is not a configured partner. */
static int
user_key(struct guard *g, const char *user, const char *addr, char *key,
    size_t len)
{
	char ak[64];

	if (user == NULL || config_partner(g->cfg, user) == NULL)
		return -1;
	addr_key(addr, ak, sizeof(ak));
	return xsnprintf(key, len, "%s %s", user, ak);
}

int
guard_user_banned(struct guard *g, const char *user, const char *addr,
    int64_t now)
{
	char key[128];

	if (user_key(g, user, addr, key, sizeof(key)) == -1)
		return 0;
	return tracker_banned(tracker_find(g->users, GUARD_MAX_TRACKED, key),
	    now);
}

void
guard_failure(struct guard *g, const char *addr, const char *user,
    int64_t now, struct guard_ban *ban)
{
	struct tracker *t;
	char ukey[128];

	memset(ban, 0, sizeof(*ban));
	addr_key(addr, ban->addr_key, sizeof(ban->addr_key));
	if ((t = tracker_find(g->addrs, GUARD_MAX_TRACKED, ban->addr_key)) ==
	    NULL)
		t = tracker_new(g->addrs, ban->addr_key, now);
	ban->addr_duration_s = tracker_fail(t, &g->lim, now);
	ban->addr_banned = ban->addr_duration_s > 0;
	ban->failures = ban->addr_banned ? g->lim.ban_failures : t->nfails;
	if (user_key(g, user, addr, ukey, sizeof(ukey)) == -1)
		return;
	if ((t = tracker_find(g->users, GUARD_MAX_TRACKED, ukey)) == NULL)
		t = tracker_new(g->users, ukey, now);
	ban->user_duration_s = tracker_fail(t, &g->lim, now);
	ban->user_banned = ban->user_duration_s > 0;
}

/* --- the ban table on disk --------------------------------------------- */

/*
 * bans.json:
 *   {"version": 2, "saved": T,
 *    "addresses": [{"key": "2001:db8:1:2::/64", "ban_until": T, "bans": N,
 *                   "last": T, "fails": [T, ...]}, ...],
 *    "users": [{"key": "acme", "prefix": "192.0.2.7", ...}, ...]}
 * T are seconds since the epoch; "bans" is the repeat count that makes the
 * next ban last 2^bans times ban_duration; "fails" are the failures still
 * inside the window. A user entry counts the partner's password failures
 * from one ban key ("prefix"). Version 1 had global user entries without a
 * prefix: guard_load drops those.
 */

/* Whether t still matters at now. */
static int
tracker_live(const struct tracker *t, const struct guard_limits *l,
    int64_t now)
{
	int i;

	if (t->key[0] == '\0')
		return 0;
	if (t->ban_until > now)
		return 1;
	if (t->nbans > 0 && now - t->last <= FORGET_REPEATS_S)
		return 1;
	for (i = 0; i < t->nfails; i++)
		if (now - t->fails[i] < l->ban_window_s)
			return 1;
	return 0;
}

static json_t *
trackers_json(const struct tracker *t, int user, const struct guard_limits *l,
    int64_t now)
{
	json_t *arr, *e, *f;
	char key[sizeof(t->key)], *prefix;
	size_t i;
	int j;

	if ((arr = json_array()) == NULL)
		return NULL;
	for (i = 0; i < GUARD_MAX_TRACKED; i++) {
		if (!tracker_live(&t[i], l, now))
			continue;
		xstrlcpy(key, t[i].key, sizeof(key));
		prefix = NULL;
		if (user) {
			if ((prefix = strchr(key, ' ')) == NULL)
				continue;	/* cannot happen: user_key() */
			*prefix++ = '\0';
		}
		if ((f = json_array()) == NULL)
			goto fail;
		for (j = 0; j < t[i].nfails; j++)
			if (now - t[i].fails[j] < l->ban_window_s &&
			    json_array_append_new(f,
			    json_integer(t[i].fails[j])) == -1) {
				json_decref(f);
				goto fail;
			}
		e = json_pack("{s:s,s:I,s:i,s:I,s:o}", "key", key,
		    "ban_until", (json_int_t)t[i].ban_until, "bans", t[i].nbans,
		    "last", (json_int_t)t[i].last, "fails", f);
		if (e != NULL && prefix != NULL &&
		    json_object_set_new(e, "prefix", json_string(prefix)) == -1) {
			json_decref(e);
			goto fail;
		}
		if (e == NULL || json_array_append_new(arr, e) == -1)
			goto fail;
	}
	return arr;
fail:
	json_decref(arr);
	return NULL;
}

int
guard_save(struct guard *g, const char *path, int64_t now)
{
	json_t *root = NULL, *addrs, *users;
	char *text = NULL;
	int rc = -1;

	addrs = trackers_json(g->addrs, 0, &g->lim, now);
	users = trackers_json(g->users, 1, &g->lim, now);
	if (addrs == NULL || users == NULL) {
		json_decref(addrs);
		json_decref(users);
		goto fail;
	}
	root = json_pack("{s:i,s:I,s:o,s:o}", "version", BANS_VERSION,
	    "saved", (json_int_t)now, "addresses", addrs, "users", users);
	if (root == NULL || (text = json_dumps(root, JSON_COMPACT)) == NULL)
		goto fail;
	rc = write_file_atomic(path, text, strlen(text), 0600);
	free(text);
	json_decref(root);
	return rc;
fail:
	json_decref(root);
	errno = ENOMEM;
	return -1;
}

static void
table_clear(struct tracker *tab)
{
	size_t i;

	/* only the slots in use: writing the whole 2.7 MB table would make it
	 * resident in the listener and in every session it forks */
	for (i = 0; i < GUARD_MAX_TRACKED; i++)
		if (tab[i].key[0] != '\0' || tab[i].nfails != 0 ||
		    tab[i].nbans != 0)
			memset(&tab[i], 0, sizeof(tab[i]));
}

/* Empties the table. */
static void
bans_clear(struct guard *g)
{
	table_clear(g->addrs);
	table_clear(g->users);
}

/* One entry of the file into g. 0 (kept or dropped as expired), -1 if it
 * is malformed. */
static int
entry_load(struct guard *g, json_t *e, int user, int64_t now)
{
	struct tracker t, *dst, *tab = user ? g->users : g->addrs;
	json_t *fails, *v;
	json_int_t ban_until, last;
	const char *key, *prefix = NULL;
	size_t i;
	int nbans;

	memset(&t, 0, sizeof(t));
	if (json_unpack(e, "{s:s,s:I,s:i,s:I,s:o}", "key", &key, "ban_until",
	    &ban_until, "bans", &nbans, "last", &last, "fails", &fails) == -1 ||
	    !json_is_array(fails) || key[0] == '\0' || nbans < 0)
		return -1;
	if (user) {
		if (json_unpack(e, "{s:s}", "prefix", &prefix) == -1 ||
		    prefix[0] == '\0' || strchr(key, ' ') != NULL)
			return -1;
		/* a partner no longer configured is forgotten */
		if (config_partner(g->cfg, key) == NULL)
			return 0;
		if (user_key(g, key, prefix, t.key, sizeof(t.key)) == -1)
			return -1;
	} else if (guard_ban_key(key, t.key, sizeof(t.key)) == -1)
		return -1;
	/* A clock that went back must not make a ban endless. */
	t.ban_until = ban_until < now + GUARD_MAX_BAN_S ? ban_until :
	    now + GUARD_MAX_BAN_S;
	/* Nor can a time before the epoch make now - t overflow. */
	t.last = last < 0 ? 0 : last < now ? last : now;
	t.nbans = nbans < BANS_MAX_REPEATS ? nbans : BANS_MAX_REPEATS;
	json_array_foreach(fails, i, v) {
		if (!json_is_integer(v))
			return -1;
		if (t.nfails < GUARD_MAX_FAILURES && json_integer_value(v) >= 0 &&
		    now - json_integer_value(v) < g->lim.ban_window_s)
			t.fails[t.nfails++] = json_integer_value(v) < now ?
			    json_integer_value(v) : now;
	}
	if (!tracker_live(&t, &g->lim, now))
		return 0;
	if ((dst = tracker_find(tab, GUARD_MAX_TRACKED, t.key)) == NULL)
		dst = tracker_new(tab, t.key, now);
	*dst = t;
	return 0;
}

int
guard_load(struct guard *g, const char *path, int64_t now)
{
	json_t *root = NULL, *addrs, *users, *e;
	json_error_t err;
	struct stat st;
	const char *why = NULL;
	size_t i;
	int fd, version;

	bans_clear(g);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		why = strerror(errno);
		goto fail;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > BANS_MAX_BYTES) {
		why = "not a regular file of a sane size";
		close(fd);
		goto fail;
	}
	root = json_loadfd(fd, JSON_REJECT_DUPLICATES, &err);
	close(fd);
	if (root == NULL) {
		why = err.text;
		goto fail;
	}
	if (json_unpack(root, "{s:i,s:o,s:o}", "version", &version,
	    "addresses", &addrs, "users", &users) == -1 ||
	    version < 1 || version > BANS_VERSION || !json_is_array(addrs) ||
	    !json_is_array(users)) {
		why = "not a version 1 or 2 ban table";
		goto fail;
	}
	json_array_foreach(addrs, i, e)
		if (entry_load(g, e, 0, now) == -1) {
			why = "malformed address entry";
			goto fail;
		}
	if (version == 1) {
		/* global user bans: a lock-out anyone could provoke */
		if (json_array_size(users) > 0)
			log_info("ban table %s: %zu user entr%s of the old "
			    "global form dropped (user bans now hold per "
			    "source prefix); address bans kept", path,
			    json_array_size(users),
			    json_array_size(users) == 1 ? "y" : "ies");
		users = NULL;
	}
	if (users != NULL)
		json_array_foreach(users, i, e)
			if (entry_load(g, e, 1, now) == -1) {
				why = "malformed user entry";
				goto fail;
			}
	json_decref(root);
	return 0;
fail:
	log_warnx("ban table %s cannot be used (%s); starting with no bans. "
	    "Remove or repair the file; it is rewritten at the next ban",
	    path, why);
	json_decref(root);
	bans_clear(g);
	return -1;
}

/* --- connections ------------------------------------------------------- */

int
guard_count(const struct guard *g, const char *addr, int *startups,
    int *sessions)
{
	char key[64];
	int i, n = 0;

	*startups = *sessions = 0;
	if (addr != NULL)
		addr_key(addr, key, sizeof(key));
	for (i = 0; i < g->nconns; i++) {
		if (g->conns[i].pid == 0)
			continue;
		n++;
		if (addr != NULL && strcmp(g->conns[i].key, key) != 0)
			continue;
		if (g->conns[i].authed)
			(*sessions)++;
		else
			(*startups)++;
	}
	return n;
}

void
guard_set_rand(struct guard *g, uint32_t (*rnd)(uint32_t, void *), void *arg)
{
	g->rand = rnd;
	g->rand_arg = arg;
}

int
guard_drop_percent(const struct guard_limits *l, int startups)
{
	if (startups >= l->max_startups)
		return 100;
	if (startups < l->max_startups_begin)
		return 0;
	/* rate% at start, rising linearly to 100% at full (OpenSSH's
	 * drop_connection()); full > start here */
	return l->max_startups_rate + (100 - l->max_startups_rate) *
	    (startups - l->max_startups_begin) /
	    (l->max_startups - l->max_startups_begin);
}

/* Whether the early drop refuses a new connection with startups already
 * not authenticated. */
static int
early_drop(struct guard *g, int startups)
{
	int p = guard_drop_percent(&g->lim, startups);
	uint32_t r;

	if (p <= 0)
		return 0;
	r = g->rand != NULL ? g->rand(100, g->rand_arg) :
	    arc4random_uniform(100);
	return r < (uint32_t)p;
}

enum guard_verdict
guard_admit(struct guard *g, const struct sockaddr *sa, const char *addr,
    int64_t now)
{
	const struct server_config *sc = &g->cfg->server;
	int all, startups, sessions, astart, asess;
	size_t i;

	if (guard_addr_banned(g, addr, now))
		return GUARD_BANNED;
	for (i = 0; i < sc->ndeny_from; i++)
		if (cidr_match(&sc->deny_from[i], sa))
			return GUARD_DENY_FROM;
	if (sc->nallow_from > 0) {
		for (i = 0; i < sc->nallow_from; i++)
			if (cidr_match(&sc->allow_from[i], sa))
				break;
		if (i == sc->nallow_from)
			return GUARD_NOT_ALLOWED;
	}
	all = guard_count(g, NULL, &startups, &sessions);
	if (all >= g->nconns)
		return GUARD_MAX_CONNECTIONS;
	(void)guard_count(g, addr, &astart, &asess);
	if (astart >= g->lim.max_startups_per_address)
		return GUARD_MAX_STARTUPS_ADDR;
	/* Every process not yet counted as a session is a startup. */
	if (all - sessions >= g->lim.max_startups)
		return GUARD_MAX_STARTUPS;
	if (early_drop(g, all - sessions))
		return GUARD_STARTUPS_DROP;
	return GUARD_OK;
}

int
guard_conn_add(struct guard *g, pid_t pid, const char *addr)
{
	int i;

	for (i = 0; i < g->nconns; i++)
		if (g->conns[i].pid == 0) {
			memset(&g->conns[i], 0, sizeof(g->conns[i]));
			g->conns[i].pid = pid;
			xstrlcpy(g->conns[i].addr, addr,
			    sizeof(g->conns[i].addr));
			addr_key(addr, g->conns[i].key,
			    sizeof(g->conns[i].key));
			return 0;
		}
	return -1;
}

static struct conn *
conn_find(struct guard *g, pid_t pid)
{
	int i;

	for (i = 0; i < g->nconns; i++)
		if (g->conns[i].pid == pid)
			return &g->conns[i];
	return NULL;
}

void
guard_conn_remove(struct guard *g, pid_t pid)
{
	struct conn *c;

	if (pid > 0 && (c = conn_find(g, pid)) != NULL)
		memset(c, 0, sizeof(*c));
}

enum guard_verdict
guard_conn_login(struct guard *g, pid_t pid, const char *partner,
    int partner_max, int64_t now, int by_key)
{
	struct conn *c;
	int i, total = 0, mine = 0, here = 0;

	if ((c = conn_find(g, pid)) == NULL)
		return GUARD_ERROR;
	if (c->authed)
		return GUARD_ERROR;	/* one login per connection */
	if (!by_key && guard_user_banned(g, partner, c->addr, now))
		return GUARD_USER_BANNED;
	for (i = 0; i < g->nconns; i++) {
		if (g->conns[i].pid == 0 || !g->conns[i].authed)
			continue;
		total++;
		if (strcmp(g->conns[i].partner, partner) == 0)
			mine++;
		if (strcmp(g->conns[i].key, c->key) == 0)
			here++;
	}
	if (total >= g->lim.max_sessions)
		return GUARD_MAX_SESSIONS;
	if (mine >= (partner_max > 0 ? partner_max :
	    g->lim.max_sessions_per_partner))
		return GUARD_MAX_SESSIONS_PARTNER;
	if (here >= g->lim.max_sessions_per_address)
		return GUARD_MAX_SESSIONS_ADDR;
	c->authed = 1;
	xstrlcpy(c->partner, partner, sizeof(c->partner));
	return GUARD_OK;
}

/* --- the session side of the socketpair -------------------------------- */

enum guard_verdict
guard_ask(int fd, const struct guard_msg *m, int timeout_ms)
{
	uint32_t reply;
	ssize_t n;

	if (fd == -1)
		return GUARD_OK;
	if (m->type != GUARD_MSG_FAIL) {
		/* the same socketpair and round trip as the monitor's
		 * questions (server/monitor.h) */
		reply = monitor_ask(fd, m, sizeof(*m), timeout_ms);
		return reply > GUARD_ERROR ? GUARD_ERROR :
		    (enum guard_verdict)reply;
	}
	do
		n = send(fd, m, sizeof(*m), MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	return n == (ssize_t)sizeof(*m) ? GUARD_OK : GUARD_ERROR;
}
