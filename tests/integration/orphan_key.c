/*
 * orphan_key: makes and lists key pairs in a PKCS#11 token directly (with
 * the user PIN, as root could), for orphan-keys.sh.
 *
 *   orphan_key MODULE TOKEN PIN_FILE make marked|plain [ID]
 *	an EC P-256 token key pair; "marked" carries stintd's task-key marker
 *	(CKA_SUBJECT = DER "CN=stintd task key", as attest/backend/pkcs11_keys.c
 *	sets it), "plain" none; with ID, CKA_ID and CKA_LABEL = ID, without
 *	it neither (what a C_GenerateKeyPair that failed half-way leaves)
 *   orphan_key MODULE TOKEN PIN_FILE list
 *	one line per key object: "pub|priv marked|plain id=<ID>"
 *   orphan_key MODULE TOKEN PIN_FILE churn N
 *	generates and destroys N marked pairs in this one process and prints
 *	its VmRSS before and after (does the module keep memory per object?)
 */

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

static const CK_BYTE key_mark[] = {0x30, 0x1a, 0x31, 0x18, 0x30, 0x16, 0x06,
				   0x03, 0x55, 0x04, 0x03, 0x0c, 0x0f, 's',
				   't',  'i',  'n',  't',  'd',  ' ',  't',
				   'a',  's',  'k',  ' ',  'k',  'e',  'y'};
/* OID 1.2.840.10045.3.1.7 (P-256) */
static const CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
			       0xce, 0x3d, 0x03, 0x01, 0x07};

static CK_FUNCTION_LIST_PTR f;
static CK_OBJECT_HANDLE last_pub, last_priv; /* of the last make() */

static void
die(const char *what, CK_RV rv)
{
	fprintf(stderr, "orphan_key: %s: 0x%lx\n", what, (unsigned long)rv);
	exit(1);
}

static CK_SESSION_HANDLE
open_token(const char *label, const char *pin_file)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64, i;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s;
	char pin[256], want[32];
	size_t len;
	FILE *fp;
	CK_RV rv;

	memset(want, ' ', sizeof(want));
	memcpy(want, label, strlen(label) < 32 ? strlen(label) : 32);
	if ((rv = f->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK)
		die("C_GetSlotList", rv);
	for (i = 0; i < n; i++)
		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    memcmp(ti.label, want, 32) == 0)
			break;
	if (i == n) {
		fprintf(stderr, "orphan_key: no token '%s'\n", label);
		exit(1);
	}
	if ((rv = f->C_OpenSession(slots[i],
				   CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
				   NULL, &s)) != CKR_OK)
		die("C_OpenSession", rv);
	if ((fp = fopen(pin_file, "r")) == NULL ||
	    fgets(pin, sizeof(pin), fp) == NULL) {
		fprintf(stderr, "orphan_key: cannot read %s\n", pin_file);
		exit(1);
	}
	fclose(fp);
	len = strcspn(pin, "\r\n");
	if ((rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, len)) != CKR_OK)
		die("C_Login", rv);
	return s;
}

static void
make(CK_SESSION_HANDLE s, int marked, const char *id)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE pubt[8], privt[10];
	CK_ULONG np = 0, nv = 0, idlen = id != NULL ? strlen(id) : 0;
	CK_OBJECT_HANDLE hpub, hpriv;
	CK_RV rv;

#define ADD(t, n, ty, v, l)                                                    \
	do {                                                                   \
		(t)[n].type = (ty);                                            \
		(t)[n].pValue = (void *)(v);                                   \
		(t)[n].ulValueLen = (l);                                       \
		(n)++;                                                         \
	} while (0)
	ADD(pubt, np, CKA_TOKEN, &yes, sizeof(yes));
	ADD(pubt, np, CKA_VERIFY, &yes, sizeof(yes));
	ADD(pubt, np, CKA_EC_PARAMS, p256, sizeof(p256));
	ADD(privt, nv, CKA_TOKEN, &yes, sizeof(yes));
	ADD(privt, nv, CKA_PRIVATE, &yes, sizeof(yes));
	ADD(privt, nv, CKA_SENSITIVE, &yes, sizeof(yes));
	ADD(privt, nv, CKA_EXTRACTABLE, &no, sizeof(no));
	ADD(privt, nv, CKA_SIGN, &yes, sizeof(yes));
	if (id != NULL) {
		ADD(pubt, np, CKA_ID, id, idlen);
		ADD(pubt, np, CKA_LABEL, id, idlen);
		ADD(privt, nv, CKA_ID, id, idlen);
		ADD(privt, nv, CKA_LABEL, id, idlen);
	}
	if (marked) {
		ADD(pubt, np, CKA_SUBJECT, key_mark, sizeof(key_mark));
		ADD(privt, nv, CKA_SUBJECT, key_mark, sizeof(key_mark));
	}
