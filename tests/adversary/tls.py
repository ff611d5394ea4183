"""A mini TLS 1.2 / 1.3 client for the adversarial tests (tests/adversary/).

It speaks just enough TLS to attack a server on loopback: build any
ClientHello (extensions chosen byte for byte), run a TLS 1.2 abbreviated
handshake with a master secret of our choosing, and run a TLS 1.3 full
handshake with an empty client Certificate.  It never verifies the
server's certificate or signature: it is an attacker, not a client.

Written from RFC 5246 (records, PRF, GCM nonces) and RFC 8446 (key
schedule, record protection); cryptography provides the primitives only.
Every socket read is bounded by the connection's timeout.
"""
import hashlib
import hmac
import os
import socket
import struct

from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives import serialization

# Record content types
CCS, ALERT, HANDSHAKE, APPDATA = 20, 21, 22, 23
# Handshake message types
CLIENT_HELLO, SERVER_HELLO, NEW_SESSION_TICKET = 1, 2, 4
ENCRYPTED_EXTENSIONS, CERTIFICATE, SERVER_KEY_EXCHANGE = 8, 11, 12
CERTIFICATE_REQUEST, SERVER_HELLO_DONE, CERTIFICATE_VERIFY = 13, 14, 15
FINISHED = 20
# Extensions
EXT_SNI, EXT_GROUPS, EXT_POINT_FORMATS, EXT_SIG_ALGS = 0, 10, 11, 13
EXT_SESSION_TICKET, EXT_PSK, EXT_VERSIONS, EXT_COOKIE = 35, 41, 43, 44
EXT_PSK_MODES, EXT_KEY_SHARE, EXT_RENEGOTIATION = 45, 51, 0xFF01
# Groups
SECP256R1, X25519 = 23, 29
# Cipher suites: id -> (key length, hash name)
SUITES = {
    0xC02B: (16, "sha256"),  # ECDHE-ECDSA-AES128-GCM-SHA256
    0xC02C: (32, "sha384"),  # ECDHE-ECDSA-AES256-GCM-SHA384
    0x1301: (16, "sha256"),  # TLS_AES_128_GCM_SHA256
    0x1302: (32, "sha384"),  # TLS_AES_256_GCM_SHA384
}
TLS12_SUITES = [0xC02B, 0xC02C]
TLS13_SUITES = [0x1301, 0x1302]
SIG_ALGS = [0x0403, 0x0503, 0x0804, 0x0805, 0x0401, 0x0501]
HRR_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()


class Closed(Exception):
    """The server closed the connection (or it timed out)."""


class Alert(Exception):
    """The server sent an alert: .level, .desc."""

    def __init__(self, level, desc):
        super().__init__("alert %d/%d" % (level, desc))
        self.level, self.desc = level, desc


class BadMac(Exception):
    """A record did not decrypt under the keys we derived."""


# ---- encoding ------------------------------------------------------------

def u8(n):
    return struct.pack("!B", n)


def u16(n):
    return struct.pack("!H", n)


def u24(n):
    return struct.pack("!I", n)[1:]


def vec8(b):
    return u8(len(b)) + b


def vec16(b):
    return u16(len(b)) + b


def vec24(b):
    return u24(len(b)) + b


def ext(etype, data):
    return u16(etype) + vec16(data)


def hs_msg(mtype, body):
    return u8(mtype) + vec24(body)


def parse_exts(data):
    """{type: data} of an extensions block (without its length)."""
    out, i = {}, 0
    while i + 4 <= len(data):
        t, n = struct.unpack("!HH", data[i:i + 4])
        out[t] = data[i + 4:i + 4 + n]
        i += 4 + n
    return out


# ---- ClientHello ---------------------------------------------------------

def ext_sni(name):
    return ext(EXT_SNI, vec16(u8(0) + vec16(name)))


def ext_groups(groups):
    return ext(EXT_GROUPS, vec16(b"".join(u16(g) for g in groups)))


def ext_sig_algs(algs=SIG_ALGS):
    return ext(EXT_SIG_ALGS, vec16(b"".join(u16(a) for a in algs)))


