/*
 * conn.c - one TLS connection: handshake, I/O, close, and what the peer
 * proved.  The mbedTLS context is the first member, so callbacks that only
 * get the mbedTLS context find their connection without a lookup.
 */
#include "internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <mbedtls/net_sockets.h>

struct mtls_conn {
	mbedtls_ssl_context ssl; /* first: see conn_of() */
	mtls_ctx *ctx;           /* reference */
	mtls_snap *snap;         /* the listener's or upstream's material */
	mtls_snap *host_snap;    /* server: the SNI host's, when one matched */
	mtls_err err;
	int setup_err;           /* the snapshot could not be built */
	int fd;
	mtls_send_fn send_fn;
	mtls_recv_fn recv_fn;
	void *user;
	int sys_errno;
	int hs_done;
	int resumed;             /* server: a ticket or cached session used */
	int verified_chain;      /* verify_cb ran: a full handshake */
	int policy_failed;
	int name_failed;
	int saw_cert;            /* verify_cb saw a peer leaf */
	uint32_t chain_flags;    /* what verify_cb saw, for failed handshakes */
	char peer_subject[256];  /* the leaf's subject, for messages */
	int ip_target;
	char *target;            /* client: the name checked */
	char sni[256];           /* server: the name the client sent */
};

/* The connection whose handshake runs on this thread, for the session
 * callbacks, which mbedTLS calls without the connection. */
static _Thread_local mtls_conn *hs_conn;

void mtls__mark_resumed(void)
{
	if (hs_conn != NULL)
		hs_conn->resumed = 1;
}

static mtls_conn *conn_of(mbedtls_ssl_context *ssl)
{
	return (mtls_conn *)(void *)((char *)ssl - offsetof(mtls_conn, ssl));
}

/* The material that judges the peer: the SNI host's, else the context's. */
static const mtls_snap *judge(const mtls_conn *c)
{
	return c->host_snap != NULL ? c->host_snap : c->snap;
}

/* ---- I/O callbacks -------------------------------------------------------- */

