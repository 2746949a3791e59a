/*
 * The audit log's anchor. The hash chain alone cannot show that records
 * were cut from the end, or that the whole log was rewritten from some
 * point and re-hashed. Two things pin it:
 *
 * - state.db keeps the head (seq, hash, end offset) stintd last wrote,
 *   updated by the anchor thread about once a second while the log grows,
 *   after every checkpoint and rotation, and at stop; stintd refuses to
 *   start on a log that ends before it or holds another record there.
 * - every [audit] checkpoint (and at stop and before a rotation) a
 *   checkpoint record carries the head signed by the host attestation key,
 *   which no one can forge without the backend; `stint audit verify
 *   --attestation-key` checks them, also on a copy off the host.
 * - nv: on the TPM, each checkpoint carries a hardware counter that never
 *   goes back, so a restored older copy of the log and state.db is found
 *   at start (below).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "attest/audit_anchor.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "attest/agents_dir.h"
#include "attest/daemon.h"
#include "common/hex.h"
#include "common/log.h"

static pthread_t anchor_thread;
static bool anchor_running;
static atomic_bool anchor_stop;
static _Atomic uint64_t stored_seq; /* the head last written to state.db */

void
stintd_anchor_block_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* The checkpoint signer: the backend's attestation key, the key `stint ca
 * attestation-key` prints (every backend has one). */
static int
anchor_sign(void *ctx, const uint8_t *msg, size_t len, uint8_t *sig,
	    size_t *sig_len, char *err, size_t errlen)
{
	struct stintd *d = ctx;

	return d->backend->ops->ak_sign(d->backend, msg, len, sig, sig_len, err,
					errlen);
}

/* SHA-256 of the SPKI of the checkpoint key; *pkey (when not NULL) gets
 * the key itself. */
static int
anchor_key_id(struct stintd *d, uint8_t out[32], EVP_PKEY **pkey)
{
	struct stint_bytes own = {NULL, 0};
	const unsigned char *p;
	char err[256];
	int n;

	if (d->backend->ops->ak_spki(d->backend, &own, err, sizeof(err)) != 0)
		return -1;
	n = EVP_Digest(own.ptr, own.len, out, NULL, EVP_sha256(), NULL);
	if (n == 1 && pkey != NULL) {
		p = own.ptr;
		if ((*pkey = d2i_PUBKEY(NULL, &p, (long)own.len)) == NULL)
			n = 0;
	}
	stint_bytes_clear(&own);
	return n == 1 ? 0 : -1;
}

/* --- nv: the TPM anchor -------------------------------------------------
 *
 * On a backend with a hardware counter (audit_counter: the TPM's NV
 * counter at [backend] audit_counter_index), every checkpoint advances the
 * counter before it is written and carries its value c, signed. The
 * counter never goes back, so a log and state.db restored from an older
 * copy (consistent with each other, which the checks above accept) end
 * with a checkpoint behind the TPM: start is refused unless the TPM holds
 * c, or c + 1 (stintd died between advancing it and writing the
 * checkpoint; accepted and recorded in the daemon-start record).
 */
static uint64_t nv_pending; /* the TPM is one ahead: the next checkpoint */
static bool nv_force;       /* write a checkpoint as soon as serving */
static char nv_note[192];   /* for the daemon-start record */

static int
anchor_advance(void *ctx, uint64_t *value, char *err, size_t errlen)
{
	struct stintd *d = ctx;

	return d->backend->ops->audit_counter(d->backend, true, value, err,
					      errlen);
}

int
stintd_anchor_nv(struct stintd *d, uint64_t *value)
{
	char err[256];

	if (d->backend->ops->audit_counter == NULL)
		return -1;
	return d->backend->ops->audit_counter(d->backend, false, value, err,
					      sizeof(err));
}

const char *
stintd_anchor_note(void)
{
	return nv_note;
}

/* True when cp is signed by this host's attestation key. */
static bool
cp_signed_here(struct stintd *d, const struct stint_audit_cp *cp)
{
	EVP_PKEY *ak = NULL;
	uint8_t id[32];
	char hex[65];
	bool ok = false;

	if (anchor_key_id(d, id, &ak) == 0) {
		stint_hex_encode(id, 32, hex);
		ok = strcmp(hex, cp->key) == 0 && stint_audit_cp_sig_ok(ak, cp);
	}
	EVP_PKEY_free(ak);
	return ok;
}

/* No checkpoint carries the counter: fine only while the TPM says it was
 * never advanced (first start with the anchor). */
static const char *
nv_none(struct stintd *d, uint64_t tpm, char *why, size_t cap)
{
	if (tpm == 0) {
		nv_force = true;
		snprintf(nv_note, sizeof(nv_note),
			 "; TPM audit counter (NV index 0x%08x) not advanced "
			 "yet: the first checkpoint pins the log to it",
			 d->cfg.backend.audit_counter_index);
		return NULL;
	}
	snprintf(why, cap,
		 "audit log rollback: no checkpoint in %s carries the TPM "
		 "audit counter (NV index 0x%08x, now %llu): the log was "
		 "replaced by one older than the counter, or by another",
		 stint_audit_path(d->audit), d->cfg.backend.audit_counter_index,
		 (unsigned long long)tpm);
	return why;
}

/* Compares the TPM counter with the last checkpoint's: NULL when they
 * agree, else why not (in why). */
static const char *
nv_compare(struct stintd *d, uint64_t tpm, char *why, size_t cap)
{
	const char *path = stint_audit_path(d->audit);
	uint32_t index = d->cfg.backend.audit_counter_index;
	struct stint_audit_cp cp;
	int r;

	r = stint_audit_last_nv_checkpoint(d->audit, &cp, why, cap);
	if (r < 0)
		return why;
	if (r == 1)
		return nv_none(d, tpm, why, cap);
	if (!cp_signed_here(d, &cp)) {
		snprintf(why, cap,
			 "the last checkpoint in %s (seq %llu) is not signed "
			 "by this host's attestation key: forged",
			 path, (unsigned long long)cp.seq);
		return why;
	}
	if (tpm == cp.nv)
		return NULL;
	if (tpm == cp.nv + 1) {
		nv_pending = tpm;
		snprintf(nv_note, sizeof(nv_note),
			 "; TPM audit counter %llu is one ahead of the last "
			 "checkpoint's %llu (stopped between advancing it and "
			 "writing the checkpoint)",
			 (unsigned long long)tpm, (unsigned long long)cp.nv);
		log_warn("audit anchor: %s", nv_note + 2);
		return NULL;
	}
	if (tpm > cp.nv)
		snprintf(why, cap,
			 "audit log rollback: the TPM audit counter (NV index "
			 "0x%08x) is at %llu, but the last checkpoint in %s "
			 "(seq %llu) carries %llu: the log and state.db were "
			 "restored from an older copy, or the log was cut back "
			 "to an earlier checkpoint",
			 index, (unsigned long long)tpm, path,
			 (unsigned long long)cp.seq, (unsigned long long)cp.nv);
	else if (tpm == 0)
		snprintf(
			why, cap,
			"the TPM audit counter (NV index 0x%08x) was never "
			"advanced, but the last checkpoint in %s carries %llu: "
			"the index was removed and defined again (hiding a "
			"rollback), or the log comes from another TPM",
			index, path, (unsigned long long)cp.nv);
	else
		snprintf(why, cap,
			 "the last checkpoint in %s carries TPM audit counter "
			 "%llu, ahead of the TPM's %llu (NV index 0x%08x): the "
			 "log comes from another TPM",
			 path, (unsigned long long)cp.nv,
			 (unsigned long long)tpm, index);
	return why;
}

/* The start check; -1 with err when start must be refused. */
static int
anchor_nv_open(struct stintd *d, bool reset, bool *reset_done, char *err,
	       size_t errlen)
{
	uint64_t tpm = 0;

	nv_pending = 0;
	nv_force = false;
	nv_note[0] = '\0';
	if (d->backend->ops->audit_counter == NULL)
		return 0;
	if (d->backend->ops->audit_counter(d->backend, false, &tpm, err,
					   errlen) != 0)
		return -1;
	if (nv_compare(d, tpm, err, errlen) != NULL) {
		if (!reset)
			return -1;
		log_warn("%s; starting anyway (--reset-audit-anchor)", err);
		*reset_done = true;
		nv_force = true;
	}
	if (nv_pending != 0)
		nv_force = true;
	stint_audit_set_counter(d->audit, anchor_advance, d, nv_pending);
	return 0;
}

void
stintd_anchor_store(struct stintd *d)
{
	struct stint_store_audit_head h;

	memset(&h, 0, sizeof(h));
	stint_audit_head_at(d->audit, &h.seq, h.hash, &h.offset);
	h.updated = stintd_now();
	if (stint_store_audit_head_set(d->store, &h) != STINT_STORE_OK)
		log_err("cannot record the audit head in state.db");
	else
		stored_seq = h.seq;
}

int
stintd_anchor_open(struct stintd *d, bool reset, bool *reset_done, char *err,
		   size_t errlen)
{
	struct stint_store_audit_head h;
	uint8_t key[32];
	int r;

	*reset_done = false;
	r = stint_store_audit_head_get(d->store, &h);
	if (r == STINT_STORE_ERROR) {
		snprintf(err, errlen,
			 "cannot read the audit head from "
			 "state.db");
		return -1;
	}
	if (r == STINT_STORE_OK &&
	    stint_audit_check_anchor(d->audit, h.seq, h.hash, h.offset, err,
				     errlen) != 0) {
		if (!reset) {
			size_t n = strlen(err);

			snprintf(err + n, errlen - n,
				 "; keep it as evidence (`stint audit verify "
				 "FILE`), move it aside and start stintd with "
				 "--reset-audit-anchor to begin a new chain");
			return -1;
		}
		log_warn("%s; starting anyway (--reset-audit-anchor)", err);
		*reset_done = true;
	}
	if (anchor_key_id(d, key, NULL) != 0) {
		snprintf(err, errlen,
			 "cannot read the attestation key that signs audit "
			 "checkpoints");
		return -1;
	}
	stint_audit_set_signer(d->audit, anchor_sign, d, key);
	if (anchor_nv_open(d, reset, reset_done, err, errlen) != 0) {
		size_t n = strlen(err);

		snprintf(err + n, errlen - n,
			 "; keep the log and state.db as evidence (`stint "
			 "audit verify --attestation-key AK.pem FILE`) and "
			 "start stintd with --reset-audit-anchor to continue "
			 "from the TPM's counter");
		return -1;
	}
	return 0;
}

