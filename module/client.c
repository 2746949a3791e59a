/*
 * Connections to stintd's agent socket.
 *
 * The module lives inside someone else's program, so it must never hang or
 * kill it: connect and every request are bounded by a timeout (10 s, or
 * $STINT_TIMEOUT_MS), SIGPIPE is never raised (frame.c sends with
 * MSG_NOSIGNAL), and any failure becomes an error code.
 *
 * Idle connections wait in a small pool so threads sign in parallel, each
 * on its own connection. A pooled connection may be stale (stintd restarted
 * or closed it): on an I/O error the pool is emptied and the request is
 * retried once on a fresh connection. A timeout is not retried, so the
 * caller waits at most about two timeouts. After fork() the child closes
 * the connections it inherited without writing to them (they belong to
 * the parent's conversation) and opens its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/frame.h"
#include "common/log.h"
#include "common/msg.h"
#include "common/proto.h"
#include "module/module.h"

#define POOL_MAX           16
#define DEFAULT_SOCKET     RUNSTATEDIR "/stint/agent.sock"
#define DEFAULT_TIMEOUT_MS 10000
#define MAX_LIST_PAGES     4096

static void *g_pool_lock;
static int g_idle[POOL_MAX];
static size_t g_n_idle;
static pid_t g_pool_pid;
static char g_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static bool g_path_ok;
static int g_timeout_ms = DEFAULT_TIMEOUT_MS;

CK_RV
client_init(void)
{
	const char *path, *t;
	char *end;
	long v;
	CK_RV rv;

	if ((rv = mod_mutex_new(&g_pool_lock)) != CKR_OK)
		return rv;
	g_n_idle = 0;
	g_pool_pid = getpid();
	if ((path = getenv("STINT_SOCKET")) == NULL || *path == '\0')
		path = DEFAULT_SOCKET;
	/* A path too long for sun_path only means the token is absent. */
	g_path_ok = strlen(path) < sizeof(g_path);
	if (g_path_ok)
		strcpy(g_path, path);
	else
		stint_debug("module", "STINT_SOCKET longer than %zu bytes",
			    sizeof(g_path) - 1);
	g_timeout_ms = DEFAULT_TIMEOUT_MS;
	if ((t = getenv("STINT_TIMEOUT_MS")) != NULL && *t != '\0') {
		errno = 0;
		v = strtol(t, &end, 10);
		if (errno == 0 && *end == '\0' && v > 0 && v <= 3600000)
			g_timeout_ms = (int)v;
	}
	return CKR_OK;
}

/* Closes every idle connection; stintd sees them close, nothing else. */
static void
pool_flush_locked(void)
{
	while (g_n_idle > 0)
		close(g_idle[--g_n_idle]);
}

void
client_fini(void)
{
	if (g_pool_lock == NULL)
		return;
	mod_mutex_lock(g_pool_lock);
	pool_flush_locked();
	mod_mutex_unlock(g_pool_lock);
	mod_mutex_free(g_pool_lock);
	g_pool_lock = NULL;
}

static void
pool_flush(void)
{
	mod_mutex_lock(g_pool_lock);
	pool_flush_locked();
	mod_mutex_unlock(g_pool_lock);
}

/* An idle connection of this process (me: getpid(), which is a system
 * call, so the caller asks once per request), or -1. */
static int
pool_take(pid_t me)
{
	int fd = -1;

	mod_mutex_lock(g_pool_lock);
	if (g_pool_pid != me) {
		pool_flush_locked();
		g_pool_pid = me;
	}
	if (g_n_idle > 0)
		fd = g_idle[--g_n_idle];
	mod_mutex_unlock(g_pool_lock);
	return fd;
}

/* me: the pid that took or opened fd (getpid() of the caller). A fork
 * copies only the forking thread, so a caller's pid cannot change under
 * it; the pool keeps fd only while it belongs to that pid. */
static void
pool_put(int fd, pid_t me)
{
	mod_mutex_lock(g_pool_lock);
	if (g_pool_pid == me && g_n_idle < POOL_MAX) {
		g_idle[g_n_idle++] = fd;
		fd = -1;
	}
	mod_mutex_unlock(g_pool_lock);
	if (fd >= 0)
		close(fd);
}

/* Non-blocking connect bounded by the timeout; the socket is returned in
 * blocking mode, since frame.c bounds each read and write itself. */
