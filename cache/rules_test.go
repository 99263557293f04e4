package cache

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestPositiveTTLAndClamps(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		answer   []string
		wantLife time.Duration
		wantTTLs []uint32
	}{
		{
			name:     "smallest TTL of the answer",
			answer:   []string{"web.example.com. 300 IN A 10.0.0.1", "web.example.com. 60 IN A 10.0.0.2"},
			wantLife: 60 * time.Second,
			wantTTLs: []uint32{300, 60},
		},
		{
			name:     "CNAME chain counts",
			answer:   []string{"web.example.com. 20 IN CNAME lb.example.com.", "lb.example.com. 600 IN A 10.0.0.3"},
			wantLife: 20 * time.Second,
			wantTTLs: []uint32{20, 600},
		},
		{
			name:     "MinTTL raises short TTLs",
			cfg:      Config{MinTTL: 30 * time.Second},
			answer:   []string{"web.example.com. 5 IN A 10.0.0.1", "web.example.com. 90 IN A 10.0.0.2"},
			wantLife: 30 * time.Second,
			wantTTLs: []uint32{30, 90},
		},
		{
			name:     "MaxTTL caps long TTLs",
			cfg:      Config{MaxTTL: 10 * time.Minute},
			answer:   []string{"web.example.com. 86400 IN A 10.0.0.1"},
			wantLife: 10 * time.Minute,
			wantTTLs: []uint32{600},
		},
		{
			name:     "default MaxTTL is an hour",
			answer:   []string{"web.example.com. 604800 IN A 10.0.0.1"},
			wantLife: time.Hour,
			wantTTLs: []uint32{3600},
		},
		{
			name:     "MinTTL applies to TTL 0",
			cfg:      Config{MinTTL: 2 * time.Second},
			answer:   []string{"web.example.com. 0 IN A 10.0.0.1"},
			wantLife: 2 * time.Second,
			wantTTLs: []uint32{2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newCache(t, tt.cfg)
			m := reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, tt.answer, nil)
			e, err := c.Store(keyOf(t, m), m)
			if err != nil {
				t.Fatalf("Store: got %v, want nil", err)
			}
			if got := e.TTL(clk.Now()); got != tt.wantLife {
				t.Errorf("TTL: got %v, want %v", got, tt.wantLife)
			}
			if got := ttls(sent(t, e, clk.Now())); !equalTTLs(got, tt.wantTTLs) {
				t.Errorf("reply TTLs: got %v, want %v", got, tt.wantTTLs)
			}
			if got := e.Kind(); got != Positive {
				t.Errorf("Kind: got %v, want %v", got, Positive)
			}
		})
	}
}

func TestTTLDecrement(t *testing.T) {
	c, clk := newCache(t, Config{})
	m := reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess,
		[]string{"web.example.com. 300 IN A 10.0.0.1", "web.example.com. 100 IN A 10.0.0.2"}, nil)
	e, stored := c.Set(keyOf(t, m), m)
	if !stored {
		t.Fatalf("Set: got not stored, want stored")
	}
	start := clk.Now()
	tests := []struct {
		after    time.Duration
		wantTTLs []uint32
		wantLeft time.Duration
	}{
		{0, []uint32{300, 100}, 100 * time.Second},
		{999 * time.Millisecond, []uint32{300, 100}, 99*time.Second + time.Millisecond},
		{time.Second, []uint32{299, 99}, 99 * time.Second},
		{42500 * time.Millisecond, []uint32{258, 58}, 57500 * time.Millisecond},
		{99*time.Second + 999*time.Millisecond, []uint32{201, 1}, time.Millisecond},
		{-time.Second, []uint32{300, 100}, 101 * time.Second}, // a clock that went back counts nothing
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.after), func(t *testing.T) {
			now := start.Add(tt.after)
			if got := ttls(sent(t, e, now)); !equalTTLs(got, tt.wantTTLs) {
				t.Errorf("reply TTLs: got %v, want %v", got, tt.wantTTLs)
			}
			if got := e.TTL(now); got != tt.wantLeft {
				t.Errorf("TTL: got %v, want %v", got, tt.wantLeft)
			}
			msg, err := e.Msg(now)
			if err != nil {
				t.Fatalf("Msg: %v", err)
			}
			if got := ttls(msg); !equalTTLs(got, tt.wantTTLs) {
				t.Errorf("Msg TTLs: got %v, want %v", got, tt.wantTTLs)
			}
		})
	}
}

