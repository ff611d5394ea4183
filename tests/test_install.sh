#!/usr/bin/env bash
# "make install" into a staging directory, then build a small consumer
# program with pkg-config against what was installed, linked shared and
# static, and run it on the test PKI.
# Usage: tests/test_install.sh BUILD_DIR
#   MBEDTLS_PREFIX  passed to make when the build uses a private mbedTLS
#   SANITIZE        passed to make (and the consumer gets the sanitizers)
#   MTLS_TEST_PKI   the test PKI (tests/run.sh sets it)
set -uo pipefail
build=${1:?usage: $0 BUILD_DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
pki=${MTLS_TEST_PKI:?MTLS_TEST_PKI is not set: run through tests/run.sh}
fails=0

ok() { echo "  ok: $*"; }
bad() {
	echo "  FAIL: $*"
	fails=$((fails + 1))
}
finish() {
	if ((fails == 0)); then
		echo "test_install: all checks passed"
		exit 0
	fi
	echo "test_install: $fails check(s) failed"
	exit 1
}

stage=$(mktemp -d "${TMPDIR:-/tmp}/mtls-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT
prefix=/usr/local
root=$stage/root
libdir=$root$prefix/lib

# Same build flavour as the directory under test, or make would rebuild
# its objects differently.
margs=(BUILD="$build" PREFIX="$prefix" DESTDIR="$root")
[[ -n ${MBEDTLS_PREFIX:-} ]] && margs+=(MBEDTLS_PREFIX="$MBEDTLS_PREFIX")
sanitize=${SANITIZE:-}
# (grep -c, not -q: an early exit would fail nm with SIGPIPE under pipefail)
if [[ -z $sanitize && -e $build/libmtls.a ]] &&
	[[ $(nm "$build/libmtls.a" 2>/dev/null | grep -c ' U __asan_') -gt 0 ]]; then
	sanitize=1
fi
[[ -n $sanitize ]] && margs+=(SANITIZE="$sanitize")
# mtls.pc is generated once per build directory; a stale one from an
# install with another PREFIX would be installed as is.
rm -f "$build/mtls.pc"

echo "make install ${margs[*]}"
if ! make -s -C "$repo" "${margs[@]}" install >"$stage/install.log" 2>&1; then
	cat "$stage/install.log"
	bad "make install failed"
	finish
fi
ok "make install"

for f in include/mtls.h lib/libmtls.a lib/libmtls.so lib/libmtls.so.0 \
	lib/pkgconfig/mtls.pc bin/mtls-check; do
	if [[ -e $root$prefix/$f ]]; then
		ok "installed $prefix/$f"
	else
		bad "missing $prefix/$f"
	fi
done
# Manual pages, and a link for a function documented on a topic page.
for f in man1/mtls-check.1 man3/mtls.3 man3/mtls_load_client_pair.3 \
	man3/mtls_load_server_pair.3 man5/mtls-proxy.conf.5 man8/mtls-proxy.8; do
	if [[ -e $root$prefix/share/man/$f ]]; then
		ok "installed $prefix/share/man/$f"
	else
		bad "missing $prefix/share/man/$f"
	fi
done
if [[ -x $root$prefix/bin/mtls-check ]]; then
	ok "mtls-check is executable"
else
	bad "mtls-check is not executable"
fi
real=$(readlink -f "$libdir/libmtls.so")
case $real in
"$libdir"/libmtls.so.0.*) ok "libmtls.so -> $(basename "$real")" ;;
*) bad "libmtls.so resolves to $real" ;;
esac
# libdir is written relative to ${prefix}, so the file relocates.
if grep -qx 'libdir=${prefix}/lib' "$libdir/pkgconfig/mtls.pc" &&
	grep -qx "prefix=$prefix" "$libdir/pkgconfig/mtls.pc"; then
	ok "mtls.pc has prefix=$prefix and libdir=\${prefix}/lib"
else
	bad "mtls.pc: $(grep '^libdir=' "$libdir/pkgconfig/mtls.pc")"
fi

# ---- a consumer ---------------------------------------------------------
cat >"$stage/consumer.c" <<'EOF'
#include <mtls.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	mtls_cert_info info;
	mtls_ctx *ctx;
	int ret;

	if (argc != 3)
		return 2;
	ctx = mtls_ctx_new(MTLS_ROLE_CLIENT);
	if (ctx == NULL)
		return 3;
	ret = mtls_load_client_pair(ctx, argv[1], argv[2]);
	if (ret != 0) {
		printf("load failed: %s\n", mtls_ctx_error(ctx));
		mtls_ctx_free(ctx);
		return 1;
	}
	if (mtls_ctx_cert_info(ctx, &info) != 0)
		return 4;
	printf("subject=%s key=%s mbedtls=%s\n", info.subject, info.key_type,
	       mtls_mbedtls_version());
	mtls_ctx_free(ctx);
	return 0;
}
EOF

