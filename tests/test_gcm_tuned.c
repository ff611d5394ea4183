/*
 * test_gcm_tuned.c - mbedTLS's AES-GCM, as this build links it, against
 * OpenSSL's libcrypto (EVP AES-GCM) as the reference.
 *
 * On the tuned build (make MBEDTLS=tuned) mbedtls_gcm_update() runs whole
 * blocks through tuned/patches/0007 (AES-NI CTR, eight blocks in flight,
 * aggregated PCLMUL GHASH); on the other builds the same checks run against
 * mbedTLS's own code.  Covered: the McGrew-Viega vectors (mbedTLS's self test
 * and test case 3 below), every plaintext length 0..1024 and some large
 * ones, AES-128/192/256, 12-byte and other IV lengths, random AAD, the
 * streaming API fed in random chunk sizes, in-place operation, a 32-bit
 * counter that wraps in the middle of an eight-block group, and a decryption
 * with a flipped tag bit, which must be refused.
 *
 * The inputs come from a fixed-seed generator (MTLS_GCM_SEED=n to change the
 * seed), so a failure repeats; the seed is printed on failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/gcm.h>
#include <mbedtls/version.h>
#include <openssl/evp.h>

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define GCM_STREAMING 1 /* update() takes any length; AAD by update_ad() */
#else
#define GCM_STREAMING 0 /* 2.28: AAD in starts(), update() by 16-byte blocks */
#endif

static uint64_t seed = 0x6d746c73u; /* "mtls" */
static uint64_t rng_state;

/* splitmix64: reproducible test inputs, not key material for real use */
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t rnd_below(size_t n)
{
	return n == 0 ? 0 : (size_t)(rnd() % n);
}

static void rnd_fill(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)rnd();
}

static int setup(void **state)
{
	const char *s = getenv("MTLS_GCM_SEED");

	(void)state;
	if (s != NULL && s[0] != '\0')
		seed = strtoull(s, NULL, 0);
	rng_state = seed;
	return 0;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n == 0 ? 1 : n);

	assert_non_null(p);
	return p;
}

/* ---- the reference: OpenSSL EVP ----------------------------------------- */

static const EVP_CIPHER *evp_gcm(unsigned keybits)
{
	return keybits == 128 ? EVP_aes_128_gcm() :
	       keybits == 192 ? EVP_aes_192_gcm() : EVP_aes_256_gcm();
}

/* Encrypt (tag out) or decrypt (tag in; returns 1 when it verifies). */
static int ref_gcm(int enc, unsigned keybits, const unsigned char *key,
                   const unsigned char *iv, size_t iv_len,
                   const unsigned char *aad, size_t aad_len,
                   const unsigned char *in, size_t len, unsigned char *out,
                   unsigned char tag[16])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, ok;

	assert_non_null(c);
	assert_int_equal(EVP_CipherInit_ex(c, evp_gcm(keybits), NULL, NULL,
	                                   NULL, enc), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN,
	                                     (int)iv_len, NULL), 1);
	assert_int_equal(EVP_CipherInit_ex(c, NULL, NULL, key, iv, enc), 1);
	if (aad_len > 0)
		assert_int_equal(EVP_CipherUpdate(c, NULL, &n, aad,
		                                  (int)aad_len), 1);
	if (len > 0) {
		assert_int_equal(EVP_CipherUpdate(c, out, &n, in, (int)len), 1);
		assert_int_equal((size_t)n, len);
	}
	if (!enc)
		assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG,
		                                     16, tag), 1);
	ok = EVP_CipherFinal_ex(c, out + len, &n);
	if (enc) {
		assert_int_equal(ok, 1);
		assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG,
		                                     16, tag), 1);
	}
	EVP_CIPHER_CTX_free(c);
	return ok == 1;
}

/* ---- mbedTLS, streaming in random chunks --------------------------------- */

/* A chunk length: often small and odd (partial blocks on both sides),
 * sometimes large (the bulk path), never more than left. */
static size_t chunk_len(size_t left)
{
	size_t n;

	switch (rnd_below(4)) {
	case 0: n = rnd_below(17); break;
	case 1: n = 16 * rnd_below(12); break;
	case 2: n = rnd_below(300); break;
	default: n = left; break;
	}
	if (!GCM_STREAMING)
		n = n / 16 * 16;
	if (n == 0)
		n = GCM_STREAMING ? 1 : 16;
	return n < left ? n : left;
}

