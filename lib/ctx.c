/*
 * ctx.c - the context: what a host (server) or an upstream (client)
 * presents and trusts.  Every setter builds its new material completely
 * before swapping it in, so a failed call leaves the context as it was.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_WARN_DAYS 30

mtls_ctx *mtls_ctx_new(mtls_role role)
{
	mtls_ctx *ctx;

	if (role != MTLS_ROLE_CLIENT && role != MTLS_ROLE_SERVER)
		return NULL;
	if (mtls__global_init() != 0)
		return NULL;
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return NULL;
	ctx->role = role;
	ctx->warn_days = DEFAULT_WARN_DAYS;
	return ctx;
}

void mtls_ctx_free(mtls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	mtls__free_secret_str(ctx->password);
	free(ctx->cert_path);
	free(ctx->key_path);
	free(ctx->ca_source);
	free(ctx->crl_path);
	mtls__cred_unref(ctx->cred);
	mtls__trust_unref(ctx->trust);
	mtls__crl_unref(ctx->crl);
	free(ctx);
}

mtls_role mtls_ctx_role(const mtls_ctx *ctx)
{
	return ctx != NULL ? ctx->role : MTLS_ROLE_CLIENT;
}

const char *mtls_ctx_error(const mtls_ctx *ctx)
{
	if (ctx == NULL || ctx->err.code == 0)
		return NULL;
	return ctx->err.msg;
}

/* Starts a configuration call: clears the last failure. */
static mtls_err *begin(mtls_ctx *ctx)
{
	ctx->err.code = 0;
	ctx->err.msg[0] = '\0';
	return &ctx->err;
}

/* Ends a configuration call: a failure is also logged. */
static int finish(mtls_ctx *ctx, int ret)
{
	if (ret != 0)
		mtls__log(MTLS_LOG_ERROR, ctx->name, "%s", ctx->err.msg);
	return ret;
}

int mtls_ctx_set_name(mtls_ctx *ctx, const char *name)
{
	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	begin(ctx);
	if (name == NULL) {
		ctx->name[0] = '\0';
		return 0;
	}
	if (strlen(name) >= sizeof(ctx->name))
		return mtls__fail(&ctx->err, MTLS_ERR_INVALID_ARG,
		                  "context name longer than %zu bytes",
		                  sizeof(ctx->name) - 1);
	memcpy(ctx->name, name, strlen(name) + 1);
	return 0;
}

int mtls_ctx_set_expiry_warning(mtls_ctx *ctx, unsigned days)
{
	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	begin(ctx);
	ctx->warn_days = days;
	return 0;
}

int mtls_ctx_set_key_password(mtls_ctx *ctx, const char *password)
{
	char *copy = NULL;

	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	begin(ctx);
	if (password != NULL && (copy = strdup(password)) == NULL)
		return mtls__fail(&ctx->err, MTLS_ERR_NO_MEMORY,
		                  "out of memory");
	mtls__free_secret_str(ctx->password);
	ctx->password = copy;
	return 0;
}

static int load_pair(mtls_ctx *ctx, mtls_role role, const mtls_pair_src *src)
{
	mtls_cred_opts o = {0};
	mtls_cred *cred = NULL;
	char *cp = NULL, *kp = NULL;
	mtls_err *e;
	int ret;

	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	e = begin(ctx);
	if (ctx->role != role)
		return finish(ctx, mtls__fail(e, MTLS_ERR_WRONG_ROLE,
		                              "mtls_load_%s_pair called on a %s "
		                              "context",
		                              role == MTLS_ROLE_SERVER ? "server"
		                                                       : "client",
		                              ctx->role == MTLS_ROLE_SERVER
		                                  ? "server"
		                                  : "client"));
	if (src->cert_path == NULL && src->cert_mem == NULL)
		return finish(ctx, mtls__fail(e, MTLS_ERR_INVALID_ARG,
		                              "no certificate given (NULL)"));

	o.role = role;
	o.password = ctx->password;
	o.warn_days = ctx->warn_days;
	o.log_name = ctx->name;
	o.now = time(NULL);
	ret = mtls__cred_load(src, &o, &cred, e);
	if (ret != 0)
		return finish(ctx, ret);

	if ((src->cert_path != NULL && (cp = strdup(src->cert_path)) == NULL) ||
	    (src->key_path != NULL && (kp = strdup(src->key_path)) == NULL)) {
		free(cp);
		mtls__cred_unref(cred);
		return finish(ctx, mtls__fail(e, MTLS_ERR_NO_MEMORY,
		                              "out of memory"));
	}
	free(ctx->cert_path);
	free(ctx->key_path);
	ctx->cert_path = cp;
	ctx->key_path = kp;
	mtls__cred_unref(ctx->cred);
	ctx->cred = cred;
	return 0;
}

