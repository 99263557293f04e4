package cache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// checkInvariants walks every shard's list and compares it with the map and the byte count.
func checkInvariants(t testing.TB, c *Cache) {
	t.Helper()
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n, bytes := 0, 0
		var prev *node
		for x := s.head; x != nil; x = x.next {
			if x.prev != prev {
				t.Errorf("shard %d: broken prev link at %q", i, x.key)
			}
			if s.items[x.key] != x {
				t.Errorf("shard %d: listed node %q not in the map", i, x.key)
			}
			n++
			bytes += x.charge
			prev = x
		}
		if s.tail != prev {
			t.Errorf("shard %d: tail is not the last node", i)
		}
		if n != len(s.items) || bytes != s.bytes {
			t.Errorf("shard %d: list has %d nodes / %d bytes, map %d / counted %d", i, n, bytes, len(s.items), s.bytes)
		}
		if s.bytes > s.budget {
			t.Errorf("shard %d: %d bytes over its budget %d", i, s.bytes, s.budget)
		}
		s.mu.RUnlock()
	}
}

// nameReply is a positive reply for a numbered name; names of equal width give entries of equal size.
func nameReply(t testing.TB, i int, ttl int) *dns.Msg {
	name := fmt.Sprintf("n%05d.example.com.", i)
	return reply(t, name, dns.TypeA, dns.RcodeSuccess, []string{fmt.Sprintf("%s %d IN A 10.0.%d.%d", name, ttl, i/256%256, i%256)}, nil)
}

// entryCharge measures what one nameReply entry is charged.
func entryCharge(t testing.TB) int {
	c, _ := newCache(t, Config{Shards: 1})
	m := nameReply(t, 0, 60)
	c.Set(keyOf(t, m), m)
	return c.Bytes()
}

func TestEvictionByBytes(t *testing.T) {
	charge := entryCharge(t)
	const capacity = 10
	c, _ := newCache(t, Config{MaxBytes: capacity*charge + charge/2, Shards: 1})
	for i := range 100 {
		m := nameReply(t, i, 600)
		if _, err := c.Store(keyOf(t, m), m); err != nil {
			t.Fatalf("Store %d: %v", i, err)
		}
		if got, limit := c.Bytes(), capacity*charge+charge/2; got > limit {
			t.Fatalf("after %d sets: Bytes got %v, want <= %v", i+1, got, limit)
		}
	}
	checkInvariants(t, c)
	st := c.Stats()
	if st.Entries != capacity || st.Evictions != 100-capacity || st.Bytes != capacity*charge {
		t.Errorf("got %d entries, %d evictions, %d bytes; want %d, %d, %d",
			st.Entries, st.Evictions, st.Bytes, capacity, 100-capacity, capacity*charge)
	}
	// With no hits, SIEVE is FIFO: the newest ten remain.
	for i := range 100 {
		_, state := c.Get(keyOf(t, nameReply(t, i, 600)))
		if want := i >= 100-capacity; (state == Fresh) != want {
			t.Errorf("name %d: got %v, want present=%v", i, state, want)
		}
	}
}

func TestEvictionKeepsHotNames(t *testing.T) {
	charge := entryCharge(t)
	c, _ := newCache(t, Config{MaxBytes: 10 * charge, Shards: 1})
	hot := []int{0, 1, 2}
	for i := range 200 {
		m := nameReply(t, i, 600)
		c.Set(keyOf(t, m), m)
		for _, h := range hot {
			if h <= i {
				c.Get(keyOf(t, nameReply(t, h, 600)))
			}
		}
	}
	for _, h := range hot {
		if _, st := c.Get(keyOf(t, nameReply(t, h, 600))); st != Fresh {
			t.Errorf("hot name %d after 200 inserts: got %v, want %v", h, st, Fresh)
		}
	}
	checkInvariants(t, c)
}

func TestEvictionPrefersDeadEntries(t *testing.T) {
	charge := entryCharge(t)
	c, clk := newCache(t, Config{MaxBytes: 3 * charge, Shards: 1, StaleFor: time.Minute})
	for i, ttl := range []int{1000, 10, 1000} { // name 1 will be past its stale window
		m := nameReply(t, i, ttl)
		c.Set(keyOf(t, m), m)
		c.Get(keyOf(t, m)) // every entry visited: SIEVE alone would spare them all once
	}
	clk.Advance(71 * time.Second)
	m := nameReply(t, 3, 1000)
	c.Set(keyOf(t, m), m)
	for i, want := range []State{Fresh, Miss, Fresh, Fresh} {
		if _, got := c.Get(keyOf(t, nameReply(t, i, 0))); got != want {
			t.Errorf("name %d: got %v, want %v", i, got, want)
		}
	}
	if st := c.Stats(); st.Evictions != 1 || st.Expired != 1 {
		t.Errorf("evictions %d, expired %d: want 1 and 1", st.Evictions, st.Expired)
	}
}

func TestReplaceKeepsAccounting(t *testing.T) {
	c, _ := newCache(t, Config{Shards: 1})
	var answers []string
	key := keyOf(t, nameReply(t, 0, 60))
	for i := range 20 {
		answers = append(answers, fmt.Sprintf("n00000.example.com. 60 IN A 10.1.0.%d", i))
		m := reply(t, "n00000.example.com.", dns.TypeA, dns.RcodeSuccess, answers, nil)
		e, err := c.Store(key, m)
		if err != nil {
			t.Fatalf("Store: %v", err)
		}
		if got, want := c.Bytes(), allocSize(len(key))+e.Size(); got != want {
			t.Fatalf("Bytes after %d replacements: got %v, want %v", i, got, want)
		}
	}
	if got := c.Len(); got != 1 {
		t.Errorf("Len: got %v, want 1", got)
	}
	checkInvariants(t, c)
}

