#!/usr/bin/env python3
"""idle_scale.py - server CPU per operation with idle connections held.

  idle_scale.py --loadgen LG --backend BE --pki DIR [--proxy DIR ...] [--nginx]
                [--idle 0 1000 3000 10000] [--reps 5] [--ka-ops 3000]
                [--res-ops 500] [--callgrind [--cache-sim]] [--cg-ka-ops 300]
                [--cg-res-ops 50] [--no-cpu]

For every server (each --proxy DIR holding an mtls-proxy build, and nginx
stream with --nginx) and every N of --idle, one instance is started, pinned
to CPU 0 (client certificates required, TLS 1.2, a plain bench/backend of
its own on CPU 1), and N connections are opened to it and held idle (bench/
loadgen idle-resume: one full handshake, the rest resume it, one request
each).  All instances stay up together, so the repetitions interleave: for
each repetition, for each server, for each N: KA-OPS keep-alive requests on
one connection, then RES-OPS resumed TLS 1.2 handshakes (one request each).
The figure is the instance's CPU time per operation (nanoseconds on a CPU
of its processes, /proc/PID/task/*/schedstat, sampled by the load generator
after its warm-up and after the last operation: user and kernel time).

--callgrind: then, for each mtls-proxy build, one instance under valgrind
--tool=callgrind --instr-atstart=no; for each N (ascending, connections
added): instrumentation on and counters zeroed after the warm-up (loadgen's
--hook), CG-KA-OPS requests / CG-RES-OPS resumptions, dump, instrumentation
off; user-space instructions per operation (independent of the load) and,
with --cache-sim, simulated D1 and last-level data-cache misses per
operation (what the event path touches; the kernel is not simulated).

This machine's PMU is not available to perf (a VM), so no cycle or cache
miss counts: CPU nanoseconds and instructions are what is measured.  N is
capped so that an instance's descriptors (two per connection) fit under
RLIMIT_NOFILE's hard limit (raised to it first).  Every loop and wait is
bounded; only the processes started here are stopped, by PID.  Loopback.
Prints one line per cell and, at the end, medians per server and N.
"""
import argparse, os, resource, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

LOG = sys.stderr


def log(*a):
    print("idle_scale:", *a, file=LOG, flush=True)


class Runner:
    def __init__(self, a):
        self.a = a
        self.procs = []
        self.tmp = tempfile.mkdtemp(prefix="idle_scale.")
        self.port = 20000 + os.getpid() % 1500 * 8  # below the ephemeral range

    def spawn(self, argv, out=None, cpu=None):
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu)] + argv
        f = open(out or os.devnull, "w")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
        f.close()
        self.procs.append(p)
        return p

    def stop(self, p, grace=10.0):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def cleanup(self):
        for p in reversed(self.procs):
            self.stop(p)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def next_port(self):
        self.port += 1
        return self.port

    def lg(self, port, *args):
        a = self.a
        return ["taskset", "-c", "1", a.loadgen, "--ca", f"{a.pki}/ca.crt",
                "--cert", f"{a.pki}/client-ec-chain.pem",
                "--key", f"{a.pki}/client-ec.key", "-p", str(port), "--tls1.2"] + list(args)


def wait_port(port, proc, limit=120.0):
    end = time.time() + limit
    while time.time() < end:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def proxy_conf(pki, port, bport, maxc):
    return f"""log_level error
max_connections {maxc}
listen 127.0.0.1:{port} {{
    cert {pki}/server-ec-chain.pem
    key {pki}/server-ec.key
    client_ca {pki}/ca.crt
    client_auth require
    upstream be
}}
upstream be {{
    target 127.0.0.1:{bport}
    tls off
    idle_timeout 3600
}}
"""


def nginx_conf(pki, port, bport, maxc, tmp, tag, nofile):
    return f"""load_module /usr/lib/nginx/modules/ngx_stream_module.so;
user {os.environ.get("USER", "root")};
worker_processes 1;
daemon off;
pid {tmp}/nginx-{tag}.pid;
error_log {tmp}/nginx-{tag}.err warn;
worker_rlimit_nofile {nofile};
events {{ worker_connections {maxc}; }}
stream {{
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {pki}/server-ec-chain.pem; ssl_certificate_key {pki}/server-ec.key;
        ssl_client_certificate {pki}/ca.crt; ssl_verify_client on; ssl_verify_depth 2;
        ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets on;
        ssl_session_cache shared:S{tag}:10m;
        proxy_timeout 3600s;
        proxy_pass 127.0.0.1:{bport};
    }}
}}
"""


