/*
 * fuzz_allow.c - identity and allow-list matching (mtls__allow_match in
 * lib/peer.c) on certificates built from the input: a leaf whose subject
 * CNs and OUs and whose DNS, URI, IP and other SANs hold fuzzer bytes, and
 * an allow list of fuzzer entries.  The certificate is written as DER here
 * (no signature is checked by parsing, so none is made) and parsed by
 * mbedTLS; inputs it refuses are skipped.
 *
 * The result is compared with a reference model written from mtls.h's
 * promises: entries are tried in order, the first match decides and its
 * certificate value is the identity; URI or URI-prefix entries refuse a
 * leaf with more than one URI SAN, CN entries one with more than one CN; a
 * URI prefix matches whole segments of a URI with no "." or ".." segment,
 * empty segment, query, fragment, backslash or percent-encoded '.', '/' or
 * '\'; without a name match the identity is the only URI SAN when that
 * URI is plain (as above), else, with no URI SAN at all, the only CN;
 * values holding a NUL never match and are never reported.  The
 * brief's invariants are also checked on their own: a reported identity is
 * a value of the certificate; a leaf with two URI SANs never passes URI
 * rules; an identity a prefix matched has no dot segment and no %2e, %2f
 * or %5c; id is NUL-terminated within idlen and nothing past idlen is
 * written.  The certificate as text (lib/peerinfo.c, mtls_peer) is checked
 * too: every SAN counted and listed whole, or "" when it holds a NUL, and
 * the fixed struct never holding a cut value.  Any disagreement aborts.
 *
 * Input: records [type][len][len bytes]; type % 8: 0 DNS SAN, 1 URI SAN,
 * 2 IP SAN, 3 CN, 4 OU, 5 allow entry (kind (type / 8) % 6, value up to
 * its first NUL; an SPKI entry with an empty value or odd first byte is
 * the leaf's real pin), 6 rfc822Name SAN, 7 idlen (its first byte).
 * An input starting with 0x30 0x82 is instead a DER certificate (seeds:
 * the test PKI's), judged under three fixed lists with the invariants
 * alone, the values read back from what mbedTLS parsed.
 */
