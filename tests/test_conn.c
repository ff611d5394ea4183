/*
 * test_conn.c - connections: a full mTLS handshake between our client and
 * our server (a server thread over a socket pair), data both ways,
 * close_notify, what mtls_verify_peer reports on both sides, refusals and
 * their codes, verification modes, non-blocking and callback I/O, ALPN,
 * session resumption, reload, and lifetimes.
 *
 * Tests that speak TLS run once per protocol version (VTEST).
 *
 * Expired, not-yet-valid and wrong-EKU client certificates cannot be
 * loaded through mtls_load_client_pair (it refuses them at load time, by
 * design), so those clients are plain mbedTLS clients (raw_client, conn_util.h):
 * what is tested is our server's verdict.  tests/test_interop.sh does the
 * same with openssl s_client.
 */
#include "conn_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>

#define PING "ping"

/* Our server (default material) judges a raw client presenting cert/key. */
static void check_raw_refused(int ver, const char *cert, const char *key,
                              int code, const char *needle)
{
	mtls_ctx *s = default_server(ver);
	raw_result r;
	pair p;

	raw_opts o = {.ver = ver, .cert = cert, .key = key,
	              .hostname = "localhost"};

	pair_open(&p, s);
	r = raw_client(p.fds[0], &o);
	pair_close(&p);
	assert_int_equal(r.setup, 0);
	if (p.srv.hs != code || strstr(p.srv.error, needle) == NULL) {
		dump_pair(&p);
		fail_msg("%s: server gave %d, wanted %d (%s) with \"%s\"", cert,
		         p.srv.hs, code, mtls_strerror(code), needle);
	}
	/* The client learns it from the server's alert: in its handshake
	 * (1.2) or on its first read (1.3). */
	if (ver == MTLS_TLS1_3) {
		assert_int_equal(r.hs, 0);
		assert_true(r.rd < 0);
	} else {
		assert_true(r.hs < 0);
	}
	mtls_ctx_free(s);
}

/* ---- non-blocking driving, one thread, both ends ------------------------- */

typedef struct nb {
	mtls_conn *c, *s;
	int cfd, sfd;
	int want_read, want_write; /* WANT_* results seen, both ends */
} nb;

static void nb_note(nb *n, long r, short *ev)
{
	if (r == MTLS_WANT_READ) {
		n->want_read++;
		*ev = POLLIN;
	} else if (r == MTLS_WANT_WRITE) {
		n->want_write++;
		*ev = POLLOUT;
	}
}

/* Waits (bounded) until one of the ends may progress. */
static void nb_wait(nb *n, short cev, short sev)
{
	struct pollfd p[2] = {{.fd = n->cfd, .events = cev},
	                      {.fd = n->sfd, .events = sev}};

	(void)poll(p, 2, 50);
}

/* Both handshakes to completion; at most ~20 s of polling. */
static void nb_handshake(nb *n, int *crc, int *src)
{
	int cdone = 0, sdone = 0;

	*crc = *src = MTLS_WANT_READ;
	for (int i = 0; i < 400 && !(cdone && sdone); i++) {
		short cev = 0, sev = 0;
		if (!cdone) {
			*crc = mtls_handshake(n->c);
			nb_note(n, *crc, &cev);
			cdone = cev == 0;
		}
		if (!sdone) {
			*src = mtls_handshake(n->s);
			nb_note(n, *src, &sev);
			sdone = sev == 0;
		}
		if (!(cdone && sdone))
			nb_wait(n, cev, sev);
	}
}

/* Client sends `len` bytes of a pattern, server reads them all, both
 * non-blocking.  Returns the bytes the server got intact, or -1. */
static long nb_transfer(nb *n, size_t len)
{
	unsigned char out[16384], in[4096];
	size_t sent = 0, got = 0;

	for (int i = 0; i < 4000 && got < len; i++) {
		short cev = 0, sev = 0;
		ssize_t r;
		/* Up to sizeof(out) per round, so the writer fills the socket
		 * whatever the record size: a build with smaller outgoing
		 * records (MBEDTLS=tuned: 4 KiB) writes a chunk in several
		 * partial writes.  chunk depends on sent only: a retry after
		 * WANT_* passes the same len. */
		for (size_t round = 0; sent < len && round < sizeof(out);) {
			size_t chunk = len - sent < sizeof(out) ? len - sent
			                                        : sizeof(out);
			for (size_t k = 0; k < chunk; k++)
				out[k] = (unsigned char)((sent + k) * 7 % 251);
			r = mtls_write(n->c, out, chunk);
			nb_note(n, r, &cev);
			if (r > 0) {
				sent += (size_t)r;
				round += (size_t)r;
			} else if (r != MTLS_WANT_READ && r != MTLS_WANT_WRITE) {
				return -1;
			} else {
				break;
			}
		}
		/* ... and the reader drains until it would block, so both
		 * ends see their WANT_* whatever the record size */
		for (int k = 0; k < 64 && got < len; k++) {
			r = mtls_read(n->s, in, sizeof(in));
			nb_note(n, r, &sev);
			if (r == MTLS_WANT_READ || r == MTLS_WANT_WRITE)
				break;
			if (r <= 0)
				return -1;
			for (ssize_t b = 0; b < r; b++)
				if (in[b] != (unsigned char)((got + (size_t)b) *
				                             7 % 251))
					return -1;
			got += (size_t)r;
		}
		if (cev != 0 && sev != 0)
			nb_wait(n, cev, sev);
	}
	return (long)got;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	assert_true(fl >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}


/* ---- the event-loop contract (EVENT LOOPS in mtls.h) ---------------------- */

/* Both ends non-blocking in one thread, handshaken; the server does its
 * I/O through counting callbacks (srv_io.io_calls), so a test sees whether
 * a read touched the socket.  small: the client's send buffer is 4 KiB. */
typedef struct evpair {
	nb n;
	int fds[2];
	end srv_io;
	mtls_ctx *s, *c;
} evpair;

static void ev_open(evpair *p, int ver, int small)
{
	int crc, src, sndbuf = 4096;

	memset(p, 0, sizeof(*p));
	p->s = default_server(ver);
	p->c = default_client(ver);
	mk_socketpair(p->fds);
	set_nonblock(p->fds[0]);
	set_nonblock(p->fds[1]);
	if (small)
		assert_int_equal(setsockopt(p->fds[0], SOL_SOCKET, SO_SNDBUF,
		                            &sndbuf, sizeof(sndbuf)), 0);
	p->n.cfd = p->fds[0];
	p->n.sfd = p->srv_io.fd = p->fds[1];
	p->n.c = mtls_conn_new(p->c, p->fds[0], "localhost");
	p->n.s = mtls_conn_new_io(p->s, io_send_cb, io_recv_cb, &p->srv_io,
	                          NULL);
	assert_non_null(p->n.c);
	assert_non_null(p->n.s);
	nb_handshake(&p->n, &crc, &src);
	if (crc != 0 || src != 0)
		fail_msg("handshake: client %d (%s) server %d (%s)", crc,
		         mtls_conn_error(p->n.c), src, mtls_conn_error(p->n.s));
}

static void ev_close(evpair *p)
{
	mtls_conn_free(p->n.c);
	mtls_conn_free(p->n.s);
	close(p->fds[0]);
	close(p->fds[1]);
	mtls_ctx_free(p->s);
	mtls_ctx_free(p->c);
}

/* One end's read or write, retried (bounded) while it says MTLS_WANT_*. */
static ssize_t ev_io(nb *n, mtls_conn *conn, int write, const void *wbuf,
                     void *rbuf, size_t len)
{
	ssize_t r = MTLS_WANT_READ;

	for (int i = 0; i < 400 && (r == MTLS_WANT_READ ||
	                            r == MTLS_WANT_WRITE); i++) {
		short ev = 0;
		r = write ? mtls_write(conn, wbuf, len)
		          : mtls_read(conn, rbuf, len);
		nb_note(n, r, &ev);
		if (ev != 0)
			nb_wait(n, conn == n->c ? ev : 0, conn == n->s ? ev : 0);
	}
	return r;
}

/* The stream's byte at offset off: a period (251) prime to any record
 * length, so a record lost or sent twice shows. */
static unsigned char ev_byte(size_t off)
{
	return (unsigned char)(off * 7 % 251);
}

/* The client fills its socket with 16 KiB writes until one waits
 * (MTLS_WANT_WRITE, its record built from out, which then holds the bytes
 * to pass again); bytes accepted before it. */
static size_t ev_fill(evpair *p, unsigned char out[16384])
{
	size_t accepted = 0;
	ssize_t r = 0;

	for (int i = 0; i < 1000; i++) {
		for (size_t k = 0; k < 16384; k++)
			out[k] = ev_byte(accepted + k);
		r = mtls_write(p->n.c, out, 16384);
		if (r <= 0)
			break;
		accepted += (size_t)r;
	}
	assert_int_equal(r, MTLS_WANT_WRITE);
	return accepted;
}

/* Server reads what waits, checking the pattern of ev_fill; 0 at
 * close_notify, else what the last read said. */
static ssize_t ev_drain(evpair *p, size_t *got)
{
	unsigned char in[4096];
	ssize_t r;

	while ((r = mtls_read(p->n.s, in, sizeof(in))) > 0) {
		for (ssize_t k = 0; k < r; k++)
			if (in[k] != ev_byte(*got + (size_t)k))
				fail_msg("byte %zu differs", *got + (size_t)k);
		*got += (size_t)r;
	}
	return r;
}

/* ---- tests -------------------------------------------------------------- */

/* TLS 1.3 is there on 3.x builds, and refused with UNSUPPORTED on 2.28. */
static void test_tls13_availability(void **state)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	const char *v = mtls_mbedtls_version();
	int r13 = mtls_ctx_set_tls_versions(c, MTLS_TLS1_3, MTLS_TLS1_3);
	int r23 = mtls_ctx_set_tls_versions(c, MTLS_TLS1_2, MTLS_TLS1_3);

	(void)state;
	print_message("  mbedTLS %s\n", v);
	if (v[0] == '2') {
		check_err(c, r13, MTLS_ERR_UNSUPPORTED, "TLS 1.3");
		check_err(c, r23, MTLS_ERR_UNSUPPORTED, "TLS 1.3");
		assert_false(have_tls13());
	} else {
		assert_int_equal(r13, 0);
		assert_int_equal(r23, 0);
		assert_true(have_tls13());
	}
	check_err(c, mtls_ctx_set_tls_versions(c, MTLS_TLS1_3, MTLS_TLS1_2),
	          MTLS_ERR_INVALID_ARG, "min");
	check_err(c, mtls_ctx_set_tls_versions(c, 0x0302, MTLS_TLS1_2),
	          MTLS_ERR_INVALID_ARG, "TLS");
	check_ok(c, mtls_ctx_set_tls_versions(c, MTLS_TLS1_2, MTLS_TLS1_2));
	mtls_ctx_free(c);
}

