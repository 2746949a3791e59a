/*
 * p11client --check: PKCS#11 semantics every module owes its callers
 * (attributes, find, refused writes, length queries and multi-part signing,
 * PSS parameters, login states, NULL arguments, C_GetInterface, fork).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "tests/integration/p11client.h"

/* --- --check: PKCS#11 semantics every module owes its callers --------- */

static unsigned checks, failures;

static void expect(const char *name, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
expect(const char *name, bool ok, const char *fmt, ...)
{
	va_list ap;

	checks++;
	printf("check %s: %s", name, ok ? "ok" : "FAIL");
	if (!ok)
		failures++;
	if (fmt != NULL) {
		printf(" (");
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf(")");
	}
	printf("\n");
	fflush(stdout);
}

static void
check_attributes(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	CK_OBJECT_CLASS cls = 0;
	CK_KEY_TYPE kt = (CK_KEY_TYPE)-1;
	CK_BBOOL sign = 0, sens = 0, extr = 1, always = 1;
	CK_BYTE small[1], label[256];
	CK_ATTRIBUTE a[4];
	CK_RV rv;

	memset(a, 0, sizeof(a));
	a[0].type = CKA_LABEL;
	rv = p11->C_GetAttributeValue(s, key, a, 1);
	expect("attr-length-query",
	       rv == CKR_OK && a[0].ulValueLen > 0 &&
		       a[0].ulValueLen != CK_UNAVAILABLE_INFORMATION,
	       "%s, length %ld", ckr(rv), (long)a[0].ulValueLen);

	a[0] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
	a[1] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &kt, sizeof(kt)};
	a[2] = (CK_ATTRIBUTE){CKA_SIGN, &sign, sizeof(sign)};
	a[3] = (CK_ATTRIBUTE){CKA_LABEL, label, sizeof(label)};
	rv = p11->C_GetAttributeValue(s, key, a, 4);
	expect("attr-several",
	       rv == CKR_OK && cls == CKO_PRIVATE_KEY && sign == CK_TRUE,
	       "%s, class %lu, sign %u", ckr(rv), (unsigned long)cls, sign);

	a[0] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
	a[1] = (CK_ATTRIBUTE){CKA_LABEL, small, sizeof(small)};
	cls = 0;
	rv = p11->C_GetAttributeValue(s, key, a, 2);
	expect("attr-buffer-too-small",
	       rv == CKR_BUFFER_TOO_SMALL &&
		       a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION &&
		       cls == CKO_PRIVATE_KEY && a[0].ulValueLen == sizeof(cls),
	       "%s; the other attribute still read: class %lu", ckr(rv),
	       (unsigned long)cls);

	a[0] = (CK_ATTRIBUTE){CKA_VENDOR_DEFINED | 0x57494e54UL, label,
			      sizeof(label)};
	a[1] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
	rv = p11->C_GetAttributeValue(s, key, a, 2);
	expect("attr-type-invalid",
	       rv == CKR_ATTRIBUTE_TYPE_INVALID &&
		       a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION &&
		       a[1].ulValueLen == sizeof(cls),
	       "%s", ckr(rv));

	a[0] = (CK_ATTRIBUTE){kt == CKK_RSA ? CKA_PRIVATE_EXPONENT : CKA_VALUE,
			      label, sizeof(label)};
	rv = p11->C_GetAttributeValue(s, key, a, 1);
	expect("attr-sensitive",
	       rv == CKR_ATTRIBUTE_SENSITIVE &&
		       a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION,
	       "%s", ckr(rv));

	a[0] = (CK_ATTRIBUTE){CKA_SENSITIVE, &sens, sizeof(sens)};
	a[1] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &extr, sizeof(extr)};
	a[2] = (CK_ATTRIBUTE){CKA_ALWAYS_AUTHENTICATE, &always, sizeof(always)};
	rv = p11->C_GetAttributeValue(s, key, a, 3);
	expect("key-not-extractable",
	       rv == CKR_OK && sens == CK_TRUE && extr == CK_FALSE &&
		       always == CK_FALSE,
	       "%s, sensitive %u extractable %u always_authenticate %u",
	       ckr(rv), sens, extr, always);

	rv = p11->C_GetAttributeValue(s, (CK_OBJECT_HANDLE)0x7ffffff0UL, a, 1);
	expect("attr-bad-handle", rv == CKR_OBJECT_HANDLE_INVALID, "%s",
	       ckr(rv));
}