func TestNegativeTTL(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		rcode    int
		answer   []string
		soaTTL   int
		soaMin   int
		wantKind Kind
		wantLife time.Duration
	}{
		{name: "NXDOMAIN: SOA MINIMUM below SOA TTL", rcode: dns.RcodeNameError, soaTTL: 3600, soaMin: 30,
			wantKind: NXDomain, wantLife: 30 * time.Second},
		{name: "NXDOMAIN: SOA TTL below MINIMUM", rcode: dns.RcodeNameError, soaTTL: 5, soaMin: 60,
			wantKind: NXDomain, wantLife: 5 * time.Second},
		{name: "NODATA", rcode: dns.RcodeSuccess, soaTTL: 120, soaMin: 90,
			wantKind: NoData, wantLife: 90 * time.Second},
		{name: "NODATA after a CNAME", rcode: dns.RcodeSuccess, soaTTL: 120, soaMin: 90,
			answer:   []string{"web.example.com. 40 IN CNAME lb.example.com."},
			wantKind: NoData, wantLife: 40 * time.Second},
		{name: "default cap is 5 minutes", rcode: dns.RcodeNameError, soaTTL: 86400, soaMin: 86400,
			wantKind: NXDomain, wantLife: 5 * time.Minute},
		{name: "NegMaxTTL caps", cfg: Config{NegMaxTTL: 20 * time.Second}, rcode: dns.RcodeNameError,
			soaTTL: 3600, soaMin: 3600, wantKind: NXDomain, wantLife: 20 * time.Second},
		{name: "MinTTL does not raise negative TTLs", cfg: Config{MinTTL: time.Minute},
			rcode: dns.RcodeNameError, soaTTL: 10, soaMin: 10, wantKind: NXDomain, wantLife: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newCache(t, tt.cfg)
			m := reply(t, "web.example.com.", dns.TypeA, tt.rcode, tt.answer,
				[]string{fmt.Sprintf(soa, tt.soaTTL, tt.soaMin)})
			e, err := c.Store(keyOf(t, m), m)
			if err != nil {
				t.Fatalf("Store: got %v, want nil", err)
			}
			if got := e.Kind(); got != tt.wantKind {
				t.Errorf("Kind: got %v, want %v", got, tt.wantKind)
			}
			if got := e.TTL(clk.Now()); got != tt.wantLife {
				t.Errorf("TTL: got %v, want %v", got, tt.wantLife)
			}
			// RFC 2308 §5: the SOA goes out with the negative TTL.
			out := sent(t, e, clk.Now())
			if got, want := out.Ns[0].Header().Ttl, uint32(min(tt.soaTTL, tt.soaMin, int(c.cfg.negMaxTTL))); got != want {
				t.Errorf("SOA TTL: got %v, want %v", got, want)
			}
			if got := out.Rcode; got != tt.rcode {
				t.Errorf("Rcode: got %v, want %v", got, tt.rcode)
			}
			clk.Advance(tt.wantLife - time.Nanosecond)
			if _, got := c.Get(keyOf(t, m)); got != Fresh && got != Prefetch {
				t.Errorf("just before expiry: got %v, want fresh", got)
			}
			clk.Advance(time.Nanosecond)
			if _, got := c.Get(keyOf(t, m)); got != Stale {
				t.Errorf("at expiry: got %v, want %v", got, Stale)
			}
		})
	}
}

