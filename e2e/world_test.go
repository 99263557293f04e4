//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// The addresses of the test world. They exist only inside the suite's own namespaces: the namespaces
// have no link to the machine and no default route, so nothing sent to them can leave.
const (
	// e2eClusterIP is the kube-dns Service address, the nameserver of ClusterFirst's resolv.conf and
	// podns's upstream. It is on no interface: each pod DNATs it to the server (as kube-proxy does).
	e2eClusterIP = "10.96.0.10"
	// e2eServiceCIDR is routed to the kube-dns link so that the route lookup before DNAT succeeds.
	e2eServiceCIDR = "10.96.0.0/12"
	// e2eNetnsPrefix starts every namespace name the suite creates; the test binary's PID follows it,
	// so runs never collide and leftovers of a killed run can be recognised and removed.
	e2eNetnsPrefix = "podns-e2e-"
	// e2eCommandTimeout bounds every setup command (ip, nft, compilers); none takes a second normally.
	e2eCommandTimeout = 60 * time.Second
)

// e2ePod is one pod namespace, linked to the kube-dns namespace by a veth pair on its own /30.
type e2ePod struct {
	netns  string // namespace name, also the /etc/netns/<netns>/ directory `ip netns exec` mounts
	link   string // the kube-dns side of the veth; also the prefix of that link's nftables counters
	addr   string // the pod's address on the veth
	server string // the kube-dns side address: where the pod's DNAT sends the ClusterIP
}

// e2eWorld is one run's network: the kube-dns namespace and the pods linked to it, the directory holding
// configuration, logs and binaries, and the processes started inside the namespaces. Every piece is
// removed by t.Cleanup, whether the test passes, fails or panics.
type e2eWorld struct {
	t        *testing.T
	ctx      context.Context // ends a margin before the test's deadline, so cleanup always has time
	dir      string          // per-run temporary directory
	testdata string          // absolute path of this package's testdata/
	zones    string          // absolute path of the module's testdata/zones/, shared with other tests
	dns      string          // the kube-dns namespace
	cf       *e2ePod         // the pod with ClusterFirst's resolv.conf
	podns    *e2ePod         // the pod with podns as its resolver
	// forwardPort is where kube-dns forwards the rest (on its loopback): Knot's, or dnsdist's in front
	// of it (PODNS_E2E_FORWARD_DELAY). Set by startKnot.
	forwardPort int
}

// newE2EWorld creates the namespaces, links, routes, nftables rules and resolv.conf files. It skips the
// test when namespaces cannot be created here.
func newE2EWorld(ctx context.Context, t *testing.T) *e2eWorld {
	t.Helper()
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatalf("locating testdata: %v", err)
	}
	zones, err := filepath.Abs(filepath.Join("..", "testdata", "zones"))
	if err != nil {
		t.Fatalf("locating the zones: %v", err)
	}
	removeStaleNetns(t)

	prefix := e2eRunPrefix()
	w := &e2eWorld{
		t:        t,
		ctx:      ctx,
		dir:      t.TempDir(),
		testdata: testdata,
		zones:    zones,
		dns:      prefix + "-kubedns",
		cf: &e2ePod{netns: prefix + "-cf", link: "cf",
			addr: "10.244.0.2", server: "10.244.0.1"},
		podns: &e2ePod{netns: prefix + "-podns", link: "pd",
			addr: "10.244.0.6", server: "10.244.0.5"},
	}

	if out, err := w.command("ip", "netns", "add", w.dns); err != nil {
		e2eSkip(t, "cannot create a network namespace here (%v: %s)", err, out)
	}
	t.Cleanup(func() { w.removeNetns(w.dns) })
	w.must("ip", "-n", w.dns, "link", "set", "lo", "up")
	for _, pod := range []*e2ePod{w.cf, w.podns} {
		w.addPod(pod)
	}
	w.renderNft(w.dns, "kubedns.nft.tmpl", struct{ Links []string }{[]string{w.cf.link, w.podns.link}})
	return w
}

