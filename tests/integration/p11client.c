/*
 * p11client: a small generic PKCS#11 client for the integration tests and
 * the benchmark. It dlopens any module and links nothing but libdl and
 * pthreads, so it runs anywhere (any uid, any build) and measures the
 * module, not itself. Run with --help for the options.
 */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "common/p11names.h"
#include "tests/integration/p11client.h"

#define DATA_MAX       (16u * 1024u * 1024u)
#define WAIT_DEFAULT_S 600

static const struct mech_name mechs[] = {
	{"ecdsa", CKM_ECDSA, 0, 0, 0, true},
	{"ecdsa-sha256", CKM_ECDSA_SHA256, 0, 0, 0, true},
	{"ecdsa-sha384", CKM_ECDSA_SHA384, 0, 0, 0, true},
	{"ecdsa-sha512", CKM_ECDSA_SHA512, 0, 0, 0, true},
	{"rsa-pkcs", CKM_RSA_PKCS, 0, 0, 0, false},
	{"sha256-rsa-pkcs", CKM_SHA256_RSA_PKCS, 0, 0, 0, false},
	{"sha384-rsa-pkcs", CKM_SHA384_RSA_PKCS, 0, 0, 0, false},
	{"sha512-rsa-pkcs", CKM_SHA512_RSA_PKCS, 0, 0, 0, false},
	/* Raw PSS signs a SHA-256 digest (32 bytes of --in). */
	{"rsa-pss", CKM_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32, false},
	{"sha256-rsa-pss", CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256,
	 32, false},
	{"sha384-rsa-pss", CKM_SHA384_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384,
	 48, false},
	{"sha512-rsa-pss", CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512,
	 64, false},
};

struct opts o;
CK_FUNCTION_LIST_PTR p11;
void *module_handle;
CK_BYTE *data;
size_t data_len;

/* Shared by the signing threads. */
static atomic_ulong issued, ok_total, after_marker_ok;
static atomic_bool stop;
static pthread_mutex_t result_lock = PTHREAD_MUTEX_INITIALIZER;
static CK_RV first_error = CKR_OK;
static CK_BYTE last_sig[SIG_MAX];
static CK_ULONG last_sig_len;
static struct timespec t_start;

const char *
ckr(CK_RV rv)
{
	static char buf[32];
	const char *name = stint_ckr_name(rv);

	if (name != NULL)
		return name;
	snprintf(buf, sizeof(buf), "CKR_0x%lx", (unsigned long)rv);
	return buf;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: p11client --module PATH [options]\n"
		"\n"
		"Selecting the token and key:\n"
		"  --token LABEL      token label (default: first slot with a "
		"token)\n"
		"  --pin-env VAR      log in with the PIN in $VAR (a module "
		"that needs it)\n"
		"  --label LABEL      private key by CKA_LABEL\n"
		"  --id ID            private key by CKA_ID (the string's "
		"bytes)\n"
		"                     (neither: the first private key)\n"
		"\n"
		"What to do (default: sign once):\n"
		"  --list             print the token and its objects "
		"(class, label, id)\n"
		"  --check            PKCS#11 semantics checks on the key "
		"(attributes,\n"
		"                     length queries, multi-part, writes "
		"refused, fork)\n"
		"  --mech NAME        ecdsa (default), ecdsa-sha256|384|512, "
		"rsa-pkcs,\n"
		"                     sha256|384|512-rsa-pkcs, rsa-pss "
		"(SHA-256 digest),\n"
		"                     sha256|384|512-rsa-pss\n"
		"  --in FILE          data to sign (default: 32 fixed bytes)\n"
		"  --out FILE         write the (last) signature\n"
		"  --der              write EC signatures DER-encoded "
		"(for openssl)\n"
		"  --pubkey FILE      write the key's CKA_PUBLIC_KEY_INFO "
		"(DER)\n"
		"  --count N          sign N times in all (default 1)\n"
		"  --seconds S        sign for S seconds; prints "
		"'signs=N seconds=S rate=R/s'\n"
		"  --threads T        T threads, each with its own session\n"
		"  --until-refused    sign until a signature fails "
		"(exit 0 if one did)\n"
		"  --after-file PATH  count successes whose request was sent "
		"after PATH\n"
		"                     existed: prints 'after_marker_ok=N'\n"
		"  --wait-file PATH   sign, wait until PATH exists, sign again "
		"with the same\n"
		"                     session and handle; prints "
		"'first=CKR_..' 'second=CKR_..'\n"
		"\n"
		"Signing modes print 'ok=N' (signatures received) and, on a "
		"failure,\n"
		"'error=CKR_...'. Exit 0 on success, 1 on failure, 2 on usage "
		"errors.\n");
}

