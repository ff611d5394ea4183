/*
 * test_peer_sans.c - the peer's certificate in full (mtls_conn_peer_*
 * accessors) and the fixed mtls_peer's truncation flag: a 2,048-byte
 * SPIFFE ID, 20 SANs of each kind (IPv6 among them), SANs with an
 * embedded NUL or a bad IP length, no SAN at all, a DN and a serial longer
 * than mtls_peer holds; NULL/0 before a handshake and after a failed one.
 *
 * The client certificates are issued here by the PKI's intermediate with
 * the openssl command, in a temporary directory; hostile SAN bytes that
 * openssl's syntax cannot spell are written as DER.
 */
#include "conn_util.h"

#include <sys/wait.h>

typedef struct extra {
	char *dir;
	char *long_crt, *long_key;   /* 2,048-byte SPIFFE ID, long DN, serial */
	char *many_crt, *many_key;   /* 20 DNS, 20 URI, 20 IP, 20 email */
	char *nul_crt, *nul_key;     /* NUL in a DNS and an email SAN */
	char *ip5_crt, *ip5_key;     /* a 5-byte IP SAN */
	char *nosan_crt, *nosan_key; /* CN only */
	char *upper_crt, *upper_key; /* spiffe://Example.org/...: not a SPIFFE ID */
	char long_uri[2049];
	char long_serial[200];       /* as the library writes it */
	char long_subject[1024];     /* the subject's OU value, repeated */
} extra;

static extra X;

#define LONG_SERIAL_BYTES 48 /* 143 characters: over mtls_peer's 128 */

static void sh(const char *cmd)
{
	int st = system(cmd);

	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("command failed (%d): %s", st, cmd);
}

static void put_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* dir/name.crt (leaf + int.crt) and dir/name.key: a client certificate
 * from the PKI's intermediate with serial (hex) and the extension lines
 * ext_lines (e.g. "subjectAltName = ...\n", or "" for none). */
static void issue(const char *name, const char *subj, const char *serial,
                  const char *ext_lines, char **crt, char **key)
{
	size_t cap = 8 * TEST_PATH_MAX + 4096, elen = strlen(ext_lines) + 512;
	char *cmd = malloc(cap), *ext = malloc(elen);
	char extf[TEST_PATH_MAX], cnf[TEST_PATH_MAX], csr[TEST_PATH_MAX];
	char leaf[TEST_PATH_MAX], buf[300];
	int n;

	assert_non_null(cmd);
	assert_non_null(ext);
	snprintf(buf, sizeof(buf), "%s.crt", name);
	*crt = path_in(X.dir, buf);
	snprintf(buf, sizeof(buf), "%s.key", name);
	*key = path_in(X.dir, buf);
	snprintf(extf, sizeof(extf), "%s/%s.ext", X.dir, name);
	snprintf(cnf, sizeof(cnf), "%s/req.cnf", X.dir);
	snprintf(csr, sizeof(csr), "%s/%s.csr", X.dir, name);
	snprintf(leaf, sizeof(leaf), "%s/%s-leaf.crt", X.dir, name);
	snprintf(ext, elen,
	         "[ext]\nbasicConstraints = critical,CA:FALSE\n"
	         "keyUsage = critical,digitalSignature\n"
	         "extendedKeyUsage = clientAuth\n%s",
	         ext_lines);
	put_text(extf, ext);
	put_text(cnf, "[req]\ndistinguished_name = dn\n[dn]\n");
	n = snprintf(cmd, cap,
	             "openssl ecparam -name prime256v1 -genkey -noout -out '%s'"
	             " && chmod 600 '%s'"
	             " && openssl req -new -config '%s' -key '%s' -subj '%s'"
	             " -out '%s' 2>/dev/null"
	             " && openssl x509 -req -in '%s' -CA '%s' -CAkey '%s'"
	             " -set_serial 0x%s -days 30 -sha256 -extfile '%s'"
	             " -extensions ext -out '%s' 2>/dev/null"
	             " && cat '%s' '%s' > '%s'",
	             *key, *key, cnf, *key, subj, csr, csr, pki("int.crt"),
	             pki("int.key"), serial, extf, leaf, leaf, pki("int.crt"),
	             *crt);
	assert_true(n > 0 && (size_t)n < cap);
	sh(cmd);
	free(cmd);
	free(ext);
}

