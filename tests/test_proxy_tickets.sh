#!/usr/bin/env bash
# tests/test_proxy_tickets.sh BUILD - mtls-proxy's session_ticket_key: two
# proxies sharing one key file stand for two instances behind an L4 load
# balancer; openssl s_client saves a session from one (-sess_out) and
# offers it to the other (-sess_in), on TLS 1.2 and (when the build has it)
# TLS 1.3.
#
#   a session from proxy 1 resumes on proxy 2, the connection then relays
#   rotation: file [B, A] + SIGHUP: proxy 2 still resumes A's session, a new
#     session (made under B) resumes too; file [B] + SIGHUP: A's session is
#     refused (full handshake), B's resumes
#   a third proxy with the same file and another client policy (an allow
#     list that still admits the client) resumes neither
#   -t: a key file of the wrong size names FILE:LINE and the file; a key file
#     readable by others is warned about
#   tls13_resumption psk_ke (TLS 1.3, s_client -trace): warned about at start;
#     s_client -allow_no_dhe_kex resumes with a ServerHello without key_share,
#     a default s_client (psk_dhe_ke only) resumes with one, a proxy left at
#     the default (same keys) resumes the psk_ke proxy's tickets with
#     psk_dhe_ke, a psk_ke proxy with another client policy refuses them
#     (full handshake); on a build without the patch the listen block is
#     refused with the reason
# Every process started here is killed by PID on exit; every wait is bounded.
set -uo pipefail
build=${1:?usage: tests/test_proxy_tickets.sh BUILD_DIR}
build=$(cd "$build" && pwd)
pki=${MTLS_TEST_PKI:?run through tests/run.sh (MTLS_TEST_PKI unset)}
proxy=$build/mtls-proxy
[ -x "$proxy" ] || { echo "FAIL: $proxy not built (make examples)"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 0; }
command -v openssl >/dev/null || { echo "SKIP: openssl missing"; exit 0; }

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
setup_work tickets || exit 1
fails=0 checks=0

# Upstream: one line back, then close (so s_client -ign_eof ends).
cat >"$work/echo1.py" <<'PY'
import socket, socketserver, sys
class H(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(20)
        buf = b""
        while not buf.endswith(b"\n"):
            b = self.request.recv(4096)
            if not b:
                return
            buf += b
        self.request.sendall(buf)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
up=$(free_port)
python3 "$work/echo1.py" "$up" & pids+=($!)
wait_port "$up" || bad "upstream did not start"

openssl rand 80 >"$work/A" && openssl rand 80 >"$work/B" || exit 1
keys() { # keys A B...: the shared file holds these keys, in this order
	local k
	for k in "$@"; do cat "$work/$k"; done >"$work/tk.new"
	chmod 600 "$work/tk.new" && mv "$work/tk.new" "$work/tk"
}
keys A

conf() { # conf PORT [EXTRA...]
	local port=$1
	shift
	echo "listen 127.0.0.1:$port {"
	echo "    cert $pki/server-ec-chain.pem"
	echo "    key $pki/server-ec.key"
	echo "    client_ca $pki/ca.crt"
	echo "    session_ticket_key $work/tk"
	for x in "$@"; do echo "    $x"; done
	echo "    upstream echo"
	echo "}"
	printf 'upstream echo {\n    target 127.0.0.1:%s\n}\n' "$up"
}

start() { # start NAME PORT [EXTRA...]: sets last_pid
	local name=$1 port=$2
	shift 2
	conf "$port" "$@" >"$work/$name.conf"
	"$proxy" -c "$work/$name.conf" 2>"$work/$name.log" &
	pids+=($!)
	last_pid=$!
	wait_port "$port" || bad "proxy $name did not start: $(tail -3 "$work/$name.log")"
}

hup() { # hup NAME PID: reload, wait (bounded) for its log line
	local n i
	n=$(grep -c "reloaded" "$work/$1.log")
	kill -HUP "$2"
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c "reloaded" "$work/$1.log")" -gt "$n" ] && return 0
		sleep 0.1
	done
	bad "proxy $1 did not reload: $(tail -3 "$work/$1.log")"
}

# conn PORT VER OUT [SESS_IN]: one connection, "ping" echoed; prints
# "New" or "Reused" and "echo" when the line came back.
conn() {
	local port=$1 ver=$2 out=$3 in=${4:-} o
	local args=(-connect "127.0.0.1:$port" "-$ver" -CAfile "$pki/ca.crt"
		-cert "$pki/client-ec.crt" -key "$pki/client-ec.key"
		-cert_chain "$pki/int.crt"
		-servername localhost -ign_eof -sess_out "$out")
	[ -n "$in" ] && args+=(-sess_in "$in")
	o=$(printf 'ping\n' | timeout 20 openssl s_client "${args[@]}" 2>&1)
	grep -Eo '^(New|Reused), TLSv1\.[23]' <<<"$o" | head -1 | cut -d, -f1
	if grep -qx ping <<<"$o"; then
		echo echo
	else
		grep -v '^[A-Za-z0-9+/=]*$' <<<"$o" | tail -12 >&2
	fi
}

