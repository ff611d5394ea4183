/*
 * anchors.c - intermediate CAs proven once, then trusted directly.
 *
 * mbedTLS verifies every link of a peer's chain on every full handshake:
 * with the usual leaf + intermediate + root, the intermediate's signature
 * by the root is checked again each time, one ECDSA verification out of
 * the handshake's three (about a fifth of a server's full handshake).
 *
 * Once a handshake has verified a chain under a snapshot's trust and CRLs,
 * the leaf's issuer is remembered in the snapshot and put in front of the
 * trust anchors for later handshakes, so mbedTLS stops at it.  What the
 * skipped links proved must stay true while the shortcut is used:
 *  - the skipped signatures and the profile checks do not change;
 *  - revocation of the intermediate: the CRLs are fixed for the snapshot
 *    (a new CRL builds a new snapshot), and the shortcut ends at the first
 *    next_update of the snapshot's CRLs, when mbedTLS would start flagging
 *    the stale CRL;
 *  - validity periods: the shortcut for an intermediate ends when any
 *    certificate of its verified chain above the leaf expires (the
 *    intermediate's own dates are checked by mbedTLS on every use);
 *  - path length: mbedTLS checks only the anchor's own constraint, so an
 *    intermediate is only learned when nothing above it constrains the
 *    path, or when it may issue end-entity certificates only (pathlen 0).
 * The snapshot owns every node; nodes are never changed after they are
 * published and are freed with the snapshot, so readers take no lock.
 */
#include "internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Learned intermediates per snapshot: enough for real PKIs, a bound on
 * what a snapshot can grow to. */
#define MTLS_ANCHORS_MAX 32

struct mtls_anchor {
	mbedtls_x509_crt crt; /* crt.next: the previous head, or the roots */
	time_t until;         /* the shortcut through the list ends then */
	mtls_anchor *older;   /* every node ever made, for freeing */
};

static time_t min_time(time_t a, time_t b)
{
	return a < b ? a : b;
}

void mtls__anchors_init(mtls_anchors *a, const mtls_crl *crl)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	atomic_init(&a->head, NULL);
	a->crl_until = (time_t)LLONG_MAX;
	for (const mbedtls_x509_crl *c = crl ? &crl->crl : NULL; c != NULL;
	     c = c->next)
		if (c->version != 0 && c->next_update.year != 0)
			a->crl_until = min_time(a->crl_until,
			                        mtls__x509_time(&c->next_update));
}

void mtls__anchors_free(mtls_anchors *a)
{
	mtls_anchor *n = a->all, *older;

	for (; n != NULL; n = older) {
		older = n->older;
		n->crt.next = NULL; /* the rest of the list is not ours */
		mbedtls_x509_crt_free(&n->crt);
		free(n);
	}
	pthread_mutex_destroy(&a->lock);
}

mbedtls_x509_crt *mtls__anchors_chain(mtls_anchors *a, time_t now)
{
	mtls_anchor *head = atomic_load_explicit(&a->head, memory_order_acquire);

	return head != NULL && now < head->until ? &head->crt : NULL;
}

int mtls__anchors_current(const mbedtls_x509_crt *chain, time_t now)
{
	/* the node's certificate is its first member */
	const mtls_anchor *n = (const mtls_anchor *)(const void *)chain;

	return now < n->until;
}

int mtls__anchors_has(const mbedtls_x509_crt *list, const mbedtls_x509_crt *crt)
{
	for (; list != NULL; list = list->next)
		if (list == crt ||
		    (list->raw.len == crt->raw.len &&
		     memcmp(list->raw.p, crt->raw.p, crt->raw.len) == 0))
			return 1;
	return 0;
}

void mtls__anchors_note(mtls_anchor_seen *seen, const mbedtls_x509_crt *crt,
                        int depth, const mbedtls_x509_crt *in_use)
{
	if (depth >= 2) {
		time_t t = mtls__x509_time(&crt->valid_to);
		seen->above_until = seen->above ? min_time(seen->above_until, t)
		                                : t;
		seen->above = 1;
		seen->above_limits |= mtls__crt_max_pathlen(crt) != 0;
		return;
	}
	if (depth != 1 || !seen->above || !mtls__crt_is_ca(crt) ||
	    mtls__anchors_has(in_use, crt))
		return;
	/* pathlen 0 (stored as 1): only end entities below it, so nothing
	 * above can be shortened; otherwise only without limits above. */
	if (seen->above_limits && mtls__crt_max_pathlen(crt) != 1)
		return;
	seen->crt = crt;
	seen->until = min_time(seen->above_until,
	                       mtls__x509_time(&crt->valid_to));
}

void mtls__anchors_learn(mtls_anchors *a, mbedtls_x509_crt *roots,
                         const mtls_anchor_seen *seen, time_t now)
{
	mtls_anchor *head, *n;
	time_t until;

	if (seen->crt == NULL || roots == NULL)
		return;
	until = min_time(seen->until, a->crl_until);
	if (until <= now)
		return;
	pthread_mutex_lock(&a->lock);
	head = atomic_load_explicit(&a->head, memory_order_relaxed);
	if (head != NULL && now >= head->until)
		head = NULL; /* start over: what was learned has run out */
	if (a->count >= MTLS_ANCHORS_MAX ||
	    (head != NULL && mtls__anchors_has(&head->crt, seen->crt)))
		goto out;
	if ((n = calloc(1, sizeof(*n))) == NULL)
		goto out;
	mbedtls_x509_crt_init(&n->crt);
	if (mbedtls_x509_crt_parse_der(&n->crt, seen->crt->raw.p,
	                               seen->crt->raw.len) != 0) {
		mbedtls_x509_crt_free(&n->crt);
		free(n);
		goto out;
	}
	n->crt.next = head != NULL ? &head->crt : roots;
	n->until = head != NULL ? min_time(until, head->until) : until;
	n->older = a->all;
	a->all = n;
	a->count++;
	atomic_store_explicit(&a->head, n, memory_order_release);
out:
	pthread_mutex_unlock(&a->lock);
}

int mtls__anchors_count(mtls_anchors *a)
{
	int n;

	pthread_mutex_lock(&a->lock);
	n = a->count;
	pthread_mutex_unlock(&a->lock);
	return n;
}
