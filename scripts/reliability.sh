#!/usr/bin/env bash
# scripts/reliability.sh - measure how mtls and mtls-proxy hold up under
# faults, fuzzing and bad input, and write docs/reliability.md.
#
#   scripts/reliability.sh [--valgrind] [--fuzz-seconds N] [--build DIR] [--out FILE]
#
#   1. builds the tests (make tests BUILD=DIR) and runs tests/test_proxy_faults.sh
#      through tests/run.sh (a fresh test PKI), collecting its "figure:" lines;
#      then tests/test_adversarial.sh on DIR and on an mbedTLS 3.6 build
#   2. make fuzz FUZZ_SECONDS=N (default 10 per target): executions per target
#   3. runs every cmocka program of DIR/tests/ once and counts its test cases,
#      and among them those whose name says bad input (the pattern is in the
#      report)
#   4. with --valgrind: make check-valgrind, pass or fail
# Exit status: non-zero if any part failed; the report is written anyway.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 1

build=build fuzz_secs=10 valgrind=0 out=docs/reliability.md
cmdline="scripts/reliability.sh${*:+ $*}"
while [ $# -gt 0 ]; do
	case $1 in
	--valgrind) valgrind=1 ;;
	--fuzz-seconds) fuzz_secs=${2:?--fuzz-seconds N}; shift ;;
	--build) build=${2:?--build DIR}; shift ;;
	--out) out=${2:?--out FILE}; shift ;;
	-h | --help) sed -n '2,15p' "$0"; exit 0 ;;
	*) echo "usage: scripts/reliability.sh [--valgrind] [--fuzz-seconds N] [--build DIR] [--out FILE]" >&2; exit 2 ;;
	esac
	shift
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtls-reliability.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
status=0
say() { echo "reliability: $*" >&2; }

scripts/deps.sh || say "deps.sh failed; continuing with what is installed"

# ---- 1. fault tests ----------------------------------------------------------------
say "building tests in $build"
if ! make --no-print-directory -s tests BUILD="$build" >"$tmp/build.log" 2>&1; then
	tail -20 "$tmp/build.log" >&2
	say "build failed"
	exit 1
fi
say "running tests/test_proxy_faults.sh"
t0=$SECONDS
MTLS_TEST_ONLY=test_proxy_faults tests/run.sh "$build" >"$tmp/faults.log" 2>&1
faults_rc=$?
faults_secs=$((SECONDS - t0))
[ "$faults_rc" -eq 0 ] || status=1
fig() { sed -n "s/^figure: $1=//p" "$tmp/faults.log" | tail -1; }
faults_ok=$(grep -c '^ok ' "$tmp/faults.log")
faults_fail=$(grep -c '^FAIL ' "$tmp/faults.log")
grep -E '^(ok|FAIL|skip) ' "$tmp/faults.log" >"$tmp/faults.checks"

# ---- 1b. adversarial tests (security issue #11), on this build and on mbedTLS 3.6 ------
# The 3.6 build is made as make check-mbedtls36 makes it (fetched into .deps/).
adv_builds=("$build")
if scripts/mbedtls36.sh "$here/.deps/mbedtls-3.6" >"$tmp/mbedtls36.log" 2>&1 &&
	make --no-print-directory -s tests BUILD=build/mbedtls36 \
		MBEDTLS_PREFIX="$here/.deps/mbedtls-3.6/usr" >>"$tmp/mbedtls36.log" 2>&1; then
	adv_builds+=(build/mbedtls36)
else
	say "mbedTLS 3.6 build unavailable: adversarial tests on $build only"
