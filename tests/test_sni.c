/*
 * test_sni.c - per-host contexts on one listener, chosen by SNI: exact
 * names, one-label wildcards, the default host, MTLS_SNI_REFUSE, each
 * host's own client-certificate policy, resumption that must not cross
 * hosts, host reload, and 10,000 names.
 *
 * The listener:
 *   default            server-ec (CN=localhost), client certificates required
 *   admin.example.com  admin-server, client certificates required (ca.crt)
 *   *.example.com      wild-server, MTLS_VERIFY_NONE
 */
/* to play a client that lies about its ticket (test_resumption_...) */
#define MBEDTLS_ALLOW_PRIVATE_ACCESS
#include "conn_util.h"

typedef struct sni_fixture {
	char *dir, *admin_chain, *wild_chain;
	mtls_ctx *listener, *admin, *wild;
	mtls_ctx *nocert; /* verifying client without a pair */
	mtls_ctx *cert;   /* verifying client with client-ec */
	mtls_ctx *peek;   /* insecure client with a pair: sees any host */
} sni_fixture;

static void fixture(sni_fixture *f, int ver)
{
	/* the SNI leaves are served with their intermediate */
	f->dir = make_tmpdir();
	f->admin_chain = make_chain(f->dir, "admin-server.crt");
	f->wild_chain = make_chain(f->dir, "wild-server.crt");
	f->listener = mk_server(ver, SRV_CERT, SRV_KEY, CA);
	f->admin = mtls_ctx_new(MTLS_ROLE_SERVER);
	check_ok(f->admin, mtls_load_server_pair(f->admin, f->admin_chain,
	                                         pki("admin-server.key")));
	check_ok(f->admin, mtls_set_trusted_ca(f->admin, pki(CA)));
	check_ok(f->admin, mtls_ctx_set_tls_versions(f->admin, ver, ver));
	f->wild = mtls_ctx_new(MTLS_ROLE_SERVER);
	check_ok(f->wild, mtls_load_server_pair(f->wild, f->wild_chain,
	                                        pki("wild-server.key")));
	check_ok(f->wild, mtls_ctx_set_tls_versions(f->wild, ver, ver));
	check_ok(f->wild, mtls_ctx_set_verify(f->wild, MTLS_VERIFY_NONE));
	check_ok(f->listener,
	         mtls_ctx_add_host(f->listener, "admin.example.com", f->admin));
	check_ok(f->listener,
	         mtls_ctx_add_host(f->listener, "*.example.com", f->wild));
	/* the listener holds its hosts */
	mtls_ctx_free(f->admin);
	mtls_ctx_free(f->wild);
	f->nocert = mk_client(ver, NULL, NULL, CA);
	f->cert = default_client(ver);
	f->peek = default_client(ver);
	check_ok(f->peek, mtls_ctx_insecure_skip_verify(f->peek));
	/* each connection here is judged on its own */
	check_ok(f->nocert, mtls_ctx_set_session_resumption(f->nocert, 0));
	check_ok(f->cert, mtls_ctx_set_session_resumption(f->cert, 0));
	check_ok(f->peek, mtls_ctx_set_session_resumption(f->peek, 0));
}

static void fixture_free(sni_fixture *f)
{
	mtls_ctx_free(f->listener);
	mtls_ctx_free(f->nocert);
	mtls_ctx_free(f->cert);
	mtls_ctx_free(f->peek);
	free(f->admin_chain);
	free(f->wild_chain);
	rm_tree(f->dir);
}

/* The certificate a client saw is PKI file `crt`. */
static void assert_served(const pair *p, const char *crt)
{
	char want[65];

	file_sha256(pki(crt), want);
	if (strcmp(p->cli.peer.sha256, want) != 0) {
		dump_pair(p);
		fail_msg("client saw %s (%s), expected %s", p->cli.peer.subject,
		         p->cli.peer.sha256, crt);
	}
}