class Instance:
    """One server with N idle connections held."""

    def __init__(self, r, name, n, prefix=(), most=None):
        self.r, self.name, self.n = r, name, n
        a = r.a
        self.bport, self.port = r.next_port(), r.next_port()
        tag = f"{name.replace('/', '_')}-{n}-{self.port}"
        self.backend = r.spawn([a.backend, str(self.bport), "7200"], cpu=1)
        maxc = 2 * (n if most is None else most) + 200
        conf = os.path.join(r.tmp, tag + ".conf")
        if name == "nginx":
            with open(conf, "w") as f:
                f.write(nginx_conf(a.pki, self.port, self.bport, maxc, r.tmp, tag, r.nofile))
            argv = ["/usr/sbin/nginx", "-p", r.tmp, "-e", f"{r.tmp}/nginx-{tag}.err", "-c", conf]
        else:
            with open(conf, "w") as f:
                f.write(proxy_conf(a.pki, self.port, self.bport, maxc))
            argv = [os.path.join(name, "mtls-proxy"), "-c", conf]
        self.server = r.spawn(list(prefix) + argv, out=os.path.join(r.tmp, tag + ".log"), cpu=0)
        self.holders = []
        self.held = 0
        if not wait_port(self.bport, self.backend) or not wait_port(self.port, self.server, 600):
            raise SystemExit(f"{name}: server or backend did not start ({tag})")

    def hold(self, n):
        """Opens connections until n are held (2,500 per load generator)."""
        while self.held < n:
            each = min(2500, n - self.held)
            out = os.path.join(self.r.tmp, f"hold.{self.port}.{len(self.holders)}")
            p = self.r.spawn(self.r.lg(self.port, "-m", "idle-resume", "-c", str(each),
                                       "-d", "7200"), out=out)
            self.holders.append(p)
            got = None
            for _ in range(6000):  # up to 10 minutes (under valgrind)
                with open(out) as f:
                    for line in f:
                        if line.startswith("ready"):
                            got = int(line.split()[1])
                if got is not None or p.poll() is not None:
                    break
                time.sleep(0.1)
            if not got:
                raise SystemExit(f"{self.name}: no idle connection held ({out})")
            if got < each:
                log(f"{self.name}: {got} of {each} connections held")
            self.held += got
        time.sleep(1.0)

    def run(self, mode, ops, warm, hook=None):
        """One cell: loadgen's key=value fields."""
        args = ["-m", mode, "-c", "1", "-n", str(ops), "-w", str(warm), "-d", "3600",
                "--server", str(self.server.pid)]
        if hook:
            args += ["--hook", hook]
        p = subprocess.run(self.r.lg(self.port, *args), capture_output=True, text=True,
                           timeout=3600)
        kv = dict(x.split("=", 1) for x in p.stdout.split() if "=" in x)
        if p.returncode != 0 or int(kv.get("err", "1")) != 0:
            log(f"{self.name} N={self.n} {mode}: loadgen failed: {p.stdout.strip()} "
                f"{p.stderr.strip()[:300]}")
        return kv


