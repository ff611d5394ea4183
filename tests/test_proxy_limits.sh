#!/usr/bin/env bash
# tests/test_proxy_limits.sh BUILD - mtls-proxy under pressure (security issue
# #11, findings 5, 7 and 8), on loopback, against a copy of the test PKI in
# $MTLS_TEST_PKI (tests/run.sh).
#
#   fair relay: while one client streams as fast as it can into a sink, a new
#     client completes its handshake and gets an echo through, and an idle
#     connection's idle timeout fires (both while the stream still runs)
#   -t: max_connections (top level and listen), max_handshakes and
#     max_handshakes_per_source: good values pass, bad ones name FILE:LINE
#   max_handshakes_per_source 3: a 4th unfinished handshake from 127.0.0.1
#     is closed at once while the 3 wait and a completed connection still
#     echoes; once they go, a new client is served; the refusals are logged,
#     fewer lines than refusals
#   max_handshakes_per_source 1 on [::1] (when loopback has IPv6): counted
#     per /64, logged as "::/64"
#   max_handshakes 2: the same, for all sources together
#   max_connections 3 with a listen block of max_connections 2: the 3rd on
#     that listener is refused, one on the other is served, the 4th in all is
#     refused; after one closes, the listener serves again; across a SIGHUP
#     reload the listen block's count is kept
#   descriptors (ulimit -n 40): the start-up warns that max_connections needs
#     more, accepting pauses (logged) instead of spinning, the proxy keeps
#     running and serves again once descriptors are free
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

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
setup_work limits || exit 1
export PKI=$pki MTLS_TESTS=$tests_dir

fails=0 checks=0

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

def try_echo(port, word):
    """True if a new client completes its handshake and gets word back."""
    try:
        s = tls_connect(port, timeout=10)
        s.sendall(word)
        ok = recv_exact(s, len(word)) == word
        s.close()
        return ok
    except (OSError, ssl.SSLError):
        return False

def retry_echo(port, word):
    """try_echo until it works: the proxy sees closes at its own pace
    (at most 50 tries)."""
    for _ in range(50):
        if try_echo(port, word):
            return True
        time.sleep(0.1)
    return False

def unfinished(port, half):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(half)
    except OSError:
        pass
    return s

def handshakes(port, n):
    """n unfinished handshakes wait; 3 more are closed at once; a
    completed connection still echoes; then the n go and a new client is
    served."""
    c1 = tls_connect(port, timeout=10)
    c1.sendall(b"one\n")
    ok1 = recv_exact(c1, 4) == b"one\n"
    half = client_hello()[:40]
    held = [unfinished(port, half) for _ in range(n)]
    extra = [unfinished(port, half) for _ in range(3)]
    refused = sum(1 for s in extra if read_to_close(s, 10) is not None)
    still = sum(1 for s in held if read_to_close(s, 0.5) is None)
    c1.sendall(b"two\n")
    ok2 = recv_exact(c1, 4) == b"two\n"
    for s in held + extra:
        s.close()
    c1.close()
    print("completed_echoes=%s waiting=%d/%d over_limit_closed=%d/3 after=%s"
          % (ok1 and ok2, still, n, refused, retry_echo(port, b"3\n")))

def conncap(px, py_):
    """px: max_connections 2 of its own; all: max_connections 3."""
    a = [tls_connect(px, timeout=10) for _ in range(2)]
    third_px = try_echo(px, b"x\n")
    b = tls_connect(py_, timeout=10)
    b.sendall(b"b\n")
    ok_b = recv_exact(b, 2) == b"b\n"
    fourth = try_echo(py_, b"y\n")
    for i, s in enumerate(a):
        s.sendall(b"%d\n" % i)
    ok_a = all(recv_exact(s, 2) == b"%d\n" % i for i, s in enumerate(a))
    a[0].close()
    after = retry_echo(px, b"z\n")
    for s in a[1:] + [b]:
        s.close()
    print("held_echo=%s third_on_listener=%s other_listener=%s fourth=%s after_close=%s"
          % (ok_a, third_px, ok_b, fourth, after))

def capreload(px, flag, go):
    """Two connections held on px (its cap: 2) across a reload (the shell
    sends SIGHUP between FLAG and GO): a 3rd is still refused, and a
    close still frees a place."""
    a = [tls_connect(px, timeout=10) for _ in range(2)]
    for i, s in enumerate(a):
        s.sendall(b"%d\n" % i)
    ok = all(recv_exact(s, 2) == b"%d\n" % i for i, s in enumerate(a))
    open(flag, "w").close()
    for _ in range(200):
        if os.path.exists(go):
            break
        time.sleep(0.1)
    third = try_echo(px, b"x\n")
    a[0].close()
    after = retry_echo(px, b"z\n")
    a[1].close()
    print("held_echo=%s third_after_reload=%s after_close=%s" % (ok, third, after))