/* NULLs, and queries before the handshake. */
static void test_conn_args_and_state(void **state)
{
	mtls_ctx *c = default_client(0);
	mtls_conn *conn;
	mtls_peer peer;
	char buf[8];
	int fds[2];

	(void)state;
	assert_null(mtls_conn_new(NULL, 0, "localhost"));
	assert_null(mtls_conn_new_io(NULL, io_send_cb, io_recv_cb, NULL,
	                             "localhost"));
	assert_null(mtls_conn_new_io(c, NULL, io_recv_cb, NULL, "localhost"));
	assert_null(mtls_conn_new_io(c, io_send_cb, NULL, NULL, "localhost"));
	assert_int_equal(mtls_handshake(NULL), MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_read(NULL, buf, sizeof(buf)),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_write(NULL, buf, sizeof(buf)),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_close(NULL), MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_verify_peer(NULL, &peer), MTLS_ERR_INVALID_ARG);
	assert_null(mtls_conn_error(NULL));
	assert_int_equal(mtls_conn_errno(NULL), 0);
	assert_null(mtls_conn_version(NULL));
	assert_null(mtls_conn_cipher(NULL));
	assert_null(mtls_conn_alpn(NULL));
	assert_null(mtls_conn_sni(NULL));
	assert_int_equal(mtls_conn_resumed(NULL), 0);
	mtls_conn_free(NULL);

	mk_socketpair(fds);
	conn = mtls_conn_new(c, fds[0], "localhost");
	assert_non_null(conn);
	assert_null(mtls_conn_error(conn));
	assert_int_equal(mtls_read(conn, NULL, 1), MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_write(conn, NULL, 1), MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_verify_peer(conn, &peer), MTLS_ERR_STATE);
	assert_int_equal(mtls_verify_peer(conn, NULL), MTLS_ERR_STATE);
	assert_null(mtls_conn_version(conn));
	assert_null(mtls_conn_cipher(conn));
	assert_null(mtls_conn_alpn(conn));
	assert_null(mtls_conn_sni(conn));
	assert_int_equal(mtls_conn_resumed(conn), 0);
	mtls_conn_free(conn);
	close(fds[0]);
	close(fds[1]);
	mtls_ctx_free(c);
}

static void assert_hex64(const char *s)
{
	assert_int_equal(strlen(s), 64);
	for (const char *p = s; *p; p++)
		assert_non_null(strchr("0123456789abcdef", *p));
}

