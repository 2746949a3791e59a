/*
 * stintd's configuration file, parsed with libinih.
 *
 * inih's handler is not told the line number in the Debian build
 * (INI_HANDLER_LINENO 0), and whether inline comments, multi-line values and
 * long lines are accepted depends on how the library was built. So the file
 * is read into memory here and fed to ini_parse_stream() one line at a time
 * through our own reader, which counts lines, strips inline comments and
 * leading blanks (so no line is ever taken as a continuation), refuses
 * over-long lines and checks section names (inih does not call the handler
 * for an empty section). inih still does the key = value syntax.
 */

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <openssl/crypto.h>

#include "attest/budget.h"
#include "attest/cert_ext.h"
#include "attest/config.h"
#include "stint/wire.h"
#include "common/duration.h"
#include "common/fileio.h"

#define CONFIG_FILE_MAX (1024 * 1024)

enum key_id {
	K_STATE_DIR,
	K_RUNTIME_DIR,
	K_TRUST_DOMAIN,
	K_DEFAULT_TTL,
	K_MAX_TTL,
	K_TYPE,
	K_MODULE,
	K_TOKEN,
	K_PIN_FILE,
	K_TCTI,
	K_KILL_SWITCH_INDEX,
	K_KEY_POOL,
	K_PREPARED_OPS,
	K_TPM_LOADED_KEYS, /* tpmfast */
	K_AUDIT_PATH,
	K_SYNC,
	K_CHECKPOINT,
	K_CA_KEY,
	K_CA_SKEW,
	K_RETENTION,
	K_CA_EXTENSION_OID,
	/* connection and refusal limits (server.c, refusals.c) */
	K_MAX_CONNECTIONS,
	K_MAX_CONNECTIONS_PER_UID,
	K_REFUSAL_INTERVAL,
	K_AUDIT_FORWARD,
	K_AUDIT_FORWARD_SOCKET,
	K_EXE_HASH_MAX,        /* ident */
	K_RUN_CGROUP_PARENT,   /* bind */
	K_AGENTS_DIR,          /* prov */
	K_AUDIT_COUNTER_INDEX, /* nv */
	K_AGENTS_MODE,         /* prov: files-only | both */
	K_OPERATORS_DIR,       /* prov */
	K_BUDGET_BLOCK,        /* budget */
	K_N,
};

static const struct {
	const char *section;
	const char *name;
} config_keys[K_N] = {
	[K_STATE_DIR] = {"stintd", "state_dir"},
	[K_RUNTIME_DIR] = {"stintd", "runtime_dir"},
	[K_TRUST_DOMAIN] = {"stintd", "trust_domain"},
	[K_DEFAULT_TTL] = {"stintd", "default_ttl"},
	[K_MAX_TTL] = {"stintd", "max_ttl"},
	[K_TYPE] = {"backend", "type"},
	[K_MODULE] = {"backend", "module"},
	[K_TOKEN] = {"backend", "token"},
	[K_PIN_FILE] = {"backend", "pin_file"},
	[K_TCTI] = {"backend", "tcti"},
	[K_KILL_SWITCH_INDEX] = {"backend", "kill_switch_index"},
	[K_KEY_POOL] = {"backend", "key_pool"},
	[K_PREPARED_OPS] = {"backend", "prepared_ops"},
	[K_TPM_LOADED_KEYS] = {"backend", "tpm_loaded_keys"},
	[K_AUDIT_PATH] = {"audit", "path"},
	[K_SYNC] = {"audit", "sync"},
	[K_CHECKPOINT] = {"audit", "checkpoint"},
	[K_CA_KEY] = {"ca", "key"},
	[K_CA_SKEW] = {"ca", "skew"},
	[K_RETENTION] = {"stintd", "retention"},
	[K_CA_EXTENSION_OID] = {"ca", "extension_oid"},
	[K_MAX_CONNECTIONS] = {"stintd", "max_connections"},
	[K_MAX_CONNECTIONS_PER_UID] = {"stintd", "max_connections_per_uid"},
	[K_REFUSAL_INTERVAL] = {"audit", "refusal_interval"},
	[K_AUDIT_FORWARD] = {"audit", "forward"},
	[K_AUDIT_FORWARD_SOCKET] = {"audit", "forward_socket"},
	[K_EXE_HASH_MAX] = {"stintd", "exe_hash_max"},
	[K_RUN_CGROUP_PARENT] = {"run", "cgroup_parent"},
	[K_AGENTS_DIR] = {"stintd", "agents_dir"},
	[K_AUDIT_COUNTER_INDEX] = {"backend", "audit_counter_index"},
	[K_AGENTS_MODE] = {"stintd", "agents"},
	[K_OPERATORS_DIR] = {"stintd", "operators_dir"},
	[K_BUDGET_BLOCK] = {"stintd", "budget_block"},
};

