/*
 * proxy.c - the mtls-proxy event loop (see proxy.h).
 *
 * Level-triggered epoll.  Every event on a connection runs conn_step(),
 * which pushes the connection as far as it will go and records, per
 * socket, what the operation that stopped it wants (readable, writable);
 * that becomes the socket's epoll interest.  TLS may want writable for a
 * read and readable for a write, so interest is never derived from the
 * direction of the copy.
 */
#include "proxy.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (16 * 1024)
#define STOP_GRACE 5.0 /* seconds granted to open connections on stop */

enum kind { K_LISTEN = 1, K_SIDE };
enum state { S_HS_CLIENT, S_CONNECT, S_HS_UP, S_RELAY };

struct conn;

/* One socket of a connection: the client's or the upstream's. */
struct side {
	int kind;       /* K_SIDE: first, epoll data points here */
	struct conn *c;
	const char *who;  /* "client" or "upstream", for messages */
	int fd;
	mtls_conn *tls;   /* NULL: plain TCP */
	unsigned events;  /* registered epoll interest */
	unsigned want;    /* interest collected by this step */
	int registered;   /* in the epoll set */
	int eof;          /* nothing more will be read */
	int shut;         /* our write side is shut (close_notify sent) */
};

/* Bytes read from one side, waiting to be written to the other. */
struct buf {
	size_t off, len;
	size_t pend; /* length of a TLS write to repeat as is, or 0 */
	unsigned char d[BUF_SIZE];
};

struct conn {
	struct conn *prev, *next;
	struct pxy_listen *l;
	struct pxy_upstream *u;
	enum state st;
	struct side cl, up;
	const struct pxy_addr *target;
	size_t tries;
	char client_addr[64];
	char subject[256], uri[256];
	unsigned long long to_up, to_client; /* bytes delivered */
	double start, deadline, last_io;
	int dead;
	char reason[512];
	struct buf c2u, u2c;
};

struct listener {
	int kind; /* K_LISTEN */
	struct pxy_listen *l;
	double paused_until; /* out of the epoll set until then, or 0 */
};

static volatile sig_atomic_t stop_requested;
static int ep = -1;
static struct conn *conns;  /* live */
static struct conn *graves; /* closed during this batch, freed after it */
static size_t n_conns;

void pxy_stop(void)
{
	stop_requested = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void addr_text(const struct sockaddr_storage *sa, char *out,
                      size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(out, len, "%s:%u", host, port);
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(out, len, "[%s]:%u", host, port);
	} else {
		snprintf(out, len, "?");
	}
}

/* ---- listening ------------------------------------------------------------ */

int pxy_listen_all(struct pxy_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_listens; i++) {
		struct pxy_listen *l = &cfg->listens[i];
		int one = 1;

		l->fd = socket(l->addr.sa.ss_family,
		               SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (l->fd < 0 ||
		    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one,
		               sizeof(one)) != 0 ||
		    bind(l->fd, (struct sockaddr *)&l->addr.sa, l->addr.len) ||
		    listen(l->fd, 512) != 0) {
			pxy_log(MTLS_LOG_ERROR, "listen %s: %s", l->addr.text,
			        strerror(errno));
			return -1;
		}
		pxy_log(MTLS_LOG_INFO, "listening on %s -> upstream %s (%s)",
		        l->addr.text, l->upstream->name,
		        l->upstream->tls ? "mTLS" : "plain TCP");
	}
	return 0;
}

/* ---- epoll interest --------------------------------------------------------- */

static int side_register(struct side *s, unsigned events)
{
	struct epoll_event ev = {.events = events, .data.ptr = s};

	if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) != 0)
		return -1;
	s->events = s->want = events;
	s->registered = 1;
	return 0;
}

static void side_update(struct side *s)
{
	struct epoll_event ev = {.events = s->want, .data.ptr = s};

	if (!s->registered || s->fd < 0 || s->events == s->want)
		return;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev) == 0)
		s->events = s->want;
}

