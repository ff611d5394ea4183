#!/usr/bin/env bash
# Server cost per handshake of mtls-proxy builds (and nginx) by key-exchange group, X25519 against
# P-256: bench/levers.md, "ECDHE (X25519)".  Same proxy and nginx configurations, PKI and load
# generator as bench/run (ECDSA P-256 certificates, client certificates required, one suite; the
# load generator offers --groups X25519 (then P-256) or P-256 only).  Loopback only.
#
#   bench/ecdhe.sh [-n N] LABEL=SERVER ...            callgrind: instructions per operation
#   bench/ecdhe.sh --cpu REPS [-d SECS] LABEL=SERVER ...  server CPU per operation (µs)
#
# SERVER is the path of an mtls-proxy, or "nginx" (/usr/sbin/nginx, stream module, one worker).
# callgrind: one server at a time under valgrind; per cell two warm-up operations, counters zeroed
# from the load generator's hook, N operations (default 10), dump; prints
# "LABEL CELL GROUP instructions_per_op ops=.. resumed=..".  ECDHE_KEEP=DIR keeps each cell's dumps
# there (LABEL.CELL.GROUP.cg.PID.N) for callgrind_annotate.
# --cpu: every server at once, pinned to core 0 (load generator on core 1); repetitions
# interleaved (repetition 1 of every cell and server, then repetition 2, ...), SECS seconds each
# (default 3), utime+stime of the server's processes per operation; prints one line per run, then
# "median LABEL CELL GROUP µs_per_op [min-max]".
# Needs build/bench/{loadgen,backend} (make BUILD=build build/bench/loadgen build/bench/backend).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=10 reps=0 dur=3
while (($#)); do
    case $1 in
    -n) n=$2; shift 2 ;;
    --cpu) reps=$2; shift 2 ;;
    -d) dur=$2; shift 2 ;;
    *) break ;;
    esac
done
(($#)) || { echo "usage: bench/ecdhe.sh [-n N | --cpu REPS [-d SECS]] LABEL=SERVER ..." >&2; exit 2; }
B=$root/build/bench
for b in loadgen backend; do [[ -x $B/$b ]] || { echo "no $B/$b" >&2; exit 1; }; done
((reps)) || command -v valgrind >/dev/null || { echo "valgrind is missing" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
"$root/tests/pki.sh" "$tmp/pki" >/dev/null 2>&1
pki=$tmp/pki
LG=(taskset -c 1 "$B/loadgen" --ca "$pki/ca.crt" --cert "$pki/client-ec-chain.pem" --key "$pki/client-ec.key")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # PORT PID
    local _
    for _ in $(seq 600); do
        kill -0 "$2" 2>/dev/null || return 1
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
family() { # PID and its descendants
    local p=$1 c
    echo "$p"
    # shellcheck disable=SC2013
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do family "$c"; done
}
get() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2" | head -1; }

# server_cmd LABEL SERVER PORT: writes LABEL's configuration, sets cmd=(...)
server_cmd() {
    local label=$1 server=$2 port=$3
    if [[ $server == nginx ]]; then
        cat >"$tmp/$label.conf" <<NGX
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
user $(id -un);
worker_processes 1;
daemon off;
pid $tmp/nginx-$label.pid;
error_log $tmp/nginx-$label.err warn;
events { worker_connections 256; }
stream {
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $pki/server-ec-chain.pem; ssl_certificate_key $pki/server-ec.key;
        ssl_client_certificate $pki/ca.crt; ssl_verify_client on; ssl_verify_depth 2;
        ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets on;
        ssl_session_cache shared:S$label:10m;
        proxy_pass 127.0.0.1:$bport;
    }
}
NGX
        cmd=(/usr/sbin/nginx -p "$tmp" -e "$tmp/nginx-$label.err" -c "$tmp/$label.conf")
    else
        cat >"$tmp/$label.conf" <<CFG
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
}
CFG
        cmd=("$server" -c "$tmp/$label.conf")
    fi
}

bport=$(free_port)
taskset -c 1 "$B/backend" "$bport" 7200 >"$tmp/backend.log" 2>&1 &
pids+=($!)
wait_port "$bport" "$!" || { echo "backend did not start" >&2; exit 1; }

cells=("full_tls12 full --tls1.2" "full_tls13 full --tls1.3" "resumed_tls13 resume --tls1.3"
    "resumed_tls12 resume --tls1.2")
groups=(X25519 P-256)

if ((reps)); then
    declare -A cport cspid
    labels=()
    for spec in "$@"; do
        label=${spec%%=*}
        labels+=("$label")
        cport[$label]=$(free_port)
        server_cmd "$label" "${spec#*=}" "${cport[$label]}"
        taskset -c 0 "${cmd[@]}" >"$tmp/$label.log" 2>&1 &
        cspid[$label]=$!
        pids+=("$!")
        wait_port "${cport[$label]}" "$!" || { echo "$label did not start" >&2; exit 1; }
    done
    : >"$tmp/runs"
    for ((rep = 1; rep <= reps; rep++)); do
        for c in "${cells[@]}"; do
            read -r name mode ver <<<"$c"
            for g in "${groups[@]}"; do
                for label in "${labels[@]}"; do
                    out=$("${LG[@]}" -p "${cport[$label]}" -m "$mode" -c 2 "$ver" --groups "$g" -d "$dur" \
                        -w 1 --server "${cspid[$label]}" 2>"$tmp/lg.err") ||
                        { echo "$label $name $g: $out $(head -c 300 "$tmp/lg.err")" >&2; exit 1; }
                    us=$(awk -v s="$(get srv_cpu_s "$out")" -v o="$(get ok "$out")" \
                        'BEGIN { printf "%.0f", (o > 0 ? s * 1e6 / o : 0) }')
                    echo "run $rep $label $name $g $us ok=$(get ok "$out") resumed=$(get resumed "$out")"
                    echo "$label $name $g $us" >>"$tmp/runs"
                done
            done
        done
    done
    awk '{ k = $1 " " $2 " " $3; v[k] = v[k] " " $4; if (!(k in o)) { o[k] = ++nk; ks[nk] = k } }
        END { for (i = 1; i <= nk; i++) { k = ks[i]; m = split(substr(v[k], 2), a, " ");
              for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++) if (a[y] < a[x]) { t = a[x]; a[x] = a[y]; a[y] = t }
              printf "median %s %s [%s-%s]\n", k, a[int((m + 1) / 2)], a[1], a[m] } }' "$tmp/runs"
    exit 0
