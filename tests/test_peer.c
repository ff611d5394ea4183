/*
 * test_peer.c - identity allow lists (mtls_ctx_allow_peer), enforced in
 * the handshake: URI (exact and prefix, with the SPIFFE trust-domain
 * boundary), DNS, CN, OU and SPKI pins, on the server and on the client;
 * what mtls_verify_peer reports with MTLS_VERIFY_OPTIONAL; argument
 * checks.
 *
 * Certificates the test PKI lacks (a look-alike SPIFFE trust domain, a
 * subject with two OUs) are issued here by the PKI's intermediate with the
 * openssl command, in a temporary directory.
 */
#include "conn_util.h"

#include <sys/wait.h>

typedef struct extra {
	char *dir;
	char *evil_crt, *evil_key; /* spiffe://example.org.evil/... */
	char *ou_crt, *ou_key;     /* OU=payments, OU=ops, CN=ou-client */
	char *two_crt, *two_key;   /* URIs .../sa/web and .../sa/admin */
	char *cn2_crt, *cn2_key;   /* CN=web, CN=admin */
	char *dots_crt, *dots_key; /* .../ns/test/../admin */
	char *pct_crt, *pct_key;   /* .../ns/test/%2e%2e/admin */
	char *dbl_crt, *dbl_key;   /* .../ns/test//admin */
} extra;

static extra X;

static void sh(const char *cmd)
{
	int st = system(cmd);

	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("command failed (%d): %s", st, cmd);
}

/* dir/name.crt (leaf + int.crt) and dir/name.key: a client certificate
 * from the PKI's intermediate. */
static void issue(const char *name, const char *subj, const char *san,
                  char **crt, char **key)
{
	size_t cap = 8 * TEST_PATH_MAX;
	char *cmd = malloc(cap), ext[TEST_PATH_MAX], cnf[TEST_PATH_MAX];
	char csr[TEST_PATH_MAX], leaf[TEST_PATH_MAX], buf[300];
	static unsigned serial = 0x5e1a1;
	int n;

	snprintf(buf, sizeof(buf), "%s.crt", name);
	*crt = path_in(X.dir, buf);
	snprintf(buf, sizeof(buf), "%s.key", name);
	*key = path_in(X.dir, buf);
	snprintf(ext, sizeof(ext), "%s/%s.ext", X.dir, name);
	snprintf(cnf, sizeof(cnf), "%s/req.cnf", X.dir);
	snprintf(csr, sizeof(csr), "%s/%s.csr", X.dir, name);
	snprintf(leaf, sizeof(leaf), "%s/%s-leaf.crt", X.dir, name);
	assert_non_null(cmd);
	n = snprintf(cmd, cap,
	         "printf '[ext]\\nbasicConstraints = critical,CA:FALSE\\n"
	         "keyUsage = critical,digitalSignature\\n"
	         "extendedKeyUsage = clientAuth\\nsubjectAltName = %s\\n' > '%s'"
	         " && printf '[req]\\ndistinguished_name = dn\\n[dn]\\n' > '%s'"
	         " && openssl ecparam -name prime256v1 -genkey -noout -out '%s'"
	         " && chmod 600 '%s'"
	         " && openssl req -new -config '%s' -key '%s' -subj '%s' -out '%s'"
	         " && openssl x509 -req -in '%s' -CA '%s' -CAkey '%s'"
	         " -set_serial %u -days 30 -sha256 -extfile '%s' -extensions ext"
	         " -out '%s' && cat '%s' '%s' > '%s'",
	         san, ext, cnf, *key, *key, cnf, *key, subj, csr, csr,
	         pki("int.crt"), pki("int.key"), serial++, ext, leaf, leaf,
	         pki("int.crt"), *crt);
	assert_true(n > 0 && (size_t)n < cap);
	sh(cmd);
	free(cmd);
}

