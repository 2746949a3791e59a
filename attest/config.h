/* stintd configuration: /etc/stint/stint.conf (INI, libinih). */
#ifndef STINT_ATTEST_CONFIG_H
#define STINT_ATTEST_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum stint_audit_sync { STINT_SYNC_ALWAYS, STINT_SYNC_BATCH, STINT_SYNC_NONE };
/* [audit] forward: where each record also goes (audit_forward.h) */
enum stint_audit_fwd_kind {
	STINT_FWD_NONE,
	STINT_FWD_JOURNAL,
	STINT_FWD_SYSLOG
};

#define STINT_KEY_POOL_MAX         64
#define STINT_KEY_POOL_DEFAULT     4
#define STINT_PREPARED_OPS_MAX     256 /* STINT_PREP_MAX in p11_prep.h */
#define STINT_PREPARED_OPS_DEFAULT 16
/* tpm: task keys kept loaded; swtpm has 3 object slots, 1 is the primary */
#define STINT_TPM_LOADED_KEYS_MAX     64
#define STINT_TPM_LOADED_KEYS_DEFAULT 2
#define STINT_RETENTION_DEFAULT       (30 * 86400) /* 30d */

/* [audit] checkpoint, seconds */
#define STINT_AUDIT_CHECKPOINT_DEFAULT 60
#define STINT_CONNS_MAX                65536

/* Default paths from configure's directories (Makefile.am passes them):
 * /etc/stint, /var/lib/stint, /run/stint with --sysconfdir=/etc
 * --localstatedir=/var --runstatedir=/run. */
#define STINT_CONFIG_DEFAULT      SYSCONFDIR "/stint/stint.conf"
#define STINT_PIN_FILE_DEFAULT    SYSCONFDIR "/stint/hsm.pin"
#define STINT_STATE_DIR_DEFAULT   LOCALSTATEDIR "/lib/stint"
#define STINT_RUNTIME_DIR_DEFAULT RUNSTATEDIR "/stint"

struct stint_config {
	char state_dir[PATH_MAX];   /* default STINT_STATE_DIR_DEFAULT */
	char runtime_dir[PATH_MAX]; /* default STINT_RUNTIME_DIR_DEFAULT */
	/* prov: agents declared in *.conf files here (agents_dir.h);
	 * default agents.d beside the configuration file */
	char agents_dir[PATH_MAX];
	/* prov: [stintd] agents = files-only: agents.d is the only source of
	 * agents, `stint agent add/remove` are refused (default both) */
	bool agents_files_only;
	/* prov: operators declared in *.conf files here (operators_dir.c);
	 * default operators.d beside the configuration file */
	char operators_dir[PATH_MAX];
	char trust_domain[256]; /* default example.org */
	uint64_t default_ttl;   /* seconds, default 15m */
	uint64_t max_ttl;       /* seconds, default 1h */
	/* Ended and expired tasks (rows and evidence files) are pruned this
	 * long after they ended; their audit records stay. Seconds, default
	 * 30d, 0: never. */
	uint64_t retention;
	/* agent.sock connection caps (server.c); stintd lowers them at start
	 * to fit its open-file limit. */
	uint32_t max_connections;         /* default 1024, 16 to 65536 */
	uint32_t max_connections_per_uid; /* default 256, 1 to 65536 */
	/* budget: signatures a budgeted task reserves per committed write
	 * to state.db (budget.h); default 64, 1 commits each signature */
	uint32_t budget_block;
	/* Executables larger than this are not hashed (peer.h); bytes,
	 * default 256 MiB, 0: never hash. */
	uint64_t exe_hash_max;
	struct {
		char type[16]; /* "pkcs11" or "tpm" */
		char module[PATH_MAX];
		char token[33]; /* token label, at most 32 bytes */
		char pin_file[PATH_MAX];
		/* tpm: a tpm2-tss TCTI string, required ("device:/dev/tpmrm0",
		 * "swtpm:host=127.0.0.1,port=2321", "tabrmd") */
		char tcti[256];
		uint32_t kill_switch_index; /* NV index, default 0x01500100 */
		/* nv: the audit anchor's NV counter, default 0x01500101 */
		uint32_t audit_counter_index;
		/* pkcs11 only: ec-p256 keys generated ahead of time under
		 * fresh task ids and kept ready, so a task start takes one
		 * (and its id) instead of generating. Default 4, 0 disables. */
		uint32_t key_pool;
		/* pkcs11 only: signing operations initialised ahead
		 * (C_SignInit) for keys that just signed, each holding a
		 * session. Default 16, 0 disables. */
		uint32_t prepared_ops;
		/* tpm only: keys kept loaded in the TPM between signatures,
		 * least recently used flushed first. Default 2, 0 disables. */
		uint32_t tpm_loaded_keys;
	} backend;
	struct {
		/* CA key type when stintd creates it: STINT_KEY_EC_P256
		 * (default) or STINT_KEY_EC_P384. An existing CA key of
		 * another type is kept (with a warning), never replaced. */
		uint32_t key_type;
		/* notBefore allowance for clock skew between hosts, seconds:
		 * default 60 (STINT_CA_SKEW), at most 600. */
		uint64_t skew;
		/* The task extension's OID, dotted; "" for Stint's default
		 * (cert_ext.h). Every arc below 2^63. */
		char extension_oid[128];
	} ca;
	struct {
		char path[PATH_MAX];        /* default <state_dir>/audit.log */
		enum stint_audit_sync sync; /* default batch */
		/* seconds between signed checkpoints (audit_anchor.c) */
		uint64_t checkpoint;
		/* refused SIGNs of one uid beyond the first few are counted
		 * into one record per this many seconds (refusals.h) */
		uint64_t refusal_interval; /* default 10s, 1s to 1h */
		/* forward: a copy of each record to the journal or syslog;
		 * forward_socket: "" for the default socket of that kind */
		enum stint_audit_fwd_kind forward; /* default none */
		char forward_socket[108];
	} audit;
	struct {
		/* bind: where stint run's cgroups are made, below the cgroup
		 * v2 root; not set: stintd picks "/stint" or its own
		 * cgroup + "/runs" at start (watch.c) */
		char cgroup_parent[256];
		bool cgroup_parent_set; /* set in the file */
	} run;
};

