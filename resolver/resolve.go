package resolver

import (
	"context"

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
		h = s.lookupDirect(question{name: name, qtype: q.qtype, qclass: q.qclass, do: q.do, cd: q.cd}, nil)
		s.flushQueued() // both queries in one write if they can
	} else {
		var ok bool
		if h, ok = s.searchHandle(q, name); !ok {
			return result{}
		}
	}
	if h.hit != nil {
		return result{entry: h.hit}
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
			return res
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
			s.prefetch(q)
		}
		return handle{hit: e}, true
	case cache.Stale:
		h.stale = e
	}
	h.call, h.started = s.flight(key, question{}, s.walkFunc(q, name, st == cache.Stale), false, nil)
	return h, true
}

// walkFunc is the search walk for q, to run as a flight.
func (s *Server) walkFunc(q *query, name string, force bool) walkFn {
	qname := nameString(q.qname)
	qtype, qclass, do, cd := q.qtype, q.qclass, q.do, q.cd
	return func(ctx context.Context) (*dns.Msg, error) {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
		return s.walk(ctx, walkQuestion{qname: qname, name: name, qtype: qtype, qclass: qclass, do: do, cd: cd}, force)
	}
}

// prefetch refreshes q's answer in the background: the client was answered from the cache in the last
// tenth of the entry's TTL, so a popular name does not expire while clients keep asking for it.
func (s *Server) prefetch(q *query) {
	name := lowerName(q.qname)
	if s.view(q) == cache.ViewUpstream {
		s.refresh(question{name: name, qtype: q.qtype, qclass: q.qclass, do: q.do, cd: q.cd})
		return
	}
	key, err := keyFor(name, q.qtype, q.qclass, q.do, q.cd, cache.ViewSearch)
	if err != nil {
		return
	}
	s.stats.prefetches.Add(1)
	s.flight(key, question{}, s.walkFunc(q, name, true), false, nil)
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
