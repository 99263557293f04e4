#!/usr/bin/env bash
# Builds the real cluster DNS the tests and the bench measure podns against, from Go modules through the
# module proxy (no container runtime): CoreDNS 1.15.0 (the upstream of record) and 1.14.7 (an older
# release whose replies differ: it echoes an empty edns-tcp-keepalive option). Binaries are cached in
# $PODNS_BIN_CACHE (default ~/.cache/podns/bin) and built only when missing:
#
#   coredns-1.15.0/coredns   coredns-1.14.7/coredns
#
# internal/testbin finds them there. Usage: bash .ci/kubebins.sh [NAME...]   (default: all)
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin
CACHE=${PODNS_BIN_CACHE:-$HOME/.cache/podns/bin}

build_coredns() { # version
	local v=$1 dir="$CACHE/coredns-$1"
	[[ -x $dir/coredns ]] && return
	mkdir -p "$dir"
	echo "kubebins: building CoreDNS $v" >&2
	local start=$SECONDS
	GOBIN="$dir" CGO_ENABLED=0 GOFLAGS=-mod=mod go install "github.com/coredns/coredns@v$v"
	echo "kubebins: CoreDNS $v built in $((SECONDS - start)) s" >&2
}

names=("$@")
((${#names[@]})) || names=(coredns-1.15.0 coredns-1.14.7)
for n in "${names[@]}"; do
	case $n in
	coredns-*) build_coredns "${n#coredns-}" ;;
	*)
		echo "kubebins: unknown binary $n" >&2
		exit 2
		;;
	esac
done
