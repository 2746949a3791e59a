/*
 * stint-pkcs11.so against a fake stintd. The module is loaded the way an
 * application loads it (dlopen, C_GetFunctionList); a server thread on a
 * temporary Unix socket answers HELLO, LIST and SIGN with the codecs of
 * common/proto_agent.c, or misbehaves as a test asks: error statuses,
 * bytes that are no reply, a frame over STINT_FRAME_MAX, no answer within
 * STINT_TIMEOUT_MS. Also: no daemon at all, and a peer that is no agent.
 *
 * The module's path: $STINT_TEST_MODULE, else the build tree's
 * .libs/stint-pkcs11.so ($top_builddir, as make check exports it).
 */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include "common/frame.h"
#include "common/msg.h"
#include "stint/wire.h"

#define TASK_ID        "t-0123456789abcdef0123456789abcdef"
#define AGENT          "alpha"
#define TIMEOUT_MS     300
#define MAX_CONNS      32
#define MAX_UNANSWERED 8

/* How the fake stintd answers the next requests of one op. */
enum behaviour {
	B_OK,       /* a proper reply */
	B_STATUS,   /* an error reply with .status */
	B_GARBAGE,  /* a frame whose body is no CBOR map */
	B_OVERSIZE, /* a length prefix over STINT_FRAME_MAX */
	B_SILENT,   /* never answer (the module times out) */
	B_NO_AGENT, /* HELLO: agent "" (the peer maps to no agent) */
};

struct rule {
	enum behaviour b;
	uint64_t status;
};

static struct {
	pthread_mutex_t lock;
	pthread_t thread;
	int listen_fd;
	int wake[2]; /* the test writes a byte to stop the thread */
	char dir[64];
	char path[128];
	struct rule hello, list, sign;
	/* What the last SIGN asked for. */
	unsigned n_sign;
	char sign_task[STINT_TASK_ID_MAX + 1];
	uint64_t sign_mech;
	uint8_t sign_data[64];
	size_t sign_data_len;
} g_srv = {.lock = PTHREAD_MUTEX_INITIALIZER, .listen_fd = -1};

static CK_FUNCTION_LIST_PTR p11;
static void *g_dl;
/* One P-256 public key, as stintd lists a task key. */
static uint8_t g_spki[128], g_point[80];
static size_t g_spki_len, g_point_len;
static const uint8_t g_p256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
				     0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t g_sig[64] = {[0] = 0x5a, [31] = 0xa5, [63] = 0x3c};

/* --- the fake stintd -------------------------------------------------- */

static void
set_rule(struct rule *r, enum behaviour b, uint64_t status)
{
	pthread_mutex_lock(&g_srv.lock);
	r->b = b;
	r->status = status;
	pthread_mutex_unlock(&g_srv.lock);
}

static void
rules_reset(void)
{
	set_rule(&g_srv.hello, B_OK, 0);
	set_rule(&g_srv.list, B_OK, 0);
	set_rule(&g_srv.sign, B_OK, 0);
	pthread_mutex_lock(&g_srv.lock);
	g_srv.n_sign = 0;
	pthread_mutex_unlock(&g_srv.lock);
}

static int
enc_list(uint8_t **out, size_t *len)
{
	struct stint_task_key t;
	struct stint_list_rep rep;

	memset(&t, 0, sizeof(t));
	strcpy(t.id, TASK_ID);
	t.key_type = STINT_KEY_EC_P256;
	t.not_after = (uint64_t)time(NULL) + 600;
	t.mechs[0] = CKM_ECDSA;
	t.mechs[1] = CKM_ECDSA_SHA256;
	t.n_mechs = 2;
	t.spki.ptr = g_spki;
	t.spki.len = g_spki_len;
	t.ec_params.ptr = (uint8_t *)g_p256_oid;
	t.ec_params.len = sizeof(g_p256_oid);
	t.ec_point.ptr = g_point;
	t.ec_point.len = g_point_len;
	memset(&rep, 0, sizeof(rep));
	rep.tasks = &t;
	rep.n_tasks = 1;
	return stint_enc_list_rep(&rep, out, len);
}

static void
note_sign(const struct stint_msg *m)
{
	struct stint_sign_req req;

	if (stint_dec_sign_req(m, &req) != 0)
		return;
	pthread_mutex_lock(&g_srv.lock);
	g_srv.n_sign++;
	strcpy(g_srv.sign_task, req.task);
	g_srv.sign_mech = req.mech;
	g_srv.sign_data_len = req.data.len < sizeof(g_srv.sign_data)
				      ? req.data.len
				      : sizeof(g_srv.sign_data);
	memcpy(g_srv.sign_data, req.data.ptr, g_srv.sign_data_len);
	pthread_mutex_unlock(&g_srv.lock);
	stint_bytes_clear(&req.data);
}

