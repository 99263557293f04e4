package resolver

import (
	"encoding/binary"

	"github.com/miekg/dns"

	"github.com/podns/podns/cache"
)

// maxTCPMessage is the largest message a TCP frame carries (RFC 1035 §4.2.2: a 2-byte length).
const maxTCPMessage = 65535

// answerFromCache is the hot path: a fresh cached reply, patched for this client, appended to dst (which
// may already hold a TCP length prefix). ok is false when the slow path must answer: a miss, a stale
// entry, or a reply over the client's limit (0: the TCP maximum).
func (s *Server) answerFromCache(dst []byte, q *query, limit int) (out []byte, ok bool) {
	if s.cfg.AAAAFilter && q.qtype == dns.TypeAAAA {
		return dst, false
	}
	var keyBuf [maxNameWire + 16]byte
	view := s.view(q)
	key := cache.AppendKey(keyBuf[:0], q.qname, q.qtype, q.qclass, q.do, q.cd, view)
	now := s.now() // one clock read for the lookup and the TTLs
	e, st := s.cache.GetAt(key, now)
	switch st {
	case cache.Fresh:
	case cache.Prefetch:
		s.prefetch(q, e)
	default:
		return dst, false
	}
	if view == cache.ViewUpstream && s.pairs.takeRead(e) { // paired fetches are direct lookups
		s.pairRead()
	}
	start := len(dst)
	out = e.AppendReply(dst, q.id, q.rd, q.qname, now)
	if q.edns {
		out = appendOPT(out, start, q.do, 0)
	}
	if len(out)-start > limitOr(limit) {
		return dst, false
	}
	s.stats.cacheHits.Add(1)
	s.stats.countReply(q.qtype, out[start:])
	return out, true
}

func limitOr(limit int) int {
	if limit <= 0 {
		return maxTCPMessage
	}
	return limit
}

// view tells the cache key space of a question: an answer composed by the search walk is stored apart
// from the upstream's answer for the same name.
func (s *Server) view(q *query) byte {
	if q.qclass != dns.ClassINET {
		return cache.ViewUpstream
	}
	var lower [maxNameWire]byte
	if s.search.expandsWire(lowerWire(lower[:0], q.qname)) {
		return cache.ViewSearch
	}
	return cache.ViewUpstream
}

// answer is the slow path: it resolves q (or builds the error reply rc asks for) and appends the wire
// reply to dst, cut to limit.
func (s *Server) answer(dst []byte, q *query, rc int, limit int) []byte {
	if rc != dns.RcodeSuccess {
		return s.errorReply(dst, q, rc)
	}
	if q.qclass == dns.ClassCHAOS {
		return s.finish(dst, q, result{msg: chaos(q)}, limit)
	}
	if !s.acquire() {
		s.stats.overloaded.Add(1)
		return s.errorReply(dst, q, dns.RcodeServerFailure)
	}
	defer s.release()
	// No deadline of its own: the client waits for a flight, which ends within the Upstream's
	// timeout, or a search walk's (walkFunc).
	return s.reply(dst, q, s.resolve(s.bg, q), limit)
}

// result is an answer to a client's question: a cache entry (cheap to format) or a message. The zero
// result is a failure.
type result struct {
	entry *cache.Entry
	msg   *dns.Msg // read-only: it may be shared with other queries
}

// answered: the result is an answer (NOERROR or NXDOMAIN), not a failure.
func (r result) answered() bool {
	if r.entry != nil {
		return answeredEntry(r.entry)
	}
	return answered(r.msg)
}

// reply formats res for the client (finish), or SERVFAIL for the zero result.
func (s *Server) reply(dst []byte, q *query, res result, limit int) []byte {
	if res.entry == nil && res.msg == nil {
		return s.errorReply(dst, q, dns.RcodeServerFailure)
	}
	return s.finish(dst, q, res, limit)
}

// finish formats res for the client: its ID, RD and question spelling, RA, its OPT, and truncation to
// limit with TC set when whole records had to go (RFC 2181 §9).
func (s *Server) finish(dst []byte, q *query, res result, limit int) []byte {
	max := limitOr(limit)
	start := len(dst)
	if res.entry != nil {
		out := res.entry.AppendReply(dst, q.id, q.rd, q.qname, s.now())
		if q.edns {
			out = appendOPT(out, start, q.do, 0)
		}
		if len(out)-start <= max {
			s.stats.countReply(q.qtype, out[start:])
			return out
		}
		m, err := res.entry.Msg(s.now())
		if err != nil {
			return s.errorReply(dst[:start], q, dns.RcodeServerFailure)
		}
		res.msg = m
	}
	m := s.clientMsg(q, res.msg)
	if m.Len() > max {
		m.Truncate(max)
	}
	packed, err := m.Pack()
	if err != nil {
		s.log.Warn().Err(err).Str("name", m.Question[0].Name).Msg("packing reply")
		return s.errorReply(dst[:start], q, dns.RcodeServerFailure)
	}
	s.stats.countReply(q.qtype, packed)
	return append(dst, packed...)
}

// clientMsg copies the shared message r into one addressed to the client.
func (s *Server) clientMsg(q *query, r *dns.Msg) *dns.Msg {
	m := &dns.Msg{
		MsgHdr:   r.MsgHdr,
		Question: []dns.Question{{Name: nameString(q.qname), Qtype: q.qtype, Qclass: q.qclass}},
		Answer:   append([]dns.RR(nil), r.Answer...),
		Ns:       append([]dns.RR(nil), r.Ns...),
	}
	m.Compress = true
	for _, rr := range r.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			m.Extra = append(m.Extra, rr)
		}
	}
	m.Id = q.id
	m.Response = true
	m.Opcode = dns.OpcodeQuery
	m.RecursionDesired = q.rd
	m.RecursionAvailable = true // glibc takes an empty NOERROR without RA for a referral, and skips it
	m.CheckingDisabled = q.cd
	if q.edns {
		m.SetEdns0(ednsUDPSize, q.do)
	}
	return m
}

// errorReply appends a reply with rcode and no records: the question is echoed when it was read (glibc
// drops a reply whose question does not match, and would wait out its timeout).
func (s *Server) errorReply(dst []byte, q *query, rcode int) []byte {
	start := len(dst)
	flags := uint16(flagQR|flagRA) | uint16(q.opcode&0xF)<<11 | uint16(rcode&0xF)
	if q.rd {
		flags |= flagRD
	}
	if q.cd {
		flags |= flagCD
	}
	dst = binary.BigEndian.AppendUint16(dst, q.id)
	dst = binary.BigEndian.AppendUint16(dst, flags)
	qd := uint16(0)
	if q.qname != nil {
		qd = 1
	}
	dst = append(dst, byte(qd>>8), byte(qd), 0, 0, 0, 0, 0, 0)
	if q.qname != nil {
		dst = append(dst, q.qname...)
		dst = binary.BigEndian.AppendUint16(dst, q.qtype)
		dst = binary.BigEndian.AppendUint16(dst, q.qclass)
	}
	if q.edns {
		dst = appendOPT(dst, start, q.do, rcode)
	}
	s.stats.countReply(q.qtype, dst[start:])
	return dst
}
