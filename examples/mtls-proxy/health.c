/*
 * health.c - active health checks of upstream targets (health_interval,
 * health_get; see health.h), run from the proxy's event loop.
 */
#include "health.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

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

static struct probe *probes, *probe_graves;

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

	epoll_ctl(pxy_ep, EPOLL_CTL_MOD, pr->fd, &ev);
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
		if (pxy_is_want(n)) {
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

void pxy_health_event(struct probe *pr)
{
	struct pxy_upstream *u = pr->u;
	const char *why = NULL;
	int rc, err = 0, code = 0;
	socklen_t len = sizeof(err);

	if (pr->dead)
		return;
	switch (pr->st) {
	case P_CONNECT:
		if (getsockopt(pr->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err != 0) {
			probe_end(pr, strerror(err));
			return;
		}
		if (u->tls) {
			pr->tls = mtls_conn_new(pxy_target_ctx(u, pr->ti), pr->fd,
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
			if (pxy_is_want(rc)) {
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
		                           pxy_target_name(u, pr->ti));
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
	if (epoll_ctl(pxy_ep, EPOLL_CTL_ADD, pr->fd, &ev) != 0)
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
void pxy_health_tick(double t)
{
	size_t i, j;

	probes_reap(t);
	for (i = 0; pxy_current != NULL && i < pxy_current->n_upstreams; i++) {
		struct pxy_upstream *u = &pxy_current->upstreams[i];

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
void pxy_health_cancel(void)
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

void pxy_health_carry(struct pxy_config *n, const struct pxy_config *old)
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

void pxy_health_bury(void)
{
	while (probe_graves != NULL) {
		struct probe *pr = probe_graves;
		probe_graves = pr->next;
		free(pr);
	}
}
