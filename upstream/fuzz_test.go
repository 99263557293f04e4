package upstream

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzQuestionsMatch: the wire comparison never panics, and when it says
// two messages that miekg/dns can parse ask the same, they do (names
// compared ignoring case).
func FuzzQuestionsMatch(f *testing.F) {
	q, _ := query("Graylog.apps.svc.", dns.TypeA).Pack()
	r := new(dns.Msg)
	r.SetReply(query("gRAYLOG.apps.svc.", dns.TypeA))
	rb, _ := r.Pack()
	f.Add(q, rb)
	f.Add(q, q[:13])
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if !questionsMatch(a, b) {
			return
		}
		ma, mb := new(dns.Msg), new(dns.Msg)
		if ma.Unpack(a) != nil || mb.Unpack(b) != nil {
			return
		}
		if len(ma.Question) != len(mb.Question) {
			t.Fatalf("match with %d and %d questions", len(ma.Question), len(mb.Question))
		}
		for i := range ma.Question {
			qa, qb := ma.Question[i], mb.Question[i]
			if !strings.EqualFold(qa.Name, qb.Name) || qa.Qtype != qb.Qtype || qa.Qclass != qb.Qclass {
				t.Fatalf("match of %v and %v", qa, qb)
			}
		}
	})
}

// FuzzPackQuery: any query miekg/dns can parse packs with the keepalive
// option, unpacks again with the same question, and is left unchanged.
func FuzzPackQuery(f *testing.F) {
	for _, m := range []*dns.Msg{query("a.test.", dns.TypeA), func() *dns.Msg {
		m := query("b.test.", dns.TypeAAAA)
		m.SetEdns0(4096, true)
		return m
	}()} {
		b, _ := m.Pack()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if m.Unpack(b) != nil || len(m.Question) == 0 {
			return
		}
		before := m.String()
		wire, err := packQuery(m, make([]byte, 2, 512))
		if err != nil {
			return // e.g. an extended rcode without OPT: refused, not sent
		}
		if after := m.String(); after != before {
			t.Fatalf("m changed to\n%s\nfrom\n%s", after, before)
		}
		if int(binary.BigEndian.Uint16(wire)) != len(wire)-2 {
			t.Fatalf("length prefix %d for %d bytes", binary.BigEndian.Uint16(wire), len(wire)-2)
		}
		got := new(dns.Msg)
		if err := got.Unpack(wire[2:]); err != nil {
			t.Fatalf("packed query does not unpack: %v", err)
		}
		if !questionsMatch(wire[2:], mustPackFuzz(t, m)) {
			t.Fatalf("question changed: %v from %v", got.Question, m.Question)
		}
		o := got.IsEdns0()
		if o == nil {
			t.Fatalf("no OPT in the packed query")
		}
		found := false
		for _, e := range o.Option {
			found = found || e.Option() == dns.EDNS0TCPKEEPALIVE
		}
		if !found {
			t.Fatalf("no edns-tcp-keepalive in %v", o)
		}
	})
}

func mustPackFuzz(t *testing.T, m *dns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		t.Skip()
	}
	return b
}

// FuzzReplyStream: whatever a server sends back, a query ends (answer or
// error) by its deadline, the client never panics, and Close leaves no
// goroutine. The input is read as frames (2-byte length, message); the
// first two bytes of each message are replaced by the query's ID so that
// matching, unpacking and the TC check are reached, not only the stray
// path. A trailing partial frame is sent as is.
func FuzzReplyStream(f *testing.F) {
	for _, m := range fuzzSeedReplies() {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		// A hang must show where: the fuzz worker's own output is lost.
		watchdog := time.AfterFunc(5*time.Second, func() {
			buf := make([]byte, 1<<20)
			panic("hung:\n" + string(buf[:runtime.Stack(buf, true)]))
		})
		defer watchdog.Stop()
		srv := make(chan net.Conn, 4)
		c, err := New(Config{
			Servers: []string{"127.0.0.1:53"}, ConnsPerServer: 1, MaxConnsPerServer: 1, HedgeAfter: time.Hour,
			Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				a, b := net.Pipe()
				select {
				case srv <- b:
				default:
					return nil, errors.New("no more connections")
				}
				return a, nil
			},
		}, testLogger(t).Level(99))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go fuzzServer(srv, stream, done)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		start := time.Now()
		r, err := c.Exchange(ctx, query("fuzz.test.", dns.TypeA))
		cancel()
		if took := time.Since(start); took > 500*time.Millisecond {
			t.Fatalf("Exchange took %v with a 20ms deadline", took)
		}
		if err == nil && r == nil {
			t.Fatalf("nil reply without error")
		}
		c.Close()
		close(done)
		checkNoLeak(t)
	})
}

// fuzzServer answers each connection with stream, IDs patched, and then
// drains it (net.Pipe writes block until read).
func fuzzServer(conns chan net.Conn, stream []byte, done chan struct{}) {
	for {
		select {
		case <-done:
			return
		case nc := <-conns:
			go func() {
				defer nc.Close()
				go func() { <-done; nc.Close() }()
				var prefix [2]byte
				if _, err := nc.Read(prefix[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(prefix[:]))
				if _, err := readFull(nc, q); err != nil || len(q) < 2 {
					return
				}
				var out bytes.Buffer
				for s := stream; len(s) > 0; {
					if len(s) < 2 {
						out.Write(s)
						break
					}
					n := int(binary.BigEndian.Uint16(s))
					frame := append([]byte(nil), s[:min(len(s), 2+n)]...)
					if len(frame) >= 4 {
						copy(frame[2:4], q[:2])
					}
					out.Write(frame)
					s = s[len(frame):]
				}
				nc.Write(out.Bytes())
				buf := make([]byte, 512)
				for {
					if _, err := nc.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// fuzzSeedReplies are framed reply streams: a right answer, TC, a stray,
// a short frame, a frame cut short.
func fuzzSeedReplies() [][]byte {
	frame := func(m *dns.Msg) []byte {
		b, _ := m.Pack()
		return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
	}
	q := query("fuzz.test.", dns.TypeA)
	ok := answerFor(q, &script{})
	tc := answerFor(q, &script{truncate: true})
	other := answerFor(query("other.test.", dns.TypeA), &script{})
	return [][]byte{
		frame(ok),
		frame(tc),
		append(frame(other), frame(ok)...),
		{0, 5, 1, 2, 3, 4, 5},
		frame(ok)[:20],
	}
}
