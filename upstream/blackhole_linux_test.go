//go:build linux

package upstream

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/podns/podns/internal/proctest"
	"github.com/podns/podns/internal/testbin"
)

// The black-hole test's world: a network namespace of its own, two CoreDNS "pods" on addresses that
// exist only there, and a ClusterIP that nftables DNATs to each in turn per connection, as kube-proxy's
// IPVS mode does (its default scheduler is round robin). Nothing in it has a route out.
const (
	bhClusterIP = "10.96.0.10"
	bhPodA      = "10.244.9.1" // the pod that goes silent
	bhPodB      = "10.244.9.2"
	bhClient    = "10.244.9.100" // podns's address in the pod
)

// TestCoreDNSPodBlackholed: a kube-dns pod's address goes silent under podns's open connections (a
// node failure; a deleted pod whose network is gone before its process), with a second pod behind
// the ClusterIP. Its TCP then acknowledges nothing; a new connection through the ClusterIP reaches
// either pod. No lookup may fail, and none may take over 1 s. Needs root (namespaces, nftables).
func TestCoreDNSPodBlackholed(t *testing.T) {
	bin := testbin.Need(t, testbin.CoreDNS)
	ns := newBlackholeNetns(t)
	startCoreDNSIn(t, ns, bin, bhPodA)
	startCoreDNSIn(t, ns, bin, bhPodB)
	c := newTestClient(t, Config{Servers: []string{bhClusterIP + ":53"}, Dial: ns.dial})

	var (
		mu      sync.Mutex
		worst   time.Duration
		failed  []string
		asked   atomic.Int64
		stop    = make(chan struct{})
		workers sync.WaitGroup
	)
	// Eight lookups at a time, each followed by a short pause: a few connections open, spread over
	// both pods.
	for w := range 8 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
				r := askReal(c, fmt.Sprintf("w%d-%d.load.podns.test.", w, i))
				asked.Add(1)
				mu.Lock()
				worst = max(worst, r.latency)
				if r.err != nil {
					failed = append(failed, fmt.Sprintf("%s: %v (%v)", r.name, r.err, r.latency.Round(time.Millisecond)))
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second) // the load's first second, before the black hole: the scenario's script
	before := c.Stats()
	ns.nft(t, fmt.Sprintf(`table ip blackhole {
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr %[1]s drop
		ip saddr %[1]s drop
	}
}`, bhPodA))
	time.Sleep(3 * time.Second) // three seconds of load into the black hole: the scenario's script
	close(stop)
	workers.Wait()

	st := c.Stats()
	t.Logf("%d lookups, worst %v; before the black hole %d connections opened; after: %d more, %d silent closes, %d slow dials, %d resends, %d hedges",
		asked.Load(), worst, before.ConnsOpened, st.ConnsOpened-before.ConnsOpened, st.SilentPeers, st.SlowDials, st.Resends, st.Hedges)
	for _, f := range failed {
		t.Errorf("lookup failed: %s", f)
	}
	if worst > time.Second {
		t.Errorf("got a lookup taking %v, want ≤ 1s", worst)
	}
	// Nothing to prove if the silent pod never held a query: the pool must have met it.
	if st.SilentPeers+st.SlowDials == 0 {
		t.Errorf("got no silent close and no slow dial: the black-holed pod was never met")
	}
}

// blackholeNetns is a network namespace made by the test; dial and listen run in it.
type blackholeNetns struct {
	name string
	fd   int // open on /run/netns/<name>
}

