/*
 * configobj.c - the loaded configuration as an object (see config.h):
 * releasing it and finding a partner in it. Apart from the YAML loader
 * (config.c), so a session process, which gets its configuration from
 * the supervisor (sessioncfg.c), does not link libyaml.
 */
#include "policy/config.h"

#include <stdlib.h>
#include <string.h>

void
config_strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
free_notify(struct notify_config *nc)
{
	struct notify_target *t;
	size_t i, j;

	for (i = 0; i < nc->ntargets; i++) {
		t = &nc->targets[i];
		for (j = 0; j < t->npartners; j++)
			free(t->partners[j]);
		free(t->partners);
		for (j = 0; j < t->argc; j++)
			free(t->argv[j]);
		free(t->argv);
		free(t->url);
		free(t->secret_file);
		free(t->ca_file);
	}
	free(nc->targets);
	nc->targets = NULL;
	nc->ntargets = 0;
}

void
config_free(struct config *cfg)
{
	struct partner *p;
	size_t i, j;

	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->listen_host);
	free(cfg->metrics.listen_host);
	free_notify(&cfg->notify);
	for (i = 0; i < cfg->nhost_keys; i++)
		free(cfg->host_keys[i]);
	free(cfg->host_keys);
	free(cfg->state_dir);
	free(cfg->audit_path);
	free(cfg->audit_key_path);
	free(cfg->audit_segments_dir);
	free(cfg->audit_host_id);
	free(cfg->audit_prefix);
	free(cfg->audit_retention_mode);
	free(cfg->store.url);
	free(cfg->store.bucket);
	free(cfg->store.prefix);
	free(cfg->store.dir);
	free(cfg->store.region);
	free(cfg->store.endpoint);
	free(cfg->store.sse);
	free(cfg->store.kms_key_id);
	free(cfg->store.storage_class);
	free(cfg->store.acl);
	config_strv_free(cfg->store.tag_keys, cfg->store.ntags);
	config_strv_free(cfg->store.tag_values, cfg->store.ntags);
	free(cfg->store.object_lock_mode);
	free(cfg->store.ca_file);
	free(cfg->store.pinned_pubkey);
	free(cfg->store.quarantine_prefix);
	free(cfg->server.user);
	free(cfg->user);
	free(cfg->server.allow_from);
	free(cfg->server.deny_from);
	free(cfg->server.proxy_from);
	free(cfg->server.kex);
	free(cfg->server.ciphers);
	free(cfg->server.macs);
	free(cfg->server.host_key_algorithms);
	free(cfg->server.pubkey_algorithms);
	free(cfg->receipts.sign_with);
	free(cfg->receipts.keyring);
	free(cfg->audit_sign_with);
	free(cfg->audit_keyring);
	free(cfg->receipts.dir);
	for (i = 0; i < cfg->nroles; i++)
		free(cfg->roles[i].name);
	free(cfg->roles);
	free(cfg->control_socket);
	for (i = 0; i < cfg->noperators; i++) {
		free(cfg->operators[i].user);
		free(cfg->operators[i].group);
	}
	free(cfg->operators);
	for (i = 0; i < cfg->npartners; i++) {
		p = &cfg->partners[i];
		config_strv_free(p->completion.temp_patterns,
		    p->completion.ntemp_patterns);
		free(p->completion.marker);
		free(p->completion.checksum);
		free(p->completion.manifest);
		config_strv_free(p->signature.signers, p->signature.nsigners);
		free(p->signature.keyring);
		free(p->signature.decryption_key);
		free(p->name);
		for (j = 0; j < p->nauthorized_keys; j++)
			free(p->authorized_keys[j]);
		free(p->authorized_keys);
		if (p->password_hash != NULL) {
			explicit_bzero(p->password_hash,
			    strlen(p->password_hash));
			free(p->password_hash);
		}
		free(p->allow_from);
		free(p->object_key);
		free(p->storage_class);
		config_strv_free(p->tag_keys, p->ntags);
		config_strv_free(p->tag_values, p->ntags);
	}
	free(cfg->partners);
	free(cfg);
}

const struct partner *
config_partner(const struct config *cfg, const char *name)
{
	size_t i;

	if (cfg == NULL || name == NULL)
		return NULL;
	for (i = 0; i < cfg->npartners; i++)
		if (cfg->partners[i].name != NULL &&
		    strcmp(cfg->partners[i].name, name) == 0)
			return &cfg->partners[i];
	return NULL;
}
