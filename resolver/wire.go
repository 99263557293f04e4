package resolver

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// query is what the server needs of a client's request, read straight from the packet so that a cache
// hit never unpacks a dns.Msg.
type query struct {
	id          uint16
	opcode      uint8
	rd, cd      bool
	qname       []byte // wire format, as the client spelled it; aliases the packet
	qtype       uint16
	qclass      uint16
	edns        bool
	do          bool
	udpSize     uint16 // the client's EDNS UDP payload size; 0 without EDNS
	ednsVersion uint8
}

// parse outcomes that are not an rcode.
const (
	// rcodeDrop: no reply is possible (no header) or none is wanted (the packet is itself a response;
	// answering responses is how reflection loops start).
	rcodeDrop = -1
)

const (
	headerLen   = 12
	flagQR      = 1 << 15
	flagAA      = 1 << 10
	flagTC      = 1 << 9
	flagRD      = 1 << 8
	flagRA      = 1 << 7
	flagAD      = 1 << 5
	flagCD      = 1 << 4
	maxNameWire = 255 // RFC 1035 §3.1
	maxLabel    = 63  // RFC 1035 §2.3.4
	optRRLen    = 11  // root name, type, class, TTL, RDLENGTH: an OPT without options
	ednsDOBit   = 1 << 15
)

// parseQuery reads a client's query. It returns dns.RcodeSuccess for a query podns can answer, the
// rcode to answer with otherwise (FORMERR, NOTIMP, BADVERS), or rcodeDrop. On FORMERR/NOTIMP the id and
// flags are set, and the question too when it could be read.
func parseQuery(pkt []byte) (q query, rcode int) {
	if len(pkt) < headerLen {
		return q, rcodeDrop
	}
	q.id = binary.BigEndian.Uint16(pkt)
	flags := binary.BigEndian.Uint16(pkt[2:])
	if flags&flagQR != 0 {
		return q, rcodeDrop
	}
	q.rd = flags&flagRD != 0
	q.cd = flags&flagCD != 0
	q.opcode = uint8(flags>>11) & 0xF
	if q.opcode != dns.OpcodeQuery {
		return q, dns.RcodeNotImplemented
	}
	qd := binary.BigEndian.Uint16(pkt[4:])
	an := binary.BigEndian.Uint16(pkt[6:])
	ns := binary.BigEndian.Uint16(pkt[8:])
	ar := binary.BigEndian.Uint16(pkt[10:])
	if qd != 1 {
		return q, dns.RcodeFormatError
	}
	off := headerLen
	end, ok := questionName(pkt, off)
	if !ok || end+4 > len(pkt) {
		return q, dns.RcodeFormatError
	}
	q.qname = pkt[off:end]
	q.qtype = binary.BigEndian.Uint16(pkt[end:])
	q.qclass = binary.BigEndian.Uint16(pkt[end+2:])
	off = end + 4
	for i := 0; i < int(an)+int(ns); i++ {
		if off, ok = skipRR(pkt, off); !ok {
			return q, dns.RcodeFormatError
		}
	}
	for i := 0; i < int(ar); i++ {
		start := off
		if off, ok = skipRR(pkt, off); !ok {
			return q, dns.RcodeFormatError
		}
		if pkt[start] != 0 || binary.BigEndian.Uint16(pkt[start+1:]) != dns.TypeOPT {
			continue
		}
		if q.edns { // RFC 6891 §6.1.1: more than one OPT is FORMERR
			return q, dns.RcodeFormatError
		}
		q.edns = true
		q.udpSize = binary.BigEndian.Uint16(pkt[start+3:])
		q.ednsVersion = pkt[start+6]
		q.do = binary.BigEndian.Uint16(pkt[start+7:])&ednsDOBit != 0
	}
	if q.edns && q.ednsVersion > 0 { // RFC 6891 §6.1.3
		return q, dns.RcodeBadVers
	}
	return q, dns.RcodeSuccess
}

// questionName returns the end offset of an uncompressed name starting at off. A compression pointer
// cannot be valid in the only question of a query: nothing precedes it to point at.
func questionName(pkt []byte, off int) (int, bool) {
	start := off
	for off < len(pkt) {
		l := int(pkt[off])
		if l == 0 {
			return off + 1, off+1-start <= maxNameWire
		}
		if l > maxLabel {
			return 0, false
		}
		off += 1 + l
	}
	return 0, false
}

// skipRR returns the offset after the resource record at off, following RFC 1035 §4.1.4 for its owner.
func skipRR(pkt []byte, off int) (int, bool) {
	for {
		if off >= len(pkt) {
			return 0, false
		}
		l := int(pkt[off])
		if l&0xC0 == 0xC0 { // a pointer ends the name
			off += 2
			break
		}
		if l > maxLabel {
			return 0, false
		}
		off += 1 + l
		if l == 0 {
			break
		}
	}
	if off+10 > len(pkt) {
		return 0, false
	}
	rdlen := int(binary.BigEndian.Uint16(pkt[off+8:]))
	off += 10 + rdlen
	return off, off <= len(pkt)
}

// appendOPT appends the OPT record podns puts in a reply to an EDNS client (RFC 6891 §6.1: the OPT is
// per hop, never forwarded) and counts it in the ARCOUNT of the message that starts at msg[start]. The
// extended rcode's upper bits go in its TTL.
func appendOPT(msg []byte, start int, do bool, rcode int) []byte {
	ttl := uint32(rcode>>4) << 24
	if do {
		ttl |= ednsDOBit
	}
	msg = append(msg, 0, 0, byte(dns.TypeOPT), byte(ednsUDPSize>>8), byte(ednsUDPSize&0xFF))
	msg = binary.BigEndian.AppendUint32(msg, ttl)
	msg = append(msg, 0, 0)
	arcount := msg[start+10:]
	binary.BigEndian.PutUint16(arcount, binary.BigEndian.Uint16(arcount)+1)
	return msg
}

// nameString returns the presentation form of a wire-format name (case kept), for dns.Msg questions.
func nameString(wire []byte) string {
	name, _, err := dns.UnpackDomainName(wire, 0)
	if err != nil {
		return "."
	}
	return name
}

// lowerName appends the lower-case presentation form of a wire name; lower-case keeps one cache key and
// one in-flight call per name whatever the clients' spelling (RFC 4343).
func lowerName(wire []byte) string {
	name := nameString(wire)
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			return toLowerASCII(name)
		}
	}
	return name
}

func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
