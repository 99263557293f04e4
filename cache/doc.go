// Package cache is podns's answer cache: replies from the cluster DNS, stored in wire format under a key
// made of the question (name case-folded, type, class, DO, CD) and a view, and served back with the ID,
// flags, question spelling and TTLs patched in place, so that a hit costs a map lookup and a copy.
//
// The cache applies the caching rules and reports states; it never talks to the network. The resolver
// decides what to do with a state: a Prefetch or Stale result means "refresh in the background", and a
// Stale entry may be served only when the upstream has failed or is slow (RFC 8767).
//
// Rules, all measured against the injected clock:
//   - Positive answers live for the smallest TTL of their records, clamped to [MinTTL, MaxTTL].
//   - Negative answers (NXDOMAIN, NODATA) live for min(SOA TTL, SOA MINIMUM) (RFC 2308 §5), capped by
//     NegMaxTTL, and are not cached at all without an SOA in the authority section.
//   - SERVFAIL lives ServFailTTL at most; truncated replies are never stored; OPT, TSIG and SIG(0) are per
//     hop and never stored.
//   - Expired positive and negative entries may be served for StaleFor more, with TTL 30 (RFC 8767 §4).
//   - The first Get in the last tenth of an entry's lifetime reports Prefetch, once per stored entry.
//
// Memory is bounded in bytes. The cache is split into shards by a seeded hash of the key, each with its own
// lock, map and SIEVE eviction list (Zhang et al., NSDI 2024): a hit only sets an atomic "visited" bit
// under a read lock, and eviction sweeps a hand over the FIFO, sparing visited entries once; entries past
// their stale window go first. hitratio_test.go holds the measurement against plain LRU and otter
// (W-TinyLFU) that motivated the choice.
package cache
