/*
 * admin.c - the admin endpoint's HTTP side (see admin.h): its socket, its
 * clients, the request line, the answer.  The pages themselves are
 * rendered by pages.c.
 */
#include "admin.h"
#include "log.h"
#include "loop.h"
#include "pages.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct adm {
	int kind;            /* K_ADMIN: first, epoll data points here */
	int fd;
	int listening;       /* the admin socket itself */
	struct adm *next;    /* clients */
	double deadline;
	size_t len;          /* request bytes read */
	char *out;           /* answer, or NULL while reading */
	size_t out_len, out_off;
	char req[ADMIN_MAX_REQUEST];
};

static struct adm sock = {.kind = K_ADMIN, .fd = -1, .listening = 1};
static struct adm *clients;
static size_t n_clients;
static char admin_text[300];

int pxy_admin_is_loopback(const struct pxy_config *cfg)
{
	const struct sockaddr_storage *sa = &cfg->admin.sa;

	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;
		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;
		const unsigned char *b = a->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && b[12] == 127;
	}
	return 0;
}

int pxy_admin_open(const struct pxy_config *cfg)
{
	int one = 1, fd;

	if (cfg->admin_line == 0)
		return 0;
	fd = socket(cfg->admin.sa.ss_family,
	            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (const struct sockaddr *)&cfg->admin.sa, cfg->admin.len) ||
	    listen(fd, 64) != 0) {
		pxy_log(MTLS_LOG_ERROR, "admin %s: %s", cfg->admin.text,
		        strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	sock.fd = fd;
	snprintf(admin_text, sizeof(admin_text), "%s", cfg->admin.text);
	pxy_log(MTLS_LOG_INFO, "admin: serving GET /metrics and /status on "
	        "http://%s", cfg->admin.text);
	if (!pxy_admin_is_loopback(cfg))
		pxy_log(MTLS_LOG_WARN, "admin %s is not a loopback address: "
		        "anyone who can reach it reads the names of clients, "
		        "hosts and certificates (127.0.0.1 is advised)",
		        cfg->admin.text);
	return 0;
}

void pxy_admin_drop(void)
{
	if (sock.fd >= 0)
		close(sock.fd);
	sock.fd = -1;
}

void pxy_admin_attach(void)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &sock};

	if (sock.fd >= 0 && epoll_ctl(pxy_ep, EPOLL_CTL_ADD, sock.fd, &ev) != 0)
		pxy_log(MTLS_LOG_ERROR, "admin %s: epoll: %s", admin_text,
		        strerror(errno));
}

static void client_close(struct adm *a)
{
	struct adm **p;

	for (p = &clients; *p != NULL && *p != a; p = &(*p)->next)
		;
	if (*p == a)
		*p = a->next;
	n_clients--;
	close(a->fd); /* also leaves the epoll set */
	free(a->out);
	free(a);
}

/* Queues an answer: status line, headers, body (left out for HEAD). */
static void answer(struct adm *a, int head, int code, const char *reason,
                   const char *type, const char *extra, char *body,
                   size_t body_len)
{
	char hdr[512];
	int n = snprintf(hdr, sizeof(hdr),
	                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	                 "Content-Length: %zu\r\nConnection: close\r\n"
	                 "Cache-Control: no-store\r\n%s\r\n",
	                 code, reason, type, body_len, extra ? extra : "");
	size_t total = (size_t)n + (head ? 0 : body_len);
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = a};

	if ((a->out = malloc(total)) == NULL) {
		free(body);
		client_close(a);
		return;
	}
	memcpy(a->out, hdr, (size_t)n);
	if (!head && body_len > 0)
		memcpy(a->out + n, body, body_len);
	free(body);
	a->out_len = total;
	a->out_off = 0;
	if (epoll_ctl(pxy_ep, EPOLL_CTL_MOD, a->fd, &ev) != 0)
		client_close(a);
}

static void answer_text(struct adm *a, int head, int code, const char *reason,
                        const char *extra)
{
	char *body = NULL;
	size_t len = 0;

	if ((body = malloc(128)) != NULL)
		len = (size_t)snprintf(body, 128, "%d %s\n", code, reason);
	answer(a, head, code, reason, "text/plain; charset=utf-8", extra, body,
	       len);
}

