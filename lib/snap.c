/*
 * snap.c - building a context's mbedTLS configuration once, as an
 * immutable snapshot that connections share.  No file is read and nothing
 * is parsed per connection; a change to the context builds a new snapshot.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/gcm.h>
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#include <mbedtls/constant_time.h>
#endif
#include <mbedtls/platform_util.h>

static atomic_uint_fast64_t next_id;

int mtls__authmode(mtls_verify_mode verify)
{
	return verify == MTLS_VERIFY_REQUIRE    ? MBEDTLS_SSL_VERIFY_REQUIRED
	       : verify == MTLS_VERIFY_OPTIONAL ? MBEDTLS_SSL_VERIFY_OPTIONAL
	                                        : MBEDTLS_SSL_VERIFY_NONE;
}

static void free_alpn(char **list)
{
	if (list == NULL)
		return;
	for (char **p = list; *p != NULL; p++)
		free(*p);
	free(list);
}

/* "h2,http/1.1" -> {"h2", "http/1.1", NULL} */
static char **split_alpn(const char *s)
{
	size_t n = 1, i = 0;
	char **list;
	const char *p;

	for (p = s; *p; p++)
		n += *p == ',';
	list = calloc(n + 1, sizeof(*list));
	if (list == NULL)
		return NULL;
	for (p = s;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > 0 && (list[i] = strndup(p, len)) == NULL) {
			free_alpn(list);
			return NULL;
		}
		i += len > 0;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return list;
}

void mtls__snap_unref(mtls_snap *s)
{
	if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	mbedtls_ssl_config_free(&s->conf);
	mtls__cred_unref(s->cred);
	mtls__trust_unref(s->trust);
	mtls__anchors_free(&s->anchors);
#if MTLS_HAVE_SIGCACHE
	mtls__sigcache_free(&s->sigcache);
#endif
	mtls__crl_unref(s->crl);
	free(s->server_name);
	free_alpn(s->alpn);
	free(s->suites);
	for (size_t i = 0; i < s->n_allow; i++)
		free(s->allow[i].value);
	free(s->allow);
#if defined(MBEDTLS_SSL_TICKET_C)
	mbedtls_ssl_ticket_free(&s->ticket);
#endif
#if MTLS_HAVE_TLS13
	mbedtls_platform_zeroize(s->id_key, sizeof(s->id_key));
#endif
	mtls__tkeys_free(&s->tkeys);
#if defined(MBEDTLS_SSL_CACHE_C)
	mbedtls_ssl_cache_free(&s->cache);
#endif
	free(s);
}

void mtls__snap_invalidate(mtls_ctx *ctx)
{
	mtls__snap_unref(ctx->snap);
	ctx->snap = NULL;
}

static int copy_allow(mtls_snap *s, const mtls_ctx *ctx)
{
	if (ctx->n_allow == 0)
		return 0;
	s->allow = calloc(ctx->n_allow, sizeof(*s->allow));
	if (s->allow == NULL)
		return MTLS_ERR_NO_MEMORY;
	for (size_t i = 0; i < ctx->n_allow; i++) {
		s->allow[i].kind = ctx->allow[i].kind;
		s->allow[i].value = strdup(ctx->allow[i].value);
		if (s->allow[i].value == NULL)
			return MTLS_ERR_NO_MEMORY;
		s->n_allow++;
	}
	return 0;
}

/* The session callbacks are registered on the listener's configuration,
 * but each uses the resumption state of the snapshot judging the
 * handshake (the SNI host's when one matched): a session admitted by one
 * host's policy cannot be resumed under another's, and a policy change
 * (new snapshot, new keys) ends the sessions it no longer vouches for. */
static mtls_snap *session_snap(void *fallback)
{
	mtls_snap *j = mtls__hs_judge();

	return j != NULL ? j : fallback;
}

