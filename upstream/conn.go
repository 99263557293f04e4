package upstream

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Connection states. A conn only moves forward through them.
const (
	stDialing  int32 = iota // queries queue until the dial completes
	stReady                 // takes queries
	stDraining              // takes no new queries; closes once its calls are done
	stClosed
)

const (
	// readBufSize holds a few typical replies per read syscall.
	readBufSize = 8 << 10
	// limitGap: a server that closes at its query limit closes right after
	// its last answer; a close that comes later is an idle close racing a
	// query, not a limit (see conn.close).
	limitGap = 100 * time.Millisecond
	// minLimit: a close after fewer answers is taken for a fault, not a
	// limit (dnsmasq's is 100, miekg/dns's 128).
	minLimit = 8
)

// entry is one attempt of a call on one connection: the in-flight map holds
// it under its wire ID. Whoever removes an entry from the map owns it and
// tells its call exactly once; an entry removed by its own call (cancel) is
// told nothing.
type entry struct {
	cn  *conn  // set before the entry is published, then immutable
	id  uint16 // idem
	seq int32  // idem: the connection's n-th query, from 1

	// guarded by cn.mu:
	c          *call  // waiting call; nil once orphaned (call gone, reply may still come)
	sentAt     int64  // when written (client clock, ns); 0 while queued
	readsAt    int64  // cn.reads when written: no reply since if still equal
	prev, next *entry // written entries in send order
	overtaken  bool   // a later query on the connection was answered first
}

// conn is one TCP connection to a server: one writer goroutine that batches
// every queued query into one write, one reader goroutine that matches
// replies to entries (RFC 7766 §6.2.1.1: pipelining, answers in any order).
type conn struct {
	p       *pool
	seq     uint64
	reason  int           // why it was dialed (dialDemand...)
	born    int64         // when the dial began (client clock)
	expires int64         // when MaxAge (with jitter) retires it
	closing chan struct{} // closed on close; stops the writer
	wake    chan struct{} // cap 1: the queue is not empty

	// Read by pool.pick without the lock, written under mu.
	state     atomic.Int32
	load      atomic.Int32 // entries in inflight: queued, waiting and orphaned
	queued    atomic.Int32 // entries not yet written
	headSent  atomic.Int64 // sentAt of the oldest written entry; 0: none
	lastRead  atomic.Int64 // when the last reply (or the connect) happened
	accepted  atomic.Int32 // entries ever enqueued, against the learned query limit
	held      atomic.Bool  // in Client.held: queries of Queue wait for Flush
	idleLimit atomic.Int64 // close when idle this long: IdleTimeout or the server's (RFC 7828)

	// wmu orders writes: the writer goroutine and writeNow each hold it from fill to the end of
	// their write, so queries go out in the order fill took them.
	wmu    sync.Mutex
	rest   []byte    // the end of a batch writeNow could not write: the writer writes it first
	direct *directFD // set before the state leaves stDialing; nil when the conn has no fd to write
	wbuf   []byte    // the batch being written, filled under mu

	mu         sync.Mutex // guards the fields below
	nc         net.Conn   // nil while dialing
	inflight   map[uint16]*entry
	queue      []*entry // enqueued, not yet written
	head, tail *entry   // written entries, oldest first
	live       int      // entries whose call waits
	answered   int      // replies matched to an entry
	reads      int64    // frames read, matched or not
	lastActive int64    // last enqueue or reply: the idle clock
	slow       bool     // the dial took longer than slowDialAfter: its queries went elsewhere
}

func newConn(p *pool, seq uint64, now int64, reason int) *conn {
	cn := &conn{
		p:        p,
		seq:      seq,
		reason:   reason,
		born:     now,
		expires:  now + int64(jitterAge(p.c.cfg.MaxAge)),
		closing:  make(chan struct{}),
		wake:     make(chan struct{}, 1),
		inflight: make(map[uint16]*entry, p.c.cfg.MaxInFlight),
	}
	cn.lastActive = now
	cn.lastRead.Store(now)
	cn.idleLimit.Store(int64(p.c.cfg.IdleTimeout))
	return cn
}

