#!/usr/bin/env bash
# Builds the Debian packages (debian/) and tries them on this machine:
#   1. installs what building needs (debhelper, dpkg-dev, lintian, ...)
#   2. dpkg-buildpackage -us -uc -b in a temporary copy of the tree (the
#      checkout is left as it was)
#   3. lintian --fail-on error,warning
#   4. apt-get install ./*.deb: libmtls0, libmtls-dev, mtls-tools, mtls-proxy
#   5. builds tests/consumer/ against the installed packages with Make +
#      pkg-config (shared, and static with libmtls.a), CMake and Meson, and
#      runs each on a PKI made by tests/pki.sh; runs mtls-check and checks
#      mtls-proxy's configuration, user and unit
#   6. purges the packages, and removes what step 4 pulled in and the
#      mtls-proxy user if they were not there before
# Usage: scripts/deb.sh [-o DIR]   (-o: copy the .deb files to DIR)
# Needs root (apt-get, dpkg).  Prints "deb: all checks passed" last.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=
case ${1:-} in
-o) out=${2:?usage: $0 [-o DIR]} ;;
"") ;;
*) echo "usage: $0 [-o DIR]" >&2; exit 2 ;;
esac
if ((EUID != 0)); then
	echo "deb.sh: needs root (apt-get install of the packages it builds)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
ours=(libmtls0 libmtls-dev mtls-tools mtls-proxy)
fails=0
ok() { echo "  ok: $*"; }
bad() {
	echo "  FAIL: $*"
	fails=$((fails + 1))
}
step() { printf '\n== %s\n' "$*"; }
installed() { dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\n' 2>/dev/null |
	awk '$1 == "ii" { sub(/:.*/, "", $2); print $2 }' | sort -u; }

for p in "${ours[@]}"; do
	if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) == *" installed" ]]; then
		echo "deb.sh: $p is already installed; remove it first (this script purges what it installs)" >&2
		exit 1
	fi
done

# ---- 1. build dependencies --------------------------------------------------
step "build dependencies"
need=(debhelper dpkg-dev fakeroot lintian build-essential pkgconf libmbedtls-dev
	cmake meson ninja-build openssl)
missing=()
for p in "${need[@]}"; do
	[[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) == "install ok installed" ]] ||
		missing+=("$p")
