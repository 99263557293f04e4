package resolver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/miekg/dns"

	"github.com/podns/podns/cache"
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

// walk resolves a searched name as glibc does under ClusterFirst (res_query.c __res_context_search):
//
//   - the walk ends at the first candidate, in order, that has records — for A and AAAA, records of
//     either type (glibc asks both and stops when either has an answer), so the A and AAAA replies of a
//     name always name the same FQDN;
//   - NXDOMAIN and NODATA move on; a failed candidate (timeout, SERVFAIL) is skipped;
//   - with no records anywhere: NODATA if some candidate had it, else SERVFAIL if some failed, else the
//     name's own NXDOMAIN (glibc's got_nodata, got_servfail, then the last error).
//
// It never asks a candidate before the ones ahead of it are known to be empty: every query a walk sends
// costs the cluster DNS, times the pod count, and one asked ahead is wasted whenever an earlier
// candidate answers. What it saves on ClusterFirst comes from what it knows instead:
//
//   - a candidate under a cached NXDOMAIN cut (cutName; RFC 8020) is empty, and costs no query;
//   - an NXDOMAIN for one type is one for every type, so a candidate is probed with one query (probe)
//     and the other type is asked only when the probe is not NXDOMAIN. Where the answer is likely
//     (the first candidate of a one-label name, the name as given) both types go at once, as glibc
//     sends them: the same cost, and no round trip more;
//   - the probe's NXDOMAIN at a candidate of a name of several labels pays for asking its cut name
//     (learnCut), once per cut and negative TTL: the next names with that last label skip it;
//   - a name of two dots or more, below ndots, has the cut names of its first two candidates asked at
//     once before them (askCutsAhead), and the name itself with the third's: a cold external name
//     takes two round trips.
//
// So a walk costs at most what glibc sends for the same name, whatever the cache holds, unless the
// cluster DNS is slow (askAheadAfter).
func (s *Server) walk(ctx context.Context, wq walkQuestion, force bool) (*dns.Msg, error) {
	cands := s.search.candidates(make([]string, 0, 4), wq.name)
	w := s.newWalker(wq, force)
	defer w.slow.Stop()
	w.askCutsAhead(cands)
	var nodata, own *dns.Msg
	failed := false
	clamp := uint32(math.MaxUint32)
	asked := 0
	end := len(cands)
walk:
	for i, c := range cands {
		w.rest = cands[i+1:]
		cut := s.search.cutName(wq.name, c)
		ttl, ok, renew := w.underCut(c, cut)
		if ok {
			clamp = min(clamp, ttl)
			continue
		}
		if ahead := w.cutsAhead&(1<<i) != 0; ahead || renew || s.search.cutFirst(c, cut) {
			if w.cutsAhead != 0 && !ahead && i+2 == len(cands) {
				w.askName(cands[i+1]) // both cuts ahead were NXDOMAIN: the name itself is the likely answer
			}
			if ttl, ok := w.probeCut(ctx, cut); ok {
				clamp = min(clamp, ttl)
				continue
			}
		}
		// Both types at once where no cut is left to learn and the answer is likely: the first
		// candidate of a one-label name, and the name as given (first at or above ndots, else last).
		full := cut == "" || (cut == c && asked == 0)
		asked++
		m, st := w.try(ctx, c, full)
		switch st {
		case candFound:
			s.stats.countWalk(w.started, i+1)
			return compose(wq, c, m.msg, clamp), nil
		case candFatal: // the other type has records here, but ours failed: no answer
			failed = true
			end = i + 1
			break walk
		case candFailed:
			// A candidate that failed may exist: what a later one answers must not be cached past now.
			failed = true
			clamp = 0
			continue
		case candNX:
			if cut != "" {
				w.setCut(c, m)
				if cut != c {
					w.learnCut(cut)
				}
			}
		}
		t := minTTL(m.msg)
		if t == math.MaxUint32 { // a negative answer without SOA is not cacheable, nor what it decided
			t = 0
		}
		clamp = min(clamp, t)
		if m.msg.Rcode == dns.RcodeSuccess && nodata == nil {
			nodata = m.msg
		}
		if c == wq.name {
			own = m.msg
		}
	}
	s.stats.countWalk(w.started, end)
	switch {
	case nodata != nil:
		return compose(wq, wq.name, nodata, clamp), nil
	case failed || own == nil:
		return nil, errAllFailed
	}
	return compose(wq, wq.name, own, clamp), nil
}

