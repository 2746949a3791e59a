/*
 * Operators declared in files (prov): [stintd] operators_dir (default
 * operators.d beside stint.conf), one "[operator NAME]" section each in
 * *.conf files (uid, agents = a, b, max_ttl), reconciled with state.db as
 * agents.d is: at start, on SIGHUP and on `stint reload`, after the agents.
 * The same strict FILE:LINE errors and owner/mode checks as agents.d.
 */

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attest/agents_dir.h"
#include "attest/audit.h"
#include "attest/audit_pending.h"
#include "attest/daemon.h"
#include "attest/decl_dir.h"
#include "attest/operator.h"
#include "common/duration.h"
#include "common/ident.h"
#include "common/log.h"

#define OP_FILE_MAX   (1024 * 1024)
#define OPERATORS_MAX 1024

enum op_key { O_UID, O_AGENTS, O_MAX_TTL, O_N };
static const char *const op_keys[O_N] = {"uid", "agents", "max_ttl"};

struct ops_decl {
	stint_operator *v;
	int *line;
	size_t n;
};

struct op_ctx {
	struct stint_ini ini; /* first: the section callback gets it */
	const struct stint_config *cfg;
	struct ops_decl *decl;
	stint_operator *cur;
	int key_line[O_N];
};

static stint_operator *
decl_find(const struct ops_decl *decl, const char *name, size_t *at)
{
	for (size_t i = 0; i < decl->n; i++)
		if (strcmp(decl->v[i].name, name) == 0) {
			if (at != NULL)
				*at = i;
			return &decl->v[i];
		}
	return NULL;
}

static void
decl_free(struct ops_decl *decl)
{
	free(decl->v);
	free(decl->line);
	memset(decl, 0, sizeof(*decl));
}

static void
finish_op(struct op_ctx *c)
{
	size_t at;

	if (c->cur == NULL || c->ini.err_line != 0 ||
	    decl_find(c->decl, c->cur->name, &at) == NULL)
		return;
	c->ini.lineno = c->decl->line[at];
	if (c->key_line[O_UID] == 0)
		stint_ini_error(&c->ini,
				"operator '%s' needs a uid: add uid = UID or "
				"USER",
				c->cur->name);
	else if (c->key_line[O_AGENTS] == 0)
		stint_ini_error(&c->ini,
				"operator '%s' needs agents: add agents = "
				"NAME[, NAME...]",
				c->cur->name);
}

static bool
op_section_ok(struct stint_ini *ini, const char *name)
{
	struct op_ctx *c = (struct op_ctx *)ini;
	stint_operator *o, *v;
	int line = ini->lineno, *l;
	size_t at;

	finish_op(c);
	ini->lineno = line;
	c->cur = NULL;
	if (strncmp(name, "operator ", 9) != 0 || !stint_name_ok(name + 9)) {
		stint_ini_error(ini,
				"bad section [%s]: use [operator NAME], NAME "
				"of 1-64 characters of A-Z a-z 0-9 . _ -",
				name);
		return false;
	}
	if ((o = decl_find(c->decl, name + 9, &at)) != NULL) {
		stint_ini_error(ini,
				"operator '%s' is already declared at %s:%d: "
				"keep one",
				name + 9, o->source, c->decl->line[at]);
		return false;
	}
	if (c->decl->n >= OPERATORS_MAX ||
	    (v = realloc(c->decl->v, (c->decl->n + 1) * sizeof(*v))) == NULL) {
		stint_ini_error(ini, "too many operators (at most %d)",
				OPERATORS_MAX);
		return false;
	}
	c->decl->v = v;
	if ((l = realloc(c->decl->line, (c->decl->n + 1) * sizeof(*l))) ==
	    NULL) {
		stint_ini_error(ini, "out of memory");
		return false;
	}
	c->decl->line = l;
	o = &c->decl->v[c->decl->n];
	memset(o, 0, sizeof(*o));
	snprintf(o->name, sizeof(o->name), "%s", name + 9);
	snprintf(o->source, sizeof(o->source), "%s", ini->path);
	c->decl->line[c->decl->n++] = line;
	c->cur = o;
	memset(c->key_line, 0, sizeof(c->key_line));
	return true;
}

