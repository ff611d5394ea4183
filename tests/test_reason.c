/*
 * test_reason.c - why a handshake failed: mtls_conn_reason() and its
 * token, the alerts received and sent (mtls_conn_alert_received/_sent)
 * and the messages that name them, each provoked by a real handshake:
 * our client and server against each other (socket pairs), and against
 * openssl s_server / s_client as the peer that refuses or is refused.
 *
 * openssl peers listen or connect on 127.0.0.1 only; every process is
 * ours, started here and killed by its PID; every wait is bounded.
 */
#include "conn_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/wait.h>

/* ---- tokens ------------------------------------------------------------ */

static void test_reason_names(void **state)
{
	(void)state;
	for (int r = 0; r < MTLS_REASON_COUNT; r++) {
		const char *n = mtls_reason_name((mtls_reason)r);
		assert_non_null(n);
		assert_string_not_equal(n, "unknown");
		for (const char *p = n; *p; p++)
			assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
		for (int q = 0; q < r; q++)
			assert_string_not_equal(n,
			                        mtls_reason_name((mtls_reason)q));
	}
	/* ABI: the values documented never move */
	assert_string_equal(mtls_reason_name(MTLS_REASON_NONE), "none");
	assert_string_equal(mtls_reason_name((mtls_reason)2), "unknown_ca");
	assert_string_equal(mtls_reason_name((mtls_reason)3),
	                    "missing_intermediate");
	assert_string_equal(mtls_reason_name((mtls_reason)22), "abandoned");
	assert_string_equal(mtls_reason_name((mtls_reason)MTLS_REASON_COUNT),
	                    "unknown");
	assert_string_equal(mtls_reason_name((mtls_reason)-1), "unknown");
	assert_string_equal(mtls_alert_name(48), "unknown_ca");
	assert_string_equal(mtls_alert_name(116), "certificate_required");
	assert_string_equal(mtls_alert_name(112), "unrecognized_name");
	assert_string_equal(mtls_alert_name(40), "handshake_failure");
	assert_string_equal(mtls_alert_name(-1), "unknown");
	assert_string_equal(mtls_alert_name(255), "unknown");
	assert_int_equal(mtls_conn_reason(NULL), MTLS_REASON_NONE);
	assert_int_equal(mtls_conn_alert_received(NULL), -1);
	assert_int_equal(mtls_conn_alert_sent(NULL), -1);
}

/* ---- our client and our server ---------------------------------------- */

/* mbedTLS 3.6 (3.6.6) sends and expects the alerts of a TLS 1.3 handshake's
 * end under keys the peer no longer (or not yet) uses: either side's
 * refusal reaches the other as a record it cannot decrypt, and a
 * verification failure's alert goes out encrypted without mbedTLS keeping
 * its description (mtls_conn_alert_sent() is then -1). */
static int unreadable13(int v)
{
	return v == MTLS_TLS1_3 && MBEDTLS_VERSION_NUMBER >= 0x03000000;
}

/* make MBEDTLS=tuned carries a fix for the server's side of that
 * (tuned/patches/0003): a server's refusal reaches the client readable.
 * A client's refusal is still sent under keys the server has left. */
static int server_refusal_unreadable13(int v)
{
	return unreadable13(v) &&
	       strstr(mtls_mbedtls_version(), "(tuned)") == NULL;
}

/* The alert a side that refused us sent, as we received it. */
static void expect_alert_from(const end *refuser, const end *refused, int v)
{
	if (unreadable13(v)) {
		assert_int_equal(refused->reason,
		                 MTLS_REASON_PEER_ALERT_UNREADABLE);
		assert_int_equal(refused->alert_in, -1);
		return;
	}
	assert_int_equal(refused->reason, MTLS_REASON_PEER_ALERT);
	assert_true(refused->alert_in >= 0);
	if (refuser->alert_out >= 0)
		assert_int_equal(refused->alert_in, refuser->alert_out);
}

