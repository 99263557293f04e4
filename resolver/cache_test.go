package resolver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/podns/podns/cache"
	"github.com/podns/podns/internal/timetest"
)

func ttlOf(t *testing.T, r *dns.Msg, rrtype uint16) uint32 {
	t.Helper()
	for _, rr := range append(r.Answer, r.Ns...) {
		if rr.Header().Rrtype == rrtype {
			return rr.Header().Ttl
		}
	}
	t.Fatalf("no %s record in %v", dns.TypeToString[rrtype], r)
	return 0
}

// TestCachedTTLDecrements: a hit carries the TTL left, not the TTL stored.
func TestCachedTTLDecrements(t *testing.T) {
	h := newHarness(t)
	const fqdn = "graylog.apps.svc.cluster.local"
	if got := ttlOf(t, h.ask(t, "udp", fqdn, dns.TypeA), dns.TypeA); got != 30 {
		t.Fatalf("first TTL got %d, want 30", got)
	}
	h.clock.Advance(12 * time.Second)
	if got := ttlOf(t, h.ask(t, "udp", fqdn, dns.TypeA), dns.TypeA); got != 18 {
		t.Errorf("TTL after 12s got %d, want 18", got)
	}
	if got := h.up.Asked(fqdn, dns.TypeA); got != 1 {
		t.Errorf("upstream queries got %d, want 1", got)
	}
}

// TestNegativeCaching: NXDOMAIN is kept for min(SOA TTL, SOA MINIMUM) = 5 s (RFC 2308 §5).
func TestNegativeCaching(t *testing.T) {
	h := newHarness(t)
	const fqdn = "missing.apps.svc.cluster.local"
	for i := 0; i < 3; i++ {
		if r := h.ask(t, "udp", fqdn, dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Fatalf("rcode got %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
		}
	}
	if got := h.up.Asked(fqdn, dns.TypeA); got != 1 {
		t.Errorf("upstream queries within the negative TTL got %d, want 1", got)
	}
	h.clock.Advance(6 * time.Second)
	h.ask(t, "udp", fqdn, dns.TypeA)
	if got := h.up.Asked(fqdn, dns.TypeA); got != 2 {
		t.Errorf("upstream queries after the negative TTL got %d, want 2", got)
	}
}

// TestComposedReplyExpiresWithItsParts: www.example.com was found after three cluster NXDOMAINs that
// are cacheable for 5 s; the composed reply must not outlive them, so a service created later named
// www.example.com.apps.svc.cluster.local is seen 5 s later, as ClusterFirst would see it.
func TestComposedReplyExpiresWithItsParts(t *testing.T) {
	h := newHarness(t)
	r := h.ask(t, "udp", "www.example.com", dns.TypeA)
	if got := ttlOf(t, r, dns.TypeA); got > 5 {
		t.Errorf("composed TTL got %d, want at most 5 (the cluster NXDOMAINs' negative TTL)", got)
	}
	h.up.SetHook(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		if q.Question[0].Name != "www.example.com.apps.svc.cluster.local." || q.Question[0].Qtype != dns.TypeA {
			return nil, nil
		}
		r := new(dns.Msg)
		r.SetReply(q)
		rr, _ := dns.NewRR("www.example.com.apps.svc.cluster.local. 30 IN A 10.9.9.9")
		r.Answer = []dns.RR{rr}
		return r, nil
	})
	h.clock.Advance(6 * time.Second)
	r = h.ask(t, "udp", "www.example.com", dns.TypeA)
	if len(r.Answer) != 2 || r.Answer[0].(*dns.CNAME).Target != "www.example.com.apps.svc.cluster.local." {
		t.Errorf("after 6s got %v, want the CNAME to the new service and its A", r.Answer)
	}
}

