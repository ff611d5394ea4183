/*
 * snap.c - building a context's mbedTLS configuration once, as an
 * immutable snapshot that connections share.  No file is read and nothing
 * is parsed per connection; a change to the context builds a new snapshot.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

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
	mtls__crl_unref(s->crl);
	free(s->server_name);
	free_alpn(s->alpn);
	for (size_t i = 0; i < s->n_allow; i++)
		free(s->allow[i].value);
	free(s->allow);
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

#if defined(MBEDTLS_SSL_TICKET_C)
static int ticket_parse(void *p, mbedtls_ssl_session *session,
                        unsigned char *buf, size_t len)
{
	int ret = mbedtls_ssl_ticket_parse(p, session, buf, len);

	if (ret == 0)
		mtls__mark_resumed();
	return ret;
}
#endif

#if defined(MBEDTLS_SSL_CACHE_C)
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
static int cache_get(void *data, unsigned char const *id, size_t id_len,
                     mbedtls_ssl_session *session)
{
	int ret = mbedtls_ssl_cache_get(data, id, id_len, session);
#else
static int cache_get(void *data, mbedtls_ssl_session *session)
{
	int ret = mbedtls_ssl_cache_get(data, session);
#endif
	if (ret == 0)
		mtls__mark_resumed();
	return ret;
}
#endif

static int setup_resumption(mtls_ctx *ctx, mtls_snap *s, mtls_err *e)
{
	if (!ctx->resumption || ctx->role != MTLS_ROLE_SERVER)
		return 0;
#if defined(MBEDTLS_SSL_SESSION_TICKETS) && defined(MBEDTLS_SSL_TICKET_C)
	if (!ctx->ticket_ready) {
		/* mbedTLS rotates the ticket key every lifetime and accepts
		 * the previous one, so tickets outlive one rotation. */
		int ret = mbedtls_ssl_ticket_setup(&ctx->ticket, mtls__rng,
		                                   mtls__rng_ctx(),
		                                   MBEDTLS_CIPHER_AES_256_GCM,
		                                   12 * 3600);
		if (ret != 0)
			return mtls__fail(e, MTLS_ERR_INTERNAL,
			                  "session ticket setup failed (-0x%04x)",
			                  (unsigned)-ret);
		ctx->ticket_ready = 1;
	}
	mbedtls_ssl_conf_session_tickets_cb(&s->conf, mbedtls_ssl_ticket_write,
	                                    ticket_parse, &ctx->ticket);
#endif
#if defined(MBEDTLS_SSL_CACHE_C)
	mbedtls_ssl_conf_session_cache(&s->conf, &ctx->cache,
	                               cache_get, mbedtls_ssl_cache_set);
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
	mbedtls_ssl_config_init(&s->conf);
	s->cred = mtls__cred_ref(ctx->cred);
	s->trust = mtls__trust_ref(ctx->trust);
	s->crl = mtls__crl_ref(ctx->crl);
	s->verify = ctx->verify;
	s->insecure = ctx->insecure;

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
	mtls__conf_defaults(&s->conf, client);

	if (s->cred != NULL &&
	    (ret = mbedtls_ssl_conf_own_cert(&s->conf, &s->cred->chain,
	                                     &s->cred->key)) != 0) {
		ret = mtls__fail(e, MTLS_ERR_NO_MEMORY, "out of memory");
		goto fail;
	}
	if (s->trust != NULL)
		mbedtls_ssl_conf_ca_chain(&s->conf, &s->trust->ca,
		                          s->crl ? &s->crl->crl : NULL);
	if (client)
		/* Verification failures are judged by our verify callback and
		 * the flags; insecure mode clears them there (TLS 1.3 clients
		 * ignore OPTIONAL). */
		mbedtls_ssl_conf_authmode(&s->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	else
		mbedtls_ssl_conf_authmode(
		    &s->conf, s->verify == MTLS_VERIFY_REQUIRE
		                  ? MBEDTLS_SSL_VERIFY_REQUIRED
		                  : s->verify == MTLS_VERIFY_OPTIONAL
		                        ? MBEDTLS_SSL_VERIFY_OPTIONAL
		                        : MBEDTLS_SSL_VERIFY_NONE);

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
	if (!client)
		mbedtls_ssl_conf_sni(&s->conf, mtls__sni_cb, NULL);
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
	if (ctx->snap == NULL)
		ret = build(ctx, &ctx->snap, e);
	if (ret == 0) {
		atomic_fetch_add(&ctx->snap->refs, 1);
		*out = ctx->snap;
	}
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}