#define assert_has(hay, needle)                                              \
	do {                                                                 \
		if (strstr((hay), (needle)) == NULL)                         \
			fail_msg("\"%s\" lacks \"%s\"", (hay), (needle));    \
	} while (0)

static void show(const pair *p)
{
	print_message("  server: reason=%s in=%d out=%d\n  client: reason=%s "
	              "in=%d out=%d\n",
	              mtls_reason_name(p->srv.reason), p->srv.alert_in,
	              p->srv.alert_out, mtls_reason_name(p->cli.reason),
	              p->cli.alert_in, p->cli.alert_out);
	dump_pair(p);
}

/* The server refused the client for `why`; what the client learned. */
static void expect_server_refusal(const pair *p, int ver, mtls_reason why)
{
	if (p->srv.reason != why)
		show(p);
	assert_int_equal(p->srv.reason, why);
	assert_true(p->srv.hs < 0);
	if (server_refusal_unreadable13(ver)) {
		/* mbedTLS 3.6 sends it under keys the client has left */
		if (p->cli.reason != MTLS_REASON_PEER_ALERT_UNREADABLE)
			show(p);
		assert_int_equal(p->cli.reason,
		                 MTLS_REASON_PEER_ALERT_UNREADABLE);
		assert_int_equal(p->cli.alert_in, -1);
		return;
	}
	if (p->cli.reason != MTLS_REASON_PEER_ALERT || p->cli.alert_in < 0 ||
	    (p->srv.alert_out >= 0 && p->cli.alert_in != p->srv.alert_out))
		show(p);
	assert_int_equal(p->cli.reason, MTLS_REASON_PEER_ALERT);
	assert_true(p->cli.alert_in >= 0);
	/* An alert sent encrypted (TLS 1.3) is not seen leaving: -1. */
	if (p->srv.alert_out >= 0 || ver != MTLS_TLS1_3)
		assert_int_equal(p->cli.alert_in, p->srv.alert_out);
}

