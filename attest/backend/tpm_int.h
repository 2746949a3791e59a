/*
 * TPM 2.0 key-store backend, through tpm2-tss ESAPI: what its files
 * (attest/backend/tpm_*.c) share. Private to them; attest/backend_tpm.h
 * is what the verifier and the tests use.
 *
 * Files: tpm_keyfile.c key files and file helpers; tpm_policy.c the key
 * policy (deadline, kill-switch counter) and the clock-safety checks;
 * tpm_attest.c the NV counters, the attestation key, Certify evidence and
 * the optional ops built on them; tpm_ops.c templates, TPM plumbing, the
 * ops, open and close.
 *
 * There is one TPM and, on many hosts, no resource manager: the TPM holds
 * three transient objects and three loaded sessions. So one mutex
 * serialises every TPM command; the storage primary, one policy session
 * (tpm_psession_get) and up to [backend] tpm_loaded_keys recently used
 * keys (tpm_loaded.c) stay loaded while the backend is open, and every
 * other object or session is flushed on every path before the mutex is
 * released. A load or create that finds the object slots full flushes the
 * least recently used cached key and tries again.
 *
 * Task keys are never persisted in the TPM: their public area and encrypted
 * private part live in <state_dir>/tpm/<key_id>.key; a key is loaded at
 * its first signature and kept loaded until its task ends (destroy), the
 * kill switch, eviction or close. Each key's authPolicy is
 *   PolicyCounterTimer(TPMS_TIME_INFO.clock < deadline)
 *   AND PolicyNV(kill-switch counter == its value at creation),
 * and the key has no userWithAuth, so the TPM itself refuses it after the
 * deadline or after the kill switch, whoever asks. See docs/tpm.md.
 */
#ifndef STINT_ATTEST_BACKEND_TPM_INT_H
#define STINT_ATTEST_BACKEND_TPM_INT_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_sys.h>
#include <tss2/tss2_tctildr.h>

#include "attest/backend.h"
#include "attest/backend_tpm.h"
#include "attest/backend/shared.h"
#include "attest/config.h"
#include "attest/evidence.h"
#include "attest/tpm_evidence.h"
#include "common/bytes.h"
#include "common/fileio.h"
#include "common/ident.h"
#include "common/log.h"

#define KEY_ID_MAX  128
#define KEYFILE_MAX 4096
#define EK_CERT_MAX 4096
#define NV_AUTH_LEN 32
#define EK_CERT_ECC 0x01c0000a
#define EK_CERT_RSA 0x01c00002
#define KIND_TASK   0
#define KIND_HOST   1
#define SIGN_IN_MAX 512
#define LOADED_MAX  64 /* STINT_TPM_LOADED_KEYS_MAX */

/* A key kept loaded between signatures (tpm_loaded.c). */
struct tpm_loaded {
	char id[KEY_ID_MAX + 1];
	TPM2B_PUBLIC pub; /* the key file's, to tell a reused id apart */
	ESYS_TR tr;       /* ESYS_TR_NONE: free */
	uint64_t used;    /* loaded_tick at the last use */
};

struct tpm_backend {
	struct stint_backend base; /* first: the ops see a stint_backend */
	pthread_mutex_t lock;      /* one TPM, one command at a time */
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR primary;
	ESYS_TR psession; /* the policy session kept for signing */
	struct tpm_loaded loaded[LOADED_MAX];
	uint32_t loaded_cap; /* [backend] tpm_loaded_keys */
	uint64_t loaded_tick;
	ESYS_TR nv;
	uint32_t nv_index;
	ESYS_TR anv; /* the audit anchor's counter (audit_anchor.c) */
	uint32_t anv_index;
	bool anv_created;   /* defined by this start */
	char dir[PATH_MAX]; /* <state_dir>/tpm */
	uint32_t last_reset, min_reset;
	bool have_ek_cert;
};

/* The full keyfile, with its kind (task key or long-lived host key). */
struct tpm_keyfile {
	struct stint_tpm_keyfile k;
	uint8_t kind;
};

