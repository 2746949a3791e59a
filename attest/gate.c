/*
 * The SIGN gate: the in-memory index of agents and live tasks, the
 * batched signature counts of budget-less tasks, and the gate itself.
 *
 * A task without a budget (max_sigs 0) has nothing that depends on its
 * count, and a write transaction per signature costs 50-100 us on the
 * machines we measured (a read-only gate about 10 us). So its increments are
 * kept in memory, added to every read of used_sigs, and written out at most
 * a second later (and at close). A crash loses at most that second of
 * counts for such tasks; the audit log still has every signature.
 *
 * The SIGN gate decides from memory: stintd is the only process that opens
 * the database and every change to agents and tasks goes through the store
 * (store*.c and this file) under the store's mutex, so an index of the agents
 * and of the live tasks, loaded at open and updated after each change has
 * committed, is as authoritative as the tables (see "the gate's index" below).
 * SQLite is still asked when the index cannot answer: a task it does not hold
 * (ended, unknown, or not indexed for lack of memory), and the committed
 * reservation of a budgeted task's next block of signatures (budget.h:
 * inside a block a budgeted task is counted in memory too).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "attest/bind.h"
#include "attest/budget.h"
#include "attest/gate.h"
#include "attest/policy.h"
#include "attest/store_int.h"
#include "common/log.h"

/* ---- counts of budget-less tasks, batched ------------------------------ */