static void test_admin_host(void **state)
{
	int ver = test_version(state);
	sni_fixture f;
	pair p;

	fixture(&f, ver);
	/* no client certificate: refused by the admin host's policy */
	run_pair(&p, f.listener, f.nocert, "admin.example.com");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_NO_CERT);
	assert_string_equal(p.srv.sni, "admin.example.com");
	/* with one: accepted, and the admin certificate is served */
	run_pair(&p, f.listener, f.cert, "admin.example.com");
	assert_pair_ok(&p);
	assert_int_equal(p.cli.verify, 0);
	assert_int_equal(p.srv.verify, 0);
	assert_string_equal(p.srv.peer.cn, "client.test");
	assert_string_equal(p.cli.peer.cn, "admin.example.com");
	assert_served(&p, "admin-server.crt");
	assert_string_equal(p.srv.sni, "admin.example.com");
	/* SNI is matched without regard to case */
	run_pair(&p, f.listener, f.cert, "ADMIN.Example.COM");
	assert_pair_ok(&p);
	assert_served(&p, "admin-server.crt");
	fixture_free(&f);
}

static void test_wildcard_host(void **state)
{
	int ver = test_version(state);
	sni_fixture f;
	pair p;

	fixture(&f, ver);
	/* one label under the wildcard: no client certificate needed */
	run_pair(&p, f.listener, f.nocert, "www.example.com");
	assert_pair_ok(&p);
	assert_int_equal(p.cli.verify, 0);
	assert_int_equal(p.srv.verify, MTLS_ERR_PEER_NO_CERT);
	assert_served(&p, "wild-server.crt");
	assert_string_equal(p.srv.sni, "www.example.com");
	/* a certificate is not even asked for */
	run_pair(&p, f.listener, f.cert, "api.example.com");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.verify, MTLS_ERR_PEER_NO_CERT);
	assert_served(&p, "wild-server.crt");
	/* two labels: not the wildcard's, so the default host (which asks
	 * for a certificate) */
	run_pair(&p, f.listener, f.peek, "a.b.example.com");
	assert_pair_ok(&p);
	assert_served(&p, "server-ec.crt");
	assert_int_equal(p.srv.verify, 0);
	assert_string_equal(p.srv.sni, "a.b.example.com");
	run_pair(&p, f.listener, f.nocert, "a.b.example.com");
	assert_true(p.srv.hs < 0);
	/* the bare domain is not under its own wildcard */
	run_pair(&p, f.listener, f.peek, "example.com");
	assert_pair_ok(&p);
	assert_served(&p, "server-ec.crt");
	fixture_free(&f);
}

/* #11 finding 2: one host decision.  mtls_conn_host() names the host that
 * judged the handshake (what a proxy routes by), and an SNI value that is
 * not a host name is refused, not judged by the default host while a
 * second matcher elsewhere reads it as a wildcard's name. */
