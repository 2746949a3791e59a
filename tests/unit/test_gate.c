/* The SIGN gate through its request/result API (attest/gate.h): every
 * decision and reason, with the index and against the database alone,
 * budgets, and the deadline to the nanosecond. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tests/unit/store_fixture.h"

static struct stint_gate_stats
stats(struct fixture *f)
{
	struct stint_gate_stats st;

	memset(&st, 0xa5, sizeof(st));
	stint_gate_stats_get(f->s, &st);
	return st;
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
			before = stats(f);
			res = sign_gate(f, r->uid, r->gid, r->task, r->mech,
					r->now);
			after = stats(f);
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
		assert_false(stats(f).index_valid);
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
	st = stats(f);
	assert_true(st.index_valid);
	assert_int_equal(st.tasks, 1);
	end_task(f, "t-1", STINT_TASK_ENDED);
	assert_int_equal(stats(f).tasks, 0); /* gone from the index */

	res = sign_gate(f, 1000, 0, "t-1", MECH_ECDSA, NOW);
	assert_int_equal(res.decision, STINT_E_NOT_LIVE);
	assert_string_equal(res.reason, "task ended");
	assert_false(res.from_index);
	assert_string_equal(res.task.id, "t-1");
	assert_int_equal(res.task.state, STINT_TASK_ENDED);
	assert_int_equal(res.budget_left, STINT_GATE_UNLIMITED);
	assert_int_equal(stats(f).sql, st.sql + 1);
	assert_int_equal(stats(f).fast, st.fast);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gate_allowed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gate_refusals, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gate_index_miss, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_gate_budget_exhaustion,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_gate_deadline_exact, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
