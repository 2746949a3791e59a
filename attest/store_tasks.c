/*
 * Tasks in state.db, and the task ends state.db could not commit yet
 * (tombs, kept in the revocation journal until they land).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "attest/store_int.h"
#include "common/log.h"

/* ---- task ends state.db could not commit -------------------------------- */

/*
 * A "tomb" is an end that SQLite could not commit (ENOSPC, I/O error). It
 * takes effect at once: the gate index loses the task, every read of the
 * row shows it ended (tomb_apply), the index is never rebuilt with it, and
 * the revocation journal (allocated in full when it was created) keeps it
 * across a restart. stint_store_ends_retry writes it into state.db and
 * frees the slot.
 */

struct tomb *
store_tomb_find(struct stint_store *s, const char *id)
{
	size_t i;

	if (s->n_tombs == 0 || id == NULL)
		return NULL;
	for (i = 0; i < STINT_RJ_SLOTS; i++)
		if (s->tombs[i].used && strcmp(s->tombs[i].e.id, id) == 0)
			return &s->tombs[i];
	return NULL;
}

/* A pending end overrides the row's live state. */
static void
tomb_apply(struct stint_store *s, struct stint_task *t)
{
	struct tomb *tb;

	if (t->state != STINT_TASK_LIVE ||
	    (tb = store_tomb_find(s, t->id)) == NULL)
		return;
	t->state = (enum stint_task_state)tb->e.state;
	t->ended = tb->e.when;
	snprintf(t->reason, sizeof(t->reason), "%s", tb->e.reason);
	if (tb->key_destroyed)
		t->key_destroyed = true;
}

static struct tomb *
tomb_put(struct stint_store *s, const struct stint_rj_entry *e)
{
	struct tomb *tb = store_tomb_find(s, e->id);
	size_t i;

	for (i = 0; tb == NULL && i < STINT_RJ_SLOTS; i++) {
		if (s->tombs[i].used)
			continue;
		tb = &s->tombs[i];
		memset(tb, 0, sizeof(*tb));
		tb->used = true;
		tb->e = *e;
		s->n_tombs++;
	}
	return tb;
}

void
store_tomb_drop(struct stint_store *s, struct tomb *tb)
{
	if (stint_rj_remove(s->rj, tb->e.id) != 0)
		log_warn("%s: cannot clear the journal slot of task %s (it is "
			 "replayed harmlessly at the next start)",
			 s->path, tb->e.id);
	memset(tb, 0, sizeof(*tb));
	s->n_tombs--;
}

void
store_tomb_replay(void *ctx, const struct stint_rj_entry *e)
{
	struct stint_store *s = ctx;

	if (e->state != STINT_TASK_ENDED && e->state != STINT_TASK_EXPIRED)
		return;
	if (tomb_put(s, e) != NULL)
		log_warn("%s: task %s ended while state.db was full; its end "
			 "is replayed from the revocation journal",
			 s->path, e->id);
}

/* Runs a statement with one text parameter (autocommit: done means
 * committed); NOT_FOUND when it changed no row. */
static int
exec_one_locked(struct stint_store *s, enum stmt_id id, const char *key,
		const char *what)
{
	sqlite3_stmt *st;
	int r;

	st = store_stmt(s, id);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_db_log(s, what);
		r = STINT_STORE_ERROR;
	} else {
		r = sqlite3_changes(s->db) > 0 ? STINT_STORE_OK
					       : STINT_STORE_NOT_FOUND;
	}
	store_stmt_done(st);
	return r;
}

/* ---- tasks ------------------------------------------------------------- */

