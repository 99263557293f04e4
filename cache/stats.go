package cache

// Stats are the cache's counters since New.
type Stats struct {
	Hits       uint64 // Get found a fresh entry (Prefetch results included)
	Prefetches uint64 // Get reported Prefetch
	Stale      uint64 // Get reported Stale
	Misses     uint64 // Get found nothing usable
	Stored     uint64 // Set stored an entry
	Rejected   uint64 // Set did not store (see Store's errors)
	Evictions  uint64 // entries removed to make room
	Expired    uint64 // of the evictions, entries past their stale window
	Entries    int    // entries held now
	Bytes      int    // bytes charged now
	MaxBytes   int    // the bound
	Shards     int
}

// Stats returns a snapshot of the counters. Counters of different shards are read at slightly
// different moments.
func (c *Cache) Stats() Stats {
	st := Stats{MaxBytes: c.cfg.maxBytes, Shards: len(c.shards)}
	for i := range c.shards {
		s := &c.shards[i]
		st.Hits += s.hits.Load()
		st.Prefetches += s.prefetches.Load()
		st.Stale += s.stale.Load()
		st.Misses += s.misses.Load()
		st.Stored += s.stored.Load()
		st.Rejected += s.rejected.Load()
		st.Evictions += s.evictions.Load()
		st.Expired += s.expired.Load()
		s.mu.RLock()
		st.Entries += len(s.items)
		st.Bytes += s.bytes
		s.mu.RUnlock()
	}
	return st
}
