#!/usr/bin/env python3
"""Adversarial scenarios of security issue #11 against tests/adv_server.

    scenarios.py ADV_SERVER PKI_DIR [SCENARIO...]

Each scenario starts its own adv_server (one process, a bounded number of
connections, killed by its PID if it outlives the scenario), attacks it
with the mini TLS client of tls.py or with a real peer (openssl s_client,
Python's ssl), and checks both what the attacker saw on the wire and the
JSON line adv_server printed for the connection: what the library
*reported*.  Every check prints "ok - ..." or "not ok - ..."; the exit
status is 1 when any check failed.  Scenarios that need TLS 1.3 print
"skipped: TLS 1.3 not in this build" on an mbedTLS 2.28 build.
"""
import base64
import hashlib
import json
import os
import select
import ssl
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tls  # noqa: E402

ZERO_MASTER = b"\x00" * 48
VICTIM_URI = "spiffe://example.org/ns/test/sa/client"
DOMAIN = "example.com"

failures = 0
SERVER = PKI = None
INFO = {}


def check(name, cond, what):
    global failures
    if cond:
        print("ok - %s: %s" % (name, what))
    else:
        failures += 1
        print("not ok - %s: %s" % (name, what))
    sys.stdout.flush()
    return cond


def pki(f):
    return os.path.join(PKI, f)


# ---- the target ----------------------------------------------------------

