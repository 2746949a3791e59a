/*
 * TPM 2.0 key-store backend, through tpm2-tss ESAPI.
 *
 * There is one TPM and, on many hosts, no resource manager: the TPM holds
 * three transient objects and a few sessions. So one mutex serialises every
 * TPM command, the storage primary is the only object kept loaded, and
 * every other object or session is flushed on every path before the mutex
 * is released.
 *
 * Task keys are never persisted in the TPM: their public area and encrypted
 * private part live in <state_dir>/tpm/<key_id>.key and are loaded per
 * signature. Each key's authPolicy is
 *   PolicyCounterTimer(TPMS_TIME_INFO.clock < deadline)
 *   AND PolicyNV(kill-switch counter == its value at creation),
 * and the key has no userWithAuth, so the TPM itself refuses it after the
 * deadline or after the kill switch, whoever asks. See docs/tpm.md.
 */

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
#include <tss2/tss2_tctildr.h>

#include "attest/backend.h"
#include "attest/backend_tpm.h"
#include "attest/config.h"
#include "attest/evidence.h"
#include "attest/tpm_evidence.h"
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

static const char keyfile_magic[8] = {'S', 'T', 'I', 'N', 'T', 'K', 'E', 'Y'};

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
				   0xce, 0x3d, 0x03, 0x01, 0x07};

struct tpm_backend {
	struct stint_backend base; /* first: the ops see a stint_backend */
	pthread_mutex_t lock;      /* one TPM, one command at a time */
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR primary;
	ESYS_TR nv;
	uint32_t nv_index;
	char dir[PATH_MAX]; /* <state_dir>/tpm */
	uint32_t last_reset, min_reset;
	bool have_ek_cert;
};

/* The full keyfile, with its kind (task key or long-lived host key). */
struct keyfile {
	struct stint_tpm_keyfile k;
	uint8_t kind;
};

static void tpm_close(struct stint_backend *base);

/* --- small helpers ------------------------------------------------------- */

static void
tss_err(char *err, size_t errlen, const char *what, TSS2_RC rc)
{
	snprintf(err, errlen, "%s: %s (0x%x)", what, Tss2_RC_Decode(rc),
		 (unsigned)rc);
}

static void
flush(struct tpm_backend *b, ESYS_TR *tr)
{
	TSS2_RC rc;

	if (*tr == ESYS_TR_NONE)
		return;
	rc = Esys_FlushContext(b->esys, *tr);
	if (rc != TSS2_RC_SUCCESS)
		log_warn("TPM: flushing a transient handle failed: %s",
			 Tss2_RC_Decode(rc));
	*tr = ESYS_TR_NONE;
}

static bool
key_id_ok(const char *id)
{
	size_t n = strlen(id), i;

	if (n == 0 || n > KEY_ID_MAX || id[0] == '.')
		return false;
	for (i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return false;
	}
	return true;
}

static int
path_for(const struct tpm_backend *b, const char *prefix, const char *id,
	 char *path, size_t cap)
{
	int n = snprintf(path, cap, "%s/%s%s.key", b->dir, prefix, id);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Writes via a temporary file and rename, mode 0600, fsync'ed. */
static int
write_file(const char *path, const uint8_t *buf, size_t len, char *err,
	   size_t errlen)
{
	char tmp[PATH_MAX + 8];
	size_t off = 0;
	ssize_t n;
	int fd, r = -1;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", tmp,
			 strerror(errno));
		return -1;
	}
	while (off < len) {
		n = write(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "cannot write %s: %s", tmp,
				 strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot save %s: %s", path,
			 strerror(errno));
		goto out;
	}
	r = 0;
out:
	close(fd);
	if (r != 0)
		(void)unlink(tmp);
	return r;
}

/* Reads a whole file of at most max bytes. 1 when it does not exist. */
static int
read_file(const char *path, uint8_t **out, size_t *len, size_t max, char *err,
	  size_t errlen)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, r = -1;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT)
		return 1;
	if (fd < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > max) {
		snprintf(err, errlen,
			 "cannot read %s: not a regular file of at most %zu "
			 "bytes",
			 path, max);
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "cannot read %s: %s", path,
				 n < 0 ? strerror(errno) : "short read");
			goto out;
		}
		got += (size_t)n;
	}
	*out = buf;
	*len = got;
	buf = NULL;
	r = 0;
out:
	free(buf);
	close(fd);
	return r;
}

/* --- key files ------------------------------------------------------------ */

static int
keyfile_encode(const struct keyfile *f, uint8_t *buf, size_t cap, size_t *len)
{
	const struct stint_tpm_keyfile *k = &f->k;
	size_t off = sizeof(keyfile_magic);

	if (cap < off)
		return -1;
	memcpy(buf, keyfile_magic, off);
	if (Tss2_MU_UINT16_Marshal(STINT_TPM_KEYFILE_VERSION, buf, cap, &off) ||
	    Tss2_MU_UINT32_Marshal(k->key_type, buf, cap, &off) ||
	    Tss2_MU_UINT64_Marshal(k->deadline, buf, cap, &off) ||
	    Tss2_MU_UINT64_Marshal(k->counter, buf, cap, &off) ||
	    Tss2_MU_UINT32_Marshal(k->nv_index, buf, cap, &off) ||
	    Tss2_MU_UINT64_Marshal(k->clock, buf, cap, &off) ||
	    Tss2_MU_UINT32_Marshal(k->reset_count, buf, cap, &off) ||
	    Tss2_MU_UINT32_Marshal(k->restart_count, buf, cap, &off) ||
	    Tss2_MU_UINT8_Marshal(k->safe, buf, cap, &off) ||
	    Tss2_MU_UINT8_Marshal(f->kind, buf, cap, &off) ||
	    Tss2_MU_UINT64_Marshal((uint64_t)k->not_after, buf, cap, &off) ||
	    Tss2_MU_TPM2B_PUBLIC_Marshal(&k->pub, buf, cap, &off) ||
	    Tss2_MU_TPM2B_PRIVATE_Marshal(&k->priv, buf, cap, &off))
		return -1;
	*len = off;
	return 0;
}

static int
keyfile_decode(const uint8_t *buf, size_t len, struct keyfile *f)
{
	struct stint_tpm_keyfile *k = &f->k;
	size_t off = sizeof(keyfile_magic);
	uint16_t version;
	uint64_t not_after;

	memset(f, 0, sizeof(*f));
	if (len < off || memcmp(buf, keyfile_magic, off) != 0)
		return -1;
	if (Tss2_MU_UINT16_Unmarshal(buf, len, &off, &version) ||
	    version != STINT_TPM_KEYFILE_VERSION ||
	    Tss2_MU_UINT32_Unmarshal(buf, len, &off, &k->key_type) ||
	    Tss2_MU_UINT64_Unmarshal(buf, len, &off, &k->deadline) ||
	    Tss2_MU_UINT64_Unmarshal(buf, len, &off, &k->counter) ||
	    Tss2_MU_UINT32_Unmarshal(buf, len, &off, &k->nv_index) ||
	    Tss2_MU_UINT64_Unmarshal(buf, len, &off, &k->clock) ||
	    Tss2_MU_UINT32_Unmarshal(buf, len, &off, &k->reset_count) ||
	    Tss2_MU_UINT32_Unmarshal(buf, len, &off, &k->restart_count) ||
	    Tss2_MU_UINT8_Unmarshal(buf, len, &off, &k->safe) ||
	    Tss2_MU_UINT8_Unmarshal(buf, len, &off, &f->kind) ||
	    Tss2_MU_UINT64_Unmarshal(buf, len, &off, &not_after) ||
	    Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off, &k->pub) ||
	    Tss2_MU_TPM2B_PRIVATE_Unmarshal(buf, len, &off, &k->priv) ||
	    off != len)
		return -1;
	k->not_after = (int64_t)not_after;
	return 0;
}

int
stint_tpm_keyfile_parse(const uint8_t *buf, size_t len,
			struct stint_tpm_keyfile *kf)
{
	struct keyfile f;

	if (keyfile_decode(buf, len, &f) != 0)
		return -1;
	*kf = f.k;
	return 0;
}

static int
keyfile_load(const char *path, struct keyfile *f, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int r;

	r = read_file(path, &buf, &len, KEYFILE_MAX, err, errlen);
	if (r != 0)
		return r;
	r = keyfile_decode(buf, len, f);
	free(buf);
	if (r != 0)
		snprintf(err, errlen, "%s is not a Stint TPM key file", path);
	return r;
}