static int
connect_bounded(int *fdp, int *errp)
{
	struct sockaddr_un sun;
	struct pollfd pfd;
	struct timespec pause = {0, 5 * 1000 * 1000};
	int64_t deadline = stint_mono_ms() + g_timeout_ms;
	socklen_t slen;
	int fd, err, flags;

	if (!g_path_ok)
		return STINT_WIRE_IO;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, g_path, strlen(g_path) + 1);
	*errp = 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		*errp = errno;
		return STINT_WIRE_IO;
	}
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			/* Listen backlog full: stintd is busy. */
			if (stint_mono_ms() >= deadline)
				goto timeout;
			nanosleep(&pause, NULL);
			continue;
		}
		if (errno != EINPROGRESS) {
			*errp = errno;
			goto fail;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		err = poll(&pfd, 1, (int)(deadline - stint_mono_ms()));
		if (err == 0)
			goto timeout;
		if (err < 0 && errno != EINTR)
			goto fail;
		slen = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &slen) != 0 ||
		    err != 0) {
			*errp = err;
			goto fail;
		}
		break;
	}
	if ((flags = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
		goto fail;
	*fdp = fd;
	return 0;
timeout:
	close(fd);
	return STINT_WIRE_TIMEOUT;
fail:
	close(fd);
	return STINT_WIRE_IO;
}

static int
roundtrip(int fd, const uint8_t *req, size_t req_len, uint8_t **rep,
	  size_t *rep_len)
{
	int r;

	if ((r = stint_frame_write(fd, req, req_len, g_timeout_ms)) != 0)
		return r;
	return stint_frame_read_reply(fd, STINT_FRAME_MAX, g_timeout_ms, rep,
				      rep_len);
}

/* What the agent can do about a failed connect (STINT_DEBUG=1). */
static void
explain_connect(int r, int e)
{
	if (!stint_debug_enabled("module"))
		return;
	if (r == STINT_WIRE_TIMEOUT)
		stint_debug("module",
			    "stintd is busy: no connection to %s within %d ms "
			    "(STINT_TIMEOUT_MS)",
			    g_path, g_timeout_ms);
	else if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR)
		stint_debug("module",
			    "stintd is not running: cannot connect to %s: %s "
			    "(start stintd, or set STINT_SOCKET to its "
			    "agent.sock)",
			    g_path, strerror(e));
	else if (e == EACCES || e == EPERM)
		stint_debug("module",
			    "%s is not reachable by uid %ld: %s (its "
			    "directory must be searchable by all, mode 0755, "
			    "and the socket 0666)",
			    g_path, (long)getuid(), strerror(e));
	else if (e != 0)
		stint_debug("module", "cannot connect to %s: %s", g_path,
			    strerror(e));
	else
		stint_debug("module", "cannot connect to %s (%s)", g_path,
			    g_path_ok ? "socket error" : "path too long");
}

static void
explain_no_agent(void)
{
	stint_debug("module",
		    "uid %ld (gid %ld) is not registered with stintd: the "
		    "token is absent (root: stint agent add NAME --uid %ld)",
		    (long)getuid(), (long)getgid(), (long)getuid());
}

/* HELLO on a connection; out->agent "" for none. */
static int
hello_on(int fd, struct stint_hello_rep *out)
{
	struct stint_reply_head head;
	struct stint_hello_rep hello;
	uint8_t *req = NULL, *rep = NULL;
	size_t req_len, rep_len;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = stint_enc_hello_req(STINT_WIRE_VERSION, &req, &req_len)) != 0)
		goto out;
	if ((r = roundtrip(fd, req, req_len, &rep, &rep_len)) != 0)
		goto out;
	memset(&hello, 0, sizeof(hello));
	if ((r = stint_dec_hello_rep(rep, rep_len, &head, &hello)) != 0)
		goto out;
	if (head.status == STINT_E_NO_AGENT) {
		explain_no_agent();
	} else if (head.status != STINT_OK) {
		stint_debug("module", "HELLO refused: %s",
			    stint_status_str(head.status));
		r = STINT_WIRE_RANGE;
	} else {
		*out = hello;
		if (out->agent[0] == '\0')
			explain_no_agent();
	}
out:
	free(req);
	free(rep);
	return r;
}

static int
conn_open(int *fdp, struct stint_hello_rep *hello)
{
	struct stint_hello_rep ignored;
	int fd, r, e = 0;

	if ((r = connect_bounded(&fd, &e)) != 0) {
		explain_connect(r, e);
		return r;
	}
	if ((r = hello_on(fd, hello != NULL ? hello : &ignored)) != 0) {
		close(fd);
		return r;
	}
	*fdp = fd;
	return 0;
}

/* One request, one reply. I/O failure on a pooled connection (stintd
 * restarted, or closed it while idle) is retried once on a fresh one. */
