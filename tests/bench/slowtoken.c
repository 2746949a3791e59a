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
 *
 * The hold (tests/integration/revoke-stripes.sh): when SLOWTOKEN_HOLD_FILE
 * and SLOWTOKEN_HOLD_PREFIX are set, a C_Sign whose input starts with the
 * prefix's bytes waits in the token, before the real call, for as long as
 * that file exists. When SLOWTOKEN_HOLD_LOG is set, each held signature
 * appends "held" to it when it starts waiting and "signed" once the real
 * call returned: the test knows a signature is in the token, and when it
 * left it. Other inputs are not held.
 */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef SLOWTOKEN_DEFAULT_MODULE
#define SLOWTOKEN_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif
#define SIGN_US_DEFAULT 2000L
#define SIGN_US_MAX     10000000L
#define HOLD_POLL_NS    10000000L /* 10 ms */

#define P11SHIM_MODULE_ENV     "SLOWTOKEN_MODULE"
#define P11SHIM_DEFAULT_MODULE SLOWTOKEN_DEFAULT_MODULE
#define P11SHIM_NAME           "slowtoken"
#include "tests/p11shim.h"

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

static void
hold_note(const char *what)
{
	const char *path = getenv("SLOWTOKEN_HOLD_LOG");
	FILE *fp;

	if (path == NULL || *path == '\0' || (fp = fopen(path, "a")) == NULL)
		return;
	fprintf(fp, "%s\n", what);
	fclose(fp);
}

/* Whether this input is one the test holds, after waiting while the hold
 * file exists. */
static int
hold(CK_BYTE_PTR in, CK_ULONG in_len)
{
	const char *file = getenv("SLOWTOKEN_HOLD_FILE");
	const char *prefix = getenv("SLOWTOKEN_HOLD_PREFIX");
	struct timespec ts = {0, HOLD_POLL_NS};
	size_t n;

	if (file == NULL || prefix == NULL || (n = strlen(prefix)) == 0 ||
	    in == NULL || in_len < n || memcmp(in, prefix, n) != 0)
		return 0;
	hold_note("held");
	while (access(file, F_OK) == 0)
		nanosleep(&ts, NULL);
	return 1;
}

static CK_RV
slow_sign(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR sig,
	  CK_ULONG_PTR sig_len)
{
	int held = sig != NULL && hold(in, in_len);
	CK_RV rv = p11shim_real->C_Sign(s, in, in_len, sig, sig_len);

	if (held)
		hold_note(rv == CKR_OK ? "signed" : "failed");
	/* A length query (sig NULL) is answered at once. */
	if (rv == CKR_OK && sig != NULL)
		slow_down();
	return rv;
}

static CK_RV
slow_sign_final(CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	CK_RV rv = p11shim_real->C_SignFinal(s, sig, sig_len);

	if (rv == CKR_OK && sig != NULL)
		slow_down();
	return rv;
}

static void
p11shim_override(CK_FUNCTION_LIST *list)
{
	sign_us = env_us();
	list->C_Sign = slow_sign;
	list->C_SignFinal = slow_sign_final;
}
