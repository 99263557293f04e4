package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"

	"github.com/podns/podns/internal/timetest"
	"github.com/podns/podns/resolver/resolvertest"
)

var podSearch = []string{"apps.svc.cluster.local", "svc.cluster.local", "cluster.local"}

// startPodns runs podns as main does, with its upstream at up and everything else on loopback ports
// of its own; it stops when the test ends.
func startPodns(t *testing.T, up string, extra map[string]string) (*app, func()) {
	t.Helper()
	env := map[string]string{
		"PODNS_LISTEN":    "127.0.0.1:0",
		"PODNS_UPSTREAMS": up,
		"PODNS_NAMESPACE": "apps",
		"PODNS_HTTP_ADDR": "127.0.0.1:0",
		"PODNS_DRAIN":     "0s",
	}
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := loadConfig(env, nil)
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *app, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, zerolog.Nop(), func(a *app) { started <- a }) }()
	var a *app
	select {
	case a = <-started:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v, want nil", err)
		}
	}
	var once bool
	t.Cleanup(func() {
		if !once {
			stop()
		}
	})
	return a, func() { once = true; stop() }
}

func (a *app) addr() string { return a.srv.Addrs()[0].String() }

func exchange(t *testing.T, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", network, m.Question[0].String(), err)
	}
	return r
}

// TestEndToEnd runs podns against an upstream on real loopback sockets serving the testdata zones and
// checks, over UDP without EDNS and over TCP, that every answer equals ClusterFirst's, that a large
// answer is truncated to whole records over UDP and whole over TCP, and that no UDP packet reaches the
// upstream.
func TestEndToEnd(t *testing.T) {
	zones, err := resolvertest.LoadZones("testdata/zones/cluster.local.zone", "testdata/zones/example.com.zone")
	if err != nil {
		t.Fatalf("loading zones: %v", err)
	}
	up := resolvertest.Start(t, zones)
	a, _ := startPodns(t, up.Addr, nil)
	for _, network := range []string{"udp", "tcp"} {
		for _, tc := range resolvertest.Cases {
			t.Run(network+"/"+tc.Name+"/"+dns.TypeToString[tc.Qtype], func(t *testing.T) {
				m := new(dns.Msg)
				m.SetQuestion(dns.Fqdn(tc.Name), tc.Qtype)
				r := exchange(t, network, a.addr(), m)
				if network == "udp" && r.Truncated {
					// 512 bytes without EDNS: whole records that fit, then the client retries over TCP.
					r.Compress = true // as it came: compressed
					if r.Len() > 512 || len(r.Answer) < 2 {
						t.Fatalf("truncated reply of %d bytes with %d records, want ≤ 512 and some records", r.Len(), len(r.Answer))
					}
					t.Logf("truncated: %d records in %d bytes", len(r.Answer), r.Len())
					return
				}
				resolvertest.CheckClusterFirst(t, zones, podSearch, 5, tc.Name, tc.Qtype, r)
			})
		}
	}
	t.Run("udp/big is truncated", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetQuestion("big.", dns.TypeA)
		if r := exchange(t, "udp", a.addr(), m); !r.Truncated {
			t.Errorf("TC got false, want true for 60 A records in 512 bytes")
		}
	})
	if got := up.UDPPackets.Load(); got != 0 {
		t.Errorf("UDP packets at the upstream got %d, want 0", got)
	}
	if up.TCPQueries.Load() == 0 {
		t.Errorf("TCP queries at the upstream got 0, want some")
	}
}