/* The whole exchange, and what each side learns about the other. */
static void test_handshake_and_data(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	char big[6001], want[65];
	const mtls_peer *cp, *sp;
	pair p;
	int r1, r2;

	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = (char)('a' + i % 26);
	big[sizeof(big) - 1] = '\0';
	pair_open(&p, s);
	pair_client(&p, c, "localhost");
	r1 = pair_echo(&p, PING);
	r2 = pair_echo(&p, big);
	pair_close(&p);
	assert_int_equal(r1, 0);
	assert_int_equal(r2, 0);
	assert_int_equal(p.srv.hs, 0);
	assert_int_equal(p.cli.hs, 0);
	assert_int_equal(p.srv.n_data, 4 + sizeof(big) - 1);
	assert_int_equal(p.cli.n_data, 4 + sizeof(big) - 1);
	assert_memory_equal(p.srv.data, PING, 4);
	assert_memory_equal(p.srv.data + 4, big, sizeof(big) - 1);
	assert_string_equal(p.srv.data, p.cli.data);
	/* close_notify reads as 0 on both sides */
	assert_true(p.srv.eof);
	assert_true(p.cli.eof);
	assert_int_equal(p.srv.io_err, 0);
	assert_int_equal(p.cli.io_err, 0);
	assert_string_equal(p.srv.error, "");
	assert_string_equal(p.cli.error, "");

	assert_string_equal(p.cli.version, version_name(ver));
	assert_string_equal(p.srv.version, version_name(ver));
	assert_true(strlen(p.cli.cipher) > 0);
	assert_string_equal(p.cli.cipher, p.srv.cipher);
	assert_string_equal(p.cli.alpn, "");
	assert_string_equal(p.srv.sni, "localhost");
	assert_int_equal(p.cli.resumed, 0);
	assert_int_equal(p.srv.resumed, 0);

	/* the server's view of the client */
	assert_int_equal(p.srv.verify, 0);
	sp = &p.srv.peer;
	assert_int_equal(sp->has_cert, 1);
	assert_string_equal(sp->subject, "CN=client.test");
	assert_string_equal(sp->cn, "client.test");
	assert_string_equal(sp->ou, "");
	assert_non_null(strstr(sp->issuer, "mtls Test Intermediate CA"));
	assert_true(strlen(sp->serial) > 0);
	assert_true(sp->not_before < time(NULL) && time(NULL) < sp->not_after);
	assert_hex64(sp->sha256);
	assert_hex64(sp->spki_sha256);
	assert_string_not_equal(sp->sha256, sp->spki_sha256);
	file_sha256(pki("client-ec.crt"), want);
	assert_string_equal(sp->sha256, want);
	assert_int_equal(sp->n_uri, 1);
	assert_string_equal(sp->uri[0], CLIENT_URI);
	assert_int_equal(sp->n_dns, 1);
	assert_string_equal(sp->dns[0], "client.test");
	assert_int_equal(sp->n_ip, 0);

	/* the client's view of the server */
	assert_int_equal(p.cli.verify, 0);
	cp = &p.cli.peer;
	assert_int_equal(cp->has_cert, 1);
	assert_string_equal(cp->subject, "CN=localhost");
	assert_string_equal(cp->cn, "localhost");
	assert_non_null(strstr(cp->issuer, "mtls Test Intermediate CA"));
	assert_hex64(cp->sha256);
	assert_hex64(cp->spki_sha256);
	file_sha256(pki("server-ec.crt"), want);
	assert_string_equal(cp->sha256, want);
	assert_int_equal(cp->n_dns, 2);
	assert_string_equal(cp->dns[0], "localhost");
	assert_string_equal(cp->dns[1], "server.test");
	assert_int_equal(cp->n_ip, 2);
	assert_string_equal(cp->ip[0], "127.0.0.1");
	assert_string_equal(cp->ip[1], "::1");
	assert_int_equal(cp->n_uri, 0);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* An RSA pair on both sides and a P-384 client also work. */
static void test_other_key_types(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = mk_server(ver, "server-rsa-chain.pem", "server-rsa.key",
	                        CA);
	mtls_ctx *c = mk_client(ver, "client-rsa-chain.pem", "client-rsa.key",
	                        CA);
	char *dir = make_tmpdir();
	char *chain = make_chain(dir, "client-p384.crt");
	mtls_ctx *c2 = mtls_ctx_new(MTLS_ROLE_CLIENT);
	pair p, p2;

	check_ok(c2, mtls_load_client_pair(c2, chain, pki("client-p384.key")));
	check_ok(c2, mtls_set_trusted_ca(c2, pki(CA)));
	check_ok(c2, mtls_ctx_set_tls_versions(c2, ver, ver));
	run_pair(&p, s, c, "localhost");
	run_pair(&p2, s, c2, "server.test");
	assert_pair_ok(&p);
	assert_pair_ok(&p2);
	assert_int_equal(p.srv.verify, 0);
	assert_int_equal(p.cli.verify, 0);
	assert_int_equal(p2.srv.verify, 0);
	assert_string_equal(p2.srv.peer.cn, "client.test");
	mtls_ctx_free(s);
	mtls_ctx_free(c);
	mtls_ctx_free(c2);
	free(chain);
	rm_tree(dir);
}

static void test_refused_no_client_cert(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	mtls_ctx *c = mk_client(ver, NULL, NULL, CA);
	pair p;

	run_pair(&p, s, c, "localhost");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_NO_CERT);
	assert_non_null(strstr(p.srv.error, "certificate required"));
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static void test_refused_other_ca(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	mtls_ctx *c = mk_client(ver, "other-client.crt", "other-client.key",
	                        CA);
	pair p;

	run_pair(&p, s, c, "localhost");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_UNTRUSTED);
	assert_non_null(strstr(p.srv.error, "CN=client.test"));
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static void test_refused_expired(void **state)
{
	int ver = test_version(state);

	check_raw_refused(ver, "client-expired.crt", "client-expired.key",
	                  MTLS_ERR_PEER_EXPIRED, "CN=client.test");
}

static void test_refused_not_yet_valid(void **state)
{
	int ver = test_version(state);

	check_raw_refused(ver, "client-future.crt", "client-future.key",
	                  MTLS_ERR_PEER_NOT_YET_VALID, "CN=client.test");
}

static void test_refused_wrong_eku(void **state)
{
	int ver = test_version(state);

	check_raw_refused(ver, "client-wrongeku.crt", "client-wrongeku.key",
	                  MTLS_ERR_PEER_EKU, "CN=client.test");
}

/* The raw client itself works: a good pair is accepted. */
static void test_raw_client_control(void **state)
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
	assert_int_equal(r.setup, 0);
	assert_int_equal(r.hs, 0);
	assert_int_equal(r.rd, 4);
	assert_string_equal(r.data, "ping");
	assert_int_equal(p.srv.hs, 0);
	assert_int_equal(p.srv.verify, 0);
	mtls_ctx_free(s);
}

static void test_refused_revoked(void **state)
{
	int ver = test_version(state);
	char *dir = make_tmpdir();
	char *chain = make_chain(dir, "client-revoked.crt");
	mtls_ctx *s = default_server(ver);
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	pair p;

	check_ok(c, mtls_load_client_pair(c, chain, pki("client-revoked.key")));
	check_ok(c, mtls_set_trusted_ca(c, pki(CA)));
	check_ok(c, mtls_ctx_set_tls_versions(c, ver, ver));
	/* accepted without the CRL */
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	/* refused with it; a good client still passes */
	check_ok(s, mtls_set_crl(s, pki("int.crl")));
	run_pair(&p, s, c, "localhost");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_REVOKED);
	mtls_ctx_free(c);
	c = default_client(ver);
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.verify, 0);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
	free(chain);
	rm_tree(dir);
}

