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

enum collision_policy {
	COLLISION_SUFFIX = 0,	/* store as KEY.<n> ... next free */
	COLLISION_VERSION,	/* PUT anyway (versioned bucket keeps both) */
	COLLISION_REJECT,	/* hold the file */
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

	/* S3 options (issue 5). NULL/0 when unset. */
	char		*sse;		/* "AES256" | "aws:kms" */
	char		*kms_key_id;	/* with sse aws:kms */
	char		*storage_class;	/* STANDARD, STANDARD_IA, GLACIER_IR, ... */
	char		*acl;		/* "bucket-owner-full-control" */
	char		**tag_keys;	/* tags: {key: value} */
	char		**tag_values;
	size_t		 ntags;
	char		*object_lock_mode;	/* "COMPLIANCE" | "GOVERNANCE" */
	int		 object_lock_days;	/* > 0 with a mode */
	int		 legal_hold;	/* 1: x-amz-object-lock-legal-hold: ON (issue 12) */
	char		*ca_file;	/* extra CA bundle (PEM) */
	char		*pinned_pubkey;	/* curl syntax: file or "sha256//base64;..." */
	enum collision_policy collision;	/* default COLLISION_SUFFIX */

	/* Issue 4: rejected files are also copied to
	 * <quarantine_prefix><partner>/<fid>-<name> (a key prefix ending in
	 * '/', not under the URL's prefix); NULL: off. */
	char		*quarantine_prefix;
};

/* Permissions a role grants inside the partner's root (issue 3). */
#define PERM_UPLOAD	0x01	/* create new files and write them */
#define PERM_LIST	0x02	/* stat, opendir/readdir, realpath */
#define PERM_READ	0x04	/* read back its own files */
#define PERM_OVERWRITE	0x08	/* replace an existing name (TRUNC over a file) */
#define PERM_RENAME	0x10
#define PERM_DELETE	0x20	/* remove files, rmdir */
#define PERM_MKDIR	0x40
#define PERM_ALL	0x7f

struct role {
	char		*name;
	unsigned	 perms;		/* PERM_* */
	int		 line;		/* 0 for built-ins */
};

/* Completion rules (issue 4); every field has a default set by the loader. */
struct completion_config {
	char		**temp_patterns;	/* fnmatch(3) globs; default *.part *.filepart *.tmp */
	size_t		 ntemp_patterns;
	char		*marker;		/* ".done": NAME ships when NAME.done arrives; NULL: off */
	char		*checksum;		/* "sha256" | "md5" | NULL: NAME.<alg> must match */
	char		*manifest;		/* glob, e.g. "*.manifest"; NULL: off */
	int64_t		 manifest_timeout_s;	/* default 24h */
	int64_t		 quiet_s;		/* 0: off */
	int64_t		 incomplete_ttl_s;	/* default 24h */
	int		 ship_sidecars;		/* 0 (default): markers/checksums/signatures not shipped */
};

enum signature_mode {
	SIG_NONE = 0,
	SIG_DETACHED,
	SIG_INLINE,
	SIG_ENCRYPTED,
};

struct signature_config {
	enum signature_mode mode;
	char		**signers;		/* 40-hex upper-case fingerprints (primary keys) */
	size_t		 nsigners;
	char		*keyring;		/* armored/binary public keys of the partner */
	char		*decryption_key;	/* encrypted mode: the gateway's secret key */
	int64_t		 wait_s;		/* default 10m: how long data waits for its signature */
	int64_t		 timeout_s;		/* default 2m: one verification's time (+1 s per 4 MiB); 0: the default */
	int		 keep_plaintext;	/* encrypted mode: also store the plaintext (default 0) */
};

enum duplicate_policy {
	DUP_ACCEPT_FLAG = 0,	/* ship it and flag it in the audit trail */
	DUP_ACCEPT,
	DUP_REJECT,
};

struct partner {
	char		*name;
	char		**authorized_keys;	/* OpenSSH authorized_keys lines, already read from files */
	size_t		 nauthorized_keys;
	char		*password_hash;		/* crypt(3) hash or NULL (always NULL
						 * in a session: sessioncfg.h) */
	int		 has_password;		/* 1: password logins configured */
	struct cidr	*allow_from;		/* NULL/0: from anywhere */
	size_t		 nallow_from;
	char		*object_key;		/* template, default "{partner}/{path}" */
	int		 line;			/* line of the "- name:" entry */

	/* Issue 3: what the partner may do, and for how long it sees uploads. */
	const struct role *role;		/* default: the built-in "dropbox" */
	int64_t		 visible_for_s;		/* default server.visible_for_s */
	int		 max_sessions;		/* 0: server.max_sessions_per_partner
						 * (the loader always sets it) */