class Server:
    """adv_server with the given flags; .report() is its next JSON line."""

    def __init__(self, *args, count=1):
        self.proc = subprocess.Popen(
            [SERVER, "--count", str(count), "--timeout", "10"] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.buf = b""
        first = self._line(10)
        if first is None:
            self.finish()
            raise RuntimeError("adv_server did not start: %s" % " ".join(args))
        self.port = first["port"]

    def _line(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def report(self):
        """The next connection's report (None if none came within 15 s)."""
        return self._line(15)

    def finish(self):
        """Waits (bounded) for the server to exit; its status (ASan: an
        error report makes it non-zero), or None if it had to be killed."""
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        err = self.proc.stderr.read().decode(errors="replace")
        if rc != 0 and err:
            sys.stdout.write("# adv_server stderr:\n# " +
                             err.replace("\n", "\n# ") + "\n")
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def listener_args(verify="require", *extra):
    """The listener: localhost's certificate, the test CAs, `verify`."""
    return ["--cert", pki("server-ec-chain.pem"),
            "--key", pki("server-ec.key"), "--ca", pki("ca-bundle.pem"),
            "--verify", verify] + list(extra)


def sni_hosts():
    """*.example.com (verify optional) and admin.example.com (its own CA
    and verify require) beside the listener."""
    return ["--host", "*.%s,%s,%s,%s,optional" % (
                DOMAIN, pki("wild-server.crt"), pki("wild-server.key"),
                pki("ca-bundle.pem")),
            "--host", "admin.%s,%s,%s,%s,require" % (
                DOMAIN, pki("admin-server.crt"), pki("admin-server.key"),
                pki("ca-bundle.pem"))]


def finish(name, srv):
    check(name, srv.finish() == 0, "adv_server served every connection and "
          "exited cleanly")


def no_identity(r):
    """The report names nobody: no verified peer, no identity."""
    return (r is not None and r.get("identity") is None and
            (r["rc"] != 0 or r["verify"] != 0) and
            (r["rc"] != 0 or not r["resumed"]))


# ---- real peers ----------------------------------------------------------

def der_tlv(b, i):
    tag, n = b[i], b[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n, i = int.from_bytes(b[i:i + k], "big"), i + k
    return tag, b[i:i + n], i + n


def session_fields(pem):
    """From an OpenSSL SSL_SESSION PEM: suite, master (TLS 1.2: the master
    secret; TLS 1.3: the resumption PSK), ticket ([10]) and age_add
    ([14]); what only the legitimate client knows, apart from the
    ticket."""
    der = base64.b64decode("".join(
        line for line in pem.splitlines() if not line.startswith("-----")))
    _, seq, _ = der_tlv(der, 0)
    out, plain, i = {"ticket": None, "age_add": 0}, [], 0
    while i < len(seq):
        tag, content, i = der_tlv(seq, i)
        if tag in (0x02, 0x04):
            plain.append(content)
        elif tag == 0xAA:
            out["ticket"] = der_tlv(content, 0)[1]
        elif tag == 0xAE:
            out["age_add"] = int.from_bytes(der_tlv(content, 0)[1], "big")
    out["suite"] = int.from_bytes(plain[2], "big")
    out["master"] = plain[4]
    return out


def victim_session(port, version, sni=None):
    """A legitimate client (openssl s_client with client-ec, the victim)
    connects over TLS `version` ("1_2"/"1_3"), says hello and keeps the
    session the server gave it (session_fields(), plus "when": the time
    it ended).  An attacker may capture the ticket, nothing else."""
    with tempfile.TemporaryDirectory() as d:
        sess = os.path.join(d, "sess.pem")
        cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
               "-tls" + version, "-cert", pki("client-ec.crt"),
               "-key", pki("client-ec.key"), "-CAfile", pki("ca.crt"),
               "-sess_out", sess, "-ign_eof", "-quiet"]
        if sni is not None:
            cmd += ["-servername", sni]
        try:
            subprocess.run(cmd, input=b"victim\n", capture_output=True,
                           timeout=15)
        except subprocess.TimeoutExpired:
            return None
        if not os.path.exists(sess):
            return None
        with open(sess) as f:
            out = session_fields(f.read())
        out["when"] = time.monotonic()
        return out if out["ticket"] else None


def victim_ticket(port, version, sni=None):
    """The ticket of victim_session(), all an eavesdropper gets."""
    s = victim_session(port, version, sni)
    return s["ticket"] if s else None


def psk_of(session):
    """The (identity, obfuscated age, placeholder binder) to offer the
    session's ticket as its rightful owner, and the PSK hash."""
    hname = tls.SUITES[session["suite"]][1]
    age = int((time.monotonic() - session["when"]) * 1000)
    return ((session["ticket"], (age + session["age_add"]) & 0xFFFFFFFF,
             b""), hname)


def ssl_client(port, cert, key, sni=None, check_name=False):
    """A Python ssl client with a certificate, sending SNI `sni` (and
    checking the server's certificate for it if check_name); True if its
    message came back.  Its own view does not matter to the checks (a
    TLS 1.3 client learns of a refusal only when it reads): adv_server's
    report does."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki("ca-bundle.pem"))
    ctx.load_cert_chain(pki(cert), pki(key))
    ctx.check_hostname = check_name
    if not check_name:
        ctx.verify_mode = ssl.CERT_NONE
    try:
        with tls.socket.create_connection(("127.0.0.1", port),
                                          timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=sni) as t:
                t.sendall(b"ping")
                return t.recv(100) == b"ping"
    except (OSError, ssl.SSLError):
        return False


# ---- scenarios -----------------------------------------------------------

def ticket13_in_tls12():
    """Finding 1 (critical, mbedTLS 3.6): a victim's TLS 1.3 session ticket
    replayed in a TLS 1.2 ClientHello (session_ticket extension, random
    session id, ECDHE-ECDSA-AES128/256-GCM).  mbedTLS 3.6.6 resumes it
    with an all-zero master secret, so an attacker without any
    certificate completes the abbreviated handshake and is reported as
    the victim.  Fixed: the session is refused (full handshake, no echo of
    our session id), the attacker cannot finish, nothing is verified.
    Replayed on the listener (no SNI), then with a ticket of the SNI host
    *.example.com, the SNI before and after the ticket."""
    name = "ticket13_in_tls12"
    a = "a." + DOMAIN
    with Server(*listener_args(), *sni_hosts(), count=5) as srv:
        for vsni, replays in [(None, [(None, False)]),
                              (a, [(a, False), (a, True)])]:
            ticket = victim_ticket(srv.port, "1_3", vsni)
            r = srv.report()
            check(name, ticket is not None and r and r["rc"] == 0 and
                  r["version"] == "TLSv1.3" and r["identity"] == VICTIM_URI,
                  "the victim (SNI %s) gets a TLS 1.3 ticket for its "
                  "verified identity" % vsni)
            for asni, first in replays:
                what = "SNI %s%s" % (asni, ", ticket first" if first else "")
                res = tls.tls12_resume(srv.port, ticket or b"", ZERO_MASTER,
                                       asni.encode() if asni else None,
                                       ticket_first=first)
                r = srv.report()
                check(name, not res["resumed"],
                      "%s: the server does not resume the TLS 1.3 ticket in "
                      "TLS 1.2 (%s)" % (what, "full handshake" if res["full"]
                                        else "alert %s" % res["alert"]))
                check(name, not res["server_finished_ok"] and
                      not res["completed"],
                      "%s: the attacker cannot complete a handshake under an "
                      "all-zero master secret" % what)
                check(name, no_identity(r) and r["has_cert"] == 0,
                      "%s: adv_server reports no verified identity: %s"
                      % (what, json.dumps(r)))
        finish(name, srv)


def ticket12_replay():
    """Finding 1, baseline (both builds): a victim's TLS 1.2 ticket replayed
    by an eavesdropper, who lacks its master secret (tried: all zeros).
    The server may resume, but the attacker cannot check its Finished nor
    produce one: the handshake fails and nothing verified is reported."""
    name = "ticket12_replay"
    with Server(*listener_args(), count=2) as srv:
        ticket = victim_ticket(srv.port, "1_2")
        r = srv.report()
        check(name, ticket is not None and r and r["rc"] == 0 and
              r["version"] == "TLSv1.2" and r["identity"] == VICTIM_URI,
              "the victim gets a TLS 1.2 ticket for its verified identity")
        res = tls.tls12_resume(srv.port, ticket or b"", ZERO_MASTER)
        r = srv.report()
        check(name, not res["server_finished_ok"] and not res["completed"],
              "the eavesdropper cannot complete the resumption (resumed=%s)"
              % res["resumed"])
        check(name, r is not None and r["rc"] != 0 and no_identity(r),
              "adv_server reports a failed handshake, nobody verified: %s"
              % json.dumps(r))
        finish(name, srv)


def resumption_bounds():
    """Controls and session scope (both builds; TLS 1.3 parts on 3.6).  The
    victim itself, knowing its secrets (taken from its OpenSSL session),
    resumes through tls.py: on the host that issued the session this
    completes and reports the victim, which shows that the attacks above
    fail for the right reason.  On another host (admin.example.com, which
    trusts only other-ca) the same session must not resume, with the SNI
    before or after the ticket (TLS 1.2 lets the ticket come first), nor
    as a TLS 1.3 PSK: nothing verified is reported there."""
    name = "resumption_bounds"
    admin = "admin." + DOMAIN
    hosts = ["--host", "*.%s,%s,%s,%s,require" % (
                 DOMAIN, pki("wild-server.crt"), pki("wild-server.key"),
                 pki("ca-bundle.pem")),
             "--host", "%s,%s,%s,%s,require" % (
                 admin, pki("admin-server.crt"), pki("admin-server.key"),
                 pki("other-ca.crt"))]
    versions = ["1_2", "1_3"] if INFO.get("tls13") else ["1_2"]
    # (victim's SNI, attacker's SNI, ticket first) per version
    cases = [(None, None, False), (None, admin, False), (None, admin, True),
             ("a." + DOMAIN, admin, False)]
    # pre_shared_key is always last in TLS 1.3: no "ticket first" there
    runs = [(ver, c) for ver in versions for c in cases
            if ver == "1_2" or not c[2]]
    with Server(*listener_args(), *hosts, count=2 * len(runs)) as srv:
        for ver, (vsni, asni, first) in runs:
            v = victim_session(srv.port, ver, vsni)
            r = srv.report()
            if not check(name, v is not None and r and r["rc"] == 0,
                         "TLS %s victim (SNI %s) gets a session"
                         % (ver.replace("_", "."), vsni)):
                continue
            what = "TLS %s session of SNI %s resumed with SNI %s%s" % (
                ver.replace("_", "."), vsni, asni,
                " (ticket first)" if first else "")
            if ver == "1_2":
                res = tls.tls12_resume(
                    srv.port, v["ticket"], v["master"],
                    asni.encode() if asni else None, ticket_first=first)
            else:
                psk, hname = psk_of(v)
                res = tls.tls13_full(
                    srv.port, asni.encode() if asni else None, psk=psk,
                    psk_key=v["master"], psk_hash=hname)
            r = srv.report()
            if asni is None:
                check(name, res["completed"] and r is not None and
                      r["rc"] == 0 and r["resumed"] == 1 and
                      r["identity"] == VICTIM_URI,
                      "control: %s: completes as the victim: %s"
                      % (what, json.dumps(r)))
            else:
                check(name, not res["completed"] and r is not None and
                      r["rc"] != 0 and no_identity(r),
                      "%s: refused, nobody verified: %s"
                      % (what, json.dumps(r)))
        finish(name, srv)


def policy_resume():
    """Session scope, policy (both builds; TLS 1.3 on 3.6): under verify
    optional with an allow list the victim's certificate is not on, the
    handshake completes unverified (MTLS_ERR_PEER_POLICY).  Its own
    resumption of that session must stay unverified, with no identity:
    a session never turns a refusal into a pass."""
    name = "policy_resume"
    versions = ["1_2", "1_3"] if INFO.get("tls13") else ["1_2"]
    with Server(*listener_args("optional", "--allow",
                               "uri=spiffe://example.org/sa/web"),
                count=2 * len(versions)) as srv:
        for ver in versions:
            v = victim_session(srv.port, ver)
            r = srv.report()
            what = "TLS %s" % ver.replace("_", ".")
            if not check(name, v is not None and r and r["rc"] == 0 and
                         r["verify"] != 0 and r["identity"] is None,
                         "%s: the victim is not on the list: unverified: %s"
                         % (what, json.dumps(r))):
                continue
            if ver == "1_2":
                res = tls.tls12_resume(srv.port, v["ticket"], v["master"])
            else:
                psk, hname = psk_of(v)
                res = tls.tls13_full(srv.port, psk=psk, psk_key=v["master"],
                                     psk_hash=hname)
            r = srv.report()
            check(name, res["completed"] and r is not None and
                  r["rc"] == 0 and r["resumed"] == 1 and r["verify"] != 0 and
                  r["identity"] is None,
                  "%s: its resumption stays unverified: %s"
                  % (what, json.dumps(r)))
        finish(name, srv)


def hrr_sni_switch():
    """Finding 3 (mbedTLS 3.6): TLS 1.3 ClientHello #1 names a.example.com
    (host *.example.com, verify optional) with an empty key_share, so the
    server sends a HelloRetryRequest; ClientHello #2 names
    admin.example.com (another host, its own CA, verify require).  Fixed:
    the second ClientHello is answered by an alert, not a ServerHello.
    Control: the same name twice gets a ServerHello.  Then the switch the
    other way round, carried through a full handshake without a client
    certificate: admin's "require" must not be escaped by naming the
    optional host in ClientHello #2 (the old code completed it, serving
    admin's certificate under the other host's verify mode).  Adding or
    dropping the name in ClientHello #2 is refused too (RFC 8446 4.1.2):
    an alert answers ClientHello #2, and no handshake completes."""
    name = "hrr_sni_switch"
    a, admin = b"a." + DOMAIN.encode(), b"admin." + DOMAIN.encode()
    new_api = INFO.get("api") == "new"
    with Server(*listener_args(), *sni_hosts(), count=8) as srv:
        first, second = tls.hrr_then(srv.port, a, admin)
        r = srv.report()
        check(name, first and first[0] == "hrr",
              "ClientHello #1 without a key share gets a HelloRetryRequest")
        check(name, second is not None and second[0] == "alert",
              "ClientHello #2 naming another host gets an alert (got %r)"
              % (second,))
        check(name, r is not None and r["rc"] != 0,
              "adv_server reports a failed handshake: %s" % json.dumps(r))
        first, second = tls.hrr_then(srv.port, a, a)
        r = srv.report()
        check(name, first and first[0] == "hrr" and second and
              second[0] == "sh",
              "control: the same name twice gets a ServerHello (got %r)"
              % (second,))
        if new_api:
            check(name, r is not None and r["host"] == "*." + DOMAIN,
                  "control: the wildcard host judged it: %s" % json.dumps(r))
        res = tls.tls13_full(srv.port, sni=admin, retry_sni=a)
        r = srv.report()
        check(name, res["hrr"] and not res["completed"] and
              r is not None and r["rc"] != 0 and r["identity"] is None,
              "admin.example.com then a.example.com, no client certificate:"
              " no handshake completes: %r %s" % (res, json.dumps(r)))
        # A name added or dropped by ClientHello #2: an alert, not a
        # ServerHello; then the same through a whole handshake attempt.
        for n1, n2 in [(None, admin), (a, None), (None, a)]:
            first, second = tls.hrr_then(srv.port, n1, n2)
            r = srv.report()
            check(name, first and first[0] == "hrr" and second is not None
                  and second[0] == "alert" and r is not None and
                  r["rc"] != 0 and r["identity"] is None,
                  "SNI %s then %s: ClientHello #2 gets an alert (got %r) %s"
                  % (n1, n2, second, json.dumps(r)))
        for n1, n2 in [(None, admin), (a, None)]:
            res = tls.tls13_full(srv.port, sni=n1, retry_sni=n2)
            r = srv.report()
            check(name, res["hrr"] and not res["completed"] and
                  r is not None and r["rc"] != 0 and r["identity"] is None,
                  "SNI %s then %s through a handshake: none completes: "
                  "%r %s" % (n1, n2, res, json.dumps(r)))
        finish(name, srv)


def bad_snis():
    label = "a" * 63
    long = ".".join([label] * 3) + "."  # 192 bytes
    pad = lambda n: long + "b" * (n - len(long) - len("." + DOMAIN)) + \
        "." + DOMAIN  # noqa: E731
    return [("254 bytes", pad(254).encode()), ("255 bytes", pad(255).encode()),
            ("trailing dot", b"a.example.com."),
            ("empty label", b"a..example.com"),
            ("NUL byte", b"admin.example.com\x00.evil"),
            ("space", b"a b.example.com"), ("newline", b"a\n.example.com")]


def send_hello(port, sni, ver):
    """A TLS 1.`ver` ClientHello naming `sni`: what the server answers
    (tls.first_reply)."""
    conn = tls.Conn(port)
    try:
        if ver == 2:
            conn.send(tls.HANDSHAKE, tls.client_hello(
                tls.TLS12_SUITES, tls.tls12_exts(sni)))
        else:
            share = tls.KeyShare(tls.X25519)
            conn.send(tls.HANDSHAKE, tls.tls13_hello(
                sni, [(tls.X25519, share.public)]))
        return tls.first_reply(conn)
    finally:
        conn.close()


def sni_malformed():
    """Finding 2 (both builds): SNI values that are not host names (254 and
    255 bytes, a trailing dot, an empty label, a NUL byte, a space, a
    newline), in a TLS 1.2 ClientHello (and a TLS 1.3 one where the build
    has it).  Fixed: refused with an alert whatever the unknown-host
    policy (default and refuse); adv_server reports a failed handshake and
    no host.  Control: valid names select their host (wildcard, exact;
    an unknown name gets the default host, or is refused under
    "refuse")."""
    name = "sni_malformed"
    cases = [(v, s, 2) for v, s in bad_snis()]
    if INFO.get("tls13"):
        cases += [(v, s, 3) for v, s in bad_snis()]
    controls = [("foo." + DOMAIN, "*." + DOMAIN), ("admin." + DOMAIN,
                                                    "admin." + DOMAIN),
                ("x.other.test", None)]
    for policy in ("default", "refuse"):
        with Server(*listener_args("optional"), *sni_hosts(),
                    "--unknown-host", policy,
                    count=len(cases) + len(controls)) as srv:
            for what, sni, ver in cases:
                what = "TLS 1.%d SNI with %s (unknown hosts: %s)" % (
                    ver, what, policy)
                reply = send_hello(srv.port, sni, ver)
                r = srv.report()
                check(name, reply[0] == "alert",
                      "%s: refused with an alert (got %r)"
                      % (what, reply[:2]))
                check(name, r is not None and r["rc"] != 0 and
                      r.get("host") is None,
                      "%s: adv_server reports a failed handshake, no host: "
                      "%s" % (what, json.dumps(r)))
            for sni, host in controls:
                echoed = ssl_client(srv.port, "client-ec.crt",
                                    "client-ec.key", sni,
                                    check_name=host is not None)
                r = srv.report()
                served = host is not None or policy == "default"
                good = (echoed == served and r is not None and
                        (r["rc"] == 0) == served)
                if INFO.get("api") == "new":
                    good = good and r["host"] == host and r["sni"] == sni
                check(name, good, "control: SNI %s -> %s (unknown hosts: "
                      "%s): %s" % (sni, host if served else "refused",
                                   policy, json.dumps(r)))
            finish(name, srv)


def host_name_ok(name):
    """The rule of mtls_ctx_set_unknown_host(): 1 to 253 bytes of
    dot-separated labels of 1 to 63 ASCII letters, digits, '-' or '_'."""
    ok = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
             b"0123456789-_")
    return (1 <= len(name) <= 253 and
            all(1 <= len(label) <= 63 and set(label) <= ok
                for label in name.split(b".")))


