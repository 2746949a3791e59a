/* Peer identity from the kernel, never from anything the peer says. */

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
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "attest/peer.h"
#include "common/cgroup.h"
#include "common/log.h"

/* Linux 6.5; Debian 12's headers lack it (same value on x86 and arm64). */
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef PID_FS_MAGIC
#define PID_FS_MAGIC 0x50494446
#endif

static atomic_bool force_fallback;

void
stint_peer_force_fallback(bool on)
{
	atomic_store(&force_fallback, on);
}

int
stint_proc_stat(pid_t pid, uint64_t *start_time, pid_t *ppid)
{
	char path[64], buf[1024], *p;
	unsigned long long start;
	long parent;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields start after the last
	 * ')'; " S PPID ..." follows it (fields 3 and 4). */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %*c %ld", &parent) != 1)
		return -1;
	for (field = 3, p++; field < 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %llu", &start) != 1)
		return -1;
	if (start_time != NULL)
		*start_time = start;
	if (ppid != NULL)
		*ppid = (pid_t)parent;
	return 0;
}

uint64_t
stint_proc_start_time(pid_t pid)
{
	uint64_t start;

	return stint_proc_stat(pid, &start, NULL) == 0 ? start : 0;
}

/* Now, in the clock ticks of /proc/PID/stat's starttime (boot time). */
static uint64_t
boot_ticks_now(void)
{
	struct timespec ts;
	long hz = sysconf(_SC_CLK_TCK);

	if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &ts) != 0)
		return UINT64_MAX;
	return (uint64_t)ts.tv_sec * (uint64_t)hz +
	       (uint64_t)ts.tv_nsec / (1000000000ULL / (uint64_t)hz);
}

/* Another uid's /proc/PID/exe needs ptrace rights (CAP_SYS_PTRACE when
 * stintd is not root): say so once, the first time it is missing. */
static void
warn_no_ptrace(uid_t uid)
{
	static atomic_bool warned;

	if (!atomic_exchange(&warned, true))
		log_warn("cannot read the executable of a peer of uid %ld: "
			 "the audit records \"exe\":\"?\" (stintd needs "
			 "CAP_SYS_PTRACE when not root; see stintd(8))",
			 (long)uid);
}

static void
read_exe_link(const struct stint_peer *peer, char *buf, size_t cap)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%ld/exe", (long)peer->pid);
	n = readlink(path, buf, cap - 1);
	if (n <= 0) {
		if (errno == EACCES || errno == EPERM)
			warn_no_ptrace(peer->uid);
		strcpy(buf, "?");
	} else {
		buf[n] = '\0';
	}
}

/* The peer's pidfd: SO_PEERPIDFD, else pidfd_open() on the SO_PEERCRED
 * pid when that process started no later than accepted (a pid recycled
 * since the connect starts later). */
static int
take_pidfd(int fd, struct stint_peer *peer, uint64_t accepted)
{
	socklen_t len = sizeof(int);
	int pidfd = -1;

	if (!atomic_load(&force_fallback)) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) ==
			    0 &&
		    len == sizeof(int) && pidfd >= 0) {
			peer->pidfd_via = "so_peerpidfd";
			return pidfd;
		}
		if (errno == ESRCH)
			return -2; /* exited (and reaped) before the accept */
	}
	pidfd = (int)syscall(SYS_pidfd_open, peer->pid, 0);
	if (pidfd < 0)
		return errno == ESRCH ? -2 : -1;
	peer->start_time = stint_proc_start_time(peer->pid);
	if (peer->start_time == 0 || peer->start_time > accepted) {
		close(pidfd);
		return -2; /* not the process that connected */
	}
	peer->pidfd_via = "pidfd_open";
	return pidfd;
}

static uint64_t
pidfs_inode(int pidfd)
{
	struct statfs sfs;
	struct stat st;

	if (fstatfs(pidfd, &sfs) != 0 ||
	    (unsigned long)sfs.f_type != (unsigned long)PID_FS_MAGIC ||
	    fstat(pidfd, &st) != 0)
		return 0;
	return (uint64_t)st.st_ino;
}

/* The process the facts were read from is still the peer: its pidfd has
 * not become readable (exited), or without a pidfd, its start time is
 * unchanged. */
static bool
still_peer(const struct stint_peer *peer)
{
	struct pollfd p;

	if (peer->pidfd >= 0) {
		p = (struct pollfd){.fd = peer->pidfd, .events = POLLIN};
		return poll(&p, 1, 0) == 0;
	}
	return peer->start_time != 0 &&
	       stint_proc_start_time(peer->pid) == peer->start_time;
}

static void
clear_exe(struct stint_peer *peer)
{
	strcpy(peer->exe, "?");
	peer->exe_sha256[0] = '\0';
	peer->exe_dev = peer->exe_ino = 0;
}

static void
clear_facts(struct stint_peer *peer)
{
	clear_exe(peer);
	peer->cgroup[0] = '\0';
	peer->unit[0] = '\0';
}

