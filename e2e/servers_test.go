//go:build linux

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/podns/podns/internal/kubetest"
	"github.com/podns/podns/internal/netns"
	"github.com/podns/podns/internal/proctest"
	"github.com/podns/podns/internal/testbin"
)

// Ports on the kube-dns namespace's own loopback, which nothing else uses: fixed values are safe there.
const (
	// e2eKnotPort is Knot's port: port 53 of the namespace's link addresses belongs to CoreDNS.
	e2eKnotPort = 5300
	// CoreDNS's health, ready and prometheus listeners, on the ports kubeadm's Corefile gives them.
	e2eHealthPort  = 8080
	e2eReadyPort   = 8181
	e2eMetricsPort = 9153
	// e2eStartTimeout bounds a daemon's start; Knot is up in well under a second, CoreDNS once its
	// kubernetes plugin has listed the API server's Services, in about one.
	e2eStartTimeout = 30 * time.Second
)

// startKnot runs Knot DNS with the external zones (example.com, and a root zone so that names that
// exist nowhere get NXDOMAIN) on the kube-dns namespace's loopback: what kube-dns forwards to.
func (w *e2eWorld) startKnot() *proctest.Proc {
	w.t.Helper()
	dir := filepath.Join(w.dir, "knot")
	if err := os.Mkdir(dir, 0o755); err != nil {
		w.t.Fatalf("creating %s: %v", dir, err)
	}
	conf := filepath.Join(dir, "knot.conf")
	w.writeFile(conf, w.render("knot.conf.tmpl", struct {
		Dir, Testdata, Zones string
		Port                 int
	}{dir, w.testdata, w.zones, e2eKnotPort}))

	p := w.start("knotd", w.dns, []string{"PATH=" + os.Getenv("PATH")}, "knotd", "-c", conf)
	w.waitFor(p, e2eStartTimeout, func() error {
		// Ready when every zone is loaded: the SOA of each comes back authoritative.
		for _, zone := range []string{".", "example.com."} {
			if _, err := w.output(w.dns, "dig", "@127.0.0.1", "-p", strconv.Itoa(e2eKnotPort),
				"+tries=1", "+time=1", "+short", zone, "SOA"); err != nil {
				return err
			}
		}
		return nil
	})
	w.forwardPort = e2eKnotPort
	if d := os.Getenv("PODNS_E2E_FORWARD_DELAY"); d != "" {
		w.startForwardDelay(d)
	}
	return p
}

// e2eDelayPort is where dnsdist listens when PODNS_E2E_FORWARD_DELAY puts it between kube-dns and Knot.
const e2eDelayPort = 5301

// startForwardDelay puts dnsdist between kube-dns and Knot, holding each answer for delay (a Go
// duration, whole milliseconds): kube-dns's forwards to the outside then take what they take in a
// real cluster, instead of Knot's fraction of a millisecond on loopback. dnsdist delays only answers
// over UDP, so kube-dns then forwards over UDP (prefer_udp) what podns asks over TCP. For
// measurements by hand (TestE2EWalkCost's round trips); CI leaves it unset.
func (w *e2eWorld) startForwardDelay(delay string) {
	w.t.Helper()
	d, err := time.ParseDuration(delay)
	if err != nil || d < time.Millisecond {
		w.t.Fatalf("PODNS_E2E_FORWARD_DELAY=%q: want a duration of 1ms or more", delay)
	}
	if _, err := exec.LookPath("dnsdist"); err != nil {
		w.t.Fatalf("PODNS_E2E_FORWARD_DELAY needs dnsdist (Debian package dnsdist): %v", err)
	}
	conf := filepath.Join(w.dir, "dnsdist.conf")
	w.writeFile(conf, fmt.Sprintf(`setSecurityPollSuffix("") -- no status query to the machine's resolver
setLocal("127.0.0.1:%d")
newServer({address="127.0.0.1:%d"})
addAction(AllRule(), DelayAction(%d))
`, e2eDelayPort, e2eKnotPort, d.Milliseconds()))
	p := w.start("dnsdist", w.dns, []string{"PATH=" + os.Getenv("PATH")},
		"dnsdist", "--supervised", "--disable-syslog", "-C", conf)
	w.waitFor(p, e2eStartTimeout, func() error {
		_, err := w.output(w.dns, "dig", "@127.0.0.1", "-p", strconv.Itoa(e2eDelayPort),
			"+tries=1", "+time=1", "+short", "example.com.", "SOA")
		return err
	})
	w.forwardPort = e2eDelayPort
	w.t.Logf("kube-dns forwards through dnsdist, each answer held %v", d)
}

