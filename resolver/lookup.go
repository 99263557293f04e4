package resolver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/podns/podns/cache"
)

// errTruncated: a TCP reply with TC is a broken upstream; it is never used or cached.
var errTruncated = errors.New("upstream reply truncated over tcp")

// flightTable collapses identical lookups: while one is in flight, every other asker waits for it.
type flightTable struct {
	mu    sync.Mutex // guards calls
	calls map[string]*call
}

// call is one shared lookup. Its outcome (msg, entry, err) is written by the goroutine that runs it,
// before done closes; after that it is read-only.
type call struct {
	done  chan struct{}
	msg   *dns.Msg
	entry *cache.Entry // set when the reply was stored
	err   error
	// unread: a paired fetch no client has asked for yet; guarded by flightTable.mu.
	unread bool

	// What to run, set when the call is registered: a walk (fn), or else an upstream exchange for q.
	// Kept here rather than in a closure: a miss allocates less.
	key  []byte // the cache key; owned by the call
	name string // key as the flight table's map key
	q    upstreamQuestion
	fn   func(ctx context.Context) (*dns.Msg, error)

	// For a call sent with ExchangeAsync (runAsync): the server, and the UDP client whose miss it
	// answers when the reply comes (startMiss), if any.
	srv    *Server
	client *udpClient
}

// upstreamQuestion is what exchange asks.
type upstreamQuestion struct {
	name          string
	qtype, qclass uint16
	do, cd        bool
}

// doneCall wraps an outcome already known (a failure before any lookup) as a finished call.
func doneCall(m *dns.Msg, err error) *call {
	c := &call{done: make(chan struct{}), msg: m, err: err}
	close(c.done)
	return c
}

// waitDone waits for the call to finish; it returns ctx's error if ctx ends first.
func (c *call) waitDone(ctx context.Context) error {
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait returns the call's reply, or ctx's error if ctx ends first. A reply kept only as its cache
// entry (stored as it came from upstream) is unpacked from the entry, with TTLs as of now.
func (c *call) wait(ctx context.Context, now func() time.Time) (*dns.Msg, error) {
	if err := c.waitDone(ctx); err != nil {
		return nil, err
	}
	if c.err == nil && c.msg == nil && c.entry != nil {
		return c.entry.Msg(now())
	}
	return c.msg, c.err
}

// result is the outcome of a finished call: the zero result when it failed.
func (c *call) result() result {
	switch {
	case c.err != nil:
		return result{}
	case c.entry != nil:
		return result{entry: c.entry}
	}
	return result{msg: c.msg}
}

// answeredEntry: the entry holds an answer (NOERROR or NXDOMAIN), as answered says of a message.
func answeredEntry(e *cache.Entry) bool {
	return e.Rcode() == dns.RcodeSuccess || e.Rcode() == dns.RcodeNameError
}

// flight returns the call in flight for key, starting fn (a search walk) as a new one when there is
// none. A new call runs on the server's background context, not the asker's: others may be waiting for
// it, and its answer is cached for the next askers even when the first gives up. started reports
// whether this asker started it. The call owns key.
func (s *Server) flight(key []byte, fn func(ctx context.Context) (*dns.Msg, error)) (c *call, started bool) {
	return s.flightFor(key, upstreamQuestion{}, fn, false)
}

// flightFor is flight for a walk (fn) or an upstream exchange of q (fn nil), and for a paired fetch
// when paired is set (pairGauge).
func (s *Server) flightFor(key []byte, q upstreamQuestion, fn func(ctx context.Context) (*dns.Msg, error), paired bool) (c *call, started bool) {
	c, started = s.join(key, q, fn, paired)
	if !started {
		return c, false
	}
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		s.run(c)
	}()
	return c, true
}

// join returns the call in flight for key, or registers a new one (started) that the asker must run
// (s.run: flightFor, or an asker that runs it on its own goroutine). The call owns key.
//
// paired says the asker is a paired fetch rather than a client's question: a new call is counted by
// the pair gauge, and a client that joins a paired call counts as its reader.
func (s *Server) join(key []byte, q upstreamQuestion, fn func(ctx context.Context) (*dns.Msg, error), paired bool) (_ *call, started bool) {
	s.flights.mu.Lock()
	if c := s.flights.calls[string(key)]; c != nil {
		read := c.unread && !paired
		if read {
			c.unread = false
		}
		s.flights.mu.Unlock()
		if read {
			s.pairRead()
		}
		s.stats.coalesced.Add(1)
		return c, false
	}
	c := s.flights.add(key, q, fn, paired)
	s.flights.mu.Unlock()
	if paired {
		s.pairs.issue()
		s.stats.pairFetches.Add(1)
	}
	return c, true
}

