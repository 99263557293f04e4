package cache

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// maxMsgLen is the largest DNS message (RFC 1035 §4.2.2: a 16-bit length prefix on TCP); it also keeps
// every TTL offset within a uint16.
const maxMsgLen = 1<<16 - 1

// maxNameLen is the longest name in wire format (RFC 1035 §2.3.4).
const maxNameLen = 255

// build fills e from a reply stored at now. It returns built=false when the reply cannot be encoded or
// does not answer the key's question; otherwise built=true, and an error when the rules say e must not be
// stored. The reply is not modified.
func (s *settings) build(e *Entry, key []byte, m *dns.Msg, now time.Time) (built bool, _ error) {
	if m == nil || len(m.Question) != 1 || len(key) <= keyName {
		return false, fmt.Errorf("%w: not one question, or a key of %d bytes", ErrBadMessage, len(key))
	}
	q := m.Question[0]
	if q.Qtype != binary.BigEndian.Uint16(key[keyType:]) || q.Qclass != binary.BigEndian.Uint16(key[keyClass:]) {
		return false, ErrBadKey
	}
	if m.Rcode > 0xF {
		// An extended RCODE lives partly in the OPT record, which is per hop and never stored.
		return false, fmt.Errorf("%w: extended rcode %d", ErrUncacheable, m.Rcode)
	}
	wire, err := packForCache(m)
	if err != nil {
		return false, err
	}
	var stack [32]rrInfo
	qnameLen, rrs, err := walk(wire, stack[:0])
	if err != nil || qnameLen > maxNameLen {
		return false, fmt.Errorf("%w: walking packed reply: %v", ErrBadMessage, err)
	}
	if !equalFoldASCII(key[keyName:], wire[headerLen:headerLen+qnameLen]) {
		return false, ErrBadKey
	}
	// miekg/dns packs some records it cannot read back: an SOA unpacked with empty RDATA packs its empty
	// names as nothing and its numbers as zeros; an NSEC3 with truncated RDATA is unpacked leniently and
	// packed with a salt length but no salt (both found by FuzzSetAppendReply). An entry is served many
	// times, so a packed reply that is not all plain records (plainRR, which reads the packed bytes) is
	// worth one unpack (about 0.5 µs, on the miss path only) to never serve one a client cannot parse.
	if !allPlain(wire, rrs) {
		var check dns.Msg
		if err := check.Unpack(wire); err != nil {
			return false, fmt.Errorf("%w: packed reply does not unpack: %w", ErrBadMessage, err)
		}
	}
	return true, s.fill(e, wire, qnameLen, rrs, m.Rcode, q.Qtype, now)
}

// fill makes e the entry of a packed reply walked into rrs, stored at now: its bytes with ID 0, AA
// clear and QR set (a cached answer is not authoritative, RFC 1035 §4.1.1; the ID is the client's,
// patched on the way out), each RR's TTL offset after them, its kind, and its TTLs by the rules.
func (s *settings) fill(e *Entry, wire []byte, qnameLen int, rrs []rrInfo, rcode int, qtype uint16, now time.Time) error {
	*e = Entry{msgLen: uint16(len(wire)), qnameLen: uint8(qnameLen), stored: now}
	// slices.Grow rounds the capacity up to the allocator's size class, so cap(e.buf) is what the buffer
	// really costs, and the byte bound counts it.
	e.buf = slices.Grow([]byte(nil), len(wire)+2*len(rrs))[:len(wire)+2*len(rrs)]
	copy(e.buf, wire)
	e.buf[0], e.buf[1] = 0, 0
	e.buf[offFlags1] = e.buf[offFlags1]&^bitAA | bitQR
	for i, rr := range rrs {
		binary.BigEndian.PutUint16(e.buf[len(wire)+2*i:], uint16(rr.ttlOff))
	}
	e.kind = classify(rcode, qtype, rrs)
	return s.applyTTLs(e, rrs)
}

// buildWire fills e from a reply in wire form (no OPT, TSIG or SIG(0): a per-hop record is not plain)
// stored at now. It returns built=false when the reply does not answer the key's question, or when it
// is malformed or holds records other than plain ones (plainRR); otherwise as build. The reply is not
// modified.
func (s *settings) buildWire(e *Entry, key, wire []byte, now time.Time) (built bool, _ error) {
	if len(key) <= keyName || len(wire) > maxMsgLen {
		return false, fmt.Errorf("%w: a key of %d bytes, a reply of %d", ErrBadMessage, len(key), len(wire))
	}
	var stack [32]rrInfo
	qnameLen, rrs, err := walk(wire, stack[:0])
	if err != nil || qnameLen > maxNameLen {
		return false, fmt.Errorf("%w: walking the reply: %v", ErrBadMessage, err)
	}
	q := wire[headerLen+qnameLen:]
	if binary.BigEndian.Uint16(q) != binary.BigEndian.Uint16(key[keyType:]) ||
		binary.BigEndian.Uint16(q[2:]) != binary.BigEndian.Uint16(key[keyClass:]) ||
		!equalFoldASCII(key[keyName:], wire[headerLen:headerLen+qnameLen]) {
		return false, ErrBadKey
	}
	if end, ok := nameEnd(wire, headerLen); !ok || end != headerLen+qnameLen {
		return false, fmt.Errorf("%w: question name", ErrBadMessage)
	}
	if !allPlain(wire, rrs) {
		return false, ErrNotPlain
	}
	return true, s.fill(e, wire, qnameLen, rrs, int(wire[offFlags2]&0x0F), binary.BigEndian.Uint16(q), now)
}

