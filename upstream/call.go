package upstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// Attempt budget of one Exchange.
const (
	// maxResends: a query lost with its connection is re-sent once on
	// another (RFC 7766 §6.2.4); a second loss is an error, not a loop.
	maxResends = 1
	// maxHedges: asked again after HedgeAfter, 2×HedgeAfter and
	// 3×HedgeAfter (with the defaults: at 0.5, 1 and 1.5 s of a 2 s
	// deadline), from the second hedge on at the next server in failover
	// order. A server that loses 1 query in 20 then fails a query only when
	// it loses all four: 1 in 160 000.
	maxHedges = 3
	// maxFreeRetries: attempts that never reached the server (their dial
	// failed or was too slow, they were pipelined past the server's
	// per-connection query limit, or the server never acknowledged them) are
	// re-sent without using the re-send, a bounded number of times: four, so
	// that with one kube-dns pod of two black-holed behind the ClusterIP a
	// query still finds the live pod with probability 1 - 1/32.
	maxFreeRetries = 4
	maxAttempts    = 1 + maxResends + maxHedges + maxFreeRetries
)

// Kinds of attempt.
const (
	kindFirst uint8 = iota
	kindResend
	kindHedge
)

// event tells a call what became of one of its attempts: a reply (buf) or
// the loss of its connection (err). An event without entry ends the call's
// wait for a connection (pool.wait): err is then set only at Close.
type event struct {
	e    *entry
	c    *call
	buf  *[]byte // from Client.rbufs
	err  error
	sent bool // the query may have reached the server before its connection failed
}

// call is one exchange in progress. No goroutine waits for it: the goroutine that brings it an event
// (the reader of its reply) or its timer's firing takes its turn and drives it (Client.drive), and
// its fields are touched only by whoever holds the turn (mode). The entries are guarded by their
// connections' mutexes, waiting by the pool's. Calls are pooled: finish leaves no reference to one
// anywhere.
type call struct {
	callState
	events chan event // one event per attempt, and one for a wait, at most: never blocks a sender

	// These are reset one by one, as a late event's sender or a late timer may still touch them.
	mode    atomic.Int32 // whose turn: modeBusy (someone drives it), modeParked (nobody)
	pending atomic.Int32 // events sent to events and not yet taken
	fired   atomic.Bool  // the timer fired since the last look
	timer   *time.Timer  // made with the pooled call; its function takes the call's turn (fire)
	// ticket is the call's place in a pool's line (line.join); 0 when in none. A line keeps voided
	// places, whose call may be recycled by then, and checks their tickets (line.take), under another
	// pool's mu than the recycled call's: it must never be reset with callState.
	ticket atomic.Uint64
}

// clearState zeroes what a call starts from with each use. The ticket is stored on its own: a line
// may read it at any time (call.ticket).
func (cl *call) clearState() {
	cl.callState = callState{}
	cl.ticket.Store(0)
}

// callState is what a call starts from zero with each use.
type callState struct {
	wire     []byte  // length-prefixed query; immutable until finish
	wireBuf  *[]byte // wire's pooled buffer
	attempts [maxAttempts]entry
	kinds    [maxAttempts]uint8
	told     [maxAttempts]bool // the attempt's event was received
	n, live  int               // attempts used, attempts that may still send an event
	resends  int
	hedges   int
	free     int
	first    int // pool index of the first attempt

	m               *dns.Msg // the query asked
	start, deadline time.Time
	recv            Receiver // told the outcome, once
	hold            bool     // Queue's: the first attempt is written at Flush

	// A call waits for a connection (pool.wait) when every connection it may use is busy and no
	// more may be opened; the pool tells it (an event without entry) when one comes free.
	waiting   *pool     // the pool whose line the call is in (its waiters, under its mu); nil when none
	waitKind  uint8     // the kind of the attempt that waits
	waitSince time.Time // when the wait began
	rewait    bool      // the attempt was woken from a wait: if it must wait again, it goes first
}

