package resolver

import (
	"sync"
	"sync/atomic"
)

// missQueue carries a socket's cache misses that startMiss does not take (stale entries, search walks,
// bad names...) from its reader threads to a dispatcher goroutine, which hands each to a worker
// goroutine. A reader does not start the worker itself: it holds its P while it blocks in recvfrom, so
// a goroutine it started would wait in that P's run-next slot, which another P takes only after a
// sleep of its own. The dispatcher sleeps on a wakeup (an eventfd in the network poller on Linux) that
// a reader signals without blocking; while it is awake, misses queue without any system call.
type missQueue struct {
	wakeup

	work chan miss    // unbuffered: to an idle worker
	idle atomic.Int32 // workers waiting on work

	mu      sync.Mutex // guards the fields below
	items   []miss
	asleep  bool // the dispatcher found the queue empty and waits for the eventfd
	closed  bool // no reader pushes any more
	readers int  // readers still running: set by Server.Start
}

// miss is a query the fast path could not answer, copied out of the reader's buffer.
type miss struct {
	from peer
	pkt  []byte
}

func newMissQueue() (*missQueue, error) {
	w, err := newWakeup()
	if err != nil {
		return nil, err
	}
	return &missQueue{wakeup: w, work: make(chan miss)}, nil
}

// push queues m, waking the dispatcher if it sleeps.
func (q *missQueue) push(m miss) {
	q.mu.Lock()
	q.items = append(q.items, m)
	wake := q.asleep
	q.asleep = false
	q.mu.Unlock()
	if wake {
		q.signal()
	}
}

// readerDone is called by each reader as it stops; after the last, the dispatcher drains the queue and
// returns.
func (q *missQueue) readerDone() {
	q.mu.Lock()
	q.readers--
	last := q.readers == 0
	if last {
		q.closed = true
		q.asleep = false
	}
	q.mu.Unlock()
	if last {
		q.signal()
	}
}

// take moves the queued misses into batch (emptied first) and returns it. An empty batch means the
// dispatcher should wait for the eventfd, or stop when closed is set.
func (q *missQueue) take(batch []miss) (_ []miss, closed bool) {
	clear(batch)
	q.mu.Lock()
	defer q.mu.Unlock()
	batch, q.items = q.items, batch[:0]
	if len(batch) == 0 {
		q.asleep = !q.closed
	}
	return batch, q.closed
}

// dispatch hands every miss of u's readers to a worker (an idle one, else a new one) until they stop.
// The wakeup closes with the socket.
func (s *Server) dispatch(u *udpSocket) {
	defer s.loops.Done()
	q := u.misses
	var batch []miss
	for {
		var closed bool
		batch, closed = q.take(batch)
		for _, m := range batch {
			select {
			case q.work <- m: // an idle worker takes it
			default:
				s.loops.Add(1)
				go s.missWorker(u, m)
			}
		}
		if len(batch) > 0 {
			continue
		}
		if closed {
			close(q.work) // idle workers stop
			return
		}
		if err := q.wait(); err != nil {
			if !s.isClosing() {
				s.log.Error().Err(err).Msg("waiting on the miss queue")
			}
			return
		}
	}
}

// maxIdleWorkers bounds the workers kept waiting for misses: enough for a burst at the miss rates a pod
// sees, while their stacks stay a small part of podns's memory.
const maxIdleWorkers = 64

// missWorker answers m, then further misses of u, while no more than maxIdleWorkers others wait. A
// worker kept between misses keeps its grown stack: a new goroutine per miss would grow one again (a
// copy each time it doubles) through the resolver, the cache and the upstream client.
func (s *Server) missWorker(u *udpSocket, m miss) {
	defer s.loops.Done()
	q := u.misses
	buf := make([]byte, 0, 512)
	for {
		buf = s.resolveUDP(u, m.from, m.pkt, buf)
		if q.idle.Add(1) > maxIdleWorkers {
			q.idle.Add(-1)
			return
		}
		var ok bool
		m, ok = <-q.work
		q.idle.Add(-1)
		if !ok {
			return
		}
	}
}
