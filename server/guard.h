/*
 * guard.h - the listener's connection guard: connection and session limits,
 * the global allow/deny list, and the brute-force ban table.
 *
 * The listener is the one process that sees every connection from accept to
 * exit, so it keeps all of this state in memory (struct guard) and decides:
 *   at accept (before key exchange): banned address, global deny/allow,
 *     max_startups_per_address, max_startups (with random early drop
 *     between its start and full thresholds), the process cap;
 *   at login (asked by the session over its socketpair, see guard_ask):
 *     user banned from this prefix, max_sessions, per partner, per address.
 * Addresses are counted, limited and banned by their ban key
 * (guard_ban_key): an IPv4 address (IPv4-mapped IPv6 counts as IPv4) by
 * itself, an IPv6 address by its /64, since one host commonly holds a whole
 * /64. So max_startups_per_address and max_sessions_per_address count per
 * ban key too.
 * Random early drop, as OpenSSH's "MaxStartups start:rate:full": with n
 * connections not yet authenticated, a new one is admitted while
 * n < start, refused at random with probability rate% at n == start rising
 * linearly to 100% at n == full, and always refused at n >= full. The
 * random source is arc4random_uniform (guard_set_rand replaces it in tests).
 * Sessions report each failed attempt (GUARD_MSG_FAIL); the listener counts
 * failures per address (ban key) and per (configured partner name, ban key)
 * over ban_window_s and bans for ban_duration_s, doubling on each repeat ban
 * (capped at 7 days; the repeat count is forgotten after a day without
 * failures). A user ban is a ban of that user's password logins from that
 * prefix only: failures from one prefix never lock the partner out from
 * another, and never block its key logins.
 * The ban table survives restarts: the listener saves it (guard_save) to
 * state_dir/bans.json on each new ban and at exit, and loads it at start
 * (guard_load). It holds ban keys, partner names and times, nothing secret.
 *
 * Ownership: struct guard is owned by its creator (guard_new/guard_free); it
 * borrows nothing. Strings passed in are copied.
 */
#ifndef SLUICE_GUARD_H
#define SLUICE_GUARD_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "policy/config.h"

/* The server block's limits with every default applied. */
struct guard_limits {
	int	 max_sessions;			/* authenticated, all partners */
	int	 max_sessions_per_partner;
	int	 max_sessions_per_address;
	int	 max_startups;			/* connections not yet authenticated
						 * ("full": all refused from here) */
	int	 max_startups_begin;		/* "start": random drop from here,
						 * 1..max_startups (== it: none) */
	int	 max_startups_rate;		/* percent refused at start, 1..100 */
	int	 max_startups_per_address;
	int64_t	 login_grace_s;
	int64_t	 idle_timeout_s;
	int	 max_auth_tries;
	int	 ban_failures;			/* 1..GUARD_MAX_FAILURES */
	int64_t	 ban_window_s;
	int64_t	 ban_duration_s;
};

#define GUARD_MAX_FAILURES	64
#define GUARD_MAX_TRACKED	4096	/* addresses, and (user, prefix) pairs,
					 * with recent failures */
#define GUARD_MAX_BAN_S		(7 * 86400)

/* Fills l from the config's server block (0 means "the default"). */
void guard_limits(const struct server_config *, struct guard_limits *l);

enum guard_verdict {
	GUARD_OK = 0,
	GUARD_BANNED,		/* address banned */
	GUARD_DENY_FROM,	/* address in server.deny_from */
	GUARD_NOT_ALLOWED,	/* address not in server.allow_from */
	GUARD_MAX_STARTUPS,
	GUARD_MAX_STARTUPS_ADDR,
	GUARD_STARTUPS_DROP,	/* random early drop above max_startups' start */
	GUARD_MAX_CONNECTIONS,	/* max_sessions + max_startups processes */
	GUARD_USER_BANNED,
	GUARD_MAX_SESSIONS,
	GUARD_MAX_SESSIONS_PARTNER,
	GUARD_MAX_SESSIONS_ADDR,
	GUARD_ERROR,		/* the listener did not answer: refuse */
};

/* A short operator-facing reason ("max_startups_per_address (8) reached"). */
const char *guard_verdict_str(enum guard_verdict);
/* The config key an operator would change, or NULL. */
const char *guard_verdict_key(enum guard_verdict);

struct guard;

/* NULL on allocation failure. cfg is borrowed for the guard's lifetime. */
struct guard *guard_new(const struct config *cfg);
void guard_free(struct guard *);
/* A reloaded configuration (borrowed from now on): its limits and lists
 * apply to the connections and logins from now on. The connection table
 * keeps its size (server.max_sessions and max_startups change only with a
 * restart). */
void guard_set_config(struct guard *, const struct config *cfg);
const struct guard_limits *guard_get_limits(const struct guard *);

