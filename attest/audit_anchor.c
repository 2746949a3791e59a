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
#include "attest/ca.h"
#include "attest/daemon.h"
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

/* The checkpoint signer: the key `stint ca attestation-key` prints (the
 * backend's own attestation key when it has one, else the CA's). */
static int
anchor_sign(void *ctx, const uint8_t *msg, size_t len, uint8_t *sig,
	    size_t *sig_len, char *err, size_t errlen)
{
	struct stintd *d = ctx;
	EVP_MD_CTX *md;
	int r = -1;

	if (d->backend->ops->ak_sign != NULL)
		return d->backend->ops->ak_sign(d->backend, msg, len, sig,
						sig_len, err, errlen);
	if ((md = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
			       stint_ca_ak(d->ca)) == 1 &&
	    EVP_DigestSign(md, sig, sig_len, msg, len) == 1)
		r = 0;
	else
		snprintf(err, errlen, "the attestation key did not sign");
	EVP_MD_CTX_free(md);
	return r;
}

/* SHA-256 of the SPKI of the checkpoint key. */
static int
anchor_key_id(struct stintd *d, uint8_t out[32])
{
	const struct stint_bytes *spki;
	struct stint_bytes own = {NULL, 0};
	char err[256];
	int n;

	if (d->backend->ops->ak_spki != NULL) {
		if (d->backend->ops->ak_spki(d->backend, &own, err,
					     sizeof(err)) != 0)
			return -1;
		n = EVP_Digest(own.ptr, own.len, out, NULL, EVP_sha256(), NULL);
		stint_bytes_clear(&own);
		return n == 1 ? 0 : -1;
	}
	spki = stint_ca_ak_spki(d->ca);
	n = EVP_Digest(spki->ptr, spki->len, out, NULL, EVP_sha256(), NULL);
	return n == 1 ? 0 : -1;
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
	if (d->ca != NULL && anchor_key_id(d, key) == 0)
		stint_audit_set_signer(d->audit, anchor_sign, d, key);
	else
		log_warn("audit checkpoints are not signed: no attestation "
			 "key");
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