static void test_client_refuses_wrong_name(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	pair p;

	run_pair(&p, s, c, "wrong.test");
	assert_client_refused(&p, MTLS_ERR_PEER_NAME);
	assert_non_null(strstr(p.cli.error, "wrong.test"));
	assert_string_equal(p.srv.sni, "wrong.test");
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static void test_client_refuses_unknown_ca(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	mtls_ctx *c = mk_client(ver, CLI_CERT, CLI_KEY, "other-ca.crt");
	pair p;

	run_pair(&p, s, c, "localhost");
	assert_client_refused(&p, MTLS_ERR_PEER_UNTRUSTED);
	assert_non_null(strstr(p.cli.error, "CN=localhost"));
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* An IP target is checked against the IP SANs, and sends no SNI. */
static void test_ip_target(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	pair p;

	run_pair(&p, s, c, "127.0.0.1");
	assert_pair_ok(&p);
	assert_int_equal(p.cli.verify, 0);
	assert_string_equal(p.srv.sni, "");
	run_pair(&p, s, c, "::1");
	assert_pair_ok(&p);
	assert_int_equal(p.cli.verify, 0);
	assert_string_equal(p.srv.sni, "");
	run_pair(&p, s, c, "127.0.0.2");
	assert_client_refused(&p, MTLS_ERR_PEER_NAME);
	assert_non_null(strstr(p.cli.error, "127.0.0.2"));
	run_pair(&p, s, c, "::2");
	assert_client_refused(&p, MTLS_ERR_PEER_NAME);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static void test_server_name_override(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	pair p;

	check_ok(c, mtls_ctx_set_server_name(c, "server.test"));
	run_pair(&p, s, c, "wrong.test");
	assert_pair_ok(&p);
	assert_int_equal(p.cli.verify, 0);
	assert_string_equal(p.srv.sni, "server.test");
	/* an override also works with no name given to mtls_conn_new */
	run_pair(&p, s, c, NULL);
	assert_pair_ok(&p);
	/* the override wins over a good name */
	check_ok(c, mtls_ctx_set_server_name(c, "wrong.test"));
	run_pair(&p, s, c, "localhost");
	assert_client_refused(&p, MTLS_ERR_PEER_NAME);
	/* an IP override */
	check_ok(c, mtls_ctx_set_server_name(c, "127.0.0.1"));
	run_pair(&p, s, c, "wrong.test");
	assert_pair_ok(&p);
	assert_string_equal(p.srv.sni, "");
	/* cleared: the name given to mtls_conn_new counts again */
	check_ok(c, mtls_ctx_set_server_name(c, NULL));
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	run_pair(&p, s, c, "wrong.test");
	assert_client_refused(&p, MTLS_ERR_PEER_NAME);
	/* role and length checks */
	check_err(s, mtls_ctx_set_server_name(s, "x"), MTLS_ERR_WRONG_ROLE,
	          "client");
	{
		char longname[300];
		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		check_err(c, mtls_ctx_set_server_name(c, longname),
		          MTLS_ERR_INVALID_ARG, "253");
	}
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static void test_no_server_name(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	pair p;

	run_pair(&p, s, c, NULL);
	assert_int_equal(p.cli.hs, MTLS_ERR_NOT_CONFIGURED);
	assert_non_null(strstr(p.cli.error, "mtls_ctx_set_server_name"));
	/* the client sent nothing and closed */
	assert_int_equal(p.srv.hs, MTLS_ERR_CLOSED);
	run_pair(&p, s, c, "");
	assert_int_equal(p.cli.hs, MTLS_ERR_NOT_CONFIGURED);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static void test_verify_optional(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	mtls_ctx *none = mk_client(ver, NULL, NULL, CA);
	mtls_ctx *good = default_client(ver);
	mtls_ctx *other = mk_client(ver, "other-client.crt",
	                            "other-client.key", CA);
	pair p;

	check_ok(s, mtls_ctx_set_verify(s, MTLS_VERIFY_OPTIONAL));
	run_pair(&p, s, none, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.verify, MTLS_ERR_PEER_NO_CERT);
	assert_int_equal(p.srv.peer.has_cert, 0);
	assert_string_equal(p.srv.peer.subject, "");
	assert_int_equal(p.cli.verify, 0);

	run_pair(&p, s, good, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.verify, 0);
	assert_string_equal(p.srv.peer.cn, "client.test");

	/* an untrusted certificate gets through, but is reported, with the
	 * identity filled in */
	run_pair(&p, s, other, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.verify, MTLS_ERR_PEER_UNTRUSTED);
	assert_int_equal(p.srv.peer.has_cert, 1);
	assert_string_equal(p.srv.peer.cn, "client.test");
	assert_non_null(strstr(p.srv.peer.issuer, "Other Root CA"));
	mtls_ctx_free(s);
	mtls_ctx_free(none);
	mtls_ctx_free(good);
	mtls_ctx_free(other);
}

static void test_verify_none(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	mtls_ctx *none = mk_client(ver, NULL, NULL, CA);
	mtls_ctx *good = default_client(ver);
	pair p;

	tlog_start();
	check_ok(s, mtls_ctx_set_verify(s, MTLS_VERIFY_NONE));
	tlog_stop();
	assert_true(tlog_count(MTLS_LOG_WARN, "not requested") >= 1);
	run_pair(&p, s, none, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.verify, MTLS_ERR_PEER_NO_CERT);
	/* a certificate is not even asked for */
	run_pair(&p, s, good, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.verify, MTLS_ERR_PEER_NO_CERT);
	assert_int_equal(p.srv.peer.has_cert, 0);
	assert_int_equal(p.cli.verify, 0);
	check_err(s, mtls_ctx_set_verify(s, (mtls_verify_mode)7),
	          MTLS_ERR_INVALID_ARG, "verify mode");
	mtls_ctx_free(s);
	mtls_ctx_free(none);
	mtls_ctx_free(good);
}

/* A server context without a client CA does not ask for certificates;
 * asking it to require them without a CA fails at the first connection. */
static void test_server_without_ca(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = mk_server(ver, SRV_CERT, SRV_KEY, NULL);
	mtls_ctx *c = default_client(ver);
	mtls_ctx *empty = mtls_ctx_new(MTLS_ROLE_SERVER);
	pair p;

	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.verify, MTLS_ERR_PEER_NO_CERT);
	check_ok(s, mtls_ctx_set_verify(s, MTLS_VERIFY_REQUIRE));
	run_pair(&p, s, c, "localhost");
	assert_int_equal(p.srv.hs, MTLS_ERR_NOT_CONFIGURED);
	assert_non_null(strstr(p.srv.error, "mtls_set_trusted_ca"));
	assert_true(p.cli.hs < 0);
	/* no pair at all */
	run_pair(&p, empty, c, "localhost");
	assert_int_equal(p.srv.hs, MTLS_ERR_NOT_CONFIGURED);
	assert_non_null(strstr(p.srv.error, "mtls_load_server_pair"));
	mtls_ctx_free(s);
	mtls_ctx_free(c);
	mtls_ctx_free(empty);
}

static void test_insecure_skip_verify(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver);
	/* trusts another CA only: the server is from "another CA" */
	mtls_ctx *c = mk_client(ver, CLI_CERT, CLI_KEY, "other-ca.crt");
	/* no CA at all, no pair */
	mtls_ctx *bare = mtls_ctx_new(MTLS_ROLE_CLIENT);
	mtls_ctx *open = mk_server(ver, SRV_CERT, SRV_KEY, NULL);
	char want[65];
	pair p;

	tlog_start();
	check_ok(c, mtls_ctx_insecure_skip_verify(c));
	assert_true(tlog_count(MTLS_LOG_WARN, "INSECURE") >= 1);
	tlog_start();
	run_pair(&p, s, c, "wrong.test");
	tlog_stop();
	assert_pair_ok(&p);
	/* a warning for the connection too */
	assert_true(tlog_count(MTLS_LOG_WARN, "INSECURE") >= 1);
	assert_int_equal(p.cli.verify, MTLS_ERR_PEER_NOT_VERIFIED);
	assert_int_equal(p.cli.peer.has_cert, 1);
	assert_string_equal(p.cli.peer.cn, "localhost");
	file_sha256(pki("server-ec.crt"), want);
	assert_string_equal(p.cli.peer.sha256, want);
	/* the server still verified the client */
	assert_int_equal(p.srv.verify, 0);

	check_ok(bare, mtls_ctx_insecure_skip_verify(bare));
	check_ok(bare, mtls_ctx_set_tls_versions(bare, ver, ver));
	run_pair(&p, open, bare, NULL);
	assert_pair_ok(&p);
	assert_int_equal(p.cli.verify, MTLS_ERR_PEER_NOT_VERIFIED);
	assert_int_equal(p.srv.verify, MTLS_ERR_PEER_NO_CERT);
	check_err(s, mtls_ctx_insecure_skip_verify(s), MTLS_ERR_WRONG_ROLE,
	          "client");
	mtls_ctx_free(s);
	mtls_ctx_free(c);
	mtls_ctx_free(bare);
	mtls_ctx_free(open);
}

static void test_nonblocking(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	int fds[2], crc, src, sndbuf = 4096;
	nb n = {0};
	char buf[16];
	long got;

	mk_socketpair(fds);
	set_nonblock(fds[0]);
	set_nonblock(fds[1]);
	/* a small send buffer, so the client's writes must wait */
	assert_int_equal(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf,
	                            sizeof(sndbuf)), 0);
	n.cfd = fds[0];
	n.sfd = fds[1];
	n.c = mtls_conn_new(c, fds[0], "localhost");
	n.s = mtls_conn_new(s, fds[1], NULL);
	assert_non_null(n.c);
	assert_non_null(n.s);
	nb_handshake(&n, &crc, &src);
	if (crc != 0 || src != 0)
		fail_msg("handshake: client %d (%s) server %d (%s)", crc,
		         mtls_conn_error(n.c), src, mtls_conn_error(n.s));
	assert_true(n.want_read > 0);
	assert_int_equal(mtls_verify_peer(n.c, NULL), 0);
	assert_int_equal(mtls_verify_peer(n.s, NULL), 0);
	assert_string_equal(mtls_conn_version(n.c), version_name(ver));

	/* nothing to read yet: WANT_READ, not a block */
	n.want_read = 0;
	assert_int_equal(mtls_read(n.s, buf, sizeof(buf)), MTLS_WANT_READ);
	got = nb_transfer(&n, 512 * 1024);
	assert_int_equal(got, 512 * 1024);
	assert_true(n.want_write > 0);
	assert_true(n.want_read > 0);

	/* close_notify, driven until sent, reads as 0 */
	for (int i = 0, r = MTLS_WANT_WRITE; r != 0 && i < 400; i++) {
		r = mtls_close(n.c);
		assert_true(r == 0 || r == MTLS_WANT_WRITE);
		if (r != 0)
			nb_wait(&n, POLLOUT, 0);
	}
	{
		ssize_t r = MTLS_WANT_READ;
		for (int i = 0; r == MTLS_WANT_READ && i < 400; i++) {
			r = mtls_read(n.s, buf, sizeof(buf));
			if (r == MTLS_WANT_READ)
				nb_wait(&n, 0, POLLIN);
		}
		assert_int_equal(r, 0);
	}
	mtls_conn_free(n.c);
	mtls_conn_free(n.s);
	close(fds[0]);
	close(fds[1]);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* Caller-supplied I/O on both ends. */
static void test_conn_new_io(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	pair p;

	pair_open(&p, s);
	/* the server thread uses fd I/O; the client the callbacks */
	p.cli.use_io = 1;
	pair_client(&p, c, "localhost");
	(void)pair_echo(&p, PING);
	pair_close(&p);
	assert_pair_ok(&p);
	assert_true(p.cli.io_calls > 2);
	assert_int_equal(p.cli.verify, 0);
	assert_int_equal(p.srv.verify, 0);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static ssize_t sink_send(void *u, const void *b, size_t n)
{
	(void)u;
	(void)b;
	return (ssize_t)n;
}

static ssize_t fail_recv(void *u, void *b, size_t n)
{
	(void)b;
	(void)n;
	(*(int *)u)++;
	return -1;
}

static ssize_t eof_recv(void *u, void *b, size_t n)
{
	(void)b;
	(void)n;
	(*(int *)u)++;
	return 0;
}

static ssize_t want_recv(void *u, void *b, size_t n)
{
	(void)b;
	(void)n;
	(*(int *)u)++;
	return MTLS_WANT_READ;
}

static ssize_t fail_send(void *u, const void *b, size_t n)
{
	(void)b;
	(void)n;
	(*(int *)u)++;
	return -5;
}

/* What the callbacks' return values turn into. */
static void test_io_callback_results(void **state)
{
	int ver = test_version(state);
	mtls_ctx *c = default_client(ver);
	mtls_conn *conn;
	int calls = 0;

	conn = mtls_conn_new_io(c, sink_send, want_recv, &calls, "localhost");
	assert_int_equal(mtls_handshake(conn), MTLS_WANT_READ);
	assert_int_equal(mtls_handshake(conn), MTLS_WANT_READ);
	assert_null(mtls_conn_error(conn));
	mtls_conn_free(conn);

	conn = mtls_conn_new_io(c, sink_send, fail_recv, &calls, "localhost");
	assert_int_equal(mtls_handshake(conn), MTLS_ERR_IO);
	assert_non_null(mtls_conn_error(conn));
	/* a failed handshake stays failed */
	assert_int_equal(mtls_handshake(conn), MTLS_ERR_IO);
	mtls_conn_free(conn);

	conn = mtls_conn_new_io(c, sink_send, eof_recv, &calls, "localhost");
	assert_int_equal(mtls_handshake(conn), MTLS_ERR_CLOSED);
	assert_non_null(strstr(mtls_conn_error(conn), "handshake"));
	mtls_conn_free(conn);

	conn = mtls_conn_new_io(c, fail_send, eof_recv, &calls, "localhost");
	assert_int_equal(mtls_handshake(conn), MTLS_ERR_IO);
	mtls_conn_free(conn);
	assert_true(calls >= 4);
	mtls_ctx_free(c);
}

/* The peer goes away without close_notify. */
static void test_close_without_notify(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	int fds[2], crc, src;
	nb n = {0};
	char buf[16];
	ssize_t r = MTLS_WANT_READ;

	mk_socketpair(fds);
	set_nonblock(fds[0]);
	set_nonblock(fds[1]);
	n.cfd = fds[0];
	n.sfd = fds[1];
	n.c = mtls_conn_new(c, fds[0], "localhost");
	n.s = mtls_conn_new(s, fds[1], NULL);
	nb_handshake(&n, &crc, &src);
	assert_int_equal(crc, 0);
	assert_int_equal(src, 0);
	mtls_conn_free(n.s);
	shutdown(fds[1], SHUT_RDWR);
	for (int i = 0; r == MTLS_WANT_READ && i < 400; i++) {
		r = mtls_read(n.c, buf, sizeof(buf));
		if (r == MTLS_WANT_READ)
			nb_wait(&n, POLLIN, 0);
	}
	assert_int_equal(r, MTLS_ERR_CLOSED);
	assert_non_null(strstr(mtls_conn_error(n.c), "close_notify"));
	mtls_conn_free(n.c);
	close(fds[0]);
	close(fds[1]);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static void alpn_case(int ver, const char *srv, const char *cli,
                      const char *want)
{
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	pair p;

	if (srv != NULL)
		check_ok(s, mtls_ctx_set_alpn(s, srv));
	if (cli != NULL)
		check_ok(c, mtls_ctx_set_alpn(c, cli));
	run_pair(&p, s, c, "localhost");
	if (want == NULL) {
		/* no common protocol: the server refuses (RFC 7301) */
		if (p.srv.hs >= 0 || p.cli.hs >= 0) {
			dump_pair(&p);
			fail_msg("ALPN %s vs %s should fail", srv, cli);
		}
	} else {
		assert_pair_ok(&p);
		assert_string_equal(p.cli.alpn, want);
		assert_string_equal(p.srv.alpn, want);
	}
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static void test_alpn(void **state)
{
	int ver = test_version(state);
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);

	alpn_case(ver, "http/1.1", "h2,http/1.1", "http/1.1");
	alpn_case(ver, "h2,http/1.1", "http/1.1", "http/1.1");
	alpn_case(ver, "h2,http/1.1", "h2,http/1.1", "h2");
	alpn_case(ver, "http/1.1,h2", "h2,http/1.1", "http/1.1");
	alpn_case(ver, NULL, "h2,http/1.1", "");
	alpn_case(ver, "h2,http/1.1", NULL, "");
	alpn_case(ver, "h2", "http/1.1", NULL);
	/* cleared lists */
	alpn_case(ver, "", "", "");
	check_err(c, mtls_ctx_set_alpn(c, "h2,,http/1.1"),
	          MTLS_ERR_INVALID_ARG, "ALPN");
	check_err(c, mtls_ctx_set_alpn(c, ",h2"), MTLS_ERR_INVALID_ARG,
	          "ALPN");
	check_err(c, mtls_ctx_set_alpn(c, "h2,"), MTLS_ERR_INVALID_ARG,
	          "ALPN");
	mtls_ctx_free(c);
}

/* A second connection from the same client context resumes. */
static void test_resumption(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	char sha_c[65], sha_s[65];
	pair p;

	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.cli.resumed, 0);
	assert_int_equal(p.srv.resumed, 0);
	strcpy(sha_c, p.srv.peer.sha256);
	strcpy(sha_s, p.cli.peer.sha256);
	for (int i = 0; i < 2; i++) {
		run_pair(&p, s, c, "localhost");
		assert_pair_ok(&p);
		if (p.cli.resumed != 1 || p.srv.resumed != 1) {
			dump_pair(&p);
			fail_msg("connection %d: resumed client=%d server=%d",
			         i + 2, p.cli.resumed, p.srv.resumed);
		}
		assert_string_equal(p.cli.version, version_name(ver));
		/* the identity survives resumption */
		assert_int_equal(p.srv.verify, 0);
		assert_int_equal(p.cli.verify, 0);
		assert_string_equal(p.srv.peer.sha256, sha_c);
		assert_string_equal(p.srv.peer.uri[0], CLIENT_URI);
		assert_string_equal(p.cli.peer.sha256, sha_s);
	}
	/* another client context does not */
	mtls_ctx_free(c);
	c = default_client(ver);
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.cli.resumed, 0);
	assert_int_equal(p.srv.resumed, 0);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

static void test_resumption_off(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	pair p;

	/* off on the client */
	check_ok(c, mtls_ctx_set_session_resumption(c, 0));
	for (int i = 0; i < 2; i++) {
		run_pair(&p, s, c, "localhost");
		assert_pair_ok(&p);
		assert_int_equal(p.cli.resumed, 0);
		assert_int_equal(p.srv.resumed, 0);
	}
	/* off on the server */
	mtls_ctx_free(c);
	c = default_client(ver);
	check_ok(s, mtls_ctx_set_session_resumption(s, 0));
	for (int i = 0; i < 2; i++) {
		run_pair(&p, s, c, "localhost");
		assert_pair_ok(&p);
		assert_int_equal(p.cli.resumed, 0);
		assert_int_equal(p.srv.resumed, 0);
	}
	/* on again */
	check_ok(s, mtls_ctx_set_session_resumption(s, 1));
	run_pair(&p, s, c, "localhost");
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.cli.resumed, 1);
	assert_int_equal(p.srv.resumed, 1);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* Reload picks up new files for new connections; live ones keep going; a
 * broken file changes nothing. */
static void test_reload(void **state)
{
	int ver = test_version(state);
	char *dir = make_tmpdir();
	char *crt = path_in(dir, "server.crt"), *key = path_in(dir, "server.key");
	char *ccrt = path_in(dir, "client.crt"), *ckey = path_in(dir, "client.key");
	char sha_ec[65], sha_rsa[65], sha_cec[65], sha_c384[65];
	char *c384 = make_chain(dir, "client-p384.crt");
	mtls_ctx *s = mtls_ctx_new(MTLS_ROLE_SERVER);
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	pair live, p;
	int r_live1, r_live2, r_reload;
	static const char junk[] = "-----BEGIN CERTIFICATE-----\nnope\n";

	file_sha256(pki("server-ec.crt"), sha_ec);
	file_sha256(pki("server-rsa.crt"), sha_rsa);
	file_sha256(pki("client-ec.crt"), sha_cec);
	file_sha256(pki("client-p384.crt"), sha_c384);
	copy_file(pki(SRV_CERT), crt);
	copy_file(pki(SRV_KEY), key);
	copy_file(pki(CLI_CERT), ccrt);
	copy_file(pki(CLI_KEY), ckey);
	chmod(key, 0600);
	chmod(ckey, 0600);
	check_ok(s, mtls_load_server_pair(s, crt, key));
	check_ok(s, mtls_set_trusted_ca(s, pki(CA)));
	check_ok(s, mtls_ctx_set_tls_versions(s, ver, ver));
	check_ok(c, mtls_load_client_pair(c, ccrt, ckey));
	check_ok(c, mtls_set_trusted_ca(c, pki(CA)));
	check_ok(c, mtls_ctx_set_tls_versions(c, ver, ver));
	/* every connection a full handshake, so each shows the certificate
	 * being served */
	check_ok(c, mtls_ctx_set_session_resumption(c, 0));

	pair_open(&live, s);
	pair_client(&live, c, "localhost");
	r_live1 = pair_echo(&live, "before");

	copy_file(pki("server-rsa-chain.pem"), crt);
	copy_file(pki("server-rsa.key"), key);
	r_reload = mtls_ctx_reload(s);
	run_pair(&p, s, c, "localhost");

	r_live2 = pair_echo(&live, "after");
	pair_close(&live);

	assert_int_equal(r_live1, 0);
	assert_int_equal(r_reload, 0);
	assert_null(mtls_ctx_error(s));
	assert_int_equal(r_live2, 0);
	assert_string_equal(live.cli.data, "beforeafter");
	assert_true(live.srv.eof && live.cli.eof);
	assert_string_equal(live.cli.peer.sha256, sha_ec);
	assert_pair_ok(&p);
	assert_string_equal(p.cli.peer.sha256, sha_rsa);
	assert_int_equal(p.cli.verify, 0);

	/* broken certificate file: refused, the RSA pair stays */
	write_file(crt, junk, sizeof(junk) - 1);
	check_err(s, mtls_ctx_reload(s), MTLS_ERR_CERT_PARSE, "server.crt");
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_string_equal(p.cli.peer.sha256, sha_rsa);
	/* a certificate that does not match the key: same */
	copy_file(pki(SRV_CERT), crt);
	assert_true(mtls_ctx_reload(s) < 0);
	assert_non_null(mtls_ctx_error(s));
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_string_equal(p.cli.peer.sha256, sha_rsa);
	/* a missing file: same */
	unlink(key);
	check_err(s, mtls_ctx_reload(s), MTLS_ERR_FILE_NOT_FOUND, "server.key");
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_string_equal(p.cli.peer.sha256, sha_rsa);
	/* repaired: the EC pair again */
	copy_file(pki(SRV_KEY), key);
	check_ok(s, mtls_ctx_reload(s));
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_string_equal(p.cli.peer.sha256, sha_ec);

	/* a client context reloads its pair the same way */
	assert_string_equal(p.srv.peer.sha256, sha_cec);
	copy_file(c384, ccrt);
	copy_file(pki("client-p384.key"), ckey);
	check_ok(c, mtls_ctx_reload(c));
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_string_equal(p.srv.peer.sha256, sha_c384);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
	free(crt);
	free(key);
	free(ccrt);
	free(ckey);
	free(c384);
	rm_tree(dir);
}

/* Connections hold their context: freeing it first is fine. */
static void test_conn_outlives_ctx(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	int fds[2], crc, src;
	nb n = {0};
	mtls_peer peer;

	mk_socketpair(fds);
	set_nonblock(fds[0]);
	set_nonblock(fds[1]);
	n.cfd = fds[0];
	n.sfd = fds[1];
	n.c = mtls_conn_new(c, fds[0], "localhost");
	n.s = mtls_conn_new(s, fds[1], NULL);
	mtls_ctx_free(c);
	mtls_ctx_free(s);
	nb_handshake(&n, &crc, &src);
	assert_int_equal(crc, 0);
	assert_int_equal(src, 0);
	assert_int_equal(nb_transfer(&n, 100000), 100000);
	assert_int_equal(mtls_verify_peer(n.s, &peer), 0);
	assert_string_equal(peer.uri[0], CLIENT_URI);
	assert_int_equal(mtls_verify_peer(n.c, &peer), 0);
	assert_string_equal(peer.cn, "localhost");
	mtls_conn_free(n.c);
	mtls_conn_free(n.s);
	close(fds[0]);
	close(fds[1]);
}

/* Loopback TCP, not only AF_UNIX. */
static void test_tcp_loopback(void **state)
{
	int ver = test_version(state);
	mtls_ctx *s = default_server(ver), *c = default_client(ver);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd, sfd;
	pair p;

	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&a, sizeof(a)), 0);
	sfd = accept(lfd, NULL, NULL);
	assert_true(sfd >= 0);
	close(lfd);
	set_timeouts(cfd);
	set_timeouts(sfd);

	/* pair_open's socketpair is replaced by the TCP one */
	memset(&p, 0, sizeof(p));
	p.fds[0] = cfd;
	p.fds[1] = sfd;
	p.cli.fd = cfd;
	p.srv.fd = sfd;
	p.srv.ctx = s;
	assert_int_equal(pthread_create(&p.thread, NULL, server_main, &p.srv),
	                 0);
	p.running = 1;
	pair_client(&p, c, "127.0.0.1");
	(void)pair_echo(&p, PING);
	pair_close(&p);
	assert_pair_ok(&p);
	assert_int_equal(p.cli.verify, 0);
	assert_int_equal(p.srv.verify, 0);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* The default version range negotiates the newest both have. */
static void test_default_versions(void **state)
{
	mtls_ctx *s = default_server(0), *c = default_client(0);
	mtls_ctx *c12 = default_client(MTLS_TLS1_2);
	pair p;

	(void)state;
	run_pair(&p, s, c, "localhost");
	assert_pair_ok(&p);
	assert_string_equal(p.cli.version,
	                    have_tls13() ? "TLSv1.3" : "TLSv1.2");
	run_pair(&p, s, c12, "localhost");
	assert_pair_ok(&p);
	assert_string_equal(p.cli.version, "TLSv1.2");
	if (have_tls13()) {
		/* a 1.3-only server and a 1.2-only client: no deal */
		mtls_ctx *s13 = default_server(MTLS_TLS1_3);
		run_pair(&p, s13, c12, "localhost");
		assert_true(p.srv.hs < 0);
		assert_true(p.cli.hs < 0);
		mtls_ctx_free(s13);
	}
	mtls_ctx_free(s);
	mtls_ctx_free(c);
	mtls_ctx_free(c12);
}

/* #11 finding 12: a context sharing another's trust follows it: a CRL set
 * on the owner afterwards revokes through every share (and a share of a
 * share), also after the sharer's own reload; the sharer's own CA stops
 * the sharing. */
static void test_share_trust_follows_owner(void **state)
{
	int ver = test_version(state);
	char *dir = make_tmpdir();
	char *chain = make_chain(dir, "client-revoked.crt");
	mtls_ctx *owner = default_server(ver);
	mtls_ctx *sharer = mk_server(ver, SRV_CERT, SRV_KEY, NULL);
	mtls_ctx *second = mk_server(ver, SRV_CERT, SRV_KEY, NULL);
	mtls_ctx *bad = mtls_ctx_new(MTLS_ROLE_CLIENT);
	mtls_ctx *good = default_client(ver);
	pair p;

	check_ok(bad, mtls_load_client_pair(bad, chain,
	                                    pki("client-revoked.key")));
	check_ok(bad, mtls_set_trusted_ca(bad, pki(CA)));
	check_ok(bad, mtls_ctx_set_tls_versions(bad, ver, ver));
	check_ok(bad, mtls_ctx_set_session_resumption(bad, 0));
	check_ok(good, mtls_ctx_set_session_resumption(good, 0));
	check_ok(sharer, mtls_ctx_share_trust(sharer, owner));
	check_ok(second, mtls_ctx_share_trust(second, sharer));
	/* no CRL yet: the revoked client is let in everywhere */
	run_pair(&p, sharer, bad, "localhost");
	assert_pair_ok(&p);
	run_pair(&p, second, bad, "localhost");
	assert_pair_ok(&p);

	check_ok(owner, mtls_set_crl(owner, pki("int.crl")));
	run_pair(&p, sharer, bad, "localhost");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_REVOKED);
	run_pair(&p, second, bad, "localhost");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_REVOKED);
	run_pair(&p, sharer, good, "localhost");
	assert_pair_ok(&p);
	/* the sharer's reload re-reads its pair, and keeps following */
	check_ok(sharer, mtls_ctx_reload(sharer));
	run_pair(&p, sharer, bad, "localhost");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_REVOKED);
	/* a share that would loop is a no-op, not a cycle */
	check_ok(owner, mtls_ctx_share_trust(owner, second));
	run_pair(&p, owner, bad, "localhost");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_REVOKED);
	/* the sharer's own CA ends the sharing (it keeps the CRL it had:
	 * dropping it would un-revoke); the owner's next CRL is not its */
	check_ok(sharer, mtls_set_trusted_ca(sharer, pki(CA)));
	check_ok(owner, mtls_set_crl(owner, pki("ca.crl")));
	run_pair(&p, sharer, bad, "localhost");
	assert_server_refused(&p, ver, MTLS_ERR_PEER_REVOKED);
	run_pair(&p, second, bad, "localhost");
	assert_pair_ok(&p);

	mtls_ctx_free(owner);
	mtls_ctx_free(sharer);
	mtls_ctx_free(second);
	mtls_ctx_free(bad);
	mtls_ctx_free(good);
	free(chain);
	rm_tree(dir);
}

