package upstream

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/miekg/dns"
)

// DNS header layout (RFC 1035 §4.1.1).
const (
	headerLen  = 12
	flagQR     = 1 << 15
	flagTC     = 1 << 9
	opcodeMask = 0xF << 11
	rcodeMask  = 0xF
)

// keepaliveOPT is the OPT record appended to a query that has none: root
// name, TYPE 41, CLASS (the UDP size, meaningless over TCP: 1232, the DNS Flag
// Day 2020 value), TTL 0 (no extended rcode, version 0, DO clear), RDLENGTH 4,
// and the edns-tcp-keepalive option (code 11) with no TIMEOUT, since RFC 7828
// §3.2.1 says a client MUST NOT send one.
var keepaliveOPT = [...]byte{0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 4, 0, 11, 0, 0}

// packQuery writes m, with an edns-tcp-keepalive option added (RFC 7828
// §3.2.1), into buf after a 2-byte length prefix (RFC 1035 §4.2.2), so a
// writer copies prefix and message in one piece. m is never modified: miekg's
// Pack rewrites the OPT record's TTL, so a query with an OPT is packed from a
// shallow copy holding a copy of that OPT.
func packQuery(m *dns.Msg, buf []byte) ([]byte, error) {
	if m == nil || len(m.Question) == 0 {
		return nil, fmt.Errorf("%w: no question", ErrBadQuery)
	}
	q, appendOPT := m, true
	if opt := m.IsEdns0(); opt != nil {
		appendOPT = false
		q = withKeepalive(m, opt)
	}
	full := buf[:max(cap(buf), 2)]
	out, err := q.PackBuffer(full[2:])
	if err != nil {
		return nil, fmt.Errorf("%w: packing: %w", ErrBadQuery, err)
	}
	if len(full) > 2 && &out[0] == &full[2] {
		buf = full[:2+len(out)]
	} else {
		buf = append(full[:2], out...) // PackBuffer needed a larger buffer
	}
	if appendOPT {
		buf = append(buf, keepaliveOPT[:]...)
		ar := binary.BigEndian.Uint16(buf[2+10:])
		binary.BigEndian.PutUint16(buf[2+10:], ar+1)
	}
	if len(buf)-2 > dns.MaxMsgSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadQuery, len(buf)-2)
	}
	binary.BigEndian.PutUint16(buf, uint16(len(buf)-2))
	return buf, nil
}

// withKeepalive returns a shallow copy of m whose OPT is a copy of opt with an
// edns-tcp-keepalive option, unless opt already has one.
func withKeepalive(m *dns.Msg, opt *dns.OPT) *dns.Msg {
	cp := *m
	o := *opt
	has := false
	for _, e := range opt.Option {
		if e.Option() == dns.EDNS0TCPKEEPALIVE {
			has = true
		}
	}
	if !has {
		n := len(opt.Option)
		o.Option = append(opt.Option[:n:n], &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE})
	}
	cp.Extra = make([]dns.RR, len(m.Extra))
	for i, rr := range m.Extra {
		if rr == opt {
			rr = &o
		}
		cp.Extra[i] = rr
	}
	return &cp
}

// replyMatches reports whether reply answers query (both without length
// prefix, IDs already compared): QR set, same opcode, and the same question
// (RFC 5452 §9.1, RFC 7766 §7). A server that could not parse or does not
// implement a query may return FORMERR, NOTIMP or REFUSED without a question
// (RFC 1035 §4.1.1); over TCP, where no one off-path can inject, the ID alone
// then matches it.
func replyMatches(query, reply []byte) bool {
	if len(reply) < headerLen || len(query) < headerLen {
		return false
	}
	rf, qf := binary.BigEndian.Uint16(reply[2:]), binary.BigEndian.Uint16(query[2:])
	if rf&flagQR == 0 || rf&opcodeMask != qf&opcodeMask {
		return false
	}
	if binary.BigEndian.Uint16(reply[4:]) == 0 {
		switch int(rf & rcodeMask) {
		case dns.RcodeFormatError, dns.RcodeNotImplemented, dns.RcodeRefused:
			return true
		}
		return false
	}
	return questionsMatch(query, reply)
}

// questionsMatch compares the question sections of two messages in wire
// format: the same count, names equal ignoring ASCII case (RFC 4343 §3, so a
// server that keeps 0x20-randomised case still matches), type and class equal.
// A compression pointer cannot appear in a question (it could only point into
// the header), so one there is a mismatch.
func questionsMatch(a, b []byte) bool {
	if len(a) < headerLen || len(b) < headerLen {
		return false
	}
	n := binary.BigEndian.Uint16(a[4:])
	if n != binary.BigEndian.Uint16(b[4:]) {
		return false
	}
	i, j := headerLen, headerLen
	for range n {
		var ok bool
		if i, j, ok = sameName(a, b, i, j); !ok {
			return false
		}
		if i+4 > len(a) || j+4 > len(b) || [4]byte(a[i:i+4]) != [4]byte(b[j:j+4]) {
			return false
		}
		i, j = i+4, j+4
	}
	return true
}

