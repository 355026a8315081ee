/*
 * confdiff.c - digests of a loaded configuration and the difference
 * between two (see policy/confdiff.h).
 *
 * Every aspect is first built as a JSON value with a fixed shape (sets as
 * sorted arrays), so one function serves both: a digest is the SHA-256 of
 * the value's canonical text (compact, sorted keys), and two aspects
 * differ exactly when their texts differ.
 */
#include "policy/confdiff.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "policy/config.h"

#define FP_LEN		64	/* "SHA256:" + 43 base64, or "line:" + 64 hex */

static const char *const perm_names[] = {
	"upload", "list", "read", "overwrite", "rename", "delete", "mkdir"
};
static const unsigned perm_bits[] = {
	PERM_UPLOAD, PERM_LIST, PERM_READ, PERM_OVERWRITE, PERM_RENAME,
	PERM_DELETE, PERM_MKDIR
};
static const char *const sig_modes[] = {
	"none", "detached", "inline", "encrypted"
};
static const char *const dup_policies[] = {
	"accept-and-flag", "accept", "reject"
};

/* Limits (numbers) and settings (strings, a few numbers) compared. */
enum ftype { F_INT, F_I64, F_STR };
static const struct field {
	const char	*name;
	size_t		 off;	/* in struct config */
	enum ftype	 type;
	int		 limit;	/* 1: limits_changed, 0: settings_changed */
} fields[] = {
#define L(n, m, t)	{ n, offsetof(struct config, m), t, 1 }
#define S(n, m, t)	{ n, offsetof(struct config, m), t, 0 }
	L("server.max_sessions", server.max_sessions, F_INT),
	L("server.max_sessions_per_partner", server.max_sessions_per_partner,
	    F_INT),
	L("server.max_sessions_per_address", server.max_sessions_per_address,
	    F_INT),
	L("server.max_startups", server.max_startups, F_INT),
	L("server.max_startups_begin", server.max_startups_begin, F_INT),
	L("server.max_startups_rate", server.max_startups_rate, F_INT),
	L("server.max_startups_per_address", server.max_startups_per_address,
	    F_INT),
	L("server.login_grace", server.login_grace_s, F_I64),
	L("server.idle_timeout", server.idle_timeout_s, F_I64),
	L("server.max_auth_tries", server.max_auth_tries, F_INT),
	L("server.max_file_size", server.max_file_size, F_I64),
	L("server.max_open_handles", server.max_open_handles, F_INT),
	L("server.min_free_space", server.min_free_space, F_I64),
	L("server.visible_for", server.visible_for_s, F_I64),
	L("server.ban.failures", server.ban_failures, F_INT),
	L("server.ban.window", server.ban_window_s, F_I64),
	L("server.ban.duration", server.ban_duration_s, F_I64),
	L("server.shutdown_grace", server.shutdown_grace_s, F_I64),
	L("uploader.workers", uploader.workers, F_INT),
	L("uploader.multipart_threshold", uploader.multipart_threshold, F_I64),
	L("uploader.part_size", uploader.part_size, F_I64),
	L("uploader.max_backoff", uploader.max_backoff_s, F_I64),
	L("uploader.retention_keep", uploader.retention_keep_s, F_I64),
	S("user", user, F_STR),
	S("listen.host", listen_host, F_STR),
	S("listen.port", listen_port, F_INT),
	S("server.user", server.user, F_STR),
	S("server.algorithms.kex", server.kex, F_STR),
	S("server.algorithms.ciphers", server.ciphers, F_STR),
	S("server.algorithms.macs", server.macs, F_STR),
	S("server.algorithms.host_key", server.host_key_algorithms, F_STR),
	S("server.algorithms.pubkey", server.pubkey_algorithms, F_STR),
	S("store.url", store.url, F_STR),
	S("store.region", store.region, F_STR),
	S("store.endpoint", store.endpoint, F_STR),
	S("store.sse", store.sse, F_STR),
	S("store.kms_key_id", store.kms_key_id, F_STR),
	S("store.storage_class", store.storage_class, F_STR),
	S("store.object_lock_mode", store.object_lock_mode, F_STR),
	S("store.object_lock_days", store.object_lock_days, F_INT),
	S("store.quarantine_prefix", store.quarantine_prefix, F_STR),
	S("audit.path", audit_path, F_STR),
	S("audit.key", audit_key_path, F_STR),
#undef L
#undef S
};
#define NFIELDS	(sizeof(fields) / sizeof(fields[0]))

