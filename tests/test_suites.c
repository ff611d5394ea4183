/*
 * test_suites.c - what every context offers and accepts (lib/suites.c,
 * mtls__conf_policy in lib/compat.c): the default cipher suites are
 * forward-secret AEAD only, on both ends; mtls_ctx_set_ciphersuites()
 * changes them, refuses names the build does not know without touching the
 * context, and warns about weak suites; peer certificates signed with SHA-1
 * or carrying a short RSA key are refused.
 *
 * The weak clients are real ones: openssl s_client over loopback TCP, and
 * plain mbedTLS clients (raw_client) for certificates mtls would not load.
 */
#include "conn_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/wait.h>

#define CBC_IANA "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"
#define CBC_MBED "TLS-ECDHE-ECDSA-WITH-AES-128-CBC-SHA256"
#define CBC_OPENSSL "ECDHE-ECDSA-AES128-SHA256"

static int is_aead(const char *suite)
{
	return strstr(suite, "-GCM-") != NULL ||
	       strstr(suite, "-CHACHA20-POLY1305-") != NULL ||
	       (strstr(suite, "-CCM-") != NULL &&
	        strstr(suite, "CCM-8") == NULL);
}

/* ---- defaults ------------------------------------------------------------ */

/* Our client and server agree on a forward-secret AEAD suite, with EC and
 * with RSA certificates. */
static void test_default_aead(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	mtls_ctx *rs = mk_server(ver, "server-rsa-chain.pem", "server-rsa.key",
	                         CA);
	pair p;

	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	if (!is_aead(p.srv.cipher))
		fail_msg("EC: negotiated %s", p.srv.cipher);
	if (ver == MTLS_TLS1_2 &&
	    strncmp(p.srv.cipher, "TLS-ECDHE-ECDSA-", 16) != 0)
		fail_msg("EC: negotiated %s", p.srv.cipher);
	run_pair(&p, rs, c, "localhost");
	assert_pair_ok(&p);
	if (!is_aead(p.srv.cipher))
		fail_msg("RSA: negotiated %s", p.srv.cipher);
	if (ver == MTLS_TLS1_2 &&
	    strncmp(p.srv.cipher, "TLS-ECDHE-RSA-", 14) != 0)
		fail_msg("RSA: negotiated %s", p.srv.cipher);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
	mtls_ctx_free(rs);
}

/* The default list holds no suite mtls__suite_weakness() objects to, has
 * TLS 1.2 suites, and TLS 1.3 ones exactly when the build has TLS 1.3. */
static void test_default_list(void **state)
{
	const int *d = mtls__suites_default();
	int n12 = 0, n13 = 0;

	(void)state;
	for (size_t i = 0; d[i] != 0; i++) {
		const char *why = mtls__suite_weakness(d[i]);
		if (why != NULL)
			fail_msg("default suite %s: %s",
			         mbedtls_ssl_get_ciphersuite_name(d[i]), why);
		n13 += (d[i] >> 8) == 0x13;
		n12 += (d[i] >> 8) != 0x13;
	}
	assert_true(n12 >= 4); /* ECDSA and RSA with AES-128/256-GCM */
	if (have_tls13())
		assert_true(n13 >= 3);
	else
		assert_int_equal(n13, 0);
	assert_non_null(mtls__suite_weakness(
	    mbedtls_ssl_get_ciphersuite_id(CBC_MBED)));
	assert_non_null(mtls__suite_weakness(
	    mbedtls_ssl_get_ciphersuite_id("TLS-RSA-WITH-AES-128-GCM-SHA256")));
}

/* ---- the setter ------------------------------------------------------------ */

static int list_len(const int *l)
{
	int n = 0;

	while (l[n] != 0)
		n++;
	return n;
}

static void expect_refused(mtls_ctx *ctx, const char *list,
                           const char *needle)
{
	const int *before = ctx->suites;
	int *copy = before != NULL ? mtls__suites_dup(before) : NULL;
	const char *err;

	assert_int_equal(mtls_ctx_set_ciphersuites(ctx, list),
	                 MTLS_ERR_INVALID_ARG);
	err = mtls_ctx_error(ctx);
	assert_non_null(err);
	if (strstr(err, needle) == NULL)
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", list, err,
		         needle);
	/* the context is as it was */
	assert_ptr_equal(ctx->suites, before);
	if (before != NULL)
		assert_memory_equal(ctx->suites, copy,
		                    (size_t)(list_len(copy) + 1) * sizeof(int));
	free(copy);
}