func TestHTTPEndpoints(t *testing.T) {
	zones, err := resolvertest.LoadZones("testdata/zones/cluster.local.zone")
	if err != nil {
		t.Fatalf("loading zones: %v", err)
	}
	up := resolvertest.Start(t, zones)
	a, _ := startPodns(t, up.Addr, nil)
	for i := 0; i < 3; i++ {
		m := new(dns.Msg)
		m.SetQuestion("graylog.", dns.TypeA)
		exchange(t, "udp", a.addr(), m)
	}
	base := "http://" + a.httpAddr.String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz got %d, want 200", code)
	}
	timetest.WaitFor(t, func() bool { code, _ := get("/readyz"); return code == 200 })
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics got %d, want 200", code)
	}
	for _, want := range []string{
		`podns_queries_total{type="A",rcode="NOERROR"} 3`,
		"podns_cache_hits_total 2",
		"podns_search_walks_total 1",
		"# TYPE podns_upstream_queries_total counter",
		"podns_cache_entries ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestDrain: after SIGTERM (ctx ends) podns answers for PODNS_DRAIN, then stops.
func TestDrain(t *testing.T) {
	zones, err := resolvertest.LoadZones("testdata/zones/cluster.local.zone")
	if err != nil {
		t.Fatalf("loading zones: %v", err)
	}
	up := resolvertest.Start(t, zones)
	a, stop := startPodns(t, up.Addr, map[string]string{"PODNS_DRAIN": "700ms"})
	addr := a.addr()
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	timetest.WaitFor(t, func() bool { return a.draining.Load() })
	for i := 0; i < 5; i++ {
		m := new(dns.Msg)
		m.SetQuestion("graylog.", dns.TypeA)
		if r := exchange(t, "udp", addr, m); len(r.Answer) != 2 {
			t.Errorf("during the drain got %v, want the CNAME and A", r.Answer)
		}
		time.Sleep(50 * time.Millisecond) // spreads the queries over the drain: the timing under test
	}
	resp, err := http.Get("http://" + a.httpAddr.String() + "/readyz")
	if err == nil {
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/readyz while draining got %d, want 503", resp.StatusCode)
		}
		resp.Body.Close()
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatalf("podns did not stop after the drain")
	}
	c := &dns.Client{Net: "tcp", Timeout: 300 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("graylog.", dns.TypeA)
	if _, _, err := c.Exchange(m, addr); err == nil {
		t.Errorf("after stopping, a query was answered; want the listener closed")
	}
}

func TestProbe(t *testing.T) {
	zones, err := resolvertest.LoadZones("testdata/zones/cluster.local.zone")
	if err != nil {
		t.Fatalf("loading zones: %v", err)
	}
	up := resolvertest.Start(t, zones)
	a, stop := startPodns(t, up.Addr, nil)
	cfg := a.cfg
	cfg.Listen = []string{a.addr()}
	var stderr bytes.Buffer
	if code := probe(cfg, &stderr); code != 0 {
		t.Errorf("probe of a running podns got %d (%s), want 0", code, stderr.String())
	}
	if up.TCPQueries.Load() != 0 {
		t.Errorf("the probe reached the upstream; want it answered locally")
	}
	stop()
	if code := probe(cfg, &stderr); code != 1 {
		t.Errorf("probe of a stopped podns got %d, want 1", code)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	var stderr bytes.Buffer
	code := run(nil, map[string]string{"PODNS_UPSTREAMS": "10.96.0.10", "PODNS_NDOTS": "many"}, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), `PODNS_NDOTS`) || !strings.Contains(stderr.String(), "many") {
		t.Errorf("got exit %d and %q, want 2 and a message naming PODNS_NDOTS and its value", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"frobnicate"}, map[string]string{"PODNS_UPSTREAMS": "10.96.0.10"}, &stderr); code != 2 {
		t.Errorf("unknown command got exit %d, want 2", code)
	}
}

// TestStartFailsCleanly: a listen address that cannot be bound stops podns with an error naming it,
// and what had started is released (the DNS port can be bound again at once).
func TestStartFailsCleanly(t *testing.T) {
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	httpBusy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer httpBusy.Close()
	free := freeUDPPort(t)
	tests := []struct {
		name, listen, http, want string
	}{
		{"dns port taken", busy.LocalAddr().String(), "", "listening on udp " + busy.LocalAddr().String()},
		{"http port taken", free, httpBusy.Addr().String(), "listening on http " + httpBusy.Addr().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(map[string]string{"PODNS_LISTEN": tt.listen, "PODNS_UPSTREAMS": "127.0.0.1:1", "PODNS_HTTP_ADDR": tt.http}, nil)
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			_, err = start(cfg, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if tt.listen == free {
				pc, err := net.ListenPacket("udp", free)
				if err != nil {
					t.Fatalf("the DNS port stayed bound after the failed start: %v", err)
				}
				pc.Close()
			}
		})
	}
}

func freeUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}

// blackhole is a TCP upstream that reads queries and answers none.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestSilentUpstream: a miss whose upstream never answers is answered all the same, by the timers the
// upstream client arms for a query sent from podns's UDP reader thread: SERVFAIL at PODNS_TIMEOUT, and
// with a second server, its answer once a hedge reaches it.
func TestSilentUpstream(t *testing.T) {
	zones, err := resolvertest.LoadZones("testdata/zones/cluster.local.zone", "testdata/zones/example.com.zone")
	if err != nil {
		t.Fatalf("loading zones: %v", err)
	}
	good := resolvertest.Start(t, zones)
	silent := blackhole(t)
	ask := func(a *app, name string) (*dns.Msg, time.Duration) {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		start := time.Now()
		return exchange(t, "udp", a.addr(), m), time.Since(start)
	}
	t.Run("timeout", func(t *testing.T) {
		a, _ := startPodns(t, silent, map[string]string{"PODNS_TIMEOUT": "800ms"})
		r, took := ask(a, "www.example.com.")
		if r.Rcode != dns.RcodeServerFailure {
			t.Errorf("got rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
		}
		if took < 700*time.Millisecond || took > 2*time.Second {
			t.Errorf("got the reply after %v, want about 800ms", took)
		}
	})
	t.Run("hedge to the second server", func(t *testing.T) {
		a, _ := startPodns(t, silent+","+good.Addr, nil)
		r, took := ask(a, "www.example.com.")
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Errorf("got rcode %s with %d answers, want an answer", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		// The second hedge, at 2 × 500 ms, goes to the next server.
		if took > 2*time.Second {
			t.Errorf("got the answer after %v, want it from the second hedge, about 1s", took)
		}
		t.Logf("answered after %v", took)
	})
}