// run dials, then serves the connection until it closes. Owned by the
// Client's WaitGroup.
func (cn *conn) run(ctx context.Context) {
	defer cn.p.c.wg.Done()
	c := cn.p.c
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	nc, err := c.cfg.Dial(dctx, "tcp", cn.p.addr)
	cancel()
	if err != nil {
		cn.p.dialDone(err)
		cn.close(fmt.Errorf("dialing %s: %w", cn.p.addr, err), false)
		return
	}
	if !cn.connected(nc) {
		abort(nc)
		cn.p.dialDone(nil)
		return
	}
	c.stats.connsOpened.Add(1)
	c.stats.openedBy[cn.reason].Add(1)
	cn.p.dialDone(nil)
	c.wg.Add(1) // this goroutine holds the group above zero
	go cn.readLoop(nc)
	if err := cn.writeLoop(nc); err != nil {
		cn.close(err, isServerClose(err))
	}
}

// connected installs nc; false when the conn was closed while dialing.
func (cn *conn) connected(nc net.Conn) bool {
	now := cn.p.c.nowNS()
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.state.Load() == stClosed {
		return false
	}
	cn.nc = nc
	cn.direct = newDirectFD(nc)
	cn.state.CompareAndSwap(stDialing, stReady)
	cn.lastRead.Store(now)
	cn.lastActive = now
	return true
}

// enqueue adds e, an unused attempt slot of cl, to the queue under a fresh
// ID, and wakes the writer when wake is set (else the caller writes it:
// writeNow); false when the connection takes no more queries.
func (cn *conn) enqueue(cl *call, e *entry, now int64, wake bool) bool {
	maxIn := cn.p.c.cfg.MaxInFlight
	limit := cn.p.queryLimit(now)
	cn.mu.Lock()
	st := cn.state.Load()
	if st != stReady && st != stDialing || len(cn.inflight) >= maxIn {
		cn.mu.Unlock()
		return false
	}
	if limit > 0 && cn.accepted.Load() >= limit {
		cn.state.CompareAndSwap(stReady, stDraining)
		done := cn.drained()
		cn.mu.Unlock()
		if done {
			cn.close(errDrained, false)
		}
		return false
	}
	id := uint16(rand.Uint32())
	for cn.inflight[id] != nil {
		id = uint16(rand.Uint32())
	}
	*e = entry{cn: cn, id: id, c: cl, seq: cn.accepted.Load() + 1}
	cn.inflight[id] = e
	cn.queue = append(cn.queue, e)
	cn.live++
	cn.lastActive = now
	cn.load.Store(int32(len(cn.inflight)))
	cn.queued.Store(int32(len(cn.queue)))
	if n := cn.accepted.Add(1); limit > 0 && n >= limit {
		cn.state.CompareAndSwap(stReady, stDraining) // that was its last query
	}
	cn.mu.Unlock()
	if wake {
		cn.signal()
	}
	return true
}

// signal wakes the writer goroutine (or leaves it a wake-up if it is at work).
func (cn *conn) signal() {
	select {
	case cn.wake <- struct{}{}:
	default:
	}
}

// writeNow writes the queue from the calling goroutine, with one non-blocking system call, when the
// connection is up and its writer idle; otherwise, and for what the socket does not take at once, it
// wakes the writer goroutine.
func (cn *conn) writeNow(now int64) {
	if st := cn.state.Load(); st != stReady && st != stDraining || cn.direct == nil || !cn.wmu.TryLock() {
		cn.signal()
		return
	}
	if cn.rest != nil {
		cn.wmu.Unlock()
		cn.signal()
		return
	}
	buf, n := cn.fill(now)
	if n == 0 {
		cn.wmu.Unlock()
		return
	}
	written, err := cn.direct.write(buf)
	if err == nil {
		c := cn.p.c
		c.stats.writes.Add(1)
		c.stats.messages.Add(uint64(n))
		c.stats.directWrites.Add(1)
		if written < len(buf) {
			cn.rest = buf[written:] // the socket is full: the writer waits until it is not
		}
	}
	cn.wmu.Unlock()
	switch {
	case err != nil:
		cn.close(fmt.Errorf("writing to %s: %w", cn.p.addr, err), isServerClose(err))
	case written < len(buf):
		cn.signal()
	}
}

