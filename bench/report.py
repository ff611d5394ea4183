#!/usr/bin/env python3
"""Writes bench/RESULTS.md and the chart from bench/run's results.tsv and scale.txt.

Primary figure: the server's CPU per operation (median over interleaved repetitions), as a ratio to
nginx stream (lower is better); callgrind instructions per operation as the noise-free cross-check;
throughput secondary."""
import argparse, csv, datetime, os, shutil, statistics, subprocess, tempfile

ap = argparse.ArgumentParser()
for a in ("results", "scale", "out", "chart", "machine", "versions", "command", "duration", "reps",
          "nidle", "nbig", "smoke", "quick", "commit", "load"):
    ap.add_argument("--" + a, required=True)
ap.add_argument("--group", default="X25519")  # the key-exchange group offered
ap.add_argument("--date", default="")  # of the run, when re-rendering its results.tsv later
A = ap.parse_args()
BASE = "nginx-stream"
LG_BUSY, SRV_BUSY = 90.0, 90.0  # % of one core

rows, recs = [], []
with open(A.results) as f:
    for r in csv.DictReader(f, delimiter="\t"):
        if r["row"] not in rows:
            rows.append(r["row"])
        recs.append(r)


# mtls-proxy builds first (in run order), then the peers
PEERS = ["nginx-stream", "haproxy-tcp", "stunnel", "lighttpd"]
first = list(rows)
rows.sort(key=lambda r: (PEERS.index(r) + 1 if r in PEERS else 0, first.index(r)))


def fl(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return 0.0


CELLS = [("full_tls12", "full TLS 1.2"), ("resumed_tls12", "resumed TLS 1.2"),
         ("full_tls13", "full TLS 1.3"), ("resumed_tls13", "resumed TLS 1.3"),
         ("keepalive", "keep-alive request"), ("bulk", "bulk, per MiB"),
         ("resumed_tls12_3k", f"resumed TLS 1.2, {A.nbig} idle"),
         ("keepalive_3k", f"keep-alive, {A.nbig} idle")]
if A.nbig == "0":
    CELLS = CELLS[:6]
# Memory cells: mem_tls12 / mem_tls13 with A.nidle idle connections, mem_tls12_N / mem_tls13_N with N
# (bench/run BENCH_IDLE, e.g. 10,000), in the order of the counts.
MEM = [("mem_tls12", f"TLS 1.2 ({A.nidle})"), ("mem_tls13", f"TLS 1.3 ({A.nidle})")]
_extra = sorted({int(r["cell"].rsplit("_", 1)[1]) for r in recs
                 if r["cell"].startswith("mem_tls1") and r["cell"].count("_") == 2})
for _n in _extra:
    MEM += [(f"mem_tls12_{_n}", f"TLS 1.2 ({_n:,})"), (f"mem_tls13_{_n}", f"TLS 1.3 ({_n:,})")]

# (row, cell) -> list of timed repetitions; instructions; memory; n/a notes; start failures
cpu, instr, mem, na, failed = {}, {}, {}, {}, {}
for r in recs:
    k = (r["row"], r["cell"])
    if r["kind"] == "cpu":
        cpu.setdefault(k, []).append(r)
    elif r["kind"] == "instr" and fl(r["ops"]) > 0 and fl(r["note"]) > 0:
        instr[k] = fl(r["note"]) / fl(r["ops"])
    elif r["kind"] == "mem":
        mem[k] = (fl(r["note"]), int(fl(r["ops"])))
    elif r["kind"] == "na":
        na[k] = r["note"]
    elif r["kind"] == "failed":
        failed[r["row"]] = r["note"] or "did not start"


def per_op(r):  # server CPU seconds per operation (or per MiB)
    return fl(r["srv_cpu_s"]) / fl(r["ops"]) if fl(r["ops"]) > 0 else None


def busy(r):  # server core %, load-generator core % (loadgen + backend), over the counted phase
    w = fl(r["wall_s"])
    if w <= 0:
        return 0.0, 0.0
    return 100 * fl(r["srv_cpu_s"]) / w, 100 * (fl(r["lg_cpu_s"]) + fl(r["side_cpu_s"])) / w


def stats(k):  # median, min, max of server CPU per op; flags
    vals = [v for v in (per_op(r) for r in cpu.get(k, [])) if v is not None]
    if not vals:
        return None
    flags = ""
    reps = cpu[k]
    if any(busy(r)[1] > LG_BUSY and busy(r)[0] < SRV_BUSY for r in reps):
        flags += "ᴸ"
    if any(int(fl(r["err"])) > 0 for r in reps):
        flags += "!"
    return statistics.median(vals), min(vals), max(vals), len(vals), flags


def unit_of(cell):
    return "MiB" if cell == "bulk" else "op"


def fmt_us(s):
    us = s * 1e6
    if us >= 100:
        return f"{us:,.0f}"
    return f"{us:.1f}" if us >= 10 else f"{us:.2f}"


def fmt_n(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f} M"
    if v >= 1e3:
        return f"{v / 1e3:.1f} k"
    return f"{v:.0f}"


def empty(row, cell):
    if (row, cell) in na:
        return "n/a"
    return "–"


out = []
w = out.append
smoke = A.smoke == "1"
title = "# mtls benchmark results"
if smoke:
    title += " (smoke run: a check, not figures)"
elif A.quick == "1":
    title += " (quick run: one repetition of short cells)"
w(title)
w("")
date = A.date or f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}"
w(f"- Date: {date}; commit {A.commit} (plus the working tree)")
w(f"- Command: `{A.command}` (what `make bench` runs; {A.reps} interleaved repetition(s) of {A.duration} s "
  "per timed cell, after a warm-up operation per client process)")