static double
elapsed(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t_start.tv_sec) +
	       (double)(now.tv_nsec - t_start.tv_nsec) / 1e9;
}

static bool
exists(const char *path)
{
	return path != NULL && access(path, F_OK) == 0;
}

/* --- options -------------------------------------------------------- */

static int
parse_ulong(const char *s, unsigned long *v)
{
	char *end;

	errno = 0;
	*v = strtoul(s, &end, 10);
	return (errno != 0 || *s == '\0' || *end != '\0' || *s == '-') ? -1 : 0;
}

static int
parse_opts(int argc, char **argv)
{
	enum {
		O_MODULE = 256,
		O_TOKEN,
		O_PIN_ENV,
		O_ID,
		O_LABEL,
		O_MECH,
		O_IN,
		O_OUT,
		O_COUNT,
		O_SECONDS,
		O_THREADS,
		O_UNTIL,
		O_AFTER,
		O_WAIT,
		O_LIST,
		O_DER,
		O_PUBKEY,
		O_CHECK,
		O_HELP,
	};
	static const struct option longopts[] = {
		{"module", required_argument, NULL, O_MODULE},
		{"token", required_argument, NULL, O_TOKEN},
		{"pin-env", required_argument, NULL, O_PIN_ENV},
		{"id", required_argument, NULL, O_ID},
		{"label", required_argument, NULL, O_LABEL},
		{"mech", required_argument, NULL, O_MECH},
		{"in", required_argument, NULL, O_IN},
		{"out", required_argument, NULL, O_OUT},
		{"count", required_argument, NULL, O_COUNT},
		{"seconds", required_argument, NULL, O_SECONDS},
		{"threads", required_argument, NULL, O_THREADS},
		{"until-refused", no_argument, NULL, O_UNTIL},
		{"after-file", required_argument, NULL, O_AFTER},
		{"wait-file", required_argument, NULL, O_WAIT},
		{"list", no_argument, NULL, O_LIST},
		{"der", no_argument, NULL, O_DER},
		{"pubkey", required_argument, NULL, O_PUBKEY},
		{"check", no_argument, NULL, O_CHECK},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	unsigned long v;
	char *end;
	size_t i;
	int c;

	o.mech = &mechs[0];
	o.threads = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_MODULE:
			o.module = optarg;
			break;
		case O_TOKEN:
			o.token = optarg;
			break;
		case O_PIN_ENV:
			o.pin_env = optarg;
			break;
		case O_ID:
			o.id = optarg;
			break;
		case O_LABEL:
			o.label = optarg;
			break;
		case O_MECH:
			o.mech = NULL;
			for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
				if (!strcmp(optarg, mechs[i].name))
					o.mech = &mechs[i];
			if (o.mech == NULL) {
				fprintf(stderr,
					"p11client: unknown --mech "
					"'%s'\n",
					optarg);
				return -1;
			}
			break;
		case O_IN:
			o.in = optarg;
			break;
		case O_OUT:
			o.out = optarg;
			break;
		case O_COUNT:
			if (parse_ulong(optarg, &o.count) != 0 ||
			    o.count == 0) {
				fprintf(stderr, "p11client: bad --count\n");
				return -1;
			}
			break;
		case O_SECONDS:
			errno = 0;
			o.seconds = strtod(optarg, &end);
			if (errno || *end != '\0' || !(o.seconds > 0)) {
				fprintf(stderr, "p11client: bad --seconds\n");
				return -1;
			}
			break;
		case O_THREADS:
			if (parse_ulong(optarg, &v) != 0 || v == 0 || v > 256) {
				fprintf(stderr, "p11client: bad --threads "
						"(1..256)\n");
				return -1;
			}
			o.threads = (unsigned)v;
			break;
		case O_UNTIL:
			o.until_refused = true;
			break;
		case O_AFTER:
			o.after_file = optarg;
			break;
		case O_WAIT:
			o.wait_file = optarg;
			break;
		case O_LIST:
			o.list = true;
			break;
		case O_DER:
			o.der = true;
			break;
		case O_PUBKEY:
			o.pubkey = optarg;
			break;
		case O_CHECK:
			o.check = true;
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "p11client: unexpected argument '%s'\n",
			argv[optind]);
		return -1;
	}
	if (o.module == NULL) {
		fprintf(stderr, "p11client: --module is required\n");
		return -1;
	}
	if (o.id != NULL && o.label != NULL) {
		fprintf(stderr, "p11client: give --id or --label, not both\n");
		return -1;
	}
	if (o.wait_file != NULL && (o.threads > 1 || o.until_refused)) {
		fprintf(stderr, "p11client: --wait-file signs twice in one "
				"thread\n");
		return -1;
	}
	return 0;
}

