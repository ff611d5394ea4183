/*
 * pages.h - what the admin endpoint serves (private to mtls-proxy):
 * /metrics in the Prometheus text format (0.0.4) and /status as JSON,
 * from metrics.h's shared counters (all workers) and the current
 * configuration of this process (certificates, CRLs, health verdicts).
 * docs/metrics.md lists every metric.
 */
#ifndef MTLS_PROXY_PAGES_H
#define MTLS_PROXY_PAGES_H

#include <stddef.h>

/* The page as a malloc'ed buffer (the caller frees it) of *len bytes, or
 * NULL when out of memory. */
char *pxy_page_metrics(size_t *len);
char *pxy_page_status(size_t *len);

#endif
