#!/usr/bin/env bash
# mandoc -Tlint over man/: every message fails, but for a cross reference
# (.Xr) to a page this machine lacks, which is fine when it is one of ours
# (scripts/install-man.sh lists the names we install) or not an mtls page.
# Usage: scripts/lint-man.sh   (make lint-man; tests/test_man.sh)
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v mandoc >/dev/null; then
	echo "lint-man: mandoc is not installed (scripts/deps.sh installs it)" >&2
	exit 1
fi
ours=$("$repo/scripts/install-man.sh" list /nonexistent | awk '{print $2}') || exit 1
bad=0
while IFS= read -r line; do
	if [[ $line =~ referenced\ manual\ not\ found:\ Xr\ ([^ ]+)\ ([0-9]) ]]; then
		name=${BASH_REMATCH[1]}
		if grep -qxF "$name" <<<"$ours"; then
			continue
		fi
		if [[ $name != mtls* ]]; then
			continue
		fi
		line="$line (no page of ours has that name)"
	fi
	echo "$line"
	bad=$((bad + 1))
done < <(cd "$repo" && mandoc -Tlint -Wstyle man/*.[1-8] 2>&1)
if ((bad > 0)); then
	echo "lint-man: $bad problem(s) in man/" >&2
	exit 1
fi
exit 0