struct parse_ctx {
	struct stint_ini ini; /* the shared reader's state */
	struct stint_config *cfg;
	int key_line[K_N]; /* 0: not set in the file */
};

#define ctx_error(c, ...) stint_ini_error(&(c)->ini, __VA_ARGS__)

void
stint_ini_error(struct stint_ini *ini, const char *fmt, ...)
{
	va_list ap;

	if (ini->err_line != 0)
		return; /* report the first error only */
	ini->err_line = ini->lineno;
	va_start(ap, fmt);
	vsnprintf(ini->err, sizeof(ini->err), fmt, ap);
	va_end(ap);
}

static bool
known_section(const char *name)
{
	return strcmp(name, "stintd") == 0 || strcmp(name, "backend") == 0 ||
	       strcmp(name, "ca") == 0 || strcmp(name, "audit") == 0 ||
	       strcmp(name, "run") == 0;
}

static bool
config_section_ok(struct stint_ini *ini, const char *name)
{
	if (known_section(name))
		return true;
	stint_ini_error(ini,
			"unknown section [%s]: use [stintd], [backend], "
			"[ca], [audit] or [run]",
			name);
	return false;
}

static bool
is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' ||
	       ch == '\v';
}

/* "[name]" lines: refuse unknown sections even when they hold no key, and
 * keep the whole name (inih truncates long ones). */
static void
check_section_line(struct stint_ini *ini, const char *line)
{
	const char *end = strchr(line, ']');
	size_t n;

	if (end == NULL)
		return; /* inih reports the syntax error */
	n = (size_t)(end - line - 1);
	ini->section[0] = '\0';
	if (n >= sizeof(ini->section)) {
		ini->section_known = false;
		stint_ini_error(ini,
				"section name too long (at most %zu "
				"bytes)",
				sizeof(ini->section) - 1);
		return;
	}
	memcpy(ini->section, line + 1, n);
	ini->section[n] = '\0';
	ini->section_known = ini->section_ok(ini, ini->section);
}

/*
 * fgets-style reader over the in-memory file: one call per physical line,
 * so inih's line count and ours agree.
 */
static char *
config_reader(char *str, int num, void *stream)
{
	struct stint_ini *c = stream;
	const char *start, *nl;
	size_t n, i;
	char *line;

	if (c->pos >= c->len || c->err_line != 0)
		return NULL; /* stop at our first error */
	start = c->text + c->pos;
	nl = memchr(start, '\n', c->len - c->pos);
	n = nl != NULL ? (size_t)(nl - start) : c->len - c->pos;
	c->pos += n + (nl != NULL ? 1 : 0);
	c->lineno++;

	/* Leading blanks would make inih treat the line as a continuation. */
	while (n > 0 && is_blank(*start)) {
		start++;
		n--;
	}
	if (memchr(start, '\0', n) != NULL) {
		stint_ini_error(c, "NUL byte in the line");
		return NULL;
	}
	/* Inline comments: ';' or '#' after a blank. A whole-line comment
	 * is left for inih to skip. */
	if (n > 0 && start[0] != ';' && start[0] != '#') {
		for (i = 1; i < n; i++) {
			if ((start[i] == ';' || start[i] == '#') &&
			    is_blank(start[i - 1])) {
				n = i;
				break;
			}
		}
	}
	while (n > 0 && is_blank(start[n - 1]))
		n--;
	/* Room for the line, "\n" and NUL: a longer line would be split by
	 * inih into two. */
	if (num < 2 || n > (size_t)num - 2) {
		stint_ini_error(c, "line too long (at most %d bytes)", num - 2);
		return NULL;
	}
	line = str;
	memcpy(line, start, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	if (n > 0 && line[0] == '[')
		check_section_line(c, line);
	return str;
}

int
stint_ini_parse(struct stint_ini *ini, const char *text, size_t len,
		int (*handler)(void *, const char *, const char *,
			       const char *),
		void *user, char *err, size_t errlen)
{
	int r;

	ini->text = text;
	ini->len = len;
	ini->pos = 0;
	ini->lineno = 0;
	ini->err_line = 0;
	ini->section[0] = '\0';
	ini->section_known = true; /* keys before any section: handler says */
	r = ini_parse_stream(config_reader, ini, handler, user);
	if (r < 0) {
		snprintf(err, errlen, "cannot parse %s: out of memory",
			 ini->path);
		return -1;
	}
	/* inih returns the first line it or our handler refused; ours
	 * carries a message, a line only inih refused is a syntax error. */
	if (r > 0 && (ini->err_line == 0 || r < ini->err_line)) {
		snprintf(err, errlen,
			 "%s:%d: syntax error: expected 'key = value' or "
			 "'[section]'",
			 ini->path, r);
		return -1;
	}
	return stint_ini_failed(ini, err, errlen);
}

int
stint_ini_failed(const struct stint_ini *ini, char *err, size_t errlen)
{
	if (ini->err_line == 0)
		return 0;
	snprintf(err, errlen, "%s:%d: %s", ini->path, ini->err_line, ini->err);
	return -1;
}

static int
set_path(struct parse_ctx *c, const char *key, const char *value, char *dst,
	 size_t cap)
{
	if (value[0] != '/') {
		ctx_error(c,
			  "%s must be an absolute path (starting with '/'), "
			  "got '%s'",
			  key, value);
		return 0;
	}
	if (strlen(value) >= cap) {
		ctx_error(c, "%s is too long", key);
		return 0;
	}
	memcpy(dst, value, strlen(value) + 1);
	return 1;
}

/* SPIFFE trust domain: lowercase DNS-style labels of [a-z0-9-_], 1..63
 * bytes each, no label starting or ending with '-', 253 bytes at most. */
static bool
valid_trust_domain(const char *s)
{
	size_t len = strlen(s), label = 0, i;

	if (len == 0 || len > 253)
		return false;
	for (i = 0; i < len; i++) {
		char ch = s[i];

		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '_'))
			return false;
		if (ch == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return label != 0 && s[len - 1] != '-';
}

static int
set_duration(struct parse_ctx *c, const char *key, const char *value,
	     uint64_t *dst)
{
	if (stint_duration_parse(value, dst) != 0) {
		ctx_error(c,
			  "bad duration '%s' for %s: use a positive duration "
			  "such as 90s, 15m, 1h or 1h30m",
			  value, key);
		return 0;
	}
	return 1;
}

/* An owner-hierarchy NV index: 0x01000000 to 0x01bfffff (the 0x01c.....
 * range is reserved for the platform and TCG, e.g. EK certificates). */
static int
set_nv_index(struct parse_ctx *c, const char *value, const char *name,
	     uint32_t *dst)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(value, &end, 0);
	if (errno != 0 || *end != '\0' || value[0] == '-' ||
	    v < 0x01000000ULL || v > 0x01bfffffULL) {
		ctx_error(c,
			  "%s '%s' is not an owner NV index: "
			  "use 0x01000000 to 0x01bfffff (e.g. 0x01500100)",
			  name, value);
		return 0;
	}
	*dst = (uint32_t)v;
	return 1;
}

