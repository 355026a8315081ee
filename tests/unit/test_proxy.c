/*
 * test_proxy.c - the PROXY protocol v2 header parser (server/proxy.h):
 * INET and INET6 addresses, LOCAL, truncated input asks for exactly what
 * is missing, a wrong signature, version or command, lengths that do not
 * add up, TLVs checked and skipped; and the listener's table of waiting
 * connections reading exactly the header over a real socket.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/proxy.h"

static const uint8_t sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* A header: signature, ver_cmd, fam, body of blen bytes. Its length. */
static size_t
hdr(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body,
    size_t blen)
{
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (uint8_t)(blen >> 8);
	out[15] = (uint8_t)blen;
	if (blen > 0)
		memcpy(out + 16, body, blen);
	return 16 + blen;
}

/* 192.0.2.7:40000 -> 198.51.100.1:22, then extra (TLVs). */
static size_t
v4_body(uint8_t *b, const uint8_t *extra, size_t elen)
{
	static const uint8_t a[12] = { 192, 0, 2, 7, 198, 51, 100, 1,
	    0x9c, 0x40, 0x00, 0x16 };

	memcpy(b, a, 12);
	if (elen > 0)
		memcpy(b + 12, extra, elen);
	return 12 + elen;
}

static enum proxy_status
parse(const uint8_t *buf, size_t len, struct proxy_info *pi, size_t *want,
    const char **why)
{
	return proxy_parse(buf, len, pi, want, why);
}

static void
test_v4(void **state)
{
	uint8_t body[64], buf[128];
	struct proxy_info pi;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&pi.src;
	char a[INET_ADDRSTRLEN];
	const char *why;
	size_t want, n;

	(void)state;
	n = hdr(buf, 0x21, 0x11, body, v4_body(body, NULL, 0));
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_ADDR);
	assert_int_equal(pi.hdrlen, 28);
	assert_int_equal(s4->sin_family, AF_INET);
	assert_non_null(inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a)));
	assert_string_equal(a, "192.0.2.7");
	assert_int_equal(ntohs(s4->sin_port), 40000);
	assert_int_equal(pi.srclen, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(((struct sockaddr_in *)&pi.dst)->sin_port), 22);
}

static void
test_v6(void **state)
{
	uint8_t body[64], buf[128];
	struct proxy_info pi;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&pi.src;
	char a[INET6_ADDRSTRLEN];
	const char *why;
	size_t want, n;

	(void)state;
	memset(body, 0, sizeof(body));
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::7", body), 1);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", body + 16), 1);
	body[32] = 0x12;
	body[33] = 0x34;
	body[35] = 22;
	n = hdr(buf, 0x21, 0x21, body, 36);
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_ADDR);
	assert_int_equal(pi.hdrlen, 52);
	assert_int_equal(s6->sin6_family, AF_INET6);
	assert_non_null(inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a)));
	assert_string_equal(a, "2001:db8::7");
	assert_int_equal(ntohs(s6->sin6_port), 0x1234);
}

static void
test_local(void **state)
{
	uint8_t buf[64], body[16] = { 0 };
	struct proxy_info pi;
	const char *why;
	size_t want, n;

	(void)state;
	/* no addresses at all (HAProxy's health checks) */
	n = hdr(buf, 0x20, 0x00, NULL, 0);
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_LOCAL);
	assert_int_equal(pi.hdrlen, 16);
	/* LOCAL with an address block (ignored) */
	n = hdr(buf, 0x20, 0x11, body, v4_body(body, NULL, 0));
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_LOCAL);
	assert_int_equal(pi.hdrlen, 28);
}

static void
test_unspec(void **state)
{
	uint8_t buf[300], body[256];
	struct proxy_info pi;
	const char *why;
	size_t want, n;

	(void)state;
	/* PROXY over UDP, PROXY of family UNSPEC, AF_UNIX */
	n = hdr(buf, 0x21, 0x12, body, v4_body(body, NULL, 0));
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_UNSPEC);
	n = hdr(buf, 0x21, 0x00, NULL, 0);
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_UNSPEC);
	memset(body, 0, sizeof(body));
	n = hdr(buf, 0x21, 0x31, body, 216);
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_UNSPEC);
}

/* Every prefix of a valid header asks for more, never past its end. */
static void
test_truncated(void **state)
{
	uint8_t body[64], buf[128];
	struct proxy_info pi;
	const char *why;
	size_t want, n, i;

	(void)state;
	n = hdr(buf, 0x21, 0x11, body, v4_body(body, NULL, 0));
	for (i = 0; i < n; i++) {
		assert_int_equal(parse(buf, i, &pi, &want, &why), PROXY_MORE);
		assert_true(want > i);
		assert_true(want <= n);
		assert_int_equal(want, i < 16 ? 16 : n);
	}
}