def v6(port):
    """max_handshakes_per_source 1 on [::1]: a 2nd unfinished handshake
    from ::1 is closed at once, the 1st waits."""
    half = client_hello()[:40]
    socks = []
    for _ in range(2):
        s = socket.create_connection(("::1", port), timeout=10)
        s.sendall(half)
        socks.append(s)
    second = read_to_close(socks[1], 10) is not None
    first = read_to_close(socks[0], 0.5) is None
    for s in socks:
        s.close()
    print("first_waits=%s second_closed=%s" % (first, second))

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
elif cmd == "handshakes": handshakes(int(a[0]), int(a[1]))
elif cmd == "conncap": conncap(int(a[0]), int(a[1]))
elif cmd == "capreload": capreload(int(a[0]), a[1], a[2])
elif cmd == "v6": v6(int(a[0]))
elif cmd == "echo_retry": print("echo ok" if retry_echo(int(a[0]), b"again\n") else "echo failed")
PY
py() { in_place timeout "${PYT:-60}" python3 "$work/lim.py" "$@"; }

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

# ---- -t on the new directives (finding 7's config check) -------------------------
l_port=$(free_port)
good_limits() { # good_limits [EXTRA_TOP] [EXTRA_LISTEN]
	echo "max_connections 100"
	echo "max_handshakes 50"
	echo "max_handshakes_per_source 5"
	[ -z "${1:-}" ] || echo "$1"
	listen_block "$l_port" echo "max_connections 20" ${2:+"$2"}
	printf 'upstream echo {\n    target 127.0.0.1:%s\n}\n' "$echo_port"
}
good_limits >"$work/t.conf"
out=$("$proxy" -t -c "$work/t.conf" 2>&1)
check "-t: max_connections, max_handshakes, max_handshakes_per_source accepted (${out##*$'\n'})" \
	test $? -eq 0
for bad in "max_connections 0" "max_handshakes -3" "max_handshakes_per_source many" \
	"max_connections 1000001" "max_handshakes 5 6"; do
	{
		echo "$bad"
		listen_block "$l_port" echo
		printf 'upstream echo {\n    target 127.0.0.1:%s\n}\n' "$echo_port"
	} >"$work/bad.conf"
	out=$("$proxy" -t -c "$work/bad.conf" 2>&1)
	rc=$?
	check "-t: '$bad' is refused with FILE:LINE ($out)" \
		bash -c "[ $rc -eq 1 ] && grep -q \"bad.conf:1: '${bad%% *}' wants a number from 1 to 1000000\" <<<\"\$0\"" "$out"
done
good_limits "max_handshakes 7" >"$work/dup.conf"
out=$("$proxy" -t -c "$work/dup.conf" 2>&1)
check "-t: a second max_handshakes is refused, naming both lines ($out)" \
	grep -q "dup.conf:4: duplicate 'max_handshakes' (first on line 2)" <<<"$out"
good_limits "" "max_handshakes 5" >"$work/inlisten.conf"
out=$("$proxy" -t -c "$work/inlisten.conf" 2>&1)
check "-t: max_handshakes inside a listen block is refused ($out)" \
	grep -q "inlisten.conf:[0-9]*: unknown directive 'max_handshakes' in listen block" <<<"$out"
good_limits "" "max_connections 9" >"$work/dupl.conf"
out=$("$proxy" -t -c "$work/dupl.conf" 2>&1)
check "-t: a second max_connections in a listen block is refused ($out)" \
	grep -q "dupl.conf:[0-9]*: duplicate 'max_connections' (first on line [0-9]*)" <<<"$out"

# ---- handshakes in progress (finding 7/8) ------------------------------------------
run_limited() { # run_limited NAME TOP_DIRECTIVE: a proxy on $l_port, log NAME.log
	{
		echo "$2"
		listen_block "$l_port" echo
		printf 'upstream echo {\n    target 127.0.0.1:%s\n}\n' "$echo_port"
	} >"$work/$1.conf"
	"$proxy" -c "$work/$1.conf" 2>"$work/$1.log" &
	lim_pid=$!
	pids+=("$lim_pid")
	wait_port "$l_port" || bad "proxy ($1) did not start: $(tail -3 "$work/$1.log")"
}
stop_limited() {
	kill "$lim_pid" 2>/dev/null
	wait "$lim_pid" 2>/dev/null
}
l_port=$(free_port)
run_limited persrc "max_handshakes_per_source 3"
out=$(py handshakes "$l_port" 3)
check "per source 3: a 4th unfinished handshake from 127.0.0.1 is closed at once, the 3 wait, a completed connection echoes, then a new client is served ($out)" \
	test "$out" = "completed_echoes=True waiting=3/3 over_limit_closed=3/3 after=True"
n=$(grep -c "limit max_handshakes_per_source 3 reached" "$work/persrc.log")
check "per source: the refusals are logged, rate-limited ($n line(s) for 3 refusals)" \
	test "$n" -ge 1 -a "$n" -lt 3
check "per source: the proxy is still running" kill -0 "$lim_pid"
stop_limited

l_port=$(free_port)
run_limited allhs "max_handshakes 2"
out=$(py handshakes "$l_port" 2)
check "max_handshakes 2: a 3rd unfinished handshake is closed at once, the 2 wait, a completed connection echoes, then a new client is served ($out)" \
	test "$out" = "completed_echoes=True waiting=2/2 over_limit_closed=3/3 after=True"
