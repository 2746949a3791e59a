/*
 * Agents declared in files (prov): parsing with stint.conf's INI reader
 * (config.h). Reconciling is agents_reconcile.c.
 */

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/agents_dir.h"
#include "attest/decl_dir.h"
#include "attest/delegate.h"
#include "attest/peer.h"
#include "common/duration.h"
#include "common/ident.h"
#include "common/mechanism.h"

#define AGENT_FILE_MAX (1024 * 1024)
#define AGENTS_MAX     4096

enum agent_key {
	A_UID,
	A_GID,
	A_MAX_TTL,
	A_MECHANISMS,
	A_EXE,
	A_EXE_SHA256,
	A_CGROUP,
	A_UNIT,
	A_LSM_LABEL,
	A_AUDIENCES,
	A_DELEGATE_TO, /* deleg */
	A_MAX_DEPTH,
	A_N,
};

static const char *const agent_keys[A_N] = {
	[A_UID] = "uid",
	[A_GID] = "gid",
	[A_MAX_TTL] = "max_ttl",
	[A_MECHANISMS] = "mechanisms",
	[A_EXE] = "exe",
	[A_EXE_SHA256] = "exe_sha256",
	[A_CGROUP] = "cgroup",
	[A_UNIT] = "unit",
	[A_LSM_LABEL] = "lsm_label",
	[A_AUDIENCES] = "audiences",
	[A_DELEGATE_TO] = "delegate_to",
	[A_MAX_DEPTH] = "max_depth",
};

struct file_ctx {
	struct stint_ini ini; /* first: the section callback gets it */
	const struct stint_config *cfg;
	struct stint_agents_decl *decl;
	struct stint_agent *cur; /* NULL before the first section */
	int key_line[A_N];
};

static void
decl_clear(struct stint_agents_decl *decl)
{
	free(decl->v);
	free(decl->line);
	memset(decl, 0, sizeof(*decl));
}

void
stint_agents_decl_free(struct stint_agents_decl *decl)
{
	decl_clear(decl);
}

struct stint_agent *
stint_agents_decl_find(const struct stint_agents_decl *decl, const char *name,
		       size_t *at)
{
	for (size_t i = 0; i < decl->n; i++)
		if (strcmp(decl->v[i].name, name) == 0) {
			if (at != NULL)
				*at = i;
			return &decl->v[i];
		}
	return NULL;
}

/* The section that just ended: what no single key can tell. */
static void
finish_agent(struct file_ctx *c)
{
	size_t at;

	if (c->cur == NULL || c->ini.err_line != 0)
		return;
	if (!stint_agents_decl_find(c->decl, c->cur->name, &at))
		return;
	if (c->key_line[A_UID] == 0) {
		c->ini.lineno = c->decl->line[at];
		stint_ini_error(&c->ini,
				"agent '%s' needs a uid: add uid = UID or "
				"USER",
				c->cur->name);
	}
}

static int
decl_grow(struct stint_agents_decl *decl)
{
	struct stint_agent *v;
	int *line;

	if (decl->n >= AGENTS_MAX)
		return -1;
	if ((v = realloc(decl->v, (decl->n + 1) * sizeof(*v))) == NULL)
		return -1;
	decl->v = v;
	if ((line = realloc(decl->line, (decl->n + 1) * sizeof(*line))) == NULL)
		return -1;
	decl->line = line;
	return 0;
}

