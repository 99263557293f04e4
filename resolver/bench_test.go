package resolver

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/podns/podns/cache"
)

// BenchmarkAnswerFromCache is the hot path without the socket: parse a query, find its cached reply,
// patch it for the client. It must not allocate.
func BenchmarkAnswerFromCache(b *testing.B) {
	for _, name := range []string{"graylog.", "graylog.apps.svc.cluster.local."} {
		b.Run(name, func(b *testing.B) {
			h := newHarness(b)
			h.ask(b, "udp", name, dns.TypeA)
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			pkt := packMsg(b, m)
			out := make([]byte, 0, 4096)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				q, rc := parseQuery(pkt)
				if rc != 0 {
					b.Fatal("parse")
				}
				if _, ok := h.srv.answerFromCache(out[:0], &q, 512); !ok {
					b.Fatal("miss")
				}
			}
		})
	}
}

// BenchmarkUDPCacheHit is a client's round trip over loopback for a cached name.
func BenchmarkUDPCacheHit(b *testing.B) {
	h := newHarness(b)
	h.ask(b, "udp", "graylog.", dns.TypeA)
	c, err := net.Dial("udp", h.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion("graylog.", dns.TypeA)
	pkt := packMsg(b, m)
	buf := make([]byte, 4096)
	c.SetDeadline(time.Now().Add(time.Minute))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(pkt); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnswerMiss is the slow path for a name never seen, with an upstream answering in process
// (no sockets): the resolver's and the cache's own cost of a miss, A/AAAA pairing included.
func BenchmarkAnswerMiss(b *testing.B) {
	h := newHarness(b)
	wild, _ := dns.NewRR("*.miss.test. 300 IN A 192.0.2.1")
	soa, _ := dns.NewRR("miss.test. 300 IN SOA ns.miss.test. h.miss.test. 1 7200 1800 86400 60")
	h.zones.Add(soa)
	h.up.SetHook(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		r := new(dns.Msg)
		r.SetReply(q)
		if q.Question[0].Qtype == dns.TypeA {
			rr := dns.Copy(wild)
			rr.Header().Name = q.Question[0].Name
			r.Answer = []dns.RR{rr}
		} else {
			r.Ns = []dns.RR{soa}
		}
		return r, nil
	})
	benchAnswers(b, h, "u%d.miss.test.")
}

// BenchmarkWalkMiss is the slow path of a searched name never seen: a short name that no candidate
// has, so the walk goes through all four, with an upstream answering in process.
func BenchmarkWalkMiss(b *testing.B) {
	h := newHarness(b)
	benchAnswers(b, h, "u%d.")
}

// BenchmarkWalkCutsKnown is what podns as a pod does most under a flood of new external names: a name
// of two dots below ndots whose TLD's cuts are cached, so that the walk answers its search candidates
// from the cuts and asks the name as given, once.
func BenchmarkWalkCutsKnown(b *testing.B) {
	h := newHarness(b, func(c *Config, _ *cache.Config) { c.NoSearch = nil })
	wild, _ := dns.NewRR("*.miss.test. 300 IN A 192.0.2.1")
	soa, _ := dns.NewRR("cluster.local. 30 IN SOA ns.dns.cluster.local. h.cluster.local. 1 7200 1800 86400 30")
	h.up.SetHook(func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		r := new(dns.Msg)
		r.SetReply(q)
		if name := q.Question[0].Name; dns.IsSubDomain("cluster.local.", name) {
			r.Rcode = dns.RcodeNameError
			r.Ns = []dns.RR{soa}
		} else if q.Question[0].Qtype == dns.TypeA {
			rr := dns.Copy(wild)
			rr.Header().Name = name
			r.Answer = []dns.RR{rr}
		}
		return r, nil
	})
	m := new(dns.Msg)
	m.SetQuestion("first.miss.test.", dns.TypeA)
	q, rc := parseQuery(packMsg(b, m))
	if out := h.srv.answer(nil, &q, rc, 512); len(out) < headerLen { // learns the cuts of test.
		b.Fatal("no reply")
	}
	benchAnswers(b, h, "u%d.miss.test.")
}

// benchAnswers times h's answers to b.N A questions, fmt.Sprintf(format, i) for each i, and reports
// the upstream queries each cost.
func benchAnswers(b *testing.B, h *harness, format string) {
	names := make([][]byte, b.N)
	for i := range names {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf(format, i), dns.TypeA)
		names[i] = packMsg(b, m)
	}
	before := h.up.Total()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q, rc := parseQuery(names[i])
		if out := h.srv.answer(nil, &q, rc, 512); len(out) < headerLen {
			b.Fatal("no reply")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(h.up.Total()-before)/float64(b.N), "upstream/op")
}