def ext_versions(versions):
    return ext(EXT_VERSIONS, vec8(b"".join(u16(v) for v in versions)))


def ext_key_share(shares):
    """shares: [(group, public bytes)], possibly empty."""
    return ext(EXT_KEY_SHARE,
               vec16(b"".join(u16(g) + vec16(k) for g, k in shares)))


def ext_psk(identity, age, binder):
    """pre_shared_key with one identity (must be the last extension)."""
    ids = vec16(vec16(identity) + struct.pack("!I", age))
    return ext(EXT_PSK, ids + vec16(vec8(binder)))


def client_hello(suites, exts, session_id=b"", random=None):
    body = (u16(0x0303) + (random or os.urandom(32)) + vec8(session_id) +
            vec16(b"".join(u16(s) for s in suites)) + vec8(b"\x00") +
            vec16(b"".join(exts)))
    return hs_msg(CLIENT_HELLO, body)


def tls12_exts(sni=None, ticket=None, ticket_first=False):
    """The usual TLS 1.2 ECDHE-ECDSA offer; ticket=b"" asks for one;
    ticket_first puts the ticket before the server name."""
    exts = [ext_sni(sni)] if sni is not None else []
    exts += [ext_groups([SECP256R1, X25519]),
             ext(EXT_POINT_FORMATS, vec8(b"\x00")), ext_sig_algs(),
             ext(EXT_RENEGOTIATION, vec8(b""))]
    if ticket is not None:
        t = ext(EXT_SESSION_TICKET, ticket)
        exts = [t] + exts if ticket_first else exts + [t]
    return exts


def parse_server_hello(body):
    """{'version', 'random', 'session_id', 'suite', 'exts', 'hrr'}."""
    sid_len = body[34]
    i = 35 + sid_len
    suite = struct.unpack("!H", body[i:i + 2])[0]
    i += 3  # suite, compression
    exts = parse_exts(body[i + 2:]) if len(body) > i + 2 else {}
    return {"version": struct.unpack("!H", body[:2])[0],
            "random": body[2:34], "session_id": body[35:35 + sid_len],
            "suite": suite, "exts": exts, "hrr": body[2:34] == HRR_RANDOM}


# ---- key exchange --------------------------------------------------------

class KeyShare:
    """An ephemeral X25519 or P-256 key for a TLS 1.3 key_share."""

    def __init__(self, group):
        self.group = group
        if group == X25519:
            self.priv = x25519.X25519PrivateKey.generate()
            self.public = self.priv.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        else:
            self.priv = ec.generate_private_key(ec.SECP256R1())
            self.public = self.priv.public_key().public_bytes(
                serialization.Encoding.X962,
                serialization.PublicFormat.UncompressedPoint)

    def shared(self, peer):
        if self.group == X25519:
            return self.priv.exchange(
                x25519.X25519PublicKey.from_public_bytes(peer))
        pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(),
                                                           peer)
        return self.priv.exchange(ec.ECDH(), pub)


# ---- TLS 1.2 PRF (RFC 5246 section 5) ------------------------------------

def p_hash(secret, seed, length, hname):
    out, a = b"", seed
    while len(out) < length:
        a = hmac.new(secret, a, hname).digest()
        out += hmac.new(secret, a + seed, hname).digest()
    return out[:length]


def prf12(secret, label, seed, length, hname):
    return p_hash(secret, label + seed, length, hname)


# ---- TLS 1.3 key schedule (RFC 8446 section 7) ---------------------------

def hkdf_extract(salt, ikm, hname):
    return hmac.new(salt, ikm, hname).digest()


def hkdf_expand(prk, info, length, hname):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + u8(i), hname).digest()
        out += t
        i += 1
    return out[:length]


def expand_label(secret, label, context, length, hname):
    info = u16(length) + vec8(b"tls13 " + label) + vec8(context)
    return hkdf_expand(secret, info, length, hname)


def derive_secret(secret, label, transcript, hname):
    th = hashlib.new(hname, transcript).digest()
    return expand_label(secret, label, th, len(th), hname)


# ---- record protection ---------------------------------------------------

