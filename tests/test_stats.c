/*
 * test_stats.c - per-context handshake counters (mtls_ctx_stats,
 * mtls_ctx_failures): counted once per handshake, on the context that
 * judged it (the SNI host, else the listener), resumptions, failures by
 * reason, abandoned handshakes, many threads at once (the counts are
 * exact, no lock), and the size argument of the public struct.
 */
#include "conn_util.h"

#include <fcntl.h>

static mtls_stats stats_of(const mtls_ctx *ctx)
{
	mtls_stats st;

	assert_int_equal(mtls_ctx_stats(ctx, &st, sizeof(st)), 0);
	return st;
}

static void test_stats_args(void **state)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_SERVER);
	unsigned char big[sizeof(mtls_stats) + 16];
	mtls_stats st;

	(void)state;
	assert_non_null(c);
	assert_int_equal(mtls_ctx_stats(NULL, &st, sizeof(st)),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_stats(c, NULL, sizeof(st)),
	                 MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_ctx_failures(NULL, MTLS_REASON_IO), 0);
	assert_int_equal(mtls_ctx_failures(c, MTLS_REASON_NONE), 0);
	assert_int_equal(mtls_ctx_failures(c, (mtls_reason)MTLS_REASON_COUNT),
	                 0);
	assert_int_equal(mtls_ctx_failures(c, (mtls_reason)-1), 0);
	/* a caller's struct larger than ours: the tail is zeroed */
	memset(big, 0xAB, sizeof(big));
	assert_int_equal(mtls_ctx_stats(c, (mtls_stats *)(void *)big,
	                                sizeof(big)), 0);
	for (size_t i = 0; i < sizeof(big); i++)
		assert_int_equal(big[i], 0);
	/* smaller (an older header): nothing beyond it is written */
	memset(big, 0xAB, sizeof(big));
	assert_int_equal(mtls_ctx_stats(c, (mtls_stats *)(void *)big,
	                                sizeof(unsigned long long)), 0);
	for (size_t i = 0; i < sizeof(unsigned long long); i++)
		assert_int_equal(big[i], 0);
	for (size_t i = sizeof(unsigned long long); i < sizeof(big); i++)
		assert_int_equal(big[i], 0xAB);
	mtls_ctx_free(c);
}

/* Successes, resumptions and failures by reason, on both ends. */
static void test_counts(void **state)
{
	int v = test_version(state);
	mtls_ctx *s, *c, *anon;
	mtls_stats st;
	pair p;

	if (v < 0)
		return;
	s = default_server(v);
	c = default_client(v);
	anon = mk_client(v, NULL, NULL, CA);
	st = stats_of(s);
	assert_true(st.handshakes_ok == 0 && st.handshakes_failed == 0 &&
	            st.handshakes_resumed == 0);
	for (int i = 0; i < 3; i++) {
		run_pair(&p, s, c, "localhost");
		assert_pair_ok(&p);
	}
	for (int i = 0; i < 2; i++)
		run_pair(&p, s, anon, "localhost");

	st = stats_of(s);
	assert_int_equal(st.handshakes_ok, 3);
	assert_int_equal(st.handshakes_failed, 2);
	assert_int_equal(mtls_ctx_failures(s, MTLS_REASON_PEER_NO_CERT), 2);
	/* the second and third resumed the first's session */
	assert_int_equal(st.handshakes_resumed, 2);
	st = stats_of(c);
	assert_int_equal(st.handshakes_ok, 3);
	assert_int_equal(st.handshakes_failed, 0);
	assert_int_equal(st.handshakes_resumed, 2);
	/* a TLS 1.3 client finishes its handshake before the server judges
	 * it: its refusal comes later and the handshake counts as ok */
	st = stats_of(anon);
	if (v == MTLS_TLS1_3) {
		assert_int_equal(st.handshakes_ok, 2);
		assert_int_equal(st.handshakes_failed, 0);
	} else {
		assert_int_equal(st.handshakes_ok, 0);
		assert_int_equal(st.handshakes_failed, 2);
		assert_int_equal(mtls_ctx_failures(anon,
		                                   MTLS_REASON_PEER_ALERT), 2);
	}
	mtls_ctx_free(s);
	mtls_ctx_free(c);
	mtls_ctx_free(anon);
}

/* SNI: each handshake counts on the host that judged it, the others on
 * the listener; their sum is everything served. */
