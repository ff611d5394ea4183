#!/usr/bin/env bash
# tests/test_docs.sh BUILD - docs/troubleshooting.md documents every message
# the library, mtls-proxy and mtls-check print, and nothing else.
#
# tests/messages.py extracts the messages from the source mechanically (the
# format strings of every printf-like helper, fprintf(stderr), the
# mtls_strerror table) and compares them with the doc's entries.  On a
# failure its output names each missing message with its file, line and a
# line to paste into the doc, and each doc entry no source has any more.
# First the checker itself is checked on a small made-up tree, so a checker
# that finds nothing cannot pass by accident.
# shellcheck disable=SC2016 # backticks below are Markdown, not commands
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
command -v python3 >/dev/null || { echo "python3 is needed"; exit 1; }
checks=0 fails=0
# shellcheck source=tests/lib.sh
. "$here/lib.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtls-docs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---- the checker on a made-up tree -----------------------------------------
mkdir -p "$tmp/lib" "$tmp/docs"
cat >"$tmp/lib/internal.h" <<'EOF'
int mtls__fail(void *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
EOF
cat >"$tmp/lib/a.c" <<'EOF'
/* mtls__fail(e, 1, "in a comment: not a message"); */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void say(int level, const char *fmt, ...);
int f(void *e, const char *path, int n)
{
	const char *s = "mtls__fail(e, 1, \"in a string: not a message\")";
	note("%s: documented %d", path, n);
	note("%s", s);
	mtls__fail(e, 1, "%s: missing "
	           "across lines (%s)", path, "literal argument");
	mtls__fail(e, 1, n ? "first of two" : "second of two");
	return mtls__fail(e, 1, s);
}
static const struct { int code; const char *text; } texts[] = {
	{0, "zero slot"}, {MTLS_ERR_X, "keyed text"},
};
static const struct { int code; const char *name; } names[] = {
	{0, "close_notify"}, {10, "unexpected_message"},
};
EOF
cat >"$tmp/docs/troubleshooting.md" <<'EOF'
- `<file>: documented <n>` — cause. Fix: fix.
- `first of two` / `second of two` (info) — cause.
- `no longer in the source` — cause.
- `zero slot` / `keyed text` — cause.
EOF
out=$(python3 "$here/messages.py" check "$tmp" 2>&1)
rc=$?
t() { # t DESCRIPTION PHRASE: the self-test output holds PHRASE
	if grep -qF -- "$2" <<<"$out"; then ok "checker: $1"; else
		bad "checker: $1 (no '$2')"
	fi
}
check "checker: a tree with problems fails" test "$rc" -eq 1
t "names a missing message, joined and filled in, with file and line" \
	'lib/a.c:9 mtls__fail():'
t "shows it as a line to paste" \
	'- `<path>: missing across lines (literal argument)`'
t "names a doc entry no source has" \
	'docs/troubleshooting.md:3: `no longer in the source`'
t "refuses a format that is not a literal" \
	'lib/a.c:12: mtls__fail(): the format is not a string literal (s)'
t "names a printf-like function without the format attribute" \
	"lib/a.c:3: say() takes a format and '...' but is not declared"
t "counts 6 messages (comments, strings, \"%s\" and a name table are none)" \
	'6 message(s) in the sources, 6 documented entries, 4 problem(s)'
if grep -qF close_notify <<<"$out"; then
	bad "checker: takes a table keyed by numbers ({0, \"close_notify\"}) for messages"
else
	ok "checker: a table keyed by numbers holds names, not messages"
fi

# ---- the real tree ----------------------------------------------------------
out=$(python3 "$here/messages.py" check "$root" 2>&1)
rc=$?
printf '%s\n' "$out" | sed 's/^/    /'
check "docs/troubleshooting.md documents every message, and only those" \
	test "$rc" -eq 0
n=$(python3 "$here/messages.py" list "$root" | wc -l)
check "the extraction found the messages ($n, expected over 300)" \
	test "$n" -gt 300

# ---- docs/metrics.md names every metric the admin endpoint emits -----------
# (pages.c's page builder is not a message helper: messages.py leaves it out,
# so its metric families are checked here instead.)
metrics=$(grep -o 'family(b, "mtls_[a-z_]*"' "$root/examples/mtls-proxy/pages.c" |
	sed 's/.*"\(mtls_[a-z_]*\)"/\1/' | sort -u)
missing=
for m in $metrics; do
	grep -qF -- "| \`$m\` |" "$root/docs/metrics.md" || missing="$missing $m"
done
check "docs/metrics.md lists the $(wc -w <<<"$metrics") metric families pages.c emits${missing:+ (missing:$missing)}" \
	test -n "$metrics" -a -z "$missing"

echo "$checks checks, $fails failed"
[[ $fails -eq 0 ]]
