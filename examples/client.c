/*
 * client.c - a minimal mTLS client on libmtls.
 *
 *   client HOST PORT CERT KEY CA [MESSAGE]
 *   client --version
 *
 * Connects to HOST:PORT presenting CERT/KEY (CERT "-": no certificate),
 * verifies the server against CA and the name HOST, sends MESSAGE and
 * prints the reply.  --version prints the mbedTLS version in use.
 */
#include <mtls.h>

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int dial(const char *host, const char *port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	int fd = -1;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

int main(int argc, char **argv)
{
	const char *msg = argc > 6 ? argv[6] : "ping";
	mtls_ctx *ctx = NULL;
	mtls_conn *conn = NULL;
	char buf[4096];
	ssize_t n;
	int fd = -1, rc = 1;

	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("mbedTLS %s\n", mtls_mbedtls_version());
		return 0;
	}
	if (argc < 6) {
		fprintf(stderr, "usage: %s HOST PORT CERT KEY CA [MESSAGE]\n",
		        argv[0]);
		return 2;
	}
	ctx = mtls_ctx_new(MTLS_ROLE_CLIENT);
	if (ctx == NULL ||
	    (strcmp(argv[3], "-") != 0 &&
	     mtls_load_client_pair(ctx, argv[3], argv[4]) != 0) ||
	    mtls_set_trusted_ca(ctx, argv[5]) != 0) {
		fprintf(stderr, "client: %s\n",
		        ctx ? mtls_ctx_error(ctx) : "out of memory");
		goto out;
	}
	if ((fd = dial(argv[1], argv[2])) < 0) {
		fprintf(stderr, "client: cannot connect to %s:%s\n", argv[1],
		        argv[2]);
		goto out;
	}
	conn = mtls_conn_new(ctx, fd, argv[1]);
	if (conn == NULL || mtls_handshake(conn) != 0 ||
	    mtls_write(conn, msg, strlen(msg)) < 0) {
		fprintf(stderr, "client: %s\n",
		        conn ? mtls_conn_error(conn) : "out of memory");
		goto out;
	}
	/* In TLS 1.3 a server's refusal of our certificate arrives here. */
	while ((n = mtls_read(conn, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	if (n < 0) {
		fprintf(stderr, "client: %s\n", mtls_conn_error(conn));
		goto out;
	}
	printf("\n");
	mtls_close(conn);
	rc = 0;
out:
	mtls_conn_free(conn);
	if (fd >= 0)
		close(fd);
	mtls_ctx_free(ctx);
	return rc;
}
