/* attest/revoke_lock.c: the stripe of an id (revoke-stripes.sh computes
 * it in shell and relies on the same value), a drain that does not wait
 * for a reader of another stripe, the kill switch's all-or-nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <pthread.h>

#include "attest/revoke_lock.h"

static void
test_stripe_value(void **state)
{
	(void)state;
	assert_int_equal(
		stint_revoke_stripe("t-0123456789abcdef0123456789abcdef"), 42);
	assert_int_equal(stint_revoke_stripe(""), 2166136261u % 64);
}

/* Two ids on different stripes: with a SIGN of one in flight (held here),
 * the other's drain returns; the held one's stripe cannot be written. */
static void
test_drain_other_stripe(void **state)
{
	struct stint_revoke_lock *rl = stint_revoke_lock_new();
	char ids[2][STINT_TASK_ID_MAX + 1] = {"t-a", "t-b"};
	unsigned s;

	(void)state;
	assert_non_null(rl);
	while (stint_revoke_stripe(ids[1]) == stint_revoke_stripe(ids[0]))
		ids[1][2]++;
	s = stint_revoke_read(rl, ids[0]);
	stint_revoke_drain(rl, NULL, &ids[1], 1);
	assert_int_equal(pthread_rwlock_trywrlock(&rl->stripe[s].l), EBUSY);
	stint_revoke_read_unlock(rl, s);
	stint_revoke_drain(rl, ids[0], NULL, 0);
	stint_revoke_drain_all(rl);
	stint_revoke_lock_all(rl);
	assert_int_equal(pthread_rwlock_tryrdlock(&rl->stripe[0].l), EBUSY);
	assert_int_equal(pthread_rwlock_tryrdlock(&rl->start.l), EBUSY);
	stint_revoke_unlock_all(rl);
	stint_revoke_start_read(rl);
	stint_revoke_start_unlock(rl);
	stint_revoke_lock_free(rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stripe_value),
		cmocka_unit_test(test_drain_other_stripe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
