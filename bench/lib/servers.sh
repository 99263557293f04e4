# bench/lib/servers.sh: where each server listens, its configuration, and the command that runs it.
# Sourced by bench/run.
#
# Each server has its own loopback address and port; nothing listens on a wildcard address or on port
# 53, so the bench cannot collide with a resolver or test already running on the machine. The ports are
# below the ephemeral range (32768+), so no client socket of another process can hold them.

# Knot answers on two ports: KNOT_PORT with TCP_NODELAY on its connections, as CoreDNS has (bench/nodelay),
# for every figure with a target; KNOT_NAGLE_PORT as Knot comes, Nagle's algorithm on, for the one
# extra miss run per server that shows what that changes (bench/README.md, "Knot and Nagle's algorithm").
KNOT_ADDR=127.77.0.1 KNOT_PORT=15300 KNOT_NAGLE_PORT=15301
declare -A ADDR=([unbound]=127.77.0.2 [dnsmasq]=127.77.0.3 [dnsdist]=127.77.0.4 [podns]=127.77.0.5)
declare -A PORT=([unbound]=15302 [dnsmasq]=15303 [dnsdist]=15304 [podns]=15305)
PEERS=(unbound dnsmasq dnsdist)

# render SRC DST NAME [KNOT_PORT]: fill a bench/conf template's @PLACEHOLDERS@. Knot's address comes in
# each program's own notation: ip@port (Knot, Unbound), ip:port (dnsdist), ip#port (dnsmasq).
render() {
	local kp=${4:-$KNOT_PORT}
	sed -e "s|@DIR@|$TMP|g" -e "s|@TESTDATA@|$REPO/testdata|g" -e "s|@BENCH@|$BENCH|g" \
		-e "s|@ADDR@|${ADDR[$3]:-}|g" -e "s|@PORT@|${PORT[$3]:-}|g" \
		-e "s|@KNOT_AT@|$KNOT_ADDR@$kp|g" -e "s|@KNOT_COLON@|$KNOT_ADDR:$kp|g" \
		-e "s|@KNOT_HASH@|$KNOT_ADDR#$kp|g" -e "s|@KNOT_NAGLE_AT@|$KNOT_ADDR@$KNOT_NAGLE_PORT|g" "$1" >"$2"
}

# render_configs: each peer's configuration twice, forwarding to Knot's TCP_NODELAY port (NAME.conf)
# and to its Nagle port (NAME-nagle.conf).
render_configs() {
	local s
	mkdir -p "$TMP/knot"
	render "$BENCH/conf/knot.conf" "$TMP/knot.conf" knot
	for s in "${PEERS[@]}"; do
		render "$BENCH/conf/$s.conf" "$TMP/$s.conf" "$s"
		render "$BENCH/conf/$s.conf" "$TMP/$s-nagle.conf" "$s" "$KNOT_NAGLE_PORT"
	done
	cp "$TMP"/*.conf "$RAW/"
}

# server_cmd NAME [nagle]: set CMD to the command line that runs NAME in the foreground on the server
# core; with nagle, forwarding to Knot's port without TCP_NODELAY.
server_cmd() {
	local pin=(taskset -c "$SERVER_CPU") conf="$1${2:+-$2}" kp=$KNOT_PORT
	[[ ${2:-} == nagle ]] && kp=$KNOT_NAGLE_PORT
	case $1 in
	knot) CMD=(env LD_PRELOAD="$TMP/nodelay.so" NODELAY_PORT="$KNOT_PORT"
		taskset -c "$CLIENT_CPU" knotd -c "$TMP/knot.conf") ;;
	unbound) CMD=("${pin[@]}" unbound -d -c "$TMP/$conf.conf") ;;
	dnsmasq) CMD=("${pin[@]}" dnsmasq -k -C "$TMP/$conf.conf") ;;
	dnsdist) CMD=("${pin[@]}" dnsdist --supervised --disable-syslog -C "$TMP/$conf.conf") ;;
	# podns: the Knot names are asked as FQDNs. Names under cluster.local go upstream as they are
	# (the cluster domain is never searched); with ndots 1, www.example.com and <x>.miss.test are
	# asked as given first and answered there, so no search candidate is tried, as for the peers,
	# which do no search at all. PODNS_NO_SEARCH=miss.test says the same for misses, whatever ndots.
	# No HTTP listener, warnings only, and no drain on SIGTERM (the start-up trials stop it 5 times).
	podns) CMD=(env PODNS_LISTEN="${ADDR[podns]}:${PORT[podns]}" PODNS_UPSTREAMS="$KNOT_ADDR:$kp"
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
	knot) knotd --version 2>&1 | awk 'NR == 1 {print "Knot", $NF}' ;;
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
