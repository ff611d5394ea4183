/*
 * test_tickets.c - session-ticket keys shared through a file
 * (mtls_ctx_set_ticket_key_file): two server contexts standing for two
 * instances resume each other's sessions; rotation (first key encrypts,
 * every key decrypts, a removed key's tickets end); a ticket is still
 * refused by another policy or another host's certificate; bad files.
 */
#include "conn_util.h"

#include <sys/stat.h>

#define KEY_LEN 80

/* dir/name holding one 80-byte key per letter of `keys` (test keys:
 * the letter repeated), mode 0600. */
static char *key_file(const char *dir, const char *name, const char *keys)
{
	size_t n = strlen(keys);
	unsigned char *buf = malloc(n * KEY_LEN + 1);
	char *p = path_in(dir, name);

	assert_non_null(buf);
	for (size_t i = 0; i < n; i++)
		memset(buf + i * KEY_LEN, keys[i], KEY_LEN);
	write_file(p, buf, n * KEY_LEN);
	assert_int_equal(chmod(p, 0600), 0);
	free(buf);
	return p;
}

static mtls_ctx *keyed_server(int ver, const char *file)
{
	mtls_ctx *s = default_server(ver);

	if (file != NULL)
		check_ok(s, mtls_ctx_set_ticket_key_file(s, file));
	return s;
}

/* A fresh client's full handshake on `first`, then a connection to
 * `second`: whether that one resumed (both ends must agree). */
static int resumes_on(int ver, mtls_ctx *first, mtls_ctx *second)
{
	mtls_ctx *c = default_client(ver);
	pair p;

	run_pair(&p, first, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.resumed, 0);
	run_pair(&p, second, c, "localhost");
	assert_pair_ok(&p);
	if (p.cli.resumed != p.srv.resumed) {
		dump_pair(&p);
		fail_msg("client resumed=%d, server resumed=%d",
		         p.cli.resumed, p.srv.resumed);
	}
	/* resumed or not, the server reports the client's identity */
	assert_int_equal(p.srv.verify, 0);
	assert_string_equal(p.srv.peer.uri[0], CLIENT_URI);
	mtls_ctx_free(c);
	return p.srv.resumed;
}

/* Two instances sharing a file resume each other's sessions; without
 * the file (random keys per context) they do not. */
static void test_shared_file(void **state)
{
	int ver = test_version(state);
	char *dir = make_tmpdir(), *k = key_file(dir, "k", "A");
	mtls_ctx *s1 = keyed_server(ver, k), *s2 = keyed_server(ver, k);
	mtls_ctx *plain1 = keyed_server(ver, NULL);
	mtls_ctx *plain2 = keyed_server(ver, NULL);

	assert_int_equal(resumes_on(ver, s1, s2), 1);
	assert_int_equal(resumes_on(ver, s2, s1), 1);
	assert_int_equal(resumes_on(ver, s1, s1), 1);
	/* controls */
	assert_int_equal(resumes_on(ver, plain1, plain2), 0);
	assert_int_equal(resumes_on(ver, plain1, plain1), 1);
	assert_int_equal(resumes_on(ver, s1, plain1), 0);
	assert_int_equal(resumes_on(ver, plain1, s1), 0);
	/* a different file */
	free(k);
	k = key_file(dir, "k2", "B");
	check_ok(s2, mtls_ctx_set_ticket_key_file(s2, k));
	assert_int_equal(resumes_on(ver, s1, s2), 0);
	/* back to random keys */
	check_ok(s2, mtls_ctx_set_ticket_key_file(s2, NULL));
	assert_int_equal(resumes_on(ver, s1, s2), 0);
	assert_int_equal(resumes_on(ver, s2, s2), 1);
	mtls_ctx_free(s1);
	mtls_ctx_free(s2);
	mtls_ctx_free(plain1);
	mtls_ctx_free(plain2);
	free(k);
	rm_tree(dir);
}

/* Rotation: [A] -> [B, A] -> [B].  The first key encrypts, every listed
 * key decrypts; a reload re-reads the file. */
