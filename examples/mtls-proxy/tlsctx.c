/*
 * tlsctx.c - the configuration's credentials, loaded through libmtls.
 *
 * Everything is validated here, at start (or by "mtls-proxy -t"), so a
 * bad certificate stops the proxy before it listens instead of failing
 * every handshake later.
 */
#include "tlsctx.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

/* A listen block's session_ticket_key, on its default host and on each
 * SNI host (each host derives its own keys from the file). */
static int ctx_ticket_key(const struct pxy_config *cfg,
                          const struct pxy_listen *l, mtls_ctx *ctx,
                          char *err, size_t errlen)
{
	int rc;

	if (l->ticket_key != NULL &&
	    (rc = mtls_ctx_set_ticket_key_file(ctx, l->ticket_key)) != 0)
		return ctx_fail(cfg, l->ticket_key_line, ctx, rc, err, errlen);
	return 0;
}

/* A listen block's tls13_resumption psk_ke, on its default host and on
 * each SNI host; refused (with the library's reason) where this build
 * cannot do it. */
static int ctx_resumption_kex(const struct pxy_config *cfg,
                              const struct pxy_listen *l, mtls_ctx *ctx,
                              char *err, size_t errlen)
{
	int rc;

	if (l->psk_ke &&
	    (rc = mtls_ctx_set_tls13_resumption_kex(ctx, MTLS_TLS13_PSK_KE)))
		return ctx_fail(cfg, l->psk_ke_line, ctx, rc, err, errlen);
	return 0;
}

/* Protocol versions and ALPN, shared by listen blocks and upstreams. */
static int ctx_common(const struct pxy_config *cfg, mtls_ctx *ctx, int tmin,
                      int tmax, int tline, const char *alpn, int aline,
                      char *err, size_t errlen)
{
	int rc;

	if (tmin != 0 && (rc = mtls_ctx_set_tls_versions(ctx, tmin, tmax)))
		return ctx_fail(cfg, tline, ctx, rc, err, errlen);
	if (alpn != NULL && (rc = mtls_ctx_set_alpn(ctx, alpn)) != 0)
		return ctx_fail(cfg, aline, ctx, rc, err, errlen);
	return 0;
}

struct problems {
	const struct pxy_config *cfg;
	void (*report)(const char *msg);
	char *err;
	size_t errlen;
	int n;
};