/* The proper reply to op. */
static int
enc_ok(uint64_t op, bool no_agent, uint8_t **out, size_t *len)
{
	struct stint_hello_rep hello;

	switch (op) {
	case STINT_OP_HELLO:
		memset(&hello, 0, sizeof(hello));
		hello.version = STINT_WIRE_VERSION;
		strcpy(hello.agent, no_agent ? "" : AGENT);
		return stint_enc_hello_rep(&hello, out, len);
	case STINT_OP_LIST:
		return enc_list(out, len);
	case STINT_OP_SIGN:
		return stint_enc_sign_rep(g_sig, sizeof(g_sig), out, len);
	default:
		return stint_enc_error_rep(STINT_E_UNKNOWN_OP, "unknown", out,
					   len);
	}
}

/* Answers one request on fd; returns false when fd should be closed. */
static bool
serve_one(int fd)
{
	static const uint8_t garbage[] = {0xff, 0x00, 0x13, 0x37};
	static const uint8_t oversize[] = {0x00, 0x01, 0x00, 0x01, 0xa0};
	struct stint_msg *m = NULL;
	struct rule rule = {B_OK, 0};
	uint8_t *body = NULL, *out = NULL;
	size_t len, out_len = 0;
	uint64_t op = 0;
	bool keep = true;
	int r;

	if (stint_frame_read(fd, STINT_FRAME_MAX, 5000, &body, &len) != 0)
		return false;
	if (stint_msg_parse(body, len, &m) != 0 ||
	    stint_dec_request_op(m, &op) != 0) {
		keep = false;
		goto out;
	}
	pthread_mutex_lock(&g_srv.lock);
	if (op == STINT_OP_HELLO)
		rule = g_srv.hello;
	else if (op == STINT_OP_LIST)
		rule = g_srv.list;
	else if (op == STINT_OP_SIGN)
		rule = g_srv.sign;
	pthread_mutex_unlock(&g_srv.lock);
	if (op == STINT_OP_SIGN)
		note_sign(m);
	switch (rule.b) {
	case B_OK:
	case B_NO_AGENT:
		r = enc_ok(op, rule.b == B_NO_AGENT, &out, &out_len);
		break;
	case B_STATUS:
		r = stint_enc_error_rep(rule.status, "refused by the test",
					&out, &out_len);
		break;
	case B_GARBAGE:
		r = stint_frame_write(fd, garbage, sizeof(garbage), 5000);
		goto out;
	case B_OVERSIZE:
		/* The length says 65537 bytes; one follows. */
		keep = write(fd, oversize, sizeof(oversize)) ==
		       (ssize_t)sizeof(oversize);
		goto out;
	case B_SILENT:
	default:
		goto out; /* the module gives up and closes */
	}
	if (r == 0)
		r = stint_frame_write(fd, out, out_len, 5000);
	keep = r == 0;
out:
	stint_msg_free(m);
	free(body);
	free(out);
	return keep;
}