static int
call(const uint8_t *req, size_t req_len, uint8_t **rep, size_t *rep_len)
{
	pid_t me = getpid();
	bool fresh;
	int fd, r = STINT_WIRE_IO, attempt;

	if (req_len > STINT_FRAME_MAX)
		return STINT_WIRE_TOO_LARGE;
	for (attempt = 0; attempt < 2; attempt++) {
		fd = pool_take(me);
		if ((fresh = fd < 0) && (r = conn_open(&fd, NULL)) != 0)
			return r;
		r = roundtrip(fd, req, req_len, rep, rep_len);
		if (r == 0) {
			pool_put(fd, me);
			return 0;
		}
		close(fd);
		if (fresh || r != STINT_WIRE_IO)
			break;
		/* The others are probably stale too. */
		pool_flush();
	}
	stint_debug("module", "request failed (%d)", r);
	return r;
}

int
client_hello(struct stint_hello_rep *out)
{
	struct stint_reply_head head;
	uint8_t *req = NULL, *rep = NULL;
	size_t req_len, rep_len;
	pid_t me = getpid();
	int fd, r;

	memset(out, 0, sizeof(*out));
	/* Without an idle connection, the HELLO that opens one answers. */
	if ((fd = pool_take(me)) < 0) {
		if ((r = conn_open(&fd, out)) != 0)
			return r;
		pool_put(fd, me);
		return 0;
	}
	pool_put(fd, me);
	if ((r = stint_enc_hello_req(STINT_WIRE_VERSION, &req, &req_len)) != 0)
		goto out;
	if ((r = call(req, req_len, &rep, &rep_len)) != 0)
		goto out;
	if ((r = stint_dec_hello_rep(rep, rep_len, &head, out)) != 0)
		goto out;
	if (head.status != STINT_OK) {
		memset(out, 0, sizeof(*out));
		if (head.status != STINT_E_NO_AGENT)
			r = STINT_WIRE_RANGE;
	}
	if (r == 0 && out->agent[0] == '\0')
		explain_no_agent();
out:
	free(req);
	free(rep);
	return r;
}

static int
task_dup(struct stint_task_key *dst, const struct stint_task_key *src)
{
	*dst = *src;
	memset(&dst->spki, 0, sizeof(dst->spki));
	memset(&dst->ec_params, 0, sizeof(dst->ec_params));
	memset(&dst->ec_point, 0, sizeof(dst->ec_point));
	memset(&dst->modulus, 0, sizeof(dst->modulus));
	memset(&dst->exponent, 0, sizeof(dst->exponent));
	memset(&dst->cert, 0, sizeof(dst->cert));
	if (stint_bytes_dup(&dst->spki, &src->spki) != 0 ||
	    stint_bytes_dup(&dst->ec_params, &src->ec_params) != 0 ||
	    stint_bytes_dup(&dst->ec_point, &src->ec_point) != 0 ||
	    stint_bytes_dup(&dst->modulus, &src->modulus) != 0 ||
	    stint_bytes_dup(&dst->exponent, &src->exponent) != 0 ||
	    stint_bytes_dup(&dst->cert, &src->cert) != 0) {
		stint_task_key_clear(dst);
		return STINT_WIRE_NOMEM;
	}
	return 0;
}

void
client_tasks_free(struct stint_task_key *tasks, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		stint_task_key_clear(&tasks[i]);
	free(tasks);
}

/* Appends one LIST page to *tasks. */
static int
list_page(const char *as, const char *cursor, struct stint_task_key **tasks,
	  size_t *n, uint64_t *status, bool *more)
{
	struct stint_reply_head head;
	struct stint_list_rep page;
	struct stint_task_key *grown;
	uint8_t *req = NULL, *rep = NULL;
	size_t req_len, rep_len, i;
	int r;

	memset(&page, 0, sizeof(page));
	*more = false;
	if ((r = stint_enc_list_req_as(cursor, as, &req, &req_len)) != 0)
		goto out;
	if ((r = call(req, req_len, &rep, &rep_len)) != 0)
		goto out;
	if ((r = stint_dec_list_rep(rep, rep_len, &head, &page)) != 0)
		goto out;
	if ((*status = head.status) != STINT_OK)
		goto out;
	if (page.n_tasks > 0) {
		grown = realloc(*tasks, (*n + page.n_tasks) * sizeof(**tasks));
		if (grown == NULL) {
			r = STINT_WIRE_NOMEM;
			goto out;
		}
		*tasks = grown;
	}
	for (i = 0; i < page.n_tasks; i++) {
		if ((r = task_dup(&(*tasks)[*n], &page.tasks[i])) != 0)
			goto out;
		(*n)++;
	}
	/* A page that claims more but brings nothing would loop forever. */
	*more = page.more && page.n_tasks > 0;
out:
	stint_list_rep_clear(&page);
	free(req);
	free(rep);
	return r;
}

