package resolvertest

import (
	"strings"

	"github.com/miekg/dns"
)

// ClusterFirst is the reference podns is held to: what glibc's resolver returns for name under
// ClusterFirst's resolv.conf (search list, ndots) on a healthy network, asking z directly. It walks the
// candidates one after another, as res_query.c's __res_context_search does: the name as given first when
// it has at least ndots dots, else last; for A and AAAA it asks both types of each candidate (as
// getaddrinfo does) and stops at the first candidate where either has records; for other types at the
// first with records of that type. It returns the FQDN whose answer ends the walk ("" when none has
// records) and that answer for qtype. When no candidate has records, the answer is the first NODATA
// among them (glibc's got_nodata wins), else the name's own NXDOMAIN.
func ClusterFirst(z *Zones, search []string, ndots int, name string, qtype uint16) (string, *dns.Msg) {
	name = strings.ToLower(dns.Fqdn(name))
	var cands []string
	dots := dns.CountLabel(name) - 1
	if dots >= ndots {
		cands = append(cands, name)
	}
	for _, d := range search {
		cands = append(cands, name+strings.ToLower(dns.Fqdn(d)))
	}
	if dots < ndots {
		cands = append(cands, name)
	}
	ask := func(n string, t uint16) *dns.Msg {
		q := new(dns.Msg)
		q.SetQuestion(n, t)
		return z.Answer(q)
	}
	has := func(m *dns.Msg) bool { return m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 }
	var nodata *dns.Msg
	for _, c := range cands {
		m := ask(c, qtype)
		if m.Rcode == dns.RcodeSuccess && nodata == nil && !has(m) {
			nodata = m
		}
		if has(m) {
			return c, m
		}
		switch qtype {
		case dns.TypeA:
			if has(ask(c, dns.TypeAAAA)) {
				return c, m
			}
		case dns.TypeAAAA:
			if has(ask(c, dns.TypeA)) {
				return c, m
			}
		}
	}
	if nodata != nil {
		return "", nodata
	}
	return "", ask(name, qtype)
}
