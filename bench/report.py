#!/usr/bin/env python3
"""Writes bench/RESULTS.md and the chart from bench/run's results.tsv and scale.txt."""
import argparse, csv, datetime, os, shutil, subprocess, tempfile

ap = argparse.ArgumentParser()
for a in ("results", "scale", "out", "chart", "machine", "versions", "command",
          "duration", "smoke", "commit"):
    ap.add_argument("--" + a, required=True)
ap.add_argument("--wrapper", default="")  # bench/wrapper-cost output, optional
A = ap.parse_args()

rows, cells = [], {}
with open(A.results) as f:
    for r in csv.DictReader(f, delimiter="\t"):
        if r["row"] not in rows:
            rows.append(r["row"])
        cells[(r["row"], r["cell"])] = r

scale = []  # list of dicts, one per build
for line in open(A.scale):
    for kv in line.split():
        if "=" not in kv:
            continue
        k, v = kv.split("=", 1)
        if k == "build":
            scale.append({})
        if scale:
            scale[-1][k] = v


def num(row, cell):
    r = cells.get((row, cell))
    try:
        return float(r["value"]) if r and r["unit"] not in ("failed",) else None
    except (TypeError, ValueError):
        return None


def fmt(v, unit=""):
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}"


def mark(row, cell):
    r = cells.get((row, cell))
    if not r or r["unit"] in ("failed", "skipped"):
        return ""
    m = ""
    try:
        if r["srv_busy"] and float(r["srv_busy"]) < 90:
            m += "†"
        if r["cli_busy"] and float(r["cli_busy"]) > 90:
            m += "‡"
        if r["err"] and int(r["err"] or 0) > 0:
            m += "!"
    except ValueError:
        pass
    return m


COLS = [("full_tls12", "full TLS 1.2 hs/s"), ("resumed_tls12", "resumed TLS 1.2 hs/s"),
        ("full_tls13", "full TLS 1.3 hs/s"), ("resumed_tls13", "resumed TLS 1.3 hs/s"),
        ("full_tls12_x25519", "full TLS 1.2 X25519 hs/s"), ("keepalive", "keep-alive req/s"),
        ("full_tls12_rsa", "full TLS 1.2 RSA-2048 hs/s"), ("resumed_tls12_rsa", "resumed TLS 1.2 RSA-2048 hs/s"),
        ("bulk", "bulk MB/s"), ("mem_per_conn", "KiB per idle conn"),
        ("mem_per_conn_10k", "KiB per idle conn (10,000)")]

out = []
w = out.append
smoke = A.smoke == "1"
w("# mtls benchmark results" + (" (smoke run: not figures, only a check)" if smoke else ""))
w("")
w(f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; commit {A.commit} (plus the working tree)")
w(f"- Command: `{A.command}` (from `make bench`; {A.duration} s per cell)")
w(f"- Machine: {A.machine}")
w(f"- Versions: {A.versions}")
w("- Set-up: loopback only; every server pinned to core 0 with one worker (nginx `worker_processes 1`, "
  "HAProxy `nbthread 1`, stunnel's threads all on core 0); load generator (bench/loadgen.c, OpenSSL) and the "
  "plain backend of stream servers (bench/backend.c) on core 1. Client certificates REQUIRED everywhere; "
  "the same test PKI (tests/pki.sh: ECDSA P-256 leaves, chain leaf → intermediate → root, client sends "
  "leaf + intermediate, servers trust the root); the client offers one suite "
  "(ECDHE-ECDSA-AES128-GCM-SHA256 / TLS_AES_128_GCM_SHA256) and group P-256 unless the cell says X25519.")
w("- A handshake = TCP connect + TLS handshake + one `GET /` request/response + close (so the server has "
  "finished the handshake, including TLS 1.3's client Finished; stream servers also open their backend "
  "connection). Full: no session offered. Resumed: the last session/ticket re-offered. Keep-alive: 16 "
  "connections in a request/response loop. Bulk: one connection downloading 16 MiB bodies. Memory: server "
  "RSS (VmRSS, all its processes) after 1,000 idle established connections minus before, divided by 1,000.")
w("")
w("Marks: † server process below 90 % of its core (not saturated: the figure is bounded elsewhere); "
  "‡ client side above 90 % of core 1 (load generator's own CPU + the backend's: the client may be the "
  "bound); ! some operations failed. CPU is per process (/proc/PID/stat utime+stime, server including "
  "its children), so other work on the VM does not count as busy; it can still take the core away, and "
  "this VM is shared with other jobs: repeat a run before trusting a difference under ~10 %.")
w("")
w("## Results")
w("")
w("| server | " + " | ".join(c[1] for c in COLS) + " |")
w("|---" * (len(COLS) + 1) + "|")
for row in rows:
    if cells.get((row, "skipped")):
        w(f"| {row} | skipped: {cells[(row, 'skipped')]['unit']} |" + " |" * (len(COLS) - 1))
        continue
    if cells.get((row, "start")):
        w(f"| {row} | did not start |" + " |" * (len(COLS) - 1))
        continue
    w(f"| {row} | " + " | ".join(fmt(num(row, c)) + mark(row, c) for c, _ in COLS) + " |")
w("")


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


w("## Ratios")
w("")
w("| ratio | cell | value | target |")
w("|---|---|---|---|")
for row in rows:
    if row.startswith("libmtls-"):
        raw = "raw-mbedtls-" + row.split("-", 1)[1]
        for c, t in (("full_tls12", "≥ 0.97"), ("resumed_tls12", "≥ 0.97"), ("full_tls13", "≥ 0.97"),
                     ("resumed_tls13", "≥ 0.97"), ("keepalive", "≥ 0.97"), ("bulk", "≥ 0.97"),
                     ("full_tls12_rsa", "≥ 0.97"), ("resumed_tls12_rsa", "≥ 0.97"),
                     ("mem_per_conn", "(lower is better)")):
            r = ratio(num(row, c), num(raw, c))
            if r is not None:
                w(f"| {row} / {raw} | {c} | {r:.2f} | {t} |")
for row in rows:
    if row.startswith("mtls-proxy-") and ("nginx-stream", "full_tls12") in cells:
        for c, t in (("resumed_tls12", "≥ 1.5"), ("resumed_tls13", "≥ 1.5"), ("full_tls12", "–"),
                     ("keepalive", "≥ 1.0"), ("bulk", "–"), ("full_tls12_rsa", "–"),
                     ("resumed_tls12_rsa", "≥ 1.5"), ("mem_per_conn", "≤ 0.8"),
                     ("mem_per_conn_10k", "≤ 0.8")):
            r = ratio(num(row, c), num("nginx-stream", c))
            if r is not None:
                w(f"| {row} / nginx-stream | {c} | {r:.2f} | {t} |")
w("")

if A.wrapper and os.path.exists(A.wrapper):
    w("## The library's own cost, in instructions (bench/wrapper-cost)")
    w("")
    w("Wall-clock rates on a shared 2-vCPU VM move by tens of percent between runs; instruction counts do "
      "not. `bench/wrapper-cost` runs the raw mbedTLS server and the same server on libmtls under "
      "valgrind's callgrind and counts the server's instructions per TLS 1.2 handshake (start-up "
      "subtracted). Ratio = raw / libmtls (target ≥ 0.97):")
    w("")
    w("```")
    w(open(A.wrapper).read().rstrip())
    w("```")
    w("")

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
      f"{g('sni1_rate')} (server alone {g('sni1_srv_rate')}) | {g('sniN_rate')} (server alone {g('sniN_srv_rate')}) | "
      f"{g('sni_ratio')} | {g('sni_srv_ratio')} |")
