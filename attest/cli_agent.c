/* stint agent add|list|remove */

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "attest/cli.h"
#include "common/audience.h"
#include "common/duration.h"
#include "common/mechanism.h"
#include "stint/wire.h"

static void
print_mech_names(FILE *f)
{
	const struct stint_mech *all;
	size_t n, i, col = 0;

	all = stint_mech_all(&n);
	for (i = 0; i < n; i++) {
		if (col > 0 && col + 1 + strlen(all[i].short_name) > 72) {
			fputc('\n', f);
			col = 0;
		}
		col += (size_t)fprintf(f, " %s", all[i].short_name);
	}
	fputc('\n', f);
}

void
stint_help_agent(FILE *f)
{
	fprintf(f,
		"usage: stint agent add NAME --uid UID|USER [--gid GID|GROUP]\n"
		"                 [--exe PATH] [--exe-sha256 HEX] [--cgroup "
		"PATH]\n"
		"                 [--unit NAME.service] [--lsm-label LABEL]\n"
		"                 [--max-ttl DUR] [--mechanisms LIST]\n"
		"                 [--audiences NAME[,NAME...]]\n"
		"                 [--delegate-to AGENT[,AGENT...]] "
		"[--max-depth N]\n"
		"       stint agent list [--json]\n"
		"       stint agent show NAME [--json]\n"
		"       stint agent remove NAME\n"
		"\n"
		"Register, list and remove agents. An agent is a name "
		"(letters, "
		"digits,\n"
		"'.', '_', '-'; at most 64) and the local uid (and optionally "
		"gid) whose\n"
		"processes act as it.\n"
		"\n"
		"  --uid UID|USER     processes of this user act as the agent\n"
		"  --gid GID|GROUP    ...and only with this group (default: "
		"any)\n"
		"  --exe PATH         ...and only running this executable\n"
		"  --exe-sha256 HEX   ...whose SHA-256 is HEX\n"
		"  --cgroup PATH      ...in this cgroup v2 (or below it)\n"
		"  --unit NAME        ...in this systemd unit\n"
		"  --lsm-label LABEL  ...with this LSM label (SO_PEERSEC)\n"
		"                     Every selector given must match; with "
		"none, any\n"
		"                     process of the uid acts as the agent.\n"
		"  --max-ttl DUR      longest task for this agent (default: "
		"stintd's max_ttl)\n"
		"  --mechanisms LIST  comma-separated mechanisms the agent's "
		"keys "
		"may use,\n"
		"                     e.g. ecdsa,ecdsa-sha256 or CKM_ECDSA "
		"(default: all)\n"
		"  --audiences LIST   comma-separated systems the agent's "
		"tasks "
		"may\n"
		"                     authenticate to (named in each leaf; "
		"default: none)\n"
		"  --delegate-to LIST agents its tasks may start child tasks "
		"for\n"
		"                     (stint delegate; default: none)\n"
		"  --max-depth N      how deep a delegation tree below its "
		"tasks may\n"
		"                     grow (default 0: no delegation)\n"
		"  --json             print JSON (list)\n"
		"\n"
		"Removing an agent ends its live tasks and destroys their "
		"keys.\n"
		"\n"
		"Mechanisms (short or CKM_ names):\n");
	print_mech_names(f);
}

/* "ecdsa,ecdsa-sha256" → CKM_* list; returns the first unknown name. */
static const char *
parse_mechs(const char *list, uint64_t *mechs, size_t cap, size_t *n, char *bad,
	    size_t badcap)
{
	const struct stint_mech *m;
	char *copy, *tok, *save = NULL;
	const char *err = NULL;
	size_t i;

	*n = 0;
	if ((copy = strdup(list)) == NULL)
		return "out of memory";
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if ((m = stint_mech_by_name(tok)) == NULL) {
			snprintf(bad, badcap, "unknown mechanism '%s'", tok);
			err = bad;
			goto out;
		}
		for (i = 0; i < *n; i++)
			if (mechs[i] == m->mech)
				break;
		if (i < *n)
			continue;
		if (*n == cap) {
			snprintf(bad, badcap, "too many mechanisms");
			err = bad;
			goto out;
		}
		mechs[(*n)++] = m->mech;
	}
	if (*n == 0) {
		snprintf(bad, badcap, "--mechanisms needs at least one name");
		err = bad;
	}
