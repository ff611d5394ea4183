#!/usr/bin/env bash
# tests/test_proxy_watch.sh BUILD - mtls-proxy reloads by itself when the
# files it uses change ("watch on", the default; "watch poll"; "watch off"),
# on loopback, against a copy of the test PKI (tests/run.sh):
#   rename over (a new file moved over the old, as editors and cert-manager
#     do): new connections get the new certificate, a connection opened
#     before carries on
#   in place, in two writes with a pause shorter than the debounce: the
#     half-written file is never tried (no failed reload is logged)
#   a broken update (a certificate that does not match the key): refused,
#     logged, the old certificate still served; the repair is picked up
#   a Kubernetes secret volume: tls.crt -> ..data/tls.crt, ..data swapped to
#     a new timestamped directory by renaming a symlink over it
#   "watch poll": the same found without inotify; "watch off": nothing
# Every process started here is killed by PID on exit; every wait is bounded.
set -uo pipefail
build=${1:?usage: tests/test_proxy_watch.sh BUILD_DIR}
build=$(cd "$build" && pwd)
pki=${MTLS_TEST_PKI:?run through tests/run.sh (MTLS_TEST_PKI unset)}
proxy=$build/mtls-proxy
[ -x "$proxy" ] || { echo "FAIL: $proxy not built (make examples)"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 0; }

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
setup_work watch || exit 1
export PKI=$pki
fails=0 checks=0

# w.py echo PORT               an echo backend
# w.py served PORT             one handshake: the served leaf's SHA-256
# w.py hold PORT GO DONE       opens a connection, echoes "before", waits for
#                              file GO, echoes "after", writes the result to
#                              DONE ("ok" or why not)
cat >"$work/w.py" <<'PY'
import hashlib, os, socket, socketserver, ssl, sys, time
PKI = os.environ["PKI"]

def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.load_verify_locations(f"{PKI}/ca.crt")
    c.load_cert_chain(f"{PKI}/client-ec-chain.pem", f"{PKI}/client-ec.key")
    c.check_hostname = False
    return c

def conn(port):
    s = socket.create_connection(("127.0.0.1", port), 10)
    s.settimeout(10)
    return ctx().wrap_socket(s, server_hostname="localhost")

def echo(s, msg):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        d = s.recv(100)
        if not d:
            break
        got += d
    return got == msg

cmd, port = sys.argv[1], int(sys.argv[2])
if cmd == "echo":
    class H(socketserver.BaseRequestHandler):
        def handle(self):
            while True:
                d = self.request.recv(65536)
                if not d:
                    return
                self.request.sendall(d)
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    socketserver.ThreadingTCPServer(("127.0.0.1", port), H).serve_forever()
elif cmd == "served":
    try:
        s = conn(port)
        print(hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest())
        s.close()
    except OSError as e:
        print(f"refused: {e}")
elif cmd == "hold":
    go, done = sys.argv[3], sys.argv[4]
    try:
        s = conn(port)
        ok = echo(s, b"before")
        end = time.time() + 60
        while not os.path.exists(go) and time.time() < end:
            time.sleep(0.05)
        ok = ok and echo(s, b"after")
        r = "ok" if ok else "echo failed"
    except OSError as e:
        r = f"error: {e}"
    with open(done, "w") as f:
        f.write(r)
PY
py() { in_place python3 "$work/w.py" "$@"; }
fp() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
ec=$(fp "$pki/server-ec.crt")
rsa=$(fp "$pki/server-rsa.crt")

# wait_served PORT SHA LIMIT: new connections get SHA within LIMIT seconds
wait_served() {
	local end=$((SECONDS + $3)) got=""
	while [ $SECONDS -lt $end ]; do
		got=$(py served "$1")
		[ "$got" = "$2" ] && return 0
		sleep 0.2
	done
	echo "  (served: $got)"
	return 1
}
# wait_log FILE TEXT LIMIT
wait_log() {
	local end=$((SECONDS + $3))
	while [ $SECONDS -lt $end ]; do
		grep -qF -- "$2" "$1" && return 0
		sleep 0.2
	done
	return 1
}
# put FROM TO: a new file renamed over TO
put() { cp "$1" "$2.tmp" && chmod 600 "$2.tmp" && mv -f "$2.tmp" "$2"; }

backend=$(free_port)
python3 "$work/w.py" echo "$backend" & pids+=($!)
wait_port "$backend" || bad "echo backend did not start"

# start NAME WATCH CERT KEY: a proxy with its own config and log, on $port
start() {
	port=$(free_port)
	cat >"$work/$1.conf" <<CFG
log_level info
watch $2
listen 127.0.0.1:$port {
    cert $3
    key $4
    client_ca $pki/ca.crt
    client_auth require
    upstream be
}
upstream be {
    target 127.0.0.1:$backend
    tls off
}
CFG
	"$proxy" -c "$work/$1.conf" >/dev/null 2>"$work/$1.log" &
	pids+=($!)
	wait_port "$port" || bad "$1: proxy did not start ($(tail -3 "$work/$1.log"))"
}

