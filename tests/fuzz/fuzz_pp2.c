/*
 * fuzz_pp2.c - the mtls-proxy PROXY protocol v2 header writer
 * (examples/mtls-proxy/proxyproto.c), a pure function.  The input picks the
 * address families, addresses and ports, the TLS flags, the version, CN and
 * URI strings (copied from the input, or generated far longer than any TLV
 * allows) and the buffer size.  The output is then parsed back and every
 * promise of proxyproto.h is checked; a broken one aborts.
 *
 * Input: flags (0x01 TLS, 0x02 has_cert, 0x04 verified, 0x40 large cap,
 * 0x80 also try NULL arguments), source and destination (a family selector
 * byte, 16 address bytes, 2 port bytes each), 2 bytes of cap, then version,
 * CN and URI (see make_str).  Missing bytes read as 0.
 */
#include "proxyproto.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CANARY 0xA5
#define BACKED (4 * (size_t)PXY_PP2_MAX) /* most bytes behind a cap */

struct in {
	const uint8_t *p;
	size_t left;
};

static unsigned get8(struct in *in)
{
	if (in->left == 0)
		return 0;
	in->left--;
	return *in->p++;
}

static unsigned get16(struct in *in)
{
	unsigned hi = get8(in);

	return hi << 8 | get8(in);
}

#define CHECK(c) \
	do { \
		if (!(c)) { \
			fprintf(stderr, "fuzz_pp2: %s:%d: %s\n", __FILE__, \
			        __LINE__, #c); \
			abort(); \
		} \
	} while (0)

/* Selector bits: 0 AF_INET, 1 AF_INET6, 2 AF_UNIX, 3 AF_UNSPEC. */
static void make_addr(struct in *in, struct sockaddr_storage *ss)
{
	static const sa_family_t fams[] = {AF_INET, AF_INET6, AF_UNIX,
	                                   AF_UNSPEC};
	uint8_t raw[18];
	size_t i;

	memset(ss, 0, sizeof(*ss));
	ss->ss_family = fams[get8(in) & 3];
	for (i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)get8(in);
	if (ss->ss_family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;

		memcpy(&s->sin_addr, raw, 4);
		memcpy(&s->sin_port, raw + 16, 2);
	} else if (ss->ss_family == AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

		memcpy(&s->sin6_addr, raw, 16);
		memcpy(&s->sin6_port, raw + 16, 2);
	}
}

/* Long runs of one byte, beyond every TLV limit and past 16 bits;
 * static, since a fresh 128 KiB allocation per input (mmap, page faults)
 * would cost more than the function under test. */
#define RUN_MAX 0x1FFFF
static char runs[3][RUN_MAX + 1];

/* String k from a mode byte: 0, NULL; 0x80, a run as long as the next two
 * bytes say (+ 65536 with 0x40); else a copy of as many input bytes as the
 * next byte says (up to the first NUL), in a buffer of exactly its size so
 * ASan sees a read past the terminator. */
static char *make_str(struct in *in, int k)
{
	unsigned mode = get8(in);
	size_t n, i;
	char *s;

	if (mode == 0)
		return NULL;
	if (mode & 0x80) {
		n = get16(in) + ((mode & 0x40) ? 0x10000u : 0);
		runs[k][n] = '\0';
		return runs[k];
	}
	n = get8(in);
	if (n > in->left)
		n = in->left;
	for (i = 0; i < n && in->p[i] != '\0'; i++)
		;
	n = i;
	if ((s = malloc(n + 1)) == NULL)
		abort();
	memcpy(s, in->p, n);
	s[n] = '\0';
	in->p += n;
	in->left -= n;
	return s;
}

static void drop_str(char *s, int k)
{
	if (s == runs[k])
		s[strlen(s)] = 'x';
	else
		free(s);
}

static size_t tlv_len(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	/* absent, or too long to be sent whole: left out, never cut */
	return n == 0 || n > max ? 0 : 3 + n;
}

/* Checks one string TLV at q (left bytes remaining); returns its size. */
static size_t check_str_tlv(const unsigned char *q, size_t left,
                            unsigned type, const char *s, size_t max)
{
	size_t want = tlv_len(s, max), n;

	if (want == 0)
		return 0;
	CHECK(left >= 3);
	CHECK(q[0] == type);
	n = (size_t)q[1] << 8 | q[2];
	CHECK(n == want - 3);
	CHECK(n <= max);
	CHECK(left - 3 >= n);
	CHECK(memcmp(q + 3, s, n) == 0);
	CHECK(memchr(q + 3, '\0', n) == NULL);
	return 3 + n;
}

static void check(const unsigned char *out, size_t n,
                  const struct sockaddr_storage *src,
                  const struct sockaddr_storage *dst,
                  const struct pxy_pp2_tls *tls)
{
	static const unsigned char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A,
	                                      0x00, 0x0D, 0x0A, 0x51,
	                                      0x55, 0x49, 0x54, 0x0A};
	unsigned char fam = 0x00;
	size_t len, at;

	CHECK(n >= 16);
	CHECK(memcmp(out, sig, 12) == 0);
	CHECK(out[12] == 0x21);
	if (src->ss_family == dst->ss_family && src->ss_family == AF_INET)
		fam = 0x11;
	else if (src->ss_family == dst->ss_family &&
	         src->ss_family == AF_INET6)
		fam = 0x21;
	CHECK(out[13] == fam);
	len = (size_t)out[14] << 8 | out[15];
	CHECK(len == n - 16);
	at = 16;
	if (fam == 0x11) {
		const struct sockaddr_in *s = (const void *)src,
		                         *d = (const void *)dst;

		CHECK(len >= 12);
		CHECK(memcmp(out + 16, &s->sin_addr, 4) == 0);
		CHECK(memcmp(out + 20, &d->sin_addr, 4) == 0);
		CHECK(memcmp(out + 24, &s->sin_port, 2) == 0);
		CHECK(memcmp(out + 26, &d->sin_port, 2) == 0);
		at += 12;
	} else if (fam == 0x21) {
		const struct sockaddr_in6 *s = (const void *)src,
		                          *d = (const void *)dst;

		CHECK(len >= 36);
		CHECK(memcmp(out + 16, &s->sin6_addr, 16) == 0);
		CHECK(memcmp(out + 32, &d->sin6_addr, 16) == 0);
		CHECK(memcmp(out + 48, &s->sin6_port, 2) == 0);
		CHECK(memcmp(out + 50, &d->sin6_port, 2) == 0);
		at += 36;
	}
	if (tls != NULL) {
		size_t ssl, sub;

		CHECK(n - at >= 3 + 5);
		CHECK(out[at] == PXY_PP2_TYPE_SSL);
		ssl = (size_t)out[at + 1] << 8 | out[at + 2];
		CHECK(ssl >= 5 && ssl <= n - at - 3);
		CHECK(out[at + 3] == (PXY_PP2_CLIENT_SSL |
		                      (tls->has_cert ? PXY_PP2_CLIENT_CERT_CONN
		                                     : 0)));
		CHECK(out[at + 4] == 0 && out[at + 5] == 0 && out[at + 6] == 0);
		CHECK(out[at + 7] == (tls->has_cert && tls->verified ? 0 : 1));
		/* The sub-TLVs fill the SSL TLV exactly. */
		sub = at + 8;
		sub += check_str_tlv(out + sub, at + 3 + ssl - sub,
		                     PXY_PP2_SUBTYPE_SSL_VERSION, tls->version,
		                     PXY_PP2_VERSION_MAX);
		sub += check_str_tlv(out + sub, at + 3 + ssl - sub,
		                     PXY_PP2_SUBTYPE_SSL_CN, tls->cn,
		                     PXY_PP2_CN_MAX);
		CHECK(sub == at + 3 + ssl);
		at = sub;
		at += check_str_tlv(out + at, n - at, PXY_PP2_TYPE_URI_SAN,
		                    tls->uri, PXY_PP2_URI_MAX);
	}
	CHECK(at == n);
}

