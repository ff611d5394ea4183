/*
 * peerinfo.c - the peer's leaf certificate as text, in full: what the
 * mtls_conn_peer_* accessors return, copied out once when the handshake
 * completes, and what mtls_verify_peer() puts in the fixed mtls_peer
 * (a value that does not fit is "" and flagged, never cut: a cut URI
 * could spell another identity).
 */
#include "internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/oid.h>

#define DN_MAX (1u << 20) /* far above any DN that fits a TLS record */

/* The bytes of b as a string; "" when they hold a NUL, which would let
 * "good\0.evil" read as "good". */
static char *dup_buf(const mbedtls_x509_buf *b)
{
	char *s;

	if (b->p == NULL || memchr(b->p, '\0', b->len) != NULL)
		return strdup("");
	s = malloc(b->len + 1);
	if (s != NULL) {
		memcpy(s, b->p, b->len);
		s[b->len] = '\0';
	}
	return s;
}

static char *dup_ip(const mbedtls_x509_buf *b)
{
	char text[INET6_ADDRSTRLEN] = "";

	if (b->len == 4)
		inet_ntop(AF_INET, b->p, text, sizeof(text));
	else if (b->len == 16)
		inet_ntop(AF_INET6, b->p, text, sizeof(text));
	return strdup(text);
}

/* mbedTLS writes a DN only into a buffer that holds it all: grow one. */
static char *dup_dn(const mbedtls_x509_name *dn)
{
	for (size_t cap = 256; cap <= DN_MAX; cap *= 4) {
		char *s = malloc(cap), *fit;
		int n;

		if (s == NULL)
			return NULL;
		n = mbedtls_x509_dn_gets(s, cap, dn);
		if (n >= 0) {
			/* kept for the connection's life: only what it needs */
			fit = realloc(s, (size_t)n + 1);
			return fit != NULL ? fit : s;
		}
		free(s);
	}
	return strdup("");
}

/* Hex bytes, colon separated, as mbedtls_x509_serial_gets() writes them
 * but never shortened (it cuts serials over 32 bytes). */
static char *dup_serial(const mbedtls_x509_buf *serial)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i = serial->len > 1 && serial->p[0] == 0 ? 1 : 0;
	char *s = malloc(3 * serial->len + 1), *o = s;

	if (s == NULL)
		return NULL;
	for (; i < serial->len; i++) {
		if (o != s)
			*o++ = ':';
		*o++ = digits[serial->p[i] >> 4];
		*o++ = digits[serial->p[i] & 15];
	}
	*o = '\0';
	return s;
}

static char *dup_attr(const mbedtls_x509_name *dn, const char *oid,
                      size_t oid_len)
{
	for (; dn != NULL; dn = dn->next)
		if (dn->oid.p != NULL && dn->oid.len == oid_len &&
		    memcmp(dn->oid.p, oid, oid_len) == 0)
			return dup_buf(&dn->val);
	return strdup("");
}

static int san_kind(int tag)
{
	switch (tag) {
	case MTLS__SAN_TAG_DNS:
		return MTLS_SAN_DNS;
	case MTLS__SAN_TAG_URI:
		return MTLS_SAN_URI;
	case MTLS__SAN_TAG_IP:
		return MTLS_SAN_IP;
	case MTLS__SAN_TAG_EMAIL:
		return MTLS_SAN_EMAIL;
	}
	return 0;
}

static int fill_sans(mtls_peer_info *info, const mbedtls_x509_crt *crt)
{
	const mbedtls_x509_sequence *s;
	int k;

	for (s = &crt->subject_alt_names; s != NULL; s = s->next)
		if (s->buf.p != NULL && (k = san_kind(s->buf.tag)) != 0)
			info->n_san[k]++;
	for (k = 1; k < MTLS__SAN_KINDS; k++) {
		info->san[k] = calloc((size_t)info->n_san[k] + 1,
		                      sizeof(char *));
		if (info->san[k] == NULL)
			return -1;
	}
	{
		int at[MTLS__SAN_KINDS] = {0};
		for (s = &crt->subject_alt_names; s != NULL; s = s->next) {
			char *v;
			if (s->buf.p == NULL || (k = san_kind(s->buf.tag)) == 0)
				continue;
			v = k == MTLS_SAN_IP ? dup_ip(&s->buf)
			                     : dup_buf(&s->buf);
			if (v == NULL)
				return -1;
			info->san[k][at[k]++] = v;
		}
	}
	return 0;
}

