/*
 * adv_server.c - the target of the adversarial tests (tests/adversary/).
 *
 *   adv_server [--cert F --key F --ca F] [--verify require|optional|none]
 *              [--versions 1.2|1.3|1.2-1.3] [--allow KIND=VALUE]...
 *              [--host NAME,CERT,KEY,CA,VERIFY]... [--unknown-host refuse]
 *              [--count N] [--timeout SECONDS] [--port N]
 *   adv_server --info
 *
 * Listens on 127.0.0.1 (port 0: one the kernel picks) and prints
 * {"port":N} first.  Then serves up to N connections one after the
 * other (default 1), each bounded by the timeout (default 10 s), and
 * prints ONE JSON line per connection: what the public API reports about
 * it (handshake result, version, resumption, verification, identity,
 * host, SNI).  After a successful handshake it echoes one read back.
 * Exits 0 after N connections, or 3 when no client came in time.
 *
 * With MTLS_ADV_TICKET_KEYS=FILE in the environment, every context (the
 * listener and each host) takes its session-ticket keys from FILE
 * (mtls_ctx_set_ticket_key_file): tests/test_adversarial.sh runs the
 * scenarios that way too, so tickets made with shared keys face the same
 * attacks.
 *
 * --info prints the mbedTLS version, whether TLS 1.3 is available and
 * whether this is the ADV_OLD_API build.
 * Built with -DADV_OLD_API it also runs on a library older than
 * mtls_conn_host() / mtls_conn_peer_identity() (the security tests run it
 * against the commit before the fixes): host is then never known and the
 * identity is the one a caller would have taken, the verified peer's
 * first URI SAN, else its CN.
 */
#include <mtls.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_HOSTS 4

struct opts {
	const char *cert, *key, *ca;
	mtls_verify_mode verify;
	int have_verify;
	int vmin, vmax;
	const char *allow[8];
	int n_allow;
	const char *host[MAX_HOSTS];
	int n_host;
	int refuse_unknown;
	int count, timeout, port;
};

#ifdef ADV_OLD_API
static const char *conn_host(const mtls_conn *c)
{
	(void)c;
	return NULL;
}

static const char *conn_identity(const mtls_conn *c, int vrc,
                                 const mtls_peer *p)
{
	(void)c;
	if (vrc != 0 || !p->has_cert)
		return NULL;
	return p->n_uri > 0 ? p->uri[0] : p->cn[0] ? p->cn : NULL;
}
#else
static const char *conn_host(const mtls_conn *c)
{
	return mtls_conn_host(c);
}

static const char *conn_identity(const mtls_conn *c, int vrc,
                                 const mtls_peer *p)
{
	(void)vrc;
	(void)p;
	return mtls_conn_peer_identity(c);
}
#endif

/* "key": a JSON string, or null (key NULL: the value alone); every byte
 * outside printable ASCII escaped. */
static void json_str(const char *key, const char *s, int comma)
{
	if (key != NULL)
		printf("\"%s\":", key);
	if (s == NULL) {
		printf("null");
	} else {
		putchar('"');
		for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
			if (*p == '"' || *p == '\\')
				printf("\\%c", *p);
			else if (*p < 0x20 || *p >= 0x7f)
				printf("\\u%04x", *p);
			else
				putchar(*p);
		}
		putchar('"');
	}
	if (comma)
		putchar(',');
}

static int parse_verify(const char *s, mtls_verify_mode *m)
{
	if (strcmp(s, "require") == 0)
		*m = MTLS_VERIFY_REQUIRE;
	else if (strcmp(s, "optional") == 0)
		*m = MTLS_VERIFY_OPTIONAL;
	else if (strcmp(s, "none") == 0)
		*m = MTLS_VERIFY_NONE;
	else
		return -1;
	return 0;
}

static int add_allow(mtls_ctx *ctx, const char *spec)
{
	static const struct {
		const char *name;
		mtls_allow_kind kind;
	} kinds[] = {{"uri", MTLS_ALLOW_URI},
	             {"uri-prefix", MTLS_ALLOW_URI_PREFIX},
	             {"dns", MTLS_ALLOW_DNS},
	             {"cn", MTLS_ALLOW_CN},
	             {"ou", MTLS_ALLOW_OU},
	             {"spki", MTLS_ALLOW_SPKI_SHA256}};
	const char *eq = strchr(spec, '=');

	if (eq == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strlen(kinds[i].name) == (size_t)(eq - spec) &&
		    strncmp(kinds[i].name, spec, (size_t)(eq - spec)) == 0)
			return mtls_ctx_allow_peer(ctx, kinds[i].kind, eq + 1);
	return -1;
}

