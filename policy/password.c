/*
 * password.c - the partners' password checks of policy.h: crypt(3)
 * (libxcrypt). Its own file so that a session process, which never checks
 * a password (the listener does), does not link libcrypt.
 */
#include "policy/policy.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/*
 * Spent on unknown partners and partners without a password so they cost the
 * same as a real check: yescrypt with libxcrypt's default cost, the same as
 * `mkpasswd -m yescrypt`. The password behind it is irrelevant.
 */
static const char dummy_hash[] =
    "$y$j9T$gP.S3gn/B.d9ob8lyesZO0$/wIs8nnZA9/5mTU4SIRvqrYKjt/F55LsUDdqI/P8g8C";

const char *
policy_hash_problem(const char *h)
{
	static const char *const strong[] = {
		"$y$", "$gy$", "$7$", "$6$", "$5$", "$2b$", "$2y$", "$2a$"
	};
	static const char *const weak[] = {
		"$1$", "$md5", "$sha1$", "$3$", "$2$", "$2x$", "$sha1"
	};
	static const char weakmsg[] = "weak hash scheme; generate a strong "
	    "one with: mkpasswd -m yescrypt";
	const char *last;
	size_t i, tail, n = strlen(h);
	int good = 0;

	for (i = 0; i < sizeof(weak) / sizeof(weak[0]); i++)
		if (strncmp(h, weak[i], strlen(weak[i])) == 0)
			return weakmsg;
	if ((n == 13 && strspn(h, "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz") == 13) ||
	    (n == 20 && h[0] == '_'))
		return weakmsg;		/* traditional / BSDi DES */
	for (i = 0; i < sizeof(strong) / sizeof(strong[0]); i++)
		if (strncmp(h, strong[i], strlen(strong[i])) == 0)
			good = 1;
	if (!good)
		return "not a crypt(3) hash ($y$... yescrypt, $6$... "
		    "sha512-crypt or $2b$... bcrypt); generate one with: "
		    "mkpasswd -m yescrypt";
	/* The setting must be one this libxcrypt accepts, and the hash part
	 * must be all there, so "$6$..." (a bare salt) or a cut-off hash is
	 * caught here. Cheap on purpose: no crypt(3) run per partner. */
	i = (size_t)crypt_checksalt(h);
	if (i != CRYPT_SALT_OK && i != CRYPT_SALT_METHOD_LEGACY)	/* $5$ */
		return "not a usable crypt(3) hash (malformed settings?); "
		    "generate one with: mkpasswd -m yescrypt";
	last = strrchr(h, '$');
	tail = strlen(last + 1);
	if (strncmp(h, "$2", 2) == 0)
		good = n == 60 && tail == 53;
	else if (strncmp(h, "$6$", 3) == 0)
		good = tail == 86;
	else
		good = tail == 43;	/* yescrypt, gost-yescrypt, scrypt, sha256 */
	if (good && strspn(last + 1, "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz") != tail)
		good = 0;
	if (!good)
		return "not a complete crypt(3) hash (a salt only, or cut "
		    "off?); generate one with: mkpasswd -m yescrypt";
	return NULL;
}

/* Longer passwords are refused (after the dummy work): sha512-crypt's cost
 * grows with the length, so a huge one would be a cheap denial of service. */
#define PASSWORD_MAX	1024

int
policy_password_ok(const struct partner *p, const char *password)
{
	struct crypt_data *cd;
	const char *hash, *res;
	size_t hlen;
	int real, ok = 0;

	real = p != NULL && p->password_hash != NULL &&
	    p->password_hash[0] != '\0' && password != NULL &&
	    strnlen(password, PASSWORD_MAX + 1) <= PASSWORD_MAX;
	hash = real ? p->password_hash : dummy_hash;
	if (password == NULL || !real)
		password = "";

	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return 0;
	res = crypt_r(password, hash, cd);
	hlen = strlen(hash);
	if (real && res != NULL && res[0] != '*' && strlen(res) == hlen &&
	    CRYPTO_memcmp(res, hash, hlen) == 0)
		ok = 1;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}
