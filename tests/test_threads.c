/*
 * test_threads.c - one server context and one client context shared by
 * N threads, each making M connections at once (each with its own server
 * thread over a socket pair), while another thread reloads the server
 * context in a loop, swapping its pair between two certificates.  Every
 * handshake must succeed and present one of the two.
 *
 * Run under ASan by `make check-asan` like every test; ThreadSanitizer is
 * not required (mbedTLS from Debian is not instrumented).
 *
 * cmocka's assertions are only used on the main thread: workers count.
 */
#include "conn_util.h"

#include <stdatomic.h>

#define N_THREADS 4
#define M_CONNS 10
#define MIN_RELOADS 5

typedef struct shared {
	mtls_ctx *server, *client;
	char *pair_path;          /* the server's combined cert+key file */
	char *variant[2];         /* combined files swapped in */
	char sha[2][65];          /* their leaves */
	atomic_int done_workers;
	atomic_int ok, failed, resumed, bad_cert;
	atomic_int reloads, reload_failures;
	pthread_mutex_t lock;
	char first_error[1600];
} shared;

static void note_error(shared *sh, const pair *p)
{
	pthread_mutex_lock(&sh->lock);
	if (sh->first_error[0] == '\0')
		snprintf(sh->first_error, sizeof(sh->first_error),
		         "server hs=%d io=%d \"%.600s\"; client hs=%d io=%d \"%.600s\"",
		         p->srv.hs, p->srv.io_err, p->srv.error, p->cli.hs,
		         p->cli.io_err, p->cli.error);
	pthread_mutex_unlock(&sh->lock);
}