static void mb_gcm(int mode, unsigned keybits, const unsigned char *key,
                   const unsigned char *iv, size_t iv_len,
                   const unsigned char *aad, size_t aad_len,
                   const unsigned char *in, size_t len, unsigned char *out,
                   unsigned char tag[16])
{
	mbedtls_gcm_context g;
	size_t done = 0;

	mbedtls_gcm_init(&g);
	assert_int_equal(mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key,
	                                    keybits), 0);
#if GCM_STREAMING
	size_t olen;

	assert_int_equal(mbedtls_gcm_starts(&g, mode, iv, iv_len), 0);
	while (done < aad_len) {
		size_t n = rnd_below(aad_len - done) + 1;

		assert_int_equal(mbedtls_gcm_update_ad(&g, aad + done, n), 0);
		done += n;
	}
	for (done = 0; done < len;) {
		size_t n = chunk_len(len - done);

		assert_int_equal(mbedtls_gcm_update(&g, in + done, n,
		                                    out + done, n, &olen), 0);
		assert_int_equal(olen, n);
		done += n;
	}
	assert_int_equal(mbedtls_gcm_finish(&g, NULL, 0, &olen, tag, 16), 0);
#else
	assert_int_equal(mbedtls_gcm_starts(&g, mode, iv, iv_len, aad,
	                                    aad_len), 0);
	for (done = 0; done < len;) {
		size_t n = chunk_len(len - done);

		assert_int_equal(mbedtls_gcm_update(&g, n, in + done,
		                                    out + done), 0);
		done += n;
	}
	assert_int_equal(mbedtls_gcm_finish(&g, tag, 16), 0);
#endif
	mbedtls_gcm_free(&g);
}

/*
 * One case, both directions, against the reference: streaming encryption
 * (ciphertext and tag), streaming decryption, the one-shot calls (in place,
 * as the TLS layer uses them), and a refused flipped tag.
 */
static void check_case(unsigned keybits, size_t len, size_t iv_len,
                       size_t aad_len)
{
	unsigned char key[32], iv[64], aad[64], tag[16], rtag[16], t2[16];
	unsigned char *pt = xmalloc(len), *ct = xmalloc(len + 16);
	unsigned char *ref = xmalloc(len + 16), *buf = xmalloc(len);
	mbedtls_gcm_context g;

	assert_true(iv_len <= sizeof(iv) && aad_len <= sizeof(aad));
	rnd_fill(key, sizeof(key));
	rnd_fill(iv, iv_len);
	rnd_fill(aad, aad_len);
	rnd_fill(pt, len);

	ref_gcm(1, keybits, key, iv, iv_len, aad, aad_len, pt, len, ref, rtag);
	mb_gcm(MBEDTLS_GCM_ENCRYPT, keybits, key, iv, iv_len, aad, aad_len,
	       pt, len, ct, tag);
	if (memcmp(ct, ref, len) != 0 || memcmp(tag, rtag, 16) != 0)
		fail_msg("encryption differs from OpenSSL: AES-%u, %zu bytes, "
		         "IV %zu, AAD %zu (seed %llu)", keybits, len, iv_len,
		         aad_len, (unsigned long long)seed);

	/* OpenSSL decrypts it, and so does mbedTLS in random chunks */
	assert_true(ref_gcm(0, keybits, key, iv, iv_len, aad, aad_len, ct,
	                    len, ref, tag));
	assert_memory_equal(ref, pt, len);
	mb_gcm(MBEDTLS_GCM_DECRYPT, keybits, key, iv, iv_len, aad, aad_len,
	       ct, len, buf, t2);
	if (memcmp(buf, pt, len) != 0 || memcmp(t2, rtag, 16) != 0)
		fail_msg("decryption differs: AES-%u, %zu bytes, IV %zu, AAD "
		         "%zu (seed %llu)", keybits, len, iv_len, aad_len,
		         (unsigned long long)seed);

	/* one-shot, in place */
	mbedtls_gcm_init(&g);
	assert_int_equal(mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key,
	                                    keybits), 0);
	memcpy(buf, pt, len);
	assert_int_equal(mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT,
	                 len, iv, iv_len, aad, aad_len, buf, buf, 16, t2), 0);
	assert_memory_equal(buf, ct, len);
	assert_memory_equal(t2, rtag, 16);
	assert_int_equal(mbedtls_gcm_auth_decrypt(&g, len, iv, iv_len, aad,
	                 aad_len, rtag, 16, buf, buf), 0);
	assert_memory_equal(buf, pt, len);

	/* a flipped tag bit is refused, and no plaintext is left behind */
	rtag[rnd_below(16)] ^= (unsigned char)(1u << rnd_below(8));
	memcpy(buf, ct, len);
	assert_int_equal(mbedtls_gcm_auth_decrypt(&g, len, iv, iv_len, aad,
	                 aad_len, rtag, 16, buf, buf),
	                 MBEDTLS_ERR_GCM_AUTH_FAILED);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(buf[i], 0);
	mbedtls_gcm_free(&g);

	free(pt);
	free(ct);
	free(ref);
	free(buf);
}

