/*
 * epoll_client.c - a non-blocking mTLS load client on one epoll loop.
 *
 *   epoll_client PORT CERT KEY CA CONNS MSGS [SECONDS]
 *
 * Opens CONNS connections to an echo server on 127.0.0.1:PORT at once
 * (the server's certificate must be valid for "localhost" and issued by
 * CA).  Each sends MSGS messages back to back, from 1 byte to 64 KiB, while
 * reading the echo and comparing it byte for byte; then it sends
 * close_notify and waits for the server's.  Exits 0 only when every
 * connection got every byte back within SECONDS (default 60).
 */
#include <mtls.h>

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CONNECTING, TALKING, CLOSING, DRAINING, DONE, FAILED };

struct conn {
	int fd, id, state;
	mtls_conn *tls;
	int msg, msgs;           /* the message being sent, of msgs */
	size_t msg_left;         /* its bytes not yet put in out */
	size_t total, sent, got; /* bytes of the whole stream */
	unsigned char out[16384];
	size_t olen, ooff;       /* out[ooff..olen) waits to be written */
	unsigned events;
};

/* Message j of connection k: the first is 1 byte, the second 64 KiB. */
static size_t msg_size(int k, int j)
{
	unsigned h = (unsigned)k * 2654435761u ^ (unsigned)j * 40503u;

	return j == 0 ? 1 : j == 1 ? 65536 : 1 + (h >> 7) % 65536;
}

static unsigned char pattern(int k, size_t off)
{
	return (unsigned char)(off * 131 + (size_t)k * 17 + (off >> 12));
}

/* Fills out with the next chunk, never crossing a message's end, so each
 * message leaves as its own burst of records. */
static void refill(struct conn *c)
{
	size_t n;

	while (c->msg_left == 0 && c->msg < c->msgs)
		c->msg_left = msg_size(c->id, c->msg++);
	n = c->msg_left < sizeof(c->out) ? c->msg_left : sizeof(c->out);
	for (size_t i = 0; i < n; i++)
		c->out[i] = pattern(c->id, c->sent + i);
	c->msg_left -= n;
	c->olen = n;
	c->ooff = 0;
}

static int fail(struct conn *c, const char *what, long r)
{
	const char *e = mtls_conn_error(c->tls);

	fprintf(stderr, "epoll_client: connection %d: %s: %s\n", c->id, what,
	        e != NULL ? e : mtls_strerror((int)r));
	c->state = FAILED;
	return 0;
}

static int is_want(long r)
{
	return r == MTLS_WANT_READ || r == MTLS_WANT_WRITE;
}

/* Writes while the socket takes it.  A write that waits is retried with
 * the same bytes and length; reading goes on meanwhile. */
static int send_some(struct conn *c)
{
	for (int i = 0; i < 16 && c->sent < c->total; i++) {
		long r;
		if (c->ooff == c->olen)
			refill(c);
		r = mtls_write(c->tls, c->out + c->ooff, c->olen - c->ooff);
		if (is_want(r))
			return 1;
		if (r < 0)
			return fail(c, "write", r);
		c->ooff += (size_t)r;
		c->sent += (size_t)r;
	}
	return 1;
}

/* Reads until MTLS_WANT_READ (bounded: a connection with bytes left is
 * served again, see mtls_conn_pending() in main), checking every byte. */
static int recv_some(struct conn *c)
{
	unsigned char buf[16384];

	for (int i = 0; i < 64; i++) {
		long r = mtls_read(c->tls, buf, sizeof(buf));
		if (is_want(r))
			return 1;
		if (r == 0 && c->state == DRAINING) {
			c->state = DONE; /* the server's close_notify */
			return 0;
		}
		if (r <= 0 || c->got + (size_t)r > c->total)
			return fail(c, r > 0 ? "too many bytes" : "read", r);
		for (long k = 0; k < r; k++)
			if (buf[k] != pattern(c->id, c->got + (size_t)k))
				return fail(c, "echo differs", 0);
		c->got += (size_t)r;
		if (c->got == c->total && c->state == TALKING)
			c->state = CLOSING;
	}
	return 1;
}

static int start_tls(struct conn *c, mtls_ctx *ctx)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
		fprintf(stderr, "epoll_client: connect: %s\n", strerror(err));
		c->state = FAILED;
		return 0;
	}
	c->tls = mtls_conn_new(ctx, c->fd, "localhost");
	c->state = TALKING;
	return c->tls != NULL ? 1 : fail(c, "mtls_conn_new", MTLS_ERR_NO_MEMORY);
}

