package resolver

import (
	"hash/maphash"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/podns/podns/cache"
)

// Pairing is adaptive for direct lookups: it saves a round trip when clients ask for both types of a
// name, as glibc's getaddrinfo does, and is an upstream query nobody reads when they ask for one (an
// AF_INET lookup, a JVM with preferIPv4Stack, a load generator). The gauge counts paired fetches and
// those a client then read (it asked while the fetch was in flight, or hit its cache entry first).
const (
	pairSample     = 16 // with fewer paired fetches counted than this, pair
	pairDecay      = 64 // at this many, both counts halve: the gauge follows what clients do now
	pairProbeEvery = 16 // while off, one miss in this many pairs anyway, to notice clients changing
	// unreadSlots is the size of the table of paired fetches stored unread: far more than the paired
	// fetches of one burst of misses, and 2 KiB.
	unreadSlots = 256
)

// pairGauge decides whether a direct lookup's miss fetches the other address type too: while at least
// a quarter of the paired fetches are read. The counts are approximate under concurrency (a halving
// may lose a concurrent increment), which a gauge can afford.
type pairGauge struct {
	issued, read atomic.Uint32
	misses       atomic.Uint32 // misses seen while off, for the probes

	// unread holds the cache entries of paired fetches stored before any client asked for them, so
	// that a client's first cache hit on one counts as its read (takeRead). A later fetch that lands
	// in the same slot takes it over, losing that read: the gauge is an estimate, and the table stays
	// small (it keeps at most unreadSlots entries alive past their eviction).
	seed    maphash.Seed // set by New
	unread  [unreadSlots]atomic.Pointer[cache.Entry]
	pending atomic.Int32 // slots in use: while none is, a hit costs one atomic load
}

// want reports whether this miss pairs: when on, and for one miss in pairProbeEvery when not.
func (g *pairGauge) want() bool {
	return g.on() || g.misses.Add(1)%pairProbeEvery == 0
}

// on: too few paired fetches counted to judge, or at least a quarter of them read.
func (g *pairGauge) on() bool {
	issued, read := g.issued.Load(), g.read.Load()
	return issued < pairSample || 4*read >= issued
}

// issue counts a paired fetch started.
func (g *pairGauge) issue() {
	if n := g.issued.Add(1); n >= pairDecay {
		g.issued.Store(n / 2)
		g.read.Store(min(g.read.Load(), n) / 2)
	}
}

// readOne counts a paired fetch a client read.
func (g *pairGauge) readOne() { g.read.Add(1) }

// slot is e's place in the unread table.
func (g *pairGauge) slot(e *cache.Entry) *atomic.Pointer[cache.Entry] {
	return &g.unread[maphash.Comparable(g.seed, e)%unreadSlots]
}

// markUnread notes that the paired fetch stored as e has not been read.
func (g *pairGauge) markUnread(e *cache.Entry) {
	if g.slot(e).Swap(e) == nil {
		g.pending.Add(1)
	}
}

// takeRead reports whether e is a paired fetch stored unread, and if so marks it read.
func (g *pairGauge) takeRead(e *cache.Entry) bool {
	if g.pending.Load() == 0 {
		return false
	}
	if g.slot(e).CompareAndSwap(e, nil) {
		g.pending.Add(-1)
		return true
	}
	return false
}

// pairRead counts a paired fetch a client read, in the gauge and the metrics.
func (s *Server) pairRead() {
	s.pairs.readOne()
	s.stats.pairReads.Add(1)
}

// pairFor is the other address type to fetch with qtype: glibc asks A and AAAA together, so a miss for
// one fetches both. With AAAA filtered there is no pair: AAAA never goes upstream.
func (s *Server) pairFor(qtype, qclass uint16) (uint16, bool) {
	if qclass != dns.ClassINET || s.cfg.AAAAFilter {
		return 0, false
	}
	switch qtype {
	case dns.TypeA:
		return dns.TypeAAAA, true
	case dns.TypeAAAA:
		return dns.TypeA, true
	}
	return 0, false
}
