/*
 * proxy.h - the PROXY protocol, version 2 (the binary form of HAProxy's
 * "proxy-protocol.txt", sent by HAProxy's send-proxy-v2 and by AWS Network
 * Load Balancers with proxy protocol v2 on), for gateways behind a TCP load
 * balancer (server.proxy_protocol in the configuration).
 *
 * A connection from a configured load balancer starts with
 *   12-byte signature \r\n\r\n\0\r\nQUIT\n
 *   byte  version (high nibble, 2) | command (low nibble: 0 LOCAL, 1 PROXY)
 *   byte  family (high nibble: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX) |
 *         transport (low nibble: 0 UNSPEC, 1 STREAM, 2 DGRAM)
 *   uint16 length of what follows (network order)
 *   addresses (INET: 4+4+2+2 bytes, INET6: 16+16+2+2) then TLVs
 *   (type byte, uint16 length, value), which are checked and skipped.
 * The listener reads exactly the header (never a byte of SSH after it),
 * without blocking its accept loop: struct proxy_wait keeps the
 * connections still sending their header, each with a deadline.
 *
 * Ownership: proxy_parse borrows buf and fills *out. struct proxy_wait is
 * owned by its creator (proxy_wait_new/proxy_wait_free) and owns the
 * descriptors added to it until it hands each back in a struct
 * proxy_ready (then the caller owns ready.fd) or closes them in
 * proxy_wait_free.
 */
#ifndef SLUICE_PROXY_H
#define SLUICE_PROXY_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_V2_HDR		16	/* signature, ver/cmd, fam, len */
#define PROXY_V2_MAX_BODY	4096	/* addresses + TLVs we accept */
#define PROXY_V2_MAX		(PROXY_V2_HDR + PROXY_V2_MAX_BODY)
#define PROXY_TIMEOUT_MS	5000	/* to send the whole header */
#define PROXY_MAX_PENDING	64	/* connections waiting for one */

enum proxy_status {
	PROXY_MORE = 0,		/* *want bytes in all are needed */
	PROXY_ADDR,		/* PROXY over TCP: out->src is the client */
	PROXY_LOCAL,		/* LOCAL (a health check); from proxy_wait
				 * also a connection closed before its
				 * first byte (a TCP health check) */
	PROXY_UNSPEC,		/* PROXY of another family/transport: the
				 * connection's own endpoints stand */
	PROXY_BAD,		/* *why says what is wrong */
};

struct proxy_info {
	struct sockaddr_storage	 src;	/* the client (PROXY_ADDR) */
	struct sockaddr_storage	 dst;	/* the address it connected to */
	socklen_t		 srclen;
	size_t			 hdrlen;	/* bytes the header took */
};

/*
 * Parses the first len bytes of a connection. PROXY_MORE with *want set
 * to the total length needed (more than len, at most PROXY_V2_MAX), or a
 * final status; PROXY_BAD sets *why (a static string).
 */
enum proxy_status proxy_parse(const uint8_t *buf, size_t len,
    struct proxy_info *out, size_t *want, const char **why);

/* A connection whose header is complete, bad, or late. */
struct proxy_ready {
	int			 fd;	/* the caller's now */
	enum proxy_status	 status;	/* ADDR, LOCAL, UNSPEC or BAD */
	const char		*why;	/* BAD: static string */
	struct sockaddr_storage	 lb;	/* the load balancer's end */
	struct proxy_info	 info;
};

struct proxy_wait;

struct proxy_wait *proxy_wait_new(void);
void proxy_wait_free(struct proxy_wait *);	/* closes what it holds */

/* Takes fd (non-blocking is set here) from load balancer lb. 0, or -1
 * when PROXY_MAX_PENDING are waiting already (fd is still the caller's). */
int proxy_wait_add(struct proxy_wait *, int fd, const struct sockaddr *lb,
    socklen_t lblen, int64_t now_ms);

/* Fills pfds (room for PROXY_MAX_PENDING) for poll(2); returns how many. */
int proxy_wait_pollfds(struct proxy_wait *, struct pollfd *pfds);

/*
 * After poll(2) over the n pfds proxy_wait_pollfds filled: reads what
 * arrived and hands back one finished connection in *r (1), or 0 when
 * none is. Call it until it returns 0. A connection past its deadline or
 * closed early comes back as PROXY_BAD.
 */
int proxy_wait_next(struct proxy_wait *, struct pollfd *pfds, int n,
    int64_t now_ms, struct proxy_ready *r);

#endif
