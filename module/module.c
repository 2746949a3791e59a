/*
 * Module entry points: C_Initialize/C_Finalize, library, slot, token and
 * mechanism information, locking, the function lists, and every function
 * the token refuses.
 *
 * One slot per agent this process matches (slots.c; slot 1 always
 * exists); its token is present while stintd answers HELLO and maps this
 * process to that agent. The token is write-protected and
 * needs no login: the process's OS identity is the credential, so no PIN
 * ever reaches the agent.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "common/log.h"
#include "common/p11names.h"
#include "common/mechanism.h"
#include "module/module.h"

static bool g_initialized;
static pid_t g_init_pid;
static uint32_t g_epoch;
static void *g_lock;

/* Application mutex callbacks, when given without CKF_OS_LOCKING_OK. */
static CK_CREATEMUTEX g_create_mutex;
static CK_DESTROYMUTEX g_destroy_mutex;
static CK_LOCKMUTEX g_lock_mutex;
static CK_UNLOCKMUTEX g_unlock_mutex;

CK_RV
mod_mutex_new(void **m)
{
	pthread_mutex_t *pm;

	if (g_create_mutex != NULL)
		return g_create_mutex(m);
	if ((pm = malloc(sizeof(*pm))) == NULL)
		return CKR_HOST_MEMORY;
	if (pthread_mutex_init(pm, NULL) != 0) {
		free(pm);
		return CKR_CANT_LOCK;
	}
	*m = pm;
	return CKR_OK;
}

void
mod_mutex_free(void *m)
{
	if (m == NULL)
		return;
	if (g_destroy_mutex != NULL) {
		g_destroy_mutex(m);
		return;
	}
	pthread_mutex_destroy(m);
	free(m);
}

void
mod_mutex_lock(void *m)
{
	if (g_lock_mutex != NULL)
		g_lock_mutex(m);
	else
		pthread_mutex_lock(m);
}

void
mod_mutex_unlock(void *m)
{
	if (g_unlock_mutex != NULL)
		g_unlock_mutex(m);
	else
		pthread_mutex_unlock(m);
}

void
mod_lock(void)
{
	mod_mutex_lock(g_lock);
}

void
mod_unlock(void)
{
	mod_mutex_unlock(g_lock);
}

uint32_t
mod_epoch(void)
{
	return g_epoch;
}

CK_RV
mod_check(void)
{
	return g_initialized ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED;
}

const char *
mod_ckr_name(CK_RV rv)
{
	const char *name = stint_ckr_name(rv);

	return name != NULL ? name : "CKR_(other)";
}

CK_RV
mod_trace(const char *fn, CK_RV rv)
{
	if (stint_debug_enabled("module"))
		stint_debug("module", "%s: %s (0x%lx)", fn, mod_ckr_name(rv),
			    (unsigned long)rv);
	return rv;
}

static void
pad(CK_UTF8CHAR *field, size_t cap, const char *s)
{
	size_t n = strlen(s);

	memset(field, ' ', cap);
	memcpy(field, s, n < cap ? n : cap);
}

/* --- initialisation ------------------------------------------------- */

static void
teardown(void)
{
	sessions_reset();
	objects_reset();
	slots_reset();
	client_fini();
	mod_mutex_free(g_lock);
	g_lock = NULL;
	g_initialized = false;
}

static CK_RV
set_locking(const CK_C_INITIALIZE_ARGS *args)
{
	int n = 0;

	g_create_mutex = NULL;
	g_destroy_mutex = NULL;
	g_lock_mutex = NULL;
	g_unlock_mutex = NULL;
	if (args == NULL)
		return CKR_OK;
	if (args->pReserved != NULL)
		return CKR_ARGUMENTS_BAD;
	n = (args->CreateMutex != NULL) + (args->DestroyMutex != NULL) +
	    (args->LockMutex != NULL) + (args->UnlockMutex != NULL);
	if (n != 0 && n != 4)
		return CKR_ARGUMENTS_BAD;
	/* With CKF_OS_LOCKING_OK we may use either; pthread is cheaper. Only
	 * callbacks without the flag oblige us to use them. */
	if (n == 4 && !(args->flags & CKF_OS_LOCKING_OK)) {
		g_create_mutex = args->CreateMutex;
		g_destroy_mutex = args->DestroyMutex;
		g_lock_mutex = args->LockMutex;
		g_unlock_mutex = args->UnlockMutex;
	}
	return CKR_OK;
}