class Gcm12:
    """TLS 1.2 AES-GCM: 4-byte salt + 8-byte explicit nonce (RFC 5288)."""

    def __init__(self, key, salt):
        self.aead, self.salt = AESGCM(key), salt

    def seal(self, ctype, data, seq):
        explicit = struct.pack("!Q", seq)
        aad = explicit + u8(ctype) + u16(0x0303) + u16(len(data))
        return ctype, explicit + self.aead.encrypt(self.salt + explicit,
                                                   data, aad)

    def open(self, ctype, frag, seq):
        aad = (struct.pack("!Q", seq) + u8(ctype) + u16(0x0303) +
               u16(len(frag) - 24))
        try:
            return ctype, self.aead.decrypt(self.salt + frag[:8], frag[8:],
                                            aad)
        except Exception as e:  # InvalidTag
            raise BadMac() from e


class Aead13:
    """TLS 1.3 record protection with one traffic secret."""

    def __init__(self, secret, suite):
        klen, hname = SUITES[suite]
        self.aead = AESGCM(expand_label(secret, b"key", b"", klen, hname))
        self.iv = expand_label(secret, b"iv", b"", 12, hname)

    def nonce(self, seq):
        return bytes(a ^ b for a, b in
                     zip(self.iv, b"\x00" * 4 + struct.pack("!Q", seq)))

    def seal(self, ctype, data, seq):
        inner = data + u8(ctype)
        aad = u8(APPDATA) + u16(0x0303) + u16(len(inner) + 16)
        return APPDATA, self.aead.encrypt(self.nonce(seq), inner, aad)

    def open(self, ctype, frag, seq):
        aad = u8(ctype) + u16(0x0303) + u16(len(frag))
        try:
            inner = self.aead.decrypt(self.nonce(seq), frag, aad).rstrip(
                b"\x00")
        except Exception as e:  # InvalidTag
            raise BadMac() from e
        return inner[-1], inner[:-1]


# ---- connection ----------------------------------------------------------