/* "[agent NAME]": a new declaration (every section is one). */
static bool
agent_section_ok(struct stint_ini *ini, const char *name)
{
	struct file_ctx *c = (struct file_ctx *)ini;
	struct stint_agent *a;
	size_t at;
	int line = ini->lineno;

	finish_agent(c);
	ini->lineno = line;
	c->cur = NULL;
	if (strncmp(name, "agent ", 6) != 0 || !stint_name_ok(name + 6)) {
		stint_ini_error(ini,
				"bad section [%s]: use [agent NAME], NAME of "
				"1-64 characters of A-Z a-z 0-9 . _ -",
				name);
		return false;
	}
	if ((a = stint_agents_decl_find(c->decl, name + 6, &at)) != NULL) {
		stint_ini_error(ini,
				"agent '%s' is already declared at %s:%d: "
				"keep one",
				name + 6, a->source, c->decl->line[at]);
		return false;
	}
	if (decl_grow(c->decl) != 0) {
		stint_ini_error(ini, "too many agents (at most %d)",
				AGENTS_MAX);
		return false;
	}
	a = &c->decl->v[c->decl->n];
	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", name + 6);
	snprintf(a->source, sizeof(a->source), "%s", ini->path);
	a->gid = -1;
	a->max_ttl = c->cfg->max_ttl;
	c->decl->line[c->decl->n++] = line;
	c->cur = a;
	memset(c->key_line, 0, sizeof(c->key_line));
	return true;
}

static int
parse_id(const char *s, bool group, uint32_t *id)
{
	struct passwd *pw;
	struct group *gr;
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (s[0] >= '0' && s[0] <= '9' && *end == '\0' && errno == 0 &&
	    v < 0xffffffffULL) {
		*id = (uint32_t)v;
		return 0;
	}
	if (group) {
		if ((gr = getgrnam(s)) == NULL)
			return -1;
		*id = (uint32_t)gr->gr_gid;
	} else {
		if ((pw = getpwnam(s)) == NULL)
			return -1;
		*id = (uint32_t)pw->pw_uid;
	}
	return 0;
}

static int
set_mechs(struct file_ctx *c, const char *value)
{
	const struct stint_mech *m;
	char copy[512], *tok, *save = NULL;
	struct stint_agent *a = c->cur;
	size_t i;

	if (strlen(value) >= sizeof(copy)) {
		stint_ini_error(&c->ini, "mechanisms is too long");
		return 0;
	}
	memcpy(copy, value, strlen(value) + 1);
	a->n_mechs = 0;
	for (tok = strtok_r(copy, ", ", &save); tok != NULL;
	     tok = strtok_r(NULL, ", ", &save)) {
		if ((m = stint_mech_by_name(tok)) == NULL) {
			stint_ini_error(&c->ini,
					"unknown mechanism '%s': see 'stint "
					"agent add --help' for the names",
					tok);
			return 0;
		}
		for (i = 0; i < a->n_mechs && a->mechs[i] != m->mech; i++)
			;
		if (i < a->n_mechs)
			continue;
		if (a->n_mechs == STINT_MECHS_MAX) {
			stint_ini_error(&c->ini, "too many mechanisms");
			return 0;
		}
		a->mechs[a->n_mechs++] = m->mech;
	}
	if (a->n_mechs == 0) {
		stint_ini_error(&c->ini, "mechanisms needs at least one name");
		return 0;
	}
	return 1;
}

/* "a, b": the names without blanks, as `agent add --audience a,b`. */
static int
set_audiences(struct file_ctx *c, const char *value)
{
	char copy[STINT_AUDIENCES_TEXT_MAX + 64], *tok, *save = NULL;
	char *dst = c->cur->audiences;
	const char *why;

	if (strlen(value) >= sizeof(copy)) {
		stint_ini_error(&c->ini,
				"audiences is too long (at most %d "
				"names)",
				STINT_AUDIENCES_MAX);
		return 0;
	}
	memcpy(copy, value, strlen(value) + 1);
	dst[0] = '\0';
	for (tok = strtok_r(copy, ", ", &save); tok != NULL;
	     tok = strtok_r(NULL, ", ", &save)) {
		if (stint_audiences_add(dst, sizeof(c->cur->audiences), tok) !=
		    0) {
			stint_ini_error(&c->ini,
					"audiences is too long (at "
					"most %d names)",
					STINT_AUDIENCES_MAX);
			return 0;
		}
	}
	if ((why = stint_audiences_check(dst)) != NULL || dst[0] == '\0') {
		stint_ini_error(&c->ini, "bad audiences '%s': %s", value,
				why != NULL ? why : "give at least one name");
		return 0;
	}
	return 1;
}

