#!/usr/bin/env bash
# Writes the dpkg symbols file of libmtls0 (debian/libmtls0.symbols) from
# the export list: lib/libmtls.map when the library has a linker version
# script (each function under its node, and the node itself, as
# dpkg-gensymbols lists them), else every function include/mtls.h declares
# with MTLS_API, unversioned (@Base).  A symbol already in the file keeps
# the version it appeared in; a new one gets this version (VERSION in the
# Makefile).
# Usage: scripts/gen-symbols.sh > debian/libmtls0.symbols
#        scripts/gen-symbols.sh --check
#            exit 1, with the difference, if the file is not what it
#            would write
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
check=0
if [[ ${1:-} == --check ]]; then
	check=1
	shift
fi
file=$repo/debian/libmtls0.symbols
version=$(sed -n 's/^VERSION *:= *//p' "$repo/Makefile")
soversion=$(sed -n 's/^SOVERSION *:= *//p' "$repo/Makefile")
[[ -n $version && -n $soversion ]] || {
	echo "$0: no VERSION/SOVERSION in the Makefile" >&2
	exit 1
}

map=$repo/lib/libmtls.map
if [[ -e $map ]]; then
	# "NAME@NODE" for each global in each node, and "NODE@NODE"; comments
	# (/* */, #) removed first.
	syms=$(awk '
		{
			line = $0; out = ""
			while (line != "") {
				if (inc) {
					i = index(line, "*/")
					if (i == 0) { line = ""; break }
					line = substr(line, i + 2); inc = 0
				} else {
					i = index(line, "/*")
					if (i == 0) { out = out line; break }
					out = out substr(line, 1, i - 1)
					line = substr(line, i + 2); inc = 1
				}
			}
			sub(/#.*/, "", out)
			gsub(/[{};]/, " & ", out)
			gsub(/:/, " : ", out)
			n = split(out, t, /[ \t]+/)
			for (k = 1; k <= n; k++) if (t[k] != "") tok[++nt] = t[k]
		}
		END {
			for (k = 1; k <= nt; k++) {
				if (tok[k + 1] == "{" && depth == 0) {
					node = tok[k]; print node "@" node; depth = 1; mode = ""; k++
				} else if (tok[k] == "}") {
					depth = 0
				} else if (depth && tok[k + 1] == ":") {
					mode = tok[k]; k++
				} else if (depth && mode == "global" && tok[k] != ";" && tok[k + 1] == ";") {
					print tok[k] "@" node
				}
			}
		}' "$map" | sort -u)
else
	syms=$(grep -E '^MTLS_API' "$repo/include/mtls.h" |
		grep -oE 'mtls_[a-z0-9_]+ *\(' | tr -d ' (' | sed 's/$/@Base/' | sort -u)
fi
[[ -n $syms ]] || {
	echo "$0: no exported symbols found in ${map##*/} or include/mtls.h" >&2
	exit 1
}

# The release a node belongs to (docs/versioning.md): MTLS_0 is 0.1.0,
# MTLS_A.B is A.B.0, MTLS_A is A.0.0; never later than this build's
# version (a node for the next release, before VERSION is raised, is in
# this package already).  Base: this version.
node_release() {
	local r=$version
	case $1 in
	MTLS_0) r=0.1.0 ;;
	MTLS_*.*) r=${1#MTLS_}.0 ;;
	MTLS_*) r=${1#MTLS_}.0.0 ;;
	esac
	if dpkg --compare-versions "$r" gt "$version"; then
		r=$version
	fi
	echo "$r"
}

gen() {
	local n since
	echo "libmtls.so.$soversion libmtls$soversion #MINVER#"
	echo "* Build-Depends-Package: libmtls-dev"
	for n in $syms; do
		since=$(awk -v n="$n" '$1 == n { print $2; exit }' "$file" 2>/dev/null || true)
		[[ -n $since ]] || since=$(node_release "${n#*@}")
		echo " $n $since"
	done
}

if ((check)); then
	if ! diff -u "$file" <(gen); then
		echo "$0: $file is stale: run scripts/gen-symbols.sh > debian/libmtls0.symbols" >&2
		exit 1
	fi
	exit 0
fi
gen
