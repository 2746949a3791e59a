/* The SIGN gate through its request/result API (attest/gate.h): every
 * decision and reason, with the index and against the database alone,
 * budgets and their counts (also under threads and across restarts), the
 * in-memory index, and the deadline to the nanosecond. */

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "tests/unit/store_fixture.h"

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
	struct stint_gate_req req = {.peer = PEER(1000, 0),
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

/* ---- the gate's in-memory index ----------------------------------------- */

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
	struct stint_gate_stats before = gate_stats(f), after;
	const char *sql_reason = NULL;
	int verdict, sql_verdict;

	assert_true(before.index_valid);
	verdict = gate(f, uid, gid, id, mech, now, reason);
	after = gate_stats(f);
	assert_int_equal(after.fast, before.fast + (path == FAST));
	assert_int_equal(after.sql, before.sql + (path == SQL));

	assert_int_equal(stint_gate_index(f->s, false), 0);
	assert_false(gate_stats(f).index_valid);
	sql_verdict = gate(f, uid, gid, id, mech, now, &sql_reason);
	assert_int_equal(stint_gate_index(f->s, true), 0);
	assert_true(gate_stats(f).index_valid);

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
	assert_int_equal(gate_stats(f).agents, 2);
	assert_int_equal(gate_stats(f).tasks, 4); /* t-b t-p t-spent t-short */

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
	st = gate_stats(f);
	for (i = 0; i < 10; i++) {
		res = sign_gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW);
		assert_int_equal(res.decision, STINT_OK);
		assert_true(res.from_index);
	}
	assert_int_equal(gate_stats(f).fast, st.fast + 10);
	assert_int_equal(gate_stats(f).sql, st.sql);
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
	assert_int_equal(gate_stats(f).agents, 3);
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

/* ident: a gate naming the agent (STINT_K_AS_AGENT), from the index and
 * from the database alone; the verdicts must agree. */
static int
gate_as(struct fixture *f, gid_t gid, const char *id, const char *as,
	const char **agent)
{
	struct timespec ts = {.tv_sec = NOW, .tv_nsec = 0};
	struct stint_gate_req req = {.peer = PEER(1000, gid),
				     .task_id = id,
				     .mech = MECH_ECDSA,
				     .as_agent = as,
				     .now = ts};
	static struct stint_gate_result res;
	struct stint_gate_result sql;

	assert_int_equal(stint_gate_sign(f->s, &req, &res), STINT_STORE_OK);
	assert_int_equal(stint_gate_index(f->s, false), 0);
	assert_int_equal(stint_gate_sign(f->s, &req, &sql), STINT_STORE_OK);
	assert_int_equal(stint_gate_index(f->s, true), 0);
	assert_int_equal(res.decision, sql.decision);
	assert_string_equal(res.agent.name, sql.agent.name);
	*agent = res.agent.name;
	return res.decision;
}

/* A peer matching two agents signs as either when it names it, never as
 * one it does not match. */
