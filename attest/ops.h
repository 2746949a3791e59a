/*
 * The op table: every operation stintd answers, on which socket(s), with
 * which handler. server.c hands each decoded request to stintd_dispatch();
 * nothing else decides where an op goes. docs/protocol.md lists the ops.
 */
#ifndef STINT_ATTEST_OPS_H
#define STINT_ATTEST_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "attest/peer.h"
#include "attest/reply.h"

struct stintd;
struct stint_msg;

/* The sockets an op is accepted on (a mask). */
enum stintd_sock {
	STINTD_SOCK_AGENT = 1u << 0, /* agent.sock: anyone, SO_PEERCRED */
	STINTD_SOCK_ADMIN = 1u << 1, /* admin.sock: root, stintd's uid and
					operators (operator.h) */
};

/* Entry flags. */
enum stintd_op_flag {
	STINTD_OP_NEEDS_CA = 1u << 0, /* "stintd runs without a CA" if none */
	/* An operator (operator.h) may call it on admin.sock; the handler
	 * checks the agent with stintd_may_act_for_agent(). Without the
	 * flag an admin.sock op is root's and stintd's user's only. */
	STINTD_OP_OPERATOR = 1u << 1,
};

/* Handlers encode the reply to one decoded request; they return -1 only
 * when memory ran out (the connection is then closed). */
typedef int stintd_handler(struct stintd *d, const struct stint_peer *peer,
			   const struct stint_msg *req,
			   struct stint_reply *rep);

struct stintd_op {
	uint64_t op; /* enum stint_op */
	const char *name;
	unsigned sockets; /* enum stintd_sock mask */
	unsigned flags;   /* enum stintd_op_flag mask */
	stintd_handler *handler;
	/* agent.sock's narrower view of an op both sockets accept (public
	 * facts only), NULL when handler serves both. */
	stintd_handler *public_handler;
};

/* The table, in op order. */
const struct stintd_op *stintd_ops(size_t *n);
/* The entry for op, or NULL when stintd has no such op. */
const struct stintd_op *stintd_op_find(uint64_t op);
/* Routes one request received on sock (one enum stintd_sock value):
 * no op, unknown op, wrong socket and missing CA are answered here;
 * everything else by the entry's handler. */
int stintd_dispatch(struct stintd *d, enum stintd_sock sock,
		    const struct stint_peer *peer, const struct stint_msg *req,
		    struct stint_reply *rep);

/* The handlers (handle_agent.c, handle_public.c, handle_admin.c). */
stintd_handler stintd_op_hello, stintd_op_list, stintd_op_sign;
stintd_handler stintd_op_public_ca_cert, stintd_op_public_task_show;
stintd_handler stintd_op_agent_add, stintd_op_agent_list,
	stintd_op_agent_remove;
stintd_handler stintd_op_task_start, stintd_op_task_end, stintd_op_task_list,
	stintd_op_task_show, stintd_op_task_evidence;
stintd_handler stintd_op_audit_tail, stintd_op_audit_rotate, stintd_op_status;
stintd_handler stintd_op_ca_cert, stintd_op_ca_csr, stintd_op_ca_install;
stintd_handler stintd_op_kill_switch;
/* operator.c */
stintd_handler stintd_op_operator_add, stintd_op_operator_list,
	stintd_op_operator_remove;
/* handle_delegate.c (deleg) */
stintd_handler stintd_op_delegate, stintd_op_task_delegate, stintd_op_task_tree,
	stintd_op_audit_tree;
/* handle_reload.c (prov) */
stintd_handler stintd_op_reload;
/* runcg: stint run's cgroup, before its TASK_START (handle_admin.c) */
stintd_handler stintd_op_run_prepare;

#endif
