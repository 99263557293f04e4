package resolver

import (
	"errors"
	"net"
	"net/netip"
)

// serveUDP is one of Config.Readers loops reading a UDP socket. A cache hit is answered right here, with
// the loop's own buffers: no goroutine, no allocation. A miss is copied out and resolved on its own
// goroutine so the loop keeps reading.
func (s *Server) serveUDP(pc *net.UDPConn) {
	defer s.loops.Done()
	in := make([]byte, maxUDPQuery)
	out := make([]byte, 0, 4096)
	for {
		n, addr, err := pc.ReadFromUDPAddrPort(in)
		if err != nil {
			if s.isClosing() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn().Err(err).Msg("reading udp")
			continue
		}
		pkt := in[:n]
		q, rc := parseQuery(pkt)
		if rc == rcodeDrop {
			s.stats.dropped.Add(1)
			continue
		}
		if rc == 0 {
			if reply, ok := s.answerFromCache(out[:0], &q, udpLimit(&q)); ok {
				s.writeUDP(pc, reply, addr)
				out = reply[:0]
				continue
			}
		}
		s.handlers.Add(1)
		go s.resolveUDP(pc, addr, append([]byte(nil), pkt...))
	}
}

func (s *Server) resolveUDP(pc *net.UDPConn, addr netip.AddrPort, pkt []byte) {
	defer s.handlers.Done()
	q, rc := parseQuery(pkt)
	reply := s.answer(nil, &q, rc, udpLimit(&q))
	s.writeUDP(pc, reply, addr)
}

func (s *Server) writeUDP(pc *net.UDPConn, reply []byte, addr netip.AddrPort) {
	if _, err := pc.WriteToUDPAddrPort(reply, addr); err != nil && !s.isClosing() {
		s.log.Debug().Err(err).Stringer("client", addr).Msg("writing udp reply")
	}
}

// udpLimit is the largest UDP reply the client accepts: 512 bytes without EDNS (RFC 1035 §4.2.1), its
// advertised payload size with it (RFC 6891 §6.2.5: values under 512 are treated as 512).
func udpLimit(q *query) int {
	if !q.edns || q.udpSize < 512 {
		return 512
	}
	return int(q.udpSize)
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}
