/* p11client's parts (p11client.c: options, module, signing, listing;
 * p11client_conform.c: the --check conformance checks). */
#ifndef STINT_TESTS_INTEGRATION_P11CLIENT_H
#define STINT_TESTS_INTEGRATION_P11CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <p11-kit/pkcs11.h>

#define SIG_MAX 1024

struct mech_name {
	const char *name;
	CK_MECHANISM_TYPE mech;
	CK_MECHANISM_TYPE pss_hash; /* 0: not PSS */
	CK_RSA_PKCS_MGF_TYPE mgf;
	CK_ULONG salt;
	bool ec;
};

struct opts {
	const char *module, *token, *pin_env, *id, *label, *in, *out;
	const char *after_file, *wait_file, *pubkey;
	const struct mech_name *mech;
	unsigned long count;
	double seconds;
	unsigned threads;
	bool until_refused, list, der, check;
};

/* The parsed options, the module's function list and dlopen handle, and
 * the data to sign (--in, or 32 fixed bytes). */
extern struct opts o;
extern CK_FUNCTION_LIST_PTR p11;
extern void *module_handle;
extern CK_BYTE *data;
extern size_t data_len;

/* The CKR_ name of rv, or CKR_0x<hex> (a static buffer). */
const char *ckr(CK_RV rv);

/* --check: PKCS#11 semantics every module owes its callers, on the key
 * found in session s of slot. Prints "check NAME: ok|FAIL" per check and
 * "checks=N failed=M"; returns 0 if none failed. Closes s. */
int run_check(CK_SLOT_ID slot, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key);

#endif
