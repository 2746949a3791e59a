/*
 * Who sent each request: the kernel vouches for the sender of every read.
 *
 * A connection's identity (SO_PEERCRED, attest/peer.c) is that of the
 * process that connected. The descriptor can outlive that fact: it can be
 * handed to another process (SCM_RIGHTS), inherited across fork(), or kept
 * across setuid() and exec(). So stintd sets SO_PASSCRED (and SO_PASSPIDFD
 * where the kernel has it) on its sockets and reads requests with
 * recvmsg(): every read that carries request bytes comes with the
 * SCM_CREDENTIALS (and SCM_PIDFD) of the process that wrote them, and a
 * Unix stream read never returns bytes of two senders at once. A frame is
 * accepted only if every one of its reads came from the connecting process:
 * same pid, uid and gid, and the same process, not another that got its
 * pid after it exited (checked with a pidfd of the connecting process taken
 * at accept). No /proc file is read when the sender matches.
 */
#ifndef STINT_ATTEST_SENDER_H
#define STINT_ATTEST_SENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "attest/peer.h"

/* stint_sender_frame_read's return when a read came from another process
 * (beyond the STINT_WIRE_* codes, which are small negative numbers). */
#define STINT_SENDER_MISMATCH (-100)

/* Bytes read ahead per connection: a usual request (prefix and body)
 * comes in one recvmsg(). */
#define STINT_SENDER_BUF 1024

/* The connecting process, as taken at accept, and the connection's
 * read-ahead (bytes already checked). */
struct stint_sender_ref {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int pidfd;          /* the connecting process, -1 if none */
	uint64_t pidfs_ino; /* its pidfs inode (Linux >= 6.9), 0 if none */
	bool unproven;      /* a read was vouched for by pid only */
	bool gone;          /* the process had exited by accept: refuse all */
	size_t off, len;    /* read-ahead: buf[off .. off + len] */
	uint8_t buf[STINT_SENDER_BUF];
};

/* Who sent the bytes that did not match, as the kernel reported it. */
struct stint_sender {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int pidfd;       /* from SCM_PIDFD, -1 if none; the caller closes it */
	const char *why; /* a constant: the audit's reason */
};

/* Asks the kernel to attach the sender's credentials (and pidfd) to every
 * message on sockets accepted from listening socket fd. */
int stint_sender_listen(int fd);
/* Sets the same options on an accepted socket and takes over the pidfd
 * of the connecting process that stint_peer_from_socket took (peer keeps
 * it as a borrowed copy, valid until stint_sender_ref_close). 0 on
 * success; on failure too, ref owns the pidfd (close it). */
int stint_sender_ref_init(int fd, struct stint_peer *peer,
			  struct stint_sender_ref *ref);
void stint_sender_ref_close(struct stint_sender_ref *ref);
/* Reads one frame as stint_frame_read() does (common/frame.h), checking
 * the sender of every read against ref; tries the read before polling (the
 * caller waits for the first byte). On STINT_SENDER_MISMATCH *who says
 * who sent what (its pidfd, when set, is the caller's to close); no body is
 * returned. */
int stint_sender_frame_read(int fd, size_t max, int timeout_ms,
			    struct stint_sender_ref *ref, uint8_t **body,
			    size_t *len, struct stint_sender *who);
/* The same for a caller that has not waited: with nothing read ahead, the
 * frame's first bytes are read at once if they are there, else awaited
 * with poll() for at most idle_ms (then STINT_WIRE_TIMEOUT); timeout_ms
 * counts from the first bytes. */
int stint_sender_frame_wait(int fd, size_t max, int idle_ms, int timeout_ms,
			    struct stint_sender_ref *ref, uint8_t **body,
			    size_t *len, struct stint_sender *who);
/* Whether read-ahead bytes wait (the next frame may need no poll). */
bool stint_sender_buffered(const struct stint_sender_ref *ref);
/* The audit facts of a mismatching sender: pid, uid, gid, and its
 * executable read through /proc, "?" unless who->pidfd confirms the
 * process was still the sender after the read. */
void stint_sender_peer(const struct stint_sender *who, struct stint_peer *out);

#endif