#if defined(MBEDTLS_SSL_TICKET_C)
/* Our tickets: [2: length n][n: mbedTLS ticket][identity seal, TLS 1.3].
 * mbedTLS 3.6 does not keep the peer's certificate in a TLS 1.3 ticket, so
 * a resumed connection would lose the client's verified identity; it is
 * sealed here with AES-256-GCM under a key of this snapshot, the protocol
 * version and the mbedTLS ticket as associated data:
 * [12: IV][5 + leaf: sealed][16: tag].  A seal opens only in a TLS 1.3
 * handshake, and TLS 1.2 tickets carry none.
 *
 * Every session, from a ticket or from the cache, is resumed only by the
 * protocol version that issued it: mbedTLS 3.6.6 accepts a TLS 1.3 ticket
 * in a TLS 1.2 ClientHello and resumes with an all-zero master secret
 * (docs/security.md), so the check is ours, whatever the mbedTLS build. */
#define SEAL_IV 12
#define SEAL_TAG 16
#define SEAL_META 5

#if MTLS_HAVE_TLS13
/* GCM with the protocol version, then the mbedTLS ticket, as AAD: a seal
 * made for TLS 1.3 opens in nothing else.  Decrypting checks tag. */
static int seal_gcm(const unsigned char *key, int mode, const unsigned char *iv,
                    const unsigned char *ticket, size_t ticket_len,
                    const unsigned char *in, size_t len, unsigned char *out,
                    unsigned char *tag)
{
	static const unsigned char ver[2] = {MTLS_TLS1_3 >> 8,
	                                     MTLS_TLS1_3 & 0xff};
	unsigned char check[SEAL_TAG];
	mbedtls_gcm_context gcm;
	size_t olen = 0, flen = 0;
	int ret;

	mbedtls_gcm_init(&gcm);
	ret = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 256);
	if (ret == 0)
		ret = mbedtls_gcm_starts(&gcm, mode, iv, SEAL_IV);
	if (ret == 0)
		ret = mbedtls_gcm_update_ad(&gcm, ver, sizeof(ver));
	if (ret == 0)
		ret = mbedtls_gcm_update_ad(&gcm, ticket, ticket_len);
	if (ret == 0)
		ret = mbedtls_gcm_update(&gcm, in, len, out, len, &olen);
	if (ret == 0)
		ret = mbedtls_gcm_finish(&gcm, out + olen, len - olen, &flen,
		                         check, SEAL_TAG);
	mbedtls_gcm_free(&gcm);
	if (ret == 0 && mode == MBEDTLS_GCM_ENCRYPT)
		memcpy(tag, check, SEAL_TAG);
	else if (ret == 0 && mbedtls_ct_memcmp(check, tag, SEAL_TAG) != 0)
		ret = MBEDTLS_ERR_GCM_AUTH_FAILED;
	mbedtls_platform_zeroize(check, sizeof(check));
	return ret;
}

static int seal_identity(const mtls_snap *s, unsigned char *start,
                         size_t *tlen, const unsigned char *end)
{
	const unsigned char *der;
	unsigned char meta[SEAL_META], *iv, *ct;
	size_t der_len, pt_len;
	int ret;

	if (mtls__hs_identity(&der, &der_len, meta) != 0)
		return 0; /* TLS 1.2 (mbedTLS keeps it), or no certificate */
	pt_len = SEAL_META + der_len;
	if ((size_t)(end - start) < *tlen + SEAL_IV + pt_len + SEAL_TAG)
		return MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL;
	iv = start + *tlen;
	ct = iv + SEAL_IV;
	memcpy(ct, meta, SEAL_META);
	memcpy(ct + SEAL_META, der, der_len);
	if ((ret = mtls__rng(mtls__rng_ctx(), iv, SEAL_IV)) != 0)
		return ret;
	ret = seal_gcm(s->tkeys.n > 0 ? s->tkeys.k[0].seal : s->id_key,
	               MBEDTLS_GCM_ENCRYPT, iv, start + 2, *tlen - 2, ct,
	               pt_len, ct, ct + pt_len);
	if (ret == 0)
		*tlen += SEAL_IV + pt_len + SEAL_TAG;
	return ret;
}

