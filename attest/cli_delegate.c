/*
 * stint delegate (agent.sock, as the agent), stint task delegate (admin),
 * stint task tree (deleg): child tasks narrower than their parent.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/cli.h"
#include "common/audience.h"
#include "common/duration.h"
#include "common/mechanism.h"
#include "common/proto.h"
#include "stint/wire.h"

void
stint_help_delegate(FILE *f)
{
	fprintf(f,
		"usage: stint delegate --parent ID --agent SUB [--ttl DUR]\n"
		"                 [--key-type TYPE] [--mechanisms LIST] "
		"[--max-sigs N]\n"
		"                 [--audience NAME]... [--intent TEXT] "
		"[--json]\n"
		"       stint task delegate PARENT --agent SUB [same "
		"options]\n"
		"       stint task tree ID [--json]\n"
		"\n"
		"Start a child task of PARENT for agent SUB. The child can "
		"never do more\n"
		"or live longer than its parent: its deadline, mechanisms "
		"and audiences\n"
		"are within the parent's, its budget is reserved from the "
		"parent's, SUB\n"
		"must be in the delegating agent's --delegate-to list and "
		"the tree no\n"
		"deeper than every --max-depth along it. Ending the parent "
		"ends the\n"
		"whole tree before the command returns.\n"
		"\n"
		"'stint delegate' runs as the agent over agent.sock "
		"($STINT_SOCKET):\n"
		"the caller must be allowed to sign with PARENT. 'stint task "
		"delegate'\n"
		"is the admin's (or operator's) way over admin.sock. 'stint "
		"task tree'\n"
		"shows a task and its live descendants.\n");
}

struct delegate_opts {
	struct stint_task_start_req sr;
	char parent[STINT_TASK_ID_MAX + 1];
	uint64_t mechs[STINT_MECHS_MAX];
	size_t n_mechs;
	bool json;
};

static int
parse_mechs(const char *verb, const char *list, struct delegate_opts *o)
{
	const struct stint_mech *m;
	char *copy, *tok, *save = NULL;
	int r = 0;

	if ((copy = strdup(list)) == NULL)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok != NULL && r == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		if ((m = stint_mech_by_name(tok)) == NULL ||
		    o->n_mechs == STINT_MECHS_MAX) {
			(void)stint_cli_usage(verb, "--mechanisms: bad '%s'",
					      tok);
			r = -1;
		} else {
			o->mechs[o->n_mechs++] = m->mech;
		}
	}
	free(copy);
	return r;
}

/* One option of delegate / task delegate into o; -1 after a usage
 * error. */
static int
delegate_opt(const char *verb, int c, const char *arg, struct delegate_opts *o)
{
	switch (c) {
	case 'p':
		if (!stint_cli_task_id_ok(arg))
			return stint_cli_usage(verb, "bad task id '%s'", arg),
			       -1;
		snprintf(o->parent, sizeof(o->parent), "%s", arg);
		return 0;
	case 'a':
		if (!stint_cli_name_ok(arg))
			return stint_cli_usage(verb, "bad agent name '%s'",
					       arg),
			       -1;
		snprintf(o->sr.agent, sizeof(o->sr.agent), "%s", arg);
		return 0;
	case 't':
		if (stint_duration_parse(arg, &o->sr.ttl) != 0 ||
		    o->sr.ttl == 0)
			return stint_cli_usage(verb, "--ttl '%s': bad duration",
					       arg),
			       -1;
		o->sr.has_ttl = true;
		return 0;
	case 'k':
		if (stint_key_type_parse(arg, &o->sr.key_type) != 0)
			return stint_cli_usage(verb,
					       "--key-type '%s': use ec-p256, "
					       "ec-p384, rsa-2048 or rsa-3072",
					       arg),
			       -1;
		o->sr.has_key_type = true;
		return 0;
	case 'm':
		return parse_mechs(verb, arg, o);
	case 'n':
		if (stint_cli_parse_u64(arg, &o->sr.max_sigs) != 0 ||
		    o->sr.max_sigs == 0)
			return stint_cli_usage(verb,
					       "--max-sigs '%s': need a whole "
					       "number of at least 1",
					       arg),
			       -1;
		return 0;
	case 'A':
		o->sr.has_audiences = true;
		return stint_cli_audience_opt(
			o->sr.audiences, sizeof(o->sr.audiences), arg, verb);
	case 'i':
		if (strlen(arg) > STINT_INTENT_MAX)
			return stint_cli_usage(verb, "--intent is too long"),
			       -1;
		snprintf(o->sr.intent, sizeof(o->sr.intent), "%s", arg);
		o->sr.has_intent = true;
		return 0;
	case 'j':
		o->json = true;
		return 0;
	}
	return -1;
}

