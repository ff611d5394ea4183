/*
 * compat.c - mbedTLS version differences, and the process-wide RNG.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/oid.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#include <psa/crypto.h>
#endif

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_ret = -1;
static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;

static void global_init(void)
{
	static const unsigned char pers[] = "libmtls";

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	if (psa_crypto_init() != PSA_SUCCESS)
		return;
#endif
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, pers,
	                          sizeof(pers) - 1) != 0)
		return;
#if MTLS_HAVE_SIGCACHE
	/* Before the first context exists, so before any verification. */
	mbedtls_x509_crt_set_sig_hook(mtls__sig_hook);
#endif
	init_ret = 0;
}

int mtls__global_init(void)
{
	pthread_once(&init_once, global_init);
	return init_ret == 0 ? 0 : MTLS_ERR_RNG;
}

int mtls__rng(void *p_rng, unsigned char *out, size_t len)
{
	return mbedtls_ctr_drbg_random(p_rng, out, len);
}

void *mtls__rng_ctx(void)
{
	return &drbg;
}

int mtls__pk_parse_key(mbedtls_pk_context *pk, const unsigned char *key,
                       size_t keylen, const char *pwd)
{
	const unsigned char *p = (const unsigned char *)pwd;
	size_t plen = pwd ? strlen(pwd) : 0;

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	return mbedtls_pk_parse_key(pk, key, keylen, p, plen, mtls__rng, &drbg);
#else
	return mbedtls_pk_parse_key(pk, key, keylen, p, plen);
#endif
}

int mtls__pk_check_pair(const mbedtls_pk_context *pub,
                        const mbedtls_pk_context *prv)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	return mbedtls_pk_check_pair(pub, prv, mtls__rng, &drbg);
#else
	return mbedtls_pk_check_pair(pub, prv);
#endif
}

mbedtls_ecp_group_id mtls__pk_ec_group(const mbedtls_pk_context *pk)
{
	mbedtls_pk_type_t t = mbedtls_pk_get_type(pk);

	if (t != MBEDTLS_PK_ECKEY && t != MBEDTLS_PK_ECDSA)
		return MBEDTLS_ECP_DP_NONE;
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	return mbedtls_ecp_keypair_get_group_id(mbedtls_pk_ec(*pk));
#else
	return mbedtls_pk_ec(*pk)->grp.id;
#endif
}

int mtls__crt_is_ca(const mbedtls_x509_crt *crt)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	return mbedtls_x509_crt_get_ca_istrue(crt) == 1;
#else
	return crt->ca_istrue == 1;
#endif
}

int mtls__crt_max_pathlen(const mbedtls_x509_crt *crt)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	/* No accessor in 3.x: the field is private but stable in 3.6 LTS. */
	return crt->MBEDTLS_PRIVATE(max_pathlen);
#else
	return crt->max_pathlen;
#endif
}

void mtls__set_hs_dn_hints(mbedtls_ssl_context *ssl,
                           const mbedtls_x509_crt *crt)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000 && \
    defined(MBEDTLS_KEY_EXCHANGE_CERT_REQ_ALLOWED_ENABLED)
	mbedtls_ssl_set_hs_dn_hints(ssl, crt);
#else
	(void)ssl;
	(void)crt;
#endif
}

size_t mtls__ssl_out_pending(const mbedtls_ssl_context *ssl)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	/* Private in 3.x but stable in 3.6 LTS, like max_pathlen above. */
	return ssl->MBEDTLS_PRIVATE(out_left);
#else
	return ssl->out_left;
#endif
}

int mtls__ssl_hs_over(mbedtls_ssl_context *ssl)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	return mbedtls_ssl_is_handshake_over(ssl);
#else
	return ssl->state == MBEDTLS_SSL_HANDSHAKE_OVER;
#endif
}

int mtls__crt_has_eku_ext(const mbedtls_x509_crt *crt)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	return mbedtls_x509_crt_has_ext_type(crt,
	                                     MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE);
#else
	return (crt->ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE) != 0;
#endif
}

/* make MBEDTLS=tuned links a static mbedTLS built from source with our
 * configuration (scripts/mbedtls-tuned.sh); the version says so. */
#if defined(MTLS_MBEDTLS_TUNED)
#define MTLS_MBEDTLS_FLAVOUR " (tuned)"
#else
#define MTLS_MBEDTLS_FLAVOUR ""
#endif

