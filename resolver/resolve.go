package resolver

import (
	"context"
	"math"

	"github.com/miekg/dns"

	"github.com/podns/podns/cache"
)

// resolve answers a well-formed query: from the cache, from a lookup in flight, or from a new lookup
// (upstream for a name that is not searched, the search walk for one that is). A zero result means
// SERVFAIL.
func (s *Server) resolve(ctx context.Context, q *query) result {
	if s.cfg.AAAAFilter && q.qtype == dns.TypeAAAA && q.qclass == dns.ClassINET {
		return result{msg: filteredAAAA(nameString(q.qname))}
	}
	name := lowerName(q.qname)
	var h handle
	if view := s.view(q); view == cache.ViewUpstream {
		h, _ = s.lookupDirect(question{name: name, qtype: q.qtype, qclass: q.qclass, do: q.do, cd: q.cd}, nil)
		s.flushQueued() // both queries in one write if they can
	} else {
		var ok bool
		if h, ok = s.searchHandle(q, name); !ok {
			return result{}
		}
	}
	if h.hit != nil {
		return s.derived(h.derive, result{entry: h.hit})
	}
	wctx := ctx
	if h.stale != nil {
		// RFC 8767 §5: the stale answer goes out when the refresh takes longer than the wait, and the
		// refresh goes on in the background to update the cache.
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, s.cfg.StaleWait)
		defer cancel()
	}
	if c := h.call; c.waitDone(wctx) == nil {
		if res := c.result(); h.stale == nil || res.answered() {
			return s.derived(h.derive, res)
		}
	}
	if h.stale != nil {
		s.stats.staleServed.Add(1)
		return result{entry: h.stale}
	}
	return result{}
}

// searchHandle finds, or starts, the search walk for a searched name. The composed reply is cached under
// the client's question, so the next ask is one cache lookup.
func (s *Server) searchHandle(q *query, name string) (h handle, ok bool) {
	key, err := keyFor(name, q.qtype, q.qclass, q.do, q.cd, cache.ViewSearch)
	if err != nil {
		return h, false
	}
	e, st := s.cache.Get(key)
	switch st {
	case cache.Fresh, cache.Prefetch:
		if st == cache.Prefetch {
			s.prefetch(q, e)
		}
		return handle{hit: e}, true
	case cache.Stale:
		h.stale = e
	}
	if h.stale == nil {
		if d := s.searchDirect(name, q.qclass); d != nil {
			d.key = key
			h, sent := s.lookupDirect(question{name: name, qtype: q.qtype, qclass: q.qclass, do: q.do, cd: q.cd}, nil)
			s.flushQueued()
			d.count(s, sent)
			h.derive = d
			return h, true
		}
	}
	var hit *cache.Entry
	if h.call, h.started, hit = s.flightFor(key, question{}, s.walkFunc(q, name, st == cache.Stale), false, nil, true); hit != nil {
		return handle{hit: hit}, true // composed while this lookup looked
	}
	return h, true
}

// derivation is a searched question answered by its name as given (searchDirect): the name's own
// reply, cached again under the question's key with no TTL past the cuts that decided it.
type derivation struct {
	key   []byte // the searched question's cache key (ViewSearch)
	clamp uint32 // seconds: the shortest cut's
	cands int    // the walk's candidates, which ClusterFirst would have asked
}

// searchDirect returns the derivation of a searched name whose walk would ask nothing but the name as
// given: the name comes last among its candidates (fewer dots than ndots), and every candidate before
// it is known empty from a cut, as the walk would trust it (walker.underCut, outside a refresh). Then
// the walk's answer is the name's own, and its lookup is the direct one, with none of the walk's work.
// nil otherwise. The caller sets the derivation's key (the question's, which the derivation owns).
func (s *Server) searchDirect(name string, qclass uint16) *derivation {
	var buf [8]string
	cands := s.search.candidates(buf[:0], name)
	if len(cands) < 2 || cands[len(cands)-1] != name {
		return nil
	}
	clamp := uint32(math.MaxUint32)
	for _, c := range cands[:len(cands)-1] {
		ttl, ok, _ := s.cutTTL(c, s.search.cutName(name, c), qclass, false)
		if !ok {
			return nil
		}
		clamp = min(clamp, ttl)
	}
	return &derivation{clamp: clamp, cands: len(cands)}
}

// count counts the lookup as the walk it replaces: sent queries upstream, where ClusterFirst would
// have sent one per candidate, every candidate but the last answered from a cut.
func (d *derivation) count(s *Server, sent int) {
	s.stats.countWalk(sent, d.cands)
	s.stats.cutHits.Add(uint64(d.cands - 1))
	s.stats.searchDirect.Add(1)
}

// derived caches res's entry again under d's key, its TTLs clamped, and returns the copy: res itself
// for a nil d, or an entry that is no answer (a SERVFAIL cached under the name's own key: the walk
// caches no failure under the question).
func (s *Server) derived(d *derivation, res result) result {
	if d == nil || res.entry == nil || !answeredEntry(res.entry) {
		return res
	}
	if e, _ := s.cache.Derive(d.key, res.entry, d.clamp); e != nil {
		return result{entry: e}
	}
	return res
}

// walkFunc is the search walk for q, to run as a flight.
func (s *Server) walkFunc(q *query, name string, force bool) walkFn {
	return s.walkFn(walkQuestion{qname: nameString(q.qname), name: name, qtype: q.qtype, qclass: q.qclass, do: q.do, cd: q.cd}, force)
}

// walkFn is walkFunc for a question already taken from the client's packet.
func (s *Server) walkFn(wq walkQuestion, force bool) walkFn {
	return func(ctx context.Context) (*dns.Msg, error) {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
		return s.walk(ctx, wq, force)
	}
}

// prefetch schedules the refresh of q's answer, e, which a client was answered from in the last tenth
// of its TTL: at e's expiry (refreshAt), so that a popular name does not miss while clients keep
// asking for it.
func (s *Server) prefetch(q *query, e *cache.Entry) {
	name := lowerName(q.qname)
	if s.view(q) == cache.ViewUpstream {
		s.refreshAt(e, refreshJob{view: cache.ViewUpstream, q: question{name: name, qtype: q.qtype, qclass: q.qclass, do: q.do, cd: q.cd}})
		return
	}
	s.refreshAt(e, refreshJob{view: cache.ViewSearch, wq: walkQuestion{
		qname: nameString(q.qname), name: name, qtype: q.qtype, qclass: q.qclass, do: q.do, cd: q.cd,
	}})
}

// filteredAAAA is the local NODATA for PODNS_AAAA=filter, with an SOA so that clients cache it
// (RFC 2308 §5) for its 30 s.
func filteredAAAA(qname string) *dns.Msg {
	m := new(dns.Msg)
	m.Response = true
	m.Rcode = dns.RcodeSuccess
	m.Ns = []dns.RR{&dns.SOA{
		Hdr:     dns.RR_Header{Name: qname, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 30},
		Ns:      "localhost.",
		Mbox:    "hostmaster.localhost.",
		Serial:  1,
		Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 30,
	}}
	return m
}
