/*
 * watch.c - reload by itself when a file in use changes (see watch.h).
 */
#include "watch.h"
#include "log.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#define POLL_MS 2000u
#define DEBOUNCE_MS 1000u

struct pxy_watch {
	int kind; /* K_WATCH */
	mtls_watch *w;
	int changed;
};

static struct pxy_watch pw = {.kind = K_WATCH};

void pxy_watch_stop(void)
{
	if (pw.w == NULL)
		return;
	if (mtls_watch_fd(pw.w) >= 0 && pxy_ep >= 0)
		epoll_ctl(pxy_ep, EPOLL_CTL_DEL, mtls_watch_fd(pw.w), NULL);
	mtls_watch_free(pw.w);
	pw.w = NULL;
	pw.changed = 0;
}

static int add_all(struct pxy_config *cfg)
{
	size_t i;
	int rc = mtls_watch_add_file(pw.w, cfg->path);

	for (i = 0; rc == 0 && i < cfg->n_listens; i++)
		if (!cfg->listens[i].skipped && cfg->listens[i].ctx != NULL)
			rc = mtls_watch_add_ctx(pw.w, cfg->listens[i].ctx);
	for (i = 0; rc == 0 && i < cfg->n_upstreams; i++)
		if (!cfg->upstreams[i].skipped && cfg->upstreams[i].ctx != NULL)
			rc = mtls_watch_add_ctx(pw.w, cfg->upstreams[i].ctx);
	return rc;
}

void pxy_watch_start(struct pxy_config *cfg)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &pw};
	unsigned flags = MTLS_WATCH_NOTIFY_ONLY;

	pxy_watch_stop();
	if (cfg->watch == PXY_WATCH_OFF)
		return;
	if (cfg->watch == PXY_WATCH_POLL)
		flags |= MTLS_WATCH_POLL;
	if ((pw.w = mtls_watch_new(flags)) == NULL ||
	    mtls_watch_set_delays(pw.w, DEBOUNCE_MS, POLL_MS) != 0 ||
	    add_all(cfg) != 0) {
		pxy_log(MTLS_LOG_ERROR, "watch: %s; files are not watched "
		        "(SIGHUP still reloads)",
		        pw.w && mtls_watch_error(pw.w) ? mtls_watch_error(pw.w)
		                                       : "out of memory");
		pxy_watch_stop();
		return;
	}
	if (mtls_watch_fd(pw.w) >= 0 &&
	    epoll_ctl(pxy_ep, EPOLL_CTL_ADD, mtls_watch_fd(pw.w), &ev) != 0) {
		pxy_log(MTLS_LOG_ERROR, "watch: epoll: %s; files are not "
		        "watched (SIGHUP still reloads)", strerror(errno));
		pxy_watch_stop();
		return;
	}
	pxy_log(MTLS_LOG_DEBUG, "watch: watching the files of %s (%s)",
	        cfg->path, mtls_watch_fd(pw.w) >= 0 ? "inotify" : "polling");
}

static void process(void)
{
	if (mtls_watch_process(pw.w) > 0)
		pw.changed = 1;
}

void pxy_watch_event(struct pxy_watch *p)
{
	if (p == &pw && pw.w != NULL)
		process();
}

int pxy_watch_due(void)
{
	if (pw.w != NULL && mtls_watch_timeout(pw.w) == 0)
		process();
	if (!pw.changed)
		return 0;
	pw.changed = 0;
	return 1;
}