int
stint_store_task_insert(struct stint_store *s, const struct stint_task *t,
			char *err, size_t errlen)
{
	char mechs[MECHS_TEXT_MAX];
	const char *state = store_state_str(t->state);
	sqlite3_stmt *st;
	int rc, r = STINT_STORE_OK;

	if (t->id[0] == '\0' || t->agent[0] == '\0' || state == NULL ||
	    store_mechs_format(t->mechs, t->n_mechs, mechs, sizeof(mechs)) !=
		    0 ||
	    t->max_sigs > INT64_MAX || t->used_sigs > INT64_MAX) {
		snprintf(err, errlen, "invalid task record");
		return STINT_STORE_ERROR;
	}
	pthread_mutex_lock(&s->lock);
	/* deleg: a child's insert and its parent's reservation commit
	 * together, and only while the parent is live */
	if (t->parent_id[0] != '\0' &&
	    (r = store_tree_reserve_locked(s, t, err, errlen)) !=
		    STINT_STORE_OK) {
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	st = store_stmt(s, S_TASK_INSERT);
	sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, t->agent, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, t->key_type);
	sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, t->created);
	sqlite3_bind_int64(st, 6, t->not_after);
	sqlite3_bind_int64(st, 7, t->ended);
	sqlite3_bind_text(st, 8, t->reason, -1, SQLITE_STATIC);
	store_bind_u64(st, 9, t->max_sigs);
	store_bind_u64(st, 10, t->used_sigs);
	sqlite3_bind_text(st, 11, t->intent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, mechs, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 13, t->key_destroyed ? 1 : 0);
	/* bind */
	sqlite3_bind_int(st, 21, (int)t->bind.kind);
	sqlite3_bind_int64(st, 22, t->bind.pid);
	store_bind_u64(st, 23, t->bind.start_time);
	sqlite3_bind_text(st, 24, t->bind.cgroup, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 25, t->bind.owned ? 1 : 0);
	sqlite3_bind_text(st, 26, t->audiences, -1, SQLITE_STATIC); /* aud */
	/* deleg: root, depth and path come from the parent's row */
	sqlite3_bind_text(st, 27, t->parent_id, -1, SQLITE_STATIC);
	store_bind_u64(st, 31, t->reserved);
	store_bind_blob(st, 14, &t->pub.spki);
	store_bind_blob(st, 15, &t->pub.ec_params);
	store_bind_blob(st, 16, &t->pub.ec_point);
	store_bind_blob(st, 17, &t->pub.modulus);
	store_bind_blob(st, 18, &t->pub.exponent);
	store_bind_blob(st, 19, &t->cert);
	if (t->agent_id > 0)
		sqlite3_bind_int64(st, 20, t->agent_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
		snprintf(err, errlen, "task '%s' already exists", t->id);
		r = STINT_STORE_EXISTS;
	} else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
		snprintf(err, errlen, "agent '%s' was removed", t->agent);
		r = STINT_STORE_NOT_FOUND;
	} else if (rc != SQLITE_DONE) {
		store_db_err(s, "cannot store task", err, errlen);
		r = STINT_STORE_ERROR;
	}
	store_stmt_done(st);
	if (t->parent_id[0] != '\0')
		r = store_tree_reserve_done(s, t, r, err, errlen);
	/* Not indexed for lack of memory: the gate asks SQLite for it. */
	if (r == STINT_STORE_OK && s->idx.valid &&
	    gate_idx_task_put(&s->idx, t) != 0)
		log_warn("%s: task %s not indexed (out of memory); its SIGN "
			 "gate reads the database",
			 s->path, t->id);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_task_delete(struct stint_store *s, const char *id)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = exec_one_locked(s, S_TASK_DELETE, id, "task delete");
	if (r != STINT_STORE_ERROR)
		gate_idx_task_del(&s->idx, id);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
store_task_get_locked(struct stint_store *s, enum stmt_id id,
		      const char *task_id, struct stint_task *t)
{
	sqlite3_stmt *st = store_stmt(s, id);
	int rc, r;

	memset(t, 0, sizeof(*t));
	sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = store_read_task(st, t, id == S_TASK_GET) == 0
			    ? STINT_STORE_OK
			    : STINT_STORE_ERROR;
		if (r == STINT_STORE_OK) {
			/* budget: the gate reads the row's mark, a reader the
			 * count */
			if (id == S_TASK_GET)
				gate_used_apply(s, t);
			else
				t->used_sigs += gate_pending_get(s, t->id);
			tomb_apply(s, t);
		}
	} else if (rc == SQLITE_DONE)
		r = STINT_STORE_NOT_FOUND;
	else
		r = STINT_STORE_ERROR;
	if (r == STINT_STORE_ERROR)
		store_db_log(s, "task lookup");
	store_stmt_done(st);
	return r;
}

int
stint_store_task_get(struct stint_store *s, const char *id,
		     struct stint_task *t)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = store_task_get_locked(s, S_TASK_GET, id, t);
	pthread_mutex_unlock(&s->lock);
	return r;
}

void
stint_store_task_list_free(struct stint_task *tasks, size_t n)
{
	size_t i;

	if (tasks == NULL)
		return;
	for (i = 0; i < n; i++)
		stint_task_clear(&tasks[i]);
	free(tasks);
}

int
stint_store_task_list(struct stint_store *s, const char *agent, bool live_only,
		      int64_t now, const char *cursor, size_t limit,
		      struct stint_task **out, size_t *n)
{
	struct stint_task *list = NULL;
	size_t count = 0;
	sqlite3_stmt *st;
	int rc = SQLITE_DONE, r = STINT_STORE_ERROR;

