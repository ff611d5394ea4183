/*
 * test_anchors.c - intermediates proven once per snapshot, then used as
 * anchors (lib/anchors.c): the second handshake through an intermediate
 * stops at it, and nothing the full chain would refuse gets through the
 * shortcut: other intermediates, revoked leaves and intermediates, path
 * length limits above a learned CA, untrusted roots, insecure clients,
 * the end of the CRLs' and the chain's validity, a new snapshot.
 *
 * PKI (tests/pki.sh): root -> int (pathlen 0) -> client-ec, server-ec;
 * root -> int2 -> client-int2; root -> int3 (revoked in ca-revint.crl) ->
 * client-int3; root -> int-pl1 (pathlen 1) -> int-free -> client-int-free,
 * int-free -> int-deep -> client-int-deep (one CA too many for int-pl1).
 */
#include "conn_util.h"

/* Learned intermediates of the context's current snapshot. */
static int learned(mtls_ctx *ctx)
{
	mtls_snap *s = NULL;
	mtls_err e = {0};
	int n;

	assert_int_equal(mtls__snap_get(ctx, &s, &e), 0);
	n = mtls__anchors_count(&s->anchors);
	mtls__snap_unref(s);
	return n;
}

/* The anchor list the snapshot hands out at `when`, NULL if none. */
static const mbedtls_x509_crt *chain_at(mtls_ctx *ctx, time_t when)
{
	mtls_snap *s = NULL;
	mtls_err e = {0};
	const mbedtls_x509_crt *c;

	assert_int_equal(mtls__snap_get(ctx, &s, &e), 0);
	c = mtls__anchors_chain(&s->anchors, when);
	mtls__snap_unref(s);
	return c; /* only compared with NULL: the snapshot may be gone */
}

/* A client presenting `chain` (a PKI file with its intermediates). */
static mtls_ctx *client_with(int ver, const char *chain, const char *key)
{
	mtls_ctx *c = mk_client(ver, chain, key, CA);

	check_ok(c, mtls_ctx_set_session_resumption(c, 0));
	return c;
}

static void test_second_handshake_stops_at_intermediate(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = client_with(ver, CLI_CERT,
	                                                    CLI_KEY);
	pair p;

	assert_int_equal(learned(s), 0);
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.chain_len, 3); /* leaf, int, root */
	assert_int_equal(learned(s), 1);
	for (int i = 0; i < 3; i++) {
		run_pair(&p, s, c, "localhost");
		assert_pair_ok(&p);
		assert_int_equal(p.srv.resumed, 0);
		assert_int_equal(p.srv.chain_len, 2); /* leaf, int */
		assert_int_equal(p.srv.verify, 0);
		assert_string_equal(p.srv.peer.uri, CLIENT_URI);
	}
	assert_int_equal(learned(s), 1);
	/* the client side learned the server's intermediate the same way */
	assert_int_equal(p.cli.chain_len, 2);
	assert_int_equal(learned(c), 1);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static void test_other_intermediate_still_verified(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	mtls_ctx *c1 = client_with(ver, CLI_CERT, CLI_KEY);
	mtls_ctx *c2 = client_with(ver, "client-int2-chain.pem",
	                           "client-int2.key");
	pair p;

	run_pair(&p, s, c1, "localhost");
	assert_pair_ok(&p);
	/* the root is still behind the learned intermediate */
	run_pair(&p, s, c2, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.chain_len, 3);
	assert_int_equal(learned(s), 2);
	run_pair(&p, s, c2, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.chain_len, 2);
	run_pair(&p, s, c1, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.chain_len, 2);
	mtls_ctx_free(s);
	mtls_ctx_free(c1);
	mtls_ctx_free(c2);
}

