/*
 * stint: the command-line tool platform teams and orchestrators use to
 * manage agents and tasks, read and verify the audit log, and check on
 * stintd. It speaks the admin protocol (docs/protocol.md) over admin.sock;
 * `stint audit verify FILE` alone works offline.
 */

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/cli.h"
#include "common/audience.h"
#include "common/duration.h"
#include "common/ident.h"
#include "stint/wire.h"

static void
help_main(FILE *f)
{
	fprintf(f,
		"usage: stint [--socket PATH] COMMAND [ARGS...]\n"
		"\n"
		"Manage Stint agents and tasks through stintd's admin socket.\n"
		"\n"
		"Commands:\n"
		"  agent add NAME --uid UID [--gid GID] [--max-ttl DUR] "
		"[--mechanisms LIST]\n"
		"            [--audiences A[,B...]] [--delegate-to A[,B...]] "
		"[--max-depth N]\n"
		"  agent list [--json]\n"
		"  agent remove NAME\n"
		"  operator add NAME --uid UID --agents A[,B...] [--max-ttl "
		"DUR]\n"
		"  operator list [--json]\n"
		"  operator remove NAME\n"
		"  task start --agent NAME [--ttl DUR] [--key TYPE] "
		"[--max-signatures N]\n"
		"             [--intent TEXT] [--json | --quiet]\n"
		"             [--bind-pid PID | --bind-cgroup PATH] "
		"[--audience NAME]...\n"
		"  task end ID [--reason TEXT]   (ends its whole tree)\n"
		"  task delegate PARENT --agent SUB [delegate options]\n"
		"  task tree ID [--json]\n"
		"  task list [--agent NAME] [--all] [--json]\n"
		"  task show ID [--json | --pem | --cert]\n"
		"  task evidence ID\n"
		"  ca cert | csr | install CHAIN.pem | attestation-key\n"
		"  attest verify EVIDENCE --attestation-key PEM [--nonce HEX] "
		"[--task ID]\n"
		"  verify-peer CERT.pem [--agent NAME] [--trust-domain TD] "
		"[--ca BUNDLE]\n"
		"              [--extension-oid OID] [--audience NAME] "
		"[--json]\n"
		"              [--parent-cert PARENT.pem]\n"
		"  audit verify [FILE...] [--head SEQ:HASH] [--attestation-key "
		"PEM] [--json]\n"
		"  audit tail [-n N] [--root-task ID] [--json]\n"
		"  audit rotate\n"
		"  kill-switch --confirm   (TPM: revoke every task key in "
		"hardware)\n"
		"  run [--parent ID] --agent NAME [task options] [--cert-dir "
		"DIR]\n"
		"      [--user USER] -- CMD...\n"
		"  delegate --parent ID --agent SUB [--ttl DUR] [--max-sigs N] "
		"...\n"
		"           (as an agent, over agent.sock: a child task)\n"
		"  reload [--dry-run] [--json]   (reconcile agents.d now)\n"
		"  status [--json]\n"
		"  help [COMMAND]\n"
		"\n"
		"Global options:\n"
		"  -s, --socket PATH  admin socket (default: "
		"$STINT_ADMIN_SOCKET,"
		" else\n"
		"                     " STINT_ADMIN_SOCKET_DEFAULT ")\n"
		"  -h, --help         show this help\n"
		"  -V, --version      show the version\n"
		"\n"
		"Durations: 90s, 15m, 1h, 2h30m. Exit status: 0 success, 1 "
		"refused or\n"
		"failed, 2 usage error. Run 'stint COMMAND --help' for more; "
		"see "
		"stint(1).\n");
}

struct verb {
	const char *name;
	int (*run)(const struct stint_cli *, int, char **);
	void (*help)(FILE *);
};

static const struct verb verbs[] = {
	{"agent", stint_cmd_agent, stint_help_agent},
	{"operator", stint_cmd_operator, stint_help_operator},
	{"task", stint_cmd_task, stint_help_task},
	{"audit", stint_cmd_audit, stint_help_audit},
	{"status", stint_cmd_status, stint_help_status},
	{"ca", stint_cmd_ca, stint_help_ca},
	{"attest", stint_cmd_attest, stint_help_attest},
	{"verify-peer", stint_cmd_verify_peer, stint_help_verify_peer},
	{"kill-switch", stint_cmd_kill_switch, stint_help_kill_switch},
	{"run", stint_cmd_run, stint_help_run},
	{"delegate", stint_cmd_delegate, stint_help_delegate}, /* deleg */
	{"reload", stint_cmd_reload, stint_help_reload},
};

static const struct verb *
verb_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verbs[i].name, name) == 0)
			return &verbs[i];
	return NULL;
}

