package resolver

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/miekg/dns"
)

// statTypes are the query types counted apart; every other type counts as "other". A fixed table keeps
// the per-reply cost at one atomic add and the metric's cardinality bounded whatever clients send.
var statTypes = [...]uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypePTR, dns.TypeSRV, dns.TypeTXT, dns.TypeMX,
	dns.TypeNS, dns.TypeSOA, dns.TypeHTTPS, dns.TypeSVCB, dns.TypeANY,
}

const (
	numStatTypes  = len(statTypes) + 1 // + other
	numStatRcodes = 17                 // 0..15 from the header, 16 for BADVERS
)

// stats are the resolver's counters; Stats returns a snapshot.
type stats struct {
	replies          [numStatTypes][numStatRcodes]atomic.Uint64
	cacheHits        atomic.Uint64
	cacheMisses      atomic.Uint64
	staleServed      atomic.Uint64
	prefetches       atomic.Uint64
	coalesced        atomic.Uint64
	pairFetches      atomic.Uint64 // paired fetches started by direct lookups
	pairReads        atomic.Uint64 // those a client then read
	upstreamQueries  atomic.Uint64
	upstreamErrors   atomic.Uint64
	walks            atomic.Uint64
	walkUpstream     atomic.Uint64 // queries the walks sent upstream
	walkClusterFirst atomic.Uint64 // queries glibc under ClusterFirst would have sent for them
	cutHits          atomic.Uint64 // search candidates known empty from an NXDOMAIN cut
	searchDirect     atomic.Uint64 // searched lookups that asked only the name as given (searchDirect)
	dropped          atomic.Uint64
	overloaded       atomic.Uint64
	tcpRefused       atomic.Uint64
}

func typeIndex(qtype uint16) int {
	for i, t := range statTypes {
		if t == qtype {
			return i
		}
	}
	return len(statTypes)
}

// countReply counts a reply by question type and rcode (read from its header; the OPT's extended rcode
// is only ever set by podns for BADVERS, which it counts as 16).
func (st *stats) countReply(qtype uint16, reply []byte) {
	if len(reply) < headerLen {
		return
	}
	rcode := int(binary.BigEndian.Uint16(reply[2:]) & 0xF)
	if rcode == 0 && len(reply) > headerLen && isBadVers(reply) {
		rcode = dns.RcodeBadVers
	}
	st.replies[typeIndex(qtype)][rcode].Add(1)
}

// isBadVers: podns's BADVERS replies are header + question + an OPT whose extended rcode is 1.
func isBadVers(reply []byte) bool {
	n := len(reply)
	return n >= headerLen+optRRLen && reply[n-optRRLen+2] == byte(dns.TypeOPT) && reply[n-optRRLen+5] == 1
}

// countWalk counts a walk: the queries it sent, and the candidates glibc would have walked for the same
// question, one query each (getaddrinfo's A and AAAA are two questions, so two walks, two per candidate).
func (st *stats) countWalk(upstream, clusterFirst int) {
	st.walks.Add(1)
	st.walkUpstream.Add(uint64(upstream))
	st.walkClusterFirst.Add(uint64(clusterFirst))
}

// Stats is a snapshot of the resolver's counters, for metrics.
type Stats struct {
	// Replies counts replies by question type (TypeNames) and rcode.
	Replies          [numStatTypes][numStatRcodes]uint64
	CacheHits        uint64 // answered from the cache by the fast path
	CacheMisses      uint64 // lookups that went upstream
	StaleServed      uint64 // expired answers served (RFC 8767)
	Prefetches       uint64 // background refreshes started
	Coalesced        uint64 // lookups that joined one in flight
	PairFetches      uint64 // A/AAAA fetched with a direct lookup's miss of the other type
	PairReads        uint64 // paired fetches a client then read
	UpstreamQueries  uint64
	UpstreamErrors   uint64
	SearchWalks      uint64
	WalkUpstream     uint64 // queries the search walks sent upstream
	WalkClusterFirst uint64 // queries ClusterFirst's glibc would have sent for the same walks
	CutHits          uint64 // search candidates answered empty from an NXDOMAIN cut (RFC 8020)
	SearchDirect     uint64 // of SearchWalks, those that asked only the name as given, every other candidate cut
	Dropped          uint64 // packets that were not queries
	Overloaded       uint64 // queries answered SERVFAIL because MaxInFlight was reached
	TCPRefused       uint64 // client TCP connections over MaxTCPConns
}

// TypeNames names the rows of Stats.Replies.
func TypeNames() []string {
	out := make([]string, 0, numStatTypes)
	for _, t := range statTypes {
		out = append(out, dns.TypeToString[t])
	}
	return append(out, "other")
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := &s.stats
	out := Stats{
		CacheHits:        st.cacheHits.Load(),
		CacheMisses:      st.cacheMisses.Load(),
		StaleServed:      st.staleServed.Load(),
		Prefetches:       st.prefetches.Load(),
		Coalesced:        st.coalesced.Load(),
		PairFetches:      st.pairFetches.Load(),
		PairReads:        st.pairReads.Load(),
		UpstreamQueries:  st.upstreamQueries.Load(),
		UpstreamErrors:   st.upstreamErrors.Load(),
		SearchWalks:      st.walks.Load(),
		WalkUpstream:     st.walkUpstream.Load(),
		WalkClusterFirst: st.walkClusterFirst.Load(),
		CutHits:          st.cutHits.Load(),
		SearchDirect:     st.searchDirect.Load(),
		Dropped:          st.dropped.Load(),
		Overloaded:       st.overloaded.Load(),
		TCPRefused:       st.tcpRefused.Load(),
	}
	for i := range st.replies {
		for j := range st.replies[i] {
			out.Replies[i][j] = st.replies[i][j].Load()
		}
	}
	return out
}
