/*
 * resolve.h - re-resolution of upstream targets given by host name
 * (private to mtls-proxy).
 *
 * A target written with a name ("backend.internal:9000") is resolved when
 * the configuration is loaded, and again every resolve_interval seconds
 * (default PXY_RESOLVE_DEFAULT; "resolve_interval off" keeps the first
 * answer).  getaddrinfo blocks, so each lookup runs on a short-lived
 * thread of its own; the loop thread polls for its answer at every tick and
 * applies it there, so nothing else ever sees a target change mid-use.  A
 * failed lookup keeps the old address and logs a warning; a changed one is
 * logged at info.  Like the first resolution, the first address returned
 * is used.  Targets written as numbers are never looked up.
 */
#ifndef MTLS_PROXY_RESOLVE_H
#define MTLS_PROXY_RESOLVE_H

#include "config.h"

#define PXY_RESOLVE_DEFAULT 30 /* seconds */

/* Applies finished lookups and starts those that are due. */
void pxy_resolve_tick(struct pxy_config *cfg, double t);

/* The configuration is going away: lookups in flight are abandoned (their
 * threads free them when getaddrinfo returns). */
void pxy_resolve_forget(struct pxy_config *cfg);

#endif
