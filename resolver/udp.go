package resolver

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