// Turns of a call (call.mode).
const (
	modeBusy   int32 = iota // a goroutine drives the call
	modeParked              // the call waits for an event or its timer
)

func newCall() any { return &call{events: make(chan event, maxAttempts+1)} }

// tried reports whether an attempt of cl already went to cn.
func (cl *call) tried(cn *conn) bool {
	for i := range cl.n {
		if cl.attempts[i].cn == cn {
			return true
		}
	}
	return false
}

// index returns the attempt number of e.
func (cl *call) index(e *entry) int {
	for i := range cl.n {
		if &cl.attempts[i] == e {
			return i
		}
	}
	return -1
}

// prepare packs m into a call from the pool, for an exchange that must end by deadline.
func (c *Client) prepare(m *dns.Msg, start, deadline time.Time) (*call, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	wb := c.qbufs.get(2)
	wire, err := packQuery(m, *wb)
	if err != nil {
		c.qbufs.put(wb)
		return nil, err
	}
	cl := c.calls.Get().(*call)
	cl.wire, cl.wireBuf = wire, wb
	cl.m, cl.start, cl.deadline = m, start, deadline
	return cl, nil
}

// event takes what became of one attempt: a reply ends the call (done), a lost connection re-sends
// (retry), or ends it when nothing is left to wait for; the end of a wait for a connection sends the
// attempt that waited.
func (c *Client) event(cl *call, ev event) (w []byte, err error, done bool) {
	cl.live--
	if ev.e == nil {
		return c.waited(cl, ev)
	}
	cl.told[cl.index(ev.e)] = true
	if ev.err == nil {
		w, err = c.answerWire(cl, ev)
		return w, err, true
	}
	if err := c.retry(cl, ev); err != nil {
		return nil, err, true
	}
	return nil, nil, false
}

// waited ends cl's wait for a connection (pool.wait): a connection came free, so the attempt that
// waited is sent now (or waits again, first in line); at Close the call fails.
func (c *Client) waited(cl *call, ev event) (w []byte, err error, done bool) {
	cl.waiting = nil
	now := c.cfg.Now()
	c.stats.waitNS.Add(int64(now.Sub(cl.waitSince)))
	cl.waitSince = now // a wait again goes on from here
	if ev.err != nil {
		return nil, ErrClosed, true
	}
	cl.hold = false // the caller's Flush is long past: a query that waited is written at once
	cl.rewait = true
	err = c.send(cl, cl.waitKind)
	cl.rewait = false
	if err != nil && cl.live == 0 {
		return nil, err, true
	}
	return nil, nil, false
}

// tick acts on the time: past the deadline the call fails (ErrTimeout); at a hedge time it is asked
// again.
func (c *Client) tick(cl *call) error {
	now := c.cfg.Now()
	if !now.Before(cl.deadline) {
		c.timedOut(cl)
		return fmt.Errorf("%w after %v", ErrTimeout, now.Sub(cl.start).Round(time.Millisecond))
	}
	if cl.hedges < maxHedges && !now.Before(cl.start.Add(time.Duration(cl.hedges+1)*c.cfg.HedgeAfter)) {
		cl.hedges++
		waiting := cl.waiting != nil // a call in line for a connection asks nothing again: it gets one first
		err := c.send(cl, kindHedge)
		if err == nil && !waiting {
			c.stats.hedges.Add(1)
		}
		if c.log.GetLevel() <= zerolog.DebugLevel {
			c.log.Debug().Str("name", cl.m.Question[0].Name).Int("hedge", cl.hedges).AnErr("err", err).Msg("hedge")
		}
	}
	return nil
}

// nextWake is the time until the next hedge or the deadline.
func (c *Client) nextWake(cl *call) time.Duration {
	next := cl.deadline
	if cl.hedges < maxHedges {
		if h := cl.start.Add(time.Duration(cl.hedges+1) * c.cfg.HedgeAfter); h.Before(next) {
			next = h
		}
	}
	return max(next.Sub(c.cfg.Now()), 0)
}