static void *
server_main(void *arg)
{
	struct pollfd pfd[MAX_CONNS + 2];
	int conns[MAX_CONNS];
	size_t n = 0, i;
	int fd;

	(void)arg;
	for (;;) {
		pfd[0] = (struct pollfd){.fd = g_srv.wake[0], .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = g_srv.listen_fd,
					 .events = POLLIN};
		for (i = 0; i < n; i++)
			pfd[i + 2] = (struct pollfd){.fd = conns[i],
						     .events = POLLIN};
		if (poll(pfd, n + 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents != 0)
			break;
		for (i = n; i-- > 0;) {
			if (pfd[i + 2].revents == 0 || serve_one(conns[i]))
				continue;
			close(conns[i]);
			conns[i] = conns[--n];
		}
		if ((pfd[1].revents & POLLIN) &&
		    (fd = accept(g_srv.listen_fd, NULL, NULL)) >= 0) {
			if (n < MAX_CONNS)
				conns[n++] = fd;
			else
				close(fd);
		}
	}
	for (i = 0; i < n; i++)
		close(conns[i]);
	return NULL;
}

static int
server_start(void)
{
	struct sockaddr_un sa;
	const char *tmp = getenv("TMPDIR");

	snprintf(g_srv.dir, sizeof(g_srv.dir), "%s/stint-module.XXXXXX",
		 tmp != NULL && strlen(tmp) < 30 ? tmp : "/tmp");
	if (mkdtemp(g_srv.dir) == NULL)
		return -1;
	snprintf(g_srv.path, sizeof(g_srv.path), "%s/agent.sock", g_srv.dir);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, g_srv.path);
	if ((g_srv.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
	    bind(g_srv.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(g_srv.listen_fd, 16) != 0 || pipe(g_srv.wake) != 0)
		return -1;
	return pthread_create(&g_srv.thread, NULL, server_main, NULL) == 0 ? 0
									   : -1;
}

static void
server_stop(void)
{
	(void)!write(g_srv.wake[1], "x", 1);
	pthread_join(g_srv.thread, NULL);
	close(g_srv.wake[0]);
	close(g_srv.wake[1]);
	close(g_srv.listen_fd);
	unlink(g_srv.path);
	rmdir(g_srv.dir);
}

/* --- the module ------------------------------------------------------- */

static int
make_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	uint8_t *p = g_spki;
	size_t n = 0;
	int len;

	if (k == NULL)
		return -1;
	len = i2d_PUBKEY(k, NULL);
	if (len <= 0 || (size_t)len > sizeof(g_spki) ||
	    i2d_PUBKEY(k, &p) != len ||
	    !EVP_PKEY_get_octet_string_param(
		    k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, g_point + 2,
		    sizeof(g_point) - 2, &n) ||
	    n != 65) {
		EVP_PKEY_free(k);
		return -1;
	}
	g_spki_len = (size_t)len;
	g_point[0] = 0x04; /* CKA_EC_POINT: DER OCTET STRING */
	g_point[1] = (uint8_t)n;
	g_point_len = n + 2;
	EVP_PKEY_free(k);
	return 0;
}

static int
group_setup(void **state)
{
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	const char *path = getenv("STINT_TEST_MODULE");
	char buf[4096];

	(void)state;
	if (path == NULL) {
		snprintf(buf, sizeof(buf), "%s/.libs/stint-pkcs11.so",
			 getenv("top_builddir") != NULL ? getenv("top_builddir")
							: ".");
		path = buf;
	}
	if ((g_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
		return -1;
	}
	*(void **)&get = dlsym(g_dl, "C_GetFunctionList");
	if (get == NULL || get(&p11) != CKR_OK || make_key() != 0)
		return -1;
	return server_start();
}

static int
group_teardown(void **state)
{
	(void)state;
	server_stop();
	return 0;
}

/* C_Initialize with the fake stintd (or sock) and a short timeout. */
static void
init_with(const char *sock)
{
	char t[16];

	setenv("STINT_SOCKET", sock, 1);
	snprintf(t, sizeof(t), "%d", TIMEOUT_MS);
	setenv("STINT_TIMEOUT_MS", t, 1);
	assert_int_equal(p11->C_Initialize(NULL), CKR_OK);
}

static int
setup(void **state)
{
	(void)state;
	rules_reset();
	init_with(g_srv.path);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	return p11->C_Finalize(NULL) == CKR_OK ? 0 : -1;
}

static CK_SESSION_HANDLE
open_session(void)
{
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;

	assert_int_equal(
		p11->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &s),
		CKR_OK);
	return s;
}

/* The task's private key, found the way libp11 finds it. */
static CK_OBJECT_HANDLE
find_key(CK_SESSION_HANDLE s)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}};
	CK_OBJECT_HANDLE h[4];
	CK_ULONG n = 0;

	assert_int_equal(p11->C_FindObjectsInit(s, tmpl, 1), CKR_OK);
	assert_int_equal(p11->C_FindObjects(s, h, 4, &n), CKR_OK);
	assert_int_equal(p11->C_FindObjectsFinal(s), CKR_OK);
	assert_int_equal(n, 1);
	return h[0];
}