static void
test_gate_as_agent(void **state)
{
	struct fixture *f = *state;
	const char *agent;

	add_agent(f, "zz-ops", 1000, 5);
	add_agent(f, "aa-any", 1000, -1);
	add_task(f, "t-ops", "zz-ops", 0);
	add_task(f, "t-any", "aa-any", 0);
	/* Unnamed: the lowest name, as before. */
	assert_int_equal(gate_as(f, 5, "t-ops", NULL, &agent),
			 STINT_E_NOT_YOURS);
	assert_string_equal(agent, "aa-any");
	assert_int_equal(gate_as(f, 5, "t-ops", "zz-ops", &agent), STINT_OK);
	assert_string_equal(agent, "zz-ops");
	assert_int_equal(gate_as(f, 5, "t-any", "aa-any", &agent), STINT_OK);
	assert_int_equal(gate_as(f, 5, "t-any", "zz-ops", &agent),
			 STINT_E_NOT_YOURS);
	/* gid 6 does not match zz-ops: naming it is NO_AGENT. */
	assert_int_equal(gate_as(f, 6, "t-ops", "zz-ops", &agent),
			 STINT_E_NO_AGENT);
	assert_int_equal(gate_as(f, 5, "t-ops", "nosuch", &agent),
			 STINT_E_NO_AGENT);
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
	assert_int_equal(
		stint_store_agent_add(f->s, &a, NULL, err, sizeof(err)),
		STINT_STORE_EXISTS);
	assert_int_equal(gate_stats(f).agents, 2);
	assert_int_equal(
		gate_cmp(f, 1000, 0, "t-1", MECH_ECDSA, NOW, FAST, &reason),
		STINT_OK);

	assert_int_equal(stint_store_agent_remove(f->s, "billing"), 0);
	assert_int_equal(stint_store_agent_remove(f->s, "billing"),
			 STINT_STORE_NOT_FOUND);
	assert_int_equal(gate_stats(f).agents, 1);
	assert_int_equal(
		gate_cmp(f, 1000, 0, "t-1", MECH_ECDSA, NOW, FAST, &reason),
		STINT_E_NO_AGENT);
	/* Its tasks end with it (the caller's second step). */
	assert_int_equal(stint_store_agent_tasks_end(f->s, "billing",
						     "agent removed", NOW),
			 0);
	assert_int_equal(gate_stats(f).tasks, 0);
	/* A new agent of the same name on another uid: the old tasks stay
	 * ended, and the old uid still maps to nobody. */
	a = make_agent("billing", 2000, -1);
	assert_int_equal(
		stint_store_agent_add(f->s, &a, NULL, err, sizeof(err)), 0);
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
	assert_int_equal(gate_stats(f).tasks, 2);
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
	assert_int_equal(gate_stats(f).tasks, 0);
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
	st = gate_stats(f);
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	assert_int_equal(gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW, &reason),
			 STINT_OK);
	assert_int_equal(gate_stats(f).sql, st.sql + 2);
	assert_int_equal(gate_stats(f).fast, st.fast);
	assert_int_equal(db_used_sigs(f, "t-1"),
			 2); /* committed, not batched */
	reopen(f);
	assert_true(gate_stats(f).index_valid);
	assert_int_equal(gate_stats(f).tasks, 1);
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
	assert_false(gate_stats(f).index_valid == false);
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
	assert_int_equal(gate_stats(f).agents, 2);
	assert_int_equal(gate_stats(f).tasks, 2);
	assert_int_equal(gate_stats(f).fast, 0);
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
	assert_false(gate_stats(f).index_valid);
	assert_int_equal(stint_gate_index(f->s, true), 0);
	assert_int_equal(gate_stats(f).agents, 1);
	assert_int_equal(gate_stats(f).tasks,
			 1); /* t-4; t-3 ended with payroll */
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
	assert_int_equal(gate_stats(f).tasks, N);
	st = gate_stats(f);
	for (i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "t-%032x", i);
		assert_int_equal(gate(f, 1000, 0, id, MECH_ECDSA, NOW, &reason),
				 i % 2 ? STINT_OK : STINT_E_NOT_YOURS);
		budgeted += i % 2 && i % 3 == 0;
	}
	/* Only the allowed budgeted ones needed SQLite. */
	assert_int_equal(budgeted, 833);
	assert_int_equal(gate_stats(f).sql - st.sql, budgeted);
	assert_int_equal(gate_stats(f).fast - st.fast, N - budgeted);
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
	assert_int_equal(gate_stats(f).tasks, N / 2 - N / 4);
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
	assert_int_equal(gate_stats(f).tasks, N + N / 2 - N / 4);
	assert_int_equal(
		stint_store_agent_tasks_end(f->s, "billing", "gone", NOW), 0);
	assert_int_equal(
		stint_store_agent_tasks_end(f->s, "other", "gone", NOW), 0);
	assert_int_equal(gate_stats(f).tasks, 0);
	reopen(f);
	assert_int_equal(gate_stats(f).tasks, 0);
	snprintf(id, sizeof(id), "t-n%031x", 1);
	assert_int_equal(gate(f, 1001, 0, id, MECH_ECDSA, NOW, &reason),
			 STINT_E_NOT_YOURS);
	assert_string_equal(reason, "task belongs to another agent");
}

static void
end_task(struct fixture *f, const char *id, enum stint_task_state state)
{
	assert_int_equal(stint_store_task_end(f->s, id, state, "test", NOW - 1),
			 0);
}

