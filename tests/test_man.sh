#!/usr/bin/env bash
# tests/test_man.sh BUILD - the manual pages (man/) agree with the code.
#
#   1. Every MTLS_API function in include/mtls.h has a page under its own
#      name once installed (make install-man): its own file or a link to
#      the topic page that documents it, which names it in NAME and
#      declares it in SYNOPSIS with the header's prototype; and no section
#      3 page names a function the header no longer has.
#   2. make uninstall-man removes every page and link it installed, and the
#      links are relative symbolic links (as Debian's lintian wants them).
#   3. Every directive examples/mtls-proxy/config.c accepts is documented in
#      man/mtls-proxy.conf.5 as ".It Ic NAME"; the example there parses.
#   4. Every option of mtls-proxy (examples/mtls-proxy/main.c) and of
#      mtls-check (tools/mtls-check.c) appears in its page as "Fl ...".
#   5. The C examples of mtls(3) compile against the header.
#   6. mandoc -Tlint finds nothing (scripts/lint-man.sh).
#
# HOW TO DOCUMENT A NEW FUNCTION: add it to the topic page it belongs to
# (man/mtls_ctx_set_verify.3 for a verification setting, and so on; the
# list of topics is in man/mtls.3): a ".Nm mtls_new_function ," line in the
# NAME section (keep the comma on every line but the last), its prototype
# in SYNOPSIS (".Ft int" then ".Fn mtls_new_function \"mtls_ctx *ctx\"", or
# .Fo/.Fa/.Fc for long ones), then the text, RETURN VALUES and ERRORS.
# make install-man links man3/mtls_new_function.3 to the page by itself
# (scripts/install-man.sh reads the NAME sections).  A new topic is a new
# man/mtls_<first_function>.3, listed in man/mtls.3.
# HOW TO DOCUMENT A NEW DIRECTIVE: an ".It Ic new_directive Ar value" entry
# in the list of its block in man/mtls-proxy.conf.5.  The test finds the
# directives by asking the parser: every lower-case word quoted in
# config.c is tried as a directive at the top level and in a listen, host
# and upstream block, and one that is not an "unknown directive" somewhere
# is a directive.
# A NEW OPTION: mtls-proxy's are read from its getopt_long() string and
# option table, mtls-check's from the strcmp(a|name, "--option") calls.
set -uo pipefail
build=${1:?usage: tests/test_man.sh BUILD_DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
man=$repo/man
proxy=$build/mtls-proxy

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtls-man-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "  ok: $*"; }
bad() {
	echo "  FAIL: $*"
	fails=$((fails + 1))
}

# ---- 1, 2: installed names ----------------------------------------------
stage=$tmp/stage
mandir=$stage/usr/share/man
if ! make -s -C "$repo" PREFIX=/usr DESTDIR="$stage" install-man \
	>"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log"
	bad "make install-man failed"
fi
for p in man1/mtls-check.1 man3/mtls.3 man5/mtls-proxy.conf.5 \
	man8/mtls-proxy.8; do
	if [[ -f $mandir/$p ]]; then
		ok "installed $p"
	else
		bad "make install-man did not install $p"
	fi
done

# The public functions, from the header (a declaration may span lines).
funcs=$(perl -0777 -ne 'print "$1\n" while /^MTLS_API\b[^;(]*?\b(mtls_\w+)\s*\(/mg' \
	"$repo/include/mtls.h" | sort -u)
nfuncs=$(wc -l <<<"$funcs")
if ((nfuncs < 40)); then
	bad "found only $nfuncs MTLS_API functions in include/mtls.h: the extraction is broken"
fi

# The names a page lists in NAME, and the functions its SYNOPSIS declares.
page_names() { awk '/^\.Sh /{ n = ($2 == "NAME"); next } n && /^\.Nm /{ print $2 }' "$1"; }
page_synopsis() { awk '/^\.Sh /{ s = ($2 == "SYNOPSIS"); next } s && /^\.F[no] /{ print $2 }' "$1"; }