// walker is one walk's lookups: the types it asks and the queries it sent.
type walker struct {
	s       *Server
	wq      walkQuestion
	force   bool      // skip fresh cache entries and cuts (a refresh)
	types   [2]uint16 // the question's type, then the other of the A/AAAA pair when paired
	paired  bool
	probe   int // the index in types of the type a candidate is probed with
	started int // queries this walk sent upstream

	// cutsAhead has bit i set when candidate i's cut name was asked before the walk began
	// (askCutsAhead): the walk waits for that answer instead of probing the candidate.
	cutsAhead uint8

	// slow fires askAheadAfter into the walk; then, while a cluster candidate is awaited, the
	// candidates after it (rest) are asked at once (askAhead), once.
	slow  *time.Timer
	rest  []string
	ahead bool
}

// askAheadAfter: a cluster candidate answered in well under a millisecond when the cluster DNS is
// healthy; one still unanswered after 100 ms met a lost packet, a hedge to another server or an
// overloaded one, and every round still to come would wait as long, past the 3 s a walk may take
// (Config.Timeout) and the 5 s the client waits. Then the rest of the walk is asked at once: queries
// spent only when the cluster DNS is slow, to keep the answer within the client's patience.
const askAheadAfter = 100 * time.Millisecond

func (s *Server) newWalker(wq walkQuestion, force bool) *walker {
	w := &walker{s: s, wq: wq, force: force, slow: time.NewTimer(s.cfg.askAheadAfter)}
	w.types[0] = wq.qtype
	w.types[1], w.paired = s.pairFor(wq.qtype, wq.qclass)
	// getaddrinfo's A and AAAA walks of one name run at once: probing both with A lets them share every
	// probe (the flight table coalesces it). When clients ask one type alone (the pair gauge is off),
	// each walk probes with its own.
	if w.paired && wq.qtype == dns.TypeAAAA && s.pairs.on() {
		w.probe = 1
	}
	return w
}

// candAnswer is what a candidate answered, with the cache entry that holds it when there is one.
type candAnswer struct {
	msg   *dns.Msg
	entry *cache.Entry
}

// What a candidate turned out to be.
type candState uint8

const (
	candNoData candState = iota // NOERROR without records of either type
	candNX                      // NXDOMAIN: nothing at or below it
	candFound                   // records: the walk ends here
	candFailed                  // no usable answer: skipped, as glibc skips it
	candFatal                   // records of the other type, but the question's own failed
)

// try asks candidate c: the probe type first, the other types only when the probe is not NXDOMAIN;
// with full, both types at once.
func (w *walker) try(ctx context.Context, c string, full bool) (candAnswer, candState) {
	var hs [2]handle
	var asked [2]bool
	ask := func(i int) {
		if !asked[i] {
			asked[i] = true
			hs[i] = w.lookup(c, w.types[i])
			w.count(hs[i])
		}
	}
	get := func(i int) (*dns.Msg, bool) {
		ask(i)
		w.s.flushQueued() // the queries of one round go upstream in one write
		w.waitSlow(ctx, c, hs[i])
		return hs[i].wait(ctx, w.s)
	}
	if full {
		ask(0)
		if w.paired {
			ask(1)
		}
	}
	if m, ok := get(w.probe); ok && m.Rcode == dns.RcodeNameError {
		return candAnswer{m, hs[w.probe].entry()}, candNX
	}
	m, ok := get(0)
	if ok && hasRecords(m) {
		return candAnswer{msg: m}, candFound
	}
	if w.paired {
		if mo, oko := get(1); oko && hasRecords(mo) {
			if !ok {
				return candAnswer{}, candFatal
			}
			return candAnswer{msg: m}, candFound
		}
	}
	switch {
	case !ok:
		return candAnswer{}, candFailed
	case m.Rcode == dns.RcodeNameError:
		return candAnswer{m, hs[0].entry()}, candNX
	}
	return candAnswer{msg: m}, candNoData
}

// waitSlow waits for h, a lookup of candidate c, until the walk is slow (askAheadAfter): then, if c is
// under the cluster domain, it asks the rest of the walk at once. The name as given, first at or above
// ndots, is not: a name out of the cluster may take that long.
func (w *walker) waitSlow(ctx context.Context, c string, h handle) {
	if w.ahead || h.call == nil || w.s.search.cluster == "" || !subdomain(w.s.search.cluster, c) {
		return
	}
	select {
	case <-h.call.done:
	case <-ctx.Done():
	case <-w.slow.C:
		w.askAhead()
	}
}

// askAhead sends the first queries the walk would send for each candidate still to come, so that they
// all wait out the slow cluster DNS together. The walk then goes on in order, and finds them asked.
func (w *walker) askAhead() {
	w.ahead = true
	s := w.s
	for _, c := range w.rest {
		cut := s.search.cutName(w.wq.name, c)
		if _, ok, _ := w.cutTTL(c, cut); ok {
			continue
		}
		switch {
		case s.search.cutFirst(c, cut): // as probeCut asks it
			w.count(s.lookup(question{name: cut, qtype: dns.TypeA, qclass: w.wq.qclass}, w.force))
		case cut == "": // the name as given: both types at once, as try asks it
			w.count(w.lookup(c, w.types[0]))
			if w.paired {
				w.count(w.lookup(c, w.types[1]))
			}
		default:
			w.count(w.lookup(c, w.types[w.probe]))
		}
	}
	s.flushQueued()
}