/* ---- building aspects ---------------------------------------------------- */

static json_t *
str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A JSON array of the n strings of v (neither is changed), sorted. NULL on
 * allocation failure. */
static json_t *
sorted_array(char *const *v, size_t n)
{
	const char **s;
	json_t *a;
	size_t i;

	if ((s = calloc(n + 1, sizeof(*s))) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		s[i] = v[i] != NULL ? v[i] : "";
	qsort(s, n, sizeof(*s), cmp_str);
	if ((a = json_array()) == NULL)
		goto fail;
	for (i = 0; i < n; i++)
		if (json_array_append_new(a, json_string(s[i])) == -1) {
			json_decref(a);
			a = NULL;
			goto fail;
		}
fail:
	free(s);
	return a;
}

int
confdiff_key_fingerprint(const char *line, char *out, size_t outlen)
{
	uint8_t md[SHA256_LEN], *blob;
	char b64[SHA256_B64], hex[SHA256_HEX];
	const char *p, *q;
	size_t n, blen;

	p = line + strspn(line, " \t");
	p += strcspn(p, " \t");		/* the type */
	p += strspn(p, " \t");
	n = strcspn(p, " \t\r\n");	/* the base64 blob */
	if (n > 0 && (blob = base64_decode(p, n, &blen)) != NULL) {
		q = NULL;
		if (sha256_buf(blob, blen, md) == 0) {
			base64_encode(md, sizeof(md), b64);
			b64[strcspn(b64, "=")] = '\0';
			q = b64;
		}
		free(blob);
		if (q != NULL)
			return xsnprintf(out, outlen, "SHA256:%s", q) == -1 ?
			    -1 : 0;
	}
	if (sha256_buf(line, strlen(line), md) == -1)
		return -1;
	hex_encode(md, sizeof(md), hex);
	return xsnprintf(out, outlen, "line:%s", hex) == -1 ? -1 : 0;
}

/* The partner's key fingerprints, sorted. */
static json_t *
aspect_keys(const struct partner *p)
{
	char **v, (*fp)[FP_LEN];
	json_t *a = NULL;
	size_t i;

	v = calloc(p->nauthorized_keys + 1, sizeof(*v));
	fp = calloc(p->nauthorized_keys + 1, sizeof(*fp));
	if (v == NULL || fp == NULL)
		goto fail;
	for (i = 0; i < p->nauthorized_keys; i++) {
		if (confdiff_key_fingerprint(p->authorized_keys[i], fp[i],
		    sizeof(fp[i])) == -1)
			goto fail;
		v[i] = fp[i];
	}
	a = sorted_array(v, p->nauthorized_keys);
fail:
	free(v);
	free(fp);
	return a;
}

/* CIDR blocks as text, sorted. */
static json_t *
cidr_array(const struct cidr *c, size_t n)
{
	char **v, (*txt)[64];
	json_t *a = NULL;
	size_t i;

	v = calloc(n + 1, sizeof(*v));
	txt = calloc(n + 1, sizeof(*txt));
	if (v == NULL || txt == NULL)
		goto fail;
	for (i = 0; i < n; i++) {
		if (cidr_format(&c[i], txt[i], sizeof(txt[i])) == -1)
			goto fail;
		v[i] = txt[i];
	}
	a = sorted_array(v, n);
fail:
	free(v);
	free(txt);
	return a;
}

static json_t *
aspect_role(const struct partner *p)
{
	json_t *perms;
	size_t i;

	if ((perms = json_array()) == NULL)
		return NULL;
	for (i = 0; i < sizeof(perm_bits) / sizeof(perm_bits[0]); i++)
		if (p->role != NULL && (p->role->perms & perm_bits[i]))
			json_array_append_new(perms, json_string(perm_names[i]));
	return json_pack("{s:o,s:o}", "name", str_or_null(p->role != NULL ?
	    p->role->name : NULL), "perms", perms);
}

static json_t *
aspect_signature(const struct partner *p)
{
	const struct signature_config *sg = &p->signature;
	unsigned m = (unsigned)sg->mode;

	return json_pack("{s:s,s:o,s:o,s:o,s:I,s:I,s:b}", "mode",
	    m < 4 ? sig_modes[m] : "unknown",
	    "signers", sorted_array(sg->signers, sg->nsigners),
	    "keyring", str_or_null(sg->keyring),
	    "decryption_key", str_or_null(sg->decryption_key),
	    "wait_s", (json_int_t)sg->wait_s, "timeout_s",
	    (json_int_t)sg->timeout_s, "keep_plaintext", sg->keep_plaintext);
}

static json_t *
aspect_rules(const struct partner *p)
{
	const struct completion_config *c = &p->completion;
	unsigned d = (unsigned)p->duplicate_policy;
	json_t *temp;
	size_t i;

	if ((temp = json_array()) == NULL)
		return NULL;
	for (i = 0; i < c->ntemp_patterns; i++)	/* order is as configured */
		json_array_append_new(temp, json_string(c->temp_patterns[i]));
	return json_pack("{s:o,s:I,s:i,s:{s:o,s:o,s:o,s:o,s:I,s:I,s:I,s:b},"
	    "s:I,s:s}",
	    "object_key", str_or_null(p->object_key),
	    "visible_for_s", (json_int_t)p->visible_for_s,
	    "max_sessions", p->max_sessions,
	    "completion",
	    "temp_patterns", temp, "marker", str_or_null(c->marker),
	    "checksum", str_or_null(c->checksum),
	    "manifest", str_or_null(c->manifest),
	    "manifest_timeout_s", (json_int_t)c->manifest_timeout_s,
	    "quiet_s", (json_int_t)c->quiet_s,
	    "incomplete_ttl_s", (json_int_t)c->incomplete_ttl_s,
	    "ship_sidecars", c->ship_sidecars,
	    "duplicate_window_s", (json_int_t)p->duplicate_window_s,
	    "duplicate_policy", d < 3 ? dup_policies[d] : "unknown");
}

/* Every aspect of p, by name (the order of confdiff.h). */
static json_t *
aspects(const struct partner *p)
{
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:b}",
	    "keys", aspect_keys(p),
	    "allow_from", cidr_array(p->allow_from, p->nallow_from),
	    "role", aspect_role(p),
	    "signature", aspect_signature(p),
	    "rules", aspect_rules(p),
	    "password", p->has_password || p->password_hash != NULL);
}

