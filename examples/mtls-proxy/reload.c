/*
 * reload.c - SIGHUP: a new generation of configuration and contexts (see
 * reload.h).
 */
#include "reload.h"
#include "conn.h"
#include "health.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "tlsctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pxy_reload_now(const char *why)
{
	struct pxy_config *n = calloc(1, sizeof(*n)), *old = pxy_current;
	size_t kept = 0, opened = 0, closed = 0;
	char err[1024];

	pxy_log(MTLS_LOG_INFO, "%s: reloading %s", why, old->path);
	if (n == NULL) {
		pxy_log(MTLS_LOG_ERROR, "reload failed: out of memory; still "
		        "serving the previous configuration");
		pxy_metrics_reload(0);
		return -1;
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
	pxy_listeners_detach();
	if (pxy_listeners_move(n, old, &kept, &opened, &closed) != 0) {
		pxy_config_free(n);
		free(n);
		snprintf(err, sizeof(err), "cannot listen (see above)");
		pxy_listeners_attach(old);
		goto fail;
	}
	pxy_health_cancel();
	pxy_health_carry(n, old);
	pxy_log_set_level(n->log_level);
	pxy_metrics_config(n);
	pxy_metrics_reload(1);
	if ((n->admin_line != 0) != (old->admin_line != 0) ||
	    (n->admin_line != 0 && strcmp(n->admin.text, old->admin.text) != 0))
		pxy_log(MTLS_LOG_WARN, "reload: the admin address (%s) "
		        "changes only with a restart; still serving %s",
		        n->admin_line ? n->admin.text : "none",
		        old->admin_line ? old->admin.text : "none");
	n->refs = 1;
	pxy_current = n;
	pxy_listeners_attach(n);
	pxy_log(MTLS_LOG_INFO, "reloaded %s: %zu listener(s) kept, %zu "
	        "opened, %zu closed; %zu connection(s) finish on the "
	        "previous configuration", n->path, kept, opened, closed,
	        pxy_conn_count());
	pxy_config_unref(old); /* freed once its last connection ends */
	return 0;
fail:
	pxy_metrics_reload(0);
	pxy_log(MTLS_LOG_ERROR, "reload failed: %s; still serving the "
	        "previous configuration", err);
	return -1;
}
