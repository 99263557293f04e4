package upstream

import (
	"time"

	"github.com/miekg/dns"
)

// Receiver is told the outcome of an ExchangeAsync: what ExchangeWire would have returned.
type Receiver = interface {
	Receive(wire []byte, err error)
}

// ExchangeAsync is ExchangeWire without a goroutine waiting for the reply: it sends m and returns, and
// r is told the outcome exactly once, within Timeout. It is told on the goroutine that reads the reply
// (so Receive must not block: that connection's next reply waits for it), on a goroutine of the
// client's when the call had to wait for a hedge, a re-send or its timeout, or before ExchangeAsync
// returns when m cannot be sent at all. m must not change until then.
//
// The query is written by the calling goroutine when the connection's writer is idle. With both, a
// cache miss costs no thread wake-up in podns beyond the one for the reply: a thread blocked reading
// clients can send a query upstream and go back to reading.
func (c *Client) ExchangeAsync(m *dns.Msg, r Receiver) { c.exchangeAsync(m, r, false, time.Time{}) }

// Queue is ExchangeAsync for a caller with more queries to send at once: the query waits in its
// connection's queue and is written at the caller's next Flush, in one write with the others queued
// meanwhile. The caller must Flush soon: until then (or until another query on the connection is
// written) the query waits, and its time runs.
func (c *Client) Queue(m *dns.Msg, r Receiver) { c.exchangeAsync(m, r, true, time.Time{}) }

// Flush writes the queries of Queue, from the calling goroutine as ExchangeAsync does.
func (c *Client) Flush() {
	var buf [32]*conn
	c.heldMu.Lock()
	conns := append(buf[:0], c.held...)
	clear(c.held)
	c.held = c.held[:0]
	c.heldMu.Unlock()
	if len(conns) == 0 {
		return
	}
	now := c.nowNS()
	for _, cn := range conns {
		cn.held.Store(false) // before the write: a query queued from now on makes another Flush write
		cn.writeNow(now)
	}
}

// holdFor notes that cn has a query of Queue to write at Flush.
func (c *Client) holdFor(cn *conn) {
	if cn.held.Swap(true) {
		return
	}
	c.heldMu.Lock()
	c.held = append(c.held, cn)
	c.heldMu.Unlock()
}

// exchangeAsync starts the one path every query takes: Exchange and ExchangeWire wait on it, ExchangeAsync
// and Queue do not. The exchange must end by deadline (zero: Timeout from now).
func (c *Client) exchangeAsync(m *dns.Msg, r Receiver, hold bool, deadline time.Time) {
	c.stats.queries.Add(1)
	c.stats.inFlight.Add(1)
	start := c.cfg.Now()
	if deadline.IsZero() {
		deadline = start.Add(c.cfg.Timeout)
	}
	cl, err := c.prepare(m, start, deadline)
	if err != nil {
		r.Receive(nil, c.tally(m, start, nil, err))
		return
	}
	cl.recv, cl.hold = r, hold
	cl.mode.Store(modeBusy)
	if cl.timer == nil {
		cl.timer = time.AfterFunc(time.Hour, func() { c.fireCounted(cl) })
	}
	cl.timer.Reset(c.nextWake(cl)) // before the send: once sent, another goroutine may finish cl
	if err := c.send(cl, kindFirst); err != nil {
		c.conclude(cl, nil, err)
		return
	}
	if c.park(cl) {
		c.drive(cl)
	}
}

// tell gives ev to its call. When the call is parked, the caller takes the call's turn and drives it:
// here with inline, else on a new goroutine of the client's (here too once Close waits: the caller is
// then one of the client's goroutines, which Close waits for). tell reads no field of the call that
// finish resets: once ev is in, the call may be finished and reused at any time, and a turn taken on a
// reused call finds nothing to do.
func (c *Client) tell(cl *call, ev event, inline bool) {
	cl.pending.Add(1) // before the send: a driver that takes ev must see it counted
	cl.events <- ev
	if !cl.mode.CompareAndSwap(modeParked, modeBusy) {
		return // driven already: the driver takes ev before it parks
	}
	if inline || !c.spawn() {
		c.drive(cl)
		return
	}
	go func() {
		defer c.wg.Done()
		c.drive(cl)
	}()
}

// fireCounted is a call's timer function: it runs on a goroutine of the runtime's, which Close waits
// for like the client's own. Once Close waits, a timer does nothing: every call still in flight then
// ends through its connections' closing (pool.shutdown).
func (c *Client) fireCounted(cl *call) {
	if !c.spawn() {
		return
	}
	defer c.wg.Done()
	c.fire(cl)
}

// fire: the time of a hedge or the deadline came. A timer that fires as its call finishes may find the
// call reused; the turn it takes then finds nothing due (tick compares the times), and the call's own
// timer is set again.
func (c *Client) fire(cl *call) {
	cl.fired.Store(true)
	if cl.mode.CompareAndSwap(modeParked, modeBusy) {
		c.drive(cl)
	}
}

// drive takes, for a call whose turn the caller holds, the events that came and the timer's firing,
// then parks the call, or concludes it.
func (c *Client) drive(cl *call) {
	for {
		switch {
		case cl.pending.Load() > 0:
			ev := <-cl.events // counted before it was sent: here, or about to be
			cl.pending.Add(-1)
			if w, err, done := c.event(cl, ev); done {
				c.conclude(cl, w, err)
				return
			}
		case cl.fired.Swap(false):
			if err := c.tick(cl); err != nil {
				c.conclude(cl, nil, err)
				return
			}
			cl.timer.Reset(c.nextWake(cl))
		default:
			if !c.park(cl) {
				return
			}
		}
	}
}

// park gives up the turn of a call. It reports true when the caller took the turn back because
// something came meanwhile, and must drive the call again; after false, the call is not the caller's
// to touch.
func (c *Client) park(cl *call) bool {
	cl.mode.Store(modeParked)
	if cl.pending.Load() == 0 && !cl.fired.Load() {
		return false
	}
	return cl.mode.CompareAndSwap(modeParked, modeBusy)
}

// conclude ends a call with its outcome and tells its receiver.
func (c *Client) conclude(cl *call, w []byte, err error) {
	cl.timer.Stop()
	m, r, start := cl.m, cl.recv, cl.start
	c.finish(cl)
	r.Receive(w, c.tally(m, start, w, err))
}
