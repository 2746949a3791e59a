/*
 * The op table (attest/ops.c): every op number maps to at most one entry
 * and every op of enum stint_op to exactly one; each op reaches its
 * handler on the socket(s) it is allowed on (agent.sock's public view
 * where it has one), and elsewhere gets the wrong-socket refusal; unknown
 * ops, requests without an op and CA ops without a CA are answered
 * without calling any handler. The handlers here are recording fakes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "attest/daemon.h"
#include "attest/operator.h"
#include "attest/ops.h"
#include "common/msg.h"

static stintd_handler *called;

#define FAKE(fn)                                                               \
	int fn(struct stintd *d, const struct stint_peer *peer,                \
	       const struct stint_msg *req, struct stint_reply *rep)           \
	{                                                                      \
		(void)d;                                                       \
		(void)peer;                                                    \
		(void)req;                                                     \
		called = fn;                                                   \
		return stintd_msg_reply(rep, stint_msg_reply_ok());            \
	}

FAKE(stintd_op_hello)
FAKE(stintd_op_list)
FAKE(stintd_op_sign)
FAKE(stintd_op_public_ca_cert)
FAKE(stintd_op_public_task_show)
FAKE(stintd_op_agent_add)
FAKE(stintd_op_agent_list)
FAKE(stintd_op_agent_remove)
FAKE(stintd_op_task_start)
FAKE(stintd_op_task_end)
FAKE(stintd_op_task_list)
FAKE(stintd_op_task_show)
FAKE(stintd_op_task_evidence)
FAKE(stintd_op_audit_tail)
FAKE(stintd_op_audit_rotate)
FAKE(stintd_op_status)
FAKE(stintd_op_ca_cert)
FAKE(stintd_op_ca_csr)
FAKE(stintd_op_ca_install)
FAKE(stintd_op_kill_switch)
FAKE(stintd_op_operator_add)
FAKE(stintd_op_operator_list)
FAKE(stintd_op_operator_remove)
FAKE(stintd_op_delegate) /* deleg */
FAKE(stintd_op_task_delegate)
FAKE(stintd_op_task_tree)
FAKE(stintd_op_audit_tree)
FAKE(stintd_op_reload)      /* prov */
FAKE(stintd_op_run_prepare) /* runcg */

/* operator.c's admin.sock check: these tests ask as root (uid 0), who may
 * call everything; operators are tested in tests/integration/operators.sh. */
bool
stintd_may_call(struct stintd *d, const struct stint_peer *peer,
		const struct stintd_op *e, struct stint_reply *rep, int *ret)
{
	(void)d;
	(void)e;
	(void)rep;
	(void)ret;
	return peer->uid == 0;
}

/* Every value of enum stint_op (include/stint/wire.h). */
static const uint64_t wire_ops[] = {
	STINT_OP_HELLO,
	STINT_OP_LIST,
	STINT_OP_SIGN,
	STINT_OP_AGENT_ADD,
	STINT_OP_AGENT_LIST,
	STINT_OP_AGENT_REMOVE,
	STINT_OP_TASK_START,
	STINT_OP_TASK_END,
	STINT_OP_TASK_LIST,
	STINT_OP_TASK_SHOW,
	STINT_OP_AUDIT_TAIL,
	STINT_OP_STATUS,
	STINT_OP_CA_CERT,
	STINT_OP_CA_CSR,
	STINT_OP_CA_INSTALL,
	STINT_OP_TASK_EVIDENCE,
	STINT_OP_KILL_SWITCH,
	STINT_OP_AUDIT_ROTATE,
	/* operators (oper) */
	STINT_OP_OPERATOR_ADD,
	STINT_OP_OPERATOR_LIST,
	STINT_OP_OPERATOR_REMOVE,
	/* delegation (deleg) */
	STINT_OP_DELEGATE,
	STINT_OP_TASK_DELEGATE,
	STINT_OP_TASK_TREE,
	STINT_OP_AUDIT_TREE,
	/* prov */
	STINT_OP_RELOAD,
	/* runcg */
	STINT_OP_RUN_PREPARE,
};

#define N_WIRE_OPS (sizeof(wire_ops) / sizeof(wire_ops[0]))

static struct stintd daemon_with_ca, daemon_without_ca;
static const struct stint_peer peer;

/* Dispatches a request {op: op} (no op when op is 0) on sock; returns
 * the reply's status and copies its error text. */