int
stint_tpm_keyfile_read(const char *path, struct stint_tpm_keyfile *kf,
		       char *err, size_t errlen)
{
	struct keyfile f;
	int r = keyfile_load(path, &f, err, errlen);

	if (r == 1)
		snprintf(err, errlen, "%s does not exist", path);
	if (r != 0)
		return -1;
	*kf = f.k;
	return 0;
}

static int
keyfile_save(const char *path, const struct keyfile *f, char *err,
	     size_t errlen)
{
	uint8_t buf[KEYFILE_MAX];
	size_t len;

	if (keyfile_encode(f, buf, sizeof(buf), &len) != 0) {
		snprintf(err, errlen, "cannot encode the key file");
		return -1;
	}
	return write_file(path, buf, len, err, errlen);
}

/* --- templates ------------------------------------------------------------ */

/* The TCG-style ECC P-256 storage key: deterministic for one owner seed,
 * so it is recreated at each start instead of being persisted. */
static void
template_primary(TPM2B_PUBLIC *t)
{
	memset(t, 0, sizeof(*t));
	t->publicArea.type = TPM2_ALG_ECC;
	t->publicArea.nameAlg = TPM2_ALG_SHA256;
	t->publicArea.objectAttributes =
		TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
		TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
		TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	t->publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	t->publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128;
	t->publicArea.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	t->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	t->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	t->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

static void
template_ecc_sign(TPM2B_PUBLIC *t, TPMA_OBJECT attrs)
{
	memset(t, 0, sizeof(*t));
	t->publicArea.type = TPM2_ALG_ECC;
	t->publicArea.nameAlg = TPM2_ALG_SHA256;
	t->publicArea.objectAttributes = attrs;
	t->publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	t->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	t->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	t->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

static void
template_rsa_sign(TPM2B_PUBLIC *t, TPMA_OBJECT attrs)
{
	memset(t, 0, sizeof(*t));
	t->publicArea.type = TPM2_ALG_RSA;
	t->publicArea.nameAlg = TPM2_ALG_SHA256;
	t->publicArea.objectAttributes = attrs;
	t->publicArea.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
	t->publicArea.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	t->publicArea.parameters.rsaDetail.keyBits = 2048;
	t->publicArea.parameters.rsaDetail.exponent = 0; /* 65537 */
}

/* The host attestation key: a restricted ECDSA P-256 signing key, the only
 * kind TPM2_Certify accepts as signer. */
static void
template_ak(TPM2B_PUBLIC *t)
{
	template_ecc_sign(t, TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
				     TPMA_OBJECT_SENSITIVEDATAORIGIN |
				     TPMA_OBJECT_USERWITHAUTH |
				     TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED |
				     TPMA_OBJECT_SIGN_ENCRYPT);
	t->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	t->publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg =
		TPM2_ALG_SHA256;
}

/* --- TPM plumbing ----------------------------------------------------------
 */

static int
create_primary(struct tpm_backend *b, char *err, size_t errlen)
{
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_PUBLIC tmpl;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION pcrs;
	TSS2_RC rc;

	memset(&sens, 0, sizeof(sens));
	memset(&outside, 0, sizeof(outside));
	memset(&pcrs, 0, sizeof(pcrs));
	template_primary(&tmpl);
	rc = Esys_CreatePrimary(b->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
				ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
				&outside, &pcrs, &b->primary, NULL, NULL, NULL,
				NULL);
	if (rc != TSS2_RC_SUCCESS) {
		tss_err(err, errlen,
			"cannot create the storage primary key under the owner "
			"hierarchy (is the owner auth empty?)",
			rc);
		b->primary = ESYS_TR_NONE;
		return -1;
	}
	return 0;
}

/* Creates a key under the primary; the caller saves the blobs. */
static int
create_key(struct tpm_backend *b, const TPM2B_PUBLIC *tmpl, TPM2B_PUBLIC *pub,
	   TPM2B_PRIVATE *priv, char *err, size_t errlen)
{
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION pcrs;
	TPM2B_PRIVATE *opriv = NULL;
	TPM2B_PUBLIC *opub = NULL;
	TSS2_RC rc;

	memset(&sens, 0, sizeof(sens));
	memset(&outside, 0, sizeof(outside));
	memset(&pcrs, 0, sizeof(pcrs));
	rc = Esys_Create(b->esys, b->primary, ESYS_TR_PASSWORD, ESYS_TR_NONE,
			 ESYS_TR_NONE, &sens, tmpl, &outside, &pcrs, &opriv,
			 &opub, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		tss_err(err, errlen, "TPM2_Create failed", rc);
		return -1;
	}
	*pub = *opub;
	*priv = *opriv;
	Esys_Free(opub);
	Esys_Free(opriv);
	return 0;
}

static int
load_key(struct tpm_backend *b, const TPM2B_PUBLIC *pub,
	 const TPM2B_PRIVATE *priv, ESYS_TR *out, char *err, size_t errlen)
{
	TSS2_RC rc;

	rc = Esys_Load(b->esys, b->primary, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		       ESYS_TR_NONE, priv, pub, out);
	if (rc != TSS2_RC_SUCCESS) {
		*out = ESYS_TR_NONE;
		tss_err(err, errlen, "cannot load the key into the TPM", rc);
		return -1;
	}
	return 0;
}

static int
read_clock(struct tpm_backend *b, TPMS_TIME_INFO *ti, char *err, size_t errlen)
{
	TPMS_TIME_INFO *t = NULL;
	TSS2_RC rc;

	rc = Esys_ReadClock(b->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
			    &t);
	if (rc != TSS2_RC_SUCCESS) {
		tss_err(err, errlen, "cannot read the TPM clock", rc);
		return -1;
	}
	*ti = *t;
	Esys_Free(t);
	return 0;
}

/* Refreshes the ESYS_TR of the counter from the TPM, so its Name (which
 * includes TPMA_NV_WRITTEN) is the TPM's. */
static int
nv_refresh(struct tpm_backend *b, char *err, size_t errlen)
{
	TSS2_RC rc;

	if (b->nv != ESYS_TR_NONE)
		(void)Esys_TR_Close(b->esys, &b->nv);
	b->nv = ESYS_TR_NONE;
	rc = Esys_TR_FromTPMPublic(b->esys, b->nv_index, ESYS_TR_NONE,
				   ESYS_TR_NONE, ESYS_TR_NONE, &b->nv);
	if (rc != TSS2_RC_SUCCESS) {
		b->nv = ESYS_TR_NONE;
		tss_err(err, errlen, "cannot find the kill-switch NV index",
			rc);
		return -1;
	}
	return 0;
}

static int
nv_read_counter(struct tpm_backend *b, uint64_t *value, char *err,
		size_t errlen)
{
	TPM2B_MAX_NV_BUFFER *data = NULL;
	size_t off = 0;
	TSS2_RC rc;
	int r = -1;

	rc = Esys_NV_Read(b->esys, ESYS_TR_RH_OWNER, b->nv, ESYS_TR_PASSWORD,
			  ESYS_TR_NONE, ESYS_TR_NONE, 8, 0, &data);
	if (rc != TSS2_RC_SUCCESS) {
		tss_err(err, errlen, "cannot read the kill-switch counter", rc);
		return -1;
	}
	if (data->size == 8 &&
	    Tss2_MU_UINT64_Unmarshal(data->buffer, 8, &off, value) ==
		    TSS2_RC_SUCCESS)
		r = 0;
	else
		snprintf(err, errlen, "kill-switch counter is not 8 bytes");
	Esys_Free(data);
	return r;
}

static int
nv_name(struct tpm_backend *b, TPM2B_NAME *name, char *err, size_t errlen)
{
	TPM2B_NAME *n = NULL;
	TSS2_RC rc;

	rc = Esys_TR_GetName(b->esys, b->nv, &n);
	if (rc != TSS2_RC_SUCCESS) {
		tss_err(err, errlen, "cannot get the NV index Name", rc);
		return -1;
	}
	*name = *n;
	Esys_Free(n);
	return 0;
}

static int
nv_auth_read(struct tpm_backend *b, TPM2B_AUTH *auth, char *err, size_t errlen)
{
	char path[PATH_MAX + 16];
	uint8_t *buf;
	size_t len;
	int r;

	snprintf(path, sizeof(path), "%s/nv.auth", b->dir);
	r = read_file(path, &buf, &len, NV_AUTH_LEN, err, errlen);
	if (r == 1)
		snprintf(err, errlen, "%s is missing", path);
	if (r != 0)
		return -1;
	if (len != NV_AUTH_LEN) {
		OPENSSL_cleanse(buf, len);
		free(buf);
		snprintf(err, errlen, "%s is not %d bytes", path, NV_AUTH_LEN);
		return -1;
	}
	auth->size = NV_AUTH_LEN;
	memcpy(auth->buffer, buf, NV_AUTH_LEN);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return 0;
}

/* Increments the counter with the index's own auth, then forgets it. */
static int
nv_increment(struct tpm_backend *b, char *err, size_t errlen)
{
	TPM2B_AUTH auth, empty;
	TSS2_RC rc;
	int r = -1;

	memset(&auth, 0, sizeof(auth));
	memset(&empty, 0, sizeof(empty));
	if (nv_auth_read(b, &auth, err, errlen) != 0)
		return -1;
	rc = Esys_TR_SetAuth(b->esys, b->nv, &auth);
	if (rc == TSS2_RC_SUCCESS)
		rc = Esys_NV_Increment(b->esys, b->nv, b->nv, ESYS_TR_PASSWORD,
				       ESYS_TR_NONE, ESYS_TR_NONE);
	(void)Esys_TR_SetAuth(b->esys, b->nv, &empty);
	OPENSSL_cleanse(&auth, sizeof(auth));
	if (rc != TSS2_RC_SUCCESS) {
		tss_err(err, errlen, "cannot increment the kill-switch counter",
			rc);
		goto out;
	}
	r = nv_refresh(b, err, errlen);
out:
	return r;
}

/*
 * The kill-switch counter: TPM_NT_COUNTER, written only with its own auth
 * (random, in nv.auth), read with owner authorisation (empty on hosts where
 * stintd can create keys at all), NO_DA so nobody can lock stintd out by
 * guessing. Defined and incremented once on first start.
 */
static int
nv_setup(struct tpm_backend *b, char *err, size_t errlen)
{
	char path[PATH_MAX + 16];
	TPM2B_NV_PUBLIC pubinfo;
	TPM2B_AUTH auth;
	struct stat st;
	bool have_auth, have_index;
	uint8_t *buf = NULL;
	size_t len;
	TSS2_RC rc;
	int r = -1;

	snprintf(path, sizeof(path), "%s/nv.auth", b->dir);
	have_auth = stat(path, &st) == 0;
	rc = Esys_TR_FromTPMPublic(b->esys, b->nv_index, ESYS_TR_NONE,
				   ESYS_TR_NONE, ESYS_TR_NONE, &b->nv);
	have_index = rc == TSS2_RC_SUCCESS;
	if (!have_index)
		b->nv = ESYS_TR_NONE;
	if (have_index && have_auth)
		return 0;
	if (have_index) {
		snprintf(
			err, errlen,
			"NV index 0x%08x exists but %s is missing: another "
			"install owns it; set [backend] kill_switch_index to a "
			"free index, or remove the old one (tpm2_nvundefine "
			"0x%08x) if it is yours",
			b->nv_index, path, b->nv_index);
		return -1;
	}
	if (have_auth) {
		/* Never silently replace: keys bound to the old counter
		 * cannot be used anyway, and the operator should know. */
		snprintf(err, errlen,
			 "the kill-switch NV index 0x%08x is gone from the TPM "
			 "but %s exists (TPM cleared?): remove %s and the task "
			 "key files in %s to start afresh",
			 b->nv_index, path, path, b->dir);
		return -1;
	}

	memset(&auth, 0, sizeof(auth));
	auth.size = NV_AUTH_LEN;
	if (RAND_bytes(auth.buffer, NV_AUTH_LEN) != 1) {
		snprintf(err, errlen, "RAND_bytes failed");
		return -1;
	}
	memset(&pubinfo, 0, sizeof(pubinfo));
	pubinfo.nvPublic.nvIndex = b->nv_index;
	pubinfo.nvPublic.nameAlg = TPM2_ALG_SHA256;
	pubinfo.nvPublic.attributes =
		(TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) | TPMA_NV_AUTHWRITE |
		TPMA_NV_AUTHREAD | TPMA_NV_OWNERREAD | TPMA_NV_NO_DA;
	pubinfo.nvPublic.dataSize = 8;
	/* The auth goes to disk first: a counter whose auth is lost could
	 * never be incremented again. */
	if (write_file(path, auth.buffer, NV_AUTH_LEN, err, errlen) != 0)
		goto out;
	rc = Esys_NV_DefineSpace(b->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
				 ESYS_TR_NONE, ESYS_TR_NONE, &auth, &pubinfo,
				 &b->nv);
	if (rc != TSS2_RC_SUCCESS) {
		b->nv = ESYS_TR_NONE;
		(void)unlink(path);
		tss_err(err, errlen, "cannot define the kill-switch NV counter",
			rc);
		goto out;
	}
	/* A counter reads only once written. */
	if (nv_increment(b, err, errlen) != 0)
		goto out;
	log_info("TPM: kill-switch counter defined at NV index 0x%08x",
		 b->nv_index);
	r = 0;
out:
	OPENSSL_cleanse(&auth, sizeof(auth));
	free(buf);
	(void)len;
	return r;
}

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
static int
clock_state_load(struct tpm_backend *b)
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

static int
clock_observe(struct tpm_backend *b, const TPMS_TIME_INFO *ti, bool first,
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
	return write_file(path, (const uint8_t *)text, strlen(text), err,
			  errlen);
}

/* --- attestation key --------------------------------------------------------
 */

static int
ak_setup(struct tpm_backend *b, char *err, size_t errlen)
{
	char path[PATH_MAX + 16];
	struct keyfile f;
	TPM2B_PUBLIC tmpl;
	char *pem = NULL;
	int r;

	snprintf(path, sizeof(path), "%s/ak.blob", b->dir);
	r = keyfile_load(path, &f, err, errlen);
	if (r < 0)
		return -1;
	if (r == 1) {
		memset(&f, 0, sizeof(f));
		f.kind = KIND_HOST;
		f.k.key_type = STINT_KEY_EC_P256;
		template_ak(&tmpl);
		if (create_key(b, &tmpl, &f.k.pub, &f.k.priv, err, errlen) !=
			    0 ||
		    keyfile_save(path, &f, err, errlen) != 0)
			return -1;
		log_info("TPM: host attestation key created");
	}
	if (stint_backend_tpm_ak_pem(&b->base, &pem, err, errlen) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/ak.pub.pem", b->dir);
	r = write_file(path, (const uint8_t *)pem, strlen(pem), err, errlen);
	free(pem);
	return r;
}

/* Reads the EK certificate from its TCG NV index, when there is one. */
static void
ek_cert_record(struct tpm_backend *b)
{
	static const uint32_t idx[] = {EK_CERT_ECC, EK_CERT_RSA};
	char path[PATH_MAX + 16], err[256];
	TPM2B_NV_PUBLIC *pubinfo = NULL;
	TPM2B_MAX_NV_BUFFER *chunk = NULL;
	uint8_t cert[EK_CERT_MAX];
	ESYS_TR tr = ESYS_TR_NONE;
	uint16_t size, off, n;
	size_t i;
	TSS2_RC rc;

	for (i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
		rc = Esys_TR_FromTPMPublic(b->esys, idx[i], ESYS_TR_NONE,
					   ESYS_TR_NONE, ESYS_TR_NONE, &tr);
		if (rc != TSS2_RC_SUCCESS)
			continue;
		rc = Esys_NV_ReadPublic(b->esys, tr, ESYS_TR_NONE, ESYS_TR_NONE,
					ESYS_TR_NONE, &pubinfo, NULL);
		if (rc != TSS2_RC_SUCCESS)
			goto next;
		size = pubinfo->nvPublic.dataSize;
		Esys_Free(pubinfo);
		pubinfo = NULL;
		if (size == 0 || size > sizeof(cert))
			goto next;
		for (off = 0; off < size; off += n) {
			n = size - off > 512 ? 512 : size - off;
			rc = Esys_NV_Read(b->esys, tr, tr, ESYS_TR_PASSWORD,
					  ESYS_TR_NONE, ESYS_TR_NONE, n, off,
					  &chunk);
			if (rc != TSS2_RC_SUCCESS || chunk->size != n)
				break;
			memcpy(cert + off, chunk->buffer, n);
			Esys_Free(chunk);
			chunk = NULL;
		}
		Esys_Free(chunk);
		chunk = NULL;
		if (off < size)
			goto next;
		snprintf(path, sizeof(path), "%s/ek.cert", b->dir);
		if (write_file(path, cert, size, err, sizeof(err)) == 0) {
			b->have_ek_cert = true;
			log_info("TPM: EK certificate recorded from NV 0x%08x",
				 idx[i]);
		}
		(void)Esys_TR_Close(b->esys, &tr);
		return;
	next:
		(void)Esys_TR_Close(b->esys, &tr);
		tr = ESYS_TR_NONE;
	}
}

/* --- SPKI -------------------------------------------------------------------
 */

static int
bytes_dup(struct stint_bytes *dst, const uint8_t *p, size_t n)
{
	if ((dst->ptr = malloc(n > 0 ? n : 1)) == NULL)
		return -1;
	if (n > 0)
		memcpy(dst->ptr, p, n);
	dst->len = n;
	return 0;
}

static int
pubkey_fill(const TPM2B_PUBLIC *tp, struct stint_pubkey *pub, char *err,
	    size_t errlen)
{
	static const uint8_t e65537[] = {0x01, 0x00, 0x01};
	const TPMT_PUBLIC *p = &tp->publicArea;
	unsigned char *der = NULL;
	EVP_PKEY *pkey = NULL;
	uint8_t point[2 + 65];
	int len, r = -1;

	memset(pub, 0, sizeof(*pub));
	if (stint_tpm_pkey_from_public(p, &pkey) != 0 ||
	    (len = i2d_PUBKEY(pkey, &der)) <= 0 ||
	    bytes_dup(&pub->spki, der, (size_t)len) != 0)
		goto fail;
	if (p->type == TPM2_ALG_ECC) {
		point[0] = 0x04; /* DER OCTET STRING of 65 bytes */
		point[1] = 65;
		point[2] = 0x04;
		memset(point + 3, 0, 64);
		memcpy(point + 3 + 32 - p->unique.ecc.x.size,
		       p->unique.ecc.x.buffer, p->unique.ecc.x.size);
		memcpy(point + 3 + 64 - p->unique.ecc.y.size,
		       p->unique.ecc.y.buffer, p->unique.ecc.y.size);
		if (bytes_dup(&pub->ec_params, oid_p256, sizeof(oid_p256)) ||
		    bytes_dup(&pub->ec_point, point, sizeof(point)))
			goto fail;
	} else {
		if (bytes_dup(&pub->modulus, p->unique.rsa.buffer,
			      p->unique.rsa.size) ||
		    bytes_dup(&pub->exponent, e65537, sizeof(e65537)))
			goto fail;
	}
	r = 0;
	goto out;
fail:
	snprintf(err, errlen, "the TPM returned an unusable public key");
	stint_pubkey_free(pub);
out:
	OPENSSL_free(der);
	EVP_PKEY_free(pkey);
	return r;
}

/* fixedTPM and fixedParent: the private part never leaves this TPM except
 * wrapped by its parent; sensitiveDataOrigin: the TPM made it. In PKCS#11
 * terms that is local, sensitive, never extractable; sign is the only
 * usage attribute set. */
static void
facts_fill(const TPM2B_PUBLIC *tp, struct stint_key_facts *facts)
{
	TPMA_OBJECT a = tp->publicArea.objectAttributes;

	memset(facts, 0, sizeof(*facts));
	facts->local = (a & TPMA_OBJECT_SENSITIVEDATAORIGIN) != 0;
	facts->never_extractable = facts->sensitive =
		(a & TPMA_OBJECT_FIXEDTPM) && (a & TPMA_OBJECT_FIXEDPARENT);
	facts->extractable = !facts->never_extractable;
	facts->sign = (a & TPMA_OBJECT_SIGN_ENCRYPT) != 0;
	facts->decrypt = (a & TPMA_OBJECT_DECRYPT) != 0;
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
enum policy_step { STEP_NONE, STEP_CLOCK, STEP_NV };

static TSS2_RC
policy_run(struct tpm_backend *b, ESYS_TR session, uint64_t deadline,
	   uint64_t counter, enum policy_step *failed)
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

static TSS2_RC
session_start(struct tpm_backend *b, TPM2_SE type, ESYS_TR *session)
{
	TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};

	return Esys_StartAuthSession(
		b->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
		ESYS_TR_NONE, NULL, type, &sym, TPM2_ALG_SHA256, session);
}

/*
 * The policy digest from a trial session, checked against the one computed
 * in software (the verifier's way): a mismatch means one of the two is
 * wrong and no key is made.
 */
static int
policy_digest(struct tpm_backend *b, uint64_t deadline, uint64_t counter,
	      TPM2B_DIGEST *out, char *err, size_t errlen)
{
	ESYS_TR session = ESYS_TR_NONE;
	TPM2B_DIGEST *d = NULL;
	enum policy_step step = STEP_NONE;
	TPM2B_NAME name;
	uint8_t soft[32];
	TSS2_RC rc;
	int r = -1;

	if (nv_name(b, &name, err, errlen) != 0 ||
	    stint_tpm_policy_digest(deadline, counter, name.name, name.size,
				    soft) != 0) {
		if (err[0] == '\0')
			snprintf(err, errlen, "cannot compute the policy");
		return -1;
	}
	if ((rc = session_start(b, TPM2_SE_TRIAL, &session)) !=
	    TSS2_RC_SUCCESS) {
		session = ESYS_TR_NONE;
		tss_err(err, errlen, "cannot start a trial policy session", rc);
		goto out;
	}
	if ((rc = policy_run(b, session, deadline, counter, &step)) !=
		    TSS2_RC_SUCCESS ||
	    (rc = Esys_PolicyGetDigest(b->esys, session, ESYS_TR_NONE,
				       ESYS_TR_NONE, ESYS_TR_NONE, &d)) !=
		    TSS2_RC_SUCCESS) {
		tss_err(err, errlen, "trial policy session failed", rc);
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
	flush(b, &session);
	return r;
}

/* --- operations
 * ----------------------------------------------------------------- */

static int
key_type_template(uint32_t key_type, TPMA_OBJECT attrs, TPM2B_PUBLIC *t)
{
	switch (key_type) {
	case STINT_KEY_EC_P256:
		template_ecc_sign(t, attrs);
		return 0;
	case STINT_KEY_RSA_2048:
		template_rsa_sign(t, attrs);
		return 0;
	default:
		return -1;
	}
}

static int
tpm_generate(struct stint_backend *base, uint32_t key_type, const char *key_id,
	     int64_t not_after, struct stint_pubkey *pub,
	     struct stint_key_facts *facts, char *err, size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	char path[PATH_MAX + 160];
	TPMS_TIME_INFO ti;
	struct keyfile f;
	struct stat st;
	time_t now;
	uint64_t ttl_ms;
	int r = -1;

	memset(pub, 0, sizeof(*pub));
	memset(facts, 0, sizeof(*facts));
	err[0] = '\0';
	memset(&f, 0, sizeof(f));
	/* Sign only, and only through the policy: no userWithAuth. */
	if (key_type_template(key_type,
			      TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
				      TPMA_OBJECT_SENSITIVEDATAORIGIN |
				      TPMA_OBJECT_SIGN_ENCRYPT,
			      &f.k.pub) != 0) {
		snprintf(err, errlen,
			 "key type %u is not available on the TPM backend "
			 "(use ec-p256 or rsa-2048)",
			 (unsigned)key_type);
		return -1;
	}
	if (!key_id_ok(key_id) ||
	    path_for(b, "", key_id, path, sizeof(path)) != 0) {
		snprintf(err, errlen,
			 "key id must be 1 to %d bytes of [A-Za-z0-9._-]",
			 KEY_ID_MAX);
		return -1;
	}
	if (stat(path, &st) == 0) {
		snprintf(err, errlen, "a TPM key with id '%s' already exists",
			 key_id);
		return -1;
	}
	now = time(NULL);
	if (not_after <= (int64_t)now) {
		snprintf(err, errlen, "the task deadline is already past");
		return -1;
	}
	ttl_ms = (uint64_t)(not_after - (int64_t)now) * 1000;

	pthread_mutex_lock(&b->lock);
	if (read_clock(b, &ti, err, errlen) != 0 ||
	    clock_observe(b, &ti, false, err, errlen) != 0)
		goto out;
	if (ti.clockInfo.clock > UINT64_MAX - ttl_ms) {
		snprintf(err, errlen, "TPM clock too close to wrapping");
		goto out;
	}
	f.kind = KIND_TASK;
	f.k.key_type = key_type;
	f.k.deadline = ti.clockInfo.clock + ttl_ms;
	f.k.nv_index = b->nv_index;
	f.k.clock = ti.clockInfo.clock;
	f.k.reset_count = ti.clockInfo.resetCount;
	f.k.restart_count = ti.clockInfo.restartCount;
	f.k.safe = ti.clockInfo.safe;
	f.k.not_after = not_after;
	if (nv_read_counter(b, &f.k.counter, err, errlen) != 0 ||
	    policy_digest(b, f.k.deadline, f.k.counter,
			  &f.k.pub.publicArea.authPolicy, err, errlen) != 0 ||
	    create_key(b, &f.k.pub, &f.k.pub, &f.k.priv, err, errlen) != 0)
		goto out;
	if (keyfile_save(path, &f, err, errlen) != 0)
		goto out;
	if (pubkey_fill(&f.k.pub, pub, err, errlen) != 0) {
		(void)unlink(path);
		goto out;
	}
	facts_fill(&f.k.pub, facts);
	stint_debug(
		"tpm", "key %s: deadline %llu ms (clock %llu), counter %llu",
		key_id, (unsigned long long)f.k.deadline,
		(unsigned long long)f.k.clock, (unsigned long long)f.k.counter);
	r = 0;
out:
	pthread_mutex_unlock(&b->lock);
	OPENSSL_cleanse(&f.k.priv, sizeof(f.k.priv));
	return r;
}

/* Long-lived host keys (CA, statement signing): userWithAuth with an empty
 * auth, no deadline; only stintd can reach the TPM and the blobs. */
static int
tpm_host_key(struct stint_backend *base, const char *key_id, uint32_t key_type,
	     struct stint_pubkey *pub, struct stint_key_facts *facts,
	     bool *created, char *err, size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	char path[PATH_MAX + 160];
	struct keyfile f;
	int r = -1, lr;

	memset(pub, 0, sizeof(*pub));
	memset(facts, 0, sizeof(*facts));
	*created = false;
	if (!key_id_ok(key_id) ||
	    path_for(b, "host-", key_id, path, sizeof(path)) != 0) {
		snprintf(err, errlen, "bad host key id '%s'", key_id);
		return -1;
	}
	pthread_mutex_lock(&b->lock);
	lr = keyfile_load(path, &f, err, errlen);
	if (lr < 0)
		goto out;
	if (lr == 0 && (f.kind != KIND_HOST || f.k.key_type != key_type)) {
		snprintf(err, errlen, "%s holds another kind of key", path);
		goto out;
	}
	if (lr == 1) {
		memset(&f, 0, sizeof(f));
		f.kind = KIND_HOST;
		f.k.key_type = key_type;
		if (key_type_template(
			    key_type,
			    TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
				    TPMA_OBJECT_SENSITIVEDATAORIGIN |
				    TPMA_OBJECT_USERWITHAUTH |
				    TPMA_OBJECT_NODA | TPMA_OBJECT_SIGN_ENCRYPT,
			    &f.k.pub) != 0) {
			snprintf(err, errlen,
				 "key type %u is not available on the TPM "
				 "backend",
				 (unsigned)key_type);
			goto out;
		}
		if (create_key(b, &f.k.pub, &f.k.pub, &f.k.priv, err, errlen) !=
			    0 ||
		    keyfile_save(path, &f, err, errlen) != 0)
			goto out;
		*created = true;
	}
	if (pubkey_fill(&f.k.pub, pub, err, errlen) != 0)
		goto out;
	facts_fill(&f.k.pub, facts);
	r = 0;
out:
	pthread_mutex_unlock(&b->lock);
	return r;
}

static TPMI_ALG_HASH
hash_for_len(size_t n)
{
	switch (n) {
	case 20:
		return TPM2_ALG_SHA1;
	case 32:
		return TPM2_ALG_SHA256;
	case 48:
		return TPM2_ALG_SHA384;
	case 64:
		return TPM2_ALG_SHA512;
	default:
		return TPM2_ALG_NULL;
	}
}

static TPMI_ALG_HASH
hash_for_ck(CK_MECHANISM_TYPE m)
{
	switch (m) {
	case CKM_SHA_1:
		return TPM2_ALG_SHA1;
	case CKM_SHA256:
		return TPM2_ALG_SHA256;
	case CKM_SHA384:
		return TPM2_ALG_SHA384;
	case CKM_SHA512:
		return TPM2_ALG_SHA512;
	default:
		return TPM2_ALG_NULL;
	}
}

/* CKM_RSA_PKCS signs a DigestInfo; the TPM adds that itself, so split it
 * into hash and digest. The prefixes are fixed DER. */
static int
digest_info_split(const uint8_t *in, size_t len, TPMI_ALG_HASH *hash,
		  const uint8_t **digest, size_t *dlen)
{
	static const struct {
		TPMI_ALG_HASH alg;
		size_t dlen;
		uint8_t prefix[19];
		size_t plen;
	} di[] = {
		{TPM2_ALG_SHA1,
		 20,
		 {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02,
		  0x1a, 0x05, 0x00, 0x04, 0x14},
		 15},
		{TPM2_ALG_SHA256,
		 32,
		 {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		  0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
		 19},
		{TPM2_ALG_SHA384,
		 48,
		 {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		  0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
		 19},
		{TPM2_ALG_SHA512,
		 64,
		 {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		  0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
		 19},
	};
	size_t i;

	for (i = 0; i < sizeof(di) / sizeof(di[0]); i++) {
		if (len == di[i].plen + di[i].dlen &&
		    memcmp(in, di[i].prefix, di[i].plen) == 0) {
			*hash = di[i].alg;
			*digest = in + di[i].plen;
			*dlen = di[i].dlen;
			return 0;
		}
	}
	return -1;
}

/* Maps the raw mechanism and input onto a TPM scheme and digest. */
static int
sign_scheme(const struct keyfile *f, CK_MECHANISM_TYPE raw,
	    const CK_RSA_PKCS_PSS_PARAMS *pss, const uint8_t *in, size_t in_len,
	    TPMT_SIG_SCHEME *scheme, TPM2B_DIGEST *digest, char *err,
	    size_t errlen)
{
	bool ec = f->k.pub.publicArea.type == TPM2_ALG_ECC;
	const uint8_t *d = in;
	size_t dlen = in_len;
	TPMI_ALG_HASH hash;

	if ((raw == CKM_ECDSA) != ec) {
		snprintf(err, errlen,
			 "key is not an %s key: mechanism does not fit",
			 raw == CKM_ECDSA ? "EC" : "RSA");
		return -1;
	}
	if ((raw == CKM_RSA_PKCS_PSS) != (pss != NULL)) {
		snprintf(err, errlen,
			 "PSS parameters go with CKM_RSA_PKCS_PSS "
			 "and only with it");
		return -1;
	}
	switch (raw) {
	case CKM_ECDSA:
		scheme->scheme = TPM2_ALG_ECDSA;
		hash = hash_for_len(in_len);
		break;
	case CKM_RSA_PKCS:
		scheme->scheme = TPM2_ALG_RSASSA;
		if (digest_info_split(in, in_len, &hash, &d, &dlen) != 0) {
			snprintf(err, errlen,
				 "CKM_RSA_PKCS input is not a SHA-1/256/384/"
				 "512 DigestInfo: the TPM signs digests only");
			return -1;
		}
		break;
	case CKM_RSA_PKCS_PSS:
		scheme->scheme = TPM2_ALG_RSAPSS;
		hash = hash_for_ck(pss->hashAlg);
		if (hash != hash_for_len(in_len) ||
		    pss->sLen != (CK_ULONG)in_len) {
			snprintf(err, errlen,
				 "the TPM signs PSS with a salt as long as the "
				 "digest, over a SHA-1/256/384/512 digest");
			return -1;
		}
		break;
	default:
		snprintf(err, errlen,
			 "mechanism 0x%lx is not CKM_ECDSA, CKM_RSA_PKCS or "
			 "CKM_RSA_PKCS_PSS",
			 (unsigned long)raw);
		return -1;
	}
	if (hash == TPM2_ALG_NULL) {
		snprintf(err, errlen,
			 "input of %zu bytes is not a SHA-1/256/384/512 "
			 "digest",
			 in_len);
		return -1;
	}
	scheme->details.any.hashAlg = hash;
	digest->size = (UINT16)dlen;
	memcpy(digest->buffer, d, dlen);
	return 0;
}

static int
sig_out(const TPMT_SIGNATURE *s, uint8_t *sig, size_t *sig_len, char *err,
	size_t errlen)
{
	const TPM2B_ECC_PARAMETER *rr, *ss;

	if (s->sigAlg == TPM2_ALG_ECDSA) {
		rr = &s->signature.ecdsa.signatureR;
		ss = &s->signature.ecdsa.signatureS;
		if (*sig_len < 64 || rr->size > 32 || ss->size > 32) {
			snprintf(err, errlen, "signature buffer too small");
			return -1;
		}
		memset(sig, 0, 64);
		memcpy(sig + 32 - rr->size, rr->buffer, rr->size);
		memcpy(sig + 64 - ss->size, ss->buffer, ss->size);
		*sig_len = 64;
		return 0;
	}
	/* RSASSA and RSAPSS share the layout. */
	if (*sig_len < s->signature.rsassa.sig.size) {
		snprintf(err, errlen, "signature buffer too small");
		return -1;
	}
	memcpy(sig, s->signature.rsassa.sig.buffer,
	       s->signature.rsassa.sig.size);
	*sig_len = s->signature.rsassa.sig.size;
	return 0;
}

/* Finds the key file: a task key, else a host key. */
static int
key_find(struct tpm_backend *b, const char *key_id, struct keyfile *f,
	 char *err, size_t errlen)
{
	char path[PATH_MAX + 160];
	int r;

	if (!key_id_ok(key_id) ||
	    path_for(b, "", key_id, path, sizeof(path)) != 0) {
		snprintf(err, errlen, "no TPM key '%s'", key_id);
		return -1;
	}
	r = keyfile_load(path, f, err, errlen);
	if (r == 1) {
		if (path_for(b, "host-", key_id, path, sizeof(path)) != 0)
			return -1;
		r = keyfile_load(path, f, err, errlen);
	}
	if (r == 1)
		snprintf(err, errlen,
			 "no TPM key '%s' (ended, or never made here)", key_id);
	return r == 0 ? 0 : -1;
}

static int
tpm_sign(struct stint_backend *base, const char *key_id, CK_MECHANISM_TYPE raw,
	 const CK_RSA_PKCS_PSS_PARAMS *pss, const uint8_t *in, size_t in_len,
	 uint8_t *sig, size_t *sig_len, char *err, size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	TPMT_TK_HASHCHECK ticket = {.tag = TPM2_ST_HASHCHECK,
				    .hierarchy = TPM2_RH_NULL};
	ESYS_TR key = ESYS_TR_NONE, session = ESYS_TR_NONE;
	enum policy_step step = STEP_NONE;
	TPMT_SIGNATURE *s = NULL;
	TPMT_SIG_SCHEME scheme;
	TPM2B_DIGEST digest;
	struct keyfile f;
	TSS2_RC rc;
	int r = -1;

	if (in_len == 0 || in_len > SIGN_IN_MAX) {
		snprintf(err, errlen, "input to sign must be 1 to %d bytes",
			 SIGN_IN_MAX);
		return -1;
	}
	if (key_find(b, key_id, &f, err, errlen) != 0)
		return -1;
	memset(&scheme, 0, sizeof(scheme));
	memset(&digest, 0, sizeof(digest));
	if (sign_scheme(&f, raw, pss, in, in_len, &scheme, &digest, err,
			errlen) != 0)
		return -1;

	pthread_mutex_lock(&b->lock);
	if (f.kind == KIND_TASK && f.k.reset_count < b->min_reset) {
		snprintf(err, errlen,
			 "key '%s' predates a TPM reset after which the TPM "
			 "clock was not safe: its hardware deadline cannot be "
			 "trusted; end the task and start a new one",
			 key_id);
		goto out;
	}
	if (load_key(b, &f.k.pub, &f.k.priv, &key, err, errlen) != 0)
		goto out;
	if (f.kind == KIND_TASK) {
		if ((rc = session_start(b, TPM2_SE_POLICY, &session)) !=
		    TSS2_RC_SUCCESS) {
			session = ESYS_TR_NONE;
			tss_err(err, errlen, "cannot start a policy session",
				rc);
			goto out;
		}
		rc = policy_run(b, session, f.k.deadline, f.k.counter, &step);
		if (rc != TSS2_RC_SUCCESS) {
			snprintf(err, errlen,
				 "the TPM refused key '%s': policy %s (%s)",
				 key_id,
				 step == STEP_CLOCK
					 ? "deadline passed in TPM clock"
					 : "kill switch used since the key was "
					   "made",
				 Tss2_RC_Decode(rc));
			goto out;
		}
	}
	rc = Esys_Sign(
		b->esys, key, f.kind == KIND_TASK ? session : ESYS_TR_PASSWORD,
		ESYS_TR_NONE, ESYS_TR_NONE, &digest, &scheme, &ticket, &s);
	if (rc != TSS2_RC_SUCCESS) {
		tss_err(err, errlen, "the TPM refused to sign", rc);
		goto out;
	}
	r = sig_out(s, sig, sig_len, err, errlen);
out:
	Esys_Free(s);
	flush(b, &session);
	flush(b, &key);
	pthread_mutex_unlock(&b->lock);
	OPENSSL_cleanse(&f.k.priv, sizeof(f.k.priv));
	return r;
}

/*
 * The key exists in the TPM only while loaded for one signature; the blob
 * file is the only way to load it, so removing it destroys the key. The
 * encrypted private part is useless without this TPM's storage primary,
 * and the key's policy expires anyway.
 */
static int
tpm_destroy(struct stint_backend *base, const char *key_id, char *err,
	    size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	char path[PATH_MAX + 160];

	if (!key_id_ok(key_id) ||
	    path_for(b, "", key_id, path, sizeof(path)) != 0)
		return 0; /* no such file can exist */
	if (unlink(path) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot delete %s: %s", path,
			 strerror(errno));
		return -1;
	}
	return 0;
}

int
stint_backend_tpm_kill_switch(struct stint_backend *base, char *err,
			      size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	uint64_t before = 0, after = 0;
	int r = -1;

	if (base == NULL || base->ops->close != tpm_close) {
		snprintf(err, errlen, "the kill switch needs the TPM backend");
		return -1;
	}
	pthread_mutex_lock(&b->lock);
	if (nv_read_counter(b, &before, err, errlen) != 0 ||
	    nv_increment(b, err, errlen) != 0 ||
	    nv_read_counter(b, &after, err, errlen) != 0)
		goto out;
	if (after <= before) {
		snprintf(err, errlen, "the kill-switch counter did not move");
		goto out;
	}
	log_warn("TPM: kill switch used: counter %llu -> %llu, every task key "
		 "made before is refused by the TPM",
		 (unsigned long long)before, (unsigned long long)after);
	r = 0;
out:
	pthread_mutex_unlock(&b->lock);
	return r;
}

int
stint_backend_tpm_counter(struct stint_backend *base, uint64_t *value,
			  char *err, size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	int r;

	if (base == NULL || base->ops->close != tpm_close) {
		snprintf(err, errlen, "the kill switch needs the TPM backend");
		return -1;
	}
	pthread_mutex_lock(&b->lock);
	r = nv_read_counter(b, value, err, errlen);
	pthread_mutex_unlock(&b->lock);
	return r;
}

int
stint_backend_tpm_ak_pem(struct stint_backend *base, char **pem, char *err,
			 size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	char path[PATH_MAX + 16];
	EVP_PKEY *pkey = NULL;
	struct keyfile f;
	BIO *bio = NULL;
	char *data;
	long n;
	int r = -1;

	*pem = NULL;
	snprintf(path, sizeof(path), "%s/ak.blob", b->dir);
	if (keyfile_load(path, &f, err, errlen) != 0)
		return -1;
	if (stint_tpm_pkey_from_public(&f.k.pub.publicArea, &pkey) != 0 ||
	    (bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(bio, pkey) != 1 ||
	    (n = BIO_get_mem_data(bio, &data)) <= 0 ||
	    (*pem = malloc((size_t)n + 1)) == NULL) {
		snprintf(err, errlen, "cannot encode the AK public key");
		goto out;
	}
	memcpy(*pem, data, (size_t)n);
	(*pem)[n] = '\0';
	r = 0;
out:
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return r;
}

static int
marshal_bytes(struct stint_bytes *out, const void *src,
	      TSS2_RC (*fn)(const void *, uint8_t *, size_t, size_t *))
{
	uint8_t buf[4096];
	size_t off = 0;

	if (fn(src, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
		return -1;
	return bytes_dup(out, buf, off);
}

static TSS2_RC
mu_public(const void *p, uint8_t *b, size_t n, size_t *o)
{
	return Tss2_MU_TPM2B_PUBLIC_Marshal(p, b, n, o);
}

static TSS2_RC
mu_nvpublic(const void *p, uint8_t *b, size_t n, size_t *o)
{
	return Tss2_MU_TPM2B_NV_PUBLIC_Marshal(p, b, n, o);
}

static TSS2_RC
mu_signature(const void *p, uint8_t *b, size_t n, size_t *o)
{
	return Tss2_MU_TPMT_SIGNATURE_Marshal(p, b, n, o);
}

int
stint_backend_tpm_evidence(struct stint_backend *base, const char *key_id,
			   const uint8_t *nonce, size_t nonce_len,
			   const char *task_id, struct stint_bytes *doc,
			   char *err, size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_ECDSA};
	ESYS_TR key = ESYS_TR_NONE, ak = ESYS_TR_NONE;
	char path[PATH_MAX + 16];
	struct stint_tpm_evidence ev;
	TPM2B_NV_PUBLIC *nvpub = NULL;
	TPM2B_ATTEST *attest = NULL;
	TPMT_SIGNATURE *sig = NULL;
	struct keyfile f, akf;
	TPM2B_DATA qual;
	EVP_MD_CTX *md = NULL;
	unsigned int qlen = 0;
	uint8_t *ek = NULL;
	size_t ek_len = 0;
	TSS2_RC rc;
	int r = -1;

	memset(&ev, 0, sizeof(ev));
	memset(doc, 0, sizeof(*doc));
	if (base == NULL || base->ops->close != tpm_close) {
		snprintf(err, errlen, "TPM evidence needs the TPM backend");
		return -1;
	}
	if (key_find(b, key_id, &f, err, errlen) != 0)
		return -1;
	if (f.kind != KIND_TASK) {
		snprintf(err, errlen, "'%s' is not a task key", key_id);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/ak.blob", b->dir);
	if (keyfile_load(path, &akf, err, errlen) != 0)
		return -1;
	memset(&qual, 0, sizeof(qual));
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, nonce, nonce_len) != 1 ||
	    EVP_DigestUpdate(md, task_id, strlen(task_id)) != 1 ||
	    EVP_DigestFinal_ex(md, qual.buffer, &qlen) != 1) {
		EVP_MD_CTX_free(md);
		snprintf(err, errlen, "SHA-256 failed");
		return -1;
	}
	EVP_MD_CTX_free(md);
	qual.size = (UINT16)qlen;
	scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;

	pthread_mutex_lock(&b->lock);
	if (load_key(b, &f.k.pub, &f.k.priv, &key, err, errlen) != 0 ||
	    load_key(b, &akf.k.pub, &akf.k.priv, &ak, err, errlen) != 0)
		goto out;
	/* The task key's ADMIN role: its (empty) auth value, since the key
	 * is not adminWithPolicy. Certify reveals nothing secret. */
	rc = Esys_Certify(b->esys, key, ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD,
			  ESYS_TR_NONE, &qual, &scheme, &attest, &sig);
	if (rc != TSS2_RC_SUCCESS) {
		tss_err(err, errlen, "TPM2_Certify failed", rc);
		goto out;
	}
	rc = Esys_NV_ReadPublic(b->esys, b->nv, ESYS_TR_NONE, ESYS_TR_NONE,
				ESYS_TR_NONE, &nvpub, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		tss_err(err, errlen, "cannot read the NV index public area",
			rc);
		goto out;
	}
	flush(b, &key);
	flush(b, &ak);
	pthread_mutex_unlock(&b->lock);

	if (b->have_ek_cert) {
		snprintf(path, sizeof(path), "%s/ek.cert", b->dir);
		if (read_file(path, &ek, &ek_len, EK_CERT_MAX, err, errlen) < 0)
			goto done;
	}
	ev.deadline = f.k.deadline;
	ev.counter = f.k.counter;
	ev.not_after = f.k.not_after;
	if (bytes_dup(&ev.attest, attest->attestationData, attest->size) ||
	    marshal_bytes(&ev.signature, sig, mu_signature) ||
	    marshal_bytes(&ev.key_public, &f.k.pub, mu_public) ||
	    marshal_bytes(&ev.ak_public, &akf.k.pub, mu_public) ||
	    marshal_bytes(&ev.nv_public, nvpub, mu_nvpublic) ||
	    bytes_dup(&ev.ek_cert, ek, ek_len) ||
	    stint_tpm_evidence_encode(&ev, doc) != 0) {
		snprintf(err, errlen, "cannot encode the TPM evidence");
		goto done;
	}
	r = 0;
	goto done;
out:
	flush(b, &key);
	flush(b, &ak);
	pthread_mutex_unlock(&b->lock);
done:
	free(ek);
	stint_tpm_evidence_free(&ev);
	Esys_Free(attest);
	Esys_Free(sig);
	Esys_Free(nvpub);
	OPENSSL_cleanse(&f.k.priv, sizeof(f.k.priv));
	OPENSSL_cleanse(&akf.k.priv, sizeof(akf.k.priv));
	return r;
}

static void
tpm_close(struct stint_backend *base)
{
	struct tpm_backend *b = (struct tpm_backend *)base;

	if (b == NULL)
		return;
	if (b->esys != NULL) {
		flush(b, &b->primary);
		if (b->nv != ESYS_TR_NONE)
			(void)Esys_TR_Close(b->esys, &b->nv);
		Esys_Finalize(&b->esys);
	}
	if (b->tcti != NULL)
		Tss2_TctiLdr_Finalize(&b->tcti);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/* --- the optional ops: evidence, attestation key, kill switch ----------- */

/* TPM2_Certify by the host AK, in the evidence envelope (evidence.h). */
static int
tpm_evidence(struct stint_backend *base, const char *key_id,
	     const uint8_t *nonce, size_t nonce_len, const char *task_id,
	     struct stint_bytes *doc, char *err, size_t errlen)
{
	struct stint_bytes tdoc = {NULL, 0};
	int r = 0;

	doc->ptr = NULL;
	doc->len = 0;
	if (nonce_len != STINT_NONCE_LEN) {
		snprintf(err, errlen, "the nonce must be %d bytes",
			 STINT_NONCE_LEN);
		return -1;
	}
	if (stint_backend_tpm_evidence(base, key_id, nonce, nonce_len, task_id,
				       &tdoc, err, errlen) != 0)
		return -1;
	if (stint_evidence_tpm_wrap(tdoc.ptr, tdoc.len, nonce, task_id,
				    &doc->ptr, &doc->len) != 0) {
		snprintf(err, errlen, "cannot encode the TPM evidence");
		r = -1;
	}
	stint_bytes_free(&tdoc);
	return r;
}

/* The AK's SPKI DER, from its public area in ak.blob. */
static int
tpm_ak_spki(struct stint_backend *base, struct stint_bytes *spki, char *err,
	    size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	char path[PATH_MAX + 16];
	unsigned char *der = NULL;
	EVP_PKEY *pkey = NULL;
	struct keyfile f;
	int n = 0;

	spki->ptr = NULL;
	spki->len = 0;
	snprintf(path, sizeof(path), "%s/ak.blob", b->dir);
	if (keyfile_load(path, &f, err, errlen) != 0)
		return -1;
	OPENSSL_cleanse(&f.k.priv, sizeof(f.k.priv));
	if (stint_tpm_pkey_from_public(&f.k.pub.publicArea, &pkey) != 0 ||
	    (n = i2d_PUBKEY(pkey, &der)) <= 0 ||
	    (spki->ptr = malloc((size_t)n)) == NULL) {
		snprintf(err, errlen, "cannot encode the TPM AK");
		n = -1;
	} else {
		memcpy(spki->ptr, der, (size_t)n);
		spki->len = (size_t)n;
	}
	OPENSSL_free(der);
	EVP_PKEY_free(pkey);
	return n > 0 ? 0 : -1;
}

/* r || s → DER ECDSA-Sig-Value. */
static int
rs_to_der(const uint8_t *rs, size_t len, uint8_t *der, size_t *der_len)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = NULL, *ss = NULL;
	unsigned char *p = der;
	int n = -1;

	if (s == NULL || len % 2 != 0)
		goto out;
	r = BN_bin2bn(rs, (int)(len / 2), NULL);
	ss = BN_bin2bn(rs + len / 2, (int)(len / 2), NULL);
	if (r == NULL || ss == NULL || ECDSA_SIG_set0(s, r, ss) != 1)
		goto out;
	r = ss = NULL;
	if (i2d_ECDSA_SIG(s, NULL) > (int)*der_len)
		goto out;
	n = i2d_ECDSA_SIG(s, &p);
out:
	BN_free(r);
	BN_free(ss);
	ECDSA_SIG_free(s);
	if (n <= 0)
		return -1;
	*der_len = (size_t)n;
	return 0;
}

static int
tpm_ak_sign_der(struct stint_backend *base, const uint8_t *data, size_t len,
		uint8_t *sig, size_t *sig_len, char *err, size_t errlen)
{
	uint8_t rs[128];
	size_t rs_len = sizeof(rs);

	if (stint_backend_tpm_ak_sign(base, data, len, rs, &rs_len, err,
				      errlen) != 0)
		return -1;
	if (rs_to_der(rs, rs_len, sig, sig_len) != 0) {
		snprintf(err, errlen, "cannot encode the signature");
		return -1;
	}
	return 0;
}

static int
tpm_kill_switch(struct stint_backend *base, uint64_t *counter, char *err,
		size_t errlen)
{
	if (stint_backend_tpm_kill_switch(base, err, errlen) != 0)
		return -1;
	return stint_backend_tpm_counter(base, counter, err, errlen);
}

static const struct stint_backend_ops tpm_ops = {
	.name = "tpm",
	.caps = STINT_BACKEND_HW_DEADLINE | STINT_BACKEND_KILL_SWITCH,
	.evidence_kind = STINT_EVIDENCE_KIND_TPM,
	.generate = tpm_generate,
	.sign = tpm_sign,
	.destroy = tpm_destroy,
	.host_key = tpm_host_key,
	.evidence = tpm_evidence,
	.ak_spki = tpm_ak_spki,
	.ak_sign = tpm_ak_sign_der,
	.kill_switch = tpm_kill_switch,
	.close = tpm_close,
};

static int
make_dir(const char *path, char *err, size_t errlen)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path,
			 strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * stintd is meant to be the TPM's only user. Without a resource manager
 * (swtpm, /dev/tpm0) the objects and sessions of a stintd that died stay
 * loaded and fill the TPM's few slots, so every later load fails with
 * TPM_RC_OBJECT_MEMORY: flush whatever is loaded before starting.
 */
static void
flush_stale(struct tpm_backend *b)
{
	static const TPM2_HANDLE firsts[] = {TPM2_TRANSIENT_FIRST,
					     TPM2_LOADED_SESSION_FIRST};
	TPMS_CAPABILITY_DATA *cap;
	TPMI_YES_NO more;
	ESYS_TR tr;
	TSS2_RC rc;
	size_t i, j, n = 0;

	for (i = 0; i < sizeof(firsts) / sizeof(firsts[0]); i++) {
		cap = NULL;
		rc = Esys_GetCapability(b->esys, ESYS_TR_NONE, ESYS_TR_NONE,
					ESYS_TR_NONE, TPM2_CAP_HANDLES,
					firsts[i], TPM2_MAX_CAP_HANDLES, &more,
					&cap);
		if (rc != TSS2_RC_SUCCESS || cap == NULL) {
			Esys_Free(cap);
			continue;
		}
		for (j = 0; j < cap->data.handles.count; j++) {
			if (Esys_TR_FromTPMPublic(
				    b->esys, cap->data.handles.handle[j],
				    ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				    &tr) != TSS2_RC_SUCCESS)
				continue;
			if (Esys_FlushContext(b->esys, tr) == TSS2_RC_SUCCESS)
				n++;
			else
				(void)Esys_TR_Close(b->esys, &tr);
		}
		Esys_Free(cap);
	}
	if (n > 0)
		log_warn("TPM: flushed %zu object(s) and session(s) left "
			 "loaded by a previous run",
			 n);
}

int
stint_backend_tpm_open(const struct stint_config *cfg,
		       struct stint_backend **out, char *err, size_t errlen)
{
	struct tpm_backend *b;
	TPMS_TIME_INFO ti;
	TSS2_RC rc;
	int n, cs;

	*out = NULL;
	err[0] = '\0';
	/* ESAPI logs every TPM error to stderr; this backend reports the
	 * ones that matter itself. TSS2_LOG set by the user still wins. */
	(void)setenv("TSS2_LOG", "all+none", 0);
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	b->base.ops = &tpm_ops;
	b->primary = ESYS_TR_NONE;
	b->nv = ESYS_TR_NONE;
	b->nv_index = cfg->backend.kill_switch_index;
	pthread_mutex_init(&b->lock, NULL);
	n = snprintf(b->dir, sizeof(b->dir), "%s/tpm", cfg->state_dir);
	if (n < 0 || (size_t)n >= sizeof(b->dir) - 160) {
		snprintf(err, errlen, "state_dir is too long");
		goto fail;
	}
	if (make_dir(cfg->state_dir, err, errlen) != 0 ||
	    make_dir(b->dir, err, errlen) != 0)
		goto fail;
	rc = Tss2_TctiLdr_Initialize(cfg->backend.tcti, &b->tcti);
	if (rc != TSS2_RC_SUCCESS) {
		b->tcti = NULL;
		tss_err(err, errlen, "cannot open the TPM", rc);
		snprintf(err + strlen(err), errlen - strlen(err),
			 " with tcti '%s': check [backend] tcti",
			 cfg->backend.tcti);
		goto fail;
	}
	rc = Esys_Initialize(&b->esys, b->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		b->esys = NULL;
		tss_err(err, errlen, "cannot initialise ESAPI", rc);
		goto fail;
	}
	rc = Esys_Startup(b->esys, TPM2_SU_CLEAR);
	if (rc != TSS2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE) {
		tss_err(err, errlen, "TPM2_Startup failed", rc);
		goto fail;
	}
	flush_stale(b);
	if (create_primary(b, err, errlen) != 0 ||
	    ak_setup(b, err, errlen) != 0 || nv_setup(b, err, errlen) != 0)
		goto fail;
	cs = clock_state_load(b);
	if (cs < 0) {
		snprintf(err, errlen, "%s/clock is unreadable", b->dir);
		goto fail;
	}
	if (read_clock(b, &ti, err, errlen) != 0 ||
	    clock_observe(b, &ti, cs == 1, err, errlen) != 0)
		goto fail;
	if (!ti.clockInfo.safe)
		log_warn("TPM: clock not safe (it may have fallen back after "
			 "an unorderly reset)");
	ek_cert_record(b);
	*out = &b->base;
	return 0;
fail:
	tpm_close(&b->base);
	return -1;
}

/*
 * Signs data with the restricted host AK (audit checkpoints): the TPM
 * hashes the data itself (TPM2_Hash), and its ticket lets the restricted
 * key sign that digest; data starting with TPM_GENERATED_VALUE is refused
 * by TPM2_Hash, so nothing signed here can pass for a TPM attestation.
 * sig gets r || s (64 bytes).
 */
int
stint_backend_tpm_ak_sign(struct stint_backend *base, const uint8_t *data,
			  size_t len, uint8_t *sig, size_t *sig_len, char *err,
			  size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_ECDSA};
	TPMT_TK_HASHCHECK *ticket = NULL;
	TPMT_SIGNATURE *s = NULL;
	TPM2B_DIGEST *digest = NULL;
	TPM2B_MAX_BUFFER buf;
	ESYS_TR ak = ESYS_TR_NONE;
	char path[PATH_MAX + 16];
	struct keyfile akf;
	TSS2_RC rc;
	int r = -1;

	if (base == NULL || base->ops->close != tpm_close) {
		snprintf(err, errlen, "needs the TPM backend");
		return -1;
	}
	if (len == 0 || len > sizeof(buf.buffer)) {
		snprintf(err, errlen, "data to sign must be 1 to %zu bytes",
			 sizeof(buf.buffer));
		return -1;
	}
	memcpy(buf.buffer, data, len);
	buf.size = (UINT16)len;
	scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	snprintf(path, sizeof(path), "%s/ak.blob", b->dir);
	if (keyfile_load(path, &akf, err, errlen) != 0)
		return -1;
	pthread_mutex_lock(&b->lock);
	rc = Esys_Hash(b->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &buf,
		       TPM2_ALG_SHA256, ESYS_TR_RH_OWNER, &digest, &ticket);
	if (rc != TSS2_RC_SUCCESS) {
		tss_err(err, errlen, "TPM2_Hash failed", rc);
		goto out;
	}
	if (load_key(b, &akf.k.pub, &akf.k.priv, &ak, err, errlen) != 0)
		goto out;
	rc = Esys_Sign(b->esys, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		       ESYS_TR_NONE, digest, &scheme, ticket, &s);
	if (rc != TSS2_RC_SUCCESS) {
		tss_err(err, errlen, "the TPM refused to sign with the AK", rc);
		goto out;
	}
	r = sig_out(s, sig, sig_len, err, errlen);
out:
	Esys_Free(s);
	Esys_Free(digest);
	Esys_Free(ticket);
	flush(b, &ak);
	pthread_mutex_unlock(&b->lock);
	OPENSSL_cleanse(&akf.k.priv, sizeof(akf.k.priv));
	return r;
}