/* Decrypted bytes wait inside the connection, where the socket cannot
 * report them: mtls_conn_pending() does, and reading them needs no
 * socket I/O. */
static void test_pending(void **state)
{
	int ver = test_version(state);
	mtls_ctx *bare = default_client(ver);
	mtls_conn *fresh = mtls_conn_new(bare, -1, "localhost");
	unsigned char a[100], b[50], buf[256];
	struct pollfd pf;
	evpair p;
	int calls;

	assert_int_equal(mtls_conn_pending(NULL), 0);
	assert_int_equal(mtls_conn_pending(fresh), 0); /* before handshake */
	mtls_conn_free(fresh);
	mtls_ctx_free(bare);

	ev_open(&p, ver, 0);
	assert_int_equal(mtls_conn_pending(p.n.s), 0);
	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	assert_int_equal(ev_io(&p.n, p.n.c, 1, a, NULL, sizeof(a)), 100);
	assert_int_equal(ev_io(&p.n, p.n.s, 0, NULL, buf, 1), 1);
	assert_int_equal(buf[0], 'a');
	assert_int_equal(mtls_conn_pending(p.n.s), 99);
	/* the whole record left the socket: it will not turn readable */
	pf = (struct pollfd){.fd = p.fds[1], .events = POLLIN};
	assert_int_equal(poll(&pf, 1, 0), 0);

	/* a second record: in the socket, not pending */
	assert_int_equal(ev_io(&p.n, p.n.c, 1, b, NULL, sizeof(b)), 50);
	assert_int_equal(mtls_conn_pending(p.n.s), 99);
	calls = p.srv_io.io_calls;
	assert_int_equal(mtls_read(p.n.s, buf, sizeof(buf)), 99);
	assert_int_equal(p.srv_io.io_calls, calls); /* no socket read */
	assert_memory_equal(buf, a, 99);
	assert_int_equal(mtls_conn_pending(p.n.s), 0);
	assert_int_equal(ev_io(&p.n, p.n.s, 0, NULL, buf, sizeof(buf)), 50);
	assert_true(p.srv_io.io_calls > calls);
	assert_memory_equal(buf, b, 50);
	assert_int_equal(mtls_conn_pending(p.n.s), 0);
	/* the client's side: nothing from the server */
	assert_int_equal(mtls_conn_pending(p.n.c), 0);
	ev_close(&p);
}

