/*
 * operator.c - operator roles (see operator.h).
 */
#include "policy/operator.h"

#include <string.h>

enum op_role
operator_role(const struct config *cfg, uid_t uid, uid_t service_uid,
    const char *user, const char *const *groups, size_t ngroups, int *line)
{
	const struct operator_entry *e;
	enum op_role best = OPROLE_NONE;
	size_t i, g;
	int match;

	if (line != NULL)
		*line = 0;
	if (uid == 0 || uid == service_uid)
		return OPROLE_OWNER;
	for (i = 0; cfg != NULL && i < cfg->noperators; i++) {
		e = &cfg->operators[i];
		match = 0;
		if (e->user != NULL && user != NULL)
			match = strcmp(e->user, user) == 0;
		for (g = 0; e->group != NULL && !match && g < ngroups; g++)
			match = groups[g] != NULL &&
			    strcmp(e->group, groups[g]) == 0;
		if (match && e->role > best) {
			best = e->role;
			if (line != NULL)
				*line = e->line;
		}
	}
	return best;
}

int
operator_may(enum op_role role, enum op_role need)
{
	return need != OPROLE_NONE && role >= need;
}
