/*
 * serve.h - the event loop shared by the benchmark's servers (raw_server.c,
 * mtls_server.c, backend.c), so that they differ only in their TLS calls.
 *
 * One thread, epoll (level-triggered), non-blocking sockets.  Each connection: TLS handshake
 * (if any), then a tiny HTTP/1.1 keep-alive responder: every request (a
 * header block ending in an empty line) gets "200 ok"; "GET /big" gets a
 * BENCH_BIG_BYTES body written 16 KiB at a time (the bulk cell).
 * The loop is bounded: it exits after `lifetime` seconds or on SIGTERM/INT.
 */
#ifndef BENCH_SERVE_H
#define BENCH_SERVE_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_CONNS 12288 /* 10,000 idle connections and some */
#define BENCH_BIG_BYTES (16u * 1024u * 1024u)
#define BENCH_CHUNK 16384

/* Return values of the ops below (besides byte counts). */
#define OP_WANT_READ (-2)
#define OP_WANT_WRITE (-3)

struct bench_ops {
	void *(*open)(int fd);                 /* NULL: refuse the connection */
	int (*handshake)(void *t);             /* 0, OP_WANT_*, or -1 */
	ssize_t (*read)(void *t, void *b, size_t n);  /* > 0, OP_WANT_*, <= 0 end */
	ssize_t (*write)(void *t, const void *b, size_t n);
	void (*close)(void *t);
};

struct bench_conn {
	int fd;
	void *t;
	int hs_done;
	short events;
	char in[8192];
	size_t in_len;
	const char *out;
	size_t out_len, out_off;
	size_t big_left;
};

static const char bench_ok[] =
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";
static char bench_big_hdr[128];
static char bench_chunk[BENCH_CHUNK];
static volatile sig_atomic_t bench_stop;

static void bench_on_signal(int sig)
{
	(void)sig;
	bench_stop = 1;
}

/* Takes one complete request off the input buffer and queues its answer. */
static int bench_take_request(struct bench_conn *c)
{
	char *end;
	size_t used;

	if (c->in_len < 4)
		return 0;
	end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	if (end == NULL)
		return 0;
	used = (size_t)(end + 4 - c->in);
	if (c->in_len >= 8 && memcmp(c->in, "GET /big", 8) == 0) {
		c->out = bench_big_hdr;
		c->out_len = strlen(bench_big_hdr);
		c->big_left = BENCH_BIG_BYTES;
	} else {
		c->out = bench_ok;
		c->out_len = sizeof(bench_ok) - 1;
	}
	c->out_off = 0;
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
	return 1;
}

/* Runs a connection as far as it goes without blocking: 0 to keep it
 * (c->events says what to wait for), -1 to close it. */
static int bench_step(const struct bench_ops *ops, struct bench_conn *c)
{
	ssize_t n;
	int r;

	if (!c->hs_done) {
		r = ops->handshake(c->t);
		if (r == OP_WANT_READ || r == OP_WANT_WRITE) {
			c->events = r == OP_WANT_READ ? POLLIN : POLLOUT;
			return 0;
		}
		if (r != 0)
			return -1;
		c->hs_done = 1;
	}
	for (int guard = 0; guard < 100000; guard++) {
		if (c->out_off < c->out_len) {
			n = ops->write(c->t, c->out + c->out_off,
			               c->out_len - c->out_off);
			if (n == OP_WANT_READ || n == OP_WANT_WRITE) {
				c->events = n == OP_WANT_READ ? POLLIN : POLLOUT;
				return 0;
			}
			if (n <= 0)
				return -1;
			c->out_off += (size_t)n;
			if (c->out_off == c->out_len && c->big_left > 0) {
				c->out = bench_chunk;
				c->out_len = c->big_left < BENCH_CHUNK ? c->big_left
				                                       : BENCH_CHUNK;
				c->out_off = 0;
				c->big_left -= c->out_len;
			}
			continue;
		}
		if (bench_take_request(c))
			continue;
		if (c->in_len == sizeof(c->in))
			return -1; /* not HTTP */
		n = ops->read(c->t, c->in + c->in_len, sizeof(c->in) - c->in_len);
		if (n == OP_WANT_READ || n == OP_WANT_WRITE) {
			c->events = n == OP_WANT_READ ? POLLIN : POLLOUT;
			return 0;
		}
		if (n <= 0)
			return -1;
		c->in_len += (size_t)n;
	}
	c->events = POLLIN | POLLOUT; /* a long bulk burst: yield to others */
	return 0;
}

