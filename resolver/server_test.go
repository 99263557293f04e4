package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/podns/podns/cache"
	"github.com/podns/podns/internal/timetest"
	"github.com/podns/podns/resolver/resolvertest"
)

// TestClusterFirstAnswers: for every name, the reply through podns carries the records glibc would get
// under ClusterFirst (resolvertest.ClusterFirst), behind a CNAME from the question to the FQDN found.
func TestClusterFirstAnswers(t *testing.T) {
	h := newHarness(t)
	for _, network := range []string{"tcp", "udp"} {
		testClusterFirstAnswers(t, h, network, network)
	}
}

func testClusterFirstAnswers(t *testing.T, h *harness, prefix, network string) {
	for _, tc := range resolvertest.Cases {
		t.Run(prefix+"/"+tc.Name+"/"+dns.TypeToString[tc.Qtype], func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(dns.Fqdn(tc.Name), tc.Qtype)
			if network == "udp" {
				m.SetEdns0(65000, false) // room for the 60 records: truncation has its own test
			}
			got := h.exchange(t, network, m)
			checkClusterFirst(t, h, tc.Name, tc.Qtype, got)
		})
	}
}

func checkClusterFirst(t *testing.T, h *harness, name string, qtype uint16, got *dns.Msg) {
	t.Helper()
	resolvertest.CheckClusterFirst(t, h.zones, testSearch, 5, name, qtype, got)
}

func TestTruncation(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name string
		edns uint16 // 0: no EDNS
		max  int
		tc   bool
	}{
		{"no edns", 0, 512, true},
		{"edns under 512", 300, 512, true},
		{"edns 1232 holds all 60", 1232, 1232, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("big.", dns.TypeA)
			if tt.edns > 0 {
				m.SetEdns0(tt.edns, false)
			}
			packed := rawExchangeUDP(t, h.addr, packMsg(t, m))
			if len(packed) > tt.max {
				t.Fatalf("reply of %d bytes, want at most %d", len(packed), tt.max)
			}
			var r dns.Msg
			if err := r.Unpack(packed); err != nil {
				t.Fatalf("unpacking: %v", err)
			}
			if r.Truncated != tt.tc {
				t.Errorf("TC got %v, want %v", r.Truncated, tt.tc)
			}
			as := 0
			for _, rr := range r.Answer {
				if _, ok := rr.(*dns.A); ok {
					as++
				}
			}
			// musl before 1.2.4 uses a truncated reply as it is: it must hold whole records.
			if tt.tc && (as == 0 || as >= 60) || !tt.tc && as != 60 {
				t.Errorf("A records got %d, want some but not all 60 when truncated, else 60", as)
			}
			if (r.IsEdns0() != nil) != (tt.edns > 0) {
				t.Errorf("OPT present got %v, want %v", r.IsEdns0() != nil, tt.edns > 0)
			}
		})
	}
	t.Run("tcp has them all", func(t *testing.T) {
		r := h.ask(t, "tcp", "big", dns.TypeA)
		if r.Truncated || len(r.Answer) != 61 {
			t.Errorf("got TC %v and %d answers, want no TC and a CNAME + 60", r.Truncated, len(r.Answer))
		}
	})
}

// rawExchangeUDP sends one packet and returns the reply's bytes.
func rawExchangeUDP(t testing.TB, addr string, pkt []byte) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatalf("dialing: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(pkt); err != nil {
		t.Fatalf("writing: %v", err)
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	return buf[:n]
}

func TestReplyEchoesClient(t *testing.T) {
	h := newHarness(t)
	for _, network := range []string{"udp", "tcp"} {
		for _, rd := range []bool{true, false} {
			for round := 0; round < 2; round++ { // a miss, then a cache hit
				m := new(dns.Msg)
				m.SetQuestion("GrAyLoG.", dns.TypeA)
				m.Id = 4242
				m.RecursionDesired = rd
				r := h.exchange(t, network, m)
				if r.Id != 4242 || r.Question[0].Name != "GrAyLoG." || r.RecursionDesired != rd || !r.RecursionAvailable || !r.Response {
					t.Errorf("%s round %d: got id %d question %s RD %v RA %v QR %v, want 4242 GrAyLoG. %v true true",
						network, round, r.Id, r.Question[0].Name, r.RecursionDesired, rd, r.RecursionAvailable, r.Response)
				}
			}
		}
	}
}

