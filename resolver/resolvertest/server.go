package resolvertest

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Server is an upstream on 127.0.0.1 that answers from Zones over TCP, and listens on UDP on the same
// port only to count the packets that reach it (podns must send none).
type Server struct {
	Addr       string        // host:port, TCP and UDP
	UDPPackets atomic.Uint64 // UDP datagrams received
	TCPQueries atomic.Uint64 // TCP queries answered

	mu      sync.Mutex // guards asked and hook
	asked   map[string]int
	hook    func(q *dns.Msg) *dns.Msg
	zones   *Zones
	tcp     *dns.Server
	udpConn net.PacketConn
}

// Start serves z until the test ends.
func Start(t testing.TB, z *Zones) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		t.Fatalf("listening on udp: %v", err)
	}
	s := &Server{Addr: ln.Addr().String(), asked: make(map[string]int), zones: z, udpConn: pc}
	started := make(chan struct{})
	s.tcp = &dns.Server{Listener: ln, Handler: dns.HandlerFunc(s.serve), NotifyStartedFunc: func() { close(started) }}
	go s.tcp.ActivateAndServe()
	<-started
	go func() {
		buf := make([]byte, 65535)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			s.UDPPackets.Add(1)
		}
	}()
	t.Cleanup(func() {
		s.tcp.ShutdownContext(context.Background())
		pc.Close()
	})
	return s
}

func (s *Server) serve(w dns.ResponseWriter, q *dns.Msg) {
	s.TCPQueries.Add(1)
	s.mu.Lock()
	if len(q.Question) == 1 {
		s.asked[askKey(q.Question[0].Name, q.Question[0].Qtype)]++
	}
	hook := s.hook
	s.mu.Unlock()
	var r *dns.Msg
	if hook != nil {
		r = hook(q)
	}
	if r == nil {
		r = s.zones.Answer(q)
	}
	w.WriteMsg(r)
}

// SetHook makes f answer first; when f returns nil, the zones answer. f may block (a slow upstream).
func (s *Server) SetHook(f func(q *dns.Msg) *dns.Msg) {
	s.mu.Lock()
	s.hook = f
	s.mu.Unlock()
}

// Asked returns how many times the server was asked name (any case) and type.
func (s *Server) Asked(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked[askKey(name, qtype)]
}

func askKey(name string, qtype uint16) string {
	return strings.ToLower(dns.Fqdn(name)) + "/" + dns.TypeToString[qtype]
}

// Exchanger answers from zones in process, without sockets: for resolver unit tests.
type Exchanger struct {
	Zones *Zones

	mu     sync.Mutex // guards the fields below
	asked  map[string]int
	hook   func(ctx context.Context, q *dns.Msg) (*dns.Msg, error)
	queued []queued // by Queue, for Flush
	total  atomic.Uint64
}

// SetHook makes f answer first (return nil, nil to fall through to the zones); f may block or fail.
func (e *Exchanger) SetHook(f func(ctx context.Context, q *dns.Msg) (*dns.Msg, error)) {
	e.mu.Lock()
	e.hook = f
	e.mu.Unlock()
}

// Exchange answers q: the hook first, else the zones.
func (e *Exchanger) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	e.total.Add(1)
	e.mu.Lock()
	if e.asked == nil {
		e.asked = make(map[string]int)
	}
	e.asked[askKey(q.Question[0].Name, q.Question[0].Qtype)]++
	hook := e.hook
	e.mu.Unlock()
	if hook != nil {
		if r, err := hook(ctx, q); r != nil || err != nil {
			return r, err
		}
	}
	return e.Zones.Answer(q), nil
}

// ExchangeWire is Exchange in wire form, as upstream.Client hands replies to the resolver: the reply
// packed, without its OPT record.
func (e *Exchanger) ExchangeWire(ctx context.Context, q *dns.Msg) ([]byte, error) {
	r, err := e.Exchange(ctx, q)
	if err != nil {
		return nil, err
	}
	cp := *r
	cp.Id = q.Id
	cp.Extra = nil
	for _, rr := range r.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			cp.Extra = append(cp.Extra, rr)
		}
	}
	cp.Compress = true
	return cp.Pack()
}

// ExchangeAsync implements resolver.Upstream as upstream.Client does, bounded by AsyncTimeout (like
// the client's Timeout): r is told once, from a goroutine of its own.
func (e *Exchanger) ExchangeAsync(q *dns.Msg, r Receiver) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), AsyncTimeout)
		defer cancel()
		r.Receive(e.ExchangeWire(ctx, q))
	}()
}

// Queue is ExchangeAsync for a query sent at the next Flush, as upstream.Client's: a caller that
// forgets to Flush leaves it unanswered.
func (e *Exchanger) Queue(q *dns.Msg, r Receiver) {
	e.mu.Lock()
	e.queued = append(e.queued, queued{q, r})
	e.mu.Unlock()
}

// Flush sends the queries of Queue.
func (e *Exchanger) Flush() {
	e.mu.Lock()
	qs := e.queued
	e.queued = nil
	e.mu.Unlock()
	for _, q := range qs {
		e.ExchangeAsync(q.m, q.r)
	}
}

type queued struct {
	m *dns.Msg
	r Receiver
}

// Receiver is told the reply of ExchangeAsync or Queue, as upstream.Receiver is.
type Receiver = interface{ Receive(wire []byte, err error) }

// AsyncTimeout bounds an ExchangeAsync, as upstream.Client's default Timeout does.
const AsyncTimeout = 2 * time.Second

// Asked returns how many times name (any case) and type were asked.
func (e *Exchanger) Asked(name string, qtype uint16) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.asked[askKey(name, qtype)]
}

// Total returns how many queries were asked.
func (e *Exchanger) Total() uint64 { return e.total.Load() }
