/* The SQLite store: agents, tasks, the SIGN gate and its budget, schema
 * versioning. Each test gets a fresh database in its own temp dir. */

#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "tests/unit/store_fixture.h"

/* ---- agents ------------------------------------------------------------ */

static void
test_agent_crud(void **state)
{
	struct fixture *f = *state;
	struct stint_agent a, *list = NULL;
	size_t n = 0;

	add_agent(f, "payroll", 1001, 50);
	add_agent(f, "billing", 1000, -1);

	assert_int_equal(stint_store_agent_get(f->s, "billing", &a), 0);
	assert_string_equal(a.name, "billing");
	assert_int_equal(a.uid, 1000);
	assert_int_equal(a.gid, -1);
	assert_int_equal(a.max_ttl, 3600);
	assert_int_equal(a.n_mechs, 2);
	assert_int_equal(a.mechs[0], MECH_ECDSA);
	assert_int_equal(a.mechs[1], 0x1044);
	assert_int_equal(a.created, NOW - 100);
	assert_int_equal(stint_store_agent_get(f->s, "payroll", &a), 0);
	assert_int_equal(a.gid, 50);
	assert_int_equal(stint_store_agent_get(f->s, "nobody", &a),
			 STINT_STORE_NOT_FOUND);

	/* gid NULL matches any gid; a set gid must match. */
	assert_int_equal(stint_store_agent_for_peer(f->s, 1000, 4242, &a), 0);
	assert_string_equal(a.name, "billing");
	assert_int_equal(stint_store_agent_for_peer(f->s, 1001, 50, &a), 0);
	assert_string_equal(a.name, "payroll");
	assert_int_equal(stint_store_agent_for_peer(f->s, 1001, 51, &a),
			 STINT_STORE_NOT_FOUND);
	assert_int_equal(stint_store_agent_for_peer(f->s, 1002, 50, &a),
			 STINT_STORE_NOT_FOUND);

	/* Listed by name. */
	assert_int_equal(stint_store_agent_list(f->s, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "billing");
	assert_string_equal(list[1].name, "payroll");
	assert_int_equal(list[1].uid, 1001);
	free(list);

	assert_int_equal(stint_store_agent_remove(f->s, "billing"), 0);
	assert_int_equal(stint_store_agent_remove(f->s, "billing"),
			 STINT_STORE_NOT_FOUND);
	assert_int_equal(stint_store_agent_get(f->s, "billing", &a),
			 STINT_STORE_NOT_FOUND);
	assert_int_equal(stint_store_agent_for_peer(f->s, 1000, 4242, &a),
			 STINT_STORE_NOT_FOUND);
	assert_int_equal(stint_store_agent_list(f->s, &list, &n), 0);
	assert_int_equal(n, 1);
	free(list);

	/* The uid is free again. */
	add_agent(f, "billing2", 1000, -1);
}

static void
test_agent_duplicates(void **state)
{
	struct fixture *f = *state;
	struct stint_agent a;
	char err[256];

	add_agent(f, "x", 1000, -1);

	a = make_agent("x", 2000, -1);
	assert_int_equal(stint_store_agent_add(f->s, &a, err, sizeof(err)),
			 STINT_STORE_EXISTS);
	assert_non_null(strstr(err, "agent 'x' already exists"));

	a = make_agent("y", 1000, -1);
	assert_int_equal(stint_store_agent_add(f->s, &a, err, sizeof(err)),
			 STINT_STORE_EXISTS);
	assert_non_null(strstr(err, "uid 1000 already acts as agent 'x'"));
	/* A gid does not help when the existing agent takes any gid. */
	a = make_agent("y", 1000, 77);
	assert_int_equal(stint_store_agent_add(f->s, &a, err, sizeof(err)),
			 STINT_STORE_EXISTS);
	assert_non_null(strstr(err, "uid 1000 already acts as agent 'x'"));

	/* Same uid, distinct gids: two agents, each found by its gid. */
	add_agent(f, "g10", 3000, 10);
	add_agent(f, "g20", 3000, 20);
	a = make_agent("g10b", 3000, 10);
	assert_int_equal(stint_store_agent_add(f->s, &a, err, sizeof(err)),
			 STINT_STORE_EXISTS);
	assert_non_null(strstr(err, "uid 3000 already acts as agent 'g10'"));
	a = make_agent("gany", 3000, -1);
	assert_int_equal(stint_store_agent_add(f->s, &a, err, sizeof(err)),
			 STINT_STORE_EXISTS);
	assert_non_null(strstr(err, "uid 3000 already acts as agent 'g10'"));
	assert_int_equal(stint_store_agent_for_peer(f->s, 3000, 20, &a), 0);
	assert_string_equal(a.name, "g20");

	/* Nothing of the refused adds was stored. */
	assert_int_equal(stint_store_agent_get(f->s, "y", &a),
			 STINT_STORE_NOT_FOUND);
	assert_int_equal(stint_store_agent_get(f->s, "gany", &a),
			 STINT_STORE_NOT_FOUND);
}

/* Rows written behind the store's back (an older stintd, a hand edit)
 * may overlap: the lowest name wins, always. */
static void
test_agent_for_peer_deterministic(void **state)
{
	struct fixture *f = *state;
	struct stint_agent a;
	sqlite3 *db;

	stint_store_close(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db,
			     "INSERT INTO agents (name, uid, gid, max_ttl, "
			     "mechs, created) VALUES ('zeta', 5000, NULL, "
			     "60, '4161', 1);"
			     "INSERT INTO agents (name, uid, gid, max_ttl, "
			     "mechs, created) VALUES ('alpha', 5000, NULL, "
			     "60, '4161', 1);"
			     "INSERT INTO agents (name, uid, gid, max_ttl, "
			     "mechs, created) VALUES ('mid', 5000, 9, "
			     "60, '4161', 1);",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	reopen(f);
	assert_int_equal(stint_store_agent_for_peer(f->s, 5000, 9, &a), 0);
	assert_string_equal(a.name, "alpha");
	assert_int_equal(a.n_mechs, 1);
	assert_int_equal(a.mechs[0], 4161);
}

/* ---- tasks ------------------------------------------------------------- */

static void
test_task_insert_get(void **state)
{
	struct fixture *f = *state;
	struct stint_task t, in;
	uint8_t cert[] = {0x30, 0x82, 0x01, 0x00};
	char err[256];

	add_agent(f, "billing", 1000, -1);
	in = make_task("t-aaaa", "billing", 5);
	in.cert.ptr = cert;
	in.cert.len = sizeof(cert);
	assert_int_equal(stint_store_task_insert(f->s, &in, err, sizeof(err)),
			 0);
	assert_int_equal(stint_store_task_insert(f->s, &in, err, sizeof(err)),
			 STINT_STORE_EXISTS);
	assert_non_null(strstr(err, "t-aaaa"));

	assert_int_equal(stint_store_task_get(f->s, "t-aaaa", &t), 0);
	assert_string_equal(t.id, "t-aaaa");
	assert_string_equal(t.agent, "billing");
	assert_int_equal(t.key_type, STINT_KEY_EC_P256);
	assert_int_equal(t.state, STINT_TASK_LIVE);
	assert_int_equal(t.created, NOW - 10);
	assert_int_equal(t.not_after, NOW + 600);
	assert_int_equal(t.ended, 0);
	assert_int_equal(t.max_sigs, 5);
	assert_int_equal(t.used_sigs, 0);
	assert_string_equal(t.intent, "refund order 1234");
	assert_int_equal(t.n_mechs, 1);
	assert_int_equal(t.mechs[0], MECH_ECDSA);
	assert_false(t.key_destroyed);
	assert_int_equal(t.pub.spki.len, sizeof(spki_bytes));
	assert_memory_equal(t.pub.spki.ptr, spki_bytes, sizeof(spki_bytes));
	assert_int_equal(t.pub.ec_point.len, sizeof(point_bytes));
	assert_memory_equal(t.pub.ec_point.ptr, point_bytes,
			    sizeof(point_bytes));
	assert_int_equal(t.pub.ec_params.len, sizeof(params_bytes));
	assert_null(t.pub.modulus.ptr);
	assert_int_equal(t.pub.modulus.len, 0);
	assert_int_equal(t.cert.len, sizeof(cert));
	assert_memory_equal(t.cert.ptr, cert, sizeof(cert));
	stint_task_clear(&t);
	assert_null(t.pub.spki.ptr);
	assert_null(t.cert.ptr);

	assert_int_equal(stint_store_task_get(f->s, "t-none", &t),
			 STINT_STORE_NOT_FOUND);
}

static void
test_task_list_paging(void **state)
{
	struct fixture *f = *state;
	struct stint_task *list = NULL;
	size_t n = 0;
	const char *ids[] = {"t-05", "t-01", "t-04", "t-02", "t-03"};
	size_t i;

	for (i = 0; i < 5; i++)
		add_task(f, ids[i], i % 2 ? "b" : "a", 0);

	/* Ordered by id, two per page, continuing after the cursor. */
	assert_int_equal(
		stint_store_task_list(f->s, NULL, false, NOW, "", 2, &list, &n),
		0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, "t-01");
	assert_string_equal(list[1].id, "t-02");
	assert_int_equal(list[0].pub.spki.len, sizeof(spki_bytes));
	stint_store_task_list_free(list, n);
	assert_int_equal(stint_store_task_list(f->s, NULL, false, NOW, "t-02",
					       2, &list, &n),
			 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, "t-03");
	assert_string_equal(list[1].id, "t-04");
	stint_store_task_list_free(list, n);
	assert_int_equal(stint_store_task_list(f->s, NULL, false, NOW, "t-04",
					       2, &list, &n),
			 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].id, "t-05");
	stint_store_task_list_free(list, n);
	assert_int_equal(stint_store_task_list(f->s, NULL, false, NOW, "t-05",
					       2, &list, &n),
			 0);
	assert_int_equal(n, 0);
	stint_store_task_list_free(list, n);

	/* Agent filter: t-05, t-04, t-03 are a's (even index). */
	assert_int_equal(stint_store_task_list(f->s, "a", false, NOW, NULL, 10,
					       &list, &n),
			 0);
	assert_int_equal(n, 3);
	assert_string_equal(list[0].id, "t-03");
	assert_string_equal(list[2].id, "t-05");
	stint_store_task_list_free(list, n);

	/* live_only drops ended tasks and tasks past their deadline. */
	assert_int_equal(stint_store_task_end(f->s, "t-03", STINT_TASK_ENDED,
					      "done", NOW),
			 0);
	assert_int_equal(
		stint_store_task_list(f->s, "a", true, NOW, "", 10, &list, &n),
		0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, "t-04");
	stint_store_task_list_free(list, n);
	assert_int_equal(stint_store_task_list(f->s, NULL, true, NOW + 600, "",
					       10, &list, &n),
			 0);
	assert_int_equal(n, 0);
	stint_store_task_list_free(list, n);
	/* Without live_only the ended task is still listed. */
	assert_int_equal(stint_store_task_list(f->s, "a", false, NOW + 600, "",
					       10, &list, &n),
			 0);
	assert_int_equal(n, 3);
	assert_int_equal(list[0].state, STINT_TASK_ENDED);
	stint_store_task_list_free(list, n);
}

static void
test_task_end(void **state)
{
	struct fixture *f = *state;
	struct stint_task t;
	size_t agents, live, all;

	add_agent(f, "billing", 1000, -1);
	add_task(f, "t-1", "billing", 0);
	add_task(f, "t-2", "billing", 0);
	assert_int_equal(stint_store_count(f->s, &agents, &live, &all), 0);
	assert_int_equal(agents, 1);
	assert_int_equal(live, 2);
	assert_int_equal(all, 2);

	assert_int_equal(stint_store_task_end(f->s, "t-1", STINT_TASK_ENDED,
					      "operator", NOW + 5),
			 0);
	assert_int_equal(stint_store_task_end(f->s, "t-1", STINT_TASK_ENDED,
					      "again", NOW + 6),
			 STINT_STORE_NOT_FOUND);
	assert_int_equal(stint_store_task_end(f->s, "t-1", STINT_TASK_EXPIRED,
					      "deadline", NOW + 7),
			 STINT_STORE_NOT_FOUND);
	assert_int_equal(stint_store_task_end(f->s, "t-nope", STINT_TASK_ENDED,
					      "x", NOW),
			 STINT_STORE_NOT_FOUND);
	/* Ending into "live" is not an end. */
	assert_int_equal(
		stint_store_task_end(f->s, "t-2", STINT_TASK_LIVE, "x", NOW),
		STINT_STORE_ERROR);

	assert_int_equal(stint_store_task_get(f->s, "t-1", &t), 0);
	assert_int_equal(t.state, STINT_TASK_ENDED);
	assert_int_equal(t.ended, NOW + 5);
	assert_string_equal(t.reason, "operator");
	stint_task_clear(&t);

	assert_int_equal(stint_store_task_end(f->s, "t-2", STINT_TASK_EXPIRED,
					      "deadline", NOW + 600),
			 0);
	assert_int_equal(stint_store_task_get(f->s, "t-2", &t), 0);
	assert_int_equal(t.state, STINT_TASK_EXPIRED);
	stint_task_clear(&t);
	assert_int_equal(stint_store_count(f->s, &agents, &live, &all), 0);
	assert_int_equal(live, 0);
	assert_int_equal(all, 2);
}

static void
test_agent_removal_keeps_history(void **state)
{
	struct fixture *f = *state;
	struct stint_task t;

	add_agent(f, "billing", 1000, -1);
	add_agent(f, "other", 1001, -1);
	add_task(f, "t-1", "billing", 0);
	add_task(f, "t-2", "billing", 0);
	add_task(f, "t-3", "other", 0);
	assert_int_equal(stint_store_task_end(f->s, "t-2", STINT_TASK_ENDED,
					      "earlier", NOW),
			 0);
	assert_int_equal(stint_store_agent_tasks_end(f->s, "billing",
						     "agent removed", NOW + 1),
			 0);
	assert_int_equal(stint_store_agent_remove(f->s, "billing"), 0);

	assert_int_equal(stint_store_task_get(f->s, "t-1", &t), 0);
	assert_int_equal(t.state, STINT_TASK_ENDED);
	assert_string_equal(t.reason, "agent removed");
	assert_string_equal(t.agent, "billing"); /* history stays */
	stint_task_clear(&t);
	/* An already ended task keeps its own reason. */
	assert_int_equal(stint_store_task_get(f->s, "t-2", &t), 0);
	assert_string_equal(t.reason, "earlier");
	stint_task_clear(&t);
	assert_int_equal(stint_store_task_get(f->s, "t-3", &t), 0);
	assert_int_equal(t.state, STINT_TASK_LIVE);
	stint_task_clear(&t);
}

/* ---- the SIGN gate ----------------------------------------------------- */

static void
test_sign_gate_budget(void **state)
{
	struct fixture *f = *state;
	struct stint_gate_result res;
	const char *reason = NULL;
	int i;

	add_agent(f, "billing", 1000, -1);
	add_task(f, "t-1", "billing", 3);

	for (i = 0; i < 3; i++)
		assert_int_equal(
			gate(f, 1000, 1000, "t-1", MECH_ECDSA, NOW, &reason),
			STINT_OK);
	assert_int_equal(used_sigs(f, "t-1"), 3);
	assert_int_equal(gate(f, 1000, 1000, "t-1", MECH_ECDSA, NOW, &reason),
			 STINT_E_BUDGET);
	assert_string_equal(reason, "signature budget spent");
	/* A refusal spends nothing. */
	assert_int_equal(used_sigs(f, "t-1"), 3);

	/* The gate reports what it found; used_sigs after the count. */
	add_task(f, "t-2", "billing", 0);
	res = sign_gate(f, 1000, 1000, "t-2", MECH_ECDSA, NOW);
	assert_int_equal(res.decision, STINT_OK);
	assert_string_equal(res.agent.name, "billing");
	assert_string_equal(res.task.id, "t-2");
	assert_int_equal(res.task.used_sigs, 1);
	assert_null(res.task.pub.spki.ptr);

	/* A mechanism the key does not allow. */
	assert_int_equal(gate(f, 1000, 1000, "t-2", MECH_RSA, NOW, &reason),
			 STINT_E_MECHANISM);
	assert_int_equal(used_sigs(f, "t-2"), 1);
}

static void
test_sign_gate_refusals(void **state)
{
	struct fixture *f = *state;
	struct stint_gate_result res;
	const char *reason = NULL;

	add_agent(f, "billing", 1000, -1);
	add_agent(f, "payroll", 1001, 7);
	add_task(f, "t-b", "billing", 0);
	add_task(f, "t-p", "payroll", 0);

	assert_int_equal(gate(f, 1000, 1, "t-b", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	/* Another agent's uid. */
	assert_int_equal(gate(f, 1001, 7, "t-b", MECH_ECDSA, NOW, &reason),
			 STINT_E_NOT_YOURS);
	assert_string_equal(reason, "task belongs to another agent");
	/* payroll's uid with the wrong gid maps to no agent. */
	assert_int_equal(gate(f, 1001, 8, "t-p", MECH_ECDSA, NOW, &reason),
			 STINT_E_NO_AGENT);
	/* An unregistered uid. */
	res = sign_gate(f, 4242, 4242, "t-b", MECH_ECDSA, NOW);
	assert_int_equal(res.decision, STINT_E_NO_AGENT);
	assert_string_equal(res.agent.name, "");
	assert_string_equal(res.task.id, "t-b");
	/* An unknown task. */
	res = sign_gate(f, 1000, 1, "t-zzz", MECH_ECDSA, NOW);
	assert_int_equal(res.decision, STINT_E_NOT_YOURS);
	assert_string_equal(res.reason, "unknown task");
	assert_string_equal(res.agent.name, "billing");
	assert_string_equal(res.task.id, "");

	/* At the deadline. */
	assert_int_equal(
		gate(f, 1000, 1, "t-b", MECH_ECDSA, NOW + 600, &reason),
		STINT_E_NOT_LIVE);
	assert_string_equal(reason, "task past its deadline");
	assert_int_equal(
		gate(f, 1000, 1, "t-b", MECH_ECDSA, NOW + 599, &reason),
		STINT_OK);

	/* After end: refused, and nothing counted. */
	assert_int_equal(stint_store_task_end(f->s, "t-b", STINT_TASK_ENDED,
					      "done", NOW),
			 0);
	assert_int_equal(gate(f, 1000, 1, "t-b", MECH_ECDSA, NOW, &reason),
			 STINT_E_NOT_LIVE);
	assert_string_equal(reason, "task ended");
	assert_int_equal(used_sigs(f, "t-b"), 2);
	assert_int_equal(used_sigs(f, "t-p"), 0);

	/* After the agent is removed, its uid maps to no agent. */
	assert_int_equal(stint_store_agent_remove(f->s, "payroll"), 0);
	assert_int_equal(gate(f, 1001, 7, "t-p", MECH_ECDSA, NOW, &reason),
			 STINT_E_NO_AGENT);
}

/* The budget survives a restart: used_sigs is committed before the gate
 * returns. */
static void
test_budget_survives_reopen(void **state)
{
	struct fixture *f = *state;
	const char *reason;

	add_agent(f, "billing", 1000, -1);
	add_task(f, "t-1", "billing", 3);
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	reopen(f);
	assert_int_equal(used_sigs(f, "t-1"), 2);
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	reopen(f);
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			 STINT_E_BUDGET);
	/* Ended state survives too. */
	assert_int_equal(stint_store_task_end(f->s, "t-1", STINT_TASK_ENDED,
					      "done", NOW),
			 0);
	reopen(f);
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			 STINT_E_NOT_LIVE);
}

static int64_t
db_used_sigs(struct fixture *f, const char *id)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t n;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT used_sigs FROM tasks "
					    "WHERE id = ?1",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* Without a budget the count is batched in memory, but every read sees
 * it, it reaches the database within a second, and close writes it. */
static void
test_unlimited_count(void **state)
{
	struct fixture *f = *state;
	struct stint_task *list = NULL;
	const char *reason;
	size_t n = 0;
	int i;

	add_agent(f, "billing", 1000, -1);
	add_task(f, "t-1", "billing", 0);
	/* The first gate writes at once; the next ones within that second
	 * stay in memory. */
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	assert_int_equal(db_used_sigs(f, "t-1"), 1);
	for (i = 0; i < 4; i++)
		assert_int_equal(
			gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			STINT_OK);
	assert_int_equal(used_sigs(f, "t-1"), 5);
	assert_int_equal(stint_store_task_list(f->s, NULL, false, NOW, "", 10,
					       &list, &n),
			 0);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].used_sigs, 5);
	stint_store_task_list_free(list, n);
	/* A second later the next gate writes them out. */
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW + 1, &reason),
			 STINT_OK);
	assert_int_equal(db_used_sigs(f, "t-1"), 6);
	/* The reaper's pass writes them too. */
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW + 1, &reason),
			 STINT_OK);
	{
		char(*ids)[STINT_TASK_ID_MAX + 1] = NULL;

		assert_int_equal(stint_store_tasks_due(f->s, NOW, &ids, &n), 0);
		free(ids);
	}
	assert_int_equal(db_used_sigs(f, "t-1"), 7);
	/* And close. */
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW + 1, &reason),
			 STINT_OK);
	assert_int_equal(stint_store_task_end(f->s, "t-1", STINT_TASK_ENDED,
					      "done", NOW + 1),
			 0);
	reopen(f);
	assert_int_equal(used_sigs(f, "t-1"), 8);
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW + 1, &reason),
			 STINT_E_NOT_LIVE);
	assert_int_equal(used_sigs(f, "t-1"), 8);
}

