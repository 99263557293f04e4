//go:build linux

package resolver

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/podns/podns/cache"
)

// udpSocket is a UDP socket podns reads with blocking system calls on a thread of its own, outside Go's
// network poller. Through the poller, a packet also cost an epoll wake-up, a failed read, a goroutine
// park and unpark and futex wakes of other threads: most of the CPU per query. Here a busy socket costs
// two system calls a packet, recvfrom and sendto, as in a C server (README, "Performance").
//
// While packets keep coming, the reader blocks in recvfrom as a raw system call, keeping its P (Go's
// scheduler slot): the runtime's system-call bookkeeping (handing the P off, waking sysmon, taking a P
// back) costs more than answering from the cache. Holding a P is why main runs GOMAXPROCS above the
// number of readers. When the socket goes quiet, the reader switches to an ordinary blocking system
// call, which gives the P back, so an idle podns costs nothing: a raw call is interrupted every ~10 ms
// by the runtime's preemption signal, which at idle would add up to about half a percent of a core.
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
	u.misses.f.Close()
	return unix.Close(u.fd)
}

// peer is a client's raw socket address, copied by value to the goroutine that answers a miss.
type peer struct {
	sa  unix.RawSockaddrInet6 // large enough for either family
	len uint32
}

// quietReads is how many reads in a row may end without a packet (a timeout, or the ~10 ms preemption
// signal) before a reader gives its P back: about 100-200 ms of silence.
const quietReads = 16

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

// maxHeld bounds the packets a reader reads while misses wait to be written upstream: under a steady
// flood the socket never empties, and the first miss of a batch must not wait for the whole flood.
const maxHeld = 32

// send writes one reply to a client.
func (u *udpSocket) send(b []byte, to *peer) error {
	_, _, errno := syscall.Syscall6(unix.SYS_SENDTO, uintptr(u.fd), uintptr(unsafe.Pointer(&b[0])),
		uintptr(len(b)), 0, uintptr(unsafe.Pointer(&to.sa)), uintptr(to.len))
	if errno != 0 {
		return errno
	}
	return nil
}

// serveUDP is one of Config.Readers loops reading a UDP socket on a locked thread. A cache hit is
// answered right here, with the loop's own buffers: no goroutine, no allocation. A common miss has its
// query queued upstream here (startMiss) and is answered where the reply is read; any other miss is
// copied out and queued for the dispatcher, which resolves it on its own goroutine. Either way the
// loop keeps reading.
func (s *Server) serveUDP(u *udpSocket) {
	defer s.loops.Done()
	defer u.misses.readerDone()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	in := make([]byte, maxUDPQuery)
	out := make([]byte, 0, 4096)
	var from peer
	quiet := quietReads // start quiet: no P held until the first packet
	held := 0           // packets read since the first miss queued upstream and not yet written
	defer func() {
		if held > 0 {
			s.flushQueued()
		}
	}()
	for {
		var n int
		var ok bool
		var err error
		if held > 0 {
			// Queries wait to go upstream: read on while packets wait, then write them all.
			if n, ok, err = u.recvNow(in, &from); !ok && err == nil || held >= maxHeld {
				s.flushQueued()
				held = 0
				if !ok {
					continue
				}
			}
		} else {
			n, ok, err = u.recv(in, &from, quiet < quietReads)
		}
		if s.isClosing() {
			return
		}
		if err != nil {
			s.log.Warn().Err(err).Msg("reading udp")
			return
		}
		if !ok {
			quiet = min(quiet+1, quietReads)
			continue
		}
		quiet = 0
		if held > 0 {
			held++
		}
		pkt := in[:n]
		q, rc := parseQuery(pkt)
		if rc == rcodeDrop {
			s.stats.dropped.Add(1)
			continue
		}
		if rc == 0 {
			if reply, ok := s.answerFromCache(out[:0], &q, udpLimit(&q)); ok {
				s.sendUDP(u, reply, &from)
				out = reply[:0]
				continue
			}
		}
		s.handlers.Add(1)
		if rc == 0 && s.startMiss(u, &q, pkt, &from) {
			held = max(held, 1)
			continue
		}
		u.misses.push(miss{from: from, pkt: append([]byte(nil), pkt...)})
	}
}

// udpClient is a UDP client waiting for the answer to its miss: where to send it, and its query.
type udpClient struct {
	u    *udpSocket
	from peer
	pkt  []byte
}

// startMiss queues a miss's upstream query from the reader's thread when it is the common kind: a name
// that is not searched, with nothing cached and no lookup of it in flight. The reader writes the
// queries it queued (aup.Flush) when no packet waits, so a burst of misses goes upstream in one write.
// The reply is cached and the client answered on the goroutine that reads it (call.Receive): no
// goroutine waits, and no thread is woken but the one the reply wakes, as in an event-loop server.
// false: the miss takes the worker path (the dispatcher), which handles every case.
func (s *Server) startMiss(u *udpSocket, q *query, pkt []byte, from *peer) bool {
	if s.aup == nil || q.qclass != dns.ClassINET || s.cfg.AAAAFilter && q.qtype == dns.TypeAAAA ||
		s.view(q) != cache.ViewUpstream {
		return false
	}
	name := lowerName(q.qname)
	key, err := keyFor(name, q.qtype, q.qclass, q.do, q.cd, cache.ViewUpstream)
	if err != nil {
		return false
	}
	if _, st := s.cache.Get(key); st != cache.Miss {
		return false // a stale entry to fall back on (or one stored since the reader looked)
	}
	if !s.acquire() {
		return false // the worker path answers SERVFAIL and counts it
	}
	c := s.register(key, upstreamQuestion{name: name, qtype: q.qtype, qclass: q.qclass, do: q.do, cd: q.cd})
	if c == nil {
		s.release()
		return false // asked already: a worker waits for that lookup
	}
	s.stats.cacheMisses.Add(1)
	c.client = &udpClient{u: u, from: *from, pkt: append([]byte(nil), pkt...)}
	if other, ok := s.pairFor(q.qtype, q.qclass); ok {
		s.lookupFor(name, other, q.qclass, q.do, q.cd, false, startQueued, true)
	}
	s.runAsync(c, true)
	return true
}

// answerMiss answers the client of a call startMiss sent, once the call is settled.
func (s *Server) answerMiss(c *call) {
	defer s.handlers.Done()
	defer s.release()
	cl := c.client
	q, _ := parseQuery(cl.pkt) // it parsed when it was read
	reply := s.reply(make([]byte, 0, 512), &q, c.result(), udpLimit(&q))
	s.sendMiss(cl.u, reply, &cl.from)
}

// resolveUDP answers a miss, building the reply in buf (a worker's, reused: returned, maybe grown).
func (s *Server) resolveUDP(u *udpSocket, from peer, pkt []byte, buf []byte) []byte {
	defer s.handlers.Done()
	q, rc := parseQuery(pkt)
	reply := s.answer(buf[:0], &q, rc, udpLimit(&q))
	s.sendMiss(u, reply, &from)
	return reply[:0]
}

func (s *Server) sendUDP(u *udpSocket, reply []byte, to *peer) {
	if err := u.send(reply, to); err != nil && !s.isClosing() {
		s.log.Debug().Err(err).Msg("writing udp reply")
	}
}
