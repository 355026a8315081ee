/*
 * sessioncfg.c - the part of the configuration a session process gets
 * (policy/sessioncfg.h): JSON text built by the supervisor, parsed by the
 * re-exec'd session. What is not in it, the session never has: password
 * hashes, the store and its credentials, signature keys, the audit path.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "policy/config.h"
#include "policy/sessioncfg.h"

/* --- export ---------------------------------------------------------------- */

static json_t *
cidrs_json(const struct cidr *c, size_t n)
{
	json_t *a = json_array();
	char buf[64];
	size_t i;

	for (i = 0; a != NULL && i < n; i++)
		if (cidr_format(&c[i], buf, sizeof(buf)) == 0)
			json_array_append_new(a, json_string(buf));
	return a;
}

static json_t *
strs_json(char *const *v, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a != NULL && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

#define OPT_STR(s)	((s) != NULL ? json_string(s) : json_null())

static json_t *
server_json(const struct server_config *sv)
{
	json_t *o;

	o = json_pack("{s:i,s:i,s:i,s:i,s:i,s:I,s:I,s:i,s:I,s:i,s:I,s:I,"
	    "s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:i,s:I,s:I}",
	    "max_sessions", sv->max_sessions,
	    "max_sessions_per_partner", sv->max_sessions_per_partner,
	    "max_sessions_per_address", sv->max_sessions_per_address,
	    "max_startups", sv->max_startups,
	    "max_startups_per_address", sv->max_startups_per_address,
	    "login_grace_s", (json_int_t)sv->login_grace_s,
	    "idle_timeout_s", (json_int_t)sv->idle_timeout_s,
	    "max_auth_tries", sv->max_auth_tries,
	    "max_file_size", (json_int_t)sv->max_file_size,
	    "max_open_handles", sv->max_open_handles,
	    "min_free_space", (json_int_t)sv->min_free_space,
	    "visible_for_s", (json_int_t)sv->visible_for_s,
	    "allow_from", cidrs_json(sv->allow_from, sv->nallow_from),
	    "deny_from", cidrs_json(sv->deny_from, sv->ndeny_from),
	    "kex", OPT_STR(sv->kex),
	    "ciphers", OPT_STR(sv->ciphers),
	    "macs", OPT_STR(sv->macs),
	    "host_key_algorithms", OPT_STR(sv->host_key_algorithms),
	    "pubkey_algorithms", OPT_STR(sv->pubkey_algorithms),
	    "ban_failures", sv->ban_failures,
	    "ban_window_s", (json_int_t)sv->ban_window_s,
	    "ban_duration_s", (json_int_t)sv->ban_duration_s);
	/* server.proxy_protocol: the session then asks the listener for the
	 * client's address (MON_PEER) */
	if (o != NULL && sv->nproxy_from > 0)
		json_object_set_new(o, "proxy_from", cidrs_json(sv->proxy_from,
		    sv->nproxy_from));
	return o;
}

static json_t *
partner_json(const struct partner *p, int hashes)
{
	json_t *o;

	o = json_pack("{s:s,s:o,s:b,s:o,s:s,s:i,s:i,s:I,s:b}",
	    "name", p->name,
	    "authorized_keys", strs_json(p->authorized_keys,
	    p->nauthorized_keys),
	    "password", p->password_hash != NULL,
	    "allow_from", cidrs_json(p->allow_from, p->nallow_from),
	    "role", p->role != NULL ? p->role->name : "",
	    "perms", p->role != NULL ? (int)p->role->perms : 0,
	    "max_sessions", p->max_sessions,
	    "visible_for_s", (json_int_t)p->visible_for_s,
	    "receipts", p->receipts != 0);
	if (o != NULL && hashes && p->password_hash != NULL &&
	    json_object_set_new(o, "password_hash",
	    json_string(p->password_hash)) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static char *
export(const struct config *cfg, char *const *host_keys,
    size_t nhost_keys, const char *audit_socket, int hashes)
{
	json_t *o, *parts;
	char *text;
	size_t i;

	if ((parts = json_array()) == NULL)
		return NULL;
	for (i = 0; i < cfg->npartners; i++)
		json_array_append_new(parts, partner_json(&cfg->partners[i],
		    hashes));
	o = json_pack("{s:i,s:s,s:s,s:s,s:o,s:o,s:o}",
	    "version", SESSIONCFG_VERSION,
	    "state_dir", cfg->state_dir,
	    "receipts_dir", cfg->receipts.dir != NULL ? cfg->receipts.dir : "",
	    "audit_socket", audit_socket,
	    "host_keys", strs_json(host_keys, nhost_keys),
	    "server", server_json(&cfg->server),
	    "partners", parts);
	if (o == NULL)
		return NULL;
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

char *
sessioncfg_export(const struct config *cfg, char *const *host_keys,
    size_t nhost_keys, const char *audit_socket)
{
	return export(cfg, host_keys, nhost_keys, audit_socket, 0);
}

char *
sessioncfg_export_listener(const struct config *cfg)
{
	return export(cfg, NULL, 0, "", 1);
}

/* --- import ---------------------------------------------------------------- */

static int
get_cidrs(json_t *a, struct cidr **out, size_t *n)
{
	size_t i;
	json_t *v;

	*out = NULL;
	*n = 0;
	if (!json_is_array(a))
		return -1;
	if (json_array_size(a) == 0)
		return 0;
	if ((*out = calloc(json_array_size(a), sizeof(**out))) == NULL)
		return -1;
	json_array_foreach(a, i, v)
		if (!json_is_string(v) ||
		    cidr_parse(json_string_value(v), &(*out)[i]) == -1)
			return -1;
	*n = json_array_size(a);
	return 0;
}

static int
get_strs(json_t *a, char ***out, size_t *n)
{
	size_t i;
	json_t *v;

	*out = NULL;
	*n = 0;
	if (!json_is_array(a))
		return -1;
	if ((*out = calloc(json_array_size(a) + 1, sizeof(char *))) == NULL)
		return -1;
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) ||
		    ((*out)[i] = strdup(json_string_value(v))) == NULL)
			return -1;
		*n = i + 1;
	}
	return 0;
}

static int
get_optstr(json_t *o, const char *k, char **out)
{
	json_t *v = json_object_get(o, k);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || (*out = strdup(json_string_value(v))) == NULL)
		return -1;
	return 0;
}

