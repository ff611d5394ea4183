/*
 * suites.c - which cipher suites a context offers: the secure default
 * (ECDHE with an AEAD cipher on TLS 1.2, the TLS 1.3 suites), and lists
 * given by name through mtls_ctx_set_ciphersuites().  Names are looked up
 * in the mbedTLS build at hand, so a build without a cipher (ChaCha20, say)
 * simply leaves its suites out of the default.
 */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Server preference order (mbedTLS servers pick by their own list):
 * AES-128-GCM first, cheapest with AES-NI; no CBC (LUCKY13-style padding
 * oracles, MAC-then-encrypt), no static RSA (no forward secrecy). */
static const char *const default_tls12[] = {
	"TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256",
	"TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256",
	"TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384",
	"TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384",
	"TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256",
	"TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256",
};

/* Every TLS 1.3 suite is ECDHE and AEAD; TLS1-3-AES-128-CCM-8-SHA256 is
 * left out of the default all the same: its 8-byte tag is below what the
 * others give (IANA lists it as not recommended). */
static const char *const default_tls13[] = {
	"TLS1-3-AES-128-GCM-SHA256",
	"TLS1-3-AES-256-GCM-SHA384",
	"TLS1-3-CHACHA20-POLY1305-SHA256",
	"TLS1-3-AES-128-CCM-SHA256",
};

#define N_DEFAULT (sizeof(default_tls12) / sizeof(default_tls12[0]) + \
                   sizeof(default_tls13) / sizeof(default_tls13[0]))

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static int default_list[N_DEFAULT + 1]; /* 0-terminated, as mbedTLS wants */

static void fill_default(void)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(default_tls12) / sizeof(*default_tls12);
	     i++) {
		int id = mbedtls_ssl_get_ciphersuite_id(default_tls12[i]);
		if (id != 0)
			default_list[n++] = id;
	}
	for (size_t i = 0; i < sizeof(default_tls13) / sizeof(*default_tls13);
	     i++) {
		int id = mbedtls_ssl_get_ciphersuite_id(default_tls13[i]);
		if (id != 0)
			default_list[n++] = id;
	}
	default_list[n] = 0;
}

const int *mtls__suites_default(void)
{
	pthread_once(&default_once, fill_default);
	return default_list;
}

/* TLS 1.3 suites are 0x13XX (RFC 8446 B.4); no TLS 1.2 suite is. */
static int is_tls13(int id)
{
	return (id >> 8) == 0x13;
}

/* The id of a suite name as mbedTLS spells it ("TLS-ECDHE-ECDSA-WITH-
 * AES-128-GCM-SHA256", "TLS1-3-AES-128-GCM-SHA256") or as IANA does
 * ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"),
 * in any case; 0 when this build does not have it. */
static int lookup(const char *name, size_t len)
{
	char buf[128];
	int id;

	if (len == 0 || len + 3 >= sizeof(buf))
		return 0;
	for (size_t i = 0; i < len; i++)
		buf[i] = name[i] == '_' ? '-'
		                        : (char)toupper((unsigned char)name[i]);
	buf[len] = '\0';
	if ((id = mbedtls_ssl_get_ciphersuite_id(buf)) != 0)
		return id;
	/* IANA's TLS 1.3 names carry no version: TLS_AES_... */
	if (strncmp(buf, "TLS-", 4) != 0 || strstr(buf, "-WITH-") != NULL)
		return 0;
	memmove(buf + 7, buf + 4, len - 4 + 1);
	memcpy(buf, "TLS1-3-", 7);
	return mbedtls_ssl_get_ciphersuite_id(buf);
}

static int has(const int *list, size_t n, int id)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == id)
			return 1;
	return 0;
}

int mtls__suites_parse(const char *text, int **out, mtls_err *e)
{
	const int *def = mtls__suites_default();
	size_t n = 0, cap = N_DEFAULT + 1;
	int *list, named12 = 0, named13 = 0;

	*out = NULL;
	for (const char *p = text; *p; p++)
		cap += *p == ':' || *p == ',';
	if ((list = calloc(cap + 1, sizeof(*list))) == NULL)
		return mtls__fail(e, MTLS_ERR_NO_MEMORY, "out of memory");
	for (const char *p = text;;) {
		size_t len = strcspn(p, ":,");
		int id = lookup(p, len);
		if (id == 0) {
			free(list);
			if (len == 0)
				return mtls__fail(e, MTLS_ERR_INVALID_ARG,
				                  "cipher suite list \"%s\": empty "
				                  "name", text);
			return mtls__fail(e, MTLS_ERR_INVALID_ARG,
			                  "cipher suite \"%.*s\" is not known to "
			                  "mbedTLS %s", (int)(len < 100 ? len : 100),
			                  p, mtls_mbedtls_version());
		}
		if (!has(list, n, id))
			list[n++] = id;
		named13 |= is_tls13(id);
		named12 |= !is_tls13(id);
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	/* A list speaks for the protocol versions it names: one naming only
	 * TLS 1.2 suites keeps the default TLS 1.3 suites, as OpenSSL keeps
	 * -cipher and -ciphersuites apart (the versions themselves are
	 * mtls_ctx_set_tls_versions()'s). */
	for (size_t i = 0; def[i] != 0; i++)
		if ((is_tls13(def[i]) ? !named13 : !named12) &&
		    !has(list, n, def[i]))
			list[n++] = def[i];
	list[n] = 0;
	*out = list;
	return 0;
}

const char *mtls__suite_weakness(int id)
{
	const char *name = mbedtls_ssl_get_ciphersuite_name(id);

	if (is_tls13(id))
		return name != NULL && strstr(name, "CCM-8") != NULL
		           ? "8-byte authentication tag"
		           : NULL;
	if (name == NULL)
		return "unknown";
	/* mbedTLS's TLS 1.2 names say it all: key exchange, then cipher. */
	if (strncmp(name, "TLS-ECDHE-", 10) != 0 &&
	    strncmp(name, "TLS-DHE-", 8) != 0)
		return "no forward secrecy";
	if (strstr(name, "-CBC-") != NULL)
		return "CBC, not AEAD (LUCKY13-style padding oracles)";
	if (strstr(name, "-GCM-") == NULL && strstr(name, "-CCM") == NULL &&
	    strstr(name, "-CHACHA20-POLY1305-") == NULL)
		return "not AEAD";
	if (strstr(name, "CCM-8") != NULL)
		return "8-byte authentication tag";
	return NULL;
}

int *mtls__suites_dup(const int *list)
{
	size_t n = 0;
	int *copy;

	while (list[n] != 0)
		n++;
	if ((copy = malloc((n + 1) * sizeof(*copy))) != NULL)
		memcpy(copy, list, (n + 1) * sizeof(*copy));
	return copy;
}
