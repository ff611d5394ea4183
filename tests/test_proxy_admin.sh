#!/usr/bin/env bash
# tests/test_proxy_admin.sh BUILD - mtls-proxy's admin endpoint ("admin
# ADDR:PORT": GET /metrics, GET /status), on loopback, against a copy of the
# test PKI in $MTLS_TEST_PKI (tests/run.sh).
#
#   config: admin is reported by -t; a bad address, a duplicate and a
#     wildcard name FILE:LINE; a non-loopback address warns
#   one process: handshakes made with python's ssl and openssl s_client
#     (4 accepted: 3 on the default host, 1 on the SNI host; 2 refused for
#     no client certificate, 1 for an unknown CA; a client that sends
#     nothing on a listener with handshake_timeout 1), then /metrics scraped
#     with curl: it parses as Prometheus text (a strict parser below: HELP
#     and TYPE once per family and before its samples, known types, label
#     syntax and escapes, no duplicate series) and the counters and label
#     sets are exactly those expected (handshakes by host, result and
#     reason; connections; bytes; target up; certificate and CRL expiry)
#   escaping: a CA whose file name holds '"' and '\' and whose subject
#     holds them too comes out escaped in labels and in JSON
#   /status parses as JSON and has version, mbedTLS version, uptime, pids,
#     listeners with hosts and upstream, upstream targets, certificates
#     with expiry, CRLs, handshake totals and reload state
#   bad requests: POST (405), an unknown path (404), garbage (400), a
#     header past 4 KiB (431), a slowloris request (closed by the
#     endpoint's timeout, within a bound), more clients than the cap
#     (closed at once); meanwhile a scrape and a proxied connection work
#   reloads: a good SIGHUP counts a success, a broken file a failure (the
#     proxy keeps serving), last_reload_success moves with the success
#   workers 2: handshakes counted across both workers add up to those made;
#     after a worker is killed and restarted the totals are unchanged
# Outcomes only: nothing here asserts how long anything takes (waits are
# bounded, never measured).  Every process started here is killed by PID.
set -uo pipefail
build=${1:?usage: tests/test_proxy_admin.sh BUILD_DIR}
tests_dir=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd)
pki=${MTLS_TEST_PKI:?run through tests/run.sh (MTLS_TEST_PKI unset)}
proxy=$build/mtls-proxy
[ -x "$proxy" ] || { echo "FAIL: $proxy not built (make examples)"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 0; }
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 0; }

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
setup_work admin || exit 1
export PKI=$pki MTLS_TESTS=$tests_dir

fails=0 checks=0

# adm.py: clients, a strict Prometheus text parser, checks on /status.
#   echo PORT                      plain TCP echo backend (peers.echo)
#   hs PORT MODE [SNI]             one client handshake; MODE good (sends
#                                  "ping\n", wants it back), nocert,
#                                  unknownca; prints "ok" or "refused"
#   prom URL                       scrapes, parses strictly; prints one line
#                                  per series: NAME{k="v",...} VALUE, labels
#                                  sorted and re-escaped; exit 1 if invalid
#   status URL                     /status: JSON with the fields; prints
#                                  "ok" or what is wrong
#   raw PORT BYTES_REPR            sends the bytes, prints the status line
#                                  (or "closed")
#   slow PORT LIMIT                sends half a request line and nothing
#                                  more: "closed" once the endpoint closes,
#                                  "open" after LIMIT seconds
#   mute PORT                      connects, sends nothing: "closed" once
#                                  the proxy closes it (20 s at most)
#   crowd PORT N                   N connections that send nothing; prints
#                                  how many were closed at once
cat >"$work/adm.py" <<'PY'
import json, os, re, socket, ssl, sys, time, urllib.request
sys.path.insert(0, os.environ["MTLS_TESTS"])
from peers import echo, read_to_close, recv_exact
PKI = os.environ["PKI"]

def hs(port, mode, sni="localhost"):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.load_verify_locations(PKI + "/ca.crt")
    c.load_verify_locations(PKI + "/int.crt")
    if mode == "good":
        c.load_cert_chain(PKI + "/client-ec-chain.pem", PKI + "/client-ec.key")
    elif mode == "unknownca":
        c.load_cert_chain(os.environ["UNKNOWN_CHAIN"], PKI + "/other-client.key")
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        t = c.wrap_socket(s, server_hostname=sni)
        t.sendall(b"ping\n")
        got = recv_exact(t, 5)
        t.close()
        print("ok" if got == b"ping\n" else "refused")
    except (OSError, ssl.SSLError):
        print("refused")

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LNAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r"(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|Inf)|NaN)"