static void test_no_client_cert(void **state)
{
	int v = test_version(state);
	mtls_ctx *s, *c;
	pair p;

	if (v < 0)
		return;
	s = default_server(v);
	c = mk_client(v, NULL, NULL, CA);
	run_pair(&p, s, c, "localhost");
	expect_server_refusal(&p, v, MTLS_REASON_PEER_NO_CERT);
	assert_has(p.srv.error, "client certificate required");
	/* TLS 1.2: our own handshake_failure.  TLS 1.3: mbedTLS 3.6.6
	 * queues SSL 3.0's no_certificate (41) where RFC 8446 says
	 * certificate_required (116); either is a refusal. */
	if (v == MTLS_TLS1_3)
		assert_true(p.srv.alert_out == 41 || p.srv.alert_out == 116);
	else
		assert_int_equal(p.srv.alert_out, 40);
	if (v == MTLS_TLS1_2)
		assert_has(p.cli.error, "upstream sent a fatal alert (alert "
		                        "handshake_failure): it may require a "
		                        "client certificate");
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* A client of another PKI: a chain that ends at a root we do not trust
 * (unknown_ca), or a lone leaf whose issuer nobody sent (which names
 * alone cannot tell from a missing intermediate). */
static void test_other_ca(void **state)
{
	int v = test_version(state);
	char *dir, *chain;
	mtls_ctx *s, *c;
	pair p;
	size_t a, b;
	unsigned char *leaf, *root;

	if (v < 0)
		return;
	dir = make_tmpdir();
	chain = path_in(dir, "other-chain.pem");
	leaf = slurp_pki("other-client.crt", &a);
	root = slurp_pki("other-ca.crt", &b);
	leaf = realloc(leaf, a + b);
	assert_non_null(leaf);
	memcpy(leaf + a, root, b);
	write_file(chain, leaf, a + b);
	free(leaf);
	free(root);

	s = default_server(v);
	c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	assert_non_null(c);
	check_ok(c, mtls_load_client_pair(c, chain, pki("other-client.key")));
	check_ok(c, mtls_set_trusted_ca(c, pki(CA)));
	check_ok(c, mtls_ctx_set_tls_versions(c, v, v));
	run_pair(&p, s, c, "localhost");
	expect_server_refusal(&p, v, MTLS_REASON_UNKNOWN_CA);
	assert_has(p.srv.error, "its chain ends at CN=Other Root CA, which is "
	                        "not a trusted CA");
	if (!unreadable13(v))
		assert_int_equal(p.srv.alert_out, 48); /* unknown_ca */
	if (v == MTLS_TLS1_2)
		assert_has(p.cli.error, "upstream refused our client "
		                        "certificate (alert unknown_ca)");
	mtls_ctx_free(c);

	c = mk_client(v, "other-client.crt", "other-client.key", CA);
	run_pair(&p, s, c, "localhost");
	expect_server_refusal(&p, v, MTLS_REASON_MISSING_INTERMEDIATE);
	assert_has(p.srv.error, "the client sent CN=client.test issued by "
	                        "CN=Other Root CA without CN=Other Root CA "
	                        "itself");
	mtls_ctx_free(c);
	mtls_ctx_free(s);
	free(chain);
	rm_tree(dir);
}

/* A client whose CA has the name of ours but another key (a CA made
 * again under the same name): unknown_ca, said so. */
static void test_same_name_other_key(void **state)
{
	int v = test_version(state);
	char *dir, cmd[4096];
	mtls_ctx *s, *c;
	pair p;
	int st;

	if (v < 0)
		return;
	dir = make_tmpdir();
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && "
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	         "-nodes -subj '/O=mtls tests/CN=mtls Test Root CA' -days 30 "
	         "-keyout twin.key -out twin.crt -addext "
	         "basicConstraints=critical,CA:TRUE && "
	         "openssl req -new -newkey ec -pkeyopt "
	         "ec_paramgen_curve:P-256 -nodes -subj '/CN=twin-client' "
	         "-keyout leaf.key -out leaf.csr && "
	         "printf 'basicConstraints=critical,CA:FALSE\n"
	         "keyUsage=critical,digitalSignature\n"
	         "extendedKeyUsage=clientAuth\n' > leaf.ext && "
	         "openssl x509 -req -in leaf.csr -CA twin.crt -CAkey twin.key "
	         "-CAcreateserial -days 30 -extfile leaf.ext -out leaf.crt"
	         " >/dev/null 2>&1",
	         dir);
	st = system(cmd);
	assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	s = default_server(v);
	c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	assert_non_null(c);
	{
		char *crt = path_in(dir, "leaf.crt"), *key = path_in(dir, "leaf.key");
		check_ok(c, mtls_load_client_pair(c, crt, key));
		free(crt);
		free(key);
	}
	check_ok(c, mtls_set_trusted_ca(c, pki(CA)));
	check_ok(c, mtls_ctx_set_tls_versions(c, v, v));
	run_pair(&p, s, c, "localhost");
	expect_server_refusal(&p, v, MTLS_REASON_UNKNOWN_CA);
	assert_has(p.srv.error, "CN=twin-client names O=mtls tests, CN=mtls "
	                        "Test Root CA as its issuer, but the trusted "
	                        "CA of that name did not sign it");
	mtls_ctx_free(s);
	mtls_ctx_free(c);
	rm_tree(dir);
}

