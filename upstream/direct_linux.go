//go:build linux

package upstream

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directFD writes to a connection's socket from any goroutine without the network poller: one
// non-blocking write(2), as a raw system call, so that a thread that holds its P while it blocks
// elsewhere (the resolver's UDP readers) keeps it.
type directFD struct {
	rc syscall.RawConn
	fn func(fd uintptr) // made once: a closure per write would be an allocation

	// The write in progress, guarded by the conn's wmu.
	buf   []byte
	n     int
	errno syscall.Errno
}

// newDirectFD returns nil when nc has no file descriptor to write (a net.Pipe in tests).
func newDirectFD(nc net.Conn) *directFD {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	d := &directFD{rc: rc}
	d.fn = func(fd uintptr) {
		r, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&d.buf[0])), uintptr(len(d.buf)))
		d.n, d.errno = int(r), errno
	}
	return d
}

// write writes what the socket takes of b now: n < len(b) when it is full, and an error only when the
// connection is broken. Go's sockets are non-blocking, so the call never blocks. Called with wmu held.
func (d *directFD) write(b []byte) (n int, err error) {
	d.buf = b
	// Control holds a reference on the descriptor: a concurrent Close cannot free its number for reuse.
	if err := d.rc.Control(d.fn); err != nil {
		return 0, err
	}
	d.buf = nil
	switch d.errno {
	case 0:
		return d.n, nil
	case syscall.EAGAIN, syscall.EINTR:
		return 0, nil
	}
	return 0, d.errno
}

// unacked reports whether the server's TCP has not acknowledged everything written on the socket
// (SIOCOUTQ: bytes in the send queue, sent and not acknowledged, or not sent at all): a server gone
// silent behind a ClusterIP acknowledges nothing, a slow one acknowledges the query long before it
// answers. Called by the janitor, never on a query's path.
func (d *directFD) unacked() bool { return d.queued(unix.SIOCOUTQ) }

// unread reports whether bytes the server sent wait in the socket's receive queue (SIOCINQ): an
// answer that arrived while the connection's reader was not running, as when podns itself is short
// of CPU. Called by the pool only when it would otherwise dial.
func (d *directFD) unread() bool { return d.queued(unix.SIOCINQ) }

// queued reports whether the socket's queue that req (SIOCOUTQ, SIOCINQ) measures holds bytes.
func (d *directFD) queued(req uint) bool {
	n := 0
	_ = d.rc.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), req); err == nil {
			n = v
		}
	})
	return n > 0
}
