/*
 * Read-only operations anyone may ask on agent.sock: the CA chain (the
 * trust bundle relying parties configure) and a task's public facts (its
 * public key and certificate, agent, state and deadline). Nothing here is
 * secret: a relying party or an agent needs it without root. The task's
 * intent, end reason and signature count stay on admin.sock.
 */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/ca.h"
#include "attest/daemon.h"
#include "attest/ops.h"
#include "attest/task_info.h"
#include "common/msg.h"

static int
reply_ok(struct stint_reply *rep, struct stint_msg *m, int r)
{
	if (r != 0) {
		stint_msg_free(m);
		return -1;
	}
	return stintd_msg_reply(rep, m);
}

/* CA_CERT without the attestation key: the chain and the trust domain. */
int
stintd_op_public_ca_cert(struct stintd *d, const struct stint_peer *peer,
			 const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_ca_cert_rep cr;
	struct stint_msg *m;
	char *pem;
	int r;

	(void)peer;
	(void)req;
	if (d->ca == NULL)
		return stintd_error_reply(rep, STINT_E_BACKEND,
					  "stintd runs without a CA");
	if ((pem = stint_ca_chain_pem(d->ca)) == NULL)
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "cannot encode the CA chain");
	if ((m = stint_msg_reply_ok()) == NULL) {
		free(pem);
		return -1;
	}
	memset(&cr, 0, sizeof(cr));
	cr.pem = (const uint8_t *)pem;
	cr.pem_len = strlen(pem);
	snprintf(cr.trust_domain, sizeof(cr.trust_domain), "%s",
		 d->cfg.trust_domain);
	r = stint_put_ca_cert_rep(m, &cr);
	free(pem);
	return reply_ok(rep, m, r);
}

int
stintd_op_public_task_show(struct stintd *d, const struct stint_peer *peer,
			   const struct stint_msg *req, struct stint_reply *rep)
{
	char id[STINT_TASK_ID_MAX + 1];
	struct stint_task_info ti;
	struct stint_task t;
	struct stint_msg *m;
	int r;

	(void)peer;
	if (stint_dec_name_req(req, STINT_K_TASK, id, sizeof(id)) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "TASK_SHOW needs a task id");
	memset(&t, 0, sizeof(t));
	r = stint_store_task_get(d->store, id, &t);
	if (r == STINT_STORE_NOT_FOUND)
		return stintd_error_reply(rep, STINT_E_NOT_FOUND,
					  "no task '%s'", id);
	if (r != STINT_STORE_OK)
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "task store unavailable");
	if ((m = stint_msg_reply_ok()) == NULL) {
		stint_task_clear(&t);
		return -1;
	}
	stintd_task_info(&t, STINTD_TASK_PUBLIC, &ti);
	r = stint_put_task_info(m, &ti);
	stint_task_clear(&t);
	return reply_ok(rep, m, r);
}
