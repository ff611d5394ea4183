/*
 * test_watch.c - mtls_watch: contexts reload themselves when their files
 * change (rewritten in place, renamed over, a Kubernetes "..data" swap),
 * never from a half-written file, keep their material when the new files
 * are broken, and connections in flight carry on.  With inotify and with
 * polling.  Waits are bounded; none is an assertion about time.
 */
#include "conn_util.h"

#include <poll.h>

#define DEBOUNCE_MS 300u
#define POLL_MS 100u
#define LIMIT_MS 8000

typedef struct fixture {
	char *dir;
	char *crt, *key;  /* the paths the server context loads */
	mtls_ctx *s, *c;
	mtls_watch *w;
	char sha_ec[65], sha_rsa[65];
} fixture;

/* Runs the watch as an event loop would until process() returns
 * non-zero or LIMIT_MS passes; returns that value (0 on the limit).
 * *fails counts negative results seen before (none are expected). */
static int run_watch(mtls_watch *w, int limit_ms)
{
	for (int waited = 0; waited < limit_ms;) {
		int t = mtls_watch_timeout(w), rc;
		struct pollfd pfd = {.fd = mtls_watch_fd(w), .events = POLLIN};

		if (t < 0 || t > 50)
			t = 50;
		if (pfd.fd >= 0)
			(void)poll(&pfd, 1, t);
		else
			usleep((useconds_t)t * 1000);
		waited += t > 0 ? t : 1;
		if ((rc = mtls_watch_process(w)) != 0)
			return rc;
	}
	return 0;
}

/* The SHA-256 of the certificate a new full handshake is served. */
static void served(fixture *f, char out[65])
{
	pair p;

	run_pair(&p, f->s, f->c, "localhost");
	assert_pair_ok(&p);
	memcpy(out, p.cli.peer.sha256, 65);
}

static void setup_ctx(fixture *f, const char *crt, const char *key,
                      unsigned flags)
{
	f->s = mtls_ctx_new(MTLS_ROLE_SERVER);
	f->c = mk_client(0, CLI_CERT, CLI_KEY, CA);
	assert_non_null(f->s);
	check_ok(f->s, mtls_load_server_pair(f->s, crt, key));
	check_ok(f->s, mtls_set_trusted_ca(f->s, pki(CA)));
	check_ok(f->c, mtls_ctx_set_session_resumption(f->c, 0));
	f->w = mtls_watch_new(flags);
	assert_non_null(f->w);
	assert_int_equal(mtls_watch_set_delays(f->w, DEBOUNCE_MS, POLL_MS), 0);
	assert_int_equal(mtls_watch_add_ctx(f->w, f->s), 0);
}

/* A server context loading dir/server.crt and dir/server.key (EC). */
static void setup(fixture *f, unsigned flags)
{
	memset(f, 0, sizeof(*f));
	f->dir = make_tmpdir();
	f->crt = path_in(f->dir, "server.crt");
	f->key = path_in(f->dir, "server.key");
	copy_file(pki(SRV_CERT), f->crt);
	copy_file(pki(SRV_KEY), f->key);
	chmod(f->key, 0600);
	file_sha256(pki("server-ec.crt"), f->sha_ec);
	file_sha256(pki("server-rsa.crt"), f->sha_rsa);
	setup_ctx(f, f->crt, f->key, flags);
}

static void teardown(fixture *f)
{
	mtls_watch_free(f->w);
	mtls_ctx_free(f->s);
	mtls_ctx_free(f->c);
	free(f->crt);
	free(f->key);
	rm_tree(f->dir);
}