void mtls__peer_info_free(mtls_peer_info *info)
{
	if (info == NULL)
		return;
	free(info->subject);
	free(info->issuer);
	free(info->serial);
	free(info->cn);
	free(info->ou);
	for (int k = 1; k < MTLS__SAN_KINDS; k++) {
		for (int i = 0; info->san[k] != NULL && i < info->n_san[k]; i++)
			free(info->san[k][i]);
		free(info->san[k]);
	}
	free(info);
}

mtls_peer_info *mtls__peer_info_new(const mbedtls_x509_crt *crt)
{
	mtls_peer_info *info = calloc(1, sizeof(*info));

	if (info == NULL)
		return NULL;
	info->subject = dup_dn(&crt->subject);
	info->issuer = dup_dn(&crt->issuer);
	info->serial = dup_serial(&crt->serial);
	info->cn = dup_attr(&crt->subject, MBEDTLS_OID_AT_CN,
	                    MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN));
	info->ou = dup_attr(&crt->subject, MBEDTLS_OID_AT_ORG_UNIT,
	                    MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_ORG_UNIT));
	if (info->subject == NULL || info->issuer == NULL ||
	    info->serial == NULL || info->cn == NULL || info->ou == NULL ||
	    fill_sans(info, crt) != 0) {
		mtls__peer_info_free(info);
		return NULL;
	}
	return info;
}

/* src into dst whole, or "" and 1 when it does not fit. */
static int put(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap) {
		dst[0] = '\0';
		return 1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

/* How many SANs of a kind the struct lists; 1 in *cut if not all. */
static int listed(const mtls_peer_info *info, int kind, int *cut)
{
	if (info->n_san[kind] <= MTLS_PEER_MAX_SANS)
		return info->n_san[kind];
	*cut = 1;
	return MTLS_PEER_MAX_SANS;
}

void mtls__peer_fill(const mtls_peer_info *info, const mbedtls_x509_crt *crt,
                     mtls_peer *p)
{
	unsigned char digest[32];
	int cut = 0;

	memset(p, 0, sizeof(*p));
	if (info == NULL || crt == NULL || crt->raw.p == NULL)
		return;
	cut |= put(p->subject, sizeof(p->subject), info->subject);
	cut |= put(p->issuer, sizeof(p->issuer), info->issuer);
	cut |= put(p->serial, sizeof(p->serial), info->serial);
	cut |= put(p->cn, sizeof(p->cn), info->cn);
	cut |= put(p->ou, sizeof(p->ou), info->ou);
	p->not_before = mtls__x509_time(&crt->valid_from);
	p->not_after = mtls__x509_time(&crt->valid_to);
	if (mtls__sha256(crt->raw.p, crt->raw.len, digest) == 0)
		mtls__hex(digest, 32, p->sha256);
	if (mtls__sha256(crt->pk_raw.p, crt->pk_raw.len, digest) == 0)
		mtls__hex(digest, 32, p->spki_sha256);
	p->n_dns = listed(info, MTLS_SAN_DNS, &cut);
	for (int i = 0; i < p->n_dns; i++)
		cut |= put(p->dns[i], sizeof(p->dns[i]),
		           info->san[MTLS_SAN_DNS][i]);
	p->n_uri = listed(info, MTLS_SAN_URI, &cut);
	for (int i = 0; i < p->n_uri; i++)
		cut |= put(p->uri[i], sizeof(p->uri[i]),
		           info->san[MTLS_SAN_URI][i]);
	p->n_ip = listed(info, MTLS_SAN_IP, &cut);
	for (int i = 0; i < p->n_ip; i++)
		cut |= put(p->ip[i], sizeof(p->ip[i]), info->san[MTLS_SAN_IP][i]);
	p->has_cert = 1 | (cut ? MTLS_PEER_TRUNCATED : 0);
}
