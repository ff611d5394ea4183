#!/usr/bin/env python3
"""short_crl.py CA_CRT CA_KEY SECONDS OUT -- an empty CRL of CA whose next
update is SECONDS from now (tests/test_anchors.c: a shortcut that ends
during a handshake).  openssl ca counts CRL lifetimes in hours at best."""
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

ca_crt, ca_key, secs, out = sys.argv[1:5]
ca = x509.load_pem_x509_certificate(open(ca_crt, "rb").read())
key = serialization.load_pem_private_key(open(ca_key, "rb").read(), None)
now = datetime.datetime.utcnow()
crl = (x509.CertificateRevocationListBuilder()
       .issuer_name(ca.subject)
       .last_update(now - datetime.timedelta(minutes=1))
       .next_update(now + datetime.timedelta(seconds=int(secs)))
       .sign(key, hashes.SHA256()))
with open(out, "wb") as f:
    f.write(crl.public_bytes(serialization.Encoding.PEM))