	/* Issue 4. */
	struct completion_config completion;
	struct signature_config signature;
	int64_t		 duplicate_window_s;	/* 0: no duplicate detection */
	enum duplicate_policy duplicate_policy;	/* default DUP_ACCEPT_FLAG */

	/* Issue 11: delivery receipts in <root>/<receipts.dir>/ (default 1;
	 * "receipts: false" turns them off; 0 too when receipts.enabled is). */
	int		 receipts;
	/* With receipts: also a copy beside the object in the store
	 * (receipts.store, or the partner's receipts: {store: ...}). */
	int		 receipts_store;

	/* Issue 12: S3 overrides of the store's; NULL/0: the store's. A
	 * partner's tags replace the store's tags. */
	char		*storage_class;
	char		**tag_keys;
	char		**tag_values;
	size_t		 ntags;
};

/* The "server:" block (issue 3). Defaults in brackets. */
struct server_config {
	int		 max_sessions;			/* [256] all partners */
	int		 max_sessions_per_partner;	/* [16] */
	int		 max_sessions_per_address;	/* [32] */
	int		 max_startups;			/* [64] connections not yet authenticated ("full") */
	int		 max_startups_begin;		/* [32] random early drop from here ("start") */
	int		 max_startups_rate;		/* [30] percent dropped at start, rising to 100 at full */
	int		 max_startups_per_address;	/* [8] */
	int64_t		 login_grace_s;			/* [60] */
	int64_t		 idle_timeout_s;		/* [1800] */
	int		 max_auth_tries;		/* [6] per connection */
	int64_t		 max_file_size;			/* [0 = unlimited] bytes */
	int		 max_open_handles;		/* [64] per session */
	int64_t		 min_free_space;		/* [1 GiB] a write below it fails; 0: no floor */
	int64_t		 visible_for_s;			/* [86400] uploads stay listed this long; 0: hidden once stored */
	char		*user;				/* [NULL: "sluice-session"] the session user */
	struct cidr	*allow_from;			/* global; NULL/0: anywhere */
	size_t		 nallow_from;
	struct cidr	*deny_from;			/* global, checked first */
	size_t		 ndeny_from;
	struct cidr	*proxy_from;			/* proxy_protocol.from: the load
							 * balancers sending PROXY v2; 0: off */
	size_t		 nproxy_from;
	/* algorithms: comma-separated lists; NULL means the secure default */
	char		*kex;
	char		*ciphers;
	char		*macs;
	char		*host_key_algorithms;
	char		*pubkey_algorithms;
	/* brute-force defence */
	int		 ban_failures;			/* [10] failures ... */
	int64_t		 ban_window_s;			/* [600] ... within this window ... */
	int64_t		 ban_duration_s;		/* [900] ... ban for this long, doubling */
	int64_t		 shutdown_grace_s;		/* [30] SIGTERM: sessions may finish this long */
};

/* The "uploader:" block (issue 5). */
struct uploader_config {
	int		 workers;			/* [10] */
	int64_t		 multipart_threshold;		/* [16 MiB] */
	int64_t		 part_size;			/* [8 MiB] (>= 5 MiB) */
	int64_t		 max_backoff_s;			/* [20] */
	int64_t		 retention_keep_s;		/* [0] = delete after stored; > 0 keep N seconds in archive/ */
};

/* The "receipts:" block (issue 11, spool/delivery.h). */
struct receipts_config {
	int		 enabled;	/* [1] "receipts: false" at the top level: 0 */
	char		*sign_with;	/* NULL, or the 40-hex fingerprint (upper
					 * case) of the gateway's signing key */
	char		*keyring;	/* with sign_with: armored secret key file */
	int64_t		 keep_s;	/* [30d] receipts older are removed */
	char		*dir;		/* ["receipts"] one name beneath a partner's root */
	int		 store;		/* [0] 1: a copy beside the object in the
					 * store too (uploader/receiptship.h) */
};

/*
 * Operator roles over the control socket (control/control.h), lowest first:
 * each role may do everything the ones below it may.
 */
enum op_role {
	OPROLE_NONE = 0,	/* no role: every command is refused */
	OPROLE_AUDITOR,		/* read-only: queue list, audit verify|trace|export */
	OPROLE_OPERATOR,	/* + queue retry|hold, reconcile */
	OPROLE_OWNER,		/* everything (root and the service user always) */
};

/* One entry of "operators:": a user or a group, and its role. */
struct operator_entry {
	char		*user;		/* exactly one of user and group is set */
	char		*group;
	enum op_role	 role;
	int		 line;
};

