/*
 * The store's SQLite layer: schema and migrations, the prepared
 * statements, transactions and row codecs.
 *
 * Schema: versioned with PRAGMA user_version; migrations[v] takes the
 * schema from version v to v + 1, all in one transaction.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "attest/store_int.h"
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
	/* 2 → 3 (oper): operators, uids that may act for named agents on
	 * admin.sock (agents: comma-separated names; max_ttl 0: none). */
	"CREATE TABLE operators ("
	" name TEXT PRIMARY KEY NOT NULL,"
	" uid INTEGER UNIQUE NOT NULL,"
	" agents TEXT NOT NULL,"
	" max_ttl INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL);",
	/* 3 → 4 (ident): agent selectors (docs/identity.md); '' is unset */
	"ALTER TABLE agents ADD COLUMN exe TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE agents ADD COLUMN exe_sha256 TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE agents ADD COLUMN cgroup TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE agents ADD COLUMN unit TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE agents ADD COLUMN lsm_label TEXT NOT NULL DEFAULT '';",
	/* 4 → 5 (bind): what a task is bound to (a process by pid and start
	 * time, or a cgroup; owned: stintd made the cgroup for stint run) */
	"ALTER TABLE tasks ADD COLUMN bind_kind INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE tasks ADD COLUMN bind_pid INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE tasks ADD COLUMN bind_start INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE tasks ADD COLUMN bind_cgroup TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE tasks ADD COLUMN bind_owned INTEGER NOT NULL DEFAULT 0;",
	/* 5 → 6 (aud): audiences, comma-separated names ('' none): what an
	 * agent may ever authenticate to, and what each task may */
	("ALTER TABLE agents ADD COLUMN audiences TEXT NOT NULL DEFAULT '';"
	 "ALTER TABLE tasks ADD COLUMN audiences TEXT NOT NULL DEFAULT '';"),
	/* 6 → 7 (prov): where an agent was declared: '' the CLI, else the
	 * path of its agents.d file (reconciled on start and SIGHUP) */
	"ALTER TABLE agents ADD COLUMN source TEXT NOT NULL DEFAULT '';",
	/* 7 → 8 (deleg): delegation. Agents: whom they may delegate to
	 * (names joined by commas) and how deep; tasks: their tree (parent,
	 * root, depth, the agents' path) and the budget reserved from the
	 * parent. A task started before has no parent and is its own root. */
	("ALTER TABLE agents ADD COLUMN delegate_to TEXT NOT NULL DEFAULT '';"
	 "ALTER TABLE agents ADD COLUMN max_depth INTEGER NOT NULL DEFAULT 0;"
	 "ALTER TABLE tasks ADD COLUMN parent_id TEXT NOT NULL DEFAULT '';"
	 "ALTER TABLE tasks ADD COLUMN root_id TEXT NOT NULL DEFAULT '';"
	 "ALTER TABLE tasks ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;"
	 "ALTER TABLE tasks ADD COLUMN path TEXT NOT NULL DEFAULT '';"
	 "ALTER TABLE tasks ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0;"
	 "UPDATE tasks SET root_id = id, path = agent;"
	 "CREATE INDEX tasks_parent ON tasks(parent_id);"
	 "CREATE INDEX tasks_root ON tasks(root_id);"),
	/* 8 → 9 (prov): where an operator was declared: '' the CLI, else the
	 * path of its operators.d file */
	"ALTER TABLE operators ADD COLUMN source TEXT NOT NULL DEFAULT '';",
	/* 9 → 10 (storeidx): partial indexes, so that what runs every
	 * reaper pass and every listing reads what it returns, not every
	 * task (docs/performance.md, "Token size"): ended tasks whose key
	 * is not yet destroyed, live tasks with a parent (the orphan
	 * check), live tasks in id order, by agent and overall. */
	("CREATE INDEX tasks_key_pending ON tasks(id)"
	 " WHERE state <> 'live' AND key_destroyed = 0;"
	 "CREATE INDEX tasks_live_children ON tasks(parent_id, id)"
	 " WHERE state = 'live' AND parent_id <> '';"
	 "CREATE INDEX tasks_live_agent ON tasks(agent, id)"
	 " WHERE state = 'live';"
	 "CREATE INDEX tasks_live_id ON tasks(id) WHERE state = 'live';"),
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* Columns 7-11: the selectors (ident); 12 the audiences (aud); 13 the
 * source (prov); 14-15 delegation (deleg). */
#define AGENT_COLS                                                             \
	"name, uid, gid, max_ttl, mechs, created, id, exe, exe_sha256, "       \
	"cgroup, unit, lsm_label, audiences, source, delegate_to, max_depth"
