/* The sender of every request, from the kernel: see sender.h. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "attest/sender.h"
#include "common/cgroup.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/proto.h"

/* Debian 12's headers (Linux 6.1) lack SO_PASSPIDFD; this is its value
 * in the generic socket header that x86 and arm64 use (Linux >= 6.5).
 * Elsewhere, without the headers, it is not used. */
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) ||        \
	defined(__arm__) || defined(__riscv)
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif
/* Whether each read asks for the sender's pidfd too (what it costs:
 * docs/identity.md); -DSTINT_SENDER_NO_PASSPIDFD leaves it out. */
#if defined(SO_PASSPIDFD) && !defined(STINT_SENDER_NO_PASSPIDFD)
#define STINT_SENDER_PIDFD 1
#endif

/* Reasons, constants (the refusals aggregate compares them by address). */
static const char WHY_OTHER_PROCESS[] =
	"request sent by another process than the one that connected";
static const char WHY_OTHER_USER[] =
	"request sent with another uid or gid than the connection's";
static const char WHY_PID_REUSED[] =
	"request sent by a process that took the exited connecting "
	"process's pid";
static const char WHY_NO_CREDS[] =
	"request carried no sender credentials from the kernel";
static const char WHY_FDS[] = "request carried file descriptors";

/* What one recvmsg() said about the sender of its bytes. */
struct creds {
	bool have;
	struct ucred cred;
	int pidfd; /* SCM_PIDFD, -1 if none */
	bool fds;  /* SCM_RIGHTS came along (closed at once) */
};

static int
set_passcred(int fd)
{
	int one = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0)
		return -1;
#ifdef STINT_SENDER_PIDFD
	/* Not on kernels before 6.5 (ENOPROTOOPT): the pidfd taken at
	 * accept guards against pid reuse there. */
	(void)setsockopt(fd, SOL_SOCKET, SO_PASSPIDFD, &one, sizeof(one));
#endif
	return 0;
}

int
stint_sender_listen(int fd)
{
	return set_passcred(fd);
}

int
stint_sender_ref_init(int fd, struct stint_peer *peer,
		      struct stint_sender_ref *ref)
{
	static atomic_bool warned;

	/* The peer's pidfd (peer.c took it at accept: SO_PEERPIDFD, or
	 * pidfd_open() checked against the start time) becomes ref's. */
	ref->pidfd = peer->owns_pidfd ? peer->pidfd : -1;
	peer->owns_pidfd = false;
	ref->pidfs_ino = ref->pidfd >= 0 ? peer->pidfd_ino : 0;
	ref->gone = peer->gone;
	ref->off = ref->len = 0;
	ref->unproven = false;
	ref->pid = peer->pid;
	ref->uid = peer->uid;
	ref->gid = peer->gid;
	if (set_passcred(fd) != 0)
		return -1;
	if (ref->pidfd < 0 && !ref->gone && !atomic_exchange(&warned, true))
		log_warn("no pidfd for peer pid %ld: its requests are checked "
			 "by pid, uid and gid only, not against pid reuse",
			 (long)peer->pid);
	return 0;
}

void
stint_sender_ref_close(struct stint_sender_ref *ref)
{
	if (ref->pidfd >= 0)
		close(ref->pidfd);
	ref->pidfd = -1;
}

static void
close_fds(const struct cmsghdr *cm)
{
	size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int), i;
	int fd;

	for (i = 0; i < n; i++) {
		memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
		if (fd >= 0)
			close(fd);
	}
}

/* One recvmsg() and what the kernel said about its sender. */
static ssize_t
recv_creds(int fd, uint8_t *buf, size_t len, struct creds *c)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(struct ucred)) +
		       CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.b,
		.msg_controllen = sizeof(ctl.b),
	};
	struct cmsghdr *cm;
	ssize_t n;

	c->have = false;
	c->pidfd = -1;
	c->fds = false;
	n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return n;
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET)
			continue;
		if (cm->cmsg_type == SCM_CREDENTIALS &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
			memcpy(&c->cred, CMSG_DATA(cm), sizeof(c->cred));
			c->have = true;
		} else if (cm->cmsg_type == SCM_PIDFD &&
			   cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
			memcpy(&c->pidfd, CMSG_DATA(cm), sizeof(int));
		} else if (cm->cmsg_type == SCM_RIGHTS) {
			close_fds(cm);
			c->fds = true;
		}
	}
	/* Truncated after the pidfd: descriptors came along (the kernel
	 * closed them). Without a pidfd it may be the pidfd that could not
	 * be installed (no descriptor left): the read is then checked as on
	 * a kernel without SCM_PIDFD. */
	if ((mh.msg_flags & MSG_CTRUNC) && c->pidfd >= 0)
		c->fds = true;
	return n;
}

