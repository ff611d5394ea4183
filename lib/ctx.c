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
	if (pthread_mutex_init(&ctx->lock, NULL) != 0) {
		free(ctx);
		return NULL;
	}
	atomic_init(&ctx->refs, 1);
	ctx->role = role;
	ctx->warn_days = DEFAULT_WARN_DAYS;
	for (int r = 0; r < MTLS_REASON_COUNT; r++)
		atomic_init(&ctx->st_failed[r], 0);
	atomic_init(&ctx->st_ok, 0);
	atomic_init(&ctx->st_resumed, 0);
	atomic_init(&ctx->expiry_next, 0);
	ctx->verify = MTLS_VERIFY_NONE;
	ctx->tls_min = MTLS_TLS1_2;
	ctx->tls_max = MTLS_HAVE_TLS13 ? MTLS_TLS1_3 : MTLS_TLS1_2;
	ctx->resumption = 1;
	atomic_init(&ctx->unknown_host, MTLS_SNI_DEFAULT);
	mbedtls_ssl_session_init(&ctx->session);
	return ctx;
}

mtls_ctx *mtls__ctx_ref(mtls_ctx *ctx)
{
	if (ctx != NULL)
		atomic_fetch_add(&ctx->refs, 1);
	return ctx;
}

/* The user's mtls_ctx_free() drops one reference; listeners (for their
 * hosts) and connections hold others. */
void mtls_ctx_free(mtls_ctx *ctx)
{
	mtls__ctx_unref(ctx);
}

