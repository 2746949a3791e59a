/*
 * stintd's handlers, called through the op table (stintd_dispatch) as the
 * server calls them, around a real state.db, a real audit log and a fake
 * backend (fake_backend.c) that records what it is asked. No sockets: the
 * peer is a struct, as SO_PEERCRED would have filled it.
 *
 * What these pin down: a signature is never made without its audit record
 * (the backend is not even asked); a SIGN for a task that is not the
 * peer's, unknown, ended or expired never reaches the backend; the shape of
 * the bytes the backend signs, per mechanism (raw_input's table); ending a
 * task destroys its key once and refuses it from then on, also when the
 * backend cannot destroy the key (fail closed).
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "attest/daemon.h"
#include "attest/ops.h"
#include "attest/refusals.h"
#include "common/mechanism.h"
#include "common/msg.h"
#include "tests/unit/fake_backend.h"

#define ALICE_UID 1000
#define BOB_UID   1001
#define NOBODY    1002

/* Task ids shaped as stint_task_id_new makes them. */
#define T_EC    "t-00000000000000000000000000000001"
#define T_RSA   "t-00000000000000000000000000000002"
#define T_BOB   "t-00000000000000000000000000000003"
#define T_ENDED "t-00000000000000000000000000000004"
#define T_OLD   "t-00000000000000000000000000000005"
#define T_NONE  "t-0000000000000000000000000000000f"

struct hfix {
	char dir[64];
	char db[128];
	char log[128];
	struct stintd d;
	struct fake_backend fb;
};

static uint8_t spki[] = {0x30, 0x59, 0x30, 0x13, 0x00, 0xff};
static uint8_t point[] = {0x04, 0x41, 0x04, 0x01, 0x02};
static uint8_t params[] = {0x06, 0x08, 0x2a, 0x86};
static uint8_t modulus[] = {0xc1, 0x02, 0x03, 0x04};
static uint8_t exponent[] = {0x01, 0x00, 0x01};

/* --- fixture: state dir, store, audit log, fake backend --- */

static void
add_agent(struct hfix *f, const char *name, uint32_t uid)
{
	struct stint_agent a;
	const struct stint_mech *all;
	size_t n, i;
	char err[256] = "";

	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", name);
	a.uid = uid;
	a.gid = -1;
	a.max_ttl = 3600;
	all = stint_mech_all(&n);
	for (i = 0; i < n; i++)
		a.mechs[a.n_mechs++] = all[i].mech;
	a.created = stintd_now() - 100;
	if (stint_store_agent_add(f->d.store, &a, NULL, err, sizeof(err)) != 0)
		fail_msg("agent add %s: %s", name, err);
}

/* A task allowed every mechanism its key type can do. */
static void
add_task(struct hfix *f, const char *id, const char *agent, uint32_t key_type,
	 int64_t not_after)
{
	struct stint_task t;
	const struct stint_mech *all;
	size_t n, i;
	char err[256] = "";

	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "%s", id);
	snprintf(t.agent, sizeof(t.agent), "%s", agent);
	t.key_type = key_type;
	t.state = STINT_TASK_LIVE;
	t.created = stintd_now() - 10;
	t.not_after = not_after;
	all = stint_mech_all(&n);
	for (i = 0; i < n; i++)
		if (stint_mech_fits_key(&all[i], key_type))
			t.mechs[t.n_mechs++] = all[i].mech;
	/* Borrowed: insert copies them. */
	t.pub.spki = (struct stint_bytes){spki, sizeof(spki)};
	if (key_type == STINT_KEY_RSA_2048) {
		t.pub.modulus = (struct stint_bytes){modulus, sizeof(modulus)};
		t.pub.exponent =
			(struct stint_bytes){exponent, sizeof(exponent)};
	} else {
		t.pub.ec_point = (struct stint_bytes){point, sizeof(point)};
		t.pub.ec_params = (struct stint_bytes){params, sizeof(params)};
	}
	if (stint_store_task_insert(f->d.store, &t, err, sizeof(err)) != 0)
		fail_msg("task insert %s: %s", id, err);
}

