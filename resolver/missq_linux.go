//go:build linux

package resolver

import (
	"encoding/binary"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// missQueue carries a socket's cache misses from its reader threads to a dispatcher goroutine, which
// starts each one's goroutine. A reader holds its P while it blocks in recvfrom, so a goroutine it
// started itself would sit in that P's run queue slot reserved for the next goroutine, where another
// P may only take it after a 3 µs sleep: with an idle thread woken to do it, that was two context
// switches and a sleep per miss. The dispatcher instead sleeps in Go's network poller on an eventfd:
// one write wakes it, on the thread that then runs the miss's upstream exchange. While it is awake,
// misses queue without any system call.
type missQueue struct {
	fd int      // eventfd, non-blocking: written raw by the readers
	f  *os.File // the same fd, read through the poller by the dispatcher

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
	return &missQueue{fd: fd, f: os.NewFile(uintptr(fd), "eventfd")}, nil
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

// dispatch starts a goroutine for every miss of u's readers until they stop. The eventfd closes with
// the socket.
func (s *Server) dispatch(u *udpSocket) {
	defer s.loops.Done()
	q := u.misses
	var batch []miss
	var drain [8]byte
	for {
		var closed bool
		batch, closed = q.take(batch)
		for _, m := range batch {
			go s.resolveUDP(u, m.from, m.pkt)
		}
		if len(batch) > 0 {
			continue
		}
		if closed {
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