// register is join for an asker that only starts a new call: nil when one is in flight for key.
func (s *Server) register(key []byte, q upstreamQuestion) *call {
	s.flights.mu.Lock()
	defer s.flights.mu.Unlock()
	if s.flights.calls[string(key)] != nil {
		return nil
	}
	return s.flights.add(key, q, nil, false)
}

// add registers a new call. Called with mu held.
func (t *flightTable) add(key []byte, q upstreamQuestion, fn func(ctx context.Context) (*dns.Msg, error), paired bool) *call {
	c := &call{done: make(chan struct{}), unread: paired, key: key, name: string(key), q: q, fn: fn}
	t.calls[c.name] = c
	return c
}

// run runs a call join registered, stores its answer and wakes its waiters. Its work bounds its own
// time: the Exchanger's timeout, or the walk's deadline (walkFunc).
func (s *Server) run(c *call) {
	switch {
	case c.fn != nil:
		c.msg, c.err = c.fn(s.bg)
	case s.wup != nil:
		s.exchangeWire(c)
	default:
		c.msg, c.err = s.exchange(s.bg, c.q)
	}
	s.settle(c)
}

// runAsync sends an upstream call with ExchangeAsync: no goroutine waits for it, and Receive finishes
// it where the reply is read. With queue, the query is written at the asker's next aup.Flush.
func (s *Server) runAsync(c *call, queue bool) {
	c.srv = s
	s.stats.upstreamQueries.Add(1)
	if queue {
		s.aup.Queue(upstreamQuery(c.q), c)
	} else {
		s.aup.ExchangeAsync(upstreamQuery(c.q), c)
	}
}

// Receive finishes a call sent by runAsync with the upstream's reply, and answers the client whose
// miss started it. It runs on the goroutine that read the reply: nothing here blocks.
func (c *call) Receive(wire []byte, err error) {
	s := c.srv
	s.takeWire(c, wire, err)
	s.settle(c)
	if c.client != nil {
		s.answerMiss(c)
	}
}

// settle stores a call's answer, takes it out of the flight table and wakes its waiters.
func (s *Server) settle(c *call) {
	if c.err == nil && c.entry == nil {
		c.entry, _ = s.cache.Set(c.key, c.msg)
	}
	s.flights.mu.Lock()
	delete(s.flights.calls, c.name)
	unread := c.unread
	s.flights.mu.Unlock()
	if unread && c.entry != nil {
		c.entry.MarkUnread() // its first hit counts as the read
	}
	close(c.done)
}

// lookup asks for one FQDN (lower case), from the cache or upstream. force skips a fresh cache entry
// (refreshes). A stale entry is kept as the fallback when the refresh fails (RFC 8767). A new upstream
// call is sent with ExchangeAsync when the Exchanger has it (with inline, queued for the asker's
// flushQueued); else, with inline and without a stale fallback, it is not started but left to the
// asker (h.run), to run on its own goroutine (one goroutine hand-off less on a cache miss).
func (s *Server) lookup(name string, qtype, qclass uint16, do, cd, force, inline bool) (h handle) {
	how := startFlight
	if inline {
		how = startInline
	}
	return s.lookupFor(name, qtype, qclass, do, cd, force, how, false)
}

// How a lookup starts a new upstream call.
type startHow uint8

const (
	startFlight startHow = iota // ExchangeAsync, else a flight goroutine
	startInline                 // Queue, else the asker runs it (handle.run); the asker calls flushQueued
	startQueued                 // Queue, else a flight goroutine; the asker calls flushQueued
)

// flushQueued writes the upstream queries of lookups started with startQueued.
func (s *Server) flushQueued() {
	if s.aup != nil {
		s.aup.Flush()
	}
}

