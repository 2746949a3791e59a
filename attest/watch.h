/*
 * Bound tasks in stintd (issue 12 §3, §4): what a TASK_START binds to
 * (a process held by a pidfd, a cgroup, or a fresh cgroup for stint run
 * with its command moved in), and the watcher thread that ends a bound task
 * through the normal end path once what it is bound to is gone: the
 * process exited (its pidfd polls readable) or the cgroup has no process
 * left (cgroup.events says "populated 0"). stintd removes the cgroups it
 * made once they are empty.
 */
#ifndef STINT_ATTEST_WATCH_H
#define STINT_ATTEST_WATCH_H

#include <stddef.h>
#include <sys/types.h>

#include "attest/daemon.h"
#include "attest/store.h"
#include "common/proto.h"

#define STINT_WATCH_PID_GONE    "bound process exited"
#define STINT_WATCH_CGROUP_GONE "bound cgroup empty"

/* A binding being made for one TASK_START. */
struct stint_bind_start {
	struct stint_task_bind bind;
	int pidfd;     /* PID binding: the process, until armed; else -1 */
	pid_t run_pid; /* stint run: its command, moved into bind.cgroup */
	char from[STINT_CGROUP_MAX + 1]; /* its cgroup before the move */
	bool moved;     /* stintd moved it (and may move it back) */
	char note[512]; /* for the CLI: a fallback, "" when none */
};

/* Checks and makes the binding sr asks for (none: kind NONE): opens the
 * pidfd of --bind-pid, checks --bind-cgroup has processes, or makes stint
 * run's cgroup under [run] cgroup_parent and moves the caller's child
 * sr->run_pid into it (bound to that pid instead, with a note, where no
 * writable cgroup v2 exists). With sr->run_cgroup (RUN_PREPARE made it):
 * binds that cgroup once the child is in it, alone and alive (else its
 * pid, with a note). Returns a wire status; err when not OK. */
int stint_watch_prepare(struct stintd *d, const struct stint_peer *by,
			const struct stint_task_start_req *sr,
			struct stint_bind_start *bs, char *err, size_t errlen);
/* runcg: RUN_PREPARE for the caller's waiting child pid: makes stint
 * run's cgroup under [run] cgroup_parent and moves pid in where stintd
 * may (rep->moved); where it may not (EACCES/EPERM: stintd as its own user,
 * the child in the caller's cgroup outside stintd's delegated subtree),
 * the caller moves it, and the TASK_START naming the cgroup (run_cgroup)
 * checks it did. The cgroup waits RUN_PREPARE_TTL seconds for that
 * TASK_START, then goes. No cgroup possible: OK with rep->note saying why
 * (TASK_START then binds the pid). Returns a wire status; err when not
 * OK. */
int stint_watch_run_prepare(struct stintd *d, const struct stint_peer *by,
			    pid_t pid, struct stint_run_prepare_rep *rep,
			    char *err, size_t errlen);
/* The task was not started: undoes what prepare made. */
void stint_watch_abandon(struct stintd *d, struct stint_bind_start *bs);
/* The task was started: watch it (takes the pidfd). */
void stint_watch_arm(struct stintd *d, const char *id,
		     struct stint_bind_start *bs);

/* At start: ends at once every live bound task whose process or cgroup is
 * gone, re-arms the watch of the others, and starts the watcher. */
int stint_watch_start(struct stintd *d);
void stint_watch_stop(void);

#endif
