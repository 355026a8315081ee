/*
 * proxy.c - the PROXY protocol v2 header (server/proxy.h): the parser, a
 * pure function over bytes (fuzzed: fuzz/fuzz_proxy.c), and the table of
 * connections still sending theirs to the listener.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/proxy.h"

static const uint8_t proxy_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* Address block lengths by family (high nibble of byte 13). */
static const size_t proxy_alen[] = { 0, 12, 36, 216 };

static enum proxy_status
bad(const char **why, const char *what)
{
	*why = what;
	return PROXY_BAD;
}

/* TLVs from off to end: each type, uint16 length, value, within the
 * header. 0, or -1 on one that runs past it. */
static int
tlvs_ok(const uint8_t *buf, size_t off, size_t end)
{
	size_t tlen;

	while (off < end) {
		if (end - off < 3)
			return -1;
		tlen = (size_t)buf[off + 1] << 8 | buf[off + 2];
		if (tlen > end - off - 3)
			return -1;
		off += 3 + tlen;
	}
	return 0;
}

static void
fill_addrs(const uint8_t *a, int inet6, struct proxy_info *out)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->src;
	struct sockaddr_in *d4 = (struct sockaddr_in *)&out->dst;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->src;
	struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&out->dst;

	if (!inet6) {
		s4->sin_family = d4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a, 4);
		memcpy(&d4->sin_addr, a + 4, 4);
		memcpy(&s4->sin_port, a + 8, 2);	/* network order both */
		memcpy(&d4->sin_port, a + 10, 2);
		out->srclen = sizeof(*s4);
		return;
	}
	s6->sin6_family = d6->sin6_family = AF_INET6;
	memcpy(&s6->sin6_addr, a, 16);
	memcpy(&d6->sin6_addr, a + 16, 16);
	memcpy(&s6->sin6_port, a + 32, 2);
	memcpy(&d6->sin6_port, a + 34, 2);
	out->srclen = sizeof(*s6);
}

enum proxy_status
proxy_parse(const uint8_t *buf, size_t len, struct proxy_info *out,
    size_t *want, const char **why)
{
	size_t body, need, alen;
	unsigned ver, cmd, fam, proto;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	*want = 0;
	/* a wrong signature is refused on its first wrong byte */
	if (memcmp(buf, proxy_sig, len < sizeof(proxy_sig) ? len :
	    sizeof(proxy_sig)) != 0)
		return bad(why, "not a PROXY protocol v2 header (wrong "
		    "signature; is the load balancer sending PROXY v2?)");
	if (len < PROXY_V2_HDR) {
		*want = PROXY_V2_HDR;
		return PROXY_MORE;
	}
	ver = buf[12] >> 4;
	cmd = buf[12] & 0x0f;
	fam = buf[13] >> 4;
	proto = buf[13] & 0x0f;
	if (ver != 2)
		return bad(why, "PROXY protocol version is not 2");
	if (cmd > 1)
		return bad(why, "unknown PROXY v2 command");
	body = (size_t)buf[14] << 8 | buf[15];
	if (body > PROXY_V2_MAX_BODY)
		return bad(why, "PROXY v2 header longer than 4096 bytes");
	need = PROXY_V2_HDR + body;
	if (len < need) {
		*want = need;
		return PROXY_MORE;
	}
	out->hdrlen = need;
	if (cmd == 0)		/* LOCAL: addresses, if any, are ignored */
		return PROXY_LOCAL;
	if (fam >= sizeof(proxy_alen) / sizeof(proxy_alen[0]) || proto > 2)
		return bad(why, "unknown PROXY v2 address family or "
		    "transport");
	alen = proxy_alen[fam];
	if (body < alen)
		return bad(why, "PROXY v2 address block shorter than its "
		    "family needs");
	if (tlvs_ok(buf, PROXY_V2_HDR + alen, need) == -1)
		return bad(why, "PROXY v2 TLV runs past the header");
	if (proto != 1 || (fam != 1 && fam != 2))
		return PROXY_UNSPEC;
	fill_addrs(buf + PROXY_V2_HDR, fam == 2, out);
	return PROXY_ADDR;
}

/* --- connections waiting for their header --------------------------------- */

