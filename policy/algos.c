/*
 * algos.c - the SSH algorithm policy: defaults, known names, weak names
 * (see algos.h).
 */
#include <string.h>

#include <libssh/libssh.h>
#include <libssh/server.h>

#include "policy/algos.h"

static const char *const kex_names[] = {
	"curve25519-sha256", "curve25519-sha256@libssh.org",
	"ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521",
	"diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512",
	"diffie-hellman-group14-sha256", "diffie-hellman-group-exchange-sha256",
	"sntrup761x25519-sha512@openssh.com", "mlkem768x25519-sha256",
	"diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1",
	"diffie-hellman-group-exchange-sha1", NULL
};
static const char *const cipher_names[] = {
	"aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "aes256-ctr",
	"aes192-ctr", "aes128-ctr", "chacha20-poly1305@openssh.com",
	"aes256-cbc", "aes192-cbc", "aes128-cbc", "3des-cbc", "blowfish-cbc",
	"cast128-cbc", "rijndael-cbc@lysator.liu.se", "arcfour", "arcfour128",
	"arcfour256", "none", NULL
};
static const char *const mac_names[] = {
	"hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com",
	"hmac-sha2-256", "hmac-sha2-512", "umac-128-etm@openssh.com",
	"umac-64-etm@openssh.com", "umac-128@openssh.com", "umac-64@openssh.com",
	"hmac-sha1", "hmac-sha1-etm@openssh.com", "hmac-sha1-96",
	"hmac-sha1-96-etm@openssh.com", "hmac-md5", "hmac-md5-etm@openssh.com",
	"hmac-md5-96", "hmac-md5-96-etm@openssh.com", "none", NULL
};
static const char *const hostkey_names[] = {
	"ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256", "ecdsa-sha2-nistp256",
	"ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
	"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
	"ssh-ed25519-cert-v01@openssh.com", "rsa-sha2-512-cert-v01@openssh.com",
	"rsa-sha2-256-cert-v01@openssh.com",
	"ecdsa-sha2-nistp256-cert-v01@openssh.com",
	"ecdsa-sha2-nistp384-cert-v01@openssh.com",
	"ecdsa-sha2-nistp521-cert-v01@openssh.com",
	"ssh-rsa", "ssh-rsa-cert-v01@openssh.com", "ssh-dss",
	"ssh-dss-cert-v01@openssh.com", NULL
};

static const struct {
	const char		*key;
	const char		*what;
	const char		*dflt;
	const char *const	*known;
	enum ssh_bind_options_e	 opt;
} lists[ALGO_NLISTS] = {
	[ALGO_KEX] = { "kex", "key exchange", SSH_DEFAULT_KEX, kex_names,
	    SSH_BIND_OPTIONS_KEY_EXCHANGE },
	[ALGO_CIPHERS] = { "ciphers", "cipher", SSH_DEFAULT_CIPHERS,
	    cipher_names, SSH_BIND_OPTIONS_CIPHERS_S_C },
	[ALGO_MACS] = { "macs", "MAC", SSH_DEFAULT_MACS, mac_names,
	    SSH_BIND_OPTIONS_HMAC_S_C },
	[ALGO_HOSTKEYS] = { "host_key_algorithms", "host key algorithm",
	    SSH_DEFAULT_HOSTKEYS, hostkey_names,
	    SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS },
	[ALGO_PUBKEYS] = { "pubkey_algorithms", "public key algorithm",
	    SSH_DEFAULT_PUBKEYS, hostkey_names,
	    SSH_BIND_OPTIONS_PUBKEY_ACCEPTED_KEY_TYPES },
};

const char *
algo_default(enum algo_list l)
{
	return lists[l].dflt;
}

const char *
algo_key(enum algo_list l)
{
	return lists[l].key;
}

const char *
algo_what(enum algo_list l)
{
	return lists[l].what;
}

const char *const *
algo_known(enum algo_list l)
{
	return lists[l].known;
}

const char *
algo_weak(const char *a)
{
	if (strcmp(a, "none") == 0)
		return "no protection at all";
	if (strstr(a, "cbc") != NULL)
		return "CBC mode";
	if (strstr(a, "arcfour") != NULL)
		return "RC4";
	if (strstr(a, "3des") != NULL)
		return "3DES";
	if (strncmp(a, "hmac-md5", 8) == 0)
		return "MD5";
	if (strncmp(a, "hmac-sha1", 9) == 0)
		return "SHA-1";
	if (strcmp(a, "diffie-hellman-group1-sha1") == 0)
		return "1024-bit group, SHA-1";
	if (strcmp(a, "diffie-hellman-group14-sha1") == 0 ||
	    strcmp(a, "diffie-hellman-group-exchange-sha1") == 0)
		return "SHA-1";
	if (strcmp(a, "ssh-rsa") == 0 ||
	    strcmp(a, "ssh-rsa-cert-v01@openssh.com") == 0)
		return "SHA-1";
	if (strncmp(a, "ssh-dss", 7) == 0)
		return "DSA";
	return NULL;
}

int
algo_supported(enum algo_list l, const char *name)
{
	ssh_bind b;
	int ok;

	if ((b = ssh_bind_new()) == NULL)
		return 1;	/* cannot ask: do not block the load */
	ok = ssh_bind_options_set(b, lists[l].opt, name) == SSH_OK;
	ssh_bind_free(b);
	return ok;
}