#if defined(MBEDTLS_VERSION_C)
static char runtime_version[18 + sizeof(MTLS_MBEDTLS_FLAVOUR)];

static void fill_version(void)
{
	char v[18]; /* mbedtls_version_get_string() writes at most 18 bytes */

	mbedtls_version_get_string(v);
	snprintf(runtime_version, sizeof(runtime_version), "%s%s", v,
	         MTLS_MBEDTLS_FLAVOUR);
}
#endif

const char *mtls_mbedtls_version(void)
{
#if defined(MBEDTLS_VERSION_C)
	/* The library actually loaded, which may differ from the headers. */
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, fill_version);
	return runtime_version;
#else
	return MBEDTLS_VERSION_STRING MTLS_MBEDTLS_FLAVOUR;
#endif
}

int mtls__sha256(const unsigned char *in, size_t len, unsigned char out[32])
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	return mbedtls_sha256(in, len, out, 0);
#else
	return mbedtls_sha256_ret(in, len, out, 0);
#endif
}

void mtls__conf_versions(mbedtls_ssl_config *conf, int min, int max)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	mbedtls_ssl_conf_min_tls_version(conf, (mbedtls_ssl_protocol_version)min);
	mbedtls_ssl_conf_max_tls_version(conf, (mbedtls_ssl_protocol_version)max);
#else
	mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3,
	                             min & 0xff);
	mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3,
	                             max & 0xff);
#endif
}

void mtls__conf_defaults(mbedtls_ssl_config *conf, int client)
{
#if MTLS_HAVE_TLS13 && MBEDTLS_VERSION_NUMBER >= 0x03060100 && \
    defined(MBEDTLS_SSL_SESSION_TICKETS)
	/* 3.6.1+ hides TLS 1.3 tickets from clients unless asked: without
	 * them a client cannot resume. */
	if (client)
		mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
		    conf, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
#else
	(void)client;
#endif
	(void)conf;
}

/* What this build can do about psk_ke (see compat.h). */
#if MTLS_HAVE_TLS13 && \
    defined(MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_ENABLED) && \
    defined(MBEDTLS_SSL_SESSION_TICKETS)
#define MTLS_PSK_KE_CLIENT 1
#else
#define MTLS_PSK_KE_CLIENT 0
#endif
#if MTLS_PSK_KE_CLIENT && defined(MBEDTLS_SSL_TLS1_3_PSK_KE_PREFERRED)
#define MTLS_PSK_KE_SERVER 1
#else
#define MTLS_PSK_KE_SERVER 0
#endif

int mtls__psk_ke_supported(int client)
{
#if MTLS_PSK_KE_SERVER
	(void)client;
	return 1;
#elif MTLS_PSK_KE_CLIENT
	return client;
#else
	(void)client;
	return 0;
#endif
}

void mtls__conf_tls13_kex(mbedtls_ssl_config *conf, int client, int psk_ke)
{
#if MTLS_HAVE_TLS13
	/* A client offers psk_ke only when asked.  A server keeps every mode
	 * enabled (mbedTLS's default): whether a ticket may resume without
	 * (EC)DHE is decided per snapshot, when it is opened
	 * (mtls__session_forbid_psk_ke), so that an SNI host's own setting
	 * holds on a listener whose configuration is shared. */
	mbedtls_ssl_conf_tls13_key_exchange_modes(
	    conf, client && !psk_ke
	              ? MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ALL
	              : MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_ALL);
#else
	(void)conf;
	(void)client;
	(void)psk_ke;
#endif
}

void mtls__session_forbid_psk_ke(mbedtls_ssl_session *session)
{
#if MTLS_HAVE_TLS13 && defined(MBEDTLS_SSL_SESSION_TICKETS)
	if (session->MBEDTLS_PRIVATE(tls_version) == MBEDTLS_SSL_VERSION_TLS1_3)
		session->MBEDTLS_PRIVATE(ticket_flags) &=
		    (uint8_t)~MBEDTLS_SSL_TLS1_3_TICKET_ALLOW_PSK_RESUMPTION;
#else
	(void)session;
#endif
}

int mtls__ssl_version(const mbedtls_ssl_context *ssl)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	return (int)mbedtls_ssl_get_version_number(ssl);
#else
	return 0x0300 | ssl->minor_ver;
#endif
}