// askCutsAhead asks, at once and before any candidate, the cut names of the first two candidates of
// an A or AAAA walk of a name with two dots or more that is asked as given last (below ndots). Such a
// name is an external one (www.example.com), a pod-IP name (10-0-0-7.ns.pod) or one under svc
// (graylog.ns.svc): for all three the first two candidates are empty, and their cuts' NXDOMAINs come
// back in one round trip where probing the candidates takes two, and cover every later name with the
// same last label. When both are NXDOMAIN and the third candidate's cut is asked too, the name itself
// goes with it (walk), so a cold external name takes two round trips instead of four. For a name found
// at the second candidate (web-0.web.ns: its cut is a Namespace, which exists) the cut costs the query
// the candidate's probe would have: no class of name costs more than under ClusterFirst.
func (w *walker) askCutsAhead(cands []string) {
	s := w.s
	name := w.wq.name
	if !w.paired || w.force || len(cands) < 3 || cands[len(cands)-1] != name || dns.CountLabel(name) < 3 {
		return
	}
	for i, c := range cands[:2] {
		cut := s.search.cutName(name, c)
		if cut == "" || cut == c || s.search.known(cut) {
			continue
		}
		if _, ok, _ := w.cutTTL(c, cut); ok {
			if i == 0 {
				return // the first cut is known: its TLD was walked lately, and the second's likely too
			}
			continue
		}
		w.cutsAhead |= 1 << i
		w.count(s.lookup(question{name: cut, qtype: dns.TypeA, qclass: w.wq.qclass}, false))
	}
	if w.cutsAhead != 0 {
		s.flushQueued()
	}
}

// askName queues both types of the name as given, which the walk reaches next unless the candidate it
// now waits for exists.
func (w *walker) askName(name string) {
	w.count(w.lookup(name, w.types[0]))
	w.count(w.lookup(name, w.types[1]))
}

// lookup asks for one type of candidate c, its queries queued for the next flushQueued.
func (w *walker) lookup(c string, qtype uint16) handle {
	return w.s.lookup(question{name: c, qtype: qtype, qclass: w.wq.qclass, do: w.wq.do, cd: w.wq.cd}, w.force)
}

// count counts h's query, if it sent one.
func (w *walker) count(h handle) {
	if h.started {
		w.started++
	}
}

// underCut reports whether candidate c is known empty from a cut: its own NXDOMAIN, for any type, or
// its cut name's (cutName), and for how long the cut lasts (seconds). A refresh (force) trusts a cut
// only outside the last tenth of its TTL; renew reports a cut name's cut in that tenth, or expired less
// than a tenth ago, which the walk asks again (probeCut) instead of the candidate: the one query renews
// it for every name under it, and the refreshes of those names, which come due together when the cut
// expires (their answers live no longer than it; refreshAt), find it renewed.
func (w *walker) underCut(c, cut string) (ttl uint32, ok, renew bool) {
	ttl, ok, renew = w.cutTTL(c, cut)
	if ok {
		w.s.stats.cutHits.Add(1)
	}
	return ttl, ok, renew
}

// cutTTL is underCut without counting a hit.
func (w *walker) cutTTL(c, cut string) (ttl uint32, ok, renew bool) {
	return w.s.cutTTL(c, cut, w.wq.qclass, w.force)
}

// cutTTL is walker.cutTTL for a walk of class qclass, a refresh when force is set.
func (s *Server) cutTTL(c, cut string, qclass uint16, force bool) (ttl uint32, ok, renew bool) {
	if cut == "" {
		return 0, false, false
	}
	ttl, due, ok := s.cutAt(c, qclass, force)
	if !ok && !due && cut != c {
		ttl, due, ok = s.cutAt(cut, qclass, force)
		renew = due && force
	}
	if due && force {
		return 0, false, renew
	}
	return ttl, ok, false
}

// setCut stores c's NXDOMAIN as a cut.
func (w *walker) setCut(c string, a candAnswer) {
	if a.entry == nil {
		return // not stored (no SOA, a stale answer): no negative TTL to keep it by
	}
	if key, err := cutKeyFor(c, w.wq.qclass); err == nil {
		w.s.cache.SetCut(key, a.entry)
	}
}

