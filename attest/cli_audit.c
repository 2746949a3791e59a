/* stint audit verify|tail, stint status */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "attest/audit.h"
#include "attest/cli.h"
#include "common/duration.h"
#include "common/hex.h"
#include "stint/wire.h"

/* How often `audit verify` re-reads stintd's head when the log grew while
 * it was being verified. */
#define VERIFY_ATTEMPTS 5

void
stint_help_audit(FILE *f)
{
	fprintf(f,
		"usage: stint audit verify [FILE...] [--head SEQ:HASH]\n"
		"                          [--attestation-key PEM] "
		"[--allow-unpinned-tail] [--json]\n"
		"       stint audit tail [-n N] [--root-task ID] [--json]\n"
		"       stint audit rotate\n"
		"\n"
		"verify checks the hash chain of the audit log and names the "
		"first bad line\n"
		"(a changed byte, a removed or reordered line). With FILE it "
		"works offline\n"
		"on that file; --head SEQ:HASH then also requires the log to "
		"end "
		"at that\n"
		"record (as printed by 'stint status'). Without FILE it asks "
		"stintd for the\n"
		"log's path and head, so a cut tail is detected too.\n"
		"\n"
		"Several FILEs (rotated logs, oldest first) are checked as one "
		"chain.\n"
		"--attestation-key (from 'stint ca attestation-key') checks "
		"every signed\n"
		"checkpoint and requires the log to end with one.\n"
		"\n"
		"tail prints the last N records (default 10, at most 1000) as "
		"stored.\n"
		"rotate closes the log and continues the chain in a new file "
		"(as SIGHUP).\n"
		"\n"
		"  --head SEQ:HASH  the last record's seq and hash (64 hex "
		"digits)\n"
		"  --attestation-key PEM  verify the checkpoints' signatures\n"
		"  --allow-unpinned-tail  accept records after the last "
		"checkpoint\n"
		"  -n, --lines N    number of records (tail)\n"
		"  --root-task ID   tail: the SIGN records of task ID and "
		"every task\n"
		"                   delegated below it (default 100 of them)\n"
		"  --json           print JSON (tail: an array of the "
		"records)\n");
}

void
stint_help_status(FILE *f)
{
	fprintf(f,
		"usage: stint status [--json]\n"
		"\n"
		"Show stintd's pid, uptime, backend, trust domain, number of "
		"agents and live\n"
		"tasks, and the audit log's path, sync mode and head.\n"
		"\n"
		"  --json  print JSON\n");
}

static int
fetch_status(const struct stint_cli *cli, const char *what,
	     struct stint_status_rep *st)
{
	struct stint_msg *rep = NULL;