/* Restores the sealed identity into the handshake's connection; any
 * doubt makes the ticket "not authentic", so a full handshake follows. */
static int open_identity(const mtls_snap *s, const unsigned char *key,
                         const unsigned char *aad,
                         size_t aad_len, const unsigned char *seal,
                         size_t len)
{
	unsigned char *pt;
	size_t pt_len;
	int ret;

	(void)mtls__hs_restore_identity(NULL, 0, NULL);
	if (len == 0)
		/* no certificate was presented: only fine if none is
		 * required (TLS 1.2 tickets carry it themselves) */
		return mtls__hs_version() == MTLS_TLS1_3 &&
		               s->verify == MTLS_VERIFY_REQUIRE
		           ? MBEDTLS_ERR_SSL_INVALID_MAC
		           : 0;
	if (len < SEAL_IV + SEAL_META + SEAL_TAG)
		return MBEDTLS_ERR_SSL_INVALID_MAC;
	pt_len = len - SEAL_IV - SEAL_TAG;
	if ((pt = malloc(pt_len)) == NULL)
		return MBEDTLS_ERR_SSL_ALLOC_FAILED;
	ret = seal_gcm(key, MBEDTLS_GCM_DECRYPT, seal, aad, aad_len,
	               seal + SEAL_IV, pt_len, pt, (unsigned char *)seal +
	                                               SEAL_IV + pt_len);
	if (ret == 0 && mtls__hs_restore_identity(pt + SEAL_META,
	                                          pt_len - SEAL_META, pt) != 0)
		ret = -1;
	mbedtls_platform_zeroize(pt, pt_len);
	free(pt);
	return ret == 0 ? 0 : MBEDTLS_ERR_SSL_INVALID_MAC;
}
#endif

static int ticket_write(void *p, const mbedtls_ssl_session *session,
                        unsigned char *start, const unsigned char *end,
                        size_t *tlen, uint32_t *lifetime)
{
	mtls_snap *s = session_snap(p);
	size_t n = 0;
	int ret;

	if (!s->ticket_ready)
		return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
	if (end - start < 2)
		return MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL;
	ret = s->tkeys.n > 0
	          ? mtls__tkeys_write(&s->tkeys, session, start + 2, end, &n,
	                              lifetime)
	          : mbedtls_ssl_ticket_write(&s->ticket, session, start + 2,
	                                     end, &n, lifetime);
	if (ret != 0)
		return ret;
	if (n > 0xffff)
		return MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL;
	start[0] = (unsigned char)(n >> 8);
	start[1] = (unsigned char)n;
	*tlen = 2 + n;
#if MTLS_HAVE_TLS13
	return seal_identity(s, start, tlen, end);
#else
	return 0;
#endif
}

static int ticket_parse(void *p, mbedtls_ssl_session *session,
                        unsigned char *buf, size_t len)
{
	mtls_snap *s = session_snap(p);
	int ver = mtls__hs_version();
	const mtls_tkey *key = NULL;
	size_t n;
	int ret;

	/* "not authentic": mbedTLS falls back to a full handshake */
	if (!s->resumption || !s->ticket_ready || len < 2)
		return MBEDTLS_ERR_SSL_INVALID_MAC;
	n = (size_t)buf[0] << 8 | buf[1];
	if (n > len - 2 || (ver != MTLS_TLS1_3 && len != 2 + n))
		return MBEDTLS_ERR_SSL_INVALID_MAC;
	/* shared keys: a name of this snapshot's, else another policy's or
	 * host's ticket, or a key no longer listed */
	if (s->tkeys.n > 0 &&
	    (key = mtls__tkeys_find(&s->tkeys, buf + 2, n)) == NULL)
		return MBEDTLS_ERR_SSL_INVALID_MAC;
#if MTLS_HAVE_TLS13
	/* before the body is decrypted in place */
	if (ver == MTLS_TLS1_3 &&
	    (ret = open_identity(s, key != NULL ? key->seal : s->id_key,
	                         buf + 2, n, buf + 2 + n, len - 2 - n)) != 0)
		return ret;
#endif
	ret = key != NULL
	          ? mtls__tkeys_parse(key, session, buf + 2, n)
	          : mbedtls_ssl_ticket_parse(&s->ticket, session, buf + 2, n);
	if (ret == 0 && mtls__session_version(session) != ver) {
		mtls__log(MTLS_LOG_WARN, NULL,
		          "refused a session ticket of another protocol "
		          "version than the handshake's");
		ret = MBEDTLS_ERR_SSL_INVALID_MAC;
	}
	if (ret == 0 && !s->psk_ke)
		/* psk_ke is this snapshot's (the SNI host's) decision, not
		 * the listener configuration's */
		mtls__session_forbid_psk_ke(session);
	if (ret == 0)
		mtls__mark_resumed(s);
#if MTLS_HAVE_TLS13
	else
		(void)mtls__hs_restore_identity(NULL, 0, NULL);
#endif
	return ret;
}
#endif

