#!/usr/bin/env bash
# bench/bulk_cg.sh - callgrind instructions per MiB relayed by mtls-proxy (issue #14 item 7), and
# where they go, for one or more builds.  Load-independent: no timing, exact instruction counts of the
# proxy's own process (user space; the kernel's copies and system calls are not counted).
#
#   bench/bulk_cg.sh [--tls1.2|--tls1.3] [-n DOWNLOADS] BUILD_DIR...     e.g. build/tuned build
#
# Same set-up as bench/run's bulk cell: the proxy (one worker, cert + client_auth require, plain
# upstream) in front of bench/backend, bench/loadgen downloading GET /big (16 MiB) over one TLS
# connection.  Per build: the proxy starts under callgrind, the load generator warms up (one
# download), zeroes the counters (callgrind_control -z, its --hook), makes DOWNLOADS more (default
# 2), and the proxy's counters are dumped.  Prints instructions per MiB, the functions that cost most
# (self cost, bench/cg_top.py) and who calls memcpy, with the dump kept under build/bench-bulk-cg/.  Stops only what it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ver=--tls1.2 n=2 dirs=()
while (($#)); do
    case $1 in
    --tls1.2 | --tls1.3) ver=$1 ;;
    -n) n=$2; shift ;;
    -*) echo "usage: $0 [--tls1.2|--tls1.3] [-n DOWNLOADS] BUILD_DIR..." >&2; exit 2 ;;
    *) dirs+=("$1") ;;
    esac
    shift
done
((${#dirs[@]})) || { echo "usage: $0 [--tls1.2|--tls1.3] [-n DOWNLOADS] BUILD_DIR..." >&2; exit 2; }
command -v valgrind >/dev/null || { echo "bulk_cg.sh: valgrind is missing" >&2; exit 1; }

pids=()
tmp=$(mktemp -d /tmp/mtls-bulkcg.XXXXXX)
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
wait_port() { # wait_port PORT PID: bounded
    for _ in $(seq 600); do
        kill -0 "$2" 2>/dev/null || return 1
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

B=$root/build/bench
[[ -x $B/loadgen && -x $B/backend ]] ||
    make -C "$root" -s --no-print-directory BUILD=build bench-bins >&2
"$root/tests/pki.sh" "$tmp/pki" >/dev/null
pki=$tmp/pki
out=$root/build/bench-bulk-cg
mkdir -p "$out"

bport=24699
taskset -c 1 "$B/backend" "$bport" 3600 >"$tmp/backend.log" 2>&1 &
bpid=$!
pids+=("$bpid")
wait_port "$bport" "$bpid" || { echo "bulk_cg.sh: backend did not start" >&2; exit 1; }

port=24700
for d in "${dirs[@]}"; do
    port=$((port + 1))
    [[ -x $d/mtls-proxy ]] || { echo "bulk_cg.sh: no $d/mtls-proxy" >&2; exit 1; }
    tag=$(echo "$d" | tr '/' '_')
    cat >"$tmp/$tag.conf" <<CFG
log_level error
listen 127.0.0.1:$port {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    client_auth require
    upstream be
}
upstream be {
    target 127.0.0.1:$bport
    tls off
    idle_timeout 300
}
CFG
    rm -f "$out/cg.$tag".*
    taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out/cg.$tag.%p" \
        "$d/mtls-proxy" -c "$tmp/$tag.conf" >"$tmp/$tag.log" 2>&1 &
    ppid=$!
    pids+=("$ppid")
    wait_port "$port" "$ppid" || { echo "bulk_cg.sh: $d did not start: $(tail -3 "$tmp/$tag.log")" >&2; exit 1; }
    res=$(taskset -c 1 "$B/loadgen" --ca "$pki/ca.crt" --cert "$pki/client-ec-chain.pem" \
        --key "$pki/client-ec.key" -p "$port" -m bulk -c 1 "$ver" -d 600 -w 1 -n "$n" \
        --hook "timeout 120 callgrind_control -z $ppid >/dev/null")
    timeout 120 callgrind_control -d "$ppid" >/dev/null
    sleep 0.5
    kill "$ppid" 2>/dev/null || true
    wait "$ppid" 2>/dev/null || true
    dump=$out/cg.$tag.$ppid # the dump made after the counted downloads: cg.TAG.PID.1
    for f in "$out/cg.$tag.$ppid".*; do [[ -e $f ]] && dump=$f; done
    bytes=$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' <<<"$res")
    instr=$(awk '/^totals:/ {print $2}' "$dump")
    echo "== $d ($("$d/mtls-proxy" -V 2>&1 | head -1)), $ver"
    awk -v i="$instr" -v b="$bytes" 'BEGIN {
        printf "relayed %.1f MiB, %d instructions, %.0f instructions per MiB (%.2f per byte)\n",
               b / 1048576, i, i / (b / 1048576), i / b }'
    python3 "$root/bench/cg_top.py" "$dump" 14 __memcpy_avx_unaligned_erms
    echo "(dump: $dump)"
done