// cancel detaches cl from e when cl no longer waits for it, and reports
// whether it did; if not, e was answered or failed and its one event is
// in cl.events or on its way. Afterwards the connection holds no pointer
// to e, which lives in cl and is reused with it: an unwritten entry leaves
// the queue and the map; a written one is replaced by an orphan copy, kept
// so its ID is not reused while the server may still answer it and so
// that it still counts against a serial server yet to work through it.
func (cn *conn) cancel(cl *call, e *entry) bool {
	freed := false
	cn.mu.Lock()
	if cn.inflight[e.id] != e || e.c != cl {
		cn.mu.Unlock()
		return false
	}
	cn.live--
	switch {
	case e.sentAt == 0:
		delete(cn.inflight, e.id)
		if i := slices.Index(cn.queue, e); i >= 0 {
			cn.queue = slices.Delete(cn.queue, i, i+1)
			cn.queued.Store(int32(len(cn.queue)))
		}
		freed = true
	case e.overtaken && !cn.p.reorders.Load():
		cn.drop(e) // a serial server answered later queries: it skipped this one
	default:
		cn.orphan(e)
	}
	cn.load.Store(int32(len(cn.inflight)))
	done := cn.drained()
	cn.mu.Unlock()
	if done {
		cn.close(errDrained, false)
	} else if freed && cn.p.waiting.Load() > 0 {
		cn.p.release(false)
	}
	return true
}

// orphan puts a copy of the written entry e, without call, in its place
// in the map and the list. Called with mu held.
func (cn *conn) orphan(e *entry) {
	o := &entry{cn: cn, id: e.id, seq: e.seq, sentAt: e.sentAt, readsAt: e.readsAt, prev: e.prev, next: e.next, overtaken: e.overtaken}
	cn.inflight[e.id] = o
	if o.prev != nil {
		o.prev.next = o
	} else {
		cn.head = o
	}
	if o.next != nil {
		o.next.prev = o
	} else {
		cn.tail = o
	}
	e.prev, e.next = nil, nil
}

// retireAt drains the connection if it took limit queries already.
func (cn *conn) retireAt(limit int32) {
	cn.mu.Lock()
	if cn.accepted.Load() >= limit {
		cn.state.CompareAndSwap(stReady, stDraining)
	}
	done := cn.drained()
	cn.mu.Unlock()
	if done {
		cn.close(errDrained, false)
	}
}

// drained reports whether a draining connection has no call left waiting:
// it closes now rather than at the janitor's next round, so it does not
// hold a place under MaxConnsPerServer. Called with mu held.
func (cn *conn) drained() bool {
	return cn.state.Load() == stDraining && cn.live == 0
}

// writeLoop writes queued queries until the connection closes. Everything
// queued when it wakes goes out in one write, so the A and AAAA asked
// together leave in one segment (RFC 7766 §6.2.1 asks for the length and the
// message in one write; this batches whole messages too).
func (cn *conn) writeLoop(nc net.Conn) error {
	for {
		select {
		case <-cn.closing:
			return nil
		case <-cn.wake:
		}
		// Let the goroutines that are ready to run enqueue their queries first: under load the
		// wake-up comes from the first of a burst of callers, and they all go out in one write.
		runtime.Gosched()
		cn.wmu.Lock()
		err := cn.writeQueued(nc)
		cn.wmu.Unlock()
		if err != nil {
			return fmt.Errorf("writing to %s: %w", cn.p.addr, err)
		}
	}
}

// writeQueued writes what writeNow left, then the queue, blocking. Called with wmu held.
func (cn *conn) writeQueued(nc net.Conn) error {
	c := cn.p.c
	// A server that stops reading must not hold the writer forever.
	_ = nc.SetWriteDeadline(time.Now().Add(c.cfg.Timeout))
	if cn.rest != nil {
		_, err := nc.Write(cn.rest)
		cn.rest = nil
		if err != nil {
			return err
		}
	}
	buf, n := cn.fill(c.nowNS())
	if n == 0 {
		return nil
	}
	if _, err := nc.Write(buf); err != nil {
		return err
	}
	c.stats.writes.Add(1)
	c.stats.messages.Add(uint64(n))
	return nil
}

