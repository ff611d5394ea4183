#!/usr/bin/env bash
# tests/test_proxy.sh BUILD - end-to-end tests of mtls-proxy ($BUILD/mtls-proxy)
# on loopback, against a copy of the test PKI in $MTLS_TEST_PKI (tests/run.sh).
#
#   -t: a good config -> 0; a typo -> 1 naming FILE:LINE; a missing key or a
#     client certificate used as server certificate -> 1 naming the file and
#     reason; examples/mtls-proxy.conf (with test credentials) -> 0
#   mTLS client -> proxy -> plain TCP echo (first target dead: round robin
#     skips it): 1 MiB of random bytes come back intact (sha256); the log line
#     names the client's subject and URI SAN and the byte counts
#   half-close: client close_notify -> FIN upstream -> backend EOF -> proxy
#     close_notify to the client; the connection ends with status=ok
#   refused clients (no certificate, revoked, not on the allow list): the log
#     says why
#   mTLS upstream (openssl s_server -Verify 1 -rev): data goes through; an
#     upstream whose CA is not trusted: nothing passes, the log says why
#   out of descriptors (ulimit -n 20): accepting pauses, then recovers
#   SIGTERM with a connection open: exits 0 after the 5 s grace, logging it
# Every process started here is killed by PID on exit; every wait is bounded.
# MTLS_TEST_VERBOSE=1 prints the proxy's log even when everything passes.
set -uo pipefail
build=${1:?usage: tests/test_proxy.sh BUILD_DIR}
build=$(cd "$build" && pwd)
pki=${MTLS_TEST_PKI:?run through tests/run.sh (MTLS_TEST_PKI unset)}
proxy=$build/mtls-proxy
[ -x "$proxy" ] || { echo "FAIL: $proxy not built (make examples)"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 0; }
command -v openssl >/dev/null || { echo "SKIP: openssl missing"; exit 0; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mtls-proxy-test.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
# A private copy: another run of tests/run.sh on the same BUILD regenerates
# $BUILD/pki, which would pull the CA out from under a running proxy.
cp -r "$pki" "$work/pki" || { echo "FAIL: cannot copy $pki"; exit 1; }
pki=$work/pki

fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION COMMAND...
	local d=$1; shift
	if "$@"; then ok "$d"; else bad "$d"; fi
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() { # wait_port PORT: up to 10 s for something to listen
	local i
	for ((i = 0; i < 100; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "nothing listens on port $1" >&2
	return 1
}

# A plain TCP echo backend: echoes every byte until EOF, then closes.
cat >"$work/echo.py" <<'PY'
import socketserver, sys
class H(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(65536)
            if not d:
                break
            self.request.sendall(d)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY

# A TLS client: client.py PORT CA CERT KEY IN OUT [LINES|close]
# Sends the bytes of IN and writes what comes back to OUT until as many
# bytes came back (or, with LINES, that many lines).  Non-blocking so
# sending and receiving overlap; 20 s overall.  "close": then sends
# close_notify and waits for the proxy's (exit 0 only if it comes, with no
# further data).
cat >"$work/client.py" <<'PY'
import select, ssl, socket, sys, time
port, ca, cert, key, inp, out = sys.argv[1:7]
mode = sys.argv[7] if len(sys.argv) > 7 else ""
lines = int(mode) if mode.isdigit() else 0
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(ca)
if cert != "-":
    ctx.load_cert_chain(cert, key)
data = open(inp, "rb").read()
s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
s = ctx.wrap_socket(s, server_hostname="localhost")
s.setblocking(False)
got, sent, end = bytearray(), 0, time.time() + 20
def done():
    return got.count(b"\n") >= lines if lines else len(got) >= len(data)
while not done() and time.time() < end:
    w = [s] if sent < len(data) else []
    select.select([s], w, [], 0.5)
    try:
        if sent < len(data):
            sent += s.send(data[sent:sent + 16384])
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        pass
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        pass
open(out, "wb").write(got)
if mode == "close":
    extra = b""
    try:
        s.unwrap()  # sends close_notify; may see the proxy's at once
        sys.exit(0)
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        pass
    while time.time() < end:
        select.select([s], [], [], 0.5)
        try:
            d = s.recv(65536)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            continue
        except ssl.SSLZeroReturnError:
            d = b""
        if not d:
            sys.exit(1 if extra else 0)
        extra += d
    sys.exit(1)
s.close()
PY

start_proxy() { # start_proxy CONF LOG: runs it, waits for its first port
	"$proxy" -c "$1" 2>"$2" &
	proxy_pid=$!
	pids+=("$proxy_pid")
}

echo_port=$(free_port)
px_port=$(free_port)
px2_port=$(free_port)
tls_port=$(free_port)
px3_port=$(free_port)
px4_port=$(free_port)
dead_port=$(free_port) # nothing listens: the round robin must skip it

python3 "$work/echo.py" "$echo_port" &
pids+=($!)

# ---- configuration -------------------------------------------------------
conf=$work/proxy.conf
cat >"$conf" <<EOF
# generated by tests/test_proxy.sh
log_level info
listen 127.0.0.1:$px_port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt       # client certificates required
    crl $pki/int.crl
    allow_uri_prefix spiffe://example.org/
    upstream echo
}
listen 127.0.0.1:$px2_port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    upstream tlsback
}
listen 127.0.0.1:$px3_port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca-bundle.pem
    allow_cn somebody.else
    upstream echo
}
listen 127.0.0.1:$px4_port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    upstream badtrust
}
upstream badtrust {          # the backend's CA is not this one
    target 127.0.0.1:$tls_port
    tls on
    cert $pki/client-ec-chain.pem
    key $pki/client-ec.key
    ca $pki/other-ca.crt
    server_name localhost
}
upstream echo {
    target 127.0.0.1:$dead_port
    target 127.0.0.1:$echo_port
    tls off
    idle_timeout 30
}
upstream tlsback {
    target 127.0.0.1:$tls_port
    tls on
    cert $pki/client-ec-chain.pem
    key $pki/client-ec.key
    ca $pki/ca-bundle.pem
    server_name localhost
    connect_timeout 5
}
EOF

