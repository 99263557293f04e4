package resolver

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// serveTCP accepts client connections until the listener closes.
func (s *Server) serveTCP(ln net.Listener) {
	defer s.loops.Done()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosing() {
				return
			}
			// Out of file descriptors and the like: wait a little rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn().Err(err).Dur("retry_in", backoff).Msg("accepting tcp")
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !s.track(c) {
			c.Close()
			continue
		}
		s.loops.Add(1)
		go s.serveTCPConn(c)
	}
}

// track registers a client connection, refusing it over MaxTCPConns or while shutting down.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() || len(s.tcpConns) >= s.cfg.MaxTCPConns {
		s.stats.tcpRefused.Add(1)
		return false
	}
	s.tcpConns[c] = struct{}{}
	return true
}

// tcpWriteTimeout bounds a reply's write to a client that stopped reading, so its connection's
// goroutines end; a reader on loopback takes microseconds.
const tcpWriteTimeout = 5 * time.Second

// tcpConn is one client connection. RFC 7766 §6.2.1.1: a client may pipeline queries and the server
// answers each as soon as it is ready, in any order; each reply is one length-prefixed write.
type tcpConn struct {
	c       net.Conn
	writeMu sync.Mutex // serialises whole frames
	pending sync.WaitGroup
}

func (s *Server) serveTCPConn(c net.Conn) {
	defer s.loops.Done()
	tc := &tcpConn{c: c}
	defer func() {
		tc.pending.Wait()
		s.mu.Lock()
		delete(s.tcpConns, c)
		s.mu.Unlock()
		c.Close()
	}()
	var lenBuf [2]byte
	out := make([]byte, 0, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(s.cfg.TCPIdle))
		if s.isClosing() {
			return
		}
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		pkt := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, pkt); err != nil {
			return
		}
		q, rc := parseQuery(pkt)
		if rc == rcodeDrop {
			s.stats.dropped.Add(1)
			continue
		}
		if rc == 0 {
			if reply, ok := s.answerFromCache(append(out[:0], 0, 0), &q, 0); ok {
				tc.write(reply)
				out = reply[:0]
				continue
			}
		}
		s.handlers.Add(1)
		tc.pending.Add(1)
		go func() {
			defer s.handlers.Done()
			defer tc.pending.Done()
			q, rc := parseQuery(pkt)
			tc.write(s.answer([]byte{0, 0}, &q, rc, 0))
		}()
	}
}

// write sends one framed reply; frame[0:2] is reserved for the length.
func (tc *tcpConn) write(frame []byte) {
	binary.BigEndian.PutUint16(frame, uint16(len(frame)-2))
	tc.writeMu.Lock()
	defer tc.writeMu.Unlock()
	tc.c.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
	tc.c.Write(frame)
}
