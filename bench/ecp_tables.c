/*
 * ecp_tables.c - what mbedTLS spends on the generator's precomputed table.
 *
 *   ecp_tables [ROUNDS]
 *
 * A P-256 multiplication of the generator, on a group kept across calls
 * (its comb table is computed once) and on a group loaded for each call,
 * as mbedTLS's TLS and PK layers do for every ECDH key generation, ECDSA
 * signature and verification.  The difference is table work repeated per
 * operation: a handshake does five such multiplications.
 *
 * Also the AES-128-GCM rate of the same build on 16 KiB records: the
 * ceiling of a TLS server's bulk transfer on one core.
 */
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/gcm.h>
#include <mbedtls/version.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200, bad = 0;
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ecp_group kept;
	mbedtls_ecp_point r;
	mbedtls_mpi k;
	double t0, warm, cold;

	if (n < 1)
		n = 1;
	mbedtls_entropy_init(&ent);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_ecp_group_init(&kept);
	mbedtls_ecp_point_init(&r);
	mbedtls_mpi_init(&k);
	if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0) ||
	    mbedtls_ecp_group_load(&kept, MBEDTLS_ECP_DP_SECP256R1) ||
	    mbedtls_ecp_gen_privkey(&kept, &k, mbedtls_ctr_drbg_random, &drbg) ||
	    mbedtls_ecp_mul(&kept, &r, &k, &kept.G, mbedtls_ctr_drbg_random,
	                    &drbg)) {
		fprintf(stderr, "ecp_tables: setup failed\n");
		return 1;
	}
	t0 = now();
	for (int i = 0; i < n; i++)
		bad |= mbedtls_ecp_mul(&kept, &r, &k, &kept.G,
		                       mbedtls_ctr_drbg_random, &drbg);
	warm = (now() - t0) / n;
	t0 = now();
	for (int i = 0; i < n; i++) {
		mbedtls_ecp_group g;
		mbedtls_ecp_group_init(&g);
		bad |= mbedtls_ecp_group_load(&g, MBEDTLS_ECP_DP_SECP256R1);
		bad |= mbedtls_ecp_mul(&g, &r, &k, &g.G, mbedtls_ctr_drbg_random,
		                       &drbg);
		mbedtls_ecp_group_free(&g);
	}
	cold = (now() - t0) / n;
	printf("mbedTLS %s, P-256 k*G: %.3f ms with the table kept, %.3f ms "
	       "with a group loaded per call (%.2fx); %d rounds\n",
	       MBEDTLS_VERSION_STRING, warm * 1e3, cold * 1e3, cold / warm, n);
	{
		static unsigned char in[16384], out[16384];
		unsigned char key[16] = {1}, iv[12] = {2}, tag[16];
		mbedtls_gcm_context gcm;
		int rounds = n * 10;

		mbedtls_gcm_init(&gcm);
		bad |= mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 128);
		t0 = now();
		for (int i = 0; i < rounds; i++) {
			iv[0] = (unsigned char)i;
			bad |= mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT,
			                                 sizeof(in), iv, sizeof(iv),
			                                 NULL, 0, in, out,
			                                 sizeof(tag), tag);
		}
		printf("mbedTLS %s, AES-128-GCM on 16 KiB records: %.0f MB/s\n",
		       MBEDTLS_VERSION_STRING,
		       (double)rounds * sizeof(in) / (now() - t0) / 1e6);
		mbedtls_gcm_free(&gcm);
	}
	mbedtls_mpi_free(&k);
	mbedtls_ecp_point_free(&r);
	mbedtls_ecp_group_free(&kept);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&ent);
	return bad != 0;
}
