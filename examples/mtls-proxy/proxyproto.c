/*
 * proxyproto.c - PROXY protocol v2 header writer (see proxyproto.h).
 */
#include "proxyproto.h"

#include <netinet/in.h>
#include <string.h>

_Static_assert(16 + 36 + 3 + 5 + 3 + PXY_PP2_VERSION_MAX + 3 + PXY_PP2_CN_MAX +
                   3 + PXY_PP2_URI_MAX <= PXY_PP2_MAX,
               "PXY_PP2_MAX is below the largest header");

static const unsigned char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

struct out {
	unsigned char *p;
	size_t len, cap;
	int full;
};

static void put(struct out *o, const void *d, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, d, n);
	o->len += n;
}

static void put_u16(struct out *o, size_t v)
{
	unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
	put(o, b, 2);
}

/* A TLV whose value is a string cut to max bytes; left out when empty.
 * The cut keeps every enclosing length within 16 bits. */
static void put_tlv_str(struct out *o, unsigned type, const char *s,
                        size_t max)
{
	unsigned char t = (unsigned char)type;
	size_t n = s ? strnlen(s, max + 1) : 0;

	if (n == 0 || n > max) /* absent, or too long to send whole */
		return;
	put(o, &t, 1);
	put_u16(o, n);
	put(o, s, n);
}

static void put_addrs(struct out *o, const struct sockaddr *src,
                      const struct sockaddr *dst)
{
	if (src->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)src;
		const struct sockaddr_in *d = (const void *)dst;

		put(o, &s->sin_addr, 4);
		put(o, &d->sin_addr, 4);
		put(o, &s->sin_port, 2); /* already big endian */
		put(o, &d->sin_port, 2);
	} else {
		const struct sockaddr_in6 *s = (const void *)src;
		const struct sockaddr_in6 *d = (const void *)dst;

		put(o, &s->sin6_addr, 16);
		put(o, &d->sin6_addr, 16);
		put(o, &s->sin6_port, 2);
		put(o, &d->sin6_port, 2);
	}
}

size_t pxy_pp2_header(unsigned char *out, size_t cap,
                      const struct sockaddr *src, const struct sockaddr *dst,
                      const struct pxy_pp2_tls *tls)
{
	struct out o = {.p = out, .cap = cap};
	unsigned char fam = 0x00, b;
	size_t len_at, ssl_at, n;

	if (out == NULL || src == NULL || dst == NULL)
		return 0;
	if (src->sa_family == dst->sa_family && src->sa_family == AF_INET)
		fam = 0x11;
	else if (src->sa_family == dst->sa_family &&
	         src->sa_family == AF_INET6)
		fam = 0x21;
	put(&o, sig, sizeof(sig));
	b = 0x21; /* version 2, PROXY */
	put(&o, &b, 1);
	put(&o, &fam, 1);
	len_at = o.len;
	put_u16(&o, 0); /* patched below */
	if (fam != 0x00)
		put_addrs(&o, src, dst);
	if (tls != NULL) {
		unsigned char client = PXY_PP2_CLIENT_SSL;
		unsigned char verify[4] = {0, 0, 0, 0};

		if (tls->has_cert)
			client |= PXY_PP2_CLIENT_CERT_CONN;
		if (!(tls->has_cert && tls->verified))
			verify[3] = 1;
		b = PXY_PP2_TYPE_SSL;
		put(&o, &b, 1);
		ssl_at = o.len;
		put_u16(&o, 0);
		put(&o, &client, 1);
		put(&o, verify, 4);
		put_tlv_str(&o, PXY_PP2_SUBTYPE_SSL_VERSION, tls->version,
		            PXY_PP2_VERSION_MAX);
		put_tlv_str(&o, PXY_PP2_SUBTYPE_SSL_CN, tls->cn, PXY_PP2_CN_MAX);
		if (!o.full) {
			n = o.len - ssl_at - 2;
			out[ssl_at] = (unsigned char)(n >> 8);
			out[ssl_at + 1] = (unsigned char)n;
		}
		put_tlv_str(&o, PXY_PP2_TYPE_URI_SAN, tls->uri, PXY_PP2_URI_MAX);
	}
	if (o.full)
		return 0;
	n = o.len - len_at - 2;
	out[len_at] = (unsigned char)(n >> 8);
	out[len_at + 1] = (unsigned char)n;
	return o.len;
}
