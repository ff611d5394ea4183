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
	int would_block;         /* the last I/O callback had nothing to do */
	int got_data;            /* mtls_read returned application data */
	int setup_done;          /* setup() ran: at the first handshake call */
	int wq;                  /* a write's data record waits unsent */
	size_t wq_len;           /* ... carrying this many bytes */
	int close_queued;        /* mtls_close built its close_notify record */
	int close_err;           /* mtls_close failed: the answer from then on */
	char *server_name_arg;   /* client: the name given to mtls_conn_new */
	int resumed;             /* server: a ticket or cached session used */
	const mtls_snap *resumed_by; /* server: whose state resumed it */
	int sni_seen;            /* server: the SNI callback ran */
	int hellos;              /* server: ClientHellos parsed (1, or 2
	                          * after a HelloRetryRequest) */
	int sni_hello;           /* server: the ClientHello whose SNI the
	                          * callback saw last (1-based), else 0 */
	int first_had_sni;       /* server: ClientHello #1 named a server */
	int anchor_stale;        /* a learned anchor ran out before use */
	int too_deep;            /* the peer's chain is over MTLS_CHAIN_MAX */
	mbedtls_x509_crt *resumed_peer; /* server, TLS 1.3: from the ticket
	                                 * (allocated then: idle connections
	                                 * carry no empty certificate) */
	uint32_t resumed_flags;
	int resumed_policy_failed;
	int verified_chain;      /* verify_cb ran: a full handshake */
	int policy_failed;
	int name_failed;
	int saw_cert;            /* verify_cb saw a peer leaf */
	uint32_t chain_flags;    /* what verify_cb saw, for failed handshakes */
	const mbedtls_x509_crt *anchors_in_use; /* this handshake's anchors */
	mtls_anchor_seen seen;   /* the chain above the leaf, for anchors.c */
#if MTLS_HAVE_SIGCACHE
	/* signatures mbedTLS checked in this handshake (sigcache.c): kept
	 * until the handshake ends fully trusted, then remembered */
	mtls_sigkey sig_last;    /* the pair of the last lookup */
	mtls_sigkey sig_new[MTLS_CHAIN_MAX + 1];
	const mbedtls_x509_crt *sig_child, *sig_parent; /* sig_last's certs */
	int sig_last_ok;         /* sig_last could be made */
	int n_sig_new;
#endif
	int chain_len;           /* certificates in the verified chain */
	/* Strings below are allocated when set, not arrays of their maximum
	 * size: every idle connection holds them (bench/levers.md, memory). */
	int ip_target;           /* client: the name checked is an IP address */
	char *peer_subject;      /* the leaf's subject, for messages, or NULL */
	char *target;            /* client: the name checked */
	char *sni;               /* server: the name the client sent, or NULL */
	char *host;              /* server: the SNI host that judged, NULL or
	                          * "" for the listener's own (default) host */
	char *identity;          /* the identity the policy decided, or NULL */
	const char *spiffe_id;   /* identity, when it is a SPIFFE ID */
	mtls_peer_info *info;    /* the peer's leaf as text, after the
	                          * handshake (NULL: no certificate) */
	/* why it failed (mtls_conn_reason), and on which context it counts */
	mtls_reason reason;      /* of the first failure; NONE until then */
	mtls_reason why;         /* a precise reason noted before the code */
	int alert_in, alert_out; /* fatal alerts received / sent, or -1 */
	int counted;             /* the handshake's end was counted */
	mtls_ctx *host_ctx;      /* server: the SNI host that judged (the
	                          * listener holds it), else NULL */
	/* outgoing records, followed to see the plaintext alerts we send */
	unsigned char out_hdr[5];
	unsigned char out_body[2];
	size_t out_hdr_got, out_left, out_len, out_got;
	/* the top of the peer's chain, when nothing we trust issued it */
	int top_seen;            /* flagged "not trusted" at the top */
	int top_self;            /* ... a self-issued (root) certificate */
	int top_named;           /* ... a trusted CA has its issuer's name */
	int top_sent;            /* ... the peer sent its issuer's name */
	const mbedtls_x509_crt *top_crt; /* during verification only */
	struct conn_top *top;    /* its names, allocated when top_seen (a
	                          * failing handshake): not held by every
	                          * idle connection */
};

struct conn_top {
	char subject[256], issuer[256];
};

/* The connection whose handshake runs on this thread, for the session
 * callbacks, which mbedTLS calls without the connection. */
static _Thread_local mtls_conn *hs_conn;

static mtls_conn *conn_of(mbedtls_ssl_context *ssl)
{
	return (mtls_conn *)(void *)((char *)ssl - offsetof(mtls_conn, ssl));
}

/* The material that judges the peer: the SNI host's, else the context's. */
static const mtls_snap *judge(const mtls_conn *c)
{
	return c->host_snap != NULL ? c->host_snap : c->snap;
}

mtls_snap *mtls__hs_judge(void)
{
	/* Snapshots are immutable but for their own locked session state. */
	return hs_conn != NULL ? (mtls_snap *)judge(hs_conn) : NULL;
}

void mtls__mark_resumed(const mtls_snap *by)
{
	if (hs_conn != NULL) {
		hs_conn->resumed = 1;
		hs_conn->resumed_by = by;
	}
}

int mtls__hs_version(void)
{
	return hs_conn != NULL ? mtls__ssl_version(&hs_conn->ssl) : 0;
}

/* The peer's leaf: from this handshake, or from a TLS 1.3 ticket. */
static const mbedtls_x509_crt *peer_crt(const mtls_conn *c)
{
	const mbedtls_x509_crt *crt = mtls__peer_cert(&c->ssl);

	if (crt == NULL && c->resumed_peer != NULL)
		crt = c->resumed_peer;
	return crt;
}

static uint32_t verify_flags(const mtls_conn *c);

static void drop_resumed_peer(mtls_conn *c)
{
	if (c->resumed_peer != NULL) {
		mbedtls_x509_crt_free(c->resumed_peer);
		free(c->resumed_peer);
		c->resumed_peer = NULL;
	}
}

int mtls__hs_identity(const unsigned char **der, size_t *len,
                      unsigned char meta[5])
{
	const mtls_conn *c = hs_conn;
	const mbedtls_x509_crt *crt;
	uint32_t flags;

	if (c == NULL || mtls__ssl_version(&c->ssl) != MTLS_TLS1_3 ||
	    (crt = peer_crt(c)) == NULL || crt->raw.p == NULL)
		return -1;
	flags = verify_flags(c);
	meta[0] = (unsigned char)(flags >> 24);
	meta[1] = (unsigned char)(flags >> 16);
	meta[2] = (unsigned char)(flags >> 8);
	meta[3] = (unsigned char)flags;
	meta[4] = (unsigned char)c->policy_failed;
	*der = crt->raw.p;
	*len = crt->raw.len;
	return 0;
}

