/*
 * config.h - the mtls-proxy configuration file: syntax, parsing, checks.
 *
 * One directive per line, words separated by blanks, "#" to the end of the
 * line is a comment.  Two block kinds, "listen ADDR:PORT {" and
 * "upstream NAME {", closed by "}" on its own line; a listen block may hold
 * "host NAME {" blocks (SNI hosts).  See
 * examples/mtls-proxy.conf for every directive.  Parsing does not touch
 * credentials: that is tlsctx.c, run after a successful parse.
 */
#ifndef MTLS_PROXY_CONFIG_H
#define MTLS_PROXY_CONFIG_H

#include <mtls.h>

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

/* A resolved address and the text it came from ("127.0.0.1:9000"). */
struct pxy_addr {
	struct sockaddr_storage sa;
	socklen_t len;
	char text[300];
	char host[256]; /* host part, for SNI / name checks */
	char port[8];
	int by_name;    /* host is a name, not a number: re-resolved */
};

struct pxy_allow {
	mtls_allow_kind kind;
	char *value;
};

struct pxy_rjob; /* resolve.c */

/* A target's own TLS settings ("target ADDR cert F key F server_name N
 * ca F"): any left NULL are the upstream's. */
struct pxy_target_tls {
	char *cert, *key, *ca, *server_name;
	int line;
	mtls_ctx *ctx;            /* tlsctx.c: its own client context, or
	                           * NULL when it has no setting of its own */
};

struct pxy_upstream {
	char *name;
	int line;                 /* where the block starts */
	struct pxy_addr *targets; /* round robin */
	struct pxy_target_tls *ttls; /* per target, parallel to targets */
	int resolve_interval;     /* seconds; 0: off (names only, resolve.h) */
	double resolve_next;      /* resolve.c: when lookups start again */
	struct pxy_rjob **rjobs;  /* resolve.c: per target, in flight */
	size_t n_targets;
	unsigned char *down;      /* per target: 1 when health checks fail */
	size_t next;              /* next target to try */
	int tls;                  /* 1: mTLS to the targets; 0: plain TCP */
	char *cert, *key, *ca, *server_name;
	int cert_line, key_line, ca_line, name_line;
	int connect_timeout;      /* seconds: connect + upstream handshake */
	int idle_timeout;         /* seconds without a byte either way */
	int proxy_protocol;       /* 2: PROXY protocol v2 header; 0: none */
	int health_interval;      /* seconds between checks; 0: no checks */
	char *health_get;         /* HTTP path checked for a 2xx, or NULL */
	int health_line;
	double health_next;       /* proxy.c: when the next checks start */
	int tls_min, tls_max;     /* MTLS_TLS1_*; 0: library default */
	int tls_line;
	char *alpn;               /* "h2,http/1.1" or NULL */
	int alpn_line;
	int insecure;             /* insecure_skip_verify on */
	int insecure_line;
	int skipped;              /* tlsctx.c: credentials failed, unused */
	int broken;               /* config.c: one of its directives failed */
	mtls_ctx *ctx;            /* client context when tls, built later */
};

/* The TLS settings of a listen block (its default host) or of one "host"
 * block inside it, chosen by the client's SNI name. */
struct pxy_server {
	char *name;               /* host: "admin.example.com", "*.x.com" */
	int line;
	char *cert, *key, *client_ca, *crl;
	int cert_line, key_line, ca_line, crl_line, auth_line;
	int client_auth;          /* -1 unset, else an mtls_verify_mode */
	struct pxy_allow *allow;
	size_t n_allow;
	int allow_line;
	char *upstream_name;
	int upstream_line;
	struct pxy_upstream *upstream; /* resolved by name */
	int tls_min, tls_max;     /* host blocks: own bounds; 0: the listen's */
	int tls_line;
	int broken;               /* config.c: one of its directives failed */
	int skipped;              /* tlsctx.c: host left out (see there) */
	mtls_ctx *ctx;            /* tlsctx.c: a host's own context (a
	                           * reference; the listener holds another),
	                           * for its expiry figures; NULL otherwise */
};

struct pxy_lcount; /* admit.h */

/* Defaults of the admission limits (admit.h). */
#define PXY_MAX_CONNECTIONS 10000
#define PXY_MAX_HANDSHAKES 1024
#define PXY_MAX_HANDSHAKES_PER_SOURCE 64