static int
get_server(json_t *o, struct server_config *sv)
{
	json_int_t grace, idle, fsize, minfree, vis, win, dur;

	if (json_unpack(o, "{s:i,s:i,s:i,s:i,s:i,s:I,s:I,s:i,s:I,s:i,s:I,s:I,"
	    "s:i,s:I,s:I}",
	    "max_sessions", &sv->max_sessions,
	    "max_sessions_per_partner", &sv->max_sessions_per_partner,
	    "max_sessions_per_address", &sv->max_sessions_per_address,
	    "max_startups", &sv->max_startups,
	    "max_startups_per_address", &sv->max_startups_per_address,
	    "login_grace_s", &grace, "idle_timeout_s", &idle,
	    "max_auth_tries", &sv->max_auth_tries,
	    "max_file_size", &fsize,
	    "max_open_handles", &sv->max_open_handles,
	    "min_free_space", &minfree, "visible_for_s", &vis,
	    "ban_failures", &sv->ban_failures,
	    "ban_window_s", &win, "ban_duration_s", &dur) != 0)
		return -1;
	sv->login_grace_s = grace;
	sv->idle_timeout_s = idle;
	sv->max_file_size = fsize;
	sv->min_free_space = minfree;
	sv->visible_for_s = vis;
	sv->ban_window_s = win;
	sv->ban_duration_s = dur;
	if (get_cidrs(json_object_get(o, "allow_from"), &sv->allow_from,
	    &sv->nallow_from) == -1 ||
	    get_cidrs(json_object_get(o, "deny_from"), &sv->deny_from,
	    &sv->ndeny_from) == -1 ||
	    (json_object_get(o, "proxy_from") != NULL &&
	    get_cidrs(json_object_get(o, "proxy_from"), &sv->proxy_from,
	    &sv->nproxy_from) == -1) ||
	    get_optstr(o, "kex", &sv->kex) == -1 ||
	    get_optstr(o, "ciphers", &sv->ciphers) == -1 ||
	    get_optstr(o, "macs", &sv->macs) == -1 ||
	    get_optstr(o, "host_key_algorithms", &sv->host_key_algorithms) ==
	    -1 || get_optstr(o, "pubkey_algorithms", &sv->pubkey_algorithms) ==
	    -1)
		return -1;
	return 0;
}

