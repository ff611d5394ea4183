/*
 * mtls_server.c - the server of raw_server.c on libmtls's connection API:
 * same event loop (serve.h), same responder; the difference in their
 * figures is libmtls's own cost.
 *
 *   mtls_server PORT CERT_CHAIN KEY CLIENT_CA [LIFETIME_SECONDS]
 *
 * Client certificates REQUIRED (the default once a client CA is set);
 * session resumption (tickets + cache) is on by default.
 */
#include "serve.h"

#include <mtls.h>

static mtls_ctx *ctx;

static int map(ssize_t r)
{
	if (r == MTLS_WANT_READ)
		return OP_WANT_READ;
	if (r == MTLS_WANT_WRITE)
		return OP_WANT_WRITE;
	return r < 0 ? -1 : (int)r;
}

static void *m_open(int fd)
{
	return mtls_conn_new(ctx, fd, NULL);
}

static int m_handshake(void *t)
{
	return map(mtls_handshake(t));
}

static ssize_t m_read(void *t, void *b, size_t n)
{
	ssize_t r = mtls_read(t, b, n);
	return r > 0 ? r : map(r);
}

static ssize_t m_write(void *t, const void *b, size_t n)
{
	ssize_t r = mtls_write(t, b, n);
	return r > 0 ? r : map(r);
}

static void m_close(void *t)
{
	mtls_conn_free(t);
}

int main(int argc, char **argv)
{
	static const struct bench_ops ops = {m_open, m_handshake, m_read,
	                                     m_write, m_close};
	int r;

	if (argc < 5) {
		fprintf(stderr, "usage: %s PORT CHAIN KEY CLIENT_CA [LIFETIME]\n",
		        argv[0]);
		return 2;
	}
	ctx = mtls_ctx_new(MTLS_ROLE_SERVER);
	if (ctx == NULL || mtls_load_server_pair(ctx, argv[2], argv[3]) != 0 ||
	    mtls_set_trusted_ca(ctx, argv[4]) != 0 ||
	    mtls_ctx_set_verify(ctx, MTLS_VERIFY_REQUIRE) != 0) {
		fprintf(stderr, "mtls_server: %s\n",
		        ctx ? mtls_ctx_error(ctx) : "out of memory");
		mtls_ctx_free(ctx);
		return 1;
	}
	r = bench_serve(&ops, atoi(argv[1]), argc > 5 ? atoi(argv[5]) : 3600);
	mtls_ctx_free(ctx);
	return r;
}
