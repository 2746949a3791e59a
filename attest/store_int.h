/*
 * Private to the store group (store.c, store_sql.c, store_tasks.c, gate.c):
 * the store's state and the functions one file offers the others. Every
 * function here runs with s->lock held unless its name says otherwise.
 */
#ifndef STINT_ATTEST_STORE_INT_H
#define STINT_ATTEST_STORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "attest/revoke_journal.h"
#include "attest/store.h"

enum stmt_id {
	S_BEGIN,
	S_BEGIN_READ,
	S_COMMIT,
	S_ROLLBACK,
	S_AGENT_INSERT,
	S_AGENT_UPDATE,
	S_AGENT_BY_NAME,
	S_AGENT_FOR_PEER,
	S_AGENT_UID_CLASH,
	S_AGENT_LIST,
	S_AGENT_DELETE,
	S_AGENT_DELETE_ID,
	S_AGENT_LIVE_IDS,
	S_AGENT_LIVE_END,
	S_TASK_INSERT,
	S_TASK_GET,
	S_TASK_GATE,
	S_TASK_USE,
	S_TASK_ADD_SIGS,
	S_TASK_LIST,
	S_TASK_END,
	S_AGENT_TASKS_END,
	S_TASKS_DUE,
	S_TASK_KEY_DESTROYED,
	S_TASK_DELETE,
	S_COUNT_AGENTS,
	S_COUNT_TASKS,
	S_TASKS_LIVE,
	/* operators (oper): store_operator.c */
	S_OPERATOR_INSERT,
	S_OPERATOR_BY_NAME,
	S_OPERATOR_BY_UID,
	S_OPERATOR_LIST,
	S_OPERATOR_DELETE,
	/* delegation (deleg): store_tree.c */
	S_TASK_RESERVE,
	S_TASK_GIVE_BACK,
	S_TASK_RESERVED_CLEAR,
	S_TASK_SUBTREE,
	S_TASK_ORPHANS,
	S_TASK_TREE,
	S_OPERATOR_UPDATE, /* prov */
	S_TASK_UNRESERVE,  /* budget: budget.h */
	S_TASK_LIST_LIVE,  /* storeidx */
	S_TASK_LIST_LIVE_AGENT,
	S_N,
};

/* Signatures of budget-less tasks not yet written (see the top). */
#define PENDING_BUCKETS 256
struct pending_sigs {
	struct pending_sigs *next;
	uint64_t n;
	char id[STINT_TASK_ID_MAX + 1];
};

/* A live task as the gate sees it (no blobs, no intent). */
struct task_entry {
	struct task_entry *next;
	uint32_t hash;
	uint32_t key_type;
	bool key_destroyed;
	int64_t created, not_after;
	uint64_t max_sigs;
	uint64_t used_sigs; /* committed + pending; budgeted: the count */
	/* budget: a budgeted task's reservation, its row's used_sigs
	 * (budget.h); used_sigs <= mark <= max_sigs */
	uint64_t mark;
	int64_t agent_id; /* 0: stored without one */
	size_t n_mechs;
	uint64_t mechs[STINT_MECHS_MAX];
	char id[STINT_TASK_ID_MAX + 1];
	char agent[STINT_NAME_MAX + 1];
	struct stint_task_bind bind;
};

struct gate_index {
	bool valid;                 /* false: every gate asks SQLite */
	struct stint_agent *agents; /* every agents row, sorted by name */
	size_t n_agents, cap_agents;
	struct task_entry **buckets; /* live tasks by id; power of two */
	size_t n_buckets, n_tasks;
};

/* A task end state.db has not committed yet (see stint_store_task_end). */
struct tomb {
	bool used;
	bool key_destroyed;
	struct stint_rj_entry e;
};

struct stint_store {
	pthread_mutex_t lock;
	struct stint_rj *rj; /* the revocation journal, next to state.db */
	struct tomb tombs[STINT_RJ_SLOTS];
	size_t n_tombs;
	sqlite3 *db;
	sqlite3_stmt *st[S_N];
	struct pending_sigs *pending[PENDING_BUCKETS];
	size_t n_pending;
	int64_t flush_at; /* write pending counts once now reaches it */
	struct gate_index idx;
	bool idx_off;         /* stint_gate_index(s, false) */
	int64_t idx_retry_at; /* next rebuild attempt while !idx.valid */
	uint64_t gates_fast, gates_sql;
	uint32_t budget_block; /* budget: signatures reserved per write */
	char path[4096];
};

#define MECHS_TEXT_MAX (STINT_MECHS_MAX * 21)

/* ---- store_sql.c: SQLite layer ------------------------------------------ */
void store_db_log(struct stint_store *s, const char *what);
void store_db_err(struct stint_store *s, const char *what, char *err,
		  size_t errlen);
