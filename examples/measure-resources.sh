#!/usr/bin/env bash
# Measures what the examples' resources are sized from: podns's resident memory (VmRSS now, VmHWM the
# peak) and CPU time per answered query, under dnsperf load, on loopback only.
#
#   knotd (Debian knot) serves testdata/zones on 127.0.0.1:$UP_PORT as the cluster DNS;
#   podns (built from this checkout) listens on 127.0.0.1:$DNS_PORT, PODNS_NAMESPACE=apps;
#   dnsperf (Debian dnsperf) sends, each run bounded by -l seconds:
#     hits   a few dozen cluster and external names, short and full, A/AAAA/SRV/TXT, repeated: the cache
#            answers nearly all of them (the common case in a pod);
#     misses a different, never-repeated name for every query (n<i>.example.com: two dots, so podns walks
#            the whole search list, 4 candidates x A/AAAA upstream), which fills the cache to its bound:
#            the worst case for memory.
#
# Usage: bash examples/measure-resources.sh [seconds per run, default 10]
# Needs: go, knotd, dnsperf. Writes nothing outside a temporary directory it removes.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${1:-10}
HIT_QPS=${HIT_QPS:-20000} # fixed rate for the CPU-per-query figure
UP_PORT=$((20000 + RANDOM % 5000))
DNS_PORT=$((25000 + RANDOM % 5000))
HTTP_PORT=$((30000 + RANDOM % 5000))
work=$(mktemp -d "${TMPDIR:-/tmp}/podns-measure.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

for cmd in go knotd dnsperf; do command -v "$cmd" >/dev/null || { echo "needs $cmd" >&2; exit 1; }; done
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$work/podns" .)

mkdir -p "$work/knot"
cat >"$work/knot/knot.conf" <<EOF
server:
    rundir: "$work/knot"
    listen: 127.0.0.1@$UP_PORT
database:
    storage: "$work/knot"
template:
  - id: default
    storage: "$REPO/testdata/zones"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: cluster.local
  - domain: example.com
EOF
knotd -c "$work/knot/knot.conf" >"$work/knotd.log" 2>&1 &
pids+=($!)

PODNS_LISTEN=127.0.0.1:$DNS_PORT PODNS_UPSTREAMS=127.0.0.1:$UP_PORT PODNS_NAMESPACE=apps \
	PODNS_HTTP_ADDR=127.0.0.1:$HTTP_PORT PODNS_LOG_LEVEL=warn GOMEMLIMIT=${GOMEMLIMIT:-64MiB} \
	"$work/podns" >"$work/podns.log" 2>&1 &
pod=$!
pids+=("$pod")
for _ in $(seq 50); do
	PODNS_LISTEN=127.0.0.1:$DNS_PORT PODNS_UPSTREAMS=127.0.0.1:$UP_PORT "$work/podns" probe 2>/dev/null && break
	sleep 0.1
done

status() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pod/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pod/stat"; }
tick=$(getconf CLK_TCK)
report() { # report LABEL: memory now and peak, after a run
	printf '%-28s VmRSS %6d KiB  VmHWM %6d KiB\n' "$1" "$(status VmRSS)" "$(status VmHWM)"
}
run() { # run LABEL FILE DNSPERF-ARGS...: one bounded dnsperf run, then CPU per answered query
	local label=$1 file=$2; shift 2
	local t0 out q
	t0=$(cpu_ticks)
	out=$(dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$file" -l "$SECS" "$@" 2>&1)
	q=$(awk '/Queries completed:/ {print $3}' <<<"$out")
	local qps lost
	qps=$(awk '/Queries per second:/ {print $4}' <<<"$out")
	lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
	local ticks=$(($(cpu_ticks) - t0))
	awk -v l="$label" -v q="$q" -v lost="$lost" -v qps="$qps" -v t="$ticks" -v hz="$tick" 'BEGIN {
		printf "%-28s %d queries (%d lost), %s q/s, CPU %.2f s = %.1f us/query\n", l, q, lost, qps, t / hz, t / hz * 1e6 / (q > 0 ? q : 1)
	}'
	report "$label"
}

report "idle after start"
cat >"$work/hits.txt" <<'EOF'
graylog A
graylog AAAA
dual A
dual AAAA
web A
web-0.web A
kube-dns.kube-system A
db.other A
graylog.apps.svc.cluster.local A
www.example.com A
www.example.com AAAA
alias.example.com A
only4.example.com AAAA
example.com MX
txt.example.com TXT
_http._tcp.graylog SRV
ext A
nope.example.com A
EOF
awk 'BEGIN { for (i = 0; i < 2000000; i++) printf "n%d.example.com A\n", i }' >"$work/misses.txt"

run "hits at $HIT_QPS q/s" "$work/hits.txt" -Q "$HIT_QPS" -c 4
run "hits, max rate" "$work/hits.txt" -c 4
run "misses at 1000 q/s" "$work/misses.txt" -Q 1000 -c 4
run "misses, max rate" "$work/misses.txt" -c 4 -q 200
sleep 5
report "5 s idle after the misses"
# An exec probe runs in the container's memory cgroup: its peak RSS adds to podns's while it runs.
if [[ -x /usr/bin/time ]]; then
	echo "podns probe: $(/usr/bin/time -f '%e s, max RSS %M KiB' env PODNS_LISTEN=127.0.0.1:$DNS_PORT \
		PODNS_UPSTREAMS=127.0.0.1:$UP_PORT "$work/podns" probe 2>&1 | tail -1)"
fi
