#!/usr/bin/env bash
# scripts/demo.sh BUILD - the `make demo` story, in under 30 s:
#   1. a demo PKI (tests/pki.sh; reused for a day, it takes a while to make)
#   2. a backend that itself requires client certificates (openssl s_server
#      -Verify 1 -rev: it answers each line reversed)
#   3. mtls-proxy in front of it: inbound mTLS from clients, outbound mTLS
#      to the backend with the proxy's own client certificate
#   4. a request through the proxy with a client certificate: the answer,
#      the identity the proxy saw (its log line) and the one the backend saw
#   5. a request without a client certificate: refused, and the log says why
#   6. mtls-check on a good certificate and on the usual mistakes
# Exits 0 only when every result is the expected one.  Everything it starts
# is stopped by PID on exit.
set -uo pipefail
build=${1:?usage: scripts/demo.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
bin="$build/mtls-check"
proxy="$build/mtls-proxy"
pki="$build/demo-pki"
run="$build/demo-run"
[[ -x $bin ]] || { echo "demo: $bin is not built (run make)"; exit 1; }
[[ -x $proxy ]] || { echo "demo: $proxy is not built (run make)"; exit 1; }
for t in openssl python3; do
	command -v "$t" >/dev/null || { echo "demo: $t is needed"; exit 1; }
done

if [[ -t 1 ]]; then bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'; else bold="" dim="" off=""; fi
step=0 bad=0
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
}
trap cleanup EXIT

say() { printf '%s\n' "$*"; }
title() {
	step=$((step + 1))
	say ""
	say "${bold}== $step. $1${off}"
	say "${dim}$2${off}"
}
verdict() { # verdict OK? WHAT
	if [[ $1 -eq 0 ]]; then
		say "${dim}-> as expected${off}"
	else
		say "${dim}-> NOT AS EXPECTED ($2)${off}"
		bad=$((bad + 1))
	fi
}
# shellcheck source=tests/lib.sh
. "$root/tests/lib.sh" # free_port, wait_port
wait_in() { # wait_in FILE PATTERN: up to 5 s
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

say "${bold}mtls demo${off}: mtls-proxy puts mutual TLS in front of a service, and"
say "mtls-check explains what is wrong with a certificate before a handshake does."
say ""
# Reused only when complete (wild-server-chain.pem is among the newest files
# pki.sh makes; examples/mtls-proxy.conf uses it).
if [[ -f $pki/ca.crt && -f $pki/wild-server-chain.pem &&
	-n $(find "$pki/ca.crt" -mmin -1440 2>/dev/null) ]]; then
	say "Using the demo PKI in $pki (made less than a day ago)."
else
	say "Generating a demo PKI (root CA, intermediate CA, client and server leaves)..."
	rm -rf "$pki"
	"$root/tests/pki.sh" "$pki" >/dev/null || { echo "demo: tests/pki.sh failed"; exit 1; }
fi
rm -rf "$run"
mkdir -p "$run"

# ---- the proxy scenes -----------------------------------------------------
be_port=$(free_port)
px_port=$(free_port)
title "A backend that requires client certificates" \
	"openssl s_server -Verify 1: no certificate from a CA it trusts, no connection; -rev answers each line reversed."
say "\$ openssl s_server -accept $be_port -Verify 1 -CAfile ca.crt -cert server-ec.crt -cert_chain int.crt -key server-ec.key -rev"
(cd "$pki" && exec openssl s_server -accept "$be_port" -Verify 1 -CAfile ca.crt \
	-cert server-ec.crt -cert_chain int.crt -key server-ec.key -rev) >"$run/backend.log" 2>&1 &
pids+=($!)
wait_port "$be_port"
verdict $? "the backend did not start: $(tail -3 "$run/backend.log")"

cat >"$run/proxy.conf" <<EOF
# mtls-proxy in front of the backend
listen 127.0.0.1:$px_port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt              # clients need a certificate from this CA
    allow_uri_prefix spiffe://example.org/
    upstream backend
}
upstream backend {
    target 127.0.0.1:$be_port
    tls on
    cert $pki/client-rsa-chain.pem     # the proxy's own client certificate
    key $pki/client-rsa.key
    ca $pki/ca.crt
    server_name localhost
    health_interval 5
}
EOF
title "mtls-proxy in front of it" \
	"Inbound: mTLS from clients, SPIFFE IDs under spiffe://example.org/ only. Outbound: mTLS with the proxy's own RSA client certificate."
say "\$ mtls-proxy -c proxy.conf"
sed 's/^/    /' "$run/proxy.conf"
"$proxy" -c "$run/proxy.conf" 2>"$run/proxy.log" &
pids+=($!)
wait_port "$px_port"
verdict $? "the proxy did not start: $(cat "$run/proxy.log")"

