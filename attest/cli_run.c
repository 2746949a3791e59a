/*
 * stint run: a command with a task of its own, bound to a fresh cgroup.
 *
 * The command is forked first and waits on a pipe before exec. RUN_PREPARE
 * names it (run_pid): stintd makes a cgroup under [run] cgroup_parent and
 * moves the waiting child into it. Where stintd may not (it runs as its
 * own user, and the child is in a cgroup outside stintd's delegated
 * subtree), stint run moves its own child there itself (root may). Then
 * TASK_START names the child and the cgroup: stintd checks the child is in
 * it and binds the task to that cgroup, so the command's first
 * instruction already runs inside (where no cgroup could be made or
 * nobody could move the child, stintd binds the task to the child's pid
 * and says so). Then the child gets STINT_TASK, STINT_KEY_URI, STINT_CERT_URI
 * and STINT_SOCKET through the pipe and execs. stint run forwards signals sent
 * to it, waits for the command, waits until stintd has ended the task (the
 * cgroup emptied) and exits with the command's status. If stint run itself
 * is killed, stintd still ends the task once the cgroup is empty.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attest/cli.h"
#include "common/cgroup.h"
#include "common/duration.h"
#include "common/mechanism.h"
#include "stint/wire.h"

#ifndef STINT_MODULE_PATH
#define STINT_MODULE_PATH ""
#endif

/* After the command exits, how long stint run waits for stintd to end the
 * task before it ends the task itself (processes left in the cgroup). */
#define RUN_END_GRACE_MS 10000

void
stint_help_run(FILE *f)
{
	fprintf(f,
		"usage: stint run --agent NAME [--ttl DUR] [--key TYPE] "
		"[--max-signatures N]\n"
		"                 [--intent TEXT] [--cert-dir DIR] [--user "
		"USER]\n"
		"                 [--audience NAME]... -- COMMAND [ARG...]\n"
		"\n"
		"Run COMMAND with a task of its own: the task is bound to a "
		"fresh cgroup\n"
		"that stintd makes, COMMAND starts inside it, and only "
		"processes of that\n"
		"cgroup can use the key. The task ends when the last of them "
		"exits (even if\n"
		"stint run is killed). COMMAND gets STINT_TASK, STINT_KEY_URI, "
		"STINT_CERT_URI\n"
		"and STINT_SOCKET in its environment. Exit status: COMMAND's "
		"(128+N when a\n"
		"signal N ended it); 1 when the task could not be started.\n"
		"\n"
		"  --agent NAME          the agent the task is for\n"
		"  --ttl DUR             lifetime, e.g. 10m (default: stintd's "
		"default_ttl)\n"
		"  --key TYPE            ec-p256 (default), ec-p384, rsa-2048, "
		"rsa-3072\n"
		"  --max-signatures N    signature budget (default: "
		"unlimited)\n"
		"  --intent TEXT         what the task is for; kept in the "
		"audit log\n"
		"  --cert-dir DIR        also write cert.pem, chain.pem and "
		"ca.pem there\n"
		"  --audience NAME       a system the task may authenticate "
		"to (repeatable;\n"
		"                        default: all of the agent's "
		"--audiences)\n"
		"  --user USER           run COMMAND as USER (its uid and "
		"groups)\n"
		"  --parent ID           a child task of task ID (stint "
		"delegate's rules;\n"
		"                        the child's processes cannot use the "
		"parent's key)\n");
}

struct run_opts {
	const char *agent, *ttl_s, *key, *sigs_s, *intent, *cert_dir, *user;
	const char *parent; /* deleg: a child task of this one */
	uint64_t ttl, max_sigs;
	char **cmd;
	bool has_aud; /* aud: --audience given */
	char aud[STINT_AUDIENCES_TEXT_MAX + 1];
	struct passwd pw; /* --user */
	char pw_buf[4096];
};

/* ---- the child: waits, gets its environment, execs ---------------------- */

/* Reads "GO\0" then KEY=VALUE\0 entries until EOF; anything else (stint run
 * gone, start refused) means do not run. */
