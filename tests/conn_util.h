/*
 * conn_util.h - fixtures for the connection tests (test_conn, test_sni,
 * test_peer, test_threads): contexts on the test PKI, socket pairs with
 * timeouts, a server thread that answers one connection, a thread-safe log
 * capture, and the TLS version each test runs with.
 *
 * Every wait is bounded: sockets carry SO_RCVTIMEO/SO_SNDTIMEO, so a stuck
 * peer turns into MTLS_WANT_* (treated as a failure on blocking sockets)
 * instead of a hang.  Results are recorded and asserted by the caller after
 * the server thread has been joined, so a failed assertion never leaves a
 * thread writing into a dead stack frame.
 *
 * Each test program is one translation unit: everything here is static.
 */
#ifndef MTLS_TEST_CONN_UTIL_H
#define MTLS_TEST_CONN_UTIL_H

#include "common.h"
#include "internal.h" /* mbedTLS headers, mtls__sha256, test hooks */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <mbedtls/net_sockets.h>

/* Generous: a handshake takes milliseconds, but ASan on a loaded VM is
 * slow.  Only bounds a failure; nothing asserts on time. */
#define IO_TIMEOUT_S 20

/* Default material: leaves with their intermediate, the root as anchor. */
#define SRV_CERT "server-ec-chain.pem"
#define SRV_KEY "server-ec.key"
#define CLI_CERT "client-ec-chain.pem"
#define CLI_KEY "client-ec.key"
#define CA "ca.crt"
#define CLIENT_URI "spiffe://example.org/ns/test/sa/client"

/* ---- TLS version of a test --------------------------------------------- */

/* Tests that speak TLS are registered twice with VTEST(f): the state is
 * the version.  Both variants exist on every build so the test count does
 * not depend on mbedTLS; on 2.28 the TLS 1.3 variant asserts that asking
 * for TLS 1.3 fails with MTLS_ERR_UNSUPPORTED, then reports a skip. */
static int tls12_ __attribute__((unused)) = MTLS_TLS1_2;
static int tls13_ __attribute__((unused)) = MTLS_TLS1_3;
#define VTEST(f)                                                              \
	{#f "/TLS1.2", f, NULL, NULL, &tls12_},                               \
	{#f "/TLS1.3", f, NULL, NULL, &tls13_}

static inline int have_tls13(void)
{
	static int cached = -1;

	if (cached < 0) {
		mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
		assert_non_null(c);
		cached = mtls_ctx_set_tls_versions(c, MTLS_TLS1_3,
		                                   MTLS_TLS1_3) == 0;
		mtls_ctx_free(c);
	}
	return cached;
}

/* The version of a VTEST; skips the TLS 1.3 variant where it cannot run,
 * after checking the refusal. */
static inline int test_version(void **state)
{
	int v = *(int *)*state;

	if (v == MTLS_TLS1_3 && !have_tls13()) {
		mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_SERVER);
		assert_non_null(c);
		assert_int_equal(mtls_ctx_set_tls_versions(c, MTLS_TLS1_2,
		                                           MTLS_TLS1_3),
		                 MTLS_ERR_UNSUPPORTED);
		assert_non_null(mtls_ctx_error(c));
		mtls_ctx_free(c);
		print_message("  (TLS 1.3 not in mbedTLS %s: "
		              "MTLS_ERR_UNSUPPORTED checked, skipping)\n",
		              mtls_mbedtls_version());
		skip();
	}
	return v;
}

static inline const char *version_name(int v)
{
	return v == MTLS_TLS1_3 ? "TLSv1.3" : "TLSv1.2";
}

/* ---- contexts ------------------------------------------------------------ */

/* A server context: pair from the PKI, client CA (NULL: none), version
 * (0: default range). */
static inline mtls_ctx *mk_server(int ver, const char *cert, const char *key,
                                  const char *ca)
{
	mtls_ctx *s = mtls_ctx_new(MTLS_ROLE_SERVER);

	assert_non_null(s);
	check_ok(s, mtls_load_server_pair(s, pki(cert), pki(key)));
	if (ca != NULL)
		check_ok(s, mtls_set_trusted_ca(s, pki(ca)));
	if (ver != 0)
		check_ok(s, mtls_ctx_set_tls_versions(s, ver, ver));
	return s;
}

/* A client context: pair (cert NULL: none), CA, version. */
static inline mtls_ctx *mk_client(int ver, const char *cert, const char *key,
                                  const char *ca)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);

	assert_non_null(c);
	if (cert != NULL)
		check_ok(c, mtls_load_client_pair(c, pki(cert), pki(key)));
	if (ca != NULL)
		check_ok(c, mtls_set_trusted_ca(c, pki(ca)));
	if (ver != 0)
		check_ok(c, mtls_ctx_set_tls_versions(c, ver, ver));
	return c;
}

