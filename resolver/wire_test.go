package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

func packName(t testing.TB, name string) []byte {
	t.Helper()
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		t.Fatalf("packing %s: %v", name, err)
	}
	return buf[:n]
}

func packMsg(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("packing: %v", err)
	}
	return b
}

func TestParseQuery(t *testing.T) {
	query := func(mod func(m *dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion("GrayLog.", dns.TypeA)
		m.Id = 0x1234
		if mod != nil {
			mod(m)
		}
		return packMsg(t, m)
	}
	twoOPT := func(m *dns.Msg) {
		m.SetEdns0(1232, false)
		m.Extra = append(m.Extra, m.Extra[0])
	}
	compressedQ := append(query(nil)[:12:12], 0xC0, 12, 0, 1, 0, 1)
	tests := []struct {
		name    string
		pkt     []byte
		rcode   int
		edns    bool
		do      bool
		udpSize uint16
	}{
		{"plain", query(nil), dns.RcodeSuccess, false, false, 0},
		{"edns do", query(func(m *dns.Msg) { m.SetEdns0(4096, true) }), dns.RcodeSuccess, true, true, 4096},
		{"short", []byte{1, 2, 3}, rcodeDrop, false, false, 0},
		{"response", query(func(m *dns.Msg) { m.Response = true }), rcodeDrop, false, false, 0},
		{"notify", query(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), dns.RcodeNotImplemented, false, false, 0},
		{"two questions", query(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), dns.RcodeFormatError, false, false, 0},
		{"no question", query(func(m *dns.Msg) { m.Question = nil }), dns.RcodeFormatError, false, false, 0},
		{"two OPT", query(twoOPT), dns.RcodeFormatError, true, false, 1232},
		{"edns version 1", query(func(m *dns.Msg) { m.SetEdns0(1232, false); m.Extra[0].(*dns.OPT).SetVersion(1) }), dns.RcodeBadVers, true, false, 1232},
		{"cut question", query(nil)[:15], dns.RcodeFormatError, false, false, 0},
		{"compressed question", compressedQ, dns.RcodeFormatError, false, false, 0},
		{"cut additional", query(func(m *dns.Msg) { m.SetEdns0(1232, false) })[:30], dns.RcodeFormatError, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, rc := parseQuery(tt.pkt)
			if rc != tt.rcode {
				t.Fatalf("rcode got %d, want %d", rc, tt.rcode)
			}
			if rc == rcodeDrop {
				return
			}
			if q.id != 0x1234 {
				t.Errorf("id got %#x, want 0x1234", q.id)
			}
			if q.edns != tt.edns || q.do != tt.do || q.udpSize != tt.udpSize {
				t.Errorf("edns got %v/%v/%d, want %v/%v/%d", q.edns, q.do, q.udpSize, tt.edns, tt.do, tt.udpSize)
			}
			if rc == dns.RcodeSuccess && (nameString(q.qname) != "GrayLog." || q.qtype != dns.TypeA || q.qclass != dns.ClassINET) {
				t.Errorf("question got %s %d %d, want GrayLog. A IN", nameString(q.qname), q.qtype, q.qclass)
			}
		})
	}
}

// FuzzParseQuery: parseQuery never panics, and what it accepts miekg/dns reads as the same question.
func FuzzParseQuery(f *testing.F) {
	for _, name := range []string{"graylog.", "www.example.com.", "."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeAAAA)
		b, _ := m.Pack()
		f.Add(b)
		m.SetEdns0(1232, true)
		b, _ = m.Pack()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		q, rc := parseQuery(pkt)
		if rc != dns.RcodeSuccess {
			return
		}
		var m dns.Msg
		if err := m.Unpack(pkt); err != nil {
			return // miekg/dns is stricter about some RDATA; podns only needs the question
		}
		if len(m.Question) != 1 || dns.CanonicalName(m.Question[0].Name) != dns.CanonicalName(nameString(q.qname)) {
			t.Fatalf("questions differ: %v vs %s", m.Question, nameString(q.qname))
		}
		if m.Question[0].Qtype != q.qtype {
			t.Fatalf("qtype got %d, want %d", q.qtype, m.Question[0].Qtype)
		}
	})
}

// FuzzServe feeds arbitrary packets through the server's handling: never a panic, and every reply is a
// well-formed message carrying the query's ID within the UDP limit (or no reply for what is not a query).
func FuzzServe(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"graylog.", dns.TypeA}, {"big.", dns.TypeA}, {"www.example.com.", dns.TypeAAAA}, {"_http._tcp.graylog.", dns.TypeSRV}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		b, _ := m.Pack()
		f.Add(b)
		m.SetEdns0(1232, true)
		b, _ = m.Pack()
		f.Add(b)
	}
	h := newHarness(f)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		q, rc := parseQuery(pkt)
		if rc == rcodeDrop {
			return
		}
		limit := udpLimit(&q)
		out, ok := []byte(nil), false
		if rc == dns.RcodeSuccess {
			out, ok = h.srv.answerFromCache(nil, &q, limit)
		}
		if !ok {
			out = h.srv.answer(nil, &q, rc, limit)
		}
		var r dns.Msg
		if err := r.Unpack(out); err != nil {
			t.Fatalf("reply does not unpack: %v", err)
		}
		if r.Id != q.id || !r.Response || len(out) > limit {
			t.Fatalf("reply id %d response %v size %d, want id %d, a response, at most %d bytes", r.Id, r.Response, len(out), q.id, limit)
		}
	})
}