static void test_host_decision(void **state)
{
	int ver = test_version(state);
	static const struct {
		const char *sni, *host;
	} cases[] = {
	    {"admin.example.com", "admin.example.com"},
	    {"ADMIN.Example.COM", "admin.example.com"},
	    {"www.example.com", "*.example.com"},
	    {"WWW.EXAMPLE.COM", "*.example.com"},
	    {"a.b.example.com", ""},
	    {"example.com", ""},
	    {"other.test", ""},
	};
	char name[300];
	sni_fixture f;
	pair p;

	fixture(&f, ver);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_pair(&p, f.listener, f.peek, cases[i].sni);
		assert_pair_ok(&p);
		assert_string_equal(p.srv.host, cases[i].host);
		assert_string_equal(p.srv.sni, cases[i].sni);
	}
	/* no SNI (an IP target sends none): the default host */
	run_pair(&p, f.listener, f.peek, "127.0.0.1");
	assert_int_equal(p.srv.hs, 0);
	assert_string_equal(p.srv.host, "");

	/* 254 and 255 bytes ending in ".example.com": over the 253 of a
	 * host name.  Before, the default host judged them while a
	 * wildcard matcher elsewhere could route them to *.example.com. */
	for (size_t len = 254; len <= 255; len++) {
		size_t body = len - strlen(".example.com");
		/* labels of 63 bytes: only the total is wrong */
		for (size_t i = 0; i < body; i++)
			name[i] = i % 64 == 63 ? '.' : 'a';
		memcpy(name + body, ".example.com", 13);
		assert_int_equal(strlen(name), len);
		assert_int_not_equal(name[body - 1], '.');
		run_pair(&p, f.listener, f.peek, name);
		assert_true(p.srv.hs < 0);
		assert_string_equal(p.srv.host, "");
		assert_non_null(strstr(p.srv.error, "not a host name"));
	}
	{
		static const char *bad[] = {
		    "www.example.com.", "a..example.com", ".example.com",
		    "sp ace.example.com", "tab\t.example.com",
		    "new\nline.example.com", "*.example.com", "a/b.example.com",
		    /* ASCII only, whatever the locale says 0xE9 is */
		    "caf\xe9.example.com", "\xc3\xa9.example.com",
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			run_pair(&p, f.listener, f.peek, bad[i]);
			if (p.srv.hs >= 0 || p.srv.host[0] != '\0') {
				dump_pair(&p);
				fail_msg("SNI \"%s\" was not refused", bad[i]);
			}
		}
	}
	/* a label of 64 bytes */
	memset(name, 'b', 64);
	memcpy(name + 64, ".example.com", 13);
	run_pair(&p, f.listener, f.peek, name);
	assert_true(p.srv.hs < 0);
	fixture_free(&f);
}

static void test_default_and_unknown(void **state)
{
	int ver = test_version(state);
	sni_fixture f;
	pair p;

	fixture(&f, ver);
	/* an unknown name gets the default host */
	run_pair(&p, f.listener, f.cert, "localhost");
	assert_pair_ok(&p);
	assert_served(&p, "server-ec.crt");
	assert_string_equal(p.srv.sni, "localhost");
	run_pair(&p, f.listener, f.peek, "unknown.test");
	assert_pair_ok(&p);
	assert_served(&p, "server-ec.crt");
	/* no SNI (IP target): the default host */
	run_pair(&p, f.listener, f.cert, "127.0.0.1");
	assert_pair_ok(&p);
	assert_served(&p, "server-ec.crt");
	assert_string_equal(p.srv.sni, "");

	check_ok(f.listener,
	         mtls_ctx_set_unknown_host(f.listener, MTLS_SNI_REFUSE));
	run_pair(&p, f.listener, f.peek, "unknown.test");
	if (p.srv.hs >= 0 || p.cli.hs >= 0 || p.srv.error[0] == '\0') {
		dump_pair(&p);
		fail_msg("an unknown name was not refused");
	}
	assert_int_equal(mtls_err_category(p.srv.hs), MTLS_CAT_TLS);
	assert_string_equal(p.srv.sni, "unknown.test");
	/* known names and no SNI still work */
	run_pair(&p, f.listener, f.cert, "admin.example.com");
	assert_pair_ok(&p);
	assert_served(&p, "admin-server.crt");
	run_pair(&p, f.listener, f.nocert, "www.example.com");
	assert_pair_ok(&p);
	run_pair(&p, f.listener, f.cert, "127.0.0.1");
	assert_pair_ok(&p);
	assert_served(&p, "server-ec.crt");
	check_ok(f.listener,
	         mtls_ctx_set_unknown_host(f.listener, MTLS_SNI_DEFAULT));
	run_pair(&p, f.listener, f.peek, "unknown.test");
	assert_pair_ok(&p);
	fixture_free(&f);
}

