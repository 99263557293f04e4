# bench/lib/measure.sh: one dnsperf run against one server, and the figures taken from it.
# Sourced by bench/run. Results go to $RESULTS as "server<TAB>metric<TAB>value<TAB>note" lines, which
# bench/lib/report.awk turns into the table.

# ticks PID: CPU time (utime + stime, in clock ticks) the process has used, all threads included
# (proc(5): fields 14 and 15 of /proc/PID/stat). The comm field may hold spaces, so count from the ")".
# udp_drops: datagrams this network namespace's UDP sockets dropped because their receive buffer was
# full (/proc/net/snmp Udp RcvbufErrors): a server whose reader falls behind loses queries there,
# with no reply and nothing in its own counters.
udp_drops() {
	awk '$1 == "Udp:" { if (!h) { for (i = 2; i <= NF; i++) c[$i] = i; h = 1 } else print $c["RcvbufErrors"] }' /proc/net/snmp
}

ticks() {
	local stat
	stat=$(<"/proc/$1/stat")
	stat=${stat##*) }
	awk '{print $12 + $13}' <<<"$stat"
}

# machine_busy: ticks all CPUs spent running processes since boot (proc(5) /proc/stat: user, nice,
# system), used to see how much CPU other processes took during a run. irq and softirq time is left
# out: loopback packets are processed there, charged to no process, so the bench's own traffic would
# look like someone else's load.
machine_busy() {
	awk '/^cpu /{print $2 + $3 + $4; exit}' /proc/stat
}

# core_ticks N: "busy total" ticks of CPU N since boot. Busy counts irq and softirq too (the network
# stack's work for a process is mostly softirq, on the core that process runs on); idle and iowait are
# the rest of total.
core_ticks() {
	awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat
}

# core_pct "BUSY0 TOTAL0" "BUSY1 TOTAL1": how busy a core was between two core_ticks readings, in %.
core_pct() {
	awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ")
		t = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}

# child_ticks: set CHILD_TICKS to the CPU ticks of this shell's reaped children so far (bash's times
# builtin), i.e. dnsperf's CPU once it has exited. Called directly, never in $(...) or a pipe: a
# subshell is a new process, whose children's times start at zero.
child_ticks() {
	times >"$TMP/times"
	CHILD_TICKS=$(awk -v hz="$HZ" 'NR == 2 {
		n = 0
		for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }
		printf "%d\n", n * hz + 0.5 }' "$TMP/times")
}

put() { # put SERVER METRIC VALUE [NOTE]
	printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >>"$RESULTS"
}

# dnsperf_stat FILE KEY: one figure from dnsperf's summary.
dnsperf_stat() {
	awk -v key="$2" '
		key == "sent" && /Queries sent:/ { print $3 }
		key == "completed" && /Queries completed:/ { print $3 }
		key == "lost" && /Queries lost:/ { print $3 }
		key == "runtime" && /Run time \(s\):/ { print $4 }
		key == "noerror" && /Response codes:/ {
			for (i = 1; i <= NF; i++) if ($i == "NOERROR") { print $(i + 1); n = 1 }
			if (!n) print 0
		}' "$1"
}

# percentiles FILE: p50 and p99 latency in µs over every query dnsperf -v reported; a lost query
# ("> T name type") counts as infinitely slow, so loss shows in p99 instead of hiding from it.
percentiles() {
	awk '/^> / { if ($2 == "T") print "inf"; else printf "%.0f\n", $NF * 1e6 }' "$1" | sort -g >"$1.lat"
	local n
	n=$(wc -l <"$1.lat")
	if ((n == 0)); then
		echo "- -"
		return
	fi
	echo "$(sed -n "$(((n * 50 + 99) / 100))p" "$1.lat") $(sed -n "$(((n * 99 + 99) / 100))p" "$1.lat")"
	rm -f "$1.lat"
}