int
stintd_anchor_rotate(struct stintd *d, char *old, size_t cap, char *err,
		     size_t errlen)
{
	int r = stint_audit_rotate(d->audit, old, cap, err, errlen);

	if (r == 0) {
		stintd_anchor_store(d);
		log_info("audit log rotated: the chain continues in %s, "
			 "previous records are in %s",
			 stint_audit_path(d->audit), old);
	} else {
		log_err("audit log rotation failed: %s", err);
	}
	return r;
}

static void *
anchor_main(void *arg)
{
	struct stintd *d = arg;
	struct timespec tick = {1, 0};
	int64_t next = stintd_now() + (int64_t)d->cfg.audit.checkpoint;
	char err[512], old[PATH_MAX];
	uint64_t seq;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2);
	while (!atomic_load(&anchor_stop)) {
		sig = sigtimedwait(&set, NULL, &tick);
		if (atomic_load(&anchor_stop))
			break;
		if (sig == SIGHUP) {
			(void)stintd_anchor_rotate(d, old, sizeof(old), err,
						   sizeof(err));
			/* prov: and the agents agents.d declares */
			if (stintd_agents_reconcile(d, NULL, err,
						    sizeof(err)) != 0)
				log_err("agents.d not reconciled, agents "
					"unchanged: %s",
					err);
		}
		if (stintd_now() >= next) {
			next = stintd_now() + (int64_t)d->cfg.audit.checkpoint;
			err[0] = '\0';
			if (stint_audit_checkpoint(d->audit, false, err,
						   sizeof(err)) != 0 &&
			    strcmp(err, "no checkpoint signer") != 0)
				log_err("audit checkpoint failed: %s", err);
		}
		stint_audit_head_at(d->audit, &seq, NULL, NULL);
		if (seq != stored_seq)
			stintd_anchor_store(d);
	}
	return NULL;
}

