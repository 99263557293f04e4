//go:build !linux || podnsportable

package resolver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"
)

// udpSocket is the portable reader's socket: a net.UDPConn, read through Go's network poller, with the
// API of the Linux one (udp_linux.go), which answers a packet with fewer system calls and wake-ups.
type udpSocket struct {
	conn   *net.UDPConn
	misses *missQueue
	out    outbox
}

// udpReadTimeout bounds how long a reader blocks, so that it notices Shutdown even if the wake-up is
// lost.
const udpReadTimeout = time.Second

func listenUDP(addr string) (*udpSocket, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listening on udp %s: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, fmt.Errorf("listening on udp %s: %w", addr, err)
	}
	if err := conn.SetReadBuffer(udpRcvbuf); err != nil {
		conn.Close()
		return nil, fmt.Errorf("listening on udp %s: %w", addr, err)
	}
	q, err := newMissQueue()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("listening on udp %s: miss queue: %w", addr, err)
	}
	return &udpSocket{conn: conn, misses: q}, nil
}

func (u *udpSocket) LocalAddr() net.Addr { return u.conn.LocalAddr() }

// wake makes blocked readers return, leaving the socket open for the replies still to send.
func (u *udpSocket) wake() { u.conn.SetReadDeadline(time.Unix(1, 0)) }

func (u *udpSocket) Close() error {
	u.misses.close()
	return u.conn.Close()
}

// peer is a client's address, copied by value to whatever answers its miss.
type peer struct {
	addr netip.AddrPort
}

// recv blocks for one packet, up to udpReadTimeout (busy means nothing here). ok is false on a
// timeout; err is set when the socket is unusable.
func (u *udpSocket) recv(buf []byte, from *peer, busy bool) (n int, ok bool, err error) {
	u.conn.SetReadDeadline(time.Now().Add(udpReadTimeout))
	n, ap, err := u.conn.ReadFromUDPAddrPort(buf)
	switch {
	case err == nil:
		from.addr = ap
		return n, true, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 0, false, nil
	}
	return 0, false, err
}

// recvNow would read a packet already waiting; the poller cannot tell one waits without a read that
// may block, so it reports none, and the reader writes its queued misses at once.
func (u *udpSocket) recvNow(buf []byte, from *peer) (n int, ok bool, err error) {
	return 0, false, nil
}

// send writes one reply to a client.
func (u *udpSocket) send(b []byte, to *peer) error {
	_, err := u.conn.WriteToUDPAddrPort(b, to.addr)
	return err
}
