package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/podns/podns/internal/timetest"
)

// gatedConn counts writes and the messages in each; the first write waits
// for the gate.
type gatedConn struct {
	net.Conn
	gate   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	writes [][]byte
}

func (g *gatedConn) Write(b []byte) (int, error) {
	g.once.Do(func() { <-g.gate })
	g.mu.Lock()
	g.writes = append(g.writes, append([]byte(nil), b...))
	g.mu.Unlock()
	return g.Conn.Write(b)
}

// framesIn counts the length-prefixed messages in one write.
func framesIn(b []byte) int {
	n := 0
	for len(b) >= 2 {
		l := int(binary.BigEndian.Uint16(b))
		b = b[min(len(b), 2+l):]
		n++
	}
	return n
}

// TestCoalescedWrite: queries queued while the writer is busy leave
// together in one write, each with its length prefix.
func TestCoalescedWrite(t *testing.T) {
	fs := startFake(t, script{})
	gc := make(chan *gatedConn, 1)
	gate := make(chan struct{})
	c := newTestClient(t, Config{
		Servers: []string{fs.addr}, ConnsPerServer: 1, MaxConnsPerServer: 1,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			g := &gatedConn{Conn: nc, gate: gate}
			gc <- g
			return g, nil
		},
	})
	// Queries share a connection only on a server that answers out of order: on a serial one each
	// would wait behind the first (TestSerialNoPipelining).
	c.pools[0].reorders.Store(true)
	g := <-gc
	t.Cleanup(func() { // before the client's Close, which waits for the writer
		select {
		case <-gate:
		default:
			close(gate)
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	exchange := func(name string, qtype uint16) {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := c.Exchange(ctx, query(name, qtype))
		errs <- err
	}
	wg.Add(1)
	go exchange("first.test.", dns.TypeA) // the writer blocks writing this one
	timetest.WaitFor(t, func() bool { return c.Stats().Writes == 0 && queued(c) == 0 && load(c) == 1 })
	wg.Add(2)
	go exchange("pair.test.", dns.TypeA)
	go exchange("pair.test.", dns.TypeAAAA)
	timetest.WaitFor(t, func() bool { return queued(c) == 2 })
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("got error %v, want none", err)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.writes) != 2 {
		t.Fatalf("got %d writes, want 2", len(g.writes))
	}
	if got := framesIn(g.writes[1]); got != 2 {
		t.Errorf("got %d messages in the second write, want 2 (A and AAAA together)", got)
	}
	timetest.WaitFor(t, func() bool { return c.Stats().Writes == 2 }) // counted after Write returns
	if st := c.Stats(); st.Writes != 2 || st.Messages != 3 {
		t.Errorf("got Writes %d Messages %d, want 2 and 3", st.Writes, st.Messages)
	}
}

func conns(c *Client) []*conn {
	p := c.pools[0]
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*conn(nil), p.conns...)
}

func queued(c *Client) (n int32) {
	for _, cn := range conns(c) {
		n += cn.queued.Load()
	}
	return n
}

func load(c *Client) (n int32) {
	for _, cn := range conns(c) {
		n += cn.load.Load()
	}
	return n
}