out:
	free(copy);
	return err;
}

static const char *
sel_option(int c)
{
	switch (c) {
	case 'e':
		return "exe";
	case 's':
		return "exe-sha256";
	case 'c':
		return "cgroup";
	case 'U':
		return "unit";
	default:
		return "lsm-label";
	}
}

static int
set_selector(struct stint_selectors *sel, int c, const char *v)
{
	char *dst;
	size_t cap;

	switch (c) {
	case 'e':
		dst = sel->exe, cap = sizeof(sel->exe);
		break;
	case 's':
		dst = sel->exe_sha256, cap = sizeof(sel->exe_sha256);
		break;
	case 'c':
		dst = sel->cgroup, cap = sizeof(sel->cgroup);
		break;
	case 'U':
		dst = sel->unit, cap = sizeof(sel->unit);
		break;
	default:
		dst = sel->lsm_label, cap = sizeof(sel->lsm_label);
		break;
	}
	if (v[0] == '\0' || strlen(v) >= cap)
		return -1;
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int
agent_add(const struct stint_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"uid", required_argument, NULL, 'u'},
		{"gid", required_argument, NULL, 'g'},
		{"max-ttl", required_argument, NULL, 't'},
		{"mechanisms", required_argument, NULL, 'm'},
		{"exe", required_argument, NULL, 'e'},
		{"exe-sha256", required_argument, NULL, 's'},
		{"cgroup", required_argument, NULL, 'c'},
		{"unit", required_argument, NULL, 'U'},
		{"lsm-label", required_argument, NULL, 'l'},
		{"audiences", required_argument, NULL, 'A'},   /* aud */
		{"delegate-to", required_argument, NULL, 'D'}, /* deleg */
		{"max-depth", required_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t depth;
	const char *uid_s = NULL, *gid_s = NULL, *ttl_s = NULL, *mech_s = NULL;
	uint64_t uid = 0, gid = 0, ttl = 0, mechs[STINT_MECHS_MAX];
	struct stint_agent_add_req ar = {0};
	struct stint_msg *req, *rep = NULL;
	struct stint_done_rep done;
	char bad[128];
	const char *name;
	size_t n_mechs = 0;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":u:g:t:m:e:s:c:U:l:A:D:M:h", opts,
				NULL)) != -1) {
		switch (c) {
		case 'D': /* deleg */
			if (strlen(optarg) >= sizeof(ar.delegate_to))
				return stint_cli_usage("agent add",
						       "--delegate-to: too "
						       "long");
			memcpy(ar.delegate_to, optarg, strlen(optarg) + 1);
			break;
		case 'M':
			if (stint_cli_parse_u64(optarg, &depth) != 0 ||
			    depth > STINT_DEPTH_MAX)
				return stint_cli_usage(
					"agent add",
					"--max-depth '%s': a number from 0 "
					"to %d",
					optarg, STINT_DEPTH_MAX);
			ar.max_depth = (uint32_t)depth;
			break;
		case 'A': /* aud */
			if (stint_cli_audience_opt(ar.audiences,
						   sizeof(ar.audiences), optarg,
						   "agent add") != 0)
				return STINT_EXIT_USAGE;
			break;
		case 'e':
		case 's':
		case 'c':
		case 'U':
		case 'l':
			if (set_selector(&ar.sel, c, optarg) != 0)
				return stint_cli_usage("agent add",
						       "--%s: too long",
						       sel_option(c));
			break;
		case 'u':
			uid_s = optarg;
			break;
		case 'g':
			gid_s = optarg;
			break;
		case 't':
			ttl_s = optarg;
			break;
		case 'm':
			mech_s = optarg;
			break;
		case 'h':
			stint_help_agent(stdout);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option("agent add", c, argv);
		}
	}
	if (optind != argc - 1)
		return stint_cli_usage("agent add", "'agent add' takes exactly "
						    "one NAME");
	name = argv[optind];
	if (!stint_cli_name_ok(name))
		return stint_cli_bad_name("agent add", "agent", name);
	if (uid_s == NULL)
		return stint_cli_usage("agent add", "--uid is required");
	if (stint_cli_parse_uid(uid_s, &uid) != 0)
		return stint_cli_usage(
			"agent add", "--uid '%s': no such user or uid", uid_s);
	if (gid_s != NULL && stint_cli_parse_gid(gid_s, &gid) != 0)
		return stint_cli_usage(
			"agent add", "--gid '%s': no such group or gid", gid_s);
	if (ttl_s != NULL && stint_duration_parse(ttl_s, &ttl) != 0)
		return stint_cli_usage("agent add",
				       "--max-ttl '%s': bad duration (use e.g. "
				       "90s, 15m, 1h)",
				       ttl_s);
	if (mech_s != NULL && parse_mechs(mech_s, mechs, STINT_MECHS_MAX,
					  &n_mechs, bad, sizeof(bad)) != NULL)
		return stint_cli_usage("agent add", "--mechanisms: %s", bad);

	memcpy(ar.name, name, strlen(name) + 1);
	ar.uid = (uint32_t)uid;
	ar.has_gid = gid_s != NULL;
	ar.gid = (uint32_t)gid;
	ar.has_max_ttl = ttl_s != NULL;
	ar.max_ttl = ttl;
	if (mech_s != NULL) {
		memcpy(ar.mechs, mechs, sizeof(ar.mechs));
		ar.n_mechs = n_mechs;
	}
	if ((req = stint_cli_request(STINT_OP_AGENT_ADD)) == NULL)
		return STINT_EXIT_FAIL;
	if (stint_enc_agent_add_req(req, &ar) != 0) {
		stint_msg_free(req);
		stint_cli_err("agent add: cannot build the request");
		return STINT_EXIT_FAIL;
	}
	if (stint_cli_call(cli, "agent add", req, &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	stint_get_done_rep(rep, &done);
	if (done.note[0] != '\0')
		fprintf(stderr, "stint: agent add: warning: %s\n", done.note);
	stint_msg_free(rep);
	printf("agent %s added (uid %llu", name, (unsigned long long)uid);
	if (gid_s != NULL)
		printf(", gid %llu", (unsigned long long)gid);
	printf(")\n");
	return STINT_EXIT_OK;
}

static json_t *
mech_names(const uint64_t *mechs, size_t n)
{
	const struct stint_mech *mech;
	json_t *arr;
	size_t i;
	char buf[32];

	if ((arr = json_array()) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if ((mech = stint_mech_find(mechs[i])) != NULL) {
			json_array_append_new(arr,
					      json_string(mech->short_name));
		} else {
			snprintf(buf, sizeof(buf), "0x%llx",
				 (unsigned long long)mechs[i]);
			json_array_append_new(arr, json_string(buf));
		}
	}
	return arr;
}

/* {"exe":..,"exe_sha256":..,...}: the selectors set. */
static json_t *
selectors_json(const struct stint_selectors *sel)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	if (sel->exe[0])
		json_object_set_new(o, "exe", json_string(sel->exe));
	if (sel->exe_sha256[0])
		json_object_set_new(o, "exe_sha256",
				    json_string(sel->exe_sha256));
	if (sel->cgroup[0])
		json_object_set_new(o, "cgroup", json_string(sel->cgroup));
	if (sel->unit[0])
		json_object_set_new(o, "unit", json_string(sel->unit));
	if (sel->lsm_label[0])
		json_object_set_new(o, "lsm_label",
				    json_string(sel->lsm_label));
	return o;
}