static void
child_main(int in, const struct run_opts *o)
{
	static char buf[16384];
	size_t len = 0, off;
	ssize_t n;

	while (len < sizeof(buf) - 1 &&
	       (n = read(in, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			_exit(127);
		len += (size_t)n;
	}
	close(in);
	buf[len] = '\0';
	if (len < 3 || memcmp(buf, "GO", 3) != 0)
		_exit(127);
	for (off = 3; off < len; off += strlen(buf + off) + 1)
		if (putenv(buf + off) != 0)
			_exit(127);
	if (o->user != NULL &&
	    (initgroups(o->pw.pw_name, o->pw.pw_gid) != 0 ||
	     setgid(o->pw.pw_gid) != 0 || setuid(o->pw.pw_uid) != 0)) {
		fprintf(stderr, "stint run: cannot become user %s: %s\n",
			o->user, strerror(errno));
		_exit(126);
	}
	execvp(o->cmd[0], o->cmd);
	fprintf(stderr, "stint run: cannot run %s: %s\n", o->cmd[0],
		strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* ---- the task ------------------------------------------------------------ */

/* Writes pid into cg's cgroup.procs: 0, or -1 with errno. */
static int
move_to_cgroup(const char *cg, pid_t pid)
{
	char dir[4096], path[4200], num[24];
	int fd, n, r = 0, e;

	if (stint_cgroup_fs_path(cg, dir, sizeof(dir)) != 0) {
		errno = ENOENT;
		return -1;
	}
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
		return -1;
	n = snprintf(num, sizeof(num), "%ld\n", (long)pid);
	if (write(fd, num, (size_t)n) != n)
		r = -1;
	e = errno;
	close(fd);
	errno = e;
	return r;
}

/* RUN_PREPARE: the cgroup stintd made for the waiting child, into cg ("":
 * none, stintd's TASK_START says why). Where stintd could not move the
 * child in itself, stint run does. -1: refused (said). */
static int
prepare_cgroup(const struct stint_cli *cli, const struct run_opts *o,
	       pid_t child, char *cg, size_t cap)
{
	struct stint_run_prepare_req pr;
	struct stint_run_prepare_rep out;
	struct stint_msg *req, *rep = NULL;

	cg[0] = '\0';
	memset(&pr, 0, sizeof(pr));
	snprintf(pr.agent, sizeof(pr.agent), "%s", o->agent);
	pr.run_pid = (uint32_t)child;
	if ((req = stint_cli_request(STINT_OP_RUN_PREPARE)) == NULL)
		return -1;
	if (stint_enc_run_prepare_req(req, &pr) != 0) {
		stint_msg_free(req);
		stint_cli_err("run: cannot build the request");
		return -1;
	}
	if (stint_cli_call(cli, "run", req, &rep) != STINT_EXIT_OK)
		return -1;
	stint_get_run_prepare_rep(rep, &out);
	stint_msg_free(rep);
	if (out.cgroup[0] == '\0')
		return 0;
	snprintf(cg, cap, "%s", out.cgroup);
	if (!out.moved && move_to_cgroup(out.cgroup, child) != 0)
		fprintf(stderr,
			"stint run: note: neither stintd nor stint run may "
			"move the command into cgroup %s (%s)\n",
			out.cgroup, strerror(errno));
	return 0;
}

static int
start_task(const struct stint_cli *cli, const struct run_opts *o, pid_t child,
	   const char *cg, struct stint_msg **rep)
{
	struct stint_task_start_req r;
	struct stint_msg *req;

	memset(&r, 0, sizeof(r));
	snprintf(r.agent, sizeof(r.agent), "%s", o->agent);
	r.has_ttl = o->ttl_s != NULL;
	r.ttl = o->ttl;
	if (o->key != NULL) {
		(void)stint_key_type_parse(o->key, &r.key_type);
		r.has_key_type = true;
	}
	r.max_sigs = o->max_sigs;
	if (o->intent != NULL) {
		snprintf(r.intent, sizeof(r.intent), "%s", o->intent);
		r.has_intent = true;
	}
	r.run_pid = (uint32_t)child;
	snprintf(r.run_cgroup, sizeof(r.run_cgroup), "%s", cg);
	if (o->has_aud) { /* aud */
		memcpy(r.audiences, o->aud, sizeof(r.audiences));
		r.has_audiences = true;
	}
	/* deleg: --parent asks for a child task (TASK_DELEGATE, the rules of
	 * stint delegate) bound to the command's cgroup the same way */
	if ((req = stint_cli_request(o->parent != NULL
					     ? STINT_OP_TASK_DELEGATE
					     : STINT_OP_TASK_START)) == NULL)
		return STINT_EXIT_FAIL;
	if (stint_enc_task_start_req(req, &r) != 0 ||
	    (o->parent != NULL &&
	     stint_msg_put_text(req, STINT_K_PARENT, o->parent) != 0)) {
		stint_msg_free(req);
		stint_cli_err("run: cannot build the request");
		return STINT_EXIT_FAIL;
	}
	return stint_cli_call(cli, "run", req, rep);
}

/* The task's state through TASK_SHOW, quietly (stintd may be restarting):
 * 1 live, 0 over, -1 unknown. */
static int
task_live(const struct stint_cli *cli, const char *id)
{
	struct stint_task_info t;
	struct stint_msg *req, *rep = NULL;
	int saved, null, r = -1;

	if ((req = stint_cli_name_request(STINT_OP_TASK_SHOW, STINT_K_TASK,
					  id)) == NULL)
		return -1;
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (saved >= 0 && null >= 0)
		dup2(null, STDERR_FILENO);
	if (stint_cli_call(cli, "run", req, &rep) == STINT_EXIT_OK) {
		if (stint_get_task_info(rep, &t) == 0 && t.state[0] != '\0')
			r = strcmp(t.state, "live") == 0;
		stint_msg_free(rep);
	}
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
	if (null >= 0)
		close(null);
	return r;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* The command exited: the task ends once its cgroup is empty. Waits for
 * stintd to end it; with processes left behind after the grace, ends it. */
static void
wait_task_end(const struct stint_cli *cli, const char *id)
{
	struct stint_task_end_req er;
	struct stint_msg *req, *rep = NULL;
	long waited;
	int live = -1;

	for (waited = 0; waited < RUN_END_GRACE_MS; waited += 50) {
		if ((live = task_live(cli, id)) == 0)
			return;
		sleep_ms(50);
	}
	fprintf(stderr,
		"stint run: task %s still %s %d s after the command exited "
		"(processes left in its cgroup?): ending it\n",
		id, live == 1 ? "live" : "unconfirmed",
		RUN_END_GRACE_MS / 1000);
	memset(&er, 0, sizeof(er));
	snprintf(er.task, sizeof(er.task), "%s", id);
	snprintf(er.reason, sizeof(er.reason), "stint run: command exited");
	er.has_reason = true;
	if ((req = stint_cli_request(STINT_OP_TASK_END)) == NULL)
		return;
	if (stint_enc_task_end_req(req, &er) != 0) {
		stint_msg_free(req);
		return;
	}
	if (stint_cli_call(cli, "run: task end", req, &rep) == STINT_EXIT_OK)
		stint_msg_free(rep);
}

/* ---- --cert-dir -----------------------------------------------------------
 */

static int
write_file(const char *dir, const char *name, const void *p, size_t n,
	   const struct run_opts *o)
{
	char path[4096];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "we")) == NULL) {
		stint_cli_err("run: cannot write %s: %s", path,
			      strerror(errno));
		return -1;
	}
	ok = fwrite(p, 1, n, f) == n;
	ok &= fclose(f) == 0;
	if (ok && o->user != NULL &&
	    chown(path, o->pw.pw_uid, o->pw.pw_gid) != 0)
		ok = 0;
	if (!ok)
		stint_cli_err("run: cannot write %s", path);
	return ok ? 0 : -1;
}

/* PEM of one DER certificate into a malloc'ed buffer. */
static char *
cert_pem(const uint8_t *der, size_t len, size_t *n)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *out = NULL;
	long k;

	if (bio == NULL)
		return NULL;
	if (PEM_write_bio(bio, "CERTIFICATE", "", der, (long)len) > 0 &&
	    (k = BIO_get_mem_data(bio, &p)) > 0 &&
	    (out = malloc((size_t)k)) != NULL) {
		memcpy(out, p, (size_t)k);
		*n = (size_t)k;
	}
	BIO_free(bio);
	return out;
}

/* The last certificate of a PEM bundle (the root): from its BEGIN line.
 * The bundle is bytes, not a C string. */
static const char *
last_cert(const char *pem, size_t len, size_t *n)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	const size_t blen = sizeof(begin) - 1;
	const char *last = NULL;
	size_t i;

	for (i = 0; i + blen <= len; i++)
		if (memcmp(pem + i, begin, blen) == 0)
			last = pem + i;
	if (last != NULL)
		*n = len - (size_t)(last - pem);
	return last;
}