static int setup_extra(void **state)
{
	(void)state;
	X.dir = make_tmpdir();
	issue("evil", "/CN=evil-client",
	      "URI:spiffe://example.org.evil/ns/test/sa/client,"
	      "DNS:client.test.evil",
	      &X.evil_crt, &X.evil_key);
	issue("ou", "/OU=payments/OU=ops/CN=ou-client",
	      "URI:spiffe://example.org/ns/pay/sa/ou", &X.ou_crt, &X.ou_key);
	issue("two", "/CN=two-uris",
	      "URI:spiffe://example.org/sa/web,"
	      "URI:spiffe://example.org/sa/admin,DNS:two.test",
	      &X.two_crt, &X.two_key);
	issue("cn2", "/CN=web/CN=admin", "DNS:cn2.test", &X.cn2_crt,
	      &X.cn2_key);
	issue("dots", "/CN=dots",
	      "URI:spiffe://example.org/ns/test/../admin", &X.dots_crt,
	      &X.dots_key);
	issue("pct", "/CN=pct",
	      /* printf(1) makes the file: %% is one % */
	      "URI:spiffe://example.org/ns/test/%%2e%%2e/admin", &X.pct_crt,
	      &X.pct_key);
	issue("dbl", "/CN=dbl", "URI:spiffe://example.org/ns/test//admin",
	      &X.dbl_crt, &X.dbl_key);
	return 0;
}

static int teardown_extra(void **state)
{
	(void)state;
	free(X.evil_crt);
	free(X.evil_key);
	free(X.ou_crt);
	free(X.ou_key);
	free(X.two_crt);
	free(X.two_key);
	free(X.cn2_crt);
	free(X.cn2_key);
	free(X.dots_crt);
	free(X.dots_key);
	free(X.pct_crt);
	free(X.pct_key);
	free(X.dbl_crt);
	free(X.dbl_key);
	rm_tree(X.dir);
	return 0;
}

static mtls_ctx *client_from(int ver, const char *crt, const char *key)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);

	assert_non_null(c);
	check_ok(c, mtls_load_client_pair(c, crt, key));
	check_ok(c, mtls_set_trusted_ca(c, pki(CA)));
	check_ok(c, mtls_ctx_set_tls_versions(c, ver, ver));
	check_ok(c, mtls_ctx_set_session_resumption(c, 0));
	return c;
}

/* A server allowing (kind, value) and nothing else.  */
static mtls_ctx *server_allowing(int ver, mtls_allow_kind kind,
                                 const char *value)
{
	mtls_ctx *s = default_server(ver);

	check_ok(s, mtls_ctx_allow_peer(s, kind, value));
	return s;
}

/* The client presenting crt/key is accepted (1) or refused with
 * PEER_POLICY (0) by a server allowing (kind, value). */