CK_RV
C_Initialize(CK_VOID_PTR pInitArgs)
{
	CK_RV rv;

	if (g_initialized) {
		/* A forked child may initialise again (libp11 does): start
		 * afresh rather than refuse. Inherited connections are only
		 * closed, never written to. */
		if (getpid() == g_init_pid)
			return TRACE(CKR_CRYPTOKI_ALREADY_INITIALIZED);
		teardown();
	}
	if ((rv = set_locking(pInitArgs)) != CKR_OK)
		return TRACE(rv);
	stint_log_init("stint-pkcs11", false);
	if ((rv = mod_mutex_new(&g_lock)) != CKR_OK)
		return TRACE(rv);
	if ((rv = client_init()) != CKR_OK) {
		mod_mutex_free(g_lock);
		g_lock = NULL;
		return TRACE(rv);
	}
	if (++g_epoch > 0xff)
		g_epoch = 1;
	g_init_pid = getpid();
	g_initialized = true;
	return TRACE(CKR_OK);
}

CK_RV
C_Finalize(CK_VOID_PTR pReserved)
{
	if (pReserved != NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	if (!g_initialized)
		return TRACE(CKR_CRYPTOKI_NOT_INITIALIZED);
	teardown();
	return TRACE(CKR_OK);
}

CK_RV
C_GetInfo(CK_INFO_PTR pInfo)
{
	if (!g_initialized)
		return TRACE(CKR_CRYPTOKI_NOT_INITIALIZED);
	if (pInfo == NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	memset(pInfo, 0, sizeof(*pInfo));
	pInfo->cryptokiVersion.major = 2;
	pInfo->cryptokiVersion.minor = 40;
	pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "Stint");
	pad(pInfo->libraryDescription, sizeof(pInfo->libraryDescription),
	    "Stint task keys");
	pInfo->libraryVersion.major = 0;
	pInfo->libraryVersion.minor = 1;
	return TRACE(CKR_OK);
}

/* --- slot and token ------------------------------------------------- */

/* CKR_OK with the agent name when stintd maps this process to the agent
 * of slot id (slots.c). */
static CK_RV
token_probe(CK_SLOT_ID id, char agent[STINT_NAME_MAX + 1])
{
	if (slots_probe() != CKR_OK || !slot_agent(id, agent, NULL))
		return CKR_TOKEN_NOT_PRESENT;
	return CKR_OK;
}

CK_RV
C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList,
	      CK_ULONG_PTR pulCount)
{
	CK_SLOT_ID ids[STINT_SLOTS_MAX];
	CK_ULONG n, i;

	if (!g_initialized)
		return TRACE(CKR_CRYPTOKI_NOT_INITIALIZED);
	if (pulCount == NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	/* One slot per agent this process matches (stintd down: none
	 * present, the slots seen so far stay). */
	(void)slots_probe();
	n = slots_list(ids, STINT_SLOTS_MAX, tokenPresent);
	if (pSlotList == NULL) {
		*pulCount = n;
		return TRACE(CKR_OK);
	}
	if (*pulCount < n) {
		*pulCount = n;
		return TRACE(CKR_BUFFER_TOO_SMALL);
	}
	for (i = 0; i < n; i++)
		pSlotList[i] = ids[i];
	*pulCount = n;
	return TRACE(CKR_OK);
}

CK_RV
C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
	char agent[STINT_NAME_MAX + 1];

	if (!g_initialized)
		return TRACE(CKR_CRYPTOKI_NOT_INITIALIZED);
	if (!slot_valid(slotID))
		return TRACE(CKR_SLOT_ID_INVALID);
	if (pInfo == NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	memset(pInfo, 0, sizeof(*pInfo));
	pad(pInfo->slotDescription, sizeof(pInfo->slotDescription),
	    "Stint agent socket");
	pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "Stint");
	/* The token comes and goes with stintd and the agent registration;
	 * PKCS#11 says a slot without CKF_REMOVABLE_DEVICE always has its
	 * token present, so the flag is set. */
	pInfo->flags = CKF_REMOVABLE_DEVICE;
	if (token_probe(slotID, agent) == CKR_OK)
		pInfo->flags |= CKF_TOKEN_PRESENT;
	pInfo->hardwareVersion.major = 0;
	pInfo->firmwareVersion.major = 0;
	pInfo->firmwareVersion.minor = 1;
	return TRACE(CKR_OK);
}