struct pxy_listen {
	struct pxy_addr addr;
	int line;
	struct pxy_server srv;    /* the default host */
	struct pxy_server *hosts; /* SNI hosts */
	size_t n_hosts;
	int unknown_host;         /* MTLS_SNI_DEFAULT or MTLS_SNI_REFUSE */
	int handshake_timeout;    /* seconds */
	int tls_min, tls_max;     /* MTLS_TLS1_*; 0: library default */
	int tls_line;
	char *alpn;
	int alpn_line;
	size_t max_conns;         /* its own connection cap, 0: none */
	int max_conns_line;
	char *ticket_key;         /* session_ticket_key FILE, or NULL */
	int ticket_key_line;
	int psk_ke;               /* tls13_resumption psk_ke: 1 */
	int psk_ke_line;          /* 0: not set (psk_dhe_ke) */
	int skipped;              /* tlsctx.c: not opened (see there) */
	mtls_ctx *ctx;            /* server context, built later */
	int fd;                   /* listening socket, -1 before */
	struct pxy_lcount *count; /* admit.c: its connections (proxy.c frees) */
};

struct pxy_config {
	char *path;               /* as given, for messages */
	int log_level;            /* MTLS_LOG_* */
	int workers;              /* worker processes (default 1) */
	int workers_line;
	enum { PXY_WATCH_ON, PXY_WATCH_OFF, PXY_WATCH_POLL } watch; /* watch.c */
	size_t max_conns;         /* connections open at once, all listeners */
	size_t max_hs;            /* client handshakes in progress */
	size_t max_hs_src;        /* ... from one IPv4 address or IPv6 /64 */
	int max_conns_line, max_hs_line, max_hs_src_line; /* 0: default */
	struct pxy_addr admin;    /* "admin ADDR:PORT": metrics and status */
	int admin_line;           /* 0: no admin endpoint */
	struct pxy_listen *listens;
	size_t n_listens;
	struct pxy_upstream *upstreams;
	size_t n_upstreams;
	int refs;                 /* proxy.c: current config + connections */
};

/* Receives each problem found, "FILE:LINE: why": those of the lines in
 * file order, then those of the checks across blocks. */
typedef void (*pxy_config_report_fn)(const char *msg);

/* Parses and checks `path`, every line and every block: a failed
 * directive does not stop the reading (a failed "... {" line skips its
 * block), so one run finds every problem of the file (up to 100; after
 * running out of memory, nothing more).  0, or the number of problems:
 * each is passed to report (when not NULL), the first is also written
 * into err.  On failure *cfg holds nothing to free.  Credentials are not
 * read here (tlsctx.c). */
int pxy_config_load(struct pxy_config *cfg, const char *path,
                    pxy_config_report_fn report, char *err, size_t errlen);

/* pxy_config_parse() flag: host names must be numeric addresses, so parsing
 * never asks a resolver (the fuzz target; names then fail to resolve). */
#define PXY_CONFIG_NUMERIC 0x01

/* The same, from len bytes of text (a NUL byte in a line is a problem),
 * without a report function.  `name` stands for the file: messages start
 * with it, it becomes cfg->path, and relative paths are taken from its
 * directory.  Nothing is opened: paths
 * are stored for tlsctx.c.  flags: 0 or PXY_CONFIG_NUMERIC. */
int pxy_config_parse(struct pxy_config *cfg, const char *text, size_t len,
                     const char *name, unsigned flags, char *err,
                     size_t errlen);

/* The block of the host that judged a handshake: `name` as
 * mtls_conn_host() reports it (the name given to mtls_ctx_add_host,
 * lowercased), compared with each host block's name as written, without
 * case and without any matching (a wildcard only finds its own "*.x"
 * block); NULL finds the listen block's own settings.  NULL when no host
 * block has that name.  The library made the one host decision from the
 * SNI name; this only finds its settings, it never decides again. */
const struct pxy_server *pxy_host_named(const struct pxy_listen *l,
                                        const char *name);

/* Frees everything the config holds, contexts included.  Sockets are the
 * caller's. */
void pxy_config_free(struct pxy_config *cfg);

/* "error", "warn", "info", "debug" -> MTLS_LOG_*, or -1. */
int pxy_log_level_parse(const char *word);

/* The client context and the name checked for target ti of u (tls on). */
mtls_ctx *pxy_target_ctx(const struct pxy_upstream *u, size_t ti);
const char *pxy_target_name(const struct pxy_upstream *u, size_t ti);

#endif
