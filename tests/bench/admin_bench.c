/*
 * admin_bench: task start / task end latency over the admin socket, without
 * the process spawn of the stint CLI.
 *
 *	admin_bench --socket RUNDIR/admin.sock --agent NAME [--count N]
 *	    [--key ec-p256|ec-p384|rsa-2048|rsa-3072] [--keep] [--ttl SECONDS]
 *
 * Starts N tasks one after another, then (unless --keep) ends them in the
 * same order. Each request uses a fresh connection, as the CLI does, so the
 * connect and SO_PEERCRED check are part of what is timed. Prints
 *
 *	start n=N p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. mean_ms=..
 *	end n=N p50_ms=.. ...
 *
 * With --keep the tasks stay live (for the memory measurement) and their ids
 * are not printed; stopping stintd is the caller's business.
 *
 * With --pace MS each task is ended right after its start and the next
 * start waits MS milliseconds: tasks that start when agents need them
 * rather than in a burst, so a backend's ready keys have time to refill.
 *
 * With --parent ID each "start" is a DELEGATE of a child task of ID for
 * agent NAME instead of a TASK_START: give --socket RUNDIR/agent.sock and
 * run as a process allowed to sign with ID. The children stay live (as
 * with --keep): ending the parent ends them (the delegation bench times
 * that).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/frame.h"
#include "common/msg.h"
#include "stint/wire.h"

#define TIMEOUT_MS 60000
#define REPLY_MAX  (1024u * 1024u)

static int
admin_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "admin_bench: socket path too long\n");
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(stderr, "admin_bench: socket: %s\n", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "admin_bench: connect %s: %s\n", path,
			strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* One request, one reply; 0 when the reply status is OK. *rep is set on
 * success (the caller frees it). */
static int
call(const char *sock, struct stint_msg *req, struct stint_msg **rep)
{
	char error[STINT_REASON_MAX + 1];
	struct stint_msg *m = NULL;
	uint8_t *out = NULL, *in = NULL;
	size_t out_len = 0, in_len = 0;
	uint64_t status;
	int fd = -1, r = -1;

	*rep = NULL;
	if (stint_msg_serialize(req, &out, &out_len) != 0)
		goto out;
	if ((fd = admin_connect(sock)) == -1)
		goto out;
	if (stint_frame_write(fd, out, out_len, TIMEOUT_MS) != 0 ||
	    stint_frame_read(fd, REPLY_MAX, TIMEOUT_MS, &in, &in_len) != 0) {
		fprintf(stderr, "admin_bench: no reply from stintd\n");
		goto out;
	}
	if (stint_msg_parse(in, in_len, &m) != 0 ||
	    stint_msg_get_uint(m, STINT_K_STATUS, &status) != 0) {
		fprintf(stderr, "admin_bench: malformed reply\n");
		goto out;
	}
	if (status != STINT_OK) {
		if (stint_msg_get_text(m, STINT_K_ERROR, error,
				       sizeof(error)) != 0)
			error[0] = '\0';
		fprintf(stderr, "admin_bench: refused (%s): %s\n",
			stint_status_str(status), error);
		goto out;
	}
	*rep = m;
	m = NULL;
	r = 0;
out:
	if (m != NULL)
		stint_msg_free(m);
	free(out);
	free(in);
	if (fd != -1)
		close(fd);
	return r;
}

/* TASK_START, or DELEGATE of a child of parent when it is not NULL. */
static int
task_start(const char *sock, const char *agent, const char *parent,
	   uint32_t key_type, uint64_t ttl, char id[STINT_TASK_ID_MAX + 1])
{
	struct stint_msg *req, *rep = NULL;
	int r = -1;

	if ((req = stint_msg_new()) == NULL)
		return -1;
	if (stint_msg_put_uint(req, STINT_K_OP,
			       parent != NULL ? STINT_OP_DELEGATE
					      : STINT_OP_TASK_START) != 0 ||
	    (parent != NULL &&
	     stint_msg_put_text(req, STINT_K_PARENT, parent) != 0) ||
	    stint_msg_put_text(req, STINT_K_AGENT, agent) != 0 ||
	    stint_msg_put_uint(req, STINT_K_KEY_TYPE, key_type) != 0 ||
	    (ttl > 0 && stint_msg_put_uint(req, STINT_K_TTL, ttl) != 0))
		goto out;
	if (call(sock, req, &rep) != 0)
		goto out;
	if (stint_msg_get_text(rep, STINT_K_TASK, id, STINT_TASK_ID_MAX + 1) !=
	    0) {
		fprintf(stderr, "admin_bench: TASK_START reply has no task\n");
		goto out;
	}
	r = 0;
out:
	stint_msg_free(req);
	if (rep != NULL)
		stint_msg_free(rep);
	return r;
}

