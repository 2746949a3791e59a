/* Delegation rules (attest/delegate.c): each rule refused on its own, the
 * order they run in, the budget reservation, the chain's max-depth, the
 * default audiences and the agent fields. Pure functions, no mocks. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "attest/delegate.h"

#define NOW        1700000000
#define MECH_ECDSA 0x1041u
#define MECH_RSA   0x1u

static struct stint_task parent;
static struct stint_agent lead, sub;
static struct stint_delegate_facts facts;
static struct stint_delegate_ask ask;

static int
setup(void **state)
{
	(void)state;
	memset(&parent, 0, sizeof(parent));
	snprintf(parent.id, sizeof(parent.id), "t-parent");
	snprintf(parent.agent, sizeof(parent.agent), "lead");
	parent.state = STINT_TASK_LIVE;
	parent.not_after = NOW + 600;
	parent.max_sigs = 100;
	parent.used_sigs = 30;
	parent.mechs[0] = MECH_ECDSA;
	parent.n_mechs = 1;
	snprintf(parent.audiences, sizeof(parent.audiences), "a,b");
	memset(&lead, 0, sizeof(lead));
	snprintf(lead.name, sizeof(lead.name), "lead");
	snprintf(lead.delegate_to, sizeof(lead.delegate_to), "sub,sib");
	lead.max_depth = 2;
	memset(&sub, 0, sizeof(sub));
	snprintf(sub.name, sizeof(sub.name), "sub");
	facts = (struct stint_delegate_facts){.parent = &parent,
					      .delegator = &lead,
					      .child = &sub,
					      .chain_max_depth = 2};
	ask = (struct stint_delegate_ask){
		.agent = "sub", .not_after = NOW + 300, .max_sigs = 10};
	return 0;
}

static void
expect(int status, const char *check, const char *why)
{
	struct stint_delegate_refusal no;

	assert_int_equal(stint_delegate_check(&facts, &ask, &no), status);
	assert_int_equal(no.status, status);
	if (check == NULL) {
		assert_null(no.check);
		return;
	}
	assert_string_equal(no.check, check);
	assert_non_null(strstr(no.why, why));
}

static void
test_allowed(void **state)
{
	static const uint64_t ecdsa[] = {MECH_ECDSA};

	(void)state;
	expect(STINT_OK, NULL, NULL);
	ask.not_after = parent.not_after; /* equal is within */
	ask.max_sigs = 70;                /* all that is left */
	ask.mechs = ecdsa;
	ask.n_mechs = 1;
	ask.audiences = "b";
	expect(STINT_OK, NULL, NULL);
}

static void
test_agent_not_in_delegate_to(void **state)
{
	(void)state;
	ask.agent = "other";
	expect(STINT_E_DENIED, "agent", "may not delegate to agent 'other'");
	ask.agent = "su"; /* a prefix is not a name */
	expect(STINT_E_DENIED, "agent", "may not delegate");
	lead.delegate_to[0] = '\0';
	ask.agent = "sub";
	expect(STINT_E_DENIED, "agent", "delegate-to list: none");
}

static void
test_depth(void **state)
{
	(void)state;
	parent.depth = 2;
	expect(STINT_E_LIMIT, "depth", "depth 3 is above the max-depth 2");
	parent.depth = 0;
	facts.chain_max_depth = 0; /* an agent of the chain allows none */
	expect(STINT_E_LIMIT, "depth", "depth 1 is above the max-depth 0");
}

static void
test_deadline(void **state)
{
	(void)state;
	ask.not_after = parent.not_after + 1;
	expect(STINT_E_LIMIT, "deadline", "after the parent's deadline");
}

static void
test_mechanism(void **state)
{
	static const uint64_t wider[] = {MECH_ECDSA, MECH_RSA};

	(void)state;
	ask.mechs = wider;
	ask.n_mechs = 2;
	expect(STINT_E_MECHANISM, "mechanism", "mechanism 0x1 is not one");
}

static void
test_audience(void **state)
{
	(void)state;
	ask.audiences = "a,c";
	expect(STINT_E_LIMIT, "audience", "audience 'c' is not one");
	parent.audiences[0] = '\0';
	ask.audiences = "a";
	expect(STINT_E_LIMIT, "audience", "audiences (none)");
	ask.audiences = "";
	expect(STINT_OK, NULL, NULL);
}