static void
read_lsm_label(int fd, struct stint_peer *peer)
{
	socklen_t len = sizeof(peer->lsm_label) - 1;

	/* ENOPROTOOPT: no LSM gives labels. Some give "unconfined". */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERSEC, peer->lsm_label, &len) !=
		    0 ||
	    len == 0 || len >= sizeof(peer->lsm_label)) {
		peer->lsm_label[0] = '\0';
		return;
	}
	peer->lsm_label[len] = '\0';
	/* Some LSMs count the terminating NUL. */
	peer->lsm_label[strnlen(peer->lsm_label, len)] = '\0';
}

int
stint_peer_from_socket(int fd, struct stint_peer *peer)
{
	uint64_t accepted = boot_ticks_now();
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int pidfd;

	memset(peer, 0, sizeof(*peer));
	peer->pidfd = -1;
	peer->pidfd_via = "";
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    len != sizeof(cred))
		return -1;
	peer->pid = cred.pid;
	peer->uid = cred.uid;
	peer->gid = cred.gid;
	read_lsm_label(fd, peer); /* from the socket: no pid race */
	pidfd = take_pidfd(fd, peer, accepted);
	if (pidfd == -2) {
		peer->gone = true;
		clear_facts(peer);
		return 0;
	}
	if (pidfd >= 0) {
		(void)fcntl(pidfd, F_SETFD, FD_CLOEXEC);
		peer->pidfd = pidfd;
		peer->owns_pidfd = true;
		peer->pidfd_ino = pidfs_inode(pidfd);
	}
	if (peer->start_time == 0)
		peer->start_time = stint_proc_start_time(cred.pid);
	read_exe_link(peer, peer->exe, sizeof(peer->exe));
	if (stint_cgroup_of_pid(cred.pid, peer->cgroup, sizeof(peer->cgroup)) !=
	    0)
		peer->cgroup[0] = '\0';
	if (peer->cgroup[0] == '\0' ||
	    stint_cgroup_unit(peer->cgroup, peer->unit, sizeof(peer->unit)) !=
		    0)
		peer->unit[0] = '\0';
	/* Read through the pid: only facts of the process that connected
	 * count, so the pidfd must still name a live process now. */
	if (!still_peer(peer))
		clear_facts(peer);
	return 0;
}

/* The SHA-256 (cached) and file identity of the peer's executable, read
 * through /proc/PID/exe: the file the process runs. */
static void
hash_exe(struct stint_peer *peer)
{
	char path[64];
	struct stat st;
	bool cached;
	int efd;

	snprintf(path, sizeof(path), "/proc/%ld/exe", (long)peer->pid);
	efd = open(path, O_RDONLY | O_CLOEXEC);
	if (efd < 0)
		return;
	if (stint_exe_hash_fd(efd, peer->exe_sha256, &cached) != 0)
		peer->exe_sha256[0] = '\0';
	if (fstat(efd, &st) == 0) {
		peer->exe_dev = (uint64_t)st.st_dev;
		peer->exe_ino = (uint64_t)st.st_ino;
	}
	close(efd);
}

void
stint_peer_finish(struct stint_peer *peer)
{
	char now_exe[PATH_MAX];

	if (peer->pid <= 0 || peer->exe_sha256[0] != '\0' ||
	    strcmp(peer->exe, "?") == 0) {
		stint_peer_release(peer);
		return;
	}
	hash_exe(peer);
	/* Same image as at accept (no exec since), same live process. */
	read_exe_link(peer, now_exe, sizeof(now_exe));
	if (strcmp(now_exe, peer->exe) != 0 || !still_peer(peer))
		clear_facts(peer);
	stint_peer_release(peer);
}