static int bench_listen(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((unsigned short)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(fd, 1024) != 0) {
		perror("listen");
		exit(1);
	}
	return fd;
}

static void bench_drop(const struct bench_ops *ops, struct bench_conn **slot)
{
	ops->close((*slot)->t);
	close((*slot)->fd);
	free(*slot);
	*slot = NULL;
}

/* The epoll interest for what a step asked to wait for (POLLIN/POLLOUT). */
static unsigned bench_mask(short events)
{
	return (events & POLLIN ? EPOLLIN : 0u) | (events & POLLOUT ? EPOLLOUT : 0u);
}

/* Serves 127.0.0.1:port until SIGTERM/SIGINT or `lifetime` seconds.
 * epoll, so a wake-up costs the same with 10,000 idle connections open as
 * with none (poll() over every descriptor would slow the backend down as
 * connections are held, and with it the cells of the server under test). */
static int bench_serve(const struct bench_ops *ops, int port, int lifetime)
{
	static struct bench_conn *conns[BENCH_MAX_CONNS];
	static short reg[BENCH_MAX_CONNS]; /* interest registered in epoll */
	static int free_slot[BENCH_MAX_CONNS];
	struct epoll_event evs[256];
	struct sigaction sa;
	time_t end = time(NULL) + lifetime;
	int lfd = bench_listen(port), one = 1, n_free = 0;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = {.events = EPOLLIN, .data.u32 = BENCH_MAX_CONNS};

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0) {
		perror("epoll");
		return 1;
	}
	for (int i = BENCH_MAX_CONNS - 1; i >= 0; i--)
		free_slot[n_free++] = i;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = bench_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	snprintf(bench_big_hdr, sizeof(bench_big_hdr),
	         "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", BENCH_BIG_BYTES);
	memset(bench_chunk, 'x', sizeof(bench_chunk));
	printf("listening on 127.0.0.1:%d\n", port);
	fflush(stdout);

	while (!bench_stop && time(NULL) < end) {
		int n = epoll_wait(ep, evs, 256, 1000);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("epoll_wait");
			return 1;
		}
		for (int k = 0; k < n; k++) {
			unsigned i = evs[k].data.u32;
			int accepted = 0;

			if (i < BENCH_MAX_CONNS) {
				struct bench_conn *c = conns[i];
				struct epoll_event ev = {.data.u32 = i};

				if (c == NULL)
					continue; /* dropped earlier in this batch */
				if (bench_step(ops, c) != 0) {
					bench_drop(ops, &conns[i]); /* close: out of epoll */
					free_slot[n_free++] = (int)i;
					continue;
				}
				ev.events = bench_mask(c->events);
				if (c->events != reg[i] &&
				    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
					reg[i] = c->events;
				continue;
			}
			while (n_free > 0 && accepted++ < 256) {
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
				int j = free_slot[n_free - 1];
				struct epoll_event ev = {.data.u32 = (unsigned)j};

				if (fd < 0)
					break;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				conns[j] = calloc(1, sizeof(*conns[j]));
				if (conns[j] == NULL) {
					close(fd);
					break;
				}
				n_free--;
				conns[j]->fd = fd;
				conns[j]->t = ops->open(fd);
				if (conns[j]->t == NULL || bench_step(ops, conns[j]) != 0) {
					bench_drop(ops, &conns[j]);
					free_slot[n_free++] = j;
					continue;
				}
				ev.events = bench_mask(conns[j]->events);
				if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
					bench_drop(ops, &conns[j]);
					free_slot[n_free++] = j;
					continue;
				}
				reg[j] = conns[j]->events;
			}
		}
	}
	for (int i = 0; i < BENCH_MAX_CONNS; i++)
		if (conns[i] != NULL)
			bench_drop(ops, &conns[i]);
	close(ep);
	close(lfd);
	return 0;
}

#endif
