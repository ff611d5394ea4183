#!/usr/bin/env bash
# bench/psk_ke.sh - TLS 1.3 resumption with and without (EC)DHE, in server instructions per resumption
# (valgrind callgrind, bench/run's method): mtls-proxy of a build at the default (psk_dhe_ke) and with
# "tls13_resumption psk_ke", and nginx stream, each resumed by bench/loadgen with its default offer
# (psk_dhe_ke only) and with --no-dhe-kex (psk_dhe_ke and psk_ke, as s_client -allow_no_dhe_kex).
#
#   bench/psk_ke.sh [BUILD [N [REPS]]]  (default build/tuned, N = 20 counted resumptions per callgrind
#                                        cell; REPS = 0 interleaved repetitions of the CPU cells)
#
# Client certificates required everywhere; ECDSA P-256 leaves from tests/pki.sh; loopback; server on core
# 0, load generator and backend on core 1.  Per cell: 2 warm-up resumptions (the first gets the session),
# callgrind counters zeroed on the server's processes, N resumptions, dump, sum of the dumps' totals over
# N.  With REPS > 0, then the same servers without valgrind, all at once, and REPS rounds of 4-second cells
# interleaved (each server in turn, each client in turn): server CPU (utime+stime of its processes, from
# loadgen --server) per resumption.  Prints one line per cell.  Only the processes started here are
# stopped, by PID.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-build/tuned}
n=${2:-20}
reps=${3:-0}
[[ $build == /* ]] || build=$root/$build
[[ -x $build/mtls-proxy ]] || { echo "psk_ke.sh: no $build/mtls-proxy" >&2; exit 1; }
B=$root/build/bench
[[ -x $B/loadgen && -x $B/backend ]] ||
    make -C "$root" -s --no-print-directory BUILD=build bench-bins >/dev/null

tmp=$(mktemp -d /tmp/mtls-pskke.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
wait_port() { # wait_port PORT PID
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
    # shellcheck disable=SC2013 # the file holds PIDs separated by spaces
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do family "$c"; done
}

"$root/tests/pki.sh" "$tmp/pki" >/dev/null 2>&1
pki=$tmp/pki
bport=24389
taskset -c 1 "$B/backend" "$bport" 3600 >/dev/null 2>&1 &
pids+=($!)
wait_port "$bport" "$!"
LG=(taskset -c 1 "$B/loadgen" --ca "$pki/ca.crt" --cert "$pki/client-ec-chain.pem" --key "$pki/client-ec.key")

proxy_conf() { # PORT [LISTEN LINE]
    printf 'log_level error\nlisten 127.0.0.1:%s {\n    cert %s\n    key %s\n' "$1" \
        "$pki/server-ec-chain.pem" "$pki/server-ec.key"
    printf '    client_ca %s\n    client_auth require\n    %s\n    upstream be\n}\n' "$pki/ca.crt" "${2:-}"
    printf 'upstream be {\n    target 127.0.0.1:%s\n    tls off\n}\n' "$bport"
}
nginx_conf() { # PORT
    cat <<NGX
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
user $(id -un);
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err warn;
events { worker_connections 512; }
stream {
    server {
        listen 127.0.0.1:$1 ssl;
        ssl_certificate $pki/server-ec-chain.pem; ssl_certificate_key $pki/server-ec.key;
        ssl_client_certificate $pki/ca.crt; ssl_verify_client on; ssl_verify_depth 2;
        ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets on;
        ssl_session_cache shared:S:10m;
        proxy_pass 127.0.0.1:$bport;
    }
}
NGX
}

row_cmd() { # row_cmd ROW PORT: writes its configuration, sets cmd
    case $1 in
    proxy-psk_dhe_ke) proxy_conf "$2" >"$tmp/$1.conf"; cmd=("$build/mtls-proxy" -c "$tmp/$1.conf") ;;
    proxy-psk_ke) proxy_conf "$2" "tls13_resumption psk_ke" >"$tmp/$1.conf"
        cmd=("$build/mtls-proxy" -c "$tmp/$1.conf") ;;
    nginx) nginx_conf "$2" >"$tmp/$1.conf"
        cmd=(/usr/sbin/nginx -p "$tmp" -e "$tmp/nginx.err" -c "$tmp/$1.conf") ;;
    esac
}
port=24390
for row in proxy-psk_dhe_ke proxy-psk_ke nginx; do
    port=$((port + 1))
    row_cmd "$row" "$port"
    if [[ $row == proxy-psk_ke ]] && [[ $("${cmd[@]}" -t 2>&1) == *"is not available"* ]]; then
        echo "$row: not in this build ($("$build/mtls-proxy" -V 2>&1 | head -1))"
        continue
    fi
    mkdir -p "$tmp/cg-$row"
    taskset -c 0 valgrind --tool=callgrind --trace-children=yes \
        --callgrind-out-file="$tmp/cg-$row/cg.%p" "${cmd[@]}" >"$tmp/$row.log" 2>&1 &
    cpid=$!
    pids+=("$cpid")
    wait_port "$port" "$cpid" || { echo "$row did not start: $(tail -3 "$tmp/$row.log")" >&2; exit 1; }
    # nginx's worker, not only its master, must be counted
    for _ in $(seq 600); do
        [[ $row != nginx || $(family "$cpid" | wc -l) -ge 2 ]] && break
        sleep 0.1
    done
    for client in default no-dhe-kex; do
        extra=()
        [[ $client == no-dhe-kex ]] && extra=(--no-dhe-kex)
        fam=$(family "$cpid" | tr '\n' ' ')
        before=$(ls "$tmp/cg-$row")
        out=$("${LG[@]}" -p "$port" -m resume -c 1 --tls1.3 "${extra[@]}" -d 600 -w 2 -n "$n" \
            --hook "timeout 120 callgrind_control -z $fam >/dev/null 2>&1")
        # shellcheck disable=SC2086
        timeout 120 callgrind_control -d $fam >/dev/null 2>&1 || true
        sleep 0.5
        instr=0
        for p in $fam; do
            for f in "$tmp/cg-$row/cg.$p".*; do
                [[ -e $f ]] || continue
                grep -qxF "$(basename "$f")" <<<"$before" && continue
                t=$(awk '/^totals:/ {print $2}' "$f")
                instr=$((instr + ${t:-0}))
            done
        done
        ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$out")
        res=$(sed -n 's/.* resumed=\([0-9]*\).*/\1/p' <<<"$out")
        printf '%-17s client=%-10s ok=%s resumed=%s instructions=%s per_resumption=%s\n' "$row" "$client" \
            "$ok" "$res" "$instr" "$((ok > 0 ? instr / ok : 0))"
    done
    kill "$cpid" 2>/dev/null || true
    wait "$cpid" 2>/dev/null || true
done

((reps > 0)) || exit 0
declare -A rport rpid
port=24395
live=()
for row in proxy-psk_dhe_ke proxy-psk_ke nginx; do
    port=$((port + 1))
    row_cmd "$row" "$port"
    [[ $row == proxy-psk_ke && $("${cmd[@]}" -t 2>&1) == *"is not available"* ]] && continue
    taskset -c 0 "${cmd[@]}" >"$tmp/cpu-$row.log" 2>&1 &
    rpid[$row]=$!
    rport[$row]=$port
    pids+=("$!")
    wait_port "$port" "$!" || { echo "$row did not start: $(tail -3 "$tmp/cpu-$row.log")" >&2; exit 1; }
    live+=("$row")
done
for ((i = 1; i <= reps; i++)); do
    for row in "${live[@]}"; do
        for client in default no-dhe-kex; do
            extra=()
            [[ $client == no-dhe-kex ]] && extra=(--no-dhe-kex)
            out=$("${LG[@]}" -p "${rport[$row]}" -m resume -c 1 --tls1.3 "${extra[@]}" -d 4 -w 2 \
                --server "${rpid[$row]}")
            ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$out")
            res=$(sed -n 's/.* resumed=\([0-9]*\).*/\1/p' <<<"$out")
            cpu=$(sed -n 's/.* srv_cpu_s=\([0-9.]*\).*/\1/p' <<<"$out")
            printf 'cpu rep=%d %-17s client=%-10s ok=%s resumed=%s srv_cpu_s=%s us_per_resumption=%s\n' \
                "$i" "$row" "$client" "$ok" "$res" "$cpu" \
                "$(awk -v c="$cpu" -v n="$ok" 'BEGIN { printf "%.0f", (n > 0) ? 1e6 * c / n : 0 }')"
        done
    done
done
