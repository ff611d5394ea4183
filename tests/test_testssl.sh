#!/usr/bin/env bash
# tests/test_testssl.sh BUILD - testssl.sh (Debian's testssl.sh package,
# installed by scripts/deps.sh) scans what the library serves by default,
# on loopback, client certificates required:
#   - examples/server with an EC (P-256) certificate
#   - mtls-proxy with an RSA certificate (a minimal config), so suites of
#     both key types are probed
# testssl needs no client certificate for this: every check it runs here
# reads the ServerHello, which comes before the server asks for one.
# Checks: protocols (-p), cipher categories (-s), forward secrecy (-f),
# every cipher testssl knows (-e) and the vulnerabilities (-U).  The JSON
# findings (--jsonfile) are judged by python3: the test fails on SSLv2/3 or
# TLS 1.0/1.1 offered, on any NULL, anonymous, export, LOW, 3DES/IDEA or
# obsolete CBC suite, on a suite outside the default list (forward-secret
# AEAD only), on any finding of severity LOW or above (LUCKY13, BEAST,
# SWEET32, ... "potentially vulnerable" included) and on a scan that did
# not produce the findings it needs.
# About 35 s per scan; each is bounded (timeout) and its servers killed by
# PID.  MTLS_TEST_VERBOSE=1 prints testssl's report even on success.
set -uo pipefail
build=${1:?usage: tests/test_testssl.sh BUILD_DIR}
build=$(cd "$build" && pwd)
pki=${MTLS_TEST_PKI:?run through tests/run.sh (MTLS_TEST_PKI unset)}
server=$build/examples/server
proxy=$build/mtls-proxy
testssl=$(command -v testssl || command -v testssl.sh) || {
	echo "FAIL: testssl.sh is not installed (scripts/deps.sh installs the Debian package testssl.sh)"
	exit 1
}
command -v python3 >/dev/null || { echo "FAIL: python3 missing"; exit 1; }
for b in "$server" "$proxy"; do
	[ -x "$b" ] || { echo "FAIL: $b not built (make tests)"; exit 1; }
done

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
setup_work testssl || exit 1

fails=0

# The judge: JSON findings of one scan -> a line per problem, exit 1 if any.
cat >"$work/judge.py" <<'PY'
import json, sys

findings = json.load(open(sys.argv[1]))
by_id = {}
for f in findings:
    by_id.setdefault(f.get("id", ""), []).append(f)
problems = []

def need(fid):
    if fid not in by_id:
        problems.append(f"{fid}: no finding (the check did not run)")
        return []
    return by_id[fid]

def first_of(*ids):
    # testssl renamed some ids between releases (PFS -> FS, AVERAGE -> OBSOLETED)
    for fid in ids:
        if fid in by_id:
            return by_id[fid]
    problems.append(f"{'/'.join(ids)}: no finding (the check did not run)")
    return []

# Protocols: TLS 1.2 (and 1.3 where built) only.
for fid in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
    for f in need(fid):
        if not f["finding"].startswith("not offered"):
            problems.append(f"{fid}: {f['finding']}")
for f in need("TLS1_2"):
    if not f["finding"].startswith("offered"):
        problems.append(f"TLS1_2: {f['finding']} (expected offered)")

# Cipher categories: nothing weak.
for fid in ("cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT",
            "cipherlist_LOW", "cipherlist_3DES_IDEA"):
    for f in need(fid):
        if not f["finding"].startswith("not offered"):
            problems.append(f"{fid}: {f['finding']}")
for f in first_of("cipherlist_OBSOLETED", "cipherlist_AVERAGE"):
    if not f["finding"].startswith("not offered"):
        problems.append(f"{f['id']} (obsolete CBC): {f['finding']}")
for f in first_of("FS", "PFS"):
    if f["severity"] != "OK":
        problems.append(f"{f['id']}: {f['finding']}")

# Every suite offered is one of the default list: ECDHE + AES-GCM or
# ChaCha20-Poly1305 on TLS 1.2, TLS 1.3's but CCM-8.
allowed = {"x1301", "x1302", "x1303", "x1304", "xc02b", "xc02c", "xc02f",
           "xc030", "xcca8", "xcca9"}