static void test_rotation(void **state)
{
	int ver = test_version(state);
	char *dir = make_tmpdir(), *fa = key_file(dir, "a", "A");
	char *fba = key_file(dir, "ba", "BA"), *fb = key_file(dir, "b", "B");
	char *live = key_file(dir, "live", "A");
	mtls_ctx *sa = keyed_server(ver, fa), *sba = keyed_server(ver, fba);
	mtls_ctx *sb = keyed_server(ver, fb), *s = keyed_server(ver, live);

	/* old tickets decrypt while their key is listed */
	assert_int_equal(resumes_on(ver, sa, sba), 1);
	/* new tickets are made with the first key */
	assert_int_equal(resumes_on(ver, sba, sb), 1);
	assert_int_equal(resumes_on(ver, sba, sa), 0);
	/* and not after the old key is removed */
	assert_int_equal(resumes_on(ver, sa, sb), 0);

	/* the same through one context's reloads of one file */
	assert_int_equal(resumes_on(ver, sa, s), 1);
	free(key_file(dir, "live", "BA"));
	check_ok(s, mtls_ctx_reload(s));
	assert_int_equal(resumes_on(ver, sa, s), 1);
	assert_int_equal(resumes_on(ver, s, sb), 1);
	free(key_file(dir, "live", "B"));
	check_ok(s, mtls_ctx_reload(s));
	assert_int_equal(resumes_on(ver, sa, s), 0);
	assert_int_equal(resumes_on(ver, sb, s), 1);
	/* a reload that fails keeps the keys it had */
	write_file(live, "short", 5);
	assert_int_equal(mtls_ctx_reload(s), MTLS_ERR_KEY_PARSE);
	assert_int_equal(resumes_on(ver, sb, s), 1);

	mtls_ctx_free(sa);
	mtls_ctx_free(sba);
	mtls_ctx_free(sb);
	mtls_ctx_free(s);
	free(fa);
	free(fba);
	free(fb);
	free(live);
	rm_tree(dir);
}

/* The same keys do not carry a session across policies or hosts. */
static void test_policy_and_host_bound(void **state)
{
	int ver = test_version(state);
	char *dir = make_tmpdir(), *k = key_file(dir, "k", "A");
	mtls_ctx *s1 = keyed_server(ver, k), *s2 = keyed_server(ver, k);

	assert_int_equal(resumes_on(ver, s1, s2), 1);
	/* an allow list that still admits the client: another policy */
	check_ok(s2, mtls_ctx_allow_peer(s2, MTLS_ALLOW_URI, CLIENT_URI));
	assert_int_equal(resumes_on(ver, s1, s2), 0);
	assert_int_equal(resumes_on(ver, s2, s1), 0);
	mtls_ctx_free(s2);
	/* optional client certificates: another policy */
	s2 = keyed_server(ver, k);
	check_ok(s2, mtls_ctx_set_verify(s2, MTLS_VERIFY_OPTIONAL));
	assert_int_equal(resumes_on(ver, s1, s2), 0);
	mtls_ctx_free(s2);
	/* a CRL: another policy */
	s2 = keyed_server(ver, k);
	check_ok(s2, mtls_set_crl(s2, pki("int.crl")));
	assert_int_equal(resumes_on(ver, s1, s2), 0);
	mtls_ctx_free(s2);
	/* the name is only a label: it does not matter */
	s2 = keyed_server(ver, k);
	check_ok(s2, mtls_ctx_set_name(s2, "instance-2"));
	assert_int_equal(resumes_on(ver, s1, s2), 1);
	mtls_ctx_free(s2);
	mtls_ctx_free(s1);
	free(k);
	rm_tree(dir);
}

/* Another host (its own certificate), same keys and client policy. */
static void test_host_bound(void **state)
{
	int ver = test_version(state);
	char *dir = make_tmpdir(), *k = key_file(dir, "k", "A");
	mtls_ctx *s1 = keyed_server(ver, k);
	mtls_ctx *h = mk_server(ver, "server-rsa.crt", "server-rsa.key", CA);
	mtls_ctx *c = default_client(ver);
	pair p;

	check_ok(h, mtls_ctx_set_ticket_key_file(h, k));
	/* the client would refuse the RSA leaf without its intermediate:
	 * skip server verification, this is about the server's decision */
	check_ok(c, mtls_ctx_insecure_skip_verify(c));
	run_pair(&p, s1, c, "localhost");
	assert_pair_ok(&p);
	run_pair(&p, h, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.resumed, 0);
	assert_int_equal(p.srv.verify, 0);
	run_pair(&p, h, c, "localhost");
	assert_pair_ok(&p);
	assert_int_equal(p.srv.resumed, 1);
	mtls_ctx_free(c);
	mtls_ctx_free(h);
	mtls_ctx_free(s1);
	free(k);
	rm_tree(dir);
}