_Static_assert(sizeof(((struct stint_config *)0)->ca.extension_oid) ==
		       STINT_OID_TEXT_MAX,
	       "[ca] extension_oid holds any OID cert_ext.c accepts");

/* [ca] extension_oid: an OID of the organisation's own arc that every
 * certificate parser reads (cert_ext.h). */
static int
set_extension_oid(struct parse_ctx *c, const char *value, char *dst, size_t cap)
{
	char why[256];

	if (strlen(value) >= cap ||
	    stint_task_ext_oid_check(value, why, sizeof(why)) != 0) {
		ctx_error(c, "bad extension_oid: %s",
			  strlen(value) >= cap ? "too long" : why);
		return 0;
	}
	memcpy(dst, value, strlen(value) + 1);
	return 1;
}

/* [ca] skew: 0 or a duration of at most 10 minutes. A larger allowance
 * would let a certificate be valid long before its task existed. */
static int
set_skew(struct parse_ctx *c, const char *value, uint64_t *dst)
{
	uint64_t v;

	if (strcmp(value, "0") == 0 || strcmp(value, "0s") == 0) {
		*dst = 0;
		return 1;
	}
	if (stint_duration_parse(value, &v) != 0 || v > 600) {
		ctx_error(c,
			  "bad skew '%s': use a duration from 0 to 10m "
			  "(default 60s)",
			  value);
		return 0;
	}
	*dst = v;
	return 1;
}

/* A small count, 0 to max: key_pool, prepared_ops, tpm_loaded_keys. */
static int
set_count(struct parse_ctx *c, const char *value, uint32_t *dst,
	  const char *what, unsigned long max, unsigned long dflt)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(value, &end, 10);
	if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 ||
	    v > max) {
		ctx_error(c,
			  "bad %s '%s': use a number from 0 (off) to %lu "
			  "(default %lu)",
			  what, value, max, dflt);
		return 0;
	}
	*dst = (uint32_t)v;
	return 1;
}

/* [stintd] retention: how long ended tasks stay in state.db (and their
 * evidence in state_dir): a duration, or 0 / off to keep them forever. */
static int
set_retention(struct parse_ctx *c, const char *value, uint64_t *dst)
{
	if (strcmp(value, "0") == 0 || strcmp(value, "off") == 0) {
		*dst = 0;
		return 1;
	}
	if (stint_duration_parse(value, dst) != 0) {
		ctx_error(c,
			  "bad retention '%s': use a duration such as 30d or "
			  "12h, or 0 (or off) to keep ended tasks forever",
			  value);
		return 0;
	}
	return 1;
}