fi
: >"$tmp/adv.table"
: >"$tmp/adv.checks"
for b in "${adv_builds[@]}"; do
	say "running tests/test_adversarial.sh on $b"
	pfx=()
	[ "$b" = build/mbedtls36 ] && pfx=(env MBEDTLS_PREFIX="$here/.deps/mbedtls-3.6/usr")
	"${pfx[@]}" env MTLS_TEST_ONLY=test_adversarial tests/run.sh "$b" >"$tmp/adv.log" 2>&1 || status=1
	ver=$(sed -n 's/^# adv_server: mbedTLS \([^,]*\),.*/\1/p' "$tmp/adv.log" | head -1)
	printf '| %s | %s | %s | %s | %s | %s |\n' "$b" "${ver:-?}" \
		"$(grep -c '^# [a-z0-9_]*$' "$tmp/adv.log")" \
		"$(grep -c '^ok - ' "$tmp/adv.log")" "$(grep -c '^not ok - ' "$tmp/adv.log")" \
		"$(grep -c '^skip - ' "$tmp/adv.log")" >>"$tmp/adv.table"
	{ echo "## $b (mbedTLS ${ver:-?})"; grep -E '^(ok|not ok|skip) - ' "$tmp/adv.log" | cut -c1-160; } >>"$tmp/adv.checks"
done

# ---- 2. fuzzing ---------------------------------------------------------------------
say "fuzzing, $fuzz_secs s per target"
make --no-print-directory fuzz FUZZ_SECONDS="$fuzz_secs" >"$tmp/fuzz.log" 2>&1
fuzz_rc=$?
[ "$fuzz_rc" -eq 0 ] || status=1
grep -E '^fuzz_[a-z0-9_]+ ' "$tmp/fuzz.log" >"$tmp/fuzz.table"

# ---- 3. unit tests: cases and bad-input cases -----------------------------------------
bad_re='bad|garbage|missing|empty|truncat|wrong|refus|invalid|corrupt|expired|revoked|mismatch|reject|null|nocert|no_|not_|untrusted|malformed|fail|error|other_ca|too_|overflow|skips|unknown|denied|insecure'
pki=$(mktemp -d "$tmp/pki.XXXXXX")
tests/pki.sh "$pki" >/dev/null 2>&1 || say "tests/pki.sh failed"
: >"$tmp/unit.table"
unit_total=0 unit_bad=0 unit_failed=0
for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	MTLS_TEST_PKI=$pki MTLS_TEST_BUILD=$(cd "$build" && pwd) "$t" >"$tmp/$name.log" 2>&1
	rc=$?
	n=$(grep -c '^\[ RUN ' "$tmp/$name.log")
	b=$(sed -n 's/^\[ RUN *\] //p' "$tmp/$name.log" | grep -Eci "$bad_re")
	res=ok
	if [ "$rc" -ne 0 ]; then res=FAILED; unit_failed=$((unit_failed + 1)); status=1; fi
	printf '| %s | %s | %s | %s |\n' "$name" "$n" "$b" "$res" >>"$tmp/unit.table"
	unit_total=$((unit_total + n))
	unit_bad=$((unit_bad + b))
done

# ---- 4. valgrind ----------------------------------------------------------------------
vg_result="not run (pass --valgrind)"
if [ "$valgrind" -eq 1 ]; then
	say "make check-valgrind"
	t0=$SECONDS
	if make --no-print-directory check-valgrind >"$tmp/valgrind.log" 2>&1; then
		vg_result="pass ($(tail -1 "$tmp/valgrind.log"), $((SECONDS - t0)) s)"
	else
		vg_result="FAIL ($(tail -1 "$tmp/valgrind.log"); failed: $(grep '^failed:' "$tmp/valgrind.log" | cut -d' ' -f2-))"
		status=1
	fi
fi

