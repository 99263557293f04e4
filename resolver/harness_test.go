package resolver

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"

	"github.com/podns/podns/cache"
	"github.com/podns/podns/internal/timetest"
	"github.com/podns/podns/resolver/resolvertest"
)

// testSearch is ClusterFirst's search list for a pod in namespace "apps".
var testSearch = []string{"apps.svc.cluster.local", "svc.cluster.local", "cluster.local"}

type harness struct {
	srv   *Server
	up    *resolvertest.Exchanger
	zones *resolvertest.Zones
	cache *cache.Cache
	clock *timetest.Clock // the clock of the resolver and the cache under test
	addr  string
}

func loadTestZones(t testing.TB) *resolvertest.Zones {
	t.Helper()
	z, err := resolvertest.LoadZones("../testdata/zones/cluster.local.zone", "../testdata/zones/example.com.zone")
	if err != nil {
		t.Fatalf("loading zones: %v", err)
	}
	return z
}

// newHarness starts a Server on 127.0.0.1 with an in-process upstream serving the testdata zones.
func newHarness(t testing.TB, tweak ...func(*Config, *cache.Config)) *harness {
	t.Helper()
	return newHarnessZones(t, loadTestZones(t), tweak...)
}

// newHarnessZones is newHarness with the upstream serving z.
func newHarnessZones(t testing.TB, z *resolvertest.Zones, tweak ...func(*Config, *cache.Config)) *harness {
	t.Helper()
	h := &harness{zones: z, clock: timetest.NewClock(time.Unix(1_800_000_000, 0))}
	h.up = &resolvertest.Exchanger{Zones: h.zones}
	cfg := Config{
		Listen:        []string{"127.0.0.1:0"},
		Search:        testSearch,
		Ndots:         5,
		ClusterDomain: "cluster.local",
		NoSearch:      []string{"miss.test"},
		Now:           h.clock.Now,
	}
	ccfg := cache.Config{Now: h.clock.Now}
	for _, f := range tweak {
		f(&cfg, &ccfg)
	}
	var err error
	if h.cache, err = cache.New(ccfg); err != nil {
		t.Fatalf("cache.New: %v", err)
	}
	if h.srv, err = New(cfg, h.up, h.cache, zerolog.Nop()); err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := h.srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	h.addr = h.srv.Addrs()[0].String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return h
}

// exchange sends m over network ("udp" or "tcp") and returns the reply.
func (h *harness) exchange(t testing.TB, network string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, h.addr)
	if err != nil {
		t.Fatalf("%s exchange %s: %v", network, m.Question[0].String(), err)
	}
	return r
}

func (h *harness) ask(t testing.TB, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	return h.exchange(t, network, m)
}
