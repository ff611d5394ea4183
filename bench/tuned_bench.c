/*
 * tuned_bench.c - what the choices of make MBEDTLS=tuned buy (bench/tuned.md).
 *
 *   tuned_bench crypto SECONDS
 *       AES-128-GCM encryption of 16 KiB buffers (MB/s and cycles/byte),
 *       P-256 ECDSA sign and verify, P-256 ECDHE (key pair + shared secret),
 *       each on a group loaded per operation as in a handshake, RSA-2048
 *       private operation: operations per second, each for SECONDS.
 *   tuned_bench conn PKI_DIR N
 *       N mTLS connections over socketpairs (libmtls, TLS 1.3 then TLS 1.2),
 *       handshaken and left idle: heap bytes held per idle server-side
 *       connection (mallinfo2 before and after freeing them); then 64 MiB
 *       client -> server over one connection (MB/s).
 * Rates are per CPU second of this thread (CLOCK_THREAD_CPUTIME_ID): the
 * machine is shared.  Prints "key=value" lines.  Every loop is bounded.  Built against a static
 * mbedTLS 3.6 by bench/tuned.sh (one binary per variant of the build).
 */
#include <mtls.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/gcm.h>
#include <mbedtls/rsa.h>

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define TSC() __rdtsc()
#else
#define TSC() 0ULL
#endif

static mbedtls_ctr_drbg_context drbg;
static mbedtls_entropy_context entropy;

/* CPU time of this thread: the machine is shared, and a figure per CPU
 * second does not move with the load other processes put on the core. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int ret)
{
	fprintf(stderr, "tuned_bench: %s failed (-0x%04x)\n", what,
	        (unsigned)-ret);
	exit(1);
}

/* ---- crypto --------------------------------------------------------------- */

static void bench_gcm(double secs)
{
	static unsigned char in[16384], out[16384];
	unsigned char key[16] = {1}, iv[12] = {2}, tag[16];
	mbedtls_gcm_context gcm;
	unsigned long long c0, c1;
	double t0, t, w0, w;
	long n = 0;
	int ret;

	mbedtls_gcm_init(&gcm);
	if ((ret = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 128)))
		die("gcm_setkey", ret);
	t0 = now();
	w0 = wall();
	c0 = TSC();
	do {
		for (int i = 0; i < 16; i++, n++) {
			iv[0] = (unsigned char)n;
			ret = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT,
			                                sizeof(in), iv, sizeof(iv),
			                                NULL, 0, in, out,
			                                sizeof(tag), tag);
			if (ret)
				die("gcm", ret);
		}
		t = now() - t0;
	} while (t < secs && n < 100000000L);
	c1 = TSC();
	w = wall() - w0;
	printf("gcm128_MBps=%.1f\n", (double)n * sizeof(in) / t / 1e6);
	/* CPU seconds times the TSC rate seen over the run: cycles of the
	 * TSC's (nominal) clock per byte, without time spent descheduled */
	printf("gcm128_cycles_per_byte=%.2f\n",
	       (double)(c1 - c0) / w * t / ((double)n * sizeof(in)));
	mbedtls_gcm_free(&gcm);
}

/* Runs op until secs have passed; prints name=ops/s. */
#define RATE(name, secs, op)                                                   \
	do {                                                                   \
		double t0_ = now(), t_;                                        \
		long n_ = 0;                                                   \
		do {                                                           \
			int r_ = (op);                                         \
			if (r_)                                                \
				die(name, r_);                                 \
			n_++;                                                  \
			t_ = now() - t0_;                                      \
		} while (t_ < (secs) && n_ < 10000000L);                       \
		printf("%s=%.1f\n", name, (double)n_ / t_);                    \
	} while (0)

/* Each operation loads its own group, as mbedTLS's TLS, PK and PSA layers
 * do (a peer's key is parsed per handshake, an ECDHE key pair is new, the
 * PK layer copies the group of our own key): a precomputed table that a
 * kept group would cache is not what a handshake gets (bench/ecp_tables.c). */
struct p256 {
	mbedtls_mpi d, r, s;
	mbedtls_ecp_point q;
	unsigned char hash[32];
};

static int p256_sign(struct p256 *k)
{
	mbedtls_ecp_group grp;
	int ret;

	mbedtls_ecp_group_init(&grp);
	ret = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1);
	if (ret == 0)
		ret = mbedtls_ecdsa_sign(&grp, &k->r, &k->s, &k->d, k->hash,
		                         sizeof(k->hash), mbedtls_ctr_drbg_random,
		                         &drbg);
	mbedtls_ecp_group_free(&grp);
	return ret;
}

