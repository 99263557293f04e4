package resolver

import (
	"strings"

	"github.com/miekg/dns"
)

// chaos answers the CHAOS-class identity questions (RFC 4892: id.server, version.server, and the older
// hostname.bind, version.bind) with "podns", locally: `podns probe` asks id.server to learn that the
// resolver is up without involving the cluster DNS. Other CHAOS questions get NOTIMP (never REFUSED,
// which musl ignores until its timeout).
func chaos(q *query) *dns.Msg {
	m := new(dns.Msg)
	name := lowerName(q.qname)
	switch {
	case q.qtype != dns.TypeTXT && q.qtype != dns.TypeANY:
		m.Rcode = dns.RcodeNotImplemented
	case name == "id.server." || name == "version.server." || name == "hostname.bind." || name == "version.bind.":
		m.Answer = []dns.RR{&dns.TXT{
			Hdr: dns.RR_Header{Name: strings.Clone(nameString(q.qname)), Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS},
			Txt: []string{"podns"},
		}}
	default:
		m.Rcode = dns.RcodeNotImplemented
	}
	return m
}