p1=$(free_port) p2=$(free_port) p3=$(free_port)
start one "$p1"
one_pid=$last_pid
start two "$p2"
two_pid=$last_pid
start three "$p3" "allow_uri spiffe://example.org/ns/test/sa/client"
three_pid=$last_pid

for ver in tls1_2 tls1_3; do
	keys A
	hup one "$one_pid"
	hup two "$two_pid"
	hup three "$three_pid"
	r=$(conn "$p1" "$ver" "$work/s1")
	if [ "$ver" = tls1_3 ] && ! grep -q New <<<"$r"; then
		echo "skip - TLS 1.3 not available in this build (${r//$'\n'/ })"
		continue
	fi
	check "$ver: full handshake on proxy 1 relays" \
		[ "$r" = "New"$'\n'"echo" ]
	r=$(conn "$p2" "$ver" "$work/x" "$work/s1")
	check "$ver: proxy 1's session resumes on proxy 2 (${r//$'\n'/ })" \
		[ "$r" = "Reused"$'\n'"echo" ]
	r=$(conn "$p3" "$ver" "$work/x" "$work/s1")
	check "$ver: not on a proxy with another client policy (${r//$'\n'/ })" \
		[ "$r" = "New"$'\n'"echo" ]

	# rotation: B first, A still listed
	keys B A
	hup one "$one_pid"
	hup two "$two_pid"
	r=$(conn "$p2" "$ver" "$work/x" "$work/s1")
	check "$ver: [B A]: A's session still resumes (${r//$'\n'/ })" \
		[ "$r" = "Reused"$'\n'"echo" ]
	r=$(conn "$p1" "$ver" "$work/s2")
	check "$ver: [B A]: new full handshake (${r//$'\n'/ })" [ "$r" = "New"$'\n'"echo" ]
	# A gone from proxy 2 only
	keys B
	hup two "$two_pid"
	r=$(conn "$p2" "$ver" "$work/x" "$work/s1")
	check "$ver: [B]: A's session is refused, full handshake (${r//$'\n'/ })" \
		[ "$r" = "New"$'\n'"echo" ]
	r=$(conn "$p2" "$ver" "$work/x" "$work/s2")
	check "$ver: [B]: B's session resumes (${r//$'\n'/ })" \
		[ "$r" = "Reused"$'\n'"echo" ]
done

