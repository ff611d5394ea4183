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

static int setup_listen(const struct pxy_config *cfg, struct pxy_listen *l,
                        char *err, size_t errlen)
{
	mtls_ctx *ctx = mtls_ctx_new(MTLS_ROLE_SERVER);
	size_t i;
	int rc;

	if (ctx == NULL)
		return ctx_fail(cfg, l->line, NULL, MTLS_ERR_NO_MEMORY, err,
		                errlen);
	l->ctx = ctx; /* freed with the config */
	if ((rc = mtls_ctx_set_name(ctx, l->addr.text)) != 0)
		return ctx_fail(cfg, l->line, ctx, rc, err, errlen);
	if ((rc = mtls_load_server_pair(ctx, l->cert, l->key)) != 0)
		return ctx_fail(cfg, l->key && l->key_line > l->cert_line
		                         ? l->key_line : l->cert_line,
		                ctx, rc, err, errlen);
	if (l->client_ca != NULL &&
	    (rc = mtls_set_trusted_ca(ctx, l->client_ca)) != 0)
		return ctx_fail(cfg, l->ca_line, ctx, rc, err, errlen);
	if (l->crl != NULL && (rc = mtls_set_crl(ctx, l->crl)) != 0)
		return ctx_fail(cfg, l->crl_line, ctx, rc, err, errlen);
	if (l->client_auth != -1 &&
	    (rc = mtls_ctx_set_verify(ctx, (mtls_verify_mode)l->client_auth)))
		return ctx_fail(cfg, l->auth_line, ctx, rc, err, errlen);
	for (i = 0; i < l->n_allow; i++)
		if ((rc = mtls_ctx_allow_peer(ctx, l->allow[i].kind,
		                              l->allow[i].value)) != 0)
			return ctx_fail(cfg, l->allow_line, ctx, rc, err,
			                errlen);
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
