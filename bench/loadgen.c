/*
 * loadgen.c - mTLS load generator for the benchmark, on OpenSSL's libssl
 * (so the client side is cheap next to an mbedTLS server).
 *
 *   loadgen -p PORT -m MODE --ca CA --cert CHAIN --key KEY [options]
 *
 * MODE
 *   full       new connection each time, no session: connect, handshake,
 *              one "GET /" request/response, close.  Rate = handshakes/s.
 *   resume     the same, re-offering the last session (TLS 1.2 session ID
 *              or ticket, TLS 1.3 PSK ticket); reports the share resumed.
 *   keepalive  -c connections, each sending "GET / HTTP/1.1" in a loop.
 *   bulk       one connection downloading "GET /big" (16 MiB) in a loop.
 *   idle       open -c connections (full handshake + one request each),
 *              print "ready N", hold them until -d expires or SIGTERM.
 *   idle-resume the same, every connection after the first resuming the
 *              first one's session (10,000 connections in seconds).
 * Options: -h HOST (127.0.0.1), -c N concurrency (processes, one
 * connection each), -d SECONDS, -n MAX operations per process, --tls1.2,
 * --tls1.3, --groups P-256|X25519, --no-dhe-kex (TLS 1.3: also offer
 * psk_ke, resumption without (EC)DHE: SSL_OP_ALLOW_NO_DHE_KEX, as
 * "openssl s_client -allow_no_dhe_kex").
 * Measurement options (full, resume, keepalive, bulk):
 *   -w K          K warm-up operations per process first, not counted (in
 *                 resume mode the first one gets the session to re-offer;
 *                 in keepalive and bulk the connection stays open).
 *   --server PID  a process whose CPU (utime+stime from /proc, PID and all
 *                 its descendants) is sampled when every process has
 *                 finished its warm-up and again when all are done:
 *                 srv_cpu_s (10 ms ticks) and srv_ns (nanoseconds on a
 *                 CPU, from schedstat; 0 if the kernel keeps none).
 *                 Repeatable.
 *   --side PID    the same for a helper on the client's side (the plain
 *                 backend of a stream server): side_cpu_s.
 *   --hook CMD    run CMD (sh -c) between the warm-up and the counted
 *                 operations, before the server's CPU is sampled (e.g.
 *                 "callgrind_control -z PID").
 * Every loop is bounded by the duration and by the count.
 * Output, one line: mode=.. ok=.. err=.. resumed=.. secs=.. rate=..
 * mbps=.. bytes=.. p50_ms=.. p99_ms=.. cpu_s=.. srv_cpu_s=.. side_cpu_s=..
 * wall_s=.. srv_ns=.. (latency of an operation: a full connection in
 * full/resume, a request in keepalive, a body in bulk; cpu_s is the load generator's own
 * CPU during the counted operations; wall_s the counted phase's length).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_LAT 200000 /* latency samples kept per process */
#define MAX_PROCS 256
#define MAX_WATCH 16 /* --server / --side PIDs */

enum mode { M_FULL, M_RESUME, M_KEEPALIVE, M_BULK, M_IDLE, M_IDLE_RESUME };

static struct {
	const char *host, *ca, *cert, *key, *groups;
	int port, conc, version;
	double secs;
	long max_ops, warmup;
	enum mode mode;
	const char *hook;
	int nserver, nside;
	pid_t server[MAX_WATCH], side[MAX_WATCH];
	int no_dhe_kex;
} opt = {"127.0.0.1", NULL, NULL, NULL, "P-256", 0, 1, 0, 5.0, 10000000,
         0, M_FULL, NULL, 0, 0, {0}, {0}, 0};

struct result {
	uint64_t ok, err, resumed, bytes, nlat;
	double secs, cpu;
};