#undef ADD
	rv = f->C_GenerateKeyPair(s, &mech, pubt, np, privt, nv, &hpub, &hpriv);
	if (rv != CKR_OK)
		die("C_GenerateKeyPair", rv);
	last_pub = hpub;
	last_priv = hpriv;
	if (id != NULL && strcmp(id, "t-churn") == 0)
		return;
	printf("ok made %s pair id=%s\n", marked ? "marked" : "plain",
	       id != NULL ? id : "");
}

static long
rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *fp = fopen("/proc/self/status", "r");

	while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	if (fp != NULL)
		fclose(fp);
	return kb;
}

static void
churn(CK_SESSION_HANDLE s, long n)
{
	long i, before = rss_kb();
	CK_RV rv;

	for (i = 0; i < n; i++) {
		make(s, 1, "t-churn");
		if ((rv = f->C_DestroyObject(s, last_priv)) != CKR_OK ||
		    (rv = f->C_DestroyObject(s, last_pub)) != CKR_OK)
			die("C_DestroyObject", rv);
		if ((i + 1) % (n / 4 > 0 ? n / 4 : 1) == 0)
			printf("churn %ld: VmRSS %ld kB (start %ld kB)\n",
			       i + 1, rss_kb(), before);
	}
}

static void
list(CK_SESSION_HANDLE s)
{
	CK_OBJECT_HANDLE h[64];
	CK_ULONG n, i;
	CK_OBJECT_CLASS cls;
	CK_BYTE subj[256];
	char id[256];
	CK_ATTRIBUTE a[3];
	CK_RV rv;

	if ((rv = f->C_FindObjectsInit(s, NULL, 0)) != CKR_OK)
		die("C_FindObjectsInit", rv);
	while (f->C_FindObjects(s, h, 64, &n) == CKR_OK && n > 0) {
		for (i = 0; i < n; i++) {
			a[0].type = CKA_CLASS;
			a[0].pValue = &cls;
			a[0].ulValueLen = sizeof(cls);
			a[1].type = CKA_ID;
			a[1].pValue = id;
			a[1].ulValueLen = sizeof(id) - 1;
			a[2].type = CKA_SUBJECT;
			a[2].pValue = subj;
			a[2].ulValueLen = sizeof(subj);
			rv = f->C_GetAttributeValue(s, h[i], a, 3);
			/* stintd's key pool may destroy an object between
			 * the search and this read: it is simply gone. */
			if (rv == CKR_OBJECT_HANDLE_INVALID)
				continue;
			if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID)
				die("C_GetAttributeValue", rv);
			if (cls != CKO_PUBLIC_KEY && cls != CKO_PRIVATE_KEY)
				continue;
			if (a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION)
				a[1].ulValueLen = 0;
			id[a[1].ulValueLen] = '\0';
			printf("%s %s id=%s\n",
			       cls == CKO_PUBLIC_KEY ? "pub" : "priv",
			       a[2].ulValueLen == sizeof(key_mark) &&
					       memcmp(subj, key_mark,
						      sizeof(key_mark)) == 0
				       ? "marked"
				       : "plain",
			       id);
		}
	}
	f->C_FindObjectsFinal(s);
}

int
main(int argc, char **argv)
{
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	CK_SESSION_HANDLE s;
	void *mod;
	CK_RV rv;

	if (argc < 5) {
		fprintf(stderr, "usage: orphan_key MODULE TOKEN PIN_FILE "
				"make marked|plain [ID] | list\n");
		return 2;
	}
	if ((mod = dlopen(argv[1], RTLD_NOW)) == NULL ||
	    (get = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(
		     mod, "C_GetFunctionList")) == NULL) {
		fprintf(stderr, "orphan_key: cannot load %s\n", argv[1]);
		return 1;
	}
	if ((rv = get(&f)) != CKR_OK)
		die("C_GetFunctionList", rv);
	if ((rv = f->C_Initialize(NULL)) != CKR_OK)
		die("C_Initialize", rv);
	s = open_token(argv[2], argv[3]);
	if (strcmp(argv[4], "make") == 0 && argc >= 6)
		make(s, strcmp(argv[5], "marked") == 0,
		     argc >= 7 ? argv[6] : NULL);
	else if (strcmp(argv[4], "list") == 0)
		list(s);
	else if (strcmp(argv[4], "churn") == 0 && argc >= 6)
		churn(s, strtol(argv[5], NULL, 10));
	else {
		fprintf(stderr, "orphan_key: unknown command\n");
		return 2;
	}
	f->C_CloseSession(s);
	f->C_Finalize(NULL);
	return 0;
}
