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