/* An mbedTLS 3.6 client will not offer a TLS 1.3 ticket to another name
 * than the one it was issued for; other clients may.  Relabel the session
 * so the raw client offers it anyway. */
static void retarget(mbedtls_ssl_session *s, const char *name)
{
#if MTLS_HAVE_TLS13 && defined(MBEDTLS_SSL_SESSION_TICKETS) && \
    defined(MBEDTLS_SSL_SERVER_NAME_INDICATION)
	free(s->hostname);
	s->hostname = strdup(name);
	assert_non_null(s->hostname);
#else
	(void)s;
	(void)name;
#endif
}

/* A session made with a host that asks for no certificate must not open
 * a host that requires one (RFC 6066: no resumption under another name).
 * An mtls client does not even offer it; a plain mbedTLS client does. */
static void test_resumption_does_not_cross_hosts(void **state)
{
	int ver = test_version(state);
	mbedtls_ssl_session www, adm;
	raw_opts o = {.ver = ver, .hostname = "www.example.com"};
	raw_result r1, r2, r3, r4;
	sni_fixture f;
	mtls_ctx *c;
	pair p1, p2, p3, p4, q;

	fixture(&f, ver);
	mbedtls_ssl_session_init(&www);
	mbedtls_ssl_session_init(&adm);

	o.save = &www;
	pair_open(&p1, f.listener);
	r1 = raw_client(p1.fds[0], &o);
	pair_close(&p1);
	/* the same host resumes */
	o.save = NULL;
	o.offer = &www;
	pair_open(&p2, f.listener);
	r2 = raw_client(p2.fds[0], &o);
	pair_close(&p2);
	/* the admin host does not, and wants a certificate */
	o.hostname = "admin.example.com";
	retarget(&www, o.hostname);
	pair_open(&p3, f.listener);
	r3 = raw_client(p3.fds[0], &o);
	pair_close(&p3);
	/* and the other way: an admin session does not open the default */
	o.cert = "client-ec.crt";
	o.key = "client-ec.key";
	o.offer = NULL;
	o.save = &adm;
	pair_open(&p4, f.listener);
	(void)raw_client(p4.fds[0], &o);
	pair_close(&p4);
	o.cert = o.key = NULL;
	o.hostname = "localhost";
	retarget(&adm, o.hostname);
	o.offer = &adm;
	o.save = NULL;
	pair_open(&q, f.listener);
	r4 = raw_client(q.fds[0], &o);
	pair_close(&q);

	assert_int_equal(r1.hs, 0);
	assert_int_equal(r1.saved, 0);
	assert_int_equal(p1.srv.hs, 0);
	assert_int_equal(r2.hs, 0);
	assert_int_equal(r2.resumed, 1);
	assert_int_equal(r3.setup, 0);
	assert_int_equal(r4.setup, 0);
	assert_int_equal(p2.srv.resumed, 1);
	if (p3.srv.hs != MTLS_ERR_PEER_NO_CERT || r3.resumed) {
		dump_pair(&p3);
		fail_msg("a www.example.com session resumed on "
		         "admin.example.com (resumed=%d)", r3.resumed);
	}
	assert_int_equal(p4.srv.hs, 0);
	assert_int_equal(p4.srv.verify, 0);
	if (q.srv.hs != MTLS_ERR_PEER_NO_CERT || r4.resumed) {
		dump_pair(&q);
		fail_msg("an admin.example.com session resumed on the default "
		         "host without a certificate (resumed=%d)", r4.resumed);
	}
	mbedtls_ssl_session_free(&www);
	mbedtls_ssl_session_free(&adm);

	/* an mtls client resumes with the same host, over a new connection */
	c = default_client(ver);
	run_pair(&p1, f.listener, c, "admin.example.com");
	run_pair(&p2, f.listener, c, "admin.example.com");
	assert_pair_ok(&p1);
	assert_pair_ok(&p2);
	assert_int_equal(p2.cli.resumed, 1);
	assert_int_equal(p2.srv.resumed, 1);
	assert_served(&p2, "admin-server.crt");
	assert_int_equal(p2.srv.verify, 0);
	/* ... but not with another one */
	run_pair(&p3, f.listener, c, "www.example.com");
	assert_pair_ok(&p3);
	assert_int_equal(p3.cli.resumed, 0);
	assert_int_equal(p3.srv.resumed, 0);
	assert_served(&p3, "wild-server.crt");
	mtls_ctx_free(c);
	fixture_free(&f);
}

