/*
 * stint kill-switch: the TPM backend's host-wide revocation in hardware.
 */

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "attest/cli.h"
#include "common/proto.h"
#include "stint/wire.h"

void
stint_help_kill_switch(FILE *f)
{
	fprintf(f, "usage: stint kill-switch --confirm [--json]\n"
		   "\n"
		   "TPM backend only. Increments the TPM's kill-switch NV "
		   "counter: from then on\n"
		   "the TPM itself refuses every task key made before, to "
		   "stintd, to root and to\n"
		   "anyone holding the key files (each key's policy binds the "
		   "counter value at\n"
		   "its creation). This cannot be undone: a counter never goes "
		   "back. stintd also\n"
		   "ends every live task (reason \"kill switch\") and deletes "
		   "their keys. Tasks\n"
		   "started afterwards work normally. Prints the new counter "
		   "value.\n");
}

int
stint_cmd_kill_switch(const struct stint_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"confirm", no_argument, NULL, 'y'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct stint_msg *req, *rep = NULL;
	struct stint_done_rep done;
	uint64_t counter = 0, ended = 0;
	bool confirm = false, json = false;
	int c, ret;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":jh", opts, NULL)) != -1) {
		switch (c) {
		case 'y':
			confirm = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			stint_help_kill_switch(stdout);
			return STINT_EXIT_OK;
		default:
			return stint_cli_bad_option("kill-switch", c, argv);
		}
	}
	if (optind != argc)
		return stint_cli_usage("kill-switch",
				       "'kill-switch' takes no arguments");
	if (!confirm) {
		fprintf(stderr,
			"stint: kill-switch makes every outstanding TPM task "
			"key unusable in\n"
			"hardware, for good, and ends every live task; tasks "
			"started afterwards\n"
			"work. Run 'stint kill-switch --confirm' to do it.\n");
		return STINT_EXIT_USAGE;
	}
	if ((req = stint_cli_request(STINT_OP_KILL_SWITCH)) == NULL)
		return STINT_EXIT_FAIL;
	ret = stint_cli_call(cli, "kill-switch", req, &rep);
	if (ret != STINT_EXIT_OK)
		return ret;
	stint_get_done_rep(rep, &done);
	stint_msg_free(rep);
	if (!done.has_counter) {
		stint_cli_err("kill-switch: stintd sent no counter value");
		return STINT_EXIT_FAIL;
	}
	counter = done.counter;
	ended = done.count;
	if (json)
		return stint_cli_print_json(json_pack(
			"{s:s, s:I, s:I}", "result", "ok", "counter",
			(json_int_t)counter, "tasks_ended", (json_int_t)ended));
	printf("kill switch used: TPM counter is now %llu; %llu live "
	       "task(s) ended,\n"
	       "their keys refused by the TPM\n",
	       (unsigned long long)counter, (unsigned long long)ended);
	return STINT_EXIT_OK;
}