/* max_connections, max_connections_per_uid: min to STINT_CONNS_MAX. */
static int
set_conn_limit(struct parse_ctx *c, const char *value, uint32_t *dst,
	       const char *what, unsigned long min, unsigned long dflt)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(value, &end, 10);
	if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 ||
	    v < min || v > STINT_CONNS_MAX) {
		ctx_error(c,
			  "bad %s '%s': use a number from %lu to %d "
			  "(default %lu)",
			  what, value, min, STINT_CONNS_MAX, dflt);
		return 0;
	}
	*dst = (uint32_t)v;
	return 1;
}

/* [audit] refusal_interval: 1s to 1h. */
static int
set_refusal_interval(struct parse_ctx *c, const char *value, uint64_t *dst)
{
	uint64_t v;

	if (stint_duration_parse(value, &v) != 0 || v < 1 || v > 3600) {
		ctx_error(c,
			  "bad refusal_interval '%s': use a duration from 1s "
			  "to 1h (default 10s)",
			  value);
		return 0;
	}
	*dst = v;
	return 1;
}

/* [stintd] exe_hash_max: bytes, with an optional K, M or G suffix (1024s);
 * 0 disables hashing. */
static int
set_exe_hash_max(struct parse_ctx *c, const char *value, uint64_t *dst)
{
	unsigned long long v, mul = 1;
	char *end;

	errno = 0;
	v = strtoull(value, &end, 10);
	if (*end == 'K' || *end == 'k')
		mul = 1024ULL, end++;
	else if (*end == 'M' || *end == 'm')
		mul = 1024ULL * 1024, end++;
	else if (*end == 'G' || *end == 'g')
		mul = 1024ULL * 1024 * 1024, end++;
	if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 ||
	    v > (1ULL << 40) / mul) {
		ctx_error(c,
			  "bad exe_hash_max '%s': use bytes with an optional "
			  "K, M or G suffix, at most 1024G (default 256M; 0 "
			  "disables hashing)",
			  value);
		return 0;
	}
	*dst = v * mul;
	return 1;
}

/* [stintd] budget_block: 1 to STINT_BUDGET_BLOCK_MAX (budget.h). */
static int
set_budget_block(struct parse_ctx *c, const char *value, uint32_t *dst)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(value, &end, 10);
	if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 ||
	    v < 1 || v > STINT_BUDGET_BLOCK_MAX) {
		ctx_error(c,
			  "bad budget_block '%s': use a number of signatures "
			  "from 1 to %u (default %u; 1 commits each)",
			  value, STINT_BUDGET_BLOCK_MAX,
			  STINT_BUDGET_BLOCK_DEFAULT);
		return 0;
	}
	*dst = (uint32_t)v;
	return 1;
}

static int
apply_limit_key(struct parse_ctx *c, enum key_id k, const char *value)
{
	struct stint_config *cfg = c->cfg;

	switch (k) {
	case K_MAX_CONNECTIONS:
		return set_conn_limit(c, value, &cfg->max_connections,
				      "max_connections", 16, 1024);
	case K_MAX_CONNECTIONS_PER_UID:
		return set_conn_limit(c, value, &cfg->max_connections_per_uid,
				      "max_connections_per_uid", 1, 256);
	case K_REFUSAL_INTERVAL:
		return set_refusal_interval(c, value,
					    &cfg->audit.refusal_interval);
	case K_EXE_HASH_MAX:
		return set_exe_hash_max(c, value, &cfg->exe_hash_max);
	case K_BUDGET_BLOCK:
		return set_budget_block(c, value, &cfg->budget_block);
	default:
		return 0;
	}
}

/* [audit] forward and forward_socket (audit_forward.c). */
static int
apply_forward_key(struct parse_ctx *c, enum key_id k, const char *value)
{
	struct stint_config *cfg = c->cfg;

	if (k == K_AUDIT_FORWARD_SOCKET)
		return set_path(c, "forward_socket", value,
				cfg->audit.forward_socket,
				sizeof(cfg->audit.forward_socket));
	if (strcmp(value, "none") == 0)
		cfg->audit.forward = STINT_FWD_NONE;
	else if (strcmp(value, "journal") == 0)
		cfg->audit.forward = STINT_FWD_JOURNAL;
	else if (strcmp(value, "syslog") == 0)
		cfg->audit.forward = STINT_FWD_SYSLOG;
	else {
		ctx_error(c,
			  "bad forward value '%s': use journal, syslog or "
			  "none",
			  value);
		return 0;
	}
	return 1;
}

/* [run] cgroup_parent (bind): a cgroup path below the v2 hierarchy's
 * root, leading '/' optional; no empty, "." or ".." components. */
