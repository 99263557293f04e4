package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/miekg/dns"
)

// State is what Get found.
type State uint8

// States of a lookup.
const (
	// Miss: nothing usable is stored.
	Miss State = iota
	// Fresh: the entry is within its TTL.
	Fresh
	// Prefetch: fresh, and this caller is the first to ask in the last tenth of the TTL: serve it and
	// refresh it in the background.
	Prefetch
	// Stale: expired, within StaleFor: may be served with TTL 30 when the upstream fails or is slow
	// (RFC 8767 §4), and should be refreshed.
	Stale
)

func (s State) String() string {
	switch s {
	case Fresh:
		return "fresh"
	case Prefetch:
		return "prefetch"
	case Stale:
		return "stale"
	}
	return "miss"
}

// Cache stores replies by key. It is safe for concurrent use. Its memory is bounded by Config.MaxBytes.
type Cache struct {
	cfg    settings
	seed   maphash.Seed // random per cache, so clients cannot aim every name at one shard
	shards []shard      // never empty after New
}

// New returns an empty cache, or an error wrapping ErrConfig when cfg is inconsistent.
func New(cfg Config) (*Cache, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	c := &Cache{cfg: s, seed: maphash.MakeSeed(), shards: make([]shard, s.shards)}
	for i := range c.shards {
		c.shards[i].budget = s.maxBytes / s.shards
		c.shards[i].items = make(map[string]*node)
	}
	return c, nil
}

// shardFor picks a key's shard by Lemire's multiply-shift reduction of its hash: no division, any count.
func (c *Cache) shardFor(key []byte) *shard {
	h := uint32(maphash.Bytes(c.seed, key))
	return &c.shards[uint64(h)*uint64(len(c.shards))>>32]
}

// Get looks key up. It returns the entry and Fresh, Prefetch or Stale, or nil and Miss. It does not
// allocate; a hit takes the shard's read lock for the map lookup only.
func (c *Cache) Get(key []byte) (*Entry, State) { return c.GetAt(key, c.cfg.now()) }

// GetAt is Get at a time the caller already read from the same clock: a hit then reads the clock once
// for both the lookup and AppendReply (a clock read is a fifth of a hit's cost, see BenchmarkHit).
func (c *Cache) GetAt(key []byte, now time.Time) (*Entry, State) {
	s := c.shardFor(key)
	s.mu.RLock()
	n := s.items[string(key)]
	s.mu.RUnlock()
	if n == nil {
		s.misses.Add(1)
		return nil, Miss
	}
	age := now.Sub(n.stored)
	switch {
	case age < n.lifetime:
		n.touch()
		s.hits.Add(1)
		// The last tenth of the lifetime: the first caller to see it refreshes, once per stored entry. A
		// SERVFAIL is kept to spare the upstream, not worth refreshing early.
		if age >= n.lifetime-n.lifetime/10 && n.kind != ServFail &&
			!n.prefetched.Load() && n.prefetched.CompareAndSwap(false, true) {
			s.prefetches.Add(1)
			return &n.Entry, Prefetch
		}
		return &n.Entry, Fresh
	case n.servableFor(age, c.cfg.staleFor):
		n.touch()
		s.stale.Add(1)
		return &n.Entry, Stale
	}
	s.misses.Add(1)
	return nil, Miss
}

// Peek returns the entry stored under key and how long it stays fresh (0 once it expired), or nil. It
// counts neither a hit nor a miss and does not touch the entry: a refresh asks it, not a client.
func (c *Cache) Peek(key []byte) (*Entry, time.Duration) {
	n := c.peek(key)
	if n == nil {
		return nil, 0
	}
	return &n.Entry, n.TTL(c.cfg.now())
}

// peek returns the node stored under key, or nil, counting nothing.
func (c *Cache) peek(key []byte) *node {
	s := c.shardFor(key)
	s.mu.RLock()
	n := s.items[string(key)]
	s.mu.RUnlock()
	return n
}