static int
get_partner(json_t *o, struct partner *p, struct role *r, int hashes)
{
	const char *name, *role;
	int has_pw, perms;
	json_int_t vis;

	if (json_unpack(o, "{s:s,s:b,s:s,s:i,s:i,s:I}", "name", &name,
	    "password", &has_pw, "role", &role, "perms", &perms,
	    "max_sessions", &p->max_sessions, "visible_for_s", &vis) != 0)
		return -1;
	if ((p->name = strdup(name)) == NULL ||
	    (r->name = strdup(role)) == NULL)
		return -1;
	r->perms = (unsigned)perms & PERM_ALL;
	p->role = r;
	p->visible_for_s = vis;
	/* its delivery receipts folder is read-only (spool/delivery.h) */
	p->receipts = json_is_true(json_object_get(o, "receipts"));
	/* never the hash in a session: the listener checks passwords
	 * (server/listener.c) */
	p->password_hash = NULL;
	p->has_password = has_pw;
	if (hashes && has_pw && get_optstr(o, "password_hash",
	    &p->password_hash) == -1)
		return -1;
	if (get_strs(json_object_get(o, "authorized_keys"), &p->authorized_keys,
	    &p->nauthorized_keys) == -1 ||
	    get_cidrs(json_object_get(o, "allow_from"), &p->allow_from,
	    &p->nallow_from) == -1)
		return -1;
	return 0;
}

static struct config *
import(const char *text, size_t len, char ***host_keys,
    size_t *nhost_keys, char **audit_socket, int hashes)
{
	struct config *cfg = NULL;
	json_error_t jerr;
	json_t *o, *parts, *v;
	const char *sd, *as;
	int version;
	size_t i, n;

	*host_keys = NULL;
	*nhost_keys = 0;
	*audit_socket = NULL;
	if ((o = json_loadb(text, len, 0, &jerr)) == NULL) {
		log_warnx("session configuration: %s", jerr.text);
		return NULL;
	}
	if (json_unpack(o, "{s:i,s:s,s:s}", "version", &version, "state_dir",
	    &sd, "audit_socket", &as) != 0 || version != SESSIONCFG_VERSION)
		goto bad;
	parts = json_object_get(o, "partners");
	if (!json_is_array(parts) || (cfg = calloc(1, sizeof(*cfg))) == NULL)
		goto bad;
	n = json_array_size(parts);
	if ((v = json_object_get(o, "receipts_dir")) != NULL &&
	    json_is_string(v) && json_string_length(v) > 0 &&
	    (cfg->receipts.dir = strdup(json_string_value(v))) == NULL)
		goto bad;
	if ((cfg->state_dir = strdup(sd)) == NULL ||
	    (*audit_socket = strdup(as)) == NULL ||
	    get_server(json_object_get(o, "server"), &cfg->server) == -1 ||
	    get_strs(json_object_get(o, "host_keys"), host_keys,
	    nhost_keys) == -1)
		goto bad;
	if (n > 0 && ((cfg->partners = calloc(n, sizeof(*cfg->partners))) ==
	    NULL || (cfg->roles = calloc(n, sizeof(*cfg->roles))) == NULL))
		goto bad;
	json_array_foreach(parts, i, v) {
		cfg->npartners = cfg->nroles = i + 1;
		if (get_partner(v, &cfg->partners[i], &cfg->roles[i],
		    hashes) == -1)
			goto bad;
	}
	json_decref(o);
	return cfg;
bad:
	log_warnx("the session configuration from the supervisor is not one "
	    "this binary reads (sluice upgraded while running? restart it)");
	json_decref(o);
	config_free(cfg);
	return NULL;
}

struct config *
sessioncfg_import(const char *text, size_t len, char ***host_keys,
    size_t *nhost_keys, char **audit_socket)
{
	return import(text, len, host_keys, nhost_keys, audit_socket, 0);
}

struct config *
sessioncfg_import_listener(const char *text, size_t len)
{
	struct config *cfg;
	char **keys = NULL, *sock = NULL;
	size_t nkeys = 0, i;

	cfg = import(text, len, &keys, &nkeys, &sock, 1);
	for (i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	free(sock);
	return cfg;
}
