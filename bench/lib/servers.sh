# bench/lib/servers.sh: where each server listens, its configuration, and the command that runs it.
# Sourced by bench/run and bench/upstream.
#
# Each server has its own loopback address and port; nothing listens on a wildcard address or on port
# 53, so the bench cannot collide with a resolver or test already running on the machine. The ports are
# below the ephemeral range (32768+), so no client socket of another process can hold them.

# The upstream every server under test forwards to, the cluster DNS's place: CoreDNS by default (the
# upstream of record, bench/conf/Corefile; COREDNS_VERSION picks the release), or Knot (UPSTREAM=knot).
# Either listens on UP_ADDR:UP_PORT; CoreDNS serves its Prometheus metrics on UP_METRICS_PORT. Knot
# answers on a second port too, UP_NAGLE_PORT, as Knot comes (Nagle's algorithm on), for the extra miss
# run per server of bench/run --upstream=knot (bench/README.md, "Knot and Nagle's algorithm"); on
# UP_PORT it has TCP_NODELAY (bench/nodelay), as CoreDNS, a Go server, always has.
UP_ADDR=127.77.0.1 UP_PORT=15300 UP_NAGLE_PORT=15301 UP_METRICS_PORT=19153
UPSTREAM=${UPSTREAM:-coredns} COREDNS_VERSION=${COREDNS_VERSION:-1.15.0}
COREDNS_CACHE=${PODNS_BIN_CACHE:-$HOME/.cache/podns/bin}
# coredns is CoreDNS as a per-pod cache (bench/conf/coredns-cache.Corefile), a server under test in
# bench/upstream's slow mode, not the upstream. podns serves /metrics on PODNS_METRICS_PORT where a
# mode reads them (bench/upstream).
declare -A ADDR=([unbound]=127.77.0.2 [dnsmasq]=127.77.0.3 [dnsdist]=127.77.0.4 [podns]=127.77.0.5 [coredns]=127.77.0.6)
declare -A PORT=([unbound]=15302 [dnsmasq]=15303 [dnsdist]=15304 [podns]=15305 [coredns]=15306)
PODNS_METRICS_PORT=19305
PEERS=(unbound dnsmasq dnsdist)

# coredns_bin [VERSION]: the CoreDNS binary .ci/kubebins.sh builds (and caches) from the Go module.
coredns_bin() { echo "$COREDNS_CACHE/coredns-${1:-$COREDNS_VERSION}/coredns"; }

