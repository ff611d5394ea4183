#!/usr/bin/env bash
# Interoperability with real peers on loopback: our example server
# (BUILD/examples/server) against openssl s_client and curl, and our example
# client (BUILD/examples/client) against openssl s_server and nginx.
#   tests/test_interop.sh BUILD
# Uses the PKI in $MTLS_TEST_PKI (tests/run.sh makes one), else makes its
# own.  Ports are random free high ports; every background process is ours,
# started here and killed by its PID on exit; every wait is bounded.
# Prints one line per check; exits non-zero if any check fails.  Only the
# nginx part is skipped (with a message) when nginx cannot be installed.
set -uo pipefail

build=${1:?usage: tests/test_interop.sh BUILD}
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd)
server_bin=$build/examples/server
client_bin=$build/examples/client
T=10 # seconds allowed to any one peer program

for b in "$server_bin" "$client_bin"; do
	[[ -x $b ]] || { echo "test_interop: $b missing (make examples)"; exit 1; }
done
for tool in openssl curl timeout ss; do
	command -v "$tool" >/dev/null || { echo "test_interop: $tool missing"; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mtls-interop.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n ${MTLS_TEST_PKI:-} && -f ${MTLS_TEST_PKI}/ca.crt ]]; then
	pki=$MTLS_TEST_PKI
else
	pki=$work/pki
	"$here/pki.sh" "$pki" >/dev/null || { echo "test_interop: pki.sh failed"; exit 1; }
fi
P() { printf '%s/%s' "$pki" "$1"; }

# shellcheck source=tests/lib.sh
. "$here/lib.sh" # free_port, wait_port (its own check counts pass/fail)
pass=0 fail=0
check() { # check DESCRIPTION COMMAND...: the command's status decides
	local what=$1
	shift
	if "$@"; then
		echo "ok   - $what"
		pass=$((pass + 1))
	else
		echo "FAIL - $what"
		fail=$((fail + 1))
	fi
}
has() { grep -qF -- "$2" "$1"; }   # has FILE TEXT
fails() { ! "$@"; }
lacks() { ! grep -qF -- "$2" "$1"; }
show() { # show FILE: the file, indented, when a check failed
	sed -e 's/^/    | /' "$1" | head -20
}


# Waits (at most ~10 s) until something listens on PORT and process PID
# lives.  Probes with ss, so the server sees no connection.
wait_listen() {
	local port=$1 pid=$2 i
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || return 1
		ss -Htln "sport = :$port" | grep -q . && return 0
		sleep 0.1
	done
	return 1
}

# start NAME LOG COMMAND... (the command gets the port as $PORT via
# substitution of the literal word @PORT@): starts it in the background on
# a free port, retrying a few ports; sets $port.  Returns non-zero if it
# never listens.
start() {
	local log=$1 try args a pid
	shift
	for try in 1 2 3 4 5; do
		port=$(free_port) || return 1
		args=()
		for a in "$@"; do args+=("${a//@PORT@/$port}"); done
		"${args[@]}" >"$log" 2>&1 </dev/null &
		pid=$!
		pids+=("$pid")
		if wait_listen "$port" "$pid"; then
			last_pid=$pid
			return 0
		fi
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	return 1
}

