/*
 * fuzz_handshake.c - arbitrary bytes as the peer's flight, against a real
 * server context (client certificates required) and a real client context.
 * The first input byte picks the role; the rest is what the "peer" sends.
 * Contexts are built once from PEM files named by MTLS_FUZZ_PKI (a
 * directory made by tests/pki.sh).
 */
#include <mtls.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct feed {
	const uint8_t *p;
	size_t left;
};

static ssize_t feed_recv(void *user, void *buf, size_t len)
{
	struct feed *f = user;

	if (f->left == 0)
		return 0; /* end of stream: the handshake must fail cleanly */
	if (len > f->left)
		len = f->left;
	memcpy(buf, f->p, len);
	f->p += len;
	f->left -= len;
	return (ssize_t)len;
}

static ssize_t sink_send(void *user, const void *buf, size_t len)
{
	(void)user;
	(void)buf;
	return (ssize_t)len;
}

static mtls_ctx *make(mtls_role role)
{
	const char *dir = getenv("MTLS_FUZZ_PKI");
	char cert[4096], key[4096], ca[4096];
	mtls_ctx *ctx = mtls_ctx_new(role);
	const char *who = role == MTLS_ROLE_SERVER ? "server" : "client";

	if (dir == NULL || ctx == NULL) {
		fprintf(stderr, "set MTLS_FUZZ_PKI to a tests/pki.sh directory\n");
		abort();
	}
	snprintf(cert, sizeof(cert), "%s/%s-ec-chain.pem", dir, who);
	snprintf(key, sizeof(key), "%s/%s-ec.key", dir, who);
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	if ((role == MTLS_ROLE_SERVER ? mtls_load_server_pair(ctx, cert, key)
	                              : mtls_load_client_pair(ctx, cert, key)) != 0 ||
	    mtls_set_trusted_ca(ctx, ca) != 0) {
		fprintf(stderr, "fuzz setup: %s\n", mtls_ctx_error(ctx));
		abort();
	}
	return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static mtls_ctx *server, *client;
	struct feed f;
	mtls_conn *c;
	char buf[512];

	if (server == NULL) {
		server = make(MTLS_ROLE_SERVER);
		client = make(MTLS_ROLE_CLIENT);
	}
	if (size < 1)
		return 0;
	f.p = data + 1;
	f.left = size - 1;
	c = mtls_conn_new_io(data[0] & 1 ? client : server, sink_send,
	                     feed_recv, &f, "localhost");
	if (c == NULL)
		return 0;
	/* The feed never blocks, so each call either progresses or ends. */
	if (mtls_handshake(c) == 0) {
		mtls_peer p;
		mtls_verify_peer(c, &p);
		while (mtls_read(c, buf, sizeof(buf)) > 0)
			;
	}
	mtls_conn_free(c);
	return 0;
}