void mtls__session_restate_age(mbedtls_ssl_session *session, int64_t age_ms)
{
#if MTLS_HAVE_TLS13 && defined(MBEDTLS_SSL_SESSION_TICKETS) && \
    defined(MBEDTLS_SSL_SRV_C) && defined(MBEDTLS_HAVE_TIME)
	if (session->MBEDTLS_PRIVATE(tls_version) == MBEDTLS_SSL_VERSION_TLS1_3)
		session->MBEDTLS_PRIVATE(ticket_creation_time) =
		    mbedtls_ms_time() - age_ms;
#else
	(void)session;
	(void)age_ms;
#endif
}

int mtls__session_version(const mbedtls_ssl_session *session)
{
	/* TLS 1.3 suites are 0x13XX (RFC 8446 B.4); no TLS 1.2 suite is. */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	int suite = mbedtls_ssl_session_get_ciphersuite_id(session);
	int ver = (int)session->MBEDTLS_PRIVATE(tls_version);
#else
	int suite = session->ciphersuite;
	int ver = MTLS_TLS1_2;
#endif
	if ((ver == MTLS_TLS1_3) != ((suite >> 8) == 0x13))
		return 0; /* the two disagree: trust neither */
	return ver == MTLS_TLS1_2 || ver == MTLS_TLS1_3 ? ver : 0;
}

const mbedtls_x509_crt *mtls__peer_cert(const mbedtls_ssl_context *ssl)
{
	return mbedtls_ssl_get_peer_cert(ssl);
}

/* Certificates of the peer's chain: SHA-2 signatures only (SHA-1
 * collisions are practical), RSA keys of 2048 bits or more, EC keys on
 * curves of 128-bit strength or more.  mbedTLS's default profile says much
 * the same today; ours is written down so that it stays so. */
static const mbedtls_x509_crt_profile cert_profile = {
	MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA256) |
	    MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA384) |
	    MBEDTLS_X509_ID_FLAG(MBEDTLS_MD_SHA512),
	0x0FFFFFFF, /* any public-key algorithm mbedTLS has */
	MBEDTLS_X509_ID_FLAG(MBEDTLS_ECP_DP_SECP256R1) |
	    MBEDTLS_X509_ID_FLAG(MBEDTLS_ECP_DP_SECP384R1) |
	    MBEDTLS_X509_ID_FLAG(MBEDTLS_ECP_DP_SECP521R1) |
	    MBEDTLS_X509_ID_FLAG(MBEDTLS_ECP_DP_BP256R1) |
	    MBEDTLS_X509_ID_FLAG(MBEDTLS_ECP_DP_BP384R1) |
	    MBEDTLS_X509_ID_FLAG(MBEDTLS_ECP_DP_BP512R1),
	2048,
};

/* Key exchange groups, in the order a client offers them (and sends a
 * TLS 1.3 key share for the first): x25519 as mbedTLS does, then the NIST
 * curves.  secp521r1 stays last: mbedTLS also refuses a peer certificate
 * whose EC key is on a curve missing here. */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
static const uint16_t groups[] = {
	MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
	MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
	MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1,
	MBEDTLS_SSL_IANA_TLS_GROUP_SECP521R1,
	MBEDTLS_SSL_IANA_TLS_GROUP_NONE,
};

/* Handshake signatures, TLS 1.2 and 1.3 alike: SHA-2 only (mbedTLS's
 * default order, without SHA-1). */
static const uint16_t sig_algs[] = {
	MBEDTLS_TLS1_3_SIG_ECDSA_SECP256R1_SHA256,
	MBEDTLS_TLS1_3_SIG_ECDSA_SECP384R1_SHA384,
	MBEDTLS_TLS1_3_SIG_ECDSA_SECP521R1_SHA512,
	MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA256,
	MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA384,
	MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA512,
	MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA256,
	MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA384,
	MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA512,
	MBEDTLS_TLS1_3_SIG_NONE,
};

/* The same set for a client on mbedTLS 3.6.6, RSA-PSS last.  3.6.6 made a
 * TLS 1.2 client check the ServerKeyExchange's signature scheme strictly,
 * but its TLS 1.2 table does not know rsa_pss_rsae_* (upstream fix:
 * Mbed-TLS/mbedtls#10674, "accept TLS 1.2 rsa_pss_rsae signature
 * schemes"): a client that may negotiate TLS 1.3 offers PSS, a TLS 1.2
 * server with an RSA key picks it in the client's order (OpenSSL, nginx),
 * and the handshake fails with -0x6600.  Offering PKCS#1 v1.5 first makes
 * such a server sign with it; TLS 1.3 never signs a handshake with PKCS#1
 * v1.5, so there PSS is still chosen.  Nothing is added or removed. */
