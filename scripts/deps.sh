#!/usr/bin/env bash
# Install the Debian packages needed to build and test mtls, only when some are missing.
# Usage: scripts/deps.sh [--with-nginx]
# Silent and exit 0 when everything is already installed, so it can run before every build.
set -euo pipefail

usage() { echo "usage: $0 [--with-nginx]" >&2; }

with_nginx=0
for arg in "$@"; do
    case $arg in
        --with-nginx) with_nginx=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage; exit 2 ;;
    esac
done

# clang + libclang-rt-14-dev give the sanitizer and libFuzzer runtimes (bookworm's clang is 14).
# python3 + python3-cryptography: test peers, the adversarial client, CRLs and
# chains made at test time.  testssl.sh: tests/test_testssl.sh scans the
# example server and mtls-proxy for weak TLS.  mandoc: make lint-man and
# tests/test_man.sh lint the manual pages (mandoc -Tlint).
# libssl-dev: tests/test_gcm_tuned.c checks mbedTLS's AES-GCM against OpenSSL's libcrypto.
# cmake, dpkg-dev, patch, bzip2, xz-utils, debian-archive-keyring: make check-tuned builds mbedTLS
# from Debian's source package (scripts/mbedtls-tuned.sh).
pkgs=(libmbedtls-dev libcmocka-dev openssl pkg-config make gcc clang libclang-rt-14-dev valgrind curl
      python3 python3-cryptography testssl.sh mandoc libssl-dev
      cmake dpkg-dev patch bzip2 xz-utils debian-archive-keyring)
if ((with_nginx)); then
    pkgs+=(nginx-light) # interop tests against a real TLS server
fi
# tests/test_consumers.sh builds a program against the installed library
# with CMake and with Meson.
pkgs+=(cmake meson ninja-build)

missing=()
for p in "${pkgs[@]}"; do
    # dpkg-query fails for never-seen packages; "deinstall"/"half-installed" states count as missing too.
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [[ $status != "install ok installed" ]]; then
        missing+=("$p")
    fi
done
((${#missing[@]} == 0)) && exit 0

if ((EUID != 0)); then
    echo "deps.sh: missing packages: ${missing[*]}" >&2
    echo "deps.sh: install them with:" >&2
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

# Installing nginx would start the system daemon (port 80) through invoke-rc.d; a policy-rc.d
# returning 101 forbids that. Only create one if none exists, and remove only our own.
policy=/usr/sbin/policy-rc.d
own_policy=0
nginx_was_running=0
cleanup() {
    if ((own_policy)); then
        rm -f "$policy"
    fi
}
trap cleanup EXIT
if [[ " ${missing[*]} " == *" nginx-light "* ]]; then
    if pgrep -x nginx >/dev/null 2>&1; then
        nginx_was_running=1
    fi
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# temporary, from mtls scripts/deps.sh: do not start services\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        own_policy=1
    fi
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg instead of failing at once on the lock.
apt_opts=(-q -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
apt-get "${apt_opts[@]}" update >/dev/null
apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null

# Belt and braces: a pre-existing policy-rc.d may allow starts (or init may be systemd).
# Stop a system nginx that this install started, so nothing is left listening on port 80.
if ((!nginx_was_running)) && pgrep -x nginx >/dev/null 2>&1; then
    echo "deps.sh: stopping the system nginx started by the package install" >&2
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
        systemctl stop nginx || true
    fi
    nginx -s quit 2>/dev/null || true
    # Give it a few seconds for a graceful exit, then signal the master from its pid file.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        pgrep -x nginx >/dev/null 2>&1 || break
        sleep 0.5
    done
    if pgrep -x nginx >/dev/null 2>&1 && [[ -s /run/nginx.pid ]]; then
        kill "$(cat /run/nginx.pid)" 2>/dev/null || true
    fi
fi
echo "deps.sh: done" >&2
