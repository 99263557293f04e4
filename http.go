package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"

	"github.com/podns/podns/resolver"
	"github.com/podns/podns/upstream"
)

// startHTTP serves /metrics, /healthz and /readyz on PODNS_HTTP_ADDR. The Prometheus text format is
// written by hand: a dozen counters do not need client_golang, which would add several megabytes to the
// binary and its RSS (README, "Metrics").
func (a *app) startHTTP(log zerolog.Logger) error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listening on http %s: %w", a.cfg.HTTPAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", a.serveMetrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", a.serveReady)
	a.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	a.httpAddr = ln.Addr()
	go func() {
		if err := a.http.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error().Err(err).Msg("http server")
		}
	}()
	return nil
}

// serveReady: ready while the listeners are up, podns is not draining, and an upstream answers.
func (a *app) serveReady(w http.ResponseWriter, r *http.Request) {
	switch {
	case a.draining.Load():
		http.Error(w, "draining", http.StatusServiceUnavailable)
	case !a.srv.Listening():
		http.Error(w, "listeners down", http.StatusServiceUnavailable)
	case !a.up.Healthy():
		http.Error(w, "no upstream reachable", http.StatusServiceUnavailable)
	default:
		fmt.Fprintln(w, "ok")
	}
}

// promWriter writes the Prometheus text exposition format (version 0.0.4).
type promWriter struct{ w *bufio.Writer }

func (p promWriter) help(name, typ, help string) {
	fmt.Fprintf(p.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func (p promWriter) value(name string, v uint64, labels ...string) {
	p.w.WriteString(name)
	if len(labels) > 0 {
		p.w.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				p.w.WriteByte(',')
			}
			fmt.Fprintf(p.w, "%s=%q", labels[i], labels[i+1])
		}
		p.w.WriteByte('}')
	}
	p.w.WriteByte(' ')
	p.w.WriteString(strconv.FormatUint(v, 10))
	p.w.WriteByte('\n')
}

func (p promWriter) counter(name, help string, v uint64) {
	p.help(name, "counter", help)
	p.value(name, v)
}

func (p promWriter) gauge(name, help string, v uint64) {
	p.help(name, "gauge", help)
	p.value(name, v)
}

func (a *app) serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	p := promWriter{bw}
	a.writeResolverMetrics(p)
	a.writeCacheMetrics(p)
	a.writeUpstreamMetrics(p)
}

func (a *app) writeResolverMetrics(p promWriter) {
	st := a.srv.Stats()
	p.help("podns_queries_total", "counter", "Replies sent to clients, by question type and rcode.")
	types := resolver.TypeNames()
	for i, row := range st.Replies {
		for rc, v := range row {
			if v == 0 {
				continue
			}
			p.value("podns_queries_total", v, "type", types[i], "rcode", rcodeName(rc))
		}
	}
	p.counter("podns_cache_hits_total", "Queries answered from the cache.", st.CacheHits)
	p.counter("podns_cache_misses_total", "Lookups sent upstream because the cache had no fresh answer.", st.CacheMisses)
	p.counter("podns_cache_stale_served_total", "Expired answers served because the upstream failed or was slow (RFC 8767).", st.StaleServed)
	p.counter("podns_prefetches_total", "Background refreshes of cached answers.", st.Prefetches)
	p.counter("podns_coalesced_total", "Lookups that joined an identical one already in flight.", st.Coalesced)
	p.counter("podns_pair_fetches_total", "A or AAAA fetched along with a miss for the other type of the same name.", st.PairFetches)
	p.counter("podns_pair_reads_total", "Paired fetches a client then asked for; podns pairs while at least a quarter are.", st.PairReads)
	p.counter("podns_upstream_queries_total", "Queries podns sent to the cluster DNS.", st.UpstreamQueries)
	p.counter("podns_upstream_query_errors_total", "Upstream queries that got no usable reply.", st.UpstreamErrors)
	p.counter("podns_search_walks_total", "Search-list expansions run (cache misses of short names).", st.SearchWalks)
	p.counter("podns_search_upstream_queries_total", "Upstream queries the search walks sent.", st.WalkUpstream)
	p.counter("podns_search_clusterfirst_queries_total", "Queries glibc under ClusterFirst would have sent for the same walks; minus podns_search_upstream_queries_total, the queries saved.", st.WalkClusterFirst)
	p.counter("podns_search_cut_hits_total", "Search candidates known empty from a cached NXDOMAIN cut (RFC 8020), without a query.", st.CutHits)
	p.counter("podns_search_direct_total", "Search walks that asked only the name as given, every other candidate known empty from a cut.", st.SearchDirect)
	p.counter("podns_dropped_total", "Packets dropped: not a query, or too short for a header.", st.Dropped)
	p.counter("podns_overloaded_total", "Queries answered SERVFAIL because too many were in flight.", st.Overloaded)
	p.counter("podns_tcp_refused_total", "Client TCP connections refused over the limit.", st.TCPRefused)
}