// forTest returns the world with t as the test to report to, for use inside a subtest: failures then
// belong to the subtest, and FailNow runs on the subtest's goroutine as the testing package requires.
func (w *e2eWorld) forTest(t *testing.T) *e2eWorld {
	c := *w
	c.t = t
	return &c
}

// addPod creates a pod namespace, its veth pair to kube-dns, its route to the service range (and no
// other route), its ClusterIP DNAT and guard rules, and the files mounted over its /etc.
func (w *e2eWorld) addPod(pod *e2ePod) {
	w.t.Helper()
	w.must("ip", "netns", "add", pod.netns)
	w.t.Cleanup(func() { w.removeNetns(pod.netns) })

	// Interface names are per namespace, so short fixed names cannot clash with the machine's.
	w.must("ip", "link", "add", "eth0", "netns", pod.netns, "type", "veth",
		"peer", "name", pod.link, "netns", w.dns)
	// IPv6 off on the links: no router solicitations or neighbour discovery on the wire, so every
	// packet the counters see is DNS. Loopback keeps ::1.
	w.must("ip", "netns", "exec", pod.netns, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1")
	w.must("ip", "netns", "exec", w.dns, "sysctl", "-qw", "net.ipv6.conf."+pod.link+".disable_ipv6=1")
	w.must("ip", "-n", pod.netns, "addr", "add", pod.addr+"/30", "dev", "eth0")
	w.must("ip", "-n", w.dns, "addr", "add", pod.server+"/30", "dev", pod.link)
	w.must("ip", "-n", pod.netns, "link", "set", "lo", "up")
	w.must("ip", "-n", pod.netns, "link", "set", "eth0", "up")
	w.must("ip", "-n", w.dns, "link", "set", pod.link, "up")
	w.must("ip", "-n", pod.netns, "route", "add", e2eServiceCIDR, "via", pod.server)
	w.renderNft(pod.netns, "pod.nft.tmpl", struct{ ClusterIP, Server string }{e2eClusterIP, pod.server})

	etc := filepath.Join("/etc/netns", pod.netns)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		w.t.Fatalf("creating %s: %v", etc, err)
	}
	for _, name := range []string{"nsswitch.conf", "hosts"} {
		data, err := os.ReadFile(filepath.Join(w.testdata, "e2e", name))
		if err != nil {
			w.t.Fatalf("reading %s: %v", name, err)
		}
		w.writeFile(filepath.Join(etc, name), string(data))
	}
}

// setResolvConf writes the pod's /etc/resolv.conf; `ip netns exec` mounts it into every process started
// afterwards.
func (w *e2eWorld) setResolvConf(pod *e2ePod, text string) {
	w.t.Helper()
	w.writeFile(filepath.Join("/etc/netns", pod.netns, "resolv.conf"), text)
}

// removeNetns kills whatever still runs in a namespace of this run, deletes the namespace and its
// /etc/netns directory. It reports failures but never stops, so every other cleanup still runs.
func (w *e2eWorld) removeNetns(name string) {
	if err := deleteNetns(name); err != nil {
		w.t.Errorf("removing namespace %s: %v", name, err)
	}
}

// deleteNetns removes one namespace of the suite. The processes still inside are the suite's own:
// only the suite creates namespaces with e2eNetnsPrefix.
func deleteNetns(name string) error {
	if !strings.HasPrefix(name, e2eNetnsPrefix) {
		return fmt.Errorf("refusing to delete namespace %q: not the suite's", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eCommandTimeout)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "ip", "netns", "pids", name).Output()
	for _, field := range strings.Fields(string(out)) {
		// Never the test binary itself: a thread of it may be visiting the namespace.
		if pid, err := strconv.Atoi(field); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	var errs []error
	if out, err := exec.CommandContext(ctx, "ip", "netns", "del", name).CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("ip netns del: %w: %s", err, bytes.TrimSpace(out)))
	}
	if err := os.RemoveAll(filepath.Join("/etc/netns", name)); err != nil {
		errs = append(errs, err)
	}
	// /etc/netns itself goes only if empty: another tool may keep its own namespaces' files there.
	_ = os.Remove("/etc/netns")
	return errors.Join(errs...)
}

