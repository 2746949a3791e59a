/*
 * Bound tasks in stintd: making a binding at TASK_START, and the watcher
 * thread that ends a bound task once its process or cgroup is gone.
 *
 * The watcher polls every pidfd (readable: the process exited) and every
 * cgroup.events (POLLPRI: it changed; "populated 0": no process left),
 * plus a wake pipe for new watches, and wakes at least once a second to
 * drop the watches of tasks that ended otherwise (task end, expiry). A
 * cgroup stintd made for stint run is removed once it is empty, also when
 * its task ended before.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "attest/bind.h"
#include "attest/peer.h"
#include "attest/task.h"
#include "attest/watch.h"
#include "common/cgroup.h"
#include "common/hex.h"
#include "common/log.h"

/* runcg: how long a cgroup RUN_PREPARE made waits for its TASK_START, and
 * how many may wait at once, in all and per caller uid (so that one
 * operator cannot hold every slot). */
#define RUN_PREPARE_TTL     60
#define RUN_PENDING_MAX     64
#define RUN_PENDING_PER_UID 16

struct watch {
	struct watch *next;
	char id[STINT_TASK_ID_MAX + 1];
	struct stint_task_bind bind;
	int fd;         /* the pidfd, or the cgroup's cgroup.events */
	bool task_over; /* ended otherwise: only the cgroup's removal left */
};

/* runcg: a cgroup RUN_PREPARE made for stint run's command, until the
 * TASK_START that names it (or its deadline). */
struct pending {
	struct pending *next;
	char cgroup[STINT_CGROUP_MAX + 1];
	char from[STINT_CGROUP_MAX + 1]; /* the command's cgroup before */
	pid_t caller, pid;               /* stint run, its command */
	uid_t uid;                       /* the caller's */
	uint64_t start;                  /* the command's start time */
	bool moved;                      /* stintd moved it in itself */
	time_t deadline;                 /* CLOCK_MONOTONIC seconds */
};

static struct {
	pthread_mutex_t lock;
	struct watch *list;
	size_t n;
	struct pending *pending; /* runcg */
	size_t n_pending;
	int wake[2];
	pthread_t thread;
	bool running, stop;
	struct stintd *d;
} W = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = {-1, -1}};

/* ---- cgroups ------------------------------------------------------------ */

