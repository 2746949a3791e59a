/*
 * Test-only stintd (tests/integration/stintd-fault, built with the TPM
 * backend), linked with -Wl,--wrap=Esys_NV_Increment: while the file
 * STINT_TEST_NV_CRASH names exists, stintd kills itself (SIGKILL) right
 * after the TPM incremented an NV counter, before anything else happens:
 * the crash between advancing the audit counter and writing its
 * checkpoint (tests/integration/audit-anchor-tpm.sh). Without the
 * variable, or while the file is absent, the call is the real one. The
 * installed stintd never reads the variable.
 */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <tss2/tss2_esys.h>

#include "common/log.h"

TSS2_RC __real_Esys_NV_Increment(ESYS_CONTEXT *ctx, ESYS_TR auth, ESYS_TR index,
				 ESYS_TR s1, ESYS_TR s2, ESYS_TR s3);
TSS2_RC __wrap_Esys_NV_Increment(ESYS_CONTEXT *ctx, ESYS_TR auth, ESYS_TR index,
				 ESYS_TR s1, ESYS_TR s2, ESYS_TR s3);

TSS2_RC
__wrap_Esys_NV_Increment(ESYS_CONTEXT *ctx, ESYS_TR auth, ESYS_TR index,
			 ESYS_TR s1, ESYS_TR s2, ESYS_TR s3)
{
	const char *sw = getenv("STINT_TEST_NV_CRASH");
	TSS2_RC rc = __real_Esys_NV_Increment(ctx, auth, index, s1, s2, s3);

	if (rc == TSS2_RC_SUCCESS && sw != NULL && access(sw, F_OK) == 0) {
		log_warn("test fault: killed right after an NV increment");
		raise(SIGKILL);
	}
	return rc;
}
