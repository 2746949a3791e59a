/*
 * Frames over real sockets: round trips, the size limit enforced before
 * the body is read, truncation, stalls and a vanished peer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/frame.h"
#include "stint/wire.h"

static int
pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	return 0;
}

static void
put_raw(int fd, const void *p, size_t n)
{
	assert_int_equal(write(fd, p, n), (ssize_t)n);
}

static void
put_prefix(int fd, uint32_t n)
{
	uint8_t b[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16),
			(uint8_t)(n >> 8), (uint8_t)n};

	put_raw(fd, b, 4);
}

static long
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 +
	       (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void
test_round_trip(void **state)
{
	int sv[2];
	uint8_t *body, *big;
	size_t len;

	(void)state;
	pair(sv);
	assert_int_equal(
		stint_frame_write(sv[0], (const uint8_t *)"hello", 5, 1000), 0);
	assert_int_equal(
		stint_frame_read(sv[1], STINT_FRAME_MAX, 1000, &body, &len), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(body, "hello", 5);
	free(body);

	/* Exactly the limit is allowed. */
	big = malloc(STINT_FRAME_MAX);
	assert_non_null(big);
	for (size_t i = 0; i < STINT_FRAME_MAX; i++)
		big[i] = (uint8_t)(i * 31);
	assert_int_equal(stint_frame_write(sv[0], big, STINT_FRAME_MAX, 1000),
			 0);
	assert_int_equal(
		stint_frame_read(sv[1], STINT_FRAME_MAX, -1, &body, &len), 0);
	assert_int_equal(len, STINT_FRAME_MAX);
	assert_memory_equal(body, big, STINT_FRAME_MAX);
	free(body);
	free(big);
	close(sv[0]);
	close(sv[1]);
}

static void
test_oversize_refused_unread(void **state)
{
	int sv[2];
	uint8_t *body = (uint8_t *)1, rest[8];
	size_t len = 1;
	struct timespec t0;

	(void)state;
	pair(sv);
	/* Only the prefix and a marker arrive: a reader that tried to read
	 * the 64 KiB + 1 body would wait for the timeout. */
	put_prefix(sv[0], STINT_FRAME_MAX + 1);
	put_raw(sv[0], "MARK", 4);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(
		stint_frame_read(sv[1], STINT_FRAME_MAX, 5000, &body, &len),
		STINT_WIRE_TOO_LARGE);
	assert_true(elapsed_ms(&t0) < 1000);
	assert_null(body);
	assert_int_equal(len, 0);
	/* Not a byte of the body was consumed. */
	assert_int_equal(recv(sv[1], rest, sizeof(rest), MSG_DONTWAIT), 4);
	assert_memory_equal(rest, "MARK", 4);

	put_prefix(sv[0], UINT32_MAX);
	assert_int_equal(
		stint_frame_read(sv[1], STINT_FRAME_MAX, 1000, &body, &len),
		STINT_WIRE_TOO_LARGE);
	/* The limit is the caller's. */
	put_prefix(sv[0], 11);
	assert_int_equal(stint_frame_read(sv[1], 10, 1000, &body, &len),
			 STINT_WIRE_TOO_LARGE);
	close(sv[0]);
	close(sv[1]);
}

static void
test_zero_length(void **state)
{
	int sv[2];
	uint8_t *body;
	size_t len;

	(void)state;
	pair(sv);
	put_prefix(sv[0], 0);
	assert_int_equal(
		stint_frame_read(sv[1], STINT_FRAME_MAX, 1000, &body, &len),
		STINT_WIRE_MALFORMED);
	assert_int_equal(stint_frame_write(sv[0], (const uint8_t *)"", 0, 100),
			 STINT_WIRE_MALFORMED);
	close(sv[0]);
	close(sv[1]);
}

