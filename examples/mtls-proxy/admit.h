/*
 * admit.h - admission control: how many connections the proxy holds (in
 * all, and per listen block) and how many client handshakes are in
 * progress (in all, and per client address: an IPv4 address, or the /64 of
 * an IPv6 one).
 *
 * A connection over any limit is accepted and closed at once, rather than
 * left in the kernel's backlog: the listener stays level-triggered without
 * spinning, clients learn at once instead of timing out, and the backlog
 * never fills with connections nobody will serve.  Refusals are logged at
 * most once a second per limit, with the count of those not logged.
 */
#ifndef MTLS_PROXY_ADMIT_H
#define MTLS_PROXY_ADMIT_H

#include "config.h"

#include <stddef.h>
#include <sys/socket.h>

/* Connections of one listening socket; shared by the config generations
 * that keep the socket across a reload (refs). */
struct pxy_lcount {
	size_t n;
	int refs;
};

struct pxy_source; /* handshakes in progress from one client address */

/* What one admitted connection holds; zero-initialised: holds nothing. */
struct pxy_ticket {
	struct pxy_lcount *lc; /* counted against its listen block */
	struct pxy_source *src; /* counted as a handshake in progress */
	int held;              /* counted as a connection */
};

/* Admits a connection from sa, accepted on l of cfg, with n_conns
 * connections open now.  0: admitted, t holds its counts; -1: over a limit
 * (logged, rate-limited) or out of memory, t holds nothing. */
int pxy_admit(const struct pxy_config *cfg, struct pxy_listen *l,
              const struct sockaddr_storage *sa, size_t n_conns,
              struct pxy_ticket *t);

/* The client handshake is over (done or failed): frees its handshake
 * slots.  Idempotent. */
void pxy_admit_hs_done(struct pxy_ticket *t);

/* The connection ends: frees all it holds.  Idempotent. */
void pxy_admit_release(struct pxy_ticket *t);

/* Reload: the new generation's listen block nl keeps the socket of ol;
 * it shares ol's connection count. */
void pxy_admit_share(struct pxy_listen *nl, const struct pxy_listen *ol);

/* The config generation is freed: drops its listen blocks' counts. */
void pxy_admit_forget(struct pxy_config *cfg);

/* Warns (log) when the descriptor limit (RLIMIT_NOFILE) cannot hold
 * max_connections connections of two sockets each. */
void pxy_limits_warn(const struct pxy_config *cfg);

#endif
