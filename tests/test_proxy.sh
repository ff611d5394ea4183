#!/usr/bin/env bash
# tests/test_proxy.sh BUILD - end-to-end tests of mtls-proxy ($BUILD/mtls-proxy)
# on loopback, against a copy of the test PKI in $MTLS_TEST_PKI (tests/run.sh).
#
#   -t: a good config -> 0; a typo -> 1 naming FILE:LINE; a missing key or a
#     client certificate used as server certificate -> 1 naming the file and
#     reason; three errors in three blocks -> all three named;
#     examples/mtls-proxy.conf (with test credentials) -> 0
#   the listening lines say TCP, TLS (no client certificate) or mTLS
#   mTLS client -> proxy -> plain TCP echo (first target dead: round robin
#     skips it): 1 MiB of random bytes come back intact (sha256); the log line
#     names the client's subject and URI SAN and the byte counts
#   half-close: client close_notify -> FIN upstream -> backend EOF -> proxy
#     close_notify to the client; the connection ends with status=ok
#   clients ending after a request/response without close_notify, with a
#     reset, with data unread, or with close_notify: status=ok and end=;
#     a reset before any data: status=error
#   refused clients (no certificate, revoked, not on the allow list): the log
#     says why
#   mTLS upstream (openssl s_server -Verify 1 -rev): data goes through; an
#     upstream whose CA is not trusted: nothing passes, the log says why
#   out of descriptors (ulimit -n 20): accepting pauses, then recovers
#   SIGTERM with a connection open: exits 0 after the 5 s grace, logging it
#   SIGHUP: cert A -> B with a connection open (it still echoes, new clients
#     see B, a new listener opens); a broken config -> file:line logged, B
#     still served; a removed listener closes
#   SNI hosts: exact and wildcard host blocks pick certificate and upstream;
#     no SNI -> default; unknown name -> refused or default (unknown_host)
#   PROXY v2: a python backend parses the header and TLVs and echoes them
#   health checks: TCP, HTTP GET (2xx/404) and mTLS; a killed target is
#     marked down and skipped, marked up again when restarted
#   start-up: an upstream with a missing key and a listener with a client
#     certificate are skipped (file:line logged; a listener using the skipped
#     upstream too), the rest serves; --strict exits 1; -t lists all, exits 1
#   options: tls_versions (1.3 on a 2.28 build: error naming the line), alpn
#     on a listener (python client sees http/1.1), insecure_skip_verify to an
#     upstream of an untrusted CA (data passes, warning names the upstream)
#   workers 2: 20 sequential connections served by two worker PIDs (worker=
#     in the log); a worker killed -9 is restarted; SIGTERM exits 0
#   curl -> proxy -> nginx with ssl_verify_client on: nginx reports the DN and
#     fingerprint of the proxy's client certificate (not curl's)
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
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

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
px5_port=$(free_port)
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
listen 127.0.0.1:$px5_port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    upstream oneway
}
upstream oneway {            # TLS without a client certificate: not mTLS
    target 127.0.0.1:$tls_port
    tls on
    ca $pki/ca.crt
    server_name localhost
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
rc=0; "$proxy" -l debug -t -c "$conf" >/dev/null 2>&1 || rc=$?
check "-l debug -t on the good config exits 0" test "$rc" -eq 0
rc=0; "$proxy" -l loud -t -c "$conf" >/dev/null 2>&1 || rc=$?
check "-l with an unknown level is a usage error (2)" test "$rc" -eq 2
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

# 4294975739 is 2^32 + 8443: it must not wrap to a port that works.
sed "s|^listen 127.0.0.1:$px_port {|listen 127.0.0.1:4294975739 {|" "$conf" \
	>"$work/port.conf"
out=$("$proxy" -t -c "$work/port.conf" 2>&1)
rc=$?
check "-t with a port past 2^32 exits 1, bad port (${out##*$'\n'})" \
	bash -c "[ $rc -eq 1 ] && grep -q \"port.conf:3: .*bad port '4294975739'\" <<<\"\$0\"" "$out"

# -t names every problem of the file, not just the first: three
# independent errors in three blocks (a typo in a listen block, a bad port
# in an upstream, a listen block naming an upstream that does not exist).
cat >"$work/three.conf" <<EOF
listen 127.0.0.1:$px_port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_cq $pki/ca.crt
    upstream echo
}
upstream echo {
    target 127.0.0.1:77777
}
listen 127.0.0.1:$px2_port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    upstream nowhere
}
EOF
out=$("$proxy" -t -c "$work/three.conf" 2>&1)
rc=$?
check "-t with three errors in three blocks exits 1" test "$rc" -eq 1
check "-t names the typo in the first listen block" \
	grep -q "three.conf:4: unknown directive 'client_cq' in listen block" <<<"$out"
check "-t names the bad port in the upstream block" \
	grep -q "three.conf:8: .*bad port '77777'" <<<"$out"
check "-t names the unknown upstream of the second listen block" \
	grep -q "three.conf:13: no upstream named 'nowhere'" <<<"$out"
check "-t counts them: 3 problem(s) ($(tail -1 <<<"$out"))" \
	grep -q "three.conf: 3 problem(s)" <<<"$out"

# The documented example: its paths are the demo PKI's, relative to the
# file (../build/demo-pki/...); the test PKI stands in for it.
# (tests/test_example_conf.sh runs the header's own command.)
mkdir -p "$work/example/examples" "$work/example/build"
ln -s "$pki" "$work/example/build/demo-pki"
here=$(cd "$(dirname "$0")" && pwd)
cp "$here/../examples/mtls-proxy.conf" "$work/example/examples/"
out=$("$proxy" -t -c "$work/example/examples/mtls-proxy.conf" 2>&1)
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

