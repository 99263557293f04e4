#!/usr/bin/env bash
# Builds the real cluster DNS the tests and the bench measure podns against, from Go modules through the
# module proxy (no container runtime): CoreDNS 1.15.0 (the upstream of record) and 1.14.7 (an older
# release whose replies differ: it echoes an empty edns-tcp-keepalive option), and the control plane its
# kubernetes plugin reads Services and EndpointSlices from: etcd 3.6.16 and kube-apiserver 1.37.2.
# Binaries are cached in $PODNS_BIN_CACHE (default ~/.cache/podns/bin) and built only when missing:
#
#   coredns-1.15.0/coredns   coredns-1.14.7/coredns   etcd-3.6.16/etcd   kube-apiserver-1.37.2/kube-apiserver
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

# build_main DIR EXE MODULE@VERSION IMPORT CALL [LDFLAGS]: a main package of its own, in a throwaway module
# made in a temporary directory, that imports IMPORT and runs CALL. etcd's server module and kubernetes
# carry replace directives (to their own subdirectories), so `go install pkg@version` refuses both; a
# module that requires them builds. Its go.mod and go.sum live and die with the temporary directory.
build_main() {
	local dir=$1 exe=$2 req=$3 imp=$4 call=$5 ldflags=${6:-}
	local tmp status=0
	tmp=$(mktemp -d)
	cat >"$tmp/main.go" <<-GO
		package main

		import (
		${imp}
		)

		func main() { ${call} }
	GO
	# A subshell for the cd; the steps are chained with && because set -e does not apply left of ||.
	(
		cd "$tmp" &&
			go mod init podns.test/"$exe" 2>/dev/null &&
			go mod edit -require "$req" &&
			eval "${MODEDIT:-true}" &&
			go mod tidy &&
			mkdir -p "$dir" &&
			CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$dir/$exe.tmp" . &&
			mv "$dir/$exe.tmp" "$dir/$exe"
	) || status=$?
	rm -rf "$tmp"
	return "$status"
}

build_etcd() { # version
	local v=$1 dir="$CACHE/etcd-$1"
	[[ -x $dir/etcd ]] && return
	echo "kubebins: building etcd $v" >&2
	local start=$SECONDS
	build_main "$dir" etcd "go.etcd.io/etcd/server/v3@v$v" \
		'"os"; "go.etcd.io/etcd/server/v3/etcdmain"' 'etcdmain.Main(os.Args)'
	echo "kubebins: etcd $v built in $((SECONDS - start)) s" >&2
}

# kube-apiserver: kubernetes's go.mod replaces each k8s.io/* staging module by ./staging/src/k8s.io/NAME,
# a directory its module zip does not carry; every one of them is also published as a module of its own at
# v0.MINOR.PATCH, so the builder's module replaces each by that release.
build_apiserver() { # version
	local v=$1 dir="$CACHE/kube-apiserver-$1"
	[[ -x $dir/kube-apiserver ]] && return
	echo "kubebins: building kube-apiserver $v" >&2
	local start=$SECONDS
	local mod staging=() minor=${v#*.}
	minor=${minor%%.*}
	mod=$(go mod download -json "k8s.io/kubernetes@v$v" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$mod")
	((${#staging[@]})) || {
		echo "kubebins: no staging modules found in $mod" >&2
		exit 1
	}
	local edit="" m
	for m in "${staging[@]}"; do edit+="go mod edit -replace $m=$m@v0.${v#*.};"; done
	MODEDIT=$edit build_main "$dir" kube-apiserver "k8s.io/kubernetes@v$v" \
		'"os"; "k8s.io/component-base/cli"; "k8s.io/kubernetes/cmd/kube-apiserver/app"' \
		'os.Exit(cli.Run(app.NewAPIServerCommand()))' \
		"-X k8s.io/component-base/version.gitVersion=v$v -X k8s.io/component-base/version.gitMajor=${v%%.*} -X k8s.io/component-base/version.gitMinor=$minor"
	echo "kubebins: kube-apiserver $v built in $((SECONDS - start)) s (${#staging[@]} staging modules replaced)" >&2
}

names=("$@")
((${#names[@]})) || names=(coredns-1.15.0 coredns-1.14.7 etcd-3.6.16 kube-apiserver-1.37.2)
for n in "${names[@]}"; do
	case $n in
	coredns-*) build_coredns "${n#coredns-}" ;;
	etcd-*) build_etcd "${n#etcd-}" ;;
	kube-apiserver-*) build_apiserver "${n#kube-apiserver-}" ;;
	*)
		echo "kubebins: unknown binary $n" >&2
		exit 2
		;;
	esac
done