class Conn:
    """A TCP connection speaking TLS records; every read is bounded."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.rbuf = b""
        self.hbuf = b""
        self.rstate = self.wstate = None
        self.rseq = self.wseq = 0
        self.tls13 = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def set_read(self, state):
        self.rstate, self.rseq = state, 0

    def set_write(self, state):
        self.wstate, self.wseq = state, 0

    def send(self, ctype, data):
        if self.wstate is not None:
            ctype, data = self.wstate.seal(ctype, data, self.wseq)
            self.wseq += 1
        try:
            self.sock.sendall(u8(ctype) + u16(0x0303) + vec16(data))
        except OSError as e:
            raise Closed(str(e)) from e

    def _recv_exact(self, n):
        while len(self.rbuf) < n:
            try:
                chunk = self.sock.recv(65536)
            except OSError as e:  # timeout, reset
                raise Closed(str(e)) from e
            if not chunk:
                raise Closed("eof")
            self.rbuf += chunk
        out, self.rbuf = self.rbuf[:n], self.rbuf[n:]
        return out

    def read_record(self):
        """(type, plaintext); decrypts once keys are set."""
        hdr = self._recv_exact(5)
        ctype, n = hdr[0], struct.unpack("!H", hdr[3:5])[0]
        frag = self._recv_exact(n)
        # TLS 1.3 sends its compatibility CCS in clear under keys.
        if self.rstate is not None and not (self.tls13 and ctype == CCS):
            ctype, frag = self.rstate.open(ctype, frag, self.rseq)
            self.rseq += 1
        return ctype, frag

    def next(self):
        """The next handshake message as ('hs', type, body, raw), or
        ('ccs',), ('app', data); raises Alert or Closed."""
        while True:
            if len(self.hbuf) >= 4:
                n = struct.unpack("!I", b"\x00" + self.hbuf[1:4])[0]
                if len(self.hbuf) >= 4 + n:
                    raw, self.hbuf = self.hbuf[:4 + n], self.hbuf[4 + n:]
                    return ("hs", raw[0], raw[4:], raw)
            ctype, data = self.read_record()
            if ctype == HANDSHAKE:
                self.hbuf += data
            elif ctype == ALERT:
                raise Alert(data[0], data[1] if len(data) > 1 else 0)
            elif ctype == CCS:
                if not self.tls13:
                    return ("ccs",)
            elif ctype == APPDATA:
                return ("app", data)

    def expect_hs(self):
        m = self.next()
        if m[0] != "hs":
            raise Closed("expected a handshake message, got %r" % (m[0],))
        return m


def first_reply(conn):
    """What the server answers a ClientHello with: ('hs', ...), an alert
    ('alert', desc) or ('closed', why)."""
    try:
        return conn.next()
    except Alert as a:
        return ("alert", a.desc)
    except Closed as c:
        return ("closed", str(c))


# ---- TLS 1.2 abbreviated handshake ---------------------------------------

def tls12_resume(port, ticket, master, sni=None, suites=None,
                 data=b"adversary says hello", ticket_first=False):
    """Offers `ticket` with a fresh session id and, if the server resumes,
    completes the abbreviated handshake as if the session's master secret
    were `master`.  Returns a dict: resumed (the server echoed our session
    id and skipped to ChangeCipherSpec), full (it started a full handshake
    instead), alert, server_finished_ok, completed (our data came back)."""
    res = {"resumed": False, "full": False, "alert": None,
           "server_finished_ok": False, "completed": False, "suite": None}
    conn = Conn(port)
    sid = os.urandom(32)
    crandom = os.urandom(32)
    ch = client_hello(suites or TLS12_SUITES,
                      tls12_exts(sni, ticket, ticket_first), sid, crandom)
    try:
        conn.send(HANDSHAKE, ch)
        transcript = ch
        m = conn.expect_hs()
        if m[1] != SERVER_HELLO:
            raise Closed("no ServerHello")
        sh = parse_server_hello(m[2])
        res["suite"] = sh["suite"]
        transcript += m[3]
        m = conn.next()
        if m[0] == "hs" and m[1] == NEW_SESSION_TICKET:
            transcript += m[3]
            m = conn.next()
        if m[0] != "ccs" or sh["session_id"] != sid:
            res["full"] = True  # Certificate etc.: not a resumption
            return res
        res["resumed"] = True
        klen, hname = SUITES.get(sh["suite"], (16, "sha256"))
        kb = prf12(master, b"key expansion", sh["random"] + crandom,
                   2 * klen + 8, hname)
        cw, sw = kb[:klen], kb[klen:2 * klen]
        civ, siv = kb[2 * klen:2 * klen + 4], kb[2 * klen + 4:]
        conn.set_read(Gcm12(sw, siv))
        try:
            m = conn.expect_hs()
            want = prf12(master, b"server finished",
                         hashlib.new(hname, transcript).digest(), 12, hname)
            res["server_finished_ok"] = m[1] == FINISHED and m[2] == want
            transcript += m[3]
        except BadMac:
            pass  # we do not know the master secret; finish anyway
        verify = prf12(master, b"client finished",
                       hashlib.new(hname, transcript).digest(), 12, hname)
        conn.send(CCS, b"\x01")
        conn.set_write(Gcm12(cw, civ))
        conn.send(HANDSHAKE, hs_msg(FINISHED, verify))
        conn.send(APPDATA, data)
        m = conn.next()
        res["completed"] = m[0] == "app" and m[1] == data
    except Alert as a:
        res["alert"] = a.desc
    except (Closed, BadMac):
        pass
    finally:
        conn.close()
    return res


# ---- TLS 1.3 -------------------------------------------------------------

def bind_psk(ch, key, hname):
    """The ClientHello `ch` (ending in a pre_shared_key extension with one
    binder of the hash's length) with that binder computed from the PSK
    `key` (RFC 8446 4.2.11.2: HMAC over the hello truncated before the
    binders list, under the resumption binder key)."""
    hlen = hashlib.new(hname).digest_size
    early = hkdf_extract(b"\x00" * hlen, key, hname)
    bk = derive_secret(early, b"res binder", b"", hname)
    fk = expand_label(bk, b"finished", b"", hlen, hname)
    partial = ch[:-(2 + 1 + hlen)]
    binder = hmac.new(fk, hashlib.new(hname, partial).digest(),
                      hname).digest()
    return partial + vec16(vec8(binder))


def tls13_hello(sni, shares, groups=(X25519, SECP256R1), psk=None,
                session_id=None, random=None, cookie=None):
    """A TLS 1.3 ClientHello; psk = (identity, age, binder)."""
    exts = [ext_sni(sni)] if sni is not None else []
    exts += [ext_versions([0x0304]), ext_groups(list(groups)),
             ext_sig_algs(), ext_key_share(shares),
             ext(EXT_PSK_MODES, vec8(b"\x01"))]
    if cookie is not None:
        exts.append(ext(EXT_COOKIE, cookie))
    if psk is not None:
        exts.append(ext_psk(*psk))
    return client_hello(TLS13_SUITES, exts,
                        os.urandom(32) if session_id is None else session_id,
                        random)


def hrr_then(port, sni1, sni2):
    """ClientHello #1 (SNI sni1, no key share) -> HelloRetryRequest;
    ClientHello #2 (SNI sni2, the requested share).  Returns (first,
    second): each ('hrr'|'sh', suite) or ('alert', desc) / ('closed', why)
    for what the server answered."""
    conn = Conn(port)
    sid, rnd = os.urandom(32), os.urandom(32)
    conn.tls13 = True
    try:
        conn.send(HANDSHAKE, tls13_hello(sni1, [], session_id=sid,
                                         random=rnd))
        m = first_reply(conn)
        if m[0] != "hs" or m[1] != SERVER_HELLO:
            return (m[:2], None)
        sh = parse_server_hello(m[2])
        if not sh["hrr"]:
            return (("sh", sh["suite"]), None)
        group = struct.unpack("!H", sh["exts"].get(EXT_KEY_SHARE,
                                                   u16(X25519)))[0]
        share = KeyShare(group)
        cookie = sh["exts"].get(EXT_COOKIE)
        conn.send(HANDSHAKE, tls13_hello(
            sni2, [(group, share.public)], session_id=sid, random=rnd,
            cookie=cookie[2:] if cookie else None))
        m = first_reply(conn)
        if m[0] == "hs" and m[1] == SERVER_HELLO:
            second = ("hrr" if parse_server_hello(m[2])["hrr"] else "sh",
                      parse_server_hello(m[2])["suite"])
        else:
            second = m[:2]
        return (("hrr", sh["suite"]), second)
    finally:
        conn.close()


RETRY_OFF = object()


def server_cert_subject(body):
    """The subject of the first certificate of a TLS 1.3 Certificate."""
    from cryptography import x509
    i = 1 + body[0] + 3  # request context, certificate_list length
    n = struct.unpack("!I", b"\x00" + body[i:i + 3])[0]
    return x509.load_der_x509_certificate(
        body[i + 3:i + 3 + n]).subject.rfc4514_string()


def tls13_full(port, sni=None, psk=None, data=b"adversary says hello",
               psk_key=None, psk_hash="sha256", retry_sni=RETRY_OFF):
    """A TLS 1.3 full handshake with an empty client Certificate when one
    is requested (the server's certificate is not checked).  psk is
    offered in the ClientHello and must be refused by the server: we do
    not know its key (psk_key: the binder is computed with that key and
    psk_hash instead of left as given, and the handshake goes on if the
    server accepts it).  retry_sni: the first ClientHello
    has no key share, and the second, after the HelloRetryRequest, names
    retry_sni (None: no SNI).  Returns a dict: psk_accepted,
    cert_requested, server_cert (its subject), server_finished_ok,
    completed (our data echoed), alert, hrr."""
    res = {"psk_accepted": False, "cert_requested": False, "alert": None,
           "server_finished_ok": False, "completed": False, "hrr": False,
           "server_cert": None}
    conn = Conn(port)
    conn.tls13 = True
    share = KeyShare(X25519)
    retry = retry_sni is not RETRY_OFF
    sid, rnd = os.urandom(32), os.urandom(32)
    try:
        if psk_key is not None:  # a placeholder binder of the right size
            psk = psk[:2] + (bytes(hashlib.new(psk_hash).digest_size),)
        ch = tls13_hello(sni, [] if retry else [(X25519, share.public)],
                         psk=psk, session_id=sid, random=rnd)
        if psk_key is not None:
            ch = bind_psk(ch, psk_key, psk_hash)
        conn.send(HANDSHAKE, ch)
        m = conn.expect_hs()
        sh = parse_server_hello(m[2])
        if m[1] == SERVER_HELLO and sh["hrr"] and retry:
            # RFC 8446 4.4.1: ClientHello1 becomes a synthetic message_hash
            res["hrr"] = True
            hname = SUITES[sh["suite"]][1]
            ch1 = hashlib.new(hname, ch).digest()
            prefix = u8(254) + vec24(ch1) + m[3]
            group = struct.unpack("!H", sh["exts"][EXT_KEY_SHARE][:2])[0]
            share = KeyShare(group)
            cookie = sh["exts"].get(EXT_COOKIE)
            ch = tls13_hello(retry_sni, [(group, share.public)],
                             session_id=sid, random=rnd,
                             cookie=cookie[2:] if cookie else None)
            conn.send(HANDSHAKE, ch)
            ch = prefix + ch
            m = conn.expect_hs()
            sh = parse_server_hello(m[2])
        if m[1] != SERVER_HELLO or sh["hrr"]:
            res["hrr"] = sh["hrr"]
            return res
        if EXT_PSK in sh["exts"]:
            res["psk_accepted"] = True
            if psk_key is None:
                return res  # we cannot go on without the key
        suite = sh["suite"]
        hname = SUITES[suite][1]
        hlen = hashlib.new(hname).digest_size
        transcript = ch + m[3]
        ks = sh["exts"][EXT_KEY_SHARE]
        ecdhe = share.shared(ks[4:4 + struct.unpack("!H", ks[2:4])[0]])
        early = hkdf_extract(b"\x00" * hlen, psk_key if res["psk_accepted"]
                             else b"\x00" * hlen, hname)
        hs = hkdf_extract(derive_secret(early, b"derived", b"", hname),
                          ecdhe, hname)
        c_hs = derive_secret(hs, b"c hs traffic", transcript, hname)
        s_hs = derive_secret(hs, b"s hs traffic", transcript, hname)
        master = hkdf_extract(derive_secret(hs, b"derived", b"", hname),
                              b"\x00" * hlen, hname)
        conn.set_read(Aead13(s_hs, suite))
        context = None
        for _ in range(8):  # EE, CR, Certificate, CertificateVerify, Fin
            m = conn.expect_hs()
            if m[1] == FINISHED:
                fk = expand_label(s_hs, b"finished", b"", hlen, hname)
                want = hmac.new(fk, hashlib.new(hname, transcript).digest(),
                                hname).digest()
                res["server_finished_ok"] = m[2] == want
                transcript += m[3]
                break
            if m[1] == CERTIFICATE:
                res["server_cert"] = server_cert_subject(m[2])
            if m[1] == CERTIFICATE_REQUEST:
                res["cert_requested"] = True
                context = m[2][1:1 + m[2][0]]
            transcript += m[3]
        c_ap = derive_secret(master, b"c ap traffic", transcript, hname)
        s_ap = derive_secret(master, b"s ap traffic", transcript, hname)
        conn.send(CCS, b"\x01")
        conn.set_write(Aead13(c_hs, suite))
        if context is not None:
            cert = hs_msg(CERTIFICATE, vec8(context) + vec24(b""))
            conn.send(HANDSHAKE, cert)
            transcript += cert
        fk = expand_label(c_hs, b"finished", b"", hlen, hname)
        fin = hs_msg(FINISHED, hmac.new(
            fk, hashlib.new(hname, transcript).digest(), hname).digest())
        conn.send(HANDSHAKE, fin)
        conn.set_write(Aead13(c_ap, suite))
        conn.set_read(Aead13(s_ap, suite))
        conn.send(APPDATA, data)
        for _ in range(8):  # NewSessionTicket(s) may come first
            m = conn.next()
            if m[0] == "app":
                res["completed"] = m[1] == data
                break
    except Alert as a:
        res["alert"] = a.desc
    except (Closed, BadMac):
        pass
    finally:
        conn.close()
    return res
