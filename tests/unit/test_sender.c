/*
 * attest/sender.c over real sockets and real processes: frames from the
 * connecting process are read (whole, split, pipelined, larger than the
 * read-ahead); a frame or part of one written by another process, or one
 * that carries descriptors, is refused naming the sender. The waiting
 * read (stint_sender_frame_wait, stintd's: no poll() per request) checks
 * its first bytes alike and ends an idle wait at the socket's SO_RCVTIMEO.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "attest/sender.h"
#include "common/frame.h"
#include "common/proto.h"
#include "stint/wire.h"

struct conn {
	int sv[2]; /* sv[0]: stintd's end, sv[1]: the client's */
	struct stint_peer peer;
	struct stint_sender_ref ref;
};

/* A connection whose connecting process is this one. */
static struct conn *
conn_new(void)
{
	struct conn *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, c->sv), 0);
	assert_int_equal(stint_sender_listen(c->sv[0]), 0);
	assert_int_equal(stint_peer_from_socket(c->sv[0], &c->peer), 0);
	assert_int_equal(stint_sender_ref_init(c->sv[0], &c->peer, &c->ref), 0);
	return c;
}

static void
conn_free(struct conn *c)
{
	stint_sender_ref_close(&c->ref);
	close(c->sv[0]);
	close(c->sv[1]);
	free(c);
}

static int
read_frame(struct conn *c, uint8_t **body, size_t *len,
	   struct stint_sender *who)
{
	return stint_sender_frame_read(c->sv[0], STINT_FRAME_MAX, 2000, &c->ref,
				       body, len, who);
}

static void
put_frame(int fd, const uint8_t *p, size_t n)
{
	assert_int_equal(stint_frame_write(fd, p, n, 2000), 0);
}

static void
put_raw(int fd, const void *p, size_t n)
{
	assert_int_equal(write(fd, p, n), (ssize_t)n);
}

static void
expect_body(struct conn *c, const uint8_t *want, size_t n)
{
	struct stint_sender who;
	uint8_t *body;
	size_t len;

	assert_int_equal(read_frame(c, &body, &len, &who), 0);
	assert_int_equal(len, n);
	assert_memory_equal(body, want, n);
	free(body);
}

static void
test_own_frames(void **state)
{
	struct conn *c = conn_new();
	uint8_t a[] = "first", b[] = "second", pre[4] = {0, 0, 0, 5};
	uint8_t *big = malloc(3 * STINT_SENDER_BUF);

	(void)state;
	assert_non_null(big);
	memset(big, 0x5a, 3 * STINT_SENDER_BUF);
	/* Pipelined: both frames may come in one read; both are returned. */
	put_frame(c->sv[1], a, sizeof(a));
	put_frame(c->sv[1], b, sizeof(b));
	expect_body(c, a, sizeof(a));
	assert_true(stint_sender_buffered(&c->ref));
	expect_body(c, b, sizeof(b));
	assert_false(stint_sender_buffered(&c->ref));
	/* Split over several writes. */
	put_raw(c->sv[1], pre, 2);
	put_raw(c->sv[1], pre + 2, 2);
	put_raw(c->sv[1], "hello", 5);
	expect_body(c, (const uint8_t *)"hello", 5);
	/* Larger than the read-ahead, with a small frame behind it. */
	put_frame(c->sv[1], big, 3 * STINT_SENDER_BUF);
	put_frame(c->sv[1], a, sizeof(a));
	expect_body(c, big, 3 * STINT_SENDER_BUF);
	expect_body(c, a, sizeof(a));
	free(big);
	conn_free(c);
}

/* A child process writes bytes on the parent's connection. */
static pid_t
child_writes(int fd, const void *p, size_t n)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(write(fd, p, n) == (ssize_t)n ? 0 : 1);
	return pid;
}