# What each listener's upstream really is: mTLS only with a client
# certificate.
check "listening line: a plain upstream is TCP" \
	wait_log "listening on 127.0.0.1:$px_port -> upstream echo (TCP)"
check "listening line: an upstream with tls on and a client certificate is mTLS" \
	wait_log "listening on 127.0.0.1:$px2_port -> upstream tlsback (mTLS)"
check "listening line: an upstream with tls on and no client certificate is TLS" \
	wait_log "listening on 127.0.0.1:$px5_port -> upstream oneway (TLS)"

head -c 1048576 /dev/urandom >"$work/in.bin"
timeout 30 python3 "$work/client.py" "$px_port" "$pki/ca.crt" \
	"$pki/client-ec-chain.pem" "$pki/client-ec.key" "$work/in.bin" \
	"$work/out.bin"
check "client exits cleanly" test $? -eq 0
check "1 MiB echoed through the proxy unchanged (sha256)" \
	test "$(sha256sum <"$work/in.bin")" = "$(sha256sum <"$work/out.bin" 2>/dev/null)"
check "the log line names the client identity and the bytes" \
	wait_log 'host=default sni="localhost" subject="CN=client.test" id="spiffe://example.org/ns/test/sa/client" upstream=echo .*bytes_to_upstream=1048576 bytes_to_client=1048576 .*status=ok'

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

# How a connection ended is a field (end=); one whose bytes went both ways
# and then ended is status=ok, even when the client hangs up without
# close_notify (FIN) or resets the socket (most HTTP clients): no warning.
# Before data flowed, the same reset stays an error.  Each client prints
# its local port, which names its line in the log (client=127.0.0.1:PORT).
cat >"$work/abrupt.py" <<'PY'
import os, socket, ssl, struct, sys
sys.path.insert(0, os.environ["MTLS_TESTS"])
from peers import recv_exact, tls_connect
mode, port = sys.argv[1], int(sys.argv[2])
s = tls_connect(port)
print(s.getsockname()[1])
if mode != "early":
    s.sendall(b"x" * 2000)                 # the request
    assert recv_exact(s, 2000) == b"x" * 2000  # the response
if mode == "unread":
    s.sendall(b"y" * 500)                  # its echo is never read
if mode in ("reset", "early"):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
if mode == "notify":
    s.unwrap()                             # close_notify
s.close()                                  # FIN, or RST (linger 0, unread data)
PY
abrupt() { # abrupt MODE: its client port, empty if it failed
	MTLS_TESTS=$(cd "$(dirname "$0")" && pwd) PKI=$pki \
		timeout 20 python3 "$work/abrupt.py" "$1" "$px_port" 2>>"$work/abrupt.err"
}
p=$(abrupt fin)
check "a client closing without close_notify after its exchange: status=ok end=eof end_by=client" \
	wait_log "info: conn client=127.0.0.1:$p .*bytes_to_upstream=2000 bytes_to_client=2000 .*status=ok end=eof end_by=client"
p=$(abrupt reset)
check "a client resetting after its exchange: status=ok end=reset end_by=client, not a warning" \
	wait_log "info: conn client=127.0.0.1:$p .*bytes_to_upstream=2000 bytes_to_client=2000 .*status=ok end=reset end_by=client detail=\"client: .*reset"
p=$(abrupt unread)
check "a client closing with data unread after its exchange: status=ok" \
	wait_log "info: conn client=127.0.0.1:$p .*bytes_to_upstream=2[05]00 .*status=ok end=\(eof\|reset\) end_by=client"
p=$(abrupt notify)
check "a client sending close_notify after its exchange: status=ok end=close_notify" \
	wait_log "info: conn client=127.0.0.1:$p .*bytes_to_upstream=2000 bytes_to_client=2000 .*status=ok end=close_notify end_by=client"
p=$(abrupt early)
check "a client resetting before any data: still an error" \
	wait_log "warn: conn client=127.0.0.1:$p .*bytes_to_upstream=0 .*status=error end=reset end_by=client error=\"client"
[ -s "$work/abrupt.err" ] && sed 's/^/    | /' "$work/abrupt.err" | head -20

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

