/*
 * proxy.c - the mtls-proxy event loop (see proxy.h).
 *
 * Level-triggered epoll.  Every event on a connection runs conn_step(),
 * which pushes the connection as far as it will go and records, per
 * socket, what the operation that stopped it wants (readable, writable);
 * that becomes the socket's epoll interest.  TLS may want writable for a
 * read and readable for a write, so interest is never derived from the
 * direction of the copy.
 *
 * Fairness: relaying gives a connection RELAY_ROUNDS turns of its two
 * buffers per wakeup.  One that could still move bytes then goes to the
 * back of a run queue instead of looping on (a client that streams faster
 * than we decrypt never makes a socket "would block"); the loop polls
 * without waiting while the queue holds anyone, runs each queued
 * connection once per pass after the events, and checks its timers on
 * every pass.
 */
#include "proxy.h"
#include "admit.h"
#include "log.h"
#include "proxyproto.h"
#include "tlsctx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE ((size_t)16 * 1024)
/* Turns of both buffers per wakeup: at most 4 x 16 KiB each way before
 * the others get theirs. */
#define RELAY_ROUNDS 4
#define STOP_GRACE 5.0 /* seconds granted to open connections on stop */

enum kind { K_LISTEN = 1, K_SIDE, K_PROBE };
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
	const char *eof_how; /* "close_notify" or "eof", when eof */
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
	struct conn *rq_prev, *rq_next; /* run queue: more to relay */
	int queued;
	struct pxy_ticket ticket; /* what it counts against the limits */
	struct pxy_config *cfg; /* the generation l and u belong to (a ref) */
	struct pxy_listen *l;
	struct pxy_upstream *u;
	enum state st;
	struct side cl, up;
	const struct pxy_addr *target;
	size_t first, tries;    /* round-robin start, targets tried */
	char client_addr[64];
	struct sockaddr_storage client_sa, local_sa; /* for PROXY v2 */
	char subject[256];      /* the client certificate's, as presented */
	char id[256];           /* the identity the policy matched, or "" */
	char pp_uri[256], pp_cn[128]; /* forwarded in PROXY v2 (see there) */
	int verified;           /* the client's certificate was verified */
	size_t pp_len;          /* PROXY header bytes queued to the upstream */
	unsigned long long to_up, to_client; /* bytes delivered */
	double start, deadline, last_io;
	int dead;
	char reason[512];
	const char *end, *end_by; /* how the relay ended, first event (end=) */
	int benign;             /* the failure is a peer hanging up or idling */
	struct buf c2u, u2c;
};

struct listener {
	int kind; /* K_LISTEN */
	struct pxy_listen *l;
	double paused_until; /* out of the epoll set until then, or 0 */
};

/* An active health check of one target (health_interval). */
struct probe {
	int kind; /* K_PROBE: first, epoll data points here */
	struct probe *next;
	struct pxy_upstream *u;  /* of the current config; cancelled on reload */
	size_t ti;               /* target index */
	int fd;
	mtls_conn *tls;
	enum { P_CONNECT, P_HS, P_SEND, P_RECV } st;
	double deadline;
	int dead;
	size_t off, len;
	char buf[512];
};

#define T_DOWN 1    /* pxy_upstream.down bits: marked down */
#define T_PROBING 2 /* a probe is in flight */

static volatile sig_atomic_t stop_requested, reload_requested;
static int ep = -1;
static struct pxy_config *current; /* new connections use this one */
static struct listener *lsn;       /* one per current->listens */
static size_t n_lsn;
static struct probe *probes, *probe_graves;
static struct conn *conns;  /* live */
static struct conn *graves; /* closed during this batch, freed after it */
static size_t n_conns;
static struct conn *rq_head, *rq_tail; /* FIFO, see the top of the file */
static size_t rq_len;

void pxy_stop(void)
{
	stop_requested = 1;
}

void pxy_reload(void)
{
	reload_requested = 1;
}

