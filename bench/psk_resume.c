/*
 * bench/psk_resume.c - what a TLS 1.3 resumption costs an mbedTLS 3.6
 * server with psk_dhe_ke (an ECDHE per resumption) and with psk_ke (none),
 * measured on raw mbedTLS (no libmtls), both ends in one thread over
 * memory buffers, so callgrind can count the server's instructions alone:
 *
 *   valgrind --tool=callgrind --toggle-collect=server_step \
 *       bench/psk_resume PKI_DIR dhe|psk N
 *
 * One full handshake (certificate mode) issues a ticket; then N
 * resumptions of it on a second server configuration sharing the ticket
 * keys, whose key exchange modes are psk_ephemeral ("dhe") or psk alone
 * ("psk").  The psk server has no certificate mode: mbedTLS 3.6 ranks
 * psk_ephemeral > ephemeral (certificates) > psk, so a server that can do
 * full TLS 1.3 handshakes never picks psk_ke (see bench/levers.md).
 * Prints the server's thread CPU time per resumption.  Exit status 0 only
 * if every resumption resumed in the mode asked for.
 *
 * Build (3.6 from .deps):
 *   cc -O2 -o bench/psk_resume bench/psk_resume.c \
 *      -I.deps/mbedtls-3.6/usr/include -L.deps/mbedtls-3.6/usr/lib/x86_64-linux-gnu \
 *      -Wl,-rpath,$PWD/.deps/mbedtls-3.6/usr/lib/x86_64-linux-gnu \
 *      -lmbedtls -lmbedx509 -lmbedcrypto
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <psa/crypto.h>

#if MBEDTLS_VERSION_NUMBER < 0x03060000 || !defined(MBEDTLS_SSL_PROTO_TLS1_3)
#error "needs mbedTLS 3.6 with TLS 1.3"
#endif

typedef struct pipe_ {
	unsigned char buf[1 << 16];
	size_t len;
} pipe_;

typedef struct end_ {
	pipe_ *in, *out;
} end_;

static int snd(void *p, const unsigned char *b, size_t n)
{
	pipe_ *o = ((end_ *)p)->out;

	if (n > sizeof(o->buf) - o->len)
		n = sizeof(o->buf) - o->len;
	if (n == 0)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	memcpy(o->buf + o->len, b, n);
	o->len += n;
	return (int)n;
}

static int rcv(void *p, unsigned char *b, size_t n)
{
	pipe_ *i = ((end_ *)p)->in;

	if (i->len == 0)
		return MBEDTLS_ERR_SSL_WANT_READ;
	if (n > i->len)
		n = i->len;
	memcpy(b, i->buf, n);
	memmove(i->buf, i->buf + n, i->len - n);
	i->len -= n;
	return (int)n;
}

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static double server_cpu;

static double cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Everything the server does; the only function callgrind collects. */
__attribute__((noinline)) int server_step(mbedtls_ssl_context *s);
__attribute__((noinline)) int server_step(mbedtls_ssl_context *s)
{
	double t0 = cpu_now();
	int r = mbedtls_ssl_handshake(s);

	server_cpu += cpu_now() - t0;
	return r;
}

/* Tickets the server opened: a resumption configuration that has no
 * certificate mode can only complete a handshake by resuming one. */
static int parsed;

static int parse_count(void *p, mbedtls_ssl_session *s, unsigned char *b,
                       size_t n)
{
	int r = mbedtls_ssl_ticket_parse(p, s, b, n);

	parsed += r == 0;
	return r;
}

static int done(int r)
{
	return r == 0;
}

static int want(int r)
{
	return r == MBEDTLS_ERR_SSL_WANT_READ ||
	       r == MBEDTLS_ERR_SSL_WANT_WRITE ||
	       r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET;
}

/* One connection; offer (may be NULL) is resumed, save gets the ticket.
 * Returns 1 resumed, 0 full, -1 failed. */
static int connect_once(mbedtls_ssl_config *cc, mbedtls_ssl_config *sc,
                        const mbedtls_ssl_session *offer,
                        mbedtls_ssl_session *save)
{
	pipe_ a = {0}, b = {0};
	end_ ce = {&a, &b}, se = {&b, &a};
	mbedtls_ssl_context c, s;
	int rc = -1, cr = 1, sr = 1, i;
	unsigned char tmp[64];
	int before = parsed;

	mbedtls_ssl_init(&c);
	mbedtls_ssl_init(&s);
	if (mbedtls_ssl_setup(&c, cc) || mbedtls_ssl_setup(&s, sc) ||
	    mbedtls_ssl_set_hostname(&c, "localhost"))
		goto out;
	if (offer != NULL && mbedtls_ssl_set_session(&c, offer) != 0)
		goto out;
	mbedtls_ssl_set_bio(&c, &ce, snd, rcv, NULL);
	mbedtls_ssl_set_bio(&s, &se, snd, rcv, NULL);
	for (i = 0; i < 1000 && !(done(cr) && done(sr)); i++) {
		if (!done(cr)) {
			cr = mbedtls_ssl_handshake(&c);
			if (!done(cr) && !want(cr))
				goto out;
		}
		if (!done(sr)) {
			sr = server_step(&s);
			if (!done(sr) && !want(sr))
				goto out;
		}
	}
	if (!done(cr) || !done(sr))
		goto out;
	/* the ticket comes after the handshake */
	for (i = 0; save != NULL && i < 10; i++) {
		int r = mbedtls_ssl_read(&c, tmp, sizeof(tmp));
		if (r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
			if (mbedtls_ssl_get_session(&c, save) != 0)
				goto out;
			break;
		}
		if (!want(r))
			goto out;
	}
	rc = parsed > before;
out:
	mbedtls_ssl_free(&c);
	mbedtls_ssl_free(&s);
	return rc;
}

