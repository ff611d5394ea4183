# tests/lib.sh - helpers shared by the shell tests and the demo (sourced).
# ok/bad/check count into $checks and $fails; free_port and wait_port keep
# every wait bounded; setup_work gives a test its private directory.

checks=${checks:-0}
fails=${fails:-0}
ok() { echo "ok   - $*"; checks=$((checks + 1)); }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); checks=$((checks + 1)); }
check() { # check DESCRIPTION COMMAND...: the command's status decides
	local d=$1
	shift
	if "$@"; then ok "$d"; else bad "$d"; fi
}

# A free port from 20000 up to the start of the ephemeral range (where
# outgoing connections, and their TIME_WAIT, would collide): no socket of
# any state uses it now.
free_port() {
	local lo p i
	lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	[[ ${lo:-0} -gt 21000 ]] || lo=32768
	for i in $(seq 50); do
		p=$((20000 + RANDOM % (lo - 20000)))
		if ! ss -Htan "sport = :$p" | grep -q .; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

wait_port() { # wait_port PORT: up to 10 s for something to listen
	local i
	for ((i = 0; i < 100; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "nothing listens on port $1" >&2
	return 1
}

# setup_work NAME: a private $work directory, removed on exit, holding a copy
# of the test PKI ($pki is repointed there: another run of tests/run.sh on
# the same build regenerates the original); every PID added to $pids is
# killed, and waited for, on exit.
setup_work() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/mtls-$1.XXXXXX") || return 1
	pids=()
	trap cleanup_work EXIT
	cp -r "$pki" "$work/pki" || { echo "FAIL: cannot copy $pki"; return 1; }
	pki=$work/pki
}

cleanup_work() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$work"
}

# in_place CMD...: run CMD; in a subshell (`f &`, `$(f)`, a pipeline) exec it,
# so that the PID a test holds and kills is CMD's own and nothing outlives it.
in_place() {
	[ "$BASHPID" = "$$" ] || exec "$@"
	"$@"
}

# stage_install NAME: a staging directory for "make install" ($stage,
# removed on exit; $root the DESTDIR, $prefix, $libdir) and the make
# arguments that install the build under test as it was built ($margs:
# BUILD, PREFIX, DESTDIR, MBEDTLS_PREFIX and SANITIZE as the build had
# them, or make would rebuild its objects differently).  Needs $build.
stage_install() {
	stage=$(mktemp -d "${TMPDIR:-/tmp}/mtls-$1.XXXXXX") || return 1
	trap 'rm -rf "$stage"' EXIT
	prefix=/usr/local
	root=$stage/root
	libdir=$root$prefix/lib
	margs=(BUILD="$build" PREFIX="$prefix" DESTDIR="$root")
	[[ -n ${MBEDTLS_PREFIX:-} ]] && margs+=(MBEDTLS_PREFIX="$MBEDTLS_PREFIX")
	sanitize=${SANITIZE:-} # (read by the callers too)
	# (grep -c, not -q: an early exit would fail nm with SIGPIPE under
	# pipefail)
	if [[ -z $sanitize && -e $build/libmtls.a ]] &&
		[[ $(nm "$build/libmtls.a" 2>/dev/null | grep -c ' U __asan_') -gt 0 ]]; then
		sanitize=1
	fi
	[[ -n $sanitize ]] && margs+=(SANITIZE="$sanitize")
	return 0
}