static inline mtls_ctx *default_server(int ver)
{
	return mk_server(ver, SRV_CERT, SRV_KEY, CA);
}

static inline mtls_ctx *default_client(int ver)
{
	return mk_client(ver, CLI_CERT, CLI_KEY, CA);
}

/* ---- certificate files --------------------------------------------------- */

/* Hex SHA-256 of the first certificate in a file. */
static inline void file_sha256(const char *path, char out[65])
{
	static const char digits[] = "0123456789abcdef";
	mbedtls_x509_crt crt;
	unsigned char d[32];

	mbedtls_x509_crt_init(&crt);
	assert_true(mbedtls_x509_crt_parse_file(&crt, path) >= 0);
	assert_non_null(crt.raw.p);
	assert_int_equal(mtls__sha256(crt.raw.p, crt.raw.len, d), 0);
	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[64] = '\0';
	mbedtls_x509_crt_free(&crt);
}

static inline void copy_file(const char *from, const char *to)
{
	size_t len;
	unsigned char *b = slurp(from, &len);

	write_file(to, b, len);
	free(b);
}

/* dir/name as a malloc'ed string. */
static inline char *path_in(const char *dir, const char *name)
{
	char *p = malloc(TEST_PATH_MAX);

	assert_non_null(p);
	snprintf(p, TEST_PATH_MAX, "%s/%s", dir, name);
	return p;
}

/* dir/<leaf>-chain.pem: PKI leaf file followed by int.crt. */
static inline char *make_chain(const char *dir, const char *leaf)
{
	char name[256];
	size_t a, b;
	unsigned char *l = slurp_pki(leaf, &a), *i = slurp_pki("int.crt", &b);
	unsigned char *both = malloc(a + b);
	char *p;

	assert_non_null(both);
	memcpy(both, l, a);
	memcpy(both + a, i, b);
	snprintf(name, sizeof(name), "%s-chain.pem", leaf);
	p = path_in(dir, name);
	write_file(p, both, a + b);
	free(l);
	free(i);
	free(both);
	return p;
}

/* ---- a plain mbedTLS client ------------------------------------------------ */

/* For what an mtls client will not do: present certificates that
 * mtls_load_client_pair refuses (expired, wrong EKU), or offer a session
 * to another host.  Verifies the server against ca.crt. */
typedef struct raw_opts {
	int ver;
	const char *cert, *key;         /* PKI leaf (int.crt is added); NULL: none */
	const char *hostname;           /* SNI and name check */
	const mbedtls_ssl_session *offer; /* session to resume, or NULL */
	mbedtls_ssl_session *save;      /* receives the session, or NULL */
} raw_opts;

typedef struct raw_result {
	int setup;     /* 0 when the client could be built */
	int hs;        /* mbedtls_ssl_handshake() */
	int rd;        /* mbedtls_ssl_read() after writing "ping" */
	int resumed;   /* the handshake resumed the offered session */
	int saved;     /* 0 when opts.save was filled */
	char data[64]; /* what was read */
} raw_result;

static inline int raw_send(void *p, const unsigned char *b, size_t n)
{
	ssize_t r = send(*(int *)p, b, n, MSG_NOSIGNAL);

	return r >= 0 ? (int)r : MBEDTLS_ERR_NET_SEND_FAILED;
}