/* An upstream that sends its leaf without the intermediate. */
static void test_missing_intermediate(void **state)
{
	int v = test_version(state);
	mtls_ctx *s, *c;
	pair p;

	if (v < 0)
		return;
	s = mk_server(v, "server-ec.crt", SRV_KEY, CA);
	c = default_client(v);
	run_pair(&p, s, c, "localhost");
	if (p.cli.reason != MTLS_REASON_MISSING_INTERMEDIATE)
		show(&p);
	assert_int_equal(p.cli.hs, MTLS_ERR_PEER_UNTRUSTED);
	assert_int_equal(p.cli.reason, MTLS_REASON_MISSING_INTERMEDIATE);
	assert_has(p.cli.error, "the upstream sent CN=");
	assert_has(p.cli.error, "issued by CN=mtls Test Intermediate CA "
	                        "without CN=mtls Test Intermediate CA "
	                        "itself");
	/* the client's alert reaches the server in its handshake */
	expect_alert_from(&p.cli, &p.srv, v);
	if (!unreadable13(v)) {
		assert_int_equal(p.cli.alert_out, 48); /* unknown_ca */
		assert_has(p.srv.error, "client refused our server "
		                        "certificate (alert unknown_ca)");
	}
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* Verification reasons, each from a real refusal by our server; the
 * certificates our client will not load come from a raw mbedTLS client
 * (conn_util.h), which adds int.crt to them. */
static void test_verify_reasons(void **state)
{
	static const struct {
		const char *cert, *key;
		mtls_reason why;
		int alert; /* what our server sends (mbedTLS's choice) */
	} cases[] = {
	    {"client-expired.crt", "client-expired.key", MTLS_REASON_EXPIRED,
	     45},
	    {"client-future.crt", "client-future.key",
	     MTLS_REASON_NOT_YET_VALID, 46},
	    {"client-wrongeku.crt", "client-wrongeku.key", MTLS_REASON_EKU,
	     -2},
	    {"client-revoked.crt", "client-revoked.key", MTLS_REASON_REVOKED,
	     44},
	};
	int v = test_version(state);

	if (v < 0)
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mtls_ctx *s = default_server(v);
		raw_opts o = {.ver = v, .cert = cases[i].cert,
		              .key = cases[i].key, .hostname = "localhost"};
		pair p;

		check_ok(s, mtls_set_crl(s, pki("int.crl")));
		pair_open(&p, s);
		(void)raw_client(p.fds[0], &o);
		pair_close(&p);
		if (p.srv.reason != cases[i].why)
			show(&p);
		assert_int_equal(p.srv.reason, cases[i].why);
		/* an alert went out, in the clear on TLS 1.2 */
		if (v == MTLS_TLS1_2)
			assert_true(p.srv.alert_out >= 0);
		if (cases[i].alert >= 0 && v == MTLS_TLS1_2 &&
		    p.srv.alert_out != cases[i].alert)
			fail_msg("%s: alert %s sent, wanted %s", cases[i].cert,
			         mtls_alert_name(p.srv.alert_out),
			         mtls_alert_name(cases[i].alert));
		mtls_ctx_free(s);
	}
}

