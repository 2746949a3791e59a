/*
 * Who is on the other end of a Unix socket: SO_PEERCRED plus facts read
 * through the peer's pidfd-pinned process (docs/identity.md).
 *
 * stint_peer_from_socket runs at accept and reads the cheap facts;
 * stint_peer_finish runs on the connection's thread (hashing an
 * executable may take a while and must not hold up accept) and adds the
 * executable's SHA-256. Both confirm, after their reads, that the pidfd
 * still names a live process: a pid recycled while /proc was read can
 * never lend its facts. When the confirmation fails the facts read are
 * cleared ("?" / "").
 *
 * The pidfd is owned by the connection that called
 * stint_peer_from_socket: stint_peer_finish closes it, and
 * stint_peer_release closes it when the connection ends before that.
 * Copies of a struct stint_peer (audit_pending.c, refusals.c) never own
 * it (owns_pidfd is false in every copy that release/finish did not
 * come from, and release is only ever called on the connection's own).
 */
#ifndef STINT_ATTEST_PEER_H
#define STINT_ATTEST_PEER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/selectors.h"

struct stint_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint64_t start_time;   /* /proc/PID/stat field 22, guards PID reuse */
	char exe[PATH_MAX];    /* readlink /proc/PID/exe, "?" if unreadable */
	char cgroup[PATH_MAX]; /* cgroup v2 path ("/a/b"), "" if none */
	/* SHA-256 of the executable as lowercase hex, "" when unknown (not
	 * readable, larger than [stintd] exe_hash_max, or not yet hashed) */
	char exe_sha256[65];
	char unit[STINT_SEL_UNIT_MAX + 1];       /* systemd unit, "" if none */
	char lsm_label[STINT_SEL_LABEL_MAX + 1]; /* SO_PEERSEC, "" if none */
	/* The pidfd's inode on pidfs (Linux >= 6.9): a process id never
	 * reused while the system runs. 0 without pidfs. */
	uint64_t pidfd_ino;
	/* How the pidfd was obtained: "so_peerpidfd", "pidfd_open" (older
	 * kernels: pidfd_open on the SO_PEERCRED pid, start time checked
	 * against the accept), or "" (none: facts from /proc only, checked
	 * by start time). */
	const char *pidfd_via;
	/* The executable file the facts were read from (fstat of
	 * /proc/PID/exe when hashed): an exec since is seen per request by
	 * comparing them. Both 0 when unknown. */
	uint64_t exe_dev, exe_ino;
	/* The kernel said the process that connected had already exited
	 * at accept (no pidfd, facts cleared): nothing tells it from a
	 * process that later takes its pid. */
	bool gone;
	int pidfd;       /* -1 when none or closed */
	bool owns_pidfd; /* true only in the connection's own struct */
};

int stint_peer_from_socket(int fd, struct stint_peer *peer);

/* Reads the executable's SHA-256 (cached, exe_hash.c) and closes the
 * pidfd. Safe to call more than once. */
void stint_peer_finish(struct stint_peer *peer);

/* Per request: whether the peer still runs the executable its facts were
 * read from (the same device and inode behind /proc/PID/exe: one stat).
 * 0: the same, or unknown since accept; 1: it exec'd another file, and the
 * exe facts (path, SHA-256, device, inode) are read again, cleared unless
 * pidfd (the connecting process's, -1 if none) shows it alive after the
 * reads. was (cap bytes) gets the executable's path before, on 1. */
int stint_peer_exec_changed(struct stint_peer *peer, int pidfd, char *was,
			    size_t cap);

/* Closes the pidfd if this struct owns it. Idempotent. */
void stint_peer_release(struct stint_peer *peer);

/* True when every selector sel sets matches the peer's facts (uid and gid
 * are the caller's). Unknown facts never match a selector that is set. */
bool stint_peer_matches(const struct stint_peer *peer,
			const struct stint_selectors *sel);

/* The STINT_SEL_M_* bits of the selectors sel sets that the peer's facts
 * match (uid and gid are the caller's). */
unsigned stint_peer_matched(const struct stint_peer *peer,
			    const struct stint_selectors *sel);
/* The name of one STINT_SEL_M_* bit ("uid", "exe_sha256", ...). */
const char *stint_sel_bit_name(unsigned bit);

/* Whether stintd can read /proc/PID/exe of a process of uid (same uid,
 * or CAP_SYS_PTRACE): --exe and --exe-sha256 need it. */
bool stint_peer_can_read_exe(uid_t uid);

/* Checks and normalises selectors an operator gave (hex to lowercase, no
 * trailing '/' on a cgroup); NULL when fine, else why not. */
const char *stint_selectors_check(struct stint_selectors *sel);
bool stint_selectors_empty(const struct stint_selectors *sel);

/* Testing hook for kernels with SO_PEERPIDFD: take the pidfd_open()
 * fallback path instead (STINT_PEER_FALLBACK=1 in stintd's environment
 * sets it at start). */
void stint_peer_force_fallback(bool on);

/* --- exe_hash.c: SHA-256 of executables, cached ----------------------- */

/* The size cap: larger files are not hashed (their peers' exe_sha256 is
 * ""). 0 disables hashing. Default STINT_EXE_HASH_MAX_DEFAULT. */
#define STINT_EXE_HASH_MAX_DEFAULT (256ULL * 1024 * 1024)
void stint_exe_hash_set_max(uint64_t max);

/* SHA-256 (hex) of the open file fd, from the cache when its (dev, ino,
 * size, mtime, ctime) was hashed before. 0 ok; 1 too large; -1 error.
 * *cached says whether the cache answered. */
int stint_exe_hash_fd(int fd, char hex[65], bool *cached);

/* Empties the cache (tests, benchmarks). */
void stint_exe_hash_flush(void);

/* /proc/PID/stat's starttime (field 22, clock ticks since boot: with the
 * pid, a process's identity on kernels without pidfs) and parent pid;
 * either may be NULL. 0, or -1 when the process is gone or unreadable. */
int stint_proc_stat(pid_t pid, uint64_t *start_time, pid_t *ppid);
/* stint_proc_stat's start time alone; 0 when the process is gone. */
uint64_t stint_proc_start_time(pid_t pid);

#endif