w(f"- Machine: {A.machine}")
w(f"- Load: {A.load}. Other jobs shared this machine during the run; the CPU figures count only the "
  "server's own processes, but a shared core still costs them cache and frequency: where the two "
  "disagree, trust the callgrind instructions.")
w(f"- Versions: {A.versions}")
w("")
w("## Method")
w("")
w("- Every server pinned to core 0 with one worker (nginx `worker_processes 1`, HAProxy `nbthread 1`, "
  "stunnel's threads, lighttpd's single process, mtls-proxy's event loop); the load generator "
  "(bench/loadgen.c, OpenSSL) and the plain keep-alive backend of the stream servers (bench/backend.c) on "
  "core 1. Loopback only. Client certificates REQUIRED everywhere; the same test PKI (tests/pki.sh: ECDSA "
  "P-256 leaves, client chain leaf + intermediate, servers trust the root); one suite "
  "(ECDHE-ECDSA-AES128-GCM-SHA256 / TLS_AES_128_GCM_SHA256), key-exchange group " + A.group +
  " (the only one the load generator offers; `BENCH_GROUP`).")
w("- **Server CPU per operation** (primary): utime+stime of the server's whole process tree "
  "(`/proc/PID/stat`, workers and threads included), sampled by the load generator when every client "
  "process has finished its warm-up and again when all are done, divided by the operations completed in "
  "between. All servers run at once (idle ones cost nothing), and the repetitions interleave them: cell 1 "
  "for A B C …, cell 2 for A B C …, then the next repetition. Median of the repetitions, spread = "
  "(max − min) / median.")
w("- **Instructions per operation** (cross-check): each server alone under valgrind's callgrind "
  "(`--trace-children=yes`); per cell two warm-up operations, counters zeroed "
  "(`callgrind_control -z` on every server process), N operations by one client, dump, totals summed over "
  "the server's processes, divided by N. Exact and independent of machine load, but it counts "
  "instructions, not time: cache misses, system-call cost and the kernel's work are not in it.")