static void config_unref(struct pxy_config *cfg)
{
	if (cfg != NULL && --cfg->refs == 0) {
		pxy_admit_forget(cfg);
		pxy_config_free(cfg);
		free(cfg);
	}
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

/* With workers > 1 every worker binds its own socket to the same address
 * (SO_REUSEPORT) and the kernel spreads connections between them. */
static int reuse_port;

void pxy_set_reuse_port(int on)
{
	reuse_port = on;
}

/* What the proxy speaks to an upstream: mutual TLS only when it presents
 * a client certificate; TLS alone authenticates the upstream, not us. */
static const char *upstream_kind(const struct pxy_upstream *u)
{
	if (!u->tls)
		return "TCP";
	return u->cert != NULL ? "mTLS" : "TLS";
}

static int listen_one(struct pxy_listen *l)
{
	int one = 1;

	l->fd = socket(l->addr.sa.ss_family,
	               SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0 ||
	    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (reuse_port && setsockopt(l->fd, SOL_SOCKET, SO_REUSEPORT, &one,
	                              sizeof(one))) ||
	    bind(l->fd, (struct sockaddr *)&l->addr.sa, l->addr.len) ||
	    listen(l->fd, 512) != 0) {
		pxy_log(MTLS_LOG_ERROR, "listen %s: %s", l->addr.text,
		        strerror(errno));
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
		return -1;
	}
	pxy_log(MTLS_LOG_INFO, "listening on %s -> upstream %s (%s)%s",
	        l->addr.text, l->srv.upstream->name,
	        upstream_kind(l->srv.upstream),
	        l->n_hosts ? " and SNI hosts" : "");
	return 0;
}

int pxy_listen_all(struct pxy_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_listens; i++)
		if (!cfg->listens[i].skipped &&
		    listen_one(&cfg->listens[i]) != 0)
			return -1;
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

/* ---- run queue ------------------------------------------------------------------ */

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

static void runq_del(struct conn *c)
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

/* ---- connection end ----------------------------------------------------------- */

static void conn_unlink(struct conn *c)
{
	runq_del(c); /* a closed connection is never run again */
	pxy_admit_release(&c->ticket);
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

/* The host that judged the client's handshake (mtls_conn_host), named
 * in every line about the connection: "default" for the listen block's
 * own settings (also before a ClientHello was read). */
static const char *conn_host(const struct conn *c)
{
	const char *h = c->cl.tls ? mtls_conn_host(c->cl.tls) : NULL;

	return h ? h : "default";
}

/* The upstream of the host that judged: before a completed handshake set
 * c->u, found from the library's host decision (a handshake refused by an
 * SNI host is logged with that host's upstream, not the listener's). */
static const char *conn_upstream(const struct conn *c)
{
	const struct pxy_server *srv;

	if (c->st != S_HS_CLIENT || c->cl.tls == NULL)
		return c->u->name;
	srv = pxy_host_named(c->l, mtls_conn_host(c->cl.tls));
	return srv != NULL && srv->upstream != NULL ? srv->upstream->name
	                                            : c->u->name;
}

/* The first way the relay ended wins: who hung up first is the story,
 * what the other side did next is its consequence. */
static void note_end(struct conn *c, const char *by, const char *how)
{
	if (c->end == NULL) {
		c->end = how;
		c->end_by = by;
	}
}

/* Whether the connection did its job: bytes went both ways, and what ended
 * it was a peer closing, hanging up (a reset, as most HTTP clients do
 * after their response) or going idle, not a protocol or proxy error.
 * Before data flowed, every failure stays an error. */
static int conn_ok(const struct conn *c)
{
	int flowed = c->st == S_RELAY && c->to_up > c->pp_len &&
	             c->to_client > 0;

	return c->reason[0] == '\0' || (flowed && c->benign);
}

/* Logs the connection's one line and closes it (freed after the batch).
 * Every value a peer chose (SNI, certificate names, error texts that may
 * quote them) goes through pxy_log_value. */
static void conn_end(struct conn *c)
{
	char sni[1024], subject[1024], id[1024], reason[2048];
	const char *s = c->cl.tls ? mtls_conn_sni(c->cl.tls) : NULL;
	int ok = conn_ok(c);

	if (c->dead)
		return;
	c->dead = 1;
	pxy_log(ok ? MTLS_LOG_INFO : MTLS_LOG_WARN,
	        "conn client=%s listen=%s host=%s sni=\"%s\" subject=\"%s\" "
	        "id=\"%s\" upstream=%s target=%s bytes_to_upstream=%llu "
	        "bytes_to_client=%llu duration=%.3fs %s end=%s end_by=%s%s%s%s",
	        c->client_addr, c->l->addr.text, conn_host(c),
	        pxy_log_value(sni, sizeof(sni), s),
	        pxy_log_value(subject, sizeof(subject), c->subject),
	        pxy_log_value(id, sizeof(id), c->id),
	        conn_upstream(c), c->target ? c->target->text : "-",
	        c->to_up > c->pp_len ? c->to_up - c->pp_len : 0,
	        c->to_client, now() - c->start,
	        ok ? "status=ok" : "status=error",
	        c->end ? c->end : "error", c->end_by ? c->end_by : "proxy",
	        !c->reason[0] ? "" : ok ? " detail=\"" : " error=\"",
	        c->reason[0] ? pxy_log_value(reason, sizeof(reason), c->reason)
	                     : "",
	        c->reason[0] ? "\"" : "");
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

/* A peer that hung up: its socket was reset, or closed under our write. */
static int side_reset(const struct side *s, ssize_t rc)
{
	int err = s->tls ? (rc == MTLS_ERR_IO ? mtls_conn_errno(s->tls) : 0)
	                 : -(int)rc;

	return err == ECONNRESET || err == EPIPE;
}

static void side_fail(struct conn *c, struct side *s, ssize_t rc,
                      const char *what)
{
	const char *why = s->tls ? mtls_conn_error(s->tls) : NULL;
	int reset = side_reset(s, rc);

	note_end(c, s->who, reset ? "reset" : "error");
	c->benign = reset;
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
			note_end(c, from->who, from->eof_how);
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
	int a, b, rounds = 0;

	do {
		c->cl.want = c->up.want = 0;
		if ((a = pump(c, &c->cl, &c->up, &c->c2u, &c->to_up)) < 0)
			return;
		if ((b = pump(c, &c->up, &c->cl, &c->u2c, &c->to_client)) < 0)
			return;
		if (a || b)
			c->last_io = now();
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
		conn_end(c);
		return;
	}
	if (c->cl.eof && c->cl.shut)
		side_forget(&c->cl);
	if (c->up.eof && c->up.shut)
		side_forget(&c->up);
}

/* One turn for each connection queued before this pass, in order; those
 * that queue again wait for the next pass. */
static void runq_pass(void)
{
	size_t n = rq_len;

	while (n-- > 0 && rq_head != NULL) {
		struct conn *c = rq_head;

		runq_del(c);
		relay(c);
		if (!c->dead) {
			side_update(&c->cl);
			side_update(&c->up);
		}
	}
}

/* ---- connection set-up ---------------------------------------------------------- */

/* Queues the PROXY v2 header as the first bytes to the upstream. */
static int queue_proxy_header(struct conn *c)
{
	struct pxy_pp2_tls t = {.has_cert = c->subject[0] != '\0',
	                        .verified = c->verified,
	                        .version = mtls_conn_version(c->cl.tls),
	                        .cn = c->pp_cn, .uri = c->pp_uri};

	c->pp_len = pxy_pp2_header(c->c2u.d, BUF_SIZE,
	                           (struct sockaddr *)&c->client_sa,
	                           (struct sockaddr *)&c->local_sa, &t);
	if (c->pp_len == 0)
		return -1;
	c->c2u.off = 0;
	c->c2u.len = c->pp_len;
	return 0;
}

static void enter_relay(struct conn *c)
{
	if (c->u->proxy_protocol == 2 && queue_proxy_header(c) != 0) {
		conn_fail(c, "PROXY v2 header does not fit");
		return;
	}
	c->st = S_RELAY;
	c->last_io = now();
	pxy_log(MTLS_LOG_DEBUG, "conn client=%s host=%s: relaying to %s",
	        c->client_addr, conn_host(c), c->target->text);
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

/* Handshake flights are small writes answered by the peer: without
 * TCP_NODELAY, Nagle and delayed ACKs add ~40 ms to each handshake. */
static void nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Tries the upstream's targets in round robin order from its cursor,
 * skipping those that refuse at once; the first pending one waits for
 * EPOLLOUT.  last_err: why the previous target failed, or NULL. */
static void connect_next(struct conn *c, const char *last_err)
{
	struct pxy_upstream *u = c->u;
	size_t i, n_up = 0;

	for (i = 0; i < u->n_targets; i++)
		n_up += !(u->down[i] & T_DOWN);
	/* One cursor step per connection, then its own walk over the
	 * targets: concurrent connections moving the shared cursor must not
	 * make this one retry a dead target and skip the live ones. */
	if (c->tries == 0)
		c->first = u->next++;
	while (c->tries < u->n_targets) {
		size_t ti = (c->first + c->tries) % u->n_targets;
		const struct pxy_addr *t = &u->targets[ti];
		int fd, rc;

		c->tries++;
		/* Health checks marked it down; when all are, try them all
		 * anyway rather than refuse on a stale verdict. */
		if ((u->down[ti] & T_DOWN) && n_up > 0)
			continue;
		c->target = t;
		fd = socket(t->sa.ss_family,
		            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			conn_fail(c, "socket: %s", strerror(errno));
			return;
		}
		nodelay(fd);
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
	          last_err ? last_err : "all marked down");
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

/* Whether the client-certificate settings that judged have CN rules. */
static int has_cn_rule(const struct pxy_listen *l, const struct pxy_server *s)
{
	const struct pxy_server *auth = s->client_ca ? s : &l->srv;
	size_t i;

	for (i = 0; i < auth->n_allow; i++)
		if (auth->allow[i].kind == MTLS_ALLOW_CN)
			return 1;
	return 0;
}

/* What the connection says about its client: logged, and forwarded in
 * the PROXY v2 header.  One decision, the library's: the id is the
 * identity the policy matched (mtls_conn_peer_identity), never a "first
 * SAN" of ours.  Forwarded (see examples/mtls-proxy.conf):
 *  - the URI TLV only when that identity is one of the leaf's URI SANs
 *    (the policy decided on a URI), else not at all;
 *  - the CN only from a verified leaf, and when CN rules judged, only if
 *    the CN is the identity they matched.
 * An unverified certificate (client_auth optional) forwards neither. */
static void note_peer(struct conn *c, const struct pxy_server *srv)
{
	mtls_peer peer;
	const char *id;
	int rc, i;

	memset(&peer, 0, sizeof(peer));
	rc = mtls_verify_peer(c->cl.tls, &peer);
	c->verified = rc == 0;
	id = c->verified ? mtls_conn_peer_identity(c->cl.tls) : NULL;
	if (id != NULL)
		snprintf(c->id, sizeof(c->id), "%s", id);
	if (!peer.has_cert)
		return;
	snprintf(c->subject, sizeof(c->subject), "%s", peer.subject);
	if (rc != 0) /* client_auth optional: say what it is worth */
		snprintf(c->subject + strlen(c->subject),
		         sizeof(c->subject) - strlen(c->subject),
		         " (unverified: %s)", mtls_strerror(rc));
	for (i = 0; id != NULL && i < peer.n_uri && i < MTLS_PEER_MAX_SANS; i++)
		if (strcmp(peer.uri[i], id) == 0) {
			snprintf(c->pp_uri, sizeof(c->pp_uri), "%s", id);
			break;
		}
	if (c->verified && peer.cn[0] != '\0' &&
	    (!has_cn_rule(c->l, srv) || (id != NULL && strcmp(id, peer.cn) == 0)))
		snprintf(c->pp_cn, sizeof(c->pp_cn), "%s", peer.cn);
}

static void client_handshake(struct conn *c)
{
	const struct pxy_server *srv;
	const char *host;
	int rc = mtls_handshake(c->cl.tls);

	c->cl.want = 0;
	if (is_want(rc)) {
		want(&c->cl, rc);
		return;
	}
	if (rc != 0) {
		side_fail(c, &c->cl, rc, "TLS handshake");
		return;
	}
	pxy_admit_hs_done(&c->ticket);
	/* Routed by the host that judged the handshake, nothing else. */
	host = mtls_conn_host(c->cl.tls);
	if ((srv = pxy_host_named(c->l, host)) == NULL) {
		conn_fail(c, "no host block for the host that judged (%s)",
		          host);
		return;
	}
	c->u = srv->upstream;
	note_peer(c, srv);
	c->cl.want = 0; /* quiet until the upstream is ready */
	connect_next(c, NULL);
}

static void conn_step(struct conn *c, struct side *s, unsigned events)
{
	/* Queued (relaying): its turn comes in the run queue's pass, where
	 * errors and hang-ups show in its reads and writes. */
	if (c->queued)
		return;
	/* A hang-up on a socket we asked nothing of: the peer is gone. */
	if (s->events == 0 && (events & (EPOLLERR | EPOLLHUP))) {
		if (s->eof && s->shut) {
			side_forget(s);
			return;
		}
		note_end(c, s->who, "reset");
		c->benign = 1; /* an error only before data flowed */
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
		struct sockaddr_storage sa = {0};
		socklen_t len = sizeof(sa);
		struct pxy_ticket t;
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
		if (pxy_admit(current, l, &sa, n_conns, &t) != 0) {
			close(fd); /* over a limit: at once (admit.h) */
			continue;
		}
		nodelay(fd);
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			pxy_admit_release(&t);
			close(fd);
			pxy_log(MTLS_LOG_ERROR, "accept: out of memory");
			return;
		}
		c->ticket = t;
		c->cfg = current;
		current->refs++;
		c->l = l;
		c->u = l->srv.upstream;
		memcpy(&c->client_sa, &sa, sizeof(sa));
		len = sizeof(c->local_sa);
		if (getsockname(fd, (struct sockaddr *)&c->local_sa, &len))
			memset(&c->local_sa, 0, sizeof(c->local_sa));
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
			if (t - c->last_io > c->u->idle_timeout) {
				note_end(c, "proxy", "timeout");
				c->benign = 1;
				conn_fail(c, "idle for %d s",
				          c->u->idle_timeout);
			}
			break;
		}
	}
}

static void bury(void)
{
	while (graves != NULL) {
		struct conn *c = graves;
		graves = c->next;
		config_unref(c->cfg);
		free(c);
	}
	while (probe_graves != NULL) {
		struct probe *pr = probe_graves;
		probe_graves = pr->next;
		free(pr);
	}
}

/* ---- health checks ---------------------------------------------------------- */

static void probe_end(struct probe *pr, const char *why)
{
	struct pxy_upstream *u = pr->u;
	int was_down = u->down[pr->ti] & T_DOWN;

	if (pr->dead)
		return;
	pr->dead = 1;
	if (why != NULL && !was_down)
		pxy_log(MTLS_LOG_WARN, "upstream %s: target %s is down: %s",
		        u->name, u->targets[pr->ti].text, why);
	else if (why == NULL && was_down)
		pxy_log(MTLS_LOG_INFO, "upstream %s: target %s is up again",
		        u->name, u->targets[pr->ti].text);
	else
		pxy_log(MTLS_LOG_DEBUG, "upstream %s: target %s check: %s",
		        u->name, u->targets[pr->ti].text, why ? why : "ok");
	u->down[pr->ti] = why != NULL ? T_DOWN : 0; /* and not probing */
	mtls_conn_free(pr->tls);
	pr->tls = NULL;
	if (pr->fd >= 0)
		close(pr->fd);
	pr->fd = -1;
}

static void probe_watch(struct probe *pr, int rc)
{
	struct epoll_event ev = {.events = rc == MTLS_WANT_READ ? EPOLLIN
	                                                        : EPOLLOUT,
	                         .data.ptr = pr};

	epoll_ctl(ep, EPOLL_CTL_MOD, pr->fd, &ev);
}

/* 1 done, 0 waiting, -1 failed (why set). */
static int probe_io(struct probe *pr, int writing, const char **why)
{
	ssize_t n;

	for (;;) {
		if (writing && pr->off == pr->len)
			return 1;
		if (pr->tls != NULL)
			n = writing ? mtls_write(pr->tls, pr->buf + pr->off,
			                         pr->len - pr->off)
			            : mtls_read(pr->tls, pr->buf + pr->len,
			                        sizeof(pr->buf) - 1 - pr->len);
		else {
			n = writing ? send(pr->fd, pr->buf + pr->off,
			                   pr->len - pr->off, MSG_NOSIGNAL)
			            : recv(pr->fd, pr->buf + pr->len,
			                   sizeof(pr->buf) - 1 - pr->len, 0);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				n = writing ? MTLS_WANT_WRITE : MTLS_WANT_READ;
			else if (n < 0)
				n = MTLS_ERR_IO;
		}
		if (is_want(n)) {
			probe_watch(pr, (int)n);
			return 0;
		}
		if (n < 0 || (n == 0 && !writing)) {
			*why = n == 0 || n == MTLS_ERR_CLOSED
			           ? "closed before an HTTP status"
			           : pr->tls && mtls_conn_error(pr->tls)
			                 ? mtls_conn_error(pr->tls)
			                 : strerror(errno);
			return -1;
		}
		if (writing) {
			pr->off += (size_t)n;
			continue;
		}
		pr->len += (size_t)n;
		pr->buf[pr->len] = '\0';
		if (strstr(pr->buf, "\r\n") != NULL ||
		    pr->len == sizeof(pr->buf) - 1)
			return 1;
	}
}

static void probe_step(struct probe *pr)
{
	struct pxy_upstream *u = pr->u;
	const char *why = NULL;
	int rc, err = 0, code = 0;
	socklen_t len = sizeof(err);

	switch (pr->st) {
	case P_CONNECT:
		if (getsockopt(pr->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err != 0) {
			probe_end(pr, strerror(err));
			return;
		}
		if (u->tls) {
			pr->tls = mtls_conn_new(u->ctx, pr->fd,
			                        u->targets[pr->ti].host);
			if (pr->tls == NULL) {
				probe_end(pr, "out of memory");
				return;
			}
		}
		pr->st = P_HS;
		/* fall through */
	case P_HS:
		if (pr->tls != NULL) {
			rc = mtls_handshake(pr->tls);
			if (is_want(rc)) {
				probe_watch(pr, rc);
				return;
			}
			if (rc != 0) {
				probe_end(pr, mtls_conn_error(pr->tls)
				                  ? mtls_conn_error(pr->tls)
				                  : mtls_strerror(rc));
				return;
			}
		}
		if (u->health_get == NULL) {
			probe_end(pr, NULL);
			return;
		}
		pr->len = (size_t)snprintf(pr->buf, sizeof(pr->buf),
		                           "GET %s HTTP/1.0\r\nHost: %s\r\n"
		                           "User-Agent: mtls-proxy\r\n"
		                           "Connection: close\r\n\r\n",
		                           u->health_get,
		                           u->server_name
		                               ? u->server_name
		                               : u->targets[pr->ti].host);
		if (pr->len >= sizeof(pr->buf)) {
			probe_end(pr, "request too long");
			return;
		}
		pr->off = 0;
		pr->st = P_SEND;
		/* fall through */
	case P_SEND:
		if ((rc = probe_io(pr, 1, &why)) <= 0) {
			if (rc < 0)
				probe_end(pr, why);
			return;
		}
		pr->st = P_RECV;
		pr->len = 0;
		/* fall through */
	case P_RECV:
		if ((rc = probe_io(pr, 0, &why)) <= 0) {
			if (rc < 0)
				probe_end(pr, why);
			return;
		}
		if (sscanf(pr->buf, "HTTP/%*d.%*d %d", &code) != 1) {
			probe_end(pr, "not an HTTP response");
			return;
		}
		if (code < 200 || code > 299) {
			char msg[64];

			snprintf(msg, sizeof(msg), "GET %.20s: HTTP status %d",
			         u->health_get, code);
			probe_end(pr, msg);
			return;
		}
		probe_end(pr, NULL);
		return;
	}
}

static void probe_start(struct pxy_upstream *u, size_t ti, double t)
{
	const struct pxy_addr *a = &u->targets[ti];
	struct epoll_event ev = {.events = EPOLLOUT};
	struct probe *pr = calloc(1, sizeof(*pr));

	if (pr == NULL)
		return;
	*pr = (struct probe){.kind = K_PROBE, .u = u, .ti = ti, .fd = -1,
	                     .deadline = t + u->connect_timeout};
	pr->next = probes;
	probes = pr;
	u->down[ti] |= T_PROBING;
	pr->fd = socket(a->sa.ss_family,
	                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (pr->fd < 0) {
		probe_end(pr, strerror(errno));
		return;
	}
	if (connect(pr->fd, (const struct sockaddr *)&a->sa, a->len) != 0 &&
	    errno != EINPROGRESS) {
		probe_end(pr, strerror(errno));
		return;
	}
	ev.data.ptr = pr;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, pr->fd, &ev) != 0)
		probe_end(pr, strerror(errno));
}

/* Moves finished checks to their graves (freed after the batch). */
static void probes_reap(double t)
{
	struct probe **pp = &probes;

	while (*pp != NULL) {
		struct probe *pr = *pp;

		if (!pr->dead && t > pr->deadline)
			probe_end(pr, "timed out");
		if (pr->dead) {
			*pp = pr->next;
			pr->next = probe_graves;
			probe_graves = pr;
		} else {
			pp = &pr->next;
		}
	}
}

/* Times out late checks and starts those that are due. */
static void health_tick(double t)
{
	size_t i, j;

	probes_reap(t);
	for (i = 0; current != NULL && i < current->n_upstreams; i++) {
		struct pxy_upstream *u = &current->upstreams[i];

		if (u->health_interval == 0 || u->skipped ||
		    t < u->health_next)
			continue;
		u->health_next = t + u->health_interval;
		for (j = 0; j < u->n_targets; j++)
			if (!(u->down[j] & T_PROBING))
				probe_start(u, j, t);
	}
}

/* On reload: the checks in flight belong to the old upstreams. */
static void health_cancel(void)
{
	struct probe *pr;

	for (pr = probes; pr != NULL; pr = pr->next)
		if (!pr->dead) {
			pr->dead = 1;
			mtls_conn_free(pr->tls);
			pr->tls = NULL;
			if (pr->fd >= 0)
				close(pr->fd);
			pr->fd = -1;
		}
	probes_reap(0);
}

/* ---- listeners and reload ----------------------------------------------------- */

static void stop_listening(struct pxy_config *cfg)
{
	size_t i;

	for (i = 0; cfg != NULL && i < cfg->n_listens; i++) {
		if (cfg->listens[i].fd >= 0)
			close(cfg->listens[i].fd);
		cfg->listens[i].fd = -1;
	}
}

static void listeners_detach(void)
{
	size_t i;

	for (i = 0; i < n_lsn; i++)
		if (lsn[i].paused_until == 0 && lsn[i].l->fd >= 0)
			epoll_ctl(ep, EPOLL_CTL_DEL, lsn[i].l->fd, NULL);
	free(lsn);
	lsn = NULL;
	n_lsn = 0;
}

static int listeners_attach(struct pxy_config *cfg)
{
	size_t i;

	if ((lsn = calloc(cfg->n_listens, sizeof(*lsn))) == NULL) {
		pxy_log(MTLS_LOG_ERROR, "out of memory");
		return -1;
	}
	n_lsn = cfg->n_listens;
	for (i = 0; i < cfg->n_listens; i++) {
		struct epoll_event ev = {.events = EPOLLIN,
		                         .data.ptr = &lsn[i]};
		lsn[i] = (struct listener){.kind = K_LISTEN,
		                          .l = &cfg->listens[i]};
		if (cfg->listens[i].fd < 0) /* skipped at start */
			continue;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cfg->listens[i].fd, &ev)) {
			pxy_log(MTLS_LOG_ERROR, "epoll: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

static struct pxy_listen *same_listen(struct pxy_config *old,
                                      const struct pxy_listen *l)
{
	size_t i;

	for (i = 0; i < old->n_listens; i++) {
		struct pxy_listen *o = &old->listens[i];

		if (o->fd >= 0 && o->addr.len == l->addr.len &&
		    memcmp(&o->addr.sa, &l->addr.sa, l->addr.len) == 0)
			return o;
	}
	return NULL;
}

/* Opens n's listeners whose address old does not have; keeps the others'
 * sockets (moved from old), then closes what old has left.  On failure n
 * owns no socket and old is untouched. */
static int listeners_move(struct pxy_config *n, struct pxy_config *old,
                          size_t *kept, size_t *opened, size_t *closed)
{
	size_t i;

	for (i = 0; i < n->n_listens; i++) {
		if (same_listen(old, &n->listens[i]) != NULL)
			continue;
		if (listen_one(&n->listens[i]) != 0) {
			stop_listening(n);
			return -1;
		}
		(*opened)++;
	}
	for (i = 0; i < n->n_listens; i++) {
		struct pxy_listen *o;

		if (n->listens[i].fd >= 0)
			continue;
		o = same_listen(old, &n->listens[i]);
		n->listens[i].fd = o->fd;
		o->fd = -1;
		pxy_admit_share(&n->listens[i], o); /* its connections too */
		(*kept)++;
	}
	for (i = 0; i < old->n_listens; i++)
		if (old->listens[i].fd >= 0) {
			pxy_log(MTLS_LOG_INFO, "no longer listening on %s",
			        old->listens[i].addr.text);
			(*closed)++;
		}
	stop_listening(old);
	return 0;
}

/* Health verdicts survive a reload for targets that stay. */
static void health_carry(struct pxy_config *n, const struct pxy_config *old)
{
	size_t i, j, k, m;

	for (i = 0; i < n->n_upstreams; i++)
		for (j = 0; j < old->n_upstreams; j++) {
			struct pxy_upstream *a = &n->upstreams[i];
			const struct pxy_upstream *b = &old->upstreams[j];

			if (strcmp(a->name, b->name) != 0 ||
			    a->health_interval == 0)
				continue;
			for (k = 0; k < a->n_targets; k++)
				for (m = 0; m < b->n_targets; m++)
					if (strcmp(a->targets[k].text,
					           b->targets[m].text) == 0)
						a->down[k] = b->down[m] & T_DOWN;
		}
}

/* SIGHUP: everything is read and checked into a new generation; any
 * failure leaves the current one serving, untouched. */
static void reload(void)
{
	struct pxy_config *n = calloc(1, sizeof(*n)), *old = current;
	size_t kept = 0, opened = 0, closed = 0;
	char err[1024];

	pxy_log(MTLS_LOG_INFO, "SIGHUP: reloading %s", old->path);
	if (n == NULL) {
		pxy_log(MTLS_LOG_ERROR, "reload failed: out of memory; still "
		        "serving the previous configuration");
		return;
	}
	if (pxy_config_load(n, old->path, NULL, err, sizeof(err)) != 0) {
		free(n);
		goto fail;
	}
	/* A reload is all or nothing: any problem keeps the current one. */
	if (pxy_tls_setup(n, NULL, err, sizeof(err)) != 0) {
		pxy_config_free(n);
		free(n);
		goto fail;
	}
	listeners_detach();
	if (listeners_move(n, old, &kept, &opened, &closed) != 0) {
		pxy_config_free(n);
		free(n);
		snprintf(err, sizeof(err), "cannot listen (see above)");
		listeners_attach(old);
		goto fail;
	}
	health_cancel();
	health_carry(n, old);
	pxy_log_set_level(n->log_level);
	n->refs = 1;
	current = n;
	listeners_attach(n);
	pxy_log(MTLS_LOG_INFO, "reloaded %s: %zu listener(s) kept, %zu "
	        "opened, %zu closed; %zu connection(s) finish on the "
	        "previous configuration", n->path, kept, opened, closed,
	        n_conns);
	config_unref(old); /* freed once its last connection ends */
	return;
fail:
	pxy_log(MTLS_LOG_ERROR, "reload failed: %s; still serving the "
	        "previous configuration", err);
}

int pxy_run(struct pxy_config *cfg)
{
	struct epoll_event evs[128];
	double stop_at = 0;
	size_t i;
	int rc = -1;

	current = cfg;
	cfg->refs = 1;
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		pxy_log(MTLS_LOG_ERROR, "epoll: %s", strerror(errno));
		goto out;
	}
	if (listeners_attach(cfg) != 0)
		goto out;
	for (;;) {
		int n = epoll_wait(ep, evs, 128, rq_head != NULL ? 0 : 1000);
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
			} else if (*kind == K_PROBE) {
				struct probe *pr = (struct probe *)kind;
				if (!pr->dead)
					probe_step(pr);
			} else {
				struct side *s = (struct side *)kind;
				if (!s->c->dead)
					conn_step(s->c, s, evs[k].events);
			}
		}
		runq_pass();
		t = now();
		check_timers(t);
		for (i = 0; stop_at == 0 && i < n_lsn; i++)
			listener_resume(&lsn[i], t);
		if (stop_at == 0)
			health_tick(t);
		bury();
		if (reload_requested && stop_at == 0 && !stop_requested) {
			reload_requested = 0;
			reload();
		}
		if (stop_requested && stop_at == 0) {
			pxy_log(MTLS_LOG_INFO, "stopping: %zu connection(s) "
			        "open, waiting up to %.0f s", n_conns,
			        STOP_GRACE);
			listeners_detach();
			stop_listening(current);
			health_cancel();
			stop_at = t + STOP_GRACE;
		}
		if (stop_at != 0 && (n_conns == 0 || t >= stop_at))
			break;
	}
	while (conns != NULL)
		conn_fail(conns, "proxy shutting down");
	rc = 0;
out:
	listeners_detach();
	health_cancel();
	bury();
	stop_listening(current);
	config_unref(current);
	current = NULL;
	if (ep >= 0)
		close(ep);
	ep = -1;
	return rc;
}