// lookupFor is lookup, for a paired fetch when paired is set: one that the pair gauge may skip, which
// returns an empty handle.
func (s *Server) lookupFor(name string, qtype, qclass uint16, do, cd, force bool, how startHow, paired bool) (h handle) {
	key, err := keyFor(name, qtype, qclass, do, cd, cache.ViewUpstream)
	if err != nil {
		return handle{call: doneCall(nil, err)}
	}
	if !force {
		e, st := s.cache.Get(key)
		switch st {
		case cache.Fresh, cache.Prefetch:
			if st == cache.Prefetch {
				s.refresh(name, qtype, qclass, do, cd)
			}
			if !paired && e.FirstRead() {
				s.pairRead()
			}
			return handle{hit: e} // unpacked only if a walk needs the message (handle.wait)
		case cache.Stale:
			h.stale = e
		}
	}
	if paired && !s.pairs.want() {
		return handle{} // the gauge is asked only when a paired fetch would go upstream
	}
	q := upstreamQuestion{name: name, qtype: qtype, qclass: qclass, do: do, cd: cd}
	switch {
	case s.aup != nil:
		if h.call, h.started = s.join(key, q, nil, paired); h.started {
			s.runAsync(h.call, how != startFlight)
		}
	case how == startInline && h.stale == nil:
		h.call, h.started = s.join(key, q, nil, paired)
		h.run = h.started
	default:
		h.call, h.started = s.flightFor(key, q, nil, paired)
	}
	if h.started {
		s.stats.cacheMisses.Add(1)
	}
	return h
}

// handle is a lookup under way, with the stale entry to fall back on.
type handle struct {
	call    *call        // nil when hit is set
	hit     *cache.Entry // the fresh cache entry that answered, if one did
	stale   *cache.Entry
	started bool // this lookup sent a query upstream
	run     bool // with lookup's inline: the asker must run the call (s.run)
}

// entry is the cache entry that holds the lookup's reply, once the lookup is done; nil when the reply
// was not stored (or the lookup failed).
func (h handle) entry() *cache.Entry {
	if h.hit != nil {
		return h.hit
	}
	if h.call != nil {
		select {
		case <-h.call.done:
			return h.call.entry
		default:
		}
	}
	return nil
}

// wait returns the lookup's reply; usable reports whether it is an answer (NOERROR or NXDOMAIN) rather
// than a failure. A failed refresh falls back to the stale entry.
func (h handle) wait(ctx context.Context, s *Server) (m *dns.Msg, usable bool) {
	if h.hit != nil {
		m, err := h.hit.Msg(s.now())
		return m, err == nil && answered(m)
	}
	m, err := h.call.wait(ctx, s.now)
	if err == nil && answered(m) {
		return m, true
	}
	if h.stale != nil {
		if sm, err := h.stale.Msg(s.now()); err == nil && answered(sm) {
			s.stats.staleServed.Add(1)
			return sm, true
		}
	}
	return m, false
}

// answered: NOERROR and NXDOMAIN are answers; SERVFAIL, REFUSED and the like are failures of a server,
// which glibc skips in its search walk.
func answered(m *dns.Msg) bool {
	return m != nil && (m.Rcode == dns.RcodeSuccess || m.Rcode == dns.RcodeNameError)
}

// refresh re-fetches an entry in the background (prefetch), once: the flight table collapses repeats.
func (s *Server) refresh(name string, qtype, qclass uint16, do, cd bool) {
	s.stats.prefetches.Add(1)
	s.lookup(name, qtype, qclass, do, cd, true, false)
}

// exchangeWire asks the upstream for c's question and keeps the reply as it came when the cache takes
// it so (cache.StoreWire): c.entry, and no message, which waiters that need one unpack from the entry.
// Otherwise the reply is unpacked into c.msg, for run to store.
func (s *Server) exchangeWire(c *call) {
	s.stats.upstreamQueries.Add(1)
	wire, err := s.wup.ExchangeWire(s.bg, upstreamQuery(c.q))
	s.takeWire(c, wire, err)
}

// takeWire is exchangeWire's handling of the reply (or error) the upstream gave for c.
func (s *Server) takeWire(c *call, wire []byte, err error) {
	switch {
	case err != nil:
	case len(wire) > 2 && wire[2]&0x02 != 0: // TC
		err = errTruncated
	default:
		if e, _ := s.cache.StoreWire(c.key, wire); e != nil {
			c.entry = e // stored, or built but not kept (no SOA, TTL 0...): it still answers these askers
			return
		}
		m := new(dns.Msg)
		if err = m.Unpack(wire); err == nil {
			c.msg = m
			return
		}
	}
	c.err = s.upstreamErr(c.q, err)
}