static json_t *
agent_to_json(const struct stint_agent_info *a)
{
	char t[40];
	json_t *o;

	if ((o = json_object()) == NULL)
		return NULL;
	json_object_set_new(o, "name", json_string(a->name));
	json_object_set_new(o, "uid", json_integer((json_int_t)a->uid));
	if (a->has_gid)
		json_object_set_new(o, "gid", json_integer((json_int_t)a->gid));
	else
		json_object_set_new(o, "gid", json_null());
	json_object_set_new(o, "max_ttl", json_integer((json_int_t)a->max_ttl));
	json_object_set_new(o, "mechanisms", mech_names(a->mechs, a->n_mechs));
	stint_cli_time(a->created, t, sizeof(t));
	json_object_set_new(o, "created", json_string(t));
	json_object_set_new(o, "selectors", selectors_json(&a->sel));
	if (a->audiences[0] != '\0') /* aud */
		json_object_set_new(o, "audiences", json_string(a->audiences));
	/* prov: "cli", or the agents.d file declaring it */
	json_object_set_new(
		o, "source",
		json_string(a->source[0] != '\0' ? a->source : "cli"));
	/* deleg */
	json_object_set_new(o, "delegate_to", json_string(a->delegate_to));
	json_object_set_new(o, "max_depth",
			    json_integer((json_int_t)a->max_depth));
	return o;
}

