#!/usr/bin/env bash
# tests/test_proxy_targets.sh BUILD - mtls-proxy features of issue #12:
#   tls_versions inside a host block: on a shared port, a TLS-1.3-only host
#     refuses openssl s_client -tls1_2 with a protocol_version alert and
#     accepts -tls1_3; the default host still accepts TLS 1.2 (3.x builds;
#     on 2.28 the config is refused, naming the line); a host whose versions
#     share none with its listen block's is reported by -t
#   per-target cert/key/server_name: one upstream over two openssl s_server
#     -www targets, each requiring a client certificate from its own CA; two
#     connections through the proxy (round robin) show, in each target's
#     page, the client certificate the proxy presented to it: each target
#     got its own; without the per-target pair the second target refuses
#   re-resolution: a target given by name (back.mtls.test, answered by the
#     test-only LD_PRELOAD shim tests/resolve_shim.c from a file the test
#     rewrites) moves from 127.0.0.1 to 127.0.0.2 (same port, another
#     backend) after resolve_interval 1: the log says so and the next
#     connection reaches the new backend; a failed lookup keeps the address
# Every process started here is killed by PID on exit; every wait is bounded.
set -uo pipefail
build=${1:?usage: tests/test_proxy_targets.sh BUILD_DIR}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
pki=${MTLS_TEST_PKI:?run through tests/run.sh (MTLS_TEST_PKI unset)}
proxy=$build/mtls-proxy
[ -x "$proxy" ] || { echo "FAIL: $proxy not built (make examples)"; exit 1; }
command -v openssl >/dev/null || { echo "SKIP: openssl missing"; exit 0; }
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
setup_work proxy-targets || exit 1