/* A DER GeneralName: tag, then a length under 128, then the bytes. */
static size_t gname(char *hex, int tag, const void *v, size_t len)
{
	const unsigned char *p = v;
	size_t o = 0;

	assert_true(len < 128);
	o += (size_t)sprintf(hex + o, "%02x%02x", tag, (unsigned)len);
	for (size_t i = 0; i < len; i++)
		o += (size_t)sprintf(hex + o, "%02x", p[i]);
	return o;
}

static void make_long(void)
{
	static const char prefix[] = "spiffe://example.org/ns/long/sa/";
	char subj[1024], ext[2200], serial[2 * LONG_SERIAL_BYTES + 1];
	size_t n = sizeof(prefix) - 1, o = 0;

	/* 2,048 bytes: the longest a SPIFFE ID is required to be */
	memcpy(X.long_uri, prefix, n);
	for (int seg = 0; n < 2048; seg++) {
		X.long_uri[n++] = (char)('a' + seg % 26);
		if (n % 64 == 0 && n < 2047)
			X.long_uri[n++] = '/';
	}
	X.long_uri[2048] = '\0';
	snprintf(ext, sizeof(ext), "subjectAltName = URI:%s\n", X.long_uri);
	for (int i = 0; i < LONG_SERIAL_BYTES; i++) {
		sprintf(serial + 2 * i, "%02X", 0x10 + i);
		o += (size_t)sprintf(X.long_serial + o, "%s%02X", i ? ":" : "",
		                     0x10 + i);
	}
	/* five OUs of 60 characters: a subject DN over 300 bytes */
	n = (size_t)snprintf(subj, sizeof(subj), "/CN=long-client");
	for (int i = 0; i < 5; i++) {
		n += (size_t)snprintf(subj + n, sizeof(subj) - n, "/OU=%c", 'v' + i);
		for (int j = 1; j < 60; j++)
			subj[n++] = 'x';
		subj[n] = '\0';
	}
	issue("long", subj, serial, ext, &X.long_crt, &X.long_key);
}

static void make_many(void)
{
	char ext[8192];
	size_t n = (size_t)snprintf(ext, sizeof(ext), "subjectAltName = ");

	for (int i = 0; i < 20; i++)
		n += (size_t)snprintf(ext + n, sizeof(ext) - n,
		                      "DNS:n%d.many.test,"
		                      "URI:spiffe://example.org/many/%d,"
		                      "email:u%d@many.test,%s%d,",
		                      i, i, i,
		                      i % 2 ? "IP:2001:db8::" : "IP:192.0.2.",
		                      i + 1);
	ext[n - 1] = '\n'; /* the last comma */
	issue("many", "/CN=many-client", "5A11", ext, &X.many_crt, &X.many_key);
}

/* SAN bytes no openssl name syntax spells: written as DER. */
static void make_nul(void)
{
	static const unsigned char ip5[] = {192, 0, 2, 1, 9};
	char body[512], ext[700];
	size_t o = 0;

	o += gname(body + o, 0x82, "good\0.evil.test", 15);
	o += gname(body + o, 0x82, "ok.test", 7);
	o += gname(body + o, 0x81, "ops\0@evil.test", 14);
	o += gname(body + o, 0x87, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01",
	           16);
	o += gname(body + o, 0x86, "spiffe://example.org/ns/nul", 27);
	snprintf(ext, sizeof(ext), "subjectAltName = DER:30%02x%s\n",
	         (unsigned)(o / 2), body);
	issue("nul", "/CN=nul-client", "5A12", ext, &X.nul_crt, &X.nul_key);
	o = gname(body, 0x87, ip5, sizeof(ip5));
	o += gname(body + o, 0x87, "\x7f\0\0\x01", 4);
	snprintf(ext, sizeof(ext), "subjectAltName = DER:30%02x%s\n",
	         (unsigned)(o / 2), body);
	issue("ip5", "/CN=ip5-client", "5A15", ext, &X.ip5_crt, &X.ip5_key);
}