static void
test_bad_signature(void **state)
{
	uint8_t buf[64], body[16] = { 0 };
	struct proxy_info pi;
	const char *why;
	size_t want, n;

	(void)state;
	/* an SSH client talking directly */
	assert_int_equal(parse((const uint8_t *)"SSH-2.0-OpenSSH_9.2\r\n", 21,
	    &pi, &want, &why), PROXY_BAD);
	assert_non_null(strstr(why, "signature"));
	/* refused on its first wrong byte already */
	assert_int_equal(parse((const uint8_t *)"S", 1, &pi, &want, &why),
	    PROXY_BAD);
	/* the v1 text form is not v2 */
	assert_int_equal(parse((const uint8_t *)"PROXY TCP4 ", 11, &pi, &want,
	    &why), PROXY_BAD);
	/* one byte off in the middle of the signature */
	n = hdr(buf, 0x21, 0x11, body, v4_body(body, NULL, 0));
	buf[7] ^= 0x20;
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_BAD);
}

static void
test_bad_version_command(void **state)
{
	uint8_t buf[64], body[16] = { 0 };
	struct proxy_info pi;
	const char *why;
	size_t want, n;

	(void)state;
	n = hdr(buf, 0x11, 0x11, body, v4_body(body, NULL, 0));
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_BAD);
	assert_non_null(strstr(why, "version"));
	n = hdr(buf, 0x22, 0x11, body, v4_body(body, NULL, 0));
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_BAD);
	assert_non_null(strstr(why, "command"));
	n = hdr(buf, 0x21, 0x41, body, v4_body(body, NULL, 0));
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_BAD);
	n = hdr(buf, 0x21, 0x13, body, v4_body(body, NULL, 0));
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_BAD);
}

static void
test_bad_lengths(void **state)
{
	uint8_t buf[64], body[64] = { 0 };
	struct proxy_info pi;
	const char *why;
	size_t want, n;

	(void)state;
	/* INET with an 8-byte block: shorter than the family needs */
	n = hdr(buf, 0x21, 0x11, body, 8);
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_BAD);
	assert_non_null(strstr(why, "shorter"));
	/* INET6 with an INET-sized block */
	n = hdr(buf, 0x21, 0x21, body, v4_body(body, NULL, 0));
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_BAD);
	/* a length above the cap is refused without waiting for it */
	n = hdr(buf, 0x21, 0x11, body, 12);
	buf[14] = 0xff;
	buf[15] = 0xff;
	assert_int_equal(parse(buf, 16, &pi, &want, &why), PROXY_BAD);
	assert_non_null(strstr(why, "longer"));
	/* exactly the cap still parses (as a wait for more) */
	buf[14] = PROXY_V2_MAX_BODY >> 8;
	buf[15] = PROXY_V2_MAX_BODY & 0xff;
	assert_int_equal(parse(buf, 16, &pi, &want, &why), PROXY_MORE);
	assert_int_equal(want, PROXY_V2_MAX);
}

static void
test_tlvs(void **state)
{
	/* PP2_TYPE_AWS (0xEA) with a VPC endpoint id, an empty NOOP */
	static const uint8_t tlv[] = { 0xea, 0x00, 0x05, 0x01, 'v', 'p', 'c',
	    'e', 0x04, 0x00, 0x00 };
	uint8_t body[64], buf[128];
	struct proxy_info pi;
	const char *why;
	size_t want, n;

	(void)state;
	n = hdr(buf, 0x21, 0x11, body, v4_body(body, tlv, sizeof(tlv)));
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_ADDR);
	assert_int_equal(pi.hdrlen, n);
	/* a TLV whose length runs past the header */
	body[12 + 2] = 0x06;
	n = hdr(buf, 0x21, 0x11, body, v4_body(body, tlv, sizeof(tlv)));
	body[12 + 2] = 0x05;
	buf[16 + 12 + 2] = 0x40;
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_BAD);
	assert_non_null(strstr(why, "TLV"));
	/* a TLV cut inside its type and length */
	n = hdr(buf, 0x21, 0x11, body, v4_body(body, tlv, 2));
	assert_int_equal(parse(buf, n, &pi, &want, &why), PROXY_BAD);
}

