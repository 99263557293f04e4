package upstream

import (
	"sync/atomic"
	"time"
)

// latencyBounds are the upper bounds of the latency histogram buckets; the
// last bucket counts everything slower. Read-only. The steps cover a loopback
// or in-cluster answer (≤1 ms), a CoreDNS forward to the outside (10–300 ms),
// a hedge (500 ms) and the deadline (2 s).
var latencyBounds = [...]time.Duration{
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond,
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second,
}

// NumLatencyBuckets is the length of Stats.Latency: one bucket per bound of
// LatencyBounds plus one for slower answers.
const NumLatencyBuckets = len(latencyBounds) + 1

// LatencyBounds returns the upper bound of each Stats.Latency bucket but the
// last, which is unbounded.
func LatencyBounds() []time.Duration { return append([]time.Duration(nil), latencyBounds[:]...) }

// Stats is a snapshot of a Client's counters, for the metrics endpoint.
// Counters only grow; InFlight and Conns are gauges.
type Stats struct {
	Queries  uint64 // Exchange calls
	Answers  uint64 // replies returned to callers (any rcode)
	Servfail uint64 // of Answers, with rcode SERVFAIL

	// Errors returned by Exchange, by kind.
	Timeouts   uint64 // ErrTimeout
	Canceled   uint64 // the caller's ctx was canceled
	NoServer   uint64 // ErrNoServer
	Busy       uint64 // ErrBusy
	ConnLost   uint64 // ErrConnLost
	BadReplies uint64 // ErrBadReply
	Truncated  uint64 // ErrTruncated
	Closed     uint64 // ErrClosed
	BadQueries uint64 // ErrBadQuery

	Resends   uint64 // queries sent again because their connection closed or failed to open
	Hedges    uint64 // queries asked again on another connection after HedgeAfter
	HedgeWins uint64 // answers that came from a hedge

	Strays      uint64 // replies dropped: ID not in flight, or not a response
	Mismatches  uint64 // replies dropped: ID in flight but another question
	LateReplies uint64 // answers that came after their caller had finished
	FramingErrs uint64 // connections closed for a bad length prefix
	Stalls      uint64 // connections closed for giving no reply for too long

	Writes       uint64 // write calls on connections
	Messages     uint64 // queries in those writes (Messages/Writes: coalescing)
	DirectWrites uint64 // of the writes, those made by an ExchangeAsync caller (not the writer goroutine)

	ConnsOpened uint64 // connections established
	// ConnsOpenedBy splits ConnsOpened by why the connection was dialed: DialDemand (a query found
	// none free), DialReplacement (one in use was lost), DialRotation (one retired at its age or the
	// server's query limit).
	ConnsOpenedBy [NumDialReasons]uint64
	Waits         uint64        // queries that waited for a connection to come free
	WaitTime      time.Duration // their total wait
	SilentPeers   uint64        // connections closed because the server acknowledged nothing
	SlowDials     uint64        // dials slower than slowDialAfter, whose queries went elsewhere
	ConnsClosed   uint64        // connections closed, any reason
	DialErrors    uint64        // failed dials
	Conns         uint64        // gauge: connections open or dialing
	InFlight      uint64        // gauge: Exchange calls in progress

	// Latency counts answered Exchanges by duration: Latency[i] counts those
	// at most LatencyBounds()[i] (and above the previous bound); the last
	// bucket the slower ones. LatencySum is their total duration.
	Latency    [NumLatencyBuckets]uint64
	LatencySum time.Duration

	Servers []ServerStats // one per Config.Servers, in order
}

// ServerStats describes one upstream server.
type ServerStats struct {
	Addr       string
	Up         bool // connected or answered since its last failures
	Down       bool // failed downAfter times in a row: skipped until a probe answers
	Conns      int  // connections open or dialing
	PeakConns  int  // most connections open or dialing at once
	Reorders   bool // seen answering out of order
	QueryLimit int  // learned per-connection query limit; 0: none seen
	Waiting    int  // queries waiting for a connection to come free
}

// Reasons a connection is dialed: the index of Stats.ConnsOpenedBy.
const (
	DialDemand      = dialDemand
	DialReplacement = dialReplacement
	DialRotation    = dialRotation
	NumDialReasons  = numDialReasons
)

// counters are the live counters behind Stats.
type counters struct {
	queries, answers, servfail                             atomic.Uint64
	timeouts, canceled, noServer, busy, connLost           atomic.Uint64
	badReplies, truncated, closed, badQueries              atomic.Uint64
	resends, hedges, hedgeWins                             atomic.Uint64
	strays, mismatches, lateReplies, framingErrs, stalls   atomic.Uint64
	writes, messages, connsOpened, connsClosed, dialErrors atomic.Uint64
	directWrites                                           atomic.Uint64
	openedBy                                               [numDialReasons]atomic.Uint64
	waits, silentPeers, slowDials                          atomic.Uint64
	waitNS                                                 atomic.Int64
	conns, inFlight                                        atomic.Int64
	latency                                                [NumLatencyBuckets]atomic.Uint64
	latencySum                                             atomic.Int64
}

func (k *counters) observe(d time.Duration) {
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	k.latency[i].Add(1)
	k.latencySum.Add(int64(d))
}

func (k *counters) snapshot() Stats {
	s := Stats{
		Queries: k.queries.Load(), Answers: k.answers.Load(), Servfail: k.servfail.Load(),
		Timeouts: k.timeouts.Load(), Canceled: k.canceled.Load(), NoServer: k.noServer.Load(),
		Busy: k.busy.Load(), ConnLost: k.connLost.Load(), BadReplies: k.badReplies.Load(),
		Truncated: k.truncated.Load(), Closed: k.closed.Load(), BadQueries: k.badQueries.Load(),
		Resends: k.resends.Load(), Hedges: k.hedges.Load(), HedgeWins: k.hedgeWins.Load(),
		Strays: k.strays.Load(), Mismatches: k.mismatches.Load(), LateReplies: k.lateReplies.Load(),
		FramingErrs: k.framingErrs.Load(), Stalls: k.stalls.Load(),
		Writes: k.writes.Load(), Messages: k.messages.Load(), DirectWrites: k.directWrites.Load(),
		ConnsOpened: k.connsOpened.Load(), ConnsClosed: k.connsClosed.Load(), DialErrors: k.dialErrors.Load(),
		Conns: uint64(max(k.conns.Load(), 0)), InFlight: uint64(max(k.inFlight.Load(), 0)),
		LatencySum: time.Duration(k.latencySum.Load()),
		Waits:      k.waits.Load(), WaitTime: time.Duration(k.waitNS.Load()),
		SilentPeers: k.silentPeers.Load(), SlowDials: k.slowDials.Load(),
	}
	for i := range s.ConnsOpenedBy {
		s.ConnsOpenedBy[i] = k.openedBy[i].Load()
	}
	for i := range s.Latency {
		s.Latency[i] = k.latency[i].Load()
	}
	return s
}
