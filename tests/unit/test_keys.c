/*
 * test_keys.c - server/keys.c: which authorized_keys lines sluice accepts
 * (key types, the RSA size floor, options, certificates, damaged base64)
 * and whether an entry looks like a key line or a file path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "server/keys.h"

#define ED25519	"AAAAC3NzaC1lZDI1NTE5AAAAIG7k36o+Y+W1zFPoG+ARiR3OBv5bgp8HNL+i6iKS43Wq"
#define ECDSA	"AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBF6dQyatFZSHSCp0" \
	"3fxwhnI5B34Jcw1ipSdGIbH7jcb1bXgFOkoHzGMqewfpR4VnUT/GDcUs7CZzC9GODI1XnMs="
#define RSA1024	"AAAAB3NzaC1yc2EAAAADAQABAAAAgQDZPMlBzG6IRUszOxLq8yJwzITAJ/km/6r+EAtT" \
	"a1mmbqmmI+txArj384eAODIEXh7m1rJxs0LX5WVmX9wsebGwSPb2HqrgFOPOx9QaEOwegUyn" \
	"Ok5E/qCKzIyQGJwU7xkwZIbs9sGW86pm6qGZ12nMXIrOJ/pkc9+jFq9dy5668Q=="
#define RSA2048	"AAAAB3NzaC1yc2EAAAADAQABAAABAQDNALMZW2z0gSTo2dwbe0nwtiFMTTQADWbFW1QM" \
	"01NOoFxyTbJXPKFpui/mmu3WDHFehUZ6ydEvWQwmCzsBilLdUDdqLqSXo09r56mG72qI85TY" \
	"nNUDsoP/oIuuFZbXLIR+MAcksnEToD7237uWJ9THrES9pqPvGSyN1MbYuiEPC/ZqBuG17AJj" \
	"2SVE6LsxlT/xovQefK9YgmhN+oB+2etGg23YVliUR9T0cH4jHT5ld/kD8LU5xVDKaQPEajo5" \
	"DPFem4yU/+eNULwPXNCq3dzusMZ/BYuNouaJQ4poV8dIfKL28vCyEf8DaD021VnIu3EzYVbg" \
	"I4mN35wQGKkJ3S1n"

/* The reason pubkey_line_problem gives for line, "" if it accepts it. */
static const char *
problem(const char *line, char *why, size_t whylen)
{
	char *norm = (char *)"unset";

	if (pubkey_line_problem(line, &norm, why, whylen) == NULL) {
		assert_non_null(norm);
		free(norm);
		return "";
	}
	assert_null(norm);
	return why;
}

static void
test_accepted(void **state)
{
	char why[256], *norm = NULL;

	(void)state;
	assert_null(pubkey_line_problem("ssh-ed25519 " ED25519 " acme@host",
	    &norm, why, sizeof(why)));
	/* normalised: leading blanks and the comment dropped */
	assert_string_equal(norm, "ssh-ed25519 " ED25519);
	free(norm);
	assert_null(pubkey_line_problem("  \tssh-ed25519 " ED25519, &norm, why,
	    sizeof(why)));
	assert_string_equal(norm, "ssh-ed25519 " ED25519);
	free(norm);
	assert_string_equal(problem("ecdsa-sha2-nistp256 " ECDSA " x", why,
	    sizeof(why)), "");
	assert_string_equal(problem("ssh-rsa " RSA2048 " x", why, sizeof(why)),
	    "");
}

static void
test_refused(void **state)
{
	char why[256];

	(void)state;
	/* RSA under 2048 bits, with its size in the message */
	assert_non_null(strstr(problem("ssh-rsa " RSA1024 " x", why,
	    sizeof(why)), "is a 1024-bit RSA key; RSA keys need 2048 bits"));
	/* the type in front does not match the key data */
	assert_non_null(strstr(problem("ssh-rsa " ED25519, why, sizeof(why)),
	    "the key data is not a ssh-rsa key"));
	assert_non_null(strstr(problem("ecdsa-sha2-nistp384 " ECDSA, why,
	    sizeof(why)), "not a ecdsa-sha2-nistp384 key"));
	/* damaged or cut base64 */
	assert_non_null(strstr(problem("ssh-ed25519 AAAA!!!!bad", why,
	    sizeof(why)), "does not decode"));
	assert_non_null(strstr(problem("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI",
	    why, sizeof(why)), "does not decode"));
	/* a valid header but the key cut short: libssh refuses it */
	assert_non_null(strstr(problem("ssh-ed25519 "
	    "AAAAC3NzaC1lZDI1NTE5AAAAIG7k", why, sizeof(why)),
	    "is not a valid ssh-ed25519 key"));
	assert_non_null(strstr(problem("ssh-ed25519", why, sizeof(why)),
	    "has no base64 key after \"ssh-ed25519\""));
	/* options, DSA, certificates, unknown types */
	assert_non_null(strstr(problem("from=\"10.0.0.0/8\" ssh-ed25519 "
	    ED25519, why, sizeof(why)), "options are not supported"));
	assert_non_null(strstr(problem("ssh-dss AAAAB3NzaC1kc3MAAACBAP", why,
	    sizeof(why)), "DSA keys are not accepted"));
	assert_non_null(strstr(problem("ssh-ed25519-cert-v01@openssh.com AAAA",
	    why, sizeof(why)), "certificates are not supported"));
	assert_non_null(strstr(problem("hello world", why, sizeof(why)),
	    "is not an OpenSSH public key line"));
	assert_non_null(strstr(problem("", why, sizeof(why)),
	    "is not an OpenSSH public key line"));
}

static void
test_line_like(void **state)
{
	(void)state;
	assert_int_equal(pubkey_line_like("ssh-ed25519 " ED25519), 1);
	assert_int_equal(pubkey_line_like("ssh-dss AAAA"), 1);
	assert_int_equal(pubkey_line_like("ecdsa-sha2-nistp999 AAAA"), 1);
	assert_int_equal(pubkey_line_like("from=\"x\" ssh-ed25519 AAAA"), 1);
	assert_int_equal(pubkey_line_like("/etc/sluice/keys/acme.pub"), 0);
	assert_int_equal(pubkey_line_like("./acme.pub"), 0);
	assert_int_equal(pubkey_line_like("keys/acme.pub"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_line_like),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