sqlite3_stmt *store_stmt(struct stint_store *s, enum stmt_id id);
void store_stmt_done(sqlite3_stmt *st);
int store_run(struct stint_store *s, enum stmt_id id);
int store_tx_begin(struct stint_store *s);
int store_tx_commit(struct stint_store *s);
void store_tx_rollback(struct stint_store *s);
int store_bind_u64(sqlite3_stmt *st, int col, uint64_t v);
int store_bind_blob(sqlite3_stmt *st, int col, const struct stint_bytes *b);
int store_mechs_format(const uint64_t *mechs, size_t n, char *buf, size_t cap);
int store_copy_text(sqlite3_stmt *st, int col, char *dst, size_t cap);
int store_read_agent(sqlite3_stmt *st, struct stint_agent *a);
/* Steps st (bound, lock held) and reads each row with read into a growing
 * array of elem-byte elements: STINT_STORE_OK with *out (NULL when no row)
 * and *n, or STINT_STORE_ERROR (out of memory, a bad row, SQLite: logged
 * as what) with nothing returned. */
int store_rows(struct stint_store *s, sqlite3_stmt *st, size_t elem,
	       int (*read)(sqlite3_stmt *st, void *row), const char *what,
	       void **out, size_t *n);
const char *store_state_str(enum stint_task_state state);
int store_read_task(sqlite3_stmt *st, struct stint_task *t, bool blobs);
int store_prepare_file(const char *path, char *err, size_t errlen);
int store_configure_db(struct stint_store *s, char *err, size_t errlen);

/* ---- store.c: agents ----------------------------------------------------- */
int store_agent_as_locked(struct stint_store *s, const struct stint_peer *peer,
			  const char *as, struct stint_agent *a);
int store_agent_for_peer_locked(struct stint_store *s,
				const struct stint_peer *peer,
				struct stint_agent *a);

/* ---- store_tasks.c: tasks and pending ends (tombs) ---------------------- */
struct tomb *store_tomb_find(struct stint_store *s, const char *id);
void store_tomb_drop(struct stint_store *s, struct tomb *tb);
void store_tomb_replay(void *ctx, const struct stint_rj_entry *e);
void store_tombs_land(struct stint_store *s);
int store_task_get_locked(struct stint_store *s, enum stmt_id id,
			  const char *task_id, struct stint_task *t);

/* ---- store_tree.c: delegation (deleg) ---------------------------------- */
/* Begins the transaction of a child's insert and reserves its budget from
 * its parent: NOT_FOUND (err says) when the parent is no longer live or
 * its remaining budget is short. */
int store_tree_reserve_locked(struct stint_store *s, const struct stint_task *t,
			      char *err, size_t errlen);
/* Commits (r OK) or rolls back that transaction; the parent's index entry
 * follows. Returns r, or STINT_STORE_ERROR when the commit fails. */
int store_tree_reserve_done(struct stint_store *s, const struct stint_task *t,
			    int r, char *err, size_t errlen);

/* ---- gate.c: batched counts and the gate's index ------------------------- */
uint64_t gate_pending_get(struct stint_store *s, const char *id);
int gate_pending_flush(struct stint_store *s);
void gate_pending_clear(struct stint_store *s);
void gate_idx_free(struct gate_index *ix);
int gate_idx_rebuild(struct stint_store *s);
void gate_idx_invalidate(struct stint_store *s, const char *why);
int gate_idx_agent_put(struct gate_index *ix, const struct stint_agent *a);
void gate_idx_agent_del(struct gate_index *ix, const char *name);
struct task_entry *gate_idx_task_find(const struct gate_index *ix,
				      const char *id);
int gate_idx_task_put(struct gate_index *ix, const struct stint_task *t);
void gate_idx_task_del(struct gate_index *ix, const char *id);
void gate_idx_tasks_del_agent(struct gate_index *ix, const char *agent);
/* budget: writes a budgeted live task's actual count over its reservation
 * (inside the caller's transaction, or autocommit); 0 also when there is
 * nothing to settle. The entry's mark follows at once: a rollback leaves
 * the row with the higher mark, which only loses unused reservations. */
int gate_budget_settle(struct stint_store *s, const char *id);
/* An indexed budgeted task's reservation beyond its count (0: none). */
uint64_t gate_budget_unused(struct stint_store *s, const char *id);
/* Every indexed task of agent (NULL: every one); -1 when one failed. */
int gate_budget_settle_all(struct stint_store *s, const char *agent);
/* A task read for display: its pending count (no budget), or the count
 * the gate holds in memory (budgeted, live and indexed). */
void gate_used_apply(struct stint_store *s, struct stint_task *t);

#endif