// TestServeStale: with the upstream down, an expired answer goes out with TTL 30 (RFC 8767 §4), for
// searched and unsearched names; with the upstream slow, it goes out after StaleWait.
func TestServeStale(t *testing.T) {
	for _, name := range []string{"graylog", "graylog.apps.svc.cluster.local"} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, func(c *Config, _ *cache.Config) { c.StaleWait = 50 * time.Millisecond })
			h.ask(t, "udp", name, dns.TypeA)
			h.clock.Advance(40 * time.Second) // past the 30 s TTL
			h.up.SetHook(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
				return nil, errors.New("upstream down")
			})
			r := h.ask(t, "udp", name, dns.TypeA)
			if r.Rcode != dns.RcodeSuccess || ttlOf(t, r, dns.TypeA) != 30 {
				t.Errorf("with upstream down got %s %v, want NOERROR with TTL 30", dns.RcodeToString[r.Rcode], r.Answer)
			}
			release := make(chan struct{})
			defer close(release)
			h.up.SetHook(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
				select {
				case <-release:
				case <-ctx.Done():
				}
				return nil, errors.New("too slow")
			})
			start := time.Now()
			r = h.ask(t, "udp", name, dns.TypeA)
			if took := time.Since(start); took > time.Second || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
				t.Errorf("with upstream slow got %s after %v, want the stale answer after about 50ms", dns.RcodeToString[r.Rcode], took)
			}
			if h.srv.Stats().StaleServed < 2 {
				t.Errorf("stale served got %d, want at least 2", h.srv.Stats().StaleServed)
			}
		})
	}
}

// TestPrefetch: a hit in the last tenth of the TTL has the entry refreshed in the background, once,
// when it expires, not at once: the cluster DNS is a cache too, and asked earlier it would answer the
// rest of the same TTL. No client waits for the refresh, and the refreshed entry answers after the old
// expiry.
func TestPrefetch(t *testing.T) {
	for _, tc := range []struct{ name, fqdn string }{
		{"graylog.apps.svc.cluster.local", "graylog.apps.svc.cluster.local"},
		{"graylog", "graylog.apps.svc.cluster.local"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.ask(t, "udp", tc.name, dns.TypeA)
			h.clock.Advance(20 * time.Second) // 10 s left of 30: not yet
			h.ask(t, "udp", tc.name, dns.TypeA)
			if got := h.up.Asked(tc.fqdn, dns.TypeA); got != 1 {
				t.Fatalf("upstream queries before the last tenth got %d, want 1", got)
			}
			h.clock.Advance(8 * time.Second) // 2 s left: the last tenth
			for i := 0; i < 3; i++ {
				if r := h.ask(t, "udp", tc.name, dns.TypeA); len(r.Answer) == 0 {
					t.Fatalf("got no answer in the last tenth")
				}
			}
			timetest.WaitFor(t, func() bool { return h.inflight() == 0 })
			if got := h.up.Asked(tc.fqdn, dns.TypeA); got != 1 {
				t.Errorf("upstream queries in the last tenth got %d, want 1: the refresh waits for the expiry", got)
			}
			h.clock.Advance(2 * time.Second) // the expiry: the refresh goes out, with no client asking
			timetest.WaitFor(t, func() bool { return h.up.Asked(tc.fqdn, dns.TypeA) >= 2 && h.inflight() == 0 })
			if got := h.up.Asked(tc.fqdn, dns.TypeA); got != 2 {
				t.Errorf("upstream queries after the refresh got %d, want 2", got)
			}
			h.clock.Advance(5 * time.Second) // past the old expiry: the refreshed entry answers
			before := h.up.Total()
			if r := h.ask(t, "udp", tc.name, dns.TypeA); len(r.Answer) == 0 || h.up.Total() != before {
				t.Errorf("after the old expiry got %d answers and %d upstream queries, want answers from the cache", len(r.Answer), h.up.Total()-before)
			}
			if got := h.srv.Stats().Prefetches; got != 1 {
				t.Errorf("prefetches got %d, want 1", got)
			}
		})
	}
}

