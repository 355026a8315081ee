/*
 * hostkey.c - the SSH host keys and the algorithm policy in force: what the
 * supervisor makes sure of before the roles start (a missing key is
 * generated, a readable one refused) and what each session's ssh_bind is
 * set up with (server/session.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh/libssh.h>
#include <libssh/server.h>
#include <openssl/evp.h>

#include "common/log.h"
#include "common/util.h"
#include "policy/algos.h"
#include "server/server.h"

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

/* --- printing the fingerprints (`sluice host-keys`) ------------------------ */

/* Bits of an RSA key: the length of n in its public key blob. */
static int
rsa_bits(const ssh_key key)
{
	char *b64 = NULL;
	unsigned char *p, *blob = NULL;
	size_t b64len, len, off = 0, n = 0;
	uint32_t l;
	int i, bits = 0, dec;

	if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
		return 0;
	b64len = strlen(b64);
	if (b64len == 0 || b64len > INT_MAX ||
	    (blob = malloc(b64len)) == NULL ||
	    (dec = EVP_DecodeBlock(blob, (unsigned char *)b64,
	    (int)b64len)) < 0)
		goto out;
	len = (size_t)dec;
	while (b64len > 0 && b64[--b64len] == '=' && len > 0)
		len--;	/* EVP_DecodeBlock counts the padding */
	/* string "ssh-rsa", mpint e, mpint n */
	for (i = 0; i < 3; i++) {
		if (len - off < 4)
			goto out;
		l = (uint32_t)blob[off] << 24 | (uint32_t)blob[off + 1] << 16 |
		    (uint32_t)blob[off + 2] << 8 | blob[off + 3];
		off += 4;
		if (l > len - off)
			goto out;
		n = l;
		off += l;
	}
	p = blob + off - n;
	while (n > 0 && *p == 0) {
		p++;
		n--;
	}
	if (n > 0) {
		bits = (int)(n - 1) * 8;
		for (l = *p; l != 0; l >>= 1)
			bits++;
	}
out:
	free(blob);
	ssh_string_free_char(b64);
	return bits;
}

/* ssh-keygen's size and type name for a host key. */
static void
key_size_type(const ssh_key key, int *bits, const char **type)
{
	switch (ssh_key_type(key)) {
	case SSH_KEYTYPE_ED25519:
		*bits = 256;
		*type = "ED25519";
		break;
	case SSH_KEYTYPE_ECDSA_P256:
		*bits = 256;
		*type = "ECDSA";
		break;
	case SSH_KEYTYPE_ECDSA_P384:
		*bits = 384;
		*type = "ECDSA";
		break;
	case SSH_KEYTYPE_ECDSA_P521:
		*bits = 521;
		*type = "ECDSA";
		break;
	case SSH_KEYTYPE_RSA:
		*bits = rsa_bits(key);
		*type = "RSA";
		break;
	default:
		*bits = 0;
		*type = ssh_key_type_to_char(ssh_key_type(key));
		break;
	}
}

int
hostkeys_print(const struct config *cfg, FILE *out)
{
	ssh_key key;
	unsigned char *hash;
	size_t i, hlen;
	char *fp;
	const char *type;
	int bits, rc = 0;

	for (i = 0; i < cfg->nhost_keys; i++) {
		const char *path = cfg->host_keys[i];

		key = NULL;
		hash = NULL;
		fp = NULL;
		if (access(path, F_OK) == -1 && errno == ENOENT) {
			log_warnx("host key %s does not exist yet: the first "
			    "'sluice serve' generates it (or create it with "
			    "ssh-keygen -t ed25519 -N '' -f %s)", path, path);
			rc = -1;
			continue;
		}
		if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL,
		    &key) != SSH_OK) {
			log_warnx("host key %s cannot be read (run as root; is "
			    "it an OpenSSH private key without a passphrase?)",
			    path);
			rc = -1;
			continue;
		}
		if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256,
		    &hash, &hlen) != SSH_OK || (fp = ssh_get_fingerprint_hash(
		    SSH_PUBLICKEY_HASH_SHA256, hash, hlen)) == NULL) {
			log_warnx("host key %s: cannot compute its fingerprint",
			    path);
			rc = -1;
		} else {
			key_size_type(key, &bits, &type);
			fprintf(out, "%d %s %s (%s)\n", bits, fp, path, type);
		}
		ssh_string_free_char(fp);
		ssh_clean_pubkey_hash(&hash);
		ssh_key_free(key);
	}
	return rc;
}

/* --- algorithm policy ------------------------------------------------------ */

/*
 * The configured list i (0..4 in enum algo_list's order: kex, ciphers,
 * macs, host keys, user keys), or its secure default. Which names are weak
 * (and the warnings about them, once each, with FILE:LINE) is the loader's
 * and policy/algos.c's business, not the listener's.
 */
const char *
server_algo(const struct server_config *sc, int i)
{
	const char *v[ALGO_NLISTS] = { sc->kex, sc->ciphers, sc->macs,
	    sc->host_key_algorithms, sc->pubkey_algorithms };

	if (i < 0 || i >= ALGO_NLISTS)
		return "";
	return v[i] != NULL && v[i][0] != '\0' ? v[i] :
	    algo_default((enum algo_list)i);
}