static inline int raw_recv(void *p, unsigned char *b, size_t n)
{
	ssize_t r = recv(*(int *)p, b, n, 0);

	return r >= 0 ? (int)r : MBEDTLS_ERR_NET_RECV_FAILED;
}

/* Whether a handshake resumed: no certificate was verified in it. */
static inline int raw_verified_in_hs(void *p, mbedtls_x509_crt *crt, int depth,
                                     uint32_t *flags)
{
	(void)crt;
	(void)depth;
	(void)flags;
	*(int *)p = 1;
	return 0;
}

static inline raw_result raw_client(int fd, const raw_opts *o)
{
	mbedtls_ssl_context ssl;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt own, ca;
	mbedtls_pk_context pk;
	raw_result r = {.hs = 1, .rd = 1, .saved = 1};
	unsigned char *kz = NULL;
	size_t klen = 0;
	int verified = 0;

	mbedtls_ssl_init(&ssl);
	mbedtls_ssl_config_init(&conf);
	mbedtls_x509_crt_init(&own);
	mbedtls_x509_crt_init(&ca);
	mbedtls_pk_init(&pk);
	if (o->cert != NULL) {
		unsigned char *kbuf = slurp_pki(o->key, &klen);
		kz = calloc(1, klen + 1);
		if (kz != NULL)
			memcpy(kz, kbuf, klen);
		free(kbuf);
		if (kz == NULL ||
		    mbedtls_x509_crt_parse_file(&own, pki(o->cert)) != 0 ||
		    mbedtls_x509_crt_parse_file(&own, pki("int.crt")) != 0 ||
		    mtls__pk_parse_key(&pk, kz, klen + 1, NULL) != 0) {
			r.setup = -1;
			goto out;
		}
	}
	if (mbedtls_x509_crt_parse_file(&ca, pki("ca.crt")) != 0 ||
	    mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT,
	                                MBEDTLS_SSL_TRANSPORT_STREAM,
	                                MBEDTLS_SSL_PRESET_DEFAULT) != 0) {
		r.setup = -1;
		goto out;
	}
	mbedtls_ssl_conf_rng(&conf, mtls__rng, mtls__rng_ctx());
	mtls__conf_versions(&conf, o->ver, o->ver);
	mtls__conf_defaults(&conf, 1); /* TLS 1.3 tickets signalled */
	mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
	mbedtls_ssl_conf_verify(&conf, raw_verified_in_hs, &verified);
	if ((o->cert != NULL &&
	     mbedtls_ssl_conf_own_cert(&conf, &own, &pk) != 0) ||
	    mbedtls_ssl_setup(&ssl, &conf) != 0 ||
	    mbedtls_ssl_set_hostname(&ssl, o->hostname) != 0 ||
	    (o->offer != NULL && mbedtls_ssl_set_session(&ssl, o->offer) != 0)) {
		r.setup = -1;
		goto out;
	}
	mbedtls_ssl_set_bio(&ssl, &fd, raw_send, raw_recv, NULL);
	r.hs = mbedtls_ssl_handshake(&ssl);
	r.resumed = r.hs == 0 && !verified;
	if (r.hs == 0 &&
	    mbedtls_ssl_write(&ssl, (const unsigned char *)"ping", 4) == 4) {
		/* A TLS 1.3 ticket comes before the echo. */
		for (int i = 0; i < 16; i++) {
			r.rd = mbedtls_ssl_read(&ssl, (unsigned char *)r.data,
			                        sizeof(r.data) - 1);
			if (r.rd > 0)
				break;
#if defined(MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
			if (r.rd == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
				continue;
#endif
			if (r.rd != MBEDTLS_ERR_SSL_WANT_READ)
				break;
		}
		if (r.rd > 0)
			r.data[r.rd] = '\0';
	}
	if (r.rd > 0 && o->save != NULL)
		r.saved = mbedtls_ssl_get_session(&ssl, o->save);
out:
	mbedtls_ssl_free(&ssl);
	mbedtls_ssl_config_free(&conf);
	mbedtls_x509_crt_free(&own);
	mbedtls_x509_crt_free(&ca);
	mbedtls_pk_free(&pk);
	if (kz != NULL) {
		memset(kz, 0, klen);
		free(kz);
	}
	return r;
}

