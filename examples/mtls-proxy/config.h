/*
 * config.h - the mtls-proxy configuration file: syntax, parsing, checks.
 *
 * One directive per line, words separated by blanks, "#" to the end of the
 * line is a comment.  Two block kinds, "listen ADDR:PORT {" and
 * "upstream NAME {", closed by "}" on its own line.  See
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
};

struct pxy_allow {
	mtls_allow_kind kind;
	char *value;
};

struct pxy_upstream {
	char *name;
	int line;                 /* where the block starts */
	struct pxy_addr *targets; /* round robin */
	size_t n_targets;
	size_t next;              /* next target to try */
	int tls;                  /* 1: mTLS to the targets; 0: plain TCP */
	char *cert, *key, *ca, *server_name;
	int cert_line, key_line, ca_line, name_line;
	int connect_timeout;      /* seconds: connect + upstream handshake */
	int idle_timeout;         /* seconds without a byte either way */
	mtls_ctx *ctx;            /* client context when tls, built later */
};

struct pxy_listen {
	struct pxy_addr addr;
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
	int handshake_timeout;    /* seconds */
	mtls_ctx *ctx;            /* server context, built later */
	int fd;                   /* listening socket, -1 before */
};

struct pxy_config {
	char *path;               /* as given, for messages */
	int log_level;            /* MTLS_LOG_* */
	struct pxy_listen *listens;
	size_t n_listens;
	struct pxy_upstream *upstreams;
	size_t n_upstreams;
};

/* Parses and checks `path`.  0, or -1 with a message "FILE:LINE: why"
 * written into err.  On failure *cfg holds nothing to free. */
int pxy_config_load(struct pxy_config *cfg, const char *path, char *err,
                    size_t errlen);

/* Frees everything the config holds, contexts included.  Sockets are the
 * caller's. */
void pxy_config_free(struct pxy_config *cfg);

/* "error", "warn", "info", "debug" -> MTLS_LOG_*, or -1. */
int pxy_log_level_parse(const char *word);

#endif