func TestErrorReplies(t *testing.T) {
	h := newHarness(t)
	h.up.SetHook(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		if strings.HasPrefix(q.Question[0].Name, "broken.") {
			return nil, errors.New("upstream down")
		}
		return nil, nil
	})
	notify := new(dns.Msg)
	notify.SetNotify("example.com.")
	twoQ := new(dns.Msg)
	twoQ.SetQuestion("a.", dns.TypeA)
	twoQ.Question = append(twoQ.Question, twoQ.Question[0])
	badVers := new(dns.Msg)
	badVers.SetQuestion("graylog.", dns.TypeA)
	badVers.SetEdns0(1232, false)
	badVers.Extra[0].(*dns.OPT).SetVersion(1)
	broken := new(dns.Msg)
	broken.SetQuestion("broken.example.com.", dns.TypeA)
	chaos := new(dns.Msg)
	chaos.SetQuestion("id.server.", dns.TypeTXT)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	tests := []struct {
		name  string
		q     *dns.Msg
		rcode int
		echo  bool // question echoed
	}{
		{"notify", notify, dns.RcodeNotImplemented, false},
		{"two questions", twoQ, dns.RcodeFormatError, false},
		{"edns version 1", badVers, dns.RcodeBadVers, true},
		{"upstream fails", broken, dns.RcodeServerFailure, true},
		{"chaos id.server", chaos, dns.RcodeSuccess, true},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				r := h.exchange(t, network, tt.q)
				if r.Rcode != tt.rcode {
					t.Errorf("rcode got %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
				}
				if r.Id != tt.q.Id || !r.RecursionAvailable {
					t.Errorf("id/RA got %d/%v, want %d/true", r.Id, r.RecursionAvailable, tt.q.Id)
				}
				if tt.echo && (len(r.Question) != 1 || r.Question[0] != tt.q.Question[0]) {
					t.Errorf("question got %v, want %v", r.Question, tt.q.Question[0])
				}
			})
		}
	}
	t.Run("garbage gets FORMERR or nothing, never a crash", func(t *testing.T) {
		pkt := []byte{0xAB, 0xCD, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x3F, 'x'}
		r := rawExchangeUDP(t, h.addr, pkt)
		var m dns.Msg
		if err := m.Unpack(r); err != nil || m.Rcode != dns.RcodeFormatError || m.Id != 0xABCD {
			t.Errorf("got %v (err %v), want FORMERR with id 0xABCD", m.MsgHdr, err)
		}
	})
}

// TestCoalescing: 100 clients asking the same uncached name at once cause one upstream query.
func TestCoalescing(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	h.up.SetHook(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		<-release // hold the first query until every client has asked
		return nil, nil
	})
	const clients = 100
	var wg sync.WaitGroup
	errs := make(chan string, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
			m := new(dns.Msg)
			m.SetQuestion("graylog.apps.svc.cluster.local.", dns.TypeTXT)
			r, _, err := c.Exchange(m, h.addr)
			if err != nil || r.Rcode != dns.RcodeSuccess {
				errs <- "exchange failed"
			}
		}()
	}
	timetest.WaitFor(t, func() bool { return h.srv.Stats().Coalesced >= clients-1 })
	close(release)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := h.up.Asked("graylog.apps.svc.cluster.local.", dns.TypeTXT); got != 1 {
		t.Errorf("upstream queries got %d, want 1", got)
	}
}

// TestPairing: glibc asks A then AAAA; podns's miss for A fetched AAAA too, so the AAAA is a cache hit.
// For a name that is not searched, that holds once clients are seen asking AAAA at all (here, for
// another name first); a searched name's walk always knows both types of a candidate.
func TestPairing(t *testing.T) {
	for _, name := range []string{"graylog", "www.example.com.cluster.local", "dual.apps.svc.cluster.local"} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.ask(t, "udp", "web.apps.svc.cluster.local", dns.TypeAAAA)
			h.ask(t, "udp", name, dns.TypeA)
			timetest.WaitFor(t, func() bool { return h.srv.Stats().UpstreamQueries == h.up.Total() && h.inflight() == 0 })
			before := h.up.Total()
			r := h.ask(t, "udp", name, dns.TypeAAAA)
			if after := h.up.Total(); after != before {
				t.Errorf("upstream queries for the AAAA got %d, want 0", after-before)
			}
			checkClusterFirst(t, h, name, dns.TypeAAAA, r)
		})
	}
}