// learnCut asks cut's A once, unless what it would tell is known, and keeps its NXDOMAIN as a cut. The
// walk does not wait for it: it goes on with the next candidate, which the answer does not decide.
// Its query is paid for by the probe the NXDOMAIN just spared (try), and saved by every later name
// under the cut.
func (w *walker) learnCut(cut string) {
	s := w.s
	qclass := w.wq.qclass
	ckey, err := cutKeyFor(cut, qclass)
	if err != nil || s.search.known(cut) {
		return // a search domain or above one exists: no cut there
	}
	if _, _, ok := s.cache.Cut(ckey); ok {
		return
	}
	h := s.lookup(question{name: cut, qtype: dns.TypeA, qclass: qclass}, false)
	if h.hit != nil {
		if h.hit.Kind() == cache.NXDomain {
			s.cache.SetCut(ckey, h.hit)
		}
		return
	}
	if h.started {
		w.started++
	}
	s.flushQueued()
	s.flight(ckey, question{}, func(ctx context.Context) (*dns.Msg, error) {
		if m, ok := h.wait(ctx, s); ok && m.Rcode == dns.RcodeNameError {
			if e := h.entry(); e != nil {
				s.cache.SetCut(ckey, e)
			}
		}
		return nil, errCutProbe // nothing for the flight to store: the lookup stored its answer
	}, false, nil)
}

// probeCut asks cut's A and waits: its NXDOMAIN is kept as a cut, and reported with its TTL.
func (w *walker) probeCut(ctx context.Context, cut string) (uint32, bool) {
	s := w.s
	h := s.lookup(question{name: cut, qtype: dns.TypeA, qclass: w.wq.qclass}, w.force)
	if h.started {
		w.started++
	}
	s.flushQueued()
	w.waitSlow(ctx, cut, h) // a cut name is under the cluster domain: slow, it has the rest asked at once
	m, ok := h.wait(ctx, s)
	if !ok || m.Rcode != dns.RcodeNameError {
		return 0, false
	}
	w.setCut(cut, candAnswer{m, h.entry()})
	t := minTTL(m)
	if t == math.MaxUint32 {
		t = 0
	}
	return t, true
}

// errCutProbe ends the flight of a cut probe (learnCut), which has no reply of its own.
var errCutProbe = errors.New("cut probe")

// cutAt reports whether a fresh cut is stored at name (ok), for how many more seconds, and whether it
// is in the last tenth of its TTL (due); for a refresh, due also when it expired less than a tenth of
// its TTL (or a second) ago. The seconds are rounded up, as a DNS cache counts what is left of a TTL
// (CoreDNS: the TTL less the whole seconds gone): the answers a cut decides then expire with it, not up
// to a second before it, and their refresh (refreshAt) finds it just expired, to renew.
func (s *Server) cutAt(name string, qclass uint16, refresh bool) (ttl uint32, due, ok bool) {
	var wire [maxNameWire]byte
	n, err := dns.PackDomainName(name, wire[:], 0, nil, false)
	if err != nil {
		return 0, false, false
	}
	var kb [maxNameWire + 16]byte
	left, lifetime, stored := s.cache.CutLeft(cache.AppendCutKey(kb[:0], wire[:n], qclass))
	if !stored {
		return 0, false, false
	}
	due = 10*left < lifetime
	if left <= 0 {
		due = refresh && -left < max(lifetime/10, time.Second)
	}
	if due && refresh {
		// Another refresh may have renewed it a moment ago: its answer is in the cache (under the cut
		// name's A, as probeCut asks it) before its walk stores the cut again. Then it is renewed.
		e, renewed := s.cache.Peek(cache.AppendKey(kb[:0], wire[:n], dns.TypeA, qclass, false, false, cache.ViewUpstream))
		if e != nil && e.Kind() == cache.NXDomain && 10*renewed >= lifetime {
			left, due = renewed, false
		}
	}
	if left <= 0 {
		return 0, due, false
	}
	return uint32((left + time.Second - 1) / time.Second), due, true
}

// cutKeyFor builds the cache key of a cut at a presentation-form name.
func cutKeyFor(name string, qclass uint16) ([]byte, error) {
	var wire [maxNameWire]byte
	n, err := dns.PackDomainName(name, wire[:], 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("packing name %q: %w", name, err)
	}
	return cache.AppendCutKey(make([]byte, 0, n+16), wire[:n], qclass), nil
}

// hasRecords is glibc's test for an answer: NOERROR with a non-empty answer section.
func hasRecords(m *dns.Msg) bool {
	return m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0
}

// compose builds the reply to the client's question from the answer r for fqdn. When fqdn is another
// name than the question's, the answer starts with a CNAME from the question to it (glibc, musl and Go
// take the CNAME's target as the canonical name, as they would from the search walk itself). No
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
