/*
 * stintd's durable state: agents and tasks in one SQLite database.
 *
 * Durability: journal_mode=WAL with synchronous=NORMAL. A committed
 * transaction survives a crash of stintd (the WAL is in the OS page cache
 * and SQLite replays it on the next open), but the last transactions can be
 * lost on power loss or a kernel crash, because NORMAL does not fsync the
 * WAL on each commit. The signature budget relies on process-crash
 * durability only: used_sigs is incremented and committed before the
 * signature is produced, so a stintd crash never hands a spent budget back.
 * FULL would fsync on every SIGN, which costs more than the signature.
 *
 * A task without a budget (max_sigs 0) has nothing that depends on its
 * count, and a write transaction per signature costs 50-100 us on the
 * machines we measured (a read-only gate about 10 us). So its increments are
 * kept in memory, added to every read of used_sigs, and written out at most
 * a second later (and at close). A crash loses at most that second of
 * counts for such tasks; the audit log still has every signature.
 *
 * The SIGN gate decides from memory: stintd is the only process that opens
 * the database and every change to agents and tasks goes through this file
 * under the store's mutex, so an index of the agents and of the live tasks,
 * loaded at open and updated after each change has committed, is as
 * authoritative as the tables (see "the gate's index" below). SQLite is
 * still asked when the index cannot answer: a task it does not hold (ended,
 * unknown, or not indexed for lack of memory), and the committed increment
 * of a budgeted task.
 *
 * Concurrency: one connection, opened SQLITE_OPEN_FULLMUTEX, and the
 * store's own mutex around every function so that multi-statement
 * transactions from different threads never interleave.
 *
 * Schema: versioned with PRAGMA user_version; migrations[v] takes the
 * schema from version v to v + 1, all in one transaction.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "attest/policy.h"
#include "attest/revoke_journal.h"
#include "attest/store.h"
#include "common/log.h"

/* Tasks keep naming their agent after the agent row is gone: their history
 * stays. Since version 2 an agent also has a stable id (AUTOINCREMENT: never
 * reused) and a task references it (NULL once the agent is removed), so a
 * task can only be stored for the agent row it was started for, and a name
 * removed and added again for another principal never inherits a task. */
static const char *const migrations[] = {
	/* 0 → 1 */
	"CREATE TABLE agents ("
	" name TEXT PRIMARY KEY NOT NULL,"
	" uid INTEGER NOT NULL,"
	" gid INTEGER,"
	" max_ttl INTEGER NOT NULL,"
	" mechs TEXT NOT NULL DEFAULT '',"
	" created INTEGER NOT NULL);"
	"CREATE INDEX agents_uid ON agents(uid);"
	"CREATE TABLE tasks ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" agent TEXT NOT NULL,"
	" key_type INTEGER NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('live', 'ended', 'expired')),"
	" created INTEGER NOT NULL,"
	" not_after INTEGER NOT NULL,"
	" ended INTEGER NOT NULL DEFAULT 0,"
	" reason TEXT NOT NULL DEFAULT '',"
	" max_sigs INTEGER NOT NULL DEFAULT 0,"
	" used_sigs INTEGER NOT NULL DEFAULT 0,"
	" intent TEXT NOT NULL DEFAULT '',"
	" mechs TEXT NOT NULL DEFAULT '',"
	" key_destroyed INTEGER NOT NULL DEFAULT 0,"
	" spki BLOB,"
	" ec_params BLOB,"
	" ec_point BLOB,"
	" modulus BLOB,"
	" exponent BLOB,"
	" cert BLOB);"
	"CREATE INDEX tasks_agent_state ON tasks(agent, state);"
	"CREATE INDEX tasks_state_not_after ON tasks(state, not_after);",
	/* 1 → 2: agent ids and the foreign key from tasks. A live task is
	 * given the id of the agent its name names now. */
	"CREATE TABLE agents_v2 ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" name TEXT UNIQUE NOT NULL,"
	" uid INTEGER NOT NULL,"
	" gid INTEGER,"
	" max_ttl INTEGER NOT NULL,"
	" mechs TEXT NOT NULL DEFAULT '',"
	" created INTEGER NOT NULL);"
	"INSERT INTO agents_v2 (name, uid, gid, max_ttl, mechs, created)"
	" SELECT name, uid, gid, max_ttl, mechs, created FROM agents"
	" ORDER BY name;"
	"DROP TABLE agents;"
	"ALTER TABLE agents_v2 RENAME TO agents;"
	"CREATE INDEX agents_uid ON agents(uid);"
	"ALTER TABLE tasks ADD COLUMN agent_id INTEGER"
	" REFERENCES agents(id) ON DELETE SET NULL;"
	"UPDATE tasks SET agent_id = (SELECT id FROM agents"
	" WHERE agents.name = tasks.agent) WHERE state = 'live';"
	"CREATE INDEX tasks_agent_id ON tasks(agent_id);",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define AGENT_COLS "name, uid, gid, max_ttl, mechs, created, id"
#define TASK_COLS                                                              \
	"id, agent, key_type, state, created, not_after, ended, reason, "      \
	"max_sigs, used_sigs, intent, mechs, key_destroyed, agent_id"
/* Where an agent's live tasks are: by id, or by name for a task stored
 * without one (?1 the agent id, ?2 its name). */
#define AGENT_LIVE_TASKS                                                       \
	" WHERE state = 'live' AND (agent_id = ?1 OR"                          \
	" (agent_id IS NULL AND agent = ?2))"
#define TASK_BLOB_COLS "spki, ec_params, ec_point, modulus, exponent, cert"

enum stmt_id {
	S_BEGIN,
	S_BEGIN_READ,
	S_COMMIT,
	S_ROLLBACK,
	S_AGENT_INSERT,
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
	S_N,
};

static const char *const stmt_sql[S_N] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_BEGIN_READ] = "BEGIN",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_AGENT_INSERT] = "INSERT INTO agents (name, uid, gid, max_ttl, mechs,"
			   " created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[S_AGENT_BY_NAME] = "SELECT " AGENT_COLS " FROM agents WHERE name = ?1",
	/* Several agents may share a uid with distinct gids; a peer that
	 * matches more than one gets the lowest name, deterministically. */
	[S_AGENT_FOR_PEER] = "SELECT " AGENT_COLS " FROM agents"
			     " WHERE uid = ?1 AND (gid IS NULL OR gid = ?2)"
			     " ORDER BY name LIMIT 1",
	[S_AGENT_UID_CLASH] = "SELECT name FROM agents"
			      " WHERE uid = ?1 AND (gid IS NULL OR ?2 IS NULL"
			      " OR gid = ?2) ORDER BY name LIMIT 1",
	[S_AGENT_LIST] = "SELECT " AGENT_COLS " FROM agents ORDER BY name",
	[S_AGENT_DELETE] = "DELETE FROM agents WHERE name = ?1",
	[S_AGENT_DELETE_ID] = "DELETE FROM agents WHERE id = ?1",
	[S_AGENT_LIVE_IDS] =
		"SELECT id FROM tasks" AGENT_LIVE_TASKS " ORDER BY id",
	[S_AGENT_LIVE_END] = "UPDATE tasks SET state = 'ended', ended = ?3,"
			     " reason = ?4" AGENT_LIVE_TASKS,
	/* The agent id the task was started for; without one (0), that of
	 * the agent its name names now. */
	[S_TASK_INSERT] = "INSERT INTO tasks (" TASK_COLS ", " TASK_BLOB_COLS
			  ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
			  " ?11, ?12, ?13, coalesce(?20, (SELECT id FROM"
			  " agents WHERE name = ?2)),"
			  " ?14, ?15, ?16, ?17, ?18, ?19)",
	[S_TASK_GET] = "SELECT " TASK_COLS ", " TASK_BLOB_COLS
		       " FROM tasks WHERE id = ?1",
	[S_TASK_GATE] = "SELECT " TASK_COLS " FROM tasks WHERE id = ?1",
	[S_TASK_USE] = "UPDATE tasks SET used_sigs = used_sigs + 1"
		       " WHERE id = ?1 AND state = 'live'",
	[S_TASK_ADD_SIGS] = "UPDATE tasks SET used_sigs = used_sigs + ?2"
			    " WHERE id = ?1",
	[S_TASK_LIST] = "SELECT " TASK_COLS ", " TASK_BLOB_COLS " FROM tasks"
			" WHERE id > ?1 AND (?2 IS NULL OR agent = ?2)"
			" AND (?3 = 0 OR (state = 'live' AND not_after > ?4))"
			" ORDER BY id LIMIT ?5",
	[S_TASK_END] = "UPDATE tasks SET state = ?2, ended = ?3, reason = ?4"
		       " WHERE id = ?1 AND state = 'live'",
	[S_AGENT_TASKS_END] =
		"UPDATE tasks SET state = 'ended', ended = ?2,"
		" reason = ?3 WHERE agent = ?1 AND state = 'live'",
	[S_TASKS_DUE] = "SELECT id FROM tasks"
			" WHERE (state = 'live' AND not_after <= ?1)"
			" OR (state <> 'live' AND key_destroyed = 0)"
			" ORDER BY id",
	[S_TASK_KEY_DESTROYED] = "UPDATE tasks SET key_destroyed = 1"
				 " WHERE id = ?1",
	[S_TASK_DELETE] = "DELETE FROM tasks WHERE id = ?1",
	[S_COUNT_AGENTS] = "SELECT count(*) FROM agents",
	[S_COUNT_TASKS] = "SELECT count(*), coalesce(sum(state = 'live'), 0)"
			  " FROM tasks",
	[S_TASKS_LIVE] = "SELECT " TASK_COLS " FROM tasks WHERE state = 'live'",
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
	uint64_t used_sigs; /* committed + pending */
	int64_t agent_id;   /* 0: stored without one */
	size_t n_mechs;
	uint64_t mechs[STINT_MECHS_MAX];
	char id[STINT_TASK_ID_MAX + 1];
	char agent[STINT_NAME_MAX + 1];
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
	bool idx_off;         /* stint_store_gate_index(s, false) */
	int64_t idx_retry_at; /* next rebuild attempt while !idx.valid */
	uint64_t gates_fast, gates_sql;
	char path[4096];
};