static int
set_uid(struct op_ctx *c, const char *value)
{
	struct passwd *pw;
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(value, &end, 10);
	if (value[0] >= '0' && value[0] <= '9' && *end == '\0' && errno == 0 &&
	    v < 0xffffffffULL)
		c->cur->uid = (uint32_t)v;
	else if ((pw = getpwnam(value)) != NULL)
		c->cur->uid = (uint32_t)pw->pw_uid;
	else {
		stint_ini_error(&c->ini, "uid '%s': no such user or uid",
				value);
		return 0;
	}
	if (c->cur->uid == 0 || c->cur->uid == (uint32_t)geteuid()) {
		stint_ini_error(&c->ini,
				"uid %u administers stintd already: an "
				"operator needs a uid of its own",
				c->cur->uid);
		return 0;
	}
	return 1;
}

static int
set_agents(struct op_ctx *c, const char *value)
{
	char copy[STINT_OPERATOR_AGENTS_MAX * (STINT_NAME_MAX + 2)];
	char *tok, *save = NULL;
	stint_operator *o = c->cur;
	size_t i;

	if (strlen(value) >= sizeof(copy)) {
		stint_ini_error(&c->ini,
				"agents is too long (at most %d names)",
				STINT_OPERATOR_AGENTS_MAX);
		return 0;
	}
	memcpy(copy, value, strlen(value) + 1);
	for (tok = strtok_r(copy, ", ", &save); tok != NULL;
	     tok = strtok_r(NULL, ", ", &save)) {
		if (!stint_name_ok(tok)) {
			stint_ini_error(&c->ini, "bad agent name '%s'", tok);
			return 0;
		}
		for (i = 0; i < o->n_agents; i++)
			if (strcmp(o->agents[i], tok) == 0) {
				stint_ini_error(&c->ini,
						"agent '%s' is named twice",
						tok);
				return 0;
			}
		if (o->n_agents == STINT_OPERATOR_AGENTS_MAX) {
			stint_ini_error(&c->ini, "too many agents (at most %d)",
					STINT_OPERATOR_AGENTS_MAX);
			return 0;
		}
		snprintf(o->agents[o->n_agents++], sizeof(o->agents[0]), "%s",
			 tok);
	}
	if (o->n_agents == 0) {
		stint_ini_error(&c->ini, "agents needs at least one name");
		return 0;
	}
	return 1;
}

static int
op_handler(void *user, const char *section, const char *name, const char *value)
{
	struct op_ctx *c = user;
	char max[32];
	int k;

	(void)section;
	k = stint_decl_key(&c->ini, "operator", c->cur != NULL, op_keys, O_N,
			   c->key_line, "uid, agents or max_ttl", name, value);
	if (k < 0)
		return 0;
	if (k == O_UID)
		return set_uid(c, value);
	if (k == O_AGENTS)
		return set_agents(c, value);
	if (stint_duration_parse(value, &c->cur->max_ttl) != 0 ||
	    c->cur->max_ttl == 0 || c->cur->max_ttl > c->cfg->max_ttl) {
		stint_duration_format(c->cfg->max_ttl, max, sizeof(max));
		stint_ini_error(&c->ini,
				"bad max_ttl '%s': use a duration such as 15m "
				"or 1h, at most stintd's max_ttl (%s)",
				value, max);
		return 0;
	}
	return 1;
}

static void
op_file_start(struct stint_ini *ini)
{
	struct op_ctx *c = (struct op_ctx *)ini;

	c->cur = NULL;
	memset(c->key_line, 0, sizeof(c->key_line));
}

static void
op_file_end(struct stint_ini *ini)
{
	finish_op((struct op_ctx *)ini);
}

static int
ops_load(const struct stint_config *cfg, struct ops_decl *out, char *err,
	 size_t errlen)
{
	struct op_ctx c = {.cfg = cfg, .decl = out};
	const struct stint_decl_dir dd = {.key = "operators_dir",
					  .dir = cfg->operators_dir,
					  .file_max = OP_FILE_MAX,
					  .ini = &c.ini,
					  .section_ok = op_section_ok,
					  .handler = op_handler,
					  .file_start = op_file_start,
					  .file_end = op_file_end};

	memset(out, 0, sizeof(*out));
	if (stint_decl_dir_load(&dd, err, errlen) != 0) {
		decl_free(out);
		return -1;
	}
	return 0;
}

int
stint_operators_dir_check(const struct stint_config *cfg, char *err,
			  size_t errlen)
{
	struct ops_decl decl;

	if (ops_load(cfg, &decl, err, errlen) != 0)
		return -1;
	decl_free(&decl);
	return 0;
}

