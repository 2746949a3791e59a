/*
 * stintd: the only process that holds the HSM PIN, the state database and
 * the audit log. Agents reach it through agent.sock, platform teams
 * through admin.sock.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/agents_dir.h"
#include "attest/audit_anchor.h"
#include "attest/ca.h"
#include "attest/daemon.h"
#include "attest/paths.h"
#include "attest/peer.h"
#include "attest/sd.h"
#include "attest/operator.h"
#include "attest/store_guard.h"
#include "attest/task.h"
#include "attest/watch.h"
#include "common/fileio.h"
#include "common/log.h"

#define DEFAULT_CONFIG STINT_CONFIG_DEFAULT

static int wake_pipe[2] = {-1, -1};
/* --init: create a new state.db even though stintd has run here before. */
static bool opt_init;
/* state.db is new on this start: the sweep destroys nothing. */
static bool store_created;

static void
on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (write(wake_pipe[1], &c, 1) < 0) {
		/* nothing more a handler can do */
	}
	errno = saved;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: stintd [--config FILE] [--foreground] [--check] "
		"[--init]\n"
		"              [--pid-file FILE] [--reset-audit-anchor]\n"
		"\n"
		"Stint daemon: holds task keys in the backend, checks every\n"
		"signature against the live task, and logs it.\n"
		"\n"
		"  -c, --config FILE  configuration (default %s)\n"
		"  -f, --foreground   stay in the foreground, log to stderr\n"
		"      --check        validate the configuration, open the\n"
		"                     backend, store and audit log, then exit\n"
		"      --init         create an empty state.db where it is\n"
		"                     missing or empty though stintd ran here\n"
		"                     before (never replaces a store)\n"
		"      --pid-file FILE  write the daemon's pid there (removed\n"
		"                     at exit)\n"
		"      --reset-audit-anchor  start although the audit log "
		"does\n"
		"                     not hold the head state.db recorded\n"
		"  -h, --help         this help\n"
		"  -V, --version      print the version\n"
		"\n"
		"See stintd(8) and stint.conf(5).\n",
		DEFAULT_CONFIG);
}

/* Keeps the PIN and key handles out of core files and ptrace by the same
 * uid. */
static void
harden_process(void)
{
	struct rlimit no_core = {0, 0};

	(void)prctl(PR_SET_DUMPABLE, 0);
	(void)setrlimit(RLIMIT_CORE, &no_core);
	signal(SIGPIPE, SIG_IGN);
}

/* Creates path with exactly mode, whatever the umask (stintd runs with
 * umask 077, which would make runtime_dir 0700 and hide agent.sock from
 * every agent). An existing directory is left as the administrator made
 * it; a runtime_dir others cannot search is reported. */
static int
make_dir(const char *path, mode_t mode, char *err, size_t errlen)
{
	struct stat st;

	if (stint_dir_make(path, mode, err, errlen) != 0)
		return -1;
	if ((mode & S_IXOTH) != 0 && stat(path, &st) == 0 &&
	    (st.st_mode & S_IXOTH) == 0)
		log_warn("%s is mode %04o: agents of other uids cannot reach "
			 "its sockets (chmod 755 it)",
			 path, (unsigned)(st.st_mode & 07777));
	return 0;
}