/* --- module, token, key --------------------------------------------- */

static int
load_module(void)
{
	CK_C_GetFunctionList get;
	CK_C_INITIALIZE_ARGS args;
	void *h;
	CK_RV rv;

	if ((h = module_handle = dlopen(o.module, RTLD_NOW | RTLD_LOCAL)) ==
	    NULL) {
		fprintf(stderr, "p11client: %s\n", dlerror());
		return -1;
	}
	*(void **)&get = dlsym(h, "C_GetFunctionList");
	if (get == NULL) {
		fprintf(stderr, "p11client: %s has no C_GetFunctionList\n",
			o.module);
		return -1;
	}
	if ((rv = get(&p11)) != CKR_OK) {
		fprintf(stderr, "p11client: C_GetFunctionList: %s\n", ckr(rv));
		return -1;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	if ((rv = p11->C_Initialize(&args)) != CKR_OK) {
		fprintf(stderr, "p11client: C_Initialize: %s\n", ckr(rv));
		return -1;
	}
	return 0;
}

static void
trimmed(const CK_UTF8CHAR *field, size_t cap, char *out)
{
	while (cap > 0 && field[cap - 1] == ' ')
		cap--;
	memcpy(out, field, cap);
	out[cap] = '\0';
}

/* Slots with a token, in the module's order. */
static CK_RV
slots_with_token(CK_SLOT_ID **slots, CK_ULONG *n)
{
	CK_RV rv;

	*slots = NULL;
	if ((rv = p11->C_GetSlotList(CK_TRUE, NULL, n)) != CKR_OK)
		return rv;
	if ((*slots = calloc(*n + 1, sizeof(**slots))) == NULL)
		return CKR_HOST_MEMORY;
	return p11->C_GetSlotList(CK_TRUE, *slots, n);
}

static int
find_slot(CK_SLOT_ID *slot)
{
	CK_SLOT_ID *slots;
	CK_TOKEN_INFO ti;
	CK_ULONG n, i;
	char label[33];
	CK_RV rv;
	int r = -1;

	if ((rv = slots_with_token(&slots, &n)) != CKR_OK) {
		fprintf(stderr, "p11client: C_GetSlotList: %s\n", ckr(rv));
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((rv = p11->C_GetTokenInfo(slots[i], &ti)) != CKR_OK)
			continue;
		trimmed(ti.label, sizeof(ti.label), label);
		if (o.token == NULL || !strcmp(label, o.token)) {
			*slot = slots[i];
			r = 0;
			goto out;
		}
	}
	if (o.token != NULL)
		fprintf(stderr, "p11client: no token labelled '%s'\n", o.token);
	else
		fprintf(stderr, "p11client: no slot with a token\n");
out:
	free(slots);
	return r;
}

static CK_RV
open_session(CK_SLOT_ID slot, CK_SESSION_HANDLE *s)
{
	return p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, s);
}

