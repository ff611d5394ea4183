/*
 * backend.c - plain-TCP HTTP/1.1 keep-alive responder behind the stream
 * servers (nginx stream, HAProxy tcp, stunnel, mtls-proxy).  Same loop and
 * answers as the TLS servers (serve.h).
 *
 *   backend PORT [LIFETIME_SECONDS]
 */
#include "serve.h"

static void *p_open(int fd)
{
	int *p = malloc(sizeof(*p));
	if (p != NULL)
		*p = fd;
	return p;
}

static int p_handshake(void *t)
{
	(void)t;
	return 0;
}

static ssize_t p_read(void *t, void *b, size_t n)
{
	ssize_t r = recv(*(int *)t, b, n, 0);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return OP_WANT_READ;
	return r;
}

static ssize_t p_write(void *t, const void *b, size_t n)
{
	ssize_t r = send(*(int *)t, b, n, MSG_NOSIGNAL);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return OP_WANT_WRITE;
	return r;
}

static void p_close(void *t)
{
	free(t);
}

int main(int argc, char **argv)
{
	static const struct bench_ops ops = {p_open, p_handshake, p_read, p_write,
	                                     p_close};

	if (argc < 2) {
		fprintf(stderr, "usage: %s PORT [LIFETIME]\n", argv[0]);
		return 2;
	}
	return bench_serve(&ops, atoi(argv[1]), argc > 2 ? atoi(argv[2]) : 3600);
}