if scale:
    w("")
    w(f"Bundle: `{scale[0].get('bundle', '?')}` (parsed once: {scale[0].get('trust_parse_s', '?')} s). "
      "Targets: < 1 s and < 20 MB for 10,000 contexts; SNI ratio ≥ 0.97. The SNI cell runs client and server "
      "(both libmtls) in one thread over socketpairs, full handshakes (resumption off), rounds alternating "
      "the two listeners; 'server time' counts only the server's mtls_handshake() calls. Short rounds on a "
      "shared VM make this ratio noisy by a few percent: compare the two columns, and repeat before "
      "reading a difference below 5 % as real.")
tables = [l.strip() for l in open(A.scale) if l.startswith("mbedTLS ")]
if tables:
    w("")
    w("Generator tables (bench/ecp_tables.c, one core): a P-256 k*G with the group's precomputed table kept, "
      "and with a group loaded per call as mbedTLS's TLS and PK layers do for each ECDH key generation, "
      "signature and verification (five per full mTLS handshake):")
    w("")
    for l in tables:
        w(f"- {l}")
w("")

# Detail table
w("## Every cell")
w("")
w("| server | cell | value | unit | server core busy % | client core busy % | p50 ms | p99 ms | ok | errors | resumed |")
w("|---|---|---|---|---|---|---|---|---|---|---|")
for row in rows:
    for c, _ in COLS:
        r = cells.get((row, c))
        if r:
            w(f"| {row} | {c} | {fmt(num(row, c))} | {r['unit']} | {r['srv_busy']} | {r['cli_busy']} | "
              f"{r['p50_ms']} | {r['p99_ms']} | {r['ok']} | {r['err']} | {r['resumed']} |")
w("")

# Chart
chart_name = os.path.basename(A.chart)
if shutil.which("gnuplot"):
    series = [("full_tls12", "full TLS 1.2 hs/s"), ("resumed_tls12", "resumed TLS 1.2 hs/s"),
              ("keepalive", "keep-alive req/s")]
    plot_rows = [r for r in rows if num(r, "full_tls12")]
    with tempfile.TemporaryDirectory() as d:
        dat = os.path.join(d, "data")
        with open(dat, "w") as f:
            for r in plot_rows:
                f.write('"%s" ' % r + " ".join(str(num(r, c) or 1) for c, _ in series) + "\n")
        gp = f"""set terminal svg size 1000,520 font "sans,11" background rgb "white"
set output "{A.chart}"
set title "mtls benchmark: one server core, client certificates required (log scale)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set yrange [1:*]
set ylabel "per second"
set grid ytics
set key top left
set xtics rotate by -25
plot "{dat}" using 2:xtic(1) title "{series[0][1]}", '' using 3 title "{series[1][1]}", '' using 4 title "{series[2][1]}"
"""
        subprocess.run(["gnuplot"], input=gp, text=True, check=True)
    w(f"![chart]({chart_name})")
    w("")

EXPLAIN = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "explain.md")).read()
w(EXPLAIN)
with open(A.out, "w") as f:
    f.write("\n".join(out) + "\n")