static int
cert_dir(const struct stint_cli *cli, const struct run_opts *o,
	 const struct stint_task_info *task)
{
	struct stint_msg *req, *rep = NULL;
	struct stint_ca_cert_rep cr;
	const char *root;
	size_t rlen = 0, plen = 0;
	char *pem;
	int r;

	if (mkdir(o->cert_dir, 0700) != 0 && errno != EEXIST) {
		stint_cli_err("run: cannot create %s: %s", o->cert_dir,
			      strerror(errno));
		return -1;
	}
	if (o->user != NULL &&
	    chown(o->cert_dir, o->pw.pw_uid, o->pw.pw_gid) != 0) {
		stint_cli_err("run: cannot give %s to %s: %s", o->cert_dir,
			      o->user, strerror(errno));
		return -1;
	}
	if (task->cert == NULL) {
		stint_cli_err("run: --cert-dir: the task has no certificate "
			      "(stintd has no CA)");
		return -1;
	}
	if ((pem = cert_pem(task->cert, task->cert_len, &plen)) == NULL)
		return -1;
	r = write_file(o->cert_dir, "cert.pem", pem, plen, o);
	free(pem);
	if (r != 0 || (req = stint_cli_request(STINT_OP_CA_CERT)) == NULL ||
	    stint_cli_call(cli, "run: ca cert", req, &rep) != STINT_EXIT_OK)
		return -1;
	if (stint_get_ca_cert_rep(rep, &cr) != 0 ||
	    (root = last_cert((const char *)cr.pem, cr.pem_len, &rlen)) ==
		    NULL) {
		stint_cli_err("run: stintd sent no CA chain");
		stint_msg_free(rep);
		return -1;
	}
	r = write_file(o->cert_dir, "chain.pem", cr.pem, cr.pem_len, o);
	if (r == 0)
		r = write_file(o->cert_dir, "ca.pem", root, rlen, o);
	stint_msg_free(rep);
	return r;
}