static int
login(CK_SESSION_HANDLE s)
{
	const char *pin;
	CK_RV rv;

	if (o.pin_env == NULL)
		return 0;
	if ((pin = getenv(o.pin_env)) == NULL) {
		fprintf(stderr, "p11client: $%s is not set\n", o.pin_env);
		return -1;
	}
	rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		fprintf(stderr, "p11client: C_Login: %s\n", ckr(rv));
		return -1;
	}
	return 0;
}

static CK_RV
find_key(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *key)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)}, {0, NULL, 0}};
	CK_ULONG nt = 1, found = 0;
	CK_RV rv, rv2;

	if (o.label != NULL) {
		t[1].type = CKA_LABEL;
		t[1].pValue = (void *)o.label;
		t[1].ulValueLen = strlen(o.label);
		nt = 2;
	} else if (o.id != NULL) {
		t[1].type = CKA_ID;
		t[1].pValue = (void *)o.id;
		t[1].ulValueLen = strlen(o.id);
		nt = 2;
	}
	if ((rv = p11->C_FindObjectsInit(s, t, nt)) != CKR_OK)
		return rv;
	rv = p11->C_FindObjects(s, key, 1, &found);
	rv2 = p11->C_FindObjectsFinal(s);
	if (rv == CKR_OK)
		rv = rv2;
	if (rv == CKR_OK && found == 0)
		return CKR_KEY_HANDLE_INVALID;
	return rv;
}

/* --- signing -------------------------------------------------------- */

static CK_RV
sign_once(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_BYTE *sig,
	  CK_ULONG *sig_len)
{
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_MECHANISM m = {o.mech->mech, NULL, 0};
	CK_RV rv;

	if (o.mech->pss_hash != 0) {
		pss.hashAlg = o.mech->pss_hash;
		pss.mgf = o.mech->mgf;
		pss.sLen = o.mech->salt;
		m.pParameter = &pss;
		m.ulParameterLen = sizeof(pss);
	}
	if ((rv = p11->C_SignInit(s, &m, key)) != CKR_OK)
		return rv;
	*sig_len = SIG_MAX;
	return p11->C_Sign(s, data, data_len, sig, sig_len);
}

static void
record(CK_RV rv, const CK_BYTE *sig, CK_ULONG sig_len)
{
	pthread_mutex_lock(&result_lock);
	if (rv != CKR_OK && first_error == CKR_OK)
		first_error = rv;
	if (rv == CKR_OK && o.out != NULL) {
		memcpy(last_sig, sig, sig_len);
		last_sig_len = sig_len;
	}
	pthread_mutex_unlock(&result_lock);
}

struct worker {
	pthread_t thread;
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE key;
	CK_RV rv; /* setup failure */
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	CK_SESSION_HANDLE s;
	CK_BYTE sig[SIG_MAX];
	CK_ULONG sig_len;
	bool marker;
	CK_RV rv;

	if ((rv = open_session(w->slot, &s)) != CKR_OK) {
		w->rv = rv;
		record(rv, NULL, 0);
		atomic_store(&stop, true);
		return NULL;
	}
	while (!atomic_load(&stop)) {
		if (o.seconds > 0 && elapsed() >= o.seconds)
			break;
		if (o.count > 0 && atomic_fetch_add(&issued, 1) >= o.count)
			break;
		/* Checked before the request goes out: a success after this
		 * saw the marker was signed after the marker existed. */
		marker = exists(o.after_file);
		rv = sign_once(s, w->key, sig, &sig_len);
		if (rv != CKR_OK) {
			record(rv, NULL, 0);
			atomic_store(&stop, true);
			break;
		}
		atomic_fetch_add(&ok_total, 1);
		if (marker)
			atomic_fetch_add(&after_marker_ok, 1);
		record(rv, sig, sig_len);
	}
	p11->C_CloseSession(s);
	return NULL;
}