int
client_list(const char *as, struct stint_task_key **tasks, size_t *n,
	    uint64_t *status)
{
	char cursor[STINT_TASK_ID_MAX + 1] = "";
	bool more = true;
	int r = 0, pages;

	*tasks = NULL;
	*n = 0;
	*status = STINT_OK;
	for (pages = 0; more && pages < MAX_LIST_PAGES; pages++) {
		if ((r = list_page(as, cursor, tasks, n, status, &more)) != 0 ||
		    *status != STINT_OK)
			break;
		if (*n > 0)
			memcpy(cursor, (*tasks)[*n - 1].id, sizeof(cursor));
	}
	if (r != 0 || *status != STINT_OK) {
		client_tasks_free(*tasks, *n);
		*tasks = NULL;
		*n = 0;
	}
	return r;
}

int
client_sign(const struct stint_sign_req *sreq, uint64_t *status, uint8_t *sig,
	    size_t *sig_len)
{
	struct stint_reply_head head;
	struct stint_bytes s = {NULL, 0};
	uint8_t *req = NULL, *rep = NULL;
	size_t req_len, rep_len;
	int r;

	if ((r = stint_enc_sign_req(sreq, &req, &req_len)) != 0)
		goto out;
	if ((r = call(req, req_len, &rep, &rep_len)) != 0)
		goto out;
	if ((r = stint_dec_sign_rep(rep, rep_len, &head, &s)) != 0)
		goto out;
	if ((*status = head.status) != STINT_OK) {
		stint_debug("module", "SIGN refused: %s (%s)",
			    stint_status_str(head.status), head.error);
		if (head.status == STINT_E_NOT_LIVE ||
		    head.status == STINT_E_NOT_YOURS)
			client_explain_task(sreq->task, "");
		goto out;
	}
	if (s.len > *sig_len) {
		r = STINT_WIRE_RANGE;
		goto out;
	}
	memcpy(sig, s.ptr, s.len);
	*sig_len = s.len;
out:
	stint_bytes_clear(&s);
	free(req);
	free(rep);
	return r;
}

/* UTC "YYYY-MM-DDTHH:MM:SSZ". */
static void
utc_time(uint64_t t, char *buf, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, cap, "%llu", (unsigned long long)t);
}

static void
explain_reply(const char *id, const struct stint_msg *m, const char *mine)
{
	struct stint_task_info t;
	uint64_t status = STINT_E_INTERNAL;
	char when[32];

	(void)stint_msg_get_uint(m, STINT_K_STATUS, &status);
	if (status == STINT_E_NOT_FOUND) {
		stint_debug("module", "task %s is unknown to stintd", id);
		return;
	}
	if (status != STINT_OK || stint_get_task_info(m, &t) != 0 ||
	    t.state[0] == '\0') {
		stint_debug("module", "task %s: stintd gave no details", id);
		return;
	}
	if (mine[0] != '\0' && strcmp(t.agent, mine) != 0) {
		stint_debug("module",
			    "task %s belongs to agent '%s', not to this uid's "
			    "agent '%s'",
			    id, t.agent, mine);
		return;
	}
	if (strcmp(t.state, "ended") == 0 && t.has_ended) {
		utc_time(t.ended, when, sizeof(when));
		stint_debug("module",
			    "task %s ended at %s: its key is destroyed", id,
			    when);
	} else if (strcmp(t.state, "live") != 0 ||
		   (int64_t)t.not_after <= (int64_t)time(NULL)) {
		utc_time(t.not_after, when, sizeof(when));
		stint_debug("module", "task %s expired at %s", id, when);
	} else {
		stint_debug("module", "task %s of agent '%s' is live", id,
			    t.agent);
	}
}

void
client_explain_task(const char *id, const char *mine)
{
	struct stint_msg *req = NULL, *rep = NULL;
	uint8_t *out = NULL, *in = NULL;
	size_t out_len, in_len;

	struct stint_hello_rep me;

	if (!stint_debug_enabled("module"))
		return;
	if (mine == NULL || mine[0] == '\0') {
		if (client_hello(&me) != 0)
			me.agent[0] = '\0';
		mine = me.agent;
	}
	if ((req = stint_msg_new()) == NULL ||
	    stint_msg_put_uint(req, STINT_K_OP, STINT_OP_TASK_SHOW) != 0 ||
	    stint_enc_name_req(req, STINT_K_TASK, id) != 0 ||
	    stint_msg_serialize(req, &out, &out_len) != 0 ||
	    call(out, out_len, &in, &in_len) != 0 ||
	    stint_msg_parse(in, in_len, &rep) != 0)
		stint_debug("module", "task %s: cannot ask stintd about it",
			    id);
	else
		explain_reply(id, rep, mine);
	stint_msg_free(rep);
	stint_msg_free(req);
	free(out);
	free(in);
}
