/*
 * test_sigcache.c - verified certificate signatures remembered per snapshot
 * (lib/sigcache.c, tuned build: tuned/patches/0004).  On the tuned build a
 * returning client's handshake does not check its leaf's signature again
 * (counted by the hook mbedTLS calls for every real check), and nothing a
 * real check would refuse gets through: another key under the same names
 * and serial, the same certificate body signed by another key under the
 * issuer's name, a leaf revoked by a reloaded CRL, a wrong CertificateVerify
 * with a remembered leaf; entries end at their bounds; only fully trusted
 * handshakes add entries; the cache is the judging SNI host's.  Other builds have no cache: the same handshakes
 * give the same verdicts, every signature is checked.
 *
 * Forged certificates: tests/forge_cert.py (python3-cryptography).
 */
#include "conn_util.h"

typedef struct sc_stats {
	int entries;                  /* valid now */
	unsigned long long hits, checks;
} sc_stats;

/* The cache of the context's current snapshot (zeros without one). */
static sc_stats stats(mtls_ctx *ctx)
{
	sc_stats st = {0, 0, 0};
#if MTLS_HAVE_SIGCACHE
	mtls_snap *s = NULL;
	mtls_err e = {0};

	assert_int_equal(mtls__snap_get(ctx, &s, &e), 0);
	st.entries = mtls__sigcache_count(&s->sigcache, time(NULL));
	mtls__sigcache_stats(&s->sigcache, &st.hits, &st.checks);
	mtls__snap_unref(s);
#else
	(void)ctx;
#endif
	return st;
}

/* Entries of the current snapshot still valid at `when`. */
static int entries_at(mtls_ctx *ctx, time_t when)
{
#if MTLS_HAVE_SIGCACHE
	mtls_snap *s = NULL;
	mtls_err e = {0};
	int n;

	assert_int_equal(mtls__snap_get(ctx, &s, &e), 0);
	n = mtls__sigcache_count(&s->sigcache, when);
	mtls__snap_unref(s);
	return n;
#else
	(void)ctx;
	(void)when;
	return 0;
#endif
}

static mtls_ctx *client_with(int ver, const char *chain, const char *key)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);

	assert_non_null(c);
	check_ok(c, mtls_load_client_pair(c, chain, key));
	check_ok(c, mtls_set_trusted_ca(c, pki(CA)));
	check_ok(c, mtls_ctx_set_tls_versions(c, ver, ver));
	check_ok(c, mtls_ctx_set_session_resumption(c, 0));
	return c;
}

static mtls_ctx *good_client(int ver)
{
	return client_with(ver, pki(CLI_CERT), pki(CLI_KEY));
}

/* tests/forge_cert.py MODE client-ec.crt DIR, then DIR/<mode>-chain.pem
 * (the forged leaf and int.crt). */
static char *forge(const char *mode, const char *dir)
{
	const char *src = getenv("MTLS_TEST_SRC"); /* tests/run.sh */
	char cmd[4 * TEST_PATH_MAX], name[64], *leaf, *chain;
	unsigned char *l, *i, *both;
	size_t a, b;
	int n = snprintf(cmd, sizeof(cmd), "python3 '%s/forge_cert.py' %s "
	                 "'%s' '%s'", src ? src : "tests", mode,
	                 pki("client-ec.crt"), dir);

	assert_true(n > 0 && (size_t)n < sizeof(cmd));
	assert_int_equal(system(cmd), 0);
	snprintf(name, sizeof(name), "%s.crt", mode);
	leaf = path_in(dir, name);
	l = slurp(leaf, &a);
	i = slurp_pki("int.crt", &b);
	both = malloc(a + b);
	assert_non_null(both);
	memcpy(both, l, a);
	memcpy(both + a, i, b);
	snprintf(name, sizeof(name), "%s-chain.pem", mode);
	chain = path_in(dir, name);
	write_file(chain, both, a + b);
	free(l);
	free(i);
	free(both);
	free(leaf);
	return chain;
}

/* One good handshake to fill the server's cache. */
static void warm(mtls_ctx *s, mtls_ctx *c)
{
	pair p;

	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	if (MTLS_HAVE_SIGCACHE)
		assert_int_equal(stats(s).entries, 2); /* leaf, int */
}

