/* The unit tests' store fixture (store_fixture.c), shared by test_store,
 * test_gate and test_budget. setup/teardown are cmocka fixtures: *state is
 * a struct fixture with a fresh store. */
#ifndef STINT_TESTS_UNIT_STORE_FIXTURE_H
#define STINT_TESTS_UNIT_STORE_FIXTURE_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "attest/gate.h"
#include "attest/store.h"

#define NOW        1700000000
#define MECH_ECDSA 0x1041u
#define MECH_RSA   0x1u

struct fixture {
	char dir[64];
	char path[128];
	struct stint_store *s;
};

/* The public key bytes make_task borrows. */
extern uint8_t spki_bytes[6], point_bytes[5], params_bytes[4];

int setup(void **state);
int teardown(void **state);
/* Closes and opens the store again (a stintd restart). */
void reopen(struct fixture *f);
/* A peer with only uid and gid known (no facts): what a peer of an
 * agent without selectors shows. */
#define PEER(u, g) (&(struct stint_peer){.uid = (u), .gid = (g), .exe = "?"})

struct stint_agent make_agent(const char *name, uint32_t uid, int64_t gid);
void add_agent(struct fixture *f, const char *name, uint32_t uid, int64_t gid);
/* A live EC task for agent, NOW - 10 to NOW + 600, ECDSA only. */
struct stint_task make_task(const char *id, const char *agent,
			    uint64_t max_sigs);
void add_task(struct fixture *f, const char *id, const char *agent,
	      uint64_t max_sigs);
struct stint_gate_result gate_at(struct fixture *f, uid_t uid, gid_t gid,
				 const char *id, uint64_t mech,
				 struct timespec now);
struct stint_gate_result sign_gate(struct fixture *f, uid_t uid, gid_t gid,
				   const char *id, uint64_t mech, int64_t now);
/* The decision; *reason its text. */
int gate(struct fixture *f, uid_t uid, gid_t gid, const char *id, uint64_t mech,
	 int64_t now, const char **reason);
/* used_sigs as the store reads it (pending counts included). */
uint64_t used_sigs(struct fixture *f, const char *id);
/* used_sigs as the row in state.db holds it, read through a connection of
 * its own (with budget blocks: the reservation mark while live). */
int64_t db_used_sigs(struct fixture *f, const char *id);
/* The gate's counters now (every field written over a 0xa5 fill). */
struct stint_gate_stats gate_stats(struct fixture *f);

#endif