#if defined(MBEDTLS_SSL_CACHE_C)
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
static int cache_get(void *data, unsigned char const *id, size_t id_len,
                     mbedtls_ssl_session *session)
{
	mtls_snap *s = session_snap(data);
	int ret = s->resumption
	              ? mbedtls_ssl_cache_get(&s->cache, id, id_len, session)
	              : 1;

	if (ret == 0 && mtls__session_version(session) != mtls__hs_version())
		ret = MBEDTLS_ERR_SSL_CACHE_ENTRY_NOT_FOUND;
	if (ret == 0)
		mtls__mark_resumed(s);
	return ret;
}

static int cache_set(void *data, unsigned char const *id, size_t id_len,
                     const mbedtls_ssl_session *session)
{
	mtls_snap *s = session_snap(data);

	return s->resumption
	           ? mbedtls_ssl_cache_set(&s->cache, id, id_len, session)
	           : 0;
}
#else
static int cache_get(void *data, mbedtls_ssl_session *session)
{
	mtls_snap *s = session_snap(data);
	int ret = s->resumption ? mbedtls_ssl_cache_get(&s->cache, session) : 1;

	if (ret == 0 && mtls__session_version(session) != mtls__hs_version())
		ret = 1;
	if (ret == 0)
		mtls__mark_resumed(s);
	return ret;
}

static int cache_set(void *data, const mbedtls_ssl_session *session)
{
	mtls_snap *s = session_snap(data);

	return s->resumption ? mbedtls_ssl_cache_set(&s->cache, session) : 0;
}
#endif
#endif

static int setup_resumption(mtls_ctx *ctx, mtls_snap *s, mtls_err *e)
{
	if (ctx->role != MTLS_ROLE_SERVER)
		return 0;
	s->resumption = ctx->resumption;
#if defined(MBEDTLS_SSL_SESSION_TICKETS) && defined(MBEDTLS_SSL_TICKET_C)
	{
		/* Keys for every server snapshot, even with resumption off:
		 * a listener may issue a TLS 1.3 ticket for this host, and
		 * it must be one only this host's policy can open.
		 * mbedTLS rotates the key every lifetime and accepts the
		 * previous one, so tickets outlive one rotation. */
		int ret = mbedtls_ssl_ticket_setup(&s->ticket, mtls__rng,
		                                   mtls__rng_ctx(),
		                                   MBEDTLS_CIPHER_AES_256_GCM,
		                                   12 * 3600);
		if (ret != 0)
			return mtls__fail(e, MTLS_ERR_INTERNAL,
			                  "session ticket setup failed (-0x%04x)",
			                  (unsigned)-ret);
		s->ticket_ready = 1;
#if MTLS_HAVE_TLS13
		ret = mtls__rng(mtls__rng_ctx(), s->id_key, sizeof(s->id_key));
		if (ret != 0)
			return mtls__fail(e, MTLS_ERR_RNG,
			                  "random generator failed (-0x%04x)",
			                  (unsigned)-ret);
#endif
		if (ctx->tkfile != NULL) {
			unsigned char fp[32];
			ret = mtls__tkeys_fingerprint(ctx, s, fp);
			if (ret == 0)
				ret = mtls__tkeys_derive(ctx->tkfile, fp,
				                         &s->tkeys);
			if (ret != 0)
				return mtls__fail(e, MTLS_ERR_INTERNAL,
				                  "session ticket keys from %s: "
				                  "derivation failed (-0x%04x)",
				                  ctx->tkfile->path,
				                  (unsigned)-ret);
		}
	}
	if (ctx->resumption)
		mbedtls_ssl_conf_session_tickets_cb(&s->conf, ticket_write,
		                                    ticket_parse, s);
#endif
#if defined(MBEDTLS_SSL_CACHE_C)
	if (ctx->resumption)
		mbedtls_ssl_conf_session_cache(&s->conf, s, cache_get,
		                               cache_set);
#endif
	return 0;
}

