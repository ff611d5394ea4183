#!/usr/bin/env bash
# tests/test_example_conf.sh BUILD - the shipped examples/mtls-proxy.conf
# passes the check its own header tells people to run after "make demo".
#
# The command is read from the file's header (the "#   build/mtls-proxy -t
# -c ..." line), not written here, and run as written from a directory laid
# out like the source tree after the demo: examples/mtls-proxy.conf is a
# symlink to the shipped file (read unchanged; its relative paths resolve
# from "examples/", as they do in the tree), build/demo-pki is the test PKI
# (tests/pki.sh, the generator scripts/demo.sh runs into BUILD/demo-pki) and
# build/mtls-proxy is the binary under test.  The demo itself is not run.
# Controls: scripts/demo.sh still puts its PKI in BUILD/demo-pki, and the
# same command fails when that PKI is missing.
set -uo pipefail
build=${1:?usage: tests/test_example_conf.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$(cd "$build" && pwd)
conf=$root/examples/mtls-proxy.conf
[[ -x $build/mtls-proxy ]] || { echo "not built: $build/mtls-proxy"; exit 1; }
checks=0 fails=0
# shellcheck source=tests/lib.sh
. "$here/lib.sh"

tree=$(mktemp -d "${TMPDIR:-/tmp}/mtls-example-conf.XXXXXX")
trap 'rm -rf "$tree"' EXIT
if [[ -n ${MTLS_TEST_PKI:-} ]]; then
	pki=$MTLS_TEST_PKI
else
	"$here/pki.sh" "$tree/pki" >/dev/null || { echo "tests/pki.sh failed"; exit 1; }
	pki=$tree/pki
fi

# The command the header gives for a check after the demo.
cmd=$(sed -n 's/^#   \(build\/mtls-proxy -t -c [^ ]*\).*/\1/p' "$conf" | head -1)
check "the header names a check command (got: '$cmd')" \
	test "$cmd" = "build/mtls-proxy -t -c examples/mtls-proxy.conf"
check "the header says the command needs 'make demo' first" \
	grep -q 'after "make demo"' "$conf"
# shellcheck disable=SC2016 # the script's own text, not expanded here
check "scripts/demo.sh generates its PKI in BUILD/demo-pki with tests/pki.sh" \
	bash -c 'grep -q "^pki=\"\$build/demo-pki\"" "$1" &&
		grep -q "tests/pki.sh\" \"\$pki\"" "$1"' _ "$root/scripts/demo.sh"

mkdir -p "$tree/examples" "$tree/build"
ln -s "$conf" "$tree/examples/mtls-proxy.conf"
ln -s "$build/mtls-proxy" "$tree/build/mtls-proxy"

# Without the demo's PKI the check must fail, naming a missing file.
read -r -a argv <<<"$cmd"
out=$(cd "$tree" && "${argv[@]}" 2>&1)
rc=$?
if [[ $rc -ne 0 ]] && grep -q 'No such file or directory' <<<"$out"; then
	ok "without build/demo-pki: '$cmd' fails (exit $rc)"
else
	bad "without build/demo-pki: '$cmd' exit $rc"
	printf '%s\n' "$out" | sed 's/^/    /'
fi

ln -s "$pki" "$tree/build/demo-pki"
out=$(cd "$tree" && "${argv[@]}" 2>&1)
rc=$?
if [[ $rc -eq 0 ]] && grep -q 'configuration ok' <<<"$out" &&
	! grep -qi 'problem\|skipped\|error' <<<"$out"; then
	ok "after the demo's PKI exists: '$cmd' passes"
else
	bad "after the demo's PKI exists: '$cmd' exit $rc"
	printf '%s\n' "$out" | sed 's/^/    /'
fi
# Every credential directive of the file was loaded (the library logs each
# at info): 4 certificates (listen, 2 hosts, upstream).
n=$(grep -c 'certificate configured' <<<"$out")
check "every certificate of the file was loaded and checked ($n of 4)" \
	test "$n" -eq 4

echo "$checks checks, $fails failed"
[[ $fails -eq 0 ]]