static int
open_all(struct stintd *d, char *err, size_t errlen)
{
	char path[PATH_MAX + 16];

	if (make_dir(d->cfg.state_dir, 0700, err, errlen) != 0 ||
	    make_dir(d->cfg.runtime_dir, 0755, err, errlen) != 0)
		return -1;
	if (stint_paths_check(&d->cfg, geteuid(), err, errlen) != 0)
		return -1;
	/* The backend first: whether it holds task keys decides whether a
	 * missing state.db may be created. */
	if (stint_backend_open(&d->cfg, &d->backend, err, errlen) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/state.db", d->cfg.state_dir);
	if (stint_store_guard(&d->cfg, d->backend, path, opt_init,
			      &store_created, err, errlen) != 0)
		return -1;
	if (stint_store_open(path, &d->store, err, errlen) != 0)
		return -1;
	stint_store_set_budget_block(d->store, d->cfg.budget_block);
	if (stintd_operators_load(d, err, errlen) != 0)
		return -1;
	if (stint_audit_open(d->cfg.audit.path, d->cfg.audit.sync, &d->audit,
			     err, errlen) != 0 ||
	    stint_audit_set_forward(d->audit, d->cfg.audit.forward,
				    d->cfg.audit.forward_socket, err,
				    errlen) != 0)
		return -1;
	/* The CA and attestation keys live in the backend: found, or made
	 * on first start. */
	if (stint_ca_open(d->backend, d->cfg.state_dir, d->cfg.trust_domain,
			  d->cfg.ca.key_type, (int64_t)d->cfg.ca.skew,
			  d->cfg.ca.extension_oid, &d->ca, err, errlen) != 0)
		return -1;
	return 0;
}

static void
close_all(struct stintd *d)
{
	stint_ca_close(d->ca);
	d->ca = NULL;
	if (d->backend != NULL)
		d->backend->ops->close(d->backend);
	if (d->audit != NULL)
		stint_audit_close(d->audit);
	if (d->store != NULL)
		stint_store_close(d->store);
	d->backend = NULL;
	d->audit = NULL;
	d->store = NULL;
}

static void
audit_daemon(struct stintd *d, const char *event, const char *detail)
{
	struct stint_audit_event ev = {
		.event = event, .decision = "allow", .detail = detail};

	if (stint_audit_append(d->audit, &ev) != 0)
		log_err("audit log write failed for %s", event);
}

/* The sweep keeps a key while the store knows its task and has not
 * recorded its key destroyed: the reaper ends tasks past their deadline
 * and destroys the keys of ended ones, with their own audit records. A key
 * is also kept when the store cannot answer. */
static bool
sweep_keep(void *ctx, const char *id)
{
	struct stintd *d = ctx;
	struct stint_task t;
	bool keep;
	int r;

	if (store_created)
		return true; /* a new store knows no task: destroy nothing */
	memset(&t, 0, sizeof(t));
	r = stint_store_task_get(d->store, id, &t);
	if (r == STINT_STORE_NOT_FOUND)
		return false;
	keep = r != STINT_STORE_OK || !t.key_destroyed;
	stint_task_clear(&t);
	return keep;
}

static void
sweep_gone(void *ctx, const char *id)
{
	struct stintd *d = ctx;
	struct stint_audit_event ev = {
		.event = "key-destroy",
		.task = id,
		.decision = "allow",
		.reason = "no live task: orphan or unused ready key"};

	if (id[0] == '\0') {
		ev.task = NULL;
		ev.reason = "orphan key without id, left by a failed key "
			    "generation";
	}
	if (stint_audit_append(d->audit, &ev) != 0)
		log_err("audit log write failed for key-destroy of %s", id);
}

/* Removes keys no task owns: ready keys of the backend's pool and fresh
 * task keys left by a crash, before their task was stored. Once, before
 * serving: a key taken for a task start is not in the store yet. */
static void
sweep_keys(struct stintd *d)
{
	size_t n = 0;
	char err[512];

	if (d->backend->ops->sweep == NULL)
		return;
	err[0] = '\0';
	if (d->backend->ops->sweep(d->backend, sweep_keep, sweep_gone, d, &n,
				   err, sizeof(err)) != 0)
		log_warn("key sweep incomplete: %s (the next start tries "
			 "again)",
			 err);
	log_info("key sweep: removed %zu keys that no live task owns", n);
}

/*
 * Forks before anything is opened: no thread, SQLite connection or PKCS#11
 * session crosses the fork. The first process waits on a pipe until the
 * daemon says it started (one NUL byte) or why it did not (the error
 * text), and exits 0 or 1 accordingly; *ready_fd is the daemon's end.
 */
static int
daemonize(int *ready_fd)
{
	char buf[600];
	size_t got = 0;
	ssize_t n;
	pid_t pid;
	int fd, p[2];

	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	if ((pid = fork()) < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		while (got < sizeof(buf) - 1) {
			n = read(p[0], buf + got, sizeof(buf) - 1 - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		buf[got] = '\0';
		if (got > 0 && buf[0] == '\0')
			_exit(0);
		fprintf(stderr, "stintd: %s\n",
			got > 0 ? buf
				: "the daemon exited during start-up (see "
				  "the system log)");
		_exit(1);
	}
	close(p[0]);
	if (setsid() < 0)
		return -1;
	if ((pid = fork()) < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (chdir("/") != 0)
		return -1;
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	*ready_fd = p[1];
	return 0;
}

/* Start-up failed: tell the waiting parent (daemon mode) or stderr. */
static void
startup_error(int *ready_fd, const char *msg)
{
	log_err("%s", msg);
	if (*ready_fd >= 0) {
		if (write(*ready_fd, msg, strlen(msg)) < 0) {
			/* the parent reports that the daemon exited */
		}
		close(*ready_fd);
		*ready_fd = -1;
	} else {
		fprintf(stderr, "stintd: %s\n", msg);
	}
}

static void
startup_done(int *ready_fd)
{
	if (*ready_fd < 0)
		return;
	if (write(*ready_fd, "", 1) < 0) {
		/* the parent then reports a failed start */
	}
	close(*ready_fd);
	*ready_fd = -1;
}

/* The pid file: written once the log's lock shows no other stintd runs,
 * world-readable, removed at exit. */
static int
pid_file_write(const char *path, char *err, size_t errlen)
{
	char buf[32];
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0644);
	if (fd < 0) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (fchmod(fd, 0644) != 0 || write(fd, buf, (size_t)n) != n) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

/* prov: stint.conf's agents_dir is validated with stint.conf (and by
 * --check), so a broken file stops the start with its FILE:LINE. */
static int
check_agents_dir(const struct stint_config *cfg, char *err, size_t errlen)
{
	struct stint_agents_decl decl;

	if (stint_agents_dir_load(cfg, &decl, err, errlen) != 0)
		return -1;
	stint_agents_decl_free(&decl);
	return stint_operators_dir_check(cfg, err, errlen);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"foreground", no_argument, NULL, 'f'},
		{"check", no_argument, NULL, 'k'},
		{"init", no_argument, NULL, 'i'},
		{"pid-file", required_argument, NULL, 'p'},
		{"reset-audit-anchor", no_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}};
	const char *config = DEFAULT_CONFIG, *pid_file = NULL;
	bool foreground = false, check = false, reset = false, was_reset;
	bool pid_written = false;
	struct stintd d;
	char err[512], detail[512];
	int c, rc = 1, ready_fd = -1;

	while ((c = getopt_long(argc, argv, "c:fhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'k':
			check = true;
			foreground = true;
			break;
		case 'i':
			opt_init = true;
			break;
		case 'p':
			pid_file = optarg;
			break;
		case 'R':
			reset = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("stintd %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	stint_log_init("stintd", !foreground);
	harden_process();
	umask(077);
	/* Before any thread exists, so that every thread inherits it. */
	stintd_anchor_block_signals();

	memset(&d, 0, sizeof(d));
	d.uid = getuid();
	if (stint_config_load(config, &d.cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "stintd: %s\n", err);
		return 1;
	}
	if (check_agents_dir(&d.cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "stintd: %s\n", err);
		return 1;
	}
	stint_exe_hash_set_max(d.cfg.exe_hash_max);
	if (getenv("STINT_PEER_FALLBACK") != NULL &&
	    strcmp(getenv("STINT_PEER_FALLBACK"), "1") == 0)
		stint_peer_force_fallback(true);
	/* Fork first: threads, the store's connection and the backend's
	 * sessions all belong to the daemon process. */
	if (!foreground && daemonize(&ready_fd) != 0) {
		snprintf(err, sizeof(err), "cannot daemonize: %s",
			 strerror(errno));
		startup_error(&ready_fd, err);
		return 1;
	}
	if (open_all(&d, err, sizeof(err)) != 0 ||
	    stintd_anchor_open(&d, reset, &was_reset, err, sizeof(err)) != 0) {
		if (check && strstr(err, "in use by another process") != NULL) {
			/* prov: a pipeline checks files on a running host */
			printf("stintd: configuration %s and agent files OK; "
			       "a running stintd holds the audit log, so the "
			       "store, log and token were not opened\n",
			       config);
			close_all(&d);
			return 0;
		}
		startup_error(&ready_fd, err);
		close_all(&d);
		return 1;
	}
	if (check) {
		printf("stintd: configuration %s OK\n", config);
		close_all(&d);
		return 0;
	}
	if (pid_file != NULL) {
		if (pid_file_write(pid_file, err, sizeof(err)) != 0) {
			startup_error(&ready_fd, err);
			close_all(&d);
			return 1;
		}
		pid_written = true;
	}
	if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    stint_audit_start(d.audit) != 0 ||
	    (d.revoke = stint_revoke_lock_new()) == NULL) {
		snprintf(err, sizeof(err),
			 "cannot create the wake pipe, the audit sync thread "
			 "or the revoke lock");
		startup_error(&ready_fd, err);
		close_all(&d);
		if (pid_written)
			unlink(pid_file);
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	d.started = stintd_now();

	snprintf(detail, sizeof(detail), "stintd %s pid %ld backend %s%s%s",
		 PACKAGE_VERSION, (long)getpid(), d.backend->ops->name,
		 was_reset ? "; audit anchor reset (--reset-audit-anchor): "
			     "the log did not hold the head state.db or the "
			     "TPM recorded"
			   : "",
		 stintd_anchor_note());
	audit_daemon(&d, "daemon-start", detail);
	stintd_anchor_store(&d);
	log_info("started (%s, audit %s, sync %s)", detail, d.cfg.audit.path,
		 stint_sync_str(d.cfg.audit.sync));
	/* prov: the agents the files declare, before anything is served. */
	if (stintd_agents_reconcile(&d, NULL, err, sizeof(err)) != 0) {
		startup_error(&ready_fd, err);
		goto out;
	}
	/* After daemonize(): the sweep starts the backend's refill thread. */
	sweep_keys(&d);
	if (stint_reaper_start(&d) != 0 || stintd_anchor_start(&d) != 0 ||
	    stint_retention_start(&d) != 0 || stint_watch_start(&d) != 0) {
		snprintf(err, sizeof(err),
			 "cannot start the expiry, audit anchor, retention or "
			 "bound-task watcher thread");
		startup_error(&ready_fd, err);
		goto out;
	}
	startup_done(&ready_fd);
	if (stintd_serve(&d, wake_pipe[0], err, sizeof(err)) != 0) {
		log_err("%s", err);
		fprintf(stderr, "stintd: %s\n", err);
	} else {
		rc = 0;
	}
out:
	(void)stint_sd_notify("STOPPING=1");
	stint_watch_stop();
	stint_retention_stop();
	stint_reaper_stop();
	audit_daemon(&d, "daemon-stop", rc == 0 ? "clean stop" : err);
	stintd_anchor_stop(&d);
	log_info("stopped");
	close_all(&d);
	stint_revoke_lock_free(d.revoke);
	close(wake_pipe[0]);
	close(wake_pipe[1]);
	if (pid_written)
		unlink(pid_file);
	return rc;
}
