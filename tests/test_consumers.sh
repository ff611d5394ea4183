#!/usr/bin/env bash
# Programs outside the tree built against an installed libmtls, the way a
# user's build would find it: "make install" into a staging DESTDIR, then
# tests/consumer/ built with
#   (a) Make + pkg-config, linked with libmtls.so
#   (b) Make + pkg-config --static and -l:libmtls.a: no libmtls.so needed
#   (c) CMake find_package(mtls 0.1 CONFIG): mtls::mtls, mtls::mtls_static;
#       find_package(mtls 0.2) must fail
#   (d) Meson dependency('mtls') (pkg-config)
# and each program run on the test PKI.  The staged files are used where
# they are, not at their PREFIX: the CMake package finds its paths from its
# own location, pkg-config gets --define-variable=prefix.
# Usage: tests/test_consumers.sh BUILD_DIR
#   MBEDTLS_PREFIX, SANITIZE  as for the build (passed to make)
#   MTLS_TEST_PKI             the test PKI (tests/run.sh sets it)
set -uo pipefail
build=${1:?usage: $0 BUILD_DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
# shellcheck source=tests/lib.sh
. "$repo/tests/lib.sh" # (its ok/bad are replaced below)
pki=${MTLS_TEST_PKI:?MTLS_TEST_PKI is not set: run through tests/run.sh}
src=$repo/tests/consumer
fails=0

ok() { echo "  ok: $*"; }
bad() {
	echo "  FAIL: $*"
	fails=$((fails + 1))
}
finish() {
	if ((fails == 0)); then
		echo "test_consumers: all checks passed"
		exit 0
	fi
	echo "test_consumers: $fails check(s) failed"
	exit 1
}

stage_install consumers || { echo "FAIL: no staging directory"; exit 1; }
if ! make -s -C "$repo" "${margs[@]}" install >"$stage/install.log" 2>&1; then
	cat "$stage/install.log"
	bad "make install ${margs[*]} failed"
	finish
fi
ok "make install into $root"

version=$(sed -n 's/^VERSION *:= *//p' "$repo/Makefile")
want=("mtls $version " "subject=CN=client.test")
if [[ -n ${MBEDTLS_PREFIX:-} ]]; then
	v=$(grep -hs '^#define MBEDTLS_VERSION_STRING ' \
		"$MBEDTLS_PREFIX/include/mbedtls/build_info.h" \
		"$MBEDTLS_PREFIX/include/mbedtls/version.h" | head -1 |
		sed 's/.*"\(.*\)".*/\1/')
	[[ -n $v ]] && want+=("mbedtls $v")
fi
# The consumers get the sanitizers when the library has them.
flags=-O1
[[ -n $sanitize ]] && flags="$flags -fsanitize=address,undefined"
export CFLAGS=$flags LDFLAGS=${flags#-O1 }
[[ -z $sanitize ]] && LDFLAGS=

# run NAME PROGRAM: runs it on the PKI's client pair, checks the output.
run() {
	local name=$1 prog=$2 out w
	if ! out=$("$prog" "$pki/client-ec.crt" "$pki/client-ec.key" 2>&1); then
		bad "$name: $prog failed: $out"
		return
	fi
	for w in "${want[@]}"; do
		if [[ $out != *"$w"* ]]; then
			bad "$name: output lacks '$w': $out"
			return
		fi
	done
	ok "$name runs: $(tr '\n' ' ' <<<"$out")"
}
# needs_so NAME PROGRAM yes|no: whether it needs libmtls.so.0, and (yes)
# that the loader finds the installed one.
needs_so() {
	local name=$1 prog=$2 want_so=$3 dyn deps
	dyn=$(readelf -d "$prog" 2>&1)
	if [[ $want_so == no ]]; then
		if grep -q 'NEEDED.*libmtls' <<<"$dyn"; then
			bad "$name: needs libmtls.so: $(grep NEEDED <<<"$dyn" | tr '\n' ' ')"
		else
			ok "$name: no libmtls.so in its NEEDED entries"
		fi
		return
	fi
	# (ldd's output in a variable: grep -q in a pipe could close it early and
	# fail ldd with SIGPIPE under pipefail.)
	deps=$(LD_LIBRARY_PATH=$libdir ldd "$prog" 2>&1)
	if ! grep -q 'NEEDED.*\[libmtls.so.0\]' <<<"$dyn"; then
		bad "$name: does not need libmtls.so.0"
	elif ! grep -q "libmtls.so.0 => $libdir/libmtls.so.0" <<<"$deps"; then
		bad "$name: does not load $libdir/libmtls.so.0: $(grep libmtls <<<"$deps")"
	else
		ok "$name: loads the installed libmtls.so.0"
	fi
}

# ---- (a), (b) Make + pkg-config ------------------------------------------
export PKG_CONFIG_PATH=$libdir/pkgconfig PKG_CONFIG_LIBDIR=$libdir/pkgconfig
pkgconf=(pkg-config "--define-variable=prefix=$root$prefix")
if ! "${pkgconf[@]}" --exists mtls; then
	bad "pkg-config does not find mtls in $libdir/pkgconfig"
else
	ok "pkg-config --libs: $("${pkgconf[@]}" --libs mtls)"
	ok "pkg-config --static --libs: $("${pkgconf[@]}" --static --libs mtls)"
fi
mk=(make -s -C "$src" O="$stage" PKG_CONFIG="${pkgconf[*]}")
if "${mk[@]}" all >"$stage/make.log" 2>&1; then
	ok "(a) Make + pkg-config: consumer links with libmtls.so"
	needs_so "(a) make, shared" "$stage/consumer" yes
	LD_LIBRARY_PATH=$libdir run "(a) make, shared" "$stage/consumer"
else
	cat "$stage/make.log"
	bad "(a) Make + pkg-config: consumer does not build"
fi
if "${mk[@]}" static >"$stage/make.log" 2>&1; then
	ok "(b) Make + pkg-config --static: consumer links with libmtls.a"
	needs_so "(b) make, static" "$stage/consumer-static" no
	run "(b) make, static" "$stage/consumer-static"
else
	cat "$stage/make.log"
	bad "(b) Make + pkg-config --static: consumer does not build"
fi

# ---- (c) CMake --------------------------------------------------------------
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
# cmake_consumer DIR ARGS...: configure and build tests/consumer in DIR.
cmake_consumer() {
	local dir=$1
	shift
	cmake "${gen[@]}" -S "$src" -B "$dir" -DCMAKE_PREFIX_PATH="$root$prefix" \
		-DCMAKE_BUILD_TYPE=None "$@" >"$dir.log" 2>&1 &&
		cmake --build "$dir" >>"$dir.log" 2>&1
}
if ! command -v cmake >/dev/null 2>&1; then
	bad "(c) cmake is not installed (scripts/deps.sh installs it)"
else
	if cmake_consumer "$stage/cmake" -DMTLS_MIN_VERSION=0.1; then
		if grep -q "mtls $version found in $libdir/cmake/mtls" "$stage/cmake.log"; then
			ok "(c) CMake find_package(mtls 0.1 CONFIG): $version in $libdir/cmake/mtls"
		else
			bad "(c) CMake found another mtls: $(grep 'mtls .* found' "$stage/cmake.log")"
		fi
		needs_so "(c) cmake, mtls::mtls" "$stage/cmake/consumer" yes
		LD_LIBRARY_PATH=$libdir run "(c) cmake, mtls::mtls" "$stage/cmake/consumer"
	else
		cat "$stage/cmake.log"
		bad "(c) CMake consumer (mtls::mtls) does not build"
	fi
	if cmake_consumer "$stage/cmake-static" -DMTLS_MIN_VERSION="$version" \
		-DMTLS_STATIC=ON; then
		ok "(c) CMake find_package(mtls $version CONFIG) with mtls::mtls_static"
		needs_so "(c) cmake, mtls::mtls_static" "$stage/cmake-static/consumer" no
		run "(c) cmake, mtls::mtls_static" "$stage/cmake-static/consumer"
	else
		cat "$stage/cmake-static.log"
		bad "(c) CMake consumer (mtls::mtls_static) does not build"
	fi
	# Newer than installed, and a major version that is not ours.
	for v in 0.2 1.0; do
		if cmake_consumer "$stage/cmake-$v" -DMTLS_MIN_VERSION=$v; then
			bad "(c) find_package(mtls $v) accepted version $version"
		elif grep -qF "version: $version" "$stage/cmake-$v.log"; then
			ok "(c) find_package(mtls $v) fails: installed $version is not compatible"
		else
			cat "$stage/cmake-$v.log"
			bad "(c) find_package(mtls $v) failed without naming the version"
		fi
	done
fi

# ---- (d) Meson --------------------------------------------------------------
if ! command -v meson >/dev/null 2>&1; then
	bad "(d) meson is not installed (scripts/deps.sh installs it)"
else
	printf "[binaries]\npkgconfig = ['pkg-config', '--define-variable=prefix=%s']\n" \
		"$root$prefix" >"$stage/native.ini"
	if meson setup --native-file "$stage/native.ini" "$stage/meson" "$src" \
		>"$stage/meson.log" 2>&1 &&
		meson compile -C "$stage/meson" >>"$stage/meson.log" 2>&1; then
		ok "(d) Meson dependency('mtls', version: '>=0.1') builds"
		needs_so "(d) meson" "$stage/meson/consumer" yes
		LD_LIBRARY_PATH=$libdir run "(d) meson" "$stage/meson/consumer"
	else
		cat "$stage/meson.log"
		bad "(d) Meson consumer does not build"
	fi
fi
finish