int
stintd_anchor_start(struct stintd *d)
{
	char err[512];

	/* nv: a fresh counter, or one a crash left ahead, is pinned by a
	 * checkpoint before anything is served. */
	if (nv_force) {
		nv_force = false;
		err[0] = '\0';
		if (stint_audit_checkpoint(d->audit, true, err, sizeof(err)) !=
		    0)
			log_err("audit checkpoint at start failed: %s", err);
		else
			stintd_anchor_store(d);
	}
	atomic_store(&anchor_stop, false);
	if (pthread_create(&anchor_thread, NULL, anchor_main, d) != 0)
		return -1;
	anchor_running = true;
	return 0;
}

void
stintd_anchor_stop(struct stintd *d)
{
	char err[512];

	if (anchor_running) {
		atomic_store(&anchor_stop, true);
		pthread_kill(anchor_thread, SIGUSR2);
		pthread_join(anchor_thread, NULL);
		anchor_running = false;
	}
	if (d->audit == NULL)
		return;
	err[0] = '\0';
	if (stint_audit_checkpoint(d->audit, false, err, sizeof(err)) != 0 &&
	    strcmp(err, "no checkpoint signer") != 0)
		log_err("audit checkpoint at stop failed: %s", err);
	stintd_anchor_store(d);
}
