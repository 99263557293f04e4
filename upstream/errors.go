package upstream

import "errors"

// Sentinel errors. Exchange wraps them with the query and the action in
// progress; decide with errors.Is, never on the text.
var (
	// ErrConfig: New was given an invalid Config.
	ErrConfig = errors.New("upstream: invalid config")
	// ErrClosed: the Client is closed.
	ErrClosed = errors.New("upstream: client closed")
	// ErrTimeout: no answer before the deadline. When the caller's ctx
	// expired, the error also wraps context.DeadlineExceeded.
	ErrTimeout = errors.New("upstream: timeout")
	// ErrNoServer: no server can take the query now (all down, or none
	// could be dialed).
	ErrNoServer = errors.New("upstream: no server available")
	// ErrBusy: the query used up its attempts (re-sends, hedges, retries
	// of attempts that never reached a server) without an answer or a
	// failure to report. A query that finds every connection busy waits for
	// one, within its deadline: it fails with ErrTimeout if none comes free.
	ErrBusy = errors.New("upstream: attempts used up")
	// ErrConnLost: the connection carrying the query closed and the one
	// re-send allowed was lost too (RFC 7766 §6.2.4).
	ErrConnLost = errors.New("upstream: connection lost")
	// ErrBadReply: the matching reply could not be unpacked.
	ErrBadReply = errors.New("upstream: malformed reply")
	// ErrTruncated: the reply had TC set, which means nothing over TCP.
	ErrTruncated = errors.New("upstream: truncated reply over TCP")
	// ErrBadQuery: the query cannot be sent (nil, no question, too large).
	ErrBadQuery = errors.New("upstream: bad query")
)

// Reasons a connection closes; they reach callers wrapped in ErrConnLost
// only when their re-send was lost too.
var (
	errFraming  = errors.New("broken framing")
	errStalled  = errors.New("no reply for too long")
	errIdle     = errors.New("idle")
	errDrained  = errors.New("retired")
	errShutdown = errors.New("client closing")
	// errSilentPeer: the server's TCP acknowledged none of a query for silentPeerAfter.
	errSilentPeer = errors.New("server acknowledges nothing")
	// errSlowDial: the attempt's connection took longer than slowDialAfter to open.
	errSlowDial = errors.New("dial too slow")
)