static void test_bad_files(void **state)
{
	char *dir = make_tmpdir(), *k = key_file(dir, "k", "A");
	char *big = key_file(dir, "big", "ABCDEFGHIJKLMNOPQ"); /* 17 */
	char *odd = path_in(dir, "odd"), *none = path_in(dir, "none");
	mtls_ctx *s = mtls_ctx_new(MTLS_ROLE_SERVER);
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);

	(void)state;
	assert_int_equal(mtls_ctx_set_ticket_key_file(NULL, k),
	                 MTLS_ERR_INVALID_ARG);
	check_err(c, mtls_ctx_set_ticket_key_file(c, k), MTLS_ERR_WRONG_ROLE,
	          "server contexts only");
	check_err(s, mtls_ctx_set_ticket_key_file(s, none),
	          MTLS_ERR_FILE_NOT_FOUND, "none");
	write_file(odd, "0123456789", 10);
	check_err(s, mtls_ctx_set_ticket_key_file(s, odd), MTLS_ERR_KEY_PARSE,
	          "odd: 10 bytes");
	check_err(s, mtls_ctx_set_ticket_key_file(s, big), MTLS_ERR_KEY_PARSE,
	          "1 to 16 keys");
	write_file(odd, "", 0);
	check_err(s, mtls_ctx_set_ticket_key_file(s, odd),
	          MTLS_ERR_FILE_EMPTY, "odd");
	/* readable by others: accepted, with a warning naming the file */
	assert_int_equal(chmod(k, 0644), 0);
	tlog_start();
	check_ok(s, mtls_ctx_set_ticket_key_file(s, k));
	tlog_stop();
	assert_int_equal(tlog_count(MTLS_LOG_WARN, "readable by others"), 1);
	assert_int_equal(tlog_count(MTLS_LOG_WARN, "/k is readable"), 1);
	/* no key byte in any message */
	for (int lv = MTLS_LOG_ERROR; lv <= MTLS_LOG_DEBUG; lv++)
		assert_int_equal(tlog_count(lv, "AAAA"), 0);
	assert_int_equal(chmod(k, 0600), 0);
	tlog_start();
	check_ok(s, mtls_ctx_set_ticket_key_file(s, k));
	tlog_stop();
	assert_int_equal(tlog_count(MTLS_LOG_WARN, "readable"), 0);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
	free(k);
	free(big);
	free(odd);
	free(none);
	rm_tree(dir);
}

/* A TLS 1.3 ticket opened on another machine: mbedTLS's creation time
 * comes from a boot-time clock, meaningless elsewhere; opening the ticket
 * restates it on this machine's clock from the wall-clock issue time. */
static void test_tls13_age_restated(void **state)
{
#if MTLS_HAVE_TLS13 && defined(MBEDTLS_HAVE_TIME)
	static const unsigned char fp[32] = {1};
	mtls_tkfile f = {.n = 1};
	unsigned char keys[MTLS_TKEY_FILE_LEN], buf[4096];
	mbedtls_ssl_session in, out;
	const mtls_tkey *key;
	mtls_tkeys k = {0};
	mbedtls_ms_time_t now, got = 0;
	uint32_t life = 0;
	size_t len = 0;

	(void)state;
	memset(keys, 'K', sizeof(keys));
	f.keys = keys;
	assert_int_equal(mtls__tkeys_derive(&f, fp, &k), 0);
	mbedtls_ssl_session_init(&in);
	mbedtls_ssl_session_init(&out);
	in.MBEDTLS_PRIVATE(tls_version) = MBEDTLS_SSL_VERSION_TLS1_3;
	in.MBEDTLS_PRIVATE(endpoint) = MBEDTLS_SSL_IS_SERVER;
	in.MBEDTLS_PRIVATE(ciphersuite) = 0x1301;
	in.MBEDTLS_PRIVATE(resumption_key_len) = 32;
	/* "the other machine booted ten days before this one" */
	in.MBEDTLS_PRIVATE(ticket_creation_time) =
	    mbedtls_ms_time() + (mbedtls_ms_time_t)10 * 86400 * 1000;
	assert_int_equal(mtls__tkeys_write(&k, &in, buf, buf + sizeof(buf),
	                                   &len, &life),
	                 0);
	assert_int_equal(life, MTLS_TICKET_LIFETIME);
	assert_non_null(key = mtls__tkeys_find(&k, buf, len));
	assert_int_equal(mtls__tkeys_parse(key, &out, buf, len), 0);
	now = mbedtls_ms_time();
	assert_int_equal(mbedtls_ssl_session_get_ticket_creation_time(&out,
	                                                              &got),
	                 0);
	/* issued just now: within a minute of this machine's clock */
	assert_true(got <= now && now - got < 60000);
	/* a flipped bit anywhere in the ticket: refused */
	assert_int_equal(mtls__tkeys_write(&k, &in, buf, buf + sizeof(buf),
	                                   &len, &life),
	                 0);
	buf[len / 2] ^= 1;
	mbedtls_ssl_session_free(&out);
	mbedtls_ssl_session_init(&out);
	assert_int_equal(mtls__tkeys_parse(key, &out, buf, len),
	                 MBEDTLS_ERR_SSL_INVALID_MAC);
	mbedtls_ssl_session_free(&in);
	mbedtls_ssl_session_free(&out);
	mtls__tkeys_free(&k);
#else
	(void)state;
	skip();
#endif
}

