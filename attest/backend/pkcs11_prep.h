/*
 * Prepared signing operations for the PKCS#11 backend.
 *
 * A PKCS#11 signature is C_SignInit then C_Sign. In SoftHSM2 C_SignInit is
 * the larger half: it re-checks the key's object file and rebuilds the key
 * (for EC, the curve group) on every call. An agent that signs once almost
 * always signs again with the same key and mechanism, so after each
 * signature a background thread calls C_SignInit on a spare session and
 * parks it; the next SIGN for that key and mechanism only needs C_Sign.
 *
 * A prepared operation is inert: it signs nothing until stintd, after its
 * policy gate has allowed a request, hands it the bytes. Destroying a key
 * drops its prepared operations first (p11_prep_drop), so no operation
 * outlives its key in stintd's hands. All functions accept a NULL prep
 * (disabled) and then do nothing.
 */
#ifndef STINT_ATTEST_P11_PREP_H
#define STINT_ATTEST_P11_PREP_H

#include <stdbool.h>
#include <stddef.h>

#include <p11-kit/pkcs11.h>

#define STINT_PREP_MAX 256 /* upper bound for [backend] prepared_ops */

struct p11_prep;

/* Keeps at most max prepared operations (each holds one open session of
 * slot); 0 returns NULL, which disables preparation. The thread starts on
 * the first p11_prep_request, so a fork before that is safe. */
struct p11_prep *p11_prep_new(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot,
			      size_t max);
/* Stops the thread and closes every session; before C_Finalize. */
void p11_prep_free(struct p11_prep *p);

/* One signature with a prepared operation. */
struct p11_prep_sign_req {
	const char *key_id;
	const CK_MECHANISM *mech; /* type and parameters, matched exactly */
	const CK_BYTE *in;
	CK_ULONG in_len;
	/* The caller calls p11_prep_after_reply on this thread once its
	 * reply is sent: the next operation is prepared there and then. */
	bool after_reply;
};

/*
 * Signs with a prepared operation for req->key_id and exactly req->mech,
 * waiting briefly for one that is being prepared. Returns true when it
 * signed into sig (*sig_len: the capacity in, the length out) and false
 * when there was no prepared operation or it failed; the caller then signs
 * the ordinary way. The operation is prepared again for the next call.
 */
bool p11_prep_sign(struct p11_prep *p, const struct p11_prep_sign_req *req,
		   CK_BYTE *sig, CK_ULONG *sig_len);

/* Prepares, on the calling thread, the operation this thread's last
 * p11_prep_sign with after_reply left for it (nothing if none, or if the
 * key was dropped meanwhile). Between a reply and the next request, the
 * C_SignInit costs no thread hand-off. */
void p11_prep_after_reply(struct p11_prep *p);

/* Asks for an operation on key (the handle of key_id) to be prepared,
 * after an ordinary signature with it. Best effort. */
void p11_prep_request(struct p11_prep *p, const char *key_id,
		      CK_OBJECT_HANDLE key, const CK_MECHANISM *mech);

/* Operations ready to sign now, and the table's size (0, 0 when NULL). */
void p11_prep_stats(struct p11_prep *p, size_t *ready, size_t *max);

/* Forgets every operation on key_id: ready ones are closed now, one being
 * prepared is closed when its C_SignInit returns and is never handed out. */
void p11_prep_drop(struct p11_prep *p, const char *key_id);

#endif