struct gate_thread {
	struct fixture *f;
	const char *id;
	int allowed;
};

static void *
gate_loop(void *arg)
{
	struct gate_thread *g = arg;
	struct stint_gate_req req = {.uid = 1000,
				     .gid = 0,
				     .task_id = g->id,
				     .mech = MECH_ECDSA,
				     .now = {.tv_sec = NOW}};
	struct stint_gate_result res;
	int i;

	for (i = 0; i < 100; i++) {
		if (stint_gate_sign(g->f->s, &req, &res) == 0 &&
		    res.decision == STINT_OK)
			g->allowed++;
	}
	return NULL;
}

static int
race(struct fixture *f, const char *id)
{
	struct gate_thread g[4];
	pthread_t th[4];
	int i, total = 0;

	for (i = 0; i < 4; i++) {
		g[i].f = f;
		g[i].id = id;
		g[i].allowed = 0;
		assert_int_equal(pthread_create(&th[i], NULL, gate_loop, &g[i]),
				 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		total += g[i].allowed;
	}
	return total;
}

/* Four threads race for a budget of 150: exactly 150 signatures pass; on
 * a task without a budget all 400 pass and all are counted. */
static void
test_sign_gate_threads(void **state)
{
	struct fixture *f = *state;

	add_agent(f, "billing", 1000, -1);
	add_task(f, "t-1", "billing", 150);
	add_task(f, "t-2", "billing", 0);
	assert_int_equal(race(f, "t-1"), 150);
	assert_int_equal(used_sigs(f, "t-1"), 150);
	assert_int_equal(race(f, "t-2"), 400);
	assert_int_equal(used_sigs(f, "t-2"), 400);
	reopen(f);
	assert_int_equal(used_sigs(f, "t-2"), 400);
}

static void
test_tasks_due(void **state)
{
	struct fixture *f = *state;
	char(*ids)[STINT_TASK_ID_MAX + 1] = NULL;
	size_t n = 0;

	add_task(f, "t-live", "a", 0); /* deadline NOW + 600 */
	add_task(f, "t-ended", "a", 0);
	add_task(f, "t-gone", "a", 0);
	assert_int_equal(stint_store_task_end(f->s, "t-ended", STINT_TASK_ENDED,
					      "x", NOW),
			 0);
	assert_int_equal(stint_store_task_end(f->s, "t-gone", STINT_TASK_ENDED,
					      "x", NOW),
			 0);
	assert_int_equal(stint_store_task_key_destroyed(f->s, "t-gone"), 0);
	assert_int_equal(stint_store_task_key_destroyed(f->s, "t-nope"),
			 STINT_STORE_NOT_FOUND);

	assert_int_equal(stint_store_tasks_due(f->s, NOW, &ids, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "t-ended");
	free(ids);

	/* At its deadline the live task is due as well. */
	assert_int_equal(stint_store_tasks_due(f->s, NOW + 600, &ids, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], "t-ended");
	assert_string_equal(ids[1], "t-live");
	free(ids);

	assert_int_equal(stint_store_task_end(f->s, "t-live",
					      STINT_TASK_EXPIRED, "deadline",
					      NOW + 600),
			 0);
	assert_int_equal(stint_store_task_key_destroyed(f->s, "t-live"), 0);
	assert_int_equal(stint_store_task_key_destroyed(f->s, "t-ended"), 0);
	assert_int_equal(stint_store_tasks_due(f->s, NOW + 9999, &ids, &n), 0);
	assert_int_equal(n, 0);
	free(ids);
}

/* ---- the gate's in-memory index ----------------------------------------- */

static struct stint_gate_stats
stats(struct fixture *f)
{
	struct stint_gate_stats st;

	memset(&st, 0xa5, sizeof(st));
	stint_gate_stats_get(f->s, &st);
	return st;
}

enum path { FAST, SQL };

/*
 * One gate with the index, asserting which path decided, then the same
 * gate against the database alone (index off): verdict and reason must be
 * equal. An allowed unbudgeted gate counts twice; tests allow for it.
 */
static int
gate_cmp(struct fixture *f, uid_t uid, gid_t gid, const char *id, uint64_t mech,
	 int64_t now, enum path path, const char **reason)
{
	struct stint_gate_stats before = stats(f), after;
	const char *sql_reason = NULL;
	int verdict, sql_verdict;

	assert_true(before.index_valid);
	verdict = gate(f, uid, gid, id, mech, now, reason);
	after = stats(f);
	assert_int_equal(after.fast, before.fast + (path == FAST));
	assert_int_equal(after.sql, before.sql + (path == SQL));

	assert_int_equal(stint_gate_index(f->s, false), 0);
	assert_false(stats(f).index_valid);
	sql_verdict = gate(f, uid, gid, id, mech, now, &sql_reason);
	assert_int_equal(stint_gate_index(f->s, true), 0);
	assert_true(stats(f).index_valid);

	assert_int_equal(verdict, sql_verdict);
	assert_string_equal(*reason, sql_reason);
	return verdict;
}

/* Every refusal, decided from memory where the index knows, equal to the
 * database's verdict and reason. */
static void
test_gate_index_verdicts(void **state)
{
	struct fixture *f = *state;
	struct stint_task t;
	const char *reason = NULL;
	char err[256];

	add_agent(f, "billing", 1000, -1);
	add_agent(f, "payroll", 1001, 7);
	add_task(f, "t-b", "billing", 0);
	add_task(f, "t-p", "payroll", 0);
	add_task(f, "t-end", "billing", 0);
	add_task(f, "t-exp", "billing", 0);
	add_task(f, "t-spent", "billing", 1);
	t = make_task("t-short", "billing", 0);
	t.not_after = NOW + 5;
	assert_int_equal(stint_store_task_insert(f->s, &t, err, sizeof(err)),
			 0);
	/* Inserted already ended: never indexed. */
	t = make_task("t-old", "billing", 0);
	t.state = STINT_TASK_ENDED;
	assert_int_equal(stint_store_task_insert(f->s, &t, err, sizeof(err)),
			 0);
	assert_int_equal(stint_store_task_end(f->s, "t-end", STINT_TASK_ENDED,
					      "done", NOW),
			 0);
	assert_int_equal(stint_store_task_end(f->s, "t-exp", STINT_TASK_EXPIRED,
					      "deadline", NOW),
			 0);
	assert_int_equal(stats(f).agents, 2);
	assert_int_equal(stats(f).tasks, 4); /* t-b t-p t-spent t-short */

	assert_int_equal(
		gate_cmp(f, 1000, 1, "t-b", MECH_ECDSA, NOW, FAST, &reason),
		STINT_OK);
	assert_string_equal(reason, "allowed");
	/* Misses: SQLite tells unknown from ended from expired. */
	assert_int_equal(
		gate_cmp(f, 1000, 1, "t-zzz", MECH_ECDSA, NOW, SQL, &reason),
		STINT_E_NOT_YOURS);
	assert_string_equal(reason, "unknown task");
	assert_int_equal(
		gate_cmp(f, 1000, 1, "", MECH_ECDSA, NOW, SQL, &reason),
		STINT_E_NOT_YOURS);
	assert_string_equal(reason, "unknown task");
	assert_int_equal(
		gate_cmp(f, 1000, 1, NULL, MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_NOT_YOURS);
	assert_string_equal(reason, "unknown task");
	assert_int_equal(
		gate_cmp(f, 1000, 1, "t-end", MECH_ECDSA, NOW, SQL, &reason),
		STINT_E_NOT_LIVE);
	assert_string_equal(reason, "task ended");
	assert_int_equal(
		gate_cmp(f, 1000, 1, "t-old", MECH_ECDSA, NOW, SQL, &reason),
		STINT_E_NOT_LIVE);
	assert_string_equal(reason, "task ended");
	assert_int_equal(
		gate_cmp(f, 1000, 1, "t-exp", MECH_ECDSA, NOW, SQL, &reason),
		STINT_E_NOT_LIVE);
	assert_string_equal(reason, "task expired");
	/* Someone else's ended task: "not yours", nothing about its state. */
	assert_int_equal(
		gate_cmp(f, 1001, 7, "t-end", MECH_ECDSA, NOW, SQL, &reason),
		STINT_E_NOT_YOURS);
	assert_string_equal(reason, "task belongs to another agent");
	/* Someone else's live task, from memory. */
	assert_int_equal(
		gate_cmp(f, 1001, 7, "t-b", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_NOT_YOURS);
	assert_string_equal(reason, "task belongs to another agent");
	/* No agent: refused before the task matters, even an unknown one. */
	assert_int_equal(
		gate_cmp(f, 4242, 4242, "t-b", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_NO_AGENT);
	assert_string_equal(reason, "peer maps to no agent");
	assert_int_equal(gate_cmp(f, 4242, 4242, "t-zzz", MECH_ECDSA, NOW, FAST,
				  &reason),
			 STINT_E_NO_AGENT);
	assert_int_equal(
		gate_cmp(f, 1001, 8, "t-p", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_NO_AGENT);
	/* Past the deadline but not yet ended by the reaper. */
	assert_int_equal(gate_cmp(f, 1000, 1, "t-short", MECH_ECDSA, NOW + 5,
				  FAST, &reason),
			 STINT_E_NOT_LIVE);
	assert_string_equal(reason, "task past its deadline");
	assert_int_equal(gate_cmp(f, 1000, 1, "t-short", MECH_ECDSA, NOW + 4,
				  FAST, &reason),
			 STINT_OK);
	assert_int_equal(
		gate_cmp(f, 1000, 1, "t-b", MECH_RSA, NOW, FAST, &reason),
		STINT_E_MECHANISM);
	assert_string_equal(reason, "mechanism not allowed for this key");
	/* A budget: the allowed gate commits through SQLite, the refusal
	 * once spent comes from memory. */
	assert_int_equal(gate(f, 1000, 1, "t-spent", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	assert_int_equal(
		gate_cmp(f, 1000, 1, "t-spent", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_BUDGET);
	assert_string_equal(reason, "signature budget spent");
	assert_int_equal(used_sigs(f, "t-spent"), 1);
	/* Each allowed unbudgeted gate above counted twice (both paths). */
	assert_int_equal(used_sigs(f, "t-b"), 2);
	assert_int_equal(used_sigs(f, "t-short"), 2);
}

/* What the fast gate fills, and that an unbudgeted SIGN never needs
 * SQLite while its counts still reach the database. */
static void
test_gate_index_fast_fill(void **state)
{
	struct fixture *f = *state;
	struct stint_gate_stats st;
	struct stint_gate_result res;
	const char *reason;
	int i;

	add_agent(f, "billing", 1000, -1);
	add_task(f, "t-1", "billing", 0);
	st = stats(f);
	for (i = 0; i < 10; i++) {
		res = sign_gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW);
		assert_int_equal(res.decision, STINT_OK);
		assert_true(res.from_index);
	}
	assert_int_equal(stats(f).fast, st.fast + 10);
	assert_int_equal(stats(f).sql, st.sql);
	assert_string_equal(res.agent.name, "billing");
	assert_int_equal(res.agent.uid, 1000);
	assert_int_equal(res.agent.gid, -1);
	assert_int_equal(res.agent.max_ttl, 3600);
	assert_int_equal(res.agent.n_mechs, 2);
	assert_string_equal(res.task.id, "t-1");
	assert_string_equal(res.task.agent, "billing");
	assert_int_equal(res.task.state, STINT_TASK_LIVE);
	assert_int_equal(res.task.key_type, STINT_KEY_EC_P256);
	assert_int_equal(res.task.not_after, NOW + 600);
	assert_int_equal(res.task.created, NOW - 10);
	assert_int_equal(res.task.used_sigs, 10);
	assert_int_equal(res.task.n_mechs, 1);
	assert_int_equal(res.task.mechs[0], MECH_ECDSA);
	assert_null(res.task.pub.spki.ptr);
	assert_null(res.task.cert.ptr);
	assert_string_equal(res.task.intent, "");
	/* The first gate wrote at once, the rest within the second. */
	assert_int_equal(db_used_sigs(f, "t-1"), 1);
	assert_int_equal(used_sigs(f, "t-1"), 10);
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW + 1, &reason),
			 STINT_OK);
	assert_int_equal(db_used_sigs(f, "t-1"), 11);
}

/* Two agents on one uid told apart by gid; overlapping rows written
 * behind the store's back resolve to the lowest name, as in SQL. */
static void
test_gate_index_gid_agents(void **state)
{
	struct fixture *f = *state;
	const char *reason;
	sqlite3 *db;

	add_agent(f, "zz-ops", 1000, 5);
	add_agent(f, "aa-dev", 1000, 6);
	add_task(f, "t-ops", "zz-ops", 0);
	add_task(f, "t-dev", "aa-dev", 0);
	assert_int_equal(
		gate_cmp(f, 1000, 5, "t-ops", MECH_ECDSA, NOW, FAST, &reason),
		STINT_OK);
	assert_int_equal(
		gate_cmp(f, 1000, 6, "t-dev", MECH_ECDSA, NOW, FAST, &reason),
		STINT_OK);
	assert_int_equal(
		gate_cmp(f, 1000, 5, "t-dev", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_NOT_YOURS);
	assert_int_equal(
		gate_cmp(f, 1000, 6, "t-ops", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_NOT_YOURS);
	assert_int_equal(
		gate_cmp(f, 1000, 7, "t-ops", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_NO_AGENT);

	stint_store_close(f->s);
	f->s = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db,
			     "INSERT INTO agents (name, uid, gid, max_ttl, "
			     "mechs, created) VALUES ('mm-any', "
			     "1000, NULL, 60, '4161', 1);",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	reopen(f);
	assert_int_equal(stats(f).agents, 3);
	/* gid 5: zz-ops and mm-any match, mm-any is lower. */
	assert_int_equal(
		gate_cmp(f, 1000, 5, "t-ops", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_NOT_YOURS);
	assert_string_equal(
		sign_gate(f, 1000, 5, "t-ops", MECH_ECDSA, NOW).agent.name,
		"mm-any");
	/* gid 6: aa-dev is lower than mm-any. */
	assert_int_equal(
		gate_cmp(f, 1000, 6, "t-dev", MECH_ECDSA, NOW, FAST, &reason),
		STINT_OK);
	assert_int_equal(
		gate_cmp(f, 1000, 9, "t-dev", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_NOT_YOURS);
}

/* Removal and re-adding of agents reaches the gate at once. */
static void
test_gate_index_agent_removed(void **state)
{
	struct fixture *f = *state;
	struct stint_agent a = make_agent("billing", 1000, -1);
	const char *reason;
	char err[256];

	add_agent(f, "billing", 1000, -1);
	add_agent(f, "other", 1001, -1);
	add_task(f, "t-1", "billing", 0);
	add_task(f, "t-2", "billing", 0);
	/* A failed add (duplicate) leaves the index as it was. */
	assert_int_equal(stint_store_agent_add(f->s, &a, err, sizeof(err)),
			 STINT_STORE_EXISTS);
	assert_int_equal(stats(f).agents, 2);
	assert_int_equal(
		gate_cmp(f, 1000, 0, "t-1", MECH_ECDSA, NOW, FAST, &reason),
		STINT_OK);

	assert_int_equal(stint_store_agent_remove(f->s, "billing"), 0);
	assert_int_equal(stint_store_agent_remove(f->s, "billing"),
			 STINT_STORE_NOT_FOUND);
	assert_int_equal(stats(f).agents, 1);
	assert_int_equal(
		gate_cmp(f, 1000, 0, "t-1", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_NO_AGENT);
	/* Its tasks end with it (the caller's second step). */
	assert_int_equal(stint_store_agent_tasks_end(f->s, "billing",
						     "agent removed", NOW),
			 0);
	assert_int_equal(stats(f).tasks, 0);
	/* A new agent of the same name on another uid: the old tasks stay
	 * ended, and the old uid still maps to nobody. */
	a = make_agent("billing", 2000, -1);
	assert_int_equal(stint_store_agent_add(f->s, &a, err, sizeof(err)), 0);
	assert_int_equal(
		gate_cmp(f, 2000, 0, "t-1", MECH_ECDSA, NOW, SQL, &reason),
		STINT_E_NOT_LIVE);
	assert_string_equal(reason, "task ended");
	assert_int_equal(
		gate_cmp(f, 1000, 0, "t-2", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_NO_AGENT);
	assert_int_equal(
		gate_cmp(f, 1001, 0, "t-2", MECH_ECDSA, NOW, SQL, &reason),
		STINT_E_NOT_YOURS);
}

/* After stint_store_task_end returns, the gate refuses: the revocation
 * guarantee. Also a failed insert leaves the indexed task alone. */
static void
test_gate_index_revocation(void **state)
{
	struct fixture *f = *state;
	struct stint_task t = make_task("t-1", "intruder", 0);
	const char *reason;
	char err[256];

	add_agent(f, "billing", 1000, -1);
	add_agent(f, "intruder", 1002, -1);
	add_task(f, "t-1", "billing", 0);
	add_task(f, "t-2", "billing", 5);
	assert_int_equal(stint_store_task_insert(f->s, &t, err, sizeof(err)),
			 STINT_STORE_EXISTS);
	assert_int_equal(stats(f).tasks, 2);
	assert_int_equal(
		gate_cmp(f, 1002, 0, "t-1", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_NOT_YOURS);

	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	assert_int_equal(gate(f, 1000, 0, "t-2", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	assert_int_equal(stint_store_task_end(f->s, "t-1", STINT_TASK_ENDED,
					      "revoked", NOW),
			 0);
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			 STINT_E_NOT_LIVE);
	assert_string_equal(reason, "task ended");
	assert_int_equal(stint_store_task_end(f->s, "t-1", STINT_TASK_ENDED,
					      "again", NOW),
			 STINT_STORE_NOT_FOUND);
	assert_int_equal(stint_store_task_end(f->s, "t-2", STINT_TASK_EXPIRED,
					      "deadline", NOW),
			 0);
	assert_int_equal(gate(f, 1000, 0, "t-2", MECH_ECDSA, NOW, &reason),
			 STINT_E_NOT_LIVE);
	assert_string_equal(reason, "task expired");
	assert_int_equal(stats(f).tasks, 0);
	assert_int_equal(used_sigs(f, "t-1"), 1);
	assert_int_equal(used_sigs(f, "t-2"), 1);
}

/* Budgeted: every allowed gate goes through the committed write; the
 * index follows the count, across close and reopen. */
static void
test_gate_index_budget(void **state)
{
	struct fixture *f = *state;
	struct stint_gate_stats st;
	const char *reason;

	add_agent(f, "billing", 1000, -1);
	add_task(f, "t-1", "billing", 3);
	st = stats(f);
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	assert_int_equal(stats(f).sql, st.sql + 2);
	assert_int_equal(stats(f).fast, st.fast);
	assert_int_equal(db_used_sigs(f, "t-1"),
			 2); /* committed, not batched */
	reopen(f);
	assert_true(stats(f).index_valid);
	assert_int_equal(stats(f).tasks, 1);
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	/* Spent: refused from memory, after a reopen too. */
	assert_int_equal(
		gate_cmp(f, 1000, 0, "t-1", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_BUDGET);
	reopen(f);
	assert_int_equal(
		gate_cmp(f, 1000, 0, "t-1", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_BUDGET);
	assert_int_equal(db_used_sigs(f, "t-1"), 3);
	assert_false(stats(f).index_valid == false);
}

/* The index is rebuilt from the database at open and when switched back
 * on, including changes made while it was off. */
static void
test_gate_index_reload(void **state)
{
	struct fixture *f = *state;
	const char *reason;

	add_agent(f, "billing", 1000, -1);
	add_agent(f, "payroll", 1001, -1);
	add_task(f, "t-1", "billing", 0);
	add_task(f, "t-2", "billing", 0);
	add_task(f, "t-3", "payroll", 0);
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	assert_int_equal(stint_store_task_end(f->s, "t-2", STINT_TASK_ENDED,
					      "done", NOW),
			 0);
	reopen(f);
	assert_int_equal(stats(f).agents, 2);
	assert_int_equal(stats(f).tasks, 2);
	assert_int_equal(stats(f).fast, 0);
	assert_int_equal(
		gate_cmp(f, 1000, 0, "t-1", MECH_ECDSA, NOW, FAST, &reason),
		STINT_OK);
	assert_int_equal(used_sigs(f, "t-1"), 3);
	assert_int_equal(
		gate_cmp(f, 1000, 0, "t-2", MECH_ECDSA, NOW, SQL, &reason),
		STINT_E_NOT_LIVE);

	/* Off: changes go to the database only; on: read back. */
	assert_int_equal(stint_gate_index(f->s, false), 0);
	assert_int_equal(stint_store_agent_remove(f->s, "payroll"), 0);
	add_task(f, "t-4", "billing", 0);
	assert_int_equal(stint_store_task_end(f->s, "t-1", STINT_TASK_ENDED,
					      "done", NOW),
			 0);
	assert_int_equal(gate(f, 1000, 0, "t-4", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	assert_false(stats(f).index_valid);
	assert_int_equal(stint_gate_index(f->s, true), 0);
	assert_int_equal(stats(f).agents, 1);
	assert_int_equal(stats(f).tasks, 1); /* t-4; t-3 ended with payroll */
	assert_int_equal(
		gate_cmp(f, 1000, 0, "t-4", MECH_ECDSA, NOW, FAST, &reason),
		STINT_OK);
	assert_int_equal(used_sigs(f, "t-4"), 3);
	assert_int_equal(
		gate_cmp(f, 1000, 0, "t-1", MECH_ECDSA, NOW, SQL, &reason),
		STINT_E_NOT_LIVE);
	assert_int_equal(
		gate_cmp(f, 1001, 0, "t-3", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_NO_AGENT);
}

/* Removing an agent ends its live tasks in the same transaction; a task
 * started for the removed agent row cannot be stored afterwards, and a name
 * added again (for another uid) inherits nothing. */
static void
test_agent_remove_ends_tasks(void **state)
{
	struct fixture *f = *state;
	char(*ids)[STINT_TASK_ID_MAX + 1] = NULL;
	struct stint_agent a;
	struct stint_task t;
	const char *reason = NULL;
	char err[256];
	int64_t old_id;
	size_t n = 0;
	int pass;

	add_agent(f, "demo", 1000, -1);
	assert_int_equal(stint_store_agent_get(f->s, "demo", &a), 0);
	assert_true(a.id > 0);
	old_id = a.id;
	add_task(f, "t-1", "demo", 0);
	add_task(f, "t-2", "demo", 0);
	assert_int_equal(stint_store_agent_remove_tasks(f->s, "demo", "gone",
							NOW, &ids, &n),
			 0);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], "t-1");
	assert_string_equal(ids[1], "t-2");
	free(ids);
	assert_int_equal(stint_store_task_get(f->s, "t-1", &t), 0);
	assert_int_equal(t.state, STINT_TASK_ENDED);
	assert_string_equal(t.reason, "gone");
	stint_task_clear(&t);

	/* A start that read the old row stores nothing. */
	t = make_task("t-late", "demo", 0);
	t.agent_id = old_id;
	assert_int_equal(stint_store_task_insert(f->s, &t, err, sizeof(err)),
			 STINT_STORE_NOT_FOUND);
	assert_non_null(strstr(err, "was removed"));

	/* The name again, for another uid, with a fresh id; the same start
	 * still fails, even across a reopen. */
	add_agent(f, "demo", 2000, -1);
	for (pass = 0; pass < 2; pass++) {
		assert_int_equal(stint_store_agent_get(f->s, "demo", &a), 0);
		assert_true(a.id > old_id);
		assert_int_equal(
			stint_store_task_insert(f->s, &t, err, sizeof(err)),
			STINT_STORE_NOT_FOUND);
		assert_int_equal(
			gate(f, 2000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			STINT_E_NOT_LIVE);
		reopen(f);
	}
	t.agent_id = a.id;
	assert_int_equal(stint_store_task_insert(f->s, &t, err, sizeof(err)),
			 0);
	assert_int_equal(gate(f, 2000, 0, "t-late", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	assert_int_equal(stint_store_agent_remove_tasks(f->s, "nope", "gone",
							NOW, &ids, &n),
			 STINT_STORE_NOT_FOUND);
}

/* A version 1 state.db (no agent ids) migrates: agents get ids, live tasks
 * the id of their agent, ended ones none; the gate works as before. */
static void
test_migrate_v1(void **state)
{
	struct fixture *f = *state;
	struct stint_agent a;
	struct stint_task t;
	const char *reason = NULL;
	sqlite3 *db;

	stint_store_close(f->s);
	f->s = NULL;
	assert_int_equal(unlink(f->path), 0);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(
			db,
			"CREATE TABLE agents (name TEXT PRIMARY KEY NOT NULL,"
			" uid INTEGER NOT NULL, gid INTEGER, max_ttl INTEGER"
			" NOT NULL, mechs TEXT NOT NULL DEFAULT '', created"
			" INTEGER NOT NULL);"
			"CREATE INDEX agents_uid ON agents(uid);"
			"CREATE TABLE tasks (id TEXT PRIMARY KEY NOT NULL,"
			" agent TEXT NOT NULL, key_type INTEGER NOT NULL,"
			" state TEXT NOT NULL CHECK (state IN ('live',"
			" 'ended', 'expired')), created INTEGER NOT NULL,"
			" not_after INTEGER NOT NULL, ended INTEGER NOT NULL"
			" DEFAULT 0, reason TEXT NOT NULL DEFAULT '',"
			" max_sigs INTEGER NOT NULL DEFAULT 0, used_sigs"
			" INTEGER NOT NULL DEFAULT 0, intent TEXT NOT NULL"
			" DEFAULT '', mechs TEXT NOT NULL DEFAULT '',"
			" key_destroyed INTEGER NOT NULL DEFAULT 0, spki BLOB,"
			" ec_params BLOB, ec_point BLOB, modulus BLOB,"
			" exponent BLOB, cert BLOB);"
			"INSERT INTO agents VALUES ('billing', 1000, NULL, 60,"
			" '4161', 1);"
			"INSERT INTO tasks (id, agent, key_type, state, "
			"created,"
			" not_after, mechs) VALUES ('t-live', 'billing', 1,"
			" 'live', 1, 99999999999, '4161');"
			"INSERT INTO tasks (id, agent, key_type, state, "
			"created,"
			" not_after, mechs) VALUES ('t-old', 'billing', 1,"
			" 'ended', 1, 2, '4161');"
			"PRAGMA user_version = 1;",
			NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	reopen(f);
	assert_int_equal(stint_store_agent_get(f->s, "billing", &a), 0);
	assert_true(a.id > 0);
	assert_int_equal(stint_store_task_get(f->s, "t-live", &t), 0);
	assert_int_equal(t.agent_id, a.id);
	stint_task_clear(&t);
	assert_int_equal(stint_store_task_get(f->s, "t-old", &t), 0);
	assert_int_equal(t.agent_id, 0);
	stint_task_clear(&t);
	assert_int_equal(gate(f, 1000, 0, "t-live", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	assert_int_equal(stint_store_agent_remove(f->s, "billing"), 0);
	assert_int_equal(gate(f, 1000, 0, "t-live", MECH_ECDSA, NOW, &reason),
			 STINT_E_NO_AGENT);
	assert_int_equal(stint_store_task_get(f->s, "t-live", &t), 0);
	assert_int_equal(t.state, STINT_TASK_ENDED);
	stint_task_clear(&t);
}

/* Thousands of live tasks: the table grows, ended ones leave it, and
 * every verdict stays right. */
static void
test_gate_index_many(void **state)
{
	struct fixture *f = *state;
	struct stint_gate_stats st;
	const char *reason;
	char id[STINT_TASK_ID_MAX + 1];
	int i, budgeted = 0;

	enum { N = 5000 };
	add_agent(f, "billing", 1000, -1);
	add_agent(f, "other", 1001, -1);
	for (i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "t-%032x", i);
		add_task(f, id, i % 2 ? "billing" : "other", i % 3 ? 0 : 2);
	}
	assert_int_equal(stats(f).tasks, N);
	st = stats(f);
	for (i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "t-%032x", i);
		assert_int_equal(gate(f, 1000, 0, id, MECH_ECDSA, NOW, &reason),
				 i % 2 ? STINT_OK : STINT_E_NOT_YOURS);
		budgeted += i % 2 && i % 3 == 0;
	}
	/* Only the allowed budgeted ones needed SQLite. */
	assert_int_equal(budgeted, 833);
	assert_int_equal(stats(f).sql - st.sql, budgeted);
	assert_int_equal(stats(f).fast - st.fast, N - budgeted);
	/* End all of billing's and every fourth of other's. */
	assert_int_equal(
		stint_store_agent_tasks_end(f->s, "billing", "gone", NOW), 0);
	for (i = 0; i < N; i += 4) {
		snprintf(id, sizeof(id), "t-%032x", i);
		assert_int_equal(stint_store_task_end(f->s, id,
						      STINT_TASK_ENDED, "done",
						      NOW),
				 0);
	}
	assert_int_equal(stats(f).tasks, N / 2 - N / 4);
	for (i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "t-%032x", i);
		assert_int_equal(gate(f, 1001, 0, id, MECH_ECDSA, NOW, &reason),
				 i % 2        ? STINT_E_NOT_YOURS
				 : i % 4 == 0 ? STINT_E_NOT_LIVE
					      : STINT_OK);
	}
	/* New tasks reuse the grown table; the count goes back down. */
	for (i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "t-n%031x", i);
		add_task(f, id, "billing", 0);
	}
	assert_int_equal(stats(f).tasks, N + N / 2 - N / 4);
	assert_int_equal(
		stint_store_agent_tasks_end(f->s, "billing", "gone", NOW), 0);
	assert_int_equal(
		stint_store_agent_tasks_end(f->s, "other", "gone", NOW), 0);
	assert_int_equal(stats(f).tasks, 0);
	reopen(f);
	assert_int_equal(stats(f).tasks, 0);
	snprintf(id, sizeof(id), "t-n%031x", 1);
	assert_int_equal(gate(f, 1001, 0, id, MECH_ECDSA, NOW, &reason),
			 STINT_E_NOT_YOURS);
	assert_string_equal(reason, "task belongs to another agent");
}

/* ---- files and schema -------------------------------------------------- */

static void
test_file_mode(void **state)
{
	struct fixture *f = *state;
	struct stint_store *s2 = NULL;
	char path[160], err[512];
	struct stat st;
	mode_t old;

	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* Even with a permissive umask. */
	snprintf(path, sizeof(path), "%s/open.db", f->dir);
	old = umask(0);
	assert_int_equal(stint_store_open(path, &s2, err, sizeof(err)), 0);
	umask(old);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	stint_store_close(s2);

	/* An existing file is tightened. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(stint_store_open(path, &s2, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	stint_store_close(s2);
}

static void
test_schema_version(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db;
	sqlite3_stmt *st;
	char err[512] = "";

	/* A fresh database is at version 2, in WAL mode. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 2);
	sqlite3_finalize(st);
	assert_int_equal(
		sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);

	stint_store_close(f->s);
	f->s = NULL;
	assert_int_equal(
		sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);

	assert_int_equal(stint_store_open(f->path, &f->s, err, sizeof(err)),
			 STINT_STORE_ERROR);
	assert_null(f->s);
	assert_non_null(
		strstr(err, "schema version 99 is newer than this stintd (2)"));

	/* Back at version 2 it opens again, data intact. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db, "PRAGMA user_version = 2", NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	reopen(f);
}

static void
test_not_a_database(void **state)
{
	struct fixture *f = *state;
	struct stint_store *s2 = NULL;
	char path[160], err[512] = "";
	FILE *fp;

	snprintf(path, sizeof(path), "%s/junk.db", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("this is not an SQLite database, not at all, no no no no no no "
	      "no no no no no no no no no no no no no no no no no no no no\n",
	      fp);
	fclose(fp);
	assert_int_equal(stint_store_open(path, &s2, err, sizeof(err)),
			 STINT_STORE_ERROR);
	assert_null(s2);
	assert_non_null(strstr(err, path));

	snprintf(path, sizeof(path), "%s/no/such/dir/state.db", f->dir);
	assert_int_equal(stint_store_open(path, &s2, err, sizeof(err)),
			 STINT_STORE_ERROR);
	assert_non_null(strstr(err, "cannot open"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_agent_crud, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_duplicates, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_agent_for_peer_deterministic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_task_insert_get, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_task_list_paging, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_task_end, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_agent_removal_keeps_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_gate_budget, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sign_gate_refusals, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_budget_survives_reopen,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlimited_count, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sign_gate_threads, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tasks_due, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_verdicts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_fast_fill,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_gid_agents,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_agent_removed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_revocation,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_budget, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_reload, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_remove_ends_tasks,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v1, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_many, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_file_mode, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_schema_version, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_not_a_database, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
