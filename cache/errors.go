package cache

import "errors"

// Reasons Store gives for not storing a reply. Callers decide on these with errors.Is; Set folds them into
// its boolean.
var (
	// ErrBadKey: the key is not one AppendKey made, or it names a different question than the reply.
	ErrBadKey = errors.New("cache: key does not match the reply's question")
	// ErrBadMessage: the reply cannot be stored in wire form (not one question, a nil record, does not
	// pack, or packs into something miekg/dns cannot read back).
	ErrBadMessage = errors.New("cache: reply cannot be encoded")
	// ErrNotPlain: StoreWire takes only replies of a few plain record types (plainRR); Store takes
	// the rest.
	ErrNotPlain = errors.New("cache: reply holds records StoreWire does not take as they are")
	// ErrTruncated: a TC reply is incomplete by definition and never cached (RFC 2181 §9).
	ErrTruncated = errors.New("cache: truncated reply")
	// ErrUncacheable: the RCODE is one the cache does not keep (REFUSED, FORMERR, NOTIMP...), or
	// SERVFAIL caching is off.
	ErrUncacheable = errors.New("cache: rcode not cacheable")
	// ErrNoSOA: a negative answer without an SOA in the authority section has no negative TTL and
	// must not be cached (RFC 2308 §5).
	ErrNoSOA = errors.New("cache: negative answer without SOA")
	// ErrZeroTTL: the reply's lifetime is zero seconds.
	ErrZeroTTL = errors.New("cache: zero TTL")
	// ErrTooBig: the entry alone would exceed its shard's share of MaxBytes.
	ErrTooBig = errors.New("cache: entry larger than the memory bound allows")
	// ErrKeepStale: a SERVFAIL does not replace an entry that can still be served (fresh or stale):
	// RFC 8767 prefers the stale answer over the failure.
	ErrKeepStale = errors.New("cache: keeping the servable entry over a SERVFAIL")
	// ErrConfig: New was given an inconsistent Config.
	ErrConfig = errors.New("cache: invalid config")
)
