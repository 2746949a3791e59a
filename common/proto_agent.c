/*
 * Agent-socket messages (HELLO, LIST, SIGN): typed encoders and decoders on
 * top of the strict map codec. Decoders ignore keys they do not know so
 * that a newer peer may add fields; they refuse anything missing, of the
 * wrong type or out of range.
 */
#include <stdlib.h>
#include <string.h>

#include "common/ident.h"
#include "common/msg.h"
#include "stint/wire.h"

/* Agent names and task ids become PKCS#11 labels and URI components
 * (common/ident.h). */
static bool
agent_ok(const char *s) /* "" allowed: no agent */
{
	return s[0] == '\0' || stint_name_ok(s);
}

static bool
key_type_ok(uint64_t t)
{
	return t >= STINT_KEY_EC_P256 && t <= STINT_KEY_RSA_3072;
}

static bool
key_type_ec(uint64_t t)
{
	return t == STINT_KEY_EC_P256 || t == STINT_KEY_EC_P384;
}

static int
finish(struct stint_msg *m, int r, uint8_t **out, size_t *len)
{
	if (r == 0)
		r = stint_msg_serialize(m, out, len);
	stint_msg_free(m);
	return r;
}

static struct stint_msg *
request(uint64_t op, int *r)
{
	struct stint_msg *m = stint_msg_new();

	*r = m == NULL ? STINT_WIRE_NOMEM
		       : stint_msg_put_uint(m, STINT_K_OP, op);
	return m;
}

static struct stint_msg *
reply_ok(int *r)
{
	struct stint_msg *m = stint_msg_reply_ok();

	*r = m == NULL ? STINT_WIRE_NOMEM : 0;
	return m;
}

/* --- requests --------------------------------------------------------------
 */

int
stint_enc_hello_req(uint64_t version, uint8_t **out, size_t *len)
{
	int r;
	struct stint_msg *m = request(STINT_OP_HELLO, &r);

	if (r == 0)
		r = stint_msg_put_uint(m, STINT_K_VERSION, version);
	return finish(m, r, out, len);
}

static int
put_as_agent(struct stint_msg *m, const char *as_agent)
{
	if (as_agent == NULL || as_agent[0] == '\0')
		return 0;
	if (!stint_name_ok(as_agent))
		return STINT_WIRE_RANGE;
	return stint_msg_put_text(m, STINT_K_AS_AGENT, as_agent);
}

int
stint_enc_list_req_as(const char *cursor, const char *as_agent, uint8_t **out,
		      size_t *len)
{
	int r;
	struct stint_msg *m = request(STINT_OP_LIST, &r);

	if (r == 0 && cursor != NULL && cursor[0] != '\0') {
		if (!stint_task_id_ok(cursor))
			r = STINT_WIRE_RANGE;
		else
			r = stint_msg_put_text(m, STINT_K_CURSOR, cursor);
	}
	if (r == 0)
		r = put_as_agent(m, as_agent);
	return finish(m, r, out, len);
}

int
stint_enc_list_req(const char *cursor, uint8_t **out, size_t *len)
{
	return stint_enc_list_req_as(cursor, NULL, out, len);
}

int
stint_enc_sign_req(const struct stint_sign_req *req, uint8_t **out, size_t *len)
{
	int r;
	struct stint_msg *m = request(STINT_OP_SIGN, &r);

	if (r == 0 && !stint_task_id_ok(req->task))
		r = STINT_WIRE_RANGE;
	if (r == 0)
		r = stint_msg_put_text(m, STINT_K_TASK, req->task);
	if (r == 0)
		r = stint_msg_put_uint(m, STINT_K_MECH, req->mech);
	if (r == 0)
		r = stint_msg_put_bytes(m, STINT_K_DATA, req->data.ptr,
					req->data.len);
	if (r == 0 && req->has_pss) {
		r = stint_msg_put_uint(m, STINT_K_PSS_HASH, req->pss_hash);
		if (r == 0)
			r = stint_msg_put_uint(m, STINT_K_PSS_MGF,
					       req->pss_mgf);
		if (r == 0)
			r = stint_msg_put_uint(m, STINT_K_PSS_SALT,
					       req->pss_salt);
	}
	if (r == 0)
		r = put_as_agent(m, req->as_agent);
	return finish(m, r, out, len);
}

int
stint_dec_request_op(const struct stint_msg *m, uint64_t *op)
{
	return stint_msg_get_uint(m, STINT_K_OP, op);
}

int
stint_dec_hello_req(const struct stint_msg *m, uint64_t *version)
{
	return stint_msg_get_uint(m, STINT_K_VERSION, version);
}