func TestNotStored(t *testing.T) {
	a := []string{"web.example.com. 60 IN A 10.0.0.1"}
	tests := []struct {
		name      string
		m         func(t *testing.T) *dns.Msg
		key       func(t *testing.T, m *dns.Msg) []byte
		wantErr   error
		wantEntry bool
	}{
		{name: "truncated", wantErr: ErrTruncated, wantEntry: true, m: func(t *testing.T) *dns.Msg {
			m := reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, a, nil)
			m.Truncated = true
			return m
		}},
		{name: "NXDOMAIN without SOA", wantErr: ErrNoSOA, wantEntry: true, m: func(t *testing.T) *dns.Msg {
			return reply(t, "web.example.com.", dns.TypeA, dns.RcodeNameError, nil, nil)
		}},
		{name: "NODATA without SOA (a referral)", wantErr: ErrNoSOA, wantEntry: true, m: func(t *testing.T) *dns.Msg {
			return reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, nil, []string{"example.com. 60 IN NS ns.example.com."})
		}},
		{name: "TTL 0", wantErr: ErrZeroTTL, wantEntry: true, m: func(t *testing.T) *dns.Msg {
			return reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"web.example.com. 0 IN A 10.0.0.1"}, nil)
		}},
		{name: "TTL with the top bit set counts as 0 (RFC 2181 §8)", wantErr: ErrZeroTTL, wantEntry: true, m: func(t *testing.T) *dns.Msg {
			return reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"web.example.com. 2147483648 IN A 10.0.0.1"}, nil)
		}},
		{name: "REFUSED", wantErr: ErrUncacheable, wantEntry: true, m: func(t *testing.T) *dns.Msg {
			return reply(t, "web.example.com.", dns.TypeA, dns.RcodeRefused, nil, nil)
		}},
		{name: "extended rcode", wantErr: ErrUncacheable, m: func(t *testing.T) *dns.Msg {
			m := reply(t, "web.example.com.", dns.TypeA, dns.RcodeBadVers, nil, nil)
			m.SetEdns0(1232, false)
			return m
		}},
		{name: "no question", wantErr: ErrBadMessage, m: func(t *testing.T) *dns.Msg {
			m := reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, a, nil)
			m.Question = nil
			return m
		}, key: func(t *testing.T, _ *dns.Msg) []byte {
			return AppendKey(nil, wireName(t, "web.example.com."), dns.TypeA, dns.ClassINET, false, false, 0)
		}},
		{name: "key of another name", wantErr: ErrBadKey, m: func(t *testing.T) *dns.Msg {
			return reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, a, nil)
		}, key: func(t *testing.T, _ *dns.Msg) []byte {
			return AppendKey(nil, wireName(t, "wEb.example.org."), dns.TypeA, dns.ClassINET, false, false, 0)
		}},
		{name: "key of another type", wantErr: ErrBadKey, m: func(t *testing.T) *dns.Msg {
			return reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, a, nil)
		}, key: func(t *testing.T, _ *dns.Msg) []byte {
			return AppendKey(nil, wireName(t, "web.example.com."), dns.TypeAAAA, dns.ClassINET, false, false, 0)
		}},
		{name: "nil message", wantErr: ErrBadMessage, m: func(*testing.T) *dns.Msg { return nil },
			key: func(t *testing.T, _ *dns.Msg) []byte {
				return AppendKey(nil, wireName(t, "web.example.com."), dns.TypeA, dns.ClassINET, false, false, 0)
			}},
		{name: "nil record", wantErr: ErrBadMessage, m: func(t *testing.T) *dns.Msg {
			m := reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, a, nil)
			m.Extra = []dns.RR{nil}
			return m
		}},
		{name: "short key", wantErr: ErrBadMessage, m: func(t *testing.T) *dns.Msg {
			return reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, a, nil)
		}, key: func(*testing.T, *dns.Msg) []byte { return []byte{0, 0, 0, 1} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newCache(t, Config{})
			m := tt.m(t)
			key := func() []byte {
				if tt.key != nil {
					return tt.key(t, m)
				}
				return keyOf(t, m)
			}()
			e, err := c.Store(key, m)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Store: got %v, want %v", err, tt.wantErr)
			}
			if got := e != nil; got != tt.wantEntry {
				t.Fatalf("entry returned: got %v, want %v", got, tt.wantEntry)
			}
			if _, stored := c.Set(key, m); stored {
				t.Errorf("Set: got stored, want not stored")
			}
			if _, st := c.Get(key); st != Miss {
				t.Errorf("Get: got %v, want %v", st, Miss)
			}
			if got := c.Len(); got != 0 {
				t.Errorf("Len: got %v, want 0", got)
			}
			if e == nil {
				return
			}
			// A returned entry can still answer the clients waiting for it, as it came.
			out := sent(t, e, clk.Now().Add(time.Hour))
			if got, want := out.Rcode, m.Rcode; got != want {
				t.Errorf("reply Rcode: got %v, want %v", got, want)
			}
			if got, want := out.Truncated, m.Truncated; got != want {
				t.Errorf("reply TC: got %v, want %v", got, want)
			}
			for _, rr := range out.Answer {
				if rr.Header().Ttl == StaleTTL {
					t.Errorf("unstored entry served as stale: %v", rr)
				}
			}
		})
	}
}

