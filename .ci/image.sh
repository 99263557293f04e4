#!/usr/bin/env bash
# The container image check: build the Dockerfile for real with buildah (no daemon), check what the image
# holds, then run it the way a pod does and resolve names through it.
#
#   1. assemble a builder base from this machine's Go toolchain (.ci/builder.sh): no registry serves base
#      images here;
#   2. buildah bud the Dockerfile with BUILDER set to it (vfs storage, chroot isolation), passing GOPROXY,
#      GOFLAGS, GONOSUMDB, GOPRIVATE and GOSUMDB through so `go` in the builder reaches the module proxy;
#   3. the image: at most 10 MB (see MAX_IMAGE_BYTES), one file /podns, a static stripped -trimpath binary (go version -m),
#      USER 65532:65532, ENTRYPOINT ["/podns"];
#   4. in a network namespace made here (a pod's own: loopback only, plus the pod sysctl
#      net.ipv4.ip_unprivileged_port_start=53), knotd serves testdata/zones on 127.0.0.10:53 as the
#      cluster DNS; the image runs with its own user on the default 127.0.0.1:53 and PODNS_UPSTREAMS set
#      to knotd; dig resolves a short service name (search expansion), an external name over TCP, and
#      `podns probe` run inside the image must exit 0;
#   5. SIGTERM: podns keeps answering during PODNS_DRAIN, then exits 0.
# Everything (containers, images, the storage, the namespace, knotd) is removed at exit, failed or not.
#
# Usage: bash .ci/image.sh   (as root; any working directory)
# Needs the Debian packages buildah, busybox-static, ca-certificates, knot, bind9-dnsutils, iproute2 and
# the Go toolchain at /usr/local/go (or GOROOT_HOST). Takes about 30 s.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONTEXT=${PODNS_IMAGE_CONTEXT:-$REPO} # the build context (a checkout of podns); this one by default
# The binary is 8.73 MB (2026-12-02, podns inject and podns webhook included; README.md, Deploying).
# 10 MB leaves some 15% for ordinary growth and still fails on a dependency the size of k8s.io/api's
# types, which once took it to 12.78 MB: every pod's sidecar runs it, and its size shows in their RSS.
MAX_IMAGE_BYTES=${MAX_IMAGE_BYTES:-10000000}
DRAIN=2s                                     # PODNS_DRAIN for step 5: short, to keep the check fast
UPSTREAM=127.0.0.10                          # knotd inside the namespace: the "cluster DNS service"

