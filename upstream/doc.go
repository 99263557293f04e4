// Package upstream sends podns's queries to the cluster DNS servers over a
// few persistent, pipelined TCP connections, and never over UDP: a pod's
// lookups then never meet the conntrack race that drops UDP packets behind
// the kube-dns ClusterIP (DESIGN.md §1), and a lost segment costs a kernel
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
// Servers behave differently on one connection (DESIGN.md §5), and the pool
// adapts to what it sees:
//
//   - CoreDNS (and dnsmasq) answer a connection's queries one at a time, in
//     order: a slow answer (a CoreDNS forward to the outside) holds up every
//     query behind it. Until a server is seen answering out of order, the
//     pool treats it as serial: a query goes to an idle connection, else to
//     a new one (up to MaxConnsPerServer; dialing costs one round trip, a
//     queue behind a slow answer up to its full time), else to the least
//     loaded connection that has answered recently. A connection silent for
//     a few times the usual latency while a query is outstanding counts as
//     blocked and comes last. With fewer queries in flight than
//     MaxConnsPerServer, a slow answer holds up nothing
//     (BenchmarkSerialSlow).
//   - Knot and Unbound may answer out of order. Once a query written
//     earlier is answered after a later one, the server is known to reorder,
//     and queries share connections: a query asked while another still
//     waits to be written joins it in the same write (the A and AAAA asked
//     together), else it goes to the least loaded connection.
//   - dnsmasq serves 100 queries per TCP connection and miekg/dns servers
//     128, then close: queries pipelined past the limit are lost. The pool
//     learns the limit from such a close (right after an answer, queries
//     outstanding; or twice at the same count), retires connections when
//     they reach it and dials their replacements ahead. Queries lost past
//     the limit are re-sent without using their one re-send. A learned limit
//     is forgotten after 10 minutes.
//   - CoreDNS closes connections idle for 10 s, miekg/dns for 8 s. The pool
//     closes them at IdleTimeout (5 s) or earlier if the server announces a
//     shorter edns-tcp-keepalive timeout (RFC 7828, which every query
//     offers), so an idle close never races a query. An idle pool lets its
//     connections close rather than redial them every 5 s forever (a TCP
//     handshake and a conntrack entry per pod per 5 s at the cluster DNS);
//     the next query dials again, and while the pool is in use it keeps
//     ConnsPerServer connections open, dialing replacements ahead of need.
//   - A ClusterIP pins a connection to one CoreDNS pod. Connections retire
//     at MaxAge minus up to 20% jitter, after their last answers, so load
//     spreads again over CoreDNS pods after a rollout.
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
// is down, Exchange fails at once with ErrNoServer, so the resolver can
// serve stale answers instead of waiting.
//
// # Costs
//
// Calls, timers and buffers are pooled: the 8 allocations per Exchange
// left are the reply's dns.Msg and its unpacking by miekg/dns
// (BenchmarkExchange). The client runs one janitor
// goroutine (10 wake-ups a second) plus two goroutines per open connection.
//
// # Known limits
//
//   - A serial server with more slow queries in flight than
//     MaxConnsPerServer makes other queries wait behind them; raise
//     MaxConnsPerServer for such loads.
//   - A server is taken as serial until it reorders, so a server that
//     could answer out of order but never has to gets more connections
//     than it needs, not worse answers.
//   - A server reset that happens to follow an answer with queries
//     outstanding is taken for a query limit; connections then retire early
//     (more dials) until the limit expires.
//
// Tests: the fault-injection suite (fault_test.go) runs every scripted
// misbehaviour against an in-process upstream; real_test.go runs Knot and
// dnsmasq (Debian packages knot and dnsmasq-base) when installed.
package upstream