/* r || s to the DER SEQUENCE { INTEGER r, INTEGER s } openssl verifies. */
static size_t
der_int(const CK_BYTE *p, size_t n, CK_BYTE *out)
{
	size_t i = 0, len;

	while (i + 1 < n && p[i] == 0)
		i++;
	len = n - i + ((p[i] & 0x80) ? 1 : 0);
	out[0] = 0x02;
	out[1] = (CK_BYTE)len;
	if (p[i] & 0x80) {
		out[2] = 0;
		memcpy(out + 3, p + i, n - i);
	} else {
		memcpy(out + 2, p + i, n - i);
	}
	return 2 + len;
}

static size_t
ec_to_der(const CK_BYTE *sig, size_t len, CK_BYTE *out)
{
	CK_BYTE body[2 * 70];
	size_t n;

	if (len % 2 != 0 || len / 2 > 66)
		return 0;
	n = der_int(sig, len / 2, body);
	n += der_int(sig + len / 2, len / 2, body + n);
	out[0] = 0x30;
	if (n < 128) {
		out[1] = (CK_BYTE)n;
		memcpy(out + 2, body, n);
		return n + 2;
	}
	out[1] = 0x81;
	out[2] = (CK_BYTE)n;
	memcpy(out + 3, body, n);
	return n + 3;
}