static void test_revoked_leaf_after_learning(void **state)
{
	int ver = test_version(state);
	char *dir = make_tmpdir();
	char *chain = make_chain(dir, "client-revoked.crt");
	mtls_ctx *s = default_server(ver);
	mtls_ctx *good = client_with(ver, CLI_CERT, CLI_KEY);
	mtls_ctx *bad = mtls_ctx_new(MTLS_ROLE_CLIENT);
	pair p;

	check_ok(bad, mtls_load_client_pair(bad, chain,
	                                    pki("client-revoked.key")));
	check_ok(bad, mtls_set_trusted_ca(bad, pki(CA)));
	check_ok(bad, mtls_ctx_set_tls_versions(bad, ver, ver));
	check_ok(s, mtls_set_crl(s, pki("int.crl")));
	run_pair(&p, s, good, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(learned(s), 1);
	/* the intermediate is an anchor now; its CRL still applies */
	run_pair(&p, s, bad, "localhost");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_REVOKED);
	assert_int_equal(p.srv.chain_len, 2);
	mtls_ctx_free(s);
	mtls_ctx_free(good);
	mtls_ctx_free(bad);
	free(chain);
	rm_tree(dir);
}

static void test_revoked_intermediate_never_learned(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	mtls_ctx *c = client_with(ver, "client-int3-chain.pem",
	                          "client-int3.key");
	pair p;

	/* accepted, and learned, without the root's CRL ... */
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(learned(s), 1);
	/* ... a new CRL is a new snapshot: the shortcut is gone, and the
	 * intermediate is refused at every attempt */
	check_ok(s, mtls_set_crl(s, pki("ca-revint.crl")));
	assert_int_equal(learned(s), 0);
	for (int i = 0; i < 2; i++) {
		run_pair(&p, s, c, "localhost");
		assert_server_refused(&p, ver, MTLS_ERR_PEER_REVOKED);
		assert_int_equal(p.srv.chain_len, 3);
	}
	assert_int_equal(learned(s), 0);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static void test_path_length_above_is_kept(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	mtls_ctx *ok = client_with(ver, "client-int-free-chain.pem",
	                           "client-int-free.key");
	mtls_ctx *deep = client_with(ver, "client-int-deep-chain.pem",
	                             "client-int-deep.key");
	pair p;

	/* int-pl1 limits what may hang below int-free: int-free is not
	 * learned, so int-deep's chain still meets that limit */
	for (int i = 0; i < 2; i++) {
		run_pair(&p, s, ok, "localhost");
		assert_pair_ok(&p);
		assert_int_equal(p.srv.chain_len, 4);
		run_pair(&p, s, deep, "localhost");
		assert_server_refused(&p, ver, MTLS_ERR_PEER_UNTRUSTED);
	}
	assert_int_equal(learned(s), 0);
	mtls_ctx_free(s);
	mtls_ctx_free(ok);
	mtls_ctx_free(deep);
}

static void test_untrusted_and_insecure_learn_nothing(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	mtls_ctx *other = client_with(ver, "other-client.crt",
	                              "other-client.key");
	mtls_ctx *insecure = mk_client(ver, CLI_CERT, CLI_KEY, NULL);
	pair p;

	run_pair(&p, s, other, "localhost");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_UNTRUSTED);
	assert_int_equal(learned(s), 0);
	check_ok(insecure, mtls_ctx_insecure_skip_verify(insecure));
	run_pair(&p, s, insecure, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(learned(insecure), 0);
	mtls_ctx_free(s);
	mtls_ctx_free(other);
	mtls_ctx_free(insecure);
}

static void test_shortcut_ends_with_crl_and_chain(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = client_with(ver, CLI_CERT,
	                                                    CLI_KEY);
	time_t now = time(NULL);
	pair p;

	check_ok(s, mtls_set_crl(s, pki("int.crl"))); /* next update: 30 days */
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_non_null(chain_at(s, now));
	assert_non_null(chain_at(s, now + 29 * 86400));
	assert_null(chain_at(s, now + 31 * 86400));
	/* without a CRL: until the intermediate (5 years) or root (10) ends */
	mtls_ctx_free(s);
	s = default_server(ver);
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_non_null(chain_at(s, now + 4 * 365 * 86400L));
	assert_null(chain_at(s, now + 6 * 365 * 86400L));
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* ---- #11 finding 9: the shortcut is decided when the chain is verified -- */

typedef struct slow_client {
	mtls_ctx *ctx;
	int fd;
	int sends;      /* send calls so far */
	time_t hold_until; /* the second flight waits until then */
	int hs, io;     /* handshake, then first read */
} slow_client;

static ssize_t slow_send(void *user, const void *buf, size_t len)
{
	slow_client *sc = user;
	ssize_t n;

	/* the first send is the ClientHello; the next carries the client's
	 * certificate: hold it back */
	if (sc->sends++ == 1)
		while (time(NULL) < sc->hold_until)
			usleep(100 * 1000);
	n = send(sc->fd, buf, len, MSG_NOSIGNAL);
	return n >= 0 ? n : -1;
}

static ssize_t slow_recv(void *user, void *buf, size_t len)
{
	slow_client *sc = user;
	ssize_t n = recv(sc->fd, buf, len, 0);

	return n >= 0 ? n : -1;
}

static void *slow_client_main(void *arg)
{
	slow_client *sc = arg;
	mtls_conn *c = mtls_conn_new_io(sc->ctx, slow_send, slow_recv, sc,
	                                "localhost");
	char b[16];

	sc->hs = mtls_handshake(c);
	sc->io = sc->hs == 0 ? (int)mtls_read(c, b, sizeof(b)) : sc->hs;
	mtls_conn_free(c);
	shutdown(sc->fd, SHUT_WR);
	return NULL;
}

/* The server's handshake on a connection object made before `between`
 * ran, with a client that holds its certificate until hold_until. */
static int server_hs(mtls_ctx *s, mtls_ctx *c, time_t hold_until,
                     void (*between)(mtls_ctx *), char *err, size_t errlen)
{
	slow_client sc = {.ctx = c, .hold_until = hold_until};
	pthread_t t;
	mtls_conn *conn;
	int fds[2], hs;

	mk_socketpair(fds);
	sc.fd = fds[0];
	conn = mtls_conn_new(s, fds[1], NULL);
	assert_non_null(conn);
	if (between != NULL)
		between(s);
	assert_int_equal(pthread_create(&t, NULL, slow_client_main, &sc), 0);
	hs = mtls_handshake(conn);
	snprintf(err, errlen, "%s", mtls_conn_error(conn) ? mtls_conn_error(conn) : "");
	if (hs == 0)
		(void)mtls_write(conn, "x", 1);
	mtls_conn_free(conn);
	shutdown(fds[1], SHUT_WR);
	pthread_join(t, NULL);
	close(fds[0]);
	close(fds[1]);
	return hs;
}

static void revoke_int3(mtls_ctx *s)
{
	check_ok(s, mtls_set_crl(s, pki("ca-revint.crl")));
}

/* A CRL set after the connection object was made, before its handshake,
 * applies to it: the material is taken when the handshake starts. */
static void test_crl_between_new_and_handshake(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	mtls_ctx *c = client_with(ver, "client-int3-chain.pem",
	                          "client-int3.key");
	char err[600];
	pair p;

	run_pair(&p, s, c, "localhost"); /* int3 learned, no CRL yet */
	assert_pair_ok(&p);
	assert_int_equal(learned(s), 1);
	assert_int_equal(server_hs(s, c, 0, revoke_int3, err, sizeof(err)),
	                 MTLS_ERR_PEER_REVOKED);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* A CRL of the root whose next update is `secs` away, in dir. */
static char *short_crl(const char *dir, int secs)
{
	const char *src = getenv("MTLS_TEST_SRC"); /* tests/run.sh */
	char *out = path_in(dir, "short.crl"), cmd[4 * TEST_PATH_MAX];
	int n = snprintf(cmd, sizeof(cmd), "python3 '%s/short_crl.py' "
	                 "'%s' '%s' %d '%s'", src ? src : "tests", pki("ca.crt"),
	                 pki("ca.key"), secs, out);

	assert_true(n > 0 && (size_t)n < sizeof(cmd));
	assert_int_equal(system(cmd), 0);
	return out;
}

/* The learned intermediate was still usable when the handshake started,
 * but the root's CRL is past its next update when the client's chain is
 * verified: refused, as the whole chain would be. */
static void test_shortcut_ends_during_handshake(void **state)
{
	int ver = test_version(state);
	char *dir = make_tmpdir(), *crl, err[600];
	mtls_ctx *s = default_server(ver), *c = client_with(ver, CLI_CERT,
	                                                    CLI_KEY);
	time_t until;
	pair p;

	crl = short_crl(dir, 8);
	until = time(NULL) + 8;
	check_ok(s, mtls_set_crl(s, crl));
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(learned(s), 1);
	if (time(NULL) + 2 >= until)
		skip(); /* too slow a machine to start before the deadline */
	assert_int_equal(server_hs(s, c, until + 2, NULL, err, sizeof(err)),
	                 MTLS_ERR_PEER_UNTRUSTED);
	assert_non_null(strstr(err, "stopped being usable"));
	/* the full chain says the same */
	run_pair(&p, s, c, "localhost");
	assert_true(p.srv.hs < 0);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
	free(crl);
	rm_tree(dir);
}

/* #11 finding 7: a chain deeper than a leaf, four intermediates and the
 * root is refused; four intermediates still pass. */
static void test_chain_depth_bound(void **state)
{
	int ver = test_version(state);
	const char *src = getenv("MTLS_TEST_SRC");
	char *dir = make_tmpdir(), cmd[4 * TEST_PATH_MAX], crt[TEST_PATH_MAX],
	     key[TEST_PATH_MAX];
	mtls_ctx *s = default_server(ver);

	for (int n = 4; n <= 5; n++) {
		mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
		pair p;

		snprintf(cmd, sizeof(cmd), "python3 '%s/deep_chain.py' '%s' "
		         "'%s' %d '%s'", src ? src : "tests", pki("ca.crt"),
		         pki("ca.key"), n, dir);
		assert_int_equal(system(cmd), 0);
		snprintf(crt, sizeof(crt), "%s/deep-%d.pem", dir, n);
		snprintf(key, sizeof(key), "%s/deep-%d.key", dir, n);
		check_ok(c, mtls_load_client_pair(c, crt, key));
		check_ok(c, mtls_set_trusted_ca(c, pki(CA)));
		check_ok(c, mtls_ctx_set_tls_versions(c, ver, ver));
		check_ok(c, mtls_ctx_set_session_resumption(c, 0));
		run_pair(&p, s, c, "localhost");
		if (n == 4) {
			assert_pair_ok(&p);
			assert_int_equal(p.srv.chain_len, 6);
		} else {
			assert_server_refused(&p, ver, MTLS_ERR_PEER_UNTRUSTED);
			assert_non_null(strstr(p.srv.error, "chain deeper"));
		}
		mtls_ctx_free(c);
	}
	mtls_ctx_free(s);
	rm_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    VTEST(test_second_handshake_stops_at_intermediate),
	    VTEST(test_other_intermediate_still_verified),
	    VTEST(test_revoked_leaf_after_learning),
	    VTEST(test_revoked_intermediate_never_learned),
	    VTEST(test_path_length_above_is_kept),
	    VTEST(test_untrusted_and_insecure_learn_nothing),
	    VTEST(test_shortcut_ends_with_crl_and_chain),
	    VTEST(test_crl_between_new_and_handshake),
	    VTEST(test_shortcut_ends_during_handshake),
	    VTEST(test_chain_depth_bound),
	};

	pki_dir();
	return cmocka_run_group_tests_name("anchors", tests, NULL, NULL);
}