/* One context: a pair, optionally CAs and a verify mode. */
static mtls_ctx *make_ctx(const char *cert, const char *key, const char *ca,
                          const char *verify)
{
	mtls_ctx *ctx = mtls_ctx_new(MTLS_ROLE_SERVER);
	mtls_verify_mode m;

	if (ctx == NULL)
		return NULL;
	if (mtls_load_server_pair(ctx, cert, key) != 0 ||
	    (ca != NULL && *ca && mtls_set_trusted_ca(ctx, ca) != 0) ||
	    (verify != NULL && *verify &&
	     (parse_verify(verify, &m) != 0 || mtls_ctx_set_verify(ctx, m)))
#ifndef ADV_OLD_API
	    || (getenv("MTLS_ADV_TICKET_KEYS") != NULL &&
	        mtls_ctx_set_ticket_key_file(ctx,
	                                     getenv("MTLS_ADV_TICKET_KEYS")) != 0)
#endif
	    ) {
		fprintf(stderr, "adv_server: %s: %s\n", cert, mtls_ctx_error(ctx));
		mtls_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

/* --host NAME,CERT,KEY,CA,VERIFY */
static int add_host(mtls_ctx *listener, const char *spec)
{
	char buf[2048], *f[5] = {0}, *save = NULL;
	mtls_ctx *h;
	int n = 0, ret;

	if (snprintf(buf, sizeof(buf), "%s", spec) >= (int)sizeof(buf))
		return -1;
	for (char *t = strtok_r(buf, ",", &save); t && n < 5;
	     t = strtok_r(NULL, ",", &save))
		f[n++] = t;
	if (n < 3)
		return -1;
	if ((h = make_ctx(f[1], f[2], f[3], f[4])) == NULL)
		return -1;
	ret = mtls_ctx_add_host(listener, f[0], h);
	if (ret != 0)
		fprintf(stderr, "adv_server: host %s: %s\n", f[0],
		        mtls_ctx_error(listener));
	mtls_ctx_free(h); /* the listener keeps its own reference */
	return ret;
}

static int parse_versions(const char *s, int *min, int *max)
{
	if (strcmp(s, "1.2") == 0)
		*min = *max = MTLS_TLS1_2;
	else if (strcmp(s, "1.3") == 0)
		*min = *max = MTLS_TLS1_3;
	else if (strcmp(s, "1.2-1.3") == 0)
		*min = MTLS_TLS1_2, *max = MTLS_TLS1_3;
	else
		return -1;
	return 0;
}

static int info(void)
{
	mtls_ctx *ctx = mtls_ctx_new(MTLS_ROLE_SERVER);
	int tls13 = ctx != NULL &&
	            mtls_ctx_set_tls_versions(ctx, MTLS_TLS1_3, MTLS_TLS1_3) == 0;

#ifdef ADV_OLD_API
	const char *api = "old";
#else
	const char *api = "new";
#endif

	printf("{\"mbedtls\":\"%s\",\"tls13\":%s,\"api\":\"%s\"}\n",
	       mtls_mbedtls_version(), tls13 ? "true" : "false", api);
	mtls_ctx_free(ctx);
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	o->count = 1;
	o->timeout = 10;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--unknown-host") == 0 && v != NULL) {
			o->refuse_unknown = strcmp(v, "refuse") == 0;
		} else if (v == NULL) {
			return -1;
		} else if (strcmp(a, "--cert") == 0) {
			o->cert = v;
		} else if (strcmp(a, "--key") == 0) {
			o->key = v;
		} else if (strcmp(a, "--ca") == 0) {
			o->ca = v;
		} else if (strcmp(a, "--verify") == 0) {
			if (parse_verify(v, &o->verify) != 0)
				return -1;
			o->have_verify = 1;
		} else if (strcmp(a, "--versions") == 0) {
			if (parse_versions(v, &o->vmin, &o->vmax) != 0)
				return -1;
		} else if (strcmp(a, "--allow") == 0 && o->n_allow < 8) {
			o->allow[o->n_allow++] = v;
		} else if (strcmp(a, "--host") == 0 && o->n_host < MAX_HOSTS) {
			o->host[o->n_host++] = v;
		} else if (strcmp(a, "--count") == 0) {
			o->count = atoi(v);
		} else if (strcmp(a, "--timeout") == 0) {
			o->timeout = atoi(v);
		} else if (strcmp(a, "--port") == 0) {
			o->port = atoi(v);
		} else {
			return -1;
		}
		i++;
	}
	return o->cert != NULL && o->key != NULL && o->count > 0 &&
	               o->timeout > 0
	           ? 0
	           : -1;
}