// TestPrefetchDoneByClient: a client that asks after the expiry, before the refresh loop comes round,
// refreshes the entry itself; the loop then finds it fresh and asks nothing more.
func TestPrefetchDoneByClient(t *testing.T) {
	const name, fqdn = "graylog.apps.svc.cluster.local", "graylog.apps.svc.cluster.local"
	h := newHarness(t)
	h.ask(t, "udp", name, dns.TypeA)
	h.clock.Advance(28 * time.Second)
	h.ask(t, "udp", name, dns.TypeA) // the last tenth: a refresh due at 30 s
	h.clock.Advance(3 * time.Second)
	if r := h.ask(t, "udp", name, dns.TypeA); len(r.Answer) == 0 {
		t.Fatalf("got no answer after the expiry")
	}
	// The loop sleeps at most refreshPoll, on the real clock, before it sees the fake one moved.
	time.Sleep(refreshPoll + 100*time.Millisecond)
	timetest.WaitFor(t, func() bool { return h.inflight() == 0 })
	if got := h.up.Asked(fqdn, dns.TypeA); got != 2 {
		t.Errorf("upstream queries got %d, want 2: the first lookup and the client's refresh", got)
	}
}

func TestAAAAFilter(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *cache.Config) { c.AAAAFilter = true })
	for _, name := range []string{"dual", "www.example.com", "dual.apps.svc.cluster.local"} {
		r := h.ask(t, "udp", name, dns.TypeAAAA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
			t.Errorf("%s AAAA got %s answer %v ns %v, want NODATA with an SOA", name, dns.RcodeToString[r.Rcode], r.Answer, r.Ns)
		}
		if r := h.ask(t, "udp", name, dns.TypeA); len(r.Answer) == 0 {
			t.Errorf("%s A got no answer", name)
		}
	}
	timetest.WaitFor(t, func() bool { return h.inflight() == 0 })
	for _, fqdn := range []string{"dual.apps.svc.cluster.local", "www.example.com"} {
		if got := h.up.Asked(fqdn, dns.TypeAAAA); got != 0 {
			t.Errorf("upstream AAAA queries for %s got %d, want 0", fqdn, got)
		}
	}
}

// TestAllCandidatesFail: SERVFAIL (never silence, never REFUSED) when no candidate can be asked.
func TestAllCandidatesFail(t *testing.T) {
	h := newHarness(t)
	h.up.SetHook(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		r := new(dns.Msg)
		r.SetRcode(q, dns.RcodeServerFailure)
		return r, nil
	})
	for _, name := range []string{"graylog", "www.example.com", "graylog.apps.svc.cluster.local"} {
		if r := h.ask(t, "udp", name, dns.TypeA); r.Rcode != dns.RcodeServerFailure {
			t.Errorf("%s got %s, want SERVFAIL", name, dns.RcodeToString[r.Rcode])
		}
	}
}

// TestFailedCandidateIsSkipped: glibc skips a search candidate whose server failed; so does podns, and
// the answer it then finds is not cached past now.
func TestFailedCandidateIsSkipped(t *testing.T) {
	h := newHarness(t)
	h.up.SetHook(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		switch q.Question[0].Name {
		case "www.example.com.apps.svc.cluster.local.", "com.apps.svc.cluster.local.": // the candidate, and its cut
			return nil, errors.New("timeout")
		}
		return nil, nil
	})
	r := h.ask(t, "udp", "www.example.com", dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || ttlOf(t, r, dns.TypeA) != 0 {
		t.Errorf("got %s %v, want the A of www.example.com with TTL 0", dns.RcodeToString[r.Rcode], r.Answer)
	}
}