void mtls__ctx_unref(mtls_ctx *ctx)
{
	if (ctx == NULL || atomic_fetch_sub(&ctx->refs, 1) != 1)
		return;
	mtls__snap_unref(ctx->snap);
	mtls__hosts_free(ctx->hosts);
	mbedtls_ssl_session_free(&ctx->session);
	free(ctx->session_target);
	free(ctx->server_name);
	free(ctx->alpn);
	free(ctx->suites);
	for (size_t i = 0; i < ctx->n_allow; i++)
		free(ctx->allow[i].value);
	free(ctx->allow);
	pthread_mutex_destroy(&ctx->lock);
	mtls__free_secret_str(ctx->password);
	free(ctx->cert_path);
	free(ctx->key_path);
	free(ctx->ca_source);
	free(ctx->crl_path);
	mtls__cred_unref(ctx->cred);
	mtls__trust_unref(ctx->trust);
	mtls__crl_unref(ctx->crl);
	mtls__tkfile_unref(ctx->tkfile);
	mtls__ctx_unref(ctx->trust_src);
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
	/* An empty password is no password: mbedTLS would try "" and call it
	 * wrong, hiding that one is required. */
	if (password != NULL && password[0] == '\0')
		password = NULL;
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
	pthread_mutex_lock(&ctx->lock);
	free(ctx->cert_path);
	free(ctx->key_path);
	ctx->cert_path = cp;
	ctx->key_path = kp;
	mtls__cred_unref(ctx->cred);
	ctx->cred = cred;
	mtls__snap_invalidate(ctx);
	pthread_mutex_unlock(&ctx->lock);
	(void)mtls_ctx_check_expiry(ctx, 0);
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

/* ---- shared trust ---------------------------------------------------------- */

/* Caller holds ctx->lock: ctx keeps the trust it has now as its own. */
static void stop_following(mtls_ctx *ctx)
{
	mtls__ctx_unref(ctx->trust_src);
	ctx->trust_src = NULL;
}

/* The CAs and CRL a context verifies with now, and their generation:
 * its own, or those of the context it shares them with, followed to the
 * context that owns them.  Locks one context at a time, along the share
 * links, which never form a cycle (mtls_ctx_share_trust). */
static void trust_of(mtls_ctx *ctx, mtls_trust **t, mtls_crl **c,
                     uint64_t *gen)
{
	mtls_ctx *next;

	pthread_mutex_lock(&ctx->lock);
	next = mtls__ctx_ref(ctx->trust_src);
	if (next == NULL) {
		*t = mtls__trust_ref(ctx->trust);
		*c = mtls__crl_ref(ctx->crl);
		*gen = ctx->trust_gen;
	}
	pthread_mutex_unlock(&ctx->lock);
	if (next != NULL) {
		trust_of(next, t, c, gen);
		mtls__ctx_unref(next);
	}
}

void mtls__ctx_follow_trust(mtls_ctx *ctx)
{
	mtls_trust *t;
	mtls_crl *c;
	uint64_t gen;

	if (ctx->trust_src == NULL)
		return;
	trust_of(ctx->trust_src, &t, &c, &gen);
	if (gen == ctx->trust_src_gen && t == ctx->trust && c == ctx->crl) {
		mtls__trust_unref(t);
		mtls__crl_unref(c);
		return;
	}
	mtls__trust_unref(ctx->trust);
	mtls__crl_unref(ctx->crl);
	ctx->trust = t;
	ctx->crl = c;
	ctx->trust_src_gen = gen;
	ctx->trust_gen++;
	mtls__snap_invalidate(ctx);
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
	if (ctx->role == MTLS_ROLE_SERVER && ca != NULL &&
	    strcmp(ca, "system") == 0)
		mtls__log(MTLS_LOG_WARN, ctx->name,
		          "client CA is the system trust store: any public CA "
		          "in it (%d certificates) can issue client "
		          "certificates this host accepts; use a private "
		          "client CA, or at least an allow list",
		          t->count);
	pthread_mutex_lock(&ctx->lock);
	stop_following(ctx);
	free(ctx->ca_source);
	ctx->ca_source = src;
	mtls__trust_unref(ctx->trust);
	ctx->trust = t;
	ctx->trust_gen++;
	if (ctx->role == MTLS_ROLE_SERVER && !ctx->verify_set)
		ctx->verify = MTLS_VERIFY_REQUIRE;
	mtls__snap_invalidate(ctx);
	pthread_mutex_unlock(&ctx->lock);
	(void)mtls_ctx_check_expiry(ctx, 0);
	return 0;
}

int mtls_set_trusted_ca(mtls_ctx *ctx, const char *ca)
{
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
	pthread_mutex_lock(&ctx->lock);
	stop_following(ctx);
	free(ctx->crl_path);
	ctx->crl_path = src;
	mtls__crl_unref(ctx->crl);
	ctx->crl = c;
	ctx->trust_gen++;
	mtls__snap_invalidate(ctx);
	pthread_mutex_unlock(&ctx->lock);
	(void)mtls_ctx_check_expiry(ctx, 0);
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
	mtls_ctx *c = (mtls_ctx *)ctx; /* the lock is not the value */
	int ret = 0;

	if (ctx == NULL || info == NULL)
		return MTLS_ERR_INVALID_ARG;
	pthread_mutex_lock(&c->lock);
	if (ctx->cred == NULL)
		ret = MTLS_ERR_NOT_CONFIGURED;
	else
		*info = ctx->cred->info;
	pthread_mutex_unlock(&c->lock);
	if (ret == 0)
		info->days_left = mtls__days_until(info->not_after, time(NULL));
	return ret;
}

/* ---- connection settings ------------------------------------------------ */

/* Applies a settings change under the lock and drops the snapshot, so the
 * next connection is built with it. */
#define CHANGE(ctx, stmt)                                                      \
	do {                                                                   \
		pthread_mutex_lock(&(ctx)->lock);                              \
		stmt;                                                          \
		mtls__snap_invalidate(ctx);                                    \
		pthread_mutex_unlock(&(ctx)->lock);                            \
	} while (0)

static int need_role(mtls_ctx *ctx, mtls_role role, const char *fn)
{
	if (ctx->role == role)
		return 0;
	return finish(ctx, mtls__fail(&ctx->err, MTLS_ERR_WRONG_ROLE,
	                              "%s applies to %s contexts only", fn,
	                              role == MTLS_ROLE_SERVER ? "server"
	                                                       : "client"));
}

int mtls_ctx_set_verify(mtls_ctx *ctx, mtls_verify_mode mode)
{
	int ret;

	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	begin(ctx);
	if ((ret = need_role(ctx, MTLS_ROLE_SERVER, "mtls_ctx_set_verify")))
		return ret;
	if (mode != MTLS_VERIFY_REQUIRE && mode != MTLS_VERIFY_OPTIONAL &&
	    mode != MTLS_VERIFY_NONE)
		return finish(ctx, mtls__fail(&ctx->err, MTLS_ERR_INVALID_ARG,
		                              "unknown verify mode %d",
		                              (int)mode));
	if (mode == MTLS_VERIFY_NONE)
		mtls__log(MTLS_LOG_WARN, ctx->name,
		          "client certificates are not requested: this host "
		          "does not do mutual TLS");
	CHANGE(ctx, ctx->verify = mode; ctx->verify_set = 1);
	return 0;
}

int mtls_ctx_insecure_skip_verify(mtls_ctx *ctx)
{
	int ret;

	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	begin(ctx);
	if ((ret = need_role(ctx, MTLS_ROLE_CLIENT,
	                     "mtls_ctx_insecure_skip_verify")))
		return ret;
	mtls__log(MTLS_LOG_WARN, ctx->name,
	          "INSECURE: upstream certificates will NOT be verified "
	          "(any issuer, any name); for development only");
	CHANGE(ctx, ctx->insecure = 1);
	return 0;
}

static int set_string(mtls_ctx *ctx, char **field, const char *value)
{
	char *copy = NULL;

	if (value != NULL && value[0] != '\0' && (copy = strdup(value)) == NULL)
		return finish(ctx, mtls__fail(&ctx->err, MTLS_ERR_NO_MEMORY,
		                              "out of memory"));
	CHANGE(ctx, free(*field); *field = copy);
	return 0;
}

int mtls_ctx_set_server_name(mtls_ctx *ctx, const char *name)
{
	int ret;

	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	begin(ctx);
	if ((ret = need_role(ctx, MTLS_ROLE_CLIENT,
	                     "mtls_ctx_set_server_name")))
		return ret;
	if (name != NULL && strlen(name) > 253)
		return finish(ctx, mtls__fail(&ctx->err, MTLS_ERR_INVALID_ARG,
		                              "server name longer than 253 "
		                              "bytes"));
	return set_string(ctx, &ctx->server_name, name);
}

int mtls_ctx_set_tls_versions(mtls_ctx *ctx, int min, int max)
{
	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	begin(ctx);
	if ((min != MTLS_TLS1_2 && min != MTLS_TLS1_3) ||
	    (max != MTLS_TLS1_2 && max != MTLS_TLS1_3) || min > max)
		return finish(ctx, mtls__fail(&ctx->err, MTLS_ERR_INVALID_ARG,
		                              "TLS versions must be MTLS_TLS1_2 "
		                              "or MTLS_TLS1_3, min <= max"));
	if (!MTLS_HAVE_TLS13 && max == MTLS_TLS1_3)
		return finish(ctx, mtls__fail(&ctx->err, MTLS_ERR_UNSUPPORTED,
		                              "TLS 1.3 is not available with "
		                              "mbedTLS %s (use 3.6 or newer)",
		                              mtls_mbedtls_version()));
	CHANGE(ctx, ctx->tls_min = min; ctx->tls_max = max);
	return 0;
}

int mtls_ctx_set_alpn(mtls_ctx *ctx, const char *protocols)
{
	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	begin(ctx);
	if (protocols != NULL) {
		for (const char *p = protocols; *p; p++) {
			size_t len = strcspn(p, ",");
			if (len == 0 || len > 255)
				return finish(ctx, mtls__fail(
				    &ctx->err, MTLS_ERR_INVALID_ARG,
				    "ALPN list \"%s\": empty or over-long "
				    "protocol name", protocols));
			p += len;
			if (*p == '\0')
				break;
			if (p[1] == '\0') /* a trailing comma: empty name */
				return finish(ctx, mtls__fail(
				    &ctx->err, MTLS_ERR_INVALID_ARG,
				    "ALPN list \"%s\": empty or over-long "
				    "protocol name", protocols));
		}
	}
	return set_string(ctx, &ctx->alpn, protocols);
}

/* Anything weaker than the default is said loudly, one suite a line. */
static void warn_weak_suites(const mtls_ctx *ctx, const int *list)
{
	for (size_t i = 0; list[i] != 0; i++) {
		const char *why = mtls__suite_weakness(list[i]);
		const char *name = mbedtls_ssl_get_ciphersuite_name(list[i]);
		if (why != NULL)
			mtls__log(MTLS_LOG_WARN, ctx->name,
			          "INSECURE: weak cipher suite %s enabled (%s)",
			          name != NULL ? name : "?", why);
	}
}

int mtls_ctx_set_ciphersuites(mtls_ctx *ctx, const char *list)
{
	int *ids = NULL;
	int ret;

	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	begin(ctx);
	if (list != NULL &&
	    (ret = mtls__suites_parse(list, &ids, &ctx->err)) != 0)
		return finish(ctx, ret);
	if (ids != NULL)
		warn_weak_suites(ctx, ids);
	CHANGE(ctx, free(ctx->suites); ctx->suites = ids);
	return 0;
}

int mtls_ctx_set_session_resumption(mtls_ctx *ctx, int on)
{
	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	begin(ctx);
	CHANGE(ctx, ctx->resumption = on != 0);
	return 0;
}

int mtls_ctx_set_tls13_resumption_kex(mtls_ctx *ctx, mtls_tls13_kex kex)
{
	const char *why;
	int client;

	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	begin(ctx);
	client = ctx->role == MTLS_ROLE_CLIENT;
	why = !MTLS_HAVE_TLS13 ? "it has no TLS 1.3"
	      : client         ? "it lacks TLS 1.3 tickets or the psk mode"
	                       : "a server needs mtls's tuned build (make "
	                         "MBEDTLS=tuned)";
	if (kex != MTLS_TLS13_PSK_DHE_KE && kex != MTLS_TLS13_PSK_KE)
		return finish(ctx, mtls__fail(&ctx->err, MTLS_ERR_INVALID_ARG,
		                              "TLS 1.3 resumption key exchange "
		                              "must be MTLS_TLS13_PSK_DHE_KE or "
		                              "MTLS_TLS13_PSK_KE"));
	if (kex == MTLS_TLS13_PSK_KE && !mtls__psk_ke_supported(client))
		return finish(ctx, mtls__fail(
		    &ctx->err, MTLS_ERR_UNSUPPORTED,
		    "TLS 1.3 resumption without (EC)DHE (psk_ke) is not "
		    "available with mbedTLS %s: %s", mtls_mbedtls_version(),
		    why));
	if (kex == MTLS_TLS13_PSK_KE)
		mtls__log(MTLS_LOG_WARN, ctx->name,
		          "WEAKER: TLS 1.3 resumption without (EC)DHE (psk_ke) "
		          "enabled: resumed connections have no forward secrecy "
		          "(a stolen session-ticket key decrypts them)");
	CHANGE(ctx, ctx->psk_ke = kex == MTLS_TLS13_PSK_KE);
	return 0;
}

int mtls_ctx_share_trust(mtls_ctx *ctx, const mtls_ctx *from)
{
	mtls_ctx *src = (mtls_ctx *)from, *next;
	mtls_trust *t;
	mtls_crl *c;
	uint64_t gen;

	if (ctx == NULL || from == NULL)
		return MTLS_ERR_INVALID_ARG;
	begin(ctx);
	if (ctx->role != from->role)
		return finish(ctx, mtls__fail(&ctx->err, MTLS_ERR_WRONG_ROLE,
		                              "mtls_ctx_share_trust: contexts "
		                              "have different roles"));
	/* Follow the context that owns the material: a sharer of a sharer
	 * follows the owner, and no chain of shares can loop. */
	src = mtls__ctx_ref(src);
	for (;;) {
		pthread_mutex_lock(&src->lock);
		next = mtls__ctx_ref(src->trust_src);
		pthread_mutex_unlock(&src->lock);
		if (next == NULL)
			break;
		mtls__ctx_unref(src);
		src = next;
	}
	if (src == ctx) { /* ctx owns what it would share */
		mtls__ctx_unref(src);
		return 0;
	}
	trust_of(src, &t, &c, &gen);
	if (t == NULL) {
		mtls__crl_unref(c);
		mtls__ctx_unref(src);
		return finish(ctx, mtls__fail(&ctx->err, MTLS_ERR_NOT_CONFIGURED,
		                              "mtls_ctx_share_trust: the source "
		                              "context has no trusted CA"));
	}
	pthread_mutex_lock(&ctx->lock);
	stop_following(ctx);
	ctx->trust_src = src;
	ctx->trust_src_gen = gen;
	mtls__trust_unref(ctx->trust);
	mtls__crl_unref(ctx->crl);
	ctx->trust = t;
	ctx->crl = c;
	ctx->trust_gen++;
	/* the source owns the files: a reload of ctx re-reads none */
	free(ctx->ca_source);
	free(ctx->crl_path);
	ctx->ca_source = NULL;
	ctx->crl_path = NULL;
	if (ctx->role == MTLS_ROLE_SERVER && !ctx->verify_set)
		ctx->verify = MTLS_VERIFY_REQUIRE;
	mtls__snap_invalidate(ctx);
	pthread_mutex_unlock(&ctx->lock);
	(void)mtls_ctx_check_expiry(ctx, 0);
	return 0;
}

static int is_hex64(const char *s)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
		      (*s >= 'A' && *s <= 'F')))
			return 0;
	return n == 64;
}

