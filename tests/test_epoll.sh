#!/usr/bin/env bash
# tests/test_epoll.sh BUILD - the epoll examples as a load test: many
# concurrent mTLS connections, each sending bursts of 1 byte to 64 KiB
# messages that must come back byte for byte, against the server reading
# up to 8 times per event and reading once per event.  The second mode is
# the event-loop rule of mtls.h: it only passes because the server serves
# again every connection whose mtls_conn_pending() is non-zero.
# MTLS_TEST_WRAPPER (valgrind) prefixes the server, with fewer connections.
# tests/run.sh: valgrind
set -uo pipefail
build=${1:?usage: tests/test_epoll.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
checks=0 fails=0
# shellcheck source=tests/lib.sh
. "$here/lib.sh"
srv=$build/examples/epoll_server
cli=$build/examples/epoll_client
for b in "$srv" "$cli"; do
	[[ -x $b ]] || { echo "not built: $b"; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtls-epoll-test.XXXXXX")
spid=""
cleanup() {
	[[ -n $spid ]] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
if [[ -z ${MTLS_TEST_PKI:-} ]]; then
	"$here/pki.sh" "$tmp/pki" >/dev/null || { echo "tests/pki.sh failed"; exit 1; }
	MTLS_TEST_PKI=$tmp/pki
fi
P=$MTLS_TEST_PKI
# shellcheck disable=SC2206
wrap=(${MTLS_TEST_WRAPPER:-})
conns=200 msgs=4 secs=120
if [[ ${MTLS_TEST_VALGRIND:-0} == 1 ]]; then
	conns=16 msgs=3 secs=300
fi

# run_mode READS_PER_EVENT: server up, client load, server stopped.
run_mode() {
	local reads=$1 port rc
	port=$(free_port) || { bad "no free port"; return; }
	"${wrap[@]}" "$srv" "$port" "$P/server-ec-chain.pem" "$P/server-ec.key" \
		"$P/ca.crt" "$reads" >"$tmp/srv.out" 2>&1 &
	spid=$!
	if ! wait_port "$port"; then
		bad "reads/event $reads: server did not start"
		cat "$tmp/srv.out"
		return
	fi
	# wait_port's probe is one connection that never speaks TLS
	timeout $((secs + 30)) "$cli" "$port" "$P/client-ec-chain.pem" \
		"$P/client-ec.key" "$P/ca.crt" "$conns" "$msgs" "$secs" \
		>"$tmp/cli.out" 2>&1
	rc=$?
	check "reads/event $reads: client exit 0 ($(tail -1 "$tmp/cli.out"))" \
		test "$rc" -eq 0
	check "reads/event $reads: every connection echoed in full" \
		grep -q "^epoll_client: $conns/$conns connections echoed in full" \
		"$tmp/cli.out"
	check "reads/event $reads: server still running" kill -0 "$spid"
	kill -TERM "$spid" 2>/dev/null
	wait "$spid"
	rc=$?
	spid=""
	check "reads/event $reads: server exit 0 ($(tail -1 "$tmp/srv.out"))" \
		test "$rc" -eq 0
	check "reads/event $reads: $conns closed cleanly, at most the probe failed" \
		grep -qE "connections, $conns closed cleanly, [01] failed" \
		"$tmp/srv.out"
	[[ $fails -eq 0 ]] || { tail -5 "$tmp/cli.out"; tail -5 "$tmp/srv.out"; }
}

if [[ ${MTLS_TEST_VALGRIND:-0} != 1 ]]; then
	run_mode 8
fi
run_mode 1

echo "test_epoll: $checks checks, $fails failed"
[[ $fails -eq 0 ]]
