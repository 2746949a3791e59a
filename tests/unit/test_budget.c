/* budget: signature budgets reserved in blocks (attest/budget.h). The
 * arithmetic, then the store and gate with a block of 8: one committed
 * write per block, the actual count shown and written back at the end,
 * a crash costing only the unused reservation, and delegation from a task
 * holding a reservation. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "attest/budget.h"
#include "attest/config.h"
#include "tests/unit/store_fixture.h"

#define BLOCK 8

static void
test_step(void **state)
{
	(void)state;
	/* A block, never past the budget, at least one. */
	assert_int_equal(stint_budget_step(0, 100, 64), 64);
	assert_int_equal(stint_budget_step(64, 100, 64), 36);
	assert_int_equal(stint_budget_step(99, 100, 64), 1);
	assert_int_equal(stint_budget_step(100, 100, 64), 0);
	assert_int_equal(stint_budget_step(150, 100, 64), 0);
	assert_int_equal(stint_budget_step(0, 3, 64), 3);
	/* Block 1 (and 0) commit every signature. */
	assert_int_equal(stint_budget_step(5, 100, 1), 1);
	assert_int_equal(stint_budget_step(5, 100, 0), 1);
	assert_int_equal(stint_budget_step(0, UINT64_MAX, 65536), 65536);
	assert_int_equal(stint_budget_step(UINT64_MAX - 2, UINT64_MAX, 64), 2);
	/* In the block while below the mark. */
	assert_true(stint_budget_in_block(0, 1));
	assert_false(stint_budget_in_block(1, 1));
	assert_false(stint_budget_in_block(2, 1));
	assert_int_equal(stint_budget_unused(3, 8), 5);
	assert_int_equal(stint_budget_unused(8, 8), 0);
	assert_int_equal(stint_budget_unused(9, 8), 0);
}

/* [stintd] budget_block: default 64, 1 to 65536, anything else refused
 * naming the key. */
static int
load_block(const char *value, struct stint_config *cfg, char *err,
	   size_t errlen)
{
	char dir[] = "/tmp/stint-test-budget.XXXXXX", path[64];
	FILE *fp;
	int r;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/stint.conf", dir);
	assert_non_null(fp = fopen(path, "w"));
	if (value != NULL)
		fprintf(fp, "[stintd]\nbudget_block = %s\n", value);
	fclose(fp);
	r = stint_config_load(path, cfg, err, errlen);
	unlink(path);
	rmdir(dir);
	return r;
}