out=$("$proxy" -t -c "$conf" 2>&1)
rc=$?
check "-t on a good config exits 0 (${out##*$'\n'})" test "$rc" -eq 0

sed 's/^    cert \(.*server-ec-chain\)/    cret \1/' "$conf" >"$work/typo.conf"
out=$("$proxy" -t -c "$work/typo.conf" 2>&1)
rc=$?
line=$(grep -n '^    cret' "$work/typo.conf" | head -1 | cut -d: -f1)
check "-t on a typo exits 1" test "$rc" -eq 1
check "the typo's message names file and line (${out##*$'\n'})" \
	grep -q "typo.conf:$line: unknown directive 'cret'" <<<"$out"

sed "s|client-ec.key|no-such.key|" "$conf" >"$work/nokey.conf"
out=$("$proxy" -t -c "$work/nokey.conf" 2>&1)
rc=$?
check "-t with a missing key exits 1" test "$rc" -eq 1
check "the message names the key file (${out##*$'\n'})" grep -q "no-such.key" <<<"$out"

sed "s|server-ec-chain.pem|client-ec-chain.pem|;s|server-ec.key|client-ec.key|" \
	"$conf" >"$work/eku.conf"
out=$("$proxy" -t -c "$work/eku.conf" 2>&1)
rc=$?
check "-t with a client certificate as server certificate exits 1 (${out##*$'\n'})" \
	test "$rc" -eq 1