title "A request with a client certificate" \
	"The client presents client-ec (CN=client.test, URI spiffe://example.org/ns/test/sa/client)."
say "\$ echo 'hello through mtls-proxy' | openssl s_client -quiet -no_ign_eof -connect 127.0.0.1:$px_port -cert client-ec.crt -cert_chain int.crt -key client-ec.key -CAfile ca.crt"
answer=$( (echo 'hello through mtls-proxy'; sleep 1) | (cd "$pki" && timeout 10 \
	openssl s_client -quiet -no_ign_eof -connect "127.0.0.1:$px_port" -servername localhost \
	-cert client-ec.crt -cert_chain int.crt -key client-ec.key -CAfile ca.crt 2>/dev/null))
say "answer:        $answer"
wait_in "$run/proxy.log" "conn .*status=ok"
line=$(grep "conn .*status=ok" "$run/proxy.log" | tail -1)
say "proxy saw:     $(grep -o 'subject="[^"]*" id="[^"]*"' <<<"$line")"
say "backend saw:   $(grep -m1 '^Peer certificate' "$run/backend.log") (the proxy's certificate, $(grep -m1 '^Signature type' "$run/backend.log" | sed 's/^Signature type: //') signature)"
say "proxy log:     ${line#* info: }"
[[ $answer == "yxorp-sltm hguorht olleh" ]] && grep -q 'id="spiffe://example.org/ns/test/sa/client"' <<<"$line" &&
	grep -q "^Peer certificate: CN = client.test" "$run/backend.log"
verdict $? "wanted the reversed line, the client's SPIFFE ID in the proxy log, the proxy's certificate at the backend"

title "A request without a client certificate" \
	"The proxy refuses it in the handshake; nothing reaches the backend."
say "\$ echo hello | openssl s_client -quiet -no_ign_eof -connect 127.0.0.1:$px_port -CAfile ca.crt"
answer=$( (echo hello; sleep 1) | (cd "$pki" && timeout 10 openssl s_client -quiet -no_ign_eof \
	-connect "127.0.0.1:$px_port" -servername localhost -CAfile ca.crt 2>&1 | tail -2))
say "client:        $(tr '\n' ' ' <<<"$answer")"
wait_in "$run/proxy.log" 'error="client: TLS handshake'
line=$(grep 'error="client: TLS handshake' "$run/proxy.log" | tail -1)
say "proxy log:     ${line#* warn: }"
grep -q "client certificate required but not presented" <<<"$line" && ! grep -q "^olleh" <<<"$answer"
verdict $? "wanted a refusal, logged as 'client certificate required but not presented'"

# ---- the mtls-check scenes -------------------------------------------------
# scene TITLE EXPLANATION STATUS PHRASE ARGS...: runs mtls-check ARGS in the
# PKI directory, shows its output, and checks the exit status and PHRASE.
scene() {
	local title=$1 why=$2 want=$3 phrase=$4 out rc verdict
	shift 4
	title "$title" "$why"
	say "\$ mtls-check $*"
	out=$(cd "$pki" && "$bin" "$@" 2>&1)
	rc=$?
	say "$out"
	if [[ $rc -eq $want ]] && grep -qF -- "$phrase" <<<"$out"; then
		verdict="as expected"
	else
		verdict="NOT AS EXPECTED (wanted exit $want and \"$phrase\")"
		bad=$((bad + 1))
	fi
	say "${dim}-> exit $rc, $verdict${off}"
}

scene "A good client certificate" \
	"Leaf + intermediate in one file, its key, and the root CA the server trusts." \
	0 "verifies to ca.crt" \
	client-ec-chain.pem client-ec.key --ca ca.crt

scene "The wrong private key" \
	"The TLS handshake would fail later; mtls-check says why now." \
	1 "does not match" \
	client-ec.crt client-other.key

scene "An expired certificate" \
	"Every peer would refuse it." \
	1 "expired on" \
	client-expired.crt client-expired.key

scene "A chain in the wrong order" \
	"The intermediate comes first and the leaf second; the leaf must come first." \
	1 "out of order" \
	client-rev-chain.pem client-ec.key --ca ca.crt

say ""
if [[ $bad -eq 0 ]]; then
	say "${bold}demo: all $step results as expected.${off}"
	say "Try it on your own files: $1/mtls-check CERT [KEY] --ca CA  (--json for scripts)"
	say "The proxy's configuration syntax: examples/mtls-proxy.conf"
	exit 0
fi
say "${bold}demo: $bad of $step results were not as expected.${off}"
exit 1
