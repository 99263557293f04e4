package resolver

import (
	"container/heap"
	"sync"
	"time"

	"github.com/podns/podns/cache"
)

const (
	// refreshPoll bounds each sleep of the refresh loop, so that a clock that jumps (a test's) is seen
	// within it; the loop runs only while refreshes are pending.
	refreshPoll = time.Second
	// refreshOneAfter: the loop starts the refreshes that come due together one after the other, each
	// once the one before is answered or has taken this long. The names a pod first looked up
	// together expire together; asked at once they would open a connection each at CoreDNS, which
	// answers a connection's queries one at a time, and leave as many conntrack entries behind. An
	// in-cluster answer takes well under a millisecond.
	refreshOneAfter = 20 * time.Millisecond
)

// A hot entry (a client asked for it in the last tenth of its TTL) is refreshed when it expires, not
// when that client asked. The cluster DNS is a cache itself (CoreDNS's cache plugin, in every
// kube-dns): asked before its own copy expires, it answers that copy with what is left of the same
// TTL, so an early refresh buys a few seconds, and the next one, a few seconds later, buys less. Our
// entry expires no earlier than the cluster DNS's copy (its TTL counts whole seconds, rounded down,
// and our entry's lifetime starts when its answer arrived), so a refresh at our expiry finds that copy
// gone and brings back the whole TTL: one query per TTL for each hot name, where the early refresh
// made two or three. A client that asks in the round trip the refresh takes joins it (the flight
// table), with the expired entry to fall back on (Config.StaleWait).

// refreshJob is a refresh due when its entry expires: a direct lookup's (q), or a search walk's (walk).
type refreshJob struct {
	due  time.Time
	view byte // cache.ViewUpstream: a lookup of q; cache.ViewSearch: a walk of wq
	q    question
	wq   walkQuestion
}

// refresher holds the refreshes not yet due. Its loop runs on a background goroutine while any are,
// and stops when none is left, so a quiet pod has no goroutine for it.
type refresher struct {
	mu      sync.Mutex
	jobs    jobHeap // earliest due first
	running bool
	kick    chan struct{} // a job earlier than the loop's wake-up was added
}

// jobHeap orders refreshes by when they are due (container/heap).
type jobHeap []refreshJob

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h jobHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)        { *h = append(*h, x.(refreshJob)) }
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = refreshJob{}
	*h = old[:len(old)-1]
	return j
}

// refreshAt schedules a refresh of the hot entry e, due at its expiry.
func (s *Server) refreshAt(e *cache.Entry, job refreshJob) {
	now := s.now()
	job.due = now.Add(e.TTL(now))
	r := &s.refreshes
	r.mu.Lock()
	heap.Push(&r.jobs, job)
	start := !r.running
	r.running = true
	r.mu.Unlock()
	if !start {
		select {
		case r.kick <- struct{}{}:
		default:
		}
		return
	}
	if !s.background(s.refreshLoop) {
		s.stopRefreshes()
	}
}

// refreshLoop runs the refreshes as they come due, until none is left or the server shuts down.
func (s *Server) refreshLoop() {
	r := &s.refreshes
	timer := time.NewTimer(refreshPoll)
	defer timer.Stop()
	one := time.NewTimer(refreshOneAfter)
	defer one.Stop()
	var due []refreshJob
	for {
		now := s.now()
		var next time.Duration
		r.mu.Lock()
		for len(r.jobs) > 0 && !r.jobs[0].due.After(now) {
			due = append(due, heap.Pop(&r.jobs).(refreshJob))
		}
		if len(due) == 0 {
			if len(r.jobs) == 0 {
				r.running = false
				r.mu.Unlock()
				return
			}
			next = r.jobs[0].due.Sub(now)
		}
		r.mu.Unlock()
		if len(due) > 0 {
			for i, j := range due {
				if c := s.runRefresh(j); c != nil && i < len(due)-1 {
					one.Reset(refreshOneAfter)
					select {
					case <-c.done:
					case <-one.C:
					case <-s.bg.Done():
						s.stopRefreshes()
						return
					}
				}
				due[i] = refreshJob{}
			}
			due = due[:0]
			continue // the clock moved while they ran: look again
		}
		timer.Reset(min(next, refreshPoll))
		select {
		case <-timer.C:
		case <-r.kick: // the next Reset discards a pending fire (Go 1.23 timers)
		case <-s.bg.Done():
			s.stopRefreshes()
			return
		}
	}
}

// stopRefreshes drops the refreshes not yet started: the server is shutting down.
func (s *Server) stopRefreshes() {
	r := &s.refreshes
	r.mu.Lock()
	r.running, r.jobs = false, nil
	r.mu.Unlock()
}

// runRefresh starts job's refresh, unless a client's lookup refreshed the entry first (it expired, and
// the client came before the loop did): the flight table joins one still under way. It returns the
// refresh's call, nil when none was needed. A name asked as it is goes through lookup, whose forced
// fetch skips an entry that is not in its last tenth; a search answer is checked here.
func (s *Server) runRefresh(j refreshJob) *call {
	if j.view == cache.ViewUpstream {
		return s.refresh(j.q)
	}
	key, err := keyFor(j.wq.name, j.wq.qtype, j.wq.qclass, j.wq.do, j.wq.cd, cache.ViewSearch)
	if err != nil {
		return nil
	}
	if _, left := s.cache.Peek(key); left > 0 {
		return nil
	}
	s.stats.prefetches.Add(1)
	c, _ := s.flight(key, question{}, s.walkFn(j.wq, true), false, nil)
	return c
}
