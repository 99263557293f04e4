package upstream

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Health states of a server.
const (
	healthUnknown int32 = iota // not dialed yet: usable, but Healthy() does not count it
	healthUp                   // dialed or answered since its last failures
	healthDown                 // downAfter failures in a row: skipped until a probe answers
)

// downAfter consecutive failures (failed dials, queries that got no answer
// before their deadline) mark a server down. One lost query among answered
// ones resets nothing but never reaches it; three in a row mean the server
// is gone, and failing over sooner than the caller's next retry matters more
// than a few spurious failovers.
const downAfter = 3

// health tracks one server. It is lock-free: success is on the hot path.
type health struct {
	state atomic.Int32
	fails atomic.Int32
}

// success records a dial or an answer; it reports whether the server came
// back up.
func (h *health) success() bool {
	if h.fails.Load() != 0 {
		h.fails.Store(0)
	}
	if h.state.Load() == healthUp {
		return false
	}
	return h.state.Swap(healthUp) == healthDown
}

// connected records a dial that succeeded: a server not heard from yet is up, but a connect says
// nothing of answers, so it does not clear a run of unanswered queries (a server that accepts
// connections and answers nothing still goes down).
func (h *health) connected() bool {
	return h.state.CompareAndSwap(healthUnknown, healthUp)
}

// failure records a failed dial or an unanswered query; it reports whether
// the server just went down.
func (h *health) failure() bool {
	if h.fails.Add(1) < downAfter {
		return false
	}
	return h.state.Swap(healthDown) != healthDown
}

func (h *health) down() bool { return h.state.Load() == healthDown }
func (h *health) up() bool   { return h.state.Load() == healthUp }

// backoff returns the wait before attempt n+1 after n consecutive failures:
// doubling from base, capped at limit, with ±25% jitter so that the sidecars
// of many pods do not redial a restarted CoreDNS in step.
func backoff(n int, base, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d - d/4 + rand.N(d/2+1)
}

// jitterAge returns the lifetime of a new connection: maxAge minus up to 20%,
// so that connections opened together (at start, or after a CoreDNS
// rollout) do not retire together.
func jitterAge(maxAge time.Duration) time.Duration {
	return maxAge - rand.N(maxAge/5+1)
}