	memset(st, 0, sizeof(*st));
	if (stint_cli_call(cli, what, stint_cli_request(STINT_OP_STATUS),
			   &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	stint_get_status_rep(rep, st);
	stint_msg_free(rep);
	return STINT_EXIT_OK;
}

/* "SEQ:HASH" → anchor. */
static int
parse_head(const char *s, struct stint_audit_anchor *anchor)
{
	const char *colon = strchr(s, ':');
	char seq[24];
	size_t n;

	if (colon == NULL || (n = (size_t)(colon - s)) == 0 || n >= sizeof(seq))
		return -1;
	memcpy(seq, s, n);
	seq[n] = '\0';
	if (stint_cli_parse_u64(seq, &anchor->seq) != 0 ||
	    strlen(colon + 1) != 64 ||
	    stint_hex_decode(colon + 1, anchor->hash, 32) != 0)
		return -1;
	anchor->set = true;
	return 0;
}

/* The verifier's reason may already start with "line N: "; the output
 * names the line itself. */
static const char *
bare_reason(const struct stint_audit_report *rep)
{
	char prefix[40];
	size_t n;

	n = (size_t)snprintf(prefix, sizeof(prefix),
			     "line %llu: ", (unsigned long long)rep->bad_line);
	if (rep->bad_line != 0 && strncmp(rep->reason, prefix, n) == 0)
		return rep->reason + n;
	return rep->reason;
}

/* nv: the TPM audit counter values the checkpoints carry, and the TPM's
 * own value when stintd reported it. */
static void
nv_json(json_t *o, const struct stint_audit_report *rep, const uint64_t *tpm)
{
	json_object_set_new(o, "nv_checkpoints",
			    json_integer((json_int_t)rep->nv_checkpoints));
	json_object_set_new(o, "nv_first",
			    rep->nv_checkpoints
				    ? json_integer((json_int_t)rep->nv_first)
				    : json_null());
	json_object_set_new(o, "nv_last",
			    rep->nv_checkpoints
				    ? json_integer((json_int_t)rep->nv_last)
				    : json_null());
	if (tpm != NULL)
		json_object_set_new(o, "tpm_audit_counter",
				    json_integer((json_int_t)*tpm));
}

static void
nv_print(const struct stint_audit_report *rep, const uint64_t *tpm)
{
	if (rep->nv_checkpoints > 0)
		printf("TPM audit counter: %llu checkpoints carry it, from "
		       "%llu "
		       "to %llu",
		       (unsigned long long)rep->nv_checkpoints,
		       (unsigned long long)rep->nv_first,
		       (unsigned long long)rep->nv_last);
	else if (tpm != NULL)
		printf("TPM audit counter: no checkpoint carries it");
	else
		return;
	if (tpm != NULL)
		printf("; stintd's TPM holds %llu", (unsigned long long)*tpm);
	printf("\n");
}

static int
verify_report(const char *path, const struct stint_audit_anchor *anchor,
	      const struct stint_audit_report *rep, int rc, bool json,
	      const uint64_t *tpm_nv)
{
	char hex[65];
	json_t *o;

	if (rc < 0) {
		stint_cli_err("audit verify: cannot read the log: %s%s",
			      rep->reason[0] ? rep->reason : path,
			      strstr(rep->reason, strerror(EACCES)) != NULL
				      ? " (run as root or stintd's user, or "
					"verify a copy)"
				      : "");
		return STINT_EXIT_FAIL;
	}
	if (json) {
		o = json_object();
		if (o != NULL) {
			json_object_set_new(o, "ok", json_boolean(rc == 0));
			json_object_set_new(o, "path", json_string(path));
			json_object_set_new(
				o, "records",
				json_integer((json_int_t)rep->records));
			if (rc == 0) {
				stint_hex_encode(rep->last_hash, 32, hex);
				json_object_set_new(
					o, "last_seq",
					json_integer(
						(json_int_t)rep->last_seq));
				json_object_set_new(o, "last_hash",
						    json_string(hex));
			} else {
				json_object_set_new(
					o, "bad_line",
					json_integer(
						(json_int_t)rep->bad_line));
				json_object_set_new(
					o, "reason",
					json_string(bare_reason(rep)));
			}
			json_object_set_new(o, "anchored",
					    json_boolean(anchor->set));
			if (rc != 0 && rep->bad_file != NULL)
				json_object_set_new(o, "bad_file",
						    json_string(rep->bad_file));
			json_object_set_new(
				o, "checkpoints",
				json_integer((json_int_t)rep->checkpoints));
			json_object_set_new(
				o, "checkpoints_verified",
				json_boolean(rep->checkpoints_checked));
			json_object_set_new(
				o, "checkpointed_seq",
				json_integer((json_int_t)rep->checkpointed));
			nv_json(o, rep, tpm_nv);
		}
		if (stint_cli_print_json(o) != STINT_EXIT_OK)
			return STINT_EXIT_FAIL;
		return rc == 0 ? STINT_EXIT_OK : STINT_EXIT_FAIL;
	}
	if (rc == 0) {
		printf("audit log OK: %llu records, last seq %llu\n",
		       (unsigned long long)rep->records,
		       (unsigned long long)rep->last_seq);
		if (rep->first_seq > 1)
			printf("continues an earlier file at seq %llu (pass "
			       "it too to check the link)\n",
			       (unsigned long long)rep->first_seq);
		if (rep->checkpoints_checked)
			printf("checkpoints: %llu verified, the last covers "
			       "seq %llu; %llu records after it\n",
			       (unsigned long long)rep->checkpoints,
			       (unsigned long long)rep->checkpointed,
			       (unsigned long long)rep->unpinned);
		else if (rep->checkpoints > 0)
			printf("checkpoints: %llu, signatures not checked "
			       "(pass --attestation-key)\n",
			       (unsigned long long)rep->checkpoints);
		nv_print(rep, tpm_nv);
		return STINT_EXIT_OK;
	}
	if (rep->bad_line != 0)
		printf("audit log BROKEN at line %llu of %s: %s\n",
		       (unsigned long long)rep->bad_line,
		       rep->bad_file != NULL ? rep->bad_file : path,
		       bare_reason(rep));
	else
		printf("audit log BROKEN%s%s: %s\n",
		       rep->bad_file != NULL ? " in " : "",
		       rep->bad_file != NULL ? rep->bad_file : "", rep->reason);
	return STINT_EXIT_FAIL;
}

/* Without FILE: verify stintd's own log against the head it reports. The
 * daemon keeps appending, so a mismatch only counts when stintd's head did
 * not move while we were reading. */
static int
verify_live(const struct stint_cli *cli, bool json)
{
	struct stint_audit_anchor anchor;
	struct stint_audit_report rep;
	struct stint_status_rep st, again;
	int attempt, rc = -1;

	for (attempt = 0; attempt < VERIFY_ATTEMPTS; attempt++) {
		if (fetch_status(cli, "audit verify", &st) != STINT_EXIT_OK)
			return STINT_EXIT_FAIL;
		if (st.path[0] == '\0') {
			stint_cli_err("audit verify: stintd did not say where "
				      "its audit log is; pass the FILE "
				      "(see [audit] path in stint.conf)");
			return STINT_EXIT_FAIL;
		}
		memset(&anchor, 0, sizeof(anchor));
		if (st.has_head) {
			anchor.set = true;
			anchor.seq = st.audit_seq;
			memcpy(anchor.hash, st.audit_hash, 32);
		}
		memset(&rep, 0, sizeof(rep));
		rc = stint_audit_verify_file(st.path, &anchor, &rep);
		if (rc != 1 || !anchor.set)
			break;
		if (fetch_status(cli, "audit verify", &again) != STINT_EXIT_OK)
			return STINT_EXIT_FAIL;
		if (again.audit_seq == st.audit_seq)
			break;
	}
	return verify_report(st.path, &anchor, &rep, rc, json,
			     st.has_nv ? &st.audit_nv : NULL);
}

static EVP_PKEY *
read_pem_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	if (f == NULL)
		return NULL;
	k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

static int
audit_verify(const struct stint_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"head", required_argument, NULL, 'H'},
		{"attestation-key", required_argument, NULL, 'k'},
		{"allow-unpinned-tail", no_argument, NULL, 'u'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct stint_audit_verify_opts vo;
	struct stint_audit_anchor anchor;
	struct stint_audit_report rep;
	const char *head = NULL, *akpath = NULL;
	bool json = false, unpinned = false;
	int c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":H:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			head = optarg;
			break;
		case 'k':
			akpath = optarg;
			break;
		case 'u':
			unpinned = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			stint_help_audit(stdout);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option("audit verify", c, argv);
		}
	}
	memset(&anchor, 0, sizeof(anchor));
	if (head != NULL && parse_head(head, &anchor) != 0)
		return stint_cli_usage("audit verify",
				       "--head '%s': use SEQ:HASH, e.g. "
				       "42:<64 hex digits>",
				       head);
	if (optind == argc) {
		if (head != NULL || akpath != NULL)
			return stint_cli_usage("audit verify",
					       "--head and --attestation-key "
					       "need a FILE (without one, "
					       "stintd's head is used)");
		return verify_live(cli, json);
	}
	memset(&vo, 0, sizeof(vo));
	vo.anchor = &anchor;
	vo.allow_unpinned_tail = unpinned;
	if (akpath != NULL && (vo.ak = read_pem_key(akpath)) == NULL) {
		stint_cli_err("audit verify: %s: not a PEM public key (use "
			      "'stint ca attestation-key > ak.pem')",
			      akpath);
		return STINT_EXIT_FAIL;
	}
	memset(&rep, 0, sizeof(rep));
	rc = stint_audit_verify_files((const char *const *)argv + optind,
				      (size_t)(argc - optind), &vo, &rep);
	EVP_PKEY_free(vo.ak);
	return verify_report(argv[argc - 1], &anchor, &rep, rc, json, NULL);
}