static void test_setter_args(void **state)
{
	mtls_ctx *ctx = mtls_ctx_new(MTLS_ROLE_SERVER);
	int id;

	(void)state;
	assert_non_null(ctx);
	assert_int_equal(mtls_ctx_set_ciphersuites(NULL, CBC_MBED),
	                 MTLS_ERR_INVALID_ARG);
	/* unknown names, from a default context and from a set one */
	expect_refused(ctx, "TLS-NO-SUCH-SUITE", "\"TLS-NO-SUCH-SUITE\"");
	check_ok(ctx, mtls_ctx_set_ciphersuites(ctx, CBC_MBED));
	assert_non_null(ctx->suites);
	expect_refused(ctx, CBC_MBED ":TLS-NO-SUCH-SUITE",
	               "\"TLS-NO-SUCH-SUITE\"");
	/* OpenSSL's names are not mbedTLS's or IANA's */
	expect_refused(ctx, CBC_OPENSSL, "\"" CBC_OPENSSL "\"");
	expect_refused(ctx, "", "empty");
	expect_refused(ctx, CBC_MBED "::" CBC_MBED, "empty");
	expect_refused(ctx, CBC_MBED ",", "empty");
	/* an over-long name is just unknown */
	{
		char big[400];
		memset(big, 'A', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		expect_refused(ctx, big, "not known");
	}
	/* IANA names, commas, any case; the first of the list comes first */
	check_ok(ctx, mtls_ctx_set_ciphersuites(
	                  ctx, "tls_ecdhe_rsa_with_aes_256_gcm_sha384," CBC_IANA));
	id = mbedtls_ssl_get_ciphersuite_id(
	    "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384");
	assert_int_equal(ctx->suites[0], id);
	assert_int_equal(ctx->suites[1],
	                 mbedtls_ssl_get_ciphersuite_id(CBC_MBED));
	/* a list of TLS 1.3 suites keeps the TLS 1.2 defaults */
	if (have_tls13()) {
		assert_int_equal(mtls_ctx_set_ciphersuites(
		                     ctx, "TLS_AES_256_GCM_SHA384"), 0);
		assert_int_equal(ctx->suites[0],
		                 mbedtls_ssl_get_ciphersuite_id(
		                     "TLS1-3-AES-256-GCM-SHA384"));
		/* ... and the reverse: the TLS 1.2 defaults follow */
		int n12 = 0;
		for (const int *d = mtls__suites_default(); *d != 0; d++)
			n12 += (*d >> 8) != 0x13;
		assert_int_equal(list_len(ctx->suites), 1 + n12);
	} else {
		expect_refused(ctx, "TLS1-3-AES-128-GCM-SHA256",
		               "\"TLS1-3-AES-128-GCM-SHA256\"");
	}
	/* NULL: back to the default */
	check_ok(ctx, mtls_ctx_set_ciphersuites(ctx, NULL));
	assert_null(ctx->suites);
	mtls_ctx_free(ctx);
}

/* Weak suites are accepted, each named in a warning; strong ones are
 * not warned about. */
static void test_setter_warns(void **state)
{
	mtls_ctx *ctx = mtls_ctx_new(MTLS_ROLE_CLIENT);

	(void)state;
	assert_non_null(ctx);
	tlog_start();
	check_ok(ctx, mtls_ctx_set_ciphersuites(
	                  ctx, "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256"));
	assert_int_equal(tlog_count(MTLS_LOG_WARN, "cipher suite"), 0);
	check_ok(ctx, mtls_ctx_set_ciphersuites(
	                  ctx, CBC_MBED ":TLS-RSA-WITH-AES-128-GCM-SHA256:"
	                       "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256"));
	tlog_stop();
	assert_int_equal(tlog_count(MTLS_LOG_WARN, CBC_MBED), 1);
	assert_int_equal(tlog_count(MTLS_LOG_WARN, "CBC"), 1);
	assert_int_equal(tlog_count(MTLS_LOG_WARN,
	                            "TLS-RSA-WITH-AES-128-GCM-SHA256"), 1);
	assert_int_equal(tlog_count(MTLS_LOG_WARN, "no forward secrecy"), 1);
	assert_int_equal(tlog_count(MTLS_LOG_WARN, "cipher suite"), 2);
	mtls_ctx_free(ctx);
}

/* Our client refuses a server that only has CBC, until told otherwise;
 * the server's list, set the same way, is what it offers. */
static void test_client_side(void **state)
{
	mtls_ctx *s = default_server(MTLS_TLS1_2);
	mtls_ctx *c = default_client(MTLS_TLS1_2);
	pair p;

	(void)state;
	check_ok(s, mtls_ctx_set_ciphersuites(s, CBC_MBED));
	run_pair(&p, s, c, "localhost");
	assert_true(p.cli.hs < 0);
	assert_true(p.srv.hs < 0);
	check_ok(c, mtls_ctx_set_ciphersuites(c, CBC_IANA));
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_string_equal(p.cli.cipher, CBC_MBED);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* ---- openssl s_client over loopback TCP ------------------------------------ */

/* openssl s_client, TLS 1.2 only, offering only `cipher`, with the
 * client-ec pair; its exit status (0: handshake done). */
static int s_client(tcp_srv *t, const char *cipher, const char *cert,
                    const char *key)
{
	char cmd[3 * TEST_PATH_MAX];
	int st;

	snprintf(cmd, sizeof(cmd),
	         "openssl s_client -connect 127.0.0.1:%d -tls1_2 -cipher '%s' "
	         "-cert '%s' -key '%s' -cert_chain '%s' -CAfile '%s' "
	         "</dev/null >/dev/null 2>&1",
	         t->port, cipher, pki(cert), pki(key), pki("int.crt"),
	         pki(CA));
	st = system(cmd);
	pthread_join(t->thread, NULL);
	close(t->lfd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_openssl_cbc(void **state)
{
	mtls_ctx *s = default_server(0);
	tcp_srv t;

	(void)state;
	/* refused by default */
	tcp_open(&t, s);
	assert_int_not_equal(s_client(&t, CBC_OPENSSL, "client-ec.crt",
	                              "client-ec.key"), 0);
	assert_true(t.e.hs < 0);
	/* accepted once enabled, with a warning */
	tlog_start();
	check_ok(s, mtls_ctx_set_ciphersuites(s, CBC_MBED));
	tlog_stop();
	assert_int_equal(tlog_count(MTLS_LOG_WARN, CBC_MBED), 1);
	tcp_open(&t, s);
	assert_int_equal(s_client(&t, CBC_OPENSSL, "client-ec.crt",
	                          "client-ec.key"), 0);
	assert_int_equal(t.e.hs, 0);
	assert_string_equal(t.e.cipher, CBC_MBED);
	/* a refused list leaves it so */
	assert_int_equal(mtls_ctx_set_ciphersuites(s, "TLS-NOPE"),
	                 MTLS_ERR_INVALID_ARG);
	tcp_open(&t, s);
	assert_int_equal(s_client(&t, CBC_OPENSSL, "client-ec.crt",
	                          "client-ec.key"), 0);
	assert_int_equal(t.e.hs, 0);
	/* and NULL takes it back */
	check_ok(s, mtls_ctx_set_ciphersuites(s, NULL));
	tcp_open(&t, s);
	assert_int_not_equal(s_client(&t, CBC_OPENSSL, "client-ec.crt",
	                              "client-ec.key"), 0);
	assert_true(t.e.hs < 0);
	mtls_ctx_free(s);
}

/* RSA key transport (no forward secrecy) is refused by default too. */
static void test_openssl_static_rsa(void **state)
{
	mtls_ctx *s = mk_server(0, "server-rsa-chain.pem", "server-rsa.key",
	                        CA);
	tcp_srv t;

	(void)state;
	tcp_open(&t, s);
	assert_int_not_equal(s_client(&t, "AES128-GCM-SHA256", "client-ec.crt",
	                              "client-ec.key"), 0);
	assert_true(t.e.hs < 0);
	/* the control: the same client with an ECDHE suite */
	tcp_open(&t, s);
	assert_int_equal(s_client(&t, "ECDHE-RSA-AES128-GCM-SHA256",
	                          "client-ec.crt", "client-ec.key"), 0);
	assert_int_equal(t.e.hs, 0);
	mtls_ctx_free(s);
}

/* ---- the certificate profile --------------------------------------------- */

/* The server refuses the chain in verification (mtls maps the profile's
 * BADCERT_BAD_MD / BAD_KEY flags to MTLS_ERR_PEER_NOT_VERIFIED), and its
 * message says why. */
static void check_refused_cert(int ver, const char *cert, const char *key,
                               const char *needle)
{
	mtls_ctx *s = default_server(ver);
	raw_opts o = {.ver = ver, .cert = cert, .key = key,
	              .hostname = "localhost"};
	raw_result r;
	pair p;

	pair_open(&p, s);
	r = raw_client(p.fds[0], &o);
	pair_close(&p);
	assert_int_equal(r.setup, 0);
	if (p.srv.hs != MTLS_ERR_PEER_NOT_VERIFIED ||
	    strstr(p.srv.error, needle) == NULL) {
		dump_pair(&p);
		fail_msg("%s: server gave %d (%s)", cert, p.srv.hs,
		         mtls_strerror(p.srv.hs));
	}
	assert_true(r.hs < 0 || r.rd < 0);
	mtls_ctx_free(s);
}

static void test_sha1_client_cert(void **state)
{
	int ver = test_version(state);

	check_refused_cert(ver, "client-sha1.crt", "client-sha1.key",
	                   "unacceptable hash");
}

static void test_rsa1024_client_cert(void **state)
{
	int ver = test_version(state);

	check_refused_cert(ver, "client-rsa1024.crt", "client-rsa1024.key",
	                   "unacceptable key");
}

/* The control: the same raw client with a good certificate gets in. */
static void test_raw_control(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	raw_opts o = {.ver = ver, .cert = "client-ec.crt",
	              .key = "client-ec.key", .hostname = "localhost"};
	raw_result r;
	pair p;

	pair_open(&p, s);
	r = raw_client(p.fds[0], &o);
	pair_close(&p);
	assert_int_equal(r.hs, 0);
	assert_int_equal(p.srv.hs, 0);
	mtls_ctx_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    VTEST(test_default_aead),
	    cmocka_unit_test(test_default_list),
	    cmocka_unit_test(test_setter_args),
	    cmocka_unit_test(test_setter_warns),
	    cmocka_unit_test(test_client_side),
	    cmocka_unit_test(test_openssl_cbc),
	    cmocka_unit_test(test_openssl_static_rsa),
	    VTEST(test_raw_control),
	    VTEST(test_sha1_client_cert),
	    VTEST(test_rsa1024_client_cert),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
