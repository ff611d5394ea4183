#!/usr/bin/env bash
# Runs every fuzz target of a fuzz build for a bounded time each, with a
# seed corpus made from a fresh test PKI, generated inputs and the files
# under tests/fuzz/seeds/<target>/, and prints executions per target.
#   tests/fuzz/run.sh BUILD_DIR SECONDS_PER_TARGET
# A crash leaves its input in BUILD_DIR/fuzz/crashes/ and fails the run;
# turn it into a regression seed under tests/fuzz/regress/<target>/.
set -uo pipefail
build=${1:?usage: tests/fuzz/run.sh BUILD_DIR SECONDS}
secs=${2:-30}
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd)
work="$build/fuzz"
pki="$work/pki"
mkdir -p "$work/crashes"
rm -rf "$pki" && "$here/../pki.sh" "$pki" >/dev/null || exit 1
export MTLS_FUZZ_PKI="$pki"

seed() { # target files...
	local dir="$work/corpus/$1"; shift
	mkdir -p "$dir"
	for f in "$@"; do [ -f "$f" ] && cp "$f" "$dir/"; done
	if [ -d "$here/regress/$(basename "$dir")" ]; then
		cp "$here/regress/$(basename "$dir")"/* "$dir/" 2>/dev/null
	fi
	return 0
}

seed fuzz_cred "$pki"/client-*.pem "$pki"/client-ec.der "$pki"/truncated.pem
# cert NUL key pairs, the layout fuzz_cred splits on
for k in ec rsa p384 pk8 enc-pk8-des3; do
	crt=client-ec; [ "$k" = rsa ] && crt=client-rsa; [ "$k" = p384 ] && crt=client-p384
	{ cat "$pki/$crt.crt"; printf '\0'; cat "$pki/client-$k.key"; } \
		> "$work/corpus/fuzz_cred/pair-$k"
done
seed fuzz_trust "$pki"/ca-bundle.pem "$pki"/int.crl "$pki"/int.crl.der "$pki"/ca.crl
seed fuzz_handshake
# A real ClientHello (TLS 1.2 and, if offered, 1.3) as the server role's seed.
python3 - "$work/corpus/fuzz_handshake" <<'PY' || true
import socket, subprocess, sys, os
out = sys.argv[1]
for i, args in enumerate([["-tls1_2"], []]):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
    port = s.getsockname()[1]
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}"] + args,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    s.settimeout(5); c, _ = s.accept(); c.settimeout(5)
    data = c.recv(16384)
    c.close(); s.close(); p.kill(); p.wait()
    open(os.path.join(out, f"clienthello-{i}"), "wb").write(b"\x00" + data)
PY

# mtls-proxy: its example and the test suite's configurations (static
# copies, paths and ports fixed); PROXY v2 headers in fuzz_pp2's layout:
# flags, two addresses (family selector, 16 address and 2 port bytes), cap,
# then version, CN and URI (each: 0 for NULL; 1..127, a length byte and the
# bytes; 0x80, the 16-bit length of a generated run, 0xC0 that + 65536).
seed fuzz_config "$here/../../examples/mtls-proxy.conf" \
	"$here"/seeds/fuzz_config/*.conf
seed fuzz_pp2
python3 - "$work/corpus/fuzz_pp2" <<'PY' || true
import os, struct, sys
out = sys.argv[1]
def addr(sel, a, port):
    return bytes([sel]) + a.ljust(16, b"\0") + struct.pack(">H", port)
def s(v):
    if v is None:
        return b"\0"
    if isinstance(v, int):
        return bytes([0xC0 if v > 0xFFFF else 0x80]) + struct.pack(">H", v & 0xFFFF)
    return bytes([1, len(v)]) + v
v4 = (addr(0, bytes([127, 0, 0, 1]), 40000), addr(0, bytes([127, 0, 0, 1]), 8443))
v6 = (addr(1, bytes(15) + b"\1", 40000), addr(1, bytes(15) + b"\1", 8443))
seeds = {
    "v4-tls": (0x07, v4, 512, b"TLSv1.3", b"client.test",
               b"spiffe://example.org/ns/test/sa/client"),
    "v6-plain": (0x00, v6, 512, None, None, None),
    "mixed-unverified": (0x03, (v4[0], v6[1]), 512, b"TLSv1.2", b"cn", None),
    "v4-short-cap": (0x01, v4, 27, b"TLSv1.3", None, None),
    "long-strings": (0x07, v6, 512, 40, 300, 1000),
    "past-16-bits": (0x47, v4, 0x8000, 70000, 70000, 70000),
    "null-args": (0x81, v4, 100, b"TLSv1.3", b"", b"u"),
}
for name, (flags, (src, dst), cap, ver, cn, uri) in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([flags]) + src + dst + struct.pack(">H", cap)
                + s(ver) + s(cn) + s(uri))
PY

# SNI host table: lines of an operation byte (0x00, 0x04, 0x08, 0x0c: add
# with host 0..3; anything else: look up) and a name.
seed fuzz_hosts
python3 - "$work/corpus/fuzz_hosts" <<'PY' || true
import os, sys
out = sys.argv[1]
A = lambda host, name: bytes([4 * host]) + name
L = lambda name: b"L" + name
seeds = {
    "exact-and-wild": [A(0, b"admin.example.com"), A(1, b"*.example.com"),
                       L(b"admin.example.com"), L(b"www.example.com"),
                       L(b"a.b.example.com"), L(b"example.com"), L(b"ADMIN.Example.COM")],
    "replace": [A(0, b"a.test"), A(2, b"A.TEST"), L(b"a.test")],
    "invalid": [A(0, b"x.test"), L(b"x.test."), L(b".x.test"), L(b"x..test"),
                L(b"x.te\x00st"), L(b"-" * 64 + b".test"), L(b"x" * 254), L(b"*.test")],
    "wild-only": [A(3, b"*.a.b"), L(b"x.a.b"), L(b"a.b"), L(b"*.a.b"), L(b"y.x.a.b")],
    "many": [A(i % 4, b"h%d.example.org" % i) for i in range(40)]
            + [L(b"h%d.example.org" % i) for i in range(0, 40, 3)],
}
for name, lines in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(b"\n".join(lines))
PY

# Allow lists: records [type][len][bytes]; type % 8: 0 DNS, 1 URI, 2 IP,
# 6 rfc822 SANs, 3 CN, 4 OU, 5 allow entry of kind type / 8 (0 URI,
# 1 URI prefix, 2 DNS, 3 CN, 4 OU, 5 SPKI pin), 7 idlen.
seed fuzz_allow "$pki"/client-ec.der "$pki"/server-ec.der
python3 - "$work/corpus/fuzz_allow" <<'PY' || true
import os, sys
out = sys.argv[1]
def r(t, v):
    return bytes([t, len(v)]) + v
DNS, URI, IP, CN, OU, RFC = 0, 1, 2, 3, 4, 6
def allow(kind, v):
    return r(5 + 8 * kind, v)
svid = b"spiffe://example.org/ns/test/sa/client"
seeds = {
    "svid-prefix": [r(URI, svid), r(CN, b"client.test"), allow(1, b"spiffe://example.org/ns/test/")],
    "svid-exact": [r(URI, svid), allow(0, svid)],
    "two-uris": [r(URI, svid), r(URI, b"spiffe://example.org/ns/admin/sa/x"), allow(1, b"spiffe://example.org/")],
    "dot-segment": [r(URI, b"spiffe://example.org/ns/test/../admin"), allow(1, b"spiffe://example.org/ns/test/")],
    "pct-encoded": [r(URI, b"spiffe://example.org/ns/test/%2e%2e/admin"), allow(1, b"spiffe://example.org/ns/test")],
    "segment-boundary": [r(URI, b"spiffe://example.org/ns/ab"), allow(1, b"spiffe://example.org/ns/a")],
    "dns-case": [r(DNS, b"Client.Test"), r(IP, bytes([127, 0, 0, 1])), allow(2, b"client.test")],
    "cn-ou": [r(CN, b"client.test"), r(OU, b"payments"), r(OU, b"ops"), allow(4, b"ops"), allow(3, b"client.test")],
    "two-cns": [r(CN, b"a"), r(CN, b"b"), allow(3, b"a")],
    "pin": [r(URI, svid), allow(5, b""), r(7, bytes([16]))],
    "nul-inside": [r(URI, b"spiffe://example.org/ns/a\x00/evil"), r(CN, b"x\x00y"), allow(1, b"spiffe://example.org/")],
    "no-list": [r(CN, b"only.cn"), r(DNS, b"d.test"), r(RFC, b"a@b.test")],
    "short-idlen": [r(URI, svid), allow(0, svid), r(7, bytes([5]))],
}
for name, recs in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(b"".join(recs))
PY

status=0
printf '%-16s %12s %s\n' target executions result
for bin in "$build"/fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	t=$(basename "$bin")
	log="$work/$t.log"
	"$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
		-artifact_prefix="$work/crashes/$t-" -print_final_stats=1 \
		"$work/corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
	if [ $rc -eq 0 ]; then res=ok; else res="FAILED (see $log)"; status=1; fi
	printf '%-16s %12s %s\n' "$t" "${execs:-?}" "$res"
done
exit $status
