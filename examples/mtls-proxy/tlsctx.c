/*
 * tlsctx.c - the configuration's credentials, loaded through libmtls.
 *
 * Everything is validated here, at start (or by "mtls-proxy -t"), so a
 * bad certificate stops the proxy before it listens instead of failing
 * every handshake later.
 */
#include "tlsctx.h"

#include <stdio.h>

static int ctx_fail(const struct pxy_config *cfg, int line, mtls_ctx *ctx,
                    int rc, char *err, size_t errlen)
{
	const char *why = ctx ? mtls_ctx_error(ctx) : NULL;

	snprintf(err, errlen, "%s:%d: %s", cfg->path, line,
	         why ? why : mtls_strerror(rc));
	return -1;
}

/* One server context from s; client-certificate settings from `auth`
 * (s itself, or the listen block for a host without its own client_ca). */
static mtls_ctx *server_ctx(const struct pxy_config *cfg,
                            const struct pxy_server *s,
                            const struct pxy_server *auth, const char *name,
                            char *err, size_t errlen)
{
	mtls_ctx *ctx = mtls_ctx_new(MTLS_ROLE_SERVER);
	size_t i;
	int rc, line = s->line;

	if (ctx == NULL) {
		ctx_fail(cfg, s->line, NULL, MTLS_ERR_NO_MEMORY, err, errlen);
		return NULL;
	}
	if ((rc = mtls_ctx_set_name(ctx, name)) != 0)
		goto fail;
	line = s->key && s->key_line > s->cert_line ? s->key_line
	                                            : s->cert_line;
	if ((rc = mtls_load_server_pair(ctx, s->cert, s->key)) != 0)
		goto fail;
	line = auth->ca_line;
	if (auth->client_ca != NULL &&
	    (rc = mtls_set_trusted_ca(ctx, auth->client_ca)) != 0)
		goto fail;
	line = auth->crl_line;
	if (auth->crl != NULL && (rc = mtls_set_crl(ctx, auth->crl)) != 0)
		goto fail;
	line = auth->auth_line;
	if (auth->client_auth != -1 &&
	    (rc = mtls_ctx_set_verify(ctx,
	                              (mtls_verify_mode)auth->client_auth)))
		goto fail;
	line = auth->allow_line;
	for (i = 0; i < auth->n_allow; i++)
		if ((rc = mtls_ctx_allow_peer(ctx, auth->allow[i].kind,
		                              auth->allow[i].value)) != 0)
			goto fail;
	return ctx;
fail:
	ctx_fail(cfg, line, ctx, rc, err, errlen);
	mtls_ctx_free(ctx);
	return NULL;
}

static int setup_listen(const struct pxy_config *cfg, struct pxy_listen *l,
                        char *err, size_t errlen)
{
	size_t i;
	int rc;

	l->ctx = server_ctx(cfg, &l->srv, &l->srv, l->addr.text, err, errlen);
	if (l->ctx == NULL)
		return -1; /* the rest is freed with the config */
	for (i = 0; i < l->n_hosts; i++) {
		const struct pxy_server *h = &l->hosts[i];
		mtls_ctx *hc = server_ctx(cfg, h, h->client_ca ? h : &l->srv,
		                          h->name, err, errlen);

		if (hc == NULL)
			return -1;
		/* The listener keeps its own reference to the host. */
		rc = mtls_ctx_add_host(l->ctx, h->name, hc);
		mtls_ctx_free(hc);
		if (rc != 0)
			return ctx_fail(cfg, h->line, l->ctx, rc, err, errlen);
	}
	if ((rc = mtls_ctx_set_unknown_host(l->ctx,
	                                    (mtls_sni_policy)l->unknown_host)))
		return ctx_fail(cfg, l->line, l->ctx, rc, err, errlen);
	return 0;
}

static int setup_upstream(const struct pxy_config *cfg,
                          struct pxy_upstream *u, char *err, size_t errlen)
{
	mtls_ctx *ctx;
	int rc;

	if (!u->tls)
		return 0;
	if ((ctx = mtls_ctx_new(MTLS_ROLE_CLIENT)) == NULL)
		return ctx_fail(cfg, u->line, NULL, MTLS_ERR_NO_MEMORY, err,
		                errlen);
	u->ctx = ctx;
	if ((rc = mtls_ctx_set_name(ctx, u->name)) != 0)
		return ctx_fail(cfg, u->line, ctx, rc, err, errlen);
	if (u->cert != NULL &&
	    (rc = mtls_load_client_pair(ctx, u->cert, u->key)) != 0)
		return ctx_fail(cfg, u->key && u->key_line > u->cert_line
		                         ? u->key_line : u->cert_line,
		                ctx, rc, err, errlen);
	if ((rc = mtls_set_trusted_ca(ctx, u->ca ? u->ca : "system")) != 0)
		return ctx_fail(cfg, u->ca ? u->ca_line : u->line, ctx, rc,
		                err, errlen);
	if (u->server_name != NULL &&
	    (rc = mtls_ctx_set_server_name(ctx, u->server_name)) != 0)
		return ctx_fail(cfg, u->name_line, ctx, rc, err, errlen);
	return 0;
}

int pxy_tls_setup(struct pxy_config *cfg, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < cfg->n_listens; i++)
		if (setup_listen(cfg, &cfg->listens[i], err, errlen) != 0)
			return -1;
	for (i = 0; i < cfg->n_upstreams; i++)
		if (setup_upstream(cfg, &cfg->upstreams[i], err, errlen) != 0)
			return -1;
	return 0;
}
