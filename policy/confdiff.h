/*
 * confdiff.h - what a loaded configuration says, in digests an audit
 * record can carry (config.loaded), and what changed between two loaded
 * configurations (config.reloaded). Pure functions over struct config: no
 * I/O; key files and keyrings are compared by what the loader kept (the
 * key lines, the keyring's path), not re-read.
 *
 * A partner's settings fall into aspects, each with its own digest (the
 * hex SHA-256 of a canonical JSON text of the aspect):
 *   keys        the SSH keys' fingerprints ("SHA256:..." as OpenSSH prints
 *               them), in sorted order
 *   allow_from  its CIDR blocks, sorted
 *   role        the role's name and permissions
 *   signature   mode, signer fingerprints, keyring and decryption key
 *               paths, waits and timeouts
 *   rules       object key template, visibility, session cap, completion
 *               rules, duplicate policy
 *   password    whether a password is configured (the hash itself is never
 *               in a digest of its own; it is covered by the partner's
 *               overall "sha256", as it is by config_sha256 already)
 * Reordering keys or CIDR blocks is no change.
 *
 * Ownership: every json_t returned is new; the caller json_decref's it.
 */
#ifndef SLUICE_CONFDIFF_H
#define SLUICE_CONFDIFF_H

#include <jansson.h>

struct config;
struct partner;

/*
 * The fields of config.loaded beyond the file's path and SHA-256:
 *   {"partners":["acme",...],
 *    "partner_digests":{"acme":{"sha256":..,"keys":..,"nkeys":N,
 *        "allow_from":..,"role":..,"signature":..,"rules":..,
 *        "password":true|false},...},
 *    "settings_sha256":..}
 * settings_sha256 covers the limits and settings confdiff compares (the
 * server: and uploader: blocks, the store, listen address). NULL on
 * allocation failure.
 */
json_t *confdiff_summary(const struct config *cfg);

/*
 * A summary cut into records that fit the trail (a record is at most
 * AUDIT_MAX_LINE): a JSON array of one or more objects
 *   {"part":i,"parts":n,"partners":[...],"partner_digests":{...},
 *    "settings_sha256":..}
 * holding the partners in their order, each part's JSON text under about
 * max bytes (a single partner larger than that gets a part of its own).
 * NULL on allocation failure or a summary of another shape.
 */
json_t *confdiff_summary_parts(const json_t *summary, size_t max);

/*
 * What changed from old to new, for config.reloaded. An empty object when
 * nothing this module compares changed; else only the members that apply:
 *   "partners_added":[name,...], "partners_removed":[name,...],
 *   "partners_changed":{name:[aspect,...]}     (aspects as above)
 *   "keys_changed":{name:{"added":[fp,...],"removed":[fp,...]}}
 *   "allowlists_changed":{name|"server.allow_from"|"server.deny_from":
 *        {"added":[cidr,...],"removed":[cidr,...]}}
 *   "limits_changed":{"server.max_sessions":{"from":N,"to":M},...}
 *   "settings_changed":{"server.ciphers":{"from":s|null,"to":s|null},...}
 * Partners are matched by name. NULL on allocation failure.
 */
json_t *confdiff(const struct config *old, const struct config *new);

/*
 * The settings that differ between old and new and that a reload cannot
 * apply (a restart does): listen, user, state_dir, audit.*, server.user,
 * server.max_sessions, server.max_startups, control.socket, log.*. A JSON
 * array of their names ("listen.port", ...); empty when none. NULL on
 * allocation failure.
 */
json_t *confdiff_restart_only(const struct config *old,
    const struct config *new);

/*
 * The OpenSSH fingerprint ("SHA256:" + unpadded base64 of the SHA-256 of
 * the key blob) of an authorized_keys line "TYPE BASE64 [COMMENT]" into
 * out (at least 51 bytes). A line whose key part is not base64 gets
 * "line:" + the hex SHA-256 of the whole line. 0, or -1 if out is short.
 */
int confdiff_key_fingerprint(const char *line, char *out, size_t outlen);

#endif