static void test_name_and_policy(void **state)
{
	int v = test_version(state);
	mtls_ctx *s, *c;
	pair p;

	if (v < 0)
		return;
	s = default_server(v);
	c = default_client(v);
	run_pair(&p, s, c, "wrong.example");
	assert_int_equal(p.cli.reason, MTLS_REASON_NAME_MISMATCH);
	expect_alert_from(&p.cli, &p.srv, v);

	check_ok(s, mtls_ctx_allow_peer(s, MTLS_ALLOW_URI,
	                                "spiffe://example.org/nobody"));
	run_pair(&p, s, c, "localhost");
	expect_server_refusal(&p, v, MTLS_REASON_POLICY);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static void test_unknown_host(void **state)
{
	int v = test_version(state);
	mtls_ctx *s, *h, *c;
	pair p;

	if (v < 0)
		return;
	s = default_server(v);
	h = mk_server(v, "admin-server.crt", "admin-server.key", CA);
	check_ok(s, mtls_ctx_add_host(s, "admin.example.com", h));
	check_ok(s, mtls_ctx_set_unknown_host(s, MTLS_SNI_REFUSE));
	c = default_client(v);
	run_pair(&p, s, c, "nobody.example.com");
	assert_int_equal(p.srv.reason, MTLS_REASON_UNKNOWN_HOST);
	assert_int_equal(p.srv.alert_out, 112); /* unrecognized_name */
	assert_int_equal(p.cli.reason, MTLS_REASON_PEER_ALERT);
	assert_int_equal(p.cli.alert_in, 112);
	assert_has(p.cli.error, "upstream rejected our server name (alert "
	                        "unrecognized_name)");
	mtls_ctx_free(s);
	mtls_ctx_free(h);
	mtls_ctx_free(c);
}

static void test_protocol_version(void **state)
{
	mtls_ctx *s, *c;
	pair p;

	(void)state;
	if (!have_tls13()) {
		skip();
		return;
	}
	s = default_server(MTLS_TLS1_3);
	c = default_client(MTLS_TLS1_2);
	run_pair(&p, s, c, "localhost");
	if (p.srv.reason != MTLS_REASON_PROTOCOL_VERSION)
		show(&p);
	assert_int_equal(p.srv.reason, MTLS_REASON_PROTOCOL_VERSION);
	assert_int_equal(p.cli.reason, MTLS_REASON_PEER_ALERT);
	assert_int_equal(p.cli.alert_in, 70); /* protocol_version */
	assert_has(p.cli.error, "upstream accepts none of our TLS versions");
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static void test_no_shared_cipher(void **state)
{
	int v = test_version(state);
	mtls_ctx *s, *c;
	pair p;

	if (v < 0)
		return;
	s = default_server(v);
	c = default_client(v);
	check_ok(s, mtls_ctx_set_ciphersuites(
	                s, v == MTLS_TLS1_3
	                       ? "TLS1-3-AES-128-GCM-SHA256"
	                       : "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256"));
	check_ok(c, mtls_ctx_set_ciphersuites(
	                c, v == MTLS_TLS1_3
	                       ? "TLS1-3-AES-256-GCM-SHA384"
	                       : "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384"));
	run_pair(&p, s, c, "localhost");
	if (p.srv.reason != MTLS_REASON_NO_SHARED_CIPHER)
		show(&p);
	assert_int_equal(p.srv.reason, MTLS_REASON_NO_SHARED_CIPHER);
	assert_int_equal(p.srv.alert_out, 40); /* handshake_failure */
	assert_int_equal(p.cli.reason, MTLS_REASON_PEER_ALERT);
	assert_int_equal(p.cli.alert_in, 40);
	assert_has(p.cli.error, "upstream refused the handshake before its "
	                        "certificate (alert handshake_failure)");
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* A success has no reason and no alert. */
static void test_success_has_none(void **state)
{
	int v = test_version(state);
	mtls_ctx *s, *c;
	pair p;

	if (v < 0)
		return;
	s = default_server(v);
	c = default_client(v);
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.reason, MTLS_REASON_NONE);
	assert_int_equal(p.cli.reason, MTLS_REASON_NONE);
	assert_int_equal(p.srv.alert_in, -1);
	assert_int_equal(p.srv.alert_out, -1);
	assert_int_equal(p.cli.alert_in, -1);
	assert_int_equal(p.cli.alert_out, -1);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* ---- openssl as the peer ------------------------------------------------ */

/* A port nothing listens on now (the kernel's choice). */
static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static pid_t spawn(char *const argv[])
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	(void)waitpid(pid, NULL, 0);
}

/* Connects to 127.0.0.1:port, retrying while the peer starts (at most
 * 20 s); -1 if it never listens. */
static int connect_to(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};

	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < 200; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(fd >= 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			set_timeouts(fd);
			return fd;
		}
		close(fd);
		usleep(100000);
	}
	return -1;
}

static const char *vflag(int v)
{
	return v == MTLS_TLS1_3 ? "-tls1_3" : "-tls1_2";
}

