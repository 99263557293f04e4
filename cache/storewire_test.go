package cache

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestStoreWireMatchesStore: a reply of plain records stored as it came gives the same entry as the
// same reply stored through miekg/dns: the same reply to clients, kind and lifetime.
func TestStoreWireMatchesStore(t *testing.T) {
	soa := "example.com. 300 IN SOA ns.example.com. h.example.com. 1 7200 1800 86400 60"
	tests := []*dns.Msg{
		reply(t, "www.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"www.example.com. 300 IN A 192.0.2.1", "www.example.com. 200 IN A 192.0.2.2"}, nil),
		reply(t, "www.example.com.", dns.TypeAAAA, dns.RcodeSuccess, []string{"www.example.com. 300 IN AAAA 2001:db8::1"}, nil),
		reply(t, "ext.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"ext.example.com. 60 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.1"}, nil),
		reply(t, "nope.example.com.", dns.TypeA, dns.RcodeNameError, nil, []string{soa}),
		reply(t, "www.example.com.", dns.TypeMX, dns.RcodeSuccess, nil, []string{soa}),
		reply(t, "1.2.0.192.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"1.2.0.192.in-addr.arpa. 300 IN PTR www.example.com."}, nil),
		reply(t, "example.com.", dns.TypeNS, dns.RcodeSuccess, []string{"example.com. 300 IN NS ns.example.com."}, []string{}),
	}
	for _, m := range tests {
		t.Run(m.Question[0].String(), func(t *testing.T) {
			m.Compress = true
			wire, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			a, clk := newCache(t, Config{})
			b, _ := newCache(t, Config{})
			key := keyOf(t, m)
			ew, err := a.StoreWire(key, wire)
			if err != nil {
				t.Fatalf("StoreWire: %v", err)
			}
			em, err := b.Store(key, m)
			if err != nil {
				t.Fatalf("Store: %v", err)
			}
			now := clk.Now()
			if ew.Kind() != em.Kind() || ew.TTL(now) != em.TTL(now) {
				t.Errorf("kind and TTL: got %v %v, want %v %v", ew.Kind(), ew.TTL(now), em.Kind(), em.TTL(now))
			}
			if got, want := sent(t, ew, now).String(), sent(t, em, now).String(); got != want {
				t.Errorf("reply from the wire entry:\n%s\nwant, as from Store:\n%s", got, want)
			}
			if e, st := a.Get(key); e != ew || st != Fresh {
				t.Errorf("Get after StoreWire: got %v %v", e, st)
			}
		})
	}
}

// TestStoreWireRefuses: what StoreWire does not keep as it came, and why.
func TestStoreWireRefuses(t *testing.T) {
	a := reply(t, "www.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"www.example.com. 300 IN A 192.0.2.1"}, nil)
	pack := func(m *dns.Msg) []byte {
		m.Compress = true
		w, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	txt := reply(t, "www.example.com.", dns.TypeTXT, dns.RcodeSuccess, []string{`www.example.com. 300 IN TXT "hi"`}, nil)
	withOPT := a.Copy()
	withOPT.SetEdns0(1232, false)
	good := pack(a)
	// The answer's owner name is a pointer to the question (offset 12); point it at itself instead.
	loop := append([]byte(nil), good...)
	ownerAt := headerLen + len(wireName(t, "www.example.com.")) + 4
	loop[ownerAt], loop[ownerAt+1] = 0xC0|byte(ownerAt>>8), byte(ownerAt)
	short := append([]byte(nil), good...)
	short = short[:len(short)-1]
	tests := []struct {
		name string
		key  []byte
		wire []byte
		want error
	}{
		{"TXT", keyOf(t, txt), pack(txt), ErrNotPlain},
		{"OPT", keyOf(t, a), pack(withOPT), ErrNotPlain},
		{"pointer loop", keyOf(t, a), loop, ErrNotPlain},
		{"cut short", keyOf(t, a), short, ErrBadMessage},
		{"other question", keyOf(t, txt), good, ErrBadKey},
	}
	for _, tt := range tests {
		c, _ := newCache(t, Config{})
		if e, err := c.StoreWire(tt.key, tt.wire); e != nil || !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, %v; want no entry, %v", tt.name, e, err, tt.want)
		}
	}
}

// FuzzStoreWire: arbitrary bytes never panic StoreWire, and whatever it keeps goes out as a reply
// miekg/dns reads, with the question asked.
func FuzzStoreWire(f *testing.F) {
	for _, m := range []*dns.Msg{
		reply(f, "www.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"www.example.com. 300 IN A 192.0.2.1"}, nil),
		reply(f, "ext.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"ext.example.com. 60 IN CNAME www.example.com.", "www.example.com. 300 IN A 192.0.2.1"}, nil),
		reply(f, "nope.example.com.", dns.TypeA, dns.RcodeNameError, nil, []string{"example.com. 300 IN SOA ns.example.com. h.example.com. 1 7200 1800 86400 60"}),
	} {
		m.Compress = true
		w, _ := m.Pack()
		f.Add(w)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		// The key: the reply's own question when miekg/dns reads one, else the root's A.
		key := AppendKey(nil, []byte{0}, dns.TypeA, dns.ClassINET, false, false, 0)
		if m := new(dns.Msg); m.Unpack(wire) == nil && len(m.Question) == 1 {
			if _, err := dns.PackDomainName(m.Question[0].Name, make([]byte, 256), 0, nil, false); err == nil {
				key = keyOf(t, m)
			}
		}
		c, clk := newCache(t, Config{MaxBytes: 1 << 20, Shards: 2})
		e, err := c.StoreWire(key, wire)
		if e == nil {
			if err == nil {
				t.Fatal("StoreWire: no entry and no error")
			}
			return
		}
		for _, now := range []time.Time{clk.Now(), clk.Now().Add(e.TTL(clk.Now()))} {
			out := new(dns.Msg)
			buf := e.AppendReply(nil, 0x1234, true, key[keyName:], now)
			if err := out.Unpack(buf); err != nil {
				t.Fatalf("reply does not unpack: %v\nwire %x", err, wire)
			}
			if out.Id != 0x1234 || !out.Response || out.Authoritative || len(out.Question) != 1 ||
				out.Question[0].Qtype != binary.BigEndian.Uint16(key[keyType:]) {
				t.Fatalf("reply header or question: %v", out)
			}
		}
	})
}
