#!/usr/bin/env bash
# Assembles a Go builder base image from this machine's own Go toolchain, because no registry for base
# images is reachable here (only the Go module proxy and Debian's packages are). The Dockerfile takes its
# builder image as the build argument BUILDER; this script makes a local one to pass there:
#
#   /usr/local/go             the machine's toolchain (GOROOT; test/, api/ and doc/ left out: not used to build)
#   /bin/busybox, /bin/sh ... busybox-static, so that Dockerfile RUN lines have a shell
#   /etc/ssl/certs/...        the CA bundle, so that `go` inside reaches the module proxy over HTTPS
#
# Usage: .ci/builder.sh [IMAGE]   (default localhost/podns-builder:<go version>); prints the image name.
# Buildah global options come from BUILDAH_OPTS (default: --storage-driver vfs). Needs root (buildah mount)
# and the Debian packages buildah, busybox-static and ca-certificates.
set -euo pipefail

GOROOT_HOST=${GOROOT_HOST:-$(go env GOROOT 2>/dev/null || echo /usr/local/go)}
BUSYBOX=${BUSYBOX:-/bin/busybox}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
read -r -a BH <<<"${BUILDAH_OPTS:---storage-driver vfs}"

die() { echo "builder.sh: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "needs root (buildah mount of a working container)"
command -v buildah >/dev/null || die "buildah not found (Debian package buildah)"
[[ -x $GOROOT_HOST/bin/go ]] || die "no Go toolchain at $GOROOT_HOST"
[[ -r $CA_BUNDLE ]] || die "no CA bundle at $CA_BUNDLE (Debian package ca-certificates)"
[[ -x $BUSYBOX ]] || die "no $BUSYBOX (Debian package busybox-static)"

GOVERSION=$("$GOROOT_HOST/bin/go" env GOVERSION)
IMAGE=${1:-localhost/podns-builder:$GOVERSION}

ctr=$(buildah "${BH[@]}" from scratch)
cleanup() { buildah "${BH[@]}" rm "$ctr" >/dev/null 2>&1 || true; }
trap cleanup EXIT

mnt=$(buildah "${BH[@]}" mount "$ctr")
mkdir -p "$mnt/usr/local/go" "$mnt/bin" "$mnt/etc/ssl/certs" "$mnt/root" "$mnt/go" "$mnt/tmp" "$mnt/src"
chmod 1777 "$mnt/tmp"
for part in "$GOROOT_HOST"/*; do
	case ${part##*/} in test | api | doc) continue ;; esac
	cp -a "$part" "$mnt/usr/local/go/"
done
cp "$BUSYBOX" "$mnt/bin/busybox"
# The builder has no libc, so busybox and go must be static executables: running each inside the new root
# proves it. busybox then makes a symlink for every applet (sh, mkdir, ls ...).
chroot "$mnt" /bin/busybox true || die "$BUSYBOX does not run without a libc (use Debian's busybox-static)"
out=$(GOROOT=/usr/local/go chroot "$mnt" /usr/local/go/bin/go version 2>&1) ||
	die "$GOROOT_HOST/bin/go does not run without a libc: $out"
chroot "$mnt" /bin/busybox --install -s /bin
cp -L "$CA_BUNDLE" "$mnt/etc/ssl/certs/ca-certificates.crt"
# A minimal passwd/group so that tools which look up uid 0 (and the final image's 65532) find names.
printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/false\n' >"$mnt/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$mnt/etc/group"
buildah "${BH[@]}" umount "$ctr" >/dev/null

# The same variables the official golang images set, so the Dockerfile behaves alike on both; GOTOOLCHAIN
# local keeps `go` from fetching another toolchain when go.mod asks for a newer one.
buildah "${BH[@]}" config \
	--env PATH=/go/bin:/usr/local/go/bin:/bin \
	--env GOROOT=/usr/local/go \
	--env GOPATH=/go \
	--env GOTOOLCHAIN=local \
	--env HOME=/root \
	--env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
	--workingdir /src \
	--cmd /bin/sh \
	--label org.opencontainers.image.description="podns CI builder: $GOVERSION + busybox from the host" \
	"$ctr"
buildah "${BH[@]}" commit --quiet --rm "$ctr" "$IMAGE" >/dev/null
trap - EXIT
echo "$IMAGE"
