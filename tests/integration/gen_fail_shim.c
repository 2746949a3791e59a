/*
 * gen_fail_shim.so: a PKCS#11 module that forwards every call to the
 * module named by STINT_SHIM_MODULE (SoftHSM2), for keygen-fail.sh.
 *
 * While the fault is on (STINT_SHIM_FAIL=1 in the environment, or the file
 * named by STINT_SHIM_FAIL_FILE exists), C_GenerateKeyPair does what a
 * loaded SoftHSM2 has been seen to do: it generates the pair in the real
 * module with both templates stripped of CKA_ID, CKA_LABEL and CKA_SUBJECT
 * and returns CKR_GENERAL_ERROR, leaving objects nobody asked for. Each
 * injected fault appends a line to STINT_SHIM_LOG when that is set.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define P11SHIM_MODULE_ENV "STINT_SHIM_MODULE"
#define P11SHIM_NAME       "gen_fail_shim"
#include "tests/p11shim.h"

#define TEMPLATE_MAX 64

static int
fault_on(void)
{
	const char *v = getenv("STINT_SHIM_FAIL");
	const char *file = getenv("STINT_SHIM_FAIL_FILE");

	if (v != NULL && strcmp(v, "1") == 0)
		return 1;
	return file != NULL && access(file, F_OK) == 0;
}

/* t without CKA_ID, CKA_LABEL and CKA_SUBJECT, into out; the count. */
static CK_ULONG
strip(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE *out)
{
	CK_ULONG i, k = 0;

	for (i = 0; i < n && k < TEMPLATE_MAX; i++)
		if (t[i].type != CKA_ID && t[i].type != CKA_LABEL &&
		    t[i].type != CKA_SUBJECT)
			out[k++] = t[i];
	return k;
}

static void
note_fault(CK_RV real_rv)
{
	const char *path = getenv("STINT_SHIM_LOG");
	FILE *fp;

	if (path == NULL || (fp = fopen(path, "a")) == NULL)
		return;
	fprintf(fp,
		"C_GenerateKeyPair stripped, real rv 0x%lx, returned "
		"CKR_GENERAL_ERROR\n",
		(unsigned long)real_rv);
	fclose(fp);
}

static CK_RV
shim_generate_key_pair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech,
		       CK_ATTRIBUTE_PTR pubt, CK_ULONG npub,
		       CK_ATTRIBUTE_PTR privt, CK_ULONG npriv,
		       CK_OBJECT_HANDLE_PTR hpub, CK_OBJECT_HANDLE_PTR hpriv)
{
	CK_ATTRIBUTE pub2[TEMPLATE_MAX], priv2[TEMPLATE_MAX];
	CK_OBJECT_HANDLE p = 0, q = 0;
	CK_RV rv;

	if (!fault_on())
		return p11shim_real->C_GenerateKeyPair(
			s, mech, pubt, npub, privt, npriv, hpub, hpriv);
	rv = p11shim_real->C_GenerateKeyPair(
		s, mech, pub2, strip(pubt, npub, pub2), priv2,
		strip(privt, npriv, priv2), &p, &q);
	note_fault(rv);
	return CKR_GENERAL_ERROR;
}

static void
p11shim_override(CK_FUNCTION_LIST *list)
{
	list->C_GenerateKeyPair = shim_generate_key_pair;
}