/* ---- thread-safe log capture --------------------------------------------- */

/* common.h's capture is not locked; connections log from server threads. */
#define TLOG_MAX 256
typedef struct tlog {
	pthread_mutex_t lock;
	int n;
	int level[TLOG_MAX];
	char msg[TLOG_MAX][600];
} tlog;

static inline tlog *tlogs(void)
{
	static tlog l = {.lock = PTHREAD_MUTEX_INITIALIZER};
	return &l;
}

static inline void tlog_cb(void *user, int level, const char *msg)
{
	tlog *l = user;

	pthread_mutex_lock(&l->lock);
	if (l->n < TLOG_MAX) {
		l->level[l->n] = level;
		snprintf(l->msg[l->n], sizeof(l->msg[0]), "%s", msg);
		l->n++;
	}
	pthread_mutex_unlock(&l->lock);
}

static inline void tlog_start(void)
{
	tlog *l = tlogs();

	pthread_mutex_lock(&l->lock);
	l->n = 0;
	pthread_mutex_unlock(&l->lock);
	mtls_set_log_callback(tlog_cb, l);
}

static inline void tlog_stop(void)
{
	mtls_set_log_callback(NULL, NULL);
}

/* Messages at `level` containing `needle`. */
static inline int tlog_count(int level, const char *needle)
{
	tlog *l = tlogs();
	int c = 0;

	pthread_mutex_lock(&l->lock);
	for (int i = 0; i < l->n; i++)
		if (l->level[i] == level && strstr(l->msg[i], needle) != NULL)
			c++;
	pthread_mutex_unlock(&l->lock);
	return c;
}

/* ---- sockets --------------------------------------------------------------- */

static inline void set_timeouts(int fd)
{
	struct timeval tv = {.tv_sec = IO_TIMEOUT_S};

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
	                            sizeof(tv)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
	                            sizeof(tv)), 0);
}

