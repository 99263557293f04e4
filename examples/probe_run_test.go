package examples_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"

	"github.com/podns/podns/internal/timetest"
)

// probeWait bounds how long podns may take to answer its first probe: the examples' startup probes
// allow 30 s (30 x 1 s); a binary started on a loaded 2-core CI machine answers well within 10 s.
const probeWait = 10 * time.Second

// TestProbesAgainstPodns runs the real podns with each example's environment and makes each of the
// example's probes the way the kubelet would: the exec probe runs the command with the container's
// environment, the httpGet probe sends GET to the probe's path and port. Each must succeed while podns
// serves, and fail once it has stopped, so a probe that passes against anything is caught too.
//
// Addresses are moved to free loopback ports: PODNS_LISTEN (default 127.0.0.1:53, privileged),
// PODNS_HTTP_ADDR (default :9153, the probe port is mapped the same way) and PODNS_UPSTREAMS (a fake
// cluster DNS in this process, on loopback).
func TestProbesAgainstPodns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the podns binary; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command to build podns")
	}
	img := loadTestImage(t)
	bin := filepath.Join(t.TempDir(), "podns")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building podns: %v\n%s", err, out)
	}
	upstream := startFakeUpstream(t)

	for _, o := range loadTestExamples(t) {
		if o.pod == nil || isWebhook(o) {
			continue
		}
		c, _, _, err := podnsContainer(o.pod)
		if err != nil {
			t.Fatalf("%s: %v", o, err)
		}
		t.Run(o.String(), func(t *testing.T) {
			dnsPort, httpPort := freePort(t), freePort(t)
			env := containerEnv(t, c, map[string]string{
				"PODNS_LISTEN":    net.JoinHostPort("127.0.0.1", strconv.Itoa(dnsPort)),
				"PODNS_HTTP_ADDR": net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
				"PODNS_UPSTREAMS": upstream,
			})
			pr := prober{bin: bin, entrypoint: img.entrypoint[0], env: env, httpPort: httpPort, container: c}

			cmd := exec.Command(bin)
			cmd.Env = env
			logs, err := os.Create(filepath.Join(t.TempDir(), "podns.log"))
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdout, cmd.Stderr = logs, logs
			if err := cmd.Start(); err != nil {
				t.Fatalf("starting podns: %v", err)
			}
			stopped := false
			stop := func() {
				if !stopped {
					stopped = true
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
			}
			defer stop()
			defer func() {
				if t.Failed() {
					b, _ := os.ReadFile(logs.Name())
					t.Logf("podns output:\n%s", b)
				}
			}()

			// The startup probe, retried as the kubelet does until podns answers.
			timetest.Poll(t, probeWait, func() error {
				if err := pr.run(c.StartupProbe); err != nil {
					return fmt.Errorf("startupProbe: %w", err)
				}
				return nil
			})
			probes := map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe}
			for name, p := range probes {
				if p == nil {
					continue
				}
				if err := pr.run(p); err != nil {
					t.Errorf("%s while podns serves: got %v, want success", name, err)
				}
			}
			stop()
			for name, p := range probes {
				if p == nil {
					continue
				}
				if err := pr.run(p); err == nil {
					t.Errorf("%s after podns stopped: got success, want failure", name)
				}
			}
		})
	}
}

// prober makes a container's probes against a podns running on the host.
type prober struct {
	bin        string // the podns binary built for the test
	entrypoint string // where the image has it (the Dockerfile's ENTRYPOINT)
	env        []string
	httpPort   int // where the test's podns serves HTTP
	container  *corev1.Container
}

// run makes one probe; nil means success by the kubelet's rules (exit 0; HTTP status 200-399).
func (p prober) run(probe *corev1.Probe) error {
	if probe == nil {
		return fmt.Errorf("no probe")
	}
	timeout := time.Duration(max(probe.TimeoutSeconds, 1)) * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	switch h := probe.ProbeHandler; {
	case h.Exec != nil:
		if len(h.Exec.Command) == 0 || h.Exec.Command[0] != p.entrypoint {
			return fmt.Errorf("exec %q does not run %s", h.Exec.Command, p.entrypoint)
		}
		cmd := exec.CommandContext(ctx, p.bin, h.Exec.Command[1:]...)
		cmd.Env = p.env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("exec %q: %w: %s", h.Exec.Command, err, out)
		}
		return nil
	case h.HTTPGet != nil:
		if got := resolvePort(p.container, h.HTTPGet.Port); got != podnsHTTPPort {
			return fmt.Errorf("httpGet port %s is %d, not podns's %d", h.HTTPGet.Port.String(), got, podnsHTTPPort)
		}
		url := fmt.Sprintf("http://127.0.0.1:%d%s", p.httpPort, h.HTTPGet.Path)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", h.HTTPGet.Path, err)
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: status %d", h.HTTPGet.Path, resp.StatusCode)
		}
		return nil
	}
	return fmt.Errorf("unsupported probe handler")
}

// containerEnv is the container's environment as the kubelet would set it, for a pod in namespace
// "apps", with the given variables replaced.
func containerEnv(t *testing.T, c *corev1.Container, override map[string]string) []string {
	t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, e := range c.Env {
		if _, ok := override[e.Name]; ok {
			continue
		}
		v := e.Value
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			v = "apps"
		case e.ValueFrom.ResourceFieldRef != nil:
			q, ok := c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(e.ValueFrom.ResourceFieldRef.Resource, "limits."))]
			if !ok {
				t.Fatalf("env %s: no %s on the container", e.Name, e.ValueFrom.ResourceFieldRef.Resource)
			}
			v = strconv.FormatInt(q.Value(), 10)
		default:
			t.Fatalf("env %s: valueFrom this test does not emulate", e.Name)
		}
		env = append(env, e.Name+"="+v)
	}
	for k, v := range override {
		env = append(env, k+"="+v)
	}
	return env
}

// freePort returns a loopback port that was free for both TCP and UDP a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free loopback port for both TCP and UDP")
	return 0
}

// startFakeUpstream serves a tiny cluster DNS on loopback (TCP and UDP on one port): A 192.0.2.1 for
// any name, NODATA otherwise. It returns its address.
func startFakeUpstream(t *testing.T) string {
	t.Helper()
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if len(r.Question) == 1 && r.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(r.Question[0].Name + " 30 IN A 192.0.2.1")
			m.Answer = append(m.Answer, rr)
		}
		_ = w.WriteMsg(m)
	})
	for _, network := range []string{"tcp", "udp"} {
		started := make(chan struct{})
		srv := &dns.Server{Addr: addr, Net: network, Handler: h, NotifyStartedFunc: func() { close(started) }}
		errc := make(chan error, 1)
		go func() { errc <- srv.ListenAndServe() }()
		select {
		case <-started:
		case err := <-errc:
			t.Fatalf("fake upstream on %s/%s: %v", addr, network, err)
		}
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return addr
}