static void problem(struct problems *pr, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void problem(struct problems *pr, const char *fmt, ...)
{
	char msg[1400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (pr->n++ == 0)
		snprintf(pr->err, pr->errlen, "%s", msg);
	if (pr->report != NULL)
		pr->report(msg);
}

/* "client_ca system" is allowed, but rarely what is meant: any of the
 * hundred-odd public CAs may then issue a client certificate that passes
 * (with an allow list, a name they chose).  Said at every check and start,
 * on stderr (so "mtls-proxy -t" shows it), not counted as a problem. */
static void warn_system_ca(const struct pxy_config *cfg,
                           const struct pxy_server *s, const char *what)
{
	if (s->client_ca == NULL || strcmp(s->client_ca, "system") != 0)
		return;
	pxy_log(MTLS_LOG_WARN, "%s:%d: WARNING: client_ca system lets every "
	        "public CA of the system store issue client certificates that "
	        "%s accepts; name the CA file of your own client CA instead",
	        cfg->path, s->ca_line, what);
}

/* A host's tls_versions that share no version with its listen block's
 * could never be negotiated (the listen block's bounds choose the version,
 * the host only refuses): a configuration mistake, said now. */
static int host_versions_unreachable(const struct pxy_config *cfg,
                                     const struct pxy_listen *l,
                                     const struct pxy_server *h, char *err,
                                     size_t errlen)
{
	int lmin = l->tls_min ? l->tls_min : MTLS_TLS1_2;
	int lmax = l->tls_max ? l->tls_max : MTLS_TLS1_3;

	if (h->tls_line == 0 || (h->tls_max >= lmin && h->tls_min <= lmax))
		return 0;
	snprintf(err, errlen, "%s:%d: host %s: tls_versions shares no "
	         "version with its listen block's (line %d)", cfg->path,
	         h->tls_line, h->name, l->tls_line);
	return 1;
}

static void setup_listen(struct pxy_config *cfg, struct pxy_listen *l,
                         struct problems *pr)
{
	char err[1024];
	size_t i;
	int rc;

	if (l->srv.upstream->skipped) {
		problem(pr, "%s:%d: listen %s skipped: its upstream '%s' was "
		        "skipped", cfg->path, l->line, l->addr.text,
		        l->srv.upstream->name);
		l->skipped = 1;
		return;
	}
	warn_system_ca(cfg, &l->srv, l->addr.text);
	for (i = 0; i < l->n_hosts; i++)
		warn_system_ca(cfg, &l->hosts[i], l->hosts[i].name);
	l->ctx = server_ctx(cfg, &l->srv, &l->srv, l->addr.text, err,
	                    sizeof(err));
	if (l->ctx == NULL ||
	    ctx_common(cfg, l->ctx, l->tls_min, l->tls_max, l->tls_line,
	               l->alpn, l->alpn_line, err, sizeof(err)) != 0 ||
	    ctx_ticket_key(cfg, l, l->ctx, err, sizeof(err)) != 0 ||
	    ctx_resumption_kex(cfg, l, l->ctx, err, sizeof(err)) != 0) {
		problem(pr, "%s (listen %s skipped)", err, l->addr.text);
		goto skip;
	}
	if (l->psk_ke)
		pxy_log(MTLS_LOG_WARN, "%s:%d: WARNING: tls13_resumption "
		        "psk_ke: TLS 1.3 sessions resumed on listen %s have no "
		        "forward secrecy (whoever obtains a session-ticket key "
		        "can decrypt the recorded traffic of the sessions "
		        "resumed with its tickets); psk_dhe_ke is the default",
		        cfg->path, l->psk_ke_line, l->addr.text);
	for (i = 0; i < l->n_hosts; i++) {
		struct pxy_server *h = &l->hosts[i];
		mtls_ctx *hc;

		if (h->upstream->skipped) {
			problem(pr, "%s:%d: host %s skipped: its upstream '%s' "
			        "was skipped", cfg->path, h->line, h->name,
			        h->upstream->name);
			h->skipped = 1;
			continue;
		}
		if (host_versions_unreachable(cfg, l, h, err, sizeof(err))) {
			problem(pr, "%s (host %s skipped)", err, h->name);
			h->skipped = 1;
			continue;
		}
		hc = server_ctx(cfg, h, h->client_ca ? h : &l->srv, h->name,
		                err, sizeof(err));
		if (hc != NULL &&
		    (ctx_common(cfg, hc, h->tls_line ? h->tls_min : l->tls_min,
		                h->tls_line ? h->tls_max : l->tls_max,
		                h->tls_line ? h->tls_line : l->tls_line,
		                l->alpn, l->alpn_line, err, sizeof(err)) != 0 ||
		     ctx_ticket_key(cfg, l, hc, err, sizeof(err)) != 0 ||
		     ctx_resumption_kex(cfg, l, hc, err, sizeof(err)) != 0)) {
			mtls_ctx_free(hc);
			hc = NULL;
		}
		if (hc == NULL) {
			problem(pr, "%s (host %s skipped)", err, h->name);
			h->skipped = 1;
			continue;
		}
		/* The listener keeps its own reference to the host. */
		rc = mtls_ctx_add_host(l->ctx, h->name, hc);
		if (rc == 0)
			h->ctx = hc; /* kept for its expiry figures (admin.c) */
		else
			mtls_ctx_free(hc);
		if (rc != 0) {
			ctx_fail(cfg, h->line, l->ctx, rc, err, sizeof(err));
			problem(pr, "%s (host %s skipped)", err, h->name);
			h->skipped = 1;
		}
	}
	if ((rc = mtls_ctx_set_unknown_host(l->ctx,
	                                    (mtls_sni_policy)l->unknown_host))) {
		ctx_fail(cfg, l->line, l->ctx, rc, err, sizeof(err));
		problem(pr, "%s (listen %s skipped)", err, l->addr.text);
		goto skip;
	}
	return;
skip:
	mtls_ctx_free(l->ctx);
	l->ctx = NULL;
	l->skipped = 1;
}

/* A target with settings of its own gets its own client context: its
 * pair (else the upstream's), its CAs (else the upstream's, shared, not
 * parsed again), its server_name (else the upstream's), and the upstream's
 * versions, ALPN and insecure_skip_verify. */
static int setup_target(const struct pxy_config *cfg,
                        const struct pxy_upstream *u,
                        struct pxy_target_tls *tt, char *err, size_t errlen)
{
	const char *cert = tt->cert ? tt->cert : u->cert;
	const char *key = tt->cert ? tt->key : u->key;
	const char *sn = tt->server_name ? tt->server_name : u->server_name;
	char name[300];
	mtls_ctx *ctx;
	int rc;

	if (tt->cert == NULL && tt->ca == NULL && tt->server_name == NULL)
		return 0;
	if ((ctx = mtls_ctx_new(MTLS_ROLE_CLIENT)) == NULL)
		return ctx_fail(cfg, tt->line, NULL, MTLS_ERR_NO_MEMORY, err,
		                errlen);
	tt->ctx = ctx;
	if ((size_t)snprintf(name, sizeof(name), "%s/%s", u->name,
	                     u->targets[tt - u->ttls].text) >= sizeof(name))
		name[sizeof(name) - 1] = '\0'; /* a log label: cut is fine */
	if ((rc = mtls_ctx_set_name(ctx, name)) != 0 ||
	    (cert != NULL && (rc = mtls_load_client_pair(ctx, cert, key))) ||
	    (rc = tt->ca ? mtls_set_trusted_ca(ctx, tt->ca)
	                 : mtls_ctx_share_trust(ctx, u->ctx)) != 0 ||
	    (sn != NULL && (rc = mtls_ctx_set_server_name(ctx, sn)) != 0) ||
	    (u->insecure && (rc = mtls_ctx_insecure_skip_verify(ctx)) != 0))
		return ctx_fail(cfg, tt->line, ctx, rc, err, errlen);
	return ctx_common(cfg, ctx, u->tls_min, u->tls_max, u->tls_line,
	                  u->alpn, u->alpn_line, err, errlen);
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
	if (ctx_common(cfg, ctx, u->tls_min, u->tls_max, u->tls_line, u->alpn,
	               u->alpn_line, err, errlen) != 0)
		return -1;
	if (u->insecure) {
		if ((rc = mtls_ctx_insecure_skip_verify(ctx)) != 0)
			return ctx_fail(cfg, u->insecure_line, ctx, rc, err,
			                errlen);
		pxy_log(MTLS_LOG_WARN, "%s:%d: upstream %s: "
		        "insecure_skip_verify on: its certificates are NOT "
		        "verified (any issuer, any name); development only",
		        cfg->path, u->insecure_line, u->name);
	}
	for (size_t i = 0; i < u->n_targets; i++)
		if (setup_target(cfg, u, &u->ttls[i], err, errlen) != 0)
			return -1;
	return 0;
}

int pxy_tls_setup(struct pxy_config *cfg, void (*report)(const char *msg),
                  char *err, size_t errlen)
{
	struct problems pr = {.cfg = cfg, .report = report, .err = err,
	                      .errlen = errlen};
	char why[1024];
	size_t i, live = 0;

	for (i = 0; i < cfg->n_upstreams; i++) {
		struct pxy_upstream *u = &cfg->upstreams[i];

		if (setup_upstream(cfg, u, why, sizeof(why)) == 0)
			continue;
		problem(&pr, "%s (upstream %s skipped)", why, u->name);
		mtls_ctx_free(u->ctx);
		u->ctx = NULL;
		u->skipped = 1;
	}
	for (i = 0; i < cfg->n_listens; i++) {
		setup_listen(cfg, &cfg->listens[i], &pr);
		live += !cfg->listens[i].skipped;
	}
	if (live == 0)
		problem(&pr, "%s: no listen block is left to serve", cfg->path);
	return pr.n;
}