/* ---- the tests ---------------------------------------------------------- */

static unsigned char hexval(char c)
{
	return (unsigned char)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
}

static size_t unhex(const char *s, unsigned char *out)
{
	size_t n = strlen(s) / 2;

	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)(hexval(s[2 * i]) << 4 |
		                         hexval(s[2 * i + 1]));
	return n;
}

/* McGrew and Viega, "The Galois/Counter Mode of Operation", test case 3
 * (AES-128, 96-bit IV, four blocks, no AAD), plus mbedTLS's own self test
 * (the McGrew-Viega vectors for AES-128/192/256, whole and split). */
static void test_vectors(void **state)
{
	unsigned char key[16], iv[12], pt[64], ct[64], exp[64], tag[16];
	unsigned char etag[16];
	mbedtls_gcm_context g;

	(void)state;
	unhex("feffe9928665731c6d6a8f9467308308", key);
	unhex("cafebabefacedbaddecaf888", iv);
	unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
	      pt);
	unhex("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
	      "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
	      exp);
	unhex("4d5c2af327cd64a62cf35abd2ba6fab4", etag);
	mbedtls_gcm_init(&g);
	assert_int_equal(mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key,
	                                    128), 0);
	assert_int_equal(mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT, 64,
	                 iv, 12, NULL, 0, pt, ct, 16, tag), 0);
	assert_memory_equal(ct, exp, 64);
	assert_memory_equal(tag, etag, 16);
	mbedtls_gcm_free(&g);
#if defined(MBEDTLS_SELF_TEST)
	assert_int_equal(mbedtls_gcm_self_test(0), 0);
#endif
}

/* Every length 0..1024, for each key size; IV and AAD vary with it. */
static void test_every_length(void **state)
{
	static const unsigned bits[] = { 128, 256, 192 };

	(void)state;
	for (size_t k = 0; k < 3; k++)
		for (size_t len = 0; len <= 1024; len++) {
			size_t iv_len = rnd_below(8) == 0 ?
			                1 + rnd_below(64) : 12;

			check_case(bits[k], len, iv_len, rnd_below(65));
		}
}

/* Records as TLS makes them (16 KiB, 4 KiB, odd sizes) and larger buffers. */
static void test_large(void **state)
{
	static const size_t lens[] = { 4096, 4096 + 13, 16384, 16384 + 1,
		                       65536 + 7, 1048576 + 13 };

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		check_case(128, lens[i], 12, 13);
		check_case(256, lens[i], 12, 13);
	}
}

/* GF(2^128) as the GCM specification writes it (algorithm 1: bit 0 is the
 * most significant bit of byte 0): z = x * y. */
static void gf_mul(unsigned char z[16], const unsigned char x[16],
                   const unsigned char y[16])
{
	unsigned char v[16], r[16] = { 0 };

	memcpy(v, y, 16);
	for (int i = 0; i < 128; i++) {
		int lsb = v[15] & 1;

		if (x[i / 8] & (0x80 >> (i % 8)))
			for (int j = 0; j < 16; j++)
				r[j] ^= v[j];
		for (int j = 15; j > 0; j--)
			v[j] = (unsigned char)(v[j] >> 1 | v[j - 1] << 7);
		v[0] >>= 1;
		if (lsb)
			v[0] ^= 0xe1;
	}
	memcpy(z, r, 16);
}

/* x^-1 = x^(2^128 - 2): 127 one bits, then a zero bit. */
static void gf_inv(unsigned char z[16], const unsigned char x[16])
{
	unsigned char r[16] = { 0x80 }; /* 1 */

	for (int i = 0; i < 127; i++) {
		gf_mul(r, r, r);
		gf_mul(r, r, x);
	}
	gf_mul(r, r, r);
	memcpy(z, r, 16);
}