CK_RV
C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
	char agent[STINT_NAME_MAX + 1];
	unsigned char md[SHA256_DIGEST_LENGTH];
	char serial[17];
	CK_ULONG all, rw;
	CK_RV rv;
	int i;

	if (!g_initialized)
		return TRACE(CKR_CRYPTOKI_NOT_INITIALIZED);
	if (!slot_valid(slotID))
		return TRACE(CKR_SLOT_ID_INVALID);
	if (pInfo == NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	if ((rv = token_probe(slotID, agent)) != CKR_OK)
		return TRACE(rv);
	memset(pInfo, 0, sizeof(*pInfo));
	pad(pInfo->label, sizeof(pInfo->label), agent);
	pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "Stint");
	pad(pInfo->model, sizeof(pInfo->model), "stint-pkcs11");
	/* Stable per agent, so tools can tell agents' tokens apart. */
	SHA256((const unsigned char *)agent, strlen(agent), md);
	for (i = 0; i < 8; i++)
		snprintf(serial + 2 * i, 3, "%02x", md[i]);
	pad(pInfo->serialNumber, sizeof(pInfo->serialNumber), serial);
	/* No SO PIN exists: C_Login(CKU_SO) can never succeed. */
	pInfo->flags =
		CKF_TOKEN_INITIALIZED | CKF_WRITE_PROTECTED | CKF_SO_PIN_LOCKED;
	mod_lock();
	sessions_count(&all, &rw);
	mod_unlock();
	pInfo->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
	pInfo->ulSessionCount = all;
	pInfo->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
	pInfo->ulRwSessionCount = rw;
	pInfo->ulMaxPinLen = 0;
	pInfo->ulMinPinLen = 0;
	pInfo->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->firmwareVersion.minor = 1;
	/* No CKF_CLOCK_ON_TOKEN: utcTime is blank. */
	memset(pInfo->utcTime, ' ', sizeof(pInfo->utcTime));
	return TRACE(CKR_OK);
}

CK_RV
C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pRsvd)
{
	(void)flags;
	(void)pSlot;
	(void)pRsvd;
	if (!g_initialized)
		return TRACE(CKR_CRYPTOKI_NOT_INITIALIZED);
	return TRACE(CKR_FUNCTION_NOT_SUPPORTED);
}

