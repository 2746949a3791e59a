/*
 * PKCS#11 backend: the key pool (ready key pairs made ahead by a
 * background thread) and the ready-keys file. See pkcs11_int.h.
 */

#include "attest/backend/pkcs11_int.h"

static void *pool_main(void *arg);

/* --- key pool ------------------------------------------------------------ */

static const struct p11_key_spec *
pool_spec(void)
{
	return &p11_key_specs[0]; /* ec-p256 */
}

/* "pool-" and 32 lowercase hex digits: the ids under which earlier versions
 * kept ready keys before relabelling them. The sweep removes any left. */
bool
p11_legacy_pool_id(const char *id, size_t len)
{
	size_t i, n = strlen(LEGACY_POOL_PREFIX);

	if (len != n + 32 || memcmp(id, LEGACY_POOL_PREFIX, n) != 0)
		return false;
	for (i = n; i < len; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

/* Starts the refill thread once; caller holds pool_lock. Not at open:
 * stintd forks after opening the backend, and threads do not survive it. */
void
p11_pool_start_locked(struct p11_backend *b)
{
	if (b->pool_target == 0 || b->pool_started || b->pool_stop)
		return;
	if (pthread_create(&b->pool_thread, NULL, pool_main, b) != 0) {
		log_warn("backend: cannot start the key pool thread; "
			 "generating every key at task start");
		b->pool_target = 0;
		return;
	}
	b->pool_started = true;
}

/* Makes one ready key under a fresh task id and adds it to the pool. Runs
 * in the refill thread, holding neither lock while the token works: the
 * duplicate-id search, the generation and the read-back of the facts and
 * the public key all happen here, off the task start's path. */
static int
pool_fill_one(struct p11_backend *b, char *err, size_t errlen)
{
	struct p11_keypair_req req;
	struct p11_keypair kp;
	struct pool_key k;
	CK_SESSION_HANDLE s;
	bool clean = true, kept = false;
	CK_RV rv;
	int r = -1;

	memset(&k, 0, sizeof(k));
	if (stint_task_id_new(k.id) != 0) {
		snprintf(err, errlen, "no randomness for a task id");
		return -1;
	}
	/* From here until the key is in pool[], the sweep must spare it. */
	pthread_mutex_lock(&b->pool_lock);
	memcpy(b->pool_making, k.id, sizeof(k.id));
	pthread_mutex_unlock(&b->pool_lock);
	if ((rv = p11_session_get(b, &s)) != CKR_OK) {
		p11_ck_err(err, errlen, "cannot open a token session", rv);
		goto done;
	}
	req.spec = pool_spec();
	req.key_id = k.id;
	req.mark = true;
	req.session_pub = true;
	kp.pub = &k.pubkey;
	kp.facts = &k.facts;
	kp.clean = true;
	if (p11_keypair_make(b, s, &req, &kp, err, errlen) != 0) {
		clean = kp.clean;
		goto out;
	}
	k.pub = kp.hpub;
	k.priv = kp.hpriv;
	pthread_mutex_lock(&b->pool_lock);
	if (b->n_pool < b->pool_target) {
		b->pool[b->n_pool++] = k;
		kept = true;
	}
	pthread_mutex_unlock(&b->pool_lock);
	if (!kept) { /* not wanted any more */
		p11_obj_destroy(b, s, k.priv);
		p11_obj_destroy(b, s, k.pub);
		stint_pubkey_free(&k.pubkey);
	}
	r = 0;
out:
	p11_session_put(b, s, clean);
done:
	pthread_mutex_lock(&b->pool_lock);
	b->pool_making[0] = '\0';
	pthread_mutex_unlock(&b->pool_lock);
	return r;
}

static void
timespec_add_ms(struct timespec *t, long ms)
{
	t->tv_sec += ms / 1000;
	t->tv_nsec += (ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

/* Caller holds pool_lock: the token is busy for a task now. */
static void
pool_busy_locked(struct p11_backend *b)
{
	clock_gettime(CLOCK_REALTIME, &b->pool_quiet);
	timespec_add_ms(&b->pool_quiet, POOL_QUIET_MS);
}

void
p11_pool_busy(struct p11_backend *b)
{
	pthread_mutex_lock(&b->pool_lock);
	pool_busy_locked(b);
	pthread_mutex_unlock(&b->pool_lock);
}

/* Caller holds pool_lock: waits for POOL_QUIET_MS without a task start or
 * end, or POOL_QUIET_MAX_MS, or stop. */
static void
pool_wait_quiet(struct p11_backend *b)
{
	struct timespec now, limit, until;

	clock_gettime(CLOCK_REALTIME, &limit);
	timespec_add_ms(&limit, POOL_QUIET_MAX_MS);
	while (!b->pool_stop) {
		clock_gettime(CLOCK_REALTIME, &now);
		until = b->pool_quiet;
		if (until.tv_sec > limit.tv_sec ||
		    (until.tv_sec == limit.tv_sec &&
		     until.tv_nsec > limit.tv_nsec))
			until = limit;
		if (now.tv_sec > until.tv_sec || (now.tv_sec == until.tv_sec &&
						  now.tv_nsec >= until.tv_nsec))
			return;
		pthread_cond_timedwait(&b->pool_cond, &b->pool_lock, &until);
	}
}

static void *
pool_main(void *arg)
{
	struct p11_backend *b = arg;
	struct timespec until;
	char err[256];
	bool failing = false;

	pthread_mutex_lock(&b->pool_lock);
	for (;;) {
		while (!b->pool_stop && b->n_pool >= b->pool_target)
			pthread_cond_wait(&b->pool_cond, &b->pool_lock);
		pool_wait_quiet(b);
		if (b->pool_stop)
			break;
		pthread_mutex_unlock(&b->pool_lock);
		err[0] = '\0';
		if (pool_fill_one(b, err, sizeof(err)) == 0) {
			failing = false;
			pthread_mutex_lock(&b->pool_lock);
			continue;
		}
		/* Task start still works by generating; retry later. */
		if (!failing)
			log_warn("backend: cannot refill the key pool: %s; "
				 "retrying every %d s",
				 err, POOL_RETRY_S);
		failing = true;
		pthread_mutex_lock(&b->pool_lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += POOL_RETRY_S;
		while (!b->pool_stop &&
		       pthread_cond_timedwait(&b->pool_cond, &b->pool_lock,
					      &until) == 0)
			;
	}
	pthread_mutex_unlock(&b->pool_lock);
	return NULL;
}

/*
 * Hands out a ready key: a pop under pool_lock, no call into the token.
 * The facts read back when the key was made still hold: CKA_SENSITIVE can
 * only be changed to true and CKA_EXTRACTABLE only to false (PKCS#11
 * 2.40, 4.9), CKA_LOCAL and CKA_NEVER_EXTRACTABLE are read-only, and key
 * material cannot be modified, so the public key read back then is still
 * the private key's. The usage flags could be changed, but only by a
 * holder of the user PIN, which only stintd has, and stintd never sets
 * attributes on keys.
 */
int
p11_key_take(struct stint_backend *base, uint32_t key_type,
	     char id[STINT_TASK_ID_MAX + 1], struct stint_pubkey *pub,
	     struct stint_key_facts *facts)
{
	struct p11_backend *b = (struct p11_backend *)base;
	struct pool_key k;
	bool got = false;

	if (p11_key_spec_find(key_type) != pool_spec())
		return -1;
	pthread_mutex_lock(&b->pool_lock);
	p11_pool_start_locked(b);
	if (b->n_pool > 0) {
		k = b->pool[--b->n_pool];
		memset(&b->pool[b->n_pool], 0, sizeof(b->pool[b->n_pool]));
		pool_busy_locked(b);
		pthread_cond_signal(&b->pool_cond); /* refill */
		got = true;
	}
	pthread_mutex_unlock(&b->pool_lock);
	if (!got)
		return -1;
	p11_cache_put_pair(b, k.id, k.priv, k.pub, CKK_EC);
	memcpy(id, k.id, sizeof(k.id));
	*pub = k.pubkey;
	*facts = k.facts;
	return 0;
}

/* True while id is a ready key in memory or being made as one. */
bool
p11_pool_holds(struct p11_backend *b, const char *id)
{
	bool held;
	size_t i;

	pthread_mutex_lock(&b->pool_lock);
	held = strcmp(b->pool_making, id) == 0;
	for (i = 0; i < b->n_pool && !held; i++)
		held = strcmp(b->pool[i].id, id) == 0;
	pthread_mutex_unlock(&b->pool_lock);
	return held;
}

void
p11_pool_stop(struct p11_backend *b)
{
	bool started;

	pthread_mutex_lock(&b->pool_lock);
	b->pool_stop = true;
	started = b->pool_started;
	pthread_cond_broadcast(&b->pool_cond);
	pthread_mutex_unlock(&b->pool_lock);
	if (started)
		pthread_join(b->pool_thread, NULL);
}

/*
 * Ready keys across a clean restart: at stop their ids go to
 * <state_dir>/ready-keys (0600, written whole and renamed into place); the
 * next start reads the file, removes it, and adopts those of its keys that
 * no task owns and that pass the task-key checks again. Only a clean stop
 * writes the file and every start removes it, so after a crash nothing is
 * adopted and the sweep destroys the keys instead: a key handed out to a
 * task start that never finished is never handed out twice.
 */
/* A token public key object for ready key k, whose public half was a
 * session object (session_pub): what the next start's p11_pool_adopt
 * reads the public key from (and then destroys). Its handle goes to
 * k->pub, so p11_pool_drain removes it with the key when saving fails. */
static CK_RV
ready_pub_create(struct p11_backend *b, CK_SESSION_HANDLE s, struct pool_key *k)
{
	CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
	CK_KEY_TYPE type = CKK_EC;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG id_len = strlen(k->id), n = 0;
	CK_ATTRIBUTE t[11];
	CK_RV rv;

	if (k->pub != CK_INVALID_HANDLE)
		return CKR_OK;
	p11_attr_add(t, &n, CKA_CLASS, &cls, sizeof(cls));
	p11_attr_add(t, &n, CKA_KEY_TYPE, &type, sizeof(type));
	p11_attr_add(t, &n, CKA_TOKEN, &yes, sizeof(yes));
	p11_attr_add(t, &n, CKA_VERIFY, &yes, sizeof(yes));
	p11_attr_add(t, &n, CKA_ENCRYPT, &no, sizeof(no));
	p11_attr_add(t, &n, CKA_WRAP, &no, sizeof(no));
	p11_attr_add(t, &n, CKA_ID, k->id, id_len);
	p11_attr_add(t, &n, CKA_LABEL, k->id, id_len);
	p11_attr_add(t, &n, CKA_SUBJECT, (void *)p11_key_mark,
		     sizeof(p11_key_mark));
	p11_attr_add(t, &n, CKA_EC_PARAMS, k->pubkey.ec_params.ptr,
		     k->pubkey.ec_params.len);
	p11_attr_add(t, &n, CKA_EC_POINT, k->pubkey.ec_point.ptr,
		     k->pubkey.ec_point.len);
	pthread_mutex_lock(&b->write_lock);
	rv = P11(b, C_CreateObject, s, t, n, &k->pub);
	pthread_mutex_unlock(&b->write_lock);
	if (rv != CKR_OK)
		k->pub = CK_INVALID_HANDLE;
	return rv;
}

/* ready_pub_create for every ready key; 0 when all have one. */
static int
ready_pubs(struct p11_backend *b)
{
	CK_SESSION_HANDLE s;
	CK_RV rv;
	size_t i;

	if ((rv = p11_session_get(b, &s)) != CKR_OK)
		return -1;
	for (i = 0; i < b->n_pool && rv == CKR_OK; i++)
		rv = ready_pub_create(b, s, &b->pool[i]);
	p11_session_put(b, s, !p11_session_broken(rv));
	if (rv != CKR_OK)
		log_warn("backend: cannot store the public key of a ready key "
			 "(%s); destroying the ready keys",
			 p11_ckr_str(rv));
	return rv == CKR_OK ? 0 : -1;
}

static int
ready_save(struct p11_backend *b)
{
	char tmp[PATH_MAX + 8], line[STINT_TASK_ID_MAX + 2];
	size_t i, len;
	int fd, ok = 1;

	if (b->ready_path[0] == '\0' ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", b->ready_path) >=
		    sizeof(tmp) ||
	    ready_pubs(b) != 0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	for (i = 0; i < b->n_pool && ok; i++) {
		len = (size_t)snprintf(line, sizeof(line), "%s\n",
				       b->pool[i].id);
		ok = write(fd, line, len) == (ssize_t)len;
	}
	ok = ok && fsync(fd) == 0;
	if (close(fd) != 0 || !ok || rename(tmp, b->ready_path) != 0) {
		log_warn("backend: cannot keep the ready keys in %s (%s); "
			 "destroying them",
			 b->ready_path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* The ids saved by the last clean stop (malloc'ed, n entries), and the file
 * removed: nothing when it cannot be removed, so it is never read twice. */
char (*p11_ready_load(struct p11_backend *b, size_t *n))[STINT_TASK_ID_MAX + 1]
{
	char(*ids)[STINT_TASK_ID_MAX + 1] = NULL;
	char line[128];
	size_t len;
	FILE *f;

	*n = 0;
	if (b->ready_path[0] == '\0' ||
	    (f = fopen(b->ready_path, "re")) == NULL)
		return NULL;
	if (unlink(b->ready_path) != 0) {
		log_warn("backend: cannot remove %s (%s); not adopting the "
			 "ready keys it lists",
			 b->ready_path, strerror(errno));
		fclose(f);
		return NULL;
	}
	ids = calloc(STINT_KEY_POOL_MAX, sizeof(*ids));
	while (ids != NULL && *n < STINT_KEY_POOL_MAX &&
	       fgets(line, sizeof(line), f) != NULL) {
		len = strcspn(line, "\n");
		line[len] = '\0';
		if (stint_task_id_shaped(line, len))
			memcpy(ids[(*n)++], line, len + 1);
	}
	fclose(f);
	return ids;
}

bool
p11_ready_listed(char (*ids)[STINT_TASK_ID_MAX + 1], size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return true;
	return false;
}

/* Adopts the key pair under id as a ready key if it still is one: one
 * private and one public ec-p256 key, sign-only, never extractable. */
bool
p11_pool_adopt(struct p11_backend *b, const char *id)
{
	static const CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY;
	static const CK_OBJECT_CLASS pub_cls = CKO_PUBLIC_KEY;
	CK_OBJECT_HANDLE hpriv[2], hpub[2];
	CK_KEY_TYPE type = 0;
	CK_ATTRIBUTE a = {CKA_KEY_TYPE, &type, sizeof(type)};
	struct pool_key k;
	CK_SESSION_HANDLE s;
	CK_ULONG npriv, npub;
	char why[256];
	bool ok;

	memset(&k, 0, sizeof(k));
	if (p11_session_get(b, &s) != CKR_OK)
		return false;
	ok = p11_find_by_id(b, s, id, &priv_cls, hpriv, 2, &npriv) == CKR_OK &&
	     p11_find_by_id(b, s, id, &pub_cls, hpub, 2, &npub) == CKR_OK &&
	     npriv == 1 && npub == 1 &&
	     P11(b, C_GetAttributeValue, s, hpriv[0], &a, 1) == CKR_OK &&
	     type == CKK_EC &&
	     p11_facts_read(b, s, hpriv[0], &k.facts) == CKR_OK &&
	     p11_facts_violation(&k.facts) == NULL &&
	     p11_pubkey_read(b, s, hpub[0], pool_spec(), &k.pubkey, why,
			     sizeof(why)) == 0;
	p11_session_put(b, s, true);
	if (!ok) {
		stint_pubkey_free(&k.pubkey);
		return false;
	}
	k.priv = hpriv[0];
	k.pub = hpub[0];
	/* Read: the ready key goes on with its private key object only, as
	 * a freshly made one (session_pub); the public object kept across the
	 * stop (ready_pub_create) would only cost its task end a destroy. */
	if (p11_session_get(b, &s) == CKR_OK) {
		if (p11_obj_destroy(b, s, k.pub) == CKR_OK)
			k.pub = CK_INVALID_HANDLE;
		p11_session_put(b, s, true);
	}
	p11_cache_drop(b, id); /* what the sweep noted; key_take puts it */
	memcpy(k.id, id, strlen(id) + 1);
	pthread_mutex_lock(&b->pool_lock);
	ok = b->n_pool < b->pool_target;
	if (ok)
		b->pool[b->n_pool++] = k;
	pthread_mutex_unlock(&b->pool_lock);
	if (!ok)
		stint_pubkey_free(&k.pubkey);
	return ok;
}

/* At close, after p11_pool_stop(): a stopped stintd leaves no unused ready key
 * in the token (the sweep at the next start covers a crash). */
void
p11_pool_drain(struct p11_backend *b)
{
	CK_SESSION_HANDLE s;
	CK_RV rv = CKR_OK;
	bool have_session;
	size_t i;

	if (b->n_pool == 0)
		return;
	if (b->f != NULL && ready_save(b) == 0) {
		stint_debug("backend",
			    "key pool: %zu ready keys kept for the "
			    "next start",
			    b->n_pool);
		for (i = 0; i < b->n_pool; i++)
			stint_pubkey_free(&b->pool[i].pubkey);
		b->n_pool = 0;
		return;
	}
	have_session = b->f != NULL && (rv = p11_session_get(b, &s)) == CKR_OK;
	for (i = 0; i < b->n_pool; i++) {
		if (have_session &&
		    ((rv = p11_obj_destroy(b, s, b->pool[i].priv)) == CKR_OK ||
		     rv == CKR_OBJECT_HANDLE_INVALID))
			rv = p11_obj_destroy(b, s, b->pool[i].pub);
		if (rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID)
			log_warn("backend: cannot remove unused ready key %s "
				 "(%s); the next start removes it",
				 b->pool[i].id, p11_ckr_str(rv));
		stint_pubkey_free(&b->pool[i].pubkey);
	}
	if (have_session)
		p11_session_put(b, s, !p11_session_broken(rv));
	stint_debug("backend", "key pool: %zu unused ready keys removed",
		    b->n_pool);
	b->n_pool = 0;
}
