# podns: a DNS stub resolver sidecar. Two stages: a Go builder makes one static executable, and the image
# that ships holds only that file, run as a numeric non-root user.
#
#   docker build -t podns .
#   buildah bud --build-arg BUILDER=localhost/podns-builder:go1.26.8 -t podns .   (see .ci/image.sh)
#
# BUILDER is any image with a Go toolchain of the go.mod version (or newer) and a /bin/sh; the default is
# the official one. CI assembles its own from the machine's toolchain (.ci/builder.sh) because no registry
# for base images is reachable there.
ARG BUILDER=docker.io/library/golang:1.26

FROM ${BUILDER} AS build
# Module downloads go through the proxy the caller names (build arguments, empty means Go's defaults).
ARG GOPROXY
ARG GOFLAGS
ARG GONOSUMDB
ARG GOPRIVATE
ARG GOSUMDB
# Set by buildx/buildah for cross builds; empty means the builder's own platform.
ARG TARGETOS
ARG TARGETARCH
# CGO off: the binary must run in an image with no libc. GOTOOLCHAIN local: never fetch a toolchain.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOPATH=/go GOCACHE=/root/.cache/go-build
WORKDIR /src
COPY . .
# The cache mounts keep downloaded modules and compiled packages between builds on the same machine.
# Only the modules the binary imports are fetched, not the test-only ones (k8s.io/api for examples/).
# -trimpath: no build-machine paths in the binary; -s -w: no symbol table or DWARF (a smaller image;
# panics still print file:line, from the pclntab). -buildvcs=false: .git is not in the build context.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false -ldflags='-s -w' -o /out/podns .

FROM scratch
COPY --from=build /out/podns /podns
# 65532 is the "nonroot" uid/gid of distroless images: numeric, so that the kubelet can check
# runAsNonRoot without an /etc/passwd in the image. The examples set the same runAsUser.
USER 65532:65532
# 53 UDP+TCP: DNS for the pod (PODNS_LISTEN). 9153: /metrics, /healthz, /readyz (PODNS_HTTP_ADDR).
EXPOSE 53/udp 53/tcp 9153/tcp
ENTRYPOINT ["/podns"]