/* The "notify:" targets (issue 12, notify/events.h). */
#define NOTIFY_ON_STORED	0x01	/* file.stored */
#define NOTIFY_ON_REJECTED	0x02	/* file.rejected */
enum notify_kind { NOTIFY_COMMAND = 1, NOTIFY_WEBHOOK };
struct notify_target {
	enum notify_kind kind;
	unsigned	 on;		/* NOTIFY_ON_* */
	char		**partners;	/* NULL: every partner */
	size_t		 npartners;
	char		**argv;		/* command: NULL-terminated, argv[0] absolute */
	size_t		 argc;
	char		*url;		/* webhook: https:// (http:// to loopback) */
	char		*secret_file;	/* webhook: HMAC key file (0600) */
	char		*ca_file;	/* webhook: NULL: the system's CAs */
	int64_t		 timeout_s;	/* [10] */
	int		 line;
};
struct notify_config {
	struct notify_target *targets;
	size_t		 ntargets;
	int64_t		 max_age_s;	/* [7d] then a notification is given up */
};

struct config {
	char		*path;		/* the file it was loaded from */
	char		*user;		/* [NULL: "sluice"] the service user */
	char		*listen_host;	/* "127.0.0.1", "::" ... (brackets removed) */
	int		 listen_port;
	char		**host_keys;
	size_t		 nhost_keys;
	char		*state_dir;
	char		*audit_path;
	char		*audit_key_path;	/* audit.key: the trail's HMAC key
					   (default state_dir/audit.key) */
	char		*audit_segments_dir;	/* [dirname(audit_path)/segments] */
	int64_t		 audit_segment_max;	/* [64 MiB] seal the live segment past it; 0: never */
	int64_t		 audit_segment_age_s;	/* [86400] ... or when it is this old; 0: never */
	char		*audit_host_id;		/* [gethostname()] every record's "host" */
	int		 audit_syslog;		/* a syslog(3) facility (LOG_AUTHPRIV ...); 0: off */
	char		*audit_prefix;		/* ["audit/"] sealed segments ship to <prefix><host_id>/ (ends in '/') */
	char		*audit_retention_mode;	/* "COMPLIANCE" | "GOVERNANCE"; NULL: no explicit retention */
	int64_t		 audit_retention_s;	/* > 0 with a mode */
	char		*audit_sign_with;	/* NULL, or the 40-hex fingerprint of the
						   key that signs sealed segments */
	char		*audit_keyring;		/* with it: armored secret key file */
	struct store_config store;
	struct partner	*partners;
	size_t		 npartners;

	struct server_config server;	/* issue 3 */
	struct uploader_config uploader;	/* issue 5 */
	struct role	*roles;		/* built-ins "dropbox" and "owner" first, then roles: */
	size_t		 nroles;
	struct receipts_config receipts;	/* issue 11 */

	char		*control_socket;	/* control.socket [/run/sluice/control.sock] */
	struct operator_entry *operators;	/* operators: */
	size_t		 noperators;
	struct {
		char	*listen_host;	/* NULL: no metrics role (issue 12) */
		int	 listen_port;
	} metrics;

	int		 log_target;	/* log.target: enum log_target (common/log.h) [auto] */
	int		 log_level;	/* log.level: LOG_LVL_* [0: info] */
	struct notify_config notify;	/* notify: (issue 12) */
};

/*
 * Loads and validates path. On success returns 0 and sets *cfgp. On failure
 * returns -1, writes one line "FILE:LINE: message" per problem to err (which
 * may be NULL), and sets *cfgp to NULL. Every message names the key
 * (e.g. "partners[1].allow_from") and what would fix it.
 */
int config_load(const char *path, struct config **cfgp, FILE *err);
void config_free(struct config *);
/* Frees the n strings of v and v (a string list of the config). */
void config_strv_free(char **v, size_t n);

/*
 * control.socket of the configuration at path, without loading (or
 * checking) the rest of it: what an operator who may not read every file
 * the configuration names needs to reach the gateway. Copies the path, or
 * the default, into out. 0, or -1 if path cannot be read or parsed (out
 * then holds the default).
 */
int config_control_socket(const char *path, char *out, size_t outlen);
#define CONFIG_DEFAULT_CONTROL_SOCKET	"/run/sluice/control.sock"

/* "owner", "operator", "auditor" or "none". */
const char *op_role_name(enum op_role);

/* The role called name (built-in or configured), or NULL. */
const struct role *config_role(const struct config *, const char *name);

/* "90", "30s", "10m", "24h", "30d", "7y" (365 days) -> seconds. 0 or -1 (junk, sign,
 * blanks, another unit, overflow); *out is untouched on failure. */
int parse_duration(const char *s, int64_t *out);
/* "1048576", "16MiB", "1GiB", "10GB", "512KiB" -> bytes (B, KiB..TiB,
 * KB/kB..TB; no ambiguous "16M"). 0 or -1; *out is untouched on failure. */
int parse_size(const char *s, int64_t *out);

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
