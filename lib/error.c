/*
 * error.c - error codes, their text, and failure details on objects.
 */
#include "internal.h"

#include <mbedtls/error.h>
#include <stdio.h>
#include <string.h>

static const struct {
	int code;
	const char *text;
} error_text[] = {
	{0, "success"},
	{MTLS_WANT_READ, "operation wants to read (call again)"},
	{MTLS_WANT_WRITE, "operation wants to write (call again)"},
	{MTLS_ERR_INVALID_ARG, "invalid argument"},
	{MTLS_ERR_WRONG_ROLE, "call does not apply to this context's role"},
	{MTLS_ERR_UNSUPPORTED, "not supported by this mbedTLS build"},
	{MTLS_ERR_NOT_CONFIGURED, "context is not configured for this"},
	{MTLS_ERR_FILE_NOT_FOUND, "file not found"},
	{MTLS_ERR_FILE_ACCESS, "permission denied"},
	{MTLS_ERR_FILE_NOT_REGULAR, "not a regular file"},
	{MTLS_ERR_FILE_EMPTY, "file is empty"},
	{MTLS_ERR_FILE_TOO_LARGE, "file is too large"},
	{MTLS_ERR_FILE_READ, "file could not be read"},
	{MTLS_ERR_CERT_PARSE, "certificate could not be parsed"},
	{MTLS_ERR_KEY_PARSE, "private key could not be parsed"},
	{MTLS_ERR_KEY_PASSWORD_REQUIRED, "private key is encrypted and no password was given"},
	{MTLS_ERR_KEY_PASSWORD, "wrong password for private key"},
	{MTLS_ERR_KEY_MISMATCH, "certificate does not match private key"},
	{MTLS_ERR_KEY_TYPE, "unsupported key type"},
	{MTLS_ERR_CERT_EXPIRED, "certificate expired"},
	{MTLS_ERR_CERT_NOT_YET_VALID, "certificate not yet valid"},
	{MTLS_ERR_CERT_EKU, "extended key usage does not allow this role"},
	{MTLS_ERR_CHAIN_ORDER, "certificate chain out of order"},
	{MTLS_ERR_NO_CERTS, "no certificate found"},
	{MTLS_ERR_CRL_PARSE, "CRL could not be parsed"},
	{MTLS_ERR_NO_SYSTEM_CA, "no system trust store found"},
	{MTLS_ERR_PEER_NO_CERT, "peer presented no certificate"},
	{MTLS_ERR_PEER_UNTRUSTED, "peer certificate not issued by a trusted CA"},
	{MTLS_ERR_PEER_EXPIRED, "peer certificate expired"},
	{MTLS_ERR_PEER_NOT_YET_VALID, "peer certificate not yet valid"},
	{MTLS_ERR_PEER_REVOKED, "peer certificate revoked"},
	{MTLS_ERR_PEER_EKU, "peer certificate extended key usage does not allow its role"},
	{MTLS_ERR_PEER_NAME, "peer certificate not valid for the expected name"},
	{MTLS_ERR_PEER_POLICY, "peer identity not allowed by policy"},
	{MTLS_ERR_PEER_NOT_VERIFIED, "peer certificate not verified"},
	{MTLS_ERR_IO, "I/O error"},
	{MTLS_ERR_CLOSED, "connection closed by peer without close_notify"},
	{MTLS_ERR_ALERT, "peer sent a fatal alert"},
	{MTLS_ERR_HANDSHAKE, "TLS handshake failed"},
	{MTLS_ERR_STATE, "call out of order"},
	{MTLS_ERR_NO_MEMORY, "out of memory"},
	{MTLS_ERR_RNG, "random number generator failed"},
	{MTLS_ERR_INTERNAL, "internal error"},
};

const char *mtls_strerror(int err)
{
	for (size_t i = 0; i < sizeof(error_text) / sizeof(error_text[0]); i++)
		if (error_text[i].code == err)
			return error_text[i].text;
	return "unknown error";
}

/* The build's own version: a program linked against libmtls.so.0 may run
 * with a newer library than the header it was compiled with. */
const char *mtls_version(void)
{
	return MTLS_VERSION_STRING;
}

mtls_err_cat mtls_err_category(int err)
{
	if (err >= MTLS_WANT_WRITE)
		return MTLS_CAT_NONE;
	if (err <= -100 && err > -700)
		return (mtls_err_cat)(-err / 100);
	return MTLS_CAT_INTERNAL;
}

void mtls__escape(char *dst, size_t cap, const char *src)
{
	static const char digits[] = "0123456789abcdef";
	size_t o = 0;

	if (cap == 0)
		return;
	for (; *src != '\0'; src++) {
		unsigned char ch = (unsigned char)*src;
		int plain = ch >= 0x20 && ch < 0x7f && ch != '\\';
		size_t need = plain ? 1 : ch == '\\' ? 2 : 4;
		if (o + need >= cap)
			break;
		if (plain) {
			dst[o++] = (char)ch;
		} else if (ch == '\\') {
			dst[o++] = '\\';
			dst[o++] = '\\';
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = digits[ch >> 4];
			dst[o++] = digits[ch & 15];
		}
	}
	dst[o] = '\0';
}

int mtls__fail(mtls_err *e, int code, const char *fmt, ...)
{
	char raw[MTLS_ERRBUF];
	va_list ap;

	if (e == NULL || e->code != 0)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* Messages quote peer certificates' names and file paths. */
	mtls__escape(e->msg, sizeof(e->msg), raw);
	return code;
}

void mtls__mbedtls_reason(int mbed_ret, char *buf, size_t len)
{
	/* mbedTLS error strings name modules and conditions, never data. */
	mbedtls_strerror(mbed_ret, buf, len);
}