stop() { # stop PID
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# TLS versions to try: 1.3 only when the build's mbedTLS has it (3.x).
mbed=$("$client_bin" --version | awk '{print $2}')
# make MBEDTLS=tuned: mbedTLS 3.6 with tuned/patches (its TLS 1.3 server
# sends the alerts after its Finished under the keys the client expects).
tuned=0
"$client_bin" --version | grep -q '(tuned)' && tuned=1
versions=(1.2)
[[ $mbed == 3.* ]] && versions+=(1.3)
echo "# mbedTLS $mbed: TLS ${versions[*]}"

# ---- our server <- openssl s_client, curl ----------------------------------

# s_client_to LOGPREFIX VERSION CERT KEY [CHAIN]: sends a line, prints what
# came back into LOGPREFIX.out (and stderr into .err).
s_client_to() {
	local out=$1 v=$2 cert=$3 key=$4 chain=${5:-}
	local args=(-connect "127.0.0.1:$srv_port" -servername localhost
	            -CAfile "$(P ca.crt)" -verify_return_error -ign_eof
	            "-tls1_${v#1.}")
	[[ -n $cert ]] && args+=(-cert "$cert" -key "$key")
	[[ -n $chain ]] && args+=(-cert_chain "$chain")
	printf 'hello-interop\n' |
		timeout "$T" openssl s_client "${args[@]}" >"$out.out" 2>"$out.err"
	return 0
}

# The server logged LINE since COUNT lines (the log is ours alone).
logged_since() { tail -n +"$(($2 + 1))" "$1" | grep -qF -- "$3"; }

srv_log=$work/server.log
if start "$srv_log" "$server_bin" @PORT@ "$(P server-ec-chain.pem)" \
	"$(P server-ec.key)" "$(P ca.crt)" "$(P int.crl)"; then
	srv_port=$port
	srv_pid=$last_pid
	check "our server listens on 127.0.0.1:$srv_port (with int.crl)" true
else
	check "our server starts" false
	show "$srv_log"
	srv_port=
fi

if [[ -n $srv_port ]]; then
	for v in "${versions[@]}"; do
		o=$work/sc-good-$v
		s_client_to "$o" "$v" "$(P client-ec.crt)" "$(P client-ec.key)" "$(P int.crt)"
		check "TLS $v: s_client with a good certificate is accepted and greeted by subject" \
			has "$o.out" "hello CN=client.test, you said: hello-interop" ||
			{ show "$o.out"; show "$o.err"; }
		check "TLS $v: our server reports the client and the version" \
			has "$srv_log" "client CN=client.test (sha256 " &&
			check "TLS $v: ... over TLSv$v" has "$srv_log" "over TLSv$v"

		for case in "no certificate||client certificate required" \
			"other CA|other-client|not correctly signed by the trusted CA" \
			"expired|client-expired|validity has expired" \
			"revoked|client-revoked|has been revoked" \
			"wrong EKU|client-wrongeku|extendedKeyUsage"; do
			IFS='|' read -r what name why <<<"$case"
			n=$(wc -l <"$srv_log")
			o=$work/sc-$name-$v
			if [[ -z $name ]]; then
				s_client_to "$o" "$v" "" ""
			elif [[ $name == other-client ]]; then
				s_client_to "$o" "$v" "$(P "$name.crt")" "$(P "$name.key")"
			else
				s_client_to "$o" "$v" "$(P "$name.crt")" "$(P "$name.key")" "$(P int.crt)"
			fi
			check "TLS $v: s_client with $what gets no reply" \
				lacks "$o.out" "you said" || show "$o.out"
			check "TLS $v: our server refuses $what: \"$why\"" \
				logged_since "$srv_log" "$n" "$why" || show "$srv_log"
		done

		# TLS 1.3: a post-handshake handshake message (a client's
		# KeyUpdate, which mbedTLS 3.6 does not support) reaches a server
		# connection whose handshake state is gone (tuned build: patch
		# 0008 frees it when the handshake is over): that connection ends,
		# the server lives on and serves the next client.
		if [[ $v == 1.3 ]]; then
			o=$work/sc-keyupdate
			printf 'k\nhello-interop\n' |
				timeout "$T" openssl s_client -connect "127.0.0.1:$srv_port" \
					-servername localhost -CAfile "$(P ca.crt)" \
					-verify_return_error -tls1_3 -cert "$(P client-ec.crt)" \
					-key "$(P client-ec.key)" -cert_chain "$(P int.crt)" \
					>"$o.out" 2>"$o.err"
			check "TLS 1.3: s_client sent a KeyUpdate after the handshake" \
				has "$o.err" "KEYUPDATE" || show "$o.err"
			check "TLS 1.3: the server is still running after it" kill -0 "$srv_pid"
			s_client_to "$o-next" "$v" "$(P client-ec.crt)" "$(P client-ec.key)" "$(P int.crt)"
			check "TLS 1.3: ... and greets the next client" \
				has "$o-next.out" "hello CN=client.test, you said: hello-interop" ||
				{ show "$o-next.out"; show "$o-next.err"; }
		fi

		# curl: sends an HTTP request; the echo server answers without
		# HTTP framing, hence --http0.9.
		o=$work/curl-$v
		tls=(--tlsv1.2 --tls-max 1.2)
		[[ $v == 1.3 ]] && tls=(--tlsv1.3 --tls-max 1.3)
		timeout "$T" curl -sS --http0.9 --max-time "$T" "${tls[@]}" \
			--cert "$(P client-ec-chain.pem)" --key "$(P client-ec.key)" \
			--cacert "$(P ca.crt)" "https://localhost:$srv_port/" \
			>"$o.out" 2>"$o.err"
		check "TLS $v: curl with a good certificate gets the greeting" \
			has "$o.out" "hello CN=client.test, you said: GET / HTTP/1.1" ||
			{ show "$o.out"; show "$o.err"; }
		o=$work/curl-nocert-$v
		timeout "$T" curl -sS --http0.9 --max-time "$T" "${tls[@]}" \
			--cacert "$(P ca.crt)" "https://localhost:$srv_port/" \
			>"$o.out" 2>"$o.err"
		check "TLS $v: curl without a certificate gets no greeting" \
			lacks "$o.out" "you said" || show "$o.out"
	done
	# TLS 1.3 on mbedTLS 3.6: the server's refusal is sent under keys the
	# client has left (README, Troubleshooting).  Our client says what
	# that means; the reason is in the server's log.  The tuned build
	# carries a fix (tuned/patches/0003-*): the client reads the alert.
	if [[ $mbed == 3.* ]]; then
		o=$work/cl-self-13
		n=$(wc -l <"$srv_log")
		timeout "$T" "$client_bin" localhost "$srv_port" "$(P other-client.crt)" \
			"$(P other-client.key)" "$(P ca.crt)" hello >"$o.out" 2>"$o.err"
		if ((tuned)); then
			check "TLS 1.3 (tuned build): our client refused by our server reads the server's alert" \
				has "$o.err" "upstream refused our client certificate (alert " ||
				show "$o.err"
		else
			check "TLS 1.3: our client refused by our server says it could not decrypt the alert and why that is likely" \
				has "$o.err" "upstream aborted the connection with a TLS 1.3 alert that could not be decrypted (it most likely refused our client certificate)" ||
				show "$o.err"
		fi
		check "TLS 1.3: ... and the server logged the real reason" \
			logged_since "$srv_log" "$n" "not correctly signed by the trusted CA" || show "$srv_log"
	fi
	stop "$srv_pid"
fi

# ---- our client -> openssl s_server -----------------------------------------

# s_server_on LOG VERSION CERT KEY: -www server requiring a client certificate.
s_server_on() {
	start "$1" openssl s_server -accept "127.0.0.1:@PORT@" "-tls1_${2#1.}" \
		-Verify 1 -verify_return_error -CAfile "$(P ca.crt)" \
		-cert "$3" -key "$4" -cert_chain "$(P int.crt)" -www -quiet
}
get=$'GET / HTTP/1.0\r\n\r\n'
client() { # client OUT HOST CERT KEY CA [MESSAGE]: our client; its status
	local out=$1
	shift
	timeout "$T" "$client_bin" "$1" "$port" "${@:2}" >"$out.out" 2>"$out.err"
}

for v in "${versions[@]}"; do
	if ! s_server_on "$work/ss-$v.log" "$v" "$(P server-ec.crt)" "$(P server-ec.key)"; then
		check "TLS $v: openssl s_server starts" false
		continue
	fi
	ss_pid=$last_pid
	o=$work/cl-ss-$v
	check "TLS $v: our client with a good pair reads s_server's page" \
		client "$o" localhost "$(P client-ec-chain.pem)" "$(P client-ec.key)" "$(P ca.crt)" "$get"
	check "TLS $v: ... which is the HTTP 200 answer" has "$o.out" "HTTP/1.0 200 ok" ||
		{ show "$o.out"; show "$o.err"; }
	check "TLS $v: ... and names the protocol" has "$o.out" "TLSv$v"
	o=$work/cl-ss-ip-$v
	check "TLS $v: our client reaches s_server as 127.0.0.1 (IP SAN)" \
		client "$o" 127.0.0.1 "$(P client-ec-chain.pem)" "$(P client-ec.key)" "$(P ca.crt)" "$get"
	o=$work/cl-ss-other-$v
	check "TLS $v: s_server refuses our client with another CA's pair" \
		fails client "$o" localhost "$(P other-client.crt)" "$(P other-client.key)" "$(P ca.crt)" "$get"
	check "TLS $v: ... our client says the upstream refused its certificate, naming the alert" \
		has "$o.err" "upstream refused our client certificate (alert unknown_ca)" ||
		show "$o.err"
	o=$work/cl-ss-none-$v
	check "TLS $v: s_server refuses our client without a certificate" \
		fails client "$o" localhost - - "$(P ca.crt)" "$get"
	o=$work/cl-ss-untrusted-$v
	check "TLS $v: our client refuses s_server from an unknown CA" \
		fails client "$o" localhost "$(P client-ec-chain.pem)" "$(P client-ec.key)" "$(P other-ca.crt)" "$get"
	check "TLS $v: ... as untrusted" has "$o.err" "refused" || show "$o.err"
	stop "$ss_pid"

	if s_server_on "$work/ss-admin-$v.log" "$v" "$(P admin-server.crt)" "$(P admin-server.key)"; then
		o=$work/cl-ss-name-$v
		check "TLS $v: our client refuses s_server whose certificate is for another name" \
			fails client "$o" localhost "$(P client-ec-chain.pem)" "$(P client-ec.key)" "$(P ca.crt)" "$get"
		check "TLS $v: ... saying so" has "$o.err" "not valid for localhost" || show "$o.err"
		stop "$last_pid"
	else
		check "TLS $v: openssl s_server (admin certificate) starts" false
	fi
done

# ---- our client -> a TLS-1.2-only server with an RSA certificate -----------
# Under default versions our client offers TLS 1.3, hence RSA-PSS; such a
# server signs its ServerKeyExchange with the first RSA scheme in our list.
# mbedTLS 3.6.6's TLS 1.2 client refused RSA-PSS there (-0x6600, "A field in
# a message was incorrect"): the library offers PKCS#1 v1.5 first on it.
if start "$work/ss-rsa12.log" openssl s_server -accept "127.0.0.1:@PORT@" -tls1_2 \
	-Verify 1 -verify_return_error -CAfile "$(P ca.crt)" \
	-cert "$(P server-rsa.crt)" -key "$(P server-rsa.key)" -cert_chain "$(P int.crt)" \
	-www -quiet; then
	o=$work/cl-ss-rsa12
	check "TLS 1.2-only s_server with an RSA certificate: our client (default versions) reads its page" \
		client "$o" localhost "$(P client-ec-chain.pem)" "$(P client-ec.key)" "$(P ca.crt)" "$get" ||
		show "$o.err"
	check "... over TLSv1.2" has "$o.out" "Protocol  : TLSv1.2" || show "$o.out"
	stop "$last_pid"
else
	check "openssl s_server -tls1_2 (RSA certificate) starts" false
fi

# ---- our client -> nginx ---------------------------------------------------

if ! command -v nginx >/dev/null; then
	"$here/../scripts/deps.sh" --with-nginx >/dev/null 2>&1 || true
fi
if ! command -v nginx >/dev/null; then
	echo "# SKIP nginx: nginx is not installed and could not be (scripts/deps.sh --with-nginx)"
else
	ng=$work/nginx
	mkdir -p "$ng/logs"
	cat "$(P admin-server.crt)" "$(P int.crt)" >"$work/admin-chain.pem"
	# nginx_conf P1 P2: the good server, and one for another name
	nginx_conf() {
		cat >"$ng/nginx.conf" <<EOF
daemon off;
master_process off;
pid $ng/nginx.pid;
error_log $ng/logs/error.log;
events { worker_connections 64; }
http {
    access_log $ng/logs/access.log;
    client_body_temp_path $ng/body;
    proxy_temp_path $ng/proxy;
    fastcgi_temp_path $ng/fastcgi;
    uwsgi_temp_path $ng/uwsgi;
    scgi_temp_path $ng/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_client_certificate $(P ca.crt);
    ssl_verify_client on;
    ssl_verify_depth 2;
    server {
        listen 127.0.0.1:$1 ssl;
        ssl_certificate $(P server-ec-chain.pem);
        ssl_certificate_key $(P server-ec.key);
        location / { return 200 "ok \$ssl_client_s_dn over \$ssl_protocol\n"; }
    }
    server {
        listen 127.0.0.1:$2 ssl;
        ssl_certificate $work/admin-chain.pem;
        ssl_certificate_key $(P admin-server.key);
        location / { return 200 "admin\n"; }
    }
    server {
        listen 127.0.0.1:$3 ssl;
        ssl_protocols TLSv1.2;
        ssl_certificate $(P server-rsa-chain.pem);
        ssl_certificate_key $(P server-rsa.key);
        location / { return 200 "rsa over \$ssl_protocol\n"; }
    }
}
EOF
	}
	ng_up=0
	for try in 1 2 3; do
		{ p1=$(free_port) && p2=$(free_port) && p3=$(free_port); } || break
		[[ $p2 == "$p1" || $p3 == "$p1" || $p3 == "$p2" ]] && continue
		nginx_conf "$p1" "$p2" "$p3"
		nginx -c "$ng/nginx.conf" -p "$ng" >"$ng/logs/stdout.log" 2>&1 </dev/null &
		ng_pid=$!
		pids+=("$ng_pid")
		if wait_listen "$p1" "$ng_pid" && wait_listen "$p2" "$ng_pid" &&
			wait_listen "$p3" "$ng_pid"; then
			ng_up=1
			break
		fi
		stop "$ng_pid"
	done
	if ((ng_up)); then
		check "nginx listens on 127.0.0.1:$p1, :$p2 and :$p3" true
		req=$'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n'
		port=$p1
		o=$work/ng-good
		check "nginx: our client with a good pair gets an answer" \
			client "$o" localhost "$(P client-ec-chain.pem)" "$(P client-ec.key)" "$(P ca.crt)" "$req"
		check "nginx: ... 200 with the client's DN" has "$o.out" "ok CN=client.test" ||
			{ show "$o.out"; show "$o.err"; }
		check "nginx: ... over TLSv${versions[-1]}" has "$o.out" "over TLSv${versions[-1]}" ||
			show "$o.out"
		o=$work/ng-nocert
		client "$o" localhost - - "$(P ca.crt)" "$req"
		check "nginx: our client without a certificate gets 400 \"No required SSL certificate was sent\"" \
			has "$o.out" "No required SSL certificate was sent" ||
			{ show "$o.out"; show "$o.err"; }
		check "nginx: ... with status 400" has "$o.out" "400 Bad Request"
		o=$work/ng-untrusted
		check "nginx: our client refuses nginx from an unknown CA" \
			fails client "$o" localhost "$(P client-ec-chain.pem)" "$(P client-ec.key)" "$(P other-ca.crt)" "$req"
		check "nginx: ... as untrusted" has "$o.err" "refused" || show "$o.err"
		port=$p2
		o=$work/ng-name
		check "nginx: our client refuses nginx serving a certificate for another name" \
			fails client "$o" localhost "$(P client-ec-chain.pem)" "$(P client-ec.key)" "$(P ca.crt)" "$req"
		check "nginx: ... saying so" has "$o.err" "not valid for localhost" || show "$o.err"
		port=$p3
		o=$work/ng-rsa12
		check "nginx: our client (default versions) reaches ssl_protocols TLSv1.2 with an RSA certificate" \
			client "$o" localhost "$(P client-ec-chain.pem)" "$(P client-ec.key)" "$(P ca.crt)" "$req" ||
			show "$o.err"
		check "nginx: ... over TLSv1.2" has "$o.out" "rsa over TLSv1.2" || show "$o.out"
	else
		check "nginx starts" false
		show "$ng/logs/error.log"
		show "$ng/logs/stdout.log"
	fi
	stop "$ng_pid"
fi

echo "# interop: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