	*out = NULL;
	*n = 0;
	if (limit == 0)
		return STINT_STORE_OK;
	if (limit > 4096)
		limit = 4096; /* callers page; bound the allocation */
	list = calloc(limit, sizeof(*list));
	if (list == NULL)
		return STINT_STORE_ERROR;
	pthread_mutex_lock(&s->lock);
	/* storeidx: live tasks through their own indexes */
	st = store_stmt(s, !live_only      ? S_TASK_LIST
			   : agent != NULL ? S_TASK_LIST_LIVE_AGENT
					   : S_TASK_LIST_LIVE);
	sqlite3_bind_text(st, 1, cursor != NULL ? cursor : "", -1,
			  SQLITE_STATIC);
	if (agent != NULL)
		sqlite3_bind_text(st, 2, agent, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, live_only ? 1 : 0);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)limit);
	while (count < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (store_read_task(st, &list[count], true) != 0)
			goto out;
		gate_used_apply(s, &list[count]);
		tomb_apply(s, &list[count]);
		if (live_only && list[count].state != STINT_TASK_LIVE) {
			stint_task_clear(&list[count]);
			continue;
		}
		count++;
	}
	if (count < limit && rc != SQLITE_DONE) {
		store_db_log(s, "task list");
		goto out;
	}
	if (count == 0) {
		free(list);
		list = NULL;
	}
	*out = list;
	*n = count;
	list = NULL;
	r = STINT_STORE_OK;
out:
	store_stmt_done(st);
	pthread_mutex_unlock(&s->lock);
	stint_store_task_list_free(list, count);
	return r;
}

/*
 * state.db could not record the end of a task: fail closed. A task that is
 * not live (or unknown) is left alone; any other (also one whose row cannot
 * be read) becomes a tomb, goes into the journal and leaves the gate index,
 * so the gate refuses it from now on.
 */
static int
end_pending_locked(struct stint_store *s, const char *id,
		   enum stint_task_state state, const char *reason,
		   int64_t when)
{
	struct stint_rj_entry e;
	struct stint_task t;
	int r;

	r = store_task_get_locked(s, S_TASK_GATE, id, &t);
	if (r == STINT_STORE_NOT_FOUND ||
	    (r == STINT_STORE_OK && t.state != STINT_TASK_LIVE))
		return STINT_STORE_NOT_FOUND;
	memset(&e, 0, sizeof(e));
	snprintf(e.id, sizeof(e.id), "%s", id);
	e.state = (int)state;
	e.when = when;
	snprintf(e.reason, sizeof(e.reason), "%s",
		 reason != NULL ? reason : "");
	if (tomb_put(s, &e) == NULL) {
		/* No room: the index keeps the task, and the caller
		 * destroys the key, which refuses it in the backend. */
		log_err("%s: %d task ends are pending already; task %s is "
			"refused only by its key's destruction",
			s->path, STINT_RJ_SLOTS, id);
		return STINT_STORE_ERROR;
	}
	if (stint_rj_add(s->rj, &e) != 0)
		log_err("%s: cannot write the end of task %s to the "
			"revocation journal: a restart before state.db "
			"records it would show the task live (its key is "
			"destroyed all the same)",
			s->path, id);
	gate_idx_task_del(&s->idx, id);
	log_warn("%s: the end of task %s is pending: state.db cannot record "
		 "it now (retried every second); the task is refused already",
		 s->path, id);
	return STINT_STORE_PENDING;
}

