/*
 * config.c - reads the mtls-proxy configuration file (syntax in config.h).
 *
 * Messages name the file and line of the offending directive, as a person
 * editing the file needs them: "proxy.conf:12: unknown directive 'foo'".
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_WORDS 12
#define MAX_LINE 4096

enum block { TOP, IN_LISTEN, IN_HOST, IN_UPSTREAM };

/* Problems reported before giving up: a file can only be so wrong. */
#define MAX_PROBLEMS 100

struct parser {
	struct pxy_config *cfg;
	const char *path;
	char dir[PATH_MAX]; /* relative paths are taken from here */
	unsigned flags;     /* PXY_CONFIG_* */
	int line;
	enum block in;
	int block_line;
	int skip;           /* depth of a block being skipped (its opening failed) */
	int problems;       /* reported so far */
	int fatal;          /* out of memory: stop parsing */
	pxy_config_report_fn report;
	char *err;          /* the first problem */
	size_t errlen;
};

static int fail(struct parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records one problem: the first goes into p->err, every one to the
 * report function, so a check names them all, not just the first. */
static int fail(struct parser *p, int line, const char *fmt, ...)
{
	char msg[512], full[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(full, sizeof(full), "%s:%d: %s", p->path, line, msg);
	else
		snprintf(full, sizeof(full), "%s: %s", p->path, msg);
	if (p->problems++ == 0)
		snprintf(p->err, p->errlen, "%s", full);
	if (p->report != NULL)
		p->report(full);
	return -1;
}

/* Out of memory leaves half-built entries behind: nothing after it can be
 * checked. */
static int oom(struct parser *p)
{
	p->fatal = 1;
	return fail(p, p->line, "out of memory");
}

int pxy_log_level_parse(const char *w)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	int i;

	for (i = 0; i < 4; i++)
		if (strcmp(w, names[i]) == 0)
			return i;
	return -1;
}

/* Splits a line into words; "#" starts a comment at the start of a line or
 * after a blank, so "#" inside a value (a URI fragment) survives. */
static int split(struct parser *p, char *s, char **w)
{
	int n = 0;
	char *c;

	for (c = s; *c != '\0'; c++)
		if (*c == '#' && (c == s || *(c - 1) == ' ' || *(c - 1) == '\t')) {
			*c = '\0';
			break;
		}
	for (c = strtok(s, " \t\r\n"); c != NULL; c = strtok(NULL, " \t\r\n")) {
		if (n == MAX_WORDS)
			return fail(p, p->line, "too many words");
		w[n++] = c;
	}
	return n;
}

/* A path as written, or joined to the config file's directory when
 * relative, so a config and its credentials can move together. */
static int set_path(struct parser *p, char **dst, int *dst_line,
                    const char *name, const char *val)
{
	char buf[PATH_MAX];

	if (*dst != NULL)
		return fail(p, p->line, "duplicate '%s' (first on line %d)",
		            name, *dst_line);
	if (val[0] == '/' || p->dir[0] == '\0')
		snprintf(buf, sizeof(buf), "%s", val);
	else if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", p->dir, val) >=
	         sizeof(buf))
		return fail(p, p->line, "path too long");
	if ((*dst = strdup(buf)) == NULL)
		return oom(p);
	*dst_line = p->line;
	return 0;
}

static int set_str(struct parser *p, char **dst, int *dst_line,
                   const char *name, const char *val)
{
	if (*dst != NULL)
		return fail(p, p->line, "duplicate '%s' (first on line %d)",
		            name, *dst_line);
	if ((*dst = strdup(val)) == NULL)
		return oom(p);
	*dst_line = p->line;
	return 0;
}

static int set_seconds(struct parser *p, int *dst, const char *name,
                       const char *val)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(val, &end, 10);
	if (errno != 0 || *end != '\0' || end == val || v < 1 || v > 86400)
		return fail(p, p->line,
		            "'%s' wants seconds from 1 to 86400, not '%s'", name,
		            val);
	*dst = (int)v;
	return 0;
}

/* A count for a limit: 1 to 1,000,000, once per block (or file). */
static int set_count(struct parser *p, size_t *dst, int *line, char **w,
                     int n)
{
	char *end;
	long v;

	if (*line != 0)
		return fail(p, p->line, "duplicate '%s' (first on line %d)",
		            w[0], *line);
	errno = 0;
	v = n == 2 ? strtol(w[1], &end, 10) : 0;
	if (n != 2 || errno != 0 || *end != '\0' || end == w[1] || v < 1 ||
	    v > 1000000)
		return fail(p, p->line, "'%s' wants a number from 1 to "
		            "1000000%s%s%s", w[0], n == 2 ? ", not '" : "",
		            n == 2 ? w[1] : "", n == 2 ? "'" : "");
	*dst = (size_t)v;
	*line = p->line;
	return 0;
}