int
stint_dec_list_req(const struct stint_msg *m,
		   char cursor[STINT_TASK_ID_MAX + 1])
{
	int r;

	cursor[0] = '\0';
	if (!stint_msg_has(m, STINT_K_CURSOR))
		return 0;
	r = stint_msg_get_text(m, STINT_K_CURSOR, cursor,
			       STINT_TASK_ID_MAX + 1);
	if (r == 0 && cursor[0] != '\0' && !stint_task_id_ok(cursor))
		r = STINT_WIRE_RANGE;
	if (r != 0)
		cursor[0] = '\0';
	return r;
}

int
stint_dec_as_agent(const struct stint_msg *m, char as_agent[STINT_NAME_MAX + 1])
{
	int r;

	as_agent[0] = '\0';
	if (!stint_msg_has(m, STINT_K_AS_AGENT))
		return 0;
	r = stint_msg_get_text(m, STINT_K_AS_AGENT, as_agent,
			       STINT_NAME_MAX + 1);
	if (r == 0 && !stint_name_ok(as_agent))
		r = STINT_WIRE_RANGE;
	if (r != 0)
		as_agent[0] = '\0';
	return r;
}

int
stint_dec_sign_req(const struct stint_msg *m, struct stint_sign_req *req)
{
	const uint8_t *p;
	size_t n;
	int r, present = 0;

	memset(req, 0, sizeof(*req));
	if ((r = stint_msg_get_text(m, STINT_K_TASK, req->task,
				    sizeof(req->task))) != 0)
		return r;
	if (!stint_task_id_ok(req->task))
		return STINT_WIRE_RANGE;
	if ((r = stint_msg_get_uint(m, STINT_K_MECH, &req->mech)) != 0)
		return r;
	if ((r = stint_msg_get_bytes(m, STINT_K_DATA, &p, &n)) != 0)
		return r;
	present = stint_msg_has(m, STINT_K_PSS_HASH) +
		  stint_msg_has(m, STINT_K_PSS_MGF) +
		  stint_msg_has(m, STINT_K_PSS_SALT);
	if (present != 0 && present != 3)
		return STINT_WIRE_MISSING; /* all three or none */
	if (present == 3) {
		if ((r = stint_msg_get_uint(m, STINT_K_PSS_HASH,
					    &req->pss_hash)) != 0 ||
		    (r = stint_msg_get_uint(m, STINT_K_PSS_MGF,
					    &req->pss_mgf)) != 0 ||
		    (r = stint_msg_get_uint(m, STINT_K_PSS_SALT,
					    &req->pss_salt)) != 0)
			return r;
		req->has_pss = true;
	}
	if ((r = stint_dec_as_agent(m, req->as_agent)) != 0)
		return r;
	/* Copied so the request outlives the message; the caller frees it
	 * with stint_bytes_clear(&req->data). */
	req->data.ptr = malloc(n ? n : 1);
	if (req->data.ptr == NULL)
		return STINT_WIRE_NOMEM;
	if (n > 0)
		memcpy(req->data.ptr, p, n);
	req->data.len = n;
	return 0;
}

/* --- replies ---------------------------------------------------------------
 */

int
stint_enc_hello_rep(const struct stint_hello_rep *rep, uint8_t **out,
		    size_t *len)
{
	int r;
	struct stint_msg *m = reply_ok(&r);

	if (r == 0 && !agent_ok(rep->agent))
		r = STINT_WIRE_RANGE;
	if (r == 0)
		r = stint_msg_put_uint(m, STINT_K_VERSION, rep->version);
	if (r == 0)
		r = stint_msg_put_text(m, STINT_K_AGENT, rep->agent);
	/* Only with several: a one-agent reply stays byte-identical. */
	for (size_t i = 0; r == 0 && rep->n_names > 1 && i < rep->n_names; i++)
		r = stint_name_ok(rep->names[i])
			    ? stint_msg_append_text(m, STINT_K_AGENT_NAMES,
						    rep->names[i])
			    : STINT_WIRE_RANGE;
	return finish(m, r, out, len);
}

static int
put_opt_bytes(struct stint_msg *m, uint64_t key, const struct stint_bytes *b)
{
	if (b->len == 0)
		return 0;
	return stint_msg_put_bytes(m, key, b->ptr, b->len);
}

