//go:build linux && !podnsportable

package resolver

import (
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// outbox gathers the replies to misses that become ready together and sends them with one sendmmsg.
// Upstream replies arrive in bursts (one TCP read holds several): sent one by one, each reply would be
// a system call and often a wake-up of the client's thread.
type outbox struct {
	mu    sync.Mutex // guards the fields below
	msgs  []outMsg
	bytes []byte // the replies, back to back
	// The slices of the last batch sent, reused by the next but one.
	spareMsgs  []outMsg
	spareBytes []byte
}

type outMsg struct {
	to       peer
	off, len int
}

// mmsghdr is struct mmsghdr (sendmmsg(2)), which x/sys/unix does not define. Go pads it as C does:
// to 64 bytes on 64-bit Linux, 32 on 32-bit.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// maxBatch bounds one sendmmsg (the kernel's UIO_MAXIOV is 1024).
const maxBatch = 64

// sendMiss sends a reply to a miss: queued in the outbox, the first reply of a burst yields once so
// that the workers already runnable queue theirs, then sends the lot. With nothing else runnable the
// yield returns at once. Every reply is sent before the worker that sends it is done (Shutdown waits
// for it), and the later replies of a burst were queued before that worker took the batch.
func (s *Server) sendMiss(u *udpSocket, reply []byte, to *peer) {
	if len(reply) == 0 {
		return
	}
	o := &u.out
	o.mu.Lock()
	first := len(o.msgs) == 0
	o.msgs = append(o.msgs, outMsg{to: *to, off: len(o.bytes), len: len(reply)})
	o.bytes = append(o.bytes, reply...)
	o.mu.Unlock()
	if !first {
		return
	}
	runtime.Gosched()
	o.mu.Lock()
	msgs, bytes := o.msgs, o.bytes
	o.msgs, o.bytes, o.spareMsgs, o.spareBytes = o.spareMsgs, o.spareBytes, nil, nil
	o.mu.Unlock()
	s.sendBatch(u, msgs, bytes)
	clear(msgs)
	o.mu.Lock()
	o.spareMsgs, o.spareBytes = msgs[:0], bytes[:0]
	o.mu.Unlock()
}

func (s *Server) sendBatch(u *udpSocket, msgs []outMsg, bytes []byte) {
	var hdrs [maxBatch]mmsghdr
	var iovs [maxBatch]unix.Iovec
	for len(msgs) > 0 {
		n := min(len(msgs), maxBatch)
		for i := range n {
			m := &msgs[i]
			iovs[i].Base = &bytes[m.off]
			iovs[i].SetLen(m.len)
			hdrs[i] = mmsghdr{}
			hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&m.to.sa))
			hdrs[i].hdr.Namelen = m.to.len
			hdrs[i].hdr.Iov = &iovs[i]
			hdrs[i].hdr.SetIovlen(1)
		}
		sent, _, errno := syscall.Syscall6(unix.SYS_SENDMMSG, uintptr(u.fd), uintptr(unsafe.Pointer(&hdrs[0])), uintptr(n), 0, 0, 0)
		if errno != 0 && !s.isClosing() {
			s.log.Debug().Err(errno).Msg("writing udp replies")
		}
		if errno != 0 || sent == 0 {
			sent = 1 // the first one failed: skip it, send the rest
		}
		msgs = msgs[sent:]
	}
}
