package resolver

import (
	"strings"

	"github.com/miekg/dns"
)

// searcher turns a question name into the ordered list of FQDNs that ClusterFirst's resolv.conf would
// make glibc try (res_query.c __res_context_search):
//
//   - fewer dots than ndots: every search domain appended in order, then the name as given;
//   - at least ndots dots: the name as given, then the search domains;
//   - names that can only mean themselves go upstream as they are: names under the cluster domain,
//     reverse names, the root, and the configured suffixes.
//
// glibc counts the dots of the name as typed. A query reaches podns as an FQDN, so a name typed with a
// trailing dot ("example.com.") is searched like "example.com"; that only differs from ClusterFirst when a
// search candidate of it exists, which no real cluster name does.
type searcher struct {
	search   []string // lower-case FQDNs, in order
	ndots    int
	cluster  string   // the lower-case cluster domain FQDN; "" when unset
	noSearch []string // lower-case FQDN suffixes: a name at or under one is not searched
	// noSearchWire holds noSearch in wire format, for expandsWire.
	noSearchWire []string
}

// reverseZones always go upstream as they are: no search domain can turn a PTR name into another.
var reverseZones = []string{"in-addr.arpa.", "ip6.arpa."}

func newSearcher(search []string, ndots int, cluster string, noSearch []string) searcher {
	s := searcher{ndots: ndots}
	if cluster = strings.ToLower(dns.Fqdn(strings.TrimSpace(cluster))); cluster != "." {
		s.cluster = cluster
		noSearch = append([]string{cluster}, noSearch...)
	}
	for _, d := range search {
		d = strings.ToLower(dns.Fqdn(strings.TrimSpace(d)))
		if d != "." {
			s.search = append(s.search, d)
		}
	}
	for _, d := range append(noSearch[:len(noSearch):len(noSearch)], reverseZones...) {
		d = strings.ToLower(dns.Fqdn(strings.TrimSpace(d)))
		if d == "." {
			continue
		}
		var wire [maxNameWire]byte
		n, err := dns.PackDomainName(d, wire[:], 0, nil, false)
		if err != nil {
			continue
		}
		s.noSearch = append(s.noSearch, d)
		s.noSearchWire = append(s.noSearchWire, string(wire[:n]))
	}
	return s
}

// expands reports whether name (a lower-case FQDN) is searched, i.e. whether its answer can come from
// another name than itself.
func (s *searcher) expands(name string) bool {
	if name == "." || len(s.search) == 0 {
		return false
	}
	for _, suffix := range s.noSearch {
		if subdomain(suffix, name) {
			return false
		}
	}
	return true
}

// candidates appends to dst the FQDNs to try for name (a lower-case FQDN), in glibc's order.
func (s *searcher) candidates(dst []string, name string) []string {
	if !s.expands(name) {
		return append(dst, name)
	}
	dots := dns.CountLabel(name) - 1
	asIs := dots >= s.ndots
	if asIs {
		dst = append(dst, name)
	}
	for _, d := range s.search {
		// RFC 1035 §3.1: a name is at most 255 octets on the wire (one more than its presentation).
		if c := name + d; len(c) < 255 {
			dst = append(dst, c)
		}
	}
	if !asIs {
		dst = append(dst, name)
	}
	return dst
}

// expandsWire is expands for a lower-case wire-format name, without allocating: the hot path asks it
// for every query to find the cache key space.
func (s *searcher) expandsWire(lname []byte) bool {
	if len(lname) <= 1 || len(s.search) == 0 {
		return false
	}
	for off := 0; off < len(lname) && lname[off] != 0; off += 1 + int(lname[off]) {
		rest := lname[off:]
		for _, suffix := range s.noSearchWire {
			if string(rest) == suffix {
				return false
			}
		}
	}
	return true
}

// lowerWire appends a lower-case copy of a wire-format name (RFC 4343: ASCII case only).
func lowerWire(dst, name []byte) []byte {
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// known reports whether name (a lower-case FQDN) is known to exist: a search domain or above one, or
// pod.<cluster domain>, where the Kubernetes DNS specification puts the pods' records.
func (s *searcher) known(name string) bool {
	if s.cluster != "" && name == "pod."+s.cluster {
		return true
	}
	for _, d := range s.search {
		if subdomain(name, d) {
			return true
		}
	}
	return false
}

// cutFirst reports whether the walk asks cut, the cut name of candidate cand (cutName), before cand:
// when cand's search domain is the cluster domain itself. The Kubernetes DNS specification puts every
// name there under svc or pod (both known), so the cut name's NXDOMAIN is all but certain, costs the
// one query cand's probe would, and answers for every name with the same last label.
func (s *searcher) cutFirst(cand, cut string) bool {
	return cut != "" && cut != cand && dns.CountLabel(cut) == dns.CountLabel(s.cluster)+1 && !s.known(cut)
}

// cutName is the name whose NXDOMAIN would show that the search candidate cand of name (both lower-case
// FQDNs) is empty, and that every candidate of any name with the same last label under the same search
// domain is: that label under the search domain ("com.apps.svc.cluster.local." for
// "www.example.com.apps.svc.cluster.local."). RFC 8020: nothing exists below an NXDOMAIN. It is cand
// itself for a one-label name, and "" when no cut is trusted for cand.
//
// Cuts are trusted only one label under a search domain under the cluster domain, where the cluster
// DNS (CoreDNS's kubernetes plugin) is authoritative: a Service under <ns>.svc, a Namespace under svc,
// svc or pod under the domain. Deeper, CoreDNS answers NXDOMAIN above names that exist:
// _tcp.<svc>.<ns>.svc (the parent of an SRV name), and with the multicluster and zonal options the
// parents of their names. Under the domain itself, it answers NXDOMAIN for dns.<domain> and
// dns-version.<domain> yet serves ns.dns.<domain> (its NS record's address) and a TXT at
// dns-version.<domain>: those two are never cuts. Outside the cluster domain an authoritative server
// may break RFC 8020 (its §4 lists some), and a cut there would save little: the name as given is
// asked as it is.
func (s *searcher) cutName(name, cand string) string {
	if s.cluster == "" || cand == name || !subdomain(s.cluster, cand) {
		return ""
	}
	domain := cand[len(name):]
	top := name[lastLabel(name):]
	cut := top + domain
	if domain == s.cluster && (top == "dns." || top == "dns-version.") {
		return ""
	}
	return cut
}

// subdomain reports whether child is parent or a name under it (both FQDNs), as dns.IsSubDomain does,
// without splitting either into labels: dns.IsSubDomain allocates two slices a call, and a walk makes
// dozens of calls. Case is ignored; an escaped dot (a\.b) ends no label.
func subdomain(parent, child string) bool {
	if parent == "." {
		return true
	}
	i := len(child) - len(parent)
	switch {
	case i < 0 || !strings.EqualFold(child[i:], parent):
		return false
	case i == 0:
		return true
	}
	return child[i-1] == '.' && !escaped(child, i-1)
}

// lastLabel returns where the last label of name (an FQDN other than the root) starts.
func lastLabel(name string) int {
	for i := len(name) - 2; i >= 0; i-- {
		if name[i] == '.' && !escaped(name, i) {
			return i + 1
		}
	}
	return 0
}

// escaped reports whether name[i] follows an odd run of backslashes: it is escaped.
func escaped(name string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && name[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}
