package upstream

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func mustPack(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReplyMatches(t *testing.T) {
	q := query("Graylog.apps.svc.cluster.local.", dns.TypeA)
	reply := func(edit func(r *dns.Msg)) *dns.Msg {
		r := new(dns.Msg)
		r.SetReply(q)
		if edit != nil {
			edit(r)
		}
		return r
	}
	tests := []struct {
		name string
		r    *dns.Msg
		want bool
	}{
		{"same question", reply(nil), true},
		{"name in other case (RFC 4343)", reply(func(r *dns.Msg) { r.Question[0].Name = "gRAYLOG.APPS.svc.cluster.local." }), true},
		{"other name", reply(func(r *dns.Msg) { r.Question[0].Name = "graylog.apps.svc.cluster.locak." }), false},
		{"other type", reply(func(r *dns.Msg) { r.Question[0].Qtype = dns.TypeAAAA }), false},
		{"other class", reply(func(r *dns.Msg) { r.Question[0].Qclass = dns.ClassCHAOS }), false},
		{"not a response", reply(func(r *dns.Msg) { r.Response = false }), false},
		{"other opcode", reply(func(r *dns.Msg) { r.Opcode = dns.OpcodeNotify }), false},
		{"no question, NOERROR", reply(func(r *dns.Msg) { r.Question = nil }), false},
		{"no question, FORMERR", reply(func(r *dns.Msg) { r.Question = nil; r.Rcode = dns.RcodeFormatError }), true},
		{"no question, NOTIMP", reply(func(r *dns.Msg) { r.Question = nil; r.Rcode = dns.RcodeNotImplemented }), true},
		{"no question, SERVFAIL", reply(func(r *dns.Msg) { r.Question = nil; r.Rcode = dns.RcodeServerFailure }), false},
		{"two questions", reply(func(r *dns.Msg) { r.Question = append(r.Question, r.Question[0]) }), false},
	}
	qb := mustPack(t, q)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := replyMatches(qb, mustPack(t, tt.r)); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestQuestionsMatchMalformed(t *testing.T) {
	q := mustPack(t, query("a.b.", dns.TypeA))
	tests := []struct {
		name string
		b    []byte
	}{
		{"short header", q[:11]},
		{"cut in the name", q[:14]},
		{"cut in type", q[:len(q)-2]},
		{"compression pointer", append(append(append([]byte(nil), q[:12]...), 0xC0, 0x0C), q[len(q)-4:]...)},
		{"label over 63", func() []byte { b := append([]byte(nil), q...); b[12] = 64; return b }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if questionsMatch(q, tt.b) {
				t.Errorf("got match, want none")
			}
		})
	}
}

func TestPackQuery(t *testing.T) {
	cookie := &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}
	tests := []struct {
		name     string
		m        func() *dns.Msg
		wantOpts int // options in the packed OPT
		wantDO   bool
	}{
		{"no OPT: one added", func() *dns.Msg { return query("a.test.", dns.TypeA) }, 1, false},
		{"OPT with DO and a cookie: keepalive appended", func() *dns.Msg {
			m := query("a.test.", dns.TypeA)
			m.SetEdns0(4096, true)
			m.IsEdns0().Option = []dns.EDNS0{cookie}
			return m
		}, 2, true},
		{"OPT with keepalive: left as is", func() *dns.Msg {
			m := query("a.test.", dns.TypeA)
			m.SetEdns0(1232, false)
			m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE}}
			return m
		}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m()
			m.Id = 777
			before := m.String()
			wire, err := packQuery(m, make([]byte, 2, 512))
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got := int(binary.BigEndian.Uint16(wire)); got != len(wire)-2 {
				t.Errorf("got length prefix %d, want %d", got, len(wire)-2)
			}
			got := new(dns.Msg)
			if err := got.Unpack(wire[2:]); err != nil {
				t.Fatalf("packed query does not unpack: %v", err)
			}
			opt := got.IsEdns0()
			if opt == nil {
				t.Fatalf("got no OPT, want one")
			}
			if len(opt.Option) != tt.wantOpts || opt.Do() != tt.wantDO {
				t.Errorf("got %d options DO %v, want %d and %v", len(opt.Option), opt.Do(), tt.wantOpts, tt.wantDO)
			}
			ka, ok := opt.Option[len(opt.Option)-1].(*dns.EDNS0_TCP_KEEPALIVE)
			if !ok || ka.Timeout != 0 {
				t.Errorf("got last option %v, want edns-tcp-keepalive without timeout", opt.Option[len(opt.Option)-1])
			}
			if got.Id != 777 || got.Question[0] != m.Question[0] {
				t.Errorf("got id %d question %v, want 777 and %v", got.Id, got.Question[0], m.Question[0])
			}
			if after := m.String(); after != before {
				t.Errorf("got m changed to\n%s\nwant\n%s", after, before)
			}
		})
	}
	t.Run("bad queries", func(t *testing.T) {
		for _, m := range []*dns.Msg{nil, new(dns.Msg)} {
			if _, err := packQuery(m, make([]byte, 2, 512)); !errors.Is(err, ErrBadQuery) {
				t.Errorf("got %v, want ErrBadQuery", err)
			}
		}
	})
	t.Run("larger than the buffer", func(t *testing.T) {
		m := query("a.test.", dns.TypeTXT)
		for range 20 {
			m.Extra = append(m.Extra, &dns.TXT{Hdr: dns.RR_Header{Name: "a.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{string(make([]byte, 200))}})
		}
		wire, err := packQuery(m, make([]byte, 2, 64))
		if err != nil {
			t.Fatal(err)
		}
		if got := int(binary.BigEndian.Uint16(wire)); got != len(wire)-2 || got < 4000 {
			t.Errorf("got length prefix %d for %d bytes, want it to match and exceed 4000", got, len(wire)-2)
		}
	})
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
		check   func(c Config) bool
	}{
		{"defaults", Config{Servers: []string{"10.96.0.10:53"}}, false, func(c Config) bool {
			return c.ConnsPerServer == 1 && c.MaxConnsPerServer == 64 && c.MaxInFlight == 32 && c.Timeout == 2*time.Second &&
				c.HedgeAfter == 500*time.Millisecond && c.IdleTimeout == 5*time.Second && c.MaxAge == 5*time.Minute &&
				c.DialTimeout == time.Second && c.Dial != nil && c.Now != nil
		}},
		{"IPv6", Config{Servers: []string{"[fd00::10]:53"}}, false, nil},
		{"max follows conns", Config{Servers: []string{"10.0.0.1:53"}, ConnsPerServer: 100}, false, func(c Config) bool { return c.MaxConnsPerServer == 100 }},
		{"no servers", Config{}, true, nil},
		{"host name", Config{Servers: []string{"kube-dns:53"}}, true, nil},
		{"no port", Config{Servers: []string{"10.0.0.1"}}, true, nil},
		{"port 0", Config{Servers: []string{"10.0.0.1:0"}}, true, nil},
		{"duplicate", Config{Servers: []string{"10.0.0.1:53", "10.0.0.1:53"}}, true, nil},
		{"negative timeout", Config{Servers: []string{"10.0.0.1:53"}, Timeout: -1}, true, nil},
		{"negative conns", Config{Servers: []string{"10.0.0.1:53"}, ConnsPerServer: -1}, true, nil},
		{"max below conns", Config{Servers: []string{"10.0.0.1:53"}, ConnsPerServer: 4, MaxConnsPerServer: 2}, true, nil},
		{"in flight too high", Config{Servers: []string{"10.0.0.1:53"}, MaxInFlight: 5000}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.withDefaults()
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("got %v, want it to wrap ErrConfig", err)
			}
			if tt.check != nil && !tt.check(got) {
				t.Errorf("got %+v, want the documented defaults", got)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 37 * time.Millisecond, 63 * time.Millisecond},
		{2, 75 * time.Millisecond, 125 * time.Millisecond},
		{3, 150 * time.Millisecond, 250 * time.Millisecond},
		{20, 1500 * time.Millisecond, 2500 * time.Millisecond},
	}
	for _, tt := range tests {
		for range 100 {
			if got := backoff(tt.n, 50*time.Millisecond, 2*time.Second); got < tt.min || got > tt.max {
				t.Errorf("backoff(%d) got %v, want %v..%v", tt.n, got, tt.min, tt.max)
			}
		}
	}
	for range 100 {
		if got := jitterAge(5 * time.Minute); got < 4*time.Minute || got > 5*time.Minute {
			t.Errorf("jitterAge got %v, want 4m..5m", got)
		}
	}
}

func TestHealthTransitions(t *testing.T) {
	var h health
	steps := []struct {
		ok       bool
		wantDown bool
		wantUp   bool
		changed  bool // success: came back up; failure: went down
	}{
		{ok: false},
		{ok: false},
		{ok: true, wantUp: true},                   // first success: up, not a return
		{ok: false, wantUp: true},                  // 1 failure
		{ok: false, wantUp: true},                  // 2
		{ok: false, wantDown: true, changed: true}, // 3: down
		{ok: false, wantDown: true},                // stays down, no second report
		{ok: true, wantUp: true, changed: true},    // back
	}
	for i, s := range steps {
		var changed bool
		if s.ok {
			changed = h.success()
		} else {
			changed = h.failure()
		}
		if changed != s.changed || h.down() != s.wantDown || h.up() != s.wantUp {
			t.Errorf("step %d: got changed %v down %v up %v, want %v %v %v", i, changed, h.down(), h.up(), s.changed, s.wantDown, s.wantUp)
		}
	}
}

func TestLimitSeen(t *testing.T) {
	ms := int64(time.Millisecond)
	tests := []struct {
		name  string
		infos []closeInfo
		want  int32 // from the last close
	}{
		{"limit with queries lost", []closeInfo{{serverClosed: true, written: 3, answered: 100, gap: ms}}, 100},
		{"our own close", []closeInfo{{serverClosed: false, written: 3, answered: 100, gap: ms}}, 0},
		{"idle close racing a query", []closeInfo{{serverClosed: true, written: 1, answered: 100, gap: 8000 * ms}}, 0},
		{"too few answers for a limit", []closeInfo{{serverClosed: true, written: 3, answered: 5, gap: ms}}, 0},
		{"clean close once", []closeInfo{{serverClosed: true, answered: 128, gap: ms}}, 0},
		{"clean close twice at the same count", []closeInfo{{serverClosed: true, answered: 128, gap: ms}, {serverClosed: true, answered: 128, gap: ms}}, 128},
		{"clean closes at other counts", []closeInfo{{serverClosed: true, answered: 128, gap: ms}, {serverClosed: true, answered: 90, gap: ms}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p pool
			var got int32
			for _, info := range tt.infos {
				got = p.limitSeen(info)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBusyAfter(t *testing.T) {
	c := &Client{cfg: Config{HedgeAfter: 500 * time.Millisecond}}
	p := &pool{c: c}
	for range 200 {
		p.observe(100 * time.Microsecond)
	}
	for i := range 2000 { // 5% of the answers take 300 ms
		if i%20 == 0 {
			p.observe(300 * time.Millisecond)
		} else {
			p.observe(100 * time.Microsecond)
		}
	}
	if got := time.Duration(p.latency.Load()); got < 100*time.Microsecond || got > 150*time.Microsecond {
		t.Errorf("got average %v with 5%% slow answers, want near the fast 100µs", got)
	}
	if got := p.busyAfter(); got != minBusyAfter {
		t.Errorf("got busyAfter %v, want the floor %v", got, minBusyAfter)
	}
	for range 200 {
		p.observe(time.Second)
	}
	if got, want := p.busyAfter(), 125*time.Millisecond; got != want {
		t.Errorf("got busyAfter %v for a slow server, want HedgeAfter/4 = %v", got, want)
	}
}
