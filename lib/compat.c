/*
 * compat.c - mbedTLS version differences, and the process-wide RNG.
 */
#include "internal.h"

#include <string.h>

#include <mbedtls/oid.h>

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

int mtls__crt_has_eku_ext(const mbedtls_x509_crt *crt)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	return mbedtls_x509_crt_has_ext_type(crt,
	                                     MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE);
#else
	return (crt->ext_types & MBEDTLS_X509_EXT_EXTENDED_KEY_USAGE) != 0;
#endif
}

const char *mtls_mbedtls_version(void)
{
	return MBEDTLS_VERSION_STRING;
}