/* A host context is reloaded on its own; the listener serves the new
 * pair at once. */
static void test_host_reload(void **state)
{
	int ver = test_version(state);
	char *dir = make_tmpdir();
	char *crt = path_in(dir, "host.crt"), *key = path_in(dir, "host.key");
	mtls_ctx *listener = mk_server(ver, SRV_CERT, SRV_KEY, CA);
	mtls_ctx *host = mtls_ctx_new(MTLS_ROLE_SERVER);
	mtls_ctx *peek = default_client(ver);
	pair p;

	copy_file(pki("admin-server.crt"), crt);
	copy_file(pki("admin-server.key"), key);
	chmod(key, 0600);
	check_ok(host, mtls_load_server_pair(host, crt, key));
	check_ok(host, mtls_ctx_set_tls_versions(host, ver, ver));
	check_ok(listener, mtls_ctx_add_host(listener, "h.example.com", host));
	check_ok(peek, mtls_ctx_insecure_skip_verify(peek));
	check_ok(peek, mtls_ctx_set_session_resumption(peek, 0));
	run_pair(&p, listener, peek, "h.example.com");
	assert_pair_ok(&p);
	assert_served(&p, "admin-server.crt");

	copy_file(pki("wild-server.crt"), crt);
	copy_file(pki("wild-server.key"), key);
	check_ok(host, mtls_ctx_reload(host));
	run_pair(&p, listener, peek, "h.example.com");
	assert_pair_ok(&p);
	assert_served(&p, "wild-server.crt");
	/* the default host is untouched */
	run_pair(&p, listener, peek, "other.test");
	assert_pair_ok(&p);
	assert_served(&p, "server-ec.crt");
	mtls_ctx_free(host);
	mtls_ctx_free(listener);
	mtls_ctx_free(peek);
	free(crt);
	free(key);
	rm_tree(dir);
}

/* Many names for one host object: still found, by hash. */
static void test_10000_hosts(void **state)
{
	int ver = test_version(state);
	sni_fixture f;
	mtls_ctx *many;
	char name[64];
	static const int probe[] = {0, 1, 4567, 9998, 9999};
	pair p;

	fixture(&f, ver);
	many = mk_server(ver, "admin-server.crt", "admin-server.key", NULL);
	for (int i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "h%05d.example.net", i);
		if (mtls_ctx_add_host(f.listener, name, many) != 0)
			fail_msg("add_host %s: %s", name,
			         mtls_ctx_error(f.listener));
	}
	mtls_ctx_free(many); /* the listener holds it, 10,000 times */
	for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
		snprintf(name, sizeof(name), "h%05d.example.net", probe[i]);
		run_pair(&p, f.listener, f.peek, name);
		assert_pair_ok(&p);
		assert_served(&p, "admin-server.crt");
		assert_string_equal(p.srv.sni, name);
	}
	/* names that were not added */
	run_pair(&p, f.listener, f.peek, "h10000.example.net");
	assert_pair_ok(&p);
	assert_served(&p, "server-ec.crt");
	run_pair(&p, f.listener, f.peek, "x.h00001.example.net");
	assert_pair_ok(&p);
	assert_served(&p, "server-ec.crt");
	/* the first hosts still resolve as before */
	run_pair(&p, f.listener, f.cert, "admin.example.com");
	assert_pair_ok(&p);
	assert_served(&p, "admin-server.crt");
	run_pair(&p, f.listener, f.nocert, "www.example.com");
	assert_pair_ok(&p);
	assert_served(&p, "wild-server.crt");
	fixture_free(&f);
}

