#!/usr/bin/env bash
# mandoc -Tlint over man/, at its strictest level (style): every message is
# a failure, but for a cross reference (.Xr) to a page missing from this
# machine's index, which is fine when it is one of ours (a name that
# scripts/install-man.sh installs) or not an mtls page (epoll(7) need not be
# installed here).  A cross reference to an mtls page we do not install is a
# failure.
# Usage: scripts/lint-man.sh   (make lint-man, make lint, tests/test_man.sh)
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v mandoc >/dev/null; then
	echo "lint-man: mandoc is not installed (scripts/deps.sh installs it)" >&2
	exit 1
fi
ours=$("$repo/scripts/install-man.sh" list /nonexistent | awk '{print $1}') || exit 1
errs=$(mktemp)
trap 'rm -f "$errs"' EXIT
bad=0
# mandoc writes its findings to stdout, its own troubles to stderr.
while IFS= read -r line; do
	if [[ $line =~ referenced\ manual\ not\ found:\ Xr\ ([^ ]+)\ ([0-9]) ]]; then
		name=${BASH_REMATCH[1]}.${BASH_REMATCH[2]}
		grep -qxF "$name" <<<"$ours" && continue
		[[ $name == mtls* ]] || continue
		line="$line (no page of ours has that name)"
	fi
	echo "$line"
	bad=$((bad + 1))
done < <(cd "$repo" && mandoc -Tlint -Wstyle man/*.[1-8] 2>"$errs")
# The system's page index may be stale: not a problem of man/.
while IFS= read -r line; do
	[[ $line == *"outdated mandoc.db"* ]] && continue
	echo "$line"
	bad=$((bad + 1))
done <"$errs"
if ((bad > 0)); then
	echo "lint-man: $bad problem(s) in man/" >&2
	exit 1
fi
echo "lint-man: $(ls "$repo"/man/*.[1-8] | wc -l) pages clean (mandoc -Tlint)"
