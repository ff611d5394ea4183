/*
 * listen.c - the listening sockets (see listen.h): opened at start, kept
 * across reloads when their address stays, paused for a second when the
 * process runs out of file descriptors, and accepting under the limits
 * of admit.h.
 */
#include "listen.h"
#include "conn.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct listener {
	int kind; /* K_LISTEN */
	struct pxy_listen *l;
	double paused_until; /* out of the epoll set until then, or 0 */
};

static struct listener *lsn; /* one per pxy_current->listens */
static size_t n_lsn;

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

/* ---- accept, timers, loop --------------------------------------------------------- */

/* Out of file descriptors: a level-triggered listener would wake the
 * loop at once, forever.  Stop listening for a second instead. */
static void listener_pause(struct listener *ls)
{
	epoll_ctl(pxy_ep, EPOLL_CTL_DEL, ls->l->fd, NULL);
	ls->paused_until = pxy_now() + 1.0;
	pxy_log(MTLS_LOG_ERROR, "accept on %s: %s; pausing for 1 s",
	        ls->l->addr.text, strerror(errno));
}

static void listener_resume(struct listener *ls, double t)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ls};

	if (ls->paused_until == 0 || t < ls->paused_until || ls->l->fd < 0)
		return;
	if (epoll_ctl(pxy_ep, EPOLL_CTL_ADD, ls->l->fd, &ev) == 0)
		ls->paused_until = 0;
}


void pxy_listener_event(struct listener *ls)
{
	struct pxy_listen *l = ls->l;

	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage sa = {0};
		socklen_t len = sizeof(sa);
		struct pxy_ticket t;
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
		if (pxy_admit(pxy_current, l, &sa, pxy_conn_count(), &t) != 0) {
			close(fd); /* over a limit: at once (admit.h) */
			continue;
		}
		pxy_conn_start(l, fd, &sa, &t);
	}
}

void pxy_listeners_resume(double t)
{
	size_t i;

	for (i = 0; i < n_lsn; i++)
		listener_resume(&lsn[i], t);
}

/* ---- listeners and reload ----------------------------------------------------- */

void pxy_stop_listening(struct pxy_config *cfg)
{
	size_t i;

	for (i = 0; cfg != NULL && i < cfg->n_listens; i++) {
		if (cfg->listens[i].fd >= 0)
			close(cfg->listens[i].fd);
		cfg->listens[i].fd = -1;
	}
}

void pxy_listeners_detach(void)
{
	size_t i;

	for (i = 0; i < n_lsn; i++)
		if (lsn[i].paused_until == 0 && lsn[i].l->fd >= 0)
			epoll_ctl(pxy_ep, EPOLL_CTL_DEL, lsn[i].l->fd, NULL);
	free(lsn);
	lsn = NULL;
	n_lsn = 0;
}

int pxy_listeners_attach(struct pxy_config *cfg)
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
		if (epoll_ctl(pxy_ep, EPOLL_CTL_ADD, cfg->listens[i].fd, &ev)) {
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
int pxy_listeners_move(struct pxy_config *n, struct pxy_config *old,
                          size_t *kept, size_t *opened, size_t *closed)
{
	size_t i;

	for (i = 0; i < n->n_listens; i++) {
		if (same_listen(old, &n->listens[i]) != NULL)
			continue;
		if (listen_one(&n->listens[i]) != 0) {
			pxy_stop_listening(n);
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
	pxy_stop_listening(old);
	return 0;
}