static int
enc_task_key(const struct stint_task_key *t, struct stint_msg **out)
{
	struct stint_msg *c;
	int r = 0;

	*out = NULL;
	if (!stint_task_id_ok(t->id) || !key_type_ok(t->key_type) ||
	    t->n_mechs > STINT_MECHS_MAX || t->spki.len == 0)
		return STINT_WIRE_RANGE;
	if (key_type_ec(t->key_type)
		    ? (t->ec_params.len == 0 || t->ec_point.len == 0)
		    : (t->modulus.len == 0 || t->exponent.len == 0))
		return STINT_WIRE_MISSING;
	if ((c = stint_msg_new()) == NULL)
		return STINT_WIRE_NOMEM;
	if (r == 0)
		r = stint_msg_put_text(c, STINT_K_TASK, t->id);
	if (r == 0)
		r = stint_msg_put_uint(c, STINT_K_KEY_TYPE, t->key_type);
	if (r == 0)
		r = stint_msg_put_uint(c, STINT_K_NOT_AFTER, t->not_after);
	if (r == 0)
		r = stint_msg_put_uint_array(c, STINT_K_MECHS, t->mechs,
					     t->n_mechs);
	if (r == 0)
		r = stint_msg_put_bytes(c, STINT_K_SPKI, t->spki.ptr,
					t->spki.len);
	if (r == 0 && key_type_ec(t->key_type)) {
		r = put_opt_bytes(c, STINT_K_EC_PARAMS, &t->ec_params);
		if (r == 0)
			r = put_opt_bytes(c, STINT_K_EC_POINT, &t->ec_point);
	} else if (r == 0) {
		r = put_opt_bytes(c, STINT_K_MODULUS, &t->modulus);
		if (r == 0)
			r = put_opt_bytes(c, STINT_K_EXPONENT, &t->exponent);
	}
	if (r == 0)
		r = put_opt_bytes(c, STINT_K_CERT, &t->cert);
	if (r != 0) {
		stint_msg_free(c);
		return r;
	}
	*out = c;
	return 0;
}

int
stint_enc_list_rep(const struct stint_list_rep *rep, uint8_t **out, size_t *len)
{
	int r;
	struct stint_msg *m = reply_ok(&r);

	if (r == 0 && rep->n_tasks > STINT_LIST_PAGE)
		r = STINT_WIRE_RANGE;
	/* An empty page still carries the (empty) tasks array. */
	if (r == 0 && rep->n_tasks == 0)
		r = stint_msg_put_uint_array(m, STINT_K_TASKS, NULL, 0);
	for (size_t i = 0; r == 0 && i < rep->n_tasks; i++) {
		struct stint_msg *c;

		if ((r = enc_task_key(&rep->tasks[i], &c)) == 0)
			r = stint_msg_append_map(m, STINT_K_TASKS, c);
	}
	if (r == 0)
		r = stint_msg_put_bool(m, STINT_K_MORE, rep->more);
	return finish(m, r, out, len);
}

int
stint_enc_sign_rep(const uint8_t *sig, size_t sig_len, uint8_t **out,
		   size_t *len)
{
	int r;
	struct stint_msg *m = reply_ok(&r);

	if (r == 0 && sig_len == 0)
		r = STINT_WIRE_RANGE;
	if (r == 0)
		r = stint_msg_put_bytes(m, STINT_K_SIG, sig, sig_len);
	return finish(m, r, out, len);
}

/* Length of the longest prefix of s within max bytes that does not split a
 * UTF-8 sequence. */
static size_t
utf8_prefix(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len <= max)
		return len;
	len = max;
	while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
		len--;
	return len;
}

int
stint_enc_error_rep(uint64_t status, const char *message, uint8_t **out,
		    size_t *len)
{
	char buf[STINT_REASON_MAX + 1];
	struct stint_msg *m;
	size_t n;
	int r;

	if (status == STINT_OK)
		return STINT_WIRE_RANGE;
	if (message == NULL || message[0] == '\0')
		message = stint_status_str(status);
	/* Long messages are cut so the peer's bounded decoder accepts them. */
	n = utf8_prefix(message, STINT_REASON_MAX);
	memcpy(buf, message, n);
	buf[n] = '\0';
	if ((m = stint_msg_new()) == NULL)
		return STINT_WIRE_NOMEM;
	r = stint_msg_put_uint(m, STINT_K_STATUS, status);
	if (r == 0)
		r = stint_msg_put_text(m, STINT_K_ERROR, buf);
	return finish(m, r, out, len);
}

/* Parses buf and its reply head. *m is NULL unless status is STINT_OK. */
static int
dec_reply(const uint8_t *buf, size_t len, struct stint_reply_head *head,
	  struct stint_msg **m)
{
	int r;