/* hex SHA-256 of v's canonical text into hex; 0 or -1. */
static int
digest(const json_t *v, char hex[SHA256_HEX])
{
	uint8_t md[SHA256_LEN];
	char *t;
	int rc;

	if (v == NULL || (t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS |
	    JSON_ENCODE_ANY)) == NULL)
		return -1;
	rc = sha256_buf(t, strlen(t), md);
	free(t);
	if (rc == 0)
		hex_encode(md, sizeof(md), hex);
	return rc;
}

/* 1 if a and b have the same canonical text (both NULL: equal). */
static int
same(const json_t *a, const json_t *b)
{
	char da[SHA256_HEX], db[SHA256_HEX];

	if (a == NULL || b == NULL)
		return a == b;
	return digest(a, da) == 0 && digest(b, db) == 0 && strcmp(da, db) == 0;
}

/* ---- config.loaded ------------------------------------------------------- */

/* {"sha256":..,"keys":..,"nkeys":N,...,"password":b} for one partner. */
static json_t *
partner_digests(const struct partner *p)
{
	const char *k;
	char hex[SHA256_HEX];
	json_t *asp, *all = NULL, *out = NULL, *v;

	if ((asp = aspects(p)) == NULL || (out = json_object()) == NULL)
		goto fail;
	/* The overall digest also covers the password hash (confdiff.h). */
	if ((all = json_deep_copy(asp)) == NULL || json_object_set_new(all,
	    "password_hash", str_or_null(p->password_hash)) == -1 ||
	    digest(all, hex) == -1 ||
	    json_object_set_new(out, "sha256", json_string(hex)) == -1)
		goto fail;
	json_object_foreach(asp, k, v) {
		if (json_is_boolean(v)) {
			json_object_set(out, k, v);
			continue;
		}
		if (digest(v, hex) == -1 ||
		    json_object_set_new(out, k, json_string(hex)) == -1)
			goto fail;
		if (strcmp(k, "keys") == 0)
			json_object_set_new(out, "nkeys",
			    json_integer((json_int_t)json_array_size(v)));
	}
	json_decref(asp);
	json_decref(all);
	return out;
fail:
	json_decref(asp);
	json_decref(all);
	json_decref(out);
	return NULL;
}