# ---- helpers for the sections below ---------------------------------------
# tag.py PORT NAME: says "backend=NAME" on connect, then echoes.
cat >"$work/tag.py" <<'PY'
import socketserver, sys
class H(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(b"backend=" + sys.argv[2].encode() + b"\n")
        while True:
            d = self.request.recv(65536)
            if not d:
                break
            self.request.sendall(d)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
# sni.py PORT CA CERT KEY SNI|-: handshakes (CA-verified, name unchecked),
# prints "cn=<server CN> <first line from the backend>" or "refused: why".
cat >"$work/sni.py" <<'PY'
import socket, ssl, sys
port, ca, cert, key, sni = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.load_verify_locations(ca)
if cert != "-":
    ctx.load_cert_chain(cert, key)
try:
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
    s = ctx.wrap_socket(s, server_hostname=None if sni == "-" else sni)
    cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
    line = b""
    while not line.endswith(b"\n"):
        d = s.recv(1)
        if not d:
            break
        line += d
    print("cn=%s %s" % (cn, line.decode().strip()))
except (ssl.SSLError, OSError) as e:
    print("refused: %s" % e)
PY
fingerprint() { # fingerprint PORT [SNI]: SHA-256 of the certificate served
	timeout 10 openssl s_client -connect "127.0.0.1:$1" ${2:+-servername "$2"} \
		-cert "$pki/client-ec.crt" -key "$pki/client-ec.key" \
		-showcerts </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 2>/dev/null
}
wait_in() { # wait_in FILE PATTERN: up to 8 s for FILE to contain it
	local i
	for ((i = 0; i < 80; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
extra_logs=()

# ---- SIGHUP reload ---------------------------------------------------------
# Cert A is served; a connection stays open; the files and the config change
# to cert B (and a second listener) and SIGHUP: new clients see B, the old
# connection still echoes, the new listener answers.  Then a broken config
# on SIGHUP: the log names file and line, and B is still served.
rl_port=$(free_port)
rl2_port=$(free_port)
mkdir -p "$work/rl"
cp "$pki/server-ec-chain.pem" "$work/rl/server.pem"
cp "$pki/server-ec.key" "$work/rl/server.key"
rl_conf() { # rl_conf [EXTRA_LISTEN_PORT] [KEY]
	{
		echo "listen 127.0.0.1:$rl_port {"
		echo "    cert server.pem"
		echo "    key ${2:-server.key}"
		echo "    client_ca $pki/ca.crt"
		echo "    upstream echo"
		echo "}"
		if [ -n "${1:-}" ]; then
			echo "listen 127.0.0.1:$1 {"
			echo "    cert server.pem"
			echo "    key server.key"
			echo "    upstream echo"
			echo "}"
		fi
		echo "upstream echo {"
		echo "    target 127.0.0.1:$echo_port"
		echo "}"
	} >"$work/rl/proxy.conf"
}
rl_conf
rl_log=$work/rl.log
extra_logs+=("$rl_log")
"$proxy" -c "$work/rl/proxy.conf" 2>"$rl_log" &
rl_pid=$!
pids+=("$rl_pid")
wait_port "$rl_port" || bad "reload proxy did not start: $(cat "$rl_log")"
fp_a=$(openssl x509 -noout -fingerprint -sha256 -in "$pki/server-ec.crt")
fp_b=$(openssl x509 -noout -fingerprint -sha256 -in "$pki/wild-server.crt")
check "reload: cert A served at start" test "$(fingerprint "$rl_port")" = "$fp_a"
# The long-lived connection: one line now, one after the reload.
cat >"$work/long.py" <<'PY'
import os, socket, ssl, sys, time
port, ca, cert, key, flag, out = sys.argv[1:7]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(ca)
ctx.load_cert_chain(cert, key)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port)), timeout=20),
                    server_hostname="localhost")
res = []
for word, wait in ((b"before\n", False), (b"after\n", True)):
    end = time.time() + 20
    while wait and not os.path.exists(flag) and time.time() < end:
        time.sleep(0.05)
    s.sendall(word)
    got = b""
    while not got.endswith(b"\n"):
        d = s.recv(100)
        if not d:
            break
        got += d
    res.append(got.decode().strip())
    open(out + ".1", "w").close()  # the first line is through
open(out, "w").write(" ".join(res) + "\n")
PY
timeout 40 python3 "$work/long.py" "$rl_port" "$pki/ca.crt" \
	"$pki/client-ec-chain.pem" "$pki/client-ec.key" "$work/rl/go" \
	"$work/rl/long.out" &
long_pid=$!
pids+=("$long_pid")
wait_in_file() { local i; for ((i = 0; i < 100; i++)); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }
wait_in_file "$work/rl/long.out.1" || bad "reload: the long-lived connection did not start"
cat "$pki/wild-server.crt" "$pki/int.crt" >"$work/rl/server.pem"
cp "$pki/wild-server.key" "$work/rl/server.key"
rl_conf "$rl2_port"
kill -HUP "$rl_pid"
check "reload: the log says reloaded, one listener kept and one opened" \
	wait_in "$rl_log" "reloaded .*1 listener(s) kept, 1 opened, 0 closed"
check "reload: a new client sees cert B" test "$(fingerprint "$rl_port")" = "$fp_b"
check "reload: the new listener serves cert B" test "$(fingerprint "$rl2_port")" = "$fp_b"
touch "$work/rl/go"
wait "$long_pid"
check "reload: the connection opened before it still echoes ($(cat "$work/rl/long.out" 2>/dev/null))" \
	grep -qx "before after" "$work/rl/long.out"
rl_conf "" no-such.key
kill -HUP "$rl_pid"
check "reload: a broken config is refused, the log names file:line and why" \
	wait_in "$rl_log" "reload failed: .*proxy.conf:3: .*no-such.key.*; still serving the previous configuration"
check "reload: after the failed reload cert B is still served" \
	test "$(fingerprint "$rl_port")" = "$fp_b"
check "reload: ... and the second listener is still open" \
	test "$(fingerprint "$rl2_port")" = "$fp_b"
rl_conf
kill -HUP "$rl_pid"
check "reload: a removed listener is closed" \
	wait_in "$rl_log" "reloaded .*1 listener(s) kept, 0 opened, 1 closed"
check "reload: its port no longer answers" \
	bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$rl2_port) 2>/dev/null"
kill "$rl_pid"

# ---- SNI hosts ---------------------------------------------------------------
sni_port=$(free_port)
sni2_port=$(free_port)
tag_d=$(free_port) tag_a=$(free_port) tag_w=$(free_port)
python3 "$work/tag.py" "$tag_d" default 2>/dev/null & pids+=($!)
python3 "$work/tag.py" "$tag_a" admin 2>/dev/null & pids+=($!)
python3 "$work/tag.py" "$tag_w" wild 2>/dev/null & pids+=($!)
cat "$pki/admin-server.crt" "$pki/int.crt" >"$work/admin-chain.pem"
cat "$pki/wild-server.crt" "$pki/int.crt" >"$work/wild-chain.pem"
for port in $sni_port $sni2_port; do
	cat <<EOF
