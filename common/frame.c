/*
 * Length-prefixed frames over a stream socket (or pipe). Every wait goes
 * through poll() against one deadline, so a peer that stalls mid-frame
 * cannot hold a thread longer than the caller's timeout, and a declared
 * length above the limit is refused before any body byte is read or any
 * buffer of that size allocated.
 *
 * On a socket the syscall is tried first (MSG_DONTWAIT) and poll() is used
 * only when it would block: a reply usually fits the socket buffer and a
 * frame's body usually arrives with its prefix, so the common case costs one
 * syscall instead of two. The prefix is tried first too: stintd's
 * connection threads read only after poll() said the socket is readable,
 * so a poll there would be a second one per request; a reader that does
 * wait pays one EAGAIN instead. A pipe or other non-socket fd may be blocking,
 * so there every read and write is preceded by poll() as before. The
 * deadline is checked before every wait, so a stalled peer is still cut off
 * on time; data that is already there is taken even at the deadline.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/frame.h"
#include "stint/wire.h"

/* Waits until fd is ready for events or the deadline (-1: none) passes. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int timeout = -1, n;

		if (deadline >= 0) {
			int64_t left = deadline - stint_mono_ms();

			if (left <= 0)
				return STINT_WIRE_TIMEOUT;
			timeout = left > 60000 ? 60000 : (int)left;
		}
		n = poll(&p, 1, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return STINT_WIRE_IO;
		}
		if (n == 0)
			continue; /* re-check the deadline */
		if (p.revents & POLLNVAL)
			return STINT_WIRE_IO;
		/* POLLHUP/POLLERR: let read/write report what happened. */
		return 0;
	}
}

/* Reads exactly len bytes. *got counts what arrived, so the caller can tell
 * a clean close before the frame from a truncated one. With try_first, a
 * socket is read before any poll (see the top). */
static int
read_full(int fd, uint8_t *buf, size_t len, int64_t deadline, size_t *got,
	  bool try_first)
{
	bool is_sock = true, ready = try_first;

	*got = 0;
	while (*got < len) {
		ssize_t n;
		int r;

		if (!ready || !is_sock) {
			if ((r = wait_fd(fd, POLLIN, deadline)) != 0)
				return r;
		}
		ready = true;
		if (is_sock) {
			n = recv(fd, buf + *got, len - *got, MSG_DONTWAIT);
			if (n < 0 && errno == ENOTSOCK) {
				is_sock = false;
				continue;
			}
		} else {
			n = read(fd, buf + *got, len - *got);
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				ready = false; /* wait before the next try */
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			return STINT_WIRE_IO;
		}
		if (n == 0)
			return STINT_WIRE_IO; /* peer closed */
		*got += (size_t)n;
	}
	return 0;
}

int
stint_frame_read(int fd, size_t max, int timeout_ms, uint8_t **body,
		 size_t *len)
{
	int64_t deadline = timeout_ms < 0 ? -1 : stint_mono_ms() + timeout_ms;
	uint8_t prefix[4], *buf;
	uint32_t n;
	size_t got;
	int r;

	*body = NULL;
	*len = 0;
	if ((r = read_full(fd, prefix, sizeof(prefix), deadline, &got, true)) !=
	    0)
		return r;
	n = (uint32_t)prefix[0] << 24 | (uint32_t)prefix[1] << 16 |
	    (uint32_t)prefix[2] << 8 | prefix[3];
	if (n == 0)
		return STINT_WIRE_MALFORMED; /* no message is empty */
	if (n > max)
		return STINT_WIRE_TOO_LARGE;
	if ((buf = malloc(n)) == NULL)
		return STINT_WIRE_NOMEM;
	if ((r = read_full(fd, buf, n, deadline, &got, true)) != 0) {
		free(buf);
		return r;
	}
	*body = buf;
	*len = n;
	return 0;
}

/* A reply's prefix and up to this much of its body come in one recv. */
#define REPLY_FIRST 1020

int
stint_frame_read_reply(int fd, size_t max, int timeout_ms, uint8_t **body,
		       size_t *len)
{
	int64_t deadline = timeout_ms < 0 ? -1 : stint_mono_ms() + timeout_ms;
	uint8_t first[4 + REPLY_FIRST], *buf;
	size_t got = 0, more, have;
	uint32_t n;
	ssize_t k;
	int r;

	*body = NULL;
	*len = 0;
	for (;;) {
		if ((r = wait_fd(fd, POLLIN, deadline)) != 0)
			return r;
		k = recv(fd, first, sizeof(first), MSG_DONTWAIT);
		if (k < 0 && errno == ENOTSOCK)
			return stint_frame_read(fd, max, timeout_ms, body, len);
		if (k < 0 &&
		    (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (k <= 0)
			return STINT_WIRE_IO; /* error, or closed */
		got = (size_t)k;
		break;
	}
	if (got < 4 && (r = read_full(fd, first + got, 4 - got, deadline, &more,
				      true)) != 0)
		return r;
	got = got < 4 ? 4 : got;
	n = (uint32_t)first[0] << 24 | (uint32_t)first[1] << 16 |
	    (uint32_t)first[2] << 8 | first[3];
	have = got - 4;
	if (n == 0)
		return STINT_WIRE_MALFORMED;
	if (n > max)
		return STINT_WIRE_TOO_LARGE;
	if (have > n)
		return STINT_WIRE_MALFORMED; /* sent unasked: not a reply */
	if ((buf = malloc(n)) == NULL)
		return STINT_WIRE_NOMEM;
	memcpy(buf, first + 4, have);
	if (have < n && (r = read_full(fd, buf + have, n - have, deadline,
				       &more, true)) != 0) {
		free(buf);
		return r;
	}
	*body = buf;
	*len = n;
	return 0;
}

int
stint_frame_write(int fd, const uint8_t *body, size_t len, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : stint_mono_ms() + timeout_ms;
	uint8_t prefix[4];
	struct iovec iov[2];
	size_t total, sent = 0;
	bool is_sock = true, ready = true;

	if (body == NULL || len == 0)
		return STINT_WIRE_MALFORMED;
	if (len > UINT32_MAX)
		return STINT_WIRE_TOO_LARGE;
	prefix[0] = (uint8_t)(len >> 24);
	prefix[1] = (uint8_t)(len >> 16);
	prefix[2] = (uint8_t)(len >> 8);
	prefix[3] = (uint8_t)len;
	total = len + sizeof(prefix);

	while (sent < total) {
		struct msghdr mh;
		int iovcnt = 0;
		ssize_t n;
		int r;

		/* One syscall for prefix and body when the socket takes it. */
		if (sent < sizeof(prefix)) {
			iov[iovcnt].iov_base = prefix + sent;
			iov[iovcnt++].iov_len = sizeof(prefix) - sent;
			iov[iovcnt].iov_base = (void *)body;
			iov[iovcnt++].iov_len = len;
		} else {
			iov[iovcnt].iov_base =
				(void *)(body + (sent - sizeof(prefix)));
			iov[iovcnt++].iov_len = total - sent;
		}
		if (!ready || !is_sock) {
			if ((r = wait_fd(fd, POLLOUT, deadline)) != 0)
				return r;
		}
		ready = true;
		if (is_sock) {
			memset(&mh, 0, sizeof(mh));
			mh.msg_iov = iov;
			mh.msg_iovlen = (size_t)iovcnt;
			n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno == ENOTSOCK) {
				is_sock = false;
				continue;
			}
		} else {
			n = writev(fd, iov, iovcnt);
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				ready = false; /* wait before the next try */
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			return STINT_WIRE_IO;
		}
		sent += (size_t)n;
	}
	return 0;
}
