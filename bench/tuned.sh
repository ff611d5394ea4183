#!/usr/bin/env bash
# Measures the choices of make MBEDTLS=tuned (results: bench/tuned.md).
# Usage: bench/tuned.sh [--reps N] [--secs S] [--conns N] [--cpu C] [--only v1,v2] [--debian]
#   --debian  also run "debian-pkg": Debian trixie's binary libmbedtls (scripts/mbedtls36.sh,
#             shared libraries) with a libmtls built against it (build/tuned-bench/debian-pkg)
#
# Builds the same mbedTLS source (scripts/mbedtls-tuned.sh, patches included) once per variant
# below into build/tuned-bench/<variant>, links libmtls and bench/tuned_bench against each, then
# runs them pinned to one core (taskset -c C), interleaved: repetition 1 of every variant, then
# repetition 2, ... so that load from elsewhere spreads over all variants alike.  Prints the
# median of each figure per variant; raw lines go to build/tuned-bench/results.tsv.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
reps=5 secs=0.5 conns=300 cpu=1 only="" debian=0
while (($#)); do
    case $1 in
        --reps) reps=$2; shift 2 ;;
        --secs) secs=$2; shift 2 ;;
        --conns) conns=$2; shift 2 ;;
        --cpu) cpu=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --debian) debian=1; shift ;;
        *) echo "usage: $0 [--reps N] [--secs S] [--conns N] [--cpu C] [--only v1,v2] [--debian]" >&2; exit 2 ;;
    esac
done

out=$root/build/tuned-bench
mkdir -p "$out"
flags_ni="-O2 -maes -mpclmul -msse2 -fPIC" # what scripts/mbedtls-tuned.sh uses
# name | CFLAGS | extra config lines ("NAME VALUE;..." -> #undef + #define, "NAME" -> #define,
# "-NAME" -> #undef) on top of tuned/tuned_config.h | conn (1: also the connection bench)
# | make variables for libmtls and the bench program (LTO needs the final link in on it)
variants=(
    "tuned|$flags_ni||1"
    "no-aesni|-O2 -fPIC||0"
    "O3|-O3 -maes -mpclmul -msse2 -fPIC||0"
    "ecp-w2|$flags_ni|MBEDTLS_ECP_WINDOW_SIZE 2|0"
    "ecp-w3|$flags_ni|MBEDTLS_ECP_WINDOW_SIZE 3|0"
    "ecp-w5|$flags_ni|MBEDTLS_ECP_WINDOW_SIZE 5|0"
    "ecp-w6|$flags_ni|MBEDTLS_ECP_WINDOW_SIZE 6|0"
    "ecp-nofp|$flags_ni|MBEDTLS_ECP_FIXED_POINT_OPTIM 0|0"
    "mpi-w6|$flags_ni|MBEDTLS_MPI_WINDOW_SIZE 6|0"
    "out16k|$flags_ni|MBEDTLS_SSL_OUT_CONTENT_LEN 16384|1"
    "varbuf|$flags_ni|MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH|1"
    "lto|$flags_ni -flto=auto -ffat-lto-objects||0|CFLAGS=-flto=auto LDFLAGS=-flto=auto"
)

pki=$out/pki
[[ -f $pki/ca.crt ]] || "$root/tests/pki.sh" "$pki" >/dev/null

names=()
for v in "${variants[@]}"; do
    IFS='|' read -r name cflags extra conn makevars <<<"$v"
    [[ -z $only || ,$only, == *,$name,* ]] || continue
    names+=("$name")
    cfg=$out/$name.config.h
    {
        cat "$root/tuned/tuned_config.h"
        echo "/* bench/tuned.sh variant $name */"
        IFS=';' read -ra lines <<<"$extra"
        for l in "${lines[@]}"; do
            [[ -n $l ]] || continue
            set -- $l
            case $1 in
                -*) echo "#undef ${1#-}" ;;
                *) echo "#undef $1"; echo "#define $*" ;;
            esac
        done
    } >"$cfg"
    echo "bench/tuned.sh: building variant $name" >&2
    export TUNED_CFLAGS=$cflags TUNED_CONFIG=$cfg TUNED_SRC=$out/src
    scripts/mbedtls-tuned.sh "$out/$name/mbedtls" >/dev/null
    read -ra mv <<<"$makevars"
    make -s --no-print-directory MBEDTLS=tuned TUNED="$out/$name/mbedtls" BUILD="build/tuned-bench/$name" \
        "${mv[@]}" "build/tuned-bench/$name/bench/tuned_bench" >/dev/null
    unset TUNED_CFLAGS TUNED_CONFIG TUNED_SRC
done

if ((debian)); then
    echo "bench/tuned.sh: building variant debian-pkg" >&2
    m36=$root/.deps/mbedtls-3.6
    scripts/mbedtls36.sh "$m36" >/dev/null
    make -s --no-print-directory MBEDTLS_PREFIX="$m36/usr" BUILD=build/tuned-bench/debian-pkg lib >/dev/null
    libdir=$(dirname "$(ls "$m36"/usr/lib/*/libmbedcrypto.so | head -1)")
    mkdir -p "$out/debian-pkg/bench"
    cc -std=c11 -D_DEFAULT_SOURCE -D_GNU_SOURCE -O2 -Iinclude -I"$m36/usr/include" \
        -o "$out/debian-pkg/bench/tuned_bench" bench/tuned_bench.c "$out/debian-pkg/libmtls.a" \
        -L"$libdir" -Wl,-rpath,"$libdir" -lmbedtls -lmbedx509 -lmbedcrypto -lpthread
    names+=(debian-pkg)
    variants+=("debian-pkg|||1")
fi

raw=$out/results.tsv
: >"$raw"
for ((r = 1; r <= reps; r++)); do
    for name in "${names[@]}"; do
        bin=$out/$name/bench/tuned_bench
        echo "bench/tuned.sh: repetition $r/$reps: $name" >&2
        taskset -c "$cpu" "$bin" crypto "$secs" | sed "s/^/$name\t$r\t/; s/=/\t/" >>"$raw"
        for v in "${variants[@]}"; do
            IFS='|' read -r n2 _ _ conn _ <<<"$v"
            if [[ $n2 == "$name" && $conn == 1 ]]; then
                taskset -c "$cpu" "$bin" conn "$pki" "$conns" | sed "s/^/$name\t$r\t/; s/=/\t/" >>"$raw"
            fi
        done
    done
done

# Median per variant and figure.
python3 - "$raw" "${names[@]}" <<'EOF'
import sys, statistics, collections
raw, names = sys.argv[1], sys.argv[2:]
vals = collections.defaultdict(list)
keys = []
for line in open(raw):
    name, rep, key, val = line.rstrip("\n").split("\t")
    if key == "mbedtls":
        continue
    if key not in keys:
        keys.append(key)
    vals[(name, key)].append(float(val))
print("| figure (median of %d) | " % max(len(v) for v in vals.values()) + " | ".join(names) + " |")
print("|---|" + "---:|" * len(names))
for k in keys:
    row = []
    for n in names:
        v = vals.get((n, k))
        row.append("%.2f" % statistics.median(v) if v and "cycles" in k
                   else "%.0f" % statistics.median(v) if v else "")
    print("| %s | %s |" % (k, " | ".join(row)))
EOF