int
stint_store_task_end(struct stint_store *s, const char *id,
		     enum stint_task_state state, const char *reason,
		     int64_t when)
{
	struct tomb *tb;
	sqlite3_stmt *st;
	int r;

	if (state != STINT_TASK_ENDED && state != STINT_TASK_EXPIRED)
		return STINT_STORE_ERROR;
	pthread_mutex_lock(&s->lock);
	/* budget: the actual count replaces the reservation; should that
	 * fail, the end goes on (the row keeps the higher mark). */
	(void)gate_budget_settle(s, id);
	st = store_stmt(s, S_TASK_END);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, store_state_str(state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, when);
	sqlite3_bind_text(st, 4, reason != NULL ? reason : "", -1,
			  SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_db_log(s, "task end");
		store_stmt_done(st);
		r = end_pending_locked(s, id, state, reason, when);
	} else {
		/* Only a live task changes: ending twice is NOT_FOUND. */
		r = sqlite3_changes(s->db) > 0 ? STINT_STORE_OK
					       : STINT_STORE_NOT_FOUND;
		store_stmt_done(st);
		/* Committed (autocommit): the gate refuses it from now on.
		 * Not live either way, so it has no entry. */
		gate_idx_task_del(&s->idx, id);
		if ((tb = store_tomb_find(s, id)) != NULL) {
			store_tomb_drop(s, tb); /* it was ended already */
			r = STINT_STORE_NOT_FOUND;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Writes one pending end (and its key's destruction) in a transaction. */
static int
tomb_land(struct stint_store *s, struct tomb *tb)
{
	sqlite3_stmt *st;
	int rc;

	if (store_tx_begin(s) != 0)
		return -1;
	st = store_stmt(s, S_TASK_END);
	sqlite3_bind_text(st, 1, tb->e.id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2,
			  store_state_str((enum stint_task_state)tb->e.state),
			  -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, tb->e.when);
	sqlite3_bind_text(st, 4, tb->e.reason, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	store_stmt_done(st);
	if (rc == SQLITE_DONE && tb->key_destroyed) {
		st = store_stmt(s, S_TASK_KEY_DESTROYED);
		sqlite3_bind_text(st, 1, tb->e.id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		store_stmt_done(st);
	}
	if (rc != SQLITE_DONE) {
		store_db_log(s, "pending task end");
		store_tx_rollback(s);
		return -1;
	}
	if (store_tx_commit(s) != 0)
		return -1;
	log_info("%s: the end of task %s is now recorded", s->path, tb->e.id);
	store_tomb_drop(s, tb);
	return 0;
}

void
store_tombs_land(struct stint_store *s)
{
	size_t i;

	for (i = 0; i < STINT_RJ_SLOTS && s->n_tombs > 0; i++)
		if (s->tombs[i].used && tomb_land(s, &s->tombs[i]) != 0)
			return; /* still failing: the next pass tries again */
}

int
stint_store_ends_retry(struct stint_store *s, size_t *left,
		       char (**keys)[STINT_TASK_ID_MAX + 1], size_t *n_keys)
{
	size_t i, n = 0;
	int r = STINT_STORE_OK;

	if (keys != NULL) {
		*keys = NULL;
		*n_keys = 0;
	}
	pthread_mutex_lock(&s->lock);
	store_tombs_land(s);
	*left = s->n_tombs;
	if (keys != NULL && s->n_tombs > 0) {
		*keys = calloc(s->n_tombs, sizeof(**keys));
		if (*keys == NULL)
			r = STINT_STORE_ERROR;
		for (i = 0; *keys != NULL && i < STINT_RJ_SLOTS; i++)
			if (s->tombs[i].used && !s->tombs[i].key_destroyed)
				memcpy((*keys)[n++], s->tombs[i].e.id,
				       sizeof((*keys)[0]));
		*n_keys = n;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_agent_tasks_end(struct stint_store *s, const char *agent,
			    const char *reason, int64_t when)
{
	sqlite3_stmt *st;
	int r = STINT_STORE_OK;

	pthread_mutex_lock(&s->lock);
	(void)gate_budget_settle_all(s, agent); /* budget */
	st = store_stmt(s, S_AGENT_TASKS_END);
	sqlite3_bind_text(st, 1, agent, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, when);
	sqlite3_bind_text(st, 3, reason != NULL ? reason : "", -1,
			  SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		store_db_log(s, "agent tasks end");
		r = STINT_STORE_ERROR;
	} else {
		gate_idx_tasks_del_agent(&s->idx, agent);
	}
	store_stmt_done(st);
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* A row that is one task id. */
static int
id_row(sqlite3_stmt *st, void *row)
{
	return store_copy_text(st, 0, row, STINT_TASK_ID_MAX + 1);
}

int
stint_store_tasks_due(struct stint_store *s, int64_t now,
		      char (**ids)[STINT_TASK_ID_MAX + 1], size_t *n)
{
	sqlite3_stmt *st;
	void *list;
	int r;

	pthread_mutex_lock(&s->lock);
	(void)gate_pending_flush(
		s); /* the reaper's pass doubles as the writer */
	st = store_stmt(s, S_TASKS_DUE);
	sqlite3_bind_int64(st, 1, now);
	r = store_rows(s, st, sizeof(**ids), id_row, "due tasks", &list, n);
	*ids = list;
	store_stmt_done(st);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_task_key_destroyed(struct stint_store *s, const char *id)
{
	struct task_entry *e;
	int r;

	pthread_mutex_lock(&s->lock);
	r = exec_one_locked(s, S_TASK_KEY_DESTROYED, id, "key destroyed");
	if (store_tomb_find(s, id) != NULL)
		store_tomb_find(s, id)->key_destroyed = true;
	/* The policy does not look at it; kept so the entry stays equal to
	 * its row. */
	if (r == STINT_STORE_OK &&
	    (e = gate_idx_task_find(&s->idx, id)) != NULL)
		e->key_destroyed = true;
	pthread_mutex_unlock(&s->lock);
	return r;
}