func (a *app) writeCacheMetrics(p promWriter) {
	st := a.cache.Stats()
	p.gauge("podns_cache_entries", "Entries in the cache.", uint64(st.Entries))
	p.gauge("podns_cache_bytes", "Bytes the cache holds (charged size).", uint64(st.Bytes))
	p.gauge("podns_cache_max_bytes", "The cache's bound (PODNS_CACHE_BYTES).", uint64(st.MaxBytes))
	p.counter("podns_cache_evictions_total", "Entries evicted to stay within the bound.", st.Evictions)
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return strconv.Itoa(rc)
}

func (a *app) writeUpstreamMetrics(p promWriter) {
	st := a.up.Stats()
	p.counter("podns_upstream_exchanges_total", "Exchanges the upstream client was asked for.", st.Queries)
	p.counter("podns_upstream_answers_total", "Upstream replies returned (any rcode).", st.Answers)
	p.counter("podns_upstream_servfail_total", "Upstream replies with rcode SERVFAIL.", st.Servfail)
	p.help("podns_upstream_errors_total", "counter", "Upstream exchanges that failed, by kind.")
	for _, e := range []struct {
		kind string
		v    uint64
	}{
		{"timeout", st.Timeouts}, {"canceled", st.Canceled}, {"no_server", st.NoServer}, {"busy", st.Busy},
		{"conn_lost", st.ConnLost}, {"bad_reply", st.BadReplies}, {"truncated", st.Truncated},
		{"closed", st.Closed}, {"bad_query", st.BadQueries},
	} {
		p.value("podns_upstream_errors_total", e.v, "kind", e.kind)
	}
	p.counter("podns_upstream_resends_total", "Queries re-sent on another connection after theirs closed (RFC 7766 §6.2.4).", st.Resends)
	p.counter("podns_upstream_hedges_total", "Queries asked again on another connection after no answer for a while.", st.Hedges)
	p.counter("podns_upstream_hedge_wins_total", "Answers that came from a hedge.", st.HedgeWins)
	p.counter("podns_upstream_dropped_replies_total", "Replies dropped: unknown ID, or another question (RFC 5452).", st.Strays+st.Mismatches)
	p.help("podns_upstream_connections_opened_total", "counter", "Upstream TCP connections opened, by why: demand (a query found none free), replacement (one in use was lost), rotation (one retired at its maximum age or the server's query limit).")
	for _, r := range []struct {
		reason string
		i      int
	}{{"demand", upstream.DialDemand}, {"replacement", upstream.DialReplacement}, {"rotation", upstream.DialRotation}} {
		p.value("podns_upstream_connections_opened_total", st.ConnsOpenedBy[r.i], "reason", r.reason)
	}
	p.counter("podns_upstream_conn_waits_total", "Upstream queries that waited for a connection to come free (every one allowed was busy).", st.Waits)
	fmt.Fprintf(p.w, "# HELP podns_upstream_conn_wait_seconds_total Time upstream queries spent waiting for a connection.\n# TYPE podns_upstream_conn_wait_seconds_total counter\npodns_upstream_conn_wait_seconds_total %g\n", st.WaitTime.Seconds())
	p.counter("podns_upstream_silent_closes_total", "Upstream connections closed because the server acknowledged nothing for 250 ms (its queries went to others).", st.SilentPeers)
	p.counter("podns_upstream_slow_dials_total", "Upstream dials slower than 100 ms, whose queries went to other connections.", st.SlowDials)
	p.counter("podns_upstream_connections_closed_total", "Upstream TCP connections closed.", st.ConnsClosed)
	p.counter("podns_upstream_dial_errors_total", "Failed dials to an upstream.", st.DialErrors)
	p.gauge("podns_upstream_connections", "Upstream TCP connections open or dialing.", st.Conns)
	p.gauge("podns_upstream_in_flight", "Upstream exchanges in progress.", st.InFlight)
	p.help("podns_upstream_up", "gauge", "1 while an upstream address is answering (or not yet known to be down).")
	for _, s := range st.Servers {
		up := uint64(0)
		if s.Up {
			up = 1
		}
		p.value("podns_upstream_up", up, "server", s.Addr)
	}
	p.help("podns_upstream_pool_connections", "gauge", "Upstream TCP connections open or dialing, per upstream address.")
	for _, s := range st.Servers {
		p.value("podns_upstream_pool_connections", uint64(s.Conns), "server", s.Addr)
	}
	p.help("podns_upstream_pool_waiting", "gauge", "Upstream queries waiting for a connection, per upstream address.")
	for _, s := range st.Servers {
		p.value("podns_upstream_pool_waiting", uint64(s.Waiting), "server", s.Addr)
	}
	p.help("podns_upstream_latency_seconds", "histogram", "Time from sending a query upstream to its answer.")
	var cum uint64
	bounds := upstream.LatencyBounds()
	for i, n := range st.Latency {
		cum += n
		le := "+Inf"
		if i < len(bounds) {
			le = strconv.FormatFloat(bounds[i].Seconds(), 'g', -1, 64)
		}
		p.value("podns_upstream_latency_seconds_bucket", cum, "le", le)
	}
	fmt.Fprintf(p.w, "podns_upstream_latency_seconds_sum %g\n", st.LatencySum.Seconds())
	p.value("podns_upstream_latency_seconds_count", cum)
}