# ---- report ---------------------------------------------------------------------------
mbedtls=$("$build/mtls-proxy" -V 2>/dev/null | sed -n 's/.*(mbedTLS \(.*\))/\1/p')
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
mem=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null)
rev=$(git rev-parse --short HEAD 2>/dev/null)
git diff --quiet HEAD 2>/dev/null || rev="$rev + uncommitted changes"
mkdir -p "$(dirname "$out")"
{
	cat <<EOF
# Reliability figures

Generated by \`$cmdline\` — do not edit by hand; run it again.

- Date: $(date -u '+%Y-%m-%d %H:%M UTC')
- Source: $rev
- Machine: $(uname -srm), ${cpu:-unknown CPU}, $(nproc) CPU(s), ${mem:-? memory}
- mbedTLS: ${mbedtls:-unknown}; compiler: $(${CC:-cc} --version 2>/dev/null | head -1)
- Build: \`$build\` (\`make tests BUILD=$build\`)

## Proxy under faults (tests/test_proxy_faults.sh)

Result: **$([ "$faults_rc" -eq 0 ] && echo pass || echo FAIL)** — $faults_ok checks passed,
$faults_fail failed, in $faults_secs s (including the test PKI).
Loopback; inbound mTLS, plain TCP upstreams; handshake_timeout 2 s on the listener for stalled, garbage and aborted clients, 30 s on the others.

| Figure | Value |
|---|---|
| Concurrent mTLS connections held (target) | $(fig connections_held) ($(fig connections_target)) |
| ... of which echoed their bytes intact | $(fig connections_echoed_intact) |
| Proxy descriptors while held (baseline) | $(fig proxy_fds_while_held) ($(fig fds_baseline)) |
| Proxy VmRSS: start / after 1st round / after 2nd round (kB) | $(fig rss_kb_baseline) / $(fig a_rss_kb_round1) / $(fig a_rss_kb_round2) |
| Proxy VmRSS at the end (kB) | $(fig rss_kb_end) |
| Faults survived (killed upstream, dead targets, stalled, garbage, aborted, reloads) | $(fig faults_survived) |
| Stalled clients closed by the handshake timeout | $(fig stalled_clients_closed) |
| Garbage inputs / clients vanishing mid-handshake | $(fig garbage_cases) / $(fig aborted_clients) |
| SIGHUP reloads under load | $(fig reloads_under_load) |

Descriptors before and after each scenario (after a bounded wait for the
connections to close) and VmRSS (kB):

| Scenario | fds before | fds after | RSS before | RSS after | seconds |
|---|---|---|---|---|---|
EOF
	for s in a_concurrent b_upstream_killed c_failover d_stalled e_garbage e_abort f_reload; do
		[ -n "$(fig "${s}_fds_after")" ] || continue
		echo "| $s | $(fig "${s}_fds_before") | $(fig "${s}_fds_after") | $(fig "${s}_rss_kb_before") | $(fig "${s}_rss_kb_after") | $(fig "${s}_seconds") |"
	done
	echo
	echo "The checks, as printed:"
	echo
	echo '```'
	cat "$tmp/faults.checks"
	echo '```'
	cat <<EOF

## Adversarial tests (tests/test_adversarial.sh, issue #11)

A scriptable TLS client (tests/adversary/tls.py) crafts ClientHellos and
replays captured fields against tests/adv_server; what each scenario attacks
is listed in tests/test_adversarial.sh and docs/security.md. Scenarios that
need TLS 1.3 are skipped on mbedTLS 2.28.

| Build | mbedTLS | Scenarios | Checks passed | Failed | Skipped |
|---|---|---|---|---|---|
EOF
	cat "$tmp/adv.table"
	echo
	echo "The checks, as printed (cut to 160 characters):"
	echo
	echo '```'
	cat "$tmp/adv.checks"
	echo '```'
	cat <<EOF

## Fuzzing (make fuzz FUZZ_SECONDS=$fuzz_secs)

Result: **$([ "$fuzz_rc" -eq 0 ] && echo "pass, no crash" || echo FAIL)**; clang libFuzzer with ASan and UBSan,
seeds from a fresh test PKI and a captured ClientHello (tests/fuzz/run.sh).

| Target | Executions | Result |
|---|---|---|
EOF
	awk '{r = $3; for (i = 4; i <= NF; i++) r = r " " $i; printf "| %s | %s | %s |\n", $1, $2, r}' "$tmp/fuzz.table"
	cat <<EOF

## Unit tests: cases and bad-input cases

Every cmocka program in \`$build/tests/\`, run once; "bad input" counts the
cases whose name matches \`$bad_re\`
(a name heuristic: refusals, missing, truncated and garbage inputs).

| Program | Cases | Bad-input cases | Result |
|---|---|---|---|
EOF
	cat "$tmp/unit.table"
	echo "| total | $unit_total | $unit_bad | $([ "$unit_failed" -eq 0 ] && echo ok || echo "$unit_failed FAILED") |"
	cat <<EOF

## Valgrind (make check-valgrind)

$vg_result
EOF
} >"$out"
say "wrote $out"
exit $status
