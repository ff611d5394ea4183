#!/usr/bin/env bash
# tests/test_adversarial.sh BUILD - the adversarial tests of security issue
# #11: tests/adversary/scenarios.py attacks $BUILD/tests/adv_server (a
# server on the public API, one JSON report per connection) with a
# scriptable TLS client (tests/adversary/tls.py) and real peers (openssl
# s_client as the victim, Python's ssl), on loopback, against a copy of the
# test PKI in $MTLS_TEST_PKI (tests/run.sh).  Each scenario starts its own
# adv_server with its flags and kills it by PID when done.
#
#   ticket13_in_tls12 (3.6)  a victim's TLS 1.3 ticket in a TLS 1.2
#     ClientHello is not resumed; the attacker cannot finish under an
#     all-zero master secret; nothing verified is reported
#   ticket12_replay           a captured TLS 1.2 ticket without its master
#     secret: the handshake fails, nothing verified is reported
#   hrr_sni_switch (3.6)      another SNI in the ClientHello after a
#     HelloRetryRequest gets an alert; the same SNI gets a ServerHello; a
#     switch from a "require" host to an "optional" one does not complete
#     without a certificate
#   sni_malformed             SNI of 254/255 bytes, trailing dot, empty
#     label, NUL, space, newline: alert, failed handshake, no host; valid
#     names select their host
#   sni_property              120 seeded SNI values near the edges of a host
#     name: a ServerHello exactly for host names (an independent check of
#     the rule), an alert otherwise
#   psk_wrong_age (3.6)       the victim's ticket as an attacker's PSK with
#     a wrong age: full handshake, resumed=0, no certificate, no identity;
#     with the right age and a bogus binder: the handshake fails
#   ticket12_as_psk (3.6)     the victim's TLS 1.2 ticket as a TLS 1.3 PSK:
#     refused, the full handshake reported as not resumed
#   resumption_bounds         the victim's own resumption (its secrets from
#     its OpenSSL session) completes on the issuing host (control) and is
#     refused on another host, TLS 1.2 (SNI before or after the ticket)
#     and TLS 1.3
#   policy_resume             a session admitted unverified (not on the
#     allow list, verify optional) resumes unverified, with no identity
#   uri_policy                two URI SANs, "..", "%2e%2e", a longer last
#     segment are refused by a URI-prefix rule; one URI is the identity
#
# TLS 1.3 scenarios print "skipped: TLS 1.3 not in this build" on 2.28.
# Every scenario runs twice: with per-context ticket keys, then with keys
# from a shared file (MTLS_ADV_TICKET_KEYS, see tests/adv_server.c).
set -uo pipefail
build=${1:?usage: tests/test_adversarial.sh BUILD_DIR}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
pki=${MTLS_TEST_PKI:?run through tests/run.sh (MTLS_TEST_PKI unset)}
server=$build/tests/adv_server
[ -x "$server" ] || { echo "FAIL: $server not built (make tests)"; exit 1; }
command -v openssl >/dev/null || { echo "SKIP: openssl missing"; exit 0; }
python3 -c 'import cryptography' 2>/dev/null ||
	{ echo "SKIP: python3 with cryptography missing"; exit 0; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mtls-adv-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
# A private copy: another run of tests/run.sh may regenerate its PKI.
cp -r "$pki" "$work/pki" || { echo "FAIL: cannot copy $pki"; exit 1; }

# The scenarios bound every wait themselves; this bounds the whole run.
timeout 300 python3 "$here/adversary/scenarios.py" "$server" "$work/pki"
rc=$?
# Again with session-ticket keys from a shared file (adv_server reads
# MTLS_ADV_TICKET_KEYS): tickets made with derived keys face the same attacks.
head -c 160 /dev/urandom >"$work/ticket.keys" && chmod 600 "$work/ticket.keys"
echo "# again, with shared session-ticket keys (mtls_ctx_set_ticket_key_file)"
MTLS_ADV_TICKET_KEYS=$work/ticket.keys \
	timeout 300 python3 "$here/adversary/scenarios.py" "$server" "$work/pki"
rc2=$?
[ "$rc" -eq 0 ] && [ "$rc2" -eq 0 ]