# The documented example, with the test PKI under the names it uses.
mkdir -p "$work/example"
ln -s "$pki/server-ec-chain.pem" "$work/example/server.pem"
ln -s "$pki/server-ec.key" "$work/example/server.key"
ln -s "$pki/ca.crt" "$work/example/ca.crt"
ln -s "$pki/int.crl" "$work/example/int.crl"
ln -s "$pki/client-ec-chain.pem" "$work/example/client.pem"
ln -s "$pki/client-ec.key" "$work/example/client.key"
ln -s "$pki/ca-bundle.pem" "$work/example/upstream-ca.crt"
here=$(cd "$(dirname "$0")" && pwd)
cp "$here/../examples/mtls-proxy.conf" "$work/example/"
out=$("$proxy" -t -c "$work/example/mtls-proxy.conf" 2>&1)
rc=$?
check "-t accepts examples/mtls-proxy.conf (${out##*$'\n'})" test "$rc" -eq 0

# ---- mTLS client -> proxy -> plain echo ----------------------------------
log=$work/proxy.log
start_proxy "$conf" "$log"
wait_port "$px_port" || bad "proxy did not start: $(cat "$log")"
wait_port "$echo_port" || bad "echo backend did not start"

wait_log() { # wait_log PATTERN: up to 5 s for the proxy to log it
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q -- "$1" "$log" && return 0
		sleep 0.1
	done
	return 1
}

head -c 1048576 /dev/urandom >"$work/in.bin"
timeout 30 python3 "$work/client.py" "$px_port" "$pki/ca.crt" \
	"$pki/client-ec-chain.pem" "$pki/client-ec.key" "$work/in.bin" \
	"$work/out.bin"
check "client exits cleanly" test $? -eq 0
check "1 MiB echoed through the proxy unchanged (sha256)" \
	test "$(sha256sum <"$work/in.bin")" = "$(sha256sum <"$work/out.bin" 2>/dev/null)"
check "the log line names the client identity and the bytes" \
	wait_log 'subject="CN=client.test" uri="spiffe://example.org/ns/test/sa/client" upstream=echo .*bytes_to_upstream=1048576 bytes_to_client=1048576 .*status=ok'

# Half-close: the client's close_notify ends the upstream's input (FIN);
# the backend's EOF comes back to the client as close_notify; then the
# connection ends cleanly, long before the idle timeout.
head -c 5000 /dev/urandom >"$work/in2.bin"
timeout 30 python3 "$work/client.py" "$px_port" "$pki/ca.crt" \
	"$pki/client-ec-chain.pem" "$pki/client-ec.key" "$work/in2.bin" \
	"$work/out2.bin" close
check "close_notify from the client comes back as close_notify" test $? -eq 0
check "half-close: echoed intact, the connection ends cleanly" \
	wait_log 'bytes_to_upstream=5000 bytes_to_client=5000 .*status=ok'

# ---- refused clients -----------------------------------------------------
timeout 10 openssl s_client -connect "127.0.0.1:$px_port" \
	-CAfile "$pki/ca.crt" </dev/null >"$work/s_client.out" 2>&1
check "without a client certificate: refused, the log says why" \
	wait_log 'error="client: TLS handshake: client certificate required but not presented"'

timeout 10 openssl s_client -connect "127.0.0.1:$px_port" \
	-CAfile "$pki/ca.crt" -cert "$pki/client-revoked.crt" \
	-key "$pki/client-revoked.key" -cert_chain "$pki/int.crt" \
	</dev/null >"$work/s_client2.out" 2>&1
check "a revoked client certificate: refused, the log says why" \
	wait_log 'error="client: TLS handshake:.*revoked'

timeout 10 openssl s_client -connect "127.0.0.1:$px3_port" \
	-CAfile "$pki/ca.crt" -cert "$pki/client-ec.crt" \
	-key "$pki/client-ec.key" </dev/null >"$work/s_client3.out" 2>&1
check "a client not on the allow list: refused, the log says why" \
	wait_log "listen=127.0.0.1:$px3_port .*error=\"client: TLS handshake:.*CN=client.test"