static int setup_extra(void **state)
{
	(void)state;
	X.dir = make_tmpdir();
	make_long();
	make_many();
	make_nul();
	issue("nosan", "/CN=nosan-client/OU=ops", "5A13", "", &X.nosan_crt,
	      &X.nosan_key);
	issue("upper", "/CN=upper-client", "5A14",
	      "subjectAltName = URI:spiffe://Example.org/ns/up\n",
	      &X.upper_crt, &X.upper_key);
	return 0;
}

static int teardown_extra(void **state)
{
	char **paths[] = {&X.long_crt,  &X.long_key,  &X.many_crt,
	                  &X.many_key,  &X.nul_crt,   &X.nul_key,
	                  &X.nosan_crt, &X.nosan_key, &X.upper_crt,
	                  &X.upper_key, &X.ip5_crt,   &X.ip5_key};

	(void)state;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		free(*paths[i]);
		*paths[i] = NULL;
	}
	rm_tree(X.dir);
	return 0;
}

/* ---- a handshake whose two connections stay open -------------------------- */

typedef struct tlink {
	mtls_conn *srv, *cli;
	int srv_hs, cli_hs;
	int fds[2];
} tlink;

static void *server_hs(void *arg)
{
	tlink *l = arg;

	l->srv_hs = mtls_handshake(l->srv);
	return NULL;
}

/* Server s meets client c; both connections are left open for the
 * accessors. */
static void open_link_with(tlink *l, mtls_ctx *s, mtls_ctx *c)
{
	pthread_t t;

	memset(l, 0, sizeof(*l));
	mk_socketpair(l->fds);
	l->srv = mtls_conn_new(s, l->fds[1], NULL);
	l->cli = mtls_conn_new(c, l->fds[0], "localhost");
	assert_non_null(l->srv);
	assert_non_null(l->cli);
	assert_int_equal(pthread_create(&t, NULL, server_hs, l), 0);
	l->cli_hs = mtls_handshake(l->cli);
	if (l->cli_hs != 0)
		shutdown(l->fds[0], SHUT_RDWR); /* the server stops waiting */
	assert_int_equal(pthread_join(t, NULL), 0);
}

static mtls_ctx *client_ctx(int ver, const char *crt, const char *key)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);

	assert_non_null(c);
	check_ok(c, mtls_load_client_pair(c, crt ? crt : pki(CLI_CERT),
	                                  key ? key : pki(CLI_KEY)));
	check_ok(c, mtls_set_trusted_ca(c, pki(CA)));
	check_ok(c, mtls_ctx_set_tls_versions(c, ver, ver));
	return c;
}

/* Server s meets a client presenting crt/key (NULL: the PKI's client). */
static void open_link(tlink *l, int ver, mtls_ctx *s, const char *crt,
                      const char *key)
{
	mtls_ctx *c = client_ctx(ver, crt, key);

	open_link_with(l, s, c);
	mtls_ctx_free(c); /* the connection holds its reference */
}

static void close_link(tlink *l)
{
	mtls_conn_free(l->cli);
	mtls_conn_free(l->srv);
	close(l->fds[0]);
	close(l->fds[1]);
}

/* A server of the default material accepting crt/key: its connection. */
static void accepted(tlink *l, int ver, mtls_ctx *s, const char *crt,
                     const char *key)
{
	open_link(l, ver, s, crt, key);
	if (l->srv_hs != 0 || l->cli_hs != 0)
		fail_msg("handshake: server %d (%s), client %d (%s)", l->srv_hs,
		         mtls_conn_error(l->srv), l->cli_hs,
		         mtls_conn_error(l->cli));
	assert_int_equal(mtls_verify_peer(l->srv, NULL), 0);
}