/* mtls_close() while a write waits: the waiting record goes out first,
 * then close_notify, once, after as many MTLS_WANT_* as it takes; the
 * call after 0 answers 0 again. */
static void test_close_retry(void **state)
{
	int ver = test_version(state);
	unsigned char out[16384];
	size_t accepted, got = 0;
	int closed = 0, wants = 0;
	ssize_t r = MTLS_WANT_READ;
	evpair p;

	ev_open(&p, ver, 1);
	assert_int_equal(mtls_close(NULL), MTLS_ERR_INVALID_ARG);
	accepted = ev_fill(&p, out);
	for (int i = 0; i < 400 && r != 0; i++) {
		if (!closed) {
			int c = mtls_close(p.n.c);
			assert_true(c == 0 || c == MTLS_WANT_WRITE);
			wants += c != 0;
			closed = c == 0;
		}
		r = ev_drain(&p, &got);
		if (r != 0 && r != MTLS_WANT_READ)
			fail_msg("server read: %zd (%s)", r,
			         mtls_conn_error(p.n.s));
		if (r != 0)
			nb_wait(&p.n, closed ? 0 : POLLOUT, POLLIN);
	}
	assert_true(wants > 0);
	assert_int_equal(r, 0); /* close_notify arrived */
	/* every record accepted, the waiting one too (a record's worth:
	 * 16 KiB, less on TLS 1.3), each once: ev_drain checked the bytes */
	assert_true(got > accepted && got <= accepted + sizeof(out));
	assert_int_equal(mtls_close(p.n.c), 0);
	assert_int_equal(mtls_close(p.n.c), 0);
	assert_null(mtls_conn_error(p.n.c));
	ev_close(&p);
}

