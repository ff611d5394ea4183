#!/usr/bin/env bash
# Build a tuned static mbedTLS 3.6 from Debian trixie's *source* package (make MBEDTLS=tuned).
# Usage: scripts/mbedtls-tuned.sh [DESTDIR]          (default: .deps/mbedtls-tuned)
# Result: DESTDIR/include/{mbedtls,psa}/..., DESTDIR/lib/libmbed{tls,x509,crypto}.a
#
#   1. apt-get source --download-only mbedtls through a private apt configuration (a deb-src line
#      for trixie, signed-by the Debian archive keyring; the system's apt state is never touched).
#      apt checks the .dsc and both tarballs against the Sources index, whose InRelease signature
#      it verifies; dpkg-source then checks the tarballs against the .dsc's checksums.
#   2. dpkg-source -x (Debian's patches applied), then tuned/patches/series on top.
#   3. tuned/tuned_config.h is appended to the package's include/mbedtls/mbedtls_config.h (the
#      default configuration), so the installed header is the configuration the libraries were
#      built with; cmake builds the three static libraries only (no programs, no tests).
# Idempotent: nothing is done when DESTDIR/.stamp matches the current inputs (config, patches,
# flags, this script); change any of them and the next run rebuilds.
#   TUNED_CFLAGS  compiler flags (default below)       TUNED_JOBS  parallel jobs (default: nproc)
#   TUNED_SRC     source cache (default: DESTDIR-src)   TUNED_CONFIG  config block (default
#                                                       tuned/tuned_config.h)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$here/.deps/mbedtls-tuned}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
src_cache=${TUNED_SRC:-$dest-src}
config=${TUNED_CONFIG:-$here/tuned/tuned_config.h}
patchdir=$here/tuned/patches
# -maes/-mpclmul/-msse2 compile in mbedTLS's AES-NI and PCLMUL intrinsics path; it still checks the
# CPU at run time (cpuid) and falls back to the portable code, so the build runs on any x86-64.
default_cflags="-O2 -maes -mpclmul -msse2 -fPIC"
case $(uname -m) in x86_64 | i?86) ;; *) default_cflags="-O2 -fPIC" ;; esac
cflags=${TUNED_CFLAGS:-$default_cflags}
jobs=${TUNED_JOBS:-$(nproc 2>/dev/null || echo 2)}
pkg=mbedtls
suite=trixie

die() { echo "mbedtls-tuned.sh: $*" >&2; exit 1; }
[[ -r $config ]] || die "no config header $config"
[[ -r $patchdir/series ]] || die "no patch series $patchdir/series"

# Every input that changes the result, hashed: a rebuild happens exactly when one changes.
series=$(grep -v -E '^[[:space:]]*(#|$)' "$patchdir/series" || true)
stamp=$( {
    echo "cflags=$cflags"
    cat "$config" "$patchdir/series" "$0"
    for p in $series; do cat "$patchdir/$p"; done
} | sha256sum | cut -d' ' -f1)

print_version() {
    local v
    v=$(sed -n 's/^#define MBEDTLS_VERSION_STRING[[:space:]]*"\([^"]*\)".*/\1/p' \
        "$dest/include/mbedtls/build_info.h")
    echo "mbedTLS ${v:-unknown} (tuned) in $dest"
}

# One build at a time per DESTDIR (make -j, or tests that run make, may start two).
exec 9>"$dest.lock"
flock 9
if [[ -f $dest/.stamp && $(cat "$dest/.stamp") == "$stamp" ]]; then
    print_version
    exit 0
fi

command -v cmake >/dev/null || die "cmake is missing (scripts/deps.sh installs it)"
command -v dpkg-source >/dev/null || die "dpkg-source is missing (package dpkg-dev)"