static void
test_short_then_close(void **state)
{
	int sv[2];
	uint8_t *body;
	size_t len;

	(void)state;
	/* Body cut short. */
	pair(sv);
	put_prefix(sv[0], 10);
	put_raw(sv[0], "abc", 3);
	close(sv[0]);
	assert_int_equal(
		stint_frame_read(sv[1], STINT_FRAME_MAX, 1000, &body, &len),
		STINT_WIRE_IO);
	assert_null(body);
	close(sv[1]);

	/* Prefix cut short. */
	pair(sv);
	put_raw(sv[0], "\0\0", 2);
	close(sv[0]);
	assert_int_equal(
		stint_frame_read(sv[1], STINT_FRAME_MAX, 1000, &body, &len),
		STINT_WIRE_IO);
	close(sv[1]);

	/* Orderly close before anything. */
	pair(sv);
	close(sv[0]);
	assert_int_equal(
		stint_frame_read(sv[1], STINT_FRAME_MAX, -1, &body, &len),
		STINT_WIRE_IO);
	close(sv[1]);
}

static void
test_stalled_writer(void **state)
{
	int sv[2];
	uint8_t *body;
	size_t len;
	struct timespec t0;
	long ms;

	(void)state;
	pair(sv);
	/* The deadline covers the whole frame, not each read. */
	put_prefix(sv[0], 10);
	put_raw(sv[0], "abc", 3);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(
		stint_frame_read(sv[1], STINT_FRAME_MAX, 200, &body, &len),
		STINT_WIRE_TIMEOUT);
	ms = elapsed_ms(&t0);
	assert_true(ms >= 190 && ms < 2000);
	assert_null(body);

	/* Nothing at all. */
	assert_int_equal(
		stint_frame_read(sv[1], STINT_FRAME_MAX, 50, &body, &len),
		STINT_WIRE_TIMEOUT);
	close(sv[0]);
	close(sv[1]);
}

static void
test_writer_bounded(void **state)
{
	int sv[2];
	size_t n = 8u << 20;
	uint8_t *big = calloc(1, n);
	struct timespec t0;
	long ms;

	(void)state;
	assert_non_null(big);
	pair(sv);
	/* A peer that never reads cannot hold the writer past its timeout. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(stint_frame_write(sv[0], big, n, 200),
			 STINT_WIRE_TIMEOUT);
	ms = elapsed_ms(&t0);
	assert_true(ms >= 190 && ms < 2000);

	/* A peer that is gone gives IO, not SIGPIPE (which would kill this
	 * test). */
	close(sv[1]);
	assert_int_equal(stint_frame_write(sv[0], (const uint8_t *)"x", 1, 200),
			 STINT_WIRE_IO);
	close(sv[0]);
	free(big);
}