/*
 * The block counter is the last 32 bits of the counter block and wraps
 * without carrying into the rest.  With a 16-byte IV the first counter block
 * is J0 = ((IV * H) + L) * H, L = the IV length block; solving for IV gives
 * any J0 wanted: here one whose counter wraps after 5 blocks, in the middle
 * of the first group of eight, and one that wraps on a group's boundary.
 */
static void test_counter_wrap(void **state)
{
	static const uint32_t starts[] = { 0xfffffffau, 0xfffffff7u,
		                           0xfffffffeu, 0xffffffffu };
	unsigned char key[16], zero[16] = { 0 }, h[16], hinv[16];
	unsigned char l[16] = { 0 }, j0[16], iv[16], t[16];
	EVP_CIPHER_CTX *c;
	int n;

	(void)state;
	l[15] = 128; /* len(A) = 0, len(IV) = 128 bits */
	for (size_t s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
		rnd_fill(key, sizeof(key));
		c = EVP_CIPHER_CTX_new();
		assert_non_null(c);
		assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL,
		                                    key, NULL), 1);
		assert_int_equal(EVP_EncryptUpdate(c, h, &n, zero, 16), 1);
		EVP_CIPHER_CTX_free(c);
		gf_inv(hinv, h);

		rnd_fill(j0, 12);
		j0[12] = (unsigned char)(starts[s] >> 24);
		j0[13] = (unsigned char)(starts[s] >> 16);
		j0[14] = (unsigned char)(starts[s] >> 8);
		j0[15] = (unsigned char)starts[s];
		gf_mul(t, j0, hinv);
		for (int i = 0; i < 16; i++)
			t[i] ^= l[i];
		gf_mul(iv, t, hinv);

		/* the test's own algebra: GHASH(IV) is J0 */
		gf_mul(t, iv, h);
		for (int i = 0; i < 16; i++)
			t[i] ^= l[i];
		gf_mul(t, t, h);
		assert_memory_equal(t, j0, 16);

		/* the key above is not the one check_case() draws: encrypt
		 * with this one directly */
		{
			size_t len = 16 * 40 + 5;
			unsigned char *pt = xmalloc(len), *ct = xmalloc(len);
			unsigned char *ref = xmalloc(len + 16), tag[16];
			unsigned char rtag[16];

			rnd_fill(pt, len);
			ref_gcm(1, 128, key, iv, 16, NULL, 0, pt, len, ref,
			        rtag);
			mb_gcm(MBEDTLS_GCM_ENCRYPT, 128, key, iv, 16, NULL, 0,
			       pt, len, ct, tag);
			assert_memory_equal(ct, ref, len);
			assert_memory_equal(tag, rtag, 16);
			mb_gcm(MBEDTLS_GCM_DECRYPT, 128, key, iv, 16, NULL, 0,
			       ct, len, ref, tag);
			assert_memory_equal(ref, pt, len);
			assert_memory_equal(tag, rtag, 16);
			free(pt);
			free(ct);
			free(ref);
		}
	}
}

/* A context keyed twice, and one re-keyed from AES-256 to AES-128, gives
 * the second key's results (the powers of H are recomputed at setkey). */
static void test_rekey(void **state)
{
	unsigned char k1[32], k2[16], iv[12], pt[300], ct[300], ref[316];
	unsigned char tag[16], rtag[16];
	mbedtls_gcm_context g;

	(void)state;
	rnd_fill(k1, sizeof(k1));
	rnd_fill(k2, sizeof(k2));
	rnd_fill(iv, sizeof(iv));
	rnd_fill(pt, sizeof(pt));
	mbedtls_gcm_init(&g);
	assert_int_equal(mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, k1,
	                                    256), 0);
	assert_int_equal(mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT,
	                 sizeof(pt), iv, 12, NULL, 0, pt, ct, 16, tag), 0);
	assert_int_equal(mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, k2,
	                                    128), 0);
	assert_int_equal(mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT,
	                 sizeof(pt), iv, 12, NULL, 0, pt, ct, 16, tag), 0);
	ref_gcm(1, 128, k2, iv, 12, NULL, 0, pt, sizeof(pt), ref, rtag);
	assert_memory_equal(ct, ref, sizeof(pt));
	assert_memory_equal(tag, rtag, 16);
	mbedtls_gcm_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_vectors, setup),
	    cmocka_unit_test_setup(test_every_length, setup),
	    cmocka_unit_test_setup(test_large, setup),
	    cmocka_unit_test_setup(test_counter_wrap, setup),
	    cmocka_unit_test_setup(test_rekey, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
