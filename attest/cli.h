/*
 * The stint CLI: shared pieces of the verb files (cli_agent.c, cli_task.c,
 * cli_audit.c), the admin client (admin_client.c) and main (stint.c).
 *
 * Every verb returns the process exit status: STINT_EXIT_OK, STINT_EXIT_FAIL
 * (the daemon refused, could not be reached, or verification failed) or
 * STINT_EXIT_USAGE (the command line is wrong). Error messages go to stderr
 * and say what failed and what to do about it.
 */
#ifndef STINT_ATTEST_CLI_H
#define STINT_ATTEST_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "common/msg.h"

#define STINT_EXIT_OK    0
#define STINT_EXIT_FAIL  1
#define STINT_EXIT_USAGE 2

/* stintd's default runtime_dir (configure's runstatedir, /run/stint with
 * --runstatedir=/run) holds admin.sock. */
#define STINT_ADMIN_SOCKET_DEFAULT RUNSTATEDIR "/stint/admin.sock"

/* Admin requests may take a while: TASK_START generates a key, TASK_END
 * waits until the key is destroyed in the token. */
#define STINT_ADMIN_TIMEOUT_MS 30000
/* Replies may be larger than requests (AUDIT_TAIL returns up to 1000
 * lines), but still bounded. */
#define STINT_ADMIN_REPLY_MAX (8u * 1024u * 1024u)

struct stint_cli {
	const char *socket; /* admin socket path */
};

/* --- admin_client.c ------------------------------------------------------ */

/* Sends req (always freed) and reads the reply into *rep. Returns
 * STINT_EXIT_OK with *rep set when the daemon said OK; otherwise prints why
 * (connection trouble, or the daemon's status name and error text, prefixed
 * with `what`, e.g. "task start") and returns STINT_EXIT_FAIL. */
int stint_cli_call(const struct stint_cli *cli, const char *what,
		   struct stint_msg *req, struct stint_msg **rep);
/* The same, and *status the daemon's reply status (UINT64_MAX when none
 * came); with quiet_denied a DENIED reply is not printed. */
int stint_cli_call_status(const struct stint_cli *cli, const char *what,
			  struct stint_msg *req, struct stint_msg **rep,
			  uint64_t *status, bool quiet_denied);
/* cli_public.c: stint_cli_call for a read-only public request (CA_CERT,
 * TASK_SHOW): on admin.sock when this user may use it (root, stintd's
 * user, an operator: full answer), else on agent.sock (public facts). */
int stint_cli_call_public(const struct stint_cli *cli, const char *what,
			  struct stint_msg *req, struct stint_msg **rep);
/* A fresh request map holding only op; NULL (after printing) on ENOMEM. */
struct stint_msg *stint_cli_request(uint64_t op);
/* A request naming one agent, task or operator (stint_enc_name_req: the
 * name under key); NULL (after printing) on ENOMEM. */
struct stint_msg *stint_cli_name_request(uint64_t op, uint64_t key,
					 const char *name);
/* cli_public.c: the socket for a read-only public command (CA_CERT,
 * TASK_SHOW): cli itself when this user may use admin.sock, else tmp
 * pointed at agent.sock (path in buf). */
const struct stint_cli *stint_cli_public(const struct stint_cli *cli,
					 struct stint_cli *tmp, char *buf,
					 size_t cap);

/* --- stint.c: helpers shared by the verbs ------------------------------- */

/* "stint: <message>" on stderr. */
void stint_cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "stint: <message>" and "try 'stint <verb> --help'"; returns
 * STINT_EXIT_USAGE. */
