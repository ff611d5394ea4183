/*
 * mtls-check --connect HOST:PORT [CERT KEY] [--ca CA] [--servername NAME]
 *
 * Makes the handshake with libmtls as a client (the same code mtls-proxy
 * uses towards an upstream) and says in plain words what happened: the
 * server's chain and whether it verifies, whether the server asked for a
 * client certificate and which CA names it accepts, version, cipher, and
 * why the server or we refused.
 *
 * What can be seen: the library's own verdict and error text; the chain
 * the server sent (from a second look with verification off when the first
 * handshake refused it); and, by reading the records as they arrive, every
 * plaintext handshake message and alert.  In TLS 1.2 the CertificateRequest
 * (with its CA names) and the alerts sent during the handshake are
 * plaintext.  In TLS 1.3 they are encrypted and mbedTLS (2.28, 3.6) keeps
 * neither the request nor its certificate_authorities, so a TLS 1.2 probe
 * is made to read them when the server also speaks 1.2.
 *
 * Exit status: 0 handshake done and the server verified (and no refusal
 * seen); 1 the handshake failed or the server did not verify; 2 usage or a
 * local file (CERT, KEY, CA) that does not load; 3 the address could not be
 * resolved or reached.
 */
#include "internal.h"
#include "connect.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509.h>
#include <mbedtls/x509_crt.h>

#define IO_TIMEOUT_MS 10000
#define LATE_WAIT_MS 1500    /* TLS 1.3: how long to wait for a refusal */
#define MAX_CA_NAMES 32
#define HS_BUF 65536

enum { EXIT_OK = 0, EXIT_TLS = 1, EXIT_USAGE = 2, EXIT_REACH = 3 };

typedef struct copts {
	const char *target, *cert, *key, *ca, *servername;
	char host[256], port[16];
} copts;

/* What the plaintext records showed. */
typedef struct wire {
	int fd;
	int encrypted;           /* the server's ChangeCipherSpec (or 1.3) seen */
	unsigned char rec_hdr[5];
	size_t hdr_have;
	size_t body_left;
	int rec_type;
	unsigned char hs[HS_BUF]; /* handshake bytes of the current messages */
	size_t hs_len;
	int hs_overflow;
	int cert_req;            /* a CertificateRequest was read */
	int ncas;
	char cas[MAX_CA_NAMES][300];
	int alert_level, alert_desc; /* -1 none */
	int records_after_hs;    /* records that came after our handshake */
	int hs_done;
} wire;

static const struct { int code; const char *name; } alert_names[] = {
	{0, "close_notify"}, {10, "unexpected_message"},
	{20, "bad_record_mac"}, {22, "record_overflow"},
	{40, "handshake_failure"}, {42, "bad_certificate"},
	{43, "unsupported_certificate"}, {44, "certificate_revoked"},
	{45, "certificate_expired"}, {46, "certificate_unknown"},
	{47, "illegal_parameter"}, {48, "unknown_ca"}, {49, "access_denied"},
	{50, "decode_error"}, {51, "decrypt_error"}, {70, "protocol_version"},
	{71, "insufficient_security"}, {80, "internal_error"},
	{86, "inappropriate_fallback"}, {90, "user_canceled"},
	{109, "missing_extension"}, {110, "unsupported_extension"},
	{112, "unrecognized_name"}, {116, "certificate_required"},
	{120, "no_application_protocol"},
};

/* What an alert from the server most likely means for the person asking. */
static const char *alert_meaning(int d)
{
	switch (d) {
	case 116: return "the server requires a client certificate and we sent none";
	case 48: return "the server does not trust the CA that issued our certificate";
	case 42: return "the server rejected our certificate";
	case 45: return "the server says our certificate has expired";
	case 44: return "the server says our certificate is revoked";
	case 46: return "the server could not verify our certificate";
	case 43: return "the server does not accept our certificate's type or usage";
	case 40: return "the server found no parameters (version, cipher, group, signature) it shares with us, or refused our certificate";
	case 70: return "the server does not speak a protocol version we offered";
	case 112: return "the server does not serve the name we sent (SNI)";
	case 49: return "the server denied access";
	default: return NULL;
	}
}