static int
write_file(const char *path, const CK_BYTE *p, size_t n)
{
	FILE *f;
	int r = 0;

	if ((f = fopen(path, "wb")) == NULL) {
		fprintf(stderr, "p11client: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fwrite(p, 1, n, f) != n)
		r = -1;
	if (fclose(f) != 0)
		r = -1;
	if (r != 0)
		fprintf(stderr, "p11client: writing %s failed\n", path);
	return r;
}

static int
write_signature(const CK_BYTE *sig, CK_ULONG len)
{
	CK_BYTE der[SIG_MAX + 8];
	size_t n;

	if (o.out == NULL)
		return 0;
	if (o.der && o.mech->ec) {
		if ((n = ec_to_der(sig, len, der)) == 0) {
			fprintf(stderr,
				"p11client: odd EC signature length "
				"%lu\n",
				(unsigned long)len);
			return -1;
		}
		return write_file(o.out, der, n);
	}
	return write_file(o.out, sig, len);
}

static int
write_pubkey(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	CK_ATTRIBUTE a = {CKA_PUBLIC_KEY_INFO, NULL, 0};
	CK_BYTE *buf;
	CK_RV rv;
	int r;

	if (o.pubkey == NULL)
		return 0;
	if ((rv = p11->C_GetAttributeValue(s, key, &a, 1)) != CKR_OK ||
	    a.ulValueLen == 0 || a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
		fprintf(stderr, "p11client: CKA_PUBLIC_KEY_INFO: %s\n",
			ckr(rv));
		return -1;
	}
	if ((buf = malloc(a.ulValueLen)) == NULL)
		return -1;
	a.pValue = buf;
	if ((rv = p11->C_GetAttributeValue(s, key, &a, 1)) != CKR_OK) {
		fprintf(stderr, "p11client: CKA_PUBLIC_KEY_INFO: %s\n",
			ckr(rv));
		free(buf);
		return -1;
	}
	r = write_file(o.pubkey, buf, a.ulValueLen);
	free(buf);
	return r;
}

static int
read_data(void)
{
	FILE *f;
	size_t n;

	if ((data = malloc(DATA_MAX)) == NULL)
		return -1;
	if (o.in == NULL) {
		/* 32 bytes: a digest-sized input fits every mechanism. */
		for (n = 0; n < 32; n++)
			data[n] = (CK_BYTE)(0xa5 ^ n);
		data_len = 32;
		return 0;
	}
	if ((f = fopen(o.in, "rb")) == NULL) {
		fprintf(stderr, "p11client: %s: %s\n", o.in, strerror(errno));
		return -1;
	}
	data_len = fread(data, 1, DATA_MAX, f);
	n = ferror(f) ? 1 : 0;
	fclose(f);
	if (n) {
		fprintf(stderr, "p11client: reading %s failed\n", o.in);
		return -1;
	}
	return 0;
}

/* --wait-file: a session and key handle held across a change. */
static int
run_wait(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key)
{
	CK_BYTE sig[SIG_MAX];
	CK_ULONG sig_len;
	double limit = o.seconds > 0 ? o.seconds : WAIT_DEFAULT_S;
	struct timespec pause = {0, 50 * 1000 * 1000};
	CK_RV rv;

	rv = sign_once(s, key, sig, &sig_len);
	printf("first=%s\n", ckr(rv));
	fflush(stdout);
	if (rv != CKR_OK)
		return 1;
	if (write_signature(sig, sig_len) != 0)
		return 1;
	while (!exists(o.wait_file)) {
		if (elapsed() > limit) {
			fprintf(stderr,
				"p11client: %s did not appear within "
				"%.0f s\n",
				o.wait_file, limit);
			return 1;
		}
		nanosleep(&pause, NULL);
	}
	rv = sign_once(s, key, sig, &sig_len);
	printf("second=%s\n", ckr(rv));
	return 0;
}

static int
run_sign(CK_SLOT_ID slot, CK_OBJECT_HANDLE key)
{
	struct worker *w;
	unsigned i;
	double secs;
	unsigned long ok;
	int rc;

	if (o.count == 0 && o.seconds == 0 && !o.until_refused)
		o.count = 1;
	if ((w = calloc(o.threads, sizeof(*w))) == NULL)
		return 1;
	for (i = 0; i < o.threads; i++) {
		w[i].slot = slot;
		w[i].key = key;
		if (pthread_create(&w[i].thread, NULL, worker_run, &w[i]) !=
		    0) {
			fprintf(stderr, "p11client: pthread_create failed\n");
			atomic_store(&stop, true);
			o.threads = i;
			break;
		}
	}
	for (i = 0; i < o.threads; i++)
		pthread_join(w[i].thread, NULL);
	free(w);
	secs = elapsed();
	ok = atomic_load(&ok_total);
	printf("ok=%lu\n", ok);
	if (o.after_file != NULL)
		printf("after_marker_ok=%lu\n", atomic_load(&after_marker_ok));
	if (o.seconds > 0)
		printf("signs=%lu seconds=%.2f rate=%.0f/s\n", ok, secs,
		       secs > 0 ? (double)ok / secs : 0.0);
	if (first_error != CKR_OK)
		printf("error=%s\n", ckr(first_error));
	if (o.until_refused)
		rc = first_error != CKR_OK ? 0 : 1;
	else
		rc = first_error == CKR_OK ? 0 : 1;
	if (ok > 0 && write_signature(last_sig, last_sig_len) != 0)
		rc = 1;
	return rc;
}

/* --- listing -------------------------------------------------------- */

static const char *
class_name(CK_OBJECT_CLASS c)
{
	switch (c) {
	case CKO_PRIVATE_KEY:
		return "private-key";
	case CKO_PUBLIC_KEY:
		return "public-key";
	case CKO_CERTIFICATE:
		return "certificate";
	case CKO_DATA:
		return "data";
	case CKO_SECRET_KEY:
		return "secret-key";
	default:
		return "other";
	}
}

static void
print_bytes(const char *name, const CK_BYTE *p, CK_ULONG n)
{
	CK_ULONG i;
	bool text = n > 0;

	for (i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			text = false;
	printf(" %s=", name);
	if (text)
		printf("%.*s", (int)n, (const char *)p);
	else
		for (i = 0; i < n; i++)
			printf("%02x", p[i]);
}

static void
list_object(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
	CK_OBJECT_CLASS cls = 0;
	CK_BYTE label[256], id[256];
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_LABEL, label, sizeof(label)},
		{CKA_ID, id, sizeof(id)},
	};
	CK_RV rv;

	rv = p11->C_GetAttributeValue(s, h, t, 3);
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID &&
	    rv != CKR_BUFFER_TOO_SMALL) {
		printf("  object %lu: %s\n", (unsigned long)h, ckr(rv));
		return;
	}
	printf("  object class=%s", class_name(cls));
	if (t[1].ulValueLen != CK_UNAVAILABLE_INFORMATION)
		print_bytes("label", label, t[1].ulValueLen);
	if (t[2].ulValueLen != CK_UNAVAILABLE_INFORMATION)
		print_bytes("id", id, t[2].ulValueLen);
	printf("\n");
}

