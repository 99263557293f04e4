package cache

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// benchNames are the hit benchmark's working set: small enough to stay cached, big enough to spread
// over every shard.
const benchNames = 4096

func benchCache(b *testing.B) (*Cache, [][]byte, []*dns.Msg) {
	b.Helper()
	c, err := New(Config{}) // the real clock: time.Now is part of a hit's cost
	if err != nil {
		b.Fatal(err)
	}
	qnames := make([][]byte, benchNames)
	msgs := make([]*dns.Msg, benchNames)
	for i := range benchNames {
		name := fmt.Sprintf("svc-%d.default.svc.cluster.local.", i)
		msgs[i] = reply(b, name, dns.TypeA, dns.RcodeSuccess, []string{name + " 3600 IN A 10.96.0.10"}, nil)
		qnames[i] = wireName(b, name)
		if _, err := c.Store(AppendKey(nil, qnames[i], dns.TypeA, dns.ClassINET, false, false, 0), msgs[i]); err != nil {
			b.Fatal(err)
		}
	}
	return c, qnames, msgs
}

// BenchmarkHit is the hot path of a cached answer: key, lookup, reply, with the real clock. Run with
// -cpu 1,2. "spread" hits names all over the shards, "one-name" hammers a single entry (the worst case
// for the shard lock and the entry's cache lines), "clock-once" reads the clock once per hit (GetAt).
func BenchmarkHit(b *testing.B) {
	for _, bc := range []struct {
		name      string
		names     int
		clockOnce bool
	}{{"spread", benchNames, false}, {"one-name", 1, false}, {"spread-clock-once", benchNames, true}} {
		b.Run(bc.name, func(b *testing.B) {
			c, qnames, _ := benchCache(b)
			var worker atomic.Uint32
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(worker.Add(1)) * 7919
				key := make([]byte, 0, 300)
				buf := make([]byte, 0, 512)
				for pb.Next() {
					i++
					q := qnames[i%bc.names]
					key = AppendKey(key[:0], q, dns.TypeA, dns.ClassINET, false, false, 0)
					var (
						e   *Entry
						st  State
						now = time.Now()
					)
					if bc.clockOnce {
						e, st = c.GetAt(key, now)
					} else {
						e, st = c.Get(key)
					}
					if st != Fresh {
						b.Errorf("Get: got %v, want %v", st, Fresh)
						return
					}
					buf = e.AppendReply(buf[:0], uint16(i), true, q, now)
				}
			})
		})
	}
}

// BenchmarkReplyPath compares the stored forms a hit could use: the wire message patched in place (what
// Entry does) against a *dns.Msg copied, adjusted and packed per reply.
func BenchmarkReplyPath(b *testing.B) {
	m := reply(b, "web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{
		"web.default.svc.cluster.local. 30 IN CNAME lb.default.svc.cluster.local.",
		"lb.default.svc.cluster.local. 30 IN A 10.0.0.1", "lb.default.svc.cluster.local. 30 IN A 10.0.0.2"},
		[]string{fmt.Sprintf(soa, 30, 30)})
	c, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	e, _ := c.Set(keyOf(b, m), m)
	now := time.Now().Add(5 * time.Second)
	b.Run("wire-patch", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = e.AppendReply(buf[:0], 1, true, nil, now)
		}
	})
	b.Run("msg-copy-pack", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 512)
		for b.Loop() {
			cp := m.Copy()
			cp.Id = 1
			for _, sec := range [][]dns.RR{cp.Answer, cp.Ns, cp.Extra} {
				for _, rr := range sec {
					rr.Header().Ttl -= 5
				}
			}
			cp.Compress = true
			if _, err := cp.PackBuffer(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSet stores replies as the resolver gets them: unpacked from an upstream, or composed in memory
// (a reply with records other than plain ones costs a verifying unpack, see build).
func BenchmarkSet(b *testing.B) {
	c, _, msgs := benchCache(b)
	keys := make([][]byte, len(msgs))
	unpacked := make([]*dns.Msg, len(msgs))
	for i, m := range msgs {
		keys[i] = keyOf(b, m)
		wire, err := m.Pack()
		if err != nil {
			b.Fatal(err)
		}
		unpacked[i] = new(dns.Msg)
		if err := unpacked[i].Unpack(wire); err != nil {
			b.Fatal(err)
		}
	}
	for _, src := range []struct {
		name string
		msgs []*dns.Msg
	}{{"upstream", unpacked}, {"composed", msgs}} {
		b.Run(src.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				c.Set(keys[i%len(keys)], src.msgs[i%len(msgs)])
			}
		})
	}
}
