#!/usr/bin/env bash
# tests/test_mtls_check.sh BUILD - mtls-check against the test PKI.
# Asserts the exit status and key phrases of each case; prints one line per
# case and exits non-zero if any failed.  Uses $MTLS_TEST_PKI (tests/run.sh
# sets it), or generates a PKI of its own.  MTLS_TEST_WRAPPER (e.g. valgrind)
# prefixes every run of the tool.
# tests/run.sh: valgrind
set -uo pipefail
build=${1:?usage: tests/test_mtls_check.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
bin="$build/mtls-check"
[[ -x $bin ]] || { echo "not built: $bin"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtls-check-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if [[ -z ${MTLS_TEST_PKI:-} ]]; then
	"$here/pki.sh" "$tmp/pki" >/dev/null || { echo "tests/pki.sh failed"; exit 1; }
	MTLS_TEST_PKI=$tmp/pki
fi
P=$MTLS_TEST_PKI
# shellcheck disable=SC2206
wrap=(${MTLS_TEST_WRAPPER:-})

pass=0 fail=0 out="" rc=0
run() {
	out=$(cd "$P" && "${wrap[@]}" "$bin" "$@" 2>&1)
	rc=$?
}

# t DESCRIPTION STATUS [PHRASE...] -- ARGS...: runs mtls-check ARGS (in the
# PKI directory), expects exit STATUS and every PHRASE in the output.
t() {
	local desc=$1 want=$2 phrases=() p bad=""
	shift 2
	while (($# > 0)) && [[ $1 != -- ]]; do phrases+=("$1"); shift; done
	shift
	run "$@"
	[[ $rc -eq $want ]] || bad="exit $rc, expected $want"
	for p in "${phrases[@]}"; do
		grep -qF -- "$p" <<<"$out" || bad="${bad:+$bad; }missing \"$p\""
	done
	report "$desc" "$bad" "$*"
}

report() {
	if [[ -z $2 ]]; then
		pass=$((pass + 1)); echo "ok   $1"
	else
		fail=$((fail + 1)); echo "FAIL $1: $2"
		echo "     \$ mtls-check $3"
		while IFS= read -r line; do echo "     | $line"; done <<<"$out"
	fi
}

# that DESCRIPTION COMMAND...: a case decided by COMMAND (about $out).
that() {
	local desc=$1
	shift
	if "$@"; then report "$desc" "" ""; else report "$desc" "failed: $*" ""; fi
}
not_in_output() { ! grep -q -- "$1" <<<"$out"; }

# A finding line: LEVEL and CHECK at the start, PHRASE anywhere after.
has_line() { grep -qE "^$1 +$2 .*$3" <<<"$out"; }

# ---- good pairs ------------------------------------------------------------
t "good client pair verifies to the CA" 0 "OK    trust" "verifies to ca.crt" \
  "matches the certificate (EC P-256)" "in order" "0 errors, 0 warnings" \
  -- client-ec-chain.pem client-ec.key --ca ca.crt
good_lines() {
	has_line OK usage "Client Authentication" && has_line INFO names "DNS:client.test" &&
	  has_line INFO names "URI:spiffe://example.org/ns/test/sa/client"
}
that "good client pair: usage and names lines" good_lines
t "good server pair (role inferred from the EKU)" 0 "verifies" "server certificate" \
  "IP:127.0.0.1" "IP:::1" "DNS:server.test" "mtls_load_server_pair() accepts" \
  -- server-ec-chain.pem server-ec.key --ca ca.crt
t "RSA pair" 0 "RSA 2048" "verifies" -- client-rsa-chain.pem client-rsa.key --ca ca.crt
t "combined PEM (leaf + intermediate + key), KEY omitted" 0 \
  "client-combined.pem matches the certificate" "2 certificates, in order" "verifies" \
  -- client-combined.pem --ca ca.crt
t "KEY equal to CERT is the combined form" 0 "matches the certificate" \
  -- client-combined.pem client-combined.pem
t "DER certificate and DER key" 0 "matches the certificate" -- client-ec.der client-ec-key.der
t "certificate alone: key not checked" 0 "not checked" "INFO  key" -- client-ec.crt
t "bundle with the intermediate as CA" 0 "verifies" -- client-ec.crt client-ec.key --ca ca-bundle.pem
t "no EKU: checked as both roles" 0 "both client and server" \
  "mtls_load_client_pair() accepts" "mtls_load_server_pair() accepts" \
  -- client-noeku.crt client-noeku.key

# ---- errors ----------------------------------------------------------------
t "mismatched key" 1 "ERROR key" "does not match" -- client-ec.crt client-other.key
t "expired certificate" 1 "ERROR expiry" "expired on" -- client-expired.crt client-expired.key
t "expired certificate: trust says so in mbedTLS words" 1 "validity has expired" \
  -- client-expired.crt client-expired.key --ca ca-bundle.pem
t "not yet valid" 1 "not valid yet" -- client-future.crt client-future.key
t "expiring in 10 days: a warning, exit 0" 0 "WARN  expiry" "expires in" "1 warning" \
  -- client-expiring.crt client-expiring.key
t "expiring, below --warn-days: no warning" 0 "0 warnings" "days left" \
  -- client-expiring.crt client-expiring.key --warn-days 5
t "wrong EKU for --role client" 1 "ERROR usage" "does not include clientAuth" \
  -- client-wrongeku.crt client-wrongeku.key --role client
t "wrong EKU for --role server" 1 "ERROR usage" "does not include serverAuth" \
  -- server-wrongeku.crt server-wrongeku.key --role=server
t "reversed chain" 1 "ERROR chain" "order" "matches certificate #2" \
  -- client-rev-chain.pem client-ec.key --ca ca.crt
t "broken chain (unrelated second certificate)" 1 "ERROR chain" "not issued by" \
  -- client-broken-chain.pem client-ec.key
t "client of another CA does not verify" 1 "ERROR trust" "does not verify to ca.crt" \
  "not correctly signed" "holds no CA named CN=Other Root CA" \
  -- other-client.crt other-client.key --ca ca.crt
t "leaf without its intermediate does not verify to the root" 1 "ERROR trust" \
  "lacks an intermediate" -- client-ec.crt client-ec.key --ca ca.crt
t "key file mode 0644: a warning" 0 "WARN  key file" "0644" "0600" \
  -- client-ec.crt client-ec-0644.key
t "missing certificate file is named" 1 "ERROR certificate" "no-such-file.pem" \
  -- no-such-file.pem
t "missing key file is named" 1 "ERROR key" "no-such.key" -- client-ec.crt no-such.key
t "missing CA file is named" 1 "ERROR trust" "no-such-ca.crt" \
  -- client-ec.crt client-ec.key --ca no-such-ca.crt
t "empty file" 1 "empty" -- empty.pem
t "garbage" 1 "ERROR certificate" "not a certificate" -- garbage.pem
t "truncated PEM" 1 "truncated" -- truncated.pem
t "CERT and KEY swapped" 1 "holds a private key but no certificate" "holds a certificate" \
  -- client-ec.key client-ec.crt
t "CA file given as a key" 1 "no private key found" -- client-ec.crt ca.crt
t "every problem at once (expired, wrong EKU, mismatched key, 0644)" 1 \
  "ERROR key" "ERROR expiry" "ERROR usage" "WARN  key file" "3 errors, 1 warning" \
  -- client-expired.crt client-ec-0644.key --role server

# ---- encrypted keys ----------------------------------------------------------
printf 'testpass\n' >"$tmp/pass"
printf 'wrong\n' >"$tmp/bad"
chmod 0600 "$tmp/pass" "$tmp/bad"
t "encrypted key without a password" 1 "encrypted" "--password-file" \
  -- client-rsa.crt client-enc-legacy.key
t "encrypted key with its password" 0 "matches the certificate (RSA 2048)" \
  -- client-rsa.crt client-enc-legacy.key --password-file "$tmp/pass"
t "encrypted key, wrong password" 1 "wrong password" \
  -- client-rsa.crt client-enc-legacy.key --password-file "$tmp/bad"
that "the password never appears in the output" not_in_output testpass
if [[ -e $P/client-enc-pk8-des3.key ]]; then
	t "encrypted PKCS#8 with its password" 0 "matches the certificate" \
	  -- client-ec.crt client-enc-pk8-des3.key --password-file "$tmp/pass"
fi
# PBES2 with AES: mbedTLS 2.28 cannot decrypt it, and must say so plainly.
if "$bin" --version | grep -q "mbedTLS 2\."; then
	t "AES-encrypted PKCS#8 on mbedTLS 2.28: explained" 1 "cannot decrypt" \
	  -- client-ec.crt client-enc-pk8.key --password-file "$tmp/pass"
else
	t "AES-encrypted PKCS#8 with its password" 0 "matches the certificate" \
	  -- client-ec.crt client-enc-pk8.key --password-file "$tmp/pass"
fi
t "unreadable password file is named" 1 "no-such-pass" \
  -- client-rsa.crt client-enc-legacy.key --password-file no-such-pass

# ---- JSON ------------------------------------------------------------------
# json_check DESC ERRORS WARNINGS ARGS...: valid JSON with these counts.
json_check() {
	local desc=$1 errs=$2 warns=$3 bad="" got
	shift 3
	run --json "$@"
	got=$(python3 -c 'import json,sys; d=json.load(sys.stdin)
assert isinstance(d["findings"], list) and all(
    set(f) == {"level", "check", "message"} for f in d["findings"])
print(d["errors"], d["warnings"])' <<<"$out" 2>&1) || bad="not valid JSON: $got"
	[[ -n $bad || $got == "$errs $warns" ]] || bad="errors/warnings $got, expected $errs $warns"
	report "$desc" "$bad" "--json $*"
}
json_check "--json, good pair" 0 0 client-ec-chain.pem client-ec.key --ca ca.crt
json_check "--json, mismatched key" 1 0 client-ec.crt client-other.key
json_check "--json, expiring" 0 1 client-expiring.crt client-expiring.key
json_check "--json, missing file" 1 0 no-such-file.pem
json_check "--json, reversed chain and another CA" 2 0 client-rev-chain.pem client-ec.key --ca other-ca.crt
run --json client-ec-chain.pem client-ec.key --ca ca.crt
got=$(python3 -c 'import json,sys; d=json.load(sys.stdin)
print(d["subject"], d["chain_len"], d["key_type"], d["verified"], d["days_left"] > 300,
      d["not_after"].endswith("Z"), " ".join(d["sans"]))' <<<"$out" 2>&1)
want="CN=client.test 2 EC P-256 True True True DNS:client.test URI:spiffe://example.org/ns/test/sa/client"
report "--json fields" "$([[ $got == "$want" ]] || echo "got: $got")" "--json ..."
run --json client-combined.pem
that "--json on a combined file prints no key material" not_in_output "BEGIN"

# ---- --connect against openssl s_server -------------------------------------
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
srv_pid=""
stop_server() {
	[[ -n $srv_pid ]] || return 0
	kill "$srv_pid" 2>/dev/null
	wait "$srv_pid" 2>/dev/null
	srv_pid=""
}
trap 'stop_server; rm -rf "$tmp"' EXIT
# s_server_on VERSION: s_server (TLS 1.VERSION, or "any") requiring a client
# certificate from ca.crt's hierarchy, sending server-ec.crt and the
# intermediate.
s_server_on() {
	local vflag=()
	stop_server
	port=$(free_port) || return 1
	[[ $1 == any ]] || vflag=("-tls1_$1")
	(cd "$P" && exec openssl s_server -accept "127.0.0.1:$port" "${vflag[@]}" \
		-Verify 1 -verify_return_error -CAfile ca.crt -cert server-ec.crt \
		-key server-ec.key -cert_chain int.crt -quiet) >"$tmp/s_server.log" 2>&1 &
	srv_pid=$!
	wait_port "$port"
}
mbed=$("$bin" --version | sed -n 's/.*mbedTLS \([0-9]\).*/\1/p')
versions=(2)
[[ $mbed == 3 ]] && versions+=(3)
for v in "${versions[@]}"; do
	if ! s_server_on "$v"; then
		report "TLS 1.$v: openssl s_server starts" "no server" ""
		continue
	fi
	asked=("client certificate: asked for; CAs the server accepts:"
	       "  O=mtls tests, CN=mtls Test Root CA")
	[[ $v == 2 ]] || asked=("client certificate: unknown (TLS 1.3 encrypts the request and the server refused a TLS 1.2 probe)")
	t "TLS 1.$v --connect: good pair, verified chain" 0 "result: ok" \
	  "version: TLSv1.$v" "verification: ok" "0 subject: CN=localhost" \
	  "1 subject: CN=mtls Test Intermediate CA" \
	  "issuer:  O=mtls tests, CN=mtls Test Root CA" "${asked[@]}" \
	  -- --connect "localhost:$port" client-ec-chain.pem client-ec.key --ca ca.crt
	t "TLS 1.$v --connect: server from an unknown CA, chain still shown" 1 \
	  "verification: FAILED" "not correctly signed by the trusted CA" \
	  "0 subject: CN=localhost" "result: refused by us" \
	  -- --connect "localhost:$port" client-ec-chain.pem client-ec.key --ca other-ca.crt
	t "TLS 1.$v --connect: name mismatch" 1 "not valid for wrong.test" \
	  "result: refused by us" \
	  -- --connect "127.0.0.1:$port" client-ec-chain.pem client-ec.key --ca ca.crt \
	     --servername wrong.test
	if [[ $v == 2 ]]; then
		t "TLS 1.2 --connect: no client certificate, server requires one" 1 \
		  "server alert: handshake_failure" \
		  "likely reason: the server asked for a client certificate and we had none" \
		  "result: the handshake failed" \
		  -- --connect "localhost:$port" --ca ca.crt
		t "TLS 1.2 --connect: client certificate from a CA the server does not accept" 1 \
		  "server alert: unknown_ca (48): the server does not trust the CA that issued our certificate" \
		  "CAs the server accepts:" "result: the handshake failed" \
		  -- --connect "localhost:$port" other-client.crt other-client.key --ca ca.crt
	else
		# TLS 1.3: the refusal arrives after the handshake, under keys
		# mbedTLS 3.6 cannot read (see mtls_handshake in mtls.h).
		t "TLS 1.3 --connect: no client certificate, server requires one" 1 \
		  "after the handshake: FAILED" "likely reason: the server wants a client certificate" \
		  "result: the server refused us after the handshake" \
		  -- --connect "localhost:$port" --ca ca.crt
		t "TLS 1.3 --connect: client certificate from a CA the server does not accept" 1 \
		  "after the handshake: FAILED" "result: the server refused us after the handshake" \
		  -- --connect "localhost:$port" other-client.crt other-client.key --ca ca.crt
	fi
	stop_server
done
if [[ $mbed == 3 ]] && s_server_on any; then
	t "TLS 1.3 --connect: the CA names come from a TLS 1.2 probe" 0 \
	  "version: TLSv1.3" "client certificate: asked for (seen in a TLS 1.2 probe: TLS 1.3 encrypts the request); CAs the server accepts:" \
	  "  O=mtls tests, CN=mtls Test Root CA" "result: ok" \
	  -- --connect "localhost:$port" client-ec-chain.pem client-ec.key --ca ca.crt
	stop_server
fi
port=$(free_port)
t "--connect: nothing listens: exit 3" 3 "cannot reach 127.0.0.1 port $port" \
  -- --connect "127.0.0.1:$port" --ca ca.crt
t "--connect: unreadable CA file: exit 2" 2 "error:" \
  -- --connect "127.0.0.1:$port" --ca no-such-ca.pem
t "--connect without a port: exit 2" 2 "needs HOST:PORT" -- --connect localhost
t "--connect with a certificate but no key: exit 2" 2 "needs its key" \
  -- --connect localhost:1 client-ec.crt

# ---- usage -----------------------------------------------------------------
t "unknown flag: exit 2 with usage" 2 "unknown option: --bogus" "usage: mtls-check" \
  -- client-ec.crt --bogus
t "no arguments: exit 2" 2 "usage:" --
t "bad --role: exit 2" 2 "--role must be client or server" -- client-ec.crt --role admin
t "bad --warn-days: exit 2" 2 "--warn-days" -- client-ec.crt --warn-days soon
t "flag without value: exit 2" 2 "--ca needs a value" -- client-ec.crt --ca
t "three files: exit 2" 2 "too many arguments" -- client-ec.crt client-ec.key ca.crt
t "--help: exit 0" 0 "usage:" -- --help

echo "mtls-check: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
