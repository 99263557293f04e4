# bench/lib/proc.sh: starting, watching and stopping the processes of one bench run.
# Sourced by bench/run. Every process the bench starts is recorded in PIDS and stopped by stop_all,
# which bench/run's EXIT trap calls, so a failed or interrupted run leaves nothing behind.

declare -A PIDS=()    # name -> pid of a running process the bench started
declare -a PID_ORDER=() # names in start order, so they are stopped in reverse

# start_bg NAME CMD...: start CMD in the background with its output in $RAW/NAME.log. CMD is exec'd
# (env and taskset exec their argument), so $! is the server's own pid: the one whose /proc/PID/stat
# counts its CPU.
start_bg() {
	local name=$1
	shift
	"$@" >"$RAW/$name.log" 2>&1 &
	PIDS[$name]=$!
	PID_ORDER+=("$name")
}

# stop_one NAME: SIGTERM, up to 5 s to exit, then SIGKILL; only the pid the bench started.
stop_one() {
	local name=$1 pid=${PIDS[$1]:-} i
	[[ -n $pid ]] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	unset "PIDS[$name]"
}

stop_all() {
	local i
	for ((i = ${#PID_ORDER[@]} - 1; i >= 0; i--)); do
		stop_one "${PID_ORDER[i]}"
	done
	PID_ORDER=()
}

# alive NAME: fail loudly when a server died during the run (its figures would be meaningless).
alive() {
	local pid=${PIDS[$1]:-}
	if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
		echo "bench: $1 is not running; its log:" >&2
		tail -20 "$RAW/$1.log" >&2
		exit 1
	fi
}

# wait_answer ADDR PORT NAME: poll with kdig until NAME gets an A answer (up to 10 s).
wait_answer() {
	local i
	for ((i = 0; i < 100; i++)); do
		if [[ -n $(kdig @"$1" -p "$2" +short +timeout=1 +retry=0 "$3" A 2>/dev/null) ]]; then
			return 0
		fi
		sleep 0.1
	done
	echo "bench: no answer for $3 from $1#$2 after 10 s" >&2
	return 1
}
