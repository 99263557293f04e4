package resolver

import (
	"context"
	"errors"
	"math"

	"github.com/miekg/dns"
)

// errAllFailed: every candidate of a search walk failed (timeout, SERVFAIL...): the client gets SERVFAIL
// and retries, as glibc's TRY_AGAIN makes it.
var errAllFailed = errors.New("every search candidate failed")

// walkQuestion is a searched client question.
type walkQuestion struct {
	qname  string // as the client spelled it
	name   string // lower case
	qtype  uint16
	qclass uint16
	do, cd bool
}

// walk resolves a searched name as glibc does under ClusterFirst (res_query.c __res_context_search), but
// with the candidates under the cluster domain asked at once (searcher.speculative):
//
//   - the walk ends at the first candidate, in order, that has records — for A and AAAA, records of
//     either type (glibc asks both and stops when either has an answer), so the A and AAAA replies of a
//     name always name the same FQDN;
//   - NXDOMAIN and NODATA move on; a failed candidate (timeout, SERVFAIL) is skipped;
//   - with no records anywhere: NODATA if some candidate had it, else SERVFAIL if some failed, else the
//     name's own NXDOMAIN (glibc's got_nodata, got_servfail, then the last error).
//
// A later candidate's answer is used only once the earlier ones are known to be empty.
func (s *Server) walk(ctx context.Context, wq walkQuestion, force bool) (*dns.Msg, error) {
	cands := s.search.candidates(make([]string, 0, 4), wq.name)
	other, paired := s.pairFor(wq.qtype, wq.qclass)
	primary := make([]handle, len(cands))
	var second []handle
	if paired {
		second = make([]handle, len(cands))
	}
	asked := make([]bool, len(cands))
	started := 0
	// The queries of one round of asks go upstream in one write (flushQueued).
	ask := func(i int) {
		asked[i] = true
		primary[i] = s.lookupFor(cands[i], wq.qtype, wq.qclass, wq.do, wq.cd, force, startQueued, false)
		if primary[i].started {
			started++
		}
		if paired {
			second[i] = s.lookupFor(cands[i], other, wq.qclass, wq.do, wq.cd, force, startQueued, false)
			if second[i].started {
				started++
			}
		}
	}
	for i, c := range cands {
		if i == 0 || s.search.speculative(c) {
			ask(i)
		}
	}
	s.flushQueued()

	perCandidate := 1
	if paired {
		perCandidate = 2
	}
	var nodata, own *dns.Msg
	failed := false
	clamp := uint32(math.MaxUint32)
	for i, c := range cands {
		if !asked[i] { // every candidate before it is known to be empty: ClusterFirst would ask it now
			ask(i)
			s.flushQueued()
		}
		m, ok := primary[i].wait(ctx, s)
		found := ok && hasRecords(m)
		if !found && paired {
			if m2, ok2 := second[i].wait(ctx, s); ok2 && hasRecords(m2) {
				if !ok {
					failed = true // the other type has records here, but ours failed: no answer
					break
				}
				found = true
			}
		}
		if found {
			s.stats.countWalk(started, perCandidate*(i+1))
			return compose(wq, c, m, clamp), nil
		}
		if !ok {
			// A candidate that failed may exist: what a later one answers must not be cached past now.
			failed = true
			clamp = 0
			continue
		}
		t := minTTL(m)
		if t == math.MaxUint32 { // a negative answer without SOA is not cacheable, nor what it decided
			t = 0
		}
		clamp = min(clamp, t)
		if m.Rcode == dns.RcodeSuccess && nodata == nil {
			nodata = m
		}
		if c == wq.name {
			own = m
		}
	}
	s.stats.countWalk(started, perCandidate*len(cands))
	switch {
	case nodata != nil:
		return compose(wq, wq.name, nodata, clamp), nil
	case failed || own == nil:
		return nil, errAllFailed
	}
	return compose(wq, wq.name, own, clamp), nil
}

// hasRecords is glibc's test for an answer: NOERROR with a non-empty answer section.
func hasRecords(m *dns.Msg) bool {
	return m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0
}

// compose builds the reply to the client's question from the answer r for fqdn. When fqdn is another
// name than the question's, the answer starts with a CNAME from the question to it (DESIGN.md §4). No
// record lives longer than clamp, the least TTL among the answers the walk consulted, so the composed
// reply (cached under the client's question) expires no later than any of them: a service created after
// an NXDOMAIN is seen as soon as that NXDOMAIN expires.
func compose(wq walkQuestion, fqdn string, r *dns.Msg, clamp uint32) *dns.Msg {
	m := new(dns.Msg)
	m.Response = true
	m.RecursionAvailable = true
	m.Rcode = r.Rcode
	m.Question = []dns.Question{{Name: wq.qname, Qtype: wq.qtype, Qclass: wq.qclass}}
	ttl := min(clamp, minTTL(r))
	if fqdn != wq.name {
		m.Answer = append(m.Answer, &dns.CNAME{
			Hdr:    dns.RR_Header{Name: wq.qname, Rrtype: dns.TypeCNAME, Class: wq.qclass, Ttl: ttl},
			Target: fqdn,
		})
	}
	m.Answer = appendClamped(m.Answer, r.Answer, clamp)
	m.Ns = appendClamped(m.Ns, r.Ns, clamp)
	m.Extra = appendClamped(m.Extra, r.Extra, clamp)
	return m
}

// appendClamped appends copies of rrs (they may be shared) with TTLs no longer than clamp.
func appendClamped(dst, rrs []dns.RR, clamp uint32) []dns.RR {
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		if rr.Header().Ttl > clamp {
			rr = dns.Copy(rr)
			rr.Header().Ttl = clamp
		}
		dst = append(dst, rr)
	}
	return dst
}

// minTTL is how long an answer stays true: the least TTL of its records, or for a negative answer its
// SOA's negative TTL (RFC 2308 §5: min(SOA TTL, SOA MINIMUM)).
func minTTL(m *dns.Msg) uint32 {
	ttl := uint32(math.MaxUint32)
	for _, rr := range m.Answer {
		ttl = min(ttl, rr.Header().Ttl)
	}
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttl = min(ttl, soa.Hdr.Ttl, soa.Minttl)
		}
	}
	return ttl
}