/* Every accessor says "nothing": NULL or 0. */
static void assert_nothing(const mtls_conn *conn)
{
	size_t len = 99;

	for (int k = MTLS_SAN_DNS; k <= MTLS_SAN_EMAIL; k++) {
		assert_int_equal(mtls_conn_peer_san_count(conn, k), 0);
		assert_null(mtls_conn_peer_san(conn, k, 0));
	}
	assert_null(mtls_conn_peer_spiffe_id(conn));
	assert_null(mtls_conn_peer_identity(conn));
	assert_null(mtls_conn_peer_subject(conn));
	assert_null(mtls_conn_peer_issuer(conn));
	assert_null(mtls_conn_peer_serial(conn));
	assert_null(mtls_conn_peer_cn(conn));
	assert_null(mtls_conn_peer_ou(conn));
	assert_int_equal(mtls_conn_peer_cert_count(conn), 0);
	assert_null(mtls_conn_peer_cert_der(conn, 0, &len));
	assert_int_equal(len, 0);
}

/* ---- tests ---------------------------------------------------------------- */

/* The PKI's client: its one SPIFFE ID, its SANs, its chain as sent. */
static void test_standard_client(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	const unsigned char *der;
	unsigned char digest[32];
	char hex[65];
	mtls_peer peer;
	size_t len;
	tlink l;

	accepted(&l, ver, s, NULL, NULL);
	assert_string_equal(mtls_conn_peer_spiffe_id(l.srv), CLIENT_URI);
	/* the very string the policy decided, not a second copy */
	assert_ptr_equal(mtls_conn_peer_spiffe_id(l.srv),
	                 mtls_conn_peer_identity(l.srv));
	assert_int_equal(mtls_conn_peer_san_count(l.srv, MTLS_SAN_URI), 1);
	assert_string_equal(mtls_conn_peer_san(l.srv, MTLS_SAN_URI, 0),
	                    CLIENT_URI);
	assert_int_equal(mtls_conn_peer_san_count(l.srv, MTLS_SAN_DNS), 1);
	assert_string_equal(mtls_conn_peer_san(l.srv, MTLS_SAN_DNS, 0),
	                    "client.test");
	assert_null(mtls_conn_peer_san(l.srv, MTLS_SAN_DNS, 1));
	assert_null(mtls_conn_peer_san(l.srv, MTLS_SAN_DNS, -1));
	assert_int_equal(mtls_conn_peer_san_count(l.srv, MTLS_SAN_IP), 0);
	assert_int_equal(mtls_conn_peer_san_count(l.srv, MTLS_SAN_EMAIL), 0);
	assert_int_equal(mtls_conn_peer_san_count(l.srv, (mtls_san_kind)0), 0);
	assert_int_equal(mtls_conn_peer_san_count(l.srv, (mtls_san_kind)5), 0);
	assert_null(mtls_conn_peer_san(l.srv, (mtls_san_kind)9, 0));
	assert_string_equal(mtls_conn_peer_cn(l.srv), "client.test");
	assert_string_equal(mtls_conn_peer_ou(l.srv), "");

	/* agrees with the fixed struct, which has room for all of it */
	assert_int_equal(mtls_verify_peer(l.srv, &peer), 0);
	assert_int_equal(peer.has_cert, 1);
	assert_string_equal(mtls_conn_peer_subject(l.srv), peer.subject);
	assert_string_equal(mtls_conn_peer_issuer(l.srv), peer.issuer);
	assert_string_equal(mtls_conn_peer_serial(l.srv), peer.serial);

	/* the chain as sent: the leaf, then the intermediate */
	assert_int_equal(mtls_conn_peer_cert_count(l.srv), 2);
	der = mtls_conn_peer_cert_der(l.srv, 0, &len);
	assert_non_null(der);
	assert_int_equal(mtls__sha256(der, len, digest), 0);
	mtls__hex(digest, 32, hex);
	assert_string_equal(hex, peer.sha256);
	der = mtls_conn_peer_cert_der(l.srv, 1, &len);
	assert_non_null(der);
	assert_true(len > 100);
	assert_null(mtls_conn_peer_cert_der(l.srv, 2, &len));
	assert_int_equal(len, 0);
	assert_null(mtls_conn_peer_cert_der(l.srv, -1, NULL));

	/* the client's view of the server: IPv4 and IPv6 SANs as text */
	assert_int_equal(mtls_conn_peer_san_count(l.cli, MTLS_SAN_IP), 2);
	assert_string_equal(mtls_conn_peer_san(l.cli, MTLS_SAN_IP, 0),
	                    "127.0.0.1");
	assert_string_equal(mtls_conn_peer_san(l.cli, MTLS_SAN_IP, 1), "::1");
	assert_int_equal(mtls_conn_peer_san_count(l.cli, MTLS_SAN_DNS), 2);
	assert_null(mtls_conn_peer_spiffe_id(l.cli)); /* it has no URI */
	close_link(&l);
	mtls_ctx_free(s);
}