listen 127.0.0.1:$port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    unknown_host $([ "$port" = "$sni_port" ] && echo refuse || echo default)
    upstream dflt
    host admin.example.com {
        cert $work/admin-chain.pem
        key $pki/admin-server.key
        client_ca $pki/ca.crt
        client_auth require
        allow_uri spiffe://example.org/ns/test/sa/client
        upstream admin
    }
    host *.example.com {
        cert $work/wild-chain.pem
        key $pki/wild-server.key
        upstream wild
    }
}
EOF
done >"$work/sni.conf"
cat >>"$work/sni.conf" <<EOF
upstream dflt {
    target 127.0.0.1:$tag_d
}
upstream admin {
    target 127.0.0.1:$tag_a
}
upstream wild {
    target 127.0.0.1:$tag_w
}
EOF
out=$("$proxy" -t -c "$work/sni.conf" 2>&1)
check "SNI: -t accepts host blocks (${out##*$'\n'})" test $? -eq 0
sed 's/^        upstream wild/        upstream nowhere/' "$work/sni.conf" >"$work/sni-bad.conf"
out=$("$proxy" -t -c "$work/sni-bad.conf" 2>&1)
check "SNI: a host naming an unknown upstream: file:line ($out)" \
	grep -q "sni-bad.conf:[0-9]*: no upstream named 'nowhere'" <<<"$out"
sni_log=$work/sni.log
extra_logs+=("$sni_log")
"$proxy" -c "$work/sni.conf" 2>"$sni_log" &
pids+=($!)
wait_port "$sni_port" && wait_port "$sni2_port" && wait_port "$tag_w" ||
	bad "SNI proxy did not start: $(cat "$sni_log")"
sni() { timeout 20 python3 "$work/sni.py" "$1" "$pki/ca.crt" \
	"$pki/client-ec-chain.pem" "$pki/client-ec.key" "$2"; }
out=$(sni "$sni_port" admin.example.com)
check "SNI: admin.example.com -> admin cert, admin upstream ($out)" \
	test "$out" = "cn=admin.example.com backend=admin"
out=$(sni "$sni_port" api.example.com)
check "SNI: api.example.com -> wildcard cert, wild upstream ($out)" \
	test "$out" = "cn=*.example.com backend=wild"
out=$(sni "$sni_port" -)
check "SNI: no SNI -> the listen block's cert and upstream ($out)" \
	test "$out" = "cn=localhost backend=default"
out=$(sni "$sni_port" a.b.example.com)
check "SNI: unknown name with unknown_host refuse: refused ($out)" \
	grep -q "^refused" <<<"$out"
out=$(sni "$sni2_port" other.test)
check "SNI: unknown name with unknown_host default: default host ($out)" \
	test "$out" = "cn=localhost backend=default"
out=$(timeout 20 python3 "$work/sni.py" "$sni_port" "$pki/ca.crt" - - admin.example.com)
check "SNI: admin host without a client certificate: no data ($out)" \
	bash -c "! grep -q backend= <<<'$out'"
check "SNI: ... logged against the host that refused it and that host's upstream" \
	wait_in "$sni_log" "host=admin.example.com sni=\"admin.example.com\" .*upstream=admin .*error=\"client: TLS handshake: client certificate required"
fp=$(fingerprint "$sni_port" admin.example.com)
check "SNI: openssl s_client -servername admin.example.com sees admin-server.crt" \
	test "$fp" = "$(openssl x509 -noout -fingerprint -sha256 -in "$pki/admin-server.crt")"
check "SNI: the log line carries host=, sni= and the host's upstream" \
	wait_in "$sni_log" "host=admin.example.com sni=\"admin.example.com\" .*upstream=admin .*status=ok"

