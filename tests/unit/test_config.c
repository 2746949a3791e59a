/* stint.conf parsing and the PIN file checks, on files in a temp dir. */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "attest/agents_dir.h"
#include "attest/config.h"
#include "stint/wire.h"

static char dir[64];
static char conf[128];
static struct stint_config cfg;
static char err[1024];

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
group_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/stint-test-config.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(conf, sizeof(conf), "%s/stint.conf", dir);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd;
	size_t len = strlen(text);

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	/* chmod explicitly: the umask must not decide the test. */
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int
load(const char *text)
{
	write_file(conf, text, 0644);
	memset(err, 0, sizeof(err));
	return stint_config_load(conf, &cfg, err, sizeof(err));
}

/* Refused, naming file:line and containing what to fix. */
static void
expect_refused(const char *text, int line, const char *what)
{
	char where[256];

	assert_int_equal(load(text), -1);
	snprintf(where, sizeof(where), "%s:%d: ", conf, line);
	if (strncmp(err, where, strlen(where)) != 0)
		fail_msg("expected '%s' at the start of '%s'", where, err);
	if (strstr(err, what) == NULL)
		fail_msg("expected '%s' in '%s'", what, err);
}

static void
test_defaults(void **state)
{
	(void)state;
	assert_int_equal(load(""), 0);
	assert_string_equal(cfg.state_dir, LOCALSTATEDIR "/lib/stint");
	assert_string_equal(cfg.runtime_dir, RUNSTATEDIR "/stint");
	assert_string_equal(cfg.trust_domain, "example.org");
	assert_int_equal(cfg.default_ttl, 15 * 60);
	assert_int_equal(cfg.max_ttl, 3600);
	assert_string_equal(cfg.backend.type, "pkcs11");
	assert_string_equal(cfg.backend.module,
			    "/usr/lib/softhsm/libsofthsm2.so");
	assert_string_equal(cfg.backend.token, "stint");
	assert_string_equal(cfg.backend.pin_file, SYSCONFDIR "/stint/hsm.pin");
	assert_string_equal(cfg.audit.path,
			    LOCALSTATEDIR "/lib/stint/audit.log");
	assert_int_equal(cfg.audit.sync, STINT_SYNC_BATCH);
	assert_string_equal(stint_sync_str(cfg.audit.sync), "batch");
	assert_int_equal(cfg.ca.key_type, STINT_KEY_EC_P256);
	assert_int_equal(cfg.ca.skew, 60);
}

static void
test_audit_path_follows_state_dir(void **state)
{
	(void)state;
	assert_int_equal(load("[stintd]\nstate_dir = /srv/stint\n"), 0);
	assert_string_equal(cfg.audit.path, "/srv/stint/audit.log");
	assert_int_equal(load("[stintd]\nstate_dir = /srv/stint\n"
			      "[audit]\npath = /var/log/stint.log\n"),
			 0);
	assert_string_equal(cfg.audit.path, "/var/log/stint.log");
}

/* The example from the issue, inline comments and all. */
static void
test_full_with_inline_comments(void **state)
{
	(void)state;
	assert_int_equal(
		load("# Stint\n"
		     "[stintd]\n"
		     "state_dir = /tmp/st        ; state.db lives here\n"
		     "runtime_dir = /tmp/rt      ; agent.sock and admin.sock\n"
		     "trust_domain = corp.example.com\n"
		     "default_ttl = 10m\n"
		     "max_ttl = 2h30m\n"
		     "\n"
		     "[backend]   ; the key store\n"
		     "type = pkcs11\n"
		     "module = /opt/hsm/lib.so\t# tab then hash comment\n"
		     "token = stint   ; token label\n"
		     "pin_file = /etc/x;y/hsm.pin ; ';' inside a path stays\n"
		     "  [audit]\n"
		     "    path = /tmp/st/a.log\n"
		     "\tsync = always                      ; always | batch\n"),
		0);
	assert_string_equal(cfg.state_dir, "/tmp/st");
	assert_string_equal(cfg.runtime_dir, "/tmp/rt");
	assert_string_equal(cfg.trust_domain, "corp.example.com");
	assert_int_equal(cfg.default_ttl, 600);
	assert_int_equal(cfg.max_ttl, 9000);
	assert_string_equal(cfg.backend.module, "/opt/hsm/lib.so");
	assert_string_equal(cfg.backend.token, "stint");
	assert_string_equal(cfg.backend.pin_file, "/etc/x;y/hsm.pin");
	assert_string_equal(cfg.audit.path, "/tmp/st/a.log");
	assert_int_equal(cfg.audit.sync, STINT_SYNC_ALWAYS);

	assert_int_equal(load("[audit]\nsync = none\n"), 0);
	assert_int_equal(cfg.audit.sync, STINT_SYNC_NONE);
	assert_string_equal(stint_sync_str(STINT_SYNC_NONE), "none");
	assert_string_equal(stint_sync_str(STINT_SYNC_ALWAYS), "always");
}