int
stint_peer_exec_changed(struct stint_peer *peer, int pidfd, char *was,
			size_t cap)
{
	char path[64];
	struct stat st;
	struct pollfd p = {.fd = pidfd, .events = POLLIN};

	if (peer->exe_ino == 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/exe", (long)peer->pid);
	if (stat(path, &st) == 0 && (uint64_t)st.st_dev == peer->exe_dev &&
	    (uint64_t)st.st_ino == peer->exe_ino)
		return 0;
	/* exec() keeps the cgroup and the socket's LSM label: only the
	 * executable's facts change. */
	snprintf(was, cap, "%s", peer->exe);
	clear_exe(peer);
	read_exe_link(peer, peer->exe, sizeof(peer->exe));
	if (strcmp(peer->exe, "?") != 0)
		hash_exe(peer);
	/* Read through the pid: the connecting process's only while it
	 * lives (the sender check vouched for it before the reads). */
	if (pidfd < 0 || poll(&p, 1, 0) != 0)
		clear_facts(peer);
	return 1;
}

void
stint_peer_release(struct stint_peer *peer)
{
	if (peer->owns_pidfd && peer->pidfd >= 0)
		close(peer->pidfd);
	peer->pidfd = -1;
	peer->owns_pidfd = false;
}

bool
stint_peer_matches(const struct stint_peer *peer,
		   const struct stint_selectors *sel)
{
	if (sel->exe[0] != '\0' && strcmp(peer->exe, sel->exe) != 0)
		return false;
	if (sel->exe_sha256[0] != '\0' &&
	    strcmp(peer->exe_sha256, sel->exe_sha256) != 0)
		return false;
	if (sel->cgroup[0] != '\0' &&
	    (peer->cgroup[0] == '\0' ||
	     !stint_cgroup_within(peer->cgroup, sel->cgroup)))
		return false;
	if (sel->unit[0] != '\0' && strcmp(peer->unit, sel->unit) != 0)
		return false;
	if (sel->lsm_label[0] != '\0' &&
	    strcmp(peer->lsm_label, sel->lsm_label) != 0)
		return false;
	return true;
}

unsigned
stint_peer_matched(const struct stint_peer *peer,
		   const struct stint_selectors *sel)
{
	unsigned m = 0;

	if (sel->exe[0] != '\0' && strcmp(peer->exe, sel->exe) == 0)
		m |= STINT_SEL_M_EXE;
	if (sel->exe_sha256[0] != '\0' &&
	    strcmp(peer->exe_sha256, sel->exe_sha256) == 0)
		m |= STINT_SEL_M_EXE_SHA256;
	if (sel->cgroup[0] != '\0' && peer->cgroup[0] != '\0' &&
	    stint_cgroup_within(peer->cgroup, sel->cgroup))
		m |= STINT_SEL_M_CGROUP;
	if (sel->unit[0] != '\0' && strcmp(peer->unit, sel->unit) == 0)
		m |= STINT_SEL_M_UNIT;
	if (sel->lsm_label[0] != '\0' &&
	    strcmp(peer->lsm_label, sel->lsm_label) == 0)
		m |= STINT_SEL_M_LSM_LABEL;
	return m;
}

const char *
stint_sel_bit_name(unsigned bit)
{
	static const char *const names[STINT_SEL_M_COUNT] = {
		"uid",    "gid",  "exe",       "exe_sha256",
		"cgroup", "unit", "lsm_label",
	};
	unsigned i;

	for (i = 0; i < STINT_SEL_M_COUNT; i++)
		if (bit == 1u << i)
			return names[i];
	return "?";
}

/* CAP_SYS_PTRACE (19) in /proc/self/status's CapEff. */
static bool
have_cap_sys_ptrace(void)
{
	char line[256];
	unsigned long long caps = 0;
	bool found = false;
	FILE *f = fopen("/proc/self/status", "re");

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = sscanf(line, "CapEff: %llx", &caps) == 1;
	fclose(f);
	return found && (caps & (1ULL << 19)) != 0;
}

bool
stint_peer_can_read_exe(uid_t uid)
{
	/* The ptrace read check: same uid (a dumpable process), or the
	 * capability. Root without CAP_SYS_PTRACE (a container) cannot. */
	return uid == geteuid() || have_cap_sys_ptrace();
}

static bool
is_hex64(char *s)
{
	size_t i;

	for (i = 0; i < 64; i++) {
		if (s[i] >= 'A' && s[i] <= 'F')
			s[i] = (char)(s[i] - 'A' + 'a');
		else if (!((s[i] >= '0' && s[i] <= '9') ||
			   (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return s[64] == '\0';
}

const char *
stint_selectors_check(struct stint_selectors *sel)
{
	char root[PATH_MAX];
	size_t n;

	if (sel->exe[0] != '\0' && sel->exe[0] != '/')
		return "--exe needs an absolute path";
	if (sel->exe_sha256[0] != '\0' && !is_hex64(sel->exe_sha256))
		return "--exe-sha256 needs 64 hex digits (sha256sum FILE)";
	if (sel->cgroup[0] != '\0') {
		if (sel->cgroup[0] != '/')
			return "--cgroup needs a path from the cgroup v2 root, "
			       "as /proc/PID/cgroup shows it (\"/a/b\")";
		n = strlen(sel->cgroup);
		while (n > 1 && sel->cgroup[n - 1] == '/')
			sel->cgroup[--n] = '\0';
	}
	if (sel->unit[0] != '\0' &&
	    (strchr(sel->unit, '/') != NULL || strchr(sel->unit, '.') == NULL))
		return "--unit needs a unit name such as billing.service";
	if ((sel->cgroup[0] != '\0' || sel->unit[0] != '\0') &&
	    stint_cgroup_root(root, sizeof(root)) != 0) {
		return "this host has no cgroup v2 hierarchy mounted: --cgroup "
		       "and --unit could never match";
	}
	return NULL;
}

bool
stint_selectors_empty(const struct stint_selectors *sel)
{
	return sel->exe[0] == '\0' && sel->exe_sha256[0] == '\0' &&
	       sel->cgroup[0] == '\0' && sel->unit[0] == '\0' &&
	       sel->lsm_label[0] == '\0';
}
