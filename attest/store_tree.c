/*
 * Delegation in the store (deleg): a child task's budget reserved from its
 * parent when it is inserted, the end of a whole tree in one transaction
 * (the cascade), the live tasks whose parent is gone (orphans, after a
 * crash), and a task's tree for `stint task tree`.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "attest/store_int.h"
#include "common/log.h"

int
store_tree_reserve_locked(struct stint_store *s, const struct stint_task *t,
			  char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	if (store_tomb_find(s, t->parent_id) != NULL) {
		snprintf(err, errlen, "parent task %s ended", t->parent_id);
		return STINT_STORE_NOT_FOUND;
	}
	if (store_tx_begin(s) != 0) {
		store_db_err(s, "cannot store task", err, errlen);
		return STINT_STORE_ERROR;
	}
	st = store_stmt(s, S_TASK_RESERVE);
	sqlite3_bind_text(st, 1, t->parent_id, -1, SQLITE_STATIC);
	store_bind_u64(st, 2, t->reserved);
	sqlite3_bind_int64(st, 3, t->created);
	/* budget: the parent's unused reservation is not spent; the entry
	 * takes the row's count once this commits (idx_refresh_locked) */
	store_bind_u64(st, 4, gate_budget_unused(s, t->parent_id));
	rc = sqlite3_step(st);
	store_stmt_done(st);
	if (rc != SQLITE_DONE) {
		store_db_err(s, "cannot reserve the budget", err, errlen);
		store_tx_rollback(s);
		return STINT_STORE_ERROR;
	}
	if (sqlite3_changes(s->db) != 1) {
		snprintf(err, errlen,
			 "parent task %s is no longer live or has fewer than "
			 "%llu signatures left",
			 t->parent_id, (unsigned long long)t->reserved);
		store_tx_rollback(s);
		return STINT_STORE_NOT_FOUND;
	}
	return STINT_STORE_OK;
}

/* The parent's index entry takes the committed count. */
static void
idx_refresh_locked(struct stint_store *s, const char *id)
{
	struct task_entry *e = gate_idx_task_find(&s->idx, id);
	struct stint_task t;

	if (e == NULL)
		return;
	if (store_task_get_locked(s, S_TASK_GATE, id, &t) == STINT_STORE_OK &&
	    t.state == STINT_TASK_LIVE)
		e->used_sigs = e->mark = t.used_sigs; /* settled before */
	else
		gate_idx_task_del(&s->idx, id);
}

int
store_tree_reserve_done(struct stint_store *s, const struct stint_task *t,
			int r, char *err, size_t errlen)
{
	if (r != STINT_STORE_OK) {
		store_tx_rollback(s);
		return r;
	}
	if (store_tx_commit(s) != 0) {
		store_db_err(s, "cannot store task", err, errlen);
		return STINT_STORE_ERROR;
	}
	idx_refresh_locked(s, t->parent_id);
	return STINT_STORE_OK;
}

/* Ids of a one-text-parameter query (NULL: none). */
static int
read_id(sqlite3_stmt *st, void *row)
{
	return store_copy_text(st, 0, row, STINT_TASK_ID_MAX + 1);
}

static int
ids_locked(struct stint_store *s, enum stmt_id id, const char *arg,
	   char (**ids)[STINT_TASK_ID_MAX + 1], size_t *n)
{
	sqlite3_stmt *st = store_stmt(s, id);
	void *out = NULL;
	int r;

	if (arg != NULL)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	r = store_rows(s, st, STINT_TASK_ID_MAX + 1, read_id, "task tree", &out,
		       n);
	store_stmt_done(st);
	*ids = out;
	return r;
}