static void
test_missing_file(void **state)
{
	char path[160], want[256];

	(void)state;
	snprintf(path, sizeof(path), "%s/nope.conf", dir);
	assert_int_equal(stint_config_load(path, &cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "cannot read %s: %s", path,
		 strerror(ENOENT));
	assert_string_equal(err, want);
}

static void
test_unknown_section(void **state)
{
	(void)state;
	expect_refused("[stintd]\nmax_ttl = 1h\n\n[server]\nport = 1\n", 4,
		       "unknown section [server]");
	/* An empty unknown section is refused too. */
	expect_refused("[stintd]\n[bogus]\n", 2, "unknown section [bogus]");
	/* Section names are case-sensitive. */
	expect_refused("[Backend]\n", 1, "unknown section [Backend]");
}

static void
test_unknown_key(void **state)
{
	(void)state;
	expect_refused("[backend]\ntype = pkcs11\nslot = 0\n", 3,
		       "unknown key 'slot' in [backend]");
	/* A known key in the wrong section says where it belongs. */
	expect_refused("[stintd]\ntoken = stint\n", 2,
		       "unknown key 'token' in [stintd]: it belongs in "
		       "[backend]");
	expect_refused("state_dir = /x\n", 1, "outside any section");
}

static void
test_bad_duration(void **state)
{
	(void)state;
	expect_refused("[stintd]\ndefault_ttl = 15 minutes\n", 2,
		       "bad duration '15 minutes' for default_ttl");
	expect_refused("[stintd]\n\nmax_ttl = -1h\n", 3,
		       "bad duration '-1h' for max_ttl");
	expect_refused("[stintd]\nmax_ttl = 0\n", 2, "bad duration");
}

static void
test_default_above_max(void **state)
{
	(void)state;
	expect_refused("[stintd]\nmax_ttl = 1h\ndefault_ttl = 2h\n", 3,
		       "default_ttl");
	assert_non_null(strstr(err, "longer than max_ttl"));
	/* Only max_ttl set, below the default 15m: its line is named. */
	expect_refused("[stintd]\n\nmax_ttl = 10m\n", 3, "max_ttl");
	/* Equal is fine. */
	assert_int_equal(load("[stintd]\nmax_ttl = 20m\ndefault_ttl = 20m\n"),
			 0);
	assert_int_equal(cfg.default_ttl, cfg.max_ttl);
}

static void
test_backend_type(void **state)
{
	(void)state;
	expect_refused("[backend]\ntype = yubikey\n", 2,
		       "unknown backend type 'yubikey'");
}

static void
test_backend_tpm(void **state)
{
	(void)state;
	assert_int_equal(load("[backend]\ntype = tpm\n"
			      "tcti = swtpm:host=127.0.0.1,port=2321\n"),
			 0);
	assert_string_equal(cfg.backend.type, "tpm");
	assert_string_equal(cfg.backend.tcti, "swtpm:host=127.0.0.1,port=2321");
	assert_int_equal(cfg.backend.kill_switch_index, 0x01500100);
	assert_int_equal(load("[backend]\ntype = tpm\ntcti = tabrmd\n"
			      "kill_switch_index = 0x01500200\n"),
			 0);
	assert_int_equal(cfg.backend.kill_switch_index, 0x01500200);
	/* tcti is required for a TPM, and only meaningful for one. */
	expect_refused("[backend]\ntype = tpm\n", 2, "type = tpm needs a tcti");
	expect_refused("[backend]\ntype = pkcs11\ntcti = tabrmd\n", 3,
		       "apply only to type = tpm");
	/* EK certificate range and non-NV handles are refused. */
	expect_refused("[backend]\ntype = tpm\ntcti = tabrmd\n"
		       "kill_switch_index = 0x01c0000a\n",
		       4, "is not an owner NV index");
	expect_refused("[backend]\ntype = tpm\ntcti = tabrmd\n"
		       "kill_switch_index = 0x81000001\n",
		       4, "is not an owner NV index");
	expect_refused("[backend]\ntype = tpm\ntcti = tabrmd\n"
		       "kill_switch_index = 0x015x\n",
		       4, "is not an owner NV index");
	/* nv: the audit anchor's counter */
	assert_int_equal(load("[backend]\ntype = tpm\ntcti = tabrmd\n"), 0);
	assert_int_equal(cfg.backend.audit_counter_index, 0x01500101);
	assert_int_equal(load("[backend]\ntype = tpm\ntcti = tabrmd\n"
			      "audit_counter_index = 0x01500300\n"),
			 0);
	assert_int_equal(cfg.backend.audit_counter_index, 0x01500300);
	expect_refused("[backend]\ntype = tpm\ntcti = tabrmd\n"
		       "audit_counter_index = 0x01500100\n",
		       4, "must differ from kill_switch_index");
	expect_refused("[backend]\ntype = pkcs11\n"
		       "audit_counter_index = 0x01500300\n",
		       3, "applies only to type = tpm");
}

/* Connection caps and the refusal interval (server.c, refusals.c). */
static void
test_limits(void **state)
{
	(void)state;
	assert_int_equal(load("[stintd]\n"), 0);
	assert_int_equal(cfg.max_connections, 1024);
	assert_int_equal(cfg.max_connections_per_uid, 256);
	assert_int_equal(cfg.audit.refusal_interval, 10);
	assert_int_equal(load("[stintd]\nmax_connections = 16\n"
			      "max_connections_per_uid = 1\n"
			      "[audit]\nrefusal_interval = 1m\n"),
			 0);
	assert_int_equal(cfg.max_connections, 16);
	assert_int_equal(cfg.max_connections_per_uid, 1);
	assert_int_equal(cfg.audit.refusal_interval, 60);
	expect_refused("[stintd]\nmax_connections = 15\n", 2,
		       "bad max_connections '15'");
	expect_refused("[stintd]\nmax_connections = 65537\n", 2,
		       "bad max_connections");
	expect_refused("[stintd]\nmax_connections_per_uid = 0\n", 2,
		       "bad max_connections_per_uid '0'");
	expect_refused("[audit]\nrefusal_interval = 0s\n", 2,
		       "bad refusal_interval");
	expect_refused("[audit]\nrefusal_interval = 2h\n", 2,
		       "bad refusal_interval '2h'");
	expect_refused("[stintd]\nrefusal_interval = 10s\n", 2,
		       "belongs in [audit]");
}

static void
test_backend_key_pool(void **state)
{
	(void)state;
	assert_int_equal(load("[backend]\ntype = pkcs11\n"), 0);
	assert_int_equal(cfg.backend.key_pool, 4);
	assert_int_equal(load("[backend]\nkey_pool = 0\n"), 0);
	assert_int_equal(cfg.backend.key_pool, 0);
	assert_int_equal(load("[backend]\nkey_pool = 64\n"), 0);
	assert_int_equal(cfg.backend.key_pool, 64);
	expect_refused("[backend]\nkey_pool = 65\n", 2, "bad key_pool '65'");
	expect_refused("[backend]\nkey_pool = -1\n", 2, "bad key_pool '-1'");
	expect_refused("[backend]\nkey_pool = 4x\n", 2, "bad key_pool '4x'");
	expect_refused("[backend]\nkey_pool = +3\n", 2, "bad key_pool");
	/* TPM keys bind the task deadline at creation: no pool. */
	expect_refused("[backend]\ntype = tpm\ntcti = tabrmd\nkey_pool = 2\n",
		       4, "key_pool applies only to type = pkcs11");
}

static void
test_backend_prepared_ops(void **state)
{
	(void)state;
	assert_int_equal(load("[backend]\ntype = pkcs11\n"), 0);
	assert_int_equal(cfg.backend.prepared_ops, 16);
	assert_int_equal(load("[backend]\nprepared_ops = 0\n"), 0);
	assert_int_equal(cfg.backend.prepared_ops, 0);
	assert_int_equal(load("[backend]\nprepared_ops = 256\n"), 0);
	assert_int_equal(cfg.backend.prepared_ops, 256);
	expect_refused("[backend]\nprepared_ops = 257\n", 2,
		       "bad prepared_ops '257': use a number from 0 (off) to "
		       "256");
	expect_refused("[backend]\nprepared_ops = yes\n", 2,
		       "bad prepared_ops 'yes'");
	expect_refused("[backend]\ntype = tpm\ntcti = tabrmd\n"
		       "prepared_ops = 2\n",
		       4, "prepared_ops applies only to type = pkcs11");
}

/* [stintd] retention: default 30d, a duration, or 0 / off. */
static void
test_retention(void **state)
{
	(void)state;
	assert_int_equal(load("[stintd]\n"), 0);
	assert_int_equal(cfg.retention, 30 * 86400);
	assert_int_equal(load("[stintd]\nretention = 2s\n"), 0);
	assert_int_equal(cfg.retention, 2);
	assert_int_equal(load("[stintd]\nretention = 7d\n"), 0);
	assert_int_equal(cfg.retention, 7 * 86400);
	assert_int_equal(load("[stintd]\nretention = 0\n"), 0);
	assert_int_equal(cfg.retention, 0);
	assert_int_equal(load("[stintd]\nretention = off\n"), 0);
	assert_int_equal(cfg.retention, 0);
	expect_refused("[stintd]\nretention = forever\n", 2,
		       "bad retention 'forever'");
	expect_refused("[backend]\nretention = 1d\n", 2,
		       "it belongs in [stintd]");
}

static void
test_sync_value(void **state)
{
	(void)state;
	expect_refused("[audit]\nsync = sometimes\n", 2,
		       "bad sync value 'sometimes'");
	expect_refused("[audit]\nsync = Always\n", 2, "bad sync value");
}

static void
test_ca_section(void **state)
{
	(void)state;
	assert_int_equal(load("[ca]\nkey = ec-p384\nskew = 2m\n"), 0);
	assert_int_equal(cfg.ca.key_type, STINT_KEY_EC_P384);
	assert_int_equal(cfg.ca.skew, 120);
	assert_int_equal(load("[ca]\nkey = ec-p256\nskew = 10m\n"), 0);
	assert_int_equal(cfg.ca.key_type, STINT_KEY_EC_P256);
	assert_int_equal(cfg.ca.skew, 600);
	assert_int_equal(load("[ca]\nskew = 0\n"), 0);
	assert_int_equal(cfg.ca.skew, 0);
	assert_int_equal(cfg.ca.key_type, STINT_KEY_EC_P256);
	expect_refused("[ca]\nkey = rsa-2048\n", 2,
		       "bad CA key type 'rsa-2048': use ec-p256 or ec-p384");
	expect_refused("[ca]\nkey = EC-P256\n", 2, "bad CA key type");
	expect_refused("[ca]\nskew = 11m\n", 2,
		       "bad skew '11m': use a duration from 0 to 10m");
	expect_refused("[ca]\nskew = -5s\n", 2, "bad skew");
	expect_refused("[ca]\nskew = soon\n", 2, "bad skew");
	/* The keys belong to [ca] and nowhere else. */
	expect_refused("[stintd]\nskew = 60s\n", 2, "skew");
	expect_refused("[ca]\nkey = ec-p256\nkey = ec-p384\n", 3, "key");
}

static void
test_relative_paths(void **state)
{
	(void)state;
	expect_refused("[stintd]\nstate_dir = var/lib/stint\n", 2,
		       "state_dir must be an absolute path");
	expect_refused("[stintd]\nruntime_dir = ./run\n", 2,
		       "runtime_dir must be an absolute path");
	expect_refused("[backend]\nmodule = libsofthsm2.so\n", 2,
		       "module must be an absolute path");
	expect_refused("[backend]\npin_file = hsm.pin\n", 2,
		       "pin_file must be an absolute path");
	expect_refused("[audit]\npath = audit.log\n", 2,
		       "path must be an absolute path");
}

static void
test_token_label(void **state)
{
	(void)state;
	/* 32 bytes is the PKCS#11 limit and fits. */
	assert_int_equal(
		load("[backend]\ntoken = 0123456789abcdef0123456789abcdef\n"),
		0);
	assert_string_equal(cfg.backend.token,
			    "0123456789abcdef0123456789abcdef");
	expect_refused("[backend]\ntoken = 0123456789abcdef0123456789abcdefX\n",
		       2, "at most 32");
}

static void
test_trust_domain(void **state)
{
	static const char *const bad[] = {
		"Example.org",  "-example.org", "example-.org",
		"a..b",         ".example.org", "example.org.",
		"exa mple.org", "spiffe://x",   "ex/ample",
	};
	char text[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[stintd]\ntrust_domain = %s\n",
			 bad[i]);
		expect_refused(text, 2, "is not a valid domain name");
	}
	assert_int_equal(load("[stintd]\ntrust_domain = prod_1.a-b.example\n"),
			 0);
	assert_string_equal(cfg.trust_domain, "prod_1.a-b.example");
	assert_int_equal(load("[stintd]\ntrust_domain = localhost\n"), 0);
}