static void
test_other_process(void **state)
{
	struct conn *c = conn_new();
	uint8_t frame[] = {0, 0, 0, 3, 'a', 'b', 'c'};
	struct stint_sender who;
	uint8_t *body;
	size_t len;
	int status;
	pid_t pid;

	(void)state;
	pid = child_writes(c->sv[1], frame, sizeof(frame));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(read_frame(c, &body, &len, &who),
			 STINT_SENDER_MISMATCH);
	assert_null(body);
	assert_int_equal(who.pid, pid);
	assert_int_equal(who.uid, getuid());
	assert_non_null(who.why);
	if (who.pidfd >= 0)
		close(who.pidfd);
	conn_free(c);
}

/* A connecting process that exited (and was reaped) before the accept.
 * The pidfd_open() fallback gets ESRCH, as SO_PEERPIDFD does before Linux
 * 6.16: peer.c says it is gone and takes no pidfd, and the sender check
 * refuses its frame, since nothing would tell it from a process that later
 * gets its pid. Newer kernels give a pidfd of the reaped process: its facts
 * are cleared, and its frame is judged by pidfs inode (it did write it). */
static void
gone_at_accept(bool fallback)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint8_t frame[] = {0, 0, 0, 3, 'a', 'b', 'c'};
	struct stint_peer peer;
	struct stint_sender_ref ref;
	struct stint_sender who;
	uint8_t *body;
	size_t len;
	int lfd, fd, status;
	pid_t pid;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/test_sender.%ld.sock",
		 (long)getpid());
	unlink(sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(stint_sender_listen(lfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int s = socket(AF_UNIX, SOCK_STREAM, 0);

		if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) ||
		    write(s, frame, sizeof(frame)) != (ssize_t)sizeof(frame))
			_exit(1);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	stint_peer_force_fallback(fallback);
	assert_int_equal(stint_peer_from_socket(fd, &peer), 0);
	stint_peer_force_fallback(false);
	assert_int_equal(peer.pid, pid);
	assert_string_equal(peer.exe, "?");
	assert_true(peer.gone || !fallback);
	assert_int_equal(stint_sender_ref_init(fd, &peer, &ref), 0);
	if (peer.gone) {
		assert_int_equal(ref.pidfd, -1);
		assert_int_equal(stint_sender_frame_read(fd, STINT_FRAME_MAX,
							 2000, &ref, &body,
							 &len, &who),
				 STINT_SENDER_MISMATCH);
		assert_null(body);
		assert_int_equal(who.pid, pid);
	} else {
		assert_true(ref.pidfd >= 0);
	}
	stint_sender_ref_close(&ref);
	close(fd);
	close(lfd);
	unlink(sa.sun_path);
}

static void
test_gone_at_accept(void **state)
{
	(void)state;
	gone_at_accept(false);
	gone_at_accept(true);
}

/* The connecting process starts a frame; another process finishes it. */
static void
test_two_senders_one_frame(void **state)
{
	struct conn *c = conn_new();
	uint8_t frame[] = {0, 0, 0, 4, 'a', 'b', 'c', 'd'};
	struct stint_sender who;
	uint8_t *body;
	size_t len;
	int status;
	pid_t pid;

	(void)state;
	put_raw(c->sv[1], frame, 6);
	pid = child_writes(c->sv[1], frame + 6, 2);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(read_frame(c, &body, &len, &who),
			 STINT_SENDER_MISMATCH);
	assert_int_equal(who.pid, pid);
	if (who.pidfd >= 0)
		close(who.pidfd);
	conn_free(c);
}