done
if ((${#missing[@]})); then
	echo "installing ${missing[*]}"
	apt-get "${apt_opts[@]}" update >/dev/null
	apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" >/dev/null
fi
ok "debhelper $(dpkg-query -W -f='${Version}' debhelper), lintian $(dpkg-query -W -f='${Version}' lintian)"

work=$(mktemp -d "${TMPDIR:-/tmp}/mtls-deb.XXXXXX")
pulled=
had_user=0
getent passwd mtls-proxy >/dev/null && had_user=1
cleanup() {
	local now extra
	set +e
	now=$(installed)
	if grep -qxF -f <(printf '%s\n' "${ours[@]}") <<<"$now"; then
		apt-get "${apt_opts[@]}" purge "${ours[@]}" >/dev/null 2>&1
	fi
	# What installing our packages pulled in (adduser, ...), and only that.
	extra=$(comm -23 <(echo "$pulled") <(printf '%s\n' "${ours[@]}" | sort))
	if [[ -n $extra ]]; then
		# shellcheck disable=SC2086
		apt-get "${apt_opts[@]}" purge $extra >/dev/null 2>&1
	fi
	if ((!had_user)) && getent passwd mtls-proxy >/dev/null; then
		deluser --system --quiet mtls-proxy >/dev/null 2>&1 || userdel mtls-proxy
		getent group mtls-proxy >/dev/null && groupdel mtls-proxy
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# ---- 2. build ---------------------------------------------------------------
version=$(dpkg-parsechangelog -l "$repo/debian/changelog" -S Version)
src=$work/mtls-$version
mkdir -p "$src"
# The files git knows (committed or not, never ignored ones such as build/
# and .deps/), as they are in the work tree.
(cd "$repo" && git ls-files -z --cached --others --exclude-standard |
	tar --null --ignore-failed-read -T - -cf -) | tar -C "$src" -xf -
step "dpkg-buildpackage -us -uc -b ($src)"
if ! (cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
	tail -40 "$work/build.log"
	echo "deb.sh: dpkg-buildpackage failed (log above)"
	exit 1
fi
arch=$(dpkg --print-architecture)
debs=()
for p in "${ours[@]}"; do
	f=$work/${p}_${version}_$arch.deb
	if [[ -e $f ]]; then
		debs+=("$f")
		ok "built $(basename "$f") ($(stat -c %s "$f") bytes)"
	else
		bad "no $(basename "$f")"
	fi
done
((fails == 0)) || exit 1
# The symbols file is what scripts/gen-symbols.sh makes of the export list,
# and what the built library exports (dpkg-gensymbols warns otherwise).
if "$repo/scripts/gen-symbols.sh" --check; then
	ok "debian/libmtls0.symbols is up to date with the export list"
else
	bad "debian/libmtls0.symbols is stale"
fi
if grep -q 'dpkg-gensymbols: warning' "$work/build.log"; then
	sed -n '/dpkg-gensymbols: warning/,/^   dh_/p' "$work/build.log"
	bad "dpkg-gensymbols: libmtls.so's symbols differ from debian/libmtls0.symbols"
else
	ok "dpkg-gensymbols: libmtls.so exports what debian/libmtls0.symbols lists"
fi
# The package's version is the library's.
mkver=$(sed -n 's/^VERSION *:= *//p' "$repo/Makefile")
if [[ ${version%%-*} == "$mkver" ]]; then
	ok "debian/changelog version $version, Makefile VERSION $mkver"
else
	bad "debian/changelog says $version, the Makefile VERSION $mkver: add a changelog entry"
fi
[[ -n $out ]] && mkdir -p "$out" && cp "${debs[@]}" "$out"/

# ---- 3. lintian -------------------------------------------------------------
step "lintian --fail-on error,warning"
rc=0
lintian --fail-on error,warning "$work/mtls_${version}_$arch.changes" \
	>"$work/lintian.log" 2>&1 || rc=$?
grep -v 'running with root privileges is not recommended' "$work/lintian.log" || true
if ((rc == 0)); then
	ok "lintian: no error or warning"
else
	bad "lintian (exit $rc)"
fi

# ---- 4. install -------------------------------------------------------------
step "apt-get install ${debs[*]##*/}"
before=$(installed)
if ! apt-get "${apt_opts[@]}" install --no-install-recommends "${debs[@]}" \
	>"$work/install.log" 2>&1; then
	cat "$work/install.log"
	bad "apt-get install"
	exit 1
fi
# New packages marked automatic are the dependencies ours pulled in (apt
# holds the dpkg lock meanwhile, so nobody else installed them).
pulled=$(comm -13 <(echo "$before") <(installed) |
	grep -xF -f <(apt-mark showauto; printf '%s\n' "${ours[@]}") || true)
ok "installed: $(tr '\n' ' ' <<<"$pulled")"

# ---- 5. use them --------------------------------------------------------------
step "consumers against the installed packages"
multiarch=$(dpkg-architecture -q DEB_HOST_MULTIARCH)
pki=$work/pki
"$repo/tests/pki.sh" "$pki" >/dev/null || { bad "tests/pki.sh"; exit 1; }
vers=${version%%-*}
# check NAME PROGRAM SHARED(yes|no)
check() {
	local name=$1 prog=$2 shared=$3 out lib
	if ! out=$("$prog" "$pki/client-ec.crt" "$pki/client-ec.key" 2>&1) ||
		[[ $out != *"mtls $vers "* || $out != *subject=CN=client.test* ]]; then
		bad "$name: $out"
		return
	fi
	lib=$(ldd "$prog" | awk '$1 == "libmtls.so.0" { print $3 }')
	if [[ $shared == yes ]]; then
		if [[ -n $lib && $(dpkg -S "$(readlink -f "$lib")" 2>/dev/null) == libmtls0[:\ ]* ]]; then
			ok "$name: $(head -1 <<<"$out"), libmtls.so.0 from libmtls0 ($lib)"
		else
			bad "$name: libmtls.so.0 is '${lib:-not needed}', not the package's"
		fi
	elif [[ -z $lib ]]; then
		ok "$name: $(head -1 <<<"$out"), libmtls linked in (no libmtls.so.0)"
	else
		bad "$name: needs $lib"
	fi
}
# The system's pkg-config finds the package's mtls.pc (not one from a
# "make install" into /usr/local).
pcdir=$(pkg-config --variable=pcfiledir mtls 2>/dev/null || true)
if [[ $pcdir == /usr/lib/$multiarch/pkgconfig ]]; then
	ok "pkg-config finds $pcdir/mtls.pc"
else
	bad "pkg-config finds mtls.pc in '${pcdir:-nowhere}'"
fi
cons=$repo/tests/consumer
mk=(make -s -C "$cons" O="$work")
if "${mk[@]}" all static >"$work/make.log" 2>&1; then
	check "Make + pkg-config" "$work/consumer" yes
	check "Make + pkg-config --static" "$work/consumer-static" no
else
	cat "$work/make.log"
	bad "Make + pkg-config consumers do not build"
fi
for st in OFF ON; do
	if cmake -G Ninja -S "$cons" -B "$work/cmake-$st" -DMTLS_STATIC=$st \
		-DMTLS_MIN_VERSION="$vers" >"$work/cmake.log" 2>&1 &&
		cmake --build "$work/cmake-$st" >>"$work/cmake.log" 2>&1; then
		grep -q "found in /usr/lib/$multiarch/cmake/mtls" "$work/cmake.log" ||
			bad "CMake found another mtls: $(grep 'mtls .* found' "$work/cmake.log")"
		check "CMake find_package(mtls $vers), MTLS_STATIC=$st" \
			"$work/cmake-$st/consumer" "$([[ $st == OFF ]] && echo yes || echo no)"
	else
		cat "$work/cmake.log"
		bad "CMake consumer (MTLS_STATIC=$st) does not build"
	fi
done
if meson setup "$work/meson" "$cons" >"$work/meson.log" 2>&1 &&
	meson compile -C "$work/meson" >>"$work/meson.log" 2>&1; then
	check "Meson dependency('mtls')" "$work/meson/consumer" yes
else
	cat "$work/meson.log"
	bad "Meson consumer does not build"
fi

step "mtls-tools and mtls-proxy"
if out=$(mtls-check "$pki/client-ec.crt" "$pki/client-ec.key" --role client 2>&1); then
	ok "mtls-check on the PKI's client pair: $(tail -1 <<<"$out")"
else
	bad "mtls-check: $out"
fi
if [[ -e /usr/share/man/man1/mtls-check.1.gz ]]; then
	ok "mtls-check(1) installed"
else
	bad "no mtls-check(1)"
fi
if out=$(mtls-proxy -V 2>&1); then ok "$out"; else bad "mtls-proxy -V: $out"; fi
if [[ $(getent passwd mtls-proxy) == *:/nonexistent:/usr/sbin/nologin ]]; then
	ok "system user mtls-proxy (no home, no shell)"
else
	bad "mtls-proxy user: $(getent passwd mtls-proxy)"
fi
if [[ $(stat -c '%a %U:%G' /etc/mtls-proxy) == "750 root:mtls-proxy" ]]; then
	ok "/etc/mtls-proxy is 0750 root:mtls-proxy"
else
	bad "/etc/mtls-proxy: $(stat -c '%a %U:%G' /etc/mtls-proxy)"
fi
unit=$(dpkg -L mtls-proxy | grep '/mtls-proxy.service$' || true)
if [[ -n $unit ]]; then
	ok "unit $unit"
	# shellcheck disable=SC2016 # $MAINPID is systemd's, not ours
	for k in User=mtls-proxy ProtectSystem=strict NoNewPrivileges=yes \
		CapabilityBoundingSet=CAP_NET_BIND_SERVICE 'ExecReload=/bin/kill -HUP $MAINPID'; do
		grep -qxF "$k" "$unit" || bad "unit lacks $k"
	done
	if command -v systemd-analyze >/dev/null 2>&1; then
		if systemd-analyze verify "$unit" >"$work/verify.log" 2>&1; then
			ok "systemd-analyze verify"
		else
			cat "$work/verify.log"
			bad "systemd-analyze verify $unit"
		fi
	fi
else
	bad "no mtls-proxy.service in the package"
fi
# The shipped configuration parses; its credentials do not exist yet.
out=$(mtls-proxy -t -c /etc/mtls-proxy/mtls-proxy.conf 2>&1 || true)
if [[ $out == *"problem(s)"* && $out != *"problem(s); credentials not checked"* ]]; then
	ok "the shipped mtls-proxy.conf parses (its credentials are the admin's to add)"
else
	bad "mtls-proxy -t on the shipped configuration: $out"
fi

# ---- 6. remove ----------------------------------------------------------------
step "purge"
cleanup
trap - EXIT
left=$(installed | grep -xF -f <(printf '%s\n' "${ours[@]}") || true)
if [[ -z $left && ! -e /usr/lib/$multiarch/libmtls.so.0 && ! -e /etc/mtls-proxy ]]; then
	ok "packages purged, nothing left in /usr/lib/$multiarch or /etc/mtls-proxy"
else
	bad "left after purge: $left $(ls -d /usr/lib/"$multiarch"/libmtls* /etc/mtls-proxy 2>/dev/null)"
fi

echo
if ((fails == 0)); then
	echo "deb: all checks passed"
	exit 0
fi
echo "deb: $fails check(s) failed"
exit 1
