/*
 * scale.c - library-scale cells on libmtls (no network).
 *
 *   scale PKI_DIR CA_BUNDLE [SECONDS_PER_ROUND] [ROUNDS]
 *
 * 1. Trust sharing: parse CA_BUNDLE once, then make 10,000 client contexts
 *    that share it (mtls_ctx_share_trust).  Time and RSS delta against one
 *    context (targets: < 1 s, < 20 MB).
 * 2. SNI scale: a listener with one host context under 10,000 exact names
 *    (h0..h9999.example.com, wildcard certificate) against the same listener
 *    with that host under one name: full mTLS handshakes/s over socketpairs,
 *    client and server in this thread; server time is timed separately.
 *    Rounds alternate the two set-ups.  Target: ratio >= 0.97.
 * Prints "key=value" lines.  Every loop is bounded.
 */
#include <mtls.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define N_CTX 10000
#define N_HOSTS 10000

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kib;
}

static void die(const char *what, const mtls_ctx *ctx)
{
	fprintf(stderr, "scale: %s: %s\n", what,
	        ctx && mtls_ctx_error(ctx) ? mtls_ctx_error(ctx) : "failed");
	exit(1);
}

static char *path(const char *dir, const char *name)
{
	static char buf[8][1024];
	static int i;
	char *p = buf[i++ % 8];
	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static int trust_cell(const char *bundle)
{
	static mtls_ctx *ctxs[N_CTX];
	mtls_ctx *base = mtls_ctx_new(MTLS_ROLE_CLIENT);
	long r0, r1, r2;
	double t0, t1, t2;
	int n = 0;

	if (base == NULL)
		die("ctx", NULL);
	t0 = now();
	if (mtls_set_trusted_ca(base, bundle) != 0)
		die(bundle, base);
	t1 = now();
	r0 = rss_kib();
	ctxs[n] = mtls_ctx_new(MTLS_ROLE_CLIENT);
	if (ctxs[n] == NULL || mtls_ctx_share_trust(ctxs[n], base) != 0)
		die("share_trust", ctxs[n]);
	n++;
	r1 = rss_kib();
	t2 = now();
	for (; n < N_CTX; n++) {
		ctxs[n] = mtls_ctx_new(MTLS_ROLE_CLIENT);
		if (ctxs[n] == NULL || mtls_ctx_share_trust(ctxs[n], base) != 0 ||
		    mtls_ctx_set_server_name(ctxs[n], "upstream.example") != 0)
			die("share_trust", ctxs[n]);
	}
	r2 = rss_kib();
	printf("trust_parse_s=%.4f\n", t1 - t0);
	printf("trust_ctx=%d trust_s=%.4f trust_rss_1_kib=%ld "
	       "trust_rss_delta_kib=%ld trust_bytes_per_ctx=%.0f\n",
	       N_CTX, now() - t2, r1 - r0, r2 - r1,
	       (double)(r2 - r1) * 1024.0 / (N_CTX - 1));
	for (int i = 0; i < n; i++)
		mtls_ctx_free(ctxs[i]);
	mtls_ctx_free(base);
	return 0;
}

static mtls_ctx *listener(const char *pki, int names)
{
	mtls_ctx *l = mtls_ctx_new(MTLS_ROLE_SERVER);
	mtls_ctx *h = mtls_ctx_new(MTLS_ROLE_SERVER);
	char name[64];

	if (l == NULL || h == NULL ||
	    mtls_load_server_pair(l, path(pki, "server-ec-chain.pem"),
	                          path(pki, "server-ec.key")) != 0 ||
	    mtls_set_trusted_ca(l, path(pki, "ca.crt")) != 0)
		die("listener", l);
	if (mtls_load_server_pair(h, path(pki, "wild-server.crt"),
	                          path(pki, "wild-server.key")) != 0 ||
	    mtls_set_trusted_ca(h, path(pki, "ca.crt")) != 0)
		die("host", h);
	for (int i = 0; i < names; i++) {
		snprintf(name, sizeof(name), "h%d.example.com", i);
		if (mtls_ctx_add_host(l, name, h) != 0)
			die("add_host", l);
	}
	mtls_ctx_free(h);
	return l;
}

/* One full handshake over a socketpair; server time added to *srv_s. */
static int handshake(mtls_ctx *srv, mtls_ctx *cli, const char *sni,
                     double *srv_s)
{
	int sv[2], rs = 1, rc = 1, ok = -1;
	mtls_conn *s, *c;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return -1;
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	s = mtls_conn_new(srv, sv[0], NULL);
	c = mtls_conn_new(cli, sv[1], sni);
	for (int i = 0; s && c && i < 1000 && (rs != 0 || rc != 0); i++) {
		if (rc != 0) {
			rc = mtls_handshake(c);
			if (rc < 0 && rc != MTLS_WANT_READ && rc != MTLS_WANT_WRITE)
				break;
		}
		if (rs != 0) {
			double a = now();
			rs = mtls_handshake(s);
			*srv_s += now() - a;
			if (rs < 0 && rs != MTLS_WANT_READ && rs != MTLS_WANT_WRITE)
				break;
		}
	}
	if (rs == 0 && rc == 0)
		ok = 0;
	else
		fprintf(stderr, "scale: handshake: server %d %s, client %d %s\n",
		        rs, s ? mtls_conn_error(s) : "", rc,
		        c ? mtls_conn_error(c) : "");
	mtls_conn_free(s);
	mtls_conn_free(c);
	close(sv[0]);
	close(sv[1]);
	return ok;
}

static int sni_cell(const char *pki, double secs, int rounds)
{
	mtls_ctx *cli = mtls_ctx_new(MTLS_ROLE_CLIENT);
	mtls_ctx *one, *many;
	double t_add, srv[2] = {0, 0}, wall[2] = {0, 0};
	long count[2] = {0, 0};
	int fails = 0;

	if (cli == NULL ||
	    mtls_load_client_pair(cli, path(pki, "client-ec-chain.pem"),
	                          path(pki, "client-ec.key")) != 0 ||
	    mtls_set_trusted_ca(cli, path(pki, "ca-bundle.pem")) != 0 ||
	    mtls_ctx_set_session_resumption(cli, 0) != 0)
		die("client", cli);
	one = listener(pki, 1);
	t_add = now();
	many = listener(pki, N_HOSTS);
	t_add = now() - t_add;
	for (int r = 0; r < rounds * 2; r++) {
		int k = r % 2; /* 0: one name, 1: 10,000 names */
		double end = now() + secs, a = now();
		for (int i = 0; i < 100000 && now() < end; i++) {
			char sni[64];
			snprintf(sni, sizeof(sni), "h%d.example.com",
			         k ? (i * 7919) % N_HOSTS : 0);
			if (handshake(k ? many : one, cli, sni, &srv[k]) != 0) {
				if (++fails > 3)
					return 1;
				continue;
			}
			count[k]++;
		}
		wall[k] += now() - a;
	}
	printf("sni_hosts=%d sni_add_s=%.3f\n", N_HOSTS, t_add);
	printf("sni1_hs=%ld sni1_rate=%.1f sni1_srv_rate=%.1f\n", count[0],
	       count[0] / wall[0], count[0] / srv[0]);
	printf("sniN_hs=%ld sniN_rate=%.1f sniN_srv_rate=%.1f\n", count[1],
	       count[1] / wall[1], count[1] / srv[1]);
	printf("sni_ratio=%.3f sni_srv_ratio=%.3f\n",
	       (count[1] / wall[1]) / (count[0] / wall[0]),
	       (count[1] / srv[1]) / (count[0] / srv[0]));
	mtls_ctx_free(one);
	mtls_ctx_free(many);
	mtls_ctx_free(cli);
	return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s PKI_DIR CA_BUNDLE [SECONDS] [ROUNDS]\n",
		        argv[0]);
		return 2;
	}
	printf("mbedtls=%s\n", mtls_mbedtls_version());
	if (trust_cell(argv[2]) != 0)
		return 1;
	return sni_cell(argv[1], argc > 3 ? atof(argv[3]) : 3.0,
	                argc > 4 ? atoi(argv[4]) : 2);
}