static uint64_t
route(struct stintd *d, enum stintd_sock sock, uint64_t op, char *text,
      size_t cap)
{
	struct stint_reply_head head;
	struct stint_reply rep = {0};
	struct stint_msg *req = stint_msg_new(), *m = NULL;

	assert_non_null(req);
	if (op != 0)
		assert_int_equal(stint_msg_put_uint(req, STINT_K_OP, op), 0);
	called = NULL;
	assert_int_equal(stintd_dispatch(d, sock, &peer, req, &rep), 0);
	stint_msg_free(req);
	assert_int_equal(stint_msg_parse(rep.buf, rep.len, &m), 0);
	assert_int_equal(stint_msg_get_reply_head(m, &head), 0);
	snprintf(text, cap, "%s", head.error);
	stint_msg_free(m);
	free(rep.buf);
	return head.status;
}

static void
test_table_is_one_entry_per_op(void **state)
{
	const struct stintd_op *ops, *e;
	size_t n, i, j, hits;

	(void)state;
	ops = stintd_ops(&n);
	assert_int_equal(n, N_WIRE_OPS);
	for (i = 0; i < n; i++) {
		assert_non_null(ops[i].name);
		assert_non_null(ops[i].handler);
		assert_int_not_equal(ops[i].sockets, 0);
		assert_int_equal(ops[i].sockets &
					 ~(unsigned)(STINTD_SOCK_AGENT |
						     STINTD_SOCK_ADMIN),
				 0);
		/* A public view only where both sockets take the op. */
		if (ops[i].public_handler != NULL)
			assert_int_equal(ops[i].sockets,
					 STINTD_SOCK_AGENT | STINTD_SOCK_ADMIN);
		for (j = i + 1; j < n; j++)
			assert_true(ops[i].op != ops[j].op);
	}
	for (i = 0; i < N_WIRE_OPS; i++) {
		e = stintd_op_find(wire_ops[i]);
		assert_non_null(e);
		assert_int_equal(e->op, wire_ops[i]);
	}
	/* Any other number: no entry. */
	for (uint64_t op = 0; op < 1024; op++) {
		for (hits = 0, i = 0; i < N_WIRE_OPS; i++)
			hits += wire_ops[i] == op;
		if (hits == 0)
			assert_null(stintd_op_find(op));
	}
}

static void
test_each_op_reaches_its_handler(void **state)
{
	const struct stintd_op *ops;
	char text[STINT_REASON_MAX + 1];
	size_t n, i;

	(void)state;
	ops = stintd_ops(&n);
	for (i = 0; i < n; i++) {
		if (ops[i].sockets & STINTD_SOCK_ADMIN) {
			assert_int_equal(route(&daemon_with_ca,
					       STINTD_SOCK_ADMIN, ops[i].op,
					       text, sizeof(text)),
					 STINT_OK);
			assert_ptr_equal(called, ops[i].handler);
		}
		if (ops[i].sockets & STINTD_SOCK_AGENT) {
			assert_int_equal(route(&daemon_with_ca,
					       STINTD_SOCK_AGENT, ops[i].op,
					       text, sizeof(text)),
					 STINT_OK);
			assert_ptr_equal(called, ops[i].public_handler
							 ? ops[i].public_handler
							 : ops[i].handler);
		}
	}
	/* The public views: agent.sock never reaches the admin handlers. */
	route(&daemon_with_ca, STINTD_SOCK_AGENT, STINT_OP_TASK_SHOW, text,
	      sizeof(text));
	assert_ptr_equal(called, stintd_op_public_task_show);
	route(&daemon_with_ca, STINTD_SOCK_AGENT, STINT_OP_CA_CERT, text,
	      sizeof(text));
	assert_ptr_equal(called, stintd_op_public_ca_cert);
}

/* The bug this table fixed: ops 25-29 and 45 said "unknown operation"
 * on agent.sock. Every admin-only op now says "admin only". */
static void
test_admin_ops_refused_on_agent_sock(void **state)
{
	const struct stintd_op *ops;
	char text[STINT_REASON_MAX + 1];
	size_t n, i, refused = 0;

	(void)state;
	ops = stintd_ops(&n);
	for (i = 0; i < n; i++) {
		if (ops[i].sockets & STINTD_SOCK_AGENT)
			continue;
		assert_int_equal(route(&daemon_with_ca, STINTD_SOCK_AGENT,
				       ops[i].op, text, sizeof(text)),
				 STINT_E_DENIED);
		assert_string_equal(text, "admin operations are only accepted "
					  "on admin.sock");
		assert_null(called);
		refused++;
	}
	/* 13, OPERATOR_ADD/LIST/REMOVE, TASK_DELEGATE/TREE, AUDIT_TREE,
	 * RELOAD, RUN_PREPARE (runcg) */
	assert_int_equal(refused, 21);
	assert_int_equal(route(&daemon_with_ca, STINTD_SOCK_AGENT,
			       STINT_OP_KILL_SWITCH, text, sizeof(text)),
			 STINT_E_DENIED);
	assert_int_equal(route(&daemon_without_ca, STINTD_SOCK_AGENT,
			       STINT_OP_CA_CSR, text, sizeof(text)),
			 STINT_E_DENIED);
}