static void test_counts_per_host(void **state)
{
	int v = test_version(state);
	mtls_ctx *l, *h, *c, *anon;
	char *dir, *chain;
	pair p;

	if (v < 0)
		return;
	dir = make_tmpdir();
	chain = make_chain(dir, "admin-server.crt");
	l = default_server(v);
	h = mtls_ctx_new(MTLS_ROLE_SERVER);
	assert_non_null(h);
	check_ok(h, mtls_load_server_pair(h, chain, pki("admin-server.key")));
	check_ok(h, mtls_set_trusted_ca(h, pki(CA)));
	check_ok(h, mtls_ctx_set_tls_versions(h, v, v));
	check_ok(l, mtls_ctx_add_host(l, "admin.example.com", h));
	c = default_client(v);
	check_ok(c, mtls_ctx_set_session_resumption(c, 0));
	anon = mk_client(v, NULL, NULL, CA);
	run_pair(&p, l, c, "admin.example.com");
	assert_pair_ok(&p);
	assert_string_equal(p.srv.host, "admin.example.com");
	run_pair(&p, l, anon, "admin.example.com");
	run_pair(&p, l, c, "localhost");
	assert_pair_ok(&p);

	assert_int_equal(stats_of(h).handshakes_ok, 1);
	assert_int_equal(stats_of(h).handshakes_failed, 1);
	assert_int_equal(mtls_ctx_failures(h, MTLS_REASON_PEER_NO_CERT), 1);
	assert_int_equal(stats_of(l).handshakes_ok, 1);
	assert_int_equal(stats_of(l).handshakes_failed, 0);
	mtls_ctx_free(l);
	mtls_ctx_free(h);
	mtls_ctx_free(c);
	mtls_ctx_free(anon);
	free(chain);
	rm_tree(dir);
}

/* A handshake begun and freed unfinished counts as abandoned; a
 * connection never used counts nothing. */
static void test_abandoned(void **state)
{
	mtls_ctx *s = default_server(0);
	mtls_conn *conn;
	int fds[2];

	(void)state;
	mk_socketpair(fds);
	assert_int_equal(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
	conn = mtls_conn_new(s, fds[1], NULL);
	assert_non_null(conn);
	assert_int_equal(mtls_handshake(conn), MTLS_WANT_READ);
	assert_int_equal(mtls_conn_reason(conn), MTLS_REASON_NONE);
	mtls_conn_free(conn);
	conn = mtls_conn_new(s, fds[1], NULL);
	assert_non_null(conn);
	mtls_conn_free(conn);
	assert_int_equal(mtls_ctx_failures(s, MTLS_REASON_ABANDONED), 1);
	assert_int_equal(stats_of(s).handshakes_failed, 1);
	assert_int_equal(stats_of(s).handshakes_ok, 0);
	close(fds[0]);
	close(fds[1]);
	mtls_ctx_free(s);
}

/* A configuration failure counts too (reason config). */
static void test_config_failure_counted(void **state)
{
	mtls_ctx *c = mtls_ctx_new(MTLS_ROLE_CLIENT);
	mtls_conn *conn;
	int fds[2];

	(void)state;
	assert_non_null(c);
	mk_socketpair(fds);
	conn = mtls_conn_new(c, fds[0], NULL); /* no server name */
	assert_non_null(conn);
	assert_int_equal(mtls_handshake(conn), MTLS_ERR_NOT_CONFIGURED);
	assert_int_equal(mtls_conn_reason(conn), MTLS_REASON_CONFIG);
	mtls_conn_free(conn);
	assert_int_equal(mtls_ctx_failures(c, MTLS_REASON_CONFIG), 1);
	assert_int_equal(stats_of(c).handshakes_failed, 1);
	close(fds[0]);
	close(fds[1]);
	mtls_ctx_free(c);
}

/* ---- many threads ------------------------------------------------------ */

#define THREADS 4
#define PER_THREAD 6

typedef struct worker {
	mtls_ctx *s, *c;
	int ok;
} worker;

static void *work(void *arg)
{
	worker *w = arg;

	for (int i = 0; i < PER_THREAD; i++) {
		pair p;
		run_pair(&p, w->s, w->c, "localhost");
		if (p.srv.hs == 0 && p.cli.hs == 0)
			w->ok++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	int v = test_version(state);
	pthread_t t[THREADS];
	worker w[THREADS];
	mtls_ctx *s, *c;
	mtls_stats st;
	int ok = 0;

	if (v < 0)
		return;
	s = default_server(v);
	c = default_client(v);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (worker){s, c, 0};
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		ok += w[i].ok;
	}
	assert_int_equal(ok, THREADS * PER_THREAD);
	st = stats_of(s);
	assert_int_equal(st.handshakes_ok, THREADS * PER_THREAD);
	assert_int_equal(st.handshakes_failed, 0);
	st = stats_of(c);
	assert_int_equal(st.handshakes_ok, THREADS * PER_THREAD);
	assert_true(st.handshakes_resumed <= st.handshakes_ok);
	assert_int_equal(stats_of(s).handshakes_resumed, st.handshakes_resumed);
	mtls_ctx_free(s);
	mtls_ctx_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stats_args),
	    VTEST(test_counts),
	    VTEST(test_counts_per_host),
	    cmocka_unit_test(test_abandoned),
	    cmocka_unit_test(test_config_failure_counted),
	    VTEST(test_threads),
	};

	pki_dir();
	return cmocka_run_group_tests_name("stats", tests, NULL, NULL);
}