#define TASK_COLS                                                              \
	"id, agent, key_type, state, created, not_after, ended, reason, "      \
	"max_sigs, used_sigs, intent, mechs, key_destroyed, agent_id, "        \
	"bind_kind, bind_pid, bind_start, bind_cgroup, bind_owned, "           \
	"audiences, "                                                          \
	"parent_id, root_id, depth, path, reserved"
/* Columns of TASK_COLS: the blobs follow at this index. */
#define TASK_NCOLS 25
/* Where an agent's live tasks are: by id, or by name for a task stored
 * without one (?1 the agent id, ?2 its name). */
#define AGENT_LIVE_TASKS                                                       \
	" WHERE state = 'live' AND (agent_id = ?1 OR"                          \
	" (agent_id IS NULL AND agent = ?2))"
#define OPERATOR_COLS  "name, uid, agents, max_ttl, created, source" /* prov */
#define TASK_BLOB_COLS "spki, ec_params, ec_point, modulus, exponent, cert"

static const char *const stmt_sql[S_N] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_BEGIN_READ] = "BEGIN",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_AGENT_INSERT] = "INSERT INTO agents (name, uid, gid, max_ttl, mechs,"
			   " created, exe, exe_sha256, cgroup, unit, lsm_label,"
			   " audiences, source, delegate_to, max_depth)"
			   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
			   " ?11, ?12, ?13, ?14, ?15)",
	/* prov: an agents.d file changed the agent; its id and tasks stay */
	[S_AGENT_UPDATE] =
		"UPDATE agents SET uid = ?2, gid = ?3, max_ttl = ?4,"
		" mechs = ?5, exe = ?7, exe_sha256 = ?8, cgroup = ?9,"
		" unit = ?10, lsm_label = ?11, audiences = ?12, source = ?13,"
		" delegate_to = ?14, max_depth = ?15"
		" WHERE name = ?1",
	[S_AGENT_BY_NAME] = "SELECT " AGENT_COLS " FROM agents WHERE name = ?1",
	/* ident: several agents may share a uid when their gids or
	 * selectors tell them apart; the caller matches the selectors in
	 * name order, and a peer that matches more than one gets the lowest
	 * name, deterministically. */
	[S_AGENT_FOR_PEER] = "SELECT " AGENT_COLS " FROM agents"
			     " WHERE uid = ?1 AND (gid IS NULL OR gid = ?2)"
			     " ORDER BY name",
	/* ident: the agents a new one of uid ?1 could overlap with. */
	[S_AGENT_UID_CLASH] = "SELECT " AGENT_COLS " FROM agents"
			      " WHERE uid = ?1 ORDER BY name",
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
			  " ?21, ?22, ?23, ?24, ?25," /* bind */
			  " ?26,"                     /* aud */
			  /* deleg: a child's root, depth and path follow from
			   * its parent's row; a task without one is a root */
			  " ?27, CASE WHEN ?27 = '' THEN ?1 ELSE (SELECT"
			  " root_id FROM tasks WHERE id = ?27) END,"
			  " CASE WHEN ?27 = '' THEN 0 ELSE (SELECT depth + 1"
			  " FROM tasks WHERE id = ?27) END,"
			  " CASE WHEN ?27 = '' THEN ?2 ELSE (SELECT path ||"
			  " ',' || ?2 FROM tasks WHERE id = ?27) END, ?31,"
			  " ?14, ?15, ?16, ?17, ?18, ?19)",
	[S_TASK_GET] = "SELECT " TASK_COLS ", " TASK_BLOB_COLS
		       " FROM tasks WHERE id = ?1",
	[S_TASK_GATE] = "SELECT " TASK_COLS " FROM tasks WHERE id = ?1",
	/* budget: ?2 is 1, or a block reserved ahead (budget.h) */
	[S_TASK_USE] = "UPDATE tasks SET used_sigs = used_sigs + ?2"
		       " WHERE id = ?1 AND state = 'live'",
	[S_TASK_ADD_SIGS] = "UPDATE tasks SET used_sigs = used_sigs + ?2"
			    " WHERE id = ?1",
	[S_TASK_LIST] = "SELECT " TASK_COLS ", " TASK_BLOB_COLS " FROM tasks"
			" WHERE id > ?1 AND (?2 IS NULL OR agent = ?2)"
			" AND (?3 = 0 OR (state = 'live' AND not_after > ?4))"
			" ORDER BY id LIMIT ?5",
	/* storeidx: S_TASK_LIST of live tasks only, all agents or ?2's,
	 * through the partial indexes (the planner would otherwise read
	 * every live task and sort them for each page) */
	[S_TASK_LIST_LIVE] = "SELECT " TASK_COLS ", " TASK_BLOB_COLS
			     " FROM tasks INDEXED BY tasks_live_id"
			     " WHERE state = 'live' AND id > ?1"
			     " AND not_after > ?4 ORDER BY id LIMIT ?5",
	[S_TASK_LIST_LIVE_AGENT] = "SELECT " TASK_COLS ", " TASK_BLOB_COLS
				   " FROM tasks INDEXED BY tasks_live_agent"
				   " WHERE state = 'live' AND agent = ?2"
				   " AND id > ?1 AND not_after > ?4"
				   " ORDER BY id LIMIT ?5",
	[S_TASK_END] = "UPDATE tasks SET state = ?2, ended = ?3, reason = ?4"
		       " WHERE id = ?1 AND state = 'live'",
	[S_AGENT_TASKS_END] =
		"UPDATE tasks SET state = 'ended', ended = ?2,"
		" reason = ?3 WHERE agent = ?1 AND state = 'live'",
	/* storeidx: two indexed halves (an OR with state <> 'live' was a
	 * scan of every task, each reaper pass) */
	[S_TASKS_DUE] = "SELECT id FROM tasks"
			" WHERE state = 'live' AND not_after <= ?1"
			" UNION ALL SELECT id FROM tasks"
			" INDEXED BY tasks_key_pending"
			" WHERE state <> 'live' AND key_destroyed = 0"
			" ORDER BY id",
	[S_TASK_KEY_DESTROYED] = "UPDATE tasks SET key_destroyed = 1"
				 " WHERE id = ?1",
	[S_TASK_DELETE] = "DELETE FROM tasks WHERE id = ?1",
	[S_COUNT_AGENTS] = "SELECT count(*) FROM agents",
	[S_COUNT_TASKS] = "SELECT count(*), coalesce(sum(state = 'live'), 0)"
			  " FROM tasks",
	[S_TASKS_LIVE] = "SELECT " TASK_COLS " FROM tasks WHERE state = 'live'",
	/* operators (oper) */
	[S_OPERATOR_INSERT] = "INSERT INTO operators (name, uid, agents,"
			      " max_ttl, created, source)"
			      " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	/* prov: an operators.d file changed it */
	[S_OPERATOR_UPDATE] = "UPDATE operators SET uid = ?2, agents = ?3,"
			      " max_ttl = ?4, source = ?6 WHERE name = ?1",
	[S_OPERATOR_BY_NAME] = "SELECT " OPERATOR_COLS " FROM operators"
			       " WHERE name = ?1",
	[S_OPERATOR_BY_UID] = "SELECT " OPERATOR_COLS " FROM operators"
			      " WHERE uid = ?1",
	[S_OPERATOR_LIST] = "SELECT " OPERATOR_COLS " FROM operators"
			    " ORDER BY name",
	[S_OPERATOR_DELETE] = "DELETE FROM operators WHERE name = ?1",
	/* deleg: a child's budget comes out of its live parent's (?2 may
	 * be 0: the parent only has to be live, before ?3); budget: ?4 is
	 * the parent's unused reservation (budget.h), given back in the
	 * same change, so the check is against its actual count */
	[S_TASK_RESERVE] =
		"UPDATE tasks SET used_sigs = used_sigs - ?4 + ?2"
		" WHERE id = ?1 AND state = 'live' AND not_after > ?3"
		" AND used_sigs >= ?4"
		" AND (max_sigs = 0 OR used_sigs - ?4 + ?2 <= max_sigs)",
	/* deleg: an ended child ?1 gives what it did not use back to its
	 * parent, once (its reserved becomes 0) */
	[S_TASK_GIVE_BACK] =
		"UPDATE tasks SET used_sigs = max(0, used_sigs - (SELECT"
		" max(0, c.reserved - c.used_sigs) FROM tasks c WHERE c.id = "
		"?1))"
		" WHERE id = (SELECT parent_id FROM tasks WHERE id = ?1"
		" AND reserved > 0)",
	[S_TASK_RESERVED_CLEAR] = "UPDATE tasks SET reserved = 0 WHERE id = ?1",
	/* deleg: every live descendant of ?1, deepest first */
	[S_TASK_SUBTREE] =
		"WITH RECURSIVE sub(id) AS (SELECT id FROM tasks"
		" WHERE parent_id = ?1 AND parent_id <> ''"
		" UNION SELECT t.id FROM tasks t JOIN sub ON t.parent_id = "
		"sub.id)"
		" SELECT t.id FROM tasks t JOIN sub ON t.id = sub.id"
		" WHERE t.state = 'live' ORDER BY t.depth DESC, t.id",
	/* deleg: live tasks whose parent is not live (a crash, or a
	 * state.db that could not commit a cascade); storeidx: read from
	 * the index of live tasks that have a parent, not every live task */
	[S_TASK_ORPHANS] =
		"SELECT c.id FROM tasks c INDEXED BY tasks_live_children"
		" WHERE c.state = 'live'"
		" AND c.parent_id <> '' AND NOT EXISTS (SELECT 1 FROM tasks p"
		" WHERE p.id = c.parent_id AND p.state = 'live') ORDER BY c.id",
	/* deleg: ?1 and its descendants (any state), shallowest first */
	[S_TASK_TREE] = "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION SELECT t.id"
			" FROM tasks t JOIN sub ON t.parent_id = sub.id"
			" WHERE t.parent_id <> '')"
			" SELECT " TASK_COLS ", " TASK_BLOB_COLS " FROM tasks"
			" WHERE id IN (SELECT id FROM sub) ORDER BY depth, id",
	/* budget: a live task's unused reservation ?2 given back, never
	 * below its actual count ?3 */
	[S_TASK_UNRESERVE] = "UPDATE tasks SET used_sigs = max(?3, used_sigs"
			     " - ?2) WHERE id = ?1 AND state = 'live'",
};