static int check_material(mtls_ctx *ctx, mtls_err *e)
{
	mtls_trust *t = NULL;
	int ret;

	if (ctx->role == MTLS_ROLE_SERVER) {
		if (ctx->cred == NULL)
			return mtls__fail(e, MTLS_ERR_NOT_CONFIGURED,
			                  "server context has no certificate: "
			                  "call mtls_load_server_pair first");
		if (ctx->verify != MTLS_VERIFY_NONE && ctx->trust == NULL)
			return mtls__fail(e, MTLS_ERR_NOT_CONFIGURED,
			                  "client certificates are %s but no "
			                  "client CA is set: call "
			                  "mtls_set_trusted_ca",
			                  ctx->verify == MTLS_VERIFY_REQUIRE
			                      ? "required"
			                      : "optional");
		return 0;
	}
	if (ctx->trust != NULL || ctx->insecure)
		return 0;
	/* A client that was given no CA verifies against the OS store. */
	ret = mtls__trust_load("system", NULL, 0, ctx->name, &t, e);
	if (ret != 0)
		return ret;
	ctx->trust = t;
	return 0;
}

static int build(mtls_ctx *ctx, mtls_snap **out, mtls_err *e)
{
	int client = ctx->role == MTLS_ROLE_CLIENT;
	mtls_snap *s;
	int ret;

	if ((ret = check_material(ctx, e)) != 0)
		return ret;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return mtls__fail(e, MTLS_ERR_NO_MEMORY, "out of memory");
	atomic_init(&s->refs, 1);
	s->id = atomic_fetch_add(&next_id, 1) + 1;
	mbedtls_ssl_config_init(&s->conf);
#if defined(MBEDTLS_SSL_TICKET_C)
	mbedtls_ssl_ticket_init(&s->ticket);
#endif
#if defined(MBEDTLS_SSL_CACHE_C)
	mbedtls_ssl_cache_init(&s->cache);
#endif
	s->cred = mtls__cred_ref(ctx->cred);
	s->trust = mtls__trust_ref(ctx->trust);
	s->crl = mtls__crl_ref(ctx->crl);
	mtls__anchors_init(&s->anchors, s->crl);
#if MTLS_HAVE_SIGCACHE
	mtls__sigcache_init(&s->sigcache);
#endif
	s->verify = ctx->verify;
	s->insecure = ctx->insecure;
	s->warn_days = ctx->warn_days;

	ret = mbedtls_ssl_config_defaults(&s->conf,
	                                  client ? MBEDTLS_SSL_IS_CLIENT
	                                         : MBEDTLS_SSL_IS_SERVER,
	                                  MBEDTLS_SSL_TRANSPORT_STREAM,
	                                  MBEDTLS_SSL_PRESET_DEFAULT);
	if (ret != 0) {
		ret = mtls__fail(e, MTLS_ERR_INTERNAL,
		                 "mbedTLS configuration failed (-0x%04x)",
		                 (unsigned)-ret);
		goto fail;
	}
	mbedtls_ssl_conf_rng(&s->conf, mtls__rng, mtls__rng_ctx());
	mtls__conf_versions(&s->conf, ctx->tls_min, ctx->tls_max);
	s->tls_min = ctx->tls_min;
	s->tls_max = ctx->tls_max;
	mtls__conf_defaults(&s->conf, client);
	s->psk_ke = ctx->psk_ke;
	mtls__conf_tls13_kex(&s->conf, client, s->psk_ke);
	if (ctx->suites != NULL &&
	    (s->suites = mtls__suites_dup(ctx->suites)) == NULL) {
		ret = mtls__fail(e, MTLS_ERR_NO_MEMORY, "out of memory");
		goto fail;
	}
	mtls__conf_policy(&s->conf, s->suites, client);

	if (s->cred != NULL &&
	    mbedtls_ssl_conf_own_cert(&s->conf, &s->cred->chain,
	                              &s->cred->key) != 0) {
		ret = mtls__fail(e, MTLS_ERR_NO_MEMORY, "out of memory");
		goto fail;
	}
	if (s->trust != NULL) {
		mbedtls_ssl_conf_ca_chain(&s->conf, &s->trust->ca,
		                          s->crl ? &s->crl->crl : NULL);
	} else if (client && s->insecure) {
		/* mbedTLS refuses to verify without a CA chain, even when
		 * the verify callback clears every flag: an empty one. */
		static mbedtls_x509_crt no_ca; /* zeroed: as _init() */
		mbedtls_ssl_conf_ca_chain(&s->conf, &no_ca, NULL);
	}
	if (client)
		/* Verification failures are judged by our verify callback and
		 * the flags; insecure mode clears them there (TLS 1.3 clients
		 * ignore OPTIONAL). */
		mbedtls_ssl_conf_authmode(&s->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	else
		mbedtls_ssl_conf_authmode(&s->conf, mtls__authmode(s->verify));

	if (ctx->server_name != NULL &&
	    (s->server_name = strdup(ctx->server_name)) == NULL) {
		ret = mtls__fail(e, MTLS_ERR_NO_MEMORY, "out of memory");
		goto fail;
	}
	if (ctx->alpn != NULL) {
		s->alpn = split_alpn(ctx->alpn);
		if (s->alpn == NULL ||
		    mbedtls_ssl_conf_alpn_protocols(&s->conf,
		                                    (const char **)s->alpn) != 0) {
			ret = mtls__fail(e, MTLS_ERR_INVALID_ARG,
			                 "ALPN list \"%s\" is not usable",
			                 ctx->alpn);
			goto fail;
		}
	}
	if (copy_allow(s, ctx) != 0) {
		ret = mtls__fail(e, MTLS_ERR_NO_MEMORY, "out of memory");
		goto fail;
	}
	if ((ret = setup_resumption(ctx, s, e)) != 0)
		goto fail;
	if (!client) {
		mbedtls_ssl_conf_sni(&s->conf, mtls__sni_cb, NULL);
#if MTLS_HAVE_TLS13
		mbedtls_ssl_conf_cert_cb(&s->conf, mtls__hello_cb);
#endif
	}
	if (!ctx->resumption)
		mbedtls_ssl_conf_session_tickets(&s->conf,
		                                 MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
	*out = s;
	return 0;
fail:
	mtls__snap_unref(s);
	return ret;
}

int mtls__snap_get(mtls_ctx *ctx, mtls_snap **out, mtls_err *e)
{
	int ret = 0;

	pthread_mutex_lock(&ctx->lock);
	mtls__ctx_follow_trust(ctx);
	if (ctx->snap == NULL)
		ret = build(ctx, &ctx->snap, e);
	if (ret == 0) {
		atomic_fetch_add(&ctx->snap->refs, 1);
		*out = ctx->snap;
	}
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}
