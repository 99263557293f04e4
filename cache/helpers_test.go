package cache

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/podns/podns/internal/timetest"
)

// newCache returns a cache on a fake clock, the injected clock of every test: time moves only when a
// test says so.
func newCache(t testing.TB, cfg Config) (*Cache, *timetest.Clock) {
	t.Helper()
	clk := timetest.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	cfg.Now = clk.Now
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return c, clk
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("dns.NewRR(%q): %v", s, err)
	}
	return rr
}

// reply builds an upstream reply for name/qtype with records in zone-file syntax.
func reply(t testing.TB, name string, qtype uint16, rcode int, answer, ns []string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Response, m.RecursionAvailable, m.Rcode = true, true, rcode
	for _, s := range answer {
		m.Answer = append(m.Answer, mustRR(t, s))
	}
	for _, s := range ns {
		m.Ns = append(m.Ns, mustRR(t, s))
	}
	return m
}

// wireName returns name in uncompressed wire format.
func wireName(t testing.TB, name string) []byte {
	t.Helper()
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		t.Fatalf("PackDomainName(%q): %v", name, err)
	}
	return buf[:n]
}

// keyOf is the view-0 key of m's question without DO or CD.
func keyOf(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	q := m.Question[0]
	return AppendKey(nil, wireName(t, q.Name), q.Qtype, q.Qclass, false, false, ViewUpstream)
}

// sent unpacks what AppendReply produces for e at now.
func sent(t testing.TB, e *Entry, now time.Time) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(e.AppendReply(nil, 0x1234, true, nil, now)); err != nil {
		t.Fatalf("unpacking reply: %v", err)
	}
	return m
}

// ttls lists the TTL of every record of m, section by section.
func ttls(m *dns.Msg) []uint32 {
	var out []uint32
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			out = append(out, rr.Header().Ttl)
		}
	}
	return out
}

func equalTTLs(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

const soa = "cluster.local. %d IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 %d"