int mtls__hs_restore_identity(const unsigned char *der, size_t len,
                              const unsigned char meta[5])
{
	mtls_conn *c = hs_conn;

	if (c == NULL)
		return -1;
	drop_resumed_peer(c);
	c->resumed_flags = 0;
	c->resumed_policy_failed = 0;
	if (der == NULL)
		return 0;
	if ((c->resumed_peer = malloc(sizeof(*c->resumed_peer))) == NULL)
		return -1;
	mbedtls_x509_crt_init(c->resumed_peer);
	if (mbedtls_x509_crt_parse_der(c->resumed_peer, der, len) != 0) {
		drop_resumed_peer(c);
		return -1;
	}
	/* Kept aside: it becomes the connection's identity only once
	 * mbedTLS has resumed with this ticket (settle_resumption). */
	c->resumed_flags = (uint32_t)meta[0] << 24 | (uint32_t)meta[1] << 16 |
	                   (uint32_t)meta[2] << 8 | meta[3];
	c->resumed_policy_failed = meta[4] != 0;
	return 0;
}

/* ---- I/O callbacks -------------------------------------------------------- */

/* Follows the records we send (n bytes the socket took) to note a fatal
 * alert sent in the clear: mbedTLS 2.28 keeps no trace of the alerts it
 * sends, and a TLS 1.2 refusal goes out before any encryption. */
static void note_out(mtls_conn *c, const unsigned char *p, size_t n)
{
	while (n > 0) {
		size_t take;

		if (c->out_hdr_got < sizeof(c->out_hdr)) {
			c->out_hdr[c->out_hdr_got++] = *p++;
			n--;
			if (c->out_hdr_got == sizeof(c->out_hdr)) {
				c->out_len = (size_t)c->out_hdr[3] << 8 |
				             c->out_hdr[4];
				c->out_left = c->out_len;
				c->out_got = 0;
				if (c->out_left == 0)
					c->out_hdr_got = 0;
			}
			continue;
		}
		take = n < c->out_left ? n : c->out_left;
		for (size_t i = 0; i < take && c->out_got < 2; i++)
			c->out_body[c->out_got++] = p[i];
		p += take;
		n -= take;
		c->out_left -= take;
		if (c->out_left != 0)
			continue;
		if (c->out_hdr[0] == MBEDTLS_SSL_MSG_ALERT && c->out_len == 2 &&
		    c->out_body[0] == MBEDTLS_SSL_ALERT_LEVEL_FATAL)
			c->alert_out = c->out_body[1];
		c->out_hdr_got = 0;
	}
}

static int fd_send(void *p, const unsigned char *buf, size_t len)
{
	mtls_conn *c = p;
	ssize_t n;

	do
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0) {
		note_out(c, buf, (size_t)n);
		return (int)n;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		c->would_block = 1;
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	}
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
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		c->would_block = 1;
		return MBEDTLS_ERR_SSL_WANT_READ;
	}
	c->sys_errno = errno;
	return MBEDTLS_ERR_NET_RECV_FAILED;
}