func TestTooBig(t *testing.T) {
	c, _ := newCache(t, Config{MaxBytes: 1000, Shards: 1})
	var answers []string
	for i := range 40 {
		answers = append(answers, fmt.Sprintf("big.example.com. 60 IN TXT %q", strings.Repeat("x", i)))
	}
	m := reply(t, "big.example.com.", dns.TypeTXT, dns.RcodeSuccess, answers, nil)
	e, err := c.Store(keyOf(t, m), m)
	if !errors.Is(err, ErrTooBig) || e == nil {
		t.Fatalf("Store: got %v (entry %v), want %v with an entry", err, e != nil, ErrTooBig)
	}
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Errorf("got %d entries, %d bytes; want none", c.Len(), c.Bytes())
	}
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		wantErr    bool
		wantShards int
	}{
		{name: "zero value", cfg: Config{}, wantShards: defaultShards},
		{name: "small bound, fewer shards", cfg: Config{MaxBytes: 1 << 20}, wantShards: 4},
		{name: "tiny bound, one shard", cfg: Config{MaxBytes: 4096}, wantShards: 1},
		{name: "explicit shards", cfg: Config{Shards: 3}, wantShards: 3},
		{name: "MinTTL above MaxTTL", cfg: Config{MinTTL: time.Hour, MaxTTL: time.Minute}, wantErr: true},
		{name: "MinTTL above default MaxTTL", cfg: Config{MinTTL: 2 * time.Hour}, wantErr: true},
		{name: "negative MinTTL", cfg: Config{MinTTL: -time.Second}, wantErr: true},
		{name: "MaxTTL under a second", cfg: Config{MaxTTL: time.Millisecond}, wantErr: true},
		{name: "negative MaxTTL", cfg: Config{MaxTTL: -time.Second}, wantErr: true},
		{name: "NegMaxTTL under a second", cfg: Config{NegMaxTTL: -1}, wantErr: true},
		{name: "negative MaxBytes", cfg: Config{MaxBytes: -1}, wantErr: true},
		{name: "negative Shards", cfg: Config{Shards: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantErr {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("New: got %v, want %v", err, ErrConfig)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: got %v, want nil", err)
			}
			if got := c.Stats().Shards; got != tt.wantShards {
				t.Errorf("Shards: got %v, want %v", got, tt.wantShards)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	charge := entryCharge(t)
	c, clk := newCache(t, Config{MaxBytes: 100 * charge, Shards: 4, StaleFor: 5 * time.Second})
	const names = 500
	msgs := make([]*dns.Msg, names)
	keys := make([][]byte, names)
	for i := range names {
		msgs[i] = nameReply(t, i, 1+i%10)
		keys[i] = keyOf(t, msgs[i])
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			buf := make([]byte, 0, 512)
			for range 5000 {
				i := r.IntN(names)
				switch e, st := c.Get(keys[i]); {
				case st == Miss || st == Prefetch || st == Stale:
					c.Set(keys[i], msgs[i])
				default:
					buf = e.AppendReply(buf[:0], uint16(i), true, nil, clk.Now())
					var out dns.Msg
					if err := out.Unpack(buf); err != nil || out.Question[0].Name != msgs[i].Question[0].Name {
						t.Errorf("reply for %d: %v / %v", i, err, out.Question)
						return
					}
				}
				if g == 0 && r.IntN(100) == 0 {
					clk.Advance(time.Second)
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, c)
	if st := c.Stats(); st.Evictions == 0 || st.Hits == 0 {
		t.Errorf("stats %+v: want evictions and hits", st)
	}
}

// TestMemoryBound checks that MaxBytes bounds the real heap: a sidecar must stay small whatever it is
// asked. It fills a cache far past its bound and compares the live heap with the bound.
func TestMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a cache with 200k replies")
	}
	const maxBytes = 4 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c, _ := newCache(t, Config{MaxBytes: maxBytes})
	key := make([]byte, 0, 300)
	m := nameReply(t, 0, 300)
	for i := range 200_000 {
		// Vary the shape: 1 to 4 records, names of different lengths.
		name := fmt.Sprintf("svc-%d.ns-%d.svc.cluster.local.", i, i%97)
		m.Question[0].Name = name
		m.Answer = m.Answer[:0]
		for j := range 1 + i%4 {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
				A: []byte{10, byte(j), byte(i >> 8), byte(i)}})
		}
		key = AppendKey(key[:0], wireName(t, name), dns.TypeA, dns.ClassINET, false, false, 0)
		c.Set(key, m)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int(after.HeapAlloc) - int(before.HeapAlloc)
	st := c.Stats()
	t.Logf("entries %d, charged %d bytes (bound %d), live heap %d bytes: %.2f heap/charged, %.0f bytes per entry",
		st.Entries, st.Bytes, maxBytes, heap, float64(heap)/float64(st.Bytes), float64(heap)/float64(st.Entries))
	if st.Bytes > maxBytes {
		t.Errorf("charged: got %v, want <= %v", st.Bytes, maxBytes)
	}
	if heap > maxBytes*105/100 {
		t.Errorf("live heap: got %v, want <= %v (MaxBytes + 5%%)", heap, maxBytes*105/100)
	}
	runtime.KeepAlive(c)
}
