/* stint task start|end|list|show */

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#include "attest/cli.h"
#include "common/duration.h"
#include "common/mechanism.h"
#include "attest/evidence.h"
#include "stint/wire.h"

void
stint_help_task(FILE *f)
{
	fprintf(f,
		"usage: stint task start --agent NAME [--ttl DUR] [--key "
		"TYPE]\n"
		"                  [--max-signatures N] [--intent TEXT] "
		"[--json "
		"| --quiet]\n"
		"                  [--bind-pid PID | --bind-cgroup PATH]\n"
		"                  [--audience NAME]...\n"
		"       stint task end ID [--reason TEXT]\n"
		"       stint task list [--agent NAME] [--all] [--json]\n"
		"       stint task show ID [--json | --pem | --cert]\n"
		"       stint task evidence ID > EVIDENCE\n"
		"\n"
		"Start a task (a fresh key in the token, usable by the agent "
		"until the task\n"
		"ends or expires), end it (the key is destroyed before the "
		"command returns),\n"
		"list tasks and show one. 'task evidence' prints the "
		"attestation evidence\n"
		"of the task's key (check it with 'stint attest verify').\n"
		"\n"
		"  --agent NAME          the agent the task is for\n"
		"  --ttl DUR             lifetime, e.g. 10m (default: stintd's "
		"default_ttl)\n"
		"  --key TYPE            ec-p256 (default), ec-p384, rsa-2048, "
		"rsa-3072\n"
		"  --max-signatures N    signature budget (default: "
		"unlimited)\n"
		"  --intent TEXT         what the task is for; kept in the "
		"audit "
		"log\n"
		"  --bind-pid PID        only that process may use the task; "
		"it ends when\n"
		"                        the process exits\n"
		"  --bind-cgroup PATH    only processes in that cgroup v2 (and "
		"below) may use\n"
		"                        the task; it ends when the cgroup is "
		"empty\n"
		"  --audience NAME       a system the task may authenticate "
		"to, one of the\n"
		"                        agent's --audiences (repeatable; "
		"default: all of them)\n"
		"  -q, --quiet           print only the task id (start)\n"
		"  --reason TEXT         why the task ends (end)\n"
		"  --all                 include ended and expired tasks "
		"(list)\n"
		"  --pem                 print the public key as PEM (show)\n"
		"  --cert                print the certificate as PEM (show)\n"
		"  --json                print JSON\n"
		"\n"
		"The agent uses the key through stint-pkcs11.so with the URI "
		"printed by\n"
		"'task start', e.g. pkcs11:token=NAME;object=ID.\n");
}

/* Everything a task map holds, as JSON; NULL if a required field is
 * missing. PEM forms of the key and certificate only when asked. */
static json_t *
pem_json(const char *type, const uint8_t *der, size_t len)
{
	json_t *s = NULL;
	BIO *bio;
	char *p;
	long n;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	if (PEM_write_bio(bio, type, "", der, (long)len) > 0 &&
	    (n = BIO_get_mem_data(bio, &p)) > 0)
		s = json_stringn(p, (size_t)n);
	BIO_free(bio);
	return s;
}

/* bind: "bound_to": {"pid", "start_time"} or {"cgroup", "run"}. */
static void
bind_to_json(const struct stint_task_info *t, json_t *o)
{
	json_t *b;

	if (t->bind_pid != 0)
		b = json_pack("{s:I, s:I}", "pid", (json_int_t)t->bind_pid,
			      "start_time", (json_int_t)t->bind_start);
	else if (t->bind_cgroup[0] != '\0')
		b = json_pack("{s:s, s:b}", "cgroup", t->bind_cgroup, "run",
			      t->bind_owned);
	else
		return;
	if (b != NULL)
		json_object_set_new(o, "bound_to", b);
}

/* "pid 1234", "cgroup /stint/run-…", "" for an unbound task. */
static void
bound_str(json_t *o, char *buf, size_t cap)
{
	json_t *b = json_object_get(o, "bound_to");

	if (b == NULL)
		snprintf(buf, cap, "%s", "");
	else if (json_object_get(b, "pid") != NULL)
		snprintf(buf, cap, "pid %lld",
			 (long long)json_integer_value(
				 json_object_get(b, "pid")));
	else
		snprintf(buf, cap, "cgroup %s",
			 json_string_value(json_object_get(b, "cgroup")));
}