// upstreamErr counts and wraps a failed upstream lookup of q.
func (s *Server) upstreamErr(q upstreamQuestion, err error) error {
	s.stats.upstreamErrors.Add(1)
	return fmt.Errorf("asking upstream for %s %s: %w", q.name, dns.TypeToString[q.qtype], err)
}

// upstreamQuery is the query exchange sends for q.
func upstreamQuery(q upstreamQuestion) *dns.Msg {
	m := new(dns.Msg) // ID 0: the upstream client gives each attempt its own (SetQuestion's costs a syscall)
	m.Question = []dns.Question{{Name: q.name, Qtype: q.qtype, Qclass: q.qclass}}
	m.RecursionDesired = true
	m.CheckingDisabled = q.cd
	if q.do {
		m.SetEdns0(ednsUDPSize, true)
	}
	return m
}

// exchange asks the upstream for one FQDN.
func (s *Server) exchange(ctx context.Context, q upstreamQuestion) (*dns.Msg, error) {
	s.stats.upstreamQueries.Add(1)
	r, err := s.up.Exchange(ctx, upstreamQuery(q))
	if err != nil {
		return nil, s.upstreamErr(q, err)
	}
	if r.Truncated {
		return nil, s.upstreamErr(q, errTruncated)
	}
	// The OPT record is per hop (RFC 6891 §6.1.1): it never reaches a client or the cache.
	extra := r.Extra[:0:0]
	for _, rr := range r.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	r.Extra = extra
	return r, nil
}

// keyFor builds the cache key of a presentation-form name.
func keyFor(name string, qtype, qclass uint16, do, cd bool, view byte) ([]byte, error) {
	var wire [maxNameWire]byte
	n, err := dns.PackDomainName(name, wire[:], 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("packing name %q: %w", name, err)
	}
	return cache.AppendKey(make([]byte, 0, n+16), wire[:n], qtype, qclass, do, cd, view), nil
}

// Pairing is adaptive for direct lookups: it saves a round trip when clients ask for both types of a
// name, as glibc's getaddrinfo does, and is an upstream query nobody reads when they ask for one (an
// AF_INET lookup, a JVM with preferIPv4Stack, a load generator). The gauge counts paired fetches and
// those a client then read (it asked while the fetch was in flight, or hit its cache entry first).
const (
	pairSample     = 16 // with fewer paired fetches counted than this, pair
	pairDecay      = 64 // at this many, both counts halve: the gauge follows what clients do now
	pairProbeEvery = 16 // while off, one miss in this many pairs anyway, to notice clients changing
)

// pairGauge decides whether a direct lookup's miss fetches the other address type too: while at least
// a quarter of the paired fetches are read. The counts are approximate under concurrency (a halving
// may lose a concurrent increment), which a gauge can afford.
type pairGauge struct {
	issued, read atomic.Uint32
	misses       atomic.Uint32 // misses seen while off, for the probes
}

// want reports whether this miss pairs: when on, and for one miss in pairProbeEvery when not.
func (g *pairGauge) want() bool {
	return g.on() || g.misses.Add(1)%pairProbeEvery == 0
}

// on: too few paired fetches counted to judge, or at least a quarter of them read.
func (g *pairGauge) on() bool {
	issued, read := g.issued.Load(), g.read.Load()
	return issued < pairSample || 4*read >= issued
}

// issue counts a paired fetch started.
func (g *pairGauge) issue() {
	if n := g.issued.Add(1); n >= pairDecay {
		g.issued.Store(n / 2)
		g.read.Store(min(g.read.Load(), n) / 2)
	}
}

// readOne counts a paired fetch a client read.
func (g *pairGauge) readOne() { g.read.Add(1) }

// pairRead counts a paired fetch a client read, in the gauge and the metrics.
func (s *Server) pairRead() {
	s.pairs.readOne()
	s.stats.pairReads.Add(1)
}

// pairFor is the other address type to fetch with qtype: glibc asks A and AAAA together, so a miss for
// one fetches both. With AAAA filtered there is no pair: AAAA never goes upstream.
func (s *Server) pairFor(qtype, qclass uint16) (uint16, bool) {
	if qclass != dns.ClassINET || s.cfg.AAAAFilter {
		return 0, false
	}
	switch qtype {
	case dns.TypeA:
		return dns.TypeAAAA, true
	case dns.TypeAAAA:
		return dns.TypeA, true
	}
	return 0, false
}