/* A socket we are done with both ways: out of the epoll set, so a hang-up
 * on it does not wake the loop while the other side still drains. */
static void side_forget(struct side *s)
{
	if (s->registered && s->fd >= 0)
		epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
	s->registered = 0;
}

static void side_close(struct side *s)
{
	mtls_conn_free(s->tls);
	s->tls = NULL;
	if (s->fd >= 0)
		close(s->fd); /* also leaves the epoll set */
	s->fd = -1;
	s->registered = 0;
}

/* ---- connection end ----------------------------------------------------------- */

static void conn_unlink(struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = NULL;
	c->next = graves;
	graves = c;
	n_conns--;
}

/* Logs the connection's one line and closes it (freed after the batch). */
static void conn_end(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	pxy_log(c->reason[0] ? MTLS_LOG_WARN : MTLS_LOG_INFO,
	        "conn client=%s listen=%s subject=\"%s\" uri=\"%s\" "
	        "upstream=%s target=%s bytes_to_upstream=%llu "
	        "bytes_to_client=%llu duration=%.3fs %s%s%s",
	        c->client_addr, c->l->addr.text,
	        c->subject[0] ? c->subject : "-", c->uri[0] ? c->uri : "-",
	        c->u->name, c->target ? c->target->text : "-", c->to_up,
	        c->to_client, now() - c->start,
	        c->reason[0] ? "error=\"" : "status=ok",
	        c->reason, c->reason[0] ? "\"" : "");
	side_close(&c->cl);
	side_close(&c->up);
	conn_unlink(c);
}

static void conn_fail(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void conn_fail(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->reason[0] == '\0') { /* the first reason is the real one */
		va_start(ap, fmt);
		vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
		va_end(ap);
	}
	conn_end(c);
}