static mtls_ctx *configure(const struct opts *o)
{
	mtls_ctx *ctx = make_ctx(o->cert, o->key, o->ca, NULL);
	int ret = ctx == NULL;

	if (ret == 0 && o->have_verify)
		ret = mtls_ctx_set_verify(ctx, o->verify);
	if (ret == 0 && o->vmin != 0)
		ret = mtls_ctx_set_tls_versions(ctx, o->vmin, o->vmax);
	for (int i = 0; ret == 0 && i < o->n_allow; i++)
		ret = add_allow(ctx, o->allow[i]);
	for (int i = 0; ret == 0 && i < o->n_host; i++)
		ret = add_host(ctx, o->host[i]);
	if (ret == 0 && o->refuse_unknown)
		ret = mtls_ctx_set_unknown_host(ctx, MTLS_SNI_REFUSE);
	if (ret != 0 && ctx != NULL) {
		fprintf(stderr, "adv_server: %s\n", mtls_ctx_error(ctx));
		mtls_ctx_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

static int listen_on(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((unsigned short)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 8) ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
		perror("adv_server: listen");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	printf("{\"port\":%d}\n", ntohs(a.sin_port));
	fflush(stdout);
	return fd;
}

static void report(mtls_conn *conn, int rc)
{
	mtls_peer peer;
	int vrc;

	memset(&peer, 0, sizeof(peer));
	vrc = rc == 0 ? mtls_verify_peer(conn, &peer) : MTLS_ERR_STATE;
	printf("{\"rc\":%d,", rc);
	json_str("error", rc ? mtls_strerror(rc) : NULL, 1);
	json_str("detail", rc ? mtls_conn_error(conn) : NULL, 1);
	json_str("version", rc == 0 ? mtls_conn_version(conn) : NULL, 1);
	printf("\"resumed\":%d,\"verify\":%d,\"has_cert\":%d,",
	       rc == 0 ? mtls_conn_resumed(conn) : 0, vrc, peer.has_cert);
	json_str("subject", peer.has_cert ? peer.subject : NULL, 1);
	printf("\"uri\":[");
	for (int i = 0; i < peer.n_uri && i < MTLS_PEER_MAX_SANS; i++) {
		json_str(NULL, peer.uri[i], 0);
		if (i + 1 < peer.n_uri)
			putchar(',');
	}
	printf("],");
	json_str("identity", rc == 0 ? conn_identity(conn, vrc, &peer) : NULL,
	         1);
	json_str("host", conn_host(conn), 1);
	json_str("sni", mtls_conn_sni(conn), 0);
	printf("}\n");
	fflush(stdout);
}

static void serve(mtls_ctx *ctx, int fd, int timeout)
{
	struct timeval tv = {.tv_sec = timeout};
	mtls_conn *conn;
	char buf[4096];
	ssize_t n;
	int rc;

	/* A client that stops talking fails its handshake: bounded. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if ((conn = mtls_conn_new(ctx, fd, NULL)) == NULL) {
		printf("{\"rc\":%d,\"error\":\"mtls_conn_new\"}\n",
		       MTLS_ERR_NO_MEMORY);
		fflush(stdout);
		return;
	}
	rc = mtls_handshake(conn);
	report(conn, rc);
	if (rc == 0) {
		n = mtls_read(conn, buf, sizeof(buf));
		if (n > 0)
			(void)mtls_write(conn, buf, (size_t)n);
		(void)mtls_close(conn);
	}
	mtls_conn_free(conn);
}

int main(int argc, char **argv)
{
	struct opts o;
	mtls_ctx *ctx;
	int lfd, served = 0;

	memset(&o, 0, sizeof(o));
	if (argc == 2 && strcmp(argv[1], "--info") == 0)
		return info();
	if (parse_args(argc, argv, &o) != 0) {
		fprintf(stderr, "usage: see the comment atop tests/adv_server.c\n");
		return 2;
	}
	if ((ctx = configure(&o)) == NULL)
		return 1;
	if ((lfd = listen_on(o.port)) < 0) {
		mtls_ctx_free(ctx);
		return 1;
	}
	while (served < o.count) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		int fd;

		if (poll(&p, 1, o.timeout * 1000) <= 0)
			break;
		if ((fd = accept(lfd, NULL, NULL)) < 0)
			break;
		serve(ctx, fd, o.timeout);
		close(fd);
		served++;
	}
	close(lfd);
	mtls_ctx_free(ctx);
	return served == o.count ? 0 : 3;
}