def callgrind(r, build, levels):
    """Instructions per operation at each N on one instance under callgrind."""
    a = r.a
    cgdir = os.path.join(r.tmp, "cg")
    os.makedirs(cgdir, exist_ok=True)
    vg = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
          f"--callgrind-out-file={cgdir}/cg.%p"]
    if a.cache_sim:
        vg.append("--cache-sim=yes")
    inst = Instance(r, build, 0, prefix=vg, most=max(levels))
    pid = inst.server.pid
    rows = []

    def counted(mode, ops, warm):
        before = set(os.listdir(cgdir))
        hook = (f"callgrind_control -z {pid} >/dev/null && "
                f"callgrind_control -i on {pid} >/dev/null")
        kv = inst.run(mode, ops, warm, hook)
        subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, timeout=300)
        subprocess.run(["callgrind_control", "-i", "off", str(pid)], capture_output=True,
                       timeout=300)
        new = sorted(set(os.listdir(cgdir)) - before)
        ev, tot = [], []
        for fn in new:
            with open(os.path.join(cgdir, fn)) as f:
                for line in f:
                    if line.startswith("events:"):
                        ev = line.split()[1:]
                    elif line.startswith("totals:"):
                        tot = [int(x) for x in line.split()[1:]]
        ok = int(kv.get("ok", "0"))
        if not ok or len(new) != 1 or not tot:
            return {}
        t = dict(zip(ev, tot))
        per = {"Ir": t.get("Ir", 0) / ok}
        if "D1mr" in t:  # --cache-sim: simulated first-level and last-level data misses
            per["D1m"] = (t["D1mr"] + t["D1mw"]) / ok
            per["DLm"] = (t["DLmr"] + t["DLmw"]) / ok
        return per

    for n in levels:
        inst.hold(n)
        for mode, ops, warm in (("keepalive", a.cg_ka_ops, 5), ("resume", a.cg_res_ops, 2)):
            per = counted(mode, ops, warm)
            print(f"instr build={build} idle={inst.held} mode={mode} "
                  + " ".join(f"{k}_per_op={v:.0f}" for k, v in per.items()), flush=True)
            rows.append((inst.held, mode, per))
    for p in inst.holders:
        r.stop(p)
    r.stop(inst.server, 120)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--backend", required=True)
    ap.add_argument("--pki", required=True)
    ap.add_argument("--proxy", action="append", default=[], help="a build dir with mtls-proxy")
    ap.add_argument("--nginx", action="store_true")
    ap.add_argument("--idle", type=int, nargs="+", default=[0, 1000, 3000, 10000])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--ka-ops", type=int, default=3000)
    ap.add_argument("--res-ops", type=int, default=500)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--cg-ka-ops", type=int, default=300)
    ap.add_argument("--cg-res-ops", type=int, default=50)
    ap.add_argument("--cache-sim", action="store_true",
                    help="with --callgrind: also simulated data-cache misses per operation")
    ap.add_argument("--no-cpu", action="store_true", help="callgrind only")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    nofile = hard if hard != resource.RLIM_INFINITY else 65536
    cap = (nofile - 200) // 2
    levels = []
    for n in a.idle:
        if n > cap:
            log(f"{n} idle connections need {2 * n} descriptors in the server; "
                f"RLIMIT_NOFILE's hard limit is {nofile}: {cap} instead")
            n = cap
        levels.append(n)
    r = Runner(a)
    r.nofile = nofile
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    servers = list(a.proxy) + (["nginx"] if a.nginx else [])
    results = {}
    try:
        if not a.no_cpu:
            insts = []
            for s in servers:
                for n in levels:
                    i = Instance(r, s, n)
                    i.hold(n)
                    log(f"{s}: {i.held} idle connections held (port {i.port})")
                    insts.append(i)
            for rep in range(1, a.reps + 1):
                for i in insts:
                    for mode, ops, warm in (("keepalive", a.ka_ops, 5), ("resume", a.res_ops, 2)):
                        kv = i.run(mode, ops, warm)
                        ok = int(kv.get("ok", "0"))
                        ns = int(kv.get("srv_ns", "0"))
                        us = ns / ok / 1000 if ok else float("nan")
                        results.setdefault((i.name, i.held, mode), []).append(us)
                        print(f"cpu server={i.name} idle={i.held} rep={rep} mode={mode} "
                              f"ops={ok} resumed={kv.get('resumed', '?')} "
                              f"us_per_op={us:.1f}", flush=True)
            for i in insts:
                for p in i.holders:
                    r.stop(p)
                r.stop(i.server)
                r.stop(i.backend)
            print("# median CPU us per operation (min-max) over "
                  f"{a.reps} interleaved repetitions")
            for s in servers:
                for mode in ("keepalive", "resume"):
                    base = None
                    for n in sorted({k[1] for k in results if k[0] == s}):
                        v = results[(s, n, mode)]
                        m = statistics.median(v)
                        base = m if base is None else base
                        print(f"median server={s} mode={mode} idle={n} us_per_op={m:.1f} "
                              f"min={min(v):.1f} max={max(v):.1f} vs_idle0={m / base:.2f}",
                              flush=True)
        if a.callgrind:
            for s in a.proxy:
                callgrind(r, s, levels)
    finally:
        r.cleanup()


if __name__ == "__main__":
    main()