work=$(mktemp -d "${TMPDIR:-/tmp}/podns-image.XXXXXX")
tag=$(basename "$work" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9-')
netns=$tag
export BUILDAH_OPTS="--root $work/storage --runroot $work/runroot --storage-driver vfs"
read -r -a BH <<<"$BUILDAH_OPTS"
export BUILDAH_ISOLATION=chroot
IMAGE=localhost/podns:$tag
BUILDER=localhost/podns-builder:$tag
pids=()

log() { echo "image.sh: $*" >&2; }
fail() {
	log "FAIL: $*"
	for f in "$work"/*.log; do [[ -s $f ]] && { log "--- $f"; tail -n 30 "$f" >&2; }; done
	exit 1
}
bh() { buildah "${BH[@]}" "$@"; }
in_ns() { ip netns exec "$netns" "$@"; }

cleanup() {
	local rc=$?
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	if [[ -d $work/storage ]]; then
		bh rm --all >/dev/null 2>&1
		bh rmi --all --force >/dev/null 2>&1
	fi
	ip netns del "$netns" 2>/dev/null
	# Unmount anything buildah left under the work dir before deleting it, never across a mount.
	grep -o " $work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf --one-file-system "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $(id -u) == 0 ]] || { log "SKIP: needs root (buildah mount, network namespaces)"; exit 0; }
for cmd in buildah knotd dig ip; do
	command -v "$cmd" >/dev/null || fail "$cmd not found (install buildah, knot, bind9-dnsutils, iproute2)"
done
GO=${GOROOT_HOST:-/usr/local/go}/bin/go
[[ -x $GO ]] || GO=$(command -v go) || fail "no Go toolchain"

# --- 1 and 2: builder base, then the image ----------------------------------------------------------
t0=$SECONDS
GOROOT_HOST=$("$GO" env GOROOT) bash "$REPO/.ci/builder.sh" "$BUILDER" >"$work/builder.log" 2>&1 ||
	fail "assembling the builder base"
log "builder base $BUILDER assembled in $((SECONDS - t0)) s"

t0=$SECONDS
build_args=(--build-arg "BUILDER=$BUILDER" --build-arg "TARGETOS=linux" --build-arg "TARGETARCH=$("$GO" env GOARCH)")
for v in GOPROXY GOFLAGS GONOSUMDB GOPRIVATE GOSUMDB; do
	build_args+=(--build-arg "$v=$("$GO" env "$v")")
done
bh bud --isolation chroot --layers=false "${build_args[@]}" -t "$IMAGE" -f "$CONTEXT/Dockerfile" "$CONTEXT" \
	>"$work/build.log" 2>&1 || fail "buildah bud"
log "image $IMAGE built in $((SECONDS - t0)) s"

# --- 3: what the image holds ------------------------------------------------------------------------
ctr=$(bh from --name "$tag" "$IMAGE")
rootfs=$(bh mount "$ctr")
files=$(cd "$rootfs" && find . -mindepth 1 ! -type d | sort | tr '\n' ' ')
[[ $files == "./podns " ]] || fail "the image should hold only /podns, it holds: $files"
size=$(du -sb --apparent-size "$rootfs" | cut -f1)
((size <= MAX_IMAGE_BYTES)) || fail "image content is $size bytes, more than $MAX_IMAGE_BYTES"
bh push --quiet --compression-format gzip "$IMAGE" "oci-archive:$work/podns.oci.tar" >/dev/null
log "image content $size bytes (limit $MAX_IMAGE_BYTES); gzip-compressed OCI archive $(stat -c %s "$work/podns.oci.tar") bytes"

buildinfo=$("$GO" version -m "$rootfs/podns")
# (-trimpath keeps -ldflags out of the recorded settings, so "stripped" is read from the symbol table.)
for want in $'\tbuild\t-trimpath=true' $'\tbuild\tCGO_ENABLED=0'; do
	grep -qF -- "$want" <<<"$buildinfo" || fail "binary build settings lack '${want//$'\t'/ }': $buildinfo"
done
nm_out=$("$GO" tool nm "$rootfs/podns" 2>&1 || true)
grep -q 'no symbols' <<<"$nm_out" || fail "/podns has a symbol table: not stripped"
bh umount "$ctr" >/dev/null

config=$(bh inspect --type image --format '{{.OCIv1.Config.User}}|{{.OCIv1.Config.Entrypoint}}|{{.OCIv1.Config.Cmd}}' "$IMAGE") ||
	fail "buildah inspect $IMAGE"
[[ $config == '65532:65532|[/podns]|[]' ]] ||
	fail "image User|Entrypoint|Cmd is '$config', want '65532:65532|[/podns]|[]'"

# --- 4: run it as in a pod --------------------------------------------------------------------------
ip netns add "$netns" || fail "cannot create a network namespace"
in_ns ip link set lo up
# The same safe sysctl the examples set: lets the non-root user bind port 53.
in_ns sysctl -qw net.ipv4.ip_unprivileged_port_start=53

mkdir -p "$work/knot"
cat >"$work/knot/knot.conf" <<EOF
server:
    rundir: "$work/knot"
    listen: $UPSTREAM@53
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
log:
  - target: stderr
    any: info
EOF
ip netns exec "$netns" knotd -c "$work/knot/knot.conf" >"$work/knotd.log" 2>&1 &
pids+=($!)

dig_ns() { in_ns dig @127.0.0.1 +time=2 +tries=1 "$@"; }
wait_for() { # wait_for SECONDS CMD...: retry CMD every 0.2 s until it succeeds
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}
wait_for 10 in_ns dig @"$UPSTREAM" +time=1 +tries=1 +short graylog.apps.svc.cluster.local || fail "knotd did not start"

# The container's environment, as a pod spec would set it (PODNS_LISTEN left at its 127.0.0.1:53).
# Chroot isolation cannot join a namespace (--network ns:...), so buildah itself runs in it and the
# container shares buildah's ("host") network.
run_opts=(--isolation chroot --network host
	--env PODNS_UPSTREAMS="$UPSTREAM"
	--env PODNS_NAMESPACE=apps
	--env PODNS_HTTP_ADDR=127.0.0.1:9153
	--env PODNS_DRAIN="$DRAIN"
	--env PODNS_LOG_LEVEL=debug)
# Not through a shell function: $! must be buildah itself (ip netns exec execs it), so that cleanup's
# kill reaches it.
ip netns exec "$netns" buildah "${BH[@]}" run "${run_opts[@]}" "$ctr" -- /podns >"$work/podns.log" 2>&1 &
runner=$!
pids+=("$runner")
wait_for 15 dig_ns +short kubernetes.default.svc.cluster.local || fail "podns did not answer on 127.0.0.1:53"

# The process that runs is the image's entrypoint, with the image's user.
podns_pid() { # the podns process: a descendant of the buildah run process
	local p
	for p in /proc/[0-9]*; do
		[[ $(cat "$p/comm" 2>/dev/null) == podns ]] || continue
		local q=${p#/proc/}
		while ((q > 1)); do
			[[ $q == "$runner" ]] && { echo "${p#/proc/}"; return 0; }
			q=$(awk '{print $4}' "/proc/$q/stat" 2>/dev/null) || break
		done
	done
	return 1
}
pid=$(podns_pid) || fail "no podns process under buildah run"
uids=$(awk '/^Uid:/ {print $2, $3}' "/proc/$pid/status")
[[ $uids == "65532 65532" ]] || fail "podns runs with uids $uids, want 65532"

# A short name: podns expands it with the namespace's search list (ClusterFirst semantics), and answers
# with the client's question, a CNAME to the FQDN found, then its records.
out=$(dig_ns +noall +answer graylog A) || fail "dig graylog"
grep -qE '^graylog\.[[:space:]].*CNAME[[:space:]]+graylog\.apps\.svc\.cluster\.local\.$' <<<"$out" ||
	fail "graylog: no CNAME to graylog.apps.svc.cluster.local. in: $out"
grep -qE '^graylog\.apps\.svc\.cluster\.local\.[[:space:]].*A[[:space:]]+10\.0\.0\.7$' <<<"$out" ||
	fail "graylog: no A 10.0.0.7 in: $out"
# An external name, client over TCP.
out=$(dig_ns +tcp +short www.example.com AAAA) || fail "dig +tcp www.example.com"
[[ $out == 2001:db8::10 ]] || fail "www.example.com AAAA over TCP: got '$out', want 2001:db8::10"
# A name that does not exist anywhere: NXDOMAIN, not SERVFAIL.
out=$(dig_ns nope.example.com A) || fail "dig nope.example.com"
grep -q 'status: NXDOMAIN' <<<"$out" || fail "nope.example.com: want NXDOMAIN in: $out"
log "resolved graylog (search expansion), www.example.com over TCP, NXDOMAIN for nope.example.com"

# The exec probe of the examples, in the image (no shell there) and with the container's environment.
timeout 20 ip netns exec "$netns" buildah "${BH[@]}" run "${run_opts[@]}" "$ctr" -- /podns probe >"$work/probe.log" 2>&1 ||
	fail "podns probe exited $? while podns answers"
log "podns probe in the image exited 0"

# --- 5: SIGTERM drains: still answering for PODNS_DRAIN, then exit 0 ----------------------------------
kill -TERM "$pid"
sleep 0.5
out=$(dig_ns +short www.example.com A) || fail "no answer 0.5 s into the ${DRAIN} drain"
[[ $out == 192.0.2.10 ]] || fail "www.example.com during the drain: got '$out', want 192.0.2.10"
rc=0
timeout 20 tail --pid="$pid" -f /dev/null || fail "podns still running 20 s after SIGTERM"
wait "$runner" || rc=$?
((rc == 0)) || fail "podns exited with status $rc after SIGTERM, want 0"
log "SIGTERM: answered during the drain, exited 0"
log "PASS"
