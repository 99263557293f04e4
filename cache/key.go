package cache

// Key layout: view, flags, qtype (2 bytes, big endian), qclass (2 bytes), then the question name in wire
// format with ASCII letters lowercased. The fixed part comes first so that keys of different questions
// with the same name differ early.
const (
	keyView   = 0
	keyFlags  = 1
	keyType   = 2
	keyClass  = 4
	keyName   = 6
	flagDO    = 1 << 0
	flagCD    = 1 << 1
	asciiCase = 'a' - 'A'
)

// Views separate the key space of upstream answers from replies the resolver composed.
const (
	// ViewUpstream keys an upstream answer for that exact FQDN.
	ViewUpstream byte = 0
	// ViewSearch keys a reply the resolver composed for a client question that went through search
	// expansion.
	ViewSearch byte = 1
	// ViewCut keys an NXDOMAIN cut (AppendCutKey, SetCut).
	ViewCut byte = 2
)

// AppendKey appends the cache key for a question to dst and returns it. qname is the question name in
// wire format (length-prefixed labels, uncompressed, ending in 0), as the client sent it; the key
// lowercases ASCII letters only: DNS names compare case-insensitively for ASCII alone (RFC 4343 §3).
// DO and CD are part of the key because they change the answer: DNSSEC records are present only with DO
// (RFC 3225 §3), and a CD answer may hold data a validating upstream would have refused (RFC 4035 §3.2.2).
// It does not allocate when dst has the capacity.
func AppendKey(dst, qname []byte, qtype, qclass uint16, do, cd bool, view byte) []byte {
	var flags byte
	if do {
		flags |= flagDO
	}
	if cd {
		flags |= flagCD
	}
	dst = append(dst, view, flags, byte(qtype>>8), byte(qtype), byte(qclass>>8), byte(qclass))
	start := len(dst)
	dst = append(dst, qname...)
	lowerASCII(dst[start:])
	return dst
}

// lowerASCII lowercases A-Z in place. Label length bytes are below 64 and never touched.
func lowerASCII(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + asciiCase
		}
	}
}

// equalFoldASCII reports whether a and b are equal when ASCII letters are folded.
func equalFoldASCII(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += asciiCase
		}
		if 'A' <= y && y <= 'Z' {
			y += asciiCase
		}
		if x != y {
			return false
		}
	}
	return true
}