/* Loads and validates. On failure returns -1 with err naming the file,
 * line and what to fix ("stint.conf:7: unknown key 'foo' in [backend]").
 * Checks here are about the file only; stintd checks the module, token and
 * PIN when it opens the backend. */
int stint_config_load(const char *path, struct stint_config *cfg, char *err,
		      size_t errlen);
/* The INI reader stint.conf and agents.d files share: counts lines, strips
 * inline comments and leading blanks, refuses over-long lines and checks
 * "[section]" lines with section_ok (which reports why a name is refused
 * with stint_ini_error). Errors read "PATH:LINE: what: what to do". */
#define STINT_INI_SECTION_MAX 128
struct stint_ini {
	const char *path; /* set by the caller */
	bool (*section_ok)(struct stint_ini *ini, const char *name);
	/* reader state */
	const char *text;
	size_t len, pos;
	int lineno; /* the line being handled */
	bool section_known;
	char section[STINT_INI_SECTION_MAX]; /* current section, in full */
	int err_line;                        /* first error found, 0: none */
	char err[512];
};
/* Records the first error, at the current line. */
void stint_ini_error(struct stint_ini *ini, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Feeds text to inih; handler(user, section, name, value) as inih's. 0, or
 * -1 with err "PATH:LINE: ...". */
int stint_ini_parse(struct stint_ini *ini, const char *text, size_t len,
		    int (*handler)(void *, const char *, const char *,
				   const char *),
		    void *user, char *err, size_t errlen);
/* -1 with err "PATH:LINE: ..." when an error was recorded, else 0. */
int stint_ini_failed(const struct stint_ini *ini, char *err, size_t errlen);

/* Reads the PIN file: refuses one that is group- or world-readable or not a
 * regular file; strips one trailing newline. The caller wipes pin with
 * OPENSSL_cleanse. */
int stint_config_read_pin(const char *pin_file, char *pin, size_t cap,
			  char *err, size_t errlen);
const char *stint_sync_str(enum stint_audit_sync s);

#endif