static bool
same_process(const struct stint_sender_ref *ref, int pidfd)
{
	struct stat st;

	return fstat(pidfd, &st) == 0 && (uint64_t)st.st_ino == ref->pidfs_ino;
}

/* 0 when c's bytes came from the connecting process; else fills who.
 * *unproven is set when only the pid vouches for it (no pidfs inode to
 * compare): each frame then checks the connecting process is alive. */
static int
check(const struct stint_sender_ref *ref, struct creds *c,
      struct stint_sender *who, bool *unproven)
{
	const char *why = NULL;

	if (!c->have)
		why = WHY_NO_CREDS;
	else if (c->fds)
		why = WHY_FDS;
	else if (c->cred.pid != ref->pid)
		why = WHY_OTHER_PROCESS;
	else if (c->cred.uid != ref->uid || c->cred.gid != ref->gid)
		why = WHY_OTHER_USER;
	else if (c->pidfd >= 0 && ref->pidfs_ino != 0) {
		if (!same_process(ref, c->pidfd))
			why = WHY_PID_REUSED;
	} else {
		*unproven = true;
	}
	if (why == NULL) {
		if (c->pidfd >= 0)
			close(c->pidfd);
		return 0;
	}
	who->pid = c->have ? c->cred.pid : 0;
	who->uid = c->have ? c->cred.uid : (uid_t)-1;
	who->gid = c->have ? c->cred.gid : (gid_t)-1;
	who->pidfd = c->pidfd;
	who->why = why;
	return STINT_SENDER_MISMATCH;
}

/* Exited: the pidfd is readable (also while a zombie holds the pid). */
static bool
exited(int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};

	return poll(&p, 1, 0) != 0;
}

static int
wait_in(int fd, int64_t deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int timeout = -1, n;

		if (deadline >= 0) {
			int64_t left = deadline - stint_mono_ms();

			if (left <= 0)
				return STINT_WIRE_TIMEOUT;
			timeout = left > 60000 ? 60000 : (int)left;
		}
		n = poll(&p, 1, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (n > 0 && (p.revents & POLLNVAL)))
			return STINT_WIRE_IO;
		if (n > 0)
			return 0;
	}
}

/* One checked recvmsg() into buf; > 0 bytes, or a STINT_WIRE_* code or
 * STINT_SENDER_MISMATCH. *ready: whether to try before polling. */
static int
recv_checked(int fd, uint8_t *buf, size_t cap, int64_t deadline, bool *ready,
	     struct stint_sender_ref *ref, struct stint_sender *who,
	     size_t *got)
{
	struct creds c;
	ssize_t n;
	int r;

	for (;;) {
		if (!*ready && (r = wait_in(fd, deadline)) != 0)
			return r;
		*ready = true;
		n = recv_creds(fd, buf, cap, &c);
		if (n > 0)
			break;
		if (n == 0)
			return STINT_WIRE_IO;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			*ready = false;
		else if (errno != EINTR)
			return STINT_WIRE_IO;
	}
	if ((r = check(ref, &c, who, &ref->unproven)) != 0)
		return r;
	*got = (size_t)n;
	return 0;
}

/* Makes need (<= STINT_SENDER_BUF) bytes available at ref->buf + ref->off,
 * reading as much as fits. */
static int
fill(int fd, struct stint_sender_ref *ref, size_t need, int64_t deadline,
     bool *ready, struct stint_sender *who)
{
	size_t got;
	int r;

	if (ref->off + need > STINT_SENDER_BUF) {
		memmove(ref->buf, ref->buf + ref->off, ref->len);
		ref->off = 0;
	}
	while (ref->len < need) {
		r = recv_checked(fd, ref->buf + ref->off + ref->len,
				 STINT_SENDER_BUF - ref->off - ref->len,
				 deadline, ready, ref, who, &got);
		if (r != 0)
			return r;
		ref->len += got;
	}
	return 0;
}

static void
consume(struct stint_sender_ref *ref, size_t n)
{
	ref->off += n;
	ref->len -= n;
	if (ref->len == 0)
		ref->off = 0;
}

/* The body of n bytes: from the buffer, then (for a frame larger than the
 * buffer) read straight into the body, exactly n bytes, each read checked. */
static int
read_body(int fd, struct stint_sender_ref *ref, uint8_t *body, size_t n,
	  int64_t deadline, bool *ready, struct stint_sender *who)
{
	size_t have, got;
	int r;

	if (n <= STINT_SENDER_BUF) {
		if ((r = fill(fd, ref, n, deadline, ready, who)) != 0)
			return r;
		memcpy(body, ref->buf + ref->off, n);
		consume(ref, n);
		return 0;
	}
	have = ref->len;
	memcpy(body, ref->buf + ref->off, have);
	consume(ref, have);
	while (have < n) {
		r = recv_checked(fd, body + have, n - have, deadline, ready,
				 ref, who, &got);
		if (r != 0)
			return r;
		have += got;
	}
	return 0;
}

