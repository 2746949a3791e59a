/* The SQLite store: agents, tasks, schema versioning (the SIGN gate is
 * test_gate's). Each test gets a fresh database in its own temp dir. */

#include <ftw.h>
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

#include "attest/store_int.h" /* storeidx: the statements' counters */
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
	assert_int_equal(stint_store_agent_for_peer(f->s, PEER(1000, 4242), &a),
			 0);
	assert_string_equal(a.name, "billing");
	assert_int_equal(stint_store_agent_for_peer(f->s, PEER(1001, 50), &a),
			 0);
	assert_string_equal(a.name, "payroll");
	assert_int_equal(stint_store_agent_for_peer(f->s, PEER(1001, 51), &a),
			 STINT_STORE_NOT_FOUND);
	assert_int_equal(stint_store_agent_for_peer(f->s, PEER(1002, 50), &a),
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
	assert_int_equal(stint_store_agent_for_peer(f->s, PEER(1000, 4242), &a),
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
	char err[256], overlap[STINT_NAME_MAX + 1];

	add_agent(f, "x", 1000, -1);

	a = make_agent("x", 2000, -1);
	assert_int_equal(
		stint_store_agent_add(f->s, &a, NULL, err, sizeof(err)),
		STINT_STORE_EXISTS);
	assert_non_null(strstr(err, "agent 'x' already exists"));

	/* Same uid, gid and selectors: no process could tell them apart. */
	a = make_agent("y", 1000, -1);
	assert_int_equal(
		stint_store_agent_add(f->s, &a, NULL, err, sizeof(err)),
		STINT_STORE_EXISTS);
	assert_non_null(strstr(err, "uid 1000 already acts as agent 'x'"));
	/* A gid narrows, but x (any gid) still matches its processes. */
	a = make_agent("y", 1000, 77);
	assert_int_equal(
		stint_store_agent_add(f->s, &a, overlap, err, sizeof(err)), 0);
	assert_string_equal(overlap, "x");
	/* A peer of gid 77 matches both: the lowest name. */
	assert_int_equal(stint_store_agent_for_peer(f->s, PEER(1000, 77), &a),
			 0);
	assert_string_equal(a.name, "x");

	/* Same uid, distinct gids: two agents, each found by its gid. */
	add_agent(f, "g10", 3000, 10);
	add_agent(f, "g20", 3000, 20);
	a = make_agent("g10b", 3000, 10);
	assert_int_equal(
		stint_store_agent_add(f->s, &a, NULL, err, sizeof(err)),
		STINT_STORE_EXISTS);
	assert_non_null(strstr(err, "uid 3000 already acts as agent 'g10'"));
	assert_int_equal(stint_store_agent_for_peer(f->s, PEER(3000, 20), &a),
			 0);
	assert_string_equal(a.name, "g20");
	assert_int_equal(stint_store_agent_get(f->s, "g10b", &a),
			 STINT_STORE_NOT_FOUND);
}

/* Several agents under one uid told apart by selectors (ident). */
static void
test_agent_selectors(void **state)
{
	struct fixture *f = *state;
	struct stint_agent a, got;
	struct stint_peer p = {.uid = 4000, .gid = 1};
	char err[256], overlap[STINT_NAME_MAX + 1];

	a = make_agent("by-exe", 4000, -1);
	strcpy(a.sel.exe, "/opt/a/bin/tool");
	assert_int_equal(
		stint_store_agent_add(f->s, &a, overlap, err, sizeof(err)), 0);
	assert_string_equal(overlap, "");
	a = make_agent("by-exe2", 4000, -1);
	strcpy(a.sel.exe, "/opt/b/bin/tool");
	assert_int_equal(
		stint_store_agent_add(f->s, &a, overlap, err, sizeof(err)), 0);
	assert_string_equal(overlap, "");
	a = make_agent("by-cg", 4000, -1);
	strcpy(a.sel.cgroup, "/stint/run-1");
	strcpy(a.sel.exe_sha256, "ab");
	assert_int_equal(
		stint_store_agent_add(f->s, &a, overlap, err, sizeof(err)), 0);
	assert_string_equal(overlap, "by-exe"); /* no selector tells apart */
	/* The same selectors again: refused. */
	a = make_agent("by-exe3", 4000, -1);
	strcpy(a.sel.exe, "/opt/a/bin/tool");
	assert_int_equal(
		stint_store_agent_add(f->s, &a, NULL, err, sizeof(err)),
		STINT_STORE_EXISTS);

	/* Read back. */
	assert_int_equal(stint_store_agent_get(f->s, "by-cg", &got), 0);
	assert_string_equal(got.sel.cgroup, "/stint/run-1");
	assert_string_equal(got.sel.exe_sha256, "ab");
	assert_string_equal(got.sel.exe, "");

	/* Matching: every selector set must match; unknown never does. */
	strcpy(p.exe, "/opt/b/bin/tool");
	assert_int_equal(stint_store_agent_for_peer(f->s, &p, &got), 0);
	assert_string_equal(got.name, "by-exe2");
	strcpy(p.exe, "/opt/c/bin/tool");
	assert_int_equal(stint_store_agent_for_peer(f->s, &p, &got),
			 STINT_STORE_NOT_FOUND);
	strcpy(p.cgroup, "/stint/run-1/sub");
	assert_int_equal(stint_store_agent_for_peer(f->s, &p, &got),
			 STINT_STORE_NOT_FOUND); /* hash unknown */
	strcpy(p.exe_sha256, "ab");
	assert_int_equal(stint_store_agent_for_peer(f->s, &p, &got), 0);
	assert_string_equal(got.name, "by-cg");
	strcpy(p.cgroup, "/stint/run-10");
	assert_int_equal(stint_store_agent_for_peer(f->s, &p, &got),
			 STINT_STORE_NOT_FOUND);
	strcpy(p.exe, "?");
	assert_int_equal(stint_store_agent_for_peer(f->s, &p, &got),
			 STINT_STORE_NOT_FOUND);
}

/* ident: every agent the peer matches, in name order; a named agent only
 * when the peer matches it. */
static void
agents_for_peer_all(struct fixture *f)
{
	struct stint_agent *all = NULL, a;
	size_t n = 0;

	assert_int_equal(
		stint_store_agents_for_peer(f->s, PEER(5000, 9), &all, &n),
		STINT_STORE_OK);
	assert_int_equal(n, 3);
	assert_string_equal(all[0].name, "alpha");
	assert_string_equal(all[1].name, "mid");
	assert_string_equal(all[2].name, "zeta");
	free(all);
	/* gid 8: mid (gid 9) does not match. */
	assert_int_equal(
		stint_store_agents_for_peer(f->s, PEER(5000, 8), &all, &n),
		STINT_STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(all[1].name, "zeta");
	free(all);
	assert_int_equal(
		stint_store_agents_for_peer(f->s, PEER(5001, 9), &all, &n),
		STINT_STORE_NOT_FOUND);
	assert_int_equal(n, 0);
	assert_int_equal(stint_store_agent_as(f->s, PEER(5000, 9), "zeta", &a),
			 STINT_STORE_OK);
	assert_string_equal(a.name, "zeta");
	assert_int_equal(stint_store_agent_as(f->s, PEER(5000, 8), "mid", &a),
			 STINT_STORE_NOT_FOUND);
	assert_int_equal(stint_store_agent_as(f->s, PEER(5001, 9), "zeta", &a),
			 STINT_STORE_NOT_FOUND);
	assert_int_equal(
		stint_store_agent_as(f->s, PEER(5000, 9), "nosuch", &a),
		STINT_STORE_NOT_FOUND);
	assert_int_equal(stint_store_agent_as(f->s, PEER(5000, 9), "", &a),
			 STINT_STORE_OK);
	assert_string_equal(a.name, "alpha");
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
	assert_int_equal(stint_store_agent_for_peer(f->s, PEER(5000, 9), &a),
			 0);
	assert_string_equal(a.name, "alpha");
	assert_int_equal(a.n_mechs, 1);
	assert_int_equal(a.mechs[0], 4161);
	agents_for_peer_all(f);
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
	snprintf(in.audiences, sizeof(in.audiences), "a,b"); /* aud */
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
	assert_string_equal(t.audiences, "a,b");
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

/* deleg: a child's budget is reserved from its live parent when it is
 * stored; ending a subtree ends every live descendant in one call, each
 * giving its parent back what it did not use. */
static void
add_child(struct fixture *f, const char *id, const char *agent,
	  const char *parent, uint64_t max_sigs, int want)
{
	struct stint_task t = make_task(id, agent, max_sigs);
	char err[256];

	snprintf(t.parent_id, sizeof(t.parent_id), "%s", parent);
	t.reserved = max_sigs;
	assert_int_equal(stint_store_task_insert(f->s, &t, err, sizeof(err)),
			 want);
}

static void
test_tree(void **state)
{
	struct fixture *f = *state;
	char(*desc)[STINT_TASK_ID_MAX + 1] = NULL;
	struct stint_task *tree = NULL, t;
	const char *why;
	size_t n = 0, i;

	add_agent(f, "lead", 1000, -1);
	add_agent(f, "sub", 1001, -1);
	add_agent(f, "grand", 1002, -1);
	add_task(f, "t-r", "lead", 100);
	add_child(f, "t-c", "sub", "t-r", 30, STINT_STORE_OK);
	add_child(f, "t-g", "grand", "t-c", 10, STINT_STORE_OK);
	assert_int_equal(used_sigs(f, "t-r"), 30);
	assert_int_equal(used_sigs(f, "t-c"), 10);
	/* More than is left, or under an unknown parent: nothing stored. */
	add_child(f, "t-x", "sub", "t-r", 71, STINT_STORE_NOT_FOUND);
	add_child(f, "t-y", "sub", "t-nope", 1, STINT_STORE_NOT_FOUND);
	assert_int_equal(stint_store_task_get(f->s, "t-x", &t),
			 STINT_STORE_NOT_FOUND);
	assert_int_equal(used_sigs(f, "t-r"), 30);

	assert_int_equal(stint_store_task_get(f->s, "t-g", &t), 0);
	assert_string_equal(t.parent_id, "t-c");
	assert_string_equal(t.root_id, "t-r");
	assert_int_equal(t.depth, 2); /* from the parent's row */
	assert_string_equal(t.path, "lead,sub,grand");
	stint_task_clear(&t);
	assert_int_equal(stint_store_task_tree(f->s, "t-r", &tree, &n), 0);
	assert_int_equal(n, 3);
	stint_store_task_list_free(tree, n);

	/* The grandchild signs twice, the child three times. */
	for (i = 0; i < 2; i++)
		assert_int_equal(
			gate(f, 1002, 1002, "t-g", MECH_ECDSA, NOW, &why),
			STINT_OK);
	for (i = 0; i < 3; i++)
		assert_int_equal(
			gate(f, 1001, 1001, "t-c", MECH_ECDSA, NOW, &why),
			STINT_OK);
	assert_int_equal(used_sigs(f, "t-c"), 13);

	/* Ending the child ends the grandchild; 8 go back to the child,
	 * then 30 - 5 to the root. */
	assert_int_equal(stint_store_tree_end(f->s, "t-c", STINT_TASK_ENDED,
					      "done", "ancestor t-c ended",
					      NOW + 1, &desc, &n),
			 0);
	assert_int_equal(n, 1);
	assert_string_equal(desc[0], "t-g");
	free(desc);
	assert_int_equal(stint_store_task_get(f->s, "t-g", &t), 0);
	assert_int_equal(t.state, STINT_TASK_ENDED);
	assert_string_equal(t.reason, "ancestor t-c ended");
	stint_task_clear(&t);
	assert_int_equal(gate(f, 1002, 1002, "t-g", MECH_ECDSA, NOW, &why),
			 STINT_E_NOT_LIVE);
	assert_int_equal(used_sigs(f, "t-r"), 5);
	assert_int_equal(gate(f, 1000, 1000, "t-r", MECH_ECDSA, NOW, &why),
			 STINT_OK);
	/* No child under an ended parent. */
	add_child(f, "t-z", "grand", "t-c", 0, STINT_STORE_NOT_FOUND);
	assert_int_equal(stint_store_tree_orphans(f->s, &desc, &n), 0);
	assert_int_equal(n, 0);
	free(desc);
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

/* ---- rows read as the store grows (storeidx) --------------------------- */

/* Virtual machine steps of one statement since the last call. */
static int
vm_steps(struct fixture *f, enum stmt_id id)
{
	return sqlite3_stmt_status(f->s->st[id], SQLITE_STMTSTATUS_VM_STEP, 1);
}

/* The steps of the reaper's two queries and of one agent's live listing,
 * with one result each: a due task, an orphan, the agent's task. */
static void
reaper_steps(struct fixture *f, int *due, int *orphans, int *list)
{
	char(*ids)[STINT_TASK_ID_MAX + 1] = NULL;
	struct stint_task *tasks = NULL;
	size_t n = 0;

	(void)vm_steps(f, S_TASKS_DUE);
	assert_int_equal(stint_store_tasks_due(f->s, NOW, &ids, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "t-due");
	free(ids);
	*due = vm_steps(f, S_TASKS_DUE);
	(void)vm_steps(f, S_TASK_ORPHANS);
	assert_int_equal(stint_store_tree_orphans(f->s, &ids, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "t-orphan");
	free(ids);
	*orphans = vm_steps(f, S_TASK_ORPHANS);
	(void)vm_steps(f, S_TASK_LIST_LIVE_AGENT);
	assert_int_equal(stint_store_task_list(f->s, "probe", true, NOW, "", 16,
					       &tasks, &n),
			 0);
	assert_int_equal(n, 1);
	assert_string_equal(tasks[0].id, "t-probe");
	stint_store_task_list_free(tasks, n);
	*list = vm_steps(f, S_TASK_LIST_LIVE_AGENT);
}

/* What the reaper asks every second (due tasks, orphans) and an agent's
 * listing read what they return, not every task: their work stays flat
 * from 10 to 2,000 other tasks (a scan of tasks grew with each row). */
static void
test_reaper_reads_flat(void **state)
{
	struct fixture *f = *state;
	int due0, orph0, list0, due1, orph1, list1;
	char id[32];
	int i;

	add_task(f, "t-due", "fill", 0);
	assert_int_equal(
		stint_store_task_end(f->s, "t-due", STINT_TASK_ENDED, "x", NOW),
		0);
	add_task(f, "t-parent", "fill", 10);
	add_child(f, "t-orphan", "fill", "t-parent", 1, STINT_STORE_OK);
	/* The parent alone ends (a cascade state.db did not commit). */
	assert_int_equal(stint_store_task_end(f->s, "t-parent",
					      STINT_TASK_ENDED, "x", NOW),
			 0);
	assert_int_equal(stint_store_task_key_destroyed(f->s, "t-parent"), 0);
	add_task(f, "t-probe", "probe", 0);
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "t-fill-%05d", i);
		add_task(f, id, "fill", 0);
	}
	reaper_steps(f, &due0, &orph0, &list0);
	for (i = 10; i < 2000; i++) {
		snprintf(id, sizeof(id), "t-fill-%05d", i);
		add_task(f, id, "fill", 0);
		if (i % 4 == 0) { /* history: ended, key destroyed */
			assert_int_equal(stint_store_task_end(f->s, id,
							      STINT_TASK_ENDED,
							      "x", NOW),
					 0);
			assert_int_equal(
				stint_store_task_key_destroyed(f->s, id), 0);
		}
	}
	reaper_steps(f, &due1, &orph1, &list1);
	print_message("VM steps at 10 / 2,000 tasks: due %d / %d, orphans "
		      "%d / %d, list %d / %d\n",
		      due0, due1, orph0, orph1, list0, list1);
	assert_true(due1 <= due0 + 20);
	assert_true(orph1 <= orph0 + 20);
	assert_true(list1 <= list0 + 20);
}

/* Whether statement id may read every row of tasks (or of its live
 * tasks): only what runs once per start-up, status or agent removal. */
static bool
may_read_all(enum stmt_id id)
{
	return id == S_COUNT_TASKS || id == S_TASKS_LIVE ||
	       id == S_AGENT_LIVE_IDS || id == S_AGENT_LIVE_END;
}

/* No statement the store runs per task start, end, SIGN or reaper pass
 * scans the tasks table or all its live rows (EXPLAIN QUERY PLAN): each
 * goes through a key or a partial index. */
static void
test_statements_use_indexes(void **state)
{
	struct fixture *f = *state;
	const char *detail;
	sqlite3_stmt *st;
	char sql[8192];
	int i;

	for (i = 0; i < S_N; i++) {
		snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s",
			 sqlite3_sql(f->s->st[i]));
		assert_int_equal(
			sqlite3_prepare_v2(f->s->db, sql, -1, &st, NULL),
			SQLITE_OK);
		while (sqlite3_step(st) == SQLITE_ROW) {
			detail = (const char *)sqlite3_column_text(st, 3);
			if (may_read_all((enum stmt_id)i) ||
			    strstr(detail, "tasks_key_pending") != NULL ||
			    strstr(detail, "tasks_live_children") != NULL)
				continue;
			if (strncmp(detail, "SCAN tasks", 10) == 0 ||
			    strncmp(detail, "SCAN c", 6) == 0 ||
			    strncmp(detail, "SCAN t ", 7) == 0 ||
			    strstr(detail, "(state=?)") != NULL)
				fail_msg("statement %d reads every task: %s: "
					 "%s",
					 i, detail, sqlite3_sql(f->s->st[i]));
		}
		sqlite3_finalize(st);
	}
}

/* A version 9 state.db (no storeidx indexes) gains them, data intact,
 * and the reaper's queries answer as before. */
static void
test_migrate_v9(void **state)
{
	struct fixture *f = *state;
	char(*ids)[STINT_TASK_ID_MAX + 1] = NULL;
	sqlite3_stmt *st;
	sqlite3 *db;
	size_t n = 0;

	add_task(f, "t-live", "a", 0);
	add_task(f, "t-ended", "a", 0);
	assert_int_equal(stint_store_task_end(f->s, "t-ended", STINT_TASK_ENDED,
					      "x", NOW),
			 0);
	stint_store_close(f->s);
	f->s = NULL;
	/* Version 9 is version 10 without these indexes. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "DROP INDEX tasks_key_pending;"
				      "DROP INDEX tasks_live_children;"
				      "DROP INDEX tasks_live_agent;"
				      "DROP INDEX tasks_live_id;"
				      "PRAGMA user_version = 9;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	reopen(f);
	assert_int_equal(sqlite3_prepare_v2(f->s->db,
					    "SELECT count(*) FROM sqlite_master"
					    " WHERE type = 'index' AND name IN"
					    " ('tasks_key_pending',"
					    " 'tasks_live_children',"
					    " 'tasks_live_agent',"
					    " 'tasks_live_id')",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 4);
	sqlite3_finalize(st);
	assert_int_equal(stint_store_tasks_due(f->s, NOW + 600, &ids, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], "t-ended");
	assert_string_equal(ids[1], "t-live");
	free(ids);
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

	/* A fresh database is at the latest version (10: oper, ident, bind,
	 * aud, prov, deleg, prov's operators, storeidx), in WAL mode. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 10);
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
	assert_non_null(strstr(
		err, "schema version 99 is newer than this stintd (10)"));

	/* Back at version 10 it opens again, data intact. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db, "PRAGMA user_version = 10", NULL, NULL, NULL),
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

/* prov: an agent's source round-trips; an update replaces its fields in
 * place (same id, created and tasks) and refuses another's principal. */
static void
test_agent_source_update(void **state)
{
	struct fixture *f = *state;
	struct stint_agent a, got, before;
	char err[256];

	a = make_agent("filed", 3000, -1);
	snprintf(a.source, sizeof(a.source), "/etc/stint/agents.d/a.conf");
	assert_int_equal(
		stint_store_agent_add(f->s, &a, NULL, err, sizeof(err)), 0);
	add_agent(f, "other", 3001, -1);
	assert_int_equal(stint_store_agent_get(f->s, "filed", &before), 0);
	assert_string_equal(before.source, "/etc/stint/agents.d/a.conf");
	assert_int_equal(stint_store_agent_get(f->s, "other", &got), 0);
	assert_string_equal(got.source, "");

	a.max_ttl = 60;
	a.gid = 5;
	snprintf(a.source, sizeof(a.source), "/etc/stint/agents.d/b.conf");
	assert_int_equal(stint_store_agent_update(f->s, &a, err, sizeof(err)),
			 0);
	assert_int_equal(stint_store_agent_get(f->s, "filed", &got), 0);
	assert_int_equal(got.max_ttl, 60);
	assert_int_equal(got.gid, 5);
	assert_int_equal(got.id, before.id);
	assert_int_equal(got.created, before.created);
	assert_string_equal(got.source, "/etc/stint/agents.d/b.conf");
	assert_int_equal(stint_store_agent_for_peer(f->s, PEER(3000, 5), &got),
			 0);
	assert_string_equal(got.name, "filed");

	/* other's exact principal: refused, nothing changed. */
	a.uid = 3001;
	a.gid = -1;
	assert_int_equal(stint_store_agent_update(f->s, &a, err, sizeof(err)),
			 STINT_STORE_EXISTS);
	assert_non_null(strstr(err, "already acts as agent 'other'"));
	assert_int_equal(stint_store_agent_get(f->s, "filed", &got), 0);
	assert_int_equal(got.uid, 3000);
	a = make_agent("nobody", 3002, -1);
	assert_int_equal(stint_store_agent_update(f->s, &a, err, sizeof(err)),
			 STINT_STORE_NOT_FOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_agent_crud, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_duplicates, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_source_update, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_agent_for_peer_deterministic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_selectors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_task_insert_get, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_task_list_paging, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_task_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_agent_removal_keeps_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tasks_due, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_remove_ends_tasks,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v1, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reaper_reads_flat, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_statements_use_indexes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v9, setup,
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