static bool
op_same(const stint_operator *a, const stint_operator *b)
{
	size_t i;

	if (a->uid != b->uid || a->max_ttl != b->max_ttl ||
	    a->n_agents != b->n_agents || strcmp(a->source, b->source) != 0)
		return false;
	for (i = 0; i < a->n_agents; i++)
		if (strcmp(a->agents[i], b->agents[i]) != 0)
			return false;
	return true;
}

static void
audit_op_reconcile(struct stintd *d, const stint_operator *o, const char *what)
{
	char detail[STINT_SOURCE_MAX + STINT_NAME_MAX + 128];
	struct stint_audit_event ev = {.event = "operator-reconcile",
				       .decision = "allow",
				       .detail = detail};

	snprintf(detail, sizeof(detail),
		 "%s operator=%s file=%s uid=%u max_ttl=%llus", what, o->name,
		 o->source, o->uid, (unsigned long long)o->max_ttl);
	if (stint_audit_append_in_order(d->audit, &ev) != 0)
		log_err("audit log write failed for operator-reconcile (%s)",
			o->name);
}

static enum stint_reconcile_action
op_apply(struct stintd *d, bool dry, stint_operator *want, int line,
	 const stint_operator *have)
{
	char err[512];
	int r;

	if (have != NULL && have->source[0] == '\0') {
		log_err("%s:%d: operator '%s' exists and was added with the "
			"CLI: remove it ('stint operator remove %s') to have "
			"the file manage it, or rename it here",
			want->source, line, want->name, want->name);
		return STINT_RC_SKIPPED;
	}
	if (have != NULL && op_same(want, have))
		return STINT_RC_UNCHANGED;
	if (dry)
		return have == NULL ? STINT_RC_ADDED : STINT_RC_UPDATED;
	if (have == NULL) {
		want->created = (uint64_t)stintd_now();
		r = stint_store_operator_add(d->store, want, err, sizeof(err));
	} else
		r = stint_store_operator_update(d->store, want, err,
						sizeof(err));
	if (r != STINT_STORE_OK) {
		log_err("%s:%d: operator '%s' not %s: %s", want->source, line,
			want->name, have == NULL ? "added" : "updated", err);
		return STINT_RC_SKIPPED;
	}
	audit_op_reconcile(d, want, have == NULL ? "added" : "updated");
	log_info("operators.d: operator %s %s (%s)", want->name,
		 have == NULL ? "added" : "updated", want->source);
	return have == NULL ? STINT_RC_ADDED : STINT_RC_UPDATED;
}

static const stint_operator *
have_find(const stint_operator *have, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(have[i].name, name) == 0)
			return &have[i];
	return NULL;
}

int
stintd_operators_reconcile(struct stintd *d, bool dry,
			   struct stint_reconcile_report *rep, char *err,
			   size_t errlen)
{
	struct ops_decl decl;
	stint_operator *have = NULL, gone;
	enum stint_reconcile_action act;
	size_t n = 0, i;
	int changed = 0;

	if (ops_load(&d->cfg, &decl, err, errlen) != 0)
		return -1;
	if (stint_store_operator_list(d->store, &have, &n) != STINT_STORE_OK) {
		snprintf(err, errlen, "operator store unavailable");
		decl_free(&decl);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (have[i].source[0] == '\0' ||
		    decl_find(&decl, have[i].name, NULL) != NULL)
			continue;
		if (!dry &&
		    stint_store_operator_remove(d->store, have[i].name,
						&gone) != STINT_STORE_OK)
			act = STINT_RC_SKIPPED;
		else
			act = STINT_RC_REMOVED;
		if (!dry && act == STINT_RC_REMOVED) {
			audit_op_reconcile(d, &have[i], "removed");
			log_info("operators.d: operator %s removed (%s)",
				 have[i].name, have[i].source);
		}
		changed += act == STINT_RC_REMOVED;
		stint_reconcile_report_add(rep, true, have[i].name,
					   have[i].source, act);
	}
	for (i = 0; i < decl.n; i++) {
		act = op_apply(d, dry, &decl.v[i], decl.line[i],
			       have_find(have, n, decl.v[i].name));
		changed += act != STINT_RC_UNCHANGED && act != STINT_RC_SKIPPED;
		stint_reconcile_report_add(rep, true, decl.v[i].name,
					   decl.v[i].source, act);
	}
	free(have);
	decl_free(&decl);
	if (!dry && stintd_operators_sync(d) != 0)
		log_err("operators.d: the admin.sock uid set could not be "
			"rebuilt (out of memory?)");
	return changed;
}