// TestShutdownAnswersInFlight: a query read before Shutdown is answered.
func TestShutdownAnswersInFlight(t *testing.T) {
	h := newHarness(t)
	h.up.SetHook(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		time.Sleep(200 * time.Millisecond) // the upstream's latency, not a wait for something to happen
		return nil, nil
	})
	got := make(chan *dns.Msg, 2)
	for _, network := range []string{"udp", "tcp"} {
		go func() {
			c := &dns.Client{Net: network, Timeout: 3 * time.Second}
			m := new(dns.Msg)
			m.SetQuestion("graylog.apps.svc.cluster.local.", dns.TypeA)
			r, _, _ := c.Exchange(m, h.addr)
			got <- r
		}()
	}
	// Both queries read: the one read second joined the lookup of the first.
	timetest.WaitFor(t, func() bool { return h.srv.Stats().Coalesced >= 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i := 0; i < 2; i++ {
		if r := <-got; r == nil || len(r.Answer) != 1 {
			t.Errorf("reply %d got %v, want the answer", i, r)
		}
	}
}

// TestShutdownAnswersEveryMiss: a burst of UDP misses, more than the miss workers kept idle, all read
// and waiting for a slow upstream when Shutdown starts, all get their answers.
func TestShutdownAnswersEveryMiss(t *testing.T) {
	h := newHarness(t)
	h.up.SetHook(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		time.Sleep(100 * time.Millisecond) // the upstream's latency, not a wait for something to happen
		return nil, nil
	})
	const n = 3 * maxIdleWorkers
	got := make(chan *dns.Msg, n)
	for i := range n {
		go func() {
			c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
			m := new(dns.Msg)
			m.SetQuestion(fmt.Sprintf("gone%d.apps.svc.cluster.local.", i), dns.TypeA)
			r, _, _ := c.Exchange(m, h.addr)
			got <- r
		}()
	}
	// Every query read (a client's miss, not a paired fetch) while the upstream still sleeps on them.
	timetest.WaitFor(t, func() bool { st := h.srv.Stats(); return st.CacheMisses-st.PairFetches == n })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	answered := 0
	for range n {
		if r := <-got; r != nil && r.Rcode == dns.RcodeNameError {
			answered++
		}
	}
	if answered != n {
		t.Errorf("got %d NXDOMAIN answers for %d queries, want all", answered, n)
	}
}

// TestWalkAsksInOrder: a candidate is asked only once the ones ahead of it are known empty, as
// ClusterFirst asks them; a later candidate is probed with A alone (its NXDOMAIN denies AAAA too); for
// a name of two dots or more the cut names of the first two candidates are asked instead of them
// (askCutsAhead), and under the cluster domain itself the cut name is asked instead of the candidate
// (cutFirst).
func TestWalkAsksInOrder(t *testing.T) {
	h := newHarness(t)
	h.ask(t, "udp", "graylog", dns.TypeA)
	h.ask(t, "udp", "www.example.com", dns.TypeA)
	timetest.WaitFor(t, func() bool { return h.inflight() == 0 })
	tests := []struct {
		name  string
		qtype uint16
		want  int
	}{
		{"graylog.apps.svc.cluster.local.", dns.TypeA, 1},
		{"graylog.apps.svc.cluster.local.", dns.TypeAAAA, 1}, // the first candidate: both at once
		{"graylog.svc.cluster.local.", dns.TypeA, 0},
		{"graylog.cluster.local.", dns.TypeA, 0},
		{"graylog.", dns.TypeA, 0},
		{"www.example.com.apps.svc.cluster.local.", dns.TypeA, 0}, // its cut name is asked ahead
		{"www.example.com.apps.svc.cluster.local.", dns.TypeAAAA, 0},
		{"com.apps.svc.cluster.local.", dns.TypeA, 1},
		{"www.example.com.svc.cluster.local.", dns.TypeA, 0},
		{"www.example.com.svc.cluster.local.", dns.TypeAAAA, 0},
		{"com.svc.cluster.local.", dns.TypeA, 1},
		{"www.example.com.cluster.local.", dns.TypeA, 0}, // its cut name is asked first (cutFirst)
		{"www.example.com.cluster.local.", dns.TypeAAAA, 0},
		{"com.cluster.local.", dns.TypeA, 1},
		{"www.example.com.", dns.TypeA, 1},
		{"www.example.com.", dns.TypeAAAA, 1},
	}
	for _, tt := range tests {
		if got := h.up.Asked(tt.name, tt.qtype); got != tt.want {
			t.Errorf("%s %s asked %d times, want %d", tt.name, dns.TypeToString[tt.qtype], got, tt.want)
		}
	}
}

