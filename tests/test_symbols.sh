#!/usr/bin/env bash
# The shared library's ABI surface: every exported symbol is mtls_*, the
# public entry points are there, each symbol has its version (MTLS_0 for
# those of 0.1.0, frozen), and the soname is libmtls.so.0.
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

# Symbol versions (lib/libmtls.map, docs/versioning.md): every export has
# one; what 0.1.0 exported stays at MTLS_0, the frozen list in
# tests/abi/MTLS_0.txt, with nothing added to that released node.
map=$repo/lib/libmtls.map
baseline=$repo/tests/abi/MTLS_0.txt
unversioned=$(awk 'NF == 3 && $3 ~ /^mtls_/ && $3 !~ /@@?MTLS_/ { print $3 }' <<<"$syms")
if [[ -z $unversioned ]]; then
	ok "every exported symbol has a version"
else
	bad "unversioned exports: $(tr '\n' ' ' <<<"$unversioned")"
fi
nodes=$(grep -oE '^MTLS_[0-9.]+' "$map" | sort -u)
defined=$(objdump -p "$so" | awk '/^Version definitions:/ { on = 1; next }
	on && NF == 0 { on = 0 } on && $4 ~ /^MTLS_/ { print $4 }' | sort -u)
if [[ -n $nodes && $nodes == "$defined" ]]; then
	ok "version nodes: $(tr '\n' ' ' <<<"$defined")"
else
	bad "version nodes in $so ($(tr '\n' ' ' <<<"$defined")) are not the map's ($(tr '\n' ' ' <<<"$nodes"))"
fi
# A released node is frozen: tests/abi/NODE.txt, written when its release
# ships, lists exactly what it exports.
[[ -e $baseline ]] || bad "no $baseline"
for frozen in "$repo"/tests/abi/MTLS_*.txt; do
	[[ -e $frozen ]] || continue
	node=$(basename "$frozen" .txt)
	at_node=$(awk -v v="@@$node" 'substr($3, length($3) - length(v) + 1) == v {
		sub(/@.*/, "", $3); print $3 }' <<<"$syms" | sort -u)
	if [[ $at_node == "$(sort -u "$frozen")" ]]; then
		ok "$node holds exactly the $(wc -l <"$frozen") symbols of tests/abi/$node.txt"
	else
		bad "$node differs from tests/abi/$node.txt: $(diff <(sort -u "$frozen") <(echo "$at_node") | grep -E '^[<>]' | tr '\n' ' ')"
	fi
done
# Every symbol in the map is exported at the node the map puts it in (a
# name the header lost would otherwise linger in the map unnoticed).
while read -r node name; do
	if ! grep -qE " T ${name}@@${node}\$" <<<"$syms"; then
		bad "$name is not exported at $node"
	fi
done < <(awk '/^MTLS_[0-9.]+ *\{/ { node = $1 }
	/^[[:space:]]+mtls_[a-z0-9_]+;/ { gsub(/[[:space:];]/, ""); print node, $0 }' "$map")

# A program records the version of each function it calls: an old one
# keeps working, a new one asks for the release that has what it uses.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/consumer.c" <<'EOF'
#include <stdio.h>
#include "mtls.h"
int main(void)
{
	printf("%s %d\n", mtls_version(),
	       mtls_conn_peer_san_count(NULL, MTLS_SAN_URI));
	return mtls_conn_peer_spiffe_id(NULL) == NULL ? 0 : 1;
}
EOF
cflags=()
[[ ${SANITIZE:-} == 1 ]] && cflags+=(-fsanitize=address,undefined)
if cc "${cflags[@]}" -I"$repo/include" -o "$tmp/consumer" "$tmp/consumer.c" \
	-L"$build" -lmtls 2>"$tmp/cc.err"; then
	refs=$(objdump -T "$tmp/consumer" | awk '/mtls_/ { print $(NF-1), $NF }' | tr -d '()')
	if grep -qx 'MTLS_0 mtls_version' <<<"$refs" &&
		grep -qx 'MTLS_0.2 mtls_conn_peer_spiffe_id' <<<"$refs"; then
		ok "a consumer binds mtls_version@MTLS_0, mtls_conn_peer_spiffe_id@MTLS_0.2"
	else
		bad "the consumer's references: $(tr '\n' ',' <<<"$refs")"
	fi
	if out=$(LD_LIBRARY_PATH=$build "$tmp/consumer") && [[ $out == *" 0" ]]; then
		ok "the consumer runs against $so"
	else
		bad "the consumer failed against $so: $out"
	fi
else
	bad "cannot build a consumer: $(head -5 "$tmp/cc.err")"
fi

# A program built before the library had symbol versions (0.1.0) holds
# unversioned references: they must bind to the MTLS_0 definitions.  Such
# a program is made here by linking against an unversioned stand-in.
mkdir -p "$tmp/old"
cat >"$tmp/old/stub.c" <<'EOF'
const char *mtls_version(void);
const char *mtls_strerror(int err);
const char *mtls_version(void) { return "stub"; }
const char *mtls_strerror(int err) { (void)err; return "stub"; }
EOF
cat >"$tmp/old/old.c" <<'EOF'
#include <stdio.h>
#include "mtls.h"
int main(void)
{
	printf("%s|%s\n", mtls_version(), mtls_strerror(MTLS_ERR_STATE));
	return 0;
}
EOF
if cc "${cflags[@]}" -shared -fPIC -Wl,-soname,libmtls.so.0 -o "$tmp/old/libmtls.so" \
	"$tmp/old/stub.c" 2>"$tmp/cc.err" &&
	cc "${cflags[@]}" -I"$repo/include" -o "$tmp/old/old" "$tmp/old/old.c" \
		-L"$tmp/old" -lmtls 2>>"$tmp/cc.err"; then
	if objdump -T "$tmp/old/old" | grep -q 'MTLS_'; then
		bad "the stand-in program has versioned references"
	elif out=$(LD_LIBRARY_PATH=$build "$tmp/old/old") && [[ $out != stub* && $out == *"|"* ]]; then
		ok "a program with unversioned (0.1.0) references runs against $so ($out)"
	else
		bad "a program with unversioned references fails against $so: $out"
	fi
else
	bad "cannot build the unversioned stand-in: $(head -5 "$tmp/cc.err")"
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