static int user_send(void *p, const unsigned char *buf, size_t len)
{
	mtls_conn *c = p;
	ssize_t n = c->send_fn(c->user, buf, len);

	if (n > 0) {
		n = n > (ssize_t)len ? (ssize_t)len : n;
		note_out(c, buf, (size_t)n);
		return (int)n;
	}
	if (n == MTLS_WANT_WRITE || n == MTLS_WANT_READ) {
		c->would_block = 1;
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	}
	return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int user_recv(void *p, unsigned char *buf, size_t len)
{
	mtls_conn *c = p;
	ssize_t n = c->recv_fn(c->user, buf, len);

	if (n >= 0)
		return (int)(n > (ssize_t)len ? (ssize_t)len : n);
	if (n == MTLS_WANT_READ || n == MTLS_WANT_WRITE) {
		c->would_block = 1;
		return MBEDTLS_ERR_SSL_WANT_READ;
	}
	return MBEDTLS_ERR_NET_RECV_FAILED;
}

/* ---- verification ---------------------------------------------------------- */

/* The leaf's subject, kept for the messages of a failed verification
 * (out of memory: left out of them). */
static void note_subject(mtls_conn *c, const mbedtls_x509_crt *crt)
{
	char dn[256];

	mtls__fmt_dn(&crt->subject, dn, sizeof(dn));
	free(c->peer_subject);
	c->peer_subject = strdup(dn);
}

static const char *subject_of(const mtls_conn *c)
{
	return c->peer_subject != NULL ? c->peer_subject : "";
}

/* The first certificate verify_cb sees is the top of the chain mbedTLS
 * built.  When it is flagged "not trusted", what we know of its issuer
 * tells an unknown CA from a chain sent without its intermediate (the
 * leaf's walk over what the peer sent comes at depth 0). */
static void note_top(mtls_conn *c, const mbedtls_x509_crt *crt,
                     uint32_t flags)
{
	const mtls_snap *s = judge(c);

	if (!(flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) || s->insecure)
		return;
	/* out of memory: the failure is then told without the names */
	if (c->top == NULL && (c->top = malloc(sizeof(*c->top))) == NULL)
		return;
	c->top_seen = 1;
	c->top_self = mtls__crt_self_issued(crt);
	c->top_named = mtls__crt_find_issuer(c->anchors_in_use, crt) != NULL;
	mtls__fmt_dn(&crt->subject, c->top->subject, sizeof(c->top->subject));
	mtls__fmt_dn(&crt->issuer, c->top->issuer, sizeof(c->top->issuer));
	c->top_crt = crt; /* valid until the leaf's call (depth 0) */
}

/* Called by mbedTLS for each certificate of the peer's chain, root first.
 * At the leaf it adds what mbedTLS does not check: IP targets and the
 * identity allow list; insecure mode clears everything here (a TLS 1.3
 * client cannot be told VERIFY_OPTIONAL). */
static int verify_cb(void *p, mbedtls_x509_crt *crt, int depth,
                     uint32_t *flags)
{
	mtls_conn *c = p;
	const mtls_snap *s = judge(c);

	if (!c->verified_chain)
		note_top(c, crt, *flags);
	c->verified_chain = 1;
	if (depth >= c->chain_len)
		c->chain_len = depth + 1;
	if (s->insecure) {
		/* every depth: an unknown issuer is flagged on the top of the
		 * chain, not on the leaf */
		*flags = 0;
		if (depth == 0) {
			c->saw_cert = 1;
			note_subject(c, crt);
		}
		return 0;
	}
	if (depth > MTLS_CHAIN_MAX) {
		/* Real PKIs are shallow; a deep chain only costs us work. */
		*flags |= MBEDTLS_X509_BADCERT_NOT_TRUSTED;
		c->chain_flags |= *flags;
		c->too_deep = 1;
		return 0;
	}
	if (depth != 0) {
		/* The chain ended at a learned intermediate: decided now, at
		 * verification, not when the handshake started. */
		if (c->anchors_in_use != NULL && s->trust != NULL &&
		    c->anchors_in_use != &s->trust->ca &&
		    !mtls__anchors_current(c->anchors_in_use, time(NULL)) &&
		    mtls__anchors_has(c->anchors_in_use, crt) &&
		    !mtls__anchors_has(&s->trust->ca, crt)) {
			*flags |= MBEDTLS_X509_BADCERT_NOT_TRUSTED;
			c->anchor_stale = 1;
		}
		c->chain_flags |= *flags;
		mtls__anchors_note(&c->seen, crt, depth, c->anchors_in_use);
		/* The leaf's issuer, verified up to an anchor with nothing
		 * flagged: later handshakes may stop at it, whatever becomes
		 * of this one (its leaf is judged on its own). */
		if (depth == 1 && c->chain_flags == 0 && s->trust != NULL)
			mtls__anchors_learn((mtls_anchors *)&s->anchors,
			                    &s->trust->ca, &c->seen, time(NULL));
		return 0;
	}
	c->saw_cert = 1;
	note_subject(c, crt);
	/* the peer's whole Certificate message hangs from its leaf */
	if (c->top_crt != NULL)
		c->top_sent = mtls__crt_find_issuer(crt, c->top_crt) != NULL;
	c->top_crt = NULL;
	if (c->ip_target && !mtls__crt_has_ip(crt, c->target)) {
		*flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
		c->name_failed = 1;
	}
	if (!mtls__allow_match(s->allow, s->n_allow, crt, NULL, 0)) {
		*flags |= MBEDTLS_X509_BADCERT_OTHER;
		c->policy_failed = 1;
	}
	c->chain_flags |= *flags;
	return 0;
}

#if MTLS_HAVE_SIGCACHE
/* mbedTLS asks before each certificate-signature check whether the pair
 * was verified before, and says when it checked one.  Answers come from
 * the snapshot that judges the handshake on this thread; outside one (no
 * hs_conn), and for insecure or CA-less snapshots, the answer is always
 * "unknown" and nothing is remembered. */
int mtls__sig_hook(int event, const mbedtls_x509_crt *child,
                   const mbedtls_x509_crt *parent)
{
	mtls_conn *c = hs_conn;
	mtls_snap *s;

	if (c == NULL)
		return 0;
	s = (mtls_snap *)judge(c); /* only its locked cache changes */
	if (s->insecure || s->trust == NULL)
		return 0;
	if (event != MBEDTLS_X509_SIG_HOOK_LOOKUP) {
		mtls__sigcache_checked(&s->sigcache);
		if (event == MBEDTLS_X509_SIG_HOOK_VERIFIED && c->sig_last_ok &&
		    c->sig_child == child && c->sig_parent == parent &&
		    c->n_sig_new < (int)(sizeof(c->sig_new) /
		                         sizeof(c->sig_new[0])))
			c->sig_new[c->n_sig_new++] = c->sig_last;
		return 0;
	}
	c->sig_child = child;
	c->sig_parent = parent;
	c->sig_last_ok = mtls__sigkey_make(child, parent, s->anchors.crl_until,
	                                   &c->sig_last) == 0;
	return c->sig_last_ok &&
	       mtls__sigcache_has(&s->sigcache, &c->sig_last, time(NULL));
}

/* After a full handshake that ended trusted: no flag on the chain, the
 * policy matched, the CertificateVerify checked (the handshake is over). */
static void remember_signatures(mtls_conn *c)
{
	mtls_snap *s = (mtls_snap *)judge(c);
	time_t now = time(NULL);

	if (c->resumed || !c->verified_chain || verify_flags(c) != 0 ||
	    c->policy_failed || c->name_failed || s->insecure)
		return;
	for (int i = 0; i < c->n_sig_new; i++)
		mtls__sigcache_add(&s->sigcache, &c->sig_new[i], now);
	c->n_sig_new = 0;
}
#endif

/* The anchors this handshake verifies against: the snapshot's learned
 * intermediates in front of its trust anchors, when it has any. */
static void use_anchors(mtls_conn *c, mtls_snap *s)
{
	mbedtls_x509_crt *chain;

	if (s->trust == NULL) {
		c->anchors_in_use = NULL;
		mbedtls_ssl_set_hs_ca_chain(&c->ssl, NULL, NULL);
		return;
	}
	chain = s->insecure ? NULL
	                    : mtls__anchors_chain(&s->anchors, time(NULL));
	if (chain == NULL)
		chain = &s->trust->ca;
	mbedtls_ssl_set_hs_ca_chain(&c->ssl, chain,
	                            s->crl ? &s->crl->crl : NULL);
	/* A client chooses its certificate by the CA names we send: this
	 * snapshot's configured ones, not what it learned (and not those of
	 * the listener when an SNI host judges). */
	if (c->ctx->role == MTLS_ROLE_SERVER)
		mtls__set_hs_dn_hints(&c->ssl, &s->trust->ca);
	c->anchors_in_use = chain;
}

/* Server: the listener's own material judges (no SNI host matched): every
 * piece of per-host state goes back to the listener's. */
static void judge_by_listener(mtls_conn *c, mbedtls_ssl_context *ssl)
{
	const mtls_snap *s = c->snap;

	mtls__snap_unref(c->host_snap);
	c->host_snap = NULL;
	c->host_ctx = NULL;
	free(c->host);
	c->host = NULL;
	use_anchors(c, c->snap);
	mbedtls_ssl_set_hs_authmode(ssl, mtls__authmode(s->verify));
}

/* Server: picks the host for the SNI name the client sent.  This is the
 * one host decision of the connection: mtls_conn_host() reports it and a
 * proxy routes by it.  A name that is not a host name is refused; a second
 * ClientHello (after a HelloRetryRequest) must name the same host (RFC 8446
 * 4.1.2), or the host that judges and the name reported could differ. */
int mtls__sni_cb(void *p, mbedtls_ssl_context *ssl, const unsigned char *name,
                 size_t len)
{
	mtls_conn *c = conn_of(ssl);
	const char *matched = NULL;
	mtls_ctx *host;
	mtls_snap *hs = NULL;
	const mtls_snap *s;

	(void)p;
	c->sni_hello = c->hellos + 1;
	if (c->sni_seen) {
		if (c->sni == NULL || len != strlen(c->sni) ||
		    memcmp(name, c->sni, len) != 0) {
			c->why = MTLS_REASON_BAD_SNI;
			mtls__fail(&c->err, MTLS_ERR_HANDSHAKE,
			           "client changed its server name in its second "
			           "ClientHello");
			return -1;
		}
		return 0;
	}
	c->sni_seen = 1;
	if (!mtls__sni_valid((const char *)name, len)) {
		c->why = MTLS_REASON_BAD_SNI;
		mtls__fail(&c->err, MTLS_ERR_HANDSHAKE,
		           "client sent a server name that is not a host name "
		           "(%zu bytes)", len);
		return -1;
	}
	if ((c->sni = strndup((const char *)name, len)) == NULL) {
		mtls__fail(&c->err, MTLS_ERR_NO_MEMORY,
		           "out of memory for the server name");
		return -1;
	}
	host = mtls__hosts_find(c->ctx->hosts, c->sni, len, &matched);
	if (host == NULL) {
		judge_by_listener(c, ssl);
		if (atomic_load(&c->ctx->unknown_host) != MTLS_SNI_REFUSE)
			return 0;
		c->why = MTLS_REASON_UNKNOWN_HOST;
		mtls__fail(&c->err, MTLS_ERR_HANDSHAKE,
		           "no host serves the server name the client sent");
		return -1;
	}
	if (mtls__snap_get(host, &hs, &c->err) != 0) {
		judge_by_listener(c, ssl);
		c->why = MTLS_REASON_CONFIG;
		return -1;
	}
	mtls__snap_unref(c->host_snap);
	c->host_snap = hs;
	c->host_ctx = host;
	mtls__expiry_tick(host, hs);
	free(c->host);
	if ((c->host = strdup(matched != NULL ? matched : "")) == NULL) {
		mtls__fail(&c->err, MTLS_ERR_NO_MEMORY,
		           "out of memory for the host name");
		return -1;
	}
	s = hs;
	if (mtls__host_version_check(ssl, s, c->host, &c->err) != 0)
		return -1;
	if (mbedtls_ssl_set_hs_own_cert(ssl, &s->cred->chain, &s->cred->key))
		return -1;
	use_anchors(c, hs);
	mbedtls_ssl_set_hs_authmode(ssl, mtls__authmode(s->verify));
	return 0;
}

#if MTLS_HAVE_TLS13
/* Server, every ClientHello (mbedTLS calls it once the ClientHello is
 * parsed, after the SNI callback if there was a name).  The SNI callback
 * catches a second ClientHello naming another server; this catches one
 * that adds a name the first did not carry (a host would take over from
 * the listener that answered the first) or drops it (RFC 8446 4.1.2: the
 * second ClientHello repeats the first but for the key share, cookie and
 * early data). */
int mtls__hello_cb(mbedtls_ssl_context *ssl)
{
	mtls_conn *c = conn_of(ssl);
	int had_sni;

	c->hellos++;
	had_sni = c->sni_hello == c->hellos;
	if (c->hellos == 1) {
		c->first_had_sni = had_sni;
		return 0;
	}
	if (had_sni == c->first_had_sni)
		return 0;
	c->why = MTLS_REASON_BAD_SNI;
	mtls__fail(&c->err, MTLS_ERR_HANDSHAKE,
	           "client %s a server name in its second ClientHello",
	           had_sni ? "added" : "dropped");
	if (mbedtls_ssl_send_alert_message(
	        ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
	        MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER) == 0)
		c->alert_out = MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER;
	return MBEDTLS_ERR_SSL_ILLEGAL_PARAMETER;
}
#endif

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
	use_anchors(c, c->snap);
	mtls__expiry_tick(c->ctx, c->snap);
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
	mtls__ctx_offer_session(c->ctx, &c->ssl, c->target, c->snap->id);
	if (c->snap->insecure)
		mtls__log(MTLS_LOG_WARN, c->ctx->name,
		          "INSECURE: connecting to %s without verifying its "
		          "certificate", name);
	return 0;
}