static int
setup(void **state)
{
	struct hfix *f = calloc(1, sizeof(*f));
	char err[512];
	int64_t now = stintd_now();

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/stint-test-handlers.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->db, sizeof(f->db), "%s/state.db", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/audit.log", f->dir);
	if (stint_store_open(f->db, &f->d.store, err, sizeof(err)) != 0 ||
	    stint_audit_open(f->log, STINT_SYNC_ALWAYS, &f->d.audit, err,
			     sizeof(err)) != 0) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	fake_backend_init(&f->fb);
	f->d.backend = &f->fb.base;
	f->d.uid = getuid();
	f->d.started = now;
	if ((f->d.revoke = stint_revoke_lock_new()) == NULL)
		return -1;
	add_agent(f, "alice", ALICE_UID);
	add_agent(f, "bob", BOB_UID);
	add_task(f, T_EC, "alice", STINT_KEY_EC_P256, now + 600);
	add_task(f, T_RSA, "alice", STINT_KEY_RSA_2048, now + 600);
	add_task(f, T_BOB, "bob", STINT_KEY_EC_P256, now + 600);
	add_task(f, T_ENDED, "alice", STINT_KEY_EC_P256, now + 600);
	add_task(f, T_OLD, "alice", STINT_KEY_EC_P256, now - 1);
	assert_int_equal(stint_store_task_end(f->d.store, T_ENDED,
					      STINT_TASK_ENDED, "test", now),
			 STINT_STORE_OK);
	*state = f;
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
teardown(void **state)
{
	struct hfix *f = *state;
	int r;

	/* Refusal aggregates are process-wide: none may outlive this log. */
	stint_refusals_flush(f->d.audit, stintd_now(), true);
	stint_audit_close(f->d.audit);
	stint_store_close(f->d.store);
	stint_revoke_lock_free(f->d.revoke);
	r = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return r;
}

/* --- requests through the op table --- */

static struct stint_peer
peer_of(uid_t uid)
{
	struct stint_peer p;

	memset(&p, 0, sizeof(p));
	p.pid = 4242;
	p.uid = uid;
	p.gid = uid;
	p.start_time = 1;
	snprintf(p.exe, sizeof(p.exe), "/usr/bin/agent");
	return p;
}

/* Dispatches msg (freed) on sock as peer; returns the reply's status. */
static uint64_t
dispatch(struct hfix *f, enum stintd_sock sock, uid_t uid, struct stint_msg *m,
	 struct stint_reply *rep_out)
{
	struct stint_peer peer = peer_of(uid);
	struct stint_reply rep = {0};
	struct stint_reply_head head;
	struct stint_msg *r;

	assert_int_equal(stintd_dispatch(&f->d, sock, &peer, m, &rep), 0);
	stint_msg_free(m);
	assert_non_null(rep.buf);
	assert_int_equal(stint_msg_parse(rep.buf, rep.len, &r), 0);
	assert_int_equal(stint_msg_get_reply_head(r, &head), 0);
	stint_msg_free(r);
	if (rep_out != NULL)
		*rep_out = rep;
	else
		free(rep.buf);
	return head.status;
}

/* A SIGN request as stint-pkcs11.so encodes it, parsed as server.c does. */
static struct stint_msg *
sign_msg(const char *task, uint64_t mech, const uint8_t *data, size_t len,
	 const uint64_t *pss /* hash, mgf, salt, or NULL */)
{
	struct stint_sign_req req;
	struct stint_msg *m;
	uint8_t *buf = NULL;
	size_t blen = 0;

	memset(&req, 0, sizeof(req));
	snprintf(req.task, sizeof(req.task), "%s", task);
	req.mech = mech;
	req.data.ptr = (uint8_t *)data;
	req.data.len = len;
	if (pss != NULL) {
		req.has_pss = true;
		req.pss_hash = pss[0];
		req.pss_mgf = pss[1];
		req.pss_salt = pss[2];
	}
	assert_int_equal(stint_enc_sign_req(&req, &buf, &blen), 0);
	assert_int_equal(stint_msg_parse(buf, blen, &m), 0);
	free(buf);
	return m;
}

static uint64_t
sign(struct hfix *f, uid_t uid, const char *task, uint64_t mech, size_t len)
{
	uint8_t data[64];

	assert_true(len <= sizeof(data));
	memset(data, 0xab, sizeof(data));
	return dispatch(f, STINTD_SOCK_AGENT, uid,
			sign_msg(task, mech, data, len, NULL), NULL);
}

static uint64_t
task_end(struct hfix *f, const char *task)
{
	struct stint_task_end_req er;
	struct stint_msg *m = stint_msg_new();

	assert_non_null(m);
	memset(&er, 0, sizeof(er));
	snprintf(er.task, sizeof(er.task), "%s", task);
	assert_int_equal(stint_msg_put_uint(m, STINT_K_OP, STINT_OP_TASK_END),
			 0);
	assert_int_equal(stint_enc_task_end_req(m, &er), 0);
	return dispatch(f, STINTD_SOCK_ADMIN, 0, m, NULL);
}

/* How many records of event the audit log holds. */
static int
count_records(struct hfix *f, const char *event)
{
	char want[64], line[8192];
	FILE *fp = fopen(f->log, "r");
	int n = 0;

	assert_non_null(fp);
	snprintf(want, sizeof(want), "\"event\":\"%s\"", event);
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strstr(line, want) != NULL)
			n++;
	fclose(fp);
	return n;
}