static void
test_gate_allowed(void **state)
{
	struct fixture *f = *state;
	struct stint_gate_result res;

	add_agent(f, "billing", 1000, -1);
	add_task(f, "t-free", "billing", 0);
	add_task(f, "t-cap", "billing", 3);

	res = sign_gate(f, 1000, 42, "t-free", MECH_ECDSA, NOW);
	assert_int_equal(res.decision, STINT_OK);
	assert_string_equal(res.reason, "allowed");
	assert_string_equal(res.agent.name, "billing");
	assert_int_equal(res.agent.uid, 1000);
	assert_string_equal(res.task.id, "t-free");
	assert_string_equal(res.task.agent, "billing");
	assert_int_equal(res.task.state, STINT_TASK_LIVE);
	assert_int_equal(res.task.not_after, NOW + 600);
	assert_int_equal(res.task.used_sigs, 1);
	assert_null(res.task.pub.spki.ptr); /* owns no memory */
	assert_null(res.task.cert.ptr);
	assert_int_equal(res.budget_left, STINT_GATE_UNLIMITED);
	assert_true(res.from_index);

	/* A budgeted task is counted by a committed write, not the index. */
	res = sign_gate(f, 1000, 42, "t-cap", MECH_ECDSA, NOW);
	assert_int_equal(res.decision, STINT_OK);
	assert_string_equal(res.reason, "allowed");
	assert_int_equal(res.task.used_sigs, 1);
	assert_int_equal(res.budget_left, 2);
	assert_false(res.from_index);
	assert_int_equal(used_sigs(f, "t-cap"), 1);
}

struct refusal {
	const char *what;
	uid_t uid;
	gid_t gid;
	const char *task;
	uint64_t mech;
	int64_t now;
	int decision;
	const char *reason;
	bool from_index; /* with the index on */
};

static const struct refusal refusals[] = {
	{"unregistered uid", 4242, 4242, "t-b", MECH_ECDSA, NOW,
	 STINT_E_NO_AGENT, "peer maps to no agent", true},
	{"agent's uid, wrong gid", 1001, 8, "t-p", MECH_ECDSA, NOW,
	 STINT_E_NO_AGENT, "peer maps to no agent", true},
	{"no agent, unknown task", 4242, 0, "t-zzz", MECH_ECDSA, NOW,
	 STINT_E_NO_AGENT, "peer maps to no agent", true},
	{"unknown task", 1000, 0, "t-zzz", MECH_ECDSA, NOW, STINT_E_NOT_YOURS,
	 "unknown task", false},
	{"no task named", 1000, 0, NULL, MECH_ECDSA, NOW, STINT_E_NOT_YOURS,
	 "unknown task", true},
	{"another agent's task", 1000, 0, "t-p", MECH_ECDSA, NOW,
	 STINT_E_NOT_YOURS, "task belongs to another agent", true},
	{"ended", 1000, 0, "t-end", MECH_ECDSA, NOW, STINT_E_NOT_LIVE,
	 "task ended", false},
	{"expired", 1000, 0, "t-exp", MECH_ECDSA, NOW, STINT_E_NOT_LIVE,
	 "task expired", false},
	{"past its deadline", 1000, 0, "t-b", MECH_ECDSA, NOW + 601,
	 STINT_E_NOT_LIVE, "task past its deadline", true},
	{"mechanism", 1000, 0, "t-b", MECH_RSA, NOW, STINT_E_MECHANISM,
	 "mechanism not allowed for this key", true},
	{"budget spent", 1000, 0, "t-spent", MECH_ECDSA, NOW, STINT_E_BUDGET,
	 "signature budget spent", true},
};

static void
refusals_setup(struct fixture *f)
{
	add_agent(f, "billing", 1000, -1);
	add_agent(f, "payroll", 1001, 7);
	add_task(f, "t-b", "billing", 0);
	add_task(f, "t-p", "payroll", 0);
	add_task(f, "t-end", "billing", 0);
	add_task(f, "t-exp", "billing", 0);
	add_task(f, "t-spent", "billing", 1);
	end_task(f, "t-end", STINT_TASK_ENDED);
	end_task(f, "t-exp", STINT_TASK_EXPIRED);
	assert_int_equal(
		sign_gate(f, 1000, 0, "t-spent", MECH_ECDSA, NOW).decision,
		STINT_OK);
}

/* Each refusal with its exact status and reason, decided from the index
 * where it holds the answer and by SQLite where it does not (an ended,
 * expired or unknown task: an index miss), then the same against the
 * database alone. A refusal counts nothing. */