/* Our client against s_server with extra arguments: its handshake, then a
 * request and a read (a TLS 1.3 refusal arrives there). */
static void client_vs_s_server(int v, char **extra, end *e, mtls_ctx *c)
{
	char port_arg[32];
	char *argv[40];
	int n = 0, port = free_port();
	pid_t pid;

	snprintf(port_arg, sizeof(port_arg), "127.0.0.1:%d", port);
	argv[n++] = "openssl";
	argv[n++] = "s_server";
	argv[n++] = "-accept";
	argv[n++] = port_arg;
	argv[n++] = (char *)vflag(v);
	argv[n++] = "-cert";
	argv[n++] = (char *)pki("server-ec.crt");
	argv[n++] = "-key";
	argv[n++] = (char *)pki("server-ec.key");
	argv[n++] = "-cert_chain";
	argv[n++] = (char *)pki("int.crt");
	argv[n++] = "-www";
	argv[n++] = "-quiet";
	while (*extra != NULL)
		argv[n++] = *extra++;
	argv[n] = NULL;
	pid = spawn(argv);
	memset(e, 0, sizeof(*e));
	e->fd = connect_to(port);
	if (e->fd < 0) {
		stop(pid);
		fail_msg("openssl s_server did not listen");
	}
	e->ctx = c;
	e->name = "localhost";
	end_handshake(e);
	if (e->hs == 0 &&
	    end_write_all(e, "GET / HTTP/1.0\r\n\r\n", 18) == 0)
		(void)end_read(e, 0);
	end_facts(e);
	mtls_conn_free(e->conn);
	e->conn = NULL;
	close(e->fd);
	stop(pid);
}

static void test_s_server_refuses_us(void **state)
{
	int v = test_version(state);
	char *extra[] = {"-Verify", "1", "-verify_return_error", "-CAfile",
	                 NULL, NULL};
	mtls_ctx *c;
	end e;

	if (v < 0)
		return;
	extra[4] = (char *)pki("other-ca.crt"); /* does not know our CA */
	c = default_client(v);
	client_vs_s_server(v, extra, &e, c);
	if (e.reason != MTLS_REASON_PEER_ALERT || e.alert_in != 48)
		print_message("  hs=%d io=%d reason=%s in=%d err=%s\n", e.hs,
		              e.io_err, mtls_reason_name(e.reason), e.alert_in,
		              e.error);
	assert_int_equal(e.reason, MTLS_REASON_PEER_ALERT);
	assert_int_equal(e.alert_in, 48);
	assert_has(e.error, "upstream refused our client certificate (alert "
	                    "unknown_ca)");
	mtls_ctx_free(c);
}

static void test_s_server_rejects_name(void **state)
{
	int v = test_version(state);
	char *extra[] = {"-servername", "other.example", "-servername_fatal",
	                 "-cert2", NULL, "-key2", NULL, NULL};
	mtls_ctx *c;
	end e;

	if (v < 0)
		return;
	extra[4] = (char *)pki("admin-server.crt");
	extra[6] = (char *)pki("admin-server.key");
	c = default_client(v);
	client_vs_s_server(v, extra, &e, c);
	assert_int_equal(e.reason, MTLS_REASON_PEER_ALERT);
	assert_int_equal(e.alert_in, 112);
	assert_has(e.error, "upstream rejected our server name (alert "
	                    "unrecognized_name)");
	mtls_ctx_free(c);
}

