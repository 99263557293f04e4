package resolver

import (
	"bytes"
	"runtime"

	"github.com/miekg/dns"

	"github.com/podns/podns/cache"
)

// The UDP path (ARCHITECTURE.md, "UDP hit" and "UDP miss"): Config.Readers loops read each socket on
// locked threads (udpSocket: a raw recvfrom on Linux, net.UDPConn elsewhere). A cache hit is answered
// by the reader with its own buffers: no goroutine, no allocation. A miss of a name that is not searched
// is handed to its upstream call, which answers it where the reply is read (startMiss); every other miss
// goes to a worker (missQueue), which resolves it as the TCP path does.

// udpLimit is the largest UDP reply the client accepts: 512 bytes without EDNS (RFC 1035 §4.2.1), its
// advertised payload size with it (RFC 6891 §6.2.5: values under 512 are treated as 512).
func udpLimit(q *query) int {
	if !q.edns || q.udpSize < 512 {
		return 512
	}
	return int(q.udpSize)
}

func (s *Server) isClosing() bool { return s.closing.Load() }

// quietReads is how many reads in a row may end without a packet (a timeout, or on Linux the runtime's
// preemption signal every ~10 ms) before a reader stops holding its P: about 100-200 ms of silence.
const quietReads = 16

// udpRcvbuf is the receive buffer a UDP socket asks for (SO_RCVBUF; the kernel caps it at
// net.core.rmem_max and counts each datagram's overhead against it). The common default, 208 KiB, holds
// some 200 queries: 20 ms of a burst of 10,000 a second, less than a reader can lose to a busy node's
// scheduler or a GC cycle, and every datagram past it is dropped with no reply (the client waits out
// its timeout, the stall podns is there to end). 4 MiB holds seconds of a pod's load; it is a bound,
// not an allocation: an idle socket holds nothing.
const udpRcvbuf = 4 << 20

// maxHeld bounds the packets a reader reads while misses wait to be written upstream: under a steady
// flood the socket never empties, and the first miss of a batch must not wait for the whole flood.
const maxHeld = 32

// serveUDP is one reader loop of u, on a locked thread. While misses it handed upstream wait to be
// written (held), it reads on without blocking while packets wait, then writes them all in one Flush:
// a burst of misses goes upstream in one write.
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
	u      *udpSocket
	from   peer
	pkt    []byte
	derive *derivation // a searched question's (startMiss)
}

// startMiss gives a miss to its upstream call, from the reader's thread, when it is the common kind: a
// name that is not searched, with nothing cached (lookupDirect with a client). The call answers it where
// the reply is read (answerMiss): no goroutine waits, and no thread is woken but the one the reply
// wakes. false: the miss takes the worker path, which handles every case (stale entries, walks, bad
// names, a full MaxInFlight).
//
// A searched name goes this way too when its walk would ask only the name as given (searchDirect): the
// derivation goes with the client, and its reply is cached under the searched question when it comes.
func (s *Server) startMiss(u *udpSocket, q *query, pkt []byte, from *peer) bool {
	if q.qclass != dns.ClassINET || s.cfg.AAAAFilter && q.qtype == dns.TypeAAAA {
		return false
	}
	name := lowerName(q.qname)
	var d *derivation
	if s.view(q) != cache.ViewUpstream {
		// The key is built where it costs nothing: most searched misses walk, on the worker path,
		// which builds its own; a direct one's derivation keeps a copy.
		var keyBuf [maxNameWire + 16]byte
		key := cache.AppendKey(keyBuf[:0], q.qname, q.qtype, q.qclass, q.do, q.cd, cache.ViewSearch)
		if _, st := s.cache.Get(key); st != cache.Miss {
			return false // a stale answer to fall back on, or one cached since the reader looked
		}
		if d = s.searchDirect(name, q.qclass); d == nil {
			return false
		}
		d.key = bytes.Clone(key)
	}
	if !s.acquire() {
		return false // the worker path answers SERVFAIL and counts it
	}
	cl := &udpClient{u: u, from: *from, pkt: append([]byte(nil), pkt...), derive: d}
	h, sent := s.lookupDirect(question{name: name, qtype: q.qtype, qclass: q.qclass, do: q.do, cd: q.cd}, cl)
	if h.call == nil {
		s.release()
		return false
	}
	if d != nil {
		d.count(s, sent)
	}
	return true
}

// answerMiss answers a client startMiss gave to c, once c is settled.
func (s *Server) answerMiss(c *call, cl *udpClient) {
	defer s.handlers.Done()
	defer s.release()
	q, _ := parseQuery(cl.pkt) // it parsed when it was read
	reply := s.reply(make([]byte, 0, 512), &q, s.derived(cl.derive, c.result()), udpLimit(&q))
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
