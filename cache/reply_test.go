package cache

import (
	"bytes"
	"testing"

	"github.com/miekg/dns"
)

func TestAppendReplyHeaderAndQuestion(t *testing.T) {
	c, clk := newCache(t, Config{})
	m := reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"web.example.com. 60 IN A 10.0.0.1"}, nil)
	m.Authoritative, m.RecursionAvailable, m.AuthenticatedData = true, false, true
	e, _ := c.Set(keyOf(t, m), m)
	tests := []struct {
		name      string
		id        uint16
		rd        bool
		qname     []byte
		wantQName string
	}{
		{"client spelling with RD", 0xBEEF, true, wireName(t, "WeB.ExAmple.COM."), "WeB.ExAmple.COM."},
		{"without RD", 7, false, wireName(t, "web.example.com."), "web.example.com."},
		{"nil qname keeps the stored one", 1, true, nil, "web.example.com."},
		{"another name of the same length is ignored", 2, true, wireName(t, "web.example.org."), "web.example.com."},
		{"a longer name is ignored", 3, true, wireName(t, "www.web.example.com."), "web.example.com."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			buf := e.AppendReply(append([]byte(nil), prefix...), tt.id, tt.rd, tt.qname, clk.Now())
			if !bytes.HasPrefix(buf, prefix) {
				t.Fatalf("dst prefix overwritten: got %q", buf[:len(prefix)])
			}
			out := new(dns.Msg)
			if err := out.Unpack(buf[len(prefix):]); err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			checks := []struct {
				what      string
				got, want any
			}{
				{"ID", out.Id, tt.id},
				{"RD", out.RecursionDesired, tt.rd},
				{"QR", out.Response, true},
				{"RA", out.RecursionAvailable, true},
				{"AA", out.Authoritative, false},
				{"AD", out.AuthenticatedData, true},
				{"question", out.Question[0].Name, tt.wantQName},
				// The answer's owner is a compression pointer to the question: it follows its spelling.
				{"answer owner", out.Answer[0].Header().Name, tt.wantQName},
				{"OPT", out.IsEdns0() == nil, true},
			}
			for _, ck := range checks {
				if ck.got != ck.want {
					t.Errorf("%s: got %v, want %v", ck.what, ck.got, ck.want)
				}
			}
		})
	}
}

func TestEntryAccessors(t *testing.T) {
	c, _ := newCache(t, Config{})
	m := reply(t, "web.example.com.", dns.TypeAAAA, dns.RcodeSuccess, []string{
		"web.example.com. 60 IN CNAME lb.example.com.", "lb.example.com. 60 IN AAAA 2001:db8::1"}, nil)
	e, _ := c.Set(keyOf(t, m), m)
	if got := e.Answers(); got != 2 {
		t.Errorf("Answers: got %v, want 2", got)
	}
	if got := e.Rcode(); got != dns.RcodeSuccess {
		t.Errorf("Rcode: got %v, want %v", got, dns.RcodeSuccess)
	}
	if got := e.Truncated(); got {
		t.Errorf("Truncated: got %v, want false", got)
	}
}

func TestAppendKey(t *testing.T) {
	base := AppendKey(nil, wireName(t, "web.example.com."), dns.TypeA, dns.ClassINET, false, false, ViewUpstream)
	tests := []struct {
		name string
		key  []byte
		same bool
	}{
		{"ASCII case folds", AppendKey(nil, wireName(t, "WEB.Example.cOm."), dns.TypeA, dns.ClassINET, false, false, 0), true},
		{"type", AppendKey(nil, wireName(t, "web.example.com."), dns.TypeAAAA, dns.ClassINET, false, false, 0), false},
		{"class", AppendKey(nil, wireName(t, "web.example.com."), dns.TypeA, dns.ClassCHAOS, false, false, 0), false},
		{"DO", AppendKey(nil, wireName(t, "web.example.com."), dns.TypeA, dns.ClassINET, true, false, 0), false},
		{"CD", AppendKey(nil, wireName(t, "web.example.com."), dns.TypeA, dns.ClassINET, false, true, 0), false},
		{"view", AppendKey(nil, wireName(t, "web.example.com."), dns.TypeA, dns.ClassINET, false, false, ViewSearch), false},
		{"name", AppendKey(nil, wireName(t, "web.example.co."), dns.TypeA, dns.ClassINET, false, false, 0), false},
		// Only ASCII folds (RFC 4343 §3): 0xC9 and 0xE9 stay distinct.
		{"non-ASCII does not fold", AppendKey(nil, []byte{1, 0xC9, 0}, dns.TypeA, dns.ClassINET, false, false, 0), false},
	}
	e9 := AppendKey(nil, []byte{1, 0xE9, 0}, dns.TypeA, dns.ClassINET, false, false, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := base
			if tt.name == "non-ASCII does not fold" {
				ref = e9
			}
			if got := bytes.Equal(tt.key, ref); got != tt.same {
				t.Errorf("same key: got %v, want %v (%x vs %x)", got, tt.same, tt.key, ref)
			}
		})
	}
	// The caller's name is not modified.
	name := wireName(t, "WEB.example.com.")
	AppendKey(nil, name, dns.TypeA, dns.ClassINET, false, false, 0)
	if got, want := string(name), string(wireName(t, "WEB.example.com.")); got != want {
		t.Errorf("qname after AppendKey: got %q, want %q", got, want)
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	c, clk := newCache(t, Config{})
	m := reply(t, "web.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"web.example.com. 60 IN A 10.0.0.1"}, nil)
	c.Set(keyOf(t, m), m)
	qname := wireName(t, "Web.Example.com.")
	key := make([]byte, 0, 300)
	buf := make([]byte, 0, 512)
	now := clk.Now()
	tests := []struct {
		name string
		f    func()
	}{
		{"AppendKey", func() { key = AppendKey(key[:0], qname, dns.TypeA, dns.ClassINET, false, false, 0) }},
		{"Get", func() { c.Get(key) }},
		{"GetAt", func() { c.GetAt(key, now) }},
		{"Get miss", func() { c.Get(key[:len(key)-1]) }},
		{"AppendReply", func() {
			e, _ := c.Get(key)
			buf = e.AppendReply(buf[:0], 1, true, qname, now)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, tt.f); got != 0 {
				t.Errorf("allocations: got %v, want 0", got)
			}
		})
	}
}
