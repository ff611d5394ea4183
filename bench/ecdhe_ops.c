/*
 * ecdhe_ops.c - one server-side ECDHE, as mbedTLS 3.6's TLS code does it,
 * N times, for callgrind (bench/levers.md, "ECDHE (X25519)").
 *
 *   ecdhe_ops psa  x25519|p256 N    TLS 1.3 (and TLS 1.2 under
 *       MBEDTLS_USE_PSA_CRYPTO): psa_generate_key + psa_export_public_key
 *       (the server's key share) + psa_raw_key_agreement with the client's
 *       share + psa_destroy_key
 *   ecdhe_ops ecdh x25519|p256 N    TLS 1.2 without MBEDTLS_USE_PSA_CRYPTO
 *       (ssl_tls12_server.c): mbedtls_ecdh_setup + mbedtls_ecdh_make_params
 *       (ServerKeyExchange) + mbedtls_ecdh_read_public (ClientKeyExchange) +
 *       mbedtls_ecdh_calc_secret + mbedtls_ecdh_free
 *
 * Every operation's shared secret is checked against the client's side
 * (computed outside the measured function), so a wrong implementation
 * fails here instead of measuring well.  The measured work is one_op():
 *   valgrind --tool=callgrind --toggle-collect=one_op ./ecdhe_ops psa x25519 20
 * and instructions per operation = the total / N.  Needs mbedTLS 3.x.
 */
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/entropy.h>
#include <psa/crypto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mbedtls_ctr_drbg_context drbg;
static mbedtls_entropy_context entropy;

struct peer {			/* the client's side of one exchange */
	mbedtls_ecp_group_id gid;
	psa_ecc_family_t family;
	size_t bits;
	psa_key_id_t key;
	unsigned char pub[100];	/* raw point (PSA format) */
	size_t pub_len;
};

static void die(const char *what, int ret)
{
	fprintf(stderr, "ecdhe_ops: %s failed: %d (-0x%04x)\n", what, ret,
		(unsigned)(ret < 0 ? -ret : ret));
	exit(1);
}

static psa_key_id_t psa_ecdh_key(const struct peer *p)
{
	psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
	psa_key_id_t key = 0;
	psa_status_t st;

	psa_set_key_usage_flags(&a, PSA_KEY_USAGE_DERIVE);
	psa_set_key_algorithm(&a, PSA_ALG_ECDH);
	psa_set_key_type(&a, PSA_KEY_TYPE_ECC_KEY_PAIR(p->family));
	psa_set_key_bits(&a, p->bits);
	st = psa_generate_key(&a, &key);
	if (st != PSA_SUCCESS)
		die("psa_generate_key", (int)st);
	return key;
}

/* The server's half, as ssl_tls13_generic.c and ssl_tls13_keys.c do it.
 * Writes the server's share to spub and the secret to z. */
static void __attribute__((noinline))
one_op_psa(const struct peer *p, unsigned char *spub, size_t *spub_len,
	   unsigned char *z, size_t *z_len)
{
	psa_key_id_t key = psa_ecdh_key(p);
	psa_status_t st;

	st = psa_export_public_key(key, spub, 100, spub_len);
	if (st != PSA_SUCCESS)
		die("psa_export_public_key", (int)st);
	st = psa_raw_key_agreement(PSA_ALG_ECDH, key, p->pub, p->pub_len,
				   z, 66, z_len);
	if (st != PSA_SUCCESS)
		die("psa_raw_key_agreement", (int)st);
	psa_destroy_key(key);
}

/* The TLS 1.2 server's half, as ssl_tls12_server.c does it without
 * MBEDTLS_USE_PSA_CRYPTO; the client's share arrives as a TLS ECPoint
 * (one length byte, then the point). */