/* A 2,048-byte SPIFFE ID, a DN and a serial longer than mtls_peer holds:
 * whole through the accessors and the identity; "" and flagged in the
 * struct, never a prefix. */
static void test_long_values(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	const char *subject;
	mtls_peer peer;
	tlink l;

	assert_int_equal(strlen(X.long_uri), 2048);
	accepted(&l, ver, s, X.long_crt, X.long_key);
	assert_string_equal(mtls_conn_peer_identity(l.srv), X.long_uri);
	assert_string_equal(mtls_conn_peer_spiffe_id(l.srv), X.long_uri);
	assert_string_equal(mtls_conn_peer_san(l.srv, MTLS_SAN_URI, 0),
	                    X.long_uri);
	assert_string_equal(mtls_conn_peer_serial(l.srv), X.long_serial);
	subject = mtls_conn_peer_subject(l.srv);
	assert_non_null(subject);
	assert_true(strlen(subject) > 300);
	assert_non_null(strstr(subject, "CN=long-client"));
	assert_non_null(strstr(subject, "OU=z"));
	assert_string_equal(mtls_conn_peer_cn(l.srv), "long-client");

	assert_int_equal(mtls_verify_peer(l.srv, &peer), 0);
	assert_true(peer.has_cert);
	assert_int_equal(peer.has_cert, 1 | MTLS_PEER_TRUNCATED);
	assert_int_equal(peer.n_uri, 1);
	assert_string_equal(peer.uri[0], "");
	assert_string_equal(peer.subject, "");
	assert_string_equal(peer.serial, "");
	assert_string_equal(peer.cn, "long-client"); /* what fits is there */
	assert_int_equal(strlen(peer.ou), 60);
	close_link(&l);
	mtls_ctx_free(s);

	/* under a URI rule too: the identity is the whole matched value */
	s = default_server(ver);
	check_ok(s, mtls_ctx_allow_peer(s, MTLS_ALLOW_URI_PREFIX,
	                                "spiffe://example.org/ns/long/"));
	accepted(&l, ver, s, X.long_crt, X.long_key);
	assert_string_equal(mtls_conn_peer_identity(l.srv), X.long_uri);
	assert_string_equal(mtls_conn_peer_spiffe_id(l.srv), X.long_uri);
	close_link(&l);
	mtls_ctx_free(s);
	s = default_server(ver);
	check_ok(s, mtls_ctx_allow_peer(s, MTLS_ALLOW_URI, X.long_uri));
	accepted(&l, ver, s, X.long_crt, X.long_key);
	assert_string_equal(mtls_conn_peer_identity(l.srv), X.long_uri);
	close_link(&l);
	mtls_ctx_free(s);
}

/* 20 SANs of each kind: all counted and listed in order; the struct keeps
 * MTLS_PEER_MAX_SANS and says it left some out. */
