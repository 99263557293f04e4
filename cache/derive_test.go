package cache

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestDerive: a derived entry is the reply as it stands (TTLs counted down), no TTL above the bound,
// under its own key; the entry it came from is unchanged. A record that is not plain goes by way of
// miekg/dns; a key of another question is refused.
func TestDerive(t *testing.T) {
	c, clk := newCache(t, Config{})
	tests := []struct {
		name  string
		m     *dns.Msg
		bound uint32
		want  []uint32 // after 10 s
	}{
		{"positive", reply(t, "www.example.com.", dns.TypeA, dns.RcodeSuccess,
			[]string{"www.example.com. 300 IN A 192.0.2.10"}, nil), 30, []uint32{30}},
		{"past the bound already", reply(t, "low.example.com.", dns.TypeA, dns.RcodeSuccess,
			[]string{"low.example.com. 20 IN A 192.0.2.10"}, nil), 30, []uint32{10}},
		{"negative", reply(t, "nope.example.com.", dns.TypeA, dns.RcodeNameError, nil,
			[]string{"example.com. 300 IN SOA ns1.example.com. h.example.com. 1 7200 1800 86400 60"}), 5, []uint32{5}},
		{"not plain", reply(t, "txt.example.com.", dns.TypeTXT, dns.RcodeSuccess,
			[]string{`txt.example.com. 300 IN TXT "x"`}, nil), 30, []uint32{30}},
	}
	for _, tt := range tests {
		e, err := c.Store(keyOf(t, tt.m), tt.m)
		if err != nil {
			t.Fatalf("%s: Store: %v", tt.name, err)
		}
		before := ttls(sent(t, e, clk.Now()))
		clk.Advance(10 * time.Second)
		q := tt.m.Question[0]
		key := AppendKey(nil, wireName(t, q.Name), q.Qtype, q.Qclass, false, false, ViewSearch)
		d, err := c.Derive(key, e, tt.bound)
		if err != nil {
			t.Fatalf("%s: Derive: %v", tt.name, err)
		}
		if got, st := c.Get(key); got != d || st != Fresh {
			t.Errorf("%s: the derived key holds %p (%v), want the derived entry %p fresh", tt.name, got, st, d)
		}
		if got := ttls(sent(t, d, clk.Now())); !slices.Equal(got, tt.want) {
			t.Errorf("%s: derived TTLs %v, want %v", tt.name, got, tt.want)
		}
		if got, want := d.TTL(clk.Now()), time.Duration(tt.want[0])*time.Second; got != want {
			t.Errorf("%s: derived entry fresh for %v, want %v", tt.name, got, want)
		}
		for i, ttl := range ttls(sent(t, e, clk.Now())) {
			if ttl != before[i]-10 {
				t.Errorf("%s: the original's TTL %d is %d, want %d", tt.name, i, ttl, before[i]-10)
			}
		}
		other := AppendKey(nil, wireName(t, "other.example.com."), q.Qtype, q.Qclass, false, false, ViewSearch)
		if _, err := c.Derive(other, e, tt.bound); !errors.Is(err, ErrBadKey) {
			t.Errorf("%s: Derive under another name's key: %v, want ErrBadKey", tt.name, err)
		}
	}
}
