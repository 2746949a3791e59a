/*
 * stintd's durable state: agents and tasks in one SQLite database.
 *
 * Durability: journal_mode=WAL with synchronous=NORMAL. A committed
 * transaction survives a crash of stintd (the WAL is in the OS page cache
 * and SQLite replays it on the next open), but the last transactions can be
 * lost on power loss or a kernel crash, because NORMAL does not fsync the
 * WAL on each commit. The signature budget relies on process-crash
 * durability only: a budgeted task's used_sigs is a reservation, raised by
 * a block and committed before a signature beyond the last one is
 * produced (budget.h), so a stintd crash never hands a spent budget back.
 * FULL would fsync on every SIGN, which costs more than the signature.
 *
 * Concurrency: one connection, opened SQLITE_OPEN_FULLMUTEX, and the
 * store's own mutex around every function so that multi-statement
 * transactions from different threads never interleave.
 *
 * The store is four files sharing the private store_int.h: this one (open
 * and close, agents, counts, retention, the audit head), store_sql.c (the
 * SQLite layer: schema, statements, row codecs), store_tasks.c (tasks and
 * the ends state.db could not commit yet) and gate.c (the SIGN gate, its
 * in-memory index and batched counts; public API in gate.h).
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "attest/store_int.h"
#include "common/cgroup.h"
#include "common/log.h"

/* <state.db>.revocations: ends a full disk kept out of state.db are
 * replayed (in memory at once, into state.db when it accepts them) before
 * the gate index is built, so a restart never revives such a task. */
static int
open_journal(struct stint_store *s, char *err, size_t errlen)
{
	char path[sizeof(s->path) + 16];

	snprintf(path, sizeof(path), "%s.revocations", s->path);
	if (stint_rj_open(path, &s->rj, err, errlen) != 0)
		return -1;
	stint_rj_each(s->rj, store_tomb_replay, s);
	store_tombs_land(s);
	return 0;
}

int
stint_store_open(const char *path, struct stint_store **out, char *err,
		 size_t errlen)
{
	struct stint_store *s;
	int rc;

	*out = NULL;
	if (strlen(path) >= sizeof(s->path)) {
		snprintf(err, errlen, "state database path too long");
		return STINT_STORE_ERROR;
	}
	if (store_prepare_file(path, err, errlen) != 0)
		return STINT_STORE_ERROR;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return STINT_STORE_ERROR;
	}
	memcpy(s->path, path, strlen(path) + 1);
	s->budget_block = 1; /* budget: stintd sets [stintd] budget_block */
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		snprintf(err, errlen, "cannot create the store mutex");
		free(s);
		return STINT_STORE_ERROR;
	}
	rc = sqlite3_open_v2(path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX |
				     SQLITE_OPEN_NOFOLLOW,
			     NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 s->db != NULL ? sqlite3_errmsg(s->db)
				       : sqlite3_errstr(rc));
		goto fail;
	}
	if (store_configure_db(s, err, errlen) != 0 ||
	    open_journal(s, err, errlen) != 0)
		goto fail;
	if (gate_idx_rebuild(s) != 0) {
		snprintf(err, errlen, "%s: cannot load agents and tasks", path);
		goto fail;
	}
	*out = s;
	return STINT_STORE_OK;
fail:
	stint_store_close(s);
	return STINT_STORE_ERROR;
}