static void expect(int ver, mtls_allow_kind kind, const char *value,
                   const char *crt, const char *key, int accepted)
{
	mtls_ctx *s = server_allowing(ver, kind, value);
	mtls_ctx *c = client_from(ver, crt, key);
	pair p;

	run_pair(&p, s, c, "localhost");
	if (accepted) {
		if (p.srv.hs != 0) {
			dump_pair(&p);
			fail_msg("allow %d \"%s\": %s refused", kind, value, crt);
		}
		assert_pair_ok(&p);
		assert_int_equal(p.srv.verify, 0);
	} else {
		if (p.srv.hs != MTLS_ERR_PEER_POLICY) {
			dump_pair(&p);
			fail_msg("allow %d \"%s\": %s not refused by policy",
			         kind, value, crt);
		}
		assert_server_refused(&p, ver, MTLS_ERR_PEER_POLICY);
		assert_non_null(strstr(p.srv.error, "not allowed by policy"));
	}
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

#define GOOD pki(CLI_CERT), pki(CLI_KEY)
#define EVIL X.evil_crt, X.evil_key
#define OU X.ou_crt, X.ou_key

static void test_allow_uri(void **state)
{
	int ver = test_version(state);

	expect(ver, MTLS_ALLOW_URI, CLIENT_URI, GOOD, 1);
	expect(ver, MTLS_ALLOW_URI, "spiffe://example.org/ns/test/sa/other",
	       GOOD, 0);
	/* exact: neither a prefix nor a longer URI matches */
	expect(ver, MTLS_ALLOW_URI, "spiffe://example.org/ns/test/sa", GOOD,
	       0);
	expect(ver, MTLS_ALLOW_URI, CLIENT_URI "/x", GOOD, 0);
	/* URIs compare exactly (case matters in the path) */
	expect(ver, MTLS_ALLOW_URI, "spiffe://example.org/ns/test/sa/CLIENT",
	       GOOD, 0);
	expect(ver, MTLS_ALLOW_URI, CLIENT_URI, EVIL, 0);
}

static void test_allow_uri_prefix(void **state)
{
	int ver = test_version(state);

	expect(ver, MTLS_ALLOW_URI_PREFIX, "spiffe://example.org/", GOOD, 1);
	expect(ver, MTLS_ALLOW_URI_PREFIX, "spiffe://example.org/ns/test/",
	       GOOD, 1);
	expect(ver, MTLS_ALLOW_URI_PREFIX, "spiffe://example.org/ns/prod/",
	       GOOD, 0);
	expect(ver, MTLS_ALLOW_URI_PREFIX, "spiffe://other.org/", GOOD, 0);
	/* a trust domain without its slash still ends at the domain */
	expect(ver, MTLS_ALLOW_URI_PREFIX, "spiffe://example.org", GOOD, 1);
	expect(ver, MTLS_ALLOW_URI_PREFIX, "spiffe://example.org", EVIL, 0);
	expect(ver, MTLS_ALLOW_URI_PREFIX, "spiffe://example.org/", EVIL, 0);
	expect(ver, MTLS_ALLOW_URI_PREFIX, "spiffe://example.org.evil/", EVIL,
	       1);
}

/* The identity reported for a client accepted under (kind, value), or
 * with no allow list when value is NULL. */
static void expect_identity(int ver, mtls_allow_kind kind, const char *value,
                            const char *crt, const char *key,
                            const char *identity)
{
	mtls_ctx *s = value ? server_allowing(ver, kind, value)
	                    : default_server(ver);
	mtls_ctx *c = client_from(ver, crt, key);
	pair p;

	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.verify, 0);
	assert_string_equal(p.srv.identity, identity);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* #11 finding 4: the identity reported (and forwarded by a proxy) is the
 * one the policy matched, never another SAN of the same certificate. */
static void test_identity_is_what_matched(void **state)
{
	int ver = test_version(state);

	/* two URI SANs: the rule could match one while the first is
	 * reported -- refused under any URI rule */
	expect(ver, MTLS_ALLOW_URI_PREFIX, "spiffe://example.org/sa/web/",
	       X.two_crt, X.two_key, 0);
	expect(ver, MTLS_ALLOW_URI_PREFIX, "spiffe://example.org/sa/web",
	       X.two_crt, X.two_key, 0);
	expect(ver, MTLS_ALLOW_URI, "spiffe://example.org/sa/admin",
	       X.two_crt, X.two_key, 0);
	/* a DNS rule judges the DNS SAN: that is the identity */
	expect_identity(ver, MTLS_ALLOW_DNS, "two.test", X.two_crt, X.two_key,
	                "two.test");
	/* without a list: the only URI, else the only CN */
	expect_identity(ver, MTLS_ALLOW_URI, CLIENT_URI, GOOD, CLIENT_URI);
	expect_identity(ver, MTLS_ALLOW_URI_PREFIX, "spiffe://example.org/",
	                GOOD, CLIENT_URI);
	expect_identity(ver, MTLS_ALLOW_URI, NULL, GOOD, CLIENT_URI);
	/* several URIs: no single identity, not even the CN (which could
	 * spell one of them); a URI a backend could normalise: none */
	expect_identity(ver, MTLS_ALLOW_URI, NULL, X.two_crt, X.two_key, "");
	expect_identity(ver, MTLS_ALLOW_URI, NULL, X.dots_crt, X.dots_key, "");
	expect_identity(ver, MTLS_ALLOW_URI, NULL, X.cn2_crt, X.cn2_key, "");
	expect_identity(ver, MTLS_ALLOW_URI, NULL, OU, "spiffe://example.org/ns/pay/sa/ou");
	/* two CNs under a CN rule: refused; one CN: it is the identity */
	expect(ver, MTLS_ALLOW_CN, "web", X.cn2_crt, X.cn2_key, 0);
	expect(ver, MTLS_ALLOW_CN, "admin", X.cn2_crt, X.cn2_key, 0);
	expect_identity(ver, MTLS_ALLOW_CN, "ou-client", OU, "ou-client");
	/* with two CNs and no list there is no single identity */
	expect_identity(ver, MTLS_ALLOW_DNS, "cn2.test", X.cn2_crt, X.cn2_key,
	                "cn2.test");
}

/* #11 informational: a URI prefix judges whole path segments, and URIs a
 * backend could normalise into another path never match one. */
static void test_uri_prefix_segments(void **state)
{
	int ver = test_version(state);
	static const char *p = "spiffe://example.org/ns/test/";

	expect(ver, MTLS_ALLOW_URI_PREFIX, p, X.dots_crt, X.dots_key, 0);
	expect(ver, MTLS_ALLOW_URI_PREFIX, p, X.pct_crt, X.pct_key, 0);
	expect(ver, MTLS_ALLOW_URI_PREFIX, p, X.dbl_crt, X.dbl_key, 0);
	/* without the trailing slash: still whole segments */
	expect(ver, MTLS_ALLOW_URI_PREFIX, "spiffe://example.org/ns/te", GOOD,
	       0);
	expect(ver, MTLS_ALLOW_URI_PREFIX, "spiffe://example.org/ns/test",
	       GOOD, 1);
	expect(ver, MTLS_ALLOW_URI_PREFIX, CLIENT_URI, GOOD, 1);
	/* an exact rule compares bytes: the literal URI is its own name */
	expect(ver, MTLS_ALLOW_URI, "spiffe://example.org/ns/admin",
	       X.dots_crt, X.dots_key, 0);
}

static void test_allow_dns(void **state)
{
	int ver = test_version(state);

	expect(ver, MTLS_ALLOW_DNS, "client.test", GOOD, 1);
	expect(ver, MTLS_ALLOW_DNS, "CLIENT.Test", GOOD, 1);
	expect(ver, MTLS_ALLOW_DNS, "other.test", GOOD, 0);
	expect(ver, MTLS_ALLOW_DNS, "client.tes", GOOD, 0);
	expect(ver, MTLS_ALLOW_DNS, "client.test", EVIL, 0);
	/* DNS entries do not match URIs or CNs */
	expect(ver, MTLS_ALLOW_DNS, CLIENT_URI, GOOD, 0);
	expect(ver, MTLS_ALLOW_DNS, "evil-client", EVIL, 0);
}

static void test_allow_cn(void **state)
{
	int ver = test_version(state);

	expect(ver, MTLS_ALLOW_CN, "client.test", GOOD, 1);
	expect(ver, MTLS_ALLOW_CN, "client", GOOD, 0);
	expect(ver, MTLS_ALLOW_CN, "client.test.", GOOD, 0);
	expect(ver, MTLS_ALLOW_CN, "evil-client", EVIL, 1);
	expect(ver, MTLS_ALLOW_CN, "ou-client", OU, 1);
}

static void test_allow_ou(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = client_from(ver, OU);
	pair p;

	expect(ver, MTLS_ALLOW_OU, "ops", OU, 1);      /* the second OU */
	expect(ver, MTLS_ALLOW_OU, "payments", OU, 1); /* the first */
	expect(ver, MTLS_ALLOW_OU, "dev", OU, 0);
	expect(ver, MTLS_ALLOW_OU, "Ops", OU, 0);
	expect(ver, MTLS_ALLOW_OU, "ops", GOOD, 0);    /* no OU at all */
	expect(ver, MTLS_ALLOW_OU, "ou-client", OU, 0); /* that is the CN */

	/* the identity shows the first OU */
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_string_equal(p.srv.peer.ou, "payments");
	assert_string_equal(p.srv.peer.cn, "ou-client");
	assert_non_null(strstr(p.srv.peer.subject, "OU=payments"));
	assert_non_null(strstr(p.srv.peer.subject, "OU=ops"));
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static void test_allow_spki_pin(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	char pin[65], upper[65], server_pin[65];
	pair p;

	/* learn the pins from a first handshake */
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	strcpy(pin, p.srv.peer.spki_sha256);
	strcpy(server_pin, p.cli.peer.spki_sha256);
	assert_int_equal(strlen(pin), 64);
	assert_string_not_equal(pin, server_pin);
	for (int i = 0; i < 65; i++)
		upper[i] = (char)(pin[i] >= 'a' && pin[i] <= 'f' ? pin[i] - 32
		                                                 : pin[i]);

	expect(ver, MTLS_ALLOW_SPKI_SHA256, pin, GOOD, 1);
	expect(ver, MTLS_ALLOW_SPKI_SHA256, upper, GOOD, 1);
	expect(ver, MTLS_ALLOW_SPKI_SHA256, server_pin, GOOD, 0);
	/* the same key in another certificate: the PEM/DER forms of
	 * client-ec are one certificate; a certificate with another key
	 * does not match */
	expect(ver, MTLS_ALLOW_SPKI_SHA256, pin, OU, 0);

	/* a pin on the client side, for the upstream */
	check_ok(c, mtls_ctx_set_session_resumption(c, 0));
	check_ok(c, mtls_ctx_allow_peer(c, MTLS_ALLOW_SPKI_SHA256, server_pin));
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.cli.verify, 0);
	mtls_ctx_free(c);
	c = default_client(ver);
	check_ok(c, mtls_ctx_allow_peer(c, MTLS_ALLOW_SPKI_SHA256, pin));
	run_pair(&p, s, c, "localhost");
	assert_client_refused(&p, MTLS_ERR_PEER_POLICY);
	assert_non_null(strstr(p.cli.error, "not allowed by policy"));
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* Entries accumulate: any one of them admits. */
static void test_allow_list_accumulates(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	mtls_ctx *good = default_client(ver), *ou = client_from(ver, OU);
	mtls_ctx *evil = client_from(ver, EVIL);
	pair p;

	check_ok(s, mtls_ctx_allow_peer(s, MTLS_ALLOW_CN, "nobody"));
	check_ok(s, mtls_ctx_allow_peer(s, MTLS_ALLOW_URI, CLIENT_URI));
	check_ok(s, mtls_ctx_allow_peer(s, MTLS_ALLOW_OU, "ops"));
	run_pair(&p, s, good, "localhost");
	assert_pair_ok(&p);
	run_pair(&p, s, ou, "localhost");
	assert_pair_ok(&p);
	run_pair(&p, s, evil, "localhost");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_POLICY);
	mtls_ctx_free(s);
	mtls_ctx_free(good);
	mtls_ctx_free(ou);
	mtls_ctx_free(evil);
}

/* Trust comes first: an untrusted certificate with an allowed identity
 * is untrusted, not "allowed". */
static void test_allow_does_not_replace_trust(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = server_allowing(ver, MTLS_ALLOW_URI, CLIENT_URI);
	mtls_ctx *other = mk_client(ver, "other-client.crt", "other-client.key",
	                            CA);
	pair p;

	run_pair(&p, s, other, "localhost");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_UNTRUSTED);
	mtls_ctx_free(s);
	mtls_ctx_free(other);
}