# run_dnsperf SERVER PHASE ADDR PORT DNSPERF_ARGS...: run dnsperf on the client core against a server
# and set, for the caller: P_SENT P_DONE P_LOST P_OK (NOERROR answers) P_RUNTIME P_SERVER_TICKS
# P_WALL (s) P_OTHER (cores used by everything but the server, the upstream and dnsperf), P_RCODES
# ("NOERROR n NXDOMAIN n SERVFAIL n other n lost n"), P_SERVFAIL, P_UP_TICKS (the upstream's CPU),
# P_DNSPERF_TICKS, P_CLIENT_CORE and P_SERVER_CORE (% busy of each core over the run) and P_OUT (the
# file).
run_dnsperf() {
	local server=$1 phase=$2 addr=$3 port=$4
	shift 4
	local pid=${PIDS[$server]} knot=${PIDS[upstream]}
	P_OUT="$RAW/$server.$phase.dnsperf"
	alive "$server"
	local s0 k0 b0 c0 w0 s1 k1 b1 c1 w1 cc0 sc0
	child_ticks
	s0=$(ticks "$pid") k0=$(ticks "$knot") b0=$(machine_busy) c0=$CHILD_TICKS w0=$(date +%s%N)
	cc0=$(core_ticks "$CLIENT_CPU") sc0=$(core_ticks "$SERVER_CPU")
	taskset -c "$CLIENT_CPU" dnsperf -s "$addr" -p "$port" "$@" >"$P_OUT" 2>&1 || {
		echo "bench: dnsperf failed for $server ($phase):" >&2
		tail -5 "$P_OUT" >&2
		exit 1
	}
	child_ticks
	s1=$(ticks "$pid") k1=$(ticks "$knot") b1=$(machine_busy) c1=$CHILD_TICKS w1=$(date +%s%N)
	P_CLIENT_CORE=$(core_pct "$cc0" "$(core_ticks "$CLIENT_CPU")")
	P_SERVER_CORE=$(core_pct "$sc0" "$(core_ticks "$SERVER_CPU")")
	alive "$server"
	P_SENT=$(dnsperf_stat "$P_OUT" sent)
	P_DONE=$(dnsperf_stat "$P_OUT" completed)
	P_LOST=$(dnsperf_stat "$P_OUT" lost)
	P_OK=$(dnsperf_stat "$P_OUT" noerror)
	P_RUNTIME=$(dnsperf_stat "$P_OUT" runtime)
	P_RCODES=$(dnsperf_rcodes "$P_OUT")
	P_SERVFAIL=$(awk '{ print $6 }' <<<"$P_RCODES")
	P_SERVER_TICKS=$((s1 - s0)) P_UP_TICKS=$((k1 - k0)) P_DNSPERF_TICKS=$((c1 - c0))
	P_WALL=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	P_OTHER=$(awk -v b=$((b1 - b0)) -v own=$((s1 - s0 + k1 - k0 + c1 - c0)) -v hz="$HZ" -v w="$P_WALL" \
		'BEGIN { o = (b - own) / hz / w; printf "%.2f", o < 0 ? 0 : o }')
	printf '%s\t%s\tsent=%s completed=%s lost=%s noerror=%s runtime=%s server_ticks=%s upstream_ticks=%s dnsperf_ticks=%s wall=%s other_cores=%s client_core=%s server_core=%s load=%s rcodes=%s\n' \
		"$server" "$phase" "$P_SENT" "$P_DONE" "$P_LOST" "$P_OK" "$P_RUNTIME" "$P_SERVER_TICKS" "$P_UP_TICKS" \
		"$P_DNSPERF_TICKS" "$P_WALL" "$P_OTHER" "$P_CLIENT_CORE" "$P_SERVER_CORE" "$(cut -d' ' -f1 /proc/loadavg)" "${P_RCODES// /,}" >>"$RAW/phases.tsv"
	add_rcodes "$server" "$P_RCODES"
	OTHER_MAX=$(awk -v a="$OTHER_MAX" -v b="$P_OTHER" 'BEGIN { print (b > a ? b : a) }')
	if ((P_OK == 0)); then
		echo "bench: $server answered no query with NOERROR in $phase; see $P_OUT" >&2
		exit 1
	fi
}