static int
cgroup_file(const char *cg, const char *file, char *buf, size_t cap)
{
	char dir[PATH_MAX];
	int n;

	if (stint_cgroup_fs_path(cg, dir, sizeof(dir)) != 0)
		return -1;
	n = snprintf(buf, cap, "%s/%s", dir, file);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int
cgroup_events_open(const char *cg)
{
	char path[PATH_MAX];

	if (cgroup_file(cg, "cgroup.events", path, sizeof(path)) != 0) {
		errno = ENOENT;
		return -1;
	}
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* cgroup.events read through fd: true when "populated 0", or when the
 * cgroup is gone (the read fails). */
static bool
cgroup_empty(int fd)
{
	char buf[256];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return true;
	buf[n] = '\0';
	return strstr(buf, "populated 0") != NULL;
}

static int
cgroup_write_pid(const char *cg, pid_t pid)
{
	char path[PATH_MAX], num[24];
	int fd, n, r = 0;

	if (cgroup_file(cg, "cgroup.procs", path, sizeof(path)) != 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
		return -1;
	n = snprintf(num, sizeof(num), "%ld\n", (long)pid);
	if (write(fd, num, (size_t)n) != n)
		r = -1;
	if (close(fd) != 0)
		r = -1;
	return r;
}

/* 0 removed or gone; -1 (errno: EBUSY while it has processes). */
static int
cgroup_rmdir(const char *cg)
{
	char dir[PATH_MAX];

	if (stint_cgroup_fs_path(cg, dir, sizeof(dir)) != 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return rmdir(dir) != 0 && errno != ENOENT ? -1 : 0;
}

static void
cgroup_remove(const char *cg)
{
	if (cgroup_rmdir(cg) != 0)
		log_warn("cannot remove cgroup %s: %s", cg, strerror(errno));
}

/* mkdir -p of cg's parents below the root, then cg itself (which must be
 * new). */
static int
cgroup_make(const char *cg)
{
	char dir[PATH_MAX], *p;
	size_t root;

	if (stint_cgroup_fs_path("/", dir, sizeof(dir)) != 0)
		return -1;
	root = strlen(dir);
	if (stint_cgroup_fs_path(cg, dir, sizeof(dir)) != 0)
		return -1;
	for (p = dir + root + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(dir, 0755);
}

/* A cgroup path a caller named: absolute, no empty, "." or ".."
 * component, not the root. */
static bool
cgroup_path_ok(const char *cg)
{
	const char *seg = cg + 1;
	size_t n;

	if (cg[0] != '/' || cg[1] == '\0')
		return false;
	for (;;) {
		n = strcspn(seg, "/");
		if (n == 0 || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		if (seg[n] == '\0')
			return true;
		seg += n + 1;
	}
}

/* ---- making a binding --------------------------------------------------- */

/* A pidfd on pid and its start time, read while the pidfd holds it. */
static int
pid_open(pid_t pid, uint64_t *start, pid_t *ppid, char *err, size_t errlen)
{
	int fd = stint_bind_pidfd_open(pid);

	if (fd < 0) {
		snprintf(err, errlen, "no process %ld (%s)", (long)pid,
			 strerror(errno));
		return -1;
	}
	if (stint_proc_stat(pid, start, ppid) != 0 ||
	    !stint_bind_pidfd_alive(fd)) {
		close(fd);
		snprintf(err, errlen, "process %ld exited", (long)pid);
		return -1;
	}
	return fd;
}

static int
prepare_pid(pid_t pid, struct stint_bind_start *bs, char *err, size_t errlen)
{
	uint64_t start;

	if ((bs->pidfd = pid_open(pid, &start, NULL, err, errlen)) < 0)
		return STINT_E_NOT_FOUND;
	bs->bind.kind = STINT_BIND_PID;
	bs->bind.pid = pid;
	bs->bind.start_time = start;
	return STINT_OK;
}

static int
prepare_cgroup(const char *cg, struct stint_bind_start *bs, char *err,
	       size_t errlen)
{
	char root[PATH_MAX];
	bool empty;
	int fd;

	if (!cgroup_path_ok(cg) || strlen(cg) > STINT_CGROUP_MAX) {
		snprintf(err, errlen,
			 "bad cgroup '%s': use a cgroup v2 path below the "
			 "root such as /system.slice/agent.service",
			 cg);
		return STINT_E_BAD_REQUEST;
	}
	if (stint_cgroup_root(root, sizeof(root)) != 0) {
		snprintf(err, errlen,
			 "no cgroup v2 hierarchy on this host: "
			 "--bind-cgroup needs one");
		return STINT_E_BAD_REQUEST;
	}
	if ((fd = cgroup_events_open(cg)) < 0) {
		snprintf(err, errlen, "no cgroup %s (%s)", cg, strerror(errno));
		return STINT_E_NOT_FOUND;
	}
	empty = cgroup_empty(fd);
	close(fd);
	if (empty) {
		snprintf(err, errlen,
			 "cgroup %s has no process: a task bound to it would "
			 "end at once",
			 cg);
		return STINT_E_BAD_REQUEST;
	}
	bs->bind.kind = STINT_BIND_CGROUP;
	snprintf(bs->bind.cgroup, sizeof(bs->bind.cgroup), "%s", cg);
	return STINT_OK;
}

/* stint run: a fresh cgroup under [run] cgroup_parent for the command
 * pid, into cg; from gets the cgroup the command is in now. 0 made; -1 not
 * possible here (why). */
static int
run_cgroup_make(struct stintd *d, pid_t pid, char *cg, size_t cgcap, char *from,
		size_t fromcap, char *why, size_t cap)
{
	uint8_t rnd[8];
	char root[PATH_MAX], hex[2 * sizeof(rnd) + 1];

	if (stint_cgroup_root(root, sizeof(root)) != 0) {
		snprintf(why, cap, "no cgroup v2 hierarchy on this host");
		return -1;
	}
	if (stint_cgroup_of_pid(pid, from, fromcap) != 0) {
		snprintf(why, cap, "the command is in no cgroup v2");
		return -1;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		snprintf(why, cap, "no randomness for a cgroup name");
		return -1;
	}
	stint_hex_encode(rnd, sizeof(rnd), hex);
	snprintf(cg, cgcap, "%s/run-%s", d->cfg.run.cgroup_parent, hex);
	if (cgroup_make(cg) != 0) {
		snprintf(why, cap, "cannot create cgroup %.200s in %.100s: %s",
			 cg, root, strerror(errno));
		return -1;
	}
	return 0;
}

/* The same with the command moved in by stintd: 0 done, -1 not possible
 * here (why). */
static int
run_cgroup(struct stintd *d, struct stint_bind_start *bs, char *why, size_t cap)
{
	struct stint_task_bind *b = &bs->bind;

	if (run_cgroup_make(d, bs->run_pid, b->cgroup, sizeof(b->cgroup),
			    bs->from, sizeof(bs->from), why, cap) != 0)
		return -1;
	if (cgroup_write_pid(b->cgroup, bs->run_pid) != 0) {
		snprintf(why, cap,
			 "cannot move the command into cgroup %.200s: %s",
			 b->cgroup, strerror(errno));
		cgroup_remove(b->cgroup);
		return -1;
	}
	b->kind = STINT_BIND_CGROUP;
	b->owned = true;
	bs->moved = true;
	return 0;
}

/* Bound to the command's pid instead (fd: its pidfd), with a note. */
static void
run_pid_fallback(struct stint_bind_start *bs, pid_t pid, uint64_t start, int fd,
		 const char *why)
{
	memset(bs->bind.cgroup, 0, sizeof(bs->bind.cgroup));
	bs->bind.kind = STINT_BIND_PID;
	bs->bind.owned = false;
	bs->bind.pid = pid;
	bs->bind.start_time = start;
	bs->pidfd = fd;
	snprintf(bs->note, sizeof(bs->note),
		 "%.380s: the task is bound to the command's pid %ld instead, "
		 "so processes it starts cannot sign",
		 why, (long)pid);
	log_warn("stint run: %s", bs->note);
}

/* ---- RUN_PREPARE's cgroups (runcg) -------------------------------------- */

static time_t
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void watch_add(const char *id, const struct stint_task_bind *b, int fd,
		      bool over);

/* A cgroup of stintd's that no task uses: removed now, or by the watcher
 * once its last process is gone (a command stint run gave up on). */
static void
cgroup_retire(const char *cg)
{
	struct stint_task_bind b;
	int fd;

	if (cgroup_rmdir(cg) == 0)
		return;
	if (errno != EBUSY) {
		log_warn("cannot remove cgroup %s: %s", cg, strerror(errno));
		return;
	}
	if ((fd = cgroup_events_open(cg)) < 0) {
		log_warn("cannot watch cgroup %s to remove it: %s", cg,
			 strerror(errno));
		return;
	}
	memset(&b, 0, sizeof(b));
	b.kind = STINT_BIND_CGROUP;
	b.owned = true;
	snprintf(b.cgroup, sizeof(b.cgroup), "%s", cg);
	watch_add("", &b, fd, true);
}

/* Keeps p until its TASK_START; else says in err which limit is full. */
static bool
pending_add(struct pending *p, char *err, size_t errlen)
{
	struct pending *q;
	size_t mine = 0;
	bool ok;

	pthread_mutex_lock(&W.lock);
	for (q = W.pending; q != NULL; q = q->next)
		mine += q->uid == p->uid;
	ok = W.n_pending < RUN_PENDING_MAX && mine < RUN_PENDING_PER_UID;
	if (ok) {
		p->next = W.pending;
		W.pending = p;
		W.n_pending++;
	} else if (mine >= RUN_PENDING_PER_UID) {
		snprintf(err, errlen,
			 "too many stint runs of uid %lu are waiting for their "
			 "task already (at most %d per uid; each waits %d s)",
			 (unsigned long)p->uid, RUN_PENDING_PER_UID,
			 RUN_PREPARE_TTL);
	} else {
		snprintf(err, errlen,
			 "too many stint runs are waiting for their task "
			 "already (at most %d in all; each waits %d s)",
			 RUN_PENDING_MAX, RUN_PREPARE_TTL);
	}
	pthread_mutex_unlock(&W.lock);
	return ok;
}

/* The prepared cgroup cg of caller's command pid, out of the list. */
static struct pending *
pending_take(const char *cg, pid_t caller, pid_t pid)
{
	struct pending **pp, *p;

	pthread_mutex_lock(&W.lock);
	for (pp = &W.pending; (p = *pp) != NULL; pp = &p->next)
		if (p->caller == caller && p->pid == pid &&
		    strcmp(p->cgroup, cg) == 0) {
			*pp = p->next;
			W.n_pending--;
			break;
		}
	pthread_mutex_unlock(&W.lock);
	return p;
}

/* Prepared cgroups past their deadline (all with all set) go. */
static void
pending_expire(bool all)
{
	struct pending **pp, *p, *done = NULL;
	time_t now = mono_now();

	pthread_mutex_lock(&W.lock);
	for (pp = &W.pending; (p = *pp) != NULL;) {
		if (all || now >= p->deadline) {
			*pp = p->next;
			W.n_pending--;
			p->next = done;
			done = p;
		} else {
			pp = &p->next;
		}
	}
	pthread_mutex_unlock(&W.lock);
	for (; done != NULL; done = p) {
		p = done->next;
		log_info("cgroup %s prepared for stint run's pid %ld was not "
			 "used: removed",
			 done->cgroup, (long)done->pid);
		if (all)
			cgroup_remove(done->cgroup);
		else
			cgroup_retire(done->cgroup);
		free(done);
	}
}

int
stint_watch_run_prepare(struct stintd *d, const struct stint_peer *by,
			pid_t pid, struct stint_run_prepare_rep *rep, char *err,
			size_t errlen)
{
	struct pending *p;
	pid_t ppid;
	int fd;

	memset(rep, 0, sizeof(*rep));
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return STINT_E_INTERNAL;
	}
	if ((fd = pid_open(pid, &p->start, &ppid, err, errlen)) < 0) {
		free(p);
		return STINT_E_NOT_FOUND;
	}
	close(fd);
	if (ppid != by->pid) {
		free(p);
		snprintf(err, errlen,
			 "process %ld is not a child of the caller (stint "
			 "run starts its own command)",
			 (long)pid);
		return STINT_E_DENIED;
	}
	/* The caller's unreaped child: its pid stays its own until the
	 * TASK_START, which checks its start time again. */
	if (run_cgroup_make(d, pid, p->cgroup, sizeof(p->cgroup), p->from,
			    sizeof(p->from), rep->note,
			    sizeof(rep->note)) != 0) {
		free(p);
		return STINT_OK; /* no cgroup: TASK_START binds the pid */
	}
	p->moved = cgroup_write_pid(p->cgroup, pid) == 0;
	/* Not allowed to move it out of the caller's cgroup (stintd as its
	 * own user): the caller may, then TASK_START checks it did. */
	if (!p->moved && errno != EACCES && errno != EPERM) {
		snprintf(rep->note, sizeof(rep->note),
			 "cannot move the command into cgroup %.200s: %s",
			 p->cgroup, strerror(errno));
		cgroup_remove(p->cgroup);
		free(p);
		return STINT_OK;
	}
	p->caller = by->pid;
	p->uid = by->uid;
	p->pid = pid;
	p->deadline = mono_now() + RUN_PREPARE_TTL;
	snprintf(rep->cgroup, sizeof(rep->cgroup), "%s", p->cgroup);
	rep->moved = p->moved;
	if (!pending_add(p, err, errlen)) {
		cgroup_retire(p->cgroup);
		free(p);
		memset(rep, 0, sizeof(*rep));
		return STINT_E_LIMIT;
	}
	return STINT_OK;
}

/* cgroup.procs of cg lists pid and nothing else. */
static bool
cgroup_holds_only(const char *cg, pid_t pid)
{
	char path[PATH_MAX], buf[256], *line, *save = NULL;
	bool found = false, other = false;
	ssize_t n;
	int fd;

	if (cgroup_file(cg, "cgroup.procs", path, sizeof(path)) != 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || (size_t)n == sizeof(buf) - 1)
		return false; /* empty, unreadable, or many processes */
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strtol(line, NULL, 10) == (long)pid)
			found = true;
		else
			other = true;
	}
	return found && !other;
}

/* TASK_START after RUN_PREPARE: binds the cgroup once the command (fd:
 * its pidfd) really is in it, alone, and still alive; else its pid. */
static int
run_prepared(const char *cg, const struct stint_peer *by, int fd,
	     uint64_t start, struct stint_bind_start *bs, char *err,
	     size_t errlen)
{
	struct pending *p = pending_take(cg, by->pid, bs->run_pid);
	char now[STINT_CGROUP_MAX + 1] = "", why[400];

	if (p == NULL) {
		close(fd);
		snprintf(err, errlen,
			 "no cgroup %.200s waits for process %ld of this "
			 "caller (RUN_PREPARE first; it waits %d s)",
			 cg, (long)bs->run_pid, RUN_PREPARE_TTL);
		return STINT_E_NOT_FOUND;
	}
	snprintf(bs->from, sizeof(bs->from), "%s", p->from);
	/* The caller says it moved the command: read where it is, through
	 * /proc while the pidfd holds the pid, then check it still lives. */
	if (p->start == start &&
	    stint_cgroup_of_pid(bs->run_pid, now, sizeof(now)) == 0 &&
	    strcmp(now, cg) == 0 && cgroup_holds_only(cg, bs->run_pid) &&
	    stint_bind_pidfd_alive(fd)) {
		close(fd);
		bs->bind.kind = STINT_BIND_CGROUP;
		bs->bind.owned = true;
		snprintf(bs->bind.cgroup, sizeof(bs->bind.cgroup), "%s", cg);
		bs->moved = p->moved;
		free(p);
		return STINT_OK;
	}
	if (now[0] != '\0' && strcmp(now, cg) != 0)
		snprintf(
			why, sizeof(why),
			"the command is in cgroup %.150s, not in %.150s (stint "
			"run could not move it there)",
			now, cg);
	else
		snprintf(why, sizeof(why),
			 "cgroup %.200s does not hold the command alone", cg);
	cgroup_retire(p->cgroup);
	free(p);
	run_pid_fallback(bs, bs->run_pid, start, fd, why);
	return STINT_OK;
}

static int
prepare_run(struct stintd *d, const struct stint_peer *by,
	    const struct stint_task_start_req *sr, struct stint_bind_start *bs,
	    char *err, size_t errlen)
{
	pid_t pid = (pid_t)sr->run_pid, ppid;
	char why[400];
	uint64_t start;
	int fd;

	if ((fd = pid_open(pid, &start, &ppid, err, errlen)) < 0)
		return STINT_E_NOT_FOUND;
	/* Only stint run's own command: never another uid's process. */
	if (ppid != by->pid) {
		close(fd);
		snprintf(err, errlen,
			 "process %ld is not a child of the caller (stint "
			 "run starts its own command)",
			 (long)pid);
		return STINT_E_DENIED;
	}
	bs->run_pid = pid;
	if (sr->run_cgroup[0] != '\0')
		return run_prepared(sr->run_cgroup, by, fd, start, bs, err,
				    errlen);
	if (run_cgroup(d, bs, why, sizeof(why)) == 0) {
		close(fd);
		return STINT_OK;
	}
	run_pid_fallback(bs, pid, start, fd, why);
	return STINT_OK;
}

int
stint_watch_prepare(struct stintd *d, const struct stint_peer *by,
		    const struct stint_task_start_req *sr,
		    struct stint_bind_start *bs, char *err, size_t errlen)
{
	memset(bs, 0, sizeof(*bs));
	bs->pidfd = -1;
	if (sr->bind_pid != 0)
		return prepare_pid((pid_t)sr->bind_pid, bs, err, errlen);
	if (sr->bind_cgroup[0] != '\0')
		return prepare_cgroup(sr->bind_cgroup, bs, err, errlen);
	if (sr->run_pid != 0)
		return prepare_run(d, by, sr, bs, err, errlen);
	return STINT_OK;
}

void
stint_watch_abandon(struct stintd *d, struct stint_bind_start *bs)
{
	(void)d;
	if (bs->pidfd >= 0)
		close(bs->pidfd);
	bs->pidfd = -1;
	if (bs->bind.owned) {
		/* Back where it was, so that the cgroup can go; where stintd
		 * may not move it, the cgroup goes once the command gave up. */
		if (bs->moved && cgroup_write_pid(bs->from, bs->run_pid) != 0)
			log_warn("cannot move pid %ld back to cgroup %s: %s",
				 (long)bs->run_pid, bs->from, strerror(errno));
		cgroup_retire(bs->bind.cgroup);
	}
}

/* ---- the watcher -------------------------------------------------------- */

static void
wake(void)
{
	char c = 1;

	if (W.wake[1] >= 0 && write(W.wake[1], &c, 1) < 0 && errno != EAGAIN)
		log_warn("watcher wake: %s", strerror(errno));
}

/* over: no task to end, only the cgroup to remove once empty. */
static void
watch_add(const char *id, const struct stint_task_bind *b, int fd, bool over)
{
	struct watch *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		/* The gate still holds the binding; only the end by itself
		 * is lost (the task still expires). */
		log_err("out of memory: task %s is not watched", id);
		close(fd);
		return;
	}
	snprintf(w->id, sizeof(w->id), "%s", id);
	w->bind = *b;
	w->fd = fd;
	w->task_over = over;
	pthread_mutex_lock(&W.lock);
	w->next = W.list;
	W.list = w;
	W.n++;
	pthread_mutex_unlock(&W.lock);
	wake();
}

void
stint_watch_arm(struct stintd *d, const char *id, struct stint_bind_start *bs)
{
	int fd = -1;

	(void)d;
	if (bs->bind.kind == STINT_BIND_PID) {
		fd = bs->pidfd;
		bs->pidfd = -1;
	} else if (bs->bind.kind == STINT_BIND_CGROUP) {
		fd = cgroup_events_open(bs->bind.cgroup);
		if (fd < 0)
			log_err("task %s: cannot watch cgroup %s: %s", id,
				bs->bind.cgroup, strerror(errno));
	}
	if (fd >= 0)
		watch_add(id, &bs->bind, fd, false);
}

static bool
gone(const struct watch *w)
{
	if (w->bind.kind == STINT_BIND_PID)
		return !stint_bind_pidfd_alive(w->fd);
	return cgroup_empty(w->fd);
}

static const char *
gone_reason(const struct stint_task_bind *b)
{
	return b->kind == STINT_BIND_PID ? STINT_WATCH_PID_GONE
					 : STINT_WATCH_CGROUP_GONE;
}

/* Ends the task (unless it ended otherwise) and removes stintd's own
 * cgroup; w is out of the list. */
static void
finish(struct stintd *d, struct watch *w)
{
	char err[256];
	int r;

	close(w->fd);
	if (!w->task_over) {
		r = stint_task_end(d, w->id, gone_reason(&w->bind), NULL, err,
				   sizeof(err), NULL, 0);
		if (r != STINT_OK)
			log_err("task %s: %s, but ending it failed: %s", w->id,
				gone_reason(&w->bind), err);
	}
	if (w->bind.owned)
		cgroup_remove(w->bind.cgroup);
	free(w);
}

/* Takes the watches whose process or cgroup is gone out of the list. */
static struct watch *
take_gone(void)
{
	struct watch **pp, *w, *done = NULL;

	pthread_mutex_lock(&W.lock);
	for (pp = &W.list; (w = *pp) != NULL;) {
		if (gone(w)) {
			*pp = w->next;
			W.n--;
			w->next = done;
			done = w;
		} else {
			pp = &w->next;
		}
	}
	pthread_mutex_unlock(&W.lock);
	return done;
}

/* Tasks that ended otherwise: their pid watch goes; an owned cgroup's
 * stays until it is empty, to remove it. */
static void
mark_over(struct stintd *d)
{
	struct watch *w;
	struct stint_task t;
	size_t i, n;
	char(*ids)[STINT_TASK_ID_MAX + 1];

	pthread_mutex_lock(&W.lock);
	n = W.n;
	ids = calloc(n + 1, sizeof(*ids));
	for (w = W.list, i = 0; ids != NULL && w != NULL && i < n; w = w->next)
		if (!w->task_over)
			memcpy(ids[i++], w->id, sizeof(ids[0]));
	pthread_mutex_unlock(&W.lock);
	if (ids == NULL)
		return;
	n = i;
	for (i = 0; i < n; i++) {
		memset(&t, 0, sizeof(t));
		if (stint_store_task_get(d->store, ids[i], &t) ==
			    STINT_STORE_OK &&
		    t.state == STINT_TASK_LIVE)
			ids[i][0] = '\0';
		stint_task_clear(&t);
	}
	pthread_mutex_lock(&W.lock);
	for (w = W.list; w != NULL; w = w->next)
		for (i = 0; i < n; i++)
			if (ids[i][0] != '\0' && strcmp(ids[i], w->id) == 0)
				w->task_over = true;
	pthread_mutex_unlock(&W.lock);
	free(ids);
}

/* A watch kept only to remove a cgroup, or a pid one of an ended task:
 * drop the pid ones now. */
static struct watch *
take_over_pids(void)
{
	struct watch **pp, *w, *done = NULL;

	pthread_mutex_lock(&W.lock);
	for (pp = &W.list; (w = *pp) != NULL;) {
		if (w->task_over && !w->bind.owned) {
			*pp = w->next;
			W.n--;
			w->next = done;
			done = w;
		} else {
			pp = &w->next;
		}
	}
	pthread_mutex_unlock(&W.lock);
	return done;
}

static void
finish_all(struct stintd *d, struct watch *w)
{
	struct watch *next;

	for (; w != NULL; w = next) {
		next = w->next;
		finish(d, w);
	}
}

/* One poll over the wake pipe and every watch. */
static void
poll_once(void)
{
	struct pollfd *p;
	struct watch *w;
	size_t n;
	char buf[64];

	pthread_mutex_lock(&W.lock);
	p = calloc(W.n + 1, sizeof(*p));
	n = 0;
	if (p != NULL) {
		p[n++] = (struct pollfd){.fd = W.wake[0], .events = POLLIN};
		for (w = W.list; w != NULL; w = w->next)
			p[n++] = (struct pollfd){
				.fd = w->fd,
				.events = w->bind.kind == STINT_BIND_PID
						  ? POLLIN
						  : POLLPRI};
	}
	pthread_mutex_unlock(&W.lock);
	if (p == NULL) {
		sleep(1);
		return;
	}
	/* A watch removed meanwhile is only removed by this thread. */
	if (poll(p, n, 1000) > 0 && (p[0].revents & POLLIN))
		while (read(W.wake[0], buf, sizeof(buf)) > 0)
			;
	free(p);
}

static void *
watch_main(void *arg)
{
	struct stintd *d = arg;
	struct timespec now;
	time_t checked = 0;

	pthread_mutex_lock(&W.lock);
	while (!W.stop) {
		pthread_mutex_unlock(&W.lock);
		poll_once();
		finish_all(d, take_gone());
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec != checked) {
			checked = now.tv_sec;
			mark_over(d);
			finish_all(d, take_over_pids());
			pending_expire(false);
		}
		pthread_mutex_lock(&W.lock);
	}
	pthread_mutex_unlock(&W.lock);
	return NULL;
}

/* At start: a live bound task whose process or cgroup is gone ends now;
 * the others are watched again. */
static void
rearm(struct stintd *d, const struct stint_task *t)
{
	struct stint_bind_start bs;
	uint64_t start = 0;
	char err[256];
	int fd = -1;

	memset(&bs, 0, sizeof(bs));
	bs.bind = t->bind;
	bs.pidfd = -1;
	if (t->bind.kind == STINT_BIND_PID) {
		fd = stint_bind_pidfd_open((pid_t)t->bind.pid);
		/* Same pid, later start: another process. */
		if (fd >= 0 &&
		    (stint_proc_stat((pid_t)t->bind.pid, &start, NULL) != 0 ||
		     start != t->bind.start_time)) {
			close(fd);
			fd = -1;
		}
	} else {
		fd = cgroup_events_open(t->bind.cgroup);
		if (fd >= 0 && cgroup_empty(fd)) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0) {
		log_info("task %s: %s while stintd was down", t->id,
			 gone_reason(&t->bind));
		if (stint_task_end(d, t->id, gone_reason(&t->bind), NULL, err,
				   sizeof(err), NULL, 0) != STINT_OK)
			log_err("task %s: cannot end it: %s", t->id, err);
		if (t->bind.owned)
			cgroup_remove(t->bind.cgroup);
		return;
	}
	watch_add(t->id, &t->bind, fd, false);
}

static void
rearm_all(struct stintd *d)
{
	char cursor[STINT_TASK_ID_MAX + 1] = "";
	struct stint_task *tasks;
	size_t n, i;

	do {
		if (stint_store_task_list(d->store, NULL, true, stintd_now(),
					  cursor, 128, &tasks,
					  &n) != STINT_STORE_OK) {
			log_err("cannot list the bound tasks to watch them");
			return;
		}
		for (i = 0; i < n; i++) {
			memcpy(cursor, tasks[i].id, sizeof(cursor));
			if (tasks[i].bind.kind != STINT_BIND_NONE)
				rearm(d, &tasks[i]);
		}
		stint_store_task_list_free(tasks, n);
	} while (n == 128);
}

/* At start: empty stint run cgroups under [run] cgroup_parent that no
 * live task is bound to (prepared, or left by a stintd that stopped) go. */
static void
sweep_runs(struct stintd *d)
{
	char dir[PATH_MAX], cg[STINT_CGROUP_MAX + 1];
	struct dirent *e;
	struct watch *w;
	bool used;
	DIR *dp;

	if (stint_cgroup_fs_path(d->cfg.run.cgroup_parent, dir, sizeof(dir)) !=
		    0 ||
	    (dp = opendir(dir)) == NULL)
		return;
	while ((e = readdir(dp)) != NULL) {
		if (strncmp(e->d_name, "run-", 4) != 0 ||
		    strlen(e->d_name) != 4 + 16)
			continue;
		snprintf(cg, sizeof(cg), "%.490s/%s", d->cfg.run.cgroup_parent,
			 e->d_name);
		pthread_mutex_lock(&W.lock);
		for (used = false, w = W.list; w != NULL && !used; w = w->next)
			used = strcmp(w->bind.cgroup, cg) == 0;
		pthread_mutex_unlock(&W.lock);
		/* Only empty ones: a populated one may be another stintd's
		 * sharing the parent. */
		if (!used && cgroup_rmdir(cg) == 0)
			log_info("removed stint run cgroup %s: empty, and no "
				 "live task is bound to it",
				 cg);
	}
	closedir(dp);
}

/* 1 when stintd may make cgroups below cg: a probe cgroup made (with
 * any missing parents) and removed again. */
static int
cgroup_parent_usable(const char *cg)
{
	char probe[STINT_CGROUP_MAX + 1];

	if ((size_t)snprintf(probe, sizeof(probe), "%s/probe-%ld", cg,
			     (long)getpid()) >= sizeof(probe) ||
	    cgroup_make(probe) != 0)
		return 0;
	cgroup_remove(probe);
	return 1;
}

/* [run] cgroup_parent not set in the file: /stint where stintd may write
 * there (root), else its own cgroup + /runs (the shipped unit: User=stint,
 * Delegate=yes hands stintd its unit's cgroup). stintd stays in its own
 * cgroup with runs below it; it enables no controllers in subtree_control,
 * so cgroup v2's no-internal-process rule does not apply. */
static void
choose_run_parent(struct stintd *d)
{
	char *parent = d->cfg.run.cgroup_parent, own[STINT_CGROUP_MAX + 1],
	     runs[sizeof(d->cfg.run.cgroup_parent)];

	if (d->cfg.run.cgroup_parent_set) {
		log_info("stint run cgroups under %s ([run] cgroup_parent)",
			 parent);
		return;
	}
	if (cgroup_parent_usable("/stint")) {
		log_info("stint run cgroups under /stint (default)");
		return;
	}
	if (stint_cgroup_of_pid(getpid(), own, sizeof(own)) == 0 &&
	    (size_t)snprintf(runs, sizeof(runs), "%s/runs",
			     strcmp(own, "/") == 0 ? "" : own) <
		    sizeof(runs) - 64 &&
	    cgroup_parent_usable(runs)) {
		memcpy(parent, runs, sizeof(runs));
		log_info("stint run cgroups under %s (stintd's own cgroup: "
			 "/stint is not writable)",
			 parent);
		return;
	}
	log_warn("stint run: neither /stint nor stintd's own cgroup is "
		 "writable; runs will be bound to the command's pid unless "
		 "[run] cgroup_parent names a writable cgroup");
}

int
stint_watch_start(struct stintd *d)
{
	if (pipe2(W.wake, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	W.d = d;
	W.stop = false;
	choose_run_parent(d);
	rearm_all(d);
	sweep_runs(d);
	if (pthread_create(&W.thread, NULL, watch_main, d) != 0)
		return -1;
	W.running = true;
	return 0;
}

void
stint_watch_stop(void)
{
	struct watch *w, *next;

	if (W.running) {
		pthread_mutex_lock(&W.lock);
		W.stop = true;
		pthread_mutex_unlock(&W.lock);
		wake();
		pthread_join(W.thread, NULL);
		W.running = false;
	}
	pending_expire(true);
	/* The bindings stay in state.db: the next start watches again. */
	for (w = W.list; w != NULL; w = next) {
		next = w->next;
		close(w->fd);
		free(w);
	}
	W.list = NULL;
	W.n = 0;
	if (W.wake[0] >= 0) {
		close(W.wake[0]);
		close(W.wake[1]);
		W.wake[0] = W.wake[1] = -1;
	}
}