static int
set_cgroup_parent(struct parse_ctx *c, const char *value)
{
	const char *p = value[0] == '/' ? value + 1 : value, *seg;
	size_t n;

	for (seg = p; *seg != '\0'; seg += n + (seg[n] == '/')) {
		n = strcspn(seg, "/");
		if (n == 0 || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			break;
	}
	if (*p == '\0' || *seg != '\0' || p[strlen(p) - 1] == '/' ||
	    strlen(p) + 1 >= sizeof(c->cfg->run.cgroup_parent) - 64) {
		ctx_error(c,
			  "bad cgroup_parent '%s': use a path like stint or "
			  "system.slice/stintd.service/runs",
			  value);
		return 0;
	}
	snprintf(c->cfg->run.cgroup_parent, sizeof(c->cfg->run.cgroup_parent),
		 "/%s", p);
	c->cfg->run.cgroup_parent_set = true;
	return 1;
}

static int
apply_key(struct parse_ctx *c, enum key_id k, const char *value)
{
	struct stint_config *cfg = c->cfg;
	const char *name = config_keys[k].name;

	switch (k) {
	case K_STATE_DIR:
		return set_path(c, name, value, cfg->state_dir,
				sizeof(cfg->state_dir));
	case K_RUNTIME_DIR:
		return set_path(c, name, value, cfg->runtime_dir,
				sizeof(cfg->runtime_dir));
	case K_MODULE:
		return set_path(c, name, value, cfg->backend.module,
				sizeof(cfg->backend.module));
	case K_PIN_FILE:
		return set_path(c, name, value, cfg->backend.pin_file,
				sizeof(cfg->backend.pin_file));
	case K_AUDIT_PATH:
		return set_path(c, name, value, cfg->audit.path,
				sizeof(cfg->audit.path));
	case K_AGENTS_DIR:
		return set_path(c, name, value, cfg->agents_dir,
				sizeof(cfg->agents_dir));
	case K_OPERATORS_DIR:
		return set_path(c, name, value, cfg->operators_dir,
				sizeof(cfg->operators_dir));
	case K_TRUST_DOMAIN:
		if (!valid_trust_domain(value)) {
			ctx_error(c,
				  "trust_domain '%s' is not a valid domain "
				  "name: use lowercase labels of a-z, 0-9, "
				  "'-', '_' separated by dots (e.g. "
				  "example.org)",
				  value);
			return 0;
		}
		memcpy(cfg->trust_domain, value, strlen(value) + 1);
		return 1;
	case K_DEFAULT_TTL:
		return set_duration(c, name, value, &cfg->default_ttl);
	case K_MAX_TTL:
		return set_duration(c, name, value, &cfg->max_ttl);
	case K_TYPE:
		if (strcmp(value, "pkcs11") != 0 && strcmp(value, "tpm") != 0) {
			ctx_error(c,
				  "unknown backend type '%s': set type = "
				  "pkcs11 or tpm",
				  value);
			return 0;
		}
		memcpy(cfg->backend.type, value, strlen(value) + 1);
		return 1;
	case K_TOKEN:
		if (strlen(value) >= sizeof(cfg->backend.token)) {
			ctx_error(c,
				  "token label '%s' is %zu bytes; PKCS#11 "
				  "token labels are at most 32",
				  value, strlen(value));
			return 0;
		}
		memcpy(cfg->backend.token, value, strlen(value) + 1);
		return 1;
	case K_TCTI:
		if (strlen(value) >= sizeof(cfg->backend.tcti)) {
			ctx_error(c, "tcti is too long (at most %zu bytes)",
				  sizeof(cfg->backend.tcti) - 1);
			return 0;
		}
		memcpy(cfg->backend.tcti, value, strlen(value) + 1);
		return 1;
	case K_KILL_SWITCH_INDEX:
		return set_nv_index(c, value, "kill_switch_index",
				    &cfg->backend.kill_switch_index);
	case K_AUDIT_COUNTER_INDEX: /* nv */
		return set_nv_index(c, value, "audit_counter_index",
				    &cfg->backend.audit_counter_index);
	case K_KEY_POOL:
		return set_count(c, value, &cfg->backend.key_pool, "key_pool",
				 STINT_KEY_POOL_MAX, STINT_KEY_POOL_DEFAULT);
	case K_PREPARED_OPS:
		return set_count(c, value, &cfg->backend.prepared_ops,
				 "prepared_ops", STINT_PREPARED_OPS_MAX,
				 STINT_PREPARED_OPS_DEFAULT);
	case K_TPM_LOADED_KEYS:
		return set_count(c, value, &cfg->backend.tpm_loaded_keys,
				 "tpm_loaded_keys", STINT_TPM_LOADED_KEYS_MAX,
				 STINT_TPM_LOADED_KEYS_DEFAULT);
	case K_CA_KEY:
		if (strcmp(value, "ec-p256") == 0)
			cfg->ca.key_type = STINT_KEY_EC_P256;
		else if (strcmp(value, "ec-p384") == 0)
			cfg->ca.key_type = STINT_KEY_EC_P384;
		else {
			ctx_error(c,
				  "bad CA key type '%s': use ec-p256 or "
				  "ec-p384",
				  value);
			return 0;
		}
		return 1;
	case K_CA_SKEW:
		return set_skew(c, value, &cfg->ca.skew);
	case K_RETENTION:
		return set_retention(c, value, &cfg->retention);
	case K_CHECKPOINT:
		return set_duration(c, name, value, &cfg->audit.checkpoint);
	case K_CA_EXTENSION_OID:
		return set_extension_oid(c, value, cfg->ca.extension_oid,
					 sizeof(cfg->ca.extension_oid));
	case K_AGENTS_MODE:
		if (strcmp(value, "files-only") == 0 ||
		    strcmp(value, "both") == 0) {
			cfg->agents_files_only = value[0] == 'f';
			return 1;
		}
		ctx_error(c, "bad agents value '%s': use files-only or both",
			  value);
		return 0;
	case K_SYNC:
		if (strcmp(value, "always") == 0)
			cfg->audit.sync = STINT_SYNC_ALWAYS;
		else if (strcmp(value, "batch") == 0)
			cfg->audit.sync = STINT_SYNC_BATCH;
		else if (strcmp(value, "none") == 0)
			cfg->audit.sync = STINT_SYNC_NONE;
		else {
			ctx_error(c,
				  "bad sync value '%s': use always, batch or "
				  "none",
				  value);
			return 0;
		}
		return 1;
	case K_MAX_CONNECTIONS:
	case K_MAX_CONNECTIONS_PER_UID:
	case K_REFUSAL_INTERVAL:
	case K_EXE_HASH_MAX:
	case K_BUDGET_BLOCK:
		return apply_limit_key(c, k, value);
	case K_AUDIT_FORWARD:
	case K_AUDIT_FORWARD_SOCKET:
		return apply_forward_key(c, k, value);
	case K_RUN_CGROUP_PARENT:
		return set_cgroup_parent(c, value);
	case K_N:
		break;
	}
	return 0;
}

static int
config_handler(void *user, const char *section, const char *name,
	       const char *value)
{
	struct parse_ctx *c = user;
	int k, other = -1;

	if (section[0] == '\0') {
		ctx_error(c,
			  "key '%s' outside any section: put it under "
			  "[stintd], [backend] or [audit]",
			  name);
		return 0;
	}
	if (!c->ini.section_known)
		return 0; /* already reported on the section line */
	for (k = 0; k < K_N; k++) {
		if (strcmp(config_keys[k].name, name) != 0)
			continue;
		if (strcmp(config_keys[k].section, section) == 0)
			break;
		other = k;
	}
	if (k == K_N) {
		if (other >= 0)
			ctx_error(c,
				  "unknown key '%s' in [%s]: it belongs in "
				  "[%s]",
				  name, section, config_keys[other].section);
		else
			ctx_error(c,
				  "unknown key '%s' in [%s]: remove it (see "
				  "stint.conf(5))",
				  name, section);
		return 0;
	}
	if (c->key_line[k] != 0) {
		ctx_error(c,
			  "duplicate key '%s' in [%s] (first set on line "
			  "%d): keep one",
			  name, section, c->key_line[k]);
		return 0;
	}
	c->key_line[k] = c->ini.lineno;
	if (value == NULL || value[0] == '\0') {
		ctx_error(c, "key '%s' in [%s] needs a value", name, section);
		return 0;
	}
	return apply_key(c, (enum key_id)k, value);
}

static void
config_defaults(struct stint_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s",
		 STINT_STATE_DIR_DEFAULT);
	snprintf(cfg->runtime_dir, sizeof(cfg->runtime_dir), "%s",
		 STINT_RUNTIME_DIR_DEFAULT);
	snprintf(cfg->trust_domain, sizeof(cfg->trust_domain), "example.org");
	cfg->default_ttl = 15 * 60;
	cfg->max_ttl = 60 * 60;
	cfg->retention = STINT_RETENTION_DEFAULT;
	snprintf(cfg->backend.type, sizeof(cfg->backend.type), "pkcs11");
	snprintf(cfg->backend.module, sizeof(cfg->backend.module),
		 "/usr/lib/softhsm/libsofthsm2.so");
	snprintf(cfg->backend.token, sizeof(cfg->backend.token), "stint");
	snprintf(cfg->backend.pin_file, sizeof(cfg->backend.pin_file), "%s",
		 STINT_PIN_FILE_DEFAULT);
	cfg->backend.kill_switch_index = 0x01500100;
	cfg->backend.audit_counter_index = 0x01500101;
	cfg->backend.key_pool = STINT_KEY_POOL_DEFAULT;
	cfg->backend.prepared_ops = STINT_PREPARED_OPS_DEFAULT;
	cfg->backend.tpm_loaded_keys = STINT_TPM_LOADED_KEYS_DEFAULT;
	cfg->ca.key_type = STINT_KEY_EC_P256;
	cfg->ca.skew = 60;
	cfg->audit.path[0] = '\0'; /* filled from state_dir after parsing */
	cfg->audit.sync = STINT_SYNC_BATCH;
	cfg->audit.checkpoint = STINT_AUDIT_CHECKPOINT_DEFAULT;
	cfg->max_connections = 1024;
	cfg->max_connections_per_uid = 256;
	cfg->exe_hash_max = 256ULL * 1024 * 1024;
	cfg->budget_block = STINT_BUDGET_BLOCK_DEFAULT;
	cfg->audit.refusal_interval = 10;
	snprintf(cfg->run.cgroup_parent, sizeof(cfg->run.cgroup_parent),
		 "/stint");
}