// fill moves the queue into the write buffer, each query with its
// connection's ID, and marks the entries written. It copies under the lock
// because a call recycles its packed query once it has canceled its
// entries (which takes them out of the queue). Called with wmu held.
func (cn *conn) fill(now int64) ([]byte, int) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	buf, n := cn.wbuf[:0], 0
	for _, e := range cn.queue {
		start := len(buf)
		buf = append(buf, e.c.wire...)
		binary.BigEndian.PutUint16(buf[start+2:], e.id)
		e.sentAt, e.readsAt = now, cn.reads
		e.prev = cn.tail
		if cn.tail != nil {
			cn.tail.next = e
		} else {
			cn.head = e
			cn.headSent.Store(now)
		}
		cn.tail = e
		n++
	}
	clear(cn.queue)
	cn.queue = cn.queue[:0]
	cn.queued.Store(0)
	cn.wbuf = buf
	return buf, n
}

// readLoop reads framed replies until the connection fails. Owned by the
// Client's WaitGroup.
func (cn *conn) readLoop(nc net.Conn) {
	defer cn.p.c.wg.Done()
	c := cn.p.c
	br := bufio.NewReaderSize(quickAck(nc, &cn.load), readBufSize)
	var prefix [2]byte
	for {
		if _, err := io.ReadFull(br, prefix[:]); err != nil {
			cn.close(fmt.Errorf("reading from %s: %w", cn.p.addr, err), isServerClose(err))
			return
		}
		n := int(binary.BigEndian.Uint16(prefix[:]))
		if n < headerLen {
			// Nothing after this can be trusted to start on a message.
			c.stats.framingErrs.Add(1)
			cn.p.failure()
			cn.close(fmt.Errorf("reading from %s: %w: %d-byte message", cn.p.addr, errFraming, n), false)
			return
		}
		buf := c.rbufs.get(n)
		if _, err := io.ReadFull(br, *buf); err != nil {
			c.rbufs.put(buf)
			cn.close(fmt.Errorf("reading from %s: %w", cn.p.addr, err), isServerClose(err))
			return
		}
		cn.deliver(buf, c.nowNS())
	}
}

// deliver hands a reply to the entry it answers, or drops it.
func (cn *conn) deliver(bp *[]byte, now int64) {
	c := cn.p.c
	buf := *bp
	id := binary.BigEndian.Uint16(buf)
	cn.mu.Lock()
	cn.lastRead.Store(now)
	cn.reads++
	e := cn.inflight[id]
	if e == nil || e.sentAt == 0 || binary.BigEndian.Uint16(buf[2:])&flagQR == 0 {
		cn.mu.Unlock()
		c.stats.strays.Add(1)
		c.rbufs.put(bp)
		return
	}
	cl := e.c
	if cl != nil && !replyMatches(cl.wire[2:], buf) {
		cn.mu.Unlock()
		c.stats.mismatches.Add(1) // RFC 5452 §9.1: not an answer to this query
		c.rbufs.put(bp)
		return
	}
	cn.noteOrder(e)
	cn.drop(e)
	cn.answered++
	cn.lastActive = now
	if cl != nil {
		cn.live--
	}
	load := int32(len(cn.inflight))
	cn.load.Store(load)
	done := cn.drained()
	cn.mu.Unlock()
	if cl == nil {
		c.stats.lateReplies.Add(1)
		c.rbufs.put(bp)
	} else {
		c.tell(cl, event{e: e, buf: bp}, true) // the call is answered here
	}
	if done {
		cn.close(fmt.Errorf("closing connection to %s: %w", cn.p.addr, errDrained), false)
	} else if cn.p.waiting.Load() > 0 && (load == 0 || cn.p.reorders.Load() && load < int32(c.cfg.MaxInFlight)) {
		cn.p.release(true) // the connection is free: the first call in line takes it from here
	}
}

