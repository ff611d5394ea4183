/*
 * conn.h - one proxied connection (private to mtls-proxy).
 *
 * A connection goes client handshake -> upstream connect -> upstream
 * handshake (tls on) -> relay, and ends with one log line.  conn.c owns
 * its life (accept, set-up, routing, timers, the end and its line);
 * relay.c moves its bytes (each side's I/O and epoll interest, the two
 * buffers, half-close, the fair run queue).
 */
#ifndef MTLS_PROXY_CONN_H
#define MTLS_PROXY_CONN_H

#include "admit.h"
#include "config.h"
#include "loop.h"
#include "timer.h"

#include <netinet/in.h>
#include <sys/socket.h>

#define BUF_SIZE ((size_t)16 * 1024)

enum state { S_HS_CLIENT, S_CONNECT, S_HS_UP, S_RELAY };

struct conn;

/* One socket of a connection: the client's or the upstream's. */
struct side {
	int kind;       /* K_SIDE: first, epoll data points here */
	struct conn *c;
	const char *who;  /* "client" or "upstream", for messages */
	int fd;
	mtls_conn *tls;   /* NULL: plain TCP */
	unsigned events;  /* registered epoll interest */
	unsigned want;    /* interest collected by this step */
	int registered;   /* in the epoll set */
	int eof;          /* nothing more will be read */
	const char *eof_how; /* "close_notify" or "eof", when eof */
	int shut;         /* our write side is shut (close_notify sent) */
};

/* Bytes read from one side, waiting to be written to the other. */
struct buf {
	size_t off, len;
	size_t pend; /* length of a TLS write to repeat as is, or 0 */
	unsigned char *d; /* BUF_SIZE bytes while any are in flight, else NULL */
};

/* A TCP peer's address, IPv4 or IPv6 (what the listeners accept): 28
 * bytes where a sockaddr_storage takes 128, in every connection. */
union pxy_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

struct conn {
	struct conn *prev, *next;
	struct conn *rq_prev, *rq_next; /* run queue: more to relay */
	struct pxy_timer timer; /* its deadline (conn.c conn_due) */
	int queued;
	struct pxy_ticket ticket; /* what it counts against the limits */
	struct pxy_config *cfg; /* the generation l and u belong to (a ref) */
	struct pxy_listen *l;
	struct pxy_upstream *u;
	enum state st;
	struct side cl, up;
	const struct pxy_addr *target;
	size_t first, tries;    /* round-robin start, targets tried */
	char client_addr[64];
	union pxy_sockaddr client_sa, local_sa; /* for PROXY v2 */
	char *subject;          /* the client certificate's, as presented
	                         * (allocated), or NULL: none */
	const char *id;         /* the identity the policy matched (owned by
	                         * cl.tls, freed after the log line), or NULL */
	const char *pp_uri;     /* forwarded in PROXY v2: id, or NULL */
	char pp_cn[128];        /* forwarded in PROXY v2 (see there) */
	int verified;           /* the client's certificate was verified */
	size_t pp_len;          /* PROXY header bytes queued to the upstream */
	unsigned long long to_up, to_client; /* bytes delivered */
	double start, deadline, last_io;
	int dead;
	char *reason;           /* the first failure (allocated, or
	                         * oom_reason), or NULL: none.  Pointers, not
	                         * arrays: an idle connection holds neither */
	const char *end, *end_by; /* how the relay ended, first event (end=) */
	int benign;             /* the failure is a peer hanging up or idling */
	int hs_counted;         /* its client handshake is in the metrics */
	int hs_why;             /* why the proxy ended its handshake (a
	                         * metrics reason index), 0: not the proxy */
	struct buf c2u, u2c;
};

/* ---- conn.c ---- */

/* Takes an accepted client socket (admitted: t is what it counts against
 * the limits) and starts its handshake.  The socket is closed on error. */
void pxy_conn_start(struct pxy_listen *l, int fd,
                    const struct sockaddr_storage *sa,
                    struct pxy_ticket *t);

/* Readiness on one of its sockets: pushes the connection on. */
void pxy_conn_event(struct side *s, unsigned events);

/* Ends connections past a deadline (handshake, connect, idle). */
void pxy_conn_timers(double t);

/* Connections open. */
size_t pxy_conn_count(void);

/* Ends every connection, logging why. */
void pxy_conn_close_all(const char *why);

/* Frees the connections ended during this batch of events. */
void pxy_conn_bury(void);

/* For relay.c: the first way the relay ended (who, how) is kept. */
void pxy_conn_note_end(struct conn *c, const char *by, const char *how);

/* For relay.c: ends the connection with its log line (freed later). */
void pxy_conn_end(struct conn *c);

/* For relay.c: ends the connection with an error of the proxy's own. */
void pxy_conn_abort(struct conn *c, const char *why);

/* For relay.c: an I/O call on side s failed with rc while doing what. */
void pxy_side_fail(struct conn *c, struct side *s, ssize_t rc,
                   const char *what);

/* ---- relay.c ---- */

/* Adds the side's socket to the epoll set with that interest. */
int pxy_side_register(struct side *s, unsigned events);

/* Makes the registered interest what this step collected in s->want. */
void pxy_side_update(struct side *s);

/* Takes a socket we are done with both ways out of the epoll set. */
void pxy_side_forget(struct side *s);

/* Frees its TLS connection and closes its socket. */
void pxy_side_close(struct side *s);

/* Collects the interest that an MTLS_WANT_* result asks for. */
void pxy_side_want(struct side *s, ssize_t rc);

/* Gives b its memory if it has none (0, or -1 out of memory). */
int pxy_buf_take(struct buf *b);

/* Gives b's memory back (b must hold nothing the peer still needs). */
void pxy_buf_release(struct buf *b);

/* Frees the spare buffers kept for reuse (at exit). */
void pxy_buf_trim(void);

/* Moves bytes both ways as far as they go, within its fair share. */
void pxy_relay(struct conn *c);

/* Takes a connection out of the run queue (it is ending). */
void pxy_runq_del(struct conn *c);

/* Whether connections wait in the run queue (poll without sleeping). */
int pxy_runq_pending(void);

/* One turn for each connection queued before this pass. */
void pxy_runq_pass(void);

#endif
