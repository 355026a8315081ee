/*
 * monitor.h - what a session asks the listener (the monitor) beyond the
 * connection guard's questions (server/guard.h), on the same SOCK_SEQPACKET
 * socketpair, one message per question, one uint32 answer each:
 *
 *   MON_PASSWORD  user + password -> MON_PW_*. Only the listener holds the
 *                 password hashes; it always runs crypt(3) (a dummy hash
 *                 for unknown users, banned users and partners without a
 *                 password), so every answer takes one round trip and one
 *                 hash, and it counts a wrong password towards the bans
 *                 itself (a session cannot skip that).
 *   MON_RECORDED  a landing inode and a receipt fid -> 1 if the state
 *                 database knows either, 0 if not, MON_ERROR.
 *   MON_RECEIVED  a file the session received on a file system that keeps
 *                 no receipts -> 0 once its row and file.received record
 *                 are durable, MON_ERROR otherwise. The listener takes it
 *                 only for the partner the session logged in as.
 *   MON_PEER      (the type alone) -> struct mon_peer: the client's
 *                 address as the load balancer's PROXY header gave it
 *                 (server.proxy_protocol), which the session uses instead
 *                 of its socket's peer. Asked only when proxy_protocol
 *                 is set.
 *
 * Everything in these messages comes from a session: the listener checks
 * sizes and terminators before using a byte of it.
 */
#ifndef SLUICE_MONITOR_H
#define SLUICE_MONITOR_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "spool/state.h"

enum monitor_msg_type {
	MON_PASSWORD = 101,
	MON_RECORDED,
	MON_RECEIVED,
	MON_PEER,
};

#define MON_ERROR	0xffffffffu

enum mon_pw_reply {
	MON_PW_OK = 0,
	MON_PW_WRONG,		/* wrong password (counted towards bans) */
	MON_PW_NONE,		/* the partner has no password login */
	MON_PW_UNKNOWN,		/* no such partner */
	MON_PW_BANNED,		/* user banned after repeated failures */
};

struct mon_password {
	uint32_t type;
	char	 user[128];
	char	 password[1024];
};

struct mon_recorded {
	uint32_t type;
	int64_t	 dev;
	int64_t	 ino;
	char	 fid[33];	/* "" when the file has no receipt */
};

struct mon_received {
	uint32_t	 type;
	struct file_rec	 rec;
};

struct mon_peer {
	uint32_t		 type;		/* MON_PEER */
	uint32_t		 proxied;	/* 1: addr came in a PROXY header */
	struct sockaddr_storage	 addr;		/* the client */
	uint32_t		 addrlen;
	char			 via[INET6_ADDRSTRLEN]; /* the load balancer */
};

/*
 * Session side: sends len bytes of msg on fd and waits up to timeout_ms for
 * an answer of exactly rlen bytes into reply. 0, or -1 (no answer: refuse).
 */
int monitor_call(int fd, const void *msg, size_t len, void *reply,
    size_t rlen, int timeout_ms);

/*
 * Session side: sends len bytes of msg on fd and waits up to timeout_ms for
 * the answer. Returns the answer, or MON_ERROR (no answer: refuse).
 */
uint32_t monitor_ask(int fd, const void *msg, size_t len, int timeout_ms);

#endif
