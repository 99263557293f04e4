package upstream

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

const (
	// limitTTL: a learned per-connection query limit is forgotten after
	// this long, so one misread reset does not retire connections early
	// forever; a real limit is learned again at the cost of one re-send.
	limitTTL = 10 * time.Minute
	// dialBackoffBase and dialBackoffMax space redials after failures.
	dialBackoffBase = 50 * time.Millisecond
	dialBackoffMax  = 2 * time.Second
	// minBusyAfter: on loopback or in-cluster a fast answer takes well under
	// a millisecond; silence for longer with a query outstanding means the
	// server is on a slow one.
	minBusyAfter = time.Millisecond
	// maxGrowDials bounds the dials in progress to one server: a burst of
	// queries that finds every connection busy opens this many at once and
	// waits for them (a handshake in-cluster takes well under a millisecond),
	// without a SYN flood at a server that struggles.
	maxGrowDials = 8
	// slowDialAfter: a dial not done after this long (a kube-dns pod that
	// went silent behind the ClusterIP swallows the SYN; the kernel would
	// retry it only after 1 s) gives its queries to other connections, and
	// new queries avoid it, while it goes on until DialTimeout.
	slowDialAfter = 100 * time.Millisecond
	// silentPeerAfter: a query written this long ago whose bytes the
	// server's TCP has not acknowledged means the server is gone (delayed
	// ACKs wait at most 200 ms on Linux, TCP_DELACK_MAX; a slow answer is
	// acknowledged long before it is sent). Its connection closes and its
	// queries go elsewhere as never sent. Linux only (SIOCOUTQ).
	silentPeerAfter = 250 * time.Millisecond
)

// Why a connection was opened, for the metrics.
const (
	dialDemand      = iota // a query found no connection free: the pool grows with the load
	dialReplacement        // one in use closed on a failure (reset, stall, silent server)
	dialRotation           // one retired at its maximum age or the server's query limit
	numDialReasons
)

// pool holds the connections to one server and its health.
//
// The pool is made for a server that answers a connection's queries one at a time, in order
// (CoreDNS, like every miekg/dns server): a query waiting behind another on such a connection waits
// for that answer, which may be a forward to the outside of up to 2 s. So until a server is seen
// answering out of order, a query goes to a connection with nothing outstanding (the one that
// answered last, so that the connections a burst opened go idle and close after IdleTimeout), else
// to a new one, up to MaxConnsPerServer; past that it waits, within its deadline, for the first
// connection to come free (wait). A server seen answering out of order (Knot, Unbound) shares
// connections, up to MaxInFlight queries each.
type pool struct {
	c    *Client
	addr string
	idx  int // in Config.Servers
	log  zerolog.Logger

	health     health
	reorders   atomic.Bool  // the server was seen answering out of order
	latency    atomic.Int64 // robust moving average of answer latency, ns
	lastUsed   atomic.Int64 // last pick (client clock)
	limit      atomic.Int32 // learned queries-per-connection limit; 0: none
	limitUntil atomic.Int64
	limitCand  atomic.Int32 // a limit seen once, waiting for confirmation
	waiting    atomic.Int32 // waiters.n, read without the lock on every answer

	mu          sync.Mutex // guards the fields below
	conns       []*conn    // dialing, ready or draining
	waiters     line       // calls waiting for a connection, first in line first
	peak        int        // most connections at once
	seq         uint64     // numbers connections for logs
	dialing     int
	dialFails   int
	nextDialAt  int64
	probing     bool
	probeFails  int
	nextProbeAt int64
	closed      bool
	wake        *time.Timer // wakeAfter's; runs woken
	wakeArmed   bool
}