def random_sni(rng):
    """A name near the edges of host_name_ok(): long labels and names,
    dots, and a few bytes no host name has."""
    if rng.random() < 0.5:  # mostly valid, with edge lengths
        labels = [b"x" * rng.choice([1, 2, 62, 63, 64])
                  for _ in range(rng.randint(1, 5))]
        name = b".".join(labels)
    else:
        alphabet = b"ab-_.*Z9\x00 \n\xff%/"
        name = bytes(rng.choice(alphabet)
                     for _ in range(rng.choice([1, 3, 12, 40])))
    if rng.random() < 0.3:  # stretch the whole name to an edge length
        name = (name + b"." + b"y" * 63 * 5)[:rng.choice([252, 253, 254])]
    return name


def sni_property():
    """Finding 2, as a property (both builds): 120 SNI values near the
    edges of a host name (seeded, so every run sends the same ones) in
    TLS 1.2 ClientHellos; the server answers a ServerHello exactly when
    the name is a host name by the rule of the header (checked here by
    an independent implementation), an alert otherwise, and survives
    every one (ASan builds)."""
    name = "sni_property"
    import random
    rng = random.Random(11)
    names = [random_sni(rng) for _ in range(120)]
    wrong = []
    with Server(*listener_args("optional"), *sni_hosts(),
                count=len(names)) as srv:
        for sni in names:
            reply = send_hello(srv.port, sni, 2)
            r = srv.report()
            want = "hs" if host_name_ok(sni) else "alert"
            if reply[0] != want or r is None or want == "alert" and (
                    r["rc"] == 0 or r["host"] is not None):
                wrong.append("%r... (%d bytes): %s" % (
                    sni[:16], len(sni), reply[0]))
        check(name, not wrong, "%d names (%d host names): ServerHello for "
              "host names only, an alert for the rest%s"
              % (len(names), sum(map(host_name_ok, names)),
                 "; %d wrong: %s" % (len(wrong), ", ".join(wrong[:4]))
                 if wrong else ""))
        finish(name, srv)