w("- Operations: *full* = TCP connect + TLS handshake without a session + one `GET /` request/response + "
  "close (the request makes the server finish TLS 1.3's handshake; stream servers also connect to their "
  "backend, which answers); *resumed* = the same re-offering the last session (TLS 1.2 ticket/ID, TLS 1.3 "
  "PSK with DHE, as OpenSSL clients offer); *keep-alive* = one request/response on one of 16 open "
  "connections; *bulk* = a 16 MiB body downloaded on one connection, counted per MiB "
  f"(relayed from the backend by the stream servers, a static file for lighttpd); *{A.nbig} idle* = "
  f"the same cells while {A.nbig} other resumed TLS 1.2 connections are held open. Memory: server RSS (all its "
  f"processes) with {A.nidle} idle established connections minus before, divided by the connections.")
w(f"- Marks: ᴸ load-generator-bound (in at least one repetition core 1 — load generator + backend — was "
  f"above {LG_BUSY:.0f} % busy while the server was below {SRV_BUSY:.0f} %: the throughput is the client's "
  "limit, the CPU per operation is still the server's); ! some operations failed; n/a: not applicable "
  "(see the note under the tables); –: not measured.")
w("- lighttpd is an HTTP server, not a stream proxy: it serves the responses itself (no backend "
  "connection, no relay). Its handshake, keep-alive request and bulk send cells are comparable with the "
  "proxies' (same TLS work on the client side of the server; a proxy does more: it also relays); its "
  "memory and idle-connection cells are n/a. Debian bookworm's lighttpd-mod-mbedtls links mbedTLS 2.28, "
  "so it compares with mtls-proxy on 2.28 (same crypto library, same build) and has no TLS 1.3.")
w("")


def ratio_table(title, value, note, cells=CELLS):
    w(title)
    w("")
    w(note)
    w("")
    w("| server | " + " | ".join(c[1] for c in cells) + " |")
    w("|---" * (len(cells) + 1) + "|")
    for row in rows:
        if row in failed:
            w(f"| {row} | {failed[row]} |" + " |" * (len(cells) - 1))
            continue
        cellsout = []
        for c, _ in cells:
            v, b = value(row, c), value(BASE, c)
            if v is None or b is None or b == 0:
                cellsout.append(empty(row, c))
            else:
                s = stats((row, c)) if value is cpu_med else None
                cellsout.append(f"{v / b:.2f}" + (s[4] if s else ""))
        w(f"| {row} | " + " | ".join(cellsout) + " |")
    w("")


def cpu_med(row, c):
    s = stats((row, c))
    return s[0] if s else None


def instr_of(row, c):
    return instr.get((row, c))


ratio_table("## Server CPU per operation, relative to nginx stream (lower is better)", cpu_med,
            f"Median server CPU per operation of the row divided by nginx stream's in the same run "
            f"(1.00 = as cheap as nginx; 2.00 = twice the CPU).")
if instr:
    ratio_table("## Instructions per operation, relative to nginx stream (callgrind; lower is better)",
                instr_of, "The same ratio counted in instructions (noise-free; no kernel time, no cache "
                "effects; the idle-connection cells are not run under callgrind).", CELLS[:6])

w("## Server CPU per operation (µs, median [min–max] of the repetitions)")
w("")
w("| server | " + " | ".join(c[1] for c in CELLS) + " |")
w("|---" * (len(CELLS) + 1) + "|")
for row in rows:
    cs = []
    for c, _ in CELLS:
        s = stats((row, c))
        if s is None:
            cs.append(empty(row, c))
        elif s[3] > 1:
            cs.append(f"{fmt_us(s[0])} [{fmt_us(s[1])}–{fmt_us(s[2])}]{s[4]}")
        else:
            cs.append(f"{fmt_us(s[0])}{s[4]}")
    w(f"| {row} | " + " | ".join(cs) + " |")