// noteOrder marks the entries written before e as overtaken. An overtaken
// entry answered later proves the server answers out of order. Without that
// proof the server is taken as serial (CoreDNS), which answered e only after
// all earlier queries: orphans among them will never be answered.
func (cn *conn) noteOrder(e *entry) {
	if e.overtaken && !cn.p.reorders.Swap(true) {
		cn.p.log.Info().Msg("server answers out of order")
	}
	reorders := cn.p.reorders.Load()
	for o := cn.head; o != nil && o != e; {
		next := o.next
		o.overtaken = true
		if o.c == nil && !reorders {
			cn.drop(o)
		}
		o = next
	}
}

// drop removes a written or unwritten entry from the map and the list.
// Called with mu held.
func (cn *conn) drop(e *entry) {
	delete(cn.inflight, e.id)
	if e.sentAt == 0 {
		return
	}
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		cn.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		cn.tail = e.prev
	}
	e.prev, e.next = nil, nil
	if cn.head != nil {
		cn.headSent.Store(cn.head.sentAt)
	} else {
		cn.headSent.Store(0)
	}
}

// blocked reports whether the server has not answered anything for
// busyAfter while a query of this connection was outstanding: a serial
// server is working on a slow query and everything sent now waits behind it.
func (cn *conn) blocked(now int64, busyAfter time.Duration) bool {
	hs := cn.headSent.Load()
	if hs == 0 {
		return false
	}
	return now-max(hs, cn.lastRead.Load()) > int64(busyAfter)
}

// closeInfo is what a closing connection tells its pool.
type closeInfo struct {
	serverClosed bool  // EOF or reset from the server, not our doing
	written      int   // queries written and not answered at close
	answered     int   // replies matched over the connection's life
	gap          int64 // from the last reply to the close
}

// close fails the connection: every waiting call is told (and re-sends),
// the socket is closed, the pool forgets it. Idempotent.
func (cn *conn) close(reason error, serverClosed bool) {
	now := cn.p.c.nowNS()
	cn.mu.Lock()
	if cn.state.Swap(stClosed) == stClosed {
		cn.mu.Unlock()
		return
	}
	info := closeInfo{serverClosed: serverClosed, answered: cn.answered, gap: now - cn.lastRead.Load()}
	var failed []event
	// A server that acknowledged nothing of them never read them: re-sending them is not their re-send.
	unread := errors.Is(reason, errSilentPeer)
	for _, e := range cn.inflight {
		if e.sentAt != 0 {
			info.written++
		}
		if e.c != nil {
			failed = append(failed, event{e: e, err: reason, sent: e.sentAt != 0 && !unread, c: e.c})
		}
	}
	clear(cn.inflight)
	clear(cn.queue)
	cn.queue, cn.head, cn.tail, cn.live = cn.queue[:0], nil, nil, 0
	cn.load.Store(0)
	cn.queued.Store(0)
	cn.headSent.Store(0)
	nc := cn.nc
	cn.mu.Unlock()

	close(cn.closing)
	if nc != nil {
		abort(nc)
	}
	// The pool learns a query limit before the calls re-send, so that the
	// re-sends avoid connections about to hit the same limit. Queries past
	// the limit went unanswered because of it, not because of what they
	// ask (a serial server like dnsmasq never even read them): re-sending
	// them is not the one re-send a query gets.
	cn.p.removed(cn, reason, info, now)
	limit := cn.p.queryLimit(now)
	for _, ev := range failed {
		if limit > 0 && ev.e.seq > limit {
			ev.sent = false
		}
		cn.p.c.tell(ev.c, ev, false)
	}
}

// abort closes nc with a reset (SO_LINGER 0) instead of a FIN. A connection closes when nothing on it is
// owed an answer any more: idle, drained, or given up on (its calls re-send elsewhere), so the reset loses
// nothing. A FIN leaves the flow in TIME_WAIT for two minutes, here and in the conntrack table of the
// node the ClusterIP's DNAT runs on; a reset leaves conntrack's CLOSE state, 10 s. Closing idle
// connections with FINs, a node's pods held more conntrack entries toward kube-dns than they had
// connections open (bench/fleet).
func abort(nc net.Conn) {
	if tc, ok := nc.(interface{ SetLinger(int) error }); ok {
		_ = tc.SetLinger(0)
	}
	nc.Close()
}