static void __attribute__((noinline))
one_op_ecdh(const struct peer *p, unsigned char *spub, size_t *spub_len,
	    unsigned char *z, size_t *z_len)
{
	mbedtls_ecdh_context ecdh;
	unsigned char ske[200], cke[101];
	int ret;

	mbedtls_ecdh_init(&ecdh);
	if ((ret = mbedtls_ecdh_setup(&ecdh, p->gid)) != 0)
		die("mbedtls_ecdh_setup", ret);
	if ((ret = mbedtls_ecdh_make_params(&ecdh, spub_len, ske, sizeof(ske),
					    mbedtls_ctr_drbg_random, &drbg)) != 0)
		die("mbedtls_ecdh_make_params", ret);
	/* ServerKeyExchange params: curve_type(1) named_curve(2) len(1) point */
	if (*spub_len < 4 || ske[3] != *spub_len - 4)
		die("ServerKeyExchange params", -1);
	*spub_len -= 4;
	memcpy(spub, ske + 4, *spub_len);
	cke[0] = (unsigned char)p->pub_len;
	memcpy(cke + 1, p->pub, p->pub_len);
	if ((ret = mbedtls_ecdh_read_public(&ecdh, cke, p->pub_len + 1)) != 0)
		die("mbedtls_ecdh_read_public", ret);
	if ((ret = mbedtls_ecdh_calc_secret(&ecdh, z_len, z, 66,
					    mbedtls_ctr_drbg_random, &drbg)) != 0)
		die("mbedtls_ecdh_calc_secret", ret);
	mbedtls_ecdh_free(&ecdh);
}

static void __attribute__((noinline))
one_op(int psa, const struct peer *p, unsigned char *spub, size_t *spub_len,
       unsigned char *z, size_t *z_len)
{
	if (psa)
		one_op_psa(p, spub, spub_len, z, z_len);
	else
		one_op_ecdh(p, spub, spub_len, z, z_len);
}

int main(int argc, char **argv)
{
	unsigned char spub[100], z[66], zc[66];
	size_t spub_len, z_len, zc_len;
	struct peer p;
	psa_status_t st;
	long n, i;
	int psa, ret;

	if (argc != 4 || (strcmp(argv[1], "psa") && strcmp(argv[1], "ecdh")) ||
	    (strcmp(argv[2], "x25519") && strcmp(argv[2], "p256")) ||
	    (n = strtol(argv[3], NULL, 10)) < 1 || n > 1000000) {
		fprintf(stderr, "usage: ecdhe_ops psa|ecdh x25519|p256 N\n");
		return 2;
	}
	psa = strcmp(argv[1], "psa") == 0;
	memset(&p, 0, sizeof(p));
	if (strcmp(argv[2], "x25519") == 0) {
		p.gid = MBEDTLS_ECP_DP_CURVE25519;
		p.family = PSA_ECC_FAMILY_MONTGOMERY;
		p.bits = 255;
	} else {
		p.gid = MBEDTLS_ECP_DP_SECP256R1;
		p.family = PSA_ECC_FAMILY_SECP_R1;
		p.bits = 256;
	}
	if ((st = psa_crypto_init()) != PSA_SUCCESS)
		die("psa_crypto_init", (int)st);
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	if ((ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
					 NULL, 0)) != 0)
		die("mbedtls_ctr_drbg_seed", ret);
	p.key = psa_ecdh_key(&p);
	if ((st = psa_export_public_key(p.key, p.pub, sizeof(p.pub),
					&p.pub_len)) != PSA_SUCCESS)
		die("psa_export_public_key (client)", (int)st);

	for (i = 0; i < n; i++) {
		one_op(psa, &p, spub, &spub_len, z, &z_len);
		/* the client's side: the same secret from the server's share */
		st = psa_raw_key_agreement(PSA_ALG_ECDH, p.key, spub, spub_len,
					   zc, sizeof(zc), &zc_len);
		if (st != PSA_SUCCESS)
			die("psa_raw_key_agreement (client)", (int)st);
		if (zc_len != z_len || memcmp(z, zc, z_len) != 0) {
			fprintf(stderr, "ecdhe_ops: shared secrets differ\n");
			return 1;
		}
	}
	printf("%s %s: %ld exchanges, secrets agree\n", argv[1], argv[2], n);
	psa_destroy_key(p.key);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	mbedtls_psa_crypto_free();
	return 0;
}
