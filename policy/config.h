/*
 * config.h - the configuration model and its YAML loader (libyaml's document
 * API, so every error names FILE:LINE).
 *
 * Ownership: config_load() allocates one struct config; every string and
 * array inside belongs to it and is released by config_free(). Callers only
 * borrow pointers into it.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cidr {
	int		 family;	/* AF_INET or AF_INET6 */
	uint8_t		 addr[16];	/* network address, host bits zero */
	int		 prefix;	/* 0..32 or 0..128 */
};

enum store_kind {
	STORE_S3 = 1,
	STORE_FILE,
};

struct store_config {
	char		*url;		/* as written */
	enum store_kind	 kind;
	char		*bucket;	/* s3 */
	char		*prefix;	/* s3: "" or "optional/prefix/" (always ends in '/') */
	char		*dir;		/* file: the absolute directory */
	char		*region;	/* default "us-east-1" (or $AWS_REGION when unset in config) */
	char		*endpoint;	/* NULL: https://s3.<region>.amazonaws.com */
	int		 path_style;	/* 1: endpoint/bucket/key; 0: bucket.endpoint/key */
	int		 line;
};

struct partner {
	char		*name;
	char		**authorized_keys;	/* OpenSSH authorized_keys lines, already read from files */
	size_t		 nauthorized_keys;
	char		*password_hash;		/* crypt(3) hash or NULL */
	struct cidr	*allow_from;		/* NULL/0: from anywhere */
	size_t		 nallow_from;
	char		*object_key;		/* template, default "{partner}/{path}" */
	int		 line;			/* line of the "- name:" entry */
};

struct config {
	char		*path;		/* the file it was loaded from */
	char		*listen_host;	/* "127.0.0.1", "::" ... (brackets removed) */
	int		 listen_port;
	char		**host_keys;
	size_t		 nhost_keys;
	char		*state_dir;
	char		*audit_path;
	struct store_config store;
	struct partner	*partners;
	size_t		 npartners;
};

/*
 * Loads and validates path. On success returns 0 and sets *cfgp. On failure
 * returns -1, writes one line "FILE:LINE: message" per problem to err (which
 * may be NULL), and sets *cfgp to NULL. Every message names the key
 * (e.g. "partners[1].allow_from") and what would fix it.
 */
int config_load(const char *path, struct config **cfgp, FILE *err);
void config_free(struct config *);

/* The partner called name, or NULL. */
const struct partner *config_partner(const struct config *, const char *name);

/* Parses "10.0.0.0/8", "::1/128" or a bare address (full-length prefix). 0 or -1. */
int cidr_parse(const char *s, struct cidr *out);

/* Like cidr_parse, but accepts host bits after the prefix ("10.1.2.3/8"),
 * clears them, and sets *host_bits to 1 when it did (so the loader can
 * suggest the network it meant). host_bits may be NULL. 0 or -1. */
int cidr_parse_lenient(const char *s, struct cidr *out, int *host_bits);
/* "10.0.0.0/8" into out; 0 or -1 on truncation. */
int cidr_format(const struct cidr *c, char *out, size_t outlen);

#endif