bool
stint_sender_buffered(const struct stint_sender_ref *ref)
{
	return ref->len > 0;
}

/*
 * The first bytes of the next frame into the empty read-ahead: tried at
 * once (after a reply and its after_reply work the next request is
 * usually there: one system call, no sleep), else poll() for at most
 * idle_ms (STINT_WIRE_TIMEOUT) and read. Not a blocking recvmsg(): a
 * reader asleep in it is woken each time the peer reads a reply from
 * this socket (a Unix socket's write-space wake-up is not filtered by
 * event, as poll()'s is): measured on the module's side, it doubled the
 * voluntary context switches per signature (docs/performance.md).
 */
static int
recv_first(int fd, int idle_ms, struct stint_sender_ref *ref,
	   struct stint_sender *who)
{
	struct creds c;
	ssize_t n;
	int r;

	for (;;) {
		n = recv_creds(fd, ref->buf, STINT_SENDER_BUF, &c);
		if (n >= 0 ||
		    (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			break;
		if (errno != EINTR) {
			struct pollfd p = {.fd = fd, .events = POLLIN};

			r = poll(&p, 1, idle_ms);
			if (r == 0)
				return STINT_WIRE_TIMEOUT;
			if (r < 0 && errno != EINTR)
				return STINT_WIRE_IO;
		}
	}
	if (n <= 0)
		return STINT_WIRE_IO;
	if ((r = check(ref, &c, who, &ref->unproven)) != 0)
		return r;
	ref->off = 0;
	ref->len = (size_t)n;
	return 0;
}

int
stint_sender_frame_wait(int fd, size_t max, int idle_ms, int timeout_ms,
			struct stint_sender_ref *ref, uint8_t **body,
			size_t *len, struct stint_sender *who)
{
	int r;

	*body = NULL;
	*len = 0;
	who->pidfd = -1;
	if (ref->len == 0 && (r = recv_first(fd, idle_ms, ref, who)) != 0)
		return r;
	/* The frame's deadline starts with its first bytes. */
	return stint_sender_frame_read(fd, max, timeout_ms, ref, body, len,
				       who);
}

int
stint_sender_frame_read(int fd, size_t max, int timeout_ms,
			struct stint_sender_ref *ref, uint8_t **body,
			size_t *len, struct stint_sender *who)
{
	int64_t deadline = timeout_ms < 0 ? -1 : stint_mono_ms() + timeout_ms;
	bool ready = true; /* the caller polled: try the read first */
	const uint8_t *p;
	uint8_t *buf;
	uint32_t n;
	int r;

	*body = NULL;
	*len = 0;
	who->pidfd = -1;
	if ((r = fill(fd, ref, 4, deadline, &ready, who)) != 0)
		return r;
	p = ref->buf + ref->off;
	n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	    p[3];
	consume(ref, 4);
	if (n == 0)
		return STINT_WIRE_MALFORMED;
	if (n > max)
		return STINT_WIRE_TOO_LARGE;
	if ((buf = malloc(n)) == NULL)
		return STINT_WIRE_NOMEM;
	if ((r = read_body(fd, ref, buf, n, deadline, &ready, who)) != 0) {
		free(buf);
		return r;
	}
	/* The pid matched every read. While the connecting process lives,
	 * no other process can have its pid: so it sent them. One that was
	 * gone at accept vouches for nothing. */
	if (ref->gone ||
	    (ref->unproven && ref->pidfd >= 0 && exited(ref->pidfd))) {
		free(buf);
		who->pid = ref->pid;
		who->uid = ref->uid;
		who->gid = ref->gid;
		who->why = WHY_PID_REUSED;
		return STINT_SENDER_MISMATCH;
	}
	*body = buf;
	*len = n;
	return 0;
}

void
stint_sender_peer(const struct stint_sender *who, struct stint_peer *out)
{
	char path[64];
	ssize_t n;

	memset(out, 0, sizeof(*out));
	out->pid = who->pid;
	out->uid = who->uid;
	out->gid = who->gid;
	strcpy(out->exe, "?");
	if (who->pid <= 0)
		return;
	out->start_time = stint_proc_start_time(who->pid);
	snprintf(path, sizeof(path), "/proc/%ld/exe", (long)who->pid);
	n = readlink(path, out->exe, sizeof(out->exe) - 1);
	out->exe[n > 0 ? n : 0] = '\0';
	if (stint_cgroup_of_pid(who->pid, out->cgroup, sizeof(out->cgroup)) !=
	    0)
		out->cgroup[0] = '\0';
	/* Facts read through a pid are the sender's only if the sender
	 * still lived after the reads (its pidfd is not readable). */
	if (n <= 0 || (who->pidfd >= 0 && exited(who->pidfd))) {
		strcpy(out->exe, "?");
		out->cgroup[0] = '\0';
	}
}
