package upstream

import (
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
	// a millisecond; silence for longer with a query outstanding means a
	// serial server is on a slow one.
	minBusyAfter = time.Millisecond
	// maxGrowDials bounds concurrent dials beyond ConnsPerServer: enough to
	// follow a burst, few enough not to flood a struggling server.
	maxGrowDials = 2
)

// pool holds the connections to one server and its health.
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

	mu          sync.Mutex // guards the fields below
	conns       []*conn    // dialing, ready or draining
	peak        int        // most connections at once
	seq         uint64     // numbers connections for logs
	rr          int        // rotates the scan, spreading load over idle connections
	dialing     int
	dialFails   int
	nextDialAt  int64
	probing     bool
	probeFails  int
	nextProbeAt int64
	closed      bool
}

// pick returns the connection for cl's next attempt, dialing one when that
// helps; nil when none of this server's connections can take it.
//
// Preference: a connection with an unwritten batch of a server known to
// answer out of order (the A and AAAA leave in one write); an idle one; for
// an out-of-order server, the least loaded; otherwise (a serial server, or
// one not yet seen reordering) a new connection is opened, up to
// MaxConnsPerServer, and the query goes to a dialing connection with nothing
// queued, else to the least loaded connection that is answering, else to a
// dialing one. A connection whose server has been silent for busyAfter with
// a query outstanding comes last: on a serial server everything sent there
// waits behind a slow answer.
func (p *pool) pick(cl *call, now int64) *conn {
	p.lastUsed.Store(now)
	limit := p.queryLimit(now)
	busy := p.busyAfter()
	reorders := p.reorders.Load()
	half := int32(p.c.cfg.MaxInFlight / 2)

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	k := p.scan(cl, now, limit, busy, reorders)
	for ; k.usable < p.c.cfg.ConnsPerServer && p.canDial(now); k.usable++ {
		if d := p.dial(now); k.fresh == nil { // dial ahead: keep ConnsPerServer open
			k.fresh = d
		}
	}
	switch {
	case k.coalesce != nil:
		return k.coalesce
	case k.idle != nil:
		return k.idle
	case reorders && k.flow != nil && k.flow.load.Load() < half:
		return k.flow
	}
	// A serial server answers a busy connection's queries one by one: a
	// new connection costs one handshake, the busy one maybe a slow answer.
	if p.dialing < maxGrowDials && p.canDial(now) {
		if d := p.dial(now); k.fresh == nil {
			k.fresh = d
		}
	}
	switch {
	case k.fresh != nil && k.fresh.load.Load() == 0:
		return k.fresh
	case k.flow != nil:
		return k.flow
	case k.fresh != nil:
		return k.fresh
	}
	return k.blocked
}

// candidates are the connections a query may go to, by kind.
type candidates struct {
	coalesce *conn // has an unwritten batch, server reorders, under half full
	idle     *conn // ready, nothing outstanding
	flow     *conn // least loaded of those answering
	fresh    *conn // least loaded of those dialing
	blocked  *conn // least loaded of those silent for busyAfter
	usable   int   // connections dialing or ready, below the query limit
}

// scan sorts the connections cl has not tried and that have room. The scan
// starts one further each time, so ties spread over the connections and
// none idles out under steady load. Called with mu held.
func (p *pool) scan(cl *call, now int64, limit int32, busy time.Duration, reorders bool) candidates {
	var k candidates
	maxIn := int32(p.c.cfg.MaxInFlight)
	less := func(a, b *conn) bool { return b == nil || a.load.Load() < b.load.Load() }
	n := len(p.conns)
	p.rr++
	for i := range n {
		cn := p.conns[(p.rr+i)%n]
		st := cn.state.Load()
		if st != stReady && st != stDialing || limit > 0 && cn.accepted.Load() >= limit {
			continue
		}
		k.usable++
		load := cn.load.Load()
		if load >= maxIn || cl.tried(cn) {
			continue
		}
		switch {
		case st == stDialing:
			if less(cn, k.fresh) {
				k.fresh = cn
			}
		case load == 0:
			if k.idle == nil {
				k.idle = cn
			}
		case cn.blocked(now, busy):
			if less(cn, k.blocked) {
				k.blocked = cn
			}
		default:
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
func (p *pool) dial(now int64) *conn {
	p.seq++
	cn := newConn(p, p.seq, now)
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
		return
	}
	p.success()
}

// removed forgets a closed connection, learns the server's query limit
// from how it closed, and dials a replacement ahead of need.
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
	p.warm(now)
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

// warm dials up to ConnsPerServer connections while the server is in use.
// A pool idle for IdleTimeout lets its connections close and redials on
// the next query: keeping idle connections open forever would cost every
// pod a TCP handshake (and a conntrack entry) per IdleTimeout at the
// cluster DNS.
func (p *pool) warm(now int64) {
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
		p.dial(now)
	}
}

// maintain is the janitor's round for this server.
func (p *pool) maintain(now int64) {
	p.mu.Lock()
	conns := slices.Clone(p.conns)
	p.mu.Unlock()
	stallAfter := p.c.cfg.Timeout
	for _, cn := range conns {
		cn.maintain(now, stallAfter)
	}
	p.warm(now)
	p.maybeProbe(now)
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
	p.mu.Unlock()
	for _, cn := range conns {
		cn.close(errShutdown, false)
	}
}

func (p *pool) stats() ServerStats {
	p.mu.Lock()
	n, peak := len(p.conns), p.peak
	p.mu.Unlock()
	return ServerStats{
		Addr: p.addr, Up: p.health.up(), Down: p.health.down(), Conns: n, PeakConns: peak,
		Reorders: p.reorders.Load(), QueryLimit: int(p.limit.Load()),
	}
}
