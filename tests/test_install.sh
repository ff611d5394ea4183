#!/usr/bin/env bash
# "make install" into a staging directory: the files and links it makes, the
# pkg-config file, ldconfig (run or a note), the header alone, "make
# uninstall".  Programs built against the install: tests/test_consumers.sh.
# Usage: tests/test_install.sh BUILD_DIR
#   MBEDTLS_PREFIX  passed to make when the build uses a private mbedTLS
#   SANITIZE        passed to make
set -uo pipefail
build=${1:?usage: $0 BUILD_DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
# shellcheck source=tests/lib.sh
. "$repo/tests/lib.sh" # (its ok/bad are replaced below)
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

stage_install install || { echo "FAIL: no staging directory"; exit 1; }
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
	lib/pkgconfig/mtls.pc lib/cmake/mtls/mtlsConfig.cmake \
	lib/cmake/mtls/mtlsConfigVersion.cmake bin/mtls-check; do
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

# ldconfig: not for a DESTDIR install; root installing into the live
# system runs it (a stand-in here, so the test leaves the system's cache
# alone) and says when LIBDIR is not where the loader looks.
if grep -q 'DESTDIR install: ldconfig not run' "$stage/install.log"; then
	ok "DESTDIR install: ldconfig not run, and says so"
else
	bad "DESTDIR install: no ldconfig note: $(cat "$stage/install.log")"
fi
fake=$stage/fake-ldconfig
printf '#!/bin/sh\necho "ldconfig $*" >>"%s.calls"\n' "$fake" >"$fake"
chmod +x "$fake"
live=(BUILD="$build" PREFIX="$stage/live" LDCONFIG="$fake")
[[ -n ${MBEDTLS_PREFIX:-} ]] && live+=(MBEDTLS_PREFIX="$MBEDTLS_PREFIX")
[[ -n $sanitize ]] && live+=(SANITIZE="$sanitize")
if ! out=$(make -s -C "$repo" "${live[@]}" install 2>&1); then
	bad "make install PREFIX=$stage/live failed: $out"
elif ((EUID == 0)); then
	if grep -qx 'ldconfig *' "$fake.calls" 2>/dev/null &&
		[[ $out == *"$stage/live/lib is not in the dynamic linker's search path"* ]]; then
		ok "root, no DESTDIR: ldconfig run; the note names a LIBDIR it does not search"
	else
		bad "root, no DESTDIR: ldconfig calls '$(cat "$fake.calls" 2>/dev/null)', output: $out"
	fi
elif [[ ! -e $fake.calls && $out == *"not root, ldconfig not run"* ]]; then
	ok "not root, no DESTDIR: ldconfig not run, and says so"
else
	bad "not root, no DESTDIR: output: $out"
fi
rm -rf "$stage/live"

# ---- the installed pkg-config file -----------------------------------
# (Programs built against this install, with pkg-config, CMake and Meson:
# tests/test_consumers.sh.)
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
ok "pkg-config: cflags '$cflags'"
ok "pkg-config: libs '$libs'"
ok "pkg-config: static libs '$slibs'"
cc=${CC:-cc}

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
