/*
 * Signature budgets reserved in blocks (issue 14). A budgeted task's
 * used_sigs row in state.db is a reservation high-water mark, not a count:
 * the SIGN gate counts signatures in memory (under the store's mutex) and
 * commits one write only when the count reaches the mark, raising it by a
 * block. A crash of stintd leaves the mark in state.db, and the restarted
 * stintd treats it as used: it can only lose reservations nobody used,
 * never hand out more than the budget. The end of a task, a delegation
 * from it and a clean shutdown write the actual count back (settle).
 *
 * The arithmetic here is pure; gate.c and the store apply it.
 */
#ifndef STINT_ATTEST_BUDGET_H
#define STINT_ATTEST_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

/* [stintd] budget_block: default, and the bounds accepted. 1 commits
 * every signature (the behaviour before blocks). */
#define STINT_BUDGET_BLOCK_DEFAULT 64u
#define STINT_BUDGET_BLOCK_MAX     65536u

/* Whether a signature fits in the reservation already committed (count
 * used of mark): no write needed. */
static inline bool
stint_budget_in_block(uint64_t used, uint64_t mark)
{
	return used < mark;
}

/* How far to raise a mark that the count has reached (used == mark) on a
 * task with budget max: one block, never past the budget, at least one
 * (block 0 counts as 1); 0 once the budget is spent. */
uint64_t stint_budget_step(uint64_t mark, uint64_t max, uint32_t block);

/* Signatures reserved and not used (what a settle gives back). */
static inline uint64_t
stint_budget_unused(uint64_t used, uint64_t mark)
{
	return mark > used ? mark - used : 0;
}

#endif