static int
task_end(const char *sock, const char *id)
{
	struct stint_msg *req, *rep = NULL;
	int r = -1;

	if ((req = stint_msg_new()) == NULL)
		return -1;
	if (stint_msg_put_uint(req, STINT_K_OP, STINT_OP_TASK_END) != 0 ||
	    stint_msg_put_text(req, STINT_K_TASK, id) != 0 ||
	    stint_msg_put_text(req, STINT_K_REASON, "bench") != 0)
		goto out;
	r = call(sock, req, &rep);
out:
	stint_msg_free(req);
	if (rep != NULL)
		stint_msg_free(rep);
	return r;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double
pct(const double *v, size_t n, double p)
{
	size_t k = (size_t)((p / 100.0) * (double)n + 0.999999);

	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return v[k - 1];
}

static void
report(const char *what, double *v, size_t n)
{
	double sum = 0;
	size_t i;

	qsort(v, n, sizeof(*v), cmp_double);
	for (i = 0; i < n; i++)
		sum += v[i];
	printf("%s n=%zu p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f "
	       "mean_ms=%.2f\n",
	       what, n, pct(v, n, 50), pct(v, n, 90), pct(v, n, 99), v[n - 1],
	       sum / (double)n);
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: admin_bench --socket PATH --agent NAME [--count N] "
		"[--key TYPE] [--ttl SECONDS] [--keep | --pace MS | "
		"--parent ID]\n");
	exit(2);
}

/* Ends the task just started, timed into *ms, then waits pace_ms. */
static int
paced_end(const char *sock, const char *id, long pace_ms, double *ms)
{
	struct timespec gap = {pace_ms / 1000, (pace_ms % 1000) * 1000000L};
	double t0 = stint_mono_ms_frac();

	if (task_end(sock, id) != 0) {
		fprintf(stderr, "admin_bench: task end %s failed\n", id);
		return -1;
	}
	*ms = stint_mono_ms_frac() - t0;
	while (nanosleep(&gap, &gap) != 0 && errno == EINTR)
		;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"agent", required_argument, NULL, 'a'},
		{"count", required_argument, NULL, 'n'},
		{"key", required_argument, NULL, 'k'},
		{"ttl", required_argument, NULL, 't'},
		{"keep", no_argument, NULL, 'K'},
		{"pace", required_argument, NULL, 'p'},
		{"parent", required_argument, NULL, 'P'},
		{NULL, 0, NULL, 0},
	};
	const char *sock = NULL, *agent = NULL, *parent = NULL;
	char(*ids)[STINT_TASK_ID_MAX + 1] = NULL;
	double *lat = NULL, *lat_end = NULL, t0;
	long pace = 0;
	uint32_t key_type = STINT_KEY_EC_P256;
	uint64_t ttl = 0;
	long count = 200;
	int c, keep = 0, rc = 1;
	size_t i, n;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 'a':
			agent = optarg;
			break;
		case 'n':
			count = strtol(optarg, NULL, 10);
			break;
		case 'k':
			if (stint_key_type_parse(optarg, &key_type) != 0)
				usage();
			break;
		case 't':
			ttl = strtoull(optarg, NULL, 10);
			break;
		case 'K':
			keep = 1;
			break;
		case 'p':
			pace = strtol(optarg, NULL, 10);
			break;
		case 'P':
			parent = optarg;
			keep = 1;
			break;
		default:
			usage();
		}
	}
	if (sock == NULL || agent == NULL || count < 1 || count > 100000 ||
	    pace < 0 || pace > 60000 || (pace > 0 && keep) || optind != argc)
		usage();
	n = (size_t)count;
	if ((ids = calloc(n, sizeof(*ids))) == NULL ||
	    (lat = calloc(n, sizeof(*lat))) == NULL ||
	    (lat_end = calloc(n, sizeof(*lat_end))) == NULL) {
		fprintf(stderr, "admin_bench: out of memory\n");
		goto out;
	}

	for (i = 0; i < n; i++) {
		t0 = stint_mono_ms_frac();
		if (task_start(sock, agent, parent, key_type, ttl, ids[i]) !=
		    0) {
			fprintf(stderr, "admin_bench: task start %zu failed\n",
				i);
			goto out;
		}
		lat[i] = stint_mono_ms_frac() - t0;
		if (pace > 0 && paced_end(sock, ids[i], pace, &lat_end[i]) != 0)
			goto out;
	}
	report("start", lat, n);
	if (pace > 0) {
		report("end", lat_end, n);
	} else if (!keep) {
		for (i = 0; i < n; i++) {
			t0 = stint_mono_ms_frac();
			if (task_end(sock, ids[i]) != 0) {
				fprintf(stderr,
					"admin_bench: task end %s failed\n",
					ids[i]);
				goto out;
			}
			lat[i] = stint_mono_ms_frac() - t0;
		}
		report("end", lat, n);
	}
	fflush(stdout);
	rc = 0;
out:
	free(ids);
	free(lat);
	free(lat_end);
	return rc;
}