static volatile sig_atomic_t stop_flag;
static void on_term(int s)
{
	(void)s;
	stop_flag = 1;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int tcp_connect(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((unsigned short)opt.port)};
	struct timeval tv = {10, 0};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, opt.host, &a.sin_addr);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static SSL_CTX *make_ctx(void)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	if (c == NULL)
		return NULL;
	if (opt.version) {
		SSL_CTX_set_min_proto_version(c, opt.version);
		SSL_CTX_set_max_proto_version(c, opt.version);
	} else {
		SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	}
	/* One suite for every server, so rows compare like with like (the
	 * RSA variant for servers with an RSA certificate). */
	if (SSL_CTX_set_cipher_list(c, "ECDHE-ECDSA-AES128-GCM-SHA256:"
	                               "ECDHE-RSA-AES128-GCM-SHA256") != 1 ||
	    SSL_CTX_set_ciphersuites(c, "TLS_AES_128_GCM_SHA256") != 1 ||
	    /* TLS 1.2 also reads supported_groups as the curves the server's
	     * ECDSA key may use: keep P-256 listed after the preferred group. */
	    SSL_CTX_set1_groups_list(c, strcmp(opt.groups, "P-256") == 0
	                                    ? "P-256"
	                                    : (strcmp(opt.groups, "X25519") == 0
	                                           ? "X25519:P-256"
	                                           : opt.groups)) != 1 ||
	    SSL_CTX_load_verify_locations(c, opt.ca, NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(c, opt.cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(c, opt.key, SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		SSL_CTX_free(c);
		return NULL;
	}
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	if (opt.no_dhe_kex)
		SSL_CTX_set_options(c, SSL_OP_ALLOW_NO_DHE_KEX);
	return c;
}

/* One TLS connection: connect + handshake (offering sess if not NULL). */
static SSL *tls_open(SSL_CTX *c, SSL_SESSION *sess)
{
	int fd = tcp_connect();
	SSL *s;

	if (fd < 0)
		return NULL;
	s = SSL_new(c);
	if (s == NULL) {
		close(fd);
		return NULL;
	}
	SSL_set_fd(s, fd);
	SSL_set_tlsext_host_name(s, "localhost");
	SSL_set1_host(s, "localhost");
	if (sess != NULL)
		SSL_set_session(s, sess);
	if (SSL_connect(s) != 1) {
		SSL_free(s);
		close(fd);
		return NULL;
	}
	return s;
}

static void tls_close(SSL *s, int clean)
{
	int fd;

	if (s == NULL)
		return;
	fd = SSL_get_fd(s);
	if (clean)
		SSL_shutdown(s);
	SSL_free(s);
	close(fd);
}

/* Sends one request and reads the whole response: body bytes, or -1. */
static long request(SSL *s, const char *path)
{
	char req[128], buf[16384];
	size_t have = 0;
	long clen = -1, body = 0;
	int n = snprintf(req, sizeof(req),
	                 "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);

	if (SSL_write(s, req, n) != n)
		return -1;
	for (int guard = 0; guard < 100000; guard++) { /* headers */
		char *end, *cl;
		int r = SSL_read(s, buf + have, (int)(sizeof(buf) - 1 - have));
		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end == NULL) {
			if (have >= sizeof(buf) - 1)
				return -1;
			continue;
		}
		cl = strcasestr(buf, "content-length:");
		if (cl == NULL || cl > end)
			return -1;
		clen = strtol(cl + 15, NULL, 10);
		body = (long)(have - (size_t)(end + 4 - buf));
		break;
	}
	for (int guard = 0; clen >= 0 && body < clen && guard < 1000000;
	     guard++) {
		int r = SSL_read(s, buf, (int)sizeof(buf));
		if (r <= 0)
			return -1;
		body += r;
	}
	return body == clen ? clen : -1;
}

static double self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* utime+stime of pid and its descendants, in clock ticks (depth-bounded:
 * a server's process tree is shallow). */
static unsigned long long tree_ticks(pid_t pid, int depth)
{
	char path[64], buf[1024], *p;
	unsigned long long t = 0, ut = 0, st = 0;
	FILE *f;
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	/* after "comm)": state ppid pgrp session tty tpgid flags minflt
	 * cminflt majflt cmajflt utime stime */
	if (p == NULL ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	           &ut, &st) != 2)
		return 0;
	t = ut + st;
	if (depth >= 4)
		return t;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d != NULL && (e = readdir(d)) != NULL) {
		char cpath[320];
		long c;
		if (e->d_name[0] == '.')
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children",
		         (int)pid, e->d_name);
		f = fopen(cpath, "r");
		if (f == NULL)
			continue;
		while (fscanf(f, "%ld", &c) == 1)
			t += tree_ticks((pid_t)c, depth + 1);
		fclose(f);
	}
	if (d != NULL)
		closedir(d);
	return t;
}