static void tombs_land(struct stint_store *s);

static void
db_log(struct stint_store *s, const char *what)
{
	log_err("%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static void
db_err(struct stint_store *s, const char *what, char *err, size_t errlen)
{
	if (err != NULL)
		snprintf(err, errlen, "%s: %s: %s", s->path, what,
			 sqlite3_errmsg(s->db));
	else
		db_log(s, what);
}

/* A cached statement, ready to bind. */
static sqlite3_stmt *
stmt(struct stint_store *s, enum stmt_id id)
{
	sqlite3_reset(s->st[id]);
	sqlite3_clear_bindings(s->st[id]);
	return s->st[id];
}

static void
stmt_done(sqlite3_stmt *st)
{
	/* Reset now so that a read statement does not hold its snapshot
	 * (and block WAL checkpoints) until its next use. */
	sqlite3_reset(st);
}

static int
run(struct stint_store *s, enum stmt_id id)
{
	sqlite3_stmt *st = stmt(s, id);
	int rc = sqlite3_step(st);

	stmt_done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
tx_begin(struct stint_store *s)
{
	if (run(s, S_BEGIN) != 0) {
		db_log(s, "begin");
		return -1;
	}
	return 0;
}

static int
tx_commit(struct stint_store *s)
{
	if (run(s, S_COMMIT) != 0) {
		db_log(s, "commit");
		run(s, S_ROLLBACK);
		return -1;
	}
	return 0;
}

static void
tx_rollback(struct stint_store *s)
{
	if (sqlite3_get_autocommit(s->db) == 0)
		run(s, S_ROLLBACK);
}

/* SQLite integers are signed 64-bit: refuse what would wrap. */
static int
bind_u64(sqlite3_stmt *st, int col, uint64_t v)
{
	if (v > INT64_MAX)
		return SQLITE_RANGE;
	return sqlite3_bind_int64(st, col, (sqlite3_int64)v);
}

static int
bind_blob(sqlite3_stmt *st, int col, const struct stint_bytes *b)
{
	if (b->ptr == NULL || b->len == 0)
		return sqlite3_bind_null(st, col);
	return sqlite3_bind_blob64(st, col, b->ptr, b->len, SQLITE_STATIC);
}

/* Comma-separated decimal CKM_* numbers. */
static int
mechs_format(const uint64_t *mechs, size_t n, char *buf, size_t cap)
{
	size_t off = 0, i;
	int k;

	if (n > STINT_MECHS_MAX)
		return -1;
	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		k = snprintf(buf + off, cap - off, "%s%" PRIu64, i ? "," : "",
			     mechs[i]);
		if (k < 0 || (size_t)k >= cap - off)
			return -1;
		off += (size_t)k;
	}
	return 0;
}

static int
mechs_parse(const char *s, uint64_t *mechs, size_t *n)
{
	unsigned long long v;
	char *end;

	*n = 0;
	if (s == NULL || *s == '\0')
		return 0;
	for (;;) {
		if (*s < '0' || *s > '9' || *n >= STINT_MECHS_MAX)
			return -1;
		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno != 0)
			return -1;
		mechs[(*n)++] = v;
		if (*end == '\0')
			return 0;
		if (*end != ',')
			return -1;
		s = end + 1;
	}
}

#define MECHS_TEXT_MAX (STINT_MECHS_MAX * 21)

static int
copy_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
	const unsigned char *txt = sqlite3_column_text(st, col);
	int len = sqlite3_column_bytes(st, col);

	if (txt == NULL) {
		dst[0] = '\0';
		return 0;
	}
	if (len < 0 || (size_t)len >= cap)
		return -1;
	memcpy(dst, txt, (size_t)len);
	dst[len] = '\0';
	return 0;
}

