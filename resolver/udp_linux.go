//go:build linux && !podnsportable

package resolver

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpSocket is a UDP socket read with blocking system calls on a thread of its own, outside Go's
// network poller: through the poller each packet would also cost an epoll wake-up, a failed read, a
// goroutine park and unpark and futex wakes of other threads, more than answering it from the cache.
// Here a busy socket costs two system calls a packet, recvfrom and sendto, as in a C server.
//
// While packets keep coming, the reader blocks in recvfrom as a raw system call, keeping its P (Go's
// scheduler slot): the runtime's system-call bookkeeping (handing the P off, waking sysmon, taking a P
// back) costs more than a cache hit. Holding a P is why main runs GOMAXPROCS above the number of
// readers (Server.MinProcs). When the socket goes quiet (quietReads), the reader switches to an
// ordinary blocking system call, which gives the P back: a raw call is interrupted every ~10 ms by the
// runtime's preemption signal, which an idle podns must not pay.
type udpSocket struct {
	fd     int
	local  netip.AddrPort
	misses *missQueue
	out    outbox
}

// udpReadTimeout bounds how long a reader blocks, so that it notices Shutdown even if the wake-up is
// lost; one wake-up a second per reader is no cost at idle.
const udpReadTimeout = 1

func listenUDP(addr string) (*udpSocket, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listening on udp %s: %w", addr, err)
	}
	family, sa := sockaddr(ap)
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("listening on udp %s: %w", addr, err)
	}
	tv := unix.Timeval{Sec: udpReadTimeout}
	if err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err == nil {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, udpRcvbuf)
	}
	if err == nil {
		err = unix.Bind(fd, sa)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listening on udp %s: %w", addr, err)
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listening on udp %s: %w", addr, err)
	}
	q, err := newMissQueue()
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listening on udp %s: miss queue: %w", addr, err)
	}
	u := &udpSocket{fd: fd, misses: q}
	switch b := bound.(type) {
	case *unix.SockaddrInet4:
		u.local = netip.AddrPortFrom(netip.AddrFrom4(b.Addr), uint16(b.Port))
	case *unix.SockaddrInet6:
		u.local = netip.AddrPortFrom(netip.AddrFrom16(b.Addr), uint16(b.Port))
	}
	return u, nil
}

func sockaddr(ap netip.AddrPort) (int, unix.Sockaddr) {
	if ap.Addr().Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func (u *udpSocket) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(u.local) }

// wake makes blocked readers return (shutdown(SHUT_RD) wakes a blocked recvfrom on Linux).
func (u *udpSocket) wake() { unix.Shutdown(u.fd, unix.SHUT_RD) }

func (u *udpSocket) Close() error {
	u.misses.close()
	return unix.Close(u.fd)
}

// peer is a client's raw socket address, copied by value to the goroutine that answers a miss.
type peer struct {
	sa  unix.RawSockaddrInet6 // large enough for either family
	len uint32
}

// recv blocks for one packet, with a raw system call when busy is set. ok is false on a timeout or an
// interruption; err is set when the socket is unusable (closed, shut down).
func (u *udpSocket) recv(buf []byte, from *peer, busy bool) (n int, ok bool, err error) {
	call := syscall.Syscall6
	if busy {
		call = syscall.RawSyscall6
	}
	return u.recvfrom(call, buf, from, 0)
}

// recvNow is recv without waiting: ok is false when no packet waits.
func (u *udpSocket) recvNow(buf []byte, from *peer) (n int, ok bool, err error) {
	return u.recvfrom(syscall.RawSyscall6, buf, from, unix.MSG_DONTWAIT)
}

func (u *udpSocket) recvfrom(call func(trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, uintptr, syscall.Errno),
	buf []byte, from *peer, flags uintptr) (n int, ok bool, err error) {
	from.len = uint32(unsafe.Sizeof(from.sa))
	r, _, errno := call(unix.SYS_RECVFROM, uintptr(u.fd), uintptr(unsafe.Pointer(&buf[0])),
		uintptr(len(buf)), flags, uintptr(unsafe.Pointer(&from.sa)), uintptr(unsafe.Pointer(&from.len)))
	switch errno {
	case 0:
		if r == 0 && from.len == 0 { // shut down
			return 0, false, net.ErrClosed
		}
		return int(r), true, nil
	case unix.EAGAIN, unix.EINTR:
		return 0, false, nil
	}
	return 0, false, errno
}

// send writes one reply to a client.
func (u *udpSocket) send(b []byte, to *peer) error {
	_, _, errno := syscall.Syscall6(unix.SYS_SENDTO, uintptr(u.fd), uintptr(unsafe.Pointer(&b[0])),
		uintptr(len(b)), 0, uintptr(unsafe.Pointer(&to.sa)), uintptr(to.len))
	if errno != 0 {
		return errno
	}
	return nil
}
