//go:build linux

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podns/podns/internal/proctest"
)

// e2eBuildTimeout bounds `go build` of podns: a cold build of the module and its dependencies takes
// about a minute on the 2-core CI machine, a cached one a few seconds.
const e2eBuildTimeout = 5 * time.Minute

// buildPodns returns the podns binary under test: the one named by PODNS_E2E_BINARY, or one built
// from this module now, with the race detector when the test binary has it.
func (w *e2eWorld) buildPodns() string {
	w.t.Helper()
	if bin := os.Getenv("PODNS_E2E_BINARY"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			w.t.Fatalf("PODNS_E2E_BINARY=%q: %v", bin, err)
		}
		return abs
	}
	bin := filepath.Join(w.dir, "podns")
	args := []string{"build", "-o", bin}
	if e2eRace {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(w.ctx, e2eBuildTimeout)
	defer cancel()
	// The podns module's root, one directory up from this package.
	cmd := exec.CommandContext(ctx, "go", append(args, "..")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("building podns: %v: %s", err, out)
	}
	w.t.Logf("built podns with %s", strings.Join(args, " "))
	return bin
}

// podnsEnv is the sidecar's environment as a pod spec would set it: the kube-dns ClusterIP as upstream
// (explicitly: the pod's resolv.conf points at podns itself), the pod's namespace from the downward
// API. No HTTP listener and no drain: the suite stops podns at the end and wants it gone at once.
func podnsEnv() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"PODNS_UPSTREAMS=" + e2eClusterIP,
		"PODNS_NAMESPACE=apps",
		"PODNS_HTTP_ADDR=",
		"PODNS_DRAIN=0s",
		"PODNS_LOG_FORMAT=json",
		"PODNS_LOG_LEVEL=info",
	}
}

// startPodns runs podns on 127.0.0.1:53 inside the pod and waits until `podns probe` succeeds and a
// cluster name resolves through it.
func (w *e2eWorld) startPodns(bin string) *proctest.Proc {
	w.t.Helper()
	p := w.start("podns", w.podns.netns, podnsEnv(), bin)
	w.waitFor(p, e2eStartTimeout, func() error {
		ctx, cancel := context.WithTimeout(w.ctx, e2eCommandTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", w.podns.netns, bin, "probe")
		cmd.Env = podnsEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("podns probe: %w: %s", err, bytes.TrimSpace(out))
		}
		return nil
	})
	w.waitFor(p, e2eStartTimeout, func() error {
		out, err := w.output(w.podns.netns, "dig", "@127.0.0.1", "+tries=1", "+time=1", "+short",
			"graylog.apps.svc.cluster.local.", "A")
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) == "" {
			return errors.New("no address for graylog.apps.svc.cluster.local through podns yet")
		}
		return nil
	})
	return p
}

// checkPodnsRaces stops podns and fails the test if the race detector reported anything while real
// clients drove it.
func (w *e2eWorld) checkPodnsRaces(p *proctest.Proc) {
	w.t.Helper()
	p.Stop()
	data, err := os.ReadFile(p.Log)
	if err != nil {
		w.t.Fatalf("reading the podns log: %v", err)
	}
	if n := bytes.Count(data, []byte("WARNING: DATA RACE")); n > 0 {
		w.t.Errorf("podns: got %d data race reports, want 0:\n%s", n, e2eFirstRace(data))
	}
}

// e2eFirstRace returns the first race report of a log.
func e2eFirstRace(log []byte) []byte {
	const start, end = "WARNING: DATA RACE", "=================="
	i := bytes.Index(log, []byte(start))
	if i < 0 {
		return nil
	}
	report := log[i:]
	if j := bytes.Index(report, []byte(end)); j >= 0 {
		report = report[:j]
	}
	return report
}

func TestE2EFirstRace(t *testing.T) {
	report := "WARNING: DATA RACE\nWrite at 0x00c by goroutine 7:\n  main.f()\n"
	tests := []struct {
		name, log, want string
	}{
		{"none", `{"level":"info"}` + "\n", ""},
		{"one", "==================\n" + report + "==================\n", report},
		{"two", "==================\n" + report + "==================\n" +
			"==================\nWARNING: DATA RACE\nRead\n==================\n", report},
		{"cut short", "==================\n" + report, report},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(e2eFirstRace([]byte(tt.log))); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