/* The context's material is taken when the handshake starts, not when
 * the connection object is made: a CRL or reload in between applies. */
static int ensure_setup(mtls_conn *c)
{
	if (c->setup_done)
		return c->setup_err;
	c->setup_done = 1;
	c->setup_err = setup(c, c->server_name_arg);
	if (c->setup_err != 0 && c->err.code == 0)
		mtls__fail(&c->err, c->setup_err, "%s",
		           mtls_strerror(c->setup_err));
	if (c->send_fn != NULL)
		mbedtls_ssl_set_bio(&c->ssl, c, user_send, user_recv, NULL);
	else
		mbedtls_ssl_set_bio(&c->ssl, c, fd_send, fd_recv, NULL);
	return c->setup_err;
}

static mtls_conn *conn_new(mtls_ctx *ctx, const char *server_name)
{
	mtls_conn *c;

	if (ctx == NULL)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	if (server_name != NULL &&
	    (c->server_name_arg = strdup(server_name)) == NULL) {
		free(c);
		return NULL;
	}
	mbedtls_ssl_init(&c->ssl);
	c->ctx = mtls__ctx_ref(ctx);
	c->alert_in = -1;
	c->alert_out = -1;
	c->fd = -1;
	return c;
}

mtls_conn *mtls_conn_new(mtls_ctx *ctx, int fd, const char *server_name)
{
	mtls_conn *c = conn_new(ctx, server_name);

	if (c == NULL)
		return NULL;
	c->fd = fd;
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
	return c;
}

static void count_end(mtls_conn *c, int ok);

