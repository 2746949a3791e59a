# shellcheck shell=bash
# Statistics for the benchmark scripts (tests/bench/*.sh), sourced after
# tests/integration/lib.sh:
#
#	. "$top_srcdir/tests/bench/stats.sh"
#
# A series is the function's arguments, one number each. Words that are not
# numbers (an empty string, "n/a", a failed run's output) are left out, so
# an empty series -- a path that failed every round -- prints n/a and never
# looks like a zero rate.

# Keep only the arguments that are numbers, one a line.
stats_numbers()
{
	[ $# -gt 0 ] || return 0
	printf '%s\n' "$@" |
		grep -E '^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$' || :
}

# median_p DIGITS VALUES...: the median to DIGITS decimals, or n/a.
median_p()
{
	local digits=$1

	shift
	stats_numbers "$@" | sort -g | awk -v d="$digits" '{ v[NR] = $1 }
	END {
		if (NR == 0) { print "n/a"; exit }
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.*f\n", d, m
	}'
}

# median VALUES...: the median, whole, or n/a.
median()
{
	median_p 0 "$@"
}

# minmax VALUES...: "lowest-highest", whole, or - for an empty series.
minmax()
{
	stats_numbers "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 }
	END { if (NR) printf "%.0f-%.0f", lo, hi; else printf "-" }'
}

# ratio A B [DIGITS]: A / B to DIGITS (2) decimals, or n/a when either side
# is missing, not a number or not above zero.
ratio()
{
	awk -v a="$1" -v b="$2" -v d="${3:-2}" 'function num(x) {
		return x ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/
	}
	BEGIN {
		if (num(a) && num(b) && a + 0 > 0 && b + 0 > 0)
			printf "%.*f", d, a / b
		else printf "n/a"
	}'
}

# pcts FILE: count, p50, p99 (nearest rank) and max in ms of a file of
# microseconds, one a line; n/a for each figure when the file has none.
pcts()
{
	# shellcheck disable=SC2046
	stats_numbers $(cat "$1" 2>/dev/null) | sort -g | awk '{ v[NR] = $1 }
	END {
		if (NR == 0) {
			printf "n=0 p50_ms=n/a p99_ms=n/a max_ms=n/a"
			exit
		}
		i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
		printf "n=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f", NR,
		    v[i50] / 1000, v[i99] / 1000, v[NR] / 1000
	}'
}