struct proxy_conn {
	int			 fd;		/* -1: free */
	int			 pfd;		/* index in the last pollfds */
	int64_t			 deadline;
	struct sockaddr_storage	 lb;
	size_t			 have, want;
	uint8_t			 buf[PROXY_V2_MAX];
};

struct proxy_wait {
	struct proxy_conn	 c[PROXY_MAX_PENDING];
};

struct proxy_wait *
proxy_wait_new(void)
{
	struct proxy_wait *w;
	int i;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	for (i = 0; i < PROXY_MAX_PENDING; i++)
		w->c[i].fd = w->c[i].pfd = -1;
	return w;
}

void
proxy_wait_free(struct proxy_wait *w)
{
	int i;

	if (w == NULL)
		return;
	for (i = 0; i < PROXY_MAX_PENDING; i++)
		if (w->c[i].fd != -1)
			close(w->c[i].fd);
	free(w);
}

int
proxy_wait_add(struct proxy_wait *w, int fd, const struct sockaddr *lb,
    socklen_t lblen, int64_t now_ms)
{
	struct proxy_conn *c = NULL;
	int i, fl;

	for (i = 0; i < PROXY_MAX_PENDING && c == NULL; i++)
		if (w->c[i].fd == -1)
			c = &w->c[i];
	if (c == NULL || lblen > (socklen_t)sizeof(c->lb))
		return -1;
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	c->fd = fd;
	c->pfd = -1;
	c->deadline = now_ms + PROXY_TIMEOUT_MS;
	memset(&c->lb, 0, sizeof(c->lb));
	memcpy(&c->lb, lb, lblen);
	c->have = 0;
	c->want = PROXY_V2_HDR;
	return 0;
}

int
proxy_wait_pollfds(struct proxy_wait *w, struct pollfd *pfds)
{
	int i, n = 0;

	for (i = 0; i < PROXY_MAX_PENDING; i++) {
		w->c[i].pfd = -1;
		if (w->c[i].fd == -1)
			continue;
		pfds[n].fd = w->c[i].fd;
		pfds[n].events = POLLIN;
		pfds[n].revents = 0;
		w->c[i].pfd = n++;
	}
	return n;
}

/* Reads what the connection sent, never past its header. A final status,
 * or PROXY_MORE. */
static enum proxy_status
conn_read(struct proxy_conn *c, struct proxy_ready *r)
{
	enum proxy_status st;
	ssize_t n;

	do
		n = recv(c->fd, c->buf + c->have, c->want - c->have, 0);
	while (n == -1 && errno == EINTR);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return PROXY_MORE;
	if (n == 0 && c->have == 0) {
		/* opened and closed without a byte: a TCP health check (an
		 * NLB's, HAProxy's plain "check") */
		r->why = "closed without a header (a TCP health check)";
		return PROXY_LOCAL;
	}
	if (n <= 0) {
		r->why = n == 0 ? "connection closed before the PROXY header "
		    "was complete" : "read error before the PROXY header was "
		    "complete";
		return PROXY_BAD;
	}
	c->have += (size_t)n;
	st = proxy_parse(c->buf, c->have, &r->info, &c->want, &r->why);
	if (st == PROXY_MORE && c->want <= c->have)	/* cannot happen */
		return bad(&r->why, "PROXY v2 parser asked for no more bytes");
	return st;
}

int
proxy_wait_next(struct proxy_wait *w, struct pollfd *pfds, int n,
    int64_t now_ms, struct proxy_ready *r)
{
	struct proxy_conn *c;
	enum proxy_status st;
	int i;

	for (i = 0; i < PROXY_MAX_PENDING; i++) {
		c = &w->c[i];
		if (c->fd == -1)
			continue;
		memset(r, 0, sizeof(*r));
		st = PROXY_MORE;
		if (c->pfd >= 0 && c->pfd < n && pfds[c->pfd].revents != 0) {
			pfds[c->pfd].revents = 0;
			st = conn_read(c, r);
		}
		if (st == PROXY_MORE && now_ms >= c->deadline) {
			st = PROXY_BAD;
			r->why = "no complete PROXY header within 5 s";
		}
		if (st == PROXY_MORE)
			continue;
		/* the session gets the socket as accept(2) gave it */
		(void)fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) &
		    ~O_NONBLOCK);
		r->fd = c->fd;
		r->status = st;
		r->lb = c->lb;
		c->fd = c->pfd = -1;
		return 1;
	}
	return 0;
}
