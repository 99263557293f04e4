//go:build !linux || podnsportable

package resolver

// outbox is empty where there is no sendmmsg: each reply to a miss is its own write.
type outbox struct{}

// sendMiss sends a reply to a miss.
func (s *Server) sendMiss(u *udpSocket, reply []byte, to *peer) {
	if len(reply) > 0 {
		s.sendUDP(u, reply, to)
	}
}