/* The descriptor the audit log writes through, as /proc/self/fd names
 * it; -1 when none. */
static int
audit_fd(struct hfix *f)
{
	char real[PATH_MAX], target[PATH_MAX];
	struct dirent *e;
	DIR *dir = opendir("/proc/self/fd");
	ssize_t n;
	int fd = -1;

	assert_non_null(realpath(f->log, real));
	assert_non_null(dir);
	while (fd < 0 && (e = readdir(dir)) != NULL) {
		n = readlinkat(dirfd(dir), e->d_name, target,
			       sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, real) == 0)
			fd = atoi(e->d_name);
	}
	closedir(dir);
	return fd;
}

/* --- (1) no signature without its record --- */

/* The audit log's disk is full: its descriptor now writes to /dev/full
 * (ENOSPC, as a full filesystem answers). The gate allows the SIGN, the
 * record cannot be written, and the backend is never asked. */
static void
audit_write_fails_nothing_signed(void **state)
{
	struct hfix *f = *state;
	int fd = audit_fd(f), full = open("/dev/full", O_WRONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_true(full >= 0);
	assert_int_equal(dup2(full, fd), fd);
	close(full);

	assert_int_equal(sign(f, ALICE_UID, T_EC, CKM_ECDSA, 32),
			 STINT_E_INTERNAL);
	assert_int_equal(f->fb.sign_calls, 0);
	assert_int_equal(sign(f, ALICE_UID, T_RSA, CKM_SHA256_RSA_PKCS, 32),
			 STINT_E_INTERNAL);
	assert_int_equal(f->fb.sign_calls, 0);
}

/* --- (2) an allowed SIGN --- */

static void
sign_allowed_signs_once(void **state)
{
	struct hfix *f = *state;
	struct stint_reply rep = {0};
	struct stint_reply_head head;
	struct stint_bytes sig = {0};
	uint8_t digest[32];
	uint64_t status;

	memset(digest, 0x11, sizeof(digest));
	status = dispatch(
		f, STINTD_SOCK_AGENT, ALICE_UID,
		sign_msg(T_EC, CKM_ECDSA_SHA256, digest, sizeof(digest), NULL),
		&rep);
	assert_int_equal(status, STINT_OK);
	assert_int_equal(stint_dec_sign_rep(rep.buf, rep.len, &head, &sig), 0);
	assert_int_equal(sig.len, FAKE_SIG_LEN);
	assert_int_equal(sig.ptr[0], 0x5a);
	stint_bytes_clear(&sig);
	free(rep.buf);

	assert_int_equal(f->fb.sign_calls, 1);
	assert_string_equal(f->fb.sign_key, T_EC);
	assert_int_equal(f->fb.sign_raw, CKM_ECDSA);
	assert_false(f->fb.sign_has_pss);
	assert_int_equal(f->fb.sign_in_len, sizeof(digest));
	assert_memory_equal(f->fb.sign_in, digest, sizeof(digest));
	assert_int_equal(count_records(f, "sign-allowed"), 1);
	assert_int_equal(count_records(f, "sign-refused"), 0);
}

/* The backend fails: the agent is told so, and the log says so. */
static void
backend_sign_error_reported(void **state)
{
	struct hfix *f = *state;

	f->fb.fail_sign = true;
	assert_int_equal(sign(f, ALICE_UID, T_EC, CKM_ECDSA, 32),
			 STINT_E_BACKEND);
	assert_int_equal(f->fb.sign_calls, 1);
	assert_int_equal(count_records(f, "sign-allowed"), 1);
	assert_int_equal(count_records(f, "sign-error"), 1);
}

/* --- (3) refused before the backend --- */

static void
sign_refused_not_yours_or_not_live(void **state)
{
	struct hfix *f = *state;
	static const struct {
		const char *what;
		uid_t uid;
		const char *task;
		uint64_t status;
	} cases[] = {
		{"another agent's task", ALICE_UID, T_BOB, STINT_E_NOT_YOURS},
		{"the other way round", BOB_UID, T_EC, STINT_E_NOT_YOURS},
		{"an unknown task", ALICE_UID, T_NONE, STINT_E_NOT_YOURS},
		{"an ended task", ALICE_UID, T_ENDED, STINT_E_NOT_LIVE},
		{"a task past its deadline", ALICE_UID, T_OLD,
		 STINT_E_NOT_LIVE},
		{"a peer that is no agent", NOBODY, T_EC, STINT_E_NO_AGENT},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t got =
			sign(f, cases[i].uid, cases[i].task, CKM_ECDSA, 32);

		if (got != cases[i].status)
			fail_msg("%s: status %llu, want %llu", cases[i].what,
				 (unsigned long long)got,
				 (unsigned long long)cases[i].status);
		if (f->fb.sign_calls != 0)
			fail_msg("%s: the backend was asked to sign",
				 cases[i].what);
	}
	assert_int_equal(count_records(f, "sign-allowed"), 0);
	assert_true(count_records(f, "sign-refused") >= 1);
}

/* Ops on the wrong socket are refused by the table, never handled. */
static void
wrong_socket_refused(void **state)
{
	struct hfix *f = *state;
	uint8_t digest[32] = {0};
	struct stint_task_end_req er;
	struct stint_msg *m = stint_msg_new();

	assert_int_equal(dispatch(f, STINTD_SOCK_ADMIN, 0,
				  sign_msg(T_EC, CKM_ECDSA, digest, 32, NULL),
				  NULL),
			 STINT_E_DENIED);
	assert_int_equal(f->fb.sign_calls, 0);

	memset(&er, 0, sizeof(er));
	snprintf(er.task, sizeof(er.task), "%s", T_EC);
	assert_int_equal(stint_msg_put_uint(m, STINT_K_OP, STINT_OP_TASK_END),
			 0);
	assert_int_equal(stint_enc_task_end_req(m, &er), 0);
	assert_int_equal(dispatch(f, STINTD_SOCK_AGENT, ALICE_UID, m, NULL),
			 STINT_E_DENIED);
	assert_int_equal(f->fb.destroy_calls, 0);
	assert_int_equal(sign(f, ALICE_UID, T_EC, CKM_ECDSA, 32), STINT_OK);
}

/* --- (4) raw_input: what the backend is given, per mechanism --- */

#define SHA256_MGF CKG_MGF1_SHA256
#define SHA384_MGF CKG_MGF1_SHA384
#define SHA512_MGF CKG_MGF1_SHA512

struct raw_case {
	const char *what;
	const char *task;
	uint64_t mech;
	size_t len; /* bytes sent */
	bool pss;
	uint64_t hash, mgf, salt;
	uint64_t status;
	size_t signed_len; /* bytes the backend signs (STINT_OK) */
};

static const struct raw_case raw_cases[] = {
	/* CKM_ECDSA signs what it is given: any digest length. */
	{"ecdsa sha1-sized", T_EC, CKM_ECDSA, 20, 0, 0, 0, 0, STINT_OK, 20},
	{"ecdsa sha224-sized", T_EC, CKM_ECDSA, 28, 0, 0, 0, 0, STINT_OK, 28},
	{"ecdsa sha256-sized", T_EC, CKM_ECDSA, 32, 0, 0, 0, 0, STINT_OK, 32},
	{"ecdsa sha384-sized", T_EC, CKM_ECDSA, 48, 0, 0, 0, 0, STINT_OK, 48},
	{"ecdsa sha512-sized", T_EC, CKM_ECDSA, 64, 0, 0, 0, 0, STINT_OK, 64},
	{"ecdsa empty", T_EC, CKM_ECDSA, 0, 0, 0, 0, 0, STINT_E_BAD_REQUEST, 0},
	{"ecdsa at the max", T_EC, CKM_ECDSA, STINT_RAW_INPUT_MAX, 0, 0, 0, 0,
	 STINT_OK, STINT_RAW_INPUT_MAX},
	{"ecdsa over the max", T_EC, CKM_ECDSA, STINT_RAW_INPUT_MAX + 1, 0, 0,
	 0, 0, STINT_E_BAD_REQUEST, 0},
	/* Hash-and-sign ECDSA: exactly the hash's digest. */
	{"ecdsa-sha256 32", T_EC, CKM_ECDSA_SHA256, 32, 0, 0, 0, 0, STINT_OK,
	 32},
	{"ecdsa-sha256 20", T_EC, CKM_ECDSA_SHA256, 20, 0, 0, 0, 0,
	 STINT_E_BAD_REQUEST, 0},
	{"ecdsa-sha256 28", T_EC, CKM_ECDSA_SHA256, 28, 0, 0, 0, 0,
	 STINT_E_BAD_REQUEST, 0},
	{"ecdsa-sha256 48", T_EC, CKM_ECDSA_SHA256, 48, 0, 0, 0, 0,
	 STINT_E_BAD_REQUEST, 0},
	{"ecdsa-sha256 64", T_EC, CKM_ECDSA_SHA256, 64, 0, 0, 0, 0,
	 STINT_E_BAD_REQUEST, 0},
	{"ecdsa-sha256 empty", T_EC, CKM_ECDSA_SHA256, 0, 0, 0, 0, 0,
	 STINT_E_BAD_REQUEST, 0},
	{"ecdsa-sha384 48", T_EC, CKM_ECDSA_SHA384, 48, 0, 0, 0, 0, STINT_OK,
	 48},
	{"ecdsa-sha384 32", T_EC, CKM_ECDSA_SHA384, 32, 0, 0, 0, 0,
	 STINT_E_BAD_REQUEST, 0},
	{"ecdsa-sha512 64", T_EC, CKM_ECDSA_SHA512, 64, 0, 0, 0, 0, STINT_OK,
	 64},
	{"ecdsa-sha512 48", T_EC, CKM_ECDSA_SHA512, 48, 0, 0, 0, 0,
	 STINT_E_BAD_REQUEST, 0},
	/* CKM_RSA_PKCS signs a DigestInfo the caller built, as given. */
	{"rsa-pkcs DigestInfo sha1", T_RSA, CKM_RSA_PKCS, 35, 0, 0, 0, 0,
	 STINT_OK, 35},
	{"rsa-pkcs DigestInfo sha256", T_RSA, CKM_RSA_PKCS, 51, 0, 0, 0, 0,
	 STINT_OK, 51},
	{"rsa-pkcs DigestInfo sha384", T_RSA, CKM_RSA_PKCS, 67, 0, 0, 0, 0,
	 STINT_OK, 67},
	{"rsa-pkcs DigestInfo sha512", T_RSA, CKM_RSA_PKCS, 83, 0, 0, 0, 0,
	 STINT_OK, 83},
	{"rsa-pkcs empty", T_RSA, CKM_RSA_PKCS, 0, 0, 0, 0, 0,
	 STINT_E_BAD_REQUEST, 0},
	{"rsa-pkcs over the max", T_RSA, CKM_RSA_PKCS, STINT_RAW_INPUT_MAX + 1,
	 0, 0, 0, 0, STINT_E_BAD_REQUEST, 0},
	/* Hash-and-sign PKCS#1: stintd prepends the DigestInfo prefix. */
	{"sha256-rsa-pkcs 32", T_RSA, CKM_SHA256_RSA_PKCS, 32, 0, 0, 0, 0,
	 STINT_OK, 19 + 32},
	{"sha384-rsa-pkcs 48", T_RSA, CKM_SHA384_RSA_PKCS, 48, 0, 0, 0, 0,
	 STINT_OK, 19 + 48},
	{"sha512-rsa-pkcs 64", T_RSA, CKM_SHA512_RSA_PKCS, 64, 0, 0, 0, 0,
	 STINT_OK, 19 + 64},
	{"sha256-rsa-pkcs whole DigestInfo", T_RSA, CKM_SHA256_RSA_PKCS, 51, 0,
	 0, 0, 0, STINT_E_BAD_REQUEST, 0},
	{"sha512-rsa-pkcs 32", T_RSA, CKM_SHA512_RSA_PKCS, 32, 0, 0, 0, 0,
	 STINT_E_BAD_REQUEST, 0},
	/* PSS: hash, MGF1 and salt as the shared rule allows. */
	{"pss sha256", T_RSA, CKM_RSA_PKCS_PSS, 32, 1, CKM_SHA256, SHA256_MGF,
	 32, STINT_OK, 32},
	{"pss sha384", T_RSA, CKM_RSA_PKCS_PSS, 48, 1, CKM_SHA384, SHA384_MGF,
	 48, STINT_OK, 48},
	{"pss sha512", T_RSA, CKM_RSA_PKCS_PSS, 64, 1, CKM_SHA512, SHA512_MGF,
	 64, STINT_OK, 64},
	{"pss salt 0", T_RSA, CKM_RSA_PKCS_PSS, 32, 1, CKM_SHA256, SHA256_MGF,
	 0, STINT_OK, 32},
	{"pss salt at the max", T_RSA, CKM_RSA_PKCS_PSS, 32, 1, CKM_SHA256,
	 SHA256_MGF, STINT_PSS_SALT_MAX, STINT_OK, 32},
	{"pss salt over the max", T_RSA, CKM_RSA_PKCS_PSS, 32, 1, CKM_SHA256,
	 SHA256_MGF, STINT_PSS_SALT_MAX + 1, STINT_E_BAD_REQUEST, 0},
	{"pss without parameters", T_RSA, CKM_RSA_PKCS_PSS, 32, 0, 0, 0, 0,
	 STINT_E_BAD_REQUEST, 0},
	{"pss sha1", T_RSA, CKM_RSA_PKCS_PSS, 20, 1, CKM_SHA_1, CKG_MGF1_SHA1,
	 20, STINT_E_BAD_REQUEST, 0},
	{"pss sha224", T_RSA, CKM_RSA_PKCS_PSS, 28, 1, CKM_SHA224,
	 CKG_MGF1_SHA224, 28, STINT_E_BAD_REQUEST, 0},
	{"pss sha256 with mgf1-sha1", T_RSA, CKM_RSA_PKCS_PSS, 32, 1,
	 CKM_SHA256, CKG_MGF1_SHA1, 32, STINT_E_BAD_REQUEST, 0},
	{"pss sha256 with mgf1-sha224", T_RSA, CKM_RSA_PKCS_PSS, 32, 1,
	 CKM_SHA256, CKG_MGF1_SHA224, 32, STINT_E_BAD_REQUEST, 0},
	{"pss sha256 with mgf1-sha384", T_RSA, CKM_RSA_PKCS_PSS, 32, 1,
	 CKM_SHA256, SHA384_MGF, 32, STINT_E_BAD_REQUEST, 0},
	{"pss unknown hash", T_RSA, CKM_RSA_PKCS_PSS, 32, 1, 0x9999, SHA256_MGF,
	 32, STINT_E_BAD_REQUEST, 0},
	{"pss input not the hash's digest", T_RSA, CKM_RSA_PKCS_PSS, 48, 1,
	 CKM_SHA256, SHA256_MGF, 32, STINT_E_BAD_REQUEST, 0},
	{"pss empty", T_RSA, CKM_RSA_PKCS_PSS, 0, 1, CKM_SHA256, SHA256_MGF, 32,
	 STINT_E_BAD_REQUEST, 0},
	{"sha256-rsa-pss", T_RSA, CKM_SHA256_RSA_PKCS_PSS, 32, 1, CKM_SHA256,
	 SHA256_MGF, 32, STINT_OK, 32},
	{"sha256-rsa-pss with hashAlg sha384", T_RSA, CKM_SHA256_RSA_PKCS_PSS,
	 48, 1, CKM_SHA384, SHA384_MGF, 48, STINT_E_BAD_REQUEST, 0},
	{"sha512-rsa-pss", T_RSA, CKM_SHA512_RSA_PKCS_PSS, 64, 1, CKM_SHA512,
	 SHA512_MGF, 64, STINT_OK, 64},
	{"sha256-rsa-pss without parameters", T_RSA, CKM_SHA256_RSA_PKCS_PSS,
	 32, 0, 0, 0, 0, STINT_E_BAD_REQUEST, 0},
	/* Mechanisms: unknown, or not for this key. */
	{"unknown mechanism", T_EC, 0x9999, 32, 0, 0, 0, 0, STINT_E_MECHANISM,
	 0},
	{"ecdsa on an RSA key", T_RSA, CKM_ECDSA, 32, 0, 0, 0, 0,
	 STINT_E_MECHANISM, 0},
	{"rsa-pkcs on an EC key", T_EC, CKM_RSA_PKCS, 51, 0, 0, 0, 0,
	 STINT_E_MECHANISM, 0},
};

/* For STINT_OK: the backend got the mechanism's raw op, the PSS
 * parameters as sent and the input (behind the DigestInfo prefix). */
static void
check_signed(const struct hfix *f, const struct raw_case *c,
	     const uint8_t *data)
{
	const struct stint_mech *m = stint_mech_find(c->mech);
	const uint8_t *prefix = NULL;
	size_t plen = 0;

	if (f->fb.sign_calls != 1)
		fail_msg("%s: %u backend signs", c->what, f->fb.sign_calls);
	if (f->fb.sign_raw != m->raw || f->fb.sign_in_len != c->signed_len)
		fail_msg("%s: raw 0x%lx, %zu bytes signed", c->what,
			 (unsigned long)f->fb.sign_raw, f->fb.sign_in_len);
	if (m->raw == CKM_RSA_PKCS && m->hash != 0) {
		prefix = stint_digestinfo_prefix(m->hash, &plen);
		assert_non_null(prefix);
		assert_memory_equal(f->fb.sign_in, prefix, plen);
	}
	assert_memory_equal(f->fb.sign_in + plen, data, c->len);
	assert_int_equal(f->fb.sign_has_pss, c->pss);
	if (c->pss) {
		assert_int_equal(f->fb.sign_pss.hashAlg, c->hash);
		assert_int_equal(f->fb.sign_pss.mgf, c->mgf);
		assert_int_equal(f->fb.sign_pss.sLen, c->salt);
	}
}

static void
raw_input_table(void **state)
{
	struct hfix *f = *state;
	uint8_t data[STINT_RAW_INPUT_MAX + 1];
	size_t i, j, allowed = 0;

	for (j = 0; j < sizeof(data); j++)
		data[j] = (uint8_t)(j * 7 + 3);
	for (i = 0; i < sizeof(raw_cases) / sizeof(raw_cases[0]); i++) {
		const struct raw_case *c = &raw_cases[i];
		uint64_t pss[3] = {c->hash, c->mgf, c->salt};
		uint64_t got;

		f->fb.sign_calls = 0;
		got = dispatch(f, STINTD_SOCK_AGENT, ALICE_UID,
			       sign_msg(c->task, c->mech, data, c->len,
					c->pss ? pss : NULL),
			       NULL);
		if (got != c->status)
			fail_msg("%s: status %llu, want %llu", c->what,
				 (unsigned long long)got,
				 (unsigned long long)c->status);
		if (c->status == STINT_OK) {
			check_signed(f, c, data);
			allowed++;
		} else if (f->fb.sign_calls != 0) {
			fail_msg("%s: refused, yet the backend signed",
				 c->what);
		}
	}
	assert_int_equal(count_records(f, "sign-allowed"), (int)allowed);
}

/* --- (5), (6) task end --- */

static void
task_end_destroys_once_then_refused(void **state)
{
	struct hfix *f = *state;
	struct stint_task t;

	assert_int_equal(sign(f, ALICE_UID, T_EC, CKM_ECDSA, 32), STINT_OK);
	assert_int_equal(task_end(f, T_EC), STINT_OK);
	assert_int_equal(f->fb.destroy_calls, 1);
	assert_string_equal(f->fb.destroy_key, T_EC);

	f->fb.sign_calls = 0;
	assert_int_equal(sign(f, ALICE_UID, T_EC, CKM_ECDSA, 32),
			 STINT_E_NOT_LIVE);
	assert_int_equal(f->fb.sign_calls, 0);

	/* Ending it again is not an error and destroys nothing more. */
	assert_int_equal(task_end(f, T_EC), STINT_OK);
	assert_int_equal(f->fb.destroy_calls, 1);
	assert_int_equal(stint_store_task_get(f->d.store, T_EC, &t),
			 STINT_STORE_OK);
	assert_int_equal(t.state, STINT_TASK_ENDED);
	assert_true(t.key_destroyed);
	stint_task_clear(&t);
	assert_int_equal(count_records(f, "task-end"), 1);
	assert_int_equal(count_records(f, "key-destroy"), 1);

	/* The other task of the same agent is untouched. */
	assert_int_equal(sign(f, ALICE_UID, T_RSA, CKM_SHA256_RSA_PKCS, 32),
			 STINT_OK);
	assert_int_equal(task_end(f, T_NONE), STINT_E_NOT_FOUND);
	assert_int_equal(f->fb.destroy_calls, 1);
}

/* The backend cannot destroy the key: the admin hears so, and the task is
 * refused all the same (fail closed); a later end retries the destroy. */
static void
task_end_destroy_fails_still_refused(void **state)
{
	struct hfix *f = *state;
	struct stint_task t;

	f->fb.fail_destroy = true;
	assert_int_equal(task_end(f, T_EC), STINT_E_BACKEND);
	assert_int_equal(f->fb.destroy_calls, 1);
	assert_int_equal(sign(f, ALICE_UID, T_EC, CKM_ECDSA, 32),
			 STINT_E_NOT_LIVE);
	assert_int_equal(sign(f, ALICE_UID, T_EC, CKM_ECDSA_SHA256, 32),
			 STINT_E_NOT_LIVE);
	assert_int_equal(f->fb.sign_calls, 0);
	assert_int_equal(stint_store_task_get(f->d.store, T_EC, &t),
			 STINT_STORE_OK);
	assert_int_equal(t.state, STINT_TASK_ENDED);
	assert_false(t.key_destroyed);
	stint_task_clear(&t);

	f->fb.fail_destroy = false;
	assert_int_equal(task_end(f, T_EC), STINT_OK);
	assert_int_equal(f->fb.destroy_calls, 2);
	assert_int_equal(count_records(f, "key-destroy"), 1);
	assert_int_equal(sign(f, ALICE_UID, T_EC, CKM_ECDSA, 32),
			 STINT_E_NOT_LIVE);
	assert_int_equal(f->fb.sign_calls, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			audit_write_fails_nothing_signed, setup, teardown),
		cmocka_unit_test_setup_teardown(sign_allowed_signs_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(backend_sign_error_reported,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			sign_refused_not_yours_or_not_live, setup, teardown),
		cmocka_unit_test_setup_teardown(wrong_socket_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(raw_input_table, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			task_end_destroys_once_then_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
			task_end_destroy_fails_still_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