CK_RV
C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList,
		   CK_ULONG_PTR pulCount)
{
	const struct stint_mech *all;
	size_t n, i;

	if (!g_initialized)
		return TRACE(CKR_CRYPTOKI_NOT_INITIALIZED);
	if (!slot_valid(slotID))
		return TRACE(CKR_SLOT_ID_INVALID);
	if (pulCount == NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	all = stint_mech_all(&n);
	if (pMechanismList == NULL) {
		*pulCount = n;
		return TRACE(CKR_OK);
	}
	if (*pulCount < n) {
		*pulCount = n;
		return TRACE(CKR_BUFFER_TOO_SMALL);
	}
	for (i = 0; i < n; i++)
		pMechanismList[i] = all[i].mech;
	*pulCount = n;
	return TRACE(CKR_OK);
}

CK_RV
C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type,
		   CK_MECHANISM_INFO_PTR pInfo)
{
	const struct stint_mech *m;

	if (!g_initialized)
		return TRACE(CKR_CRYPTOKI_NOT_INITIALIZED);
	if (!slot_valid(slotID))
		return TRACE(CKR_SLOT_ID_INVALID);
	if (pInfo == NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	if ((m = stint_mech_find(type)) == NULL)
		return TRACE(CKR_MECHANISM_INVALID);
	memset(pInfo, 0, sizeof(*pInfo));
	pInfo->flags = CKF_SIGN;
	if (m->ec) {
		pInfo->ulMinKeySize = 256;
		pInfo->ulMaxKeySize = 384;
		pInfo->flags |=
			CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
	} else {
		pInfo->ulMinKeySize = 2048;
		pInfo->ulMaxKeySize = 3072;
	}
	return TRACE(CKR_OK);
}

/* --- what a write-protected, sign-only token refuses ------------------ */

/* The order conformance suites expect (and SoftHSM follows): not
 * initialised, then bad arguments (a NULL pointer the function needs),
 * then the session handle, then the verdict rv. */
static CK_RV
refuse_args(CK_SESSION_HANDLE h, bool bad_args, CK_RV rv)
{
	if (!g_initialized)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (bad_args)
		return CKR_ARGUMENTS_BAD;
	mod_lock();
	if (session_get(h) == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	mod_unlock();
	return rv;
}

/* A NULL buffer with a non-zero length. */
#define NULL_LEN(p, n) ((p) == NULL && (n) > 0)

CK_RV
C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
	    CK_UTF8CHAR_PTR pLabel)
{
	if (!g_initialized)
		return TRACE(CKR_CRYPTOKI_NOT_INITIALIZED);
	if (NULL_LEN(pPin, ulPinLen) || pLabel == NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	if (!slot_valid(slotID))
		return TRACE(CKR_SLOT_ID_INVALID);
	return TRACE(CKR_TOKEN_WRITE_PROTECTED);
}

CK_RV
C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	return TRACE(refuse_args(hSession, NULL_LEN(pPin, ulPinLen),
				 CKR_TOKEN_WRITE_PROTECTED));
}

CK_RV
C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
	 CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
	return TRACE(refuse_args(hSession,
				 NULL_LEN(pOldPin, ulOldLen) ||
					 NULL_LEN(pNewPin, ulNewLen),
				 CKR_TOKEN_WRITE_PROTECTED));
}

CK_RV
C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pState,
		    CK_ULONG_PTR pulStateLen)
{
	(void)pState;
	return TRACE(refuse_args(hSession, pulStateLen == NULL,
				 CKR_FUNCTION_NOT_SUPPORTED));
}

CK_RV
C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pState,
		    CK_ULONG ulStateLen, CK_OBJECT_HANDLE hEncKey,
		    CK_OBJECT_HANDLE hAuthKey)
{
	(void)hEncKey;
	(void)hAuthKey;
	return TRACE(refuse_args(hSession, NULL_LEN(pState, ulStateLen),
				 CKR_FUNCTION_NOT_SUPPORTED));
}

CK_RV
C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
	       CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject)
{
	return TRACE(refuse_args(hSession,
				 pTemplate == NULL || phObject == NULL,
				 CKR_TOKEN_WRITE_PROTECTED));
}

CK_RV
C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
	     CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
	     CK_OBJECT_HANDLE_PTR phNewObject)
{
	(void)hObject;
	return TRACE(refuse_args(
		hSession, NULL_LEN(pTemplate, ulCount) || phNewObject == NULL,
		CKR_TOKEN_WRITE_PROTECTED));
}

CK_RV
C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
	(void)hObject;
	return TRACE(refuse_args(hSession, false, CKR_TOKEN_WRITE_PROTECTED));
}

CK_RV
C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
		    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	(void)hObject;
	return TRACE(refuse_args(hSession, pTemplate == NULL,
				 CKR_TOKEN_WRITE_PROTECTED));
}

CK_RV
C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
	      CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
	      CK_OBJECT_HANDLE_PTR phKey)
{
	return TRACE(refuse_args(hSession,
				 pMechanism == NULL ||
					 NULL_LEN(pTemplate, ulCount) ||
					 phKey == NULL,
				 CKR_TOKEN_WRITE_PROTECTED));
}