static int
copy_blob(sqlite3_stmt *st, int col, struct stint_bytes *b)
{
	const void *p = sqlite3_column_blob(st, col);
	int len = sqlite3_column_bytes(st, col);

	b->ptr = NULL;
	b->len = 0;
	if (p == NULL || len <= 0)
		return 0;
	b->ptr = malloc((size_t)len);
	if (b->ptr == NULL)
		return -1;
	memcpy(b->ptr, p, (size_t)len);
	b->len = (size_t)len;
	return 0;
}

static int
read_agent(sqlite3_stmt *st, struct stint_agent *a)
{
	memset(a, 0, sizeof(*a));
	if (copy_text(st, 0, a->name, sizeof(a->name)) != 0)
		return -1;
	a->uid = (uint32_t)sqlite3_column_int64(st, 1);
	a->gid = sqlite3_column_type(st, 2) == SQLITE_NULL
			 ? -1
			 : sqlite3_column_int64(st, 2);
	a->max_ttl = (uint64_t)sqlite3_column_int64(st, 3);
	if (mechs_parse((const char *)sqlite3_column_text(st, 4), a->mechs,
			&a->n_mechs) != 0)
		return -1;
	a->created = sqlite3_column_int64(st, 5);
	a->id = sqlite3_column_int64(st, 6);
	return 0;
}

static int
state_parse(const char *s, enum stint_task_state *state)
{
	if (strcmp(s, "live") == 0)
		*state = STINT_TASK_LIVE;
	else if (strcmp(s, "ended") == 0)
		*state = STINT_TASK_ENDED;
	else if (strcmp(s, "expired") == 0)
		*state = STINT_TASK_EXPIRED;
	else
		return -1;
	return 0;
}

static const char *
state_str(enum stint_task_state state)
{
	switch (state) {
	case STINT_TASK_LIVE:
		return "live";
	case STINT_TASK_ENDED:
		return "ended";
	case STINT_TASK_EXPIRED:
		return "expired";
	}
	return NULL;
}

/* Columns in TASK_COLS order, then TASK_BLOB_COLS when blobs is set. */
static int
read_task(sqlite3_stmt *st, struct stint_task *t, bool blobs)
{
	char state[16];

	memset(t, 0, sizeof(*t));
	if (copy_text(st, 0, t->id, sizeof(t->id)) != 0 ||
	    copy_text(st, 1, t->agent, sizeof(t->agent)) != 0 ||
	    copy_text(st, 3, state, sizeof(state)) != 0 ||
	    state_parse(state, &t->state) != 0 ||
	    copy_text(st, 7, t->reason, sizeof(t->reason)) != 0 ||
	    copy_text(st, 10, t->intent, sizeof(t->intent)) != 0 ||
	    mechs_parse((const char *)sqlite3_column_text(st, 11), t->mechs,
			&t->n_mechs) != 0)
		goto fail;
	t->key_type = (uint32_t)sqlite3_column_int64(st, 2);
	t->created = sqlite3_column_int64(st, 4);
	t->not_after = sqlite3_column_int64(st, 5);
	t->ended = sqlite3_column_int64(st, 6);
	t->max_sigs = (uint64_t)sqlite3_column_int64(st, 8);
	t->used_sigs = (uint64_t)sqlite3_column_int64(st, 9);
	t->key_destroyed = sqlite3_column_int64(st, 12) != 0;
	t->agent_id = sqlite3_column_int64(st, 13); /* NULL reads 0 */
	if (!blobs)
		return 0;
	if (copy_blob(st, 14, &t->pub.spki) != 0 ||
	    copy_blob(st, 15, &t->pub.ec_params) != 0 ||
	    copy_blob(st, 16, &t->pub.ec_point) != 0 ||
	    copy_blob(st, 17, &t->pub.modulus) != 0 ||
	    copy_blob(st, 18, &t->pub.exponent) != 0 ||
	    copy_blob(st, 19, &t->cert) != 0)
		goto fail;
	return 0;
fail:
	stint_task_clear(t);
	return -1;
}

void
stint_task_clear(struct stint_task *t)
{
	if (t == NULL)
		return;
	stint_pubkey_free(&t->pub);
	free(t->cert.ptr);
	memset(t, 0, sizeof(*t));
}

/* ---- task ends state.db could not commit -------------------------------- */

/*
 * A "tomb" is an end that SQLite could not commit (ENOSPC, I/O error). It
 * takes effect at once: the gate index loses the task, every read of the
 * row shows it ended (tomb_apply), the index is never rebuilt with it, and
 * the revocation journal (allocated in full when it was created) keeps it
 * across a restart. stint_store_ends_retry writes it into state.db and
 * frees the slot.
 */

static struct tomb *
tomb_find(struct stint_store *s, const char *id)
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

	if (t->state != STINT_TASK_LIVE || (tb = tomb_find(s, t->id)) == NULL)
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
	struct tomb *tb = tomb_find(s, e->id);
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

static void
tomb_drop(struct stint_store *s, struct tomb *tb)
{
	if (stint_rj_remove(s->rj, tb->e.id) != 0)
		log_warn("%s: cannot clear the journal slot of task %s (it is "
			 "replayed harmlessly at the next start)",
			 s->path, tb->e.id);
	memset(tb, 0, sizeof(*tb));
	s->n_tombs--;
}

static void
tomb_replay(void *ctx, const struct stint_rj_entry *e)
{
	struct stint_store *s = ctx;

	if (e->state != STINT_TASK_ENDED && e->state != STINT_TASK_EXPIRED)
		return;
	if (tomb_put(s, e) != NULL)
		log_warn("%s: task %s ended while state.db was full; its end "
			 "is replayed from the revocation journal",
			 s->path, e->id);
}

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

static uint64_t
pending_get(struct stint_store *s, const char *id)
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

