# bench/lib/setup.sh: what every bench command does before measuring: the packages it needs, one run
# at a time, its directories, the cleanup, and which CPU runs what. Sourced by bench/run and
# bench/upstream (after lib/proc.sh).

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# ensure_packages CMD...: install the Debian package of each command that is missing. Debian starts
# services on install unless a policy-rc.d forbids it, and a packaged Unbound or dnsmasq on port 53
# is the last thing a CI box needs: so one is put in place for the install when none exists, and
# removed afterwards (one that was there is left as it was).
ensure_packages() {
	local -A pkg=([knotd]=knot [kdig]=knot-dnsutils [unbound]=unbound [dnsmasq]=dnsmasq-base
		[dnsdist]=dnsdist [dnsperf]=dnsperf [taskset]=util-linux [cc]=gcc [nft]=nftables [curl]=curl
		[ss]=iproute2)
	local missing=() cmd
	for cmd in "$@"; do
		command -v "$cmd" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 ||
			missing+=("${pkg[$cmd]}")
	done
	command -v go >/dev/null || {
		echo "bench: the Go toolchain (go) is needed to build podns" >&2
		exit 1
	}
	((${#missing[@]} == 0)) && return
	if ((EUID != 0)); then
		echo "bench: missing packages ${missing[*]}; run as root, or: apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	echo "bench: installing ${missing[*]}" >&2
	local policy=/usr/sbin/policy-rc.d made=""
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\n# bench: no service starts while it installs packages.\nexit 101\n' >"$policy"
		chmod +x "$policy"
		made=1
	fi
	local rc=0
	{ apt-get install -y -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" ||
		{ apt-get update && apt-get install -y -o DPkg::Lock::Timeout=300 \
		--no-install-recommends "${missing[@]}"; }; } >&2 || rc=$?
	[[ -n $made ]] && rm -f "$policy"
	((rc == 0)) || exit "$rc"
}

# start_run NAME: take the bench's lock (one run at a time: two would share the CPUs and the
# addresses), make the run's raw-output directory bench/out/<NAME><date>/ (linked as
# bench/out/latest) and a temporary directory, and arrange for every process started to be stopped
# on exit. Sets RAW, RESULTS, TMP, STAMP, HZ, CLIENT_CPU and SERVER_CPU.
start_run() {
	exec 9>/tmp/podns-bench.lock
	flock -n 9 || {
		echo "bench: another bench run is going on (lock /tmp/podns-bench.lock)" >&2
		exit 1
	}
	STAMP=$1$(date +%Y%m%d-%H%M%S)
	RAW="$BENCH/out/$STAMP"
	mkdir -p "$RAW"
	ln -sfn "$STAMP" "$BENCH/out/latest"
	RESULTS="$RAW/results.tsv"
	: >"$RESULTS"
	TMP=$(mktemp -d /tmp/podns-bench.XXXXXX)
	HZ=$(getconf CLK_TCK)
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	# A sidecar gets about one core: every server runs on one core, the load generator (and the
	# upstream) on the other, the same for all of them.
	if (($(nproc) >= 2)); then
		CLIENT_CPU=0 SERVER_CPU=1
	else
		echo "bench: warning: one CPU: the load generator and the server share it; the figures mean little" >&2
		CLIENT_CPU=0 SERVER_CPU=0
	fi
}

# CLEANUP_HOOKS: commands run on exit before the processes are stopped (bench/upstream removes its
# nftables table there).
CLEANUP_HOOKS=()
cleanup() {
	local rc=$? h
	for h in "${CLEANUP_HOOKS[@]}"; do $h || true; done
	stop_all
	rm -rf "$TMP"
	((rc == 0)) || echo "bench: failed (exit $rc); raw outputs in $RAW" >&2
}