void mtls_conn_free(mtls_conn *c)
{
	if (c == NULL)
		return;
	/* a handshake begun and never ended: the caller gave up on it */
	if (c->setup_done && !c->counted) {
		c->reason = MTLS_REASON_ABANDONED;
		count_end(c, 0);
	}
	mbedtls_ssl_free(&c->ssl);
	drop_resumed_peer(c);
	free(c->top);
	free(c->peer_subject);
	free(c->sni);
	free(c->host);
	mtls__peer_info_free(c->info);
	free(c->identity);
	mtls__snap_unref(c->host_snap);
	mtls__snap_unref(c->snap);
	mtls__ctx_unref(c->ctx);
	free(c->target);
	free(c->server_name_arg);
	free(c);
}

int mtls__conn_chain_len(const mtls_conn *c)
{
	return c->chain_len;
}

/* ---- errors ------------------------------------------------------------------ */

/* The peer-verification outcome as an MTLS_ERR_PEER_* code. */
static int verify_code(const mtls_conn *c, uint32_t flags)
{
	/* Until the handshake completes, mbedTLS keeps the peer's
	 * certificate out of reach: verify_cb noted whether there was one. */
	if (c->hs_done ? peer_crt(c) == NULL : !c->saw_cert)
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

	/* -1 (all bits): mbedTLS never verified anything for this session.
	 * During a handshake verify_cb's flags tell what it saw; after it,
	 * "never verified" is a failure, whatever else says otherwise. */
	if (flags == (uint32_t)-1)
		flags = c->hs_done ? MBEDTLS_X509_BADCERT_SKIP_VERIFY |
		                         MBEDTLS_X509_BADCERT_OTHER
		                   : 0;
	return flags | c->chain_flags | c->resumed_flags;
}

/* "Not trusted", said with what the peer sent: a chain that ends at a
 * root we do not trust, at a CA named like one of ours but signed by
 * another key, or at a certificate whose issuer it did not send and we do
 * not have (an intermediate left out, or a CA of another PKI that sends
 * no root: names alone cannot tell, the message gives both). */
static int untrusted_failure(mtls_conn *c, const char *info)
{
	const char *who = peer_word(c);

	if (c->top_self) {
		c->why = MTLS_REASON_UNKNOWN_CA;
		return mtls__fail(&c->err, MTLS_ERR_PEER_UNTRUSTED,
		                  "%s certificate (%s) refused: %s; its chain "
		                  "ends at %s, which is not a trusted CA",
		                  who, subject_of(c), info, c->top->subject);
	}
	if (c->top_named || c->top_sent) {
		c->why = MTLS_REASON_UNKNOWN_CA;
		return mtls__fail(&c->err, MTLS_ERR_PEER_UNTRUSTED,
		                  "%s certificate (%s) refused: %s; %s names "
		                  "%s as its issuer, but the %s of that name did "
		                  "not sign it (another CA with the same name)",
		                  who, subject_of(c), info, c->top->subject,
		                  c->top->issuer,
		                  c->top_named ? "trusted CA" : "certificate sent");
	}
	c->why = MTLS_REASON_MISSING_INTERMEDIATE;
	return mtls__fail(&c->err, MTLS_ERR_PEER_UNTRUSTED,
	                  "%s certificate (%s) refused: %s; the %s sent %s "
	                  "issued by %s without %s itself, and no trusted CA "
	                  "is named so (a missing intermediate, or a CA we do "
	                  "not trust)",
	                  who, subject_of(c), info, who, c->top->subject,
	                  c->top->issuer, c->top->issuer);
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
		                  subject_of(c), c->target ? c->target : "?");
	if (code == MTLS_ERR_PEER_POLICY)
		return mtls__fail(&c->err, code,
		                  "%s certificate (%s) not allowed by policy",
		                  peer_word(c), subject_of(c));
	if (c->too_deep)
		return mtls__fail(&c->err, code,
		                  "%s certificate (%s) refused: chain deeper "
		                  "than %d certificates above it",
		                  peer_word(c), subject_of(c), MTLS_CHAIN_MAX);
	if (c->anchor_stale)
		return mtls__fail(&c->err, code,
		                  "%s certificate (%s) refused: its intermediate "
		                  "CA stopped being usable as an anchor during "
		                  "the handshake (a CRL is due or a CA expired); "
		                  "the %s may retry",
		                  peer_word(c), subject_of(c), peer_word(c));
	mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
	info[strcspn(info, "\n")] = '\0';
	if (code == MTLS_ERR_PEER_UNTRUSTED && c->top_seen)
		return untrusted_failure(c, info);
	return mtls__fail(&c->err, code, "%s certificate (%s) refused: %s",
	                  peer_word(c), subject_of(c),
	                  info[0] ? info : mtls_strerror(code));
}

/* A peer that refuses us in a TLS 1.2 handshake sends its alert and
 * closes while we may still be sending our flight: our send then fails
 * (EPIPE, reset) with the alert unread in the socket.  It is in the clear
 * (before ChangeCipherSpec): a peek finds it (fd connections only; the
 * I/O callbacks cannot peek). */
static int peek_alert(mtls_conn *c)
{
	unsigned char r[7];
	ssize_t n;

	if (c->fd < 0 || c->alert_in >= 0)
		return c->alert_in >= 0;
	n = recv(c->fd, r, sizeof(r), MSG_PEEK | MSG_DONTWAIT);
	if (n != (ssize_t)sizeof(r) || r[0] != MBEDTLS_SSL_MSG_ALERT ||
	    r[1] != 3 || r[3] != 0 || r[4] != 2 ||
	    r[5] != MBEDTLS_SSL_ALERT_LEVEL_FATAL)
		return 0;
	c->alert_in = r[6];
	return 1;
}

/* The peer's fatal alert, named; for a client, what a refusal of its
 * certificate or of its server name looks like. */