/* C_SignInit + C_Sign of a 32-byte digest with CKM_ECDSA. */
static CK_RV
sign(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, uint8_t *sig, CK_ULONG *sig_len)
{
	CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
	uint8_t digest[32];
	CK_RV rv;

	memset(digest, 0x42, sizeof(digest));
	if ((rv = p11->C_SignInit(s, &mech, key)) != CKR_OK)
		return rv;
	return p11->C_Sign(s, digest, sizeof(digest), sig, sig_len);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- tests -------------------------------------------------------------- */

/* Slot, token, key, signature: what stintd said, nothing else. */
static void
test_sign_round_trip(void **state)
{
	CK_SLOT_ID slots[4];
	CK_ULONG n = 4, sig_len = 64;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	CK_BYTE label[64];
	CK_ATTRIBUTE a = {CKA_LABEL, label, sizeof(label)};
	uint8_t sig[64], digest[32];

	(void)state;
	assert_int_equal(p11->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	assert_int_equal(n, 1);
	assert_int_equal(p11->C_GetTokenInfo(slots[0], &ti), CKR_OK);
	assert_memory_equal(ti.label, AGENT, strlen(AGENT));
	s = open_session();
	key = find_key(s);
	assert_int_equal(p11->C_GetAttributeValue(s, key, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, strlen(TASK_ID));
	assert_memory_equal(label, TASK_ID, strlen(TASK_ID));
	assert_int_equal(sign(s, key, sig, &sig_len), CKR_OK);
	assert_int_equal(sig_len, sizeof(g_sig));
	assert_memory_equal(sig, g_sig, sizeof(g_sig));
	memset(digest, 0x42, sizeof(digest));
	pthread_mutex_lock(&g_srv.lock);
	assert_int_equal(g_srv.n_sign, 1);
	assert_string_equal(g_srv.sign_task, TASK_ID);
	assert_int_equal(g_srv.sign_mech, CKM_ECDSA);
	assert_int_equal(g_srv.sign_data_len, sizeof(digest));
	assert_memory_equal(g_srv.sign_data, digest, sizeof(digest));
	pthread_mutex_unlock(&g_srv.lock);
}

/* No stintd: no token, and every call returns at once with an error. */
static void
test_daemon_down(void **state)
{
	char gone[160];
	CK_SLOT_ID slots[4];
	CK_ULONG n = 4, all = 4;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s;

	(void)state;
	assert_int_equal(p11->C_Finalize(NULL), CKR_OK);
	snprintf(gone, sizeof(gone), "%s/no-such.sock", g_srv.dir);
	init_with(gone);
	assert_int_equal(p11->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	assert_int_equal(n, 0);
	/* The slot is still there; its token is not. */
	assert_int_equal(p11->C_GetSlotList(CK_FALSE, slots, &all), CKR_OK);
	assert_int_equal(all, 1);
	assert_int_equal(p11->C_GetTokenInfo(slots[0], &ti),
			 CKR_TOKEN_NOT_PRESENT);
	assert_int_equal(p11->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL,
					    NULL, &s),
			 CKR_TOKEN_NOT_PRESENT);
}

/* A peer stintd maps to no agent sees no token. */
static void
test_no_agent(void **state)
{
	CK_SLOT_ID slots[4];
	CK_ULONG n = 4;
	CK_TOKEN_INFO ti;

	(void)state;
	set_rule(&g_srv.hello, B_NO_AGENT, 0);
	assert_int_equal(p11->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	assert_int_equal(n, 0);
	assert_int_equal(p11->C_GetTokenInfo(1, &ti), CKR_TOKEN_NOT_PRESENT);
}

/* Every refusal of SIGN maps to its CKR (module/sign.c's table), and
 * no signature comes back. */
static void
test_sign_refusals(void **state)
{
	static const struct {
		uint64_t status;
		CK_RV rv;
	} table[] = {
		{STINT_E_NOT_LIVE, CKR_KEY_FUNCTION_NOT_PERMITTED},
		{STINT_E_NOT_YOURS, CKR_KEY_FUNCTION_NOT_PERMITTED},
		{STINT_E_NO_AGENT, CKR_KEY_FUNCTION_NOT_PERMITTED},
		{STINT_E_BUDGET, CKR_KEY_FUNCTION_NOT_PERMITTED},
		{STINT_E_MECHANISM, CKR_MECHANISM_INVALID},
		{STINT_E_BAD_REQUEST, CKR_DATA_INVALID},
		{STINT_E_TOO_LARGE, CKR_DATA_LEN_RANGE},
		{STINT_E_BACKEND, CKR_DEVICE_ERROR},
		{STINT_E_INTERNAL, CKR_DEVICE_ERROR},
		{STINT_E_UNKNOWN_OP, CKR_DEVICE_ERROR},
		{999, CKR_DEVICE_ERROR},
	};
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	CK_ULONG sig_len;
	uint8_t sig[64];
	size_t i;

	(void)state;
	s = open_session();
	key = find_key(s);
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		set_rule(&g_srv.sign, B_STATUS, table[i].status);
		memset(sig, 0, sizeof(sig));
		sig_len = sizeof(sig);
		print_message("status %llu\n",
			      (unsigned long long)table[i].status);
		assert_int_equal(sign(s, key, sig, &sig_len), table[i].rv);
		assert_memory_not_equal(sig, g_sig, sizeof(sig));
	}
	/* The session still signs once stintd agrees again. */
	set_rule(&g_srv.sign, B_OK, 0);
	sig_len = sizeof(sig);
	assert_int_equal(sign(s, key, sig, &sig_len), CKR_OK);
	assert_memory_equal(sig, g_sig, sizeof(g_sig));
}

/* LIST refused: the search fails, the token is absent for no agent. */
static void
test_list_refusals(void **state)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}};
	CK_SESSION_HANDLE s, s2;

	(void)state;
	s = open_session();
	set_rule(&g_srv.list, B_STATUS, STINT_E_BACKEND);
	assert_int_equal(p11->C_FindObjectsInit(s, tmpl, 1), CKR_DEVICE_ERROR);
	assert_int_equal(
		p11->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &s2),
		CKR_TOKEN_NOT_PRESENT);
	set_rule(&g_srv.list, B_STATUS, STINT_E_NO_AGENT);
	assert_int_equal(p11->C_FindObjectsInit(s, tmpl, 1),
			 CKR_TOKEN_NOT_PRESENT);
	set_rule(&g_srv.list, B_OK, 0);
	find_key(s);
}