def psk_attack(name, version, **kw):
    """A victim's ticket of TLS `version` offered as an attacker's TLS 1.3
    PSK, then a full handshake with an empty client Certificate; checks
    that the server (verify optional) reports nobody."""
    with Server(*listener_args("optional"), count=2) as srv:
        ticket = victim_ticket(srv.port, version)
        r = srv.report()
        check(name, ticket is not None and r and r["rc"] == 0 and
              r["identity"] == VICTIM_URI,
              "the victim gets a TLS %s ticket for its verified identity"
              % version.replace("_", "."))
        age = int.from_bytes(os.urandom(4), "big")
        res = tls.tls13_full(srv.port, psk=(ticket or b"\x00", age,
                                            os.urandom(32)), **kw)
        r = srv.report()
        check(name, not res["psk_accepted"],
              "the server does not accept the PSK")
        check(name, res["completed"] and res["cert_requested"],
              "the attacker completes a full handshake with an empty "
              "Certificate (verify optional): %r" % (res,))
        check(name, r is not None and r["rc"] == 0 and r["resumed"] == 0 and
              r["has_cert"] == 0 and r["subject"] is None and
              no_identity(r),
              "adv_server reports resumed=0, no certificate, no identity: %s"
              % json.dumps(r))
        finish(name, srv)