static int alert_failure(mtls_conn *c)
{
	int a = c->alert_in >= 0 ? c->alert_in
	                         : mtls__ssl_alert_received(&c->ssl);
	const char *name = mtls_alert_name(a);

	c->alert_in = a;
	c->why = MTLS_REASON_PEER_ALERT;
	if (a < 0)
		return mtls__fail(&c->err, MTLS_ERR_ALERT, "%s sent a fatal alert",
		                  peer_word(c));
	if (c->ctx->role == MTLS_ROLE_CLIENT) {
		if (mtls__alert_is_cert_refusal(a))
			return mtls__fail(&c->err, MTLS_ERR_ALERT,
			                  "upstream refused our client "
			                  "certificate (alert %s)", name);
		if (a == MBEDTLS_SSL_ALERT_MSG_UNRECOGNIZED_NAME)
			return mtls__fail(&c->err, MTLS_ERR_ALERT,
			                  "upstream rejected our server name "
			                  "(alert %s)", name);
		if (a == MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION)
			return mtls__fail(&c->err, MTLS_ERR_ALERT,
			                  "upstream accepts none of our TLS "
			                  "versions (alert %s)", name);
		if (a == MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE && !c->saw_cert)
			return mtls__fail(&c->err, MTLS_ERR_ALERT,
			                  "upstream refused the handshake before "
			                  "its certificate (alert %s): no shared "
			                  "cipher suite, group or signature "
			                  "algorithm", name);
		return mtls__fail(&c->err, MTLS_ERR_ALERT,
		                  "upstream sent a fatal alert (alert %s)%s", name,
		                  a == MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE
		                      ? ": it may require a client certificate"
		                      : "");
	}
	if (mtls__alert_is_cert_refusal(a))
		return mtls__fail(&c->err, MTLS_ERR_ALERT,
		                  "client refused our server certificate "
		                  "(alert %s)", name);
	return mtls__fail(&c->err, MTLS_ERR_ALERT,
	                  "client sent a fatal alert (alert %s)", name);
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
		if (!c->hs_done && peek_alert(c))
			return alert_failure(c);
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
	case MBEDTLS_ERR_SSL_INVALID_MAC:
		/* mbedTLS 3.6 sends and expects TLS 1.3 alerts at the end of
		 * the handshake under keys the peer has already left (its
		 * server's certificate_required, a client's bad_certificate):
		 * they arrive as records that do not decrypt. */
		if (mtls__ssl_version(&c->ssl) == MTLS_TLS1_3 &&
		    (c->ctx->role == MTLS_ROLE_SERVER
		         ? !c->hs_done
		         : c->hs_done && !c->got_data)) {
			c->why = MTLS_REASON_PEER_ALERT_UNREADABLE;
			return mtls__fail(&c->err, MTLS_ERR_ALERT,
			                  "%s aborted the %s with a TLS 1.3 "
			                  "alert that could not be decrypted "
			                  "(it most likely refused %s "
			                  "certificate)",
			                  peer_word(c),
			                  c->hs_done ? "connection" : "handshake",
			                  c->ctx->role == MTLS_ROLE_SERVER
			                      ? "our"
			                      : "our client");
		}
		break;
	case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE:
		return alert_failure(c);
	/* -0x6E80: 2.28's BAD_HS_PROTOCOL_VERSION, 3.x's BAD_PROTOCOL_VERSION */
	case -0x6E80:
		if (c->why == MTLS_REASON_NONE)
			c->why = MTLS_REASON_PROTOCOL_VERSION;
		break;
#if defined(MBEDTLS_ERR_SSL_NO_CIPHER_CHOSEN)
	case MBEDTLS_ERR_SSL_NO_CIPHER_CHOSEN:
#endif
#if defined(MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE)
	case MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE:
#endif
#if defined(MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE)
	case MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE:
#endif
		/* 3.x says "handshake failure" for more than negotiation:
		 * before any certificate it is the parameters. */
		if (c->why == MTLS_REASON_NONE && !c->saw_cert && !c->hs_done)
			c->why = MTLS_REASON_NO_SHARED_CIPHER;
		break;
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

/* The reason of the connection's first failure: the precise one noted
 * on the way (c->why), else the one that goes with the code. */
static void settle_reason(mtls_conn *c, int code)
{
	int sent;

	if (c->reason != MTLS_REASON_NONE)
		return;
	c->reason = c->why != MTLS_REASON_NONE
	                ? c->why
	                : mtls__reason_of_peer_code(code);
	if (c->alert_out < 0 && (sent = mtls__ssl_alert_sent(&c->ssl)) >= 0)
		c->alert_out = sent;
}

static int fail_logged(mtls_conn *c, int code)
{
	if (code < 0 && code != MTLS_WANT_READ && code != MTLS_WANT_WRITE) {
		settle_reason(c, code);
		mtls__log(MTLS_LOG_DEBUG, c->ctx->name, "connection failed: %s",
		          c->err.msg);
	}
	return code;
}

/* Counts the end of the handshake once, on the context that judged it. */
static void count_end(mtls_conn *c, int ok)
{
	if (c->counted)
		return;
	c->counted = 1;
	mtls__ctx_count(c->host_ctx != NULL ? c->host_ctx : c->ctx, ok,
	                ok && mtls_conn_resumed(c), c->reason);
}

/* ---- handshake and I/O -------------------------------------------------------- */

/* Server: whether mbedTLS really resumed the session our callback opened.
 * It may still refuse a ticket we decrypted (TLS 1.3 ticket age, modes)
 * and run a full handshake: then the ticket lends nothing.  A TLS 1.3
 * resumption is a PSK handshake, which sets the verify result to 0 with
 * no certificate; a full one sets it from the Certificate message (or to
 * "missing" / "skipped"), and verify_cb runs whenever a chain came. */
static void settle_resumption(mtls_conn *c)
{
	int real = c->resumed && !c->verified_chain;

	if (real && mtls__ssl_version(&c->ssl) == MTLS_TLS1_3)
		real = mtls__peer_cert(&c->ssl) == NULL &&
		       mbedtls_ssl_get_verify_result(&c->ssl) == 0;
	if (real) {
		/* TLS 1.2 sessions keep the leaf, not our policy verdict:
		 * judge it again, with the same function as verify_cb */
		const mbedtls_x509_crt *crt = mtls__peer_cert(&c->ssl);
		const mtls_snap *s = judge(c);
		c->policy_failed |= c->resumed_policy_failed;
		if (crt != NULL &&
		    !mtls__allow_match(s->allow, s->n_allow, crt, NULL, 0))
			c->policy_failed = 1;
		return;
	}
	c->resumed = 0;
	c->resumed_by = NULL;
	drop_resumed_peer(c);
	c->resumed_flags = 0;
	c->resumed_policy_failed = 0;
}

/* The identity the policy decided, once, when the handshake completes:
 * what mtls_conn_peer_identity() reports and a proxy logs and forwards,
 * whole, and the SPIFFE ID when it is one.  None unless the peer is
 * verified.  -1 when out of memory. */
static int decide_identity(mtls_conn *c)
{
	const mbedtls_x509_crt *crt = peer_crt(c);
	const mtls_snap *s = judge(c);
	const mbedtls_x509_buf *id;

	if (crt == NULL || verify_code(c, verify_flags(c)) != 0)
		return 0;
	if (!mtls__allow_decide(s->allow, s->n_allow, crt, &id)) {
		c->policy_failed = 1; /* cannot differ from verify_cb's */
		return 0;
	}
	if (id == NULL || id->len == 0 || memchr(id->p, '\0', id->len) != NULL)
		return 0;
	if ((c->identity = malloc(id->len + 1)) == NULL)
		return -1;
	memcpy(c->identity, id->p, id->len);
	c->identity[id->len] = '\0';
	if (mtls__is_spiffe_id(c->identity))
		c->spiffe_id = c->identity;
	return 0;
}

/* What the peer proved, settled once the handshake is done; a connection
 * that cannot hold it fails rather than report less. */
static int settle_peer(mtls_conn *c)
{
	const mbedtls_x509_crt *crt = peer_crt(c);

	if (decide_identity(c) != 0 ||
	    (crt != NULL && crt->raw.p != NULL &&
	     (c->info = mtls__peer_info_new(crt)) == NULL)) {
		free(c->identity);
		c->identity = NULL;
		c->spiffe_id = NULL;
		return mtls__fail(&c->err, MTLS_ERR_NO_MEMORY,
		                  "out of memory for the %s's certificate",
		                  peer_word(c));
	}
	return 0;
}

int mtls_handshake(mtls_conn *c)
{
	int ret;

	if (c == NULL)
		return MTLS_ERR_INVALID_ARG;
	if (ensure_setup(c) != 0) {
		if (c->why == MTLS_REASON_NONE &&
		    mtls_err_category(c->setup_err) != MTLS_CAT_INTERNAL)
			c->why = MTLS_REASON_CONFIG;
		settle_reason(c, c->setup_err);
		count_end(c, 0);
		return c->setup_err;
	}
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
		/* A TLS 1.2 server refusing a missing client certificate
		 * closes without an alert in mbedTLS: send one, so that the
		 * client learns why. */
		if (code == MTLS_ERR_PEER_NO_CERT &&
		    c->ctx->role == MTLS_ROLE_SERVER &&
		    mtls__ssl_version(&c->ssl) < MTLS_TLS1_3)
			(void)mbedtls_ssl_send_alert_message(
			    &c->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
			    MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE);
		code = fail_logged(c, code);
		count_end(c, 0);
		return code;
	}
	settle_resumption(c);
	/* A session resumes only under the policy that admitted it.  With
	 * SNI, TLS 1.2 lets a client put its ticket before its server name,
	 * so the ticket may have been opened by the listener's state before
	 * a host was chosen. */
	if (c->resumed && c->resumed_by != judge(c)) {
		if (mbedtls_ssl_send_alert_message(
		        &c->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
		        MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE) == 0)
			c->alert_out = MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE;
		ret = fail_logged(c, mtls__fail(&c->err, MTLS_ERR_HANDSHAKE,
		                                "client resumed a session of "
		                                "another host than the one "
		                                "its SNI names"));
		count_end(c, 0);
		return ret;
	}
	c->hs_done = 1;
	if ((ret = settle_peer(c)) != 0) {
		c->hs_done = 0;
		if (mbedtls_ssl_send_alert_message(
		        &c->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
		        MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR) == 0)
			c->alert_out = MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR;
		ret = fail_logged(c, ret);
		count_end(c, 0);
		return ret;
	}
#if MTLS_HAVE_SIGCACHE
	remember_signatures(c);
#endif
	count_end(c, 1);
	if (c->ctx->role == MTLS_ROLE_CLIENT &&
	    mtls__ssl_version(&c->ssl) < MTLS_TLS1_3)
		mtls__ctx_save_session(c->ctx, &c->ssl, c->target, c->snap->id);
	return 0;
}

