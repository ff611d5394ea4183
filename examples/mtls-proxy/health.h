/*
 * health.h - active health checks (private to mtls-proxy).
 *
 * Every health_interval seconds each target of an upstream gets a probe:
 * a connect, the TLS handshake when the upstream speaks TLS (with its
 * client certificate: an mTLS check), and with health_get an HTTP GET
 * whose status must be 2xx.  A failing target is marked down (T_DOWN in
 * pxy_upstream.down) and skipped by new connections until a probe
 * succeeds again.
 */
#ifndef MTLS_PROXY_HEALTH_H
#define MTLS_PROXY_HEALTH_H

#include "loop.h"

#define T_DOWN 1    /* pxy_upstream.down bits: marked down */
#define T_PROBING 2 /* a probe is in flight */

struct probe;

/* Readiness on a probe's socket (its epoll data, kind K_PROBE). */
void pxy_health_event(struct probe *pr);

/* Times out late checks and starts those that are due. */
void pxy_health_tick(double t);

/* Ends every check in flight (they belong to the current upstreams):
 * on reload and on stop. */
void pxy_health_cancel(void);

/* Health verdicts survive a reload for targets that stay. */
void pxy_health_carry(struct pxy_config *n, const struct pxy_config *old);

/* Frees the checks ended during this batch of events. */
void pxy_health_bury(void);

#endif