// pick returns the connection for cl's next attempt (of kind), dialing one
// when that helps. With no connection for it, it puts cl in line for the
// first one to come free (waiting) when some connection is open or dialing;
// otherwise it returns nil: nothing of this server can take the query.
//
// Preference: a connection with an unwritten batch of a server known to
// answer out of order (the A and AAAA leave in one write); one with nothing
// outstanding, the one that answered last first; for an out-of-order server,
// the least loaded under half full; a dial in progress with nothing queued;
// a new connection; for an out-of-order server, the least loaded with room.
// A connection silent for busyAfter with a query outstanding, and a dial
// slower than slowDialAfter, are not chosen; past the bound, a query waits
// (behind the calls already in line) rather than share a connection held by
// an answer, unless every one is held by an answer older than HedgeAfter.
func (p *pool) pick(cl *call, kind uint8, now int64) (cn *conn, waiting bool) {
	p.lastUsed.Store(now)
	limit := p.queryLimit(now)
	busy := p.busyAfter()
	reorders := p.reorders.Load()
	half := int32(p.c.cfg.MaxInFlight / 2)

	kick := false
	defer func() { // after the unlock below
		if kick {
			p.release(false)
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, false
	}
	k := p.scan(cl, now, limit, busy, reorders)
	if p.waiters.n > 0 && !cl.rewait && k.open > 0 {
		// Calls are in line: a query that arrives now goes behind them. If a connection is free
		// (one the first in line has not reached yet, or one to dial), the first is told.
		kick = k.idle != nil || k.fresh != nil && k.fresh.load.Load() == 0
		p.wait(cl, kind, now)
		return nil, true
	}
	switch {
	case k.coalesce != nil:
		return k.coalesce, false
	case k.idle != nil:
		return k.idle, false
	case reorders && k.flow != nil && k.flow.load.Load() < half:
		return k.flow, false
	case k.fresh != nil && k.fresh.load.Load() == 0:
		return k.fresh, false
	}
	if !reorders && k.flowing <= p.waiters.n && k.blocked != nil {
		// A connection silent for busyAfter may only look so: when podns itself is short of CPU (a
		// sidecar with a small CPU request on a busy node), its answer waits in the socket for a
		// reader that has not run, and the timers that brought this call here ran late alike. It
		// comes free once the reader runs; a dial would be one more connection at the cluster DNS,
		// and no sooner.
		k.flowing += p.unreadAnswers(cl, now, limit, busy, p.waiters.n+1-k.flowing)
	}
	if !reorders && k.flowing > p.waiters.n {
		// A connection whose query went out less than busyAfter ago, or whose dial began that
		// recently with a query queued, will likely come free before a new one would be dialed
		// (a handshake costs about what an answer does): waiting for it spares the cluster DNS a
		// connection per burst (a pod's first lookups, a TTL wave), opened and idle-closed again.
		// If its answer turns out slow, the wake at busyAfter makes the call pick again, and dial.
		p.wait(cl, kind, now)
		p.wakeAfter(busy)
		return nil, true
	}
	if p.dialing < maxGrowDials && p.canDial(now) {
		return p.dial(now, dialDemand), false
	}
	if reorders && k.flow != nil {
		return k.flow, false
	}
	if k.open == 0 {
		return nil, false
	}
	if b := k.blocked; b != nil && k.flow == nil && k.fresh == nil && p.dialing == 0 &&
		now-b.headSent.Load() > int64(p.c.cfg.HedgeAfter) {
		// Every connection is held by an answer late enough to have been asked again elsewhere:
		// a lost one, or one so slow that waiting for a connection to come free would wait for it
		// too. A serial server that dropped a query reads the next; the oldest is the likeliest
		// to be done with.
		return b, false
	}
	p.wait(cl, kind, now)
	return nil, true
}

// wait puts cl in line for a connection. Called with mu held, on cl's turn.
func (p *pool) wait(cl *call, kind uint8, now int64) {
	cl.waiting, cl.waitKind = p, kind
	if !cl.rewait {
		cl.waitSince = p.c.cfg.Now()
	}
	// A call woken from the line that must wait again was first in line: it stays so.
	p.waiters.join(cl, p.c.tickets.Add(1), cl.rewait)
	p.waiting.Store(int32(p.waiters.n))
}

// wakeAfter arms the pool's wake (if it is not armed): after d, the calls in line pick again, so that
// one that waited for a connection about to come free dials if none did. Called with mu held.
func (p *pool) wakeAfter(d time.Duration) {
	if p.wakeArmed {
		return
	}
	p.wakeArmed = true
	if p.wake == nil {
		p.wake = time.AfterFunc(d, p.woken)
		return
	}
	p.wake.Reset(d)
}

// woken is the pool's wake: every call in line picks again (at most one per connection the pool may
// have), on this goroutine, which Close waits for.
func (p *pool) woken() {
	if !p.c.spawn() {
		return
	}
	defer p.c.wg.Done()
	p.mu.Lock()
	p.wakeArmed = false
	n := min(p.waiters.n, p.c.cfg.MaxConnsPerServer)
	p.mu.Unlock()
	for range n {
		p.release(true)
	}
}

// unwait takes cl out of line; false when release took it first (its event is on its way).
func (p *pool) unwait(cl *call) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.waiters.leave(cl) {
		return false
	}
	p.waiting.Store(int32(p.waiters.n))
	return true
}

