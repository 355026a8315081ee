/*
 * keys.c - partner SSH public keys: the types sluice accepts, the RSA size
 * floor and the authorized_keys line syntax (see keys.h).
 */
#include "server/keys.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libssh/libssh.h>

#include "common/util.h"

static const char *const key_types[] = {
	"ssh-ed25519",
	"ecdsa-sha2-nistp256",
	"ecdsa-sha2-nistp384",
	"ecdsa-sha2-nistp521",
	"ssh-rsa",
	"sk-ssh-ed25519@openssh.com",
	"sk-ecdsa-sha2-nistp256@openssh.com",
};
#define KEY_TYPES_HINT "ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa, " \
	"sk-ssh-ed25519@openssh.com or sk-ecdsa-sha2-nistp256@openssh.com"

static int
known_type(const char *t, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++)
		if (strlen(key_types[i]) == n && memcmp(key_types[i], t, n) == 0)
			return 1;
	return 0;
}

/* The next SSH wire string of blob at *off; 0 or -1. */
static int
blob_string(const uint8_t *b, size_t blen, size_t *off, const uint8_t **s,
    size_t *slen)
{
	uint32_t l;

	if (blen - *off < 4)
		return -1;
	l = (uint32_t)b[*off] << 24 | (uint32_t)b[*off + 1] << 16 |
	    (uint32_t)b[*off + 2] << 8 | b[*off + 3];
	*off += 4;
	if (blen - *off < l)
		return -1;
	*s = b + *off;
	*slen = l;
	*off += l;
	return 0;
}

const char *
pubkey_line_problem(const char *line, char **norm, char *why, size_t whylen)
{
	const char *t, *te, *b, *be, *p;
	const uint8_t *bt, *e, *mod;
	uint8_t *blob = NULL;
	size_t tl, bl, blen, off = 0, btl, el, ml, bits;
	char type[64], *b64 = NULL;
	enum ssh_keytypes_e kt;
	ssh_key key = NULL;
	const char *res = why;

	*norm = NULL;
	t = line + strspn(line, " \t");
	te = t + strcspn(t, " \t");
	tl = (size_t)(te - t);
	if (!known_type(t, tl)) {
		/* Options come before the type: "from=... ssh-ed25519 AAAA". */
		for (p = te; *p != '\0';) {
			p += strspn(p, " \t");
			bl = strcspn(p, " \t");
			if (bl > 0 && known_type(p, bl)) {
				(void)xsnprintf(why, whylen, "options are not "
				    "supported; use allow_from (and remove "
				    "from=, command=, ... before the key "
				    "type)");
				return why;
			}
			p += bl;
		}
		if (tl == 7 && memcmp(t, "ssh-dss", 7) == 0)
			(void)xsnprintf(why, whylen, "DSA keys are not "
			    "accepted; use " KEY_TYPES_HINT);
		else if (tl > 21 && memcmp(te - 21, "-cert-v01@openssh.com",
		    21) == 0)
			(void)xsnprintf(why, whylen, "certificates are not "
			    "supported; give the plain public key");
		else
			(void)xsnprintf(why, whylen, "is not an OpenSSH public "
			    "key line (expected TYPE BASE64 [COMMENT], TYPE "
			    "one of " KEY_TYPES_HINT ")");
		return why;
	}
	memcpy(type, t, tl);
	type[tl] = '\0';
	b = te + strspn(te, " \t");
	be = b + strcspn(b, " \t");
	bl = (size_t)(be - b);
	if (bl == 0) {
		(void)xsnprintf(why, whylen, "has no base64 key after \"%s\"",
		    type);
		return why;
	}
	if ((blob = base64_decode(b, bl, &blen)) == NULL ||
	    blob_string(blob, blen, &off, &bt, &btl) != 0) {
		(void)xsnprintf(why, whylen, "the base64 key does not decode; "
		    "copy the whole line from the partner's .pub file");
		goto out;
	}
	if (btl != tl || memcmp(bt, type, tl) != 0) {
		(void)xsnprintf(why, whylen, "the key data is not a %s key; "
		    "check the type and the base64 text", type);
		goto out;
	}
	if ((b64 = strndup(b, bl)) == NULL) {
		(void)xsnprintf(why, whylen, "out of memory");
		goto out;
	}
	kt = ssh_key_type_from_name(type);
	if (kt == SSH_KEYTYPE_UNKNOWN ||
	    ssh_pki_import_pubkey_base64(b64, kt, &key) != SSH_OK ||
	    ssh_key_type(key) != kt) {
		(void)xsnprintf(why, whylen, "is not a valid %s key; copy the "
		    "whole line from the partner's .pub file", type);
		goto out;
	}
	if (kt == SSH_KEYTYPE_RSA) {
		/* ssh_key_size() is newer than libssh 0.10: read n's length. */
		if (blob_string(blob, blen, &off, &e, &el) != 0 ||
		    blob_string(blob, blen, &off, &mod, &ml) != 0) {
			(void)xsnprintf(why, whylen, "is not a valid ssh-rsa "
			    "key");
			goto out;
		}
		while (ml > 0 && mod[0] == 0) {
			mod++;
			ml--;
		}
		bits = ml * 8;
		if (ml > 0) {
			uint8_t top = mod[0];

			while (!(top & 0x80)) {
				top <<= 1;
				bits--;
			}
		}
		if (bits < PUBKEY_RSA_MIN_BITS) {
			(void)xsnprintf(why, whylen, "is a %zu-bit RSA key; "
			    "RSA keys need %d bits or more (better: "
			    "ssh-ed25519)", bits, PUBKEY_RSA_MIN_BITS);
			goto out;
		}
	}
	if ((*norm = malloc(tl + 1 + bl + 1)) == NULL) {
		(void)xsnprintf(why, whylen, "out of memory");
		goto out;
	}
	memcpy(*norm, type, tl);
	(*norm)[tl] = ' ';
	memcpy(*norm + tl + 1, b, bl);
	(*norm)[tl + 1 + bl] = '\0';
	res = NULL;
out:
	ssh_key_free(key);
	free(blob);
	free(b64);
	return res;
}

int
pubkey_line_like(const char *s)
{
	const char *t = s + strspn(s, " \t");
	size_t tl = strcspn(t, " \t");

	if (known_type(t, tl) || strncmp(t, "ssh-", 4) == 0 ||
	    strncmp(t, "ecdsa-", 6) == 0 || strncmp(t, "sk-", 3) == 0)
		return 1;
	if (t[0] == '/' || t[0] == '.')
		return 0;
	return t[tl] != '\0';	/* several words: a key line with options */
}
