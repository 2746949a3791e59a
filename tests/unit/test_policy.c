/* The SIGN decision: every branch, and the order the checks run in. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "attest/policy.h"

#define NOW        1700000000
#define MECH_ECDSA 0x1041u
#define MECH_RSA   0x1u
#define MECH_PSS   0xdu

static struct stint_agent agent;
static struct stint_task task;

static int
setup(void **state)
{
	(void)state;
	memset(&agent, 0, sizeof(agent));
	snprintf(agent.name, sizeof(agent.name), "billing");
	agent.uid = 1000;
	agent.gid = -1;
	agent.max_ttl = 3600;

	memset(&task, 0, sizeof(task));
	snprintf(task.id, sizeof(task.id),
		 "t-0123456789abcdef0123456789abcdef");
	snprintf(task.agent, sizeof(task.agent), "billing");
	task.key_type = STINT_KEY_EC_P256;
	task.state = STINT_TASK_LIVE;
	task.created = NOW - 60;
	task.not_after = NOW + 60;
	task.max_sigs = 3;
	task.used_sigs = 0;
	task.mechs[0] = MECH_ECDSA;
	task.n_mechs = 1;
	return 0;
}

static void
expect_verdict(const struct stint_agent *a, const struct stint_task *t,
	       uint64_t mech, int64_t now, int status, const char *why)
{
	const char *reason = NULL;

	assert_int_equal(stint_policy_sign(a, t, mech, now, &reason), status);
	assert_non_null(reason);
	if (why != NULL)
		assert_string_equal(reason, why);
}

static void
test_allowed(void **state)
{
	(void)state;
	expect_verdict(&agent, &task, MECH_ECDSA, NOW, STINT_OK, NULL);
	/* A NULL reason pointer is tolerated. */
	assert_int_equal(
		stint_policy_sign(&agent, &task, MECH_ECDSA, NOW, NULL),
		STINT_OK);
}

static void
test_no_agent(void **state)
{
	(void)state;
	expect_verdict(NULL, &task, MECH_ECDSA, NOW, STINT_E_NO_AGENT,
		       "peer maps to no agent");
	/* Even with no task at all, the missing agent is reported first. */
	expect_verdict(NULL, NULL, MECH_ECDSA, NOW, STINT_E_NO_AGENT,
		       "peer maps to no agent");
}

static void
test_unknown_task(void **state)
{
	(void)state;
	expect_verdict(&agent, NULL, MECH_ECDSA, NOW, STINT_E_NOT_YOURS,
		       "unknown task");
	task.id[0] = '\0';
	expect_verdict(&agent, &task, MECH_ECDSA, NOW, STINT_E_NOT_YOURS,
		       "unknown task");
}

static void
test_other_agent(void **state)
{
	(void)state;
	snprintf(task.agent, sizeof(task.agent), "payroll");
	expect_verdict(&agent, &task, MECH_ECDSA, NOW, STINT_E_NOT_YOURS,
		       "task belongs to another agent");
	/* A name that is a prefix of the other is still another agent. */
	snprintf(task.agent, sizeof(task.agent), "billing2");
	expect_verdict(&agent, &task, MECH_ECDSA, NOW, STINT_E_NOT_YOURS,
		       "task belongs to another agent");
}

static void
test_ended(void **state)
{
	(void)state;
	task.state = STINT_TASK_ENDED;
	expect_verdict(&agent, &task, MECH_ECDSA, NOW, STINT_E_NOT_LIVE,
		       "task ended");
	task.state = STINT_TASK_EXPIRED;
	expect_verdict(&agent, &task, MECH_ECDSA, NOW, STINT_E_NOT_LIVE,
		       "task expired");
}

static void
test_deadline(void **state)
{
	(void)state;
	/* One second before the deadline signs; at the deadline it does not. */
	expect_verdict(&agent, &task, MECH_ECDSA, task.not_after - 1, STINT_OK,
		       NULL);
	expect_verdict(&agent, &task, MECH_ECDSA, task.not_after,
		       STINT_E_NOT_LIVE, "task past its deadline");
	expect_verdict(&agent, &task, MECH_ECDSA, task.not_after + 3600,
		       STINT_E_NOT_LIVE, "task past its deadline");
}