func TestServFail(t *testing.T) {
	servfail := func(t *testing.T) *dns.Msg {
		return reply(t, "web.example.com.", dns.TypeA, dns.RcodeServerFailure, nil, nil)
	}
	t.Run("kept ServFailTTL, never stale", func(t *testing.T) {
		c, clk := newCache(t, Config{ServFailTTL: 3 * time.Second})
		m := servfail(t)
		if _, err := c.Store(keyOf(t, m), m); err != nil {
			t.Fatalf("Store: got %v, want nil", err)
		}
		clk.Advance(3*time.Second - time.Nanosecond)
		e, st := c.Get(keyOf(t, m))
		if st != Fresh {
			t.Fatalf("before ServFailTTL: got %v, want %v (never Prefetch)", st, Fresh)
		}
		if got := e.Rcode(); got != dns.RcodeServerFailure {
			t.Errorf("Rcode: got %v, want %v", got, dns.RcodeServerFailure)
		}
		clk.Advance(time.Nanosecond)
		if _, st := c.Get(keyOf(t, m)); st != Miss {
			t.Errorf("at ServFailTTL: got %v, want %v", st, Miss)
		}
	})
	t.Run("default is one second", func(t *testing.T) {
		c, clk := newCache(t, Config{})
		m := servfail(t)
		e, _ := c.Set(keyOf(t, m), m)
		if got := e.TTL(clk.Now()); got != time.Second {
			t.Errorf("TTL: got %v, want %v", got, time.Second)
		}
	})
	t.Run("negative ServFailTTL turns it off", func(t *testing.T) {
		c, _ := newCache(t, Config{ServFailTTL: -1})
		m := servfail(t)
		if _, err := c.Store(keyOf(t, m), m); !errors.Is(err, ErrUncacheable) {
			t.Errorf("Store: got %v, want %v", err, ErrUncacheable)
		}
	})
	t.Run("does not replace a servable answer", func(t *testing.T) {
		c, clk := newCache(t, Config{StaleFor: time.Minute})
		good := reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"web.example.com. 10 IN A 10.0.0.1"}, nil)
		key := keyOf(t, good)
		c.Set(key, good)
		clk.Advance(30 * time.Second) // expired, within the stale window
		if _, err := c.Store(key, servfail(t)); !errors.Is(err, ErrKeepStale) {
			t.Fatalf("Store(SERVFAIL) over stale: got %v, want %v", err, ErrKeepStale)
		}
		if e, st := c.Get(key); st != Stale || e.Rcode() != dns.RcodeSuccess {
			t.Fatalf("Get: got %v rcode %v, want stale NOERROR", st, e.Rcode())
		}
		clk.Advance(time.Minute) // past the stale window: the SERVFAIL may go in
		if _, err := c.Store(key, servfail(t)); err != nil {
			t.Fatalf("Store(SERVFAIL) over dead entry: got %v, want nil", err)
		}
	})
}

func TestPerHopRecordsDropped(t *testing.T) {
	c, clk := newCache(t, Config{})
	m := reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"web.example.com. 60 IN A 10.0.0.1"}, nil)
	m.Authoritative = true
	m.Extra = append(m.Extra, mustRR(t, "ns.example.com. 60 IN A 10.0.0.53"))
	m.SetEdns0(1232, true)
	m.SetTsig("key.", dns.HmacSHA256, 300, 0)
	m.Extra = append(m.Extra, mustRR(t, "lb.example.com. 60 IN A 10.0.0.54"))
	before := m.String()
	e, err := c.Store(keyOf(t, m), m)
	if err != nil {
		t.Fatalf("Store: got %v, want nil", err)
	}
	if after := m.String(); after != before {
		t.Errorf("Set modified the reply:\n got %s\nwant %s", after, before)
	}
	out := sent(t, e, clk.Now())
	if len(out.Extra) != 2 {
		t.Fatalf("additional section: got %v, want the two A records", out.Extra)
	}
	for _, rr := range out.Extra {
		if rr.Header().Rrtype != dns.TypeA {
			t.Errorf("additional record: got %v, want only A records", rr)
		}
	}
	if out.Authoritative {
		t.Errorf("AA: got true, want false: a cached answer is not authoritative")
	}
}