static int p256_verify(struct p256 *k)
{
	mbedtls_ecp_group grp;
	int ret;

	mbedtls_ecp_group_init(&grp);
	ret = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1);
	if (ret == 0)
		ret = mbedtls_ecdsa_verify(&grp, k->hash, sizeof(k->hash), &k->q,
		                           &k->r, &k->s);
	mbedtls_ecp_group_free(&grp);
	return ret;
}

/* An ECDHE share: a new key pair, then the shared secret with the peer's. */
static int p256_ecdhe(struct p256 *k)
{
	mbedtls_ecp_group grp;
	mbedtls_mpi d, z;
	mbedtls_ecp_point q;
	int ret;

	mbedtls_ecp_group_init(&grp);
	mbedtls_mpi_init(&d);
	mbedtls_mpi_init(&z);
	mbedtls_ecp_point_init(&q);
	ret = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1);
	if (ret == 0)
		ret = mbedtls_ecp_gen_keypair(&grp, &d, &q,
		                              mbedtls_ctr_drbg_random, &drbg);
	if (ret == 0)
		ret = mbedtls_ecdh_compute_shared(&grp, &z, &k->q, &d,
		                                  mbedtls_ctr_drbg_random, &drbg);
	mbedtls_ecp_group_free(&grp);
	mbedtls_mpi_free(&d);
	mbedtls_mpi_free(&z);
	mbedtls_ecp_point_free(&q);
	return ret;
}

static void bench_p256(double secs)
{
	mbedtls_ecp_group grp;
	struct p256 k = {.hash = {3}};
	int ret;

	mbedtls_ecp_group_init(&grp);
	mbedtls_mpi_init(&k.d);
	mbedtls_mpi_init(&k.r);
	mbedtls_mpi_init(&k.s);
	mbedtls_ecp_point_init(&k.q);
	if ((ret = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1)) ||
	    (ret = mbedtls_ecp_gen_keypair(&grp, &k.d, &k.q,
	                                   mbedtls_ctr_drbg_random, &drbg)))
		die("p256 key", ret);
	mbedtls_ecp_group_free(&grp);
	RATE("p256_sign_per_s", secs, p256_sign(&k));
	RATE("p256_verify_per_s", secs, p256_verify(&k));
	RATE("p256_ecdhe_per_s", secs, p256_ecdhe(&k));
	mbedtls_mpi_free(&k.d);
	mbedtls_mpi_free(&k.r);
	mbedtls_mpi_free(&k.s);
	mbedtls_ecp_point_free(&k.q);
}

static void bench_rsa(double secs)
{
	mbedtls_rsa_context rsa;
	unsigned char in[256] = {0, 4}, out[256];
	int ret;

	mbedtls_rsa_init(&rsa);
	if ((ret = mbedtls_rsa_gen_key(&rsa, mbedtls_ctr_drbg_random, &drbg,
	                               2048, 65537)))
		die("rsa_gen_key", ret);
	RATE("rsa2048_private_per_s", secs,
	     mbedtls_rsa_private(&rsa, mbedtls_ctr_drbg_random, &drbg, in,
	                         out));
	mbedtls_rsa_free(&rsa);
}

/* ---- connections (libmtls) ------------------------------------------------ */

static mtls_ctx *ctx_or_die(mtls_role role, const char *pki, const char *crt,
                            const char *key, int ver)
{
	char c[1024], k[1024], ca[1024];
	mtls_ctx *x = mtls_ctx_new(role);

	snprintf(c, sizeof(c), "%s/%s", pki, crt);
	snprintf(k, sizeof(k), "%s/%s", pki, key);
	snprintf(ca, sizeof(ca), "%s/ca.crt", pki);
	if (x == NULL ||
	    (role == MTLS_ROLE_SERVER ? mtls_load_server_pair(x, c, k)
	                              : mtls_load_client_pair(x, c, k)) != 0 ||
	    mtls_set_trusted_ca(x, ca) != 0 ||
	    mtls_ctx_set_tls_versions(x, ver, ver) != 0) {
		fprintf(stderr, "tuned_bench: context: %s\n",
		        x ? mtls_ctx_error(x) : "out of memory");
		exit(1);
	}
	return x;
}

/* Drives both ends of one connection until both handshakes are done. */
static void handshake(mtls_conn *s, mtls_conn *c)
{
	int rs = 1, rc = 1;

	for (int i = 0; i < 10000 && (rs != 0 || rc != 0); i++) {
		if (rc != 0)
			rc = mtls_handshake(c);
		if (rs != 0)
			rs = mtls_handshake(s);
		if ((rc < 0 && rc != MTLS_WANT_READ && rc != MTLS_WANT_WRITE) ||
		    (rs < 0 && rs != MTLS_WANT_READ && rs != MTLS_WANT_WRITE)) {
			fprintf(stderr, "tuned_bench: handshake: %s / %s\n",
			        mtls_conn_error(c), mtls_conn_error(s));
			exit(1);
		}
	}
	if (rs != 0 || rc != 0) {
		fprintf(stderr, "tuned_bench: handshake did not finish\n");
		exit(1);
	}
}