# ---- PROXY protocol v2 ---------------------------------------------------------
# Unit test of the pure header writer (examples/mtls-proxy/proxyproto.c).
cat >"$work/pp2_unit.c" <<'C'
#include "proxyproto.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
static int fails;
#define T(c) do { if (!(c)) { printf("pp2 unit: line %d: %s\n", __LINE__, #c); fails++; } } while (0)
int main(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(1234)},
	                   b = {.sin_family = AF_INET, .sin_port = htons(443)};
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(5)},
	                    b6 = {.sin6_family = AF_INET6, .sin6_port = htons(6)};
	struct pxy_pp2_tls t = {1, 1, "TLSv1.3", "cn", "spiffe://x/y"};
	static const unsigned char want4[] = {
	    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
	    0x21, 0x11, 0x00, 0x0C, 10, 0, 0, 1, 10, 0, 0, 2, 0x04, 0xD2, 0x01, 0xBB};
	unsigned char out[PXY_PP2_MAX];
	size_t n;

	inet_pton(AF_INET, "10.0.0.1", &a.sin_addr);
	inet_pton(AF_INET, "10.0.0.2", &b.sin_addr);
	n = pxy_pp2_header(out, sizeof(out), (void *)&a, (void *)&b, NULL);
	T(n == sizeof(want4) && memcmp(out, want4, n) == 0);
	n = pxy_pp2_header(out, sizeof(out), (void *)&a, (void *)&b, &t);
	/* + SSL TLV (3 + 5 + 3+7 + 3+2) + URI TLV (3 + 12) */
	T(n == 28 + 23 + 15 && out[14] == 0 && out[15] == n - 16);
	T(out[28] == 0x20 && out[31] == 0x03 && out[35] == 0x00);
	T(out[28 + 23] == 0xE0 && memcmp(out + n - 12, "spiffe://x/y", 12) == 0);
	t.verified = 0;
	n = pxy_pp2_header(out, sizeof(out), (void *)&a, (void *)&b, &t);
	T(out[35] == 1);
	n = pxy_pp2_header(out, sizeof(out), (void *)&a6, (void *)&b6, NULL);
	T(n == 16 + 36 && out[13] == 0x21 && out[51] == 6);
	n = pxy_pp2_header(out, sizeof(out), (void *)&a, (void *)&b6, NULL);
	T(n == 16 && out[13] == 0x00);
	T(pxy_pp2_header(out, 27, (void *)&a, (void *)&b, NULL) == 0);
	T(pxy_pp2_header(out, 28, (void *)&a, (void *)&b, NULL) == 28);
	T(pxy_pp2_header(NULL, 100, (void *)&a, (void *)&b, NULL) == 0);
	T(pxy_pp2_header(out, 100, NULL, (void *)&b, NULL) == 0);
	return fails != 0;
}
C
src=$(cd "$(dirname "$0")/../examples/mtls-proxy" && pwd)
if ${CC:-cc} -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -I"$src" \
	-o "$work/pp2_unit" "$work/pp2_unit.c" "$src/proxyproto.c"; then
	check "PROXY v2: unit test of the header writer (IPv4 bytes, TLVs, IPv6, mixed, short buffer, NULL)" \
		"$work/pp2_unit"
else
	bad "PROXY v2: unit test does not compile"
fi
# pp2.py PORT: parses the v2 header, answers one line with what it found,
# then echoes.
cat >"$work/pp2.py" <<'PY'
import socket, socketserver, struct, sys
SIG = b"\r\n\r\n\x00\r\nQUIT\n"
def recv_n(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b
def tlvs(b):
    while b:
        t, n = b[0], struct.unpack("!H", b[1:3])[0]
        yield t, b[3:3 + n]
        b = b[3 + n:]
class H(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        h = recv_n(s, 16)
        if h[:12] != SIG:
            s.sendall(b"bad signature\n"); return
        ver, fam, n = h[12], h[13], struct.unpack("!H", h[14:16])[0]
        body = recv_n(s, n)
        f = ["ver=%02x" % ver, "fam=%02x" % fam]
        if fam == 0x11:
            src, dst = socket.inet_ntop(socket.AF_INET, body[:4]), socket.inet_ntop(socket.AF_INET, body[4:8])
            sp, dp = struct.unpack("!HH", body[8:12]); rest = body[12:]
        elif fam == 0x21:
            src, dst = socket.inet_ntop(socket.AF_INET6, body[:16]), socket.inet_ntop(socket.AF_INET6, body[16:32])
            sp, dp = struct.unpack("!HH", body[32:36]); rest = body[36:]
        else:
            src = dst = "?"; sp = dp = 0; rest = body
        f += ["src=%s:%d" % (src, sp), "dst=%s:%d" % (dst, dp)]
        for t, v in tlvs(rest):
            if t == 0x20:
                f += ["ssl_client=%d" % v[0], "verify=%d" % struct.unpack("!I", v[1:5])[0]]
                for st, sv in tlvs(v[5:]):
                    f.append({0x21: "version", 0x22: "cn"}.get(st, "sub%02x" % st) + "=" + sv.decode())
            elif t == 0xE0:
                f.append("uri=" + v.decode())
            else:
                f.append("tlv%02x" % t)
        s.sendall((" ".join(f) + "\n").encode())
        while True:
            d = s.recv(65536)
            if not d:
                break
            s.sendall(d)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pp_port=$(free_port)
ppb_port=$(free_port)
python3 "$work/pp2.py" "$ppb_port" 2>/dev/null & pids+=($!)
cat >"$work/pp.conf" <<EOF
listen 127.0.0.1:$pp_port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    upstream pp
}
upstream pp {
    target 127.0.0.1:$ppb_port
    proxy_protocol v2
}
EOF
pp_log=$work/pp.log
extra_logs+=("$pp_log")
"$proxy" -c "$work/pp.conf" 2>"$pp_log" &
pids+=($!)
wait_port "$pp_port" && wait_port "$ppb_port" || bad "PROXY v2 proxy did not start"
printf 'hello\n' >"$work/pp.in"
timeout 20 python3 "$work/client.py" "$pp_port" "$pki/ca.crt" \
	"$pki/client-ec-chain.pem" "$pki/client-ec.key" "$work/pp.in" \
	"$work/pp.out" 2
pp_line=$(head -1 "$work/pp.out" 2>/dev/null)
echo "     backend parsed: $pp_line"
check "PROXY v2: version/command 0x21, TCP over IPv4, listener address" \
	grep -q "^ver=21 fam=11 src=127.0.0.1:[0-9]* dst=127.0.0.1:$pp_port " <<<"$pp_line"
check "PROXY v2: SSL TLV: TLS + certificate, verified, version, CN" \
	grep -q "ssl_client=3 verify=0 version=TLSv1.[23] cn=client.test" <<<"$pp_line"
check "PROXY v2: custom TLV 0xE0 carries the URI SAN" \
	grep -q "uri=spiffe://example.org/ns/test/sa/client$" <<<"$pp_line"
check "PROXY v2: the payload follows the header" \
	test "$(sed -n 2p "$work/pp.out")" = "hello"
check "PROXY v2: bytes_to_upstream counts the payload only" \
	wait_in "$pp_log" "upstream=pp .*bytes_to_upstream=6 "

# ---- health checks -------------------------------------------------------------
h1=$(free_port) h2=$(free_port) hw=$(free_port) hc_port=$(free_port)
python3 "$work/tag.py" "$h1" one 2>/dev/null & h1_pid=$!; pids+=($h1_pid)
python3 "$work/tag.py" "$h2" two 2>/dev/null & pids+=($!)
mkdir -p "$work/www" && echo ok >"$work/www/healthz"
(cd "$work/www" && exec python3 -m http.server --bind 127.0.0.1 "$hw") \
	>/dev/null 2>&1 & pids+=($!)
wait_port "$h1" && wait_port "$h2" && wait_port "$hw" || bad "health backends did not start"
cat >"$work/hc.conf" <<EOF
listen 127.0.0.1:$hc_port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    upstream pair
}
upstream pair {
    target 127.0.0.1:$h1
    target 127.0.0.1:$h2
    health_interval 1
    connect_timeout 2
}
upstream web_ok {
    target 127.0.0.1:$hw
    health_interval 1
    health_http_get /healthz
}
upstream web_404 {
    target 127.0.0.1:$hw
    health_interval 1
    health_http_get /missing
}
upstream tlsback {
    target 127.0.0.1:$tls_port
    tls on
    cert $pki/client-ec-chain.pem
    key $pki/client-ec.key
    ca $pki/ca-bundle.pem
    server_name localhost
    health_interval 1
}
EOF
hc_log=$work/hc.log
extra_logs+=("$hc_log")
"$proxy" -c "$work/hc.conf" 2>"$hc_log" &
pids+=($!)
wait_port "$hc_port" || bad "health proxy did not start"
check "health: HTTP GET answered 404: target marked down, the log says why" \
	wait_in "$hc_log" "upstream web_404: target 127.0.0.1:$hw is down: GET /missing: HTTP status 404"