/* ---- the environment the command gets ----------------------------------- */

static int
env_add(char *buf, size_t cap, size_t *len, const char *key, const char *val)
{
	int n = snprintf(buf + *len, cap - *len, "%s=%s", key, val);

	if (n < 0 || (size_t)n + 1 > cap - *len)
		return -1;
	*len += (size_t)n + 1; /* keeps the NUL */
	return 0;
}

static void
agent_socket(const struct stint_cli *cli, char *buf, size_t cap)
{
	const char *env = getenv("STINT_SOCKET"), *slash;

	if (env != NULL && *env != '\0')
		snprintf(buf, cap, "%s", env);
	else if ((slash = strrchr(cli->socket, '/')) != NULL)
		snprintf(buf, cap, "%.*s/agent.sock",
			 (int)(slash - cli->socket), cli->socket);
	else
		snprintf(buf, cap, "agent.sock");
}

/* "GO\0" and the entries, for child_main. */
static int
env_block(const struct stint_cli *cli, const struct stint_task_info *task,
	  char *buf, size_t cap, size_t *len)
{
	char v[600], sock[4096];
	int r = 0;

	if (task->uri[0] == '\0')
		return -1;
	memcpy(buf, "GO", 3);
	*len = 3;
	agent_socket(cli, sock, sizeof(sock));
	r |= env_add(buf, cap, len, "STINT_TASK", task->id);
	snprintf(v, sizeof(v), "%s;type=private", task->uri);
	r |= env_add(buf, cap, len, "STINT_KEY_URI", v);
	snprintf(v, sizeof(v), "%s;type=cert", task->uri);
	r |= env_add(buf, cap, len, "STINT_CERT_URI", v);
	r |= env_add(buf, cap, len, "STINT_SOCKET", sock);
	/* The libp11 engine (curl, openssl) loads the module it names. */
	if (getenv("PKCS11_MODULE_PATH") == NULL &&
	    access(STINT_MODULE_PATH, R_OK) == 0)
		r |= env_add(buf, cap, len, "PKCS11_MODULE_PATH",
			     STINT_MODULE_PATH);
	return r;
}

