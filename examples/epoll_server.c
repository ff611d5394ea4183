/*
 * epoll_server.c - a non-blocking mTLS echo server on one epoll loop.
 *
 *   epoll_server PORT CERT KEY CLIENT_CA [READS_PER_EVENT]
 *
 * Serves many clients on 127.0.0.1:PORT at once, each required to present
 * a certificate issued by CLIENT_CA, and echoes what they send.  Each
 * readiness event reads at most READS_PER_EVENT times (default 8; 1 is
 * the "read once per event" style), so one busy client cannot starve the
 * others.  Because mbedTLS decrypts whole records, bytes can be left
 * inside a connection when the budget runs out, and the socket will not
 * report them: those connections are served again, without waiting, while
 * mtls_conn_pending() says something is left.  SIGTERM or SIGINT stops it
 * and prints a summary.
 */
#include <mtls.h>

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 64

struct client {
	int fd;
	mtls_conn *tls;
	unsigned char buf[4096]; /* smaller than a record, on purpose */
	size_t len, off;         /* echo bytes not yet written: buf[off..len) */
	int closing;             /* our close_notify is being sent */
	int again;               /* on the list of connections to serve again */
	struct client *next;     /* ... that list */
	unsigned events;         /* what epoll waits for on fd */
};

static volatile sig_atomic_t stop;
static int reads_per_event = 8;
static struct client *again; /* served again before waiting */
static long n_conns, n_clean, n_failed;
static long long n_bytes;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void finish(int ep, struct client *c, int clean)
{
	(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (clean)
		n_clean++;
	else
		n_failed++;
	mtls_conn_free(c->tls);
	close(c->fd);
	free(c);
}

/* A result of mtls_* is "try later": remember what to wait for. */
static int wants(long r, unsigned *ev)
{
	if (r == MTLS_WANT_READ)
		*ev = EPOLLIN;
	else if (r == MTLS_WANT_WRITE)
		*ev = EPOLLOUT;
	return r == MTLS_WANT_READ || r == MTLS_WANT_WRITE;
}

/* Handshake, echo, close; returns 1 while the connection lives, with
 * c->events set to what it waits for. */
static int serve(struct client *c)
{
	long r = mtls_handshake(c->tls);
	int reads = 0;

	if (r != 0)
		return wants(r, &c->events);
	for (;;) {
		if (c->closing) {
			r = mtls_close(c->tls);
			return r == 0 ? 0 : wants(r, &c->events);
		}
		if (c->off < c->len) {
			/* after WANT_*, the same bytes and length again */
			r = mtls_write(c->tls, c->buf + c->off, c->len - c->off);
			if (r <= 0)
				return wants(r, &c->events);
			c->off += (size_t)r;
			n_bytes += r;
			continue;
		}
		if (reads == reads_per_event) {
			/* budget spent: decrypted bytes may wait inside */
			c->events = EPOLLIN;
			c->again = mtls_conn_pending(c->tls) > 0;
			return 1;
		}
		r = mtls_read(c->tls, c->buf, sizeof(c->buf));
		reads++;
		if (r == 0)
			c->closing = 1; /* the client's close_notify: answer it */
		else if (r < 0)
			return wants(r, &c->events);
		c->off = 0;
		c->len = r > 0 ? (size_t)r : 0;
	}
}

/* Runs serve() and keeps epoll's interest in step with it. */
static void step(int ep, struct client *c)
{
	unsigned before = c->events;
	struct epoll_event ev;

	c->again = 0;
	if (!serve(c)) {
		finish(ep, c, c->closing && mtls_conn_error(c->tls) == NULL);
		return;
	}
	ev.events = c->events;
	ev.data.ptr = c;
	if (c->events != before &&
	    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
		finish(ep, c, 0);
		return;
	}
	if (c->again) {
		c->next = again;
		again = c;
	}
}

static void accept_all(int ep, int lfd, mtls_ctx *ctx)
{
	for (int i = 0; i < MAX_EVENTS; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct client *c;
		struct epoll_event ev = {.events = EPOLLIN};

		if (fd < 0)
			return; /* EAGAIN: none left; else try on the next event */
		c = calloc(1, sizeof(*c));
		if (c == NULL || (c->tls = mtls_conn_new(ctx, fd, NULL)) == NULL) {
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->events = EPOLLIN;
		ev.data.ptr = c;
		n_conns++;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
			finish(ep, c, 0);
	}
}

static int listen_on(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((unsigned short)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(fd, SOMAXCONN) != 0) {
		perror("listen");
		exit(1);
	}
	return fd;
}

static mtls_ctx *server_ctx(char **argv)
{
	mtls_ctx *ctx = mtls_ctx_new(MTLS_ROLE_SERVER);

	if (ctx == NULL || mtls_load_server_pair(ctx, argv[2], argv[3]) != 0 ||
	    mtls_set_trusted_ca(ctx, argv[4]) != 0) {
		fprintf(stderr, "epoll_server: %s\n",
		        ctx && mtls_ctx_error(ctx) ? mtls_ctx_error(ctx)
		                                   : "out of memory");
		exit(1);
	}
	return ctx;
}

int main(int argc, char **argv)
{
	struct epoll_event evs[MAX_EVENTS], lev = {.events = EPOLLIN};
	int ep, lfd;
	mtls_ctx *ctx;

	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: %s PORT CERT KEY CLIENT_CA "
		        "[READS_PER_EVENT]\n", argv[0]);
		return 2;
	}
	if (argc == 6 && (reads_per_event = atoi(argv[5])) < 1)
		reads_per_event = 1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	ctx = server_ctx(argv);
	lfd = listen_on(atoi(argv[1]));
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0) {
		perror("epoll");
		return 1;
	}
	while (!stop) {
		/* connections with decrypted bytes left: no waiting */
		int n = epoll_wait(ep, evs, MAX_EVENTS, again ? 0 : 500);
		struct client *list = again, *next;

		again = NULL;
		for (int i = 0; i < n; i++) {
			struct client *c = evs[i].data.ptr;
			if (c == NULL)
				accept_all(ep, lfd, ctx);
			else if (!c->again) /* else served from the list below */
				step(ep, c);
		}
		for (; list != NULL; list = next) {
			next = list->next;
			step(ep, list);
		}
	}
	printf("epoll_server: %ld connections, %ld closed cleanly, %ld failed, "
	       "%lld bytes echoed\n", n_conns, n_clean, n_failed, n_bytes);
	mtls_ctx_free(ctx);
	return 0;
}
