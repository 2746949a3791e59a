/*
 * Test-only stintd (tests/integration/stintd-fault): the same program,
 * linked with -Wl,--wrap=stint_ca_test_fault so that this function
 * replaces the production one, which always says "no fault". It injects
 * the evidence fault named by STINT_TEST_EVIDENCE_FAULT ("flip" or
 * "nonce"), for tests/integration/ca.sh: a failed verification must
 * create no task. The installed stintd never reads that variable.
 */
#include <stdlib.h>

#include "attest/ca.h"
#include "common/log.h"

const char *__wrap_stint_ca_test_fault(const struct stint_ca *ca);

const char *
__wrap_stint_ca_test_fault(const struct stint_ca *ca)
{
	const char *fault = getenv("STINT_TEST_EVIDENCE_FAULT");

	(void)ca;
	if (fault == NULL || fault[0] == '\0')
		return NULL;
	log_warn("STINT_TEST_EVIDENCE_FAULT=%s: this task start will fail "
		 "evidence verification",
		 fault);
	return fault;
}
