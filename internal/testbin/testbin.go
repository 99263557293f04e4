// Package testbin finds the binaries of the real cluster DNS that tests run podns against (CoreDNS,
// and the control plane behind its kubernetes plugin). .ci/kubebins.sh builds them from Go modules into
// $PODNS_BIN_CACHE (default ~/.cache/podns/bin), one directory per binary and version.
package testbin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Names of the binaries .ci/kubebins.sh builds: the directory under the cache, and its executable.
const (
	CoreDNS     = "coredns-1.15.0" // the upstream of record: kube-dns as clusters run it
	CoreDNSPrev = "coredns-1.14.7" // an older release: echoes an empty edns-tcp-keepalive option
	// Etcd and KubeAPIServer are the control plane CoreDNS's kubernetes plugin reads from: the
	// releases a Kubernetes 1.37 cluster runs.
	Etcd          = "etcd-3.6.16"
	KubeAPIServer = "kube-apiserver-1.37.2"
)

// Path returns the executable of name: the directory name without its "-<version>" suffix
// ("kube-apiserver-1.37.2": <cache>/kube-apiserver-1.37.2/kube-apiserver).
func Path(name string) (string, error) {
	cache := os.Getenv("PODNS_BIN_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("locating the binary cache: %w", err)
		}
		cache = filepath.Join(home, ".cache", "podns", "bin")
	}
	exe := name
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		exe = name[:i]
	}
	p := filepath.Join(cache, name, exe)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not built (bash .ci/kubebins.sh %s): %w", name, name, err)
	}
	return p, nil
}

// Need returns the executable of name, or skips t when it is not built; under PODNS_E2E_REQUIRE (set by
// .ci/run) a missing binary fails t instead.
func Need(t testing.TB, name string) string {
	t.Helper()
	p, err := Path(name)
	if err != nil {
		if os.Getenv("PODNS_E2E_REQUIRE") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return p
}
