"""Shared peers for the shell-driven proxy tests (test_proxy_faults.sh,
test_proxy_valgrind.sh via proxy_vg.py): the test PKI's mTLS client, a
plain TCP echo backend, and the small socket helpers both need.

PKI (environment): the test PKI directory (tests/pki.sh).
"""
import os
import selectors
import socket
import ssl
import time

PKI = os.environ.get("PKI", "")


def ctx(cert=True):
    """A client context trusting the test root, with client-ec (or none)."""
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.load_verify_locations(PKI + "/ca.crt")
    if cert:
        c.load_cert_chain(PKI + "/client-ec-chain.pem", PKI + "/client-ec.key")
    return c


def tls_connect(port, cert=True, sni="localhost", timeout=20):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx(cert).wrap_socket(s, server_hostname=sni)
    except BaseException:
        s.close()
        raise


def recv_exact(s, n):
    """Up to n bytes; fewer if the peer closes first."""
    got = bytearray()
    while len(got) < n:
        d = s.recv(min(65536, n - len(got)))
        if not d:
            break
        got += d
    return bytes(got)


def read_to_close(s, limit):
    """Bytes received until the peer closes (EOF, reset, TLS alert); None
    if it is still open after limit seconds."""
    s.settimeout(1.0)
    got, end = bytearray(), time.time() + limit
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except (OSError, ssl.SSLError):
            return bytes(got)
        if not d:
            return bytes(got)
        got += d
    return None


def client_hello():
    """The bytes of a real ClientHello from ctx()."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = ctx().wrap_bio(inc, out, server_hostname="localhost")
    try:
        o.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def echo(port):
    """Plain TCP echo, one thread, many connections; FIN after EOF."""
    sel = selectors.DefaultSelector()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port)); ls.listen(4096); ls.setblocking(False)
    sel.register(ls, selectors.EVENT_READ, None)
    pend = {}
    while True:
        for key, ev in sel.select(1.0):
            s = key.fileobj
            if s is ls:
                for _ in range(256):
                    try:
                        c, _a = ls.accept()
                    except BlockingIOError:
                        break
                    c.setblocking(False)
                    pend[c] = [bytearray(), False]
                    sel.register(c, selectors.EVENT_READ, None)
                continue
            buf = pend[s]
            try:
                if ev & selectors.EVENT_READ and not buf[1]:
                    d = s.recv(65536)
                    if d:
                        buf[0] += d
                    else:
                        buf[1] = True
                if buf[0]:
                    n = s.send(buf[0])
                    del buf[0][:n]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                sel.unregister(s); s.close(); del pend[s]; continue
            if buf[1] and not buf[0]:
                sel.unregister(s); s.close(); del pend[s]; continue
            want = (0 if buf[1] else selectors.EVENT_READ) | \
                   (selectors.EVENT_WRITE if buf[0] else 0)
            sel.modify(s, want or selectors.EVENT_READ, None)