kill "$h1_pid"; wait "$h1_pid" 2>/dev/null
check "health: a killed target is marked down" \
	wait_in "$hc_log" "upstream pair: target 127.0.0.1:$h1 is down: Connection refused"
hc_out=""
for i in 1 2 3 4; do
	hc_out+="$(sni "$hc_port" -) "
done
check "health: round robin skips it, all traffic goes to the other ($hc_out)" \
	test "$hc_out" = "cn=localhost backend=two cn=localhost backend=two cn=localhost backend=two cn=localhost backend=two "
check "health: ... and no connection tried the dead target" \
	bash -c "! grep -q 'target=127.0.0.1:$h1 .*error' '$hc_log'"
python3 "$work/tag.py" "$h1" one 2>/dev/null & pids+=($!)
check "health: restarted, it is marked up again" \
	wait_in "$hc_log" "upstream pair: target 127.0.0.1:$h1 is up again"
sleep 1.5
check "health: the passing HTTP and mTLS checks never mark down" \
	bash -c "! grep -q 'upstream \(web_ok\|tlsback\): .* is down' '$hc_log'"

# ---- start-up: what fails validation is skipped; --strict; -t --------------
sk_ok=$(free_port)
sk_bad=$(free_port)
sk_cert=$(free_port)
cat >"$work/skip.conf" <<EOF
listen 127.0.0.1:$sk_ok {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    upstream echo
}
listen 127.0.0.1:$sk_bad {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    upstream badup
}
listen 127.0.0.1:$sk_cert {
    cert $pki/client-ec-chain.pem
    key $pki/client-ec.key
    client_ca $pki/ca.crt
    upstream echo
}
upstream echo {
    target 127.0.0.1:$echo_port
}
upstream badup {
    target 127.0.0.1:$echo_port
    tls on
    cert $pki/client-ec-chain.pem
    key $pki/no-such.key
    ca $pki/ca.crt
}
EOF
sk_keyline=$(grep -n 'no-such.key' "$work/skip.conf" | cut -d: -f1)
sk_l2=$(grep -n "listen 127.0.0.1:$sk_bad" "$work/skip.conf" | cut -d: -f1)
sk_l3=$(grep -n "client-ec-chain.pem" "$work/skip.conf" | head -1 | cut -d: -f1)
sk_l3k=$((sk_l3 + 1))
out=$("$proxy" -t -c "$work/skip.conf" 2>&1)
rc=$?
check "start-up: -t reports every problem and exits 1 (rc $rc)" \
	bash -c "[ $rc -eq 1 ] && grep -q 'skip.conf:$sk_keyline: .*no-such.key.*(upstream badup skipped)' <<<\"\$0\" &&
	grep -q 'skip.conf:$sk_l2: listen 127.0.0.1:$sk_bad skipped: its upstream .badup. was skipped' <<<\"\$0\" &&
	grep -q 'skip.conf:\($sk_l3\|$sk_l3k\): .*(listen 127.0.0.1:$sk_cert skipped)' <<<\"\$0\"" "$out"
timeout 10 "$proxy" --strict -c "$work/skip.conf" >"$work/strict.log" 2>&1
rc=$?
check "start-up: --strict refuses to start (rc $rc)" \
	bash -c "[ $rc -eq 1 ] && grep -q 'not starting' '$work/strict.log'"