static void
test_descriptors_refused(void **state)
{
	struct conn *c = conn_new();
	uint8_t frame[] = {0, 0, 0, 1, 'x'};
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = {.iov_base = frame, .iov_len = sizeof(frame)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.b,
			    .msg_controllen = sizeof(ctl.b)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	struct stint_sender who;
	uint8_t *body;
	size_t len;
	int fd = 0;

	(void)state;
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
	assert_int_equal(sendmsg(c->sv[1], &mh, 0), (ssize_t)sizeof(frame));
	assert_int_equal(read_frame(c, &body, &len, &who),
			 STINT_SENDER_MISMATCH);
	assert_int_equal(who.pid, getpid());
	if (who.pidfd >= 0)
		close(who.pidfd);
	conn_free(c);
}

/* The limits of frame.c still hold: oversize refused, close is IO. */
static void
test_limits(void **state)
{
	struct conn *c = conn_new();
	uint8_t huge[4] = {0x7f, 0xff, 0xff, 0xff}, zero[4] = {0};
	struct stint_sender who;
	uint8_t *body;
	size_t len;

	(void)state;
	put_raw(c->sv[1], huge, 4);
	assert_int_equal(read_frame(c, &body, &len, &who),
			 STINT_WIRE_TOO_LARGE);
	conn_free(c);
	c = conn_new();
	put_raw(c->sv[1], zero, 4);
	assert_int_equal(read_frame(c, &body, &len, &who),
			 STINT_WIRE_MALFORMED);
	conn_free(c);
	c = conn_new();
	put_raw(c->sv[1], huge, 2);
	close(c->sv[1]);
	c->sv[1] = -1;
	assert_int_equal(read_frame(c, &body, &len, &who), STINT_WIRE_IO);
	conn_free(c);
}

/* Writes "first" 50 ms later, from another thread of this process. */
static void *
late_frame(void *arg)
{
	struct conn *c = arg;
	uint8_t a[] = "first";

	usleep(50000);
	put_frame(c->sv[1], a, sizeof(a));
	return NULL;
}

static int
wait_frame(struct conn *c, uint8_t **body, size_t *len,
	   struct stint_sender *who)
{
	return stint_sender_frame_wait(c->sv[0], STINT_FRAME_MAX, 100, 2000,
				       &c->ref, body, len, who);
}

/* stint_sender_frame_wait: pipelined frames, one from the read-ahead; an
 * idle wait ended after idle_ms; a frame that comes while it waits; another
 * process's bytes refused on the first read; a close before a frame is
 * IO. */
static void
test_wait(void **state)
{
	uint8_t a[] = "first", b[] = "second";
	uint8_t frame[] = {0, 0, 0, 3, 'a', 'b', 'c'};
	struct conn *c = conn_new();
	struct stint_sender who;
	uint8_t *body;
	size_t len;
	int status;
	pid_t pid;

	(void)state;
	put_frame(c->sv[1], a, sizeof(a));
	put_frame(c->sv[1], b, sizeof(b));
	assert_int_equal(wait_frame(c, &body, &len, &who), 0);
	assert_int_equal(len, sizeof(a));
	assert_memory_equal(body, a, len);
	free(body);
	assert_true(stint_sender_buffered(&c->ref));
	assert_int_equal(wait_frame(c, &body, &len, &who), 0);
	assert_int_equal(len, sizeof(b));
	assert_memory_equal(body, b, len);
	free(body);
	/* Nothing comes: the idle wait ends. */
	assert_int_equal(wait_frame(c, &body, &len, &who), STINT_WIRE_TIMEOUT);
	assert_null(body);
	/* A frame that comes while it waits (a thread of this process). */
	{
		pthread_t t;

		assert_int_equal(pthread_create(&t, NULL, late_frame, c), 0);
		assert_int_equal(stint_sender_frame_wait(
					 c->sv[0], STINT_FRAME_MAX, 5000, 2000,
					 &c->ref, &body, &len, &who),
				 0);
		assert_int_equal(len, sizeof(a));
		free(body);
		assert_int_equal(pthread_join(t, NULL), 0);
	}
	/* Another process's frame, on the waiting read itself. */
	pid = child_writes(c->sv[1], frame, sizeof(frame));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(wait_frame(c, &body, &len, &who),
			 STINT_SENDER_MISMATCH);
	assert_null(body);
	assert_int_equal(who.pid, pid);
	if (who.pidfd >= 0)
		close(who.pidfd);
	conn_free(c);
	c = conn_new();
	close(c->sv[1]);
	c->sv[1] = -1;
	assert_int_equal(wait_frame(c, &body, &len, &who), STINT_WIRE_IO);
	conn_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_frames),
		cmocka_unit_test(test_other_process),
		cmocka_unit_test(test_two_senders_one_frame),
		cmocka_unit_test(test_descriptors_refused),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_gone_at_accept),
		cmocka_unit_test(test_wait),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
