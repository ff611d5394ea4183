/*
 * raw_server.c - a minimal mTLS server written straight on mbedTLS (no
 * libmtls): the baseline that mtls_server.c is measured against.
 *
 *   raw_server PORT CERT_CHAIN KEY CLIENT_CA [LIFETIME_SECONDS]
 *
 * Client certificates REQUIRED (chain to CLIENT_CA), session tickets
 * (AES-256-GCM) and a session-ID cache on, TLS 1.2 and (mbedTLS 3.x) 1.3,
 * default curves and suites.  The event loop and HTTP responder are in
 * serve.h and shared with mtls_server.c.
 */
#include "serve.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#if MBEDTLS_VERSION_MAJOR >= 3 && defined(MBEDTLS_PSA_CRYPTO_C)
#include <psa/crypto.h>
#endif

struct raw_conn {
	mbedtls_ssl_context ssl;
	mbedtls_net_context net;
};

static mbedtls_ssl_config conf;

static int map(int r)
{
	if (r == MBEDTLS_ERR_SSL_WANT_READ)
		return OP_WANT_READ;
	if (r == MBEDTLS_ERR_SSL_WANT_WRITE)
		return OP_WANT_WRITE;
#ifdef MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET
	if (r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
		return OP_WANT_READ;
#endif
	return r < 0 ? -1 : r;
}

static void *raw_open(int fd)
{
	struct raw_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	mbedtls_ssl_init(&c->ssl);
	c->net.fd = fd;
	if (mbedtls_ssl_setup(&c->ssl, &conf) != 0) {
		mbedtls_ssl_free(&c->ssl);
		free(c);
		return NULL;
	}
	mbedtls_ssl_set_bio(&c->ssl, &c->net, mbedtls_net_send, mbedtls_net_recv,
	                    NULL);
	return c;
}

static int raw_handshake(void *t)
{
	return map(mbedtls_ssl_handshake(&((struct raw_conn *)t)->ssl));
}

static ssize_t raw_read(void *t, void *b, size_t n)
{
	return map(mbedtls_ssl_read(&((struct raw_conn *)t)->ssl, b, n));
}

static ssize_t raw_write(void *t, const void *b, size_t n)
{
	return map(mbedtls_ssl_write(&((struct raw_conn *)t)->ssl, b, n));
}

static void raw_close(void *t)
{
	struct raw_conn *c = t;

	if (c == NULL)
		return;
	mbedtls_ssl_free(&c->ssl);
	free(c);
}

int main(int argc, char **argv)
{
	static const struct bench_ops ops = {raw_open, raw_handshake, raw_read,
	                                     raw_write, raw_close};
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_x509_crt chain, ca;
	mbedtls_pk_context key;
	mbedtls_ssl_cache_context cache;
	mbedtls_ssl_ticket_context ticket;
	int r;

	if (argc < 5) {
		fprintf(stderr, "usage: %s PORT CHAIN KEY CLIENT_CA [LIFETIME]\n",
		        argv[0]);
		return 2;
	}
#if MBEDTLS_VERSION_MAJOR >= 3 && defined(MBEDTLS_PSA_CRYPTO_C)
	if (psa_crypto_init() != PSA_SUCCESS)
		return 1;
#endif
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_x509_crt_init(&chain);
	mbedtls_x509_crt_init(&ca);
	mbedtls_pk_init(&key);
	mbedtls_ssl_config_init(&conf);
	mbedtls_ssl_cache_init(&cache);
	mbedtls_ssl_ticket_init(&ticket);

	if ((r = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
	                               (const unsigned char *)"raw", 3)) != 0 ||
	    (r = mbedtls_x509_crt_parse_file(&chain, argv[2])) != 0 ||
#if MBEDTLS_VERSION_MAJOR >= 3
	    (r = mbedtls_pk_parse_keyfile(&key, argv[3], NULL,
	                                  mbedtls_ctr_drbg_random, &drbg)) != 0 ||
#else
	    (r = mbedtls_pk_parse_keyfile(&key, argv[3], NULL)) != 0 ||
#endif
	    (r = mbedtls_x509_crt_parse_file(&ca, argv[4])) != 0 ||
	    (r = mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_SERVER,
	                                     MBEDTLS_SSL_TRANSPORT_STREAM,
	                                     MBEDTLS_SSL_PRESET_DEFAULT)) != 0 ||
	    (r = mbedtls_ssl_conf_own_cert(&conf, &chain, &key)) != 0 ||
	    (r = mbedtls_ssl_ticket_setup(&ticket, mbedtls_ctr_drbg_random, &drbg,
	                                  MBEDTLS_CIPHER_AES_256_GCM, 86400)) != 0) {
		fprintf(stderr, "raw_server: setup failed: -0x%04x\n", (unsigned)-r);
		return 1;
	}
	mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
	mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
	mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_session_cache(&conf, &cache, mbedtls_ssl_cache_get,
	                               mbedtls_ssl_cache_set);
	mbedtls_ssl_conf_session_tickets_cb(&conf, mbedtls_ssl_ticket_write,
	                                    mbedtls_ssl_ticket_parse, &ticket);

	r = bench_serve(&ops, atoi(argv[1]), argc > 5 ? atoi(argv[5]) : 3600);

	mbedtls_ssl_ticket_free(&ticket);
	mbedtls_ssl_cache_free(&cache);
	mbedtls_ssl_config_free(&conf);
	mbedtls_pk_free(&key);
	mbedtls_x509_crt_free(&ca);
	mbedtls_x509_crt_free(&chain);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	return r;
}