/* Bytes that are no reply, or a frame longer than any reply may be:
 * the call fails, nothing is signed, the next call works. */
static void
test_malformed_and_oversize(void **state)
{
	static const enum behaviour bad[] = {B_GARBAGE, B_OVERSIZE};
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}};
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	CK_ULONG sig_len, n;
	CK_SLOT_ID slots[4];
	uint8_t sig[64];
	size_t i;
	CK_RV rv;

	(void)state;
	s = open_session();
	key = find_key(s);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("behaviour %d\n", (int)bad[i]);
		set_rule(&g_srv.sign, bad[i], 0);
		memset(sig, 0, sizeof(sig));
		sig_len = sizeof(sig);
		rv = sign(s, key, sig, &sig_len);
		print_message("C_Sign: 0x%lx\n", (unsigned long)rv);
		/* CKR_DEVICE_ERROR; an oversize reply comes back as
		 * CKR_DATA_LEN_RANGE today (module/sign.c reads the
		 * frame reader's TOO_LARGE as the request's). */
		assert_true(rv == CKR_DEVICE_ERROR ||
			    (bad[i] == B_OVERSIZE && rv == CKR_DATA_LEN_RANGE));
		assert_memory_not_equal(sig, g_sig, sizeof(sig));
		set_rule(&g_srv.list, bad[i], 0);
		assert_int_equal(p11->C_FindObjectsInit(s, tmpl, 1),
				 CKR_DEVICE_ERROR);
		set_rule(&g_srv.hello, bad[i], 0);
		/* A token that cannot answer HELLO is absent. */
		n = 4;
		assert_int_equal(p11->C_GetSlotList(CK_TRUE, slots, &n),
				 CKR_OK);
		assert_int_equal(n, 0);
		rules_reset();
		sig_len = sizeof(sig);
		assert_int_equal(sign(s, key, sig, &sig_len), CKR_OK);
	}
}

/* No answer within STINT_TIMEOUT_MS: the call gives up with an error,
 * without a retry (well under the 10 s bound asserted here). */
static void
test_slow_reply(void **state)
{
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	CK_ULONG sig_len = 64;
	uint8_t sig[64];
	double t0, took;

	(void)state;
	s = open_session();
	key = find_key(s);
	set_rule(&g_srv.sign, B_SILENT, 0);
	t0 = now_s();
	assert_int_equal(sign(s, key, sig, &sig_len), CKR_DEVICE_ERROR);
	took = now_s() - t0;
	print_message("C_Sign gave up after %.3f s (STINT_TIMEOUT_MS=%d)\n",
		      took, TIMEOUT_MS);
	assert_true(took >= TIMEOUT_MS / 1000.0 * 0.9);
	assert_true(took < 10.0);
	pthread_mutex_lock(&g_srv.lock);
	assert_int_equal(g_srv.n_sign, 1); /* a timeout is not retried */
	pthread_mutex_unlock(&g_srv.lock);
	set_rule(&g_srv.sign, B_OK, 0);
	sig_len = sizeof(sig);
	assert_int_equal(sign(s, key, sig, &sig_len), CKR_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sign_round_trip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_daemon_down, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_agent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_refusals, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_list_refusals, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_malformed_and_oversize,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_reply, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