/* Which policy command failed (tpm_policy_run). */
enum tpm_policy_step { STEP_NONE, STEP_CLOCK, STEP_NV };

void tpm_tss_err(char *err, size_t errlen, const char *what, TSS2_RC rc);
void tpm_flush(struct tpm_backend *b, ESYS_TR *tr);
bool tpm_key_id_ok(const char *id);
int tpm_path_for(const struct tpm_backend *b, const char *prefix,
		 const char *id, char *path, size_t cap);
int tpm_write_file(const char *path, const uint8_t *buf, size_t len, char *err,
		   size_t errlen);
int tpm_keyfile_load(const char *path, struct tpm_keyfile *f, char *err,
		     size_t errlen);
int tpm_keyfile_save(const char *path, const struct tpm_keyfile *f, char *err,
		     size_t errlen);
int tpm_clock_state_load(struct tpm_backend *b);
int tpm_clock_observe(struct tpm_backend *b, const TPMS_TIME_INFO *ti,
		      bool first, char *err, size_t errlen);
TSS2_RC tpm_policy_run(struct tpm_backend *b, ESYS_TR session,
		       uint64_t deadline, uint64_t counter,
		       enum tpm_policy_step *failed);
int tpm_psession_get(struct tpm_backend *b, ESYS_TR *session, char *err,
		     size_t errlen);
void tpm_psession_reset(struct tpm_backend *b);
void tpm_psession_close(struct tpm_backend *b);
TSS2_RC tpm_session_start(struct tpm_backend *b, TPM2_SE type,
			  ESYS_TR *session);
int tpm_policy_digest(struct tpm_backend *b, uint64_t deadline,
		      uint64_t counter, TPM2B_DIGEST *out, char *err,
		      size_t errlen);
int tpm_nv_read_counter(struct tpm_backend *b, uint64_t *value, char *err,
			size_t errlen);
int tpm_nv_name(struct tpm_backend *b, TPM2B_NAME *name, char *err,
		size_t errlen);
int tpm_nv_setup(struct tpm_backend *b, char *err, size_t errlen);
int tpm_ak_setup(struct tpm_backend *b, char *err, size_t errlen);
void tpm_ek_cert_record(struct tpm_backend *b);
int tpm_evidence(struct stint_backend *base,
		 const struct stint_backend_evidence_req *req,
		 struct stint_bytes *doc, char *err, size_t errlen);
int tpm_ak_spki(struct stint_backend *base, struct stint_bytes *spki, char *err,
		size_t errlen);
int tpm_ak_sign_der(struct stint_backend *base, const uint8_t *data, size_t len,
		    uint8_t *sig, size_t *sig_len, char *err, size_t errlen);
int tpm_audit_counter(struct stint_backend *base, bool advance, uint64_t *value,
		      char *err, size_t errlen);
int tpm_kill_switch(struct stint_backend *base, uint64_t *counter, char *err,
		    size_t errlen);
void tpm_template_ak(TPM2B_PUBLIC *t);
int tpm_create_key(struct tpm_backend *b, const TPM2B_PUBLIC *tmpl,
		   TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv, char *err,
		   size_t errlen);
int tpm_load_key(struct tpm_backend *b, const TPM2B_PUBLIC *pub,
		 const TPM2B_PRIVATE *priv, ESYS_TR *out, char *err,
		 size_t errlen);
bool tpm_loaded_evict(struct tpm_backend *b);
int tpm_loaded_get(struct tpm_backend *b, const char *key_id,
		   const struct tpm_keyfile *f, ESYS_TR *out, bool *cached,
		   char *err, size_t errlen);
void tpm_loaded_drop(struct tpm_backend *b, const char *key_id);
void tpm_loaded_flush_all(struct tpm_backend *b);
int tpm_sig_out(const TPMT_SIGNATURE *s, uint8_t *sig, size_t *sig_len,
		char *err, size_t errlen);
int tpm_key_find(struct tpm_backend *b, const char *key_id,
		 struct tpm_keyfile *f, char *err, size_t errlen);
void tpm_close(struct stint_backend *base);

#endif