/* Writes a file as editors and cert-manager do: a new file renamed over. */
static void rename_over(const char *from, const char *to)
{
	char tmp[TEST_PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s.tmp", to);
	copy_file(from, tmp);
	chmod(tmp, 0600);
	assert_int_equal(rename(tmp, to), 0);
}

static void test_rename_over(void **state)
{
	fixture f;
	char sha[65];
	pair live;

	(void)state;
	setup(&f, 0);
	assert_true(mtls_watch_fd(f.w) >= 0); /* inotify on this machine */
	served(&f, sha);
	assert_string_equal(sha, f.sha_ec);
	pair_open(&live, f.s);
	pair_client(&live, f.c, "localhost");
	assert_int_equal(pair_echo(&live, "before"), 0);

	/* nothing changed: nothing happens */
	assert_int_equal(run_watch(f.w, 2 * DEBOUNCE_MS), 0);

	rename_over(pki("server-rsa.key"), f.key);
	rename_over(pki("server-rsa-chain.pem"), f.crt);
	assert_int_equal(run_watch(f.w, LIMIT_MS), 1);
	assert_null(mtls_watch_error(f.w));
	served(&f, sha);
	assert_string_equal(sha, f.sha_rsa);
	/* the connection made before carries on */
	assert_int_equal(pair_echo(&live, "after"), 0);
	pair_close(&live);
	assert_string_equal(live.cli.data, "beforeafter");
	teardown(&f);
}

/* Rewritten in place in two steps, closing in between, the second step
 * inside the debounce delay: the half-written file is never tried (no
 * failed reload), the whole one is loaded. */
static void test_in_place_two_steps(void **state)
{
	fixture f;
	char sha[65];
	size_t len, half;
	unsigned char *pem;
	int rc, failed = 0;

	(void)state;
	setup(&f, 0);
	copy_file(pki("server-rsa.key"), f.key);
	pem = slurp_pki("server-rsa-chain.pem", &len);
	half = len / 2;
	write_file(f.crt, pem, half); /* truncated PEM: would be refused */
	for (int i = 0; i < 4; i++) { /* 4 x 50 ms < DEBOUNCE_MS */
		usleep(50 * 1000);
		if ((rc = mtls_watch_process(f.w)) < 0)
			failed++;
	}
	write_file(f.crt, pem, len);
	free(pem);
	while ((rc = run_watch(f.w, LIMIT_MS)) < 0)
		failed++;
	assert_int_equal(failed, 0);
	assert_int_equal(rc, 1);
	served(&f, sha);
	assert_string_equal(sha, f.sha_rsa);
	teardown(&f);
}

/* A key that does not match the certificate: refused, the error names
 * the file, the old pair is still served; the repair is picked up. */
static void test_broken_update(void **state)
{
	fixture f;
	char sha[65];
	int rc;

	(void)state;
	setup(&f, 0);
	rename_over(pki("server-rsa-chain.pem"), f.crt); /* key stays EC */
	rc = run_watch(f.w, LIMIT_MS);
	assert_true(rc < 0);
	assert_non_null(mtls_watch_error(f.w));
	assert_non_null(strstr(mtls_watch_error(f.w), "server"));
	served(&f, sha);
	assert_string_equal(sha, f.sha_ec);
	rename_over(pki("server-rsa.key"), f.key);
	assert_int_equal(run_watch(f.w, LIMIT_MS), 1);
	served(&f, sha);
	assert_string_equal(sha, f.sha_rsa);
	teardown(&f);
}

/* The layout of a Kubernetes secret volume: tls.crt -> ..data/tls.crt,
 * ..data -> ..<timestamp>; an update makes a new timestamped directory
 * and renames a new ..data symlink over the old one.  The named files
 * are never written. */
static void k8s_dir(const char *dir, const char *name, const char *crt,
                    const char *key)
{
	char *d = path_in(dir, name), *p;

	assert_int_equal(mkdir(d, 0755), 0);
	p = path_in(d, "tls.crt");
	copy_file(pki(crt), p);
	free(p);
	p = path_in(d, "tls.key");
	copy_file(pki(key), p);
	chmod(p, 0600);
	free(p);
	free(d);
}

static void test_k8s_data_swap(void **state)
{
	fixture f;
	char sha[65], *link_tmp, *data, *crt, *key;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.dir = make_tmpdir();
	file_sha256(pki("server-ec.crt"), f.sha_ec);
	file_sha256(pki("server-rsa.crt"), f.sha_rsa);
	k8s_dir(f.dir, "..2026_11_28_10_00_00.1", SRV_CERT, SRV_KEY);
	data = path_in(f.dir, "..data");
	link_tmp = path_in(f.dir, "..data_tmp");
	crt = path_in(f.dir, "tls.crt");
	key = path_in(f.dir, "tls.key");
	assert_int_equal(symlink("..2026_11_28_10_00_00.1", data), 0);
	assert_int_equal(symlink("..data/tls.crt", crt), 0);
	assert_int_equal(symlink("..data/tls.key", key), 0);
	setup_ctx(&f, crt, key, 0);
	served(&f, sha);
	assert_string_equal(sha, f.sha_ec);

	k8s_dir(f.dir, "..2026_11_28_11_00_00.2", "server-rsa-chain.pem",
	        "server-rsa.key");
	assert_int_equal(symlink("..2026_11_28_11_00_00.2", link_tmp), 0);
	assert_int_equal(rename(link_tmp, data), 0);
	assert_int_equal(run_watch(f.w, LIMIT_MS), 1);
	served(&f, sha);
	assert_string_equal(sha, f.sha_rsa);
	mtls_watch_free(f.w);
	mtls_ctx_free(f.s);
	mtls_ctx_free(f.c);
	free(link_tmp);
	free(data);
	free(crt);
	free(key);
	rm_tree(f.dir);
}

/* A file written beside the watched ones all the time (a log next to
 * the configuration) must not hold off the reload of a real change. */
static void test_unrelated_noise(void **state)
{
	fixture f;
	char sha[65], *log = NULL;
	int rc = 0;

	(void)state;
	setup(&f, 0);
	log = path_in(f.dir, "proxy.log");
	rename_over(pki("server-rsa.key"), f.key);
	rename_over(pki("server-rsa-chain.pem"), f.crt);
	for (int i = 0; i < LIMIT_MS / 100 && rc == 0; i++) {
		char line[64];
		int n = snprintf(line, sizeof(line), "line %d\n", i);

		write_file(log, line, (size_t)n); /* every 100 ms */
		rc = run_watch(f.w, 100);
	}
	assert_int_equal(rc, 1);
	served(&f, sha);
	assert_string_equal(sha, f.sha_rsa);
	free(log);
	teardown(&f);
}

/* Without inotify: the same rotation found by looking. */
static void test_polling(void **state)
{
	fixture f;
	char sha[65];

	(void)state;
	setup(&f, MTLS_WATCH_POLL);
	assert_int_equal(mtls_watch_fd(f.w), -1);
	assert_true(mtls_watch_timeout(f.w) >= 0);
	rename_over(pki("server-rsa.key"), f.key);
	rename_over(pki("server-rsa-chain.pem"), f.crt);
	assert_int_equal(run_watch(f.w, LIMIT_MS), 1);
	served(&f, sha);
	assert_string_equal(sha, f.sha_rsa);
	teardown(&f);
}

/* Host contexts are watched with their listener; a program's own file is
 * reported and nothing is reloaded for it; NOTIFY_ONLY reloads nothing. */
static void test_hosts_and_notify(void **state)
{
	fixture f;
	char sha[65], *conf;
	mtls_ctx *host, *lst;
	mtls_watch *w2;
	pair p;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.dir = make_tmpdir();
	f.crt = path_in(f.dir, "host.crt");
	f.key = path_in(f.dir, "host.key");
	conf = path_in(f.dir, "app.conf");
	write_file(conf, "a\n", 2);
	copy_file(pki(SRV_CERT), f.crt);
	copy_file(pki(SRV_KEY), f.key);
	chmod(f.key, 0600);
	file_sha256(pki("server-rsa.crt"), f.sha_rsa);
	lst = mk_server(0, "server-rsa-chain.pem", "server-rsa.key", CA);
	host = mtls_ctx_new(MTLS_ROLE_SERVER);
	check_ok(host, mtls_load_server_pair(host, f.crt, f.key));
	check_ok(host, mtls_set_trusted_ca(host, pki(CA)));
	check_ok(lst, mtls_ctx_add_host(lst, "localhost", host));
	f.c = mk_client(0, CLI_CERT, CLI_KEY, CA);
	check_ok(f.c, mtls_ctx_set_session_resumption(f.c, 0));
	f.w = mtls_watch_new(0);
	w2 = mtls_watch_new(MTLS_WATCH_NOTIFY_ONLY);
	assert_non_null(w2);
	assert_int_equal(mtls_watch_set_delays(f.w, DEBOUNCE_MS, POLL_MS), 0);
	assert_int_equal(mtls_watch_set_delays(w2, DEBOUNCE_MS, POLL_MS), 0);
	assert_int_equal(mtls_watch_add_ctx(f.w, lst), 0);
	assert_int_equal(mtls_watch_add_ctx(w2, lst), 0);
	assert_int_equal(mtls_watch_add_file(f.w, conf), 0);
	assert_int_equal(mtls_watch_add_file(f.w, NULL), MTLS_ERR_INVALID_ARG);
	mtls_ctx_free(host); /* the listener and the watches keep it */

	write_file(conf, "b\n", 2);
	assert_int_equal(run_watch(f.w, LIMIT_MS), 1); /* reported */
	rename_over(pki("server-rsa.key"), f.key);
	rename_over(pki("server-rsa-chain.pem"), f.crt);
	assert_int_equal(run_watch(w2, LIMIT_MS), 1); /* seen, not reloaded */
	run_pair(&p, lst, f.c, "localhost");
	assert_pair_ok(&p);
	file_sha256(pki("server-ec.crt"), sha);
	assert_string_equal(p.cli.peer.sha256, sha);
	assert_int_equal(run_watch(f.w, LIMIT_MS), 1); /* the host reloaded */
	run_pair(&p, lst, f.c, "localhost");
	assert_pair_ok(&p);
	assert_string_equal(p.cli.peer.sha256, f.sha_rsa);
	mtls_watch_free(w2);
	mtls_watch_free(f.w);
	mtls_ctx_free(lst);
	mtls_ctx_free(f.c);
	free(conf);
	free(f.crt);
	free(f.key);
	rm_tree(f.dir);
}

static void test_bad_args(void **state)
{
	mtls_watch *w = mtls_watch_new(MTLS_WATCH_POLL);

	(void)state;
	assert_int_equal(mtls_watch_add_ctx(NULL, NULL), MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_watch_add_ctx(w, NULL), MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_watch_set_delays(w, 10, 0), MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_watch_process(NULL), MTLS_ERR_INVALID_ARG);
	assert_int_equal(mtls_watch_fd(NULL), -1);
	assert_int_equal(mtls_watch_timeout(w), -1); /* nothing watched */
	assert_int_equal(mtls_watch_process(w), 0);
	assert_null(mtls_watch_error(w));
	mtls_watch_free(w);
	mtls_watch_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rename_over),
		cmocka_unit_test(test_in_place_two_steps),
		cmocka_unit_test(test_broken_update),
		cmocka_unit_test(test_k8s_data_swap),
		cmocka_unit_test(test_unrelated_noise),
		cmocka_unit_test(test_polling),
		cmocka_unit_test(test_hosts_and_notify),
		cmocka_unit_test(test_bad_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