fi

# cg_cell LABEL CPID PORT NAME MODE VERSION GROUP: one cell under callgrind; 1 if not counted
cg_cell() {
    local label=$1 cpid=$2 port=$3 name=$4 mode=$5 ver=$6 g=$7 fam before out f t instr=0 nd=0 ops
    fam=$(family "$cpid" | tr '\n' ' ')
    before=$(ls "$tmp/cg-$label")
    out=$("${LG[@]}" -p "$port" -m "$mode" -c 1 "$ver" --groups "$g" -d 600 -w 2 -n "$n" \
        --hook "timeout 120 callgrind_control -z $fam >/dev/null" 2>"$tmp/lg.err") ||
        { echo "$label $name $g: $out $(head -c 300 "$tmp/lg.err")" >&2; exit 1; }
    # shellcheck disable=SC2086
    timeout 120 callgrind_control -d $fam >/dev/null 2>&1 &
    # callgrind acts on a command when the process next runs: an nginx worker waits in epoll_wait
    # until a connection comes, so one is opened (and closed at once) to wake it
    sleep 0.5
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null || true
    wait $! 2>/dev/null || true
    sleep 1
    for f in "$tmp/cg-$label"/cg.*; do
        grep -qxF "$(basename "$f")" <<<"$before" && continue
        t=$(awk '/^totals:/ {print $2}' "$f")
        instr=$((instr + ${t:-0})) nd=$((nd + 1))
        if [[ -n ${ECDHE_KEEP:-} ]]; then
            mkdir -p "$ECDHE_KEEP"
            cp "$f" "$ECDHE_KEEP/$label.$name.$g.$(basename "$f")"
        fi
    done
    if ((nd != $(wc -w <<<"$fam"))); then
        echo "$label $name $g: $nd callgrind dumps for the processes $fam: not counted" >&2
        return 1
    fi
    ops=$(get ok "$out")
    echo "$label $name $g $((instr / ops)) ops=$ops resumed=$(get resumed "$out")"
}

for spec in "$@"; do
    label=${spec%%=*}
    port=$(free_port)
    server_cmd "$label" "${spec#*=}" "$port"
    mkdir -p "$tmp/cg-$label"
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$tmp/cg-$label/cg.%p" \
        "${cmd[@]}" >"$tmp/$label.log" 2>&1 &
    cpid=$!
    pids+=("$cpid")
    wait_port "$port" "$cpid" || { echo "$label did not start: $(tail -3 "$tmp/$label.log")" >&2; exit 1; }
    # the first cell of nginx under callgrind finds a stray dump: one is run first, not reported
    cg_cell "$label" "$cpid" "$port" warm-up full --tls1.2 X25519 >/dev/null 2>&1 || true
    for c in "${cells[@]}"; do
        read -r name mode ver <<<"$c"
        for g in "${groups[@]}"; do
            cg_cell "$label" "$cpid" "$port" "$name" "$mode" "$ver" "$g" || true
        done
    done
    kill "$cpid"
    wait "$cpid" 2>/dev/null || true
done