static void test_many_sans(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	char want[128];
	mtls_peer peer;
	tlink l;

	accepted(&l, ver, s, X.many_crt, X.many_key);
	for (int k = MTLS_SAN_DNS; k <= MTLS_SAN_EMAIL; k++)
		assert_int_equal(mtls_conn_peer_san_count(l.srv, k), 20);
	for (int i = 0; i < 20; i++) {
		snprintf(want, sizeof(want), "n%d.many.test", i);
		assert_string_equal(mtls_conn_peer_san(l.srv, MTLS_SAN_DNS, i),
		                    want);
		snprintf(want, sizeof(want), "spiffe://example.org/many/%d", i);
		assert_string_equal(mtls_conn_peer_san(l.srv, MTLS_SAN_URI, i),
		                    want);
		snprintf(want, sizeof(want), "u%d@many.test", i);
		assert_string_equal(
		    mtls_conn_peer_san(l.srv, MTLS_SAN_EMAIL, i), want);
		if (i % 2)
			snprintf(want, sizeof(want), "2001:db8::%d", i + 1);
		else
			snprintf(want, sizeof(want), "192.0.2.%d", i + 1);
		assert_string_equal(mtls_conn_peer_san(l.srv, MTLS_SAN_IP, i),
		                    want);
	}
	assert_null(mtls_conn_peer_san(l.srv, MTLS_SAN_URI, 20));
	/* twenty URIs: no single identity, so no SPIFFE ID either */
	assert_null(mtls_conn_peer_identity(l.srv));
	assert_null(mtls_conn_peer_spiffe_id(l.srv));

	assert_int_equal(mtls_verify_peer(l.srv, &peer), 0);
	assert_int_equal(peer.has_cert, 1 | MTLS_PEER_TRUNCATED);
	assert_int_equal(peer.n_dns, MTLS_PEER_MAX_SANS);
	assert_int_equal(peer.n_uri, MTLS_PEER_MAX_SANS);
	assert_int_equal(peer.n_ip, MTLS_PEER_MAX_SANS);
	assert_string_equal(peer.dns[7], "n7.many.test");
	assert_string_equal(peer.ip[7], "2001:db8::8");
	close_link(&l);
	mtls_ctx_free(s);
}

/* Values C cannot carry whole read as "", in their place; the rest of
 * the certificate is reported as usual. */
static void test_hostile_sans(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	mtls_peer peer;
	tlink l;

	accepted(&l, ver, s, X.nul_crt, X.nul_key);
	assert_int_equal(mtls_conn_peer_san_count(l.srv, MTLS_SAN_DNS), 2);
	assert_string_equal(mtls_conn_peer_san(l.srv, MTLS_SAN_DNS, 0), "");
	assert_string_equal(mtls_conn_peer_san(l.srv, MTLS_SAN_DNS, 1),
	                    "ok.test");
	assert_int_equal(mtls_conn_peer_san_count(l.srv, MTLS_SAN_EMAIL), 1);
	assert_string_equal(mtls_conn_peer_san(l.srv, MTLS_SAN_EMAIL, 0), "");
	assert_int_equal(mtls_conn_peer_san_count(l.srv, MTLS_SAN_IP), 1);
	assert_string_equal(mtls_conn_peer_san(l.srv, MTLS_SAN_IP, 0),
	                    "2001:db8::1");
	assert_string_equal(mtls_conn_peer_spiffe_id(l.srv),
	                    "spiffe://example.org/ns/nul");
	assert_int_equal(mtls_verify_peer(l.srv, &peer), 0);
	assert_int_equal(peer.has_cert, 1); /* nothing cut: refused values */
	assert_string_equal(peer.dns[0], "");
	assert_string_equal(peer.dns[1], "ok.test");
	close_link(&l);
	mtls_ctx_free(s);

	/* an IP SAN neither 4 nor 16 bytes long: mbedTLS 3.6 refuses the
	 * certificate, 2.28 parses it and the library reports "" */
	{
		mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
		int rc;
		assert_non_null(c);
		rc = mtls_load_client_pair(c, X.ip5_crt, X.ip5_key);
		mtls_ctx_free(c);
		if (rc != 0) {
			assert_int_equal(rc, MTLS_ERR_CERT_PARSE);
			print_message("  (mbedTLS %s refuses a 5-byte IP SAN)\n",
			              mtls_mbedtls_version());
		} else {
			s = default_server(ver);
			accepted(&l, ver, s, X.ip5_crt, X.ip5_key);
			assert_int_equal(
			    mtls_conn_peer_san_count(l.srv, MTLS_SAN_IP), 2);
			assert_string_equal(
			    mtls_conn_peer_san(l.srv, MTLS_SAN_IP, 0), "");
			assert_string_equal(
			    mtls_conn_peer_san(l.srv, MTLS_SAN_IP, 1),
			    "127.0.0.1");
			assert_int_equal(mtls_verify_peer(l.srv, &peer), 0);
			assert_string_equal(peer.ip[0], "");
			close_link(&l);
			mtls_ctx_free(s);
		}
	}

	/* the NUL name matches no rule, not even its prefix */
	s = default_server(ver);
	check_ok(s, mtls_ctx_allow_peer(s, MTLS_ALLOW_DNS, "good"));
	open_link(&l, ver, s, X.nul_crt, X.nul_key);
	assert_int_equal(l.srv_hs, MTLS_ERR_PEER_POLICY);
	assert_nothing(l.srv);
	close_link(&l);
	mtls_ctx_free(s);
}

