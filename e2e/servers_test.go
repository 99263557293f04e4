package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	// e2eKnotPort is Knot's port on the kube-dns namespace's loopback: port 53 of the namespace's
	// addresses belongs to Unbound, the server pods reach.
	e2eKnotPort = 5300
	// e2eStartTimeout bounds a daemon's start; each is up in well under a second here.
	e2eStartTimeout = 15 * time.Second
)

// startKnot runs Knot DNS with the testdata zones (cluster.local, example.com, and a root zone so that
// names that exist nowhere get NXDOMAIN) on the kube-dns namespace's loopback.
func (w *e2eWorld) startKnot() *e2eProc {
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
		for _, zone := range []string{".", "cluster.local.", "example.com."} {
			if _, err := w.output(w.dns, "dig", "@127.0.0.1", "-p", strconv.Itoa(e2eKnotPort),
				"+tries=1", "+time=1", "+short", zone, "SOA"); err != nil {
				return err
			}
		}
		return nil
	})
	return p
}

// startUnbound runs Unbound as the emulated kube-dns service on the kube-dns side of every pod link,
// stubbed to Knot for every zone.
func (w *e2eWorld) startUnbound() *e2eProc {
	w.t.Helper()
	dir := filepath.Join(w.dir, "unbound")
	if err := os.Mkdir(dir, 0o755); err != nil {
		w.t.Fatalf("creating %s: %v", dir, err)
	}
	conf := filepath.Join(dir, "unbound.conf")
	w.writeFile(conf, w.render("unbound.conf.tmpl", struct {
		Dir       string
		Listen    []string
		StubZones []string
		KnotPort  int
	}{dir, []string{w.cf.server, w.podns.server}, []string{".", "cluster.local.", "example.com."},
		e2eKnotPort}))
	if out, err := w.command("unbound-checkconf", conf); err != nil {
		w.t.Fatalf("%v: %s", err, out)
	}

	p := w.start("unbound", w.dns, []string{"PATH=" + os.Getenv("PATH")}, "unbound", "-d", "-c", conf)
	w.waitFor(p, e2eStartTimeout, func() error {
		_, err := w.output(w.dns, "unbound-control", "-c", conf, "status")
		return err
	})
	return p
}

// unboundStats reads Unbound's counters without resetting them: name → value.
func (w *e2eWorld) unboundStats() map[string]float64 {
	w.t.Helper()
	conf := filepath.Join(w.dir, "unbound", "unbound.conf")
	out, err := w.output(w.dns, "unbound-control", "-c", conf, "stats_noreset")
	if err != nil {
		w.t.Fatalf("reading Unbound's statistics: %v", err)
	}
	stats := make(map[string]float64)
	for _, line := range strings.Split(out, "\n") {
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			stats[name] = v
		}
	}
	return stats
}

// waitClusterIP waits until a pod gets an answer from the ClusterIP over TCP: the DNAT, the link,
// Unbound and Knot all work.
func (w *e2eWorld) waitClusterIP(pod *e2ePod, p *e2eProc) {
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
