/*
 * fuzz_cred.c - credential loading from memory: certificate chains and
 * private keys (PEM or DER, encrypted or not).  The input is split at the
 * first NUL byte into a certificate part and a key part (no NUL: one
 * combined buffer), and loaded as both a client and a server pair.
 */
#include <mtls.h>

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static mtls_ctx *client, *server;
	const uint8_t *nul = memchr(data, 0, size);

	if (client == NULL) {
		client = mtls_ctx_new(MTLS_ROLE_CLIENT);
		server = mtls_ctx_new(MTLS_ROLE_SERVER);
		mtls_ctx_set_key_password(client, "testpass");
	}
	if (nul == NULL) {
		mtls_load_client_pair_mem(client, data, size, NULL, 0);
		mtls_load_server_pair_mem(server, data, size, NULL, 0);
	} else {
		size_t clen = (size_t)(nul - data);
		mtls_load_client_pair_mem(client, data, clen, nul + 1,
		                          size - clen - 1);
		mtls_load_server_pair_mem(server, data, clen, nul + 1,
		                          size - clen - 1);
	}
	return 0;
}
