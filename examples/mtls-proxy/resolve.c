/*
 * resolve.c - re-resolution of upstream targets given by name (resolve.h).
 *
 * One job per target in flight at most.  A job is shared by the loop and
 * its thread, each holding a reference; the thread only writes the answer
 * and sets `done`, the loop only reads it after seeing `done`, and whoever
 * drops the last reference frees the job.  So a reload or a stop never
 * waits for a slow resolver: the configuration forgets its jobs, and each
 * thread frees its own when getaddrinfo returns.
 */
#include "resolve.h"
#include "log.h"

#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pxy_rjob {
	atomic_int refs;
	atomic_int done;
	char host[256], port[8];
	int rc;                      /* getaddrinfo's result */
	struct sockaddr_storage sa;
	socklen_t len;
};

static void job_unref(struct pxy_rjob *j)
{
	if (atomic_fetch_sub(&j->refs, 1) == 1)
		free(j);
}

static void *job_run(void *arg)
{
	struct pxy_rjob *j = arg;
	struct addrinfo hints, *res = NULL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	j->rc = getaddrinfo(j->host, j->port, &hints, &res);
	if (j->rc == 0) {
		if (res->ai_addrlen <= sizeof(j->sa)) {
			memcpy(&j->sa, res->ai_addr, res->ai_addrlen);
			j->len = res->ai_addrlen;
		} else {
			j->rc = EAI_FAMILY;
		}
		freeaddrinfo(res);
	}
	atomic_store(&j->done, 1);
	job_unref(j);
	return NULL;
}

static struct pxy_rjob *job_start(const struct pxy_addr *a)
{
	struct pxy_rjob *j = calloc(1, sizeof(*j));
	pthread_attr_t attr;
	pthread_t th;
	int rc;

	if (j == NULL)
		return NULL;
	snprintf(j->host, sizeof(j->host), "%s", a->host);
	snprintf(j->port, sizeof(j->port), "%s", a->port);
	atomic_init(&j->refs, 2);
	atomic_init(&j->done, 0);
	if (pthread_attr_init(&attr) != 0) {
		free(j);
		return NULL;
	}
	(void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	(void)pthread_attr_setstacksize(&attr, (size_t)256 * 1024);
	rc = pthread_create(&th, &attr, job_run, j);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		free(j);
		return NULL;
	}
	return j;
}

static void addr_text(const struct sockaddr_storage *sa, char *out,
                      size_t len)
{
	if (getnameinfo((const struct sockaddr *)sa, sizeof(*sa), out,
	                (socklen_t)len, NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(out, len, "?");
}

/* The loop thread takes a finished answer. */
static void job_apply(const struct pxy_upstream *u, struct pxy_addr *a,
                      const struct pxy_rjob *j)
{
	char old[64], now[64];

	addr_text(&a->sa, old, sizeof(old));
	if (j->rc != 0) {
		pxy_log(MTLS_LOG_WARN, "upstream %s: resolving target %s "
		        "failed (%s); keeping %s", u->name, a->text,
		        gai_strerror(j->rc), old);
		return;
	}
	if (j->len == a->len && memcmp(&j->sa, &a->sa, j->len) == 0)
		return;
	memcpy(&a->sa, &j->sa, j->len);
	a->len = j->len;
	addr_text(&a->sa, now, sizeof(now));
	pxy_log(MTLS_LOG_INFO, "upstream %s: target %s now resolves to %s "
	        "(was %s)", u->name, a->text, now, old);
}

static int has_names(const struct pxy_upstream *u)
{
	for (size_t i = 0; i < u->n_targets; i++)
		if (u->targets[i].by_name)
			return 1;
	return 0;
}

static void tick_upstream(struct pxy_upstream *u, double t)
{
	int due;

	if (u->resolve_interval == 0 || !has_names(u))
		return;
	if (u->resolve_next == 0) {
		/* resolved at load: the first lookup is one interval away */
		u->resolve_next = t + u->resolve_interval;
		return;
	}
	if (u->rjobs == NULL &&
	    (u->rjobs = calloc(u->n_targets, sizeof(struct pxy_rjob *))) == NULL)
		return;
	due = t >= u->resolve_next;
	if (due)
		u->resolve_next = t + u->resolve_interval;
	for (size_t i = 0; i < u->n_targets; i++) {
		struct pxy_rjob *j = u->rjobs[i];

		if (j != NULL && atomic_load(&j->done)) {
			job_apply(u, &u->targets[i], j);
			job_unref(j);
			u->rjobs[i] = j = NULL;
		}
		if (j == NULL && due && u->targets[i].by_name &&
		    (u->rjobs[i] = job_start(&u->targets[i])) == NULL)
			pxy_log(MTLS_LOG_WARN, "upstream %s: cannot start a "
			        "lookup of %s; keeping its address", u->name,
			        u->targets[i].text);
	}
}

void pxy_resolve_tick(struct pxy_config *cfg, double t)
{
	for (size_t i = 0; i < cfg->n_upstreams; i++)
		tick_upstream(&cfg->upstreams[i], t);
}

void pxy_resolve_forget(struct pxy_config *cfg)
{
	for (size_t i = 0; i < cfg->n_upstreams; i++) {
		struct pxy_upstream *u = &cfg->upstreams[i];

		if (u->rjobs == NULL)
			continue;
		for (size_t k = 0; k < u->n_targets; k++)
			if (u->rjobs[k] != NULL)
				job_unref(u->rjobs[k]);
		free(u->rjobs);
		u->rjobs = NULL;
	}
}