static json_t *
mechs_json(const struct stint_task_info *t)
{
	const struct stint_mech *mech;
	json_t *arr = json_array();
	size_t i;

	for (i = 0; i < t->n_mechs && arr != NULL; i++) {
		if ((mech = stint_mech_find(t->mechs[i])) != NULL)
			json_array_append_new(arr,
					      json_string(mech->short_name));
		else
			json_array_append_new(
				arr, json_integer((json_int_t)t->mechs[i]));
	}
	return arr;
}

static void
set_time(json_t *o, const char *key, uint64_t t)
{
	char buf[40];

	stint_cli_time(t, buf, sizeof(buf));
	json_object_set_new(o, key, json_string(buf));
}

/* deleg: "parent" (null for a root), "root", "depth", "path",
 * "reserved", when stintd sent the tree. */
static void
tree_to_json(const struct stint_task_info *t, json_t *o)
{
	if (t->root[0] == '\0')
		return;
	json_object_set_new(o, "parent",
			    t->parent[0] ? json_string(t->parent)
					 : json_null());
	json_object_set_new(o, "root", json_string(t->root));
	json_object_set_new(o, "depth", json_integer((json_int_t)t->depth));
	json_object_set_new(o, "path", json_string(t->dpath));
	json_object_set_new(o, "reserved",
			    json_integer((json_int_t)t->reserved));
}

static json_t *
task_to_json(const struct stint_task_info *t, bool pems)
{
	char uri[512];
	const char *kt;
	json_t *o;

	if ((o = json_object()) == NULL)
		return NULL;
	json_object_set_new(o, "id", json_string(t->id));
	json_object_set_new(o, "agent", json_string(t->agent));
	if (t->uri[0] != '\0')
		snprintf(uri, sizeof(uri), "%s", t->uri);
	else
		snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=%s",
			 t->agent, t->id);
	json_object_set_new(o, "uri", json_string(uri));
	kt = stint_key_type_str(t->key_type);
	json_object_set_new(o, "key_type", json_string(kt ? kt : "unknown"));
	json_object_set_new(o, "state",
			    json_string(t->state[0] ? t->state : "unknown"));
	set_time(o, "created", t->created);
	set_time(o, "not_after", t->not_after);
	json_object_set_new(o, "not_after_unix",
			    json_integer((json_int_t)t->not_after));
	if (t->has_ended)
		set_time(o, "ended", t->ended);
	if (t->reason[0] != '\0')
		json_object_set_new(o, "reason", json_string(t->reason));
	/* The public view (agent.sock, for non-administrators) has no
	 * counters: leave them out rather than show zeros. 0 on the wire
	 * means unlimited; null says so without a magic number. */
	if (t->has_sigs) {
		json_object_set_new(
			o, "max_signatures",
			t->max_sigs ? json_integer((json_int_t)t->max_sigs)
				    : json_null());
		json_object_set_new(o, "signatures_used",
				    json_integer((json_int_t)t->used_sigs));
	}
	if (t->intent[0] != '\0')
		json_object_set_new(o, "intent", json_string(t->intent));
	if (t->audiences[0] != '\0') /* aud */
		json_object_set_new(o, "audiences", json_string(t->audiences));
	json_object_set_new(o, "mechanisms", mechs_json(t));
	json_object_set_new(o, "has_certificate",
			    json_boolean(t->cert != NULL));
	bind_to_json(t, o);
	tree_to_json(t, o);
	if (pems && t->spki != NULL)
		json_object_set_new(
			o, "public_key_pem",
			pem_json("PUBLIC KEY", t->spki, t->spki_len));
	if (pems && t->cert != NULL)
		json_object_set_new(
			o, "certificate_pem",
			pem_json("CERTIFICATE", t->cert, t->cert_len));
	return o;
}

static const char *
jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

static void
sigs_str(json_t *o, char *buf, size_t cap)
{
	json_t *max = json_object_get(o, "max_signatures");
	long long used =
		json_integer_value(json_object_get(o, "signatures_used"));

	if (json_is_integer(max))
		snprintf(buf, cap, "%lld/%lld", used,
			 (long long)json_integer_value(max));
	else
		snprintf(buf, cap, "%lld", used);
}