void
stint_store_close(struct stint_store *s)
{
	int i;

	if (s == NULL)
		return;
	/* budget: the actual counts replace the reservations */
	if (s->db != NULL && s->st[S_N - 1] != NULL &&
	    (store_tx_begin(s) != 0 || gate_budget_settle_all(s, NULL) != 0 ||
	     store_tx_commit(s) != 0)) {
		store_tx_rollback(s);
		log_warn("%s: unused signature reservations not given back "
			 "(they count as used)",
			 s->path);
	}
	if (s->db != NULL && s->st[S_N - 1] != NULL &&
	    gate_pending_flush(s) != 0)
		log_err("%s: signature counts of %zu tasks not written",
			s->path, s->n_pending);
	if (s->db != NULL && s->st[S_N - 1] != NULL)
		store_tombs_land(s);
	if (s->n_tombs > 0)
		log_warn("%s: %zu task ends still pending; the revocation "
			 "journal keeps them for the next start",
			 s->path, s->n_tombs);
	stint_rj_close(s->rj);
	gate_pending_clear(s);
	gate_idx_free(&s->idx);
	for (i = 0; i < S_N; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void
stint_store_set_budget_block(struct stint_store *s, uint32_t block)
{
	pthread_mutex_lock(&s->lock);
	s->budget_block = block != 0 ? block : 1;
	pthread_mutex_unlock(&s->lock);
}

/* ---- agents ------------------------------------------------------------ */

static int
agent_find(struct stint_store *s, enum stmt_id id, sqlite3_stmt *st,
	   struct stint_agent *a)
{
	int rc = sqlite3_step(st);
	int r;

	if (rc == SQLITE_ROW)
		r = store_read_agent(st, a) == 0 ? STINT_STORE_OK
						 : STINT_STORE_ERROR;
	else if (rc == SQLITE_DONE)
		r = STINT_STORE_NOT_FOUND;
	else
		r = STINT_STORE_ERROR;
	if (r == STINT_STORE_ERROR)
		store_db_log(s, id == S_AGENT_BY_NAME ? "agent lookup"
						      : "peer lookup");
	store_stmt_done(st);
	return r;
}

bool
stint_agent_matches(const struct stint_agent *a, const struct stint_peer *peer)
{
	return (int64_t)a->uid == (int64_t)peer->uid &&
	       (a->gid < 0 || a->gid == (int64_t)peer->gid) &&
	       stint_peer_matches(peer, &a->sel);
}

unsigned
stint_agent_matched(const struct stint_agent *a, const struct stint_peer *peer)
{
	unsigned m = stint_peer_matched(peer, &a->sel);

	if ((int64_t)a->uid == (int64_t)peer->uid)
		m |= STINT_SEL_M_UID;
	if (a->gid >= 0 && a->gid == (int64_t)peer->gid)
		m |= STINT_SEL_M_GID;
	return m;
}

/* Both set and different: no process matches both. */
static bool
sel_apart(const char *x, const char *y)
{
	return x[0] != '\0' && y[0] != '\0' && strcmp(x, y) != 0;
}

bool
stint_agents_overlap(const struct stint_agent *a, const struct stint_agent *b)
{
	const struct stint_selectors *x = &a->sel, *y = &b->sel;

	if (a->uid != b->uid ||
	    (a->gid >= 0 && b->gid >= 0 && a->gid != b->gid) ||
	    sel_apart(x->exe, y->exe) ||
	    sel_apart(x->exe_sha256, y->exe_sha256) ||
	    sel_apart(x->unit, y->unit) ||
	    sel_apart(x->lsm_label, y->lsm_label))
		return false;
	/* Nested cgroups share the processes of the inner one. */
	return x->cgroup[0] == '\0' || y->cgroup[0] == '\0' ||
	       stint_cgroup_within(x->cgroup, y->cgroup) ||
	       stint_cgroup_within(y->cgroup, x->cgroup);
}

static bool
same_principal(const struct stint_agent *a, const struct stint_agent *b)
{
	const struct stint_selectors *x = &a->sel, *y = &b->sel;

	return a->uid == b->uid &&
	       (a->gid < 0 ? -1 : a->gid) == (b->gid < 0 ? -1 : b->gid) &&
	       strcmp(x->exe, y->exe) == 0 &&
	       strcmp(x->exe_sha256, y->exe_sha256) == 0 &&
	       strcmp(x->cgroup, y->cgroup) == 0 &&
	       strcmp(x->unit, y->unit) == 0 &&
	       strcmp(x->lsm_label, y->lsm_label) == 0;
}

int
store_agent_for_peer_locked(struct stint_store *s,
			    const struct stint_peer *peer,
			    struct stint_agent *a)
{
	sqlite3_stmt *st = store_stmt(s, S_AGENT_FOR_PEER);
	int rc, r = STINT_STORE_NOT_FOUND;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)peer->uid);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)peer->gid);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (store_read_agent(st, a) != 0) {
			r = STINT_STORE_ERROR;
			break;
		}
		if (stint_peer_matches(peer, &a->sel)) {
			r = STINT_STORE_OK;
			break;
		}
	}
	if (r == STINT_STORE_NOT_FOUND && rc != SQLITE_DONE)
		r = STINT_STORE_ERROR;
	if (r == STINT_STORE_ERROR)
		store_db_log(s, "peer lookup");
	store_stmt_done(st);
	return r;
}