def psk_wrong_age():
    """Finding 6 (mbedTLS 3.6): the victim's TLS 1.3 ticket in an
    attacker's pre_shared_key with a wrong obfuscated_ticket_age and a
    bogus binder, server in verify optional.  mbedTLS decrypts the ticket
    (our callback runs) but refuses it for its age and runs a full
    handshake, which the attacker completes with an empty client
    Certificate.  The old code reported resumed=1 and the victim's
    subject; fixed: resumed=0, no certificate, no identity.  Then with
    the right age (an eavesdropper of the victim's own resumption can
    compute it) and a bogus binder: the handshake fails."""
    name = "psk_wrong_age"
    psk_attack(name, "1_3")
    with Server(*listener_args("optional"), count=2) as srv:
        v = victim_session(srv.port, "1_3")
        srv.report()
        if check(name, v is not None, "the victim gets a TLS 1.3 ticket"):
            (ident, age, _), hname = psk_of(v)
            binder = os.urandom(hashlib.new(hname).digest_size)
            res = tls.tls13_full(srv.port, psk=(ident, age, binder))
            r = srv.report()
            check(name, not res["psk_accepted"] and not res["completed"] and
                  r is not None and r["rc"] != 0 and no_identity(r),
                  "right age, bogus binder: the handshake fails (alert %s): "
                  "%s" % (res["alert"], json.dumps(r)))
        finish(name, srv)