/* Checks that involve more than one key, reported at the line that set
 * the offending value. */
static int
config_finish(struct parse_ctx *c)
{
	struct stint_config *cfg = c->cfg;
	char dflt[32], max[32];
	int n;

	if (cfg->default_ttl > cfg->max_ttl) {
		stint_duration_format(cfg->default_ttl, dflt, sizeof(dflt));
		stint_duration_format(cfg->max_ttl, max, sizeof(max));
		c->ini.lineno = c->key_line[K_DEFAULT_TTL] != 0
					? c->key_line[K_DEFAULT_TTL]
					: c->key_line[K_MAX_TTL];
		ctx_error(c,
			  "default_ttl (%s) is longer than max_ttl (%s): "
			  "lower default_ttl or raise max_ttl",
			  dflt, max);
		return -1;
	}
	if (strcmp(cfg->backend.type, "tpm") == 0 &&
	    cfg->backend.tcti[0] == '\0') {
		c->ini.lineno = c->key_line[K_TYPE];
		ctx_error(c, "type = tpm needs a tcti in [backend], e.g. "
			     "tcti = device:/dev/tpmrm0");
		return -1;
	}
	if (cfg->backend.audit_counter_index ==
	    cfg->backend.kill_switch_index) {
		c->ini.lineno = c->key_line[K_AUDIT_COUNTER_INDEX];
		ctx_error(c, "audit_counter_index must differ from "
			     "kill_switch_index");
		return -1;
	}
	if (strcmp(cfg->backend.type, "tpm") != 0 &&
	    (c->key_line[K_TCTI] != 0 ||
	     c->key_line[K_KILL_SWITCH_INDEX] != 0)) {
		c->ini.lineno = c->key_line[K_TCTI] != 0
					? c->key_line[K_TCTI]
					: c->key_line[K_KILL_SWITCH_INDEX];
		ctx_error(c, "tcti and kill_switch_index apply only to "
			     "type = tpm");
		return -1;
	}
	if (strcmp(cfg->backend.type, "tpm") != 0 &&
	    c->key_line[K_AUDIT_COUNTER_INDEX] != 0) { /* nv */
		c->ini.lineno = c->key_line[K_AUDIT_COUNTER_INDEX];
		ctx_error(c, "audit_counter_index applies only to type = tpm: "
			     "the other backends have no hardware counter");
		return -1;
	}
	/* A TPM key binds the task deadline when it is created, so it
	 * cannot be made ahead of its task. */
	if (strcmp(cfg->backend.type, "tpm") == 0 &&
	    c->key_line[K_KEY_POOL] != 0) {
		c->ini.lineno = c->key_line[K_KEY_POOL];
		ctx_error(c, "key_pool applies only to type = pkcs11: TPM task "
			     "keys bind their task's deadline and cannot be "
			     "made in advance");
		return -1;
	}
	if (strcmp(cfg->backend.type, "tpm") == 0 &&
	    c->key_line[K_PREPARED_OPS] != 0) {
		c->ini.lineno = c->key_line[K_PREPARED_OPS];
		ctx_error(c,
			  "prepared_ops applies only to type = pkcs11: a TPM "
			  "signature needs a fresh policy session each time");
		return -1;
	}
	if (strcmp(cfg->backend.type, "tpm") != 0 &&
	    c->key_line[K_TPM_LOADED_KEYS] != 0) {
		c->ini.lineno = c->key_line[K_TPM_LOADED_KEYS];
		ctx_error(c, "tpm_loaded_keys applies only to type = tpm");
		return -1;
	}
	if (cfg->audit.path[0] == '\0') {
		n = snprintf(cfg->audit.path, sizeof(cfg->audit.path),
			     "%s/audit.log", cfg->state_dir);
		if (n < 0 || (size_t)n >= sizeof(cfg->audit.path)) {
			c->ini.lineno = c->key_line[K_STATE_DIR];
			ctx_error(c, "state_dir is too long");
			return -1;
		}
	}
	return 0;
}