/* A connected AF_UNIX stream pair with timeouts; fds[0] client side. */
static inline void mk_socketpair(int fds[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	set_timeouts(fds[0]);
	set_timeouts(fds[1]);
}

/* ---- one end of a connection ------------------------------------------- */

typedef struct end {
	/* set by the caller */
	mtls_ctx *ctx;
	const char *name; /* client: server_name given to mtls_conn_new */
	int use_io;       /* mtls_conn_new_io with callbacks over the fd */
	/* state */
	int fd;
	mtls_conn *conn;
	/* results */
	int made;         /* mtls_conn_new returned non-NULL */
	int hs;           /* mtls_handshake() */
	int verify;       /* mtls_verify_peer() after a handshake */
	mtls_peer peer;
	char version[16];
	char cipher[128];
	char alpn[64];    /* "" when none */
	char sni[256];    /* "" when none */
	char host[256];   /* server: mtls_conn_host(), "" when NULL */
	char identity[256]; /* mtls_conn_peer_identity(), "" when NULL */
	int resumed;
	int chain_len;    /* certificates in the chain this end verified */
	int io_err;       /* first failing read or write, 0 if none */
	int eof;          /* a read returned 0: close_notify */
	char error[600];  /* mtls_conn_error() after the last failure */
	char data[8192];  /* bytes read */
	size_t n_data;
	int io_calls;     /* calls of the use_io callbacks */
	mtls_reason reason; /* mtls_conn_reason() before the conn is freed */
	int alert_in, alert_out; /* mtls_conn_alert_received() / _sent() */
} end;

typedef struct pair {
	end srv, cli;
	int fds[2];
	pthread_t thread;
	int running;
} pair;

static inline ssize_t io_send_cb(void *user, const void *buf, size_t len)
{
	end *e = user;
	ssize_t n = send(e->fd, buf, len, MSG_NOSIGNAL);

	e->io_calls++;
	if (n >= 0)
		return n;
	return errno == EAGAIN || errno == EWOULDBLOCK ? MTLS_WANT_WRITE : -1;
}

static inline ssize_t io_recv_cb(void *user, void *buf, size_t len)
{
	end *e = user;
	ssize_t n = recv(e->fd, buf, len, 0);

	e->io_calls++;
	if (n >= 0)
		return n;
	return errno == EAGAIN || errno == EWOULDBLOCK ? MTLS_WANT_READ : -1;
}

/* What the connection says about its failure, kept past its free. */
static inline void end_facts(end *e)
{
	e->reason = mtls_conn_reason(e->conn);
	e->alert_in = mtls_conn_alert_received(e->conn);
	e->alert_out = mtls_conn_alert_sent(e->conn);
}

static inline void end_error(end *e)
{
	const char *m = mtls_conn_error(e->conn);

	if (m != NULL)
		snprintf(e->error, sizeof(e->error), "%s", m);
}

/* Connection and handshake, and what it established. */
static inline void end_handshake(end *e)
{
	const char *s;

	e->conn = e->use_io ? mtls_conn_new_io(e->ctx, io_send_cb, io_recv_cb,
	                                       e, e->name)
	                    : mtls_conn_new(e->ctx, e->fd, e->name);
	e->made = e->conn != NULL;
	if (e->conn == NULL) {
		e->hs = MTLS_ERR_NO_MEMORY;
		return;
	}
	e->hs = mtls_handshake(e->conn);
	e->chain_len = mtls__conn_chain_len(e->conn);
	if ((s = mtls_conn_sni(e->conn)) != NULL)
		snprintf(e->sni, sizeof(e->sni), "%s", s);
	if ((s = mtls_conn_host(e->conn)) != NULL)
		snprintf(e->host, sizeof(e->host), "%s", s);
	if ((s = mtls_conn_peer_identity(e->conn)) != NULL)
		snprintf(e->identity, sizeof(e->identity), "%s", s);
	if (e->hs != 0) {
		end_error(e);
		return;
	}
	e->verify = mtls_verify_peer(e->conn, &e->peer);
	if ((s = mtls_conn_version(e->conn)) != NULL)
		snprintf(e->version, sizeof(e->version), "%s", s);
	if ((s = mtls_conn_cipher(e->conn)) != NULL)
		snprintf(e->cipher, sizeof(e->cipher), "%s", s);
	if ((s = mtls_conn_alpn(e->conn)) != NULL)
		snprintf(e->alpn, sizeof(e->alpn), "%s", s);
	e->resumed = mtls_conn_resumed(e->conn);
}

static inline int end_write_all(end *e, const void *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = mtls_write(e->conn, (const char *)buf + off,
		                       len - off);
		if (n <= 0) {
			if (e->io_err == 0)
				e->io_err = n == 0 ? MTLS_ERR_INTERNAL : (int)n;
			end_error(e);
			return e->io_err;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Reads until `want` more bytes arrived (0: one read). 0, or the read's
 * result (0 at close_notify, < 0 on error). */
static inline int end_read(end *e, size_t want)
{
	size_t got = 0;

	do {
		char buf[2048];
		ssize_t n = mtls_read(e->conn, buf, sizeof(buf));
		if (n == 0) {
			e->eof = 1;
			return 0;
		}
		if (n < 0) {
			if (e->io_err == 0)
				e->io_err = (int)n;
			end_error(e);
			return (int)n;
		}
		if (e->n_data + (size_t)n < sizeof(e->data)) {
			memcpy(e->data + e->n_data, buf, (size_t)n);
			e->n_data += (size_t)n;
			e->data[e->n_data] = '\0';
		}
		got += (size_t)n;
	} while (got < want);
	return 1;
}

/* The server thread: handshake, then echo everything until the client
 * closes; answers close_notify with close_notify. */
static inline void *server_main(void *arg)
{
	end *e = arg;
	char buf[2048];

	end_handshake(e);
	while (e->hs == 0) {
		ssize_t n = mtls_read(e->conn, buf, sizeof(buf));
		if (n == 0) {
			e->eof = 1;
			(void)mtls_close(e->conn);
			break;
		}
		if (n < 0) {
			e->io_err = (int)n;
			end_error(e);
			break;
		}
		if (e->n_data + (size_t)n < sizeof(e->data)) {
			memcpy(e->data + e->n_data, buf, (size_t)n);
			e->n_data += (size_t)n;
			e->data[e->n_data] = '\0';
		}
		if (end_write_all(e, buf, (size_t)n) != 0)
			break;
	}
	end_facts(e);
	mtls_conn_free(e->conn);
	e->conn = NULL;
	/* EOF for the client; the read side stays open so that its pending
	 * writes do not fail before it reads our alert. */
	shutdown(e->fd, SHUT_WR);
	return NULL;
}

/* A socket pair and a server thread on `sctx`, handshaking. */
static inline void pair_open(pair *p, mtls_ctx *sctx)
{
	memset(p, 0, sizeof(*p));
	mk_socketpair(p->fds);
	p->cli.fd = p->fds[0];
	p->srv.fd = p->fds[1];
	p->srv.ctx = sctx;
	assert_int_equal(pthread_create(&p->thread, NULL, server_main,
	                                &p->srv), 0);
	p->running = 1;
}

/* A loopback TCP listener on an ephemeral port whose thread serves one
 * connection on `ctx` as server_main (for real peers: openssl s_client). */
typedef struct tcp_srv {
	int lfd;
	int port;
	end e;
	pthread_t thread;
} tcp_srv;

/* Accepts one connection (bounded wait) and serves it as server_main. */
static inline void *tcp_main(void *arg)
{
	tcp_srv *t = arg;
	struct pollfd pfd = {.fd = t->lfd, .events = POLLIN};

	t->e.hs = MTLS_ERR_IO;
	if (poll(&pfd, 1, IO_TIMEOUT_S * 1000) != 1)
		return NULL;
	t->e.fd = accept(t->lfd, NULL, NULL);
	if (t->e.fd < 0)
		return NULL;
	set_timeouts(t->e.fd);
	server_main(&t->e);
	close(t->e.fd);
	return NULL;
}

static inline void tcp_open(tcp_srv *t, mtls_ctx *ctx)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);

	memset(t, 0, sizeof(*t));
	t->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(t->lfd >= 0);
	assert_int_equal(bind(t->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(t->lfd, 1), 0);
	assert_int_equal(getsockname(t->lfd, (struct sockaddr *)&a, &alen), 0);
	t->port = ntohs(a.sin_port);
	t->e.ctx = ctx;
	assert_int_equal(pthread_create(&t->thread, NULL, tcp_main, t), 0);
}

/* The client side's handshake (p->cli.use_io may be set before). */
static inline void pair_client(pair *p, mtls_ctx *cctx, const char *name)
{
	p->cli.ctx = cctx;
	p->cli.name = name;
	end_handshake(&p->cli);
}

/* Client sends msg and reads the echo. 0 or the failing code. */
static inline int pair_echo(pair *p, const char *msg)
{
	size_t len = strlen(msg);
	int r;

	if (p->cli.hs != 0 || p->cli.conn == NULL)
		return p->cli.hs ? p->cli.hs : MTLS_ERR_STATE;
	if ((r = end_write_all(&p->cli, msg, len)) != 0)
		return r;
	r = end_read(&p->cli, len);
	return r > 0 ? 0 : r == 0 ? MTLS_ERR_CLOSED : r;
}

/* Client close_notify, reads the server's (cli.eof), joins the server. */
static inline void pair_close(pair *p)
{
	if (p->cli.conn != NULL) {
		if (p->cli.hs == 0 && p->cli.io_err == 0 &&
		    mtls_close(p->cli.conn) == 0)
			(void)end_read(&p->cli, 0);
		end_facts(&p->cli);
		mtls_conn_free(p->cli.conn);
		p->cli.conn = NULL;
	}
	/* EOF for the server; our read side stays open so that its pending
	 * writes do not fail before it reads our alert. */
	shutdown(p->fds[0], SHUT_WR);
	if (p->running)
		pthread_join(p->thread, NULL);
	p->running = 0;
	close(p->fds[0]);
	close(p->fds[1]);
}

/* One whole connection: handshake, "ping" echoed, close. */
static inline void run_pair(pair *p, mtls_ctx *sctx, mtls_ctx *cctx,
                            const char *name)
{
	pair_open(p, sctx);
	pair_client(p, cctx, name);
	if (p->cli.hs == 0)
		(void)pair_echo(p, "ping");
	pair_close(p);
}

static inline void dump_pair(const pair *p)
{
	print_message("  server: hs=%d (%s) verify=%d io=%d err=\"%s\" "
	              "sni=\"%s\"\n",
	              p->srv.hs, mtls_strerror(p->srv.hs), p->srv.verify,
	              p->srv.io_err, p->srv.error, p->srv.sni);
	print_message("  client: hs=%d (%s) verify=%d io=%d err=\"%s\" "
	              "version=%s peer=%s\n",
	              p->cli.hs, mtls_strerror(p->cli.hs), p->cli.verify,
	              p->cli.io_err, p->cli.error, p->cli.version,
	              p->cli.peer.subject);
}

/* Both ends completed, verified each other, echoed "ping", and closed with
 * close_notify in both directions. */
#define assert_pair_ok(p)                                                    \
	do {                                                                 \
		const pair *p_ = (p);                                        \
		if (p_->srv.hs != 0 || p_->cli.hs != 0 ||                    \
		    p_->cli.io_err != 0 || p_->srv.io_err != 0 ||            \
		    strcmp(p_->cli.data, "ping") != 0 ||                     \
		    strcmp(p_->srv.data, "ping") != 0 || !p_->srv.eof ||     \
		    !p_->cli.eof) {                                          \
			dump_pair(p_);                                       \
			fail_msg("connection did not complete");             \
		}                                                            \
	} while (0)

/* The server refused the client in its handshake with `code`; the client
 * saw a fatal alert: in its handshake on TLS 1.2, on its first read on TLS
 * 1.3 (its handshake ends before the server has judged its certificate). */
#define assert_server_refused(p, ver, code)                                  \
	do {                                                                 \
		const pair *p_ = (p);                                        \
		int cli_ = (ver) == MTLS_TLS1_3 ? p_->cli.io_err             \
		                                : p_->cli.hs;                \
		if (p_->srv.hs != (code) || p_->srv.error[0] == '\0' ||      \
		    cli_ != MTLS_ERR_ALERT ||                                \
		    ((ver) == MTLS_TLS1_3 && p_->cli.hs != 0) ||             \
		    p_->cli.error[0] == '\0' || p_->cli.n_data != 0) {       \
			dump_pair(p_);                                       \
			fail_msg("expected the server to refuse with %d "    \
			         "(%s) and the client to see an alert",      \
			         (code), mtls_strerror(code));               \
		}                                                            \
	} while (0)

/* The client refused the server in its handshake with `code`; the server
 * saw the client's alert in its handshake. */
#define assert_client_refused(p, code)                                       \
	do {                                                                 \
		const pair *p_ = (p);                                        \
		if (p_->cli.hs != (code) || p_->cli.error[0] == '\0' ||      \
		    p_->srv.hs != MTLS_ERR_ALERT ||                          \
		    p_->srv.error[0] == '\0') {                              \
			dump_pair(p_);                                       \
			fail_msg("expected the client to refuse with %d "    \
			         "(%s) and the server to see an alert",      \
			         (code), mtls_strerror(code));               \
		}                                                            \
	} while (0)

#endif