def ticket12_as_psk():
    """Findings 1 and 6 crossed (mbedTLS 3.6): the victim's TLS 1.2 ticket
    as an attacker's TLS 1.3 PSK, its binder computed under an empty PSK
    (what a session without a TLS 1.3 resumption key might hold).  Fixed:
    the PSK is refused, the full handshake with an empty Certificate is
    reported as resumed=0, no certificate, no identity (the old code
    reported resumed=1: our callback had opened the ticket)."""
    psk_attack("ticket12_as_psk", "1_2", psk_key=b"", psk_hash="sha384")


def uri_policy():
    """Finding 4 (both builds): URI allow rules judge one identity per
    certificate.  Against uri-prefix spiffe://example.org/sa/web: a
    certificate with two URI SANs (.../sa/web and .../sa/admin) is
    refused; "..", "%2e%2e" and ".../sa/webadmin" do not pass the prefix;
    a single URI under it passes and is the identity reported.  Against
    the exact rule uri=spiffe://example.org/sa/web the two-URI certificate
    is refused too, and against cn=web one with two CNs (web, admin)."""
    name = "uri_policy"
    prefix = "spiffe://example.org/sa/web"
    cases = [("client-uri2", None), ("client-webdot", None),
             ("client-webpct", None), ("client-webadmin", None),
             ("client-web", prefix), ("client-websub", prefix + "/x")]
    with Server(*listener_args("require", "--allow", "uri-prefix=" + prefix),
                count=len(cases)) as srv:
        for cert, ident in cases:
            ssl_client(srv.port, cert + ".crt", cert + ".key")
            r = srv.report()
            if ident is None:
                check(name, r is not None and r["rc"] != 0 and
                      r["identity"] is None,
                      "prefix rule: %s refused: %s" % (cert, json.dumps(r)))
            else:
                check(name, r is not None and r["rc"] == 0 and
                      r["verify"] == 0 and r["identity"] == ident,
                      "prefix rule: %s accepted as %s: %s"
                      % (cert, ident, json.dumps(r)))
        finish(name, srv)
    for rule, runs in [("uri=" + prefix, [("client-uri2", None),
                                          ("client-web", prefix)]),
                       ("cn=web", [("client-cn2", None),
                                   ("client-web", "web")])]:
        with Server(*listener_args("require", "--allow", rule),
                    count=len(runs)) as srv:
            for cert, ident in runs:
                ssl_client(srv.port, cert + ".crt", cert + ".key")
                r = srv.report()
                # before mtls_conn_peer_identity() (ADV_OLD_API) adv_server
                # guesses an accepted identity: only the refusals count
                same = r is not None and (r["identity"] == ident or (
                    INFO.get("api") == "old" and ident is not None))
                check(name, r is not None and
                      (r["rc"] == 0) == (ident is not None) and same,
                      "rule %s: %s -> %s: %s"
                      % (rule, cert, ident, json.dumps(r)))
            finish(name, srv)