/* No SAN: counts 0, the identity is the CN, no SPIFFE ID. */
static void test_no_san(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	tlink l;

	accepted(&l, ver, s, X.nosan_crt, X.nosan_key);
	for (int k = MTLS_SAN_DNS; k <= MTLS_SAN_EMAIL; k++) {
		assert_int_equal(mtls_conn_peer_san_count(l.srv, k), 0);
		assert_null(mtls_conn_peer_san(l.srv, k, 0));
	}
	assert_string_equal(mtls_conn_peer_identity(l.srv), "nosan-client");
	assert_null(mtls_conn_peer_spiffe_id(l.srv));
	assert_string_equal(mtls_conn_peer_cn(l.srv), "nosan-client");
	assert_string_equal(mtls_conn_peer_ou(l.srv), "ops");
	assert_string_equal(mtls_conn_peer_serial(l.srv), "5A:13");
	close_link(&l);
	mtls_ctx_free(s);
}

/* The SPIFFE ID is the decided identity when it is one, nothing else: not
 * a URI next to a DNS identity, not a URI that breaks the SPIFFE rules. */
static void test_spiffe_id_is_the_identity(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	tlink l;

	check_ok(s, mtls_ctx_allow_peer(s, MTLS_ALLOW_DNS, "client.test"));
	accepted(&l, ver, s, NULL, NULL);
	assert_string_equal(mtls_conn_peer_identity(l.srv), "client.test");
	assert_null(mtls_conn_peer_spiffe_id(l.srv));
	/* the certificate's URI is still there to read */
	assert_string_equal(mtls_conn_peer_san(l.srv, MTLS_SAN_URI, 0),
	                    CLIENT_URI);
	close_link(&l);
	mtls_ctx_free(s);

	s = default_server(ver);
	accepted(&l, ver, s, X.upper_crt, X.upper_key);
	assert_string_equal(mtls_conn_peer_identity(l.srv),
	                    "spiffe://Example.org/ns/up");
	assert_null(mtls_conn_peer_spiffe_id(l.srv));
	close_link(&l);
	mtls_ctx_free(s);
}

/* A resumed session reports the same peer as the full handshake did:
 * from the TLS 1.2 session, or from the identity a TLS 1.3 ticket
 * sealed. */