static json_t *
field_value(const struct config *cfg, const struct field *f)
{
	const char *base = (const char *)cfg + f->off;

	switch (f->type) {
	case F_INT:
		return json_integer(*(const int *)(const void *)base);
	case F_I64:
		return json_integer((json_int_t)*(const int64_t *)(const void *)
		    base);
	default:
		return str_or_null(*(char *const *)(const void *)base);
	}
}

/* Every compared limit and setting, and the server's address lists. */
static json_t *
settings(const struct config *cfg)
{
	json_t *o;
	size_t i;

	if ((o = json_object()) == NULL)
		return NULL;
	for (i = 0; i < NFIELDS; i++)
		json_object_set_new(o, fields[i].name, field_value(cfg, &fields[i]));
	json_object_set_new(o, "server.allow_from",
	    cidr_array(cfg->server.allow_from, cfg->server.nallow_from));
	json_object_set_new(o, "server.deny_from",
	    cidr_array(cfg->server.deny_from, cfg->server.ndeny_from));
	return o;
}

json_t *
confdiff_summary(const struct config *cfg)
{
	json_t *names = NULL, *dig = NULL, *set = NULL, *pd;
	char hex[SHA256_HEX];
	size_t i;

	if ((names = json_array()) == NULL || (dig = json_object()) == NULL ||
	    (set = settings(cfg)) == NULL || digest(set, hex) == -1)
		goto fail;
	for (i = 0; i < cfg->npartners; i++) {
		const char *name = cfg->partners[i].name;

		if ((pd = partner_digests(&cfg->partners[i])) == NULL ||
		    json_object_set_new(dig, name, pd) == -1 ||
		    json_array_append_new(names, json_string(name)) == -1)
			goto fail;
	}
	json_decref(set);
	return json_pack("{s:o,s:o,s:s}", "partners", names,
	    "partner_digests", dig, "settings_sha256", hex);
fail:
	json_decref(names);
	json_decref(dig);
	json_decref(set);
	return NULL;
}

/* A new part {"part":..,"parts":0,"partners":[],"partner_digests":{},..}
 * appended to parts; parts is fixed up at the end. */
static json_t *
part_new(json_t *parts, const char *settings)
{
	json_t *p;

	p = json_pack("{s:I,s:i,s:[],s:{},s:s}", "part",
	    (json_int_t)json_array_size(parts) + 1, "parts", 0, "partners",
	    "partner_digests", "settings_sha256", settings);
	if (p == NULL || json_array_append_new(parts, p) == -1)
		return NULL;
	return p;
}

json_t *
confdiff_summary_parts(const json_t *summary, size_t max)
{
	const json_t *names, *dig, *pd;
	const char *settings, *name;
	json_t *parts, *cur;
	size_t i, used, cost;
	char *t;

	names = json_object_get(summary, "partners");
	dig = json_object_get(summary, "partner_digests");
	settings = json_string_value(json_object_get(summary,
	    "settings_sha256"));
	if (!json_is_array(names) || !json_is_object(dig) || settings == NULL ||
	    (parts = json_array()) == NULL)
		return NULL;
	if ((cur = part_new(parts, settings)) == NULL)
		goto fail;
	used = 256;	/* the part's own members */
	for (i = 0; i < json_array_size(names); i++) {
		name = json_string_value(json_array_get(names, i));
		if (name == NULL || (pd = json_object_get(dig, name)) == NULL ||
		    (t = json_dumps(pd, JSON_COMPACT)) == NULL)
			goto fail;
		cost = strlen(t) + 2 * strlen(name) + 16;
		free(t);
		if (used + cost > max && json_array_size(json_object_get(cur,
		    "partners")) > 0) {
			if ((cur = part_new(parts, settings)) == NULL)
				goto fail;
			used = 256;
		}
		used += cost;
		if (json_array_append_new(json_object_get(cur, "partners"),
		    json_string(name)) == -1 || json_object_set(
		    json_object_get(cur, "partner_digests"), name,
		    (json_t *)pd) == -1)
			goto fail;
	}
	for (i = 0; i < json_array_size(parts); i++)
		json_object_set_new(json_array_get(parts, i), "parts",
		    json_integer((json_int_t)json_array_size(parts)));
	return parts;
fail:
	json_decref(parts);
	return NULL;
}

