#!/usr/bin/env python3
"""List every message the library, mtls-proxy and mtls-check can print, and
check docs/troubleshooting.md against them.

  tests/messages.py list  [SRC_ROOT]   one message per line: FILE:LINE HELPER MSG
  tests/messages.py check [SRC_ROOT]   exit 1 naming each message the doc
                                       lacks and each doc entry no source has

Where messages come from (found mechanically, not listed by hand):
  - every function declared with __attribute__((format(printf, N, M))) in
    the scanned sources is a message helper (mtls__fail, mtls__log, pxy_log,
    the proxy's config fail(), mtls-check's add(), ...); argument N of each
    call is the message's format;
  - fprintf(stderr, FMT, ...) and fputs(LITERAL, stderr);
  - tables of texts keyed by MTLS_ constants ({MTLS_ERR_IO, "I/O error"}:
    what mtls_strerror() returns, which messages quote), with their
    {0, "success"} slot when the entry after it has an MTLS_ key (a table
    keyed by numbers, such as the alert names, holds names, not messages).
A variadic function taking a format without that attribute is a problem
(its messages would be invisible here).  A format must be a string
literal (adjacent literals are joined).  A call
whose format is not one fails the check: such a message cannot be kept in
step with the doc.  A format that is only conversions ("%s") passes text
made elsewhere and is not itself a message.  A "%s" whose argument is a
string literal is filled in; a format that is a ternary of two literals
gives both messages.

Matching: every remaining printf conversion (%s, %d, %lu, ...) becomes a
placeholder, and so does every <...> in the doc (and in the source), so the
doc writes `<file>: certificate expired on <date>` for
"%s: certificate expired on %s".  Doc entries are the code spans that open
a list item: "- `MESSAGE`" (several may open one item, joined by " / ",
over several lines).
"""
import glob
import os
import re
import sys

SOURCES = ["lib/*.c", "lib/*.h", "examples/mtls-proxy/*.c",
           "examples/mtls-proxy/*.h", "tools/*.c"]
DOC = "docs/troubleshooting.md"
# printf-like functions that build a page, not a message: the admin
# endpoint's /metrics and /status output (docs/metrics.md describes it, and
# test_docs.sh checks that every metric name is there).
PAGE_BUILDERS = {"examples/mtls-proxy/pages.c": {"sb_add"}}

CONV = re.compile(r"%(?:%|[-+ #0']*(?:\*|\d+)?(?:\.(?:\*|\d+))?"
                  r"(?:hh|h|ll|l|j|z|t|L)?[diouxXeEfFgGaAcsp])")
ANGLE = re.compile(r"<[^<>`]*>")
HOLE = "<>"
TABLE = re.compile(r'\{\s*(MTLS_\w+|0)\s*,\s*("(?:[^"\\]|\\.)*")\s*\}')
TABLE_NEXT_MTLS = re.compile(r'\s*,\s*\{\s*MTLS_\w+\s*,')


def strip_comments(text):
    """(text with comments blanked, the same with string and character
    literals' contents blanked too), offsets and newlines kept."""
    out = list(text)
    spans = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            spans.append((i + 1, min(j, n)))
            i = j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if out[k] != "\n":
                    out[k] = " "
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
        else:
            i += 1
    code = out[:]
    for a, b in spans:
        for k in range(a, b):
            if code[k] != "\n":
                code[k] = " "
    return "".join(out), "".join(code)


def split_args(text, start):
    """Arguments of the call whose '(' is at start: [(offset, text)]."""
    depth, i, n = 0, start, len(text)
    args, cur = [], start + 1
    while i < n:
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append((cur, text[cur:i]))
                return args
        elif c == "," and depth == 1:
            args.append((cur, text[cur:i]))
            cur = i + 1
        i += 1
    return args


LIT = re.compile(r'\s*"((?:[^"\\]|\\.)*)"\s*', re.S)


def literal(expr):
    """The value of a concatenation of string literals, or None."""
    pos, parts = 0, []
    expr = expr.strip()
    if not expr.startswith('"'):
        return None
    while pos < len(expr):
        m = LIT.match(expr, pos)
        if not m:
            return None
        parts.append(m.group(1))
        pos = m.end()
    raw = "".join(parts)
    return re.sub(r"\\(x[0-9a-fA-F]{1,2}|.)", unescape, raw)


