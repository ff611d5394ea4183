/*
 * reload.h - replacing the configuration while running (private to
 * mtls-proxy).
 *
 * Everything is read and checked into a new generation: configuration,
 * contexts (certificates, keys, CAs, CRLs), listening sockets.  Only when
 * all of it succeeded does it become pxy_current: listeners whose address
 * stays keep their socket, health verdicts carry over, and connections in
 * flight finish on the generation they started with (each holds a
 * reference).  Any failure logs why and leaves the current one serving,
 * untouched.
 */
#ifndef MTLS_PROXY_RELOAD_H
#define MTLS_PROXY_RELOAD_H

#include "loop.h"

/* Reloads pxy_current->path now (from the loop, not a signal handler);
 * why ("SIGHUP", "files changed") starts its log line.  0 when the new
 * generation is serving, -1 when the current one stays. */
int pxy_reload_now(const char *why);

#endif