static uint32_t
id_hash(const char *id)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	const unsigned char *p;

	for (p = (const unsigned char *)id; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

static struct pending_sigs **
pending_slot(struct stint_store *s, const char *id)
{
	return &s->pending[id_hash(id) % PENDING_BUCKETS];
}

uint64_t
gate_pending_get(struct stint_store *s, const char *id)
{
	struct pending_sigs *e;

	if (s->n_pending == 0)
		return 0;
	for (e = *pending_slot(s, id); e != NULL; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e->n;
	return 0;
}

static int
pending_add(struct stint_store *s, const char *id)
{
	struct pending_sigs **slot = pending_slot(s, id), *e;

	for (e = *slot; e != NULL; e = e->next) {
		if (strcmp(e->id, id) == 0) {
			e->n++;
			return 0;
		}
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -1;
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->n = 1;
	e->next = *slot;
	*slot = e;
	s->n_pending++;
	return 0;
}

void
gate_pending_clear(struct stint_store *s)
{
	struct pending_sigs *e, *next;
	size_t i;

	for (i = 0; i < PENDING_BUCKETS; i++) {
		for (e = s->pending[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
		s->pending[i] = NULL;
	}
	s->n_pending = 0;
}

/* Writes the batched counts in one transaction; on failure they stay in
 * memory for the next attempt. */
int
gate_pending_flush(struct stint_store *s)
{
	struct pending_sigs *e;
	sqlite3_stmt *st;
	size_t i;
	int rc;

	if (s->n_pending == 0)
		return 0;
	if (store_tx_begin(s) != 0)
		return -1;
	for (i = 0; i < PENDING_BUCKETS; i++) {
		for (e = s->pending[i]; e != NULL; e = e->next) {
			st = store_stmt(s, S_TASK_ADD_SIGS);
			sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
			store_bind_u64(st, 2, e->n);
			rc = sqlite3_step(st);
			store_stmt_done(st);
			if (rc != SQLITE_DONE) {
				store_db_log(s, "signature counts");
				store_tx_rollback(s);
				return -1;
			}
		}
	}
	if (store_tx_commit(s) != 0)
		return -1;
	gate_pending_clear(s);
	return 0;
}

/* ---- the gate's index --------------------------------------------------- */

/*
 * What the SIGN gate needs, in memory. Invariants, all under s->lock:
 *  - while idx.valid, agents[] holds every agents row, sorted by name, so
 *    the first match for a peer is the one the SQL gate would pick;
 *  - every task entry is a row of tasks that is live in the database, with
 *    the same gate fields (used_sigs includes the pending count);
 *  - the index changes only after the SQLite change has committed, so a
 *    failed change leaves it as it was.
 * A live task may be missing from the index (no memory to index it at
 * insert): a miss is decided by SQLite, so a missing entry is never more
 * permissive than the database, only slower. A missing agent would be, so
 * when an agent cannot be indexed the whole index is dropped and the gate
 * asks SQLite until a rebuild succeeds. Removals never allocate.
 */

#define IDX_MIN_BUCKETS 64

void
gate_idx_free(struct gate_index *ix)
{
	struct task_entry *e, *next;
	size_t i;

	for (i = 0; i < ix->n_buckets; i++) {
		for (e = ix->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(ix->buckets);
	free(ix->agents);
	memset(ix, 0, sizeof(*ix));
}

struct task_entry *
gate_idx_task_find(const struct gate_index *ix, const char *id)
{
	struct task_entry *e;
	uint32_t h;

	if (ix->n_buckets == 0 || id == NULL)
		return NULL;
	h = id_hash(id);
	for (e = ix->buckets[h & (ix->n_buckets - 1)]; e != NULL; e = e->next)
		if (e->hash == h && strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

/* Doubles the buckets; without memory it keeps the old ones (longer
 * chains, same answers). */
static void
idx_grow(struct gate_index *ix)
{
	size_t n = ix->n_buckets != 0 ? ix->n_buckets * 2 : IDX_MIN_BUCKETS;
	struct task_entry **nb, *e, *next;
	size_t i;

	nb = calloc(n, sizeof(*nb));
	if (nb == NULL)
		return;
	for (i = 0; i < ix->n_buckets; i++) {
		for (e = ix->buckets[i]; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	free(ix->buckets);
	ix->buckets = nb;
	ix->n_buckets = n;
}

/* Indexes a live task (others are left to SQLite); -1 without memory. */
int
gate_idx_task_put(struct gate_index *ix, const struct stint_task *t)
{
	struct task_entry *e;

	if (t->state != STINT_TASK_LIVE || t->n_mechs > STINT_MECHS_MAX)
		return 0;
	e = gate_idx_task_find(ix, t->id);
	if (e == NULL) {
		if (ix->n_tasks >= ix->n_buckets)
			idx_grow(ix);
		if (ix->n_buckets == 0)
			return -1;
		e = calloc(1, sizeof(*e));
		if (e == NULL)
			return -1;
		snprintf(e->id, sizeof(e->id), "%s", t->id);
		e->hash = id_hash(e->id);
		e->next = ix->buckets[e->hash & (ix->n_buckets - 1)];
		ix->buckets[e->hash & (ix->n_buckets - 1)] = e;
		ix->n_tasks++;
	}
	snprintf(e->agent, sizeof(e->agent), "%s", t->agent);
	e->key_type = t->key_type;
	e->key_destroyed = t->key_destroyed;
	e->created = t->created;
	e->not_after = t->not_after;
	e->max_sigs = t->max_sigs;
	e->used_sigs = t->used_sigs;
	e->mark = t->used_sigs; /* budget: the row's count is the mark */
	e->agent_id = t->agent_id;
	e->n_mechs = t->n_mechs;
	memcpy(e->mechs, t->mechs, t->n_mechs * sizeof(e->mechs[0]));
	e->bind = t->bind;
	return 0;
}

void
gate_idx_task_del(struct gate_index *ix, const char *id)
{
	struct task_entry **pp, *e;
	uint32_t h;

	if (ix->n_buckets == 0)
		return;
	h = id_hash(id);
	for (pp = &ix->buckets[h & (ix->n_buckets - 1)]; (e = *pp) != NULL;
	     pp = &e->next) {
		if (e->hash == h && strcmp(e->id, id) == 0) {
			*pp = e->next;
			free(e);
			ix->n_tasks--;
			return;
		}
	}
}

/* Every task of an agent (agent_tasks_end): a walk of the whole table,
 * which is fine for an admin operation. */
void
gate_idx_tasks_del_agent(struct gate_index *ix, const char *agent)
{
	struct task_entry **pp, *e;
	size_t i;

	for (i = 0; i < ix->n_buckets; i++) {
		pp = &ix->buckets[i];
		while ((e = *pp) != NULL) {
			if (strcmp(e->agent, agent) == 0) {
				*pp = e->next;
				free(e);
				ix->n_tasks--;
			} else {
				pp = &e->next;
			}
		}
	}
}

/* ---- budget: reservations settled (budget.h) ----------------------------- */

static int
settle_entry(struct stint_store *s, struct task_entry *e)
{
	uint64_t unused = stint_budget_unused(e->used_sigs, e->mark);
	sqlite3_stmt *st;
	int rc;

	if (e->max_sigs == 0 || unused == 0)
		return 0;
	st = store_stmt(s, S_TASK_UNRESERVE);
	sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
	store_bind_u64(st, 2, unused);
	store_bind_u64(st, 3, e->used_sigs);
	rc = sqlite3_step(st);
	store_stmt_done(st);
	if (rc != SQLITE_DONE) {
		store_db_log(s, "signature reservation");
		return -1;
	}
	e->mark = e->used_sigs;
	return 0;
}

int
gate_budget_settle(struct stint_store *s, const char *id)
{
	struct task_entry *e = gate_idx_task_find(&s->idx, id);

	return e != NULL ? settle_entry(s, e) : 0;
}

uint64_t
gate_budget_unused(struct stint_store *s, const char *id)
{
	struct task_entry *e = gate_idx_task_find(&s->idx, id);

	if (e == NULL || e->max_sigs == 0)
		return 0;
	return stint_budget_unused(e->used_sigs, e->mark);
}

int
gate_budget_settle_all(struct stint_store *s, const char *agent)
{
	struct task_entry *e;
	size_t i;
	int r = 0;

	for (i = 0; i < s->idx.n_buckets; i++)
		for (e = s->idx.buckets[i]; e != NULL; e = e->next)
			if ((agent == NULL || strcmp(e->agent, agent) == 0) &&
			    settle_entry(s, e) != 0)
				r = -1;
	return r;
}

void
gate_used_apply(struct stint_store *s, struct stint_task *t)
{
	struct task_entry *e;

	if (t->max_sigs != 0 && t->state == STINT_TASK_LIVE &&
	    (e = gate_idx_task_find(&s->idx, t->id)) != NULL &&
	    e->max_sigs != 0) {
		t->used_sigs = e->used_sigs;
		return;
	}
	t->used_sigs += gate_pending_get(s, t->id);
}

/* Fills the gate's out-parameter from an entry: no blobs, no intent. */
static void
task_from_entry(const struct task_entry *e, struct stint_task *t)
{
	memcpy(t->id, e->id, sizeof(t->id));
	memcpy(t->agent, e->agent, sizeof(t->agent));
	t->key_type = e->key_type;
	t->state = STINT_TASK_LIVE;
	t->created = e->created;
	t->not_after = e->not_after;
	t->max_sigs = e->max_sigs;
	t->used_sigs = e->used_sigs;
	t->agent_id = e->agent_id;
	t->n_mechs = e->n_mechs;
	memcpy(t->mechs, e->mechs, e->n_mechs * sizeof(t->mechs[0]));
	t->key_destroyed = e->key_destroyed;
	t->bind = e->bind;
}

/* The policy allowed: a bound task still refuses every other process. */
static void
bind_check(const struct stint_gate_req *req, struct stint_gate_result *res)
{
	const char *why;

	if (res->decision != STINT_OK)
		return;
	why = stint_bind_refuses(&res->task.bind, req->peer->pid,
				 req->peer->start_time, req->peer->cgroup);
	if (why != NULL) {
		res->decision = STINT_E_NOT_YOURS;
		res->reason = why;
	}
}

/* Position of name in the sorted agents, or where it would go. */
static size_t
idx_agent_pos(const struct gate_index *ix, const char *name, bool *found)
{
	size_t lo = 0, hi = ix->n_agents, mid;
	int c;

	*found = false;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(ix->agents[mid].name, name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The agent as its row reads back: no gid (NULL) is -1. */
int
gate_idx_agent_put(struct gate_index *ix, const struct stint_agent *a)
{
	struct stint_agent *grown;
	bool found;
	size_t pos = idx_agent_pos(ix, a->name, &found), cap;

	if (!found && ix->n_agents == ix->cap_agents) {
		cap = ix->cap_agents != 0 ? ix->cap_agents * 2 : 16;
		grown = realloc(ix->agents, cap * sizeof(*grown));
		if (grown == NULL)
			return -1;
		ix->agents = grown;
		ix->cap_agents = cap;
	}
	if (!found) {
		memmove(&ix->agents[pos + 1], &ix->agents[pos],
			(ix->n_agents - pos) * sizeof(ix->agents[0]));
		ix->n_agents++;
	}
	ix->agents[pos] = *a;
	if (ix->agents[pos].gid < 0)
		ix->agents[pos].gid = -1;
	if (a->n_mechs < STINT_MECHS_MAX)
		memset(&ix->agents[pos].mechs[a->n_mechs], 0,
		       (STINT_MECHS_MAX - a->n_mechs) *
			       sizeof(ix->agents[pos].mechs[0]));
	return 0;
}

void
gate_idx_agent_del(struct gate_index *ix, const char *name)
{
	bool found;
	size_t pos = idx_agent_pos(ix, name, &found);

	if (!found)
		return;
	memmove(&ix->agents[pos], &ix->agents[pos + 1],
		(ix->n_agents - pos - 1) * sizeof(ix->agents[0]));
	ix->n_agents--;
}

/* S_AGENT_FOR_PEER from memory: the lowest name whose uid matches, whose
 * gid is unset or matches, and whose selectors match the peer (ident);
 * named (as): that agent, if the peer matches it. */
static const struct stint_agent *
idx_agent_for_peer(const struct gate_index *ix, const struct stint_peer *peer,
		   const char *as)
{
	const struct stint_agent *a;
	bool found;
	size_t i;

	if (as != NULL && as[0] != '\0') {
		i = idx_agent_pos(ix, as, &found);
		a = found ? &ix->agents[i] : NULL;
		return a != NULL && stint_agent_matches(a, peer) ? a : NULL;
	}
	for (i = 0; i < ix->n_agents; i++) {
		a = &ix->agents[i];
		if (stint_agent_matches(a, peer))
			return a;
	}
	return NULL;
}

/* Reads every agent and every live task into ix, in one read
 * transaction. */
static int
idx_load(struct stint_store *s, struct gate_index *ix)
{
	struct stint_agent a;
	struct stint_task t;
	sqlite3_stmt *st;
	int rc, r = -1;

	memset(ix, 0, sizeof(*ix));
	if (store_run(s, S_BEGIN_READ) != 0) {
		store_db_log(s, "begin");
		return -1;
	}
	st = store_stmt(s, S_AGENT_LIST);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (store_read_agent(st, &a) != 0 ||
		    gate_idx_agent_put(ix, &a) != 0)
			goto out;
	store_stmt_done(st);
	if (rc != SQLITE_DONE)
		goto out;
	st = store_stmt(s, S_TASKS_LIVE);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (store_read_task(st, &t, false) != 0)
			goto out;
		if (store_tomb_find(s, t.id) != NULL)
			continue; /* ended, state.db does not know yet */
		t.used_sigs += gate_pending_get(s, t.id);
		if (gate_idx_task_put(ix, &t) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		goto out;
	ix->valid = true;
	r = 0;
out:
	store_stmt_done(st);
	store_tx_rollback(s); /* a read: nothing to commit */
	if (r != 0) {
		store_db_log(s, "loading the gate index");
		gate_idx_free(ix);
	}
	return r;
}

/* Replaces the index with a fresh one read from the database; on failure
 * the index stays invalid (the gate asks SQLite). */
int
gate_idx_rebuild(struct stint_store *s)
{
	struct gate_index fresh;

	/* budget: the counts the index holds go to the rows first; should
	 * that fail, the rows' marks count as used. */
	if (s->idx.valid)
		(void)gate_budget_settle_all(s, NULL);
	gate_idx_free(&s->idx);
	if (idx_load(s, &fresh) != 0)
		return -1;
	s->idx = fresh;
	return 0;
}

/* The index cannot be trusted any more: drop it, rebuild at the next
 * gate. */
void
gate_idx_invalidate(struct stint_store *s, const char *why)
{
	log_err("%s: gate index dropped (%s); the SIGN gate reads the "
		"database until it is rebuilt",
		s->path, why);
	gate_idx_free(&s->idx);
	s->idx_retry_at = 0;
}

#define GATE_NEEDS_WRITE 1
#define GATE_MISS        2

/* The mechanism judged: a check-only gate (deleg) asks none, so any of
 * the task's own passes. */
static uint64_t
req_mech(const struct stint_gate_req *req, const struct stint_task *task)
{
	if (req->check_only && task != NULL && task->n_mechs > 0)
		return task->mechs[0];
	return req->mech;
}

/* The deadline is in whole seconds: a task is refused from not_after.000. */
static int64_t
req_now(const struct stint_gate_req *req)
{
	return (int64_t)req->now.tv_sec;
}

/* budget: how much a budgeted task's row is raised by when its count has
 * reached its reservation: a block when the index holds the task and
 * agrees with the row (its count equal to the mark), else 1 (without an
 * entry nothing counts the block's signatures in memory). */
static uint64_t
reserve_step(struct stint_store *s, const struct stint_task *task)
{
	struct task_entry *e = gate_idx_task_find(&s->idx, task->id);

	if (e == NULL || e->max_sigs == 0 || e->used_sigs != e->mark ||
	    e->mark != task->used_sigs)
		return 1;
	return stint_budget_step(task->used_sigs, task->max_sigs,
				 s->budget_block);
}

/*
 * One pass of the SIGN gate inside one transaction. A read transaction
 * suffices unless the task has a budget and the policy allows: then
 * GATE_NEEDS_WRITE, and the caller runs it again under BEGIN IMMEDIATE so
 * that the budget check and the increment cannot race with another SIGN or
 * with task end, and the increment is committed before anything is signed.
 */
static int
gate_once(struct stint_store *s, bool write, const struct stint_gate_req *req,
	  struct stint_gate_result *res)
{
	struct stint_agent *agent = &res->agent;
	struct stint_task *task = &res->task;
	struct task_entry *e;
	sqlite3_stmt *st;
	uint64_t step = 0; /* budget: what the row's mark was raised by */
	int ra, rt;

	if (store_run(s, write ? S_BEGIN : S_BEGIN_READ) != 0) {
		store_db_log(s, "begin");
		return -1;
	}
	ra = store_agent_as_locked(s, req->peer, req->as_agent, agent);
	if (ra == STINT_STORE_ERROR)
		goto fail;
	if (ra != STINT_STORE_OK)
		memset(agent, 0, sizeof(*agent));
	rt = req->task_id != NULL
		     ? store_task_get_locked(s, S_TASK_GATE, req->task_id, task)
		     : STINT_STORE_NOT_FOUND;
	if (rt == STINT_STORE_ERROR)
		goto fail;
	/* A task of an earlier agent row with the same name (removed, then
	 * added again) is not this agent's. */
	if (rt == STINT_STORE_OK && ra == STINT_STORE_OK &&
	    task->agent_id != 0 && task->agent_id != agent->id &&
	    strcmp(task->agent, agent->name) == 0)
		rt = STINT_STORE_NOT_FOUND;
	if (rt != STINT_STORE_OK)
		memset(task, 0, sizeof(*task));
	res->decision = stint_policy_sign(ra == STINT_STORE_OK ? agent : NULL,
					  rt == STINT_STORE_OK ? task : NULL,
					  req_mech(req, task), req_now(req),
					  &res->reason);
	bind_check(req, res);
	if (res->decision == STINT_OK && req->check_only) {
		store_tx_rollback(s);
		return 0;
	}
	if (res->decision == STINT_OK && task->max_sigs != 0) {
		if (!write) {
			store_tx_rollback(s);
			return GATE_NEEDS_WRITE;
		}
		step = reserve_step(s, task);
		st = store_stmt(s, S_TASK_USE);
		sqlite3_bind_text(st, 1, task->id, -1, SQLITE_STATIC);
		store_bind_u64(st, 2, step);
		if (sqlite3_step(st) != SQLITE_DONE ||
		    sqlite3_changes(s->db) != 1) {
			store_stmt_done(st);
			store_db_log(s, "signature count");
			goto fail;
		}
		store_stmt_done(st);
	} else if (res->decision == STINT_OK) {
		/* No budget: counted in memory, written within a second. */
		if (pending_add(s, task->id) != 0) {
			log_err("out of memory counting signatures");
			goto fail;
		}
		task->used_sigs++;
	}
	if (store_tx_commit(s) != 0)
		return -1;
	/* Committed: an indexed task's count follows (a budgeted one must,
	 * or the index would allow past the budget), and its mark is the
	 * row's new count. */
	e = res->decision == STINT_OK ? gate_idx_task_find(&s->idx, task->id)
				      : NULL;
	if (step != 0) {
		if (e != NULL) {
			e->mark = task->used_sigs + step;
			e->used_sigs = task->used_sigs + 1;
		}
		task->used_sigs++;
	} else if (e != NULL) {
		e->used_sigs = task->used_sigs;
	}
	return 0;
fail:
	store_tx_rollback(s);
	return -1;
}

/* The gate against the database alone, as it ran before the index. */
static int
gate_sql(struct stint_store *s, const struct stint_gate_req *req,
	 struct stint_gate_result *res)
{
	int r;

	r = gate_once(s, false, req, res);
	if (r == GATE_NEEDS_WRITE)
		r = gate_once(s, true, req, res);
	return r;
}

/*
 * The gate from the index, without SQLite. Returns 0 when decided,
 * GATE_MISS when the peer has an agent but the task is not indexed (ended,
 * unknown or not indexed: SQLite knows which, and the reasons differ), and
 * GATE_NEEDS_WRITE when a budgeted task is allowed (its increment is
 * committed by gate_once before anything is signed). A peer without an
 * agent is refused before the task matters, as stint_policy_sign does.
 */
static int
gate_fast(struct stint_store *s, const struct stint_gate_req *req,
	  struct stint_gate_result *res)
{
	const struct stint_agent *a =
		idx_agent_for_peer(&s->idx, req->peer, req->as_agent);
	struct task_entry *e = gate_idx_task_find(&s->idx, req->task_id);

	/* Started for another agent row of the same name: SQLite decides. */
	if (a != NULL && e != NULL && e->agent_id != 0 &&
	    e->agent_id != a->id && strcmp(e->agent, a->name) == 0)
		e = NULL;
	if (a != NULL)
		res->agent = *a;
	if (e != NULL)
		task_from_entry(e, &res->task);
	else if (a != NULL && req->task_id != NULL)
		return GATE_MISS;
	res->decision = stint_policy_sign(a, e != NULL ? &res->task : NULL,
					  req_mech(req, &res->task),
					  req_now(req), &res->reason);
	bind_check(req, res);
	if (res->decision != STINT_OK || req->check_only)
		return 0;
	if (e->max_sigs != 0) {
		/* budget: inside the committed reservation, counted here;
		 * at its end, gate_once commits the next block first. */
		if (!stint_budget_in_block(e->used_sigs, e->mark))
			return GATE_NEEDS_WRITE;
		e->used_sigs++;
		res->task.used_sigs = e->used_sigs;
		return 0;
	}
	/* No budget: counted in memory, written within a second. */
	if (pending_add(s, e->id) != 0) {
		log_err("out of memory counting signatures");
		return -1;
	}
	e->used_sigs++;
	res->task.used_sigs = e->used_sigs;
	return 0;
}

/* A budgeted task the index allows: the committed write transaction
 * decides, and must agree with the index. */
static int
gate_budget(struct stint_store *s, const struct stint_gate_req *req,
	    struct stint_gate_result *res)
{
	int r;

	r = gate_once(s, true, req, res);
	if (r == 0 && res->decision != STINT_OK) {
		log_err("%s: gate index allowed task %s, the database refuses "
			"(%s)",
			s->path, req->task_id, res->reason);
		gate_idx_invalidate(s, "out of step with the database");
	}
	return r;
}

/* Signatures the task may still make, once the gate has decided. */
static uint64_t
budget_left(const struct stint_task *t)
{
	if (t->id[0] == '\0')
		return 0;
	if (t->max_sigs == 0)
		return STINT_GATE_UNLIMITED;
	return t->used_sigs < t->max_sigs ? t->max_sigs - t->used_sigs : 0;
}

int
stint_gate_sign(struct stint_store *s, const struct stint_gate_req *req,
		struct stint_gate_result *res)
{
	int64_t now = req_now(req);
	int r;

	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&s->lock);
	/* After a failed rebuild, retry once a second, not per signature. */
	if (!s->idx.valid && !s->idx_off && now >= s->idx_retry_at &&
	    gate_idx_rebuild(s) != 0)
		s->idx_retry_at = now + 1;
	r = s->idx.valid ? gate_fast(s, req, res) : GATE_MISS;
	if (r == 0)
		s->gates_fast++;
	else if (r > 0)
		s->gates_sql++;
	res->from_index = r == 0;
	if (r == GATE_MISS)
		r = gate_sql(s, req, res);
	else if (r == GATE_NEEDS_WRITE)
		r = gate_budget(s, req, res);
	if (r != 0) {
		/* Nothing was counted, so nothing may be signed. */
		res->decision = STINT_E_INTERNAL;
		res->reason = "state database failure";
	} else if (now >= s->flush_at) {
		if (gate_pending_flush(s) == 0)
			s->flush_at = now + 1;
	}
	res->budget_left = budget_left(&res->task);
	pthread_mutex_unlock(&s->lock);
	return r == 0 ? STINT_STORE_OK : STINT_STORE_ERROR;
}

int
stint_gate_index(struct stint_store *s, bool on)
{
	int r = STINT_STORE_OK;

	pthread_mutex_lock(&s->lock);
	s->idx_off = !on;
	if (!on)
		gate_idx_free(&s->idx);
	else if (gate_idx_rebuild(s) != 0)
		r = STINT_STORE_ERROR;
	pthread_mutex_unlock(&s->lock);
	return r;
}

void
stint_gate_stats_get(struct stint_store *s, struct stint_gate_stats *st)
{
	pthread_mutex_lock(&s->lock);
	st->index_valid = s->idx.valid;
	st->agents = s->idx.n_agents;
	st->tasks = s->idx.n_tasks;
	st->fast = s->gates_fast;
	st->sql = s->gates_sql;
	pthread_mutex_unlock(&s->lock);
}
