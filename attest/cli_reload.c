/* stint reload [--dry-run] [--json] (prov): reconcile agents.d now. */

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "attest/cli.h"
#include "common/msg.h"
#include "stint/wire.h"

void
stint_help_reload(FILE *f)
{
	fprintf(f,
		"usage: stint reload [--dry-run] [--json]\n"
		"\n"
		"Reconcile the agents declared in agents.d with stintd now "
		"(as SIGHUP\n"
		"does): add the declared agents that are missing, update the "
		"changed ones\n"
		"(ending the live tasks the new definition does not allow), "
		"remove those\n"
		"no longer declared (ending their tasks). Prints each agent "
		"with what\n"
		"happened (added, updated, removed, unchanged, skipped) and "
		"each live task\n"
		"ended. Only root and stintd's user may reload.\n"
		"\n"
		"  --dry-run   change nothing; print what a reload would do\n"
		"  --json      print the report as JSON\n"
		"\n"
		"Exit status: 0 reconciled (or dry run done), 1 refused (an "
		"invalid file:\n"
		"the error names FILE:LINE, and nothing changed), 2 usage "
		"error.\n");
}

struct report {
	bool dry;
	json_t *agents, *operators, *tasks;
	size_t changed;
};

/* One array of maps of the reply as JSON objects: keys[i] named names[i]. */
static json_t *
entries(const struct stint_msg *rep, uint64_t key, const uint64_t *keys,
	const char *const *names, size_t nkeys)
{
	const struct stint_msg *e;
	json_t *arr = json_array(), *o;
	char buf[4096];
	size_t n = 0, i, k;

	if (arr == NULL)
		return NULL;
	if (stint_msg_has(rep, key) &&
	    stint_msg_get_array_len(rep, key, &n) != 0) {
		json_decref(arr);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (stint_msg_get_map_at(rep, key, i, &e) != 0 ||
		    (o = json_object()) == NULL) {
			json_decref(arr);
			return NULL;
		}
		for (k = 0; k < nkeys; k++) {
			if (stint_msg_get_text(e, keys[k], buf, sizeof(buf)) !=
			    0)
				buf[0] = '\0';
			json_object_set_new(o, names[k], json_string(buf));
		}
		json_array_append_new(arr, o);
	}
	return arr;
}

static int
report_read(const struct stint_msg *rep, struct report *r)
{
	static const uint64_t akeys[] = {STINT_K_AGENT, STINT_K_SOURCE,
					 STINT_K_RELOAD_ACTION,
					 STINT_K_RELOAD_KIND};
	static const char *const anames[] = {"name", "source", "action",
					     "kind"};
	json_t *all, *o;
	static const uint64_t tkeys[] = {STINT_K_TASK, STINT_K_AGENT,
					 STINT_K_REASON};
	static const char *const tnames[] = {"id", "agent", "reason"};
	const char *act;
	size_t i;

	memset(r, 0, sizeof(*r));
	(void)stint_msg_get_bool(rep, STINT_K_DRY_RUN, &r->dry);
	all = entries(rep, STINT_K_RELOAD_AGENTS, akeys, anames, 4);
	r->tasks = entries(rep, STINT_K_RELOAD_TASKS, tkeys, tnames, 3);
	r->agents = json_array();
	r->operators = json_array();
	if (all == NULL || r->tasks == NULL || r->agents == NULL ||
	    r->operators == NULL) {
		json_decref(all);
		return -1;
	}
	/* Split by kind: agents and operators. */
	for (i = 0; i < json_array_size(all); i++) {
		o = json_array_get(all, i);
		act = json_string_value(json_object_get(o, "kind"));
		json_array_append(act != NULL && strcmp(act, "operator") == 0
					  ? r->operators
					  : r->agents,
				  o);
		json_object_del(o, "kind");
		act = json_string_value(json_object_get(o, "action"));
		if (act != NULL && strcmp(act, "unchanged") != 0 &&
		    strcmp(act, "skipped") != 0)
			r->changed++;
	}
	json_decref(all);
	return 0;
}

static const char *
field(json_t *o, const char *name)
{
	const char *s = json_string_value(json_object_get(o, name));

	return s != NULL ? s : "";
}

static void
report_print(const struct report *r)
{
	json_t *o;
	size_t i, w = 5;

	for (i = 0; i < json_array_size(r->agents); i++)
		if (strlen(field(json_array_get(r->agents, i), "name")) > w)
			w = strlen(field(json_array_get(r->agents, i), "name"));
	for (i = 0; i < json_array_size(r->agents); i++) {
		o = json_array_get(r->agents, i);
		printf("agent %-*s  %-9s  %s\n", (int)w, field(o, "name"),
		       field(o, "action"), field(o, "source"));
	}
	for (i = 0; i < json_array_size(r->operators); i++) {
		o = json_array_get(r->operators, i);
		printf("operator %s  %s  %s\n", field(o, "name"),
		       field(o, "action"), field(o, "source"));
	}
	for (i = 0; i < json_array_size(r->tasks); i++) {
		o = json_array_get(r->tasks, i);
		printf("task  %s (agent %s) %s: %s\n", field(o, "id"),
		       field(o, "agent"), r->dry ? "would be ended" : "ended",
		       field(o, "reason"));
	}
	printf("%zu change(s), %zu task(s) %s%s\n", r->changed,
	       json_array_size(r->tasks), r->dry ? "to end" : "ended",
	       r->dry ? " (dry run: nothing changed)" : "");
}

static json_t *
report_json(struct report *r)
{
	json_t *j = json_object();

	if (j == NULL)
		return NULL;
	json_object_set_new(j, "dry_run", json_boolean(r->dry));
	json_object_set_new(j, "changes", json_integer((json_int_t)r->changed));
	json_object_set(j, "agents", r->agents);
	json_object_set(j, "operators", r->operators);
	json_object_set(j, "tasks", r->tasks);
	return j;
}

int
stint_cmd_reload(const struct stint_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"dry-run", no_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct stint_msg *req, *rep = NULL;
	struct report r;
	bool json = false, dry = false;
	int c, ret = STINT_EXIT_FAIL;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":njh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			dry = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			stint_help_reload(stdout);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option("reload", c, argv);
		}
	}
	if (optind != argc)
		return stint_cli_usage("reload", "unexpected argument '%s'",
				       argv[optind]);
	if ((req = stint_cli_request(STINT_OP_RELOAD)) == NULL)
		return STINT_EXIT_FAIL;
	if (dry && stint_msg_put_bool(req, STINT_K_DRY_RUN, true) != 0) {
		stint_msg_free(req);
		stint_cli_err("reload: cannot build the request");
		return STINT_EXIT_FAIL;
	}
	if (stint_cli_call(cli, "reload", req, &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	if (report_read(rep, &r) != 0)
		stint_cli_err("reload: stintd sent a malformed report: are "
			      "stint and stintd the same version?");
	else if (json)
		ret = stint_cli_print_json(report_json(&r));
	else {
		report_print(&r);
		ret = STINT_EXIT_OK;
	}
	json_decref(r.agents);
	json_decref(r.operators);
	json_decref(r.tasks);
	stint_msg_free(rep);
	return ret;
}