# ---- mTLS client -> proxy -> mTLS backend ----------------------------------
openssl s_server -quiet -accept "$tls_port" -Verify 1 -CAfile "$pki/ca.crt" \
	-cert "$pki/server-ec.crt" -key "$pki/server-ec.key" -rev \
	>"$work/s_server.log" 2>&1 &
pids+=($!)
wait_port "$tls_port" || bad "openssl s_server did not start"
printf 'hello proxy\n' >"$work/line.txt"
timeout 30 python3 "$work/client.py" "$px2_port" "$pki/ca.crt" \
	"$pki/client-ec-chain.pem" "$pki/client-ec.key" "$work/line.txt" \
	"$work/line.out" 1
check "through an mTLS upstream, openssl s_server -rev answers ($(head -c 80 "$work/line.out" 2>/dev/null | tr -d '\n'))" \
	grep -q "yxorp olleh" "$work/line.out"

timeout 30 python3 "$work/client.py" "$px4_port" "$pki/ca.crt" \
	"$pki/client-ec-chain.pem" "$pki/client-ec.key" "$work/line.txt" \
	"$work/line4.out" 1
check "an upstream signed by an untrusted CA: no data passes" \
	test ! -s "$work/line4.out"
check "an upstream signed by an untrusted CA: the log says why" \
	wait_log "upstream=badtrust .*error=\"upstream 127.0.0.1:$tls_port: TLS handshake: .*"

# ---- out of file descriptors ---------------------------------------------
# With RLIMIT_NOFILE at 20 the proxy runs out of descriptors; it must pause
# accepting (not spin on a listener that stays readable) and recover.
lim_port=$(free_port)
cat >"$work/lim.conf" <<LIMEOF
listen 127.0.0.1:$lim_port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    upstream echo
}
upstream echo {
    target 127.0.0.1:$echo_port
}
LIMEOF
(ulimit -n 20 && exec "$proxy" -c "$work/lim.conf") 2>"$work/lim.log" &
lim_pid=$!
pids+=("$lim_pid")
wait_port "$lim_port" || bad "proxy (ulimit -n 20) did not start"
fds=()
for ((i = 0; i < 24; i++)); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$lim_port" && fds+=("$fd")
done
for ((i = 0; i < 30; i++)); do
	grep -q "pausing for 1 s" "$work/lim.log" && break
	sleep 0.1
done
check "out of descriptors: accepting pauses, and the log says so" \
	grep -q "Too many open files; pausing for 1 s" "$work/lim.log"
for fd in "${fds[@]}"; do exec {fd}>&-; done
timeout 30 python3 "$work/client.py" "$lim_port" "$pki/ca.crt" \
	"$pki/client-ec-chain.pem" "$pki/client-ec.key" "$work/in2.bin" \
	"$work/out3.bin"
check "out of descriptors: the proxy recovers once they are freed" \
	cmp -s "$work/in2.bin" "$work/out3.bin"
kill "$lim_pid"

# ---- SIGTERM -------------------------------------------------------------
# A connection left open (TCP only, mid-handshake) holds the exit up to the
# 5 s grace period, then is closed and logged.
exec 5<>"/dev/tcp/127.0.0.1/$px_port"
sleep 0.2
kill -TERM "$proxy_pid"
for ((i = 0; i < 80; i++)); do
	kill -0 "$proxy_pid" 2>/dev/null || break
	sleep 0.1
done
wait "$proxy_pid"
rc=$?
exec 5>&-
check "SIGTERM: the proxy exits 0 within 8 s (rc $rc)" test "$rc" -eq 0
check "SIGTERM: the open connection is closed and logged" \
	grep -q 'error="proxy shutting down"' "$log"

if [ "$fails" -ne 0 ] || [ -n "${MTLS_TEST_VERBOSE:-}" ]; then
	echo "--- proxy log"
	cat "$log"
	echo "--- s_server log"
	cat "$work/s_server.log" 2>/dev/null
fi
[ "$fails" -eq 0 ]
