/*
 * A stored task as the task map of a reply (common/proto.h's
 * stint_task_info): what TASK_START, TASK_SHOW and TASK_LIST send on
 * admin.sock, and the public facts TASK_SHOW sends on agent.sock.
 */
#ifndef STINT_ATTEST_TASK_INFO_H
#define STINT_ATTEST_TASK_INFO_H

#include "attest/store.h"
#include "common/proto.h"

enum stintd_task_view {
	STINTD_TASK_FULL,   /* admin.sock: everything */
	STINTD_TASK_LIST,   /* admin.sock list: everything but the cert */
	STINTD_TASK_PUBLIC, /* agent.sock: no reason, counters, intent,
			       bind, audiences or tree */
};

/* Fills out from t; its key and certificate are borrowed from t. */
void stintd_task_info(const struct stint_task *t, enum stintd_task_view view,
		      struct stint_task_info *out);

#endif
