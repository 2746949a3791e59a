/* The executable-hash cache (attest/exe_hash.c) and selector matching
 * (stint_peer_matches, stint_selectors_check). */

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "attest/peer.h"

/* SHA-256("abc") and SHA-256("abd") */
#define SHA_ABC                                                                \
	"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_ABD                                                                \
	"a52d159f262b2c6ddb724a61840befc36eb30c88877a4030b65cbe86298449c9"

static int
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "r+");

	if (f == NULL)
		f = fopen(path, "w");
	if (f == NULL)
		return -1;
	rewind(f);
	fputs(text, f);
	return fclose(f);
}

static void
test_cache(void **state)
{
	char dir[] = "/tmp/stint-exe-hash-XXXXXX", path[64], hex[65];
	struct stat before, after;
	bool cached;
	int fd;

	(void)state;
	stint_exe_hash_flush();
	stint_exe_hash_set_max(STINT_EXE_HASH_MAX_DEFAULT);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/bin", dir);
	assert_int_equal(write_file(path, "abc"), 0);
	assert_int_equal(stat(path, &before), 0);

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(stint_exe_hash_fd(fd, hex, &cached), 0);
	assert_string_equal(hex, SHA_ABC);
	assert_false(cached);
	assert_int_equal(stint_exe_hash_fd(fd, hex, &cached), 0);
	assert_string_equal(hex, SHA_ABC);
	assert_true(cached);
	close(fd);

	/* Rewritten in place (same inode, same size, new bytes): the ctime
	 * moves, so the cache does not answer with the old hash. Wait for a
	 * tick of the file system's clock first. */
	do {
		struct timespec ts = {0, 5 * 1000 * 1000};

		nanosleep(&ts, NULL);
		assert_int_equal(write_file(path, "abd"), 0);
		assert_int_equal(stat(path, &after), 0);
	} while (after.st_ctim.tv_sec == before.st_ctim.tv_sec &&
		 after.st_ctim.tv_nsec == before.st_ctim.tv_nsec);
	assert_int_equal(after.st_ino, before.st_ino);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(stint_exe_hash_fd(fd, hex, &cached), 0);
	assert_false(cached);
	assert_string_equal(hex, SHA_ABD);

	/* Above the cap: not hashed (a cached answer stays an answer). */
	stint_exe_hash_flush();
	stint_exe_hash_set_max(2);
	assert_int_equal(stint_exe_hash_fd(fd, hex, &cached), 1);
	assert_string_equal(hex, "");
	stint_exe_hash_set_max(STINT_EXE_HASH_MAX_DEFAULT);
	close(fd);

	/* Not a regular file: no hash. */
	fd = open(dir, O_RDONLY);
	assert_int_equal(stint_exe_hash_fd(fd, hex, &cached), -1);
	close(fd);
	unlink(path);
	rmdir(dir);
}

static void
test_matches(void **state)
{
	struct stint_peer p = {.uid = 1, .gid = 1};
	struct stint_selectors sel;

	(void)state;
	memset(&sel, 0, sizeof(sel));
	strcpy(p.exe, "/usr/bin/tool");
	strcpy(p.cgroup, "/stint/run-1/worker");
	strcpy(p.unit, "billing.service");
	assert_true(stint_peer_matches(&p, &sel)); /* no selector */
	strcpy(sel.exe, "/usr/bin/tool");
	strcpy(sel.cgroup, "/stint/run-1");
	assert_true(stint_peer_matches(&p, &sel));
	strcpy(sel.cgroup, "/stint/run-");
	assert_false(stint_peer_matches(&p, &sel)); /* a prefix, not a parent */
	strcpy(sel.cgroup, "/");
	assert_true(stint_peer_matches(&p, &sel));
	strcpy(sel.unit, "billing.service");
	assert_true(stint_peer_matches(&p, &sel));
	strcpy(sel.exe_sha256, SHA_ABC);
	assert_false(stint_peer_matches(&p, &sel)); /* hash unknown */
	strcpy(p.exe_sha256, SHA_ABC);
	assert_true(stint_peer_matches(&p, &sel));
	strcpy(sel.lsm_label, "unconfined");
	assert_false(stint_peer_matches(&p, &sel)); /* no label */
	strcpy(p.lsm_label, "unconfined");
	assert_true(stint_peer_matches(&p, &sel));
	strcpy(p.exe, "?");
	assert_false(stint_peer_matches(&p, &sel));
}