static void bench_conns(const char *pki, int n, int ver, const char *tag)
{
	mtls_ctx *sc = ctx_or_die(MTLS_ROLE_SERVER, pki, "server-ec-chain.pem",
	                          "server-ec.key", ver);
	mtls_ctx *cc = ctx_or_die(MTLS_ROLE_CLIENT, pki, "client-ec-chain.pem",
	                          "client-ec.key", ver);
	mtls_conn **s = calloc((size_t)n, sizeof(*s));
	mtls_conn **c = calloc((size_t)n, sizeof(*c));
	int (*fds)[2] = calloc((size_t)n, sizeof(*fds));
	struct mallinfo2 m0, m1;
	static unsigned char buf[65536];
	size_t total = 64u << 20, sent = 0, got = 0;
	double t0;

	if (s == NULL || c == NULL || fds == NULL)
		exit(1);
	for (int i = 0; i < n; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds[i]) != 0)
			exit(1);
		fcntl(fds[i][0], F_SETFL, O_NONBLOCK);
		fcntl(fds[i][1], F_SETFL, O_NONBLOCK);
		s[i] = mtls_conn_new(sc, fds[i][0], NULL);
		c[i] = mtls_conn_new(cc, fds[i][1], "localhost");
		if (s[i] == NULL || c[i] == NULL)
			exit(1);
		handshake(s[i], c[i]);
		/* TLS 1.3: let the server's ticket reach the client now, so
		 * the idle state is the one a proxy keeps */
		mtls_read(c[i], buf, 1);
	}
	malloc_trim(0);
	m0 = mallinfo2();
	for (int i = 1; i < n; i++)
		mtls_conn_free(s[i]);
	malloc_trim(0);
	m1 = mallinfo2();
	printf("%s_idle_server_conn_bytes=%.0f\n", tag,
	       (double)(m0.uordblks - m1.uordblks) / (n - 1));

	/* bulk over connection 0 */
	t0 = now();
	for (int i = 0; i < 2000000 && got < total; i++) {
		if (sent < total) {
			size_t len = total - sent < sizeof(buf) ? total - sent
			                                        : sizeof(buf);
			ssize_t r = mtls_write(c[0], buf, len);
			if (r > 0)
				sent += (size_t)r;
			else if (r != MTLS_WANT_READ && r != MTLS_WANT_WRITE)
				exit(1);
		}
		for (int k = 0; k < 8; k++) {
			ssize_t r = mtls_read(s[0], buf, sizeof(buf));
			if (r > 0)
				got += (size_t)r;
			else if (r != MTLS_WANT_READ && r != MTLS_WANT_WRITE)
				exit(1);
			else
				break;
		}
	}
	printf("%s_bulk_MBps=%.1f\n", tag, (double)got / (now() - t0) / 1e6);
	mtls_conn_free(s[0]);
	for (int i = 0; i < n; i++) {
		mtls_conn_free(c[i]);
		close(fds[i][0]);
		close(fds[i][1]);
	}
	free(s);
	free(c);
	free(fds);
	mtls_ctx_free(sc);
	mtls_ctx_free(cc);
}

int main(int argc, char **argv)
{
	int ret;

	if (argc == 3 && strcmp(argv[1], "crypto") == 0) {
		double secs = atof(argv[2]);

		mbedtls_entropy_init(&entropy);
		mbedtls_ctr_drbg_init(&drbg);
		if ((ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func,
		                                 &entropy, NULL, 0)))
			die("ctr_drbg_seed", ret);
		printf("mbedtls=%s\n", mtls_mbedtls_version());
		bench_gcm(secs);
		bench_p256(secs);
		bench_rsa(secs);
		mbedtls_ctr_drbg_free(&drbg);
		mbedtls_entropy_free(&entropy);
		return 0;
	}
	if (argc == 4 && strcmp(argv[1], "conn") == 0) {
		int n = atoi(argv[3]);

		if (n < 2 || n > 100000)
			return 2;
		bench_conns(argv[2], n, MTLS_TLS1_3, "tls13");
		bench_conns(argv[2], n, MTLS_TLS1_2, "tls12");
		return 0;
	}
	fprintf(stderr, "usage: tuned_bench crypto SECONDS | conn PKI_DIR N\n");
	return 2;
}