// release tells the first call in line that a connection may take it now (one came free, or may be
// dialed): here with inline, else on a goroutine of the client's. The call picks again; if another
// query took the connection first, it waits again, still first in line.
func (p *pool) release(inline bool) {
	p.mu.Lock()
	cl := p.waiters.take()
	p.waiting.Store(int32(p.waiters.n))
	p.mu.Unlock()
	if cl != nil {
		p.c.tell(cl, event{c: cl}, inline)
	}
}

// candidates are the connections a query may go to, by kind.
type candidates struct {
	coalesce *conn // has an unwritten batch, server reorders, under half full
	idle     *conn // ready, nothing outstanding; the one that answered last
	flow     *conn // least loaded of those answering
	fresh    *conn // least loaded of those dialing, not yet slow
	blocked  *conn // of those silent for busyAfter with a query outstanding, the one silent longest
	open     int   // connections dialing or ready: one of them will come free
	flowing  int   // connections answering, with a query out for less than busyAfter, or dialing that long with one queued
}

// scan sorts the connections cl has not tried and that have room. Called
// with mu held.
func (p *pool) scan(cl *call, now int64, limit int32, busy time.Duration, reorders bool) candidates {
	var k candidates
	maxIn := int32(p.c.cfg.MaxInFlight)
	less := func(a, b *conn) bool { return b == nil || a.load.Load() < b.load.Load() }
	for _, cn := range p.conns {
		st := cn.state.Load()
		if st != stReady && st != stDialing || limit > 0 && cn.accepted.Load() >= limit {
			continue
		}
		k.open++
		load := cn.load.Load()
		if load >= maxIn || cl.tried(cn) {
			continue
		}
		switch {
		case st == stDialing:
			if now-cn.born < int64(slowDialAfter) && less(cn, k.fresh) {
				k.fresh = cn
			}
			if load > 0 && now-cn.born < int64(busy) {
				k.flowing++ // its first answer will likely come before a new dial's would
			}
		case load == 0:
			if k.idle == nil || cn.lastRead.Load() > k.idle.lastRead.Load() {
				k.idle = cn
			}
		case cn.blocked(now, busy):
			if k.blocked == nil || cn.headSent.Load() < k.blocked.headSent.Load() {
				k.blocked = cn
			}
		default:
			k.flowing++
			if less(cn, k.flow) {
				k.flow = cn
			}
			if reorders && k.coalesce == nil && cn.queued.Load() > 0 && load < maxIn/2 {
				k.coalesce = cn
			}
		}
	}
	return k
}

// unreadAnswers counts, up to want, the connections cl may take that look blocked (silent for
// busyAfter, less than HedgeAfter) while bytes from the server wait unread in their sockets. A system
// call each, so pick asks only when it would otherwise dial. Called with mu held.
func (p *pool) unreadAnswers(cl *call, now int64, limit int32, busy time.Duration, want int) int {
	n := 0
	maxIn := int32(p.c.cfg.MaxInFlight)
	for _, cn := range p.conns {
		if n >= want {
			break
		}
		// stReady first: direct is set before a connection becomes ready.
		if cn.state.Load() != stReady || limit > 0 && cn.accepted.Load() >= limit || cn.direct == nil {
			continue
		}
		if load := cn.load.Load(); load == 0 || load >= maxIn || cl.tried(cn) || !cn.blocked(now, busy) ||
			now-cn.headSent.Load() >= int64(p.c.cfg.HedgeAfter) {
			continue
		}
		if cn.direct.unread() {
			n++
		}
	}
	return n
}

