package cache

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// Kind classifies a reply by the caching rule that applies to it.
type Kind uint8

// Kinds of replies.
const (
	// Positive: NOERROR with records of the asked type (or any record, for ANY).
	Positive Kind = iota
	// NoData: NOERROR without records of the asked type (RFC 2308 §2.2); a CNAME chain may be present.
	NoData
	// NXDomain: the name does not exist (RFC 2308 §2.1).
	NXDomain
	// ServFail: the upstream failed; kept for ServFailTTL at most and never served stale.
	ServFail
	// Uncacheable: any other RCODE (REFUSED, FORMERR, NOTIMP...).
	Uncacheable
)

func (k Kind) String() string {
	switch k {
	case Positive:
		return "positive"
	case NoData:
		return "nodata"
	case NXDomain:
		return "nxdomain"
	case ServFail:
		return "servfail"
	}
	return "uncacheable"
}

// Entry is one stored reply. It is immutable once built, so it stays usable after it has been evicted
// or replaced, and any number of goroutines may use it at once.
type Entry struct {
	// buf holds the packed reply — ID 0, AA clear, no OPT or TSIG, every TTL already clamped — followed
	// by the 2-byte big-endian offset of each RR's TTL field. One allocation holds both.
	buf      []byte
	msgLen   uint16 // <= maxMsgLen
	qnameLen uint8  // the question name is buf[headerLen : headerLen+qnameLen]; names are <= 255 bytes
	kind     Kind
	staleOK  bool          // may be served after expiry (stored positive or negative answers only)
	stored   time.Time     // when it was built: TTLs count down from here
	lifetime time.Duration // how long it is fresh
}

// msg returns the stored wire message.
func (e *Entry) msg() []byte { return e.buf[:e.msgLen] }

// AppendReply appends a ready-to-send reply to dst: the stored message with ID id, RD rd, QR and RA set,
// the question name spelled as qname when qname equals the stored name but for ASCII case (a name of
// another length would break the compression pointers, and is ignored), and every RR TTL decremented by
// the whole seconds elapsed since the entry was stored. Past its lifetime a stale-servable entry goes out
// with every TTL at StaleTTL (RFC 8767 §4); other entries count down to 0. No OPT is added: EDNS is per
// hop, and the caller appends the client's. It does not allocate when dst has the capacity.
func (e *Entry) AppendReply(dst []byte, id uint16, rd bool, qname []byte, now time.Time) []byte {
	start := len(dst)
	dst = append(dst, e.msg()...)
	r := dst[start:]
	binary.BigEndian.PutUint16(r, id)
	f := r[offFlags1]&^bitRD | bitQR
	if rd {
		f |= bitRD
	}
	r[offFlags1] = f
	// RFC 1035 §4.1.1: RA says recursion is available; glibc treats an empty NOERROR reply with neither
	// AA nor RA as a referral, that is as a failed server.
	r[offFlags2] |= bitRA
	if qname != nil {
		if stored := r[headerLen : headerLen+int(e.qnameLen)]; equalFoldASCII(qname, stored) {
			copy(stored, qname)
		}
	}
	age := now.Sub(e.stored)
	stale := e.staleOK && age >= e.lifetime
	var elapsed uint32
	if age > 0 {
		elapsed = uint32(min(age/time.Second, maxTTLSeconds))
	}
	offs := e.buf[e.msgLen:]
	for i := 0; i+1 < len(offs); i += 2 {
		ttl := r[binary.BigEndian.Uint16(offs[i:]):]
		switch t := binary.BigEndian.Uint32(ttl); {
		case stale:
			binary.BigEndian.PutUint32(ttl, StaleTTL)
		case t > elapsed:
			binary.BigEndian.PutUint32(ttl, t-elapsed)
		default:
			binary.BigEndian.PutUint32(ttl, 0)
		}
	}
	return dst
}

// Msg returns an unpacked copy of the reply as AppendReply would send it at now, keeping the stored ID
// (0), RD and question spelling. It allocates: it is for logs, tests and slow paths.
func (e *Entry) Msg(now time.Time) (*dns.Msg, error) {
	rd := e.buf[offFlags1]&bitRD != 0
	m := new(dns.Msg)
	if err := m.Unpack(e.AppendReply(nil, 0, rd, nil, now)); err != nil {
		return nil, fmt.Errorf("unpacking cached reply: %w", err)
	}
	return m, nil
}

// Rcode returns the reply's RCODE (extended RCODEs are never stored: they need the OPT record).
func (e *Entry) Rcode() int { return int(e.buf[offFlags2] & 0x0F) }

// Answers returns the number of records in the answer section (ANCOUNT).
func (e *Entry) Answers() int { return int(binary.BigEndian.Uint16(e.buf[offAN:])) }

// Kind returns the caching class of the reply.
func (e *Entry) Kind() Kind { return e.kind }

// Truncated reports whether the reply had TC set (such an entry is never stored, only returned by Set).
func (e *Entry) Truncated() bool { return e.buf[offFlags1]&bitTC != 0 }

// TTL returns how long the entry stays fresh after now (0 once expired).
func (e *Entry) TTL(now time.Time) time.Duration {
	return max(e.lifetime-now.Sub(e.stored), 0)
}

// Lifetime returns how long the entry was fresh for when stored.
func (e *Entry) Lifetime() time.Duration { return e.lifetime }

// Size returns the bytes the entry is charged against Config.MaxBytes, not counting its key.
func (e *Entry) Size() int { return cap(e.buf) + entryOverhead }

// allocSize rounds n up the way the Go allocator does for small objects (size classes are multiples of
// 16 bytes up to 256, coarser above): an estimate that errs high, so the byte bound holds for the heap.
func allocSize(n int) int {
	switch {
	case n <= 8:
		return 8
	case n <= 256:
		return (n + 15) &^ 15
	}
	return (n + n/8 + 15) &^ 15 // classes above 256 bytes are at most 12.5% apart
}