// TestCutExpires: an NXDOMAIN cut hides the names below it for its negative TTL only (5 s in the
// testdata zone: min(SOA TTL 30, MINIMUM 5)); a Service created under a cut name is then seen, as
// ClusterFirst would see it.
func TestCutExpires(t *testing.T) {
	h := newHarness(t)
	h.ask(t, "udp", "www.example.com", dns.TypeA) // learns the cuts of com
	timetest.WaitFor(t, func() bool { return h.inflight() == 0 })
	const shop = "shop.com.apps.svc.cluster.local."
	if r := h.ask(t, "udp", "shop.com", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Fatalf("shop.com got %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	if got := h.up.Asked(shop, dns.TypeA); got != 0 {
		t.Errorf("%s asked %d times under the cut, want 0", shop, got)
	}
	if h.srv.Stats().CutHits == 0 {
		t.Errorf("cut hits got 0, want some")
	}
	// A Service "com" with a named endpoint "shop" is created in the pod's namespace.
	h.up.SetHook(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		name := strings.ToLower(q.Question[0].Name)
		if !dns.IsSubDomain("com.apps.svc.cluster.local.", name) {
			return nil, nil
		}
		r := new(dns.Msg)
		r.SetReply(q)
		r.RecursionAvailable = true
		exists := name == shop || name == "com.apps.svc.cluster.local."
		if exists && q.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(name + " 30 IN A 10.9.9.9")
			r.Answer = []dns.RR{rr}
		} else {
			if !exists {
				r.Rcode = dns.RcodeNameError
			}
			soa, _ := dns.NewRR("cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5")
			r.Ns = []dns.RR{soa}
		}
		return r, nil
	})
	h.clock.Advance(6 * time.Second)
	r := h.ask(t, "udp", "shop.com", dns.TypeA)
	if len(r.Answer) != 2 || r.Answer[0].(*dns.CNAME).Target != shop {
		t.Errorf("after the cut's TTL got %s %v, want the CNAME to %s and its A", dns.RcodeToString[r.Rcode], r.Answer, shop)
	}
}