/* Hook: when the library names alerts itself (a reason code on the
 * connection), prefer it; main has only the text of mtls_conn_error(). */
static const char *alert_name(int d)
{
	size_t i;

	for (i = 0; i < sizeof(alert_names) / sizeof(alert_names[0]); i++)
		if (alert_names[i].code == d)
			return alert_names[i].name;
	return "unknown alert";
}

/* ---- reading plaintext records ------------------------------------------ */

/* One DER DistinguishedName as text, escaped. */
static void dn_text(const unsigned char *p, size_t len, char *out, size_t cap)
{
	unsigned char *q = (unsigned char *)p, *end = q + len, *set_end;
	mbedtls_x509_name names[16], *cur = NULL;
	size_t l;
	int n = 0;
	char raw[512];

	memset(names, 0, sizeof(names));
	snprintf(out, cap, "(unreadable name)");
	if (mbedtls_asn1_get_tag(&q, end, &l, MBEDTLS_ASN1_CONSTRUCTED |
	                         MBEDTLS_ASN1_SEQUENCE) != 0)
		return;
	end = q + l;
	while (q < end && n < 16) {
		if (mbedtls_asn1_get_tag(&q, end, &l, MBEDTLS_ASN1_CONSTRUCTED |
		                         MBEDTLS_ASN1_SET) != 0)
			return;
		set_end = q + l;
		while (q < set_end && n < 16) {
			mbedtls_x509_name *nm = &names[n];
			unsigned char *seq_end;

			if (mbedtls_asn1_get_tag(&q, set_end, &l,
			                         MBEDTLS_ASN1_CONSTRUCTED |
			                         MBEDTLS_ASN1_SEQUENCE) != 0)
				return;
			seq_end = q + l;
			if (mbedtls_asn1_get_tag(&q, seq_end, &l,
			                         MBEDTLS_ASN1_OID) != 0)
				return;
			nm->oid.tag = MBEDTLS_ASN1_OID;
			nm->oid.p = q;
			nm->oid.len = l;
			q += l;
			if (q >= seq_end)
				return;
			nm->val.tag = *q++;
			if (mbedtls_asn1_get_len(&q, seq_end, &l) != 0)
				return;
			nm->val.p = q;
			nm->val.len = l;
			q = seq_end;
			if (cur != NULL)
				cur->next = nm;
			cur = nm;
			n++;
		}
		q = set_end;
	}
	if (n == 0) {
		snprintf(out, cap, "(empty name)");
		return;
	}
	if (mbedtls_x509_dn_gets(raw, sizeof(raw), &names[0]) < 0)
		return;
	mtls__escape(out, cap, raw);
}