#include "internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) \
	do { \
		if (!(c)) { \
			fprintf(stderr, "fuzz_allow: %s:%d: %s\n", __FILE__, \
			        __LINE__, #c); \
			abort(); \
		} \
	} while (0)

#define MAX_SAN 32
#define MAX_DN 16
#define MAX_ALLOW 16
#define DER_MAX 32768
#define ID_CAP 512
#define CANARY 0xA5

/* A P-256 public key (SubjectPublicKeyInfo); its private half is not
 * needed: nothing is signed. */
static const unsigned char spki[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
	0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
	0x42, 0x00, 0x04, 0x14, 0xef, 0x5f, 0x12, 0xe7, 0xf1, 0xdc, 0xba, 0xb2,
	0x2d, 0x17, 0x69, 0x69, 0xee, 0x8d, 0xb4, 0x64, 0x68, 0x64, 0x64, 0x9a,
	0xe1, 0x78, 0xbb, 0x60, 0x90, 0x2c, 0xdf, 0x2b, 0xe6, 0x62, 0xe1, 0x6c,
	0x7c, 0xf5, 0x97, 0x48, 0xbf, 0xd3, 0xe9, 0x8a, 0xf9, 0x41, 0x7a, 0xe2,
	0xaf, 0xac, 0x68, 0x47, 0xd9, 0xbc, 0xd1, 0xe8, 0x96, 0x3a, 0x77, 0xc9,
	0x34, 0x90, 0x31, 0x71, 0x99, 0x9d, 0x36,
};

#define TAG_DNS 0x82
#define TAG_URI 0x86
#define TAG_IP 0x87
#define TAG_RFC822 0x81

struct val {
	int tag; /* a SAN tag, or 'C' / 'O' for CN / OU */
	const uint8_t *p;
	size_t len;
};

struct input {
	struct val san[MAX_SAN];
	size_t n_san;
	struct val dn[MAX_DN];
	size_t n_dn;
	mtls_allow allow[MAX_ALLOW];
	char *values[MAX_ALLOW];
	size_t n_allow;
	size_t idlen;
};

/* ---- DER, written forwards --------------------------------------------- */

struct der {
	unsigned char b[DER_MAX];
	size_t n;
	int full;
};

static void put_raw(struct der *d, const void *p, size_t len)
{
	if (d->full || len > sizeof(d->b) - d->n) {
		d->full = 1;
		return;
	}
	memcpy(d->b + d->n, p, len);
	d->n += len;
}

static void put_tlv(struct der *d, unsigned tag, const void *p, size_t len)
{
	unsigned char h[6];
	size_t n = 0;

	h[n++] = (unsigned char)tag;
	if (len < 0x80) {
		h[n++] = (unsigned char)len;
	} else if (len < 0x100) {
		h[n++] = 0x81;
		h[n++] = (unsigned char)len;
	} else {
		h[n++] = 0x82;
		h[n++] = (unsigned char)(len >> 8);
		h[n++] = (unsigned char)len;
	}
	put_raw(d, h, n);
	put_raw(d, p, len);
}

/* Wraps what was written since `mark` in a tag. */
static void wrap(struct der *d, size_t mark, unsigned tag)
{
	static unsigned char tmp[DER_MAX];
	size_t len = d->n - mark;

	if (d->full)
		return;
	memcpy(tmp, d->b + mark, len);
	d->n = mark;
	put_tlv(d, tag, tmp, len);
}

static const unsigned char oid_cn[] = {0x55, 0x04, 0x03};
static const unsigned char oid_ou[] = {0x55, 0x04, 0x0b};
static const unsigned char oid_o[] = {0x55, 0x04, 0x0a};
static const unsigned char oid_san[] = {0x55, 0x1d, 0x11};
static const unsigned char oid_ecdsa_sha256[] = {0x2a, 0x86, 0x48, 0xce,
                                                 0x3d, 0x04, 0x03, 0x02};

static void put_attr(struct der *d, const unsigned char *oid, size_t oid_len,
                     const void *v, size_t len)
{
	size_t set = d->n, seq;

	seq = d->n;
	put_tlv(d, 0x06, oid, oid_len);
	put_tlv(d, 0x0c, v, len); /* UTF8String */
	wrap(d, seq, 0x30);
	wrap(d, set, 0x31);
}

static void put_sigalg(struct der *d)
{
	size_t m = d->n;

	put_tlv(d, 0x06, oid_ecdsa_sha256, sizeof(oid_ecdsa_sha256));
	wrap(d, m, 0x30);
}

static int build_cert(const struct input *in, struct der *d)
{
	static const unsigned char version[] = {0x02, 0x01, 0x02};
	static const unsigned char serial[] = {0x01};
	static const unsigned char sig[] = {0x00, 0x30, 0x06, 0x02, 0x01,
	                                    0x01, 0x02, 0x01, 0x01};
	size_t cert, tbs, m, ext;

	d->n = 0;
	d->full = 0;
	cert = d->n;
	tbs = d->n;
	put_tlv(d, 0xa0, version, sizeof(version));
	put_tlv(d, 0x02, serial, sizeof(serial));
	put_sigalg(d);
	m = d->n; /* issuer */
	put_attr(d, oid_cn, sizeof(oid_cn), "fuzz CA", 7);
	wrap(d, m, 0x30);
	m = d->n; /* validity */
	put_tlv(d, 0x17, "200101000000Z", 13);
	put_tlv(d, 0x17, "491231235959Z", 13);
	wrap(d, m, 0x30);
	m = d->n; /* subject: O=fuzz, then the input's CNs and OUs in order */
	put_attr(d, oid_o, sizeof(oid_o), "fuzz", 4);
	for (size_t i = 0; i < in->n_dn; i++)
		put_attr(d, in->dn[i].tag == 'C' ? oid_cn : oid_ou, 3,
		         in->dn[i].p, in->dn[i].len);
	wrap(d, m, 0x30);
	put_raw(d, spki, sizeof(spki));
	if (in->n_san > 0) {
		ext = d->n;
		m = d->n;
		put_tlv(d, 0x06, oid_san, sizeof(oid_san));
		{
			size_t os = d->n, names = d->n;
			for (size_t i = 0; i < in->n_san; i++)
				put_tlv(d, (unsigned)in->san[i].tag,
				        in->san[i].p, in->san[i].len);
			wrap(d, names, 0x30);
			wrap(d, os, 0x04);
		}
		wrap(d, m, 0x30);  /* Extension */
		wrap(d, ext, 0x30); /* Extensions */
		wrap(d, ext, 0xa3);
	}
	wrap(d, tbs, 0x30);
	put_sigalg(d);
	put_tlv(d, 0x03, sig, sizeof(sig));
	wrap(d, cert, 0x30);
	return d->full ? -1 : 0;
}

/* ---- the reference model --------------------------------------------------- */

static int has_nul(const struct val *v)
{
	return memchr(v->p, '\0', v->len) != NULL;
}

static int eq(const struct val *v, const char *s, int nocase)
{
	size_t n = strlen(s);

	if (v->len != n)
		return 0;
	return nocase ? strncasecmp((const char *)v->p, s, n) == 0
	              : memcmp(v->p, s, n) == 0;
}

static int pct_bad(const uint8_t *q, size_t left)
{
	if (left < 3 || q[0] != '%')
		return 0;
	return (q[1] == '2' && (q[2] == 'e' || q[2] == 'E' || q[2] == 'f' ||
	                        q[2] == 'F')) ||
	       (q[1] == '5' && (q[2] == 'c' || q[2] == 'C'));
}

/* Where the path of a URI starts: after "scheme:" and, for "//", after
 * the authority; len when there is no path. */
static size_t path_start(const uint8_t *u, size_t len)
{
	const uint8_t *colon = memchr(u, ':', len);
	size_t s = colon ? (size_t)(colon - u) + 1 : 0;

	if (len - s >= 2 && u[s] == '/' && u[s + 1] == '/') {
		const uint8_t *slash = memchr(u + s + 2, '/', len - s - 2);
		return slash ? (size_t)(slash - u) : len;
	}
	return s;
}

/* No query, fragment, backslash, encoded '.', '/' or '\'; no ".", ".."
 * or empty segment in the path (its leading '/' and a trailing one
 * aside). */
static int plain(const struct val *v)
{
	const uint8_t *u = v->p;
	size_t len = v->len, s, a;

	for (size_t i = 0; i < len; i++)
		if (u[i] == '?' || u[i] == '#' || u[i] == '\\' ||
		    pct_bad(u + i, len - i))
			return 0;
	s = path_start(u, len);
	for (a = s; a < len;) {
		size_t b = a;
		while (b < len && u[b] != '/')
			b++;
		if ((b - a == 1 && u[a] == '.') ||
		    (b - a == 2 && u[a] == '.' && u[a + 1] == '.'))
			return 0;
		if (b == a && a != s && b < len)
			return 0;
		a = b + 1;
	}
	return 1;
}

static int prefix_match(const struct val *v, const char *prefix)
{
	size_t n = strlen(prefix);

	if (v->len < n || memcmp(v->p, prefix, n) != 0 || !plain(v))
		return 0;
	return v->len == n || prefix[n - 1] == '/' || v->p[n] == '/';
}

static size_t count(const struct val *list, size_t n, int tag)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += list[i].tag == tag;
	return c;
}