wait_in() { # wait_in FILE REGEX: up to 10 s for a line matching REGEX
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
wait_count() { # wait_count FILE REGEX N: up to 10 s for N matching lines
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
		sleep 0.1
	done
	return 1
}
if "$proxy" -V | grep -q 'mbedTLS 2\.'; then has13=0; else has13=1; fi

# ---- tls_versions in a host block ---------------------------------------------
lp=$(free_port) bp=$(free_port)
cat "$pki/admin-server.crt" "$pki/int.crt" >"$work/admin-chain.pem"
# a TCP backend that takes connections (the TLS side is what is tested)
openssl s_server -accept "127.0.0.1:$bp" -nocert -quiet -naccept 100 \
	-cipher aNULL >/dev/null 2>&1 &
pids+=($!)
cat >"$work/hv.conf" <<CONF
listen 127.0.0.1:$lp {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    upstream back
    host admin.example.com {
        cert $work/admin-chain.pem
        key $pki/admin-server.key
        tls_versions 1.3
        upstream back
    }
}
upstream back {
    target 127.0.0.1:$bp
}
CONF
hv_line=$(grep -n 'tls_versions 1.3' "$work/hv.conf" | cut -d: -f1)
out=$("$proxy" -t -c "$work/hv.conf" 2>&1)
rc=$?
if [ $has13 = 0 ]; then
	check "host tls_versions 1.3 on a 2.28 build: -t names the line ($out)" \
		bash -c "[ $rc -eq 1 ] && grep -q 'hv.conf:$hv_line: tls_versions 1.3: TLS 1.3 is not supported' <<<\"\$0\"" "$out"
else
	check "host tls_versions: -t accepts it (${out##*$'\n'})" test $rc -eq 0
	sed 's/^    upstream back$/    tls_versions 1.2\n    upstream back/;0,/tls_versions 1.2/!b' \
		"$work/hv.conf" >"$work/hv-bad.conf"
	out=$("$proxy" -t -c "$work/hv-bad.conf" 2>&1)
	hv_line=$(grep -n 'tls_versions 1.3' "$work/hv-bad.conf" | cut -d: -f1)
	check "host tls_versions 1.3 under a TLS-1.2-only listen block: -t says it can never be used ($out)" \
		grep -q "hv-bad.conf:$hv_line: host admin.example.com: tls_versions shares no version with its listen block's" <<<"$out"

	"$proxy" -c "$work/hv.conf" 2>"$work/hv.log" &
	pids+=($!)
	wait_port "$lp" || bad "proxy did not start: $(cat "$work/hv.log")"
	sc() { # sc VERSION SERVERNAME: s_client's output
		timeout 20 openssl s_client -connect "127.0.0.1:$lp" "-tls1_$1" \
			-servername "$2" -CAfile "$pki/ca.crt" \
			-cert "$pki/client-ec.crt" -cert_chain "$pki/int.crt" -key "$pki/client-ec.key" \
			</dev/null 2>&1
	}
	out=$(sc 2 admin.example.com)
	check "TLS-1.3-only host: s_client -tls1_2 gets a protocol_version alert" \
		grep -q "alert protocol version" <<<"$out" || echo "$out" | sed 's/^/     | /'
	check "... and the proxy logs the reason against that host" \
		wait_in "$work/hv.log" "host=admin.example.com .*host admin.example.com accepts TLS 1.3 only; the client negotiated TLS 1.2"
	out=$(sc 3 admin.example.com)
	check "TLS-1.3-only host: s_client -tls1_3 is served (admin certificate)" \
		grep -q "subject=CN *= *admin.example.com" <<<"$out" || echo "$out" | sed 's/^/     | /'
	check "... over TLS 1.3" grep -q "Protocol *: *TLSv1.3\|New, TLSv1.3" <<<"$out"
	out=$(sc 2 localhost)
	check "default host on the same port: s_client -tls1_2 is served" \
		grep -q "New, TLSv1.2" <<<"$out" || echo "$out" | sed 's/^/     | /'
fi

# ---- per-target cert, key, server_name ----------------------------------------
ta=$(free_port) tb=$(free_port) lp2=$(free_port)
# s_server_www PORT CAFILE: needs a client certificate issued under CAFILE
s_server_www() {
	(cd "$pki" && exec openssl s_server -accept "127.0.0.1:$1" -Verify 1 \
		-verify_return_error -CAfile "$2" -cert server-ec.crt \
		-key server-ec.key -cert_chain int.crt -www) >"$work/s_$1.log" 2>&1 &
	pids+=($!)
}
s_server_www "$ta" ca.crt
s_server_www "$tb" other-ca.crt
cat >"$work/pt.conf" <<CONF
listen 127.0.0.1:$lp2 {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    upstream two
}
upstream two {
    tls on
    ca $pki/ca.crt
    cert $pki/client-ec-chain.pem
    key $pki/client-ec.key
    target 127.0.0.1:$ta server_name localhost
    target 127.0.0.1:$tb cert $pki/other-client.crt key $pki/other-client.key server_name server.test ca $pki/ca.crt
}
CONF
out=$("$proxy" -t -c "$work/pt.conf" 2>&1)
check "per-target settings: -t accepts them (${out##*$'\n'})" test $? -eq 0
bad_conf() { # bad_conf DESC TARGET-LINE-SUFFIX PHRASE
	sed "s|^    target 127.0.0.1:$tb .*|    target 127.0.0.1:$tb $2|" "$work/pt.conf" >"$work/pt-bad.conf"
	out=$("$proxy" -t -c "$work/pt-bad.conf" 2>&1)
	check "$1 ($out)" grep -qF "$3" <<<"$out"
}
bad_conf "per-target: an unknown setting names the line" "color blue" \
	"pt-bad.conf:13: target: unknown setting 'color'"
bad_conf "per-target: cert without key" "cert $pki/other-client.crt" \
	"pt-bad.conf:13: target: 'cert' without 'key'"
bad_conf "per-target: a missing key file names the target's line" \
	"cert $pki/other-client.crt key $work/nope.key" "pt-bad.conf:13:"
wait_port "$ta" && wait_port "$tb" || bad "s_server targets did not start"
"$proxy" -c "$work/pt.conf" 2>"$work/pt.log" &
pids+=($!)
wait_port "$lp2" || bad "proxy did not start: $(cat "$work/pt.log")"
get() { # one GET through the proxy; the target's page
	printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client \
		-connect "127.0.0.1:$lp2" -CAfile "$pki/ca.crt" -quiet \
		-cert "$pki/client-ec.crt" -cert_chain "$pki/int.crt" -key "$pki/client-ec.key" 2>/dev/null
}
pages=$(get; get)
[ "${MTLS_TEST_VERBOSE:-0}" = 1 ] && { echo "$pages"; cat "$work/pt.log"; }
check "per-target: one target saw the upstream's pair (issued by the intermediate)" \
	grep -q "Issuer: CN *= *mtls Test Intermediate CA" <<<"$pages"
check "per-target: the other saw its own pair (issued by Other Root CA)" \
	grep -q "Issuer: CN *= *Other Root CA" <<<"$pages"
check "per-target: both connections logged status=ok" \
	wait_count "$work/pt.log" "upstream=two .*status=ok" 2

# the same upstream without the second target's own pair: it refuses
sed "s| cert $pki/other-client.crt key $pki/other-client.key||" "$work/pt.conf" \
	| sed "s/^listen 127.0.0.1:$lp2/listen 127.0.0.1:PORT3/" >"$work/pt2.conf"
lp3=$(free_port)
sed -i "s/PORT3/$lp3/" "$work/pt2.conf"
"$proxy" -c "$work/pt2.conf" 2>"$work/pt2.log" &
pids+=($!)
wait_port "$lp3" || bad "proxy 2 did not start: $(cat "$work/pt2.log")"
lp2=$lp3
pages=$(get; get)
check "without its own pair the other target refuses (only one page served)" \
	test "$(grep -c "Issuer: CN *= *mtls Test Intermediate CA" <<<"$pages")" -eq 1
check "... and no page shows Other Root CA" bash -c "! grep -q 'Other Root CA' <<<\"\$0\"" "$pages"

# ---- re-resolution -------------------------------------------------------------
shim=$build/tests/resolve_shim.so
if [ ! -e "$shim" ]; then
	bad "re-resolution: $shim not built (make tests)"
elif ! command -v python3 >/dev/null; then
	echo "SKIP: re-resolution (python3 missing)"
else
	rp=$(free_port) lp4=$(free_port)
	cat >"$work/tag.py" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
while True:
    c, _ = s.accept()
    c.sendall(("backend=" + sys.argv[3] + "\n").encode())
    c.close()
PY
	python3 "$work/tag.py" 127.0.0.1 "$rp" one 2>/dev/null &
	pids+=($!)
	python3 "$work/tag.py" 127.0.0.2 "$rp" two 2>/dev/null &
	pids+=($!)
	wait_port "$rp" || bad "backend one did not start"
	for ((i = 0; i < 100; i++)); do # backend two, on 127.0.0.2
		(exec 3<>"/dev/tcp/127.0.0.2/$rp") 2>/dev/null && break
		sleep 0.1
	done
	echo "back.mtls.test 127.0.0.1" >"$work/hosts"
	cat >"$work/rr.conf" <<CONF
listen 127.0.0.1:$lp4 {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    upstream back
}
upstream back {
    target back.mtls.test:$rp
    resolve_interval 1
}
CONF
	# shellcheck disable=SC2016
	MTLS_TEST_HOSTS_FILE=$work/hosts LD_PRELOAD=$shim \
		ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0 \
		"$proxy" -c "$work/rr.conf" 2>"$work/rr.log" &
	pids+=($!)
	wait_port "$lp4" || bad "proxy did not start: $(cat "$work/rr.log")"
	lp2=$lp4
	through() { get | grep -o 'backend=[a-z]*'; }
	out=$(through)
	check "re-resolution: back.mtls.test first reaches 127.0.0.1 ($out)" test "$out" = backend=one
	echo "back.mtls.test 127.0.0.2" >"$work/hosts"
	check "re-resolution: the change is logged" \
		wait_in "$work/rr.log" "upstream back: target back.mtls.test:$rp now resolves to 127.0.0.2 (was 127.0.0.1)"
	out=$(through)
	check "re-resolution: the next connection reaches 127.0.0.2 ($out)" test "$out" = backend=two
	: >"$work/hosts"
	check "re-resolution: a failed lookup is logged and keeps the address" \
		wait_in "$work/rr.log" "upstream back: resolving target back.mtls.test:$rp failed (.*); keeping 127.0.0.2"
	out=$(through)
	check "re-resolution: ... connections still reach 127.0.0.2 ($out)" test "$out" = backend=two
	[ "${MTLS_TEST_VERBOSE:-0}" = 1 ] && cat "$work/rr.log"
fi

echo "$checks checks, $fails failed"
[ "$fails" -eq 0 ]