# ---- watch on: rename over, live connection, in place, broken, repair ----
mkdir -p "$work/a"
put "$pki/server-ec-chain.pem" "$work/a/server.crt"
put "$pki/server-ec.key" "$work/a/server.key"
start a on "$work/a/server.crt" "$work/a/server.key"
check "on: EC certificate served at start" wait_served "$port" "$ec" 5
python3 "$work/w.py" hold "$port" "$work/go" "$work/done" & pids+=($!)
sleep 0.5
put "$pki/server-rsa.key" "$work/a/server.key"
put "$pki/server-rsa-chain.pem" "$work/a/server.crt"
check "on: rename over: the new (RSA) certificate served" \
	wait_served "$port" "$rsa" 15
check "on: the log says why it reloaded" \
	grep -q 'files changed: reloading' "$work/a.log"
touch "$work/go"
for _ in $(seq 50); do [ -s "$work/done" ] && break; sleep 0.1; done
check "on: a connection opened before the rotation carries on ($(cat "$work/done" 2>/dev/null))" \
	grep -qx ok "$work/done"

# in place, two writes 0.3 s apart (debounce 1 s), back to EC: the key
# first (the pair is broken until the certificate is whole)
n_failed=$(grep -c 'reload failed' "$work/a.log")
cp "$pki/server-ec.key" "$work/a/server.key"
size=$(stat -c %s "$pki/server-ec-chain.pem")
head -c $((size / 2)) "$pki/server-ec-chain.pem" >"$work/a/server.crt"
sleep 0.3
cat "$pki/server-ec-chain.pem" >"$work/a/server.crt"
check "on: rewritten in place: the EC certificate served" \
	wait_served "$port" "$ec" 15
check "on: the half-written file was never tried (no failed reload)" \
	test "$(grep -c 'reload failed' "$work/a.log")" = "$n_failed"

# broken: the RSA certificate over the EC key
put "$pki/server-rsa-chain.pem" "$work/a/server.crt"
check "on: a broken update is refused and logged" \
	wait_log "$work/a.log" "reload failed" 15
check "on: after the refused update the old (EC) certificate is served" \
	wait_served "$port" "$ec" 2
put "$pki/server-rsa.key" "$work/a/server.key"
check "on: the repair is picked up (RSA served)" wait_served "$port" "$rsa" 15

# ---- Kubernetes secret volume layout, inotify ----
k=$work/k8s
mkdir -p "$k/..2026_11_28_10_00_00.1"
cp "$pki/server-ec-chain.pem" "$k/..2026_11_28_10_00_00.1/tls.crt"
cp "$pki/server-ec.key" "$k/..2026_11_28_10_00_00.1/tls.key"
chmod 600 "$k/..2026_11_28_10_00_00.1/tls.key"
ln -s ..2026_11_28_10_00_00.1 "$k/..data"
ln -s ..data/tls.crt "$k/tls.crt"
ln -s ..data/tls.key "$k/tls.key"
start k8s on "$k/tls.crt" "$k/tls.key"
check "k8s: EC served at start" wait_served "$port" "$ec" 5
mkdir -p "$k/..2026_11_28_11_00_00.2"
cp "$pki/server-rsa-chain.pem" "$k/..2026_11_28_11_00_00.2/tls.crt"
cp "$pki/server-rsa.key" "$k/..2026_11_28_11_00_00.2/tls.key"
chmod 600 "$k/..2026_11_28_11_00_00.2/tls.key"
ln -s ..2026_11_28_11_00_00.2 "$k/..data_tmp"
mv -T "$k/..data_tmp" "$k/..data"
check "k8s: ..data swapped: the new (RSA) certificate served" \
	wait_served "$port" "$rsa" 15

# ---- watch poll ----
mkdir -p "$work/p"
put "$pki/server-ec-chain.pem" "$work/p/server.crt"
put "$pki/server-ec.key" "$work/p/server.key"
start p poll "$work/p/server.crt" "$work/p/server.key"
put "$pki/server-rsa.key" "$work/p/server.key"
put "$pki/server-rsa-chain.pem" "$work/p/server.crt"
check "poll: rename over found by polling (RSA served)" \
	wait_served "$port" "$rsa" 20

# ---- watch off ----
mkdir -p "$work/o"
put "$pki/server-ec-chain.pem" "$work/o/server.crt"
put "$pki/server-ec.key" "$work/o/server.key"
start o off "$work/o/server.crt" "$work/o/server.key"
put "$pki/server-rsa.key" "$work/o/server.key"
put "$pki/server-rsa-chain.pem" "$work/o/server.crt"
sleep 3
check "off: nothing reloads by itself (EC still served)" \
	wait_served "$port" "$ec" 1
check "off: no reload in the log" \
	bash -c "! grep -q reloading '$work/o.log'"

bad_conf=$work/bad.conf
printf 'watch maybe\n' >"$bad_conf"
out=$("$proxy" -t -c "$bad_conf" 2>&1)
check "-t: 'watch maybe' is refused with FILE:LINE" \
	grep -q "bad.conf:1: watch is on, off or poll" <<<"$out"

[ "$fails" -eq 0 ] || { for f in "$work"/*.log; do echo "--- $f"; tail -20 "$f"; done; }
echo "$checks checks, $fails failed"
[ "$fails" -eq 0 ]
