/*
 * completion.h - pure decisions about when a received file is complete
 * (issue 4). No I/O: intake (spool/intake.c) gathers the facts and asks.
 *
 * Names. Every function takes a partner path ("dir/name.csv", no leading
 * '/'). Temp patterns match the last component only.
 *
 *   temp name      matches completion.temp_patterns (the loader fills in
 *                  *.part *.filepart *.tmp; an empty list means none; a NULL
 *                  config means the defaults); never a candidate.
 *   sidecar        NAME<marker>, NAME.sha256 / NAME.md5 (completion.checksum),
 *                  NAME.sig / NAME.asc (signature.mode detached), or a name
 *                  matching completion.manifest. Sidecars are only shipped
 *                  with ship_sidecars.
 *   data file      everything else.
 *
 * Checksum files (coreutils format): lines "HEX  NAME" or "HEX *NAME" (a
 * leading '\' marks an escaped name), the BSD tag form "SHA256 (NAME) = HEX",
 * or a single bare "HEX". A file with exactly one entry applies to its
 * NAME.sha256 data file whatever name it lists (partners often list a local
 * path or the temp name); with several entries the data file's basename must
 * be listed.
 *
 * Manifests: one file per line, "SHA256 SIZE NAME" separated by blanks, NAME
 * (the rest of the line) relative to the manifest's directory; blank lines
 * and lines starting with '#' are ignored. The batch is complete when every
 * listed NAME has a received file with that size and SHA-256.
 *
 * Ownership: callers own every buffer; manifest_parse allocates m->e, freed
 * by manifest_free.
 */
#ifndef SLUICE_COMPLETION_H
#define SLUICE_COMPLETION_H

#include <stddef.h>
#include <stdint.h>

#include "policy/config.h"

/* 1 if the last component of path matches a temp pattern, else 0. */
int completion_is_temp(const struct completion_config *, const char *path);

enum sidecar_kind {
	SIDECAR_NONE = 0,	/* a data file */
	SIDECAR_MARKER,
	SIDECAR_CHECKSUM,
	SIDECAR_SIGNATURE,
	SIDECAR_MANIFEST,
};

/*
 * What path is. For marker, checksum and signature sidecars the path of
 * the data file it belongs to is written to data (datalen bytes; empty for
 * a manifest or a data file). sig may be NULL (no signature rules).
 */
enum sidecar_kind completion_sidecar(const struct completion_config *,
    const struct signature_config *sig, const char *path, char *data,
    size_t datalen);
const char *sidecar_kind_name(enum sidecar_kind);

/* Digest length in hex for completion.checksum ("sha256" 64, "md5" 32), 0 if unknown. */
size_t checksum_hexlen(const char *alg);

/*
 * Looks up the digest for basename name in the checksum file text (len
 * bytes, need not be NUL-terminated). hexlen is the expected digest length.
 * Returns 1 and the lower-case digest in hex (hexsz >= hexlen+1), 0 if the
 * file does not list name, -1 if it is not a checksum file (why set).
 */
int checksum_find(const char *text, size_t len, const char *name,
    size_t hexlen, char *hex, size_t hexsz, char *why, size_t whylen);

struct manifest_entry {
	char	*name;		/* relative to the manifest's directory, normalised */
	int64_t	 size;
	char	 sha256[65];	/* lower-case hex */
};

struct manifest {
	struct manifest_entry *e;
	size_t	 n;
};

/* Parses text (len bytes). 0, or -1 with a message naming the line in why. */
int manifest_parse(const char *text, size_t len, struct manifest *m,
    char *why, size_t whylen);
void manifest_free(struct manifest *);

/* A received file as the batch check sees it. */
struct batch_file {
	const char *path;	/* partner path */
	int64_t	 size;
	const char *sha256;
};

/*
 * Is the batch of manifest m (at partner path mpath) complete among the
 * files f[0..n)? Returns 1 when every entry has a file with the same path,
 * size and SHA-256, and then sets match[i] (m->n entries) to the index in f
 * of entry i's file; 0 when not, with the first missing or differing entry
 * described in why. -1 if an entry's path is too long.
 */
int manifest_batch_complete(const struct manifest *m, const char *mpath,
    const struct batch_file *f, size_t n, size_t *match, char *why,
    size_t whylen);

/* "10m", "24h", "90s", "2d" for messages; buf >= 24. */
void duration_text(int64_t s, char *buf, size_t len);

#endif