ciphers = [f for f in findings if f.get("id", "").startswith("cipher_x")]
if not ciphers:
    problems.append("cipher_x*: no cipher found offered (the -e scan failed)")
for f in ciphers:
    code = f["id"][len("cipher_"):]
    if code not in allowed:
        problems.append(f"suite offered outside the default list: {' '.join(f['finding'].split())}")

# Vulnerabilities: each present and not even "potentially" vulnerable.
for fid in ("heartbleed", "CCS", "ROBOT", "secure_renego", "CRIME_TLS",
            "POODLE_SSL", "fallback_SCSV", "SWEET32", "FREAK", "DROWN",
            "LOGJAM", "BEAST", "LUCKY13", "RC4"):
    need(fid)

# Anything testssl rates LOW or worse, whatever its id.
for f in findings:
    if f.get("severity") in ("LOW", "MEDIUM", "HIGH", "CRITICAL", "FATAL"):
        problems.append(f"{f['id']} [{f['severity']}]: {f['finding']}")
    elif f.get("id") == "scanProblem":
        problems.append(f"scanProblem: {f['finding']}")

offered = sorted(f["id"][len("cipher_"):] for f in ciphers)
print(f"  suites offered: {' '.join(offered)}")
for p in problems:
    print(f"  {p}")
sys.exit(1 if problems else 0)
PY

scan() { # scan NAME PORT: testssl against 127.0.0.1:PORT, then the judge
	local name=$1 port=$2 json=$work/$1.json out=$work/$1.txt rc start
	start=$(date +%s)
	timeout 240 "$testssl" --quiet --color 0 --warnings off --ip 127.0.0.1 \
		--connect-timeout 10 --openssl-timeout 10 \
		-p -s -f -e -U --jsonfile "$json" "127.0.0.1:$port" >"$out" 2>&1
	rc=$?
	echo "  testssl on $name: exit $rc, $(($(date +%s) - start)) s"
	if [ ! -s "$json" ]; then
		bad "$name: testssl wrote no JSON (exit $rc)"
		sed 's/^/    /' "$out"
		return
	fi
	if python3 "$work/judge.py" "$json"; then
		ok "$name: nothing weak offered (protocols, categories, suites, vulnerabilities)"
		[ "${MTLS_TEST_VERBOSE:-0}" = 1 ] && sed 's/^/    /' "$out"
	else
		bad "$name: testssl found something weak (report follows)"
		grep -v '^[[:space:]]*$' "$out" | sed 's/^/    /'
	fi
}

# ---- examples/server, EC certificate -------------------------------------
srv_port=$(free_port) || { echo "FAIL: no free port"; exit 1; }
"$server" "$srv_port" "$pki/server-ec-chain.pem" "$pki/server-ec.key" \
	"$pki/ca.crt" >"$work/server.log" 2>&1 &
pids+=($!)
if wait_port "$srv_port"; then
	scan examples-server "$srv_port"
else
	bad "examples/server did not start"
	sed 's/^/    /' "$work/server.log"
fi

# ---- mtls-proxy, RSA certificate -------------------------------------------
px_port=$(free_port) || { echo "FAIL: no free port"; exit 1; }
dead_port=$(free_port) || { echo "FAIL: no free port"; exit 1; }
cat >"$work/proxy.conf" <<EOF
# generated by tests/test_testssl.sh: nothing is ever forwarded (testssl
# presents no client certificate), the upstream need not exist
log_level warn
listen 127.0.0.1:$px_port {
    cert $pki/server-rsa-chain.pem
    key $pki/server-rsa.key
    client_ca $pki/ca.crt
    upstream nowhere
}
upstream nowhere {
    target 127.0.0.1:$dead_port
    tls off
}
EOF
"$proxy" -c "$work/proxy.conf" 2>"$work/proxy.log" &
pids+=($!)
if wait_port "$px_port"; then
	scan mtls-proxy "$px_port"
else
	bad "mtls-proxy did not start"
	sed 's/^/    /' "$work/proxy.log"
fi

echo "testssl: $((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
