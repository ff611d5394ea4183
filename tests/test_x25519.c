/*
 * test_x25519.c - X25519, the key exchange OpenSSL clients offer first,
 * through the code mbedTLS's TLS layers call: RFC 7748's vectors through
 * the mbedtls_ecdh_* API (TLS 1.2 ECDHE) and, on mbedTLS 3.x, through PSA
 * (TLS 1.3: psa_export_public_key for the key share, psa_raw_key_agreement
 * for the secret); then an OpenSSL client that offers only X25519 against
 * a libmtls server, TLS 1.2 and 1.3.  The tuned build routes all of these to
 * Everest's HACL* Curve25519 (tuned/patches/0005); the stock builds use
 * mbedTLS's generic Montgomery ladder.  Either must give these results.
 */
#include "conn_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/wait.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/entropy.h>
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#include <psa/crypto.h>
#endif

/* RFC 7748, section 5.2 (the two single-operation vectors, scalars and
 * u-coordinates as given, unclamped, the second u with its top bit set)
 * and section 6.1 (Alice and Bob). */
typedef struct vec {
	const char *scalar, *u, *out;
} vec;

static const vec rfc_5_2[] = {
	{"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
	 "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
	 "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
	{"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
	 "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
	 "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
};

#define ALICE_PRIV "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define ALICE_PUB "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
#define BOB_PRIV "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
#define BOB_PUB "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
#define SHARED "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
#define BASE9 "0900000000000000000000000000000000000000000000000000000000000000"

static void unhex(const char *hex, unsigned char out[32])
{
	assert_int_equal(strlen(hex), 64);
	for (int i = 0; i < 32; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (unsigned char)v;
	}
}

static void assert_hex(const unsigned char *got, size_t len, const char *want)
{
	char hex[65];

	assert_int_equal(len, 32);
	for (size_t i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", got[i]);
	assert_string_equal(hex, want);
}

/* ---- the mbedtls_ecdh_* API (mbedTLS's TLS 1.2 server and client) -------- */

/* X25519(scalar, u) as ssl_tls12_*.c computes a premaster secret: our key
 * into an ECDH context, the peer's share as a TLS ECPoint. */
static void ecdh_x25519(const char *scalar, const char *u, unsigned char out[32],
                        size_t *olen)
{
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ecp_keypair key;
	mbedtls_ecdh_context ecdh;
	unsigned char d[32], point[33];

	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_ecp_keypair_init(&key);
	mbedtls_ecdh_init(&ecdh);
	assert_int_equal(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func,
	                                       &entropy, NULL, 0), 0);
	unhex(scalar, d);
	point[0] = 32;
	unhex(u, point + 1);
	/* RFC 7748's scalars are little-endian; mbedTLS clamps them */
	assert_int_equal(mbedtls_ecp_read_key(MBEDTLS_ECP_DP_CURVE25519, &key,
	                                      d, sizeof(d)), 0);
	assert_int_equal(mbedtls_ecdh_setup(&ecdh, MBEDTLS_ECP_DP_CURVE25519), 0);
	assert_int_equal(mbedtls_ecdh_get_params(&ecdh, &key, MBEDTLS_ECDH_OURS),
	                 0);
	assert_int_equal(mbedtls_ecdh_read_public(&ecdh, point, sizeof(point)), 0);
	assert_int_equal(mbedtls_ecdh_calc_secret(&ecdh, olen, out, 32,
	                                          mbedtls_ctr_drbg_random, &drbg),
	                 0);
	mbedtls_ecdh_free(&ecdh);
	mbedtls_ecp_keypair_free(&key);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	mbedtls_platform_zeroize(d, sizeof(d));
}

static void test_ecdh_vectors(void **state)
{
	unsigned char out[32];
	size_t olen;

	(void)state;
	for (size_t i = 0; i < sizeof(rfc_5_2) / sizeof(rfc_5_2[0]); i++) {
		ecdh_x25519(rfc_5_2[i].scalar, rfc_5_2[i].u, out, &olen);
		assert_hex(out, olen, rfc_5_2[i].out);
	}
	/* public keys are X25519(priv, 9); the secret is the same both ways */
	ecdh_x25519(ALICE_PRIV, BASE9, out, &olen);
	assert_hex(out, olen, ALICE_PUB);
	ecdh_x25519(BOB_PRIV, BASE9, out, &olen);
	assert_hex(out, olen, BOB_PUB);
	ecdh_x25519(ALICE_PRIV, BOB_PUB, out, &olen);
	assert_hex(out, olen, SHARED);
	ecdh_x25519(BOB_PRIV, ALICE_PUB, out, &olen);
	assert_hex(out, olen, SHARED);
}

/* ---- PSA (mbedTLS 3.x's TLS 1.3 key share and secret) -------------------- */

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
static psa_key_id_t psa_x25519_key(const char *priv)
{
	psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
	psa_key_id_t key = 0;
	unsigned char d[32];

	unhex(priv, d);
	psa_set_key_usage_flags(&a, PSA_KEY_USAGE_DERIVE);
	psa_set_key_algorithm(&a, PSA_ALG_ECDH);
	psa_set_key_type(&a,
	                 PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_MONTGOMERY));
	psa_set_key_bits(&a, 255);
	assert_int_equal(psa_import_key(&a, d, sizeof(d), &key), PSA_SUCCESS);
	mbedtls_platform_zeroize(d, sizeof(d));
	return key;
}

/* psa_raw_key_agreement(priv, u), as ssl_tls13_keys.c does */
static void psa_agree(const char *priv, const char *u, const char *want)
{
	psa_key_id_t key = psa_x25519_key(priv);
	unsigned char peer[32], out[32];
	size_t olen = 0;

	unhex(u, peer);
	assert_int_equal(psa_raw_key_agreement(PSA_ALG_ECDH, key, peer,
	                                       sizeof(peer), out, sizeof(out),
	                                       &olen),
	                 PSA_SUCCESS);
	assert_hex(out, olen, want);
	psa_destroy_key(key);
}

/* psa_export_public_key(priv): the key share of ssl_tls13_generic.c */
static void psa_public(const char *priv, const char *want)
{
	psa_key_id_t key = psa_x25519_key(priv);
	unsigned char out[32], small[31];
	size_t olen = 0;

	assert_int_equal(psa_export_public_key(key, out, sizeof(out), &olen),
	                 PSA_SUCCESS);
	assert_hex(out, olen, want);
	/* a buffer too small is refused, not overrun */
	assert_int_equal(psa_export_public_key(key, small, sizeof(small), &olen),
	                 PSA_ERROR_BUFFER_TOO_SMALL);
	psa_destroy_key(key);
}
#endif

static void test_psa_vectors(void **state)
{
	(void)state;
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
	assert_int_equal(psa_crypto_init(), PSA_SUCCESS);
	for (size_t i = 0; i < sizeof(rfc_5_2) / sizeof(rfc_5_2[0]); i++)
		psa_agree(rfc_5_2[i].scalar, rfc_5_2[i].u, rfc_5_2[i].out);
	psa_public(ALICE_PRIV, ALICE_PUB);
	psa_public(BOB_PRIV, BOB_PUB);
	psa_agree(ALICE_PRIV, BOB_PUB, SHARED);
	psa_agree(BOB_PRIV, ALICE_PUB, SHARED);
	/* a freshly generated key, as a handshake makes it: its share and a
	 * peer's agree */
	{
		psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
		psa_key_id_t k1 = 0, k2 = 0;
		unsigned char p1[32], p2[32], z1[32], z2[32];
		size_t l1, l2, n1, n2;

		psa_set_key_usage_flags(&a, PSA_KEY_USAGE_DERIVE);
		psa_set_key_algorithm(&a, PSA_ALG_ECDH);
		psa_set_key_type(&a, PSA_KEY_TYPE_ECC_KEY_PAIR(
		                         PSA_ECC_FAMILY_MONTGOMERY));
		psa_set_key_bits(&a, 255);
		assert_int_equal(psa_generate_key(&a, &k1), PSA_SUCCESS);
		assert_int_equal(psa_generate_key(&a, &k2), PSA_SUCCESS);
		assert_int_equal(psa_export_public_key(k1, p1, 32, &l1), 0);
		assert_int_equal(psa_export_public_key(k2, p2, 32, &l2), 0);
		assert_int_equal(psa_raw_key_agreement(PSA_ALG_ECDH, k1, p2, l2,
		                                       z1, 32, &n1), 0);
		assert_int_equal(psa_raw_key_agreement(PSA_ALG_ECDH, k2, p1, l1,
		                                       z2, 32, &n2), 0);
		assert_int_equal(n1, 32);
		assert_int_equal(n2, 32);
		assert_memory_equal(z1, z2, 32);
		assert_memory_not_equal(p1, p2, 32);
		psa_destroy_key(k1);
		psa_destroy_key(k2);
	}
#else
	print_message("  (no PSA in mbedTLS %s, skipping)\n",
	              mtls_mbedtls_version());
	skip();
#endif
}

/* ---- an OpenSSL client offering only X25519 --------------------------------- */

/* openssl s_client offering only `groups`; whether its output names
 * `want` as the server's key share ("Server Temp Key: X25519, ..."). */
static int s_client_group(tcp_srv *t, int ver, const char *groups,
                          const char *want)
{
	char cmd[4 * TEST_PATH_MAX], line[512], expect[64];
	int found = 0, st;
	FILE *f;

	snprintf(cmd, sizeof(cmd),
	         "openssl s_client -connect 127.0.0.1:%d %s -groups '%s' "
	         "-cert '%s' -key '%s' -cert_chain '%s' -CAfile '%s' "
	         "</dev/null 2>&1",
	         t->port, ver == MTLS_TLS1_3 ? "-tls1_3" : "-tls1_2", groups,
	         pki("client-ec.crt"), pki("client-ec.key"), pki("int.crt"),
	         pki(CA));
	snprintf(expect, sizeof(expect), "Server Temp Key: %s,", want);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, expect, strlen(expect)) == 0)
			found = 1;
	st = pclose(f);
	pthread_join(t->thread, NULL);
	close(t->lfd);
	return found && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void test_openssl_x25519(void **state)
{
	int v = test_version(state);
	mtls_ctx *s = default_server(v);
	tcp_srv t;

	/* X25519 only (TLS 1.2: and P-256, the curve of the server's ECDSA
	 * key, which a TLS 1.2 client's supported_groups must name too): the
	 * key shares and both secrets must agree or the Finished fail */
	tcp_open(&t, s);
	assert_true(s_client_group(&t, v,
	                           v == MTLS_TLS1_3 ? "X25519" : "X25519:P-256",
	                           "X25519"));
	assert_int_equal(t.e.hs, 0);
	assert_int_equal(t.e.verify, 0);
	assert_string_equal(t.e.version, version_name(v));
	/* OpenSSL's default list (X25519 first): the server takes X25519 */
	tcp_open(&t, s);
	assert_true(s_client_group(&t, v, "X25519:P-256:X448:P-521:P-384",
	                           "X25519"));
	assert_int_equal(t.e.hs, 0);
	/* the control: P-256 only still works, and is reported as such */
	tcp_open(&t, s);
	assert_true(s_client_group(&t, v, "P-256", "ECDH"));
	assert_int_equal(t.e.hs, 0);
	mtls_ctx_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ecdh_vectors),
	    cmocka_unit_test(test_psa_vectors),
	    VTEST(test_openssl_x25519),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