/* One round for a connection; 1 while it lives, c->events set. */
static int drive(struct conn *c, mtls_ctx *ctx)
{
	long r;

	if (c->state == CONNECTING && !start_tls(c, ctx))
		return 0;
	r = mtls_handshake(c->tls);
	if (r != 0) {
		c->events = r == MTLS_WANT_WRITE ? EPOLLOUT : EPOLLIN;
		return is_want(r) ? 1 : fail(c, "handshake", r);
	}
	if (c->state == TALKING && (!send_some(c) || !recv_some(c)))
		return 0;
	if (c->state == CLOSING) {
		r = mtls_close(c->tls);
		if (r == 0)
			c->state = DRAINING;
		else if (!is_want(r))
			return fail(c, "close", r);
	}
	if (c->state == DRAINING && !recv_some(c))
		return 0; /* DONE, or FAILED */
	/* More to send (send_some stops after 16 writes, at a chunk's end
	 * too: with small records that is before the message's end) waits
	 * for the socket to take it, not for an echo that may have come. */
	c->events = EPOLLIN;
	if (c->ooff < c->olen || c->state == CLOSING ||
	    (c->state == TALKING && c->sent < c->total))
		c->events |= EPOLLOUT;
	return 1;
}

static int connect_one(struct conn *c, int port, int ep)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((unsigned short)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};

	c->events = EPOLLOUT;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0 ||
	    (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0 &&
	     errno != EINPROGRESS) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		perror("epoll_client: connect");
		if (c->fd >= 0)
			close(c->fd);
		return -1;
	}
	return 0;
}

/* Drives c and updates epoll; counts it once when it ends. */
static void step(struct conn *c, mtls_ctx *ctx, int ep, int *live)
{
	unsigned before = c->events;
	struct epoll_event ev;

	if (drive(c, ctx)) {
		ev.events = c->events;
		ev.data.ptr = c;
		if (c->events != before)
			(void)epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		return;
	}
	(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	(*live)--;
}

static mtls_ctx *client_ctx(char **argv)
{
	mtls_ctx *ctx = mtls_ctx_new(MTLS_ROLE_CLIENT);

	if (ctx == NULL || mtls_load_client_pair(ctx, argv[2], argv[3]) != 0 ||
	    mtls_set_trusted_ca(ctx, argv[4]) != 0) {
		fprintf(stderr, "epoll_client: %s\n",
		        ctx && mtls_ctx_error(ctx) ? mtls_ctx_error(ctx)
		                                   : "out of memory");
		exit(1);
	}
	return ctx;
}

int main(int argc, char **argv)
{
	struct epoll_event evs[64];
	int n, msgs, live = 0, ok = 0, ep = epoll_create1(EPOLL_CLOEXEC);
	long long bytes = 0;
	time_t end;
	struct conn *cs;
	mtls_ctx *ctx;

	if (argc < 7 || argc > 8 || (n = atoi(argv[5])) < 1 ||
	    (msgs = atoi(argv[6])) < 1) {
		fprintf(stderr, "usage: %s PORT CERT KEY CA CONNS MSGS "
		        "[SECONDS]\n", argv[0]);
		return 2;
	}
	end = time(NULL) + (argc == 8 ? atoi(argv[7]) : 60);
	signal(SIGPIPE, SIG_IGN);
	ctx = client_ctx(argv);
	if (ep < 0 || (cs = calloc((size_t)n, sizeof(*cs))) == NULL)
		return 1;
	for (int i = 0; i < n; i++) {
		cs[i].id = i;
		cs[i].msgs = msgs;
		for (int j = 0; j < msgs; j++)
			cs[i].total += msg_size(i, j);
		if (connect_one(&cs[i], atoi(argv[1]), ep) == 0)
			live++;
		else
			cs[i].state = FAILED;
	}
	while (live > 0 && time(NULL) < end) {
		int k = epoll_wait(ep, evs, 64, 100);
		for (int i = 0; i < k; i++)
			step(evs[i].data.ptr, ctx, ep, &live);
		/* bytes decrypted but not yet read: the socket will not say */
		for (int i = 0; i < n; i++)
			if (cs[i].state < DONE && mtls_conn_pending(cs[i].tls))
				step(&cs[i], ctx, ep, &live);
	}
	for (int i = 0; i < n; i++) {
		ok += cs[i].state == DONE;
		bytes += (long long)cs[i].got;
		mtls_conn_free(cs[i].tls);
		if (cs[i].state < DONE)
			close(cs[i].fd); /* out of time */
	}
	printf("epoll_client: %d/%d connections echoed in full, %lld bytes "
	       "verified\n", ok, n, bytes);
	free(cs);
	mtls_ctx_free(ctx);
	close(ep);
	return ok == n ? 0 : 1;
}
