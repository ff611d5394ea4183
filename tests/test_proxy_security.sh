#!/usr/bin/env bash
# tests/test_proxy_security.sh BUILD - mtls-proxy against the findings of
# security issue #11 (proxy side), on loopback, against a copy of the test
# PKI in $MTLS_TEST_PKI (tests/run.sh).
#
#   one host decision (finding 2): SNI names of 254 and 255 bytes and other
#     names that are not host names are refused and never reach the
#     wildcard host's upstream; a wildcard name still routes to it; for
#     exact, wildcard, upper-case, two-labels-deep, unknown and no SNI the
#     upstream reached is always the one of the host the proxy logged
#   forwarded identity (finding 4): two URI SANs under allow_uri_prefix are
#     refused; one URI: the PROXY v2 URI TLV carries exactly it and the log
#     says id=; under allow_cn the identity is the CN: no URI TLV
#   escaping (finding 10): a CN with a newline and a URI SAN with quotes and
#     blanks stay inside their quoted values on one log line; a hostile SNI
#     leaves one refusal line
#   client_ca system (finding 11): -t and start-up warn, naming FILE:LINE
# Every process started here is killed by PID on exit; every wait is bounded.
set -uo pipefail
build=${1:?usage: tests/test_proxy_security.sh BUILD_DIR}
tests_dir=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd)
pki=${MTLS_TEST_PKI:?run through tests/run.sh (MTLS_TEST_PKI unset)}
proxy=$build/mtls-proxy
[ -x "$proxy" ] || { echo "FAIL: $proxy not built (make examples)"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 0; }

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
setup_work sec || exit 1
export PKI=$pki MTLS_TESTS=$tests_dir

fails=0 checks=0

# sec.py: backends and clients.
#   tag PORT NAME          says "backend=NAME" on connect, then echoes
#   pp2 PORT               parses a PROXY v2 header, answers one line with
#                          what it found (TLVs by name), then echoes
#   sni PORT HEX|- [CERT]  handshake with that SNI (hex bytes; - none),
#                          client certificate CERT (chain file stem in the
#                          PKI, "none": without); prints "port=LOCALPORT
#                          <first line>" or "port=LOCALPORT refused: why"
cat >"$work/sec.py" <<'PY'
import os, socket, socketserver, ssl, struct, sys
PKI = os.environ["PKI"]
SIG = b"\r\n\r\n\x00\r\nQUIT\n"

def serve(port, handler):
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    socketserver.ThreadingTCPServer(("127.0.0.1", port), handler).serve_forever()

def echo_rest(s):
    while True:
        d = s.recv(65536)
        if not d:
            return
        s.sendall(d)