static void
test_budget(void **state)
{
	(void)state;
	ask.max_sigs = 71;
	expect(STINT_E_BUDGET, "budget",
	       "above the parent's remaining budget 70");
	ask.max_sigs = 0;
	expect(STINT_E_BUDGET, "budget", "the child needs one too");
	parent.used_sigs = parent.max_sigs;
	ask.max_sigs = 1;
	expect(STINT_E_BUDGET, "budget", "remaining budget 0");
	/* An unlimited parent: limited or unlimited children alike. */
	parent.max_sigs = 0;
	expect(STINT_OK, NULL, NULL);
	ask.max_sigs = 0;
	expect(STINT_OK, NULL, NULL);
}

/* The first rule broken is the one reported, in a fixed order. */
static void
test_order(void **state)
{
	(void)state;
	ask.agent = "other";
	ask.not_after = parent.not_after + 1;
	ask.max_sigs = 1000;
	expect(STINT_E_DENIED, "agent", "may not delegate");
	ask.agent = "sub";
	expect(STINT_E_LIMIT, "deadline", "deadline");
	ask.not_after = NOW;
	expect(STINT_E_BUDGET, "budget", "budget");
}

static void
test_reserve(void **state)
{
	(void)state;
	assert_int_equal(stint_delegate_reserve(&parent, 10), 10);
	parent.max_sigs = 0;
	assert_int_equal(stint_delegate_reserve(&parent, 10), 0);
	assert_int_equal(stint_delegate_reserve(&parent, 0), 0);
}

static void
test_min_depth(void **state)
{
	struct stint_agent chain[3];

	(void)state;
	memset(chain, 0, sizeof(chain));
	chain[0].max_depth = 3;
	chain[1].max_depth = 1;
	chain[2].max_depth = 2;
	assert_int_equal(stint_delegate_min_depth(chain, 3), 1);
	assert_int_equal(stint_delegate_min_depth(chain, 1), 3);
	assert_int_equal(stint_delegate_min_depth(chain, 0), 0);
}

static void
test_default_audiences(void **state)
{
	char buf[STINT_AUDIENCES_TEXT_MAX + 1];

	(void)state;
	stint_delegate_audiences("a,b,c", "c,a", buf, sizeof(buf));
	assert_string_equal(buf, "a,c");
	stint_delegate_audiences("a,b", "", buf, sizeof(buf));
	assert_string_equal(buf, "");
	stint_delegate_audiences("", "a", buf, sizeof(buf));
	assert_string_equal(buf, "");
}

static void
test_agent_fields(void **state)
{
	struct stint_agent_add_req ar;
	struct stint_agent a;

	(void)state;
	memset(&ar, 0, sizeof(ar));
	memset(&a, 0, sizeof(a));
	snprintf(ar.delegate_to, sizeof(ar.delegate_to), "sub,sib");
	ar.max_depth = 2;
	assert_null(stint_delegate_agent_set(&ar, &a));
	assert_string_equal(a.delegate_to, "sub,sib");
	assert_int_equal(a.max_depth, 2);
	snprintf(ar.delegate_to, sizeof(ar.delegate_to), "sub,");
	assert_non_null(stint_delegate_agent_set(&ar, &a));
	snprintf(ar.delegate_to, sizeof(ar.delegate_to), "a b");
	assert_non_null(stint_delegate_agent_set(&ar, &a));
	snprintf(ar.delegate_to, sizeof(ar.delegate_to), ",x");
	assert_non_null(stint_delegate_agent_set(&ar, &a));
	ar.delegate_to[0] = '\0';
	ar.max_depth = STINT_DEPTH_MAX + 1;
	assert_non_null(stint_delegate_agent_set(&ar, &a));
	assert_true(stint_delegate_to_has("sub,sib", "sib"));
	assert_false(stint_delegate_to_has("sub,sib", "si"));
	assert_false(stint_delegate_to_has("", "sub"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_allowed, setup),
		cmocka_unit_test_setup(test_agent_not_in_delegate_to, setup),
		cmocka_unit_test_setup(test_depth, setup),
		cmocka_unit_test_setup(test_deadline, setup),
		cmocka_unit_test_setup(test_mechanism, setup),
		cmocka_unit_test_setup(test_audience, setup),
		cmocka_unit_test_setup(test_budget, setup),
		cmocka_unit_test_setup(test_order, setup),
		cmocka_unit_test_setup(test_reserve, setup),
		cmocka_unit_test_setup(test_min_depth, setup),
		cmocka_unit_test_setup(test_default_audiences, setup),
		cmocka_unit_test_setup(test_agent_fields, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