/* MTLS_VERIFY_OPTIONAL: the handshake completes, verify_peer tells. */
static void test_allow_optional(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = server_allowing(ver, MTLS_ALLOW_URI_PREFIX,
	                              "spiffe://example.org/");
	mtls_ctx *good = default_client(ver), *evil = client_from(ver, EVIL);
	mtls_ctx *none = mk_client(ver, NULL, NULL, CA);
	pair p;

	check_ok(s, mtls_ctx_set_verify(s, MTLS_VERIFY_OPTIONAL));
	run_pair(&p, s, evil, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.verify, MTLS_ERR_PEER_POLICY);
	assert_int_equal(p.srv.peer.has_cert, 1);
	assert_string_equal(p.srv.peer.uri[0],
	                    "spiffe://example.org.evil/ns/test/sa/client");
	run_pair(&p, s, good, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.verify, 0);
	run_pair(&p, s, none, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.verify, MTLS_ERR_PEER_NO_CERT);
	mtls_ctx_free(s);
	mtls_ctx_free(good);
	mtls_ctx_free(evil);
	mtls_ctx_free(none);
}

/* A client's allow list judges the upstream. */
static void test_client_allow_list(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	mtls_ctx *c = default_client(ver);
	pair p;

	check_ok(c, mtls_ctx_allow_peer(c, MTLS_ALLOW_DNS, "server.test"));
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.cli.verify, 0);
	mtls_ctx_free(c);
	c = default_client(ver);
	check_ok(c, mtls_ctx_allow_peer(c, MTLS_ALLOW_CN, "not-localhost"));
	run_pair(&p, s, c, "localhost");
	assert_client_refused(&p, MTLS_ERR_PEER_POLICY);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* An allow list added to a context in use applies to new connections
 * (and a session made before it does not bypass it). */