static int must(int r, const char *what)
{
	if (r != 0) {
		fprintf(stderr, "%s: -0x%04x\n", what, (unsigned)-r);
		exit(2);
	}
	return r;
}

int main(int argc, char **argv)
{
	char path[4096];
	mbedtls_x509_crt srv, ca;
	mbedtls_pk_context key;
	mbedtls_ssl_ticket_context tk;
	mbedtls_ssl_config cc, full, res;
	mbedtls_ssl_session sess;
	int n, psk, i, ok = 0;
	double t;

	if (argc != 4 || (strcmp(argv[2], "dhe") && strcmp(argv[2], "psk")) ||
	    (n = atoi(argv[3])) <= 0) {
		fprintf(stderr, "usage: %s PKI_DIR dhe|psk N\n", argv[0]);
		return 2;
	}
	psk = strcmp(argv[2], "psk") == 0;
	must(psa_crypto_init() != PSA_SUCCESS, "psa_crypto_init");
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	must(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
	                           NULL, 0), "drbg");
	mbedtls_x509_crt_init(&srv);
	mbedtls_x509_crt_init(&ca);
	mbedtls_pk_init(&key);
	snprintf(path, sizeof(path), "%s/server-ec-chain.pem", argv[1]);
	must(mbedtls_x509_crt_parse_file(&srv, path), path);
	snprintf(path, sizeof(path), "%s/ca.crt", argv[1]);
	must(mbedtls_x509_crt_parse_file(&ca, path), path);
	snprintf(path, sizeof(path), "%s/server-ec.key", argv[1]);
	must(mbedtls_pk_parse_keyfile(&key, path, NULL,
	                              mbedtls_ctr_drbg_random, &drbg), path);
	mbedtls_ssl_ticket_init(&tk);
	must(mbedtls_ssl_ticket_setup(&tk, mbedtls_ctr_drbg_random, &drbg,
	                              MBEDTLS_CIPHER_AES_256_GCM, 3600),
	     "ticket");

	mbedtls_ssl_config_init(&cc);
	mbedtls_ssl_config_init(&full);
	mbedtls_ssl_config_init(&res);
	must(mbedtls_ssl_config_defaults(&cc, MBEDTLS_SSL_IS_CLIENT,
	                                 MBEDTLS_SSL_TRANSPORT_STREAM,
	                                 MBEDTLS_SSL_PRESET_DEFAULT), "conf");
	mbedtls_ssl_conf_rng(&cc, mbedtls_ctr_drbg_random, &drbg);
	mbedtls_ssl_conf_ca_chain(&cc, &ca, NULL);
	mbedtls_ssl_conf_min_tls_version(&cc, MBEDTLS_SSL_VERSION_TLS1_3);
	mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
	    &cc, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
	/* the client offers psk_ke and psk_dhe_ke (OpenSSL's
	 * -allow_no_dhe_kex); the server's modes decide */
	mbedtls_ssl_conf_tls13_key_exchange_modes(
	    &cc, MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_ALL);

	for (i = 0; i < 2; i++) {
		mbedtls_ssl_config *sc = i == 0 ? &full : &res;
		must(mbedtls_ssl_config_defaults(sc, MBEDTLS_SSL_IS_SERVER,
		                                 MBEDTLS_SSL_TRANSPORT_STREAM,
		                                 MBEDTLS_SSL_PRESET_DEFAULT),
		     "conf");
		mbedtls_ssl_conf_rng(sc, mbedtls_ctr_drbg_random, &drbg);
		mbedtls_ssl_conf_min_tls_version(sc, MBEDTLS_SSL_VERSION_TLS1_3);
		must(mbedtls_ssl_conf_own_cert(sc, &srv, &key), "own cert");
		mbedtls_ssl_conf_session_tickets_cb(sc, mbedtls_ssl_ticket_write,
		                                    parse_count, &tk);
	}
	mbedtls_ssl_conf_tls13_key_exchange_modes(
	    &res, psk ? MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK
	              : MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL);

	mbedtls_ssl_session_init(&sess);
	if (connect_once(&cc, &full, NULL, &sess) != 0) {
		fprintf(stderr, "full handshake failed\n");
		return 1;
	}
	server_cpu = 0;
	t = cpu_now();
	for (i = 0; i < n; i++)
		ok += connect_once(&cc, &res, &sess, NULL) == 1;
	t = cpu_now() - t;
	printf("mode=%s resumptions=%d resumed=%d server_cpu_us=%.1f "
	       "both_ends_cpu_us=%.1f\n",
	       psk ? "psk_ke" : "psk_dhe_ke", n, ok, server_cpu * 1e6 / n,
	       t * 1e6 / n);
	return ok == n ? 0 : 1;
}
