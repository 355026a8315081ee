/*
 * test_operator.c - operator roles (policy/operator.h) and the control
 * socket's configuration (control.socket, operators:).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "policy/config.h"
#include "policy/operator.h"

static struct operator_entry entries[] = {
	{ "alice", NULL, OPROLE_AUDITOR, 10 },
	{ NULL, "ops", OPROLE_OPERATOR, 12 },
	{ NULL, "audit", OPROLE_AUDITOR, 14 },
	{ "carol", NULL, OPROLE_OWNER, 16 },
};

static struct config cfg = {
	.operators = entries,
	.noperators = sizeof(entries) / sizeof(entries[0]),
};

#define SVC	999

static enum op_role
role(uid_t uid, const char *user, const char *g1, const char *g2, int *line)
{
	const char *groups[2] = { g1, g2 };

	return operator_role(&cfg, uid, SVC, user, groups,
	    (size_t)(g2 != NULL ? 2 : g1 != NULL ? 1 : 0), line);
}

static void
test_mapping(void **state)
{
	int line;

	(void)state;
	/* root and the service user: owners, whatever the list says */
	assert_int_equal(role(0, "root", NULL, NULL, &line), OPROLE_OWNER);
	assert_int_equal(line, 0);
	assert_int_equal(role(SVC, "sluice", NULL, NULL, NULL), OPROLE_OWNER);
	/* a user entry */
	assert_int_equal(role(1000, "alice", "alice", NULL, &line),
	    OPROLE_AUDITOR);
	assert_int_equal(line, 10);
	/* a group entry, by a supplementary group */
	assert_int_equal(role(1001, "bob", "bob", "ops", &line),
	    OPROLE_OPERATOR);
	assert_int_equal(line, 12);
	/* the highest of several entries */
	assert_int_equal(role(1000, "alice", "alice", "ops", &line),
	    OPROLE_OPERATOR);
	assert_int_equal(line, 12);
	assert_int_equal(role(1002, "carol", "audit", NULL, &line),
	    OPROLE_OWNER);
	assert_int_equal(line, 16);
	/* nobody listed, no account, names that only look alike */
	assert_int_equal(role(1003, "mallory", "users", NULL, &line),
	    OPROLE_NONE);
	assert_int_equal(line, 0);
	assert_int_equal(role(1004, NULL, NULL, NULL, NULL), OPROLE_NONE);
	assert_int_equal(role(1005, "alice2", "ops2", "Ops", NULL),
	    OPROLE_NONE);
	/* a user name is not a group name */
	assert_int_equal(role(1006, "ops", NULL, NULL, NULL), OPROLE_NONE);
	/* without any operators: only root and the service user */
	assert_int_equal(operator_role(NULL, 1000, SVC, "alice", NULL, 0,
	    NULL), OPROLE_NONE);
	assert_int_equal(operator_role(NULL, 0, SVC, "root", NULL, 0, NULL),
	    OPROLE_OWNER);
}

static void
test_may(void **state)
{
	(void)state;
	assert_true(operator_may(OPROLE_OWNER, OPROLE_OWNER));
	assert_true(operator_may(OPROLE_OWNER, OPROLE_AUDITOR));
	assert_true(operator_may(OPROLE_OPERATOR, OPROLE_OPERATOR));
	assert_true(operator_may(OPROLE_OPERATOR, OPROLE_AUDITOR));
	assert_false(operator_may(OPROLE_OPERATOR, OPROLE_OWNER));
	assert_true(operator_may(OPROLE_AUDITOR, OPROLE_AUDITOR));
	assert_false(operator_may(OPROLE_AUDITOR, OPROLE_OPERATOR));
	assert_false(operator_may(OPROLE_AUDITOR, OPROLE_OWNER));
	assert_false(operator_may(OPROLE_NONE, OPROLE_AUDITOR));
	/* a command nobody may run stays refused, even for owners */
	assert_false(operator_may(OPROLE_OWNER, OPROLE_NONE));
	assert_string_equal(op_role_name(OPROLE_AUDITOR), "auditor");
	assert_string_equal(op_role_name(OPROLE_NONE), "none");
}

/* A public key the loader accepts (its private half was thrown away). */
#define PARTNER	"partners:\n  - name: acme\n    authorized_keys: [\"ssh-ed25519 " \
	"AAAAC3NzaC1lZDI1NTE5AAAAIDQCradmq+NdrCLkjFSI3K5nWTYdNj8xlEWq9V04aFCZ\"]\n"

static char *
write_tmp(const char *text)
{
	static char path[64];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/sluice-test-operator-XXXXXX");
	assert_true((fd = mkstemp(path)) != -1);
	assert_non_null(f = fdopen(fd, "w"));
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void
test_load(void **state)
{
	static const char text[] =
	    "store:\n  url: file:///srv/o\n"
	    "control:\n  socket: /run/sluice-test/ctl.sock\n"
	    "operators:\n"
	    "  - user: root\n    role: auditor\n"
	    "  - group: root\n    role: operator\n"
	    "  - user: no-such-user-sluice-test\n    role: owner\n"
	    PARTNER;
	struct config *c = NULL;
	char *path, *err = NULL, sock[128];
	size_t len = 0;
	FILE *ef;

	(void)state;
	path = write_tmp(text);
	assert_non_null(ef = open_memstream(&err, &len));
	if (config_load(path, &c, ef) != 0) {
		fclose(ef);
		fail_msg("rejected:\n%s", err);
	}
	fclose(ef);
	assert_string_equal(c->control_socket, "/run/sluice-test/ctl.sock");
	assert_int_equal(c->noperators, 3);
	assert_string_equal(c->operators[0].user, "root");
	assert_null(c->operators[0].group);
	assert_int_equal(c->operators[0].role, OPROLE_AUDITOR);
	assert_int_equal(c->operators[0].line, 6);
	assert_string_equal(c->operators[1].group, "root");
	assert_int_equal(c->operators[1].role, OPROLE_OPERATOR);
	assert_int_equal(c->operators[2].role, OPROLE_OWNER);
	/* an unknown user is a warning naming the line, not an error */
	assert_non_null(strstr(err, ":10: warning: operators[2].user: there "
	    "is no user \"no-such-user-sluice-test\""));
	config_free(c);
	free(err);

	/* the operator's side reads only control.socket */
	assert_int_equal(config_control_socket(path, sock, sizeof(sock)), 0);
	assert_string_equal(sock, "/run/sluice-test/ctl.sock");
	unlink(path);
	path = write_tmp("store: {url: x}\naudit:\n  socket: /a\n"
	    "partners: [{control: {socket: /b}}]\n");
	assert_int_equal(config_control_socket(path, sock, sizeof(sock)), 0);
	assert_string_equal(sock, CONFIG_DEFAULT_CONTROL_SOCKET);
	unlink(path);
	assert_int_equal(config_control_socket("/nonexistent/sluice.yaml",
	    sock, sizeof(sock)), -1);
	assert_string_equal(sock, CONFIG_DEFAULT_CONTROL_SOCKET);
	/* defaults */
	path = write_tmp("store: {url: file:///srv/o}\n" PARTNER);
	assert_int_equal(config_load(path, &c, NULL), 0);
	assert_string_equal(c->control_socket, CONFIG_DEFAULT_CONTROL_SOCKET);
	assert_int_equal(c->noperators, 0);
	config_free(c);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mapping),
		cmocka_unit_test(test_may),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