w("")
if instr:
    w("## Instructions per operation (callgrind)")
    w("")
    w("| server | " + " | ".join(c[1] for c in CELLS[:6]) + " |")
    w("|---" * 7 + "|")
    for row in rows:
        w(f"| {row} | " + " | ".join(fmt_n(instr[(row, c)]) if (row, c) in instr else empty(row, c)
                                     for c, _ in CELLS[:6]) + " |")
    w("")

w("## Memory per idle connection")
w("")
w("KiB of server RSS per idle connection (idle connections held), and its ratio to nginx stream's in the "
  "same cell (lower is better).")
w("")
w("| server | " + " | ".join(f"{m[1]} | ratio" for m in MEM) + " |")
w("|---" * (1 + 2 * len(MEM)) + "|")
for row in rows:
    cs = []
    for c, _ in MEM:
        want = c.rsplit("_", 1)[1] if c.count("_") == 2 else A.nidle
        if (row, c) in mem:
            v, n = mem[(row, c)]
            cs.append(f"{v:.1f}" + (f" ({n} held)" if str(n) != want else ""))
        else:
            cs.append(empty(row, c))
        a, b = mem.get((row, c)), mem.get((BASE, c))
        cs.append(f"{a[0] / b[0]:.2f}" if a and b and b[0] > 0 else "–")
    w(f"| {row} | " + " | ".join(cs) + " |")
w("")

# Same crypto: lighttpd against mtls-proxy on 2.28
same = [r for r in rows if r.startswith("mtls-proxy-2.")]
if "lighttpd" in rows and same:
    p = same[0]
    w(f"## Same crypto: {p} against lighttpd (mod_mbedtls, mbedTLS 2.28)")
    w("")
    w(f"Both servers on the same mbedTLS 2.28 build from Debian, one core each. Ratio = {p} / lighttpd "
      "(lower is better for mtls-proxy). mtls-proxy also relays every byte to and from its backend; "
      "lighttpd answers itself.")
    w("")
    w("| cell | CPU per op, mtls-proxy | CPU per op, lighttpd | ratio (CPU) | ratio (instructions) |")
    w("|---|---|---|---|---|")
    for c, name in CELLS[:6]:
        a, b = stats((p, c)), stats(("lighttpd", c))
        ia, ib = instr.get((p, c)), instr.get(("lighttpd", c))
        if a is None and b is None:
            continue
        ca = fmt_us(a[0]) + " µs" + a[4] if a else "–"
        cb = fmt_us(b[0]) + " µs" + b[4] if b else "–"
        rc = f"{a[0] / b[0]:.2f}" if a and b and b[0] > 0 else "–"
        ri = f"{ia / ib:.2f}" if ia and ib else "–"
        w(f"| {name} | {ca} | {cb} | {rc} | {ri} |")
    w("")

# Throughput, secondary
w("## Throughput (secondary: depends on the load generator and on the machine's other jobs)")
w("")
w("Operations per second (bulk: MB/s), median of the repetitions; in brackets the median busy share of "
  "the server's core / of core 1 (load generator + backend).")
w("")
w("| server | " + " | ".join(c[1] for c in CELLS) + " |")
w("|---" * (len(CELLS) + 1) + "|")
for row in rows:
    cs = []
    for c, _ in CELLS:
        reps = cpu.get((row, c))
        if not reps:
            cs.append(empty(row, c))
            continue
        rate = statistics.median(fl(r["mbps"] if c == "bulk" else r["rate"]) for r in reps)
        sb = statistics.median(busy(r)[0] for r in reps)
        cb = statistics.median(busy(r)[1] for r in reps)
        s = stats((row, c))
        cs.append(f"{rate:,.0f} ({sb:.0f}/{cb:.0f} %)" + (s[4] if s else ""))
    w(f"| {row} | " + " | ".join(cs) + " |")
w("")
notes = sorted({(r, c, n) for (r, c), n in na.items()})
if notes:
    w("n/a: " + "; ".join(f"{r} {c}: {n}" for r, c, n in notes) + ".")
    w("")