# check_answers SERVER ADDR PORT FILE: every query of FILE must get the same answer records from the
# server as from the upstream (a server that answers fast but wrongly must not look good). Differences go to
# $RAW/SERVER.answers.diff and into ANSWER_PROBLEMS for the table's footer.
check_answers() {
	local server=$1 addr=$2 port=$3 name type want got bad=0
	while read -r name type; do
		want=$(kdig @"$UP_ADDR" -p "$UP_PORT" +timeout=2 +retry=0 +short "$name" "$type" | sort)
		got=$(kdig @"$addr" -p "$port" +timeout=2 +retry=0 +short "$name" "$type" | sort)
		if [[ -z $want || $want != "$got" ]]; then
			printf '%s %s\nupstream:\n%s\n%s:\n%s\n\n' "$name" "$type" "$want" "$server" "$got" >>"$RAW/$server.answers.diff"
			bad=$((bad + 1))
		fi
	done <"$4"
	if ((bad > 0)); then
		ANSWER_PROBLEMS+="$server answered $bad of the hit queries differently from the upstream (see $server.answers.diff). "
	fi
}

# loss_note: a warning for the table when a run lost queries or got other answers than NOERROR. A
# SERVFAIL is a failure, not an answer: any at all is named, and report.awk marks the cell ❌ (every
# query the bench asks has records upstream, so no SERVFAIL is expected).
loss_note() {
	awk -v s="$P_SENT" -v ok="$P_OK" -v sf="$P_SERVFAIL" 'BEGIN {
		bad = s - ok
		if (sf > 0) printf "%d SERVFAIL (%.1f%%)%s", sf, 100 * sf / s, (bad - sf > 0.001 * s ? "; " : "")
		if (s > 0 && bad - sf > 0.001 * s) printf "%.1f%% other than NOERROR or SERVFAIL", 100 * (bad - sf) / s }'
}

# dnsperf_rcodes FILE: "NOERROR n NXDOMAIN n SERVFAIL n other n lost n" from dnsperf's summary
# ("Response codes: NOERROR 9998 (99.98%), SERVFAIL 2 (0.02%)" and "Queries lost:").
dnsperf_rcodes() {
	awk '
		/Queries lost:/ { lost = $3 }
		/Response codes:/ {
			sub(/.*Response codes: */, "")
			n = split($0, part, /, */)
			for (i = 1; i <= n; i++) {
				split(part[i], f, " ")
				if (f[1] == "NOERROR" || f[1] == "NXDOMAIN" || f[1] == "SERVFAIL") rc[f[1]] += f[2]
				else rc["other"] += f[2]
			}
		}
		END { printf "NOERROR %d NXDOMAIN %d SERVFAIL %d other %d lost %d\n",
			rc["NOERROR"], rc["NXDOMAIN"], rc["SERVFAIL"], rc["other"], lost }' "$1"
}

# add_rcodes SERVER "NOERROR n NXDOMAIN n SERVFAIL n other n lost n": add one run's counts to the
# server's totals (RCODES), which the table's rcode row shows.
declare -A RCODES=()
add_rcodes() {
	RCODES[$1]=$(awk -v a="${RCODES[$1]:-NOERROR 0 NXDOMAIN 0 SERVFAIL 0 other 0 lost 0}" -v b="$2" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		for (i = 2; i <= 10; i += 2) x[i] += y[i]
		printf "%s %d %s %d %s %d %s %d %s %d\n", x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9], x[10] }')
}

# put_rcodes: one row per server with its answers by rcode over all its dnsperf runs.
put_rcodes() {
	local s
	for s in "${!RCODES[@]}"; do
		put "$s" rcodes "$(awk '{ printf "%d / %d / %d / %d / %d", $2, $4, $6, $8, $10 }' <<<"${RCODES[$s]}")" \
			"$(awk '$6 > 0 { printf "%d SERVFAIL", $6 }' <<<"${RCODES[$s]}")"
	done
}

# rate_note RATE: a warning when dnsperf could not send at the asked rate (client core starved).
rate_note() {
	awk -v s="$P_SENT" -v r="$1" -v t="$P_RUNTIME" 'BEGIN {
		if (t > 0 && s / t < 0.97 * r) printf "sent only %.0f qps", s / t }'
}

