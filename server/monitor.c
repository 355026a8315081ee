/*
 * monitor.c - the session's side of its questions to the listener
 * (server/monitor.h).
 */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "common/util.h"
#include "server/monitor.h"

uint32_t
monitor_ask(int fd, const void *msg, size_t len, int timeout_ms)
{
	uint32_t reply;

	if (monitor_call(fd, msg, len, &reply, sizeof(reply), timeout_ms) ==
	    -1)
		return MON_ERROR;
	return reply;
}

int
monitor_call(int fd, const void *msg, size_t len, void *reply, size_t rlen,
    int timeout_ms)
{
	struct pollfd pfd;
	ssize_t n;
	int64_t deadline;
	int left;

	if (fd == -1)
		return -1;
	do
		n = send(fd, msg, len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)len)
		return -1;
	deadline = mono_ms() + timeout_ms;
	for (;;) {
		left = (int)(deadline - mono_ms());
		if (left <= 0)
			return -1;
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, left) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(fd, reply, rlen, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n != (ssize_t)rlen)
			return -1;
		return 0;
	}
}
