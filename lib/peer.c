/*
 * peer.c - a peer certificate's identity, and matching it against an
 * allow list.  SANs are read from the raw sequence mbedTLS keeps, which
 * both 2.28 and 3.6 fill with every GeneralName.  The certificate as text
 * (mtls_peer and the mtls_conn_peer_* accessors) is peerinfo.c's.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>

#define OID_CN MBEDTLS_OID_AT_CN, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN)
#define OID_OU MBEDTLS_OID_AT_ORG_UNIT, MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_ORG_UNIT)

static int oid_is(const mbedtls_x509_name *dn, const char *oid,
                  size_t oid_len)
{
	return dn->oid.p != NULL && dn->oid.len == oid_len &&
	       memcmp(dn->oid.p, oid, oid_len) == 0;
}

/* The first attribute of the given OID in a DN, or NULL. */
static const mbedtls_x509_name *dn_first(const mbedtls_x509_name *dn,
                                         const char *oid, size_t oid_len)
{
	for (; dn != NULL; dn = dn->next)
		if (oid_is(dn, oid, oid_len))
			return dn;
	return NULL;
}

int mtls__is_ip(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

int mtls__crt_has_ip(const mbedtls_x509_crt *crt, const char *ip)
{
	const mbedtls_x509_sequence *s;
	unsigned char a[16];
	size_t alen;

	if (inet_pton(AF_INET, ip, a) == 1)
		alen = 4;
	else if (inet_pton(AF_INET6, ip, a) == 1)
		alen = 16;
	else
		return 0;
	for (s = &crt->subject_alt_names; s != NULL; s = s->next)
		if (s->buf.p != NULL && s->buf.tag == MTLS__SAN_TAG_IP &&
		    s->buf.len == alen && memcmp(s->buf.p, a, alen) == 0)
			return 1;
	return 0;
}

static int buf_eq(const mbedtls_x509_buf *b, const char *v, int nocase)
{
	size_t n = strlen(v);

	if (b->len != n)
		return 0;
	return nocase ? mtls__ascii_eq_nocase((const char *)b->p, v, n)
	              : memcmp(b->p, v, n) == 0;
}

/* A URI a prefix rule may judge: no dot segment and no percent-encoded
 * dot, slash or backslash that a backend could decode into one, no query
 * or fragment.  "spiffe://td/ns/a/../admin" must not pass as ".../ns/a/". */
static int uri_plain(const unsigned char *p, size_t len)
{
	const unsigned char *path, *end = p + len;

	for (const unsigned char *q = p; q < end; q++) {
		if (*q == '?' || *q == '#' || *q == '\\')
			return 0;
		if (*q == '%' && end - q >= 3 &&
		    ((q[1] == '2' && (q[2] == 'e' || q[2] == 'E' ||
		                      q[2] == 'f' || q[2] == 'F')) ||
		     (q[1] == '5' && (q[2] == 'c' || q[2] == 'C'))))
			return 0;
	}
	/* the path starts after "scheme://authority" (or the scheme) */
	path = memchr(p, ':', len);
	path = path != NULL ? path + 1 : p;
	if (end - path >= 2 && path[0] == '/' && path[1] == '/') {
		path = memchr(path + 2, '/', (size_t)(end - path - 2));
		if (path == NULL)
			return 1;
	}
	for (const unsigned char *seg = path; seg < end;) {
		const unsigned char *next = memchr(seg, '/', (size_t)(end - seg));
		size_t n = (size_t)((next ? next : end) - seg);
		if ((n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return 0;
		if (n == 0 && seg != path && next != NULL)
			return 0; /* "//" inside the path */
		seg = next ? next + 1 : end;
	}
	return 1;
}

/* A prefix matches whole path segments: "spiffe://td/ns/a" and
 * "spiffe://td/ns/a/" both cover ".../ns/a/x", neither ".../ns/ab". */
static int uri_prefix_eq(const mbedtls_x509_buf *b, const char *prefix)
{
	size_t n = strlen(prefix);

	if (b->len < n || memcmp(b->p, prefix, n) != 0 || !uri_plain(b->p, b->len))
		return 0;
	return b->len == n || prefix[n - 1] == '/' || b->p[n] == '/';
}

static int san_count(const mbedtls_x509_crt *leaf, int tag)
{
	int n = 0;

	for (const mbedtls_x509_sequence *s = &leaf->subject_alt_names;
	     s != NULL; s = s->next)
		n += s->buf.p != NULL && s->buf.tag == tag;
	return n;
}

static const mbedtls_x509_buf *san_first(const mbedtls_x509_crt *leaf,
                                         int tag)
{
	for (const mbedtls_x509_sequence *s = &leaf->subject_alt_names;
	     s != NULL; s = s->next)
		if (s->buf.p != NULL && s->buf.tag == tag)
			return &s->buf;
	return NULL;
}

static int dn_count(const mbedtls_x509_name *dn, const char *oid,
                    size_t oid_len)
{
	int n = 0;

	for (; dn != NULL; dn = dn->next)
		n += oid_is(dn, oid, oid_len);
	return n;
}

static const mbedtls_x509_buf *san_match(const mbedtls_x509_crt *leaf,
                                        const mtls_allow *a)
{
	const mbedtls_x509_sequence *s;

	for (s = &leaf->subject_alt_names; s != NULL; s = s->next) {
		const mbedtls_x509_buf *b = &s->buf;
		if (b->p == NULL || memchr(b->p, '\0', b->len) != NULL)
			continue;
		if (a->kind == MTLS_ALLOW_DNS && b->tag == MTLS__SAN_TAG_DNS &&
		    buf_eq(b, a->value, 1))
			return b;
		if (a->kind == MTLS_ALLOW_URI && b->tag == MTLS__SAN_TAG_URI &&
		    buf_eq(b, a->value, 0))
			return b;
		if (a->kind == MTLS_ALLOW_URI_PREFIX && b->tag == MTLS__SAN_TAG_URI &&
		    uri_prefix_eq(b, a->value))
			return b;
	}
	return NULL;
}

static const mbedtls_x509_buf *dn_match(const mbedtls_x509_name *dn,
                                       const char *oid, size_t oid_len,
                                       const char *value)
{
	for (; dn != NULL; dn = dn->next)
		if (oid_is(dn, oid, oid_len) &&
		    memchr(dn->val.p, '\0', dn->val.len) == NULL &&
		    buf_eq(&dn->val, value, 0))
			return &dn->val;
	return NULL;
}

/* The certificate value an entry matched, or NULL.  An SPKI pin matches
 * the key, not a name: the identity is then the leaf's own (see below). */
static const mbedtls_x509_buf *one_match(const mbedtls_x509_crt *leaf,
                                        const mtls_allow *a, int *pinned)
{
	unsigned char digest[32];
	char h[65];

	switch (a->kind) {
	case MTLS_ALLOW_URI:
	case MTLS_ALLOW_URI_PREFIX:
	case MTLS_ALLOW_DNS:
		return san_match(leaf, a);
	case MTLS_ALLOW_CN:
		return dn_match(&leaf->subject, OID_CN, a->value);
	case MTLS_ALLOW_OU:
		return dn_match(&leaf->subject, OID_OU, a->value);
	case MTLS_ALLOW_SPKI_SHA256:
		if (mtls__sha256(leaf->pk_raw.p, leaf->pk_raw.len, digest) != 0)
			return NULL;
		mtls__hex(digest, 32, h);
		*pinned = strcasecmp(h, a->value) == 0;
		return NULL;
	}
	return NULL;
}

/* The leaf's own identity when no name rule decided: its only URI SAN
 * (none if that URI has a path a backend could normalise into another),
 * else, with no URI SAN at all, its only CN.  A certificate with several
 * URIs has no single identity: not its CN either, which could spell one
 * of them. */
static const mbedtls_x509_buf *own_identity(const mbedtls_x509_crt *leaf)
{
	const mbedtls_x509_buf *uri = san_first(leaf, MTLS__SAN_TAG_URI);

	if (uri != NULL)
		return san_count(leaf, MTLS__SAN_TAG_URI) == 1 &&
		               uri_plain(uri->p, uri->len)
		           ? uri
		           : NULL;
	if (dn_count(&leaf->subject, OID_CN) != 1)
		return NULL;
	return &dn_first(&leaf->subject, OID_CN)->val;
}

int mtls__allow_decide(const mtls_allow *list, size_t n,
                       const mbedtls_x509_crt *leaf,
                       const mbedtls_x509_buf **id)
{
	const mbedtls_x509_buf *hit = NULL;
	int pinned = 0, uri_rules = 0, cn_rules = 0;

	if (id != NULL)
		*id = NULL;
	for (size_t i = 0; i < n; i++) {
		uri_rules |= list[i].kind == MTLS_ALLOW_URI ||
		             list[i].kind == MTLS_ALLOW_URI_PREFIX;
		cn_rules |= list[i].kind == MTLS_ALLOW_CN;
	}
	/* One identity per certificate, or the one matched and the one a
	 * backend reads could differ: an X.509-SVID has exactly one URI. */
	if (uri_rules && san_count(leaf, MTLS__SAN_TAG_URI) > 1)
		return 0;
	if (cn_rules && dn_count(&leaf->subject, OID_CN) > 1)
		return 0;
	for (size_t i = 0; i < n && hit == NULL && !pinned; i++)
		hit = one_match(leaf, &list[i], &pinned);
	if (n > 0 && hit == NULL && !pinned)
		return 0;
	if (hit == NULL)
		hit = own_identity(leaf);
	if (id != NULL)
		*id = hit;
	return 1;
}

int mtls__allow_match(const mtls_allow *list, size_t n,
                      const mbedtls_x509_crt *leaf, char *id, size_t idlen)
{
	const mbedtls_x509_buf *hit;

	if (id != NULL && idlen > 0)
		id[0] = '\0';
	if (!mtls__allow_decide(list, n, leaf, &hit))
		return 0;
	if (id != NULL && idlen > 0 && hit != NULL &&
	    memchr(hit->p, '\0', hit->len) == NULL && hit->len < idlen) {
		memcpy(id, hit->p, hit->len);
		id[hit->len] = '\0';
	}
	return 1;
}

static int spiffe_char(int ch)
{
	return mtls__ascii_alnum(ch) || ch == '.' || ch == '-' || ch == '_';
}

int mtls__is_spiffe_id(const char *s)
{
	static const char scheme[] = "spiffe://";
	const char *p = s + sizeof(scheme) - 1, *seg;

	if (strncmp(s, scheme, sizeof(scheme) - 1) != 0)
		return 0;
	/* trust domain: lowercase only, so that one domain has one spelling */
	for (seg = p; *p != '\0' && *p != '/'; p++)
		if (!spiffe_char((unsigned char)*p) ||
		    (*p >= 'A' && *p <= 'Z'))
			return 0;
	if (p == seg)
		return 0;
	while (*p == '/') {
		for (seg = ++p; *p != '\0' && *p != '/'; p++)
			if (!spiffe_char((unsigned char)*p))
				return 0;
		if (p == seg || (p - seg == 1 && seg[0] == '.') ||
		    (p - seg == 2 && seg[0] == '.' && seg[1] == '.'))
			return 0; /* empty (or trailing "/"), "." or ".." */
	}
	return *p == '\0';
}