	*m = NULL;
	memset(head, 0, sizeof(*head));
	if ((r = stint_msg_parse(buf, len, m)) != 0)
		return r;
	r = stint_msg_get_reply_head(*m, head);
	if (r != 0 || head->status != STINT_OK) {
		stint_msg_free(*m);
		*m = NULL;
	}
	return r;
}

static int
dec_agent_names(const struct stint_msg *m, struct stint_hello_rep *rep)
{
	size_t n, i;
	int r;

	if ((r = stint_msg_get_array_len(m, STINT_K_AGENT_NAMES, &n)) != 0)
		return r;
	if (n > STINT_HELLO_AGENTS_MAX)
		return STINT_WIRE_RANGE;
	for (i = 0; i < n; i++) {
		r = stint_msg_get_text_at(m, STINT_K_AGENT_NAMES, i,
					  rep->names[i], sizeof(rep->names[i]));
		if (r == 0 && !stint_name_ok(rep->names[i]))
			r = STINT_WIRE_RANGE;
		if (r != 0)
			return r;
	}
	rep->n_names = n;
	return 0;
}

int
stint_dec_hello_rep(const uint8_t *buf, size_t len,
		    struct stint_reply_head *head, struct stint_hello_rep *rep)
{
	struct stint_msg *m;
	int r;

	memset(rep, 0, sizeof(*rep));
	if ((r = dec_reply(buf, len, head, &m)) != 0 || m == NULL)
		return r;
	r = stint_msg_get_uint(m, STINT_K_VERSION, &rep->version);
	if (r == 0)
		r = stint_msg_get_text(m, STINT_K_AGENT, rep->agent,
				       sizeof(rep->agent));
	if (r == 0 && !agent_ok(rep->agent))
		r = STINT_WIRE_RANGE;
	if (r == 0 && stint_msg_has(m, STINT_K_AGENT_NAMES))
		r = dec_agent_names(m, rep);
	if (r != 0)
		memset(rep, 0, sizeof(*rep));
	stint_msg_free(m);
	return r;
}

static int
dup_bytes(const struct stint_msg *m, uint64_t key, bool required,
	  struct stint_bytes *b)
{
	const uint8_t *p;
	size_t n;
	int r;

	b->ptr = NULL;
	b->len = 0;
	if (!required && !stint_msg_has(m, key))
		return 0;
	if ((r = stint_msg_get_bytes(m, key, &p, &n)) != 0)
		return r;
	if (n == 0)
		return required ? STINT_WIRE_RANGE : 0;
	if ((b->ptr = malloc(n)) == NULL)
		return STINT_WIRE_NOMEM;
	memcpy(b->ptr, p, n);
	b->len = n;
	return 0;
}

void
stint_task_key_clear(struct stint_task_key *t)
{
	stint_bytes_clear(&t->spki);
	stint_bytes_clear(&t->ec_params);
	stint_bytes_clear(&t->ec_point);
	stint_bytes_clear(&t->modulus);
	stint_bytes_clear(&t->exponent);
	stint_bytes_clear(&t->cert);
}

static int
dec_task_key(const struct stint_msg *c, struct stint_task_key *t)
{
	uint64_t kt;
	bool ec;
	int r;

	if ((r = stint_msg_get_text(c, STINT_K_TASK, t->id, sizeof(t->id))) !=
	    0)
		return r;
	if (!stint_task_id_ok(t->id))
		return STINT_WIRE_RANGE;
	if ((r = stint_msg_get_uint(c, STINT_K_KEY_TYPE, &kt)) != 0)
		return r;
	if (!key_type_ok(kt))
		return STINT_WIRE_RANGE;
	t->key_type = (uint32_t)kt;
	ec = key_type_ec(kt);
	if ((r = stint_msg_get_uint(c, STINT_K_NOT_AFTER, &t->not_after)) != 0)
		return r;
	if ((r = stint_msg_get_uint_array(c, STINT_K_MECHS, t->mechs,
					  STINT_MECHS_MAX, &t->n_mechs)) != 0)
		return r;
	if ((r = dup_bytes(c, STINT_K_SPKI, true, &t->spki)) != 0)
		return r;
	if (ec) {
		if ((r = dup_bytes(c, STINT_K_EC_PARAMS, true,
				   &t->ec_params)) != 0 ||
		    (r = dup_bytes(c, STINT_K_EC_POINT, true, &t->ec_point)) !=
			    0)
			return r;
	} else {
		if ((r = dup_bytes(c, STINT_K_MODULUS, true, &t->modulus)) !=
			    0 ||
		    (r = dup_bytes(c, STINT_K_EXPONENT, true, &t->exponent)) !=
			    0)
			return r;
	}
	return dup_bytes(c, STINT_K_CERT, false, &t->cert);
}

