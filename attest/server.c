/*
 * The two Unix sockets. Each connection gets a thread with a small stack;
 * a connection's identity is its SO_PEERCRED, read once at accept, and
 * every request on it must come from that same process: the kernel names
 * the sender of every read (SO_PASSCRED, sender.h), and a request sent by
 * another process (a descriptor passed on with SCM_RIGHTS, inherited, or
 * kept across setuid()) is refused, audited naming the real sender, and
 * the connection closed. A process that kept its agent.sock connection
 * across exec() is judged again on its new executable (exec_refused). Limits
 * keep one misbehaving uid from starving the others: frames over
 * STINT_FRAME_MAX are refused unread, a frame must arrive within
 * FRAME_TIMEOUT_MS once started, idle connections are closed after
 * IDLE_TIMEOUT_MS.
 *
 * Revocation has its own lane. Connections are counted in four lanes:
 * admin (admin.sock from root or stintd's uid: never capped, so `task end`
 * and the kill switch get through whatever agent.sock's peers do),
 * operators (admin.sock from a registered operator's uid, operator.h: they
 * share agent.sock's budget, at most half of it and the per-uid cap, so
 * they never eat into the descriptors kept for admins; any other uid's
 * admin.sock connection is refused and closed at accept, from an in-memory
 * set of operator uids, so strangers hold nothing), agents (peers that map to a
 * registered agent) and strangers (peers that map to none, who share at
 * most half of the agent connections, however many uids they use; the
 * connection's thread asks the store, so the accept loop never waits for
 * it). Every uid has its own cap too ([stintd] max_connections and
 * max_connections_per_uid). At start stintd raises RLIMIT_NOFILE (soft, up
 * to the hard limit) to what the caps need, and lowers the caps to what the
 * limit allows after the descriptors already open, ADMIN_RESERVE for admin
 * connections and FD_HEADROOM for files the daemon opens as it works:
 * agent connections are refused before descriptors run out. Should accept()
 * still fail with EMFILE or ENFILE, a spare descriptor is given up to take
 * the connection (an admin one is served, an agent one closed) and the agent
 * socket is left alone for BACKOFF_MS instead of spinning on it.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "attest/daemon.h"
#include "attest/operator.h"
#include "attest/ops.h"
#include "attest/refusals.h"
#include "attest/sd.h"
#include "attest/sender.h"
#include "common/frame.h"
#include "common/log.h"
#include "common/msg.h"

#define ADMIN_RESERVE    64  /* descriptors kept for admin connections */
#define FD_HEADROOM      128 /* the store, backend, evidence, logs ... */
#define MIN_AGENT_CONNS  8
#define BACKOFF_MS       100
#define IDLE_TIMEOUT_MS  (5 * 60 * 1000)
#define FRAME_TIMEOUT_MS 10000
#define WRITE_TIMEOUT_MS 10000
#define CONN_STACK       (256 * 1024)

/* A connection holds its socket and one pidfd of its connecting process,
 * taken at accept by stint_peer_from_socket and owned by the sender ref
 * (sender.h) for the connection's life: two. The sender's pidfd of each
 * read is closed at once, and a read whose pidfd cannot be installed is
 * checked without it. */
#define FDS_PER_CONN 2

enum lane { LANE_ADMIN, LANE_AGENT, LANE_STRANGER, LANE_OPERATOR };

struct conn {
	struct stintd *d;
	int fd;
	bool admin;
	enum lane lane;
	struct stint_peer peer;
	struct stint_sender_ref ref;    /* the connecting process */
	char agent[STINT_NAME_MAX + 1]; /* "" if none (or admin) */
	/* Every agent it matched at connect, sorted (agent is the first). */
	char (*agents)[STINT_NAME_MAX + 1];
	size_t n_agents;
	struct conn *next;
};

/* The caps, fixed at start by budget_fds(). */
static struct {
	size_t agents;    /* agent connections, strangers' included */
	size_t strangers; /* connections of peers that map to no agent */
	size_t per_uid;   /* agent connections of one uid */
	size_t operators; /* admin.sock connections of operators */
} caps;

static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conns_cv = PTHREAD_COND_INITIALIZER;
static struct conn *conns;
static size_t n_conns;    /* all, admin included */
static size_t n_lane[4];  /* per enum lane */
static int spare_fd = -1; /* given up when accept() runs out of fds */