static void
pending_clear(struct stint_store *s)
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
static int
pending_flush(struct stint_store *s)
{
	struct pending_sigs *e;
	sqlite3_stmt *st;
	size_t i;
	int rc;

	if (s->n_pending == 0)
		return 0;
	if (tx_begin(s) != 0)
		return -1;
	for (i = 0; i < PENDING_BUCKETS; i++) {
		for (e = s->pending[i]; e != NULL; e = e->next) {
			st = stmt(s, S_TASK_ADD_SIGS);
			sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
			bind_u64(st, 2, e->n);
			rc = sqlite3_step(st);
			stmt_done(st);
			if (rc != SQLITE_DONE) {
				db_log(s, "signature counts");
				tx_rollback(s);
				return -1;
			}
		}
	}
	if (tx_commit(s) != 0)
		return -1;
	pending_clear(s);
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

static void
idx_free(struct gate_index *ix)
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

static struct task_entry *
idx_task_find(const struct gate_index *ix, const char *id)
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
static int
idx_task_put(struct gate_index *ix, const struct stint_task *t)
{
	struct task_entry *e;

	if (t->state != STINT_TASK_LIVE || t->n_mechs > STINT_MECHS_MAX)
		return 0;
	e = idx_task_find(ix, t->id);
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
	e->agent_id = t->agent_id;
	e->n_mechs = t->n_mechs;
	memcpy(e->mechs, t->mechs, t->n_mechs * sizeof(e->mechs[0]));
	return 0;
}

static void
idx_task_del(struct gate_index *ix, const char *id)
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
static void
idx_tasks_del_agent(struct gate_index *ix, const char *agent)
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
static int
idx_agent_put(struct gate_index *ix, const struct stint_agent *a)
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

static void
idx_agent_del(struct gate_index *ix, const char *name)
{
	bool found;
	size_t pos = idx_agent_pos(ix, name, &found);

	if (!found)
		return;
	memmove(&ix->agents[pos], &ix->agents[pos + 1],
		(ix->n_agents - pos - 1) * sizeof(ix->agents[0]));
	ix->n_agents--;
}

/* S_AGENT_FOR_PEER from memory: the lowest name whose uid matches and
 * whose gid is unset or matches. */
static const struct stint_agent *
idx_agent_for_peer(const struct gate_index *ix, uid_t uid, gid_t gid)
{
	const struct stint_agent *a;
	size_t i;

	for (i = 0; i < ix->n_agents; i++) {
		a = &ix->agents[i];
		if ((int64_t)a->uid == (int64_t)uid &&
		    (a->gid < 0 || a->gid == (int64_t)gid))
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
	if (run(s, S_BEGIN_READ) != 0) {
		db_log(s, "begin");
		return -1;
	}
	st = stmt(s, S_AGENT_LIST);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (read_agent(st, &a) != 0 || idx_agent_put(ix, &a) != 0)
			goto out;
	stmt_done(st);
	if (rc != SQLITE_DONE)
		goto out;
	st = stmt(s, S_TASKS_LIVE);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (read_task(st, &t, false) != 0)
			goto out;
		if (tomb_find(s, t.id) != NULL)
			continue; /* ended, state.db does not know yet */
		t.used_sigs += pending_get(s, t.id);
		if (idx_task_put(ix, &t) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE)
		goto out;
	ix->valid = true;
	r = 0;
out:
	stmt_done(st);
	tx_rollback(s); /* a read: nothing to commit */
	if (r != 0) {
		db_log(s, "loading the gate index");
		idx_free(ix);
	}
	return r;
}

/* Replaces the index with a fresh one read from the database; on failure
 * the index stays invalid (the gate asks SQLite). */
static int
idx_rebuild(struct stint_store *s)
{
	struct gate_index fresh;

	idx_free(&s->idx);
	if (idx_load(s, &fresh) != 0)
		return -1;
	s->idx = fresh;
	return 0;
}

/* The index cannot be trusted any more: drop it, rebuild at the next
 * gate. */
static void
idx_invalidate(struct stint_store *s, const char *why)
{
	log_err("%s: gate index dropped (%s); the SIGN gate reads the "
		"database until it is rebuilt",
		s->path, why);
	idx_free(&s->idx);
	s->idx_retry_at = 0;
}

/* ---- open, schema ------------------------------------------------------ */

static int
exec_sql(struct stint_store *s, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", s->path,
			 msg != NULL ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int
user_version(struct stint_store *s, int *version, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK) {
		db_err(s, "cannot read the schema version", err, errlen);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		db_err(s, "cannot read the schema version", err, errlen);
		return -1;
	}
	return 0;
}

static int
check_version(struct stint_store *s, int version, char *err, size_t errlen)
{
	if (version > SCHEMA_VERSION || version < 0) {
		snprintf(err, errlen,
			 "%s: state.db schema version %d is newer than this "
			 "stintd (%d): run a newer stintd or restore a "
			 "backup",
			 s->path, version, SCHEMA_VERSION);
		return -1;
	}
	return 0;
}

static int
migrate(struct stint_store *s, char *err, size_t errlen)
{
	char sql[64];
	int version, v;

	if (exec_sql(s, "BEGIN IMMEDIATE", err, errlen) != 0)
		return -1;
	if (user_version(s, &version, err, errlen) != 0 ||
	    check_version(s, version, err, errlen) != 0)
		goto fail;
	for (v = version; v < SCHEMA_VERSION; v++) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (exec_sql(s, migrations[v], err, errlen) != 0 ||
		    exec_sql(s, sql, err, errlen) != 0)
			goto fail;
	}
	if (exec_sql(s, "COMMIT", err, errlen) != 0)
		goto fail;
	return 0;
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Creates the file 0600 regardless of umask, and tightens an existing one:
 * the agents' uids must not read who acts as whom or the task history. */
static int
prepare_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd, r = -1;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
		  0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot stat %s: %s", path,
			 strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0 && fchmod(fd, 0600) != 0) {
		snprintf(err, errlen, "cannot chmod 600 %s: %s", path,
			 strerror(errno));
		goto out;
	}
	r = 0;
out:
	close(fd);
	return r;
}

