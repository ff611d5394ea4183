/*
 * listen.h - listening sockets (private to mtls-proxy; pxy_listen_all and
 * pxy_set_reuse_port are in proxy.h for main.c).
 */
#ifndef MTLS_PROXY_LISTEN_H
#define MTLS_PROXY_LISTEN_H

#include "loop.h"
#include "proxy.h"

#include <stddef.h>

struct listener;

/* Readiness on a listening socket (its epoll data, kind K_LISTEN):
 * accepts what waits, up to 64 connections per call. */
void pxy_listener_event(struct listener *ls);

/* Puts listeners paused for lack of descriptors back once their second
 * is over. */
void pxy_listeners_resume(double t);

/* Puts cfg's listening sockets in the epoll set.  0, or -1 after logging. */
int pxy_listeners_attach(struct pxy_config *cfg);

/* Takes them out of the epoll set (the sockets stay open). */
void pxy_listeners_detach(void);

/* Opens n's listeners whose address old does not have; keeps the others'
 * sockets (moved from old), then closes what old has left.  On failure n
 * owns no socket and old is untouched. */
int pxy_listeners_move(struct pxy_config *n, struct pxy_config *old,
                       size_t *kept, size_t *opened, size_t *closed);

/* Closes cfg's listening sockets. */
void pxy_stop_listening(struct pxy_config *cfg);

#endif