static void side_fail(struct conn *c, struct side *s, ssize_t rc,
                      const char *what)
{
	const char *why = s->tls ? mtls_conn_error(s->tls) : NULL;

	if (s->tls == NULL)
		why = strerror(-(int)rc);
	if (s == &c->up)
		conn_fail(c, "upstream %s: %s: %s", c->target->text, what,
		          why ? why : mtls_strerror((int)rc));
	else
		conn_fail(c, "client: %s: %s", what,
		          why ? why : mtls_strerror((int)rc));
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
		return n == MTLS_ERR_CLOSED ? 0 : n;
	}
	do
		n = recv(s->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
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

static void want(struct side *s, ssize_t rc)
{
	s->want |= rc == MTLS_WANT_READ ? EPOLLIN : EPOLLOUT;
}

static int is_want(ssize_t rc)
{
	return rc == MTLS_WANT_READ || rc == MTLS_WANT_WRITE;
}

/* Moves what it can from `from` to `to` through b.  1 progress, 0 none,
 * -1 the connection failed (and is ended). */
static int pump(struct conn *c, struct side *from, struct side *to,
                struct buf *b, unsigned long long *count)
{
	int progress = 0;
	ssize_t n;

	if (b->off > 0 && b->len == BUF_SIZE) {
		/* Safe with a TLS write pending: the library keeps its own
		 * copy of the record and only wants the same length again. */
		memmove(b->d, b->d + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	} else if (b->off == b->len) {
		b->off = b->len = 0;
	}
	if (!from->eof && b->len < BUF_SIZE) {
		n = side_read(from, b->d + b->len, BUF_SIZE - b->len);
		if (n > 0) {
			b->len += (size_t)n;
			progress = 1;
		} else if (n == 0) {
			from->eof = 1;
			progress = 1;
		} else if (is_want(n)) {
			want(from, n);
		} else {
			side_fail(c, from, n, "read");
			return -1;
		}
	}
	if (b->off < b->len) {
		size_t len = b->pend ? b->pend : b->len - b->off;

		n = side_write(to, b->d + b->off, len);
		if (n > 0) {
			b->off += (size_t)n;
			b->pend = 0;
			*count += (unsigned long long)n;
			progress = 1;
		} else if (is_want(n)) {
			b->pend = to->tls ? len : 0; /* "call again the same way" */
			want(to, n);
		} else {
			side_fail(c, to, n, "write");
			return -1;
		}
	}
	if (from->eof && b->off == b->len && !to->shut) {
		n = side_shutdown(to);
		if (n == 0) {
			to->shut = 1;
			progress = 1;
		} else if (is_want(n)) {
			want(to, n);
		} else {
			to->shut = 1; /* the peer is gone: nothing left to tell */
		}
	}
	return progress;
}

static void relay(struct conn *c)
{
	int a, b;

	do {
		c->cl.want = c->up.want = 0;
		if ((a = pump(c, &c->cl, &c->up, &c->c2u, &c->to_up)) < 0)
			return;
		if ((b = pump(c, &c->up, &c->cl, &c->u2c, &c->to_client)) < 0)
			return;
		if (a || b)
			c->last_io = now();
	} while (a || b);
	if (c->cl.eof && c->cl.shut && c->up.eof && c->up.shut) {
		conn_end(c);
		return;
	}
	if (c->cl.eof && c->cl.shut)
		side_forget(&c->cl);
	if (c->up.eof && c->up.shut)
		side_forget(&c->up);
}

/* ---- connection set-up ---------------------------------------------------------- */

static void enter_relay(struct conn *c)
{
	c->st = S_RELAY;
	c->last_io = now();
	pxy_log(MTLS_LOG_DEBUG, "conn client=%s: relaying to %s",
	        c->client_addr, c->target->text);
	relay(c);
}

static void upstream_handshake(struct conn *c)
{
	int rc = mtls_handshake(c->up.tls);

	c->up.want = 0;
	if (is_want(rc)) {
		want(&c->up, rc);
		return;
	}
	if (rc != 0) {
		side_fail(c, &c->up, rc, "TLS handshake");
		return;
	}
	enter_relay(c);
}

/* Connected to c->target: start TLS or relay. */
static void upstream_ready(struct conn *c)
{
	if (!c->u->tls) {
		enter_relay(c);
		return;
	}
	/* The target's host is the name checked unless the upstream's
	 * server_name (set on the context) overrides it. */
	c->up.tls = mtls_conn_new(c->u->ctx, c->up.fd, c->target->host);
	if (c->up.tls == NULL) {
		conn_fail(c, "out of memory");
		return;
	}
	c->st = S_HS_UP;
	upstream_handshake(c);
}

/* Tries the upstream's targets in round robin order from its cursor,
 * skipping those that refuse at once; the first pending one waits for
 * EPOLLOUT.  last_err: why the previous target failed, or NULL. */
static void connect_next(struct conn *c, const char *last_err)
{
	struct pxy_upstream *u = c->u;

	while (c->tries < u->n_targets) {
		const struct pxy_addr *t = &u->targets[u->next++ % u->n_targets];
		int fd, rc;

		c->tries++;
		c->target = t;
		fd = socket(t->sa.ss_family,
		            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			conn_fail(c, "socket: %s", strerror(errno));
			return;
		}
		rc = connect(fd, (const struct sockaddr *)&t->sa, t->len);
		if (rc != 0 && errno != EINPROGRESS) {
			last_err = strerror(errno);
			pxy_log(MTLS_LOG_DEBUG, "upstream %s: connect %s: %s",
			        u->name, t->text, last_err);
			close(fd);
			continue;
		}
		c->up.fd = fd;
		if (side_register(&c->up, EPOLLOUT) != 0) {
			conn_fail(c, "epoll: %s", strerror(errno));
			return;
		}
		c->st = S_CONNECT;
		c->deadline = now() + u->connect_timeout;
		if (rc == 0)
			upstream_ready(c);
		return;
	}
	conn_fail(c, "no target of upstream %s reachable (last: %s: %s)",
	          u->name, c->target ? c->target->text : "-",
	          last_err ? last_err : "?");
}

/* EPOLLOUT (or an error) on a connecting socket. */
static void connect_done(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->up.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == 0) {
		upstream_ready(c);
		return;
	}
	pxy_log(MTLS_LOG_DEBUG, "upstream %s: connect %s: %s", c->u->name,
	        c->target->text, strerror(err));
	side_close(&c->up);
	connect_next(c, strerror(err));
}

static void client_handshake(struct conn *c)
{
	mtls_peer peer;
	int rc = mtls_handshake(c->cl.tls);

	memset(&peer, 0, sizeof(peer));

	c->cl.want = 0;
	if (is_want(rc)) {
		want(&c->cl, rc);
		return;
	}
	if (rc != 0) {
		side_fail(c, &c->cl, rc, "TLS handshake");
		return;
	}
	rc = mtls_verify_peer(c->cl.tls, &peer);
	if (peer.has_cert) {
		snprintf(c->subject, sizeof(c->subject), "%s", peer.subject);
		if (peer.n_uri > 0)
			snprintf(c->uri, sizeof(c->uri), "%s", peer.uri[0]);
		if (rc != 0) /* client_auth optional: say what it is worth */
			snprintf(c->subject + strlen(c->subject),
			         sizeof(c->subject) - strlen(c->subject),
			         " (unverified: %s)", mtls_strerror(rc));
	}
	c->cl.want = 0; /* quiet until the upstream is ready */
	connect_next(c, NULL);
}

static void conn_step(struct conn *c, struct side *s, unsigned events)
{
	/* A hang-up on a socket we asked nothing of: the peer is gone. */
	if (s->events == 0 && (events & (EPOLLERR | EPOLLHUP))) {
		if (s->eof && s->shut) {
			side_forget(s);
			return;
		}
		conn_fail(c, "%s closed the connection%s", s->who,
		          c->st == S_RELAY ? "" : " during set-up");
		return;
	}
	switch (c->st) {
	case S_HS_CLIENT:
		client_handshake(c);
		break;
	case S_CONNECT:
		if (s == &c->up)
			connect_done(c);
		break;
	case S_HS_UP:
		upstream_handshake(c);
		break;
	case S_RELAY:
		relay(c);
		break;
	}
	if (!c->dead) {
		side_update(&c->cl);
		side_update(&c->up);
	}
}

/* ---- accept, timers, loop --------------------------------------------------------- */

/* Out of file descriptors: a level-triggered listener would wake the
 * loop at once, forever.  Stop listening for a second instead. */
static void listener_pause(struct listener *ls)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, ls->l->fd, NULL);
	ls->paused_until = now() + 1.0;
	pxy_log(MTLS_LOG_ERROR, "accept on %s: %s; pausing for 1 s",
	        ls->l->addr.text, strerror(errno));
}