// Set stores the reply m under key, a key AppendKey made for m's question, by the package's rules. It
// returns the entry whenever m could be encoded for that question, stored or not, so a caller can answer
// the clients waiting for this reply from it; stored says whether later lookups will find it. m is not
// modified; OPT, TSIG and SIG(0) records are dropped.
func (c *Cache) Set(key []byte, m *dns.Msg) (e *Entry, stored bool) {
	e, err := c.Store(key, m)
	return e, err == nil
}

// Store is Set with the reason an entry was not stored: an error wrapping one of ErrBadKey,
// ErrBadMessage (both with a nil Entry), ErrTruncated, ErrUncacheable, ErrNoSOA, ErrZeroTTL, ErrTooBig or
// ErrKeepStale.
func (c *Cache) Store(key []byte, m *dns.Msg) (*Entry, error) {
	return c.store(key, func(e *Entry, now time.Time) (bool, error) { return c.cfg.build(e, key, m, now) })
}

// StoreWire is Store for a reply in wire form, as an upstream sent it (without its OPT record): it is
// kept as it came, without a round trip through miekg/dns, when it holds only plain records (A, AAAA,
// CNAME, NS, PTR, SOA). Otherwise it returns ErrNotPlain, or ErrBadKey or ErrBadMessage, with a nil
// Entry, and the caller unpacks the reply and uses Store.
func (c *Cache) StoreWire(key, wire []byte) (*Entry, error) {
	return c.store(key, func(e *Entry, now time.Time) (bool, error) { return c.cfg.buildWire(e, key, wire, now) })
}

// Derive stores under key e's reply as AppendReply would send it now, with no TTL above maxTTL
// (seconds): the same answer cached for another question of its name, type and class (the search
// walk's, when the name as given answers it, no longer than the cuts that decided it). e must be fresh.
// Store's rules apply to the copy; it returns what Store does.
func (c *Cache) Derive(key []byte, e *Entry, maxTTL uint32) (*Entry, error) {
	wire := e.AppendReply(make([]byte, 0, e.msgLen), 0, e.buf[offFlags1]&bitRD != 0, nil, c.cfg.now())
	offs := e.buf[e.msgLen:]
	for i := 0; i+1 < len(offs); i += 2 {
		ttl := wire[binary.BigEndian.Uint16(offs[i:]):]
		if wireTTL(ttl) > maxTTL {
			binary.BigEndian.PutUint32(ttl, maxTTL)
		}
	}
	d, err := c.StoreWire(key, wire)
	if errors.Is(err, ErrNotPlain) {
		var m dns.Msg
		if err := m.Unpack(wire); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		return c.Store(key, &m)
	}
	return d, err
}

func (c *Cache) store(key []byte, build func(*Entry, time.Time) (bool, error)) (*Entry, error) {
	s := c.shardFor(key)
	now := c.cfg.now()
	n := new(node)
	built, err := build(&n.Entry, now)
	switch {
	case !built:
		s.rejected.Add(1)
		return nil, err
	case err != nil:
		s.rejected.Add(1)
		return &n.Entry, err
	}
	n.charge = allocSize(len(key)) + n.Size()
	if n.charge > s.budget {
		s.rejected.Add(1)
		return &n.Entry, ErrTooBig
	}
	n.key = string(key)
	s.mu.Lock()
	if old := s.items[n.key]; old != nil && n.kind == ServFail && old.servableFor(now.Sub(old.stored), c.cfg.staleFor) {
		s.mu.Unlock()
		s.rejected.Add(1)
		return &n.Entry, ErrKeepStale
	}
	s.insert(n, now, c.cfg.staleFor)
	s.mu.Unlock()
	s.stored.Add(1)
	return &n.Entry, nil
}

// Len returns the number of stored entries, including expired ones not yet evicted.
func (c *Cache) Len() int {
	total := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		total += len(s.items)
		s.mu.RUnlock()
	}
	return total
}

// Bytes returns the memory charged against Config.MaxBytes.
func (c *Cache) Bytes() int {
	total := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		total += s.bytes
		s.mu.RUnlock()
	}
	return total
}