static void
test_gate_refusals(void **state)
{
	struct fixture *f = *state;
	const struct refusal *r;
	struct stint_gate_result res;
	struct stint_gate_stats before, after;
	size_t i;
	int pass;

	refusals_setup(f);
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
			r = &refusals[i];
			before = gate_stats(f);
			res = sign_gate(f, r->uid, r->gid, r->task, r->mech,
					r->now);
			after = gate_stats(f);
			print_message("%s (index %s): %d %s\n", r->what,
				      pass == 0 ? "on" : "off", res.decision,
				      res.reason);
			assert_int_equal(res.decision, r->decision);
			assert_string_equal(res.reason, r->reason);
			assert_int_equal(res.from_index,
					 pass == 0 && r->from_index);
			assert_int_equal(after.fast - before.fast,
					 pass == 0 && r->from_index);
			assert_int_equal(after.sql - before.sql,
					 !(pass == 0 && r->from_index));
			if (r->decision == STINT_E_NO_AGENT)
				assert_string_equal(res.agent.name, "");
			else
				assert_string_equal(res.agent.name, "billing");
		}
		assert_int_equal(used_sigs(f, "t-b"), 0);
		assert_int_equal(used_sigs(f, "t-spent"), 1);
		assert_int_equal(stint_gate_index(f->s, false), 0);
		assert_false(gate_stats(f).index_valid);
	}
}

/* An index miss goes to the SQL gate, which tells an ended task from an
 * unknown one; the index alone could not. */
static void
test_gate_index_miss(void **state)
{
	struct fixture *f = *state;
	struct stint_gate_result res;
	struct stint_gate_stats st;

	add_agent(f, "billing", 1000, -1);
	add_task(f, "t-1", "billing", 0);
	st = gate_stats(f);
	assert_true(st.index_valid);
	assert_int_equal(st.tasks, 1);
	end_task(f, "t-1", STINT_TASK_ENDED);
	assert_int_equal(gate_stats(f).tasks, 0); /* gone from the index */

	res = sign_gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW);
	assert_int_equal(res.decision, STINT_E_NOT_LIVE);
	assert_string_equal(res.reason, "task ended");
	assert_false(res.from_index);
	assert_string_equal(res.task.id, "t-1");
	assert_int_equal(res.task.state, STINT_TASK_ENDED);
	assert_int_equal(res.budget_left, STINT_GATE_UNLIMITED);
	assert_int_equal(gate_stats(f).sql, st.sql + 1);
	assert_int_equal(gate_stats(f).fast, st.fast);
}

/* A budget of 3: budget_left counts down, the fourth is refused, and the
 * refusal spends nothing. */
static void
test_gate_budget_exhaustion(void **state)
{
	struct fixture *f = *state;
	struct stint_gate_result res;
	uint64_t i;

	add_agent(f, "billing", 1000, -1);
	add_task(f, "t-1", "billing", 3);
	for (i = 1; i <= 3; i++) {
		res = sign_gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW);
		assert_int_equal(res.decision, STINT_OK);
		assert_int_equal(res.task.used_sigs, i);
		assert_int_equal(res.budget_left, 3 - i);
	}
	res = sign_gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW);
	assert_int_equal(res.decision, STINT_E_BUDGET);
	assert_string_equal(res.reason, "signature budget spent");
	assert_int_equal(res.budget_left, 0);
	assert_int_equal(used_sigs(f, "t-1"), 3);
	/* Still spent after a restart: the count was committed. */
	reopen(f);
	assert_int_equal(sign_gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW).decision,
			 STINT_E_BUDGET);
}

/* The deadline is not_after.000000000: the last nanosecond before it
 * signs, the deadline itself does not, with or without a budget, from the
 * index and from the database. */
static void
test_gate_deadline_exact(void **state)
{
	struct fixture *f = *state;
	struct timespec before = {.tv_sec = NOW + 599, .tv_nsec = 999999999};
	struct timespec at = {.tv_sec = NOW + 600, .tv_nsec = 0};
	struct timespec after = {.tv_sec = NOW + 600, .tv_nsec = 1};
	const char *ids[] = {"t-free", "t-cap"};
	struct stint_gate_result res;
	size_t i;
	int pass;

	add_agent(f, "billing", 1000, -1);
	add_task(f, "t-free", "billing", 0);
	add_task(f, "t-cap", "billing", 10);
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < 2; i++) {
			res = gate_at(f, 1000, 0, ids[i], MECH_ECDSA, before);
			assert_int_equal(res.decision, STINT_OK);
			assert_int_equal(res.task.not_after, NOW + 600);
			res = gate_at(f, 1000, 0, ids[i], MECH_ECDSA, at);
			assert_int_equal(res.decision, STINT_E_NOT_LIVE);
			assert_string_equal(res.reason,
					    "task past its deadline");
			res = gate_at(f, 1000, 0, ids[i], MECH_ECDSA, after);
			assert_int_equal(res.decision, STINT_E_NOT_LIVE);
		}
		assert_int_equal(stint_gate_index(f->s, false), 0);
	}
	/* Two allowed per task; the refusals counted nothing. */
	assert_int_equal(used_sigs(f, "t-free"), 2);
	assert_int_equal(used_sigs(f, "t-cap"), 2);
}