// send starts an attempt on the first server not down, in failover order;
// the second and later hedges start from the server after the first
// attempt's. The calling goroutine writes the query itself (conn.writeNow):
// waking the connection's writer goroutine would wake a thread. When every
// connection the attempt may use is busy and no more may be opened, the
// call waits for one (pool.wait) rather than fail: that counts as sent.
func (c *Client) send(cl *call, kind uint8) error {
	if cl.waiting != nil {
		return nil // already in line for a connection: what it gets is the attempt
	}
	if cl.n == maxAttempts {
		return ErrBusy
	}
	// With every server down, every server is tried anyway: a pod's only upstream is usually the
	// ClusterIP, and one of its CoreDNS pods gone silent must not fail every lookup until a probe
	// answers.
	first, allDown := 0, true
	for i, p := range c.pools {
		if !p.health.down() {
			first, allDown = i, false
			break
		}
	}
	usable := func(p *pool) bool { return allDown || !p.health.down() }
	start := first
	if kind == kindHedge && cl.hedges >= 2 {
		for i := cl.first + 1; i < len(c.pools); i++ {
			if usable(c.pools[i]) {
				start = i
				break
			}
		}
	}
	now := c.nowNS()
	for k := range c.pools {
		p := c.pools[(start+k)%len(c.pools)]
		if !usable(p) {
			continue
		}
		for range 3 { // a connection may close between pick and enqueue
			cn, waiting := p.pick(cl, kind, now)
			if waiting {
				cl.live++
				if !cl.rewait {
					c.stats.waits.Add(1)
				}
				return nil
			}
			if cn == nil {
				break
			}
			if cn.enqueue(cl, &cl.attempts[cl.n], now, false) {
				if cl.n == 0 {
					cl.first = p.idx
				}
				cl.kinds[cl.n] = kind
				cl.n++
				cl.live++
				if cl.hold {
					cl.hold = false // a hedge or a re-send is written at once
					c.holdFor(cn)
				} else {
					cn.writeNow(now) // last: the reply may come as soon as it is written
				}
				return nil
			}
		}
	}
	if c.closed.Load() {
		return ErrClosed
	}
	return fmt.Errorf("%w: no connection could be opened", ErrNoServer)
}

// retry handles the loss of an attempt's connection.
func (c *Client) retry(cl *call, ev event) error {
	if errors.Is(ev.err, errShutdown) {
		return ErrClosed
	}
	if c.log.GetLevel() <= zerolog.DebugLevel {
		c.log.Debug().Uint64("conn", ev.e.cn.seq).Int32("seq", ev.e.seq).Bool("sent", ev.sent).
			Int("resends", cl.resends).Int("free", cl.free).AnErr("reason", ev.err).Msg("attempt lost")
	}
	switch {
	case !ev.sent && cl.free < maxFreeRetries:
		cl.free++
		if c.send(cl, kindResend) == nil {
			c.stats.resends.Add(1)
			return nil
		}
	case ev.sent && cl.resends < maxResends:
		cl.resends++
		if c.send(cl, kindResend) == nil {
			c.stats.resends.Add(1)
			return nil
		}
	}
	if cl.live > 0 {
		return nil // a hedge or another re-send may still answer
	}
	if !ev.sent {
		return fmt.Errorf("%w: %w", ErrNoServer, ev.err)
	}
	return fmt.Errorf("%w: %w", ErrConnLost, ev.err)
}