static void
check_find(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	CK_BYTE id[256];
	CK_ATTRIBUTE a = {CKA_ID, id, sizeof(id)};
	CK_OBJECT_HANDLE found[16];
	CK_ULONG n = 0, i;
	bool has_key = false;
	CK_RV rv;

	if ((rv = p11->C_GetAttributeValue(s, key, &a, 1)) != CKR_OK) {
		expect("find-by-id", false, "CKA_ID: %s", ckr(rv));
		return;
	}
	rv = p11->C_FindObjectsInit(s, &a, 1);
	if (rv == CKR_OK)
		rv = p11->C_FindObjectsInit(s, &a, 1) == CKR_OPERATION_ACTIVE
			     ? CKR_OK
			     : CKR_GENERAL_ERROR;
	if (rv == CKR_OK)
		rv = p11->C_FindObjects(s, found, 16, &n);
	p11->C_FindObjectsFinal(s);
	for (i = 0; i < n; i++)
		has_key |= found[i] == key;
	/* The private key and its public key share CKA_ID. */
	expect("find-by-id", rv == CKR_OK && n >= 2 && has_key,
	       "%s, %lu objects", ckr(rv), (unsigned long)n);
	rv = p11->C_FindObjects(s, found, 16, &n);
	expect("find-after-final", rv == CKR_OPERATION_NOT_INITIALIZED, "%s",
	       ckr(rv));
}

static void
check_writes(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_BBOOL tru = CK_TRUE;
	char lbl[] = "stint-check";
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_TOKEN, &tru, sizeof(tru)},
		{CKA_LABEL, lbl, sizeof(lbl) - 1},
	};
	CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_OBJECT_HANDLE h = 0, h2 = 0;
	CK_RV rv;

	rv = p11->C_CreateObject(s, t, 3, &h);
	expect("refuse-create", rv != CKR_OK, "%s", ckr(rv));
	rv = p11->C_SetAttributeValue(s, key, &t[2], 1);
	expect("refuse-set-attribute", rv != CKR_OK, "%s", ckr(rv));
	rv = p11->C_CopyObject(s, key, NULL, 0, &h);
	expect("refuse-copy", rv != CKR_OK, "%s", ckr(rv));
	rv = p11->C_GenerateKeyPair(s, &gen, NULL, 0, NULL, 0, &h, &h2);
	expect("refuse-generate", rv != CKR_OK, "%s", ckr(rv));
	rv = p11->C_DestroyObject(s, key);
	expect("refuse-destroy", rv != CKR_OK, "%s", ckr(rv));
}

static CK_RV
sign_init(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	static CK_RSA_PKCS_PSS_PARAMS pss;
	CK_MECHANISM m = {o.mech->mech, NULL, 0};

	if (o.mech->pss_hash != 0) {
		pss.hashAlg = o.mech->pss_hash;
		pss.mgf = o.mech->mgf;
		pss.sLen = o.mech->salt;
		m.pParameter = &pss;
		m.ulParameterLen = sizeof(pss);
	}
	return p11->C_SignInit(s, &m, key);
}

/* PSS parameters stintd refuses are refused at C_SignInit by the module
 * too (common/mechanism.c: stint_pss_params_check), not after a round
 * trip: MGF1 with another hash than hashAlg, SHA-1 or SHA-224. */
static void
check_pss_params(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	static const struct {
		const char *name;
		CK_RSA_PKCS_MGF_TYPE mgf;
	} bad[] = {
		{"sign-init-pss-mgf-sha1", CKG_MGF1_SHA1},
		{"sign-init-pss-mgf-sha224", CKG_MGF1_SHA224},
		{"sign-init-pss-mgf-other-hash", 0},
	};
	CK_RSA_PKCS_PSS_PARAMS pss = {o.mech->pss_hash, 0, o.mech->salt};
	CK_MECHANISM m = {o.mech->mech, &pss, sizeof(pss)};
	CK_RV rv;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pss.mgf = bad[i].mgf;
		if (pss.mgf == 0)
			pss.mgf = o.mech->mgf == CKG_MGF1_SHA512
					  ? CKG_MGF1_SHA256
					  : CKG_MGF1_SHA512;
		rv = p11->C_SignInit(s, &m, key);
		expect(bad[i].name, rv == CKR_MECHANISM_PARAM_INVALID, "%s",
		       ckr(rv));
		if (rv == CKR_OK) { /* end the operation the bug began */
			CK_BYTE sig[SIG_MAX];
			CK_ULONG len = sizeof(sig);

			(void)p11->C_Sign(s, data, data_len, sig, &len);
		}
	}
}

