package cache

import (
	"encoding/binary"
	"errors"

	"github.com/miekg/dns"
)

// Offsets in a DNS message header (RFC 1035 §4.1.1).
const (
	headerLen = 12
	offFlags1 = 2 // QR, Opcode, AA, TC, RD
	offFlags2 = 3 // RA, Z, AD, CD, RCODE
	offQD     = 4
	offAN     = 6
	offNS     = 8
	offAR     = 10

	bitQR = 0x80 // in flags1
	bitAA = 0x04 // in flags1
	bitTC = 0x02 // in flags1
	bitRD = 0x01 // in flags1
	bitRA = 0x80 // in flags2

	// rrFixedLen is TYPE, CLASS, TTL and RDLENGTH after an RR's owner name (RFC 1035 §4.1.3).
	rrFixedLen = 10
	// soaMinimumLen: MINIMUM is the last 32-bit field of SOA RDATA (RFC 1035 §3.3.13).
	soaMinimumLen = 4
)

// Sections of a message, in wire order.
const (
	sectionAnswer uint8 = iota
	sectionNs
	sectionExtra
)

var errMalformed = errors.New("malformed message")

// rrInfo locates one resource record inside a packed message.
type rrInfo struct {
	section uint8
	rrtype  uint16
	nameOff int // offset of the owner name
	ttlOff  int // offset of the 32-bit TTL
	rdOff   int // offset of RDATA
	rdLen   int
}

// walk locates the question name and every RR of a packed message with exactly one question, appending
// the RRs to rrs. It checks every bound, so it is safe on any input.
func walk(msg []byte, rrs []rrInfo) (qnameLen int, _ []rrInfo, _ error) {
	if len(msg) < headerLen || binary.BigEndian.Uint16(msg[offQD:]) != 1 {
		return 0, rrs, errMalformed
	}
	off, err := skipName(msg, headerLen)
	if err != nil {
		return 0, rrs, err
	}
	qnameLen = off - headerLen
	if off += 4; off > len(msg) { // QTYPE, QCLASS
		return 0, rrs, errMalformed
	}
	for section, countOff := range [...]int{offAN, offNS, offAR} {
		for range binary.BigEndian.Uint16(msg[countOff:]) {
			nameOff := off
			if off, err = skipName(msg, off); err != nil {
				return 0, rrs, err
			}
			if off+rrFixedLen > len(msg) {
				return 0, rrs, errMalformed
			}
			rr := rrInfo{
				section: uint8(section),
				nameOff: nameOff,
				rrtype:  binary.BigEndian.Uint16(msg[off:]),
				ttlOff:  off + 4,
				rdOff:   off + rrFixedLen,
				rdLen:   int(binary.BigEndian.Uint16(msg[off+8:])),
			}
			if off = rr.rdOff + rr.rdLen; off > len(msg) {
				return 0, rrs, errMalformed
			}
			rrs = append(rrs, rr)
		}
	}
	if off != len(msg) {
		return 0, rrs, errMalformed
	}
	return qnameLen, rrs, nil
}

// skipName returns the offset just past the (possibly compressed) name at off. It does not follow
// pointers: the name ends at the first pointer (RFC 1035 §4.1.4).
func skipName(msg []byte, off int) (int, error) {
	for {
		if off >= len(msg) {
			return 0, errMalformed
		}
		c := int(msg[off])
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				return off + 1, nil
			}
			off += 1 + c
		case 0xC0:
			if off+2 > len(msg) {
				return 0, errMalformed
			}
			return off + 2, nil
		default: // 0x40 and 0x80 label types are not in use (RFC 6891 §5)
			return 0, errMalformed
		}
	}
}

// maxPointers bounds the compression pointers followed in one name, as miekg/dns does.
const maxPointers = 126

// nameEnd checks the name at off and returns the offset just past it in the message. The name must be
// well formed: labels of at most 63 bytes, at most 255 bytes in all, and every compression pointer
// pointing back before the one that led to it, so that no chain loops.
func nameEnd(msg []byte, off int) (int, bool) {
	end, limit, length := -1, off, 0
	for hops := 0; ; {
		if off >= len(msg) {
			return 0, false
		}
		c := int(msg[off])
		switch c & 0xC0 {
		case 0x00:
			length += 1 + c
			if length > maxNameLen {
				return 0, false
			}
			if c == 0 {
				if end < 0 {
					end = off + 1
				}
				return end, true
			}
			off += 1 + c
		case 0xC0:
			if off+2 > len(msg) {
				return 0, false
			}
			if end < 0 {
				end = off + 2
			}
			target := int(binary.BigEndian.Uint16(msg[off:]) & 0x3FFF)
			if hops++; target >= limit || hops > maxPointers {
				return 0, false
			}
			off, limit = target, target
		default:
			return 0, false
		}
	}
}

// allPlain reports whether every record of msg is plain (plainRR).
func allPlain(msg []byte, rrs []rrInfo) bool {
	for _, rr := range rrs {
		if !plainRR(msg, rr) {
			return false
		}
	}
	return true
}

// plainRR reports whether the record at rr is one the cache stores as it came: an A or AAAA with a
// whole address; a CNAME, NS or PTR whose RDATA is one name; an SOA with two names and its five
// numbers; every name well formed (nameEnd). Their bytes are known to read back in any client; other
// records are checked by unpacking (build) or refused (buildWire).
func plainRR(msg []byte, rr rrInfo) bool {
	if _, ok := nameEnd(msg, rr.nameOff); !ok {
		return false
	}
	end := rr.rdOff + rr.rdLen
	switch rr.rrtype {
	case dns.TypeA:
		return rr.rdLen == 4
	case dns.TypeAAAA:
		return rr.rdLen == 16
	case dns.TypeCNAME, dns.TypeNS, dns.TypePTR:
		e, ok := nameEnd(msg[:end], rr.rdOff)
		return ok && e == end
	case dns.TypeSOA:
		e, ok := nameEnd(msg[:end], rr.rdOff)
		if !ok {
			return false
		}
		e, ok = nameEnd(msg[:end], e)
		return ok && e+20 == end
	}
	return false
}