# Library-scale cells
scale = []
if os.path.exists(A.scale):
    for line in open(A.scale):
        for kv in line.split():
            if "=" not in kv:
                continue
            k, v = kv.split("=", 1)
            if k == "build":
                scale.append({})
            if scale:
                scale[-1][k] = v
if scale:
    w("## Library-scale cells (bench/scale.c, no network)")
    w("")
    w("| build | 10,000 client ctx sharing one CA bundle: time | RSS delta | bytes/ctx | SNI: hs/s, 1 name | "
      "hs/s, 10,000 names | ratio (wall) | ratio (server time) |")
    w("|---|---|---|---|---|---|---|---|")
    for s in scale:
        g = lambda k: s.get(k, "–")
        try:
            rss = f"{int(g('trust_rss_delta_kib')) / 1024:.1f} MiB"
        except ValueError:
            rss = "–"
        w(f"| {g('build')} ({g('mbedtls')}) | {g('trust_s')} s | {rss} | {g('trust_bytes_per_ctx')} | "
          f"{g('sni1_rate')} (server alone {g('sni1_srv_rate')}) | {g('sniN_rate')} (server alone "
          f"{g('sniN_srv_rate')}) | {g('sni_ratio')} | {g('sni_srv_ratio')} |")
    w("")
    w(f"Bundle: `{scale[0].get('bundle', '?')}`. Targets: < 1 s and < 20 MB for 10,000 contexts; SNI ratio "
      "≥ 0.97 (client and server, both libmtls, in one thread over socketpairs; noisy by a few percent).")
    tables = [l.strip() for l in open(A.scale) if l.startswith("mbedTLS ")]
    if tables:
        w("")
        w("Generator tables (bench/ecp_tables.c, one core):")
        w("")
        for l in tables:
            w(f"- {l}")
    w("")

# Every repetition
w("## Every timed repetition")
w("")
w("| server | cell | rep | ops | wall s | server CPU s | µs/op | server core % | core 1 % | rate/s | p50 ms | "
  "p99 ms | errors | resumed |")
w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for row in rows:
    for c, _ in CELLS:
        for r in cpu.get((row, c), []):
            sb, cb = busy(r)
            po = per_op(r)
            w(f"| {row} | {c} | {r['rep']} | {r['ops']} | {r['wall_s']} | {r['srv_cpu_s']} | "
              f"{fmt_us(po) if po else '–'} | {sb:.0f} | {cb:.0f} | {r['rate']} | {r['p50_ms']} | "
              f"{r['p99_ms']} | {r['err']} | {r['resumed']} |")
w("")

# Chart: server CPU per operation, log scale
chart_name = os.path.basename(A.chart)
series = [("full_tls12", "full TLS 1.2"), ("resumed_tls12", "resumed TLS 1.2"),
          ("keepalive", "keep-alive request")]
plot_rows = [r for r in rows if cpu_med(r, "full_tls12")]
if shutil.which("gnuplot") and plot_rows and not smoke:
    with tempfile.TemporaryDirectory() as d:
        dat = os.path.join(d, "data")
        with open(dat, "w") as f:
            for r in plot_rows:
                f.write('"%s" ' % r + " ".join(str((cpu_med(r, c) or 1e-7) * 1e6) for c, _ in series) + "\n")
        gp = f"""set terminal svg size 1000,520 font "sans,11" background rgb "white"
set output "{A.chart}"
set title "Server CPU per operation, one core, client certificates required (µs, log scale; lower is better)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set ylabel "µs of server CPU per operation"
set grid ytics
set key top right
set xtics rotate by -20
plot "{dat}" using 2:xtic(1) title "{series[0][1]}", '' using 3 title "{series[1][1]}", '' using 4 title "{series[2][1]}"
"""
        subprocess.run(["gnuplot"], input=gp, text=True, check=True)
    w(f"![chart]({chart_name})")
    w("")

EXPLAIN = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "explain.md")).read()
w(EXPLAIN)
with open(A.out, "w") as f:
    f.write("\n".join(out) + "\n")
