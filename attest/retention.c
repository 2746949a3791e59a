/*
 * Retention: ended and expired tasks are deleted from state.db, and their
 * evidence files from <state_dir>/evidence, once they ended longer ago
 * than [stintd] retention (default 30d; 0 or off keeps them). Their audit
 * records stay: the log is the history, state.db the working set. A task
 * whose key the reaper has not yet destroyed is kept until it has.
 *
 * A pass runs at start and then from its own thread every
 * min(1h, retention / 2), at least every second.
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attest/daemon.h"
#include "attest/store_guard.h"
#include "common/duration.h"
#include "common/log.h"

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool running, stop;
	struct stintd *d;
} ret = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void
evidence_unlink(void *ctx, const char *id)
{
	struct stintd *d = ctx;
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/evidence/%s.ev", d->cfg.state_dir, id);
	if (unlink(path) != 0 && errno != ENOENT)
		log_warn("retention: cannot remove %s: %s", path,
			 strerror(errno));
}

int
stint_retention_run(struct stintd *d, size_t *n)
{
	struct stint_audit_event ev = {.event = "task-prune",
				       .decision = "allow"};
	char detail[128], age[32];
	int64_t before;

	*n = 0;
	if (d->cfg.retention == 0)
		return 0;
	before = stintd_now() - (int64_t)d->cfg.retention;
	if (stint_store_prune(d->store, before, evidence_unlink, d, n) != 0)
		log_err("retention: pruning ended tasks failed (%zu pruned)",
			*n);
	if (*n == 0)
		return 0;
	stint_duration_format(d->cfg.retention, age, sizeof(age));
	snprintf(detail, sizeof(detail),
		 "%zu ended tasks older than %s removed from state.db", *n,
		 age);
	ev.detail = detail;
	if (stint_audit_append(d->audit, &ev) != 0)
		log_err("audit log write failed for task-prune");
	log_info("retention: %s", detail);
	return 0;
}

static uint64_t
period(const struct stintd *d)
{
	uint64_t p = d->cfg.retention / 2;

	if (p > 3600)
		p = 3600;
	return p < 1 ? 1 : p;
}

static void *
retention_main(void *arg)
{
	struct stintd *d = arg;
	struct timespec until;
	size_t n;

	pthread_mutex_lock(&ret.lock);
	while (!ret.stop) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)period(d);
		while (!ret.stop && pthread_cond_timedwait(&ret.cond, &ret.lock,
							   &until) != ETIMEDOUT)
			;
		if (ret.stop)
			break;
		pthread_mutex_unlock(&ret.lock);
		stint_retention_run(d, &n);
		pthread_mutex_lock(&ret.lock);
	}
	pthread_mutex_unlock(&ret.lock);
	return NULL;
}

int
stint_retention_start(struct stintd *d)
{
	size_t n;

	if (d->cfg.retention == 0)
		return 0;
	stint_retention_run(d, &n);
	ret.d = d;
	ret.stop = false;
	if (pthread_create(&ret.thread, NULL, retention_main, d) != 0)
		return -1;
	ret.running = true;
	return 0;
}

void
stint_retention_stop(void)
{
	if (!ret.running)
		return;
	pthread_mutex_lock(&ret.lock);
	ret.stop = true;
	pthread_cond_signal(&ret.cond);
	pthread_mutex_unlock(&ret.lock);
	pthread_join(ret.thread, NULL);
	ret.running = false;
}