static int
audit_tail(const struct stint_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"lines", required_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"root-task", required_argument, NULL, 'r'}, /* deleg */
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct stint_msg *req, *rep = NULL;
	struct stint_audit_tail_req tr;
	const char *n_s = NULL, *root = NULL;
	uint64_t count = 10;
	size_t n = 0, i;
	bool json = false;
	json_t *arr = NULL, *rec;
	json_error_t jerr;
	char *line = NULL;
	int c, ret = STINT_EXIT_FAIL;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":n:r:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (!stint_cli_task_id_ok(optarg))
				return stint_cli_usage("audit tail",
						       "--root-task '%s': bad "
						       "task id",
						       optarg);
			root = optarg;
			break;
		case 'n':
			n_s = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			stint_help_audit(stdout);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option("audit tail", c, argv);
		}
	}
	if (optind != argc)
		return stint_cli_usage("audit tail", "unexpected argument '%s'",
				       argv[optind]);
	if (n_s != NULL && (stint_cli_parse_u64(n_s, &count) != 0 ||
			    count < 1 || count > 1000))
		return stint_cli_usage("audit tail",
				       "-n '%s': need a number from 1 to 1000",
				       n_s);
	if (root != NULL && n_s == NULL)
		count = 100;
	/* deleg: the SIGN records of a delegation tree (AUDIT_TREE) */
	if ((req = stint_cli_request(root != NULL ? STINT_OP_AUDIT_TREE
						  : STINT_OP_AUDIT_TAIL)) ==
	    NULL)
		return STINT_EXIT_FAIL;
	tr = (struct stint_audit_tail_req){.has_count = true, .count = count};
	if (stint_enc_audit_tail_req(req, &tr) != 0 ||
	    (root != NULL &&
	     stint_msg_put_text(req, STINT_K_TASK, root) != 0)) {
		stint_msg_free(req);
		stint_cli_err("audit tail: cannot build the request");
		return STINT_EXIT_FAIL;
	}
	if (stint_cli_call(cli, "audit tail", req, &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	if (stint_get_audit_tail_n(rep, &n) != 0)
		goto bad;
	if ((line = malloc(STINT_FRAME_MAX)) == NULL ||
	    (json && (arr = json_array()) == NULL)) {
		stint_cli_err("out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (stint_get_audit_tail_line(rep, i, line, STINT_FRAME_MAX) !=
		    0)
			goto bad;
		if (!json) {
			printf("%s\n", line);
			continue;
		}
		/* A damaged line is still shown, as a string: tail is for
		 * looking, verify is for judging. */
		if ((rec = json_loads(line, JSON_REJECT_DUPLICATES, &jerr)) ==
		    NULL)
			rec = json_string(line);
		json_array_append_new(arr, rec);
	}
	if (json) {
		ret = stint_cli_print_json(arr);
		arr = NULL;
	} else {
		ret = STINT_EXIT_OK;
	}
	goto out;
bad:
	stint_cli_err("audit tail: stintd sent a bad reply: are stint and "
		      "stintd the same version?");
out:
	json_decref(arr);
	free(line);
	stint_msg_free(rep);
	return ret;
}

static int
audit_rotate(const struct stint_cli *cli, int argc, char **argv)
{
	struct stint_audit_rotate_rep rr;
	struct stint_msg *rep = NULL;

	if (argc > 1 &&
	    (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		stint_help_audit(stdout);
		return STINT_EXIT_OK;
	}
	if (argc > 1)
		return stint_cli_usage("audit rotate",
				       "unexpected argument '%s'", argv[1]);
	if (stint_cli_call(cli, "audit rotate",
			   stint_cli_request(STINT_OP_AUDIT_ROTATE),
			   &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	stint_get_audit_rotate_rep(rep, &rr);
	printf("audit log rotated: records up to seq %llu are in %s\n",
	       (unsigned long long)(rr.seq > 0 ? rr.seq - 1 : 0), rr.path);
	stint_msg_free(rep);
	return STINT_EXIT_OK;
}

int
stint_cmd_audit(const struct stint_cli *cli, int argc, char **argv)
{
	if (strcmp(argv[0], "rotate") == 0)
		return audit_rotate(cli, argc, argv);
	if (strcmp(argv[0], "verify") == 0)
		return audit_verify(cli, argc, argv);
	if (strcmp(argv[0], "tail") == 0)
		return audit_tail(cli, argc, argv);
	return stint_cli_usage("audit", "no such command 'audit %s'", argv[0]);
}

/* Names of SIGN refusals, by wire status (JSON keys, metric labels). */
static const char *const refused_names[STINT_REFUSED_N] = {
	[STINT_E_BAD_REQUEST] = "bad_request",
	[STINT_E_VERSION] = "version",
	[STINT_E_NO_AGENT] = "no_agent",
	[STINT_E_NOT_YOURS] = "not_yours",
	[STINT_E_NOT_LIVE] = "not_live",
	[STINT_E_MECHANISM] = "mechanism",
	[STINT_E_BUDGET] = "budget",
	[STINT_E_INTERNAL] = "internal",
};

static const char *const counter_names[STINT_C_N] = {
	[STINT_C_SIGN_ALLOWED] = "sign_allowed",
	[STINT_C_TASK_STARTS] = "task_starts",
	[STINT_C_TASK_ENDS] = "task_ends",
	[STINT_C_TASK_EXPIRES] = "task_expires",
	[STINT_C_BACKEND_ERRORS] = "backend_errors",
	[STINT_C_AUDIT_FAILURES] = "audit_write_failures",
	[STINT_C_AUDIT_BYTES] = "audit_bytes",
	[STINT_C_AUDIT_PENDING] = "audit_pending",
};

static uint64_t
refused_total(const struct stint_status_rep *st)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < STINT_REFUSED_N; i++)
		n += st->refused[i];
	return n;
}

/* sign_refused_by_reason: every named reason (0 too, so that a scraper
 * sees a stable set), and any status this CLI has no name for as its
 * number. */
static json_t *
refused_json(const struct stint_status_rep *st)
{
	char name[16];
	json_t *o;
	size_t i;

	if ((o = json_object()) == NULL)
		return NULL;
	for (i = 1; i < STINT_REFUSED_N; i++) {
		if (refused_names[i] == NULL && st->refused[i] == 0)
			continue;
		if (refused_names[i] == NULL)
			snprintf(name, sizeof(name), "status_%zu", i);
		json_object_set_new(o,
				    refused_names[i] ? refused_names[i] : name,
				    json_integer((json_int_t)st->refused[i]));
	}
	return o;
}

static void
counters_json(json_t *o, const struct stint_status_rep *st)
{
	size_t i;

	if (!st->has_counters)
		return;
	for (i = 0; i < STINT_C_N; i++)
		json_object_set_new(o, counter_names[i],
				    json_integer((json_int_t)st->counters[i]));
	json_object_set_new(o, "sign_refused",
			    json_integer((json_int_t)refused_total(st)));
	json_object_set_new(o, "sign_refused_by_reason", refused_json(st));
}

static void
counters_print(const struct stint_status_rep *st)
{
	const uint64_t *c = st->counters;
	size_t i;
	bool first = true;

	if (!st->has_counters)
		return;
	printf("signatures    %llu allowed, %llu refused",
	       (unsigned long long)c[STINT_C_SIGN_ALLOWED],
	       (unsigned long long)refused_total(st));
	for (i = 1; i < STINT_REFUSED_N; i++) {
		if (st->refused[i] == 0)
			continue;
		printf("%s%s %llu", first ? " (" : ", ",
		       refused_names[i] ? refused_names[i] : "other",
		       (unsigned long long)st->refused[i]);
		first = false;
	}
	printf("%s\n", first ? "" : ")");
	printf("tasks         %llu started, %llu ended, %llu expired\n",
	       (unsigned long long)c[STINT_C_TASK_STARTS],
	       (unsigned long long)c[STINT_C_TASK_ENDS],
	       (unsigned long long)c[STINT_C_TASK_EXPIRES]);
	printf("audit size    %llu bytes\n",
	       (unsigned long long)c[STINT_C_AUDIT_BYTES]);
	printf("errors        %llu backend, %llu audit write, "
	       "%llu audit records pending\n",
	       (unsigned long long)c[STINT_C_BACKEND_ERRORS],
	       (unsigned long long)c[STINT_C_AUDIT_FAILURES],
	       (unsigned long long)c[STINT_C_AUDIT_PENDING]);
}

static json_t *
status_json(const struct stint_status_rep *st)
{
	char hex[65];
	json_t *o;

	if ((o = json_object()) == NULL)
		return NULL;
	json_object_set_new(o, "version",
			    json_integer((json_int_t)st->version));
	json_object_set_new(o, "pid", json_integer((json_int_t)st->pid));
	json_object_set_new(o, "uptime", json_integer((json_int_t)st->uptime));
	json_object_set_new(o, "backend", json_string(st->backend));
	json_object_set_new(o, "trust_domain", json_string(st->trust_domain));
	json_object_set_new(o, "agents",
			    json_integer((json_int_t)st->n_agents));
	json_object_set_new(o, "live_tasks",
			    json_integer((json_int_t)st->n_live));
	if (st->has_ready) {
		json_object_set_new(o, "ready_keys",
				    json_integer((json_int_t)st->ready_keys));
		json_object_set_new(o, "ready_keys_target",
				    json_integer((json_int_t)st->ready_target));
		json_object_set_new(o, "prepared_ops",
				    json_integer((json_int_t)st->prepared));
		json_object_set_new(o, "prepared_ops_max",
				    json_integer((json_int_t)st->prepared_max));
		json_object_set_new(
			o, "session_copies",
			json_integer((json_int_t)st->session_copies));
	}
	json_object_set_new(o, "audit_path", json_string(st->path));
	json_object_set_new(o, "audit_sync", json_string(st->sync));
	json_object_set_new(o, "audit_seq",
			    json_integer((json_int_t)st->audit_seq));
	json_object_set_new(o, "audit_nv_counter",
			    st->has_nv ? json_integer((json_int_t)st->audit_nv)
				       : json_null());
	if (st->has_head) {
		stint_hex_encode(st->audit_hash, 32, hex);
		json_object_set_new(o, "audit_hash", json_string(hex));
	} else {
		json_object_set_new(o, "audit_hash", json_null());
	}
	counters_json(o, st);
	return o;
}

int
stint_cmd_status(const struct stint_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct stint_status_rep st;
	bool json = false;
	char up[32], hex[65];
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			stint_help_status(stdout);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option("status", c, argv);
		}
	}
	if (optind != argc)
		return stint_cli_usage("status", "unexpected argument '%s'",
				       argv[optind]);
	if (fetch_status(cli, "status", &st) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	if (json)
		return stint_cli_print_json(status_json(&st));
	if (st.uptime > 0)
		stint_duration_format(st.uptime, up, sizeof(up));
	else
		snprintf(up, sizeof(up), "0s");
	printf("stintd        pid %llu, up %s, protocol %llu\n",
	       (unsigned long long)st.pid, up, (unsigned long long)st.version);
	printf("socket        %s\n", cli->socket);
	printf("backend       %s\n", st.backend);
	printf("trust domain  %s\n", st.trust_domain);
	printf("agents        %llu\n", (unsigned long long)st.n_agents);
	printf("live tasks    %llu\n", (unsigned long long)st.n_live);
	if (st.has_ready) {
		printf("ready keys    %llu of %llu (key_pool)\n",
		       (unsigned long long)st.ready_keys,
		       (unsigned long long)st.ready_target);
		printf("prepared ops  %llu of %llu (prepared_ops)\n",
		       (unsigned long long)st.prepared,
		       (unsigned long long)st.prepared_max);
		printf("session copies %llu (signing keys)\n",
		       (unsigned long long)st.session_copies);
	}
	printf("audit log     %s (sync %s)\n", st.path, st.sync);
	if (st.has_head) {
		stint_hex_encode(st.audit_hash, 32, hex);
		printf("audit head    %llu:%s\n",
		       (unsigned long long)st.audit_seq, hex);
	}
	if (st.has_nv)
		printf("audit counter %llu (TPM NV)\n",
		       (unsigned long long)st.audit_nv);
	counters_print(&st);
	return STINT_EXIT_OK;
}