/* ["ecdsa","rsa-pss"] → "ecdsa,rsa-pss" */
static void
join_names(json_t *arr, char *buf, size_t cap)
{
	size_t i, off = 0;
	json_t *v;
	int n;

	buf[0] = '\0';
	json_array_foreach(arr, i, v)
	{
		n = snprintf(buf + off, cap - off, "%s%s", i ? "," : "",
			     json_is_string(v) ? json_string_value(v) : "?");
		if (n < 0 || (size_t)n >= cap - off)
			break;
		off += (size_t)n;
	}
}

/* One indented line per selector; "(uid only)" when there is none. */
static void
print_selectors(json_t *sel, size_t indent)
{
	const char *k;
	json_t *v;

	if (json_object_size(sel) == 0) {
		printf("%*s(uid only: any process of the uid)\n", (int)indent,
		       "");
		return;
	}
	json_object_foreach(sel, k, v)
		printf("%*s%s=%s\n", (int)indent, "", k, json_string_value(v));
}

static void
print_agents(json_t *arr)
{
	size_t i, w = 4;
	json_t *a, *v;
	char ttl[32], gid[24], mechs[512];

	json_array_foreach(arr, i, a)
	{
		size_t l =
			strlen(json_string_value(json_object_get(a, "name")));
		if (l > w)
			w = l;
	}
	printf("%-*s  %6s  %6s  %-7s  %-20s  %s\n", (int)w, "NAME", "UID",
	       "GID", "MAX TTL", "CREATED", "MECHANISMS / SELECTORS");
	json_array_foreach(arr, i, a)
	{
		v = json_object_get(a, "gid");
		if (json_is_integer(v))
			snprintf(gid, sizeof(gid), "%lld",
				 (long long)json_integer_value(v));
		else
			snprintf(gid, sizeof(gid), "any");
		stint_duration_format((uint64_t)json_integer_value(
					      json_object_get(a, "max_ttl")),
				      ttl, sizeof(ttl));
		join_names(json_object_get(a, "mechanisms"), mechs,
			   sizeof(mechs));
		printf("%-*s  %6lld  %6s  %-7s  %-20s  %s\n", (int)w,
		       json_string_value(json_object_get(a, "name")),
		       (long long)json_integer_value(json_object_get(a, "uid")),
		       gid, ttl,
		       json_string_value(json_object_get(a, "created")), mechs);
		print_selectors(json_object_get(a, "selectors"), w + 50);
		printf("%*ssource=%s\n", (int)w + 50, "",
		       json_string_value(json_object_get(a, "source")));
		if (json_integer_value(json_object_get(a, "max_depth")) > 0)
			printf("%*sdelegate_to=%s max_depth=%lld\n",
			       (int)w + 50, "",
			       json_string_value(
				       json_object_get(a, "delegate_to")),
			       (long long)json_integer_value(
				       json_object_get(a, "max_depth")));
	}
}

/* AGENT_LIST: every agent (*agents malloc'ed, NULL when none). */
static int
fetch_agents(const struct stint_cli *cli, const char *verb,
	     struct stint_agent_info **agents, size_t *n)
{
	struct stint_msg *rep = NULL;
	int r;