/* Argument checking of the SNI calls. */
static void test_add_host_args(void **state)
{
	mtls_ctx *l = mk_server(0, SRV_CERT, SRV_KEY, NULL);
	mtls_ctx *h = mk_server(0, "admin-server.crt", "admin-server.key", NULL);
	mtls_ctx *h2 = mk_server(0, "wild-server.crt", "wild-server.key", NULL);
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	mtls_ctx *peek = default_client(0);
	static const char *bad[] = {"", "*", "*.", "a*.example.com",
	                            "*example.com", "bad name.com",
	                            "x/y.com", "**.example.com"};
	char longname[300];
	pair p;

	(void)state;
	assert_int_equal(mtls_ctx_add_host(NULL, "a.com", h),
	                 MTLS_ERR_INVALID_ARG);
	check_err(l, mtls_ctx_add_host(l, NULL, h), MTLS_ERR_INVALID_ARG,
	          "NULL");
	check_err(l, mtls_ctx_add_host(l, "a.com", NULL), MTLS_ERR_INVALID_ARG,
	          "NULL");
	check_err(l, mtls_ctx_add_host(l, "a.com", l), MTLS_ERR_INVALID_ARG,
	          "listener");
	check_err(l, mtls_ctx_add_host(l, "a.com", c), MTLS_ERR_WRONG_ROLE,
	          "server");
	check_err(c, mtls_ctx_add_host(c, "a.com", h), MTLS_ERR_WRONG_ROLE,
	          "server");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_err(l, mtls_ctx_add_host(l, bad[i], h),
		          MTLS_ERR_INVALID_ARG, "host name");
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	check_err(l, mtls_ctx_add_host(l, longname, h), MTLS_ERR_INVALID_ARG,
	          "host name");
	check_err(c, mtls_ctx_set_unknown_host(c, MTLS_SNI_REFUSE),
	          MTLS_ERR_WRONG_ROLE, "server");
	check_err(l, mtls_ctx_set_unknown_host(l, (mtls_sni_policy)5),
	          MTLS_ERR_INVALID_ARG, "policy");
	assert_int_equal(mtls_ctx_set_unknown_host(NULL, MTLS_SNI_REFUSE),
	                 MTLS_ERR_INVALID_ARG);

	/* the same name again replaces the host */
	check_ok(l, mtls_ctx_add_host(l, "a.example.com", h));
	check_ok(l, mtls_ctx_add_host(l, "A.Example.com", h2));
	check_ok(peek, mtls_ctx_insecure_skip_verify(peek));
	check_ok(peek, mtls_ctx_set_session_resumption(peek, 0));
	run_pair(&p, l, peek, "a.example.com");
	assert_pair_ok(&p);
	assert_served(&p, "wild-server.crt");
	mtls_ctx_free(l);
	mtls_ctx_free(h);
	mtls_ctx_free(h2);
	mtls_ctx_free(c);
	mtls_ctx_free(peek);
}

/* A host context that cannot serve (no pair) fails the handshake with its
 * own reason, not the listener's. */
static void test_host_not_configured(void **state)
{
	int ver = test_version(state);
	mtls_ctx *l = mk_server(ver, SRV_CERT, SRV_KEY, NULL);
	mtls_ctx *empty = mtls_ctx_new(MTLS_ROLE_SERVER);
	mtls_ctx *peek = default_client(ver);
	pair p;

	check_ok(l, mtls_ctx_add_host(l, "empty.example.com", empty));
	check_ok(peek, mtls_ctx_insecure_skip_verify(peek));
	run_pair(&p, l, peek, "empty.example.com");
	assert_true(p.srv.hs < 0);
	assert_true(p.cli.hs < 0);
	assert_non_null(strstr(p.srv.error, "mtls_load_server_pair"));
	run_pair(&p, l, peek, "other.example.com");
	assert_pair_ok(&p);
	mtls_ctx_free(l);
	mtls_ctx_free(empty);
	mtls_ctx_free(peek);
}