static void
check_sign(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	CK_BYTE sig[SIG_MAX];
	CK_ULONG len = 0, want;
	CK_MECHANISM bogus = {CKM_VENDOR_DEFINED | 0x5717, NULL, 0};
	CK_RV rv;

	rv = sign_init(s, key);
	if (rv == CKR_OK)
		rv = p11->C_Sign(s, data, data_len, NULL, &len);
	want = len;
	expect("sign-length-query", rv == CKR_OK && len > 0 && len <= SIG_MAX,
	       "%s, %lu bytes", ckr(rv), (unsigned long)len);
	len = want - 1;
	rv = p11->C_Sign(s, data, data_len, sig, &len);
	expect("sign-buffer-too-small",
	       rv == CKR_BUFFER_TOO_SMALL && len == want, "%s, %lu", ckr(rv),
	       (unsigned long)len);
	len = sizeof(sig);
	rv = p11->C_Sign(s, data, data_len, sig, &len);
	expect("sign-after-queries", rv == CKR_OK && len <= want, "%s",
	       ckr(rv));
	rv = p11->C_Sign(s, data, data_len, sig, &len);
	expect("sign-ends-operation", rv == CKR_OPERATION_NOT_INITIALIZED, "%s",
	       ckr(rv));
	rv = sign_init(s, key);
	if (rv == CKR_OK)
		rv = sign_init(s, key) == CKR_OPERATION_ACTIVE
			     ? CKR_OK
			     : CKR_GENERAL_ERROR;
	len = sizeof(sig);
	if (rv == CKR_OK)
		rv = p11->C_Sign(s, data, data_len, sig, &len);
	expect("sign-init-twice", rv == CKR_OK, "%s", ckr(rv));

	if (o.mech->mech != CKM_ECDSA && o.mech->mech != CKM_RSA_PKCS &&
	    o.mech->mech != CKM_RSA_PKCS_PSS) {
		/* Hash-and-sign: any split of the data gives a signature. */
		rv = sign_init(s, key);
		if (rv == CKR_OK)
			rv = p11->C_SignUpdate(s, data, data_len / 2);
		if (rv == CKR_OK)
			rv = p11->C_SignUpdate(s, data + data_len / 2,
					       data_len - data_len / 2);
		len = 0;
		if (rv == CKR_OK)
			rv = p11->C_SignFinal(s, NULL, &len);
		len = sizeof(sig);
		if (rv == CKR_OK)
			rv = p11->C_SignFinal(s, sig, &len);
		expect("sign-multi-part", rv == CKR_OK, "%s", ckr(rv));
	}
	rv = p11->C_SignInit(s, &bogus, key);
	expect("sign-bad-mechanism", rv == CKR_MECHANISM_INVALID, "%s",
	       ckr(rv));
	if (o.mech->pss_hash != 0)
		check_pss_params(s, key);
	rv = sign_init(s, (CK_OBJECT_HANDLE)0x7ffffff0UL);
	expect("sign-bad-handle",
	       rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID,
	       "%s", ckr(rv));
}

#ifndef CKF_INTERFACE_FORK_SAFE
#define CKF_INTERFACE_FORK_SAFE 0x00000001UL
#endif
/* PKCS#11 3.0's CK_INTERFACE (p11-kit 0.24's pkcs11.h predates it). */
struct interface_30 {
	CK_UTF8CHAR_PTR name;
	CK_VOID_PTR functions;
	CK_FLAGS flags;
};

/* A module that has C_GetInterface (PKCS#11 3.0) says whether it is
 * fork-safe; check_fork then holds it to that. */
static void
check_interface(void)
{
	typedef CK_RV (*get_interface_fn)(CK_UTF8CHAR_PTR, CK_VERSION_PTR,
					  struct interface_30 **, CK_FLAGS);
	get_interface_fn get;
	struct interface_30 *intf = NULL;
	CK_RV rv;

	*(void **)&get = dlsym(module_handle, "C_GetInterface");
	if (get == NULL)
		return;
	rv = get(NULL, NULL, &intf, CKF_INTERFACE_FORK_SAFE);
	expect("interface-fork-safe",
	       rv == CKR_OK && intf != NULL &&
		       (intf->flags & CKF_INTERFACE_FORK_SAFE),
	       "%s", ckr(rv));
}

/* A child that signs with the session it inherited, without calling
 * C_Initialize (what a forking agent does), then the parent signs again. */