int stint_cli_usage(const char *verb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Reports a getopt_long '?' or ':' return for the option at argv[optind-1]
 * and returns STINT_EXIT_USAGE. */
int stint_cli_bad_option(const char *verb, int c, char **argv);

/* Agent names: [A-Za-z0-9._-], 1..STINT_NAME_MAX. */
bool stint_cli_name_ok(const char *name);
/* Task ids: [A-Za-z0-9._-], 1..STINT_TASK_ID_MAX. */
bool stint_cli_task_id_ok(const char *id);
/* aud: adds a --audience NAME (or a comma list) to the set in buf, checked;
 * prints the usage error for verb and returns -1 when it is bad. */
int stint_cli_audience_opt(char *buf, size_t cap, const char *names,
			   const char *verb);
/* Non-negative decimal that fits in uint64_t, nothing else. */
int stint_cli_parse_u64(const char *s, uint64_t *v);
/* A uid (gid): a number below (uid_t)-1, or a user (group) name. 0 or -1. */
int stint_cli_parse_uid(const char *s, uint64_t *uid);
int stint_cli_parse_gid(const char *s, uint64_t *gid);
/* The usage error for a bad name of what ("agent", "operator"). */
int stint_cli_bad_name(const char *verb, const char *what, const char *name);

/* What stint_cli_json_opts returns when the verb goes on. */
#define STINT_CLI_GO (-1)
/* Options of a verb that takes only --json and --help: STINT_CLI_GO with
 * *json set and optind at the first argument, or the exit status (help
 * printed, or a bad option). */
int stint_cli_json_opts(const char *verb, int argc, char **argv,
			void (*help)(FILE *f), bool *json);

/* RFC 3339 UTC ("2026-11-28T19:05:00Z") of seconds since the epoch. */
void stint_cli_time(uint64_t t, char *buf, size_t cap);
/* "in 15m", "5m ago", "now", relative to the current time. */
void stint_cli_time_rel(uint64_t t, char *buf, size_t cap);

/* Prints j (indented, trailing newline) to stdout and drops the reference.
 * Returns STINT_EXIT_OK, or STINT_EXIT_FAIL if j is NULL or cannot be
 * written. */
int stint_cli_print_json(json_t *j);

/* --- verbs: argv[0] is the subcommand (or "status") --------------------- */

int stint_cmd_agent(const struct stint_cli *cli, int argc, char **argv);
/* cli_operator.c: operator add|list|remove */
int stint_cmd_operator(const struct stint_cli *cli, int argc, char **argv);
int stint_cmd_task(const struct stint_cli *cli, int argc, char **argv);
int stint_cmd_audit(const struct stint_cli *cli, int argc, char **argv);
int stint_cmd_status(const struct stint_cli *cli, int argc, char **argv);
/* cli_ca.c: ca cert|csr|install|attestation-key, attest verify,
 * verify-peer */
int stint_cmd_ca(const struct stint_cli *cli, int argc, char **argv);
int stint_cmd_attest(const struct stint_cli *cli, int argc, char **argv);
int stint_cmd_verify_peer(const struct stint_cli *cli, int argc, char **argv);
/* cli_tpm.c: kill-switch --confirm */
int stint_cmd_kill_switch(const struct stint_cli *cli, int argc, char **argv);
/* cli_run.c: run [OPTIONS] -- COMMAND (bind) */
int stint_cmd_run(const struct stint_cli *cli, int argc, char **argv);
/* cli_reload.c (prov): reload [--dry-run] [--json] */
int stint_cmd_reload(const struct stint_cli *cli, int argc, char **argv);

/* cli_delegate.c (deleg): delegate; task delegate and task tree */
int stint_cmd_delegate(const struct stint_cli *cli, int argc, char **argv);
int stint_cmd_task_delegate(const struct stint_cli *cli, int argc, char **argv);
int stint_cmd_task_tree(const struct stint_cli *cli, int argc, char **argv);
void stint_help_delegate(FILE *f);
/* cli_task.c: a task map of a reply as JSON (pems: key and certificate
 * PEMs too); NULL when it lacks the id, agent or deadline. */
json_t *stint_cli_task_json(const struct stint_msg *m, bool pems);
/* cli_public.c: tmp pointed at agent.sock ($STINT_SOCKET, else next to
 * the admin socket; path in buf). */
void stint_cli_agent_socket(const struct stint_cli *cli, struct stint_cli *tmp,
			    char *buf, size_t cap);

void stint_help_agent(FILE *f);
void stint_help_operator(FILE *f);
void stint_help_task(FILE *f);
void stint_help_audit(FILE *f);
void stint_help_status(FILE *f);
void stint_help_ca(FILE *f);
void stint_help_attest(FILE *f);
void stint_help_verify_peer(FILE *f);
void stint_help_kill_switch(FILE *f);
void stint_help_run(FILE *f);
void stint_help_reload(FILE *f);

#endif
