# bench/lib/report.awk: the bench's one markdown table, from the results file bench/run writes
# ("server<TAB>metric<TAB>value<TAB>note" lines).
#
# Rows are metrics, columns are servers. Each figure comes with its ratio to the best peer (the best of
# Unbound, dnsmasq and dnsdist: the lowest, or the highest for throughput); podns's issue-5 target is
# checked in the last column. Run with -v servers="unbound dnsmasq dnsdist podns".
#
# A SERVFAIL is a failure, not an answer: a figure from a run where a server got any (its note says
# "N SERVFAIL") is marked ❌ in that server's cell, and podns's target for it fails whatever the figure.

BEGIN {
	FS = "\t"
	# key | label | unit | better (low/high/none) | podns target (ratio "r<=1.25", absolute "a<=20")
	def("hit_max_qps", "cache hit: max qps (answered/s)", "", "high", "")
	def("hit_max_core", "cache hit: server core busy at max qps", "%", "none", "")
	def("hit_cpu_us", "cache hit @ %HIT_RATE%: CPU per answer", " µs", "low", "r<=1.25")
	def("hit_p50_us", "cache hit @ %HIT_RATE%: p50 latency", " µs", "low", "")
	def("hit_p99_us", "cache hit @ %HIT_RATE%: p99 latency", " µs", "low", "r<=2")
	def("miss_cpu_us", "cache miss @ %MISS_RATE%: CPU per answer", " µs", "low", "r<=1")
	def("miss_p50_us", "cache miss @ %MISS_RATE%: p50 latency", " µs", "low", "")
	def("miss_p99_us", "cache miss @ %MISS_RATE%: p99 latency", " µs", "low", "")
	def("miss_avg_us", "cache miss @ %MISS_RATE%: average latency", " µs", "low", "")
	def("miss_rate_rcodes", "cache miss @ %MISS_RATE%: NOERROR / NXDOMAIN / SERVFAIL / other / lost", "", "none", "s")
	def("miss_nagle_cpu_us", "cache miss @ %MISS_RATE%, Knot without TCP_NODELAY: CPU per answer", " µs", "low", "")
	def("miss_nagle_p50_us", "cache miss @ %MISS_RATE%, Knot without TCP_NODELAY: p50 latency", " µs", "low", "")
	def("miss_nagle_p99_us", "cache miss @ %MISS_RATE%, Knot without TCP_NODELAY: p99 latency", " µs", "low", "")
	def("miss_max_qps", "cache miss: max qps (answered/s)", "", "high", "r>=1")
	def("miss_max_core", "cache miss: server core busy at max qps", "%", "none", "")
	def("miss_max_up_core", "cache miss: upstream's core share at max qps", "%", "none", "")
	def("miss_max_dnsperf_core", "cache miss: dnsperf's core share at max qps", "%", "none", "")
	def("miss_max_client_core", "cache miss: client core (upstream + dnsperf + their softirq) busy at max qps", "%", "none", "")
	def("miss_max_client_us", "cache miss: client core µs per answer at max qps", " µs", "none", "")
	def("miss_max_rcodes", "cache miss at max qps: NOERROR / NXDOMAIN / SERVFAIL / other / lost", "", "none", "s")
	def("rss_mib", "peak RSS (VmHWM) over the bench", " MiB", "low", "a<=20")
	def("idle_pct", "CPU with no queries for %IDLE% s", "% of a core", "low", "a<0.1")
	def("start_ms", "start to first answer (median of %TRIALS%)", " ms", "low", "a<=100")
	def("binary_mb", "static binary size", " MB", "none", "a<=10")
	def("rcodes", "answers over all runs: NOERROR / NXDOMAIN / SERVFAIL / other / lost", "", "none", "s")
	n = split(servers, col, " ")
	# -v targets="key=r>=1.5,key2=..." replaces the default targets of those rows (bench/upstream
	# checks issue 14's targets with the same table).
	nt = split(targets, tl, ",")
	for (i = 1; i <= nt; i++) if (split(tl[i], kv, "=") >= 2) tgt[kv[1]] = substr(tl[i], length(kv[1]) + 2)
}

function def(key, label, unit, better, target) {
	nkeys++
	keys[nkeys] = key
	lab[key] = label
	unt[key] = unit
	dir[key] = better
	tgt[key] = target
}

{ val[$1, $2] = $3; note[$1, $2] = $4; have[$1] = 1 }

function isnum(v) { return v ~ /^[0-9.]+$/ }

# best(key): the best peer's figure, or "" when no peer has one.
function best(key,    s, v, b) {
	b = ""
	for (s in peer) {
		if (!((s, key) in val) || !isnum(v = val[s, key])) continue
		if (b == "" || (dir[key] == "low" && v + 0 < b + 0) || (dir[key] == "high" && v + 0 > b + 0)) b = v
	}
	return b
}

function fmt(v, unit) {
	if (v == "inf") return "timeout"
	if (unit == "" && isnum(v)) return sprintf("%d", v)
	return v unit
}

function cell(s, key, b,    v, out) {
	if (!((s, key) in val)) return "—"
	v = val[s, key]
	out = fmt(v, unt[key])
	if (dir[key] != "none" && b != "" && b + 0 > 0 && isnum(v)) out = out sprintf(" (%.2f×)", v / b)
	if (note[s, key] != "") out = out " ⚠ " note[s, key]
	if (note[s, key] ~ /(^|; )[0-9]+ SERVFAIL/) out = "❌ " out
	return out
}

# verdict(key, b): podns's figure against its target, "✅"/"❌" with the target, or "".
function verdict(key, b,    t, op, lim, v, x, ok) {
	t = tgt[key]
	if (t == "" || !(("podns", key) in val)) return t == "" ? "" : "(no podns figure)"
	v = val["podns", key]
	if (note["podns", key] ~ /(^|; )[0-9]+ SERVFAIL/) return "❌ SERVFAIL"
	if (t == "s") return "✅ 0 SERVFAIL"
	match(substr(t, 2), /^[<>=]+/)
	op = substr(t, 2, RLENGTH); lim = substr(t, 2 + RLENGTH) + 0
	if (v == "inf") x = 1e18
	else if (!isnum(v)) return "?"
	else x = v + 0
	if (substr(t, 1, 1) == "r") {
		if (b == "" || b + 0 == 0) return "(no peer figure)"
		x = x / b
	}
	ok = (op == "<=" && x <= lim) || (op == ">=" && x >= lim) || (op == "<" && x < lim)
	return sprintf("%s %s %s%s", ok ? "✅" : "❌", op, lim, substr(t, 1, 1) == "r" ? "× best peer" : unt[key])
}

END {
	for (i = 1; i <= n; i++) if (col[i] != "podns") peer[col[i]] = 1
	hdr = "| metric |"
	sep = "|---|"
	for (i = 1; i <= n; i++) { hdr = hdr " " col[i] " |"; sep = sep "---|" }
	print hdr " podns target |"
	print sep "---|"
	for (k = 1; k <= nkeys; k++) {
		key = keys[k]
		any = 0
		for (i = 1; i <= n; i++) if ((col[i], key) in val) any = 1
		if (!any) continue
		label = lab[key]
		gsub(/%HIT_RATE%/, hit_rate, label); gsub(/%MISS_RATE%/, miss_rate, label)
		gsub(/%IDLE%/, idle, label); gsub(/%TRIALS%/, trials, label)
		b = best(key)
		line = "| " label " |"
		for (i = 1; i <= n; i++) line = line " " cell(col[i], key, b) " |"
		print line " " verdict(key, b) " |"
	}
}
