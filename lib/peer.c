/*
 * peer.c - a peer certificate's identity, and matching it against an
 * allow list.  SANs are read from the raw sequence mbedTLS keeps, which
 * both 2.28 and 3.6 fill with every GeneralName.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>

#define SAN_DNS (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2)
#define SAN_URI (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 6)
#define SAN_IP (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7)

static void copy_buf(char *dst, size_t cap, const mbedtls_x509_buf *b)
{
	size_t n = b->len < cap - 1 ? b->len : cap - 1;

	memcpy(dst, b->p, n);
	dst[n] = '\0';
	/* An embedded NUL would let "good\0.evil" pass as "good". */
	if (memchr(b->p, '\0', b->len) != NULL)
		dst[0] = '\0';
}

static void ip_text(const mbedtls_x509_buf *b, char *out, size_t cap)
{
	out[0] = '\0';
	if (b->len == 4)
		inet_ntop(AF_INET, b->p, out, (socklen_t)cap);
	else if (b->len == 16)
		inet_ntop(AF_INET6, b->p, out, (socklen_t)cap);
}

static void hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

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

static void dn_attr(const mbedtls_x509_name *dn, const char *oid,
                    size_t oid_len, char *out, size_t cap)
{
	const mbedtls_x509_name *a = dn_first(dn, oid, oid_len);

	out[0] = '\0';
	if (a != NULL)
		copy_buf(out, cap, &a->val);
}

void mtls__peer_fill(const mbedtls_x509_crt *crt, mtls_peer *p)
{
	const mbedtls_x509_sequence *s;
	unsigned char digest[32];

	memset(p, 0, sizeof(*p));
	if (crt == NULL || crt->raw.p == NULL)
		return;
	p->has_cert = 1;
	mtls__fmt_dn(&crt->subject, p->subject, sizeof(p->subject));
	mtls__fmt_dn(&crt->issuer, p->issuer, sizeof(p->issuer));
	mtls__fmt_serial(&crt->serial, p->serial, sizeof(p->serial));
	dn_attr(&crt->subject, OID_CN, p->cn, sizeof(p->cn));
	dn_attr(&crt->subject, OID_OU, p->ou, sizeof(p->ou));
	p->not_before = mtls__x509_time(&crt->valid_from);
	p->not_after = mtls__x509_time(&crt->valid_to);
	if (mtls__sha256(crt->raw.p, crt->raw.len, digest) == 0)
		hex(digest, 32, p->sha256);
	if (mtls__sha256(crt->pk_raw.p, crt->pk_raw.len, digest) == 0)
		hex(digest, 32, p->spki_sha256);

	for (s = &crt->subject_alt_names; s != NULL; s = s->next) {
		const mbedtls_x509_buf *b = &s->buf;
		if (b->p == NULL)
			continue;
		if (b->tag == SAN_DNS && p->n_dns < MTLS_PEER_MAX_SANS)
			copy_buf(p->dns[p->n_dns++], sizeof(p->dns[0]), b);
		else if (b->tag == SAN_URI && p->n_uri < MTLS_PEER_MAX_SANS)
			copy_buf(p->uri[p->n_uri++], sizeof(p->uri[0]), b);
		else if (b->tag == SAN_IP && p->n_ip < MTLS_PEER_MAX_SANS)
			ip_text(b, p->ip[p->n_ip++], sizeof(p->ip[0]));
	}
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
		if (s->buf.p != NULL && s->buf.tag == SAN_IP &&
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
		if (a->kind == MTLS_ALLOW_DNS && b->tag == SAN_DNS &&
		    buf_eq(b, a->value, 1))
			return b;
		if (a->kind == MTLS_ALLOW_URI && b->tag == SAN_URI &&
		    buf_eq(b, a->value, 0))
			return b;
		if (a->kind == MTLS_ALLOW_URI_PREFIX && b->tag == SAN_URI &&
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
		hex(digest, 32, h);
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
	const mbedtls_x509_buf *uri = san_first(leaf, SAN_URI);

	if (uri != NULL)
		return san_count(leaf, SAN_URI) == 1 &&
		               uri_plain(uri->p, uri->len)
		           ? uri
		           : NULL;
	if (dn_count(&leaf->subject, OID_CN) != 1)
		return NULL;
	return &dn_first(&leaf->subject, OID_CN)->val;
}

int mtls__allow_match(const mtls_allow *list, size_t n,
                      const mbedtls_x509_crt *leaf, char *id, size_t idlen)
{
	const mbedtls_x509_buf *hit = NULL;
	int pinned = 0, uri_rules = 0, cn_rules = 0;

	if (id != NULL && idlen > 0)
		id[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		uri_rules |= list[i].kind == MTLS_ALLOW_URI ||
		             list[i].kind == MTLS_ALLOW_URI_PREFIX;
		cn_rules |= list[i].kind == MTLS_ALLOW_CN;
	}
	/* One identity per certificate, or the one matched and the one a
	 * backend reads could differ: an X.509-SVID has exactly one URI. */
	if (uri_rules && san_count(leaf, SAN_URI) > 1)
		return 0;
	if (cn_rules && dn_count(&leaf->subject, OID_CN) > 1)
		return 0;
	for (size_t i = 0; i < n && hit == NULL && !pinned; i++)
		hit = one_match(leaf, &list[i], &pinned);
	if (n > 0 && hit == NULL && !pinned)
		return 0;
	if (hit == NULL)
		hit = own_identity(leaf);
	if (id != NULL && idlen > 0 && hit != NULL &&
	    memchr(hit->p, '\0', hit->len) == NULL && hit->len < idlen) {
		memcpy(id, hit->p, hit->len);
		id[hit->len] = '\0';
	}
	return 1;
}
