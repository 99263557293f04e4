//go:build linux

package e2e

import (
	"context"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/podns/podns/internal/kubetest"
	"github.com/podns/podns/internal/proctest"
)

// e2eCleanupMargin is kept free before the test binary's deadline so that the namespaces are always
// removed by t.Cleanup: a test killed by -timeout would leave them behind.
const e2eCleanupMargin = 30 * time.Second

// e2eTools maps each program the suite runs to the Debian package that ships it, so a skip tells CI
// exactly what to install.
func e2eTools() map[string]string {
	return map[string]string{
		"ip":       "iproute2",
		"nft":      "nftables",
		"sysctl":   "procps",
		"knotd":    "knot",
		"dig":      "bind9-dnsutils",
		"gcc":      "gcc",
		"musl-gcc": "musl-tools",
	}
}

// e2eSkip skips the test, or fails it when PODNS_E2E_REQUIRE is set: CI sets it so that a missing tool or
// privilege there is an error, not a silently skipped suite.
func e2eSkip(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("PODNS_E2E_REQUIRE") != "" {
		t.Fatalf("end-to-end suite cannot run and PODNS_E2E_REQUIRE is set: "+format, args...)
	}
	t.Skipf("skipping the end-to-end suite: "+format, args...)
}

// requireE2E skips the test unless it runs as root with every tool installed.
func requireE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping the end-to-end suite in -short mode")
	}
	if os.Geteuid() != 0 {
		e2eSkip(t, "it needs root to create network namespaces (CI runs it as root)")
	}
	var missing []string
	for prog, pkg := range e2eTools() {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, prog+" (Debian package "+pkg+")")
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		e2eSkip(t, "missing %s", strings.Join(missing, ", "))
	}
}

// e2eContext ends e2eCleanupMargin before the test's deadline.
func e2eContext(t *testing.T) context.Context {
	ctx := t.Context()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-e2eCleanupMargin))
		t.Cleanup(cancel)
	}
	return ctx
}

// startE2E is how every namespace-suite test begins: the world (its namespaces checked gone when the
// test ends), the clients built, Knot as the internet, the control plane with the cluster's objects
// (and more's, when given), CoreDNS as kube-dns behind the ClusterIP from both pods, and the ClusterFirst
// pod's resolv.conf.
func startE2E(t *testing.T, more func(ctx context.Context, t *testing.T, kc *kubetest.Client)) (*e2eWorld, []e2eClient, *kubetest.Cluster, *proctest.Proc) {
	t.Helper()
	requireE2E(t)
	prefix := e2eRunPrefix()
	t.Cleanup(func() {
		// Registered first, so it runs last: every namespace of the run must be gone.
		if left, err := netnsLeft(prefix); err != nil || len(left) > 0 {
			t.Errorf("namespaces left after cleanup: %v (%v)", left, err)
		}
	})
	w := newE2EWorld(e2eContext(t), t)
	clients := w.buildClients()
	knot := w.startKnot()
	w.waitZones(knot, "example.org.", "example.net.")
	cluster := kubetest.Start(t, kubetest.Options{Netns: w.dns,
		ServiceCIDR: e2eServiceCIDR + "," + e2eServiceCIDR6})
	createCluster(w.ctx, t, cluster.Client)
	if more != nil {
		more(w.ctx, t, cluster.Client)
	}
	kubeDNS := w.startCoreDNS(cluster)
	w.waitClusterIP(w.cf, kubeDNS)
	w.waitClusterIP(w.podns, kubeDNS)
	w.setResolvConf(w.cf, e2eClusterFirstResolvConf)
	return w, clients, cluster, kubeDNS
}

// TestE2E is "Kubernetes in a box" (issues 7 and 15): a kube-dns namespace running the real cluster DNS
// (etcd, kube-apiserver and CoreDNS 1.15.0 with kubeadm's Corefile, forwarding to Knot as the
// internet) behind the ClusterIP 10.96.0.10, which each pod namespace DNATs to it; one pod with
// ClusterFirst's resolv.conf, one with podns on 127.0.0.1:53; glibc, musl, Go and dig as clients. It
// checks that podns gives the answers ClusterFirst gives, that a Service created and deleted while it
// runs comes and goes within its TTL, then measures both under 3% random UDP loss.
//
// Why the control plane runs inside the kube-dns namespace: CoreDNS there must reach the API server,
// and the namespaces have no link to the machine (nothing sent in them can leave). On the namespace's
// own loopback the API server is reachable from CoreDNS and from nothing else; the test process
// reaches it by dialing from inside (internal/netns).
//
// It needs root, the tools of e2eTools and the binaries of .ci/kubebins.sh; CI runs it as root with
// PODNS_E2E_REQUIRE=1.
func TestE2E(t *testing.T) {
	w, clients, cluster, _ := startE2E(t, nil)
	// podns, as the kubelet writes it for the pod spec users copy (examples/native-sidecar.yaml:
	// dnsPolicy None, nameserver 127.0.0.1, no search list since podns expands names itself, and the
	// options it documents), so the suite measures what users run.
	podnsConf := podnsResolvConf(t)
	t.Logf("podns pod's resolv.conf, from %s:\n%s", e2eManifest, podnsConf)
	w.setResolvConf(w.podns, podnsConf)
	podns := w.startPodns(w.buildPodns())

	var reference map[string]map[string]string
	t.Run("answers", func(t *testing.T) {
		reference = testAnswers(t, w.forTest(t), clients)
		testDigAnswers(t, w.forTest(t))
	})
	if reference == nil {
		t.Fatal("no reference answers: the answers phase stopped early")
	}
	t.Run("change", func(t *testing.T) {
		testChange(t, w.forTest(t), cluster.Client, clients[0])
	})
	t.Run("loss", func(t *testing.T) {
		testLoss(t, w.forTest(t), clients, reference, podns)
	})

	w.checkPodnsRaces(podns)
	for _, netns := range []string{w.dns, w.cf.netns, w.podns.netns} {
		if escaped := w.nftCounters(netns)["escaped"]; escaped != 0 {
			t.Errorf("%s: %d packets tried to leave for an address outside the test world, want 0", netns, escaped)
		}
	}
}