static unsigned long long watch_ticks(const pid_t *pids, int n)
{
	unsigned long long t = 0;

	for (int i = 0; i < n; i++)
		t += tree_ticks(pids[i], 0);
	return t;
}

/* Nanoseconds on a CPU of pid's threads and its descendants' (the first
 * field of /proc/PID/task/TID/schedstat: exact, where utime+stime count
 * 10 ms ticks); 0 when the kernel keeps no schedstat. */
static unsigned long long tree_ns(pid_t pid, int depth)
{
	char path[64], cpath[320];
	unsigned long long t = 0, v;
	DIR *d;
	struct dirent *e;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d != NULL && (e = readdir(d)) != NULL) {
		long c;

		if (e->d_name[0] == '.')
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/schedstat",
		         (int)pid, e->d_name);
		if ((f = fopen(cpath, "r")) != NULL) {
			if (fscanf(f, "%llu", &v) == 1)
				t += v;
			fclose(f);
		}
		if (depth >= 4)
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children",
		         (int)pid, e->d_name);
		if ((f = fopen(cpath, "r")) == NULL)
			continue;
		while (fscanf(f, "%ld", &c) == 1)
			t += tree_ns((pid_t)c, depth + 1);
		fclose(f);
	}
	if (d != NULL)
		closedir(d);
	return t;
}

