/*
 * pages.c - the admin endpoint's two pages (see pages.h).
 *
 * Every string that reaches a page goes through one of two writers:
 * label() for Prometheus label values (backslash, double quote and
 * newline escaped as the text format says) and json() for JSON strings.
 * Both replace invalid UTF-8 and other control bytes with U+FFFD, so an
 * SNI name or a certificate subject (peer or operator controlled) can
 * neither end a value early nor make the page unparsable.
 */
#include "pages.h"
#include "health.h"
#include "loop.h"
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RLX memory_order_relaxed

/* ---- a growing buffer ------------------------------------------------------- */

struct sb {
	char *d;
	size_t len, cap;
	int oom;
};

static void sb_raw(struct sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *d;

		while (cap < b->len + n + 1)
			cap *= 2;
		if ((d = realloc(b->d, cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->d = d;
		b->cap = cap;
	}
	memcpy(b->d + b->len, s, n);
	b->len += n;
	b->d[b->len] = '\0';
}

static void sb_add(struct sb *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sb_add(struct sb *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) /* callers quote no strings */
		b->oom = 1;
	else
		sb_raw(b, tmp, (size_t)n);
}

static char *sb_done(struct sb *b, size_t *len)
{
	if (b->oom || b->d == NULL) {
		free(b->d);
		return NULL;
	}
	*len = b->len;
	return b->d;
}

/* Length of the valid UTF-8 sequence at s (1 to 4), 0 if not valid. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n, i;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* Writes v escaped: json 0 for a Prometheus label value, 1 for a JSON
 * string (without the quotes). */
static void escaped(struct sb *b, const char *v, int json)
{
	const unsigned char *s = (const unsigned char *)(v ? v : "");

	while (*s) {
		size_t n = utf8_len(s);

		if (*s == '\\')
			sb_raw(b, "\\\\", 2);
		else if (*s == '"')
			sb_raw(b, "\\\"", 2);
		else if (*s == '\n')
			sb_raw(b, "\\n", 2);
		else if (json && *s < 0x20)
			sb_add(b, "\\u%04x", *s);
		else if (n == 0 || *s < 0x20 || *s == 0x7f)
			sb_raw(b, "\xef\xbf\xbd", 3); /* U+FFFD */
		else
			sb_raw(b, (const char *)s, n);
		s += n ? n : 1;
	}
}

static void label(struct sb *b, const char *name, const char *v, int last)
{
	sb_add(b, "%s=\"", name);
	escaped(b, v, 0);
	sb_raw(b, last ? "\"}" : "\",", 2);
}

static void json(struct sb *b, const char *v)
{
	sb_raw(b, "\"", 1);
	escaped(b, v, 1);
	sb_raw(b, "\"", 1);
}

static void family(struct sb *b, const char *name, const char *type,
                   const char *help)
{
	sb_add(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* ---- the counters of every slot, added up ------------------------------------ */

struct agg_pair {
	const char *listener, *host;
	unsigned long long ok, failed[MX_REASONS], conns;
};

struct agg_listener {
	const char *name;
	long long open;
};

struct agg {
	struct agg_pair *p;
	size_t n_p;
	struct agg_listener *l;
	size_t n_l;
	unsigned long long bytes[2], reloads_ok, reloads_failed, restarts;
	long long last_ok, last_at, started;
	int last_result;
	long pids[256];
	int n_pids, n_slots;
};

static struct agg_listener *agg_listener(struct agg *a, const char *name)
{
	size_t i;

	for (i = 0; i < a->n_l; i++)
		if (strcmp(a->l[i].name, name) == 0)
			return &a->l[i];
	a->l[a->n_l].name = name;
	a->l[a->n_l].open = 0;
	return &a->l[a->n_l++];
}

static struct agg_pair *agg_pair(struct agg *a, const char *l, const char *h)
{
	size_t i;

	for (i = 0; i < a->n_p; i++)
		if (strcmp(a->p[i].listener, l) == 0 &&
		    strcmp(a->p[i].host, h) == 0)
			return &a->p[i];
	memset(&a->p[a->n_p], 0, sizeof(a->p[0]));
	a->p[a->n_p].listener = l;
	a->p[a->n_p].host = h;
	return &a->p[a->n_p++];
}

static void agg_slot(struct agg *a, struct mx_slot *s)
{
	unsigned nl = atomic_load_explicit(&s->n_listeners,
	                                   memory_order_acquire);
	unsigned np = atomic_load_explicit(&s->n_pairs, memory_order_acquire);
	long pid = atomic_load_explicit(&s->pid, RLX);
	long long t;
	unsigned k;
	int r;

	for (k = 0; k < nl; k++) {
		struct agg_listener *al = agg_listener(a, s->l[k].name);
		if (pid != 0) /* a dead worker's connections died with it */
			al->open += atomic_load_explicit(&s->l[k].open, RLX);
	}
	for (k = 0; k < np; k++) {
		struct mx_pair *p = &s->p[k];
		struct agg_pair *ap = agg_pair(a, s->l[p->listener].name,
		                               p->host);

		ap->ok += atomic_load_explicit(&p->hs_ok, RLX);
		ap->conns += atomic_load_explicit(&p->conns, RLX);
		for (r = 0; r < MX_REASONS; r++)
			ap->failed[r] += atomic_load_explicit(&p->hs_failed[r],
			                                      RLX);
	}
	a->bytes[0] += atomic_load_explicit(&s->bytes[0], RLX);
	a->bytes[1] += atomic_load_explicit(&s->bytes[1], RLX);
	a->reloads_ok += atomic_load_explicit(&s->reloads_ok, RLX);
	a->reloads_failed += atomic_load_explicit(&s->reloads_failed, RLX);
	a->restarts += atomic_load_explicit(&s->restarts, RLX);
	if ((t = atomic_load_explicit(&s->last_reload_ok, RLX)) > a->last_ok)
		a->last_ok = t;
	if ((t = atomic_load_explicit(&s->last_reload, RLX)) > a->last_at) {
		a->last_at = t;
		a->last_result = atomic_load_explicit(&s->last_reload_result,
		                                      RLX);
	}
	t = atomic_load_explicit(&s->started, RLX);
	if (t != 0 && (a->started == 0 || t < a->started))
		a->started = t;
	if (pid != 0 && a->n_pids < 256)
		a->pids[a->n_pids++] = pid;
}

static int agg_collect(struct agg *a)
{
	int n, i;
	struct mx_slot *s = pxy_metrics_slots(&n);

	memset(a, 0, sizeof(*a));
	a->n_slots = n;
	if (s == NULL)
		return 0;
	a->p = malloc((size_t)n * MX_PAIRS * sizeof(*a->p));
	a->l = malloc((size_t)n * MX_LISTENERS * sizeof(*a->l));
	if (a->p == NULL || a->l == NULL) {
		free(a->p);
		free(a->l);
		return -1;
	}
	for (i = 0; i < n; i++)
		agg_slot(a, &s[i]);
	return 0;
}

static void agg_free(struct agg *a)
{
	free(a->p);
	free(a->l);
}

/* ---- expiry of what the current configuration loaded ------------------------- */

struct item {
	mtls_expiry_kind kind;
	char *file, *subject;
	time_t when;
};

struct items {
	struct item *v;
	size_t n, cap;
	int oom;
};

/* One series per (file, subject) for certificates and per file for CRLs:
 * the same file loaded by several contexts is the same item; two
 * certificates of one file with the same subject (a CA bundle during a
 * roll-over) report the one that ends first. */
static int collect_item(void *user, const mtls_expiry *it)
{
	struct items *xs = user;
	int crl = it->kind == MTLS_EXPIRY_CRL;
	const char *subject = it->subject ? it->subject : "";
	const char *file = it->source ? it->source : "";
	size_t i;

	for (i = 0; i < xs->n; i++) {
		struct item *x = &xs->v[i];
		if ((x->kind == MTLS_EXPIRY_CRL) != crl ||
		    strcmp(x->file, file) != 0 ||
		    (!crl && strcmp(x->subject, subject) != 0))
			continue;
		if (it->when != 0 && (x->when == 0 || it->when < x->when))
			x->when = it->when;
		return 0;
	}
	if (xs->n == xs->cap) {
		size_t cap = xs->cap ? xs->cap * 2 : 16;
		struct item *v = realloc(xs->v, cap * sizeof(*v));
		if (v == NULL) {
			xs->oom = 1;
			return 1;
		}
		xs->v = v;
		xs->cap = cap;
	}
	xs->v[xs->n].kind = it->kind;
	xs->v[xs->n].when = it->when;
	xs->v[xs->n].file = strdup(file);
	xs->v[xs->n].subject = strdup(subject);
	if (xs->v[xs->n].file == NULL || xs->v[xs->n].subject == NULL) {
		free(xs->v[xs->n].file);
		free(xs->v[xs->n].subject);
		xs->oom = 1;
		return 1;
	}
	xs->n++;
	return 0;
}

/* Every certificate (leaves, intermediates, CAs) and CRL of every context
 * of the current configuration: listeners, their hosts, upstreams.  The
 * one place that derives the expiry figures. */
static int collect_expiry(struct items *xs)
{
	const struct pxy_config *cfg = pxy_current;
	size_t i, j;

	memset(xs, 0, sizeof(*xs));
	for (i = 0; cfg != NULL && i < cfg->n_listens; i++) {
		const struct pxy_listen *l = &cfg->listens[i];

		if (l->skipped || l->ctx == NULL)
			continue;
		mtls_ctx_expiry_each(l->ctx, collect_item, xs);
		for (j = 0; j < l->n_hosts; j++)
			if (!l->hosts[j].skipped && l->hosts[j].ctx != NULL)
				mtls_ctx_expiry_each(l->hosts[j].ctx,
				                     collect_item, xs);
	}
	for (i = 0; cfg != NULL && i < cfg->n_upstreams; i++)
		if (cfg->upstreams[i].ctx != NULL)
			mtls_ctx_expiry_each(cfg->upstreams[i].ctx,
			                     collect_item, xs);
	return xs->oom ? -1 : 0;
}

static void items_free(struct items *xs)
{
	size_t i;

	for (i = 0; i < xs->n; i++) {
		free(xs->v[i].file);
		free(xs->v[i].subject);
	}
	free(xs->v);
}

/* ---- /metrics ---------------------------------------------------------------- */

static void metrics_handshakes(struct sb *b, const struct agg *a)
{
	size_t i;
	int r;

	family(b, "mtls_handshakes_total", "counter",
	       "Client TLS handshakes ended, by listener, the host that "
	       "judged them, result and reason.");
	for (i = 0; i < a->n_p; i++) {
		const struct agg_pair *p = &a->p[i];

		sb_add(b, "mtls_handshakes_total{");
		label(b, "listener", p->listener, 0);
		label(b, "host", p->host, 0);
		sb_add(b, "result=\"ok\",reason=\"none\"} %llu\n", p->ok);
		for (r = 1; r < MX_REASONS; r++) {
			if (p->failed[r] == 0)
				continue;
			sb_add(b, "mtls_handshakes_total{");
			label(b, "listener", p->listener, 0);
			label(b, "host", p->host, 0);
			sb_add(b, "result=\"failed\",");
			label(b, "reason", pxy_metrics_reason_name(r), 1);
			sb_add(b, " %llu\n", p->failed[r]);
		}
	}
}

static void metrics_connections(struct sb *b, const struct agg *a)
{
	size_t i;

	family(b, "mtls_connections_open", "gauge",
	       "Client connections open now, by listener.");
	for (i = 0; i < a->n_l; i++) {
		sb_add(b, "mtls_connections_open{");
		label(b, "listener", a->l[i].name, 1);
		sb_add(b, " %lld\n", a->l[i].open);
	}
	family(b, "mtls_connections_total", "counter",
	       "Client connections ended, by listener and the host that "
	       "judged their handshake.");
	for (i = 0; i < a->n_p; i++) {
		sb_add(b, "mtls_connections_total{");
		label(b, "listener", a->p[i].listener, 0);
		label(b, "host", a->p[i].host, 1);
		sb_add(b, " %llu\n", a->p[i].conns);
	}
	family(b, "mtls_bytes_total", "counter",
	       "Payload bytes relayed, by direction.");
	sb_add(b, "mtls_bytes_total{direction=\"client_to_upstream\"} %llu\n"
	          "mtls_bytes_total{direction=\"upstream_to_client\"} %llu\n",
	       a->bytes[0], a->bytes[1]);
}

static void metrics_expiry(struct sb *b, const struct items *xs, time_t now)
{
	size_t i;

	family(b, "mtls_cert_expiry_seconds", "gauge",
	       "Seconds until not-after of every loaded certificate "
	       "(leaves, intermediates, CAs); negative when expired.");
	for (i = 0; i < xs->n; i++) {
		if (xs->v[i].kind == MTLS_EXPIRY_CRL)
			continue;
		sb_add(b, "mtls_cert_expiry_seconds{");
		label(b, "file", xs->v[i].file, 0);
		label(b, "subject", xs->v[i].subject, 1);
		sb_add(b, " %lld\n", (long long)(xs->v[i].when - now));
	}
	family(b, "mtls_crl_next_update_seconds", "gauge",
	       "Seconds until the next update of every loaded CRL "
	       "(CRLs without one are left out).");
	for (i = 0; i < xs->n; i++) {
		if (xs->v[i].kind != MTLS_EXPIRY_CRL || xs->v[i].when == 0)
			continue;
		sb_add(b, "mtls_crl_next_update_seconds{");
		label(b, "file", xs->v[i].file, 1);
		sb_add(b, " %lld\n", (long long)(xs->v[i].when - now));
	}
}

static void metrics_reload_targets(struct sb *b, const struct agg *a)
{
	const struct pxy_config *cfg = pxy_current;
	size_t i, j;

	family(b, "mtls_reloads_total", "counter",
	       "Configuration reloads (SIGHUP), by result; each worker "
	       "reloads, so a SIGHUP counts once per worker.");
	sb_add(b, "mtls_reloads_total{result=\"ok\"} %llu\n"
	          "mtls_reloads_total{result=\"failed\"} %llu\n",
	       a->reloads_ok, a->reloads_failed);
	family(b, "mtls_last_reload_success_timestamp_seconds", "gauge",
	       "Unix time of the last successful configuration load (start "
	       "or reload).");
	sb_add(b, "mtls_last_reload_success_timestamp_seconds %lld\n",
	       a->last_ok);
	family(b, "mtls_upstream_target_up", "gauge",
	       "1 when the proxy sends new connections to the target (its "
	       "health checks pass, or it has none), 0 when checks marked "
	       "it down.");
	for (i = 0; cfg != NULL && i < cfg->n_upstreams; i++) {
		const struct pxy_upstream *u = &cfg->upstreams[i];

		for (j = 0; j < u->n_targets; j++) {
			sb_add(b, "mtls_upstream_target_up{");
			label(b, "upstream", u->name, 0);
			label(b, "target", u->targets[j].text, 1);
			sb_add(b, " %d\n", !(u->down[j] & T_DOWN));
		}
	}
}

char *pxy_page_metrics(size_t *len)
{
	struct sb b = {0};
	struct agg a;
	struct items xs;

	if (agg_collect(&a) != 0)
		return NULL;
	if (collect_expiry(&xs) != 0)
		b.oom = 1;
	metrics_handshakes(&b, &a);
	metrics_connections(&b, &a);
	metrics_expiry(&b, &xs, time(NULL));
	metrics_reload_targets(&b, &a);
	items_free(&xs);
	agg_free(&a);
	return sb_done(&b, len);
}

/* ---- /status ----------------------------------------------------------------- */

static long long listener_open(const struct agg *a, const char *name)
{
	size_t i;

	for (i = 0; i < a->n_l; i++)
		if (strcmp(a->l[i].name, name) == 0)
			return a->l[i].open;
	return 0;
}

static void status_listeners(struct sb *b, const struct agg *a)
{
	const struct pxy_config *cfg = pxy_current;
	size_t i, j;

	sb_add(b, ",\"listeners\":[");
	for (i = 0; cfg != NULL && i < cfg->n_listens; i++) {
		const struct pxy_listen *l = &cfg->listens[i];

		sb_add(b, "%s{\"address\":", i ? "," : "");
		json(b, l->addr.text);
		sb_add(b, ",\"serving\":%s,\"upstream\":",
		       l->skipped ? "false" : "true");
		json(b, l->srv.upstream ? l->srv.upstream->name : "");
		sb_add(b, ",\"connections_open\":%lld,\"hosts\":[",
		       listener_open(a, l->addr.text));
		for (j = 0; j < l->n_hosts; j++) {
			sb_add(b, "%s{\"name\":", j ? "," : "");
			json(b, l->hosts[j].name);
			sb_add(b, ",\"serving\":%s,\"upstream\":",
			       l->hosts[j].skipped ? "false" : "true");
			json(b, l->hosts[j].upstream
			            ? l->hosts[j].upstream->name : "");
			sb_add(b, "}");
		}
		sb_add(b, "]}");
	}
	sb_add(b, "],\"upstreams\":[");
	for (i = 0; cfg != NULL && i < cfg->n_upstreams; i++) {
		const struct pxy_upstream *u = &cfg->upstreams[i];

		sb_add(b, "%s{\"name\":", i ? "," : "");
		json(b, u->name);
		sb_add(b, ",\"tls\":%s,\"health_checks\":%s,\"targets\":[",
		       u->tls ? "true" : "false",
		       u->health_interval > 0 ? "true" : "false");
		for (j = 0; j < u->n_targets; j++) {
			sb_add(b, "%s{\"address\":", j ? "," : "");
			json(b, u->targets[j].text);
			sb_add(b, ",\"up\":%s}",
			       u->down[j] & T_DOWN ? "false" : "true");
		}
		sb_add(b, "]}");
	}
	sb_add(b, "]");
}

static void status_expiry(struct sb *b, const struct items *xs, time_t now)
{
	static const char *const kinds[] = {"leaf", "chain", "ca", "crl"};
	size_t i;
	int first = 1;

	sb_add(b, ",\"certificates\":[");
	for (i = 0; i < xs->n; i++) {
		const struct item *x = &xs->v[i];

		if (x->kind == MTLS_EXPIRY_CRL)
			continue;
		sb_add(b, "%s{\"kind\":\"%s\",\"file\":", first ? "" : ",",
		       kinds[x->kind & 3]);
		json(b, x->file);
		sb_add(b, ",\"subject\":");
		json(b, x->subject);
		sb_add(b, ",\"not_after\":%lld,\"expires_in_seconds\":%lld}",
		       (long long)x->when, (long long)(x->when - now));
		first = 0;
	}
	sb_add(b, "],\"crls\":[");
	first = 1;
	for (i = 0; i < xs->n; i++) {
		const struct item *x = &xs->v[i];

		if (x->kind != MTLS_EXPIRY_CRL)
			continue;
		sb_add(b, "%s{\"file\":", first ? "" : ",");
		json(b, x->file);
		sb_add(b, ",\"issuer\":");
		json(b, x->subject);
		if (x->when != 0)
			sb_add(b, ",\"next_update\":%lld,\"next_update_in_"
			          "seconds\":%lld}", (long long)x->when,
			       (long long)(x->when - now));
		else
			sb_add(b, ",\"next_update\":null,"
			          "\"next_update_in_seconds\":null}");
		first = 0;
	}
	sb_add(b, "]");
}

char *pxy_page_status(size_t *len)
{
	struct sb b = {0};
	struct agg a;
	struct items xs;
	unsigned long long ok = 0, failed = 0;
	time_t now = time(NULL);
	size_t i;
	int k;

	if (agg_collect(&a) != 0)
		return NULL;
	if (collect_expiry(&xs) != 0)
		b.oom = 1;
	for (i = 0; i < a.n_p; i++) {
		ok += a.p[i].ok;
		for (k = 1; k < MX_REASONS; k++)
			failed += a.p[i].failed[k];
	}
	sb_add(&b, "{\"version\":");
	json(&b, MTLS_VERSION_STRING);
	sb_add(&b, ",\"mbedtls\":");
	json(&b, mtls_mbedtls_version());
	sb_add(&b, ",\"pid\":%ld,\"uptime_seconds\":%lld,\"workers\":%d,"
	           "\"worker_pids\":[", (long)getpid(),
	       a.started ? (long long)now - a.started : 0LL, a.n_slots);
	for (k = 0; k < a.n_pids; k++)
		sb_add(&b, "%s%ld", k ? "," : "", a.pids[k]);
	sb_add(&b, "],\"worker_restarts\":%llu", a.restarts);
	status_listeners(&b, &a);
	status_expiry(&b, &xs, now);
	sb_add(&b, ",\"handshakes\":{\"ok\":%llu,\"failed\":%llu}",
	       ok, failed);
	sb_add(&b, ",\"reload\":{\"ok\":%llu,\"failed\":%llu,"
	           "\"last_result\":\"%s\",\"last_attempt\":",
	       a.reloads_ok, a.reloads_failed,
	       a.last_result > 0 ? "ok"
	                         : a.last_result < 0 ? "failed" : "none");
	if (a.last_at)
		sb_add(&b, "%lld", a.last_at);
	else
		sb_add(&b, "null");
	sb_add(&b, ",\"last_success\":%lld}}\n", a.last_ok);
	items_free(&xs);
	agg_free(&a);
	return sb_done(&b, len);
}
