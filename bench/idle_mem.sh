#!/usr/bin/env bash
# bench/idle_mem.sh - what one idle server-side connection of mtls-proxy holds, by allocation site.
#
#   bench/idle_mem.sh [--conns N] [--keep DIR] BUILD_DIR...
#
# For each BUILD_DIR (holding mtls-proxy: build, build/mbedtls36, build/tuned) and each TLS version it
# speaks: starts a fresh mtls-proxy under valgrind's massif (client certificates required, a plain
# backend behind it, as bench/run configures it), takes a detailed heap snapshot (vgdb
# detailed_snapshot), opens N connections with bench/loadgen -m idle (full handshake and one request
# each, then idle), takes a second snapshot, and prints the difference per connection by category
# (bench/idle_sites.py): mbedTLS record buffers, ssl context, session, peer chain, transforms, PSA,
# mtls_conn, the proxy's struct conn, the upstream side, and the heap's own overhead (massif counts
# 8 bytes of administration per block; glibc's real overhead is what RSS adds on top, see bench/run).
# Loopback only; stops only the processes it started, by PID; every wait is bounded.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
n=200 keep=''
while (($#)); do
    case $1 in
    --conns) n=$2; shift ;;
    --keep) keep=$2; shift ;;
    -*) echo "usage: $0 [--conns N] [--keep DIR] BUILD_DIR..." >&2; exit 2 ;;
    *) break ;;
    esac
    shift
done
(($#)) || { echo "usage: $0 [--conns N] [--keep DIR] BUILD_DIR..." >&2; exit 2; }
command -v valgrind >/dev/null && command -v vgdb >/dev/null || { echo "idle_mem: needs valgrind" >&2; exit 1; }

B=$root/build/bench
[[ -x $B/loadgen && -x $B/backend ]] ||
    make -C "$root" -s --no-print-directory BUILD=build bench-bins >&2

pids=()
tmp=$(mktemp -d /tmp/mtls-idlemem.XXXXXX)
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    [[ -n $keep ]] && { mkdir -p "$keep"; cp "$tmp"/*.ms "$keep"/ 2>/dev/null || true; }
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
stop_pid() {
    local p=$1
    kill "$p" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}
wait_port() { # wait_port PORT PID TRIES
    for _ in $(seq "$3"); do
        kill -0 "$2" 2>/dev/null || return 1
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

"$root/tests/pki.sh" "$tmp/pki" >/dev/null 2>&1
pki=$tmp/pki
bport=24899
"$B/backend" "$bport" 3600 >"$tmp/backend.log" 2>&1 &
bpid=$!
pids+=("$bpid")
wait_port "$bport" "$bpid" 100 || { echo "idle_mem: backend did not start" >&2; exit 1; }
LG=("$B/loadgen" --ca "$pki/ca.crt" --cert "$pki/client-ec-chain.pem" --key "$pki/client-ec.key")

pn=24900
for d in "$@"; do
    proxy=$d/mtls-proxy
    [[ -x $proxy ]] || { echo "idle_mem: $proxy: not built" >&2; exit 1; }
    label=$("$proxy" -V 2>&1 | head -1)
    for v in 1.2 1.3; do
        pn=$((pn + 1))
        cat >"$tmp/p.conf" <<CFG
log_level error
max_connections $((2 * n + 100))
listen 127.0.0.1:$pn {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    client_auth require
    upstream be
}
upstream be {
    target 127.0.0.1:$bport
    tls off
    idle_timeout 600
}
CFG
        tag=$(basename "$d")-tls$v
        valgrind --tool=massif --depth=40 --threshold=0 --detailed-freq=1000000 --vgdb=yes \
            --massif-out-file="$tmp/$tag.final.ms" "$proxy" -c "$tmp/p.conf" >"$tmp/$tag.log" 2>&1 &
        vpid=$!
        pids+=("$vpid")
        if ! wait_port "$pn" "$vpid" 600; then
            echo "idle_mem: $d did not start: $(tail -3 "$tmp/$tag.log")" >&2
            exit 1
        fi
        if ! "${LG[@]}" -p "$pn" -m full -n 1 -c 1 -d 60 "--tls$v" >/dev/null 2>&1; then
            echo "$label: no TLS $v"
            stop_pid "$vpid"
            continue
        fi
        # one connection made and gone: what a first handshake leaves for good (caches, tables)
        sleep 1
        timeout 120 vgdb --pid="$vpid" detailed_snapshot "$tmp/$tag.0.ms" >/dev/null
        "${LG[@]}" -p "$pn" -m idle -c "$n" -d 900 "--tls$v" >"$tmp/lg.out" 2>"$tmp/lg.err" &
        lpid=$!
        pids+=("$lpid")
        for _ in $(seq 6000); do
            grep -q '^ready' "$tmp/lg.out" 2>/dev/null && break
            kill -0 "$lpid" 2>/dev/null || break
            sleep 0.1
        done
        held=$(awk '/^ready/ {print $2}' "$tmp/lg.out")
        [[ -n $held && $held -gt 0 ]] || { echo "idle_mem: no connection held: $(head -c 300 "$tmp/lg.err")" >&2; exit 1; }
        sleep 1
        timeout 120 vgdb --pid="$vpid" detailed_snapshot "$tmp/$tag.1.ms" >/dev/null
        stop_pid "$lpid"
        stop_pid "$vpid"
        echo "== $label, TLS $v: $held idle connections (massif, bytes per connection)"
        python3 "$here/idle_sites.py" "$tmp/$tag.0.ms" "$tmp/$tag.1.ms" "$held"
    done
done
