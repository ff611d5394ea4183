/*
 * relay.c - moves a connection's bytes (see conn.h).
 *
 * Each side's socket records, per step, what the operation that stopped
 * it wants (readable, writable); that becomes its epoll interest.  TLS may
 * want writable for a read and readable for a write, so interest is never
 * derived from the direction of the copy.
 *
 * Fairness: relaying gives a connection RELAY_ROUNDS turns of its two
 * buffers per wakeup.  One that could still move bytes then goes to the
 * back of a run queue instead of looping on (a client that streams faster
 * than we decrypt never makes a socket "would block"); the loop polls
 * without waiting while the queue holds anyone and runs each queued
 * connection once per pass after the events.
 */
#include "conn.h"
#include "metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Turns of both buffers per wakeup: at most 4 x 16 KiB each way before
 * the others get theirs. */
#define RELAY_ROUNDS 4

/* ---- buffers ------------------------------------------------------------------ */

/* A relay buffer exists only while bytes wait in it: an idle connection
 * holds none (two 16 KiB buffers each would dominate its memory).  Freed
 * buffers wait in a small stack for the next connection that needs one,
 * so a busy loop does not go to malloc at every read. */
#define SPARE_MAX 64
static unsigned char *spare[SPARE_MAX];
static size_t n_spare;

int pxy_buf_take(struct buf *b)
{
	if (b->d != NULL)
		return 0;
	b->d = n_spare > 0 ? spare[--n_spare] : malloc(BUF_SIZE);
	b->off = b->len = b->pend = 0;
	return b->d != NULL ? 0 : -1;
}

void pxy_buf_release(struct buf *b)
{
	if (b->d == NULL)
		return;
	if (n_spare < SPARE_MAX)
		spare[n_spare++] = b->d;
	else
		free(b->d);
	b->d = NULL;
	b->off = b->len = b->pend = 0;
}

void pxy_buf_trim(void)
{
	while (n_spare > 0)
		free(spare[--n_spare]);
}

/* ---- epoll interest --------------------------------------------------------- */

int pxy_side_register(struct side *s, unsigned events)
{
	struct epoll_event ev = {.events = events, .data.ptr = s};

	if (epoll_ctl(pxy_ep, EPOLL_CTL_ADD, s->fd, &ev) != 0)
		return -1;
	s->events = s->want = events;
	s->registered = 1;
	return 0;
}

void pxy_side_update(struct side *s)
{
	struct epoll_event ev = {.events = s->want, .data.ptr = s};

	if (!s->registered || s->fd < 0 || s->events == s->want)
		return;
	if (epoll_ctl(pxy_ep, EPOLL_CTL_MOD, s->fd, &ev) == 0)
		s->events = s->want;
}

/* A socket we are done with both ways: out of the epoll set, so a hang-up
 * on it does not wake the loop while the other side still drains. */
void pxy_side_forget(struct side *s)
{
	if (s->registered && s->fd >= 0)
		epoll_ctl(pxy_ep, EPOLL_CTL_DEL, s->fd, NULL);
	s->registered = 0;
}

void pxy_side_close(struct side *s)
{
	mtls_conn_free(s->tls);
	s->tls = NULL;
	if (s->fd >= 0)
		close(s->fd); /* also leaves the epoll set */
	s->fd = -1;
	s->registered = 0;
}

/* ---- run queue ------------------------------------------------------------------ */

static struct conn *rq_head, *rq_tail; /* FIFO, see the top of the file */
static size_t rq_len;

int pxy_runq_pending(void)
{
	return rq_head != NULL;
}

static void runq_add(struct conn *c)
{
	if (c->queued)
		return;
	c->queued = 1;
	c->rq_next = NULL;
	c->rq_prev = rq_tail;
	if (rq_tail != NULL)
		rq_tail->rq_next = c;
	else
		rq_head = c;
	rq_tail = c;
	rq_len++;
}

void pxy_runq_del(struct conn *c)
{
	if (!c->queued)
		return;
	if (c->rq_prev != NULL)
		c->rq_prev->rq_next = c->rq_next;
	else
		rq_head = c->rq_next;
	if (c->rq_next != NULL)
		c->rq_next->rq_prev = c->rq_prev;
	else
		rq_tail = c->rq_prev;
	c->rq_prev = c->rq_next = NULL;
	c->queued = 0;
	rq_len--;
}
/* ---- I/O on one side, TLS or not ------------------------------------------------ */