/* ---- TLS 1.3 resumption without (EC)DHE (psk_ke) -------------------------- */

/* The client's transport, keeping the first bytes the server sent: its
 * ServerHello is in clear. */
typedef struct tap {
	int fd;
	unsigned char in[4096];
	size_t n_in;
} tap;

static ssize_t tap_send(void *user, const void *buf, size_t len)
{
	tap *t = user;
	ssize_t n = send(t->fd, buf, len, MSG_NOSIGNAL);

	return n >= 0 ? n : -1;
}

static ssize_t tap_recv(void *user, void *buf, size_t len)
{
	tap *t = user;
	ssize_t n = recv(t->fd, buf, len, 0);

	if (n > 0 && t->n_in < sizeof(t->in)) {
		size_t k = (size_t)n < sizeof(t->in) - t->n_in
		               ? (size_t)n
		               : sizeof(t->in) - t->n_in;
		memcpy(t->in + t->n_in, buf, k);
		t->n_in += k;
	}
	return n >= 0 ? n : -1;
}

#define SH_KEY_SHARE 1
#define SH_PSK 2
/* The extensions of the ServerHello at the start of what the client read:
 * SH_KEY_SHARE, SH_PSK; -1 when it is not a well-formed ServerHello. */
static int server_hello_exts(const tap *t)
{
	const unsigned char *p = t->in, *stop;
	size_t n, ext_len;
	int found = 0;

	/* record header, handshake header, version, random */
	if (t->n_in < 5 + 4 + 2 + 32 + 1 || p[0] != 0x16 || p[5] != 0x02)
		return -1;
	stop = p + 5 + ((size_t)p[3] << 8 | p[4]);
	if (stop > p + t->n_in)
		return -1;
	p += 5 + 4 + 2 + 32;
	n = *p++;
	if (p + n + 2 + 1 + 2 > stop)
		return -1;
	p += n + 2 + 1;
	ext_len = (size_t)p[0] << 8 | p[1];
	p += 2;
	if (p + ext_len > stop)
		return -1;
	stop = p + ext_len;
	while (p + 4 <= stop) {
		unsigned type = (unsigned)p[0] << 8 | p[1];
		size_t len = (size_t)p[2] << 8 | p[3];
		if (p + 4 + len > stop)
			return -1;
		found |= type == 51 ? SH_KEY_SHARE : type == 41 ? SH_PSK : 0;
		p += 4 + len;
	}
	return p == stop ? found : -1;
}

/* One connection from c to s (name: SNI) with "ping" echoed: whether the
 * server resumed, and the ServerHello's extensions in *exts. */
static int psk_conn(mtls_ctx *s, mtls_ctx *c, const char *name, int *exts)
{
	tap t;
	pair p;

	memset(&t, 0, sizeof(t));
	pair_open(&p, s);
	t.fd = p.cli.fd;
	p.cli.ctx = c;
	p.cli.conn = mtls_conn_new_io(c, tap_send, tap_recv, &t, name);
	assert_non_null(p.cli.conn);
	p.cli.hs = mtls_handshake(p.cli.conn);
	if (p.cli.hs == 0) {
		p.cli.resumed = mtls_conn_resumed(p.cli.conn);
		(void)pair_echo(&p, "ping");
		/* ends the server's echo loop after its tickets were read */
	} else {
		end_error(&p.cli);
	}
	pair_close(&p);
	if (p.cli.hs != 0 || p.srv.hs != 0 || strcmp(p.srv.data, "ping") != 0 ||
	    p.cli.resumed != p.srv.resumed) {
		dump_pair(&p);
		fail_msg("connection failed, or the ends disagree on "
		         "resumption (client %d, server %d)", p.cli.resumed,
		         p.srv.resumed);
	}
	/* resumed or not, the server knows the client */
	assert_int_equal(p.srv.verify, 0);
	assert_string_equal(p.srv.peer.uri[0], CLIENT_URI);
	*exts = server_hello_exts(&t);
	return p.srv.resumed;
}

