#!/usr/bin/env bash
# Installs (or removes) the manual pages in man/ under MANDIR.
# Usage: scripts/install-man.sh install|uninstall|list MANDIR
#
# A page goes to MANDIR/manN/ after its file name's suffix (mtls.3 to man3,
# mtls-proxy.conf.5 to man5).  A section 3 page documents several functions
# (one topic per page, as libtls does): every name its NAME section lists
# (".Nm mtls_load_server_pair ,") other than its own file name becomes a
# relative symbolic link to it, so "man mtls_load_server_pair" finds
# mtls_load_client_pair.3.  "list" prints "NAME.SECTION FILE" for every
# name installed, page or link (tests/test_man.sh and scripts/lint-man.sh).
set -euo pipefail
mode=${1:-}
mandir=${2:-}
if [[ -z $mandir || ! $mode =~ ^(install|uninstall|list)$ ]]; then
	echo "usage: $0 install|uninstall|list MANDIR" >&2
	exit 2
fi
src=$(cd "$(dirname "$0")/../man" && pwd)

# The names in a page's NAME section, one a line.
names() {
	awk '/^\.Sh /{ in_name = ($2 == "NAME"); next }
	     in_name && /^\.Nm / { print $2 }' "$1"
}

pages=()
for p in "$src"/*.[1-8]; do
	pages+=("$p")
done
((${#pages[@]} > 0)) || { echo "$0: no pages in $src" >&2; exit 1; }

# Every name is given once: a link must never replace a page or another
# page's link.
declare -A owner=()
for p in "${pages[@]}"; do
	f=$(basename "$p")
	if [[ -n ${owner[$f]:-} ]]; then
		echo "$0: $f is both a page and a name in ${owner[$f]}" >&2
		exit 1
	fi
	owner[$f]=$f
done
links=()
for p in "${pages[@]}"; do
	f=$(basename "$p")
	[[ $f == *.3 ]] || continue
	while read -r n; do
		[[ $n == "${f%.3}" ]] && continue
		if [[ -n ${owner[$n.3]:-} ]]; then
			echo "$0: $n is named by both ${owner[$n.3]} and $f" >&2
			exit 1
		fi
		owner[$n.3]=$f
		links+=("$f $n.3")
	done < <(names "$p")
done

case $mode in
list)
	for p in "${pages[@]}"; do
		f=$(basename "$p")
		echo "$f $f"
	done
	for l in "${links[@]}"; do
		echo "${l#* } ${l% *}"
	done
	;;
install)
	for p in "${pages[@]}"; do
		f=$(basename "$p")
		install -d "$mandir/man${f##*.}"
		install -m 0644 "$p" "$mandir/man${f##*.}/$f"
	done
	for l in "${links[@]}"; do
		ln -sfn "${l% *}" "$mandir/man3/${l#* }"
	done
	echo "installed ${#pages[@]} manual pages and ${#links[@]} links under $mandir"
	;;
uninstall)
	for p in "${pages[@]}"; do
		f=$(basename "$p")
		rm -f "$mandir/man${f##*.}/$f"
	done
	for l in "${links[@]}"; do
		rm -f "$mandir/man3/${l#* }"
	done
	;;
esac
