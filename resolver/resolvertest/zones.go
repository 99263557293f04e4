// Package resolvertest provides what tests of podns need from an upstream: zones loaded from zone files,
// answered the way the cluster DNS (CoreDNS, a recursive server for names outside the cluster) answers
// them, and an in-process server on real loopback sockets that counts what reaches it.
package resolvertest

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// rootSOA is what a recursive server puts in the authority section of an NXDOMAIN for a name under a
// TLD that does not exist.
const rootSOA = ". 86400 IN SOA a.root-servers.net. nstld.verisign-grs.com. 2026112500 1800 900 604800 86400"

// maxChase bounds CNAME chains, as recursive servers do.
const maxChase = 8

// Zones is a set of zones, answered as CoreDNS answers: authoritative data for names in a zone, CNAMEs
// chased across zones (CoreDNS resolves an ExternalName's target), and NXDOMAIN with the root's SOA for
// names in no zone.
type Zones struct {
	origins []string                       // lower-case zone apexes
	soa     map[string]*dns.SOA            // by apex
	rrs     map[string]map[uint16][]dns.RR // by lower-case owner, then type
}

// LoadZones reads zone files (each with its $ORIGIN).
func LoadZones(files ...string) (*Zones, error) {
	z := &Zones{soa: make(map[string]*dns.SOA), rrs: make(map[string]map[uint16][]dns.RR)}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("opening zone: %w", err)
		}
		err = z.Read(fh, f)
		fh.Close()
		if err != nil {
			return nil, err
		}
	}
	return z, nil
}

// Read adds the records of one zone file's text.
func (z *Zones) Read(r io.Reader, name string) error {
	zp := dns.NewZoneParser(r, "", name)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		z.Add(rr)
	}
	if err := zp.Err(); err != nil {
		return fmt.Errorf("parsing zone %s: %w", name, err)
	}
	return nil
}

// Add adds one record; an SOA makes its owner a zone apex.
func (z *Zones) Add(rr dns.RR) {
	owner := strings.ToLower(rr.Header().Name)
	if soa, ok := rr.(*dns.SOA); ok {
		z.origins = append(z.origins, owner)
		z.soa[owner] = soa
	}
	if z.rrs[owner] == nil {
		z.rrs[owner] = make(map[uint16][]dns.RR)
	}
	t := rr.Header().Rrtype
	z.rrs[owner][t] = append(z.rrs[owner][t], rr)
}

// zoneOf returns the apex of the zone holding name, or "".
func (z *Zones) zoneOf(name string) string {
	best := ""
	for _, o := range z.origins {
		if dns.IsSubDomain(o, name) && len(o) > len(best) {
			best = o
		}
	}
	return best
}

// exists reports whether name owns records or has names below it (an empty non-terminal, which is
// NODATA rather than NXDOMAIN: RFC 8020).
func (z *Zones) exists(name string) bool {
	if len(z.rrs[name]) > 0 {
		return true
	}
	for owner := range z.rrs {
		if owner != name && dns.IsSubDomain(name, owner) {
			return true
		}
	}
	return false
}

// Answer returns the reply to q (one question) as the cluster DNS would give it.
func (z *Zones) Answer(q *dns.Msg) *dns.Msg {
	r := new(dns.Msg)
	r.SetReply(q)
	r.RecursionAvailable = true
	if len(q.Question) != 1 {
		r.Rcode = dns.RcodeFormatError
		return r
	}
	qt := q.Question[0].Qtype
	name := strings.ToLower(q.Question[0].Name)
	for range maxChase {
		apex := z.zoneOf(name)
		if apex == "" {
			r.Rcode = dns.RcodeNameError
			soa, _ := dns.NewRR(rootSOA)
			r.Ns = []dns.RR{soa}
			return r
		}
		if rrs := z.rrs[name][qt]; len(rrs) > 0 {
			r.Answer = append(r.Answer, copyRRs(rrs)...)
			return r
		}
		if cn := z.rrs[name][dns.TypeCNAME]; len(cn) > 0 && qt != dns.TypeCNAME {
			r.Answer = append(r.Answer, copyRRs(cn)...)
			name = strings.ToLower(cn[0].(*dns.CNAME).Target)
			continue
		}
		if !z.exists(name) {
			r.Rcode = dns.RcodeNameError
		}
		r.Ns = []dns.RR{dns.Copy(z.soa[apex])}
		return r
	}
	return r
}

func copyRRs(rrs []dns.RR) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}