/* pair_open without assertions, for worker threads. */
static int open_pair(pair *p, mtls_ctx *sctx)
{
	struct timeval tv = {.tv_sec = IO_TIMEOUT_S};

	memset(p, 0, sizeof(*p));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, p->fds) != 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		setsockopt(p->fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(p->fds[i], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	p->cli.fd = p->fds[0];
	p->srv.fd = p->fds[1];
	p->srv.ctx = sctx;
	if (pthread_create(&p->thread, NULL, server_main, &p->srv) != 0) {
		close(p->fds[0]);
		close(p->fds[1]);
		return -1;
	}
	p->running = 1;
	return 0;
}

static void *worker(void *arg)
{
	shared *sh = arg;
	pair *p = malloc(sizeof(*p));

	for (int i = 0; p != NULL && i < M_CONNS; i++) {
		int echo = MTLS_ERR_STATE;
		if (open_pair(p, sh->server) != 0) {
			atomic_fetch_add(&sh->failed, 1);
			continue;
		}
		pair_client(p, sh->client, "localhost");
		if (p->cli.hs == 0)
			echo = pair_echo(p, "ping");
		pair_close(p);
		if (p->srv.hs != 0 || p->cli.hs != 0 || echo != 0 ||
		    p->srv.verify != 0 || p->cli.verify != 0 || !p->srv.eof ||
		    !p->cli.eof || strcmp(p->srv.data, "ping") != 0) {
			atomic_fetch_add(&sh->failed, 1);
			note_error(sh, p);
			continue;
		}
		if (strcmp(p->cli.peer.sha256, sh->sha[0]) != 0 &&
		    strcmp(p->cli.peer.sha256, sh->sha[1]) != 0)
			atomic_fetch_add(&sh->bad_cert, 1);
		if (p->cli.resumed)
			atomic_fetch_add(&sh->resumed, 1);
		atomic_fetch_add(&sh->ok, 1);
	}
	if (p == NULL)
		atomic_fetch_add(&sh->failed, M_CONNS);
	free(p);
	atomic_fetch_add(&sh->done_workers, 1);
	return NULL;
}

/* Swaps the pair file atomically (rename) and reloads, until the workers
 * are done and at least MIN_RELOADS reloads happened. */
static void *reloader(void *arg)
{
	shared *sh = arg;
	char tmp[TEST_PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s.new", sh->pair_path);
	for (int i = 0; i < 100000; i++) {
		size_t len;
		unsigned char *b;
		FILE *f;
		if (atomic_load(&sh->done_workers) == N_THREADS &&
		    atomic_load(&sh->reloads) >= MIN_RELOADS)
			break;
		/* copy without cmocka (this is not the main thread) */
		f = fopen(sh->variant[i % 2], "rb");
		b = f != NULL ? malloc(65536) : NULL;
		len = b != NULL ? fread(b, 1, 65536, f) : 0;
		if (f != NULL)
			fclose(f);
		f = b != NULL ? fopen(tmp, "wb") : NULL;
		if (f == NULL || fwrite(b, 1, len, f) != len || fclose(f) != 0 ||
		    chmod(tmp, 0600) != 0 || rename(tmp, sh->pair_path) != 0) {
			free(b);
			atomic_fetch_add(&sh->reload_failures, 1);
			break;
		}
		free(b);
		if (mtls_ctx_reload(sh->server) == 0)
			atomic_fetch_add(&sh->reloads, 1);
		else
			atomic_fetch_add(&sh->reload_failures, 1);
	}
	return NULL;
}

/* dir/name: the PKI files concatenated (certificate chain, then key). */
static char *combine(const char *dir, const char *name, const char *a,
                     const char *b, const char *c)
{
	const char *parts[3] = {a, b, c};
	unsigned char *all = NULL;
	size_t n = 0;
	char *path = path_in(dir, name);

	for (int i = 0; i < 3; i++) {
		size_t len;
		unsigned char *d = slurp_pki(parts[i], &len);
		all = realloc(all, n + len);
		assert_non_null(all);
		memcpy(all + n, d, len);
		n += len;
		free(d);
	}
	write_file(path, all, n);
	chmod(path, 0600);
	free(all);
	return path;
}

static void test_shared_contexts_with_reload(void **state)
{
	int ver = test_version(state);
	shared *sh = calloc(1, sizeof(*sh));
	char *dir = make_tmpdir();
	pthread_t workers[N_THREADS], rel;

	assert_non_null(sh);
	pthread_mutex_init(&sh->lock, NULL);
	sh->variant[0] = combine(dir, "ec.pem", "server-ec.crt", "int.crt",
	                         "server-ec.key");
	sh->variant[1] = combine(dir, "rsa.pem", "server-rsa.crt", "int.crt",
	                         "server-rsa.key");
	file_sha256(pki("server-ec.crt"), sh->sha[0]);
	file_sha256(pki("server-rsa.crt"), sh->sha[1]);
	sh->pair_path = path_in(dir, "server.pem");
	copy_file(sh->variant[0], sh->pair_path);
	chmod(sh->pair_path, 0600);

	sh->server = mtls_ctx_new(MTLS_ROLE_SERVER);
	assert_non_null(sh->server);
	/* the key is read from the certificate file: one atomic rename
	 * swaps the whole pair */
	check_ok(sh->server, mtls_load_server_pair(sh->server, sh->pair_path,
	                                           NULL));
	check_ok(sh->server, mtls_set_trusted_ca(sh->server, pki(CA)));
	check_ok(sh->server, mtls_ctx_set_tls_versions(sh->server, ver, ver));
	sh->client = default_client(ver);

	assert_int_equal(pthread_create(&rel, NULL, reloader, sh), 0);
	for (int i = 0; i < N_THREADS; i++)
		assert_int_equal(pthread_create(&workers[i], NULL, worker, sh),
		                 0);
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(workers[i], NULL);
	pthread_join(rel, NULL);

	print_message("  %d connections ok (%d resumed), %d reloads\n",
	              atomic_load(&sh->ok), atomic_load(&sh->resumed),
	              atomic_load(&sh->reloads));
	if (atomic_load(&sh->failed) != 0)
		fail_msg("%d of %d connections failed; first: %s",
		         atomic_load(&sh->failed), N_THREADS * M_CONNS,
		         sh->first_error);
	assert_int_equal(atomic_load(&sh->ok), N_THREADS * M_CONNS);
	assert_int_equal(atomic_load(&sh->bad_cert), 0);
	assert_int_equal(atomic_load(&sh->reload_failures), 0);
	assert_true(atomic_load(&sh->reloads) >= MIN_RELOADS);
	assert_null(mtls_ctx_error(sh->server));

	mtls_ctx_free(sh->server);
	mtls_ctx_free(sh->client);
	free(sh->variant[0]);
	free(sh->variant[1]);
	free(sh->pair_path);
	pthread_mutex_destroy(&sh->lock);
	free(sh);
	rm_tree(dir);
}

/* One SNI listener shared the same way; its hosts are looked up and their
 * snapshots built concurrently. */
typedef struct sni_shared {
	mtls_ctx *listener, *client;
	atomic_int ok, failed;
	pthread_mutex_t lock;
	char first_error[1600];
} sni_shared;

static void *sni_worker(void *arg)
{
	sni_shared *sh = arg;
	pair *p = malloc(sizeof(*p));
	char name[64];

	for (int i = 0; p != NULL && i < M_CONNS; i++) {
		int echo = MTLS_ERR_STATE;
		snprintf(name, sizeof(name), "h%d.example.net", i % 5);
		if (open_pair(p, sh->listener) != 0) {
			atomic_fetch_add(&sh->failed, 1);
			continue;
		}
		pair_client(p, sh->client, name);
		if (p->cli.hs == 0)
			echo = pair_echo(p, "ping");
		pair_close(p);
		if (p->srv.hs != 0 || echo != 0 ||
		    strcmp(p->srv.sni, name) != 0 ||
		    strcmp(p->cli.peer.cn, "admin.example.com") != 0) {
			pthread_mutex_lock(&sh->lock);
			if (sh->first_error[0] == '\0')
				snprintf(sh->first_error,
				         sizeof(sh->first_error),
				         "%s: server hs=%d \"%.600s\" client hs=%d "
				         "\"%.600s\" cn=%.128s",
				         name, p->srv.hs, p->srv.error,
				         p->cli.hs, p->cli.error,
				         p->cli.peer.cn);
			pthread_mutex_unlock(&sh->lock);
			atomic_fetch_add(&sh->failed, 1);
			continue;
		}
		atomic_fetch_add(&sh->ok, 1);
	}
	free(p);
	return NULL;
}

static void test_shared_sni_listener(void **state)
{
	int ver = test_version(state);
	sni_shared *sh = calloc(1, sizeof(*sh));
	pthread_t workers[N_THREADS];
	char name[64];

	assert_non_null(sh);
	pthread_mutex_init(&sh->lock, NULL);
	sh->listener = mk_server(ver, SRV_CERT, SRV_KEY, CA);
	for (int i = 0; i < 5; i++) {
		/* a host context each, built on first use */
		mtls_ctx *h = mk_server(ver, "admin-server.crt",
		                        "admin-server.key", CA);
		snprintf(name, sizeof(name), "h%d.example.net", i);
		check_ok(sh->listener, mtls_ctx_add_host(sh->listener, name, h));
		mtls_ctx_free(h);
	}
	sh->client = default_client(ver);
	check_ok(sh->client, mtls_ctx_insecure_skip_verify(sh->client));
	for (int i = 0; i < N_THREADS; i++)
		assert_int_equal(pthread_create(&workers[i], NULL, sni_worker,
		                                sh), 0);
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(workers[i], NULL);
	if (atomic_load(&sh->failed) != 0)
		fail_msg("%d connections failed; first: %s",
		         atomic_load(&sh->failed), sh->first_error);
	assert_int_equal(atomic_load(&sh->ok), N_THREADS * M_CONNS);
	mtls_ctx_free(sh->listener);
	mtls_ctx_free(sh->client);
	pthread_mutex_destroy(&sh->lock);
	free(sh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    VTEST(test_shared_contexts_with_reload),
	    VTEST(test_shared_sni_listener),
	};

	pki_dir();
	return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
