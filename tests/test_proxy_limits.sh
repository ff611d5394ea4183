#!/usr/bin/env bash
# tests/test_proxy_limits.sh BUILD - mtls-proxy under pressure (security issue
# #11, findings 5, 7 and 8), on loopback, against a copy of the test PKI in
# $MTLS_TEST_PKI (tests/run.sh).
#
#   fair relay: while one client streams as fast as it can into a sink, a new
#     client completes its handshake and gets an echo through, and an idle
#     connection's idle timeout fires (both while the stream still runs)
# Outcomes only: nothing here asserts how long anything takes.  Every
# process started here is killed by PID on exit; every loop and wait is
# bounded in count and time.
set -uo pipefail
build=${1:?usage: tests/test_proxy_limits.sh BUILD_DIR}
tests_dir=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd)
pki=${MTLS_TEST_PKI:?run through tests/run.sh (MTLS_TEST_PKI unset)}
proxy=$build/mtls-proxy
[ -x "$proxy" ] || { echo "FAIL: $proxy not built (make examples)"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 0; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mtls-limits.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
cp -r "$pki" "$work/pki" || { echo "FAIL: cannot copy $pki"; exit 1; }
pki=$work/pki
export PKI=$pki MTLS_TESTS=$tests_dir

fails=0 checks=0
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

# lim.py: backends and clients (peers.py has the client context and echo).
#   sink PORT                 reads and drops everything
#   echo PORT                 peers.echo
#   stream PORT FLOWING STOP DONE
#                             sends 1 MiB chunks as fast as it can until STOP
#                             exists (at most 60 s or 8 GiB); touches FLOWING
#                             after 16 MiB; writes "sent=N" to DONE at the end
#   echo1 PORT                handshake, one line out, the same line back:
#                             prints "echo ok" or why not
#   idle PORT SECONDS         handshake, then sends nothing: prints "closed"
#                             once the proxy closes it, "open" if it did not
#   hold PORT N SECONDS       N TCP connections that send half a ClientHello
#                             and wait; prints how many the proxy closed within
#                             SECONDS ("closed=K"), then closes the rest
cat >"$work/lim.py" <<'PY'
import os, socket, socketserver, ssl, sys, time
sys.path.insert(0, os.environ["MTLS_TESTS"])
from peers import client_hello, echo, read_to_close, recv_exact, tls_connect

def sink(port):
    class H(socketserver.BaseRequestHandler):
        def handle(self):
            while self.request.recv(1 << 20):
                pass
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    socketserver.ThreadingTCPServer(("127.0.0.1", port), H).serve_forever()

def stream(port, flowing, stop, done):
    s = tls_connect(port, timeout=30)
    chunk, sent, end = os.urandom(1 << 20), 0, time.time() + 60
    err = ""
    try:
        while not os.path.exists(stop) and time.time() < end and sent < (8 << 30):
            s.sendall(chunk)
            sent += len(chunk)
            if sent == 16 << 20:
                open(flowing, "w").close()
    except OSError as e:
        err = " error=%r" % e
    open(done, "w").write("sent=%d%s\n" % (sent, err))

def echo1(port):
    try:
        s = tls_connect(port, timeout=20)
        s.sendall(b"ping\n")
        got = recv_exact(s, 5)
        print("echo ok" if got == b"ping\n" else "echo got %r" % got)
    except (OSError, ssl.SSLError) as e:
        print("echo failed: %r" % e)

def idle(port, seconds):
    try:
        s = tls_connect(port, timeout=20)
    except (OSError, ssl.SSLError) as e:
        print("handshake failed: %r" % e); return
    print("closed" if read_to_close(s, seconds) is not None else "open")

def hold(port, n, seconds):
    half = client_hello()[:40]
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(half)
        socks.append(s)
    end, closed = time.time() + seconds, 0
    for s in socks:
        if read_to_close(s, max(0.1, end - time.time())) is not None:
            closed += 1
        s.close()
    print("closed=%d" % closed)

cmd, a = sys.argv[1], sys.argv[2:]
if cmd == "sink": sink(int(a[0]))
elif cmd == "echo": echo(int(a[0]))
elif cmd == "stream": stream(int(a[0]), a[1], a[2], a[3])
elif cmd == "echo1": echo1(int(a[0]))
elif cmd == "idle": idle(int(a[0]), float(a[1]))
elif cmd == "hold": hold(int(a[0]), int(a[1]), float(a[2]))
PY
py() { timeout "${PYT:-60}" python3 "$work/lim.py" "$@"; }

wait_in() { # wait_in FILE PATTERN [TENTHS]: bounded wait for FILE to contain it
	local i
	for ((i = 0; i < ${3:-100}; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
wait_file() { # wait_file FILE TENTHS
	local i
	for ((i = 0; i < $2; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
listen_block() { # listen_block PORT UPSTREAM [EXTRA...]
	local port=$1 up=$2
	shift 2
	echo "listen 127.0.0.1:$port {"
	echo "    cert $pki/server-ec-chain.pem"
	echo "    key $pki/server-ec.key"
	echo "    client_ca $pki/ca.crt"
	echo "    handshake_timeout 30"
	for x in "$@"; do echo "    $x"; done
	echo "    upstream $up"
	echo "}"
}

sink_port=$(free_port) echo_port=$(free_port)
# Started directly (not through py, a function: its subshell's PID would
# not reach python when killed).
python3 "$work/lim.py" sink "$sink_port" & pids+=($!)
python3 "$work/lim.py" echo "$echo_port" & pids+=($!)
wait_port "$sink_port" && wait_port "$echo_port" || bad "backends did not start"

# ---- fair relay (finding 5) ------------------------------------------------------
f_stream=$(free_port) f_echo=$(free_port)
{
	listen_block "$f_stream" sink
	listen_block "$f_echo" echo
	printf 'upstream sink {\n    target 127.0.0.1:%s\n}\n' "$sink_port"
	printf 'upstream echo {\n    target 127.0.0.1:%s\n    idle_timeout 2\n}\n' "$echo_port"
} >"$work/fair.conf"
flog=$work/fair.log
"$proxy" -c "$work/fair.conf" 2>"$flog" &
fair_pid=$!
pids+=("$fair_pid")
wait_port "$f_stream" && wait_port "$f_echo" || bad "proxy (fair) did not start"
timeout 120 python3 "$work/lim.py" stream "$f_stream" "$work/flowing" "$work/stop" "$work/done" &
stream_pid=$!
pids+=("$stream_pid")
if wait_file "$work/flowing" 300; then
	timeout 60 python3 "$work/lim.py" idle "$f_echo" 20 >"$work/idle.out" &
	idle_pid=$!
	pids+=("$idle_pid")
	out=$(py echo1 "$f_echo")
	streaming=$([ -e "$work/done" ] && echo "no" || echo "yes")
	check "fair: while a client streams, a new client handshakes and gets its echo ($out)" \
		test "$out" = "echo ok"
	check "fair: ... and the stream was still going then (streaming: $streaming)" \
		test "$streaming" = yes
	wait "$idle_pid"
	streaming=$([ -e "$work/done" ] && echo "no" || echo "yes")
	check "fair: an idle connection is closed by its idle timeout ($(cat "$work/idle.out"))" \
		bash -c "grep -qx closed '$work/idle.out' && grep -q 'listen=127.0.0.1:$f_echo .*error=\"idle for 2 s\"' '$flog'"
	check "fair: ... while the stream was still going (streaming: $streaming)" \
		test "$streaming" = yes
else
	bad "fair: the stream never got 16 MiB through ($(cat "$work/done" 2>/dev/null))"
fi
touch "$work/stop"
wait "$stream_pid"
check "fair: the stream itself ran without error ($(cat "$work/done" 2>/dev/null))" \
	grep -q "^sent=[0-9]*$" "$work/done"
kill "$fair_pid"; wait "$fair_pid" 2>/dev/null

if [ "$fails" -ne 0 ] || [ -n "${MTLS_TEST_VERBOSE:-}" ]; then
	for f in "$work"/*.log; do
		echo "--- $(basename "$f")"
		tail -40 "$f"
	done
fi
echo "$checks checks, $fails failed"
[ "$fails" -eq 0 ]