static void
test_pipe(void **state)
{
	int p[2];
	uint8_t *body;
	size_t len;

	(void)state;
	/* Not a socket: the read/write fallback. */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(
		stint_frame_write(p[1], (const uint8_t *)"pipe", 4, 1000), 0);
	assert_int_equal(stint_frame_read(p[0], 16, 1000, &body, &len), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(body, "pipe", 4);
	free(body);
	close(p[0]);
	close(p[1]);
}

static void
test_late_body(void **state)
{
	int sv[2], st;
	uint8_t *body;
	size_t len;
	pid_t pid;

	(void)state;
	/* The body is tried without poll first: when it is not there yet
	 * (EAGAIN), the reader must wait for it, not fail or spin. */
	pair(sv);
	put_prefix(sv[0], 6);
	put_raw(sv[0], "abc", 3);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		usleep(100000);
		put_raw(sv[0], "def", 3);
		_exit(0);
	}
	assert_int_equal(
		stint_frame_read(sv[1], STINT_FRAME_MAX, 5000, &body, &len), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(body, "abcdef", 6);
	free(body);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(sv[0]);
	close(sv[1]);
}

static void
test_writer_waits_for_reader(void **state)
{
	int sv[2], st;
	size_t n = 4u << 20, i;
	uint8_t *big = malloc(n), *body;
	size_t len;
	pid_t pid;

	(void)state;
	assert_non_null(big);
	for (i = 0; i < n; i++)
		big[i] = (uint8_t)(i * 7);
	/* Larger than the socket buffer: the first send is partial, the next
	 * one would block, and the writer must poll until the reader drains. */
	pair(sv);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		usleep(100000);
		if (stint_frame_read(sv[1], n, 5000, &body, &len) != 0 ||
		    len != n || memcmp(body, big, n) != 0)
			_exit(1);
		_exit(0);
	}
	close(sv[1]);
	assert_int_equal(stint_frame_write(sv[0], big, n, 5000), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(sv[0]);
	free(big);
}

static void
test_reply_reads(void **state)
{
	static uint8_t big[5000];
	int sv[2], st;
	uint8_t *body;
	size_t len;
	pid_t pid;

	(void)state;
	memset(big, 0x5a, sizeof(big));
	pair(sv);
	/* Short and long replies, each alone on the socket. */
	assert_int_equal(
		stint_frame_write(sv[0], (const uint8_t *)"sig", 3, 1000), 0);
	assert_int_equal(stint_frame_read_reply(sv[1], STINT_FRAME_MAX, 1000,
						&body, &len),
			 0);
	assert_int_equal(len, 3);
	assert_memory_equal(body, "sig", 3);
	free(body);
	assert_int_equal(stint_frame_write(sv[0], big, sizeof(big), 1000), 0);
	assert_int_equal(stint_frame_read_reply(sv[1], STINT_FRAME_MAX, 1000,
						&body, &len),
			 0);
	assert_int_equal(len, sizeof(big));
	assert_memory_equal(body, big, sizeof(big));
	free(body);
	/* A prefix torn in two and a body that comes later. */
	put_raw(sv[0], "\0\0", 2);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		usleep(100000);
		put_raw(sv[0], "\0\6abc", 5);
		usleep(100000);
		put_raw(sv[0], "def", 3);
		_exit(0);
	}
	assert_int_equal(stint_frame_read_reply(sv[1], STINT_FRAME_MAX, 5000,
						&body, &len),
			 0);
	assert_int_equal(len, 6);
	assert_memory_equal(body, "abcdef", 6);
	free(body);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	/* Limits, the empty frame, and a second frame nobody asked for. */
	put_prefix(sv[0], STINT_FRAME_MAX + 1);
	assert_int_equal(stint_frame_read_reply(sv[1], STINT_FRAME_MAX, 1000,
						&body, &len),
			 STINT_WIRE_TOO_LARGE);
	assert_null(body);
	put_prefix(sv[0], 0);
	assert_int_equal(stint_frame_read_reply(sv[1], STINT_FRAME_MAX, 1000,
						&body, &len),
			 STINT_WIRE_MALFORMED);
	assert_int_equal(
		stint_frame_write(sv[0], (const uint8_t *)"a", 1, 1000), 0);
	assert_int_equal(
		stint_frame_write(sv[0], (const uint8_t *)"b", 1, 1000), 0);
	assert_int_equal(stint_frame_read_reply(sv[1], STINT_FRAME_MAX, 1000,
						&body, &len),
			 STINT_WIRE_MALFORMED);
	assert_null(body);
	/* Nothing comes: the timeout; the peer closes: I/O. */
	assert_int_equal(stint_frame_read_reply(sv[1], STINT_FRAME_MAX, 100,
						&body, &len),
			 STINT_WIRE_TIMEOUT);
	close(sv[0]);
	assert_int_equal(stint_frame_read_reply(sv[1], STINT_FRAME_MAX, 1000,
						&body, &len),
			 STINT_WIRE_IO);
	close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_oversize_refused_unread),
		cmocka_unit_test(test_zero_length),
		cmocka_unit_test(test_short_then_close),
		cmocka_unit_test(test_stalled_writer),
		cmocka_unit_test(test_writer_bounded),
		cmocka_unit_test(test_pipe),
		cmocka_unit_test(test_late_body),
		cmocka_unit_test(test_writer_waits_for_reader),
		cmocka_unit_test(test_reply_reads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