/* The waiting table reads the header and not one byte of what follows. */
static void
test_wait_reads_exactly(void **state)
{
	uint8_t body[64], buf[128], rest[64];
	struct pollfd pfds[PROXY_MAX_PENDING];
	struct sockaddr_in lb;
	struct proxy_wait *w;
	struct proxy_ready r;
	int sp[2], np, got = 0, i;
	size_t n;

	(void)state;
	memset(&lb, 0, sizeof(lb));
	lb.sin_family = AF_INET;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_non_null(w = proxy_wait_new());
	assert_int_equal(proxy_wait_add(w, sp[0], (struct sockaddr *)&lb,
	    sizeof(lb), 1000), 0);
	n = hdr(buf, 0x21, 0x11, body, v4_body(body, NULL, 0));
	/* the header in two pieces, SSH's banner right behind it */
	assert_int_equal(write(sp[1], buf, 10), 10);
	np = proxy_wait_pollfds(w, pfds);
	assert_int_equal(np, 1);
	assert_true(poll(pfds, (nfds_t)np, 1000) == 1);
	assert_int_equal(proxy_wait_next(w, pfds, np, 1001, &r), 0);
	memcpy(buf + n, "SSH-2.0-x\r\n", 11);
	assert_int_equal(write(sp[1], buf + 10, n + 11 - 10), n + 1);
	for (i = 0; i < 5 && !got; i++) {
		np = proxy_wait_pollfds(w, pfds);
		assert_true(poll(pfds, (nfds_t)np, 1000) >= 0);
		got = proxy_wait_next(w, pfds, np, 1002, &r);
	}
	assert_int_equal(got, 1);
	assert_int_equal(r.status, PROXY_ADDR);
	assert_int_equal(r.fd, sp[0]);
	assert_int_equal(read(sp[0], rest, sizeof(rest)), 11);
	assert_memory_equal(rest, "SSH-2.0-x\r\n", 11);
	/* a silent one is handed back at its deadline */
	assert_int_equal(proxy_wait_add(w, sp[1], (struct sockaddr *)&lb,
	    sizeof(lb), 1000), 0);
	np = proxy_wait_pollfds(w, pfds);
	assert_int_equal(proxy_wait_next(w, pfds, 0, 1000 + PROXY_TIMEOUT_MS - 1,
	    &r), 0);
	assert_int_equal(proxy_wait_next(w, pfds, 0, 1000 + PROXY_TIMEOUT_MS,
	    &r), 1);
	assert_int_equal(r.status, PROXY_BAD);
	assert_non_null(strstr(r.why, "within"));
	assert_int_equal(r.fd, sp[1]);
	proxy_wait_free(w);
	close(sp[0]);
	close(sp[1]);
}

/* Opened and closed without a byte: a TCP health check, not an error;
 * closed after part of a header: an error. */
static void
test_wait_health_check(void **state)
{
	struct pollfd pfds[PROXY_MAX_PENDING];
	struct sockaddr_in lb;
	struct proxy_wait *w;
	struct proxy_ready r;
	int a[2], b[2], np, i, got;

	(void)state;
	memset(&lb, 0, sizeof(lb));
	lb.sin_family = AF_INET;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	assert_non_null(w = proxy_wait_new());
	assert_int_equal(proxy_wait_add(w, a[0], (struct sockaddr *)&lb,
	    sizeof(lb), 0), 0);
	assert_int_equal(proxy_wait_add(w, b[0], (struct sockaddr *)&lb,
	    sizeof(lb), 0), 0);
	close(a[1]);
	assert_int_equal(write(b[1], sig, 5), 5);
	close(b[1]);
	np = proxy_wait_pollfds(w, pfds);
	assert_int_equal(np, 2);
	assert_true(poll(pfds, (nfds_t)np, 1000) >= 1);
	for (i = 0; i < 2; i++) {
		got = proxy_wait_next(w, pfds, np, 1, &r);
		if (!got) {	/* the second may need its own poll */
			np = proxy_wait_pollfds(w, pfds);
			assert_true(poll(pfds, (nfds_t)np, 1000) >= 1);
			got = proxy_wait_next(w, pfds, np, 1, &r);
		}
		assert_int_equal(got, 1);
		if (r.fd == a[0])
			assert_int_equal(r.status, PROXY_LOCAL);
		else {
			assert_int_equal(r.fd, b[0]);
			assert_int_equal(r.status, PROXY_BAD);
			assert_non_null(strstr(r.why, "closed before"));
		}
		close(r.fd);
	}
	proxy_wait_free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v4),
		cmocka_unit_test(test_v6),
		cmocka_unit_test(test_local),
		cmocka_unit_test(test_unspec),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bad_signature),
		cmocka_unit_test(test_bad_version_command),
		cmocka_unit_test(test_bad_lengths),
		cmocka_unit_test(test_tlvs),
		cmocka_unit_test(test_wait_reads_exactly),
		cmocka_unit_test(test_wait_health_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