func newBlackholeNetns(t *testing.T) *blackholeNetns {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root for a network namespace")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "needs %s (Debian packages iproute2, nftables)", tool)
		}
	}
	removeStaleBlackholeNetns()
	ns := &blackholeNetns{name: fmt.Sprintf("podns-up-%d", os.Getpid())}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	exec.Command("ip", "netns", "del", ns.name).Run() // a leftover of a killed run
	run("ip", "netns", "add", ns.name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns.name).Run() })
	in := []string{"ip", "-n", ns.name}
	run(append(in, "link", "set", "lo", "up")...)
	run(append(in, "addr", "add", bhPodA+"/32", "dev", "lo")...)
	run(append(in, "addr", "add", bhPodB+"/32", "dev", "lo")...)
	// The ClusterIP is on no interface; a route for the service range lets the route lookup before
	// DNAT succeed, as on a node.
	// The client's own address: without one, its packets would leave from the first address on lo,
	// a pod's, and the black hole would swallow them all.
	run(append(in, "addr", "add", bhClient+"/32", "dev", "lo")...)
	run(append(in, "route", "add", "10.96.0.0/12", "dev", "lo", "src", bhClient)...)
	// Round robin, not iptables mode's random pick: with a random pick, the connections open before the
	// black hole all reach the other pod in one run in 2^n (n connections), and the test then has
	// nothing to prove. In turn, the first connection reaches pod A.
	ns.nft(t, fmt.Sprintf(`table ip kubeproxy {
	chain out {
		type nat hook output priority -100; policy accept;
		ip daddr %s tcp dport 53 dnat to numgen inc mod 2 map { 0 : %s, 1 : %s }
	}
}`, bhClusterIP, bhPodA, bhPodB))
	fd, err := unix.Open(filepath.Join("/run/netns", ns.name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("opening the namespace: %v", err)
	}
	ns.fd = fd
	t.Cleanup(func() { unix.Close(fd) })
	return ns
}

// removeStaleBlackholeNetns deletes the namespaces of earlier runs whose test binary is gone (a run
// killed before its cleanup): the name ends in the binary's PID.
func removeStaleBlackholeNetns() {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		pid, ok := strings.CutPrefix(e.Name(), "podns-up-")
		if !ok {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", pid)); os.IsNotExist(err) {
			exec.Command("ip", "netns", "del", e.Name()).Run()
		}
	}
}

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("PODNS_E2E_REQUIRE") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// nft loads a ruleset into the namespace.
func (ns *blackholeNetns) nft(t *testing.T, rules string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns.name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s\n%s", err, out, rules)
	}
}

// dial opens a TCP connection from inside the namespace: on a thread of its own moved there, which
// never serves another goroutine (it is locked and ends with the goroutine). The socket stays in the
// namespace it was made in, whatever thread uses it afterwards.
func (ns *blackholeNetns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type dialed struct {
		c   net.Conn
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is discarded with the goroutine
		if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
			ch <- dialed{nil, fmt.Errorf("entering the namespace: %w", err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		ch <- dialed{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// startCoreDNSIn runs CoreDNS in the namespace on addr:53, serving testdata's zone from a file, and
// waits until it answers.
func startCoreDNSIn(t *testing.T, ns *blackholeNetns, bin, addr string) {
	t.Helper()
	dir := t.TempDir()
	zone, err := os.ReadFile("../testdata/upstream/podns.test.zone")
	if err != nil {
		t.Fatal(err)
	}
	zoneFile := filepath.Join(dir, "podns.test.zone")
	corefile := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(zoneFile, zone, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(corefile, []byte(fmt.Sprintf(corednsZone, addr, 53, zoneFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := proctest.Start(t, "coredns-"+addr, proctest.Options{Dir: dir, Netns: ns.name}, bin, "-conf", corefile, "-quiet")
	p.WaitReady(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		nc, err := ns.dial(ctx, "tcp", addr+":53")
		cancel()
		if err != nil {
			return err
		}
		defer nc.Close()
		dc := &dns.Conn{Conn: nc}
		nc.SetDeadline(time.Now().Add(200 * time.Millisecond))
		if err := dc.WriteMsg(query("ready.load.podns.test.", dns.TypeA)); err != nil {
			return err
		}
		_, err = dc.ReadMsg()
		return err
	})
}