static void
check_fork(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	CK_BYTE sig[SIG_MAX];
	CK_ULONG len = sizeof(sig);
	CK_RV rv;
	pid_t pid;
	int status = 0;

	fflush(stdout);
	if ((pid = fork()) < 0) {
		expect("fork-child-signs", false, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		rv = sign_init(s, key);
		if (rv == CKR_OK)
			rv = p11->C_Sign(s, data, data_len, sig, &len);
		printf("fork child: %s\n", ckr(rv));
		fflush(stdout);
		_exit(rv == CKR_OK ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	expect("fork-child-signs",
	       WIFEXITED(status) && WEXITSTATUS(status) == 0, NULL);
	len = sizeof(sig);
	rv = sign_init(s, key);
	if (rv == CKR_OK)
		rv = p11->C_Sign(s, data, data_len, sig, &len);
	expect("fork-parent-signs", rv == CKR_OK, "%s", ckr(rv));
}

static void
check_login(CK_SLOT_ID slot, CK_SESSION_HANDLE s)
{
	CK_TOKEN_INFO ti;
	CK_SESSION_INFO si;
	CK_RV rv;

	if (p11->C_GetTokenInfo(slot, &ti) != CKR_OK ||
	    (ti.flags & CKF_LOGIN_REQUIRED) || o.pin_env != NULL)
		return;
	rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "", 0);
	expect("login-accepted", rv == CKR_OK, "%s", ckr(rv));
	rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "", 0);
	expect("login-twice", rv == CKR_USER_ALREADY_LOGGED_IN, "%s", ckr(rv));
	rv = p11->C_GetSessionInfo(s, &si);
	expect("login-session-state",
	       rv == CKR_OK && (si.state == CKS_RO_USER_FUNCTIONS ||
				si.state == CKS_RW_USER_FUNCTIONS),
	       "%s, state %lu", ckr(rv), (unsigned long)si.state);
	rv = p11->C_Logout(s);
	expect("logout", rv == CKR_OK, "%s", ckr(rv));
	rv = p11->C_Logout(s);
	expect("logout-twice", rv == CKR_USER_NOT_LOGGED_IN, "%s", ckr(rv));
}

/* A NULL pointer the function needs: CKR_ARGUMENTS_BAD before any other
 * verdict (the token is write-protected and has no RNG, and the session
 * handle in the last two is invalid). */
static void
check_null_args(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_MECHANISM aes = {CKM_AES_KEY_GEN, NULL, 0};
	CK_OBJECT_HANDLE h = 0;
	CK_ULONG n = 0;
	struct {
		const char *name;
		CK_RV rv;
	} c[] = {
		{"generate-key", p11->C_GenerateKey(s, NULL, NULL, 0, NULL)},
		{"generate-key-out",
		 p11->C_GenerateKey(s, &aes, NULL, 0, NULL)},
		{"generate-key-pair",
		 p11->C_GenerateKeyPair(s, NULL, NULL, 0, NULL, 0, NULL, NULL)},
		{"generate-key-pair-out",
		 p11->C_GenerateKeyPair(s, &gen, NULL, 0, NULL, 0, &h, NULL)},
		{"generate-random", p11->C_GenerateRandom(s, NULL, 16)},
		{"seed-random", p11->C_SeedRandom(s, NULL, 16)},
		{"create-object", p11->C_CreateObject(s, NULL, 1, &h)},
		{"set-attribute", p11->C_SetAttributeValue(s, key, NULL, 1)},
		{"get-attribute", p11->C_GetAttributeValue(s, key, NULL, 1)},
		{"find-objects", p11->C_FindObjects(s, NULL, 1, &n)},
		{"digest-init", p11->C_DigestInit(s, NULL)},
		{"encrypt-init", p11->C_EncryptInit(s, NULL, key)},
		{"verify-init", p11->C_VerifyInit(s, NULL, key)},
		{"sign-init", p11->C_SignInit(s, NULL, key)},
		{"login", p11->C_Login(s, CKU_USER, NULL, 4)},
		{"operation-state", p11->C_GetOperationState(s, NULL, NULL)},
		{"generate-random-bad-session",
		 p11->C_GenerateRandom(s + 0x5717, NULL, 16)},
		{"generate-key-pair-bad-session",
		 p11->C_GenerateKeyPair(s + 0x5717, NULL, NULL, 0, NULL, 0,
					NULL, NULL)},
	};
	char name[64];
	size_t i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		snprintf(name, sizeof(name), "null-%s", c[i].name);
		expect(name, c[i].rv == CKR_ARGUMENTS_BAD, "%s", ckr(c[i].rv));
	}
}