static void test_resumed(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	mtls_ctx *c = client_ctx(ver, X.long_crt, X.long_key);
	unsigned char digest[32];
	char sha_full[65], sha_resumed[65], buf[4];
	const unsigned char *der;
	size_t len;
	tlink l;

	for (int round = 0; round < 2; round++) {
		open_link_with(&l, s, c);
		assert_int_equal(l.srv_hs, 0);
		assert_int_equal(l.cli_hs, 0);
		/* data after the handshake: a TLS 1.3 ticket comes first */
		assert_int_equal(mtls_write(l.srv, "x", 1), 1);
		assert_int_equal(mtls_read(l.cli, buf, 1), 1);
		assert_int_equal(mtls_conn_resumed(l.srv), round);
		assert_int_equal(mtls_verify_peer(l.srv, NULL), 0);
		assert_string_equal(mtls_conn_peer_identity(l.srv), X.long_uri);
		assert_string_equal(mtls_conn_peer_spiffe_id(l.srv),
		                    X.long_uri);
		assert_int_equal(mtls_conn_peer_san_count(l.srv, MTLS_SAN_URI),
		                 1);
		assert_string_equal(mtls_conn_peer_serial(l.srv),
		                    X.long_serial);
		assert_true(mtls_conn_peer_cert_count(l.srv) >= 1);
		der = mtls_conn_peer_cert_der(l.srv, 0, &len);
		assert_non_null(der);
		assert_int_equal(mtls__sha256(der, len, digest), 0);
		mtls__hex(digest, 32, round ? sha_resumed : sha_full);
		close_link(&l);
	}
	assert_string_equal(sha_resumed, sha_full);
	mtls_ctx_free(c);
	mtls_ctx_free(s);
}

/* Before a handshake, after a failed one: nothing; an unverified peer
 * (MTLS_VERIFY_OPTIONAL): its certificate, but no identity. */
static void test_state(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *other;
	mtls_conn *fresh;
	tlink l;

	assert_nothing(NULL);
	fresh = mtls_conn_new(s, -1, NULL);
	assert_non_null(fresh);
	assert_nothing(fresh);
	mtls_conn_free(fresh);

	check_ok(s, mtls_ctx_allow_peer(s, MTLS_ALLOW_URI,
	                                "spiffe://example.org/nobody"));
	open_link(&l, ver, s, NULL, NULL);
	assert_int_equal(l.srv_hs, MTLS_ERR_PEER_POLICY);
	assert_nothing(l.srv);
	assert_int_equal(mtls_verify_peer(l.srv, NULL), MTLS_ERR_STATE);
	close_link(&l);
	mtls_ctx_free(s);

	/* a client certificate from an unrelated root, let in unverified */
	other = mk_server(ver, SRV_CERT, SRV_KEY, CA);
	check_ok(other, mtls_ctx_set_verify(other, MTLS_VERIFY_OPTIONAL));
	open_link(&l, ver, other, pki("other-client.crt"),
	          pki("other-client.key"));
	assert_int_equal(l.srv_hs, 0);
	assert_int_equal(mtls_verify_peer(l.srv, NULL),
	                 MTLS_ERR_PEER_UNTRUSTED);
	assert_null(mtls_conn_peer_identity(l.srv));
	assert_null(mtls_conn_peer_spiffe_id(l.srv));
	assert_string_equal(mtls_conn_peer_cn(l.srv), "client.test");
	assert_int_equal(mtls_conn_peer_san_count(l.srv, MTLS_SAN_URI), 1);
	assert_true(mtls_conn_peer_cert_count(l.srv) >= 1);
	close_link(&l);
	mtls_ctx_free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    VTEST(test_standard_client),
	    VTEST(test_long_values),
	    VTEST(test_many_sans),
	    VTEST(test_hostile_sans),
	    VTEST(test_no_san),
	    VTEST(test_spiffe_id_is_the_identity),
	    VTEST(test_state),
	    VTEST(test_resumed),
	};

	pki_dir();
	return cmocka_run_group_tests_name("peer_sans", tests, setup_extra,
	                                   teardown_extra);
}