CK_RV
C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		  CK_ATTRIBUTE_PTR pPublicKeyTemplate,
		  CK_ULONG ulPublicKeyAttributeCount,
		  CK_ATTRIBUTE_PTR pPrivateKeyTemplate,
		  CK_ULONG ulPrivateKeyAttributeCount,
		  CK_OBJECT_HANDLE_PTR phPublicKey,
		  CK_OBJECT_HANDLE_PTR phPrivateKey)
{
	return TRACE(refuse_args(hSession,
				 pMechanism == NULL ||
					 NULL_LEN(pPublicKeyTemplate,
						  ulPublicKeyAttributeCount) ||
					 NULL_LEN(pPrivateKeyTemplate,
						  ulPrivateKeyAttributeCount) ||
					 phPublicKey == NULL ||
					 phPrivateKey == NULL,
				 CKR_TOKEN_WRITE_PROTECTED));
}

/* Encryption, decryption, verification, recovery, wrapping, derivation
 * and dual-function calls: a sign-only token has none. bad: the
 * arguments that make the call malformed whatever the token. */
#define REFUSED(name, params, bad, rv)                                         \
	CK_RV name params                                                      \
	{                                                                      \
		return TRACE(refuse_args(hSession, (bad), (rv)));              \
	}
#define NOT_SUPPORTED(name, params, bad)                                       \
	REFUSED(name, params, bad, CKR_FUNCTION_NOT_SUPPORTED)

/* The shapes of the calls: Init(mechanism, key); one-shot or update
 * (in, in_len, out, out_len); final (out, out_len). */
#define P_INIT                                                                 \
	(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
#define P_DATA                                                                 \
	(CK_SESSION_HANDLE hSession, CK_BYTE_PTR a, CK_ULONG b, CK_BYTE_PTR c, \
	 CK_ULONG_PTR d)
#define P_FINAL    (CK_SESSION_HANDLE hSession, CK_BYTE_PTR a, CK_ULONG_PTR b)
#define P_UPDATE   (CK_SESSION_HANDLE hSession, CK_BYTE_PTR a, CK_ULONG b)
#define BAD_INIT   ((void)k, m == NULL)
#define BAD_DATA   ((void)c, NULL_LEN(a, b) || d == NULL)
#define BAD_FINAL  ((void)a, b == NULL)
#define BAD_UPDATE NULL_LEN(a, b)

NOT_SUPPORTED(C_EncryptInit, P_INIT, BAD_INIT)
NOT_SUPPORTED(C_Encrypt, P_DATA, BAD_DATA)
NOT_SUPPORTED(C_EncryptUpdate, P_DATA, BAD_DATA)
NOT_SUPPORTED(C_EncryptFinal, P_FINAL, BAD_FINAL)
NOT_SUPPORTED(C_DecryptInit, P_INIT, BAD_INIT)
NOT_SUPPORTED(C_Decrypt, P_DATA, BAD_DATA)
NOT_SUPPORTED(C_DecryptUpdate, P_DATA, BAD_DATA)
NOT_SUPPORTED(C_DecryptFinal, P_FINAL, BAD_FINAL)
NOT_SUPPORTED(C_SignRecoverInit, P_INIT, BAD_INIT)
NOT_SUPPORTED(C_SignRecover, P_DATA, BAD_DATA)
NOT_SUPPORTED(C_VerifyInit, P_INIT, BAD_INIT)
NOT_SUPPORTED(C_Verify,
	      (CK_SESSION_HANDLE hSession, CK_BYTE_PTR a, CK_ULONG b,
	       CK_BYTE_PTR c, CK_ULONG d),
	      NULL_LEN(a, b) || c == NULL)
NOT_SUPPORTED(C_VerifyUpdate, P_UPDATE, BAD_UPDATE)
NOT_SUPPORTED(C_VerifyFinal, P_UPDATE, ((void)b, a == NULL))
NOT_SUPPORTED(C_VerifyRecoverInit, P_INIT, BAD_INIT)
NOT_SUPPORTED(C_VerifyRecover, P_DATA, ((void)c, a == NULL || d == NULL))
NOT_SUPPORTED(C_DigestEncryptUpdate, P_DATA, BAD_DATA)
NOT_SUPPORTED(C_DecryptDigestUpdate, P_DATA, BAD_DATA)
NOT_SUPPORTED(C_SignEncryptUpdate, P_DATA, BAD_DATA)
NOT_SUPPORTED(C_DecryptVerifyUpdate, P_DATA, BAD_DATA)
NOT_SUPPORTED(C_WrapKey,
	      (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR m,
	       CK_OBJECT_HANDLE a, CK_OBJECT_HANDLE b, CK_BYTE_PTR c,
	       CK_ULONG_PTR d),
	      ((void)a, (void)b, (void)c, m == NULL || d == NULL))
NOT_SUPPORTED(C_UnwrapKey,
	      (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR m,
	       CK_OBJECT_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
	       CK_ATTRIBUTE_PTR d, CK_ULONG e, CK_OBJECT_HANDLE_PTR f),
	      ((void)a, (void)c,
	       m == NULL || b == NULL || NULL_LEN(d, e) || f == NULL))
NOT_SUPPORTED(C_DeriveKey,
	      (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR m,
	       CK_OBJECT_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c,
	       CK_OBJECT_HANDLE_PTR d),
	      ((void)a, m == NULL || NULL_LEN(b, c) || d == NULL))

/* Digests: the token knows no digest mechanism (C_GetMechanismList lists
 * none), so C_DigestInit refuses every mechanism as unknown and no digest
 * operation is ever initialised. */
REFUSED(C_DigestInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR m),
	m == NULL, CKR_MECHANISM_INVALID)
