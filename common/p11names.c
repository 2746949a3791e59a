/* PKCS#11 return value and mechanism names (p11names.h). */
#include <stddef.h>

#include "common/mechanism.h"
#include "common/p11names.h"

/* clang-format off */
#define N(x) {x, #x}

static const struct {
	CK_RV rv;
	const char *name;
} ckr_names[] = {
	N(CKR_OK),
	N(CKR_CANCEL),
	N(CKR_HOST_MEMORY),
	N(CKR_SLOT_ID_INVALID),
	N(CKR_GENERAL_ERROR),
	N(CKR_FUNCTION_FAILED),
	N(CKR_ARGUMENTS_BAD),
	N(CKR_NO_EVENT),
	N(CKR_NEED_TO_CREATE_THREADS),
	N(CKR_CANT_LOCK),
	N(CKR_ATTRIBUTE_READ_ONLY),
	N(CKR_ATTRIBUTE_SENSITIVE),
	N(CKR_ATTRIBUTE_TYPE_INVALID),
	N(CKR_ATTRIBUTE_VALUE_INVALID),
	N(CKR_ACTION_PROHIBITED),
	N(CKR_DATA_INVALID),
	N(CKR_DATA_LEN_RANGE),
	N(CKR_DEVICE_ERROR),
	N(CKR_DEVICE_MEMORY),
	N(CKR_DEVICE_REMOVED),
	N(CKR_FUNCTION_CANCELED),
	N(CKR_FUNCTION_NOT_PARALLEL),
	N(CKR_FUNCTION_NOT_SUPPORTED),
	N(CKR_KEY_HANDLE_INVALID),
	N(CKR_KEY_SIZE_RANGE),
	N(CKR_KEY_TYPE_INCONSISTENT),
	N(CKR_KEY_FUNCTION_NOT_PERMITTED),
	N(CKR_MECHANISM_INVALID),
	N(CKR_MECHANISM_PARAM_INVALID),
	N(CKR_OBJECT_HANDLE_INVALID),
	N(CKR_OPERATION_ACTIVE),
	N(CKR_OPERATION_NOT_INITIALIZED),
	N(CKR_PIN_INCORRECT),
	N(CKR_PIN_LOCKED),
	N(CKR_SESSION_CLOSED),
	N(CKR_SESSION_COUNT),
	N(CKR_SESSION_HANDLE_INVALID),
	N(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
	N(CKR_SESSION_READ_ONLY),
	N(CKR_SESSION_EXISTS),
	N(CKR_SIGNATURE_INVALID),
	N(CKR_SIGNATURE_LEN_RANGE),
	N(CKR_TEMPLATE_INCOMPLETE),
	N(CKR_TEMPLATE_INCONSISTENT),
	N(CKR_TOKEN_NOT_PRESENT),
	N(CKR_TOKEN_NOT_RECOGNIZED),
	N(CKR_TOKEN_WRITE_PROTECTED),
	N(CKR_USER_ALREADY_LOGGED_IN),
	N(CKR_USER_NOT_LOGGED_IN),
	N(CKR_USER_PIN_NOT_INITIALIZED),
	N(CKR_USER_TYPE_INVALID),
	N(CKR_RANDOM_NO_RNG),
	N(CKR_BUFFER_TOO_SMALL),
	N(CKR_CRYPTOKI_NOT_INITIALIZED),
	N(CKR_CRYPTOKI_ALREADY_INITIALIZED),
	N(CKR_SESSION_READ_ONLY_EXISTS),
	N(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
};

/* Mechanisms that are not signing mechanisms (those are in mechanism.c). */
static const struct {
	CK_MECHANISM_TYPE mech;
	const char *name;
} ckm_names[] = {
	N(CKM_SHA_1),
	N(CKM_SHA224),
	N(CKM_SHA256),
	N(CKM_SHA384),
	N(CKM_SHA512),
	N(CKM_EC_KEY_PAIR_GEN),
	N(CKM_RSA_PKCS_KEY_PAIR_GEN),
};
/* clang-format on */

#undef N

const char *
stint_ckr_name(CK_RV rv)
{
	for (size_t i = 0; i < sizeof(ckr_names) / sizeof(ckr_names[0]); i++)
		if (ckr_names[i].rv == rv)
			return ckr_names[i].name;
	return NULL;
}

const char *
stint_ckm_name(CK_MECHANISM_TYPE mech)
{
	const struct stint_mech *m = stint_mech_find(mech);

	if (m != NULL)
		return m->name;
	for (size_t i = 0; i < sizeof(ckm_names) / sizeof(ckm_names[0]); i++)
		if (ckm_names[i].mech == mech)
			return ckm_names[i].name;
	return NULL;
}