# The installed .pc names absolute /usr/local paths; point pkg-config at
# the staging copies.  (PKG_CONFIG_SYSROOT_DIR would also prefix the -L of
# a private mbedTLS in Libs.private.)
pc() {
	PKG_CONFIG_PATH=$libdir/pkgconfig PKG_CONFIG_LIBDIR=$libdir/pkgconfig \
		pkg-config --define-variable=libdir="$libdir" \
		--define-variable=includedir="$root$prefix/include" "$@" mtls
}
if ! cflags=$(pc --cflags) || ! libs=$(pc --libs) ||
	! slibs=$(pc --static --libs); then
	bad "pkg-config cannot read the installed mtls.pc"
	finish
fi
# Word lists, split on blanks as a compiler command line would be.
read -ra cflags_a <<<"$cflags"
read -ra libs_a <<<"$libs"
ok "pkg-config: cflags '$cflags'"
ok "pkg-config: libs '$libs'"
ok "pkg-config: static libs '$slibs'"
extra=(-std=c11 -Wall -Wextra -Werror)
# shellcheck disable=SC2054 # one option with a comma-separated value
[[ -n $sanitize ]] && extra+=(-fsanitize=address,undefined)
cc=${CC:-cc}
want="subject=CN=client.test"
# The mbedTLS the build was made with is the one the consumer runs on.
if [[ -n ${MBEDTLS_PREFIX:-} ]]; then
	v=$(grep -hs '^#define MBEDTLS_VERSION_STRING ' \
		"$MBEDTLS_PREFIX/include/mbedtls/build_info.h" \
		"$MBEDTLS_PREFIX/include/mbedtls/version.h" | head -1 |
		sed 's/.*"\(.*\)".*/\1/')
	[[ -n $v ]] && want="$want key=EC P-256 mbedtls=$v"
fi

# Shared.
if $cc "${extra[@]}" -o "$stage/consumer-shared" "$stage/consumer.c" \
	"${cflags_a[@]}" "${libs_a[@]}" >"$stage/cc.log" 2>&1; then
	ok "consumer compiles and links shared"
	deps=$(LD_LIBRARY_PATH=$libdir ldd "$stage/consumer-shared")
	if grep -q "libmtls.so.0 => $libdir/libmtls.so.0" <<<"$deps"; then
		ok "shared consumer loads the installed libmtls.so.0"
	else
		bad "shared consumer does not use $libdir/libmtls.so.0: $deps"
	fi
	out=$(LD_LIBRARY_PATH=$libdir "$stage/consumer-shared" \
		"$pki/client-ec.crt" "$pki/client-ec.key" 2>&1)
	if [[ $out == *"$want"* ]]; then
		ok "shared consumer: $out"
	else
		bad "shared consumer printed: $out"
	fi
else
	cat "$stage/cc.log"
	bad "consumer does not build shared"
fi

# Static libmtls (libc and mbedTLS as the system has them): -lmtls would
# pick the .so, so ask for the archive by name.
read -ra slibs_a <<<"${slibs//-lmtls/-l:libmtls.a}"
if $cc "${extra[@]}" -o "$stage/consumer-static" "$stage/consumer.c" \
	"${cflags_a[@]}" "${slibs_a[@]}" >"$stage/cc.log" 2>&1; then
	ok "consumer compiles and links with libmtls.a (pkg-config --static)"
	deps=$(ldd "$stage/consumer-static" 2>&1)
	if grep -q libmtls <<<"$deps"; then
		bad "static consumer still needs libmtls: $deps"
	else
		ok "static consumer has no libmtls dependency"
	fi
	out=$(env -u LD_LIBRARY_PATH "$stage/consumer-static" \
		"$pki/client-ec.crt" "$pki/client-ec.key" 2>&1)
	if [[ $out == *"$want"* ]]; then
		ok "static consumer: $out"
	else
		bad "static consumer printed: $out"
	fi
else
	cat "$stage/cc.log"
	bad "consumer does not build with libmtls.a"
fi

# The installed header stands alone, in C and C++.
if echo '#include <mtls.h>' | $cc -std=c11 -Wall -Wextra -Werror -pedantic \
	-fsyntax-only "${cflags_a[@]}" -x c - 2>"$stage/cc.log"; then
	ok "mtls.h compiles alone as C11 -pedantic"
else
	cat "$stage/cc.log"
	bad "mtls.h does not compile alone"
fi
if command -v c++ >/dev/null 2>&1; then
	if echo '#include <mtls.h>' | c++ -Wall -Wextra -Werror -fsyntax-only \
		"${cflags_a[@]}" -x c++ - 2>"$stage/cc.log"; then
		ok "mtls.h compiles as C++"
	else
		cat "$stage/cc.log"
		bad "mtls.h does not compile as C++"
	fi
fi

# The installed tool runs.
if out=$(LD_LIBRARY_PATH=$libdir "$root$prefix/bin/mtls-check" --help 2>&1) ||
	[[ -n $out ]]; then
	ok "mtls-check --help runs"
else
	bad "mtls-check --help: no output"
fi

# uninstall removes what install put there.
if make -s -C "$repo" "${margs[@]}" uninstall >"$stage/uninstall.log" 2>&1; then
	left=$(find "$root" -type f -o -type l | sed "s|^$root||")
	if [[ -z $left ]]; then
		ok "make uninstall removes every installed file"
	else
		bad "left after uninstall: $(tr '\n' ' ' <<<"$left")"
	fi
else
	cat "$stage/uninstall.log"
	bad "make uninstall failed"
fi
finish
