package resolver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/podns/podns/cache"
)

var (
	// errTruncated: a TCP reply with TC is a broken upstream; it is never used or cached.
	errTruncated = errors.New("upstream reply truncated over tcp")
	// errShuttingDown: a walk asked for after Shutdown stopped waiting for background work.
	errShuttingDown = errors.New("shutting down")
)

// question is one name, type and class asked of the cache or the upstream, with the DO and CD bits
// that key its cache entry.
type question struct {
	name          string // lower case FQDN
	qtype, qclass uint16
	do, cd        bool
}

// walkFn is a search walk run as a call: it bounds its own time (walkFunc).
type walkFn func(ctx context.Context) (*dns.Msg, error)

// flightTable collapses identical lookups: while one is in flight, every other asker joins it. Its one
// way in is Server.flight; a call leaves it in Server.settle.
type flightTable struct {
	mu    sync.Mutex // guards calls and the guarded fields of every call in it
	calls map[string]*call
}

// call is one shared lookup: an upstream exchange of q, or a search walk (fn). Its outcome (msg,
// entry, err) is written once, before done closes; after that it is read-only.
type call struct {
	done  chan struct{}
	msg   *dns.Msg
	entry *cache.Entry // set when the reply was stored
	err   error

	srv  *Server
	key  []byte // the cache key; owned by the call
	name string // key as the flight table's map key
	q    question
	fn   walkFn

	// Guarded by flightTable.mu:
	unread  bool         // a paired fetch no client has asked for yet
	clients []*udpClient // UDP clients answered when the call ends, with no goroutine waiting (startMiss)
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

// flight is the one way into the flight table. It returns the call in flight for key, or registers and
// starts a new one (started): the walk fn on a background goroutine, or else an upstream query for q,
// queued for the asker's flushQueued. A new call runs on the server's background context, not the
// asker's: others may join it, and its answer is cached for the next askers even when the first gives
// up. The call owns key.
//
// paired says the asker is a paired fetch rather than a client's question: a new call is counted by
// the pair gauge, and a client that joins a paired call counts as its reader. cl, when set, is a UDP
// client the call answers when it ends.
func (s *Server) flight(key []byte, q question, fn walkFn, paired bool, cl *udpClient) (c *call, started bool) {
	c, started, _ = s.flightFor(key, q, fn, paired, cl, false)
	return c, started
}

// flightFor is flight for an asker that found no fresh entry under key (recheck): when no call is in
// flight, the cache is looked at again under the table's lock, and a fresh entry there is returned as
// hit, with no call. settle stores a reply before it takes its call out of the table, so an asker that
// missed the cache just before a call settled finds the reply rather than asking again.
func (s *Server) flightFor(key []byte, q question, fn walkFn, paired bool, cl *udpClient, recheck bool) (c *call, started bool, hit *cache.Entry) {
	t := &s.flights
	t.mu.Lock()
	if c = t.calls[string(key)]; c != nil {
		read := c.unread && !paired
		c.unread = c.unread && !read
		if cl != nil {
			c.clients = append(c.clients, cl)
		}
		t.mu.Unlock()
		if read {
			s.pairRead()
		}
		s.stats.coalesced.Add(1)
		return c, false, nil
	}
	if recheck {
		if e, left := s.cache.Peek(key); e != nil && left > 0 {
			t.mu.Unlock()
			return nil, false, e
		}
	}
	c = &call{done: make(chan struct{}), srv: s, key: key, name: string(key), q: q, fn: fn, unread: paired}
	if cl != nil {
		c.clients = append(c.clients, cl)
	}
	t.calls[c.name] = c
	t.mu.Unlock()
	if paired {
		s.pairs.issue()
		s.stats.pairFetches.Add(1)
	}
	if fn != nil {
		if !s.background(func() { c.msg, c.err = fn(s.bg); s.settle(c) }) {
			c.err = errShuttingDown
			s.settle(c)
		}
		return c, true, nil
	}
	s.stats.cacheMisses.Add(1)
	s.stats.upstreamQueries.Add(1)
	s.up.Queue(upstreamQuery(q), c)
	return c, true, nil
}

// background runs f on a goroutine that Shutdown waits for; false once Shutdown waits (f does not run).
func (s *Server) background(f func()) bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.bgStopped {
		return false
	}
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		f()
	}()
	return true
}

// Receive finishes an upstream call with the upstream's reply. It runs on the goroutine that read the
// reply: nothing here blocks.
func (c *call) Receive(wire []byte, err error) {
	c.srv.takeWire(c, wire, err)
	c.srv.settle(c)
}

// settle stores a call's answer, takes it out of the flight table, wakes its waiters and answers its
// UDP clients.
func (s *Server) settle(c *call) {
	if c.err == nil && c.entry == nil {
		c.entry, _ = s.cache.Set(c.key, c.msg)
	}
	s.flights.mu.Lock()
	delete(s.flights.calls, c.name)
	unread, clients := c.unread, c.clients
	c.clients = nil
	s.flights.mu.Unlock()
	if unread && c.entry != nil {
		s.pairs.markUnread(c.entry) // a client's first hit on it counts as the read
	}
	close(c.done)
	for _, cl := range clients {
		s.answerMiss(c, cl)
	}
}

