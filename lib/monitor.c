/*
 * monitor.c - what a long-running program watches: handshake counters per
 * context, and the dates everything a context depends on ends (own leaf
 * and chain, trusted CAs, CRLs' next updates), with a warning logged once
 * per item when it enters the expiry window.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define EXPIRY_CHECK_EVERY 3600 /* seconds between automatic checks */
#define CRL_WINDOW 86400        /* CRLs: at most one day ahead */

/* ---- counters --------------------------------------------------------- */

void mtls__ctx_count(mtls_ctx *ctx, int ok, int resumed, mtls_reason reason)
{
	if (ctx == NULL)
		return;
	if (ok) {
		atomic_fetch_add_explicit(&ctx->st_ok, 1, memory_order_relaxed);
		if (resumed)
			atomic_fetch_add_explicit(&ctx->st_resumed, 1,
			                          memory_order_relaxed);
		return;
	}
	/* a failure always has a reason (see mtls_reason) */
	if ((unsigned)reason >= MTLS_REASON_COUNT ||
	    reason == MTLS_REASON_NONE)
		reason = MTLS_REASON_INTERNAL;
	atomic_fetch_add_explicit(&ctx->st_failed[reason], 1,
	                          memory_order_relaxed);
}

int mtls_ctx_stats(const mtls_ctx *ctx, mtls_stats *stats, size_t size)
{
	mtls_ctx *c = (mtls_ctx *)ctx; /* atomics are read, not changed */
	mtls_stats st;

	if (ctx == NULL || stats == NULL)
		return MTLS_ERR_INVALID_ARG;
	memset(&st, 0, sizeof(st));
	st.handshakes_ok =
	    atomic_load_explicit(&c->st_ok, memory_order_relaxed);
	st.handshakes_resumed =
	    atomic_load_explicit(&c->st_resumed, memory_order_relaxed);
	for (int r = 0; r < MTLS_REASON_COUNT; r++)
		st.handshakes_failed += atomic_load_explicit(
		    &c->st_failed[r], memory_order_relaxed);
	if (size > sizeof(st)) {
		memset((char *)stats + sizeof(st), 0, size - sizeof(st));
		size = sizeof(st);
	}
	memcpy(stats, &st, size);
	return 0;
}

unsigned long long mtls_ctx_failures(const mtls_ctx *ctx, mtls_reason reason)
{
	mtls_ctx *c = (mtls_ctx *)ctx;

	if (ctx == NULL || (unsigned)reason >= MTLS_REASON_COUNT ||
	    reason == MTLS_REASON_NONE)
		return 0;
	return atomic_load_explicit(&c->st_failed[reason],
	                            memory_order_relaxed);
}

/* ---- "warned once" flags ---------------------------------------------- */

