/*
 * policy.h - decisions about a partner, as pure functions over the config
 * structs: may this address log in, does this password match, which object
 * key does a file get. No I/O except crypt(3).
 */
#ifndef SLUICE_POLICY_H
#define SLUICE_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "policy/config.h"

/* 1 if sa (AF_INET, AF_INET6, or IPv4-mapped IPv6) lies in c, else 0. */
int cidr_match(const struct cidr *c, const struct sockaddr *sa);

/* 1 if the partner may connect from sa (an empty allow_from allows all). */
int policy_addr_allowed(const struct partner *p, const struct sockaddr *sa);

/*
 * 1 if password matches p->password_hash via crypt_r(3), compared in
 * constant time; 0 otherwise (also when p is NULL or has no hash, after
 * spending comparable time, so unknown users are not told apart by timing).
 */
int policy_password_ok(const struct partner *p, const char *password);

/*
 * NULL if h is a complete crypt(3) hash with a strong scheme (yescrypt,
 * gost-yescrypt, scrypt, sha512/256-crypt, bcrypt) that this libxcrypt
 * accepts, else a static string saying why not and how to make a good one.
 * The reason never contains the hash. Cheap: no crypt(3) run.
 */
const char *policy_hash_problem(const char *h);

struct objkey_vars {
	const char	*partner;
	const char	*path;		/* inside the partner root, no leading '/' */
	const char	*sha256;	/* 64 hex chars */
	int64_t		 received_ms;	/* wall clock, for {yyyy} {mm} {dd} (UTC) */
};

/*
 * Expands tmpl ({partner} {path} {yyyy} {mm} {dd} {filename} {sha256}) into
 * out, after prefix (which may be "" and is copied verbatim). Returns 0, or -1
 * on an unknown placeholder, truncation, or a result that is empty, starts with
 * '/', or contains a "." or ".." segment, "//", or a control character.
 */
int objkey_expand(const char *prefix, const char *tmpl,
    const struct objkey_vars *v, char *out, size_t outlen);

/* 0 if tmpl has only known placeholders and balanced braces, else -1 with a
 * static message in *why. Used by the loader. */
int objkey_check(const char *tmpl, const char **why);

#endif