sk_log=$work/skip.log
extra_logs+=("$sk_log")
start_proxy "$work/skip.conf" "$sk_log"
wait_port "$sk_ok" || bad "proxy with skipped parts did not start: $(cat "$sk_log")"
timeout 30 python3 "$work/client.py" "$sk_ok" "$pki/ca.crt" \
	"$pki/client-ec-chain.pem" "$pki/client-ec.key" "$work/line.txt" \
	"$work/sk.out" 1
check "start-up: the valid listener serves ($(tr -d '\n' <"$work/sk.out" 2>/dev/null))" \
	grep -q "hello proxy" "$work/sk.out"
check "start-up: the log names file:line of the skipped upstream and listeners" \
	bash -c "grep -q 'error: .*skip.conf:$sk_keyline: .*(upstream badup skipped)' '$sk_log' &&
	grep -q 'error: .*skip.conf:$sk_l2: listen 127.0.0.1:$sk_bad skipped' '$sk_log' &&
	grep -q 'error: .*listen 127.0.0.1:$sk_cert skipped' '$sk_log'"
check "start-up: the skipped listeners are not opened" \
	bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$sk_bad) 2>/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/$sk_cert) 2>/dev/null"
kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null

# ---- upstream and listen options: tls_versions, alpn, insecure_skip_verify -
op_port=$(free_port)
if "$proxy" -V | grep -q 'mbedTLS 2\.'; then has13=0; else has13=1; fi
cat >"$work/opts.conf" <<EOF
listen 127.0.0.1:$op_port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    tls_versions 1.2 $([ $has13 = 1 ] && echo 1.3 || echo 1.2)
    alpn h2,http/1.1
    upstream insecure
}
upstream insecure {            # signed by a CA we do not trust
    target 127.0.0.1:$tls_port
    tls on
    cert $pki/client-ec-chain.pem
    key $pki/client-ec.key
    ca $pki/other-ca.crt
    tls_versions 1.2 1.2
    alpn http/1.1
    insecure_skip_verify on
}
EOF
out=$("$proxy" -t -c "$work/opts.conf" 2>&1)
check "options: -t accepts tls_versions, alpn, insecure_skip_verify (${out##*$'\n'})" test $? -eq 0
sed 's/tls_versions 1.2 1.2/tls_versions 1.3/' "$work/opts.conf" >"$work/opts13.conf"
out=$("$proxy" -t -c "$work/opts13.conf" 2>&1)
rc=$?
l13=$(grep -n 'tls_versions 1.3' "$work/opts13.conf" | cut -d: -f1)
if [ $has13 = 0 ]; then
	check "options: TLS 1.3 on a 2.28 build is an error naming the line ($out)" \
		bash -c "[ $rc -eq 1 ] && grep -q 'opts13.conf:$l13: tls_versions 1.3: TLS 1.3 is not supported' <<<\"\$0\"" "$out"
else
	check "options: tls_versions 1.3 accepted on a 3.x build (${out##*$'\n'})" test "$rc" -eq 0
fi
sed 's/tls_versions 1.2 1.2/tls_versions 1.2 1.1/' "$work/opts.conf" >"$work/opts11.conf"
out=$("$proxy" -t -c "$work/opts11.conf" 2>&1)
check "options: a bad tls_versions value names the line ($out)" \
	grep -q "opts11.conf:$l13: tls_versions: '1.1' is not 1.2 or 1.3" <<<"$out"
op_log=$work/opts.log
extra_logs+=("$op_log")
start_proxy "$work/opts.conf" "$op_log"
wait_port "$op_port" || bad "proxy (options) did not start: $(cat "$op_log")"
check "options: the start-up log warns about insecure_skip_verify, naming the upstream" \
	grep -q "warn: .*opts.conf:[0-9]*: upstream insecure: insecure_skip_verify on" "$op_log"
cat >"$work/alpn.py" <<'PY'
import socket, ssl, sys
port, ca, cert, key = sys.argv[1:5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(ca)
ctx.load_cert_chain(cert, key)
ctx.set_alpn_protocols(["http/1.1"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port)), timeout=10),
                    server_hostname="localhost")
s.sendall(b"alpn check\n")
got = b""
while not got.endswith(b"\n"):
    d = s.recv(100)
    if not d:
        break
    got += d
print(s.selected_alpn_protocol(), s.version(), got.decode().strip())
PY
out=$(timeout 20 python3 "$work/alpn.py" "$op_port" "$pki/ca.crt" \
	"$pki/client-ec-chain.pem" "$pki/client-ec.key" 2>&1)
check "options: listen alpn selects http/1.1 ($out)" grep -q "^http/1.1 TLSv1" <<<"$out"
check "options: insecure_skip_verify: data passes to an untrusted upstream ($out)" \
	grep -q "kcehc npla" <<<"$out"
kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null

# ---- workers 2 ---------------------------------------------------------------
wk_port=$(free_port)
cat >"$work/workers.conf" <<EOF
workers 2
listen 127.0.0.1:$wk_port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    upstream echo
}
upstream echo {
    target 127.0.0.1:$echo_port
}
EOF
wk_log=$work/workers.log
extra_logs+=("$wk_log")
start_proxy "$work/workers.conf" "$wk_log"
wait_port "$wk_port" || bad "proxy (workers) did not start: $(cat "$wk_log")"
sleep 0.5 # both workers listening
wk_ok=0
for ((i = 0; i < 20; i++)); do
	printf 'worker %d\n' "$i" >"$work/wk.in"
	rm -f "$work/wk.out"
	timeout 20 python3 "$work/client.py" "$wk_port" "$pki/ca.crt" \
		"$pki/client-ec-chain.pem" "$pki/client-ec.key" "$work/wk.in" \
		"$work/wk.out" 1 && grep -q "worker $i" "$work/wk.out" && wk_ok=$((wk_ok + 1))
