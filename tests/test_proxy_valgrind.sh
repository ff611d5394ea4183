#!/usr/bin/env bash
# tests/test_proxy_valgrind.sh BUILD - mtls-proxy ($BUILD/mtls-proxy) under
# valgrind memcheck through representative scenarios, on loopback, against
# a copy of the test PKI in $MTLS_TEST_PKI (tests/run.sh).  About a minute.
# tests/run.sh: valgrind only
#
# One process (workers 1), valgrind exec'ing the proxy (same PID):
#   mTLS client -> proxy -> plain echo: 256 KiB intact, close_notify both
#     ways; the log names the client and the byte counts
#   SNI host (own certificate and upstream) with a PROXY v2 header
#   refused: a client without a certificate; garbage instead of a
#     ClientHello and stalled clients (closed by a 3 s handshake timeout);
#     clients vanishing (FIN or RST) inside the ClientHello and in their
#     second flight
#   upstreams: first target down (failover to the next), all targets down
#     (closed without data), mTLS to openssl s_server, an upstream whose CA
#     is not trusted; health checks, TCP to a dead target and mTLS to one of
#     the proxy's own listeners
#   SIGHUP with a connection open: a listener opens, one closes, the old
#     connection still echoes on the old generation; then a syntax error and
#     a missing key, both refused, the proxy still serving
#   the admin endpoint: /metrics, /status, a POST and an unknown path
#   SIGTERM with a connection open: it is closed after the 5 s grace and
#     the proxy exits 0
# workers 2 (a supervisor forking two workers; valgrind follows forks, each
# process logs to its own file): connections served (and counted by the
# admin endpoint across both), SIGHUP passed on, a worker killed -9 is
# restarted, SIGTERM stops all.
# Each scenario checks its own outcome (bytes back, refusal seen, the log
# line); then every valgrind log must say "ERROR SUMMARY: 0 errors" and no
# bytes "definitely lost" or "indirectly lost", and valgrind exits 0 (99 on
# any error or such leak).  "Still reachable" and "possibly lost" are
# reported, not failed; no suppressions are needed.  --track-fds: no
# descriptor the proxy opened is still open at its exit.
# Every process started here is killed by PID on exit; every wait is
# bounded in count and time, with room for valgrind's 20-50x slowdown.
#   MTLS_TEST_VERBOSE=1   print the proxy's and valgrind's logs even on success
#   MTLS_VG_KEEP=1        keep the work directory
set -uo pipefail
build=${1:?usage: tests/test_proxy_valgrind.sh BUILD_DIR}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
pki=${MTLS_TEST_PKI:?run through tests/run.sh (MTLS_TEST_PKI unset)}
proxy=$build/mtls-proxy
[ -x "$proxy" ] || { echo "FAIL: $proxy not built (make examples)"; exit 1; }
command -v valgrind >/dev/null || { echo "FAIL: valgrind missing (scripts/deps.sh installs it)"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 0; }
command -v openssl >/dev/null || { echo "SKIP: openssl missing"; exit 0; }
if grep -q __asan_init "$proxy" 2>/dev/null; then
	echo "SKIP: $proxy is built with ASan, which valgrind cannot run"
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mtls-proxy-vg.XXXXXX")
pids=()
forget() { # forget PID: reaped, so never to be killed (its PID may be reused)
	local p keep=()
	for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	pids=("${keep[@]}")
}
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	if [ -n "${MTLS_VG_KEEP:-}" ]; then echo "# kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
cp -r "$pki" "$work/pki" || { echo "FAIL: cannot copy $pki"; exit 1; }
pki=$work/pki
cat "$pki/admin-server.crt" "$pki/int.crt" >"$work/admin.pem"

fails=0 checks=0
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
export PKI=$pki VG_T=60
py() { in_place timeout "${PYT:-180}" python3 "$here/proxy_vg.py" "$@"; }