// sameName compares the uncompressed names at a[i:] and b[j:] ignoring ASCII
// case and returns the offsets after them.
func sameName(a, b []byte, i, j int) (int, int, bool) {
	for {
		if i >= len(a) || j >= len(b) {
			return 0, 0, false
		}
		l := int(a[i])
		if l != int(b[j]) || l > 63 { // 64..255: pointers and reserved label types
			return 0, 0, false
		}
		i, j = i+1, j+1
		if l == 0 {
			return i, j, true
		}
		if i+l > len(a) || j+l > len(b) {
			return 0, 0, false
		}
		for k := range l {
			if lower(a[i+k]) != lower(b[j+k]) {
				return 0, 0, false
			}
		}
		i, j = i+l, j+l
	}
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// bufPool recycles byte slices of one capacity; larger requests allocate.
type bufPool struct {
	size int
	p    sync.Pool
}

func newBufPool(size int) *bufPool {
	bp := &bufPool{size: size}
	bp.p.New = func() any { b := make([]byte, size); return &b }
	return bp
}

// get returns a buffer holding n bytes: (*b)[:n]. Buffers travel as
// pointers so that returning one to the pool allocates nothing.
func (bp *bufPool) get(n int) *[]byte {
	if n > bp.size {
		b := make([]byte, n)
		return &b
	}
	b := bp.p.Get().(*[]byte)
	*b = (*b)[:n]
	return b
}

// put recycles b unless it came from a larger allocation.
func (bp *bufPool) put(b *[]byte) {
	if b == nil || cap(*b) != bp.size {
		return
	}
	bp.p.Put(b)
}

// optRR locates the OPT record of a reply; start is -1 when it has none.
type optRR struct {
	start, rdata, end int    // offsets of the record, its RDATA and the end of its RDATA
	ttl               uint32 // extended RCODE, version, flags (RFC 6891 §6.1.3)
}

// findOPT walks a reply to find its OPT record. ok is false when the reply is malformed, or has more
// than one OPT.
func findOPT(msg []byte) (opt optRR, ok bool) {
	opt.start = -1
	if len(msg) < headerLen {
		return opt, false
	}
	off := headerLen
	for range binary.BigEndian.Uint16(msg[4:]) {
		if off, ok = skipName(msg, off); !ok || off+4 > len(msg) {
			return opt, false
		}
		off += 4
	}
	an, ns, ar := binary.BigEndian.Uint16(msg[6:]), binary.BigEndian.Uint16(msg[8:]), binary.BigEndian.Uint16(msg[10:])
	for i := range int(an) + int(ns) + int(ar) {
		start := off
		if off, ok = skipName(msg, off); !ok || off+10 > len(msg) {
			return opt, false
		}
		rrtype := binary.BigEndian.Uint16(msg[off:])
		ttl := binary.BigEndian.Uint32(msg[off+4:])
		rdata := off + 10
		end := rdata + int(binary.BigEndian.Uint16(msg[off+8:]))
		if end > len(msg) {
			return opt, false
		}
		if rrtype == dns.TypeOPT {
			if opt.start >= 0 || i < int(an)+int(ns) {
				return opt, false
			}
			opt = optRR{start: start, rdata: rdata, end: end, ttl: ttl}
		}
		off = end
	}
	return opt, off == len(msg)
}

// skipName returns the offset past the name at off (up to its first compression pointer).
func skipName(msg []byte, off int) (int, bool) {
	for {
		if off >= len(msg) {
			return 0, false
		}
		switch l := int(msg[off]); {
		case l == 0:
			return off + 1, true
		case l&0xC0 == 0xC0:
			return off + 2, off+2 <= len(msg)
		case l > 63:
			return 0, false
		default:
			off += 1 + l
		}
	}
}

// keepaliveTimeout reads the edns-tcp-keepalive option (RFC 7828) from an OPT's RDATA: its TIMEOUT,
// found only when the option carries one. RFC 7828 §3.3.2 has a server send a TIMEOUT in responses; an
// option without one says nothing about the connection. CoreDNS 1.14 echoes the client's empty option
// in every reply: taken for TIMEOUT 0 ("close now"), it cost a new connection per few queries.
func keepaliveTimeout(rdata []byte) (timeout uint16, found bool) {
	for len(rdata) >= 4 {
		code, n := binary.BigEndian.Uint16(rdata), int(binary.BigEndian.Uint16(rdata[2:]))
		if 4+n > len(rdata) {
			return 0, false
		}
		if code == dns.EDNS0TCPKEEPALIVE {
			if n >= 2 {
				return binary.BigEndian.Uint16(rdata[4:]), true
			}
			return 0, false
		}
		rdata = rdata[4+n:]
	}
	return 0, false
}
