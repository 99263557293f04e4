//go:build linux

package resolver

import (
	"encoding/binary"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// missQueue carries a socket's cache misses that startMiss does not take (stale entries, search walks,
// lookups to join...) from its reader threads to a dispatcher goroutine, which hands each to a worker
// goroutine. A reader holds its P while it blocks in recvfrom, so a goroutine it
// started itself would sit in that P's run queue slot reserved for the next goroutine, where another
// P may only take it after a 3 µs sleep: with an idle thread woken to do it, that was two context
// switches and a sleep per miss. The dispatcher instead sleeps in Go's network poller on an eventfd:
// one write wakes it, on the thread that then runs the miss's upstream exchange. While it is awake,
// misses queue without any system call.
type missQueue struct {
	fd int      // eventfd, non-blocking: written raw by the readers
	f  *os.File // the same fd, read through the poller by the dispatcher

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
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &missQueue{fd: fd, f: os.NewFile(uintptr(fd), "eventfd"), work: make(chan miss)}, nil
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

// signal adds 1 to the eventfd. A write to an eventfd does not block (only 2^64-2 unread wake-ups
// would), so it is a raw system call: the reader keeps its P.
func (q *missQueue) signal() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(q.fd), uintptr(unsafe.Pointer(&one[0])), 8)
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
// The eventfd closes with the socket.
func (s *Server) dispatch(u *udpSocket) {
	defer s.loops.Done()
	q := u.misses
	var batch []miss
	var drain [8]byte
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
		if _, err := q.f.Read(drain[:]); err != nil {
			if !s.isClosing() {
				s.log.Error().Err(err).Msg("reading the miss queue's eventfd")
			}
			return
		}
	}
}

// maxIdleWorkers bounds the workers kept waiting for misses: enough for a burst at the miss rates a pod
// sees, while their stacks stay a small part of podns's memory.
const maxIdleWorkers = 64

// missWorker answers m, then further misses of u, while no more than maxIdleWorkers others wait. A
// worker kept between misses keeps its stack: a new goroutine per miss grew its stack (a copy each
// time it doubled) through the resolver, the cache and the upstream client, about a tenth of the CPU
// of a miss.
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