/* Normalised numeric address of sa ("192.0.2.1", "2001:db8::1"; an
 * IPv4-mapped IPv6 address is written as IPv4) into out. 0 or -1. */
int guard_addr(const struct sockaddr *sa, char *out, size_t outlen);

/* The key failures and bans of the numeric address addr count against:
 * "192.0.2.1" for IPv4 and IPv4-mapped IPv6, "2001:db8:1:2::/64" for IPv6.
 * Anything else (an existing key, "unknown") is copied. 0 or -1. */
int guard_ban_key(const char *addr, char *out, size_t outlen);

/* May a new connection from sa (numeric form addr) be admitted now? */
enum guard_verdict guard_admit(struct guard *, const struct sockaddr *sa,
    const char *addr, int64_t now_s);
/*
 * The random source of the early drop: rand(upper, arg) returns a uniform
 * number in [0, upper). NULL restores arc4random_uniform. For tests, so a
 * drop sequence is deterministic; arg is borrowed.
 */
void guard_set_rand(struct guard *, uint32_t (*rand)(uint32_t upper,
    void *arg), void *arg);
/* The percentage of new connections the early drop refuses with startups
 * connections not yet authenticated: 0 below start, 100 from full. */
int guard_drop_percent(const struct guard_limits *, int startups);
/* Records an admitted connection's process. 0, or -1 when the table is full. */
int guard_conn_add(struct guard *, pid_t pid, const char *addr);
void guard_conn_remove(struct guard *, pid_t pid);
/* The session pid authenticated as partner: counts it against the session
 * limits (partner_max: the partner's own max_sessions, 0 for the default)
 * and, if within them, moves it from the startups to the sessions. */
/* by_key: a public-key login, which a user ban does not block. */
enum guard_verdict guard_conn_login(struct guard *, pid_t pid,
    const char *partner, int partner_max, int64_t now_s, int by_key);
/* Connections not yet authenticated / authenticated from the ban key of
 * addr (all connections when addr is NULL). Returns all connections. */
int guard_count(const struct guard *, const char *addr, int *startups,
    int *sessions);

int guard_addr_banned(struct guard *, const char *addr, int64_t now_s);
/* Whether user's password logins from the ban key of addr are banned. */
int guard_user_banned(struct guard *, const char *user, const char *addr,
    int64_t now_s);

/* What guard_failure did: a new ban of the address and/or the user. */
struct guard_ban {
	int	 addr_banned;		/* 1: addr is now banned */
	int64_t	 addr_duration_s;
	int	 user_banned;		/* 1: user is now banned from addr_key */
	int64_t	 user_duration_s;
	int	 failures;		/* failures of addr in the window */
	char	 addr_key[64];		/* guard_ban_key of addr */
};

/* One failed authentication from addr for user (user may be NULL; only
 * names of configured partners are tracked, per ban key of addr). Fills
 * *ban. */
void guard_failure(struct guard *, const char *addr, const char *user,
    int64_t now_s, struct guard_ban *ban);

/* --- the ban table on disk (SPOOL_BANS, spool/layout.h) -------------------- */

/* Writes the bans, the repeat counts still remembered and the failures
 * still in the window to path, crash-safely (temp file, fsync, rename,
 * fsync of the directory), mode 0600. 0, or -1 with errno set. */
int guard_save(struct guard *, const char *path, int64_t now_s);
/* Replaces the table with the one in path, dropping what has expired by
 * now_s (and user entries for names no longer configured). A version 1
 * table (global user bans) loads its address entries; its user entries are
 * dropped with a log line. 0 when loaded or when path does not exist; -1
 * when it cannot be read or is not a ban table: a warning naming the file
 * is logged and the table is left empty (the server starts anyway). */
int guard_load(struct guard *, const char *path, int64_t now_s);

/* --- the session <-> listener socketpair (SOCK_SEQPACKET) ------------------ */

enum guard_msg_type {
	GUARD_MSG_FAIL = 1,	/* no reply */
	GUARD_MSG_CHECK_USER,	/* reply: GUARD_OK or GUARD_USER_BANNED (from
				 * the connection's own address, which the
				 * listener knows; the session does not say) */
	GUARD_MSG_LOGIN,	/* reply: a guard_verdict */
};

struct guard_msg {
	uint32_t type;
	char	 name[128];	/* user (FAIL, CHECK_USER) or partner (LOGIN) */
	int32_t	 partner_max;	/* LOGIN */
	int32_t	 by_key;	/* LOGIN: public-key login, which a user ban does
				 * not block (keys cannot be guessed; a ban on a
				 * name must not lock a key-only partner out) */
};

/* Session side: sends m, and for messages with a reply waits up to
 * timeout_ms for it. Returns the verdict; GUARD_ERROR if the listener did
 * not answer (the caller refuses). fd -1 (no listener, e.g. in tests)
 * answers GUARD_OK. */
enum guard_verdict guard_ask(int fd, const struct guard_msg *m, int timeout_ms);

#endif
