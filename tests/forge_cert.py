#!/usr/bin/env python3
"""forge_cert.py MODE CERT OUTDIR -- certificates that only a real signature
check tells from CERT (tests/test_sigcache.c: a cache of verified signatures
must not be fooled by them).  CERT is a P-256 leaf (PEM).

  otherkey  OUTDIR/otherkey.crt and .key: CERT's subject, serial, dates and
            extensions with a new P-256 key, carrying CERT's own signature
            (now invalid: the signed bytes changed).
  othersig  OUTDIR/othersig.crt: CERT's exact to-be-signed bytes (same key,
            names, serial), signed by another P-256 key that is not its
            issuer's: what a CA with the same name but another key would
            have issued.  CERT's key still goes with it."""
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def read_tlv(buf, off):
    """(start of value, end of element) of the DER element at off."""
    n = buf[off + 1]
    if n < 0x80:
        return off + 2, off + 2 + n
    k = n & 0x7F
    length = int.from_bytes(buf[off + 2:off + 2 + k], "big")
    return off + 2 + k, off + 2 + k + length


def split(der):
    """to-be-signed, signatureAlgorithm, signatureValue elements."""
    body, end = read_tlv(der, 0)
    assert end == len(der)
    _, tbs_end = read_tlv(der, body)
    _, alg_end = read_tlv(der, tbs_end)
    return der[body:tbs_end], der[tbs_end:alg_end], der[alg_end:end]


def write(path, der):
    cert = x509.load_der_x509_certificate(der)  # still well-formed
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def main():
    mode, src, outdir = sys.argv[1:4]
    cert = x509.load_pem_x509_certificate(open(src, "rb").read())
    der = cert.public_bytes(serialization.Encoding.DER)
    tbs, alg, sig = split(der)
    key = ec.generate_private_key(ec.SECP256R1())
    if mode == "otherkey":
        old = cert.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
        new = key.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
        assert len(old) == len(new) and tbs.count(old) == 1
        write(f"{outdir}/otherkey.crt",
              tlv(0x30, tbs.replace(old, new) + alg + sig))
        with open(f"{outdir}/otherkey.key", "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()))
    elif mode == "othersig":
        forged = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
        write(f"{outdir}/othersig.crt",
              tlv(0x30, tbs + alg + tlv(0x03, b"\x00" + forged)))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