static void listener_resume(struct listener *ls, double t)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ls};

	if (ls->paused_until == 0 || t < ls->paused_until || ls->l->fd < 0)
		return;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ls->l->fd, &ev) == 0)
		ls->paused_until = 0;
}

static void accept_all(struct listener *ls)
{
	struct pxy_listen *l = ls->l;

	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage sa;
		socklen_t len = sizeof(sa);
		struct conn *c;
		int fd = accept4(l->fd, (struct sockaddr *)&sa, &len,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				listener_pause(ls);
			else if (errno != EAGAIN && errno != EWOULDBLOCK &&
			         errno != EINTR && errno != ECONNABORTED)
				pxy_log(MTLS_LOG_ERROR, "accept on %s: %s",
				        l->addr.text, strerror(errno));
			return;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			pxy_log(MTLS_LOG_ERROR, "accept: out of memory");
			return;
		}
		c->l = l;
		c->u = l->upstream;
		c->cl = (struct side){.kind = K_SIDE, .c = c, .who = "client",
		                      .fd = fd};
		c->up = (struct side){.kind = K_SIDE, .c = c,
		                      .who = "upstream", .fd = -1};
		c->start = now();
		c->deadline = c->start + l->handshake_timeout;
		addr_text(&sa, c->client_addr, sizeof(c->client_addr));
		c->next = conns;
		if (conns)
			conns->prev = c;
		conns = c;
		n_conns++;
		c->cl.tls = mtls_conn_new(l->ctx, fd, NULL);
		if (c->cl.tls == NULL) {
			conn_fail(c, "out of memory");
			continue;
		}
		if (side_register(&c->cl, EPOLLIN) != 0)
			conn_fail(c, "epoll: %s", strerror(errno));
	}
}