REFUSED(C_Digest, P_DATA, BAD_DATA, CKR_OPERATION_NOT_INITIALIZED)
REFUSED(C_DigestUpdate, P_UPDATE, BAD_UPDATE, CKR_OPERATION_NOT_INITIALIZED)
REFUSED(C_DigestKey, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE k),
	((void)k, false), CKR_OPERATION_NOT_INITIALIZED)
REFUSED(C_DigestFinal, P_FINAL, BAD_FINAL, CKR_OPERATION_NOT_INITIALIZED)

CK_RV
C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulLen)
{
	(void)ulLen;
	return TRACE(refuse_args(hSession, pSeed == NULL, CKR_RANDOM_NO_RNG));
}

CK_RV
C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulLen)
{
	(void)ulLen;
	return TRACE(refuse_args(hSession, pData == NULL, CKR_RANDOM_NO_RNG));
}

CK_RV
C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
	return TRACE(refuse_args(hSession, false, CKR_FUNCTION_NOT_PARALLEL));
}

CK_RV
C_CancelFunction(CK_SESSION_HANDLE hSession)
{
	return TRACE(refuse_args(hSession, false, CKR_FUNCTION_NOT_PARALLEL));
}

/* --- function lists and interfaces ---------------------------------- */

static CK_FUNCTION_LIST function_list = {
	.version = {2, 40},
	.C_Initialize = C_Initialize,
	.C_Finalize = C_Finalize,
	.C_GetInfo = C_GetInfo,
	.C_GetFunctionList = C_GetFunctionList,
	.C_GetSlotList = C_GetSlotList,
	.C_GetSlotInfo = C_GetSlotInfo,
	.C_GetTokenInfo = C_GetTokenInfo,
	.C_GetMechanismList = C_GetMechanismList,
	.C_GetMechanismInfo = C_GetMechanismInfo,
	.C_InitToken = C_InitToken,
	.C_InitPIN = C_InitPIN,
	.C_SetPIN = C_SetPIN,
	.C_OpenSession = C_OpenSession,
	.C_CloseSession = C_CloseSession,
	.C_CloseAllSessions = C_CloseAllSessions,
	.C_GetSessionInfo = C_GetSessionInfo,
	.C_GetOperationState = C_GetOperationState,
	.C_SetOperationState = C_SetOperationState,
	.C_Login = C_Login,
	.C_Logout = C_Logout,
	.C_CreateObject = C_CreateObject,
	.C_CopyObject = C_CopyObject,
	.C_DestroyObject = C_DestroyObject,
	.C_GetObjectSize = C_GetObjectSize,
	.C_GetAttributeValue = C_GetAttributeValue,
	.C_SetAttributeValue = C_SetAttributeValue,
	.C_FindObjectsInit = C_FindObjectsInit,
	.C_FindObjects = C_FindObjects,
	.C_FindObjectsFinal = C_FindObjectsFinal,
	.C_EncryptInit = C_EncryptInit,
	.C_Encrypt = C_Encrypt,
	.C_EncryptUpdate = C_EncryptUpdate,
	.C_EncryptFinal = C_EncryptFinal,
	.C_DecryptInit = C_DecryptInit,
	.C_Decrypt = C_Decrypt,
	.C_DecryptUpdate = C_DecryptUpdate,
	.C_DecryptFinal = C_DecryptFinal,
	.C_DigestInit = C_DigestInit,
	.C_Digest = C_Digest,
	.C_DigestUpdate = C_DigestUpdate,
	.C_DigestKey = C_DigestKey,
	.C_DigestFinal = C_DigestFinal,
	.C_SignInit = C_SignInit,
	.C_Sign = C_Sign,
	.C_SignUpdate = C_SignUpdate,
	.C_SignFinal = C_SignFinal,
	.C_SignRecoverInit = C_SignRecoverInit,
	.C_SignRecover = C_SignRecover,
	.C_VerifyInit = C_VerifyInit,
	.C_Verify = C_Verify,
	.C_VerifyUpdate = C_VerifyUpdate,
	.C_VerifyFinal = C_VerifyFinal,
	.C_VerifyRecoverInit = C_VerifyRecoverInit,
	.C_VerifyRecover = C_VerifyRecover,
	.C_DigestEncryptUpdate = C_DigestEncryptUpdate,
	.C_DecryptDigestUpdate = C_DecryptDigestUpdate,
	.C_SignEncryptUpdate = C_SignEncryptUpdate,
	.C_DecryptVerifyUpdate = C_DecryptVerifyUpdate,
	.C_GenerateKey = C_GenerateKey,
	.C_GenerateKeyPair = C_GenerateKeyPair,
	.C_WrapKey = C_WrapKey,
	.C_UnwrapKey = C_UnwrapKey,
	.C_DeriveKey = C_DeriveKey,
	.C_SeedRandom = C_SeedRandom,
	.C_GenerateRandom = C_GenerateRandom,
	.C_GetFunctionStatus = C_GetFunctionStatus,
	.C_CancelFunction = C_CancelFunction,
	.C_WaitForSlotEvent = C_WaitForSlotEvent,
};

