/* Block reservation of signature budgets: see budget.h. */

#include "attest/budget.h"

uint64_t
stint_budget_step(uint64_t mark, uint64_t max, uint32_t block)
{
	uint64_t left;

	if (mark >= max)
		return 0;
	left = max - mark;
	if (block == 0)
		block = 1;
	return left < block ? left : block;
}
