/* The unit tests' store fixture: a fresh state.db in its own temp dir per
 * test, agents and tasks to put in it, and the SIGN gate through its API. */

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "tests/unit/store_fixture.h"

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512];

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/stint-test-store.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
	if (stint_store_open(f->path, &f->s, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

int
teardown(void **state)
{
	struct fixture *f = *state;
	int r;

	stint_store_close(f->s);
	r = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return r;
}

void
reopen(struct fixture *f)
{
	char err[512];

	stint_store_close(f->s);
	f->s = NULL;
	if (stint_store_open(f->path, &f->s, err, sizeof(err)) != 0)
		fail_msg("reopen: %s", err);
}

struct stint_agent
make_agent(const char *name, uint32_t uid, int64_t gid)
{
	struct stint_agent a;

	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", name);
	a.uid = uid;
	a.gid = gid;
	a.max_ttl = 3600;
	a.mechs[0] = MECH_ECDSA;
	a.mechs[1] = 0x1044; /* CKM_ECDSA_SHA256 */
	a.n_mechs = 2;
	a.created = NOW - 100;
	return a;
}

void
add_agent(struct fixture *f, const char *name, uint32_t uid, int64_t gid)
{
	struct stint_agent a = make_agent(name, uid, gid);
	char err[256] = "";

	if (stint_store_agent_add(f->s, &a, NULL, err, sizeof(err)) != 0)
		fail_msg("agent add %s: %s", name, err);
}

uint8_t spki_bytes[] = {0x30, 0x59, 0x30, 0x13, 0x00, 0xff};
uint8_t point_bytes[] = {0x04, 0x41, 0x04, 0x01, 0x02};
uint8_t params_bytes[] = {0x06, 0x08, 0x2a, 0x86};

/* A live EC task; the pub fields borrow static bytes (insert copies). */
struct stint_task
make_task(const char *id, const char *agent, uint64_t max_sigs)
{
	struct stint_task t;

	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "%s", id);
	snprintf(t.agent, sizeof(t.agent), "%s", agent);
	t.key_type = STINT_KEY_EC_P256;
	t.state = STINT_TASK_LIVE;
	t.created = NOW - 10;
	t.not_after = NOW + 600;
	t.max_sigs = max_sigs;
	snprintf(t.intent, sizeof(t.intent), "refund order 1234");
	t.mechs[0] = MECH_ECDSA;
	t.n_mechs = 1;
	t.pub.spki.ptr = spki_bytes;
	t.pub.spki.len = sizeof(spki_bytes);
	t.pub.ec_point.ptr = point_bytes;
	t.pub.ec_point.len = sizeof(point_bytes);
	t.pub.ec_params.ptr = params_bytes;
	t.pub.ec_params.len = sizeof(params_bytes);
	return t;
}

void
add_task(struct fixture *f, const char *id, const char *agent,
	 uint64_t max_sigs)
{
	struct stint_task t = make_task(id, agent, max_sigs);
	char err[256] = "";

	if (stint_store_task_insert(f->s, &t, err, sizeof(err)) != 0)
		fail_msg("task insert %s: %s", id, err);
}

/* One SIGN gate through the gate's API at a precise time; the call itself
 * must succeed and fill the whole result. */
struct stint_gate_result
gate_at(struct fixture *f, uid_t uid, gid_t gid, const char *id, uint64_t mech,
	struct timespec now)
{
	struct stint_gate_req req = {.peer = PEER(uid, gid),
				     .task_id = id,
				     .mech = mech,
				     .now = now};
	struct stint_gate_result res;

	memset(&res, 0xa5, sizeof(res));
	assert_int_equal(stint_gate_sign(f->s, &req, &res), STINT_STORE_OK);
	assert_non_null(res.reason);
	return res;
}

struct stint_gate_result
sign_gate(struct fixture *f, uid_t uid, gid_t gid, const char *id,
	  uint64_t mech, int64_t now)
{
	struct timespec ts = {.tv_sec = (time_t)now, .tv_nsec = 0};

	return gate_at(f, uid, gid, id, mech, ts);
}

int
gate(struct fixture *f, uid_t uid, gid_t gid, const char *id, uint64_t mech,
     int64_t now, const char **reason)
{
	struct stint_gate_result res = sign_gate(f, uid, gid, id, mech, now);

	*reason = res.reason;
	return res.decision;
}

uint64_t
used_sigs(struct fixture *f, const char *id)
{
	struct stint_task t;
	uint64_t n;

	assert_int_equal(stint_store_task_get(f->s, id, &t), 0);
	n = t.used_sigs;
	stint_task_clear(&t);
	return n;
}

int64_t
db_used_sigs(struct fixture *f, const char *id)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t n;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT used_sigs FROM tasks "
					    "WHERE id = ?1",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

struct stint_gate_stats
gate_stats(struct fixture *f)
{
	struct stint_gate_stats st;

	memset(&st, 0xa5, sizeof(st));
	stint_gate_stats_get(f->s, &st);
	return st;
}
