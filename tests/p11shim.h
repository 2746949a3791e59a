/*
 * p11shim.h: what every test or bench PKCS#11 shim repeats (never
 * installed). Include it once from the shim's .c file after defining
 * P11SHIM_MODULE_ENV (the environment variable naming the real module)
 * and optionally P11SHIM_DEFAULT_MODULE (used when the variable is unset
 * or empty) and P11SHIM_NAME (for dlopen errors on stderr); then define
 *
 *     static void p11shim_override(CK_FUNCTION_LIST *list);
 *
 * which replaces the entries the shim changes. The header defines
 * C_GetFunctionList: it loads the real module once, copies its function
 * list into the shim's, lets p11shim_override change it and hands it out.
 * The shim's own entries call the real module through p11shim_real.
 */
#ifndef STINT_TESTS_P11SHIM_H
#define STINT_TESTS_P11SHIM_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include <p11-kit/pkcs11.h>

#ifndef P11SHIM_MODULE_ENV
#error "define P11SHIM_MODULE_ENV before including p11shim.h"
#endif
#ifndef P11SHIM_NAME
#define P11SHIM_NAME "p11shim"
#endif

static CK_FUNCTION_LIST_PTR p11shim_real;
static CK_FUNCTION_LIST p11shim_list;

static void p11shim_override(CK_FUNCTION_LIST *list);

static CK_RV
p11shim_load(void)
{
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	const char *path = getenv(P11SHIM_MODULE_ENV);
	void *dl;
	CK_RV rv;

	if (p11shim_real != NULL)
		return CKR_OK;
#ifdef P11SHIM_DEFAULT_MODULE
	if (path == NULL || *path == '\0')
		path = P11SHIM_DEFAULT_MODULE;
#endif
	if (path == NULL)
		return CKR_GENERAL_ERROR;
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "%s: %s\n", P11SHIM_NAME, dlerror());
		return CKR_GENERAL_ERROR;
	}
	*(void **)&get = dlsym(dl, "C_GetFunctionList");
	if (get == NULL || (rv = get(&p11shim_real)) != CKR_OK ||
	    p11shim_real == NULL) {
		p11shim_real = NULL;
		return CKR_GENERAL_ERROR;
	}
	p11shim_list = *p11shim_real;
	p11shim_override(&p11shim_list);
	return CKR_OK;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list);

CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	CK_RV rv;

	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = p11shim_load()) != CKR_OK)
		return rv;
	p11shim_list.C_GetFunctionList = C_GetFunctionList;
	*list = &p11shim_list;
	return CKR_OK;
}

#endif