// canDial: fewer than MaxConnsPerServer connections dialing or ready, and
// not backing off. Draining connections do not count: one retired at a
// server's query limit must be replaced before its last answers are in,
// and it closes as soon as they are (so at most MaxConnsPerServer more).
// Called with mu held.
func (p *pool) canDial(now int64) bool {
	if p.closed || now < p.nextDialAt {
		return false
	}
	usable := 0
	for _, cn := range p.conns {
		if st := cn.state.Load(); st == stDialing || st == stReady {
			usable++
		}
	}
	return usable < p.c.cfg.MaxConnsPerServer
}

// dial starts a connection in the dialing state; queries may queue on it at
// once. Called with mu held, after canDial.
func (p *pool) dial(now int64, reason int) *conn {
	p.seq++
	cn := newConn(p, p.seq, now, reason)
	p.conns = append(p.conns, cn)
	p.peak = max(p.peak, len(p.conns))
	p.dialing++
	p.c.stats.conns.Add(1)
	p.c.wg.Add(1) // under mu with closed false: Close has not begun waiting
	go cn.run(p.c.ctx)
	return cn
}

// dialDone records a dial's outcome.
func (p *pool) dialDone(err error) {
	now := p.c.nowNS()
	p.mu.Lock()
	p.dialing--
	if err != nil {
		p.dialFails++
		p.nextDialAt = now + int64(backoff(p.dialFails, dialBackoffBase, dialBackoffMax))
	} else {
		p.dialFails, p.nextDialAt = 0, 0
	}
	p.mu.Unlock()
	if err != nil {
		p.c.stats.dialErrors.Add(1)
		p.log.Debug().Err(err).Msg("dial failed")
		p.failure()
	} else {
		p.health.connected()
	}
	p.release(false) // a dial may start, or the new connection is free
}

// removed forgets a closed connection, learns the server's query limit
// from how it closed, and dials a replacement ahead of need for one that
// did not close for being idle.
func (p *pool) removed(cn *conn, reason error, info closeInfo, now int64) {
	p.mu.Lock()
	if i := slices.Index(p.conns, cn); i >= 0 {
		p.conns = slices.Delete(p.conns, i, i+1)
		p.c.stats.conns.Add(-1)
	}
	p.mu.Unlock()
	p.c.stats.connsClosed.Add(1)
	p.log.Debug().Uint64("conn", cn.seq).Int("answered", info.answered).Int("unanswered", info.written).
		AnErr("reason", reason).Msg("connection closed")

	if l := p.limitSeen(info); l > 0 {
		// limitUntil first: queryLimit would take a limit with the old
		// expiry for an expired one and drop it.
		p.limitUntil.Store(now + int64(limitTTL))
		// The highest count wins: a server with a limit never answers
		// more than it (an RST may cut a count short, never lengthen
		// it), and a reset misread as a limit then retires connections
		// late rather than every few queries.
		if old := p.limit.Load(); l > old {
			p.limit.Store(l)
			p.log.Info().Int32("limit", l).Msg("server closes connections after a fixed number of queries")
		}
		p.mu.Lock()
		conns := slices.Clone(p.conns)
		p.mu.Unlock()
		for _, o := range conns {
			o.retireAt(l)
		}
	}
	switch {
	case errors.Is(reason, errIdle), errors.Is(reason, errShutdown):
	case errors.Is(reason, errDrained):
		p.warm(now, dialRotation)
	default:
		p.warm(now, dialReplacement)
	}
	p.release(false) // a connection may be dialed in its place
}

// limitSeen returns the per-connection query limit a close reveals, or 0.
// dnsmasq serves 100 queries per connection and miekg/dns 128, then close,
// losing whatever was pipelined past the limit. Such a close comes right
// after the last answer; an idle close (even one racing a new query) comes
// long after it. With queries lost, one close is enough to act on; a close
// that lost nothing must repeat the same count first, so a server restart
// that happens to follow an answer is not taken for a limit.
func (p *pool) limitSeen(info closeInfo) int32 {
	if !info.serverClosed || info.gap >= int64(limitGap) || info.answered < minLimit {
		return 0
	}
	n := int32(info.answered)
	if info.written > 0 || p.limitCand.Swap(n) == n {
		return n
	}
	return 0
}

