#!/usr/bin/env bash
# Runs the suite for one build directory: every compiled cmocka program
# ($BUILD/tests/test_*) and every shell test (tests/test_*.sh), against a
# test PKI generated at run time.  Prints "N passed, N failed" last.
#   MTLS_TEST_WRAPPER  prefix for C test programs (e.g. valgrind ...)
#   MTLS_TEST_ONLY     run only tests whose name contains this string
#   MTLS_TEST_C_ONLY   1: only the C programs
#   MTLS_TEST_VALGRIND 1: the memcheck run (make check-valgrind): the C
#                      programs under MTLS_TEST_WRAPPER, and only the shell
#                      tests that take part in it (below)
# A shell test takes part in the memcheck run when a line of its own says
# "# tests/run.sh: valgrind" (it runs its programs under MTLS_TEST_WRAPPER)
# or "# tests/run.sh: valgrind only" (it starts valgrind itself; the other
# runs leave it out: it takes a minute, and valgrind cannot run an ASan
# build).
set -uo pipefail
build=${1:?usage: tests/run.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd)
# A fresh PKI per run (validity windows such as "expires in 10 days" are
# relative to now), private to this run so concurrent runs do not collide.
pki=$(mktemp -d "$build/pki.XXXXXX")
trap 'rm -rf "$pki"' EXIT
"$here/pki.sh" "$pki" || { echo "tests/pki.sh failed"; exit 1; }
export MTLS_TEST_PKI="$pki" MTLS_TEST_BUILD="$build" MTLS_TEST_SRC="$here"

pass=0 fail=0 failed=() times=()
run_one() {
	local name=$1 t0 rc; shift
	case "$name" in *"${MTLS_TEST_ONLY:-}"*) ;; *) return ;; esac
	echo "=== $name"
	t0=$SECONDS
	"$@"; rc=$?
	times+=("$((SECONDS - t0)) $name")
	if [ "$rc" -eq 0 ]; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1)); failed+=("$name")
	fi
}

for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	# shellcheck disable=SC2086
	run_one "$(basename "$t")" ${MTLS_TEST_WRAPPER:-} "$t"
done
for t in "$here"/test_*.sh; do
	[ -e "$t" ] && [ "${MTLS_TEST_C_ONLY:-0}" != 1 ] || continue
	tag=$(sed -n 's/^# tests\/run\.sh: //p' "$t" | head -1)
	if [ "${MTLS_TEST_VALGRIND:-0}" = 1 ]; then
		case $tag in valgrind | "valgrind only") ;; *) continue ;; esac
	elif [ "$tag" = "valgrind only" ]; then
		case "$(basename "$t")" in *"${MTLS_TEST_ONLY:-}"*)
			echo "=== $(basename "$t"): skipped (make check-valgrind runs it)" ;;
		esac
		continue
	fi
	run_one "$(basename "$t")" bash "$t" "$build"
done

echo
# Where the run's time went (the slowest first), to keep CI's budget honest.
[ "${#times[@]}" -gt 0 ] && printf '%s\n' "${times[@]}" | sort -rn | head -8 |
	awk '{ printf "%s%s %d s", (NR > 1 ? ", " : "slowest: "), $2, $1 } END { if (NR) print "" }'
[ "$fail" -eq 0 ] || echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