static unsigned get16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static size_t get24(const unsigned char *p)
{
	return (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
}

/* TLS 1.2 CertificateRequest: types<1..255>, sig_algs<2..2^16-2>,
 * certificate_authorities<0..2^16-1> of DistinguishedName<1..2^16-1>. */
static void parse_cert_request(wire *w, const unsigned char *p, size_t len)
{
	size_t off = 0, l, end;

	w->cert_req = 1;
	if (len < 1 || (l = p[0], off = 1 + l) + 2 > len)
		return;
	l = get16(p + off);
	off += 2 + l;
	if (off + 2 > len)
		return;
	end = off + 2 + get16(p + off);
	off += 2;
	if (end > len)
		return;
	while (off + 2 <= end && w->ncas < MAX_CA_NAMES) {
		l = get16(p + off);
		off += 2;
		if (off + l > end)
			return;
		dn_text(p + off, l, w->cas[w->ncas++], sizeof(w->cas[0]));
		off += l;
	}
}

static void take_handshake(wire *w, const unsigned char *p, size_t n)
{
	size_t off = 0, mlen;

	if (w->hs_overflow)
		return;
	if (w->hs_len + n > sizeof(w->hs)) {
		w->hs_overflow = 1;
		return;
	}
	memcpy(w->hs + w->hs_len, p, n);
	w->hs_len += n;
	while (w->hs_len - off >= 4) {
		mlen = get24(w->hs + off + 1);
		if (w->hs_len - off - 4 < mlen)
			break;
		if (w->hs[off] == 13)
			parse_cert_request(w, w->hs + off + 4, mlen);
		off += 4 + mlen;
	}
	memmove(w->hs, w->hs + off, w->hs_len - off);
	w->hs_len -= off;
}

/* Follows the record layer of what the server sends. */
static void observe(wire *w, const unsigned char *p, size_t n)
{
	while (n > 0) {
		size_t take;

		if (w->hdr_have < 5) {
			w->rec_hdr[w->hdr_have++] = *p++;
			n--;
			if (w->hdr_have == 5) {
				w->rec_type = w->rec_hdr[0];
				w->body_left = get16(w->rec_hdr + 3);
				if (w->hs_done)
					w->records_after_hs++;
				if (w->rec_type == 23)
					w->encrypted = 1;
			}
			continue;
		}
		take = n < w->body_left ? n : w->body_left;
		if (!w->encrypted && w->rec_type == 22)
			take_handshake(w, p, take);
		if (!w->encrypted && w->rec_type == 21 && take >= 2 &&
		    w->body_left == 2 && w->alert_desc < 0) {
			w->alert_level = p[0];
			w->alert_desc = p[1];
		}
		p += take;
		n -= take;
		w->body_left -= take;
		if (w->body_left == 0) {
			if (w->rec_type == 20)
				w->encrypted = 1;
			w->hdr_have = 0;
		}
	}
}

static int wait_fd(int fd, short ev, int ms)
{
	struct pollfd pfd = {fd, ev, 0};
	int r;

	do
		r = poll(&pfd, 1, ms);
	while (r < 0 && errno == EINTR);
	return r;
}

static ssize_t w_send(void *user, const void *buf, size_t len)
{
	wire *w = user;
	ssize_t r = send(w->fd, buf, len, MSG_NOSIGNAL);

	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return MTLS_WANT_WRITE;
	return r < 0 ? -1 : r;
}

static ssize_t w_recv(void *user, void *buf, size_t len)
{
	wire *w = user;
	ssize_t r = recv(w->fd, buf, len, 0);

	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return MTLS_WANT_READ;
	if (r > 0)
		observe(w, buf, (size_t)r);
	return r < 0 ? -1 : r;
}

/* ---- connecting --------------------------------------------------------- */

static int split_target(copts *o)
{
	const char *t = o->target, *colon;
	size_t hl;

	if (t[0] == '[') {
		const char *rb = strchr(t, ']');
		if (rb == NULL || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - t - 1);
		t++;
		colon = rb + 1;
	} else {
		colon = strrchr(t, ':');
		if (colon == NULL)
			return -1;
		hl = (size_t)(colon - t);
	}
	if (hl == 0 || hl >= sizeof(o->host) || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= sizeof(o->port))
		return -1;
	memcpy(o->host, t, hl);
	o->host[hl] = '\0';
	snprintf(o->port, sizeof(o->port), "%s", colon + 1);
	return 0;
}

/* A non-blocking connected socket, or -1 with a message printed. */
static int dial(const copts *o)
{
	struct addrinfo hints, *res = NULL, *ai;
	int fd = -1, r, err = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	r = getaddrinfo(o->host, o->port, &hints, &res);
	if (r != 0) {
		printf("connect: cannot resolve %s: %s\n", o->host,
		       gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		socklen_t sl = sizeof(err);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		            SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		if (errno == EINPROGRESS &&
		    wait_fd(fd, POLLOUT, IO_TIMEOUT_MS) > 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) == 0 &&
		    err == 0)
			break;
		if (err == EINPROGRESS)
			err = ETIMEDOUT;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		printf("connect: cannot reach %s port %s: %s\n", o->host,
		       o->port, strerror(err != 0 ? err : ECONNREFUSED));
	return fd;
}

/* Drives the handshake with timeouts; the library's result. */
static int handshake(mtls_conn *c, wire *w)
{
	int r;

	for (;;) {
		r = mtls_handshake(c);
		if (r == MTLS_WANT_READ || r == MTLS_WANT_WRITE) {
			if (wait_fd(w->fd, r == MTLS_WANT_READ ? POLLIN : POLLOUT,
			            IO_TIMEOUT_MS) <= 0)
				return MTLS_ERR_IO;
			continue;
		}
		return r;
	}
}

/* TLS 1.3: the server judges our certificate after our Finished; wait a
 * little for its answer (a ticket, data, or an alert). */
static int late_refusal(mtls_conn *c, wire *w)
{
	unsigned char buf[256];
	ssize_t r;
	int waited = 0;

	w->hs_done = 1;
	while (waited < 4) {
		r = mtls_read(c, buf, sizeof(buf));
		if (r > 0 || r == 0)
			return 0;
		if (r != MTLS_WANT_READ && r != MTLS_WANT_WRITE)
			return (int)r;
		if (w->records_after_hs > 0 && waited > 0)
			return 0;
		if (wait_fd(w->fd, POLLIN, LATE_WAIT_MS) <= 0)
			return 0;
		waited++;
	}
	return 0;
}

/* ---- reporting ---------------------------------------------------------- */

static void print_time(const char *label, const mbedtls_x509_time *t)
{
	printf("%s%04d-%02d-%02d %02d:%02d:%02d UTC", label, t->year, t->mon,
	       t->day, t->hour, t->min, t->sec);
}

/* The chain the server sent, through the library's public accessors
 * (the DER of each certificate, kept by the connection). */
static void print_chain(const mtls_conn *conn)
{
	int n = mtls_conn_peer_cert_count(conn);
	char raw[512], esc[600];

	if (n <= 0) {
		printf("chain: the server sent no certificate we kept\n");
		return;
	}
	printf("chain (as the server sent it):\n");
	for (int i = 0; i < n; i++) {
		size_t len = 0;
		const unsigned char *der = mtls_conn_peer_cert_der(conn, i, &len);
		mbedtls_x509_crt crt;

		mbedtls_x509_crt_init(&crt);
		if (der == NULL || mbedtls_x509_crt_parse_der(&crt, der, len) != 0) {
			printf("  %d (not parsed)\n", i);
			mbedtls_x509_crt_free(&crt);
			continue;
		}
		if (mbedtls_x509_dn_gets(raw, sizeof(raw), &crt.subject) < 0)
			snprintf(raw, sizeof(raw), "?");
		mtls__escape(esc, sizeof(esc), raw);
		printf("  %d subject: %s\n", i, esc);
		if (mbedtls_x509_dn_gets(raw, sizeof(raw), &crt.issuer) < 0)
			snprintf(raw, sizeof(raw), "?");
		mtls__escape(esc, sizeof(esc), raw);
		printf("    issuer:  %s\n", esc);
		print_time("    valid:   ", &crt.valid_from);
		print_time(" to ", &crt.valid_to);
		printf("%s\n", mbedtls_x509_time_is_past(&crt.valid_to)
		                   ? " (EXPIRED)"
		                   : mbedtls_x509_time_is_future(&crt.valid_from)
		                         ? " (NOT YET VALID)" : "");
		mbedtls_x509_crt_free(&crt);
	}
}

static void print_request(const wire *w, const char *how)
{
	int i;

	if (!w->cert_req) {
		printf("client certificate: not asked for%s\n", how);
		return;
	}
	printf("client certificate: asked for%s; ", how);
	if (w->ncas == 0) {
		printf("the server names no CAs (any issuer it trusts)\n");
		return;
	}
	printf("CAs the server accepts:\n");
	for (i = 0; i < w->ncas; i++)
		printf("  %s\n", w->cas[i]);
}

static void print_alert(const wire *w)
{
	const char *m;

	if (w->alert_desc < 0)
		return;
	m = alert_meaning(w->alert_desc);
	printf("server alert: %s (%d)%s%s\n", alert_name(w->alert_desc),
	       w->alert_desc, m != NULL ? ": " : "", m != NULL ? m : "");
}

static void quiet_log(void *user, int level, const char *msg)
{
	(void)user;
	(void)level;
	(void)msg;
}

/* A client context for one attempt; NULL after printing why (*exit_code
 * set). */
static mtls_ctx *make_ctx(const copts *o, int insecure, int tls12_only,
                          int *exit_code)
{
	mtls_ctx *ctx = mtls_ctx_new(MTLS_ROLE_CLIENT);
	int r = 0;

	*exit_code = EXIT_USAGE;
	if (ctx == NULL) {
		printf("error: out of memory\n");
		return NULL;
	}
	if (o->cert != NULL)
		r = mtls_load_client_pair(ctx, o->cert, o->key);
	if (r == 0)
		r = mtls_set_trusted_ca(ctx, o->ca != NULL ? o->ca : "system");
	if (r == 0 && o->servername != NULL)
		r = mtls_ctx_set_server_name(ctx, o->servername);
	if (r == 0 && insecure)
		r = mtls_ctx_insecure_skip_verify(ctx);
	if (r == 0 && tls12_only)
		r = mtls_ctx_set_tls_versions(ctx, MTLS_TLS1_2, MTLS_TLS1_2);
	if (r != 0) {
		printf("error: %s\n", mtls_ctx_error(ctx) != NULL
		                          ? mtls_ctx_error(ctx) : mtls_strerror(r));
		mtls_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

typedef struct attempt {
	wire w;
	mtls_conn *conn;
	mtls_ctx *ctx;
	int hs;      /* handshake result */
	int late;    /* TLS 1.3 refusal after the handshake */
	int verify;  /* mtls_verify_peer */
	char err[600];
} attempt;

/* One handshake; 0, or an exit code when it could not be tried. */
static int try_once(const copts *o, int insecure, int tls12_only, attempt *a)
{
	const char *e;
	int code;

	memset(a, 0, sizeof(*a));
	a->w.alert_desc = -1;
	a->w.alert_level = -1;
	a->ctx = make_ctx(o, insecure, tls12_only, &code);
	if (a->ctx == NULL)
		return code;
	a->w.fd = dial(o);
	if (a->w.fd < 0)
		return EXIT_REACH;
	/* The name the certificate is checked against: --servername (set on
	 * the context) or the host as given. */
	a->conn = mtls_conn_new_io(a->ctx, w_send, w_recv, &a->w, o->host);
	if (a->conn == NULL) {
		printf("error: out of memory\n");
		return EXIT_USAGE;
	}
	a->hs = handshake(a->conn, &a->w);
	if (a->hs == 0) {
		a->verify = mtls_verify_peer(a->conn, NULL);
		if (strcmp(mtls_conn_version(a->conn), "TLSv1.3") == 0)
			a->late = late_refusal(a->conn, &a->w);
	}
	e = mtls_conn_error(a->conn);
	if (e != NULL)
		snprintf(a->err, sizeof(a->err), "%s", e);
	return 0;
}

static void attempt_free(attempt *a)
{
	mtls_conn_free(a->conn);
	mtls_ctx_free(a->ctx);
	if (a->w.fd > 0)
		close(a->w.fd);
	a->conn = NULL;
	a->ctx = NULL;
	a->w.fd = -1;
}

static int is_verify_error(int r)
{
	return mtls_err_category(r) == mtls_err_category(MTLS_ERR_PEER_UNTRUSTED);
}

static int run(const copts *o)
{
	attempt a, look;
	int code, verified, refused, tls13;
	const char *ver;

	code = try_once(o, 0, 0, &a);
	if (code != 0) {
		attempt_free(&a);
		return code;
	}
	printf("server: %s port %s, name checked: %s\n", o->host, o->port,
	       o->servername != NULL ? o->servername : o->host);

	/* A handshake that stopped on the server's certificate: look again
	 * with verification off, only to show what the server presented. */
	if (a.hs != 0 && is_verify_error(a.hs) && a.w.alert_desc < 0) {
		printf("verification: FAILED: %s\n", a.err[0] ? a.err
		       : mtls_strerror(a.hs));
		if (try_once(o, 1, 0, &look) == 0 && look.hs == 0) {
			printf("version: %s, cipher: %s\n",
			       mtls_conn_version(look.conn),
			       mtls_conn_cipher(look.conn));
			print_chain(look.conn);
			print_request(&look.w, strcmp(mtls_conn_version(look.conn),
			              "TLSv1.3") == 0 ? " (unknown: TLS 1.3 hides it)" : "");
		} else {
			printf("(a second look without verification failed too: %s)\n",
			       look.err[0] ? look.err : "no detail");
		}
		attempt_free(&look);
		attempt_free(&a);
		printf("result: refused by us: the server's certificate does not verify\n");
		return EXIT_TLS;
	}

	if (a.hs != 0) {
		printf("handshake: FAILED: %s\n", a.err[0] ? a.err
		       : mtls_strerror(a.hs));
		print_alert(&a.w);
		if (a.w.cert_req)
			print_request(&a.w, "");
		if (a.w.cert_req && o->cert == NULL)
			printf("likely reason: the server asked for a client "
			       "certificate and we had none to send\n");
		attempt_free(&a);
		printf("result: the handshake failed\n");
		return EXIT_TLS;
	}

	ver = mtls_conn_version(a.conn);
	tls13 = strcmp(ver, "TLSv1.3") == 0;
	verified = a.verify == 0;
	refused = a.late != 0;
	printf("version: %s, cipher: %s\n", ver, mtls_conn_cipher(a.conn));
	print_chain(a.conn);
	printf("verification: %s\n", verified ? "ok (chain, dates and name)"
	       : mtls_strerror(a.verify));
	if (!tls13) {
		print_request(&a.w, "");
	} else if (try_once(o, 0, 1, &look) == 0 &&
	           (look.w.cert_req || look.hs == 0)) {
		print_request(&look.w, " (seen in a TLS 1.2 probe: TLS 1.3 "
		              "encrypts the request)");
		attempt_free(&look);
	} else {
		printf("client certificate: unknown (TLS 1.3 encrypts the "
		       "request and the server refused a TLS 1.2 probe)\n");
		attempt_free(&look);
	}
	if (refused) {
		printf("after the handshake: FAILED: %s\n", a.err[0] ? a.err
		       : mtls_strerror(a.late));
		print_alert(&a.w);
		if (o->cert == NULL)
			printf("likely reason: the server wants a client "
			       "certificate and we had none to send\n");
	}
	attempt_free(&a);
	if (refused) {
		printf("result: the server refused us after the handshake\n");
		return EXIT_TLS;
	}
	if (!verified) {
		printf("result: the server's certificate does not verify\n");
		return EXIT_TLS;
	}
	printf("result: ok\n");
	return EXIT_OK;
}

static const char connect_usage[] =
    "usage: mtls-check --connect HOST:PORT [CERT KEY] [--ca CA] "
    "[--servername NAME]\n";

int mtls_check_connect_main(int argc, char **argv)
{
	copts o;
	const char *pos[2] = {NULL, NULL};
	int npos = 0, i;

	memset(&o, 0, sizeof(o));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **slot = NULL;

		if (strcmp(a, "--connect") == 0)
			slot = &o.target;
		else if (strcmp(a, "--ca") == 0)
			slot = &o.ca;
		else if (strcmp(a, "--servername") == 0)
			slot = &o.servername;
		else if (strncmp(a, "--connect=", 10) == 0)
			o.target = a + 10;
		else if (strncmp(a, "--ca=", 5) == 0)
			o.ca = a + 5;
		else if (strncmp(a, "--servername=", 13) == 0)
			o.servername = a + 13;
		else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "mtls-check: unknown option with "
			        "--connect: %s\n%s", a, connect_usage);
			return EXIT_USAGE;
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			fprintf(stderr, "mtls-check: too many arguments: %s\n%s",
			        a, connect_usage);
			return EXIT_USAGE;
		}
		if (slot != NULL) {
			if (i + 1 >= argc || argv[i + 1][0] == '\0') {
				fprintf(stderr, "mtls-check: %s needs a value\n%s",
				        a, connect_usage);
				return EXIT_USAGE;
			}
			*slot = argv[++i];
		}
	}
	if (o.target == NULL || o.target[0] == '\0' || npos == 1 ||
	    split_target(&o) != 0) {
		fprintf(stderr, "mtls-check: --connect needs HOST:PORT, and a "
		        "certificate needs its key\n%s", connect_usage);
		return EXIT_USAGE;
	}
	o.cert = pos[0];
	o.key = pos[1];
	mtls_set_log_callback(quiet_log, NULL);
	return run(&o);
}