static const struct val *first(const struct val *list, size_t n, int tag)
{
	for (size_t i = 0; i < n; i++)
		if (list[i].tag == tag)
			return &list[i];
	return NULL;
}

/* Expected result; *want gets the identity's value (NULL: none). */
static int model(const struct input *in, const char *pin,
                 const struct val **want, int *by_prefix)
{
	int uri_rules = 0, cn_rules = 0, pinned = 0;
	const struct val *hit = NULL;

	*want = NULL;
	*by_prefix = 0;
	for (size_t i = 0; i < in->n_allow; i++) {
		uri_rules |= in->allow[i].kind == MTLS_ALLOW_URI ||
		             in->allow[i].kind == MTLS_ALLOW_URI_PREFIX;
		cn_rules |= in->allow[i].kind == MTLS_ALLOW_CN;
	}
	if (uri_rules && count(in->san, in->n_san, TAG_URI) > 1)
		return 0;
	if (cn_rules && count(in->dn, in->n_dn, 'C') > 1)
		return 0;
	for (size_t i = 0; i < in->n_allow && hit == NULL && !pinned; i++) {
		const mtls_allow *a = &in->allow[i];
		const struct val *list = in->san;
		size_t n = in->n_san;
		int tag = 0;

		switch (a->kind) {
		case MTLS_ALLOW_DNS:
			tag = TAG_DNS;
			break;
		case MTLS_ALLOW_URI:
		case MTLS_ALLOW_URI_PREFIX:
			tag = TAG_URI;
			break;
		case MTLS_ALLOW_CN:
			list = in->dn, n = in->n_dn, tag = 'C';
			break;
		case MTLS_ALLOW_OU:
			list = in->dn, n = in->n_dn, tag = 'O';
			break;
		case MTLS_ALLOW_SPKI_SHA256:
			pinned = strcasecmp(pin, a->value) == 0;
			continue;
		}
		for (size_t k = 0; k < n && hit == NULL; k++) {
			const struct val *v = &list[k];
			if (v->tag != tag || has_nul(v))
				continue;
			if (a->kind == MTLS_ALLOW_URI_PREFIX
			        ? prefix_match(v, a->value)
			        : eq(v, a->value, a->kind == MTLS_ALLOW_DNS)) {
				hit = v;
				*by_prefix = a->kind == MTLS_ALLOW_URI_PREFIX;
			}
		}
	}
	if (in->n_allow > 0 && hit == NULL && !pinned)
		return 0;
	if (hit == NULL) {
		size_t uris = count(in->san, in->n_san, TAG_URI);
		const struct val *u = first(in->san, in->n_san, TAG_URI);
		if (uris == 1)
			hit = plain(u) ? u : NULL;
		else if (uris == 0 && count(in->dn, in->n_dn, 'C') == 1)
			hit = first(in->dn, in->n_dn, 'C');
	}
	*want = hit;
	return 1;
}