// TestExchangeErrors: each failure comes back as its sentinel, within the
// deadline.
func TestExchangeErrors(t *testing.T) {
	refused := closedPort(t)
	tests := []struct {
		name    string
		s       *script // nil: the server is the refused address
		timeout time.Duration
		cancel  bool
		want    error
		within  time.Duration
	}{
		{name: "no answer", s: &script{blackhole: true}, timeout: 300 * time.Millisecond, want: ErrTimeout, within: 400 * time.Millisecond},
		{name: "no answer, ctx deadline", s: &script{blackhole: true}, timeout: 300 * time.Millisecond, want: context.DeadlineExceeded, within: 400 * time.Millisecond},
		{name: "canceled", s: &script{blackhole: true}, timeout: time.Second, cancel: true, want: context.Canceled, within: 300 * time.Millisecond},
		{name: "connection refused", timeout: time.Second, want: ErrNoServer, within: 300 * time.Millisecond},
		{name: "TC over TCP", s: &script{truncate: true}, timeout: time.Second, want: ErrTruncated, within: 300 * time.Millisecond},
		{name: "reply that does not unpack", s: &script{corrupt: true}, timeout: time.Second, want: ErrBadReply, within: 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := refused
			if tt.s != nil {
				addr = startFake(t, *tt.s).addr
			}
			c := newTestClient(t, Config{Servers: []string{addr}, HedgeAfter: 100 * time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			if tt.cancel {
				time.AfterFunc(100*time.Millisecond, cancel)
			}
			start := time.Now()
			r, err := c.Exchange(ctx, query("x.test.", dns.TypeA))
			took := time.Since(start)
			if !errors.Is(err, tt.want) {
				t.Errorf("got reply %v, error %v; want error %v", r, err, tt.want)
			}
			if took > tt.within {
				t.Errorf("got the error after %v, want within %v", took, tt.within)
			}
		})
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestServfailIsAReply: SERVFAIL is returned as a reply and counted.
func TestServfailIsAReply(t *testing.T) {
	fs := startFake(t, script{rcode: dns.RcodeServerFailure})
	c := newTestClient(t, Config{Servers: []string{fs.addr}})
	m := query("x.test.", dns.TypeA)
	r, err := c.Exchange(context.Background(), m)
	if err != nil {
		t.Fatalf("got error %v, want a SERVFAIL reply", err)
	}
	if r.Rcode != dns.RcodeServerFailure || r.Id != m.Id {
		t.Errorf("got rcode %d id %d, want %d and %d", r.Rcode, r.Id, dns.RcodeServerFailure, m.Id)
	}
	if st := c.Stats(); st.Servfail != 1 || st.Answers != 1 {
		t.Errorf("got Servfail %d Answers %d, want 1 and 1", st.Servfail, st.Answers)
	}
}

// TestFailover: with the first server refusing, queries go to the second;
// when the first comes back, its probe finds it and queries return to it.
func TestFailover(t *testing.T) {
	first := closedPort(t)
	second := startFake(t, script{})
	c := newTestClient(t, Config{Servers: []string{first, second.addr}})
	// Every query is answered while the first server's dials fail (with
	// backoff) until it is marked down.
	for !c.Stats().Servers[0].Down {
		requireAllAnswered(t, runQueries(t, c, 10, 2, time.Second))
		if t.Failed() {
			return
		}
	}
	back := startFakeAt(t, first, script{})
	timetest.WaitFor(t, func() bool { return c.Stats().Servers[0].Up })
	requireAllAnswered(t, runQueries(t, c, 50, 4, time.Second))
	if got := back.queries.Load(); got < 50 {
		t.Errorf("got %d queries at the first server back up, want ≥ 50", got)
	}
}

// TestFailoverSilent: a first server that accepts but never answers is
// outrun by hedges to the second and goes down; queries then go straight
// to the second.
func TestFailoverSilent(t *testing.T) {
	first := startFake(t, script{blackhole: true})
	second := startFake(t, script{})
	c := newTestClient(t, Config{Servers: []string{first.addr, second.addr}, HedgeAfter: 20 * time.Millisecond})
	requireAllAnswered(t, runQueries(t, c, 10, 1, time.Second))
	if !c.Stats().Servers[0].Down {
		t.Fatalf("got first server not down, want down")
	}
	res := runQueries(t, c, 50, 4, time.Second)
	requireAllAnswered(t, res)
	if got := percentile(res, 1); got > 20*time.Millisecond {
		t.Errorf("got max latency %v once the silent server is down, want < 20ms (no hedge wait)", got)
	}
}

// TestKeepalive: queries carry edns-tcp-keepalive without a timeout (RFC
// 7828 §3.2.1); a server's timeout makes the client close idle connections
// before the server would.
func TestKeepalive(t *testing.T) {
	var withOption, total atomic.Int64
	fs := startFake(t, script{
		keepalive: 5, // 500 ms
		idleClose: 500 * time.Millisecond,
		onQuery: func(q *dns.Msg) {
			total.Add(1)
			if o := q.IsEdns0(); o != nil {
				for _, e := range o.Option {
					if ka, ok := e.(*dns.EDNS0_TCP_KEEPALIVE); ok && ka.Timeout == 0 {
						withOption.Add(1)
					}
				}
			}
		},
	})
	c := newTestClient(t, Config{Servers: []string{fs.addr}, ConnsPerServer: 1})
	requireAllAnswered(t, runQueries(t, c, 5, 1, time.Second))
	if withOption.Load() != total.Load() {
		t.Errorf("got %d of %d queries with edns-tcp-keepalive, want all", withOption.Load(), total.Load())
	}
	// The client closes at 375 ms (¾ of TIMEOUT), before the server would at 500 ms: a connection the
	// server closed first does not count.
	timetest.WaitFor(t, func() bool { return fs.clientEOF.Load() >= 1 })
	if st := c.Stats(); st.Resends != 0 {
		t.Errorf("got %d re-sends, want 0", st.Resends)
	}
}

// TestKeepaliveZero: TIMEOUT 0 asks the client to close once its queries
// are answered (RFC 7828 §3.3.2); an option without TIMEOUT (CoreDNS 1.14
// echoes the client's) says nothing, and the connection stays.
func TestKeepaliveZero(t *testing.T) {
	withOption := func(data []byte) script {
		return script{serial: true, answer: func(q *dns.Msg) *dns.Msg {
			r := answerFor(q, &script{})
			r.SetEdns0(1232, false)
			o := r.IsEdns0()
			// EDNS0_LOCAL: miekg/dns packs a TIMEOUT of 0 as an option without one.
			o.Option = append(o.Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0TCPKEEPALIVE, Data: data})
			return r
		}}
	}
	t.Run("timeout 0", func(t *testing.T) {
		fs := startFake(t, withOption([]byte{0, 0}))
		c := newTestClient(t, Config{Servers: []string{fs.addr}, ConnsPerServer: 1})
		requireAllAnswered(t, runQueries(t, c, 3, 1, time.Second))
		timetest.WaitFor(t, func() bool { return fs.clientEOF.Load() >= 3 })
	})
	t.Run("no timeout", func(t *testing.T) {
		fs := startFake(t, withOption(nil))
		c := newTestClient(t, Config{Servers: []string{fs.addr}, ConnsPerServer: 1})
		requireAllAnswered(t, runQueries(t, c, 50, 1, time.Second))
		if got := c.Stats().ConnsOpened; got != 1 {
			t.Errorf("got %d connections opened for 50 sequential queries, want 1", got)
		}
		if got := fs.clientEOF.Load(); got != 0 {
			t.Errorf("got %d connections closed by the client, want 0", got)
		}
	})
}

// TestMaxAge: connections retire at MaxAge (with jitter) without losing
// queries, and are replaced.
func TestMaxAge(t *testing.T) {
	fs := startFake(t, script{})
	c := newTestClient(t, Config{Servers: []string{fs.addr}, MaxAge: 100 * time.Millisecond})
	for range 10 {
		requireAllAnswered(t, runQueries(t, c, 20, 2, time.Second))
		time.Sleep(50 * time.Millisecond) // real time for the connections to age: the timing under test
	}
	st := c.Stats()
	if st.ConnsOpened < 6 {
		t.Errorf("got %d connections opened in 0.5 s, want ≥ 6 with a 100 ms MaxAge", st.ConnsOpened)
	}
	if st.Resends != 0 {
		t.Errorf("got %d re-sends, want 0 (retired connections drain)", st.Resends)
	}
}

// TestIdleClose: an idle pool closes its connections at IdleTimeout, with a
// reset (no TIME_WAIT, here or in conntrack), and does not redial until the
// next query.
func TestIdleClose(t *testing.T) {
	fs := startFake(t, script{})
	c := newTestClient(t, Config{Servers: []string{fs.addr}, IdleTimeout: 100 * time.Millisecond})
	requireAllAnswered(t, runQueries(t, c, 10, 2, time.Second))
	timetest.WaitFor(t, func() bool { return c.Stats().Conns == 0 })
	opened := c.Stats().ConnsOpened
	timetest.WaitFor(t, func() bool { return fs.clientEOF.Load() == int64(opened) })
	if got := fs.clientRST.Load(); got != int64(opened) {
		t.Errorf("got %d of %d idle connections closed with a reset, want all", got, opened)
	}
	waitJanitorRound(t, c) // the janitor dials ahead for a pool in use; it must not for this one
	if got := c.Stats().Conns; got != 0 {
		t.Errorf("got %d connections after idling, want 0", got)
	}
	requireAllAnswered(t, runQueries(t, c, 10, 2, time.Second))
}

// TestClose: Close fails calls in flight with ErrClosed at once, later
// calls too, and is idempotent.
func TestClose(t *testing.T) {
	fs := startFake(t, script{blackhole: true})
	c := newTestClient(t, Config{Servers: []string{fs.addr}})
	done := make(chan error)
	go func() {
		_, err := c.Exchange(context.Background(), query("x.test.", dns.TypeA))
		done <- err
	}()
	timetest.WaitFor(t, func() bool { return c.Stats().Messages == 1 })
	start := time.Now()
	c.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("got %v from the call in flight, want ErrClosed", err)
	}
	if took := time.Since(start); took > 200*time.Millisecond {
		t.Errorf("got Close after %v, want < 200ms", took)
	}
	if _, err := c.Exchange(context.Background(), query("x.test.", dns.TypeA)); !errors.Is(err, ErrClosed) {
		t.Errorf("got %v after Close, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("got %v from a second Close, want nil", err)
	}
	if c.Healthy() {
		t.Errorf("got Healthy true after Close, want false")
	}
}

// TestQueryUnmodified: Exchange never writes to m, even while another
// goroutine reads it (the race detector checks).
func TestQueryUnmodified(t *testing.T) {
	fs := startFake(t, script{})
	c := newTestClient(t, Config{Servers: []string{fs.addr}})
	withOPT := query("opt.test.", dns.TypeA)
	withOPT.SetEdns0(1232, true)
	withOPT.IsEdns0().Option = append(withOPT.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	for _, m := range []*dns.Msg{query("plain.test.", dns.TypeA), withOPT} {
		m.Id = 4242
		before := m.String()
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					_ = m.String()
				}
			}
		}()
		for range 20 {
			r, err := c.Exchange(context.Background(), m)
			if err != nil {
				t.Fatalf("got error %v, want a reply", err)
			}
			if err := checkAnswer(m, r); err != nil {
				t.Error(err)
			}
		}
		close(stop)
		wg.Wait()
		if after := m.String(); after != before {
			t.Errorf("got m changed to\n%s\nwant\n%s", after, before)
		}
	}
}