def recv_n(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b

def tlvs(b):
    while b:
        t, n = b[0], struct.unpack("!H", b[1:3])[0]
        yield t, b[3:3 + n]
        b = b[3 + n:]

def pp2_line(s):
    h = recv_n(s, 16)
    if h[:12] != SIG:
        return "bad signature"
    body = recv_n(s, struct.unpack("!H", h[14:16])[0])
    rest = body[12:] if h[13] == 0x11 else body[36:] if h[13] == 0x21 else body
    f = []
    for t, v in tlvs(rest):
        if t == 0x20:
            f.append("ssl_client=%d verify=%d" % (v[0], struct.unpack("!I", v[1:5])[0]))
            for st, sv in tlvs(v[5:]):
                f.append({0x21: "version", 0x22: "cn"}.get(st, "sub%02x" % st) + "=" + sv.decode())
        elif t == 0xE0:
            f.append("uri=" + v.decode())
    return " ".join(f)

def client(port, sni, cert):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.load_verify_locations(PKI + "/ca.crt")
    if cert != "none":
        c.load_cert_chain(PKI + "/" + cert + "-chain.pem", PKI + "/" + cert + ".key")
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    me = "port=%d" % s.getsockname()[1]
    # bytes, not str: Python's IDNA codec would refuse the long labels
    # and odd bytes before they ever reach the proxy
    name = None if sni == "-" else bytes.fromhex(sni)
    try:
        t = c.wrap_socket(s, server_hostname=name)
        t.sendall(b"hello\n")
        line = b""
        while not line.endswith(b"\n"):
            d = t.recv(1)
            if not d:
                break
            line += d
        if not line:
            return "%s refused: closed without data" % me
        return "%s %s" % (me, line.decode(errors="replace").strip())
    except (ssl.SSLError, OSError) as e:
        return "%s refused: %s" % (me, e)
    finally:
        s.close()

cmd, a = sys.argv[1], sys.argv[2:]
if cmd == "tag":
    class T(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(b"backend=" + a[1].encode() + b"\n")
            echo_rest(self.request)
    serve(int(a[0]), T)
elif cmd == "pp2":
    class P(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall((pp2_line(self.request) + "\n").encode())
            echo_rest(self.request)
    serve(int(a[0]), P)
elif cmd == "sni":
    print(client(int(a[0]), a[1], a[2] if len(a) > 2 else "client-ec"))
PY
py() { in_place timeout 30 python3 "$work/sec.py" "$@"; }
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }

# (bounds generous for a loaded CI machine: both return as soon as found)
wait_in() { # wait_in FILE PATTERN: up to 20 s for FILE to contain it
	local i
	for ((i = 0; i < 200; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
conn_line() { # conn_line LOG PORT: the connection line of client port PORT
	local i
	for ((i = 0; i < 200; i++)); do
		if grep -q "conn client=127.0.0.1:$2 " "$1"; then
			grep "conn client=127.0.0.1:$2 " "$1" | head -1
			return 0
		fi
		sleep 0.1
	done
	return 1
}

tag_d=$(free_port) tag_a=$(free_port) tag_w=$(free_port) pp_b=$(free_port)
py tag "$tag_d" dflt & pids+=($!)
py tag "$tag_a" admin & pids+=($!)
py tag "$tag_w" wild & pids+=($!)
py pp2 "$pp_b" & pids+=($!)
p_sni=$(free_port) p_uri=$(free_port) p_cn=$(free_port) p_esc=$(free_port)
cat "$pki/admin-server.crt" "$pki/int.crt" >"$work/admin-chain.pem"
cat "$pki/wild-server.crt" "$pki/int.crt" >"$work/wild-chain.pem"

# The listen block's own (default) host asks for no client certificate;
# the wildcard host requires one: reaching its upstream without one is the
# bypass finding 2 describes.
conf=$work/sec.conf
cat >"$conf" <<EOF
listen 127.0.0.1:$p_sni {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    unknown_host default
    upstream dflt
    host admin.example.com {
        cert $work/admin-chain.pem
        key $pki/admin-server.key
        client_ca $pki/ca.crt
        client_auth require
        allow_uri spiffe://example.org/ns/test/sa/client
        upstream admin
    }
    host *.example.com {
        cert $work/wild-chain.pem
        key $pki/wild-server.key
        client_ca $pki/ca.crt
        client_auth require
        upstream wild
    }
}
listen 127.0.0.1:$p_uri {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    allow_uri_prefix spiffe://example.org/
    upstream pp
}
listen 127.0.0.1:$p_cn {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    allow_cn client.test
    upstream pp
}
listen 127.0.0.1:$p_esc {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca $pki/ca.crt
    upstream dflt
}
upstream dflt {
    target 127.0.0.1:$tag_d
}
upstream admin {
    target 127.0.0.1:$tag_a
}
upstream wild {
    target 127.0.0.1:$tag_w
}
upstream pp {
    target 127.0.0.1:$pp_b
    proxy_protocol v2
}
EOF
log=$work/sec.log
"$proxy" -c "$conf" 2>"$log" &
pids+=($!)
for p in "$tag_d" "$tag_a" "$tag_w" "$pp_b" "$p_sni" "$p_uri" "$p_cn" "$p_esc"; do
	wait_port "$p" || bad "port $p: nothing listens ($(tail -3 "$log"))"
done

# ---- finding 2: one host decision ---------------------------------------------
long254=$(printf 'a%.0s' $(seq 242)).example.com
long255=$(printf 'a%.0s' $(seq 243)).example.com
check "SNI test names are 254 and 255 bytes long" \
	test "${#long254}" -eq 254 -a "${#long255}" -eq 255
for name in "$long254" "$long255" "a..example.com" "x.example.com." \
	"a b.example.com" "a/b.example.com" $'evil\ninfo: forged.example.com'; do
	out=$(py sni "$p_sni" "$(hex "$name")" none)
	port=${out%% *}; port=${port#port=}
	line=$(conn_line "$log" "$port")
	short=$(printf '%q' "$name" | cut -c1-40)
	check "SNI '$short' (${#name} bytes), no certificate: refused ($out)" \
		grep -q "refused" <<<"$out"
	check "... it never reached the wildcard host's upstream (${line##*error=})" \
		bash -c "[ -n \"\$0\" ] && ! grep -q 'upstream=wild' <<<\"\$0\" && grep -q 'error=\"client: TLS handshake: .*not a host name' <<<\"\$0\"" "$line"
done
check "the hostile SNI left no line of its own in the log" \
	bash -c "! grep -q '^info: forged' '$log' && ! grep -q 'forged' '$log'"
out=$(py sni "$p_sni" "$(hex api.example.com)")
check "SNI api.example.com with a certificate: the wildcard host's upstream ($out)" \
	grep -q "backend=wild$" <<<"$out"
out=$(py sni "$p_sni" "$(hex api.example.com)" none)
check "SNI api.example.com without a certificate: refused ($out)" \
	bash -c "! grep -q backend= <<<\"\$0\"" "$out"

# The differential check: the upstream reached is always the one of the
# host the proxy logged (and each name goes to the host expected of it).
declare -A up_of=([admin.example.com]=admin ["*.example.com"]=wild [default]=dflt)
for pair in admin.example.com=admin.example.com ADMIN.Example.COM=admin.example.com \
	api.example.com="*.example.com" API.EXAMPLE.COM="*.example.com" \
	a_b.example.com="*.example.com" a.b.example.com=default other.test=default \
	-=default; do
	name=${pair%%=*} want=${pair#*=}
	sni_hex=-
	[ "$name" = - ] || sni_hex=$(hex "$name")
	out=$(py sni "$p_sni" "$sni_hex")
	port=${out%% *}; port=${port#port=}
	reached=${out##*backend=}
	line=$(conn_line "$log" "$port")
	host=$(sed -n 's/.* host=\([^ ]*\) .*/\1/p' <<<"$line")
	logged_up=$(sed -n 's/.* upstream=\([^ ]*\) .*/\1/p' <<<"$line")
	check "differential: SNI $name -> host $host (want $want), upstream $logged_up, reached $reached" \
		test "$host" = "$want" -a "$logged_up" = "${up_of[$want]}" -a "$reached" = "${up_of[$want]}"
done

# ---- finding 4: the identity the policy matched --------------------------------
out=$(py sni "$p_uri" - client-twouri)
check "two URI SANs under allow_uri_prefix: refused ($out)" grep -q "refused" <<<"$out"
port=${out%% *}; port=${port#port=}
line=$(conn_line "$log" "$port")
check "... the log says why (${line##*error=})" grep -q 'error="client: TLS handshake' <<<"$line"
out=$(py sni "$p_uri" -)
check "one URI SAN: the PROXY v2 URI TLV carries exactly it ($out)" \
	bash -c "grep -q ' cn=client.test uri=spiffe://example.org/ns/test/sa/client\$' <<<\"\$0\" &&
	[ \$(grep -o 'uri=' <<<\"\$0\" | wc -l) -eq 1 ]" "$out"
port=${out%% *}; port=${port#port=}
check "... and the log line says id= that URI" \
	grep -q ' id="spiffe://example.org/ns/test/sa/client" ' <<<"$(conn_line "$log" "$port")"
out=$(py sni "$p_cn" -)
check "allow_cn: the CN is forwarded, no URI TLV (the policy did not decide on one) ($out)" \
	bash -c "grep -q 'verify=0 version=TLSv1.[23] cn=client.test\$' <<<\"\$0\"" "$out"
port=${out%% *}; port=${port#port=}
check "... and the log line says id=\"client.test\"" \
	grep -q ' id="client.test" ' <<<"$(conn_line "$log" "$port")"

# ---- finding 10: escaping -------------------------------------------------------
out=$(py sni "$p_esc" - client-evil)
port=${out%% *}; port=${port#port=}
line=$(conn_line "$log" "$port")
echo "     logged: $line"
check "escaping: a client with a newline in its CN and quotes in its URI is served ($out)" \
	grep -q "backend=dflt" <<<"$out"
# (mbedTLS's DN text already shows the newline as '?' (2.28) or "\0A"
# (3.6), and the '=' as "\="; their backslashes are escaped here.)
check "escaping: the CN's newline stays inside subject=\"...\", escaped" \
	grep -q 'subject="CN=evil\(\\x0a\|?\|\\x5c0A\)info: conn client\(\\x5c\)\?=forged" id=' <<<"$line"
check "escaping: the URI's quotes are \\x22 inside id=\"...\"" \
	grep -q ' id="spiffe://example.org/ns/test/sa/x\\x22 id=\\x22spiffe:admin" upstream=dflt ' <<<"$line"
check "escaping: every log line starts with a timestamp (no forged line)" \
	bash -c "! grep -qv '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T' '$log'"

# The writer itself (examples/mtls-proxy/log.c): a value with a newline,
# a quote, a backslash, DEL and a non-ASCII byte, and a raw line with a
# newline and a carriage return (a call site that forgot pxy_log_value).
cat >"$work/log_unit.c" <<'C'
#include "log.h"
int main(void)
{
	char v[256];

	pxy_log(MTLS_LOG_INFO, "value=\"%s\"",
	        pxy_log_value(v, sizeof(v), "a\nb\"c\\d\x7f" "e\xc3\xa9 f"));
	pxy_log(MTLS_LOG_INFO, "raw=%s", "x\ninfo: forged\r");
	pxy_log(MTLS_LOG_INFO, "cut=%s", pxy_log_value(v, 7, "\n\n\n"));
	return 0;
}
C
src=$(cd "$tests_dir/../examples/mtls-proxy" && pwd)
if ${CC:-cc} -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -I"$src" \
	-I"$tests_dir/../include" -o "$work/log_unit" "$work/log_unit.c" \
	"$src/log.c" && "$work/log_unit" 2>"$work/log_unit.out"; then
	check "log.c: a value's newline, quote, backslash, DEL, non-ASCII bytes are \\xNN ($(head -1 "$work/log_unit.out"))" \
		grep -q 'info: value="a\\x0ab\\x22c\\x5cd\\x7fe\\xc3\\xa9 f"$' "$work/log_unit.out"
	check "log.c: a raw line with a newline stays one line" \
		grep -q 'info: raw=x\\x0ainfo: forged\\x0d$' "$work/log_unit.out"
	check "log.c: a value is cut at a whole escape" \
		grep -q 'info: cut=\\x0a$' "$work/log_unit.out"
	check "log.c: three lines written, three lines read" \
		test "$(wc -l <"$work/log_unit.out")" -eq 3
else
	bad "log.c unit test does not build or run"
fi

# ---- finding 11: client_ca system --------------------------------------------
p_sys=$(free_port)
cat >"$work/system.conf" <<EOF
listen 127.0.0.1:$p_sys {
    cert $pki/server-ec-chain.pem
    key $pki/server-ec.key
    client_ca system
    upstream dflt
}
upstream dflt {
    target 127.0.0.1:$tag_d
}
EOF
out=$("$proxy" -t -c "$work/system.conf" 2>&1)
rc=$?
check "client_ca system: -t still accepts it (rc $rc)" test "$rc" -eq 0
check "client_ca system: -t warns, naming FILE:LINE and why ($(grep WARN <<<"$out" | head -1))" \
	grep -q "warn: .*system.conf:4: WARNING: client_ca system lets every public CA" <<<"$out"
"$proxy" -c "$work/system.conf" 2>"$work/system.log" &
sys_pid=$!
pids+=("$sys_pid")
wait_port "$p_sys" || bad "proxy with client_ca system did not start"
check "client_ca system: start-up warns too" \
	grep -q "warn: .*system.conf:4: WARNING: client_ca system" "$work/system.log"
kill "$sys_pid"

if [ "$fails" -ne 0 ] || [ -n "${MTLS_TEST_VERBOSE:-}" ]; then
	echo "--- proxy log"
	cat "$log"
fi
echo "$checks checks, $fails failed"
[ "$fails" -eq 0 ]