# --error-exitcode: any error, or a definite or indirect leak, makes the
# exit status 99.  Forked workers are always followed (--trace-children is
# about exec, which the proxy never does); %p gives each its own log.
# shellcheck disable=SC2054 # the commas are in option values
vg=(valgrind --error-exitcode=99 --leak-check=full
	--show-leak-kinds=definite,indirect,possible
	--errors-for-leak-kinds=definite,indirect --num-callers=30
	--track-fds=yes)

wait_in() { # wait_in FILE PATTERN [SECONDS]: up to SECONDS (60) for it
	local i
	for ((i = 0; i < ${3:-60} * 10; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
# Log lines since mark: each scenario looks at its own.
mark() { since=$(wc -l <"$log"); }
new() { tail -n "+$((since + 1))" "$log"; }
wait_new() { # wait_new PATTERN [COUNT [SECONDS]]: COUNT new lines match
	local i n
	for ((i = 0; i < ${3:-60} * 10; i++)); do
		n=$(new | grep -c -- "$1")
		[ "$n" -ge "${2:-1}" ] && return 0
		sleep 0.1
	done
	echo "     (${n:-0} of ${2:-1} lines matching '$1')"
	return 1
}
# stop_wait PID: SIGTERM, then up to 120 s for it to exit; its status in rc.
stop_wait() {
	local i
	kill -TERM "$1" 2>/dev/null
	for ((i = 0; i < 1200; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then
		echo "     pid $1 still running after 120 s: SIGKILL"
		kill -KILL "$1" 2>/dev/null
	fi
	wait "$1"
	rc=$?
	forget "$1"
}
# vg_clean NAME LOG: what memcheck said about one process at its exit.
vg_clean() {
	local name=$1 f=$2 sum def ind pos rea fds
	sum=$(grep -o 'ERROR SUMMARY: [0-9,]* errors' "$f" | tail -1)
	def=$(grep -o 'definitely lost: [0-9,]* bytes' "$f" | tail -1)
	ind=$(grep -o 'indirectly lost: [0-9,]* bytes' "$f" | tail -1)
	pos=$(grep -o 'possibly lost: [0-9,]* bytes' "$f" | tail -1)
	rea=$(grep -o 'still reachable: [0-9,]* bytes' "$f" | tail -1)
	grep -q 'All heap blocks were freed' "$f" && rea="all heap blocks freed"
	check "$name: valgrind ran to the leak check at exit" \
		grep -q 'HEAP SUMMARY' "$f"
	check "$name: memcheck: ${sum:-no ERROR SUMMARY}" \
		test "$sum" = "ERROR SUMMARY: 0 errors"
	check "$name: nothing definitely or indirectly lost (${def:-definitely lost: 0}, ${ind:-indirectly lost: 0}; ${pos:-possibly lost: 0}; ${rea:-still reachable: 0})" \
		bash -c "! grep -Eq '(definitely|indirectly) lost: [1-9]' '$f'"
	# --track-fds: each descriptor open at exit, then where it was opened
	# (or "<inherited from parent>": ours, not the proxy's).
	fds=$(awk '/== Open / { d = $0; sub(/^==[0-9]*== /, "", d); next }
		d != "" { if ($0 !~ /inherited from parent/) {
			sub(/^==[0-9]*== *at 0x[0-9A-F]*: /, "", $0); print d " " $0 }
			d = "" }' "$f")
	check "$name: no descriptor of its own left open at exit${fds:+ ($(tr '\n' ';' <<<"$fds"))}" \
		test -z "$fds"
	vg_logs+=("$f")
}
vg_logs=()
t_start=$SECONDS

# Fifteen free ports, all different (nothing listens on them yet, so
# free_port alone could hand out one twice).
ports=() tries=0
while [ ${#ports[@]} -lt 15 ] && [ $((tries += 1)) -le 100 ]; do
	p=$(free_port) || break
	case " ${ports[*]} " in *" $p "*) ;; *) ports+=("$p") ;; esac
done
[ ${#ports[@]} -eq 15 ] || { echo "FAIL: no 15 free ports"; exit 1; }
read -r echo_port tls_port dead1 dead2 p_main p_short p_fail p_down p_tls \
	p_badtls p_self p_new p_wk p_adm p_adm2 <<<"${ports[*]}"

python3 "$here/proxy_vg.py" echo "$echo_port" 2>/dev/null & pids+=($!)
openssl s_server -quiet -accept "$tls_port" -Verify 1 -CAfile "$pki/ca.crt" \
	-cert "$pki/server-ec.crt" -key "$pki/server-ec.key" \
	-cert_chain "$pki/int.crt" -rev >"$work/s_server.log" 2>&1 &
pids+=($!)
wait_port "$echo_port" && wait_port "$tls_port" || bad "backends did not start"

# ---- configuration ------------------------------------------------------------
listen_block() { # listen_block PORT UPSTREAM [HANDSHAKE_TIMEOUT]
	cat <<EOF
listen 127.0.0.1:$1 {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    handshake_timeout ${3:-60}
    upstream $2
}
EOF
}
# config MODE: good (as started), reloaded (p_short out, p_new in), typo,
# nokey.  Generous timeouts: valgrind is slow.
config() {
	echo "# generated by tests/test_proxy_valgrind.sh ($1)"
	echo "log_level info"
	echo "admin 127.0.0.1:$p_adm"
	cat <<EOF
listen 127.0.0.1:$p_main {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    crl $pki/int.crl
    allow_uri_prefix spiffe://example.org/
    handshake_timeout 60
    upstream main
    host admin.example.com {
        cert $work/admin.pem
        key $pki/admin-server.key
        upstream pp
    }
}
EOF
	if [ "$1" = good ]; then
		listen_block "$p_short" main 3 # garbage, stalled, vanishing clients
	else
		listen_block "$p_new" main
	fi
	listen_block "$p_fail" failover
	listen_block "$p_down" down
	listen_block "$p_tls" tlsback
	listen_block "$p_badtls" badtrust
	listen_block "$p_self" main # health-checked by upstream selfcheck
	[ "$1" = typo ] && echo "    cret $pki/server-ec-chain.pem"
	cat <<EOF
upstream main {
    target 127.0.0.1:$echo_port
    idle_timeout 120
}
upstream pp {
    target 127.0.0.1:$echo_port
    proxy_protocol v2
}
upstream failover {
    target 127.0.0.1:$dead1
    target 127.0.0.1:$echo_port
}
upstream down {
    target 127.0.0.1:$dead1
    target 127.0.0.1:$dead2
    connect_timeout 30
}
upstream tlsback {
    target 127.0.0.1:$tls_port
    tls on
    cert $pki/client-ec-chain.pem
    key $pki/client-ec.key
    ca $pki/ca-bundle.pem
    server_name localhost
    connect_timeout 60
}
upstream badtrust {
    target 127.0.0.1:$tls_port
    tls on
    cert $pki/client-ec-chain.pem
    key $pki/client-ec.key
    ca $pki/other-ca.crt
    server_name localhost
    connect_timeout 60
}
upstream checked {
    target 127.0.0.1:$dead2
    target 127.0.0.1:$echo_port
    health_interval 1
    connect_timeout 30
}
upstream selfcheck {
    target 127.0.0.1:$p_self
    tls on
    cert $pki/client-ec-chain.pem
    key $pki/$([ "$1" = nokey ] && echo no-such.key || echo client-ec.key)
    ca $pki/ca.crt
    server_name localhost
    health_interval 2
    connect_timeout 60
}
EOF
}
conf=$work/proxy.conf
config good >"$conf"
out=$("$proxy" -t -c "$conf" 2>&1)
check "the configuration passes -t (${out##*$'\n'})" test $? -eq 0

# ---- one process under valgrind ---------------------------------------------------
log=$work/proxy.log
vglog=$work/vg.log
"${vg[@]}" --log-file="$vglog" "$proxy" -c "$conf" 2>"$log" &
proxy_pid=$!
pids+=("$proxy_pid")
check "the proxy starts under valgrind ($((SECONDS - t_start)) s)" \
	wait_in "$log" "started, pid $proxy_pid" 120
since=0

# A good client, 256 KiB both ways, close_notify both ways.
mark
out=$(py xfer "$p_main" 262144 --close 2>&1)
check "mTLS client -> proxy -> echo: 256 KiB intact ($out)" test $? -eq 0
check "... the log names the client and the bytes" \
	wait_new "listen=127.0.0.1:$p_main host=default sni=\"localhost\" subject=\"CN=client.test\" id=\"spiffe://example.org/ns/test/sa/client\" upstream=main .*bytes_to_upstream=262144 bytes_to_client=262144 .*status=ok"

mark
out=$(py xfer "$p_main" 1000 --sni admin.example.com --pp2 2>&1)
check "SNI host admin.example.com: its certificate, its upstream, a PROXY v2 header ($out)" \
	test $? -eq 0
check "... the log names the host and its upstream" \
	wait_new "host=admin.example.com sni=\"admin.example.com\" .*upstream=pp .*bytes_to_upstream=1000 .*status=ok"

# ---- refused and broken clients ----------------------------------------------
mark
out=$(py refused "$p_main" --nocert 2>&1)
check "no client certificate: refused, no data ($out)" test $? -eq 0
check "... the log says why" \
	wait_new 'error="client: TLS handshake: client certificate required but not presented"'

mark
out=$(py garbage "$p_short" 2>&1)
check "garbage instead of a ClientHello, stalled clients: all closed ($out)" \
	test $? -eq 0
check "... one error line each" \
	wait_new "listen=127.0.0.1:$p_short .*error=" 7
check "... the stalled ones by the handshake timeout" \
	wait_new "listen=127.0.0.1:$p_short .*error=\"client: TLS handshake timed out after 3 s\"" 3

mark
out=$(py abort "$p_main" 2>&1)
check "clients vanishing in the ClientHello and in their second flight ($out)" \
	test $? -eq 0
check "... one error line each" \
	wait_new "listen=127.0.0.1:$p_main .*error=" 6

# ---- upstreams ------------------------------------------------------------------
mark
okc=0
for ((i = 0; i < 3; i++)); do
	py xfer "$p_fail" 4096 >/dev/null 2>&1 && okc=$((okc + 1))
done
check "first target down: 3 of 3 connections fail over to the next ($okc)" \
	test "$okc" -eq 3
check "... the log names the live target" \
	wait_new "upstream=failover target=127.0.0.1:$echo_port bytes_to_upstream=4096 .*status=ok" 3

mark
out=$(py refused "$p_down" 2>&1)
check "all targets down: the client is closed without data ($out)" test $? -eq 0
check "... the log says no target was reachable" \
	wait_new "upstream=down .*error=\"no target of upstream down reachable"

mark
out=$(py rev "$p_tls" 2>&1)
check "mTLS upstream (openssl s_server -rev): the line comes back reversed ($out)" \
	test $? -eq 0
out=$(py refused "$p_badtls" 2>&1)
check "an upstream signed by an untrusted CA: closed without data ($out)" test $? -eq 0
check "... the log says why" \
	wait_new "upstream=badtrust .*error=\"upstream 127.0.0.1:$tls_port: TLS handshake: "

check "health check (TCP): a dead target is marked down" \
	wait_in "$log" "upstream checked: target 127.0.0.1:$dead2 is down: Connection refused"
check "health check (mTLS to the proxy's own listener): passes" \
	wait_in "$log" "listen=127.0.0.1:$p_self .*subject=\"CN=client.test\".* upstream=main "
check "... and never marks it down" \
	bash -c "! grep -q 'upstream selfcheck: target .* is down' '$log'"

# ---- SIGHUP ---------------------------------------------------------------------
mark
rm -f "$work/ready" "$work/go"
py hold "$p_main" "$work/ready" "$work/go" >"$work/hold.out" 2>&1 &
hold_pid=$!
pids+=("$hold_pid")
for ((i = 0; i < 600; i++)); do [ -e "$work/ready" ] && break; sleep 0.1; done
check "a connection is open (and echoes) before the reload" test -e "$work/ready"
config reloaded >"$conf"
kill -HUP "$proxy_pid"
# (A health check of p_self may be in flight too: "at least one".)
check "SIGHUP: reloaded, p_short closed, p_new opened, connections on the old generation" \
	wait_new "reloaded .*: 6 listener(s) kept, 1 opened, 1 closed; [1-9][0-9]* connection(s) finish on the previous configuration"
touch "$work/go"
wait "$hold_pid"
hold_rc=$?
forget "$hold_pid"
check "... the open connection still echoes, then ends ($(cat "$work/hold.out"))" \
	test "$hold_rc" -eq 0
out=$(py xfer "$p_new" 4096 2>&1)
check "... the new listener serves ($out)" test $? -eq 0
check "... the removed listener is closed" \
	bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$p_short) 2>/dev/null"

mark
config typo >"$conf"
tl=$(grep -n '^    cret' "$conf" | cut -d: -f1)
kill -HUP "$proxy_pid"
check "SIGHUP with a syntax error: refused, the log names file and line" \
	wait_new "reload failed: $conf:$tl: unknown directive 'cret'; still serving"
mark
config nokey >"$conf"
kill -HUP "$proxy_pid"
check "SIGHUP with a missing key: refused, the log names the file" \
	wait_new "reload failed: .*no-such.key.*; still serving"
out=$(py xfer "$p_new" 4096 2>&1)
check "... the proxy still serves ($out)" test $? -eq 0

# ---- the admin endpoint ------------------------------------------------------------
adm=http://127.0.0.1:$p_adm
out=$(curl -s -m 60 "$adm/metrics")
check "admin: /metrics counts the handshakes" grep -q '^mtls_handshakes_total{.*result="failed",reason="peer_no_cert"} [1-9]' <<<"$out"
out=$(curl -s -m 60 "$adm/status")
check "admin: /status is JSON" python3 -c 'import json, sys; json.loads(sys.stdin.read())' <<<"$out"
check "admin: POST is refused (405)" test "$(curl -s -m 60 -o /dev/null -w '%{http_code}' -X POST "$adm/metrics")" = 405
check "admin: an unknown path (404)" test "$(curl -s -m 60 -o /dev/null -w '%{http_code}' "$adm/x")" = 404

# ---- SIGTERM with a connection open ---------------------------------------------
mark
rm -f "$work/ready"
py hold "$p_new" "$work/ready" "$work/go" --until-closed >"$work/hold2.out" 2>&1 &
hold_pid=$!
pids+=("$hold_pid")
for ((i = 0; i < 600; i++)); do [ -e "$work/ready" ] && break; sleep 0.1; done
check "a connection is open (and echoes) before SIGTERM" test -e "$work/ready"
t0=$SECONDS
stop_wait "$proxy_pid"
check "SIGTERM: the proxy exits 0 (rc $rc, $((SECONDS - t0)) s)" test "$rc" -eq 0
wait "$hold_pid"
hold_rc=$?
forget "$hold_pid"
check "... the open connection is closed after the grace ($(cat "$work/hold2.out"))" \
	test "$hold_rc" -eq 0
check "... the log says so" \
	bash -c "grep -q 'stopping: 1 connection(s) open' '$log' &&
	grep -q 'listen=127.0.0.1:$p_new .*error=\"proxy shutting down\"' '$log' &&
	grep -q 'mtls-proxy stopped' '$log'"
vg_clean "workers 1" "$vglog"
t_one=$((SECONDS - t_start))
echo "# workers 1 under valgrind: $t_one s"

# ---- workers 2: a supervisor and its forked workers under valgrind ------------------
t_wk=$SECONDS
cat >"$work/workers.conf" <<EOF
workers 2
log_level info
admin 127.0.0.1:$p_adm2
$(listen_block "$p_wk" main)
upstream main {
    target 127.0.0.1:$echo_port
}
EOF
log=$work/workers.log
"${vg[@]}" --log-file="$work/vgw.%p.log" "$proxy" -c "$work/workers.conf" 2>"$log" &
sup_pid=$!
pids+=("$sup_pid")
since=0
check "workers 2: the supervisor starts two workers under valgrind" \
	wait_new "worker=[0-9]* mtls-proxy .* started, pid" 2 120
mark
okc=0
for ((i = 0; i < 4; i++)); do
	py xfer "$p_wk" 4096 >/dev/null 2>&1 && okc=$((okc + 1))
done
check "workers 2: 4 of 4 connections echoed ($okc)" test "$okc" -eq 4
check "... served by the workers (worker= in the log)" \
	wait_new "info: worker=[0-9]* conn .*bytes_to_upstream=4096 .*status=ok" 4
out=$(curl -s -m 60 "http://127.0.0.1:$p_adm2/metrics")
check "workers 2: /metrics adds both workers up (4 handshakes)" grep -qxF \
	"mtls_handshakes_total{listener=\"127.0.0.1:$p_wk\",host=\"default\",result=\"ok\",reason=\"none\"} 4" <<<"$out"
mark
kill -HUP "$sup_pid"
check "workers 2: SIGHUP is passed on, both workers reload" \
	wait_new "worker=[0-9]* reloaded " 2 120
victim=$(grep -o 'worker=[0-9]* mtls-proxy .* started, pid' "$log" | head -1 |
	sed 's/worker=\([0-9]*\).*/\1/')
mark
# Only a child of our supervisor.
[ -n "$victim" ] && [ "$(ps -o ppid= -p "$victim" | tr -d ' ')" = "$sup_pid" ] &&
	kill -KILL "$victim"
check "workers 2: a worker killed -9 ($victim) is restarted" \
	wait_new "worker=[0-9]* mtls-proxy .* started, pid" 1 120
check "... the supervisor logged it" \
	bash -c "grep -q 'worker $victim died of signal 9; restarting it' '$log'"
okc=0
for ((i = 0; i < 2; i++)); do
	py xfer "$p_wk" 4096 >/dev/null 2>&1 && okc=$((okc + 1))
done
check "workers 2: 2 of 2 connections echoed after the restart ($okc)" test "$okc" -eq 2
mark
stop_wait "$sup_pid"
check "workers 2: SIGTERM: the supervisor exits 0 (rc $rc)" test "$rc" -eq 0
check "... after both workers exited" \
	test "$(new | grep -c 'worker [0-9]* exited')" -eq 2
n_logs=0
for f in "$work"/vgw.*.log; do
	p=${f##*/vgw.}
	p=${p%.log}
	[ "$p" = "$victim" ] && continue # killed: no summary
	n_logs=$((n_logs + 1))
	if [ "$p" = "$sup_pid" ]; then
		vg_clean "workers 2: supervisor" "$f"
	else
		vg_clean "workers 2: worker $p" "$f"
	fi
done
check "workers 2: valgrind logs of the supervisor and two workers ($n_logs)" \
	test "$n_logs" -eq 3
echo "# workers 2 under valgrind: $((SECONDS - t_wk)) s"

if [ "$fails" -ne 0 ] || [ -n "${MTLS_TEST_VERBOSE:-}" ]; then
	for f in "$work/proxy.log" "$work/workers.log"; do
		echo "--- $(basename "$f")"
		cat "$f" 2>/dev/null
	done
	for f in "${vg_logs[@]}"; do
		echo "--- $(basename "$f")"
		cat "$f"
	done
fi
[ "$fails" -eq 0 ]