/* "a, b" or max_depth = N: checked as `agent add --delegate-to a,b
 * --max-depth N` is (stint_delegate_agent_set), the names joined by
 * commas without blanks. */
static int
set_delegation(struct file_ctx *c, enum agent_key k, const char *value)
{
	struct stint_agent_add_req ar;
	struct stint_agent tmp;
	char copy[STINT_DELEGATE_TO_MAX + 64], *tok, *save = NULL, *end;
	const char *why;
	unsigned long long v;
	size_t len = 0, n;

	memset(&ar, 0, sizeof(ar));
	if (k == A_MAX_DEPTH) {
		errno = 0;
		v = strtoull(value, &end, 10);
		if (value[0] < '0' || value[0] > '9' || *end != '\0' ||
		    errno != 0 || v > STINT_DEPTH_MAX) {
			stint_ini_error(&c->ini,
					"bad max_depth '%s': a number from 0 "
					"to %d",
					value, STINT_DEPTH_MAX);
			return 0;
		}
		ar.max_depth = (uint32_t)v;
	} else {
		if (strlen(value) >= sizeof(copy)) {
			stint_ini_error(&c->ini,
					"delegate_to is too long (at most %d "
					"bytes)",
					STINT_DELEGATE_TO_MAX);
			return 0;
		}
		memcpy(copy, value, strlen(value) + 1);
		for (tok = strtok_r(copy, ", ", &save); tok != NULL;
		     tok = strtok_r(NULL, ", ", &save)) {
			n = strlen(tok);
			if (len + n + (len > 0) >= sizeof(ar.delegate_to)) {
				stint_ini_error(&c->ini,
						"delegate_to is too long (at "
						"most %d bytes)",
						STINT_DELEGATE_TO_MAX);
				return 0;
			}
			if (len > 0)
				ar.delegate_to[len++] = ',';
			memcpy(ar.delegate_to + len, tok, n + 1);
			len += n;
		}
	}
	memset(&tmp, 0, sizeof(tmp));
	if ((why = stint_delegate_agent_set(&ar, &tmp)) != NULL ||
	    (k == A_DELEGATE_TO && len == 0)) {
		stint_ini_error(&c->ini, "bad %s '%s': %s", agent_keys[k],
				value, why != NULL ? why : "give agent names");
		return 0;
	}
	if (k == A_MAX_DEPTH)
		c->cur->max_depth = tmp.max_depth;
	else
		memcpy(c->cur->delegate_to, tmp.delegate_to,
		       sizeof(tmp.delegate_to));
	return 1;
}

/* One selector, checked alone so the error names its line. */
static int
set_selector(struct file_ctx *c, enum agent_key k, const char *value)
{
	struct stint_selectors one;
	struct stint_selectors *sel = &c->cur->sel;
	char *dst = NULL, *src = NULL;
	size_t cap = 0;
	const char *why;

	memset(&one, 0, sizeof(one));
#define SEL_CASE(key, field)                                                   \
	case key:                                                              \
		dst = sel->field, src = one.field, cap = sizeof(one.field);    \
		break
	switch (k) {
		SEL_CASE(A_EXE, exe);
		SEL_CASE(A_EXE_SHA256, exe_sha256);
		SEL_CASE(A_CGROUP, cgroup);
		SEL_CASE(A_UNIT, unit);
		SEL_CASE(A_LSM_LABEL, lsm_label);
	default:
		return 0;
	}
#undef SEL_CASE
	if (strlen(value) >= cap) {
		stint_ini_error(&c->ini, "%s is too long (at most %zu bytes)",
				agent_keys[k], cap - 1);
		return 0;
	}
	memcpy(src, value, strlen(value) + 1);
	if ((why = stint_selectors_check(&one)) != NULL) {
		stint_ini_error(&c->ini, "bad %s '%s': %s", agent_keys[k],
				value, why);
		return 0;
	}
	memcpy(dst, src, cap);
	return 1;
}

