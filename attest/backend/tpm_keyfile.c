/*
 * TPM backend: small helpers, file I/O and the task key files
 * (format in attest/backend_tpm.h). See tpm_int.h.
 */

#include "attest/backend/tpm_int.h"

static const char keyfile_magic[8] = {'S', 'T', 'I', 'N', 'T', 'K', 'E', 'Y'};

/* --- small helpers ------------------------------------------------------- */

void
tpm_tss_err(char *err, size_t errlen, const char *what, TSS2_RC rc)
{
	snprintf(err, errlen, "%s: %s (0x%x)", what, Tss2_RC_Decode(rc),
		 (unsigned)rc);
}

void
tpm_flush(struct tpm_backend *b, ESYS_TR *tr)
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

/* A key id names a file in the key directory: an identifier
 * (common/ident.h) that does not start with a '.'. */
bool
tpm_key_id_ok(const char *id)
{
	return id[0] != '.' && stint_ident_ok(id, KEY_ID_MAX);
}

int
tpm_path_for(const struct tpm_backend *b, const char *prefix, const char *id,
	     char *path, size_t cap)
{
	int n = snprintf(path, cap, "%s/%s%s.key", b->dir, prefix, id);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Writes via a temporary file and rename, mode 0600, fsync'ed. */
int
tpm_write_file(const char *path, const uint8_t *buf, size_t len, char *err,
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

/* --- key files ------------------------------------------------------------ */

static int
keyfile_encode(const struct tpm_keyfile *f, uint8_t *buf, size_t cap,
	       size_t *len)
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
keyfile_decode(const uint8_t *buf, size_t len, struct tpm_keyfile *f)
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
	struct tpm_keyfile f;

	if (keyfile_decode(buf, len, &f) != 0)
		return -1;
	*kf = f.k;
	return 0;
}

int
tpm_keyfile_load(const char *path, struct tpm_keyfile *f, char *err,
		 size_t errlen)
{
	char *buf;
	size_t len;
	int r;

	r = stint_file_read(path, KEYFILE_MAX, &buf, &len, err, errlen);
	if (r != 0)
		return r;
	r = keyfile_decode((const uint8_t *)buf, len, f);
	free(buf);
	if (r != 0)
		snprintf(err, errlen, "%s is not a Stint TPM key file", path);
	return r;
}

int
stint_tpm_keyfile_read(const char *path, struct stint_tpm_keyfile *kf,
		       char *err, size_t errlen)
{
	struct tpm_keyfile f;
	int r = tpm_keyfile_load(path, &f, err, errlen);

	if (r == 1)
		snprintf(err, errlen, "%s does not exist", path);
	if (r != 0)
		return -1;
	*kf = f.k;
	return 0;
}

int
tpm_keyfile_save(const char *path, const struct tpm_keyfile *f, char *err,
		 size_t errlen)
{
	uint8_t buf[KEYFILE_MAX];
	size_t len;

	if (keyfile_encode(f, buf, sizeof(buf), &len) != 0) {
		snprintf(err, errlen, "cannot encode the key file");
		return -1;
	}
	return tpm_write_file(path, buf, len, err, errlen);
}
