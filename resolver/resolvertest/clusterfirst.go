package resolvertest

import (
	"sort"
	"strings"
	"testing"

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
	cands := candidates(search, ndots, name)
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

// ClusterFirstQueries is how many queries glibc under ClusterFirst sends to the cluster DNS for one
// lookup of name: for each candidate in ClusterFirst's order, one query per type in qtypes (getaddrinfo
// sends A and AAAA of a candidate together; res_search one type), ending at the first candidate where
// any of them has records.
func ClusterFirstQueries(z *Zones, search []string, ndots int, name string, qtypes ...uint16) int {
	n := 0
	for _, c := range candidates(search, ndots, name) {
		found := false
		for _, t := range qtypes {
			q := new(dns.Msg)
			q.SetQuestion(c, t)
			m := z.Answer(q)
			n++
			found = found || (m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0)
		}
		if found {
			break
		}
	}
	return n
}

// candidates lists the FQDNs glibc tries for name, in order (res_query.c __res_context_search).
func candidates(search []string, ndots int, name string) []string {
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
	return cands
}

// Cases are the names a pod in namespace "apps" looks up in the testdata zones, with the types it
// asks: what the end-to-end tests compare with ClusterFirst.
var Cases = []struct {
	Name  string
	Qtype uint16
}{
	{"graylog", dns.TypeA},                        // a short service name
	{"graylog", dns.TypeAAAA},                     // its AAAA: NODATA, with the CNAME to the same FQDN
	{"graylog.apps", dns.TypeA},                   // svc.ns
	{"graylog.apps.svc", dns.TypeA},               // svc.ns.svc
	{"graylog.apps.svc.cluster.local", dns.TypeA}, // a full FQDN
	{"GrayLog.Apps.Svc.Cluster.Local", dns.TypeA}, // in another case
	{"db.other", dns.TypeA},                       // another namespace
	{"kube-dns.kube-system", dns.TypeA},
	{"dual", dns.TypeAAAA},
	{"www.example.com", dns.TypeA}, // external
	{"www.example.com", dns.TypeAAAA},
	{"alias.example.com", dns.TypeA}, // an external CNAME
	{"ext", dns.TypeA},               // an ExternalName service: CNAME to www.example.com
	{"web", dns.TypeA},               // a headless service
	{"web-0.web", dns.TypeA},         // a headless pod's hostname
	{"_http._tcp.graylog", dns.TypeSRV},
	{"_pg._tcp.db.other", dns.TypeSRV},
	{"example.com", dns.TypeMX},
	{"txt.example.com", dns.TypeTXT},
	{"only4.example.com", dns.TypeAAAA}, // external NODATA
	{"missing", dns.TypeA},              // a missing service
	{"nope.example.com", dns.TypeA},     // a missing external name
	{"apps", dns.TypeA},                 // NODATA at apps.svc.cluster.local: glibc's got_nodata
	{"big", dns.TypeA},                  // 60 records
	{"many.example.com", dns.TypeA},
}

// CheckClusterFirst fails t unless got, podns's reply to name/qtype, carries what ClusterFirst gives
// (ClusterFirst): the same rcode and records, behind a CNAME from the question to the FQDN found when
// that is another name; RA set; the question echoed; an SOA in a negative answer.
func CheckClusterFirst(t testing.TB, z *Zones, search []string, ndots int, name string, qtype uint16, got *dns.Msg) {
	t.Helper()
	fqdn, want := ClusterFirst(z, search, ndots, name, qtype)
	if got.Rcode != want.Rcode {
		t.Fatalf("rcode got %s, want %s", dns.RcodeToString[got.Rcode], dns.RcodeToString[want.Rcode])
	}
	if !got.RecursionAvailable {
		t.Errorf("RA got false, want true")
	}
	if len(got.Question) != 1 || got.Question[0].Name != dns.Fqdn(name) || got.Question[0].Qtype != qtype {
		t.Fatalf("question got %v, want %s %s", got.Question, dns.Fqdn(name), dns.TypeToString[qtype])
	}
	answer := got.Answer
	if fqdn != "" && !strings.EqualFold(fqdn, dns.Fqdn(name)) {
		if len(answer) == 0 {
			t.Fatalf("answer empty, want a CNAME to %s first", fqdn)
		}
		cn, ok := answer[0].(*dns.CNAME)
		if !ok || !strings.EqualFold(cn.Hdr.Name, dns.Fqdn(name)) || cn.Target != fqdn {
			t.Fatalf("first answer got %v, want CNAME %s -> %s", answer[0], dns.Fqdn(name), fqdn)
		}
		answer = answer[1:]
	}
	if g, w := RRStrings(answer), RRStrings(want.Answer); strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("answer got %v, want %v", g, w)
	}
	if len(want.Answer) == 0 && len(got.Ns) == 0 {
		t.Errorf("negative answer without SOA: clients could not cache it")
	}
}

// RRStrings renders records without TTLs, owner names in lower case, sorted: for comparing answers.
func RRStrings(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		rr = dns.Copy(rr)
		rr.Header().Ttl = 0
		rr.Header().Name = strings.ToLower(rr.Header().Name)
		out = append(out, rr.String())
	}
	sort.Strings(out)
	return out
}