static void test_allow_added_later(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	pair p;

	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	check_ok(s, mtls_ctx_allow_peer(s, MTLS_ALLOW_CN, "someone-else"));
	run_pair(&p, s, c, "localhost");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_POLICY);
	assert_int_equal(p.srv.resumed, 0);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static void test_allow_args(void **state)
{
	mtls_ctx *s = mtls_ctx_new(MTLS_ROLE_SERVER);
	static const char *bad_pins[] = {
	    "abc",
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
	    "0123456789abcdef0123456789abcdef 123456789abcdef0123456789abcdef",
	    "sha256/0123456789abcdef0123456789abcdef0123456789abcdef01234567",
	};

	(void)state;
	assert_int_equal(mtls_ctx_allow_peer(NULL, MTLS_ALLOW_CN, "x"),
	                 MTLS_ERR_INVALID_ARG);
	check_err(s, mtls_ctx_allow_peer(s, MTLS_ALLOW_CN, NULL),
	          MTLS_ERR_INVALID_ARG, "allow list");
	check_err(s, mtls_ctx_allow_peer(s, MTLS_ALLOW_CN, ""),
	          MTLS_ERR_INVALID_ARG, "allow list");
	check_err(s, mtls_ctx_allow_peer(s, (mtls_allow_kind)99, "x"),
	          MTLS_ERR_INVALID_ARG, "allow list");
	check_err(s, mtls_ctx_allow_peer(s, (mtls_allow_kind)-1, "x"),
	          MTLS_ERR_INVALID_ARG, "allow list");
	for (size_t i = 0; i < sizeof(bad_pins) / sizeof(bad_pins[0]); i++)
		check_err(s, mtls_ctx_allow_peer(s, MTLS_ALLOW_SPKI_SHA256,
		                                 bad_pins[i]),
		          MTLS_ERR_INVALID_ARG, "pin");
	check_ok(s, mtls_ctx_allow_peer(
	                s, MTLS_ALLOW_SPKI_SHA256,
	                "0123456789ABCDEF0123456789abcdef0123456789abcdef"
	                "0123456789abcdef"));
	mtls_ctx_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_allow_args),
	    VTEST(test_allow_uri),
	    VTEST(test_allow_uri_prefix),
	    VTEST(test_allow_dns),
	    VTEST(test_allow_cn),
	    VTEST(test_allow_ou),
	    VTEST(test_allow_spki_pin),
	    VTEST(test_allow_list_accumulates),
	    VTEST(test_allow_does_not_replace_trust),
	    VTEST(test_allow_optional),
	    VTEST(test_client_allow_list),
	    VTEST(test_allow_added_later),
	    VTEST(test_identity_is_what_matched),
	    VTEST(test_uri_prefix_segments),
	};

	pki_dir();
	return cmocka_run_group_tests_name("peer", tests, setup_extra,
	                                   teardown_extra);
}