/* Named: agent as, when the peer matches it (else NOT_FOUND); unnamed
 * ("" or NULL): the lowest name the peer matches. */
int
store_agent_as_locked(struct stint_store *s, const struct stint_peer *peer,
		      const char *as, struct stint_agent *a)
{
	sqlite3_stmt *st;
	int r;

	if (as == NULL || as[0] == '\0')
		return store_agent_for_peer_locked(s, peer, a);
	st = store_stmt(s, S_AGENT_BY_NAME);
	sqlite3_bind_text(st, 1, as, -1, SQLITE_STATIC);
	r = agent_find(s, S_AGENT_BY_NAME, st, a);
	if (r == STINT_STORE_OK && !stint_agent_matches(a, peer))
		r = STINT_STORE_NOT_FOUND;
	return r;
}

/* EXISTS (name set) when another agent has exactly a's uid, gid and
 * selectors; otherwise overlap gets the first that can match the same
 * processes ("" none). */
static int
agent_clash(struct stint_store *s, const struct stint_agent *a, char *name,
	    size_t cap, char *overlap)
{
	sqlite3_stmt *st = store_stmt(s, S_AGENT_UID_CLASH);
	struct stint_agent other;
	int rc, r = STINT_STORE_OK;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)a->uid);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (store_read_agent(st, &other) != 0) {
			r = STINT_STORE_ERROR;
			break;
		}
		if (strcmp(other.name, a->name) == 0)
			continue; /* itself, when updated (prov) */
		if (same_principal(a, &other)) {
			snprintf(name, cap, "%s", other.name);
			r = STINT_STORE_EXISTS;
			break;
		}
		if (overlap != NULL && overlap[0] == '\0' &&
		    stint_agents_overlap(a, &other))
			memcpy(overlap, other.name, sizeof(other.name));
	}
	if (r == STINT_STORE_OK && rc != SQLITE_DONE)
		r = STINT_STORE_ERROR;
	store_stmt_done(st);
	return r;
}

/* An agent row's columns for S_AGENT_INSERT and S_AGENT_UPDATE. */
static void
agent_bind(sqlite3_stmt *st, const struct stint_agent *a, const char *mechs)
{
	sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)a->uid);
	if (a->gid >= 0)
		sqlite3_bind_int64(st, 3, a->gid);
	store_bind_u64(st, 4, a->max_ttl);
	sqlite3_bind_text(st, 5, mechs, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, a->created);
	sqlite3_bind_text(st, 7, a->sel.exe, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, a->sel.exe_sha256, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, a->sel.cgroup, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, a->sel.unit, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 11, a->sel.lsm_label, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, a->audiences, -1, SQLITE_STATIC); /* aud */
	sqlite3_bind_text(st, 13, a->source, -1, SQLITE_STATIC);
	/* deleg */
	sqlite3_bind_text(st, 14, a->delegate_to, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 15, a->max_depth);
}

static int
agent_add_locked(struct stint_store *s, const struct stint_agent *a,
		 char *overlap, char *err, size_t errlen)
{
	char mechs[MECHS_TEXT_MAX], other[STINT_NAME_MAX + 1];
	struct stint_agent existing;
	sqlite3_stmt *st;
	int r;

	if (a->name[0] == '\0' ||
	    store_mechs_format(a->mechs, a->n_mechs, mechs, sizeof(mechs)) !=
		    0 ||
	    a->max_ttl > INT64_MAX) {
		snprintf(err, errlen, "invalid agent record");
		return STINT_STORE_ERROR;
	}
	st = store_stmt(s, S_AGENT_BY_NAME);
	sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
	r = agent_find(s, S_AGENT_BY_NAME, st, &existing);
	if (r == STINT_STORE_OK) {
		snprintf(err, errlen, "agent '%s' already exists", a->name);
		return STINT_STORE_EXISTS;
	}
	if (r != STINT_STORE_NOT_FOUND)
		goto dberr;
	r = agent_clash(s, a, other, sizeof(other), overlap);
	if (r == STINT_STORE_EXISTS) {
		snprintf(err, errlen,
			 "uid %" PRIu32 " already acts as agent '%s' with the "
			 "same gid and selectors: remove it first, or tell "
			 "them apart (own uid or gid, --exe, --exe-sha256, "
			 "--cgroup, --unit, --lsm-label)",
			 a->uid, other);
		return STINT_STORE_EXISTS;
	}
	if (r != STINT_STORE_OK)
		goto dberr;
	st = store_stmt(s, S_AGENT_INSERT);
	agent_bind(st, a, mechs);
	r = sqlite3_step(st);
	store_stmt_done(st);
	if (r != SQLITE_DONE)
		goto dberr;
	return STINT_STORE_OK;
dberr:
	store_db_err(s, "cannot add agent", err, errlen);
	return STINT_STORE_ERROR;
}