/* The human form of one task: aligned "label  value" lines. */
static void
print_task(json_t *o, bool full)
{
	char rel[48], sigs[48];
	json_t *max, *v;
	size_t i;
	const char *sep = "";

	char bound[STINT_CGROUP_MAX + 16];

	printf("task        %s\n", jstr(o, "id"));
	printf("agent       %s\n", jstr(o, "agent"));
	bound_str(o, bound, sizeof(bound));
	if (bound[0] != '\0')
		printf("bound to    %s\n", bound);
	printf("key         %s\n", jstr(o, "key_type"));
	printf("uri         %s\n", jstr(o, "uri"));
	if (full) {
		printf("state       %s\n", jstr(o, "state"));
		printf("created     %s\n", jstr(o, "created"));
	}
	/* A relative deadline only means something while the task lives. */
	if (strcmp(jstr(o, "state"), "live") == 0) {
		stint_cli_time_rel((uint64_t)json_integer_value(json_object_get(
					   o, "not_after_unix")),
				   rel, sizeof(rel));
		printf("not after   %s (%s)\n", jstr(o, "not_after"), rel);
	} else {
		printf("not after   %s\n", jstr(o, "not_after"));
	}
	if (full && json_object_get(o, "ended") != NULL)
		printf("ended       %s\n", jstr(o, "ended"));
	if (full && json_object_get(o, "reason") != NULL)
		printf("reason      %s\n", jstr(o, "reason"));
	max = json_object_get(o, "max_signatures");
	if (json_object_get(o, "signatures_used") == NULL) {
		/* public view: no counters */
	} else if (full) {
		sigs_str(o, sigs, sizeof(sigs));
		printf("signatures  %s%s\n", sigs,
		       json_is_integer(max) ? " used" : " used (no limit)");
	} else if (json_is_integer(max)) {
		printf("max sigs    %lld\n",
		       (long long)json_integer_value(max));
	} else {
		printf("max sigs    unlimited\n");
	}
	if (full) {
		printf("mechanisms  ");
		json_array_foreach(json_object_get(o, "mechanisms"), i, v)
		{
			if (json_is_string(v))
				printf("%s%s", sep, json_string_value(v));
			else
				printf("%s0x%llx", sep,
				       (unsigned long long)json_integer_value(
					       v));
			sep = ",";
		}
		printf("\n");
		if (json_object_get(o, "intent") != NULL)
			printf("intent      %s\n", jstr(o, "intent"));
		if (json_object_get(o, "audiences") != NULL) /* aud */
			printf("audiences   %s\n", jstr(o, "audiences"));
		printf("certificate %s\n",
		       json_is_true(json_object_get(o, "has_certificate"))
			       ? "yes (--cert prints it)"
			       : "not yet");
	}
}

/* The TASK_START request; every field was checked (sizes included). */
static int
put_optional(struct stint_msg *req, const char *agent, bool has_ttl,
	     uint64_t ttl, const char *key, uint64_t max_sigs,
	     const char *intent, uint32_t bind_pid, const char *bind_cgroup,
	     const char *audiences)
{
	struct stint_task_start_req r;

	memset(&r, 0, sizeof(r));
	if (audiences != NULL) { /* aud */
		snprintf(r.audiences, sizeof(r.audiences), "%s", audiences);
		r.has_audiences = true;
	}
	r.bind_pid = bind_pid;
	if (bind_cgroup != NULL)
		snprintf(r.bind_cgroup, sizeof(r.bind_cgroup), "%s",
			 bind_cgroup);
	snprintf(r.agent, sizeof(r.agent), "%s", agent);
	r.has_ttl = has_ttl;
	r.ttl = ttl;
	if (key != NULL) {
		(void)stint_key_type_parse(key, &r.key_type);
		r.has_key_type = true;
	}
	r.max_sigs = max_sigs;
	if (intent != NULL) {
		snprintf(r.intent, sizeof(r.intent), "%s", intent);
		r.has_intent = true;
	}
	return stint_enc_task_start_req(req, &r);
}

