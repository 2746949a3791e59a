/*
 * The SIGN decision, as a pure function of facts already read from the
 * authoritative store: unit-testable, no I/O.
 */
#ifndef STINT_ATTEST_POLICY_H
#define STINT_ATTEST_POLICY_H

#include <stdint.h>

#include "attest/store.h"

/* Returns STINT_OK or the wire status explaining the refusal; *reason gets a
 * short static text for the audit log. agent NULL: peer maps to no agent. */
int stint_policy_sign(const struct stint_agent *agent,
		      const struct stint_task *task, uint64_t mech, int64_t now,
		      const char **reason);

#endif