/* ---- config.reloaded ----------------------------------------------------- */

/* {"added":[in b, not a],"removed":[in a, not b]} of two sorted string
 * arrays, or NULL when they hold the same strings. */
static json_t *
set_diff(const json_t *a, const json_t *b)
{
	json_t *add, *rem, *v;
	size_t i, j;
	int found;

	add = json_array();
	rem = json_array();
	for (i = 0; i < json_array_size(b); i++) {
		v = json_array_get(b, i);
		for (found = 0, j = 0; j < json_array_size(a) && !found; j++)
			found = json_equal(v, json_array_get(a, j));
		if (!found)
			json_array_append(add, v);
	}
	for (i = 0; i < json_array_size(a); i++) {
		v = json_array_get(a, i);
		for (found = 0, j = 0; j < json_array_size(b) && !found; j++)
			found = json_equal(v, json_array_get(b, j));
		if (!found)
			json_array_append(rem, v);
	}
	if (json_array_size(add) == 0 && json_array_size(rem) == 0) {
		json_decref(add);
		json_decref(rem);
		return NULL;
	}
	return json_pack("{s:o,s:o}", "added", add, "removed", rem);
}

/* Adds v under key k of the object out[name] (creating it); takes v. */
static void
put(json_t *out, const char *name, const char *k, json_t *v)
{
	json_t *o;

	if (v == NULL)
		return;
	if ((o = json_object_get(out, name)) == NULL) {
		o = json_object();
		json_object_set_new(out, name, o);
	}
	json_object_set_new(o, k, v);
}

/* Appends to the array out[name] (creating it); takes v. */
static void
append(json_t *out, const char *name, json_t *v)
{
	json_t *a;

	if ((a = json_object_get(out, name)) == NULL) {
		a = json_array();
		json_object_set_new(out, name, a);
	}
	json_array_append_new(a, v);
}

/* What changed in one partner present in both. */
static void
partner_diff(json_t *out, const struct partner *a, const struct partner *b)
{
	json_t *asp_a = aspects(a), *asp_b = aspects(b), *v, *w, *d;
	json_t *changed = json_array();
	const char *k;

	if (asp_a == NULL || asp_b == NULL || changed == NULL)
		goto done;
	json_object_foreach(asp_a, k, v) {
		w = json_object_get(asp_b, k);
		if (strcmp(k, "password") == 0) {
			/* compared in memory: a new hash is a change */
			if (!json_equal(v, w) || strcmp(a->password_hash ?
			    a->password_hash : "", b->password_hash ?
			    b->password_hash : "") != 0)
				json_array_append_new(changed, json_string(k));
			continue;
		}
		if (same(v, w))
			continue;
		json_array_append_new(changed, json_string(k));
		if (strcmp(k, "keys") == 0 && (d = set_diff(v, w)) != NULL)
			put(out, "keys_changed", a->name, d);
		if (strcmp(k, "allow_from") == 0 && (d = set_diff(v, w)) != NULL)
			put(out, "allowlists_changed", a->name, d);
	}
	if (json_array_size(changed) > 0) {
		put(out, "partners_changed", a->name, changed);
		changed = NULL;
	}
done:
	json_decref(changed);
	json_decref(asp_a);
	json_decref(asp_b);
}

