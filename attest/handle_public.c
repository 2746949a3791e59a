/*
 * Read-only operations anyone may ask on agent.sock: the CA chain (the
 * trust bundle relying parties configure) and a task's public facts (its
 * public key and certificate, agent, state and deadline). Nothing here is
 * secret: a relying party or an agent needs it without root. The task's
 * intent, end reason and signature count stay on admin.sock.
 */

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "attest/ca.h"
#include "attest/daemon.h"
#include "attest/ops.h"
#include "attest/task.h"
#include "common/msg.h"

static int
put_bytes_if(struct stint_msg *m, uint64_t key, const struct stint_bytes *b)
{
	return b->len ? stint_msg_put_bytes(m, key, b->ptr, b->len) : 0;
}

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
	struct stint_msg *m;
	char *pem;
	int r = 0;

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
	r |= stint_msg_put_bytes(m, STINT_K_PEM, (const uint8_t *)pem,
				 strlen(pem));
	r |= stint_msg_put_text(m, STINT_K_TRUST_DOMAIN, d->cfg.trust_domain);
	free(pem);
	return reply_ok(rep, m, r);
}

static int
put_public_task(struct stint_msg *m, const struct stint_task *t)
{
	char uri[256];
	int r = 0;

	stint_task_uri(t, uri, sizeof(uri));
	r |= stint_msg_put_text(m, STINT_K_TASK, t->id);
	r |= stint_msg_put_text(m, STINT_K_AGENT, t->agent);
	r |= stint_msg_put_uint(m, STINT_K_KEY_TYPE, t->key_type);
	r |= stint_msg_put_text(m, STINT_K_STATE,
				stint_task_state_str(t->state));
	r |= stint_msg_put_uint(m, STINT_K_CREATED, (uint64_t)t->created);
	r |= stint_msg_put_uint(m, STINT_K_NOT_AFTER, (uint64_t)t->not_after);
	if (t->ended)
		r |= stint_msg_put_uint(m, STINT_K_ENDED, (uint64_t)t->ended);
	r |= stint_msg_put_uint_array(m, STINT_K_MECHS, t->mechs, t->n_mechs);
	r |= stint_msg_put_text(m, STINT_K_URI, uri);
	r |= put_bytes_if(m, STINT_K_SPKI, &t->pub.spki);
	r |= put_bytes_if(m, STINT_K_CERT, &t->cert);
	return r ? -1 : 0;
}

int
stintd_op_public_task_show(struct stintd *d, const struct stint_peer *peer,
			   const struct stint_msg *req, struct stint_reply *rep)
{
	char id[STINT_TASK_ID_MAX + 1];
	struct stint_task t;
	struct stint_msg *m;
	int r;

	(void)peer;
	if (stint_msg_get_text(req, STINT_K_TASK, id, sizeof(id)) != 0)
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
	r = put_public_task(m, &t);
	stint_task_clear(&t);
	return reply_ok(rep, m, r);
}