// startCoreDNS runs kube-dns: CoreDNS 1.15.0 with kubeadm's Corefile (testdata/e2e/Corefile.tmpl),
// reading the cluster from the API server, on the kube-dns side of every pod link. It returns once
// the ready plugin reports every plugin ready (the kubernetes plugin has synced with the API server).
func (w *e2eWorld) startCoreDNS(cluster *kubetest.Cluster) *proctest.Proc {
	w.t.Helper()
	bin := testbin.Need(w.t, testbin.CoreDNS)
	conf := filepath.Join(w.dir, "Corefile")
	w.writeFile(conf, w.render("Corefile.tmpl", struct {
		Listen                             []string
		HealthPort, ReadyPort, MetricsPort int
		ForwardPort                        int
		PreferUDP                          bool
		Kubeconfig, Context                string
	}{[]string{w.cf.server, w.podns.server}, e2eHealthPort, e2eReadyPort, e2eMetricsPort,
		w.forwardPort, w.forwardPort != e2eKnotPort, cluster.Kubeconfig, kubetest.Context}))

	p := w.start("coredns", w.dns, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + w.dir}, bin, "-conf", conf)
	w.waitFor(p, e2eStartTimeout, func() error {
		_, err := w.httpGet(w.dns, e2eReadyPort, "/ready")
		return err
	})
	return p
}

// coreDNSRequests is kube-dns's count of the DNS requests it received, every zone and type, from its
// prometheus metrics (coredns_dns_requests_total).
func (w *e2eWorld) coreDNSRequests() float64 {
	w.t.Helper()
	body, err := w.httpGet(w.dns, e2eMetricsPort, "/metrics")
	if err != nil {
		w.t.Fatalf("reading kube-dns's metrics: %v", err)
	}
	var total float64
	found := false
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "coredns_dns_requests_total{") {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			w.t.Fatalf("parsing kube-dns's metric line %q: %v", line, err)
		}
		total += v
		found = true
	}
	if !found {
		w.t.Fatalf("kube-dns's metrics have no coredns_dns_requests_total")
	}
	return total
}

// httpGet fetches a path from a port of a namespace's loopback and returns the body of a 200 reply.
func (w *e2eWorld) httpGet(ns string, port int, path string) (string, error) {
	ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DialContext: netns.Dialer(ns)}}
	defer client.CloseIdleConnections()
	url := "http://127.0.0.1:" + strconv.Itoa(port) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&b); err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(b.String()))
	}
	return b.String(), nil
}

// waitClusterIP waits until a pod gets an answer from the ClusterIP over TCP: the DNAT, the link,
// CoreDNS and the API server behind it all work.
func (w *e2eWorld) waitClusterIP(pod *e2ePod, p *proctest.Proc) {
	w.t.Helper()
	w.waitFor(p, e2eStartTimeout, func() error {
		out, err := w.output(pod.netns, "dig", "@"+e2eClusterIP, "+tcp", "+tries=1", "+time=1", "+short",
			"graylog.apps.svc.cluster.local.", "A")
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) == "" {
			return errors.New("no address for graylog.apps.svc.cluster.local from the ClusterIP yet")
		}
		return nil
	})
}

// output runs a short command in a namespace, with a minimal environment, and returns its stdout.
func (w *e2eWorld) output(netns string, args ...string) (string, error) {
	return w.outputWithin(e2eCommandTimeout, netns, args...)
}

// outputWithin is output with its own time limit.
func (w *e2eWorld) outputWithin(timeout time.Duration, netns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(w.ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", netns}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
