#!/usr/bin/env bash
# The shared library's ABI surface: every exported symbol is mtls_*, the
# public entry points are there, and the soname is libmtls.so.0.
# Usage: tests/test_symbols.sh BUILD_DIR   (builds BUILD/libmtls.so if missing)
set -uo pipefail
build=${1:?usage: $0 BUILD_DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
so=$build/libmtls.so
fails=0

ok() { echo "  ok: $*"; }
bad() {
	echo "  FAIL: $*"
	fails=$((fails + 1))
}

if [[ ! -e $so ]]; then
	echo "  building $so"
	args=(BUILD="$build")
	[[ -n ${MBEDTLS_PREFIX:-} ]] && args+=(MBEDTLS_PREFIX="$MBEDTLS_PREFIX")
	[[ -n ${SANITIZE:-} ]] && args+=(SANITIZE="$SANITIZE")
	make -s -C "$repo" "${args[@]}" lib >/dev/null || {
		echo "  FAIL: cannot build $so"
		exit 1
	}
fi

echo "checking exported symbols of $so"
# Defined dynamic symbols: "ADDR TYPE NAME" (versioned names keep @...).
syms=$(nm -D --defined-only "$so") || {
	echo "  FAIL: nm -D $so"
	exit 1
}
count=0
while read -r _ type name; do
	[[ -n ${name:-} ]] || continue
	case $type in
	T | D | B | R | W | V | i | G | S) ;;
	*) continue ;;
	esac
	name=${name%%@*}
	count=$((count + 1))
	case $name in
	mtls_*) ;;
	*) bad "exported symbol $name ($type) is not mtls_*" ;;
	esac
	case $name in
	mtls__*) bad "internal symbol $name is exported" ;;
	esac
done <<<"$syms"
if ((count >= 20)); then
	ok "$count exported symbols, all mtls_*"
else
	bad "only $count exported symbols"
fi

for want in mtls_ctx_new mtls_ctx_free mtls_load_client_pair \
	mtls_load_server_pair mtls_set_trusted_ca mtls_set_crl \
	mtls_strerror mtls_err_category mtls_ctx_error mtls_ctx_cert_info \
	mtls_set_log_callback; do
	if grep -qE " T ${want}(@|\$)" <<<"$syms"; then
		ok "$want exported"
	else
		bad "$want missing"
	fi
done

# Every function the header declares (MTLS_API) is defined: a missing one
# would only show as a link error in a user's program.
header=$repo/include/mtls.h
declared=$(grep -E '^MTLS_API' "$header" | grep -oE 'mtls_[a-z0-9_]+ *\(' | tr -d ' (' | sort -u)
ndecl=0 nmissing=0
for f in $declared; do
	ndecl=$((ndecl + 1))
	if ! grep -qE " T ${f}(@|\$)" <<<"$syms"; then
		bad "declared in mtls.h but not exported: $f"
		nmissing=$((nmissing + 1))
	fi
done
if ((ndecl < 20)); then
	bad "found only $ndecl MTLS_API declarations in $header"
elif ((nmissing == 0)); then
	ok "all $ndecl functions declared in mtls.h are exported"
fi

soname=$(objdump -p "$so" | awk '$1 == "SONAME" { print $2 }')
if [[ $soname == libmtls.so.0 ]]; then
	ok "SONAME $soname"
else
	bad "SONAME is '${soname}', expected libmtls.so.0"
fi
# The soname link exists in the build directory (what a linked program
# looks for at run time).
if [[ -e $build/libmtls.so.0 ]]; then
	ok "libmtls.so.0 link present"
else
	bad "no $build/libmtls.so.0"
fi

# make MBEDTLS=tuned (check-tuned sets MBEDTLS=tuned for the suite): mbedTLS
# is linked in statically, hidden (only mtls_* exported, checked above), and
# the version strings say so.
if [[ ${MBEDTLS:-} == tuned ]]; then
	needed=$(objdump -p "$so" | awk '$1 == "NEEDED" { print $2 }')
	if grep -q '^libmbed' <<<"$needed"; then
		bad "tuned build: libmtls.so needs $(grep '^libmbed' <<<"$needed" | tr '\n' ' ')"
	else
		ok "tuned build: libmtls.so needs no shared mbedTLS ($(tr '\n' ' ' <<<"$needed"))"
	fi
	for cmd in "mtls-check --version" "mtls-proxy -V"; do
		read -r prog opt <<<"$cmd"
		[[ -x $build/$prog ]] || continue
		v=$("$build/$prog" "$opt" 2>&1 | head -1)
		if [[ $v == *"(tuned)"* ]]; then
			ok "tuned build: $cmd says '$v'"
		else
			bad "tuned build: $cmd says '$v', without (tuned)"
		fi
	done
fi

# The static library: nothing but mtls_* is a global definition either, so
# a program linking it statically cannot collide on a helper's name.
if [[ -e $build/libmtls.a ]]; then
	leaked=$(nm -g --defined-only "$build/libmtls.a" 2>/dev/null |
		awk 'NF == 3 && $3 !~ /^mtls_/ { print $3 }' | sort -u)
	if [[ -z $leaked ]]; then
		ok "libmtls.a defines only mtls_* globals"
	else
		bad "libmtls.a defines non-mtls globals: $(tr '\n' ' ' <<<"$leaked")"
	fi
fi

if ((fails == 0)); then
	echo "test_symbols: all checks passed"
	exit 0
fi
echo "test_symbols: $fails check(s) failed"
exit 1