static void test_returning_leaf_skips_signature(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = good_client(ver);
	sc_stats a, b;
	pair p;

	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.chain_len, 3); /* leaf, int, root */
	a = stats(s);
	for (int i = 0; i < 3; i++) {
		run_pair(&p, s, c, "localhost");
		assert_pair_ok(&p);
		assert_int_equal(p.srv.resumed, 0);
		assert_int_equal(p.srv.verify, 0);
		assert_int_equal(p.srv.chain_len, 2); /* leaf, learned int */
		assert_string_equal(p.srv.peer.uri, CLIENT_URI);
	}
	b = stats(s);
	if (!MTLS_HAVE_SIGCACHE) {
		print_message("  (no signature cache in mbedTLS %s: every "
		              "signature checked)\n", mtls_mbedtls_version());
		mtls_ctx_free(s);
		mtls_ctx_free(c);
		return;
	}
	/* first: leaf by int, int by root, both checked and remembered */
	assert_int_equal(a.checks, 2);
	assert_int_equal(a.hits, 0);
	assert_int_equal(a.entries, 2);
	/* then: the leaf's signature by the learned int, from the cache */
	assert_int_equal(b.checks, a.checks);
	assert_int_equal(b.hits, 3);
	assert_int_equal(b.entries, 2);
	/* the client remembers the server's leaf the same way */
	assert_int_equal(stats(c).hits, 3);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* The cached leaf's subject, serial, dates and extensions with another key
 * (the signature no longer matches): checked, refused. */
static void test_other_key_same_subject_serial(void **state)
{
	int ver = test_version(state);
	char *dir = make_tmpdir(), *chain = forge("otherkey", dir);
	char *key = path_in(dir, "otherkey.key");
	mtls_ctx *s = default_server(ver), *good = good_client(ver);
	mtls_ctx *bad = client_with(ver, chain, key);
	sc_stats a, b;
	pair p;

	warm(s, good);
	a = stats(s);
	for (int i = 0; i < 2; i++) {
		run_pair(&p, s, bad, "localhost");
		assert_server_refused(&p, ver, MTLS_ERR_PEER_UNTRUSTED);
	}
	b = stats(s);
	/* per handshake: the forged leaf really checked against both
	 * candidate issuers (the learned int, then the int it sent), and
	 * only the genuine int's signature by the root from the cache */
	if (MTLS_HAVE_SIGCACHE) {
		assert_int_equal(b.checks, a.checks + 4);
		assert_int_equal(b.hits, a.hits + 2);
		assert_int_equal(b.entries, 2);
	}
	run_pair(&p, s, good, "localhost"); /* the real one still passes */
	assert_pair_ok(&p);
	mtls_ctx_free(s);
	mtls_ctx_free(good);
	mtls_ctx_free(bad);
	free(chain);
	free(key);
	rm_tree(dir);
}

/* The cached leaf's exact body (same key, names, serial) signed by a key
 * that is not its issuer's, as by a CA with the same name: refused. */
static void test_same_body_other_issuer_key(void **state)
{
	int ver = test_version(state);
	char *dir = make_tmpdir(), *chain = forge("othersig", dir);
	mtls_ctx *s = default_server(ver), *good = good_client(ver);
	mtls_ctx *bad = client_with(ver, chain, pki(CLI_KEY));
	sc_stats a, b;
	pair p;

	warm(s, good);
	a = stats(s);
	run_pair(&p, s, bad, "localhost");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_UNTRUSTED);
	b = stats(s);
	/* as above: two real checks of the forged leaf, one hit (the int) */
	if (MTLS_HAVE_SIGCACHE) {
		assert_int_equal(b.checks, a.checks + 2);
		assert_int_equal(b.hits, a.hits + 1);
		assert_int_equal(b.entries, 2);
	}
	mtls_ctx_free(s);
	mtls_ctx_free(good);
	mtls_ctx_free(bad);
	free(chain);
	rm_tree(dir);
}

/* A leaf remembered before its CRL arrives: the reload is a new snapshot,
 * whose cache starts empty, and the CRL refuses the leaf. */