/* "host:port", "[v6]:port" or "*:port" (listen only: any address). */
static int parse_addr(struct parser *p, struct pxy_addr *a, const char *text,
                      int passive)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_NUMERICSERV}, *res = NULL;
	char host[256];
	const char *colon = strrchr(text, ':'), *port;
	size_t hlen;
	unsigned long pnum;
	int rc;

	if (colon == NULL || colon[1] == '\0')
		return fail(p, p->line, "'%s': want HOST:PORT", text);
	port = colon + 1;
	hlen = (size_t)(colon - text);
	if (hlen > 1 && text[0] == '[' && text[hlen - 1] == ']') {
		text++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		return fail(p, p->line, "'%s': host name too long", text);
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	/* Checked for overflow: a number past the range of int must not
	 * wrap to a valid port (4294975739 to 8443). */
	errno = 0;
	pnum = strtoul(port, NULL, 10);
	if (strspn(port, "0123456789") != strlen(port) || errno != 0 ||
	    pnum < 1 || pnum > 65535)
		return fail(p, p->line, "'%s': bad port '%s'", text, port);
	if (passive)
		hints.ai_flags |= AI_PASSIVE;
	if (p->flags & PXY_CONFIG_NUMERIC)
		hints.ai_flags |= AI_NUMERICHOST;
	rc = getaddrinfo(strcmp(host, "*") == 0 || host[0] == '\0' ? NULL
	                                                             : host,
	                 port, &hints, &res);
	if (rc != 0)
		return fail(p, p->line, "cannot resolve '%s': %s", host,
		            gai_strerror(rc));
	memcpy(&a->sa, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	snprintf(a->host, sizeof(a->host), "%s", host);
	snprintf(a->port, sizeof(a->port), "%s", port);
	{
		unsigned char bin[sizeof(struct in6_addr)];

		a->by_name = host[0] != '\0' && strcmp(host, "*") != 0 &&
		             inet_pton(AF_INET, host, bin) != 1 &&
		             inet_pton(AF_INET6, host, bin) != 1;
	}
	snprintf(a->text, sizeof(a->text), "%s%s%s:%s",
	         strchr(host, ':') ? "[" : "", host,
	         strchr(host, ':') ? "]" : "", port);
	return 0;
}

static void *grow(void *arr, size_t n, size_t size)
{
	return realloc(arr, (n + 1) * size);
}

/* "tls_versions MIN [MAX]": 1.2 or 1.3 (one value: only that).  Checked against the library now,
 * so a TLS 1.3 request on a build without it is a config error. */
static int set_tls_versions(struct parser *p, int *mn, int *mx, int *line,
                            char **w, int n)
{
	int v[2], i, rc;
	mtls_ctx *t;

	if (n < 2 || n > 3)
		return fail(p, p->line, "tls_versions wants MIN [MAX], each "
		            "1.2 or 1.3");
	if (*line != 0)
		return fail(p, p->line, "duplicate 'tls_versions' (first on "
		            "line %d)", *line);
	for (i = 0; i < 2; i++) {
		const char *x = w[i + 1 < n ? i + 1 : 1];

		if (strcmp(x, "1.2") == 0)
			v[i] = MTLS_TLS1_2;
		else if (strcmp(x, "1.3") == 0)
			v[i] = MTLS_TLS1_3;
		else
			return fail(p, p->line, "tls_versions: '%s' is not "
			            "1.2 or 1.3", x);
	}
	if (v[0] > v[1])
		return fail(p, p->line, "tls_versions: minimum above maximum");
	if ((t = mtls_ctx_new(MTLS_ROLE_CLIENT)) == NULL)
		return oom(p);
	rc = mtls_ctx_set_tls_versions(t, v[0], v[1]);
	mtls_ctx_free(t);
	if (rc != 0)
		return fail(p, p->line, "tls_versions %s%s%s: %s (mbedTLS %s)",
		            w[1], n == 3 ? " " : "", n == 3 ? w[2] : "",
		            rc == MTLS_ERR_UNSUPPORTED
		                ? "TLS 1.3 is not supported by this build"
		                : mtls_strerror(rc),
		            mtls_mbedtls_version());
	*mn = v[0];
	*mx = v[1];
	*line = p->line;
	return 0;
}

static int set_alpn(struct parser *p, char **dst, int *line, char **w, int n)
{
	if (n != 2)
		return fail(p, p->line, "alpn takes one value: a comma "
		            "separated list (h2,http/1.1)");
	return set_str(p, dst, line, w[0], w[1]);
}

/* Directives a listen block and a host block share. */
static int server_directive(struct parser *p, struct pxy_server *l, char **w,
                            int n)
{
	static const struct {
		const char *name;
		mtls_allow_kind kind;
	} allows[] = {{"allow_uri", MTLS_ALLOW_URI},
	              {"allow_uri_prefix", MTLS_ALLOW_URI_PREFIX},
	              {"allow_dns", MTLS_ALLOW_DNS},
	              {"allow_cn", MTLS_ALLOW_CN},
	              {"allow_ou", MTLS_ALLOW_OU},
	              {"allow_pin", MTLS_ALLOW_SPKI_SHA256}};
	size_t i;

	if (n != 2)
		return fail(p, p->line, "'%s' takes one value", w[0]);
	if (strcmp(w[0], "cert") == 0)
		return set_path(p, &l->cert, &l->cert_line, w[0], w[1]);
	if (strcmp(w[0], "key") == 0)
		return set_path(p, &l->key, &l->key_line, w[0], w[1]);
	if (strcmp(w[0], "client_ca") == 0) {
		if (strcmp(w[1], "system") == 0)
			return set_str(p, &l->client_ca, &l->ca_line, w[0],
			               w[1]);
		return set_path(p, &l->client_ca, &l->ca_line, w[0], w[1]);
	}
	if (strcmp(w[0], "crl") == 0)
		return set_path(p, &l->crl, &l->crl_line, w[0], w[1]);
	if (strcmp(w[0], "upstream") == 0)
		return set_str(p, &l->upstream_name, &l->upstream_line, w[0],
		               w[1]);
	if (strcmp(w[0], "client_auth") == 0) {
		if (l->client_auth != -1)
			return fail(p, p->line, "duplicate 'client_auth'");
		if (strcmp(w[1], "require") == 0)
			l->client_auth = MTLS_VERIFY_REQUIRE;
		else if (strcmp(w[1], "optional") == 0)
			l->client_auth = MTLS_VERIFY_OPTIONAL;
		else if (strcmp(w[1], "none") == 0)
			l->client_auth = MTLS_VERIFY_NONE;
		else
			return fail(p, p->line,
			            "client_auth is require, optional or none, "
			            "not '%s'", w[1]);
		l->auth_line = p->line;
		return 0;
	}
	for (i = 0; i < sizeof(allows) / sizeof(allows[0]); i++) {
		struct pxy_allow *a;

		if (strcmp(w[0], allows[i].name) != 0)
			continue;
		if ((a = grow(l->allow, l->n_allow, sizeof(*a))) == NULL)
			return oom(p);
		l->allow = a;
		a[l->n_allow].kind = allows[i].kind;
		if ((a[l->n_allow].value = strdup(w[1])) == NULL)
			return oom(p);
		l->n_allow++;
		if (l->allow_line == 0)
			l->allow_line = p->line;
		return 0;
	}
	return fail(p, p->line, "unknown directive '%s' in %s block", w[0],
	            p->in == IN_HOST ? "host" : "listen");
}

static void server_init(struct pxy_server *s, int line)
{
	memset(s, 0, sizeof(*s));
	s->line = line;
	s->client_auth = -1;
}

/* "host NAME {": an exact DNS name or "*." and a domain. */
static int open_host(struct parser *p, struct pxy_listen *l, char **w, int n)
{
	struct pxy_server *h;
	const char *name = n == 3 ? w[1] : "";
	size_t i;

	if (n != 3 || strcmp(w[2], "{") != 0)
		return fail(p, p->line, "want 'host NAME {'");
	if (name[0] == '\0' || strspn(name, "abcdefghijklmnopqrstuvwxyz"
	                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                                    "0123456789-.*") != strlen(name) ||
	    strchr(name + (strncmp(name, "*.", 2) == 0 ? 1 : 0), '*') != NULL ||
	    strcmp(name, "*.") == 0)
		return fail(p, p->line, "host '%s': want a DNS name or "
		            "'*.domain'", name);
	for (i = 0; i < l->n_hosts; i++)
		if (strcasecmp(l->hosts[i].name, name) == 0)
			return fail(p, p->line, "host '%s' already defined on "
			            "line %d", name, l->hosts[i].line);
	if ((h = grow(l->hosts, l->n_hosts, sizeof(*h))) == NULL)
		return oom(p);
	l->hosts = h;
	h = &h[l->n_hosts++];
	server_init(h, p->line);
	if ((h->name = strdup(name)) == NULL)
		return oom(p);
	p->in = IN_HOST;
	return 0;
}

static int listen_directive(struct parser *p, char **w, int n)
{
	struct pxy_listen *l = &p->cfg->listens[p->cfg->n_listens - 1];

	if (p->in == IN_HOST) {
		struct pxy_server *h = &l->hosts[l->n_hosts - 1];

		/* The listen block negotiates the version; a host then
		 * refuses one outside its own bounds (tlsctx.c). */
		if (strcmp(w[0], "tls_versions") == 0)
			return set_tls_versions(p, &h->tls_min, &h->tls_max,
			                        &h->tls_line, w, n);
		return server_directive(p, h, w, n);
	}
	if (strcmp(w[0], "host") == 0)
		return open_host(p, l, w, n);
	if (strcmp(w[0], "handshake_timeout") == 0) {
		if (n != 2)
			return fail(p, p->line, "'%s' takes one value", w[0]);
		return set_seconds(p, &l->handshake_timeout, w[0], w[1]);
	}
	if (strcmp(w[0], "tls_versions") == 0)
		return set_tls_versions(p, &l->tls_min, &l->tls_max,
		                        &l->tls_line, w, n);
	if (strcmp(w[0], "alpn") == 0)
		return set_alpn(p, &l->alpn, &l->alpn_line, w, n);
	if (strcmp(w[0], "max_connections") == 0)
		return set_count(p, &l->max_conns, &l->max_conns_line, w, n);
	if (strcmp(w[0], "session_ticket_key") == 0) {
		if (n != 2)
			return fail(p, p->line, "'%s' takes one value: a file "
			            "of 80-byte keys", w[0]);
		return set_path(p, &l->ticket_key, &l->ticket_key_line, w[0],
		                w[1]);
	}
	if (strcmp(w[0], "tls13_resumption") == 0) {
		if (n != 2 || (strcmp(w[1], "psk_ke") != 0 &&
		               strcmp(w[1], "psk_dhe_ke") != 0))
			return fail(p, p->line,
			            "tls13_resumption is psk_dhe_ke or psk_ke");
		l->psk_ke = strcmp(w[1], "psk_ke") == 0;
		l->psk_ke_line = p->line;
		return 0;
	}
	if (strcmp(w[0], "unknown_host") == 0) {
		if (n != 2 || (strcmp(w[1], "refuse") != 0 &&
		               strcmp(w[1], "default") != 0))
			return fail(p, p->line,
			            "unknown_host is refuse or default");
		l->unknown_host = strcmp(w[1], "refuse") == 0
		                      ? MTLS_SNI_REFUSE : MTLS_SNI_DEFAULT;
		return 0;
	}
	return server_directive(p, &l->srv, w, n);
}

/* "target ADDR [cert F] [key F] [server_name NAME] [ca F]": the settings
 * after the address are this target's own (tls on), the others the
 * upstream's. */
static int add_target(struct parser *p, struct pxy_upstream *u, char **w,
                      int n)
{
	struct pxy_addr *t;
	struct pxy_target_tls *tt;
	int i, unused = p->line; /* a repeated setting is on this same line */

	if (n < 2 || n % 2 != 0)
		return fail(p, p->line, "target wants ADDR:PORT, then pairs "
		            "of cert FILE, key FILE, server_name NAME, ca FILE");
	if ((t = grow(u->targets, u->n_targets, sizeof(*t))) == NULL)
		return oom(p);
	u->targets = t;
	if ((tt = grow(u->ttls, u->n_targets, sizeof(*tt))) == NULL)
		return oom(p);
	u->ttls = tt;
	tt = &tt[u->n_targets];
	memset(tt, 0, sizeof(*tt));
	tt->line = p->line;
	/* counted now, so its strings are freed whatever fails below */
	if (parse_addr(p, &t[u->n_targets++], w[1], 0) != 0)
		return -1;
	for (i = 2; i + 1 < n; i += 2) {
		int rc;

		if (strcmp(w[i], "cert") == 0)
			rc = set_path(p, &tt->cert, &unused, w[i], w[i + 1]);
		else if (strcmp(w[i], "key") == 0)
			rc = set_path(p, &tt->key, &unused, w[i], w[i + 1]);
		else if (strcmp(w[i], "ca") == 0)
			rc = strcmp(w[i + 1], "system") == 0
			         ? set_str(p, &tt->ca, &unused, w[i], w[i + 1])
			         : set_path(p, &tt->ca, &unused, w[i], w[i + 1]);
		else if (strcmp(w[i], "server_name") == 0)
			rc = set_str(p, &tt->server_name, &unused, w[i],
			             w[i + 1]);
		else
			return fail(p, p->line, "target: unknown setting '%s' "
			            "(cert, key, server_name or ca)", w[i]);
		if (rc != 0)
			return rc;
	}
	if (tt->key != NULL && tt->cert == NULL)
		return fail(p, p->line, "target: 'key' without 'cert'");
	if (tt->cert != NULL && tt->key == NULL)
		return fail(p, p->line, "target: 'cert' without 'key'");
	return 0;
}

static int upstream_directive(struct parser *p, char **w, int n)
{
	struct pxy_upstream *u = &p->cfg->upstreams[p->cfg->n_upstreams - 1];

	if (strcmp(w[0], "tls_versions") == 0)
		return set_tls_versions(p, &u->tls_min, &u->tls_max,
		                        &u->tls_line, w, n);
	if (strcmp(w[0], "target") == 0)
		return add_target(p, u, w, n);
	if (n != 2)
		return fail(p, p->line, "'%s' takes one value", w[0]);
	if (strcmp(w[0], "alpn") == 0)
		return set_alpn(p, &u->alpn, &u->alpn_line, w, n);
	if (strcmp(w[0], "insecure_skip_verify") == 0) {
		if (strcmp(w[1], "on") != 0 && strcmp(w[1], "off") != 0)
			return fail(p, p->line, "insecure_skip_verify is on or "
			            "off, not '%s'", w[1]);
		u->insecure = strcmp(w[1], "on") == 0;
		u->insecure_line = p->line;
		return 0;
	}
	if (strcmp(w[0], "tls") == 0) {
		if (strcmp(w[1], "on") != 0 && strcmp(w[1], "off") != 0)
			return fail(p, p->line, "tls is on or off, not '%s'",
			            w[1]);
		u->tls = strcmp(w[1], "on") == 0;
		return 0;
	}
	if (strcmp(w[0], "cert") == 0)
		return set_path(p, &u->cert, &u->cert_line, w[0], w[1]);
	if (strcmp(w[0], "key") == 0)
		return set_path(p, &u->key, &u->key_line, w[0], w[1]);
	if (strcmp(w[0], "ca") == 0) {
		if (strcmp(w[1], "system") == 0) /* a keyword, not a path */
			return set_str(p, &u->ca, &u->ca_line, w[0], w[1]);
		return set_path(p, &u->ca, &u->ca_line, w[0], w[1]);
	}
	if (strcmp(w[0], "server_name") == 0)
		return set_str(p, &u->server_name, &u->name_line, w[0], w[1]);
	if (strcmp(w[0], "resolve_interval") == 0) {
		if (strcmp(w[1], "off") == 0) {
			u->resolve_interval = 0;
			return 0;
		}
		return set_seconds(p, &u->resolve_interval, w[0], w[1]);
	}
	if (strcmp(w[0], "connect_timeout") == 0)
		return set_seconds(p, &u->connect_timeout, w[0], w[1]);
	if (strcmp(w[0], "idle_timeout") == 0)
		return set_seconds(p, &u->idle_timeout, w[0], w[1]);
	if (strcmp(w[0], "proxy_protocol") == 0) {
		if (strcmp(w[1], "v2") != 0 && strcmp(w[1], "off") != 0)
			return fail(p, p->line,
			            "proxy_protocol is v2 or off, not '%s'", w[1]);
		u->proxy_protocol = strcmp(w[1], "v2") == 0 ? 2 : 0;
		return 0;
	}
	if (strcmp(w[0], "health_interval") == 0) {
		u->health_line = p->line;
		return set_seconds(p, &u->health_interval, w[0], w[1]);
	}
	if (strcmp(w[0], "health_http_get") == 0) {
		if (w[1][0] != '/' || strpbrk(w[1], "\r\n") != NULL)
			return fail(p, p->line, "health_http_get wants a path "
			            "starting with '/'");
		if (u->health_line == 0)
			u->health_line = p->line;
		return set_str(p, &u->health_get, &u->health_line, w[0],
		               w[1]);
	}
	return fail(p, p->line, "unknown directive '%s' in upstream block",
	            w[0]);
}

static int open_block(struct parser *p, char **w, int n)
{
	struct pxy_config *c = p->cfg;

	if (n != 3 || strcmp(w[2], "{") != 0)
		return fail(p, p->line, "want '%s %s {'", w[0],
		            strcmp(w[0], "listen") == 0 ? "ADDR:PORT" : "NAME");
	p->block_line = p->line;
	if (strcmp(w[0], "listen") == 0) {
		struct pxy_listen *l = grow(c->listens, c->n_listens, sizeof(*l));

		if (l == NULL)
			return oom(p);
		c->listens = l;
		l = &l[c->n_listens++];
		memset(l, 0, sizeof(*l));
		l->line = p->line;
		server_init(&l->srv, p->line);
		l->unknown_host = MTLS_SNI_DEFAULT;
		l->handshake_timeout = 10;
		l->fd = -1;
		p->in = IN_LISTEN;
		return parse_addr(p, &l->addr, w[1], 1);
	} else {
		struct pxy_upstream *u =
		    grow(c->upstreams, c->n_upstreams, sizeof(*u));
		size_t i;

		if (u == NULL)
			return oom(p);
		c->upstreams = u;
		for (i = 0; i < c->n_upstreams; i++)
			if (strcmp(u[i].name, w[1]) == 0)
				return fail(p, p->line,
				            "upstream '%s' already defined on "
				            "line %d", w[1], u[i].line);
		u = &u[c->n_upstreams++];
		memset(u, 0, sizeof(*u));
		u->line = p->line;
		u->connect_timeout = 5;
		u->idle_timeout = 300;
		u->resolve_interval = 30; /* PXY_RESOLVE_DEFAULT (resolve.h) */
		p->in = IN_UPSTREAM;
		if ((u->name = strdup(w[1])) == NULL)
			return oom(p);
		return 0;
	}
}

static int directive(struct parser *p, char **w, int n)
{
	if (strcmp(w[0], "}") == 0) {
		if (n != 1)
			return fail(p, p->line, "'}' stands alone on its line");
		if (p->in == TOP)
			return fail(p, p->line, "'}' without an open block");
		p->in = p->in == IN_HOST ? IN_LISTEN : TOP;
		return 0;
	}
	if (p->in == IN_LISTEN || p->in == IN_HOST)
		return listen_directive(p, w, n);
	if (p->in == IN_UPSTREAM)
		return upstream_directive(p, w, n);
	if (strcmp(w[0], "listen") == 0 || strcmp(w[0], "upstream") == 0)
		return open_block(p, w, n);
	if (strcmp(w[0], "workers") == 0) {
		char *end = NULL;
		long v = n == 2 ? strtol(w[1], &end, 10) : 0;

		if (n != 2 || *end != '\0' || v < 1 || v > 256)
			return fail(p, p->line, "workers wants a number from 1 "
			            "to 256");
		if (p->cfg->workers_line != 0)
			return fail(p, p->line, "duplicate 'workers' (first on "
			            "line %d)", p->cfg->workers_line);
		p->cfg->workers = (int)v;
		p->cfg->workers_line = p->line;
		return 0;
	}
	if (strcmp(w[0], "admin") == 0) {
		if (n != 2)
			return fail(p, p->line, "want 'admin ADDR:PORT'");
		if (p->cfg->admin_line != 0)
			return fail(p, p->line, "duplicate 'admin' (first on "
			            "line %d)", p->cfg->admin_line);
		if (strncmp(w[1], "*:", 2) == 0 || w[1][0] == ':')
			return fail(p, p->line, "admin wants an address, not "
			            "'%s' (127.0.0.1:PORT is advised)", w[1]);
		if (parse_addr(p, &p->cfg->admin, w[1], 1) != 0)
			return -1;
		p->cfg->admin_line = p->line;
		return 0;
	}
	if (strcmp(w[0], "max_connections") == 0)
		return set_count(p, &p->cfg->max_conns, &p->cfg->max_conns_line,
		                 w, n);
	if (strcmp(w[0], "max_handshakes") == 0)
		return set_count(p, &p->cfg->max_hs, &p->cfg->max_hs_line, w, n);
	if (strcmp(w[0], "max_handshakes_per_source") == 0)
		return set_count(p, &p->cfg->max_hs_src,
		                 &p->cfg->max_hs_src_line, w, n);
	if (strcmp(w[0], "watch") == 0) {
		if (n != 2 || (strcmp(w[1], "on") != 0 &&
		               strcmp(w[1], "off") != 0 &&
		               strcmp(w[1], "poll") != 0))
			return fail(p, p->line, "watch is on, off or poll");
		p->cfg->watch = strcmp(w[1], "on") == 0    ? PXY_WATCH_ON
		                : strcmp(w[1], "poll") == 0 ? PXY_WATCH_POLL
		                                            : PXY_WATCH_OFF;
		return 0;
	}
	if (strcmp(w[0], "log_level") == 0) {
		if (n != 2 || (p->cfg->log_level = pxy_log_level_parse(w[1])) < 0)
			return fail(p, p->line,
			            "log_level is error, warn, info or debug");
		return 0;
	}
	return fail(p, p->line, "unknown directive '%s'", w[0]);
}

static struct pxy_upstream *find_upstream(struct pxy_config *c,
                                          const char *name)
{
	size_t i;

	for (i = 0; i < c->n_upstreams; i++)
		if (strcmp(c->upstreams[i].name, name) == 0)
			return &c->upstreams[i];
	return NULL;
}

/* A listen block or a host in it.  A host without its own client_ca takes
 * the listen block's client-certificate settings (client_ca, crl,
 * client_auth, allow_*): adding a host never weakens client checks. */
static int check_server(struct parser *p, struct pxy_listen *l,
                        struct pxy_server *s)
{
	struct pxy_config *c = p->cfg;
	const char *what = s->name ? s->name : l->addr.text;

	if (s->cert == NULL)
		return fail(p, s->line, "%s %s: no 'cert'",
		            s->name ? "host" : "listen", what);
	if (s->name != NULL && s->client_ca == NULL) {
		if (s->crl || s->client_auth != -1 || s->n_allow)
			return fail(p, s->crl ? s->crl_line
			               : s->n_allow ? s->allow_line
			                            : s->auth_line,
			            "host %s: client settings without its own "
			            "'client_ca' (it uses the listen block's)",
			            what);
	}
	if (s->upstream_name == NULL && s->name == NULL)
		return fail(p, s->line, "listen %s: no 'upstream'", what);
	if (s->upstream_name == NULL) {
		s->upstream = l->srv.upstream;
	} else if ((s->upstream = find_upstream(c, s->upstream_name)) == NULL) {
		return fail(p, s->upstream_line, "no upstream named '%s'",
		            s->upstream_name);
	}
	if (s->client_ca == NULL && s->client_auth != -1 &&
	    s->client_auth != MTLS_VERIFY_NONE)
		return fail(p, s->auth_line, "client_auth needs a 'client_ca'");
	if (s->client_ca == NULL && s->n_allow > 0)
		return fail(p, s->allow_line,
		            "an allow list needs a 'client_ca'");
	if (s->client_ca == NULL && s->crl != NULL)
		return fail(p, s->crl_line, "'crl' needs a 'client_ca'");
	return 0;
}

/* One upstream block: what its directives cannot say alone. */
static int check_upstream(struct parser *p, struct pxy_upstream *u)
{
	if (u->n_targets == 0)
		return fail(p, u->line, "upstream %s: no 'target'",
		            u->name);
	if (!u->tls && (u->cert || u->key || u->ca || u->server_name ||
	                u->alpn || u->tls_line || u->insecure))
		return fail(p,
		            u->cert ? u->cert_line
		            : u->key ? u->key_line
		            : u->ca ? u->ca_line
		            : u->server_name ? u->name_line
		            : u->alpn ? u->alpn_line
		            : u->tls_line ? u->tls_line
		                          : u->insecure_line,
		            "upstream %s: TLS settings with 'tls off' "
		            "(add 'tls on')", u->name);
	if (u->key != NULL && u->cert == NULL)
		return fail(p, u->key_line, "'key' without 'cert'");
	for (size_t i = 0; i < u->n_targets; i++) {
		const struct pxy_target_tls *tt = &u->ttls[i];

		if (!u->tls && (tt->cert || tt->ca || tt->server_name))
			return fail(p, tt->line, "upstream %s: target TLS "
			            "settings with 'tls off' (add 'tls on')",
			            u->name);
	}
	if (u->health_get != NULL && u->health_interval == 0)
		return fail(p, u->health_line,
		            "health_http_get needs a 'health_interval'");
	if ((u->down = calloc(u->n_targets, 1)) == NULL)
		return oom(p);
	return 0;
}

/* What the grammar cannot say: required directives, references,
 * combinations that make no sense.  Every block is checked, so that one
 * run names every problem; a block with a directive that already failed
 * is left out (what it lacks may be that directive). */
static void check(struct parser *p)
{
	struct pxy_config *c = p->cfg;
	size_t i, j;

	if (c->n_listens == 0)
		fail(p, 0, "no 'listen' block");
	for (i = 0; i < c->n_listens && !p->fatal; i++) {
		struct pxy_listen *l = &c->listens[i];

		if (!l->srv.broken)
			(void)check_server(p, l, &l->srv);
		for (j = 0; j < l->n_hosts; j++)
			if (!l->hosts[j].broken)
				(void)check_server(p, l, &l->hosts[j]);
	}
	for (i = 0; i < c->n_upstreams && !p->fatal; i++)
		if (!c->upstreams[i].broken)
			(void)check_upstream(p, &c->upstreams[i]);
}

static void config_dir(struct parser *p, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (slash == path)
		n = 1; /* "/x.conf": root */
	if (n >= sizeof(p->dir))
		n = 0;
	memcpy(p->dir, path, n);
	p->dir[n] = '\0';
}

/* The block a failed directive belongs to, marked so that check() does
 * not pile consequences ("no 'target'") onto the problem itself. */
static void mark_broken(struct parser *p)
{
	struct pxy_config *c = p->cfg;
	struct pxy_listen *l;

	if (p->in == IN_UPSTREAM) {
		c->upstreams[c->n_upstreams - 1].broken = 1;
	} else if (p->in == IN_LISTEN || p->in == IN_HOST) {
		l = &c->listens[c->n_listens - 1];
		if (p->in == IN_HOST)
			l->hosts[l->n_hosts - 1].broken = 1;
		else
			l->srv.broken = 1;
	}
}

/* A line inside a block whose opening line failed: only braces count, so
 * parsing picks up again after its "}". */
static void skip_line(struct parser *p, char **w, int n)
{
	if (n > 0 && strcmp(w[n - 1], "{") == 0)
		p->skip++;
	else if (n > 0 && strcmp(w[0], "}") == 0)
		p->skip--;
}

/* One line's words.  A failed directive is reported and parsing goes
 * on with the next line; a failed "... {" skips its whole block. */
static void parse_words(struct parser *p, char **w, int n)
{
	enum block before = p->in;
	size_t blocks = p->cfg->n_listens + p->cfg->n_upstreams;
	size_t hosts = before == IN_LISTEN
	                   ? p->cfg->listens[p->cfg->n_listens - 1].n_hosts
	                   : 0;

	if (p->skip > 0) {
		skip_line(p, w, n);
		return;
	}
	if (directive(p, w, n) == 0 || p->fatal)
		return;
	if (strcmp(w[n - 1], "{") == 0 && p->in == before &&
	    p->cfg->n_listens + p->cfg->n_upstreams == blocks &&
	    (before != IN_LISTEN ||
	     p->cfg->listens[p->cfg->n_listens - 1].n_hosts == hosts))
		p->skip = 1; /* no block was opened for its "}" to close */
	else
		mark_broken(p);
}

/* The text, line by line.  A line with its newline fits in MAX_LINE - 1
 * bytes, as when it was read with fgets() into MAX_LINE. */
static int parse_text(struct parser *p, const char *text, size_t len)
{
	char line[MAX_LINE], *w[MAX_WORDS];
	size_t off = 0, ll;
	int n;

	while (off < len && !p->fatal && p->problems < MAX_PROBLEMS) {
		const char *at = text + off, *nl = memchr(at, '\n', len - off);

		p->line++;
		ll = nl != NULL ? (size_t)(nl - at) : len - off;
		off += ll + (nl != NULL);
		if (ll >= MAX_LINE - 1) {
			fail(p, p->line, "line too long");
			continue;
		}
		if (memchr(at, '\0', ll) != NULL) {
			fail(p, p->line, "NUL byte in the line");
			continue;
		}
		memcpy(line, at, ll);
		line[ll] = '\0';
		if ((n = split(p, line, w)) < 0) {
			mark_broken(p);
			continue;
		}
		if (n > 0)
			parse_words(p, w, n);
	}
	if (p->fatal || p->problems >= MAX_PROBLEMS)
		return p->problems;
	if (p->in != TOP || p->skip > 0)
		fail(p, p->block_line, "block not closed with '}'");
	else
		check(p);
	return p->problems;
}

static int parse(struct pxy_config *cfg, const char *text, size_t len,
                 const char *name, unsigned flags,
                 pxy_config_report_fn report, char *err, size_t errlen)
{
	struct parser p = {.cfg = cfg, .path = name, .flags = flags,
	                   .report = report,
	                   .err = err, .errlen = errlen};

	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = MTLS_LOG_INFO;
	cfg->workers = 1;
	cfg->watch = PXY_WATCH_ON;
	cfg->max_conns = PXY_MAX_CONNECTIONS;
	cfg->max_hs = PXY_MAX_HANDSHAKES;
	cfg->max_hs_src = PXY_MAX_HANDSHAKES_PER_SOURCE;
	config_dir(&p, name);
	if (parse_text(&p, text, len) == 0 &&
	    (cfg->path = strdup(name)) == NULL)
		oom(&p);
	if (p.problems != 0)
		pxy_config_free(cfg);
	return p.problems;
}

int pxy_config_parse(struct pxy_config *cfg, const char *text, size_t len,
                     const char *name, unsigned flags, char *err,
                     size_t errlen)
{
	return parse(cfg, text, len, name, flags, NULL, err, errlen);
}

/* Reads the whole file, then parses it from memory. */
int pxy_config_load(struct pxy_config *cfg, const char *path,
                    pxy_config_report_fn report, char *err, size_t errlen)
{
	char *text = NULL, *t;
	size_t len = 0, cap = 0, got;
	FILE *f;
	int rc = 1, parsed = 0;

	memset(cfg, 0, sizeof(*cfg));
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (report != NULL)
			report(err);
		return 1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? 2 * cap : 8192;
			if ((t = realloc(text, cap)) == NULL) {
				snprintf(err, errlen, "%s: out of memory", path);
				goto out;
			}
			text = t;
		}
		if ((got = fread(text + len, 1, cap - len, f)) == 0)
			break;
		len += got;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error: %s", path,
		         strerror(errno));
		goto out;
	}
	parsed = 1;
	rc = parse(cfg, text, len, path, 0, report, err, errlen);