def unescape(m):
    e = m.group(1)
    if e[0] == "x":
        return chr(int(e[1:], 16))
    return {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(e, e)


def choices(expr):
    """The literal values an argument can take: a literal, or a ternary of
    two literals; None when it is anything else."""
    v = literal(expr)
    if v is not None:
        return [v]
    lits = r'((?:"(?:[^"\\]|\\.)*"\s*)+)'
    m = re.fullmatch(r'\s*\(?[^?"]+\?\s*' + lits + r':\s*' + lits +
                     r'\)?\s*', expr, re.S)
    if m:
        return [literal(m.group(1)), literal(m.group(2))]
    return None


def expand(fmt, rest):
    """Variants of fmt with literal %s arguments filled in; every other
    conversion becomes <ARGUMENT EXPRESSION> (a hint for the doc)."""
    variants = [""]
    pos, ai = 0, 0
    for m in CONV.finditer(fmt):
        text = fmt[pos:m.start()]
        variants = [v + text for v in variants]
        pos = m.end()
        conv = m.group(0)
        if conv == "%%":
            variants = [v + "%" for v in variants]
            continue
        for _ in range(conv.count("*")):
            ai += 1
        arg = rest[ai].strip() if ai < len(rest) else "?"
        ai += 1
        val = literal(arg) if conv.endswith("s") else None
        if val is not None:
            variants = [v + val for v in variants]
        else:
            arg = " ".join(arg.split())
            variants = [v + "<" + arg.replace("<", "").replace(">", "") + ">"
                        for v in variants]
    return [v + fmt[pos:] for v in variants]


def normal(msg):
    """The form compared: placeholders as <> (adjacent ones as one), blanks
    squeezed, no leading or trailing blanks."""
    msg = ANGLE.sub(HOLE, CONV.sub(HOLE, msg))
    msg = re.sub(r"(?:<>\s*)+<>", HOLE, msg)  # "%s%s" is one hole
    msg = " ".join(msg.split())
    return msg


def helpers(files):
    """{file or None: {name: format argument index (1-based)}} for every
    printf-like function declared in the sources: one declared in a header
    is called from anywhere, one declared in a .c file only there."""
    found = {None: {}}
    decl = re.compile(r"\b(\w+)\s*\([^()]*\)\s*__attribute__\s*\(\(\s*"
                      r"format\s*\(\s*(?:__)?printf(?:__)?\s*,\s*(\d+)")
    for path, (text, code) in files.items():
        for m in decl.finditer(code):
            scope = None if path.endswith(".h") else path
            found.setdefault(scope, {})[m.group(1)] = int(m.group(2))
    return found


def messages(root):
    """[(file, line, helper, shown message)] and a list of problems."""
    files = {}
    for pat in SOURCES:
        for path in sorted(glob.glob(os.path.join(root, pat))):
            with open(path, encoding="utf-8") as f:
                files[os.path.relpath(path, root)] = strip_comments(f.read())
    helps = helpers(files)
    found, problems = [], []
    # A variadic function taking a format but not declared printf-like
    # would print messages this check cannot see.
    known = set(helps[None])
    for scoped in helps.values():
        known |= set(scoped)
    variadic = re.compile(r"\b(\w+)\s*\(([^()]*\bchar\s*\*\s*\w*\s*,"
                          r"\s*\.\.\.)\s*\)")
    for path, (text, code) in files.items():
        for m in variadic.finditer(code):
            if m.group(1) not in known:
                problems.append(
                    "%s:%d: %s() takes a format and '...' but is not "
                    "declared __attribute__((format(printf, N, M))): its "
                    "messages cannot be checked"
                    % (path, text.count("\n", 0, m.start()) + 1,
                       m.group(1)))
    for path, (text, code) in files.items():
        mine = dict(helps[None])
        mine.update(helps.get(path, {}))
        for name in PAGE_BUILDERS.get(path.replace(os.sep, "/"), ()):
            mine.pop(name, None)
        names = "|".join(sorted(map(re.escape, list(mine) + ["fprintf",
                                                            "fputs"])))
        call = re.compile(r"(?<![\w.>])(" + names + r")\s*\(")
        for m in call.finditer(code):
            name = m.group(1)
            args = split_args(text, m.end() - 1)
            line = text.count("\n", 0, m.start()) + 1
            if name == "fprintf":
                if not args or args[0][1].strip() != "stderr":
                    continue
                idx = 2
            elif name == "fputs":
                if len(args) != 2 or args[1][1].strip() != "stderr":
                    continue
                idx = 1
            else:
                idx = mine[name]
            if any(a[1].strip() == "..." for a in args):
                continue  # the declaration or definition itself
            if len(args) < idx:
                problems.append("%s:%d: %s(): cannot read its arguments"
                                % (path, line, name))
                continue
            fmts = choices(args[idx - 1][1])
            if fmts is None:
                problems.append(
                    "%s:%d: %s(): the format is not a string literal (%s); "
                    "write the message as a literal so it can be checked"
                    % (path, line, name, " ".join(args[idx - 1][1].split())))
                continue
            for fmt in fmts:
                if not CONV.sub("", fmt).strip():
                    continue  # "%s": text made elsewhere
                for v in expand(fmt, [a[1] for a in args[idx:]]):
                    found.append((path, line, name, v))
        # Tables of texts keyed by an MTLS_ constant (mtls_strerror's).
        for m in TABLE.finditer(text):
            if code[m.start()] != "{":
                continue
            if (m.group(1) == "0"
                    and not TABLE_NEXT_MTLS.match(text, m.end())):
                # {0, "text"} is the success slot of a table keyed by
                # MTLS_ constants (mtls_strerror's); in a table keyed by
                # numbers it is a protocol name (alert 0, close_notify),
                # which messages quote but which is not itself one.
                continue
            line = text.count("\n", 0, m.start()) + 1
            found.append((path, line, "table " + m.group(1),
                          literal(m.group(2))))
    return found, problems


def doc_entries(path):
    """[(line, message)]: the code spans that open a list item ("- `A`"),
    several joined by "/" ("- `A` / `B` (info) / `C` -- cause": a level in
    parentheses may follow each); an item runs on over its indented
    continuation lines."""
    items, cur = [], None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = re.match(r"[-*] (.*)", line)
            if m:
                cur = [n, m.group(1)]
                items.append(cur)
            elif cur is not None and line.startswith(" ") and line.strip():
                cur[1] += " " + line.strip()
            else:
                cur = None
    out = []
    span = re.compile(r"\s*`([^`]+)`")
    for n, text in items:
        pos = 0
        while True:
            s = span.match(text, pos)
            if not s:
                break
            out.append((n, s.group(1)))
            j = re.match(r"\s*(?:\([\w ,-]+\)\s*)?/\s*(?=`)", text[s.end():])
            if not j:
                break
            pos = s.end() + j.end()
    return out


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "check"
    root = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..")
    found, problems = messages(root)
    if mode == "list":
        for path, line, name, msg in found:
            print("%s:%d %s %s" % (path, line, name, " ".join(msg.split())))
        for p in problems:
            print("PROBLEM " + p)
        return 0
    docpath = os.path.join(root, DOC)
    if not os.path.exists(docpath):
        print("%s is missing" % DOC)
        return 1
    entries = doc_entries(docpath)
    have = {normal(m) for _, m in entries}
    want = {}
    for path, line, name, msg in found:
        want.setdefault(normal(msg), (path, line, name, msg))
    bad = 0
    for p in problems:
        print(p)
        bad += 1
    missing = [v for k, v in want.items() if k not in have]
    if missing:
        print("%d message(s) missing from %s; add each as a list item "
              "(name the placeholders, say cause and fix):" % (len(missing),
                                                                DOC))
        for path, line, name, msg in sorted(missing):
            shown = " ".join(msg.split())
            print("  %s:%d %s():\n    - `%s` -- CAUSE. Fix: ..."
                  % (path, line, name, shown))
        bad += len(missing)
    stale = [(n, m) for n, m in entries if normal(m) not in want]
    if stale:
        print("%d entr%s of %s no message in the sources (reworded or "
              "removed? update or delete them):"
              % (len(stale), "y matches" if len(stale) == 1 else "ies match",
                 DOC))
        for n, m in stale:
            print("  %s:%d: `%s`" % (DOC, n, m))
        bad += len(stale)
    print("%d message(s) in the sources, %d documented entries, %d problem(s)"
          % (len(want), len(entries), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
