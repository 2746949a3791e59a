#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/duration.h"

static uint64_t
parse(const char *s)
{
	uint64_t v = 0;

	assert_int_equal(stint_duration_parse(s, &v), 0);
	return v;
}

static void
test_parse_valid(void **state)
{
	(void)state;
	assert_int_equal(parse("90s"), 90);
	assert_int_equal(parse("15m"), 900);
	assert_int_equal(parse("1h"), 3600);
	assert_int_equal(parse("2h30m"), 9000);
	assert_int_equal(parse("1h0m5s"), 3605);
	assert_int_equal(parse("45"), 45);
	assert_int_equal(parse("1d"), 86400);
	assert_int_equal(parse("1d2h3m4s"), 86400 + 7200 + 180 + 4);
	assert_int_equal(parse("0h10m"), 600);
	assert_int_equal(parse("87840h"), 87840ull * 3600); /* 10 years */
}

static void
test_parse_invalid(void **state)
{
	static const char *const bad[] = {
		"",
		"0",
		"0s",
		"0h0m",
		"-5m",
		"+5m",
		"5x",
		"m",
		"h1",
		"5 m",
		" 5m",
		"5m ",
		"5M",
		"1.5h",
		"30m2h",
		"1h1h",
		"5m5",
		"1hm",
		"10y",
		"3661d",
		"87841h",
		"999999999999999999999s",
		"18446744073709551616",
		"18446744073709551615s",
		"307445734561825861m", /* n * 60 wraps around */
	};
	uint64_t v = 12345;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (stint_duration_parse(bad[i], &v) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(stint_duration_parse(NULL, &v), -1);
	assert_int_equal(v, 12345); /* untouched on failure */
}

static void
test_format(void **state)
{
	static const struct {
		uint64_t secs;
		const char *text;
	} cases[] = {
		{3600, "1h"},        {900, "15m"}, {5400, "1h30m"},
		{90, "1m30s"},       {45, "45s"},  {86400, "1d"},
		{90061, "1d1h1m1s"}, {0, "0s"},    {7205, "2h5s"},
	};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		stint_duration_format(cases[i].secs, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].text);
	}
	/* A too-small buffer still ends in NUL. */
	stint_duration_format(90061, buf, 4);
	assert_true(buf[3] == '\0' || buf[2] == '\0' || buf[1] == '\0' ||
		    buf[0] == '\0');
}

static void
test_round_trip(void **state)
{
	char buf[32];

	(void)state;
	/* Every value up to a day and a spread beyond it. */
	for (uint64_t s = 1; s <= 86400 * 2; s += (s < 4000 ? 1 : 97)) {
		stint_duration_format(s, buf, sizeof(buf));
		assert_int_equal(parse(buf), s);
	}
	stint_duration_format(10ull * 366 * 86400, buf, sizeof(buf));
	assert_int_equal(parse(buf), 10ull * 366 * 86400);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
