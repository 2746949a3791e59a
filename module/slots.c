/*
 * One slot per agent the calling process matches (ident). stintd's HELLO
 * names the lowest agent and, when the process matches several, all of
 * them (STINT_K_AGENT_NAMES). Each name gets a slot id the first time it
 * is seen, never reused while the module is initialised, so a process
 * that matches one agent sees slot 1 as before. A slot whose agent the
 * process no longer matches stays, without its token.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "module/module.h"

struct slot {
	char agent[STINT_NAME_MAX + 1];
	bool present; /* in the last HELLO */
};

static struct slot g_slots[STINT_SLOTS_MAX];
static size_t g_n_slots;
static bool g_multi; /* the last HELLO named several agents */

/* Lock held. */
static struct slot *
slot_named(const char *agent, bool add)
{
	size_t i;

	for (i = 0; i < g_n_slots; i++)
		if (strcmp(g_slots[i].agent, agent) == 0)
			return &g_slots[i];
	if (!add || g_n_slots == STINT_SLOTS_MAX)
		return NULL;
	snprintf(g_slots[g_n_slots].agent, sizeof(g_slots[0].agent), "%s",
		 agent);
	return &g_slots[g_n_slots++];
}

CK_RV
slots_probe(void)
{
	struct stint_hello_rep hello;
	struct slot *s;
	size_t i;
	int r;

	r = client_hello(&hello);
	mod_lock();
	for (i = 0; i < g_n_slots; i++)
		g_slots[i].present = false;
	g_multi = r == 0 && hello.n_names > 1;
	if (r == 0 && hello.agent[0] != '\0' &&
	    (s = slot_named(hello.agent, true)) != NULL)
		s->present = true;
	for (i = 0; g_multi && i < hello.n_names; i++) {
		if ((s = slot_named(hello.names[i], true)) != NULL)
			s->present = true;
		else
			stint_debug("module",
				    "agent %s: no slot left (at most %d)",
				    hello.names[i], STINT_SLOTS_MAX);
	}
	mod_unlock();
	return r == 0 ? CKR_OK : CKR_DEVICE_ERROR;
}

bool
slot_valid(CK_SLOT_ID id)
{
	bool ok;

	mod_lock();
	ok = id == STINT_SLOT_ID || (id >= 1 && id <= g_n_slots);
	mod_unlock();
	return ok;
}

bool
slot_agent_locked(CK_SLOT_ID id, char agent[STINT_NAME_MAX + 1], bool *multi)
{
	if (id < 1 || id > g_n_slots || !g_slots[id - 1].present)
		return false;
	memcpy(agent, g_slots[id - 1].agent, STINT_NAME_MAX + 1);
	if (multi != NULL)
		*multi = g_multi;
	return true;
}

bool
slot_agent(CK_SLOT_ID id, char agent[STINT_NAME_MAX + 1], bool *multi)
{
	bool ok;

	mod_lock();
	ok = slot_agent_locked(id, agent, multi);
	mod_unlock();
	return ok;
}

void
slot_gone(CK_SLOT_ID id)
{
	mod_lock();
	if (id >= 1 && id <= g_n_slots)
		g_slots[id - 1].present = false;
	mod_unlock();
}

size_t
slots_list(CK_SLOT_ID *ids, size_t cap, bool present_only)
{
	size_t i, n = 0;

	mod_lock();
	for (i = 0; i < g_n_slots; i++)
		if (!present_only || g_slots[i].present) {
			if (n < cap)
				ids[n] = i + 1;
			n++;
		}
	/* No agent seen yet: slot 1 exists, without a token. */
	if (g_n_slots == 0 && !present_only) {
		if (cap > 0)
			ids[0] = STINT_SLOT_ID;
		n = 1;
	}
	mod_unlock();
	return n;
}

void
slots_reset(void)
{
	memset(g_slots, 0, sizeof(g_slots));
	g_n_slots = 0;
	g_multi = false;
}