static void
test_duplicate_key(void **state)
{
	(void)state;
	expect_refused("[backend]\ntoken = a\nmodule = /x.so\ntoken = b\n", 4,
		       "duplicate key 'token' in [backend] (first set on "
		       "line 2)");
	/* Across two [backend] sections it is still a duplicate. */
	expect_refused("[backend]\ntoken = a\n[stintd]\n[backend]\ntoken = b\n",
		       5, "duplicate key 'token'");
}

static void
test_syntax_error(void **state)
{
	(void)state;
	expect_refused("[stintd]\nstate_dir = /x\nthis line has no equals\n", 3,
		       "syntax error");
	expect_refused("[stintd\n", 1, "syntax error");
	expect_refused("[stintd]\nstate_dir\n", 2, "syntax error");
}

static void
test_empty_value(void **state)
{
	(void)state;
	expect_refused("[stintd]\nstate_dir =\n", 2, "needs a value");
	expect_refused("[stintd]\nstate_dir =    ; nothing\n", 2,
		       "needs a value");
}

static void
test_first_error_wins(void **state)
{
	(void)state;
	/* A syntax error before a semantic one is the one reported, and
	 * vice versa. */
	expect_refused("[stintd]\nbroken\nfoo = 1\n", 2, "syntax error");
	expect_refused("[stintd]\nfoo = 1\nbroken\n", 2, "unknown key 'foo'");
}