ssize_t mtls_read(mtls_conn *c, void *buf, size_t len)
{
	int ret;

	if (c == NULL || (buf == NULL && len > 0))
		return MTLS_ERR_INVALID_ARG;
	if (!c->hs_done && (ret = mtls_handshake(c)) != 0)
		return ret;
	hs_conn = c;
	for (int spins = 0;; spins++) {
		c->would_block = 0;
		ret = mbedtls_ssl_read(&c->ssl, buf, len);
#if defined(MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
		/* TLS 1.3 tickets arrive after the handshake. */
		if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET) {
			mtls__ctx_save_session(c->ctx, &c->ssl, c->target,
			                       c->snap->id);
			continue;
		}
#endif
		/* mbedTLS 3.x returns WANT_READ after a record that carried
		 * no data (a TLS 1.3 NewSessionTicket) although the socket
		 * may still hold some: only the socket decides "would
		 * block" (on a blocking socket, it never does). */
		if ((ret == MBEDTLS_ERR_SSL_WANT_READ ||
		     ret == MBEDTLS_ERR_SSL_WANT_WRITE) &&
		    !c->would_block && spins < 64)
			continue;
		break;
	}
	hs_conn = NULL;
	if (ret > 0) {
		c->got_data = 1;
		return ret;
	}
	/* mbedTLS reads a transport EOF as 0; close_notify is its own code */
	if (ret == 0 && len > 0)
		return fail_logged(c, map_error(c, MBEDTLS_ERR_SSL_CONN_EOF));
	if (ret >= 0)
		return ret;
	if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
		return 0;
	return fail_logged(c, map_error(c, ret));
}

/* After a write returned WANT_WRITE with its data record built, mbedTLS
 * expects the same call again, flushes the record and returns its length;
 * but if something else flushed it meanwhile (an alert mbedTLS sent from a
 * read, see EVENT LOOPS in mtls.h), it would build and send the data a
 * second time.  wq remembers the record, so that retry reports it sent. */
static void note_queued(mtls_conn *c, int at_entry_idle, size_t len)
{
	int max = mbedtls_ssl_get_max_out_record_payload(&c->ssl);

	c->wq = at_entry_idle && mtls__ssl_hs_over(&c->ssl) &&
	        mtls__ssl_out_pending(&c->ssl) != 0 && max > 0;
	c->wq_len = c->wq && len > (size_t)max ? (size_t)max : len;
}