/* A fresh full handshake, then a second connection: 1 + its ServerHello
 * extensions if resumed, 0 if not. */
static int resume_exts(mtls_ctx *first, mtls_ctx *second, int client_psk_ke,
                       const char *name)
{
	mtls_ctx *c = default_client(MTLS_TLS1_3);
	int exts, r;

	if (client_psk_ke)
		check_ok(c, mtls_ctx_set_tls13_resumption_kex(
		                c, MTLS_TLS13_PSK_KE));
	if (strcmp(name, "localhost") != 0)
		check_ok(c, mtls_ctx_insecure_skip_verify(c));
	assert_int_equal(psk_conn(first, c, name, &exts), 0);
	assert_int_equal(exts, SH_KEY_SHARE); /* a full handshake */
	r = psk_conn(second, c, name, &exts);
	mtls_ctx_free(c);
	return r ? 1 + exts : 0;
}

/* Whether a server here can resume with psk_ke (test_psk_ke_setter checks
 * the refusal where it cannot); skips the test if not. */
static void need_psk_ke_server(void)
{
	mtls_ctx *s;
	int ok;

	if (!have_tls13())
		skip();
	s = mtls_ctx_new(MTLS_ROLE_SERVER);
	assert_non_null(s);
	ok = mtls_ctx_set_tls13_resumption_kex(s, MTLS_TLS13_PSK_KE) == 0;
	mtls_ctx_free(s);
	if (!ok) {
		print_message("  (server psk_ke needs the tuned mbedTLS: "
		              "skipping)\n");
		skip();
	}
}

#define RESUMED_DHE (1 + (SH_KEY_SHARE | SH_PSK))
#define RESUMED_PSK_KE (1 + SH_PSK)

