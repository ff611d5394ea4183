#!/usr/bin/env python3
"""deep_chain.py CA_CRT CA_KEY N OUT_DIR -- a client certificate under N
intermediate CAs of the test root (no path length limits):
OUT_DIR/deep-N.pem (leaf first, then the intermediates) and deep-N.key.
tests/test_anchors.c: how deep a chain the library accepts."""
import datetime
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ca_crt, ca_key, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
issuer = x509.load_pem_x509_certificate(open(ca_crt, "rb").read())
issuer_key = serialization.load_pem_private_key(open(ca_key, "rb").read(), None)
now = datetime.datetime.utcnow()


def make(name, key, is_ca, serial):
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
         .issuer_name(issuer.subject)
         .public_key(key.public_key())
         .serial_number(serial)
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), True))
    if is_ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False,
                                          True, True, False, False), True)
    else:
        b = (b.add_extension(x509.KeyUsage(True, False, False, False, False,
                                           False, False, False, False), True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
             .add_extension(x509.SubjectAlternativeName(
                 [x509.UniformResourceIdentifier("spiffe://example.org/deep")]), False))
    return b.sign(issuer_key, hashes.SHA256())


chain = []
for i in range(n):
    key = ec.generate_private_key(ec.SECP256R1())
    crt = make(f"deep int {i + 1}", key, True, 0xdee900 + i)
    chain.insert(0, crt)
    issuer, issuer_key = crt, key
leaf_key = ec.generate_private_key(ec.SECP256R1())
chain.insert(0, make("deep client", leaf_key, False, 0xdee9ff))
with open(os.path.join(out, f"deep-{n}.pem"), "wb") as f:
    for c in chain:
        f.write(c.public_bytes(serialization.Encoding.PEM))
key_path = os.path.join(out, f"deep-{n}.key")
with open(key_path, "wb") as f:
    f.write(leaf_key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
os.chmod(key_path, 0o600)
