#!/usr/bin/env python3
"""Peers for tests/test_proxy_valgrind.sh: a TCP echo backend and the
clients that drive mtls-proxy through its scenarios.  Each client prints
one line saying what it saw and exits 0 only if that is what the scenario
expects.  Every client socket has a timeout: no client waits forever.

  proxy_vg.py echo PORT                      plain TCP echo until EOF
  proxy_vg.py xfer PORT NBYTES [--sni NAME] [--pp2] [--close]
        mTLS client: NBYTES random bytes come back intact (--pp2: after a
        PROXY v2 header; --close: then close_notify both ways)
  proxy_vg.py rev PORT                       mTLS client to openssl s_server
        -rev behind the proxy: a line comes back reversed
  proxy_vg.py refused PORT [--nocert]
        the proxy must close without a byte of data (during or after the
        handshake)
  proxy_vg.py garbage PORT                   non-TLS input and stalled
        clients, all at once: each must be closed by the proxy
  proxy_vg.py abort PORT                     clients that vanish at points
        of the handshake (FIN or RST); nothing to check but the proxy
  proxy_vg.py hold PORT READY GO [--until-closed]
        one connection: echo a line, create READY, wait for GO, echo
        another line (or, --until-closed, wait for the proxy to close it),
        then close
Environment: PKI (the test PKI directory), VG_T (socket timeout, s).
"""
import os
import random
import select
import socket
import ssl
import sys
import time

from peers import client_hello, ctx, echo, read_to_close, recv_exact, tls_connect

T = float(os.environ.get("VG_T", "60"))
PP2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def exchange(s, data, need):
    """Sends data while reading what comes back (neither side may wait for
    the other to finish), until need(received) is reached, the peer
    closes or T seconds pass.  Returns what was received."""
    s.setblocking(False)
    got, sent, end = bytearray(), 0, time.time() + T
    while len(got) < need(got) and time.time() < end:
        select.select([s], [s] if sent < len(data) else [], [], 0.5)
        try:
            if sent < len(data):
                sent += s.send(data[sent:sent + 16384])
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        try:
            while len(got) < need(got):
                d = s.recv(65536)
                if not d:
                    end = 0
                    break
                got += d
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
    s.settimeout(T)
    return bytes(got)


def xfer(port, n, opts):
    sni = opts[opts.index("--sni") + 1] if "--sni" in opts else "localhost"
    pp2 = "--pp2" in opts
    data = os.urandom(n)

    def need(got):  # a PROXY v2 header says its length in bytes 14-15
        if not pp2:
            return n
        return 16 + n if len(got) < 16 else 16 + int.from_bytes(got[14:16], "big") + n
    s = tls_connect(port, sni=sni, timeout=T)
    got = exchange(s, data, need)
    head = b""
    if pp2:
        if got[:12] != PP2_SIG:
            print("no PROXY v2 header: %r" % got[:16])
            sys.exit(1)
        head, got = got[:need(got) - n], got[need(got) - n:]
    ok = got == data
    how = ""
    if "--close" in opts:
        try:
            s.unwrap()  # our close_notify, then the proxy's
            how = " close_notify both ways"
        except (OSError, ssl.SSLError) as e:
            how = " close failed: %r" % e
            ok = False
    s.close()
    print("sent=%d back=%d intact=%s%s%s" % (
        n, len(got), got == data,
        " pp2_header=%d" % len(head) if head else "", how))
    sys.exit(0 if ok else 1)


def rev(port):
    s = tls_connect(port, timeout=T)
    s.sendall(b"hello proxy\n")
    got, end = b"", time.time() + T
    while b"\n" not in got and time.time() < end:
        d = s.recv(100)
        if not d:
            break
        got += d
    s.close()
    print("got %r" % got)
    sys.exit(0 if b"yxorp olleh" in got else 1)


