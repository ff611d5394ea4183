/*
 * proxyproto.h - the PROXY protocol version 2 header mtls-proxy sends to an
 * upstream with "proxy_protocol v2" (haproxy's proxy-protocol.txt, 2.2).
 *
 * Layout: the 12-byte signature, 0x21 (version 2, command PROXY), the
 * family (0x11 TCP over IPv4, 0x21 TCP over IPv6, 0x00 when the two
 * addresses differ in family), the length of what follows (big endian),
 * source and destination addresses and ports (the client, then the
 * listener's address the client reached), then TLVs:
 *   0x20 PP2_TYPE_SSL: client flags (0x01 TLS, 0x02 the client presented
 *        a certificate on this connection), verify (uint32, 0 = the
 *        certificate was verified), then sub-TLVs
 *          0x21 PP2_SUBTYPE_SSL_VERSION  "TLSv1.3"
 *          0x22 PP2_SUBTYPE_SSL_CN       the verified client certificate's CN
 *   0xE0 PXY_PP2_TYPE_URI_SAN (custom range): the URI SAN the client's
 *        policy matched, e.g. a SPIFFE ID "spiffe://example.org/ns/prod/sa/web";
 *        absent when the identity is not a URI SAN.  (proxy.c decides
 *        which values it passes: see note_peer there.)
 * Strings are sent without a terminating NUL.  One longer than
 * PXY_PP2_VERSION_MAX, PXY_PP2_CN_MAX or PXY_PP2_URI_MAX bytes is left out,
 * never cut (a cut URI could name another identity), so the whole header
 * always fits in PXY_PP2_MAX bytes and its 16-bit lengths cannot wrap.
 */
#ifndef MTLS_PROXY_PROXYPROTO_H
#define MTLS_PROXY_PROXYPROTO_H

#include <stddef.h>
#include <sys/socket.h>

#define PXY_PP2_TYPE_SSL 0x20
#define PXY_PP2_SUBTYPE_SSL_VERSION 0x21
#define PXY_PP2_SUBTYPE_SSL_CN 0x22
#define PXY_PP2_TYPE_URI_SAN 0xE0
#define PXY_PP2_CLIENT_SSL 0x01
#define PXY_PP2_CLIENT_CERT_CONN 0x02

/* What the header says about the client's TLS connection.  Strings may be
 * NULL or "" (then the TLV is left out). */
struct pxy_pp2_tls {
	int has_cert;        /* the client presented a certificate */
	int verified;        /* ... and it was verified */
	const char *version; /* "TLSv1.2", "TLSv1.3" */
	const char *cn;
	const char *uri;     /* the URI SAN the policy matched */
};

/* Longest strings sent; longer ones are left out.  2,048 bytes is the
 * longest SPIFFE ID. */
#define PXY_PP2_VERSION_MAX 16
#define PXY_PP2_CN_MAX 128
#define PXY_PP2_URI_MAX 2048

/* Largest header pxy_pp2_header() writes: 16 + 36 + SSL TLV (3 + 5 + 3 + 16
 * + 3 + 128) + URI TLV (3 + 2048), rounded up. */
#define PXY_PP2_MAX 2304

/* Writes the header for a connection from src to dst (AF_INET or AF_INET6
 * sockaddrs) into out.  A pure function: no I/O, no global state.  Returns
 * its length, or 0 when cap is too small or an argument is NULL. */
size_t pxy_pp2_header(unsigned char *out, size_t cap,
                      const struct sockaddr *src, const struct sockaddr *dst,
                      const struct pxy_pp2_tls *tls);

#endif
