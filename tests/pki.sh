#!/usr/bin/env bash
# Generate the complete mtls test PKI into OUTDIR with the openssl CLI (works with OpenSSL 3.0).
# Usage: tests/pki.sh OUTDIR
# Regenerates everything on each run (the "expiring" leaf and the CRLs are relative to now).
# Quiet on success apart from one summary line; on failure prints the failing command's output.
#
# Trust: ca (root, "O=mtls tests, CN=mtls Test Root CA") -> int (pathlen 0) -> leaves.
#        other-ca (unrelated root) -> other-client.
# Leaves for ROLE in client/server: ec p384 rsa expired future expiring wrongeku noeku revoked,
# plus key/format variants; wild-server and admin-server for SNI. Password of encrypted keys: testpass.
# ROLE-enc-pk8.key (PBES2 AES-256-CBC) does not load on mbedTLS 2.28; ROLE-enc-pk8-des3.key does.
set -euo pipefail

if (($# != 1)); then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
cd "$out" # all output names below are relative to OUTDIR

work=$(mktemp -d "${TMPDIR:-/tmp}/mtls-pki.XXXXXX") # CA databases, CSRs, ext files
trap 'rm -rf "$work"' EXIT
umask 022 # certificates world-readable; keys are chmod 0600 at the end

die() {
    echo "pki.sh: $*" >&2
    exit 1
}

# Run a command, hiding its chatter (openssl ca talks a lot on stderr); show it all if it fails.
q() {
    local log
    if ! log=$("$@" 2>&1); then
        printf '%s\n' "$log" >&2
        die "command failed: $*"
    fi
}

# Config for "openssl req" and self-signed roots; -config keeps the system openssl.cnf out of it.
cat >"$work/req.cnf" <<'EOF'
[req]
distinguished_name = req_dn
string_mask = utf8only
[req_dn]
[v3_root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_int]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF

# P-256 (or given curve) key in SEC1 form ("BEGIN EC PRIVATE KEY").
ec_key() { q openssl ecparam -name "${2:-prime256v1}" -genkey -noout -out "$1"; }
# RSA 2048 key in PKCS#1 form ("BEGIN RSA PRIVATE KEY"); OpenSSL 3 writes PKCS#8 without -traditional.
rsa_key() { q openssl genrsa -traditional -out "$1" 2048; }

# make_ca NAME: an "openssl ca" database for NAME.crt/NAME.key (needed for -startdate/-enddate,
# revocation and CRLs; OpenSSL 3.0's "x509" has no -not_before/-not_after).
make_ca() {
    local d=$work/ca-$1
    mkdir -p "$d/newcerts"
    : >"$d/index.txt"
    echo 1000 >"$d/crlnumber"
    echo 01 >"$d/serial" # must be configured even though -rand_serial never uses it
    cat >"$d/ca.cnf" <<EOF
[ca]
default_ca = this_ca
[this_ca]
database = $d/index.txt
new_certs_dir = $d/newcerts
crlnumber = $d/crlnumber
serial = $d/serial
# relative to OUTDIR, where openssl ca always runs
certificate = ./$1.crt
private_key = ./$1.key
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
crl_extensions = crl_ext
[policy_any]
commonName = supplied
organizationName = optional
[crl_ext]
authorityKeyIdentifier = keyid:always
EOF
}

# sign CA NAME SUBJECT EXTFILE [openssl ca validity args...]: issue NAME.crt for NAME.key.
sign() {
    local ca=$1 name=$2 subj=$3 ext=$4
    shift 4
    (($# > 0)) || set -- -days 397
    q openssl req -new -config "$work/req.cnf" -key "$name.key" -subj "$subj" -out "$work/$name.csr"
    q openssl ca -batch -notext -preserveDN -rand_serial -config "$work/ca-$ca/ca.cnf" \
        -extfile "$ext" -extensions ext -in "$work/$name.csr" -out "$name.crt" "$@"
}

# leaf_ext FILE KEYUSAGE EKU SAN: leaf extensions; an empty EKU leaves extendedKeyUsage out entirely.
leaf_ext() {
    {
        echo "[ext]"
        echo "basicConstraints = critical,CA:FALSE"
        echo "keyUsage = critical,$2"
        if [[ -n $3 ]]; then echo "extendedKeyUsage = $3"; fi
        echo "subjectAltName = $4"
        echo "subjectKeyIdentifier = hash"
        echo "authorityKeyIdentifier = keyid:always"
    } >"$1"
}

gt() { date -u -d "$1" +%Y%m%d%H%M%SZ; } # GeneralizedTime string for openssl ca

# ---- CAs ----------------------------------------------------------------------------------------
ec_key ca.key
q openssl req -new -x509 -config "$work/req.cnf" -extensions v3_root -sha256 -days 3650 \
    -key ca.key -subj "/O=mtls tests/CN=mtls Test Root CA" -out ca.crt
make_ca ca

ec_key int.key
printf '[ext]\n' >"$work/int.ext"
sed -n '/^\[v3_int\]/,/^$/{/^\[/d;p}' "$work/req.cnf" >>"$work/int.ext"
sign ca int "/CN=mtls Test Intermediate CA" "$work/int.ext" -days 1825
make_ca int

ec_key other-ca.key
q openssl req -new -x509 -config "$work/req.cnf" -extensions v3_root -sha256 -days 3650 \
    -key other-ca.key -subj "/CN=Other Root CA" -out other-ca.crt
make_ca other-ca

cat int.crt ca.crt >ca-bundle.pem
mkdir -p ca-dir
cp ca.crt int.crt ca-dir/

# ---- leaves -------------------------------------------------------------------------------------
ku_ec=digitalSignature
ku_rsa=digitalSignature,keyEncipherment # keyEncipherment for TLS 1.2 RSA key exchange suites

for role in client server; do
    if [[ $role == client ]]; then
        cn=client.test eku=clientAuth wrong=serverAuth
        san="DNS:client.test,URI:spiffe://example.org/ns/test/sa/client"
    else
        cn=localhost eku=serverAuth wrong=clientAuth
        san="DNS:localhost,DNS:server.test,IP:127.0.0.1,IP:::1"
    fi
    subj="/CN=$cn"
    e=$work/$role
    leaf_ext "$e-ec.ext" "$ku_ec" "$eku" "$san"
    leaf_ext "$e-rsa.ext" "$ku_rsa" "$eku" "$san"
    leaf_ext "$e-wrong.ext" "$ku_ec" "$wrong" "$san"
    leaf_ext "$e-noeku.ext" "$ku_ec" "" "$san"

    ec_key "$role-ec.key"
    sign int "$role-ec" "$subj" "$e-ec.ext"
    ec_key "$role-p384.key" secp384r1
    sign int "$role-p384" "$subj" "$e-ec.ext"
    rsa_key "$role-rsa.key"
    sign int "$role-rsa" "$subj" "$e-rsa.ext"

    ec_key "$role-expired.key"
    sign int "$role-expired" "$subj" "$e-ec.ext" -startdate 20200101000000Z -enddate 20210101000000Z
    ec_key "$role-future.key"
    sign int "$role-future" "$subj" "$e-ec.ext" -startdate "$(gt '+1 year')" -enddate "$(gt '+2 years')"
    ec_key "$role-expiring.key"
    sign int "$role-expiring" "$subj" "$e-ec.ext" -startdate "$(gt '-1 day')" -enddate "$(gt '+10 days')"
    ec_key "$role-wrongeku.key"
    sign int "$role-wrongeku" "$subj" "$e-wrong.ext"
    ec_key "$role-noeku.key"
    sign int "$role-noeku" "$subj" "$e-noeku.ext"
    ec_key "$role-revoked.key"
    sign int "$role-revoked" "$subj" "$e-ec.ext"
    ec_key "$role-other.key"

    # Same key/cert in other encodings and file layouts.
    q openssl pkcs8 -topk8 -nocrypt -in "$role-ec.key" -out "$role-pk8.key"
    q openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -passout pass:testpass \
        -in "$role-ec.key" -out "$role-enc-pk8.key"
    # Extra: mbedTLS 2.28 cannot decrypt AES in PBES2 (PKCS5 "feature unavailable"); 3DES it can.
    q openssl pkcs8 -topk8 -v2 des3 -v2prf hmacWithSHA256 -passout pass:testpass \
        -in "$role-ec.key" -out "$role-enc-pk8-des3.key"
    q openssl rsa -aes256 -traditional -passout pass:testpass -in "$role-rsa.key" -out "$role-enc-legacy.key"
    q openssl x509 -in "$role-ec.crt" -outform DER -out "$role-ec.der"
    q openssl ec -in "$role-ec.key" -outform DER -out "$role-ec-key.der" # SEC1 DER
    cat "$role-ec.crt" int.crt >"$role-ec-chain.pem"
    cat "$role-rsa.crt" int.crt >"$role-rsa-chain.pem"
    cat "$role-ec.crt" int.crt "$role-ec.key" >"$role-combined.pem"
    cat int.crt "$role-ec.crt" >"$role-rev-chain.pem"
    cat "$role-ec.crt" other-ca.crt >"$role-broken-chain.pem"

    q openssl ca -batch -config "$work/ca-int/ca.cnf" -revoke "$role-revoked.crt" -crl_reason keyCompromise
done

# Client with the same names as client-ec but from the unrelated root.
leaf_ext "$work/other-client.ext" "$ku_ec" clientAuth \
    "DNS:client.test,URI:spiffe://example.org/ns/test/sa/client"
ec_key other-client.key
sign other-ca other-client "/CN=client.test" "$work/other-client.ext"

# Weak client certificates, refused by every context's verification profile: signed with SHA-1;
# an RSA key under 2048 bits.
ec_key client-sha1.key
sign int client-sha1 "/CN=client.test" "$work/client-ec.ext" -days 397 -md sha1
q openssl genrsa -traditional -out client-rsa1024.key 1024
sign int client-rsa1024 "/CN=client.test" "$work/client-rsa.ext"

# SNI: wildcard and exact-name server certificates.
leaf_ext "$work/wild.ext" "$ku_ec" serverAuth "DNS:*.example.com"
ec_key wild-server.key
sign int wild-server "/CN=*.example.com" "$work/wild.ext"
leaf_ext "$work/admin.ext" "$ku_ec" serverAuth "DNS:admin.example.com"
ec_key admin-server.key
sign int admin-server "/CN=admin.example.com" "$work/admin.ext"
cat wild-server.crt int.crt >wild-server-chain.pem # as examples/mtls-proxy.conf serves them
cat admin-server.crt int.crt >admin-server-chain.pem

# URI and CN allow-list clients (tests/adversary, security issue #11): one URI SAN each, except client-uri2
# (two, as no X.509-SVID has); dot segments, a percent-encoded "..", a segment that only starts like
# the rule's last one.
for i in "web:URI:spiffe://example.org/sa/web" "websub:URI:spiffe://example.org/sa/web/x" \
    "uri2:URI:spiffe://example.org/sa/web,URI:spiffe://example.org/sa/admin" \
    "webdot:URI:spiffe://example.org/sa/web/../admin" \
    "webpct:URI:spiffe://example.org/sa/web/%2e%2e/admin" \
    "webadmin:URI:spiffe://example.org/sa/webadmin"; do
    name=${i%%:*}
    leaf_ext "$work/client-$name.ext" "$ku_ec" clientAuth "${i#*:}"
    ec_key "client-$name.key"
    sign int "client-$name" "/CN=$name" "$work/client-$name.ext"
done
# Two CNs (CN rules judge one CN per certificate), no URI.
leaf_ext "$work/client-cn2.ext" "$ku_ec" clientAuth "DNS:cn2.test"
ec_key client-cn2.key
sign int client-cn2 "/CN=web/CN=admin" "$work/client-cn2.ext"
# mtls-proxy (finding 4): a client with two URI SANs, which URI rules must refuse.
leaf_ext "$work/twouri.ext" "$ku_ec" clientAuth \
    "DNS:client.test,URI:spiffe://example.org/ns/test/sa/web,URI:spiffe://example.org/ns/test/sa/admin"
ec_key client-twouri.key
sign int client-twouri "/CN=client.test" "$work/twouri.ext"
cat client-twouri.crt int.crt >client-twouri-chain.pem
# mtls-proxy (finding 10): names that try to forge log lines: a newline in
# the CN, a double quote and blanks in the URI SAN (\" keeps the quote; no
# "//" in its path, or the library reports no identity for it at all).
leaf_ext "$work/evil.ext" "$ku_ec" clientAuth \
    'URI:spiffe://example.org/ns/test/sa/x\" id=\"spiffe:admin'
ec_key client-evil.key
sign int client-evil "/CN=evil"$'\n'"info: conn client=forged" "$work/evil.ext"
cat client-evil.crt int.crt >client-evil-chain.pem

# ---- CRLs ---------------------------------------------------------------------------------------
q openssl ca -batch -config "$work/ca-int/ca.cnf" -gencrl -crldays 30 -out int.crl
q openssl crl -in int.crl -outform DER -out int.crl.der
q openssl ca -batch -config "$work/ca-ca/ca.cnf" -gencrl -crldays 30 -out ca.crl

# ---- more intermediates (lib/anchors.c) ---------------------------------------------------------
# int2: a second intermediate of the root.  int3: revoked by the root in ca-revint.crl (ca.crl stays
# as it is).  int-pl1 (pathlen 1) -> int-free (CA, no pathlen) -> int-deep (CA): a client under
# int-free verifies; one under int-deep must not (int-pl1 allows one CA below it).
printf '[ext]\nbasicConstraints = critical,CA:TRUE,pathlen:1\nkeyUsage = critical,keyCertSign,cRLSign\n' \
    >"$work/int-pl1.ext"
printf '[ext]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n' \
    >"$work/int-free.ext"
leaf_ext "$work/client-more.ext" "$ku_ec" clientAuth \
    "DNS:client.test,URI:spiffe://example.org/ns/test/sa/client"
for i in int2:ca:int int3:ca:int int-pl1:ca:int-pl1 int-free:int-pl1:int-free int-deep:int-free:int-free; do
    IFS=: read -r name parent ext <<<"$i"
    ec_key "$name.key"
    sign "$parent" "$name" "/CN=mtls Test $name CA" "$work/$ext.ext" -days 1825
    make_ca "$name"
done
for i in int2 int3 int-free int-deep; do
    ec_key "client-$i.key"
    sign "$i" "client-$i" "/CN=client.test" "$work/client-more.ext"
done
cat client-int2.crt int2.crt >client-int2-chain.pem
cat client-int3.crt int3.crt >client-int3-chain.pem
cat client-int-free.crt int-free.crt int-pl1.crt >client-int-free-chain.pem
cat client-int-deep.crt int-deep.crt int-free.crt int-pl1.crt >client-int-deep-chain.pem
q openssl ca -batch -config "$work/ca-ca/ca.cnf" -revoke int3.crt -crl_reason keyCompromise
q openssl ca -batch -config "$work/ca-ca/ca.cnf" -gencrl -crldays 30 -out ca-revint.crl

# ---- malformed inputs ---------------------------------------------------------------------------
: >empty.pem
cat >garbage.pem <<'EOF'
This is not a certificate, not PEM and not DER.
MIIB!!notbase64@@ 0x00 0xff ~~ ---BEGIN? no.
EOF
crt_size=$(wc -c <client-ec.crt)
head -c "$((crt_size / 2))" client-ec.crt >truncated.pem
ec_key "$work/unrelated.key"
{
    echo "# This file has text and a private key, but no certificate."
    cat "$work/unrelated.key"
} >nocert-bundle.pem

# ---- permissions --------------------------------------------------------------------------------
chmod 0600 ./*.key ./*-key.der ./*-combined.pem nocert-bundle.pem
cp client-ec.key client-ec-0644.key
chmod 0644 client-ec-0644.key

# ---- self-check ---------------------------------------------------------------------------------
# expect ok|fail FILE [openssl verify args...]
expect() {
    local want=$1 f=$2 log rc=0
    shift 2
    log=$(openssl verify "$@" "$f" 2>&1) || rc=$?
    if [[ $want == ok && $rc -ne 0 ]] || [[ $want == fail && $rc -eq 0 ]]; then
        printf '%s\n' "$log" >&2
        die "self-check: verify $* $f: expected $want"
    fi
}
chain=(-CAfile ca.crt -untrusted int.crt)
crl=(-crl_check_all -CRLfile int.crl -CRLfile ca.crl) # also proves both CRLs parse and verify
for role in client server; do
    if [[ $role == client ]]; then purpose=sslclient; else purpose=sslserver; fi
    for v in ec p384 rsa expiring noeku revoked; do
        expect ok "$role-$v.crt" "${chain[@]}" -purpose "$purpose"
    done
    for v in ec p384 rsa expiring noeku; do
        expect ok "$role-$v.crt" "${chain[@]}" "${crl[@]}"
    done
    expect ok "$role-ec.crt" -CAfile ca.crt -untrusted "$role-ec-chain.pem"
    expect ok "$role-ec.crt" -CAfile ca-bundle.pem
    expect ok "$role-ec.crt" -CAfile ca-dir/ca.crt -untrusted ca-dir/int.crt
    expect fail "$role-expired.crt" "${chain[@]}"
    expect fail "$role-future.crt" "${chain[@]}"
    expect fail "$role-wrongeku.crt" "${chain[@]}" -purpose "$purpose"
    expect fail "$role-revoked.crt" "${chain[@]}" -crl_check -CRLfile int.crl
    expect fail "$role-ec.crt" -CAfile other-ca.crt -untrusted int.crt
done
expect ok other-client.crt -CAfile other-ca.crt -purpose sslclient
expect fail other-client.crt "${chain[@]}"
expect ok wild-server.crt "${chain[@]}" -purpose sslserver -verify_hostname foo.example.com
expect ok admin-server.crt "${chain[@]}" -purpose sslserver -verify_hostname admin.example.com
expect ok server-ec.crt "${chain[@]}" -verify_ip ::1
expect ok client-ec.crt "${chain[@]}" -verify_hostname client.test
for i in web websub uri2 webdot webpct webadmin cn2; do
    expect ok "client-$i.crt" "${chain[@]}" -purpose sslclient
done
expect ok client-int2.crt -CAfile ca.crt -untrusted client-int2-chain.pem -purpose sslclient
expect ok client-int3.crt -CAfile ca.crt -untrusted client-int3-chain.pem
expect fail client-int3.crt -CAfile ca.crt -untrusted client-int3-chain.pem -crl_check_all \
    -CRLfile ca-revint.crl -CRLfile int.crl
expect ok client-int-free.crt -CAfile ca.crt -untrusted client-int-free-chain.pem -purpose sslclient
expect fail client-int-deep.crt -CAfile ca.crt -untrusted client-int-deep-chain.pem

# Key variants match their certificate (plain NAME.key/NAME.crt pairs match by construction).
pub() { openssl pkey -pubout -passin pass:testpass -in "$1" 2>/dev/null; }
crtpub() { openssl x509 -pubkey -noout -in "$1"; }
for role in client server; do
    p=$(crtpub "$role-ec.crt")
    for k in "$role-pk8.key" "$role-enc-pk8.key" "$role-enc-pk8-des3.key" "$role-ec-key.der" \
        "$role-combined.pem"; do
        [[ $p == "$(pub "$k")" ]] || die "self-check: $k does not match $role-ec.crt"
    done
    [[ $(crtpub "$role-rsa.crt") == "$(pub "$role-enc-legacy.key")" ]] ||
        die "self-check: $role-enc-legacy.key does not match $role-rsa.crt"
    [[ $p != "$(pub "$role-other.key")" ]] || die "self-check: $role-other.key matches $role-ec.crt"
done
grep -q '^DEK-Info: AES-256-CBC' client-enc-legacy.key ||
    die "self-check: client-enc-legacy.key is not legacy encrypted PEM"
grep -q 'BEGIN EC PRIVATE KEY' client-ec.key || die "self-check: client-ec.key is not SEC1"
grep -q 'BEGIN RSA PRIVATE KEY' client-rsa.key || die "self-check: client-rsa.key is not PKCS#1"
[[ $(openssl crl -in int.crl -noout -text | grep -c 'Serial Number:') -eq 2 ]] ||
    die "self-check: int.crl does not list exactly 2 revoked certificates"

echo "pki.sh: test PKI in $out ($(find . -type f | wc -l) files, self-check ok)"
