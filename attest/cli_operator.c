/* stint operator add|list|remove (issue 12 §5; operator.h) */

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "attest/cli.h"
#include "common/duration.h"
#include "common/proto.h"
#include "common/proto_operator.h"
#include "stint/wire.h"

void
stint_help_operator(FILE *f)
{
	fprintf(f,
		"usage: stint operator add NAME --uid UID|USER --agents "
		"A[,B...]\n"
		"                     [--max-ttl DUR]\n"
		"       stint operator list [--json]\n"
		"       stint operator remove NAME\n"
		"\n"
		"Operators are orchestrators without root: processes of the "
		"operator's uid\n"
		"may use admin.sock to start, end, list and show tasks of the "
		"named agents\n"
		"only (stint task start|end|list|show). They cannot add or "
		"remove agents\n"
		"or operators, use the kill switch, read the audit log, or "
		"see other\n"
		"agents' tasks; each refusal says why and is audited. Only "
		"root and\n"
		"stintd's user may run these commands.\n"
		"\n"
		"  --uid UID|USER   the operator's processes (not root, not "
		"stintd's user;\n"
		"                   one operator per uid)\n"
		"  --agents LIST    comma-separated registered agents it may "
		"act for (1-%d)\n"
		"  --max-ttl DUR    longest task it may start (default: the "
		"agent's limit);\n"
		"                   tasks it starts without --ttl get at most "
		"this\n"
		"  --json           print JSON (list)\n",
		STINT_OPERATOR_AGENTS_MAX);
}

/* "a,b" → o->agents; strict: names as agent add takes them, no empty
 * item, no duplicate. */