// TestHealthy: Healthy turns true once a server is reached and false when
// none can be.
func TestHealthy(t *testing.T) {
	t.Run("reachable", func(t *testing.T) {
		fs := startFake(t, script{})
		c := newTestClient(t, Config{Servers: []string{fs.addr}})
		timetest.WaitFor(t, c.Healthy)
	})
	t.Run("refused", func(t *testing.T) {
		c := newTestClient(t, Config{Servers: []string{closedPort(t)}})
		// Each query dials (no connection is kept warm for a server that refuses them), within the
		// redial backoff; three failed dials in a row mark the server down.
		timetest.WaitFor(t, func() bool {
			c.Exchange(context.Background(), query("x.test.", dns.TypeA))
			return !c.Healthy() && c.Stats().Servers[0].Down
		})
	})
}

// TestIDs: a connection's IDs in flight are distinct and unrelated to the
// caller's, and the in-flight cap holds.
func TestIDs(t *testing.T) {
	c := newTestClient(t, Config{Servers: []string{closedPort(t)}, MaxInFlight: maxInFlightLimit,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) { <-ctx.Done(); return nil, ctx.Err() }})
	p := c.pools[0]
	cn := newConn(p, 99, c.nowNS(), dialDemand) // stays dialing: nothing is written
	cl := &call{callState: callState{wire: []byte{0, 12, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}}}
	seen := map[uint16]bool{}
	sequential := 0
	var prev uint16
	for i := range maxInFlightLimit {
		e := &entry{}
		if !cn.enqueue(cl, e, c.nowNS(), true) {
			t.Fatalf("enqueue %d refused, want accepted below MaxInFlight", i)
		}
		if seen[e.id] {
			t.Fatalf("got ID %d twice among queries in flight", e.id)
		}
		seen[e.id] = true
		if e.id == prev+1 {
			sequential++
		}
		prev = e.id
	}
	if cn.enqueue(cl, &entry{}, c.nowNS(), true) {
		t.Errorf("enqueue past MaxInFlight accepted, want refused")
	}
	if sequential > 10 {
		t.Errorf("got %d sequential IDs of %d, want unpredictable IDs", sequential, maxInFlightLimit)
	}
}

