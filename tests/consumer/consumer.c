/*
 * A program outside the tree, built against an installed libmtls by
 * tests/test_consumers.sh and scripts/deb.sh (Make + pkg-config, CMake,
 * Meson).  Prints the library's version; given a certificate and key, loads
 * them as a client pair and prints the certificate's subject.
 *   consumer [CERT KEY]
 */
#include <mtls.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	mtls_cert_info info;
	mtls_ctx *ctx;
	int rc = 0;

	if (argc != 1 && argc != 3) {
		fprintf(stderr, "usage: consumer [CERT KEY]\n");
		return 2;
	}
	/* The header the program was compiled with matches the library. */
	if (strcmp(mtls_version(), MTLS_VERSION_STRING) != 0) {
		fprintf(stderr, "header %s, library %s\n", MTLS_VERSION_STRING,
		        mtls_version());
		return 1;
	}
	printf("mtls %s mbedtls %s\n", mtls_version(), mtls_mbedtls_version());
	if ((ctx = mtls_ctx_new(MTLS_ROLE_CLIENT)) == NULL) {
		fprintf(stderr, "mtls_ctx_new failed\n");
		return 1;
	}
	if (argc == 3) {
		if (mtls_load_client_pair(ctx, argv[1], argv[2]) != 0 ||
		    mtls_ctx_cert_info(ctx, &info) != 0) {
			fprintf(stderr, "load failed: %s\n", mtls_ctx_error(ctx));
			rc = 1;
		} else {
			printf("subject=%s key=%s\n", info.subject, info.key_type);
		}
	}
	mtls_ctx_free(ctx);
	return rc;
}