	*agents = NULL;
	*n = 0;
	if (stint_cli_call(cli, verb, stint_cli_request(STINT_OP_AGENT_LIST),
			   &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	r = stint_get_agent_list_rep(rep, agents, n);
	stint_msg_free(rep);
	if (r != 0) {
		stint_cli_err("%s: stintd sent a bad agent list", verb);
		return STINT_EXIT_FAIL;
	}
	return STINT_EXIT_OK;
}

static int
agent_list(const struct stint_cli *cli, int argc, char **argv)
{
	struct stint_agent_info *agents = NULL;
	bool json;
	json_t *arr, *o;
	size_t n = 0, i;
	int r;

	r = stint_cli_json_opts("agent list", argc, argv, stint_help_agent,
				&json);
	if (r != STINT_CLI_GO)
		return r;
	if (optind != argc)
		return stint_cli_usage("agent list",
				       "'agent list' takes no arguments");
	if (fetch_agents(cli, "agent list", &agents, &n) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	if ((arr = json_array()) == NULL) {
		free(agents);
		return stint_cli_print_json(NULL);
	}
	for (i = 0; i < n; i++) {
		if ((o = agent_to_json(&agents[i])) == NULL) {
			free(agents);
			json_decref(arr);
			stint_cli_err("agent list: stintd sent a bad agent "
				      "entry");
			return STINT_EXIT_FAIL;
		}
		json_array_append_new(arr, o);
	}
	free(agents);
	if (json)
		return stint_cli_print_json(arr);
	if (n == 0)
		printf("no agents registered (add one with 'stint agent "
		       "add')\n");
	else
		print_agents(arr);
	json_decref(arr);
	return STINT_EXIT_OK;
}

/* stint agent show NAME [--json]: one agent of the list, in full. */
static int
agent_show(const struct stint_cli *cli, int argc, char **argv)
{
	struct stint_agent_info *agents = NULL;
	json_t *o = NULL, *v;
	const char *k;
	bool json;
	size_t n = 0, i;
	int r;

	r = stint_cli_json_opts("agent show", argc, argv, stint_help_agent,
				&json);
	if (r != STINT_CLI_GO)
		return r;
	if (optind != argc - 1)
		return stint_cli_usage("agent show",
				       "'agent show' takes exactly one NAME");
	if (fetch_agents(cli, "agent show", &agents, &n) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	for (i = 0; i < n && o == NULL; i++)
		if (strcmp(agents[i].name, argv[optind]) == 0)
			o = agent_to_json(&agents[i]);
	free(agents);
	if (o == NULL) {
		stint_cli_err("agent show: no agent named '%s'", argv[optind]);
		return STINT_EXIT_FAIL;
	}
	if (json)
		return stint_cli_print_json(o);
	json_object_foreach(o, k, v)
	{
		if (strcmp(k, "selectors") == 0 || strcmp(k, "mechanisms") == 0)
			continue;
		if (json_is_string(v))
			printf("%-11s %s\n", k, json_string_value(v));
		else if (json_is_integer(v))
			printf("%-11s %lld\n", k,
			       (long long)json_integer_value(v));
		else
			printf("%-11s any\n", k);
	}
	print_selectors(json_object_get(o, "selectors"), 0);
	json_decref(o);
	return STINT_EXIT_OK;
}

static int
agent_remove(const struct stint_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct stint_done_rep done;
	struct stint_msg *req, *rep = NULL;
	const char *name;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			stint_help_agent(stdout);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option("agent remove", c, argv);
		}
	}
	if (optind != argc - 1)
		return stint_cli_usage("agent remove",
				       "'agent remove' takes exactly one NAME");
	name = argv[optind];
	if (!stint_cli_name_ok(name))
		return stint_cli_bad_name("agent remove", "agent", name);
	req = stint_cli_name_request(STINT_OP_AGENT_REMOVE, STINT_K_AGENT,
				     name);
	if (req == NULL)
		return STINT_EXIT_FAIL;
	if (stint_cli_call(cli, "agent remove", req, &rep) != STINT_EXIT_OK)
		return STINT_EXIT_FAIL;
	stint_get_done_rep(rep, &done);
	stint_msg_free(rep);
	if (done.note[0] != '\0')
		fprintf(stderr, "stint: agent remove: warning: %s\n",
			done.note);
	printf("agent %s removed (%llu live task%s ended)\n", name,
	       (unsigned long long)done.count, done.count == 1 ? "" : "s");
	return STINT_EXIT_OK;
}

int
stint_cmd_agent(const struct stint_cli *cli, int argc, char **argv)
{
	if (strcmp(argv[0], "add") == 0)
		return agent_add(cli, argc, argv);
	if (strcmp(argv[0], "list") == 0)
		return agent_list(cli, argc, argv);
	if (strcmp(argv[0], "remove") == 0)
		return agent_remove(cli, argc, argv);
	if (strcmp(argv[0], "show") == 0)
		return agent_show(cli, argc, argv);
	return stint_cli_usage("agent", "no such command 'agent %s'", argv[0]);
}
