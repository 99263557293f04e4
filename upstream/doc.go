// Package upstream sends podns's queries to the cluster DNS servers over a
// few persistent, pipelined TCP connections, and never over UDP: a pod's
// lookups then never meet the conntrack race that drops UDP packets behind
// the kube-dns ClusterIP (kubernetes/kubernetes#56903), and a lost segment costs a kernel
// retransmission, not a 5 s client timeout.
//
// # Use
//
//	c, err := upstream.New(upstream.Config{Servers: []string{"10.96.0.10:53"}}, log)
//	...
//	reply, err := c.Exchange(ctx, query) // reply.Id == query.Id; query untouched
//	...
//	c.Close() // fails calls in flight with ErrClosed, waits for every goroutine
//
// Exchange is safe for concurrent use; the resolver's two concurrent calls
// for a name's A and AAAA are the common case. ExchangeAsync is the same
// exchange with no goroutine waiting: the caller writes the query itself and
// a Receiver is told the reply on the goroutine that reads it (Queue and
// Flush gather several such queries into one write). Healthy feeds /readyz and
// Stats the metrics. Errors wrap the sentinels of errors.go (ErrTimeout,
// ErrNoServer, ErrBusy, ErrConnLost, ErrBadReply, ErrTruncated, ...). A
// SERVFAIL is a reply: the resolver decides what to do with it.
//
// # Connections
//
// Each server has a pool. A connection has one writer goroutine, which
// sends everything queued since its last write in one write (length
// prefixes included, RFC 7766 §6.2.1), and one reader goroutine, which
// matches each reply to the query waiting for it. An ExchangeAsync caller
// writes the queue itself while the writer is idle (one non-blocking write;
// what the socket does not take is left to the writer): waking the writer
// would wake a thread. Queries carry an ID
// drawn at random for each connection and unique among its queries in
// flight; a reply is accepted only with that ID, the QR bit, the query's
// opcode and its question, the name compared ignoring case (RFC 5452 §9.1,
// RFC 7766 §7, RFC 4343). Anything else is counted and dropped. A length
// prefix too short for a DNS header means the stream can no longer be
// trusted, and the connection closes.
//
// The pool is made for the kube-dns every cluster runs, CoreDNS, and adapts
// to other servers when it sees them:
//
//   - CoreDNS (like every miekg/dns server, and dnsmasq) answers a
//     connection's queries one at a time, in order: a slow answer (a CoreDNS
//     forward to the outside, up to 2 s) holds up every query behind it. Until
//     a server is seen answering out of order, a query goes to a connection
//     with nothing outstanding (the one that answered last, so that the extra
//     connections a burst opened go idle and close), else to a dial in
//     progress with nothing queued; else it waits in line for a connection
//     whose query went out, or whose dial began, less than busyAfter ago (it
//     will likely come free before a new dial would answer), and dials when
//     none comes free by then (one whose answer waits unread in its socket,
//     podns short of CPU, counts as coming free: Linux, SIOCINQ;
//     TestNoDialForUnreadAnswer); else to a new connection (dialing costs one
//     round trip, a queue behind a slow answer up to its full time), up to
//     MaxConnsPerServer (64). Past that bound it waits in the pool's line
//     for the first connection to come free, within its deadline, rather than
//     fail; only when every connection is held by an answer older than
//     HedgeAfter (lost, or slow enough to have been asked again) does it
//     share one, the oldest. TestCoreDNSSlowAnswers: one answer in 20 300 ms
//     late, 40 queries at once, no other query delayed.
//   - A kube-dns pod that goes silent (node failure; a deleted pod whose
//     network went first) holds the connections the ClusterIP gave it. Its TCP
//     acknowledges nothing: a connection with bytes unacknowledged 250 ms
//     after a query was written closes, and its queries are re-sent as never
//     read (Linux, SIOCOUTQ); a dial not done in 100 ms gives its queries to
//     other connections. A new connection through the ClusterIP reaches a
//     live pod (TestCoreDNSPodBlackholed).
//   - Knot and Unbound may answer out of order. Once a query written
//     earlier is answered after a later one (seen when connections are
//     shared), the server is known to reorder, and queries share connections
//     up to MaxInFlight: a query asked while another still waits to be
//     written joins it in the same write, else it goes to the least loaded.
//   - dnsmasq serves 100 queries per TCP connection and miekg/dns servers
//     128, then close: queries pipelined past the limit are lost. The pool
//     learns the limit from such a close (right after an answer, queries
//     outstanding; or twice at the same count), retires connections when
//     they reach it and dials their replacements ahead. Queries lost past
//     the limit are re-sent without using their one re-send. A learned limit
//     is forgotten after 10 minutes.
//   - CoreDNS closes connections idle for 10 s, miekg/dns for 8 s. The pool
//     closes them at IdleTimeout (5 s) or earlier if the server announces a
//     shorter edns-tcp-keepalive TIMEOUT (RFC 7828, which every query
//     offers; an option without TIMEOUT, as CoreDNS 1.14 echoes it, says
//     nothing), so an idle close never races a query. A connection idle that
//     long was not needed and is not replaced: the next query that finds none
//     free dials one, so a quiet pod holds none and a pod with a few lookups a
//     second one, instead of a handshake (and a conntrack entry) per pod per
//     5 s at the cluster DNS. ConnsPerServer connections are dialed at start
//     and in place of one retired or lost while the pool is in use.
//   - A ClusterIP pins a connection to one CoreDNS pod. Connections retire
//     at MaxAge minus up to 20% jitter, after their last answers, so load
//     spreads again over CoreDNS pods after a rollout.
//
// Every exchange takes one path: ExchangeAsync's. A call has no goroutine
// waiting on it; whoever brings it an event (the reader of its reply, its
// timer, the pool when a connection comes free) takes its turn and drives
// it. Exchange and ExchangeWire wait for that path's outcome.
//
// # Not losing a query
//
// Whoever removes a query from a connection's in-flight map owns it and
// tells its caller exactly once. When a connection closes or resets, its
// queries in flight are re-sent once on another connection (RFC 7766
// §6.2.4); a second loss is an error, so a query that kills servers does
// not loop. A query unanswered after HedgeAfter is asked again on another
// connection, again after 2× and 3× HedgeAfter, from the second hedge on at
// the next server; the first answer wins and the other attempts are
// canceled (their late answers are recognised and dropped). A server that
// loses 1 query in 20 fails a query only when it loses all four attempts
// (1 in 160 000; BenchmarkSilentDrop). The caller's deadline (or Timeout)
// bounds all of it. A connection that answers nothing for Timeout while a
// query is outstanding is closed as stalled.
//
// # Several servers
//
// Servers are used in Config order: the first one not down takes the
// queries. A server goes down after 3 failures in a row (failed dials,
// queries left unanswered at their deadline or outrun by another server's
// answer, broken framing, stalls). While down it is skipped and probed (a
// fresh connection asking ". NS"; any reply counts) with backoff from
// 250 ms to 5 s; when it answers, traffic returns to it. When every server
// is down, every server is tried anyway, in order: the only one is usually
// the ClusterIP, and a silent CoreDNS pod behind it must not fail every
// lookup until a probe answers.
//
// # Costs
//
// Calls, their timers and buffers are pooled; ExchangeAsync allocates only
// the reply's copy. The client runs one janitor goroutine (10 wake-ups a
// second while a connection is open) plus two goroutines per open
// connection. Close waits for all of them and for every timer function.
//
// # Known limits
//
//   - A serial server with more slow queries in flight than
//     MaxConnsPerServer makes other queries wait for a connection; raise
//     MaxConnsPerServer for such loads.
//   - A server is taken as serial until it reorders, and connections are
//     shared only past the bound, so a server that could answer out of
//     order gets a connection per query outstanding: more connections than
//     it needs, not worse answers.
//   - A server reset that happens to follow an answer with queries
//     outstanding is taken for a query limit; connections then retire early
//     (more dials) until the limit expires.
//
// Tests: the fault-injection suite (fault_test.go) runs every scripted
// misbehaviour against an in-process upstream; coredns_test.go and
// blackhole_linux_test.go run CoreDNS (built by .ci/kubebins.sh),
// real_test.go Knot and dnsmasq (Debian packages knot and dnsmasq-base).
package upstream