done
check "workers 2: 20 sequential connections all served ($wk_ok)" test "$wk_ok" -eq 20
sleep 0.3
wk_pids=$(grep -o 'info: worker=[0-9]* conn ' "$wk_log" | sort -u | grep -o '[0-9][0-9]*')
check "workers 2: two worker PIDs in the connection log lines ($(echo $wk_pids))" \
	test "$(wc -w <<<"$wk_pids")" -eq 2
victim=$(head -1 <<<"$wk_pids")
[ -n "$victim" ] && kill -9 "$victim" 2>/dev/null
check "workers 2: a killed worker is logged and restarted" \
	wait_in "$wk_log" "worker $victim died of signal 9; restarting"
sleep 1
check "workers 2: ... and the new worker started" \
	test "$(grep -c 'worker=[0-9]* .*started, pid' "$wk_log")" -ge 3
kill -TERM "$proxy_pid"
for ((i = 0; i < 100; i++)); do kill -0 "$proxy_pid" 2>/dev/null || break; sleep 0.1; done
wait "$proxy_pid"
rc=$?
check "workers 2: SIGTERM stops the workers and the supervisor exits 0 (rc $rc)" \
	bash -c "[ $rc -eq 0 ] && ! pgrep -P $proxy_pid >/dev/null"

# ---- curl -> proxy -> nginx requiring client certificates --------------------
if ! command -v nginx >/dev/null || ! command -v curl >/dev/null; then
	echo "# SKIP curl/nginx: nginx or curl is not installed"
else
	ng=$work/nginx
	mkdir -p "$ng/logs"
	ng_port=$(free_port)
	ngp_port=$(free_port)
	cat >"$ng/nginx.conf" <<EOF
daemon off;
master_process off;
pid $ng/nginx.pid;
error_log $ng/logs/error.log;
events { worker_connections 64; }
http {
    access_log $ng/logs/access.log;
    client_body_temp_path $ng/body;
    proxy_temp_path $ng/proxy;
    fastcgi_temp_path $ng/fastcgi;
    uwsgi_temp_path $ng/uwsgi;
    scgi_temp_path $ng/scgi;
    ssl_client_certificate $pki/ca.crt;
    ssl_verify_client on;
    ssl_verify_depth 2;
    server {
        listen 127.0.0.1:$ng_port ssl;
        ssl_certificate $pki/server-ec-chain.pem;
        ssl_certificate_key $pki/server-ec.key;
        location / { return 200 "nginx ok \$ssl_client_s_dn fp=\$ssl_client_fingerprint\n"; }
    }
}
EOF
	nginx -c "$ng/nginx.conf" -p "$ng" >"$ng/logs/stdout.log" 2>&1 </dev/null &
	ng_pid=$!
	pids+=("$ng_pid")
	cat >"$work/curl.conf" <<EOF
listen 127.0.0.1:$ngp_port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    upstream nginx
}
upstream nginx {
    target 127.0.0.1:$ng_port
    tls on
    cert $pki/client-ec-chain.pem   # the proxy's identity towards nginx
    key $pki/client-ec.key
    ca $pki/ca.crt
    server_name localhost
}
EOF
	ng_log=$work/curl-proxy.log
	extra_logs+=("$ng_log" "$ng/logs/error.log")
	start_proxy "$work/curl.conf" "$ng_log"
	if wait_port "$ng_port" && wait_port "$ngp_port"; then
		# curl presents another certificate (RSA) than the proxy (EC): the
		# fingerprint nginx reports must be the proxy's.
		fp=$(openssl x509 -in "$pki/client-ec.crt" -noout -fingerprint -sha1 |
			sed 's/.*=//;s/://g' | tr 'A-F' 'a-f')
		out=$(timeout 20 curl -sS --resolve "localhost:$ngp_port:127.0.0.1" \
			--cert "$pki/client-rsa-chain.pem" --key "$pki/client-rsa.key" \
			--cacert "$pki/ca.crt" "https://localhost:$ngp_port/" 2>&1)
		check "curl -> proxy -> nginx (ssl_verify_client on): nginx answers with the DN ($out)" \
			grep -q "^nginx ok CN=client.test " <<<"$out"
		check "curl -> proxy -> nginx: ... of the proxy's client certificate ($fp)" \
			grep -qi "fp=$fp" <<<"$out"
		out=$(timeout 20 curl -sS --resolve "localhost:$ngp_port:127.0.0.1" \
			--cacert "$pki/ca.crt" "https://localhost:$ngp_port/" 2>&1)
		check "curl without a client certificate: refused by the proxy" \
			bash -c "! grep -q 'nginx ok' <<<\"\$0\"" "$out"
	else
		bad "nginx or the proxy did not start: $(cat "$ng/logs/error.log" "$ng_log" 2>/dev/null)"
	fi
	kill "$proxy_pid" "$ng_pid" 2>/dev/null; wait "$proxy_pid" "$ng_pid" 2>/dev/null
fi

if [ "$fails" -ne 0 ] || [ -n "${MTLS_TEST_VERBOSE:-}" ]; then
	echo "--- proxy log"
	cat "$log"
	echo "--- s_server log"
	cat "$work/s_server.log" 2>/dev/null
	for f in "${extra_logs[@]}"; do
		echo "--- $(basename "$f")"
		cat "$f"
	done
fi
[ "$fails" -eq 0 ]
