/*
 * stint-pkcs11.so internals. The module holds no secret: it presents one
 * slot whose token is the agent the calling process maps to, lists the
 * agent's live task keys as objects, and forwards each signature to stintd
 * in one SIGN round trip.
 *
 *   module.c   C_Initialize/Finalize, info, slot, token, mechanisms, locking,
 *              function list, everything the token refuses
 *   client.c   connections to stintd: pool, timeouts, retry, fork
 *   objects.c  task keys as PKCS#11 objects, attributes, find
 *   session.c  sessions, login, C_FindObjects*
 *   sign.c     C_SignInit/Sign/SignUpdate/SignFinal
 *
 * Locking: one state lock guards sessions and objects and is never held
 * across a round trip to stintd, so threads sign in parallel; client.c has
 * its own pool lock. Both are made by mod_mutex_*, which honours the
 * application's CK_C_INITIALIZE_ARGS.
 */
#ifndef STINT_MODULE_H
#define STINT_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "common/proto.h"

#define STINT_EXPORT __attribute__((visibility("default")))

/* PKCS#11 3.0 interfaces; p11-kit 0.24's pkcs11.h predates them. */
typedef struct CK_INTERFACE {
	CK_UTF8CHAR_PTR pInterfaceName;
	CK_VOID_PTR pFunctionList;
	CK_FLAGS flags;
} CK_INTERFACE;
typedef CK_INTERFACE *CK_INTERFACE_PTR;
typedef CK_INTERFACE_PTR *CK_INTERFACE_PTR_PTR;

CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList,
			 CK_ULONG_PTR pulCount);
CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
		     CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags);

#define STINT_SLOT_ID   1 /* the first agent's slot */
#define STINT_SLOTS_MAX 64

/* --- module.c ------------------------------------------------------- */

/* CKR_CRYPTOKI_NOT_INITIALIZED unless C_Initialize succeeded. */
CK_RV mod_check(void);
void mod_lock(void);
void mod_unlock(void);
/* Bumped by every C_Initialize: object handles carry it, so a handle from
 * before C_Finalize (or a re-initialisation after fork) is unknown. */
uint32_t mod_epoch(void);
/* Mutexes per the application's CK_C_INITIALIZE_ARGS. */
CK_RV mod_mutex_new(void **m);
void mod_mutex_free(void *m);
void mod_mutex_lock(void *m);
void mod_mutex_unlock(void *m);
const char *mod_ckr_name(CK_RV rv);
/* Traces "C_Foo: CKR_..." under STINT_DEBUG=module and returns rv. */
CK_RV mod_trace(const char *fn, CK_RV rv);
#define TRACE(rv) mod_trace(__func__, (rv))

/* --- client.c ------------------------------------------------------- */

CK_RV client_init(void);
void client_fini(void);
/* These return 0 or a STINT_WIRE_* code (transport or codec failure). */
/* hello->agent "" when this process is no agent; hello->names every agent
 * when several. */
int client_hello(struct stint_hello_rep *hello);
/* All live tasks, paging through LIST, as agent as (NULL: the lowest).
 * *status is the daemon's status (STINT_E_NO_AGENT: the peer is no
 * agent, or not that one). Free with client_tasks_free. */
int client_list(const char *as, struct stint_task_key **tasks, size_t *n,
		uint64_t *status);
void client_tasks_free(struct stint_task_key *tasks, size_t n);
/* STINT_DEBUG only: logs what stintd knows of task id (unknown, ended at,
 * expired at, another agent's); mine is this uid's agent or "". */
void client_explain_task(const char *id, const char *mine);
/* On STINT_OK, sig receives up to *sig_len bytes and *sig_len the length;
 * STINT_WIRE_RANGE if the signature does not fit. */
int client_sign(const struct stint_sign_req *req, uint64_t *status,
		uint8_t *sig, size_t *sig_len);

/* --- slots.c: one slot per agent ------------------------------------ */

/* HELLO; slots for new agent names, present flags. Takes the lock. */
CK_RV slots_probe(void);
/* A slot id this module has (slot 1 always). Takes the lock. */
bool slot_valid(CK_SLOT_ID id);
/* The agent of a slot whose token is present (last probe); *multi: the
 * process matched several agents (requests then name theirs). */
bool slot_agent(CK_SLOT_ID id, char agent[STINT_NAME_MAX + 1], bool *multi);
bool slot_agent_locked(CK_SLOT_ID id, char agent[STINT_NAME_MAX + 1],
		       bool *multi);
/* stintd says the process no longer matches the slot's agent. */
void slot_gone(CK_SLOT_ID id);
/* Slot ids (all, or those with a token) into ids; returns how many. */
size_t slots_list(CK_SLOT_ID *ids, size_t cap, bool present_only);
void slots_reset(void);

/* --- objects.c ------------------------------------------------------ */

enum obj_kind { OBJ_PRIVATE = 1, OBJ_PUBLIC = 2, OBJ_CERT = 3 };

/* What signing needs from a private key, copied out under the lock. */
struct sign_key {
	char task[STINT_TASK_ID_MAX + 1];
	uint32_t key_type;
	uint64_t mechs[STINT_MECHS_MAX];
	size_t n_mechs;
	size_t sig_len; /* bytes of a signature (EC r||s, RSA modulus) */
	char as_agent[STINT_NAME_MAX + 1]; /* its agent, "" unless several */
};

/* A LIST round trip, merged into the object table. CKR_OK,
 * CKR_TOKEN_NOT_PRESENT (no agent) or CKR_DEVICE_ERROR. Takes the lock. */
CK_RV objects_refresh(CK_SLOT_ID slot);
void objects_reset(void);
/* The rest are called with the state lock held. */
CK_RV objects_get_attrs(CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR templ, CK_ULONG n);
CK_RV objects_size(CK_OBJECT_HANDLE h, CK_ULONG_PTR size);
/* Handles of live objects matching every attribute of templ; malloc'ed. */
CK_RV objects_find(CK_SLOT_ID slot, CK_ATTRIBUTE_PTR templ, CK_ULONG n,
		   CK_OBJECT_HANDLE **out, size_t *n_out);
/* CKR_KEY_HANDLE_INVALID for unknown handles and certificates,
 * CKR_KEY_TYPE_INCONSISTENT for public keys. Ended tasks still resolve:
 * stintd refuses them, and records that it did. */
CK_RV objects_sign_key(CK_OBJECT_HANDLE h, struct sign_key *key);

/* --- session.c ------------------------------------------------------ */

struct sign_op;

struct session {
	CK_SESSION_HANDLE handle;
	CK_FLAGS flags;
	CK_SLOT_ID slot; /* its agent's (slots.c) */
	bool finding;
	CK_OBJECT_HANDLE *found;
	size_t n_found, next_found;
	struct sign_op *sign; /* NULL when no signing operation is active */
	struct session *next;
};

/* Called with the state lock held; NULL if the handle is unknown. */
struct session *session_get(CK_SESSION_HANDLE h);
void sessions_reset(void);
/* Closes the sessions of one slot. Lock held. */
void sessions_reset_slot(CK_SLOT_ID slot);
/* For C_GetTokenInfo. Lock held. */
void sessions_count(CK_ULONG *all, CK_ULONG *rw);

/* --- sign.c --------------------------------------------------------- */

void sign_op_free(struct sign_op *op);
/* The session is closing: free op unless a thread is using it right now,
 * in which case that thread frees it when it is done. Lock held. */
void sign_op_abandon(struct sign_op *op);

#endif