void
stint_cli_err(const char *fmt, ...)
{
	va_list ap;

	fputs("stint: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
stint_cli_audience_opt(char *buf, size_t cap, const char *names,
		       const char *verb)
{
	const char *why = stint_audiences_check(names);

	if (why == NULL && stint_audiences_add(buf, cap, names) == 0 &&
	    (why = stint_audiences_check(buf)) == NULL)
		return 0;
	(void)stint_cli_usage(verb, "--audience: %s",
			      why != NULL ? why : "too many audiences");
	return -1;
}

int
stint_cli_usage(const char *verb, const char *fmt, ...)
{
	va_list ap;

	fputs("stint: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (verb != NULL)
		fprintf(stderr, "try 'stint %s --help'\n", verb);
	else
		fprintf(stderr, "try 'stint --help'\n");
	return STINT_EXIT_USAGE;
}

int
stint_cli_bad_option(const char *verb, int c, char **argv)
{
	const char *opt = argv[optind - 1];

	if (c == ':')
		return stint_cli_usage(verb, "option '%s' needs an argument",
				       opt);
	if (optopt != 0 && strncmp(opt, "--", 2) != 0)
		return stint_cli_usage(verb, "unknown option '-%c'", optopt);
	return stint_cli_usage(verb, "unknown option '%s'", opt);
}

bool
stint_cli_name_ok(const char *name)
{
	return stint_name_ok(name);
}

bool
stint_cli_task_id_ok(const char *id)
{
	return stint_task_id_ok(id);
}

int
stint_cli_parse_u64(const char *s, uint64_t *v)
{
	unsigned long long x;
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*v = x;
	return 0;
}

/* A number below (uid_t)-1, or a user (group) name. */
static int
parse_id(const char *s, bool group, uint64_t *id)
{
	struct passwd *pw;
	struct group *gr;

	if (stint_cli_parse_u64(s, id) == 0)
		return *id < (uint64_t)(uid_t)-1 ? 0 : -1;
	errno = 0;
	if (group && (gr = getgrnam(s)) != NULL)
		*id = gr->gr_gid;
	else if (!group && (pw = getpwnam(s)) != NULL)
		*id = pw->pw_uid;
	else
		return -1;
	return 0;
}

int
stint_cli_parse_uid(const char *s, uint64_t *uid)
{
	return parse_id(s, false, uid);
}

int
stint_cli_parse_gid(const char *s, uint64_t *gid)
{
	return parse_id(s, true, gid);
}

int
stint_cli_bad_name(const char *verb, const char *what, const char *name)
{
	return stint_cli_usage(verb,
			       "bad %s name '%s': use 1 to %d of A-Z a-z 0-9 "
			       ". _ -",
			       what, name, STINT_NAME_MAX);
}

int
stint_cli_json_opts(const char *verb, int argc, char **argv,
		    void (*help)(FILE *f), bool *json)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	*json = false;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			*json = true;
			break;
		case 'h':
			help(stdout);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option(verb, c, argv);
		}
	}
	return STINT_CLI_GO;
}

void
stint_cli_time(uint64_t t, char *buf, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, cap, "@%llu", (unsigned long long)t);
}

void
stint_cli_time_rel(uint64_t t, char *buf, size_t cap)
{
	uint64_t now = (uint64_t)time(NULL);
	char d[32];

	/* Whole minutes read better once there are some: "in 10m", not
	 * "in 9m59s". */
	if (t > now && t - now >= 60)
		t = now + (t - now + 30) / 60 * 60;
	else if (t < now && now - t >= 60)
		t = now - (now - t + 30) / 60 * 60;
	if (t == now) {
		snprintf(buf, cap, "now");
	} else if (t > now) {
		stint_duration_format(t - now, d, sizeof(d));
		snprintf(buf, cap, "in %s", d);
	} else {
		stint_duration_format(now - t, d, sizeof(d));
		snprintf(buf, cap, "%s ago", d);
	}
}

int
stint_cli_print_json(json_t *j)
{
	int r;

	if (j == NULL) {
		stint_cli_err("out of memory building JSON output");
		return STINT_EXIT_FAIL;
	}
	r = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (r != 0 || fputc('\n', stdout) == EOF) {
		stint_cli_err("cannot write output: %s", strerror(errno));
		return STINT_EXIT_FAIL;
	}
	return STINT_EXIT_OK;
}

/* `stint help [VERB]` */
static int
cmd_help(int argc, char **argv)
{
	const struct verb *v;

	if (argc < 2) {
		help_main(stdout);
		return STINT_EXIT_OK;
	}
	if (strcmp(argv[1], "help") == 0) {
		help_main(stdout);
		return STINT_EXIT_OK;
	}
	if ((v = verb_find(argv[1])) == NULL)
		return stint_cli_usage(NULL, "no such command '%s'", argv[1]);
	v->help(stdout);
	return STINT_EXIT_OK;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct stint_cli cli;
	const struct verb *v;
	const char *env;
	int c;

	memset(&cli, 0, sizeof(cli));
	opterr = 0;
	/* '+': stop at the verb; its options are parsed by the verb. */
	while ((c = getopt_long(argc, argv, "+:s:hV", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			cli.socket = optarg;
			break;
		case 'h':
			help_main(stdout);
			return STINT_EXIT_OK;
		case 'V':
			printf("stint %s (wire protocol %d)\n", PACKAGE_VERSION,
			       STINT_WIRE_VERSION);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option(NULL, c, argv);
		}
	}
	if (cli.socket == NULL) {
		env = getenv("STINT_ADMIN_SOCKET");
		cli.socket = (env != NULL && env[0] != '\0')
				     ? env
				     : STINT_ADMIN_SOCKET_DEFAULT;
	}
	if (cli.socket[0] == '\0')
		return stint_cli_usage(NULL, "--socket needs a path");

	argc -= optind;
	argv += optind;
	if (argc < 1)
		return stint_cli_usage(NULL, "no command given");
	if (strcmp(argv[0], "help") == 0)
		return cmd_help(argc, argv);
	if ((v = verb_find(argv[0])) == NULL)
		return stint_cli_usage(NULL, "no such command '%s'", argv[0]);
	/* Verbs without subcommands parse their own argv. */
	if (strcmp(v->name, "status") == 0 ||
	    strcmp(v->name, "verify-peer") == 0 ||
	    strcmp(v->name, "kill-switch") == 0 ||
	    strcmp(v->name, "run") == 0 || strcmp(v->name, "delegate") == 0 ||
	    strcmp(v->name, "reload") == 0)
		return v->run(&cli, argc, argv);
	if (argc < 2) {
		return stint_cli_usage(v->name, "'stint %s' needs a subcommand",
				       v->name);
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		v->help(stdout);
		return STINT_EXIT_OK;
	}
	return v->run(&cli, argc - 1, argv + 1);
}