static int
configure_db(struct stint_store *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const char *mode;
	int version, rc, i;

	sqlite3_extended_result_codes(s->db, 1);
	if (sqlite3_busy_timeout(s->db, 5000) != SQLITE_OK) {
		db_err(s, "cannot set busy timeout", err, errlen);
		return -1;
	}
	/* Refuse a newer schema before touching the file (WAL changes its
	 * header); migrate() checks again inside its transaction. */
	if (user_version(s, &version, err, errlen) != 0 ||
	    check_version(s, version, err, errlen) != 0)
		return -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st,
			       NULL) != SQLITE_OK) {
		db_err(s, "cannot set WAL mode", err, errlen);
		return -1;
	}
	rc = sqlite3_step(st);
	mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0)
				: NULL;
	if (mode == NULL || strcmp(mode, "wal") != 0) {
		snprintf(err, errlen, "%s: cannot switch to WAL mode (%s)",
			 s->path, mode != NULL ? mode : sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	if (exec_sql(s, "PRAGMA synchronous=NORMAL", err, errlen) != 0 ||
	    exec_sql(s, "PRAGMA foreign_keys=ON", err, errlen) != 0)
		return -1;
	if (migrate(s, err, errlen) != 0)
		return -1;
	for (i = 0; i < S_N; i++) {
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT, &s->st[i],
				       NULL) != SQLITE_OK) {
			db_err(s, "cannot prepare statement", err, errlen);
			return -1;
		}
	}
	return 0;
}

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
	stint_rj_each(s->rj, tomb_replay, s);
	tombs_land(s);
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
	if (prepare_file(path, err, errlen) != 0)
		return STINT_STORE_ERROR;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return STINT_STORE_ERROR;
	}
	memcpy(s->path, path, strlen(path) + 1);
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
	if (configure_db(s, err, errlen) != 0 ||
	    open_journal(s, err, errlen) != 0)
		goto fail;
	if (idx_rebuild(s) != 0) {
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
	if (s->db != NULL && s->st[S_N - 1] != NULL && pending_flush(s) != 0)
		log_err("%s: signature counts of %zu tasks not written",
			s->path, s->n_pending);
	if (s->db != NULL && s->st[S_N - 1] != NULL)
		tombs_land(s);
	if (s->n_tombs > 0)
		log_warn("%s: %zu task ends still pending; the revocation "
			 "journal keeps them for the next start",
			 s->path, s->n_tombs);
	stint_rj_close(s->rj);
	pending_clear(s);
	idx_free(&s->idx);
	for (i = 0; i < S_N; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- agents ------------------------------------------------------------ */

static int
agent_find(struct stint_store *s, enum stmt_id id, sqlite3_stmt *st,
	   struct stint_agent *a)
{
	int rc = sqlite3_step(st);
	int r;

	if (rc == SQLITE_ROW)
		r = read_agent(st, a) == 0 ? STINT_STORE_OK : STINT_STORE_ERROR;
	else if (rc == SQLITE_DONE)
		r = STINT_STORE_NOT_FOUND;
	else
		r = STINT_STORE_ERROR;
	if (r == STINT_STORE_ERROR)
		db_log(s,
		       id == S_AGENT_BY_NAME ? "agent lookup" : "peer lookup");
	stmt_done(st);
	return r;
}

static int
agent_for_peer_locked(struct stint_store *s, uid_t uid, gid_t gid,
		      struct stint_agent *a)
{
	sqlite3_stmt *st = stmt(s, S_AGENT_FOR_PEER);

	sqlite3_bind_int64(st, 1, (sqlite3_int64)uid);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)gid);
	return agent_find(s, S_AGENT_FOR_PEER, st, a);
}

/* The name of an agent the (uid, gid) of a would collide with. */
static int
agent_uid_clash(struct stint_store *s, const struct stint_agent *a, char *name,
		size_t cap)
{
	sqlite3_stmt *st = stmt(s, S_AGENT_UID_CLASH);
	int rc, r;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)a->uid);
	if (a->gid >= 0)
		sqlite3_bind_int64(st, 2, a->gid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = copy_text(st, 0, name, cap) == 0 ? STINT_STORE_EXISTS
						     : STINT_STORE_ERROR;
	else
		r = rc == SQLITE_DONE ? STINT_STORE_OK : STINT_STORE_ERROR;
	stmt_done(st);
	return r;
}

static int
agent_add_locked(struct stint_store *s, const struct stint_agent *a, char *err,
		 size_t errlen)
{
	char mechs[MECHS_TEXT_MAX], other[STINT_NAME_MAX + 1];
	struct stint_agent existing;
	sqlite3_stmt *st;
	int r;

	if (a->name[0] == '\0' ||
	    mechs_format(a->mechs, a->n_mechs, mechs, sizeof(mechs)) != 0 ||
	    a->max_ttl > INT64_MAX) {
		snprintf(err, errlen, "invalid agent record");
		return STINT_STORE_ERROR;
	}
	st = stmt(s, S_AGENT_BY_NAME);
	sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
	r = agent_find(s, S_AGENT_BY_NAME, st, &existing);
	if (r == STINT_STORE_OK) {
		snprintf(err, errlen, "agent '%s' already exists", a->name);
		return STINT_STORE_EXISTS;
	}
	if (r != STINT_STORE_NOT_FOUND)
		goto dberr;
	r = agent_uid_clash(s, a, other, sizeof(other));
	if (r == STINT_STORE_EXISTS) {
		snprintf(err, errlen,
			 "uid %" PRIu32 " already acts as agent '%s': remove "
			 "it first or give each agent its own uid or gid",
			 a->uid, other);
		return STINT_STORE_EXISTS;
	}
	if (r != STINT_STORE_OK)
		goto dberr;
	st = stmt(s, S_AGENT_INSERT);
	sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)a->uid);
	if (a->gid >= 0)
		sqlite3_bind_int64(st, 3, a->gid);
	bind_u64(st, 4, a->max_ttl);
	sqlite3_bind_text(st, 5, mechs, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, a->created);
	r = sqlite3_step(st);
	stmt_done(st);
	if (r != SQLITE_DONE)
		goto dberr;
	return STINT_STORE_OK;
dberr:
	db_err(s, "cannot add agent", err, errlen);
	return STINT_STORE_ERROR;
}

int
stint_store_agent_add(struct stint_store *s, const struct stint_agent *a,
		      char *err, size_t errlen)
{
	struct stint_agent row = *a;
	int r;

	pthread_mutex_lock(&s->lock);
	if (tx_begin(s) != 0) {
		db_err(s, "cannot add agent", err, errlen);
		r = STINT_STORE_ERROR;
		goto out;
	}
	r = agent_add_locked(s, a, err, errlen);
	row.id = sqlite3_last_insert_rowid(s->db);
	if (r == STINT_STORE_OK && tx_commit(s) != 0) {
		snprintf(err, errlen, "%s: cannot commit agent '%s'", s->path,
			 a->name);
		r = STINT_STORE_ERROR;
	}
	if (r != STINT_STORE_OK)
		tx_rollback(s);
	else if (s->idx.valid && idx_agent_put(&s->idx, &row) != 0)
		idx_invalidate(s, "out of memory adding an agent");
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
	st = stmt(s, S_AGENT_BY_NAME);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	r = agent_find(s, S_AGENT_BY_NAME, st, a);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_agent_for_peer(struct stint_store *s, uid_t uid, gid_t gid,
			   struct stint_agent *a)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = agent_for_peer_locked(s, uid, gid, a);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_agent_list(struct stint_store *s, struct stint_agent **out,
		       size_t *n)
{
	struct stint_agent *list = NULL, *grown;
	size_t count = 0, cap = 0;
	sqlite3_stmt *st;
	int rc, r = STINT_STORE_ERROR;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_AGENT_LIST);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(list, cap * sizeof(*list));
			if (grown == NULL)
				goto out;
			list = grown;
		}
		if (read_agent(st, &list[count]) != 0)
			goto out;
		count++;
	}
	if (rc != SQLITE_DONE) {
		db_log(s, "agent list");
		goto out;
	}
	*out = list;
	*n = count;
	list = NULL;
	r = STINT_STORE_OK;