def parse_labels(s, i):
    """Parses {k="v",...} from s[i] == '{'; returns (labels, next index)."""
    labels, i = {}, i + 1
    while s[i] != "}":
        m = re.compile(LNAME).match(s, i)
        if not m or s[m.end():m.end() + 2] != '="':
            raise ValueError("bad label at %r" % s[i:])
        k, i, v = m.group(0), m.end() + 2, []
        while s[i] != '"':
            if s[i] == "\\":
                e = s[i + 1]
                if e not in '\\"n':
                    raise ValueError("bad escape \\%s" % e)
                v.append("\n" if e == "n" else e)
                i += 2
            elif s[i] == "\n":
                raise ValueError("raw newline in a label value")
            else:
                v.append(s[i]); i += 1
        i += 1
        if k in labels:
            raise ValueError("label %s twice" % k)
        labels[k] = "".join(v)
        if s[i] == ",":
            i += 1
        elif s[i] != "}":
            raise ValueError("want , or } at %r" % s[i:])
    return labels, i + 1

def esc(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

def prom(url):
    r = urllib.request.urlopen(url, timeout=20)
    ctype = r.headers.get("Content-Type", "")
    if not ctype.startswith("text/plain; version=0.0.4"):
        raise SystemExit("bad Content-Type %r" % ctype)
    text = r.read().decode("utf-8")   # must be UTF-8
    if not text.endswith("\n"):
        raise SystemExit("no final newline")
    helps, types, seen, cur, out = set(), {}, set(), None, []
    for n, line in enumerate(text.split("\n")[:-1], 1):
        m = re.fullmatch(r"# (HELP|TYPE) (%s) (.*)" % NAME, line)
        if m:
            kind, name, rest = m.groups()
            if kind == "HELP":
                if name in helps: raise SystemExit("%d: HELP %s twice" % (n, name))
                helps.add(name)
            else:
                if name in types: raise SystemExit("%d: TYPE %s twice" % (n, name))
                if rest not in ("counter", "gauge", "untyped", "summary", "histogram"):
                    raise SystemExit("%d: bad type %r" % (n, rest))
                if any(k.split("{")[0] == name for k in seen):
                    raise SystemExit("%d: TYPE %s after its samples" % (n, name))
                types[name] = rest
            cur = name
            continue
        if line.startswith("#") or not line:
            raise SystemExit("%d: stray line %r" % (n, line))
        m = re.compile(NAME).match(line)
        if not m: raise SystemExit("%d: bad sample %r" % (n, line))
        name, i, labels = m.group(0), m.end(), {}
        try:
            if line[i:i + 1] == "{":
                labels, i = parse_labels(line, i)
        except (ValueError, IndexError) as e:
            raise SystemExit("%d: %s" % (n, e))
        m = re.fullmatch(r" (%s)( -?[0-9]+)?" % VALUE, line[i:])
        if not m: raise SystemExit("%d: bad value in %r" % (n, line))
        if name != cur or name not in types or name not in helps:
            raise SystemExit("%d: %s outside its family" % (n, name))
        if types[name] == "counter" and not name.endswith("_total"):
            raise SystemExit("%d: counter %s without _total" % (n, name))
        key = name + "{" + ",".join('%s="%s"' % (k, esc(labels[k]))
                                   for k in sorted(labels)) + "}"
        if key in seen: raise SystemExit("%d: duplicate series %s" % (n, key))
        seen.add(key)
        out.append("%s %s" % (key, m.group(1)))
    print("\n".join(out))

def status(url):
    d = json.load(urllib.request.urlopen(url, timeout=20))
    need = {"version": str, "mbedtls": str, "pid": int, "uptime_seconds": int,
            "workers": int, "worker_pids": list, "listeners": list,
            "upstreams": list, "certificates": list, "crls": list,
            "handshakes": dict, "reload": dict}
    bad = [k for k, t in need.items() if not isinstance(d.get(k), t)]
    for l in d.get("listeners", []):
        bad += [k for k in ("address", "upstream", "hosts", "connections_open") if k not in l]
    for u in d.get("upstreams", []):
        for t in u.get("targets", []):
            bad += [k for k in ("address", "up") if k not in t]
    for c in d.get("certificates", []):
        bad += [k for k in ("file", "subject", "not_after", "expires_in_seconds") if k not in c]
    for k in ("ok", "failed", "last_result", "last_success"):
        if k not in d.get("reload", {}): bad.append("reload." + k)
    print("ok" if not bad else "missing: " + ", ".join(bad))
    print(json.dumps(d), file=open(os.environ["STATUS_OUT"], "w"))

def raw(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        s.sendall(data)
        got = read_to_close(s, 20) or b""
    except OSError:
        got = b""
    print(got.split(b"\r\n")[0].decode() if got else "closed")

def slow(port, limit):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"GET /met")
    print("closed" if read_to_close(s, limit) is not None else "open")

def mute(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    print("closed" if read_to_close(s, 20) is not None else "open")

def crowd(port, n):
    socks = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(n)]
    time.sleep(1)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            closed += s.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    print(closed)
    for s in socks:
        s.close()

cmd, a = sys.argv[1], sys.argv[2:]
if cmd == "echo": echo(int(a[0]))
elif cmd == "hs": hs(int(a[0]), a[1], *(a[2:3]))
elif cmd == "prom": prom(a[0])
elif cmd == "status": status(a[0])
elif cmd == "raw": raw(int(a[0]), eval(a[1]))
elif cmd == "slow": slow(int(a[0]), float(a[1]))
elif cmd == "mute": mute(int(a[0]))
elif cmd == "crowd": crowd(int(a[0]), int(a[1]))
PY
py() { in_place timeout 90 python3 "$work/adm.py" "$@"; }

# A CA nobody trusts, sent with its client certificate (unknown_ca, not
# missing_intermediate), and a CA whose file name and subject need escaping.
cat "$pki/other-client.crt" "$pki/other-ca.crt" >"$work/unknown-chain.pem"
export UNKNOWN_CHAIN=$work/unknown-chain.pem
odd="$work/we\"ird\\ca.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$work/odd.key" -out "$odd" -days 30 \
	-subj '/O=q\"uote\\back/CN=odd CA' 2>/dev/null ||
	{ echo "FAIL: openssl req"; exit 1; }
cat "$pki/ca.crt" >"$work/ca-bundle.pem"

echo_port=$(free_port) lp=$(free_port) ap=$(free_port) lp2=$(free_port)
python3 "$work/adm.py" echo "$echo_port" &
pids+=($!)

conf=$work/proxy.conf
write_conf() { # write_conf WORKERS
	cat >"$conf" <<EOF
# generated by tests/test_proxy_admin.sh
workers $1
admin 127.0.0.1:$ap
# reloads are counted per SIGHUP below: no reload of its own when the file
# changes (tests/test_proxy_watch.sh covers watching)
watch off
listen 127.0.0.1:$lp {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    crl $pki/ca.crl
    handshake_timeout 30
    upstream main
    host admin.example.com {
        cert $pki/admin-server.crt
        key $pki/admin-server.key
        upstream main
    }
}
listen 127.0.0.1:$lp2 {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    handshake_timeout 1
    upstream main
}
upstream main {
    target 127.0.0.1:$echo_port
}
# The odd CA is another upstream's trust: loaded, never used.
upstream odd {
    target 127.0.0.1:$echo_port
    tls on
    ca $odd
}
EOF
}

# ---- config: -t ----------------------------------------------------------------
write_conf 1
out=$("$proxy" -t -c "$conf" 2>&1)
check "-t reports the admin endpoint" grep -q "admin endpoint http://127.0.0.1:$ap" <<<"$out"
check "-t: loopback admin, no warning" test "$(grep -c "not a loopback" <<<"$out")" = 0
printf 'admin 127.0.0.1:70000\nadmin *:9100\nadmin 127.0.0.1:9100\nadmin 127.0.0.1:9101\n' >"$work/bad.conf"
out=$("$proxy" -t -c "$work/bad.conf" 2>&1)
check "-t: bad admin port named with FILE:LINE" grep -q "bad.conf:1: .*bad port" <<<"$out"
check "-t: wildcard admin refused with FILE:LINE" grep -q "bad.conf:2: admin wants an address" <<<"$out"
check "-t: duplicate admin named with FILE:LINE" grep -q "bad.conf:4: duplicate 'admin' (first on line 3)" <<<"$out"
sed "s/^admin .*/admin 0.0.0.0:$ap/" "$conf" >"$work/open.conf"
out=$("$proxy" -t -c "$work/open.conf" 2>&1)
check "-t: non-loopback admin warns with FILE:LINE" grep -q "open.conf:3: warning: admin 0.0.0.0:$ap is not a loopback address" <<<"$out"

# ---- one process: counters, labels, formats --------------------------------------
start_proxy() { # start_proxy LOG
	"$proxy" -c "$conf" 2>"$1" &
	ppid=$!
	pids+=("$ppid")
	wait_port "$lp" && wait_port "$ap"
}
start_proxy "$work/p1.log" || { bad "proxy starts"; cat "$work/p1.log"; exit 1; }
check "start-up logs the admin endpoint" grep -q "admin: serving GET /metrics and /status on http://127.0.0.1:$ap" "$work/p1.log"

# Counted too: wait_port's probe, a TCP connection closed before any
# ClientHello (reason "closed").
res=""
for m in good good good nocert nocert unknownca; do res+="$(py hs "$lp" "$m") "; done
res+=$(py hs "$lp" good admin.example.com)
check "handshakes: 4 accepted, 3 refused ($res)" test "$res" = "ok ok ok refused refused refused ok"
# openssl s_client too: one more accepted handshake on the default host.
echo ping | timeout 20 openssl s_client -connect "127.0.0.1:$lp" -quiet \
	-CAfile "$pki/ca.crt" -cert "$pki/client-ec.crt" -key "$pki/client-ec.key" \
	-cert_chain "$pki/int.crt" >"$work/sc.out" 2>/dev/null
check "openssl s_client gets its echo" grep -qx ping "$work/sc.out"
check "a client that sends nothing is closed by handshake_timeout 1" test "$(py mute "$lp2")" = closed

url=http://127.0.0.1:$ap
scrape() { py prom "$url/metrics" >"$work/m.txt" 2>"$work/m.err"; }
# Connections end when the proxy sees the clients go: bounded wait for all.
for ((i = 0; i < 100; i++)); do
	scrape && grep -q "^mtls_connections_open{listener=\"127.0.0.1:$lp\"} 0$" "$work/m.txt" &&
		grep -q "^mtls_connections_total{host=\"default\",listener=\"127.0.0.1:$lp\"} 8$" "$work/m.txt" && break
	sleep 0.1
done
check "/metrics parses as Prometheus text" scrape
[ -s "$work/m.err" ] && cat "$work/m.err"
L="listener=\"127.0.0.1:$lp\""
grep '^mtls_handshakes_total' "$work/m.txt" | grep -F "$L" | sort >"$work/hs.got"
sort >"$work/hs.want" <<EOF
mtls_handshakes_total{host="admin.example.com",$L,reason="none",result="ok"} 1
mtls_handshakes_total{host="default",$L,reason="closed",result="failed"} 1
mtls_handshakes_total{host="default",$L,reason="none",result="ok"} 4
mtls_handshakes_total{host="default",$L,reason="peer_no_cert",result="failed"} 2
mtls_handshakes_total{host="default",$L,reason="unknown_ca",result="failed"} 1
EOF
if diff -u "$work/hs.want" "$work/hs.got"; then ok "handshakes_total: exact series and values"
else bad "handshakes_total: exact series and values"; fi
want() { # want DESCRIPTION LINE: the scrape has exactly that line
	check "$1" grep -qxF -- "$2" "$work/m.txt"
}
want "connections_open 0 after the clients left" "mtls_connections_open{$L} 0"
want "handshake timeout counted as reason timeout" "mtls_handshakes_total{host=\"default\",listener=\"127.0.0.1:$lp2\",reason=\"timeout\",result=\"failed\"} 1"
want "connections_total on the default host: 8" "mtls_connections_total{host=\"default\",$L} 8"
want "connections_total on the SNI host: 1" "mtls_connections_total{host=\"admin.example.com\",$L} 1"
want "bytes client to upstream: 5 echoes of 5 bytes" 'mtls_bytes_total{direction="client_to_upstream"} 25'
want "bytes upstream to client: 25" 'mtls_bytes_total{direction="upstream_to_client"} 25'
want "target without health checks is up" "mtls_upstream_target_up{target=\"127.0.0.1:$echo_port\",upstream=\"main\"} 1"
want "reloads: none yet (success)" 'mtls_reloads_total{result="ok"} 0'
want "reloads: none yet (failure)" 'mtls_reloads_total{result="failed"} 0'
check "cert expiry: the leaf, positive" grep -qE "^mtls_cert_expiry_seconds\{file=\"$pki/server-ec-chain.pem\",subject=\"CN=localhost\"\} [1-9][0-9]*$" "$work/m.txt"
check "cert expiry: the intermediate sent with it" grep -qE "^mtls_cert_expiry_seconds\{file=\"$pki/server-ec-chain.pem\",subject=\"CN=mtls Test Intermediate CA\"\} [1-9]" "$work/m.txt"
check "cert expiry: the client CA" grep -qE "^mtls_cert_expiry_seconds\{file=\"$pki/ca.crt\",subject=\"O=mtls tests, CN=mtls Test Root CA\"\} [1-9]" "$work/m.txt"
check "cert expiry: the SNI host's leaf" grep -qE "^mtls_cert_expiry_seconds\{file=\"$pki/admin-server.crt\",subject=\"CN=admin.example.com\"\} [1-9]" "$work/m.txt"
check "CRL next update" grep -qE "^mtls_crl_next_update_seconds\{file=\"$pki/ca.crl\"\} [1-9]" "$work/m.txt"
# The odd CA: file work/we"ird\ca.pem, subject as mbedTLS writes it
# (O=q\"uote\\back, CN=odd CA): each '"' and '\' escaped once more.
esc_work=${work//\\/\\\\}
check "label escaping of '\"' and '\\' (file and subject)" grep -qF \
	"mtls_cert_expiry_seconds{file=\"$esc_work/we\\\"ird\\\\ca.pem\",subject=\"O=q\\\\\\\"uote\\\\\\\\back, CN=odd CA\"}" \
	"$(readlink -f "$work/m.txt")"
# The same in JSON, and /status as a whole.
export STATUS_OUT=$work/status.json WORK=$work
check "/status parses as JSON with every field" test "$(py status "$url/status")" = ok
check "/status: the odd CA's file and subject round-trip through JSON" python3 -c '
import json, os, sys
d = json.load(open(os.environ["STATUS_OUT"]))
w = os.environ["WORK"]
sys.exit(not any(c["file"] == w + "/we\"ird\\ca.pem" and
                 c["subject"] == "O=q\\\"uote\\\\back, CN=odd CA"
                 for c in d["certificates"]))'
check "/status: listener, host, upstream, handshakes" python3 -c '
import json, os, sys
d = json.load(open(os.environ["STATUS_OUT"]))
l = d["listeners"][0]
sys.exit(not (l["address"].endswith(":" + sys.argv[1]) and l["upstream"] == "main"
              and [h["name"] for h in l["hosts"]] == ["admin.example.com"]
              and d["handshakes"] == {"ok": 5, "failed": 5}
              and d["workers"] == 1 and d["worker_pids"] == [d["pid"]]
              and d["upstreams"][0]["targets"][0]["up"] is True))' "$lp"

# ---- bad requests ------------------------------------------------------------------
check "POST: 405" test "$(py raw "$ap" "b'POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n'")" = "HTTP/1.1 405 Method Not Allowed"
check "unknown path: 404" test "$(py raw "$ap" "b'GET /admin HTTP/1.1\r\n\r\n'")" = "HTTP/1.1 404 Not Found"
check "garbage: 400" test "$(py raw "$ap" "b'hello\r\n\r\n'")" = "HTTP/1.1 400 Bad Request"
check "header past 4 KiB: 431" test "$(py raw "$ap" "b'GET /metrics HTTP/1.1\r\nX: ' + b'a' * 8192")" = "HTTP/1.1 431 Request Header Fields Too Large"
check "HEAD /status: 200" test "$(py raw "$ap" "b'HEAD /status HTTP/1.0\r\n\r\n'")" = "HTTP/1.1 200 OK"
py slow "$ap" 30 >"$work/slow.out" &
slow_pid=$!
pids+=("$slow_pid")
crowd=$(py crowd "$ap" 24)
check "more clients than the cap (16, one of them slow): 8 or 9 of 24 closed at once ($crowd)" \
	test "${crowd:-0}" -ge 8 -a "${crowd:-0}" -le 9
check "a scrape works while a slowloris client waits" scrape
check "a proxied connection works meanwhile" test "$(py hs "$lp" good)" = ok
wait "$slow_pid"
check "slowloris request closed within the bound" grep -qx closed "$work/slow.out"
check "proxy still running" kill -0 "$ppid"

# ---- reloads -----------------------------------------------------------------------
sleep 1 # the timestamp is in whole seconds: a later success shows a larger one
t0=$(sed -n 's/^mtls_last_reload_success_timestamp_seconds{} //p' "$work/m.txt")
kill -HUP "$ppid"
for ((i = 0; i < 100; i++)); do
	scrape && grep -qx 'mtls_reloads_total{result="ok"} 1' "$work/m.txt" && break
	sleep 0.1
done
want "good SIGHUP: one success" 'mtls_reloads_total{result="ok"} 1'
t1=$(sed -n 's/^mtls_last_reload_success_timestamp_seconds{} //p' "$work/m.txt")
check "last_reload_success moved ($t0 -> $t1)" test "${t1:-0}" -gt "${t0:-0}"
cp "$conf" "$work/good.conf"
echo "nonsense directive" >>"$conf"
kill -HUP "$ppid"
for ((i = 0; i < 100; i++)); do
	scrape && grep -qx 'mtls_reloads_total{result="failed"} 1' "$work/m.txt" && break
	sleep 0.1
done
want "broken SIGHUP: one failure" 'mtls_reloads_total{result="failed"} 1'
want "... the success count unchanged" 'mtls_reloads_total{result="ok"} 1'
check "... last_reload_success unchanged" grep -qx "mtls_last_reload_success_timestamp_seconds{} $t1" "$work/m.txt"
check "... and the proxy still serves" test "$(py hs "$lp" good)" = ok
want "counters survive reloads" "mtls_handshakes_total{host=\"default\",$L,reason=\"peer_no_cert\",result=\"failed\"} 2"
cp "$work/good.conf" "$conf"
kill "$ppid"
wait "$ppid"
check "proxy stops cleanly (exit 0)" test $? = 0
grep -E " error: |AddressSanitizer|runtime error" "$work/p1.log" | grep -v "reload failed" && bad "no errors in the log"

# ---- workers 2 ------------------------------------------------------------------------
write_conf 2
start_proxy "$work/p2.log" || { bad "workers 2: proxy starts"; cat "$work/p2.log"; exit 1; }
n=0
for ((i = 0; i < 20; i++)); do [ "$(py hs "$lp" good)" = ok ] && n=$((n + 1)); done
check "workers 2: 20 handshakes made ($n)" test "$n" = 20
export STATUS_OUT=$work/status2.json
for ((i = 0; i < 100; i++)); do
	[ "$(py status "$url/status" 2>/dev/null)" = ok ] &&
		python3 -c 'import json,os,sys; d=json.load(open(os.environ["STATUS_OUT"])); sys.exit(len(d["worker_pids"]) != 2)' && break
	sleep 0.1
done
check "workers 2: /status lists both worker pids" python3 -c 'import json,os,sys; d=json.load(open(os.environ["STATUS_OUT"])); sys.exit(not (d["workers"] == 2 and len(set(d["worker_pids"])) == 2))'
scrape
want "workers 2: handshakes across both workers = 20" "mtls_handshakes_total{host=\"default\",$L,reason=\"none\",result=\"ok\"} 20"
# Kill the worker that does not serve the endpoint; its slot keeps its totals.
victim=$(python3 -c 'import json,os; d=json.load(open(os.environ["STATUS_OUT"])); print([p for p in d["worker_pids"] if p != d["pid"]][0])')
kill -9 "$victim"
for ((i = 0; i < 100; i++)); do
	py status "$url/status" >/dev/null 2>&1 &&
		python3 -c 'import json,os,sys; d=json.load(open(os.environ["STATUS_OUT"])); sys.exit(not (d["worker_restarts"] == 1 and len(d["worker_pids"]) == 2))' && break
	sleep 0.2
done
check "workers 2: the killed worker was restarted" python3 -c 'import json,os,sys; d=json.load(open(os.environ["STATUS_OUT"])); sys.exit(not (d["worker_restarts"] == 1 and int(sys.argv[1]) not in d["worker_pids"]))' "$victim"
scrape
want "workers 2: totals kept across the restart (20)" "mtls_handshakes_total{host=\"default\",$L,reason=\"none\",result=\"ok\"} 20"
for ((i = 0; i < 4; i++)); do py hs "$lp" nocert >/dev/null; done
scrape
want "workers 2: refusals counted after the restart (4)" "mtls_handshakes_total{host=\"default\",$L,reason=\"peer_no_cert\",result=\"failed\"} 4"
want "workers 2: no SIGHUP, no reloads" 'mtls_reloads_total{result="ok"} 0'
kill "$ppid"
wait "$ppid"
check "workers 2: the supervisor stops cleanly (exit 0)" test $? = 0
grep -E " error: |AddressSanitizer|runtime error" "$work/p2.log" |
	grep -v "died of signal 9; restarting" && bad "workers 2: no other errors in the log"

echo "$checks checks, $fails failed"
[ "$fails" -eq 0 ]
