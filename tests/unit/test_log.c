/*
 * The log rate limiter: a burst per window, a count of what was dropped
 * handed to the next line that may be logged, and a fresh window after the
 * interval (or if the clock steps back).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/log.h"

static void
test_burst_then_drop(void **state)
{
	struct stint_ratelimit rl = STINT_RATELIMIT_INIT(10, 3);
	unsigned long dropped = 99;
	int i;

	(void)state;
	for (i = 0; i < 3; i++) {
		assert_true(stint_ratelimit_at(&rl, 100, &dropped));
		assert_int_equal(dropped, 0);
	}
	for (i = 0; i < 50; i++)
		assert_false(stint_ratelimit_at(&rl, 105, &dropped));
	/* Still inside the window: nothing more. */
	assert_false(stint_ratelimit_at(&rl, 109, &dropped));
	/* A new window: the first line learns what was dropped. */
	assert_true(stint_ratelimit_at(&rl, 110, &dropped));
	assert_int_equal(dropped, 51);
	assert_true(stint_ratelimit_at(&rl, 110, &dropped));
	assert_int_equal(dropped, 0);
}

static void
test_quiet_sender_never_limited(void **state)
{
	struct stint_ratelimit rl = STINT_RATELIMIT_INIT(10, 2);
	unsigned long dropped;
	int64_t t;

	(void)state;
	for (t = 0; t < 1000; t += 6) {
		assert_true(stint_ratelimit_at(&rl, t, &dropped));
		assert_int_equal(dropped, 0);
	}
}

static void
test_clock_back_starts_window(void **state)
{
	struct stint_ratelimit rl = STINT_RATELIMIT_INIT(60, 1);
	unsigned long dropped;

	(void)state;
	assert_true(stint_ratelimit_at(&rl, 1000, &dropped));
	assert_false(stint_ratelimit_at(&rl, 1001, &dropped));
	/* A clock that went back must not silence the log for an hour. */
	assert_true(stint_ratelimit_at(&rl, 10, &dropped));
	assert_int_equal(dropped, 1);
}

static void
test_wall_clock_variant(void **state)
{
	struct stint_ratelimit rl = STINT_RATELIMIT_INIT(3600, 2);
	unsigned long dropped;

	(void)state;
	assert_true(stint_ratelimit(&rl, &dropped));
	assert_true(stint_ratelimit(&rl, &dropped));
	assert_false(stint_ratelimit(&rl, &dropped));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_drop),
		cmocka_unit_test(test_quiet_sender_never_limited),
		cmocka_unit_test(test_clock_back_starts_window),
		cmocka_unit_test(test_wall_clock_variant),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