static void
test_long_line(void **state)
{
	char text[1200];

	(void)state;
	snprintf(text, sizeof(text), "[stintd]\nstate_dir = /%0900d\n", 0);
	expect_refused(text, 2, "line too long");
}

/* ---- PIN file ---------------------------------------------------------- */

static char pin[64];

static int
read_pin_text(const char *text, mode_t mode)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/hsm.pin", dir);
	write_file(path, text, mode);
	memset(err, 0, sizeof(err));
	memset(pin, 'X', sizeof(pin));
	return stint_config_read_pin(path, pin, sizeof(pin), err, sizeof(err));
}

static void
test_pin_ok(void **state)
{
	(void)state;
	assert_int_equal(read_pin_text("123456", 0600), 0);
	assert_string_equal(pin, "123456");
	assert_int_equal(read_pin_text("123456\n", 0600), 0);
	assert_string_equal(pin, "123456");
	assert_int_equal(read_pin_text("123456\r\n", 0400), 0);
	assert_string_equal(pin, "123456");
	/* Only one line ending is stripped. */
	assert_int_equal(read_pin_text("12 34\n\n", 0600), 0);
	assert_string_equal(pin, "12 34\n");
}

static void
test_pin_modes(void **state)
{
	char path[160], want[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/hsm.pin", dir);
	assert_int_equal(read_pin_text("123456\n", 0640), -1);
	snprintf(want, sizeof(want),
		 "PIN file %s is group- or world-accessible (mode 0640); "
		 "chmod 600 %s",
		 path, path);
	assert_string_equal(err, want);
	assert_string_equal(pin, ""); /* nothing leaked into the output */

	assert_int_equal(read_pin_text("123456\n", 0604), -1);
	assert_non_null(strstr(err, "(mode 0604); chmod 600"));
	assert_int_equal(read_pin_text("123456\n", 0610), -1);
	assert_non_null(strstr(err, "group- or world-accessible"));
}

static void
test_pin_not_regular(void **state)
{
	char sub[160];

	(void)state;
	snprintf(sub, sizeof(sub), "%s/pindir", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(
		stint_config_read_pin(sub, pin, sizeof(pin), err, sizeof(err)),
		-1);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(rmdir(sub), 0);
}

static void
test_pin_empty_missing_long(void **state)
{
	char path[160], big[128];

	(void)state;
	assert_int_equal(read_pin_text("", 0600), -1);
	assert_non_null(strstr(err, "is empty"));
	assert_int_equal(read_pin_text("\n", 0600), -1);
	assert_non_null(strstr(err, "is empty"));
	assert_int_equal(read_pin_text("\r\n", 0600), -1);
	assert_non_null(strstr(err, "is empty"));

	/* 63 bytes fill the 64-byte buffer exactly, with or without \r\n. */
	memset(big, '7', 63);
	big[63] = '\0';
	assert_int_equal(read_pin_text(big, 0600), 0);
	assert_int_equal(strlen(pin), 63);
	memcpy(big + 63, "\r\n", 3);
	assert_int_equal(read_pin_text(big, 0600), 0);
	assert_int_equal(strlen(pin), 63);
	memset(big, '7', 64);
	big[64] = '\0';
	assert_int_equal(read_pin_text(big, 0600), -1);
	assert_non_null(strstr(err, "too long"));
	memset(big, '7', 100);
	big[100] = '\0';
	assert_int_equal(read_pin_text(big, 0600), -1);
	assert_non_null(strstr(err, "too long"));

	snprintf(path, sizeof(path), "%s/absent.pin", dir);
	assert_int_equal(
		stint_config_read_pin(path, pin, sizeof(pin), err, sizeof(err)),
		-1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, strerror(ENOENT)));
}

/* prov: agents.d files; each write replaces the directory's one file
 * (plus extra, a second file, when given). */
static int
load_agents(const char *text, const char *extra, struct stint_agents_decl *decl)
{
	char d[160], f[200];

	assert_int_equal(load(""), 0);
	snprintf(d, sizeof(d), "%s/agents.d", dir);
	assert_string_equal(cfg.agents_dir, d);
	(void)mkdir(d, 0755);
	snprintf(f, sizeof(f), "%s/10-a.conf", d);
	write_file(f, text, 0644);
	snprintf(f, sizeof(f), "%s/20-b.conf", d);
	if (extra != NULL)
		write_file(f, extra, 0644);
	else
		(void)unlink(f);
	memset(err, 0, sizeof(err));
	return stint_agents_dir_load(&cfg, decl, err, sizeof(err));
}

static void
expect_agents_refused(const char *text, const char *extra, const char *file,
		      int line, const char *what)
{
	struct stint_agents_decl decl;
	char where[256];

	assert_int_equal(load_agents(text, extra, &decl), -1);
	assert_int_equal(decl.n, 0);
	snprintf(where, sizeof(where), "%s/agents.d/%s:%d: ", dir, file, line);
	if (strncmp(err, where, strlen(where)) != 0)
		fail_msg("expected '%s' at the start of '%s'", where, err);
	if (strstr(err, what) == NULL)
		fail_msg("expected '%s' in '%s'", what, err);
}

static void
test_agents_dir(void **state)
{
	struct stint_agents_decl decl;

	(void)state;
	assert_int_equal(load_agents("; two agents\n"
				     "[agent billing]\n"
				     "uid = 1000\n"
				     "max_ttl = 30m ; inline\n"
				     "mechanisms = ecdsa\n"
				     "\n"
				     "[agent deploy]\n"
				     "uid = 0\n"
				     "gid = 0\n"
				     "exe = /usr/bin/true\n",
				     NULL, &decl),
			 0);
	assert_int_equal(decl.n, 2);
	assert_string_equal(decl.v[0].name, "billing");
	assert_int_equal(decl.v[0].uid, 1000);
	assert_int_equal(decl.v[0].gid, -1);
	assert_int_equal(decl.v[0].max_ttl, 1800);
	assert_int_equal(decl.v[0].n_mechs, 1);
	assert_int_equal(decl.line[0], 2);
	assert_non_null(strstr(decl.v[0].source, "/agents.d/10-a.conf"));
	assert_int_equal(decl.v[1].gid, 0);
	assert_int_equal(decl.v[1].max_ttl, 3600); /* [stintd] max_ttl */
	assert_true(decl.v[1].n_mechs > 1);        /* all, as agent add */
	assert_string_equal(decl.v[1].sel.exe, "/usr/bin/true");
	stint_agents_decl_free(&decl);

	/* A relative config still gives an absolute agents.d (stintd
	 * changes to / when it daemonizes). */
	{
		char cwd[PATH_MAX], want[200];

		assert_non_null(getcwd(cwd, sizeof(cwd)));
		assert_int_equal(chdir(dir), 0);
		assert_int_equal(
			stint_config_load("stint.conf", &cfg, err, sizeof(err)),
			0);
		assert_int_equal(chdir(cwd), 0);
		snprintf(want, sizeof(want), "%s/agents.d", dir);
		assert_string_equal(cfg.agents_dir, want);
	}

	expect_agents_refused("[agent a]\nuid = 1\nttl = 1h\n", NULL,
			      "10-a.conf", 3, "unknown key 'ttl' in [agent a]");
	expect_agents_refused("[agent a]\ngid = 1\n[agent b]\nuid = 2\n", NULL,
			      "10-a.conf", 1, "agent 'a' needs a uid");
	expect_agents_refused("[agent a]\nuid = 1\n[agent b]\n", NULL,
			      "10-a.conf", 3, "agent 'b' needs a uid");
	expect_agents_refused("[agents a]\nuid = 1\n", NULL, "10-a.conf", 1,
			      "use [agent NAME]");
	expect_agents_refused("uid = 1\n", NULL, "10-a.conf", 1,
			      "outside any section");
	expect_agents_refused("[agent a]\nuid = 1\nuid = 2\n", NULL,
			      "10-a.conf", 3, "duplicate key 'uid'");
	expect_agents_refused("[agent a]\nuid = 1\nmechanisms = rot13\n", NULL,
			      "10-a.conf", 3, "unknown mechanism 'rot13'");
	expect_agents_refused("[agent a]\nuid = 1\nmax_ttl = 2h\n", NULL,
			      "10-a.conf", 3, "at most stintd's max_ttl");
	expect_agents_refused("[agent a]\nuid = 1\nexe = true\n", NULL,
			      "10-a.conf", 3, "bad exe 'true'");
	expect_agents_refused("[agent a]\nuid = 1\n", "\n[agent a]\nuid = 2\n",
			      "20-b.conf", 2, "already declared at");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_agents_dir),
		cmocka_unit_test(test_audit_path_follows_state_dir),
		cmocka_unit_test(test_full_with_inline_comments),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_bad_duration),
		cmocka_unit_test(test_default_above_max),
		cmocka_unit_test(test_backend_type),
		cmocka_unit_test(test_backend_tpm),
		cmocka_unit_test(test_backend_key_pool),
		cmocka_unit_test(test_backend_prepared_ops),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_sync_value),
		cmocka_unit_test(test_ca_section),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_token_label),
		cmocka_unit_test(test_trust_domain),
		cmocka_unit_test(test_retention),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_empty_value),
		cmocka_unit_test(test_first_error_wins),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_pin_ok),
		cmocka_unit_test(test_pin_modes),
		cmocka_unit_test(test_pin_not_regular),
		cmocka_unit_test(test_pin_empty_missing_long),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