int
stint_store_agent_add(struct stint_store *s, const struct stint_agent *a,
		      char *overlap, char *err, size_t errlen)
{
	struct stint_agent row = *a;
	int r;

	pthread_mutex_lock(&s->lock);
	if (store_tx_begin(s) != 0) {
		store_db_err(s, "cannot add agent", err, errlen);
		r = STINT_STORE_ERROR;
		goto out;
	}
	if (overlap != NULL)
		overlap[0] = '\0';
	r = agent_add_locked(s, a, overlap, err, errlen);
	row.id = sqlite3_last_insert_rowid(s->db);
	if (r == STINT_STORE_OK && store_tx_commit(s) != 0) {
		snprintf(err, errlen, "%s: cannot commit agent '%s'", s->path,
			 a->name);
		r = STINT_STORE_ERROR;
	}
	if (r != STINT_STORE_OK)
		store_tx_rollback(s);
	else if (s->idx.valid && gate_idx_agent_put(&s->idx, &row) != 0)
		gate_idx_invalidate(s, "out of memory adding an agent");
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int
agent_update_locked(struct stint_store *s, const struct stint_agent *a,
		    struct stint_agent *row, char *err, size_t errlen)
{
	char mechs[MECHS_TEXT_MAX], other[STINT_NAME_MAX + 1];
	sqlite3_stmt *st;
	int r;

	if (store_mechs_format(a->mechs, a->n_mechs, mechs, sizeof(mechs)) !=
		    0 ||
	    a->max_ttl > INT64_MAX) {
		snprintf(err, errlen, "invalid agent record");
		return STINT_STORE_ERROR;
	}
	st = store_stmt(s, S_AGENT_BY_NAME);
	sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
	r = agent_find(s, S_AGENT_BY_NAME, st, row);
	if (r == STINT_STORE_NOT_FOUND)
		snprintf(err, errlen, "no agent named '%s'", a->name);
	if (r != STINT_STORE_OK)
		return r;
	r = agent_clash(s, a, other, sizeof(other), NULL);
	if (r == STINT_STORE_EXISTS)
		snprintf(err, errlen,
			 "uid %" PRIu32 " already acts as agent '%s' with the "
			 "same gid and selectors",
			 a->uid, other);
	if (r != STINT_STORE_OK)
		return r;
	st = store_stmt(s, S_AGENT_UPDATE);
	agent_bind(st, a, mechs);
	r = sqlite3_step(st);
	store_stmt_done(st);
	if (r != SQLITE_DONE) {
		store_db_err(s, "cannot update agent", err, errlen);
		return STINT_STORE_ERROR;
	}
	return STINT_STORE_OK;
}

int
stint_store_agent_update(struct stint_store *s, const struct stint_agent *a,
			 char *err, size_t errlen)
{
	struct stint_agent row, now;
	int r;

	pthread_mutex_lock(&s->lock);
	if (store_tx_begin(s) != 0) {
		store_db_err(s, "cannot update agent", err, errlen);
		r = STINT_STORE_ERROR;
		goto out;
	}
	r = agent_update_locked(s, a, &row, err, errlen);
	if (r == STINT_STORE_OK && store_tx_commit(s) != 0) {
		snprintf(err, errlen, "%s: cannot commit agent '%s'", s->path,
			 a->name);
		r = STINT_STORE_ERROR;
	}
	if (r != STINT_STORE_OK) {
		store_tx_rollback(s);
		goto out;
	}
	now = *a;
	now.id = row.id;
	now.created = row.created;
	if (s->idx.valid && gate_idx_agent_put(&s->idx, &now) != 0)
		gate_idx_invalidate(s, "out of memory updating an agent");
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_agent_get(struct stint_store *s, const char *name,
		      struct stint_agent *a)
{
	sqlite3_stmt *st;
	int r;

	pthread_mutex_lock(&s->lock);
	st = store_stmt(s, S_AGENT_BY_NAME);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	r = agent_find(s, S_AGENT_BY_NAME, st, a);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_agent_for_peer(struct stint_store *s, const struct stint_peer *peer,
			   struct stint_agent *a)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = store_agent_for_peer_locked(s, peer, a);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_agent_as(struct stint_store *s, const struct stint_peer *peer,
		     const char *as, struct stint_agent *a)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = store_agent_as_locked(s, peer, as, a);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_agents_for_peer(struct stint_store *s,
			    const struct stint_peer *peer,
			    struct stint_agent **out, size_t *n)
{
	struct stint_agent *all = NULL, a, *grown;
	sqlite3_stmt *st;
	size_t got = 0;
	int rc, r = STINT_STORE_OK;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&s->lock);
	st = store_stmt(s, S_AGENT_FOR_PEER);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)peer->uid);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)peer->gid);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (store_read_agent(st, &a) != 0) {
			r = STINT_STORE_ERROR;
			break;
		}
		if (!stint_peer_matches(peer, &a.sel))
			continue;
		grown = realloc(all, (got + 1) * sizeof(*all));
		if (grown == NULL) {
			r = STINT_STORE_ERROR;
			break;
		}
		all = grown;
		all[got++] = a;
	}
	if (r == STINT_STORE_OK && rc != SQLITE_DONE)
		r = STINT_STORE_ERROR;
	if (r == STINT_STORE_ERROR)
		store_db_log(s, "peer lookup");
	store_stmt_done(st);
	pthread_mutex_unlock(&s->lock);
	if (r != STINT_STORE_OK) {
		free(all);
		return r;
	}
	*out = all;
	*n = got;
	return got > 0 ? STINT_STORE_OK : STINT_STORE_NOT_FOUND;
}