/* mtls_read() while a write waits: allowed; the write is then retried
 * with the same bytes and length and completes, sent once.  The client
 * first reads what the server sent after its handshake (TLS 1.3 tickets):
 * on mbedTLS 3.x a post-handshake message read while a record of ours
 * waits makes mtls_read() wait for that record (EVENT LOOPS in mtls.h). */
static void test_read_while_write_waits(void **state)
{
	int ver = test_version(state);
	unsigned char out[16384];
	char buf[16];
	size_t accepted, got = 0;
	ssize_t r = MTLS_WANT_WRITE;
	evpair p;

	ev_open(&p, ver, 1);
	assert_int_equal(ev_io(&p.n, p.n.s, 1, "ping", NULL, 4), 4);
	assert_int_equal(ev_io(&p.n, p.n.c, 0, NULL, buf, sizeof(buf)), 4);
	assert_int_equal(ev_io(&p.n, p.n.s, 1, "pong", NULL, 4), 4);
	accepted = ev_fill(&p, out);
	assert_int_equal(ev_io(&p.n, p.n.c, 0, NULL, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "pong", 4);
	for (int i = 0; i < 400 && r < 0; i++) {
		r = mtls_write(p.n.c, out, sizeof(out));
		if (r < 0 && r != MTLS_WANT_WRITE)
			fail_msg("write: %zd (%s)", r, mtls_conn_error(p.n.c));
		if (ev_drain(&p, &got) != MTLS_WANT_READ)
			fail_msg("server read: %s", mtls_conn_error(p.n.s));
		if (r < 0)
			nb_wait(&p.n, POLLOUT, POLLIN);
	}
	assert_true(r > 0 && r <= (ssize_t)sizeof(out));
	for (int i = 0; i < 400 && got < accepted + (size_t)r; i++) {
		if (ev_drain(&p, &got) != MTLS_WANT_READ)
			fail_msg("server read: %s", mtls_conn_error(p.n.s));
		nb_wait(&p.n, 0, POLLIN);
	}
	assert_int_equal(got, accepted + (size_t)r);
	ev_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tls13_availability),
	    cmocka_unit_test(test_conn_args_and_state),
	    cmocka_unit_test(test_default_versions),
	    VTEST(test_handshake_and_data),
	    VTEST(test_other_key_types),
	    VTEST(test_refused_no_client_cert),
	    VTEST(test_refused_other_ca),
	    VTEST(test_raw_client_control),
	    VTEST(test_refused_expired),
	    VTEST(test_refused_not_yet_valid),
	    VTEST(test_refused_wrong_eku),
	    VTEST(test_refused_revoked),
	    VTEST(test_client_refuses_wrong_name),
	    VTEST(test_client_refuses_unknown_ca),
	    VTEST(test_ip_target),
	    VTEST(test_server_name_override),
	    VTEST(test_no_server_name),
	    VTEST(test_verify_optional),
	    VTEST(test_verify_none),
	    VTEST(test_server_without_ca),
	    VTEST(test_insecure_skip_verify),
	    VTEST(test_nonblocking),
	    VTEST(test_conn_new_io),
	    VTEST(test_io_callback_results),
	    VTEST(test_close_without_notify),
	    VTEST(test_pending),
	    VTEST(test_close_retry),
	    VTEST(test_read_while_write_waits),
	    VTEST(test_alpn),
	    VTEST(test_resumption),
	    VTEST(test_resumption_off),
	    VTEST(test_reload),
	    VTEST(test_conn_outlives_ctx),
	    VTEST(test_tcp_loopback),
	    VTEST(test_share_trust_follows_owner),
	};

	pki_dir();
	return cmocka_run_group_tests_name("conn", tests, NULL, NULL);
}