# ---- 1. the source package, verified by apt ------------------------------------------------------
# Same mirror as this machine's own sources (as scripts/mbedtls36.sh).
mirror_uri() {
    local uri=""
    if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
        uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
            /etc/apt/sources.list.d/debian.sources)
    fi
    if [[ -z $uri && -r /etc/apt/sources.list ]]; then
        uri=$(sed -n -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' \
            /etc/apt/sources.list | grep -v security | head -n 1 || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

mkdir -p "$src_cache"
src_cache=$(cd "$src_cache" && pwd)
dsc=("$src_cache"/dl/${pkg}_*.dsc)
if [[ ! -f ${dsc[0]} ]]; then
    uri=$(mirror_uri)
    work=$src_cache/.apt
    rm -rf "$work" "$src_cache/dl"
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$src_cache/dl.tmp"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" \
        >"$work/sources.list"
    apt_opts=(
        -q
        -o "Dir::Etc::SourceList=$work/sources.list"
        -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$work/lists"
        -o "Dir::Cache=$work/cache"
        -o Acquire::Languages=none
        -o Acquire::IndexTargets::deb-src::Sources::KeepCompressed=false
    )
    ((EUID == 0)) && apt_opts+=(-o APT::Sandbox::User=root)
    echo "mbedtls-tuned.sh: fetching the $pkg source package from $uri $suite" >&2
    apt-get "${apt_opts[@]}" update >/dev/null
    # No --allow-unauthenticated: apt refuses files whose hashes do not match the signed index.
    (cd "$src_cache/dl.tmp" && apt-get "${apt_opts[@]}" source --download-only "$pkg" >/dev/null)
    rm -rf "$work"
    mv "$src_cache/dl.tmp" "$src_cache/dl"
    dsc=("$src_cache"/dl/${pkg}_*.dsc)
    [[ -f ${dsc[0]} ]] || die "apt-get source did not leave a .dsc in $src_cache/dl"
fi

# ---- 2. unpack, Debian's patches, ours -----------------------------------------------------------
tree=$src_cache/tree
rm -rf "$tree" "$src_cache"/*.orig.tar.*
# dpkg-source checks the tarballs against the .dsc checksums (and fails on a mismatch). The .dsc's
# own OpenPGP signature (the uploader's) needs the debian-keyring package; without it gpgv says
# "Can't check signature: No public key" and dpkg-source goes on: apt has already verified the
# .dsc itself against the signed archive index.  Its output is shown only when it fails.
if ! dpkg-source -x "${dsc[0]}" "$tree" >"$src_cache/dpkg-source.log" 2>&1; then
    cat "$src_cache/dpkg-source.log" >&2
    die "dpkg-source -x ${dsc[0]##*/} failed"
fi
rm -f "$src_cache"/*.orig.tar.* # dpkg-source leaves a link/copy of the tarball beside the tree
for p in $series; do
    echo "mbedtls-tuned.sh: applying tuned/patches/$p" >&2
    patch -s -p1 -d "$tree" --no-backup-if-mismatch <"$patchdir/$p" || die "patch $p does not apply"
done
{
    printf '\n/* ---- appended by mtls scripts/mbedtls-tuned.sh from %s ---- */\n' "${config##*/}"
    cat "$config"
} >>"$tree/include/mbedtls/mbedtls_config.h"

# ---- 3. static libraries only --------------------------------------------------------------------
bld=$src_cache/build
rm -rf "$bld" "$dest.tmp"
echo "mbedtls-tuned.sh: building static libraries (CFLAGS: $cflags)" >&2
cmake -S "$tree" -B "$bld" -DCMAKE_BUILD_TYPE=None -DCMAKE_C_FLAGS="$cflags" \
    -DUSE_STATIC_MBEDTLS_LIBRARY=ON -DUSE_SHARED_MBEDTLS_LIBRARY=OFF \
    -DENABLE_PROGRAMS=OFF -DENABLE_TESTING=OFF -DMBEDTLS_FATAL_WARNINGS=OFF \
    -DCMAKE_INSTALL_PREFIX="$dest.tmp" -DCMAKE_INSTALL_LIBDIR=lib >"$src_cache/cmake.log" 2>&1 ||
    die "cmake configure failed, see $src_cache/cmake.log"
cmake --build "$bld" -j "$jobs" >"$src_cache/build.log" 2>&1 ||
    die "build failed, see $src_cache/build.log"
cmake --install "$bld" >>"$src_cache/build.log" 2>&1 || die "install failed"

for l in libmbedtls libmbedx509 libmbedcrypto; do
    [[ -f $dest.tmp/lib/$l.a ]] || die "$l.a was not built"
done
# 3rdparty/ (built again by tuned/patches/0005: Everest's X25519, p256-m) installs its own static
# libraries, which libmbedcrypto.a calls into: fold their objects into libmbedcrypto.a, so that
# consumers (the Makefile) link the same three libraries whatever the configuration.
for l in libeverest libp256m; do
    [[ -f $dest.tmp/lib/$l.a ]] || continue
    rm -rf "$bld/fold" && mkdir -p "$bld/fold"
    (cd "$bld/fold" && ar x "$dest.tmp/lib/$l.a" && ar q "$dest.tmp/lib/libmbedcrypto.a" ./*.o) ||
        die "cannot fold $l.a into libmbedcrypto.a"
    ranlib "$dest.tmp/lib/libmbedcrypto.a"
    rm -f "$dest.tmp/lib/$l.a"
    rm -rf "$dest.tmp/lib/cmake" # its exported targets name the library just folded
done
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "$stamp" >"$dest/.stamp"
print_version