/* The token knows no digest mechanism; with good arguments the
 * write-protection and RNG verdicts stand. */
static void
check_digest_random(CK_SESSION_HANDLE s)
{
	CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
	CK_MECHANISM bogus = {CKM_VENDOR_DEFINED | 0x5717, NULL, 0};
	CK_BYTE buf[16], out[32];
	CK_ULONG len = sizeof(out);
	CK_RV rv;

	rv = p11->C_DigestInit(s, &sha);
	expect("digest-init-sha256", rv == CKR_MECHANISM_INVALID, "%s",
	       ckr(rv));
	rv = p11->C_DigestInit(s, &bogus);
	expect("digest-init-unknown", rv == CKR_MECHANISM_INVALID, "%s",
	       ckr(rv));
	rv = p11->C_Digest(s, buf, sizeof(buf), out, &len);
	expect("digest-not-initialized", rv == CKR_OPERATION_NOT_INITIALIZED,
	       "%s", ckr(rv));
	rv = p11->C_GenerateRandom(s, buf, sizeof(buf));
	expect("generate-random", rv == CKR_RANDOM_NO_RNG, "%s", ckr(rv));
}

/* CKU_SO on a R/O session: CKR_SESSION_READ_ONLY_EXISTS, never
 * CKR_USER_TYPE_INVALID (kept for user types PKCS#11 does not define). */
static void
check_login_so_ro(CK_SESSION_HANDLE s)
{
	CK_RV rv;

	rv = p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR) "so", 2);
	expect("login-so-ro-session", rv == CKR_SESSION_READ_ONLY_EXISTS, "%s",
	       ckr(rv));
	rv = p11->C_Login(s, 77, (CK_UTF8CHAR_PTR) "x", 1);
	expect("login-user-type-invalid", rv == CKR_USER_TYPE_INVALID, "%s",
	       ckr(rv));
}

/* With only a R/W session open (s is closed first): CKU_SO is refused
 * with another code, and with CKR_USER_ANOTHER_ALREADY_LOGGED_IN once the
 * user has logged in (with any PIN). */
static void
check_login_so_rw(CK_SLOT_ID slot, CK_SESSION_HANDLE s)
{
	CK_SESSION_HANDLE rw;
	CK_TOKEN_INFO ti;
	CK_RV rv;

	if (p11->C_GetTokenInfo(slot, &ti) != CKR_OK ||
	    (ti.flags & CKF_LOGIN_REQUIRED) || o.pin_env != NULL)
		return;
	p11->C_CloseSession(s);
	rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
				NULL, &rw);
	expect("open-rw-session", rv == CKR_OK, "%s", ckr(rv));
	if (rv != CKR_OK)
		return;
	rv = p11->C_Login(rw, CKU_SO, (CK_UTF8CHAR_PTR) "so", 2);
	expect("login-so-rw-session",
	       rv != CKR_OK && rv != CKR_USER_TYPE_INVALID &&
		       rv != CKR_SESSION_READ_ONLY_EXISTS,
	       "%s", ckr(rv));
	rv = p11->C_Login(rw, CKU_USER, (CK_UTF8CHAR_PTR) "any pin", 7);
	expect("login-any-pin", rv == CKR_OK, "%s", ckr(rv));
	rv = p11->C_Login(rw, CKU_SO, (CK_UTF8CHAR_PTR) "so", 2);
	expect("login-so-user-logged-in",
	       rv == CKR_USER_ANOTHER_ALREADY_LOGGED_IN, "%s", ckr(rv));
	p11->C_Logout(rw);
	p11->C_CloseSession(rw);
}

int
run_check(CK_SLOT_ID slot, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	CK_RV rv;

	rv = p11->C_Initialize(NULL);
	expect("initialize-twice", rv == CKR_CRYPTOKI_ALREADY_INITIALIZED, "%s",
	       ckr(rv));
	check_attributes(s, key);
	check_find(s, key);
	check_writes(s, key);
	check_sign(s, key);
	check_login(slot, s);
	check_null_args(s, key);
	check_digest_random(s);
	check_login_so_ro(s);
	check_interface();
	check_fork(s, key);
	/* Last: it closes s (main's C_CloseSession then fails harmlessly). */
	check_login_so_rw(slot, s);
	printf("checks=%u failed=%u\n", checks, failures);
	return failures == 0 ? 0 : 1;
}
