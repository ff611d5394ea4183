#!/usr/bin/env bash
# Install what the benchmark needs from Debian packages, only when missing.
# Usage: bench/deps.sh [--no-servers]   (as root; no system daemon is started)
# A temporary /usr/sbin/policy-rc.d returning 101 stops the packages' init scripts from
# starting nginx/haproxy/stunnel/lighttpd as system services; it is removed afterwards (only if we made it).
set -euo pipefail

want=()
need() { # need CMD-OR-PATH PACKAGE
    if [[ $1 == /* ]]; then [[ -e $1 ]] || want+=("$2"); else command -v "$1" >/dev/null 2>&1 || want+=("$2"); fi
}
need /usr/include/openssl/ssl.h libssl-dev
need gnuplot gnuplot-nox
need taskset util-linux
need curl curl # the check that a client without a certificate is refused
need valgrind valgrind # callgrind: instructions per operation
if [[ ${1:-} != --no-servers ]]; then
    need nginx nginx-light
    need haproxy haproxy
    need stunnel4 stunnel4
    # nginx-light builds the stream module as a dynamic module shipped separately.
    need /usr/lib/nginx/modules/ngx_stream_module.so libnginx-mod-stream
    # lighttpd on mbedTLS (bookworm: 2.28): the same-crypto peer of mtls-proxy.
    need lighttpd lighttpd
    need /usr/lib/lighttpd/mod_mbedtls.so lighttpd-mod-mbedtls
fi
((${#want[@]} == 0)) && exit 0

if ((EUID != 0)); then
    echo "bench/deps.sh: missing ${want[*]}; run as root or install them" >&2
    exit 1
fi
echo "bench/deps.sh: installing ${want[*]}" >&2
made_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    made_policy=1
fi
cleanup() { if ((made_policy)); then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${want[@]}" >/tmp/bench-apt.log 2>&1; then
    apt-get update -q >/dev/null 2>&1 || true
    apt-get install -y -q --no-install-recommends "${want[@]}" >/tmp/bench-apt.log 2>&1 ||
        { tail -20 /tmp/bench-apt.log >&2; exit 1; }
fi