int mtls_ctx_allow_peer(mtls_ctx *ctx, mtls_allow_kind kind,
                        const char *value)
{
	mtls_allow *list;
	char *copy;

	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	begin(ctx);
	if (value == NULL || value[0] == '\0' || kind < MTLS_ALLOW_URI ||
	    kind > MTLS_ALLOW_SPKI_SHA256)
		return finish(ctx, mtls__fail(&ctx->err, MTLS_ERR_INVALID_ARG,
		                              "allow list: empty value or "
		                              "unknown kind"));
	if (kind == MTLS_ALLOW_SPKI_SHA256 && !is_hex64(value))
		return finish(ctx, mtls__fail(&ctx->err, MTLS_ERR_INVALID_ARG,
		                              "allow list: pin \"%s\" is not 64 "
		                              "hex digits", value));
	/* "spiffe://example.org" as a prefix must not also admit
	 * "spiffe://example.org.evil/": a trust domain ends with '/'. */
	if (kind == MTLS_ALLOW_URI_PREFIX && strncmp(value, "spiffe://", 9) == 0 &&
	    strchr(value + 9, '/') == NULL) {
		size_t n = strlen(value);
		copy = malloc(n + 2);
		if (copy != NULL) {
			memcpy(copy, value, n);
			copy[n] = '/';
			copy[n + 1] = '\0';
		}
	} else {
		copy = strdup(value);
	}
	if (copy == NULL)
		return finish(ctx, mtls__fail(&ctx->err, MTLS_ERR_NO_MEMORY,
		                              "out of memory"));
	pthread_mutex_lock(&ctx->lock);
	list = realloc(ctx->allow, (ctx->n_allow + 1) * sizeof(*list));
	if (list == NULL) {
		pthread_mutex_unlock(&ctx->lock);
		free(copy);
		return finish(ctx, mtls__fail(&ctx->err, MTLS_ERR_NO_MEMORY,
		                              "out of memory"));
	}
	list[ctx->n_allow].kind = kind;
	list[ctx->n_allow].value = copy;
	ctx->allow = list;
	ctx->n_allow++;
	mtls__snap_invalidate(ctx);
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

static int valid_host_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 253)
		return 0;
	if (name[0] == '*' && (name[1] != '.' || name[2] == '\0'))
		return 0;
	for (const char *p = name + (name[0] == '*'); *p; p++)
		if (!(*p == '.' || *p == '-' || *p == '_' ||
		      (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			return 0;
	return 1;
}

int mtls_ctx_add_host(mtls_ctx *listener, const char *name, mtls_ctx *host)
{
	int ret;

	if (listener == NULL)
		return MTLS_ERR_INVALID_ARG;
	begin(listener);
	if (name == NULL || host == NULL || host == listener)
		return finish(listener,
		              mtls__fail(&listener->err, MTLS_ERR_INVALID_ARG,
		                         "mtls_ctx_add_host: NULL name or host, "
		                         "or host is the listener"));
	if (listener->role != MTLS_ROLE_SERVER || host->role != MTLS_ROLE_SERVER)
		return finish(listener,
		              mtls__fail(&listener->err, MTLS_ERR_WRONG_ROLE,
		                         "mtls_ctx_add_host: listener and host "
		                         "must be server contexts"));
	if (!valid_host_name(name))
		return finish(listener,
		              mtls__fail(&listener->err, MTLS_ERR_INVALID_ARG,
		                         "mtls_ctx_add_host: \"%s\" is not a "
		                         "host name or *.wildcard", name));
	pthread_mutex_lock(&listener->lock);
	ret = mtls__hosts_add(&listener->hosts, name, host);
	pthread_mutex_unlock(&listener->lock);
	if (ret != 0)
		return finish(listener, mtls__fail(&listener->err, ret,
		                                   "out of memory"));
	return 0;
}

int mtls_ctx_set_unknown_host(mtls_ctx *listener, mtls_sni_policy policy)
{
	int ret;

	if (listener == NULL)
		return MTLS_ERR_INVALID_ARG;
	begin(listener);
	if ((ret = need_role(listener, MTLS_ROLE_SERVER,
	                     "mtls_ctx_set_unknown_host")))
		return ret;
	if (policy != MTLS_SNI_DEFAULT && policy != MTLS_SNI_REFUSE)
		return finish(listener,
		              mtls__fail(&listener->err, MTLS_ERR_INVALID_ARG,
		                         "unknown SNI policy %d", (int)policy));
	atomic_store(&listener->unknown_host, (int)policy);
	return 0;
}

/* ---- reload ------------------------------------------------------------- */

int mtls_ctx_reload(mtls_ctx *ctx)
{
	mtls_pair_src src = {0};
	mtls_cred_opts o = {0};
	mtls_cred *cred = NULL;
	mtls_trust *trust = NULL;
	mtls_crl *crl = NULL;
	mtls_tkfile *tk = NULL;
	mtls_err *e;
	int ret = 0;

	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	e = begin(ctx);
	/* Sources are only changed by configuration calls, which must not
	 * race with a reload; material is swapped under the lock. */
	if (ctx->cert_path != NULL) {
		src.cert_path = ctx->cert_path;
		src.key_path = ctx->key_path;
		o.role = ctx->role;
		o.password = ctx->password;
		o.warn_days = ctx->warn_days;
		o.log_name = ctx->name;
		o.now = time(NULL);
		ret = mtls__cred_load(&src, &o, &cred, e);
	}
	if (ret == 0 && ctx->ca_source != NULL)
		ret = mtls__trust_load(ctx->ca_source, NULL, 0, ctx->name,
		                       &trust, e);
	if (ret == 0 && ctx->crl_path != NULL)
		ret = mtls__crl_load(ctx->crl_path, NULL, 0, ctx->name, &crl, e);
	if (ret == 0 && ctx->tkfile != NULL)
		ret = mtls__tkfile_load(ctx->tkfile->path, ctx->name, &tk, e);
	if (ret != 0) {
		mtls__cred_unref(cred);
		mtls__trust_unref(trust);
		mtls__crl_unref(crl);
		mtls__log(MTLS_LOG_ERROR, ctx->name,
		          "reload refused, previous material kept: %s",
		          ctx->err.msg);
		return ret;
	}
	pthread_mutex_lock(&ctx->lock);
	if (cred != NULL) {
		mtls__cred_unref(ctx->cred);
		ctx->cred = cred;
	}
	if (trust != NULL) {
		mtls__trust_unref(ctx->trust);
		ctx->trust = trust;
	}
	if (crl != NULL) {
		mtls__crl_unref(ctx->crl);
		ctx->crl = crl;
	}
	if (trust != NULL || crl != NULL)
		ctx->trust_gen++;
	if (tk != NULL) {
		mtls__tkfile_unref(ctx->tkfile);
		ctx->tkfile = tk;
	}
	mtls__snap_invalidate(ctx);
	pthread_mutex_unlock(&ctx->lock);
	(void)mtls_ctx_check_expiry(ctx, 0);
	mtls__log(MTLS_LOG_INFO, ctx->name, "mTLS context reloaded");
	return 0;
}

/* ---- client sessions ------------------------------------------------------ */

static int same_target(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

void mtls__ctx_save_session(mtls_ctx *ctx, const mbedtls_ssl_context *ssl,
                            const char *target, uint64_t snap_id)
{
	mbedtls_ssl_session s;
	char *t = NULL;

	if (!ctx->resumption)
		return;
	if (target != NULL && (t = strdup(target)) == NULL)
		return;
	mbedtls_ssl_session_init(&s);
	if (mbedtls_ssl_get_session(ssl, &s) != 0) {
		mbedtls_ssl_session_free(&s);
		free(t);
		return;
	}
	pthread_mutex_lock(&ctx->lock);
	mbedtls_ssl_session_free(&ctx->session);
	ctx->session = s; /* moves ownership of its buffers */
	free(ctx->session_target);
	ctx->session_target = t;
	ctx->session_snap = snap_id;
	ctx->has_session = 1;
	pthread_mutex_unlock(&ctx->lock);
}

/* A session verified one name, under one trust and configuration: offered
 * for another name, or after the context changed, it would skip the
 * checks that apply now. */
void mtls__ctx_offer_session(mtls_ctx *ctx, mbedtls_ssl_context *ssl,
                             const char *target, uint64_t snap_id)
{
	pthread_mutex_lock(&ctx->lock);
	if (ctx->resumption && ctx->has_session &&
	    ctx->session_snap == snap_id &&
	    same_target(ctx->session_target, target))
		(void)mbedtls_ssl_set_session(ssl, &ctx->session);
	pthread_mutex_unlock(&ctx->lock);
}
