/*
 * server.c - a minimal mTLS echo server on libmtls.
 *
 *   server PORT CERT KEY CLIENT_CA [CRL]
 *
 * Accepts one connection at a time on 127.0.0.1:PORT, requires a client
 * certificate issued by CLIENT_CA (and not revoked by CRL, if given),
 * prints who connected, and echoes one message back prefixed with the
 * client's subject.
 */
#include <mtls.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void log_line(void *user, int level, const char *msg)
{
	(void)user;
	if (level <= MTLS_LOG_INFO)
		fprintf(stderr, "mtls: %s\n", msg);
}

static int listen_on(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((unsigned short)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 16)) {
		perror("listen");
		exit(1);
	}
	return fd;
}

static void serve(mtls_ctx *ctx, int fd)
{
	mtls_conn *conn = mtls_conn_new(ctx, fd, NULL);
	char buf[4096], out[4400];
	mtls_peer peer;
	ssize_t n;

	if (conn == NULL)
		return;
	if (mtls_handshake(conn) != 0) {
		fprintf(stderr, "handshake refused: %s\n", mtls_conn_error(conn));
		goto done;
	}
	/* Authorize on the verified identity. */
	if (mtls_verify_peer(conn, &peer) == 0)
		printf("client %s (sha256 %.16s...) over %s\n", peer.subject,
		       peer.sha256, mtls_conn_version(conn));
	fflush(stdout);
	n = mtls_read(conn, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		n = snprintf(out, sizeof(out), "hello %s, you said: %s",
		             peer.subject, buf);
		mtls_write(conn, out, (size_t)n);
	}
	mtls_close(conn);
done:
	mtls_conn_free(conn);
}

int main(int argc, char **argv)
{
	mtls_ctx *ctx;
	int lfd;

	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: %s PORT CERT KEY CLIENT_CA [CRL]\n",
		        argv[0]);
		return 2;
	}
	mtls_set_log_callback(log_line, NULL);
	ctx = mtls_ctx_new(MTLS_ROLE_SERVER);
	if (ctx == NULL || mtls_load_server_pair(ctx, argv[2], argv[3]) != 0 ||
	    mtls_set_trusted_ca(ctx, argv[4]) != 0 ||
	    (argc == 6 && mtls_set_crl(ctx, argv[5]) != 0)) {
		fprintf(stderr, "server: %s\n",
		        ctx ? mtls_ctx_error(ctx) : "out of memory");
		mtls_ctx_free(ctx);
		return 1;
	}
	lfd = listen_on(atoi(argv[1]));
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		serve(ctx, fd);
		close(fd);
	}
}
