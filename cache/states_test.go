package cache

import (
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestStaleWindow(t *testing.T) {
	const ttl = 60 * time.Second
	tests := []struct {
		name     string
		staleFor time.Duration
		after    time.Duration
		want     State
		wantTTL  uint32 // of the record as sent; 0 when not served
	}{
		{"fresh", time.Hour, 10 * time.Second, Fresh, 50},
		{"last fresh instant", time.Hour, ttl - time.Nanosecond, Prefetch, 1},
		{"expiry starts the stale window", time.Hour, ttl, Stale, StaleTTL},
		{"inside the window", time.Hour, ttl + 30*time.Minute, Stale, StaleTTL},
		{"last stale instant", time.Hour, ttl + time.Hour - time.Nanosecond, Stale, StaleTTL},
		{"window over", time.Hour, ttl + time.Hour, Miss, 0},
		{"default window is an hour", 0, ttl + 59*time.Minute, Stale, StaleTTL},
		{"default window ends", 0, ttl + time.Hour, Miss, 0},
		{"negative StaleFor: no serve-stale", -1, ttl, Miss, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newCache(t, Config{StaleFor: tt.staleFor})
			m := reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"web.example.com. 60 IN A 10.0.0.1"}, nil)
			key := keyOf(t, m)
			c.Set(key, m)
			clk.Advance(tt.after)
			e, st := c.Get(key)
			if st != tt.want {
				t.Fatalf("Get: got %v, want %v", st, tt.want)
			}
			if st == Miss {
				if e != nil {
					t.Errorf("Get: got entry %p with Miss, want nil", e)
				}
				return
			}
			if got := sent(t, e, clk.Now()).Answer[0].Header().Ttl; got != tt.wantTTL {
				t.Errorf("sent TTL: got %v, want %v", got, tt.wantTTL)
			}
			if st == Stale && e.TTL(clk.Now()) != 0 {
				t.Errorf("TTL of a stale entry: got %v, want 0", e.TTL(clk.Now()))
			}
		})
	}
}

func TestStaleNegative(t *testing.T) {
	// RFC 8767 serves expired data of any kind; an NXDOMAIN's SOA goes out with TTL 30 too.
	c, clk := newCache(t, Config{})
	m := reply(t, "nope.example.com.", dns.TypeA, dns.RcodeNameError, nil, []string{"example.com. 60 IN SOA ns. host. 1 2 3 4 60"})
	c.Set(keyOf(t, m), m)
	clk.Advance(2 * time.Minute)
	e, st := c.Get(keyOf(t, m))
	if st != Stale {
		t.Fatalf("Get: got %v, want %v", st, Stale)
	}
	out := sent(t, e, clk.Now())
	if out.Rcode != dns.RcodeNameError || out.Ns[0].Header().Ttl != StaleTTL {
		t.Errorf("sent: got rcode %v SOA TTL %v, want NXDOMAIN and %v", out.Rcode, out.Ns[0].Header().Ttl, StaleTTL)
	}
}

func TestPrefetchTrigger(t *testing.T) {
	c, clk := newCache(t, Config{})
	m := reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"web.example.com. 100 IN A 10.0.0.1"}, nil)
	key := keyOf(t, m)
	c.Set(key, m)
	steps := []struct {
		advance time.Duration
		want    State
	}{
		{0, Fresh},
		{89*time.Second + 999*time.Millisecond, Fresh}, // 89.999 s: not yet the last tenth
		{time.Millisecond, Prefetch},                   // 90 s: the first caller refreshes
		{0, Fresh},                                     // once
		{5 * time.Second, Fresh},
		{5 * time.Second, Stale}, // 100 s: expired
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		if _, got := c.Get(key); got != s.want {
			t.Fatalf("step %d (+%v): got %v, want %v", i, s.advance, got, s.want)
		}
	}
	// The refresh stores a new entry, which gets its own prefetch.
	c.Set(key, m)
	clk.Advance(90 * time.Second)
	if _, got := c.Get(key); got != Prefetch {
		t.Errorf("after refresh: got %v, want %v", got, Prefetch)
	}
	if got := c.Stats().Prefetches; got != 2 {
		t.Errorf("Stats.Prefetches: got %v, want 2", got)
	}
}

func TestPrefetchOnceUnderConcurrency(t *testing.T) {
	c, clk := newCache(t, Config{})
	m := reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"web.example.com. 10 IN A 10.0.0.1"}, nil)
	key := keyOf(t, m)
	c.Set(key, m)
	clk.Advance(9500 * time.Millisecond)
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		prefetchN int
	)
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if _, st := c.Get(key); st == Prefetch {
					mu.Lock()
					prefetchN++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if prefetchN != 1 {
		t.Errorf("Prefetch results: got %v, want 1", prefetchN)
	}
}

func TestStats(t *testing.T) {
	c, clk := newCache(t, Config{StaleFor: time.Minute})
	m := reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"web.example.com. 10 IN A 10.0.0.1"}, nil)
	key := keyOf(t, m)
	c.Get(key) // miss
	c.Set(key, m)
	c.Get(key) // hit
	clk.Advance(9 * time.Second)
	c.Get(key) // hit + prefetch
	clk.Advance(time.Second)
	c.Get(key) // stale
	c.Set(key, reply(t, "web.example.com.", dns.TypeA, dns.RcodeRefused, nil, nil))
	got := c.Stats()
	want := Stats{Hits: 2, Prefetches: 1, Stale: 1, Misses: 1, Stored: 1, Rejected: 1, Entries: 1,
		Bytes: c.Bytes(), MaxBytes: DefaultMaxBytes, Shards: defaultShards}
	if got != want {
		t.Errorf("Stats: got %+v, want %+v", got, want)
	}
}
