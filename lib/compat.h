/*
 * compat.h - the one place that knows which mbedTLS we build against.
 * 2.28 LTS (TLS 1.2) and 3.6 LTS (TLS 1.2 + 1.3) are supported; every
 * difference between them is hidden behind the mtls__ functions below.
 */
#ifndef MTLS_COMPAT_H
#define MTLS_COMPAT_H

#include <mbedtls/version.h>
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#include <mbedtls/build_info.h>
#else
#include <mbedtls/config.h>
#endif

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include <mbedtls/ecp.h>
#include <mbedtls/ssl.h>

#if MBEDTLS_VERSION_NUMBER < 0x02100000
#error "mtls needs mbedTLS 2.16 or newer (2.28 or 3.6 LTS recommended)"
#endif

#if MBEDTLS_VERSION_NUMBER >= 0x03000000 && defined(MBEDTLS_SSL_PROTO_TLS1_3)
#define MTLS_HAVE_TLS13 1
#else
#define MTLS_HAVE_TLS13 0
#endif

/* Process-wide setup (PSA crypto on 3.x, the shared DRBG); idempotent and
 * thread-safe.  Returns 0 or MTLS_ERR_RNG. */
int mtls__global_init(void);

/* The process-wide DRBG (thread-safe through mbedTLS's own mutex). */
int mtls__rng(void *p_rng, unsigned char *out, size_t len);
void *mtls__rng_ctx(void);

int mtls__pk_parse_key(mbedtls_pk_context *pk, const unsigned char *key,
                       size_t keylen, const char *pwd);
int mtls__pk_check_pair(const mbedtls_pk_context *pub,
                        const mbedtls_pk_context *prv);
/* The curve of an EC key, MBEDTLS_ECP_DP_NONE for other keys. */
mbedtls_ecp_group_id mtls__pk_ec_group(const mbedtls_pk_context *pk);
int mtls__crt_is_ca(const mbedtls_x509_crt *crt);
/* basicConstraints pathLenConstraint + 1, 0 when there is none. */
int mtls__crt_max_pathlen(const mbedtls_x509_crt *crt);
/* Server: the CA names sent in this handshake's CertificateRequest
 * (3.x; 2.28 sends the names of the verification chain). */
void mtls__set_hs_dn_hints(mbedtls_ssl_context *ssl,
                           const mbedtls_x509_crt *crt);
int mtls__sha256(const unsigned char *in, size_t len, unsigned char out[32]);

/* Protocol bounds as 0x0303 / 0x0304. */
void mtls__conf_versions(mbedtls_ssl_config *conf, int min, int max);
/* Version-specific defaults: TLS 1.3 ticket signalling. */
void mtls__conf_defaults(mbedtls_ssl_config *conf, int client);
/* What every configuration offers and accepts: the cipher suites (a
 * 0-terminated list that must outlive conf; NULL: mtls__suites_default()),
 * SHA-2 handshake signatures, the groups x25519, secp256r1, secp384r1 and
 * secp521r1, and a certificate profile without SHA-1 or RSA under 2048
 * bits.  client: 1 for a client configuration (on mbedTLS 3.6.6 its
 * signature list puts RSA-PSS last, see compat.c). */
void mtls__conf_policy(mbedtls_ssl_config *conf, const int *suites,
                       int client);
/* TLS 1.3 resumption without (EC)DHE (psk_ke).  Whether this build can
 * honour mtls_ctx_set_tls13_resumption_kex(MTLS_TLS13_PSK_KE) for the role:
 * a client needs TLS 1.3 with tickets and the psk mode; a server also
 * needs mbedTLS patched to prefer psk_ke (tuned patch 0006, which defines
 * MBEDTLS_SSL_TLS1_3_PSK_KE_PREFERRED): stock 3.6 never picks psk_ke while
 * certificate handshakes are enabled. */
int mtls__psk_ke_supported(int client);
/* The TLS 1.3 key exchange modes of a configuration: a client offers
 * psk_ke only with psk_ke set; a server enables every mode and decides per
 * ticket (below).  No-op without TLS 1.3. */
void mtls__conf_tls13_kex(mbedtls_ssl_config *conf, int client, int psk_ke);
/* Takes psk_ke out of what a TLS 1.3 session from a ticket may resume
 * with (its ticket flags); no-op for other sessions and builds. */
void mtls__session_forbid_psk_ke(mbedtls_ssl_session *session);
/* The negotiated version as 0x0303 / 0x0304, 0 before the handshake. */
int mtls__ssl_version(const mbedtls_ssl_context *ssl);
/* The protocol version a session (from a ticket or the cache) was made
 * with, 0x0303 / 0x0304, or 0 when its fields do not say one clearly. */
int mtls__session_version(const mbedtls_ssl_session *session);
/* A TLS 1.3 server session loaded from a ticket issued age_ms ago
 * (possibly on another machine): its creation time on this machine's
 * mbedtls_ms_time() clock, which mbedTLS checks the ticket age against.
 * No-op for other sessions and builds. */
void mtls__session_restate_age(mbedtls_ssl_session *session, int64_t age_ms);
/* Bytes of an encrypted record mbedTLS has built but not yet handed to
 * the socket (its out_left; there is no accessor in either version). */
size_t mtls__ssl_out_pending(const mbedtls_ssl_context *ssl);
/* Whether the handshake state machine has finished (a TLS 1.3 server's
 * tickets included). */
int mtls__ssl_hs_over(mbedtls_ssl_context *ssl);
/* The peer's leaf certificate, or NULL. */
const mbedtls_x509_crt *mtls__peer_cert(const mbedtls_ssl_context *ssl);
int mtls__crt_has_eku_ext(const mbedtls_x509_crt *crt);

/* Right after MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE: the description of the
 * fatal alert received, or -1. */
int mtls__ssl_alert_received(const mbedtls_ssl_context *ssl);
/* After a failure: the fatal alert mbedTLS queued and sent (3.x), or -1
 * (unknown; 2.28 sends its alerts without keeping them). */
int mtls__ssl_alert_sent(const mbedtls_ssl_context *ssl);

#endif