static void test_psk_ke_setter(void **state)
{
	mtls_ctx *s = mtls_ctx_new(MTLS_ROLE_SERVER);
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	int srv_ok = 0, cli_ok = 0;

	(void)state;
	assert_non_null(s);
	assert_non_null(c);
#if MTLS_HAVE_TLS13
	cli_ok = 1;
#if defined(MBEDTLS_SSL_TLS1_3_PSK_KE_PREFERRED)
	srv_ok = 1;
#endif
#endif
	assert_int_equal(mtls_ctx_set_tls13_resumption_kex(
	                     s, (mtls_tls13_kex)7),
	                 MTLS_ERR_INVALID_ARG);
	assert_non_null(mtls_ctx_error(s));
	assert_int_equal(mtls_ctx_set_tls13_resumption_kex(NULL,
	                                                   MTLS_TLS13_PSK_KE),
	                 MTLS_ERR_INVALID_ARG);
	/* the default is accepted everywhere */
	check_ok(s, mtls_ctx_set_tls13_resumption_kex(s, MTLS_TLS13_PSK_DHE_KE));
	check_ok(c, mtls_ctx_set_tls13_resumption_kex(c, MTLS_TLS13_PSK_DHE_KE));
	assert_int_equal(mtls_ctx_set_tls13_resumption_kex(s, MTLS_TLS13_PSK_KE),
	                 srv_ok ? 0 : MTLS_ERR_UNSUPPORTED);
	if (!srv_ok) {
		assert_non_null(strstr(mtls_ctx_error(s), "psk_ke"));
		assert_non_null(strstr(mtls_ctx_error(s), "not available"));
		/* unchanged: still the default */
		assert_int_equal(s->psk_ke, 0);
	}
	assert_int_equal(mtls_ctx_set_tls13_resumption_kex(c, MTLS_TLS13_PSK_KE),
	                 cli_ok ? 0 : MTLS_ERR_UNSUPPORTED);
	assert_int_equal(c->psk_ke, cli_ok);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

/* psk_ke when both ends want it, psk_dhe_ke otherwise; identity kept. */
static void test_psk_ke_resumption(void **state)
{
	mtls_ctx *s, *dhe;

	(void)state;
	need_psk_ke_server();
	s = default_server(MTLS_TLS1_3);
	dhe = default_server(MTLS_TLS1_3);
	check_ok(s, mtls_ctx_set_tls13_resumption_kex(s, MTLS_TLS13_PSK_KE));
	assert_int_equal(resume_exts(s, s, 1, "localhost"), RESUMED_PSK_KE);
	/* a client that offers psk_dhe_ke only (the default) */
	assert_int_equal(resume_exts(s, s, 0, "localhost"), RESUMED_DHE);
	/* a server left at the default, a client offering both */
	assert_int_equal(resume_exts(dhe, dhe, 1, "localhost"), RESUMED_DHE);
	/* switched back off: a new snapshot, psk_dhe_ke again */
	check_ok(s, mtls_ctx_set_tls13_resumption_kex(s, MTLS_TLS13_PSK_DHE_KE));
	assert_int_equal(resume_exts(s, s, 1, "localhost"), RESUMED_DHE);
	mtls_ctx_free(dhe);
	mtls_ctx_free(s);
}

/* Under psk_ke, tickets stay bound to their policy and host; each SNI
 * host decides for its own tickets. */
static void test_psk_ke_bound(void **state)
{
	char *dir, *k;
	mtls_ctx *s1, *s2, *l, *h;

	(void)state;
	need_psk_ke_server();
	dir = make_tmpdir();
	k = key_file(dir, "k", "A");
	s1 = keyed_server(MTLS_TLS1_3, k);
	s2 = keyed_server(MTLS_TLS1_3, k);
	check_ok(s1, mtls_ctx_set_tls13_resumption_kex(s1, MTLS_TLS13_PSK_KE));
	check_ok(s2, mtls_ctx_set_tls13_resumption_kex(s2, MTLS_TLS13_PSK_KE));
	/* two instances sharing keys: psk_ke across them */
	assert_int_equal(resume_exts(s1, s2, 1, "localhost"), RESUMED_PSK_KE);
	/* another policy: refused, a full handshake */
	check_ok(s2, mtls_ctx_allow_peer(s2, MTLS_ALLOW_URI, CLIENT_URI));
	assert_int_equal(resume_exts(s1, s2, 1, "localhost"), 0);
	mtls_ctx_free(s2);
	/* another host's certificate: refused */
	s2 = mk_server(MTLS_TLS1_3, "server-rsa.crt", "server-rsa.key", CA);
	check_ok(s2, mtls_ctx_set_ticket_key_file(s2, k));
	check_ok(s2, mtls_ctx_set_tls13_resumption_kex(s2, MTLS_TLS13_PSK_KE));
	assert_int_equal(resume_exts(s1, s2, 1, "h.example.com"), 0);
	/* SNI: a listener at the default with a psk_ke host; then the
	 * other way round */
	l = default_server(MTLS_TLS1_3);
	check_ok(l, mtls_ctx_add_host(l, "h.example.com", s2));
	assert_int_equal(resume_exts(l, l, 1, "h.example.com"), RESUMED_PSK_KE);
	assert_int_equal(resume_exts(l, l, 1, "localhost"), RESUMED_DHE);
	mtls_ctx_free(l);
	l = default_server(MTLS_TLS1_3);
	check_ok(l, mtls_ctx_set_tls13_resumption_kex(l, MTLS_TLS13_PSK_KE));
	h = mk_server(MTLS_TLS1_3, "server-rsa.crt", "server-rsa.key", CA);
	check_ok(l, mtls_ctx_add_host(l, "h.example.com", h));
	assert_int_equal(resume_exts(l, l, 1, "h.example.com"), RESUMED_DHE);
	assert_int_equal(resume_exts(l, l, 1, "localhost"), RESUMED_PSK_KE);
	mtls_ctx_free(h);
	mtls_ctx_free(l);
	mtls_ctx_free(s2);
	mtls_ctx_free(s1);
	free(k);
	rm_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    VTEST(test_shared_file),
	    VTEST(test_rotation),
	    VTEST(test_policy_and_host_bound),
	    VTEST(test_host_bound),
	    cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_tls13_age_restated),
	    cmocka_unit_test(test_psk_ke_setter),
	    cmocka_unit_test(test_psk_ke_resumption),
	    cmocka_unit_test(test_psk_ke_bound),
	};

	pki_dir();
	return cmocka_run_group_tests_name("tickets", tests, NULL, NULL);
}