/* Limits, settings and the server's address lists. */
static void
settings_diff(json_t *out, const struct config *a, const struct config *b)
{
	json_t *va, *vb, *d;
	size_t i;

	for (i = 0; i < NFIELDS; i++) {
		va = field_value(a, &fields[i]);
		vb = field_value(b, &fields[i]);
		if (va != NULL && vb != NULL && !json_equal(va, vb))
			put(out, fields[i].limit ? "limits_changed" :
			    "settings_changed", fields[i].name,
			    json_pack("{s:O,s:O}", "from", va, "to", vb));
		json_decref(va);
		json_decref(vb);
	}
	va = cidr_array(a->server.allow_from, a->server.nallow_from);
	vb = cidr_array(b->server.allow_from, b->server.nallow_from);
	if (va != NULL && vb != NULL && (d = set_diff(va, vb)) != NULL)
		put(out, "allowlists_changed", "server.allow_from", d);
	json_decref(va);
	json_decref(vb);
	va = cidr_array(a->server.deny_from, a->server.ndeny_from);
	vb = cidr_array(b->server.deny_from, b->server.ndeny_from);
	if (va != NULL && vb != NULL && (d = set_diff(va, vb)) != NULL)
		put(out, "allowlists_changed", "server.deny_from", d);
	json_decref(va);
	json_decref(vb);
}

json_t *
confdiff(const struct config *old, const struct config *new)
{
	const struct partner *p, *q;
	json_t *out;
	size_t i;

	if ((out = json_object()) == NULL)
		return NULL;
	for (i = 0; i < new->npartners; i++) {
		p = &new->partners[i];
		if ((q = config_partner(old, p->name)) == NULL)
			append(out, "partners_added", json_string(p->name));
	}
	for (i = 0; i < old->npartners; i++) {
		p = &old->partners[i];
		if ((q = config_partner(new, p->name)) == NULL)
			append(out, "partners_removed", json_string(p->name));
		else
			partner_diff(out, p, q);
	}
	settings_diff(out, old, new);
	return out;
}

/* ---- what only a restart applies ---------------------------------------- */

static int
str_differ(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

/* 1 if the two lists hold different blocks (in any order), or on error. */
static int
cidrs_differ(const struct cidr *a, size_t na, const struct cidr *b, size_t nb)
{
	json_t *x = cidr_array(a, na), *y = cidr_array(b, nb);
	int d = x == NULL || y == NULL || !json_equal(x, y);

	json_decref(x);
	json_decref(y);
	return d;
}

json_t *
confdiff_restart_only(const struct config *a, const struct config *b)
{
	json_t *out;
	const struct {
		const char	*name;
		int		 differ;
	} keys[] = {
		{ "user", str_differ(a->user, b->user) },
		{ "listen.host", str_differ(a->listen_host, b->listen_host) },
		{ "listen.port", a->listen_port != b->listen_port },
		{ "state_dir", str_differ(a->state_dir, b->state_dir) },
		{ "audit.path", str_differ(a->audit_path, b->audit_path) },
		{ "audit.key", str_differ(a->audit_key_path,
		    b->audit_key_path) },
		{ "audit.segments_dir", str_differ(a->audit_segments_dir,
		    b->audit_segments_dir) },
		{ "audit.segment_max", a->audit_segment_max !=
		    b->audit_segment_max },
		{ "audit.segment_age", a->audit_segment_age_s !=
		    b->audit_segment_age_s },
		{ "audit.host_id", str_differ(a->audit_host_id,
		    b->audit_host_id) },
		{ "audit.syslog", a->audit_syslog != b->audit_syslog },
		{ "audit.sign_with", str_differ(a->audit_sign_with,
		    b->audit_sign_with) },
		{ "audit.keyring", str_differ(a->audit_keyring,
		    b->audit_keyring) },
		{ "server.user", str_differ(a->server.user, b->server.user) },
		{ "server.max_sessions", a->server.max_sessions !=
		    b->server.max_sessions },
		{ "server.max_startups", a->server.max_startups !=
		    b->server.max_startups },
		{ "control.socket", str_differ(a->control_socket,
		    b->control_socket) },
		{ "log.target", a->log_target != b->log_target },
		{ "log.level", a->log_level != b->log_level },
		{ "server.proxy_protocol", cidrs_differ(a->server.proxy_from,
		    a->server.nproxy_from, b->server.proxy_from,
		    b->server.nproxy_from) },
		{ "metrics.listen", str_differ(a->metrics.listen_host,
		    b->metrics.listen_host) || a->metrics.listen_port !=
		    b->metrics.listen_port },
	};
	size_t i;

	if ((out = json_array()) == NULL)
		return NULL;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].differ && json_array_append_new(out,
		    json_string(keys[i].name)) == -1) {
			json_decref(out);
			return NULL;
		}
	return out;
}
