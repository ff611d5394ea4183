/*
 * proxy.h - the event loop: accepts TLS clients, connects them to their
 * upstream (plain TCP or mTLS) and copies bytes both ways.
 *
 * One thread, one epoll set, non-blocking sockets.  Each connection goes
 * client handshake -> upstream connect -> upstream handshake (tls on) ->
 * relay, with half-close carried across (EOF or close_notify on one side
 * shuts down the write side of the other) and one log line when it ends.
 * The upstream is that of the host that judged the client's handshake
 * (mtls_conn_host, the library's one host decision) once it is done;
 * with "proxy_protocol v2" a PROXY header goes first.  Upstreams with
 * health_interval are checked from the same loop; targets marked down are
 * skipped.
 *
 * Rooms by concern: proxy.c the loop, listen.c listening and accepting,
 * admit.c the limits, conn.c a connection's life, relay.c its bytes,
 * health.c health checks, reload.c a new configuration generation,
 * tlsctx.c the contexts, config.c the file, proxyproto.c PROXY v2,
 * log.c the log.
 */
#ifndef MTLS_PROXY_PROXY_H
#define MTLS_PROXY_PROXY_H

#include "config.h"

/* Listening sockets get SO_REUSEPORT (several worker processes). */
void pxy_set_reuse_port(int on);

/* Opens every (not skipped) listening socket of cfg.  0, or -1 after logging why. */
int pxy_listen_all(struct pxy_config *cfg);

/* Runs until pxy_stop() is called, then stops accepting and returns once
 * the open connections are done or after 5 seconds.  0, or -1 if the event
 * loop could not start.  Takes cfg (calloc'ed, listening, contexts built)
 * and frees it.  pxy_reload() makes it re-read cfg->path: a new generation
 * of config and contexts serves new connections, connections in flight
 * keep theirs (each holds a reference), and the old generation is freed
 * with its last connection; on any error the current one stays. */
int pxy_run(struct pxy_config *cfg);

/* Async-signal-safe: asks pxy_run() to reload the configuration. */
void pxy_reload(void);

/* Async-signal-safe: asks pxy_run() to wind down. */
void pxy_stop(void);

#endif