/* > 0 bytes, 0 end of stream, MTLS_WANT_*, or -errno / MTLS_ERR_*. */
static ssize_t side_read(struct side *s, void *buf, size_t len)
{
	ssize_t n;

	if (s->tls != NULL) {
		n = mtls_read(s->tls, buf, len);
		/* A peer that just closes the socket has still ended its
		 * stream; what it sent was relayed already. */
		if (n == 0 || n == MTLS_ERR_CLOSED)
			s->eof_how = n == 0 ? "close_notify" : "eof";
		return n == MTLS_ERR_CLOSED ? 0 : n;
	}
	do
		n = recv(s->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		s->eof_how = "eof";
	if (n >= 0)
		return n;
	return errno == EAGAIN || errno == EWOULDBLOCK ? MTLS_WANT_READ
	                                               : -errno;
}

static ssize_t side_write(struct side *s, const void *buf, size_t len)
{
	ssize_t n;

	if (s->tls != NULL)
		return mtls_write(s->tls, buf, len);
	do
		n = send(s->fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	return errno == EAGAIN || errno == EWOULDBLOCK ? MTLS_WANT_WRITE
	                                               : -errno;
}

/* Ends our write direction: close_notify for TLS, then FIN. */
static int side_shutdown(struct side *s)
{
	if (s->tls != NULL) {
		int rc = mtls_close(s->tls);
		if (rc != 0)
			return rc;
	}
	shutdown(s->fd, SHUT_WR); /* ENOTCONN after a reset: nothing to do */
	return 0;
}

void pxy_side_want(struct side *s, ssize_t rc)
{
	s->want |= rc == MTLS_WANT_READ ? EPOLLIN : EPOLLOUT;
}

/* Moves what it can from `from` to `to` through b.  1 progress, 0 none,
 * -1 the connection failed (and is ended). */
/* Of n bytes about to be counted in *count, those that are the peers'
 * payload (a PROXY v2 header the proxy wrote is not). */
static unsigned long long payload(const struct conn *c,
                                  const unsigned long long *count,
                                  unsigned long long n)
{
	unsigned long long skip;

	if (count != &c->to_up || *count >= c->pp_len)
		return n;
	skip = c->pp_len - *count;
	return n > skip ? n - skip : 0;
}

static int pump(struct conn *c, struct side *from, struct side *to,
                struct buf *b, unsigned long long *count)
{
	int progress = 0;
	ssize_t n;

	if (pxy_buf_take(b) != 0) {
		pxy_conn_abort(c, "out of memory for a relay buffer");
		return -1;
	}
	/* Reads go to the free end of the buffer; it starts over once the
	 * writer has drained it.  No compaction: moving the unwritten rest to
	 * the front cost a 12 KiB memmove per 4 KiB TLS record written (the
	 * tuned build's records), 42 % of the tuned proxy's instructions per
	 * MiB relayed once AES-GCM was fast (bench/levers.md, "7. bulk"). */
	if (b->off == b->len)
		b->off = b->len = 0;
	if (!from->eof && b->len < BUF_SIZE) {
		n = side_read(from, b->d + b->len, BUF_SIZE - b->len);
		if (n > 0) {
			b->len += (size_t)n;
			progress = 1;
		} else if (n == 0) {
			from->eof = 1;
			pxy_conn_note_end(c, from->who, from->eof_how);
			progress = 1;
		} else if (pxy_is_want(n)) {
			pxy_side_want(from, n);
		} else {
			pxy_side_fail(c, from, n, "read");
			return -1;
		}
	}
	if (b->off < b->len) {
		size_t len = b->pend ? b->pend : b->len - b->off;

		n = side_write(to, b->d + b->off, len);
		if (n > 0) {
			b->off += (size_t)n;
			b->pend = 0;
			pxy_metrics_bytes(count == &c->to_client,
			                  payload(c, count, (unsigned long long)n));
			*count += (unsigned long long)n;
			progress = 1;
		} else if (pxy_is_want(n)) {
			b->pend = to->tls ? len : 0; /* "call again the same way" */
			pxy_side_want(to, n);
		} else {
			pxy_side_fail(c, to, n, "write");
			return -1;
		}
	}
	if (from->eof && b->off == b->len && !to->shut) {
		n = side_shutdown(to);
		if (n == 0) {
			to->shut = 1;
			progress = 1;
		} else if (pxy_is_want(n)) {
			pxy_side_want(to, n);
		} else {
			to->shut = 1; /* the peer is gone: nothing left to tell */
		}
	}
	if (b->off == b->len)
		pxy_buf_release(b); /* nothing in flight: give it back */
	return progress;
}

void pxy_relay(struct conn *c)
{
	int a, b, rounds = 0;

	do {
		c->cl.want = c->up.want = 0;
		if ((a = pump(c, &c->cl, &c->up, &c->c2u, &c->to_up)) < 0)
			return;
		if ((b = pump(c, &c->up, &c->cl, &c->u2c, &c->to_client)) < 0)
			return;
		if (a || b)
			c->last_io = pxy_now();
	} while ((a || b) && ++rounds < RELAY_ROUNDS);
	if (a || b) {
		/* Its share is used up, not its work: back of the queue.  The
		 * epoll interest stays as registered (what a round that
		 * stopped early collected is not the whole story). */
		c->cl.want = c->cl.events;
		c->up.want = c->up.events;
		runq_add(c);
		return;
	}
	if (c->cl.eof && c->cl.shut && c->up.eof && c->up.shut) {
		pxy_conn_end(c);
		return;
	}
	if (c->cl.eof && c->cl.shut)
		pxy_side_forget(&c->cl);
	if (c->up.eof && c->up.shut)
		pxy_side_forget(&c->up);
}

/* One turn for each connection queued before this pass, in order; those
 * that queue again wait for the next pass. */
void pxy_runq_pass(void)
{
	size_t n = rq_len;

	while (n-- > 0 && rq_head != NULL) {
		struct conn *c = rq_head;

		pxy_runq_del(c);
		pxy_relay(c);
		if (!c->dead) {
			pxy_side_update(&c->cl);
			pxy_side_update(&c->up);
		}
	}
}
