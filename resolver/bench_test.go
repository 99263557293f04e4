package resolver

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
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