# other_note: a warning when other processes on the machine took a noticeable share of the CPU
# during the run (the machine is shared; their load shows in latency percentiles first).
other_note() {
	awk -v o="$P_OTHER" -v lim="$QUIET_CORES" 'BEGIN { if (o > lim) printf "others used %.1f cores", o }'
}

# own_ticks: CPU ticks of every process the bench has running.
own_ticks() {
	local s n=0
	for s in "${!PIDS[@]}"; do n=$((n + $(ticks "${PIDS[$s]}" 2>/dev/null || echo 0))); done
	echo "$n"
}

# wait_quiet MAX: wait up to MAX seconds for the rest of the machine to use under QUIET_CORES cores
# (sampled over 1 s), so a server's turn does not start during another job's burst. Gives up quietly:
# the runs then carry an "others used" note.
wait_quiet() {
	local i b0 o0 other
	for ((i = 0; i < $1; i++)); do
		b0=$(machine_busy) o0=$(own_ticks)
		sleep 1
		other=$(awk -v b=$(($(machine_busy) - b0)) -v o=$(($(own_ticks) - o0)) -v hz="$HZ" \
			'BEGIN { x = (b - o) / hz; printf "%.2f", x < 0 ? 0 : x }')
		awk -v x="$other" -v lim="$QUIET_CORES" 'BEGIN { exit !(x <= lim) }' && return 0
		((i == 0)) && log "others use $other cores; waiting up to $1 s for a quieter machine"
	done
	return 0
}

join_notes() {
	local out="" n
	for n in "$@"; do
		[[ -n $n ]] && out+="${out:+; }$n"
	done
	echo "$out"
}

# phase_max SERVER PREFIX ADDR PORT FILE DNSPERF_ARGS...: the maximum answered qps, and how busy the
# server's core was meanwhile (under ~90% means dnsperf, not the server, was the limit).
phase_max() {
	local server=$1 prefix=$2 addr=$3 port=$4 file=$5
	shift 5
	run_dnsperf "$server" "${prefix}_max" "$addr" "$port" -d "$file" -l "$DURATION" "$@"
	put "$server" "${prefix}_max_qps" "$(answers_per_s)" "$(join_notes "$(loss_note)" "$(other_note)")"
	put "$server" "${prefix}_max_core" "$(run_share "$P_SERVER_TICKS")"
}

# answers_per_s: NOERROR answers a second over the last run_dnsperf's run time.
answers_per_s() {
	awk -v ok="$P_OK" -v t="$P_RUNTIME" 'BEGIN { printf "%.0f", ok / t }'
}

# run_share TICKS: a process's CPU TICKS as a % of one core over the last run_dnsperf's run time, not
# the wall time around it: after its last query dnsperf waits up to its timeout (-t) for lost replies,
# while the servers have nothing to do.
run_share() {
	awk -v n="$1" -v hz="$HZ" -v t="$P_RUNTIME" 'BEGIN { printf "%.0f", 100 * n / hz / t }'
}

# phase_rate SERVER PREFIX ADDR PORT FILE RATE DNSPERF_ARGS...: at a fixed rate, the server's CPU per
# NOERROR answer (µs) and the p50/p99 latency (µs) from dnsperf -v's per-query lines.
phase_rate() {
	local server=$1 prefix=$2 addr=$3 port=$4 file=$5 rate=$6
	shift 6
	run_dnsperf "$server" "${prefix}_rate" "$addr" "$port" -d "$file" -l "$DURATION" -Q "$rate" -v "$@"
	local note p50 p99
	note=$(join_notes "$(loss_note)" "$(rate_note "$rate")" "$(other_note)")
	put "$server" "${prefix}_cpu_us" \
		"$(awk -v n="$P_SERVER_TICKS" -v hz="$HZ" -v ok="$P_OK" 'BEGIN { printf "%.1f", n * 1e6 / hz / ok }')" "$note"
	read -r p50 p99 < <(percentiles "$P_OUT")
	put "$server" "${prefix}_p50_us" "$p50" "$note"
	put "$server" "${prefix}_p99_us" "$p99" "$note"
	# Keep the summary; the per-query lines (10 MB a run) are compressed once the servers are stopped.
	grep -v '^> ' "$P_OUT" >"$P_OUT.summary"
}
