/*
 * sessioncfg.h - what a session process knows of the configuration.
 *
 * A session is re-exec'd for each connection (server/session.c) and reads
 * its configuration from the supervisor, never from the config file (which
 * holds every partner's password hash): state_dir, the server block, and
 * per partner its name, authorized keys, allow_from, role permissions,
 * max_sessions and whether it has a password (not the hash: passwords are
 * checked by the listener). Plus the host keys (OpenSSH private key text)
 * and the audit writer's socket path.
 *
 * Ownership: sessioncfg_export returns malloc'd text (the caller frees and
 * wipes it: it holds the host keys). sessioncfg_import returns a struct
 * config for config_free, and sets *host_keys (a NULL-terminated malloc'd
 * array of malloc'd strings, *nhost_keys of them) and *audit_socket, which
 * the caller frees.
 */
#ifndef SLUICE_SESSIONCFG_H
#define SLUICE_SESSIONCFG_H

#include <stddef.h>

#include "policy/config.h"

#define SESSIONCFG_VERSION	1

char *sessioncfg_export(const struct config *cfg, char *const *host_keys,
    size_t nhost_keys, const char *audit_socket);
struct config *sessioncfg_import(const char *text, size_t len,
    char ***host_keys, size_t *nhost_keys, char **audit_socket);

/*
 * The listener's part, sent on a reload (the listener started with the
 * supervisor's whole configuration, forked): the same text without host
 * keys, plus each partner's password hash. The caller frees and wipes the
 * text; the import's config is for config_free.
 */
char *sessioncfg_export_listener(const struct config *cfg);
struct config *sessioncfg_import_listener(const char *text, size_t len);

#endif