out:
	stmt_done(st);
	pthread_mutex_unlock(&s->lock);
	free(list);
	return r;
}

/* Runs a statement with one text parameter (autocommit: done means
 * committed); NOT_FOUND when it changed no row. */
static int
exec_one_locked(struct stint_store *s, enum stmt_id id, const char *key,
		const char *what)
{
	sqlite3_stmt *st;
	int r;

	st = stmt(s, id);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_log(s, what);
		r = STINT_STORE_ERROR;
	} else {
		r = sqlite3_changes(s->db) > 0 ? STINT_STORE_OK
					       : STINT_STORE_NOT_FOUND;
	}
	stmt_done(st);
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
	sqlite3_stmt *st = stmt(s, S_AGENT_LIVE_IDS);
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
		if (copy_text(st, 0, (*ids)[*n], sizeof((*ids)[0])) != 0)
			break;
		(*n)++;
	}
	stmt_done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int
agent_remove_locked(struct stint_store *s, const struct stint_agent *a,
		    const char *reason, int64_t when)
{
	sqlite3_stmt *st = stmt(s, S_AGENT_LIVE_END);
	int rc;

	sqlite3_bind_int64(st, 1, a->id);
	sqlite3_bind_text(st, 2, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, when);
	sqlite3_bind_text(st, 4, reason != NULL ? reason : "", -1,
			  SQLITE_STATIC);
	rc = sqlite3_step(st);
	stmt_done(st);
	if (rc != SQLITE_DONE)
		return -1;
	st = stmt(s, S_AGENT_DELETE_ID);
	sqlite3_bind_int64(st, 1, a->id);
	rc = sqlite3_step(st);
	stmt_done(st);
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
	if (tx_begin(s) != 0) {
		r = STINT_STORE_ERROR;
		goto out;
	}
	st = stmt(s, S_AGENT_BY_NAME);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	r = agent_find(s, S_AGENT_BY_NAME, st, &a);
	if (r != STINT_STORE_OK)
		goto out;
	if (agent_live_ids(s, &a, &ids, &count) != 0 ||
	    agent_remove_locked(s, &a, reason, when) != 0) {
		db_log(s, "agent remove");
		r = STINT_STORE_ERROR;
		goto out;
	}
	if (tx_commit(s) != 0) {
		r = STINT_STORE_ERROR;
		goto out;
	}
	/* Committed: the gate refuses the agent and its tasks from now on.
	 * A pending end has landed with them and was not ended now. */
	idx_agent_del(&s->idx, name);
	for (i = 0; i < count; i++) {
		idx_task_del(&s->idx, ids[i]);
		if ((tb = tomb_find(s, ids[i])) != NULL) {
			tomb_drop(s, tb);
			continue;
		}
		memmove(ids[kept++], ids[i], sizeof(ids[0]));
	}
	*ended = ids;
	*n = kept;
	ids = NULL;
out:
	tx_rollback(s);
	pthread_mutex_unlock(&s->lock);
	free(ids);
	return r;
}

/* ---- tasks ------------------------------------------------------------- */

int
stint_store_task_insert(struct stint_store *s, const struct stint_task *t,
			char *err, size_t errlen)
{
	char mechs[MECHS_TEXT_MAX];
	const char *state = state_str(t->state);
	sqlite3_stmt *st;
	int rc, r = STINT_STORE_OK;

	if (t->id[0] == '\0' || t->agent[0] == '\0' || state == NULL ||
	    mechs_format(t->mechs, t->n_mechs, mechs, sizeof(mechs)) != 0 ||
	    t->max_sigs > INT64_MAX || t->used_sigs > INT64_MAX) {
		snprintf(err, errlen, "invalid task record");
		return STINT_STORE_ERROR;
	}
	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_TASK_INSERT);
	sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, t->agent, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, t->key_type);
	sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, t->created);
	sqlite3_bind_int64(st, 6, t->not_after);
	sqlite3_bind_int64(st, 7, t->ended);
	sqlite3_bind_text(st, 8, t->reason, -1, SQLITE_STATIC);
	bind_u64(st, 9, t->max_sigs);
	bind_u64(st, 10, t->used_sigs);
	sqlite3_bind_text(st, 11, t->intent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, mechs, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 13, t->key_destroyed ? 1 : 0);
	bind_blob(st, 14, &t->pub.spki);
	bind_blob(st, 15, &t->pub.ec_params);
	bind_blob(st, 16, &t->pub.ec_point);
	bind_blob(st, 17, &t->pub.modulus);
	bind_blob(st, 18, &t->pub.exponent);
	bind_blob(st, 19, &t->cert);
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
		db_err(s, "cannot store task", err, errlen);
		r = STINT_STORE_ERROR;
	}
	stmt_done(st);
	/* Not indexed for lack of memory: the gate asks SQLite for it. */
	if (r == STINT_STORE_OK && s->idx.valid &&
	    idx_task_put(&s->idx, t) != 0)
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
		idx_task_del(&s->idx, id);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int
task_get_locked(struct stint_store *s, enum stmt_id id, const char *task_id,
		struct stint_task *t)
{
	sqlite3_stmt *st = stmt(s, id);
	int rc, r;

	memset(t, 0, sizeof(*t));
	sqlite3_bind_text(st, 1, task_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = read_task(st, t, id == S_TASK_GET) == 0 ? STINT_STORE_OK
							    : STINT_STORE_ERROR;
		if (r == STINT_STORE_OK) {
			t->used_sigs += pending_get(s, t->id);
			tomb_apply(s, t);
		}
	} else if (rc == SQLITE_DONE)
		r = STINT_STORE_NOT_FOUND;
	else
		r = STINT_STORE_ERROR;
	if (r == STINT_STORE_ERROR)
		db_log(s, "task lookup");
	stmt_done(st);
	return r;
}

