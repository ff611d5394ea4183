/*
 * loop.h - what the modules of the event loop share (private to
 * mtls-proxy): the epoll set, the configuration generation that new
 * connections use, and the clock.
 *
 * One thread runs everything, so none of this is locked.  Every object
 * registered in the epoll set starts with an int naming its kind; the
 * loop (proxy.c) dispatches on it:
 *   K_LISTEN  a listening socket            listen.c
 *   K_SIDE    one socket of a connection    conn.c, relay.c
 *   K_PROBE   an active health check        health.c
 *   K_WATCH   the file watch                watch.c
 *   K_ADMIN   the admin endpoint's socket or one of its clients  admin.c
 */
#ifndef MTLS_PROXY_LOOP_H
#define MTLS_PROXY_LOOP_H

#include "config.h"

#include <sys/types.h>

enum pxy_kind { K_LISTEN = 1, K_SIDE, K_PROBE, K_WATCH, K_ADMIN };

extern int pxy_ep;                   /* the epoll set, -1 when not running */
extern struct pxy_config *pxy_current; /* new connections use this one */

/* CLOCK_MONOTONIC, in seconds. */
double pxy_now(void);

/* Drops one reference to a generation; the last frees it. */
void pxy_config_unref(struct pxy_config *cfg);

/* Whether an I/O result means "call again when the socket is ready". */
static inline int pxy_is_want(ssize_t rc)
{
	return rc == MTLS_WANT_READ || rc == MTLS_WANT_WRITE;
}

#endif
