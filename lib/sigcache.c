/*
 * sigcache.c - signatures of returning peers' certificates, verified once
 * per snapshot (tuned build only: tuned/patches/0004).
 *
 * With learned intermediates (anchors.c) a full handshake still verifies
 * the peer leaf's signature by its issuer: one ECDSA verification, the
 * same one for every handshake of a returning client.  The tuned mbedTLS
 * asks a hook before each certificate-signature check; this cache answers
 * "verified before" for an exact (certificate DER, issuer public key) pair
 * that a handshake of this snapshot verified with a fully trusted outcome.
 * Only the signature computation is skipped: mbedTLS still checks dates,
 * names, key usage, path, profile and CRLs, verify_cb still applies the
 * policy, and the peer's CertificateVerify is always checked.
 *
 * What an entry proves must hold while it is used:
 *  - the signature: a pure function of the two keys' bytes (the child's
 *    whole DER, signature included, and the parent's SubjectPublicKeyInfo),
 *    so another leaf with the same names or serial, or a certificate signed
 *    by another key under the same issuer name, is another key here;
 *  - bounds: an entry ends at the earliest of the child's and the parent's
 *    not_after and the snapshot's first CRL next_update, as learned
 *    intermediates do; the snapshot, and so the cache, ends with a reload
 *    (new CAs or CRLs start empty);
 *  - additions: only after a handshake whose chain verified with no flag at
 *    all and whose CertificateVerify passed (conn.c); a failed or unknown
 *    check is never remembered.
 * Bounded: MTLS_SIGCACHE_MAX entries per snapshot, the oldest replaced.
 * A small mutex guards the table (a lookup scans at most the table).
 */
#include "internal.h"

#if MTLS_HAVE_SIGCACHE

#include <stdlib.h>
#include <string.h>

void mtls__sigcache_init(mtls_sigcache *sc)
{
	memset(sc, 0, sizeof(*sc));
	pthread_mutex_init(&sc->lock, NULL);
	atomic_init(&sc->hits, 0);
	atomic_init(&sc->checks, 0);
}

void mtls__sigcache_free(mtls_sigcache *sc)
{
	free(sc->e);
	sc->e = NULL;
	pthread_mutex_destroy(&sc->lock);
}

static time_t min_time(time_t a, time_t b)
{
	return a < b ? a : b;
}

int mtls__sigkey_make(const mbedtls_x509_crt *child,
                      const mbedtls_x509_crt *parent, time_t crl_until,
                      mtls_sigkey *k)
{
	if (child->raw.p == NULL || parent->pk_raw.p == NULL ||
	    mtls__sha256(child->raw.p, child->raw.len, k->child) != 0 ||
	    mtls__sha256(parent->pk_raw.p, parent->pk_raw.len, k->parent) != 0)
		return -1;
	k->until = min_time(min_time(mtls__x509_time(&child->valid_to),
	                             mtls__x509_time(&parent->valid_to)),
	                    crl_until);
	return 0;
}

static int same_key(const mtls_sigkey *a, const mtls_sigkey *b)
{
	return memcmp(a->child, b->child, sizeof(a->child)) == 0 &&
	       memcmp(a->parent, b->parent, sizeof(a->parent)) == 0;
}

/* Caller holds the lock. */
static const mtls_sigkey *find(const mtls_sigcache *sc, const mtls_sigkey *k)
{
	for (size_t i = 0; i < sc->n; i++)
		if (same_key(&sc->e[i], k))
			return &sc->e[i];
	return NULL;
}

int mtls__sigcache_has(mtls_sigcache *sc, const mtls_sigkey *k, time_t now)
{
	const mtls_sigkey *e;
	int hit;

	pthread_mutex_lock(&sc->lock);
	e = find(sc, k);
	hit = e != NULL && now < e->until;
	pthread_mutex_unlock(&sc->lock);
	if (hit)
		atomic_fetch_add_explicit(&sc->hits, 1, memory_order_relaxed);
	return hit;
}

void mtls__sigcache_add(mtls_sigcache *sc, const mtls_sigkey *k, time_t now)
{
	mtls_sigkey *e;

	if (k->until <= now)
		return;
	pthread_mutex_lock(&sc->lock);
	if (sc->e == NULL &&
	    (sc->e = calloc(MTLS_SIGCACHE_MAX, sizeof(*sc->e))) == NULL)
		goto out;
	if ((e = (mtls_sigkey *)find(sc, k)) != NULL) {
		e->until = k->until; /* an expired entry comes back */
		goto out;
	}
	sc->e[sc->next] = *k;
	sc->next = (sc->next + 1) % MTLS_SIGCACHE_MAX;
	if (sc->n < MTLS_SIGCACHE_MAX)
		sc->n++;
out:
	pthread_mutex_unlock(&sc->lock);
}

void mtls__sigcache_checked(mtls_sigcache *sc)
{
	atomic_fetch_add_explicit(&sc->checks, 1, memory_order_relaxed);
}

int mtls__sigcache_count(mtls_sigcache *sc, time_t when)
{
	int n = 0;

	pthread_mutex_lock(&sc->lock);
	for (size_t i = 0; i < sc->n; i++)
		n += when < sc->e[i].until;
	pthread_mutex_unlock(&sc->lock);
	return n;
}

void mtls__sigcache_stats(mtls_sigcache *sc, unsigned long long *hits,
                          unsigned long long *checks)
{
	*hits = atomic_load_explicit(&sc->hits, memory_order_relaxed);
	*checks = atomic_load_explicit(&sc->checks, memory_order_relaxed);
}

#else

/* Stock mbedTLS: no hook, nothing here (ISO C wants a declaration). */
typedef int mtls__sigcache_unused;

#endif
