#!/usr/bin/env python3
"""idle_scale.py - mtls-proxy's cost of holding idle connections.

  idle_scale.py PROXY BACKEND PKI_DIR [--idle N ...] [--ops M] [--tls 1.2|1.3]

Starts BACKEND (bench/backend) and PROXY (pinned to CPU 0, client
certificates required) on loopback.  For each N: opens N mTLS connections
that each make one request and then stay idle, reads the proxy's VmRSS,
then measures the proxy's CPU (utime+stime of its process, from
/proc/PID/stat) per operation over M keep-alive requests on one more
connection, and over M resumed handshakes (one request each).  Prints
one line per N: idle, rss_kib, rss_per_idle_kib, cpu_us_per_keepalive,
cpu_us_per_resumed.  Every loop is bounded; only the PIDs it started are
stopped.
"""
import argparse, os, socket, ssl, subprocess, sys, tempfile, time

REQ = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        st = f.read().rsplit(")", 1)[1].split()
    return int(st[11]) + int(st[12])  # utime + stime


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, limit=10.0):
    end = time.time() + limit
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def request(s):
    s.sendall(REQ)
    got = b""
    while not got.endswith(b"ok"):
        d = s.recv(4096)
        if not d:
            raise OSError("closed")
        got += d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("proxy")
    ap.add_argument("backend")
    ap.add_argument("pki")
    ap.add_argument("--idle", type=int, nargs="+", default=[0, 1000])
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--tls", default="1.2")
    a = ap.parse_args()
    pki = a.pki
    bport, pport = free_port(), free_port()
    tmp = tempfile.mkdtemp()
    conf = os.path.join(tmp, "proxy.conf")
    with open(conf, "w") as f:
        f.write(f"""log_level error
max_connections 20000
listen 127.0.0.1:{pport} {{
    cert {pki}/server-ec-chain.pem
    key {pki}/server-ec.key
    client_ca {pki}/ca.crt
    client_auth require
    upstream be
}}
upstream be {{
    target 127.0.0.1:{bport}
    tls off
    idle_timeout 300
}}
""")
    be = subprocess.Popen(["taskset", "-c", "1", a.backend, str(bport), "600"])
    px = subprocess.Popen(["taskset", "-c", "0", a.proxy, "-c", conf])
    try:
        wait_port(bport)
        wait_port(pport)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(f"{pki}/ca.crt")
        ctx.load_cert_chain(f"{pki}/client-ec-chain.pem", f"{pki}/client-ec.key")
        ctx.check_hostname = False
        v = ssl.TLSVersion.TLSv1_3 if a.tls == "1.3" else ssl.TLSVersion.TLSv1_2
        ctx.minimum_version = ctx.maximum_version = v

        def conn(session=None):
            raw = socket.create_connection(("127.0.0.1", pport), 10)
            s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
            return s

        held = []
        warm = conn()
        request(warm)
        held.append(warm)
        time.sleep(0.2)
        base = rss_kib(px.pid)
        for n in sorted(a.idle):
            while len(held) - 1 < n:
                s = conn()
                request(s)
                held.append(s)
            time.sleep(0.5)
            rss = rss_kib(px.pid)
            ka = conn()
            request(ka)
            t0 = cpu_ticks(px.pid)
            for _ in range(a.ops):
                request(ka)
            ka_us = (cpu_ticks(px.pid) - t0) * 1e6 / os.sysconf("SC_CLK_TCK") / a.ops
            sess = ka.session
            ka.close()
            n_res = min(a.ops, 1000)
            resumed = 0
            t0 = cpu_ticks(px.pid)
            for _ in range(n_res):
                s = conn(sess)
                request(s)
                resumed += s.session_reused
                if a.tls == "1.3":
                    sess = s.session
                s.close()
            res_us = (cpu_ticks(px.pid) - t0) * 1e6 / os.sysconf("SC_CLK_TCK") / n_res
            per = (rss - base) / n if n else 0.0
            print(f"idle={n} rss_kib={rss} rss_per_idle_kib={per:.1f} "
                  f"cpu_us_per_keepalive={ka_us:.1f} cpu_us_per_resumed={res_us:.1f} "
                  f"resumed={resumed}/{n_res}", flush=True)
        for s in held:
            s.close()
    finally:
        px.terminate()
        be.terminate()
        px.wait(10)
        be.wait(10)


if __name__ == "__main__":
    main()