// queryLimit returns the learned per-connection query limit, 0 if none.
func (p *pool) queryLimit(now int64) int32 {
	l := p.limit.Load()
	if l > 0 && now > p.limitUntil.Load() {
		p.limit.CompareAndSwap(l, 0)
		return 0
	}
	return l
}

// warm dials up to ConnsPerServer connections while the server is in use:
// when the client starts, and in place of one that closed other than idle
// (retired at its age or the server's limit, or lost). A connection idle for
// IdleTimeout was not needed and is not replaced: the next query that finds
// none free dials one (a round trip in-cluster), so a quiet pod holds no
// connection and a pod with a few lookups a second holds one, instead of
// costing the cluster DNS a handshake (and a conntrack entry) per IdleTimeout.
func (p *pool) warm(now int64, reason int) {
	if p.health.down() || now-p.lastUsed.Load() > int64(p.c.cfg.IdleTimeout) {
		return
	}
	limit := p.queryLimit(now)
	p.mu.Lock()
	defer p.mu.Unlock()
	usable := 0
	for _, cn := range p.conns {
		st := cn.state.Load()
		if (st == stReady || st == stDialing) && (limit == 0 || cn.accepted.Load() < limit) {
			usable++
		}
	}
	for ; usable < p.c.cfg.ConnsPerServer && p.canDial(now); usable++ {
		p.dial(now, reason)
	}
}

// maintain is the janitor's round for this server: each connection's upkeep, probes of a down
// server, and the calls in line woken to pick again (every event that frees a connection wakes one
// call itself; this covers connections that a slow or lost answer holds, which free nothing).
func (p *pool) maintain(now int64) {
	p.mu.Lock()
	conns := slices.Clone(p.conns)
	p.mu.Unlock()
	stallAfter := p.c.cfg.Timeout
	for _, cn := range conns {
		cn.maintain(now, stallAfter)
	}
	p.maybeProbe(now)
	// At most one call per connection the pool may have: more could take nothing.
	for range min(int(p.waiting.Load()), p.c.cfg.MaxConnsPerServer) {
		p.release(false)
	}
}

// resting: no connection open or dialing and the server up, so the janitor has nothing to do here.
func (p *pool) resting() bool {
	p.mu.Lock()
	n := len(p.conns)
	p.mu.Unlock()
	return n == 0 && p.health.up()
}

// observe feeds an answer's latency to the moving average. A sample counts
// at most 4× the average, so the 5% slow answers of a serial server barely
// move it (the average settles near 1.2× the fast latency), and a lost
// update under contention does no harm.
func (p *pool) observe(d time.Duration) {
	old := p.latency.Load()
	if old == 0 {
		p.latency.Store(int64(d))
		return
	}
	s := min(int64(d), 4*old)
	p.latency.Store(old + (s-old)/16)
}

// busyAfter is how long a connection may stay silent with a query
// outstanding before it counts as blocked: 4× the usual latency, at least
// minBusyAfter, at most a quarter of HedgeAfter.
func (p *pool) busyAfter() time.Duration {
	d := 4 * time.Duration(p.latency.Load())
	return max(minBusyAfter, min(d, p.c.cfg.HedgeAfter/4))
}

func (p *pool) success() {
	if p.health.success() {
		p.log.Info().Msg("server up")
	}
}

func (p *pool) failure() {
	if p.health.failure() {
		p.log.Warn().Msg("server down")
	}
}

// shutdown closes every connection; no new ones are dialed.
func (p *pool) shutdown() {
	p.mu.Lock()
	p.closed = true
	conns := slices.Clone(p.conns)
	waiters := p.waiters.drain()
	p.waiting.Store(0)
	if p.wake != nil {
		p.wake.Stop()
	}
	p.mu.Unlock()
	for _, cn := range conns {
		cn.close(errShutdown, false)
	}
	for _, cl := range waiters {
		p.c.tell(cl, event{c: cl, err: errShutdown}, false)
	}
}

func (p *pool) stats() ServerStats {
	p.mu.Lock()
	n, peak, waiting := len(p.conns), p.peak, p.waiters.n
	p.mu.Unlock()
	return ServerStats{
		Addr: p.addr, Up: p.health.up(), Down: p.health.down(), Conns: n, PeakConns: peak,
		Reorders: p.reorders.Load(), QueryLimit: int(p.limit.Load()), Waiting: waiting,
	}
}