static int
agent_row(sqlite3_stmt *st, void *row)
{
	return store_read_agent(st, row);
}

int
stint_store_agent_list(struct stint_store *s, struct stint_agent **out,
		       size_t *n)
{
	sqlite3_stmt *st;
	void *list;
	int r;

	pthread_mutex_lock(&s->lock);
	st = store_stmt(s, S_AGENT_LIST);
	r = store_rows(s, st, sizeof(**out), agent_row, "agent list", &list, n);
	*out = list;
	store_stmt_done(st);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_agent_remove(struct stint_store *s, const char *name)
{
	char(*ids)[STINT_TASK_ID_MAX + 1] = NULL;
	size_t n = 0;
	int r;

	r = stint_store_agent_remove_tasks(s, name, "agent removed",
					   (int64_t)time(NULL), &ids, &n);
	free(ids);
	return r;
}

/* The ids of an agent's live tasks (inside the caller's transaction). */
static int
agent_live_ids(struct stint_store *s, const struct stint_agent *a,
	       char (**ids)[STINT_TASK_ID_MAX + 1], size_t *n)
{
	char(*grown)[STINT_TASK_ID_MAX + 1];
	sqlite3_stmt *st = store_stmt(s, S_AGENT_LIVE_IDS);
	size_t cap = 0;
	int rc;

	sqlite3_bind_int64(st, 1, a->id);
	sqlite3_bind_text(st, 2, a->name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(*ids, cap * sizeof(**ids));
			if (grown == NULL)
				break;
			*ids = grown;
		}
		if (store_copy_text(st, 0, (*ids)[*n], sizeof((*ids)[0])) != 0)
			break;
		(*n)++;
	}
	store_stmt_done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
agent_remove_locked(struct stint_store *s, const struct stint_agent *a,
		    const char *reason, int64_t when)
{
	sqlite3_stmt *st = store_stmt(s, S_AGENT_LIVE_END);
	int rc;

	sqlite3_bind_int64(st, 1, a->id);
	sqlite3_bind_text(st, 2, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, when);
	sqlite3_bind_text(st, 4, reason != NULL ? reason : "", -1,
			  SQLITE_STATIC);
	rc = sqlite3_step(st);
	store_stmt_done(st);
	if (rc != SQLITE_DONE)
		return -1;
	st = store_stmt(s, S_AGENT_DELETE_ID);
	sqlite3_bind_int64(st, 1, a->id);
	rc = sqlite3_step(st);
	store_stmt_done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
stint_store_agent_remove_tasks(struct stint_store *s, const char *name,
			       const char *reason, int64_t when,
			       char (**ended)[STINT_TASK_ID_MAX + 1], size_t *n)
{
	char(*ids)[STINT_TASK_ID_MAX + 1] = NULL;
	struct stint_agent a;
	struct tomb *tb;
	sqlite3_stmt *st;
	size_t count = 0, i, kept = 0;
	int r;

	*ended = NULL;
	*n = 0;
	pthread_mutex_lock(&s->lock);
	if (store_tx_begin(s) != 0) {
		r = STINT_STORE_ERROR;
		goto out;
	}
	st = store_stmt(s, S_AGENT_BY_NAME);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	r = agent_find(s, S_AGENT_BY_NAME, st, &a);
	if (r != STINT_STORE_OK)
		goto out;
	if (agent_live_ids(s, &a, &ids, &count) != 0 ||
	    gate_budget_settle_all(s, name) != 0 || /* budget */
	    agent_remove_locked(s, &a, reason, when) != 0) {
		store_db_log(s, "agent remove");
		r = STINT_STORE_ERROR;
		goto out;
	}
	if (store_tx_commit(s) != 0) {
		r = STINT_STORE_ERROR;
		goto out;
	}
	/* Committed: the gate refuses the agent and its tasks from now on.
	 * A pending end has landed with them and was not ended now. */
	gate_idx_agent_del(&s->idx, name);
	for (i = 0; i < count; i++) {
		gate_idx_task_del(&s->idx, ids[i]);
		if ((tb = store_tomb_find(s, ids[i])) != NULL) {
			store_tomb_drop(s, tb);
			continue;
		}
		memmove(ids[kept++], ids[i], sizeof(ids[0]));
	}
	*ended = ids;
	*n = kept;
	ids = NULL;
out:
	store_tx_rollback(s);
	pthread_mutex_unlock(&s->lock);
	free(ids);
	return r;
}

int
stint_store_count(struct stint_store *s, size_t *agents, size_t *live_tasks,
		  size_t *all_tasks)
{
	sqlite3_stmt *st;
	int r = STINT_STORE_ERROR;

	pthread_mutex_lock(&s->lock);
	st = store_stmt(s, S_COUNT_AGENTS);
	if (sqlite3_step(st) != SQLITE_ROW) {
		store_stmt_done(st);
		goto out;
	}
	if (agents != NULL)
		*agents = (size_t)sqlite3_column_int64(st, 0);
	store_stmt_done(st);
	st = store_stmt(s, S_COUNT_TASKS);
	if (sqlite3_step(st) != SQLITE_ROW) {
		store_stmt_done(st);
		goto out;
	}
	if (all_tasks != NULL)
		*all_tasks = (size_t)sqlite3_column_int64(st, 0);
	if (live_tasks != NULL) {
		*live_tasks = (size_t)sqlite3_column_int64(st, 1);
		/* pending ends are live only in state.db */
		*live_tasks -=
			*live_tasks < s->n_tombs ? *live_tasks : s->n_tombs;
	}
	store_stmt_done(st);
	r = STINT_STORE_OK;
out:
	if (r != STINT_STORE_OK)
		store_db_log(s, "count");
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* ---- retention --------------------------------------------------------- */

#define PRUNE_BATCH 500

/* One batch: the ids of up to PRUNE_BATCH ended or expired tasks that ended
 * before `before` and whose key is destroyed (the reaper still needs the
 * row of one whose key is not), deleted in one transaction. */
static int
prune_batch_locked(struct stint_store *s, int64_t before,
		   char (*ids)[STINT_TASK_ID_MAX + 1], size_t *n)
{
	sqlite3_stmt *sel = NULL, *del = NULL;
	int rc, r = STINT_STORE_ERROR;

	*n = 0;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT id FROM tasks WHERE state <> 'live'"
			       " AND key_destroyed = 1 AND ended < ?1"
			       " ORDER BY id LIMIT ?2",
			       -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "DELETE FROM tasks WHERE id = ?1", -1,
			       &del, NULL) != SQLITE_OK) {
		store_db_log(s, "prune: prepare");
		goto out;
	}
	if (store_tx_begin(s) != 0)
		goto out;
	sqlite3_bind_int64(sel, 1, before);
	sqlite3_bind_int(sel, 2, PRUNE_BATCH);
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		if (store_copy_text(sel, 0, ids[*n], sizeof(ids[0])) != 0)
			continue;
		sqlite3_reset(del);
		sqlite3_bind_text(del, 1, ids[*n], -1, SQLITE_STATIC);
		if (sqlite3_step(del) != SQLITE_DONE) {
			rc = SQLITE_ERROR;
			break;
		}
		(*n)++;
	}
	sqlite3_reset(sel);
	sqlite3_reset(del);
	if (rc != SQLITE_DONE) {
		store_db_log(s, "prune");
		store_tx_rollback(s);
		*n = 0;
		goto out;
	}
	if (store_tx_commit(s) != 0) {
		*n = 0;
		goto out;
	}
	r = STINT_STORE_OK;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(del);
	return r;
}