static int
parse_agents(const char *list, struct stint_operator_info *o, char *bad,
	     size_t cap)
{
	const char *p = list, *comma;
	size_t len, i;

	o->n_agents = 0;
	for (;;) {
		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (o->n_agents == STINT_OPERATOR_AGENTS_MAX) {
			snprintf(bad, cap, "at most %d agents",
				 STINT_OPERATOR_AGENTS_MAX);
			return -1;
		}
		if (len == 0 || len > STINT_NAME_MAX) {
			snprintf(bad, cap, "bad agent name '%.*s'", (int)len,
				 p);
			return -1;
		}
		memcpy(o->agents[o->n_agents], p, len);
		o->agents[o->n_agents][len] = '\0';
		if (!stint_cli_name_ok(o->agents[o->n_agents])) {
			snprintf(bad, cap,
				 "bad agent name '%s': use 1 to %d of A-Z "
				 "a-z 0-9 . _ -",
				 o->agents[o->n_agents], STINT_NAME_MAX);
			return -1;
		}
		for (i = 0; i < o->n_agents; i++) {
			if (strcmp(o->agents[i], o->agents[o->n_agents]) == 0) {
				snprintf(bad, cap, "agent '%s' named twice",
					 o->agents[i]);
				return -1;
			}
		}
		o->n_agents++;
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

static int
operator_add(const struct stint_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"uid", required_argument, NULL, 'u'},
		{"agents", required_argument, NULL, 'a'},
		{"max-ttl", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *uid_s = NULL, *agents_s = NULL, *ttl_s = NULL, *name;
	struct stint_operator_info o;
	struct stint_msg *req, *rep = NULL;
	uint64_t uid = 0, ttl = 0;
	char bad[160];
	int c;

	memset(&o, 0, sizeof(o));
	optind = 0;
	while ((c = getopt_long(argc, argv, ":u:a:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			uid_s = optarg;
			break;
		case 'a':
			agents_s = optarg;
			break;
		case 't':
			ttl_s = optarg;
			break;
		case 'h':
			stint_help_operator(stdout);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option("operator add", c, argv);
		}
	}
	if (optind != argc - 1)
		return stint_cli_usage("operator add",
				       "'operator add' takes exactly one NAME");
	name = argv[optind];
	if (!stint_cli_name_ok(name))
		return stint_cli_bad_name("operator add", "operator", name);
	if (uid_s == NULL)
		return stint_cli_usage("operator add", "--uid is required");
	if (stint_cli_parse_uid(uid_s, &uid) != 0)
		return stint_cli_usage("operator add",
				       "--uid '%s': no such user or uid",
				       uid_s);
	if (uid == 0)
		return stint_cli_usage("operator add",
				       "--uid 0: root administers stintd "
				       "already; an operator needs a uid of "
				       "its own");
	if (agents_s == NULL)
		return stint_cli_usage("operator add", "--agents is required");
	if (parse_agents(agents_s, &o, bad, sizeof(bad)) != 0)
		return stint_cli_usage("operator add", "--agents: %s", bad);
	if (ttl_s != NULL &&
	    (stint_duration_parse(ttl_s, &ttl) != 0 || ttl == 0))
		return stint_cli_usage("operator add",
				       "--max-ttl '%s': bad duration (use "
				       "e.g. 90s, 15m, 1h)",
				       ttl_s);
	memcpy(o.name, name, strlen(name) + 1);
	o.uid = (uint32_t)uid;
	o.max_ttl = ttl;
	if ((req = stint_cli_request(STINT_OP_OPERATOR_ADD)) == NULL)
		return STINT_EXIT_FAIL;
	if (stint_enc_operator_add_req(req, &o) != 0) {
		stint_msg_free(req);
		stint_cli_err("operator add: cannot build the request");
		return STINT_EXIT_FAIL;
	}
	if (stint_cli_call(cli, "operator add", req, &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	stint_msg_free(rep);
	printf("operator %s added (uid %llu, agents %s)\n", name,
	       (unsigned long long)uid, agents_s);
	return STINT_EXIT_OK;
}

static json_t *
operator_to_json(const struct stint_operator_info *o)
{
	json_t *j, *agents;
	char t[40];
	size_t i;

	if ((j = json_object()) == NULL || (agents = json_array()) == NULL) {
		json_decref(j);
		return NULL;
	}
	for (i = 0; i < o->n_agents; i++)
		json_array_append_new(agents, json_string(o->agents[i]));
	json_object_set_new(j, "name", json_string(o->name));
	json_object_set_new(j, "uid", json_integer((json_int_t)o->uid));
	json_object_set_new(j, "agents", agents);
	if (o->max_ttl > 0)
		json_object_set_new(j, "max_ttl",
				    json_integer((json_int_t)o->max_ttl));
	else
		json_object_set_new(j, "max_ttl", json_null());
	stint_cli_time(o->created, t, sizeof(t));
	json_object_set_new(j, "created", json_string(t));
	/* prov: the operators.d file declaring it, or "cli" */
	json_object_set_new(
		j, "source",
		json_string(o->source[0] != '\0' ? o->source : "cli"));
	return j;
}

static void
print_operators(const struct stint_operator_info *ops, size_t n)
{
	size_t i, j, w = 4;
	char ttl[32], t[40];

	for (i = 0; i < n; i++)
		if (strlen(ops[i].name) > w)
			w = strlen(ops[i].name);
	printf("%-*s  %6s  %-7s  %-20s  %s\n", (int)w, "NAME", "UID", "MAX TTL",
	       "CREATED", "AGENTS");
	for (i = 0; i < n; i++) {
		if (ops[i].max_ttl > 0)
			stint_duration_format(ops[i].max_ttl, ttl, sizeof(ttl));
		else
			snprintf(ttl, sizeof(ttl), "agent");
		stint_cli_time(ops[i].created, t, sizeof(t));
		printf("%-*s  %6lu  %-7s  %-20s  ", (int)w, ops[i].name,
		       (unsigned long)ops[i].uid, ttl, t);
		for (j = 0; j < ops[i].n_agents; j++)
			printf("%s%s", j ? "," : "", ops[i].agents[j]);
		printf("\n");
	}
}

static int
operator_list(const struct stint_cli *cli, int argc, char **argv)
{
	struct stint_operator_info *ops = NULL;
	struct stint_msg *req, *rep = NULL;
	bool json;
	json_t *arr;
	size_t n = 0, i;
	int ret;

	ret = stint_cli_json_opts("operator list", argc, argv,
				  stint_help_operator, &json);
	if (ret != STINT_CLI_GO)
		return ret;
	ret = STINT_EXIT_FAIL;
	if (optind != argc)
		return stint_cli_usage("operator list",
				       "'operator list' takes no arguments");
	if ((req = stint_cli_request(STINT_OP_OPERATOR_LIST)) == NULL)
		return STINT_EXIT_FAIL;
	if (stint_cli_call(cli, "operator list", req, &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	if (stint_get_operator_list_rep(rep, &ops, &n) != 0) {
		stint_cli_err("operator list: stintd sent a malformed list: "
			      "are stint and stintd the same version?");
		goto out;
	}
	if (json) {
		if ((arr = json_array()) == NULL)
			goto out;
		for (i = 0; i < n; i++)
			json_array_append_new(arr, operator_to_json(&ops[i]));
		ret = stint_cli_print_json(arr);
	} else {
		print_operators(ops, n);
		ret = STINT_EXIT_OK;
	}
out:
	free(ops);
	stint_msg_free(rep);
	return ret;
}

static int
operator_remove(const struct stint_cli *cli, int argc, char **argv)
{
	struct stint_msg *req, *rep = NULL;
	const char *name;

	if (argc == 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		stint_help_operator(stdout);
		return STINT_EXIT_OK;
	}
	if (argc != 2)
		return stint_cli_usage("operator remove",
				       "'operator remove' takes exactly one "
				       "NAME");
	name = argv[1];
	if (!stint_cli_name_ok(name))
		return stint_cli_bad_name("operator remove", "operator", name);
	req = stint_cli_name_request(STINT_OP_OPERATOR_REMOVE, STINT_K_OPERATOR,
				     name);
	if (req == NULL)
		return STINT_EXIT_FAIL;
	if (stint_cli_call(cli, "operator remove", req, &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	stint_msg_free(rep);
	printf("operator %s removed\n", name);
	return STINT_EXIT_OK;
}

int
stint_cmd_operator(const struct stint_cli *cli, int argc, char **argv)
{
	if (strcmp(argv[0], "add") == 0)
		return operator_add(cli, argc, argv);
	if (strcmp(argv[0], "list") == 0)
		return operator_list(cli, argc, argv);
	if (strcmp(argv[0], "remove") == 0)
		return operator_remove(cli, argc, argv);
	return stint_cli_usage("operator", "no such subcommand '%s'", argv[0]);
}