// TestNoDataIsNoCut: a name that exists without records (a Namespace) is no cut: names below it are
// asked. x.other's walk probes other.svc.cluster.local (NODATA); db.other is then still found there.
func TestNoDataIsNoCut(t *testing.T) {
	h := newHarness(t)
	if r := h.ask(t, "udp", "x.other", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Fatalf("x.other got %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	timetest.WaitFor(t, func() bool { return h.inflight() == 0 })
	for _, name := range []string{"other.apps.svc.cluster.local.", "other.svc.cluster.local."} {
		if got := h.up.Asked(name, dns.TypeA); got != 1 {
			t.Errorf("cut name %s asked %d times, want 1", name, got)
		}
	}
	r := h.ask(t, "udp", "db.other", dns.TypeA)
	checkClusterFirst(t, h, "db.other", dns.TypeA, r)
	if got := h.up.Asked("db.other.apps.svc.cluster.local.", dns.TypeA); got != 0 {
		t.Errorf("db.other.apps.svc.cluster.local. asked %d times under the cut other.apps.svc, want 0", got)
	}
	if got := h.up.Asked("db.other.svc.cluster.local.", dns.TypeA); got != 1 {
		t.Errorf("db.other.svc.cluster.local. asked %d times, want 1: NODATA is no cut", got)
	}
}

// TestRefreshRenewsCuts: the refreshes of names under one cut come due together, when the cut expires
// (their answers live no longer than it). The first renews the cut names, one query each, rather than
// probing its own candidates; the next finds them renewed and asks only its name, where a refresh used
// to ask every candidate of every name again.
func TestRefreshRenewsCuts(t *testing.T) {
	h := newHarness(t)
	for _, name := range []string{"www.example.com", "alias.example.com"} {
		if r := h.ask(t, "udp", name, dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Fatalf("%s: got %s with %d answers, want an answer", name, dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		timetest.WaitFor(t, func() bool { return h.inflight() == 0 })
	}
	const cut = "com.apps.svc.cluster.local."
	if got := h.up.Asked(cut, dns.TypeA); got != 1 {
		t.Fatalf("%s asked %d times by the first walks, want 1", cut, got)
	}
	h.clock.Advance(4600 * time.Millisecond) // the last tenth of the testdata zone's 5 s negative TTL
	for _, name := range []string{"www.example.com", "alias.example.com"} {
		h.ask(t, "udp", name, dns.TypeA) // from the cache, and a refresh due at its expiry
	}
	h.clock.Advance(400 * time.Millisecond) // the expiry of the answers, and of the cuts
	timetest.WaitFor(t, func() bool { return h.srv.Stats().Prefetches == 2 && h.inflight() == 0 })
	tests := []struct {
		name string
		want int
	}{
		{cut, 2},                      // asked once more, by the first refresh
		{"com.svc.cluster.local.", 2}, // likewise
		{"com.cluster.local.", 2},     // likewise
		{"www.example.com.apps.svc.cluster.local.", 0},   // the candidates are never asked
		{"alias.example.com.apps.svc.cluster.local.", 0}, //
		{"www.example.com.", 1},                          // each name itself, at its walk only: its answer
		{"alias.example.com.", 1},                        // (TTL 300) is still fresh, and the refresh takes it
	}
	for _, tt := range tests {
		if got := h.up.Asked(tt.name, dns.TypeA); got != tt.want {
			t.Errorf("%s A asked %d times, want %d", tt.name, got, tt.want)
		}
	}
}

// TestSearchDirect: once a TLD's cuts are known, a searched name below ndots whose every candidate but
// the name as given is under a cut is looked up as an unsearched name is, with no walk (over UDP from
// the reader's thread): one query for the name, ClusterFirst's answer, no TTL past the cuts' (5 s), and
// the reply cached under the searched question, so that the next ask is a cache hit.
func TestSearchDirect(t *testing.T) {
	h := newHarness(t)
	h.ask(t, "udp", "www.example.com", dns.TypeA) // learns the cuts of com
	timetest.WaitFor(t, func() bool { return h.inflight() == 0 })
	tests := []struct {
		network, name string
		qtype         uint16
		hit           bool // the second ask is a hit of the reader's (plain records, over UDP)
	}{
		{"udp", "mail.example.com", dns.TypeA, true},
		{"udp", "alias.example.com", dns.TypeA, true},
		{"udp", "nope.example.com", dns.TypeA, true},
		{"udp", "only4.example.com", dns.TypeAAAA, true},
		{"udp", "txt.example.com", dns.TypeTXT, true}, // not plain: cached again by way of miekg/dns
		{"tcp", "example.com", dns.TypeMX, false},
	}
	for _, tt := range tests {
		before := h.srv.Stats()
		r := h.ask(t, tt.network, tt.name, tt.qtype)
		checkClusterFirst(t, h, tt.name, tt.qtype, r)
		timetest.WaitFor(t, func() bool { return h.inflight() == 0 })
		st := h.srv.Stats()
		if got := st.SearchDirect - before.SearchDirect; got != 1 {
			t.Errorf("%s %s: %d lookups without a walk, want 1", tt.network, tt.name, got)
		}
		if got := st.CutHits - before.CutHits; got != 3 {
			t.Errorf("%s %s: %d cut hits, want 3", tt.network, tt.name, got)
		}
		if got := h.up.Asked(tt.name+".apps.svc.cluster.local.", tt.qtype); got != 0 {
			t.Errorf("%s %s: a candidate under a cut asked %d times", tt.network, tt.name, got)
		}
		if got := h.up.Asked(tt.name+".", tt.qtype); got != 1 {
			t.Errorf("%s %s: the name asked %d times, want 1", tt.network, tt.name, got)
		}
		for _, rr := range append(append([]dns.RR{}, r.Answer...), r.Ns...) {
			if rr.Header().Ttl > 5 {
				t.Errorf("%s %s: %s has TTL %d, past the cuts' 5 s", tt.network, tt.name, rr.Header().Name, rr.Header().Ttl)
			}
		}
		total, hits := h.up.Total(), st.CacheHits
		again := h.ask(t, tt.network, tt.name, tt.qtype)
		if again.Rcode != r.Rcode || len(again.Answer) != len(r.Answer) {
			t.Errorf("%s %s asked again: got %s with %d answers, want %s with %d", tt.network, tt.name,
				dns.RcodeToString[again.Rcode], len(again.Answer), dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		if h.up.Total() != total {
			t.Errorf("%s %s asked again: went upstream", tt.network, tt.name)
		}
		if got := h.srv.Stats().CacheHits > hits; tt.hit && !got {
			t.Errorf("%s %s asked again: not a cache hit", tt.network, tt.name)
		}
	}
}
