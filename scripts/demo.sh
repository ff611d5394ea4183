#!/usr/bin/env bash
# scripts/demo.sh BUILD - the `make demo` story: generate a demo PKI, then
# show what mtls-check says about a good client certificate and about the
# usual mistakes.  Exits 0 only when every result is the expected one.
set -uo pipefail
build=${1:?usage: scripts/demo.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
bin="$build/mtls-check"
pki="$build/demo-pki"
[[ -x $bin ]] || { echo "demo: $bin is not built (run make)"; exit 1; }

if [[ -t 1 ]]; then bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'; else bold="" dim="" off=""; fi
step=0 bad=0

say() { printf '%s\n' "$*"; }

# scene TITLE EXPLANATION STATUS PHRASE ARGS...: runs mtls-check ARGS in the
# PKI directory, shows its output, and checks the exit status and PHRASE.
scene() {
	local title=$1 why=$2 want=$3 phrase=$4 out rc verdict
	shift 4
	step=$((step + 1))
	say ""
	say "${bold}== $step. $title${off}"
	say "${dim}$why${off}"
	say "\$ mtls-check $*"
	out=$(cd "$pki" && "$bin" "$@" 2>&1)
	rc=$?
	say "$out"
	if [[ $rc -eq $want ]] && grep -qF -- "$phrase" <<<"$out"; then
		verdict="as expected"
	else
		verdict="NOT AS EXPECTED (wanted exit $want and \"$phrase\")"
		bad=$((bad + 1))
	fi
	say "${dim}-> exit $rc, $verdict${off}"
}

say "${bold}mtls demo${off}: mtls-check runs the checks libmtls does when it loads a"
say "certificate and key, and reports every finding in one command."
say ""
say "Generating a demo PKI (root CA, intermediate CA, client and server leaves)..."
rm -rf "$pki"
"$root/tests/pki.sh" "$pki" || { echo "demo: tests/pki.sh failed"; exit 1; }

scene "A good client certificate" \
	"Leaf + intermediate in one file, its key, and the root CA the server trusts." \
	0 "verifies to ca.crt" \
	client-ec-chain.pem client-ec.key --ca ca.crt

scene "A certificate about to expire" \
	"It still works, so this is a warning (exit 0) - but renew it now." \
	0 "expires in" \
	client-expiring.crt client-expiring.key

scene "The wrong private key" \
	"The TLS handshake would fail later; mtls-check says why now." \
	1 "does not match" \
	client-ec.crt client-other.key

scene "An expired certificate" \
	"Every peer would refuse it." \
	1 "expired on" \
	client-expired.crt client-expired.key

scene "A server certificate used as a client certificate" \
	"Its extended key usage allows serverAuth only; a server would refuse it." \
	1 "does not include clientAuth" \
	client-wrongeku.crt client-wrongeku.key --role client

scene "A chain in the wrong order" \
	"The intermediate comes first and the leaf second; the leaf must come first." \
	1 "out of order" \
	client-rev-chain.pem client-ec.key --ca ca.crt

say ""
if [[ $bad -eq 0 ]]; then
	say "${bold}demo: all $step results as expected.${off}"
	say "Try it on your own files: $1/mtls-check CERT [KEY] --ca CA  (--json for scripts)"
	exit 0
fi
say "${bold}demo: $bad of $step results were not as expected.${off}"
exit 1
