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

#endif