static size_t
conns_of_uid(uid_t uid)
{
	struct conn *c;
	size_t n = 0;

	for (c = conns; c != NULL; c = c->next)
		if (c->lane != LANE_ADMIN && c->peer.uid == uid)
			n++;
	return n;
}

static size_t
open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	size_t n = 0;

	if (dir == NULL)
		return 64; /* a guess: no /proc */
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n > 0 ? n - 1 : 0; /* not the directory's own */
}

/*
 * Raises the soft RLIMIT_NOFILE (up to the hard limit) to what
 * max_connections agent connections need on top of what is open now,
 * ADMIN_RESERVE and FD_HEADROOM, then fits the caps into the limit there
 * is.
 */
static void
budget_fds(const struct stint_config *cfg)
{
	struct rlimit rl;
	size_t used = open_fds() + 1 /* spare_fd */, want, avail;
	size_t fixed = used + FD_HEADROOM + ADMIN_RESERVE;

	want = fixed + FDS_PER_CONN * cfg->max_connections;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_warn("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		rl.rlim_cur = rl.rlim_max = 1024;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		struct rlimit raised = rl;

		raised.rlim_cur =
			rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want
				? want
				: rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
			rl = raised;
		else
			log_warn("cannot raise RLIMIT_NOFILE to %zu: %s", want,
				 strerror(errno));
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		avail = cfg->max_connections;
	else
		avail = rl.rlim_cur > fixed
				? (rl.rlim_cur - fixed) / FDS_PER_CONN
				: 0;
	if (avail < MIN_AGENT_CONNS) {
		log_warn("open-file limit %llu leaves no room for agent "
			 "connections: raise LimitNOFILE (want %zu)",
			 (unsigned long long)rl.rlim_cur, want);
		avail = MIN_AGENT_CONNS;
	} else if (avail < cfg->max_connections) {
		log_warn("open-file limit %llu allows %zu agent connections, "
			 "not max_connections = %lu: raise LimitNOFILE to %zu",
			 (unsigned long long)rl.rlim_cur, avail,
			 (unsigned long)cfg->max_connections, want);
	}
	caps.agents = avail;
	caps.strangers = avail / 2;
	caps.operators = avail / 2 > 0 ? avail / 2 : 1;
	/* One uid may hold at most a quarter of a lowered cap. */
	caps.per_uid = cfg->max_connections_per_uid;
	if (avail < cfg->max_connections && caps.per_uid > avail / 4 + 1)
		caps.per_uid = avail / 4 + 1;
	if ((spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		log_warn("cannot open /dev/null: %s", strerror(errno));
	log_info("connections: at most %zu on agent.sock (%zu from peers that "
		 "map to no agent, %zu per uid), admin.sock uncapped for "
		 "root and stintd's user, %zu for operators; open-file limit "
		 "%llu",
		 caps.agents, caps.strangers, caps.per_uid, caps.operators,
		 (unsigned long long)rl.rlim_cur);
}

static void
conn_unlink(struct conn *c)
{
	struct conn **pp;

	pthread_mutex_lock(&conns_lock);
	for (pp = &conns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	n_conns--;
	n_lane[c->lane]--;
	pthread_cond_broadcast(&conns_cv);
	pthread_mutex_unlock(&conns_lock);
}

static void
send_error(int fd, int status, const char *text)
{
	struct stint_reply rep;

	if (stintd_error_reply(&rep, status, "%s", text) == 0) {
		(void)stint_frame_write(fd, rep.buf, rep.len, WRITE_TIMEOUT_MS);
		free(rep.buf);
	}
}

static int
dispatch(struct conn *c, const uint8_t *body, size_t len,
	 struct stint_reply *rep)
{
	struct stint_msg *req = NULL;
	int r;

	if (stint_msg_parse(body, len, &req) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "request is not one valid CBOR map "
					  "with integer keys");
	r = stintd_dispatch(c->d,
			    c->admin ? STINTD_SOCK_ADMIN : STINTD_SOCK_AGENT,
			    &c->peer, req, rep);
	stint_msg_free(req);
	return r;
}

/* Refusals an outsider can provoke at will are logged at most
 * REFUSAL_BURST times per REFUSAL_INTERVAL seconds, each kind. */
#define REFUSAL_INTERVAL 10
#define REFUSAL_BURST    5
static struct stint_ratelimit admin_refusals =
	STINT_RATELIMIT_INIT(REFUSAL_INTERVAL, REFUSAL_BURST);
static struct stint_ratelimit flood_refusals =
	STINT_RATELIMIT_INIT(REFUSAL_INTERVAL, REFUSAL_BURST);

static const char *
dropped_note(unsigned long dropped, char note[64])
{
	if (dropped == 0)
		return "";
	snprintf(note, 64, " (%lu more like it not logged)", dropped);
	return note;
}

/* Whether one more connection of c's uid fits on agent.sock. Lock
 * held; c is not counted yet. */
static const char *
agent_caps_full(const struct conn *c)
{
	if (c->lane == LANE_OPERATOR && n_lane[LANE_OPERATOR] >= caps.operators)
		return "admin.sock is at its connection limit for operators";
	if (n_lane[LANE_AGENT] + n_lane[LANE_STRANGER] +
		    n_lane[LANE_OPERATOR] >=
	    caps.agents)
		return c->lane == LANE_OPERATOR
			       ? "no connection left for operators (agent.sock "
				 "is at its limit)"
			       : "agent.sock is at its connection limit";
	if (conns_of_uid(c->peer.uid) >= caps.per_uid)
		return "too many connections from this uid";
	return NULL;
}

static void
refuse_conn(int fd, struct conn *c, int status, const char *why)
{
	send_error(fd, status, why);
	close(fd);
	stint_peer_release(&c->peer);
	free(c);
}

static void
log_conn_refused(const struct conn *c, const char *why)
{
	unsigned long dropped;
	char note[64];

	if (stint_ratelimit(&flood_refusals, &dropped))
		log_warn("too many connections (uid %ld): refusing pid %ld: "
			 "%s%s",
			 (long)c->peer.uid, (long)c->peer.pid, why,
			 dropped_note(dropped, note));
}

/* Records the agents the peer matches (c->agent the lowest); 0 when it
 * matches one at least. */
static int
conn_agents(struct conn *c)
{
	struct stint_agent *all = NULL;
	size_t n = 0, i;

	if (stint_store_agents_for_peer(c->d->store, &c->peer, &all, &n) !=
	    STINT_STORE_OK)
		return -1;
	c->agents = calloc(n, sizeof(*c->agents));
	for (i = 0; c->agents != NULL && i < n; i++)
		memcpy(c->agents[i], all[i].name, sizeof(c->agents[i]));
	c->n_agents = c->agents != NULL ? n : 0;
	memcpy(c->agent, all[0].name, sizeof(c->agent));
	free(all);
	return 0;
}

static bool
conn_matched(const struct conn *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n_agents; i++)
		if (strcmp(c->agents[i], name) == 0)
			return true;
	return strcmp(c->agent, name) == 0;
}

/*
 * An agent.sock connection is counted in the agent lane at accept; its
 * thread then asks the store whether the peer maps to an agent (off the
 * accept loop, which must never wait for the store) and moves a stranger
 * to the strangers' lane, or refuses it when that lane is full.
 */
static bool
classify(struct conn *c)
{
	const char *why = "too many connections from peers that map to no "
			  "agent";

	/* The executable's hash, off the accept loop (ident). */
	stint_peer_finish(&c->peer);
	if (c->admin)
		return true;
	if (conn_agents(c) == 0)
		return true;
	pthread_mutex_lock(&conns_lock);
	if (n_lane[LANE_STRANGER] < caps.strangers) {
		n_lane[LANE_AGENT]--;
		n_lane[LANE_STRANGER]++;
		c->lane = LANE_STRANGER;
		why = NULL;
	}
	pthread_mutex_unlock(&conns_lock);
	if (why == NULL)
		return true;
	log_conn_refused(c, why);
	send_error(c->fd, STINT_E_LIMIT, why);
	return false;
}

static struct stint_ratelimit sender_refusals =
	STINT_RATELIMIT_INIT(REFUSAL_INTERVAL, REFUSAL_BURST);

/*
 * A request on c that its connecting process did not send: refused,
 * audited with the real sender as the peer (rate-bounded like refused
 * SIGNs: refusals.h), and the connection closed by the caller, since
 * another process holds it.
 */
static void
refuse_sender(struct conn *c, struct stint_sender *who)
{
	struct stint_peer *real = malloc(sizeof(*real));
	char detail[PATH_MAX + 96], text[256];
	unsigned long dropped;
	char note[64];
	struct stint_audit_event ev = {
		.event = "request-refused",
		.agent = c->agent[0] ? c->agent : NULL,
		.decision = "deny",
		.reason = who->why,
		.detail = detail,
	};

	snprintf(detail, sizeof(detail),
		 "%s connection opened by pid %ld uid %ld gid %ld exe %s",
		 c->admin ? "admin.sock" : "agent.sock", (long)c->peer.pid,
		 (long)c->peer.uid, (long)c->peer.gid, c->peer.exe);
	if (real != NULL) {
		stint_sender_peer(who, real);
		ev.peer = real;
		if (stint_refusals_audit(c->d->audit, &ev, stintd_now()) != 0) {
			stintd_count(c->d, STINT_C_AUDIT_FAILURES);
			log_err("audit log write failed while refusing a "
				"request");
		}
		if (stint_ratelimit(&sender_refusals, &dropped))
			log_warn("refused a request on %s's connection of pid "
				 "%ld uid %ld: sent by pid %ld uid %ld (%s): "
				 "%s%s",
				 c->agent[0] ? c->agent : "a peer",
				 (long)c->peer.pid, (long)c->peer.uid,
				 (long)real->pid, (long)real->uid, real->exe,
				 who->why, dropped_note(dropped, note));
		free(real);
	}
	if (who->pidfd >= 0)
		close(who->pidfd);
	snprintf(text, sizeof(text),
		 "permission denied: %s (pid %ld uid %ld; the connection "
		 "belongs to pid %ld uid %ld): connect afresh from this "
		 "process",
		 who->why, (long)who->pid, (long)who->uid, (long)c->peer.pid,
		 (long)c->peer.uid);
	send_error(c->fd, STINT_E_DENIED, text);
}

static const char WHY_EXEC_UNMATCHED[] =
	"request sent after the connecting process exec'd a program that "
	"does not match the selectors of the agent it connected as";
static const char WHY_EXEC_OTHER[] =
	"request sent after the connecting process exec'd a program that "
	"acts as another agent than the one it connected as";
static const char WHY_EXEC_STORE[] =
	"request sent after the connecting process exec'd another program, "
	"and the task store is unavailable to judge it";

/* Audits and answers an exec refusal (exec_refused). */
static void
refuse_exec(struct conn *c, const char *why, const char *was)
{
	struct stint_agent agent;
	char detail[2 * PATH_MAX + 96], text[512];
	unsigned long dropped;
	char note[64];
	struct stint_audit_event ev = {
		.event = "request-refused",
		.agent = c->agent[0] ? c->agent : NULL,
		.peer = &c->peer,
		.decision = "deny",
		.reason = why,
		.detail = detail,
	};

	if (c->agent[0] != '\0' &&
	    stint_store_agent_get(c->d->store, c->agent, &agent) ==
		    STINT_STORE_OK)
		ev.matched = stint_agent_matched(&agent, &c->peer);
	snprintf(detail, sizeof(detail),
		 "agent.sock connection opened by pid %ld running %s; it now "
		 "runs %s",
		 (long)c->peer.pid, was, c->peer.exe);
	if (stint_refusals_audit(c->d->audit, &ev, stintd_now()) != 0) {
		stintd_count(c->d, STINT_C_AUDIT_FAILURES);
		log_err("audit log write failed while refusing a request");
	}
	if (stint_ratelimit(&sender_refusals, &dropped))
		log_warn("refused a request of pid %ld uid %ld (%s): %s%s",
			 (long)c->peer.pid, (long)c->peer.uid, detail, why,
			 dropped_note(dropped, note));
	snprintf(text, sizeof(text),
		 "permission denied: %s (pid %ld now runs %.200s): connect "
		 "afresh from this program",
		 why, (long)c->peer.pid, c->peer.exe);
	send_error(c->fd, STINT_E_DENIED, text);
}

/*
 * Per request on agent.sock: a process that kept its connection across
 * exec() (same pid and uid, so the sender check passes) is judged again on
 * the program it runs now. One stat() when it did not exec; otherwise the
 * new executable's facts are read (its hash from the cache) and it must
 * still act as the agent it connected as (or as none, if it connected as
 * none). True when refused: the caller closes the connection.
 */
/* The agent a request names (STINT_K_AS_AGENT), "" when none or
 * unreadable (the handler then refuses it as malformed). */
static void
request_as_agent(const uint8_t *body, size_t len, char as[STINT_NAME_MAX + 1])
{
	struct stint_msg *m = NULL;

	as[0] = '\0';
	if (stint_msg_parse(body, len, &m) == 0)
		(void)stint_dec_as_agent(m, as);
	stint_msg_free(m);
}

static bool
exec_refused(struct conn *c, const uint8_t *body, size_t len)
{
	struct stint_agent now;
	char was[PATH_MAX], as[STINT_NAME_MAX + 1];
	const char *why = NULL;
	int r;

	if (c->admin || stint_peer_exec_changed(&c->peer, c->ref.pidfd, was,
						sizeof(was)) == 0)
		return false;
	/* A request naming an agent is judged against that one: the new
	 * program must match it, and the connection must have matched it. */
	request_as_agent(body, len, as);
	r = stint_store_agent_as(c->d->store, &c->peer, as, &now);
	if (r == STINT_STORE_ERROR)
		why = WHY_EXEC_STORE;
	else if (as[0] != '\0' && !conn_matched(c, as))
		why = WHY_EXEC_OTHER;
	else if (r == STINT_STORE_OK && as[0] == '\0' &&
		 strcmp(now.name, c->agent) != 0)
		why = WHY_EXEC_OTHER;
	else if (r != STINT_STORE_OK && (c->agent[0] != '\0' || as[0]))
		why = WHY_EXEC_UNMATCHED;
	if (why == NULL)
		return false;
	refuse_exec(c, why, was);
	return true;
}

/* What the backend left for this thread after a reply (a signature's
 * next C_SignInit): done while the client reads the reply. */
static void
after_reply(struct stintd *d)
{
	if (d->backend->ops->after_reply != NULL)
		d->backend->ops->after_reply(d->backend);
}

static void *
conn_main(void *arg)
{
	struct conn *c = arg;
	struct stint_sender who;
	struct stint_reply rep;
	uint8_t *body;
	size_t len;
	int r;

	for (bool ok = classify(c); ok;) {
		/* The next request is tried before any poll(). */
		body = NULL;
		r = stint_sender_frame_wait(c->fd, STINT_FRAME_MAX,
					    IDLE_TIMEOUT_MS, FRAME_TIMEOUT_MS,
					    &c->ref, &body, &len, &who);
		if (r == STINT_SENDER_MISMATCH) {
			refuse_sender(c, &who);
			break;
		}
		if (r == STINT_WIRE_TOO_LARGE) {
			stint_debug("server", "pid %ld: frame over limit",
				    (long)c->peer.pid);
			send_error(c->fd, STINT_E_TOO_LARGE,
				   "frame larger than 65536 bytes");
			break;
		}
		if (r != 0)
			break; /* closed, timed out, or torn: nothing to say */
		if (exec_refused(c, body, len)) {
			free(body);
			break;
		}
		r = dispatch(c, body, len, &rep);
		free(body);
		if (r != 0)
			break;
		r = stint_frame_write(c->fd, rep.buf, rep.len,
				      WRITE_TIMEOUT_MS);
		free(rep.buf);
		after_reply(c->d);
		if (r != 0)
			break;
	}
	after_reply(c->d); /* nothing left for this thread */
	conn_unlink(c);
	stint_sender_ref_close(&c->ref);
	close(c->fd);
	stint_peer_release(&c->peer);
	free(c->agents);
	free(c);
	return NULL;
}

/* The role of an admin.sock peer by SO_PEERCRED alone (the in-memory
 * operator set: no store, no /proc). NONE also when the kernel says
 * nothing. */
static enum stintd_role
admin_role(const struct stintd *d, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
		return STINTD_ROLE_NONE;
	return stintd_uid_role(d, cr.uid);
}

/* Refuses an admin.sock connection at accept, logged at a bounded rate
 * (any local uid can provoke it). */
static void
refuse_admin(int fd, enum stintd_role role)
{
	struct ucred cr = {.pid = -1, .uid = (uid_t)-1};
	socklen_t len = sizeof(cr);
	unsigned long dropped;
	char note[64];

	(void)getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len);
	if (stint_ratelimit(&admin_refusals, &dropped))
		log_warn("refused admin connection from uid %ld pid %ld%s%s",
			 (long)cr.uid, (long)cr.pid,
			 role == STINTD_ROLE_NONE ? ""
						  : " (out of descriptors)",
			 dropped_note(dropped, note));
	send_error(fd,
		   role == STINTD_ROLE_NONE ? STINT_E_DENIED : STINT_E_LIMIT,
		   role == STINTD_ROLE_NONE
			   ? "permission denied: only root, stintd's user and "
			     "registered operators may use the admin socket"
			   : "stintd is out of file descriptors");
	close(fd);
}

/*
 * accept() with no descriptor left: the spare one is given up so that the
 * connection can be taken off the queue (else poll() reports it again at
 * once, forever). Returns the connection's fd or -1; the caller must call
 * spare_restore() when done.
 */
static int
accept_with_spare(int lfd)
{
	int fd;

	if (spare_fd < 0)
		return -1;
	close(spare_fd);
	spare_fd = -1;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	return fd;
}

static void
spare_restore(void)
{
	if (spare_fd < 0)
		spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Returns -1 when the socket should be left alone for a while (no
 * descriptors), else 0. */
static int
accept_one(struct stintd *d, int lfd, bool admin)
{
	pthread_attr_t attr;
	pthread_t tid;
	struct conn *c;
	unsigned long dropped;
	enum stintd_role role;
	const char *full;
	char note[64];
	int fd, backoff = 0;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
		if (stint_ratelimit(&flood_refusals, &dropped))
			log_warn("out of file descriptors accepting on %s%s",
				 admin ? "admin.sock" : "agent.sock",
				 dropped_note(dropped, note));
		fd = accept_with_spare(lfd);
		/* An agent connection would need the spare back: closed. */
		if (fd >= 0 && !admin) {
			close(fd);
			fd = -1;
		}
		backoff = -1;
	}
	if (fd < 0) {
		spare_restore();
		return backoff;
	}
	/* admin.sock: a stranger costs one getsockopt, a refusal and a
	 * close, before any /proc read or allocation; with no descriptor
	 * left (the spare taken) only an admin is served. */
	role = admin ? admin_role(d, fd) : STINTD_ROLE_NONE;
	if (admin && (role == STINTD_ROLE_NONE ||
		      (backoff != 0 && role != STINTD_ROLE_ADMIN))) {
		refuse_admin(fd, role);
		spare_restore();
		return backoff;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		spare_restore();
		return -1;
	}
	c->d = d;
	c->fd = fd;
	c->admin = admin;
	if (stint_peer_from_socket(fd, &c->peer) != 0) {
		close(fd);
		free(c);
		spare_restore();
		return backoff;
	}
	c->lane = !admin                         ? LANE_AGENT
		  : role == STINTD_ROLE_OPERATOR ? LANE_OPERATOR
						 : LANE_ADMIN;
	pthread_mutex_lock(&conns_lock);
	if (c->lane != LANE_ADMIN && (full = agent_caps_full(c)) != NULL) {
		pthread_mutex_unlock(&conns_lock);
		log_conn_refused(c, full);
		refuse_conn(fd, c, STINT_E_LIMIT, full);
		spare_restore();
		return backoff;
	}
	c->next = conns;
	conns = c;
	n_conns++;
	n_lane[c->lane]++;
	pthread_mutex_unlock(&conns_lock);

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, CONN_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (stint_sender_ref_init(fd, &c->peer, &c->ref) != 0 ||
	    pthread_create(&tid, &attr, conn_main, c) != 0) {
		conn_unlink(c);
		stint_sender_ref_close(&c->ref);
		close(fd);
		stint_peer_release(&c->peer);
		free(c);
		backoff = -1;
	}
	pthread_attr_destroy(&attr);
	spare_restore();
	return backoff;
}

/* Takes the socket systemd passed for path (socket activation: its mode
 * and owner are the socket unit's), else binds it itself. Refuses to take
 * over a socket another stintd is still serving. */
static int
listen_unix(const char *path, mode_t mode, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if ((fd = stint_sd_listen_fd(path)) >= 0) {
		log_info("%s: socket passed by systemd", path);
		return fd;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		goto fail;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		snprintf(err, errlen,
			 "%s is in use: is another stintd running?", path);
		return -1;
	}
	(void)unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    chmod(path, mode) != 0 || listen(fd, 128) != 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static void
close_all_conns(void)
{
	struct timespec until;
	struct conn *c;

	pthread_mutex_lock(&conns_lock);
	for (c = conns; c != NULL; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	while (n_conns > 0 &&
	       pthread_cond_timedwait(&conns_cv, &conns_lock, &until) == 0)
		;
	pthread_mutex_unlock(&conns_lock);
}

int
stintd_serve(struct stintd *d, int wake_fd, char *err, size_t errlen)
{
	char agent_path[PATH_MAX], admin_path[PATH_MAX];
	struct pollfd p[3];
	int afd = -1, mfd = -1, r = -1, afd_paused = 0;

	if (snprintf(agent_path, sizeof(agent_path), "%s/agent.sock",
		     d->cfg.runtime_dir) >= (int)sizeof(agent_path) ||
	    snprintf(admin_path, sizeof(admin_path), "%s/admin.sock",
		     d->cfg.runtime_dir) >= (int)sizeof(admin_path)) {
		snprintf(err, errlen, "runtime_dir too long");
		return -1;
	}
	/* Any local process may reach both sockets: identity comes from
	 * SO_PEERCRED. admin.sock takes root, stintd's uid and operators
	 * (checked at accept, and per op by ops.c); anyone else is refused
	 * and closed at once. */
	if ((afd = listen_unix(agent_path, 0666, err, errlen)) < 0)
		goto out;
	if ((mfd = listen_unix(admin_path, 0666, err, errlen)) < 0)
		goto out;
	/* Every request names its sender (sender.h). */
	if (stint_sender_listen(afd) != 0 || stint_sender_listen(mfd) != 0) {
		snprintf(err, errlen, "SO_PASSCRED: %s", strerror(errno));
		goto out;
	}
	log_info("listening on %s and %s", agent_path, admin_path);
	(void)stint_sd_notify("READY=1");

	budget_fds(&d->cfg);
	stint_refusals_init(d->cfg.audit.refusal_interval);
	p[0] = (struct pollfd){.fd = afd, .events = POLLIN};
	p[1] = (struct pollfd){.fd = mfd, .events = POLLIN};
	p[2] = (struct pollfd){.fd = wake_fd, .events = POLLIN};
	for (;;) {
		spare_restore();
		/* While backing off, agent.sock is not polled (fd < 0). */
		p[0].fd = afd_paused > 0 ? -1 : afd;
		/* Refusal aggregates are written when their interval ends. */
		stint_refusals_flush(d->audit, stintd_now(), false);
		if (poll(p, 3, afd_paused > 0 ? BACKOFF_MS : 1000) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "poll: %s", strerror(errno));
			goto out;
		}
		if (p[2].revents)
			break;
		if (p[1].revents & POLLIN)
			(void)accept_one(d, mfd, true);
		if (afd_paused > 0) {
			afd_paused = 0; /* one BACKOFF_MS pause, then retry */
			continue;
		}
		if ((p[0].revents & POLLIN) && accept_one(d, afd, false) != 0)
			afd_paused = 1;
	}
	r = 0;
out:
	if (afd >= 0) {
		close(afd);
		if (!stint_sd_inherited(afd))
			unlink(agent_path);
	}
	if (mfd >= 0) {
		close(mfd);
		if (!stint_sd_inherited(mfd))
			unlink(admin_path);
	}
	close_all_conns();
	stint_refusals_flush(d->audit, stintd_now(), true);
	if (spare_fd >= 0) {
		close(spare_fd);
		spare_fd = -1;
	}
	return r;
}