static void test_revoked_after_crl_reload(void **state)
{
	int ver = test_version(state);
	char *dir = make_tmpdir(), *chain = make_chain(dir, "client-revoked.crt");
	char *crl = path_in(dir, "current.crl");
	mtls_ctx *s = default_server(ver);
	mtls_ctx *c = client_with(ver, chain, pki("client-revoked.key"));
	pair p;

	copy_file(pki("ca.crl"), crl); /* the root's: int not revoked */
	check_ok(s, mtls_set_crl(s, crl));
	for (int i = 0; i < 2; i++) {
		run_pair(&p, s, c, "localhost");
		assert_pair_ok(&p);
	}
	if (MTLS_HAVE_SIGCACHE) {
		assert_int_equal(stats(s).entries, 2);
		assert_int_equal(stats(s).hits, 1);
	}
	copy_file(pki("int.crl"), crl); /* revokes client-revoked */
	check_ok(s, mtls_ctx_reload(s));
	assert_int_equal(stats(s).entries, 0);
	for (int i = 0; i < 2; i++) {
		run_pair(&p, s, c, "localhost");
		assert_server_refused(&p, ver, MTLS_ERR_PEER_REVOKED);
	}
	assert_int_equal(stats(s).entries, 0);
	assert_int_equal(stats(s).hits, 0);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
	free(chain);
	free(crl);
	rm_tree(dir);
}

/* The cached leaf presented with another key: its CertificateVerify is
 * checked (and fails) although its signature comes from the cache.  A
 * plain mbedTLS client, since neither mtls nor openssl s_client will load
 * a certificate with a key that is not its own. */
static void test_wrong_certificate_verify_with_cached_leaf(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *good = good_client(ver);
	raw_opts o = {.ver = ver, .cert = "client-ec.crt",
	              .key = "client-revoked.key", .hostname = "localhost"};
	raw_result r;
	sc_stats a, b;
	pair p;

	warm(s, good);
	a = stats(s);
	pair_open(&p, s);
	r = raw_client(p.fds[0], &o);
	pair_close(&p);
	assert_int_equal(r.setup, 0);
	if (p.srv.hs >= 0 || (r.hs == 0 && r.rd > 0)) {
		dump_pair(&p);
		fail_msg("a client without the leaf's key was accepted");
	}
	b = stats(s);
	if (MTLS_HAVE_SIGCACHE) {
		assert_int_equal(b.hits, a.hits + 1); /* the leaf: cached */
		assert_int_equal(b.checks, a.checks);
		assert_int_equal(b.entries, 2);
	}
	mtls_ctx_free(s);
	mtls_ctx_free(good);
}

/* Only a handshake that ends fully trusted adds entries: not one whose
 * CertificateVerify fails, not one refused by the allow list, not an
 * untrusted chain. */
static void test_failed_handshakes_add_nothing(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *good = good_client(ver);
	mtls_ctx *other = client_with(ver, pki("other-client.crt"),
	                              pki("other-client.key"));
	raw_opts o = {.ver = ver, .cert = "client-ec.crt",
	              .key = "client-revoked.key", .hostname = "localhost"};
	raw_result r;
	pair p;

	pair_open(&p, s);
	r = raw_client(p.fds[0], &o);
	pair_close(&p);
	assert_int_equal(r.setup, 0);
	assert_true(p.srv.hs < 0);
	if (MTLS_HAVE_SIGCACHE)
		assert_int_equal(stats(s).checks, 2); /* checked, not kept */
	assert_int_equal(stats(s).entries, 0);
	run_pair(&p, s, other, "localhost");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_UNTRUSTED);
	assert_int_equal(stats(s).entries, 0);
	check_ok(s, mtls_ctx_allow_peer(s, MTLS_ALLOW_URI, "spiffe://example.org/x"));
	run_pair(&p, s, good, "localhost");
	assert_true(p.srv.hs < 0);
	assert_int_equal(stats(s).entries, 0);
	mtls_ctx_free(s);
	mtls_ctx_free(good);
	mtls_ctx_free(other);
}

/* The cache reached is the one of the snapshot that judges the handshake:
 * the SNI host's when one matched, else the listener's. */
static void test_cache_of_the_judging_host(void **state)
{
	int ver = test_version(state);
	char *dir = make_tmpdir(), *chain = make_chain(dir, "admin-server.crt");
	mtls_ctx *listener = default_server(ver), *c = good_client(ver);
	mtls_ctx *host = mtls_ctx_new(MTLS_ROLE_SERVER);
	pair p;

	check_ok(host, mtls_load_server_pair(host, chain,
	                                     pki("admin-server.key")));
	check_ok(host, mtls_set_trusted_ca(host, pki(CA)));
	check_ok(host, mtls_ctx_set_tls_versions(host, ver, ver));
	check_ok(listener, mtls_ctx_add_host(listener, "admin.example.com",
	                                     host));
	for (int i = 0; i < 2; i++) {
		run_pair(&p, listener, c, "admin.example.com");
		assert_pair_ok(&p);
		assert_string_equal(p.srv.host, "admin.example.com");
	}
	assert_int_equal(stats(host).entries, MTLS_HAVE_SIGCACHE ? 2 : 0);
	assert_int_equal(stats(host).hits, MTLS_HAVE_SIGCACHE ? 1 : 0);
	assert_int_equal(stats(listener).entries, 0);
	run_pair(&p, listener, c, "localhost"); /* no host: the listener */
	assert_pair_ok(&p);
	assert_string_equal(p.srv.host, "");
	assert_int_equal(stats(listener).entries, MTLS_HAVE_SIGCACHE ? 2 : 0);
	assert_int_equal(stats(listener).hits, 0);
	assert_int_equal(stats(host).hits, MTLS_HAVE_SIGCACHE ? 1 : 0);
	mtls_ctx_free(host);
	mtls_ctx_free(listener);
	mtls_ctx_free(c);
	free(chain);
	rm_tree(dir);
}