ssize_t mtls_write(mtls_conn *c, const void *buf, size_t len)
{
	int ret, idle;

	if (c == NULL || (buf == NULL && len > 0))
		return MTLS_ERR_INVALID_ARG;
	if (!c->hs_done && (ret = mtls_handshake(c)) != 0)
		return ret;
	if (c->wq && mtls__ssl_out_pending(&c->ssl) == 0) {
		c->wq = 0;
		return (ssize_t)c->wq_len;
	}
	idle = !c->wq && mtls__ssl_out_pending(&c->ssl) == 0;
	hs_conn = c; /* a server may write a TLS 1.3 ticket here */
	do
		ret = mbedtls_ssl_write(&c->ssl, buf, len);
#if defined(MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
	while (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET);
#else
	while (0);
#endif
	hs_conn = NULL;
	if (ret >= 0) {
		c->wq = 0;
		return ret;
	}
	if (ret == MBEDTLS_ERR_SSL_WANT_WRITE && !c->wq)
		note_queued(c, idle, len);
	return fail_logged(c, map_error(c, ret));
}

/* mbedTLS's close_notify first flushes whatever an earlier call left
 * unsent (a write that returned WANT_WRITE) and, when it did, returns 0
 * without building the alert; called again once the alert is queued, it
 * would build a second one.  So the record left over goes out first, then
 * the alert is queued exactly once, and later calls only flush it. */
int mtls_close(mtls_conn *c)
{
	int ret;

	if (c == NULL)
		return MTLS_ERR_INVALID_ARG;
	if (!c->hs_done)
		return 0;
	if (c->close_err != 0)
		return c->close_err;
	if (c->close_queued && mtls__ssl_out_pending(&c->ssl) == 0)
		return 0; /* sent: calling again is harmless */
	if (!c->close_queued && mtls__ssl_out_pending(&c->ssl) != 0) {
		ret = mbedtls_ssl_close_notify(&c->ssl); /* flushes only */
		if (ret != 0)
			goto fail;
	}
	c->close_queued = 1;
	ret = mbedtls_ssl_close_notify(&c->ssl);
	if (ret == 0)
		return 0;
fail:
	ret = fail_logged(c, map_error(c, ret));
	if (ret != MTLS_WANT_READ && ret != MTLS_WANT_WRITE)
		c->close_err = ret;
	return ret;
}

size_t mtls_conn_pending(const mtls_conn *c)
{
	/* mbedTLS takes one record at a time from a stream socket (a header,
	 * then exactly its body): what it has not decrypted is still in the
	 * socket, which stays readable, so decrypted bytes are all there is
	 * to report (mbedtls_ssl_check_pending adds nothing on TLS). */
	if (c == NULL || !c->hs_done)
		return 0;
	return mbedtls_ssl_get_bytes_avail(&c->ssl);
}

/* ---- queries -------------------------------------------------------------------- */

const char *mtls_conn_error(const mtls_conn *c)
{
	if (c == NULL || c->err.code == 0)
		return NULL;
	return c->err.msg;
}

mtls_reason mtls_conn_reason(const mtls_conn *c)
{
	return c != NULL ? c->reason : MTLS_REASON_NONE;
}

int mtls_conn_alert_received(const mtls_conn *c)
{
	return c != NULL ? c->alert_in : -1;
}

int mtls_conn_alert_sent(const mtls_conn *c)
{
	return c != NULL ? c->alert_out : -1;
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
	if (c == NULL || c->sni == NULL || c->sni[0] == '\0')
		return NULL;
	return c->sni;
}

const char *mtls_conn_host(const mtls_conn *c)
{
	if (c == NULL || c->host == NULL || c->host[0] == '\0')
		return NULL;
	return c->host;
}

const char *mtls_conn_peer_identity(const mtls_conn *c)
{
	if (c == NULL || !c->hs_done)
		return NULL;
	return c->identity;
}

const char *mtls_conn_peer_spiffe_id(const mtls_conn *c)
{
	if (c == NULL || !c->hs_done)
		return NULL;
	return c->spiffe_id;
}

/* The peer's leaf as text, once the handshake is done. */
static const mtls_peer_info *info_of(const mtls_conn *c)
{
	return c != NULL && c->hs_done ? c->info : NULL;
}

int mtls_conn_peer_san_count(const mtls_conn *c, mtls_san_kind kind)
{
	const mtls_peer_info *info = info_of(c);

	if (info == NULL || (int)kind < 1 || (int)kind >= MTLS__SAN_KINDS)
		return 0;
	return info->n_san[kind];
}

const char *mtls_conn_peer_san(const mtls_conn *c, mtls_san_kind kind, int i)
{
	if (i < 0 || i >= mtls_conn_peer_san_count(c, kind))
		return NULL;
	return c->info->san[kind][i];
}

const char *mtls_conn_peer_subject(const mtls_conn *c)
{
	const mtls_peer_info *info = info_of(c);

	return info != NULL ? info->subject : NULL;
}

const char *mtls_conn_peer_issuer(const mtls_conn *c)
{
	const mtls_peer_info *info = info_of(c);

	return info != NULL ? info->issuer : NULL;
}

const char *mtls_conn_peer_serial(const mtls_conn *c)
{
	const mtls_peer_info *info = info_of(c);

	return info != NULL ? info->serial : NULL;
}

const char *mtls_conn_peer_cn(const mtls_conn *c)
{
	const mtls_peer_info *info = info_of(c);

	return info != NULL ? info->cn : NULL;
}

const char *mtls_conn_peer_ou(const mtls_conn *c)
{
	const mtls_peer_info *info = info_of(c);

	return info != NULL ? info->ou : NULL;
}

/* The i-th certificate the peer sent, or NULL. */
static const mbedtls_x509_crt *sent_cert(const mtls_conn *c, int i)
{
	const mbedtls_x509_crt *crt;

	if (info_of(c) == NULL || i < 0)
		return NULL;
	for (crt = peer_crt(c); crt != NULL && crt->raw.p != NULL;
	     crt = crt->next)
		if (i-- == 0)
			return crt;
	return NULL;
}

int mtls_conn_peer_cert_count(const mtls_conn *c)
{
	int n = 0;

	while (sent_cert(c, n) != NULL)
		n++;
	return n;
}

const unsigned char *mtls_conn_peer_cert_der(const mtls_conn *c, int i,
                                             size_t *len)
{
	const mbedtls_x509_crt *crt = sent_cert(c, i);

	if (len != NULL)
		*len = crt != NULL ? crt->raw.len : 0;
	return crt != NULL ? crt->raw.p : NULL;
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
	crt = peer_crt(c);
	if (peer != NULL)
		mtls__peer_fill(c->info, crt, peer);
	if (crt == NULL)
		return MTLS_ERR_PEER_NO_CERT;
	code = verify_code(c, verify_flags(c));
	return code;
}