// serverIdle applies the server's edns-tcp-keepalive TIMEOUT, in units of
// 100 ms (RFC 7828 §3.1): close idle connections a quarter of it early, so no
// query races the server's close. TIMEOUT 0 asks the client to close the
// connection once its queries are answered (RFC 7828 §3.3.2); miekg/dns reads
// an option without TIMEOUT as 0 as well, which servers must not send in
// replies (§3.2.2).
func (cn *conn) serverIdle(timeout uint16) {
	if timeout == 0 {
		cn.mu.Lock()
		cn.state.CompareAndSwap(stReady, stDraining)
		done := cn.drained()
		cn.mu.Unlock()
		if done {
			cn.close(errDrained, false)
		}
		return
	}
	d := time.Duration(timeout) * 100 * time.Millisecond
	cn.idleLimit.Store(int64(min(cn.p.c.cfg.IdleTimeout, d-d/4)))
}

// maintain retires the connection when idle, too old or stalled, closes it when its server went
// silent, gives the queries of a slow dial to other connections, and forgets orphans nobody will
// answer. Called by the janitor.
func (cn *conn) maintain(now int64, stallAfter time.Duration) {
	limit := cn.p.queryLimit(now)
	cn.mu.Lock()
	st := cn.state.Load()
	if st == stDialing {
		cn.checkDial(now) // unlocks
		return
	}
	if st == stClosed {
		cn.mu.Unlock()
		return
	}
	var reason error
	suspect := false
	if h := cn.head; h != nil && now-h.sentAt > int64(stallAfter) && cn.reads == h.readsAt {
		reason = errStalled
	} else {
		suspect = h != nil && now-h.sentAt > int64(silentPeerAfter) && cn.direct != nil
		cn.expireOrphans(now, stallAfter)
		if st == stReady && (now >= cn.expires || limit > 0 && cn.accepted.Load() >= limit) {
			st = stDraining
			cn.state.Store(st)
		}
		switch {
		case st == stDraining && cn.live == 0:
			reason = errDrained
		case len(cn.inflight) == 0 && now-cn.lastActive >= cn.idleLimit.Load():
			cn.state.Store(stDraining) // no enqueue may slip in before close
			reason = errIdle
		}
	}
	cn.mu.Unlock()
	if reason == nil && suspect && cn.direct.unacked() {
		reason = errSilentPeer
		cn.p.c.stats.silentPeers.Add(1)
		cn.p.log.Warn().Uint64("conn", cn.seq).Msg("server stopped acknowledging queries: closing the connection, its queries go to others")
	}
	if reason == errStalled {
		cn.p.c.stats.stalls.Add(1)
		cn.p.failure()
	}
	if reason != nil {
		cn.close(fmt.Errorf("closing connection to %s: %w", cn.p.addr, reason), false)
	}
}

// checkDial gives the queries queued on a dial slower than slowDialAfter back to their calls as never
// sent, so that they go to other connections; the dial goes on. Called with mu held; unlocks it.
func (cn *conn) checkDial(now int64) {
	if cn.slow || now-cn.born <= int64(slowDialAfter) {
		cn.mu.Unlock()
		return
	}
	cn.slow = true
	var moved []event
	for _, e := range cn.queue {
		delete(cn.inflight, e.id)
		if e.c != nil {
			cn.live--
			moved = append(moved, event{e: e, c: e.c, err: errSlowDial})
		}
	}
	clear(cn.queue)
	cn.queue = cn.queue[:0]
	cn.queued.Store(0)
	cn.load.Store(int32(len(cn.inflight)))
	cn.mu.Unlock()
	cn.p.c.stats.slowDials.Add(1)
	for _, ev := range moved {
		cn.p.c.tell(ev.c, ev, false)
	}
}

// expireOrphans drops orphans written longer than stallAfter ago: the
// server (which answered others since, or the connection would be stalled)
// skipped them. Called with mu held.
func (cn *conn) expireOrphans(now int64, stallAfter time.Duration) {
	for e := cn.head; e != nil && now-e.sentAt > int64(stallAfter); {
		next := e.next
		if e.c == nil {
			cn.drop(e)
		}
		e = next
	}
	cn.load.Store(int32(len(cn.inflight)))
}

// isServerClose reports whether err means the server closed or reset the
// connection.
func isServerClose(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