int mtls__warned_init(mtls_warned *w, size_t n)
{
	if (n == 0)
		n = 1;
	w->flags = malloc(n * sizeof(*w->flags));
	if (w->flags == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		atomic_init(&w->flags[i], 0);
	w->n = n;
	return 0;
}

void mtls__warned_free(mtls_warned *w)
{
	free(w->flags);
	w->flags = NULL;
	w->n = 0;
}

/* ---- walking the items ------------------------------------------------ */

typedef int (*item_fn)(void *user, const mtls_expiry *item,
                       atomic_uchar *flag);

static atomic_uchar *flag_of(const mtls_warned *w, size_t i)
{
	return i < w->n ? &w->flags[i] : NULL;
}

static int emit(item_fn fn, void *user, mtls_expiry *it, atomic_uchar *flag)
{
	it->warned = flag != NULL && atomic_load(flag) != 0;
	return fn(user, it, flag);
}

/* Calls fn for each item; the number of items visited. */
static int walk(const mtls_cred *cred, const mtls_trust *trust,
                const mtls_crl *crl, item_fn fn, void *user)
{
	char dn[256];
	mtls_expiry it;
	int n = 0, i;

	memset(&it, 0, sizeof(it));
	it.subject = dn;
	if (cred != NULL) {
		const mbedtls_x509_crt *x = &cred->chain;
		it.source = cred->source;
		for (i = 0; x != NULL && x->raw.p != NULL; x = x->next, i++) {
			it.kind = i == 0 ? MTLS_EXPIRY_LEAF : MTLS_EXPIRY_CHAIN;
			it.index = i;
			it.when = mtls__x509_time(&x->valid_to);
			mtls__fmt_dn(&x->subject, dn, sizeof(dn));
			n++;
			if (emit(fn, user, &it,
			         flag_of(&cred->warned, (size_t)i)))
				return n;
		}
	}
	if (trust != NULL) {
		const mbedtls_x509_crt *x = &trust->ca;
		it.source = trust->source;
		it.kind = MTLS_EXPIRY_CA;
		for (i = 0; x != NULL && x->raw.p != NULL; x = x->next, i++) {
			it.index = i;
			it.when = mtls__x509_time(&x->valid_to);
			mtls__fmt_dn(&x->subject, dn, sizeof(dn));
			n++;
			if (emit(fn, user, &it,
			         flag_of(&trust->warned, (size_t)i)))
				return n;
		}
	}
	if (crl != NULL) {
		const mbedtls_x509_crl *x = &crl->crl;
		it.source = crl->source;
		it.kind = MTLS_EXPIRY_CRL;
		for (i = 0; x != NULL && x->version != 0; x = x->next, i++) {
			it.index = i;
			it.when = x->next_update.year != 0
			              ? mtls__x509_time(&x->next_update)
			              : 0;
			mtls__fmt_dn(&x->issuer, dn, sizeof(dn));
			n++;
			if (emit(fn, user, &it,
			         flag_of(&crl->warned, (size_t)i)))
				return n;
		}
	}
	return n;
}

/* ---- the expiry check ------------------------------------------------- */

typedef struct check {
	unsigned days;
	const char *log_name;
	time_t now;
	int in_window;
} check;

static void warn_item(const check *k, const mtls_expiry *it)
{
	const char *file = mtls__display(it->source);
	long days = mtls__days_until(it->when, k->now);
	char when[40], what[320];

	mtls__fmt_time(it->when, when, sizeof(when));
	if (it->kind == MTLS_EXPIRY_CRL) {
		if (it->when < k->now)
			mtls__log(MTLS_LOG_WARN, k->log_name,
			          "%s: CRL of %s is stale (next update was due "
			          "%s); peers checked against it are refused",
			          file, it->subject, when);
		else
			mtls__log(MTLS_LOG_WARN, k->log_name,
			          "%s: CRL of %s is due for its next update on "
			          "%s; after that peers checked against it are "
			          "refused until a newer CRL is loaded",
			          file, it->subject, when);
		return;
	}
	if (it->kind == MTLS_EXPIRY_LEAF)
		snprintf(what, sizeof(what), "own certificate (%s)",
		         it->subject);
	else if (it->kind == MTLS_EXPIRY_CHAIN)
		snprintf(what, sizeof(what), "chain certificate #%d (%s)",
		         it->index + 1, it->subject);
	else
		snprintf(what, sizeof(what), "trusted CA (%s)", it->subject);
	if (it->when < k->now)
		mtls__log(MTLS_LOG_WARN, k->log_name, "%s: %s expired on %s",
		          file, what, when);
	else
		mtls__log(MTLS_LOG_WARN, k->log_name,
		          "%s: %s expires in %ld days, on %s", file, what,
		          days, when);
}

static int check_one(void *user, const mtls_expiry *it, atomic_uchar *flag)
{
	check *k = user;
	long long window = (long long)k->days * 86400;

	if (it->when == 0)
		return 0;
	if (it->kind == MTLS_EXPIRY_CRL && window > CRL_WINDOW)
		window = CRL_WINDOW;
	if ((long long)it->when - (long long)k->now > window)
		return 0;
	k->in_window++;
	if (k->days == 0 || flag == NULL ||
	    (it->kind == MTLS_EXPIRY_CA && strcmp(it->source, "system") == 0))
		return 0;
	if (atomic_exchange(flag, 1) == 0)
		warn_item(k, it);
	return 0;
}

int mtls__expiry_check(const mtls_cred *cred, const mtls_trust *trust,
                       const mtls_crl *crl, unsigned warn_days,
                       const char *log_name, time_t now)
{
	check k = {warn_days, log_name, now, 0};

	(void)walk(cred, trust, crl, check_one, &k);
	return k.in_window;
}

void mtls__expiry_tick(mtls_ctx *ctx, const mtls_snap *s)
{
	time_t now = time(NULL);
	long long next =
	    atomic_load_explicit(&ctx->expiry_next, memory_order_relaxed);

	if ((long long)now < next ||
	    !atomic_compare_exchange_strong(&ctx->expiry_next, &next,
	                                    (long long)now + EXPIRY_CHECK_EVERY))
		return;
	(void)mtls__expiry_check(s->cred, s->trust, s->crl, s->warn_days,
	                         ctx->name, now);
}

/* ---- the public calls ------------------------------------------------- */

typedef struct held {
	mtls_cred *cred;
	mtls_trust *trust;
	mtls_crl *crl;
	unsigned days;
} held;

/* References to the context's current material, taken under its lock so
 * that a concurrent reload cannot free them while we walk. */
static void hold(mtls_ctx *ctx, held *h)
{
	pthread_mutex_lock(&ctx->lock);
	mtls__ctx_follow_trust(ctx);
	h->cred = mtls__cred_ref(ctx->cred);
	h->trust = mtls__trust_ref(ctx->trust);
	h->crl = mtls__crl_ref(ctx->crl);
	h->days = ctx->warn_days;
	pthread_mutex_unlock(&ctx->lock);
}

static void release(held *h)
{
	mtls__cred_unref(h->cred);
	mtls__trust_unref(h->trust);
	mtls__crl_unref(h->crl);
}

typedef struct user_walk {
	mtls_expiry_fn fn;
	void *user;
} user_walk;

static int to_user(void *user, const mtls_expiry *it, atomic_uchar *flag)
{
	const user_walk *u = user;

	(void)flag;
	return u->fn(u->user, it);
}

int mtls_ctx_expiry_each(const mtls_ctx *ctx, mtls_expiry_fn fn, void *user)
{
	user_walk u = {fn, user};
	held h;
	int n;

	if (ctx == NULL || fn == NULL)
		return MTLS_ERR_INVALID_ARG;
	hold((mtls_ctx *)ctx, &h);
	n = walk(h.cred, h.trust, h.crl, to_user, &u);
	release(&h);
	return n;
}

int mtls_ctx_check_expiry(mtls_ctx *ctx, time_t now)
{
	held h;
	int n;

	if (ctx == NULL)
		return MTLS_ERR_INVALID_ARG;
	hold(ctx, &h);
	n = mtls__expiry_check(h.cred, h.trust, h.crl, h.days, ctx->name,
	                       now != 0 ? now : time(NULL));
	release(&h);
	return n;
}
