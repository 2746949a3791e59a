/*
 * TPM backend: clock safety (resetCount, the safe flag) and the task key
 * policy: PolicyCounterTimer(clock < deadline) AND PolicyNV(counter ==
 * value at creation). See tpm_int.h.
 */

#include "attest/backend/tpm_int.h"

/* --- clock safety -----------------------------------------------------------
 */

/*
 * The TPM clock can fall back after a TPM reset without orderly shutdown
 * (then clockInfo.safe is NO): keys made before such a reset could outlive
 * their deadline in hardware by the lost time. stintd remembers the first
 * reset count after which the clock was not safe and refuses (in software,
 * before the TPM) every task key made before it. "clock" holds
 * "last_reset min_reset".
 */
int
tpm_clock_state_load(struct tpm_backend *b)
{
	char path[PATH_MAX + 16];
	unsigned long last, min;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/clock", b->dir);
	if ((f = fopen(path, "re")) == NULL)
		return errno == ENOENT ? 1 : -1;
	ok = fscanf(f, "%lu %lu", &last, &min) == 2;
	fclose(f);
	if (!ok)
		return -1;
	b->last_reset = (uint32_t)last;
	b->min_reset = (uint32_t)min;
	return 0;
}

int
tpm_clock_observe(struct tpm_backend *b, const TPMS_TIME_INFO *ti, bool first,
		  char *err, size_t errlen)
{
	char path[PATH_MAX + 16], text[64];
	uint32_t reset = ti->clockInfo.resetCount;

	if (!first && reset == b->last_reset)
		return 0;
	if (!first && !ti->clockInfo.safe && reset > b->min_reset) {
		log_warn("TPM: reset count %u -> %u with clock not safe: the "
			 "TPM clock may have fallen back; task keys made "
			 "before are refused",
			 (unsigned)b->last_reset, (unsigned)reset);
		b->min_reset = reset;
	}
	b->last_reset = reset;
	snprintf(path, sizeof(path), "%s/clock", b->dir);
	snprintf(text, sizeof(text), "%lu %lu\n", (unsigned long)b->last_reset,
		 (unsigned long)b->min_reset);
	return tpm_write_file(path, (const uint8_t *)text, strlen(text), err,
			      errlen);
}

/* --- policy ------------------------------------------------------------------
 */

static void
operand_u64(TPM2B_OPERAND *op, uint64_t v)
{
	size_t off = 0;

	op->size = 8;
	(void)Tss2_MU_UINT64_Marshal(v, op->buffer, 8, &off);
}

/* Which policy command failed tells the caller why the TPM refused. */

TSS2_RC
tpm_policy_run(struct tpm_backend *b, ESYS_TR session, uint64_t deadline,
	       uint64_t counter, enum tpm_policy_step *failed)
{
	TPM2B_OPERAND op;
	TSS2_RC rc;

	operand_u64(&op, deadline);
	/* offset 8: TPMS_TIME_INFO.clockInfo.clock */
	rc = Esys_PolicyCounterTimer(b->esys, session, ESYS_TR_NONE,
				     ESYS_TR_NONE, ESYS_TR_NONE, &op, 8,
				     TPM2_EO_UNSIGNED_LT);
	if (rc != TSS2_RC_SUCCESS) {
		*failed = STEP_CLOCK;
		return rc;
	}
	operand_u64(&op, counter);
	rc = Esys_PolicyNV(b->esys, ESYS_TR_RH_OWNER, b->nv, session,
			   ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &op, 0,
			   TPM2_EO_EQ);
	if (rc != TSS2_RC_SUCCESS)
		*failed = STEP_NV;
	return rc;
}

TSS2_RC
tpm_session_start(struct tpm_backend *b, TPM2_SE type, ESYS_TR *session)
{
	TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};

	return Esys_StartAuthSession(
		b->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
		ESYS_TR_NONE, NULL, type, &sym, TPM2_ALG_SHA256, session);
}