/* [stintd] agents_dir / operators_dir unset: NAME (agents.d, operators.d)
 * beside the configuration file. */
static int
default_dir(const char *path, const char *name, char *dir, size_t cap,
	    char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');
	char cwd[PATH_MAX] = "";
	int n;

	if (dir[0] != '\0')
		return 0;
	/* Absolute: stintd changes to / when it daemonizes. */
	if (path[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL) {
		snprintf(err, errlen, "%s: cannot resolve %s: %s", path, name,
			 strerror(errno));
		return -1;
	}
	if (slash == NULL)
		n = snprintf(dir, cap, "%s/%s", cwd, name);
	else
		n = snprintf(dir, cap, "%s%s%.*s/%s", cwd, cwd[0] ? "/" : "",
			     (int)(slash - path), path, name);
	if (n < 0 || (size_t)n >= cap) {
		snprintf(err, errlen, "%s: path too long for %s", path, name);
		return -1;
	}
	return 0;
}

int
stint_config_load(const char *path, struct stint_config *cfg, char *err,
		  size_t errlen)
{
	struct parse_ctx c;
	char *text = NULL;
	size_t len = 0;
	int r;

	config_defaults(cfg);
	if (stint_file_read(path, CONFIG_FILE_MAX, &text, &len, err, errlen) !=
	    0)
		return -1;
	memset(&c, 0, sizeof(c));
	c.ini.path = path;
	c.ini.section_ok = config_section_ok;
	c.cfg = cfg;
	r = stint_ini_parse(&c.ini, text, len, config_handler, &c, err, errlen);
	if (r == 0) {
		config_finish(&c);
		r = stint_ini_failed(&c.ini, err, errlen);
	}
	if (r == 0)
		r = default_dir(path, "agents.d", cfg->agents_dir,
				sizeof(cfg->agents_dir), err, errlen);
	if (r == 0)
		r = default_dir(path, "operators.d", cfg->operators_dir,
				sizeof(cfg->operators_dir), err, errlen);
	free(text);
	return r;
}

int
stint_config_read_pin(const char *pin_file, char *pin, size_t cap, char *err,
		      size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0, bufcap;
	ssize_t n;
	int fd = -1, r = -1;

	if (cap < 2) {
		snprintf(err, errlen, "PIN buffer too small");
		return -1;
	}
	pin[0] = '\0';
	/* O_NONBLOCK: a FIFO must not hang the daemon; it is refused below. */
	fd = open(pin_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read PIN file %s: %s", pin_file,
			 strerror(errno));
		return -1;
	}
	/* fstat the descriptor we read, so nothing can swap the file in
	 * between the check and the read. */
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot stat PIN file %s: %s", pin_file,
			 strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen,
			 "PIN file %s is not a regular file: point pin_file "
			 "at a file holding only the PIN",
			 pin_file);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen,
			 "PIN file %s is group- or world-accessible (mode "
			 "%04o); chmod 600 %s",
			 pin_file, (unsigned)(st.st_mode & 07777), pin_file);
		goto out;
	}
	/* Up to two bytes of line ending may follow a PIN that fills pin. */
	bufcap = cap + 2;
	buf = malloc(bufcap);
	if (buf == NULL) {
		snprintf(err, errlen, "out of memory reading PIN file");
		goto out;
	}
	while (got < bufcap) {
		n = read(fd, buf + got, bufcap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "cannot read PIN file %s: %s",
				 pin_file, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got == bufcap) {
		snprintf(err, errlen,
			 "PIN file %s is too long (a PIN is at most %zu bytes)",
			 pin_file, cap - 1);
		goto out;
	}
	if (got > 0 && buf[got - 1] == '\n') {
		got--;
		if (got > 0 && buf[got - 1] == '\r')
			got--;
	}
	if (got == 0) {
		snprintf(err, errlen,
			 "PIN file %s is empty: write the PIN in it", pin_file);
		goto out;
	}
	if (got > cap - 1) {
		snprintf(err, errlen,
			 "PIN file %s is too long (a PIN is at most %zu bytes)",
			 pin_file, cap - 1);
		goto out;
	}
	if (memchr(buf, '\0', got) != NULL) {
		snprintf(err, errlen, "PIN file %s holds a NUL byte", pin_file);
		goto out;
	}
	memcpy(pin, buf, got);
	pin[got] = '\0';
	r = 0;
out:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, bufcap);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return r;
}

const char *
stint_sync_str(enum stint_audit_sync s)
{
	switch (s) {
	case STINT_SYNC_ALWAYS:
		return "always";
	case STINT_SYNC_BATCH:
		return "batch";
	case STINT_SYNC_NONE:
		return "none";
	}
	return "unknown";
}