static int
run_list(void)
{
	CK_SLOT_ID *slots;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE objs[64];
	CK_TOKEN_INFO ti;
	CK_ULONG n, i, found, j;
	char label[33], manu[33], model[17];
	CK_RV rv;
	int rc = 0;

	if ((rv = slots_with_token(&slots, &n)) != CKR_OK) {
		fprintf(stderr, "p11client: C_GetSlotList: %s\n", ckr(rv));
		free(slots);
		return 1;
	}
	printf("slots with a token: %lu\n", (unsigned long)n);
	for (i = 0; i < n; i++) {
		if ((rv = p11->C_GetTokenInfo(slots[i], &ti)) != CKR_OK) {
			printf("slot %lu: C_GetTokenInfo: %s\n",
			       (unsigned long)slots[i], ckr(rv));
			rc = 1;
			continue;
		}
		trimmed(ti.label, sizeof(ti.label), label);
		trimmed(ti.manufacturerID, sizeof(ti.manufacturerID), manu);
		trimmed(ti.model, sizeof(ti.model), model);
		if (o.token != NULL && strcmp(label, o.token))
			continue;
		printf("slot %lu: token \"%s\" manufacturer \"%s\" model "
		       "\"%s\"\n",
		       (unsigned long)slots[i], label, manu, model);
		if ((rv = open_session(slots[i], &s)) != CKR_OK) {
			printf("  C_OpenSession: %s\n", ckr(rv));
			rc = 1;
			continue;
		}
		if (login(s) != 0 ||
		    (rv = p11->C_FindObjectsInit(s, NULL, 0)) != CKR_OK) {
			printf("  C_FindObjectsInit: %s\n", ckr(rv));
			p11->C_CloseSession(s);
			rc = 1;
			continue;
		}
		while (p11->C_FindObjects(s, objs, 64, &found) == CKR_OK &&
		       found > 0)
			for (j = 0; j < found; j++)
				list_object(s, objs[j]);
		p11->C_FindObjectsFinal(s);
		p11->C_CloseSession(s);
	}
	free(slots);
	return rc;
}

int
main(int argc, char **argv)
{
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE key;
	CK_RV rv;
	int rc = 1;

	if (parse_opts(argc, argv) != 0) {
		usage(stderr);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t_start);
	if (read_data() != 0 || load_module() != 0)
		return 1;
	if (o.list) {
		rc = run_list();
		goto out;
	}
	if (find_slot(&slot) != 0)
		goto out;
	if ((rv = open_session(slot, &s)) != CKR_OK) {
		fprintf(stderr, "p11client: C_OpenSession: %s\n", ckr(rv));
		printf("error=%s\n", ckr(rv));
		goto out;
	}
	if (login(s) != 0)
		goto out;
	if ((rv = find_key(s, &key)) != CKR_OK) {
		fprintf(stderr, "p11client: no such private key (%s)\n",
			ckr(rv));
		printf("error=%s\n", ckr(rv));
		goto out;
	}
	if (write_pubkey(s, key) != 0)
		goto out;
	/* The timer starts when signing does. */
	clock_gettime(CLOCK_MONOTONIC, &t_start);
	if (o.check)
		rc = run_check(slot, s, key);
	else if (o.wait_file != NULL)
		rc = run_wait(s, key);
	else
		rc = run_sign(slot, key);
out:
	if (s != CK_INVALID_HANDLE)
		p11->C_CloseSession(s);
	if (p11 != NULL)
		p11->C_Finalize(NULL);
	free(data);
	return rc;
}
