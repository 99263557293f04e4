package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// e2eBuildTimeout bounds `go build` of podns: a cold build of the module and its dependencies takes
// about a minute on the 2-core CI machine, a cached one a few seconds.
const e2eBuildTimeout = 5 * time.Minute

// buildPodns returns the podns binary under test: the one named by PODNS_E2E_BINARY (CI builds it
// once), or one built from this module now.
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
	ctx, cancel := context.WithTimeout(w.ctx, e2eBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("building podns: %v: %s", err, out)
	}
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
func (w *e2eWorld) startPodns(bin string) *e2eProc {
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