# ensure_coredns VERSION...: build what is missing with .ci/kubebins.sh (about 90 s each, once).
ensure_coredns() {
	local v names=()
	for v in "$@"; do [[ -x $(coredns_bin "$v") ]] || names+=("coredns-$v"); done
	((${#names[@]} == 0)) && return
	log "building ${names[*]} (.ci/kubebins.sh)"
	bash "$REPO/.ci/kubebins.sh" "${names[@]}" >&2
}

# render SRC DST NAME [UP_PORT]: fill a bench/conf template's @PLACEHOLDERS@. The upstream's address
# comes in each program's own notation: ip@port (Knot, Unbound), ip:port (dnsdist, CoreDNS), ip#port
# (dnsmasq).
render() {
	local kp=${4:-$UP_PORT}
	sed -e "s|@DIR@|$TMP|g" -e "s|@TESTDATA@|$REPO/testdata|g" -e "s|@BENCH@|$BENCH|g" \
		-e "s|@ADDR@|${ADDR[$3]:-}|g" -e "s|@PORT@|${PORT[$3]:-}|g" \
		-e "s|@UP_AT@|$UP_ADDR@$kp|g" -e "s|@UP_COLON@|$UP_ADDR:$kp|g" -e "s|@UP_HASH@|$UP_ADDR#$kp|g" \
		-e "s|@UP_ADDR@|$UP_ADDR|g" -e "s|@UP_PORT@|$kp|g" -e "s|@UP_METRICS_PORT@|$UP_METRICS_PORT|g" \
		-e "s|@UP_NAGLE_AT@|$UP_ADDR@$UP_NAGLE_PORT|g" "$1" >"$2"
}

# render_configs: the upstream's configuration, and each peer's twice, forwarding to the upstream's
# port (NAME.conf) and to Knot's Nagle port (NAME-nagle.conf, used with UPSTREAM=knot only).
render_configs() {
	local s
	mkdir -p "$TMP/knot"
	render "$BENCH/conf/knot.conf" "$TMP/knot.conf" knot
	render "$BENCH/conf/Corefile" "$TMP/Corefile" upstream
	render "$BENCH/conf/coredns-cache.Corefile" "$TMP/coredns-cache.Corefile" coredns
	for s in "${PEERS[@]}"; do
		render "$BENCH/conf/$s.conf" "$TMP/$s.conf" "$s"
		render "$BENCH/conf/$s.conf" "$TMP/$s-nagle.conf" "$s" "$UP_NAGLE_PORT"
	done
	cp "$TMP"/*.conf "$RAW/"
}

# server_cmd NAME [nagle]: set CMD to the command line that runs NAME in the foreground on the server
# core; with nagle, forwarding to Knot's port without TCP_NODELAY. NAME "upstream" is CoreDNS or Knot
# (UPSTREAM), on the client core with the load generator.
server_cmd() {
	local pin=(taskset -c "$SERVER_CPU") conf="$1${2:+-$2}" kp=$UP_PORT
	[[ ${2:-} == nagle ]] && kp=$UP_NAGLE_PORT
	case $1 in
	upstream)
		if [[ $UPSTREAM == knot ]]; then
			CMD=(env LD_PRELOAD="$TMP/nodelay.so" NODELAY_PORT="$UP_PORT"
				taskset -c "$CLIENT_CPU" knotd -c "$TMP/knot.conf")
		else
			CMD=(taskset -c "$CLIENT_CPU" "$(coredns_bin)" -conf "$TMP/Corefile")
		fi
		;;
	# CoreDNS as a per-pod cache: pinned like the other servers, so GOMAXPROCS is 1 (Go counts the
	# CPUs of its affinity mask).
	coredns) CMD=("${pin[@]}" "$(coredns_bin)" -conf "$TMP/coredns-cache.Corefile") ;;
	unbound) CMD=("${pin[@]}" unbound -d -c "$TMP/$conf.conf") ;;
	dnsmasq) CMD=("${pin[@]}" dnsmasq -k -C "$TMP/$conf.conf") ;;
	dnsdist) CMD=("${pin[@]}" dnsdist --supervised --disable-syslog -C "$TMP/$conf.conf") ;;
	# podns: the Knot names are asked as FQDNs. Names under cluster.local go upstream as they are
	# (the cluster domain is never searched); with ndots 1, www.example.com and <x>.miss.test are
	# asked as given first and answered there, so no search candidate is tried, as for the peers,
	# which do no search at all. PODNS_NO_SEARCH=miss.test says the same for misses, whatever ndots.
	# No HTTP listener, warnings only, and no drain on SIGTERM (the start-up trials stop it 5 times).
	podns) CMD=(env PODNS_LISTEN="${ADDR[podns]}:${PORT[podns]}" PODNS_UPSTREAMS="$UP_ADDR:$kp"
		PODNS_HTTP_ADDR= PODNS_LOG_LEVEL=warn PODNS_NAMESPACE=apps PODNS_NDOTS=1
		PODNS_NO_SEARCH=miss.test PODNS_DRAIN=0s "${pin[@]}" "$TMP/podns") ;;
	*)
		echo "bench: unknown server $1" >&2
		exit 2
		;;
	esac
}

# server_version NAME: one line for the table's header.
server_version() {
	case $1 in
	upstream)
		if [[ $UPSTREAM == knot ]]; then
			knotd --version 2>&1 | awk 'NR == 1 {print "Knot", $NF}'
		else
			echo "upstream $("$(coredns_bin)" -version 2>&1 | head -1)"
		fi
		;;
	coredns) echo "per-pod $("$(coredns_bin)" -version 2>&1 | head -1)" ;;
	unbound) unbound -V 2>&1 | awk 'NR == 1 {print "unbound", $2}' ;;
	dnsmasq) dnsmasq --version 2>&1 | awk 'NR == 1 {print "dnsmasq", $3}' ;;
	dnsdist) dnsdist --version 2>&1 | head -1 | awk '{print $1, $2}' ;;
	podns) echo "podns $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet HEAD -- . 2>/dev/null || echo +dirty) ($(go version | awk '{print $3}'))" ;;
	esac
}

# build_podns: the static binary podns ships as (Dockerfile: CGO off, -trimpath, stripped).
build_podns() {
	(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' -o "$TMP/podns" .) \
		>"$RAW/podns-build.log" 2>&1 || {
		echo "bench: building podns failed:" >&2
		cat "$RAW/podns-build.log" >&2
		echo "bench: to measure only the peers meanwhile: bench/run --servers=unbound,dnsmasq,dnsdist" >&2
		exit 1
	}
	put podns binary_mb "$(stat -c %s "$TMP/podns" | awk '{printf "%.2f", $1 / 1e6}')"
}

# build_nodelay: the shim preloaded into Knot (bench/nodelay/nodelay.c).
build_nodelay() {
	cc -shared -fPIC -O2 -Wall -o "$TMP/nodelay.so" "$BENCH/nodelay/nodelay.c" -ldl \
		>"$RAW/nodelay-build.log" 2>&1 || {
		cat "$RAW/nodelay-build.log" >&2
		exit 1
	}
}

build_startlat() {
	(cd "$REPO" && go build -o "$TMP/startlat" ./bench/startlat) >"$RAW/startlat-build.log" 2>&1 || {
		cat "$RAW/startlat-build.log" >&2
		exit 1
	}
}
