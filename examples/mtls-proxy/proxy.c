/*
 * proxy.c - the mtls-proxy event loop (see proxy.h).
 *
 * Level-triggered epoll, one thread.  Each pass dispatches the events to
 * their module by kind (loop.h), gives the connections waiting in the
 * relay's run queue their turn, then checks the timers (deadlines,
 * paused listeners, health checks), frees what ended during the pass and
 * acts on a requested reload or stop.  The loop polls without sleeping
 * while the run queue holds anyone.
 *
 * Modules: listen.c (listening sockets, accept), conn.c (a connection's
 * life), relay.c (its bytes), health.c (active checks), reload.c (a new
 * configuration generation), watch.c (reload when files change),
 * admin.c (the admin endpoint).
 */
#include "proxy.h"
#include "admin.h"
#include "admit.h"
#include "conn.h"
#include "health.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "resolve.h"
#include "watch.h"
#include "timer.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define STOP_GRACE 5.0 /* seconds granted to open connections on stop */

int pxy_ep = -1;
struct pxy_config *pxy_current;

static volatile sig_atomic_t stop_requested, reload_requested;

void pxy_stop(void)
{
	stop_requested = 1;
}

void pxy_reload(void)
{
	reload_requested = 1;
}

void pxy_config_unref(struct pxy_config *cfg)
{
	if (cfg != NULL && --cfg->refs == 0) {
		pxy_admit_forget(cfg);
		pxy_resolve_forget(cfg);
		pxy_config_free(cfg);
		free(cfg);
	}
}

double pxy_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void dispatch(struct epoll_event *ev)
{
	int *kind = ev->data.ptr;

	if (*kind == K_LISTEN)
		pxy_listener_event((struct listener *)kind);
	else if (*kind == K_PROBE)
		pxy_health_event((struct probe *)kind);
	else if (*kind == K_WATCH)
		pxy_watch_event((struct pxy_watch *)kind);
	else if (*kind == K_ADMIN)
		pxy_admin_event((struct adm *)kind, ev->events);
	else
		pxy_conn_event((struct side *)kind, ev->events);
}

int pxy_run(struct pxy_config *cfg)
{
	struct epoll_event evs[128];
	double stop_at = 0;
	int rc = -1;

	pxy_current = cfg;
	cfg->refs = 1;
	if ((pxy_ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		pxy_log(MTLS_LOG_ERROR, "epoll: %s", strerror(errno));
		goto out;
	}
	if (pxy_listeners_attach(cfg) != 0)
		goto out;
	pxy_watch_start(cfg);
	pxy_metrics_config(cfg);
	pxy_admin_attach();
	for (;;) {
		int n = epoll_wait(pxy_ep, evs, 128,
		                   pxy_runq_pending() ? 0 : 1000);
		double t;

		if (n < 0 && errno != EINTR) {
			pxy_log(MTLS_LOG_ERROR, "epoll_wait: %s",
			        strerror(errno));
			goto out;
		}
		for (int k = 0; k < n; k++)
			dispatch(&evs[k]);
		pxy_runq_pass();
		t = pxy_now();
		pxy_conn_timers(t);
		pxy_admin_tick(t);
		if (stop_at == 0) {
			pxy_listeners_resume(t);
			pxy_health_tick(t);
			pxy_resolve_tick(pxy_current, t);
		}
		pxy_conn_bury();
		pxy_health_bury();
		if (stop_at == 0 && !stop_requested &&
		    (reload_requested || pxy_watch_due())) {
			const char *why = reload_requested ? "SIGHUP"
			                                   : "files changed";

			reload_requested = 0;
			if (pxy_reload_now(why) == 0)
				pxy_watch_start(pxy_current);
		}
		if (stop_requested && stop_at == 0) {
			pxy_log(MTLS_LOG_INFO, "stopping: %zu connection(s) "
			        "open, waiting up to %.0f s", pxy_conn_count(),
			        STOP_GRACE);
			pxy_listeners_detach();
			pxy_stop_listening(pxy_current);
			pxy_health_cancel();
			pxy_watch_stop();
			stop_at = t + STOP_GRACE;
		}
		if (stop_at != 0 && (pxy_conn_count() == 0 || t >= stop_at))
			break;
	}
	pxy_conn_close_all("proxy shutting down");
	rc = 0;
out:
	pxy_watch_stop();
	pxy_admin_close();
	pxy_listeners_detach();
	pxy_health_cancel();
	pxy_conn_bury();
	pxy_health_bury();
	pxy_stop_listening(pxy_current);
	pxy_config_unref(pxy_current);
	pxy_current = NULL;
	pxy_buf_trim();
	pxy_timer_free();
	if (pxy_ep >= 0)
		close(pxy_ep);
	pxy_ep = -1;
	return rc;
}