static int
step_id(struct stint_store *s, enum stmt_id id, const char *task)
{
	sqlite3_stmt *st = store_stmt(s, id);
	int rc;

	sqlite3_bind_text(st, 1, task, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	store_stmt_done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* One task live → state, then its unused reservation back to its
 * parent. 1 ended, 0 was not live, -1 SQLite failed. */
static int
end_one(struct stint_store *s, const char *id, enum stint_task_state state,
	const char *reason, int64_t when)
{
	struct stint_task t;
	sqlite3_stmt *st;
	int rc, changed;

	/* budget: the task's actual count replaces its reservation */
	if (gate_budget_settle(s, id) != 0)
		return -1;
	st = store_stmt(s, S_TASK_END);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, store_state_str(state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, when);
	sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	changed = sqlite3_changes(s->db) > 0;
	store_stmt_done(st);
	if (rc != SQLITE_DONE)
		return -1;
	/* budget: and the parent's, before the give-back lowers it */
	if (changed &&
	    (store_task_get_locked(s, S_TASK_GATE, id, &t) != STINT_STORE_OK ||
	     (t.parent_id[0] != '\0' &&
	      gate_budget_settle(s, t.parent_id) != 0)))
		return -1;
	if (changed && (step_id(s, S_TASK_GIVE_BACK, id) != 0 ||
			step_id(s, S_TASK_RESERVED_CLEAR, id) != 0))
		return -1;
	return changed;
}

/* The whole subtree in one transaction: descendants deepest first (each
 * gives its parent back what it did not use), then the task. */
static int
tree_end_tx(struct stint_store *s, const char *id, enum stint_task_state state,
	    const char *reason, const char *desc_reason, int64_t when,
	    char (*desc)[STINT_TASK_ID_MAX + 1], size_t n, bool *top_ended)
{
	size_t i;
	int r;

	if (store_tx_begin(s) != 0)
		return -1;
	for (i = 0; i < n; i++)
		if (end_one(s, desc[i], STINT_TASK_ENDED, desc_reason, when) <
		    0)
			goto fail;
	if ((r = end_one(s, id, state, reason, when)) < 0)
		goto fail;
	*top_ended = r == 1;
	if (store_tx_commit(s) != 0)
		return -1;
	return 0;
fail:
	store_db_log(s, "task tree end");
	store_tx_rollback(s);
	return -1;
}

int
stint_store_tree_end(struct stint_store *s, const char *id,
		     enum stint_task_state state, const char *reason,
		     const char *desc_reason, int64_t when,
		     char (**desc)[STINT_TASK_ID_MAX + 1], size_t *n)
{
	struct stint_task parent;
	struct tomb *tb;
	bool top = false;
	size_t i;
	int r;

	*desc = NULL;
	*n = 0;
	if (state != STINT_TASK_ENDED && state != STINT_TASK_EXPIRED)
		return STINT_STORE_ERROR;
	pthread_mutex_lock(&s->lock);
	memset(&parent, 0, sizeof(parent));
	if (ids_locked(s, S_TASK_SUBTREE, id, desc, n) != STINT_STORE_OK ||
	    store_task_get_locked(s, S_TASK_GATE, id, &parent) ==
		    STINT_STORE_ERROR ||
	    tree_end_tx(s, id, state, reason, desc_reason, when, *desc, *n,
			&top) != 0) {
		pthread_mutex_unlock(&s->lock);
		/* Fail closed, task by task (pending ends, tombs). */
		for (i = 0; i < *n; i++)
			(void)stint_store_task_end(s, (*desc)[i],
						   STINT_TASK_ENDED,
						   desc_reason, when);
		return stint_store_task_end(s, id, state, reason, when);
	}
	r = top ? STINT_STORE_OK : STINT_STORE_NOT_FOUND;
	/* Committed: the gate refuses the whole tree from now on. */
	for (i = 0; i < *n; i++) {
		gate_idx_task_del(&s->idx, (*desc)[i]);
		if ((tb = store_tomb_find(s, (*desc)[i])) != NULL)
			store_tomb_drop(s, tb);
	}
	gate_idx_task_del(&s->idx, id);
	if ((tb = store_tomb_find(s, id)) != NULL) {
		store_tomb_drop(s, tb);
		r = STINT_STORE_NOT_FOUND;
	}
	if (top && parent.parent_id[0] != '\0')
		idx_refresh_locked(s, parent.parent_id);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_tree_orphans(struct stint_store *s,
			 char (**ids)[STINT_TASK_ID_MAX + 1], size_t *n)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = ids_locked(s, S_TASK_ORPHANS, NULL, ids, n);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int
read_task_row(sqlite3_stmt *st, void *row)
{
	return store_read_task(st, row, true);
}

int
stint_store_task_tree(struct stint_store *s, const char *id,
		      struct stint_task **out, size_t *n)
{
	sqlite3_stmt *st;
	void *rows = NULL;
	size_t i;
	int r;

	pthread_mutex_lock(&s->lock);
	st = store_stmt(s, S_TASK_TREE);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	r = store_rows(s, st, sizeof(struct stint_task), read_task_row,
		       "task tree", &rows, n);
	store_stmt_done(st);
	*out = rows;
	for (i = 0; r == STINT_STORE_OK && i < *n; i++)
		gate_used_apply(s, &(*out)[i]);
	pthread_mutex_unlock(&s->lock);
	if (r == STINT_STORE_OK && *n == 0)
		return STINT_STORE_NOT_FOUND;
	return r;
}
