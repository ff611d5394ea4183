/*
 * conn.c - the life of a proxied connection (see conn.h): accepted,
 * judged by the client handshake, routed by the host that judged it,
 * connected to a target of that host's upstream (round robin, skipping
 * targets marked down), its upstream handshake, its deadlines, and its
 * end with one log line.
 */
#include "conn.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "proxyproto.h"
#include "timer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static struct conn *conns;  /* live */
static struct conn *graves; /* closed during this batch, freed after it */
static size_t n_conns;

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

/* ---- connection end ----------------------------------------------------------- */

static void conn_unlink(struct conn *c)
{
	pxy_runq_del(c); /* a closed connection is never run again */
	pxy_timer_del(&c->timer);
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

/* Why the client handshake failed, as a metrics reason index: the
 * library's reason (mtls_conn_reason) when it has one, else why the
 * proxy ended it (timeout, the client hanging up, shutdown), else an
 * internal failure (out of memory, epoll).  The one place that derives
 * it. */
static int conn_reason_index(const struct conn *c)
{
	mtls_reason r = c->cl.tls ? mtls_conn_reason(c->cl.tls)
	                          : MTLS_REASON_NONE;

	if (r != MTLS_REASON_NONE)
		return (int)r < MTLS_REASON_COUNT ? (int)r : MX_R_UNKNOWN;
	return c->hs_why != 0 ? c->hs_why : (int)MTLS_REASON_INTERNAL;
}

/* The client handshake ended: counted once, on the host that judged. */
static void count_handshake(struct conn *c, int ok)
{
	if (c->hs_counted)
		return;
	c->hs_counted = 1;
	pxy_metrics_handshake(c->l, conn_host(c), ok,
	                      ok ? 0 : conn_reason_index(c));
}

/* The first way the relay ended wins: who hung up first is the story,
 * what the other side did next is its consequence. */
void pxy_conn_note_end(struct conn *c, const char *by, const char *how)
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

	return c->reason == NULL || (flowed && c->benign);
}

/* Logs the connection's one line and closes it (freed after the batch).
 * Every value a peer chose (SNI, certificate names, error texts that may
 * quote them) goes through pxy_log_value. */
void pxy_conn_end(struct conn *c)
{
	char sni[1024], subject[1024], id[8300], reason[2048];
	const char *s = c->cl.tls ? mtls_conn_sni(c->cl.tls) : NULL;
	int ok = conn_ok(c);

	if (c->dead)
		return;
	c->dead = 1;
	count_handshake(c, 0); /* when it ended before its handshake did */
	pxy_metrics_conn_end(c->l, conn_host(c));
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
	        c->to_client, pxy_now() - c->start,
	        ok ? "status=ok" : "status=error",
	        c->end ? c->end : "error", c->end_by ? c->end_by : "proxy",
	        !c->reason ? "" : ok ? " detail=\"" : " error=\"",
	        c->reason ? pxy_log_value(reason, sizeof(reason), c->reason)
	                  : "",
	        c->reason ? "\"" : "");
	pxy_side_close(&c->cl);
	pxy_side_close(&c->up);
	pxy_buf_release(&c->c2u);
	pxy_buf_release(&c->u2c);
	conn_unlink(c);
}

static void conn_fail(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The reason kept when there is no memory for the real one. */
static const char oom_reason[] = "out of memory (for the reason of a failure)";

static void conn_fail(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->reason == NULL) { /* the first reason is the real one */
		char buf[512];

		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		if ((c->reason = strdup(buf)) == NULL)
			c->reason = (char *)oom_reason;
	}
	pxy_conn_end(c);
}

/* When the connection's current deadline falls: the handshake's or the
 * connect's, or while relaying the idle timeout counted from the last
 * byte moved (which moves it later without touching the heap). */
static double conn_due(const struct conn *c)
{
	return c->st == S_RELAY ? c->last_io + c->u->idle_timeout
	                        : c->deadline;
}

/* Re-keys the connection's timer after its deadline moved (earlier or
 * later). */
static void conn_timer(struct conn *c)
{
	if (pxy_timer_set(&c->timer, conn_due(c)) != 0)
		conn_fail(c, "out of memory for a timer");
}

void pxy_conn_abort(struct conn *c, const char *why)
{
	conn_fail(c, "%s", why);
}