out:
	if (!parsed && report != NULL)
		report(err); /* parse() reports its own */
	fclose(f);
	free(text);
	return rc;
}

static void server_free(struct pxy_server *s)
{
	size_t j;

	free(s->name);
	free(s->cert);
	free(s->key);
	free(s->client_ca);
	free(s->crl);
	free(s->upstream_name);
	mtls_ctx_free(s->ctx);
	for (j = 0; j < s->n_allow; j++)
		free(s->allow[j].value);
	free(s->allow);
}

const struct pxy_server *pxy_host_named(const struct pxy_listen *l,
                                        const char *name)
{
	size_t i;

	if (name == NULL)
		return &l->srv;
	for (i = 0; i < l->n_hosts; i++)
		if (strcasecmp(l->hosts[i].name, name) == 0)
			return &l->hosts[i];
	return NULL;
}

void pxy_config_free(struct pxy_config *cfg)
{
	size_t i, j;

	for (i = 0; i < cfg->n_listens; i++) {
		struct pxy_listen *l = &cfg->listens[i];

		server_free(&l->srv);
		for (j = 0; j < l->n_hosts; j++)
			server_free(&l->hosts[j]);
		free(l->hosts);
		free(l->alpn);
		free(l->ticket_key);
		mtls_ctx_free(l->ctx);
	}
	for (i = 0; i < cfg->n_upstreams; i++) {
		struct pxy_upstream *u = &cfg->upstreams[i];

		free(u->name);
		for (size_t t = 0; t < u->n_targets && u->ttls; t++) {
			free(u->ttls[t].cert);
			free(u->ttls[t].key);
			free(u->ttls[t].ca);
			free(u->ttls[t].server_name);
			mtls_ctx_free(u->ttls[t].ctx);
		}
		free(u->ttls);
		free(u->targets);
		free(u->down);
		free(u->cert);
		free(u->key);
		free(u->ca);
		free(u->server_name);
		free(u->health_get);
		free(u->alpn);
		mtls_ctx_free(u->ctx);
	}
	free(cfg->listens);
	free(cfg->upstreams);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
}

mtls_ctx *pxy_target_ctx(const struct pxy_upstream *u, size_t ti)
{
	return u->ttls[ti].ctx != NULL ? u->ttls[ti].ctx : u->ctx;
}

const char *pxy_target_name(const struct pxy_upstream *u, size_t ti)
{
	if (u->ttls[ti].server_name != NULL)
		return u->ttls[ti].server_name;
	return u->server_name != NULL ? u->server_name : u->targets[ti].host;
}
