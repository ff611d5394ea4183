#!/usr/bin/env bash
# Unpack Debian trixie's mbedTLS 3.6 (headers + shared libs) into DESTDIR on a bookworm machine.
# Usage: scripts/mbedtls36.sh DESTDIR
# Result: DESTDIR/usr/include/mbedtls/..., DESTDIR/usr/lib/<multiarch>/libmbed{tls,x509,crypto}.so*
# Build with -IDESTDIR/usr/include -LDESTDIR/usr/lib/<multiarch> -Wl,-rpath,DESTDIR/usr/lib/<multiarch>.
# The .pc files say prefix=/usr; with pkg-config use PKG_CONFIG_PATH=DESTDIR/usr/lib/<multiarch>/pkgconfig
# and --define-variable=prefix=DESTDIR/usr.
# The system's apt configuration, lists and cache are never touched: apt runs on a private
# sources list, lists dir and cache under DESTDIR/.apt, removed afterwards.
set -euo pipefail

if (($# != 1)); then
    echo "usage: $0 DESTDIR" >&2
    exit 2
fi
mkdir -p "$1"
dest=$(cd "$1" && pwd) # absolute: apt-get download runs in another directory

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
libdir=$dest/usr/lib/$multiarch
header=$dest/usr/include/mbedtls/build_info.h
pkgs=(libmbedtls-dev libmbedtls21 libmbedx509-7 libmbedcrypto16)

print_version() {
    local v
    v=$(sed -n 's/^#define MBEDTLS_VERSION_STRING[[:space:]]*"\([^"]*\)".*/\1/p' "$header")
    echo "mbedTLS ${v:-unknown} in $dest (libs: $libdir)"
}

have_all() {
    local l
    [[ -f $header ]] || return 1
    # -e follows the -dev .so symlink, so this also checks the versioned runtime library.
    for l in libmbedtls libmbedx509 libmbedcrypto; do
        [[ -e $libdir/$l.so ]] || return 1
    done
}

if have_all; then
    print_version
    exit 0
fi

# Same mirror as this machine's own sources (keeps working behind a local mirror/proxy).
mirror_uri() {
    local uri=""
    if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
        # deb822: first URI of a stanza line "URIs:" that is not the security archive.
        uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
            /etc/apt/sources.list.d/debian.sources)
    fi
    if [[ -z $uri && -r /etc/apt/sources.list ]]; then
        # one-line: "deb [opts] URI suite comp...", skipping the security archive.
        uri=$(sed -n -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' \
            /etc/apt/sources.list | grep -v security | head -n 1 || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}
uri=$(mirror_uri)

work=$dest/.apt
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
rm -rf "$work"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" >"$work/sources.list"

apt_opts=(
    -q
    -o "Dir::Etc::SourceList=$work/sources.list"
    -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$work/lists"
    -o "Dir::Cache=$work/cache"
    -o Acquire::Languages=none # Packages only, no Translation-* files
)
if ((EUID == 0)); then
    # apt drops to user _apt to download; it cannot write into e.g. /root/..., which only makes apt
    # warn and fall back to root. Say so up front instead of getting the warning.
    apt_opts+=(-o APT::Sandbox::User=root)
fi

echo "mbedtls36.sh: fetching ${pkgs[*]} from $uri trixie" >&2
apt-get "${apt_opts[@]}" update >/dev/null
(cd "$work/debs" && apt-get "${apt_opts[@]}" download "${pkgs[@]}" >/dev/null)

for p in "${pkgs[@]}"; do
    deb=("$work/debs/${p}_"*.deb)
    [[ -f ${deb[0]} ]] || { echo "mbedtls36.sh: $p was not downloaded" >&2; exit 1; }
    dpkg -x "${deb[0]}" "$dest"
done

if ! have_all; then
    echo "mbedtls36.sh: unpacked, but $header or the libraries in $libdir are missing" >&2
    exit 1
fi
print_version
