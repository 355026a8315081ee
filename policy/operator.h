/*
 * operator.h - which operator role a local user has (config "operators:"),
 * and whether a role may run a command. Pure functions over the loaded
 * configuration: the control role (control/control.h) looks the peer's
 * names up and asks here.
 *
 * Ownership: everything is borrowed.
 */
#ifndef SLUICE_OPERATOR_H
#define SLUICE_OPERATOR_H

#include <stddef.h>
#include <sys/types.h>

#include "policy/config.h"

/*
 * The role of the user with this uid, name (NULL: no account of that uid)
 * and group names (the primary group, the supplementary ones, and the
 * connecting process's gid; borrowed). uid 0 and service_uid (the uid the
 * gateway's roles run as) are always OPROLE_OWNER. Otherwise the highest
 * role of every "operators:" entry naming the user or one of the groups;
 * OPROLE_NONE when none does. *line (may be NULL) gets the line of the entry
 * that granted it (0 for root, the service user or no role).
 */
enum op_role operator_role(const struct config *cfg, uid_t uid,
    uid_t service_uid, const char *user, const char *const *groups,
    size_t ngroups, int *line);

/* 1 if role may run what needs at least `need`, else 0. */
int operator_may(enum op_role role, enum op_role need);

#endif