missing=() undeclared=()
for f in $funcs; do
	page=$mandir/man3/$f.3
	if [[ ! -e $page ]]; then
		missing+=("$f")
		continue
	fi
	if ! page_names "$page" | grep -qxF "$f"; then
		missing+=("$f (man3/$f.3 resolves to $(basename "$(readlink -f "$page")"), whose NAME lacks it)")
		continue
	fi
	page_synopsis "$page" | grep -qxF "$f" || undeclared+=("$f")
done
if ((${#missing[@]} == 0)); then
	ok "all $nfuncs MTLS_API functions have an installed page (man3/NAME.3)"
else
	bad "no page for ${#missing[@]} MTLS_API function(s) of include/mtls.h (see the top of tests/test_man.sh):"
	printf '        %s\n' "${missing[@]}"
fi
if ((${#undeclared[@]} == 0)); then
	ok "each page declares the functions it names in its SYNOPSIS"
else
	bad "not in the SYNOPSIS of their page: ${undeclared[*]}"
fi

# The prototypes of the pages are the header's (types, names, arguments;
# blanks aside), function pointer typedefs included.
cat >"$tmp/hdr.pl" <<'EOF'
sub norm { my $s = shift; $s =~ s/\s+/ /g; $s =~ s/\s*([(),*])\s*/$1/g; $s =~ s/^ | $//g; $s }
local $/; my $h = <>;
$h =~ s{/\*.*?\*/}{}gs;
while ($h =~ /^MTLS_API\s+([^;]*?\b(mtls_\w+)\s*\([^;]*\))\s*;/mg) { print "$2\t", norm($1), "\n" }
while ($h =~ /^typedef\s+([^;]*?\(\*(mtls_\w+)\)\s*\([^;]*\))\s*;/mg) { print "$2\t", norm("typedef $1"), "\n" }
EOF
cat >"$tmp/page.pl" <<'EOF'
my ($in, $ft, $fo, @fa) = (0, '', '');
sub words { my $s = shift; my @w; push @w, defined $1 ? $1 : $2 while $s =~ /"([^"]*)"|(\S+)/g; @w }
sub norm { my $s = shift; $s =~ s/\s+/ /g; $s =~ s/\s*([(),*])\s*/$1/g; $s =~ s/^ | $//g; $s }
while (<>) {
	chomp;
	if (/^\.Sh (\S+)/) { $in = $1 eq 'SYNOPSIS'; next }
	next unless $in;
	if (/^\.Ft (.*)/) { $ft = $1; next }
	if (/^\.Fn (.*)/) {
		my ($n, @a) = words($1);
		(my $k = $n) =~ s/^\(\*(\w+)\)$/$1/;
		print "$k\t", norm("$ft $n(" . join(', ', @a) . ')'), "\n";
		next;
	}
	if (/^\.Fo (\S+)/) { $fo = $1; @fa = (); next }
	if (/^\.Fa (.*)/ && $fo ne '') { push @fa, words($1); next }
	if (/^\.Fc/) { print "$fo\t", norm("$ft $fo(" . join(', ', @fa) . ')'), "\n"; $fo = ''; next }
}
EOF
perl "$tmp/hdr.pl" "$repo/include/mtls.h" | sort >"$tmp/protos.h"
for p in "$man"/*.3; do perl "$tmp/page.pl" "$p"; done | sort >"$tmp/protos.man"
differ=()
while IFS=$'\t' read -r name proto; do
	doc=$(awk -F'\t' -v n="$name" '$1 == n { print $2 }' "$tmp/protos.man")
	if [[ -z $doc ]]; then
		differ+=("$name: not in any SYNOPSIS")
	elif [[ $doc != "$proto" ]]; then
		differ+=("$name: header '$proto', page '$doc'")
	fi
done <"$tmp/protos.h"
if ((${#differ[@]} == 0)); then
	ok "$(wc -l <"$tmp/protos.h") prototypes (functions, callback typedefs) read in the pages as in the header"
else
	bad "prototypes that differ between include/mtls.h and the pages:"
	printf '        %s\n' "${differ[@]}"
fi

# Pages naming functions the header does not have (renamed, removed).
stale=()
for p in "$man"/*.3; do
	[[ $(basename "$p") == mtls.3 ]] && continue # the overview
	for n in $(page_names "$p"); do
		grep -qxF "$n" <<<"$funcs" || stale+=("$n ($(basename "$p"))")
	done
done
if ((${#stale[@]} == 0)); then
	ok "every function a section 3 page names is in include/mtls.h"
else
	bad "pages name functions include/mtls.h does not declare: ${stale[*]}"
fi

nlinks=0 badlinks=()
while IFS= read -r l; do
	nlinks=$((nlinks + 1))
	t=$(readlink "$l")
	[[ $t == */* || ! -f $(dirname "$l")/$t ]] && badlinks+=("$l -> $t")
done < <(find "$mandir" -type l)
if ((nlinks > 0 && ${#badlinks[@]} == 0)); then
	ok "$nlinks links, each a relative symbolic link to a page beside it"
else
	bad "links: $nlinks; broken or not relative: ${badlinks[*]:-none}"
fi

make -s -C "$repo" PREFIX=/usr DESTDIR="$stage" uninstall-man >/dev/null 2>&1
left=$(find "$stage" ! -type d | sed "s|^$stage||")
if [[ -z $left ]]; then
	ok "make uninstall-man removes every page and link"
else
	bad "left after make uninstall-man: $left"
fi

# ---- 3: directives of mtls-proxy.conf ----------------------------------
conf5=$man/mtls-proxy.conf.5
documented=$(sed -n 's/^\.It Ic \([a-z_0-9]*\).*/\1/p' "$conf5" | sort -u)
if [[ ! -x $proxy ]]; then
	bad "not built: $proxy"
else
	# Candidates: every lower-case word quoted in the parser.
	words=$(grep -o '"[a-z][a-z0-9_]*"' "$repo/examples/mtls-proxy/config.c" |
		tr -d '"' | sort -u)
	# Each context is a file: its opening lines, then one "WORD x" line
	# per candidate (parsing goes on after a problem, up to 100 of them,
	# so candidates go in chunks), then the closing braces.
	probe() { # CONTEXT-NAME OPEN CLOSE WORD... -> words that are directives
		local name=$1 open=$2 close=$3 chunk i=0 f out line w
		shift 3
		while (($# > 0)); do
			chunk=("${@:1:60}")
			shift $((${#chunk[@]}))
			f=$tmp/probe-$name-$i.conf
			i=$((i + 1))
			printf '%b' "$open" >"$f"
			local first=$(($(printf '%b' "$open" | wc -l) + 1))
			printf '%s x\n' "${chunk[@]}" >>"$f"
			printf '%b' "$close" >>"$f"
			out=$("$proxy" -t -c "$f" 2>&1)
			line=$first
			for w in "${chunk[@]}"; do
				grep -qF "$f:$line: unknown directive '$w'" <<<"$out" ||
					echo "$w"
				line=$((line + 1))
			done
		done
	}
	# shellcheck disable=SC2086
	accepted=$({
		probe top "" "" $words
		probe listen 'listen 127.0.0.1:1 {\n' '}\n' $words
		probe host 'listen 127.0.0.1:1 {\nhost a.example {\n' '}\n}\n' $words
		probe upstream 'upstream u {\n' '}\n' $words
	} | sort -u)
	n=$(wc -w <<<"$accepted")
	# The parser's directives today are 33: far fewer means the probe
	# broke (a message reworded), not that directives went away.
	if ((n < 30)); then
		bad "the probe found only $n directives: $(echo $accepted)"
	fi
	undoc=()
	for d in $accepted; do
		grep -qxF "$d" <<<"$documented" || undoc+=("$d")
	done
	if ((${#undoc[@]} == 0)); then
		ok "all $n directives config.c accepts are in mtls-proxy.conf.5"
	else
		bad "directives config.c accepts but mtls-proxy.conf.5 lacks (add '.It Ic NAME'): ${undoc[*]}"
	fi
	extra=()
	for d in $documented; do
		grep -qxF "$d" <<<"$accepted" || extra+=("$d")
	done
	if ((${#extra[@]} == 0)); then
		ok "every directive of mtls-proxy.conf.5 is accepted by config.c"
	else
		bad "mtls-proxy.conf.5 documents directives config.c does not accept: ${extra[*]}"
	fi

	# The example of the page parses: its problems are only the missing
	# credential files, never the syntax.
	awk '/^\.Sh EXAMPLES/{ e = 1 } e && /^\.Bd -literal/{ b = 1; next }
	     b && /^\.Ed/{ exit } b { print }' "$conf5" |
		sed -e 's/\\e/\\/g' -e 's/\\&//g' >"$tmp/example.conf"
	out=$(cd "$tmp" && "$proxy" -t -c example.conf 2>&1)
	if grep -q '^listen ' "$tmp/example.conf" &&
		! grep -q 'credentials not checked' <<<"$out"; then
		ok "the example of mtls-proxy.conf.5 parses"
	else
		bad "the example of mtls-proxy.conf.5 does not parse: $out"
	fi
fi

# ---- 4: options ---------------------------------------------------------
# "Fl c" for -c, "Fl Fl strict" for --strict, as the pages write them.
check_opts() { # PAGE OPTION...
	local page=$1 o want miss=()
	shift
	for o in "$@"; do
		case $o in
		--*) want="Fl Fl ${o#--}" ;;
		-*) want="Fl ${o#-}" ;;
		esac
		grep -qF "$want" "$page" || miss+=("$o")
	done
	if ((${#miss[@]} == 0)); then
		ok "$(basename "$page"): all options ($*)"
	else
		bad "$(basename "$page") lacks options: ${miss[*]}"
	fi
}
main=$repo/examples/mtls-proxy/main.c
shorts=$(sed -n 's/.*getopt_long([^"]*"\([^"]*\)".*/\1/p' "$main" | tr -d ':' | fold -w1)
longs=$(grep -o '{"[a-z][a-z-]*", *[a-z_]*_argument' "$main" | sed 's/{"\([^"]*\)".*/\1/')
popts=()
for o in $shorts; do popts+=("-$o"); done
for o in $longs; do popts+=("--$o"); done
if ((${#popts[@]} < 5)); then
	bad "found only ${#popts[@]} mtls-proxy options in main.c: the extraction is broken"
fi
check_opts "$man/mtls-proxy.8" "${popts[@]}"
copts=$(grep -o 'strcmp(\(a\|name\), "-[a-z-]*[a-z]")' "$repo/tools/mtls-check.c" |
	sed 's/.*"\(.*\)")/\1/' | sort -u)
# shellcheck disable=SC2086
set -- $copts
if (($# < 7)); then
	bad "found only $# mtls-check options in tools/mtls-check.c: the extraction is broken"
fi
check_opts "$man/mtls-check.1" "$@"

# ---- 5: the examples of mtls(3) compile ---------------------------------
awk '/^\.Bd -literal/{ b = 1; n++; next } /^\.Ed/{ b = 0; next }
     b { print > (dir "/ex" n ".c") }' dir="$tmp" "$man/mtls.3"
compiled=0
for f in "$tmp"/ex*.c; do
	grep -q '#include <mtls.h>' "$f" || continue
	sed -i -e 's/\\e/\\/g' -e 's/\\&//g' "$f"
	if ${CC:-cc} -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror \
		-I"$repo/include" -c -o "$f.o" "$f" 2>"$tmp/cc.log"; then
		compiled=$((compiled + 1))
	else
		cat "$tmp/cc.log"
		bad "an example of mtls(3) does not compile ($(head -c 60 "$f" | tr '\n' ' ')...)"
	fi
done
if ((compiled >= 2)); then
	ok "the $compiled C examples of mtls(3) compile against include/mtls.h"
else
	bad "expected the server and client examples in mtls(3), compiled $compiled"
fi

# ---- 6: mandoc -Tlint ----------------------------------------------------
if out=$("$repo/scripts/lint-man.sh" 2>&1); then
	ok "$out"
else
	echo "$out"
	bad "mandoc -Tlint (scripts/lint-man.sh)"
fi

if ((fails == 0)); then
	echo "test_man: all checks passed"
	exit 0
fi
echo "test_man: $fails check(s) failed"
exit 1