static void
test_config_key(void **state)
{
	static const char *const bad[] = {"0", "65537", "-1", "8x", ""};
	struct stint_config cfg;
	char err[512];
	size_t i;

	(void)state;
	assert_int_equal(load_block(NULL, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.budget_block, STINT_BUDGET_BLOCK_DEFAULT);
	assert_int_equal(load_block("1", &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.budget_block, 1);
	assert_int_equal(load_block("65536", &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.budget_block, 65536);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(load_block(bad[i], &cfg, err, sizeof(err)),
				 -1);
		assert_non_null(strstr(err, "budget_block"));
	}
}

static int
setup_block(void **state)
{
	struct fixture *f;

	if (setup(state) != 0)
		return -1;
	f = *state;
	stint_store_set_budget_block(f->s, BLOCK);
	return 0;
}

static void
reopen_block(struct fixture *f)
{
	reopen(f);
	stint_store_set_budget_block(f->s, BLOCK);
}

static void
sign_n(struct fixture *f, const char *id, uid_t uid, int n, int want)
{
	const char *why;
	int i;

	for (i = 0; i < n; i++)
		assert_int_equal(gate(f, uid, uid, id, MECH_ECDSA, NOW, &why),
				 want);
}

/* One write per block; the budget exact; the count shown, not the mark. */
static void
test_blocks(void **state)
{
	struct fixture *f = *state;
	struct stint_gate_result res;
	uint64_t w0;

	add_agent(f, "billing", 1000, -1);
	add_task(f, "t-1", "billing", 20);
	w0 = gate_stats(f).sql;
	sign_n(f, "t-1", 1000, 3, STINT_OK);
	assert_int_equal(gate_stats(f).sql - w0, 1);
	assert_int_equal(db_used_sigs(f, "t-1"), BLOCK);
	assert_int_equal(used_sigs(f, "t-1"), 3);
	sign_n(f, "t-1", 1000, 5, STINT_OK); /* 8: the block is used up */
	assert_int_equal(gate_stats(f).sql - w0, 1);
	res = sign_gate(f, 1000, 1000, "t-1", MECH_ECDSA, NOW);
	assert_int_equal(res.decision, STINT_OK);
	assert_int_equal(res.task.used_sigs, 9);
	assert_int_equal(res.budget_left, 11);
	assert_int_equal(gate_stats(f).sql - w0, 2);
	assert_int_equal(db_used_sigs(f, "t-1"), 2 * BLOCK);
	/* The last block is what is left of the budget (4), not 8. */
	sign_n(f, "t-1", 1000, 11, STINT_OK);
	assert_int_equal(gate_stats(f).sql - w0, 3);
	assert_int_equal(db_used_sigs(f, "t-1"), 20);
	sign_n(f, "t-1", 1000, 3, STINT_E_BUDGET);
	assert_int_equal(used_sigs(f, "t-1"), 20);
}

/* Ending records the actual count; so do a delegation and a close. */
static void
test_settle(void **state)
{
	struct fixture *f = *state;

	add_agent(f, "billing", 1000, -1);
	add_task(f, "t-1", "billing", 20);
	add_task(f, "t-2", "billing", 20);
	sign_n(f, "t-1", 1000, 3, STINT_OK);
	sign_n(f, "t-2", 1000, 5, STINT_OK);
	assert_int_equal(stint_store_task_end(f->s, "t-1", STINT_TASK_ENDED,
					      "done", NOW),
			 0);
	assert_int_equal(db_used_sigs(f, "t-1"), 3);
	assert_int_equal(used_sigs(f, "t-1"), 3);
	assert_int_equal(db_used_sigs(f, "t-2"), BLOCK);
	reopen_block(f); /* a clean stop gives the reservation back */
	assert_int_equal(db_used_sigs(f, "t-2"), 5);
	assert_int_equal(used_sigs(f, "t-2"), 5);
	sign_n(f, "t-2", 1000, 15, STINT_OK);
	sign_n(f, "t-2", 1000, 1, STINT_E_BUDGET);
}

/* A crash leaves the mark, and the mark counts as used: the task can
 * never sign more than its budget, and loses at most the unused part of
 * one block. The crash: the in-memory counts dropped unwritten (the index
 * switched off), as a kill -9 drops them (budget-blocks.sh kills). */
static void
test_crash(void **state)
{
	struct fixture *f = *state;

	add_agent(f, "billing", 1000, -1);
	add_task(f, "t-1", "billing", 20);
	sign_n(f, "t-1", 1000, 9, STINT_OK); /* mark 16 */
	assert_int_equal(db_used_sigs(f, "t-1"), 2 * BLOCK);
	assert_int_equal(stint_gate_index(f->s, false), STINT_STORE_OK);
	stint_store_close(f->s);
	f->s = NULL;
	reopen_block(f);
	assert_int_equal(used_sigs(f, "t-1"), 2 * BLOCK);
	sign_n(f, "t-1", 1000, 4, STINT_OK);
	sign_n(f, "t-1", 1000, 1, STINT_E_BUDGET);
	assert_int_equal(db_used_sigs(f, "t-1"), 20);
}

/* deleg: a child's reservation is checked against the parent's actual
 * count, not its mark, and an ended child gives back exactly what it did
 * not use. */
static void
test_delegation(void **state)
{
	struct fixture *f = *state;
	char(*desc)[STINT_TASK_ID_MAX + 1] = NULL;
	struct stint_task t = make_task("t-c", "sub", 15);
	char err[256];
	size_t n = 0;

	add_agent(f, "lead", 1000, -1);
	add_agent(f, "sub", 1001, -1);
	add_task(f, "t-p", "lead", 20);
	sign_n(f, "t-p", 1000, 3, STINT_OK); /* mark 8 */
	snprintf(t.parent_id, sizeof(t.parent_id), "%s", "t-p");
	/* Refused (3 + 18 > 20): the parent keeps its count and its mark. */
	t.reserved = 18;
	assert_int_equal(stint_store_task_insert(f->s, &t, err, sizeof(err)),
			 STINT_STORE_NOT_FOUND);
	assert_int_equal(used_sigs(f, "t-p"), 3);
	assert_int_equal(db_used_sigs(f, "t-p"), BLOCK);
	/* 3 + 15 fits 20; 8 + 15 would not */
	t.reserved = 15;
	assert_int_equal(stint_store_task_insert(f->s, &t, err, sizeof(err)),
			 STINT_STORE_OK);
	assert_int_equal(used_sigs(f, "t-p"), 18);
	assert_int_equal(db_used_sigs(f, "t-p"), 18);
	sign_n(f, "t-c", 1001, 2, STINT_OK); /* the child's mark 8 */
	sign_n(f, "t-p", 1000, 2, STINT_OK); /* the parent's last 2 */
	sign_n(f, "t-p", 1000, 1, STINT_E_BUDGET);
	assert_int_equal(stint_store_tree_end(f->s, "t-c", STINT_TASK_ENDED,
					      "done", "parent ended", NOW,
					      &desc, &n),
			 STINT_STORE_OK);
	free(desc);
	assert_int_equal(used_sigs(f, "t-c"), 2);
	/* 3 + 2 own, 2 through the child: 13 back */
	assert_int_equal(used_sigs(f, "t-p"), 7);
	assert_int_equal(db_used_sigs(f, "t-p"), 7);
	sign_n(f, "t-p", 1000, 13, STINT_OK);
	sign_n(f, "t-p", 1000, 1, STINT_E_BUDGET);
	reopen_block(f);
	assert_int_equal(used_sigs(f, "t-p"), 20);
	sign_n(f, "t-p", 1000, 1, STINT_E_BUDGET);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_step),
		cmocka_unit_test(test_config_key),
		cmocka_unit_test_setup_teardown(test_blocks, setup_block,
						teardown),
		cmocka_unit_test_setup_teardown(test_settle, setup_block,
						teardown),
		cmocka_unit_test_setup_teardown(test_crash, setup_block,
						teardown),
		cmocka_unit_test_setup_teardown(test_delegation, setup_block,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