/* Entries end at the earliest of the leaf's and the issuer's not_after and
 * the snapshot's first CRL next_update; an entry past its end is not used. */
static void test_entry_bounds(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = good_client(ver);
	time_t now = time(NULL);
	pair p;

	if (!MTLS_HAVE_SIGCACHE) {
		mtls_ctx_free(s);
		mtls_ctx_free(c);
		skip();
	}
	check_ok(s, mtls_set_crl(s, pki("int.crl"))); /* next update: 30 days */
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(entries_at(s, now + 29 * 86400), 2);
	assert_int_equal(entries_at(s, now + 31 * 86400), 0);
	mtls_ctx_free(s);
	/* without a CRL: the leaf's entry ends with the leaf (397 days), the
	 * intermediate's with the intermediate (5 years) */
	s = default_server(ver);
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(entries_at(s, now + 390 * 86400L), 2);
	assert_int_equal(entries_at(s, now + 400 * 86400L), 1);
	assert_int_equal(entries_at(s, now + 6 * 365 * 86400L), 0);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
#if MTLS_HAVE_SIGCACHE
	{
		mtls_sigcache sc;
		mtls_sigkey k;
		mbedtls_x509_crt leaf, in;

		mbedtls_x509_crt_init(&leaf);
		mbedtls_x509_crt_init(&in);
		assert_int_equal(mbedtls_x509_crt_parse_file(&leaf,
		                                             pki(CLI_CERT)), 0);
		assert_int_equal(mbedtls_x509_crt_parse_file(&in,
		                                             pki("int.crt")), 0);
		mtls__sigcache_init(&sc);
		assert_int_equal(mtls__sigkey_make(&leaf, &in, now + 100, &k), 0);
		assert_int_equal(k.until, now + 100);
		mtls__sigcache_add(&sc, &k, now);
		assert_int_equal(mtls__sigcache_has(&sc, &k, now + 99), 1);
		assert_int_equal(mtls__sigcache_has(&sc, &k, now + 100), 0);
		/* an entry already ended is not added */
		mtls__sigcache_free(&sc);
		mtls__sigcache_init(&sc);
		mtls__sigcache_add(&sc, &k, now + 100);
		assert_int_equal(mtls__sigcache_count(&sc, now), 0);
		/* bounded: the oldest goes */
		for (int i = 0; i < MTLS_SIGCACHE_MAX + 1; i++) {
			mtls_sigkey x = k;

			x.child[0] = (unsigned char)i;
			x.child[1] = (unsigned char)(i >> 8);
			mtls__sigcache_add(&sc, &x, now);
		}
		assert_int_equal(mtls__sigcache_count(&sc, now),
		                 MTLS_SIGCACHE_MAX);
		k.child[0] = 0;
		k.child[1] = 0;
		assert_int_equal(mtls__sigcache_has(&sc, &k, now), 0);
		k.child[0] = 1;
		assert_int_equal(mtls__sigcache_has(&sc, &k, now), 1);
		mtls__sigcache_free(&sc);
		mbedtls_x509_crt_free(&leaf);
		mbedtls_x509_crt_free(&in);
	}
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    VTEST(test_returning_leaf_skips_signature),
	    VTEST(test_other_key_same_subject_serial),
	    VTEST(test_same_body_other_issuer_key),
	    VTEST(test_revoked_after_crl_reload),
	    VTEST(test_wrong_certificate_verify_with_cached_leaf),
	    VTEST(test_failed_handshakes_add_nothing),
	    VTEST(test_cache_of_the_judging_host),
	    VTEST(test_entry_bounds),
	};

	pki_dir();
	return cmocka_run_group_tests_name("sigcache", tests, NULL, NULL);
}
