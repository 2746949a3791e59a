/*
 * slowtoken.so: a PKCS#11 module for the benchmark only (never installed)
 * that behaves like a network HSM in front of SoftHSM2. It forwards every
 * call to the module named by SLOWTOKEN_MODULE (default: the SoftHSM2
 * module configure found) through that module's own function list, and
 * after a C_Sign or C_SignFinal that produced a signature it sleeps
 * SLOWTOKEN_SIGN_US microseconds (default 2000): the token's latency, with
 * any number of operations in flight, as on an HSM across a network.
 *
 * The sleep comes after the real call, outside any lock of the real
 * module, so the shim itself never serialises its callers. When
 * SLOWTOKEN_STATS names a file, the shim writes to it the largest number
 * of signatures it has seen sleeping at once ("max_in_flight=N"), each
 * time that number grows: a caller that serialises its signatures never
 * gets it above 1.
 */

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#ifndef SLOWTOKEN_DEFAULT_MODULE
#define SLOWTOKEN_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif
#define SIGN_US_DEFAULT 2000L
#define SIGN_US_MAX     10000000L

static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST shim;
static long sign_us = SIGN_US_DEFAULT;
static atomic_long in_flight, max_in_flight;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;

static long
env_us(void)
{
	const char *v = getenv("SLOWTOKEN_SIGN_US");
	char *end;
	long us;

	if (v == NULL || *v == '\0')
		return SIGN_US_DEFAULT;
	errno = 0;
	us = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || us < 0 || us > SIGN_US_MAX)
		return SIGN_US_DEFAULT;
	return us;
}

/* After the maximum grew: under the lock, the file always ends up with
 * the highest figure, whichever of two racing writers comes last. */
static void
stats_write(void)
{
	const char *path = getenv("SLOWTOKEN_STATS");
	FILE *fp;

	if (path == NULL || *path == '\0')
		return;
	pthread_mutex_lock(&stats_lock);
	if ((fp = fopen(path, "w")) != NULL) {
		fprintf(fp, "max_in_flight=%ld\n", atomic_load(&max_in_flight));
		fclose(fp);
	}
	pthread_mutex_unlock(&stats_lock);
}

static void
slow_down(void)
{
	struct timespec ts = {sign_us / 1000000L, (sign_us % 1000000L) * 1000L};
	long now = atomic_fetch_add(&in_flight, 1) + 1;
	long max = atomic_load(&max_in_flight);

	while (now > max) {
		if (atomic_compare_exchange_weak(&max_in_flight, &max, now)) {
			stats_write();
			break;
		}
	}
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	atomic_fetch_sub(&in_flight, 1);
}

static CK_RV
slow_sign(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR sig,
	  CK_ULONG_PTR sig_len)
{
	CK_RV rv = real->C_Sign(s, in, in_len, sig, sig_len);

	/* A length query (sig NULL) is answered at once. */
	if (rv == CKR_OK && sig != NULL)
		slow_down();
	return rv;
}

static CK_RV
slow_sign_final(CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	CK_RV rv = real->C_SignFinal(s, sig, sig_len);

	if (rv == CKR_OK && sig != NULL)
		slow_down();
	return rv;
}

static CK_RV
load(void)
{
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	const char *path = getenv("SLOWTOKEN_MODULE");
	void *dl;
	CK_RV rv;

	if (real != NULL)
		return CKR_OK;
	if (path == NULL || *path == '\0')
		path = SLOWTOKEN_DEFAULT_MODULE;
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "slowtoken: %s\n", dlerror());
		return CKR_GENERAL_ERROR;
	}
	*(void **)&get = dlsym(dl, "C_GetFunctionList");
	if (get == NULL || (rv = get(&real)) != CKR_OK || real == NULL) {
		real = NULL;
		return CKR_GENERAL_ERROR;
	}
	sign_us = env_us();
	shim = *real;
	shim.C_Sign = slow_sign;
	shim.C_SignFinal = slow_sign_final;
	return CKR_OK;
}

CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	CK_RV rv;

	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = load()) != CKR_OK)
		return rv;
	shim.C_GetFunctionList = C_GetFunctionList;
	*list = &shim;
	return CKR_OK;
}