/* A complete request header is in a->req (NUL-terminated). */
static void respond(struct adm *a)
{
	char *sp1, *sp2, *path, *q, *body;
	size_t mlen, plen, len = 0;
	int head, metrics;

	a->req[strcspn(a->req, "\r\n")] = '\0'; /* the request line only */
	sp1 = strchr(a->req, ' ');
	if (sp1 == NULL || (sp2 = strchr(sp1 + 1, ' ')) == NULL ||
	    strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		answer_text(a, 0, 400, "Bad Request", NULL);
		return;
	}
	mlen = (size_t)(sp1 - a->req);
	head = mlen == 4 && memcmp(a->req, "HEAD", 4) == 0;
	if (!head && !(mlen == 3 && memcmp(a->req, "GET", 3) == 0)) {
		answer_text(a, 0, 405, "Method Not Allowed",
		            "Allow: GET, HEAD\r\n");
		return;
	}
	path = sp1 + 1;
	plen = (size_t)(sp2 - path);
	if ((q = memchr(path, '?', plen)) != NULL)
		plen = (size_t)(q - path);
	metrics = plen == 8 && memcmp(path, "/metrics", 8) == 0;
	if (!metrics && !(plen == 7 && memcmp(path, "/status", 7) == 0)) {
		answer_text(a, head, 404, "Not Found", NULL);
		return;
	}
	body = metrics ? pxy_page_metrics(&len) : pxy_page_status(&len);
	if (body == NULL) {
		answer_text(a, head, 500, "Internal Server Error", NULL);
		return;
	}
	answer(a, head, 200, "OK",
	       metrics ? "text/plain; version=0.0.4; charset=utf-8"
	               : "application/json",
	       NULL, body, len);
}

static void client_read(struct adm *a)
{
	ssize_t n = read(a->fd, a->req + a->len, sizeof(a->req) - 1 - a->len);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		client_close(a);
		return;
	}
	if (n < 0)
		return;
	a->len += (size_t)n;
	a->req[a->len] = '\0';
	if (strstr(a->req, "\r\n\r\n") != NULL || strstr(a->req, "\n\n"))
		respond(a);
	else if (a->len == sizeof(a->req) - 1)
		answer_text(a, 0, 431, "Request Header Fields Too Large",
		            NULL);
	else if (memchr(a->req, '\0', a->len) != NULL)
		answer_text(a, 0, 400, "Bad Request", NULL);
}

static void client_write(struct adm *a)
{
	ssize_t n = write(a->fd, a->out + a->out_off, a->out_len - a->out_off);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_close(a);
		return;
	}
	a->out_off += (size_t)n;
	if (a->out_off == a->out_len) {
		shutdown(a->fd, SHUT_WR);
		client_close(a);
	}
}

static void accept_clients(void)
{
	int k;

	for (k = 0; k < 16; k++) {
		struct epoll_event ev;
		struct adm *a;
		int fd = accept4(sock.fd, NULL, NULL,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return; /* EAGAIN, or out of descriptors: next time */
		if (n_clients >= ADMIN_MAX_CLIENTS ||
		    (a = calloc(1, sizeof(*a))) == NULL) {
			close(fd);
			continue;
		}
		a->kind = K_ADMIN;
		a->fd = fd;
		a->deadline = pxy_now() + ADMIN_TIMEOUT;
		ev.events = EPOLLIN;
		ev.data.ptr = a;
		if (epoll_ctl(pxy_ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			close(fd);
			free(a);
			continue;
		}
		a->next = clients;
		clients = a;
		n_clients++;
	}
}

void pxy_admin_event(struct adm *a, unsigned events)
{
	if (a->listening)
		accept_clients();
	else if (a->out != NULL)
		client_write(a);
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		client_read(a);
}

void pxy_admin_tick(double t)
{
	struct adm *a, *next;

	for (a = clients; a != NULL; a = next) {
		next = a->next;
		if (t > a->deadline)
			client_close(a);
	}
}

void pxy_admin_close(void)
{
	while (clients != NULL)
		client_close(clients);
	pxy_admin_drop();
}