/* ---- the brief's invariants, on their own -------------------------------- */

/* id is one of the certificate's name values (not an IP, not the O). */
static int in_cert(const struct input *in, const char *id)
{
	for (size_t i = 0; i < in->n_san; i++)
		if (in->san[i].tag != TAG_IP && eq(&in->san[i], id, 0))
			return 1;
	for (size_t i = 0; i < in->n_dn; i++)
		if (eq(&in->dn[i], id, 0))
			return 1;
	return 0;
}

/* No "." or ".." segment after the authority, no %2e, %2f or %5c. */
static int no_dots(const char *id)
{
	size_t len = strlen(id), s = path_start((const uint8_t *)id, len);
	char lowered[ID_CAP];

	for (size_t i = 0; i <= len; i++)
		lowered[i] = (char)(id[i] >= 'A' && id[i] <= 'Z' ? id[i] + 32
		                                                 : id[i]);
	if (strstr(lowered, "%2e") || strstr(lowered, "%2f") ||
	    strstr(lowered, "%5c"))
		return 0;
	for (const char *seg = id + s; seg < id + len;) {
		const char *slash = strchr(seg, '/');
		size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
		if ((n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return 0;
		seg = slash ? slash + 1 : id + len;
	}
	return 1;
}

/* ---- input ---------------------------------------------------------------- */

static void parse_input(const uint8_t *data, size_t size, struct input *in,
                        const char *pin)
{
	static const mtls_allow_kind kinds[] = {
	    MTLS_ALLOW_URI, MTLS_ALLOW_URI_PREFIX, MTLS_ALLOW_DNS,
	    MTLS_ALLOW_CN, MTLS_ALLOW_OU, MTLS_ALLOW_SPKI_SHA256};
	size_t off = 0;

	memset(in, 0, sizeof(*in));
	in->idlen = 256;
	while (off + 2 <= size) {
		unsigned type = data[off];
		size_t len = data[off + 1];
		const uint8_t *p = data + off + 2;

		if (len > size - off - 2)
			len = size - off - 2;
		off += 2 + len;
		switch (type % 8) {
		case 0: case 1: case 2: case 6:
			if (in->n_san < MAX_SAN) {
				static const int tags[8] = {TAG_DNS, TAG_URI,
				                            TAG_IP, 0, 0, 0,
				                            TAG_RFC822, 0};
				in->san[in->n_san++] =
				    (struct val){tags[type % 8], p, len};
			}
			break;
		case 3: case 4:
			if (in->n_dn < MAX_DN)
				in->dn[in->n_dn++] = (struct val){
				    type % 8 == 3 ? 'C' : 'O', p, len};
			break;
		case 5: {
			mtls_allow_kind k = kinds[(type / 8) % 6];
			char *v;
			if (in->n_allow >= MAX_ALLOW)
				break;
			if (k == MTLS_ALLOW_SPKI_SHA256 &&
			    (len == 0 || (p[0] & 1)))
				v = strdup(pin);
			else
				v = strndup((const char *)p, len);
			CHECK(v != NULL);
			if (v[0] == '\0') { /* the API refuses empty values */
				free(v);
				break;
			}
			in->values[in->n_allow] = v;
			in->allow[in->n_allow].kind = k;
			in->allow[in->n_allow].value = v;
			in->n_allow++;
			break;
		}
		case 7:
			in->idlen = len > 0 ? p[0] : 0;
			break;
		}
	}
}

/* ---- DER input: the invariants on whatever mbedTLS parses --------------- */

static int crt_has_value(const mbedtls_x509_crt *crt, const char *id)
{
	size_t n = strlen(id);

	for (const mbedtls_x509_sequence *s = &crt->subject_alt_names;
	     s != NULL; s = s->next)
		if (s->buf.p != NULL && s->buf.len == n &&
		    memcmp(s->buf.p, id, n) == 0)
			return 1;
	for (const mbedtls_x509_name *dn = &crt->subject; dn != NULL;
	     dn = dn->next)
		if (dn->val.p != NULL && dn->val.len == n &&
		    memcmp(dn->val.p, id, n) == 0)
			return 1;
	return 0;
}

static size_t crt_count(const mbedtls_x509_crt *crt, int uri)
{
	size_t c = 0;

	if (uri) {
		for (const mbedtls_x509_sequence *s = &crt->subject_alt_names;
		     s != NULL; s = s->next)
			c += s->buf.p != NULL && s->buf.tag == TAG_URI;
		return c;
	}
	for (const mbedtls_x509_name *dn = &crt->subject; dn != NULL;
	     dn = dn->next)
		c += dn->oid.p != NULL && dn->oid.len == sizeof(oid_cn) &&
		     memcmp(dn->oid.p, oid_cn, sizeof(oid_cn)) == 0;
	return c;
}

static void judge_der(const uint8_t *data, size_t size)
{
	static const char svid[] = "spiffe://example.org/ns/test/sa/client";
	static const mtls_allow none[1] = {{MTLS_ALLOW_URI, (char *)svid}};
	static const mtls_allow uris[] = {
	    {MTLS_ALLOW_URI, (char *)svid},
	    {MTLS_ALLOW_URI_PREFIX, (char *)"spiffe://example.org/"}};
	static const mtls_allow names[] = {
	    {MTLS_ALLOW_OU, (char *)"ops"},
	    {MTLS_ALLOW_DNS, (char *)"client.test"},
	    {MTLS_ALLOW_CN, (char *)"client.test"}};
	const struct {
		const mtls_allow *list;
		size_t n;
	} lists[] = {{none, 0}, {uris, 2}, {names, 3}};
	mbedtls_x509_crt crt;

	mbedtls_x509_crt_init(&crt);
	if (mbedtls_x509_crt_parse_der(&crt, data, size) != 0)
		goto out;
	{
		static mtls_peer p;
		mtls_peer_info *info = mtls__peer_info_new(&crt);
		CHECK(info != NULL);
		mtls__peer_fill(info, &crt, &p);
		CHECK(p.has_cert & 1);
		mtls__peer_info_free(info);
	}
	for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
		char id[256 + 16];
		int got;

		memset(id, CANARY, sizeof(id));
		got = mtls__allow_match(lists[l].list, lists[l].n, &crt, id, 256);
		for (size_t i = 256; i < sizeof(id); i++)
			CHECK((unsigned char)id[i] == CANARY);
		CHECK(got == 0 || got == 1);
		CHECK(memchr(id, '\0', 256) != NULL);
		CHECK(got || id[0] == '\0');
		if (lists[l].n == 0)
			CHECK(got == 1);
		if (id[0] != '\0')
			CHECK(crt_has_value(&crt, id));
		if (lists[l].list == uris && crt_count(&crt, 1) > 1)
			CHECK(!got);
		if (lists[l].list == names && crt_count(&crt, 0) > 1)
			CHECK(!got);
		if (lists[l].list == uris && got && strcmp(id, svid) != 0)
			CHECK(no_dots(id)); /* the prefix matched it */
	}
out:
	mbedtls_x509_crt_free(&crt);
}

/* One value as the library must write it: whole, or "" when it holds a
 * NUL (an IP when it is not 4 or 16 bytes long). */
static void check_text(const struct val *v, const char *s, int ip)
{
	if (v == NULL)
		CHECK(s[0] == '\0');
	else if (ip)
		CHECK((v->len == 4 || v->len == 16) == (s[0] != '\0'));
	else if (has_nul(v))
		CHECK(s[0] == '\0');
	else
		CHECK(strlen(s) == v->len && memcmp(s, v->p, v->len) == 0);
}

/* dst holds src whole, or is "" with *cut set. */
static void check_fixed(const char *dst, size_t cap, const char *src, int *cut)
{
	CHECK(memchr(dst, '\0', cap) != NULL);
	if (strlen(src) < cap) {
		CHECK(strcmp(dst, src) == 0);
	} else {
		CHECK(dst[0] == '\0');
		*cut = 1;
	}
}

/* The certificate as text (lib/peerinfo.c): every SAN of a kind counted
 * and listed in order, whole; the fixed mtls_peer never holds a prefix:
 * a value fits whole or is "", and MTLS_PEER_TRUNCATED says when. */
static void judge_text(const struct input *in, const mbedtls_x509_crt *crt)
{
	static const int tags[MTLS__SAN_KINDS] = {0, TAG_DNS, TAG_URI, TAG_IP,
	                                          TAG_RFC822};
	mtls_peer_info *info = mtls__peer_info_new(crt);
	static mtls_peer p;
	int cut = 0;

	CHECK(info != NULL);
	for (int k = 1; k < MTLS__SAN_KINDS; k++) {
		int at = 0;
		CHECK((size_t)info->n_san[k] ==
		      count(in->san, in->n_san, tags[k]));
		for (size_t i = 0; i < in->n_san; i++)
			if (in->san[i].tag == tags[k])
				check_text(&in->san[i], info->san[k][at++],
				           k == MTLS_SAN_IP);
	}
	check_text(first(in->dn, in->n_dn, 'C'), info->cn, 0);
	check_text(first(in->dn, in->n_dn, 'O'), info->ou, 0);

	mtls__peer_fill(info, crt, &p);
	CHECK(p.has_cert & 1);
	check_fixed(p.subject, sizeof(p.subject), info->subject, &cut);
	check_fixed(p.issuer, sizeof(p.issuer), info->issuer, &cut);
	check_fixed(p.serial, sizeof(p.serial), info->serial, &cut);
	check_fixed(p.cn, sizeof(p.cn), info->cn, &cut);
	check_fixed(p.ou, sizeof(p.ou), info->ou, &cut);
	cut |= info->n_san[MTLS_SAN_DNS] > MTLS_PEER_MAX_SANS ||
	       info->n_san[MTLS_SAN_URI] > MTLS_PEER_MAX_SANS ||
	       info->n_san[MTLS_SAN_IP] > MTLS_PEER_MAX_SANS;
	CHECK(p.n_dns <= MTLS_PEER_MAX_SANS && p.n_uri <= MTLS_PEER_MAX_SANS &&
	      p.n_ip <= MTLS_PEER_MAX_SANS);
	for (int i = 0; i < p.n_dns; i++)
		check_fixed(p.dns[i], sizeof(p.dns[i]),
		            info->san[MTLS_SAN_DNS][i], &cut);
	for (int i = 0; i < p.n_uri; i++)
		check_fixed(p.uri[i], sizeof(p.uri[i]),
		            info->san[MTLS_SAN_URI][i], &cut);
	for (int i = 0; i < p.n_ip; i++)
		check_fixed(p.ip[i], sizeof(p.ip[i]), info->san[MTLS_SAN_IP][i],
		            &cut);
	CHECK(!!(p.has_cert & MTLS_PEER_TRUNCATED) == cut);
	mtls__peer_info_free(info);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct der d;
	static char pin[65];
	static struct input in;
	char id[ID_CAP + 16];
	const struct val *want;
	mbedtls_x509_crt crt;
	int got, expect, by_prefix;

	if (size >= 2 && data[0] == 0x30 && data[1] == 0x82) {
		judge_der(data, size);
		return 0;
	}
	if (pin[0] == '\0') {
		unsigned char h[32];
		CHECK(mtls__sha256(spki, sizeof(spki), h) == 0);
		for (int i = 0; i < 32; i++)
			snprintf(pin + 2 * i, 3, "%02x", h[i]);
	}
	parse_input(data, size, &in, pin);
	mbedtls_x509_crt_init(&crt);
	if (build_cert(&in, &d) != 0 ||
	    mbedtls_x509_crt_parse_der(&crt, d.b, d.n) != 0)
		goto out; /* not a certificate mbedTLS takes: nothing to judge */

	judge_text(&in, &crt);
	memset(id, CANARY, sizeof(id));
	got = mtls__allow_match(in.allow, in.n_allow, &crt, id, in.idlen);
	expect = model(&in, pin, &want, &by_prefix);
	for (size_t i = in.idlen; i < sizeof(id); i++)
		CHECK((unsigned char)id[i] == CANARY);
	CHECK(got == expect);
	if (in.idlen == 0)
		goto out;
	CHECK(memchr(id, '\0', in.idlen) != NULL);
	if (!got) {
		CHECK(id[0] == '\0');
		goto out;
	}
	if (want == NULL || has_nul(want) || want->len >= in.idlen)
		CHECK(id[0] == '\0');
	else
		CHECK(want->len == strlen(id) &&
		      memcmp(want->p, id, want->len) == 0);

	/* the invariants, whatever the model says */
	for (size_t k = 0; k < in.n_allow; k++)
		if (in.allow[k].kind == MTLS_ALLOW_URI ||
		    in.allow[k].kind == MTLS_ALLOW_URI_PREFIX)
			CHECK(count(in.san, in.n_san, TAG_URI) <= 1);
	if (id[0] != '\0')
		CHECK(in_cert(&in, id));
	if (by_prefix && id[0] != '\0')
		CHECK(no_dots(id));
	/* a NULL id asks for the verdict alone */
	CHECK(mtls__allow_match(in.allow, in.n_allow, &crt, NULL, 0) == got);
out:
	for (size_t k = 0; k < in.n_allow; k++)
		free(in.values[k]);
	in.n_allow = 0;
	mbedtls_x509_crt_free(&crt);
	return 0;
}
