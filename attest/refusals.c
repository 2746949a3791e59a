/* Rate-bounded auditing of refused SIGNs: see refusals.h. */

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "attest/refusals.h"
#include "attest/store.h"
#include "common/log.h"

#define SLOTS    64 /* uids tracked at once; the rest share OVERFLOW */
#define OVERFLOW SLOTS

struct slot {
	bool used;
	uid_t uid;
	int64_t start;      /* the interval began */
	unsigned own;       /* refusals written as their own record */
	uint64_t count;     /* refusals counted for the aggregate */
	bool mixed_task;    /* counted refusals named different tasks */
	bool mixed_reason;  /* ...or gave different reasons */
	const char *reason; /* static text */
	const char *last_own_reason; /* of the last own record */
	char last_own_task[STINT_TASK_ID_MAX + 1];
	char agent[STINT_NAME_MAX + 1];
	char task[STINT_TASK_ID_MAX + 1];
	struct stint_peer peer; /* the last counted refusal's */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[SLOTS + 1];
static int64_t interval = 10;

void
stint_refusals_init(uint64_t seconds)
{
	pthread_mutex_lock(&lock);
	interval = seconds > 0 && seconds <= 3600 ? (int64_t)seconds : 10;
	pthread_mutex_unlock(&lock);
}

static struct slot *
slot_for(uid_t uid, int64_t now)
{
	struct slot *free_slot = NULL;
	size_t i;

	for (i = 0; i < SLOTS; i++) {
		if (slots[i].used && slots[i].uid == uid)
			return &slots[i];
		if (!slots[i].used && free_slot == NULL)
			free_slot = &slots[i];
	}
	if (free_slot == NULL)
		free_slot = &slots[OVERFLOW];
	if (!free_slot->used) {
		memset(free_slot, 0, sizeof(*free_slot));
		free_slot->used = true;
		free_slot->uid = uid;
		free_slot->start = now;
	}
	return free_slot;
}

static void
copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src != NULL ? src : "");
}

/* Lock held. */
static void
write_aggregate(struct stint_audit *a, struct slot *s)
{
	char detail[96];
	struct stint_audit_event ev = {
		.event = "sign-refused-aggregate",
		.agent = s->agent[0] ? s->agent : NULL,
		.task = !s->mixed_task && s->task[0] ? s->task : NULL,
		.peer = &s->peer,
		.decision = "deny",
		.reason = s->mixed_reason ? "several reasons" : s->reason,
		.detail = detail,
	};

	if (s == &slots[OVERFLOW])
		s->peer.uid = (uid_t)-1; /* many uids: none in particular */
	snprintf(detail, sizeof(detail), "count=%llu interval=%llds",
		 (unsigned long long)s->count, (long long)interval);
	if (stint_audit_append(a, &ev) != 0)
		log_err("audit log write failed: %llu refused signatures of "
			"uid %ld not recorded",
			(unsigned long long)s->count, (long)s->peer.uid);
}

static bool
same(const char *x, const char *y)
{
	return strcmp(x != NULL ? x : "", y != NULL ? y : "") == 0;
}

/* Lock held: true when ev gets its own record. */
static bool
gets_own_record(struct slot *s, const struct stint_audit_event *ev)
{
	unsigned burst = ev->agent != NULL ? REFUSALS_BURST_AGENT : 1;

	if (s == &slots[OVERFLOW] || s->own >= burst)
		return false;
	/* An identical repeat of the last own record is counted. */
	if (s->own > 0 && same(s->last_own_task, ev->task) &&
	    s->last_own_reason == ev->reason)
		return false;
	return true;
}

static void
count(struct slot *s, const struct stint_audit_event *ev)
{
	if (s->count == 0) {
		copy(s->agent, sizeof(s->agent), ev->agent);
		copy(s->task, sizeof(s->task), ev->task);
		s->reason = ev->reason;
	} else {
		if (!same(s->task, ev->task))
			s->mixed_task = true;
		if (!same(s->reason, ev->reason))
			s->mixed_reason = true;
		if (!same(s->agent, ev->agent))
			s->agent[0] = '\0';
	}
	s->peer = *ev->peer;
	s->count++;
}

int
stint_refusals_audit(struct stint_audit *a, const struct stint_audit_event *ev,
		     int64_t now)
{
	struct slot *s;
	int r = 0;

	pthread_mutex_lock(&lock);
	s = slot_for(ev->peer->uid, now);
	if (now >= s->start + interval) {
		/* Its interval is over: close it, start the next. */
		if (s->count > 0)
			write_aggregate(a, s);
		s->used = false;
		s = slot_for(ev->peer->uid, now);
	}
	if (gets_own_record(s, ev)) {
		s->own++;
		s->last_own_reason = ev->reason;
		copy(s->last_own_task, sizeof(s->last_own_task), ev->task);
		r = stint_audit_append(a, ev);
	} else {
		count(s, ev);
	}
	pthread_mutex_unlock(&lock);
	return r;
}

void
stint_refusals_flush(struct stint_audit *a, int64_t now, bool all)
{
	size_t i;

	pthread_mutex_lock(&lock);
	for (i = 0; i <= SLOTS; i++) {
		struct slot *s = &slots[i];

		if (!s->used || (!all && now < s->start + interval))
			continue;
		if (s->count > 0)
			write_aggregate(a, s);
		s->used = false;
	}
	pthread_mutex_unlock(&lock);
}