def refused(port, opts):
    try:
        s = tls_connect(port, cert="--nocert" not in opts, timeout=T)
    except (OSError, ssl.SSLError) as e:
        print("refused during the handshake: %s" % type(e).__name__)
        return
    try:
        s.sendall(b"anyone there?\n")
    except (OSError, ssl.SSLError):
        pass
    r = read_to_close(s, T)
    print("after the handshake: %s" %
          ("not closed" if r is None else "closed, %d bytes" % len(r)))
    sys.exit(0 if r == b"" else 1)


def garbage(port):
    ch = client_hello()
    rnd = random.Random(7)
    cases = [("random", rnd.randbytes(2048)),
             ("http", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
             ("alert-first", b"\x15\x03\x03\x00\x02\x02\x28"),
             ("hello-len-lies", ch[:5] + b"\x01\xff\xff\xff" + ch[9:]),
             ("long-record", b"\x16\x03\x01\x40\x00" + rnd.randbytes(100)),
             ("half-hello", ch[:len(ch) // 2]),
             ("silent", b"")]
    socks = []
    for name, data in cases:
        s = socket.create_connection(("127.0.0.1", port), timeout=T)
        if data:
            s.sendall(data)
        socks.append((name, s))
    closed, late, end = 0, [], time.time() + 2 * T
    for name, s in socks:
        r = read_to_close(s, max(0.1, end - time.time()))
        s.close()
        if r is None:
            late.append(name)
        else:
            closed += 1
    print("garbage_cases=%d closed=%d%s" %
          (len(cases), closed, " not closed: " + ",".join(late) if late else ""))
    sys.exit(0 if closed == len(cases) else 1)


def abort(port):
    ch = client_hello()
    n = 0

    def close(s, rst):
        if rst:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         b"\x01\0\0\0\0\0\0\0")
        s.close()
    for rst in (False, True):
        for k in (1, len(ch) // 2):  # part of the ClientHello
            s = socket.create_connection(("127.0.0.1", port), timeout=T)
            s.sendall(ch[:k])
            time.sleep(0.2)
            close(s, rst)
            n += 1
        # the server's flight read, then half of the client's second one
        s = socket.create_connection(("127.0.0.1", port), timeout=T)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        o = ctx().wrap_bio(inc, out, server_hostname="localhost")
        try:
            o.do_handshake()
        except ssl.SSLWantReadError:
            pass
        s.sendall(out.read())
        flight, end = b"", time.time() + T
        while not flight and time.time() < end:
            d = s.recv(65536)
            if not d:
                break
            inc.write(d)
            try:
                o.do_handshake()
            except ssl.SSLWantReadError:
                pass
            flight = out.read()
        if not flight:
            print("no server flight")
            sys.exit(1)
        s.sendall(flight[:len(flight) // 2])
        time.sleep(0.2)
        close(s, rst)
        n += 1
    print("aborted_clients=%d" % n)


def hold(port, ready, go, opts):
    s = tls_connect(port, timeout=T)
    s.sendall(b"before\n")
    a = recv_exact(s, 7)
    open(ready, "w").close()
    if "--until-closed" in opts:
        r = read_to_close(s, 3 * T)
        print("echo before=%s; then %s" % (
            a == b"before\n",
            "still open" if r is None else "closed by the proxy, %d bytes" % len(r)))
        sys.exit(0 if a == b"before\n" and r == b"" else 1)
    end = time.time() + 3 * T
    while not os.path.exists(go) and time.time() < end:
        time.sleep(0.1)
    s.sendall(b"after\n")
    b = recv_exact(s, 6)
    s.close()
    print("echo before=%s after=%s" % (a == b"before\n", b == b"after\n"))
    sys.exit(0 if a == b"before\n" and b == b"after\n" else 1)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "echo":
        echo(int(args[0]))
    elif cmd == "xfer":
        xfer(int(args[0]), int(args[1]), args[2:])
    elif cmd == "rev":
        rev(int(args[0]))
    elif cmd == "refused":
        refused(int(args[0]), args[1:])
    elif cmd == "garbage":
        garbage(int(args[0]))
    elif cmd == "abort":
        abort(int(args[0]))
    elif cmd == "hold":
        hold(int(args[0]), args[1], args[2], args[3:])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