static int
task_start(const struct stint_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"agent", required_argument, NULL, 'a'},
		{"ttl", required_argument, NULL, 't'},
		{"key", required_argument, NULL, 'k'},
		{"max-signatures", required_argument, NULL, 'n'},
		{"intent", required_argument, NULL, 'i'},
		{"bind-pid", required_argument, NULL, 'P'},
		{"bind-cgroup", required_argument, NULL, 'C'},
		{"audience", required_argument, NULL, 'A'}, /* aud */
		{"json", no_argument, NULL, 'j'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *agent = NULL, *ttl_s = NULL, *key = NULL, *intent = NULL;
	const char *sigs_s = NULL, *pid_s = NULL, *cgroup = NULL;
	uint64_t ttl = 0, max_sigs = 0, bind_pid = 0;
	struct stint_msg *req, *rep = NULL;
	bool json = false, quiet = false, has_aud = false;
	char aud[STINT_AUDIENCES_TEXT_MAX + 1] = "";
	struct stint_task_info ti;
	uint32_t kt;
	json_t *o;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":a:t:k:n:i:P:C:A:jqh", opts,
				NULL)) != -1) {
		switch (c) {
		case 'A': /* aud: repeatable */
			if (stint_cli_audience_opt(aud, sizeof(aud), optarg,
						   "task start") != 0)
				return STINT_EXIT_USAGE;
			has_aud = true;
			break;
		case 'P':
			pid_s = optarg;
			break;
		case 'C':
			cgroup = optarg;
			break;
		case 'a':
			agent = optarg;
			break;
		case 't':
			ttl_s = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'n':
			sigs_s = optarg;
			break;
		case 'i':
			intent = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			stint_help_task(stdout);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option("task start", c, argv);
		}
	}
	if (optind != argc)
		return stint_cli_usage("task start", "unexpected argument '%s'",
				       argv[optind]);
	if (agent == NULL)
		return stint_cli_usage("task start", "--agent is required");
	if (!stint_cli_name_ok(agent))
		return stint_cli_bad_name("task start", "agent", agent);
	if (ttl_s != NULL && stint_duration_parse(ttl_s, &ttl) != 0)
		return stint_cli_usage(
			"task start",
			"--ttl '%s': bad duration (use e.g. 90s, "
			"15m, 1h)",
			ttl_s);
	if (key != NULL && stint_key_type_parse(key, &kt) != 0)
		return stint_cli_usage("task start",
				       "--key '%s': use ec-p256, ec-p384, "
				       "rsa-2048 or rsa-3072",
				       key);
	if (sigs_s != NULL &&
	    (stint_cli_parse_u64(sigs_s, &max_sigs) != 0 || max_sigs == 0))
		return stint_cli_usage("task start",
				       "--max-signatures '%s': need a whole "
				       "number of at least 1",
				       sigs_s);
	if (intent != NULL && strlen(intent) > STINT_INTENT_MAX)
		return stint_cli_usage("task start",
				       "--intent is too long (%zu bytes, at "
				       "most %d)",
				       strlen(intent), STINT_INTENT_MAX);
	if (json && quiet)
		return stint_cli_usage("task start",
				       "--json and --quiet do not go together");
	if (pid_s != NULL && (stint_cli_parse_u64(pid_s, &bind_pid) != 0 ||
			      bind_pid == 0 || bind_pid > INT32_MAX))
		return stint_cli_usage("task start",
				       "--bind-pid '%s': need a process id",
				       pid_s);
	if (pid_s != NULL && cgroup != NULL)
		return stint_cli_usage("task start",
				       "--bind-pid and --bind-cgroup do not go "
				       "together");
	if (cgroup != NULL &&
	    (cgroup[0] != '/' || strlen(cgroup) > STINT_CGROUP_MAX))
		return stint_cli_usage(
			"task start",
			"--bind-cgroup '%s': need an absolute "
			"cgroup v2 path (as in /proc/PID/cgroup) "
			"of at most %d bytes",
			cgroup, STINT_CGROUP_MAX);

	if ((req = stint_cli_request(STINT_OP_TASK_START)) == NULL)
		return STINT_EXIT_FAIL;
	if (put_optional(req, agent, ttl_s != NULL, ttl, key, max_sigs, intent,
			 (uint32_t)bind_pid, cgroup,
			 has_aud ? aud : NULL) != 0) {
		stint_msg_free(req);
		stint_cli_err("task start: cannot build the request");
		return STINT_EXIT_FAIL;
	}
	if (stint_cli_call(cli, "task start", req, &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	o = stint_get_task_info(rep, &ti) == 0 ? task_to_json(&ti, false)
					       : NULL;
	stint_msg_free(rep);
	if (o == NULL) {
		stint_cli_err("task start: stintd's reply lacks the task id, "
			      "agent or deadline: are stint and stintd the "
			      "same version?");
		return STINT_EXIT_FAIL;
	}
	if (json)
		return stint_cli_print_json(o);
	if (quiet)
		printf("%s\n", jstr(o, "id"));
	else
		print_task(o, false);
	json_decref(o);
	return STINT_EXIT_OK;
}

/* After a successful TASK_END: "ended", or, when the task was over before
 * this command (ending it again is not an error), when and why. */
static void
print_ended(const struct stint_cli *cli, const char *id, uint64_t before)
{
	struct stint_msg *req, *rep = NULL;
	struct stint_task_info t;
	char when[64];

	req = stint_cli_name_request(STINT_OP_TASK_SHOW, STINT_K_TASK, id);
	/* stint_cli_call frees req. */
	if (req == NULL ||
	    stint_cli_call(cli, "task end", req, &rep) != STINT_EXIT_OK ||
	    stint_get_task_info(rep, &t) != 0 || t.state[0] == '\0') {
		stint_msg_free(rep);
		printf("task %s ended\n", id);
		return;
	}
	if (strcmp(t.state, "expired") == 0) {
		stint_cli_time(t.not_after, when, sizeof(when));
		printf("task %s already expired at %s\n", id, when);
	} else if (t.has_ended && t.ended + 1 < before) {
		stint_cli_time(t.ended, when, sizeof(when));
		printf("task %s already ended at %s%s%s%s\n", id, when,
		       t.reason[0] ? " (" : "", t.reason,
		       t.reason[0] ? ")" : "");
	} else {
		printf("task %s ended\n", id);
	}
	stint_msg_free(rep);
}

static int
task_end(const struct stint_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"reason", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct stint_task_end_req er = {0};
	struct stint_done_rep done;
	struct stint_msg *req, *rep = NULL;
	const char *id, *reason = NULL;
	uint64_t before;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			reason = optarg;
			break;
		case 'h':
			stint_help_task(stdout);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option("task end", c, argv);
		}
	}
	if (optind != argc - 1)
		return stint_cli_usage("task end",
				       "'task end' takes exactly one task ID");
	id = argv[optind];
	if (!stint_cli_task_id_ok(id))
		return stint_cli_usage("task end",
				       "bad task id '%s' (ids look like "
				       "t-0123...; see 'stint task list')",
				       id);
	if (reason != NULL && strlen(reason) > STINT_REASON_MAX)
		return stint_cli_usage("task end",
				       "--reason is too long (%zu bytes, at "
				       "most %d)",
				       strlen(reason), STINT_REASON_MAX);
	if ((req = stint_cli_request(STINT_OP_TASK_END)) == NULL)
		return STINT_EXIT_FAIL;
	snprintf(er.task, sizeof(er.task), "%s", id);
	if (reason != NULL) {
		snprintf(er.reason, sizeof(er.reason), "%s", reason);
		er.has_reason = true;
	}
	if (stint_enc_task_end_req(req, &er) != 0) {
		stint_msg_free(req);
		stint_cli_err("task end: cannot build the request");
		return STINT_EXIT_FAIL;
	}
	before = (uint64_t)time(NULL);
	if (stint_cli_call(cli, "task end", req, &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	/* Ended, with something still pending (see stint(1)). */
	stint_get_done_rep(rep, &done);
	if (done.note[0] != '\0')
		fprintf(stderr, "stint: task end: warning: %s\n", done.note);
	stint_msg_free(rep);
	print_ended(cli, id, before);
	return STINT_EXIT_OK;
}

/* Appends one page of TASK_LIST to arr; *cursor gets the last id and *more
 * whether another page follows. */
static int
list_page(const struct stint_cli *cli, const char *agent, bool all,
	  char cursor[STINT_TASK_ID_MAX + 1], bool *more, json_t *arr)
{
	struct stint_task_list_req lr;
	struct stint_task_info t;
	struct stint_msg *req, *rep = NULL;
	size_t n = 0, i;
	json_t *o;

	if ((req = stint_cli_request(STINT_OP_TASK_LIST)) == NULL)
		return STINT_EXIT_FAIL;
	memset(&lr, 0, sizeof(lr));
	if (agent != NULL) {
		snprintf(lr.agent, sizeof(lr.agent), "%s", agent);
		lr.has_agent = true;
	}
	lr.all = all;
	memcpy(lr.cursor, cursor, sizeof(lr.cursor));
	if (stint_enc_task_list_req(req, &lr) != 0) {
		stint_msg_free(req);
		stint_cli_err("task list: cannot build the request");
		return STINT_EXIT_FAIL;
	}
	if (stint_cli_call(cli, "task list", req, &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	if (stint_get_task_list_rep(rep, &n, more) != 0)
		goto bad;
	for (i = 0; i < n; i++) {
		if (stint_get_task_list_entry(rep, i, &t) != 0 ||
		    (o = task_to_json(&t, false)) == NULL)
			goto bad;
		json_array_append_new(arr, o);
		snprintf(cursor, STINT_TASK_ID_MAX + 1, "%s", jstr(o, "id"));
	}
	/* A "more" with an empty page would loop forever. */
	if (*more && n == 0)
		goto bad;
	stint_msg_free(rep);
	return STINT_EXIT_OK;
bad:
	stint_msg_free(rep);
	stint_cli_err("task list: stintd sent a bad task list: are stint and "
		      "stintd the same version?");
	return STINT_EXIT_FAIL;
}

static void
print_task_table(json_t *arr)
{
	size_t i, wid = 2, wag = 5;
	char sigs[48], bound[STINT_CGROUP_MAX + 16];
	bool any_bound = false;
	json_t *o;

	json_array_foreach(arr, i, o)
	{
		if (strlen(jstr(o, "id")) > wid)
			wid = strlen(jstr(o, "id"));
		if (strlen(jstr(o, "agent")) > wag)
			wag = strlen(jstr(o, "agent"));
		any_bound |= json_object_get(o, "bound_to") != NULL;
	}
	/* BOUND only when a task is bound (bind). */
	printf("%-*s  %-*s  %-8s  %-7s  %-20s  %-*s%s\n", (int)wid, "ID",
	       (int)wag, "AGENT", "KEY", "STATE", "NOT AFTER",
	       any_bound ? 8 : 0, "SIGS", any_bound ? "  BOUND" : "");
	json_array_foreach(arr, i, o)
	{
		sigs_str(o, sigs, sizeof(sigs));
		bound_str(o, bound, sizeof(bound));
		printf("%-*s  %-*s  %-8s  %-7s  %-20s  %-*s%s%s\n", (int)wid,
		       jstr(o, "id"), (int)wag, jstr(o, "agent"),
		       jstr(o, "key_type"), jstr(o, "state"),
		       jstr(o, "not_after"), any_bound ? 8 : 0, sigs,
		       any_bound ? "  " : "", bound);
	}
}

static int
task_list(const struct stint_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"agent", required_argument, NULL, 'a'},
		{"all", no_argument, NULL, 'A'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char cursor[STINT_TASK_ID_MAX + 1] = "";
	const char *agent = NULL;
	bool all = false, json = false, more = true;
	json_t *arr;
	int c, pages = 0;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":a:Ajh", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			agent = optarg;
			break;
		case 'A':
			all = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			stint_help_task(stdout);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option("task list", c, argv);
		}
	}
	if (optind != argc)
		return stint_cli_usage("task list", "unexpected argument '%s'",
				       argv[optind]);
	if (agent != NULL && !stint_cli_name_ok(agent))
		return stint_cli_bad_name("task list", "agent", agent);
	if ((arr = json_array()) == NULL)
		return stint_cli_print_json(NULL);
	while (more) {
		/* Bounded, in case a daemon keeps saying "more". */
		if (++pages > 100000 ||
		    list_page(cli, agent, all, cursor, &more, arr) !=
			    STINT_EXIT_OK) {
			json_decref(arr);
			return STINT_EXIT_FAIL;
		}
	}
	if (json)
		return stint_cli_print_json(arr);
	if (json_array_size(arr) == 0)
		printf("no %stasks%s%s\n", all ? "" : "live ",
		       agent ? " for agent " : "", agent ? agent : "");
	else
		print_task_table(arr);
	json_decref(arr);
	return STINT_EXIT_OK;
}

static int
task_show(const struct stint_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"pem", no_argument, NULL, 'p'},
		{"cert", no_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct stint_msg *req, *rep = NULL;
	bool json = false, pem = false, cert = false;
	struct stint_task_info t;
	const uint8_t *der;
	size_t len;
	const char *id;
	json_t *o;
	int c, ret = STINT_EXIT_FAIL;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":jpch", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'p':
			pem = true;
			break;
		case 'c':
			cert = true;
			break;
		case 'h':
			stint_help_task(stdout);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option("task show", c, argv);
		}
	}
	if (optind != argc - 1)
		return stint_cli_usage("task show",
				       "'task show' takes exactly one task ID");
	if ((int)json + (int)pem + (int)cert > 1)
		return stint_cli_usage("task show",
				       "use only one of --json, --pem, --cert");
	id = argv[optind];
	if (!stint_cli_task_id_ok(id))
		return stint_cli_usage("task show",
				       "bad task id '%s' (ids look like "
				       "t-0123...; see 'stint task list')",
				       id);
	if ((req = stint_cli_name_request(STINT_OP_TASK_SHOW, STINT_K_TASK,
					  id)) == NULL)
		return STINT_EXIT_FAIL;
	/* Anyone may see a task's public facts (agent.sock answers them);
	 * root and stintd's user also see its intent and counters. */
	if (stint_cli_call_public(cli, "task show", req, &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;

	if (stint_get_task_info(rep, &t) != 0) {
		stint_cli_err("task show: stintd's reply lacks the task id, "
			      "agent or deadline: are stint and stintd the "
			      "same version?");
		goto out;
	}
	if (pem || cert) {
		der = cert ? t.cert : t.spki;
		len = cert ? t.cert_len : t.spki_len;
		if (der == NULL) {
			stint_cli_err("task %s has no %s", id,
				      cert ? "certificate yet" : "public key");
			goto out;
		}
		if (PEM_write(stdout, cert ? "CERTIFICATE" : "PUBLIC KEY", "",
			      der, (long)len) <= 0) {
			stint_cli_err("cannot write the PEM output");
			goto out;
		}
		ret = STINT_EXIT_OK;
		goto out;
	}
	if ((o = task_to_json(&t, json)) == NULL) {
		stint_cli_err("task show: out of memory");
		goto out;
	}
	if (json) {
		ret = stint_cli_print_json(o);
		goto out;
	}
	print_task(o, true);
	json_decref(o);
	ret = STINT_EXIT_OK;
out:
	stint_msg_free(rep);
	return ret;
}

/* The evidence document, PEM-armoured, for `stint attest verify`. */
static int
task_evidence(const struct stint_cli *cli, int argc, char **argv)
{
	struct stint_msg *req, *rep = NULL;
	struct stint_evidence_rep er;
	int ret = STINT_EXIT_FAIL;

	if (argc != 2)
		return stint_cli_usage("task",
				       "'task evidence' takes exactly one task "
				       "ID");
	if (!stint_cli_task_id_ok(argv[1]))
		return stint_cli_usage("task", "bad task id '%s'", argv[1]);
	if ((req = stint_cli_name_request(STINT_OP_TASK_EVIDENCE, STINT_K_TASK,
					  argv[1])) == NULL)
		return STINT_EXIT_FAIL;
	if (stint_cli_call(cli, "task evidence", req, &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	if (stint_get_evidence_rep(rep, &er) != 0) {
		stint_cli_err("task evidence: stintd's reply has no evidence");
		goto out;
	}
	if (stint_evidence_pem_write(stdout, er.doc, er.doc_len) != 0) {
		stint_cli_err("cannot write the evidence");
		goto out;
	}
	ret = STINT_EXIT_OK;
out:
	stint_msg_free(rep);
	return ret;
}

json_t *
stint_cli_task_json(const struct stint_msg *m, bool pems)
{
	struct stint_task_info t;

	if (stint_get_task_info(m, &t) != 0)
		return NULL;
	return task_to_json(&t, pems);
}

int
stint_cmd_task(const struct stint_cli *cli, int argc, char **argv)
{
	/* deleg */
	if (strcmp(argv[0], "delegate") == 0)
		return stint_cmd_task_delegate(cli, argc, argv);
	if (strcmp(argv[0], "tree") == 0)
		return stint_cmd_task_tree(cli, argc, argv);
	if (strcmp(argv[0], "start") == 0)
		return task_start(cli, argc, argv);
	if (strcmp(argv[0], "end") == 0)
		return task_end(cli, argc, argv);
	if (strcmp(argv[0], "list") == 0)
		return task_list(cli, argc, argv);
	if (strcmp(argv[0], "show") == 0)
		return task_show(cli, argc, argv);
	if (strcmp(argv[0], "evidence") == 0)
		return task_evidence(cli, argc, argv);
	return stint_cli_usage("task", "no such command 'task %s'", argv[0]);
}
