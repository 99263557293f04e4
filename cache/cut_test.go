package cache

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestCut: an NXDOMAIN stored as a cut lives for its negative TTL, min(SOA TTL, SOA MINIMUM) (RFC 2308
// §5), and not a second more; NODATA and positive answers are no cuts (RFC 8020 speaks of NXDOMAIN).
func TestCut(t *testing.T) {
	tests := []struct {
		name    string
		rcode   int
		answer  []string
		soaTTL  int
		minimum int
		want    time.Duration // 0: refused
	}{
		{"nxdomain, minimum lower", dns.RcodeNameError, nil, 30, 5, 5 * time.Second},
		{"nxdomain, soa ttl lower", dns.RcodeNameError, nil, 10, 60, 10 * time.Second},
		{"nodata", dns.RcodeSuccess, nil, 30, 30, 0},
		{"nxdomain behind a cname", dns.RcodeNameError, []string{"com.apps.svc.cluster.local. 30 IN CNAME gone.example.com."}, 30, 30, 0},
		{"positive", dns.RcodeSuccess, []string{"com.apps.svc.cluster.local. 30 IN A 10.0.0.1"}, 30, 30, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newCache(t, Config{})
			m := reply(t, "com.apps.svc.cluster.local.", dns.TypeA, tt.rcode, tt.answer, []string{fmt.Sprintf(soa, tt.soaTTL, tt.minimum)})
			e, _ := c.Set(keyOf(t, m), m)
			key := AppendCutKey(nil, wireName(t, "COM.apps.svc.cluster.local."), dns.ClassINET)
			err := c.SetCut(key, e)
			if tt.want == 0 {
				if !errors.Is(err, ErrNotCut) {
					t.Fatalf("SetCut error got %v, want ErrNotCut", err)
				}
				if _, _, ok := c.Cut(key); ok {
					t.Errorf("Cut got true after a refused SetCut, want false")
				}
				return
			}
			if err != nil {
				t.Fatalf("SetCut: %v", err)
			}
			if ttl, _, ok := c.Cut(AppendCutKey(nil, wireName(t, "com.apps.svc.cluster.local."), dns.ClassINET)); !ok || ttl != tt.want {
				t.Errorf("Cut got %v %v, want %v true", ttl, ok, tt.want)
			}
			clk.Advance(tt.want - time.Second)
			if _, _, ok := c.Cut(key); !ok {
				t.Errorf("Cut a second before the negative TTL ends got false, want true")
			}
			clk.Advance(time.Second)
			if ttl, _, ok := c.Cut(key); ok {
				t.Errorf("Cut at the end of the negative TTL got %v true, want false (never stale)", ttl)
			}
			// A refresh still sees it, expired: how long ago, and for how long it was fresh.
			clk.Advance(300 * time.Millisecond)
			if left, lifetime, ok := c.CutLeft(key); !ok || left != -300*time.Millisecond || lifetime != tt.want {
				t.Errorf("CutLeft 300 ms after the end got %v %v %v, want -300ms %v true", left, lifetime, ok, tt.want)
			}
			if e, left := c.Peek(keyOf(t, m)); e == nil || e.Kind() != NXDomain || left != 0 {
				t.Errorf("Peek of the expired NXDOMAIN got %v %v, want it, with 0 left", e, left)
			}
			if _, st := c.Get(key); st != Miss {
				t.Errorf("Get of an expired cut got %v, want miss", st)
			}
		})
	}
}

// TestCutKeyOnly: SetCut takes only keys AppendCutKey made, so a cut never answers a question.
func TestCutKeyOnly(t *testing.T) {
	c, _ := newCache(t, Config{})
	m := reply(t, "com.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil, []string{fmt.Sprintf(soa, 30, 30)})
	key := keyOf(t, m)
	e, _ := c.Set(key, m)
	if err := c.SetCut(key, e); !errors.Is(err, ErrNotCut) {
		t.Errorf("SetCut under a question's key: got %v, want ErrNotCut", err)
	}
}

// TestCutsBounded: cuts count against MaxBytes and are evicted like answers.
func TestCutsBounded(t *testing.T) {
	const max = 64 << 10
	c, _ := newCache(t, Config{MaxBytes: max, Shards: 1})
	for i := range 5000 {
		name := fmt.Sprintf("tld%d.apps.svc.cluster.local.", i)
		m := reply(t, name, dns.TypeA, dns.RcodeNameError, nil, []string{fmt.Sprintf(soa, 30, 30)})
		e, _ := c.Set(keyOf(t, m), m)
		if err := c.SetCut(AppendCutKey(nil, wireName(t, name), dns.ClassINET), e); err != nil {
			t.Fatalf("SetCut %d: %v", i, err)
		}
	}
	st := c.Stats()
	if st.Bytes > max || st.Evictions == 0 {
		t.Errorf("bytes got %d with %d evictions, want at most %d after evicting", st.Bytes, st.Evictions, max)
	}
	last := AppendCutKey(nil, wireName(t, "tld4999.apps.svc.cluster.local."), dns.ClassINET)
	if _, _, ok := c.Cut(last); !ok {
		t.Errorf("the newest cut got evicted")
	}
	if got := testing.AllocsPerRun(100, func() { c.Cut(last) }); got != 0 {
		t.Errorf("Cut allocations: got %v, want 0", got)
	}
}