/* Our server, one connection from s_client with extra arguments. */
static void server_vs_s_client(int v, char **extra, end *e, mtls_ctx *s)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	char conn_arg[32];
	char *argv[40];
	struct pollfd pfd;
	int n = 0, lfd = socket(AF_INET, SOCK_STREAM, 0);
	pid_t pid;

	assert_true(lfd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	snprintf(conn_arg, sizeof(conn_arg), "127.0.0.1:%d",
	         ntohs(a.sin_port));
	argv[n++] = "openssl";
	argv[n++] = "s_client";
	argv[n++] = "-connect";
	argv[n++] = conn_arg;
	argv[n++] = (char *)vflag(v);
	argv[n++] = "-servername";
	argv[n++] = "localhost";
	while (*extra != NULL)
		argv[n++] = *extra++;
	argv[n] = NULL;
	pid = spawn(argv);
	pfd.fd = lfd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, IO_TIMEOUT_S * 1000) != 1) {
		stop(pid);
		close(lfd);
		fail_msg("openssl s_client did not connect");
	}
	memset(e, 0, sizeof(*e));
	e->fd = accept(lfd, NULL, NULL);
	close(lfd);
	assert_true(e->fd >= 0);
	set_timeouts(e->fd);
	e->ctx = s;
	end_handshake(e);
	end_facts(e);
	mtls_conn_free(e->conn);
	e->conn = NULL;
	close(e->fd);
	stop(pid);
}

static void test_s_client_without_cert(void **state)
{
	int v = test_version(state);
	char *extra[] = {"-CAfile", NULL, NULL};
	mtls_ctx *s;
	end e;

	if (v < 0)
		return;
	extra[1] = (char *)pki(CA);
	s = default_server(v);
	server_vs_s_client(v, extra, &e, s);
	assert_int_equal(e.hs, MTLS_ERR_PEER_NO_CERT);
	assert_int_equal(e.reason, MTLS_REASON_PEER_NO_CERT);
	if (v == MTLS_TLS1_3)
		assert_true(e.alert_out == 41 || e.alert_out == 116);
	else
		assert_int_equal(e.alert_out, 40);
	mtls_ctx_free(s);
}

static void test_s_client_refuses_us(void **state)
{
	int v = test_version(state);
	char *extra[] = {"-verify_return_error", "-CAfile", NULL, "-cert",
	                 NULL, "-key", NULL, NULL};
	mtls_ctx *s;
	end e;

	if (v < 0)
		return;
	extra[2] = (char *)pki("other-ca.crt");
	extra[4] = (char *)pki("client-ec.crt");
	extra[6] = (char *)pki("client-ec.key");
	s = default_server(v);
	server_vs_s_client(v, extra, &e, s);
	if (e.reason != (unreadable13(v) ? MTLS_REASON_PEER_ALERT_UNREADABLE
	                                 : MTLS_REASON_PEER_ALERT))
		print_message("  hs=%d reason=%s in=%d err=%s\n", e.hs,
		              mtls_reason_name(e.reason), e.alert_in, e.error);
	assert_int_equal(e.hs, MTLS_ERR_ALERT);
	if (unreadable13(v)) {
		/* even OpenSSL's alert, sent under its handshake keys */
		assert_int_equal(e.reason, MTLS_REASON_PEER_ALERT_UNREADABLE);
		assert_has(e.error, "could not be decrypted");
	} else {
		assert_int_equal(e.reason, MTLS_REASON_PEER_ALERT);
		assert_int_equal(e.alert_in, 48);
		assert_has(e.error, "client refused our server certificate "
		                    "(alert unknown_ca)");
	}
	mtls_ctx_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reason_names),
	    VTEST(test_success_has_none),
	    VTEST(test_no_client_cert),
	    VTEST(test_other_ca),
	    VTEST(test_missing_intermediate),
	    VTEST(test_same_name_other_key),
	    VTEST(test_verify_reasons),
	    VTEST(test_name_and_policy),
	    VTEST(test_unknown_host),
	    cmocka_unit_test(test_protocol_version),
	    VTEST(test_no_shared_cipher),
	    VTEST(test_s_server_refuses_us),
	    VTEST(test_s_server_rejects_name),
	    VTEST(test_s_client_without_cert),
	    VTEST(test_s_client_refuses_us),
	};

	signal(SIGPIPE, SIG_IGN);
	pki_dir();
	return cmocka_run_group_tests_name("reason", tests, NULL, NULL);
}