// TestExchangeWire: the reply comes back as the server sent it, with the query's ID and without its
// OPT record; the OPT's edns-tcp-keepalive still applies. An OPT that is not the last record, or a
// truncated reply, are handled as Exchange handles them.
func TestExchangeWire(t *testing.T) {
	optFirst := func(q *dns.Msg) *dns.Msg {
		r := answerFor(q, &script{})
		r.SetEdns0(1232, false)
		glue := &dns.A{Hdr: dns.RR_Header{Name: "ns.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.IPv4(192, 0, 2, 53).To4()}
		r.Extra = append(r.Extra, glue) // after the OPT
		return r
	}
	for _, tc := range []struct {
		name  string
		s     script
		extra int // records in the additional section, OPT removed
	}{
		{"keepalive", script{keepalive: 5}, 0},
		{"OPT not last", script{answer: optFirst}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := startFake(t, tc.s)
			c := newTestClient(t, Config{Servers: []string{fs.addr}, ConnsPerServer: 1})
			q := new(dns.Msg)
			q.SetQuestion("www.example.com.", dns.TypeA)
			w, err := c.ExchangeWire(context.Background(), q)
			if err != nil {
				t.Fatalf("ExchangeWire: %v", err)
			}
			r := new(dns.Msg)
			if err := r.Unpack(w); err != nil {
				t.Fatalf("reply does not unpack: %v", err)
			}
			if r.Id != q.Id || r.IsEdns0() != nil || len(r.Extra) != tc.extra || len(r.Answer) != 1 ||
				r.Answer[0].(*dns.A).A.String() != ipFor(q.Question[0].Name).String() {
				t.Errorf("got %v, want ID %d, the A, %d additional records and no OPT", r, q.Id, tc.extra)
			}
			if tc.s.keepalive > 0 {
				// TIMEOUT 500 ms: the client closes at 375 ms; one that ignored it would never close.
				timetest.WaitFor(t, func() bool { return fs.clientEOF.Load() >= 1 })
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		fs := startFake(t, script{truncate: true})
		c := newTestClient(t, Config{Servers: []string{fs.addr}, ConnsPerServer: 1})
		q := new(dns.Msg)
		q.SetQuestion("www.example.com.", dns.TypeA)
		if _, err := c.ExchangeWire(context.Background(), q); !errors.Is(err, ErrTruncated) {
			t.Errorf("got %v, want ErrTruncated", err)
		}
	})
}

// TestExchangeAsyncErrors: an ExchangeAsync that fails tells its receiver once, with the error
// ExchangeWire would return, within the client's Timeout; with nothing to send to, before it returns.
func TestExchangeAsyncErrors(t *testing.T) {
	refused := closedPort(t)
	tests := []struct {
		name   string
		s      *script // nil: the server is the refused address
		close  time.Duration
		want   error
		within time.Duration
	}{
		{name: "no answer", s: &script{blackhole: true}, want: ErrTimeout, within: 400 * time.Millisecond},
		{name: "connection refused", want: ErrNoServer, within: 300 * time.Millisecond},
		{name: "TC over TCP", s: &script{truncate: true}, want: ErrTruncated, within: 300 * time.Millisecond},
		{name: "client closed while waiting", s: &script{blackhole: true}, close: 50 * time.Millisecond, want: ErrClosed, within: 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := refused
			if tt.s != nil {
				addr = startFake(t, *tt.s).addr
			}
			c := newTestClient(t, Config{Servers: []string{addr}, Timeout: 300 * time.Millisecond, HedgeAfter: 100 * time.Millisecond})
			if tt.close > 0 {
				time.AfterFunc(tt.close, func() { c.Close() })
			}
			r := newReceiver()
			start := time.Now()
			c.ExchangeAsync(query("x.test.", dns.TypeA), r)
			select {
			case got := <-r.ch:
				if !errors.Is(got.err, tt.want) {
					t.Errorf("got reply %d bytes, error %v; want error %v", len(got.wire), got.err, tt.want)
				}
				if took := time.Since(start); took > tt.within {
					t.Errorf("got the error after %v, want within %v", took, tt.within)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("receiver not told within 2s")
			}
			c.Close() // returns once every goroutine and timer of the client is done: none can tell r again
			if n := r.told.Load(); n != 1 {
				t.Errorf("receiver told %d times, want 1", n)
			}
		})
	}
	t.Run("closed client", func(t *testing.T) {
		c := newTestClient(t, Config{Servers: []string{refused}})
		c.Close()
		r := newReceiver()
		c.ExchangeAsync(query("x.test.", dns.TypeA), r)
		if n := r.told.Load(); n != 1 {
			t.Fatalf("receiver told %d times before ExchangeAsync returned, want 1", n)
		}
		if got := <-r.ch; !errors.Is(got.err, ErrClosed) {
			t.Errorf("got error %v, want %v", got.err, ErrClosed)
		}
	})
}
