/*
 * fuzz_config.c - the mtls-proxy configuration parser
 * (examples/mtls-proxy/config.c) on arbitrary text, as if read from NAME
 * (a directory long enough that a joined path can pass PATH_MAX).
 * Addresses must be numeric (PXY_CONFIG_NUMERIC), so no resolver is asked;
 * the parser opens no file (paths are only stored, credentials are
 * tlsctx.c's), so no input makes it read one.
 * A failure must leave a message naming the file and an empty config (the
 * leak checker sees the rest); a success must hold what config.h promises.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "/fuzz/mtls-proxy/proxy.conf"

#define CHECK(c) \
	do { \
		if (!(c)) { \
			fprintf(stderr, "fuzz_config: %s:%d: %s\n", __FILE__, \
			        __LINE__, #c); \
			abort(); \
		} \
	} while (0)

/* Absolute, or joined to the config's directory; "system" for CAs. */
static void check_path(const char *path, int may_be_system)
{
	if (path == NULL)
		return;
	if (may_be_system && strcmp(path, "system") == 0)
		return;
	CHECK(path[0] == '/');
}

/* The port bound or dialled is the one written after the last ':'. */
static void check_addr(const struct pxy_addr *a)
{
	const char *colon = strrchr(a->text, ':');
	unsigned port;

	CHECK(memchr(a->text, '\0', sizeof(a->text)) != NULL);
	CHECK(memchr(a->host, '\0', sizeof(a->host)) != NULL);
	CHECK(a->len > 0 && a->len <= sizeof(a->sa));
	if (a->sa.ss_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)&a->sa)->sin_port);
	else if (a->sa.ss_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)&a->sa)->sin6_port);
	else
		abort();
	CHECK(colon != NULL);
	CHECK(port >= 1 && port <= 65535);
	/* (Unless the text was cut: a port with many leading zeros.) */
	if (strlen(a->text) < sizeof(a->text) - 1)
		CHECK(strtoul(colon + 1, NULL, 10) == port);
}

static int is_upstream(const struct pxy_config *c,
                       const struct pxy_upstream *u)
{
	size_t i;

	for (i = 0; i < c->n_upstreams; i++)
		if (u == &c->upstreams[i])
			return 1;
	return 0;
}

static void check_server(const struct pxy_config *c,
                         const struct pxy_server *s)
{
	size_t i;

	CHECK(s->cert != NULL);
	check_path(s->cert, 0);
	check_path(s->key, 0);
	check_path(s->client_ca, 1);
	check_path(s->crl, 0);
	CHECK(is_upstream(c, s->upstream));
	for (i = 0; i < s->n_allow; i++)
		CHECK(s->allow[i].value != NULL);
	if (s->client_ca == NULL)
		CHECK(s->n_allow == 0 && s->crl == NULL);
}

/* Names are unique (case aside): the library names a host by its own
 * name (lowercased), and that finds its block, nothing else. */
static void check_host(const struct pxy_listen *l, const struct pxy_server *h)
{
	char lower[8192];
	size_t i, n = strlen(h->name);

	CHECK(pxy_host_named(l, h->name) == h);
	if (n >= sizeof(lower))
		return;
	for (i = 0; i <= n; i++)
		lower[i] = (char)tolower((unsigned char)h->name[i]);
	CHECK(pxy_host_named(l, lower) == h);
}

static void check_config(const struct pxy_config *c)
{
	size_t i, j;

	CHECK(c->path != NULL && strcmp(c->path, NAME) == 0);
	CHECK(c->log_level >= MTLS_LOG_ERROR && c->log_level <= MTLS_LOG_DEBUG);
	CHECK(c->workers >= 1 && c->workers <= 256);
	CHECK(c->max_conns >= 1 && c->max_conns <= 1000000);
	CHECK(c->max_hs >= 1 && c->max_hs <= 1000000);
	CHECK(c->max_hs_src >= 1 && c->max_hs_src <= 1000000);
	CHECK(c->n_listens > 0);
	for (i = 0; i < c->n_listens; i++) {
		const struct pxy_listen *l = &c->listens[i];

		check_addr(&l->addr);
		check_server(c, &l->srv);
		CHECK(l->handshake_timeout >= 1 &&
		      l->handshake_timeout <= 86400);
		CHECK(l->fd == -1 && l->ctx == NULL && l->count == NULL);
		CHECK(l->max_conns <= 1000000);
		CHECK(pxy_host_named(l, NULL) == &l->srv);
		for (j = 0; j < l->n_hosts; j++) {
			const struct pxy_server *h = &l->hosts[j];

			CHECK(h->name != NULL && h->name[0] != '\0');
			check_server(c, h);
			check_host(l, h);
		}
	}
	for (i = 0; i < c->n_upstreams; i++) {
		const struct pxy_upstream *u = &c->upstreams[i];

		CHECK(u->name != NULL);
		CHECK(u->n_targets > 0 && u->down != NULL);
		for (j = 0; j < u->n_targets; j++)
			check_addr(&u->targets[j]);
		check_path(u->cert, 0);
		check_path(u->key, 0);
		check_path(u->ca, 1);
		CHECK(u->tls || (u->cert == NULL && u->ca == NULL &&
		                 u->server_name == NULL && !u->insecure));
		CHECK(u->connect_timeout >= 1 && u->idle_timeout >= 1);
		CHECK(u->health_get == NULL || u->health_interval > 0);
		CHECK(u->ctx == NULL);
	}
}

/* What pxy_config_free() leaves, and a failed parse must: nothing. */
static int is_empty(const struct pxy_config *c)
{
	return c->path == NULL && c->log_level == 0 && c->workers == 0 &&
	       c->workers_line == 0 && c->max_conns == 0 && c->max_hs == 0 &&
	       c->max_hs_src == 0 && c->listens == NULL &&
	       c->n_listens == 0 && c->upstreams == NULL &&
	       c->n_upstreams == 0 && c->refs == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pxy_config cfg;
	char err[512];

	memset(&cfg, 0xA5, sizeof(cfg)); /* the parser must not rely on it */
	memset(err, 0xA5, sizeof(err));
	if (pxy_config_parse(&cfg, (const char *)data, size, NAME,
	                     PXY_CONFIG_NUMERIC, err, sizeof(err)) == 0) {
		check_config(&cfg);
		pxy_config_free(&cfg);
		CHECK(is_empty(&cfg));
		return 0;
	}
	CHECK(memchr(err, '\0', sizeof(err)) != NULL);
	CHECK(strncmp(err, NAME ":", strlen(NAME ":")) == 0);
	CHECK(strlen(err) > strlen(NAME ":"));
	CHECK(is_empty(&cfg));
	return 0;
}