static unsigned long long watch_ns(const pid_t *pids, int n)
{
	unsigned long long t = 0;

	for (int i = 0; i < n; i++)
		t += tree_ns(pids[i], 0);
	return t;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

/* One worker process's job; latencies (ms) into lat.  After the warm-up
 * it writes a byte to ready_fd and waits for go_fd to close. */
static void work(SSL_CTX *c, struct result *r, float *lat, int ready_fd,
                 int go_fd)
{
	double t0 = now(), end = t0 + opt.secs + 60.0, cpu0 = 0;
	SSL_SESSION *sess = NULL;
	SSL *s = NULL;
	int passed = 0;

	for (long i = 0; i < opt.max_ops + opt.warmup && now() < end && !stop_flag;
	     i++) {
		double a;
		long got;

		if (i == opt.warmup) {
			char ch = 'r';
			if (write(ready_fd, &ch, 1) != 1 || read(go_fd, &ch, 1) != 0)
				break;
			passed = 1;
			memset(r, 0, sizeof(*r));
			t0 = now();
			end = t0 + opt.secs;
			cpu0 = self_cpu();
		}
		a = now();

		switch (opt.mode) {
		case M_FULL:
		case M_RESUME:
			s = tls_open(c, opt.mode == M_RESUME ? sess : NULL);
			got = s ? request(s, "/") : -1;
			if (s != NULL && got >= 0) {
				if (SSL_session_reused(s))
					r->resumed++;
				if (opt.mode == M_RESUME) {
					SSL_SESSION_free(sess);
					sess = SSL_get1_session(s);
				}
			}
			tls_close(s, got >= 0);
			s = NULL;
			break;
		default: /* keepalive, bulk */
			if (s == NULL)
				s = tls_open(c, NULL);
			got = s ? request(s, opt.mode == M_BULK ? "/big" : "/") : -1;
			if (got < 0) {
				tls_close(s, 0);
				s = NULL;
			}
			break;
		}
		if (got < 0) {
			r->err++;
			if (r->err > 1000)
				break;
			continue;
		}
		r->ok++;
		r->bytes += (uint64_t)got;
		if (r->nlat < MAX_LAT)
			lat[r->nlat++] = (float)((now() - a) * 1000.0);
	}
	if (!passed) {
		/* warm-up never finished: tell the parent, report nothing */
		char ch = 'r';
		if (write(ready_fd, &ch, 1) == 1 && read(go_fd, &ch, 1) == 0)
			r->err = 1;
	}
	r->secs = now() - t0;
	r->cpu = self_cpu() - cpu0;
	tls_close(s, 1);
	SSL_SESSION_free(sess);
}

static int run_idle(SSL_CTX *c)
{
	SSL **conns = calloc((size_t)opt.conc, sizeof(*conns));
	SSL_SESSION *sess = NULL;
	double end = now() + opt.secs;
	int ok = 0, err = 0;

	if (conns == NULL)
		return 1;
	for (int i = 0; i < opt.conc && now() < end && !stop_flag; i++) {
		conns[i] = tls_open(c, sess);
		if (conns[i] == NULL || request(conns[i], "/") < 0) {
			err++;
			continue;
		}
		/* after the request: a TLS 1.3 ticket has arrived by then */
		if (opt.mode == M_IDLE_RESUME && sess == NULL)
			sess = SSL_get1_session(conns[i]);
		ok++;
	}
	SSL_SESSION_free(sess);
	printf("ready %d err=%d\n", ok, err);
	fflush(stdout);
	while (now() < end && !stop_flag)
		usleep(100000);
	for (int i = 0; i < opt.conc; i++)
		tls_close(conns[i], 0);
	free(conns);
	return err ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: loadgen -p PORT -m full|resume|keepalive|bulk|idle|idle-resume "
	        "--ca CA --cert CHAIN --key KEY\n"
	        "       [-h HOST] [-c N] [-d SECS] [-n MAX] [--tls1.2|--tls1.3] "
	        "[--groups P-256|X25519] [--no-dhe-kex]\n"
	        "       [-w WARMUP] [--server PID]... [--side PID]... [--hook CMD]\n");
	exit(2);
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{"ca", 1, 0, 'A'},      {"cert", 1, 0, 'C'},   {"key", 1, 0, 'K'},
		{"tls1.2", 0, 0, '2'},  {"tls1.3", 0, 0, '3'}, {"groups", 1, 0, 'g'},
		{"server", 1, 0, 'S'},  {"side", 1, 0, 's'},   {"hook", 1, 0, 'H'},
		{"no-dhe-kex", 0, 0, 'N'}, {0, 0, 0, 0}};
	int o;

	while ((o = getopt_long(argc, argv, "h:p:m:c:d:n:w:", lo, NULL)) != -1) {
		switch (o) {
		case 'h': opt.host = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 'c': opt.conc = atoi(optarg); break;
		case 'd': opt.secs = atof(optarg); break;
		case 'n': opt.max_ops = atol(optarg); break;
		case 'w': opt.warmup = atol(optarg); break;
		case 'H': opt.hook = optarg; break;
		case 'S':
			if (opt.nserver == MAX_WATCH || atoi(optarg) <= 0)
				usage();
			opt.server[opt.nserver++] = (pid_t)atoi(optarg);
			break;
		case 's':
			if (opt.nside == MAX_WATCH || atoi(optarg) <= 0)
				usage();
			opt.side[opt.nside++] = (pid_t)atoi(optarg);
			break;
		case 'A': opt.ca = optarg; break;
		case 'C': opt.cert = optarg; break;
		case 'K': opt.key = optarg; break;
		case '2': opt.version = TLS1_2_VERSION; break;
		case '3': opt.version = TLS1_3_VERSION; break;
		case 'g': opt.groups = optarg; break;
		case 'N': opt.no_dhe_kex = 1; break;
		case 'm':
			if (!strcmp(optarg, "full")) opt.mode = M_FULL;
			else if (!strcmp(optarg, "resume")) opt.mode = M_RESUME;
			else if (!strcmp(optarg, "keepalive")) opt.mode = M_KEEPALIVE;
			else if (!strcmp(optarg, "bulk")) opt.mode = M_BULK;
			else if (!strcmp(optarg, "idle")) opt.mode = M_IDLE;
			else if (!strcmp(optarg, "idle-resume")) opt.mode = M_IDLE_RESUME;
			else usage();
			break;
		default: usage();
		}
	}
	if (!opt.port || !opt.ca || !opt.cert || !opt.key || opt.conc < 1 ||
	    opt.secs <= 0 || opt.max_ops < 1 || opt.warmup < 0 ||
	    (opt.mode < M_IDLE && opt.conc > MAX_PROCS))
		usage();
}

