/* The op table and the one dispatch both sockets use (ops.h). */

#include <stdbool.h>
#include <stddef.h>

#include "attest/daemon.h"
#include "attest/operator.h"
#include "attest/ops.h"
#include "common/msg.h"

#define AGENT STINTD_SOCK_AGENT
#define ADMIN STINTD_SOCK_ADMIN
#define CA    STINTD_OP_NEEDS_CA
#define OPER  STINTD_OP_OPERATOR

static const struct stintd_op ops[] = {
	{STINT_OP_HELLO, "HELLO", AGENT, 0, stintd_op_hello, NULL},
	{STINT_OP_LIST, "LIST", AGENT, 0, stintd_op_list, NULL},
	{STINT_OP_SIGN, "SIGN", AGENT, 0, stintd_op_sign, NULL},
	{STINT_OP_AGENT_ADD, "AGENT_ADD", ADMIN, 0, stintd_op_agent_add, NULL},
	{STINT_OP_AGENT_LIST, "AGENT_LIST", ADMIN, 0, stintd_op_agent_list,
	 NULL},
	{STINT_OP_AGENT_REMOVE, "AGENT_REMOVE", ADMIN, 0,
	 stintd_op_agent_remove, NULL},
	{STINT_OP_TASK_START, "TASK_START", ADMIN, OPER, stintd_op_task_start,
	 NULL},
	{STINT_OP_TASK_END, "TASK_END", ADMIN, OPER, stintd_op_task_end, NULL},
	{STINT_OP_TASK_LIST, "TASK_LIST", ADMIN, OPER, stintd_op_task_list,
	 NULL},
	/* Public on agent.sock: key and certificate, no intent. */
	{STINT_OP_TASK_SHOW, "TASK_SHOW", ADMIN | AGENT, OPER,
	 stintd_op_task_show, stintd_op_public_task_show},
	{STINT_OP_AUDIT_TAIL, "AUDIT_TAIL", ADMIN, 0, stintd_op_audit_tail,
	 NULL},
	{STINT_OP_STATUS, "STATUS", ADMIN, 0, stintd_op_status, NULL},
	/* Public on agent.sock: the trust bundle, no attestation key. */
	{STINT_OP_CA_CERT, "CA_CERT", ADMIN | AGENT, CA | OPER,
	 stintd_op_ca_cert, stintd_op_public_ca_cert},
	{STINT_OP_CA_CSR, "CA_CSR", ADMIN, CA, stintd_op_ca_csr, NULL},
	{STINT_OP_CA_INSTALL, "CA_INSTALL", ADMIN, CA, stintd_op_ca_install,
	 NULL},
	{STINT_OP_TASK_EVIDENCE, "TASK_EVIDENCE", ADMIN, CA,
	 stintd_op_task_evidence, NULL},
	{STINT_OP_KILL_SWITCH, "KILL_SWITCH", ADMIN, 0, stintd_op_kill_switch,
	 NULL},
	{STINT_OP_AUDIT_ROTATE, "AUDIT_ROTATE", ADMIN, 0,
	 stintd_op_audit_rotate, NULL},
	/* operators (oper): root's and stintd's user's only */
	{STINT_OP_OPERATOR_ADD, "OPERATOR_ADD", ADMIN, 0,
	 stintd_op_operator_add, NULL},
	{STINT_OP_OPERATOR_LIST, "OPERATOR_LIST", ADMIN, 0,
	 stintd_op_operator_list, NULL},
	{STINT_OP_OPERATOR_REMOVE, "OPERATOR_REMOVE", ADMIN, 0,
	 stintd_op_operator_remove, NULL},
	/* deleg: DELEGATE runs as the agent (the gate judges its use of the
	 * parent); operators may delegate for the agents they serve */
	{STINT_OP_DELEGATE, "DELEGATE", AGENT, 0, stintd_op_delegate, NULL},
	{STINT_OP_TASK_DELEGATE, "TASK_DELEGATE", ADMIN, OPER,
	 stintd_op_task_delegate, NULL},
	{STINT_OP_TASK_TREE, "TASK_TREE", ADMIN, OPER, stintd_op_task_tree,
	 NULL},
	{STINT_OP_AUDIT_TREE, "AUDIT_TREE", ADMIN, 0, stintd_op_audit_tree,
	 NULL},
	/* prov: reconcile agents.d now; root's and stintd's user's only */
	{STINT_OP_RELOAD, "RELOAD", ADMIN, 0, stintd_op_reload, NULL},
	/* runcg: stint run's cgroup; operators for the agents they serve */
	{STINT_OP_RUN_PREPARE, "RUN_PREPARE", ADMIN, OPER,
	 stintd_op_run_prepare, NULL},
};

const struct stintd_op *
stintd_ops(size_t *n)
{
	*n = sizeof(ops) / sizeof(ops[0]);
	return ops;
}

const struct stintd_op *
stintd_op_find(uint64_t op)
{
	size_t i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (ops[i].op == op)
			return &ops[i];
	return NULL;
}

int
stintd_dispatch(struct stintd *d, enum stintd_sock sock,
		const struct stint_peer *peer, const struct stint_msg *req,
		struct stint_reply *rep)
{
	const struct stintd_op *e;
	uint64_t op;
	int r;

	if (stint_dec_request_op(req, &op) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "request has no op");
	if ((e = stintd_op_find(op)) == NULL)
		return stintd_error_reply(rep, STINT_E_UNKNOWN_OP,
					  "unknown operation %llu",
					  (unsigned long long)op);
	if ((e->sockets & sock) == 0)
		return stintd_error_reply(
			rep, STINT_E_DENIED,
			sock == STINTD_SOCK_AGENT
				? "admin operations are only accepted on "
				  "admin.sock"
				: "agent operations are only accepted on "
				  "agent.sock");
	/* admin.sock: operators only for STINTD_OP_OPERATOR ops. */
	if (sock == STINTD_SOCK_ADMIN && !stintd_may_call(d, peer, e, rep, &r))
		return r;
	if ((e->flags & STINTD_OP_NEEDS_CA) && d->ca == NULL)
		return stintd_error_reply(rep, STINT_E_BACKEND,
					  "stintd runs without a CA");
	if (sock == STINTD_SOCK_AGENT && e->public_handler != NULL)
		return e->public_handler(d, peer, req, rep);
	return e->handler(d, peer, req, rep);
}