int
stint_store_prune(struct stint_store *s, int64_t before,
		  void (*pruned)(void *ctx, const char *id), void *ctx,
		  size_t *count)
{
	char(*ids)[STINT_TASK_ID_MAX + 1];
	size_t n, i;
	int r;

	*count = 0;
	ids = calloc(PRUNE_BATCH, sizeof(*ids));
	if (ids == NULL)
		return STINT_STORE_ERROR;
	do {
		/* One batch per lock hold: signing and task starts wait at
		 * most for one batch. */
		pthread_mutex_lock(&s->lock);
		r = prune_batch_locked(s, before, ids, &n);
		pthread_mutex_unlock(&s->lock);
		for (i = 0; i < n; i++)
			if (pruned != NULL)
				pruned(ctx, ids[i]);
		*count += n;
	} while (r == STINT_STORE_OK && n == PRUNE_BATCH);
	free(ids);
	return r;
}

/* ---- audit anchor -------------------------------------------------------
 * The audit log's head as stintd last recorded it: one row, created on
 * first use (so no schema version is spent on it). stintd refuses to start
 * on a log that does not hold this record (see audit_anchor.c).
 */

static int
audit_head_table(struct stint_store *s)
{
	return sqlite3_exec(
		       s->db,
		       "CREATE TABLE IF NOT EXISTS audit_head ("
		       " id INTEGER PRIMARY KEY CHECK (id = 1),"
		       " seq INTEGER NOT NULL, hash BLOB NOT NULL,"
		       " offset INTEGER NOT NULL, updated INTEGER NOT NULL)",
		       NULL, NULL, NULL) == SQLITE_OK
		       ? 0
		       : -1;
}

