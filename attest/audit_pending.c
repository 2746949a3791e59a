/*
 * The queue of lifecycle records waiting for the audit log
 * (audit_pending.h). One process-wide FIFO under a mutex; the record's
 * strings and peer are copied, since the caller's are gone by the time
 * the log accepts it.
 */

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/audit_pending.h"
#include "common/log.h"

struct pending_rec {
	struct pending_rec *next;
	struct stint_audit_event ev; /* points into the fields below */
	struct stint_peer peer;
	uint8_t input_sha256[32];
	char *event, *agent, *task, *mechanism, *decision, *reason, *detail;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct pending_rec *head, **tail = &head;
static size_t count;
static atomic_size_t waiting; /* count, read without the lock */

static void
rec_free(struct pending_rec *p)
{
	if (p == NULL)
		return;
	free(p->event);
	free(p->agent);
	free(p->task);
	free(p->mechanism);
	free(p->decision);
	free(p->reason);
	free(p->detail);
	free(p);
}

/* strdup that keeps NULL; *ok goes false when memory runs out. */
static char *
dup_or_null(const char *s, bool *ok)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*ok = false;
	return d;
}

static struct pending_rec *
rec_copy(const struct stint_audit_event *ev)
{
	struct pending_rec *p = calloc(1, sizeof(*p));
	char since[48];
	size_t len;
	bool ok = true;

	if (p == NULL)
		return NULL;
	snprintf(since, sizeof(since), "pending_since=%" PRId64,
		 (int64_t)time(NULL));
	len = (ev->detail != NULL ? strlen(ev->detail) + 1 : 0) +
	      strlen(since) + 1;
	if ((p->detail = malloc(len)) == NULL) {
		rec_free(p);
		return NULL;
	}
	snprintf(p->detail, len, "%s%s%s", ev->detail ? ev->detail : "",
		 ev->detail ? " " : "", since);
	p->event = dup_or_null(ev->event, &ok);
	p->agent = dup_or_null(ev->agent, &ok);
	p->task = dup_or_null(ev->task, &ok);
	p->mechanism = dup_or_null(ev->mechanism, &ok);
	p->decision = dup_or_null(ev->decision, &ok);
	p->reason = dup_or_null(ev->reason, &ok);
	if (!ok) {
		rec_free(p);
		return NULL;
	}
	p->ev = (struct stint_audit_event){.event = p->event,
					   .agent = p->agent,
					   .task = p->task,
					   .mechanism = p->mechanism,
					   .decision = p->decision,
					   .reason = p->reason,
					   .detail = p->detail,
					   .matched = ev->matched};
	if (ev->peer != NULL) {
		p->peer = *ev->peer;
		p->ev.peer = &p->peer;
	}
	if (ev->input_sha256 != NULL) {
		memcpy(p->input_sha256, ev->input_sha256, 32);
		p->ev.input_sha256 = p->input_sha256;
	}
	return p;
}

/* Lock held. */
static void
flush_locked(struct stint_audit *a)
{
	struct pending_rec *p;

	while ((p = head) != NULL) {
		if (stint_audit_append(a, &p->ev) != 0)
			return;
		log_info("audit: pending %s record of %s written", p->event,
			 p->task    ? p->task
			 : p->agent ? p->agent
				    : "stintd");
		head = p->next;
		if (head == NULL)
			tail = &head;
		count--;
		atomic_store(&waiting, count);
		rec_free(p);
	}
}

int
stint_audit_pending_append(struct stint_audit *a,
			   const struct stint_audit_event *ev)
{
	struct pending_rec *p;
	int r = 0;

	pthread_mutex_lock(&lock);
	flush_locked(a);
	if (head == NULL && stint_audit_append(a, ev) == 0)
		goto out;
	r = 1;
	if (count >= STINT_AUDIT_PENDING_MAX || (p = rec_copy(ev)) == NULL) {
		log_err("audit: the %s record of %s is lost (the log refuses "
			"records and %zu are waiting)",
			ev->event, ev->task ? ev->task : "-", count);
		r = -1;
		goto out;
	}
	*tail = p;
	tail = &p->next;
	count++;
	atomic_store(&waiting, count);
	log_warn("audit: the log refuses records; the %s record of %s is "
		 "pending (%zu waiting)",
		 ev->event,
		 ev->task    ? ev->task
		 : ev->agent ? ev->agent
			     : "-",
		 count);
out:
	pthread_mutex_unlock(&lock);
	return r;
}

int
stint_audit_append_in_order(struct stint_audit *a,
			    const struct stint_audit_event *ev)
{
	int r = -1;

	/* The common case (nothing waiting) takes no lock. */
	if (atomic_load(&waiting) == 0)
		return stint_audit_append(a, ev);
	pthread_mutex_lock(&lock);
	flush_locked(a);
	if (head == NULL)
		r = stint_audit_append(a, ev);
	pthread_mutex_unlock(&lock);
	return r;
}

void
stint_audit_pending_flush(struct stint_audit *a)
{
	pthread_mutex_lock(&lock);
	if (head != NULL)
		flush_locked(a);
	pthread_mutex_unlock(&lock);
}

size_t
stint_audit_pending_count(void)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = count;
	pthread_mutex_unlock(&lock);
	return n;
}

void
stint_audit_pending_close(struct stint_audit *a)
{
	struct pending_rec *p;

	pthread_mutex_lock(&lock);
	if (a != NULL)
		flush_locked(a);
	while ((p = head) != NULL) {
		log_err("audit: the %s record of %s was never written (the "
			"log refused it until stintd stopped)",
			p->event, p->task ? p->task : "-");
		head = p->next;
		rec_free(p);
	}
	tail = &head;
	count = 0;
	atomic_store(&waiting, 0);
	pthread_mutex_unlock(&lock);
}
