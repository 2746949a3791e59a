/*
 * Names of PKCS#11 return values and mechanisms, for logs, traces and test
 * output. One table for the module (module/), stintd's PKCS#11 backend and
 * the test client (tests/integration/p11client.c).
 */
#ifndef STINT_COMMON_P11NAMES_H
#define STINT_COMMON_P11NAMES_H

#include <p11-kit/pkcs11.h>

/* "CKR_OK", ...; NULL when the table does not know rv. */
const char *stint_ckr_name(CK_RV rv);
/* "CKM_ECDSA", "CKM_SHA256", ...; NULL when unknown. */
const char *stint_ckm_name(CK_MECHANISM_TYPE mech);

#endif