// answerWire returns a copy of the reply of ev as it came, with m's ID and without its OPT record
// (per hop: RFC 6891 §6.1.1), after reading the OPT's edns-tcp-keepalive. A reply whose OPT cannot
// simply be cut off the end (not the last record, or with an extended RCODE), or that findOPT cannot
// walk, is unpacked and packed again without it.
func (c *Client) answerWire(cl *call, ev event) ([]byte, error) {
	defer c.rbufs.put(ev.buf)
	buf := *ev.buf
	if len(buf) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadReply, len(buf))
	}
	if binary.BigEndian.Uint16(buf[2:])&flagTC != 0 {
		return nil, ErrTruncated // RFC 7766 §6.2.2 leaves TC over TCP undefined
	}
	opt, ok := findOPT(buf)
	if ok && opt.start >= 0 {
		if t, found := keepaliveTimeout(buf[opt.rdata:opt.end]); found {
			ev.e.cn.serverIdle(t)
		}
	}
	var out []byte
	if !ok || opt.start >= 0 && (opt.end != len(buf) || opt.ttl>>24 != 0) {
		r := new(dns.Msg)
		if err := r.Unpack(buf); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadReply, err)
		}
		r.Extra = slices.DeleteFunc(r.Extra, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
		r.Id = cl.m.Id
		w, err := r.Pack()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadReply, err)
		}
		out = w
	} else {
		n := len(buf)
		if opt.start >= 0 {
			n = opt.start
		}
		out = make([]byte, n)
		copy(out, buf)
		binary.BigEndian.PutUint16(out, cl.m.Id)
		if opt.start >= 0 {
			binary.BigEndian.PutUint16(out[10:], binary.BigEndian.Uint16(out[10:])-1)
		}
	}
	c.answered(cl, ev)
	return out, nil
}

// answered does the bookkeeping of an answered call: latency, health, hedge wins, the servers it
// outran.
func (c *Client) answered(cl *call, ev event) {
	cn := ev.e.cn
	cn.p.observe(c.cfg.Now().Sub(cl.start))
	cn.p.success()
	for i := range cl.n {
		if &cl.attempts[i] == ev.e && cl.kinds[i] == kindHedge {
			c.stats.hedgeWins.Add(1)
		}
	}
	c.outrun(cl, cn.p)
}

// outrun counts a failure against each other server that left an attempt
// of cl unanswered while won answered: a server that silently stops
// answering goes down after a few queries, not only after timeouts.
func (c *Client) outrun(cl *call, won *pool) {
	var seen [maxAttempts]*pool
	for i := range cl.n {
		p := cl.attempts[i].cn.p
		seen[i] = p
		if p != won && !contains(seen[:i], p) {
			p.failure()
		}
	}
}

// timedOut counts a failure against each server that held an attempt.
func (c *Client) timedOut(cl *call) {
	var seen [maxAttempts]*pool
	for i := range cl.n {
		p := cl.attempts[i].cn.p
		if !contains(seen[:i], p) {
			p.failure()
		}
		seen[i] = p
	}
}

func contains(ps []*pool, p *pool) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// finish cancels the attempts still outstanding, waits for the events
// still owed (an attempt it could not cancel was answered or failed, and
// its one event is on its way), recycles the buffers, and returns cl to the
// pool. After it, no connection refers to cl or reads cl.wire.
func (c *Client) finish(cl *call) {
	owed := 0
	var passOn *pool
	if p := cl.waiting; p != nil && !p.unwait(cl) {
		owed++ // the pool took it out of line: its event is on its way
		passOn = p
	}
	for i := range cl.n {
		if !cl.told[i] && !cl.attempts[i].cn.cancel(cl, &cl.attempts[i]) {
			owed++
		}
	}
	for ; owed > 0; owed-- {
		if ev := <-cl.events; ev.buf != nil {
			c.rbufs.put(ev.buf)
		}
	}
	if passOn != nil {
		// The connection that came free for cl is not taken: it goes to the next call in line.
		// Lost, a wake leaves a connection idle while calls wait: under overload, when calls in
		// line reach their deadline, that starved every connection.
		passOn.release(false)
	}
	c.qbufs.put(cl.wireBuf)
	cl.clearState()
	cl.pending.Store(0) // every event of this use was taken: no sender is left to count one
	cl.mode.Store(modeBusy)
	c.calls.Put(cl)
}