static CK_UTF8CHAR interface_name[] = "PKCS 11";

#ifndef CKF_INTERFACE_FORK_SAFE /* PKCS#11 3.0; p11-kit 0.24 lacks it */
#define CKF_INTERFACE_FORK_SAFE 0x00000001UL
#endif

/* Fork-safe as PKCS#11 3.0 defines it: after fork(2) each process has its
 * own copy of the sessions, their state and the login state, and object
 * handles stay valid; the child opens its own connections to stintd on
 * its next call (client.c). pkcs11-provider then keeps using the module
 * in a child instead of finalizing it (tests/integration/provider.sh). */
static CK_INTERFACE interfaces[] = {
	{interface_name, &function_list, CKF_INTERFACE_FORK_SAFE},
};

STINT_EXPORT CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
	if (ppFunctionList == NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	*ppFunctionList = &function_list;
	return TRACE(CKR_OK);
}

STINT_EXPORT CK_RV
C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
	const CK_ULONG n = sizeof(interfaces) / sizeof(interfaces[0]);

	if (pulCount == NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	if (pInterfacesList == NULL) {
		*pulCount = n;
		return TRACE(CKR_OK);
	}
	if (*pulCount < n) {
		*pulCount = n;
		return TRACE(CKR_BUFFER_TOO_SMALL);
	}
	memcpy(pInterfacesList, interfaces, sizeof(interfaces));
	*pulCount = n;
	return TRACE(CKR_OK);
}

STINT_EXPORT CK_RV
C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
	       CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
	if (ppInterface == NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	if (pInterfaceName != NULL &&
	    strcmp((const char *)pInterfaceName, (const char *)interface_name))
		return TRACE(CKR_ARGUMENTS_BAD);
	if (pVersion != NULL &&
	    (pVersion->major != function_list.version.major ||
	     pVersion->minor != function_list.version.minor))
		return TRACE(CKR_ARGUMENTS_BAD);
	if ((flags & interfaces[0].flags) != flags)
		return TRACE(CKR_ARGUMENTS_BAD);
	*ppInterface = &interfaces[0];
	return TRACE(CKR_OK);
}