// lookup asks for one question, from the cache or upstream. force skips a fresh cache entry
// (refreshes). A stale entry is kept as the fallback when the refresh fails (RFC 8767). A new upstream
// query is queued: the asker calls flushQueued.
func (s *Server) lookup(q question, force bool) handle {
	return s.lookupFor(q, force, false, nil)
}

// lookupDirect is lookup for a client's question about a name that is not searched: a miss for A or
// AAAA fetches the other type too (pairFor), as getaddrinfo asks both. With cl, see lookupFor.
// sent is how many queries it sent upstream: 0, 1, or 2 with the other type.
func (s *Server) lookupDirect(q question, cl *udpClient) (h handle, sent int) {
	h = s.lookupFor(q, false, false, cl)
	if !h.started {
		return h, 0
	}
	if other, ok := s.pairFor(q.qtype, q.qclass); ok {
		p := q
		p.qtype = other
		if s.lookupFor(p, false, true, nil).started {
			return h, 2
		}
	}
	return h, 1
}

// lookupFor is lookup for a paired fetch when paired is set (one the pair gauge may skip: an empty
// handle), and for a UDP client cl that the lookup's call answers where its reply is read. A lookup
// with cl sets h.call only when cl was given to a call; else (a hit, a stale entry, which need a
// goroutine to wait, or a bad name) nothing is started and the asker answers cl itself.
func (s *Server) lookupFor(q question, force, paired bool, cl *udpClient) (h handle) {
	key, err := keyFor(q.name, q.qtype, q.qclass, q.do, q.cd, cache.ViewUpstream)
	if err != nil {
		if cl != nil {
			return handle{}
		}
		return handle{call: doneCall(nil, err)}
	}
	if force {
		// A refresh asks again what is about to expire (the last tenth of its TTL) or has, and takes
		// the rest from the cache: a candidate whose answer outlives the search answer it fed, or one
		// another refresh stored a moment ago (the refreshes of names that share candidates or cuts
		// come due together, and the refresh loop runs them one after the other). Asked again, the
		// cluster DNS would answer the same.
		if e, left := s.cache.Peek(key); e != nil && 10*left > e.Lifetime() {
			return handle{hit: e}
		}
	} else {
		e, st := s.cache.Get(key)
		switch st {
		case cache.Fresh, cache.Prefetch:
			if st == cache.Prefetch {
				s.refreshAt(e, refreshJob{view: cache.ViewUpstream, q: q})
			}
			if !paired && s.pairs.takeRead(e) {
				s.pairRead()
			}
			return handle{hit: e} // unpacked only if a walk needs the message (handle.wait)
		case cache.Stale:
			if cl != nil {
				return handle{stale: e}
			}
			h.stale = e
		}
	}
	if paired && !s.pairs.want() {
		return handle{} // the gauge is asked only when a paired fetch would go upstream
	}
	var hit *cache.Entry
	if h.call, h.started, hit = s.flightFor(key, q, nil, paired, cl, !force); hit != nil {
		return handle{hit: hit} // answered while this lookup looked
	}
	return h
}

// flushQueued writes the upstream queries lookups queued.
func (s *Server) flushQueued() { s.up.Flush() }

// handle is a lookup under way, with the stale entry to fall back on.
type handle struct {
	call    *call        // nil when hit is set
	hit     *cache.Entry // the fresh cache entry that answered, if one did
	stale   *cache.Entry
	started bool // this lookup sent a query upstream

	// derive, when set, is where the reply is cached again for a searched question (searchDirect).
	derive *derivation
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

// refresh re-fetches an entry in the background (a prefetch come due), once: the flight table collapses
// repeats, and lookup's forced fetch skips an entry another lookup refreshed first.
func (s *Server) refresh(q question) *call {
	h := s.lookup(q, true)
	if h.call == nil {
		return nil
	}
	s.stats.prefetches.Add(1)
	s.flushQueued()
	return h.call
}

// takeWire keeps the upstream's reply (or error) for c: stored as it came when the cache takes it so
// (cache.StoreWire), as c.entry and no message, which waiters that need one unpack from the entry;
// otherwise unpacked into c.msg, for settle to store.
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
func (s *Server) upstreamErr(q question, err error) error {
	s.stats.upstreamErrors.Add(1)
	return fmt.Errorf("asking upstream for %s %s: %w", q.name, dns.TypeToString[q.qtype], err)
}

// upstreamQuery is the query sent upstream for q.
func upstreamQuery(q question) *dns.Msg {
	m := new(dns.Msg) // ID 0: the upstream client gives each attempt its own (SetQuestion's costs a syscall)
	m.Question = []dns.Question{{Name: q.name, Qtype: q.qtype, Qclass: q.qclass}}
	m.RecursionDesired = true
	m.CheckingDisabled = q.cd
	if q.do {
		m.SetEdns0(ednsUDPSize, true)
	}
	return m
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
