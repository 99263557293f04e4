package cache

import (
	"fmt"
	"time"
)

// Defaults for the zero values of Config.
const (
	// DefaultMaxBytes keeps a sidecar small: at the ~330 bytes of live heap per small answer that
	// TestMemoryBound measures, it holds some 25k answers, far more names than one pod looks up.
	DefaultMaxBytes = 8 << 20
	// DefaultMaxTTL bounds how long an answer with a huge upstream TTL (a day is common outside the
	// cluster) can stay wrong after it changed; prefetch keeps hot names fresh anyway. CoreDNS's cache
	// plugin caps success at the same hour.
	DefaultMaxTTL = time.Hour
	// DefaultNegMaxTTL bounds how long a name created after a lookup failed stays invisible to the pod:
	// Services and Pods are created all the time in a cluster, and 5 minutes is about what an operator
	// will wait before suspecting DNS.
	DefaultNegMaxTTL = 5 * time.Minute
	// DefaultServFailTTL is the RFC 9520 §3.2 floor: one second absorbs the burst of identical retries
	// (A and AAAA, several threads) without hiding a recovered upstream from the client's next try.
	DefaultServFailTTL = time.Second
	// DefaultStaleFor: RFC 8767 §5 suggests 1 to 3 days for a general resolver, but cluster data churns
	// faster (pods are rescheduled to new IPs), and an hour covers the outages a pod can ride out.
	DefaultStaleFor = time.Hour
	// defaultShards spreads lock traffic over enough shards that two readers rarely meet even on a
	// node with many cores; a sidecar usually gets one or two.
	defaultShards = 16
	// minShardBytes: shards are halved by default until each can hold two 64 KiB messages, so the
	// largest DNS message fits whatever MaxBytes says.
	minShardBytes = 2 * (64<<10 + entryOverhead)
	// StaleTTL is the TTL of records served stale (RFC 8767 §4 recommends 30 s).
	StaleTTL = 30
)

// Config configures a Cache. Zero values mean the defaults above.
type Config struct {
	// MaxBytes bounds the memory of the stored entries: key, wire message, TTL offsets and a fixed
	// per-entry overhead for the structs and the map slot. Default DefaultMaxBytes.
	MaxBytes int
	// MinTTL raises the lifetime of positive answers (not negative ones). Default 0: no floor.
	MinTTL time.Duration
	// MaxTTL caps the lifetime of positive answers. Default DefaultMaxTTL.
	MaxTTL time.Duration
	// NegMaxTTL caps the lifetime of negative answers. Default DefaultNegMaxTTL.
	NegMaxTTL time.Duration
	// ServFailTTL is how long a SERVFAIL is kept. Default DefaultServFailTTL; negative: not kept.
	ServFailTTL time.Duration
	// StaleFor is how long after expiry an entry may still be served stale. Default DefaultStaleFor;
	// negative: no serve-stale.
	StaleFor time.Duration
	// Shards is the number of independently locked parts. Default 16, fewer when MaxBytes is small.
	Shards int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// settings is a Config with defaults applied and TTL bounds in whole seconds, as they go on the wire.
type settings struct {
	maxBytes    int
	minTTL      uint32        // seconds
	maxTTL      uint32        // seconds, >= 1
	negMaxTTL   uint32        // seconds, >= 1
	servFailTTL time.Duration // 0: not kept
	staleFor    time.Duration // 0: no serve-stale
	shards      int
	now         func() time.Time
}

// maxTTLSeconds is the largest TTL RFC 2181 §8 allows (2^31 - 1); bigger values are treated as that.
const maxTTLSeconds = 1<<31 - 1

func (cfg Config) settings() (settings, error) {
	s := settings{maxBytes: cfg.MaxBytes, shards: cfg.Shards, now: cfg.Now}
	if s.maxBytes == 0 {
		s.maxBytes = DefaultMaxBytes
	}
	if s.maxBytes < 0 {
		return s, fmt.Errorf("%w: MaxBytes %d is negative", ErrConfig, cfg.MaxBytes)
	}
	if s.now == nil {
		s.now = time.Now
	}
	maxTTL := orDefault(cfg.MaxTTL, DefaultMaxTTL)
	negMax := orDefault(cfg.NegMaxTTL, DefaultNegMaxTTL)
	switch {
	case cfg.MinTTL < 0:
		return s, fmt.Errorf("%w: MinTTL %v is negative", ErrConfig, cfg.MinTTL)
	case maxTTL < time.Second:
		return s, fmt.Errorf("%w: MaxTTL %v is under a second", ErrConfig, cfg.MaxTTL)
	case negMax < time.Second:
		return s, fmt.Errorf("%w: NegMaxTTL %v is under a second", ErrConfig, cfg.NegMaxTTL)
	case cfg.MinTTL > maxTTL:
		return s, fmt.Errorf("%w: MinTTL %v above MaxTTL %v", ErrConfig, cfg.MinTTL, maxTTL)
	case cfg.Shards < 0:
		return s, fmt.Errorf("%w: Shards %d is negative", ErrConfig, cfg.Shards)
	}
	s.minTTL, s.maxTTL, s.negMaxTTL = seconds(cfg.MinTTL), seconds(maxTTL), seconds(negMax)
	s.servFailTTL = orDefault(cfg.ServFailTTL, DefaultServFailTTL)
	s.staleFor = orDefault(cfg.StaleFor, DefaultStaleFor)
	if s.shards == 0 {
		s.shards = defaultShards
		for s.shards > 1 && s.maxBytes/s.shards < minShardBytes {
			s.shards /= 2
		}
	}
	return s, nil
}

// orDefault maps zero to def and negative values to 0 ("off").
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// seconds converts a duration to whole TTL seconds, truncating, capped at maxTTLSeconds.
func seconds(d time.Duration) uint32 {
	s := d / time.Second
	if s > maxTTLSeconds {
		return maxTTLSeconds
	}
	return uint32(s)
}