/* A peer that hung up: its socket was reset, or closed under our write. */
static int side_reset(const struct side *s, ssize_t rc)
{
	int err = s->tls ? (rc == MTLS_ERR_IO ? mtls_conn_errno(s->tls) : 0)
	                 : -(int)rc;

	return err == ECONNRESET || err == EPIPE;
}

void pxy_side_fail(struct conn *c, struct side *s, ssize_t rc,
                      const char *what)
{
	const char *why = s->tls ? mtls_conn_error(s->tls) : NULL;
	int reset = side_reset(s, rc);

	pxy_conn_note_end(c, s->who, reset ? "reset" : "error");
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

/* ---- connection set-up ---------------------------------------------------------- */

/* Queues the PROXY v2 header as the first bytes to the upstream. */
static int queue_proxy_header(struct conn *c)
{
	struct pxy_pp2_tls t = {.has_cert = c->subject != NULL &&
	                                    c->subject[0] != '\0',
	                        .verified = c->verified,
	                        .version = mtls_conn_version(c->cl.tls),
	                        .cn = c->pp_cn, .uri = c->pp_uri};

	if (pxy_buf_take(&c->c2u) != 0) {
		conn_fail(c, "out of memory for a relay buffer");
		return -1;
	}
	c->pp_len = pxy_pp2_header(c->c2u.d, BUF_SIZE,
	                           &c->client_sa.sa, &c->local_sa.sa, &t);
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
	c->last_io = pxy_now();
	conn_timer(c);
	if (c->dead)
		return;
	pxy_log(MTLS_LOG_DEBUG, "conn client=%s host=%s: relaying to %s",
	        c->client_addr, conn_host(c), c->target->text);
	pxy_relay(c);
}

static void upstream_handshake(struct conn *c)
{
	int rc = mtls_handshake(c->up.tls);

	c->up.want = 0;
	if (pxy_is_want(rc)) {
		pxy_side_want(&c->up, rc);
		return;
	}
	if (rc != 0) {
		pxy_side_fail(c, &c->up, rc, "TLS handshake");
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
	/* The target's host is the name checked unless a server_name (the
	 * target's or the upstream's, set on the context) overrides it; a
	 * target with settings of its own has its own context. */
	c->up.tls = mtls_conn_new(pxy_target_ctx(c->u, (size_t)(c->target -
	                                                   c->u->targets)),
	                          c->up.fd, c->target->host);
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
		if (pxy_side_register(&c->up, EPOLLOUT) != 0) {
			conn_fail(c, "epoll: %s", strerror(errno));
			return;
		}
		c->st = S_CONNECT;
		c->deadline = pxy_now() + u->connect_timeout;
		conn_timer(c);
		if (c->dead)
			return;
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
	pxy_side_close(&c->up);
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
	int rc, i, n_uri;

	memset(&peer, 0, sizeof(peer));
	rc = mtls_verify_peer(c->cl.tls, &peer);
	c->verified = rc == 0;
	id = c->verified ? mtls_conn_peer_identity(c->cl.tls) : NULL;
	c->id = id; /* whole, however long */
	if (!peer.has_cert)
		return;
	{
		char subject[256];
		size_t len;

		snprintf(subject, sizeof(subject), "%s", peer.subject);
		len = strlen(subject);
		if (rc != 0) /* client_auth optional: say what it is worth */
			snprintf(subject + len, sizeof(subject) - len,
			         " (unverified: %s)", mtls_strerror(rc));
		/* out of memory: "-" in the log line, no PROXY v2 TLS facts */
		c->subject = strdup(subject);
	}
	n_uri = mtls_conn_peer_san_count(c->cl.tls, MTLS_SAN_URI);
	for (i = 0; id != NULL && i < n_uri; i++) {
		const char *u = mtls_conn_peer_san(c->cl.tls, MTLS_SAN_URI, i);

		if (u != NULL && strcmp(u, id) == 0) {
			c->pp_uri = id;
			break;
		}
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
	if (pxy_is_want(rc)) {
		pxy_side_want(&c->cl, rc);
		return;
	}
	if (rc != 0) {
		pxy_side_fail(c, &c->cl, rc, "TLS handshake");
		return;
	}
	pxy_admit_hs_done(&c->ticket);
	count_handshake(c, 1);
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

void pxy_conn_event(struct side *s, unsigned events)
{
	struct conn *c = s->c;

	if (c->dead)
		return;
	/* Queued (relaying): its turn comes in the run queue's pass, where
	 * errors and hang-ups show in its reads and writes. */
	if (c->queued)
		return;
	/* A hang-up on a socket we asked nothing of: the peer is gone. */
	if (s->events == 0 && (events & (EPOLLERR | EPOLLHUP))) {
		if (s->eof && s->shut) {
			pxy_side_forget(s);
			return;
		}
		pxy_conn_note_end(c, s->who, "reset");
		c->benign = 1; /* an error only before data flowed */
		c->hs_why = MTLS_REASON_CLOSED;
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
		pxy_relay(c);
		break;
	}
	if (!c->dead) {
		pxy_side_update(&c->cl);
		pxy_side_update(&c->up);
	}
}


/* ---- accept ------------------------------------------------------------------ */

void pxy_conn_start(struct pxy_listen *l, int fd,
                    const struct sockaddr_storage *sa,
                    struct pxy_ticket *t)
{
	struct conn *c;
	socklen_t len;

	nodelay(fd);
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		pxy_admit_release(t);
		close(fd);
		pxy_log(MTLS_LOG_ERROR, "accept: out of memory");
		return;
	}
	c->ticket = *t;
	c->cfg = pxy_current;
	pxy_current->refs++;
	c->l = l;
	c->u = l->srv.upstream;
	if (sa->ss_family == AF_INET)
		memcpy(&c->client_sa.in, sa, sizeof(c->client_sa.in));
	else if (sa->ss_family == AF_INET6)
		memcpy(&c->client_sa.in6, sa, sizeof(c->client_sa.in6));
	len = sizeof(c->local_sa);
	if (getsockname(fd, &c->local_sa.sa, &len) || len > sizeof(c->local_sa))
		memset(&c->local_sa, 0, sizeof(c->local_sa));
	c->cl = (struct side){.kind = K_SIDE, .c = c, .who = "client",
	                      .fd = fd};
	c->up = (struct side){.kind = K_SIDE, .c = c, .who = "upstream",
	                      .fd = -1};
	c->start = pxy_now();
	c->deadline = c->start + l->handshake_timeout;
	addr_text(sa, c->client_addr, sizeof(c->client_addr));
	c->next = conns;
	if (conns)
		conns->prev = c;
	conns = c;
	n_conns++;
	pxy_metrics_conn_open(l);
	c->cl.tls = mtls_conn_new(l->ctx, fd, NULL);
	if (c->cl.tls == NULL) {
		conn_fail(c, "out of memory");
		return;
	}
	conn_timer(c);
	if (c->dead)
		return;
	if (pxy_side_register(&c->cl, EPOLLIN) != 0)
		conn_fail(c, "epoll: %s", strerror(errno));
}

/* ---- timers and the end of a batch ----------------------------------------------- */

/* Only the connections whose deadline came are looked at: an idle timer
 * found pushed back by traffic is re-keyed, the others end. */
void pxy_conn_timers(double t)
{
	struct pxy_timer *tm;

	while ((tm = pxy_timer_due(t)) != NULL) {
		struct conn *c = (struct conn *)(void *)((char *)tm -
		                 offsetof(struct conn, timer));

		if (conn_due(c) > t) {
			pxy_timer_set(tm, conn_due(c)); /* no allocation */
			continue;
		}
		switch (c->st) {
		case S_HS_CLIENT:
			c->hs_why = MX_R_TIMEOUT;
			conn_fail(c, "client: TLS handshake timed out "
			             "after %d s", c->l->handshake_timeout);
			break;
		case S_CONNECT:
		case S_HS_UP:
			conn_fail(c, "upstream %s: %s timed out after "
			             "%d s", c->target->text,
			          c->st == S_CONNECT ? "connect"
			                             : "TLS handshake",
			          c->u->connect_timeout);
			break;
		case S_RELAY:
			pxy_conn_note_end(c, "proxy", "timeout");
			c->benign = 1;
			conn_fail(c, "idle for %d s", c->u->idle_timeout);
			break;
		}
	}
}

size_t pxy_conn_count(void)
{
	return n_conns;
}

void pxy_conn_close_all(const char *why)
{
	while (conns != NULL) {
		conns->hs_why = MTLS_REASON_ABANDONED;
		conn_fail(conns, "%s", why);
	}
}

void pxy_conn_bury(void)
{
	while (graves != NULL) {
		struct conn *c = graves;
		graves = c->next;
		pxy_config_unref(c->cfg);
		free(c->subject);
		if (c->reason != oom_reason)
			free(c->reason);
		free(c);
	}
}