static const uint16_t sig_algs_pss_last[] = {
	MBEDTLS_TLS1_3_SIG_ECDSA_SECP256R1_SHA256,
	MBEDTLS_TLS1_3_SIG_ECDSA_SECP384R1_SHA384,
	MBEDTLS_TLS1_3_SIG_ECDSA_SECP521R1_SHA512,
	MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA256,
	MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA384,
	MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA512,
	MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA256,
	MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA384,
	MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA512,
	MBEDTLS_TLS1_3_SIG_NONE,
};

/* Whether the mbedTLS actually loaded (not the headers) is one whose TLS 1.2
 * client refuses RSA-PSS ServerKeyExchange signatures: 3.6.6, and later
 * 3.6 releases until one is known to carry the fix. */
static int tls12_client_refuses_pss(void)
{
#if defined(MBEDTLS_VERSION_C)
	unsigned v = mbedtls_version_get_number();
#else
	unsigned v = MBEDTLS_VERSION_NUMBER;
#endif
	return v >= 0x03060600u && v < 0x03070000u;
}
#else
static const mbedtls_ecp_group_id groups[] = {
#if defined(MBEDTLS_ECP_DP_CURVE25519_ENABLED)
	MBEDTLS_ECP_DP_CURVE25519,
#endif
	MBEDTLS_ECP_DP_SECP256R1,
	MBEDTLS_ECP_DP_SECP384R1,
#if defined(MBEDTLS_ECP_DP_SECP521R1_ENABLED)
	MBEDTLS_ECP_DP_SECP521R1,
#endif
	MBEDTLS_ECP_DP_NONE,
};

/* Handshake signature hashes: SHA-2 of 256 bits and more (2.28's default
 * adds SHA-224, and SHA-1 when built to allow it). */
static const int sig_hashes[] = {
	MBEDTLS_MD_SHA512,
	MBEDTLS_MD_SHA384,
	MBEDTLS_MD_SHA256,
	MBEDTLS_MD_NONE,
};
#endif

void mtls__conf_policy(mbedtls_ssl_config *conf, const int *suites,
                       int client)
{
	mbedtls_ssl_conf_ciphersuites(conf, suites != NULL
	                                        ? suites
	                                        : mtls__suites_default());
	mbedtls_ssl_conf_cert_profile(conf, &cert_profile);
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	mbedtls_ssl_conf_groups(conf, groups);
#if defined(MBEDTLS_SSL_HANDSHAKE_WITH_CERT_ENABLED)
	mbedtls_ssl_conf_sig_algs(conf, client && tls12_client_refuses_pss()
	                                    ? sig_algs_pss_last
	                                    : sig_algs);
#endif
#else
	(void)client;
#if defined(MBEDTLS_ECP_C)
	mbedtls_ssl_conf_curves(conf, groups);
#endif
#if defined(MBEDTLS_KEY_EXCHANGE_WITH_CERT_ENABLED)
	mbedtls_ssl_conf_sig_hashes(conf, sig_hashes);
#endif
#endif
}

/* mbedTLS has no accessor for the alert it just reported: the record is
 * still in its input buffer after MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE
 * (2.28: public fields; 3.x: private ones, same meaning). */
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define SSL_FIELD(ssl, f) ((ssl)->MBEDTLS_PRIVATE(f))
#else
#define SSL_FIELD(ssl, f) ((ssl)->f)
#endif

int mtls__ssl_alert_received(const mbedtls_ssl_context *ssl)
{
	const unsigned char *m = SSL_FIELD(ssl, in_msg);

	if (m == NULL || SSL_FIELD(ssl, in_msgtype) != MBEDTLS_SSL_MSG_ALERT ||
	    SSL_FIELD(ssl, in_msglen) < 2 ||
	    m[0] != MBEDTLS_SSL_ALERT_LEVEL_FATAL)
		return -1;
	return m[1];
}

int mtls__ssl_alert_sent(const mbedtls_ssl_context *ssl)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	/* 3.x queues most fatal alerts (all of TLS 1.3's) and keeps the
	 * description once it has sent it; 0 means none was queued. */
	if (SSL_FIELD(ssl, send_alert) == 0 && SSL_FIELD(ssl, alert_type) != 0)
		return SSL_FIELD(ssl, alert_type);
#else
	(void)ssl;
#endif
	return -1;
}