static void check_timers(double t)
{
	struct conn *c, *next;

	for (c = conns; c != NULL; c = next) {
		next = c->next;
		switch (c->st) {
		case S_HS_CLIENT:
			if (t > c->deadline)
				conn_fail(c, "client: TLS handshake timed out "
				             "after %d s", c->l->handshake_timeout);
			break;
		case S_CONNECT:
		case S_HS_UP:
			if (t > c->deadline)
				conn_fail(c, "upstream %s: %s timed out after "
				             "%d s", c->target->text,
				          c->st == S_CONNECT ? "connect"
				                             : "TLS handshake",
				          c->u->connect_timeout);
			break;
		case S_RELAY:
			if (t - c->last_io > c->u->idle_timeout)
				conn_fail(c, "idle for %d s",
				          c->u->idle_timeout);
			break;
		}
	}
}

static void bury(void)
{
	while (graves != NULL) {
		struct conn *c = graves;
		graves = c->next;
		free(c);
	}
}

static void stop_listening(struct pxy_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_listens; i++) {
		if (cfg->listens[i].fd >= 0)
			close(cfg->listens[i].fd);
		cfg->listens[i].fd = -1;
	}
}

int pxy_run(struct pxy_config *cfg)
{
	struct epoll_event evs[128];
	struct listener *ls;
	double stop_at = 0;
	size_t i;
	int rc = -1;

	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		pxy_log(MTLS_LOG_ERROR, "epoll: %s", strerror(errno));
		return -1;
	}
	if ((ls = calloc(cfg->n_listens, sizeof(*ls))) == NULL)
		goto out;
	for (i = 0; i < cfg->n_listens; i++) {
		struct epoll_event ev = {.events = EPOLLIN,
		                         .data.ptr = &ls[i]};
		ls[i] = (struct listener){.kind = K_LISTEN,
		                          .l = &cfg->listens[i]};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cfg->listens[i].fd, &ev)) {
			pxy_log(MTLS_LOG_ERROR, "epoll: %s", strerror(errno));
			goto out;
		}
	}
	for (;;) {
		int n = epoll_wait(ep, evs, 128, 1000);
		double t;

		if (n < 0 && errno != EINTR) {
			pxy_log(MTLS_LOG_ERROR, "epoll_wait: %s",
			        strerror(errno));
			goto out;
		}
		for (int k = 0; k < n; k++) {
			int *kind = evs[k].data.ptr;

			if (*kind == K_LISTEN) {
				accept_all((struct listener *)kind);
			} else {
				struct side *s = (struct side *)kind;
				if (!s->c->dead)
					conn_step(s->c, s, evs[k].events);
			}
		}
		t = now();
		check_timers(t);
		for (i = 0; stop_at == 0 && i < cfg->n_listens; i++)
			listener_resume(&ls[i], t);
		bury();
		if (stop_requested && stop_at == 0) {
			pxy_log(MTLS_LOG_INFO, "stopping: %zu connection(s) "
			        "open, waiting up to %.0f s", n_conns,
			        STOP_GRACE);
			stop_listening(cfg);
			stop_at = t + STOP_GRACE;
		}
		if (stop_at != 0 && (n_conns == 0 || t >= stop_at))
			break;
	}
	while (conns != NULL)
		conn_fail(conns, "proxy shutting down");
	bury();
	rc = 0;
out:
	stop_listening(cfg);
	free(ls);
	close(ep);
	ep = -1;
	return rc;
}
