/*
 * Agent selectors: the facts a peer process must show to act as an agent,
 * besides its uid and gid (docs/identity.md). An empty string is a
 * selector that is not set. Shared by the admin protocol, the store and
 * stintd's peer matching.
 */
#ifndef STINT_COMMON_SELECTORS_H
#define STINT_COMMON_SELECTORS_H

#define STINT_SEL_PATH_MAX  512 /* --exe, --cgroup */
#define STINT_SEL_UNIT_MAX  255 /* --unit */
#define STINT_SEL_LABEL_MAX 255 /* --lsm-label */

struct stint_selectors {
	char exe[STINT_SEL_PATH_MAX + 1];        /* absolute path, exact */
	char exe_sha256[65];                     /* lowercase hex */
	char cgroup[STINT_SEL_PATH_MAX + 1];     /* this cgroup or below it */
	char unit[STINT_SEL_UNIT_MAX + 1];       /* NAME.service / NAME.scope */
	char lsm_label[STINT_SEL_LABEL_MAX + 1]; /* SO_PEERSEC, exact */
};

/* Which of an agent's selectors a peer matched (the audit's peer
 * "matched" list, in this order): one bit each. */
enum stint_sel_bit {
	STINT_SEL_M_UID = 1u << 0,
	STINT_SEL_M_GID = 1u << 1,
	STINT_SEL_M_EXE = 1u << 2,
	STINT_SEL_M_EXE_SHA256 = 1u << 3,
	STINT_SEL_M_CGROUP = 1u << 4,
	STINT_SEL_M_UNIT = 1u << 5,
	STINT_SEL_M_LSM_LABEL = 1u << 6,
};
#define STINT_SEL_M_COUNT 7

#endif