int
stint_store_audit_head_get(struct stint_store *s,
			   struct stint_store_audit_head *h)
{
	sqlite3_stmt *st = NULL;
	int r = STINT_STORE_ERROR, rc;

	memset(h, 0, sizeof(*h));
	pthread_mutex_lock(&s->lock);
	if (audit_head_table(s) != 0 ||
	    sqlite3_prepare_v2(s->db,
			       "SELECT seq, hash, offset, updated FROM "
			       "audit_head WHERE id = 1",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = STINT_STORE_NOT_FOUND;
		goto out;
	}
	if (rc != SQLITE_ROW || sqlite3_column_bytes(st, 1) != 32)
		goto out;
	h->seq = (uint64_t)sqlite3_column_int64(st, 0);
	memcpy(h->hash, sqlite3_column_blob(st, 1), 32);
	h->offset = (uint64_t)sqlite3_column_int64(st, 2);
	h->updated = sqlite3_column_int64(st, 3);
	r = STINT_STORE_OK;
out:
	if (r == STINT_STORE_ERROR)
		store_db_log(s, "audit head");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_audit_head_set(struct stint_store *s,
			   const struct stint_store_audit_head *h)
{
	sqlite3_stmt *st = NULL;
	int r = STINT_STORE_ERROR;

	pthread_mutex_lock(&s->lock);
	if (audit_head_table(s) != 0 ||
	    sqlite3_prepare_v2(s->db,
			       "INSERT OR REPLACE INTO audit_head (id, seq, "
			       "hash, offset, updated) VALUES (1, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_bind_int64(st, 1, (sqlite3_int64)h->seq) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 2, h->hash, 32, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, (sqlite3_int64)h->offset) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, h->updated) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		goto out;
	r = STINT_STORE_OK;
out:
	if (r != STINT_STORE_OK)
		store_db_log(s, "audit head");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return r;
}