// packForCache packs m without its per-hop records; fill sets the stored header's ID and flags.
func packForCache(m *dns.Msg) ([]byte, error) {
	if hasNilRecord(m) {
		return nil, fmt.Errorf("%w: nil record", ErrBadMessage)
	}
	cp := dns.Msg{MsgHdr: m.MsgHdr, Compress: true, Question: m.Question, Answer: m.Answer, Ns: m.Ns}
	cp.Extra = m.Extra
	for i, rr := range m.Extra {
		if perHop(rr) { // copy only when something must go: most replies have nothing but OPT
			cp.Extra = append(make([]dns.RR, 0, len(m.Extra)-1), m.Extra[:i]...)
			for _, rr := range m.Extra[i+1:] {
				if !perHop(rr) {
					cp.Extra = append(cp.Extra, rr)
				}
			}
			break
		}
	}
	wire, err := cp.Pack()
	if err != nil {
		return nil, fmt.Errorf("%w: packing: %w", ErrBadMessage, err)
	}
	if len(wire) > maxMsgLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadMessage, len(wire))
	}
	return wire, nil
}

// hasNilRecord reports whether m holds a nil record, which miekg/dns cannot pack (and panics on in
// the additional section).
func hasNilRecord(m *dns.Msg) bool {
	for _, sec := range [...][]dns.RR{m.Answer, m.Ns, m.Extra} {
		if slices.Contains(sec, nil) {
			return true
		}
	}
	return false
}

// perHop reports whether rr belongs to one transaction and must never be cached or forwarded: OPT
// (RFC 6891 §6.2.6), TSIG (RFC 8945 §5) and SIG(0) (RFC 2931 §3).
func perHop(rr dns.RR) bool {
	switch rr.Header().Rrtype {
	case dns.TypeOPT, dns.TypeTSIG, dns.TypeSIG:
		return true
	}
	return false
}

// classify tells which caching rule applies (RFC 2308 §2): NOERROR with a record of the asked type is
// positive, without one it is NODATA, whatever CNAMEs lead there.
func classify(rcode int, qtype uint16, rrs []rrInfo) Kind {
	switch rcode {
	case dns.RcodeNameError:
		return NXDomain
	case dns.RcodeServerFailure:
		return ServFail
	case dns.RcodeSuccess:
	default:
		return Uncacheable
	}
	for _, rr := range rrs {
		if rr.section == sectionAnswer && (rr.rrtype == qtype || qtype == dns.TypeANY) {
			return Positive
		}
	}
	return NoData
}

// applyTTLs rewrites every RR TTL in e.buf by the rule for e's kind, sets e's lifetime and stale
// permission, and says whether e may be stored.
func (s *settings) applyTTLs(e *Entry, rrs []rrInfo) error {
	var (
		life   uint32 = maxTTLSeconds
		hasSOA bool
	)
	for _, rr := range rrs {
		ttl := e.buf[rr.ttlOff:]
		t := wireTTL(ttl)
		switch e.kind {
		case Positive:
			t = min(max(t, s.minTTL), s.maxTTL)
		case NoData, NXDomain:
			if rr.section == sectionNs && rr.rrtype == dns.TypeSOA && rr.rdLen >= soaMinimumLen {
				// RFC 2308 §5: the negative TTL is min(SOA TTL, SOA MINIMUM), and the SOA goes out
				// with that TTL.
				t = min(t, wireTTL(e.buf[rr.rdOff+rr.rdLen-soaMinimumLen:]))
				hasSOA = true
			}
			t = min(t, s.negMaxTTL)
		case ServFail:
			t = min(t, uint32((s.servFailTTL+time.Second-1)/time.Second))
		}
		binary.BigEndian.PutUint32(ttl, t)
		life = min(life, t)
	}
	switch e.kind {
	case Uncacheable:
		return ErrUncacheable
	case ServFail:
		if s.servFailTTL == 0 {
			return fmt.Errorf("%w: SERVFAIL caching is off", ErrUncacheable)
		}
		e.lifetime = s.servFailTTL
		return truncatedErr(e)
	case NoData, NXDomain:
		if !hasSOA {
			return ErrNoSOA
		}
	}
	e.lifetime = time.Duration(life) * time.Second
	if life == 0 {
		return ErrZeroTTL
	}
	if err := truncatedErr(e); err != nil {
		return err
	}
	e.staleOK = true
	return nil
}

func truncatedErr(e *Entry) error {
	if e.Truncated() {
		return ErrTruncated
	}
	return nil
}

// wireTTL reads a TTL; RFC 2181 §8: a value with the top bit set is treated as zero.
func wireTTL(b []byte) uint32 {
	t := binary.BigEndian.Uint32(b)
	if t > maxTTLSeconds {
		return 0
	}
	return t
}