/* The size the header must have, from proxyproto.h alone. */
static size_t expected(const struct sockaddr_storage *src,
                       const struct sockaddr_storage *dst,
                       const struct pxy_pp2_tls *tls)
{
	size_t n = 16;

	if (src->ss_family == dst->ss_family && src->ss_family == AF_INET)
		n += 12;
	else if (src->ss_family == dst->ss_family &&
	         src->ss_family == AF_INET6)
		n += 36;
	if (tls != NULL)
		n += 3 + 5 + tlv_len(tls->version, PXY_PP2_VERSION_MAX) +
		     tlv_len(tls->cn, PXY_PP2_CN_MAX) +
		     tlv_len(tls->uri, PXY_PP2_URI_MAX);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	struct sockaddr_storage src, dst;
	struct pxy_pp2_tls tls;
	unsigned flags, c;
	unsigned char *out;
	size_t cap, alloc, n, want;
	char *version, *cn, *uri;

	flags = get8(&in);
	make_addr(&in, &src);
	make_addr(&in, &dst);
	c = get16(&in);
	/* Mostly around the largest header; sometimes far beyond it, so
	 * nothing but the function's own limits bounds the output. */
	cap = flags & 0x40 ? (size_t)c * 4 : c % (PXY_PP2_MAX + 64);
	if (runs[0][0] == '\0')
		memset(runs, 'x', sizeof(runs));
	version = make_str(&in, 0);
	cn = make_str(&in, 1);
	uri = make_str(&in, 2);
	tls.has_cert = (flags & 0x02) != 0;
	tls.verified = (flags & 0x04) != 0;
	tls.version = version;
	tls.cn = cn;
	tls.uri = uri;
	/* The buffer: cap bytes, then 16 of canary, which must be intact past
	 * the returned length.  A larger cap is passed as is but backed by
	 * BACKED bytes: the header never exceeds PXY_PP2_MAX, and ASan
	 * reports a write beyond. */
	alloc = cap < BACKED ? cap + 16 : BACKED;
	if ((out = malloc(alloc)) == NULL)
		abort();
	memset(out, CANARY, alloc);
	if (flags & 0x80) { /* a NULL argument: always 0 */
		CHECK(pxy_pp2_header(NULL, cap, (struct sockaddr *)&src,
		                     (struct sockaddr *)&dst, &tls) == 0);
		CHECK(pxy_pp2_header(out, cap, NULL, (struct sockaddr *)&dst,
		                     &tls) == 0);
		CHECK(pxy_pp2_header(out, cap, (struct sockaddr *)&src, NULL,
		                     &tls) == 0);
	}
	n = pxy_pp2_header(out, cap, (struct sockaddr *)&src,
	                   (struct sockaddr *)&dst,
	                   flags & 0x01 ? &tls : NULL);
	want = expected(&src, &dst, flags & 0x01 ? &tls : NULL);
	CHECK(want <= PXY_PP2_MAX);
	CHECK(n <= cap);
	CHECK(n == (want <= cap ? want : 0));
	if (n != 0) {
		check(out, n, &src, &dst, flags & 0x01 ? &tls : NULL);
		/* All canary: the first one is, and each equals the next. */
		CHECK(out[n] == CANARY &&
		      memcmp(out + n, out + n + 1, alloc - n - 1) == 0);
	}
	free(out);
	drop_str(version, 0);
	drop_str(cn, 1);
	drop_str(uri, 2);
	return 0;
}