int
stint_store_task_get(struct stint_store *s, const char *id,
		     struct stint_task *t)
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = task_get_locked(s, S_TASK_GET, id, t);
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
	st = stmt(s, S_TASK_LIST);
	sqlite3_bind_text(st, 1, cursor != NULL ? cursor : "", -1,
			  SQLITE_STATIC);
	if (agent != NULL)
		sqlite3_bind_text(st, 2, agent, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, live_only ? 1 : 0);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)limit);
	while (count < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (read_task(st, &list[count], true) != 0)
			goto out;
		list[count].used_sigs += pending_get(s, list[count].id);
		tomb_apply(s, &list[count]);
		if (live_only && list[count].state != STINT_TASK_LIVE) {
			stint_task_clear(&list[count]);
			continue;
		}
		count++;
	}
	if (count < limit && rc != SQLITE_DONE) {
		db_log(s, "task list");
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
	stmt_done(st);
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

	r = task_get_locked(s, S_TASK_GATE, id, &t);
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
	idx_task_del(&s->idx, id);
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
	st = stmt(s, S_TASK_END);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, state_str(state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, when);
	sqlite3_bind_text(st, 4, reason != NULL ? reason : "", -1,
			  SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_log(s, "task end");
		stmt_done(st);
		r = end_pending_locked(s, id, state, reason, when);
	} else {
		/* Only a live task changes: ending twice is NOT_FOUND. */
		r = sqlite3_changes(s->db) > 0 ? STINT_STORE_OK
					       : STINT_STORE_NOT_FOUND;
		stmt_done(st);
		/* Committed (autocommit): the gate refuses it from now on.
		 * Not live either way, so it has no entry. */
		idx_task_del(&s->idx, id);
		if ((tb = tomb_find(s, id)) != NULL) {
			tomb_drop(s, tb); /* it was ended already */
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

	if (tx_begin(s) != 0)
		return -1;
	st = stmt(s, S_TASK_END);
	sqlite3_bind_text(st, 1, tb->e.id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, state_str((enum stint_task_state)tb->e.state),
			  -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, tb->e.when);
	sqlite3_bind_text(st, 4, tb->e.reason, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	stmt_done(st);
	if (rc == SQLITE_DONE && tb->key_destroyed) {
		st = stmt(s, S_TASK_KEY_DESTROYED);
		sqlite3_bind_text(st, 1, tb->e.id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		stmt_done(st);
	}
	if (rc != SQLITE_DONE) {
		db_log(s, "pending task end");
		tx_rollback(s);
		return -1;
	}
	if (tx_commit(s) != 0)
		return -1;
	log_info("%s: the end of task %s is now recorded", s->path, tb->e.id);
	tomb_drop(s, tb);
	return 0;
}

static void
tombs_land(struct stint_store *s)
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
	tombs_land(s);
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
	st = stmt(s, S_AGENT_TASKS_END);
	sqlite3_bind_text(st, 1, agent, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, when);
	sqlite3_bind_text(st, 3, reason != NULL ? reason : "", -1,
			  SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_log(s, "agent tasks end");
		r = STINT_STORE_ERROR;
	} else {
		idx_tasks_del_agent(&s->idx, agent);
	}
	stmt_done(st);
	pthread_mutex_unlock(&s->lock);
	return r;
}

#define GATE_NEEDS_WRITE 1
#define GATE_MISS        2

/*
 * One pass of the SIGN gate inside one transaction. A read transaction
 * suffices unless the task has a budget and the policy allows: then
 * GATE_NEEDS_WRITE, and the caller runs it again under BEGIN IMMEDIATE so
 * that the budget check and the increment cannot race with another SIGN or
 * with task end, and the increment is committed before anything is signed.
 */
static int
gate_once(struct stint_store *s, bool write, uid_t uid, gid_t gid,
	  const char *task_id, uint64_t mech, int64_t now,
	  struct stint_agent *agent, struct stint_task *task, int *verdict,
	  const char **reason)
{
	struct task_entry *e;
	sqlite3_stmt *st;
	int ra, rt;

	if (run(s, write ? S_BEGIN : S_BEGIN_READ) != 0) {
		db_log(s, "begin");
		return -1;
	}
	ra = agent_for_peer_locked(s, uid, gid, agent);
	if (ra == STINT_STORE_ERROR)
		goto fail;
	if (ra != STINT_STORE_OK)
		memset(agent, 0, sizeof(*agent));
	rt = task_id != NULL ? task_get_locked(s, S_TASK_GATE, task_id, task)
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
	*verdict = stint_policy_sign(ra == STINT_STORE_OK ? agent : NULL,
				     rt == STINT_STORE_OK ? task : NULL, mech,
				     now, reason);
	if (*verdict == STINT_OK && task->max_sigs != 0) {
		if (!write) {
			tx_rollback(s);
			return GATE_NEEDS_WRITE;
		}
		st = stmt(s, S_TASK_USE);
		sqlite3_bind_text(st, 1, task->id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE ||
		    sqlite3_changes(s->db) != 1) {
			stmt_done(st);
			db_log(s, "signature count");
			goto fail;
		}
		stmt_done(st);
		task->used_sigs++;
	} else if (*verdict == STINT_OK) {
		/* No budget: counted in memory, written within a second. */
		if (pending_add(s, task->id) != 0) {
			log_err("out of memory counting signatures");
			goto fail;
		}
		task->used_sigs++;
	}
	if (tx_commit(s) != 0)
		return -1;
	/* Committed: an indexed task's count follows (a budgeted one must,
	 * or the index would allow past the budget). */
	if (*verdict == STINT_OK &&
	    (e = idx_task_find(&s->idx, task->id)) != NULL)
		e->used_sigs = task->used_sigs;
	return 0;
fail:
	tx_rollback(s);
	return -1;
}

/* The gate against the database alone, as it ran before the index. */
static int
gate_sql(struct stint_store *s, uid_t uid, gid_t gid, const char *task_id,
	 uint64_t mech, int64_t now, struct stint_agent *agent,
	 struct stint_task *task, int *verdict, const char **reason)
{
	int r;

	r = gate_once(s, false, uid, gid, task_id, mech, now, agent, task,
		      verdict, reason);
	if (r == GATE_NEEDS_WRITE)
		r = gate_once(s, true, uid, gid, task_id, mech, now, agent,
			      task, verdict, reason);
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
gate_fast(struct stint_store *s, uid_t uid, gid_t gid, const char *task_id,
	  uint64_t mech, int64_t now, struct stint_agent *agent,
	  struct stint_task *task, int *verdict, const char **reason)
{
	const struct stint_agent *a = idx_agent_for_peer(&s->idx, uid, gid);
	struct task_entry *e = idx_task_find(&s->idx, task_id);

	/* Started for another agent row of the same name: SQLite decides. */
	if (a != NULL && e != NULL && e->agent_id != 0 &&
	    e->agent_id != a->id && strcmp(e->agent, a->name) == 0)
		e = NULL;
	if (a != NULL)
		*agent = *a;
	if (e != NULL)
		task_from_entry(e, task);
	else if (a != NULL && task_id != NULL)
		return GATE_MISS;
	*verdict = stint_policy_sign(a, e != NULL ? task : NULL, mech, now,
				     reason);
	if (*verdict != STINT_OK)
		return 0;
	if (e->max_sigs != 0)
		return GATE_NEEDS_WRITE;
	/* No budget: counted in memory, written within a second. */
	if (pending_add(s, e->id) != 0) {
		log_err("out of memory counting signatures");
		return -1;
	}
	e->used_sigs++;
	task->used_sigs = e->used_sigs;
	return 0;
}

/* A budgeted task the index allows: the committed write transaction
 * decides, and must agree with the index. */
static int
gate_budget(struct stint_store *s, uid_t uid, gid_t gid, const char *task_id,
	    uint64_t mech, int64_t now, struct stint_agent *agent,
	    struct stint_task *task, int *verdict, const char **reason)
{
	int r;

	r = gate_once(s, true, uid, gid, task_id, mech, now, agent, task,
		      verdict, reason);
	if (r == 0 && *verdict != STINT_OK) {
		log_err("%s: gate index allowed task %s, the database refuses "
			"(%s)",
			s->path, task_id, *reason);
		idx_invalidate(s, "out of step with the database");
	}
	return r;
}

int
stint_store_sign_gate(struct stint_store *s, uid_t uid, gid_t gid,
		      const char *task_id, uint64_t mech, int64_t now,
		      struct stint_agent *agent, struct stint_task *task,
		      int *verdict, const char **reason)
{
	int r;

	memset(agent, 0, sizeof(*agent));
	memset(task, 0, sizeof(*task));
	pthread_mutex_lock(&s->lock);
	/* After a failed rebuild, retry once a second, not per signature. */
	if (!s->idx.valid && !s->idx_off && now >= s->idx_retry_at &&
	    idx_rebuild(s) != 0)
		s->idx_retry_at = now + 1;
	r = s->idx.valid ? gate_fast(s, uid, gid, task_id, mech, now, agent,
				     task, verdict, reason)
			 : GATE_MISS;
	if (r == 0)
		s->gates_fast++;
	else if (r > 0)
		s->gates_sql++;
	if (r == GATE_MISS)
		r = gate_sql(s, uid, gid, task_id, mech, now, agent, task,
			     verdict, reason);
	else if (r == GATE_NEEDS_WRITE)
		r = gate_budget(s, uid, gid, task_id, mech, now, agent, task,
				verdict, reason);
	if (r != 0) {
		/* Nothing was counted, so nothing may be signed. */
		*verdict = STINT_E_INTERNAL;
		*reason = "state database failure";
	} else if (now >= s->flush_at) {
		if (pending_flush(s) == 0)
			s->flush_at = now + 1;
	}
	pthread_mutex_unlock(&s->lock);
	return r == 0 ? STINT_STORE_OK : STINT_STORE_ERROR;
}

int
stint_store_tasks_due(struct stint_store *s, int64_t now,
		      char (**ids)[STINT_TASK_ID_MAX + 1], size_t *n)
{
	char(*list)[STINT_TASK_ID_MAX + 1] = NULL;
	char(*grown)[STINT_TASK_ID_MAX + 1];
	size_t count = 0, cap = 0;
	sqlite3_stmt *st;
	int rc, r = STINT_STORE_ERROR;

	*ids = NULL;
	*n = 0;
	pthread_mutex_lock(&s->lock);
	(void)pending_flush(s); /* the reaper's pass doubles as the writer */
	st = stmt(s, S_TASKS_DUE);
	sqlite3_bind_int64(st, 1, now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(list, cap * sizeof(*list));
			if (grown == NULL)
				goto out;
			list = grown;
		}
		if (copy_text(st, 0, list[count], sizeof(list[count])) != 0)
			goto out;
		count++;
	}
	if (rc != SQLITE_DONE) {
		db_log(s, "due tasks");
		goto out;
	}
	*ids = list;
	*n = count;
	list = NULL;
	r = STINT_STORE_OK;
out:
	stmt_done(st);
	pthread_mutex_unlock(&s->lock);
	free(list);
	return r;
}

int
stint_store_task_key_destroyed(struct stint_store *s, const char *id)
{
	struct task_entry *e;
	int r;

	pthread_mutex_lock(&s->lock);
	r = exec_one_locked(s, S_TASK_KEY_DESTROYED, id, "key destroyed");
	if (tomb_find(s, id) != NULL)
		tomb_find(s, id)->key_destroyed = true;
	/* The policy does not look at it; kept so the entry stays equal to
	 * its row. */
	if (r == STINT_STORE_OK && (e = idx_task_find(&s->idx, id)) != NULL)
		e->key_destroyed = true;
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_count(struct stint_store *s, size_t *agents, size_t *live_tasks,
		  size_t *all_tasks)
{
	sqlite3_stmt *st;
	int r = STINT_STORE_ERROR;

	pthread_mutex_lock(&s->lock);
	st = stmt(s, S_COUNT_AGENTS);
	if (sqlite3_step(st) != SQLITE_ROW) {
		stmt_done(st);
		goto out;
	}
	if (agents != NULL)
		*agents = (size_t)sqlite3_column_int64(st, 0);
	stmt_done(st);
	st = stmt(s, S_COUNT_TASKS);
	if (sqlite3_step(st) != SQLITE_ROW) {
		stmt_done(st);
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
	stmt_done(st);
	r = STINT_STORE_OK;
out:
	if (r != STINT_STORE_OK)
		db_log(s, "count");
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
stint_store_gate_index(struct stint_store *s, bool on)
{
	int r = STINT_STORE_OK;

	pthread_mutex_lock(&s->lock);
	s->idx_off = !on;
	if (!on)
		idx_free(&s->idx);
	else if (idx_rebuild(s) != 0)
		r = STINT_STORE_ERROR;
	pthread_mutex_unlock(&s->lock);
	return r;
}

void
stint_store_gate_stats(struct stint_store *s, struct stint_gate_stats *st)
{
	pthread_mutex_lock(&s->lock);
	st->index_valid = s->idx.valid;
	st->agents = s->idx.n_agents;
	st->tasks = s->idx.n_tasks;
	st->fast = s->gates_fast;
	st->sql = s->gates_sql;
	pthread_mutex_unlock(&s->lock);
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
		db_log(s, "prune: prepare");
		goto out;
	}
	if (tx_begin(s) != 0)
		goto out;
	sqlite3_bind_int64(sel, 1, before);
	sqlite3_bind_int(sel, 2, PRUNE_BATCH);
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		if (copy_text(sel, 0, ids[*n], sizeof(ids[0])) != 0)
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
		db_log(s, "prune");
		tx_rollback(s);
		*n = 0;
		goto out;
	}
	if (tx_commit(s) != 0) {
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
		db_log(s, "audit head");
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
		db_log(s, "audit head");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return r;
}
