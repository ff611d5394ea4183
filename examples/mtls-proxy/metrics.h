/*
 * metrics.h - the proxy's counters and their home (private to mtls-proxy).
 *
 * The counters live in one anonymous MAP_SHARED region made before any
 * fork, with one slot per worker (one slot without workers).  A slot is
 * written only by the process that holds it, with relaxed atomics; the
 * process serving the admin endpoint (admin.c) reads every slot and adds
 * them up.  A worker restarted into a slot keeps adding to the totals its
 * predecessor left there (nothing lost, nothing counted twice); only the
 * gauges (connections open) start again from zero, as the predecessor's
 * connections died with it.
 *
 * Series are keyed by name, not by config position: a slot holds a table
 * of listeners (by address text) and of (listener, host) pairs, where the
 * host is the one that judged the handshake (mtls_conn_host, "default"
 * for the listen block's own settings), as in the connection's log line.
 * Each generation (start, reload) enters its listeners and hosts, so
 * their series exist from zero; a host or listener a reload removes keeps
 * its final counts until the process restarts.  The tables are bounded
 * (MX_LISTENERS, MX_PAIRS per slot); beyond them counts go to the
 * listener "other" / host "other" entry.
 */
#ifndef MTLS_PROXY_METRICS_H
#define MTLS_PROXY_METRICS_H

#include "config.h"

#include <stdatomic.h>
#include <sys/types.h>

#define MX_LISTENERS 64
#define MX_PAIRS 256
#define MX_NAME 300
/* Reasons: the library's (mtls_reason, below MTLS_REASON_COUNT), then the
 * proxy's own (MX_R_*), then "unknown" for a newer library's values. */
#define MX_R_TIMEOUT MTLS_REASON_COUNT
#define MX_R_UNKNOWN (MTLS_REASON_COUNT + 1)
#define MX_REASONS (MTLS_REASON_COUNT + 2)

typedef _Atomic unsigned long long mx_counter;

struct mx_listener {
	char name[MX_NAME];          /* "127.0.0.1:8443" */
	_Atomic long long open;      /* connections open now */
};

struct mx_pair {
	unsigned listener;           /* index in the slot's listeners */
	char host[MX_NAME];
	mx_counter hs_ok;
	mx_counter hs_failed[MX_REASONS];
	mx_counter conns;            /* connections ended */
};

struct mx_slot {
	_Atomic long pid;            /* 0: no process holds it */
	_Atomic long long started;   /* wall clock of the first start */
	_Atomic unsigned n_listeners, n_pairs; /* published entries */
	struct mx_listener l[MX_LISTENERS];
	struct mx_pair p[MX_PAIRS];
	mx_counter bytes[2];         /* 0 client to upstream, 1 back */
	mx_counter reloads_ok, reloads_failed;
	_Atomic long long last_reload_ok; /* wall clock, seconds */
	_Atomic long long last_reload;    /* wall clock of the last attempt */
	_Atomic int last_reload_result;   /* 1 ok, -1 failed, 0 none yet */
	mx_counter restarts;         /* times a new process took it */
};

/* The region: n slots (n >= 1), made before forking.  0, or -1 after
 * logging why. */
int pxy_metrics_init(int n);

/* Slots and their count, for the reader (admin.c). */
struct mx_slot *pxy_metrics_slots(int *n);

/* This process takes slot i: its pid, gauges reset, restarts counted. */
void pxy_metrics_claim(int i);

/* The supervisor saw the slot's process go: it holds no slot any more
 * (its totals stay). */
void pxy_metrics_release(int i);

/* Enters cfg's listeners and hosts (a new generation). */
void pxy_metrics_config(const struct pxy_config *cfg);

struct conn;
/* A connection was accepted on l. */
void pxy_metrics_conn_open(const struct pxy_listen *l);
/* The client handshake ended: ok, or failed with reason index r (from
 * pxy_metrics_reason_index).  Counted once per connection. */
void pxy_metrics_handshake(const struct pxy_listen *l, const char *host,
                           int ok, int r);
/* A connection ended (handshake or not), judged by host. */
void pxy_metrics_conn_end(const struct pxy_listen *l, const char *host);
/* Bytes delivered: dir 0 client to upstream, 1 upstream to client. */
void pxy_metrics_bytes(int dir, unsigned long long n);
/* A SIGHUP reload ended. */
void pxy_metrics_reload(int ok);

/* The stable token of reason index r ("unknown_ca", "timeout"). */
const char *pxy_metrics_reason_name(int r);

#endif