int main(int argc, char **argv)
{
	static const char *names[] = {"full", "resume", "keepalive", "bulk",
	                              "idle", "idle-resume"};
	struct result tot = {0};
	pid_t pids[MAX_PROCS];
	int fds[MAX_PROCS], ready[2], go[2], nready = 0;
	float *all;
	size_t nall = 0;
	double wall = 0, t_go, t_end, hz = (double)sysconf(_SC_CLK_TCK);
	unsigned long long srv0, srv1, side0, side1, ns0, ns1;
	SSL_CTX *c;

	parse(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_term);
	c = make_ctx();
	if (c == NULL)
		return 1;
	if (opt.mode >= M_IDLE)
		return run_idle(c);

	/* ready: each worker writes one byte after its warm-up; go: closed by
	 * the parent when the counted phase starts. */
	if (pipe(ready) != 0 || pipe(go) != 0)
		return 1;
	for (int i = 0; i < opt.conc; i++) {
		int p[2];
		if (pipe(p) != 0)
			return 1;
		pids[i] = fork();
		if (pids[i] == 0) {
			struct result r = {0};
			float *lat = malloc(MAX_LAT * sizeof(float));
			if (lat == NULL)
				_exit(1);
			close(p[0]);
			close(ready[0]);
			close(go[1]);
			work(c, &r, lat, ready[1], go[0]);
			if (write(p[1], &r, sizeof(r)) != (ssize_t)sizeof(r) ||
			    write(p[1], lat, r.nlat * sizeof(float)) !=
			            (ssize_t)(r.nlat * sizeof(float)))
				_exit(1);
			_exit(0);
		}
		if (pids[i] < 0)
			return 1;
		close(p[1]);
		fds[i] = p[0];
	}
	close(ready[1]);
	close(go[0]);
	for (int guard = 0; nready < opt.conc && guard < 100000; guard++) {
		char b[MAX_PROCS];
		ssize_t n = read(ready[0], b, sizeof(b));
		if (n <= 0 && !(n < 0 && errno == EINTR))
			break; /* a worker died: its result will be missing */
		if (n > 0)
			nready += (int)n;
	}
	close(ready[0]);
	if (opt.hook != NULL && system(opt.hook) != 0)
		fprintf(stderr, "loadgen: hook failed: %s\n", opt.hook);
	srv0 = watch_ticks(opt.server, opt.nserver);
	side0 = watch_ticks(opt.side, opt.nside);
	ns0 = watch_ns(opt.server, opt.nserver);
	t_go = now();
	close(go[1]);

	all = malloc((size_t)opt.conc * MAX_LAT * sizeof(float));
	for (int i = 0; i < opt.conc; i++) {
		struct result r;
		FILE *f = fdopen(fds[i], "r");
		if (f != NULL && fread(&r, sizeof(r), 1, f) == 1) {
			size_t got = all ? fread(all + nall, sizeof(float),
			                         (size_t)r.nlat, f) : 0;
			nall += got;
			tot.ok += r.ok;
			tot.err += r.err;
			tot.resumed += r.resumed;
			tot.bytes += r.bytes;
			tot.cpu += r.cpu;
			if (r.secs > wall)
				wall = r.secs;
		} else {
			tot.err++;
		}
		if (f != NULL)
			fclose(f);
		waitpid(pids[i], NULL, 0);
	}
	t_end = now();
	ns1 = watch_ns(opt.server, opt.nserver);
	srv1 = watch_ticks(opt.server, opt.nserver);
	side1 = watch_ticks(opt.side, opt.nside);
	if (all != NULL && nall > 0)
		qsort(all, nall, sizeof(float), cmp_float);
	printf("mode=%s conc=%d ok=%llu err=%llu resumed=%llu secs=%.3f "
	       "rate=%.1f mbps=%.1f bytes=%llu p50_ms=%.3f p99_ms=%.3f "
	       "cpu_s=%.3f srv_cpu_s=%.3f side_cpu_s=%.3f wall_s=%.3f "
	       "srv_ns=%llu\n",
	       names[opt.mode], opt.conc, (unsigned long long)tot.ok,
	       (unsigned long long)tot.err, (unsigned long long)tot.resumed, wall,
	       wall > 0 ? (double)tot.ok / wall : 0.0,
	       wall > 0 ? (double)tot.bytes / wall / 1e6 : 0.0,
	       (unsigned long long)tot.bytes, nall ? all[nall / 2] : 0.0,
	       nall ? all[nall * 99 / 100] : 0.0, tot.cpu,
	       (double)(srv1 - srv0) / hz, (double)(side1 - side0) / hz,
	       t_end - t_go, ns1 - ns0);
	free(all);
	SSL_CTX_free(c);
	return tot.ok > 0 && tot.err == 0 ? 0 : 1;
}