/* Operators (issue 12 §5) may call exactly these ops on admin.sock; every
 * other op stays root's and stintd's user's. */
static void
test_operator_ops(void **state)
{
	static const uint64_t allowed[] = {
		STINT_OP_TASK_START, STINT_OP_TASK_END, STINT_OP_TASK_LIST,
		STINT_OP_TASK_SHOW, STINT_OP_CA_CERT,
		/* deleg */
		STINT_OP_TASK_DELEGATE, STINT_OP_TASK_TREE,
		/* runcg: stint run's cgroup */
		STINT_OP_RUN_PREPARE};
	const struct stintd_op *ops;
	size_t n, i, j, flagged = 0;

	(void)state;
	ops = stintd_ops(&n);
	for (i = 0; i < n; i++) {
		bool want = false;

		for (j = 0; j < sizeof(allowed) / sizeof(allowed[0]); j++)
			want |= ops[i].op == allowed[j];
		assert_int_equal(!!(ops[i].flags & STINTD_OP_OPERATOR), want);
		flagged += want;
	}
	assert_int_equal(flagged, sizeof(allowed) / sizeof(allowed[0]));
}

static void
test_agent_ops_refused_on_admin_sock(void **state)
{
	static const uint64_t agent_ops[] = {STINT_OP_HELLO, STINT_OP_LIST,
					     STINT_OP_SIGN};
	char text[STINT_REASON_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		assert_int_equal(route(&daemon_with_ca, STINTD_SOCK_ADMIN,
				       agent_ops[i], text, sizeof(text)),
				 STINT_E_DENIED);
		assert_string_equal(text, "agent operations are only accepted "
					  "on agent.sock");
		assert_null(called);
	}
}

static void
test_unknown_and_missing_op(void **state)
{
	static const uint64_t unknown[] = {4, 15, 30, 44, 46, 1000};
	char text[STINT_REASON_MAX + 1], want[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		snprintf(want, sizeof(want), "unknown operation %llu",
			 (unsigned long long)unknown[i]);
		assert_int_equal(route(&daemon_with_ca, STINTD_SOCK_AGENT,
				       unknown[i], text, sizeof(text)),
				 STINT_E_UNKNOWN_OP);
		assert_string_equal(text, want);
		assert_int_equal(route(&daemon_with_ca, STINTD_SOCK_ADMIN,
				       unknown[i], text, sizeof(text)),
				 STINT_E_UNKNOWN_OP);
		assert_string_equal(text, want);
		assert_null(called);
	}
	assert_int_equal(route(&daemon_with_ca, STINTD_SOCK_ADMIN, 0, text,
			       sizeof(text)),
			 STINT_E_BAD_REQUEST);
	assert_string_equal(text, "request has no op");
	assert_null(called);
}

static void
test_ca_ops_without_ca(void **state)
{
	const struct stintd_op *ops;
	char text[STINT_REASON_MAX + 1];
	size_t n, i;

	(void)state;
	ops = stintd_ops(&n);
	for (i = 0; i < n; i++) {
		if (!(ops[i].flags & STINTD_OP_NEEDS_CA))
			continue;
		assert_int_equal(route(&daemon_without_ca, STINTD_SOCK_ADMIN,
				       ops[i].op, text, sizeof(text)),
				 STINT_E_BACKEND);
		assert_string_equal(text, "stintd runs without a CA");
		assert_null(called);
	}
	assert_int_equal(route(&daemon_without_ca, STINTD_SOCK_AGENT,
			       STINT_OP_CA_CERT, text, sizeof(text)),
			 STINT_E_BACKEND);
	assert_null(called);
	/* Ops that do not need one still work. */
	assert_int_equal(route(&daemon_without_ca, STINTD_SOCK_ADMIN,
			       STINT_OP_STATUS, text, sizeof(text)),
			 STINT_OK);
	assert_ptr_equal(called, stintd_op_status);
}

int
main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_is_one_entry_per_op),
		cmocka_unit_test(test_each_op_reaches_its_handler),
		cmocka_unit_test(test_admin_ops_refused_on_agent_sock),
		cmocka_unit_test(test_operator_ops),
		cmocka_unit_test(test_agent_ops_refused_on_admin_sock),
		cmocka_unit_test(test_unknown_and_missing_op),
		cmocka_unit_test(test_ca_ops_without_ca),
	};

	/* Never dereferenced: the fakes do not look at the CA. */
	daemon_with_ca.ca = (struct stint_ca *)&daemon_with_ca;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