/* ---- signals ------------------------------------------------------------- */

static volatile sig_atomic_t child_pid;

/* Signals sent to stint run (kill, a supervisor) go to the command; those
 * the terminal sends (SI_KERNEL) reach the command's process group by
 * themselves. */
static void
forward(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (child_pid > 0 && (si == NULL || si->si_code != SI_KERNEL))
		kill((pid_t)child_pid, sig);
}

static void
forward_signals(void)
{
	static const int sigs[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT,
				   SIGUSR1, SIGUSR2, SIGWINCH};
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = forward;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

static int
exit_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return STINT_EXIT_FAIL;
}

/* ---- options ------------------------------------------------------------- */

static int
parse(int argc, char **argv, struct run_opts *o)
{
	static const struct option opts[] = {
		{"agent", required_argument, NULL, 'a'},
		{"ttl", required_argument, NULL, 't'},
		{"key", required_argument, NULL, 'k'},
		{"max-signatures", required_argument, NULL, 'n'},
		{"intent", required_argument, NULL, 'i'},
		{"cert-dir", required_argument, NULL, 'c'},
		{"user", required_argument, NULL, 'u'},
		{"audience", required_argument, NULL, 'A'}, /* aud */
		{"parent", required_argument, NULL, 'p'},   /* deleg */
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct passwd *res = NULL;
	uint32_t kt;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+:a:t:k:n:i:c:u:A:p:h", opts,
				NULL)) != -1) {
		switch (c) {
		case 'p': /* deleg */
			if (!stint_cli_task_id_ok(optarg))
				return stint_cli_usage(
					"run",
					"--parent '%s': bad task "
					"id",
					optarg);
			o->parent = optarg;
			break;
		case 'A': /* aud: repeatable */
			if (stint_cli_audience_opt(o->aud, sizeof(o->aud),
						   optarg, "run") != 0)
				return STINT_EXIT_USAGE;
			o->has_aud = true;
			break;
		case 'a':
			o->agent = optarg;
			break;
		case 't':
			o->ttl_s = optarg;
			break;
		case 'k':
			o->key = optarg;
			break;
		case 'n':
			o->sigs_s = optarg;
			break;
		case 'i':
			o->intent = optarg;
			break;
		case 'c':
			o->cert_dir = optarg;
			break;
		case 'u':
			o->user = optarg;
			break;
		case 'h':
			stint_help_run(stdout);
			return -1;
		default:
			return stint_cli_bad_option("run", c, argv);
		}
	}
	if (optind >= argc)
		return stint_cli_usage("run", "no command: stint run [OPTIONS] "
					      "-- COMMAND [ARG...]");
	o->cmd = argv + optind;
	if (o->agent == NULL)
		return stint_cli_usage("run", "--agent is required");
	if (!stint_cli_name_ok(o->agent))
		return stint_cli_usage("run", "bad agent name '%s'", o->agent);
	if (o->ttl_s != NULL && stint_duration_parse(o->ttl_s, &o->ttl) != 0)
		return stint_cli_usage("run", "--ttl '%s': bad duration",
				       o->ttl_s);
	if (o->key != NULL && stint_key_type_parse(o->key, &kt) != 0)
		return stint_cli_usage("run",
				       "--key '%s': use ec-p256, ec-p384, "
				       "rsa-2048 or rsa-3072",
				       o->key);
	if (o->sigs_s != NULL &&
	    (stint_cli_parse_u64(o->sigs_s, &o->max_sigs) != 0 ||
	     o->max_sigs == 0))
		return stint_cli_usage("run",
				       "--max-signatures '%s': need a whole "
				       "number of at least 1",
				       o->sigs_s);
	if (o->intent != NULL && strlen(o->intent) > STINT_INTENT_MAX)
		return stint_cli_usage("run", "--intent is too long");
	if (o->user != NULL && (getpwnam_r(o->user, &o->pw, o->pw_buf,
					   sizeof(o->pw_buf), &res) != 0 ||
				res == NULL))
		return stint_cli_usage("run", "--user '%s': no such user",
				       o->user);
	return 0;
}