// e2eRunPrefix starts the name of every namespace of this run.
func e2eRunPrefix() string {
	return e2eNetnsPrefix + strconv.Itoa(os.Getpid())
}

// removeStaleNetns deletes namespaces left by an earlier run of the suite that was killed before its
// cleanup ran (a test binary timeout, SIGKILL): their names carry the PID of a process that is gone.
func removeStaleNetns(t *testing.T) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || !strings.HasPrefix(fields[0], e2eNetnsPrefix) {
			continue
		}
		name := fields[0]
		pid, _, _ := strings.Cut(strings.TrimPrefix(name, e2eNetnsPrefix), "-")
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue // that run is still going
		}
		if err := deleteNetns(name); err != nil {
			t.Logf("removing stale namespace %s: %v", name, err)
		} else {
			t.Logf("removed stale namespace %s of a killed run", name)
		}
	}
}

// netnsLeft lists the namespaces of this run that still exist (none, after cleanup).
func netnsLeft(prefix string) ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var left []string
	for _, line := range strings.Split(string(out), "\n") {
		if fields := strings.Fields(line); len(fields) > 0 && strings.HasPrefix(fields[0], prefix) {
			left = append(left, fields[0])
		}
	}
	return left, nil
}

// renderNft fills an nftables template from testdata/e2e and loads it into a namespace.
func (w *e2eWorld) renderNft(netns, name string, data any) {
	w.t.Helper()
	ruleset := w.render(name, data)
	cmd := exec.CommandContext(w.ctx, "ip", "netns", "exec", netns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("loading %s into %s: %v: %s", name, netns, err, out)
	}
}

// render fills a template from testdata/e2e.
func (w *e2eWorld) render(name string, data any) string {
	w.t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join(w.testdata, "e2e", name))
	if err != nil {
		w.t.Fatalf("parsing %s: %v", name, err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		w.t.Fatalf("rendering %s: %v", name, err)
	}
	return buf.String()
}

// nftCounters reads the named counters of a namespace: name → packets.
func (w *e2eWorld) nftCounters(netns string) map[string]uint64 {
	w.t.Helper()
	out, err := exec.CommandContext(w.ctx, "ip", "netns", "exec", netns, "nft", "-j", "list", "counters").Output()
	if err != nil {
		w.t.Fatalf("listing counters of %s: %v", netns, err)
	}
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Packets uint64 `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		w.t.Fatalf("parsing counters of %s: %v", netns, err)
	}
	counters := make(map[string]uint64)
	for _, item := range doc.Nftables {
		if item.Counter != nil {
			counters[item.Counter.Name] = item.Counter.Packets
		}
	}
	return counters
}

// setLoss makes the kube-dns namespace drop that fraction (in thousandths) of the UDP queries arriving
// from the pods, at random: the emulated conntrack race. Zero removes the drop.
func (w *e2eWorld) setLoss(perMille int) {
	w.t.Helper()
	w.must("ip", "netns", "exec", w.dns, "nft", "flush", "chain", "inet", "e2e", "loss")
	if perMille == 0 {
		return
	}
	for _, pod := range []*e2ePod{w.cf, w.podns} {
		w.must("ip", "netns", "exec", w.dns, "nft", "add", "rule", "inet", "e2e", "loss",
			"iifname", pod.link, "numgen", "random", "mod", "1000", "<", strconv.Itoa(perMille),
			"counter", "name", pod.link+"_udp_drop", "drop")
	}
}

// command runs a setup command with a timeout and returns its combined output.
func (w *e2eWorld) command(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(w.ctx, e2eCommandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("running %s %s: %w", name, strings.Join(args, " "), err)
	}
	return out, nil
}

// must runs a setup command and fails the test if it fails.
func (w *e2eWorld) must(name string, args ...string) {
	w.t.Helper()
	if out, err := w.command(name, args...); err != nil {
		w.t.Fatalf("%v: %s", err, bytes.TrimSpace(out))
	}
}

func (w *e2eWorld) writeFile(path, text string) {
	w.t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		w.t.Fatalf("writing %s: %v", path, err)
	}
}