/*
 * The policy session every task-key signature uses, kept open across
 * signatures (continueSession). After a successful authorisation the TPM
 * resets a policy session's digest, so each signature still runs
 * PolicyCounterTimer and PolicyNV in it: the deadline and the kill switch
 * are checked by the TPM every time; only StartAuthSession and
 * FlushContext are saved. One session serves every task key: all of them
 * have the same shape of policy, and b->lock keeps one signature at a time.
 */
int
tpm_psession_get(struct tpm_backend *b, ESYS_TR *session, char *err,
		 size_t errlen)
{
	TSS2_RC rc;

	if (b->psession == ESYS_TR_NONE) {
		rc = tpm_session_start(b, TPM2_SE_POLICY, &b->psession);
		if (rc == TSS2_RC_SUCCESS)
			rc = Esys_TRSess_SetAttributes(
				b->esys, b->psession,
				TPMA_SESSION_CONTINUESESSION,
				TPMA_SESSION_CONTINUESESSION);
		if (rc != TSS2_RC_SUCCESS) {
			tpm_psession_close(b);
			tpm_tss_err(err, errlen,
				    "cannot start a policy session", rc);
			return -1;
		}
	}
	*session = b->psession;
	return 0;
}

/* After a failed policy command or Sign the session may hold part of a
 * policy: PolicyRestart clears it; if even that fails, start afresh next
 * time. */
void
tpm_psession_reset(struct tpm_backend *b)
{
	if (b->psession == ESYS_TR_NONE)
		return;
	if (Esys_PolicyRestart(b->esys, b->psession, ESYS_TR_NONE, ESYS_TR_NONE,
			       ESYS_TR_NONE) != TSS2_RC_SUCCESS)
		tpm_psession_close(b);
}

void
tpm_psession_close(struct tpm_backend *b)
{
	if (b->psession != ESYS_TR_NONE &&
	    Esys_FlushContext(b->esys, b->psession) != TSS2_RC_SUCCESS)
		(void)Esys_TR_Close(b->esys, &b->psession);
	b->psession = ESYS_TR_NONE;
}

/*
 * The policy digest from a trial session, checked against the one computed
 * in software (the verifier's way): a mismatch means one of the two is
 * wrong and no key is made.
 */
int
tpm_policy_digest(struct tpm_backend *b, uint64_t deadline, uint64_t counter,
		  TPM2B_DIGEST *out, char *err, size_t errlen)
{
	ESYS_TR session = ESYS_TR_NONE;
	TPM2B_DIGEST *d = NULL;
	enum tpm_policy_step step = STEP_NONE;
	TPM2B_NAME name;
	uint8_t soft[32];
	TSS2_RC rc;
	int r = -1;

	if (tpm_nv_name(b, &name, err, errlen) != 0 ||
	    stint_tpm_policy_digest(deadline, counter, name.name, name.size,
				    soft) != 0) {
		if (err[0] == '\0')
			snprintf(err, errlen, "cannot compute the policy");
		return -1;
	}
	if ((rc = tpm_session_start(b, TPM2_SE_TRIAL, &session)) !=
	    TSS2_RC_SUCCESS) {
		session = ESYS_TR_NONE;
		tpm_tss_err(err, errlen, "cannot start a trial policy session",
			    rc);
		goto out;
	}
	if ((rc = tpm_policy_run(b, session, deadline, counter, &step)) !=
		    TSS2_RC_SUCCESS ||
	    (rc = Esys_PolicyGetDigest(b->esys, session, ESYS_TR_NONE,
				       ESYS_TR_NONE, ESYS_TR_NONE, &d)) !=
		    TSS2_RC_SUCCESS) {
		tpm_tss_err(err, errlen, "trial policy session failed", rc);
		goto out;
	}
	if (d->size != 32 || memcmp(d->buffer, soft, 32) != 0) {
		snprintf(err, errlen,
			 "the TPM's policy digest differs from the one "
			 "computed in software: key not made");
		goto out;
	}
	*out = *d;
	r = 0;
out:
	Esys_Free(d);
	tpm_flush(b, &session);
	return r;
}