static void
test_check(void **state)
{
	struct stint_selectors sel;

	(void)state;
	memset(&sel, 0, sizeof(sel));
	assert_null(stint_selectors_check(&sel));
	strcpy(sel.exe, "tool");
	assert_non_null(stint_selectors_check(&sel));
	strcpy(sel.exe, "/usr/bin/tool");
	strcpy(sel.exe_sha256, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9"
			       "CB410FF61F20015AD");
	assert_null(stint_selectors_check(&sel));
	assert_string_equal(sel.exe_sha256, SHA_ABC);
	strcpy(sel.exe_sha256, "abc");
	assert_non_null(stint_selectors_check(&sel));
	sel.exe_sha256[0] = '\0';
	strcpy(sel.unit, "a/b.service");
	assert_non_null(stint_selectors_check(&sel));
}

/* A process without CAP_SYS_PTRACE reads only its own uid's exe. */
static void
test_can_read_exe(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_true(stint_peer_can_read_exe(12345));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* setuid from root drops every capability. */
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(2);
		_exit(!stint_peer_can_read_exe(0) &&
				      stint_peer_can_read_exe(65534)
			      ? 0
			      : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static double
cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The per-request exec check (stint_peer_exec_changed): nothing when the
 * process runs the file its facts came from; the new executable's facts
 * when it does not. Prints what each costs (no assert on time). */
static void
test_exec_changed(void **state)
{
	struct stint_peer peer;
	char was[PATH_MAX], self[PATH_MAX];
	ssize_t n;
	double t0;
	int sv[2], pidfd, i, runs = 20000;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(stint_peer_from_socket(sv[0], &peer), 0);
	stint_peer_finish(&peer);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	assert_string_equal(peer.exe, self);
	assert_true(peer.exe_ino != 0);
	pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	assert_true(pidfd >= 0);
	t0 = cpu_ns();
	for (i = 0; i < runs; i++)
		assert_int_equal(
			stint_peer_exec_changed(&peer, pidfd, was, sizeof(was)),
			0);
	printf("exec check, same executable: %.0f ns per request\n",
	       (cpu_ns() - t0) / runs);
	/* As if the facts came from another file: read again. */
	t0 = cpu_ns();
	for (i = 0; i < runs / 10; i++) {
		peer.exe_ino ^= 1;
		strcpy(peer.exe, "/old");
		assert_int_equal(
			stint_peer_exec_changed(&peer, pidfd, was, sizeof(was)),
			1);
	}
	printf("exec check, another executable (hash cached): %.0f ns\n",
	       (cpu_ns() - t0) / (runs / 10));
	assert_string_equal(was, "/old");
	assert_string_equal(peer.exe, self);
	assert_int_equal(strlen(peer.exe_sha256), 64);
	assert_int_equal(
		stint_peer_exec_changed(&peer, pidfd, was, sizeof(was)), 0);
	/* No live pidfd to vouch for the reads: the facts are cleared. */
	peer.exe_ino ^= 1;
	assert_int_equal(stint_peer_exec_changed(&peer, -1, was, sizeof(was)),
			 1);
	assert_string_equal(peer.exe, "?");
	assert_string_equal(peer.exe_sha256, "");
	/* Unknown since accept: no check at all. */
	assert_int_equal(
		stint_peer_exec_changed(&peer, pidfd, was, sizeof(was)), 0);
	close(pidfd);
	close(sv[0]);
	close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_matches),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_can_read_exe),
		cmocka_unit_test(test_exec_changed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
