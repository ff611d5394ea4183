/*
 * admin.h - the admin endpoint (private to mtls-proxy): "admin ADDR:PORT"
 * serves GET /metrics (Prometheus text format 0.0.4) and GET /status
 * (JSON) over plain HTTP/1.x, from the event loop.
 *
 * Bounded: a request is at most ADMIN_MAX_REQUEST bytes of header and
 * must arrive, with its answer written, within ADMIN_TIMEOUT seconds; at
 * most ADMIN_MAX_CLIENTS are served at once (more are closed at once);
 * only GET and HEAD of /metrics and /status (404 or 405 otherwise); every
 * answer closes the connection.  The figures are those of metrics.h (all
 * workers) and of the serving process's current configuration
 * (certificates, CRLs, health verdicts).
 *
 * The socket is bound once, by the first process (before workers are
 * forked), and served by one process: the only one without workers, else
 * the worker in slot 0 (the supervisor keeps the socket, so a restart of
 * that worker loses no queued request).  A reload does not move it: a
 * changed address is logged and takes a restart.
 */
#ifndef MTLS_PROXY_ADMIN_H
#define MTLS_PROXY_ADMIN_H

#include "config.h"

#include <stdio.h>

#define ADMIN_MAX_REQUEST 4096
#define ADMIN_TIMEOUT 5.0
#define ADMIN_MAX_CLIENTS 16

struct adm;

/* Whether the admin address of cfg is a loopback address. */
int pxy_admin_is_loopback(const struct pxy_config *cfg);

/* Binds cfg's admin address (nothing when it has none).  0, or -1 after
 * logging why. */
int pxy_admin_open(const struct pxy_config *cfg);

/* This process does not serve it (a worker other than slot 0). */
void pxy_admin_drop(void);

/* Puts the admin socket in the epoll set (when this process has it). */
void pxy_admin_attach(void);

/* Readiness on the admin socket or one of its clients (kind K_ADMIN). */
void pxy_admin_event(struct adm *a, unsigned events);

/* Closes clients past ADMIN_TIMEOUT. */
void pxy_admin_tick(double t);

/* Closes every client and the socket (stopping). */
void pxy_admin_close(void);

#endif