/* A host's own tls_versions: the listener negotiates the version (mbedTLS
 * decides it before the SNI callback), the host then refuses a version
 * outside its bounds with protocol_version; other hosts are untouched. */
static void test_host_versions(void **state)
{
	mtls_ctx *l, *admin, *c12, *c13;
	pair p;

	(void)state;
	if (!have_tls13()) {
		/* 2.28 has one version: a TLS-1.3-only host cannot be made */
		admin = mtls_ctx_new(MTLS_ROLE_SERVER);
		assert_non_null(admin);
		assert_int_equal(mtls_ctx_set_tls_versions(admin, MTLS_TLS1_3,
		                                           MTLS_TLS1_3),
		                 MTLS_ERR_UNSUPPORTED);
		mtls_ctx_free(admin);
		print_message("  (TLS 1.3 not in mbedTLS %s: skipping)\n",
		              mtls_mbedtls_version());
		skip();
	}
	l = mk_server(0, SRV_CERT, SRV_KEY, CA); /* 1.2 to 1.3 */
	admin = mk_server(MTLS_TLS1_3, "admin-server.crt", "admin-server.key",
	                  CA);
	check_ok(l, mtls_ctx_add_host(l, "admin.example.com", admin));
	c12 = mk_client(MTLS_TLS1_2, CLI_CERT, CLI_KEY, CA);
	c13 = mk_client(MTLS_TLS1_3, CLI_CERT, CLI_KEY, CA);
	check_ok(c12, mtls_ctx_insecure_skip_verify(c12)); /* admin's chain */
	check_ok(c13, mtls_ctx_insecure_skip_verify(c13));

	run_pair(&p, l, c12, "admin.example.com");
	assert_true(p.srv.hs < 0);
	assert_true(p.cli.hs < 0);
	assert_non_null(strstr(p.srv.error, "host admin.example.com accepts "
	                       "TLS 1.3 only; the client negotiated TLS 1.2"));
	run_pair(&p, l, c13, "admin.example.com");
	assert_pair_ok(&p);
	assert_string_equal(p.srv.version, "TLSv1.3");
	assert_string_equal(p.srv.host, "admin.example.com");
	/* the default host still takes TLS 1.2 */
	run_pair(&p, l, c12, "localhost");
	assert_pair_ok(&p);
	assert_string_equal(p.srv.version, "TLSv1.2");
	assert_string_equal(p.srv.host, "");

	/* and the other way: a TLS-1.2-only host refuses 1.3 */
	check_ok(admin, mtls_ctx_set_tls_versions(admin, MTLS_TLS1_2,
	                                          MTLS_TLS1_2));
	run_pair(&p, l, c13, "admin.example.com");
	assert_true(p.srv.hs < 0);
	assert_non_null(strstr(p.srv.error, "accepts TLS 1.2 only; the client "
	                       "negotiated TLS 1.3"));
	run_pair(&p, l, c12, "admin.example.com");
	assert_pair_ok(&p);
	mtls_ctx_free(admin);
	mtls_ctx_free(l);
	mtls_ctx_free(c12);
	mtls_ctx_free(c13);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_add_host_args),
	    VTEST(test_admin_host),
	    VTEST(test_wildcard_host),
	    VTEST(test_host_decision),
	    VTEST(test_default_and_unknown),
	    VTEST(test_resumption_does_not_cross_hosts),
	    VTEST(test_host_reload),
	    VTEST(test_host_not_configured),
	    VTEST(test_10000_hosts),
	    cmocka_unit_test(test_host_versions),
	};

	pki_dir();
	return cmocka_run_group_tests_name("sni", tests, NULL, NULL);
}