int
stint_dec_list_rep(const uint8_t *buf, size_t len,
		   struct stint_reply_head *head, struct stint_list_rep *rep)
{
	struct stint_msg *m;
	size_t n = 0;
	int r;

	memset(rep, 0, sizeof(*rep));
	if ((r = dec_reply(buf, len, head, &m)) != 0 || m == NULL)
		return r;
	if ((r = stint_msg_get_bool(m, STINT_K_MORE, &rep->more)) != 0)
		goto out;
	if ((r = stint_msg_get_array_len(m, STINT_K_TASKS, &n)) != 0)
		goto out;
	if (n > STINT_LIST_PAGE) {
		r = STINT_WIRE_RANGE;
		goto out;
	}
	if (n > 0 && (rep->tasks = calloc(n, sizeof(*rep->tasks))) == NULL) {
		r = STINT_WIRE_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct stint_msg *c;

		rep->n_tasks = i + 1; /* so a failure frees what was copied */
		if ((r = stint_msg_get_map_at(m, STINT_K_TASKS, i, &c)) != 0 ||
		    (r = dec_task_key(c, &rep->tasks[i])) != 0)
			goto out;
	}
	r = 0;
out:
	if (r != 0)
		stint_list_rep_clear(rep);
	stint_msg_free(m);
	return r;
}

int
stint_dec_sign_rep(const uint8_t *buf, size_t len,
		   struct stint_reply_head *head, struct stint_bytes *sig)
{
	struct stint_msg *m;
	int r;

	sig->ptr = NULL;
	sig->len = 0;
	if ((r = dec_reply(buf, len, head, &m)) != 0 || m == NULL)
		return r;
	r = dup_bytes(m, STINT_K_SIG, true, sig);
	stint_msg_free(m);
	return r;
}

void
stint_list_rep_clear(struct stint_list_rep *rep)
{
	if (rep == NULL)
		return;
	for (size_t i = 0; i < rep->n_tasks; i++)
		stint_task_key_clear(&rep->tasks[i]);
	free(rep->tasks);
	memset(rep, 0, sizeof(*rep));
}

void
stint_bytes_clear(struct stint_bytes *b)
{
	if (b == NULL)
		return;
	free(b->ptr);
	b->ptr = NULL;
	b->len = 0;
}

/* --- names ------------------------------------------------------------------
 */

const char *
stint_status_str(uint64_t status)
{
	switch (status) {
	case STINT_OK:
		return "ok";
	case STINT_E_BAD_REQUEST:
		return "bad request";
	case STINT_E_VERSION:
		return "unsupported protocol version";
	case STINT_E_NO_AGENT:
		return "no agent registered for this process";
	case STINT_E_NOT_YOURS:
		return "task unknown or owned by another agent";
	case STINT_E_NOT_LIVE:
		return "task ended, revoked or past its deadline";
	case STINT_E_MECHANISM:
		return "mechanism not allowed for this key";
	case STINT_E_BUDGET:
		return "signature budget spent";
	case STINT_E_BACKEND:
		return "backend failure";
	case STINT_E_NOT_FOUND:
		return "not found";
	case STINT_E_EXISTS:
		return "already exists";
	case STINT_E_DENIED:
		return "operation not allowed on this socket";
	case STINT_E_INTERNAL:
		return "internal error; nothing was signed";
	case STINT_E_TOO_LARGE:
		return "frame too large";
	case STINT_E_LIMIT:
		return "above a configured limit";
	case STINT_E_UNKNOWN_OP:
		return "unknown operation";
	default:
		return "unknown status";
	}
}

static const struct {
	uint32_t type;
	const char *name;
} key_types[] = {
	{STINT_KEY_EC_P256, "ec-p256"},
	{STINT_KEY_EC_P384, "ec-p384"},
	{STINT_KEY_RSA_2048, "rsa-2048"},
	{STINT_KEY_RSA_3072, "rsa-3072"},
};

const char *
stint_key_type_str(uint32_t key_type)
{
	for (size_t i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++)
		if (key_types[i].type == key_type)
			return key_types[i].name;
	return "unknown";
}

int
stint_key_type_parse(const char *s, uint32_t *key_type)
{
	if (s == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++) {
		if (strcmp(key_types[i].name, s) == 0) {
			*key_type = key_types[i].type;
			return 0;
		}
	}
	return -1;
}