void
store_db_log(struct stint_store *s, const char *what)
{
	log_err("%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

void
store_db_err(struct stint_store *s, const char *what, char *err, size_t errlen)
{
	if (err != NULL)
		snprintf(err, errlen, "%s: %s: %s", s->path, what,
			 sqlite3_errmsg(s->db));
	else
		store_db_log(s, what);
}

/* A cached statement, ready to bind. */
sqlite3_stmt *
store_stmt(struct stint_store *s, enum stmt_id id)
{
	sqlite3_reset(s->st[id]);
	sqlite3_clear_bindings(s->st[id]);
	return s->st[id];
}

void
store_stmt_done(sqlite3_stmt *st)
{
	/* Reset now so that a read statement does not hold its snapshot
	 * (and block WAL checkpoints) until its next use. */
	sqlite3_reset(st);
}

int
store_run(struct stint_store *s, enum stmt_id id)
{
	sqlite3_stmt *st = store_stmt(s, id);
	int rc = sqlite3_step(st);

	store_stmt_done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
store_tx_begin(struct stint_store *s)
{
	if (store_run(s, S_BEGIN) != 0) {
		store_db_log(s, "begin");
		return -1;
	}
	return 0;
}

int
store_tx_commit(struct stint_store *s)
{
	if (store_run(s, S_COMMIT) != 0) {
		store_db_log(s, "commit");
		store_run(s, S_ROLLBACK);
		return -1;
	}
	return 0;
}

void
store_tx_rollback(struct stint_store *s)
{
	if (sqlite3_get_autocommit(s->db) == 0)
		store_run(s, S_ROLLBACK);
}

/* SQLite integers are signed 64-bit: refuse what would wrap. */
int
store_bind_u64(sqlite3_stmt *st, int col, uint64_t v)
{
	if (v > INT64_MAX)
		return SQLITE_RANGE;
	return sqlite3_bind_int64(st, col, (sqlite3_int64)v);
}

int
store_bind_blob(sqlite3_stmt *st, int col, const struct stint_bytes *b)
{
	if (b->ptr == NULL || b->len == 0)
		return sqlite3_bind_null(st, col);
	return sqlite3_bind_blob64(st, col, b->ptr, b->len, SQLITE_STATIC);
}

/* Comma-separated decimal CKM_* numbers. */
int
store_mechs_format(const uint64_t *mechs, size_t n, char *buf, size_t cap)
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

int
store_rows(struct stint_store *s, sqlite3_stmt *st, size_t elem,
	   int (*read)(sqlite3_stmt *st, void *row), const char *what,
	   void **out, size_t *n)
{
	unsigned char *list = NULL, *grown;
	size_t count = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			if ((grown = realloc(list, cap * elem)) == NULL)
				goto fail;
			list = grown;
		}
		if (read(st, list + count * elem) != 0)
			goto fail;
		count++;
	}
	if (rc != SQLITE_DONE) {
		store_db_log(s, what);
		goto fail;
	}
	*out = list;
	*n = count;
	return STINT_STORE_OK;
fail:
	free(list);
	return STINT_STORE_ERROR;
}

int
store_copy_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
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

int
store_read_agent(sqlite3_stmt *st, struct stint_agent *a)
{
	memset(a, 0, sizeof(*a));
	if (store_copy_text(st, 0, a->name, sizeof(a->name)) != 0)
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
	if (store_copy_text(st, 7, a->sel.exe, sizeof(a->sel.exe)) != 0 ||
	    store_copy_text(st, 8, a->sel.exe_sha256,
			    sizeof(a->sel.exe_sha256)) != 0 ||
	    store_copy_text(st, 9, a->sel.cgroup, sizeof(a->sel.cgroup)) != 0 ||
	    store_copy_text(st, 10, a->sel.unit, sizeof(a->sel.unit)) != 0 ||
	    store_copy_text(st, 11, a->sel.lsm_label,
			    sizeof(a->sel.lsm_label)) != 0 ||
	    store_copy_text(st, 12, a->audiences, sizeof(a->audiences)) != 0 ||
	    store_copy_text(st, 13, a->source, sizeof(a->source)) != 0 ||
	    store_copy_text(st, 14, a->delegate_to, sizeof(a->delegate_to)) !=
		    0)
		return -1;
	a->max_depth = (uint32_t)sqlite3_column_int64(st, 15); /* deleg */
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

const char *
store_state_str(enum stint_task_state state)
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
int
store_read_task(sqlite3_stmt *st, struct stint_task *t, bool blobs)
{
	char state[16];

	memset(t, 0, sizeof(*t));
	if (store_copy_text(st, 0, t->id, sizeof(t->id)) != 0 ||
	    store_copy_text(st, 1, t->agent, sizeof(t->agent)) != 0 ||
	    store_copy_text(st, 3, state, sizeof(state)) != 0 ||
	    state_parse(state, &t->state) != 0 ||
	    store_copy_text(st, 7, t->reason, sizeof(t->reason)) != 0 ||
	    store_copy_text(st, 10, t->intent, sizeof(t->intent)) != 0 ||
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
	/* bind */
	t->bind.kind = (enum stint_bind_kind)sqlite3_column_int(st, 14);
	t->bind.pid = sqlite3_column_int64(st, 15);
	t->bind.start_time = (uint64_t)sqlite3_column_int64(st, 16);
	if (store_copy_text(st, 17, t->bind.cgroup, sizeof(t->bind.cgroup)) !=
	    0)
		goto fail;
	t->bind.owned = sqlite3_column_int(st, 18) != 0;
	if (store_copy_text(st, 19, t->audiences, sizeof(t->audiences)) != 0)
		goto fail; /* aud */
	if (store_copy_text(st, 20, t->parent_id, sizeof(t->parent_id)) != 0 ||
	    store_copy_text(st, 21, t->root_id, sizeof(t->root_id)) != 0 ||
	    store_copy_text(st, 23, t->path, sizeof(t->path)) != 0)
		goto fail; /* deleg */
	t->depth = (uint32_t)sqlite3_column_int64(st, 22);
	t->reserved = (uint64_t)sqlite3_column_int64(st, 24);
	if (!blobs)
		return 0;
	if (copy_blob(st, TASK_NCOLS + 0, &t->pub.spki) != 0 ||
	    copy_blob(st, TASK_NCOLS + 1, &t->pub.ec_params) != 0 ||
	    copy_blob(st, TASK_NCOLS + 2, &t->pub.ec_point) != 0 ||
	    copy_blob(st, TASK_NCOLS + 3, &t->pub.modulus) != 0 ||
	    copy_blob(st, TASK_NCOLS + 4, &t->pub.exponent) != 0 ||
	    copy_blob(st, TASK_NCOLS + 5, &t->cert) != 0)
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
		store_db_err(s, "cannot read the schema version", err, errlen);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		store_db_err(s, "cannot read the schema version", err, errlen);
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
int
store_prepare_file(const char *path, char *err, size_t errlen)
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

int
store_configure_db(struct stint_store *s, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const char *mode;
	int version, rc, i;

	sqlite3_extended_result_codes(s->db, 1);
	if (sqlite3_busy_timeout(s->db, 5000) != SQLITE_OK) {
		store_db_err(s, "cannot set busy timeout", err, errlen);
		return -1;
	}
	/* Refuse a newer schema before touching the file (WAL changes its
	 * header); migrate() checks again inside its transaction. */
	if (user_version(s, &version, err, errlen) != 0 ||
	    check_version(s, version, err, errlen) != 0)
		return -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st,
			       NULL) != SQLITE_OK) {
		store_db_err(s, "cannot set WAL mode", err, errlen);
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
			store_db_err(s, "cannot prepare statement", err,
				     errlen);
			return -1;
		}
	}
	return 0;
}