SCENARIOS = [  # (function, needs TLS 1.3)
    (ticket13_in_tls12, True), (ticket12_replay, False),
    (hrr_sni_switch, True), (sni_malformed, False), (sni_property, False),
    (psk_wrong_age, True),
    (ticket12_as_psk, True), (resumption_bounds, False),
    (policy_resume, False), (uri_policy, False)]


def main(argv):
    global SERVER, PKI, INFO
    if len(argv) < 3:
        print(__doc__)
        return 2
    SERVER, PKI = argv[1], argv[2]
    INFO.update(json.loads(subprocess.run(
        [SERVER, "--info"], capture_output=True, timeout=10).stdout))
    print("# adv_server: mbedTLS %s, TLS 1.3 %s, API %s"
          % (INFO["mbedtls"], INFO["tls13"], INFO["api"]))
    wanted = set(argv[3:])
    for fn, needs13 in SCENARIOS:
        if wanted and fn.__name__ not in wanted:
            continue
        print("# %s" % fn.__name__)
        if needs13 and not INFO["tls13"]:
            print("skip - %s: skipped: TLS 1.3 not in this build"
                  % fn.__name__)
            continue
        try:
            fn()
        except Exception as e:  # a harness error is a failure, not a pass
            check(fn.__name__, False, "scenario raised %r" % (e,))
    print("# %d check(s) failed" % failures if failures else "# all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
