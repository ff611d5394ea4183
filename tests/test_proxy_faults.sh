#!/usr/bin/env bash
# tests/test_proxy_faults.sh BUILD - fault and load tests of mtls-proxy
# ($BUILD/mtls-proxy) on loopback, against a copy of the test PKI in
# $MTLS_TEST_PKI (tests/run.sh).  Inbound mTLS, plain TCP upstreams.
#
#   (a) N concurrent mTLS connections held open at once (N=1000 when the
#       descriptor limit allows), each echoing its own random bytes intact
#   (b) the upstream killed (SIGKILL) mid-transfer: every client sees the
#       close with what it received intact; the proxy serves others
#   (c) first target not listening: failover to the next; all targets
#       down: the client is closed without data; the proxy stays up
#   (d) stalled clients (nothing sent / half a ClientHello) are closed by
#       the handshake timeout (2 s on the listener for (d) and (e), 30 s
#       on the others so that queued handshakes under load do not expire)
#   (e) garbage instead of a ClientHello; clients that vanish (FIN or RST)
#       after K bytes of the ClientHello, in the middle of the handshake
#       (part of their second flight), and right after it
#   (f) SIGHUP reload under load, only if the proxy handles SIGHUP
# Around every scenario: the proxy is alive, a good client is served, its
# descriptor count returns to the baseline (bounded wait), its VmRSS stays
# within a bounded slack.  One line per check; "figure: key=value" lines
# for scripts/reliability.sh.  Exit status non-zero on any failure.
# Every process started here is killed by PID on exit; every loop and wait
# is bounded in count and time; no check depends on how fast anything is.
#   MTLS_FAULTS_N=N       connections for (a) (default 1000, capped by the fd limit)
#   MTLS_FAULTS_KEEP=1    keep the work directory (logs, configuration)
#   MTLS_TEST_VERBOSE=1   print the proxy's log even when everything passes
set -uo pipefail
build=${1:?usage: tests/test_proxy_faults.sh BUILD_DIR}
tests_dir=$(cd "$(dirname "$0")" && pwd) # peers.py
build=$(cd "$build" && pwd)
pki=${MTLS_TEST_PKI:?run through tests/run.sh (MTLS_TEST_PKI unset)}
proxy=$build/mtls-proxy
[ -x "$proxy" ] || { echo "FAIL: $proxy not built (make examples)"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 0; }
[ -d /proc/self/fd ] || { echo "SKIP: no /proc"; exit 0; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mtls-faults.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	if [ -n "${MTLS_FAULTS_KEEP:-}" ]; then echo "# kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
cp -r "$pki" "$work/pki" || { echo "FAIL: cannot copy $pki"; exit 1; }
pki=$work/pki

# Descriptors: the proxy needs two per connection, the load client and the
# echo backend one each.  Raise the soft limit as far as the hard one lets.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=65536
want_fds=$((hard < 16384 ? hard : 16384))
ulimit -n "$want_fds" 2>/dev/null
lim=$(ulimit -n)
n_conns=${MTLS_FAULTS_N:-1000}
max_n=$(((lim - 200) / 2))
[ "$n_conns" -gt "$max_n" ] && n_conns=$max_n

# ASan keeps freed memory in quarantine: RSS then says little about leaks
# (LeakSanitizer does, at the final SIGTERM), so the slack is wider.
asan=0
if grep -q __asan_init "$proxy" 2>/dev/null; then asan=1; fi
rss_slack_kb=$((asan ? 256 * 1024 : 8 * 1024))

fails=0 checks=0 faults=0
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
figure() { echo "figure: $1=$2"; }


# ---- helpers in Python: backend and clients --------------------------------
cat >"$work/faults.py" <<'PY'
import os, random, socket, ssl, sys, threading, time
sys.path.insert(0, os.environ["MTLS_TESTS"])
from peers import client_hello, ctx, echo, read_to_close, recv_exact, tls_connect

def fdcount(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1

def load(port, n, pid):
    """n connections open at once, each echoes its own bytes, then all close.
    Handshakes run 16 at a time (threads), so the proxy's per-handshake
    latency does not add up; data is sent on all before any is read back."""
    from concurrent.futures import ThreadPoolExecutor
    errs = []
    def one(i):
        try:
            return tls_connect(port, timeout=60)
        except (OSError, ssl.SSLError) as e:
            errs.append("handshake %d: %r" % (i, e))
            return None
    with ThreadPoolExecutor(16) as ex:
        conns = [s for s in ex.map(one, range(n)) if s is not None]
    held = len(conns)
    peak = fdcount(pid) if pid else -1
    data = [os.urandom(1024 + (i * 37) % 4096) for i in range(held)]
    intact = 0
    for s, d in zip(conns, data):
        try:
            s.sendall(d)
        except OSError as e:
            errs.append("send: %r" % e)
    for i, (s, d) in enumerate(zip(conns, data)):
        try:
            back = recv_exact(s, len(d))
            if back == d:
                intact += 1
            else:
                errs.append("echo %d: %d of %d bytes, %s" % (i, len(back), len(d),
                            "prefix ok" if d.startswith(back) else "corrupt"))
        except OSError as e:
            errs.append("echo %d: %r" % (i, e))
    for s in conns:
        s.close()
    for e in errs[:3]:
        print(e, file=sys.stderr)
    print("held=%d intact=%d handshake_failures=%d proxy_fds_held=%d" %
          (held, intact, n - held, peak))
    sys.exit(0 if held == n and intact == n else 1)

def stream(port, n, flag, go):
    """n clients echo 16 KiB chunks in lock step until the proxy closes;
    touches FLAG once every client has moved 64 KiB, waits for GO (the
    backend killed) before each next chunk so the kill lands mid-transfer.
    Passes if every client saw the close and all it got back was intact."""
    res = [None] * n
    moved = [threading.Event() for _ in range(n)]
    def one(i):
        sent = got = 0
        try:
            s = tls_connect(port)
            s.settimeout(30)
            rnd = random.Random(i)
            while True:
                if got >= 65536:
                    moved[i].set()
                    for _ in range(300):
                        if os.path.exists(go):
                            break
                        time.sleep(0.1)
                chunk = rnd.randbytes(16384)
                try:
                    s.sendall(chunk); sent += len(chunk)
                except OSError:
                    res[i] = ("closed-on-write", got); return
                back = recv_exact(s, len(chunk))
                if back != chunk[:len(back)]:
                    res[i] = ("corrupt", got); return
                got += len(back)
                if len(back) < len(chunk):
                    res[i] = ("closed", got); return
        except socket.timeout:
            res[i] = ("timeout", got)
        except (OSError, ssl.SSLError) as e:
            res[i] = ("closed-" + type(e).__name__, got)
        finally:
            moved[i].set()
    ts = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    for e in moved:
        e.wait(60)
    open(flag, "w").close()
    for t in ts:
        t.join(60)
    closed = sum(1 for r in res if r and r[0].startswith("closed") and r[1] >= 65536)
    print("clients=%d closed_mid_transfer=%d results=%s" %
          (n, closed, sorted(set(r[0] if r else "hung" for r in res))))
    sys.exit(0 if closed == n else 1)

def refused(port):
    """Handshake may succeed, then the proxy must close with no data."""
    try:
        s = tls_connect(port)
    except (OSError, ssl.SSLError) as e:
        print("refused during the handshake: %r" % e); return
    try:
        s.sendall(b"hello?\n")
    except OSError:
        pass
    r = read_to_close(s, 20)
    print("after handshake: %s" % ("no close" if r is None else "closed, %d bytes" % len(r)))
    sys.exit(0 if r == b"" else 1)

def stall(port, n):
    """n clients send nothing, n send half a ClientHello; all must be closed."""
    ch = client_hello()
    socks = []
    for i in range(2 * n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if i % 2:
            s.sendall(ch[:len(ch) // 2])
        socks.append(s)
    end = time.time() + 30
    closed = 0
    for s in socks:
        r = read_to_close(s, max(0.1, end - time.time()))
        if r is not None:
            closed += 1
        s.close()
    print("stalled=%d closed=%d" % (2 * n, closed))
    sys.exit(0 if closed == 2 * n else 1)

def garbage(port):
    """Non-TLS or broken input: each must be closed by the proxy."""
    ch = bytearray(client_hello())
    rnd = random.Random(7)
    cases = [("random-2k", rnd.randbytes(2048)),
             ("http", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
             ("zeros-16k", bytes(16384)),
             ("huge-record", b"\x16\x03\x01\xff\xff" + rnd.randbytes(1000)),
             ("sslv2-hello", b"\x80\x2e\x01\x00\x02\x00\x15" + rnd.randbytes(40)),
             ("alert-first", b"\x15\x03\x03\x00\x02\x02\x28"),
             ("appdata-first", b"\x17\x03\x03\x00\x10" + bytes(16)),
             ("hello-len-lies", bytes(ch[:5]) + b"\x01\xff\xff\xff" + bytes(ch[9:]))]
    for k in range(12):  # the real ClientHello with a few bytes flipped
        m = bytearray(ch)
        for _ in range(1 + k % 4):
            p = rnd.randrange(len(m)); m[p] ^= 1 << rnd.randrange(8)
        cases.append(("mutated-%d" % k, bytes(m)))
    # all at once: those that look like the start of a long record wait
    # for the handshake timeout, in parallel
    socks = []
    for name, data in cases:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            s.sendall(data)
        except OSError:
            pass
        socks.append((name, s))
    closed, end = 0, time.time() + 30
    for name, s in socks:
        r = read_to_close(s, max(0.1, end - time.time()))
        s.close()
        if r is None:
            print("not closed: %s" % name)
        else:
            closed += 1
    print("garbage_cases=%d closed=%d" % (len(cases), closed))
    sys.exit(0 if closed == len(cases) else 1)

def abort(port):
    """Clients that vanish at points of the handshake; the proxy must
    free them (checked by its descriptor count)."""
    ch = client_hello()
    n = 0
    def close(s, rst):
        if rst:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        s.close()
    for rst in (False, True):
        for k in (0, 1, 4, 5, 6, len(ch) // 3, len(ch) // 2, len(ch) - 1, len(ch)):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(ch[:k]); time.sleep(0.02); close(s, rst); n += 1
        # the middle: server's flight read, then part of the client's second
        for frac in (0, 1, 3, 2):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
            o = ctx().wrap_bio(inc, out, server_hostname="localhost")
            try:
                o.do_handshake()
            except ssl.SSLWantReadError:
                pass
            s.sendall(out.read())
            flight, end = b"", time.time() + 20
            while not flight and time.time() < end:
                d = s.recv(65536)
                if not d:
                    break
                inc.write(d)
                try:
                    o.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                flight = out.read()
            if not flight:
                print("no server flight"); sys.exit(1)
            cut = {0: 0, 1: 1, 3: len(flight) // 3, 2: len(flight) // 2}[frac]
            s.sendall(flight[:cut]); time.sleep(0.02); close(s, rst); n += 1
        # right after a complete handshake, before any data
        s = tls_connect(port)
        close(s, rst); n += 1
    print("aborted_clients=%d" % n)

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "echo": echo(int(args[0]))
elif cmd == "load": load(int(args[0]), int(args[1]), int(args[2]))
elif cmd == "stream": stream(int(args[0]), int(args[1]), args[2], args[3])
elif cmd == "refused": refused(int(args[0]))
elif cmd == "stall": stall(int(args[0]), int(args[1]))
elif cmd == "garbage": garbage(int(args[0]))
elif cmd == "abort": abort(int(args[0]))
else: sys.exit("unknown command " + cmd)
PY
export PKI=$pki MTLS_TESTS=$tests_dir
py() { in_place timeout "${PYT:-120}" python3 "$work/faults.py" "$@"; }

echo1=$(free_port)
echo2=$(free_port)
echok=$(free_port)
dead1=$(free_port)
dead2=$(free_port)
p_main=$(free_port)
p_kill=$(free_port)
p_fail=$(free_port)
p_down=$(free_port)
p_short=$(free_port)

python3 "$work/faults.py" echo "$echo1" & pids+=($!)
python3 "$work/faults.py" echo "$echo2" & pids+=($!)
python3 "$work/faults.py" echo "$echok" & echok_pid=$!; pids+=($!)

listen_block() { # listen_block PORT UPSTREAM [HANDSHAKE_TIMEOUT]
	cat <<EOF
listen 127.0.0.1:$1 {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    handshake_timeout ${3:-30}
    upstream $2
}
EOF
}
conf=$work/proxy.conf
{
	echo "# generated by tests/test_proxy_faults.sh"
	echo "log_level info"
	listen_block "$p_main" main
	listen_block "$p_kill" killable
	listen_block "$p_fail" failover
	listen_block "$p_down" down
	listen_block "$p_short" main 2 # stalled, garbage, aborted clients
	cat <<EOF
upstream main {
    target 127.0.0.1:$echo1
}
upstream killable {
    target 127.0.0.1:$echok
}
upstream failover {
    target 127.0.0.1:$dead1
    target 127.0.0.1:$echo2
}
upstream down {
    target 127.0.0.1:$dead1
    target 127.0.0.1:$dead2
    connect_timeout 3
}
EOF
} >"$conf"

log=$work/proxy.log
"$proxy" -c "$conf" 2>"$log" &
proxy_pid=$!
pids+=("$proxy_pid")
for p in "$echo1" "$echo2" "$echok" "$p_main"; do
	wait_port "$p" || bad "port $p: nothing listens"
done
echo "# fd limit $lim, $n_conns connections for (a), asan=$asan"

fd_count() { ls "/proc/$proxy_pid/fd" 2>/dev/null | wc -l; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$proxy_pid/status" 2>/dev/null; }
# The descriptor count once every connection of a scenario is gone:
# waits up to 20 s for it to come back to the baseline.
fds_settle() {
	local i n
	for ((i = 0; i < 200; i++)); do
		n=$(fd_count)
		[ "$n" -le "$fd_base" ] && break
		sleep 0.1
	done
	echo "$n"
}
alive_and_serving() {
	kill -0 "$proxy_pid" 2>/dev/null && PYT=60 py load "$p_main" 1 0 >/dev/null
}
before() { # before NAME
	scen=$1
	scen_t0=$SECONDS
	rss_before=$(rss_kb)
}
after() { # after [norss]: the checks common to every scenario
	local n r
	check "$scen: proxy alive and serving a good client" alive_and_serving
	n=$(fds_settle)
	r=$(rss_kb)
	figure "${scen}_fds_before" "$fd_base"
	figure "${scen}_fds_after" "$n"
	figure "${scen}_rss_kb_before" "${rss_before:-0}"
	figure "${scen}_rss_kb_after" "${r:-0}"
	check "$scen: descriptors back to the baseline ($n, baseline $fd_base)" \
		test "$n" -le "$fd_base"
	figure "${scen}_seconds" $((SECONDS - scen_t0))
	[ "${1:-}" = norss ] && return
	check "$scen: VmRSS within +$((rss_slack_kb / 1024)) MiB (${rss_before:-?} -> ${r:-?} kB)" \
		test "${r:-999999999}" -le $((${rss_before:-0} + rss_slack_kb))
}

# Baseline: after one good connection (lazy initialisation done).
check "a good client is served before any fault" alive_and_serving
sleep 0.5 # its connection gone
sleep 0.5
fd_base=$(fd_count)
rss_start=$(rss_kb)
figure fds_baseline "$fd_base"
figure rss_kb_baseline "$rss_start"

# ---- (a) many concurrent connections -------------------------------------------
before a_concurrent
out=$(PYT=300 py load "$p_main" "$n_conns" "$proxy_pid" 2>"$work/a.err")
rc=$?
echo "# $out"
held=$(sed -n 's/^held=\([0-9]*\).*/\1/p' <<<"$out")
intact=$(sed -n 's/.* intact=\([0-9]*\).*/\1/p' <<<"$out")
peak=$(sed -n 's/.*proxy_fds_held=\([0-9-]*\).*/\1/p' <<<"$out")
figure connections_target "$n_conns"
figure connections_held "${held:-0}"
figure connections_echoed_intact "${intact:-0}"
figure proxy_fds_while_held "${peak:-0}"
check "(a) $n_conns concurrent mTLS connections held and echoed intact ($out $(head -c 300 "$work/a.err"))" \
	test "$rc" -eq 0
# The descriptor peak is sampled while the clients hold their connections;
# when the sample lands is a matter of timing, so it is a figure, not a
# check (expected: baseline + 2 per connection).
echo "# proxy descriptors at the sampled peak: ${peak:-?} (baseline $fd_base + 2*$n_conns expected)"
# The first round's RSS is the allocator's high-water mark (glibc keeps
# the freed heap); the same load again must not add to it: growth per
# round would be a leak.
after norss
# Under ASan (slower; LeakSanitizer checks leaks at exit) a quarter of it.
n2=$((asan ? n_conns / 4 : n_conns))
rss_round1=$(rss_kb)
out=$(PYT=300 py load "$p_main" "$n2" "$proxy_pid" 2>&1)
rc=$?
check "(a) a second round of $n2 connections ($out)" test "$rc" -eq 0
n=$(fds_settle)
rss_round2=$(rss_kb)
figure a_rss_kb_round1 "$rss_round1"
figure a_rss_kb_round2 "$rss_round2"
check "(a) second round: descriptors back to the baseline ($n)" test "$n" -le "$fd_base"
slack2=$((asan ? rss_slack_kb : 8192)) # ASan: its quarantine moves RSS
check "(a) second round: VmRSS within +$((slack2 / 1024)) MiB of round one ($rss_round1 -> $rss_round2 kB)" \
	test "$rss_round2" -le $((rss_round1 + slack2))

# ---- (b) upstream killed mid-transfer ------------------------------------------
before b_upstream_killed
nb=8
rm -f "$work/b.flag" "$work/b.go"
PYT=120 py stream "$p_kill" "$nb" "$work/b.flag" "$work/b.go" >"$work/b.out" 2>&1 &
b_pid=$!
pids+=("$b_pid")
for ((i = 0; i < 600; i++)); do
	[ -e "$work/b.flag" ] && break
	sleep 0.1
done
check "(b) $nb clients streaming through the proxy" test -e "$work/b.flag"
# A good client on another listener while the transfers run.
check "(b) the proxy serves another client during the transfers" alive_and_serving
kill -KILL "$echok_pid"
wait "$echok_pid" 2>/dev/null
touch "$work/b.go"
wait "$b_pid"
rc=$?
check "(b) upstream SIGKILLed: every client sees the close, data intact ($(cat "$work/b.out"))" \
	test "$rc" -eq 0
faults=$((faults + nb))
after

# ---- (c) failover and all targets down -----------------------------------------
before c_failover
okc=0
for ((i = 0; i < 6; i++)); do
	PYT=60 py load "$p_fail" 1 0 >/dev/null 2>&1 && okc=$((okc + 1))
done
check "(c) first target down: 6 of 6 sequential connections fail over and echo ($okc)" \
	test "$okc" -eq 6
# Concurrent ones: each must still try every target once, whatever the
# others do to the upstream's round robin cursor.
out=$(PYT=60 py load "$p_fail" 64 0 2>&1)
rc=$?
check "(c) first target down: 64 concurrent connections fail over and echo ($(tr '\n' ' ' <<<"$out"))" \
	test "$rc" -eq 0
out=$(PYT=60 py refused "$p_down" 2>&1)
rc=$?
check "(c) all targets down: the client is closed without data ($out)" test "$rc" -eq 0
out=$(PYT=60 py refused "$p_down" 2>&1)
rc=$?
check "(c) all targets down, again ($out)" test "$rc" -eq 0
check "(c) the log says no target was reachable" \
	grep -q "upstream=down .*error=\"no target of upstream down reachable" "$log"
faults=$((faults + 72))
after

# ---- (d) stalled clients -----------------------------------------------------------
before d_stalled
nd=25
t0=$(grep -c 'TLS handshake timed out' "$log")
out=$(PYT=60 py stall "$p_short" "$nd" 2>&1)
rc=$?
check "(d) $((2 * nd)) stalled clients closed by the handshake timeout ($out)" test "$rc" -eq 0
t1=$(grep -c 'TLS handshake timed out' "$log")
check "(d) the log names the timeout for each ($((t1 - t0)) of $((2 * nd)))" \
	test $((t1 - t0)) -eq $((2 * nd))
figure stalled_clients_closed $((t1 - t0))
faults=$((faults + 2 * nd))
after

# ---- (e) garbage and clients that vanish mid-handshake --------------------------
before e_garbage
out=$(PYT=120 py garbage "$p_short" 2>&1)
rc=$?
check "(e) garbage instead of a ClientHello: every case closed ($out)" test "$rc" -eq 0
ng=$(sed -n 's/.*garbage_cases=\([0-9]*\).*/\1/p' <<<"$out")
faults=$((faults + ${ng:-0}))
figure garbage_cases "${ng:-0}"
after

before e_abort
out=$(PYT=120 py abort "$p_short" 2>&1)
rc=$?
check "(e) clients vanishing at points of the handshake ($out)" test "$rc" -eq 0
na=$(sed -n 's/.*aborted_clients=\([0-9]*\).*/\1/p' <<<"$out")
faults=$((faults + ${na:-0}))
figure aborted_clients "${na:-0}"
after

# ---- (f) reload under load ----------------------------------------------------------
# Only a proxy that handles SIGHUP (its binary logs "SIGHUP: reloading");
# for any other, SIGHUP is fatal.
if grep -aq 'SIGHUP' "$proxy"; then
	before f_reload
	r0=$(grep -c 'reloaded ' "$log")
	PYT=300 py load "$p_main" 200 0 >"$work/f.out" 2>&1 &
	f_pid=$!
	pids+=("$f_pid")
	# one SIGHUP at a time: signals sent while a reload runs merge into
	# one (as they should), so wait (bounded) for each reload's line
	for ((i = 0; i < 5; i++)); do
		sleep 0.3
		n=$(grep -c 'reloaded ' "$log")
		kill -HUP "$proxy_pid" 2>/dev/null
		for ((j = 0; j < 100; j++)); do
			[ "$(grep -c 'reloaded ' "$log")" -gt "$n" ] && break
			sleep 0.1
		done
	done
	wait "$f_pid"
	rc=$?
	check "(f) 5 SIGHUP reloads during 200 connections: all echoed intact ($(tr '\n' ' ' <"$work/f.out"))" \
		test "$rc" -eq 0
	for ((i = 0; i < 50; i++)); do
		[ $(($(grep -c 'reloaded ' "$log") - r0)) -ge 5 ] && break
		sleep 0.1
	done
	r1=$(grep -c 'reloaded ' "$log")
	check "(f) the log shows 5 reloads ($((r1 - r0)))" test $((r1 - r0)) -ge 5
	figure reloads_under_load $((r1 - r0))
	faults=$((faults + 5))
	after
else
	echo "skip - (f) reload during load: this proxy has no SIGHUP handler"
fi

figure faults_survived "$faults"
figure rss_kb_end "$(rss_kb)"

# ---- exit -------------------------------------------------------------------------
# Under ASan, LeakSanitizer reports at exit and turns the status non-zero.
kill -TERM "$proxy_pid"
for ((i = 0; i < 100; i++)); do
	kill -0 "$proxy_pid" 2>/dev/null || break
	sleep 0.1
done
wait "$proxy_pid"
rc=$?
check "SIGTERM after all faults: the proxy exits 0 (rc $rc)" test "$rc" -eq 0
figure checks "$checks"
figure failures "$fails"

if [ "$fails" -ne 0 ] || [ -n "${MTLS_TEST_VERBOSE:-}" ]; then
	echo "--- proxy log (errors and last lines)"
	grep -v 'status=ok' "$log" | grep -iv 'timed out\|handshake' | head -50
	tail -20 "$log"
fi
[ "$fails" -eq 0 ]