# ---- tls13_resumption psk_ke -------------------------------------------------
# conn13 PORT OUT SESS_IN|"" [EXTRA...]: a TLS 1.3 connection traced; prints
# "New"/"Reused", "echo", then the ServerHello's extensions among key_share
# and pre_shared_key.
conn13() {
	local port=$1 out=$2 in=$3 o
	shift 3
	local args=(-connect "127.0.0.1:$port" -tls1_3 -CAfile "$pki/ca.crt"
		-cert "$pki/client-ec.crt" -key "$pki/client-ec.key"
		-cert_chain "$pki/int.crt" -servername localhost -ign_eof
		-sess_out "$out" -trace -msgfile "$out.trace" "$@")
	[ -n "$in" ] && args+=(-sess_in "$in")
	o=$(printf 'ping\n' | timeout 20 openssl s_client "${args[@]}" 2>&1)
	grep -Eo '^(New|Reused), TLSv1\.[23]' <<<"$o" | head -1 | cut -d, -f1
	grep -qx ping <<<"$o" && echo echo
	# the first ServerHello's extensions (a HelloRetryRequest would be
	# a ServerHello too: none is expected here)
	awk '/^ *ServerHello,/ { on = 1; next } on && /Record/ { exit }
		on && /extension_type=(key_share|psk)\(/ {
			sub(/.*extension_type=/, ""); sub(/\(.*/, "")
			print $0 == "psk" ? "pre_shared_key" : $0 }' \
		"$out.trace"
}
p4=$(free_port) p5=$(free_port) p6=$(free_port)
conf "$p4" "tls13_resumption psk_ke" >"$work/psk.conf"
out=$("$proxy" -t -c "$work/psk.conf" 2>&1)
if grep -q "is not available" <<<"$out"; then
	# 2.28, stock 3.6: refused, with the reason and the line
	check "no psk_ke in this build: tls13_resumption psk_ke refused with the reason" \
		grep -q "psk.conf:6: TLS 1.3 resumption without (EC)DHE (psk_ke) is not available with mbedTLS" <<<"$out"
	check "no psk_ke in this build: and its listen block skipped" \
		grep -q "listen 127.0.0.1:$p4 skipped" <<<"$out"
else
	check "psk_ke: -t warns that forward secrecy is lost" \
		grep -q "psk.conf:6: WARNING: tls13_resumption psk_ke: .*no forward secrecy" <<<"$out"
	start psk "$p4" "tls13_resumption psk_ke"
	start dhe "$p5"
	start psk3 "$p6" "tls13_resumption psk_ke" \
		"allow_uri spiffe://example.org/ns/test/sa/client"
	check "psk_ke: start-up warns that forward secrecy is lost" \
		grep -q "psk.conf:6: WARNING: tls13_resumption psk_ke: .*no forward secrecy" "$work/psk.log"
	r=$(conn13 "$p4" "$work/k1" "")
	check "psk_ke: first connection is a full handshake with a key share (${r//$'\n'/ })" \
		[ "$r" = "New"$'\n'"echo"$'\n'"key_share" ]
	r=$(conn13 "$p4" "$work/x" "$work/k1")
	check "psk_ke: default s_client (psk_dhe_ke only) resumes with a key share (${r//$'\n'/ })" \
		[ "$r" = "Reused"$'\n'"echo"$'\n'"key_share"$'\n'"pre_shared_key" ]
	r=$(conn13 "$p4" "$work/k2" "" -allow_no_dhe_kex)
	check "psk_ke: -allow_no_dhe_kex, full handshake (${r//$'\n'/ })" \
		[ "$r" = "New"$'\n'"echo"$'\n'"key_share" ]
	r=$(conn13 "$p4" "$work/x" "$work/k2" -allow_no_dhe_kex)
	check "psk_ke: -allow_no_dhe_kex resumes without a key share (${r//$'\n'/ })" \
		[ "$r" = "Reused"$'\n'"echo"$'\n'"pre_shared_key" ]
	r=$(conn13 "$p5" "$work/x" "$work/k2" -allow_no_dhe_kex)
	check "psk_ke: its ticket on a default proxy sharing its keys resumes with psk_dhe_ke (${r//$'\n'/ })" \
		[ "$r" = "Reused"$'\n'"echo"$'\n'"key_share"$'\n'"pre_shared_key" ]
	r=$(conn13 "$p6" "$work/x" "$work/k2" -allow_no_dhe_kex)
	check "psk_ke: refused by a psk_ke proxy with another client policy, full handshake (${r//$'\n'/ })" \
		[ "$r" = "New"$'\n'"echo"$'\n'"key_share" ]
	r=$(conn13 "$p5" "$work/k3" "" -allow_no_dhe_kex)
	r=$(conn13 "$p5" "$work/x" "$work/k3" -allow_no_dhe_kex)
	check "default proxy: -allow_no_dhe_kex still resumes with psk_dhe_ke (${r//$'\n'/ })" \
		[ "$r" = "Reused"$'\n'"echo"$'\n'"key_share"$'\n'"pre_shared_key" ]
fi
out=$(conf "$p4" "tls13_resumption none" >"$work/badkex.conf"; "$proxy" -t -c "$work/badkex.conf" 2>&1)
check "-t: tls13_resumption with another value is named with its line" \
	grep -q "badkex.conf:6: tls13_resumption is psk_dhe_ke or psk_ke" <<<"$out"

# -t and file problems
head -c 10 /dev/urandom >"$work/short"
chmod 600 "$work/short"
conf "$p1" | sed "s|session_ticket_key .*|session_ticket_key $work/short|" \
	>"$work/bad.conf"
out=$("$proxy" -t -c "$work/bad.conf" 2>&1)
check "-t: a 10-byte key file is named with its line" \
	grep -q "bad.conf:5: .*short: 10 bytes" <<<"$out"
conf "$p1" >"$work/open.conf"
chmod 644 "$work/tk"
out=$("$proxy" -t -c "$work/open.conf" 2>&1)
check "-t: a key file readable by others is warned about" \
	grep -q "tk is readable by others" <<<"$out"
chmod 600 "$work/tk"
out=$("$proxy" -t -c "$work/open.conf" 2>&1)
if grep -q "readable by others" <<<"$out"; then
	bad "-t: a key file of mode 600 is warned about"
else
	ok "-t: not when it is not"
fi

if [ "$fails" -ne 0 ] || [ -n "${MTLS_TEST_VERBOSE:-}" ]; then
	for f in "$work"/*.log; do
		echo "--- $(basename "$f")"
		tail -20 "$f"
	done
fi
echo "$checks checks, $fails failed"
[ "$fails" -eq 0 ]
