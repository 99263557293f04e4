package cache

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzSetAppendReply feeds arbitrary messages through Store and AppendReply: nothing may panic, every
// entry's reply must unpack, and the reply must say what the rules promise.
func FuzzSetAppendReply(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzSetAppendReply (written by TestWriteFuzzSeeds -update-seeds).
	f.Fuzz(func(t *testing.T, data []byte, id uint16, flags byte, advance uint32) {
		m := new(dns.Msg)
		if m.Unpack(data) != nil || len(m.Question) != 1 {
			return
		}
		q := m.Question[0]
		qname := make([]byte, 256)
		n, err := dns.PackDomainName(q.Name, qname, 0, nil, false)
		if err != nil {
			return
		}
		qname = qname[:n]
		c, clk := newCache(t, Config{MaxBytes: 1 << 20, Shards: 2, StaleFor: time.Minute, MinTTL: time.Duration(flags>>4) * time.Second})
		key := AppendKey(nil, qname, q.Qtype, q.Qclass, flags&1 != 0, flags&2 != 0, flags>>2&1)
		before := m.String()
		e, err := c.Store(key, m)
		if m.String() != before {
			t.Fatalf("Store modified the message")
		}
		if e == nil {
			if err == nil {
				t.Fatalf("Store: nil entry without an error")
			}
			return
		}
		if _, st := c.Get(key); (st == Fresh || st == Prefetch) != (err == nil) {
			t.Fatalf("Get after Store error %v: got %v", err, st)
		}
		// The client's spelling: the same name with ASCII case flipped.
		spelled := append([]byte(nil), qname...)
		for i, b := range spelled {
			if 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' {
				spelled[i] = b ^ 0x20
			}
		}
		rd := flags&8 != 0
		for _, now := range []time.Time{clk.Now(), clk.Now().Add(time.Duration(advance) * time.Second), clk.Now().Add(e.TTL(clk.Now()))} {
			checkReply(t, e, m, id, rd, spelled, now, err == nil)
		}
	})
}

func checkReply(t *testing.T, e *Entry, m *dns.Msg, id uint16, rd bool, spelled []byte, now time.Time, stored bool) {
	t.Helper()
	buf := e.AppendReply(make([]byte, 0, 512), id, rd, spelled, now)
	out := new(dns.Msg)
	if err := out.Unpack(buf); err != nil {
		t.Fatalf("reply does not unpack: %v\nreply %x\nfrom %v", err, buf, m)
	}
	var wantExtra int
	for _, rr := range m.Extra {
		if !perHop(rr) {
			wantExtra++
		}
	}
	stale := stored && e.staleOK && e.TTL(now) == 0
	checks := []struct {
		what      string
		got, want any
	}{
		{"ID", out.Id, id},
		{"RD", out.RecursionDesired, rd},
		{"QR", out.Response, true},
		{"RA", out.RecursionAvailable, true},
		{"AA", out.Authoritative, false},
		{"Rcode", out.Rcode, m.Rcode},
		{"question", fmt.Sprint(len(out.Question), dns.CanonicalName(out.Question[0].Name)), fmt.Sprint(1, dns.CanonicalName(m.Question[0].Name))},
		{"answers", len(out.Answer), len(m.Answer)},
		{"authority", len(out.Ns), len(m.Ns)},
		{"additional", len(out.Extra), wantExtra},
		{"Answers()", e.Answers(), len(m.Answer)},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Fatalf("%s: got %v, want %v\nreply %v\nfrom %v", ck.what, ck.got, ck.want, out, m)
		}
	}
	for _, sec := range [][]dns.RR{out.Answer, out.Ns, out.Extra} {
		for _, rr := range sec {
			if stale && rr.Header().Ttl != StaleTTL {
				t.Fatalf("stale reply TTL: got %v, want %v", rr.Header().Ttl, StaleTTL)
			}
			if ttl := rr.Header().Ttl; ttl > maxTTLSeconds {
				t.Fatalf("TTL %v above 2^31-1", ttl)
			}
		}
	}
}

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzSetAppendReply")

// TestWriteFuzzSeeds writes the fuzz seed corpus from replies of every kind the rules distinguish.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite the seed corpus")
	}
	soaRR := fmt.Sprintf(soa, 300, 60)
	withOPT := func(m *dns.Msg) *dns.Msg { m.SetEdns0(1232, true); return m }
	truncated := func(m *dns.Msg) *dns.Msg { m.Truncated = true; return m }
	seeds := map[string]*dns.Msg{
		"positive":  reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"web.example.com. 60 IN A 10.0.0.1", "web.example.com. 30 IN A 10.0.0.2"}, nil),
		"cname":     reply(t, "Web.Example.com.", dns.TypeAAAA, dns.RcodeSuccess, []string{"web.example.com. 20 IN CNAME lb.example.com.", "lb.example.com. 60 IN AAAA 2001:db8::1"}, nil),
		"nxdomain":  reply(t, "nope.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil, []string{soaRR}),
		"nodata":    reply(t, "kubernetes.default.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess, nil, []string{soaRR}),
		"servfail":  reply(t, "web.example.com.", dns.TypeA, dns.RcodeServerFailure, nil, nil),
		"opt":       withOPT(reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"web.example.com. 60 IN A 10.0.0.1"}, nil)),
		"truncated": truncated(reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"web.example.com. 60 IN A 10.0.0.1"}, nil)),
		"srv":       reply(t, "_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, []string{"_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."}, []string{"cluster.local. 5 IN NS ns.dns.cluster.local."}),
		"txt":       reply(t, "txt.example.com.", dns.TypeTXT, dns.RcodeSuccess, []string{`txt.example.com. 3600 IN TXT "v=spf1 -all" "second string"`}, nil),
		"refused":   reply(t, "web.example.com.", dns.TypeA, dns.RcodeRefused, nil, nil),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzSetAppendReply")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, m := range seeds {
		m.Compress = true
		wire, err := m.Pack()
		if err != nil {
			t.Fatalf("packing %s: %v", name, err)
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nuint16(%d)\nbyte(%s)\nuint32(%d)\n",
			strconv.Quote(string(wire)), 0xBEEF, strconv.QuoteRune(rune(len(name)%16)), 45)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
