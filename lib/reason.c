/*
 * reason.c - the stable names of failure reasons and TLS alerts.
 */
#include "internal.h"

/* Indexed by mtls_reason: these tokens are ABI (logs, metric labels). */
static const char *const reason_names[MTLS_REASON_COUNT] = {
	[MTLS_REASON_NONE] = "none",
	[MTLS_REASON_PEER_NO_CERT] = "peer_no_cert",
	[MTLS_REASON_UNKNOWN_CA] = "unknown_ca",
	[MTLS_REASON_MISSING_INTERMEDIATE] = "missing_intermediate",
	[MTLS_REASON_EXPIRED] = "expired",
	[MTLS_REASON_NOT_YET_VALID] = "not_yet_valid",
	[MTLS_REASON_REVOKED] = "revoked",
	[MTLS_REASON_EKU] = "eku",
	[MTLS_REASON_NAME_MISMATCH] = "name_mismatch",
	[MTLS_REASON_POLICY] = "policy",
	[MTLS_REASON_NOT_VERIFIED] = "not_verified",
	[MTLS_REASON_PEER_ALERT] = "peer_alert",
	[MTLS_REASON_PEER_ALERT_UNREADABLE] = "peer_alert_unreadable",
	[MTLS_REASON_PROTOCOL_VERSION] = "protocol_version",
	[MTLS_REASON_NO_SHARED_CIPHER] = "no_shared_cipher",
	[MTLS_REASON_UNKNOWN_HOST] = "unknown_host",
	[MTLS_REASON_BAD_SNI] = "bad_sni",
	[MTLS_REASON_CLOSED] = "closed",
	[MTLS_REASON_IO] = "io",
	[MTLS_REASON_PROTOCOL] = "protocol",
	[MTLS_REASON_CONFIG] = "config",
	[MTLS_REASON_INTERNAL] = "internal",
	[MTLS_REASON_ABANDONED] = "abandoned",
};

const char *mtls_reason_name(mtls_reason reason)
{
	unsigned r = (unsigned)reason;

	if (r >= MTLS_REASON_COUNT || reason_names[r] == NULL)
		return "unknown";
	return reason_names[r];
}

/* RFC 8446 section 6 and RFC 5246 7.2 (descriptions TLS 1.3 dropped are
 * still sent by TLS 1.2 peers). */
static const struct {
	int code;
	const char *name;
} alert_names[] = {
	{0, "close_notify"},
	{10, "unexpected_message"},
	{20, "bad_record_mac"},
	{21, "decryption_failed"},
	{22, "record_overflow"},
	{30, "decompression_failure"},
	{40, "handshake_failure"},
	{41, "no_certificate"},
	{42, "bad_certificate"},
	{43, "unsupported_certificate"},
	{44, "certificate_revoked"},
	{45, "certificate_expired"},
	{46, "certificate_unknown"},
	{47, "illegal_parameter"},
	{48, "unknown_ca"},
	{49, "access_denied"},
	{50, "decode_error"},
	{51, "decrypt_error"},
	{60, "export_restriction"},
	{70, "protocol_version"},
	{71, "insufficient_security"},
	{80, "internal_error"},
	{86, "inappropriate_fallback"},
	{90, "user_canceled"},
	{100, "no_renegotiation"},
	{109, "missing_extension"},
	{110, "unsupported_extension"},
	{111, "certificate_unobtainable"},
	{112, "unrecognized_name"},
	{113, "bad_certificate_status_response"},
	{114, "bad_certificate_hash_value"},
	{115, "unknown_psk_identity"},
	{116, "certificate_required"},
	{120, "no_application_protocol"},
};

const char *mtls_alert_name(int alert)
{
	for (size_t i = 0; i < sizeof(alert_names) / sizeof(alert_names[0]);
	     i++)
		if (alert_names[i].code == alert)
			return alert_names[i].name;
	return "unknown";
}

/* Alerts by which a server says it refused the client's certificate. */
int mtls__alert_is_cert_refusal(int alert)
{
	switch (alert) {
	case 41: /* no_certificate (SSL 3) */
	case 42: case 43: case 44: case 45: case 46: case 48: case 49:
	case 116: /* certificate_required */
		return 1;
	default:
		return 0;
	}
}

mtls_reason mtls__reason_of_peer_code(int code)
{
	switch (code) {
	case MTLS_ERR_PEER_NO_CERT:
		return MTLS_REASON_PEER_NO_CERT;
	case MTLS_ERR_PEER_UNTRUSTED:
		return MTLS_REASON_UNKNOWN_CA;
	case MTLS_ERR_PEER_EXPIRED:
		return MTLS_REASON_EXPIRED;
	case MTLS_ERR_PEER_NOT_YET_VALID:
		return MTLS_REASON_NOT_YET_VALID;
	case MTLS_ERR_PEER_REVOKED:
		return MTLS_REASON_REVOKED;
	case MTLS_ERR_PEER_EKU:
		return MTLS_REASON_EKU;
	case MTLS_ERR_PEER_NAME:
		return MTLS_REASON_NAME_MISMATCH;
	case MTLS_ERR_PEER_POLICY:
		return MTLS_REASON_POLICY;
	case MTLS_ERR_PEER_NOT_VERIFIED:
		return MTLS_REASON_NOT_VERIFIED;
	case MTLS_ERR_IO:
		return MTLS_REASON_IO;
	case MTLS_ERR_CLOSED:
		return MTLS_REASON_CLOSED;
	case MTLS_ERR_ALERT:
		return MTLS_REASON_PEER_ALERT;
	case MTLS_ERR_NO_MEMORY:
	case MTLS_ERR_RNG:
	case MTLS_ERR_INTERNAL:
		return MTLS_REASON_INTERNAL;
	case MTLS_ERR_NOT_CONFIGURED:
	case MTLS_ERR_INVALID_ARG:
	case MTLS_ERR_WRONG_ROLE:
	case MTLS_ERR_UNSUPPORTED:
		return MTLS_REASON_CONFIG;
	default:
		return MTLS_REASON_PROTOCOL;
	}
}
