package cache

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// mapSlotBytes is what one entry costs in a shard's map[string]*node besides the key bytes. A slot is 24
// bytes (string header and pointer) plus a control byte, in groups of 8; a freshly filled Swiss table
// measured 33 bytes per entry, but under eviction churn deletions leave tombstones and the table keeps
// the size it grew to: 65 bytes per entry measured at 840 entries per map with 15x turnover (Go 1.26).
const mapSlotBytes = 64

// entryOverhead is what an entry costs besides its key and buffer: the node (which embeds the Entry),
// rounded to its allocation size class, and its map slot. TestMemoryBound checks the total against the
// Go heap.
const entryOverhead = (int(unsafe.Sizeof(node{}))+15)&^15 + mapSlotBytes

// node is an Entry with its place in the shard: the key, the charge against the bound, the SIEVE links
// and the bits readers set without the write lock.
type node struct {
	Entry
	key    string // the map key; immutable
	charge int    // len(key) + Entry.Size(); immutable

	// visited is SIEVE's reference bit: set by hits under the read lock, cleared by the eviction hand.
	visited atomic.Bool
	// prefetched is set by the one Get that reports Prefetch for this entry.
	prefetched atomic.Bool

	// prev points toward the head (newer entries), next toward the tail (older). Guarded by the shard's
	// write lock, nil once unlinked so a retained Entry pins no neighbours.
	prev, next *node
}

// touch marks n as recently used. It writes only when the bit is clear, so hot entries shared by many
// readers do not bounce their cache line between cores.
func (n *node) touch() {
	if !n.visited.Load() {
		n.visited.Store(true)
	}
}

// servableFor reports whether n is still fresh, or stale within staleFor, at age.
func (n *node) servableFor(age, staleFor time.Duration) bool {
	return age < n.lifetime || (n.staleOK && age < n.lifetime+staleFor)
}

// shard is one independently locked part of the cache, with its own SIEVE list.
type shard struct {
	budget int // this shard's share of MaxBytes; immutable

	mu    sync.RWMutex     // guards the fields below; readers only look up items
	items map[string]*node // every linked node, by key
	head  *node            // newest
	tail  *node            // oldest
	hand  *node            // next eviction candidate; nil means start at the tail
	bytes int              // sum of the linked nodes' charges, <= budget

	counters
	// pad keeps the next shard's lock and counters off this shard's cache lines.
	_ [64]byte
}

// counters are the shard's statistics, updated without the lock.
type counters struct {
	hits, prefetches, stale, misses atomic.Uint64
	stored, rejected                atomic.Uint64
	evictions, expired              atomic.Uint64
}

// insert links n as the newest entry, replacing the entry under the same key, evicting until it fits.
// The caller holds s.mu and has checked n.charge <= s.budget.
func (s *shard) insert(n *node, now time.Time, staleFor time.Duration) {
	if old := s.items[n.key]; old != nil {
		// A refreshed entry is as hot as the one it replaces.
		n.visited.Store(old.visited.Load())
		s.unlink(old)
	}
	for s.bytes+n.charge > s.budget && s.tail != nil {
		s.evict(now, staleFor)
	}
	n.next = s.head
	if s.head != nil {
		s.head.prev = n
	}
	s.head = n
	if s.tail == nil {
		s.tail = n
	}
	s.items[n.key] = n
	s.bytes += n.charge
}

// evict removes one entry by SIEVE: the hand walks from the tail toward the head, clearing visited bits,
// and takes the first entry that is unvisited or past any use (expired beyond the stale window). The
// caller holds s.mu and the list is not empty.
func (s *shard) evict(now time.Time, staleFor time.Duration) {
	n := s.hand
	if n == nil {
		n = s.tail
	}
	// Readers keep setting bits while the hand moves; two laps bound the walk whatever they do.
	for range 2 * len(s.items) {
		if !n.visited.Load() || !n.servableFor(now.Sub(n.stored), staleFor) {
			break
		}
		n.visited.Store(false)
		if n = n.prev; n == nil {
			n = s.tail
		}
	}
	if !n.servableFor(now.Sub(n.stored), staleFor) {
		s.expired.Add(1)
	}
	s.evictions.Add(1)
	s.hand = n
	s.unlink(n)
}

// unlink removes n from the list and the map. The caller holds s.mu.
func (s *shard) unlink(n *node) {
	if s.hand == n {
		s.hand = n.prev // may be nil: the hand wraps to the tail
	}
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		s.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		s.tail = n.prev
	}
	n.prev, n.next = nil, nil
	delete(s.items, n.key)
	s.bytes -= n.charge
}
