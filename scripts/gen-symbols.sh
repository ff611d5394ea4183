#!/usr/bin/env bash
# Writes the dpkg symbols file of libmtls0 (debian/libmtls0.symbols) from
# the export list: every function include/mtls.h declares with MTLS_API.
# A symbol already in the file keeps the version it appeared in; a new one
# gets this version (VERSION in the Makefile).  Given the built libmtls.so,
# the symbols take the version node it exports them under (a linker
# version script), else @Base.
# Usage: scripts/gen-symbols.sh [BUILD/libmtls.so] > debian/libmtls0.symbols
#        scripts/gen-symbols.sh --check [BUILD/libmtls.so]
#            exit 1, with the difference, if the file is not what it
#            would write
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
check=0
if [[ ${1:-} == --check ]]; then
	check=1
	shift
fi
so=${1:-}
file=$repo/debian/libmtls0.symbols
version=$(sed -n 's/^VERSION *:= *//p' "$repo/Makefile")
soversion=$(sed -n 's/^SOVERSION *:= *//p' "$repo/Makefile")
[[ -n $version && -n $soversion ]] || {
	echo "$0: no VERSION/SOVERSION in the Makefile" >&2
	exit 1
}

names=$(grep -E '^MTLS_API' "$repo/include/mtls.h" |
	grep -oE 'mtls_[a-z0-9_]+ *\(' | tr -d ' (' | sort -u)
[[ -n $names ]] || {
	echo "$0: no MTLS_API declarations in include/mtls.h" >&2
	exit 1
}
node=Base
if [[ -n $so ]]; then
	# objdump -T: ... VERSION NAME; "Base" when there is no version script.
	node=$(objdump -T "$so" | awk '$NF == "mtls_ctx_new" { v = $(NF - 1); gsub(/[()]/, "", v); if (!done) print v; done = 1 }')
	[[ -n $node ]] || {
		echo "$0: $so does not export mtls_ctx_new" >&2
		exit 1
	}
fi

gen() {
	local n since
	echo "libmtls.so.$soversion libmtls$soversion #MINVER#"
	echo "* Build-Depends-Package: libmtls-dev"
	for n in $names; do
		since=$(awk -v n="$n" '$1 ~ "^" n "@" { print $2; exit }' "$file" 2>/dev/null || true)
		echo " $n@$node ${since:-$version}"
	done
}

if ((check)); then
	if ! diff -u "$file" <(gen); then
		echo "$0: $file is stale: run scripts/gen-symbols.sh ${so:-} > debian/libmtls0.symbols" >&2
		exit 1
	fi
	exit 0
fi
gen