check "max_handshakes: logged" grep -q "limit max_handshakes 2 reached" "$work/allhs.log"
stop_limited

# IPv6 sources count by /64 (::1 is in ::/64), when loopback has IPv6.
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
	v6_port=$(free_port)
	{
		echo "max_handshakes_per_source 1"
		listen_block "$v6_port" echo | sed "s/^listen 127.0.0.1:/listen [::1]:/"
		printf 'upstream echo {\n    target 127.0.0.1:%s\n}\n' "$echo_port"
	} >"$work/v6.conf"
	"$proxy" -c "$work/v6.conf" 2>"$work/v6.log" &
	v6_pid=$!
	pids+=("$v6_pid")
	if wait_in "$work/v6.log" "listening on \[::1\]:$v6_port" 50; then
		out=$(py v6 "$v6_port")
		check "per source, IPv6: a 2nd unfinished handshake from ::1 is closed at once, the 1st waits ($out)" \
			test "$out" = "first_waits=True second_closed=True"
		check "per source, IPv6: the log names the /64" \
			grep -q "limit max_handshakes_per_source 1 reached: .*from ::/64" "$work/v6.log"
	else
		bad "proxy on [::1] did not start: $(tail -3 "$work/v6.log")"
	fi
	kill "$v6_pid"; wait "$v6_pid" 2>/dev/null
else
	echo "# SKIP IPv6 per-source check: no ::1"
fi

# ---- connections in all and per listen block -----------------------------------
c_x=$(free_port) c_y=$(free_port)
{
	echo "max_connections 3"
	listen_block "$c_x" echo "max_connections 2"
	listen_block "$c_y" echo
	printf 'upstream echo {\n    target 127.0.0.1:%s\n}\n' "$echo_port"
} >"$work/cap.conf"
"$proxy" -c "$work/cap.conf" 2>"$work/cap.log" &
cap_pid=$!
pids+=("$cap_pid")
wait_port "$c_x" && wait_port "$c_y" || bad "proxy (cap) did not start"
out=$(py conncap "$c_x" "$c_y")
check "max_connections: listen cap 2 refuses a 3rd there, the other listener serves, the global cap 3 refuses a 4th, the held ones echo, and a close frees a place ($out)" \
	test "$out" = "held_echo=True third_on_listener=False other_listener=True fourth=False after_close=True"
check "max_connections: both limits logged" \
	bash -c "grep -q 'limit max_connections (listen 127.0.0.1:$c_x) 2 reached' '$work/cap.log' &&
	grep -q 'limit max_connections 3 reached' '$work/cap.log'"
# A reload keeps the listening socket, and with it the count of its
# connections (the new generation must not start again from 0).
timeout 60 python3 "$work/lim.py" capreload "$c_x" "$work/held" "$work/go" >"$work/capreload.out" &
cr_pid=$!
pids+=("$cr_pid")
if wait_file "$work/held" 200; then
	kill -HUP "$cap_pid"
	wait_in "$work/cap.log" "reloaded .*2 listener(s) kept" || bad "cap: no reload logged"
fi
touch "$work/go"
wait "$cr_pid"
check "max_connections: a reload keeps the listen block's count: a 3rd is still refused, a close frees a place ($(cat "$work/capreload.out"))" \
	grep -qx "held_echo=True third_after_reload=False after_close=True" "$work/capreload.out"
kill "$cap_pid"; wait "$cap_pid" 2>/dev/null

# ---- descriptors exhausted ----------------------------------------------------------
d_port=$(free_port)
{
	listen_block "$d_port" echo
	printf 'upstream echo {\n    target 127.0.0.1:%s\n}\n' "$echo_port"
} >"$work/fd.conf"
(ulimit -n 40 && exec "$proxy" -c "$work/fd.conf") 2>"$work/fd.log" &
fd_pid=$!
pids+=("$fd_pid")
wait_port "$d_port" || bad "proxy (ulimit -n 40) did not start: $(tail -3 "$work/fd.log")"
check "descriptors: the start-up warns that max_connections needs more than ulimit -n" \
	grep -q "warn: max_connections 10000 (the default) needs about 20064 file descriptors, the limit (ulimit -n) is 40" "$work/fd.log"
fds=()
for ((i = 0; i < 50; i++)); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$d_port" && fds+=("$fd")
done
check "descriptors: out of them, accepting pauses (logged) instead of spinning" \
	wait_in "$work/fd.log" "Too many open files; pausing for 1 s" 50
check "descriptors: the proxy keeps running" kill -0 "$fd_pid"
for fd in "${fds[@]}"; do exec {fd}>&-; done
out=$(py echo_retry "$d_port")
check "descriptors: once they are free, it serves again ($out)" test "$out" = "echo ok"
kill "$fd_pid"; wait "$fd_pid" 2>/dev/null

if [ "$fails" -ne 0 ] || [ -n "${MTLS_TEST_VERBOSE:-}" ]; then
	for f in "$work"/*.log; do
		echo "--- $(basename "$f")"
		tail -40 "$f"
	done
fi
echo "$checks checks, $fails failed"
[ "$fails" -eq 0 ]