int mtls_load_client_pair(mtls_ctx *ctx, const char *cert_path,
                          const char *key_path)
{
	mtls_pair_src s = {.cert_path = cert_path, .key_path = key_path};

	return load_pair(ctx, MTLS_ROLE_CLIENT, &s);
}

int mtls_load_server_pair(mtls_ctx *ctx, const char *cert_path,
                          const char *key_path)
{
	mtls_pair_src s = {.cert_path = cert_path, .key_path = key_path};

	return load_pair(ctx, MTLS_ROLE_SERVER, &s);
}

int mtls_load_client_pair_mem(mtls_ctx *ctx, const void *cert,
                              size_t cert_len, const void *key,
                              size_t key_len)
{
	mtls_pair_src s = {.cert_mem = cert, .cert_len = cert_len,
	                   .key_mem = key, .key_len = key_len};

	return load_pair(ctx, MTLS_ROLE_CLIENT, &s);
}

int mtls_load_server_pair_mem(mtls_ctx *ctx, const void *cert,
                              size_t cert_len, const void *key,
                              size_t key_len)
{
	mtls_pair_src s = {.cert_mem = cert, .cert_len = cert_len,
	                   .key_mem = key, .key_len = key_len};

	return load_pair(ctx, MTLS_ROLE_SERVER, &s);
}

static int set_trust(mtls_ctx *ctx, const char *ca, const void *mem,
                     size_t len)
{
	mtls_trust *t = NULL;
	char *src = NULL;
	mtls_err *e;
	int ret;

	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	e = begin(ctx);
	if (ca == NULL && mem == NULL)
		return finish(ctx, mtls__fail(e, MTLS_ERR_INVALID_ARG,
		                              "no CA given (NULL)"));
	ret = mtls__trust_load(ca, mem, len, ctx->name, &t, e);
	if (ret != 0)
		return finish(ctx, ret);
	if (ca != NULL && (src = strdup(ca)) == NULL) {
		mtls__trust_unref(t);
		return finish(ctx, mtls__fail(e, MTLS_ERR_NO_MEMORY,
		                              "out of memory"));
	}
	free(ctx->ca_source);
	ctx->ca_source = src;
	mtls__trust_unref(ctx->trust);
	ctx->trust = t;
	return 0;
}

int mtls_set_trusted_ca(mtls_ctx *ctx, const char *ca)
{
	if (ca == NULL)
		return set_trust(ctx, NULL, NULL, 0);
	return set_trust(ctx, ca, NULL, 0);
}

int mtls_set_trusted_ca_mem(mtls_ctx *ctx, const void *pem, size_t len)
{
	return set_trust(ctx, NULL, pem, len);
}

static int set_crl(mtls_ctx *ctx, const char *path, const void *mem,
                   size_t len)
{
	mtls_crl *c = NULL;
	char *src = NULL;
	mtls_err *e;
	int ret;

	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	e = begin(ctx);
	if (path == NULL && mem == NULL)
		return finish(ctx, mtls__fail(e, MTLS_ERR_INVALID_ARG,
		                              "no CRL given (NULL)"));
	ret = mtls__crl_load(path, mem, len, ctx->name, &c, e);
	if (ret != 0)
		return finish(ctx, ret);
	if (path != NULL && (src = strdup(path)) == NULL) {
		mtls__crl_unref(c);
		return finish(ctx, mtls__fail(e, MTLS_ERR_NO_MEMORY,
		                              "out of memory"));
	}
	free(ctx->crl_path);
	ctx->crl_path = src;
	mtls__crl_unref(ctx->crl);
	ctx->crl = c;
	return 0;
}

int mtls_set_crl(mtls_ctx *ctx, const char *path)
{
	return set_crl(ctx, path, NULL, 0);
}

int mtls_set_crl_mem(mtls_ctx *ctx, const void *data, size_t len)
{
	return set_crl(ctx, NULL, data, len);
}

int mtls_ctx_cert_info(const mtls_ctx *ctx, mtls_cert_info *info)
{
	if (ctx == NULL || info == NULL)
		return MTLS_ERR_INVALID_ARG;
	if (ctx->cred == NULL)
		return MTLS_ERR_NOT_CONFIGURED;
	*info = ctx->cred->info;
	info->days_left = mtls__days_until(info->not_after, time(NULL));
	return 0;
}