static int
delegate_parse(const char *verb, int argc, char **argv, bool positional,
	       struct delegate_opts *o)
{
	static const struct option opts[] = {
		{"parent", required_argument, NULL, 'p'},
		{"agent", required_argument, NULL, 'a'},
		{"ttl", required_argument, NULL, 't'},
		{"key-type", required_argument, NULL, 'k'},
		{"key", required_argument, NULL, 'k'},
		{"mechanisms", required_argument, NULL, 'm'},
		{"max-sigs", required_argument, NULL, 'n'},
		{"max-signatures", required_argument, NULL, 'n'},
		{"audience", required_argument, NULL, 'A'},
		{"intent", required_argument, NULL, 'i'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	optind = 0;
	while ((c = getopt_long(argc, argv, ":p:a:t:k:m:n:A:i:jh", opts,
				NULL)) != -1) {
		if (c == 'h') {
			stint_help_delegate(stdout);
			return 1;
		}
		if (c == '?' || c == ':')
			return stint_cli_bad_option(verb, c, argv), -1;
		if (delegate_opt(verb, c, optarg, o) != 0)
			return -1;
	}
	if (positional && optind == argc - 1 && o->parent[0] == '\0')
		(void)delegate_opt(verb, 'p', argv[optind++], o);
	if (optind != argc)
		return stint_cli_usage(verb, "unexpected argument '%s'",
				       argv[optind]),
		       -1;
	if (o->parent[0] == '\0')
		return stint_cli_usage(verb, "the parent task is required"), -1;
	if (o->sr.agent[0] == '\0')
		return stint_cli_usage(verb, "--agent is required"), -1;
	return 0;
}

static int
delegate_send(const struct stint_cli *cli, const char *verb, uint64_t op,
	      const struct delegate_opts *o)
{
	struct stint_msg *req, *rep = NULL;
	json_t *j;

	if ((req = stint_cli_request(op)) == NULL)
		return STINT_EXIT_FAIL;
	if (stint_enc_task_start_req(req, &o->sr) != 0 ||
	    stint_msg_put_text(req, STINT_K_PARENT, o->parent) != 0 ||
	    (o->n_mechs > 0 &&
	     stint_msg_put_uint_array(req, STINT_K_MECHS, o->mechs,
				      o->n_mechs) != 0)) {
		stint_msg_free(req);
		stint_cli_err("%s: cannot build the request", verb);
		return STINT_EXIT_FAIL;
	}
	if (stint_cli_call(cli, verb, req, &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	j = stint_cli_task_json(rep, true);
	stint_msg_free(rep);
	if (j == NULL) {
		stint_cli_err("%s: stintd's reply lacks the task", verb);
		return STINT_EXIT_FAIL;
	}
	if (o->json)
		return stint_cli_print_json(j);
	printf("task        %s\n", json_string_value(json_object_get(j, "id")));
	printf("agent       %s\n",
	       json_string_value(json_object_get(j, "agent")));
	printf("uri         %s\n",
	       json_string_value(json_object_get(j, "uri")));
	printf("parent      %s\n",
	       json_string_value(json_object_get(j, "parent")));
	printf("root        %s\n",
	       json_string_value(json_object_get(j, "root")));
	printf("path        %s (depth %lld)\n",
	       json_string_value(json_object_get(j, "path")),
	       (long long)json_integer_value(json_object_get(j, "depth")));
	printf("not after   %s\n",
	       json_string_value(json_object_get(j, "not_after")));
	json_decref(j);
	return STINT_EXIT_OK;
}

int
stint_cmd_delegate(const struct stint_cli *cli, int argc, char **argv)
{
	struct delegate_opts o;
	struct stint_cli tmp;
	char path[4096];
	int r;

	if ((r = delegate_parse("delegate", argc, argv, false, &o)) != 0)
		return r > 0 ? STINT_EXIT_OK : STINT_EXIT_USAGE;
	stint_cli_agent_socket(cli, &tmp, path, sizeof(path));
	return delegate_send(&tmp, "delegate", STINT_OP_DELEGATE, &o);
}

int
stint_cmd_task_delegate(const struct stint_cli *cli, int argc, char **argv)
{
	struct delegate_opts o;
	int r;

	if ((r = delegate_parse("task delegate", argc, argv, true, &o)) != 0)
		return r > 0 ? STINT_EXIT_OK : STINT_EXIT_USAGE;
	return delegate_send(cli, "task delegate", STINT_OP_TASK_DELEGATE, &o);
}

static void
print_tree(json_t *arr)
{
	char rel[64];
	json_t *t, *ms;
	size_t i;
	long long depth;

	printf("%-44s  %-16s  %5s  %-12s  %s\n", "TASK", "AGENT", "DEPTH",
	       "DEADLINE", "BUDGET (used/max, reserved)");
	json_array_foreach(arr, i, t)
	{
		depth = (long long)json_integer_value(
			json_object_get(t, "depth"));
		stint_cli_time_rel((uint64_t)json_integer_value(json_object_get(
					   t, "not_after_unix")),
				   rel, sizeof(rel));
		ms = json_object_get(t, "max_signatures");
		printf("%*s%-*s  %-16s  %5lld  %-12s  %lld/", (int)(2 * depth),
		       "", (int)(44 - 2 * depth),
		       json_string_value(json_object_get(t, "id")),
		       json_string_value(json_object_get(t, "agent")), depth,
		       rel,
		       (long long)json_integer_value(
			       json_object_get(t, "signatures_used")));
		if (json_is_integer(ms))
			printf("%lld", (long long)json_integer_value(ms));
		else
			printf("unlimited");
		printf(", %lld\n", (long long)json_integer_value(
					   json_object_get(t, "reserved")));
	}
}

int
stint_cmd_task_tree(const struct stint_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct stint_msg *req, *rep = NULL;
	const struct stint_msg *e;
	json_t *arr, *j;
	bool json = false;
	size_t n = 0, i;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":jh", opts, NULL)) != -1) {
		if (c == 'j') {
			json = true;
		} else if (c == 'h') {
			stint_help_delegate(stdout);
			return STINT_EXIT_OK;
		} else {
			return stint_cli_bad_option("task tree", c, argv);
		}
	}
	if (optind != argc - 1 || !stint_cli_task_id_ok(argv[optind]))
		return stint_cli_usage("task tree",
				       "'task tree' takes exactly one task id");
	if ((req = stint_cli_request(STINT_OP_TASK_TREE)) == NULL)
		return STINT_EXIT_FAIL;
	if (stint_enc_name_req(req, STINT_K_TASK, argv[optind]) != 0) {
		stint_msg_free(req);
		return STINT_EXIT_FAIL;
	}
	if (stint_cli_call(cli, "task tree", req, &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	if ((arr = json_array()) == NULL ||
	    stint_msg_get_array_len(rep, STINT_K_TASKS, &n) != 0)
		n = 0;
	for (i = 0; i < n && arr != NULL; i++) {
		if (stint_msg_get_map_at(rep, STINT_K_TASKS, i, &e) != 0 ||
		    (j = stint_cli_task_json(e, false)) == NULL)
			continue;
		json_array_append_new(arr, j);
	}
	stint_msg_free(rep);
	if (arr == NULL)
		return STINT_EXIT_FAIL;
	if (json)
		return stint_cli_print_json(arr);
	print_tree(arr);
	json_decref(arr);
	return STINT_EXIT_OK;
}