static void
test_mechanism(void **state)
{
	(void)state;
	expect_verdict(&agent, &task, MECH_RSA, NOW, STINT_E_MECHANISM,
		       "mechanism not allowed for this key");
	task.mechs[1] = MECH_PSS;
	task.mechs[2] = MECH_RSA;
	task.n_mechs = 3;
	expect_verdict(&agent, &task, MECH_RSA, NOW, STINT_OK, NULL);
	/* Entries beyond n_mechs are not allowed. */
	task.n_mechs = 2;
	expect_verdict(&agent, &task, MECH_RSA, NOW, STINT_E_MECHANISM,
		       "mechanism not allowed for this key");
	task.n_mechs = 0;
	expect_verdict(&agent, &task, MECH_ECDSA, NOW, STINT_E_MECHANISM,
		       "mechanism not allowed for this key");
}

static void
test_budget(void **state)
{
	(void)state;
	task.used_sigs = 2;
	expect_verdict(&agent, &task, MECH_ECDSA, NOW, STINT_OK, NULL);
	task.used_sigs = 3;
	expect_verdict(&agent, &task, MECH_ECDSA, NOW, STINT_E_BUDGET,
		       "signature budget spent");
	task.used_sigs = 4;
	expect_verdict(&agent, &task, MECH_ECDSA, NOW, STINT_E_BUDGET,
		       "signature budget spent");
	/* max_sigs 0 means unlimited. */
	task.max_sigs = 0;
	task.used_sigs = UINT64_MAX;
	expect_verdict(&agent, &task, MECH_ECDSA, NOW, STINT_OK, NULL);
}

/* A stranger learns nothing about a task: another agent's task that is
 * also ended, expired, past its deadline, the wrong mechanism and spent
 * reports only "not yours". */
static void
test_order_stranger_first(void **state)
{
	(void)state;
	snprintf(task.agent, sizeof(task.agent), "payroll");
	task.state = STINT_TASK_EXPIRED;
	task.used_sigs = task.max_sigs;
	expect_verdict(&agent, &task, MECH_RSA, task.not_after + 10,
		       STINT_E_NOT_YOURS, "task belongs to another agent");
	expect_verdict(NULL, &task, MECH_RSA, task.not_after + 10,
		       STINT_E_NO_AGENT, "peer maps to no agent");
}

static void
test_order_state_before_deadline(void **state)
{
	(void)state;
	/* Ended and past its deadline: the state is reported. */
	task.state = STINT_TASK_ENDED;
	expect_verdict(&agent, &task, MECH_ECDSA, task.not_after + 1,
		       STINT_E_NOT_LIVE, "task ended");
}

static void
test_order_deadline_before_mechanism(void **state)
{
	(void)state;
	task.used_sigs = task.max_sigs;
	expect_verdict(&agent, &task, MECH_RSA, task.not_after,
		       STINT_E_NOT_LIVE, "task past its deadline");
}

static void
test_order_mechanism_before_budget(void **state)
{
	(void)state;
	task.used_sigs = task.max_sigs;
	expect_verdict(&agent, &task, MECH_RSA, NOW, STINT_E_MECHANISM,
		       "mechanism not allowed for this key");
	expect_verdict(&agent, &task, MECH_ECDSA, NOW, STINT_E_BUDGET,
		       "signature budget spent");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_allowed, setup),
		cmocka_unit_test_setup(test_no_agent, setup),
		cmocka_unit_test_setup(test_unknown_task, setup),
		cmocka_unit_test_setup(test_other_agent, setup),
		cmocka_unit_test_setup(test_ended, setup),
		cmocka_unit_test_setup(test_deadline, setup),
		cmocka_unit_test_setup(test_mechanism, setup),
		cmocka_unit_test_setup(test_budget, setup),
		cmocka_unit_test_setup(test_order_stranger_first, setup),
		cmocka_unit_test_setup(test_order_state_before_deadline, setup),
		cmocka_unit_test_setup(test_order_deadline_before_mechanism,
				       setup),
		cmocka_unit_test_setup(test_order_mechanism_before_budget,
				       setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