/* ---- stint run ------------------------------------------------------------
 */

/* Starts the task for the waiting child and lets it run; -1 when the task
 * could not be started (the child is gone then). */
static int
launch(const struct stint_cli *cli, const struct run_opts *o, pid_t child,
       int go, char *id, size_t idcap)
{
	static char env[16384];
	struct stint_task_info t;
	struct stint_msg *rep = NULL;
	char note[512], cg[STINT_CGROUP_MAX + 1];
	size_t len = 0;
	int r;

	if (prepare_cgroup(cli, o, child, cg, sizeof(cg)) != 0 ||
	    start_task(cli, o, child, cg, &rep) != STINT_EXIT_OK)
		return -1;
	r = stint_get_task_start_rep(rep, &t, note, sizeof(note));
	if (note[0] != '\0')
		fprintf(stderr, "stint run: warning: %s\n", note);
	if (r == 0)
		snprintf(id, idcap, "%s", t.id);
	if (r != 0 || env_block(cli, &t, env, sizeof(env), &len) != 0) {
		stint_cli_err("run: stintd's reply lacks the task id or URI");
		stint_msg_free(rep);
		return -2;
	}
	if (o->cert_dir != NULL && cert_dir(cli, o, &t) != 0) {
		stint_msg_free(rep);
		return -2;
	}
	stint_msg_free(rep);
	if (write(go, env, len) != (ssize_t)len) {
		stint_cli_err("run: cannot pass the environment to %s: %s",
			      o->cmd[0], strerror(errno));
		return -2;
	}
	return 0;
}

int
stint_cmd_run(const struct stint_cli *cli, int argc, char **argv)
{
	static struct run_opts o;
	char id[STINT_TASK_ID_MAX + 1] = "";
	int p[2], st = 0, r;
	pid_t pid;

	memset(&o, 0, sizeof(o));
	if ((r = parse(argc, argv, &o)) != 0)
		return r < 0 ? STINT_EXIT_OK : r;
	if (pipe2(p, O_CLOEXEC) != 0) {
		stint_cli_err("run: pipe: %s", strerror(errno));
		return STINT_EXIT_FAIL;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		stint_cli_err("run: fork: %s", strerror(errno));
		return STINT_EXIT_FAIL;
	}
	if (pid == 0) {
		close(p[1]);
		child_main(p[0], &o);
	}
	close(p[0]);
	child_pid = pid;
	forward_signals();
	r = launch(cli, &o, pid, p[1], id, sizeof(id));
	close(p[1]); /* EOF: the child runs, or gives up (127) */
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	child_pid = 0;
	if (r == -1)
		return STINT_EXIT_FAIL;
	if (id[0] != '\0')
		wait_task_end(cli, id);
	return r == 0 ? exit_status(st) : STINT_EXIT_FAIL;
}