// TestPairingFollowsClients: while clients ask only A (AF_INET lookups, a load generator), a direct
// lookup's A miss soon stops fetching AAAA, but for a probe now and then; once clients ask both types
// again, the probes' AAAA answers are read and pairing comes back. The search walk pairs whatever
// clients ask: the candidate it stops at depends on both types.
func TestPairingFollowsClients(t *testing.T) {
	h := newHarness(t)
	settle := func() {
		timetest.WaitFor(t, func() bool { return h.srv.Stats().UpstreamQueries == h.up.Total() && h.inflight() == 0 })
	}
	ask := func(name string, qtype uint16) {
		t.Helper()
		if r := h.ask(t, "udp", name, qtype); r.Rcode != dns.RcodeNameError {
			t.Fatalf("%s %s: got %s, want NXDOMAIN", name, dns.TypeToString[qtype], dns.RcodeToString[r.Rcode])
		}
	}
	name := func(phase string, i int) string { return fmt.Sprintf("%s%d.apps.svc.cluster.local.", phase, i) }
	if !h.srv.pairs.on() {
		t.Fatal("pairing is off before any lookup, want on")
	}
	const aOnly = 96
	aaaa := 0
	for i := range aOnly {
		ask(name("a", i), dns.TypeA)
		settle()
		aaaa += h.up.Asked(name("a", i), dns.TypeAAAA)
	}
	if h.srv.pairs.on() {
		t.Errorf("pairing still on after %d A-only misses", aOnly)
	}
	if st := h.srv.Stats(); st.PairFetches != uint64(aaaa) || st.PairReads != 0 {
		t.Errorf("A-only clients: stats say %d paired fetches, %d read; want %d, 0", st.PairFetches, st.PairReads, aaaa)
	}
	// The first pairSample misses pair while the gauge learns; then only the probes do.
	if want := pairSample + (aOnly-pairSample)/pairProbeEvery; aaaa < pairSample || aaaa > want+1 {
		t.Errorf("A-only clients: %d AAAA fetched upstream for %d A misses, want %d to %d", aaaa, aOnly, pairSample, want+1)
	}

	askA := func(i int) { ask(name("b", i), dns.TypeA) }
	on := -1
	for i := 0; i < 400 && on < 0; i++ { // clients asking both: A, then AAAA
		askA(i)
		ask(name("b", i), dns.TypeAAAA)
		settle()
		if h.srv.pairs.on() {
			on = i
		}
	}
	if on < 0 {
		t.Fatal("pairing still off after 400 names asked for A and AAAA")
	}
	if st := h.srv.Stats(); st.PairReads == 0 {
		t.Error("clients asking both: no paired fetch counted as read")
	}
	askA(1000)
	settle()
	if got := h.up.Asked(name("b", 1000), dns.TypeAAAA); got != 1 {
		t.Errorf("after pairing came back (name %d): AAAA of an A miss fetched %d times, want 1", on, got)
	}

	ask("gone", dns.TypeA) // searched: the walk pairs regardless
	if got := h.up.Asked("gone.apps.svc.cluster.local.", dns.TypeAAAA); got != 1 {
		t.Errorf("search walk: gone.apps.svc.cluster.local. AAAA asked %d times, want 1", got)
	}
}

func (h *harness) inflight() int {
	h.srv.flights.mu.Lock()
	defer h.srv.flights.mu.Unlock()
	return len(h.srv.flights.calls)
}

func TestNoSearchForOtherClasses(t *testing.T) {
	h := newHarness(t)
	m := new(dns.Msg)
	m.SetQuestion("graylog.", dns.TypeA)
	m.Question[0].Qclass = dns.ClassHESIOD
	h.exchange(t, "tcp", m)
	if got := h.up.Asked("graylog.apps.svc.cluster.local.", dns.TypeA); got != 0 {
		t.Errorf("search candidates asked %d times for class HS, want 0", got)
	}
}

// TestIPv6Listen: a listen address on ::1 serves UDP and TCP like one on 127.0.0.1.
func TestIPv6Listen(t *testing.T) {
	if c, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		c.Close()
	}
	h := newHarness(t, func(c *Config, _ *cache.Config) { c.Listen = []string{"[::1]:0"} })
	if !strings.HasPrefix(h.addr, "[::1]:") {
		t.Fatalf("bound %s, want [::1]:port", h.addr)
	}
	for _, network := range []string{"udp", "tcp"} {
		if r := h.ask(t, network, "graylog", dns.TypeA); len(r.Answer) != 2 {
			t.Errorf("%s over IPv6 got %v, want the CNAME and A", network, r.Answer)
		}
	}
}

// TestTCPPipelining: RFC 7766 §6.2.1.1: queries pipelined on one connection are answered as each is
// ready, so a cached answer overtakes a slow miss sent before it.
func TestTCPPipelining(t *testing.T) {
	h := newHarness(t)
	h.ask(t, "tcp", "graylog", dns.TypeA) // cached
	release := make(chan struct{})
	h.up.SetHook(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		if strings.HasPrefix(q.Question[0].Name, "slow.") {
			<-release
		}
		return nil, nil
	})
	c, err := dns.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	slow, fast := new(dns.Msg), new(dns.Msg)
	slow.SetQuestion("slow.example.com.", dns.TypeA)
	fast.SetQuestion("graylog.", dns.TypeA)
	for _, m := range []*dns.Msg{slow, fast} {
		if err := c.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	first, err := c.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	second, err := c.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	if first.Id != fast.Id || second.Id != slow.Id {
		t.Errorf("replies in order %d, %d; want the cached %d first, then the slow %d", first.Id, second.Id, fast.Id, slow.Id)
	}
}

// TestNoWalkAfterShutdown: a walk asked for once Shutdown has stopped waiting for background work (by
// a query handler that outlived Shutdown's context) fails at once, rather than starting a goroutine
// that nothing waits for.
func TestNoWalkAfterShutdown(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	ran := false
	c, started := h.srv.flight([]byte("late"), question{}, func(context.Context) (*dns.Msg, error) {
		ran = true
		return nil, nil
	}, false, nil)
	select {
	case <-c.done:
	default:
		t.Fatal("a walk started after Shutdown is still in flight, want it failed at once")
	}
	if !started || !errors.Is(c.err, errShuttingDown) || ran {
		t.Errorf("walk after Shutdown: started %v, err %v, ran %v; want started, %v, not run", started, c.err, ran, errShuttingDown)
	}
	if n := h.inflight(); n != 0 {
		t.Errorf("flight table holds %d calls after the refused walk, want 0", n)
	}
}