/* bind: a task bound to a process or a cgroup refuses every other process
 * of its agent before counting, from the index and from the database, and
 * the binding survives a reopen. */
static int
gate_bound(struct fixture *f, const char *id, pid_t pid, uint64_t start,
	   const char *cgroup, const char **reason)
{
	struct stint_peer peer = {.uid = 1000, .pid = pid, .start_time = start};
	struct stint_gate_req req = {.peer = &peer,
				     .task_id = id,
				     .mech = MECH_ECDSA,
				     .now = {.tv_sec = NOW}};
	struct stint_gate_result res;

	snprintf(peer.cgroup, sizeof(peer.cgroup), "%s", cgroup ? cgroup : "");
	snprintf(peer.exe, sizeof(peer.exe), "?");
	assert_int_equal(stint_gate_sign(f->s, &req, &res), STINT_STORE_OK);
	*reason = res.reason;
	return res.decision;
}

static void
check_bound(struct fixture *f)
{
	const char *reason;

	assert_int_equal(gate_bound(f, "t-pid", 42, 777, "/a", &reason),
			 STINT_OK);
	assert_int_equal(gate_bound(f, "t-pid", 42, 778, "/a", &reason),
			 STINT_E_NOT_YOURS);
	assert_string_equal(reason, "task is bound to another process");
	assert_int_equal(gate_bound(f, "t-pid", 43, 777, "/a", &reason),
			 STINT_E_NOT_YOURS);
	assert_int_equal(gate_bound(f, "t-cg", 9, 1, "/run/x/sub", &reason),
			 STINT_OK);
	assert_int_equal(gate_bound(f, "t-cg", 9, 1, "/run/x", &reason),
			 STINT_OK);
	assert_int_equal(gate_bound(f, "t-cg", 9, 1, "/run/xy", &reason),
			 STINT_E_NOT_YOURS);
	assert_string_equal(reason,
			    "process is outside the task's bound cgroup");
	assert_int_equal(gate_bound(f, "t-cg", 9, 1, NULL, &reason),
			 STINT_E_NOT_YOURS);
	/* An unbound task: any process of the agent. */
	assert_int_equal(gate_bound(f, "t-free", 0, 0, NULL, &reason),
			 STINT_OK);
}

static void
test_gate_bound(void **state)
{
	struct fixture *f = *state;
	struct stint_task t;
	char err[256];

	add_agent(f, "billing", 1000, -1);
	t = make_task("t-pid", "billing", 0);
	t.bind.kind = STINT_BIND_PID;
	t.bind.pid = 42;
	t.bind.start_time = 777;
	assert_int_equal(stint_store_task_insert(f->s, &t, err, sizeof(err)),
			 0);
	t = make_task("t-cg", "billing", 100);
	t.bind.kind = STINT_BIND_CGROUP;
	snprintf(t.bind.cgroup, sizeof(t.bind.cgroup), "/run/x");
	t.bind.owned = true;
	assert_int_equal(stint_store_task_insert(f->s, &t, err, sizeof(err)),
			 0);
	add_task(f, "t-free", "billing", 0);
	check_bound(f);
	/* Refusals are not counted. */
	assert_int_equal(used_sigs(f, "t-pid"), 1);
	assert_int_equal(used_sigs(f, "t-cg"), 2);
	assert_int_equal(stint_gate_index(f->s, false), STINT_STORE_OK);
	check_bound(f);
	reopen(f);
	check_bound(f);
	assert_int_equal(stint_store_task_get(f->s, "t-cg", &t), 0);
	assert_int_equal(t.bind.kind, STINT_BIND_CGROUP);
	assert_string_equal(t.bind.cgroup, "/run/x");
	assert_true(t.bind.owned);
	stint_task_clear(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gate_allowed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gate_bound, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gate_refusals, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_miss, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gate_budget_exhaustion,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_deadline_exact, setup,
						teardown),
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
		cmocka_unit_test_setup_teardown(test_gate_index_verdicts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_fast_fill,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_gid_agents,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_as_agent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_agent_removed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_revocation,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_budget, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_reload, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_many, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