static int
apply_agent_key(struct file_ctx *c, enum agent_key k, const char *value)
{
	struct stint_agent *a = c->cur;
	char max[32];
	uint32_t id;

	switch (k) {
	case A_UID:
	case A_GID:
		if (parse_id(value, k == A_GID, &id) != 0) {
			stint_ini_error(&c->ini, "%s '%s': no such %s or %s",
					agent_keys[k], value,
					k == A_GID ? "group" : "user",
					agent_keys[k]);
			return 0;
		}
		if (k == A_UID)
			a->uid = id;
		else
			a->gid = id;
		return 1;
	case A_MAX_TTL:
		if (stint_duration_parse(value, &a->max_ttl) != 0 ||
		    a->max_ttl > c->cfg->max_ttl) {
			stint_duration_format(c->cfg->max_ttl, max,
					      sizeof(max));
			stint_ini_error(&c->ini,
					"bad max_ttl '%s': use a duration "
					"such as 15m or 1h, at most stintd's "
					"max_ttl (%s)",
					value, max);
			return 0;
		}
		return 1;
	case A_MECHANISMS:
		return set_mechs(c, value);
	case A_AUDIENCES:
		return set_audiences(c, value);
	case A_DELEGATE_TO:
	case A_MAX_DEPTH:
		return set_delegation(c, k, value);
	default:
		return set_selector(c, k, value);
	}
}

static int
agent_handler(void *user, const char *section, const char *name,
	      const char *value)
{
	struct file_ctx *c = user;
	int k;

	(void)section; /* inih truncates long names: ini.section is whole */
	k = stint_decl_key(&c->ini, "agent", c->cur != NULL, agent_keys, A_N,
			   c->key_line,
			   "uid, gid, max_ttl, mechanisms, audiences, exe, "
			   "exe_sha256, cgroup, unit, lsm_label, delegate_to "
			   "or max_depth",
			   name, value);
	if (k < 0)
		return 0;
	return apply_agent_key(c, (enum agent_key)k, value);
}

static void
agent_file_start(struct stint_ini *ini)
{
	struct file_ctx *c = (struct file_ctx *)ini;

	c->cur = NULL;
	memset(c->key_line, 0, sizeof(c->key_line));
}

static void
agent_file_end(struct stint_ini *ini)
{
	finish_agent((struct file_ctx *)ini);
}

/* Agents without mechanisms may use every one Stint supports (as
 * `stint agent add` without --mechanisms). */
static void
default_mechs(struct stint_agents_decl *decl)
{
	const struct stint_mech *all = NULL;
	size_t n = 0, i, j;

	for (i = 0; i < decl->n; i++) {
		if (decl->v[i].n_mechs != 0)
			continue;
		if (all == NULL)
			all = stint_mech_all(&n);
		for (j = 0; j < n && j < STINT_MECHS_MAX; j++)
			decl->v[i].mechs[j] = all[j].mech;
		decl->v[i].n_mechs = j;
	}
}

int
stint_agents_dir_load(const struct stint_config *cfg,
		      struct stint_agents_decl *out, char *err, size_t errlen)
{
	struct file_ctx c = {.cfg = cfg, .decl = out};
	const struct stint_decl_dir dd = {.key = "agents_dir",
					  .dir = cfg->agents_dir,
					  .file_max = AGENT_FILE_MAX,
					  .ini = &c.ini,
					  .section_ok = agent_section_ok,
					  .handler = agent_handler,
					  .file_start = agent_file_start,
					  .file_end = agent_file_end};

	memset(out, 0, sizeof(*out));
	if (stint_decl_dir_load(&dd, err, errlen) != 0) {
		decl_clear(out);
		return -1;
	}
	default_mechs(out);
	return 0;
}
