/*
 * fuzz_trust.c - CA bundles and CRLs from memory.
 */
#include <mtls.h>

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static mtls_ctx *ctx;

	if (ctx == NULL)
		ctx = mtls_ctx_new(MTLS_ROLE_SERVER);
	mtls_set_trusted_ca_mem(ctx, data, size);
	mtls_set_crl_mem(ctx, data, size);
	return 0;
}