static int fd_send(void *p, const unsigned char *buf, size_t len)
{
	mtls_conn *c = p;
	ssize_t n;

	do
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	c->sys_errno = errno;
	return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int fd_recv(void *p, unsigned char *buf, size_t len)
{
	mtls_conn *c = p;
	ssize_t n;

	do
		n = recv(c->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return MBEDTLS_ERR_SSL_WANT_READ;
	c->sys_errno = errno;
	return MBEDTLS_ERR_NET_RECV_FAILED;
}

static int user_send(void *p, const unsigned char *buf, size_t len)
{
	mtls_conn *c = p;
	ssize_t n = c->send_fn(c->user, buf, len);

	if (n > 0)
		return (int)(n > (ssize_t)len ? (ssize_t)len : n);
	if (n == MTLS_WANT_WRITE || n == MTLS_WANT_READ)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int user_recv(void *p, unsigned char *buf, size_t len)
{
	mtls_conn *c = p;
	ssize_t n = c->recv_fn(c->user, buf, len);

	if (n >= 0)
		return (int)(n > (ssize_t)len ? (ssize_t)len : n);
	if (n == MTLS_WANT_READ || n == MTLS_WANT_WRITE)
		return MBEDTLS_ERR_SSL_WANT_READ;
	return MBEDTLS_ERR_NET_RECV_FAILED;
}

/* ---- verification ---------------------------------------------------------- */

/* Called by mbedTLS for each certificate of the peer's chain, root first.
 * At the leaf it adds what mbedTLS does not check: IP targets and the
 * identity allow list; insecure mode clears everything here (a TLS 1.3
 * client cannot be told VERIFY_OPTIONAL). */
static int verify_cb(void *p, mbedtls_x509_crt *crt, int depth,
                     uint32_t *flags)
{
	mtls_conn *c = p;
	const mtls_snap *s = judge(c);

	c->verified_chain = 1;
	if (depth != 0) {
		c->chain_flags |= *flags;
		return 0;
	}
	c->saw_cert = 1;
	mtls__fmt_dn(&crt->subject, c->peer_subject, sizeof(c->peer_subject));
	if (s->insecure) {
		*flags = 0;
		return 0;
	}
	if (c->ip_target && !mtls__crt_has_ip(crt, c->target)) {
		*flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
		c->name_failed = 1;
	}
	if (!mtls__allow_match(s->allow, s->n_allow, crt)) {
		*flags |= MBEDTLS_X509_BADCERT_OTHER;
		c->policy_failed = 1;
	}
	c->chain_flags |= *flags;
	return 0;
}

/* Server: picks the host for the SNI name the client sent. */
int mtls__sni_cb(void *p, mbedtls_ssl_context *ssl, const unsigned char *name,
                 size_t len)
{
	mtls_conn *c = conn_of(ssl);
	mtls_ctx *host;
	mtls_snap *hs = NULL;
	const mtls_snap *s;
	int mode;

	(void)p;
	if (len >= sizeof(c->sni) || memchr(name, '\0', len) != NULL)
		return -1;
	memcpy(c->sni, name, len);
	c->sni[len] = '\0';
	host = mtls__hosts_find(c->ctx->hosts, c->sni, len);
	if (host == NULL)
		return c->ctx->unknown_host == MTLS_SNI_REFUSE ? -1 : 0;
	if (mtls__snap_get(host, &hs, &c->err) != 0)
		return -1;
	mtls__snap_unref(c->host_snap);
	c->host_snap = hs;
	s = hs;
	mode = s->verify == MTLS_VERIFY_REQUIRE   ? MBEDTLS_SSL_VERIFY_REQUIRED
	       : s->verify == MTLS_VERIFY_OPTIONAL ? MBEDTLS_SSL_VERIFY_OPTIONAL
	                                           : MBEDTLS_SSL_VERIFY_NONE;
	if (mbedtls_ssl_set_hs_own_cert(ssl, &s->cred->chain, &s->cred->key))
		return -1;
	if (s->trust != NULL)
		mbedtls_ssl_set_hs_ca_chain(ssl, &s->trust->ca,
		                            s->crl ? &s->crl->crl : NULL);
	mbedtls_ssl_set_hs_authmode(ssl, mode);
	return 0;
}

/* ---- construction ---------------------------------------------------------- */

static int setup(mtls_conn *c, const char *server_name)
{
	const char *name;
	int ret;

	if ((ret = mtls__snap_get(c->ctx, &c->snap, &c->err)) != 0)
		return ret;
	if ((ret = mbedtls_ssl_setup(&c->ssl, &c->snap->conf)) != 0)
		return mtls__fail(&c->err, MTLS_ERR_NO_MEMORY,
		                  "connection setup failed (-0x%04x)",
		                  (unsigned)-ret);
	mbedtls_ssl_set_verify(&c->ssl, verify_cb, c);
	if (c->ctx->role != MTLS_ROLE_CLIENT)
		return 0;

	name = c->snap->server_name != NULL ? c->snap->server_name
	                                    : server_name;
	if (name == NULL || name[0] == '\0') {
		if (c->snap->insecure)
			return mbedtls_ssl_set_hostname(&c->ssl, NULL) == 0
			           ? 0
			           : MTLS_ERR_INTERNAL;
		return mtls__fail(&c->err, MTLS_ERR_NOT_CONFIGURED,
		                  "no server name to verify the upstream "
		                  "against: pass server_name to mtls_conn_new "
		                  "or call mtls_ctx_set_server_name");
	}
	if ((c->target = strdup(name)) == NULL)
		return mtls__fail(&c->err, MTLS_ERR_NO_MEMORY, "out of memory");
	c->ip_target = mtls__is_ip(name);
	/* IP targets send no SNI (RFC 6066) and are matched against IP SANs
	 * by verify_cb; names are checked by mbedTLS. */
	if (mbedtls_ssl_set_hostname(&c->ssl, c->ip_target ? NULL : name) != 0)
		return mtls__fail(&c->err, MTLS_ERR_INVALID_ARG,
		                  "server name \"%s\" is not usable", name);
	mtls__ctx_offer_session(c->ctx, &c->ssl);
	if (c->snap->insecure)
		mtls__log(MTLS_LOG_WARN, c->ctx->name,
		          "INSECURE: connecting to %s without verifying its "
		          "certificate", name);
	return 0;
}

static mtls_conn *conn_new(mtls_ctx *ctx, const char *server_name)
{
	mtls_conn *c;

	if (ctx == NULL)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	mbedtls_ssl_init(&c->ssl);
	c->ctx = mtls__ctx_ref(ctx);
	c->fd = -1;
	c->setup_err = setup(c, server_name);
	if (c->setup_err != 0 && c->err.code == 0)
		mtls__fail(&c->err, c->setup_err, "%s",
		           mtls_strerror(c->setup_err));
	return c;
}

mtls_conn *mtls_conn_new(mtls_ctx *ctx, int fd, const char *server_name)
{
	mtls_conn *c = conn_new(ctx, server_name);

	if (c == NULL)
		return NULL;
	c->fd = fd;
	mbedtls_ssl_set_bio(&c->ssl, c, fd_send, fd_recv, NULL);
	return c;
}

mtls_conn *mtls_conn_new_io(mtls_ctx *ctx, mtls_send_fn send_fn,
                            mtls_recv_fn recv_fn, void *user,
                            const char *server_name)
{
	mtls_conn *c;

	if (send_fn == NULL || recv_fn == NULL)
		return NULL;
	c = conn_new(ctx, server_name);
	if (c == NULL)
		return NULL;
	c->send_fn = send_fn;
	c->recv_fn = recv_fn;
	c->user = user;
	mbedtls_ssl_set_bio(&c->ssl, c, user_send, user_recv, NULL);
	return c;
}

void mtls_conn_free(mtls_conn *c)
{
	if (c == NULL)
		return;
	mbedtls_ssl_free(&c->ssl);
	mtls__snap_unref(c->host_snap);
	mtls__snap_unref(c->snap);
	mtls__ctx_unref(c->ctx);
	free(c->target);
	free(c);
}

/* ---- errors ------------------------------------------------------------------ */

/* The peer-verification outcome as an MTLS_ERR_PEER_* code. */
static int verify_code(const mtls_conn *c, uint32_t flags)
{
	/* Until the handshake completes, mbedTLS keeps the peer's
	 * certificate out of reach: verify_cb noted whether there was one. */
	if (c->hs_done ? mtls__peer_cert(&c->ssl) == NULL : !c->saw_cert)
		return MTLS_ERR_PEER_NO_CERT;
	if (flags == 0)
		return judge(c)->insecure ? MTLS_ERR_PEER_NOT_VERIFIED : 0;
	if (flags & MBEDTLS_X509_BADCERT_REVOKED)
		return MTLS_ERR_PEER_REVOKED;
	if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
		return MTLS_ERR_PEER_UNTRUSTED;
	if (flags & MBEDTLS_X509_BADCERT_EXPIRED)
		return MTLS_ERR_PEER_EXPIRED;
	if (flags & MBEDTLS_X509_BADCERT_FUTURE)
		return MTLS_ERR_PEER_NOT_YET_VALID;
	if (flags & (MBEDTLS_X509_BADCERT_EXT_KEY_USAGE |
	             MBEDTLS_X509_BADCERT_KEY_USAGE |
	             MBEDTLS_X509_BADCERT_NS_CERT_TYPE))
		return MTLS_ERR_PEER_EKU;
	if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH)
		return MTLS_ERR_PEER_NAME;
	if (c->policy_failed)
		return MTLS_ERR_PEER_POLICY;
	return MTLS_ERR_PEER_NOT_VERIFIED;
}

static const char *peer_word(const mtls_conn *c)
{
	return c->ctx->role == MTLS_ROLE_SERVER ? "client" : "upstream";
}

static uint32_t verify_flags(const mtls_conn *c)
{
	uint32_t flags = mbedtls_ssl_get_verify_result(&c->ssl);

	/* -1 (all bits) means "not verified yet": use what verify_cb saw. */
	return flags == (uint32_t)-1 ? c->chain_flags : flags | c->chain_flags;
}

static int verify_failure(mtls_conn *c)
{
	uint32_t flags = verify_flags(c);
	int code = verify_code(c, flags);
	char info[256] = "";

	if (code == MTLS_ERR_PEER_NO_CERT)
		return mtls__fail(&c->err, code,
		                  "%s certificate required but not presented",
		                  peer_word(c));
	if (code == MTLS_ERR_PEER_NAME)
		return mtls__fail(&c->err, code,
		                  "upstream certificate (%s) not valid for %s",
		                  c->peer_subject, c->target ? c->target : "?");
	if (code == MTLS_ERR_PEER_POLICY)
		return mtls__fail(&c->err, code,
		                  "%s certificate (%s) not allowed by policy",
		                  peer_word(c), c->peer_subject);
	mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
	info[strcspn(info, "\n")] = '\0';
	return mtls__fail(&c->err, code, "%s certificate (%s) refused: %s",
	                  peer_word(c), c->peer_subject,
	                  info[0] ? info : mtls_strerror(code));
}

/* Turns an mbedTLS return into ours, recording the detail. */
static int map_error(mtls_conn *c, int ret)
{
	char why[160];

	switch (ret) {
	case MBEDTLS_ERR_SSL_WANT_READ:
		return MTLS_WANT_READ;
	case MBEDTLS_ERR_SSL_WANT_WRITE:
		return MTLS_WANT_WRITE;
#if defined(MBEDTLS_ERR_SSL_ASYNC_IN_PROGRESS)
	case MBEDTLS_ERR_SSL_ASYNC_IN_PROGRESS:
		return MTLS_WANT_READ;
#endif
	case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
		return verify_failure(c);
#if defined(MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE)
	case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE:
		return mtls__fail(&c->err, MTLS_ERR_PEER_NO_CERT,
		                  "client certificate required but not "
		                  "presented");
#endif
	case MBEDTLS_ERR_NET_SEND_FAILED:
	case MBEDTLS_ERR_NET_RECV_FAILED:
		if (!c->hs_done && c->ctx->role == MTLS_ROLE_CLIENT &&
		    (c->sys_errno == EPIPE || c->sys_errno == ECONNRESET))
			return mtls__fail(&c->err, MTLS_ERR_IO,
			                  "upstream closed the connection during "
			                  "the handshake (%s): it may have "
			                  "refused our client certificate",
			                  strerror(c->sys_errno));
		return mtls__fail(&c->err, MTLS_ERR_IO, "I/O error: %s",
		                  c->sys_errno ? strerror(c->sys_errno)
		                               : "callback failed");
	case MBEDTLS_ERR_SSL_CONN_EOF:
		return mtls__fail(&c->err, MTLS_ERR_CLOSED,
		                  "connection closed by the %s%s", peer_word(c),
		                  c->hs_done ? " without close_notify"
		                             : " during the handshake");
	case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE:
		return mtls__fail(&c->err, MTLS_ERR_ALERT,
		                  c->ctx->role == MTLS_ROLE_CLIENT && c->hs_done
		                      ? "upstream sent a fatal alert (it may "
		                        "have refused our client certificate)"
		                      : "%s sent a fatal alert",
		                  peer_word(c));
	default:
		break;
	}
	/* mbedTLS reports a refused certificate (usage, policy) as a bad
	 * Certificate message: the flags say why. */
	if (!c->hs_done && c->saw_cert && verify_flags(c) != 0)
		return verify_failure(c);
	mtls__mbedtls_reason(ret, why, sizeof(why));
	return mtls__fail(&c->err, MTLS_ERR_HANDSHAKE, "%s (-0x%04x)", why,
	                  (unsigned)-ret);
}

static int fail_logged(mtls_conn *c, int code)
{
	if (code < 0 && code != MTLS_WANT_READ && code != MTLS_WANT_WRITE)
		mtls__log(MTLS_LOG_DEBUG, c->ctx->name, "connection failed: %s",
		          c->err.msg);
	return code;
}

/* ---- handshake and I/O -------------------------------------------------------- */

int mtls_handshake(mtls_conn *c)
{
	int ret;

	if (c == NULL)
		return MTLS_ERR_INVALID_ARG;
	if (c->setup_err != 0)
		return c->setup_err;
	if (c->hs_done)
		return 0;
	if (c->err.code != 0)
		return c->err.code; /* a failed handshake stays failed */
	hs_conn = c;
	do
		ret = mbedtls_ssl_handshake(&c->ssl);
#if defined(MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
	while (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET);
#else
	while (0);
#endif
	hs_conn = NULL;
	if (ret != 0) {
		int code = map_error(c, ret);
		if (code == MTLS_WANT_READ || code == MTLS_WANT_WRITE) {
			c->err.code = 0;
			return code;
		}
		return fail_logged(c, code);
	}
	c->hs_done = 1;
	if (c->ctx->role == MTLS_ROLE_CLIENT &&
	    mtls__ssl_version(&c->ssl) < MTLS_TLS1_3)
		mtls__ctx_save_session(c->ctx, &c->ssl);
	return 0;
}

ssize_t mtls_read(mtls_conn *c, void *buf, size_t len)
{
	int ret;

	if (c == NULL || (buf == NULL && len > 0))
		return MTLS_ERR_INVALID_ARG;
	if (!c->hs_done && (ret = mtls_handshake(c)) != 0)
		return ret;
	for (;;) {
		ret = mbedtls_ssl_read(&c->ssl, buf, len);
#if defined(MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
		/* TLS 1.3 tickets arrive after the handshake. */
		if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
			mtls__ctx_save_session(c->ctx, &c->ssl);
			continue;
		}
#endif
		break;
	}
	if (ret >= 0)
		return ret;
	if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
		return 0;
	return fail_logged(c, map_error(c, ret));
}

ssize_t mtls_write(mtls_conn *c, const void *buf, size_t len)
{
	int ret;

	if (c == NULL || (buf == NULL && len > 0))
		return MTLS_ERR_INVALID_ARG;
	if (!c->hs_done && (ret = mtls_handshake(c)) != 0)
		return ret;
	do
		ret = mbedtls_ssl_write(&c->ssl, buf, len);
#if defined(MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
	while (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET);
#else
	while (0);
#endif
	if (ret >= 0)
		return ret;
	return fail_logged(c, map_error(c, ret));
}

int mtls_close(mtls_conn *c)
{
	int ret;

	if (c == NULL)
		return MTLS_ERR_INVALID_ARG;
	if (!c->hs_done)
		return 0;
	ret = mbedtls_ssl_close_notify(&c->ssl);
	if (ret == 0)
		return 0;
	return fail_logged(c, map_error(c, ret));
}

/* ---- queries -------------------------------------------------------------------- */

const char *mtls_conn_error(const mtls_conn *c)
{
	if (c == NULL || c->err.code == 0)
		return NULL;
	return c->err.msg;
}

int mtls_conn_errno(const mtls_conn *c)
{
	return c != NULL ? c->sys_errno : 0;
}

const char *mtls_conn_version(const mtls_conn *c)
{
	if (c == NULL || !c->hs_done)
		return NULL;
	return mtls__ssl_version(&c->ssl) == MTLS_TLS1_3 ? "TLSv1.3" : "TLSv1.2";
}

const char *mtls_conn_cipher(const mtls_conn *c)
{
	if (c == NULL || !c->hs_done)
		return NULL;
	return mbedtls_ssl_get_ciphersuite(&c->ssl);
}

const char *mtls_conn_alpn(const mtls_conn *c)
{
	if (c == NULL || !c->hs_done)
		return NULL;
	return mbedtls_ssl_get_alpn_protocol(&c->ssl);
}

const char *mtls_conn_sni(const mtls_conn *c)
{
	if (c == NULL || c->sni[0] == '\0')
		return NULL;
	return c->sni;
}

int mtls_conn_resumed(const mtls_conn *c)
{
	if (c == NULL || !c->hs_done)
		return 0;
	/* A client verifies the upstream in every full handshake. */
	if (c->ctx->role == MTLS_ROLE_CLIENT)
		return !c->verified_chain;
	return c->resumed;
}

int mtls_verify_peer(const mtls_conn *c, mtls_peer *peer)
{
	const mbedtls_x509_crt *crt;
	int code;

	if (c == NULL)
		return MTLS_ERR_INVALID_ARG;
	if (!c->hs_done)
		return MTLS_ERR_STATE;
	crt = mtls__peer_cert(&c->ssl);
	if (peer != NULL)
		mtls__peer_fill(crt, peer);
	if (crt == NULL)
		return MTLS_ERR_PEER_NO_CERT;
	code = verify_code(c, verify_flags(c));
	return code;
}
